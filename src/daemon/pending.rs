//! Units started while their files are written (bpf/pending.h): tells the programs which
//! directories are unit and drop-in directories and that the daemon runs, clears the pending
//! marks a pass has read, and lets the cgroups that waited go, bound as they would be bound
//! now that the files are read.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::cgroups::{cgroup_bindings, cgroup_dirs, path_of_cgroup_id, unit_of_path, CGROUP_ROOT};
use super::watch::PASS_DIRS;
use super::Daemon;
use crate::kernel::pending::{self, Clear, UnitDir, BIND_PENDING};
use crate::kernel::{Binding, BIND_INSTANCES, BIND_SLICE, REFUSE_ID};

/// How long the daemon is taken to run after each heartbeat (written every second).
const ALIVE_NS: u64 = 5_000_000_000;
/// How long a new instance of a template whose instances have policies of their own waits
/// for the daemon to hear of it from systemd before it goes on under the template's policy.
const INSTANCE_WAIT: Duration = Duration::from_secs(10);
/// Ticks after a cgroup was let go at which its tasks still stopped are continued again: a
/// task that read its binding as pending just before it changed sends itself SIGSTOP after
/// the daemon's SIGCONT.
const CONTINUE_AGAIN: u8 = 3;

/// What the daemon keeps about waiting cgroups.
#[derive(Default)]
pub(super) struct Pending {
    /// The unit and drop-in directories written into the kernel last, with the device
    /// number the programs see for each.
    dirs: HashMap<(u64, u64), (UnitDir, u32)>,
    /// The generation of the watcher's list `dirs` was made from (changes.rs), once every
    /// directory of it is written: until the list changes, nothing is written again.
    dirs_from: Option<u64>,
    /// The programs' count of cgroups bound pending, as last seen.
    made: u64,
    /// The programs' count of marks made when the daemon last looked for marks, and how
    /// many it left then: with no new ones and none left, there is nothing to look for (the
    /// look reads every entry of `expected`).
    marks_seen: u64,
    marks_left: usize,
    /// Cgroups (unit roots) bound pending whose unit's files were not read yet.
    waiting: HashSet<u64>,
    /// New instances of templates whose instances have policies of their own, waiting for
    /// the daemon to hear of them, and waiting cgroups whose path could not be found: since
    /// when.
    instances: HashMap<u64, Instant>,
    unresolved: HashMap<u64, Instant>,
    /// The daemon is stopping: nothing waits any more.
    stopping: bool,
    /// Cgroups let go recently (path), and how many more ticks to continue their stopped
    /// tasks.
    let_go: Vec<(String, u8)>,
    /// Tells the heartbeat thread to stop, and the thread.
    stop: Arc<AtomicBool>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
}

