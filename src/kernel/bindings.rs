//! The binding maps: which policy a cgroup created at a path gets (`expected`), which policy
//! each cgroup has (`bound`), and the per-tree counts of sub-cgroups the budgets are kept in.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, MapFlags};

use super::skel::types::{ua_binding, ua_expect};
use super::{abi, bytes, cgroup_key, Binding, Kernel};

/// Slots of the programs' counting filter in front of `bound` (bpf/maps.h: UA_BOUND_FILTER).
pub(super) const FILTER_SLOTS: usize = 65536;

impl Kernel {
    /// Adds `n` to the filter's count for `cgroup_id`'s slot. Atomic, as the programs' own
    /// changes of it are: a lost change could leave a bound cgroup's slot at zero, which the
    /// programs read as "not bound".
    fn filter_add(&self, cgroup_id: u64, n: i32) {
        let slot = (cgroup_id as usize) & (FILTER_SLOTS - 1);
        // SAFETY: `bound_filter` points to FILTER_SLOTS aligned u32 counters in the .bss
        // mapping, which lives as long as the skeleton; they are only ever changed atomically.
        let counter = unsafe { AtomicU32::from_ptr(self.bound_filter.add(slot)) };
        counter.fetch_add(n as u32, Ordering::SeqCst);
    }

    /// Cgroups created at `path` from now on get policy `id` (`flags`: [`BIND_SLICE`] for a
    /// cgroup that holds units). A template's name (`foo@.service`, no leading '/') as `path`
    /// binds its instances wherever their slice is.
    pub fn set_expected(&self, path: &str, id: u32, flags: u32) -> Result<()> {
        let key = cgroup_key(path)?;
        let value = ua_expect {
            policy: id,
            flags,
            ..Default::default()
        };
        self.skel
            .maps
            .expected
            .update(&key, bytes(&value), MapFlags::ANY)
            .context("writing the expected map")
    }

    pub fn remove_expected(&self, path: &str) {
        if let Ok(key) = cgroup_key(path) {
            let _ = self.skel.maps.expected.delete(&key);
        }
    }

