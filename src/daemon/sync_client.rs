//! The clients of the daemon's sync socket (sync.rs serves it): the generator systemd runs
//! inside every `daemon-reload` ([`generator`]), and `unitarmor sync` ([`sync_command`]), which
//! unitarmor-sync.service runs before an armored service when the daemon did not answer a
//! reload, and user@.service before a user's manager (users.rs). See docs/DESIGN.md, "A
//! reload waits for the daemon".

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::discover::{discover_on_disk, slice_layers, DiskPass};
use super::sync::SOCKET;
use crate::kernel;
use crate::policy::resolve;

/// What the generator writes (a reload is under way: the daemon re-reads every file), what
/// `unitarmor sync` writes before a unit's start (the daemon re-reads them unless nothing can
/// have changed since its last pass began: `Changes`, changes.rs), and what the daemon answers
/// once the kernel maps are written.
pub(super) const REQUEST: &[u8] = b"sync\n";
pub(super) const REQUEST_START: &[u8] = b"start\n";
/// What `unitarmor sync --user-manager` writes before a user's manager starts: always a pass
/// (the last pass cannot have seen the manager's cgroup, made since; users.rs).
pub(super) const REQUEST_USER: &[u8] = b"user\n";
pub(super) const REPLY: &[u8] = b"ok\n";
/// How long the generator waits for the answer (systemd gives generators 90 s in all).
pub const GENERATOR_TIMEOUT: Duration = Duration::from_secs(10);
/// The drop-in the generator writes, into its output directory, for every armored service
/// when the daemon could not be asked (see [`generator`]).
pub(super) const WAIT_DROPIN: &str = "unitarmor-wait.conf";
/// The unit the wait drop-in makes every armored service require: a oneshot outside any
/// armored cgroup that runs [`sync_command`] after `unitarmor.service` has started (or failed
/// to). When it fails, systemd refuses the service's start ("dependency failed").
pub const SYNC_UNIT: &str = "unitarmor-sync.service";
pub(super) const WAIT_DROPIN_TEXT: &str = "\
# Written by unitarmor-generator at the last daemon-reload: the unitarmor daemon did not
# answer then, so this unit's [X-Armor] policy may be newer than what the kernel enforces.
# Starting the unit first runs unitarmor-sync.service, which (re)starts the daemon and waits
# until it has read every unit's files; if the daemon cannot start or does not answer, the
# unit does not start (it would run under an outdated policy, or none).
[Unit]
Requires=unitarmor-sync.service
After=unitarmor-sync.service
";
/// How long `unitarmor sync` waits for the daemon's answer: it runs after the daemon reported
/// ready, but a daemon busy compiling a large policy answers only after that pass.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(60);

/// What came of a sync request.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The daemon re-read everything and wrote the kernel maps.
    Synced,
    /// No daemon listens (no socket, or a stale one).
    NotRunning,
    /// Connected (or could not connect for another reason), but no answer came.
    NoAnswer(String),
}

/// Asks the daemon listening at `path` to sync (`word`: [`REQUEST`] or [`REQUEST_START`]),
/// waiting at most `timeout` in all.
pub(super) fn request(path: &Path, word: &[u8], timeout: Duration) -> Outcome {
    let deadline = Instant::now() + timeout;
    let mut s = match StdUnixStream::connect(path) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Outcome::NotRunning
        }
        Err(e) => return Outcome::NoAnswer(format!("cannot connect to {}: {e}", path.display())),
    };
    let mut exchange = || -> io::Result<Vec<u8>> {
        s.set_write_timeout(Some(timeout))?;
        s.write_all(word)?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 16];
        while !answer.contains(&b'\n') && answer.len() < 64 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            s.set_read_timeout(Some(left))?;
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(answer)
    };
    match exchange() {
        Ok(a) if a == REPLY => Outcome::Synced,
        Ok(a) if a.is_empty() => {
            Outcome::NoAnswer(format!("{} closed without an answer", path.display()))
        }
        Ok(a) => Outcome::NoAnswer(format!(
            "unexpected answer {:?} on {}",
            String::from_utf8_lossy(&a),
            path.display()
        )),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Outcome::NoAnswer(format!(
                "no answer on {} within {} s",
                path.display(),
                timeout.as_secs()
            ))
        }
        Err(e) => Outcome::NoAnswer(format!("{}: {e}", path.display())),
    }
}

