//! What may have changed since a disk-only pass began ([`Changes`]): kept current by the
//! watcher (watch.rs) and asked by a unit's start that waits for the daemon
//! (`unitarmor-sync.service`), which needs no new pass when nothing a pass reads has changed.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// Whether the files a disk-only pass reads may have changed since a mark taken from
/// [`Changes::now`] (when a pass began). A count is bumped by every batch the watcher reads
/// (before it reads it, and again once the new directories in it are watched), by every
/// change of the mount table, and by the daemon for everything else that changes what a pass
/// would do: a reload (its generator's request and PID 1's signal) and what it learns from
/// systemd rather than from the disk. Anything the count cannot see makes the answer
/// "changed": no watcher, a directory that could not be watched, a watched directory that is
/// another one now (made, removed, renamed or mounted over since the last round of watches),
/// events not read yet.
pub(super) struct Changes {
    pub(super) count: AtomicU64,
    /// The inotify descriptor, or -1 while no watcher runs (or after it stopped).
    pub(super) fd: AtomicI32,
    /// Every directory that existed at the last round of watches got one.
    pub(super) complete: AtomicBool,
    /// The watched top directories as of the last round of watches.
    pub(super) tops: Mutex<Vec<Top>>,
    /// The directories watched at the last round of watches (top and drop-in directories),
    /// and how many times that list changed (its generation: [`Changes::listed_if_new`]).
    pub(super) listed: Mutex<(u64, Vec<Listed>)>,
    /// The mount table, polled by [`Changes::changed_since`] itself (each open file keeps
    /// its own view of what it has reported): a mount over a unit file is seen at once, not
    /// when the watcher thread next runs.
    pub(super) mounts: Mutex<Option<std::fs::File>>,
    /// How long before a pass began a file's last change must be (see [`files_older_than`]).
    pub(super) margin: std::time::Duration,
}

/// A directory the last round of watches listed, as [`Changes::listed_if_new`] gives it: its
/// path, device and inode, and whether it is a top directory (not a drop-in directory).
pub(super) type ListedDir = (PathBuf, (u64, u64), bool);

/// A directory watched at the last round of watches.
#[derive(Clone, PartialEq)]
pub(super) struct Listed {
    pub(super) path: PathBuf,
    /// What it was then (device and inode, following a symlink): a drop-in directory that is
    /// a symlink may be pointed elsewhere without an event.
    pub(super) id: (u64, u64),
    /// A top directory (not a drop-in directory).
    pub(super) top: bool,
    /// A symlink itself (a drop-in directory pointed elsewhere): what it leads to can change
    /// with no event in a watched directory, so it is looked at every second.
    pub(super) link: bool,
}

/// When a pass began: by the wall clock file times are compared with, and by the monotonic
/// one, which tells a step of the wall clock since.
#[derive(Clone, Copy)]
pub(super) struct Began {
    wall: SystemTime,
    mono: std::time::Instant,
}

impl Began {
    pub(super) fn now() -> Self {
        Began {
            wall: SystemTime::now(),
            mono: std::time::Instant::now(),
        }
    }

    /// Whether the wall clock went as the monotonic one did since (within half a second).
    fn clock_kept(&self) -> bool {
        let mono = self.mono.elapsed();
        SystemTime::now()
            .duration_since(self.wall)
            .is_ok_and(|wall| wall.abs_diff(mono) < std::time::Duration::from_millis(500))
    }
}

/// A watched top directory as of the last round of watches.
pub(super) struct Top {
    pub(super) path: PathBuf,
    /// Its device and inode, or none if it did not exist.
    pub(super) id: Option<(u64, u64)>,
    /// Whether a change there makes a pass.
    pub(super) pass: bool,
}

impl Changes {
    pub(super) fn new() -> Arc<Self> {
        Self::with_margin(std::time::Duration::from_secs(2))
    }

    pub(super) fn with_margin(margin: std::time::Duration) -> Arc<Self> {
        Arc::new(Changes {
            margin,
            count: AtomicU64::new(0),
            fd: AtomicI32::new(-1),
            complete: AtomicBool::new(false),
            tops: Mutex::new(Vec::new()),
            listed: Mutex::new((0, Vec::new())),
            mounts: Mutex::new(None),
        })
    }

    /// The directories the last round of watches listed, with the list's generation, unless
    /// the generation is `seen`: the list has not changed since it was taken with that one.
    pub(super) fn listed_if_new(&self, seen: Option<u64>) -> Option<(u64, Vec<ListedDir>)> {
        let l = self.listed.lock().ok()?;
        (seen != Some(l.0)).then(|| {
            (
                l.0,
                l.1.iter().map(|d| (d.path.clone(), d.id, d.top)).collect(),
            )
        })
    }

    /// Makes `listed` the directories watched, counting a change of the list.
    pub(super) fn set_listed(&self, listed: Vec<Listed>) {
        if let Ok(mut l) = self.listed.lock() {
            if l.1 != listed {
                l.0 += 1;
                l.1 = listed;
            }
        }
    }

