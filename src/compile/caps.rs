//! `cap` rules compiled to one verdict per capability, so that the kernel decides a capability
//! check with one table read (bpf/caps.h). Pure, like the rest of the compiler.
//!
//! The classes' usual semantics, resolved here rather than in the kernel: a `deny` naming the
//! capability wins; otherwise, once any `allow cap` rule exists, a capability no allow rule
//! names is refused ([`RULE_NOT_ALLOWED`]); otherwise an `audit` rule naming it reports it.

use super::{RULE_NONE, RULE_NOT_ALLOWED};
use crate::policy::{Action, Class, Policy, Target};

/// Capability slots in the kernel's table (Linux has 41; the number is masked to this).
pub const CAP_SLOTS: usize = 64;

/// Per capability number: the rule that decides it ([`RULE_NONE`]: not decided), and which
/// of those rules report and allow rather than refuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapTable {
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

    /// The table of `policy`'s cap rules. Rules with `from=` are not enforced (the caller
    /// reports them), but an `allow` with `from=` still makes the class an allow-list, as does
    /// an `allow cap` rule that did not parse: allowing less than written, never more.
    pub fn of(policy: &Policy) -> Self {
        let cap_rules = || {
            policy
                .rules
                .iter()
                .enumerate()
                .filter(|(_, r)| r.class == Class::Cap)
        };
        let allowlist = policy.broken_allow.contains(&Class::Cap)
            || cap_rules().any(|(_, r)| r.action == Action::Allow);
        let names = |action: Action, cap: usize| {
            cap_rules()
                .filter(|(_, r)| r.action == action && r.from.is_none())
                .find(|(_, r)| matches!(&r.target, Target::Caps(v) if v.iter().any(|c| c.0 as usize == cap)))
                .map(|(i, _)| i as u32)
        };
        let mut t = CapTable::default();
        for cap in 0..crate::policy::caps::NAMES.len() {
            if let Some(i) = names(Action::Deny, cap) {
                t.rule[cap] = i;
            } else if allowlist && names(Action::Allow, cap).is_none() {
                t.rule[cap] = RULE_NOT_ALLOWED;
            } else if let Some(i) = names(Action::Audit, cap) {
                t.rule[cap] = i;
                t.audit |= 1 << cap;
            }
        }
        // Numbers Linux may add later are refused by an allow-list, as any unnamed one.
        if allowlist {
            for r in &mut t.rule[crate::policy::caps::NAMES.len()..] {
                *r = RULE_NOT_ALLOWED;
            }
        }
        t
    }
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
    fn from_is_not_enforced_but_keeps_the_allow_list() {
        let t = table(&["allow cap chown from=/usr/bin/app"]);
        assert_eq!(
            t.rule[CHOWN], RULE_NOT_ALLOWED,
            "allowing less than written"
        );
        let t = table(&["deny cap chown from=/usr/bin/app"]);
        assert!(
            !t.any(),
            "a deny with from= is reported, not applied to every process"
        );
    }
}
