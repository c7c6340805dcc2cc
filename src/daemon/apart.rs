//! A big policy compiles in a child process of its own, forked from the compile thread.
//!
//! What can go wrong in a compile stays in the child: a compiler that crashes in a way Rust
//! cannot unwind (a stack overflow, an allocation that aborts) fails that policy, not the
//! daemon; its peak heap (tens of MiB for 10,000 rules, in millions of small allocations) is
//! the child's, not left in the daemon's; and a job dropped for newer files is killed at
//! once rather than compiled to its end. The daemon reads back the result, as JSON over a
//! pipe.
//!
//! The child runs nothing but the work it is given (the pure compiler), then writes and
//! exits with `_exit`. After a fork only the forking thread exists in the child, so it must
//! take no lock another thread may have held at that moment: the compiler takes none but the
//! allocator's, which glibc makes safe across a fork. Should it block all the same (a panic's
//! message takes std's locks), the parent kills it after [`DEADLINE`] and the policy fails,
//! closed. The child keeps only its pipe of the daemon's descriptors, dies with the thread
//! that forked it (`PR_SET_PDEATHSIG`), and a job dropped while its child works ends that
//! child at once.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// How often a parent waiting for its child looks whether the job was dropped.
const DROPPED_EVERY_MS: i32 = 100;

/// A compile taken for stuck: 20,000 rules take about 10 s under emulation.
const DEADLINE: Duration = Duration::from_secs(600);

/// Held from a pipe's making until the parent has closed its write end: a child forked
/// meanwhile by another thread (the compile thread and the main loop both fork) would hold
/// that end open, and the parent would wait for the wrong child's end.
static FORKING: Mutex<()> = Mutex::new(());

/// How work given to [`apart`] ended.
#[derive(Debug)]
pub(super) enum Apart<T> {
    /// The child ran it: its result, or why the child gave none; and the child's peak
    /// resident size in KiB (the daemon's pages it shared count), 0 if unknown.
    Done(Result<T, String>, u64),
    /// The child gave no result (it crashed, was killed, exited otherwise, sent what cannot
    /// be read, or was stuck past [`DEADLINE`]): why, as "the compiler's process ...".
    Died(String),
    /// The job was dropped while the child worked; the child was killed.
    Dropped,
    /// No child could be made (the reason): the caller does the work itself.
    NoChild(String),
}

/// Runs `work` in a child process and returns what it returned. `dropped` is looked at while
/// the child works: once it is set, the child is killed.
pub(super) fn apart<T, F>(work: F, dropped: &AtomicBool) -> Apart<T>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T, String>,
{
    apart_within(work, dropped, DEADLINE)
}

/// [`apart`], with the time after which the child is taken for stuck.
fn apart_within<T, F>(work: F, dropped: &AtomicBool, deadline: Duration) -> Apart<T>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T, String>,
{
    let forking = FORKING.lock().unwrap_or_else(|e| e.into_inner());
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Apart::NoChild(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: both descriptors were just made and are owned nowhere else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the child runs only `child`, which takes no lock but the allocator's (see the
    // module's comment) and ends with _exit, never returning into the parent's code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Apart::NoChild(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        drop(r);
        child(work, w, parent);
    }
    drop(w);
    drop(forking);
    wait_for(pid, r, dropped, deadline)
}

