//! The `peers` map: for each installed policy with `allow signal` or `allow ptrace` rules, the
//! cgroup ids of the units it names. A unit gets a new cgroup (a new id) each time it starts,
//! so the daemon looks again every second; until then a restarted peer is out of reach (fail
//! closed: a signal refused, never one allowed to the wrong process).

use libbpf_rs::{MapCore, MapFlags};

use super::skel::types::ua_peer_key;
use super::{bytes, Kernel};

/// One unit a policy may reach, and the cgroup id the map holds for it now.
#[derive(Clone, Debug)]
pub(super) struct Peer {
    unit: String,
    bits: u32,
    cgid: Option<u64>,
}

impl Kernel {
    /// Notes policy `id`'s peers (unit name → `PEER_*` bits); the next refresh writes them.
    pub(super) fn note_peers(&self, id: u32, peers: &std::collections::BTreeMap<String, u32>) {
        self.forget_peers(id);
        if peers.is_empty() {
            return;
        }
        let list = peers
            .iter()
            .map(|(unit, bits)| Peer {
                unit: unit.clone(),
                bits: *bits,
                cgid: None,
            })
            .collect();
        self.peers.borrow_mut().insert(id, list);
    }

    /// Removes policy `id`'s entries from the map.
    pub(super) fn forget_peers(&self, id: u32) {
        if let Some(list) = self.peers.borrow_mut().remove(&id) {
            for p in list {
                if let Some(cgid) = p.cgid {
                    self.write_peer(id, cgid, None);
                }
            }
        }
    }

    /// Looks each peer's cgroup up again (`cgroup_of`: a unit name to its cgroup id, if it
    /// runs) and brings the map up to date.
    pub fn refresh_peers(&self, cgroup_of: impl Fn(&str) -> Option<u64>) {
        let mut all = self.peers.borrow_mut();
        for (id, list) in all.iter_mut() {
            for p in list.iter_mut() {
                let now = cgroup_of(&p.unit);
                if now == p.cgid {
                    continue;
                }
                if let Some(old) = p.cgid {
                    self.write_peer(*id, old, None);
                }
                if let Some(new) = now {
                    self.write_peer(*id, new, Some(p.bits));
                }
                p.cgid = now;
            }
        }
    }

    fn write_peer(&self, policy: u32, cgid: u64, bits: Option<u32>) {
        let key = ua_peer_key {
            policy,
            pad: 0,
            cgid,
        };
        let m = &self.skel.maps.peers;
        let r = match bits {
            Some(b) => m.update(bytes(&key), bytes(&b), MapFlags::ANY),
            None => m.delete(bytes(&key)),
        };
        if let Err(e) = r {
            if bits.is_some() {
                tracing::warn!("policy {policy}: writing a peer unit's cgroup: {e}");
            }
        }
    }
}
