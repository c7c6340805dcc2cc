//! The daemon: follows systemd over D-Bus, keeps every armored unit's compiled policy and
//! cgroup binding in the kernel maps, and turns kernel events into journal records.
//!
//! Start-up order matters (docs/DESIGN.md, "Binding"): policies and expected cgroup paths are
//! written first, then the cgroup_mkdir program is attached (new cgroups bind themselves),
//! then cgroups that already exist are bound, then the LSM programs are attached, and only
//! then are the pins of an earlier daemon replaced. At no point is an armored unit unenforced.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::StreamExt;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tracing::{error, info, warn};
use zbus::Connection;

use crate::api::{self, UnitStatus};
use crate::compile::{self, Tables, RULE_NOT_ALLOWED};
use crate::journal::{self, Aggregator, RuleInfo};
use crate::kernel::abi::{self, Event, Verdict};
use crate::kernel::{self, Kernel, MAX_POLICIES};
use crate::policy::named::Lookup;
use crate::policy::resolve::{self, UNIT_DIRS};
use crate::policy::specifiers::UnitName;
use crate::policy::{Diagnostics, Policy};
use crate::systemd::{self, ManagerProxy, UnitInfo};

/// Where cgroup v2 is mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// How long replaced tables stay in the kernel, for hooks that were walking them.
const RETIRE_AFTER: Duration = Duration::from_secs(2);

/// An armored unit as the daemon keeps it.
struct Armored {
    policy: Policy,
    tables: Tables,
    id: u32,
    /// The cgroup path the unit's cgroup is (or will be) created at.
    expected: String,
    /// Error diagnostics of the last read of its files (logged once per change).
    errors: Vec<String>,
    denied: u64,
    audited: u64,
    /// Events of this unit the ring buffer had no room for.
    lost: u64,
}

/// A unit to consider, with where its configuration comes from.
struct Candidate {
    name: String,
    files: Vec<PathBuf>,
    slice: String,
    control_group: String,
}

pub struct Daemon {
    kernel: Kernel,
    units: BTreeMap<String, Armored>,
    /// Policy id -> unit and policy, for events (kept while retired tables are still in the
    /// kernel, so late events of a replaced policy still name their rule).
    owners: HashMap<u32, (String, Arc<Policy>)>,
    retiring: Vec<(u32, Tables, Instant)>,
    next_id: u32,
    aggregator: Aggregator,
    lost: HashMap<u64, u64>,
    status: Arc<Mutex<Vec<UnitStatus>>>,
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
pub async fn run() -> Result<()> {
    // main() prints the error; under systemd that line lands in the unit's journal.
    kernel::check_support().map_err(Unsupported)?;
    let adopted = kernel::pinned();
    let kernel = Kernel::load()?;
    let status = Arc::new(Mutex::new(Vec::new()));
    let mut d = Daemon {
        kernel,
        units: BTreeMap::new(),
        owners: HashMap::new(),
        retiring: Vec::new(),
        next_id: 1,
        aggregator: Aggregator::new(5, Duration::from_secs(10)),
        lost: HashMap::new(),
        status: status.clone(),
    };

    // Phase 1, from disk alone (the bus may not be up this early in boot): policies and
    // expected cgroup paths, then binding at creation, then existing cgroups, then the hooks.
    let candidates = discover_on_disk(&HashSet::new());
    for c in &candidates {
        d.reconcile(c);
    }
    d.kernel.attach_binding()?;
    for c in &candidates {
        d.bind_existing(c);
    }
    d.kernel.attach_hooks()?;
    d.kernel.pin()?;
    if adopted {
        info!(
            "took over enforcement from the programs an earlier daemon pinned under {}",
            kernel::PIN_DIR
        );
    }
    let (tx, mut events) = mpsc::channel::<Event>(8192);
    spawn_event_reader(d.kernel.events()?, tx)?;
    info!("enforcing: {} armored units", d.units.len());
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);

