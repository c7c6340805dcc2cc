//! `unitarmor learn` and `unitarmor suggest`: put a unit in learn mode (a runtime drop-in),
//! show what it was seen doing, and turn that into a drop-in of allow rules.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::replay::{Entry, Record};
use super::suggest::suggestion;
use crate::learned::{self, Learned};
use crate::policy::dropin::{self, Entry as DropInEntry};
use crate::policy::Diagnostics;

/// The runtime drop-in `unitarmor learn` writes (last in name order, so that it wins over an
/// `ArmorMode=` of the unit's own drop-ins; gone at reboot).
const LEARN_DROPIN: &str = "zz-unitarmor-learn.conf";

/// `unitarmor learn`.
#[derive(clap::Args, Debug)]
pub struct LearnArgs {
    /// The unit (a service, or a template such as foo@.service).
    pub unit: String,
    /// End learn mode: remove the runtime drop-in and reload (what was learned is kept).
    #[arg(long, conflicts_with = "status")]
    pub stop: bool,
    /// Show what was learned so far, per class, and change nothing.
    #[arg(long)]
    pub status: bool,
    /// End learn mode after this long (a systemd time span: 30min, 2h, 1d), with a
    /// transient timer that runs `unitarmor learn --stop UNIT`.
    #[arg(long = "for", value_name = "DURATION", conflicts_with_all = ["stop", "status"])]
    pub duration: Option<String>,
}

/// `unitarmor suggest`.
#[derive(clap::Args, Debug)]
pub struct SuggestArgs {
    /// The unit learn mode watched.
    pub unit: String,
    /// Install the drop-in as /etc/systemd/system/UNIT.d/armor.conf (then run `systemctl
    /// daemon-reload`).
    #[arg(long)]
    pub write: bool,
    /// With --write: replace an existing armor.conf (kept as armor.conf.prev).
    #[arg(long, requires = "write")]
    pub force: bool,
}

/// `unitarmor learn UNIT [--stop | --status]`.
pub fn learn(args: &LearnArgs) -> Result<i32> {
    check_name(&args.unit)?;
    if args.status {
        let l = Learned::load(Path::new(learned::DIR), &args.unit)?;
        print!("{}", status_text(&l));
        return Ok(0);
    }
    let dir = PathBuf::from(format!("/run/systemd/system/{}.d", args.unit));
    let file = dir.join(LEARN_DROPIN);
    // A timer of an earlier `--for` (stopping one that is not there is no error).
    let _ = Command::new("systemctl")
        .args([
            "stop",
            "--quiet",
            &format!("{}.timer", stop_unit(&args.unit)),
        ])
        .status();
    if args.stop {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                println!(
                    "{} was not in learn mode (no {})",
                    args.unit,
                    file.display()
                );
                return Ok(0);
            }
            Err(e) => return Err(e).with_context(|| format!("removing {}", file.display())),
        }
        reload()?;
        println!(
            "{}: learn mode ended (what it learned is kept: unitarmor suggest {})",
            args.unit, args.unit
        );
        return Ok(0);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(
        &file,
        "# Written by `unitarmor learn`; `unitarmor learn --stop UNIT` removes it.\n\
         [X-Armor]\nArmorMode=learn\n",
    )
    .with_context(|| format!("writing {}", file.display()))?;
    reload()?;
    if let Some(duration) = &args.duration {
        let exe = std::env::current_exe().context("finding the unitarmor binary")?;
        let status = Command::new("systemd-run")
            .arg(format!("--unit={}", stop_unit(&args.unit)))
            .arg(format!("--on-active={duration}"))
            .args(["--timer-property=AccuracySec=1s", "--quiet"])
            .arg(exe)
            .args(["learn", "--stop", &args.unit])
            .status()
            .context("running systemd-run")?;
        if !status.success() {
            bail!(
                "systemd-run could not set a timer for '{duration}' ({status}); {} stays in \
                 learn mode until `unitarmor learn --stop {}`",
                args.unit,
                args.unit
            );
        }
    }
    let until = args
        .duration
        .as_ref()
        .map_or(String::new(), |d| format!(" for {d}"));
    println!(
        "{}: in learn mode{until} (deny rules still hold); see `unitarmor learn --status {}`, \
         then `unitarmor suggest {}`",
        args.unit, args.unit, args.unit
    );
    Ok(0)
}

/// The transient unit (and timer) that ends `unit`'s learn mode after `--for`.
fn stop_unit(unit: &str) -> String {
    format!(
        "unitarmor-learn-stop-{}",
        unit.replace(['@', '\\', '.'], "-")
    )
}

/// A unit name, not a path: it names files under /run, /etc and /var/lib.
fn check_name(unit: &str) -> Result<()> {
    if !learned::valid_unit(unit) {
        bail!("'{unit}' is not a unit name (app.service, app@.service)");
    }
    Ok(())
}

fn reload() -> Result<()> {
    let status = Command::new("systemctl")
        .arg("daemon-reload")
        .status()
        .context("running systemctl daemon-reload")?;
    if !status.success() {
        bail!("systemctl daemon-reload failed ({status})");
    }
    Ok(())
}

