//! Reconcile and binding: bring each unit's policy, expected cgroup path and cgroup bindings
//! in the kernel in line with its files, on start-up, on reload and for new units.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{error, info, warn};

use super::cgroups::cgroup_bindings;
use super::discover::{
    bind_order, candidate_from, cgroup_pattern, expected_path, parent_slice, slice_layers_checked,
    template_of, Candidate, DiskPass,
};
use super::first::Read;
use super::{good, Armored, Daemon};
use crate::compile;
use crate::kernel::pending::BIND_PENDING;
use crate::kernel::{Binding, Loaded, BIND_INSTANCES, BIND_SLICE, REFUSE_ID};
use crate::policy::resolve;
use crate::policy::specifiers::UnitName;
use crate::policy::Diagnostics;
use crate::systemd::{self, UnitInfo};

impl Daemon {
    /// Policy slots in use: armored units' and retired tables' (kept until they are removed
    /// from the kernel), and removed ones whose repeat counts are still to be read or that a
    /// cgroup may still be bound to.
    pub(super) fn slots_in_use(&self) -> HashSet<u32> {
        self.units
            .values()
            .map(|u| u.id)
            .chain(self.retiring.iter().map(|r| r.0))
            .chain(self.quiet_gone.iter().copied())
            .chain(self.dead.iter().copied())
            .collect()
    }

    fn alloc_id(&mut self) -> Option<u32> {
        let in_use = self.slots_in_use();
        for _ in 1..REFUSE_ID {
            let id = self.next_id;
            self.next_id = if self.next_id + 1 >= REFUSE_ID {
                1
            } else {
                self.next_id + 1
            };
            if !in_use.contains(&id) {
                // Whatever a cgroup left on this id's earlier policy counted after its last
                // reading (repeats, per-rule counts) is not the new owner's.
                self.kernel.forget_quiet(id);
                self.quiet.retain(|k, _| k.0 != id);
                return Some(id);
            }
        }
        None
    }

    /// Brings one unit's kernel state in line with its files.
    pub(super) fn reconcile(&mut self, c: &Candidate) {
        self.reconcile_with(c, true, &mut DiskPass::one());
    }

