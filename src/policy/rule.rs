//! One rule, `ACTION CLASS ARG... [from=PATTERN]`, and its parser.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::caps::Capability;
use super::net::{self, Family, PortRange, SocketPattern};
use super::specifiers::{self, UnitName};
use super::{pattern, PathPattern, Source};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Deny,
    Audit,
}

impl Action {
    pub const ALL: [Action; 3] = [Action::Allow, Action::Deny, Action::Audit];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
            Action::Audit => "audit",
        }
    }
}

/// What a rule is about. The first three are path classes, decided by the same DFA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// Opening for reading.
    Read,
    /// Opening for writing, creating, truncating, unlinking, renaming, linking, chmod/chown,
    /// mkdir/rmdir.
    Write,
    /// Executing.
    Exec,
    /// Creating sockets of an address family.
    Net,
    /// Connecting to a port, or to a unix socket (`unix:` arguments).
    Connect,
    /// Binding a port.
    Bind,
    /// Using a capability.
    Cap,
    /// Signals (and priorities) sent to processes of other units.
    Signal,
    /// ptrace-class access to processes of other units.
    Ptrace,
}

impl Class {
    pub const ALL: [Class; 9] = [
        Class::Read,
        Class::Write,
        Class::Exec,
        Class::Net,
        Class::Connect,
        Class::Bind,
        Class::Cap,
        Class::Signal,
        Class::Ptrace,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Read => "read",
            Class::Write => "write",
            Class::Exec => "exec",
            Class::Net => "net",
            Class::Connect => "connect",
            Class::Bind => "bind",
            Class::Cap => "cap",
            Class::Signal => "signal",
            Class::Ptrace => "ptrace",
        }
    }

    pub fn is_path(self) -> bool {
        matches!(self, Class::Read | Class::Write | Class::Exec)
    }
}

/// The arguments of a rule, typed by class.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Paths(Vec<PathPattern>),
    Families(Vec<Family>),
    Ports(Vec<PortRange>),
    /// Unix sockets of a `connect` rule (`unix:/PATH`, `unix:@NAME`).
    Sockets(Vec<SocketPattern>),
    Caps(Vec<Capability>),
    /// Units of a `signal` or `ptrace` rule (none: `deny signal`, the unit's own tree only).
    Units(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub action: Action,
    pub class: Class,
    pub target: Target,
    /// Only processes whose executable matches this pattern.
    pub from: Option<PathPattern>,
    pub source: Source,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.action.as_str(), self.class.as_str())?;
        match &self.target {
            Target::Paths(p) => p
                .iter()
                .try_for_each(|p| write!(f, " {}", quote(p.as_str())))?,
            Target::Families(v) => v.iter().try_for_each(|x| write!(f, " {}", x.0))?,
            Target::Ports(v) => v.iter().try_for_each(|x| write!(f, " {x}"))?,
            Target::Sockets(v) => v
                .iter()
                .try_for_each(|x| write!(f, " {}", quote(&x.to_string())))?,
            Target::Caps(v) => v.iter().try_for_each(|x| write!(f, " {}", x.name()))?,
            Target::Units(v) => v.iter().try_for_each(|x| write!(f, " {x}"))?,
        }
        if let Some(from) = &self.from {
            write!(f, " from={}", quote(from.as_str()))?;
        }
        Ok(())
    }
}

/// Units no `allow signal`/`allow ptrace` may name: the daemon and PID 1 (stopping or
/// tracing them switches the armor's watcher off).
const NEVER_PEERS: [&str; 2] = ["unitarmor.service", "init.scope"];

/// `allow signal UNIT...`, `allow ptrace UNIT...`: the other units a unit's processes may
/// signal or trace (the `signal` and `ptrace` protections confine them to the unit's own tree
/// otherwise); `deny signal`, `deny ptrace`: that confinement, which every armored unit has.
/// Every argument parsed (an error for the first that does not), kept only if `keep`: a
/// dropped argument is still checked.
fn parsed_all<T>(
    args: &[String],
    keep: bool,
    parse: fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    let all = args
        .iter()
        .map(|a| parse(a))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(if keep { all } else { Vec::new() })
}

fn peer_rule(
    action: Action,
    class: Class,
    args: Vec<String>,
    from: Option<PathPattern>,
    source: Source,
    keep: bool,
) -> Result<Rule, String> {
    let what = class.as_str();
    match action {
        Action::Deny if !args.is_empty() => {
            return Err(format!(
                "'deny {what}' takes no units: it confines {what}s to the unit's own processes, \
                 which every armored unit has; 'allow {what} UNIT...' names the units it may \
                 reach too"
            ))
        }
        Action::Audit => {
            return Err(format!(
                "'audit {what}' is not supported; '{what}' rules are 'allow {what} UNIT...' and \
                 'deny {what}'"
            ))
        }
        Action::Allow if args.is_empty() => {
            return Err(format!("'allow {what}' names no unit"));
        }
        _ => {}
    }
    if from.is_some() && action == Action::Deny {
        return Err(format!(
            "'deny {what}' takes no from=: every process of an armored unit is confined to it; \
             from= narrows 'allow {what} UNIT...' to the processes of one executable"
        ));
    }
    for u in &args {
        check_peer(u)?;
    }
    Ok(Rule {
        action,
        class,
        target: Target::Units(if keep { args } else { Vec::new() }),
        from,
        source,
    })
}

