//! Which units to armor, and where their configuration comes from: found on disk (every
//! unit file and drop-in in systemd's search path), refined by systemd for loaded units.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::Result;
use futures_util::stream::{self, StreamExt};
use tracing::warn;
use zbus::{Connection, OwnedObjectPath};

use crate::policy::diag::Severity;
use crate::policy::dropin::{self, ReadError};
use crate::policy::listings::{Listing, Listings};
use crate::policy::resolve::{self, UNIT_DIRS};
use crate::policy::specifiers::UnitName;
use crate::policy::Diagnostics;
use crate::systemd::{self, ManagerProxy, UnitInfo};

/// A unit to consider, with where its configuration comes from.
#[derive(Clone)]
pub(super) struct Candidate {
    pub(super) name: String,
    pub(super) files: Vec<PathBuf>,
    pub(super) slice: String,
    pub(super) control_group: String,
    /// Drop-in directories of the unit that exist but could not be listed (read from disk
    /// only: systemd's view lists its own files).
    pub(super) unlisted: Vec<(PathBuf, String)>,
    /// A user unit's user and own files (users.rs); None for a system unit.
    pub(super) user: Option<super::users::UserPart>,
}

impl Candidate {
    /// Reads one of its files: a user unit's own file as its user's (`dropin::read_owned`:
    /// only if the user owns it, so that a symlink in their directory to a file only root
    /// reads shows nothing of it), any other through the pass's reads.
    pub(super) fn read(
        &self,
        disk: &mut DiskPass,
        file: &Path,
    ) -> Result<dropin::Bytes, ReadError> {
        match &self.user {
            Some(u) if u.own.iter().any(|f| f == file) => dropin::read_owned(file, u.uid),
            _ => disk.read(file),
        }
    }
}

/// The files of each slice above a unit that has `[X-Armor]`, outermost first, and the slices'
/// drop-in directories that could not be listed.
pub(super) type SliceLayers = (Vec<Vec<PathBuf>>, Vec<(PathBuf, String)>);

/// What one look at the disk has found so far: a pass over every unit (a reload, the daemon's
/// start) lists each directory once and reads each slice's files once, instead of once per
/// unit (a thousand units in `system.slice` read `system.slice`'s drop-in directories a
/// thousand times); a look at one unit asks the file system directly.
pub(super) struct DiskPass {
    listings: Listings,
    slices: HashMap<String, SliceLayers>,
    /// When it began (monotonic ns, the programs' clock): a unit's first policy read by it is
    /// installed only if no file it read was written since (first.rs).
    pub(super) began: u64,
    /// What each file held when the pass first read it (a pass over every unit): a pass
    /// looks at an armored unit's files several times (for `[X-Armor]`, `Slice=`, the merge)
    /// and at a slice's drop-ins once for each unit in the slice, and reads each once. Files
    /// that could not be read are read again, for their error.
    /// Keyed by the path's bytes: hashing a `Path` walks its components.
    reads: Option<HashMap<std::ffi::OsString, dropin::Bytes>>,
}

impl DiskPass {
    /// For a pass over every unit.
    pub(super) fn whole() -> DiskPass {
        DiskPass {
            listings: Listings::for_pass(Path::new("/")),
            slices: HashMap::new(),
            began: crate::kernel::pending::monotonic_ns(),
            reads: Some(HashMap::new()),
        }
    }

    /// For a look at one unit.
    pub(super) fn one() -> DiskPass {
        DiskPass {
            listings: Listings::direct(),
            slices: HashMap::new(),
            began: crate::kernel::pending::monotonic_ns(),
            reads: None,
        }
    }

    /// The directory listings of this look.
    pub(super) fn listings(&mut self) -> &mut Listings {
        &mut self.listings
    }

    /// Reads `path` ([`dropin::read_limited`]), once in a pass over every unit.
    pub(super) fn read(&mut self, path: &Path) -> Result<dropin::Bytes, ReadError> {
        let Some(reads) = &mut self.reads else {
            return dropin::read_shared(path);
        };
        if let Some(b) = reads.get(path.as_os_str()) {
            return Ok(b.clone());
        }
        let bytes = dropin::Bytes::new(if self.listings.listed_regular(path) {
            dropin::read_regular(path)?
        } else {
            dropin::read_limited(path)?
        });
        reads.insert(path.as_os_str().to_owned(), bytes.clone());
        Ok(bytes)
    }
}

