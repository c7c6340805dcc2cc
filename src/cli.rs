//! The command line: argument definitions (clap) and the commands that need no daemon
//! (`check`, `show`, `disarm`) or only its D-Bus API and PID 1's (`status`, `analyze`).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::compile;

mod analyze;
mod executables;
mod learn;
mod observe;
pub mod replay;
mod suggest;
use crate::policy::named::Lookup;
use crate::policy::specifiers::UnitName;
use crate::policy::{lint, resolve, Diagnostics, Policy, Protection, Source};
pub use analyze::analyze;
pub use learn::{learn, suggest, LearnArgs, SuggestArgs};
pub use observe::{logs, status};

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
    Daemon {
        /// Most cgroups a unit may create below its own (Delegate=yes units, containers):
        /// a mkdir beyond it fails with ENOSPC, so that no unit can fill the kernel's table
        /// of armored cgroups.
        #[arg(long, value_name = "N", default_value_t = 1024,
              value_parser = clap::value_parser!(u32).range(1..=32768))]
        sub_cgroups: u32,
    },
    /// Check unit files, drop-ins or units for errors, without systemd.
    ///
    /// With --against-journal, a dry run: replays what one unit was recorded doing (its
    /// denials, audit records and would-be denials in the journal) against the policy its files
    /// say now, without loading it, and lists what that policy would refuse that went through
    /// when recorded (it would break it) and what it would let through that was refused.
    ///
    /// Exit status: 0 when there is no error; 1 on an error in the policy, or if the journal
    /// cannot be read. With --against-journal, 0 when the policy on disk refuses nothing that
    /// went through when recorded, 2 when it would refuse something that did.
    Check {
        #[command(flatten)]
        policy: PolicyArgs,
        /// Replay the unit's journal records against the policy on disk (one unit name).
        #[arg(long)]
        against_journal: bool,
        /// With --against-journal: only records since this time (as journalctl --since takes
        /// it: "-7d", "2026-11-30 10:00", "today").
        #[arg(long, requires = "against_journal")]
        since: Option<String>,
    },
    /// Print the effective policy of units or files, each rule with its source.
    Show(PolicyArgs),
    /// Show what the daemon armors: units, cgroups, mode, rules, denial counters, and how
    /// full the kernel's tables are (policy slots, bound cgroups...).
    Status {
        /// Only this unit.
        unit: Option<String>,
        /// Print JSON: the array of units (with --usage, an object {units, usage}).
        #[arg(long)]
        json: bool,
        /// With --json: print an object with the units and the use of the kernel's tables.
        #[arg(long, requires = "json", conflicts_with = "rules")]
        usage: bool,
        /// How often each rule decided (denied, would deny, audited, allowed) since the
        /// unit's policy was loaded, each with its source FILE:LINE; rules that never decided
        /// show zeros. With --json: an array of objects.
        #[arg(long)]
        rules: bool,
    },
    /// How exposed a service is, per area (files, exec, network, capabilities, processes,
    /// kernel): whether systemd's directives, unitarmor, both or neither confine it, what was
    /// seen at run time, and a suggestion for each gap. Without a unit: every loaded service,
    /// most exposed first.
    Analyze {
        /// Only this unit, in detail.
        unit: Option<String>,
        /// Print JSON (an object for one unit, an array for all).
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
    /// Put a unit in learn mode (its deny rules hold, its allow-lists do not, and what it
    /// does is recorded under /var/lib/unitarmor/learn/), end it, or show what was learned.
    Learn(LearnArgs),
    /// Print a drop-in that allows what a unit was seen doing in learn mode; --write
    /// installs it.
    Suggest(SuggestArgs),
    /// Write the man page unitarmor(8) and shell completions into DIR (for packaging).
    #[command(hide = true)]
    GenerateDocs { dir: PathBuf },
    /// Ask the daemon to re-read every unit's files and write the kernel maps; exit once it
    /// has, or with status 1 if it does not answer within 60 s. unitarmor-sync.service runs
    /// it before an armored service starts when the daemon was down at the last daemon-reload.
    Sync {
        /// For a user's service manager about to start (user@.service runs it first): the
        /// daemon's pass arms that user's units. With no daemon running, exit 1 only if root's
        /// files armor user units (the manager then does not start: fail closed).
        #[arg(long)]
        user_manager: bool,
    },
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
    executables::check(&lookup.root, &policy, diags);
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

/// `unitarmor check UNIT --against-journal`: the dry run (replay.rs). Exit status 0 when the
/// policy on disk refuses nothing recorded as going through, 2 when it does, 1 on an error.
pub fn check_against_journal(args: &PolicyArgs, since: Option<&str>) -> Result<i32> {
    let lookup = &args.lookup();
    let [name] = args.targets.as_slice() else {
        anyhow::bail!("--against-journal replays one unit: name one");
    };
    if name.contains('/') || !name.contains('.') {
        anyhow::bail!("--against-journal needs a unit name (app.service), not '{name}'");
    }
    if UnitName::new(name.as_str()).is_template() {
        anyhow::bail!("--against-journal needs an instance of the template (app@x.service)");
    }
    let mut diags = Diagnostics::default();
    let Some(t) = targets(&lookup.root, &args.targets, &mut diags).pop() else {
        diags.errors().for_each(|d| eprintln!("{d}"));
        return Ok(1);
    };
    let policy = load(lookup, &t, &mut diags);
    if diags.has_errors() {
        diags.errors().for_each(|d| eprintln!("{d}"));
        return Ok(1);
    }
    let tables = compile::compile(&policy)?;
    let mut entries = read_journal(name, since)?;
    entries.extend(learn::replay_entries(name));
    let report = replay::replay(&entries, &mut replay::Candidate::new(&policy, &tables));
    let mut out = std::io::stdout().lock();
    if args.json {
        let v = serde_json::json!({
            "unit": name,
            "mode": policy.mode,
            "armored": policy.is_armored(),
            "since": since,
            "records": report.records,
            "would_break": report.count(replay::Change::Breaks),
            "loosens": report.count(replay::Change::Loosens),
            "groups": report.groups,
            "not_replayed": report.not_replayed,
        });
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", replay::render(name, policy.mode, &report))?;
    }
    Ok(report.exit_code())
}

/// The unit's verdict records and summaries, through `journalctl -o json`: its export format is
/// a documented, stable interface, and a subprocess needs no libsystemd binding.
fn read_journal(unit: &str, since: Option<&str>) -> Result<Vec<replay::Entry>> {
    let mut args: Vec<String> = ["-o", "json", "--no-pager", "-q"]
        .map(String::from)
        .to_vec();
    if let Some(since) = since {
        args.push(format!("--since={since}"));
    }
    for id in [
        crate::journal::MESSAGE_ID_DENIED,
        crate::journal::MESSAGE_ID_AUDIT,
        crate::journal::MESSAGE_ID_SUPPRESSED,
    ] {
        args.push(format!("MESSAGE_ID={id}"));
    }
    args.push(format!("UNITARMOR_UNIT={unit}"));
    // The daemon's own records only: forged ones could make a policy look too tight or loose
    // enough.
    args.push(crate::journal::DAEMON_RECORDS.to_string());
    let command = format!("journalctl {}", args.join(" "));
    let out = std::process::Command::new("journalctl")
        .args(&args)
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("cannot run `{command}`"))?;
    if !out.status.success() {
        anyhow::bail!(
            "`{command}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let mut entries = Vec::new();
    for (n, line) in String::from_utf8_lossy(&out.stdout).lines().enumerate() {
        if line.trim().is_empty() || line.starts_with("-- ") {
            continue;
        }
        match replay::parse_line(line) {
            Ok(Some(e)) => entries.push(e),
            Ok(None) => {}
            Err(e) => anyhow::bail!(
                "`{command}` printed line {} that is not a record: {e}",
                n + 1
            ),
        }
    }
    Ok(entries)
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
            .map(|(t, p)| {
                serde_json::json!({
                    "target": t.label,
                    "files": t.files,
                    "armored": p.is_armored(),
                    "policy": p,
                    "protections": protections_json(p),
                    "exempt": exempt_json(p),
                })
            })
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
            for line in protection_lines(p) {
                writeln!(out, "{line}")?;
            }
        }
    }
    for d in diags.errors() {
        eprintln!("{d}");
    }
    Ok(i32::from(diags.has_errors()))
}

