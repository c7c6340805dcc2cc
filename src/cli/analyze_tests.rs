//! Host tests of `unitarmor analyze`'s assessment.

use super::*;

fn status(mode: &str) -> UnitStatus {
    UnitStatus {
        unit: "app.service".into(),
        mode: mode.into(),
        ..UnitStatus::default()
    }
}

#[test]
fn an_unsandboxed_unarmored_root_service_is_exposed_everywhere() {
    let r = assess(
        "app.service",
        &Sandbox {
            bounding_caps: 64,
            ..Sandbox::default()
        },
        &Policy::default(),
        None,
        &[],
    );
    assert_eq!(r.exposure, 12);
    assert!(r
        .areas
        .iter()
        .all(|a| a.cover == Cover::Neither && a.suggestion.is_some()));
    assert!(!r.armored);
}

#[test]
fn each_side_is_credited_with_what_it_confines() {
    let sandbox = Sandbox {
        protect_system: "strict".into(),
        private_network: true,
        bounding_caps: 64,
        ..Sandbox::default()
    };
    let policy = Policy::of(&["deny read /etc/shadow", "deny cap sys_admin"]);
    let rules = [
        RuleCount {
            unit: "app.service".into(),
            rule: "deny read /etc/shadow".into(),
            source: "/x.conf:2".into(),
            denied: 3,
            ..RuleCount::default()
        },
        RuleCount {
            unit: "app.service".into(),
            rule: "deny cap sys_admin".into(),
            source: "/x.conf:3".into(),
            ..RuleCount::default()
        },
    ];
    let r = assess(
        "app.service",
        &sandbox,
        &policy,
        Some(&status("enforce")),
        &rules,
    );
    let cover: Vec<Cover> = r.areas.iter().map(|a| a.cover).collect();
    assert_eq!(
        cover,
        [
            Cover::Both,      // files: ProtectSystem=strict and a read rule
            Cover::Neither,   // exec
            Cover::Systemd,   // network: PrivateNetwork=yes
            Cover::Unitarmor, // capabilities: a cap rule, root with every capability
            Cover::Unitarmor, // processes: the signal and ptrace protections
            Cover::Unitarmor, // kernel: the protections
        ]
    );
    assert_eq!(r.exposure, 2 + 1 + 1 + 1 + 1);
    assert_eq!(r.never_decided, ["deny cap sys_admin (/x.conf:3)"]);
}

#[test]
fn audit_mode_confines_nothing() {
    let policy = Policy::of(&["deny read /etc/shadow"]);
    let r = assess(
        "app.service",
        &Sandbox {
            bounding_caps: 64,
            ..Sandbox::default()
        },
        &policy,
        Some(&status("audit")),
        &[],
    );
    assert!(r.armored);
    assert_eq!(r.exposure, 12);
}
