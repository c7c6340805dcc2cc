//! User units (policy/user.rs): whose service managers to arm, and one candidate for each
//! armored unit of each user, named `UNIT~UID` ([`key`]: no system unit's name has a `~`).
//!
//! Users are those the password database lists with a uid from 1000 up (not `nobody`), and
//! any other whose manager runs (`user@UID.service` in cgroupfs): their policies are in the
//! kernel before their managers start, so a user unit is bound at its cgroup's creation by its
//! exact path (`/user.slice/user-UID.slice/user@UID.service/app.slice/UNIT`), which only that
//! user (and root) can create. The daemon reads root's files and the user's own on every
//! pass, and watches both (watch.rs).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use tracing::warn;

use super::discover::{Candidate, DiskPass};
use crate::policy::user::{self, ROOT_DIRS};
use crate::policy::Diagnostics;
use crate::policy::{dropin, resolve};
use crate::systemd;

/// At most this many units are armored by one user's own files alone: each takes a policy
/// slot, of which all units share about a thousand.
pub(super) const MAX_OWN_UNITS: usize = 8;
/// At most this many entries of a user's own unit directory are looked at in a pass (each
/// pass reads them all).
const MAX_OWN_ENTRIES: usize = 1024;

/// At most this many DFA cells for the tables of a unit with rules from its user's own files
/// (of the 2^21 all units share; one policy may take 2^20).
pub(super) const MAX_OWN_CELLS: usize = 1 << 14;

/// A user unit's part of a candidate.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct UserPart {
    pub(super) uid: u32,
    pub(super) home: PathBuf,
    /// The unit's name in the user's manager.
    pub(super) unit: String,
    /// The user's own files among the candidate's (its last ones).
    pub(super) own: Vec<PathBuf>,
}

/// The daemon's name for user `uid`'s unit `unit`.
pub(super) fn key(unit: &str, uid: u32) -> String {
    format!("{unit}~{uid}")
}

pub(super) use crate::systemd::split_user_key as split_key;

/// A known user: uid, name (empty if the password file does not have it) and home directory
/// (resolved: the patterns of its protected files must name it as the kernel's paths do).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct User {
    pub(super) uid: u32,
    pub(super) name: String,
    pub(super) home: PathBuf,
}

/// The users whose units are armored: those whose manager runs now (`user@UID.service` in
/// cgroupfs) or starts (its `ExecStartPre=` asks the daemon for a pass first:
/// units/user@.service.d), and those who linger (`loginctl enable-linger`: their managers start
/// at boot). Not every user of the password file: each armored user unit of each user takes a
/// policy slot, and a host with many users would run out of them.
pub(super) fn users() -> Vec<User> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let known = regular_users(&passwd);
    let lingering = lingering_names();
    let mut out: BTreeSet<User> = known
        .iter()
        .filter(|u| lingering.contains(&u.name))
        .cloned()
        .collect();
    for uid in running_managers() {
        if out.iter().any(|u| u.uid == uid) {
            continue;
        }
        let user = known.iter().find(|u| u.uid == uid).cloned().or_else(|| {
            home_of(uid).map(|home| User {
                uid,
                name: String::new(),
                home,
            })
        });
        out.extend(user);
    }
    out.into_iter().collect()
}

/// The names of the users who linger (systemd-logind's `/var/lib/systemd/linger/NAME`).
fn lingering_names() -> BTreeSet<String> {
    std::fs::read_dir("/var/lib/systemd/linger")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The regular users of a password file's text.
fn regular_users(passwd: &str) -> Vec<User> {
    passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let uid: u32 = f.get(2)?.parse().ok()?;
            let home = f.get(5)?;
            ((1000..65534).contains(&uid) && home.starts_with('/')).then(|| User {
                uid,
                name: f[0].to_string(),
                home: resolved(Path::new(home)),
            })
        })
        .collect()
}

/// The uids whose managers run: `user@UID.service` cgroups below `user.slice`.
fn running_managers() -> Vec<u32> {
    let Ok(slices) = std::fs::read_dir("/sys/fs/cgroup/user.slice") else {
        return Vec::new();
    };
    slices
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let uid: u32 = name
                .strip_prefix("user-")?
                .strip_suffix(".slice")?
                .parse()
                .ok()?;
            e.path()
                .join(format!("user@{uid}.service"))
                .is_dir()
                .then_some(uid)
        })
        .collect()
}

