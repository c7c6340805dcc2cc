//! `ArmorMode=learn`: what the kernel enforces for a unit that is learning. Its deny rules
//! hold; its allow-lists do not (an allow rule, or one that did not parse, makes no class an
//! allow-list); and an audit rule for everything else, in every class learn mode records,
//! makes each operation a record, which the daemon keeps (`daemon/learn.rs`) instead of
//! writing it to the journal. Pure: the policy in, the policy the kernel gets out.

use super::caps::NAMES;
use super::net::FAMILIES;
use super::rule::{Action, Rule};
use super::{Mode, Policy, Source};

/// The source the learn rules are named by, in records and in `unitarmor show`.
pub const SOURCE: &str = "ArmorMode=learn";

/// The audit rules that record every operation of the classes learn mode records.
pub fn rules() -> Vec<Rule> {
    let caps = NAMES.join(" ");
    let families: Vec<&str> = FAMILIES.iter().map(|(n, _)| *n).collect();
    let lines = [
        "audit read /**".to_string(),
        "audit write /**".to_string(),
        "audit exec /**".to_string(),
        "audit connect tcp:* udp:*".to_string(),
        "audit connect unix:/**".to_string(),
        "audit bind tcp:* udp:*".to_string(),
        format!("audit cap {caps}"),
        format!("audit net {}", families.join(" ")),
    ];
    lines
        .iter()
        .map(|l| {
            Rule::parse(l, None, Source::new(SOURCE, 0))
                .unwrap_or_else(|e| unreachable!("learn rule {l:?}: {e}"))
        })
        .collect()
}

/// Whether `rule` is one of [`rules`] (a record it matched is learned, not journaled).
pub fn is_learn_rule(source: &Source) -> bool {
    source.line == 0 && source.file.as_os_str() == SOURCE
}

/// For a policy in learn mode: drops its allow rules and broken allow classes (no
/// allow-lists) and adds [`rules`] after its own. Other policies are left as they are.
pub fn apply(policy: &mut Policy) {
    if policy.mode != Mode::Learn {
        return;
    }
    policy.rules.retain(|r| r.action != Action::Allow);
    policy.broken_allow.clear();
    policy.rules.extend(rules());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::rule::Class;

    #[test]
    fn learning_keeps_denies_drops_allow_lists_and_audits_the_rest() {
        let mut p = Policy::of(&[
            "deny read /etc/shadow",
            "allow read /etc/app/",
            "allow exec /usr/bin/app",
        ]);
        p.broken_allow.insert(Class::Write);
        let enforced = p.clone();
        apply(&mut p);
        assert_eq!(p, enforced, "only learn mode changes a policy");
        p.mode = Mode::Learn;
        apply(&mut p);
        assert!(p.broken_allow.is_empty());
        assert!(!p.rules.iter().any(|r| r.action == Action::Allow));
        assert_eq!(p.rules[0].to_string(), "deny read /etc/shadow");
        let learned: Vec<String> = p.rules[1..]
            .iter()
            .map(|r| r.class.as_str().to_string())
            .collect();
        for class in ["read", "write", "exec", "connect", "bind", "cap", "net"] {
            assert!(learned.iter().any(|c| c == class), "{class}: {learned:?}");
        }
        assert!(p.rules[1..]
            .iter()
            .all(|r| is_learn_rule(&r.source) && r.action == Action::Audit));
        assert!(!is_learn_rule(&p.rules[0].source));
        assert!(p.is_armored());
    }
}
