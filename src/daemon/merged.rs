//! Merged policies kept from pass to pass. Every pass (a reload's, a watch event's) reads every
//! armored unit's files again, and merging a big policy again was most of a pass's cost
//! (10,000 rules: about 11 ms natively, ten times that under emulation, for each pass).
//!
//! A unit's merge is reused while each of its files (its slices' and its own, in the same
//! order) is the same file, unchanged: the same device, inode, size, modification and change
//! times. File times move in clock ticks, so a file rewritten at the same size within the tick
//! it was read in would look unchanged: a merge is kept only if every file was last changed
//! [`SETTLED`] or more before it was read (as a pass's own check does, changes.rs). Merges that
//! depend on more than their files' bytes and the unit's name are never kept: those of files
//! that name a policy (`@name`, `@systemd`: any file with an `@` in it), and those with errors
//! (a file that could not be read among them).

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::policy::diag::Diagnostics;
use crate::policy::named::Lookup;
use crate::policy::resolve;
use crate::policy::specifiers::UnitName;
use crate::policy::Policy;

/// How long before it was read a file must have last changed for its merge to be kept.
const SETTLED: Duration = Duration::from_secs(2);

/// What tells one version of a file from another without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    /// The file `path` leads to (a drop-in may be a symlink), or None if it cannot be stat'ed.
    fn of(path: &Path) -> Option<Stamp> {
        let m = std::fs::metadata(path).ok()?;
        Some(Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }

    /// Whether the file last changed `settled` or more before `read`.
    fn settled_before(&self, read: SystemTime, settled: Duration) -> bool {
        let Some(limit) = read
            .checked_sub(settled)
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        else {
            return false;
        };
        let limit = (limit.as_secs() as i64, limit.subsec_nanos() as i64);
        self.mtime < limit && self.ctime < limit
    }
}

/// One unit's kept merge.
struct Entry {
    layers: Vec<Vec<PathBuf>>,
    files: Vec<PathBuf>,
    stamps: Vec<Stamp>,
    policy: Policy,
    /// Its warnings (a kept merge has no errors), given again with each reuse.
    diags: Diagnostics,
}

/// The merges kept, by unit name.
pub(super) struct Merged {
    entries: HashMap<String, Entry>,
    /// [`SETTLED`] (shorter in tests: a change time cannot be set back).
    settled: Duration,
    /// Merges reused, and merges made, since the start.
    pub(super) reused: u64,
    pub(super) made: u64,
}

impl Default for Merged {
    fn default() -> Self {
        Merged {
            entries: HashMap::new(),
            settled: SETTLED,
            reused: 0,
            made: 0,
        }
    }
}

impl Merged {
    /// [`resolve::merge_layers`] of `unit`'s `layers` and `files`, reused from an earlier
    /// call while none of them changed.
    pub(super) fn merge(
        &mut self,
        layers: &[Vec<PathBuf>],
        files: &[PathBuf],
        unit: &UnitName,
        diags: &mut Diagnostics,
    ) -> Policy {
        let all: Vec<&PathBuf> = layers.iter().flatten().chain(files).collect();
        // Stamped before they are read: a file that changes in between is stamped older than
        // what was read, and read again next time.
        let read = SystemTime::now();
        let stamps: Option<Vec<Stamp>> = all.iter().map(|p| Stamp::of(p)).collect();
        if let (Some(e), Some(now)) = (self.entries.get(unit.full.as_str()), &stamps) {
            if e.stamps == *now && e.layers == layers && e.files == files {
                diags.0.extend(e.diags.0.iter().cloned());
                self.reused += 1;
                return e.policy.clone();
            }
        }
        self.made += 1;
        let mut own = Diagnostics::default();
        let policy = resolve::merge_layers(&Lookup::system(), layers, files, Some(unit), &mut own);
        let keep = stamps.filter(|s| {
            !own.has_errors()
                && policy.unreadable.is_empty()
                && s.iter().all(|s| s.settled_before(read, self.settled))
                && all.iter().all(|p| names_nothing(p))
        });
        match keep {
            Some(stamps) => {
                self.entries.insert(
                    unit.full.clone(),
                    Entry {
                        layers: layers.to_vec(),
                        files: files.to_vec(),
                        stamps,
                        policy: policy.clone(),
                        diags: own.clone(),
                    },
                );
            }
            None => {
                self.entries.remove(unit.full.as_str());
            }
        }
        diags.0.extend(own.0);
        policy
    }

    /// Forgets the merges of units `keep` says no to.
    pub(super) fn keep_only(&mut self, keep: impl Fn(&str) -> bool) {
        self.entries.retain(|n, _| keep(n));
    }

    /// Forgets `name`'s merge.
    pub(super) fn forget(&mut self, name: &str) {
        self.entries.remove(name);
    }
}