/// A user's home directory from the name service (users not in the password file).
fn home_of(uid: u32) -> Option<PathBuf> {
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16384];
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwuid_r fills `pw` with pointers into `buf`, both ours and alive below.
    let r = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
    if r != 0 || out.is_null() || pw.pw_dir.is_null() {
        return None;
    }
    // SAFETY: a NUL-terminated string in `buf`.
    let dir = unsafe { std::ffi::CStr::from_ptr(pw.pw_dir) };
    let home = PathBuf::from(dir.to_str().ok()?);
    home.is_absolute().then(|| resolved(&home))
}

/// `path` with its symlinks resolved (`/home` may link to `/var/home`), or as it is.
fn resolved(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Whether `name` is a service's name as systemd accepts it (its characters, its length) and
/// one this module armors: no template or instance (`@`), no dashed prefix.
fn plain_service(name: &str) -> bool {
    valid_name(name)
        && name.ends_with(".service")
        && !name.contains('@')
        && !name.ends_with("-.service")
}

/// Whether `name` is a unit name of systemd's characters (`unit_name_is_valid`): letters,
/// digits, `:-_.\` and `@`, at most 255 bytes, not starting with `.`. No `/`: a name makes a
/// cgroup path component, and a user's file must not climb out of the user's tree.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
}

/// The names of the services that `dirs` configure (a unit file or a drop-in directory of the
/// name) and whose files mention `[X-Armor]`. Templates, instances and dashed prefixes are not
/// armored as user units yet: each is named in a warning, once per pass.
fn armored_names(
    dirs: &[PathBuf],
    disk: &mut DiskPass,
    read: &mut resolve::Read,
    limit: usize,
) -> Vec<String> {
    let mut names = BTreeSet::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten().take(limit) {
            let name = e.file_name().to_string_lossy().into_owned();
            let unit = name.strip_suffix(".d").unwrap_or(&name);
            if unit.ends_with(".service") && valid_name(unit) {
                names.insert(unit.to_string());
            }
        }
    }
    names
        .into_iter()
        .filter(|n| {
            let files = files_in(dirs, n, disk).0;
            if !resolve::mentions_armor_from(&files, read) {
                return false;
            }
            if !plain_service(n) {
                if first_time(&format!("plain {n}")) {
                    warn!(
                        "user unit {n}: templates, instances and prefixes are not armored as \
                         user units yet; its [X-Armor] section is not enforced"
                    );
                }
                return false;
            }
            true
        })
        .collect()
}

/// A unit's fragment and drop-ins in `dirs`, and the drop-in directories that could not be
/// listed.
fn files_in(
    dirs: &[PathBuf],
    unit: &str,
    disk: &mut DiskPass,
) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
    let found = resolve::unit_files_in(dirs, unit, &mut Diagnostics::default(), disk.listings());
    (
        found.fragment.into_iter().chain(found.dropins).collect(),
        found.unlisted,
    )
}

fn root_dirs() -> Vec<PathBuf> {
    ROOT_DIRS.iter().map(PathBuf::from).collect()
}

/// Every armored user unit of every known user, as candidates.
pub(super) fn candidates(disk: &mut DiskPass) -> Vec<Candidate> {
    let roots = root_dirs();
    let root_names = armored_names(&roots, disk, &mut |f| dropin::read_shared(f), usize::MAX);
    let mut out = Vec::new();
    for u in users() {
        let own_dirs = user::own_dirs(&u.home);
        let mut own_names = armored_names(
            &own_dirs,
            disk,
            &mut |f| dropin::read_owned(f, u.uid),
            MAX_OWN_ENTRIES,
        );
        own_names.retain(|n| !root_names.contains(n));
        if own_names.len() > MAX_OWN_UNITS {
            warn!(
                "user {}: its own files armor {} units; at most {MAX_OWN_UNITS} are armored \
                 by a user's own files alone (the first by name)",
                u.uid,
                own_names.len()
            );
            own_names.truncate(MAX_OWN_UNITS);
        }
        for name in root_names.iter().chain(&own_names) {
            out.extend(candidate(&u, name, disk));
        }
    }
    // Warnings of units no longer armored are forgotten (a user renaming files must not grow
    // the daemon's memory).
    let names: BTreeSet<&str> = out.iter().map(|c| c.name.as_str()).collect();
    WARNED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|k, _| names.contains(k.as_str()));
    out
}

