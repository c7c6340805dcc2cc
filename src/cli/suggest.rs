//! `unitarmor suggest`'s drop-in: what learn mode saw ([`Learned`]) as allow rules, folded
//! where that is safe, and checked to say nothing else. Pure: records in, text out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{bail, Result};

use super::replay::{Candidate, Entry as Replayed, Record};
use crate::learned::{Learned, Seen};
use crate::policy::dropin::{self, Entry};
use crate::policy::{Action, Class, Diagnostics, Policy};

mod fold;
pub use fold::{Disk, RealDisk};

/// A directory with at least this many files read in it, at least this deep, is allowed whole
/// (`DIR/*`): locale data, certificates, a package's own files. Writes, programs and shallow
/// directories (`/etc`, `/usr/bin`) are never folded: `allow write /etc/*` would allow
/// `/etc/shadow`, `/usr/bin/*` every program.
const FOLD_AT: usize = 4;
const FOLD_DEPTH: usize = 3;

/// The drop-in for `l` (see the module's comment). `kept`: lines of the unit's previous
/// `armor.conf` to carry over (its deny, audit, include and exemption lines). Objects whose
/// names cannot be written safely as a rule (control characters, glob characters, `%`, bytes
/// that are not UTF-8) are listed in a comment, not allowed. Fails if the text would parse as
/// anything but these lines (it never should).
pub fn suggestion(l: &Learned, kept: &[String], disk: &dyn Disk) -> Result<String> {
    let mut out = format!(
        "# Suggested by `unitarmor suggest {}` from what learn mode saw ({} objects). Review it:\n\
         # each rule allows what the unit was seen doing, and nothing else of its class.\n\
         [X-Armor]\n",
        comment_safe(&l.unit),
        l.entries.len()
    );
    if !kept.is_empty() {
        out.push_str("# kept from the previous armor.conf\n");
    }
    for k in kept {
        out.push_str(k);
        out.push('\n');
    }
    let mut lines: Vec<String> = Vec::new();
    // What a service's own settings grant; a slice has none.
    if !l.unit.ends_with(".slice") {
        out.push_str("ArmorPolicy=@systemd\n");
        lines.push("@systemd".into());
    }
    let mut by_class: BTreeMap<&str, Vec<&Seen>> = BTreeMap::new();
    let mut unsafe_names: u64 = 0;
    for s in l.entries.values() {
        if safe_object(&s.class, &s.object) {
            by_class.entry(s.class.as_str()).or_default().push(s);
        } else {
            unsafe_names += 1;
        }
    }
    allow_rules(&by_class, &mut out, &mut lines, disk);
    let unsafe_names = unsafe_names + l.odd;
    if unsafe_names > 0 {
        out.push_str(&not_suggested(unsafe_names));
    }
    verify(&out, kept.len(), &lines)?;
    Ok(out)
}

