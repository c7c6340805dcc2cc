//! Binding the cgroups of armored units that run already: a unit's own tree, the running
//! units a prefix's policy decides for, and a template's instances wherever they run (the
//! kernel binds new cgroups itself, at creation: bpf/binding.h).

use std::collections::HashSet;

use tracing::error;

use super::cgroups::{cgroup_bindings, running_units};
use super::discover::{bind_order, prefix_covers, prefix_of, template_of, Candidate};
use super::Daemon;
use crate::kernel::pending::BIND_PENDING;
use crate::kernel::{BIND_SLICE, REFUSE_ID};
use crate::policy::specifiers::UnitName;

impl Daemon {
    /// Binds a unit's cgroup and everything below it, if it exists already.
    pub(super) fn bind_existing(&mut self, c: &Candidate) {
        let Some(a) = self.units.get(&c.name) else {
            return;
        };
        let id = a.id;
        // A path another unit expects too, and holds (a template's, for its own slice): its
        // cgroups stay that unit's (a template's running instances keep their template's
        // rules, which include the slice's).
        let mut paths = Vec::new();
        if !self.yields_path(&c.name, &a.expected) {
            paths.push(a.expected.clone());
        }
        // A prefix's policy (run-.scope) binds the units of that prefix that run already and
        // that no file names: those it would have bound at their creation.
        if prefix_of(&c.name).is_some() {
            paths.extend(
                running_units()
                    .into_iter()
                    .filter(|(unit, _)| self.prefix_decides(&c.name, unit))
                    .map(|(_, path)| path),
            );
        }
        // A template's instances that another slice holds (`Slice=`): the kernel bound them at
        // creation by the template's name, and a new daemon (fresh maps) must bind them too,
        // before its hooks are in force. Not those armored by name or left unarmored.
        if UnitName::new(c.name.as_str()).is_template() {
            let own = format!("{}/", a.expected);
            paths.extend(
                running_units()
                    .into_iter()
                    .filter(|(unit, path)| {
                        template_of(unit).as_deref() == Some(c.name.as_str())
                            && !path.starts_with(&own)
                            && !self.units.contains_key(unit)
                            && !self.refused.contains_key(unit)
                            && !self.exempt.contains_key(unit)
                    })
                    .map(|(_, path)| path),
            );
        }
        // A template's slice holds its instances, and those its own files leave unarmored
        // stay so (exempt.rs). Units armored (or refused) below it keep their own policy, and
        // below a slice or template, cgroups waiting for the daemon are bound by the pending
        // pass as they will be (pending.rs): a slice's or template's policy landing before
        // theirs (compiling.rs) must not take them over.
        let shared = bind_order(&c.name) < 2 || UnitName::new(c.name.as_str()).is_template();
        for path in paths {
            let mut skip = self.exempt_cgroups(&path);
            // Units live in slices only: none is armored below a service's or a scope's cgroup
            // (a look over every armored unit, for each of a thousand, took most of a
            // rescan's binding under emulation).
            if shared {
                skip.extend(self.owned_below(&path, &c.name));
            }
            let bindings = if c.user.is_some() {
                super::cgroups::user_tree_bindings(&path, id)
            } else {
                cgroup_bindings(&path, id)
            };
            for (cgid, binding) in bindings {
                let waiting = shared
                    && self
                        .kernel
                        .binding(cgid)
                        .is_some_and(|b| b.flags & BIND_PENDING != 0);
                if skip.contains(&cgid) || waiting {
                    continue;
                }
                if let Err(e) = self.kernel.bind(cgid, binding) {
                    error!(object_systemd_unit = c.name.as_str(), "{}: {e:#}", c.name);
                }
            }
        }
    }

    /// The cgroups of units other than `name` armored or refused at a path below `path`.
    fn owned_below(&self, path: &str, name: &str) -> HashSet<u64> {
        let below = format!("{path}/");
        self.units
            .iter()
            .filter(|(n, _)| n.as_str() != name)
            .map(|(_, a)| &a.expected)
            .chain(
                self.refused
                    .iter()
                    .filter(|(n, _)| n.as_str() != name)
                    .map(|(_, e)| e),
            )
            .filter(|e| e.starts_with(&below))
            .flat_map(|e| cgroup_bindings(e, 0))
            .map(|(cgid, _)| cgid)
            .collect()
    }

