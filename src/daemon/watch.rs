//! Watching the unit directories: a unit file, drop-in or named policy written without a
//! `daemon-reload` is read within half a second of its close (sync.rs, `files_written`: a
//! reload that follows at once makes the one pass), so that a unit systemd has not loaded yet
//! (and will load from disk when it is started by name, by a socket or a timer) finds its
//! policy waiting; a unit started before that waits for the pass (pending.rs).
//!
//! inotify through libc: one descriptor, one blocking reader thread, and a channel into the
//! main loop, which makes a disk-only pass (`sync.rs`) per batch of changes. Hand-written
//! because the few calls needed are simpler than a dependency with its own runtime glue.
//!
//! The watcher also keeps [`Changes`] (changes.rs) current, which tells whether anything a
//! disk-only pass reads may have changed since a pass began.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Result};

use super::changes::{identity, Listed, Top};
pub(super) use super::changes::{Began, Changes};
use tokio::sync::mpsc;
use tracing::warn;

/// The directories administrators and packages write unit files, drop-ins and named policies
/// into: a change there makes a pass.
pub(super) const PASS_DIRS: [&str; 12] = [
    "/etc/systemd/system.control",
    "/run/systemd/system.control",
    "/etc/systemd/system",
    "/etc/systemd/system.attached",
    "/run/systemd/system",
    "/run/systemd/system.attached",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
    "/etc/unitarmor/policies",
    "/run/unitarmor/policies",
    "/usr/lib/unitarmor/policies",
];

/// The directories PID 1 and generators write (transient units, generator output): a change
/// there is only counted. PID 1 writes a transient unit as it starts it, and generators run
/// inside a reload, whose own pass reads what they wrote; a pass for every `systemd-run`
/// would cost a thousand units' files each time.
const COUNT_DIRS: [&str; 4] = [
    "/run/systemd/transient",
    "/run/systemd/generator.early",
    "/run/systemd/generator",
    "/run/systemd/generator.late",
];

/// At most this many drop-in directories are watched in one user's own unit directory.
const MAX_USER_DIR_WATCHES: usize = 64;

/// Whether running out of inotify watches was reported already.
static WARNED: AtomicBool = AtomicBool::new(false);

/// What is watched: whatever can change a file's content or which file a name is (writes not
/// closed yet and changes of a file's metadata, such as a new hard link to it, too: only
/// counted), and a watched directory itself being renamed or removed.
const MASK: u32 = libc::IN_CLOSE_WRITE
    | libc::IN_MODIFY
    | libc::IN_ATTRIB
    | libc::IN_MOVED_TO
    | libc::IN_MOVED_FROM
    | libc::IN_CREATE
    | libc::IN_DELETE
    | libc::IN_MOVE_SELF
    | libc::IN_DELETE_SELF
    | libc::IN_ONLYDIR;

/// Starts the watcher: each batch of changes that makes a pass sends one message on the
/// returned channel.
pub(super) fn spawn(changes: Arc<Changes>) -> Result<mpsc::UnboundedReceiver<()>> {
    // Root's directories for user units, and each known user's own (users.rs), make passes
    // too: a user's `systemctl --user daemon-reload` is not heard on the system bus.
    let dirs = PASS_DIRS
        .iter()
        .chain(&crate::policy::user::ROOT_DIRS)
        .map(|d| (PathBuf::from(d), true))
        .chain(COUNT_DIRS.iter().map(|d| (PathBuf::from(d), false)))
        .collect();
    spawn_watching(
        changes,
        dirs,
        super::users::watched_dirs,
        Path::new("/proc/self/mountinfo"),
    )
}

