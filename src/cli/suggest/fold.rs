//! The parts of a learned path that change from one run, upgrade or process to the next,
//! written as `*` so that a suggested rule still holds tomorrow: a process's own id under
//! `/proc`, a version in a directory's name, a numbered directory, a per-process temporary
//! name. Each fold is kept to one component, and to what the evidence shows; a component
//! is never folded whole where that would stand for a whole shared directory (`/tmp/*`).
//! Pure: paths in, patterns out.

use std::collections::{BTreeMap, BTreeSet};

/// Directories where per-process names live (`mkstemp`, pid files). Not `/run/`: its names
/// are root daemons' own (pid files PID 1 reads), not per-process ones.
const TEMP_DIRS: [&str; 3] = ["/tmp/", "/var/tmp/", "/dev/shm/"];

/// The most paths a fold's pattern may be checked against on disk ([`Disk::glob`]), and the
/// most directory entries read for one pattern.
const GLOB_LIMIT: usize = 1000;
const READ_LIMIT: usize = 100_000;

/// What is on disk now: a fold is suggested only where its pattern names nothing there but
/// what the unit was seen using (a learning unit chooses its names: `/home/1.0/.ssh/x`
/// must not become `/home/*/.ssh/x`).
pub trait Disk {
    /// The paths `pattern` (`*` and `?` inside components) matches now, at most `limit`;
    /// None if there are more, or a directory on the way cannot be read.
    fn glob(&self, pattern: &str, limit: usize) -> Option<Vec<String>>;
}

/// The file system itself.
pub struct RealDisk;

impl Disk for RealDisk {
    fn glob(&self, pattern: &str, limit: usize) -> Option<Vec<String>> {
        use std::io::ErrorKind::{NotADirectory, NotFound};
        // Entries read in all: a directory of a million names is no place to fold in.
        let mut read = 0usize;
        let mut found = vec![String::new()];
        for part in pattern.split('/').skip(1) {
            let mut next = Vec::new();
            for dir in &found {
                if !part.contains(['*', '?']) {
                    let p = format!("{dir}/{part}");
                    match std::fs::symlink_metadata(&p) {
                        Ok(_) => next.push(p),
                        // Absent. Anything else (a home root cannot read) may hide a match.
                        Err(e) if matches!(e.kind(), NotFound | NotADirectory) => {}
                        Err(_) => return None,
                    }
                } else {
                    let shown = if dir.is_empty() { "/" } else { dir.as_str() };
                    let entries = match std::fs::read_dir(shown) {
                        Ok(e) => e,
                        // A file where a directory would be matches nothing below it.
                        Err(e) if matches!(e.kind(), NotFound | NotADirectory) => continue,
                        Err(_) => return None,
                    };
                    for e in entries {
                        read += 1;
                        if read > READ_LIMIT {
                            return None;
                        }
                        let name = e.ok()?.file_name();
                        let name = name.to_str()?;
                        if matches_component(part, name) {
                            next.push(format!("{dir}/{name}"));
                        }
                    }
                }
                if next.len() > limit {
                    return None;
                }
            }
            found = next;
        }
        Some(found)
    }
}

/// Whether `name` matches the component pattern `pat` (`*`: any run of characters, `?`: one).
pub fn matches_component(pat: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pat.chars().collect(), name.chars().collect());
    let (mut i, mut j, mut star, mut from) = (0, 0, None, 0);
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            i += 1;
            from = j;
        } else if let Some(k) = star {
            i = k + 1;
            from += 1;
            j = from;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

/// Whether `pattern`, which stands for the learned paths `learned` (with `%i` as each of
/// `instances`), names nothing on disk but those: every path it matches now was learned.
/// `/proc/*/FILE` (the process id fold alone) is not asked: its other processes' files are
/// weighed in [`fold_one`].
pub fn names_only_learned(
    pattern: &str,
    learned: &BTreeSet<&str>,
    instances: &BTreeSet<&str>,
    disk: &dyn Disk,
) -> bool {
    let rest = pattern
        .strip_prefix("/proc/*/")
        .map(|r| r.strip_prefix("task/*/").unwrap_or(r));
    if rest.is_some_and(|r| !r.contains(['*', '?'])) {
        return true;
    }
    let expanded: Vec<String> = if pattern.contains("%i") {
        instances.iter().map(|i| pattern.replace("%i", i)).collect()
    } else {
        vec![pattern.to_string()]
    };
    expanded.iter().filter(|p| p.contains(['*', '?'])).all(|p| {
        disk.glob(p, GLOB_LIMIT)
            .is_some_and(|found| found.iter().all(|f| learned.contains(f.as_str())))
    })
}

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
        // `%i` (an instance's name, folded already) is a word of its own.
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
                if tokens[j].0 == "*"
                    || tokens[j].0.contains('%')
                    || !tokens.iter().enumerate().any(own)
                {
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

/// For a template's set: each path with `%i` for the instance's name where two or more
/// instances were each seen at that place with their own name (`/srv/app/a.conf` by instance
/// `a`, `/srv/app/b.conf` by `b`: `/srv/app/%i.conf`, which allows each instance its own file
/// only). A name counts where it stands between characters that are not letters or digits.
/// One instance's paths alone are left as they are: its name there may be a coincidence
/// (instance `lib` and `/usr/lib/`), and `%i` would take the file from every other instance.
pub fn instance_patterns(seen: &[(&str, &BTreeSet<String>)]) -> Vec<String> {
    // The one form every instance that did it gives the path, if they agree (a path two
    // instances used, one of them by its name, is kept: `%i` would take it from the other).
    let form = |(path, instances): &(&str, &BTreeSet<String>)| -> Option<String> {
        let mut forms = instances
            .iter()
            .map(|i| usable_instance(i).then(|| with_instance(path, i)).flatten());
        let first = forms.next()??;
        forms.all(|f| f.as_ref() == Some(&first)).then_some(first)
    };
    let mut by_form: BTreeMap<String, BTreeSet<&String>> = BTreeMap::new();
    for s in seen {
        if let Some(f) = form(s) {
            by_form.entry(f).or_default().extend(s.1.iter());
        }
    }
    seen.iter()
        .map(|s| {
            form(s)
                .filter(|f| by_form[f].len() >= 2)
                .unwrap_or_else(|| s.0.to_string())
        })
        .collect()
}

/// An instance name that can stand in a path as `%i`: systemd's instance characters, at least
/// one letter or digit.
fn usable_instance(instance: &str) -> bool {
    instance.bytes().any(|b| b.is_ascii_alphanumeric())
        && instance
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b))
}

/// `path` with each occurrence of `instance` between characters that are not letters or
/// digits as `%i`; None if there is none.
fn with_instance(path: &str, instance: &str) -> Option<String> {
    let b = path.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut found = false;
    let mut from = 0;
    while let Some(at) = path[from..].find(instance).map(|k| k + from) {
        let end = at + instance.len();
        let before = at == 0 || !b[at - 1].is_ascii_alphanumeric();
        let after = end == b.len() || !b[end].is_ascii_alphanumeric();
        if before && after {
            out.push_str(&path[copied..at]);
            out.push_str("%i");
            copied = end;
            found = true;
            from = end;
        } else {
            from = at + 1;
        }
    }
    out.push_str(&path[copied..]);
    found.then_some(out)
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