    // Phase 2: follow systemd. Signals are forwarded by tasks of their own into an unbounded
    // channel: zbus stops reading the socket when a signal queue is full, and the daemon makes
    // D-Bus calls of its own while it handles a signal, so an undrained queue would deadlock.
    let conn = zbus::connection::Builder::system()
        .method_timeout(Duration::from_secs(30))
        .build()
        .await
        .context("connecting to the system bus")?;
    let manager = ManagerProxy::new(&conn).await?;
    let (sig_tx, mut signals) = mpsc::unbounded_channel();
    forward_signals(&manager, sig_tx).await?;
    manager
        .subscribe()
        .await
        .context("subscribing to systemd's signals")?;
    d.rescan(&conn, &manager).await;
    api::serve(&conn, status)
        .await
        .context("offering the D-Bus API")?;
    d.publish_status();
    info!("following systemd: {} armored units", d.units.len());

    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            Some(sig) = signals.recv() => match sig {
                SystemdSignal::Reloaded => {
                    // A rescan covers whatever else is queued.
                    while signals.try_recv().is_ok() {}
                    info!("systemd reloaded; re-reading unit configuration");
                    d.rescan(&conn, &manager).await;
                }
                SystemdSignal::Unit(name) => {
                    // Only instances need it: a template's policy binds them at creation, and
                    // this refines it to the instance's own.
                    let armored_template = template_of(&name).is_some_and(|t| d.units.contains_key(&t));
                    if armored_template && !d.units.contains_key(&name) {
                        if let Ok(path) = manager.get_unit(&name).await {
                            d.refresh(&conn, &path).await;
                        }
                    }
                }
            },
            Some(ev) = events.recv() => d.on_event(ev),
            _ = tick.tick() => d.on_tick(),
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
        }
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    info!(
        "stopping; the pinned programs under {} keep enforcing",
        kernel::PIN_DIR
    );
    Ok(())
}

/// What the daemon reacts to from systemd.
enum SystemdSignal {
    /// A `daemon-reload` finished.
    Reloaded,
    /// A service was loaded.
    Unit(String),
}

