use super::*;
use crate::journal::{MESSAGE_ID_AUDIT, MESSAGE_ID_DENIED, MESSAGE_ID_SUPPRESSED};
use crate::policy::Policy;

/// A verdict record as `journalctl -o json` prints one the daemon wrote.
fn line(
    time: u64,
    action: &str,
    class: &str,
    op: &str,
    path: &str,
    rule: &str,
    src: &str,
) -> String {
    let id = if action == "deny" {
        MESSAGE_ID_DENIED
    } else {
        MESSAGE_ID_AUDIT
    };
    serde_json::json!({
        "__CURSOR": "s=1;i=2",
        "__REALTIME_TIMESTAMP": time.to_string(),
        "__MONOTONIC_TIMESTAMP": "123",
        "PRIORITY": "6",
        "SYSLOG_IDENTIFIER": "unitarmor",
        "MESSAGE": format!("Would deny {op} of {path} by /usr/bin/cat (pid 9): rule \"{rule}\" from {src}"),
        "MESSAGE_ID": id,
        "OBJECT_SYSTEMD_UNIT": "app.service",
        "UNITARMOR_UNIT": "app.service",
        "UNITARMOR_ACTION": action,
        "UNITARMOR_CLASS": class,
        "UNITARMOR_OPERATION": op,
        "UNITARMOR_PATH": path,
        "UNITARMOR_RULE": rule,
        "UNITARMOR_RULE_SOURCE": src,
        "UNITARMOR_MODE": if action == "would-deny" { "audit" } else { "enforce" },
        "UNITARMOR_PID": "9",
        "_PID": "412",
    })
    .to_string()
}

fn summary(time: u64, class: &str, action: &str, rule: &str, src: &str, count: u64) -> String {
    serde_json::json!({
        "__REALTIME_TIMESTAMP": time.to_string(),
        "MESSAGE_ID": MESSAGE_ID_SUPPRESSED,
        "UNITARMOR_UNIT": "app.service",
        "UNITARMOR_RULE": rule,
        "UNITARMOR_RULE_SOURCE": src,
        "UNITARMOR_SUPPRESSED": count.to_string(),
        "UNITARMOR_CLASS": class,
        "UNITARMOR_ACTION": action,
        "UNITARMOR_WINDOW": "10",
    })
    .to_string()
}

fn parse(lines: &[String]) -> Vec<Entry> {
    lines
        .iter()
        .filter_map(|l| parse_line(l).unwrap())
        .collect()
}

const T0: u64 = 1_796_000_000_000_000;
const SEC: u64 = 1_000_000;
const OLD: &str = "/etc/systemd/system/app.service.d/armor.conf:3";

/// The candidate: reads and writes as allow-lists, in enforce mode.
fn candidate() -> Policy {
    Policy::of(&[
        "allow read /usr/ /etc/",
        "allow write /var/lib/app/",
        "deny exec /tmp/**",
        "deny connect tcp:25",
        "allow cap net_bind_service",
    ])
}

