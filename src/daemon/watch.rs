//! Watching the unit directories: a unit file or drop-in written without a `daemon-reload` is
//! read as soon as it is closed, so that a unit systemd has not loaded yet (and will load from
//! disk when it is started by name, by a socket or a timer) finds its policy waiting.
//!
//! inotify through libc: one descriptor, one blocking reader thread, and a channel into the
//! main loop, which makes a disk-only pass (`sync.rs`) per batch of changes. Hand-written
//! because the few calls needed are simpler than a dependency with its own runtime glue.
//!
//! The watcher also keeps [`Changes`], which tells whether anything a disk-only pass reads
//! may have changed since a pass began: a unit's start that waits for the daemon
//! (`unitarmor-sync.service`) needs no new pass when nothing has.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Result};
use tokio::sync::mpsc;
use tracing::warn;

/// The directories administrators and packages write unit files and drop-ins into. Transient
/// and generator directories are left out: PID 1 and generators write those, and a reload's
/// sync covers what generators write.
const WATCHED: [&str; 8] = [
    "/etc/systemd/system.control",
    "/run/systemd/system.control",
    "/etc/systemd/system",
    "/etc/systemd/system.attached",
    "/run/systemd/system",
    "/run/systemd/system.attached",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
];

/// Whether running out of inotify watches was reported already.
static WARNED: AtomicBool = AtomicBool::new(false);

const MASK: u32 = libc::IN_CLOSE_WRITE
    | libc::IN_MOVED_TO
    | libc::IN_MOVED_FROM
    | libc::IN_CREATE
    | libc::IN_DELETE
    | libc::IN_ONLYDIR;

/// Whether the files a disk-only pass reads may have changed since a mark taken from
/// [`Changes::now`] (when a pass began). A count is bumped by every batch the watcher reads
/// (before it reads it, and again once the new directories in it are watched), and by the
/// daemon for everything else that changes what a pass would do: a reload (its generator's
/// request and PID 1's signal) and what it learns from systemd rather than from the disk.
/// Anything the count cannot see makes the answer "changed": no watcher, a directory that
/// could not be watched, a unit directory made since the last batch, events not read yet.
pub(super) struct Changes {
    count: AtomicU64,
    /// The inotify descriptor, or -1 while no watcher runs (or after it stopped).
    fd: AtomicI32,
    /// Every unit directory and drop-in directory that existed at the last round of watches
    /// got one.
    complete: AtomicBool,
    /// The unit directories that did not exist at the last round of watches.
    missing: Mutex<Vec<PathBuf>>,
}

impl Changes {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Changes {
            count: AtomicU64::new(0),
            fd: AtomicI32::new(-1),
            complete: AtomicBool::new(false),
            missing: Mutex::new(Vec::new()),
        })
    }

    /// Something a pass reads may have changed.
    pub(super) fn bump(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    /// The mark a pass takes as it begins.
    pub(super) fn now(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }

    /// Whether nothing a pass reads can have changed since `mark`. The checks run in an order
    /// that closes the watcher's race: a change queues an event before its writer's close()
    /// returns; the watcher bumps the count before it reads the event off the queue; so an
    /// event not counted yet is still queued (FIONREAD).
    pub(super) fn unchanged_since(&self, mark: u64) -> bool {
        let fd = self.fd.load(Ordering::SeqCst);
        if fd < 0 || !self.complete.load(Ordering::SeqCst) || self.now() != mark {
            return false;
        }
        let mut queued: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int through the pointer given.
        if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut queued) } != 0 || queued != 0 {
            return false;
        }
        !self.missing_exists() && self.now() == mark
    }

    /// Whether a unit directory that did not exist at the last round of watches does now.
    fn missing_exists(&self) -> bool {
        self.missing
            .lock()
            .map(|m| m.iter().any(|d| d.exists()))
            .unwrap_or(true)
    }
}