impl Daemon {
    /// Gets the programs ready to hold units back: the policy a cgroup bound pending has
    /// (refusing everything, for the tasks that cannot wait) and the unit directories; then
    /// starts telling them that the daemon runs (a thread writes it every second, so that a
    /// long exchange with PID 1 does not stop the marks).
    pub(super) fn start_pending(&mut self) {
        let refusing = crate::compile::refuse_all(&crate::policy::Policy::default());
        if let Err(e) = self.kernel.install_policy(REFUSE_ID, &refusing) {
            warn!("{e:#}: units started while their files are written do not wait");
            return;
        }
        self.publish_unit_dirs();
        // What an earlier daemon left waiting goes on, bound as this one binds it.
        self.let_waiting_go();
        let state = match self.kernel.pending_state() {
            Ok(s) => s,
            Err(e) => {
                warn!("{e:#}: units started while their files are written do not wait");
                return;
            }
        };
        let stop = self.pending.stop.clone();
        let spawned = std::thread::Builder::new()
            .name("heartbeat".into())
            .spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    pending::write_alive(&state, ALIVE_NS);
                    std::thread::park_timeout(Duration::from_secs(1));
                }
                pending::write_alive(&state, 0);
            });
        match spawned {
            Ok(handle) => self.pending.heartbeat = Some(handle),
            Err(e) => warn!("{e}: units started while their files are written do not wait"),
        }
    }

    /// Writes the unit and drop-in directories the watcher listed last into the kernel. Done
    /// before each pass, so that a file written into a directory found by that listing is
    /// marked; a directory made since is covered by its parent (bpf/pending.h). And every
    /// second, when the list changed since it was last written whole: with a thousand units,
    /// rebuilding it each second cost the daemon at rest CPU time and a thousand short-lived
    /// allocations between its long-lived ones.
    pub(super) fn publish_unit_dirs(&mut self) {
        let Some((generation, listed)) = self.changes.listed_if_new(self.pending.dirs_from) else {
            return;
        };
        let whole = self
            .kernel
            .set_unit_dirs(&mut self.pending.dirs, unit_dirs(listed));
        self.pending.dirs_from = whole.then_some(generation);
    }

    /// After a pass over the files that began at `began` (monotonic ns): clears the marks it
    /// read and lets go the cgroups that waited for them.
    pub(super) fn settle_pending(&mut self, began: u64) {
        self.clear_marks(Clear::ReadBy(began));
        self.let_go_if_needed();
    }

    /// Every second: cgroups bound pending since the last look, or still waiting, are looked
    /// at; tasks of cgroups let go recently that are stopped are continued again.
    pub(super) fn pending_tick(&mut self) {
        self.publish_unit_dirs();
        // A mark whose unit's policy is still being compiled holds its cgroups until it is
        // in the kernel, however long that takes (compiling.rs); the mark under the name of a
        // unit whose first policy waits for whole files is kept, and never cleared while it
        // waits (first.rs).
        self.keep_held_marks();
        if self.compiling.idle() {
            self.clear_marks(Clear::Stale(pending::monotonic_ns()));
        }
        self.let_go_if_needed();
        for (path, left) in &mut self.pending.let_go {
            continue_tasks(path, false);
            *left -= 1;
        }
        self.pending.let_go.retain(|(_, left)| *left > 0);
    }

    /// Whether cgroups may wait for a pass: bound pending since the last look, or still
    /// waiting then.
    pub(super) fn cgroups_may_wait(&self) -> bool {
        self.kernel.pending_made() != self.pending.made || !self.pending.waiting.is_empty()
    }

    /// Lets waiting cgroups go if there may be any: cgroups were bound pending since the last
    /// look, some still waited then, or one was bound or unbound since (each look reads all of
    /// `bound`).
    fn let_go_if_needed(&mut self) {
        let made = self.kernel.pending_made();
        if made != self.pending.made
            || !self.pending.waiting.is_empty()
            || self.kernel.has_released()
        {
            self.pending.made = made;
            self.let_waiting_go();
        }
    }

    /// Makes the next look for marks look, whatever was made since (a mark the daemon keeps
    /// for a held unit: first.rs).
    pub(super) fn look_for_marks(&mut self) {
        self.pending.marks_left = self.pending.marks_left.max(1);
    }

    /// Clears the marks `which` says, unless none was made since the last look left none.
    fn clear_marks(&mut self, which: Clear) {
        let made = self.kernel.marks_made();
        if made == self.pending.marks_seen && self.pending.marks_left == 0 {
            return;
        }
        self.pending.marks_seen = made;
        // A held unit's own mark keeps it waiting until its policy is installed (first.rs).
        let keep = self.held.names();
        self.pending.marks_left = self.kernel.clear_marks(which, &keep);
    }

    /// The daemon stops: no more marks, and nothing waits for a daemon that is gone.
    pub(super) fn stop_pending(&mut self) {
        self.pending.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.pending.heartbeat.take() {
            handle.thread().unpark();
            // It writes that the daemon is gone as it ends: no mark is made after this.
            let _ = handle.join();
        }
        self.kernel.clear_marks(Clear::All, &[]);
        // Nothing waits for a daemon that is going: instances go on under what binds them.
        self.pending.stopping = true;
        self.let_waiting_go();
    }

    /// Binds each cgroup bound pending as the cgroup_mkdir program would bind it now, unless
    /// its unit's files are still pending, and continues its tasks.
    fn let_waiting_go(&mut self) {
        let bindings = self.kernel.bindings();
        // The trees with a cgroup waiting: a sub-cgroup made while its root was being let go
        // waits under a root that no longer does.
        let roots: std::collections::BTreeSet<u64> = bindings
            .values()
            .filter(|b| b.flags & BIND_PENDING != 0)
            .map(|b| b.root)
            .collect();
        self.pending.waiting.clear();
        for root in roots {
            let Some(full) = path_of_cgroup_id(root) else {
                if bindings.contains_key(&root) {
                    // Still bound, so still there (cgroup_rmdir forgets a removed cgroup):
                    // its path could not be found this time (no descriptor left, no memory).
                    // It waits for the next look rather than go on unarmored; after
                    // INSTANCE_WAIT, or as the daemon stops, it goes on under the policy it
                    // is bound to (the one refusing everything, or its template's).
                    let since = *self
                        .pending
                        .unresolved
                        .entry(root)
                        .or_insert_with(Instant::now);
                    if !self.pending.stopping && since.elapsed() < INSTANCE_WAIT {
                        self.pending.waiting.insert(root);
                        continue;
                    }
                    for (cgid, b) in &bindings {
                        if b.root == root {
                            let _ = self.kernel.bind(*cgid, Binding { flags: 0, ..*b });
                        }
                    }
                    continue;
                }
                // Gone: cgroup_rmdir forgot it; what waited under it goes with it.
                for (cgid, b) in &bindings {
                    if b.root == root {
                        self.kernel.unbind(*cgid);
                    }
                }
                continue;
            };
            let path = full.strip_prefix(CGROUP_ROOT).unwrap_or(&full).to_string();
            // A unit whose first policy waits for its files to be whole (first.rs) waits
            // with it, whatever mark held its cgroup.
            if !self.pending.stopping && unit_of_path(&path).is_some_and(|u| self.held.contains(&u))
            {
                self.pending.waiting.insert(root);
                continue;
            }
            let mut now = match bindings.get(&root) {
                Some(b) if b.flags & BIND_PENDING != 0 => self.binding_now(&path),
                Some(b) => Some((b.policy, 0)),
                None => None,
            };
            // An expected entry with no policy: an instance its own files leave unarmored
            // (exempt.rs). It goes on unbound.
            if matches!(now, Some((0, _))) {
                now = None;
            }
            // A new instance of a template whose instances have policies of their own (found
            // by the template's name: the daemon has no entry for its path yet). It waits until
            // the daemon has heard of it from systemd (`UnitNew`) and bound its own policy,
            // which also lets it go; here it goes on under its own policy if the daemon knows
            // it by name (at another path than it expected), under the template's if that
            // covers it, and after INSTANCE_WAIT under the template's (stricter) all the same.
            if let Some((policy, flags)) = now {
                if flags & BIND_INSTANCES != 0 {
                    let leaf = path.rsplit('/').next().unwrap_or_default();
                    let name = leaf.strip_prefix('_').unwrap_or(leaf);
                    let since = *self
                        .pending
                        .instances
                        .entry(root)
                        .or_insert_with(Instant::now);
                    now = if let Some(a) = self.units.get(name) {
                        Some((a.id, 0))
                    } else if self.covered.contains_key(name)
                        || self.pending.stopping
                        || since.elapsed() >= INSTANCE_WAIT
                    {
                        Some((policy, 0))
                    } else {
                        self.pending.waiting.insert(root);
                        continue;
                    };
                }
            }
            match now {
                Some((_, flags)) if flags & BIND_PENDING != 0 => {
                    self.pending.waiting.insert(root);
                    continue;
                }
                Some((policy, _)) => {
                    for (cgid, b) in cgroup_bindings(&path, policy) {
                        let _ = self.kernel.bind(cgid, b);
                    }
                }
                None => {
                    for (cgid, b) in &bindings {
                        if b.root == root {
                            self.kernel.unbind(*cgid);
                        }
                    }
                }
            }
        }
        let waiting = &self.pending.waiting;
        self.pending
            .instances
            .retain(|root, _| waiting.contains(root));
        self.pending
            .unresolved
            .retain(|root, _| waiting.contains(root));
        // Whatever bound or unbound a cgroup that waited (this, or a pass's binding of a
        // newly armored unit's cgroups), its tasks go on now.
        let mut done = HashSet::new();
        for cgid in self.kernel.take_released() {
            let Some(full) = path_of_cgroup_id(cgid) else {
                continue;
            };
            let path = full.strip_prefix(CGROUP_ROOT).unwrap_or(&full).to_string();
            if done.insert(path.clone()) {
                continue_tasks(&path, true);
                let how = match self.kernel.binding(cgid) {
                    // Rebound and still waiting (a disarmed unit's cgroup handed to the
                    // refusing policy until its path binds: reconcile.rs): not gone on yet.
                    Some(b) if b.flags & BIND_PENDING != 0 => continue,
                    Some(_) => "armored",
                    None => "unarmored",
                };
                let unit = unit_of_path(&path).unwrap_or_default();
                info!(
                    object_systemd_unit = unit.as_str(),
                    "{unit}: started before unitarmor had read its files (written at that \
                     moment, or a new instance of a template whose instances have policies of \
                     their own), it waited until it had ({path}); it goes on {how}"
                );
                self.pending.let_go.push((path, CONTINUE_AGAIN));
            }
        }
    }

    /// What a cgroup PID 1 makes at `path` is bound to now, looked up as the cgroup_mkdir
    /// program does (bpf/binding.h): by path in `expected`; then an instance by its template's
    /// name and its own, any other unit by its name and its dashed prefixes; a pending mark of
    /// its type or its slice; else the policy of an armored slice it is in.
    fn binding_now(&self, path: &str) -> Option<(u32, u32)> {
        let (parent, leaf) = path.rsplit_once('/')?;
        let name = leaf.strip_prefix('_').unwrap_or(leaf);
        if let Some(found) = self.kernel.expected_at(path) {
            // An instance its own files leave unarmored (exempt.rs) still waits while a mark
            // of its name, its type's or its slice's drop-ins is there, as in the kernel.
            if found.0 == 0 {
                let own = self
                    .kernel
                    .expected_at(name)
                    .filter(|(_, flags)| flags & BIND_PENDING != 0);
                return own
                    .or_else(|| self.mark_around(parent, name))
                    .or(Some(found));
            }
            return Some(found);
        }
        if let Some(found) = keys_by_name(name)
            .into_iter()
            .find_map(|key| self.kernel.expected_at(&key))
        {
            return Some(found);
        }
        // Still a mark of its type's drop-ins or of its slice's: it waits for them too.
        if let Some(found) = self.mark_around(parent, name) {
            return Some(found);
        }
        let parent_id = std::fs::metadata(format!("{CGROUP_ROOT}{parent}"))
            .ok()?
            .ino();
        self.kernel
            .binding(parent_id)
            .filter(|b| b.flags & BIND_SLICE != 0)
            .map(|b| (b.policy, 0))
    }

    /// A pending mark of the type's drop-ins (`service`) or of the slice the cgroup is in.
    fn mark_around(&self, parent: &str, name: &str) -> Option<(u32, u32)> {
        let kind = name.rsplit_once('.').map(|(_, kind)| kind);
        let slice = parent.rsplit('/').next().filter(|p| !p.is_empty());
        [kind, slice]
            .into_iter()
            .flatten()
            .filter_map(|key| self.kernel.expected_at(key))
            .find(|(_, flags)| flags & BIND_PENDING != 0)
    }
}

