//! Finds a unit's files in systemd's order and merges their `[X-Armor]` sections into one
//! [`Policy`].
//!
//! The daemon gets the order from systemd itself (`FragmentPath`, then `DropInPaths`); for
//! files named on the command line, [`unit_files`] rebuilds it the way systemd does: the
//! fragment from the first search directory that has it, then drop-ins from every `NAME.d/`
//! directory that applies (type-level `service.d/`, each dashed prefix `foo-.service.d/`, the
//! template `foo@.service.d/`, the unit itself), a file name in a higher-priority directory
//! masking the same name in a lower one, all sorted by file name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::diag::Diagnostics;
use super::dropin::{self, Entry};
use super::granted;
use super::learn;
use super::listings::{Listing, Listings};
use super::named::{self, Lookup};
use super::rule::Rule;
use super::specifiers::UnitName;
use super::{Mode, Policy, Source};

/// systemd's system unit search path, highest priority first (systemd.unit(5)).
pub const UNIT_DIRS: [&str; 13] = [
    "/etc/systemd/system.control",
    "/run/systemd/system.control",
    "/run/systemd/transient",
    "/run/systemd/generator.early",
    "/etc/systemd/system",
    "/etc/systemd/system.attached",
    "/run/systemd/system",
    "/run/systemd/system.attached",
    "/run/systemd/generator",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
    "/run/systemd/generator.late",
];

/// Whether any of `files` has an `[X-Armor]` section (a cheap test before parsing), or may
/// have one: a file that cannot be read (an I/O error, or too large) counts, so that the unit
/// is looked at and the error reported rather than the unit silently passed over. Files are
/// read with [`dropin::read_limited`]: a FIFO or device is never opened for reading (and,
/// as systemd does not read it either, does not count).
pub fn mentions_armor(files: &[PathBuf]) -> bool {
    mentions_armor_from(files, &mut |f| dropin::read_shared(f))
}

/// [`mentions_armor`], reading each file with `read`.
pub fn mentions_armor_from(files: &[PathBuf], read: &mut Read) -> bool {
    let needle = format!("[{}]", dropin::SECTION);
    let finder = memchr::memmem::Finder::new(needle.as_bytes());
    files.iter().any(|f| match read(f) {
        Ok(b) => finder.find(&b).is_some(),
        Err(e) => !e.is_absent() && !is_shared(f),
    })
}

/// The first of `files` in a drop-in directory many units read ([`is_shared`]) that exists but
/// cannot be read: [`mentions_armor`] passes over it, but it may hold a unit's armor.
pub fn unreadable_shared(files: &[PathBuf]) -> Option<&PathBuf> {
    files
        .iter()
        .find(|f| is_shared(f) && matches!(dropin::read_limited(f), Err(e) if !e.is_absent()))
}

/// Whether `path` is in a drop-in directory many units read (`service.d/`, a dashed prefix's
/// `foo-.service.d/`), not one of a unit's (or its template's) own. Such a file or directory
/// that cannot be read is an error for every unit it applies to, and keeps each armored
/// unit's last good policy, but does not refuse every unit that has no last good policy: one
/// bad file there would refuse every service on the machine, unitarmor's own included.
pub fn is_shared(path: &Path) -> bool {
    let dir = if path.extension().is_some_and(|e| e == "d") {
        path.file_name()
    } else {
        path.parent().and_then(Path::file_name)
    };
    let Some(name) = dir
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".d"))
    else {
        return false;
    };
    // `service.d` (no dot), or `PREFIX-.TYPE`: the stem before the type ends in a dash. A
    // unit's own name may hold `-.` elsewhere (`a-.b.service`) and its directory is its own.
    match name.rsplit_once('.') {
        None => true,
        Some((stem, _)) => stem.ends_with('-'),
    }
}

/// Whether every one of `files` can be read (or is one systemd does not read either).
pub fn all_readable(files: &[PathBuf]) -> bool {
    all_readable_from(files, &mut |f| dropin::read_shared(f))
}

/// [`all_readable`], reading each file with `read`.
pub fn all_readable_from(files: &[PathBuf], read: &mut Read) -> bool {
    files
        .iter()
        .all(|f| read(f).map_or_else(|e| e.is_absent(), |_| true))
}

