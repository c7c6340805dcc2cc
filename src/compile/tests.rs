//! Host tests of the compiler: decisions, limits, fail-closed tables.

use super::*;

fn policy(rules: &[&str]) -> Policy {
    Policy::of(rules)
}

fn decide(t: &Tables, class: Class, path: &str) -> Verdict {
    t.decide(class, path.as_bytes())
}

#[test]
fn refuse_all_refuses_every_class() {
    let t = refuse_all(&policy(&["deny read /srv/"]));
    for class in [Class::Read, Class::Write, Class::Exec] {
        for path in ["/usr/bin/app", "/", "/run/systemd/journal/socket"] {
            // Refused by the empty allow-list, or first by a protection (every one is in
            // force).
            match decide(&t, class, path) {
                Verdict::Deny(r) if r == RULE_NOT_ALLOWED || protection_of(r).is_some() => {}
                v => panic!("{class:?} {path}: {v:?}"),
            }
        }
    }
    assert_eq!(
        t.protect.count_ones() as usize,
        Protection::ALL.len(),
        "every protection in force"
    );
}

/// Compiles `n` rules `deny read /srv/PREFIX/I` and checks the policy is refused with an
/// error containing `why`, by counting, not after building the DFA (which takes seconds in a
/// debug build).
fn refused_at_once(n: usize, prefix: &str, why: &str) {
    let rules: Vec<String> = (0..n)
        .map(|i| format!("deny read /srv/{prefix}/{i}"))
        .collect();
    let refs: Vec<&str> = rules.iter().map(String::as_str).collect();
    // The error naming the limit is the check made before any compiling (a compile that ran
    // out of room would say so in other words), so no clock is needed to tell it: a time
    // limit here failed on a loaded machine.
    let err = compile(&policy(&refs)).unwrap_err();
    assert!(err.to_string().contains(why), "{err}");
}

#[test]
fn too_many_patterns_are_refused_before_compiling() {
    refused_at_once(
        MAX_PATTERNS + 1,
        "data",
        &format!("path patterns, more than the {MAX_PATTERNS}"),
    );
}

/// Issue 12's 100,000 simple rules: refused at once, naming the limit.
#[test]
fn a_hundred_thousand_rules_are_refused_at_once() {
    refused_at_once(100_000, "d", "path patterns, more than the ");
}

#[test]
fn many_literal_paths_compile_and_share_their_endings() {
    let paths: Vec<String> = (0..500)
        .map(|i| format!("/srv/data/dir{i}/data.txt"))
        .collect();
    let rule = format!("deny read {}", paths.join(" "));
    let p = policy(&[rule.as_str(), "deny read /srv/data/dir7/other"]);
    let t = compile(&p).unwrap();
    assert_eq!(
        decide(&t, Class::Read, "/srv/data/dir7/data.txt"),
        Verdict::Deny(0)
    );
    // 501 patterns: grouped, so the kernel names the group's first rule, and the daemon's
    // finder the one that matched.
    assert_eq!(
        decide(&t, Class::Read, "/srv/data/dir7/other"),
        Verdict::Deny(0)
    );
    let mut finder = RuleFinder::new(&p, &t.groups).unwrap();
    assert_eq!(finder.find(0, 0, b"/srv/data/dir7/other"), Some(1));
    assert_eq!(finder.find(0, 0, b"/srv/data/dir7/data.txt"), Some(0));
    assert_eq!(
        decide(&t, Class::Read, "/srv/data/dir8/other"),
        Verdict::Allow
    );
    assert_eq!(
        decide(&t, Class::Read, "/srv/data/dir7/data.txz"),
        Verdict::Allow
    );
    // One rule: the 500 endings "/data.txt" decide alike and are merged, leaving about a
    // state per distinct directory prefix (unminimized, each ending is nine states more).
    let states = t
        .cells
        .iter()
        .filter(|c| c.check != CELL_FREE)
        .map(|c| c.next)
        .collect::<std::collections::HashSet<_>>()
        .len();
    assert!(states < 1500, "{states} states");
}

#[test]
fn deny_one_path() {
    let t = compile(&policy(&["deny read /etc/shadow"])).unwrap();
    assert_eq!(decide(&t, Class::Read, "/etc/shadow"), Verdict::Deny(0));
    assert_eq!(decide(&t, Class::Read, "/etc/shadow.bak"), Verdict::Allow);
    assert_eq!(decide(&t, Class::Read, "/etc/passwd"), Verdict::Allow);
    assert_eq!(decide(&t, Class::Write, "/srv/shadow"), Verdict::Allow);
}