/// [`spawn`], watching `dirs` (each with whether a change there makes a pass), the directories
/// `users` gives (looked at once a second: users come and go; a change there makes a pass) and
/// the drop-in directories in them all, and the mount table through `mountinfo`.
fn spawn_watching(
    changes: Arc<Changes>,
    base: Vec<(PathBuf, bool)>,
    users: fn() -> Vec<PathBuf>,
    mountinfo: &Path,
) -> Result<mpsc::UnboundedReceiver<()>> {
    let with_users = move |u: &[PathBuf]| -> Vec<(PathBuf, bool)> {
        base.iter()
            .cloned()
            .chain(u.iter().map(|d| (d.clone(), true)))
            .collect()
    };
    let mut user_dirs = users();
    let mut dirs = with_users(&user_dirs);
    // SAFETY: plain system call; the descriptor is owned by the thread below.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    if fd < 0 {
        bail!("inotify_init1: {}", std::io::Error::last_os_error());
    }
    // Polled for POLLPRI: the kernel flags every change of this mount namespace's table. One
    // file for the thread, another for the checks (each reports a change once).
    let mounts = std::fs::File::open(mountinfo);
    if let Ok(mut m) = changes.mounts.lock() {
        *m = std::fs::File::open(mountinfo).ok();
    }
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("unit-dir-watch".into())
        .spawn(move || {
            use std::os::fd::AsRawFd;
            // However the thread ends (a panic too), nothing holds from then on. The
            // descriptor stays open, so that its number is not reused under the checks.
            struct Stopped(Arc<Changes>);
            impl Drop for Stopped {
                fn drop(&mut self) {
                    self.0.fd.store(-1, Ordering::SeqCst);
                }
            }
            let _stopped = Stopped(changes.clone());
            let mut wds = HashMap::new();
            // Counted: a pass that began before the watches were in place may have missed
            // a change made before them.
            add_watches(fd, &dirs, &changes, &mut wds);
            changes.bump();
            changes.fd.store(fd, Ordering::SeqCst);
            let stopped = |what: &str| {
                changes.fd.store(-1, Ordering::SeqCst);
                warn!(
                    "watching unit directories stopped: {what}: {}; unit files changed \
                     without a daemon-reload are read at the next reload",
                    std::io::Error::last_os_error()
                );
            };
            let mounts_fd = match &mounts {
                Ok(f) => f.as_raw_fd(),
                Err(e) => {
                    // Without it a mount over a unit file goes unseen: nothing holds (the
                    // checks' own file is missing too, or they find out the same way).
                    warn!("cannot watch the mount table: {e}");
                    -1
                }
            };
            let mut buf = [0u8; 16384];
            // The mount table changed since the last look at the drop-in directories.
            let mut mounted = false;
            loop {
                let mut p = [
                    libc::pollfd {
                        fd,
                        events: libc::POLLIN,
                        revents: 0,
                    },
                    libc::pollfd {
                        fd: mounts_fd,
                        events: libc::POLLPRI,
                        revents: 0,
                    },
                ];
                // SAFETY: two pollfds we own (a negative fd is ignored). Woken once a second
                // to watch a top directory made or replaced since (its parent is not
                // watched).
                let r = unsafe { libc::poll(p.as_mut_ptr(), 2, 1000) };
                if r < 0 {
                    if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                        continue;
                    }
                    return stopped("poll");
                }
                if p[1].revents != 0 {
                    // A mount or unmount: counted (a mount over a file changes it), not a
                    // pass (container engines mount all the time).
                    changes.bump();
                    mounted = true;
                }
                if p[0].revents == 0 {
                    // A user added or gone (or a manager started for one not in the
                    // password file): its directory is watched, and read at once.
                    let now = users();
                    if now != user_dirs {
                        // The pass covers a mount since the last look too.
                        mounted = false;
                        user_dirs = now;
                        dirs = with_users(&user_dirs);
                        changes.bump();
                        add_watches(fd, &dirs, &changes, &mut wds);
                        changes.bump();
                        if tx.send(()).is_err() {
                            changes.fd.store(-1, Ordering::SeqCst);
                            return;
                        }
                        continue;
                    }
                    if let Some(pass) = changes.moved_tops(std::mem::take(&mut mounted)) {
                        changes.bump();
                        add_watches(fd, &dirs, &changes, &mut wds);
                        changes.bump();
                        if pass && tx.send(()).is_err() {
                            changes.fd.store(-1, Ordering::SeqCst);
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
                // A mount since the last look is looked for before the new watches (and the
                // identities they note) replace what it would be compared with.
                let pass = makes_pass(&buf[..n as usize], &wds)
                    || (std::mem::take(&mut mounted) && changes.moved_tops(true) == Some(true));
                // New drop-in directories (and top directories made since) get watches of
                // their own before the pass, so that a file written into one right after is
                // seen too.
                add_watches(fd, &dirs, &changes, &mut wds);
                changes.bump();
                if !pass {
                    continue;
                }
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

/// Whether a batch of inotify events makes a pass: any but a write not yet closed or a
/// change of metadata, in a directory whose changes make one; a lost batch (the queue overflowed) or a watch not
/// known here makes one too.
fn makes_pass(batch: &[u8], wds: &HashMap<i32, bool>) -> bool {
    const HEADER: usize = std::mem::size_of::<libc::inotify_event>();
    let mut at = 0;
    while at + HEADER <= batch.len() {
        // SAFETY: the kernel wrote whole events; the header is read unaligned.
        let ev: libc::inotify_event =
            unsafe { std::ptr::read_unaligned(batch[at..].as_ptr().cast()) };
        at += HEADER + ev.len as usize;
        if ev.mask & libc::IN_Q_OVERFLOW != 0 {
            return true;
        }
        // A removed watch (its directory is gone: an event of its parent's, or of a top
        // directory's own IN_DELETE_SELF).
        if ev.mask & libc::IN_IGNORED != 0 {
            continue;
        }
        let pass_dir = wds.get(&ev.wd).copied().unwrap_or(true);
        if pass_dir && ev.mask & !(libc::IN_MODIFY | libc::IN_ATTRIB) != 0 {
            return true;
        }
    }
    false
}

/// Watches every top directory that exists and every drop-in directory (`*.d`) in them.
/// Adding a watch twice is harmless (inotify returns the same one), and a directory removed
/// and made again is a new inode that needs a new watch: so every call adds them all. Notes
/// in `changes` whether every one got its watch and what each top directory is, and in
/// `wds` whether each watch's changes make a pass.
fn add_watches(fd: i32, dirs: &[(PathBuf, bool)], changes: &Changes, wds: &mut HashMap<i32, bool>) {
    let mut complete = true;
    let mut tops = Vec::new();
    let mut listed = Vec::new();
    for (dir, pass) in dirs {
        // Taken before the watches: a directory replaced in between differs at the next look.
        let id = identity(dir);
        tops.push(Top {
            path: dir.clone(),
            id,
            pass: *pass,
        });
        if id.is_none() {
            continue;
        }
        let Some(mut subdirs) = dropin_dirs(dir) else {
            complete = false;
            continue;
        };
        // A user's own directory (users.rs) gets a bounded number of watches: inotify's
        // budget is per user, root's here, and the system's directories need theirs.
        if !dir.starts_with("/etc")
            && !dir.starts_with("/run")
            && !dir.starts_with("/usr")
            && !dir.starts_with("/lib")
            && subdirs.len() > MAX_USER_DIR_WATCHES
        {
            subdirs.truncate(MAX_USER_DIR_WATCHES);
            complete = false;
        }
        for d in std::iter::once(dir.clone()).chain(subdirs) {
            let Some(id) = identity(&d) else {
                continue;
            };
            if !local(&d) {
                // Changed on a server or another client: no event here, times from
                // another clock.
                complete = false;
            }
            listed.push(Listed {
                top: d == *dir,
                link: std::fs::symlink_metadata(&d).is_ok_and(|m| m.file_type().is_symlink()),
                path: d.clone(),
                id,
            });
            let Ok(c) = CString::new(d.as_os_str().as_bytes()) else {
                complete = false;
                continue;
            };
            // SAFETY: `c` is a NUL-terminated path that outlives the call.
            let wd = unsafe { libc::inotify_add_watch(fd, c.as_ptr(), MASK) };
            if wd >= 0 {
                // One directory may be reached from two watched ones (a symlinked drop-in
                // directory): a pass if either makes one.
                *wds.entry(wd).or_insert(false) |= *pass;
                continue;
            }
            let e = std::io::Error::last_os_error();
            // A drop-in directory removed since it was listed: its removal is an event of
            // its top directory's. A top directory removed: it differs at the next look.
            if e.raw_os_error() == Some(libc::ENOENT) {
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
    if let Ok(mut t) = changes.tops.lock() {
        *t = tops;
    }
    changes.set_listed(listed);
    changes.complete.store(complete, Ordering::SeqCst);
}

/// Whether `dir` is on a local file system, whose changes inotify sees and whose times come
/// from this machine's clock (not NFS, CIFS, 9p, FUSE and the like).
fn local(dir: &Path) -> bool {
    const LOCAL: [i64; 8] = [
        0xEF53,      // ext2, ext3, ext4
        0x5846_5342, // xfs
        0x9123_683E, // btrfs
        0x0102_1994, // tmpfs
        0xF2F5_2010, // f2fs
        0x7371_7368, // squashfs (read-only)
        0xE0F5_E1E2, // erofs (read-only)
        0x2FC1_2FC1, // zfs
    ];
    let Ok(c) = CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statfs fills the struct we own; `c` is NUL-terminated and outlives the call.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return false;
    }
    #[allow(clippy::unnecessary_cast)]
    LOCAL.contains(&(st.f_type as i64))
}

/// The drop-in directories in unit directory `dir`, or none if it cannot be read.
fn dropin_dirs(dir: &Path) -> Option<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(Vec::new()),
        Err(_) => return None,
    };
    Some(
        entries
            .flatten()
            .filter(|e| e.file_name().as_bytes().ends_with(b".d"))
            // Followed: a drop-in directory may be a symlink.
            .filter(|e| e.path().is_dir())
            .map(|e| e.path())
            .collect(),
    )
}

/// The next batch of changes, or never if there is no watcher.
pub(super) async fn next(rx: &mut Option<mpsc::UnboundedReceiver<()>>) -> Option<()> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;
