//! The command line: argument definitions (clap) and the commands that need no daemon
//! (`check`, `show`, `disarm`) or only its D-Bus API (`status`).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::compile;
use crate::policy::named::Lookup;
use crate::policy::specifiers::UnitName;
use crate::policy::{lint, resolve, Diagnostics, Policy, Source};

/// Confines systemd services with BPF LSM programs, configured from unit drop-ins.
#[derive(Parser, Debug)]
#[command(name = "unitarmor", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the daemon (what unitarmor.service starts).
    Daemon,
    /// Check unit files, drop-ins or units for errors, without systemd.
    Check(PolicyArgs),
    /// Print the effective policy of units or files, each rule with its source.
    Show(PolicyArgs),
    /// Show what the daemon armors: units, cgroups, mode, rules, denial counters.
    Status {
        /// Only this unit.
        unit: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show denials (and, with --audit, audit records) from the journal.
    Logs {
        /// Only this unit's.
        unit: Option<String>,
        /// Keep printing new records as they come.
        #[arg(short, long)]
        follow: bool,
        /// Only records since this time (as journalctl --since takes it: "-1h", "today"...).
        #[arg(long)]
        since: Option<String>,
        /// Also audit records (audit rules and ArmorMode=audit).
        #[arg(long)]
        audit: bool,
        /// One journal record per line, as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write the man page unitarmor(8) and shell completions into DIR (for packaging).
    #[command(hide = true)]
    GenerateDocs { dir: PathBuf },
    /// Remove the pinned programs: enforcement stops once no daemon runs.
    /// Stop unitarmor.service first.
    Disarm,
}

/// What `check` and `show` read.
#[derive(clap::Args, Debug)]
pub struct PolicyArgs {
    /// Files (a unit file or drop-in) or unit names (resolved in systemd's search path).
    #[arg(required = true)]
    pub targets: Vec<String>,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
    /// Look units and named policies up below this directory instead of /.
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
    /// Also look named policies (`@NAME`) up in this directory, before the system's.
    #[arg(long = "policy-dir", value_name = "DIR")]
    pub policy_dirs: Vec<PathBuf>,
}

impl PolicyArgs {
    fn lookup(&self) -> Lookup {
        Lookup {
            root: self.root.clone(),
            extra: self.policy_dirs.clone(),
        }
    }
}

/// A target of `check`/`show`: the files that configure it and the unit they belong to.
struct Target {
    label: String,
    unit: Option<UnitName>,
    files: Vec<PathBuf>,
}

/// The unit a file configures, from its name or its drop-in directory.
fn unit_of_file(path: &Path) -> Option<UnitName> {
    let parent = path.parent()?.file_name()?.to_str()?;
    if let Some(unit) = parent.strip_suffix(".d") {
        if unit.contains('.') && !unit.ends_with("-") {
            return Some(UnitName::new(unit));
        }
    }
    let name = path.file_name()?.to_str()?;
    (name.contains('.') && !name.ends_with(".conf")).then(|| UnitName::new(name))
}

fn targets(root: &Path, args: &[String], diags: &mut Diagnostics) -> Vec<Target> {
    args.iter()
        .filter_map(|a| {
            let p = Path::new(a);
            if a.contains('/') || p.is_file() {
                return Some(Target {
                    label: a.clone(),
                    unit: unit_of_file(p),
                    files: vec![p.to_path_buf()],
                });
            }
            let (fragment, dropins) = resolve::unit_files(root, a);
            if fragment.is_none() && dropins.is_empty() {
                diags.error(
                    &Source::new(a, 0),
                    format!(
                        "no unit file or drop-in found for '{a}' below {}",
                        root.display()
                    ),
                );
                return None;
            }
            Some(Target {
                label: a.clone(),
                unit: Some(UnitName::new(a.as_str())),
                files: fragment.into_iter().chain(dropins).collect(),
            })
        })
        .collect()
}

fn load(lookup: &Lookup, t: &Target, diags: &mut Diagnostics) -> Policy {
    let policy = resolve::merge(lookup, &t.files, t.unit.as_ref(), diags);
    lint::lint(&policy, diags);
    if let Err(e) = compile::compile(&policy) {
        let src = policy
            .rules
            .first()
            .map_or_else(|| Source::new(&t.label, 0), |r| r.source.clone());
        diags.error(&src, e.to_string());
    }
    policy
}

/// `unitarmor check`: exit status 1 on any error. A template's files are checked as one of
/// its instances would read them (`%i` is `instance`).
pub fn check(args: &PolicyArgs) -> Result<i32> {
    let (lookup, json) = (&args.lookup(), args.json);
    let mut diags = Diagnostics::default();
    for mut t in targets(&lookup.root, &args.targets, &mut diags) {
        if let Some(u) = t.unit.as_ref().filter(|u| u.is_template()) {
            t.unit = Some(UnitName::new(u.full.replacen("@.", "@instance.", 1)));
        }
        let policy = load(lookup, &t, &mut diags);
        if !policy.configured && !json {
            eprintln!(
                "{}: note: no [X-Armor] section; the unit is not armored",
                t.label
            );
        }
    }
    diags
        .0
        .sort_by(|a, b| (&a.source.file, a.source.line).cmp(&(&b.source.file, b.source.line)));
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &diags)?;
        writeln!(out)?;
    } else {
        for d in &diags.0 {
            writeln!(out, "{d}")?;
        }
    }
    Ok(i32::from(diags.has_errors()))
}