/// Whether `u` can be named by `allow signal` and `allow ptrace`: a service or scope (no
/// template, no specifier, no glob), and not one that may never be named.
pub fn check_peer(u: &str) -> Result<(), String> {
    let valid = (u.ends_with(".service") || u.ends_with(".scope"))
        && !u.starts_with('.')
        && u.len() <= 255
        && u.chars()
            .all(|c| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c));
    if !valid {
        return Err(format!(
            "'{u}' is not a service or scope name (e.g. nginx.service; no specifiers, no globs)"
        ));
    }
    if u.ends_with("@.service") {
        return Err(format!("'{u}' is a template; name its instances"));
    }
    if NEVER_PEERS.contains(&u) {
        return Err(format!(
            "'{u}' may never be named: signalling or tracing it switches the armor off"
        ));
    }
    Ok(())
}

fn quote(s: &str) -> String {
    if s.contains(|c: char| c.is_whitespace() || c == '"' || c == '\\') {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        s.to_string()
    }
}

/// Splits a rule into words: whitespace separates, `"..."` quotes (with `\"` and `\\`).
pub fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else { break };
        let mut word = String::new();
        if first == '"' {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("unterminated quote".into()),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => word.push(c),
                        None => return Err("unterminated quote".into()),
                    },
                    Some(c) => word.push(c),
                }
            }
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return Err("a quoted word must be followed by a space".into());
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word);
    }
    Ok(words)
}

