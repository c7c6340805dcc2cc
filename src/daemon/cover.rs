//! Instances covered by their template: an instance whose policy is its template's to the
//! rule, below the template's slice, runs under the template's policy and takes no slot.

use std::path::Path;
use std::time::Instant;

use tracing::info;

use super::discover::{expected_path, slice_layers, template_of, DiskPass};
use super::{good, Daemon};
use crate::policy::named::Lookup;
use crate::policy::resolve;
use crate::policy::specifiers::UnitName;
use crate::policy::Diagnostics;

impl Daemon {
    /// The armored template whose policy already covers instance `name`: the instance's
    /// policy is the template's to the rule (no instance-dependent specifier, no drop-in of
    /// its own) and its cgroup is below the template's slice, where `cgroup_mkdir` binds it
    /// to the template's policy. Such an instance needs no policy slot of its own, so any
    /// number of them can run at once.
    pub(super) fn covering_template(
        &self,
        name: &str,
        policy: &crate::policy::Policy,
        expected: &str,
    ) -> Option<String> {
        let template = template_of(name)?;
        let t = self.units.get(&template)?;
        (*t.policy == *policy
            && t.errors.is_empty()
            && expected.starts_with(&format!("{}/", t.expected)))
        .then_some(template)
    }

    /// For a newly loaded instance of an armored template: whether its files on disk show it
    /// runs under the template's policy (then it is recorded so, without asking systemd).
    pub(super) fn cover_from_disk(&mut self, name: &str) -> bool {
        let mut disk = DiskPass::one();
        let c = super::sync::disk_candidate(name, &mut disk);
        let mut diags = Diagnostics::default();
        let policy = resolve::merge_layers(
            &Lookup::system(),
            &slice_layers(&c.slice, &mut disk),
            &c.files,
            Some(&UnitName::new(name)),
            &mut diags,
        );
        if diags.errors().next().is_some() {
            return false;
        }
        let expected = expected_path(&c);
        match self.covering_template(name, &policy, &expected) {
            Some(template) => {
                self.cover(name, template, expected);
                true
            }
            None => false,
        }
    }

    /// Records that `name` runs under `template`'s policy. If it had a policy of its own, its
    /// cgroups move to the template's (one map update each: never unbound) and its slot is
    /// retired.
    pub(super) fn cover(&mut self, name: &str, template: String, expected: String) {
        // The template's policy is its last good one now.
        good::forget(Path::new(good::DIR), name);
        if let Some(old) = self.units.remove(name) {
            let new = self.units[&template].id;
            for _ in 0..8 {
                if self.kernel.rebind(old.id, new) == 0 {
                    break;
                }
            }
            self.kernel.remove_expected(&old.expected);
            self.retiring.push((old.id, old.loaded, Instant::now()));
            info!(
                object_systemd_unit = name,
                "{name}: runs under {template}'s policy (the same rules)"
            );
            self.status_changed();
        }
        // Listed by the next tick's status (within a second): publishing here, once per
        // instance, would cost a pass over `bound` per instance as thousands start.
        self.covered.insert(name.to_string(), (template, expected));
    }
}
