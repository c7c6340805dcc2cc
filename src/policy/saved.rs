//! A unit's policy written back as a drop-in that the resolver reads as it reads any other:
//! the form in which the daemon keeps each unit's last good policy on disk, so that a unit
//! whose files have errors after a daemon restart, an upgrade or a reboot keeps the policy it
//! had rather than its files' policy with the broken rules left out.

use std::fmt::Write as _;

use super::{Mode, Policy};

/// The drop-in text of `policy` (merged, its slices' rules among its own), or `None` for one
/// that is not worth keeping: with errors or unreadable files (not good), or in a mode that
/// enforces nothing (`off`, `learn`).
pub fn to_dropin(unit: &str, policy: &Policy) -> Option<String> {
    if policy.broken > 0
        || !policy.broken_allow.is_empty()
        || !policy.unreadable.is_empty()
        || !policy.configured
        || matches!(policy.mode, Mode::Off | Mode::Learn)
    {
        return None;
    }
    let mut out = format!(
        "# The last good policy of {unit}, kept by unitarmor: it is used only while {unit}'s own\n\
         # files have errors and the daemon has no newer policy for it. Do not edit.\n\
         [X-Armor]\nArmorMode={}\n",
        policy.mode.as_str()
    );
    if !policy.exempt.is_empty() {
        let names: Vec<&str> = policy.exempt.iter().map(|p| p.name()).collect();
        let _ = writeln!(out, "ArmorExempt={}", names.join(" "));
    }
    for rule in &policy.rules {
        // Specifiers were expanded when the rule was read: a literal `%` is written `%%`.
        let _ = writeln!(out, "ArmorPolicy={}", rule.to_string().replace('%', "%%"));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::policy::named::Lookup;
    use crate::policy::resolve;
    use crate::policy::specifiers::UnitName;
    use crate::policy::Diagnostics;

    fn resolve_files(dir: &std::path::Path, files: &[(&str, &str)], unit: &str) -> Policy {
        let paths: Vec<PathBuf> = files
            .iter()
            .map(|(name, text)| {
                let p = dir.join(name);
                std::fs::write(&p, text).unwrap();
                p
            })
            .collect();
        let mut diags = Diagnostics::default();
        let policy = resolve::merge_layers(
            &Lookup::system(),
            &[],
            &paths,
            Some(&UnitName::new(unit)),
            &mut diags,
        );
        assert_eq!(diags.errors().count(), 0, "{diags:?}");
        policy
    }

    /// What is read back decides as what was written: the same mode, exemptions and rules
    /// (their sources are the saved file's lines).
    #[test]
    fn reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let unit = "app@web.service";
        let policy = resolve_files(
            dir.path(),
            &[(
                "armor.conf",
                "[X-Armor]\nArmorMode=audit\nArmorExempt=bus mount\n\
                 ArmorPolicy=deny read /srv/%i/secret \"/srv/with space/**\" /srv/100%%/x\n\
                 ArmorPolicy=allow exec /usr/bin/** /usr/lib/** from=/usr/bin/app\n\
                 ArmorPolicy=deny connect tcp:25 tcp:10.0.0.0/8:1-1023 udp:[::1]:53\n\
                 ArmorPolicy=deny connect unix:/run/x.sock unix:@abstract*\n\
                 ArmorPolicy=deny cap sys_admin net_raw\n\
                 ArmorPolicy=allow signal other.service\n\
                 ArmorPolicy=deny net packet raw\n\
                 ArmorPolicy=audit write /etc/\n",
            )],
            unit,
        );
        let text = to_dropin(unit, &policy).unwrap();
        let back = resolve_files(dir.path(), &[("good", &text)], unit);
        assert_eq!(back.mode, policy.mode);
        assert_eq!(back.exempt, policy.exempt);
        let shown = |p: &Policy| p.rules.iter().map(|r| r.to_string()).collect::<Vec<_>>();
        assert_eq!(shown(&back), shown(&policy));
        assert!(shown(&back)[0].contains("/srv/web/secret"), "{text}");
        assert!(shown(&back)[0].contains("/srv/100%/x"), "{text}");
    }

    #[test]
    fn keeps_only_good_enforcing_policies() {
        let good = Policy {
            configured: true,
            ..Policy::default()
        };
        assert!(to_dropin("a.service", &good).is_some());
        let broken = Policy {
            broken: 1,
            ..good.clone()
        };
        assert!(to_dropin("a.service", &broken).is_none());
        let off = Policy {
            mode: Mode::Off,
            ..good.clone()
        };
        assert!(to_dropin("a.service", &off).is_none());
        let unreadable = Policy {
            unreadable: vec!["/etc/x".into()],
            ..good
        };
        assert!(to_dropin("a.service", &unreadable).is_none());
    }
}