/// The drop-in directory names that apply to `unit`, most general first.
pub fn dropin_dir_names(unit: &str) -> Vec<String> {
    let Some((stem, suffix)) = unit.rsplit_once('.') else {
        return vec![format!("{unit}.d")];
    };
    let mut names = vec![format!("{suffix}.d")];
    // Dashed prefixes: foo-bar-baz.service reads foo-.service.d and foo-bar-.service.d.
    let base = stem.split_once('@').map_or(stem, |(p, _)| p);
    for (i, _) in base.match_indices('-') {
        if i > 0 {
            names.push(format!("{}-.{suffix}.d", &base[..i]));
        }
    }
    if let Some((prefix, instance)) = stem.split_once('@') {
        names.push(format!("{prefix}@.{suffix}.d"));
        if !instance.is_empty() {
            names.push(format!("{unit}.d"));
        }
    } else {
        names.push(format!("{unit}.d"));
    }
    names.dedup();
    names
}

/// The fragment and drop-ins of `unit` under `root`, in the order systemd applies them
/// (what [`unit_files_checked`] finds, without its warnings).
pub fn unit_files(root: &Path, unit: &str) -> (Option<PathBuf>, Vec<PathBuf>) {
    let found = unit_files_checked(root, unit, &mut Diagnostics::default());
    (found.fragment, found.dropins)
}

/// What [`unit_files_checked`] finds.
#[derive(Debug, Default)]
pub struct UnitFiles {
    /// The unit file (for an instance without one, its template's).
    pub fragment: Option<PathBuf>,
    /// The drop-ins, in the order systemd applies them.
    pub dropins: Vec<PathBuf>,
    /// Drop-in directories that exist but could not be listed (an I/O error, a symlink
    /// loop, no file descriptors left), each with why: what they hold is unknown.
    pub unlisted: Vec<(PathBuf, String)>,
}

/// The fragment and drop-ins of `unit` under `root`, in the order systemd applies them.
///
/// A drop-in is what systemd's `conf_files_list` takes: a directory entry named `*.conf`,
/// not hidden (no leading `.`), that is a regular file or a symlink (a symlink to
/// `/dev/null` masks the name; one to anything but a regular file is refused when it is
/// read, see [`dropin::read_limited`]). FIFOs, sockets, devices and directories named
/// `*.conf` are skipped, as systemd skips them, with a warning naming each in `diags`. A
/// directory that exists but cannot be listed is an error in `diags`, and is returned in
/// [`UnitFiles::unlisted`].
pub fn unit_files_checked(root: &Path, unit: &str, diags: &mut Diagnostics) -> UnitFiles {
    unit_files_listed(root, unit, diags, &mut Listings::direct())
}

/// [`unit_files_checked`], with the directory listings of `listings` (those of a pass over
/// many units, or direct ones).
pub fn unit_files_listed(
    root: &Path,
    unit: &str,
    diags: &mut Diagnostics,
    listings: &mut Listings,
) -> UnitFiles {
    let dirs: Vec<PathBuf> = UNIT_DIRS
        .iter()
        .map(|d| root.join(d.trim_start_matches('/')))
        .collect();
    unit_files_in(&dirs, unit, diags, listings)
}

/// [`unit_files_listed`] over the unit directories `dirs`, highest priority first (a user
/// manager's, for user units: `policy/user.rs`).
pub fn unit_files_in(
    dirs: &[PathBuf],
    unit: &str,
    diags: &mut Diagnostics,
    listings: &mut Listings,
) -> UnitFiles {
    let template = unit.split_once('@').and_then(|(p, rest)| {
        let suffix = rest.rsplit_once('.')?.1;
        Some(format!("{p}@.{suffix}"))
    });
    let fragment = dirs.iter().find_map(|d| {
        if !listings.absent_in(d, unit) {
            let p = d.join(unit);
            if listings.exists(&p) {
                return Some(p);
            }
        }
        template
            .as_ref()
            .filter(|t| !listings.absent_in(d, t))
            .map(|t| d.join(t))
            .filter(|p| listings.exists(p))
    });
    // File name -> path; the first directory to hold a name wins. systemd's order: in each
    // search path the unit's own directory, then its template's, then its prefixes', longest
    // first (the more specific a directory, the more its file of a name counts); the
    // type-level directory (service.d) of every search path last.
    let names = dropin_dir_names(unit);
    let (kind, specific) = names
        .split_first()
        .expect("a type-level directory at least");
    // Only the directories that may be there: a pass knows most are not from its listing of
    // each unit directory, without building their paths.
    let ordered: Vec<PathBuf> = dirs
        .iter()
        .flat_map(|d| specific.iter().rev().map(move |n| (d, n)))
        .chain(dirs.iter().map(|d| (d, kind)))
        .filter(|(d, n)| !listings.absent_in(d, n))
        .map(|(d, n)| d.join(n))
        .collect();
    let mut by_name: BTreeMap<String, Option<PathBuf>> = BTreeMap::new();
    let mut unlisted = Vec::new();
    for dir in ordered {
        let files = match listings.list(&dir) {
            Listing::Entries(files) => files,
            Listing::Absent => continue,
            Listing::Unlistable(why) => {
                diags.error(&Source::new(&dir, 1), why.clone());
                unlisted.push((dir, why.clone()));
                continue;
            }
        };
        for (f, file_type) in files {
            let Some(file_name) = f.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !file_name.ends_with(".conf") || file_name.starts_with('.') {
                continue;
            }
            if !file_type.is_some_and(|t| t.is_file() || t.is_symlink()) {
                diags.warning(
                        &Source::new(f, 1),
                        "skipped: not a regular file or a symlink; unitarmor does not read it (a FIFO here can also hang systemd when it loads the unit: remove it)",
                    );
                continue;
            }
            // A drop-in linked to /dev/null masks the same name everywhere below.
            let masked = file_type.is_some_and(|t| t.is_symlink())
                && std::fs::read_link(f).is_ok_and(|t| t == Path::new("/dev/null"));
            by_name.entry(file_name.to_string()).or_insert(if masked {
                None
            } else {
                Some(f.clone())
            });
        }
    }
    UnitFiles {
        fragment,
        dropins: by_name.into_values().flatten().collect(),
        unlisted,
    }
}

