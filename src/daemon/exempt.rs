//! Instances of an armored template that their own files leave unarmored
//! (`foo@x.service.d/off.conf` with `ArmorMode=off`).
//!
//! The kernel binds a new instance's cgroup by its template (the template's slice, or the
//! template's name in `expected`), before the daemon has read anything of the instance. For an
//! instance whose own drop-in turns the armor off, the daemon writes an `expected` entry at the
//! instance's cgroup path with no policy: `cgroup_mkdir` finds it first and binds nothing
//! (bpf/binding.h), and a cgroup of the instance that waits for the daemon is let go unbound
//! (pending.rs). Without it the instance ran under its template's policy, against its files,
//! and one whose template makes instances wait (instance-dependent rules) waited 10 s at each
//! start first.

use std::collections::HashSet;

use tracing::info;

use super::cgroups::cgroup_bindings;
use super::discover::template_of;
use super::Daemon;

impl Daemon {
    /// Whether `name` is an instance of a template the daemon armors (or refuses).
    pub(super) fn instance_of_armored(&self, name: &str) -> bool {
        template_of(name)
            .is_some_and(|t| self.units.contains_key(&t) || self.refused.contains_key(&t))
    }

    /// Leaves instance `name`, whose cgroup path is `expected`, unarmored: its cgroups now
    /// and those made from now on.
    pub(super) fn exempt_instance(&mut self, name: &str, expected: &str) {
        self.covered.remove(name);
        if let Err(e) = self.kernel.set_expected(expected, 0, 0) {
            // Not recorded: the instance stays under its template's policy (stricter), and
            // the next pass tries again.
            tracing::error!(object_systemd_unit = name, "{name}: {e:#}");
            return;
        }
        for (cgid, _) in cgroup_bindings(expected, 0) {
            self.kernel.unbind(cgid);
        }
        let old = self.exempt.insert(name.to_string(), expected.to_string());
        // Its path changed (a `Slice=` of its own or its template's): the old entry goes, or
        // whatever is made there later would be bound to nothing.
        if let Some(old) = old.as_deref().filter(|o| *o != expected) {
            self.kernel.remove_expected(old);
        }
        if old.is_none() {
            info!(
                object_systemd_unit = name,
                "{name}: not armored (its own files turn the armor off), though its template is"
            );
        }
    }

    /// Instance `name` is armored again (or gone): its cgroups are bound at creation by its
    /// template again, and those running now are bound to `policy` (the template's, until its
    /// own is known), or left as they are when `policy` is `None`.
    pub(super) fn unexempt_instance(&mut self, name: &str, policy: Option<u32>) {
        let Some(expected) = self.exempt.remove(name) else {
            return;
        };
        self.kernel.remove_expected(&expected);
        if let Some(id) = policy {
            for (cgid, b) in cgroup_bindings(&expected, id) {
                let _ = self.kernel.bind(cgid, b);
            }
        }
    }

    /// The cgroups, now, of the exempt instances below cgroup path `under` (a template's
    /// slice): none to look for below any other unit's.
    pub(super) fn exempt_cgroups(&self, under: &str) -> HashSet<u64> {
        let prefix = format!("{under}/");
        self.exempt
            .values()
            .filter(|path| path.starts_with(&prefix))
            .flat_map(|path| cgroup_bindings(path, 0))
            .map(|(cgid, _)| cgid)
            .collect()
    }

    /// The template's policy id for instance `name`, if the template has one.
    pub(super) fn template_policy(&self, name: &str) -> Option<u32> {
        template_of(name).and_then(|t| self.units.get(&t).map(|a| a.id))
    }
}
