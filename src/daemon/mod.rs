//! The daemon: follows systemd over D-Bus, keeps every armored unit's compiled policy and
//! cgroup binding in the kernel maps, and turns kernel events into journal records.
//!
//! Start-up order matters (docs/DESIGN.md, "Binding"): policies and expected cgroup paths are
//! written first, then the cgroup_mkdir program is attached (new cgroups bind themselves),
//! then cgroups that already exist are bound, then the LSM programs are attached, and only
//! then are the pins of an earlier daemon replaced. At no point is an armored unit unenforced.
//!
//! This file holds the daemon's state, its start-up order and main loop; `discover.rs` finds
//! the armored units, `reconcile.rs` brings the kernel in line with them, `events.rs` turns
//! kernel events into journal records, `cgroups.rs` walks the cgroup tree, `sync.rs`
//! makes `systemctl daemon-reload` wait until the daemon has read the new files, and
//! `watch.rs` notices files changed without a reload, and `metrics.rs` reports how often each
//! rule decided.

mod bind;
mod cgroups;
mod changes;
mod compiling;
mod discover;
mod events;
mod exempt;
mod good;
mod learn;
mod metrics;
mod pending;
mod reconcile;
pub mod sync;
mod unload;
mod watch;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::StreamExt;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::api::{self, Published};
use crate::compile::Tables;
use crate::journal::Aggregator;
use crate::kernel::abi::Event;
use crate::kernel::{self, Kernel};
use crate::policy::Policy;
use crate::systemd::{self, ManagerProxy};

use compiling::Compiled;
use discover::{discover, discover_on_disk, template_of};
use events::spawn_event_reader;
use sync::Request;

/// An armored unit as the daemon keeps it.
struct Armored {
    policy: Policy,
    tables: Tables,
    id: u32,
    /// The cgroup path the unit's cgroup is (or will be) created at.
    expected: String,
    /// What `expected` was computed from: the unit's slice and cgroup path (empty unless
    /// systemd said) as of the last reconcile, and the `Slice=` its files set then. The
    /// disk-only pass of a reload keeps the first two while the third is unchanged.
    slice: String,
    control_group: String,
    slice_setting: Option<String>,
    /// Error diagnostics of the last read of its files (logged once per change).
    errors: Vec<String>,
    denied: u64,
    audited: u64,
    /// Events of this unit the ring buffer had no room for.
    lost: u64,
    /// Its policy did not compile and it had no last good one: it runs under
    /// [`crate::compile::refuse_all`], and `errors` holds why.
    compile_failed: bool,
}

pub struct Daemon {
    kernel: Kernel,
    units: BTreeMap<String, Armored>,
    /// Policy id -> unit and policy, for events (kept while retired tables are still in the
    /// kernel, so late events of a replaced policy still name their rule).
    owners: HashMap<u32, (String, Arc<Policy>)>,
    /// Policy id -> the rule groups of a grouped (large) policy, and the finder that tells
    /// which of a group's rules an event matched, built at the first event that needs it
    /// (compile/groups.rs). Removed with `owners`.
    groups: HashMap<
        u32,
        (
            Vec<crate::compile::Group>,
            Option<Option<crate::compile::RuleFinder>>,
        ),
    >,
    /// Seconds the main loop has ticked (some upkeep runs every tenth).
    ticks: u64,
    /// Checks (every 10 s) in a row that found the decision cache off while it was turned on;
    /// at two it is reported, once (bpf/decided.h).
    cache_off: u8,
    /// Instances that run under their template's policy (no slot of their own) -> the
    /// template and the instance's cgroup path.
    covered: HashMap<String, (String, String)>,
    /// Instances of an armored template that their own files leave unarmored -> the
    /// instance's cgroup path (exempt.rs).
    exempt: HashMap<String, String>,
    retiring: Vec<(u32, Tables, Instant)>,
    next_id: u32,
    aggregator: Aggregator,
    lost: HashMap<u64, u64>,
    /// The kernel's counts of repeated events it did not send (events.rs), as last read.
    quiet: HashMap<(u32, u32, u8, u8), u64>,
    /// Policies retired in the last tick, whose repeat counts go after one more reading.
    quiet_gone: Vec<u32>,
    /// Policies removed from the kernel that a cgroup may still be bound to (events.rs:
    /// sweep); their ids are not handed out again until no cgroup is.
    dead: HashSet<u32>,
    /// Units refused everything for want of a free policy id (bound to
    /// [`kernel::REFUSE_ID`]), with their expected cgroup path; retried at each pass.
    refused: HashMap<String, String>,
    /// Units whose policy could not be put in the kernel for want of room (a policy slot, or
    /// cells in its tables) at their last try: refused everything or kept on an older
    /// policy. Room freed since makes a unit's start read the files again (sync.rs).
    want_room: HashSet<String>,
    status: Arc<Mutex<Published>>,
    /// Whether `status` lags behind what the daemon did: published once at the end of the
    /// work at hand (the main loop's turn, a pass answering a reload), not once per unit, which
    /// cost a walk of the kernel's maps for each of a thousand units armored or disarmed.
    status_stale: bool,
    /// The node_exporter textfile could not be written last time (metrics.rs; logged once).
    textfile_failing: bool,
    /// Whether the files may have changed since a pass began (watch.rs).
    changes: Arc<watch::Changes>,
    /// The last disk-only pass (sync.rs: a unit's start may need no new one).
    last_pass: Option<sync::LastPass>,
    /// Policies whose tables were taken out of the kernel since the daemon started.
    tables_removed: u64,
    /// What units in learn mode were seen doing (learn.rs).
    learning: learn::Learning,
    /// Cgroups of units started while their files were written (pending.rs).
    pending: pending::Pending,
    /// Big policies being compiled on a thread of their own (compiling.rs).
    compiling: compiling::Compiling,
}