/// Whether `path` names no policy: it has no `@` (`@name`, `@systemd`), which would make its
/// merge depend on other files. Read whole: a file that cannot be read is not kept either.
fn names_nothing(path: &Path) -> bool {
    crate::policy::dropin::read_limited(path).is_ok_and(|b| !b.contains(&b'@'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Settled after [`WAIT`] in tests.
    const QUICK: Duration = Duration::from_millis(30);
    const WAIT: Duration = Duration::from_millis(60);

    fn quick() -> Merged {
        Merged {
            settled: QUICK,
            ..Merged::default()
        }
    }

    /// Writes a drop-in under `dir`.
    fn dropin(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn rules(p: &Policy) -> Vec<String> {
        p.rules.iter().map(|r| r.to_string()).collect()
    }

    #[test]
    fn reused_while_unchanged_and_read_again_once_changed() {
        let dir = tempfile::tempdir().unwrap();
        let f = dropin(
            dir.path(),
            "a.conf",
            "[X-Armor]\nArmorPolicy=deny read /a\n",
        );
        std::thread::sleep(WAIT);
        let unit = UnitName::new("a.service");
        let mut m = quick();
        let mut d = Diagnostics::default();
        let first = m.merge(&[], std::slice::from_ref(&f), &unit, &mut d);
        assert_eq!(rules(&first), ["deny read /a"]);
        assert!(m.entries.contains_key("a.service"));
        assert_eq!(m.merge(&[], std::slice::from_ref(&f), &unit, &mut d), first);
        assert_eq!((m.made, m.reused), (1, 1));
        // Rewritten in place at the same size: its times move, and it is read again; just
        // changed, that merge is not kept.
        std::fs::write(&f, "[X-Armor]\nArmorPolicy=deny read /b\n").unwrap();
        let second = m.merge(&[], std::slice::from_ref(&f), &unit, &mut d);
        assert_eq!(rules(&second), ["deny read /b"]);
        assert_eq!((m.made, m.reused), (2, 1));
        assert!(m.entries.is_empty());
        // Replaced by another file of the same size (another inode): read again.
        std::thread::sleep(WAIT);
        assert_eq!(
            m.merge(&[], std::slice::from_ref(&f), &unit, &mut d),
            second
        );
        assert!(m.entries.contains_key("a.service"));
        let new = dropin(dir.path(), "new", "[X-Armor]\nArmorPolicy=deny read /c\n");
        std::thread::sleep(WAIT);
        std::fs::rename(&new, &f).unwrap();
        let third = m.merge(&[], std::slice::from_ref(&f), &unit, &mut d);
        assert_eq!(rules(&third), ["deny read /c"]);
        assert_eq!((m.made, m.reused), (4, 1));
    }

    #[test]
    fn a_file_changed_just_before_it_is_read_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let f = dropin(
            dir.path(),
            "a.conf",
            "[X-Armor]\nArmorPolicy=deny read /a\n",
        );
        let mut m = Merged::default();
        let p = m.merge(
            &[],
            std::slice::from_ref(&f),
            &UnitName::new("a.service"),
            &mut Diagnostics::default(),
        );
        assert_eq!(rules(&p), ["deny read /a"]);
        assert!(m.entries.is_empty());
    }

    #[test]
    fn merges_that_name_a_policy_or_have_errors_are_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let named = dropin(dir.path(), "n.conf", "[X-Armor]\nArmorPolicy=@base\n");
        let broken = dropin(
            dir.path(),
            "b.conf",
            "[X-Armor]\nArmorPolicy=deny frob /x\n",
        );
        std::thread::sleep(WAIT);
        let mut m = quick();
        for f in [named, broken] {
            m.merge(
                &[],
                &[f],
                &UnitName::new("a.service"),
                &mut Diagnostics::default(),
            );
            assert!(m.entries.is_empty());
        }
    }

    #[test]
    fn other_files_or_another_order_are_merged_again() {
        let dir = tempfile::tempdir().unwrap();
        let a = dropin(
            dir.path(),
            "a.conf",
            "[X-Armor]\nArmorPolicy=deny read /a\n",
        );
        let s = dropin(
            dir.path(),
            "s.conf",
            "[X-Armor]\nArmorPolicy=deny read /s\n",
        );
        std::thread::sleep(WAIT);
        let unit = UnitName::new("a.service");
        let mut m = quick();
        let mut d = Diagnostics::default();
        let own = m.merge(&[], std::slice::from_ref(&a), &unit, &mut d);
        assert_eq!(rules(&own), ["deny read /a"]);
        let layered = m.merge(&[vec![s.clone()]], std::slice::from_ref(&a), &unit, &mut d);
        assert_eq!(rules(&layered), ["deny read /s", "deny read /a"]);
        let both = m.merge(&[], &[s, a], &unit, &mut d);
        assert_eq!(rules(&both), ["deny read /s", "deny read /a"]);
        m.keep_only(|_| false);
        assert!(m.entries.is_empty());
    }
}
