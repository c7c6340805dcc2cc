//! Warnings about policies that parse but probably do not say what their author meant:
//! duplicate rules, allow or audit rules that a deny rule makes pointless, rules of classes
//! this version does not enforce yet, lifted implicit protections, allowed sockets of the
//! service manager and the bus, and exec allow-lists that would keep programs from starting.

use std::collections::HashMap;

use regex_automata::dfa::{dense, Automaton};
use regex_automata::nfa::thompson::{self, WhichCaptures};
use regex_automata::util::syntax;
use regex_automata::{hybrid, Input, MatchKind, PatternSet};

use super::diag::Diagnostics;
use super::net::SocketPattern;
use super::rule::{Action, Class, Rule};
use super::{Mode, PathPattern, Policy, Protection};

/// Dynamic loaders an exec allow-list must allow (any one of them) for dynamically linked
/// programs to start: mapping code counts as exec.
pub const LOADERS: [&str; 3] = [
    "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
    "/usr/lib64/ld-linux-x86-64.so.2",
    "/usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1",
];
/// C libraries, likewise.
pub const LIBCS: [&str; 3] = [
    "/usr/lib/x86_64-linux-gnu/libc.so.6",
    "/usr/lib64/libc.so.6",
    "/usr/lib/aarch64-linux-gnu/libc.so.6",
];

/// Whether the anchored regex `re` (in [`PathPattern::to_regex`]'s dialect, as the compiler
/// builds it) matches `text`.
pub(crate) fn matches(re: &str, text: &str) -> bool {
    dense::Builder::new()
        .syntax(syntax_config())
        .build(re)
        .is_ok_and(|dfa| {
            dfa.try_search_fwd(&Input::new(text))
                .is_ok_and(|m| m.is_some())
        })
}

/// The regex dialect of [`PathPattern::to_regex`]: bytes, not Unicode.
fn syntax_config() -> syntax::Config {
    syntax::Config::new()
        .unicode(false)
        .utf8(false)
        .dot_matches_new_line(true)
}

/// A pattern's most general representative: its text as a path, without a trailing `/`.
fn probe(p: &PathPattern) -> &str {
    let t = p.as_str().trim_end_matches('/');
    if t.is_empty() {
        "/"
    } else {
        t
    }
}

/// Whether `outer` matches every path `inner` stands for, judged on `inner`'s most general
/// representative (its text as a path). Exact for literal patterns, a good guess otherwise.
fn covers(outer: &PathPattern, inner: &PathPattern) -> bool {
    subtree_ok(outer, inner) && matches(&outer.to_regex(), probe(inner))
}

/// A pattern for a whole subtree (`dir/`) is covered only by one for a subtree too.
fn subtree_ok(outer: &PathPattern, inner: &PathPattern) -> bool {
    !inner.as_str().ends_with('/')
        || outer.as_str().ends_with('/')
        || outer.as_str().ends_with("/**")
}

/// [`covers`] for socket patterns; an abstract name never covers a path or the reverse.
fn covers_socket(outer: &SocketPattern, inner: &SocketPattern) -> bool {
    match (outer, inner) {
        (SocketPattern::Path(o), SocketPattern::Path(i)) => covers(o, i),
        (SocketPattern::Abstract(_), SocketPattern::Abstract(_)) => {
            matches(&outer.to_regex(), &inner.text())
        }
        _ => false,
    }
}

/// Whether some path matches both patterns (a guess: each one's representative is tried
/// against the other).
fn overlaps(a: &PathPattern, b: &PathPattern) -> bool {
    matches(&a.to_regex(), probe(b)) || matches(&b.to_regex(), probe(a))
}

/// Port rules hold at connect() and bind(); a process with CAP_NET_ADMIN can redirect traffic
/// after that (NAT rules, routes, a tun device), so a unit with port rules should not have it.
fn net_admin(policy: &Policy, diags: &mut Diagnostics) {
    const CAP_NET_ADMIN: usize = 12;
    let Some(first) = policy
        .rules
        .iter()
        .find(|r| r.class == Class::Bind || (r.class == Class::Connect && !r.is_unix()))
    else {
        return;
    };
    if crate::compile::CapTable::of(policy).rule[CAP_NET_ADMIN] == crate::compile::RULE_NONE {
        diags.warning(
            &first.source,
            "a process with CAP_NET_ADMIN can redirect connections past connect and bind rules \
             (NAT rules, routes, a tun device): add 'deny cap net_admin' or drop it with \
             CapabilityBoundingSet=",
        );
    }
}

