//! The dry run, `unitarmor check UNIT --against-journal`: the unit's journal records (denials,
//! audit records and would-be denials, and the summaries of suppressed ones) replayed against
//! the policy its files say now, without loading it. Each recorded operation is decided by the
//! compiled tables as the kernel would decide it (`Tables::decide`, the port, family and
//! capability tables) and grouped per class, operation and object: what the candidate would
//! refuse that went through when recorded (it would break it) and what it would let through
//! that was refused (it loosens). Records that cannot be decided so (implicit protections,
//! which the kernel decides by identity; paths that could not be built; records without the
//! fields a decision needs) are counted with the reason, never dropped.
//!
//! Pure: journal JSON lines and a compiled policy in, a [`Report`] out (`cli.rs` runs
//! journalctl and prints it).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::compile::{self, RuleFinder, Tables, Verdict, RULE_IMPLICIT, RULE_NOT_ALLOWED};
use crate::policy::net::{Proto, FAMILIES};
use crate::policy::{Action, Class, Mode, Policy, Protection, Target};

mod record;
mod render;
pub use record::{parse_line, Entry, Record, Summary};
pub use render::{render, utc};

/// Seconds of slack around a summary's window: the daemon writes it at the first tick after
/// the window closed.
const SUMMARY_SLACK: u64 = 3;
/// The daemon's flood window, for summaries that do not say theirs.
const DEFAULT_WINDOW: u64 = 10;

/// What a candidate policy does with an operation: the verdict, whether the operation goes
/// through, and the rule that decides (`text`, `file:line`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// deny, would-deny, audit or allow.
    pub verdict: String,
    pub rule: Option<String>,
    pub source: Option<String>,
    /// The index in the policy of the rule that decided (`suggest` tells used allow rules
    /// from unused ones), if a rule of the policy did.
    pub index: Option<usize>,
    /// Refused only because its class is an allow-list that names nothing it matches.
    pub not_allowed: bool,
}

impl Decision {
    /// Whether the operation goes through.
    pub fn allowed(&self) -> bool {
        self.verdict != "deny"
    }
}

/// The candidate policy: as `check` resolved and compiled it.
pub struct Candidate<'a> {
    pub policy: &'a Policy,
    pub tables: &'a Tables,
    /// Names the rule of a grouped policy (the tables name each group's first).
    pub finder: Option<RuleFinder>,
}

impl<'a> Candidate<'a> {
    pub fn new(policy: &'a Policy, tables: &'a Tables) -> Self {
        let finder = RuleFinder::new(policy, &tables.groups).ok();
        Candidate {
            policy,
            tables,
            finder,
        }
    }

