//! Per-rule decision counters, as the kernel keeps them (bpf/report.h: `ua_count`): the rows
//! `unitarmor status --rules` prints, and a node_exporter textfile that fleets collect with
//! the host metrics they already scrape (`unitarmor_decisions_total{unit,rule,source,verdict}`,
//! `unitarmor_lost_events_total{unit}`).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use tracing::{info, warn};

use super::Daemon;
use crate::api::RuleCount;
use crate::compile::RULE_PROTECT;
use crate::kernel::Hits;
use crate::policy::{Action, Mode};

/// node_exporter's textfile directory on Debian and Fedora packages; the daemon writes
/// [`TEXTFILE`] there when it exists (unitarmor.service: `ReadWritePaths=-` of it).
pub const TEXTFILE_DIR: &str = "/var/lib/prometheus/node-exporter";
const TEXTFILE: &str = "unitarmor.prom";

impl Daemon {
    /// One row per rule of every armored unit's current policy (dead rules too), then one per
    /// implicit reason that decided something; and how many entries the kernel's counter
    /// table has.
    pub(super) fn rule_rows(&self) -> (Vec<RuleCount>, usize) {
        let hits = self.kernel.rule_hits();
        let used = hits.len();
        let mut by_policy: HashMap<u32, Vec<(u32, u8, Hits)>> = HashMap::new();
        for ((policy, rule, class), h) in hits {
            by_policy.entry(policy).or_default().push((rule, class, h));
        }
        let mut rows = Vec::new();
        for (name, a) in &self.units {
            // A grouped (large) policy's path rules are counted per group: one row for each,
            // in place of its rules' own (the kernel cannot tell them apart).
            let groups = self
                .groups
                .get(&a.id)
                .map(|g| g.0.as_slice())
                .unwrap_or(&[]);
            let in_group: HashSet<u32> = groups
                .iter()
                .flat_map(|g| g.rules.iter().copied())
                .collect();
            let mut own: Vec<Option<RuleCount>> = a
                .policy
                .rules
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    (!in_group.contains(&(i as u32))).then(|| RuleCount {
                        unit: name.clone(),
                        rule: r.to_string(),
                        source: r.source.to_string(),
                        ..RuleCount::default()
                    })
                })
                .collect();
            let mut implicit: Vec<RuleCount> = Vec::new();
            let mut grouped: Vec<RuleCount> = groups
                .iter()
                .map(|g| RuleCount {
                    unit: name.clone(),
                    rule: group_text(g),
                    source: group_source(&a.policy, &g.rules),
                    ..RuleCount::default()
                })
                .collect();
            let mut found = by_policy.remove(&a.id).unwrap_or_default();
            found.sort_by_key(|(rule, class, _)| (*rule, *class));
            for (rule, class, h) in found {
                if let Some(i) = groups
                    .iter()
                    .position(|g| g.first == rule && g.class == usize::from(class))
                {
                    add(&mut grouped[i], &h);
                    continue;
                }
                let row = match own.get_mut(rule as usize) {
                    Some(Some(row)) if rule < RULE_PROTECT => row,
                    _ => {
                        let (_, text, source) = self.rule_info(a.id, rule, class);
                        match implicit.iter().position(|r| r.rule == text) {
                            Some(i) => &mut implicit[i],
                            None => {
                                implicit.push(RuleCount {
                                    unit: name.clone(),
                                    rule: text,
                                    source,
                                    ..RuleCount::default()
                                });
                                implicit.last_mut().expect("just pushed")
                            }
                        }
                    }
                };
                add(row, &h);
            }
            rows.extend(own.into_iter().flatten());
            rows.append(&mut grouped);
            rows.append(&mut implicit);
        }
        (rows, used)
    }

    /// Rewrites the textfile (atomically: node_exporter never reads half of it) if
    /// node_exporter's directory exists. A failure is logged once until it is fixed.
    pub(super) fn write_textfile(&mut self) {
        let dir = Path::new(TEXTFILE_DIR);
        if !dir.is_dir() {
            return;
        }
        let (rows, _) = self.rule_rows();
        let text = textfile(
            &rows,
            self.units
                .iter()
                .map(|(n, a)| (n.as_str(), a.lost, a.policy.mode)),
        );
        let result = write_beside(dir, TEXTFILE, text.as_bytes());
        match (result, self.textfile_failing) {
            (Ok(()), true) => {
                info!("writing {}/{TEXTFILE} again", dir.display());
                self.textfile_failing = false;
            }
            (Err(e), false) => {
                let hint = if e.raw_os_error() == Some(libc::EROFS) {
                    " (it was created after unitarmor.service started: restart it)"
                } else {
                    ""
                };
                warn!("cannot write {}/{TEXTFILE}: {e}{hint}", dir.display());
                self.textfile_failing = true;
            }
            _ => {}
        }
    }
}