/// The machine cannot enforce (the daemon exits with [`Unsupported::EXIT_CODE`]).
#[derive(Debug, thiserror::Error)]
#[error("cannot enforce on this machine: {0}")]
pub struct Unsupported(pub String);

impl Unsupported {
    /// EX_CONFIG: unitarmor.service does not restart on it.
    pub const EXIT_CODE: i32 = 78;
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(sub_cgroups: u32) -> Result<()> {
    // main() prints the error; under systemd that line lands in the unit's journal.
    kernel::check_support().map_err(Unsupported)?;
    let adopted = kernel::pinned();
    let started = std::time::Instant::now();
    let kernel = Kernel::load(sub_cgroups)?;
    let loaded = started.elapsed();
    let status = Arc::new(Mutex::new(Published::default()));
    let (compiled_tx, mut compiled) = mpsc::unbounded_channel();
    let mut d = Daemon {
        kernel,
        units: BTreeMap::new(),
        owners: HashMap::new(),
        groups: HashMap::new(),
        covered: HashMap::new(),
        exempt: HashMap::new(),
        ticks: 0,
        cache_off: 0,
        retiring: Vec::new(),
        next_id: 1,
        aggregator: Aggregator::new(5, Duration::from_secs(10)),
        lost: HashMap::new(),
        quiet: HashMap::new(),
        quiet_gone: Vec::new(),
        dead: HashSet::new(),
        refused: HashMap::new(),
        want_room: HashSet::new(),
        status: status.clone(),
        status_stale: false,
        textfile_failing: false,
        changes: watch::Changes::new(),
        last_pass: None,
        tables_removed: 0,
        learning: learn::Learning::default(),
        pending: pending::Pending::default(),
        compiling: compiling::Compiling::new(compiled_tx),
    };
    // The socket a reload's generator asks on (sync.rs). Bound before phase 1: a reload
    // meanwhile waits for its answer, which comes from a pass over the disk made after it.
    let mut sync_rx = match sync::listen(Path::new(sync::SOCKET), d.changes.clone()) {
        Ok(rx) => Some(rx),
        Err(e) => {
            warn!("{e:#}; daemon-reload will not wait for unitarmor");
            None
        }
    };

    // Phase 1, from disk alone (the bus may not be up this early in boot): policies and
    // expected cgroup paths, then binding at creation, then existing cgroups, then the hooks.
    let mut disk = discover::DiskPass::whole();
    let candidates = discover_on_disk(&mut disk, false);
    for c in &candidates {
        d.reconcile_with(c, true, &mut disk);
    }
    d.kernel.attach_binding()?;
    for c in &candidates {
        d.bind_existing(c);
    }
    d.kernel.recount_trees();
    let attaching = std::time::Instant::now();
    d.kernel.attach_hooks()?;
    info!(
        "BPF programs loaded in {} ms (verifier), attached in {} ms",
        loaded.as_millis(),
        attaching.elapsed().as_millis()
    );
    for hook in &d.kernel.missing_hooks {
        if *hook == "alloc_chrdev_region" {
            warn!(
                "this kernel's BTF has no alloc_chrdev_region, __register_chrdev or \
                 misc_register function to trace: passthrough devices (NVMe, bsg, RAID \
                 controllers, nvme-fabrics) of drivers loaded after the daemon started are not \
                 refused"
            );
            continue;
        }
        if *hook == "d_move" {
            warn!(
                "this kernel's BTF has no d_move, d_exchange or d_delete function to trace: opens \
                 are decided without the decision cache (slower, not weaker)"
            );
            continue;
        }
        if *hook == "mnt_want_write" {
            warn!(
                "this kernel's BTF has no mnt_want_write and mnt_drop_write functions to trace: \
                 timestamp and extended attribute changes are not decided by write rules"
            );
            continue;
        }
        warn!(
            "this kernel has no {hook} LSM hook: {}",
            match *hook {
                "userns_create" => "armored units can create user namespaces",
                "file_ioctl_compat" => "32-bit inode flag changes are not decided",
                "file_truncate" => "open(O_TRUNC) is decided at path_truncate (kernels before 6.2)",
                "perf_event_open" => "armored units may open perf events of a whole CPU",
                _ => "ACL changes are decided as extended attributes",
            }
        );
    }
    d.kernel.pin()?;
    if adopted {
        info!(
            "took over enforcement from the programs an earlier daemon pinned under {}",
            kernel::PIN_DIR
        );
    }
    // Files written without a reload: read at once (see watch.rs). Started before the
    // start-up pass would be better still, but the pass that follows the bus connection
    // reads everything again.
    let mut changed = match watch::spawn(d.changes.clone()) {
        Ok(rx) => Some(rx),
        Err(e) => {
            warn!("{e:#}; unit files changed without a daemon-reload are read at the next reload");
            None
        }
    };
    // Units started while their files are written wait for a pass (pending.rs). Nothing
    // was marked before: the start-up pass read every file.
    d.start_pending();
    let (tx, mut events) = mpsc::channel::<Event>(8192);
    spawn_event_reader(d.kernel.events()?, tx)?;
    info!("enforcing: {} armored units", d.units.len());
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);