/// Adds warnings for `policy` to `diags`.
pub fn lint(policy: &Policy, diags: &mut Diagnostics) {
    net_admin(policy, diags);
    if policy.configured && policy.mode == Mode::Off && !policy.rules.is_empty() {
        if let Some(r) = policy.rules.first() {
            diags.warning(&r.source, "ArmorMode=off: no rule of this unit is enforced");
        }
    }
    exemptions(policy, diags);
    let mut seen: HashMap<_, Vec<&Rule>> = HashMap::new();
    let mut denies = DenyIndex::default();
    for (i, r) in policy.rules.iter().enumerate() {
        if r.from.is_some() && r.action == Action::Deny {
            diags.warning(
                &r.source,
                "a deny rule with from= holds only for that executable's path: a copy of the program, or the dynamic loader running it, is another executable (prefer an allow-list)",
            );
        }
        if let Some(f) = r.from.as_ref().filter(|_| r.action == Action::Allow) {
            let first = policy.rules[..i]
                .iter()
                .all(|e| e.action != Action::Allow || e.from.as_ref() != Some(f));
            let execs = policy.rules.iter().any(|e| {
                e.action == Action::Allow && e.class == Class::Exec && e.from.as_ref() == Some(f)
            });
            if first && !execs {
                diags.warning(
                    &r.source,
                    format!(
                        "processes running {f} have rules of their own (allow-lists, or other units they may signal or trace), but code mapped into one (LD_PRELOAD or LD_LIBRARY_PATH set by whoever runs it) runs with those rules: add an `allow exec ... from={f}` list of the program and its libraries"
                    ),
                );
            }
        }
        // Every earlier rule the same as this one (a map of the first ones seen: 10,000 rules
        // compared pairwise took seconds).
        let key = (r.action, r.class, &r.target, &r.from);
        for earlier in seen.get(&key).into_iter().flatten() {
            diags.warning(
                &r.source,
                format!("duplicate of the rule at {}", earlier.source),
            );
        }
        seen.entry(key).or_default().push(r);
        if r.action == Action::Allow && r.is_unix() && !policy.is_exempt(Protection::Bus) {
            bus_sockets(r, diags);
        }
        if r.action != Action::Deny && r.from.is_none() {
            shadowed(policy, r, &mut denies, diags);
        }
    }
    exec_allow_list(policy, diags);
}

/// One warning per lifted protection, at the `ArmorExempt=` that lifted it.
fn exemptions(policy: &Policy, diags: &mut Diagnostics) {
    for p in &policy.exempt {
        let Some(src) = policy
            .exempt_sources
            .get(p)
            .or_else(|| policy.rules.first().map(|r| &r.source))
        else {
            continue;
        };
        diags.warning(
            src,
            format!(
                "ArmorExempt={p}: this unit may {}; {}",
                p.lifted(),
                p.reason()
            ),
        );
    }
}

/// An allow or audit rule that a deny rule of its class covers has no effect.
fn shadowed<'p>(policy: &'p Policy, r: &Rule, index: &mut DenyIndex<'p>, diags: &mut Diagnostics) {
    let denies = || {
        policy
            .rules
            .iter()
            .filter(|d| d.action == Action::Deny && d.class == r.class && d.from.is_none())
    };
    let mut found: Vec<(String, &Rule)> = Vec::new();
    if r.class.is_path() {
        for p in r.paths() {
            if let Some(d) = index.first_covering(policy, r.class, p) {
                found.push((p.to_string(), d));
            }
        }
    } else if r.is_unix() {
        for s in r.sockets() {
            if let Some(d) = denies().find(|d| d.sockets().iter().any(|ds| covers_socket(ds, s))) {
                found.push((s.to_string(), d));
            }
        }
    }
    for (what, d) in found {
        diags.warning(
            &r.source,
            format!(
                "'{} {} {what}' has no effect: 'deny {}' at {} covers it (deny wins)",
                r.action.as_str(),
                r.class.as_str(),
                r.class.as_str(),
                d.source
            ),
        );
    }
}

/// The lazy DFA's cache for a class's deny patterns: its states hold sets of NFA states, large
/// where thousands of patterns start alike.
const CACHE_BYTES: usize = 32 << 20;

/// The path patterns of each class's deny rules (without `from=`), as one regex of many
/// patterns built at the first question: asking each allow path against each deny pattern
/// built a DFA per pair, seconds for a policy of 10,000 rules.
#[derive(Default)]
struct DenyIndex<'p> {
    classes: HashMap<Class, Option<ClassDenies<'p>>>,
}

struct ClassDenies<'p> {
    /// A lazy DFA: a backtracking or PikeVM search of 10,000 patterns at once would need
    /// gigabytes of state.
    re: hybrid::dfa::DFA,
    cache: hybrid::dfa::Cache,
    /// For each pattern of `re`, its rule (in the policy's order) and its path pattern.
    owners: Vec<(usize, &'p Rule, &'p PathPattern)>,
}

