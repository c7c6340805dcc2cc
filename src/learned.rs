//! What learn mode saw: for each unit in `ArmorMode=learn`, one entry per (class, operation,
//! object) with how often and by which executables, kept as JSON under
//! `/var/lib/unitarmor/learn/` so that it survives daemon restarts and reboots. The daemon
//! adds to it ([`Learned::add`]); `unitarmor learn --status` and `unitarmor suggest` read it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// Where each unit's records are kept (the daemon's `StateDirectory=`).
pub const DIR: &str = "/var/lib/unitarmor/learn";

/// The most distinct objects kept for one unit: beyond it, new objects are counted in
/// [`Learned::dropped`], not kept (a unit cannot grow the daemon's memory without bound; the
/// daemon also keeps a budget for all units together).
pub const MAX_ENTRIES: usize = 10_000;

/// The longest object kept (longer ones are counted in [`Learned::dropped`]).
pub const MAX_OBJECT: usize = 512;

/// The most executables named for one entry, and the longest name kept.
const MAX_EXES: usize = 4;
const MAX_EXE: usize = 256;

/// The largest records file read back.
const MAX_FILE: u64 = 64 << 20;

/// What a unit was seen doing, and how often.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Learned {
    pub unit: String,
    /// Seconds since the epoch: the first record, and the latest.
    pub since: u64,
    pub until: u64,
    /// Keyed by (class, object); see [`Seen`].
    pub entries: BTreeMap<String, Seen>,
    /// Objects not kept because [`MAX_ENTRIES`] were, or too long.
    pub dropped: u64,
    /// Objects not kept because their names have control characters: no rule could name them
    /// (`suggest` counts them as not suggested).
    #[serde(default)]
    pub odd: u64,
}

/// One object of one class: a path (`read`, `write`, `exec`), a socket (`connect` and
/// `bind`: `tcp:ADDR:PORT`, `udp:...` with IPv6 addresses in brackets; `connect`:
/// `unix:PATH`), a capability (`cap`), or the unit a refused signal or trace was aimed at
/// (`signal`, `ptrace`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub class: String,
    pub object: String,
    /// The operations seen (`open`, `mmap-exec`, `connect`...).
    pub ops: BTreeSet<String>,
    pub count: u64,
    /// Some of the executables that did it (at most four).
    pub exes: BTreeSet<String>,
    /// For a template's set: some of the instances that did it (at most four), so that
    /// `suggest` can write `%i` where each instance used its own name.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub instances: BTreeSet<String>,
}

impl Learned {
    /// Adds one record made at `now` (seconds since the epoch); `room`: whether a new object
    /// may be kept. Returns whether it was a new object.
    pub fn add(
        &mut self,
        class: &str,
        op: &str,
        object: &str,
        exe: &str,
        now: u64,
        room: bool,
    ) -> bool {
        if object.chars().any(char::is_control) {
            self.odd += 1;
            return false;
        }
        let key = format!("{class} {object}");
        let new = !self.entries.contains_key(&key);
        if new && (!room || self.entries.len() >= MAX_ENTRIES || object.len() > MAX_OBJECT) {
            self.dropped += 1;
            return false;
        }
        let seen = self.entries.entry(key).or_insert_with(|| Seen {
            class: class.to_string(),
            object: object.to_string(),
            ..Seen::default()
        });
        seen.count += 1;
        if !seen.ops.contains(op) {
            seen.ops.insert(op.to_string());
        }
        if !exe.is_empty()
            && exe.len() <= MAX_EXE
            && !exe.chars().any(char::is_control)
            && seen.exes.len() < MAX_EXES
            && !seen.exes.contains(exe)
        {
            seen.exes.insert(exe.to_string());
        }
        if self.since == 0 {
            self.since = now;
        }
        self.until = self.until.max(now);
        new
    }

    /// Notes that `instance` (the instance name of one of the template's units) did what the
    /// entry of `class` and `object` records, if there is such an entry; at most four are
    /// named.
    pub fn note_instance(&mut self, class: &str, object: &str, instance: &str) {
        let key = format!("{class} {object}");
        if let Some(seen) = self.entries.get_mut(&key) {
            if seen.instances.len() < MAX_EXES
                && instance.len() <= MAX_EXE
                && !instance.chars().any(char::is_control)
            {
                seen.instances.insert(instance.to_string());
            }
        }
    }

    /// The file `unit`'s records are kept in, under `dir` (see [`valid_unit`]).
    pub fn path(dir: &Path, unit: &str) -> PathBuf {
        dir.join(format!("{unit}.json"))
    }