    // Phase 2: follow systemd. Signals are forwarded by tasks of their own into an unbounded
    // channel: zbus stops reading the socket when a signal queue is full, and the daemon makes
    // D-Bus calls of its own while it handles a signal, so an undrained queue would deadlock.
    // Every exchange with PID 1 also answers sync requests meanwhile: PID 1 answers nothing
    // while a reload runs the generator, and the generator waits for us.
    let (sig_tx, mut signals) = mpsc::unbounded_channel();
    let changes = d.changes.clone();
    let (conn, manager) = answering(&mut d, &mut sync_rx, &mut compiled, async {
        let conn = zbus::connection::Builder::system()
            .method_timeout(Duration::from_secs(30))
            .build()
            .await
            .context("connecting to the system bus")?;
        let manager = ManagerProxy::new(&conn).await?;
        forward_signals(&manager, sig_tx, changes).await?;
        manager
            .subscribe()
            .await
            .context("subscribing to systemd's signals")?;
        anyhow::Ok((conn, manager))
    })
    .await?;
    rescan(&mut d, &conn, &manager, &mut sync_rx, &mut compiled).await;
    answering(
        &mut d,
        &mut sync_rx,
        &mut compiled,
        api::serve(&conn, status),
    )
    .await
    .context("offering the D-Bus API")?;
    d.publish_status();
    info!("following systemd: {} armored units", d.units.len());

    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    d.compiling.enabled = true;
    loop {
        tokio::select! {
            Some(sig) = signals.recv() => match sig {
                SystemdSignal::Reloaded => {
                    // A rescan covers whatever else is queued.
                    while signals.try_recv().is_ok() {}
                    info!("systemd reloaded; re-reading unit configuration");
                    rescan(&mut d, &conn, &manager, &mut sync_rx, &mut compiled).await;
                }
                SystemdSignal::Unit(name) => {
                    // Only instances need it: a template's policy binds them at creation, and
                    // this refines it to the instance's own.
                    let armored_template = template_of(&name).is_some_and(|t| d.units.contains_key(&t));
                    // Most instances run under their template's policy, which their files
                    // on disk show without a D-Bus call.
                    if armored_template
                        && !d.units.contains_key(&name)
                        && !d.covered.contains_key(&name)
                        && !d.cover_from_disk(&name)
                    {
                        refresh_instance(&mut d, &conn, &manager, &mut sync_rx, &mut compiled, &name).await;
                    }
                }
                SystemdSignal::Removed(name) => d.unit_removed(&name),
            },
            Some(req) = sync::next(&mut sync_rx) => {
                d.answer_sync(req, &mut sync_rx);
            }
            Some(()) = watch::next(&mut changed) => d.files_changed(&mut changed),
            Some(ev) = events.recv() => d.on_event(ev),
            Some(done) = compiled.recv() => d.compiled(done),
            _ = tick.tick() => d.on_tick(),
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
        }
        // A compile dropped in this turn may have been the last one waited for.
        d.after_compiles();
        d.flush_status();
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    d.stop_pending();
    d.save_learned();
    if sync_rx.is_some() {
        let _ = std::fs::remove_file(sync::SOCKET);
    }
    info!(
        "stopping; the pinned programs under {} keep enforcing",
        kernel::PIN_DIR
    );
    Ok(())
}

/// Reads instance `name` of an armored template from systemd, answering sync requests
/// meanwhile. A reload's request means what systemd says now may predate it: the rescan that
/// follows covers this unit.
async fn refresh_instance(
    d: &mut Daemon,
    conn: &zbus::Connection,
    manager: &ManagerProxy<'_>,
    sync_rx: &mut Option<mpsc::Receiver<Request>>,
    compiled: &mut mpsc::UnboundedReceiver<Compiled>,
    name: &str,
) {
    let fetch = async {
        let path = manager.get_unit(name).await?;
        systemd::unit_info(conn, path).await
    };
    tokio::pin!(fetch);
    loop {
        tokio::select! {
            info = &mut fetch => {
                match info {
                    Ok(info) => d.refresh(info),
                    // Loaded and unloaded again before we asked (a stopped instance being
                    // collected): nothing to armor.
                    Err(e) if format!("{e:#}").contains("NoSuchUnit") => {
                        tracing::debug!("unit {name} is gone again: {e:#}");
                    }
                    Err(e) => warn!("cannot read unit {name}: {e:#}"),
                }
                return;
            }
            Some(req) = sync::next(sync_rx) => if d.answer_sync(req, sync_rx) {
                rescan(d, conn, manager, sync_rx, compiled).await;
                return;
            } else {
                // Its pass may have dropped the compile an earlier answer waited for.
                d.after_compiles();
            },
            // A reload waiting for a compile blocks PID 1, which this waits for.
            Some(done) = compiled.recv() => d.compiled(done),
        }
    }
}

/// Awaits `fut` (an exchange over D-Bus) while answering sync requests.
async fn answering<F: Future>(
    d: &mut Daemon,
    sync_rx: &mut Option<mpsc::Receiver<Request>>,
    compiled: &mut mpsc::UnboundedReceiver<Compiled>,
    fut: F,
) -> F::Output {
    tokio::pin!(fut);
    // Units waiting for the daemon (pending.rs) are let go meanwhile too.
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            out = &mut fut => return out,
            Some(req) = sync::next(sync_rx) => {
                d.answer_sync(req, sync_rx);
                d.after_compiles();
            }
            Some(done) = compiled.recv() => d.compiled(done),
            _ = tick.tick() => d.pending_tick(),
        }
    }
}