    /// The decision on `op`, or why it cannot be replayed.
    pub fn decide(&mut self, r: &Record) -> Result<Decision, String> {
        if let ("signal" | "ptrace", Some(peer)) = (r.class.as_str(), &r.peer) {
            let mask = r.exe.as_deref().map_or(0, |e| self.tables.exe_mask(e));
            return Ok(self.decide_peer(&r.class, peer, mask));
        }
        if let Some(p) = &r.protection {
            // Path protections are in the tables; the others are checked by identity.
            if !matches!(r.class.as_str(), "write" | "connect") || r.path.is_none() {
                return Err(format!("implicit protection \"{p}\", decided by identity"));
            }
        } else if r.rule_source == "implicit" {
            return Err(format!("decided by the kernel, not by rules: {}", r.rule));
        }
        if r.class == "protect" {
            return Err("implicit protection, decided by identity".into());
        }
        let missing = |what: &str| format!("{} records without {what}", r.class);
        let (class, ci, path) = match (r.class.as_str(), &r.path) {
            ("read", Some(p)) => (Class::Read, Some(0), p.as_slice()),
            ("write", Some(p)) => (Class::Write, Some(1), p.as_slice()),
            ("exec", Some(p)) => (Class::Exec, Some(2), p.as_slice()),
            ("connect", Some(p)) => (Class::Connect, Some(compile::UNIX_CLASS), p.as_slice()),
            ("read" | "write" | "exec", None) => return Err(missing("a path")),
            ("connect" | "bind", None) => (Class::Connect, None, &[][..]),
            ("cap", _) => (Class::Cap, None, &[][..]),
            ("net", _) => (Class::Net, None, &[][..]),
            (c, _) => return Err(format!("class \"{c}\" is not replayed")),
        };
        if ci.is_some() && String::from_utf8_lossy(path).contains('\u{fffd}') {
            return Err("the recorded path is not the kernel's (not valid UTF-8)".into());
        }
        if !self.policy.is_armored() {
            return Ok(Decision {
                verdict: "allow".into(),
                rule: Some("the unit is not armored".into()),
                source: None,
                index: None,
                not_allowed: false,
            });
        }
        let t = self.tables;
        // from= rules: as the kernel decided for the recorded executable.
        let mask = r.exe.as_deref().map_or(0, |e| t.exe_mask(e));
        let verdict = match (r.class.as_str(), ci) {
            ("exec", _) if r.operation == "exec" && t.held_exec(path, mask) => {
                Verdict::Deny(compile::RULE_FROM_EXEC)
            }
            (_, Some(_)) => t.decide_from(class, path, mask),
            ("connect" | "bind", None) => {
                let addr: std::net::IpAddr = r
                    .address
                    .as_deref()
                    .and_then(|a| a.parse().ok())
                    .ok_or_else(|| missing("an address"))?;
                let addr = match addr {
                    std::net::IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
                    std::net::IpAddr::V6(a) => a.octets(),
                };
                let port = r
                    .port
                    .as_deref()
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| missing("a port"))?;
                let proto = match r.protocol.as_deref() {
                    Some("tcp") => Proto::Tcp,
                    Some("udp") => Proto::Udp,
                    _ => return Err(missing("a protocol")),
                };
                t.net
                    .decide_port(r.class == "bind", proto, addr, port, mask)
            }
            ("cap", _) => {
                let cap = r
                    .capability
                    .as_deref()
                    .and_then(capability_number)
                    .ok_or_else(|| missing("a capability"))?;
                t.cap_verdict(cap, mask)
            }
            _ => {
                let family = r
                    .family
                    .as_deref()
                    .and_then(family_number)
                    .ok_or_else(|| missing("a family"))?;
                t.socket_verdict(family, r.socket_type.as_deref() == Some("raw"), mask)
            }
        };
        let (verdict, rule) = match verdict {
            Verdict::Deny(rule) if self.policy.mode == Mode::Audit => ("would-deny", Some(rule)),
            Verdict::Deny(rule) => ("deny", Some(rule)),
            Verdict::Audit(rule) => ("audit", Some(rule)),
            Verdict::Allow => ("allow", ci.and_then(|_| t.allowed_by(class, path, mask))),
        };
        let not_allowed = rule == Some(RULE_NOT_ALLOWED);
        let (rule, source, index) = match rule {
            Some(rule) => {
                let (text, source, index) = self.name(rule, class, ci, path);
                (Some(text), source, index)
            }
            None => (None, None, None),
        };
        Ok(Decision {
            verdict: verdict.into(),
            rule,
            source,
            index,
            not_allowed,
        })
    }

    /// A learned signal or trace aimed at unit `peer` by a process of `from=` mask `mask`:
    /// allowed by an `allow signal` (or `ptrace`) rule naming it (with `from=`, one whose
    /// pattern the executable matches), or by the protection lifted; refused by the
    /// protection, in every mode, for want of such a rule otherwise.
    fn decide_peer(&self, class: &str, peer: &str, mask: u8) -> Decision {
        let (class, protection) = match class {
            "signal" => (Class::Signal, Protection::Signal),
            _ => (Class::Ptrace, Protection::Ptrace),
        };
        let allow = |rule: &String, source: Option<String>, index: Option<usize>| Decision {
            verdict: "allow".into(),
            rule: Some(rule.clone()),
            source,
            index,
            not_allowed: false,
        };
        if !self.policy.is_armored() {
            return allow(&"the unit is not armored".into(), None, None);
        }
        if self.policy.is_exempt(protection) {
            return allow(
                &format!("protection \"{}\" lifted", protection.name()),
                self.policy
                    .exempt_sources
                    .get(&protection)
                    .map(ToString::to_string),
                None,
            );
        }
        let froms = compile::from_bits(self.policy);
        let naming = self.policy.rules.iter().position(|r| {
            r.action == Action::Allow
                && r.class == class
                && matches!(&r.target, Target::Units(units) if units.iter().any(|u| u == peer))
                && r.from
                    .as_ref()
                    .is_none_or(|_| froms(r).is_some_and(|b| mask & (1 << b) != 0))
        });
        match naming {
            Some(i) => {
                let r = &self.policy.rules[i];
                allow(&r.to_string(), Some(r.source.to_string()), Some(i))
            }
            None => Decision {
                verdict: "deny".into(),
                rule: Some(format!("protection \"{}\"", protection.name())),
                source: None,
                index: None,
                not_allowed: true,
            },
        }
    }

    /// A rule index's text and source, as the daemon's records name it, and the index of the
    /// policy's rule it is (a grouped policy's group resolved), if it is one.
    fn name(
        &mut self,
        rule: u32,
        class: Class,
        ci: Option<usize>,
        path: &[u8],
    ) -> (String, Option<String>, Option<usize>) {
        if let Some(p) = compile::protection_of(rule) {
            return (format!("protection \"{}\"", p.name()), None, None);
        }
        if rule == RULE_IMPLICIT {
            return ("allowed implicitly".into(), None, None);
        }
        if rule == compile::RULE_FROM_EXEC {
            let held = "the program is held to from= allow-lists and executes only their programs";
            return (held.into(), None, None);
        }
        if rule == RULE_NOT_ALLOWED {
            let sources: Vec<String> = self
                .policy
                .rules
                .iter()
                .filter(|r| r.action == Action::Allow && r.class == class)
                .map(|r| r.source.to_string())
                .collect();
            return (
                format!(
                    "{} is an allow-list and no allow rule matches",
                    class.as_str()
                ),
                Some(sources.join(", ")),
                None,
            );
        }
        let rule = match (&mut self.finder, ci) {
            (Some(f), Some(ci)) => f.find(rule, ci, path).unwrap_or(rule),
            _ => rule,
        };
        match self.policy.rules.get(rule as usize) {
            Some(r) => (
                r.to_string(),
                Some(r.source.to_string()),
                Some(rule as usize),
            ),
            None => (format!("rule {rule}"), None, None),
        }
    }
}

