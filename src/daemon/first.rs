//! A unit's first policy waits until its files are whole. Read by a pass while one of them was
//! being written, it is not installed: installing it writes the unit's entry in `expected`
//! over the pending mark that holds the unit's new cgroups (bpf/pending.h), which would let
//! them go under part of what the files say. The unit stays as it was (unarmored, covered by
//! its template, exempt or refused) and its cgroups keep waiting; the pass that the file's
//! close starts installs the whole policy, and a tick starts one if no event does.

use std::collections::BTreeMap;
use std::path::PathBuf;

use tracing::info;

use super::discover::{parent_slice, Candidate};
use super::Daemon;
use crate::kernel::pending::{monotonic_ns, read_mid_write};

/// What a pass read a unit's policy from, and when it began (monotonic ns).
#[derive(Clone, Debug)]
pub(super) struct Read {
    pub(super) began: u64,
    /// The unit's slices' files and its own.
    pub(super) files: Vec<PathBuf>,
}

/// Units whose first policy waits, with the names of the pending marks that hold them and the
/// files their policy is read from.
#[derive(Default)]
pub(super) struct Held {
    units: BTreeMap<String, (Vec<String>, Vec<PathBuf>)>,
}

impl Held {
    pub(super) fn contains(&self, name: &str) -> bool {
        self.units.contains_key(name)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.units.is_empty()
    }
}

impl Daemon {
    /// Whether unit `c`'s first policy, merged from `files` (its slices' and its own) by a
    /// pass that began at `began` (monotonic ns), must wait: a pending mark over them was
    /// written or closed since, or one of them is open for writing. Remembers it if so.
    pub(super) fn hold_first(&mut self, c: &Candidate, files: Vec<PathBuf>, began: u64) -> bool {
        let keys = mark_keys(&c.name, &c.slice);
        if !self.mid_write(&keys, &files, began) {
            self.held.units.remove(&c.name);
            return false;
        }
        if !self.held.contains(&c.name) {
            info!(
                object_systemd_unit = c.name.as_str(),
                "{}: its files were being written as they were read; armored once they are \
                 closed",
                c.name
            );
        }
        self.held.units.insert(c.name.clone(), (keys, files));
        true
    }

    /// A unit armored (or disarmed) since: nothing holds it any more.
    pub(super) fn unhold(&mut self, name: &str) {
        self.held.units.remove(name);
    }

    /// Every tick: once a pass begun now would read a held unit's files whole and no event
    /// has started one (a writer held open past the time it is believed, a close inotify
    /// missed), makes one.
    pub(super) fn retry_held(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let now = monotonic_ns();
        let ready = self
            .held
            .units
            .values()
            .any(|(keys, files)| !self.mid_write(keys, files, now));
        if ready {
            self.held.units.clear();
            self.files_changed(&mut None);
        }
    }

    /// Whether a pass that began at `began` may have read `files` mid-write, by the pending
    /// marks under `keys`.
    fn mid_write(&self, keys: &[String], files: &[PathBuf], began: u64) -> bool {
        let stamps: Vec<u64> = keys
            .iter()
            .filter_map(|k| self.kernel.mark_stamp(k))
            .collect();
        let Some(&latest) = stamps.iter().max() else {
            return false;
        };
        // Opening the files costs more than the marks' lookups: only with a mark recent
        // enough for an open writer to count.
        read_mid_write(latest, began, false)
            || (read_mid_write(latest, began, true)
                && files.iter().any(|f| self.kernel.open_for_writing(f)))
    }
}

/// The names whose pending marks hold a new cgroup of unit `name` in slice `slice` (as the
/// cgroup_mkdir program looks them up, bpf/binding.h) or whose drop-ins its policy is read
/// from: its own, its template's or its dashed prefixes', its type's (`service` for
/// `service.d/`), and those of every slice above it.
pub(super) fn mark_keys(name: &str, slice: &str) -> Vec<String> {
    let mut keys = super::pending::keys_by_name(name);
    if let Some((_, kind)) = name.rsplit_once('.') {
        keys.push(kind.to_string());
    }
    let mut s = if name.ends_with(".slice") {
        parent_slice(name)
    } else {
        slice.to_string()
    };
    while !s.is_empty() && !keys.contains(&s) {
        keys.push(s.clone());
        if s == "-.slice" {
            break;
        }
        s = parent_slice(&s);
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_is_held_by_its_names_its_type_and_its_slices() {
        assert_eq!(
            mark_keys("app.service", "a-b.slice"),
            ["app.service", "service", "a-b.slice", "a.slice", "-.slice"]
        );
        assert_eq!(
            mark_keys("web@1.service", "system-web.slice"),
            [
                "web@.service",
                "web@1.service",
                "service",
                "system-web.slice",
                "system.slice",
                "-.slice"
            ]
        );
        assert_eq!(
            mark_keys("run-u7.scope", "system.slice"),
            [
                "run-u7.scope",
                "run-.scope",
                "scope",
                "system.slice",
                "-.slice"
            ]
        );
        // A slice by its own name and its parents'.
        assert_eq!(
            mark_keys("a-b.slice", ""),
            ["a-b.slice", "a-.slice", "slice", "a.slice", "-.slice"]
        );
        assert_eq!(mark_keys("-.slice", ""), ["-.slice", "slice"]);
    }
}