    /// [`Self::reconcile`]; with `may_disarm` false, a unit whose files no longer arm it is
    /// left as it is (the disk-only pass of a reload's sync leaves that to the rescan).
    pub(super) fn reconcile_with(&mut self, c: &Candidate, may_disarm: bool, disk: &mut DiskPass) {
        let unit = UnitName::new(c.name.as_str());
        let mut diags = Diagnostics::default();
        // A slice's parents (for a slice) or the unit's slices come first.
        let parent = if c.name.ends_with(".slice") {
            parent_slice(&c.name)
        } else {
            c.slice.clone()
        };
        // Each slice is a layer of its own: the unit can neither drop nor soften its rules.
        // A user unit has no system slices; its user's own files are a layer that only
        // tightens root's (policy/user.rs).
        let (layers, slices_unlisted) = if c.user.is_some() {
            (Vec::new(), Vec::new())
        } else {
            slice_layers_checked(&parent, disk)
        };
        let mut policy = match &c.user {
            Some(u) => Arc::new(super::users::merge(c, u, disk, &mut diags)),
            // Reused from the last pass while the files are unchanged (merged.rs).
            None => self
                .merged
                .merge(&layers, &c.files, &unit, &mut |f| disk.read(f), &mut diags),
        };
        // A drop-in directory that could not be listed may hold anything: as a file that
        // could not be read, it keeps the last good policy or refuses everything.
        for (dir, why) in c.unlisted.iter().chain(&slices_unlisted) {
            diags.error(&crate::policy::Source::new(dir, 1), why.clone());
            if !resolve::is_shared(dir) {
                Arc::make_mut(&mut policy).unreadable.push(dir.clone());
            }
        }
        let mut errors: Vec<String> = diags.errors().map(|d| d.to_string()).collect();
        let expected = expected_path(c);
        // A cgroup path too long for the kernel's key is keyed by its last component
        // (kernel::cgroup_key); one whose last component is too long as well is never skipped
        // silently: existing cgroups are still bound by id, and the error stays in
        // `unitarmor status`.
        if let Err(e) = crate::kernel::cgroup_key(&expected) {
            errors.push(format!("{e:#}: its cgroup is not bound when it is created"));
        }
        // What the files say is being compiled already (compiling.rs); anything else they say
        // now supersedes a compile under way.
        // The files it was read from, for a unit's first policy (first.rs).
        let read = Read {
            began: disk.began,
            files: layers.iter().flatten().chain(&c.files).cloned().collect(),
        };
        if errors.is_empty() && self.compiling.under_way(c, &policy, &expected, &read) {
            return;
        }
        self.compiling.drop_job(&c.name);
        // A first policy read while a file was being written is not installed over the mark
        // that holds the unit's new cgroups: the pass the file's close starts installs it.
        // (Not a user unit's: its cgroups are not held by marks, and a user's own files, written
        // without end, must not put marks on names every service waits on.)
        if !self.units.contains_key(&c.name)
            && c.user.is_none()
            && self.hold_first(c, read.files.clone(), read.began)
        {
            return;
        }
        let (known, unchanged, errors_changed) = match self.units.get(&c.name) {
            Some(p) => (
                true,
                p.policy == policy && p.expected == expected,
                p.errors != errors,
            ),
            None => (false, false, !errors.is_empty()),
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
            // None in memory (this daemon has just started): the one kept on disk, if any.
            if let Some((good, path)) = good::load(Path::new(good::DIR), &c.name) {
                error!(
                    object_systemd_unit = c.name.as_str(),
                    unitarmor_unit = c.name.as_str(),
                    "{}: policy has errors; keeping the last good policy ({} rules, kept in {})",
                    c.name,
                    good.rules.len(),
                    path.display()
                );
                policy = Arc::new(good);
            }
        }
        if !policy.is_armored() {
            if known && may_disarm {
                self.disarm_unit(&c.name);
                info!(
                    object_systemd_unit = c.name.as_str(),
                    "{}: no longer armored", c.name
                );
            }
            // Its template would bind it at creation: its own files say otherwise. Not when a
            // file could not be read (it may hold the armor), nor, in a pass that may not
            // disarm, an instance already armored, covered or refused (left to the rescan).
            let untouched = !known
                && !self.covered.contains_key(&c.name)
                && !self.refused.contains_key(&c.name);
            if errors.is_empty()
                && (may_disarm || untouched || self.exempt.contains_key(&c.name))
                && self.instance_of_armored(&c.name)
            {
                self.exempt_instance(&c.name, &expected);
            }
            return;
        }
        let template_policy = self.template_policy(&c.name);
        self.unexempt_instance(&c.name, template_policy);
        if errors.is_empty() {
            if let Some(template) = self.covering_template(&c.name, &policy, &expected) {
                self.cover(&c.name, template, expected);
                return;
            }
        }
        self.covered.remove(&c.name);
        let slice_setting = systemd::slice_from_files_from(&c.files, &mut |f| c.read(disk, f));
        if unchanged {
            if let Some(p) = self.units.get_mut(&c.name) {
                // A policy that failed to compile fails again: its error stays listed.
                if !p.compile_failed {
                    p.errors = errors;
                }
                p.slice.clone_from(&c.slice);
                p.control_group.clone_from(&c.control_group);
                p.slice_setting = slice_setting;
            }
            return;
        }
        // A template whose instances have policies of their own makes a new instance wait
        // for its own (bpf/binding.h) rather than start under the template's.
        let differ = unit.is_template()
            && instances_differ(&mut self.merged, &layers, c, &policy, &mut |f| disk.read(f));
        let pattern = cgroup_pattern(&c.name, &expected);
        // A user unit's first policy is compiled in line: its user's manager waits for the
        // pass (users.rs), and a compile it does not wait for would let it start unarmored.
        let first_of_user = c.user.is_some() && !self.units.contains_key(&c.name);
        if policy.unreadable.is_empty()
            && errors.is_empty()
            && !first_of_user
            && self.compile_later(c, &policy, &expected, pattern.clone(), differ, read)
        {
            return;
        }
        // Files it could not read may say anything: with no last good policy (kept above
        // when there is one), the unit is refused everything, as for a policy that does not
        // compile.
        let compiled = if policy.unreadable.is_empty() {
            super::compiling::compile_now(&c.name, &policy, &pattern)
        } else {
            Err(format!(
                "{} of its files or drop-in directories could not be read",
                policy.unreadable.len()
            ))
        };
        self.install(c, policy, expected, errors, compiled, differ);
    }

