//! Learn mode in the daemon: the audit records of a unit in `ArmorMode=learn` are added to
//! its [`Learned`] set instead of the journal (those its own audit rules made are journaled
//! as well), and the sets that changed are written to disk every few seconds and when the
//! daemon stops.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use tracing::warn;

use super::Daemon;
use crate::kernel::abi::{self, Event, Verdict};
use crate::learned::{self, Learned};
use crate::policy::specifiers::UnitName;
use crate::policy::{learn, Mode};

/// The most objects kept for all units together (each unit also has its own limit,
/// [`learned::MAX_ENTRIES`]): about 100 MB at the longest objects.
const MAX_ALL: usize = 100_000;

/// The units' sets, loaded at their first record and dropped once their unit no longer
/// learns.
#[derive(Default)]
pub(super) struct Learning {
    sets: HashMap<String, Learned>,
    /// Objects kept in `sets`, all units together.
    kept: usize,
    /// Units whose set changed since it was last written.
    dirty: HashSet<String>,
    /// Units whose set could not be written last time (logged once until it can).
    failing: HashSet<String>,
}

impl Daemon {
    /// Learns `ev` if it is an audit record of a unit in learn mode (owner of its policy:
    /// `unit`). Returns whether the record is learn mode's alone (not to be journaled).
    pub(super) fn learn_event(&mut self, unit: &str, ev: &Event, exe: &str) -> bool {
        let Some((_, policy)) = self.owners.get(&ev.policy) else {
            return false;
        };
        // Signals and traces across units are refused in every mode (protections): learned
        // as the unit they were aimed at, for `allow signal UNIT` and `allow ptrace UNIT`.
        let peer = ev.verdict == Verdict::Denied && matches!(ev.op, abi::OP_KILL | abi::OP_PTRACE);
        if policy.mode != Mode::Learn || (ev.verdict != Verdict::Audited && !peer) {
            return false;
        }
        let learn_rule = policy
            .rules
            .get(ev.rule as usize)
            .is_some_and(|r| learn::is_learn_rule(&r.source));
        if let Some((class, object)) = object_of(ev, super::cgroups::unit_of_pid) {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let learning = &mut self.learning;
            let set = learning.sets.entry(unit.to_string()).or_insert_with(|| {
                let set = load(unit);
                learning.kept += set.entries.len();
                set
            });
            let room = learning.kept < MAX_ALL;
            if set.add(class, abi::op_name(ev.op), &object, exe, now, room) {
                learning.kept += 1;
            }
            // A template's instances learn into its set: which one it was, for `%i`.
            if let Some(instance) = instance_of(unit, ev.cgroup_id) {
                set.note_instance(class, &object, &instance);
            }
            learning.dirty.insert(unit.to_string());
        }
        learn_rule
    }

    /// Whether `rule` of `policy` is one learn mode added (its repeats are not summarized in
    /// the journal).
    pub(super) fn is_learn_rule(&self, policy: u32, rule: u32) -> bool {
        self.owners.get(&policy).is_some_and(|(_, p)| {
            p.mode == Mode::Learn
                && p.rules
                    .get(rule as usize)
                    .is_some_and(|r| learn::is_learn_rule(&r.source))
        })
    }

    /// Writes the sets that changed, and forgets those of units that no longer learn (their
    /// records stay on disk).
    pub(super) fn save_learned(&mut self) {
        for unit in std::mem::take(&mut self.learning.dirty) {
            let Some(set) = self.learning.sets.get(&unit) else {
                continue;
            };
            match set.save(Path::new(learned::DIR)) {
                Ok(()) => {
                    self.learning.failing.remove(&unit);
                }
                Err(e) => {
                    if self.learning.failing.insert(unit.clone()) {
                        warn!(
                            object_systemd_unit = unit.as_str(),
                            "{unit}: cannot keep what learn mode saw: {e:#}"
                        );
                    }
                    self.learning.dirty.insert(unit);
                }
            }
        }
        let units = &self.units;
        let Learning {
            sets, kept, dirty, ..
        } = &mut self.learning;
        sets.retain(|unit, set| {
            let keep = dirty.contains(unit)
                || units
                    .get(unit)
                    .is_some_and(|a| a.policy.mode == Mode::Learn);
            if !keep {
                *kept -= set.entries.len();
            }
            keep
        });
    }
}

