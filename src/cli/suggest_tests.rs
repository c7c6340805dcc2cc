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

/// A disk with nothing on it: every fold names only what was learned.
struct NoDisk;

impl Disk for NoDisk {
    fn glob(&self, _: &str, _: usize) -> Option<Vec<String>> {
        Some(Vec::new())
    }
}

/// A disk holding these paths (and their directories).
struct Holding(&'static [&'static str]);

impl Disk for Holding {
    fn glob(&self, pattern: &str, _: usize) -> Option<Vec<String>> {
        let parts: Vec<&str> = pattern.split('/').collect();
        let mut found: Vec<String> = Vec::new();
        for path in self.0 {
            let names: Vec<&str> = path.split('/').collect();
            for n in 1..=names.len() {
                let prefix = names[..n].join("/");
                if n == parts.len()
                    && names[..n]
                        .iter()
                        .zip(&parts)
                        .all(|(name, pat)| super::fold::matches_component(pat, name))
                    && !found.contains(&prefix)
                {
                    found.push(prefix);
                }
            }
        }
        Some(found)
    }
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
    let text = suggestion(&l, &[], &NoDisk).unwrap();
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
    let text = suggestion(&learned(&rs), &[], &NoDisk).unwrap();
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
        ("write", "create", "/var/tmp/app/app-4242.pid"),
        ("write", "create", "/tmp/4242"),
        ("write", "create", "/tmp/single.Qx7"),
        ("exec", "exec", "/tmp/jit.Ab3dE9"),
        ("exec", "exec", "/tmp/jit.Zq8uU1"),
        ("read", "open", "/run/user/0/a"),
        ("read", "open", "/run/user/1000/a"),
    ];
    let text = suggestion(&learned(&rs), &[], &NoDisk).unwrap();
    for line in [
        "ArmorPolicy=allow read /opt/app/*/lib/data",
        "ArmorPolicy=allow exec /usr/lib/python*/bin/tool",
        "ArmorPolicy=allow read /etc/ssl/certs/ca-2.3.pem",
        "ArmorPolicy=allow read /srv/app/runs/*/item",
        "ArmorPolicy=allow read /srv/app/keep/7/only",
        "ArmorPolicy=allow write /tmp/app.*",
        "ArmorPolicy=allow read /tmp/app.Xa8Kd2",
        "ArmorPolicy=allow write /var/tmp/app/app-*.pid",
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

/// A template's instances that each used their own name at one place get `%i` there, which
/// allows each instance its own file only; one instance's name alone is not folded.
#[test]
fn instances_own_names_fold_into_percent_i() {
    let mut l = learned(&[
        ("read", "open", "/srv/app/alpha.conf"),
        ("read", "open", "/srv/app/beta.conf"),
        ("write", "create", "/var/cache/app/alpha/x"),
        ("write", "create", "/var/cache/app/beta/x"),
        ("read", "open", "/usr/lib/gamma/data"),
        ("read", "open", "/srv/app/alphabet"),
        ("read", "open", "/etc/app.conf"),
        ("read", "open", "/srv/app/alpha.x"),
        ("read", "open", "/srv/app/beta.x"),
    ]);
    l.unit = "app@.service".into();
    for (class, object, instance) in [
        ("read", "/srv/app/alpha.conf", "alpha"),
        ("read", "/srv/app/beta.conf", "beta"),
        ("write", "/var/cache/app/alpha/x", "alpha"),
        ("write", "/var/cache/app/beta/x", "beta"),
        ("read", "/usr/lib/gamma/data", "gamma"),
        ("read", "/srv/app/alphabet", "alpha"),
        ("read", "/etc/app.conf", "alpha"),
        ("read", "/etc/app.conf", "beta"),
        ("read", "/srv/app/alpha.x", "alpha"),
        ("read", "/srv/app/alpha.x", "beta"),
        ("read", "/srv/app/beta.x", "beta"),
    ] {
        l.note_instance(class, object, instance);
    }
    let text = suggestion(&l, &[], &NoDisk).unwrap();
    for line in [
        "ArmorPolicy=allow read /srv/app/%i.conf",
        "ArmorPolicy=allow write /var/cache/app/%i/x",
        "ArmorPolicy=allow read /usr/lib/gamma/data",
        "ArmorPolicy=allow read /srv/app/alphabet",
        "ArmorPolicy=allow read /etc/app.conf",
        // Both used alpha.x: `%i` would take it from beta.
        "ArmorPolicy=allow read /srv/app/alpha.x",
        "ArmorPolicy=allow read /srv/app/beta.x",
    ] {
        assert!(has(&text, line), "{line} not in:\n{text}");
    }
    assert!(text.contains("# read: 2 records, 2 objects, by"), "{text}");
    // Names that cannot stand as %i are left alone.
    let odd: BTreeSet<String> = ["a/b".to_string(), "..".to_string()].into();
    let one: BTreeSet<String> = ["a/b".to_string()].into();
    assert_eq!(
        super::fold::instance_patterns(&[("/x/a/b/y", &odd), ("/x/../y", &one)]),
        ["/x/a/b/y", "/x/../y"]
    );
}

/// A learning unit chooses its names: a fold whose pattern names anything on disk that it was
/// not seen using is not suggested (its paths are, one by one), nor a directory fold of a
/// folded pattern, nor a fold in /run.
#[test]
fn a_fold_names_nothing_on_disk_but_what_was_learned() {
    let rs = [
        ("write", "create", "/home/1.0/.ssh/authorized_keys"),
        ("write", "create", "/tmp/krb5cc_4242"),
        ("read", "open", "/opt/app/1.2.3/lib/data"),
        ("read", "open", "/srv/app/runs/1/item"),
        ("read", "open", "/srv/app/runs/2/item"),
        ("write", "create", "/run/a.pid"),
        ("write", "create", "/run/b-12.pid"),
        ("read", "open", "/var/lib/x/9.9/a/k1"),
        ("read", "open", "/var/lib/x/9.9/a/k2"),
        ("read", "open", "/var/lib/x/9.9/a/k3"),
        ("read", "open", "/var/lib/x/9.9/a/k4"),
    ];
    let disk = Holding(&[
        "/home/alice/.ssh/authorized_keys",
        "/home/1.0/.ssh/authorized_keys",
        "/tmp/krb5cc_0",
        "/opt/app/1.2.3/lib/data",
        "/srv/app/runs/1/item",
        "/srv/app/runs/2/item",
        "/srv/app/runs/3/item",
        "/var/lib/x/9.9/a/k1",
    ]);
    let text = suggestion(&learned(&rs), &[], &disk).unwrap();
    for line in [
        "ArmorPolicy=allow write /home/1.0/.ssh/authorized_keys",
        "ArmorPolicy=allow write /tmp/krb5cc_4242",
        "ArmorPolicy=allow read /opt/app/*/lib/data",
        "ArmorPolicy=allow read /srv/app/runs/1/item",
        "ArmorPolicy=allow read /srv/app/runs/2/item",
        "ArmorPolicy=allow write /run/a.pid",
        "ArmorPolicy=allow write /run/b-12.pid",
        "ArmorPolicy=allow read /var/lib/x/*/a/k1",
    ] {
        assert!(has(&text, line), "{line} not in:\n{text}");
    }
    assert!(
        !text.contains("/a/*"),
        "no directory fold of a fold:\n{text}"
    );
    assert!(super::fold::matches_component("a*b?", "axxbc"));
    assert!(!super::fold::matches_component("a*b?", "axxb"));
    assert!(super::fold::matches_component("*", ""));
}

/// Files the unit wrote do not count towards folding a directory it read; a fold under
/// /proc other than the process id's is checked like any other.
#[test]
fn written_files_and_proc_do_not_fold_for_free() {
    let mut rs = vec![("read", "open", "/etc/ssl/private/real.key")];
    for f in ["a", "b", "c"] {
        rs.push(("write", "create", leak(format!("/etc/ssl/private/{f}"))));
        rs.push(("read", "open", leak(format!("/etc/ssl/private/{f}"))));
    }
    rs.push(("write", "open", "/proc/irq/10/smp_affinity"));
    rs.push(("write", "open", "/proc/irq/11/smp_affinity"));
    let disk = Holding(&["/proc/irq/12/smp_affinity"]);
    let text = suggestion(&learned(&rs), &[], &disk).unwrap();
    assert!(!text.contains("/etc/ssl/private/*"), "{text}");
    assert!(has(
        &text,
        "ArmorPolicy=allow read /etc/ssl/private/real.key"
    ));
    assert!(
        has(&text, "ArmorPolicy=allow write /proc/irq/10/smp_affinity"),
        "{text}"
    );
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// The real disk: a file where a directory would be matches nothing below it; what is found
/// is listed; a pattern that names too much is not answered.
#[test]
fn the_real_disk_globs_components() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().to_str().unwrap();
    std::fs::create_dir_all(format!("{root}/a1")).unwrap();
    std::fs::write(format!("{root}/a1/x"), "").unwrap();
    std::fs::write(format!("{root}/a2"), "").unwrap();
    let found = RealDisk.glob(&format!("{root}/a?/x"), 10).unwrap();
    assert_eq!(found, [format!("{root}/a1/x")]);
    assert_eq!(
        RealDisk.glob(&format!("{root}/b*/x"), 10).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(RealDisk.glob(&format!("{root}/a*"), 1), None);
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
    let text = suggestion(&l, &[], &NoDisk).unwrap();
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
    let text = suggestion(&l, &kept, &NoDisk).unwrap();
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
    assert!(!suggestion(&slice, &[], &NoDisk)
        .unwrap()
        .contains("@systemd"));
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
    let text = diff(&l, &p, &mut replay::Candidate::new(&p, &tables), &NoDisk).unwrap();
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