/// Forwards systemd's signals into `tx`, each stream from a task of its own.
async fn forward_signals(
    manager: &ManagerProxy<'_>,
    tx: mpsc::UnboundedSender<SystemdSignal>,
) -> Result<()> {
    let mut reloading = manager.receive_reloading().await?;
    let mut unit_new = manager.receive_unit_new().await?;
    let t = tx.clone();
    tokio::spawn(async move {
        while let Some(sig) = reloading.next().await {
            if sig.args().is_ok_and(|a| !a.active) && t.send(SystemdSignal::Reloaded).is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        while let Some(sig) = unit_new.next().await {
            if let Ok(a) = sig.args() {
                if a.id.ends_with(".service") && tx.send(SystemdSignal::Unit(a.id.clone())).is_err()
                {
                    break;
                }
            }
        }
    });
    Ok(())
}

/// Reads ring buffer records on a thread of its own and forwards them. A full channel counts
/// as loss, like a full ring buffer.
fn spawn_event_reader(map: libbpf_rs::MapHandle, tx: mpsc::Sender<Event>) -> Result<()> {
    std::thread::Builder::new()
        .name("events".into())
        .spawn(move || {
            let dropped = std::rc::Rc::new(std::cell::Cell::new(0u64));
            let counter = dropped.clone();
            let sender = tx.clone();
            let mut builder = libbpf_rs::RingBufferBuilder::new();
            let built = builder
                .add(&map, move |data: &[u8]| {
                    if let Some(ev) = Event::parse(data) {
                        if sender.try_send(ev).is_err() {
                            counter.set(counter.get() + 1);
                        }
                    }
                    0
                })
                .map(|_| ())
                .and_then(|()| builder.build());
            let rb = match built {
                Ok(rb) => rb,
                Err(e) => {
                    error!("cannot read the event ring buffer: {e}");
                    return;
                }
            };
            loop {
                if let Err(e) = rb.poll(Duration::from_millis(500)) {
                    error!("reading the event ring buffer failed: {e}");
                    return;
                }
                if dropped.get() > 0 {
                    warn!(
                        "{} events were dropped because the daemon fell behind",
                        dropped.replace(0)
                    );
                }
                if tx.is_closed() {
                    return;
                }
            }
        })?;
    Ok(())
}

/// Every service that is armored, as systemd sees it where it is loaded: unit files and
/// drop-ins that mention `[X-Armor]` are found on disk, then systemd is asked for the exact
/// files, slice and cgroup of those that are loaded; loaded instances of armored templates are
/// added. Units without `[X-Armor]` cost one file read per rescan and no D-Bus call.
async fn discover(conn: &Connection, manager: &ManagerProxy<'_>) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = discover_on_disk(&HashSet::new())
        .into_iter()
        .filter(|c| resolve::mentions_armor(&c.files))
        .collect();
    for c in &mut out {
        if UnitName::new(c.name.as_str()).is_template() {
            continue;
        }
        if let Ok(path) = manager.get_unit(&c.name).await {
            match systemd::unit_info(conn, path).await {
                Ok(info) => *c = candidate_from(info),
                Err(e) => warn!("cannot read unit {}: {e:#}", c.name),
            }
        }
    }
    let templates: HashSet<String> = out
        .iter()
        .filter(|c| UnitName::new(c.name.as_str()).is_template())
        .map(|c| c.name.clone())
        .collect();
    let known: HashSet<String> = out.iter().map(|c| c.name.clone()).collect();
    for row in manager.list_units().await.unwrap_or_default() {
        let Some(template) = template_of(&row.0) else {
            continue;
        };
        if templates.contains(&template) && !known.contains(&row.0) {
            match systemd::unit_info(conn, row.6).await {
                Ok(info) => out.push(candidate_from(info)),
                Err(e) => warn!("cannot read unit {}: {e:#}", row.0),
            }
        }
    }
    out.sort_by_key(|c| bind_order(&c.name));
    out
}

/// `foo@.service` for an instance `foo@bar.service`.
fn template_of(unit: &str) -> Option<String> {
    let (prefix, rest) = unit.split_once('@')?;
    let (instance, suffix) = rest.rsplit_once('.')?;
    (!instance.is_empty()).then(|| format!("{prefix}@.{suffix}"))
}

/// Services found in systemd's unit directories (unit files, templates, and instances or
/// units that only have drop-ins), except those in `skip`, resolved the way systemd would.
fn discover_on_disk(skip: &HashSet<String>) -> Vec<Candidate> {
    let mut names = Vec::new();
    for dir in UNIT_DIRS {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let unit = name.strip_suffix(".d").unwrap_or(&name);
            // Type-level and prefix drop-in directories (service.d, foo-.service.d) are not
            // units; the root slice has no cgroup of its own to bind.
            let kind_ok =
                unit.ends_with(".service") || (unit.ends_with(".slice") && unit != "-.slice");
            if kind_ok
                && !unit.ends_with("-.service")
                && !unit.ends_with("-.slice")
                && !unit.starts_with('.')
            {
                names.push(unit.to_string());
            }
        }
    }
    names.sort();
    names.dedup();
    let mut out: Vec<Candidate> = names
        .into_iter()
        .filter(|n| !skip.contains(n))
        .map(|name| {
            let (fragment, dropins) = resolve::unit_files(Path::new("/"), &name);
            let files: Vec<PathBuf> = fragment.into_iter().chain(dropins).collect();
            let slice =
                systemd::slice_from_files(&files).unwrap_or_else(|| systemd::default_slice(&name));
            Candidate {
                slice,
                control_group: String::new(),
                name,
                files,
            }
        })
        .collect();
    out.sort_by_key(|c| bind_order(&c.name));
    out
}

