//! `unitarmor learn` and `unitarmor suggest`: put a unit in learn mode (a runtime drop-in),
//! show what it was seen doing, and turn that into a drop-in of allow rules.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::replay::Candidate;
use super::replay::Entry;
use super::suggest::{diff, suggestion, RealDisk};
use crate::learned::{self, Learned};
use crate::policy::dropin::{self, Entry as DropInEntry};
use crate::policy::named::Lookup;
use crate::policy::specifiers::UnitName;
use crate::policy::{resolve, Action, Diagnostics, Policy};

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

/// The transient unit (and timer) that ends `unit`'s learn mode after `--for`: the name made
/// safe, and a hash of it so that `a-b.service` and `a.b.service` get timers of their own.
fn stop_unit(unit: &str) -> String {
    let hash = unit.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let safe: String = unit
        .chars()
        .take(100)
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("unitarmor-learn-stop-{safe}-{:08x}", hash as u32)
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
    if l.odd > 0 {
        out.push_str(&format!(
            "  {} objects with control characters in their names were not kept\n",
            l.odd
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
    // A unit whose files allow something already gets a diff: what to add, in a drop-in of
    // its own, and what allowed nothing, as comments.
    let current = current_policy(&args.unit);
    if current.rules.iter().any(|r| r.action == Action::Allow) {
        let tables = crate::compile::compile(&current)?;
        let text = diff(
            &l,
            &current,
            &mut Candidate::new(&current, &tables),
            &RealDisk,
        )?;
        return write_or_print(args, &dir.join("armor-learned.conf"), &text, Vec::new());
    }
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
        kept_lines(&file, &bytes)?
    } else {
        Vec::new()
    };
    let text = suggestion(&l, &previous, &RealDisk)?;
    write_or_print(args, &file, &text, previous)
}

/// Prints `text`, or with `--write` installs it as `file` (an existing one only with
/// `--force`, kept with `.prev` appended; `kept` says what of it was carried over).
fn write_or_print(args: &SuggestArgs, file: &Path, text: &str, kept: Vec<String>) -> Result<i32> {
    if !args.write {
        print!("{text}");
        return Ok(0);
    }
    if file.exists() {
        if !args.force {
            bail!(
                "{} exists; --force replaces it (kept as .prev)",
                file.display()
            );
        }
        let mut prev = file.as_os_str().to_owned();
        prev.push(".prev");
        std::fs::rename(file, &prev).with_context(|| format!("keeping {}", file.display()))?;
    }
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(file, text).with_context(|| format!("writing {}", file.display()))?;
    println!(
        "wrote {}{}; `unitarmor learn --stop {}` ends learn mode, then the policy is enforced",
        file.display(),
        if kept.is_empty() {
            String::new()
        } else {
            format!(" (with {} lines of the previous file)", kept.len())
        },
        args.unit
    );
    Ok(0)
}

/// The unit's policy as its files on disk say it (its allow rules, for `suggest`'s diff).
fn current_policy(unit: &str) -> Policy {
    let (fragment, dropins) = resolve::unit_files(Path::new("/"), unit);
    let files: Vec<PathBuf> = fragment.into_iter().chain(dropins).collect();
    let name = UnitName::new(unit);
    resolve::merge(
        &Lookup::system(),
        &files,
        Some(&name),
        &mut Diagnostics::default(),
    )
}

/// The lines of a previous `armor.conf` that `suggest --write --force` carries over: what
/// it denies, audits, includes and exempts (its allow rules are what the suggestion
/// replaces, its mode what learning ends).
///
/// Allow rules are carried over too where the suggestion may not stand for them: `net`,
/// `signal` and `ptrace` rules (a family or a peer used rarely may not have been seen while
/// the unit learned) and those with `from=` (which hold one program). A file that does not
/// parse cleanly is not replaced at all.
fn kept_lines(path: &Path, bytes: &[u8]) -> Result<Vec<String>> {
    let mut diags = Diagnostics::default();
    let parsed = dropin::parse(path, bytes, &mut diags);
    if diags.has_errors() {
        bail!(
            "{} has errors ({}); fix it before replacing it",
            path.display(),
            diags.0[0]
        );
    }
    Ok(parsed
        .entries
        .into_iter()
        .filter_map(|e| match e {
            DropInEntry::Policy(text, _) if carried_over(&text) => {
                Some(format!("ArmorPolicy={text}"))
            }
            DropInEntry::Exempt(names, _) => Some(format!(
                "ArmorExempt={}",
                names.iter().map(|p| p.name()).collect::<Vec<_>>().join(" ")
            )),
            _ => None,
        })
        .collect())
}

/// Whether an `ArmorPolicy=` value of the previous file stays (see [`kept_lines`]).
fn carried_over(text: &str) -> bool {
    let words = crate::policy::rule::split_words(text).unwrap_or_default();
    match words.first().map(String::as_str) {
        Some("deny" | "audit") => true,
        Some("allow") => {
            matches!(
                words.get(1).map(String::as_str),
                Some("net" | "signal" | "ptrace")
            ) || words.iter().any(|w| w.starts_with("from="))
        }
        Some(w) => w.starts_with('@') && w != "@systemd",
        None => false,
    }
}

/// What was learned for `unit`, as records for the dry run (`check --against-journal`):
/// one audit record per object and operation, at the time of the latest record. None if
/// nothing was learned (or the records cannot be read).
pub fn replay_entries(unit: &str) -> Vec<Entry> {
    Learned::load(Path::new(learned::DIR), unit)
        .map(|l| super::suggest::entries_of(&l))
        .unwrap_or_default()
}