/// Starts the watcher: each batch of changes sends one message on the returned channel.
pub(super) fn spawn(changes: Arc<Changes>) -> Result<mpsc::UnboundedReceiver<()>> {
    spawn_watching(changes, WATCHED.iter().map(PathBuf::from).collect())
}

/// [`spawn`], watching `dirs` and the drop-in directories in them.
fn spawn_watching(
    changes: Arc<Changes>,
    dirs: Vec<PathBuf>,
) -> Result<mpsc::UnboundedReceiver<()>> {
    // SAFETY: plain system call; the descriptor is owned by the thread below.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    if fd < 0 {
        bail!("inotify_init1: {}", std::io::Error::last_os_error());
    }
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("unit-dir-watch".into())
        .spawn(move || {
            add_watches(fd, &dirs, &changes);
            changes.fd.store(fd, Ordering::SeqCst);
            let stopped = |what: &str| {
                changes.fd.store(-1, Ordering::SeqCst);
                warn!(
                    "watching unit directories stopped: {what}: {}; unit files changed \
                     without a daemon-reload are read at the next reload",
                    std::io::Error::last_os_error()
                );
            };
            let mut buf = [0u8; 16384];
            loop {
                let mut p = libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one pollfd we own. Woken once a second to watch a unit directory
                // made since (its parent is not watched).
                let r = unsafe { libc::poll(&mut p, 1, 1000) };
                if r < 0 {
                    if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                        continue;
                    }
                    return stopped("poll");
                }
                if r == 0 {
                    if changes.missing_exists() {
                        changes.bump();
                        add_watches(fd, &dirs, &changes);
                        changes.bump();
                        if tx.send(()).is_err() {
                            return;
                        }
                    }
                    continue;
                }
                changes.bump();
                // SAFETY: reads into a buffer we own, of the length given.
                let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
                if n < 0 {
                    if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                        continue;
                    }
                    return stopped("read");
                }
                // New drop-in directories (and unit directories made since) get watches of
                // their own before the pass, so that a file written into one right after is
                // seen too.
                add_watches(fd, &dirs, &changes);
                changes.bump();
                if tx.send(()).is_err() {
                    changes.fd.store(-1, Ordering::SeqCst);
                    return;
                }
                // At most five passes a second, however fast files change: changes meanwhile
                // wait in the inotify queue and make one more pass after this pause.
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        })?;
    Ok(rx)
}

/// Watches every unit directory that exists and every drop-in directory (`*.d`) in them.
/// Adding a watch twice is harmless (inotify returns the same one), and a directory removed
/// and made again is a new inode that needs a new watch: so every call adds them all. Notes
/// in `changes` whether every one got its watch, and which unit directories do not exist.
fn add_watches(fd: i32, dirs: &[PathBuf], changes: &Changes) {
    let mut complete = true;
    let mut missing = Vec::new();
    for dir in dirs {
        if !dir.is_dir() {
            missing.push(dir.clone());
            continue;
        }
        for d in std::iter::once(dir.clone()).chain(dropin_dirs(dir)) {
            let Ok(c) = CString::new(d.as_os_str().as_bytes()) else {
                complete = false;
                continue;
            };
            // SAFETY: `c` is a NUL-terminated path that outlives the call. A directory that
            // does not exist (yet) fails, and is tried again at the next batch.
            if unsafe { libc::inotify_add_watch(fd, c.as_ptr(), MASK) } < 0 {
                let e = std::io::Error::last_os_error();
                // A drop-in directory removed since it was listed: its removal is an event of
                // its unit directory's. A unit directory's parent is not watched.
                if e.raw_os_error() == Some(libc::ENOENT) {
                    if d == *dir {
                        missing.push(dir.clone());
                    }
                    continue;
                }
                complete = false;
                if e.raw_os_error() == Some(libc::ENOSPC) && !WARNED.swap(true, Ordering::Relaxed) {
                    warn!(
                        "cannot watch {}: {e} (fs.inotify.max_user_watches); drop-ins written \
                         there without a daemon-reload are read at the next reload",
                        d.display()
                    );
                }
            }
        }
    }
    if let Ok(mut m) = changes.missing.lock() {
        *m = missing;
    }
    changes.complete.store(complete, Ordering::SeqCst);
}