    /// Puts unit `c`'s compiled policy (or, if it did not compile, its last good one or one
    /// that refuses everything) in the kernel, and binds its expected cgroup path and name to
    /// it. `differ`: a template whose instances have policies of their own.
    pub(super) fn install(
        &mut self,
        c: &Candidate,
        policy: Arc<crate::policy::Policy>,
        expected: String,
        mut errors: Vec<String>,
        compiled: Result<compile::Tables, String>,
        differ: bool,
    ) {
        let (known, counters) = match self.units.get(&c.name) {
            Some(p) => (true, (p.denied, p.audited, p.lost)),
            None => (false, (0, 0, 0)),
        };
        let slice_setting = systemd::slice_from_files(&c.files);
        // A user's own rules may not make tables that take the room other units need
        // (users.rs): refused as a policy that does not compile is.
        let compiled = match (compiled, &c.user) {
            (Ok(t), Some(u)) if !u.own.is_empty() && t.cells.len() > super::users::MAX_OWN_CELLS => {
                Err(format!(
                    "its tables take {} cells, more than the {} a unit with rules of its user's may take",
                    t.cells.len(),
                    super::users::MAX_OWN_CELLS
                ))
            }
            (r, _) => r,
        };
        let mut compile_failed = false;
        let mut tables = match compiled {
            Ok(t) => t,
            Err(e) => {
                if self.keep_last_good(&c.name, e.to_string()) {
                    return;
                }
                // No last good policy: fail closed. The unit is bound to a policy that
                // refuses every path in every class, so it cannot run unarmored (its start
                // fails at exec), and the error is listed by `unitarmor status`.
                error!(
                    object_systemd_unit = c.name.as_str(),
                    unitarmor_unit = c.name.as_str(),
                    "{}: {e}; armored with a policy that refuses everything until its files \
                     are fixed",
                    c.name
                );
                errors.push(e.to_string());
                compile_failed = true;
                compile::refuse_all(&policy)
            }
        };
        let Some(id) = self.alloc_id() else {
            self.want_room.insert(c.name.clone());
            let why = format!("no free policy slot (limit {})", REFUSE_ID - 1);
            if self.keep_last_good(&c.name, why.clone()) {
                return;
            }
            error!(
                object_systemd_unit = c.name.as_str(),
                unitarmor_unit = c.name.as_str(),
                "{}: {why}; refused everything until a slot is free",
                c.name
            );
            self.refuse_for_now(&c.name, &expected);
            return;
        };
        let was_refused = self.refused.remove(&c.name).is_some();
        if let Err(e) = self.kernel.install_policy(id, &tables) {
            self.kernel.remove_policy(id, &Loaded::of(&tables));
            self.want_room.insert(c.name.clone());
            if self.keep_last_good(&c.name, format!("{e:#}")) {
                return;
            }
            // No last good policy: fail closed, as for a policy that does not compile (the
            // refusing tables need no cells of their own: kernel/tables.rs).
            error!(
                object_systemd_unit = c.name.as_str(),
                unitarmor_unit = c.name.as_str(),
                "{}: {e:#}; armored with a policy that refuses everything until there is room",
                c.name
            );
            errors.push(format!("{e:#}"));
            compile_failed = true;
            tables = compile::refuse_all(&policy);
            if let Err(e) = self.kernel.install_policy(id, &tables) {
                error!(
                    object_systemd_unit = c.name.as_str(),
                    "{}: {e:#}; policy not applied", c.name
                );
                self.kernel.remove_policy(id, &Loaded::of(&tables));
                return;
            }
        } else {
            self.want_room.remove(&c.name);
        }
        // Peer units (`allow signal UNIT`) reachable at once, not at the next tick.
        if !tables.peers.is_empty() {
            self.kernel.refresh_peers(super::cgroups::peer_cgroup);
        }
        let flags = if bind_order(&c.name) < 2 {
            BIND_SLICE
        } else if c.user.is_some() {
            crate::kernel::BIND_USER
        } else {
            0
        };
        // A cgroup path two units expect (a template and its own slice) keeps the entry of
        // the one `restore_expected` picks (bind.rs).
        if !self.yields_path(&c.name, &expected) {
            if let Err(e) = self.kernel.set_expected(&expected, id, flags) {
                error!(object_systemd_unit = c.name.as_str(), "{}: {e:#}", c.name);
            }
        } else if was_refused {
            // Its refusal took the path and every cgroup there: handed back to the unit
            // that holds it.
            self.restore_expected(&expected);
        }
        // Instances whose Slice= puts them elsewhere than the template's slice are bound by
        // the template's name (bpf/binding.h: template_key).
        // Other units (not slices, not instances) are also bound by their name, wherever a
        // Slice= set at run time puts them (bpf/binding.h: unit_key): a transient scope or
        // service started with a slice of its own.
        if keyed_by_name(&c.name) {
            let flags = if differ { BIND_INSTANCES } else { 0 };
            if let Err(e) = self.kernel.set_expected(&c.name, id, flags) {
                error!(object_systemd_unit = c.name.as_str(), "{}: {e:#}", c.name);
            }
        }
        self.owners.insert(id, (c.name.clone(), policy.clone()));
        // The kernel has the tables now; the daemon keeps what it needs to remove the policy.
        let loaded = Loaded::of(&tables);
        if !tables.groups.is_empty() {
            self.groups.insert(id, (tables.groups, None));
        }
        let (denied, audited, lost) = counters;
        self.unhold(&c.name);
        let old = self.units.insert(
            c.name.clone(),
            Armored {
                policy,
                loaded,
                id,
                expected: expected.clone(),
                slice: c.slice.clone(),
                control_group: c.control_group.clone(),
                slice_setting,
                errors,
                denied,
                audited,
                lost,
                compile_failed,
            },
        );
        // Switch what is bound to the old policy over to the new one: one map update per
        // cgroup, so each running process sees either the old or the new policy, never none.
        if let Some(old) = old {
            // Repeated: a sub-cgroup created during a pass inherits the old id from its parent.
            for _ in 0..8 {
                if self.kernel.rebind(old.id, id) == 0 {
                    break;
                }
            }
            // A long path is keyed by its last component, which the new path may share.
            if !crate::kernel::same_key(&old.expected, &expected)
                && !self.restore_expected(&old.expected)
            {
                self.kernel.remove_expected(&old.expected);
            }
            self.retiring.push((old.id, old.loaded, Instant::now()));
        }
        let a = &self.units[&c.name];
        // Kept for a daemon that starts while the unit's files have errors.
        if a.errors.is_empty() && !a.compile_failed {
            if let Err(e) = good::save(Path::new(good::DIR), &c.name, &a.policy) {
                warn!("{}: the last good policy is not kept: {e:#}", c.name);
            }
        }
        let what = if known { "policy updated" } else { "armored" };
        info!(
            object_systemd_unit = c.name.as_str(),
            "{}: {what} ({} rules, {})",
            c.name,
            a.policy.rules.len(),
            a.policy.mode.as_str()
        );
        self.status_changed();
    }