#[test]
fn deny_wins_over_allow() {
    let t = compile(&policy(&["allow write /srv/", "deny write /srv/secret/"])).unwrap();
    assert_eq!(decide(&t, Class::Write, "/srv/data"), Verdict::Allow);
    assert_eq!(
        decide(&t, Class::Write, "/srv/secret/key"),
        Verdict::Deny(1)
    );
    // An allow rule makes write an allow-list: everything else is denied.
    assert_eq!(
        decide(&t, Class::Write, "/var/log/x"),
        Verdict::Deny(RULE_NOT_ALLOWED)
    );
    // Other classes are untouched.
    assert_eq!(decide(&t, Class::Read, "/etc/passwd"), Verdict::Allow);
}

#[test]
fn exec_allow_list() {
    let t = compile(&policy(&["allow exec /usr/bin/app /usr/lib/app/**"])).unwrap();
    assert_eq!(decide(&t, Class::Exec, "/usr/bin/app"), Verdict::Allow);
    assert_eq!(
        decide(&t, Class::Exec, "/usr/lib/app/helper"),
        Verdict::Allow
    );
    assert_eq!(
        decide(&t, Class::Exec, "/usr/bin/sh"),
        Verdict::Deny(RULE_NOT_ALLOWED)
    );
    assert_eq!(
        decide(&t, Class::Exec, "/usr/bin/app2"),
        Verdict::Deny(RULE_NOT_ALLOWED)
    );
}

#[test]
fn write_allow_list_lets_systemd_start_the_unit() {
    let p = policy(&["allow write /srv/"]);
    let t = compile_for(&p, Some("/system.slice/app.service")).unwrap();
    assert_eq!(decide(&t, Class::Write, "/dev/null"), Verdict::Allow);
    assert_eq!(
        decide(
            &t,
            Class::Write,
            "/sys/fs/cgroup/system.slice/app.service/cgroup.procs"
        ),
        Verdict::Allow
    );
    // Another unit's cgroup is no way out.
    assert_eq!(
        decide(
            &t,
            Class::Write,
            "/sys/fs/cgroup/system.slice/other.service/cgroup.procs"
        ),
        Verdict::Deny(RULE_NOT_ALLOWED)
    );
    assert_eq!(
        decide(&t, Class::Write, "/var/log/x"),
        Verdict::Deny(RULE_NOT_ALLOWED)
    );
}

#[test]
fn audit_rules_report_and_allow() {
    let t = compile(&policy(&[
        "audit read /srv/www/**",
        "deny read /srv/www/private/",
    ]))
    .unwrap();
    assert_eq!(
        decide(&t, Class::Read, "/srv/www/index.html"),
        Verdict::Audit(0)
    );
    assert_eq!(
        decide(&t, Class::Read, "/srv/www/private/x"),
        Verdict::Deny(1)
    );
    assert_eq!(decide(&t, Class::Read, "/srv/other"), Verdict::Allow);
}

#[test]
fn first_matching_deny_is_reported() {
    let t = compile(&policy(&["deny read /etc/", "deny read /etc/shadow"])).unwrap();
    assert_eq!(decide(&t, Class::Read, "/etc/shadow"), Verdict::Deny(0));
}

#[test]
fn cost_does_not_grow_with_rules() {
    // Thousands of rules compile, and the state count stays bounded by the paths' shape.
    let rules: Vec<String> = (0..300)
        .map(|i| format!("deny read /data/item{i}/"))
        .collect();
    let refs: Vec<&str> = rules.iter().map(|s| s.as_str()).collect();
    let p = policy(&refs);
    let t = compile(&p).unwrap();
    // Grouped (more than GROUP_ABOVE patterns): the kernel names the first rule, the
    // daemon's finder the one that matched.
    assert_eq!(decide(&t, Class::Read, "/data/item299/x"), Verdict::Deny(0));
    let mut finder = RuleFinder::new(&p, &t.groups).unwrap();
    assert_eq!(finder.find(0, 0, b"/data/item299/x"), Some(299));
    assert_eq!(decide(&t, Class::Read, "/data/item300/x"), Verdict::Allow);
    assert!(t.accept.len() < 10_000);
}