/// The candidate of user `u`'s unit `name`, or None (with an error in the journal) when its
/// cgroup path cannot be keyed: too long, or a `Slice=` that is no slice's name.
fn candidate(u: &User, name: &str, disk: &mut DiskPass) -> Option<Candidate> {
    let (mut files, mut unlisted) = files_in(&root_dirs(), name, disk);
    let (own, own_unlisted) = files_in(&user::own_dirs(&u.home), name, disk);
    // Root's files through the pass's reads: every user's candidate reads them.
    let slice = systemd::slice_from_files_from(&files, &mut |f| disk.read(f))
        .or_else(|| systemd::slice_from_files_from(&own, &mut |f| dropin::read_owned(f, u.uid)))
        .unwrap_or_else(|| "app.slice".to_string());
    let Some(path) = cgroup_path(u.uid, &slice, name) else {
        if !first_time(&format!("slice {} {name} {slice}", u.uid)) {
            return None;
        }
        tracing::error!(
            object_systemd_unit = format!("user@{}.service", u.uid).as_str(),
            object_systemd_user_unit = name,
            object_uid = u.uid,
            "{name} (user {}): Slice={slice} gives no cgroup path unitarmor can bind (not a \
             slice's name, or longer than {} bytes); not armored",
            u.uid,
            crate::kernel::CGROUP_PATH_MAX - 1
        );
        return None;
    };
    files.extend(own.iter().cloned());
    unlisted.extend(own_unlisted);
    Some(Candidate {
        name: key(name, u.uid),
        files,
        slice: String::new(),
        control_group: path,
        unlisted,
        user: Some(UserPart {
            uid: u.uid,
            home: u.home.clone(),
            unit: name.to_string(),
            own,
        }),
    })
}

/// The cgroup path of user `uid`'s unit `name` in `slice`, if it is one: both valid names,
/// the path inside the user's manager's tree and short enough for the kernel's key (a longer
/// one would be keyed by the unit's name alone, which PID 1's units are looked up by).
fn cgroup_path(uid: u32, slice: &str, name: &str) -> Option<String> {
    if !valid_name(slice) || !slice.ends_with(".slice") || !valid_name(name) {
        return None;
    }
    let path = format!(
        "/user.slice/user-{uid}.slice/user@{uid}.service{}",
        systemd::expected_cgroup(slice, name)
    );
    let inside = path.split('/').all(|c| c != ".." && c != ".");
    (inside && path.len() < crate::kernel::CGROUP_PATH_MAX).then_some(path)
}

/// The candidate a [`key`] names, as the files now say, or None for a system unit's name or
/// a user no longer known.
pub(super) fn candidate_for_key(name: &str, disk: &mut DiskPass) -> Option<Candidate> {
    let (unit, uid) = split_key(name)?;
    let u = users().into_iter().find(|u| u.uid == uid).unwrap_or(User {
        uid,
        name: String::new(),
        home: home_of(uid).unwrap_or_else(|| PathBuf::from("/nonexistent")),
    });
    candidate(&u, unit, disk)
}