/// How a group of a grouped policy's rules is named: `10004 deny read rules, counted together`.
pub(super) fn group_text(g: &crate::compile::Group) -> String {
    format!(
        "{} {} {}{}",
        g.rules.len(),
        g.action.as_str(),
        crate::kernel::abi::class_name(g.class as u8),
        crate::api::GROUP_ROW_END
    )
}

/// Where a group's rules come from: the first and last rule's FILE:LINE.
pub(super) fn group_source(policy: &crate::policy::Policy, rules: &[u32]) -> String {
    let at = |i: Option<&u32>| {
        i.and_then(|i| policy.rules.get(*i as usize))
            .map(|r| r.source.to_string())
            .unwrap_or_default()
    };
    match rules.len() {
        0 => String::new(),
        1 => at(rules.first()),
        _ => format!("{} to {}", at(rules.first()), at(rules.last())),
    }
}

/// Writes `name` in `dir` atomically (a temporary file, then a rename) without following any
/// link a process that can write `dir` may have planted: the directory is opened with
/// `O_NOFOLLOW`, the temporary file is created anew (`O_EXCL|O_NOFOLLOW`) after removing
/// whatever had its name, and the rename replaces a link itself, never its target.
fn write_beside(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::io::Write as _;
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;

    let c = |s: &[u8]| {
        CString::new(s).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
    };
    let check = |r: libc::c_int| {
        if r < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(r)
        }
    };
    let dir_c = c(dir.as_os_str().as_bytes())?;
    let tmp_c = c(format!(".{name}.tmp").as_bytes())?;
    let name_c = c(name.as_bytes())?;
    // SAFETY: valid NUL-terminated strings; each returned descriptor is owned exactly once.
    let dirfd = unsafe {
        let fd = check(libc::open(
            dir_c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        ))?;
        OwnedFd::from_raw_fd(fd)
    };
    use std::os::fd::AsRawFd;
    // SAFETY: as above.
    unsafe {
        if libc::unlinkat(dirfd.as_raw_fd(), tmp_c.as_ptr(), 0) < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ENOENT) {
                return Err(e);
            }
        }
    }
    // SAFETY: as above.
    let file = unsafe {
        let fd = check(libc::openat(
            dirfd.as_raw_fd(),
            tmp_c.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o644,
        ))?;
        OwnedFd::from_raw_fd(fd)
    };
    std::fs::File::from(file).write_all(data)?;
    // SAFETY: as above.
    unsafe {
        check(libc::renameat(
            dirfd.as_raw_fd(),
            tmp_c.as_ptr(),
            dirfd.as_raw_fd(),
            name_c.as_ptr(),
        ))?;
    }
    Ok(())
}

fn add(row: &mut RuleCount, h: &Hits) {
    row.denied += h.denied();
    row.would_deny += h.would_deny();
    row.audited += h.audited();
    row.allowed += h.allowed();
}

