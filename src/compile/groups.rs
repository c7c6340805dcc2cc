//! Large policies: one DFA pattern per (class, action) instead of one per rule.
//!
//! The kernel needs only the verdict a path gets in each class (a deny, an allow, an audit),
//! not which rule gave it. Every rule being its own DFA pattern keeps the states of different
//! rules apart even where they decide alike (each `deny read /opt/N/**` its own accepting
//! tail), so 4,000 such rules next to a few globs passed the kernel's 65,536 states and
//! 10,000 were refused. As one alternation per (class, action), the same 10,000 rules compile
//! in about half a second to about 360 accepting states. Policies of more than
//! [`GROUP_ABOVE`] path patterns are compiled so; the kernel then reports the group's first
//! rule, and the daemon finds the rule that matched the event's path with a [`RuleFinder`].
//! Smaller policies keep one pattern per rule, so that the kernel counts each rule's decisions
//! on its own (`unitarmor status --rules`). Pure, like the compiler.

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input, MatchKind, PatternSet};
use serde::{Deserialize, Serialize};

use super::UNIX_CLASS;
use crate::policy::{Action, Policy};

/// Own path patterns above which a policy's rules are grouped.
pub const GROUP_ABOVE: usize = 256;

/// The path rules of one class and action in a grouped policy: the kernel knows them as one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// DFA class (read, write, exec, unix connect).
    pub class: usize,
    pub action: Action,
    /// The rule index the kernel reports for the group: its first rule.
    pub first: u32,
    /// Every rule of the group, in policy order.
    pub rules: Vec<u32>,
}

/// Who a DFA pattern is for: (rule index or implicit rule, DFA class, action).
pub(super) type Owner = (u32, usize, Action);

/// Folds the patterns of the policy's own rules (`owner` index below `own`) into one
/// alternation per (class, action); the implicit ones after them are kept as they are.
pub(super) fn group(
    patterns: Vec<String>,
    owner: Vec<Owner>,
    own: usize,
) -> (Vec<String>, Vec<Owner>, Vec<Group>) {
    let mut groups: Vec<(Group, Vec<String>)> = Vec::new();
    let mut rest = (Vec::new(), Vec::new());
    for (i, (pattern, (rule, class, action))) in patterns.into_iter().zip(owner).enumerate() {
        if i >= own {
            rest.0.push(pattern);
            rest.1.push((rule, class, action));
            continue;
        }
        match groups
            .iter_mut()
            .find(|(g, _)| g.class == class && g.action == action)
        {
            Some((g, p)) => {
                if g.rules.last() != Some(&rule) {
                    g.rules.push(rule);
                }
                p.push(pattern);
            }
            None => groups.push((
                Group {
                    class,
                    action,
                    first: rule,
                    rules: vec![rule],
                },
                vec![pattern],
            )),
        }
    }
    let mut patterns = Vec::new();
    let mut owner = Vec::new();
    let mut out = Vec::new();
    for (g, p) in groups {
        patterns.push(
            p.iter()
                .map(|x| format!("(?:{x})"))
                .collect::<Vec<_>>()
                .join("|"),
        );
        owner.push((g.first, g.class, g.action));
        out.push(g);
    }
    patterns.extend(rest.0);
    owner.extend(rest.1);
    (patterns, owner, out)
}

/// Finds which rule of a grouped policy decided an event: the first rule of the group the
/// kernel named whose pattern matches the event's path, as an ungrouped policy would have said.
pub struct RuleFinder {
    /// Per group: a lazy DFA of its rules' patterns (built as events need its states: no
    /// determinization up front), its cache (kept, so that states found for one event serve
    /// the next), and pattern -> rule.
    groups: Vec<(Group, DFA, Cache, Vec<u32>)>,
}

impl RuleFinder {
    /// The finder for `policy`'s `groups`; an error says why there is none.
    pub fn new(policy: &Policy, groups: &[Group]) -> Result<RuleFinder, String> {
        if groups.is_empty() {
            return Err("the policy has no rule groups".into());
        }
        let mut out = Vec::new();
        for g in groups {
            let mut patterns = Vec::new();
            let mut rule_of = Vec::new();
            for &i in &g.rules {
                let Some(rule) = policy.rules.get(i as usize) else {
                    continue;
                };
                let regexes: Vec<String> = if g.class == UNIX_CLASS {
                    rule.unix_regexes()
                } else {
                    rule.paths().iter().map(|p| p.to_regex()).collect()
                };
                for r in regexes {
                    patterns.push(r);
                    rule_of.push(i);
                }
            }
            let build = |capacity: usize| {
                DFA::builder()
                    .configure(
                        DFA::config()
                            .match_kind(MatchKind::All)
                            .cache_capacity(capacity),
                    )
                    .syntax(
                        syntax::Config::new()
                            .unicode(false)
                            .utf8(false)
                            .dot_matches_new_line(true),
                    )
                    .thompson(thompson::Config::new().nfa_size_limit(None))
                    .build_many(&patterns)
                    .map_err(|e| e.to_string())
            };
            // The cache's minimum grows with the patterns (17 MiB for 32,768 short ones): a
            // first build says what it needs, and the finder gets that and 8 MiB of room.
            let re = match build(8 << 20) {
                Ok(re) => re,
                Err(need) => {
                    let minimum = need
                        .split(|c: char| !c.is_ascii_digit())
                        .filter_map(|n| n.parse::<usize>().ok())
                        .max()
                        .ok_or_else(|| need.clone())?;
                    build(minimum + (8 << 20))?
                }
            };
            let cache = re.create_cache();
            out.push((g.clone(), re, cache, rule_of));
        }
        Ok(RuleFinder { groups: out })
    }

