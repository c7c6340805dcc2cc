//! What a unit gets when its new policy cannot be put in force: its last good policy, kept
//! with the error listed, or, with none, a policy that refuses everything until its files are
//! fixed or a slot is free. A unit is never left unarmored for want of a policy.

use tracing::error;

use super::cgroups::cgroup_bindings;
use super::discover::bind_order;
use super::reconcile::keyed_by_name;
use super::Daemon;
use crate::compile;
use crate::kernel::{BIND_SLICE, REFUSE_ID};

impl Daemon {
    /// If `name` is armored already, keeps its last good policy in force, with `error` logged
    /// against it and listed by `unitarmor status`; false if it has none.
    pub(super) fn keep_last_good(&mut self, name: &str, error: String) -> bool {
        let Some(p) = self.units.get_mut(name) else {
            return false;
        };
        error!(
            object_systemd_unit = name,
            unitarmor_unit = name,
            "{name}: {error}; keeping the last good policy ({} rules)",
            p.policy.rules.len()
        );
        p.errors = vec![error];
        true
    }

    /// Binds unit `name` (its cgroups at `expected` and below, and those created from now on)
    /// to the policy that refuses everything: it has no policy id of its own, and must not run
    /// unarmored. The next pass tries again.
    pub(super) fn refuse_for_now(&mut self, name: &str, expected: &str) {
        let refusing = compile::refuse_all(&crate::policy::Policy::default());
        if let Err(e) = self.kernel.install_policy(REFUSE_ID, &refusing) {
            error!(object_systemd_unit = name, "{name}: {e:#}");
        }
        let user = crate::systemd::is_user_unit(name);
        let flags = if bind_order(name) < 2 {
            BIND_SLICE
        } else if user {
            crate::kernel::BIND_USER
        } else {
            0
        };
        if let Err(e) = self.kernel.set_expected(expected, REFUSE_ID, flags) {
            error!(object_systemd_unit = name, "{name}: {e:#}");
        }
        if keyed_by_name(name) {
            if let Err(e) = self.kernel.set_expected(name, REFUSE_ID, 0) {
                error!(object_systemd_unit = name, "{name}: {e:#}");
            }
        }
        let bindings = if user {
            super::cgroups::user_tree_bindings(expected, REFUSE_ID)
        } else {
            cgroup_bindings(expected, REFUSE_ID)
        };
        for (cgid, binding) in bindings {
            if let Err(e) = self.kernel.bind(cgid, binding) {
                error!(object_systemd_unit = name, "{name}: {e:#}");
            }
        }
        self.refused.insert(name.to_string(), expected.to_string());
    }
}