/// For a unit whose policy on disk has allow rules: what learn mode saw that the policy
/// refuses only for want of an allow rule, as a drop-in of allow rules to add (folded as in
/// [`suggestion`]), and, as comments, the allow rules of the unit's own drop-ins for paths that
/// allowed nothing it saw (to consider removing; port and capability rules are not weighed).
/// `candidate` decides as the dry run does. A diff, not a rewrite: nothing on disk is changed
/// or repeated.
pub fn diff(
    l: &Learned,
    policy: &Policy,
    candidate: &mut Candidate<'_>,
    disk: &dyn Disk,
) -> Result<String> {
    let mut missing: BTreeMap<&str, Vec<&Seen>> = BTreeMap::new();
    let mut used: BTreeSet<usize> = BTreeSet::new();
    let mut unsafe_names: u64 = 0;
    for s in l.entries.values() {
        if !safe_object(&s.class, &s.object) {
            unsafe_names += 1;
            continue;
        }
        let mut refused = false;
        for r in records_of(l, s) {
            if let Ok(d) = candidate.decide(&r) {
                refused |= d.not_allowed;
                if d.allowed() {
                    used.extend(d.index);
                }
            }
        }
        if refused {
            missing.entry(s.class.as_str()).or_default().push(s);
        }
    }
    let mut out = format!(
        "# Suggested by `unitarmor suggest {}` from what learn mode saw ({} objects), against\n\
         # the policy on disk: what it refuses for want of an allow rule. Review it.\n\
         [X-Armor]\n",
        comment_safe(&l.unit),
        l.entries.len()
    );
    let mut lines = Vec::new();
    allow_rules(&missing, &mut out, &mut lines, disk);
    if lines.is_empty() {
        out.push_str("# nothing to add: the policy allows everything learn mode saw\n");
    }
    let unused: Vec<String> = policy
        .rules
        .iter()
        .enumerate()
        .filter(|(i, r)| {
            r.action == Action::Allow
                && (r.class.is_path() || (r.class == Class::Connect && r.is_unix()))
                && r.source.file.extension().is_some_and(|e| e == "conf")
                && !used.contains(i)
        })
        .map(|(_, r)| format!("#   ArmorPolicy={}  ({})", r, r.source))
        .collect();
    if !unused.is_empty() {
        out.push_str(
            "# To consider removing: allow rules for paths that allowed nothing learn mode saw\n",
        );
        for u in unused {
            out.push_str(&comment_safe(&u));
            out.push('\n');
        }
    }
    let unsafe_names = unsafe_names + l.odd;
    if unsafe_names > 0 {
        out.push_str(&not_suggested(unsafe_names));
    }
    verify(&out, 0, &lines)?;
    Ok(out)
}

/// What was learned, as records for the dry run (`check --against-journal`): one audit record
/// per object and operation, at the time of the latest record.
pub fn entries_of(l: &Learned) -> Vec<Replayed> {
    l.entries
        .values()
        .flat_map(|s| records_of(l, s))
        .map(|r| Replayed::Record(Box::new(r)))
        .collect()
}

/// The records of one learned object, one per operation.
fn records_of(l: &Learned, s: &Seen) -> Vec<Record> {
    let mut out = Vec::new();
    for op in &s.ops {
        let mut r = Record {
            time: l.until.saturating_mul(1_000_000),
            action: "audit".into(),
            class: s.class.clone(),
            operation: op.clone(),
            rule: "learn mode".into(),
            rule_source: format!("{}:0", crate::policy::learn::SOURCE),
            exe: s.exes.iter().next().map(|e| e.as_bytes().to_vec()),
            ..Record::default()
        };
        match (s.class.as_str(), s.object.split_once(':')) {
            ("read" | "write" | "exec", _) => r.path = Some(s.object.as_bytes().to_vec()),
            ("connect", Some(("unix", path))) => r.path = Some(path.as_bytes().to_vec()),
            ("connect" | "bind", Some((proto, rest))) => {
                let Some((addr, port)) = rest.rsplit_once(':') else {
                    continue;
                };
                r.protocol = Some(proto.to_string());
                r.address = Some(addr.trim_start_matches('[').trim_end_matches(']').into());
                r.port = Some(port.to_string());
            }
            ("cap", _) => r.capability = Some(format!("CAP_{}", s.object.to_uppercase())),
            ("signal" | "ptrace", _) => r.peer = Some(s.object.clone()),
            ("net", _) => {
                let (family, raw) = match s.object.split_once(' ') {
                    Some((f, _)) => (f, true),
                    None => (s.object.as_str(), false),
                };
                r.family = Some(family.to_string());
                r.socket_type = Some(if raw { "raw" } else { "stream" }.to_string());
            }
            _ => continue,
        }
        out.push(r);
    }
    out
}

