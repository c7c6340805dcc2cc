//! The kernel side of units started while their files are written (bpf/pending.h): which
//! directories are unit and drop-in directories, whether the daemon runs, the pending marks in
//! `expected` and the cgroups bound pending.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, MapFlags, MapHandle};

use super::skel::types::{ua_expect, ua_file_id, ua_unit_dir, ua_unit_writer};
use super::{abi, bytes, Kernel};

/// A mark (bpf/unitarmor.h: UA_BIND_PENDING in `expected`), and a cgroup bound pending (the
/// same bit in `bound`).
pub const BIND_PENDING: u32 = 2;
/// A mark whose files are open for writing is cleared anyway once its last write or close is
/// this old: an open counted and never seen closed (two opens of one file of which only one
/// was counted) must not hold the unit's starts for ever.
const WRITERS_HELD_NS: u64 = 30_000_000_000;
/// How old the daemon lets a mark it keeps for a held unit get before it moves its stamp (the
/// programs honor a mark for 30 s after it).
const HOLD_REFRESH_NS: u64 = 10_000_000_000;

/// Slots of the programs' filter in front of `unit_dirs` (bpf/maps.h: UA_DIR_FILTER).
pub(super) const DIR_FILTER_SLOTS: usize = 65536;

const ALIVE: u32 = 0;
const MADE: u32 = 1;
const MARKS: u32 = 2;
const UNITS: u32 = 1;
const DROPINS: u32 = 2;

/// Which pending marks to clear.
#[derive(Clone, Copy, Debug)]
pub enum Clear {
    /// Those a pass over the files that began then (monotonic ns) has read: none of their
    /// files was written or closed since, and none is open for writing (or has been for too
    /// long, [`WRITERS_HELD_NS`]).
    ReadBy(u64),
    /// Those last written or closed [`WRITERS_HELD_NS`] or more before this (monotonic ns):
    /// a mark no pass followed (an open counted and never seen closed) holds no unit for
    /// ever.
    Stale(u64),
    /// Every one (the daemon stops: nothing will read them).
    All,
}

impl Clear {
    fn clears(self, e: &ua_expect) -> bool {
        match self {
            Clear::ReadBy(began) => {
                e.stamp < began && (e.writers == 0 || e.stamp + WRITERS_HELD_NS < began)
            }
            Clear::Stale(now) => e.stamp + WRITERS_HELD_NS < now,
            Clear::All => true,
        }
    }
}

/// Whether a pass that began at `began` (monotonic ns) may have read a unit's files in the
/// middle of a write, by the stamp of a pending mark over them and whether one of the files it
/// read is open for writing now (`open`): a write or close since the pass began, or a writer
/// still there, unless the mark is [`WRITERS_HELD_NS`] old (an open counted and never seen
/// closed holds nothing for ever, as for [`Clear::ReadBy`]).
pub fn read_mid_write(stamp: u64, began: u64, open: bool) -> bool {
    stamp >= began || (open && stamp.saturating_add(WRITERS_HELD_NS) >= began)
}

/// A directory whose writes make pending marks.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum UnitDir {
    /// A unit directory (`/etc/systemd/system`): a name written in it is its unit's.
    Units,
    /// A drop-in directory, and its unit's name.
    Dropins(String),
}

/// CLOCK_MONOTONIC in nanoseconds, the clock of `bpf_ktime_get_ns()`.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes the struct we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// The filter's slot for directories with inode number `ino`.
fn dir_slot(ino: u64) -> usize {
    (ino as usize) & (DIR_FILTER_SLOTS - 1)
}

/// The filter's slots of directories `gone` (were, or were to be, in the map) that no
/// directory `kept` (in the map now) needs.
fn slots_to_clear(
    gone: impl Iterator<Item = u64>,
    kept: impl Iterator<Item = u64>,
) -> HashSet<usize> {
    let kept: HashSet<usize> = kept.map(dir_slot).collect();
    gone.map(dir_slot).filter(|s| !kept.contains(s)).collect()
}