    /// `unit`'s records under `dir`; none yet is an empty set.
    pub fn load(dir: &Path, unit: &str) -> Result<Learned> {
        use std::io::Read;
        let path = Self::path(dir, unit);
        let mut bytes = Vec::new();
        let read =
            std::fs::File::open(&path).and_then(|f| f.take(MAX_FILE + 1).read_to_end(&mut bytes));
        match read {
            Ok(n) if n as u64 > MAX_FILE => {
                anyhow::bail!("{} is larger than {MAX_FILE} bytes", path.display())
            }
            Ok(_) => serde_json::from_slice::<Learned>(&bytes)
                .map(|l| Learned {
                    unit: unit.to_string(), // the file's name says whose it is
                    ..l
                })
                .with_context(|| format!("reading {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Learned {
                unit: unit.to_string(),
                ..Learned::default()
            }),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Writes the records under `dir`, replacing the file at once (a crash leaves the old
    /// file or the new one, never half of one).
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = Self::path(dir, &self.unit);
        let tmp = dir.join(format!(".{}.json.tmp", self.unit));
        let bytes = serde_json::to_vec(self)?;
        std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// How many objects of each class were seen, for `unitarmor learn --status`.
    pub fn per_class(&self) -> BTreeMap<&str, (usize, u64)> {
        let mut out: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
        for s in self.entries.values() {
            let e = out.entry(s.class.as_str()).or_default();
            e.0 += 1;
            e.1 += s.count;
        }
        out
    }
}

/// Whether `name` is a unit name as systemd allows it (so also a file name under [`DIR`]):
/// at most 255 bytes of letters, digits, `:`, `-`, `_`, `.`, `@` and backslashes, with a type
/// suffix, not starting with a dot.
pub fn valid_unit(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name.contains('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.@\\".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_aggregate_per_object_and_survive_a_save() {
        let t = tempfile::tempdir().unwrap();
        let mut l = Learned::load(t.path(), "app.service").unwrap();
        assert!(l.entries.is_empty() && l.unit == "app.service");
        for _ in 0..1000 {
            l.add("read", "open", "/etc/app.conf", "/usr/bin/app", 100, true);
        }
        assert!(l.add("read", "open", "/etc/hosts", "/usr/bin/app", 105, true));
        assert!(l.add("exec", "exec", "/usr/bin/sort", "/usr/bin/bash", 106, true));
        assert!(!l.add(
            "exec",
            "mmap-exec",
            "/usr/bin/sort",
            "/usr/bin/sort",
            107,
            true
        ));
        assert_eq!(l.entries.len(), 3);
        assert_eq!(l.entries["read /etc/app.conf"].count, 1000);
        assert_eq!(l.entries["exec /usr/bin/sort"].ops.len(), 2);
        assert_eq!((l.since, l.until), (100, 107));
        assert_eq!(l.per_class()["read"], (2, 1001));
        l.save(t.path()).unwrap();
        assert_eq!(Learned::load(t.path(), "app.service").unwrap(), l);
        // Bounded: a new object beyond the limit is counted, not kept.
        for i in 0..MAX_ENTRIES {
            l.add("read", "open", &format!("/x/{i}"), "", 200, true);
        }
        assert_eq!(l.entries.len(), MAX_ENTRIES);
        assert_eq!(l.dropped, 3);
        l.add("read", "open", "/etc/hosts", "", 201, false);
        assert_eq!(l.dropped, 3, "a known object is still counted, room or not");
        assert_eq!(l.entries["read /etc/hosts"].count, 2);
        // Too long, or no room: counted, not kept.
        let mut m = Learned::default();
        assert!(!m.add(
            "read",
            "open",
            &format!("/{}", "a".repeat(MAX_OBJECT)),
            "",
            1,
            true
        ));
        assert!(!m.add("read", "open", "/b", "", 1, false));
        assert_eq!((m.entries.len(), m.dropped), (0, 2));
        // What a file says its unit is does not choose where it is written.
        let mut planted = Learned::load(t.path(), "app.service").unwrap();
        planted.unit = "../../etc/evil".into();
        std::fs::write(
            Learned::path(t.path(), "app.service"),
            serde_json::to_vec(&planted).unwrap(),
        )
        .unwrap();
        assert_eq!(
            Learned::load(t.path(), "app.service").unwrap().unit,
            "app.service"
        );
        assert!(valid_unit("app@x.service") && valid_unit("a\\x2db.service"));
        assert!(!valid_unit("../x.service") && !valid_unit(".x.service") && !valid_unit("x"));
    }
}
