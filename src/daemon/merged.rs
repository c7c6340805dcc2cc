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
//! the daemon's record of the unit and of its events' owners): what is kept besides is what
//! tells each file's bytes ([`Kept`]): a 128-bit digest of a small file, whose bytes and their
//! index were some 300 bytes a unit for the daemon to hold with a thousand one-rule units; the
//! bytes themselves of a big one, which are compared faster than they are hashed (a 10,000-rule
//! drop-in, 469 KB: 0.05 ms against 0.34 ms on the host, at every pass).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};
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
    /// What each of those files held, each file once, in the order of its first mention in
    /// `layers`, then `files` (boxed: collected through an `Option`, a `Vec` kept room for
    /// four).
    held: Box<[Kept]>,
    policy: Arc<Policy>,
    /// Its warnings (a kept merge has no errors), given again with each reuse.
    diags: Diagnostics,
}

/// Files longer than this keep their bytes, not a digest.
const KEEP_BYTES_OVER: usize = 4096;

/// What a kept merge knows of one file's bytes.
enum Kept {
    Digest(u128),
    Bytes(dropin::Bytes),
}

/// A file's bytes as 128 bits: two SipHash-1-3 sums (std's `DefaultHasher`, with the length
/// hashed after the bytes) under two of std's `RandomState` keys, which are drawn at random in
/// each process. No one can aim two contents at one digest without the keys, which never leave
/// the daemon's memory (and the files are root's to write in any case); by chance, two
/// contents share one with a probability of about 2^-128.
struct Digests([RandomState; 2]);

impl Default for Digests {
    fn default() -> Self {
        Digests([RandomState::new(), RandomState::new()])
    }
}

impl Digests {
    fn of(&self, bytes: &[u8]) -> u128 {
        let [lo, hi] = self.0.each_ref().map(|k| {
            let mut h = k.build_hasher();
            h.write(bytes);
            h.write_usize(bytes.len());
            h.finish()
        });
        u128::from(hi) << 64 | u128::from(lo)
    }

    /// What a kept merge keeps of `bytes`.
    fn keep(&self, bytes: &dropin::Bytes) -> Kept {
        if bytes.len() > KEEP_BYTES_OVER {
            Kept::Bytes(bytes.clone())
        } else {
            Kept::Digest(self.of(bytes))
        }
    }

    /// Whether `bytes` are what `kept` was kept from.
    fn same(&self, kept: &Kept, bytes: &[u8]) -> bool {
        match kept {
            Kept::Bytes(b) => b.as_slice() == bytes,
            Kept::Digest(d) => bytes.len() <= KEEP_BYTES_OVER && self.of(bytes) == *d,
        }
    }
}

/// The merges kept, by unit name.
#[derive(Default)]
pub(super) struct Merged {
    entries: HashMap<String, Entry>,
    digests: Digests,
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
        // Each file once, however many layers list it (a slice's drop-ins are in every layer
        // below it), in the order of its first mention: the merge and the comparison see the
        // same bytes for it.
        let mut order: Vec<&Path> = Vec::new();
        let mut read: HashMap<&Path, Result<dropin::Bytes, ReadError>> = HashMap::new();
        for p in layers.iter().flatten().chain(files) {
            if !read.contains_key(p.as_path()) {
                read.insert(p.as_path(), read_file(p));
                order.push(p);
            }
        }
        let bytes = |p: &Path| read.get(p).and_then(|r| r.as_ref().ok());
        if let Some(e) = self.entries.get(unit.full.as_str()) {
            let same = e.layers == layers
                && e.files == files
                && e.held.len() == order.len()
                && e.held
                    .iter()
                    .zip(&order)
                    .all(|(kept, p)| bytes(p).is_some_and(|b| self.digests.same(kept, b)));
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
        // None if a file could not be read (such a merge has errors, and is not kept).
        let held: Option<Vec<Kept>> = order
            .iter()
            .map(|p| bytes(p).map(|b| self.digests.keep(b)))
            .collect();
        let keep = held.filter(|_| {
            keeps(unit)
                && !own.has_errors()
                && policy.unreadable.is_empty()
                && order
                    .iter()
                    .all(|p| bytes(p).is_some_and(|b| names_nothing(p, b)))
        });
        match keep {
            Some(held) => {
                self.entries.insert(
                    unit.full.clone(),
                    Entry {
                        layers: layers.to_vec(),
                        files: files.to_vec(),
                        held: held.into_boxed_slice(),
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
    fn big_and_small_files_alike_are_reused_until_they_change() {
        let dir = tempfile::tempdir().unwrap();
        let many = |last: &str| {
            let mut t = String::from("[X-Armor]\n");
            for i in 0..200 {
                t.push_str(&format!("ArmorPolicy=deny read /srv/many/{i}\n"));
            }
            t + &format!("ArmorPolicy=deny read {last}\n")
        };
        let big = dropin(dir.path(), "big.conf", &many("/x"));
        let small = denying(dir.path(), "small.conf", "/a");
        assert!(std::fs::metadata(&big).unwrap().len() as usize > KEEP_BYTES_OVER);
        assert!((std::fs::metadata(&small).unwrap().len() as usize) < KEEP_BYTES_OVER);
        let files = [small.clone(), big.clone()];
        let unit = UnitName::new("a.service");
        let mut m = Merged::default();
        let merge =
            |m: &mut Merged| m.merge(&[], &files, &unit, &mut read, &mut Diagnostics::default());
        let first = merge(&mut m);
        assert!(matches!(
            m.entries["a.service"].held[..],
            [Kept::Digest(_), Kept::Bytes(_)]
        ));
        assert_eq!(merge(&mut m), first);
        assert_eq!((m.made, m.reused), (1, 1));
        // The big one's last rule changed, at the same size: merged again.
        std::fs::write(&big, many("/y")).unwrap();
        assert_eq!(rules(&merge(&mut m)).last().unwrap(), "deny read /y");
        assert_eq!((m.made, m.reused), (2, 1));
        // The small one grown past the limit, and back: merged again each time.
        std::fs::write(&small, many("/z")).unwrap();
        merge(&mut m);
        std::fs::write(&small, "[X-Armor]\nArmorPolicy=deny read /a\n").unwrap();
        assert_eq!(rules(&merge(&mut m))[0], "deny read /a");
        assert_eq!((m.made, m.reused), (4, 1));
        assert_eq!(merge(&mut m), merge(&mut m));
        assert_eq!((m.made, m.reused), (4, 3));
    }

    #[test]
    fn digests_tell_contents_apart_and_are_stable() {
        let d = Digests::default();
        let contents: [&[u8]; 5] = [b"", b"\0", b"\0\0", b"deny read /a\n", b"deny read /b\n"];
        for (i, a) in contents.iter().enumerate() {
            let copy: Vec<u8> = a.to_vec();
            assert_eq!(d.of(a), d.of(&copy));
            for b in &contents[i + 1..] {
                assert_ne!(d.of(a), d.of(b), "{a:?} and {b:?}");
            }
        }
        // Other keys, another digest.
        assert_ne!(Digests::default().of(b"x"), d.of(b"x"));
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
