//! User units: the policy of a unit a user's service manager (`user@UID.service`) runs, from
//! root's files and the user's own, in which the user can tighten root's policy, never loosen
//! it.
//!
//! Root's files are those in the user search path's directories only root writes
//! ([`ROOT_DIRS`]: `/etc/systemd/user` and the package directories); they apply to the unit
//! of every user and are merged as a system unit's files are. The user's own files
//! (`~/.config/systemd/user`: [`own_dirs`]) are a second layer, which is read only for that
//! user's units and only for what tightens:
//!
//! - deny and audit rules are added;
//! - an allow rule is added only in a class root's layer does not allow-list (it then makes an
//!   allow-list where root's policy allowed everything); in a class root allow-lists it would
//!   widen root's list, and is passed over with a warning naming its line;
//! - `ArmorExempt=` lifts nothing, `ArmorMode=learn` counts as `enforce`, and `ArmorMode=` of
//!   either layer softens only that layer's rules (the strictest speaking layer's mode wins,
//!   as for slices);
//! - at most [`MAX_OWN_RULES`] rules: more is an error, so the unit keeps its last good policy
//!   or is refused everything (the user's files cannot fill the kernel's tables others need).
//!
//! A file of the same name in the user's directory does not mask root's, as it would for
//! systemd: root's layer is read from root's directories alone.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::diag::Diagnostics;
use super::named::Lookup;
use super::resolve::{self, Read};
use super::rule::Rule;
use super::specifiers::UnitName;
use super::{Action, Class, Mode, Policy, Protection, Source, Target};

/// The user unit search path's directories that only root writes, highest priority first
/// (systemd.unit(5), user mode): root's policy for every user's units.
pub const ROOT_DIRS: [&str; 8] = [
    "/etc/xdg/systemd/user",
    "/etc/systemd/user",
    "/run/systemd/user",
    "/usr/local/share/systemd/user",
    "/usr/share/systemd/user",
    "/usr/local/lib/systemd/user",
    "/usr/lib/systemd/user",
    "/lib/systemd/user",
];

/// At most this many rules, and patterns (paths, sockets, ports: each a DFA's or a list's
/// entry), come from a user's own files for one unit: their compile is small enough to run
/// in line, and their tables cannot take the room other units need.
pub const MAX_OWN_RULES: usize = 256;
/// See [`MAX_OWN_RULES`].
pub const MAX_OWN_PATTERNS: usize = 256;

/// The user's own unit directories under `home`: the user's layer.
pub fn own_dirs(home: &Path) -> Vec<PathBuf> {
    vec![home.join(".config/systemd/user")]
}

/// What a process of a user unit may not write, beyond what root's policy says, under the
/// implicit protection that covers the like for system units (lifted with it by
/// `ArmorExempt=`): under `unit-files`, the user's unit directories (which hold the user's
/// layer, and unit files the user's manager would run unarmored later) and the manager's
/// run-time ones (renaming a directory above them away is refused as a rename that changes
/// the rules); under `runs-as-root`, what the user's sessions and manager run or read at
/// login (shell start-up files, `environment.d`, autostart, SSH's authorized keys and
/// per-user configuration): code planted there runs as the user, outside the armor.
pub fn protected_paths(home: &Path, uid: u32) -> [(Protection, Vec<String>); 2] {
    let h = home.display();
    let files = [
        ".profile",
        ".bashrc",
        ".bash_aliases",
        ".bash_profile",
        ".bash_login",
        ".bash_logout",
        ".zshenv",
        ".zprofile",
        ".zshrc",
        ".zlogin",
        ".pam_environment",
        ".xprofile",
        ".xsessionrc",
        ".xinitrc",
        ".ssh",
        ".ssh/authorized_keys*",
        ".ssh/rc",
        ".ssh/environment",
        ".ssh/config",
        ".config/environment.d",
        ".config/environment.d/**",
        ".config/autostart",
        ".config/autostart/**",
        // On the PATH of Debian's and Fedora's default `.profile`/`.bashrc`.
        "bin",
        "bin/**",
        ".local/bin",
        ".local/bin/**",
        // Commands git runs for the user (hooks, pagers, editors).
        ".gitconfig",
        ".config/git",
        ".config/git/**",
    ];
    [
        (
            Protection::UnitFiles,
            vec![
                // The directories themselves too, and those above them: a directory made
                // there (or a symlink to one of the unit's) would take files in unseen, as
                // the kernel names them by where they are.
                format!("{h}/.config"),
                format!("{h}/.config/systemd"),
                format!("{h}/.config/systemd/**"),
                format!("{h}/.local"),
                format!("{h}/.local/share"),
                format!("{h}/.local/share/systemd"),
                format!("{h}/.local/share/systemd/**"),
                format!("/run/user/{uid}/systemd"),
                format!("/run/user/{uid}/systemd/**"),
            ],
        ),
        (
            Protection::RunsAsRoot,
            files.iter().map(|f| format!("{h}/{f}")).collect(),
        ),
    ]
}