/// Every service that is armored, as systemd sees it where it is loaded: unit files and
/// drop-ins that mention `[X-Armor]` are found on disk, then systemd is asked for the exact
/// files, slice and cgroup of those that are loaded; loaded instances of armored templates are
/// added. Units without `[X-Armor]` cost one file read per rescan and no D-Bus call.
pub(super) async fn discover(conn: &Connection, manager: &ManagerProxy<'_>) -> Vec<Candidate> {
    let mut disk = DiskPass::whole();
    let mut out: Vec<Candidate> = discover_on_disk(&mut disk, true);
    // Not kept through the exchange with PID 1: applying it reads the files again.
    disk.reads = Some(HashMap::new());
    // What is loaded, in one call: most armored units on a host are not (only what is
    // started or referred to is), and asking for each of them by name costs PID 1 a message
    // per unit. A name it does not list is asked for only where it may be an alias of a
    // loaded unit (a symlink in a unit directory; `ListUnits` lists units by their own name).
    let listed = manager.list_units().await.ok();
    let ids: Option<HashMap<&str, &OwnedObjectPath>> = listed
        .as_ref()
        .map(|rows| rows.iter().map(|r| (r.0.as_str(), &r.6)).collect());
    let links = symlinked_names(&mut disk);
    let loaded: Vec<(usize, String, Option<OwnedObjectPath>)> = out
        .iter()
        .enumerate()
        .filter(|(_, c)| !UnitName::new(c.name.as_str()).is_template())
        .filter_map(|(i, c)| match &ids {
            None => Some((i, c.name.clone(), None)),
            Some(ids) => match ids.get(c.name.as_str()) {
                Some(path) => Some((i, c.name.clone(), Some((*path).clone()))),
                // Not loaded (what the disk says stands), unless it may be an alias.
                None => links
                    .as_ref()
                    .is_none_or(|l| may_alias(l, &c.name))
                    .then(|| (i, c.name.clone(), None)),
            },
        })
        .collect();
    let infos: Vec<(usize, String, Option<Result<UnitInfo>>)> = stream::iter(loaded)
        .map(|(i, name, path)| async move {
            let path = match path {
                Some(p) => Ok(p),
                None => manager.get_unit(&name).await,
            };
            // Not loaded: what the disk says stands.
            let info = match path {
                Ok(path) => Some(systemd::unit_info(conn, path).await),
                Err(_) => None,
            };
            (i, name, info)
        })
        .buffered(IN_FLIGHT)
        .collect()
        .await;
    for (i, name, info) in infos {
        match info {
            Some(Ok(info)) => {
                let c = &mut out[i];
                // What the disk could not list stays unknown in systemd's view too.
                let unlisted = std::mem::take(&mut c.unlisted);
                *c = candidate_from(info);
                c.unlisted = unlisted;
            }
            Some(Err(e)) => warn!("cannot read unit {name}: {e:#}"),
            None => {}
        }
    }
    let templates: HashSet<String> = out
        .iter()
        .filter(|c| UnitName::new(c.name.as_str()).is_template())
        .map(|c| c.name.clone())
        .collect();
    let known: HashSet<String> = out.iter().map(|c| c.name.clone()).collect();
    let instances: Vec<_> = listed
        .unwrap_or_default()
        .into_iter()
        .filter(|row| {
            template_of(&row.0).is_some_and(|t| templates.contains(&t)) && !known.contains(&row.0)
        })
        .collect();
    let infos: Vec<_> = stream::iter(instances)
        .map(|row| async move { (systemd::unit_info(conn, row.6).await, row.0) })
        .buffered(IN_FLIGHT)
        .collect()
        .await;
    for (info, name) in infos {
        match info {
            Ok(info) => out.push(candidate_from(info)),
            Err(e) => warn!("cannot read unit {name}: {e:#}"),
        }
    }
    out.sort_by_key(|c| bind_order(&c.name));
    out
}