impl Kernel {
    /// Makes `dirs` (by device and inode as `stat` gives them, each with its path) the
    /// directories whose writes make pending marks; `current` is what was written last time
    /// (with the device number the programs see), and becomes `dirs`. False if a directory
    /// could not be written (the map refused it): a later call with the same `dirs` tries again.
    pub fn set_unit_dirs(
        &self,
        current: &mut HashMap<(u64, u64), (UnitDir, u32)>,
        dirs: HashMap<(u64, u64), (UnitDir, PathBuf)>,
    ) -> bool {
        let m = &self.skel.maps.unit_dirs;
        let key = |dev: u32, ino: u64| ua_file_id { ino, dev, pad: 0 };
        // The filter's slots are set first for every directory that will be there, and
        // cleared last for those gone: a directory in the map always has its slot set.
        let inos: Vec<u64> = dirs.keys().map(|&(_, ino)| ino).collect();
        for &ino in &inos {
            self.set_dir_slot(dir_slot(ino), 1);
        }
        // The map's key has the superblock's device, not stat's: two directories `stat` tells
        // apart (btrfs subvolumes) may share one. A key that a directory still listed uses
        // stays.
        let staying: HashSet<(u32, u64)> = current
            .iter()
            .filter(|(id, _)| dirs.contains_key(id))
            .map(|(&(_, ino), &(_, dev))| (dev, ino))
            .collect();
        for (&(_, ino), &(_, dev)) in current.iter().filter(|(id, _)| !dirs.contains_key(id)) {
            if !staying.contains(&(dev, ino)) {
                let _ = m.delete(bytes(&key(dev, ino)));
            }
        }
        let mut mounts = None;
        let mut whole = true;
        let mut next = HashMap::with_capacity(dirs.len());
        for (id, (what, path)) in dirs {
            if let Some((was, dev)) = current.get(&id) {
                if *was == what {
                    next.insert(id, (what, *dev));
                    continue;
                }
            }
            let mounts = mounts.get_or_insert_with(super::identity::mount_devs);
            let dev = super::identity::superblock_dev(&path, id.0, mounts);
            let mut value = ua_unit_dir::default();
            match &what {
                UnitDir::Units => value.kind = UNITS,
                UnitDir::Dropins(name) => {
                    value.kind = DROPINS;
                    if name.len() >= value.name.len() {
                        continue;
                    }
                    for (to, from) in value.name.iter_mut().zip(name.bytes()) {
                        *to = from as _;
                    }
                }
            }
            if m.update(bytes(&key(dev, id.1)), bytes(&value), MapFlags::ANY)
                .is_ok()
            {
                next.insert(id, (what, dev));
            } else {
                whole = false;
            }
        }
        let gone = current.keys().map(|&(_, ino)| ino).chain(inos);
        for slot in slots_to_clear(gone, next.keys().map(|&(_, ino)| ino)) {
            self.set_dir_slot(slot, 0);
        }
        *current = next;
        whole
    }

    /// Sets slot `slot` ([`dir_slot`]) of the filter in front of `unit_dirs` (bpf/maps.h:
    /// unit_dir_filter) to `v`. The map update or delete around it is a system call, which
    /// orders it with the programs' reads of the map.
    fn set_dir_slot(&self, slot: usize, v: u8) {
        // SAFETY: `dir_filter` points to DIR_FILTER_SLOTS bytes in the .bss mapping, which lives
        // as long as the skeleton; the programs only read them.
        unsafe { std::ptr::write_volatile(self.dir_filter.add(slot & (DIR_FILTER_SLOTS - 1)), v) };
    }

    /// A handle for [`write_alive`] from a thread of its own.
    pub fn pending_state(&self) -> Result<MapHandle> {
        MapHandle::try_from(&self.skel.maps.pending_state).context("opening pending_state")
    }

    /// Cgroups bound pending so far (a count the programs keep).
    pub fn pending_made(&self) -> u64 {
        self.pending_count(MADE)
    }