/// One allow rule per object (as folded) of each class, each after its comment, onto `out`;
/// the rules' text onto `lines`.
fn allow_rules(
    by_class: &BTreeMap<&str, Vec<&Seen>>,
    out: &mut String,
    lines: &mut Vec<String>,
    disk: &dyn Disk,
) {
    // What the unit wrote does not count towards folding a directory it read: it could make
    // the files that fold one.
    let written: BTreeSet<&str> = by_class
        .get("write")
        .map(|w| w.iter().map(|s| s.object.as_str()).collect())
        .unwrap_or_default();
    for class in [
        "read", "write", "exec", "connect", "bind", "cap", "net", "signal", "ptrace",
    ] {
        let Some(seen) = by_class.get(class) else {
            continue;
        };
        for (object, sources) in fold(class, seen, &written, disk) {
            out.push_str(&comment(class, &sources));
            // A net object is its family and maybe `raw`: two words of the rule.
            let object = if class == "net" {
                object
            } else {
                quote_rule(&object)
            };
            let rule = format!("allow {class} {object}");
            out.push_str(&format!("ArmorPolicy={rule}\n"));
            lines.push(rule);
        }
    }
}

/// The comment before a rule: how often, how many objects, by which programs.
fn comment(class: &str, sources: &[&Seen]) -> String {
    let count: u64 = sources.iter().map(|s| s.count).sum();
    let exes: BTreeSet<String> = sources
        .iter()
        .flat_map(|s| s.exes.iter().map(|e| comment_safe(e)))
        .collect();
    let what = if sources.len() == 1 {
        String::new()
    } else {
        format!(", {} objects", sources.len())
    };
    format!(
        "# {class}: {count} records{what}, by {}\n",
        exes.into_iter().take(3).collect::<Vec<_>>().join(" ")
    )
}