/// Slices first, then templates, then units: each binds its whole cgroup tree, and what is
/// bound later (a unit inside a slice, an instance under its template's slice) takes over its
/// own subtree.
fn bind_order(name: &str) -> u8 {
    if name.ends_with(".slice") {
        0
    } else if UnitName::new(name).is_template() {
        1
    } else {
        2
    }
}

/// The files of `slice` and of every slice above it (root slice excepted), outermost first:
/// a policy on a slice applies to every unit in it.
fn slice_files(slice: &str) -> Vec<PathBuf> {
    let Some(stem) = slice.strip_suffix(".slice") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut prefix = String::new();
    for part in stem.split('-').filter(|p| !p.is_empty()) {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        let (fragment, dropins) = resolve::unit_files(Path::new("/"), &format!("{prefix}.slice"));
        let files: Vec<PathBuf> = fragment.into_iter().chain(dropins).collect();
        if resolve::mentions_armor(&files) {
            out.extend(files);
        }
    }
    out
}

/// `a-b.slice` is in `a.slice`; `a.slice` in the root slice.
fn parent_slice(slice: &str) -> String {
    match slice
        .strip_suffix(".slice")
        .and_then(|s| s.rsplit_once('-'))
    {
        Some((parent, _)) if !parent.is_empty() => format!("{parent}.slice"),
        _ => "-.slice".to_string(),
    }
}

/// The unit whose cgroup (below `subtree`) has id `cgid`, for events decided by a slice's or a
/// template's policy: the deepest unit-named component of that cgroup's path.
fn unit_of_cgroup(subtree: &str, cgid: u64) -> Option<String> {
    let (dir, _) = cgroup_dirs(subtree)
        .into_iter()
        .find(|(_, id)| *id == cgid)?;
    let path = dir.to_string_lossy().into_owned();
    path.rsplit('/')
        .find(|c| {
            [".service", ".scope", ".socket", ".mount", ".swap"]
                .iter()
                .any(|s| c.ends_with(s))
        })
        .map(str::to_string)
}

fn candidate_from(info: UnitInfo) -> Candidate {
    let slice = if info.slice.is_empty() {
        systemd::default_slice(&info.name)
    } else {
        info.slice
    };
    Candidate {
        name: info.name,
        files: info.files,
        slice,
        control_group: info.control_group,
    }
}

/// The cgroup a candidate's processes live in (or will): the unit's own for a unit, the
/// per-template slice for a bare template.
fn expected_path(c: &Candidate) -> String {
    if c.name.ends_with(".slice") {
        return systemd::slice_path(&c.name);
    }
    if UnitName::new(c.name.as_str()).is_template() {
        let instance_like = c.name.replacen('@', "@x", 1);
        return systemd::slice_path(&systemd::default_slice(&instance_like));
    }
    if !c.control_group.is_empty() {
        return c.control_group.clone();
    }
    systemd::expected_cgroup(&c.slice, &c.name)
}

/// The cgroup(s) a unit's processes are put in, as a path pattern: the unit's own, or any
/// unit's below a slice or a template's slice.
fn cgroup_pattern(name: &str, expected: &str) -> String {
    if bind_order(name) < 2 {
        format!("{expected}/**")
    } else {
        expected.to_string()
    }
}

/// Every cgroup directory at and below the cgroup path `path`, with its id (the inode number).
fn cgroup_dirs(path: &str) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::from(format!("{CGROUP_ROOT}{path}"))];
    while let Some(dir) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&dir) else {
            continue;
        };
        if let Ok(entries) = std::fs::read_dir(&dir) {
            stack.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
        out.push((dir, meta.ino()));
    }
    out
}

/// The ids of a cgroup and everything below it.
fn cgroup_tree(path: &str) -> Vec<u64> {
    cgroup_dirs(path).into_iter().map(|(_, id)| id).collect()
}