    /// Disarms `name`: its policy, expected entries and last good policy go, and its cgroups
    /// are unbound (or handed to a unit that expects the same path).
    pub(super) fn disarm_unit(&mut self, name: &str) {
        self.disarm_units(&[name.to_string()]);
    }

    /// [`Self::disarm_unit`] of many units, with one look over `bound` for them all: each look
    /// walks the whole hash table in the kernel (65,536 buckets), 0.5 ms under emulation, and
    /// a rescan that found a thousand units gone spent a fifth of its time so.
    pub(super) fn disarm_units(&mut self, names: &[String]) {
        let ids: HashSet<u32> = names
            .iter()
            .filter_map(|n| self.disarm_leaving_bound(n))
            .collect();
        if ids.is_empty() {
            return;
        }
        // A cgroup that another unit's restored path handed to one disarmed later in the
        // batch holds that one's id by now, and goes with it, as it would one by one. One
        // waiting for the daemon (a new instance bound pending to its template's policy) is
        // not let go here: it waits on, refusing everything, and the pending pass binds it
        // as its path binds now (a third unit may expect it, refused for want of a slot and
        // compiling again), or lets it go unbound if nothing does.
        for (cgid, b) in self.kernel.bindings() {
            if !ids.contains(&b.policy) {
                continue;
            }
            if b.flags & BIND_PENDING != 0 {
                let refusing = Binding {
                    policy: REFUSE_ID,
                    ..b
                };
                match self.kernel.bind(cgid, refusing) {
                    Ok(()) => continue,
                    Err(e) => error!("cgroup {cgid}, waiting for the daemon: {e:#}; let go"),
                }
            }
            self.kernel.unbind(cgid);
        }
    }

    /// Disarms `name` but for the cgroups bound to its policy, whose id it returns (if it had
    /// one): the caller unbinds them.
    fn disarm_leaving_bound(&mut self, name: &str) -> Option<u32> {
        self.compiling.drop_job(name);
        self.merged.forget(name);
        self.want_room.remove(name);
        if let Some(expected) = self.refused.remove(name) {
            if keyed_by_name(name) {
                self.kernel.remove_expected(name);
            }
            // Another unit expecting the same cgroup takes it over, bound to its policy.
            if !self.restore_expected(&expected) {
                self.kernel.remove_expected(&expected);
                for (cgid, _) in cgroup_bindings(&expected, REFUSE_ID) {
                    self.kernel.unbind(cgid);
                }
            }
        }
        good::forget(Path::new(good::DIR), name);
        let a = self.units.remove(name)?;
        if !self.restore_expected(&a.expected) {
            self.kernel.remove_expected(&a.expected);
        }
        if keyed_by_name(name) {
            self.kernel.remove_expected(name);
        }
        self.retiring.push((a.id, a.loaded, Instant::now()));
        self.status_changed();
        Some(a.id)
    }

