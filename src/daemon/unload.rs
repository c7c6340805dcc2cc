//! What systemd unloading a unit (`UnitRemoved`) lets the daemon forget: an instance's record
//! as running under its template's policy, and a policy slot of its own that nothing needs;
//! and which armored units a rescan finds gone, and disarms.

use tracing::{error, info};

use std::collections::HashSet;

use super::discover::{files_on_disk, named_on_disk, template_of, DiskPass};
use super::Daemon;
use crate::policy::resolve;

impl Daemon {
    /// systemd unloaded `name` (`UnitRemoved`: it is stopped and nothing refers to it). An
    /// instance of an armored template is forgotten: it is no longer listed as running under
    /// the template's policy, and a policy slot of its own (an instance-dependent specifier in
    /// its rules) is freed, unless a cgroup is still bound to it or the instance has files of
    /// its own on disk (see [`unload_action`]).
    ///
    /// Freeing opens no window when the instance starts again: systemd loads it again first
    /// (`UnitNew`), and its cgroup is bound at creation by the template's binding (the
    /// template's slice, or the template's name for instances elsewhere), whose policy is never
    /// looser than an instance's (instance-dependent specifiers widen); `UnitNew` then refines
    /// it to the instance's own policy, exactly as on the instance's first start.
    pub(super) fn unit_removed(&mut self, name: &str) {
        let armored_template = template_of(name).is_some_and(|t| self.units.contains_key(&t));
        let own = self.units.get(name).map(|a| a.id);
        let action = unload_action(
            armored_template,
            own.is_some(),
            || named_on_disk(name),
            || self.has_cgroups(name),
        );
        match action {
            Unload::Keep => {}
            Unload::Forget => {
                self.covered.remove(name);
            }
            Unload::Free => {
                self.covered.remove(name);
                self.disarm_unit(name);
                info!(
                    object_systemd_unit = name,
                    "{name}: unloaded by systemd; its policy slot {} is free (the template's \
                     policy binds it if it starts again)",
                    own.unwrap_or_default()
                );
            }
        }
    }

    /// Disarms the armored units a rescan no longer lists (`listed`: the names it found),
    /// but for those it missed because a drop-in many units read could not be read (too
    /// large, an I/O error): that file may hold their armor, so they keep their last good
    /// policy, with the error.
    pub(super) fn disarm_gone(&mut self, listed: &HashSet<&str>) {
        let bound: HashSet<u32> = self.kernel.bindings().values().map(|b| b.policy).collect();
        // User units are the disk passes' to disarm (sync.rs): a rescan's list of users is
        // as old as the rescan, and a user's manager may have started since (users.rs).
        let gone = gone_units(
            self.units
                .iter()
                .filter(|(n, _)| !crate::systemd::is_user_unit(n))
                .map(|(n, a)| (n.as_str(), a.id)),
            listed,
            &bound,
        );
        // One look at the disk for them all: a look at one unit asks for each of its ~400
        // possible files and directories, and a rescan that finds a thousand units gone took
        // six seconds under emulation so.
        let mut disk = DiskPass::whole();
        let mut disarm = Vec::new();
        for n in gone {
            let (files, _) = files_on_disk(&n, &mut disk);
            if let Some(f) = resolve::unreadable_shared(&files) {
                let why = format!(
                    "{} could not be read; keeping the last good policy",
                    f.display()
                );
                error!(
                    object_systemd_unit = n.as_str(),
                    unitarmor_unit = n.as_str(),
                    "{n}: {why}"
                );
                if let Some(a) = self.units.get_mut(&n) {
                    a.errors = vec![why];
                }
                continue;
            }
            disarm.push(n);
        }
        self.disarm_units(&disarm);
        for n in disarm {
            info!(
                object_systemd_unit = n.as_str(),
                "{n}: no longer armored (unit is gone)"
            );
        }
    }

    /// Whether a cgroup is bound to a policy of `name` (its current one, or one retiring).
    fn has_cgroups(&self, name: &str) -> bool {
        self.kernel.bindings().values().any(|b| {
            self.owners
                .get(&b.policy)
                .is_some_and(|(unit, _)| unit == name)
        })
    }
}