/// What `learn --status` prints.
fn status_text(l: &Learned) -> String {
    if l.entries.is_empty() {
        return format!("{}: nothing learned yet\n", l.unit);
    }
    let mut out = format!(
        "{}: {} objects learned between {} and {}\n",
        l.unit,
        l.entries.len(),
        l.since,
        l.until
    );
    for (class, (objects, count)) in l.per_class() {
        out.push_str(&format!(
            "  {class:<8} {objects:>6} objects {count:>9} records\n"
        ));
    }
    if l.dropped > 0 {
        out.push_str(&format!(
            "  {} more objects were not kept (at most {} a unit)\n",
            l.dropped,
            learned::MAX_ENTRIES
        ));
    }
    out
}

/// `unitarmor suggest UNIT [--write [--force]]`.
pub fn suggest(args: &SuggestArgs) -> Result<i32> {
    check_name(&args.unit)?;
    let l = Learned::load(Path::new(learned::DIR), &args.unit)?;
    if l.entries.is_empty() {
        bail!(
            "nothing learned for {} (run `unitarmor learn {}`, then start the unit)",
            args.unit,
            args.unit
        );
    }
    let dir = PathBuf::from(format!("/etc/systemd/system/{}.d", args.unit));
    let file = dir.join("armor.conf");
    let previous = if args.write && file.exists() {
        if !args.force {
            bail!(
                "{} exists; --force replaces it (it is kept as armor.conf.prev, and its deny, \
                 audit, include and exemption lines are carried over)",
                file.display()
            );
        }
        let bytes =
            dropin::read_limited(&file).with_context(|| format!("reading {}", file.display()))?;
        kept_lines(&file, &bytes)
    } else {
        Vec::new()
    };
    let text = suggestion(&l, &previous)?;
    if !args.write {
        print!("{text}");
        return Ok(0);
    }
    if file.exists() {
        std::fs::rename(&file, dir.join("armor.conf.prev"))
            .with_context(|| format!("keeping {}", file.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(&file, text).with_context(|| format!("writing {}", file.display()))?;
    println!(
        "wrote {}; `unitarmor learn --stop {}` ends learn mode, then the policy is enforced",
        file.display(),
        args.unit
    );
    Ok(0)
}

/// The lines of a previous `armor.conf` that `suggest --write --force` carries over: what
/// it denies, audits, includes and exempts (its allow rules are what the suggestion
/// replaces, its mode what learning ends).
fn kept_lines(path: &Path, bytes: &[u8]) -> Vec<String> {
    let parsed = dropin::parse(path, bytes, &mut Diagnostics::default());
    parsed
        .entries
        .into_iter()
        .filter_map(|e| match e {
            DropInEntry::Policy(text, _)
                if text.starts_with("deny ")
                    || text.starts_with("audit ")
                    || (text.starts_with('@') && text.trim() != "@systemd") =>
            {
                Some(format!("ArmorPolicy={text}"))
            }
            DropInEntry::Exempt(names, _) => Some(format!(
                "ArmorExempt={}",
                names.iter().map(|p| p.name()).collect::<Vec<_>>().join(" ")
            )),
            _ => None,
        })
        .collect()
}

/// What was learned for `unit`, as records for the dry run (`check --against-journal`):
/// one audit record per object and operation, at the time of the latest record. None if
/// nothing was learned (or the records cannot be read).
pub fn replay_entries(unit: &str) -> Vec<Entry> {
    Learned::load(Path::new(learned::DIR), unit)
        .map(|l| entries_of(&l))
        .unwrap_or_default()
}

pub(super) fn entries_of(l: &Learned) -> Vec<Entry> {
    let mut out = Vec::new();
    for s in l.entries.values() {
        for op in &s.ops {
            let mut r = Record {
                time: l.until.saturating_mul(1_000_000),
                action: "audit".into(),
                class: s.class.clone(),
                operation: op.clone(),
                rule: "learn mode".into(),
                rule_source: format!("{}:0", crate::policy::learn::SOURCE),
                exe: s.exes.iter().next().map(|e| e.as_bytes().to_vec()),
                ..Record::default()
            };
            match (s.class.as_str(), s.object.split_once(':')) {
                ("read" | "write" | "exec", _) => r.path = Some(s.object.as_bytes().to_vec()),
                ("connect", Some(("unix", path))) => r.path = Some(path.as_bytes().to_vec()),
                ("connect" | "bind", Some((proto, rest))) => {
                    let Some((addr, port)) = rest.rsplit_once(':') else {
                        continue;
                    };
                    r.protocol = Some(proto.to_string());
                    r.address = Some(addr.trim_start_matches('[').trim_end_matches(']').into());
                    r.port = Some(port.to_string());
                }
                ("cap", _) => r.capability = Some(format!("CAP_{}", s.object.to_uppercase())),
                _ => continue,
            }
            out.push(Entry::Record(Box::new(r)));
        }
    }
    out
}
