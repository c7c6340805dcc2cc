//! What the kernel counts per unit and per rule: events lost to a full ring buffer and
//! repeated events it counted instead of sending (bpf/path.h: ua_emit).

use std::collections::HashMap;

use libbpf_rs::{MapCore, MapFlags};

use super::skel::types::{ua_counters, ua_quiet_key, ua_repeat_key};
use super::{abi, bytes, Kernel};

impl Kernel {
    /// Events lost because the ring buffer was full, per cgroup id: (count, policy id).
    pub fn lost_events(&self) -> HashMap<u64, (u64, u32)> {
        let map = &self.skel.maps.counters;
        map.keys()
            .filter_map(|k| {
                let v = map.lookup(&k, MapFlags::ANY).ok()??;
                let c: ua_counters = abi::read_pod(&v)?;
                Some((u64::from_ne_bytes(k.try_into().ok()?), (c.lost, c.policy)))
            })
            .collect()
    }

    /// Drops the loss counter of a cgroup that is gone.
    pub fn forget_counters(&self, cgroup_id: u64) {
        let _ = self.skel.maps.counters.delete(bytes(&cgroup_id));
    }

    /// Repeated events the kernel counted instead of sending, per (policy, rule, class,
    /// verdict): totals since the policy was loaded.
    pub fn quiet_counts(&self) -> HashMap<(u32, u32, u8, u8), u64> {
        let map = &self.skel.maps.quiet;
        map.keys()
            .filter_map(|k| {
                let key: ua_quiet_key = abi::read_pod(&k)?;
                let v = map.lookup(&k, MapFlags::ANY).ok()??;
                let n = u64::from_ne_bytes(v.get(..8)?.try_into().ok()?);
                Some(((key.policy, key.rule, key.class, key.verdict), n))
            })
            .collect()
    }

    /// Drops the repeat counts of policy `id`, retired a tick ago (no hook can count for it).
    /// Its recent events go too, so that a later policy given the same id sends its first.
    pub fn forget_quiet(&self, id: u32) {
        let map = &self.skel.maps.quiet;
        for k in map.keys() {
            if abi::read_pod::<ua_quiet_key>(&k).is_some_and(|key| key.policy == id) {
                let _ = map.delete(&k);
            }
        }
        let map = &self.skel.maps.repeats;
        for k in map.keys() {
            if abi::read_pod::<ua_repeat_key>(&k).is_some_and(|key| key.policy == id) {
                let _ = map.delete(&k);
            }
        }
    }
}

/// A random 128-bit key for the kernel's hash of repeated events (bpf/path.h). If the kernel
/// gives no random bytes, no key (zero): the programs then send every event rather than use a
/// key a process could know.
pub(super) fn random_key() -> [u64; 2] {
    let mut buf = [0u8; 16];
    // SAFETY: the buffer is valid for writes of its length.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n != 16 {
        tracing::warn!("getrandom failed; repeated events are sent, not counted in the kernel");
        return [0, 0];
    }
    let (a, b) = buf.split_at(8);
    [
        u64::from_ne_bytes(a.try_into().unwrap_or_default()),
        u64::from_ne_bytes(b.try_into().unwrap_or_default()),
    ]
}
