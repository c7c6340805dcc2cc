//! Watching the unit directories: a unit file or drop-in written without a `daemon-reload` is
//! read as soon as it is closed, so that a unit systemd has not loaded yet (and will load from
//! disk when it is started by name, by a socket or a timer) finds its policy waiting.
//!
//! inotify through libc: one descriptor, one blocking reader thread, and a channel into the
//! main loop, which makes a disk-only pass (`sync.rs`) per batch of changes. Hand-written
//! because the few calls needed are simpler than a dependency with its own runtime glue.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicBool, Ordering};

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

/// Starts the watcher: each batch of changes sends one message on the returned channel.
pub(super) fn spawn() -> Result<mpsc::UnboundedReceiver<()>> {
    // SAFETY: plain system call; the descriptor is owned by the thread below.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    if fd < 0 {
        bail!("inotify_init1: {}", std::io::Error::last_os_error());
    }
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("unit-dir-watch".into())
        .spawn(move || {
            add_watches(fd);
            let mut buf = [0u8; 16384];
            loop {
                // SAFETY: reads into a buffer we own, of the length given.
                let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
                if n < 0 {
                    if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                        continue;
                    }
                    warn!(
                        "watching unit directories stopped: {}; unit files changed without \
                         a daemon-reload are read at the next reload",
                        std::io::Error::last_os_error()
                    );
                    return;
                }
                // New drop-in directories (and unit directories made since) get watches of
                // their own before the pass, so that a file written into one right after is
                // seen too.
                add_watches(fd);
                if tx.send(()).is_err() {
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
/// and made again is a new inode that needs a new watch: so every call adds them all.
fn add_watches(fd: i32) {
    for dir in WATCHED {
        for d in std::iter::once(PathBuf::from(dir)).chain(dropin_dirs(Path::new(dir))) {
            let Ok(c) = CString::new(d.as_os_str().as_bytes()) else {
                continue;
            };
            // SAFETY: `c` is a NUL-terminated path that outlives the call. A directory that
            // does not exist (yet) fails, and is tried again at the next batch.
            if unsafe { libc::inotify_add_watch(fd, c.as_ptr(), MASK) } < 0 {
                let e = std::io::Error::last_os_error();
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
