//! Directory listings for finding units' files, kept for one pass over many units.
//!
//! A pass over every unit on disk (a `daemon-reload`, the daemon's start) asks, for each unit,
//! for its fragment in 13 search directories and for about 30 drop-in directories, nearly all
//! absent, and for the same type-level (`service.d`) and slice directories every time. A
//! [`Listings::for_pass`] lists each unit directory once and answers "absent" for a name its
//! listing lacks, without asking the file system again, and lists each drop-in directory once.
//! [`Listings::direct`] asks the file system every time: the cheaper choice for one unit.
//! Either way the answers are those of one moment; a pass's listings are dropped with the pass.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::FileType;
use std::path::{Path, PathBuf};

use super::resolve::UNIT_DIRS;
use super::user::ROOT_DIRS;

/// One directory's listing.
#[derive(Debug)]
pub enum Listing {
    /// Not there, or not a directory: most units have no drop-in directory.
    Absent,
    /// There, but it could not be listed (an I/O error, a symlink loop, no file descriptors
    /// left): why.
    Unlistable(String),
    /// Its entries, sorted by path, each with its type (`None`: it could not be read).
    Entries(Vec<(PathBuf, Option<FileType>)>),
}

/// Listings taken so far (see the module's comment).
#[derive(Debug, Default)]
pub struct Listings {
    /// The unit directories (under the pass's root) whose listing answers for the names in
    /// them; empty for [`Listings::direct`].
    unit_dirs: Vec<PathBuf>,
    /// The entries of each unit directory (by its place in `unit_dirs`), by name, once
    /// listed: a pass asks about ~400 names per unit, nearly all absent, and answering from
    /// the name alone (not the whole path, hashed component by component) is most of what
    /// makes a pass over a thousand units cheap.
    names: Vec<Option<Names>>,
    /// Keyed by the path's bytes: hashing a `Path` walks its components.
    listed: HashMap<OsString, Listing>,
}

/// A unit directory's entries by name, or why they are unknown.
#[derive(Debug)]
enum Names {
    /// The directory is not there: every name in it is absent.
    Absent,
    /// It could not be listed: any name may be there.
    Unknown,
    Entries(HashMap<OsString, Option<FileType>>),
}

/// What `list` answers for a directory that is known to be absent.
static ABSENT: Listing = Listing::Absent;

impl Listings {
    /// Listings that ask the file system every time.
    pub fn direct() -> Listings {
        Listings::default()
    }

    /// Listings for a pass over many units under `root` (`/` normally): the system's unit
    /// directories, and root's directories of users' units ([`ROOT_DIRS`]), which a pass asks
    /// about each user unit as it asks the system's about each system unit.
    pub fn for_pass(root: &Path) -> Listings {
        let unit_dirs: Vec<PathBuf> = UNIT_DIRS
            .iter()
            .chain(&ROOT_DIRS)
            .map(|d| root.join(d.trim_start_matches('/')))
            .collect();
        Listings {
            names: unit_dirs.iter().map(|_| None).collect(),
            unit_dirs,
            ..Listings::default()
        }
    }

    /// `dir`'s listing, taken now or earlier in this pass.
    pub fn list(&mut self, dir: &Path) -> &Listing {
        if self.direct_mode() {
            // Not kept: a direct caller lists each directory once anyway.
            self.listed.clear();
        } else if self.known_absent(dir) {
            return &ABSENT;
        }
        if !self.listed.contains_key(dir.as_os_str()) {
            let listing = read_listing(dir);
            if let Some(i) = self.unit_dir_index(dir) {
                self.names[i] = Some(match &listing {
                    Listing::Absent => Names::Absent,
                    Listing::Unlistable(_) => Names::Unknown,
                    Listing::Entries(entries) => Names::Entries(
                        entries
                            .iter()
                            .filter_map(|(p, t)| p.file_name().map(|n| (n.to_os_string(), *t)))
                            .collect(),
                    ),
                });
            }
            self.listed.insert(dir.as_os_str().to_owned(), listing);
        }
        &self.listed[dir.as_os_str()]
    }

    /// Whether this pass listed `path` as a regular file (not a symlink) in its directory:
    /// then it need not be looked at again before it is opened (`dropin::read_regular`).
    pub fn listed_regular(&self, path: &Path) -> bool {
        let Some(parent) = path.parent() else {
            return false;
        };
        let t = match self.listed.get(parent.as_os_str()) {
            Some(Listing::Entries(entries)) => entries
                .binary_search_by(|(p, _)| p.as_os_str().cmp(path.as_os_str()))
                .ok()
                .and_then(|i| entries[i].1),
            _ => None,
        };
        t.is_some_and(|t| t.is_file())
    }