/// Merges the `[X-Armor]` sections of `files`, in order, into a policy for `unit`.
/// `root` prefixes named-policy lookups (`/` normally).
pub fn merge(
    lookup: &Lookup,
    files: &[PathBuf],
    unit: Option<&UnitName>,
    diags: &mut Diagnostics,
) -> Policy {
    let read = &mut |f: &Path| dropin::read_shared(f);
    merge_onto(lookup, Policy::default(), files, true, unit, read, diags).0
}

/// How a merge reads a file: [`dropin::read_limited`], or bytes read already.
pub type Read<'a> = dyn FnMut(&Path) -> Result<dropin::Bytes, dropin::ReadError> + 'a;

/// Merges a unit's files onto `policy`; also says whether any file set `ArmorMode=`. `own`:
/// the files are the unit's own (not a slice's above it), which `@systemd` reads.
pub(super) fn merge_onto(
    lookup: &Lookup,
    mut policy: Policy,
    files: &[PathBuf],
    own: bool,
    unit: Option<&UnitName>,
    read: &mut Read,
    diags: &mut Diagnostics,
) -> (Policy, bool) {
    let own_files = own.then_some(files);
    let mut mode_set = false;
    for file in files {
        let bytes = match read(file) {
            Ok(b) => b,
            Err(e) => {
                dropin::report_read_error(file, &e, diags);
                if !e.is_absent() && !is_shared(file) {
                    policy.unreadable.push(file.clone());
                }
                continue;
            }
        };
        let d = dropin::parse(file, &bytes, diags);
        policy.configured |= d.has_section;
        for entry in d.entries {
            mode_set |= matches!(entry, Entry::Mode(..));
            apply(lookup, &mut policy, entry, unit, own_files, diags);
        }
    }
    (policy, mode_set)
}

/// Merges a unit's files as layers, so that nothing in a unit's files drops its slices'
/// rules: `slice_layers` are the files of each slice above the unit, outermost first (one
/// `Vec` per slice: `a.slice`, then `a-b.slice`), `unit_files` the unit's own (for a slice,
/// its own files). Each layer is merged on its own, then:
///
/// - every layer's rules are kept: an empty `ArmorPolicy=` resets only the rules of its own
///   layer (a unit's, or one slice's), never those of the slices above it;
/// - the mode is the strictest (enforce over audit) of the modes of the layers that speak:
///   a layer speaks when it has rules or sets `ArmorMode=`. A unit's `ArmorMode=audit` does
///   not turn its slice's denials into audits;
/// - `ArmorMode=off` turns off the rules of its own layer only: off on a unit leaves its
///   slices' rules in force, off on a slice leaves the unit's;
/// - `ArmorExempt=` reads on from layer to layer as from file to file (an empty
///   `ArmorExempt=` in a unit's files lifts no more than the unit's own would).
pub fn merge_layers(
    lookup: &Lookup,
    slice_layers: &[Vec<PathBuf>],
    unit_files: &[PathBuf],
    unit: Option<&UnitName>,
    diags: &mut Diagnostics,
) -> Policy {
    let read = &mut |f: &Path| dropin::read_shared(f);
    merge_layers_from(lookup, slice_layers, unit_files, unit, read, diags)
}