    /// Pending marks made so far (a count the programs keep).
    pub fn marks_made(&self) -> u64 {
        self.pending_count(MARKS)
    }

    fn pending_count(&self, which: u32) -> u64 {
        self.skel
            .maps
            .pending_state
            .lookup(bytes(&which), MapFlags::ANY)
            .ok()
            .flatten()
            .and_then(|v| abi::read_pod::<u64>(&v))
            .unwrap_or(0)
    }

    /// Removes the pending marks `which` says, except those under the names in `keep`;
    /// returns how many marks are left.
    pub fn clear_marks(&self, which: Clear, keep: &[String]) -> usize {
        let m = &self.skel.maps.expected;
        let keep: Vec<[u8; super::CGROUP_PATH_MAX]> = keep
            .iter()
            .filter_map(|k| super::cgroup_key(k).ok())
            .collect();
        let mark = |v: &[u8]| abi::read_pod::<ua_expect>(v).filter(|e| e.flags & BIND_PENDING != 0);
        let mut left = 0;
        for key in m.keys() {
            let Some(e) = m
                .lookup(&key, MapFlags::ANY)
                .ok()
                .flatten()
                .and_then(|v| mark(&v))
            else {
                continue;
            };
            if !which.clears(&e) || keep.iter().any(|k| k[..] == key[..]) {
                left += 1;
                continue;
            }
            // Taken in one step, and put back if a write refreshed it since it was read: a
            // lookup then a delete would lose that write's mark.
            let Ok(Some(v)) = m.lookup_and_delete(&key) else {
                continue;
            };
            if mark(&v).is_some_and(|e| !which.clears(&e)) {
                let _ = m.update(&key, &v, MapFlags::NO_EXIST);
                left += 1;
            }
        }
        left
    }

    /// The stamp of the pending mark under `key` (a unit's name, a type's or a slice's), if
    /// there is one.
    pub fn mark_stamp(&self, key: &str) -> Option<u64> {
        let e = self.expected_entry(key)?;
        (e.flags & BIND_PENDING != 0).then_some(e.stamp)
    }

    /// The `expected` entry under `key` (a cgroup path or a name), if any.
    fn expected_entry(&self, key: &str) -> Option<ua_expect> {
        let k = super::cgroup_key(key).ok()?;
        abi::read_pod(&self.skel.maps.expected.lookup(&k, MapFlags::ANY).ok()??)
    }

    /// Keeps a pending mark under `name` that the programs honor (a unit whose first policy
    /// waits for its files, daemon/first.rs, keeps waiting whichever mark holds it): made if
    /// there is none, its stamp moved to `now` once it is [`HOLD_REFRESH_NS`] old. Never over
    /// an entry that is not a mark. Returns, if it wrote, the stamp it replaced (`None` for a
    /// mark it made).
    pub fn hold_mark(&self, name: &str, now: u64) -> Option<Option<u64>> {
        let Ok(k) = super::cgroup_key(name) else {
            return None;
        };
        let m = &self.skel.maps.expected;
        let found = self.expected_entry(name);
        let (e, flags) = match found {
            None => (
                ua_expect {
                    policy: super::REFUSE_ID,
                    flags: BIND_PENDING,
                    stamp: now,
                    ..Default::default()
                },
                MapFlags::NO_EXIST,
            ),
            Some(e)
                if e.flags & BIND_PENDING != 0 && e.stamp.saturating_add(HOLD_REFRESH_NS) < now =>
            {
                // The whole value: a writer's count the programs change in between is lost
                // (a count off by one, which the 30 s a writer is believed bounds).
                (ua_expect { stamp: now, ..e }, MapFlags::EXIST)
            }
            Some(_) => return None,
        };
        // Not counted in `pending_state`: a mark kept is left by each look, so the looks go on
        // until it is cleared.
        m.update(&k, bytes(&e), flags)
            .ok()
            .map(|()| found.map(|f| f.stamp))
    }