impl<'p> DenyIndex<'p> {
    /// The first deny rule of `class` (in the policy's order) that [`covers`] `inner`.
    fn first_covering(
        &mut self,
        policy: &'p Policy,
        class: Class,
        inner: &PathPattern,
    ) -> Option<&'p Rule> {
        let denies = self
            .classes
            .entry(class)
            .or_insert_with(|| ClassDenies::of(policy, class));
        let Some(d) = denies else {
            // The many-pattern DFA could not be built: one DFA per pair.
            return first_covering_pairwise(policy, class, inner);
        };
        let mut set = PatternSet::new(d.re.pattern_len());
        if d.re
            .try_which_overlapping_matches(&mut d.cache, &Input::new(probe(inner)), &mut set)
            .is_err()
        {
            // The lazy DFA gave up (its cache thrashed): the pairwise test decides.
            return first_covering_pairwise(policy, class, inner);
        }
        set.iter()
            .map(|id| d.owners[id.as_usize()])
            .filter(|(_, _, outer)| subtree_ok(outer, inner))
            .min_by_key(|(order, _, _)| *order)
            .map(|(_, rule, _)| rule)
    }
}

/// [`DenyIndex::first_covering`], asking [`covers`] of each deny pattern in turn.
fn first_covering_pairwise<'p>(
    policy: &'p Policy,
    class: Class,
    inner: &PathPattern,
) -> Option<&'p Rule> {
    policy
        .rules
        .iter()
        .filter(|d| d.action == Action::Deny && d.class == class && d.from.is_none())
        .find(|d| d.paths().iter().any(|dp| covers(dp, inner)))
}

impl<'p> ClassDenies<'p> {
    fn of(policy: &'p Policy, class: Class) -> Option<ClassDenies<'p>> {
        let owners: Vec<(usize, &Rule, &PathPattern)> = policy
            .rules
            .iter()
            .enumerate()
            .filter(|(_, d)| d.action == Action::Deny && d.class == class && d.from.is_none())
            .flat_map(|(i, d)| d.paths().iter().map(move |p| (i, d, p)))
            .collect();
        let patterns: Vec<String> = owners.iter().map(|(_, _, p)| p.to_regex()).collect();
        let re = hybrid::dfa::DFA::builder()
            .syntax(syntax_config())
            .thompson(thompson::Config::new().which_captures(WhichCaptures::None))
            .configure(
                hybrid::dfa::DFA::config()
                    .match_kind(MatchKind::All)
                    .cache_capacity(CACHE_BYTES),
            )
            .build_many(&patterns)
            .ok()?;
        let cache = re.create_cache();
        Some(ClassDenies { re, cache, owners })
    }
}

/// `allow connect unix:` of a socket that [`Protection::Bus`] refuses lifts the refusal.
fn bus_sockets(r: &Rule, diags: &mut Diagnostics) {
    for s in r.sockets() {
        let SocketPattern::Path(allowed) = s else {
            continue;
        };
        let hit = Protection::Bus
            .unix_paths()
            .iter()
            .filter_map(|b| PathPattern::parse(b).ok())
            .find(|b| overlaps(allowed, b));
        if let Some(b) = hit {
            diags.warning(
                &r.source,
                format!(
                    "'allow connect {s}' reaches {b}: this unit may ask the service manager or \
                     the bus to run code outside its armor"
                ),
            );
        }
    }
}

/// An exec allow-list that allows neither a dynamic loader nor a C library keeps every
/// dynamically linked program from starting, since mapping code counts as exec.
fn exec_allow_list(policy: &Policy, diags: &mut Diagnostics) {
    let allows: Vec<&Rule> = policy
        .rules
        .iter()
        .filter(|r| r.action == Action::Allow && r.class == Class::Exec)
        .collect();
    let Some(first) = allows.first() else {
        return;
    };
    let regexes: Vec<String> = allows
        .iter()
        .flat_map(|r| r.paths())
        .map(PathPattern::to_regex)
        .collect();
    let allowed = |path: &&str| regexes.iter().any(|re| matches(re, path));
    if !LOADERS.iter().any(allowed) && !LIBCS.iter().any(allowed) {
        diags.warning(
            &first.source,
            "exec allow-list: mapping code counts as exec, so the dynamic loader and shared \
             libraries must be allowed (e.g. allow exec /usr/lib/x86_64-linux-gnu/** \
             /usr/lib64/**) or programs fail to start",
        );
    }
}

#[cfg(test)]
#[path = "lint_tests.rs"]
mod tests;
