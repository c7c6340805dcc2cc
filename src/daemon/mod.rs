//! The daemon: follows systemd over D-Bus, keeps every armored unit's compiled policy and
//! cgroup binding in the kernel maps, and turns kernel events into journal records.
//!
//! Start-up order matters (docs/DESIGN.md, "Binding"): policies and expected cgroup paths are
//! written first, then the cgroup_mkdir program is attached (new cgroups bind themselves),
//! then cgroups that already exist are bound, then the LSM programs are attached, and only
//! then are the pins of an earlier daemon replaced. At no point is an armored unit unenforced.
//!
//! This file holds the daemon's state, its start-up order and main loop; `follow.rs` holds
//! its exchanges with PID 1 (rescans, systemd's signals), `discover.rs` finds the armored
//! units, `reconcile.rs` brings the kernel in line with them (with the merges `merged.rs`
//! keeps from pass to pass; `fallback.rs` for a policy that cannot be put in force; `cover.rs`
//! for instances that run under their template's policy; `first.rs` holds a unit's first
//! policy read while its files were being written), `events.rs` turns kernel events into
//! journal records,
//! `cgroups.rs` walks the cgroup tree, `sync.rs` makes `systemctl daemon-reload` wait until
//! the daemon has read the new files, `watch.rs` notices files changed without a reload,
//! `status.rs` publishes what `unitarmor status` shows, and `metrics.rs` reports how often
//! each rule decided.

mod apart;
mod bind;
mod cgroups;
mod changes;
mod compiling;
mod cover;
mod discover;
mod events;
mod exempt;
mod fallback;
mod first;
mod follow;
mod good;
mod learn;
mod merged;
mod metrics;
mod pending;
mod reconcile;
mod status;
pub mod sync;
mod sync_client;
mod unload;
mod users;
mod watch;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::api::{self, Published};
use crate::journal::Aggregator;
use crate::kernel::abi::Event;
use crate::kernel::{self, Kernel};
use crate::policy::Policy;
use crate::systemd::ManagerProxy;

use discover::{discover_on_disk, template_of};
use events::spawn_event_reader;
use follow::{answering, forward_signals, refresh_instance, rescan, SystemdSignal};

/// An armored unit as the daemon keeps it.
struct Armored {
    /// Shared with the events' owners table and the kept merges (merged.rs): one copy of
    /// each policy in memory.
    policy: Arc<Policy>,
    /// What it keeps of its tables once the kernel has them.
    loaded: kernel::Loaded,
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
    retiring: Vec<(u32, kernel::Loaded, Instant)>,
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
    /// When the status was last published: asked again sooner, it is not published afresh
    /// (any process may ask, as often as it likes: api.rs, `Asks`).
    published_at: Instant,
    /// The node_exporter textfile could not be written last time (metrics.rs; logged once).
    textfile_failing: bool,
    /// Whether the files may have changed since a pass began (watch.rs).
    changes: Arc<watch::Changes>,
    /// The last disk-only pass (sync.rs: a unit's start may need no new one).
    last_pass: Option<sync::LastPass>,
    /// Files written without a reload wait for a pass until then (`Daemon::files_written`).
    watch_due: Option<std::time::Instant>,
    /// Since when a reload runs (PID 1's `Reloading` signals), if one does.
    reloading_since: Option<std::time::Instant>,
    /// When a reload whose generator's request the daemon answered must have ended, if no
    /// rescan has run since ([`Daemon::reload_end_unheard`]).
    reload_end_due: Option<std::time::Instant>,
    /// Policies whose tables were taken out of the kernel since the daemon started.
    tables_removed: u64,
    /// What units in learn mode were seen doing (learn.rs).
    learning: learn::Learning,
    /// Cgroups of units started while their files were written (pending.rs).
    pending: pending::Pending,
    /// Big policies being compiled on a thread of their own (compiling.rs).
    compiling: compiling::Compiling,
    /// Merged policies kept from pass to pass (merged.rs).
    merged: merged::Merged,
    /// Units whose first policy waits for their files to be whole (first.rs).
    held: first::Held,
}