/// What systemd unloading a unit lets the daemon forget.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Unload {
    /// Nothing: the unit is not an instance of an armored template. Its cgroup has no other
    /// binding at creation than its own expected entry, which must stay for its next start.
    Keep,
    /// Its record as running under its template's policy, if any; a slot of its own stays.
    Forget,
    /// That record and its own policy slot.
    Free,
}

/// The pure part of [`Daemon::unit_removed`]. A slot of its own is kept while a cgroup is
/// still bound to it (processes left behind), and while the instance has files of its own on
/// disk (a unit file or a drop-in directory named after it): those are armored from disk ahead
/// of their start, so that rules of their own hold from the first instruction; freeing the
/// slot would leave them to the template's policy until `UnitNew` is handled. The last two
/// are asked only when it matters (the last walks the kernel's `bound` map).
pub(super) fn unload_action(
    armored_template: bool,
    own_slot: bool,
    files_of_its_own: impl FnOnce() -> bool,
    cgroups_bound: impl FnOnce() -> bool,
) -> Unload {
    if !armored_template {
        Unload::Keep
    } else if own_slot && !files_of_its_own() && !cgroups_bound() {
        Unload::Free
    } else {
        Unload::Forget
    }
}

/// The armored units (name, policy id) a rescan that `listed` these units finds gone. An
/// instance of a template still listed whose cgroup is `bound` to its own policy now was
/// started after systemd's list was taken (bound at creation by what the reload's pass over
/// the disk armored): it is not gone, and disarming it would unbind it, running.
/// `UnitRemoved` or the next rescan sees it go.
pub(super) fn gone_units<'a>(
    units: impl Iterator<Item = (&'a str, u32)>,
    listed: &HashSet<&str>,
    bound: &HashSet<u32>,
) -> Vec<String> {
    units
        .filter(|(n, id)| {
            let started_since =
                bound.contains(id) && template_of(n).is_some_and(|t| listed.contains(t.as_str()));
            !listed.contains(n) && !started_since
        })
        .map(|(n, _)| n.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never() -> bool {
        panic!("asked needlessly")
    }

    #[test]
    fn only_instances_of_armored_templates_are_forgotten() {
        // A unit of its own, or an instance of a template that is not armored (armored by a
        // drop-in of its own): its expected entry is its only binding at creation.
        assert_eq!(unload_action(false, true, never, never), Unload::Keep);
        assert_eq!(unload_action(false, false, never, never), Unload::Keep);
        // Running under the template's policy: only the record goes.
        assert_eq!(unload_action(true, false, never, never), Unload::Forget);
    }

    #[test]
    fn a_slot_of_its_own_is_freed_when_nothing_needs_it() {
        assert_eq!(unload_action(true, true, || false, || false), Unload::Free);
        // A drop-in of its own on disk: armored ahead of its next start.
        assert_eq!(unload_action(true, true, || true, never), Unload::Forget);
        // A cgroup still bound to it.
        assert_eq!(unload_action(true, true, || false, || true), Unload::Forget);
    }

    #[test]
    fn an_instance_started_after_the_list_is_not_gone() {
        let listed: HashSet<&str> = ["app@.service", "db.service"].into_iter().collect();
        let units = [
            ("db.service", 1),
            // Not listed, its template is, a cgroup is bound to its policy: started since.
            ("app@new.service", 2),
            // Not listed and nothing bound to it: gone.
            ("app@old.service", 3),
            // Bound, but its template is no longer armored (not listed): gone.
            ("other@x.service", 4),
            // A unit of its own, bound but not listed (its armor removed): gone.
            ("web.service", 5),
        ];
        let bound: HashSet<u32> = [1, 2, 4, 5].into_iter().collect();
        let mut gone = gone_units(units.into_iter(), &listed, &bound);
        gone.sort();
        assert_eq!(gone, ["app@old.service", "other@x.service", "web.service"]);
    }
}