    /// Whether `path` exists (following symlinks, as `Path::exists`). A regular file or
    /// directory that a unit directory's listing holds is taken as there without asking.
    pub fn exists(&mut self, path: &Path) -> bool {
        match self.entry_type(path) {
            Lookup::Absent => false,
            Lookup::Present(Some(t)) if t.is_file() || t.is_dir() => true,
            _ => path.exists(),
        }
    }

    /// Whether the name `name` is absent from unit directory `dir`, as this pass listed it
    /// (false when unknown: not a unit directory, direct listings, or an unlistable one).
    /// Cheaper than [`Listings::exists`] or [`Listings::list`] of the joined path.
    pub fn absent_in(&mut self, dir: &Path, name: &str) -> bool {
        let Some(i) = self.unit_dir_index(dir) else {
            return false;
        };
        matches!(self.name_in(i, std::ffi::OsStr::new(name)), Lookup::Absent)
    }

    fn direct_mode(&self) -> bool {
        self.unit_dirs.is_empty()
    }

    /// Where `dir` is among the unit directories (compared as bytes: a handful of `memcmp`s).
    fn unit_dir_index(&self, dir: &Path) -> Option<usize> {
        let b = dir.as_os_str().as_encoded_bytes();
        self.unit_dirs
            .iter()
            .position(|d| d.as_os_str().as_encoded_bytes() == b)
    }

    /// Whether `path` is a name in a unit directory whose listing lacks it (or a unit
    /// directory that is not there).
    fn known_absent(&mut self, path: &Path) -> bool {
        matches!(self.entry_type(path), Lookup::Absent)
    }

    /// What the listing of `path`'s unit directory says of it.
    fn entry_type(&mut self, path: &Path) -> Lookup {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Lookup::Unknown;
        };
        match self.unit_dir_index(parent) {
            Some(i) => self.name_in(i, name),
            None => Lookup::Unknown,
        }
    }

    /// What unit directory `i`'s listing says of `name`, listing it first if need be.
    fn name_in(&mut self, i: usize, name: &std::ffi::OsStr) -> Lookup {
        if self.names[i].is_none() {
            let dir = self.unit_dirs[i].clone();
            self.list(&dir);
        }
        match &self.names[i] {
            Some(Names::Absent) => Lookup::Absent,
            Some(Names::Entries(names)) => match names.get(name) {
                Some(t) => Lookup::Present(*t),
                None => Lookup::Absent,
            },
            Some(Names::Unknown) | None => Lookup::Unknown,
        }
    }
}

/// What a unit directory's listing says of a name.
enum Lookup {
    Absent,
    /// There, with its type if it could be read.
    Present(Option<FileType>),
    Unknown,
}

fn read_listing(dir: &Path) -> Listing {
    let listed = std::fs::read_dir(dir).and_then(|entries| {
        entries
            .map(|e| e.map(|e| (e.path(), e.file_type().ok())))
            .collect::<std::io::Result<Vec<_>>>()
    });
    match listed {
        Ok(mut entries) => {
            // By name (all in one directory): comparing whole paths walks their components.
            entries.sort_by(|a, b| a.0.as_os_str().cmp(b.0.as_os_str()));
            Listing::Entries(entries)
        }
        Err(e) if absent(&e) => Listing::Absent,
        Err(e) => Listing::Unlistable(format!("cannot list this drop-in directory: {e}")),
    }
}

