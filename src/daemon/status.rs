//! The status the D-Bus API reports (api.rs): published by the main loop at the end of work
//! that changed it, and when a call asks for it; the rule rows only for a call that asks for
//! them.

use std::collections::HashMap;
use std::time::Instant;

use super::Daemon;
use crate::api::{UnitStatus, Usage, MAP_MEMORY};
use crate::compile;
use crate::kernel;

impl Daemon {
    /// Notes that what `unitarmor status` shows has changed; [`Daemon::flush_status`]
    /// publishes it.
    pub(super) fn status_changed(&mut self) {
        self.status_stale = true;
    }

    /// Publishes the status if it changed since it was last published.
    pub(super) fn flush_status(&mut self) {
        if self.status_stale {
            self.publish_status(false);
        }
    }

    /// Whether the last publication has the rule rows.
    pub(super) fn rows_published(&self) -> bool {
        self.status.lock().is_ok_and(|s| s.rules.is_some())
    }

    /// Publishes the status afresh: the units and the tables' use, and the rule rows if
    /// `rules` (api.rs: `Rules`; otherwise the rows of the last publication are dropped).
    pub(super) fn publish_status(&mut self, rules: bool) {
        self.status_stale = false;
        self.published_at = Instant::now();
        let bindings = self.kernel.bindings();
        let mut by_policy: HashMap<u32, Vec<u64>> = HashMap::new();
        for (cgid, b) in &bindings {
            by_policy.entry(b.policy).or_default().push(*cgid);
        }
        let list = self
            .units
            .iter()
            .map(|(name, a)| {
                let cgroups = by_policy.remove(&a.id).unwrap_or_default();
                UnitStatus {
                    unit: name.clone(),
                    mode: a.policy.mode.as_str().to_string(),
                    policy_id: a.id,
                    cgroup_path: a.expected.clone(),
                    cgroup_ids: cgroups,
                    rules: a.policy.rules.len() as u32,
                    denied: a.denied,
                    audited: a.audited,
                    lost: a.lost,
                    errors: a.errors.join("\n"),
                }
            })
            .chain(self.covered.iter().filter_map(|(name, (template, path))| {
                // Counted under the template, whose policy decides for it.
                let t = self.units.get(template)?;
                Some(UnitStatus {
                    unit: name.clone(),
                    mode: t.policy.mode.as_str().to_string(),
                    policy_id: t.id,
                    cgroup_path: path.clone(),
                    cgroup_ids: Vec::new(),
                    rules: t.policy.rules.len() as u32,
                    denied: 0,
                    audited: 0,
                    lost: 0,
                    errors: String::new(),
                })
            }))
            .collect();
        let usage = self.usage(&bindings);
        let (rules, counters) = if rules {
            let (rows, counters) = self.rule_rows();
            (Some(rows), counters)
        } else {
            (None, self.kernel.rule_hits().len())
        };
        let mut usage = usage;
        usage.push(Usage {
            name: "rule_counters".to_string(),
            used: counters as u64,
            limit: kernel::abi::HITS_MAX as u64,
        });
        // What all of the maps hold in the kernel (no limit of its own: the maps' sizes are).
        usage.extend(self.kernel.map_memory().map(|bytes| Usage {
            name: MAP_MEMORY.to_string(),
            used: bytes.div_ceil(1024),
            limit: 0,
        }));
        if let Ok(mut s) = self.status.lock() {
            s.units = list;
            s.usage = usage;
            s.rules = rules;
        }
    }

    /// Use of the kernel's fixed-size tables, from what the daemon keeps and the `bindings`
    /// its caller read (`bound` is walked once per publication).
    fn usage(&self, bindings: &HashMap<u64, kernel::Binding>) -> Vec<Usage> {
        let limits = self.kernel.limits();
        let loaded = || {
            self.units
                .values()
                .map(|a| &a.loaded)
                .chain(self.retiring.iter().map(|r| &r.1))
        };
        let slots = self.slots_in_use();
        let sub_cgroups = bindings.iter().filter(|(id, b)| b.root != **id).count();
        [
            ("policy_slots", slots.len(), limits.policies),
            ("bound_cgroups", bindings.len(), limits.bound),
            ("sub_cgroups", sub_cgroups, limits.sub_cgroups),
            (
                "expected_paths",
                self.kernel.expected_entries(),
                limits.expected,
            ),
            (
                "dfa_cells",
                self.kernel.cells_used().0 as usize,
                limits.cells,
            ),
            (
                "accepting_states",
                loaded().map(|l| l.accept.len()).sum::<usize>()
                    + compile::protections().accept.len(),
                limits.accept,
            ),
        ]
        .into_iter()
        .map(|(name, used, limit)| Usage {
            name: name.to_string(),
            used: used as u64,
            limit: limit.into(),
        })
        .collect()
    }
}
