//! What the kernel counts per unit and per rule: events lost to a full ring buffer, repeated
//! events it counted instead of sending (bpf/report.h: ua_emit), and how often each rule
//! decided (ua_count).

use std::collections::HashMap;

use libbpf_rs::{MapCore, MapFlags};

use super::skel::types::{ua_counters, ua_hits_key, ua_quiet_key, ua_repeat_key};
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

    /// How often each rule decided, per (policy, rule, class), summed over the CPUs: since
    /// the policy was loaded (a changed policy has a new id). When the kernel's table is
    /// full ([`abi::HITS_MAX`] entries), rules that had not decided before are not counted.
    pub fn rule_hits(&self) -> HashMap<(u32, u32, u8), Hits> {
        let map = &self.skel.maps.hits;
        let mut out = HashMap::new();
        for k in map.keys() {
            let Some(key) = abi::read_pod::<ua_hits_key>(&k) else {
                continue;
            };
            let Ok(Some(cpus)) = map.lookup_percpu(&k, MapFlags::ANY) else {
                continue;
            };
            let mut h = Hits::default();
            for v in cpus {
                for (i, n) in h.0.iter_mut().enumerate() {
                    let word = v.get(i * 8..i * 8 + 8).and_then(|b| b.try_into().ok());
                    *n += word.map(u64::from_ne_bytes).unwrap_or(0);
                }
            }
            out.insert((key.policy, key.rule, key.class), h);
        }
        out
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
        let map = &self.skel.maps.hits;
        for k in map.keys() {
            if abi::read_pod::<ua_hits_key>(&k).is_some_and(|key| key.policy == id) {
                let _ = map.delete(&k);
            }
        }
    }
}

/// How often one rule decided: denied, would have denied (`ArmorMode=audit`), audited,
/// allowed (bpf/unitarmor.h: struct ua_hits, UA_HIT_*).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hits(pub [u64; 4]);

impl Hits {
    pub fn denied(&self) -> u64 {
        self.0[0]
    }
    pub fn would_deny(&self) -> u64 {
        self.0[1]
    }
    pub fn audited(&self) -> u64 {
        self.0[2]
    }
    pub fn allowed(&self) -> u64 {
        self.0[3]
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