/// `CAP_SYS_ADMIN` or `capability 21` to 21.
fn capability_number(name: &str) -> Option<usize> {
    if let Some(n) = name.strip_prefix("capability ") {
        return n.parse().ok().filter(|n| *n < compile::CAP_SLOTS);
    }
    let name = name.strip_prefix("CAP_")?.to_ascii_lowercase();
    crate::policy::caps::NAMES.iter().position(|n| *n == name)
}

/// `inet` or `family 40` to the family's number.
fn family_number(name: &str) -> Option<usize> {
    if let Some(n) = name.strip_prefix("family ") {
        return n.parse().ok();
    }
    FAMILIES
        .iter()
        .find(|(n, nr)| *n == name && *nr != 0xffff)
        .map(|(_, nr)| usize::from(*nr))
}

/// What a recorded operation is about, in words: `/etc/passwd`, `tcp 10.0.0.1:25`,
/// `CAP_SYS_ADMIN`, `inet stream`.
fn object(r: &Record) -> String {
    if let Some(p) = &r.path {
        return String::from_utf8_lossy(p).into_owned();
    }
    if let Some(u) = &r.peer {
        return u.clone();
    }
    match (&r.address, &r.capability, &r.family) {
        (Some(a), _, _) => {
            let proto = r.protocol.as_deref().unwrap_or("?");
            let port = r.port.as_deref().unwrap_or("?");
            match a.contains(':') {
                true => format!("{proto} [{a}]:{port}"),
                false => format!("{proto} {a}:{port}"),
            }
        }
        (_, Some(c), _) => c.clone(),
        (_, _, Some(f)) => format!("{f} {}", r.socket_type.as_deref().unwrap_or("")),
        _ => String::new(),
    }
}

/// What the replay did to one kind of operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// Went through when recorded, refused by the candidate.
    Breaks,
    /// Refused when recorded, let through by the candidate.
    Loosens,
    /// Goes through, or is refused, as it was.
    Same,
}

/// One distinct (class, operation, object) with one recorded verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Group {
    pub change: Change,
    pub class: String,
    pub operation: String,
    pub object: String,
    /// The recorded verdict: deny, would-deny or audit.
    pub recorded: String,
    pub recorded_rule: String,
    pub recorded_source: String,
    /// Records written, and records counted in summaries that can be attributed to this group.
    pub records: u64,
    pub suppressed: u64,
    /// Microseconds since the epoch.
    pub first: u64,
    pub last: u64,
    pub now: Decision,
}

/// Records that could not be replayed, per reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub reason: String,
    pub records: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub records: u64,
    pub groups: Vec<Group>,
    pub not_replayed: Vec<Skipped>,
}

impl Report {
    pub fn count(&self, change: Change) -> usize {
        self.groups.iter().filter(|g| g.change == change).count()
    }