#[test]
fn parses_strings_byte_arrays_and_repeated_fields() {
    // A path the journal exports as bytes (it holds a newline), and a repeated field.
    let raw = format!(
        r#"{{"__REALTIME_TIMESTAMP":"{T0}","MESSAGE_ID":"{MESSAGE_ID_AUDIT}","UNITARMOR_ACTION":["would-deny","deny"],"UNITARMOR_CLASS":"read","UNITARMOR_OPERATION":"open","UNITARMOR_PATH":[47,115,114,118,47,97,10,98],"UNITARMOR_RULE":"deny read /srv/","UNITARMOR_RULE_SOURCE":"{OLD}"}}"#
    );
    let Some(Entry::Record(r)) = parse_line(&raw).unwrap() else {
        panic!("not a record");
    };
    assert_eq!(r.time, T0);
    assert_eq!(r.action, "would-deny", "the first of a repeated field");
    assert_eq!(r.path.as_deref(), Some(&b"/srv/a\nb"[..]));
    assert_eq!(r.rule_source, OLD);
    assert_eq!(r.protection, None);
    // Not the daemon's records: skipped; not JSON: an error.
    assert_eq!(
        parse_line(r#"{"MESSAGE":"hello","MESSAGE_ID":"x"}"#).unwrap(),
        None
    );
    assert!(parse_line("-- No entries --").is_err());
    let Some(Entry::Summary(s)) = parse_line(&summary(T0, "read", "audit", "r", OLD, 41)).unwrap()
    else {
        panic!("not a summary");
    };
    assert_eq!((s.count, s.window), (41, Some(10)));
    assert_eq!(s.class.as_deref(), Some("read"));
}

#[test]
fn lists_what_the_candidate_breaks_and_loosens() {
    let entries = parse(&[
        line(
            T0,
            "would-deny",
            "read",
            "open",
            "/etc/app.conf",
            "deny read /etc/",
            OLD,
        ),
        line(
            T0 + SEC,
            "would-deny",
            "read",
            "open",
            "/srv/data/a",
            "deny read /srv/",
            OLD,
        ),
        line(
            T0 + 5 * SEC,
            "would-deny",
            "read",
            "open",
            "/srv/data/a",
            "deny read /srv/",
            OLD,
        ),
        line(
            T0 + 2 * SEC,
            "audit",
            "exec",
            "exec",
            "/tmp/helper",
            "audit exec /tmp/**",
            OLD,
        ),
        line(
            T0 + 3 * SEC,
            "deny",
            "write",
            "open",
            "/var/lib/app/db",
            "deny write /var/",
            OLD,
        ),
        line(
            T0 + 4 * SEC,
            "deny",
            "write",
            "unlink",
            "/var/log/x",
            "deny write /var/",
            OLD,
        ),
    ]);
    let p = candidate();
    let t = compile::compile(&p).unwrap();
    let report = replay(&entries, &mut Candidate::new(&p, &t));
    assert_eq!(report.records, 6);
    assert!(report.not_replayed.is_empty(), "{:?}", report.not_replayed);
    let breaks: Vec<(&str, &str)> = report
        .groups
        .iter()
        .filter(|g| g.change == Change::Breaks)
        .map(|g| (g.object.as_str(), g.now.verdict.as_str()))
        .collect();
    assert_eq!(breaks, [("/tmp/helper", "deny"), ("/srv/data/a", "deny")]);
    let srv = report
        .groups
        .iter()
        .find(|g| g.object == "/srv/data/a")
        .unwrap();
    assert_eq!(
        (srv.records, srv.first, srv.last),
        (2, T0 + SEC, T0 + 5 * SEC)
    );
    assert_eq!(srv.recorded, "would-deny");
    assert_eq!(
        srv.now.rule.as_deref(),
        Some("read is an allow-list and no allow rule matches")
    );
    assert_eq!(srv.now.source.as_deref(), Some("/p.conf:1"));
    let exec = report
        .groups
        .iter()
        .find(|g| g.object == "/tmp/helper")
        .unwrap();
    assert_eq!(exec.now.rule.as_deref(), Some("deny exec /tmp/**"));
    assert_eq!(exec.now.source.as_deref(), Some("/p.conf:3"));
    // The denied write the candidate allows loosens; the other stays refused.
    let loosens: Vec<&Group> = report
        .groups
        .iter()
        .filter(|g| g.change == Change::Loosens)
        .collect();
    assert_eq!(loosens.len(), 1);
    assert_eq!(loosens[0].object, "/var/lib/app/db");
    assert_eq!(loosens[0].now.verdict, "allow");
    assert_eq!(
        loosens[0].now.rule.as_deref(),
        Some("allow write /var/lib/app/")
    );
    assert_eq!(report.count(Change::Same), 2);
    assert_eq!(report.exit_code(), 2);
    let text = render("app.service", p.mode, &report);
    assert!(text.starts_with("app.service: 6 journal records"), "{text}");
    assert!(
        text.contains("2 operations would break, 1 would be allowed"),
        "{text}"
    );
    assert!(
        text.contains("  read open /srv/data/a\n    recorded: would-deny ×2, "),
        "{text}"
    );
    assert!(
        text.contains("unchanged: 2 operations (2 records)"),
        "{text}"
    );
}

#[test]
fn an_audit_mode_candidate_breaks_nothing() {
    let entries = parse(&[
        line(
            T0,
            "would-deny",
            "read",
            "open",
            "/srv/data/a",
            "deny read /srv/",
            OLD,
        ),
        line(
            T0,
            "deny",
            "read",
            "open",
            "/srv/data/b",
            "deny read /srv/",
            OLD,
        ),
    ]);
    let mut p = candidate();
    p.mode = Mode::Audit;
    let t = compile::compile(&p).unwrap();
    let report = replay(&entries, &mut Candidate::new(&p, &t));
    assert_eq!(report.exit_code(), 0);
    assert!(report.groups.iter().all(|g| g.now.verdict == "would-deny"));
    // Refused when recorded, only reported now: loosened.
    assert_eq!(report.count(Change::Loosens), 1);
    assert_eq!(report.count(Change::Same), 1);
}

#[test]
fn protections_and_kernel_verdicts_are_counted_not_replayed() {
    let mut cgroup: serde_json::Value = serde_json::from_str(&line(
        T0,
        "deny",
        "protect",
        "cgroup-write",
        "/sys/fs/cgroup/x",
        "r",
        "implicit",
    ))
    .unwrap();
    cgroup["UNITARMOR_PROTECTION"] = "cgroups".into();
    let mut unitfile: serde_json::Value = serde_json::from_str(&line(
        T0,
        "deny",
        "write",
        "open",
        "/etc/systemd/system/x.service",
        "a unit that rewrites",
        "implicit",
    ))
    .unwrap();
    unitfile["UNITARMOR_PROTECTION"] = "unit-files".into();
    let entries = parse(&[
        cgroup.to_string(),
        unitfile.to_string(),
        line(
            T0,
            "deny",
            "read",
            "open",
            "/x",
            "its path cannot be built",
            "implicit",
        ),
    ]);
    let p = candidate();
    let t = compile::compile(&p).unwrap();
    let report = replay(&entries, &mut Candidate::new(&p, &t));
    assert_eq!(report.records, 3);
    // The path protection is in the tables: replayed, and still refused.
    assert_eq!(report.groups.len(), 1);
    assert_eq!(
        report.groups[0].now.rule.as_deref(),
        Some("protection \"unit-files\"")
    );
    assert_eq!(report.groups[0].change, Change::Same);
    let reasons: Vec<(&str, u64)> = report
        .not_replayed
        .iter()
        .map(|s| (s.reason.as_str(), s.records))
        .collect();
    assert_eq!(
        reasons,
        [
            (
                "decided by the kernel, not by rules: its path cannot be built",
                1
            ),
            ("implicit protection \"cgroups\", decided by identity", 1),
        ]
    );
    let text = render("app.service", p.mode, &report);
    assert!(
        text.contains(
            "not replayed: 1 records (implicit protection \"cgroups\", decided by identity)"
        ),
        "{text}"
    );
}

#[test]
fn summaries_count_for_the_one_operation_they_repeat() {
    let rule = "deny read /srv/";
    let entries = parse(&[
        line(T0, "would-deny", "read", "open", "/srv/a", rule, OLD),
        summary(T0 + 11 * SEC, "read", "would-deny", rule, OLD, 500),
        // A later window with two objects: its summary cannot say whose repeats it counted.
        line(
            T0 + 60 * SEC,
            "would-deny",
            "read",
            "open",
            "/srv/a",
            rule,
            OLD,
        ),
        line(
            T0 + 61 * SEC,
            "would-deny",
            "read",
            "open",
            "/srv/b",
            rule,
            OLD,
        ),
        summary(T0 + 71 * SEC, "read", "would-deny", rule, OLD, 7),
    ]);
    let p = candidate();
    let t = compile::compile(&p).unwrap();
    let report = replay(&entries, &mut Candidate::new(&p, &t));
    assert_eq!(report.records, 3 + 507);
    let a = report.groups.iter().find(|g| g.object == "/srv/a").unwrap();
    assert_eq!((a.records, a.suppressed), (2, 500));
    assert_eq!(report.not_replayed.len(), 1);
    assert_eq!(report.not_replayed[0].records, 7);
    assert!(report.not_replayed[0]
        .reason
        .contains("cannot be attributed"));
}

#[test]
fn ports_capabilities_and_sockets_are_decided_too() {
    let net = |class: &str, op: &str, extra: serde_json::Value| {
        let mut v: serde_json::Value =
            serde_json::from_str(&line(T0, "would-deny", class, op, "", "audit x", OLD)).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("UNITARMOR_PATH");
        o.extend(extra.as_object().unwrap().clone());
        v.to_string()
    };
    let entries = parse(&[
        net(
            "connect",
            "connect",
            serde_json::json!({"UNITARMOR_ADDRESS": "10.0.0.5", "UNITARMOR_PROTOCOL": "tcp", "UNITARMOR_PORT": "25"}),
        ),
        net(
            "connect",
            "connect",
            serde_json::json!({"UNITARMOR_ADDRESS": "::1", "UNITARMOR_PROTOCOL": "tcp", "UNITARMOR_PORT": "443"}),
        ),
        net(
            "cap",
            "capable",
            serde_json::json!({"UNITARMOR_CAPABILITY": "CAP_SYS_ADMIN"}),
        ),
        net(
            "cap",
            "capable",
            serde_json::json!({"UNITARMOR_CAPABILITY": "CAP_NET_BIND_SERVICE"}),
        ),
        net(
            "net",
            "socket",
            serde_json::json!({"UNITARMOR_FAMILY": "inet", "UNITARMOR_SOCKET_TYPE": "stream"}),
        ),
        net(
            "connect",
            "connect",
            serde_json::json!({"UNITARMOR_PROTOCOL": "tcp"}),
        ),
    ]);
    let p = candidate();
    let t = compile::compile(&p).unwrap();
    let report = replay(&entries, &mut Candidate::new(&p, &t));
    let verdict = |object: &str| {
        report
            .groups
            .iter()
            .find(|g| g.object == object)
            .map(|g| (g.change, g.now.verdict.as_str()))
    };
    assert_eq!(verdict("tcp 10.0.0.5:25"), Some((Change::Breaks, "deny")));
    assert_eq!(verdict("tcp [::1]:443"), Some((Change::Same, "allow")));
    assert_eq!(verdict("CAP_SYS_ADMIN"), Some((Change::Breaks, "deny")));
    assert_eq!(
        verdict("CAP_NET_BIND_SERVICE"),
        Some((Change::Same, "allow"))
    );
    assert_eq!(verdict("inet stream"), Some((Change::Same, "allow")));
    assert_eq!(
        report.not_replayed[0].reason,
        "connect records without an address"
    );
    let port = report
        .groups
        .iter()
        .find(|g| g.object == "tcp 10.0.0.5:25")
        .unwrap();
    assert_eq!(port.now.rule.as_deref(), Some("deny connect tcp:25"));
}

#[test]
fn an_unarmored_candidate_allows_everything() {
    let entries = parse(&[line(
        T0,
        "deny",
        "read",
        "open",
        "/srv/a",
        "deny read /srv/",
        OLD,
    )]);
    let p = Policy::default();
    let t = compile::compile(&p).unwrap();
    let report = replay(&entries, &mut Candidate::new(&p, &t));
    assert_eq!(report.groups[0].change, Change::Loosens);
    assert_eq!(report.exit_code(), 0);
}

#[test]
fn times_are_printed_in_utc() {
    assert_eq!(utc(0), "1970-01-01 00:00:00");
    assert_eq!(utc(1_796_000_000_000_000), "2026-11-30 00:53:20");
    assert_eq!(utc(951_782_400_000_000), "2000-02-29 00:00:00");
}

#[test]
fn a_peer_allowance_with_from_is_for_its_program_only() {
    let policy = Policy::of(&["allow signal peer.service from=/usr/lib/app/supervisor"]);
    let tables = crate::compile::compile(&policy).unwrap();
    let mut c = Candidate::new(&policy, &tables);
    let signal = |exe: &str| Record {
        action: "deny".into(),
        class: "signal".into(),
        operation: "kill".into(),
        exe: Some(exe.as_bytes().to_vec()),
        peer: Some("peer.service".into()),
        ..Default::default()
    };
    let d = c.decide(&signal("/usr/lib/app/supervisor")).unwrap();
    assert_eq!(d.verdict, "allow");
    let d = c.decide(&signal("/usr/bin/kill")).unwrap();
    assert_eq!(d.verdict, "deny");
}