/// Width of the name column in `show`'s list of protections.
const NAME_WIDTH: usize = 16;
/// Lines of `show`'s list of protections are wrapped at this many characters.
const LINE_WIDTH: usize = 100;

/// `show`'s list of the implicit protections of `p` (comment lines, so the output still
/// reads as a drop-in): those that apply with their reasons and the paths they cover, then
/// those lifted by `ArmorExempt=`, with where.
fn protection_lines(p: &Policy) -> Vec<String> {
    if !p.is_armored() {
        return vec!["# implicit protections: none (the unit is not armored)".to_string()];
    }
    let mut lines = vec!["# implicit protections (ArmorExempt=NAME lifts one):".to_string()];
    let mut item = |name: &str, text: &str| {
        let mut first = true;
        for l in wrap(text, LINE_WIDTH - NAME_WIDTH - 4) {
            let label = if first { name } else { "" };
            lines.push(format!("#   {label:NAME_WIDTH$}{l}"));
            first = false;
        }
    };
    for prot in p.protections() {
        item(prot.name(), prot.reason());
        if !prot.write_paths().is_empty() {
            item(
                "",
                &format!("refuses writes to {}", prot.write_paths().join(" ")),
            );
        }
        if !prot.unix_paths().is_empty() {
            item(
                "",
                &format!("refuses connecting to {}", prot.unix_paths().join(" ")),
            );
            item(
                "",
                "(an allow connect unix: rule lifts this for the sockets it names)",
            );
        }
    }
    for prot in &p.exempt {
        let at = p
            .exempt_sources
            .get(prot)
            .map(|s| format!(" at {s}"))
            .unwrap_or_default();
        item(prot.name(), &format!("lifted by ArmorExempt={at}"));
    }
    lines
}

/// `text` in lines of at most `width` characters, broken at spaces (a longer word gets a
/// line of its own).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        if !cur.is_empty() && cur.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    lines.push(cur);
    lines
}

/// `show --json`'s `protections`: the implicit protections that apply.
fn protections_json(p: &Policy) -> serde_json::Value {
    p.protections()
        .into_iter()
        .map(|prot| {
            serde_json::json!({
                "name": prot.name(),
                "reason": prot.reason(),
                "write_paths": prot.write_paths(),
                "unix_paths": prot.unix_paths(),
            })
        })
        .collect()
}

/// `show --json`'s `exempt`: the protections `ArmorExempt=` lifted, with where.
fn exempt_json(p: &Policy) -> serde_json::Value {
    p.exempt
        .iter()
        .map(|prot: &Protection| {
            serde_json::json!({
                "name": prot.name(),
                "reason": prot.reason(),
                "source": p.exempt_sources.get(prot),
            })
        })
        .collect()
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

#[cfg(test)]
#[path = "cli/tests.rs"]
mod tests;