    /// The rule of the group whose first rule is `first`, in DFA class `class`, that `path`
    /// matches first; None if `first` is no group's, or no pattern matches (a path the event
    /// could not carry whole).
    pub fn find(&mut self, first: u32, class: usize, path: &[u8]) -> Option<u32> {
        let (_, re, cache, rule_of) = self
            .groups
            .iter_mut()
            .find(|(g, _, _, _)| g.first == first && g.class == class)?;
        let mut set = PatternSet::new(re.pattern_len());
        re.try_which_overlapping_matches(
            cache,
            &Input::new(path).anchored(Anchored::Yes),
            &mut set,
        )
        .ok()?;
        set.iter().map(|p| rule_of[p.as_usize()]).min()
    }

    /// How many rules the group whose first rule is `first` holds, in class `class`.
    pub fn group_size(&self, first: u32, class: usize) -> Option<usize> {
        self.groups
            .iter()
            .find(|(g, _, _, _)| g.first == first && g.class == class)
            .map(|(g, _, _, _)| g.rules.len())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{compile, compile_impl, Verdict, RULE_NOT_ALLOWED};
    use super::*;
    use crate::policy::Class;

    /// `n` rules: a few with globs, of each action and class, then `deny read /opt/N/**`.
    fn big(n: usize) -> Policy {
        let mut rules: Vec<String> = [
            "deny read /etc/shadow /home/*/.ssh/**",
            "allow read /usr/ /etc/ /opt/ /srv/",
            "audit read /srv/www/**",
            "deny write /var/log/*.log?",
            "allow write /var/lib/app/ /tmp/",
            "allow exec /usr/bin/* /usr/lib/**",
            "deny exec /tmp/**",
            "deny connect unix:/run/secret.sock",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        rules.extend((rules.len()..n).map(|k| format!("deny read /opt/{k}/**")));
        let refs: Vec<&str> = rules.iter().map(String::as_str).collect();
        Policy::of(&refs)
    }

    #[test]
    fn only_policies_past_the_threshold_are_grouped() {
        assert!(compile(&big(GROUP_ABOVE - 20)).unwrap().groups.is_empty());
        let t = compile(&big(GROUP_ABOVE + 10)).unwrap();
        let deny_read = t
            .groups
            .iter()
            .find(|g| g.class == 0 && g.action == Action::Deny)
            .unwrap();
        assert_eq!(deny_read.first, 0);
        assert_eq!(deny_read.rules.len(), GROUP_ABOVE + 10 - 7);
    }

    #[test]
    fn a_grouped_policy_decides_as_an_ungrouped_one() {
        let p = big(600);
        let grouped = compile(&p).unwrap();
        let single = compile_impl(&p, None, true, false).unwrap();
        assert!(!grouped.groups.is_empty() && single.groups.is_empty());
        let mut finder = RuleFinder::new(&p, &grouped.groups).unwrap();
        let cases = [
            (Class::Read, "/etc/shadow"),
            (Class::Read, "/home/u/.ssh/id"),
            (Class::Read, "/etc/passwd"),
            (Class::Read, "/srv/www/index.html"),
            (Class::Read, "/opt/599/x"),
            (Class::Read, "/opt/42/a/b"),
            (Class::Read, "/opt/600/x"),
            (Class::Read, "/var/secret"),
            (Class::Write, "/var/log/app.log1"),
            (Class::Write, "/var/lib/app/state"),
            (Class::Write, "/etc/passwd"),
            (Class::Exec, "/usr/bin/app"),
            (Class::Exec, "/tmp/x"),
            (Class::Exec, "/opt/tool"),
            (Class::Connect, "/run/secret.sock"),
        ];
        for (class, path) in cases {
            let want = single.decide(class, path.as_bytes());
            let got = grouped.decide(class, path.as_bytes());
            let ci = match class {
                Class::Read => 0,
                Class::Write => 1,
                Class::Exec => 2,
                _ => UNIX_CLASS,
            };
            // The same verdict; the rule the daemon names is the one the ungrouped policy
            // names (the kernel's, through the finder).
            let mut named = |v: Verdict| match v {
                Verdict::Deny(r) if r != RULE_NOT_ALLOWED && r < super::super::RULE_PROTECT => {
                    Verdict::Deny(finder.find(r, ci, path.as_bytes()).unwrap_or(r))
                }
                Verdict::Audit(r) => {
                    Verdict::Audit(finder.find(r, ci, path.as_bytes()).unwrap_or(r))
                }
                v => v,
            };
            assert_eq!(named(got), want, "{class:?} {path}");
        }
    }

    #[test]
    fn ten_thousand_rules_compile_to_a_small_table() {
        let t = compile(&big(10_000)).unwrap();
        assert!(
            t.accept.len() < 2_000,
            "{} accepting states",
            t.accept.len()
        );
        let mut finder = RuleFinder::new(&big(10_000), &t.groups).unwrap();
        assert_eq!(t.decide(Class::Read, b"/opt/9999/f"), Verdict::Deny(0));
        assert_eq!(finder.find(0, 0, b"/opt/9999/f"), Some(9999));
        assert_eq!(finder.group_size(0, 0), Some(10_000 - 7));
    }
}