#[test]
fn empty_policy_decides_only_the_implicit_protections() {
    let t = compile(&policy(&[])).unwrap();
    assert_eq!(t.classes, 1 << 1 | 1 << UNIX_CLASS);
    assert_eq!(t.allowlist, 0);
    assert_eq!(decide(&t, Class::Read, "/etc/shadow"), Verdict::Allow);
    assert_eq!(decide(&t, Class::Write, "/srv/x"), Verdict::Allow);
}

/// A small deterministic generator (no dependency): xorshift.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

#[test]
fn minimized_tables_decide_exactly_as_unminimized_ones() {
    let parts = ["a", "b", "ab", "*", "**", "x?", "etc", "a.b"];
    let actions = ["deny", "allow", "audit"];
    let classes = ["read", "write", "exec"];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20 {
        let mut rules = Vec::new();
        for _ in 0..1 + rng.next() % 6 {
            let depth = 1 + rng.next() % 3;
            let mut path = String::new();
            for _ in 0..depth {
                path.push('/');
                path.push_str(rng.pick(&parts));
            }
            if rng.next() % 3 == 0 {
                path.push('/');
            }
            rules.push(format!(
                "{} {} {path}",
                rng.pick(&actions),
                rng.pick(&classes)
            ));
        }
        let refs: Vec<&str> = rules.iter().map(String::as_str).collect();
        let p = policy(&refs);
        let min = compile_impl(&p, None, true, true).unwrap();
        let raw = compile_impl(&p, None, false, true).unwrap();
        let states = |t: &Tables| {
            t.cells
                .iter()
                .filter(|c| c.check != CELL_FREE)
                .map(|c| c.next)
                .collect::<std::collections::HashSet<_>>()
                .len()
        };
        assert!(states(&min) <= states(&raw), "{rules:?}");
        for _ in 0..100 {
            let mut path = String::new();
            for _ in 0..1 + rng.next() % 4 {
                path.push('/');
                path.push_str(rng.pick(&["a", "b", "ab", "x", "xy", "etc", "a.b", "c"]));
            }
            for class in [Class::Read, Class::Write, Class::Exec] {
                assert_eq!(
                    decide(&min, class, &path),
                    decide(&raw, class, &path),
                    "{rules:?} {class:?} {path}"
                );
            }
        }
    }
}

#[test]
fn kernel_settings_cover_driver_binding_and_pci_device_files() {
    let t = compile(&policy(&[])).unwrap();
    let refused = Verdict::Deny(RULE_PROTECT + Protection::KernelSettings as u32);
    for path in [
        "/sys/power/resume",
        "/sys/kernel/config/nvmet/subsystems/x/namespaces/1/device_path",
        "/sys/bus/pci/drivers/nvme/unbind",
        "/sys/bus/pci/drivers/vfio-pci/new_id",
        "/sys/bus/pci/drivers_probe",
        "/sys/bus/pci/rescan",
        "/sys/devices/pci0000:00/0000:00:04.0/driver_override",
        "/sys/devices/pci0000:00/0000:00:04.0/resource0",
        "/sys/devices/pci0000:00/0000:00:04.0/config",
        "/sys/devices/pci0000:00/0000:00:04.0/remove",
        // Taking disks, controllers, CPUs and memory away, and file systems' own switches.
        "/sys/devices/system/cpu/cpu1/online",
        "/sys/devices/system/memory/memory8/state",
        "/sys/devices/pci0000:00/0000:00:05.0/virtio2/host0/target0:0:0/0:0:0:0/delete",
        "/sys/devices/virtual/nvme-fabrics/ctl/nvme0/delete_controller",
        "/sys/fs/ext4/vda/trigger_fs_error",
    ] {
        assert_eq!(decide(&t, Class::Write, path), refused, "{path}");
    }
    for path in [
        "/sys/devices/pci0000:00/0000:00:04.0/power/control",
        "/sys/block/sda/queue/scheduler",
    ] {
        assert_eq!(decide(&t, Class::Write, path), Verdict::Allow, "{path}");
    }
    assert_eq!(
        decide(
            &t,
            Class::Read,
            "/sys/devices/pci0000:00/0000:00:04.0/config"
        ),
        Verdict::Allow
    );
}