/// Re-reads everything with systemd's view (at start and after `systemctl daemon-reload`).
/// A sync request meanwhile is answered and, if it came from a reload, the rescan started
/// over: PID 1's answers so far may predate that reload, and must not undo what the sync
/// read from disk.
async fn rescan(
    d: &mut Daemon,
    conn: &zbus::Connection,
    manager: &ManagerProxy<'_>,
    sync_rx: &mut Option<mpsc::Receiver<Request>>,
    compiled: &mut mpsc::UnboundedReceiver<Compiled>,
) {
    loop {
        let began = std::time::Instant::now();
        let found = discover(conn, manager);
        tokio::pin!(found);
        loop {
            tokio::select! {
                found = &mut found => {
                    let asked = began.elapsed();
                    let n = found.len();
                    d.apply_rescan(found);
                    let took = began.elapsed();
                    info!(
                        "rescan: {n} armored units and instances in {} ms ({} ms finding \
                         them on disk and asking systemd, {} ms applying)",
                        took.as_millis(),
                        asked.as_millis(),
                        (took - asked).as_millis()
                    );
                    events::release_free_memory();
                    return;
                }
                // A start's request changes nothing systemd says: go on.
                Some(req) = sync::next(sync_rx) => if d.answer_sync(req, sync_rx) {
                    break;
                } else {
                    d.after_compiles();
                },
                // A reload waiting for a compile blocks PID 1, which this waits for.
                Some(done) = compiled.recv() => d.compiled(done),
            }
        }
    }
}

/// What the daemon reacts to from systemd.
enum SystemdSignal {
    /// A `daemon-reload` finished.
    Reloaded,
    /// A service was loaded.
    Unit(String),
    /// A service was unloaded (systemd garbage-collects a unit that is stopped and that
    /// nothing refers to any more).
    Removed(String),
}