impl Daemon {
    fn alloc_id(&mut self) -> Option<u32> {
        let in_use: HashSet<u32> = self
            .units
            .values()
            .map(|u| u.id)
            .chain(self.retiring.iter().map(|r| r.0))
            .collect();
        for _ in 1..MAX_POLICIES {
            let id = self.next_id;
            self.next_id = if self.next_id + 1 >= MAX_POLICIES {
                1
            } else {
                self.next_id + 1
            };
            if !in_use.contains(&id) {
                return Some(id);
            }
        }
        None
    }

    /// Brings one unit's kernel state in line with its files.
    fn reconcile(&mut self, c: &Candidate) {
        let unit = UnitName::new(c.name.as_str());
        let mut diags = Diagnostics::default();
        // A slice's parents (for a slice) or the unit's slices come first.
        let parent = if c.name.ends_with(".slice") {
            parent_slice(&c.name)
        } else {
            c.slice.clone()
        };
        let files: Vec<PathBuf> = slice_files(&parent)
            .into_iter()
            .chain(c.files.iter().cloned())
            .collect();
        let policy = resolve::merge(&Lookup::system(), &files, Some(&unit), &mut diags);
        let errors: Vec<String> = diags.errors().map(|d| d.to_string()).collect();
        let expected = expected_path(c);
        let (known, unchanged, errors_changed, counters) = match self.units.get(&c.name) {
            Some(p) => (
                true,
                p.policy == policy && p.expected == expected,
                p.errors != errors,
                (p.denied, p.audited, p.lost),
            ),
            None => (false, false, !errors.is_empty(), (0, 0, 0)),
        };
        if errors_changed {
            for e in &errors {
                error!(
                    object_systemd_unit = c.name.as_str(),
                    unitarmor_unit = c.name.as_str(),
                    "{e}"
                );
            }
        }
        if !errors.is_empty() {
            if let Some(p) = self.units.get_mut(&c.name) {
                if errors_changed {
                    error!(
                        object_systemd_unit = c.name.as_str(),
                        "{}: policy has errors; keeping the last good policy ({} rules)",
                        c.name,
                        p.policy.rules.len()
                    );
                }
                p.errors = errors;
                return;
            }
        }
        if !policy.is_armored() {
            if known {
                self.disarm_unit(&c.name);
                info!(
                    object_systemd_unit = c.name.as_str(),
                    "{}: no longer armored", c.name
                );
            }
            return;
        }
        if unchanged {
            if let Some(p) = self.units.get_mut(&c.name) {
                p.errors = errors;
            }
            return;
        }
        let tables = match compile::compile_for(&policy, Some(&cgroup_pattern(&c.name, &expected)))
        {
            Ok(t) => t,
            Err(e) => {
                error!(
                    object_systemd_unit = c.name.as_str(),
                    "{}: {e}; policy not applied", c.name
                );
                return;
            }
        };
        for (i, why) in &tables.unenforced {
            let r = &policy.rules[*i];
            warn!(
                object_systemd_unit = c.name.as_str(),
                "{}: {}: rule \"{r}\": {why}", c.name, r.source
            );
        }
        let Some(id) = self.alloc_id() else {
            error!(
                object_systemd_unit = c.name.as_str(),
                "{}: no free policy slot (limit {MAX_POLICIES})", c.name
            );
            return;
        };
        if let Err(e) = self.kernel.install_policy(id, &tables) {
            error!(
                object_systemd_unit = c.name.as_str(),
                "{}: {e:#}; policy not applied", c.name
            );
            self.kernel.remove_policy(id, &tables);
            return;
        }
        if let Err(e) = self.kernel.set_expected(&expected, id) {
            error!(object_systemd_unit = c.name.as_str(), "{}: {e:#}", c.name);
        }
        self.owners
            .insert(id, (c.name.clone(), Arc::new(policy.clone())));
        let (denied, audited, lost) = counters;
        let old = self.units.insert(
            c.name.clone(),
            Armored {
                policy,
                tables,
                id,
                expected: expected.clone(),
                errors,
                denied,
                audited,
                lost,
            },
        );
        // Switch what is bound to the old policy over to the new one: one map update per
        // cgroup, so each running process sees either the old or the new policy, never none.
        if let Some(old) = old {
            for (cgid, pid) in self.kernel.bindings() {
                if pid == old.id {
                    let _ = self.kernel.bind(cgid, id);
                }
            }
            if old.expected != expected {
                self.kernel.remove_expected(&old.expected);
            }
            self.retiring.push((old.id, old.tables, Instant::now()));
        }
        let a = &self.units[&c.name];
        let what = if known { "policy updated" } else { "armored" };
        info!(
            object_systemd_unit = c.name.as_str(),
            "{}: {what} ({} rules, {})",
            c.name,
            a.policy.rules.len(),
            a.policy.mode.as_str()
        );
        self.publish_status();
    }