/// A user unit's policy: root's files (the candidate's, before the user's own) and the
/// user's own, read only if the user owns them (policy/user.rs).
pub(super) fn merge(
    c: &Candidate,
    u: &UserPart,
    disk: &mut DiskPass,
    diags: &mut Diagnostics,
) -> crate::policy::Policy {
    let root_files = &c.files[..c.files.len() - u.own.len()];
    let uid = u.uid;
    let mut own_diags = Diagnostics::default();
    let policy = user::merge_user(
        &crate::policy::named::Lookup::system(),
        root_files,
        &u.own,
        &crate::policy::specifiers::UnitName::new(u.unit.as_str()),
        &mut |f| disk.read(f),
        &mut |f| dropin::read_owned(f, uid),
        (&u.home, uid),
        &mut own_diags,
    );
    // Warnings (a user's rule not honored, a file not the user's) go to the journal once each
    // time they change: every pass merges again.
    let warnings: Vec<String> = own_diags
        .0
        .iter()
        .filter(|d| d.severity == crate::policy::Severity::Warning)
        .map(|d| d.to_string())
        .collect();
    let mut said = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    if said.get(&c.name) != Some(&warnings) {
        for w in &warnings {
            warn!(
                object_systemd_unit = format!("user@{uid}.service").as_str(),
                object_systemd_user_unit = u.unit.as_str(),
                object_uid = uid,
                unitarmor_unit = c.name.as_str(),
                "{} (user {uid}): {w}",
                u.unit
            );
        }
        said.insert(c.name.clone(), warnings);
    }
    diags.0.extend(own_diags.0);
    policy
}

/// Whether `what` is said for the first time (each pass would say it again); forgets all at
/// a thousand, so that a user naming files anew cannot grow the daemon's memory.
fn first_time(what: &str) -> bool {
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if said.len() >= 1000 {
        said.clear();
    }
    said.insert(what.to_string())
}

static SAID: std::sync::Mutex<BTreeSet<String>> = std::sync::Mutex::new(BTreeSet::new());

/// The warnings last logged for each user unit.
static WARNED: std::sync::Mutex<BTreeMap<String, Vec<String>>> =
    std::sync::Mutex::new(BTreeMap::new());

/// A file of root's that armors a user unit (for `unitarmor sync --user-manager` with no
/// daemon), or None.
pub fn root_armors_user_units() -> Option<PathBuf> {
    let mut disk = DiskPass::one();
    let roots = root_dirs();
    armored_names(
        &roots,
        &mut disk,
        &mut |f| dropin::read_shared(f),
        usize::MAX,
    )
    .into_iter()
    .flat_map(|name| files_in(&roots, &name, &mut disk).0)
    .find(|f| resolve::mentions_armor(std::slice::from_ref(f)))
}

/// The directories to watch for users' own files: each known user's.
pub(super) fn watched_dirs() -> Vec<PathBuf> {
    users()
        .iter()
        .flat_map(|u| user::own_dirs(&u.home))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_users_are_read_from_the_password_file() {
        let t = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n\
                 alice:x:1000:1000::/home/alice:/bin/bash\nsvc:x:999:999::/var/svc:/bin/false\nbad:x:1001\n";
        assert_eq!(
            regular_users(t),
            vec![User {
                uid: 1000,
                name: "alice".into(),
                home: PathBuf::from("/home/alice")
            }]
        );
    }

    #[test]
    fn a_slice_cannot_climb_out_of_the_users_tree() {
        assert_eq!(
            cgroup_path(1000, "app.slice", "a.service").as_deref(),
            Some("/user.slice/user-1000.slice/user@1000.service/app.slice/a.service")
        );
        assert_eq!(
            cgroup_path(1000, "a-b.slice", "a.service").as_deref(),
            Some("/user.slice/user-1000.slice/user@1000.service/a.slice/a-b.slice/a.service")
        );
        for bad in [
            "app.slice/../../../../system.slice",
            "../system.slice",
            "a/b.slice",
            "app",
            "",
        ] {
            assert_eq!(cgroup_path(1000, bad, "ssh.service"), None, "{bad}");
        }
        assert_eq!(cgroup_path(1000, "app.slice", "../x.service"), None);
        let long = format!("{}.slice", "a".repeat(200));
        assert_eq!(
            cgroup_path(1000, &long, "ssh.service"),
            None,
            "keyed by name else"
        );
        assert!(plain_service("a.service"));
        for bad in [
            "a@.service",
            "a@b.service",
            "a-.service",
            ".a.service",
            "a\n.service",
            "a.scope",
        ] {
            assert!(!plain_service(bad), "{bad}");
        }
    }

    #[test]
    fn keys_name_the_unit_and_its_user() {
        assert_eq!(key("a.service", 1000), "a.service~1000");
        assert_eq!(split_key("a.service~1000"), Some(("a.service", 1000)));
        assert_eq!(split_key("a.service"), None);
        assert_eq!(split_key("a~b.service"), None);
    }
}
