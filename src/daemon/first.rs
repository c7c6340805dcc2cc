//! A unit's first policy waits until its files are whole. Read by a pass while one of them was
//! being written, it is not installed: installing it writes the unit's entry in `expected`
//! over the pending mark that holds the unit's new cgroups (bpf/pending.h), which would let
//! them go under part of what the files say. The unit stays as it was (unarmored, covered by
//! its template, exempt or refused) and its cgroups keep waiting; the pass that the file's
//! close starts installs the whole policy, and a tick starts one if no event does.

use std::collections::BTreeMap;
use std::path::PathBuf;

use tracing::info;

use super::discover::Candidate;
use super::Daemon;
use crate::kernel::pending::{monotonic_ns, read_mid_write};

/// What a pass read a unit's policy from, and when it began (monotonic ns).
#[derive(Clone, Debug)]
pub(super) struct Read {
    pub(super) began: u64,
    /// The unit's slices' files and its own.
    pub(super) files: Vec<PathBuf>,
}

/// A held unit: the names of the pending marks over it and the files its policy is read from;
/// the stamp the daemon last wrote into the mark under its name, and the last stamp the
/// programs wrote there (a write's or a close's), which that replaced.
struct Hold {
    keys: Vec<String>,
    files: Vec<PathBuf>,
    ours: Option<u64>,
    theirs: Option<u64>,
}

/// Units whose first policy waits.
#[derive(Default)]
pub(super) struct Held {
    units: BTreeMap<String, Hold>,
}

impl Held {
    pub(super) fn contains(&self, name: &str) -> bool {
        self.units.contains_key(name)
    }

    pub(super) fn names(&self) -> Vec<String> {
        self.units.keys().cloned().collect()
    }

    /// After a pass over every unit: forgets the units it did not find armored.
    pub(super) fn keep_only(&mut self, armored: &std::collections::HashSet<&str>) {
        self.units.retain(|n, _| armored.contains(n.as_str()));
    }
}

