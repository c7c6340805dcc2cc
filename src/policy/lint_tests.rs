use super::*;
use crate::policy::Source;

fn policy(rules: &[&str]) -> Policy {
    let rules = rules
        .iter()
        .enumerate()
        .map(|(i, r)| Rule::parse(r, None, Source::new("/p", i + 1)).unwrap())
        .collect();
    Policy {
        rules,
        configured: true,
        ..Default::default()
    }
}

fn lint_policy(p: &Policy) -> Vec<String> {
    let mut d = Diagnostics::default();
    lint(p, &mut d);
    d.0.iter().map(|d| d.to_string()).collect()
}

fn lint_rules(rules: &[&str]) -> Vec<String> {
    lint_policy(&policy(rules))
}

/// The warnings other than "not enforced by this version".
fn lint_enforced(rules: &[&str]) -> Vec<String> {
    let mut w = lint_rules(rules);
    w.retain(|m| !m.contains("not enforced by this version"));
    w
}

#[test]
fn shadowed_allow() {
    let w = lint_rules(&[
        "deny read /etc/",
        "allow read /etc/passwd",
        "allow read /usr/",
    ]);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0]
        .starts_with("/p:2: warning: 'allow read /etc/passwd' has no effect: 'deny read' at /p:1"));
}

/// The many-pattern index finds, for every allow path, the deny rule the pairwise test
/// finds: the first in order that covers it, subtrees only by subtrees.
#[test]
fn deny_index_agrees_with_pairwise_covering() {
    let p = policy(&[
        "deny read /srv/a/**",
        "deny read /srv/",
        "deny read /srv/b/*.conf /opt/x?",
        "deny read /var/lib/app",
        "deny read /home/**/secret",
        "deny write /srv/",
    ]);
    let inner: Vec<PathPattern> = [
        "/srv/a/x",
        "/srv/a/",
        "/srv/b/c.conf",
        "/srv/",
        "/opt/xy",
        "/opt/xyz",
        "/var/lib/app",
        "/var/lib/app/",
        "/home/u/v/secret",
        "/etc/passwd",
        "/srv",
    ]
    .iter()
    .map(|t| PathPattern::parse(t).unwrap())
    .collect();
    let mut index = DenyIndex::default();
    for i in &inner {
        let pairwise = first_covering_pairwise(&p, Class::Read, i);
        let indexed = index.first_covering(&p, Class::Read, i);
        assert_eq!(
            indexed.map(|r| &r.source),
            pairwise.map(|r| &r.source),
            "{}",
            i.as_str()
        );
    }
    // The many-pattern regex was built (not the pairwise fallback).
    assert!(matches!(index.classes.get(&Class::Read), Some(Some(_))));
    // At least one is covered, and one is not, so that the test tells them apart.
    assert!(index.first_covering(&p, Class::Read, &inner[0]).is_some());
    assert!(index.first_covering(&p, Class::Read, &inner[9]).is_none());
}

#[test]
fn audit_under_deny_and_duplicates() {
    let w = lint_rules(&[
        "deny write /srv/",
        "audit write /srv/www/**",
        "deny write /srv/",
    ]);
    assert!(
        w.iter()
            .any(|m| m.starts_with("/p:2: warning: 'audit write /srv/www/**' has no effect")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|m| m.starts_with("/p:3: warning: duplicate of the rule at /p:1")),
        "{w:?}"
    );
}

#[test]
fn port_rules_want_net_admin_refused() {
    let w = lint_rules(&["deny connect tcp:25"]);
    assert!(w.iter().any(|m| m.contains("CAP_NET_ADMIN")), "{w:?}");
    let w = lint_rules(&["deny connect tcp:25", "deny cap net_admin"]);
    assert!(!w.iter().any(|m| m.contains("CAP_NET_ADMIN")), "{w:?}");
    let w = lint_rules(&["deny connect unix:/run/x.sock"]);
    assert!(!w.iter().any(|m| m.contains("CAP_NET_ADMIN")), "{w:?}");
}

#[test]
fn from_is_enforced_in_every_class() {
    let w = lint_rules(&[
        "audit read /x from=/usr/bin/a",
        "audit connect tcp:25 from=/usr/bin/a",
        "audit connect unix:@x from=/usr/bin/a",
        "audit cap sys_admin from=/usr/bin/a",
        "audit net packet from=/usr/bin/a",
    ]);
    assert!(!w.iter().any(|m| m.contains("from=")), "{w:?}");
    let w = lint_rules(&["deny cap sys_admin from=/usr/bin/a"]);
    assert!(w[0].contains("a copy of the program"), "{w:?}");
}