    /// Binds an existing cgroup (one update: a running unit switches policy atomically).
    pub fn bind(&self, cgroup_id: u64, b: Binding) -> Result<()> {
        self.note_released(cgroup_id);
        let value = ua_binding {
            root: b.root,
            policy: b.policy,
            flags: b.flags,
        };
        // Counted before it is inserted (bpf/maps.h: bind_cgroup()); a binding that replaces
        // one keeps the count the first added.
        let map = &self.skel.maps.bound;
        self.filter_add(cgroup_id, 1);
        let written = match map.update(bytes(&cgroup_id), bytes(&value), MapFlags::NO_EXIST) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == libbpf_rs::ErrorKind::AlreadyExists => {
                map.update(bytes(&cgroup_id), bytes(&value), MapFlags::EXIST)
            }
            Err(e) => Err(e),
        };
        self.filter_add(cgroup_id, -1);
        written.context("writing the bound map")
    }

    /// Moves every cgroup bound to policy `old` to policy `new`, keeping its unit tree, and
    /// returns how many were moved. A cgroup created meanwhile below one of them may have
    /// inherited `old` after the bindings were read: callers repeat until none is left.
    pub fn rebind(&self, old: u32, new: u32) -> usize {
        let mut moved = 0;
        for (cgid, b) in self.bindings() {
            if b.policy == old && self.bind(cgid, Binding { policy: new, ..b }).is_ok() {
                moved += 1;
            }
        }
        moved
    }

    pub fn unbind(&self, cgroup_id: u64) {
        self.note_released(cgroup_id);
        // Forgotten by the filter only once it is gone.
        if self.skel.maps.bound.delete(bytes(&cgroup_id)).is_ok() {
            self.filter_add(cgroup_id, -1);
        }
    }

    /// Recounts the sub-cgroups of every unit tree from `bound` (the budgets of
    /// bpf/unitarmor.h's ua_config): cgroups bound by the daemon (at its start, or re-bound)
    /// and cgroups it unbound are then counted right, and a count a concurrent mkdir or rmdir
    /// made drift is brought back.
    pub fn recount_trees(&self) {
        // The kernel changes these counters while the walk runs (a mkdir counts itself in
        // inode_mkdir, before its binding exists): a counter that changed meanwhile is left
        // as the kernel keeps it, so that a burst of mkdirs never has its count lowered
        // under it and gets past its budget. It is corrected at a quieter pass.
        let before = self.tree_sizes();
        let total_before = self.sub_total();
        let mut per_tree: HashMap<u64, u32> = HashMap::new();
        let mut total = 0u32;
        for (cgid, b) in self.bindings() {
            if b.root != cgid {
                *per_tree.entry(b.root).or_default() += 1;
                total += 1;
            }
        }
        let after = self.tree_sizes();
        let map = &self.skel.maps.tree_size;
        for (root, n) in &after {
            if !per_tree.contains_key(root) && before.get(root) == Some(n) {
                let _ = map.delete(bytes(root));
            }
        }
        for (root, n) in per_tree {
            if before.get(&root) == after.get(&root) {
                let _ = map.update(bytes(&root), bytes(&n), MapFlags::ANY);
            }
        }
        if total_before == self.sub_total() {
            let _ = self
                .skel
                .maps
                .sub_total
                .update(bytes(&0u32), bytes(&total), MapFlags::ANY);
        }
    }

    /// The kernel's sub-cgroup count per unit tree root.
    fn tree_sizes(&self) -> HashMap<u64, u32> {
        let map = &self.skel.maps.tree_size;
        map.keys()
            .filter_map(|k| {
                let v = map.lookup(&k, MapFlags::ANY).ok()??;
                Some((
                    u64::from_ne_bytes(k.as_slice().try_into().ok()?),
                    u32::from_ne_bytes(v.as_slice().get(..4)?.try_into().ok()?),
                ))
            })
            .collect()
    }

    /// The kernel's count of all sub-cgroups together.
    fn sub_total(&self) -> Option<u32> {
        let v = self
            .skel
            .maps
            .sub_total
            .lookup(bytes(&0u32), MapFlags::ANY)
            .ok()??;
        Some(u32::from_ne_bytes(v.as_slice().get(..4)?.try_into().ok()?))
    }

    /// Every bound cgroup and its binding.
    pub fn bindings(&self) -> HashMap<u64, Binding> {
        let map = &self.skel.maps.bound;
        map.keys()
            .filter_map(|k| {
                let v = map.lookup(&k, MapFlags::ANY).ok()??;
                let b: ua_binding = abi::read_pod(&v)?;
                Some((
                    u64::from_ne_bytes(k.try_into().ok()?),
                    Binding {
                        policy: b.policy,
                        root: b.root,
                        flags: b.flags,
                    },
                ))
            })
            .collect()
    }

    /// What cgroup `cgroup_id` is bound to, if it is.
    pub fn binding(&self, cgroup_id: u64) -> Option<Binding> {
        let v = self
            .skel
            .maps
            .bound
            .lookup(bytes(&cgroup_id), MapFlags::ANY)
            .ok()??;
        let b: ua_binding = abi::read_pod(&v)?;
        Some(Binding {
            root: b.root,
            policy: b.policy,
            flags: b.flags,
        })
    }

    /// Notes `cgroup_id` if it is bound pending (bpf/pending.h): whatever binds or unbinds it
    /// now, its tasks may be stopped, waiting to be continued ([`Kernel::take_released`]).
    fn note_released(&self, cgroup_id: u64) {
        let was_pending = self
            .binding(cgroup_id)
            .is_some_and(|b| b.flags & super::pending::BIND_PENDING != 0);
        if was_pending {
            self.released.borrow_mut().push(cgroup_id);
        }
    }

    /// Whether a cgroup bound pending was bound or unbound since the last
    /// [`Kernel::take_released`].
    pub fn has_released(&self) -> bool {
        !self.released.borrow().is_empty()
    }

    /// The cgroups bound pending that were bound or unbound since the last call.
    pub fn take_released(&self) -> Vec<u64> {
        std::mem::take(&mut self.released.borrow_mut())
    }
}
