//! Host tests of `from=` (from.rs): masks, narrowing, allow-lists per executable, the tables of
//! capabilities, families and ports, and what renames compare.

use super::super::*;

fn policy(rules: &[&str]) -> Policy {
    Policy::of(rules)
}

#[test]
fn from_narrows_cap_net_and_port_rules() {
    let t = compile(&policy(&[
        "deny net raw",
        "deny read /x from=/usr/bin/a",
        "deny read /y",
        "deny cap sys_admin from=/usr/bin/a",
        "deny connect tcp:25 from=/usr/bin/a",
        "allow cap net_bind_service from=/usr/bin/b",
        "allow connect tcp:5432 from=/usr/bin/b",
        "audit net packet from=/usr/bin/*",
    ]))
    .unwrap();
    let (a, b, sh) = (
        t.exe_mask(b"/usr/bin/a"),
        t.exe_mask(b"/usr/bin/b"),
        t.exe_mask(b"/bin/sh"),
    );
    assert_eq!((a, b, sh), (0b101, 0b110, 0));
    const SYS_ADMIN: usize = 21;
    const NET_BIND: usize = 10;
    const INET: usize = 2;
    const PACKET: usize = 17;
    // deny cap with from=: a only; the rest of the unit keeps the capability.
    assert_eq!(t.cap_verdict(SYS_ADMIN, a), Verdict::Deny(3));
    assert_eq!(t.cap_verdict(SYS_ADMIN, sh), Verdict::Allow);
    // allow cap with from=: an allow-list for b only.
    assert_eq!(t.cap_verdict(NET_BIND, b), Verdict::Allow);
    assert_eq!(t.cap_verdict(SYS_ADMIN, b), Verdict::Deny(RULE_NOT_ALLOWED));
    assert_eq!(t.cap_verdict(0, b), Verdict::Deny(RULE_NOT_ALLOWED));
    assert_eq!(t.cap_verdict(0, a), Verdict::Allow);
    assert_eq!(t.cap_verdict(0, sh), Verdict::Allow);
    // Families: the rule without from= for everyone, the audit for /usr/bin/* only.
    assert_eq!(t.socket_verdict(INET, true, sh), Verdict::Deny(0));
    assert_eq!(t.socket_verdict(INET, true, a), Verdict::Deny(0));
    assert_eq!(t.socket_verdict(PACKET, false, a), Verdict::Audit(7));
    assert_eq!(t.socket_verdict(PACKET, false, sh), Verdict::Allow);
    // Ports: the deny for a, the allow-list for b.
    let local = std::net::Ipv4Addr::LOCALHOST.to_ipv6_mapped().octets();
    let tcp = crate::policy::net::Proto::Tcp;
    assert_eq!(
        t.net.decide_port(false, tcp, local, 25, a),
        Verdict::Deny(4)
    );
    assert_eq!(t.net.decide_port(false, tcp, local, 25, sh), Verdict::Allow);
    assert_eq!(
        t.net.decide_port(false, tcp, local, 25, b),
        Verdict::Deny(RULE_NOT_ALLOWED)
    );
    assert_eq!(
        t.net.decide_port(false, tcp, local, 5432, b),
        Verdict::Allow
    );
    assert_eq!(t.net.decide_port(false, tcp, local, 80, a), Verdict::Allow);
    // The hooks look at capabilities and sockets only where some table decides one.
    assert!(t.any_caps() && t.any_net());
    let only = compile(&policy(&["deny cap chown from=/usr/bin/a"])).unwrap();
    assert!(!only.caps.any() && only.any_caps());
    let only = compile(&policy(&["deny net packet from=/usr/bin/a"])).unwrap();
    assert!(!only.net.any() && only.any_net());
    assert_eq!(t.decide(Class::Read, b"/y"), Verdict::Deny(2));
}