    /// Binds a unit's cgroup and everything below it, if it exists already.
    fn bind_existing(&mut self, c: &Candidate) {
        let Some(a) = self.units.get(&c.name) else {
            return;
        };
        for cgid in cgroup_tree(&a.expected) {
            if let Err(e) = self.kernel.bind(cgid, a.id) {
                error!(object_systemd_unit = c.name.as_str(), "{}: {e:#}", c.name);
            }
        }
    }

    fn disarm_unit(&mut self, name: &str) {
        let Some(a) = self.units.remove(name) else {
            return;
        };
        self.kernel.remove_expected(&a.expected);
        for (cgid, pid) in self.kernel.bindings() {
            if pid == a.id {
                self.kernel.unbind(cgid);
            }
        }
        self.retiring.push((a.id, a.tables, Instant::now()));
        self.publish_status();
    }

    /// Re-reads everything (after `systemctl daemon-reload`).
    async fn rescan(&mut self, conn: &Connection, manager: &ManagerProxy<'_>) {
        let candidates = discover(conn, manager).await;
        let names: HashSet<&str> = candidates.iter().map(|c| c.name.as_str()).collect();
        let gone: Vec<String> = self
            .units
            .keys()
            .filter(|n| !names.contains(n.as_str()))
            .cloned()
            .collect();
        for n in gone {
            self.disarm_unit(&n);
            info!(
                object_systemd_unit = n.as_str(),
                "{n}: no longer armored (unit is gone)"
            );
        }
        for c in &candidates {
            self.reconcile(c);
            self.bind_existing(c);
        }
    }

    /// Re-reads one loaded unit (new, or its job finished).
    async fn refresh(&mut self, conn: &Connection, path: &zbus::OwnedObjectPath) {
        match systemd::unit_info(conn, path.clone()).await {
            Ok(info) => {
                let c = candidate_from(info);
                self.reconcile(&c);
                self.bind_existing(&c);
            }
            Err(e) => warn!("cannot read unit {}: {e:#}", path.as_str()),
        }
    }

    /// The unit, text and source of rule `rule` of policy `policy`.
    fn rule_info(&self, policy: u32, rule: u32, class: u8) -> (String, String, String) {
        let Some((unit, p)) = self.owners.get(&policy) else {
            return ("-".into(), "(unknown policy)".into(), "-".into());
        };
        if rule == RULE_NOT_ALLOWED {
            let class = abi::class_name(class);
            let sources: Vec<String> = p
                .rules
                .iter()
                .filter(|r| r.action == crate::policy::Action::Allow && r.class.as_str() == class)
                .map(|r| r.source.to_string())
                .collect();
            return (
                unit.clone(),
                format!("{class} is an allow-list and no allow rule matches"),
                sources.join(", "),
            );
        }
        match p.rules.get(rule as usize) {
            Some(r) => (unit.clone(), r.to_string(), r.source.to_string()),
            None => (unit.clone(), "(unknown rule)".into(), "-".into()),
        }
    }