/// The names that are symlinks in a unit directory: aliases (or linked unit files), which
/// systemd may have loaded under another name. None if a unit directory could not be listed
/// (any name there may be one).
fn symlinked_names(disk: &mut DiskPass) -> Option<HashSet<String>> {
    let mut out = HashSet::new();
    for dir in UNIT_DIRS {
        match disk.listings.list(Path::new(dir)) {
            Listing::Entries(entries) => out.extend(
                entries
                    .iter()
                    // An entry whose type could not be read may be one.
                    .filter(|(_, t)| t.is_none_or(|t| t.is_symlink()))
                    .filter_map(|(p, _)| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned()),
            ),
            Listing::Absent => {}
            Listing::Unlistable(_) => return None,
        }
    }
    Some(out)
}

/// Whether `name` may be an alias of a unit loaded under another name, given the names that
/// are symlinks in a unit directory: its own, or its template's (an alias of a template
/// aliases every instance of it: `foo@x.service` is `bar@x.service` when `foo@.service`
/// links to `bar@.service`).
fn may_alias(links: &HashSet<String>, name: &str) -> bool {
    links.contains(name) || template_of(name).is_some_and(|t| links.contains(&t))
}

/// How many units a rescan asks systemd about at once. PID 1 answers one message at a time,
/// but most of what each answer costs is the round trip (a wake-up of PID 1 and of the
/// daemon); asking for several at once overlaps those. The order of the answers is kept.
/// Sixteen units are 80 calls waiting for replies, under the 128 dbus-daemon allows one
/// connection on the system bus by default (`max_replies_per_connection`).
const IN_FLIGHT: usize = 16;

/// The most dashes a prefix may have (bpf/unitarmor.h: UA_PREFIXES_MAX).
pub(super) const PREFIXES_MAX: usize = 8;

/// For a prefix unit name (`run-.scope`, what the drop-in directory `run-.scope.d` is named
/// after), its prefix and type: `("run-", "scope")`. None for any other name.
pub(super) fn prefix_of(unit: &str) -> Option<(&str, &str)> {
    let (stem, suffix) = unit.rsplit_once('.')?;
    // The kernel looks up the prefixes ending at a name's first 8 dashes (bpf/binding.h:
    // UA_PREFIXES_MAX); a longer prefix would be armored here and never found there.
    let ok = stem.len() > 1
        && stem.ends_with('-')
        && !stem.contains('@')
        && stem.matches('-').count() <= PREFIXES_MAX
        && matches!(suffix, "service" | "scope");
    ok.then_some((stem, suffix))
}

/// Whether a prefix unit's directory applies to `unit` (systemd reads `run-.scope.d` for
/// `run-u7.scope`, not for instances, which have the template's name).
pub(super) fn prefix_covers(prefix_unit: &str, unit: &str) -> bool {
    let (Some((prefix, kind)), Some((stem, suffix))) =
        (prefix_of(prefix_unit), unit.rsplit_once('.'))
    else {
        return false;
    };
    suffix == kind && stem.len() > prefix.len() && stem.starts_with(prefix) && !stem.contains('@')
}

/// `foo@.service` for an instance `foo@bar.service`.
pub(super) fn template_of(unit: &str) -> Option<String> {
    let (prefix, rest) = unit.split_once('@')?;
    let (instance, suffix) = rest.rsplit_once('.')?;
    (!instance.is_empty()).then(|| format!("{prefix}@.{suffix}"))
}