#[test]
fn several_from_patterns_take_the_strictest() {
    // A process matching two patterns: a refusal by either table wins (fail closed).
    let t = compile(&policy(&[
        "allow cap chown from=/usr/bin/*",
        "deny cap chown from=/usr/bin/a",
        "audit cap fowner from=/usr/bin/a",
    ]))
    .unwrap();
    let a = t.exe_mask(b"/usr/bin/a");
    assert_eq!(a.count_ones(), 2);
    assert_eq!(t.cap_verdict(0, a), Verdict::Deny(1));
    assert_eq!(t.cap_verdict(0, t.exe_mask(b"/usr/bin/b")), Verdict::Allow);
    // fowner: the allow-list of /usr/bin/* refuses it, which wins over a's audit.
    assert_eq!(t.cap_verdict(3, a), Verdict::Deny(RULE_NOT_ALLOWED));
}

/// `from=` masks of `/usr/bin/a`, `/usr/bin/b` and `/bin/sh` under `t`.
fn masks(t: &Tables) -> (u8, u8, u8) {
    (
        t.exe_mask(b"/usr/bin/a"),
        t.exe_mask(b"/usr/bin/b"),
        t.exe_mask(b"/bin/sh"),
    )
}

#[test]
fn from_narrows_a_deny_to_its_executable() {
    let t = compile(&policy(&[
        "deny read /x from=/usr/bin/a",
        "deny read /y",
        "audit write /z/ from=/usr/bin/*",
    ]))
    .unwrap();
    assert_ne!(t.from_tag, 0);
    let (a, b, sh) = masks(&t);
    assert_eq!(
        (a, b, sh),
        (0b11, 0b10, 0),
        "a matches both patterns, b one, sh none"
    );
    assert_eq!(t.decide_from(Class::Read, b"/x", a), Verdict::Deny(0));
    assert_eq!(t.decide_from(Class::Read, b"/x", b), Verdict::Allow);
    assert_eq!(t.decide_from(Class::Read, b"/x", sh), Verdict::Allow);
    // Rules without from= hold for every executable.
    for m in [a, b, sh] {
        assert_eq!(t.decide_from(Class::Read, b"/y", m), Verdict::Deny(1));
    }
    assert_eq!(t.decide_from(Class::Write, b"/z/f", b), Verdict::Audit(2));
    assert_eq!(t.decide_from(Class::Write, b"/z/f", sh), Verdict::Allow);
    // A mask walk never decides a path, and a path walk never yields a mask.
    assert_eq!(t.exe_mask(b"/x"), 0);
    // The implicit protections hold whatever the mask.
    assert!(matches!(
        t.decide_from(Class::Write, b"/etc/systemd/system/x.service", a),
        Verdict::Deny(r) if protection_of(r).is_some()
    ));
}

#[test]
fn from_allow_is_an_allow_list_for_its_executable_only() {
    let t = compile(&policy(&[
        "allow read /srv/pub/ from=/usr/bin/a",
        "allow write /srv/out/ from=/usr/bin/a",
        "allow exec /usr/bin/a /usr/lib/ from=/usr/bin/a",
    ]))
    .unwrap();
    let (a, _, sh) = masks(&t);
    assert_eq!((a, sh), (1, 0));
    assert_eq!(t.decide_from(Class::Read, b"/srv/pub/f", a), Verdict::Allow);
    assert_eq!(
        t.decide_from(Class::Read, b"/srv/secret", a),
        Verdict::Deny(RULE_NOT_ALLOWED)
    );
    assert_eq!(
        t.decide_from(Class::Read, b"/srv/secret", sh),
        Verdict::Allow
    );
    assert_eq!(
        t.decide_from(Class::Exec, b"/bin/sh", a),
        Verdict::Deny(RULE_NOT_ALLOWED)
    );
    assert_eq!(t.decide_from(Class::Exec, b"/bin/sh", sh), Verdict::Allow);
    // Held to its lists: it executes only programs of its pattern, whatever its exec rules
    // allow (the loader under /usr/lib/ may be mapped, not executed).
    assert!(t.held_exec(b"/usr/lib/ld-linux.so", a));
    assert!(!t.held_exec(b"/usr/bin/a", a));
    assert!(!t.held_exec(b"/usr/lib/ld-linux.so", sh));
    assert_eq!(t.from_held, 1);
    // A write allow-list with from= still lets systemd's null device through.
    assert_eq!(t.decide_from(Class::Write, b"/dev/null", a), Verdict::Allow);
    // An allow rule without from= makes the class an allow-list for every executable.
    let t = compile(&policy(&[
        "allow read /srv/pub/ from=/usr/bin/a",
        "allow read /etc/",
    ]))
    .unwrap();
    let (a, _, sh) = masks(&t);
    assert_eq!(t.decide_from(Class::Read, b"/srv/pub/f", a), Verdict::Allow);
    assert_eq!(t.decide_from(Class::Read, b"/etc/f", a), Verdict::Allow);
    assert_eq!(
        t.decide_from(Class::Read, b"/srv/pub/f", sh),
        Verdict::Deny(RULE_NOT_ALLOWED)
    );
    assert_eq!(t.decide_from(Class::Read, b"/etc/f", sh), Verdict::Allow);
}

