//! Directory listings for finding units' files, kept for one pass over many units.
//!
//! A pass over every unit on disk (a `daemon-reload`, the daemon's start) asks, for each unit,
//! for its fragment in 13 search directories and for about 30 drop-in directories, nearly all
//! absent, and for the same type-level (`service.d`) and slice directories every time. A
//! [`Listings::for_pass`] lists each unit directory once and answers "absent" for a name its
//! listing lacks, without asking the file system again, and lists each drop-in directory once.
//! [`Listings::direct`] asks the file system every time: the cheaper choice for one unit.
//! Either way the answers are those of one moment; a pass's listings are dropped with the pass.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs::FileType;
use std::path::{Path, PathBuf};

use super::resolve::UNIT_DIRS;

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
    unit_dirs: HashSet<PathBuf>,
    listed: HashMap<PathBuf, Listing>,
    /// The entry names of each listed unit directory.
    names: HashMap<PathBuf, HashSet<OsString>>,
}

impl Listings {
    /// Listings that ask the file system every time.
    pub fn direct() -> Listings {
        Listings::default()
    }

    /// Listings for a pass over many units under `root` (`/` normally).
    pub fn for_pass(root: &Path) -> Listings {
        Listings {
            unit_dirs: UNIT_DIRS
                .iter()
                .map(|d| root.join(d.trim_start_matches('/')))
                .collect(),
            ..Listings::default()
        }
    }

    /// `dir`'s listing, taken now or earlier in this pass.
    pub fn list(&mut self, dir: &Path) -> &Listing {
        if self.direct_mode() {
            // Not kept: a direct caller lists each directory once anyway.
            self.listed.clear();
        }
        if !self.listed.contains_key(dir) {
            let listing = if self.known_absent(dir) {
                Listing::Absent
            } else {
                read_listing(dir)
            };
            if let (Listing::Entries(entries), true) = (&listing, self.unit_dirs.contains(dir)) {
                let names = entries
                    .iter()
                    .filter_map(|(p, _)| p.file_name().map(|n| n.to_os_string()))
                    .collect();
                self.names.insert(dir.to_path_buf(), names);
            }
            self.listed.insert(dir.to_path_buf(), listing);
        }
        &self.listed[dir]
    }

    /// Whether `path` exists (following symlinks, as `Path::exists`).
    pub fn exists(&mut self, path: &Path) -> bool {
        !self.known_absent(path) && path.exists()
    }

    fn direct_mode(&self) -> bool {
        self.unit_dirs.is_empty()
    }

    /// Whether `path` is a name in a unit directory whose listing lacks it (or a unit
    /// directory that is not there).
    fn known_absent(&mut self, path: &Path) -> bool {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return false;
        };
        if !self.unit_dirs.contains(parent) {
            return false;
        }
        match self.list(parent) {
            Listing::Absent => true,
            Listing::Unlistable(_) => false,
            Listing::Entries(_) => !self.names[parent].contains(name),
        }
    }
}

fn read_listing(dir: &Path) -> Listing {
    let listed = std::fs::read_dir(dir).and_then(|entries| {
        entries
            .map(|e| e.map(|e| (e.path(), e.file_type().ok())))
            .collect::<std::io::Result<Vec<_>>>()
    });
    match listed {
        Ok(mut entries) => {
            entries.sort_by(|a, b| a.0.cmp(&b.0));
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