/// `unitarmor show`.
pub fn show(args: &PolicyArgs) -> Result<i32> {
    let (lookup, json) = (&args.lookup(), args.json);
    let mut diags = Diagnostics::default();
    let mut shown = Vec::new();
    for t in targets(&lookup.root, &args.targets, &mut diags) {
        let policy = load(lookup, &t, &mut diags);
        shown.push((t, policy));
    }
    let mut out = std::io::stdout().lock();
    if json {
        let v: Vec<_> = shown
            .iter()
            .map(|(t, p)| serde_json::json!({"target": t.label, "files": t.files, "armored": p.is_armored(), "policy": p}))
            .collect();
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
    } else {
        for (t, p) in &shown {
            writeln!(out, "# {}", t.label)?;
            if !p.configured {
                writeln!(
                    out,
                    "# not armored: no [X-Armor] section in {} file(s)",
                    t.files.len()
                )?;
                continue;
            }
            writeln!(out, "ArmorMode={}", p.mode.as_str())?;
            let width = p
                .rules
                .iter()
                .map(|r| r.to_string().len())
                .max()
                .unwrap_or(0);
            for r in &p.rules {
                writeln!(out, "ArmorPolicy={:width$}  # {}", r.to_string(), r.source)?;
            }
        }
    }
    for d in diags.errors() {
        eprintln!("{d}");
    }
    Ok(i32::from(diags.has_errors()))
}

/// `unitarmor status`.
pub async fn status(unit: Option<&str>, json: bool) -> Result<i32> {
    let conn = zbus::connection::Builder::system()
        .method_timeout(std::time::Duration::from_secs(10))
        .build()
        .await
        .context("connecting to the system bus")?;
    let proxy = crate::api::ManagerProxy::new(&conn).await?;
    let mut units = proxy
        .list_units()
        .await
        .context("asking unitarmor.service (is it running?)")?;
    if let Some(u) = unit {
        units.retain(|s| s.unit == u);
        if units.is_empty() {
            eprintln!("{u} is not armored");
            return Ok(1);
        }
    }
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &units)?;
        writeln!(out)?;
        return Ok(0);
    }
    writeln!(
        out,
        "{:<32} {:<8} {:>5} {:>8} {:>8} {:>6}  CGROUPS",
        "UNIT", "MODE", "RULES", "DENIED", "AUDITED", "LOST"
    )?;
    for s in &units {
        let cg = if s.cgroup_ids.is_empty() {
            "-".to_string()
        } else {
            s.cgroup_ids
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        writeln!(
            out,
            "{:<32} {:<8} {:>5} {:>8} {:>8} {:>6}  {cg}",
            s.unit, s.mode, s.rules, s.denied, s.audited, s.lost
        )?;
        if s.unenforced > 0 {
            writeln!(
                out,
                "  {} rule(s) not enforced by this version (see `unitarmor check {}`)",
                s.unenforced, s.unit
            )?;
        }
        for e in s.errors.lines() {
            writeln!(out, "  error: {e}")?;
        }
    }
    Ok(0)
}

