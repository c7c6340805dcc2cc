//! How full the kernel's fixed-size maps are, for `unitarmor status` (each limit is read from
//! the loaded map, so it follows bpf/maps.h).

use libbpf_rs::MapCore;

use super::{Kernel, MAX_POLICIES, SUB_CGROUPS_MAX};

/// The capacities of the tables the daemon and the binding programs fill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Policy ids (1 to [`MAX_POLICIES`] - 2; the last is [`super::REFUSE_ID`]).
    pub policies: u32,
    /// Cgroups bound to a policy (`bound`).
    pub bound: u32,
    /// Sub-cgroups of all unit trees together in `bound` (the rest is kept for units).
    pub sub_cgroups: u32,
    /// Cgroup paths and template names armored units are bound at (`expected`).
    pub expected: u32,
    /// Packed DFA transitions of all policies (`cells`).
    pub cells: u32,
    /// Accepting DFA states of all policies (`accept`).
    pub accept: u32,
}

impl Kernel {
    pub fn limits(&self) -> Limits {
        let m = &self.skel.maps;
        Limits {
            policies: MAX_POLICIES - 2,
            bound: m.bound.max_entries(),
            sub_cgroups: SUB_CGROUPS_MAX,
            expected: m.expected.max_entries(),
            cells: m.cells.max_entries(),
            accept: m.accept.max_entries(),
        }
    }

    /// The kernel memory the programs' maps hold, in bytes, as the kernel accounts it (the
    /// `memlock:` line of each map's descriptor in /proc/self/fdinfo: preallocated arrays and
    /// hashes at their full size, the others as they grow); None if it cannot be read.
    pub fn map_memory(&self) -> Option<u64> {
        use libbpf_rs::skel::Skel;
        use std::os::fd::{AsFd, AsRawFd};
        let mut total = 0;
        for map in self.skel.object().maps() {
            let fd = map.as_fd().as_raw_fd();
            let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).ok()?;
            total += info
                .lines()
                .find_map(|l| l.strip_prefix("memlock:"))
                .and_then(|v| v.trim().parse::<u64>().ok())?;
        }
        Some(total)
    }

    /// Entries in `expected`: one key walk over as many entries as there are armored units
    /// with a policy slot (and their templates' names).
    pub fn expected_entries(&self) -> usize {
        self.skel.maps.expected.keys().count()
    }
}