    /// 2 when the candidate refuses something that went through when recorded, else 0.
    pub fn exit_code(&self) -> i32 {
        if self.count(Change::Breaks) > 0 {
            2
        } else {
            0
        }
    }
}

/// Where a record went: a group (by its key) or a reason it was not replayed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    Group(String, String, String, String),
    Skipped(String),
}

/// Replays `entries` (in journal order) against `candidate`.
pub fn replay(entries: &[Entry], candidate: &mut Candidate<'_>) -> Report {
    let mut groups: BTreeMap<Slot, Group> = BTreeMap::new();
    let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
    // Per record, in order: its time, slot and what a summary matches it by.
    let mut placed: Vec<(&Record, Slot)> = Vec::new();
    let mut report = Report::default();
    for e in entries {
        let r = match e {
            Entry::Record(r) => r,
            Entry::Summary(s) => {
                report.records += s.count;
                match attribute(s, &placed) {
                    Some(Slot::Skipped(reason)) => *skipped.entry(reason).or_default() += s.count,
                    Some(slot) => {
                        if let Some(g) = groups.get_mut(&slot) {
                            g.suppressed += s.count;
                        }
                    }
                    None => {
                        *skipped
                            .entry(
                                "suppressed records whose summary cannot be attributed to one \
                                 operation"
                                    .into(),
                            )
                            .or_default() += s.count
                    }
                }
                continue;
            }
        };
        report.records += 1;
        if !matches!(r.action.as_str(), "deny" | "would-deny" | "audit") {
            *skipped
                .entry("records without a verdict".into())
                .or_default() += 1;
            placed.push((r, Slot::Skipped("records without a verdict".into())));
            continue;
        }
        let slot = match candidate.decide(r) {
            Err(reason) => {
                *skipped.entry(reason.clone()).or_default() += 1;
                placed.push((r, Slot::Skipped(reason)));
                continue;
            }
            Ok(now) => {
                let key = Slot::Group(
                    r.class.clone(),
                    r.operation.clone(),
                    object(r),
                    r.action.clone(),
                );
                let g = groups.entry(key.clone()).or_insert_with(|| {
                    let was_allowed = r.action != "deny";
                    let change = match (was_allowed, now.allowed()) {
                        (true, false) => Change::Breaks,
                        (false, true) => Change::Loosens,
                        _ => Change::Same,
                    };
                    Group {
                        change,
                        class: r.class.clone(),
                        operation: r.operation.clone(),
                        object: object(r),
                        recorded: r.action.clone(),
                        recorded_rule: r.rule.clone(),
                        recorded_source: r.rule_source.clone(),
                        records: 0,
                        suppressed: 0,
                        first: r.time,
                        last: r.time,
                        now,
                    }
                });
                g.records += 1;
                g.first = g.first.min(r.time);
                g.last = g.last.max(r.time);
                key
            }
        };
        placed.push((r, slot));
    }
    report.groups = groups.into_values().collect();
    report
        .groups
        .sort_by(|a, b| (a.change, &a.class, &a.object).cmp(&(b.change, &b.class, &b.object)));
    report.not_replayed = skipped
        .into_iter()
        .map(|(reason, records)| Skipped { reason, records })
        .collect();
    report
}

/// The one slot the records a summary counts went to, if they all went to one. A summary
/// counts repeats of records of its rule, class and verdict written in its window (the first
/// of each operation and object in a window is always written), or, for repeats the kernel
/// counted alone, of records written before it.
fn attribute(s: &Summary, placed: &[(&Record, Slot)]) -> Option<Slot> {
    let matches = |r: &Record| {
        r.time <= s.time
            && r.rule == s.rule
            && r.rule_source == s.rule_source
            && s.class.as_ref().is_none_or(|c| *c == r.class)
            && s.action.as_ref().is_none_or(|a| *a == r.action)
    };
    let span = (s.window.unwrap_or(DEFAULT_WINDOW) + SUMMARY_SLACK) * 1_000_000;
    let in_window: Vec<&Slot> = placed
        .iter()
        .filter(|(r, _)| matches(r) && r.time + span >= s.time)
        .map(|(_, slot)| slot)
        .collect();
    let candidates = if in_window.is_empty() {
        placed
            .iter()
            .filter(|(r, _)| matches(r))
            .map(|(_, slot)| slot)
            .collect()
    } else {
        in_window
    };
    let first = *candidates.first()?;
    candidates
        .iter()
        .all(|slot| *slot == first)
        .then(|| first.clone())
}

#[cfg(test)]
#[path = "replay_tests.rs"]
mod tests;