    /// Whether the armored prefix unit `prefix` decides for `unit`, as the kernel picks at
    /// creation (bpf/binding.h: prefix_policy): `unit` is not armored (or refused) by name,
    /// and no longer armored (or refused) prefix covers it.
    pub(super) fn prefix_decides(&self, prefix: &str, unit: &str) -> bool {
        prefix_covers(prefix, unit)
            && !self.units.contains_key(unit)
            && !self.refused.contains_key(unit)
            && !self
                .units
                .keys()
                .chain(self.refused.keys())
                .any(|p| p.len() > prefix.len() && prefix_covers(p, unit))
    }

    /// Whether unit `name` leaves cgroup path `path`, which it expects, to another unit that
    /// expects it too: one refused everything, or a template whose policy has `name`'s rules
    /// (`foo@.service` in its own slice `system-foo.slice`, which its policy takes as a layer,
    /// and in force: no errors kept it on an older one, nor want of room). Not a template
    /// whose `Slice=` puts its instances elsewhere, whose policy lacks the slice's rules.
    pub(super) fn yields_path(&self, name: &str, path: &str) -> bool {
        let mine = (bind_order(name), name);
        self.refused
            .iter()
            .any(|(n, e)| n.as_str() != name && e.as_str() == path)
            || self.units.iter().any(|(n, a)| {
                a.expected == path
                    && (bind_order(n), n.as_str()) > mine
                    && a.slice == name
                    && a.errors.is_empty()
                    && !a.compile_failed
                    && !self.want_room.contains(n)
            })
    }

    /// Gives the kernel's entry for cgroup path `path` to an armored unit that still expects
    /// it, once the unit that last wrote it is disarmed or moved: a template and its own
    /// slice (`foo@.service`, `system-foo.slice`) expect the same cgroup. The cgroups there
    /// are bound to that unit's policy too, except those of units armored below it. Returns
    /// false if no unit expects `path` (the caller removes the entry).
    pub(super) fn restore_expected(&mut self, path: &str) -> bool {
        // A refused unit there keeps everything refused (fail closed), whatever else shares it.
        let refused = self
            .refused
            .iter()
            .find(|(_, e)| e.as_str() == path)
            .map(|(n, _)| (n.clone(), REFUSE_ID));
        let armed = self
            .units
            .iter()
            .filter(|(_, a)| a.expected == path)
            .map(|(n, a)| (n.clone(), a.id))
            // The one a pass arms last, which wrote the entry there.
            .max_by_key(|(n, _)| (bind_order(n), n.clone()));
        let Some((name, id)) = refused.or(armed) else {
            return false;
        };
        let flags = if bind_order(&name) < 2 { BIND_SLICE } else { 0 };
        if let Err(e) = self.kernel.set_expected(path, id, flags) {
            error!(object_systemd_unit = name.as_str(), "{name}: {e:#}");
        }
        let below = format!("{path}/");
        let mut skip: HashSet<u64> = self.exempt_cgroups(path);
        let own_trees: Vec<String> = self
            .units
            .values()
            .map(|a| a.expected.clone())
            .chain(self.refused.values().cloned())
            .filter(|e| e.starts_with(&below))
            .collect();
        for tree in own_trees {
            skip.extend(cgroup_bindings(&tree, 0).into_iter().map(|(cgid, _)| cgid));
        }
        for (cgid, binding) in cgroup_bindings(path, id) {
            // Waiting for the daemon: the pending pass binds them as they will be bound.
            let waiting = self
                .kernel
                .binding(cgid)
                .is_some_and(|b| b.flags & BIND_PENDING != 0);
            if skip.contains(&cgid) || waiting {
                continue;
            }
            if let Err(e) = self.kernel.bind(cgid, binding) {
                error!(object_systemd_unit = name.as_str(), "{name}: {e:#}");
            }
        }
        true
    }
}