/// Whether a failed listing means the directory is not there (not an error: most units have
/// no drop-in directory, and a file of that name is no directory to systemd either).
fn absent(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let sys = t.path().join("etc/systemd/system");
        std::fs::create_dir_all(sys.join("a.service.d")).unwrap();
        std::fs::write(sys.join("a.service"), "[Service]\n").unwrap();
        std::fs::write(sys.join("a.service.d/x.conf"), "").unwrap();
        t
    }

    #[test]
    fn a_pass_answers_from_the_unit_directory_listing() {
        let t = root();
        let sys = t.path().join("etc/systemd/system");
        let mut l = Listings::for_pass(t.path());
        assert!(l.exists(&sys.join("a.service")));
        assert!(matches!(l.list(&sys.join("a.service.d")), Listing::Entries(e) if e.len() == 1));
        assert!(matches!(l.list(&sys.join("b.service.d")), Listing::Absent));
        // Made after the unit directory was listed: the pass does not see it, a new one does.
        std::fs::create_dir(sys.join("b.service.d")).unwrap();
        assert!(!l.exists(&sys.join("b.service.d")));
        assert!(matches!(l.list(&sys.join("b.service.d")), Listing::Absent));
        let mut fresh = Listings::for_pass(t.path());
        assert!(
            matches!(fresh.list(&sys.join("b.service.d")), Listing::Entries(e) if e.is_empty())
        );
    }

    #[test]
    fn a_pass_answers_for_roots_user_unit_directories_too() {
        let t = root();
        let user = t.path().join("usr/lib/systemd/user");
        std::fs::create_dir_all(&user).unwrap();
        std::fs::write(user.join("u.service"), "[Service]\n").unwrap();
        let mut l = Listings::for_pass(t.path());
        assert!(!l.absent_in(&user, "u.service"));
        assert!(l.absent_in(&user, "v.service"));
        assert!(matches!(l.list(&user.join("u.service.d")), Listing::Absent));
        // Made after the directory was listed: this pass does not see it, as for the system's.
        std::fs::create_dir(user.join("u.service.d")).unwrap();
        assert!(matches!(l.list(&user.join("u.service.d")), Listing::Absent));
        // A user's own directory is not one of them: it is asked about directly.
        let home = t.path().join("home/a/.config/systemd/user");
        std::fs::create_dir_all(&home).unwrap();
        assert!(!l.absent_in(&home, "v.service"));
    }

    #[test]
    fn names_are_answered_from_the_unit_directory_listing() {
        let t = root();
        let sys = t.path().join("etc/systemd/system");
        let run = t.path().join("run/systemd/system");
        std::fs::create_dir_all(&run).unwrap();
        std::os::unix::fs::symlink(sys.join("a.service"), run.join("l.service")).unwrap();
        std::os::unix::fs::symlink(sys.join("gone.service"), run.join("d.service")).unwrap();
        let mut l = Listings::for_pass(t.path());
        assert!(!l.absent_in(&sys, "a.service"));
        assert!(!l.absent_in(&sys, "a.service.d"));
        assert!(l.absent_in(&sys, "b.service.d"));
        // A unit directory that is not there holds nothing.
        assert!(l.absent_in(&t.path().join("usr/lib/systemd/system"), "a.service"));
        // Not a unit directory: not known.
        assert!(!l.absent_in(&sys.join("a.service.d"), "x.conf"));
        // Removed after the listing: the pass still sees it, as it saw the disk then.
        std::fs::remove_file(sys.join("a.service")).unwrap();
        assert!(l.exists(&sys.join("a.service")));
        // A symlink is followed: a dangling one is no unit file.
        assert!(l.exists(&run.join("l.service")) == sys.join("a.service").exists());
        assert!(!l.exists(&run.join("d.service")));
        // A file the pass listed as regular is opened without a look first; not a symlink,
        // and not what no listing showed.
        std::os::unix::fs::symlink(
            sys.join("a.service.d/x.conf"),
            sys.join("a.service.d/y.conf"),
        )
        .unwrap();
        assert!(!l.listed_regular(&sys.join("a.service.d/x.conf")));
        let mut l = Listings::for_pass(t.path());
        l.list(&sys.join("a.service.d"));
        assert!(l.listed_regular(&sys.join("a.service.d/x.conf")));
        assert!(!l.listed_regular(&sys.join("a.service.d/y.conf")));
        assert!(!l.listed_regular(&sys.join("a.service.d/z.conf")));
        // Direct listings know nothing ahead.
        let mut d = Listings::direct();
        assert!(!d.absent_in(&sys, "b.service.d"));
        assert!(!d.exists(&sys.join("a.service")));
    }

    #[test]
    fn direct_listings_ask_every_time() {
        let t = root();
        let sys = t.path().join("etc/systemd/system");
        let mut l = Listings::direct();
        assert!(matches!(l.list(&sys.join("b.service.d")), Listing::Absent));
        std::fs::create_dir(sys.join("b.service.d")).unwrap();
        assert!(l.exists(&sys.join("b.service.d")));
        assert!(matches!(
            l.list(&sys.join("b.service.d")),
            Listing::Entries(_)
        ));
    }

    #[test]
    fn a_file_where_a_directory_is_expected_is_absent() {
        let t = root();
        let sys = t.path().join("etc/systemd/system");
        std::fs::write(sys.join("c.service.d"), "").unwrap();
        let mut l = Listings::for_pass(t.path());
        assert!(matches!(l.list(&sys.join("c.service.d")), Listing::Absent));
    }
}