#[test]
fn from_patterns_are_limited_and_tagged() {
    let rules: Vec<String> = (0..=FROM_MAX)
        .map(|i| format!("deny read /x from=/usr/bin/p{i}"))
        .collect();
    let refs: Vec<&str> = rules.iter().map(String::as_str).collect();
    let err = compile(&policy(&refs)).unwrap_err().to_string();
    assert!(err.contains("distinct from= patterns"), "{err}");
    let t = compile(&policy(&refs[..FROM_MAX])).unwrap();
    assert_eq!(t.exe_mask(b"/usr/bin/p6"), 1 << 6);
    // The same rule repeated is one pattern; other patterns are another tag.
    let one = compile(&policy(&[
        "deny read /x from=/usr/bin/a",
        "deny read /y from=/usr/bin/a",
    ]));
    let other = compile(&policy(&["deny read /x from=/usr/bin/b"]));
    assert_ne!(one.unwrap().from_tag, other.unwrap().from_tag);
    // Without from=, nothing changes: no tag, no mask byte.
    let plain = compile(&policy(&["deny read /x"])).unwrap();
    assert_eq!((plain.from_tag, plain.exe_mask(b"/usr/bin/a")), (0, 0));
}

#[test]
fn from_unix_connect_rules() {
    let t = compile(&policy(&[
        "allow connect unix:/run/db.sock from=/usr/bin/a",
    ]))
    .unwrap();
    let (a, _, sh) = masks(&t);
    assert_eq!(
        t.decide_from(Class::Connect, b"/run/db.sock", a),
        Verdict::Allow
    );
    assert_eq!(
        t.decide_from(Class::Connect, b"/run/other.sock", a),
        Verdict::Deny(RULE_NOT_ALLOWED)
    );
    assert_eq!(
        t.decide_from(Class::Connect, b"/run/other.sock", sh),
        Verdict::Allow
    );
}

#[test]
fn from_any_sees_every_rule() {
    // A rename compares names after FROM_ANY: a file under a rule for another executable is
    // told apart from one under none.
    let t = compile(&policy(&["deny read /x from=/usr/bin/a", "deny read /y"])).unwrap();
    let end = |path: &[u8]| t.walk_from(t.start_for(FROM_ANY), path);
    let acc = |path: &[u8]| t.accept.get(&end(path)).copied();
    assert_eq!(acc(b"/x").map(|a| a.deny[0]), Some(0));
    assert_eq!(acc(b"/y").map(|a| a.deny[0]), Some(1));
    assert_eq!(acc(b"/z"), None);
    // Under a mask that matches no from=, /x and /z look alike.
    assert_eq!(
        t.walk_from(t.start_for(0), b"/x"),
        t.walk_from(t.start_for(0), b"/z")
    );
}