    /// Applies a rescan: `candidates` are what `discover` found (after `systemctl
    /// daemon-reload`). The D-Bus exchange is the caller's, so that it can answer a reload's
    /// sync request meanwhile (see `sync.rs`).
    ///
    /// Returns where its time went (for the log).
    pub(super) fn apply_rescan(&mut self, candidates: Vec<Candidate>) -> String {
        let t0 = Instant::now();
        // An upgrade of systemd may have replaced systemd-executor.
        if let Err(e) = self.kernel.note_executor() {
            warn!("{e:#}");
        }
        let names: HashSet<&str> = candidates.iter().map(|c| c.name.as_str()).collect();
        self.covered.retain(|n, _| names.contains(n.as_str()));
        self.compiling.keep_only(&names);
        // Merges of units no longer armored, and of their templates' stand-ins.
        self.merged.keep_only(|n| {
            names.contains(n) || template_of(n).is_some_and(|t| names.contains(t.as_str()))
        });
        let gone: Vec<String> = self
            .exempt
            .keys()
            .filter(|n| !names.contains(n.as_str()))
            .cloned()
            .collect();
        for n in gone {
            self.unexempt_instance(&n, None);
        }
        self.disarm_gone(&names);
        let t1 = Instant::now();
        // One look at the disk for the whole rescan: each slice's files are read once, not
        // once for each unit in it.
        let mut disk = DiskPass::whole();
        let (mut reconciling, mut binding) = (Duration::ZERO, Duration::ZERO);
        for c in &candidates {
            let t = Instant::now();
            self.reconcile_with(c, true, &mut disk);
            let t2 = Instant::now();
            self.bind_existing(c);
            reconciling += t2 - t;
            binding += t2.elapsed();
        }
        let t3 = Instant::now();
        // Last good policies of units no longer armored (disarmed while no daemon ran).
        good::prune(Path::new(good::DIR), |unit| {
            self.units.contains_key(unit) || self.refused.contains_key(unit)
        });
        // What systemd said may differ from the disk: the next pass reads it again.
        self.changes.bump();
        format!(
            "disarming {} ms, reconciling {} ms, binding {} ms, last good policies {} ms",
            (t1 - t0).as_millis(),
            reconciling.as_millis(),
            binding.as_millis(),
            t3.elapsed().as_millis()
        )
    }

    /// Re-reads one loaded unit (new, or its job finished), from what systemd said of it.
    pub(super) fn refresh(&mut self, info: UnitInfo) {
        let c = candidate_from(info);
        self.reconcile(&c);
        self.bind_existing(&c);
        self.changes.bump();
    }
}

/// Whether template `c`'s instances have policies other than its own (`policy`, resolved
/// over `layers`): what its files say for a stand-in instance differs, as it does when they
/// (or what they grant, `StateDirectory=%i`) use an instance-dependent specifier.
fn instances_differ(
    merged: &mut super::merged::Merged,
    layers: &[Vec<std::path::PathBuf>],
    c: &Candidate,
    policy: &crate::policy::Policy,
    read: &mut resolve::Read,
) -> bool {
    let Some((prefix, suffix)) = c.name.split_once("@.") else {
        return false;
    };
    let stand_in = UnitName::new(format!("{prefix}@{}.{suffix}", super::merged::STAND_IN));
    *merged.merge(
        layers,
        &c.files,
        &stand_in,
        read,
        &mut Diagnostics::default(),
    ) != *policy
}

/// Whether a unit also has an `expected` entry under its name: a template (which binds its
/// instances by that name, bpf/binding.h: template_key) and every other unit but slices
/// (whose cgroup path is their name) and template instances (bound by their template's name,
/// or their own path; bpf/binding.h: unit_key).
pub(super) fn keyed_by_name(name: &str) -> bool {
    // A user unit (users.rs) only by its exact path: a name lookup is PID 1's.
    if super::users::split_key(name).is_some() {
        return false;
    }
    UnitName::new(name).is_template() || (!name.ends_with(".slice") && !name.contains('@'))
}
