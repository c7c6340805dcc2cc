//! `from=`: rules that apply only to processes running a given executable.
//!
//! A policy's distinct `from=` patterns (at most [`FROM_MAX`]) are numbered, and a process's
//! *mask* has bit `i` set if its executable (what `/proc/PID/exe` names: for a script, its
//! interpreter) matches pattern `i`. In a policy with `from=` rules every DFA walk starts with
//! one byte before the path, the process's mask (below [`FROM_QUERY`]): a rule without `from=`
//! accepts any mask byte, a rule with `from=` pattern `i` only the bytes with bit `i` set. So
//! one table decides for every combination of executables, and a walk costs one byte more.
//!
//! The mask itself comes from the same table: the executable's path walked after the byte
//! [`FROM_QUERY`] ends in a state whose [`Accept::from`] holds the patterns it matches. The
//! kernel computes it once per task and executable (bpf/walk.h) and keeps it with the tag of
//! the patterns ([`Froms::tag`]), so that a mask computed under other patterns is never used.
//!
//! An allow rule with `from=` makes its class an allow-list for the processes it names only
//! ([`Tables::from_allow`]); a deny or audit rule with `from=` applies to them only.
//!
//! Capabilities and socket families are decided by one verdict per slot (caps.rs): for a
//! process whose mask has bit `i`, by pattern `i`'s own table ([`FromSlots`]), made as if the
//! process matched pattern `i` alone. A process matching several patterns gets the strictest
//! of their tables' verdicts ([`fold`], as bpf/caps.h does). Port rules carry their pattern's
//! bit (net.rs).

use serde::{Deserialize, Serialize};

use super::{Accept, CapTable, CompileError, Tables, Verdict, CAP_SLOTS, PATH_CLASSES};
use super::{RULE_NONE, RULE_NOT_ALLOWED};
use crate::policy::{Action, Class, Policy};

/// Most distinct `from=` patterns one policy may have: a mask is one byte below
/// [`FROM_QUERY`].
pub const FROM_MAX: usize = 7;
/// The byte before an executable's path that asks which `from=` patterns it matches (never
/// a mask).
pub const FROM_QUERY: u8 = 0x80;
/// The byte before a path that every rule matches, whatever its `from=`: a rename or link
/// compares its two names so, since the file keeps its rules for every executable.
pub const FROM_ANY: u8 = 0x81;
/// A bit of [`Froms::held`] that no mask has: the processes of some `from=` pattern reach
/// other units (`allow signal UNIT from=`, `allow ptrace UNIT from=`). Code put into such a
/// process by another of the unit (ptrace, `/proc/PID/mem`) would reach them as it, so the
/// unit's processes may not attach to one another, as under from= allow-lists.
pub const FROM_REACHES: u8 = 0x80;
/// The pseudo class of query patterns in the compiler's pattern owners.
pub(super) const FROM_CLASS: usize = PATH_CLASSES;

/// The `from=` patterns of one policy's rules, in order of first appearance.
pub(super) struct Froms(Vec<String>);

/// The verdicts of capabilities and socket families for a process of one `from=` pattern.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FromSlots {
    pub caps: CapTable,
    #[serde(with = "super::arrays")]
    pub net_rule: [u32; CAP_SLOTS],
    pub net_audit: u64,
}

