//! Each armored unit's last good policy, kept on disk (`/var/lib/unitarmor/good/UNIT`, a
//! drop-in the resolver reads back: policy/saved.rs) so that a unit whose files have errors
//! when a daemon starts (after a restart, an upgrade or a reboot) keeps the policy it had,
//! as a running daemon keeps it in memory. The directory is among the files every armored
//! unit is refused writes to (`unit-files`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::policy::named::Lookup;
use crate::policy::specifiers::UnitName;
use crate::policy::{resolve, saved, Diagnostics, Policy};

/// Where the policies are kept (under the daemon's `StateDirectory=`).
pub const DIR: &str = "/var/lib/unitarmor/good";

fn file(dir: &Path, unit: &str) -> PathBuf {
    dir.join(unit)
}

/// Keeps `policy` as `unit`'s last good one, if it is worth keeping (saved::to_dropin);
/// otherwise forgets the one kept before.
pub fn save(dir: &Path, unit: &str, policy: &Policy) -> Result<()> {
    let Some(text) = saved::to_dropin(unit, policy) else {
        forget(dir, unit);
        return Ok(());
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = file(dir, unit);
    let tmp = dir.join(format!(".{unit}.new"));
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("renaming to {}", path.display()))
}

/// `unit`'s last good policy and the file it is kept in, if one is kept and reads back without
/// errors.
pub fn load(dir: &Path, unit: &str) -> Option<(Policy, PathBuf)> {
    let path = file(dir, unit);
    if !path.is_file() {
        return None;
    }
    let mut diags = Diagnostics::default();
    let policy = resolve::merge_layers(
        &Lookup::system(),
        &[],
        std::slice::from_ref(&path),
        Some(&UnitName::new(unit)),
        &mut diags,
    );
    (diags.errors().next().is_none() && policy.is_armored()).then_some((policy, path))
}

/// Forgets `unit`'s last good policy: it is no longer armored.
pub fn forget(dir: &Path, unit: &str) {
    let _ = std::fs::remove_file(file(dir, unit));
}

/// Forgets the last good policies of units `armored` says are not armored (a unit disarmed
/// while no daemon ran), and leftovers of interrupted saves.
pub fn prune(dir: &Path, armored: impl Fn(&str) -> bool) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || !armored(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_loads_and_forgets() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good");
        let unit = "app.service";
        assert!(load(&good, unit).is_none(), "nothing kept yet");
        let src = dir.path().join("armor.conf");
        std::fs::write(
            &src,
            "[X-Armor]\nArmorPolicy=deny read /srv/secret\nArmorPolicy=deny write /etc/\n",
        )
        .unwrap();
        let mut diags = Diagnostics::default();
        let policy = resolve::merge_layers(
            &Lookup::system(),
            &[],
            &[src],
            Some(&UnitName::new(unit)),
            &mut diags,
        );
        save(&good, unit, &policy).unwrap();
        let (back, path) = load(&good, unit).unwrap();
        assert_eq!(path, good.join(unit));
        assert_eq!(back.rules.len(), 2);
        assert_eq!(back.rules[0].to_string(), "deny read /srv/secret");
        // A policy with errors is not kept: the one kept before goes, not stays stale.
        let broken = Policy {
            broken: 1,
            ..policy.clone()
        };
        save(&good, unit, &broken).unwrap();
        assert!(load(&good, unit).is_none());
        // A file that does not read back cleanly is not used.
        std::fs::write(good.join(unit), "[X-Armor]\nArmorPolicy=deny raed /x\n").unwrap();
        assert!(load(&good, unit).is_none());
        forget(&good, unit);
        assert!(!good.join(unit).exists());
        // Pruning keeps the armored units' files only.
        save(&good, unit, &policy).unwrap();
        save(&good, "gone.service", &policy).unwrap();
        std::fs::write(good.join(".half.new"), "").unwrap();
        prune(&good, |u| u == unit);
        let mut left: Vec<String> = std::fs::read_dir(&good)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [unit]);
    }
}
