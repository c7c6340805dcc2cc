//! Finds a unit's files in systemd's order and merges their `[X-Armor]` sections into one
//! [`Policy`].
//!
//! The daemon gets the order from systemd itself (`FragmentPath`, then `DropInPaths`); for
//! files named on the command line, [`unit_files`] rebuilds it the way systemd does: the
//! fragment from the first search directory that has it, then drop-ins from every `NAME.d/`
//! directory that applies (type-level `service.d/`, each dashed prefix `foo-.service.d/`, the
//! template `foo@.service.d/`, the unit itself), a file name in a higher-priority directory
//! masking the same name in a lower one, all sorted by file name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::diag::Diagnostics;
use super::dropin::{self, Entry};
use super::named::{self, Lookup};
use super::rule::Rule;
use super::specifiers::UnitName;
use super::{Policy, Source};

/// systemd's system unit search path, highest priority first (systemd.unit(5)).
pub const UNIT_DIRS: [&str; 13] = [
    "/etc/systemd/system.control",
    "/run/systemd/system.control",
    "/run/systemd/transient",
    "/run/systemd/generator.early",
    "/etc/systemd/system",
    "/etc/systemd/system.attached",
    "/run/systemd/system",
    "/run/systemd/system.attached",
    "/run/systemd/generator",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
    "/run/systemd/generator.late",
];

/// Whether any of `files` has an `[X-Armor]` section (a cheap test before parsing).
pub fn mentions_armor(files: &[PathBuf]) -> bool {
    files.iter().any(|f| {
        std::fs::read(f).is_ok_and(|b| {
            b.windows(dropin::SECTION.len() + 2)
                .any(|w| w == format!("[{}]", dropin::SECTION).as_bytes())
        })
    })
}

/// The drop-in directory names that apply to `unit`, most general first.
pub fn dropin_dir_names(unit: &str) -> Vec<String> {
    let Some((stem, suffix)) = unit.rsplit_once('.') else {
        return vec![format!("{unit}.d")];
    };
    let mut names = vec![format!("{suffix}.d")];
    // Dashed prefixes: foo-bar-baz.service reads foo-.service.d and foo-bar-.service.d.
    let base = stem.split_once('@').map_or(stem, |(p, _)| p);
    for (i, _) in base.match_indices('-') {
        if i > 0 {
            names.push(format!("{}-.{suffix}.d", &base[..i]));
        }
    }
    if let Some((prefix, instance)) = stem.split_once('@') {
        names.push(format!("{prefix}@.{suffix}.d"));
        if !instance.is_empty() {
            names.push(format!("{unit}.d"));
        }
    } else {
        names.push(format!("{unit}.d"));
    }
    names.dedup();
    names
}

/// The fragment and drop-ins of `unit` under `root`, in the order systemd applies them.
pub fn unit_files(root: &Path, unit: &str) -> (Option<PathBuf>, Vec<PathBuf>) {
    let dirs: Vec<PathBuf> = UNIT_DIRS
        .iter()
        .map(|d| root.join(d.trim_start_matches('/')))
        .collect();
    let template = unit.split_once('@').and_then(|(p, rest)| {
        let suffix = rest.rsplit_once('.')?.1;
        Some(format!("{p}@.{suffix}"))
    });
    let fragment = dirs.iter().find_map(|d| {
        let p = d.join(unit);
        if p.exists() {
            return Some(p);
        }
        template.as_ref().map(|t| d.join(t)).filter(|p| p.exists())
    });
    // File name -> path; the first (highest-priority) directory to hold a name wins.
    let mut by_name: BTreeMap<String, Option<PathBuf>> = BTreeMap::new();
    for d in &dirs {
        for name in dropin_dir_names(unit) {
            let Ok(entries) = std::fs::read_dir(d.join(&name)) else {
                continue;
            };
            let mut files: Vec<_> = entries.flatten().map(|e| e.path()).collect();
            files.sort();
            for f in files {
                let Some(file_name) = f.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                if !file_name.ends_with(".conf") {
                    continue;
                }
                // A drop-in linked to /dev/null masks the same name everywhere below.
                let masked = std::fs::read_link(&f).is_ok_and(|t| t == Path::new("/dev/null"));
                by_name
                    .entry(file_name.to_string())
                    .or_insert(if masked { None } else { Some(f) });
            }
        }
    }
    (fragment, by_name.into_values().flatten().collect())
}

