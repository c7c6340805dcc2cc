//! Merged policies kept from pass to pass. Every pass (a reload's, a watch event's) reads every
//! armored unit's files again, and merging a big policy again was most of a pass's cost
//! (10,000 rules: reading and parsing take about 2 ms natively, merging 11 ms, ten times that
//! under emulation, for each pass).
//!
//! A unit's merge is reused while its files (its slices' and its own, in the same order) hold
//! the same bytes: each pass still reads every file, and compares what it read with what the
//! kept merge was made from; a merge is made from the bytes read for that comparison, never
//! from a second read. Bytes, not file times: a file's times and inode can stay the same
//! across a change (images built with fixed times, FAT, attributes cached by NFS or FUSE, a
//! clock stepped back, two writes within one tick). Merges that depend on more than their
//! files' bytes and the unit's name are never kept: those that name a policy (`@name`,
//! `@systemd`), and those with errors (a file that could not be read among them). Only units
//! and templates are kept, not each instance of a template (an `Accept=yes` socket makes one
//! per connection), but for the stand-in instance that tells whether a template's instances
//! differ (reconcile.rs). A kept policy is the one the unit runs under (an `Arc` shared with
//! the daemon's record of the unit and of its events' owners): what is kept besides is the
//! files' bytes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::policy::diag::Diagnostics;
use crate::policy::dropin::{self, Entry as Line, ReadError};
use crate::policy::named::Lookup;
use crate::policy::resolve;
use crate::policy::specifiers::UnitName;
use crate::policy::Policy;

/// The instance name of a template's stand-in (reconcile.rs: instances_differ).
pub(super) const STAND_IN: &str = "unitarmor-any-instance";

/// One unit's kept merge.
struct Entry {
    layers: Vec<Vec<PathBuf>>,
    files: Vec<PathBuf>,
    /// What each of those files held.
    bytes: HashMap<PathBuf, dropin::Bytes>,
    policy: Arc<Policy>,
    /// Its warnings (a kept merge has no errors), given again with each reuse.
    diags: Diagnostics,
}

/// The merges kept, by unit name.
#[derive(Default)]
pub(super) struct Merged {
    entries: HashMap<String, Entry>,
    /// Merges reused, and merges made, since the start.
    pub(super) reused: u64,
    pub(super) made: u64,
}