/// The source named for the rules [`protected_paths`] makes under protection `p`.
pub fn protection_source(p: Protection) -> String {
    format!("(protection {}: a user unit's user's files)", p.name())
}

/// Merges a user unit's policy: root's files (`root_files`, read with `read_root`) as one
/// layer, the user's own (`own_files`, read with `read_own`, which should refuse files the
/// user does not own: [`super::dropin::read_owned`]) as a layer that only tightens (see the
/// module's comment). `home` and `uid`: the user's, whose files [`protected_paths`] names,
/// denied for writing whenever the result is armored.
#[allow(clippy::too_many_arguments)]
pub fn merge_user(
    lookup: &Lookup,
    root_files: &[PathBuf],
    own_files: &[PathBuf],
    unit: &UnitName,
    read_root: &mut Read,
    read_own: &mut Read,
    (home, uid): (&Path, u32),
    diags: &mut Diagnostics,
) -> Policy {
    let mut policy =
        resolve::merge_layers_from(lookup, &[], root_files, Some(unit), read_root, diags);
    let root_speaks = policy.is_armored();
    let (layer, mode_set) = resolve::merge_onto(
        lookup,
        Policy::default(),
        own_files,
        false,
        Some(unit),
        read_own,
        diags,
    );
    policy.configured |= layer.configured;
    policy.unreadable.extend(layer.unreadable);
    for (p, src) in &layer.exempt_sources {
        diags.warning(
            src,
            format!(
                "ArmorExempt={} is not honored in a user's own files: they can only tighten \
                 root's policy",
                p.name()
            ),
        );
    }
    if layer.configured && layer.mode != Mode::Off {
        let mut mode = layer.mode;
        if mode == Mode::Learn {
            let src = own_files
                .first()
                .map_or(Source::new("", 0), |f| Source::new(f, 1));
            diags.warning(
                &src,
                "ArmorMode=learn is not honored in a user's own files (it would lift root's \
                 allow-lists): taken as enforce",
            );
            mode = Mode::Enforce;
        }
        let root_allows: BTreeSet<Class> = policy
            .rules
            .iter()
            .filter(|r| r.action == Action::Allow)
            .map(|r| r.class)
            .chain(policy.broken_allow.iter().copied())
            .collect();
        let speaks = mode_set || !layer.rules.is_empty() || layer.broken > 0;
        let mut kept = 0;
        let mut patterns = 0;
        for r in layer.rules {
            // An allow rule naming a unix socket lifts the protections' refusal of it (the bus,
            // the user's manager): never the user's to lift.
            if r.action == Action::Allow && r.class == Class::Connect && r.is_unix() {
                diags.warning(
                    &r.source,
                    "not honored: a user's allow rule for unix sockets would lift the \
                     protections' refusal of them; narrow them with deny rules",
                );
                continue;
            }
            // Likewise other units named by `allow signal`/`allow ptrace`.
            if r.action == Action::Allow && matches!(r.class, Class::Signal | Class::Ptrace) {
                diags.warning(
                    &r.source,
                    "not honored: a user's allow rule for signals or tracing would lift the \
                     protections' refusal of them",
                );
                continue;
            }
            if r.action == Action::Allow
                && (root_allows.contains(&r.class) || policy.mode == Mode::Learn)
            {
                diags.warning(
                    &r.source,
                    format!(
                        "not honored: root's policy for this unit allow-lists {} (or learns), \
                         and a user's allow rule cannot widen it; narrow it with deny rules",
                        r.class.as_str()
                    ),
                );
                continue;
            }
            patterns += match &r.target {
                Target::Paths(v) => v.len(),
                Target::Sockets(v) => v.len(),
                Target::Ports(v) => v.len(),
                _ => 1,
            };
            if kept == MAX_OWN_RULES || patterns > MAX_OWN_PATTERNS {
                diags.error(
                    &r.source,
                    format!(
                        "a user's own files may add at most {MAX_OWN_RULES} rules and \
                         {MAX_OWN_PATTERNS} patterns to a unit; this one and the rest are not \
                         read"
                    ),
                );
                break;
            }
            kept += 1;
            policy.rules.push(r);
        }
        policy.broken_allow.extend(layer.broken_allow);
        policy.broken += layer.broken;
        if speaks {
            policy.mode = if root_speaks {
                policy.mode.strictest(mode)
            } else {
                mode
            };
        }
    }
    if policy.is_armored() {
        for (p, paths) in protected_paths(home, uid) {
            if policy.is_exempt(p) {
                continue;
            }
            let source = Source::new(protection_source(p), 1);
            let text = format!("deny write {}", paths.join(" "));
            match Rule::parse(&text, None, source.clone()) {
                Ok(r) => policy.rules.push(r),
                // A home directory no pattern can name: refused rather than left writable.
                Err(e) => diags.error(&source, format!("{text}: {e}")),
            }
        }
    }
    policy
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::dropin;

    fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    fn merged(root: &[&str], own: &[&str]) -> (Policy, Diagnostics) {
        let dir = tempfile::tempdir().unwrap();
        let r: Vec<PathBuf> = root
            .iter()
            .enumerate()
            .map(|(i, t)| write(dir.path(), &format!("etc/a.service.d/{i}.conf"), t))
            .collect();
        let o: Vec<PathBuf> = own
            .iter()
            .enumerate()
            .map(|(i, t)| write(dir.path(), &format!("home/a.service.d/{i}.conf"), t))
            .collect();
        let mut diags = Diagnostics::default();
        let lookup = Lookup {
            root: dir.path().to_path_buf(),
            extra: Vec::new(),
        };
        let p = merge_user(
            &lookup,
            &r,
            &o,
            &UnitName::new("a.service"),
            &mut |f| dropin::read_shared(f),
            &mut |f| dropin::read_shared(f),
            (Path::new("/home/u"), 1000),
            &mut diags,
        );
        (p, diags)
    }

    fn texts(p: &Policy) -> Vec<String> {
        p.rules.iter().map(|r| r.to_string()).collect()
    }

    #[test]
    fn a_users_deny_rules_are_added_to_roots() {
        let (p, d) = merged(
            &["[X-Armor]\nArmorPolicy=deny write /etc/\n"],
            &["[X-Armor]\nArmorPolicy=deny read /home/u/secret/**\n"],
        );
        assert_eq!(d.errors().count(), 0, "{d:?}");
        let t = texts(&p);
        assert_eq!(t[0], "deny write /etc/");
        assert_eq!(t[1], "deny read /home/u/secret/**");
        assert!(t[2].starts_with("deny write /home/u/.config /home/u/.config/systemd"));
        assert!(t[3].starts_with("deny write /home/u/.profile /home/u/.bashrc"));
        assert_eq!(t.len(), 4);
        assert_eq!(p.mode, Mode::Enforce);
    }

    #[test]
    fn a_users_allow_rule_cannot_widen_roots_allow_list() {
        let (p, d) = merged(
            &["[X-Armor]\nArmorPolicy=allow exec /usr/bin/**\n"],
            &["[X-Armor]\nArmorPolicy=allow exec /home/u/tools/**\nArmorPolicy=allow read /usr/**\n"],
        );
        let t = texts(&p);
        assert!(t.contains(&"allow exec /usr/bin/**".to_string()));
        assert!(!t.iter().any(|r| r.contains("/home/u/tools")), "{t:?}");
        // Where root's policy has no allow-list, the user's rule makes one: it narrows.
        assert!(t.contains(&"allow read /usr/**".to_string()));
        assert!(d
            .0
            .iter()
            .any(|x| x.message.contains("cannot widen") && x.source.line == 2));
    }

    #[test]
    fn a_user_cannot_lift_a_protection_by_allowing_a_socket() {
        let (p, d) = merged(
            &["[X-Armor]\nArmorPolicy=deny write /etc/\n"],
            &["[X-Armor]\nArmorPolicy=allow connect unix:/run/user/1000/bus\n"],
        );
        assert!(!texts(&p).iter().any(|r| r.contains("/run/user/1000/bus")));
        let (p, _) = merged(
            &["[X-Armor]\nArmorPolicy=deny write /etc/\n"],
            &["[X-Armor]\nArmorPolicy=allow ptrace other.service\n"],
        );
        assert!(!texts(&p).iter().any(|r| r.contains("other.service")));
        assert!(d.0.iter().any(|x| x.message.contains("unix sockets")));
    }

    #[test]
    fn a_user_cannot_exempt_soften_or_turn_off_roots_rules() {
        let (p, _) = merged(
            &["[X-Armor]\nArmorPolicy=deny write /etc/\n"],
            &["[X-Armor]\nArmorMode=audit\nArmorExempt=bus\nArmorPolicy=deny read /x\n"],
        );
        assert_eq!(p.mode, Mode::Enforce);
        assert!(p.exempt.is_empty());
        let (p, _) = merged(
            &["[X-Armor]\nArmorPolicy=deny write /etc/\n"],
            &["[X-Armor]\nArmorMode=off\nArmorPolicy=\n"],
        );
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(texts(&p)[0], "deny write /etc/");
        let (p, _) = merged(
            &["[X-Armor]\nArmorPolicy=allow read /usr/**\n"],
            &["[X-Armor]\nArmorMode=learn\nArmorPolicy=allow read /home/**\n"],
        );
        assert_eq!(p.mode, Mode::Enforce);
        assert!(!texts(&p).iter().any(|r| r.contains("/home/**")));
    }

    #[test]
    fn roots_exemption_lifts_the_rule_of_that_protection() {
        let (p, _) = merged(
            &["[X-Armor]\nArmorExempt=runs-as-root\nArmorPolicy=deny write /etc/\n"],
            &[],
        );
        let t = texts(&p);
        assert_eq!(t.len(), 2, "{t:?}");
        assert!(t[1].starts_with("deny write /home/u/.config /home/u/.config/systemd"));
    }

    #[test]
    fn a_users_own_files_alone_armor_the_unit() {
        let (p, _) = merged(
            &[],
            &["[X-Armor]\nArmorMode=audit\nArmorPolicy=deny read /x\n"],
        );
        assert!(p.is_armored());
        assert_eq!(p.mode, Mode::Audit);
        let (p, _) = merged(&[], &[]);
        assert!(!p.is_armored());
        assert!(
            p.rules.is_empty(),
            "no protection rules for an unarmored unit"
        );
    }

    #[test]
    fn a_user_cannot_add_more_than_the_limit() {
        let many: String = (0..MAX_OWN_RULES + 1)
            .map(|i| format!("ArmorPolicy=deny read /x/{i}\n"))
            .collect();
        let (_, d) = merged(&[], &[&format!("[X-Armor]\n{many}")]);
        assert_eq!(d.errors().count(), 1);
        let paths: String = (0..MAX_OWN_PATTERNS + 1)
            .map(|i| format!(" /x/{i}"))
            .collect();
        let (_, d) = merged(
            &[],
            &[&format!("[X-Armor]\nArmorPolicy=deny read{paths}\n")],
        );
        assert_eq!(d.errors().count(), 1, "one rule of too many paths");
    }
}