#[test]
fn the_cap_counts_the_policys_own_patterns_only() {
    // Exactly MAX_PATTERNS of its own compile, whatever the implicit protections add.
    let rules: Vec<String> = (0..MAX_PATTERNS)
        .map(|i| format!("deny exec /srv/data/x{i}"))
        .collect();
    let refs: Vec<&str> = rules.iter().map(String::as_str).collect();
    let p = policy(&refs);
    let t = compile(&p).unwrap();
    assert_eq!(decide(&t, Class::Exec, "/srv/data/x7"), Verdict::Deny(0));
    assert_eq!(
        RuleFinder::new(&p, &t.groups)
            .unwrap()
            .find(0, 2, b"/srv/data/x7"),
        Some(7)
    );
    assert_eq!(decide(&t, Class::Exec, "/srv/data/y"), Verdict::Allow);
}

#[test]
fn memfd_exec_is_decided_by_exec_rules() {
    let t = compile(&policy(&["deny exec memfd:"])).unwrap();
    assert_eq!(decide(&t, Class::Exec, "memfd:loader"), Verdict::Deny(0));
    assert_eq!(decide(&t, Class::Exec, "/usr/bin/true"), Verdict::Allow);
    let t = compile(&policy(&["allow exec /usr/"])).unwrap();
    assert_eq!(
        decide(&t, Class::Exec, "memfd:loader"),
        Verdict::Deny(RULE_NOT_ALLOWED),
        "an exec allow-list names no memfd"
    );
    let err = crate::policy::Rule::parse(
        "deny read memfd:",
        None,
        crate::policy::Source::new("/p.conf", 1),
    )
    .unwrap_err();
    assert!(err.contains("for exec rules"), "{err}");
}

#[test]
fn peers_are_the_units_allow_rules_name() {
    let t = compile(&policy(&[
        "allow signal a.service b.service",
        "allow ptrace b.service",
        "deny signal",
    ]))
    .unwrap();
    assert_eq!(t.peers.get("a.service"), Some(&PEER_SIGNAL));
    assert_eq!(t.peers.get("b.service"), Some(&(PEER_SIGNAL | PEER_PTRACE)));
    assert_eq!(t.peers.len(), 2);
}

#[test]
fn peers_with_from_are_for_their_executables_only() {
    let t = compile(&policy(&[
        "deny read /x from=/usr/bin/cat",
        "allow signal a.service from=/usr/bin/kill",
        "allow ptrace a.service b.service from=/usr/bin/gdb",
        "allow signal b.service",
    ]))
    .unwrap();
    // /usr/bin/cat is pattern 0, kill 1, gdb 2.
    assert_eq!(
        t.peers.get("a.service"),
        Some(&(1 << (PEER_SIGNAL_FROM_SHIFT + 1) | 1 << (PEER_PTRACE_FROM_SHIFT + 2)))
    );
    assert_eq!(
        t.peers.get("b.service"),
        Some(&(PEER_SIGNAL | 1 << (PEER_PTRACE_FROM_SHIFT + 2)))
    );
    assert_eq!(t.exe_mask(b"/usr/bin/kill"), 1 << 1);
    // Reaching another unit makes no allow-list (kill and gdb may execute any program), but
    // the unit's processes may not attach to one another.
    assert_eq!(t.from_held, from::FROM_REACHES);
    assert!(!t.held_exec(b"/usr/bin/cat", 1 << 1));
}

#[test]
fn long_patterns_are_refused_by_their_size_before_compiling() {
    refused_at_once(
        3000,
        &"x".repeat(400),
        &format!("bytes of path patterns, more than the {MAX_PATTERN_BYTES}"),
    );
}

/// A user unit (its cgroup in a user manager's tree) may notify its own manager, whose socket
/// is in the user's run-time directory the bus protection closes; no other user's.
#[test]
fn a_user_unit_reaches_its_managers_notify_socket() {
    let p = policy(&["deny read /srv/"]);
    let cg = "/user.slice/user-1500.slice/user@1500.service/app.slice/a.service";
    let t = compile_for(&p, Some(cg)).unwrap();
    assert_eq!(
        decide(&t, Class::Connect, "/run/user/1500/systemd/notify"),
        Verdict::Allow
    );
    for other in [
        "/run/user/1501/systemd/notify",
        "/run/user/1500/systemd/private",
    ] {
        assert!(
            matches!(decide(&t, Class::Connect, other), Verdict::Deny(_)),
            "{other}"
        );
    }
    let t = compile_for(&p, Some("/system.slice/a.service")).unwrap();
    assert!(matches!(
        decide(&t, Class::Connect, "/run/user/1500/systemd/notify"),
        Verdict::Deny(_)
    ));
    assert_eq!(
        user_manager_uid("/user.slice/user-1.slice/user@2.service/x"),
        None
    );
}