/// The textfile: for each rule, the series of the outcome its action gives (a deny rule's
/// `denied`, or `would-deny` under `ArmorMode=audit`; an allow rule's `allowed`; an audit
/// rule's `audited`), zero for a rule that never decided, and any other outcome it had.
pub fn textfile<'a>(
    rows: &[RuleCount],
    units: impl Iterator<Item = (&'a str, u64, Mode)>,
) -> String {
    let mut out = String::new();
    let units: Vec<_> = units.collect();
    let mode_of: HashMap<&str, Mode> = units.iter().map(|(n, _, m)| (*n, *m)).collect();
    out.push_str(
        "# HELP unitarmor_decisions_total Decisions of each rule of each armored unit's current policy, since it was loaded.\n\
         # TYPE unitarmor_decisions_total counter\n",
    );
    for r in rows {
        let action = match r.rule.split(' ').next() {
            Some("deny") => Some(Action::Deny),
            Some("allow") => Some(Action::Allow),
            Some("audit") => Some(Action::Audit),
            _ => None,
        };
        let audit_mode = mode_of.get(r.unit.as_str()) == Some(&Mode::Audit);
        let own = match action {
            Some(Action::Deny) if audit_mode => Some("would-deny"),
            Some(Action::Deny) => Some("denied"),
            Some(Action::Allow) => Some("allowed"),
            Some(Action::Audit) => Some("audited"),
            None => None,
        };
        for (verdict, n) in [
            ("denied", r.denied),
            ("would-deny", r.would_deny),
            ("audited", r.audited),
            ("allowed", r.allowed),
        ] {
            if n == 0 && own != Some(verdict) {
                continue;
            }
            let _ = writeln!(
                out,
                "unitarmor_decisions_total{{unit=\"{}\",rule=\"{}\",source=\"{}\",verdict=\"{verdict}\"}} {n}",
                label(&r.unit),
                label(&r.rule),
                label(&r.source)
            );
        }
    }
    out.push_str(
        "# HELP unitarmor_lost_events_total Events of the unit lost because the kernel's ring buffer was full.\n\
         # TYPE unitarmor_lost_events_total counter\n",
    );
    for (unit, lost, _) in &units {
        let _ = writeln!(
            out,
            "unitarmor_lost_events_total{{unit=\"{}\"}} {lost}",
            label(unit)
        );
    }
    out.push_str(
        "# HELP unitarmor_armored_units Units the daemon armors.\n# TYPE unitarmor_armored_units gauge\n",
    );
    let _ = writeln!(out, "unitarmor_armored_units {}", units.len());
    out
}

/// A label value in the text exposition format: backslash, double quote and newline escaped.
fn label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(unit: &str, rule: &str, denied: u64, allowed: u64) -> RuleCount {
        RuleCount {
            unit: unit.into(),
            rule: rule.into(),
            source: "/etc/systemd/system/a.service.d/armor.conf:2".into(),
            denied,
            allowed,
            ..RuleCount::default()
        }
    }

    #[test]
    fn every_rule_has_its_own_series_dead_ones_at_zero() {
        let rows = [
            row("a.service", "deny read /etc/shadow", 3, 0),
            row("a.service", "allow exec /usr/bin/**", 0, 0),
        ];
        let t = textfile(&rows, [("a.service", 7, Mode::Enforce)].into_iter());
        assert!(t.contains(
            "unitarmor_decisions_total{unit=\"a.service\",rule=\"deny read /etc/shadow\",source=\"/etc/systemd/system/a.service.d/armor.conf:2\",verdict=\"denied\"} 3\n"
        ));
        assert!(t.contains("rule=\"allow exec /usr/bin/**\",source=\"/etc/systemd/system/a.service.d/armor.conf:2\",verdict=\"allowed\"} 0\n"));
        assert!(!t.contains("verdict=\"audited\""));
        assert!(t.contains("unitarmor_lost_events_total{unit=\"a.service\"} 7\n"));
        assert!(t.contains("unitarmor_armored_units 1\n"));
    }

    #[test]
    fn audit_mode_deny_rules_count_would_deny() {
        let rows = [row("a.service", "deny read /x", 0, 0)];
        let t = textfile(&rows, [("a.service", 0, Mode::Audit)].into_iter());
        assert!(t.contains("verdict=\"would-deny\"} 0\n"));
        assert!(!t.contains("verdict=\"denied\""));
    }

    #[test]
    fn the_textfile_is_written_beside_a_planted_link_not_through_it() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join(".unitarmor.prom.tmp")).unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("unitarmor.prom")).unwrap();
        write_beside(dir.path(), "unitarmor.prom", b"metrics\n").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        let out = dir.path().join("unitarmor.prom");
        assert!(!out.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(out).unwrap(), "metrics\n");
        // A directory made at the temporary name stops the write, with an error.
        std::fs::create_dir(dir.path().join(".unitarmor.prom.tmp")).unwrap();
        assert!(write_beside(dir.path(), "unitarmor.prom", b"x").is_err());
        // And a linked directory is not entered.
        let linked = dir.path().join("linked");
        std::os::unix::fs::symlink(dir.path(), &linked).unwrap();
        assert!(write_beside(&linked, "unitarmor.prom", b"x").is_err());
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let rows = [row("a.service", "deny read \"/x y\"", 1, 0)];
        let t = textfile(&rows, std::iter::empty());
        assert!(t.contains("rule=\"deny read \\\"/x y\\\"\""));
    }
}