/// The names the cgroup_mkdir program looks a unit's cgroup up by, in its order: for an
/// instance (`a@b.service`) its template (`a@.service`) and itself; else itself and its
/// dashed prefixes, longest first (`a-b-c.scope`: `a-b-.scope`, `a-.scope`), at most 8.
pub(super) fn keys_by_name(name: &str) -> Vec<String> {
    let Some(dot) = name.rfind('.') else {
        return vec![name.to_string()];
    };
    let suffix = &name[dot..];
    if let Some(at) = name.find('@') {
        if dot > at + 1 {
            return vec![format!("{}{suffix}", &name[..=at]), name.to_string()];
        }
    }
    let mut keys = vec![name.to_string()];
    let dashes: Vec<usize> = name
        .char_indices()
        .filter(|&(i, c)| c == '-' && i > 0 && i < dot)
        .map(|(i, _)| i)
        .take(8)
        .collect();
    for &dash in dashes.iter().rev() {
        keys.push(format!("{}{suffix}", &name[..=dash]));
    }
    keys
}

/// The unit and drop-in directories among the directories the watcher listed (not the
/// named-policy directories): drop-in directories with the unit they belong to.
fn unit_dirs(listed: Vec<super::changes::ListedDir>) -> HashMap<(u64, u64), (UnitDir, PathBuf)> {
    let unit_dir = |p: &Path| {
        PASS_DIRS
            .iter()
            .any(|d| p == Path::new(d) && !d.contains("/unitarmor/"))
    };
    listed
        .into_iter()
        .filter_map(|(path, id, top)| {
            if top {
                return unit_dir(&path).then_some((id, (UnitDir::Units, path)));
            }
            if !path.parent().is_some_and(unit_dir) {
                return None;
            }
            let name = path.file_name()?.to_str()?.strip_suffix(".d")?.to_string();
            Some((id, (UnitDir::Dropins(name), path)))
        })
        .collect()
}

