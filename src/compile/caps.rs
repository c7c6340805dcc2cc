//! `cap` rules compiled to one verdict per capability, so that the kernel decides a capability
//! check with one table read (bpf/caps.h). Pure, like the rest of the compiler.
//!
//! The classes' usual semantics, resolved here rather than in the kernel: a `deny` naming the
//! capability wins; otherwise, once any `allow cap` rule exists, a capability no allow rule
//! names is refused ([`RULE_NOT_ALLOWED`]); otherwise an `audit` rule naming it reports it.

use serde::{Deserialize, Serialize};

use super::{RULE_NONE, RULE_NOT_ALLOWED};
use crate::policy::{Action, Class, Policy, Rule, Target};

/// Capability slots in the kernel's table (Linux has 41; the number is masked to this).
pub const CAP_SLOTS: usize = 64;

/// Per capability number: the rule that decides it ([`RULE_NONE`]: not decided), and which
/// of those rules report and allow rather than refuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapTable {
    #[serde(with = "super::arrays")]
    pub rule: [u32; CAP_SLOTS],
    /// Bit per capability whose rule is an `audit` rule.
    pub audit: u64,
}

impl Default for CapTable {
    fn default() -> Self {
        CapTable {
            rule: [RULE_NONE; CAP_SLOTS],
            audit: 0,
        }
    }
}

impl CapTable {
    /// Refuses every capability (a unit whose policy cannot be applied, see `refuse_all`).
    pub fn refuse_all() -> Self {
        CapTable {
            rule: [RULE_NOT_ALLOWED; CAP_SLOTS],
            audit: 0,
        }
    }

    /// Whether any capability is decided at all.
    pub fn any(&self) -> bool {
        self.rule.iter().any(|r| *r != RULE_NONE)
    }

    /// The table of `policy`'s cap rules for a process no `from=` pattern names (rules with
    /// `from=` are for others: see [`CapTable::of_for`]). An `allow cap` rule that did not
    /// parse makes the class an allow-list: allowing less than written, never more.
    pub fn of(policy: &Policy) -> Self {
        Self::of_for(policy, |r| r.from.is_none())
    }

    /// The table of the rules `applies` says hold for a process (its `from=` ones among them).
    pub fn of_for(policy: &Policy, applies: impl Fn(&Rule) -> bool) -> Self {
        let (rule, audit) = slot_verdicts(
            policy,
            Class::Cap,
            |t, cap| matches!(t, Target::Caps(v) if v.iter().any(|c| c.0 as usize == cap)),
            |_| false,
            applies,
        );
        CapTable { rule, audit }
    }
}

/// One verdict per slot (a capability, an address family) for the rules of `class`, as the
/// kernel reads them in one lookup: the first `deny` naming the slot wins; otherwise, once any
/// `allow` of the class exists (or one that did not parse), a slot no allow rule names is
/// refused ([`RULE_NOT_ALLOWED`]) unless `always_allowed` says it stays; otherwise the first
/// `audit` naming it reports it (its bit in the returned mask). Only the rules `applies` says
/// hold for the process count (by their `from=`). `names(target, slot)`: whether a rule's
/// target names the slot.
pub(super) fn slot_verdicts(
    policy: &Policy,
    class: Class,
    names: impl Fn(&Target, usize) -> bool,
    always_allowed: impl Fn(usize) -> bool,
    applies: impl Fn(&Rule) -> bool,
) -> ([u32; CAP_SLOTS], u64) {
    let rules = || {
        policy
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.class == class && applies(r))
    };
    let allowlist =
        policy.broken_allow.contains(&class) || rules().any(|(_, r)| r.action == Action::Allow);
    let first = |action: Action, slot: usize| {
        rules()
            .filter(|(_, r)| r.action == action)
            .find(|(_, r)| names(&r.target, slot))
            .map(|(i, _)| i as u32)
    };
    let (mut rule, mut audit) = ([RULE_NONE; CAP_SLOTS], 0u64);
    for (slot, r) in rule.iter_mut().enumerate() {
        if let Some(i) = first(Action::Deny, slot) {
            *r = i;
        } else if allowlist && !always_allowed(slot) && first(Action::Allow, slot).is_none() {
            // Numbers Linux may add later too, as any unnamed one.
            *r = RULE_NOT_ALLOWED;
        } else if let Some(i) = first(Action::Audit, slot) {
            *r = i;
            audit |= 1 << slot;
        }
    }
    (rule, audit)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHOWN: usize = 0;
    const DAC_OVERRIDE: usize = 1;
    const FOWNER: usize = 3;
    const NET_RAW: usize = 13;
    const SYS_ADMIN: usize = 21;

    fn table(rules: &[&str]) -> CapTable {
        CapTable::of(&Policy::of(rules))
    }

    #[test]
    fn deny_names_its_capabilities_only() {
        let t = table(&["deny read /etc/shadow", "deny cap net_raw CAP_SYS_ADMIN"]);
        assert_eq!(t.rule[NET_RAW], 1);
        assert_eq!(t.rule[SYS_ADMIN], 1);
        assert_eq!(t.rule[CHOWN], RULE_NONE);
        assert_eq!(t.audit, 0);
        assert!(t.any());
        assert!(
            !table(&["deny read /etc/shadow"]).any(),
            "no cap rule, nothing decided"
        );
    }

    #[test]
    fn allow_makes_an_allow_list_and_deny_wins() {
        let t = table(&["allow cap chown net_raw", "deny cap net_raw"]);
        assert_eq!(t.rule[CHOWN], RULE_NONE, "allowed");
        assert_eq!(t.rule[NET_RAW], 1, "deny wins over allow");
        assert_eq!(t.rule[DAC_OVERRIDE], RULE_NOT_ALLOWED);
        assert_eq!(t.rule[63], RULE_NOT_ALLOWED, "numbers past today's too");
    }

    #[test]
    fn audit_reports_what_nothing_refuses() {
        let t = table(&["audit cap fowner chown", "deny cap chown"]);
        assert_eq!(t.rule[FOWNER], 0);
        assert_eq!(t.audit, 1 << FOWNER, "chown is denied, not audited");
        assert_eq!(t.rule[CHOWN], 1);
        let t = table(&["allow cap chown", "audit cap chown fowner"]);
        assert_eq!(t.rule[CHOWN], 1, "allowed and audited");
        assert_eq!(
            t.rule[FOWNER], RULE_NOT_ALLOWED,
            "not allowed: refused, not audited"
        );
    }

    #[test]
    fn from_rules_are_for_their_processes_only() {
        // The table of a process no from= names (compile/from.rs makes the others').
        let t = table(&["allow cap chown from=/usr/bin/app"]);
        assert!(!t.any(), "no allow-list for other processes");
        let t = table(&["deny cap chown from=/usr/bin/app"]);
        assert!(
            !t.any(),
            "a deny with from= is not applied to every process"
        );
        let t = CapTable::of_for(&Policy::of(&["allow cap chown from=/usr/bin/app"]), |_| {
            true
        });
        assert_eq!(t.rule[FOWNER], RULE_NOT_ALLOWED, "app's allow-list");
    }
}