    fn on_event(&mut self, ev: Event) {
        let Some(unit) = self.owners.get(&ev.policy).map(|o| o.0.clone()) else {
            return;
        };
        if let Some(a) = self.units.get_mut(&unit) {
            match ev.verdict {
                Verdict::Denied => a.denied += 1,
                _ => a.audited += 1,
            }
        }
        if !self
            .aggregator
            .admit((ev.policy, ev.rule, ev.class, ev.verdict), Instant::now())
        {
            return;
        }
        let exe = if ev.exe.is_empty() {
            ev.comm.clone()
        } else {
            ev.exe.clone()
        };

        let (_, text, source) = self.rule_info(ev.policy, ev.rule, ev.class);
        // A slice's or template's policy covers units it does not name: say which one it was.
        let unit = match self.units.get(&unit) {
            Some(a) if unit.ends_with(".slice") || UnitName::new(unit.as_str()).is_template() => {
                unit_of_cgroup(&a.expected, ev.cgroup_id).unwrap_or(unit)
            }
            _ => unit,
        };
        let mode = self
            .owners
            .get(&ev.policy)
            .map_or("enforce", |o| o.1.mode.as_str());
        journal::record(
            &unit,
            mode,
            &ev,
            &exe,
            &RuleInfo {
                text: &text,
                source: &source,
            },
        );
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        for ((policy, rule, class, verdict), count) in self.aggregator.expire(now) {
            let (unit, text, source) = self.rule_info(policy, rule, class);
            journal::suppressed(
                &unit,
                &RuleInfo {
                    text: &text,
                    source: &source,
                },
                verdict,
                count,
                self.aggregator.window(),
            );
        }
        // Retired tables: gone once no hook can still be walking them.
        let (done, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.retiring)
            .into_iter()
            .partition(|r| now.duration_since(r.2) >= RETIRE_AFTER);
        self.retiring = keep;
        for (id, tables, _) in done {
            self.kernel.remove_policy(id, &tables);
            if self.units.values().all(|u| u.id != id) {
                self.owners.remove(&id);
            }
        }
        // Ring buffer overruns, reported once per increase and counted against the unit.
        let bindings = self.kernel.bindings();
        for (cgid, (lost, policy)) in self.kernel.lost_events() {
            let before = self.lost.get(&cgid).copied().unwrap_or(0);
            if lost > before {
                let delta = lost - before;
                let unit = self
                    .owners
                    .get(&policy)
                    .map_or_else(|| format!("cgroup {cgid}"), |o| o.0.clone());
                if let Some(a) = self.units.get_mut(&unit) {
                    a.lost += delta;
                }
                warn!(
                    object_systemd_unit = unit.as_str(),
                    unitarmor_unit = unit.as_str(),
                    unitarmor_lost = delta,
                    "{unit}: {delta} events lost (ring buffer full); they were enforced but not logged"
                );
            }
            if bindings.contains_key(&cgid) {
                self.lost.insert(cgid, lost);
            } else {
                self.kernel.forget_counters(cgid);
                self.lost.remove(&cgid);
            }
        }
        self.publish_status();
    }

    fn publish_status(&self) {
        let bindings = self.kernel.bindings();
        let list = self
            .units
            .iter()
            .map(|(name, a)| {
                let cgroups: Vec<u64> = bindings
                    .iter()
                    .filter(|(_, p)| **p == a.id)
                    .map(|(c, _)| *c)
                    .collect();
                UnitStatus {
                    unit: name.clone(),
                    mode: a.policy.mode.as_str().to_string(),
                    policy_id: a.id,
                    cgroup_path: a.expected.clone(),
                    cgroup_ids: cgroups,
                    rules: a.policy.rules.len() as u32,
                    unenforced: a.tables.unenforced.len() as u32,
                    denied: a.denied,
                    audited: a.audited,
                    lost: a.lost,
                    errors: a.errors.join("\n"),
                }
            })
            .collect();
        if let Ok(mut s) = self.status.lock() {
            *s = list;
        }
    }
}
