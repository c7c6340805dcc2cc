//! Warnings about policies that parse but probably do not say what their author meant:
//! duplicate rules, allow or audit rules that a deny rule makes pointless, and rules of
//! classes this version does not enforce yet.

use regex_automata::dfa::{dense, Automaton};
use regex_automata::util::syntax;
use regex_automata::Input;

use super::diag::Diagnostics;
use super::rule::Action;
use super::{Mode, PathPattern, Policy};

/// Whether `outer` matches every path `inner` stands for, judged on `inner`'s most general
/// representative (its text as a path). Exact for literal patterns, a good guess otherwise.
fn covers(outer: &PathPattern, inner: &PathPattern) -> bool {
    let Ok(dfa) = dense::Builder::new()
        .syntax(
            syntax::Config::new()
                .unicode(false)
                .utf8(false)
                .dot_matches_new_line(true),
        )
        .build(&outer.to_regex())
    else {
        return false;
    };
    let probe = inner.as_str().trim_end_matches('/');
    let probe = if probe.is_empty() { "/" } else { probe };
    let subtree_ok = !inner.as_str().ends_with('/')
        || outer.as_str().ends_with('/')
        || outer.as_str().ends_with("/**");
    dfa.try_search_fwd(&Input::new(probe))
        .is_ok_and(|m| m.is_some())
        && subtree_ok
}

/// Adds warnings for `policy` to `diags`.
pub fn lint(policy: &Policy, diags: &mut Diagnostics) {
    if policy.configured && policy.mode == Mode::Off && !policy.rules.is_empty() {
        if let Some(r) = policy.rules.first() {
            diags.warning(&r.source, "ArmorMode=off: no rule of this unit is enforced");
        }
    }
    for (i, r) in policy.rules.iter().enumerate() {
        if !r.class.is_path() {
            diags.warning(
                &r.source,
                format!(
                    "'{}' rules are parsed but not enforced by this version",
                    r.class.as_str()
                ),
            );
        } else if r.from.is_some() {
            diags.warning(
                &r.source,
                "from= is parsed but not enforced by this version; this rule is ignored",
            );
        }
        for earlier in &policy.rules[..i] {
            if earlier.action == r.action
                && earlier.class == r.class
                && earlier.target == r.target
                && earlier.from == r.from
            {
                diags.warning(
                    &r.source,
                    format!("duplicate of the rule at {}", earlier.source),
                );
            }
        }
        if !r.class.is_path() || r.action == Action::Deny || r.from.is_some() {
            continue;
        }
        for p in r.paths() {
            let denied_by = policy.rules.iter().find(|d| {
                d.action == Action::Deny
                    && d.class == r.class
                    && d.from.is_none()
                    && d.paths().iter().any(|dp| covers(dp, p))
            });
            if let Some(d) = denied_by {
                diags.warning(
                    &r.source,
                    format!(
                        "'{} {} {p}' has no effect: 'deny {}' at {} covers it (deny wins)",
                        r.action.as_str(),
                        r.class.as_str(),
                        r.class.as_str(),
                        d.source
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Rule, Source};

    fn lint_rules(rules: &[&str]) -> Vec<String> {
        let rules = rules
            .iter()
            .enumerate()
            .map(|(i, r)| Rule::parse(r, None, Source::new("/p", i + 1)).unwrap())
            .collect();
        let mut d = Diagnostics::default();
        lint(
            &Policy {
                mode: Mode::Enforce,
                rules,
                configured: true,
            },
            &mut d,
        );
        d.0.iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn shadowed_allow() {
        let w = lint_rules(&[
            "deny read /etc/",
            "allow read /etc/passwd",
            "allow read /usr/",
        ]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with(
            "/p:2: warning: 'allow read /etc/passwd' has no effect: 'deny read' at /p:1"
        ));
    }

    #[test]
    fn audit_under_deny_and_duplicates() {
        let w = lint_rules(&[
            "deny write /srv/",
            "audit write /srv/www/**",
            "deny write /srv/",
        ]);
        assert!(
            w.iter()
                .any(|m| m.starts_with("/p:2: warning: 'audit write /srv/www/**' has no effect")),
            "{w:?}"
        );
        assert!(
            w.iter()
                .any(|m| m.starts_with("/p:3: warning: duplicate of the rule at /p:1")),
            "{w:?}"
        );
    }

    #[test]
    fn unenforced_classes_are_named() {
        let w = lint_rules(&["deny cap sys_admin", "deny read /x from=/usr/bin/a"]);
        assert!(w[0].contains("'cap' rules are parsed but not enforced"));
        assert!(w[1].contains("from= is parsed but not enforced"));
    }

    #[test]
    fn clean_policy_is_quiet() {
        assert!(lint_rules(&[
            "deny write /etc/",
            "allow exec /usr/bin/app",
            "audit read /srv/**"
        ])
        .is_empty());
    }
}