/// [`merge_layers`], reading each file with `read`.
pub fn merge_layers_from(
    lookup: &Lookup,
    slice_layers: &[Vec<PathBuf>],
    unit_files: &[PathBuf],
    unit: Option<&UnitName>,
    read: &mut Read,
    diags: &mut Diagnostics,
) -> Policy {
    let mut policy = Policy::default();
    let mut mode = None;
    let mut last_mode = Mode::default();
    let layers = slice_layers
        .iter()
        .map(|f| (f.as_slice(), false))
        .chain([(unit_files, true)]);
    for (files, own) in layers {
        let start = Policy {
            exempt: std::mem::take(&mut policy.exempt),
            exempt_sources: std::mem::take(&mut policy.exempt_sources),
            ..Policy::default()
        };
        let (layer, mode_set) = merge_onto(lookup, start, files, own, unit, read, diags);
        policy.configured |= layer.configured;
        policy.unreadable.extend(layer.unreadable);
        policy.exempt = layer.exempt;
        policy.exempt_sources = layer.exempt_sources;
        last_mode = layer.mode;
        if !layer.configured || layer.mode == Mode::Off {
            continue;
        }
        let speaks = mode_set || !layer.rules.is_empty() || layer.broken > 0;
        policy.rules.extend(layer.rules);
        policy.broken_allow.extend(layer.broken_allow);
        policy.broken += layer.broken;
        if speaks {
            mode = Some(mode.map_or(layer.mode, |m: Mode| m.strictest(layer.mode)));
        }
    }
    policy.mode = mode.unwrap_or(last_mode);
    // What the kernel gets for a unit in learn mode (the daemon merges by layers; `check`
    // and `show` merge files as written).
    learn::apply(&mut policy);
    // The daemon keeps every armored unit's policy: a one-rule policy's rules were grown
    // with room for four.
    policy.rules.shrink_to_fit();
    policy
}

fn apply(
    lookup: &Lookup,
    policy: &mut Policy,
    entry: Entry,
    unit: Option<&UnitName>,
    own_files: Option<&[PathBuf]>,
    diags: &mut Diagnostics,
) {
    match entry {
        Entry::Mode(m, _) => policy.mode = m,
        Entry::Reset(_) => {
            policy.rules.clear();
            policy.broken_allow.clear();
            policy.broken = 0;
        }
        Entry::ExemptReset(_) => {
            policy.exempt.clear();
            policy.exempt_sources.clear();
        }
        Entry::Exempt(names, src) => {
            for p in names {
                policy.exempt.insert(p);
                policy
                    .exempt_sources
                    .entry(p)
                    .or_insert_with(|| src.clone());
            }
        }
        Entry::Policy(text, src) => {
            let errors = diags.errors().count();
            apply_rule(lookup, policy, text, src, unit, own_files, diags);
            if diags.errors().count() > errors {
                policy.broken += 1;
            }
        }
    }
}

/// Adds the rule (or the named policy) of one `ArmorPolicy=` line.
fn apply_rule(
    lookup: &Lookup,
    policy: &mut Policy,
    text: String,
    src: Source,
    unit: Option<&UnitName>,
    own_files: Option<&[PathBuf]>,
    diags: &mut Diagnostics,
) {
    if text.strip_prefix('@').map(str::trim) == Some(granted::NAME) {
        match own_files {
            Some(files) => {
                let rules = granted::expand(files, unit, &lookup.root, &src, diags);
                policy.rules.extend(rules);
            }
            None => diags.error(
                &src,
                format!(
                    "@{}: what systemd grants is a service's own; a slice's files cannot include it",
                    granted::NAME
                ),
            ),
        }
    } else if let Some(name) = text.strip_prefix('@') {
        let before = policy.broken_allow.clone();
        let rules = named::expand(
            lookup,
            name.trim(),
            unit,
            &src,
            &mut Vec::new(),
            &mut policy.broken_allow,
            diags,
        );
        // A named policy that is missing or unreadable makes every class an allow-list;
        // not when a drop-in many units read includes it (one removed file would refuse every
        // service; the error is reported for each, as for an unreadable shared file).
        let all = |set: &std::collections::BTreeSet<super::Class>| {
            super::Class::ALL.iter().all(|c| set.contains(c))
        };
        if is_shared(&src.file) && all(&policy.broken_allow) && !all(&before) {
            policy.broken_allow = before;
        }
        policy.rules.extend(rules);
    } else {
        match Rule::parse(&text, unit, src.clone()) {
            Ok(r) => policy.rules.push(r),
            Err(e) => {
                // A broken allow rule keeps its class an allow-list: deny, not allow.
                policy.broken_allow.extend(Rule::broken_allow_class(&text));
                diags.error(&src, e);
            }
        }
    }
}

#[cfg(test)]
#[path = "resolve_tests.rs"]
mod tests;