/// Services found in systemd's unit directories (unit files, templates, and instances or
/// units that only have drop-ins), resolved the way systemd would. With `armored_only`, only
/// those whose files mention `[X-Armor]` or could not all be listed: the others' files are
/// then read once, not a second time for their `Slice=`.
pub(super) fn discover_on_disk(disk: &mut DiskPass, armored_only: bool) -> Vec<Candidate> {
    let mut names = Vec::new();
    for dir in UNIT_DIRS {
        let found: Vec<String> = match disk.listings.list(Path::new(dir)) {
            Listing::Entries(entries) => entries
                .iter()
                .filter_map(|(p, _)| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .collect(),
            Listing::Absent => continue,
            // An error partway through the listing: every entry that could be read still
            // counts (a unit left out would be taken for one that is gone, and disarmed).
            Listing::Unlistable(_) => match std::fs::read_dir(dir) {
                Ok(entries) => entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect(),
                Err(_) => continue,
            },
        };
        for name in found {
            let unit = name.strip_suffix(".d").unwrap_or(&name);
            // Type-level drop-in directories (service.d) are not units; the root slice has no
            // cgroup of its own to bind. A prefix directory (run-.scope.d, foo-.service.d) is
            // taken as a unit named after it: its policy binds, at creation, the units of that
            // prefix no file names (scopes and services made at run time).
            let kind_ok = unit.ends_with(".service")
                || unit.ends_with(".scope")
                || (unit.ends_with(".slice") && unit != "-.slice");
            let dashed = unit.ends_with("-.service") || unit.ends_with("-.scope");
            let prefix = dashed && prefix_of(unit).is_some();
            if dashed && !prefix && unit.matches('-').count() > PREFIXES_MAX {
                warn!(
                    "{dir}/{name}: a prefix of more than {PREFIXES_MAX} dashes is not bound at \
                     its units' creation; each is armored when the daemon reads its own files"
                );
            }
            if kind_ok
                && (!dashed || prefix)
                && !unit.ends_with("-.slice")
                && !unit.starts_with('.')
            {
                names.push(unit.to_string());
            }
        }
    }
    names.sort();
    names.dedup();
    let mut out: Vec<Candidate> = names
        .into_iter()
        .filter_map(|name| {
            let (files, unlisted) = files_on_disk(&name, disk);
            if armored_only
                && unlisted.is_empty()
                && !resolve::mentions_armor_from(&files, &mut |f| disk.read(f))
            {
                return None;
            }
            let slice = systemd::slice_from_files_from(&files, &mut |f| disk.read(f))
                .unwrap_or_else(|| systemd::default_slice(&name));
            Some(Candidate {
                slice,
                control_group: String::new(),
                name,
                files,
                unlisted,
                user: None,
            })
        })
        .collect();
    // Users' units (users.rs), bound by their exact paths: after the system's.
    out.extend(super::users::candidates(disk));
    out.sort_by_key(|c| bind_order(&c.name));
    out
}

/// Whether `unit` has a unit file or a drop-in directory of its own in a unit directory: the
/// units [`discover_on_disk`] lists by name (an instance with a drop-in of its own is armored
/// from disk before systemd loads it).
pub(super) fn named_on_disk(unit: &str) -> bool {
    UNIT_DIRS.iter().any(|d| {
        let d = Path::new(d);
        d.join(unit).symlink_metadata().is_ok()
            || d.join(format!("{unit}.d")).symlink_metadata().is_ok()
    })
}

/// A unit's fragment and drop-ins on disk, in systemd's order, and its drop-in directories
/// that could not be listed; drop-in directory entries that systemd does not read (FIFOs,
/// sockets, devices, directories) are skipped with a warning.
pub(super) fn files_on_disk(
    unit: &str,
    disk: &mut DiskPass,
) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
    let mut diags = Diagnostics::default();
    let found = resolve::unit_files_listed(Path::new("/"), unit, &mut diags, &mut disk.listings);
    // Unlisted directories are reported by `reconcile`, as errors.
    for d in diags.0.iter().filter(|d| d.severity == Severity::Warning) {
        warn!(object_systemd_unit = unit, "{unit}: {d}");
    }
    let files = found.fragment.into_iter().chain(found.dropins).collect();
    (files, found.unlisted)
}

/// Slices first, then templates, then units: each binds its whole cgroup tree, and what is
/// bound later (a unit inside a slice, an instance under its template's slice) takes over its
/// own subtree.
pub(super) fn bind_order(name: &str) -> u8 {
    if name.ends_with(".slice") {
        0
    } else if UnitName::new(name).is_template() {
        1
    } else {
        2
    }
}