    /// Whether the programs count the file at `path` as open for writing now (bpf/pending.h:
    /// `unit_writes`, an inode's storage, looked up by a descriptor of it).
    pub fn open_for_writing(&self, path: &std::path::Path) -> bool {
        use std::os::unix::fs::OpenOptionsExt;
        use std::os::unix::io::AsRawFd;
        // A path descriptor: no open of the file itself (a device's, a FIFO's), and the
        // kernel's lookup by descriptor takes one (fget_raw).
        let Ok(file) = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
            .open(path)
        else {
            return false;
        };
        let fd: i32 = file.as_raw_fd();
        self.skel
            .maps
            .unit_writes
            .lookup(bytes(&fd), MapFlags::ANY)
            .ok()
            .flatten()
            .and_then(|v| abi::read_pod::<ua_unit_writer>(&v))
            .is_some_and(|w| w.writers > 0)
    }

    /// What `expected` says for `key` (a cgroup path or a unit's name): policy and flags.
    pub fn expected_at(&self, key: &str) -> Option<(u32, u32)> {
        self.expected_entry(key).map(|e| (e.policy, e.flags))
    }
}

/// The cgroups the pinned `bound` map at `path` (an earlier daemon's) holds waiting, if there
/// is one.
pub(super) fn waiting_in_pinned(path: &std::path::Path) -> Vec<u64> {
    let Ok(map) = MapHandle::from_pinned_path(path) else {
        return Vec::new();
    };
    map.keys()
        .filter(|k| {
            map.lookup(k, MapFlags::ANY)
                .ok()
                .flatten()
                .and_then(|v| abi::read_pod::<super::skel::types::ua_binding>(&v))
                .is_some_and(|b| b.flags & BIND_PENDING != 0)
        })
        .filter_map(|k| abi::read_pod::<u64>(&k))
        .collect()
}

/// Writes into `pending_state` that the daemon runs for `for_ns` more (0: it stops now).
pub fn write_alive(state: &MapHandle, for_ns: u64) {
    let until = if for_ns == 0 {
        0
    } else {
        monotonic_ns().saturating_add(for_ns)
    };
    let _ = state.update(bytes(&ALIVE), bytes(&until), MapFlags::ANY);
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn a_write_since_the_pass_began_or_a_writer_left_means_mid_write() {
        let began = 100 * S;
        // Written and closed before the pass began, nobody writing: read whole.
        assert!(!read_mid_write(began - 1, began, false));
        // Written or closed as or after it began.
        assert!(read_mid_write(began, began, false));
        assert!(read_mid_write(began + S, began, false));
        // A file it read is still open for writing.
        assert!(read_mid_write(began - S, began, true));
        assert!(read_mid_write(began - WRITERS_HELD_NS, began, true));
        // ... unless the mark has not moved for longer than a writer is believed.
        assert!(!read_mid_write(began - WRITERS_HELD_NS - 1, began, true));
        // A mark made at boot (a small stamp) does not wrap.
        assert!(!read_mid_write(0, began, false));
        assert!(read_mid_write(u64::MAX - 1, began, true));
    }

    /// A slot is cleared only when no directory left in the map falls in it: a zero makes the
    /// programs skip every write in the directories of that slot.
    #[test]
    fn the_filter_keeps_every_slot_a_listed_directory_needs() {
        let n = DIR_FILTER_SLOTS as u64;
        // 7 and 7 + n share a slot; 9 is alone; 12 stays.
        let clear = slots_to_clear([7, 9, 12].into_iter(), [7 + n, 12].into_iter());
        assert_eq!(clear, HashSet::from([9]));
        // Nothing gone, nothing cleared; everything gone, every slot.
        assert!(slots_to_clear([].into_iter(), [1, 2].into_iter()).is_empty());
        assert_eq!(
            slots_to_clear([1, 2 + n].into_iter(), [].into_iter()),
            HashSet::from([1, 2])
        );
    }
}