/// The drop-in directories in unit directory `dir`.
fn dropin_dirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().as_bytes().ends_with(b".d"))
        // Followed: a drop-in directory may be a symlink.
        .filter(|e| e.path().is_dir())
        .map(|e| e.path())
        .collect()
}

/// The next batch of changes, or never if there is no watcher.
pub(super) async fn next(rx: &mut Option<mpsc::UnboundedReceiver<()>>) -> Option<()> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits (up to 5 s) for the watcher's next batch, and returns the mark after it.
    fn next_batch(rx: &mut mpsc::UnboundedReceiver<()>, changes: &Changes) -> u64 {
        let t = std::time::Instant::now();
        loop {
            if rx.try_recv().is_ok() {
                return changes.now();
            }
            assert!(t.elapsed().as_secs() < 5, "no batch from the watcher");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// Waits (up to 5 s) until nothing has changed since `mark` (the watcher's pause after a
    /// batch may hold more events of it).
    fn settles(changes: &Changes, mark: &mut u64, rx: &mut mpsc::UnboundedReceiver<()>) {
        let t = std::time::Instant::now();
        while !changes.unchanged_since(*mark) {
            if rx.try_recv().is_ok() {
                *mark = changes.now();
            }
            assert!(t.elapsed().as_secs() < 5, "the files never settled");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn every_change_is_seen_until_a_pass_can_see_it() {
        let t = tempfile::tempdir().unwrap();
        let units = t.path().join("system");
        let later = t.path().join("system.control");
        std::fs::create_dir(&units).unwrap();
        let changes = Changes::new();
        assert!(
            !changes.unchanged_since(0),
            "nothing holds before the watcher runs"
        );
        let mut rx = spawn_watching(changes.clone(), vec![units.clone(), later.clone()]).unwrap();
        let mut mark = 0;
        settles(&changes, &mut mark, &mut rx);

        // A unit file: changed at once (queued or counted), until its batch is taken.
        std::fs::write(units.join("a.service"), "[Service]\n").unwrap();
        assert!(!changes.unchanged_since(mark));
        mark = next_batch(&mut rx, &changes);
        settles(&changes, &mut mark, &mut rx);

        // A new drop-in directory gets a watch before its batch is sent: a file written into
        // it right after is a change too.
        std::fs::create_dir(units.join("a.service.d")).unwrap();
        assert!(!changes.unchanged_since(mark));
        mark = next_batch(&mut rx, &changes);
        settles(&changes, &mut mark, &mut rx);
        std::fs::write(units.join("a.service.d/armor.conf"), "[X-Armor]\n").unwrap();
        assert!(!changes.unchanged_since(mark));
        mark = next_batch(&mut rx, &changes);
        settles(&changes, &mut mark, &mut rx);

        // A unit directory made after the watcher started (its parent is not watched): a
        // change from the moment it exists, and watched within a second or so.
        std::fs::create_dir(&later).unwrap();
        assert!(!changes.unchanged_since(mark));
        mark = next_batch(&mut rx, &changes);
        settles(&changes, &mut mark, &mut rx);
        std::fs::write(later.join("b.service"), "").unwrap();
        assert!(!changes.unchanged_since(mark));

        // What the daemon counts itself.
        mark = next_batch(&mut rx, &changes);
        settles(&changes, &mut mark, &mut rx);
        changes.bump();
        assert!(!changes.unchanged_since(mark));
    }

    #[test]
    fn finds_dropin_directories_only() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("app.service.d")).unwrap();
        std::fs::create_dir(t.path().join("multi-user.target.wants")).unwrap();
        std::fs::write(t.path().join("app.service"), "").unwrap();
        std::fs::write(t.path().join("file.d"), "").unwrap();
        let found = dropin_dirs(t.path());
        assert_eq!(found, vec![t.path().join("app.service.d")]);
    }
}