impl Merged {
    /// [`resolve::merge_layers`] of `unit`'s `layers` and `files`, reused from an earlier
    /// call while they hold the same bytes.
    pub(super) fn merge(
        &mut self,
        layers: &[Vec<PathBuf>],
        files: &[PathBuf],
        unit: &UnitName,
        read_file: &mut resolve::Read,
        diags: &mut Diagnostics,
    ) -> Arc<Policy> {
        let all: Vec<&PathBuf> = layers.iter().flatten().chain(files).collect();
        // Each file once, however many layers list it (a slice's drop-ins are in every layer
        // below it): the merge and the comparison see the same bytes for it.
        let mut read: HashMap<&Path, Result<dropin::Bytes, ReadError>> = HashMap::new();
        for p in &all {
            if !read.contains_key(p.as_path()) {
                read.insert(p.as_path(), read_file(p));
            }
        }
        if let Some(e) = self.entries.get(unit.full.as_str()) {
            let same = e.layers == layers
                && e.files == files
                && e.bytes.len() == read.len()
                && e.bytes.iter().all(|(p, was)| {
                    read.get(p.as_path()).and_then(|r| r.as_ref().ok()) == Some(was)
                });
            if same {
                diags.0.extend(e.diags.0.iter().cloned());
                self.reused += 1;
                return e.policy.clone();
            }
        }
        self.made += 1;
        let mut from_read = |p: &Path| match read.get(p) {
            Some(Ok(b)) => Ok(b.clone()),
            // Read again for the error itself (it says what the file is, or why it failed).
            _ => dropin::read_shared(p),
        };
        let mut own = Diagnostics::default();
        let policy = Arc::new(resolve::merge_layers_from(
            &Lookup::system(),
            layers,
            files,
            Some(unit),
            &mut from_read,
            &mut own,
        ));
        let bytes: Option<HashMap<PathBuf, dropin::Bytes>> = read
            .into_iter()
            .map(|(p, r)| r.ok().map(|b| (p.to_path_buf(), b)))
            .collect();
        let keep = bytes.filter(|b| {
            keeps(unit)
                && !own.has_errors()
                && policy.unreadable.is_empty()
                && b.iter().all(|(p, b)| names_nothing(p, b))
        });
        match keep {
            Some(bytes) => {
                self.entries.insert(
                    unit.full.clone(),
                    Entry {
                        layers: layers.to_vec(),
                        files: files.to_vec(),
                        bytes,
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

/// Whether `unit`'s merges are kept: not an instance's, but for a template's stand-in.
fn keeps(unit: &UnitName) -> bool {
    !unit.full.contains('@') || unit.is_template() || unit.instance() == STAND_IN
}

/// Whether `bytes`, read from `path`, name no policy (`@name`, `@systemd`), whose merge would
/// depend on other files. Most files have no `@` at all.
fn names_nothing(path: &Path, bytes: &[u8]) -> bool {
    !bytes.contains(&b'@')
        || dropin::parse(path, bytes, &mut Diagnostics::default())
            .entries
            .iter()
            .all(|e| !matches!(e, Line::Policy(text, _) if text.trim_start().starts_with('@')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(p: &Path) -> Result<dropin::Bytes, ReadError> {
        dropin::read_shared(p)
    }

    /// Writes a drop-in under `dir`.
    fn dropin(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Writes a drop-in under `dir` that denies reading `path`.
    fn denying(dir: &Path, name: &str, path: &str) -> PathBuf {
        dropin(
            dir,
            name,
            &format!("[X-Armor]\nArmorPolicy=deny read {path}\n"),
        )
    }

    fn rules(p: &Policy) -> Vec<String> {
        p.rules.iter().map(|r| r.to_string()).collect()
    }

    fn merge_one(m: &mut Merged, f: &Path, unit: &str) -> Arc<Policy> {
        let unit = UnitName::new(unit);
        m.merge(
            &[],
            &[f.to_path_buf()],
            &unit,
            &mut read,
            &mut Diagnostics::default(),
        )
    }

    #[test]
    fn reused_while_unchanged_and_merged_again_once_changed() {
        let dir = tempfile::tempdir().unwrap();
        let f = denying(dir.path(), "a.conf", "/a");
        let mut m = Merged::default();
        let first = merge_one(&mut m, &f, "a.service");
        assert_eq!(rules(&first), ["deny read /a"]);
        assert_eq!(merge_one(&mut m, &f, "a.service"), first);
        assert_eq!((m.made, m.reused), (1, 1));
        // Rewritten in place at once, at the same size: merged again.
        std::fs::write(&f, "[X-Armor]\nArmorPolicy=deny read /b\n").unwrap();
        assert_eq!(rules(&merge_one(&mut m, &f, "a.service")), ["deny read /b"]);
        assert_eq!((m.made, m.reused), (2, 1));
        // Replaced by another file of the same size (another inode): merged again.
        let new = denying(dir.path(), "new", "/c");
        std::fs::rename(&new, &f).unwrap();
        assert_eq!(rules(&merge_one(&mut m, &f, "a.service")), ["deny read /c"]);
        assert_eq!((m.made, m.reused), (3, 1));
    }

    #[test]
    fn a_change_that_keeps_the_files_times_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let f = denying(dir.path(), "a.conf", "/a");
        let mtime = std::fs::metadata(&f).unwrap().modified().unwrap();
        let mut m = Merged::default();
        merge_one(&mut m, &f, "a.service");
        std::fs::write(&f, "[X-Armor]\nArmorPolicy=deny read /b\n").unwrap();
        let file = std::fs::File::options().write(true).open(&f).unwrap();
        file.set_modified(mtime).unwrap();
        drop(file);
        assert_eq!(std::fs::metadata(&f).unwrap().modified().unwrap(), mtime);
        assert_eq!(rules(&merge_one(&mut m, &f, "a.service")), ["deny read /b"]);
    }

    #[test]
    fn merges_that_name_a_policy_or_have_errors_are_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let named = dropin(dir.path(), "n.conf", "[X-Armor]\nArmorPolicy=@base\n");
        let granted = dropin(dir.path(), "g.conf", "[X-Armor]\nArmorPolicy= @systemd\n");
        let broken = dropin(
            dir.path(),
            "b.conf",
            "[X-Armor]\nArmorPolicy=deny frob /x\n",
        );
        let gone = dir.path().join("gone.conf");
        let mut m = Merged::default();
        for f in [named, granted, broken, gone] {
            merge_one(&mut m, &f, "a.service");
            assert!(m.entries.is_empty(), "{} was kept", f.display());
        }
        // An `@` elsewhere names nothing.
        let mail = dropin(
            dir.path(),
            "m.conf",
            "# root@localhost\n[Unit]\nAfter=x@y.service\n[X-Armor]\nArmorPolicy=deny read /a@b\n",
        );
        merge_one(&mut m, &mail, "a.service");
        assert!(m.entries.contains_key("a.service"));
    }

    #[test]
    fn instances_are_not_kept_but_templates_and_the_stand_in_are() {
        let dir = tempfile::tempdir().unwrap();
        let f = denying(dir.path(), "a.conf", "/a");
        let mut m = Merged::default();
        for unit in [
            "t@x.service",
            "t@.service",
            "t@unitarmor-any-instance.service",
        ] {
            merge_one(&mut m, &f, unit);
        }
        let mut kept: Vec<&String> = m.entries.keys().collect();
        kept.sort();
        assert_eq!(kept, ["t@.service", "t@unitarmor-any-instance.service"]);
    }

    #[test]
    fn other_files_or_another_order_are_merged_again() {
        let dir = tempfile::tempdir().unwrap();
        let a = denying(dir.path(), "a.conf", "/a");
        let s = denying(dir.path(), "s.conf", "/s");
        let unit = UnitName::new("a.service");
        let mut m = Merged::default();
        let mut d = Diagnostics::default();
        let own = m.merge(&[], std::slice::from_ref(&a), &unit, &mut read, &mut d);
        assert_eq!(rules(&own), ["deny read /a"]);
        let layered = m.merge(
            &[vec![s.clone()]],
            std::slice::from_ref(&a),
            &unit,
            &mut read,
            &mut d,
        );
        assert_eq!(rules(&layered), ["deny read /s", "deny read /a"]);
        let both = m.merge(&[], &[s.clone(), a.clone()], &unit, &mut read, &mut d);
        assert_eq!(rules(&both), ["deny read /s", "deny read /a"]);
        assert_eq!((m.made, m.reused), (3, 0));
        // A file in two layers (a slice's drop-in) is read once, and the merge reused.
        let twice = [vec![s.clone()], vec![s.clone()]];
        let first = m.merge(&twice, std::slice::from_ref(&a), &unit, &mut read, &mut d);
        assert_eq!(
            m.merge(&twice, std::slice::from_ref(&a), &unit, &mut read, &mut d),
            first
        );
        assert_eq!((m.made, m.reused), (4, 1));
        m.keep_only(|_| false);
        assert!(m.entries.is_empty());
    }
}