/// How old a published status may be when `unitarmor status` asks for it: younger, it is
/// served as it is. Bounds the kernel walks a flood of calls can cause to one a second, what
/// publishing every second cost before (changes the daemon makes are published at once).
const REPUBLISH_AFTER: Duration = Duration::from_secs(1);

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
        published_at: Instant::now(),
        textfile_failing: false,
        changes: watch::Changes::new(),
        last_pass: None,
        watch_due: None,
        reloading_since: None,
        reload_end_due: None,
        tables_removed: 0,
        learning: learn::Learning::default(),
        pending: pending::Pending::default(),
        compiling: compiling::Compiling::new(compiled_tx),
        merged: merged::Merged::default(),
        held: first::Held::default(),
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
    let phase1 = std::time::Instant::now();
    let mut disk = discover::DiskPass::whole();
    let candidates = discover_on_disk(&mut disk, false);
    for c in &candidates {
        d.reconcile_with(c, true, &mut disk);
    }
    // What the pass read (every unit file of the system) is not kept for the daemon's life.
    drop(disk);
    let read = phase1.elapsed();
    d.kernel.attach_binding()?;
    let binding = std::time::Instant::now();
    for c in &candidates {
        d.bind_existing(c);
    }
    d.kernel.recount_trees();
    let bound = binding.elapsed();
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
    // Files written without a reload: read within half a second (see watch.rs). Started
    // before the start-up pass would be better still, but the pass that follows the bus
    // connection reads everything again.
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
    info!(
        "enforcing: {} armored units, {} ms after the start (loading the programs {} ms, \
         reading and reconciling the units {} ms, binding their running cgroups {} ms)",
        d.units.len(),
        started.elapsed().as_millis(),
        loaded.as_millis(),
        read.as_millis(),
        bound.as_millis()
    );
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
    // `unitarmor status` asks for a fresh status: published then, not every second.
    let (asks_tx, mut asks) = mpsc::channel(16);
    answering(
        &mut d,
        &mut sync_rx,
        &mut compiled,
        api::serve(&conn, status, asks_tx),
    )
    .await
    .context("offering the D-Bus API")?;
    d.publish_status(false);
    info!("following systemd: {} armored units", d.units.len());

    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    d.compiling.enabled = true;
    loop {
        tokio::select! {
            Some(sig) = signals.recv() => match sig {
                // Only when a generator's request can come; a repeat extends nothing.
                SystemdSignal::Reloading => if sync_rx.is_some() {
                    d.reloading_since.get_or_insert_with(std::time::Instant::now);
                },
                SystemdSignal::Reloaded => {
                    d.reloading_since = None;
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
            // A reload's end that never came: what PID 1 loaded is read all the same.
            _ = sync::sleep_until(d.reload_end_due), if d.reload_end_due.is_some() => {
                d.reload_end_unheard();
                rescan(&mut d, &conn, &manager, &mut sync_rx, &mut compiled).await;
            }
            Some(()) = watch::next(&mut changed) => d.files_written(&mut changed),
            _ = sync::sleep_until(d.watch_deadline()), if d.watch_due.is_some() => {
                d.watch_wakeup(&mut changed);
            }
            Some(ask) = asks.recv() => {
                // Asked meanwhile: answered by the same publication.
                let mut waiting = vec![ask];
                while let Ok(ask) = asks.try_recv() {
                    waiting.push(ask);
                }
                let rules = waiting.iter().any(|a| a.rules);
                if d.published_at.elapsed() >= REPUBLISH_AFTER || (rules && !d.rows_published()) {
                    d.publish_status(rules);
                }
                for ask in waiting {
                    let _ = ask.done.send(());
                }
            }
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
