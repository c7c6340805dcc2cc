//! The policy model: what a unit's `[X-Armor]` configuration means, as one plain data type.
//!
//! Text goes in through [`dropin`] (unit files and drop-ins), [`named`] (TOML policies
//! included with `@NAME`) and [`granted`] (`@systemd`: what the unit's own settings grant); [`resolve`] finds and merges a unit's files in systemd's order; the
//! result is a [`Policy`] that the compiler, `show`, `status` and the journal all read. Nothing
//! here touches the kernel, D-Bus or the journal.

pub mod caps;
pub mod diag;
pub mod dropin;
pub mod granted;
pub mod learn;
pub mod lint;
pub mod listings;
pub mod named;
pub mod net;
pub mod pattern;
pub mod protect;
pub mod resolve;
pub mod rule;
pub mod saved;
pub mod specifiers;
pub mod user;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use diag::{Diagnostic, Diagnostics, Severity};
pub use pattern::PathPattern;
pub use protect::Protection;
pub use rule::{Action, Class, Rule, Target};

/// Where a setting came from: a file and a 1-based line.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Source {
    pub file: Arc<PathBuf>,
    pub line: usize,
}

impl Source {
    pub fn new(file: impl Into<PathBuf>, line: usize) -> Self {
        Source {
            file: Arc::new(file.into()),
            line,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// `ArmorMode=`: what the kernel does with a deny.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Denied operations fail with EACCES and are logged.
    #[default]
    Enforce,
    /// Denied operations are logged as "would deny" and go on.
    Audit,
    /// Deny rules hold; allow-lists do not, and every other operation is recorded for
    /// `unitarmor suggest` (see [`learn`]).
    Learn,
    /// The unit is not armored.
    Off,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "enforce" => Some(Mode::Enforce),
            "audit" => Some(Mode::Audit),
            "learn" => Some(Mode::Learn),
            "off" => Some(Mode::Off),
            _ => None,
        }
    }

    /// The stricter of two modes that both apply: enforce over learn (which enforces deny
    /// rules) over audit over off.
    pub fn strictest(self, other: Mode) -> Mode {
        let rank = |m: Mode| match m {
            Mode::Off => 0,
            Mode::Audit => 1,
            Mode::Learn => 2,
            Mode::Enforce => 3,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Audit => "audit",
            Mode::Learn => "learn",
            Mode::Off => "off",
        }
    }
}

/// A unit's effective policy: the merge of its fragment, drop-ins and included named policies.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Policy {
    pub mode: Mode,
    /// Rules in the order they were written (includes expanded in place).
    pub rules: Vec<Rule>,
    /// Whether any file had an `[X-Armor]` section at all: a unit with none is not armored.
    pub configured: bool,
    /// Implicit protections lifted with `ArmorExempt=` (see [`protect`]).
    pub exempt: BTreeSet<Protection>,
    /// Where each protection in [`exempt`](Policy::exempt) was lifted: the first
    /// `ArmorExempt=` that named it since the last reset. For `check` and `show`.
    #[serde(skip)]
    pub exempt_sources: BTreeMap<Protection, Source>,
    /// Classes of `allow` rules that did not parse (see [`Rule::broken_allow_class`]): each
    /// stays an allow-list, so a broken rule never widens the unit (the error is reported
    /// with the rule's line). Cleared by an empty `ArmorPolicy=` like the rules.
    pub broken_allow: BTreeSet<Class>,
    /// `ArmorPolicy=` lines that did not parse or include (each reported with its line). A unit
    /// whose every rule is broken is still armored: its implicit protections hold. Cleared by an
    /// empty `ArmorPolicy=` like the rules.
    pub broken: usize,
    /// Files that could not be read (an I/O error, or larger than unitarmor reads): what they
    /// say is unknown, so the unit counts as armored, and a daemon with no last good policy
    /// for it refuses it everything (never silently unarmored by a file it cannot read).
    pub unreadable: Vec<PathBuf>,
}

impl Policy {
    /// Whether `ArmorExempt=` lifted the implicit protection `p` for this unit.
    pub fn is_exempt(&self, p: Protection) -> bool {
        self.exempt.contains(&p)
    }

    /// The implicit protections that apply: every one not lifted, in [`Protection::ALL`]'s
    /// order. Empty when the unit is not armored.
    pub fn protections(&self) -> Vec<Protection> {
        if !self.is_armored() {
            return Vec::new();
        }
        Protection::ALL
            .into_iter()
            .filter(|p| !self.is_exempt(*p))
            .collect()
    }

    /// A policy of `rules` (each a rule line, sourced at `/p.conf:N`), for tests.
    #[cfg(test)]
    pub fn of(rules: &[&str]) -> Policy {
        let rules = rules
            .iter()
            .enumerate()
            .map(|(i, r)| Rule::parse(r, None, Source::new("/p.conf", i + 1)).unwrap())
            .collect();
        Policy {
            rules,
            configured: true,
            ..Default::default()
        }
    }

    /// True when the kernel should enforce or audit anything for this unit: it has rules, or
    /// rules that did not parse (never silently unarmored by a typo).
    /// A file that could not be read counts: it may say anything.
    pub fn is_armored(&self) -> bool {
        !self.unreadable.is_empty()
            || (self.configured
                && self.mode != Mode::Off
                && (self.mode == Mode::Learn
                    || !self.rules.is_empty()
                    || !self.broken_allow.is_empty()
                    || self.broken > 0))
    }
}