impl Froms {
    /// The `from=` patterns of `policy`'s rules; too many is an error naming the limit.
    pub fn of(policy: &Policy) -> Result<Froms, CompileError> {
        let mut v: Vec<String> = Vec::new();
        for r in &policy.rules {
            if let Some(f) = &r.from {
                let text = f.to_regex();
                if !v.contains(&text) {
                    v.push(text);
                }
            }
        }
        if v.len() > FROM_MAX {
            return Err(CompileError::TooComplex(format!(
                "{} distinct from= patterns, more than the {FROM_MAX} one policy may have",
                v.len()
            )));
        }
        Ok(Froms(v))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The bit of `rule`'s `from=` pattern, if it has one.
    pub fn bit(&self, rule: &crate::policy::Rule) -> Option<u32> {
        let text = rule.from.as_ref()?.to_regex();
        self.0.iter().position(|f| *f == text).map(|i| i as u32)
    }

    /// Pattern `i`'s capability and family tables: the rules without `from=` and those of
    /// pattern `i`, as if the process matched it alone.
    pub fn slots(&self, policy: &Policy) -> Vec<FromSlots> {
        (0..self.0.len() as u32)
            .map(|i| {
                let applies = |r: &crate::policy::Rule| r.from.is_none() || self.bit(r) == Some(i);
                let (net_rule, net_audit) = super::net::families_for(policy, applies);
                FromSlots {
                    caps: CapTable::of_for(policy, applies),
                    net_rule,
                    net_audit,
                }
            })
            .collect()
    }

    /// Anchored regular expression `re` behind the mask byte: any mask (`bit` None) or one
    /// with `bit` set. Unchanged in a policy without `from=`.
    pub fn prefixed(&self, re: &str, bit: Option<u32>) -> String {
        if self.is_empty() {
            return re.to_string();
        }
        let body = re.strip_prefix('^').unwrap_or(re);
        let class = match bit {
            None => format!(r"[\x00-\x{:02x}\x{FROM_ANY:02x}]", FROM_QUERY - 1),
            Some(b) => {
                let bytes: String = (0..FROM_QUERY)
                    .filter(|m| m & (1 << b) != 0)
                    .chain([FROM_ANY])
                    .map(|m| format!(r"\x{m:02x}"))
                    .collect();
                format!("[{bytes}]")
            }
        };
        format!("^{class}(?:{body})")
    }

    /// Adds the query patterns: [`FROM_QUERY`] then pattern `i`, recorded as bit `i` of
    /// [`Accept::from`]. They follow [`FROM_ANY`] too, so that a rename or link, which
    /// compares names after it, also keeps which programs a file is.
    pub fn queries(&self, patterns: &mut Vec<String>, owner: &mut Vec<(u32, usize, Action)>) {
        for (i, f) in self.0.iter().enumerate() {
            let body = f.strip_prefix('^').unwrap_or(f);
            patterns.push(format!(r"^[\x{FROM_QUERY:02x}\x{FROM_ANY:02x}](?:{body})"));
            owner.push((i as u32, FROM_CLASS, Action::Allow));
        }
    }

    /// The patterns whose processes some allow rule holds to an allow-list (bit per pattern):
    /// such a process may execute only programs of the same patterns (bpf/exec.h); and
    /// [`FROM_REACHES`] if an `allow signal`/`allow ptrace` rule has `from=`. With either, no
    /// process of the unit may attach to another (bpf/procs.h).
    pub fn held(&self, policy: &Policy) -> u8 {
        let allows = policy.rules.iter().filter(|r| r.action == Action::Allow);
        let peer = |r: &&crate::policy::Rule| matches!(r.class, Class::Signal | Class::Ptrace);
        // `allow signal UNIT from=` makes no allow-list: its program executes what it may.
        let held = allows
            .clone()
            .filter(|r| !peer(r))
            .filter_map(|r| self.bit(r))
            .fold(0, |m, b| m | 1 << b);
        let reaches = allows.filter(peer).any(|r| self.bit(r).is_some());
        held | if reaches { FROM_REACHES } else { 0 }
    }

    /// 0 without `from=` patterns; else a nonzero hash of them (FNV-1a).
    pub fn tag(&self) -> u64 {
        if self.is_empty() {
            return 0;
        }
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for f in &self.0 {
            for b in f.bytes().chain([0]) {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        h.max(1)
    }
}

impl Tables {
    /// The `from=` mask of a process whose executable is `exe` (0 in a policy without
    /// `from=`, or for an executable no pattern matches).
    pub fn exe_mask(&self, exe: &[u8]) -> u8 {
        if self.from_tag == 0 {
            return 0;
        }
        let state = self.walk_from(self.walk_from(self.start, &[FROM_QUERY]), exe);
        self.accept.get(&state).map_or(0, |a: &Accept| a.from as u8)
    }

    /// The verdict on capability `cap` for a process of mask `mask`.
    pub fn cap_verdict(&self, cap: usize, mask: u8) -> Verdict {
        let slot = cap % CAP_SLOTS;
        let (rule, audit) = fold(
            mask,
            (self.caps.rule[slot], self.caps.audit & (1 << slot) != 0),
            |i| {
                let t = &self.from_slots.get(i)?.caps;
                Some((t.rule[slot], t.audit & (1 << slot) != 0))
            },
        );
        verdict(rule, audit)
    }

    /// What the kernel decides for creating a socket of family number `family` (`raw`:
    /// SOCK_RAW) by a process of mask `mask`.
    pub fn socket_verdict(&self, family: usize, raw: bool, mask: u8) -> Verdict {
        super::NetTable::decide_socket_with(family, raw, |s| self.family_verdict(s, mask))
    }

    /// The verdict of family slot `slot` (the raw slot for raw sockets) for a process of mask
    /// `mask`, before raw and family are combined.
    fn family_verdict(&self, slot: usize, mask: u8) -> Verdict {
        let base = (
            self.net.family_rule[slot],
            self.net.family_audit & (1 << slot) != 0,
        );
        let (rule, audit) = fold(mask, base, |i| {
            let t = self.from_slots.get(i)?;
            Some((t.net_rule[slot], t.net_audit & (1 << slot) != 0))
        });
        verdict(rule, audit)
    }

    /// Whether any process may have a capability decided (by the rules without `from=` or a
    /// pattern's): the kernel's capable() hook looks only while some policy says so.
    pub fn any_caps(&self) -> bool {
        self.caps.any() || self.from_slots.iter().any(|f| f.caps.any())
    }

    /// The same for socket families, connects and binds.
    pub fn any_net(&self) -> bool {
        self.net.any()
            || self
                .from_slots
                .iter()
                .any(|f| f.net_rule.iter().any(|r| *r != RULE_NONE))
    }

    /// Whether a process of mask `mask` is refused executing the program at `path` because
    /// allow-lists of its `from=` patterns hold it and the program is not of them
    /// (bpf/exec.h: held_exec; executions only, not executable mappings).
    pub fn held_exec(&self, path: &[u8], mask: u8) -> bool {
        mask & self.from_held & !self.exe_mask(path) != 0
    }

    /// Where a walk starts for a process of mask `mask` (or [`FROM_ANY`]).
    pub fn start_for(&self, mask: u8) -> u32 {
        if self.from_tag == 0 {
            self.start
        } else {
            self.walk_from(self.start, &[mask])
        }
    }

    /// The classes that are allow-lists for a process of mask `mask` through allow rules
    /// with `from=` (bit per class).
    pub(super) fn allowlist_for(&self, mask: u8) -> u8 {
        (0..PATH_CLASSES)
            .filter(|&ci| self.from_allow[ci] & mask != 0)
            .fold(0, |m, ci| m | 1 << ci)
    }
}

fn verdict(rule: u32, audit: bool) -> Verdict {
    match rule {
        RULE_NONE => Verdict::Allow,
        r if audit => Verdict::Audit(r),
        r => Verdict::Deny(r),
    }
}

/// A slot's (rule, audit) for a process of mask `mask`: `base` for mask 0; else the strictest
/// of the tables of its bits (`table(i)`; a missing one refuses, failing closed): a refusal
/// wins, then an audit. As bpf/caps.h's from_slot().
pub(super) fn fold(
    mask: u8,
    base: (u32, bool),
    table: impl Fn(usize) -> Option<(u32, bool)>,
) -> (u32, bool) {
    if mask == 0 {
        return base;
    }
    let mut cur = (RULE_NONE, false);
    for i in (0..FROM_MAX).filter(|i| mask & (1 << i) != 0) {
        let (r, audit) = table(i).unwrap_or((RULE_NOT_ALLOWED, false));
        if r == RULE_NONE {
            continue;
        }
        if !audit && (cur.0 == RULE_NONE || cur.1) {
            cur = (r, false);
        } else if audit && cur.0 == RULE_NONE {
            cur = (r, true);
        }
    }
    cur
}

#[cfg(test)]
#[path = "from_tests.rs"]
mod tests;
