//! The parts of a learned path that change from one run, upgrade or process to the next,
//! written as `*` so that a suggested rule still holds tomorrow: a process's own id under
//! `/proc`, a version in a directory's name, a numbered directory, a per-process temporary
//! name. Each fold is kept to one component, and to what the evidence shows; a component
//! is never folded whole where that would stand for a whole shared directory (`/tmp/*`).
//! Pure: paths in, patterns out.

use std::collections::{BTreeMap, BTreeSet};

/// Directories where per-process names live (`mkstemp`, pid files, per-run sockets).
const TEMP_DIRS: [&str; 4] = ["/tmp/", "/var/tmp/", "/dev/shm/", "/run/"];

/// Each path of a class as the pattern a rule should name, after the folds of one path
/// ([`fold_one`]) and those that need two or more paths to show a part changes
/// ([`varying_parts`]). `write_or_read`: temporary names are folded for these classes only
/// (a program is never allowed by a temporary name's pattern: the unit may write it).
pub fn patterns(paths: &[&str], write_or_read: bool) -> BTreeMap<String, String> {
    let once: BTreeMap<String, String> = paths
        .iter()
        .map(|p| (p.to_string(), fold_one(p, write_or_read)))
        .collect();
    let folded: BTreeSet<&str> = once.values().map(String::as_str).collect();
    let varying = varying_parts(&folded, write_or_read);
    once.into_iter()
        .map(|(path, f)| {
            let pattern = varying.get(&f).cloned().unwrap_or(f);
            (path, pattern)
        })
        .collect()
}

/// What one path shows by itself:
/// - `/proc/PID/FILE` (and `/proc/PID/task/TID/FILE`) with `*` for the ids: the service's own
///   ids differ at every start. The same file of other processes is then allowed too:
///   world-readable ones (`stat`, `cmdline`) are anyway, and those the kernel checks with
///   ptrace rules (`environ`, `mem`) stay refused outside the unit by the `ptrace`
///   protection. `/proc/PID` itself is kept: `/proc/*` would be every file of `/proc`.
/// - a version (`1.2.3`, the `3.11` of `python3.11`) in a directory's name below the top
///   level as `*`: the next upgrade renames it.
/// - in a temporary directory, a number of two or more digits in the file's name (a pid:
///   `app-4242.pid`) as `*`, if the name keeps a word of its own.
pub fn fold_one(path: &str, write_or_read: bool) -> String {
    let mut parts: Vec<String> = path.split('/').map(str::to_string).collect();
    let last = parts.len().saturating_sub(1);
    let number = |c: &str| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit());
    if parts.len() > 3 && parts[1] == "proc" && number(&parts[2]) {
        parts[2] = "*".into();
        if parts.len() > 5 && parts[3] == "task" && number(&parts[4]) {
            parts[4] = "*".into();
        }
        return parts.join("/");
    }
    // Directories only, and not `/1.2/` at the top: a file's own version is what it is.
    for part in parts.iter_mut().take(last).skip(2) {
        *part = without_versions(part);
    }
    if write_or_read && in_temp_dir(path) && last > 1 {
        let tokens = tokens(&parts[last]);
        let pid = |t: &str| t.len() >= 2 && number(t);
        if tokens.iter().any(|(t, _)| !t.is_empty() && !pid(t)) {
            parts[last] = tokens
                .iter()
                .map(|(t, sep)| format!("{}{sep}", if pid(t) { "*" } else { t }))
                .collect();
        }
    }
    parts.join("/")
}

/// Parts that two or more of `paths` show to change: a directory named by a number alone
/// (`cache/17/`, `cache/18/`), and in a temporary directory one word of a file's name
/// (`app.Xa8Kd2`, `app.q19ZrT`: what `mkstemp` makes). Returns each path that such a part
/// folds, with its pattern. Paths whose pattern would leave the name nothing of its own are
/// left as they are.
fn varying_parts(paths: &BTreeSet<&str>, write_or_read: bool) -> BTreeMap<String, String> {
    // Candidate pattern -> the paths it stands for.
    let mut groups: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let mut candidates: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for &p in paths {
        let parts: Vec<&str> = p.split('/').collect();
        let last = parts.len().saturating_sub(1);
        let mut mine = Vec::new();
        for i in 2..last {
            // Not users' own directories (`/run/user/UID/`): two seen are not all of them.
            let uid = i == 3 && parts[1] == "run" && parts[2] == "user";
            if !uid && !parts[i].is_empty() && parts[i].bytes().all(|b| b.is_ascii_digit()) {
                let mut q = parts.clone();
                q[i] = "*";
                mine.push(q.join("/"));
            }
        }
        if write_or_read && in_temp_dir(p) && last > 1 {
            let tokens = tokens(parts[last]);
            for j in 0..tokens.len() {
                // The name keeps a word of its own.
                let own =
                    |(k, (t, _)): (usize, &(&str, &str))| k != j && !t.is_empty() && *t != "*";
                if tokens[j].0 == "*" || !tokens.iter().enumerate().any(own) {
                    continue;
                }
                let name: String = tokens
                    .iter()
                    .enumerate()
                    .map(|(k, (t, sep))| format!("{}{sep}", if k == j { "*" } else { t }))
                    .collect();
                let mut q = parts.clone();
                q[last] = &name;
                mine.push(q.join("/"));
            }
        }
        for c in &mine {
            groups.entry(c.clone()).or_default().insert(p);
        }
        candidates.insert(p, mine);
    }
    let mut out = BTreeMap::new();
    for (p, mine) in candidates {
        if let Some(c) = mine.into_iter().find(|c| groups[c].len() >= 2) {
            out.insert(p.to_string(), c);
        }
    }
    out
}

fn in_temp_dir(path: &str) -> bool {
    TEMP_DIRS.iter().any(|d| path.starts_with(d))
}

/// A directory's name with each version in it (digits with at least one dot between them:
/// `1.2.3`, the `3.11` of `python3.11`) as `*`.
fn without_versions(name: &str) -> String {
    let b = name.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && b[i - 1].is_ascii_digit()) {
            i += 1;
            continue;
        }
        // The longest run of digits and single dots from here, ending on a digit.
        let (mut j, mut end, mut dots) = (i, i, 0);
        while j < b.len() {
            if b[j].is_ascii_digit() {
                j += 1;
                end = j;
            } else if b[j] == b'.' && j + 1 < b.len() && b[j + 1].is_ascii_digit() {
                dots += 1;
                j += 1;
            } else {
                break;
            }
        }
        if dots > 0 {
            // Both ends are ASCII: the slices are whole characters.
            out.push_str(&name[copied..i]);
            out.push('*');
            copied = end;
        }
        i = end.max(i + 1);
    }
    out.push_str(&name[copied..]);
    out
}

/// A file's name as words and the separator after each (`.`, `-`, `_`, or none at the end).
fn tokens(name: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in name.char_indices() {
        if matches!(c, '.' | '-' | '_') {
            out.push((&name[start..i], &name[i..i + 1]));
            start = i + 1;
        }
    }
    out.push((&name[start..], ""));
    out
}