/// The instance name of the unit of template `unit` whose cgroup is `cgid`, while that
/// cgroup is there (read from its path); None for a unit that is no template.
fn instance_of(unit: &str, cgid: u64) -> Option<String> {
    if !unit.contains("@.") {
        return None;
    }
    let owner = super::cgroups::unit_of_cgroup(None, cgid)?;
    if super::discover::template_of(&owner).as_deref() != Some(unit) {
        return None;
    }
    Some(UnitName::new(owner.as_str()).instance().to_string())
}

/// The unit's set as last written; a file that cannot be read is set aside (kept, renamed
/// with `.unreadable`) and learning starts again.
fn load(unit: &str) -> Learned {
    let dir = Path::new(learned::DIR);
    Learned::load(dir, unit).unwrap_or_else(|e| {
        let path = Learned::path(dir, unit);
        let aside = path.with_extension("json.unreadable");
        let _ = std::fs::rename(&path, &aside);
        warn!(
            object_systemd_unit = unit,
            "{unit}: {e:#}; set aside as {}, learning starts again",
            aside.display()
        );
        Learned {
            unit: unit.to_string(),
            ..Learned::default()
        }
    })
}

/// The class and object of a record, as rules name them (`suggest` allows a bind by port
/// alone); none for what learn mode does not record (a path that could not be built, the
/// other protections). A refused signal or trace is the unit of the process it was aimed at,
/// as `unit_of_pid` finds it.
fn object_of(
    ev: &Event,
    unit_of_pid: impl Fn(u32) -> Option<String>,
) -> Option<(&'static str, String)> {
    match ev.op {
        abi::OP_KILL if ev.verdict == Verdict::Denied => {
            return unit_of_pid(ev.target_pid).map(|u| ("signal", u))
        }
        abi::OP_PTRACE if ev.verdict == Verdict::Denied => {
            return unit_of_pid(ev.target_pid).map(|u| ("ptrace", u))
        }
        _ => {}
    }
    match ev.class {
        0..=2 if !ev.truncated && ev.path.starts_with('/') => {
            Some((abi::class_name(ev.class), ev.path.clone()))
        }
        3 if !ev.truncated && !ev.path.is_empty() => Some(("connect", format!("unix:{}", ev.path))),
        abi::CLASS_CONNECT | abi::CLASS_BIND => {
            let (proto, port) = abi::proto_port(ev.arg);
            let addr = if ev.path.contains(':') {
                format!("[{}]", ev.path)
            } else {
                ev.path.clone()
            };
            Some((abi::class_name(ev.class), format!("{proto}:{addr}:{port}")))
        }
        5 if ev.op == 40 => crate::policy::caps::NAMES
            .get(ev.arg as usize)
            .map(|n| ("cap", (*n).to_string())),
        // A socket, by family; a raw one (netlink's are ordinary) needs `raw` as well.
        6 if ev.op == 41 => {
            let (family, ty) = abi::socket_kind(ev.arg);
            Some(if ty == "raw" && family != "netlink" {
                ("net", format!("{family} raw"))
            } else {
                ("net", family)
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(class: u8, op: u8, verdict: Verdict, target_pid: u32) -> Event {
        Event {
            class,
            op,
            verdict,
            target_pid,
            ..Event::sample()
        }
    }

    /// A refused signal or trace is learned as the unit of the process it was aimed at; one
    /// whose process is gone (or in no unit) is not learned.
    #[test]
    fn refused_signals_and_traces_are_their_target_units() {
        let units = |pid: u32| (pid == 42).then(|| "peer.service".to_string());
        let kill = event(4, abi::OP_KILL, Verdict::Denied, 42);
        assert_eq!(
            object_of(&kill, units),
            Some(("signal", "peer.service".into()))
        );
        let trace = event(4, abi::OP_PTRACE, Verdict::Denied, 42);
        assert_eq!(
            object_of(&trace, units),
            Some(("ptrace", "peer.service".into()))
        );
        assert_eq!(
            object_of(&event(4, abi::OP_KILL, Verdict::Denied, 43), units),
            None
        );
        // Other protections are not learned.
        assert_eq!(object_of(&event(4, 33, Verdict::Denied, 42), units), None);
    }
}