/// The files of every slice from the outermost down to `slice` (root slice excepted), one
/// layer per slice that mentions `[X-Armor]`, for [`resolve::merge_layers`]: no slice's
/// files can drop the rules of a slice above it.
pub(super) fn slice_layers(slice: &str, disk: &mut DiskPass) -> Vec<Vec<PathBuf>> {
    slice_layers_checked(slice, disk).0
}

/// [`slice_layers`], and the slices' drop-in directories that could not be listed.
pub(super) fn slice_layers_checked(slice: &str, disk: &mut DiskPass) -> SliceLayers {
    if let Some(known) = disk.slices.get(slice) {
        return known.clone();
    }
    let found = read_slice_layers(slice, disk);
    disk.slices.insert(slice.to_string(), found.clone());
    found
}

fn read_slice_layers(slice: &str, disk: &mut DiskPass) -> SliceLayers {
    let Some(stem) = slice.strip_suffix(".slice") else {
        return (Vec::new(), Vec::new());
    };
    let mut out = Vec::new();
    let mut unlisted = Vec::new();
    let mut prefix = String::new();
    for part in stem.split('-').filter(|p| !p.is_empty()) {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        let (files, dirs) = files_on_disk(&format!("{prefix}.slice"), disk);
        if resolve::mentions_armor_from(&files, &mut |f| disk.read(f)) {
            out.push(files);
        }
        unlisted.extend(dirs);
    }
    (out, unlisted)
}

/// `a-b.slice` is in `a.slice`; `a.slice` in the root slice.
pub(super) fn parent_slice(slice: &str) -> String {
    match slice
        .strip_suffix(".slice")
        .and_then(|s| s.rsplit_once('-'))
    {
        Some((parent, _)) if !parent.is_empty() => format!("{parent}.slice"),
        _ => "-.slice".to_string(),
    }
}

pub(super) fn candidate_from(info: UnitInfo) -> Candidate {
    let slice = if info.slice.is_empty() {
        systemd::default_slice(&info.name)
    } else {
        info.slice
    };
    Candidate {
        name: info.name,
        files: info.files,
        slice,
        control_group: info.control_group,
        unlisted: Vec::new(),
        user: None,
    }
}

/// The cgroup a candidate's processes live in (or will): the unit's own for a unit, the
/// per-template slice for a bare template.
pub(super) fn expected_path(c: &Candidate) -> String {
    if c.name.ends_with(".slice") {
        return systemd::slice_path(&c.name);
    }
    if UnitName::new(c.name.as_str()).is_template() {
        let instance_like = c.name.replacen('@', "@x", 1);
        return systemd::slice_path(&systemd::default_slice(&instance_like));
    }
    if !c.control_group.is_empty() {
        return c.control_group.clone();
    }
    systemd::expected_cgroup(&c.slice, &c.name)
}

