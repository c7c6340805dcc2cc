//! Host tests of [`super`]: folding, names a unit chose, carried-over lines, and the dry run
//! of a suggestion against what was learned.

use super::*;
use crate::cli::replay::{self, Change};
use crate::policy::named::Lookup;
use crate::policy::resolve;
use crate::policy::specifiers::UnitName;

fn learned(records: &[(&str, &str, &str)]) -> Learned {
    let mut l = Learned {
        unit: "app.service".into(),
        ..Learned::default()
    };
    for (class, op, object) in records {
        l.add(class, op, object, "/usr/bin/bash", 1, true);
    }
    l
}

fn has(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

#[test]
fn a_suggestion_allows_what_was_seen_and_breaks_nothing_learned() {
    let mut records = vec![
        ("read", "open", "/etc/app/config"),
        ("read", "open", "/proc/4242/stat"),
        ("read", "open", "/proc/4243/task/4250/stat"),
        ("write", "create", "/var/lib/app/my state"),
        ("exec", "exec", "/usr/bin/sort"),
        ("connect", "connect", "tcp:127.0.0.1:2727"),
        ("connect", "connect", "udp:[::1]:53"),
        ("connect", "connect", "unix:/run/systemd/journal/stdout"),
        ("bind", "bind", "tcp:127.0.0.1:8080"),
        ("cap", "capable", "net_bind_service"),
        ("net", "socket", "inet"),
        ("net", "socket", "inet6 raw"),
        ("net", "socket", "unix"),
        ("signal", "kill", "peer.service"),
        ("ptrace", "ptrace", "debugged.service"),
    ];
    let locale = ["A", "B", "C", "D"].map(|f| format!("/usr/lib/locale/C.utf8/LC_{f}"));
    records.extend(locale.iter().map(|p| ("read", "open", p.as_str())));
    let l = learned(&records);
    let text = suggestion(&l, &[]).unwrap();
    for line in [
        "ArmorPolicy=@systemd",
        "ArmorPolicy=allow read /etc/app/config",
        "ArmorPolicy=allow read /proc/*/stat",
        "ArmorPolicy=allow read /proc/*/task/*/stat",
        "ArmorPolicy=allow read /usr/lib/locale/C.utf8/*",
        "ArmorPolicy=allow write \"/var/lib/app/my state\"",
        "ArmorPolicy=allow exec /usr/bin/sort",
        "ArmorPolicy=allow connect tcp:127.0.0.1:2727",
        "ArmorPolicy=allow connect udp:[::1]:53",
        "ArmorPolicy=allow connect unix:/run/systemd/journal/stdout",
        "ArmorPolicy=allow bind tcp:127.0.0.1:8080",
        "ArmorPolicy=allow cap net_bind_service",
        "ArmorPolicy=allow net inet",
        "ArmorPolicy=allow net inet6 raw",
        "ArmorPolicy=allow net unix",
        "ArmorPolicy=allow signal peer.service",
        "ArmorPolicy=allow ptrace debugged.service",
    ] {
        assert!(has(&text, line), "{line} not in:\n{text}");
    }
    assert!(
        text.contains("# read: 4 records, 4 objects, by /usr/bin/bash"),
        "{text}"
    );

    // It parses clean as the unit's drop-in, and the dry run of what was learned against it
    // breaks nothing; without the configuration's line, exactly that read breaks.
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("armor.conf");
    std::fs::write(&f, &text).unwrap();
    let unit_file = t.path().join("app.service");
    std::fs::write(&unit_file, "[Service]\nExecStart=/usr/bin/app\n").unwrap();
    let mut diags = Diagnostics::default();
    let p = resolve::merge(
        &Lookup::under(t.path()),
        &[unit_file, f],
        Some(&UnitName::new("app.service")),
        &mut diags,
    );
    assert!(!diags.has_errors(), "{diags:?}\n{text}");
    let breaks = |p: &crate::policy::Policy| {
        let tables = crate::compile::compile(p).unwrap();
        let report = replay::replay(&entries_of(&l), &mut replay::Candidate::new(p, &tables));
        assert!(report.not_replayed.is_empty(), "{:?}", report.not_replayed);
        report
            .groups
            .iter()
            .filter(|g| g.change == Change::Breaks)
            .map(|g| g.object.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(breaks(&p), Vec::<String>::new());
    let mut tight = p.clone();
    tight
        .rules
        .retain(|r| r.to_string() != "allow read /etc/app/config");
    assert_eq!(breaks(&tight), ["/etc/app/config"]);
    // A signal to a unit no rule names is refused by the protection.
    let mut tight = p.clone();
    tight
        .rules
        .retain(|r| r.to_string() != "allow signal peer.service");
    assert_eq!(breaks(&tight), ["peer.service"]);
    // Unless the protection is lifted.
    tight.exempt.insert(crate::policy::Protection::Signal);
    assert_eq!(breaks(&tight), Vec::<String>::new());
}

/// Shallow directories, writes and programs are never folded into `*`; numbers outside
/// `/proc/PID` stay numbers.
#[test]
fn folding_never_widens_to_what_matters() {
    let etc = ["passwd", "group", "hosts", "nsswitch.conf", "ld.so.cache"];
    let mut records: Vec<(String, &str)> = Vec::new();
    for f in etc {
        records.push((format!("/etc/{f}"), "read"));
        records.push((format!("/etc/app/{f}"), "write"));
    }
    for p in ["sort", "cat", "date", "wc", "dash"] {
        records.push((format!("/usr/bin/{p}"), "exec"));
    }
    records.push(("/var/log/app.1".into(), "write"));
    records.push(("/".into(), "read"));
    records.push(("/proc/4242".into(), "read"));
    records.push(("/run/user/1000/x".into(), "read"));
    let rs: Vec<(&str, &str, &str)> = records
        .iter()
        .map(|(p, c)| (*c, "open", p.as_str()))
        .collect();
    let text = suggestion(&learned(&rs), &[]).unwrap();
    assert!(!text.contains("/*"), "nothing folded:\n{text}");
    assert!(has(&text, "ArmorPolicy=allow read /etc/passwd"));
    assert!(has(&text, "ArmorPolicy=allow write /etc/app/hosts"));
    assert!(has(&text, "ArmorPolicy=allow exec /usr/bin/dash"));
    assert!(has(&text, "ArmorPolicy=allow read /run/user/1000/x"));
    assert!(has(&text, "ArmorPolicy=allow read /proc/4242"), "{text}");
    assert!(
        !has(&text, "ArmorPolicy=allow read /"),
        "/ is everything:\n{text}"
    );
    assert!(text.contains("# 1 objects not suggested"), "{text}");
}

/// What changes from one run, upgrade or process to the next is folded into `*`: versions in
/// directories' names, numbered directories seen twice or more, and per-process names in
/// temporary directories; never a whole shared name, a program's temporary name, or a
/// user's own directory.
#[test]
fn runs_upgrades_and_processes_fold() {
    let rs = [
        ("read", "open", "/opt/app/1.2.3/lib/data"),
        ("exec", "exec", "/usr/lib/python3.11/bin/tool"),
        ("read", "open", "/etc/ssl/certs/ca-2.3.pem"),
        ("read", "open", "/srv/app/runs/1/item"),
        ("read", "open", "/srv/app/runs/2/item"),
        ("read", "open", "/srv/app/keep/7/only"),
        ("write", "create", "/tmp/app.Xa8Kd2"),
        ("write", "create", "/tmp/app.q19ZrT"),
        ("read", "open", "/tmp/app.Xa8Kd2"),
        ("write", "create", "/run/app/app-4242.pid"),
        ("write", "create", "/tmp/4242"),
        ("write", "create", "/tmp/single.Qx7"),
        ("exec", "exec", "/tmp/jit.Ab3dE9"),
        ("exec", "exec", "/tmp/jit.Zq8uU1"),
        ("read", "open", "/run/user/0/a"),
        ("read", "open", "/run/user/1000/a"),
    ];
    let text = suggestion(&learned(&rs), &[]).unwrap();
    for line in [
        "ArmorPolicy=allow read /opt/app/*/lib/data",
        "ArmorPolicy=allow exec /usr/lib/python*/bin/tool",
        "ArmorPolicy=allow read /etc/ssl/certs/ca-2.3.pem",
        "ArmorPolicy=allow read /srv/app/runs/*/item",
        "ArmorPolicy=allow read /srv/app/keep/7/only",
        "ArmorPolicy=allow write /tmp/app.*",
        "ArmorPolicy=allow read /tmp/app.Xa8Kd2",
        "ArmorPolicy=allow write /run/app/app-*.pid",
        "ArmorPolicy=allow write /tmp/4242",
        "ArmorPolicy=allow write /tmp/single.Qx7",
        "ArmorPolicy=allow exec /tmp/jit.Ab3dE9",
        "ArmorPolicy=allow exec /tmp/jit.Zq8uU1",
        "ArmorPolicy=allow read /run/user/0/a",
        "ArmorPolicy=allow read /run/user/1000/a",
    ] {
        assert!(has(&text, line), "{line} not in:\n{text}");
    }
    assert!(text.contains("# write: 2 records, 2 objects, by"), "{text}");
}

#[test]
fn versions_are_digits_with_dots_between() {
    use super::fold::fold_one;
    for (path, want) in [
        (
            "/usr/lib/jvm/java-17.0.2-openjdk/bin/java",
            "/usr/lib/jvm/java-*-openjdk/bin/java",
        ),
        ("/opt/a/v1.2/b/c", "/opt/a/v*/b/c"),
        ("/opt/a/1./b", "/opt/a/1./b"),
        ("/opt/a/.1.2/b", "/opt/a/.*/b"),
        ("/opt/a/x86_64/b", "/opt/a/x86_64/b"),
        ("/opt/ä1.2ö/b/c", "/opt/ä*ö/b/c"),
        ("/1.2/a/b", "/1.2/a/b"),
        ("/proc/17/task/18/stat", "/proc/*/task/*/stat"),
        ("/tmp/a-12-b.sock", "/tmp/a-*-b.sock"),
        ("/tmp/12-34", "/tmp/12-34"),
        ("/tmp/x.1", "/tmp/x.1"),
    ] {
        assert_eq!(fold_one(path, true), want, "{path}");
    }
    // A program's temporary name is not folded.
    assert_eq!(fold_one("/tmp/a-12.so", false), "/tmp/a-12.so");
}

/// A name the unit chose (a file, a program) cannot add a line to the drop-in or become a
/// glob: it is not suggested, and a program's name in a comment cannot end the comment.
#[test]
fn names_a_unit_chose_cannot_write_the_policy() {
    let mut l = learned(&[
        ("read", "open", "/tmp/x\nArmorMode=off"),
        ("read", "open", "/tmp/**"),
        ("read", "open", "/tmp/%n"),
        ("read", "open", "/tmp/bad\u{fffd}byte"),
        ("read", "open", "/etc/app/config"),
    ]);
    l.add(
        "read",
        "open",
        "/etc/app/other",
        "/tmp/x\n[X-Armor]\nArmorExempt=unit-files",
        1,
        true,
    );
    l.add("bind", "bind", "tcp:0.0.0.0:0", "/usr/bin/bash", 1, true);
    // Families the kernel has and rules cannot name; no rule may be made of two.
    l.add("net", "socket", "family 42", "/usr/bin/bash", 1, true);
    l.add("net", "socket", "raw", "/usr/bin/bash", 1, true);
    l.add("net", "socket", "inet inet6", "/usr/bin/bash", 1, true);
    // Units no rule may name, and names that are no unit's.
    l.add(
        "signal",
        "kill",
        "unitarmor.service",
        "/usr/bin/bash",
        1,
        true,
    );
    l.add("ptrace", "ptrace", "init.scope", "/usr/bin/bash", 1, true);
    l.add(
        "signal",
        "kill",
        "a.service b.service",
        "/usr/bin/bash",
        1,
        true,
    );
    assert_eq!(l.odd, 1, "a name with a newline is counted, not kept");
    let text = suggestion(&l, &[]).unwrap();
    assert!(
        !text.contains("\nArmorMode") && !text.contains("\nArmorExempt"),
        "{text}"
    );
    assert!(!text.contains("allow bind"), "port 0 is no port:\n{text}");
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("ArmorPolicy=") && l.contains("/tmp/")),
        "{text}"
    );
    assert!(!text.contains("allow net"), "{text}");
    assert!(
        !text.contains("allow signal") && !text.contains("allow ptrace"),
        "{text}"
    );
    assert!(text.contains("# 11 objects not suggested"), "{text}");
    assert!(
        has(&text, "ArmorPolicy=allow read /etc/app/other"),
        "{text}"
    );
}

/// `--force` carries the previous file's deny, audit, include and exemption lines over; a
/// slice's suggestion has no `@systemd`.
#[test]
fn carried_over_lines_and_slices() {
    let l = learned(&[("read", "open", "/etc/app/config")]);
    let kept = [
        "ArmorPolicy=deny read /etc/app/secret".to_string(),
        "ArmorExempt=ptrace".to_string(),
    ];
    let text = suggestion(&l, &kept).unwrap();
    for line in kept
        .iter()
        .map(String::as_str)
        .chain(["ArmorPolicy=@systemd"])
    {
        assert!(has(&text, line), "{line}:\n{text}");
    }
    let slice = Learned {
        unit: "work.slice".into(),
        ..l
    };
    assert!(!suggestion(&slice, &[]).unwrap().contains("@systemd"));
}

/// A unit with allow rules already gets what to add (only what its policy refuses for want of
/// an allow rule) and, as comments, its own path allow rules that allowed nothing learned.
#[test]
fn a_policy_in_place_gets_a_diff() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("armor.conf");
    std::fs::write(
        &d,
        "[X-Armor]\nArmorPolicy=allow read /etc/app/config\nArmorPolicy=allow read /opt/unused\n\
         ArmorPolicy=deny read /etc/app/secret\nArmorPolicy=allow connect tcp:127.0.0.1:1\n\
         ArmorPolicy=allow signal a.service\n",
    )
    .unwrap();
    let mut diags = Diagnostics::default();
    let p = resolve::merge(&Lookup::under(t.path()), &[d], None, &mut diags);
    assert!(!diags.has_errors(), "{diags:?}");
    let tables = crate::compile::compile(&p).unwrap();
    let l = learned(&[
        ("read", "open", "/etc/app/config"),
        ("read", "open", "/etc/app/new"),
        ("read", "open", "/etc/app/secret"),
        ("connect", "connect", "tcp:127.0.0.1:2727"),
        ("signal", "kill", "a.service"),
        ("signal", "kill", "b.service"),
    ]);
    let text = diff(&l, &p, &mut replay::Candidate::new(&p, &tables)).unwrap();
    assert!(has(&text, "ArmorPolicy=allow read /etc/app/new"), "{text}");
    assert!(
        has(&text, "ArmorPolicy=allow connect tcp:127.0.0.1:2727"),
        "{text}"
    );
    assert!(has(&text, "ArmorPolicy=allow signal b.service"), "{text}");
    assert!(
        !text.contains("allow read /etc/app/config") && !text.contains("signal a.service"),
        "already allowed:\n{text}"
    );
    assert!(
        !text.contains("secret"),
        "a deny rule's object is not added:\n{text}"
    );
    assert!(
        text.lines().any(
            |l| l.starts_with("#   ArmorPolicy=allow read /opt/unused  (") && l.ends_with(":3)")
        ),
        "{text}"
    );
    assert!(
        !text.contains("#   ArmorPolicy=allow connect"),
        "ports are not weighed:\n{text}"
    );
}