#[test]
fn from_deny_and_allow_lists_are_explained() {
    let w = lint_rules(&["deny read /x from=/usr/bin/a"]);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("a copy of the program"), "{w:?}");
    // A program held to allow-lists without an exec list: code mapped into it runs
    // with its rules. Said once.
    let w = lint_rules(&[
        "allow read /x from=/usr/bin/a",
        "allow write /y from=/usr/bin/a",
    ]);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("/p:1: warning: processes running /usr/bin/a"),
        "{w:?}"
    );
    let w = lint_rules(&[
        "allow read /x from=/usr/bin/a",
        "allow exec /usr/bin/a /usr/lib/** from=/usr/bin/a",
    ]);
    assert!(w.is_empty(), "{w:?}");
}

#[test]
fn clean_policy_is_quiet() {
    assert!(lint_rules(&[
        "deny write /etc/",
        "allow exec /usr/bin/app /usr/lib/x86_64-linux-gnu/**",
        "audit read /srv/**"
    ])
    .is_empty());
}

#[test]
fn each_exemption_warns_at_its_line() {
    let mut p = policy(&["deny read /x"]);
    for (prot, line) in [(Protection::Bpf, 7), (Protection::Mount, 9)] {
        p.exempt.insert(prot);
        p.exempt_sources.insert(prot, Source::new("/e.conf", line));
    }
    let w = lint_policy(&p);
    assert_eq!(
        w,
        [
            "/e.conf:7: warning: ArmorExempt=bpf: this unit may use bpf(); bpf() can read, \
             change or detach unitarmor's own programs and maps",
            format!(
                "/e.conf:9: warning: ArmorExempt=mount: this unit may {}; {}",
                Protection::Mount.lifted(),
                Protection::Mount.reason()
            )
            .as_str(),
        ]
    );
}

#[test]
fn allowing_the_bus_sockets_warns() {
    let w = lint_enforced(&[
        "allow connect unix:/run/dbus/system_bus_socket",
        "allow connect unix:/run/user/1000/bus unix:/run/app.sock",
        "allow connect unix:/run/**",
        "allow connect unix:@app unix:/run/app/",
        "deny connect unix:/run/systemd/private",
        "audit connect unix:/run/docker.sock",
        // Every socket of the journal's directory: its varlink socket too.
        "allow connect unix:/run/systemd/journal/",
    ]);
    let lines: Vec<&str> = w.iter().map(|m| &m[..5]).collect();
    assert_eq!(lines, ["/p:1:", "/p:2:", "/p:3:", "/p:7:"], "{w:?}");
    assert!(
        w[3].contains("reaches /run/systemd/journal/io.systemd.journal"),
        "{w:?}"
    );
    assert!(w[0].ends_with(
        "'allow connect unix:/run/dbus/system_bus_socket' reaches \
         /run/dbus/system_bus_socket: this unit may ask the service manager or the bus to \
         run code outside its armor"
    ));
    assert!(
        w[1].contains("unix:/run/user/1000/bus' reaches /run/user/"),
        "{w:?}"
    );
    // With bus lifted, ArmorExempt='s own warning says it.
    let mut p = policy(&["allow connect unix:/run/dbus/system_bus_socket"]);
    p.exempt.insert(Protection::Bus);
    let w = lint_policy(&p);
    assert!(!w.iter().any(|m| m.contains("reaches")), "{w:?}");
}

#[test]
fn shadowed_unix_sockets() {
    let w = lint_enforced(&[
        "deny connect unix:/run/app/ unix:@priv-*",
        "allow connect unix:/run/app/s.sock unix:@priv-1 unix:@pub",
    ]);
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[0].contains("'allow connect unix:/run/app/s.sock' has no effect"));
    assert!(w[1].contains("'allow connect unix:@priv-1' has no effect"));
}

#[test]
fn exec_allow_list_without_loader_or_libc() {
    let w = lint_rules(&["deny exec /usr/bin/nc", "allow exec /usr/sbin/nginx"]);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("/p:2: warning: exec allow-list: mapping code counts as exec"),
        "{w:?}"
    );
    assert!(w[0].ends_with("or programs fail to start"));
    for ok in [
        "allow exec /usr/lib64/**",
        "allow exec /usr/lib/x86_64-linux-gnu/",
        "allow exec /usr/lib/*/ld-linux-x86-64.so.2",
        "allow exec /usr/lib/aarch64-linux-gnu/libc.so.6",
        "allow exec /",
    ] {
        assert!(
            lint_rules(&["allow exec /usr/sbin/nginx", ok]).is_empty(),
            "{ok}"
        );
    }
    assert!(lint_rules(&["deny exec /usr/bin/nc"]).is_empty());
}