/// `unitarmor logs`: the journal's unitarmor records, through journalctl.
pub fn logs(
    unit: Option<&str>,
    follow: bool,
    since: Option<&str>,
    audit: bool,
    json: bool,
) -> Result<i32> {
    use std::io::BufRead;

    let mut cmd = std::process::Command::new("journalctl");
    cmd.args(["--no-pager", "-o", "json"]);
    if follow {
        cmd.arg("--follow");
    }
    if let Some(s) = since {
        cmd.args(["--since", s]);
    }
    if let Some(u) = unit {
        cmd.arg(format!("UNITARMOR_UNIT={u}"));
    }
    cmd.arg(format!("MESSAGE_ID={}", crate::journal::MESSAGE_ID_DENIED));
    cmd.arg(format!(
        "MESSAGE_ID={}",
        crate::journal::MESSAGE_ID_SUPPRESSED
    ));
    if audit {
        cmd.arg(format!("MESSAGE_ID={}", crate::journal::MESSAGE_ID_AUDIT));
    }
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running journalctl")?;
    let stdout = child.stdout.take().context("journalctl's output")?;
    let mut out = std::io::stdout().lock();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line?;
        if json {
            writeln!(out, "{line}")?;
            continue;
        }
        let Ok(rec) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let field = |k: &str| {
            rec.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("-")
                .to_string()
        };
        let micros: i64 = field("__REALTIME_TIMESTAMP").parse().unwrap_or(0);
        if writeln!(
            out,
            "{} {}: {}",
            local_time(micros),
            field("UNITARMOR_UNIT"),
            field("MESSAGE")
        )
        .is_err()
        {
            break; // the reader went away (a pager or head closed the pipe)
        }
    }
    let status = child.wait()?;
    Ok(if status.success() {
        0
    } else {
        status.code().unwrap_or(1)
    })
}

/// `2026-11-28 20:19:02` in local time, from microseconds since the epoch.
fn local_time(micros: i64) -> String {
    let secs = (micros / 1_000_000) as libc::time_t;
    // SAFETY: localtime_r only writes the tm we hand it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        return secs.to_string();
    }
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// `unitarmor generate-docs DIR`: `DIR/unitarmor.8` from the same definitions as `--help`, and
/// completions for bash, zsh and fish.
pub fn generate_docs(dir: &Path) -> Result<i32> {
    use clap::CommandFactory;

    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let cmd = Cli::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .section("8")
        .render(&mut page)?;
    std::fs::write(dir.join("unitarmor.8"), page)?;
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let name = format!("unitarmor-{}", sub.get_name());
        let mut page = Vec::new();
        clap_mangen::Man::new(sub.clone().name(name.clone()))
            .section("8")
            .render(&mut page)?;
        std::fs::write(dir.join(format!("{name}.8")), page)?;
    }
    for (shell, file) in [
        (clap_complete::Shell::Bash, "unitarmor.bash"),
        (clap_complete::Shell::Zsh, "_unitarmor"),
        (clap_complete::Shell::Fish, "unitarmor.fish"),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), "unitarmor", &mut out);
        std::fs::write(dir.join(file), out)?;
    }
    Ok(0)
}