/// Continues the tasks of the cgroup at `path` and below (with `all`, every one: a stop it
/// sent itself may still be queued; without, those stopped).
fn continue_tasks(path: &str, all: bool) {
    for (dir, _) in cgroup_dirs(path) {
        let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) else {
            continue;
        };
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            // SAFETY: a plain system call.
            if (all || stopped(pid)) && unsafe { libc::kill(pid, libc::SIGCONT) } != 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::ESRCH) {
                    warn!("cannot continue process {pid} of {path}: {e}");
                }
            }
        }
    }
}

/// Whether process `pid` is stopped (state T in /proc/PID/stat).
fn stopped(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('T'))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_looked_up_as_the_kernel_does() {
        assert_eq!(keys_by_name("app.service"), ["app.service"]);
        assert_eq!(keys_by_name("a@b.service"), ["a@.service", "a@b.service"]);
        assert_eq!(
            keys_by_name("run-u7-x.scope"),
            ["run-u7-x.scope", "run-u7-.scope", "run-.scope"]
        );
        assert_eq!(keys_by_name("-x.scope"), ["-x.scope"]);
    }

    #[test]
    fn drop_in_directories_name_their_unit() {
        let listed = vec![
            ("/etc/systemd/system".into(), (1, 2), true),
            ("/etc/systemd/system/app.service.d".into(), (1, 3), false),
            ("/usr/lib/systemd/system/run-.scope.d".into(), (1, 4), false),
            ("/etc/unitarmor/policies".into(), (1, 5), true),
            ("/run/systemd/transient".into(), (1, 6), true),
        ];
        let dirs = unit_dirs(listed);
        let what = |id| dirs.get(&id).map(|(w, _)| w.clone());
        assert_eq!(what((1, 2)), Some(UnitDir::Units));
        assert_eq!(what((1, 3)), Some(UnitDir::Dropins("app.service".into())));
        assert_eq!(what((1, 4)), Some(UnitDir::Dropins("run-.scope".into())));
        assert_eq!(what((1, 5)), None);
        assert_eq!(what((1, 6)), None);
    }
}
