//! `systemctl daemon-reload` waits for unitarmor: a generator (which systemd runs synchronously
//! inside every reload, before it loads units) asks the daemon over a unix socket to re-read
//! every unit's files from disk and write the kernel maps, and returns only when it has.
//!
//! The daemon's end lives here: the server ([`listen`]) and the disk-only pass it runs for each
//! request ([`Daemon::answer_sync`]); the clients (the generator, `unitarmor sync`) are in
//! sync_client.rs. See docs/DESIGN.md, "A reload waits for the daemon".
//!
//! Nothing here talks to PID 1: during the exchange it is blocked in the reload.

use std::collections::HashSet;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use super::discover::{bind_order, discover_on_disk, Candidate, DiskPass};
pub use super::sync_client::{
    generator, sync_command, Outcome, GENERATOR_TIMEOUT, SYNC_TIMEOUT, SYNC_UNIT,
};
use super::sync_client::{REPLY, REQUEST, REQUEST_START, REQUEST_USER};
use super::watch::{Began, Changes};
use super::Daemon;
use crate::kernel::REFUSE_ID;
use crate::policy::resolve;
use crate::systemd;

/// The daemon's sync socket (in its `RuntimeDirectory=`).
pub const SOCKET: &str = "/run/unitarmor/sync";
/// How long the daemon waits for a client's request line, and to write its answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// The last disk-only pass, for a unit's start that may need no new one.
pub(super) struct LastPass {
    /// `Changes::now` (changes.rs) as it began.
    mark: u64,
    /// When it began.
    began: Began,
    /// The room the kernel's tables had as it ended ([`Daemon::room`]).
    room: (usize, u64),
    /// When it ended, if it could not read every file: such a pass answers starts only for
    /// [`INCOMPLETE_HOLDS`] (a read error may be gone the next time, and no watch says so).
    incomplete: Option<Instant>,
}

/// How long a pass that could not read every file answers later starts: a file that stays
/// unreadable is read again at most this often, not at every waiting start. Units whose files
/// it could not read stay on their last good policy or refused everything meanwhile.
const INCOMPLETE_HOLDS: Duration = Duration::from_secs(1);

/// A client waiting for a sync: answered (dropped or sent) by the main loop.
pub(super) struct Request {
    /// From a reload's generator (else from a unit's start).
    reload: bool,
    /// From a user's manager about to start: a pass even if the last one holds.
    user: bool,
    done: oneshot::Sender<()>,
}