/// The cgroup(s) a unit's processes are put in, as a path pattern: the unit's own, or any
/// unit's below a slice or a template's slice.
pub(super) fn cgroup_pattern(name: &str, expected: &str) -> String {
    if bind_order(name) < 2 {
        format!("{expected}/**")
    } else {
        expected.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_over_every_unit_reads_each_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.conf");
        std::fs::write(&f, "one").unwrap();
        let (mut whole, mut one) = (DiskPass::whole(), DiskPass::one());
        assert_eq!(whole.read(&f).unwrap()[..], b"one"[..]);
        assert_eq!(one.read(&f).unwrap()[..], b"one"[..]);
        std::fs::write(&f, "two").unwrap();
        // The pass keeps what it read first; a look at one unit reads the file again.
        assert_eq!(whole.read(&f).unwrap()[..], b"one"[..]);
        assert_eq!(one.read(&f).unwrap()[..], b"two"[..]);
        // A file that could not be read is read again, for its error.
        let gone = dir.path().join("gone.conf");
        assert!(whole.read(&gone).is_err());
        std::fs::write(&gone, "now").unwrap();
        assert_eq!(whole.read(&gone).unwrap()[..], b"now"[..]);
    }

    #[test]
    fn a_user_units_own_files_are_read_as_its_users() {
        let dir = tempfile::tempdir().unwrap();
        let root_file = dir.path().join("root.conf");
        std::fs::write(&root_file, "[X-Armor]\n").unwrap();
        // A user's own file that leads to a file they do not own: the files belong to the
        // uid running this test, and the unit's user is another uid.
        let own = dir.path().join("own.service");
        std::os::unix::fs::symlink(&root_file, &own).unwrap();
        // SAFETY: geteuid takes no arguments and cannot fail.
        let uid = unsafe { libc::geteuid() }.wrapping_add(1);
        let c = Candidate {
            name: "u.service~1".into(),
            files: vec![root_file.clone(), own.clone()],
            slice: String::new(),
            control_group: String::new(),
            unlisted: Vec::new(),
            user: Some(super::super::users::UserPart {
                uid,
                home: dir.path().to_path_buf(),
                unit: "u.service".into(),
                own: vec![own.clone()],
            }),
        };
        let mut disk = DiskPass::whole();
        assert_eq!(
            c.read(&mut disk, &root_file).unwrap()[..],
            b"[X-Armor]\n"[..]
        );
        assert!(matches!(
            c.read(&mut disk, &own),
            Err(ReadError::NotOwned(_))
        ));
        // What the user's file leads to does not armor the unit, nor count as unreadable (a
        // file not the user's is one systemd's user manager would not read either).
        let own_only = [own.clone()];
        assert!(!resolve::mentions_armor_from(&own_only, &mut |f| c.read(&mut disk, f)));
        assert!(resolve::all_readable_from(&own_only, &mut |f| c.read(&mut disk, f)));
        // Through the pass's reads, as root reads it, it said what the other file says.
        assert!(resolve::mentions_armor_from(&own_only, &mut |f| disk.read(f)));
    }

    #[test]
    fn prefixes_are_named_as_systemd_reads_them() {
        assert_eq!(prefix_of("run-.scope"), Some(("run-", "scope")));
        assert_eq!(prefix_of("docker-.scope"), Some(("docker-", "scope")));
        assert_eq!(prefix_of("foo-bar-.service"), Some(("foo-bar-", "service")));
        // Not prefixes: whole names, type-level directories, slices, templates.
        assert_eq!(prefix_of("run-u7.scope"), None);
        assert_eq!(prefix_of("-.scope"), None);
        assert_eq!(prefix_of("scope"), None);
        assert_eq!(prefix_of("system-.slice"), None);
        assert_eq!(prefix_of("a@-.service"), None);
        assert_eq!(
            prefix_of("a-b-c-d-e-f-g-h-.scope"),
            Some(("a-b-c-d-e-f-g-h-", "scope"))
        );
        assert_eq!(prefix_of("a-b-c-d-e-f-g-h-i-.scope"), None);
    }

    #[test]
    fn a_prefix_covers_longer_names_of_its_type() {
        assert!(prefix_covers("run-.scope", "run-u7.scope"));
        assert!(prefix_covers("run-.scope", "run-a-b.scope"));
        assert!(prefix_covers("foo-bar-.service", "foo-bar-baz.service"));
        assert!(!prefix_covers("run-.scope", "run-.scope"));
        assert!(!prefix_covers("run-.scope", "run-u7.service"));
        assert!(!prefix_covers("run-.scope", "runner-1.scope"));
        assert!(!prefix_covers("foo-.service", "foo-x@1.service"));
        assert!(!prefix_covers("run-u7.scope", "run-u7x.scope"));
    }

    #[test]
    fn aliases_are_asked_for_by_name() {
        let links: HashSet<String> = ["web.service", "foo@.service", "one@x.service"]
            .into_iter()
            .map(String::from)
            .collect();
        assert!(may_alias(&links, "web.service"));
        // The alias of a template aliases every instance of it.
        assert!(may_alias(&links, "foo@x.service"));
        assert!(may_alias(&links, "one@x.service"));
        assert!(!may_alias(&links, "one@y.service"));
        assert!(!may_alias(&links, "bar@x.service"));
        assert!(!may_alias(&links, "app.service"));
    }
}