/// The child: does the work, writes its result, exits.
fn child<T: Serialize, F: FnOnce() -> Result<T, String>>(
    work: F,
    w: OwnedFd,
    parent: libc::pid_t,
) -> ! {
    // SAFETY: prctl, getppid, signal and _exit are async-signal-safe calls with plain
    // arguments.
    unsafe {
        // Killed when the thread that forked it ends; a parent already gone is not waited
        // for.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != parent {
            libc::_exit(1);
        }
        // The daemon's handlers (the runtime's) would only note the signal for a parent
        // that has its own copy of the note; stopping the service stops the child too.
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::signal(s, libc::SIG_DFL);
        }
    }
    // Of the daemon's descriptors (its BPF links and maps, the ring buffer, the bus, the sync
    // socket) the child keeps its pipe, as descriptor 3, and the standard three, which a
    // panic's message goes to.
    let fd = w.into_raw_fd();
    // SAFETY: dup2 and close_range only rearrange this process's own descriptors; nothing
    // in the child uses any but the pipe from here on.
    let w = unsafe {
        if fd != 3 && libc::dup2(fd, 3) != 3 {
            libc::_exit(1);
        }
        libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32);
        File::from_raw_fd(3)
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
        .unwrap_or_else(|_| Err("the compiler failed (a bug: please report it)".into()));
    let written = serde_json::to_vec(&result)
        .ok()
        .is_some_and(|bytes| (&w).write_all(&bytes).is_ok());
    // SAFETY: ends the child without running the parent's exit handlers or destructors.
    unsafe { libc::_exit(if written { 0 } else { 1 }) }
}

/// The parent: reads the child's result to its end, then reaps the child.
fn wait_for<T: DeserializeOwned>(
    pid: libc::pid_t,
    r: OwnedFd,
    dropped: &AtomicBool,
    deadline: Duration,
) -> Apart<T> {
    let began = Instant::now();
    let mut file = File::from(r);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let failed = loop {
        if began.elapsed() > deadline {
            break Some(format!(
                "the compiler's process did not finish within {} s",
                deadline.as_secs_f64()
            ));
        }
        let mut pfd = libc::pollfd {
            fd: file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd, which lives across the call.
        let n = unsafe { libc::poll(&mut pfd, 1, DROPPED_EVERY_MS) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            break Some(format!("waiting for the compiler's process: {e}"));
        }
        if n == 0 {
            if dropped.load(Ordering::Relaxed) {
                end(pid);
                return Apart::Dropped;
            }
            continue;
        }
        match file.read(&mut buf) {
            Ok(0) => break None,
            Ok(k) => out.extend_from_slice(&buf[..k]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => break Some(format!("reading the compiler's process: {e}")),
        }
    };
    if let Some(e) = failed {
        end(pid);
        return Apart::Died(e);
    }
    let (status, peak) = reap(pid);
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Apart::Died(format!("the compiler's process {}", ended(status)));
    }
    match serde_json::from_slice::<Result<T, String>>(&out) {
        Ok(result) => Apart::Done(result, peak),
        Err(e) => Apart::Died(format!(
            "the compiler's process gave tables that cannot be read: {e}"
        )),
    }
}

/// Kills the child and reaps it.
fn end(pid: libc::pid_t) {
    // SAFETY: `pid` is this process's child, not yet reaped: the number is still its.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    reap(pid);
}

/// Waits for the child to end; its wait status and peak resident size (KiB).
fn reap(pid: libc::pid_t) -> (libc::c_int, u64) {
    let mut status = 0;
    loop {
        // SAFETY: an all-zero rusage is a valid one.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: waits for this process's own child, writing its status and usage into
        // the two values given.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            return (status, usage.ru_maxrss.max(0) as u64);
        }
        if r < 0 && std::io::Error::last_os_error().kind() != ErrorKind::Interrupted {
            // Not ours to wait for (already reaped): report it as ended by a signal.
            return (libc::SIGKILL, 0);
        }
    }
}

