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

use super::{Accept, CompileError, Tables, PATH_CLASSES};
use crate::policy::{Action, Class, Policy, Rule};

/// Most distinct `from=` patterns one policy may have: a mask is one byte below
/// [`FROM_QUERY`].
pub const FROM_MAX: usize = 7;
/// The byte before an executable's path that asks which `from=` patterns it matches (never
/// a mask).
pub const FROM_QUERY: u8 = 0x80;
/// The byte before a path that every rule matches, whatever its `from=`: a rename or link
/// compares its two names so, since the file keeps its rules for every executable.
pub const FROM_ANY: u8 = 0x81;
/// The pseudo class of query patterns in the compiler's pattern owners.
pub(super) const FROM_CLASS: usize = PATH_CLASSES;

/// The `from=` patterns of one policy's path rules, in order of first appearance.
pub(super) struct Froms(Vec<String>);

/// Whether `rule`'s `from=` is decided with the path tables (its class is a path class).
fn path_rule(rule: &Rule) -> bool {
    matches!(rule.class, Class::Read | Class::Write | Class::Exec)
        || (rule.class == Class::Connect && rule.is_unix())
}

impl Froms {
    /// The `from=` patterns of `policy`'s path rules; too many is an error naming the limit.
    pub fn of(policy: &Policy) -> Result<Froms, CompileError> {
        let mut v: Vec<String> = Vec::new();
        for r in policy.rules.iter().filter(|r| path_rule(r)) {
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

    /// The bit of `rule`'s `from=` pattern, if it has one the tables decide.
    pub fn bit(&self, rule: &Rule) -> Option<u32> {
        let text = rule.from.as_ref().filter(|_| path_rule(rule))?.to_regex();
        self.0.iter().position(|f| *f == text).map(|i| i as u32)
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
    /// [`Accept::from`].
    pub fn queries(&self, patterns: &mut Vec<String>, owner: &mut Vec<(u32, usize, Action)>) {
        for (i, f) in self.0.iter().enumerate() {
            let body = f.strip_prefix('^').unwrap_or(f);
            patterns.push(format!(r"^\x{FROM_QUERY:02x}(?:{body})"));
            owner.push((i as u32, FROM_CLASS, Action::Allow));
        }
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