/// Listens at `path` (a stale socket there is replaced; mode 0600) and forwards each
/// well-formed request to the returned channel. Each connection is read by a task of its
/// own, with a timeout, so a slow or silent client holds up nobody. A reload's request bumps
/// `changes` as soon as it is read, before the main loop sees it.
pub(super) fn listen(path: &Path, changes: Arc<Changes>) -> Result<mpsc::Receiver<Request>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("setting the mode of {}", path.display()))?;
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve(stream, tx.clone(), changes.clone()));
                }
                Err(e) => {
                    warn!("sync socket: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(rx)
}

/// One client: reads its request, hands it to the main loop, writes `ok\n` when that has
/// answered it.
async fn serve(stream: UnixStream, tx: mpsc::Sender<Request>, changes: Arc<Changes>) {
    let read = tokio::time::timeout(CLIENT_TIMEOUT, async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16];
        while !buf.contains(&b'\n') && buf.len() < REQUEST_START.len() {
            stream.readable().await?;
            match stream.try_read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(buf)
    })
    .await;
    let (reload, user) = match read {
        Ok(Ok(ref b)) if b == REQUEST => (true, false),
        Ok(Ok(ref b)) if b == REQUEST_START => (false, false),
        Ok(Ok(ref b)) if b == REQUEST_USER => (false, true),
        _ => return,
    };
    if reload {
        changes.bump();
    }
    let (done, answered) = oneshot::channel();
    if tx.send(Request { reload, user, done }).await.is_err() || answered.await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLIENT_TIMEOUT, async {
        let mut sent = 0;
        while sent < REPLY.len() {
            stream.writable().await?;
            match stream.try_write(&REPLY[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok::<_, io::Error>(())
    })
    .await;
}

/// How long files written without a reload wait for their pass (`Daemon::files_written`):
/// long enough for the `systemctl daemon-reload` that usually follows to begin.
const WATCH_SETTLE: Duration = Duration::from_millis(500);

/// How long into a reload files written without one wait for its request's pass, at most: as
/// long as the generator waits for its answer, and the settling. A reload whose end the
/// daemon does not hear of (systemd sends no `Reloading(false)` when its serialization fails)
/// holds them no longer.
const RELOAD_DEFER: Duration = Duration::from_secs(GENERATOR_TIMEOUT.as_secs() + 1);

/// How long after a reload's request was answered its end (PID 1's `Reloading(false)`) may take
/// before the daemon reads what systemd loaded without it ([`Daemon::reload_end_unheard`]).
/// A reload under load took 10 s from its generator to its end in the emulated guest.
const RELOAD_END_WAIT: Duration = Duration::from_secs(30);

/// While files written without a reload wait for their pass, how often the main loop looks
/// whether a cgroup waits for that pass (`Daemon::watch_wakeup`).
const WATCH_POLL: Duration = Duration::from_millis(50);

/// When the pass for files written without a reload is due, if they wait for one: at `due`
/// ([`WATCH_SETTLE`] after they were), and while a reload runs (since `reloading_since`), not
/// before [`RELOAD_DEFER`] into it: its own request's pass comes first, and clears `due`.
fn deadline(due: Option<Instant>, reloading_since: Option<Instant>) -> Option<Instant> {
    let due = due?;
    Some(match reloading_since {
        Some(r) => due.max(r + RELOAD_DEFER),
        None => due,
    })
}

/// Waits until `at`, or forever.
pub(super) async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// The next request, or never if there is no socket.
pub(super) async fn next(rx: &mut Option<mpsc::Receiver<Request>>) -> Option<Request> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl Daemon {
    /// Answers `first` and every request queued behind it with one pass over the files on
    /// disk: each was made before the pass started, so the pass has seen what it asked for.
    /// Requests from units' starts alone need no pass when the last one still holds
    /// ([`Daemon::last_pass_holds`]). Returns whether a reload's request was among them.
    pub(super) fn answer_sync(
        &mut self,
        first: Request,
        rx: &mut Option<mpsc::Receiver<Request>>,
    ) -> bool {
        let mut waiting = vec![first];
        if let Some(rx) = rx {
            while let Ok(r) = rx.try_recv() {
                waiting.push(r);
            }
        }
        let reload = waiting.iter().any(|w| w.reload);
        if reload {
            // The reload's own pass: files written after it wait no longer for the reload.
            self.reloading_since = None;
            // What it cannot do (disarm a unit systemd no longer has armored) waits for the
            // rescan the reload's end starts, or for this.
            self.reload_end_due = Some(Instant::now() + RELOAD_END_WAIT);
        }
        let why = if reload {
            ""
        } else if waiting.iter().any(|w| w.user) {
            "a user's service manager starts"
        } else {
            match self.last_pass_holds() {
                Ok(()) => {
                    for w in waiting {
                        self.answer_when_compiled(w.done);
                    }
                    return false;
                }
                Err(why) => why,
            }
        };
        let started = Instant::now();
        let merges = (self.merged.made, self.merged.reused);
        let (n, phases) = self.sync_from_disk();
        let (made, reused) = (self.merged.made - merges.0, self.merged.reused - merges.1);
        if reload {
            // Made while the reload runs: a generator slower than ours may write after it.
            self.last_pass = None;
        }
        for w in waiting {
            self.answer_when_compiled(w.done);
        }
        let ms = started.elapsed().as_millis();
        // What the pass changed is published right after the answer, in this turn of the main
        // loop: a `unitarmor status` asked once the reload returns waits for this turn's end
        // (api.rs: `fresh`), and the reload does not wait for the walk of the kernel's maps
        // that a publication costs.
        let publishing = Instant::now();
        self.flush_status();
        let published = publishing.elapsed().as_millis();
        if reload {
            info!(
                "daemon-reload: re-read {n} armored units from disk in {ms} ms ({phases}; \
                 {reused} policies unchanged, {made} merged); status published in {published} ms"
            );
        } else {
            info!("a unit's start: re-read {n} armored units from disk in {ms} ms ({why})");
        }
        reload
    }

    /// A reload's request was answered [`RELOAD_END_WAIT`] ago and no rescan has run since: its
    /// end was not heard (a signal lost, or PID 1 still busy). A pass made during a reload
    /// disarms nothing, so without a rescan a drop-in removed before the reload would stay in
    /// force (stricter than the files, but not what they say) until the next one. The rescan
    /// that follows is made all the same: while PID 1 still reloads, it answers it afterwards.
    pub(super) fn reload_end_unheard(&mut self) {
        self.reload_end_due = None;
        warn!(
            "no end of the daemon-reload heard from systemd {} s after its generator asked; \
             re-reading unit configuration",
            RELOAD_END_WAIT.as_secs()
        );
    }

    /// Answers a sync request now, or once the policies being compiled are in the kernel
    /// (compiling.rs): what it waits for is the kernel enforcing what the files say.
    fn answer_when_compiled(&mut self, done: tokio::sync::oneshot::Sender<()>) {
        if self.compiling.idle() {
            let _ = done.send(());
        } else {
            self.compiling.reply_later(done);
        }
    }

    /// Whether a pass over the disk now would do nothing the last one did not: no file it
    /// reads can have changed since it began (`Changes`, changes.rs), and nothing it could not do
    /// then (a unit refused or kept on an older policy for want of room) can have become
    /// possible since, with room freed in the kernel's tables. (Units whose files have errors
    /// or whose policy does not compile fail again whatever the room: old policies leaving
    /// the tables must not make every start read every file then.)
    /// `Err` says why not.
    fn last_pass_holds(&self) -> Result<(), &'static str> {
        let Some(last) = &self.last_pass else {
            return Err("no pass since the daemon started or the last reload");
        };
        let (mark, began, room) = (last.mark, last.began, last.room);
        if last
            .incomplete
            .is_some_and(|ended| ended.elapsed() > INCOMPLETE_HOLDS)
        {
            return Err("the last pass could not read every file");
        }
        if let Some(why) = self.changes.changed_since(mark, began) {
            return Err(why);
        }
        if !self.want_room.is_empty() && room != self.room() {
            return Err("room was freed for a unit the last pass could not armor in full");
        }
        Ok(())
    }

    /// What the kernel's tables have room for: free policy slots, and how many policies'
    /// tables have been taken out of them so far (each frees cells).
    pub(super) fn room(&self) -> (usize, u64) {
        (
            (REFUSE_ID as usize - 1).saturating_sub(self.slots_in_use().len()),
            self.tables_removed,
        )
    }

    /// Unit files or drop-ins changed (watch.rs): a pass in [`WATCH_SETTLE`], unless one comes
    /// first (or a cgroup waits for it: [`Daemon::watch_wakeup`]). Administrators mostly write
    /// a drop-in and run `systemctl daemon-reload` at once; the reload's request makes a pass
    /// that covers the change, and a pass of the watcher's made meanwhile was a second one the
    /// reload waited behind (the benchmark's reload that applies a change took 150 ms longer
    /// than one with nothing changed).
    pub(super) fn files_written(&mut self, rx: &mut Option<mpsc::UnboundedReceiver<()>>) {
        if let Some(rx) = rx {
            while rx.try_recv().is_ok() {}
        }
        self.watch_due
            .get_or_insert_with(|| Instant::now() + WATCH_SETTLE);
    }

    /// When the main loop looks next at files written without a reload
    /// ([`Daemon::watch_wakeup`]): when their pass is due ([`deadline`]), and every
    /// [`WATCH_POLL`] until then.
    pub(super) fn watch_deadline(&self) -> Option<Instant> {
        let due = deadline(self.watch_due, self.reloading_since)?;
        Some(due.min(Instant::now() + WATCH_POLL))
    }

    /// The pass for files written without a reload, if it is due, or at once if a cgroup
    /// waits for a pass (a unit started after the write: pending.rs), which it must not wait
    /// out the settling for.
    pub(super) fn watch_wakeup(&mut self, rx: &mut Option<mpsc::UnboundedReceiver<()>>) {
        let due = deadline(self.watch_due, self.reloading_since);
        if due.is_some_and(|d| d <= Instant::now()) || self.cgroups_may_wait() {
            self.files_changed(rx);
        }
    }

    /// Unit files or drop-ins changed without a reload (watch.rs): one disk-only pass covers
    /// the whole batch and whatever queued behind it.
    pub(super) fn files_changed(&mut self, rx: &mut Option<mpsc::UnboundedReceiver<()>>) {
        if let Some(rx) = rx {
            while rx.try_recv().is_ok() {}
        }
        self.sync_from_disk();
    }

    /// Brings every armored unit's policy and expected cgroup path in line with the files on
    /// disk, without asking systemd (PID 1 is blocked in the reload that asked for this).
    ///
    /// - Units the daemon knows keep the slice and cgroup path systemd told it about, unless
    ///   their files' `Slice=` changed since: the disk can only guess those.
    /// - Nothing is disarmed here (a unit removed from disk, or no longer armored, is left to
    ///   the rescan with systemd's view that follows the reload): a pass that reads the disk
    ///   slightly differently from systemd must not drop a policy.
    ///   The one exception is an instance of an armored template that the daemon has not
    ///   armored, covered or refused yet and that its own files leave unarmored (exempt.rs):
    ///   it would otherwise start under its template's policy, against its files, until the
    ///   rescan.
    /// - Only cgroups of units armored for the first time are bound here; a changed policy
    ///   is switched over by `reconcile` itself.
    ///
    /// Returns how many armored units it read, and where its time went (for the log).
    fn sync_from_disk(&mut self) -> (usize, String) {
        let t0 = Instant::now();
        // What the watcher reported so far was written before this pass reads anything.
        self.watch_due = None;
        self.publish_unit_dirs();
        let pending_began = crate::kernel::pending::monotonic_ns();
        let mark = self.changes.now();
        let began = Began::now();
        let mut disk = DiskPass::whole();
        let t1 = Instant::now();
        let mut candidates = discover_on_disk(&mut disk, true);
        let listed: HashSet<String> = candidates.iter().map(|c| c.name.clone()).collect();
        // Units whose first policy waits (first.rs), wherever systemd's view found them.
        let held = self.held.names();
        // Units systemd told us about that have no files of their own in a unit directory
        // (instances of templates), and instances left unarmored by files of their own that
        // may be gone now (exempt.rs): read again, so that such an instance is armored again
        // before the reload returns.
        let extra: Vec<Candidate> = self
            .units
            .keys()
            .chain(self.exempt.keys())
            .chain(self.compiling.names())
            .chain(held.iter())
            .filter(|n| !listed.contains(*n))
            // A user unit the pass did not list is gone: its files say otherwise, or its
            // user's manager has stopped (users.rs); disarmed below, its slot freed.
            .filter(|n| !systemd::is_user_unit(n))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|n| disk_candidate(n, &mut disk))
            .collect();
        candidates.extend(extra);
        let users_gone: Vec<String> = self
            .units
            .keys()
            .filter(|n| systemd::is_user_unit(n) && !listed.contains(*n))
            .cloned()
            .collect();
        if !users_gone.is_empty() {
            self.disarm_units(&users_gone);
            for n in &users_gone {
                info!(unitarmor_unit = n.as_str(), "{n}: no longer armored");
            }
        }
        candidates.retain(|c| {
            resolve::mentions_armor_from(&c.files, &mut |f| c.read(&mut disk, f))
                || !c.unlisted.is_empty()
        });
        // A pass that could not read everything answers later starts for a moment only
        // (INCOMPLETE_HOLDS): then the next one reads again.
        let complete = candidates.iter().all(|c| {
            c.unlisted.is_empty()
                && resolve::all_readable_from(&c.files, &mut |f| c.read(&mut disk, f))
        });
        for c in &mut candidates {
            // A user unit's path is its files' alone (users.rs), read as its user's.
            if c.user.is_some() {
                continue;
            }
            if let Some(a) = self.units.get(&c.name) {
                if systemd::slice_from_files_from(&c.files, &mut |f| disk.read(f))
                    == a.slice_setting
                {
                    c.slice.clone_from(&a.slice);
                    c.control_group.clone_from(&a.control_group);
                }
            } else if let Some(j) = self.compiling.candidate(&c.name) {
                // A unit armored for the first time whose policy is being compiled: what
                // systemd said of it, as for a unit the daemon knows.
                let read = &mut |f: &std::path::Path| disk.read(f);
                if systemd::slice_from_files_from(&c.files, read)
                    == systemd::slice_from_files_from(&j.files, read)
                {
                    c.slice.clone_from(&j.slice);
                    c.control_group.clone_from(&j.control_group);
                }
            }
        }
        candidates.sort_by_key(|c| bind_order(&c.name));
        // A policy being compiled for a unit its files no longer armor is not installed.
        self.compiling
            .keep_only(&candidates.iter().map(|c| c.name.as_str()).collect());
        let t2 = Instant::now();
        for c in &candidates {
            let new = !self.units.contains_key(&c.name);
            self.reconcile_with(c, false, &mut disk);
            if new {
                self.bind_existing(c);
            }
        }
        self.held
            .keep_only(&candidates.iter().map(|c| c.name.as_str()).collect());
        self.last_pass = Some(LastPass {
            mark,
            began,
            room: self.room(),
            incomplete: (!complete).then(Instant::now),
        });
        let t3 = Instant::now();
        // Marks of units whose policy is still being compiled hold their cgroups until it is
        // in the kernel (compiling.rs).
        if self.compiling.idle() {
            self.settle_pending(pending_began);
        } else {
            self.compiling.settle_later(pending_began);
        }
        drop(disk);
        let t4 = Instant::now();
        super::events::release_free_memory();
        let t5 = Instant::now();
        let phases = format!(
            "unit directories {} ms, reading {} ms, reconciling {} ms, pending {} ms, trim {} ms",
            (t1 - t0).as_millis(),
            (t2 - t1).as_millis(),
            (t3 - t2).as_millis(),
            (t4 - t3).as_millis(),
            (t5 - t4).as_millis()
        );
        (candidates.len(), phases)
    }
}

/// A unit as the files on disk configure it (as `discover_on_disk` resolves each one).
pub(super) fn disk_candidate(name: &str, disk: &mut DiskPass) -> Candidate {
    if let Some(c) = super::users::candidate_for_key(name, disk) {
        return c;
    }
    let (files, unlisted) = super::discover::files_on_disk(name, disk);
    let slice = systemd::slice_from_files_from(&files, &mut |f| disk.read(f))
        .unwrap_or_else(|| systemd::default_slice(name));
    Candidate {
        name: name.to_string(),
        files,
        slice,
        control_group: String::new(),
        unlisted,
        user: None,
    }
}

#[cfg(test)]
#[path = "sync_tests.rs"]
mod tests;