/// Merges the `[X-Armor]` sections of `files`, in order, into a policy for `unit`.
/// `root` prefixes named-policy lookups (`/` normally).
pub fn merge(
    lookup: &Lookup,
    files: &[PathBuf],
    unit: Option<&UnitName>,
    diags: &mut Diagnostics,
) -> Policy {
    let mut policy = Policy::default();
    for file in files {
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                diags.error(&Source::new(file, 1), format!("cannot read: {e}"));
                continue;
            }
        };
        let d = dropin::parse(file, &bytes, diags);
        policy.configured |= d.has_section;
        for entry in d.entries {
            apply(lookup, &mut policy, entry, unit, diags);
        }
    }
    policy
}

fn apply(
    lookup: &Lookup,
    policy: &mut Policy,
    entry: Entry,
    unit: Option<&UnitName>,
    diags: &mut Diagnostics,
) {
    match entry {
        Entry::Mode(m, _) => policy.mode = m,
        Entry::Reset(_) => policy.rules.clear(),
        Entry::ExemptReset(_) => {
            policy.exempt.clear();
            policy.exempt_sources.clear();
        }
        Entry::Exempt(names, src) => {
            for p in names {
                policy.exempt.insert(p);
                policy
                    .exempt_sources
                    .entry(p)
                    .or_insert_with(|| src.clone());
            }
        }
        Entry::Policy(text, src) => {
            if let Some(name) = text.strip_prefix('@') {
                let rules = named::expand(lookup, name.trim(), unit, &src, &mut Vec::new(), diags);
                policy.rules.extend(rules);
            } else {
                match Rule::parse(&text, unit, src.clone()) {
                    Ok(r) => policy.rules.push(r),
                    Err(e) => diags.error(&src, e),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) -> PathBuf {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn dropin_dirs_like_systemd() {
        assert_eq!(
            dropin_dir_names("nginx.service"),
            ["service.d", "nginx.service.d"]
        );
        assert_eq!(
            dropin_dir_names("foo-bar-baz.service"),
            [
                "service.d",
                "foo-.service.d",
                "foo-bar-.service.d",
                "foo-bar-baz.service.d"
            ]
        );
        assert_eq!(
            dropin_dir_names("web@a.service"),
            ["service.d", "web@.service.d", "web@a.service.d"]
        );
        assert_eq!(
            dropin_dir_names("a-b@x.service"),
            [
                "service.d",
                "a-.service.d",
                "a-b@.service.d",
                "a-b@x.service.d"
            ]
        );
    }

    #[test]
    fn order_priority_and_masking() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let frag = write(
            r,
            "usr/lib/systemd/system/web@.service",
            "[Service]\nExecStart=/bin/true\n",
        );
        write(
            r,
            "usr/lib/systemd/system/web@.service.d/10-base.conf",
            "vendor",
        );
        let etc10 = write(r, "etc/systemd/system/web@.service.d/10-base.conf", "admin");
        let run20 = write(r, "run/systemd/system/service.d/20-all.conf", "");
        let inst05 = write(r, "etc/systemd/system/web@a.service.d/05-first.conf", "");
        write(
            r,
            "usr/lib/systemd/system/web@a.service.d/30-masked.conf",
            "",
        );
        std::fs::create_dir_all(r.join("etc/systemd/system/web@a.service.d")).unwrap();
        std::os::unix::fs::symlink(
            "/dev/null",
            r.join("etc/systemd/system/web@a.service.d/30-masked.conf"),
        )
        .unwrap();
        write(r, "etc/systemd/system/web@a.service.d/notes.txt", "");
        let (f, d) = unit_files(r, "web@a.service");
        assert_eq!(f, Some(frag));
        assert_eq!(d, [inst05, etc10, run20]);
    }

    #[test]
    fn merge_accumulates_and_resets() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let a = write(
            r,
            "a.conf",
            "[X-Armor]\nArmorPolicy=deny read /a\nArmorPolicy=deny read /b\n",
        );
        let b = write(
            r,
            "b.conf",
            "[X-Armor]\nArmorPolicy=\nArmorPolicy=deny write /srv/%i/\nArmorMode=audit\n",
        );
        let c = write(r, "c.conf", "[X-Armor]\nArmorPolicy=deny exec /c\n");
        let mut diags = Diagnostics::default();
        let p = merge(
            &Lookup::under(r),
            &[a, b, c],
            Some(&UnitName::new("w@x.service")),
            &mut diags,
        );
        assert!(diags.0.is_empty(), "{diags:?}");
        let rules: Vec<String> = p.rules.iter().map(|r| r.to_string()).collect();
        assert_eq!(rules, ["deny write /srv/x/", "deny exec /c"]);
        assert_eq!(p.mode, crate::policy::Mode::Audit);
        assert!(p.is_armored());
    }

    #[test]
    fn exemptions_accumulate_across_files_and_reset() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        let slice = write(
            r,
            "slice.conf",
            "[X-Armor]\nArmorExempt=mount\nArmorExempt=ptrace\n",
        );
        let a = write(
            r,
            "a.conf",
            "[X-Armor]\nArmorExempt=\nArmorExempt=bpf signal\nArmorPolicy=deny read /x\n",
        );
        let b = write(r, "b.conf", "[X-Armor]\nArmorExempt=userns bpf\n");
        let mut diags = Diagnostics::default();
        let lookup = Lookup::under(r);
        let p = merge(&lookup, &[slice.clone(), a, b.clone()], None, &mut diags);
        assert!(diags.0.is_empty(), "{diags:?}");
        use crate::policy::Protection::*;
        assert_eq!(p.exempt, [Bpf, Userns, Signal].into_iter().collect());
        assert!(p.is_exempt(Bpf) && !p.is_exempt(Mount));
        // bpf keeps the line that first lifted it.
        assert_eq!(
            p.exempt_sources[&Bpf].to_string(),
            format!("{}:3", r.join("a.conf").display())
        );
        assert_eq!(p.exempt_sources[&Userns].line, 2);
        assert_eq!(p.exempt_sources.len(), p.exempt.len());
        let protections = p.protections();
        assert_eq!(protections.len(), crate::policy::Protection::ALL.len() - 3);
        assert!(!protections.contains(&Bpf) && protections.contains(&Mount));
        // Without the reset, the slice's exemptions stay.
        let p = merge(&lookup, &[slice, b], None, &mut diags);
        assert_eq!(p.exempt, [Mount, Ptrace, Userns, Bpf].into_iter().collect());
        assert!(p.protections().is_empty(), "no rules: not armored");
    }

    #[test]
    fn units_without_the_section_are_not_armored() {
        let t = tempfile::tempdir().unwrap();
        let a = write(t.path(), "a.service", "[Service]\nExecStart=/bin/true\n");
        let mut diags = Diagnostics::default();
        let p = merge(&Lookup::under(t.path()), &[a], None, &mut diags);
        assert!(!p.configured && !p.is_armored());
        let off = write(
            t.path(),
            "off.conf",
            "[X-Armor]\nArmorMode=off\nArmorPolicy=deny read /x\n",
        );
        assert!(!merge(&Lookup::under(t.path()), &[off], None, &mut diags).is_armored());
    }
}