/// The generator (`unitarmor-generator NORMAL-DIR [EARLY-DIR LATE-DIR]`), run by systemd at
/// boot and inside every `daemon-reload`, before it loads units. Always exits 0.
///
/// - The daemon answers: it has read every unit's files (the ones systemd is about to load)
///   and written the kernel maps; a unit started after this reload is armored by them from its
///   first instruction.
/// - No daemon, and no pinned programs (boot, where generators run before the daemon, which
///   reads everything when it starts; or unitarmor disarmed): nothing to do.
/// - No daemon while pinned programs keep enforcing what an earlier daemon wrote, or a daemon
///   that does not answer: every armored service gets a drop-in requiring [`SYNC_UNIT`] in
///   the generator's output directory, so starting one first (re)starts the daemon and waits
///   until it has read every unit's files; if it cannot, the service does not start.
pub fn generator(dirs: &[PathBuf]) -> i32 {
    let problem = match request(Path::new(SOCKET), REQUEST, GENERATOR_TIMEOUT) {
        Outcome::Synced => return 0,
        Outcome::NotRunning => None,
        Outcome::NoAnswer(why) => Some(why),
    };
    let refused = "armored services start only once it has read their files, and not at all \
                   while it cannot";
    if problem.is_none() && !kernel::pinned() {
        return 0;
    }
    let written = match dirs.first() {
        Some(dir) => write_wait_dropins(dir),
        None => Err(anyhow::anyhow!("no output directory given")),
    };
    log(&match (problem, written) {
        (None, Ok(n)) => format!(
            "the unitarmor daemon is not running (its pinned programs are): starting any of \
             {n} armored services starts it first, and it reads their files before they start"
        ),
        (Some(why), Ok(_)) => format!("the unitarmor daemon did not answer ({why}); {refused}"),
        (None, Err(e)) => format!(
            "the unitarmor daemon is not running, and the wait drop-ins could not be written \
             ({e:#}): units started now may run under the policy the kernel has until the \
             daemon has read their files"
        ),
        (Some(why), Err(e)) => format!(
            "the unitarmor daemon did not answer ({why}), and the wait drop-ins could not be \
             written ({e:#}): units started now may run under the policy the kernel has until \
             the daemon has read their files"
        ),
    });
    0
}

/// `unitarmor sync`, what [`SYNC_UNIT`] runs: asks the daemon to re-read every unit's files
/// (unless nothing can have changed since it last did) and write the kernel maps, and returns
/// 0 once it has; 1, saying why, if no daemon answers within [`SYNC_TIMEOUT`].
pub fn sync_command(user_manager: bool) -> i32 {
    let word = if user_manager {
        REQUEST_USER
    } else {
        REQUEST_START
    };
    let outcome = request(Path::new(SOCKET), word, SYNC_TIMEOUT);
    if user_manager && !matches!(outcome, Outcome::Synced) {
        // A user's manager with no daemon to arm its units: it starts only if root's files
        // armor no user unit (the user's own files are the user's to keep).
        if let Some(file) = super::users::root_armors_user_units() {
            eprintln!(
                "unitarmor: the daemon does not answer and {} armors user units: this user's \
                 service manager does not start until it does",
                file.display()
            );
            return 1;
        }
        return 0;
    }
    match outcome {
        Outcome::Synced => {
            println!("the unitarmor daemon has read every unit's files");
            0
        }
        Outcome::NotRunning => {
            eprintln!(
                "unitarmor: the daemon is not running ({SOCKET} does not answer): armored \
                 services waiting for it are not started (see systemctl status unitarmor; \
                 `unitarmor disarm` and a daemon-reload run them unarmored)"
            );
            1
        }
        Outcome::NoAnswer(why) => {
            eprintln!(
                "unitarmor: the daemon did not answer ({why}): armored services waiting for it \
                 are not started"
            );
            1
        }
    }
}

/// Writes [`WAIT_DROPIN`] for every armored service (and template) into `dir`, armored by its
/// own files or by a slice it is in; returns how many. Slices get none: ordering a slice after
/// a service that lives in a slice is a cycle. Nor do the daemon and the sync unit: a unit
/// that waits for itself is a cycle.
pub(super) fn write_wait_dropins(dir: &Path) -> Result<usize> {
    let mut n = 0;
    let mut disk = DiskPass::whole();
    for c in discover_on_disk(&mut disk, false) {
        let armored = resolve::mentions_armor(&c.files)
            || !c.unlisted.is_empty()
            || !slice_layers(&c.slice, &mut disk).is_empty();
        if !c.name.ends_with(".service")
            || c.name == "unitarmor.service"
            || c.name == SYNC_UNIT
            || !armored
        {
            continue;
        }
        let d = dir.join(format!("{}.d", c.name));
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        let f = d.join(WAIT_DROPIN);
        std::fs::write(&f, WAIT_DROPIN_TEXT).with_context(|| format!("writing {}", f.display()))?;
        n += 1;
    }
    Ok(n)
}

/// One line into the journal: through the kernel log (as systemd's own generators log; it is
/// there at every stage of boot), or standard error if that cannot be opened.
fn log(msg: &str) {
    // <12>: facility user, priority warning; journald takes the identifier from the prefix.
    let line = format!("<12>unitarmor-generator[{}]: {msg}\n", std::process::id());
    let kmsg = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/kmsg")
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if kmsg.is_err() {
        eprintln!("unitarmor-generator: {msg}");
    }
}