    /// Something a pass reads may have changed.
    pub(super) fn bump(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    /// The mark a pass takes as it begins.
    pub(super) fn now(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }

    /// Whether anything a pass reads may have changed since `mark`. The checks run in an order
    /// that closes the watcher's race: a change queues its event before the writing system
    /// call returns; the watcher bumps the count before it reads the event off the queue; so
    /// an event not counted yet is still queued (FIONREAD).
    ///
    /// `began` is when that pass began, for what no watch reports: every unit file, drop-in
    /// and named policy in the watched directories (and each directory) must have been last
    /// changed before it (a write or a new hard link through a name elsewhere changes the
    /// file's ctime, which no process can set), and none may lead out of them by a symlink
    /// (its target, or a target made later, changes where nothing is watched).
    ///
    /// Returns why something may have changed, or `None` if nothing can have.
    pub(super) fn changed_since(&self, mark: u64, began: Began) -> Option<&'static str> {
        let fd = self.fd.load(Ordering::SeqCst);
        if fd < 0 {
            return Some("no watcher");
        }
        if !self.complete.load(Ordering::SeqCst) {
            return Some("a directory is not watched");
        }
        if self.now() != mark {
            return Some("a change was counted");
        }
        if !began.clock_kept() {
            return Some("the wall clock was stepped");
        }
        if !self.mounts_unchanged() {
            self.bump();
            return Some("the mount table changed");
        }
        let mut queued: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int through the pointer given.
        if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut queued) } != 0 || queued != 0 {
            return Some("changes are queued");
        }
        if self.moved_tops(true).is_some() {
            return Some("a watched directory was replaced");
        }
        let listed = self.listed.lock().map(|l| l.1.clone()).unwrap_or_default();
        if !files_older_than(&listed, began.wall, self.margin) {
            return Some("a file changed just before the last pass");
        }
        (self.now() != mark).then_some("a change was counted")
    }

    /// Whether the mount table is known not to have changed since the last look (its file
    /// polled for POLLPRI; no file: not known).
    fn mounts_unchanged(&self) -> bool {
        use std::os::fd::AsRawFd;
        let Ok(mounts) = self.mounts.lock() else {
            return false;
        };
        let Some(f) = mounts.as_ref() else {
            return false;
        };
        let mut p = libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLPRI,
            revents: 0,
        };
        // SAFETY: one pollfd we own; a timeout of 0 does not wait.
        unsafe { libc::poll(&mut p, 1, 0) == 0 }
    }

    /// The watched top directories that are not what they were at the last round of watches
    /// (`Some(true)` if one of them makes a pass), or `None`. Drop-in directories are looked
    /// at too: those that are symlinks, and with `all` every one (a mount over one changes
    /// what it is with no event; the mount table's change says when to look). A directory
    /// itself is replaced or moved only by a change its watched parent reports, where every
    /// directory has its watch: while one has none (inotify's budget spent, a file system
    /// that reports no changes), every one is looked at.
    pub(super) fn moved_tops(&self, all: bool) -> Option<bool> {
        let all = all || !self.complete.load(Ordering::SeqCst);
        let Ok(tops) = self.tops.lock() else {
            return Some(true);
        };
        let mut moved: Vec<bool> = tops
            .iter()
            .filter(|t| identity(&t.path) != t.id)
            .map(|t| t.pass)
            .collect();
        // A drop-in directory pointed elsewhere (a symlink): watched anew, with a pass.
        if let Ok(listed) = self.listed.lock() {
            if listed
                .1
                .iter()
                .filter(|l| all || l.link)
                .any(|l| identity(&l.path) != Some(l.id))
            {
                moved.push(true);
            }
        }
        (!moved.is_empty()).then(|| moved.contains(&true))
    }
}

/// A directory's device and inode (following symlinks), or none.
pub(super) fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_dir())
        .map(|m| (m.dev(), m.ino()))
}

/// Whether every directory in `dirs` (the watched ones) is still what it was and was last
/// changed (ctime) `margin` (two seconds) or more before `began`, and so was every unit
/// file, drop-in and named policy in them, and none leads out of them: a symlink to a file in a directory
/// not among them, or to nothing (it may be made there later), or a drop-in directory not
/// among them. Masked names (symlinks to `/dev/null`) never change. Two seconds cover the
/// coarse clock file times come from, and file systems that keep whole seconds. Only
/// regular files and symlinks are looked at, as systemd reads no other drop-in.
fn files_older_than(dirs: &[Listed], began: SystemTime, margin: std::time::Duration) -> bool {
    let Some(limit) = began
        .checked_sub(margin)
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
    else {
        return false;
    };
    let older = |m: &std::fs::Metadata| {
        let ctime = std::time::Duration::new(
            u64::try_from(m.ctime()).unwrap_or(0),
            u32::try_from(m.ctime_nsec()).unwrap_or(0).min(999_999_999),
        );
        ctime < limit
    };
    let watched: std::collections::HashSet<(u64, u64)> = dirs.iter().map(|d| d.id).collect();
    let in_watched = |p: &Path| identity(p).is_some_and(|id| watched.contains(&id));
    let relevant = [".service", ".scope", ".slice", ".conf", ".toml"];
    dirs.iter().all(|d| {
        let (Ok(meta), Ok(entries)) = (std::fs::metadata(&d.path), std::fs::read_dir(&d.path))
        else {
            return false;
        };
        if (meta.dev(), meta.ino()) != d.id || !older(&meta) {
            return false;
        }
        entries.flatten().all(|e| {
            let name = e.file_name();
            let name = name.as_bytes();
            let Ok(kind) = e.file_type() else {
                return false;
            };
            if d.top && name.ends_with(b".d") && (kind.is_dir() || kind.is_symlink()) {
                return in_watched(&e.path());
            }
            if !relevant.iter().any(|r| name.ends_with(r.as_bytes()))
                || !(kind.is_file() || kind.is_symlink())
            {
                return true;
            }
            if kind.is_symlink() {
                match std::fs::canonicalize(e.path()) {
                    Ok(target) if target == Path::new("/dev/null") => return true,
                    Ok(target) if target.parent().is_some_and(&in_watched) => {}
                    _ => return false,
                }
            }
            let own = e.metadata();
            let target = std::fs::metadata(e.path());
            matches!((own, target), (Ok(o), Ok(t)) if older(&o) && older(&t))
        })
    })
}