/// Forwards systemd's signals into `tx`, from tasks of their own. `UnitNew` and `UnitRemoved`
/// keep the order systemd sent them in (see [`forward_in_order`]).
async fn forward_signals(
    manager: &ManagerProxy<'_>,
    tx: mpsc::UnboundedSender<SystemdSignal>,
    changes: Arc<watch::Changes>,
) -> Result<()> {
    let mut reloading = manager.receive_reloading().await?;
    let serial = |m: &zbus::Message| m.primary_header().serial_num().get();
    let unit_new = manager.receive_unit_new().await?.filter_map(move |sig| {
        let unit = sig.args().ok().map(|a| a.id.clone());
        std::future::ready(
            unit.filter(|u| u.ends_with(".service"))
                .map(|u| (serial(sig.message()), SystemdSignal::Unit(u))),
        )
    });
    let unit_removed = manager
        .receive_unit_removed()
        .await?
        .filter_map(move |sig| {
            let unit = sig.args().ok().map(|a| a.id.clone());
            std::future::ready(
                unit.filter(|u| u.ends_with(".service"))
                    .map(|u| (serial(sig.message()), SystemdSignal::Removed(u))),
            )
        });
    let t = tx.clone();
    tokio::spawn(async move {
        while let Some(sig) = reloading.next().await {
            // A reload (its start, and its end) may change any unit's files: generators
            // write some.
            changes.bump();
            if sig.args().is_ok_and(|a| !a.active) && t.send(SystemdSignal::Reloaded).is_err() {
                break;
            }
        }
    });
    tokio::spawn(forward_in_order(
        Box::pin(unit_new),
        Box::pin(unit_removed),
        tx,
    ));
    Ok(())
}

/// Forwards the items of `a` and `b`, two streams of signals from one sender tagged with their
/// message serial, in the order the sender sent them. zbus queues each message on every stream
/// it matches before it reads the next one: once an item has come from one stream, everything
/// the sender sent before it is already queued on the other, so taking all that is ready on
/// both and sorting it by serial keeps the sender's order. Out of order, a unit's `UnitRemoved`
/// handled after the `UnitNew` of its next load would free the slot of a loaded unit, and a
/// `UnitNew` handled after its own `UnitRemoved` would keep an unloaded unit listed.
async fn forward_in_order<T, A, B>(mut a: A, mut b: B, tx: mpsc::UnboundedSender<T>)
where
    A: futures_util::Stream<Item = (u32, T)> + Unpin,
    B: futures_util::Stream<Item = (u32, T)> + Unpin,
{
    use futures_util::FutureExt;
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            Some(x) = a.next() => batch.push(x),
            Some(x) = b.next() => batch.push(x),
            else => return,
        }
        loop {
            let before = batch.len();
            while let Some(Some(x)) = a.next().now_or_never() {
                batch.push(x);
            }
            while let Some(Some(x)) = b.next().now_or_never() {
                batch.push(x);
            }
            if batch.len() == before {
                break;
            }
        }
        batch.sort_by_key(|x| x.0);
        for (_, item) in batch.drain(..) {
            if tx.send(item).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn signals_keep_the_senders_order() {
        let a = futures_util::stream::iter([(1, "new x"), (4, "new y"), (5, "new x")]);
        let b = futures_util::stream::iter([(2, "removed x"), (3, "removed z")]);
        let (tx, mut rx) = mpsc::unbounded_channel();
        forward_in_order(a, b, tx).await;
        let mut got = Vec::new();
        while let Ok(s) = rx.try_recv() {
            got.push(s);
        }
        assert_eq!(got, ["new x", "removed x", "removed z", "new y", "new x"]);
    }

    #[tokio::test]
    async fn signals_that_come_later_follow() {
        let (atx, arx) = mpsc::unbounded_channel();
        let (btx, brx) = mpsc::unbounded_channel();
        let a =
            futures_util::stream::unfold(
                arx,
                |mut rx| async move { rx.recv().await.map(|x| (x, rx)) },
            );
        let b =
            futures_util::stream::unfold(
                brx,
                |mut rx| async move { rx.recv().await.map(|x| (x, rx)) },
            );
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(forward_in_order(Box::pin(a), Box::pin(b), tx));
        btx.send((2, 'b')).unwrap();
        atx.send((1, 'a')).unwrap();
        assert_eq!(rx.recv().await, Some('a'));
        assert_eq!(rx.recv().await, Some('b'));
        atx.send((3, 'c')).unwrap();
        assert_eq!(rx.recv().await, Some('c'));
        drop((atx, btx));
        task.await.unwrap();
        assert_eq!(rx.recv().await, None);
    }
}