impl Daemon {
    /// Whether unit `c`'s first policy, merged from `files` (its slices' and its own) by a
    /// pass that began at `began` (monotonic ns), must wait: a pending mark over them was
    /// written or closed since, or one of them is open for writing. If so, remembers it and
    /// keeps a mark under its name, so that its cgroups wait whichever mark holds it.
    pub(super) fn hold_first(&mut self, c: &Candidate, files: Vec<PathBuf>, began: u64) -> bool {
        let keys = mark_keys(&c.name, &c.slice, &files);
        let (ours, theirs) = match self.held.units.get(&c.name) {
            Some(h) => (h.ours, h.theirs),
            None => (None, None),
        };
        if !self.mid_write(&c.name, &keys, &files, began, ours, theirs) {
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
        self.held.units.insert(
            c.name.clone(),
            Hold {
                keys,
                files,
                ours,
                theirs,
            },
        );
        self.keep_held_marks();
        self.look_for_marks();
        true
    }

    /// A unit armored since: nothing holds it any more.
    pub(super) fn unhold(&mut self, name: &str) {
        self.held.units.remove(name);
    }

    /// Keeps a mark under each held unit's name that the programs honor (every tick, in the
    /// exchanges with PID 1 too: the programs stop honoring a mark 30 s after its stamp).
    pub(super) fn keep_held_marks(&mut self) {
        let now = monotonic_ns();
        for (name, h) in &mut self.held.units {
            if let Some(replaced) = self.kernel.hold_mark(name, now) {
                // The programs' own stamp, unless it was ours: what `mid_write` goes by.
                if replaced.is_some() && replaced != h.ours {
                    h.theirs = replaced;
                }
                h.ours = Some(now);
            }
        }
    }

    /// Every tick of the main loop: once a pass begun now would read a held unit's files
    /// whole and no event has started one (a writer held open past the time it is believed,
    /// a close inotify missed), makes one.
    pub(super) fn retry_held(&mut self) {
        let now = monotonic_ns();
        let ready = self
            .held
            .units
            .iter()
            .any(|(name, h)| !self.mid_write(name, &h.keys, &h.files, now, h.ours, h.theirs));
        if ready {
            self.files_changed(&mut None);
        }
    }

    /// Whether a pass that began at `began` may have read `files` mid-write, by the pending
    /// marks under `keys`. The mark under unit `name` counts with the programs' last stamp
    /// (`theirs`) while it holds the one the daemon wrote (`ours`): the daemon's own writes
    /// must not keep the unit held past the time an open writer is believed.
    fn mid_write(
        &self,
        name: &str,
        keys: &[String],
        files: &[PathBuf],
        began: u64,
        ours: Option<u64>,
        theirs: Option<u64>,
    ) -> bool {
        let stamps = keys.iter().filter_map(|k| match self.kernel.mark_stamp(k) {
            Some(s) if k == name && Some(s) == ours => theirs,
            found => found,
        });
        let Some(latest) = stamps.max() else {
            return false;
        };
        // Opening the files costs more than the marks' lookups: only with a mark recent
        // enough for an open writer to count.
        read_mid_write(latest, began, false)
            || (read_mid_write(latest, began, true)
                && files.iter().any(|f| self.kernel.open_for_writing(f)))
    }
}

/// The names of the pending marks over unit `name` in slice `slice`, whose policy is read
/// from `files`: those the cgroup_mkdir program holds its new cgroups by (bpf/binding.h: its
/// own name, its template's or its dashed prefixes', its type's, its slice's), and those a
/// write of each of the files makes (bpf/pending.h: a drop-in's directory's name without
/// `.d`, a unit file's own name).
pub(super) fn mark_keys(name: &str, slice: &str, files: &[PathBuf]) -> Vec<String> {
    let mut keys = super::pending::keys_by_name(name);
    if let Some((_, kind)) = name.rsplit_once('.') {
        keys.push(kind.to_string());
    }
    if !name.ends_with(".slice") && !slice.is_empty() {
        keys.push(slice.to_string());
    }
    for f in files {
        let dir = f
            .parent()
            .and_then(|d| d.file_name())
            .map(|d| d.to_string_lossy());
        let key = match dir.as_deref().and_then(|d| d.strip_suffix(".d")) {
            Some(unit) => unit.to_string(),
            None => match f.file_name() {
                Some(n) => n.to_string_lossy().into_owned(),
                None => continue,
            },
        };
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_is_held_by_its_names_its_type_its_slice_and_its_files() {
        assert_eq!(
            mark_keys("app.service", "a-b.slice", &[]),
            ["app.service", "service", "a-b.slice"]
        );
        assert_eq!(
            mark_keys("web@1.service", "system-web.slice", &[]),
            [
                "web@.service",
                "web@1.service",
                "service",
                "system-web.slice"
            ]
        );
        assert_eq!(
            mark_keys("run-u7.scope", "system.slice", &[]),
            ["run-u7.scope", "run-.scope", "scope", "system.slice"]
        );
        // A slice by its own name (its parents are in its files).
        assert_eq!(
            mark_keys("a-b.slice", "", &[]),
            ["a-b.slice", "a-.slice", "slice"]
        );
        // Each file by the name a write of it marks: slices above, a type's or a prefix's
        // drop-ins, the unit file itself.
        let files: Vec<PathBuf> = [
            "/etc/systemd/system/a.slice.d/armor.conf",
            "/etc/systemd/system/a-.slice.d/x.conf",
            "/etc/systemd/system/slice.d/x.conf",
            "/etc/systemd/system/foo-.service.d/x.conf",
            "/usr/lib/systemd/system/foo-bar@.service",
            "/etc/systemd/system/foo-bar@.service.d/armor.conf",
            "/etc/systemd/system/service.d/x.conf",
        ]
        .into_iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(
            mark_keys("foo-bar@1.service", "a-b.slice", &files),
            [
                "foo-bar@.service",
                "foo-bar@1.service",
                "service",
                "a-b.slice",
                "a.slice",
                "a-.slice",
                "slice",
                "foo-.service"
            ]
        );
    }
}