/// The text parses as exactly the carried-over lines and `lines`, in that order, and nothing
/// else: no name the unit chose can have added a setting.
fn verify(text: &str, kept: usize, lines: &[String]) -> Result<()> {
    let mut diags = Diagnostics::default();
    let parsed = dropin::parse(Path::new("suggestion"), text.as_bytes(), &mut diags);
    if diags.has_errors() {
        bail!("the suggestion does not parse: {}", diags.0[0]);
    }
    let policies: Vec<&str> = parsed
        .entries
        .iter()
        .skip(kept)
        .filter_map(|e| match e {
            Entry::Policy(text, _) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    if parsed.entries.len() != kept + lines.len() || policies != lines {
        bail!("the suggestion would say more than what was learned; not written");
    }
    Ok(())
}

/// The objects of one class as rule arguments, each with the records it stands for.
fn fold<'a>(
    class: &str,
    seen: &[&'a Seen],
    written: &BTreeSet<&str>,
    disk: &dyn Disk,
) -> BTreeMap<String, Vec<&'a Seen>> {
    let mut out: BTreeMap<String, Vec<&'a Seen>> = BTreeMap::new();
    let paths = matches!(class, "read" | "write" | "exec");
    // A template's instances' own names first (`%i`), then what changes between runs.
    let with_instances: Vec<(&str, &BTreeSet<String>)> = seen
        .iter()
        .map(|s| (s.object.as_str(), &s.instances))
        .collect();
    let objects = if paths {
        fold::instance_patterns(&with_instances)
    } else {
        seen.iter().map(|s| s.object.clone()).collect()
    };
    let refs: Vec<&str> = objects.iter().map(String::as_str).collect();
    let patterns = if paths {
        fold::patterns(&refs, class != "exec")
    } else {
        BTreeMap::new()
    };
    // Each pattern with the learned paths and instances it stands for: one that names anything
    // else on disk now is not suggested, its paths are (as folded for `%i` alone).
    let mut stands_for: BTreeMap<&str, (BTreeSet<&str>, BTreeSet<&str>)> = BTreeMap::new();
    for (s, object) in seen.iter().zip(&objects) {
        let pattern = patterns.get(object).unwrap_or(object);
        let (paths, instances) = stands_for.entry(pattern).or_default();
        paths.insert(&s.object);
        instances.extend(s.instances.iter().map(String::as_str));
    }
    // Asked once per pattern.
    let safe: BTreeMap<&str, bool> = stands_for
        .iter()
        .map(|(p, (paths, instances))| {
            let folded = paths.len() > 1 || !paths.contains(p);
            (
                *p,
                !folded || fold::names_only_learned(p, paths, instances, disk),
            )
        })
        .collect();
    for (s, object) in seen.iter().zip(&objects) {
        let pattern = patterns.get(object).unwrap_or(object);
        let object = if safe[pattern.as_str()] {
            pattern.clone()
        } else {
            object.clone()
        };
        out.entry(object).or_default().push(s);
    }
    if class != "read" {
        return out;
    }
    let mut per_dir: BTreeMap<String, usize> = BTreeMap::new();
    for p in out.keys().filter(|p| !written.contains(p.as_str())) {
        if let Some((dir, _)) = p.rsplit_once('/') {
            *per_dir.entry(dir.to_string()).or_default() += 1;
        }
    }
    let mut folded: BTreeMap<String, Vec<&'a Seen>> = BTreeMap::new();
    for (p, sources) in out {
        let key = match p.rsplit_once('/') {
            Some((dir, _))
                if dir.matches('/').count() >= FOLD_DEPTH
                    && !dir.starts_with("/proc/")
                    && !dir.contains(['*', '?', '%'])
                    && per_dir.get(dir).is_some_and(|n| *n >= FOLD_AT) =>
            {
                format!("{dir}/*")
            }
            _ => p,
        };
        folded.entry(key).or_default().extend(sources);
    }
    folded
}

/// Whether `object` of `class` can be a rule's argument as it is. A path (or a unix socket's)
/// must be printable, with no glob characters (`*`, `?`, `[`, `]`, `{`, `}`), no `%` (a
/// specifier), no quote or backslash, and be valid UTF-8 (the daemon replaced invalid bytes
/// with U+FFFD); an address must be `PROTO:ADDR:PORT` with a real address; a capability
/// one Linux has; the unit of a signal or trace one that `allow signal` may name.
fn safe_object(class: &str, object: &str) -> bool {
    // Not `/` itself: as a pattern it stands for everything below it.
    let path_ok = |p: &str| {
        p.starts_with('/')
            && p.len() > 1
            && !p.ends_with('/')
            && p.chars()
                .all(|c| !c.is_control() && !"*?[]{}%\"'\\\u{fffd}".contains(c))
    };
    match (class, object.split_once(':')) {
        ("read" | "write" | "exec", _) => path_ok(object),
        ("connect", Some(("unix", path))) => path_ok(path),
        ("connect" | "bind", Some(("tcp" | "udp", rest))) => {
            rest.rsplit_once(':').is_some_and(|(addr, port)| {
                let addr = addr
                    .strip_prefix('[')
                    .and_then(|a| a.strip_suffix(']'))
                    .map_or(addr.parse::<std::net::Ipv4Addr>().is_ok(), |a| {
                        a.parse::<std::net::Ipv6Addr>().is_ok()
                    });
                // Port 0 (the kernel picks one) is no port a rule can name.
                addr && port.parse::<u16>().is_ok_and(|p| p != 0)
            })
        }
        ("cap", _) => crate::policy::caps::NAMES.contains(&object),
        // A unit that may be named (never unitarmor.service, init.scope).
        ("signal" | "ptrace", _) => crate::policy::rule::check_peer(object).is_ok(),
        // A family, or a family and `raw`.
        ("net", _) => {
            let mut words = object.split(' ');
            let known = |w: &str| crate::policy::net::FAMILIES.iter().any(|(n, _)| *n == w);
            words.next().is_some_and(|f| f != "raw" && known(f))
                && words.next().is_none_or(|w| w == "raw")
                && words.next().is_none()
        }
        _ => false,
    }
}

/// The comment that counts the objects no rule names.
fn not_suggested(n: u64) -> String {
    format!(
        "# {n} objects not suggested: their names have control or glob characters, '%' or \
         bytes that are not UTF-8, or they are / itself, port 0, or a unit that may never be \
         named\n"
    )
}

/// A name for a comment line: control characters (a newline would end the comment) as `?`.
fn comment_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// A rule argument, quoted when it has white space.
fn quote_rule(s: &str) -> String {
    if s.chars().any(char::is_whitespace) {
        format!("\"{s}\"")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
#[path = "suggest_tests.rs"]
mod tests;