/// How a child that did not exit with 0 ended, in words.
fn ended(status: libc::c_int) -> String {
    if libc::WIFEXITED(status) {
        format!("exited with status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("was killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("ended with wait status {status:#x}")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::compile::{compile_for, Tables};
    use crate::policy::Policy;

    /// A policy past the grouping threshold, with rules of several classes and actions.
    fn big(n: usize) -> Policy {
        let mut rules = vec![
            "deny write /etc/".to_string(),
            "audit read /var/www/**".into(),
            "allow exec /usr/bin/* /usr/lib/**".into(),
            "allow cap net_bind_service".into(),
        ];
        rules.extend((0..n).map(|k| format!("deny read /opt/nothing/{k}/**")));
        let refs: Vec<&str> = rules.iter().map(String::as_str).collect();
        Policy::of(&refs)
    }

    #[test]
    fn a_big_policy_compiled_apart_is_the_one_compiled_in_line() {
        let p = big(2_000);
        let never = AtomicBool::new(false);
        let here = compile_for(&p, Some("/opt/x")).unwrap();
        let got = apart(
            || compile_for(&p, Some("/opt/x")).map_err(|e| e.to_string()),
            &never,
        );
        match got {
            Apart::Done(Ok(t), peak) => {
                assert_eq!(t, here);
                assert!(peak > 0);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_childs_error_and_panic_come_back_as_errors() {
        let never = AtomicBool::new(false);
        let e = apart::<Tables, _>(|| Err("too complex".into()), &never);
        assert!(
            matches!(e, Apart::Done(Err(ref m), _) if m == "too complex"),
            "{e:?}"
        );
        let p = apart::<Tables, _>(|| panic!("boom"), &never);
        assert!(
            matches!(p, Apart::Done(Err(ref m), _) if m.contains("a bug")),
            "{p:?}"
        );
    }

    #[test]
    fn a_child_killed_or_exiting_without_a_result_is_an_error() {
        let never = AtomicBool::new(false);
        let killed = apart::<u32, _>(
            || {
                // SAFETY: the test's own child kills itself.
                unsafe { libc::raise(libc::SIGKILL) };
                Ok(1)
            },
            &never,
        );
        assert!(
            matches!(killed, Apart::Died(ref m) if m.ends_with("killed by signal 9")),
            "{killed:?}"
        );
        let exited = apart::<u32, _>(
            // SAFETY: the test's own child exits without writing.
            || unsafe { libc::_exit(3) },
            &never,
        );
        assert!(
            matches!(exited, Apart::Died(ref m) if m.ends_with("exited with status 3")),
            "{exited:?}"
        );
    }

    #[test]
    fn a_child_stuck_past_the_deadline_is_killed() {
        let never = AtomicBool::new(false);
        let began = Instant::now();
        let got = apart_within::<u32, _>(
            || {
                std::thread::sleep(Duration::from_secs(60));
                Ok(1)
            },
            &never,
            Duration::from_millis(300),
        );
        assert!(
            matches!(got, Apart::Died(ref m) if m.contains("did not finish within 0.3 s")),
            "{got:?}"
        );
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "{:?}",
            began.elapsed()
        );
    }

    #[test]
    fn the_child_keeps_only_its_pipe_and_the_standard_descriptors() {
        let never = AtomicBool::new(false);
        let open = std::fs::File::open("/proc/self/status").unwrap();
        let got = apart::<Vec<String>, _>(
            || {
                Ok(std::fs::read_dir("/proc/self/fd")
                    .map_err(|e| e.to_string())?
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect())
            },
            &never,
        );
        drop(open);
        let Apart::Done(Ok(mut fds), _) = got else {
            panic!("{got:?}");
        };
        fds.sort();
        // 0 to 2, the pipe as 3, and the directory being listed.
        assert!(fds.len() <= 5, "{fds:?}");
        assert!(
            fds.iter().all(|f| f.parse::<u32>().is_ok_and(|n| n <= 4)),
            "{fds:?}"
        );
    }

    #[test]
    fn a_dropped_job_ends_its_child() {
        let dropped = Arc::new(AtomicBool::new(false));
        let setter = dropped.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            setter.store(true, Ordering::Relaxed);
        });
        let began = Instant::now();
        let got = apart::<u32, _>(
            || {
                std::thread::sleep(Duration::from_secs(60));
                Ok(1)
            },
            &dropped,
        );
        t.join().unwrap();
        assert!(matches!(got, Apart::Dropped), "{got:?}");
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "{:?}",
            began.elapsed()
        );
    }
}