impl Rule {
    /// Parses one rule. Specifiers are expanded for `unit` when given (for a file checked on
    /// its own they are only validated).
    pub fn parse(text: &str, unit: Option<&UnitName>, source: Source) -> Result<Rule, String> {
        let words = split_words(text)?;
        let mut words = words.into_iter();
        let action = match words.next().as_deref() {
            Some("allow") => Action::Allow,
            Some("deny") => Action::Deny,
            Some("audit") => Action::Audit,
            Some(other) => {
                let hint = super::diag::did_you_mean(other, Action::ALL.map(Action::as_str))
                    .map(|c| format!("; did you mean '{c}'?"))
                    .unwrap_or_default();
                return Err(format!(
                    "unknown action '{other}' (allow, deny or audit){hint}"
                ));
            }
            None => return Err("empty rule".into()),
        };
        let class_word = words.next().ok_or(
            "rule has no class (read, write, exec, net, connect, bind, cap, signal, ptrace)",
        )?;
        let class = Class::ALL.into_iter().find(|c| c.as_str() == class_word).ok_or_else(|| {
            let hint = super::diag::did_you_mean(&class_word, Class::ALL.map(Class::as_str))
                .map(|c| format!("; did you mean '{c}'?"))
                .unwrap_or_default();
            format!("unknown class '{class_word}' (read, write, exec, net, connect, bind, cap, signal, ptrace){hint}")
        })?;

        // Path patterns and socket arguments, which may widen in a bare template.
        let expand = |w: &str| -> Result<String, String> {
            match unit {
                Some(u) => specifiers::expand_path(w, u),
                // Validate the syntax with a stand-in instance.
                None => specifiers::expand_path(w, &UnitName::new("unit@instance.service")),
            }
        };
        let mut from = None;
        let mut from_instance = false;
        let mut args = Vec::new();
        for w in words {
            if let Some(p) = w.strip_prefix("from=") {
                if from.is_some() {
                    return Err("from= given twice".into());
                }
                from_instance = unit.is_some_and(|u| specifiers::widens(p, u));
                from = Some(PathPattern::parse(&expand(p)?).map_err(|e| format!("from=: {e}"))?);
            } else {
                args.push(w);
            }
        }
        if matches!(class, Class::Signal | Class::Ptrace) {
            // In a template or prefix policy a from= that names the instance widens (%i
            // becomes *): the allowance would reach other instances' programs, so it keeps no
            // units (the rule still counts, and its names are still checked).
            let keep = !(action == Action::Allow && from_instance);
            return peer_rule(action, class, args, from, source, keep);
        }
        if args.is_empty() {
            return Err(format!(
                "'{} {}' names nothing",
                action.as_str(),
                class.as_str()
            ));
        }
        // A bare template's policy must hold for every instance before the instance is known
        // (and a name prefix's for every unit of the prefix): instance-dependent deny and
        // audit patterns widen to all instances, instance-dependent allow patterns are dropped
        // (the class stays an allow-list), and so is every pattern of an allow rule whose
        // from= depends on the instance (a widened from= would allow more programs). Stricter,
        // never looser.
        let kept = |a: &&String| {
            !(action == Action::Allow
                && (from_instance || unit.is_some_and(|u| specifiers::widens(a, u))))
        };
        // Families, ports and capabilities hold no specifier: an allow rule of theirs whose
        // from= widens keeps none (its widened programs are held to an allow-list that names
        // nothing here). Each is parsed all the same, so that a wrong one is still an error.
        let keep_items = !(action == Action::Allow && from_instance);
        let unix = args.iter().filter(|a| net::is_unix_arg(a)).count();
        if unix > 0 && class != Class::Connect {
            return Err(format!(
                "'{}' rules take no unix: sockets (only connect does)",
                class.as_str()
            ));
        }
        if unix > 0 && unix < args.len() {
            return Err(
                "a connect rule names either ports or unix: sockets, not both; write two rules"
                    .into(),
            );
        }
        if class != Class::Exec && args.iter().any(|a| a.starts_with(pattern::MEMFD)) {
            return Err(format!(
                "'{}' is for exec rules: a memfd is code in memory, not a file to {}",
                pattern::MEMFD,
                class.as_str()
            ));
        }
        let mut target = match class {
            Class::Read | Class::Write | Class::Exec => Target::Paths(
                args.iter()
                    .filter(kept)
                    .map(|a| PathPattern::parse(&expand(a)?))
                    .collect::<Result<_, _>>()?,
            ),
            Class::Connect if unix > 0 => Target::Sockets(
                args.iter()
                    .filter(kept)
                    .map(|a| SocketPattern::parse(&expand(a)?))
                    .collect::<Result<_, _>>()?,
            ),
            Class::Net => Target::Families(parsed_all(&args, keep_items, Family::parse)?),
            Class::Connect | Class::Bind => {
                Target::Ports(parsed_all(&args, keep_items, PortRange::parse)?)
            }
            Class::Cap => Target::Caps(parsed_all(&args, keep_items, Capability::parse)?),
            // Returned by peer_rule() above; kept total without a panic.
            Class::Signal | Class::Ptrace => Target::Units(args.to_vec()),
        };
        // Kept as long as the unit is armored: collected through a `Result`, a one-path
        // target had room for four.
        match &mut target {
            Target::Paths(v) => v.shrink_to_fit(),
            Target::Sockets(v) => v.shrink_to_fit(),
            _ => {}
        }
        Ok(Rule {
            action,
            class,
            target,
            from,
            source,
        })
    }

    /// The class an allow rule that does not parse was about: the first two words are `allow`
    /// and a class name. Such a class must stay an allow-list, so that a broken rule never
    /// widens a unit (a broken `allow connect` keeps both unix sockets and ports allow-lists:
    /// which it meant is not known). None for anything else.
    pub fn broken_allow_class(text: &str) -> Option<Class> {
        let words = split_words(text)
            .unwrap_or_else(|_| text.split_whitespace().map(String::from).collect());
        if words.first().map(String::as_str) != Some("allow") {
            return None;
        }
        let class = Class::ALL
            .into_iter()
            .find(|c| Some(c.as_str()) == words.get(1).map(String::as_str))?;
        Some(class)
    }

    /// The path patterns of a path-class rule (empty for the other classes).
    pub fn paths(&self) -> &[PathPattern] {
        match &self.target {
            Target::Paths(p) => p,
            _ => &[],
        }
    }

    /// Whether this is a `connect` rule about unix sockets (its target is
    /// [`Target::Sockets`]), as opposed to one about ports. A template's allow rule whose
    /// sockets all named the instance keeps this (with no sockets), so the unix-connect class
    /// stays an allow-list.
    pub fn is_unix(&self) -> bool {
        matches!(self.target, Target::Sockets(_))
    }

    /// The socket patterns of a unix `connect` rule (empty for other rules).
    pub fn sockets(&self) -> &[SocketPattern] {
        match &self.target {
            Target::Sockets(s) => s,
            _ => &[],
        }
    }

    /// The socket patterns of a unix `connect` rule as anchored regexes, in the dialect of
    /// [`PathPattern::to_regex`]; an abstract name's regex matches `@` followed by the name.
    /// Empty for other rules.
    pub fn unix_regexes(&self) -> Vec<String> {
        self.sockets().iter().map(SocketPattern::to_regex).collect()
    }
}

#[cfg(test)]
#[path = "rule_tests.rs"]
mod tests;
