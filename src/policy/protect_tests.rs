use super::*;
use crate::compile::{compile, Tables, Verdict, RULE_NOT_ALLOWED, RULE_PROTECT};
use crate::policy::{Class, PathPattern, Policy};

fn policy(rules: &[&str]) -> Policy {
    Policy::of(rules)
}

fn decide(t: &Tables, class: Class, path: &str) -> Verdict {
    t.decide(class, path.as_bytes())
}

// The implicit protections as the compiler builds them into the tables.
fn protected_by(p: Protection) -> Verdict {
    Verdict::Deny(RULE_PROTECT + p as u32)
}

#[test]
fn implicit_protections_deny_the_ways_out() {
    let t = compile(&policy(&["deny read /srv/secret"])).unwrap();
    assert_eq!(t.protect, (1 << Protection::ALL.len()) - 1);
    for (path, p) in [
        (
            "/etc/systemd/system/app.service.d/off.conf",
            Protection::UnitFiles,
        ),
        ("/run/systemd/transient/x.service", Protection::UnitFiles),
        ("/etc/unitarmor/policies/base.toml", Protection::UnitFiles),
        ("/proc/sys/kernel/core_pattern", Protection::KernelSettings),
        (
            "/sys/fs/bpf/unitarmor/links/file_open",
            Protection::KernelSettings,
        ),
        ("/etc/cron.d/job", Protection::RunsAsRoot),
        (
            "/run/systemd/system.attached/app.service.d/off.conf",
            Protection::UnitFiles,
        ),
        ("/usr/bin/unitarmor", Protection::RunsAsRoot),
        ("/etc/ld.so.preload", Protection::RunsAsRoot),
        ("/root/.ssh/authorized_keys", Protection::RunsAsRoot),
        ("/etc/alternatives/pager", Protection::RunsAsRoot),
        ("/etc/python3.11/sitecustomize.py", Protection::RunsAsRoot),
        ("/etc/ssl/openssl.cnf", Protection::RunsAsRoot),
        ("/etc/fstab", Protection::RunsAsRoot),
        ("/run/tmpfiles.d/x.conf", Protection::RunsAsRoot),
        ("/etc/request-key.d/x.conf", Protection::RunsAsRoot),
        (
            "/proc/1/task/1/net/rpc/nfsd.export/channel",
            Protection::KernelSettings,
        ),
        ("/proc/bus/pci/00/1f.2", Protection::KernelSettings),
        (
            "/home/alice/.config/systemd/user/default.target.wants/x.service",
            Protection::UnitFiles,
        ),
        (
            "/home/alice/.local/share/systemd/user/x.service",
            Protection::UnitFiles,
        ),
    ] {
        assert_eq!(decide(&t, Class::Write, path), protected_by(p), "{path}");
        assert_eq!(decide(&t, Class::Read, path), Verdict::Allow, "{path}");
    }
    for sock in [
        "/run/systemd/private",
        "/run/dbus/system_bus_socket",
        "/run/user/1000/bus",
        "/run/user/0/gnupg/S.gpg-agent",
        "/tmp/tmux-0/default",
        "/run/screen/S-root/1.pts-0.host",
        "/tmp/.X11-unix/X0",
        "/tmp/ssh-XXXXabcd/agent.1234",
        "/run/systemd/oom/io.systemd.ManagedOOM",
        "/run/systemd/io.systemd.Manager",
    ] {
        assert_eq!(
            decide(&t, Class::Connect, sock),
            protected_by(Protection::Bus),
            "{sock}"
        );
    }
    // What every service needs stays reachable.
    for sock in [
        "/run/systemd/journal/socket",
        "/run/systemd/journal/stdout",
        "/run/systemd/journal/dev-log",
        "/run/systemd/notify",
        "/run/postgresql/.s.PGSQL.5432",
        // User and host lookups through NSS (nss-systemd, nss-resolve).
        "/run/systemd/userdb/io.systemd.Multiplexer",
        "/run/systemd/resolve/io.systemd.Resolve",
    ] {
        assert_eq!(decide(&t, Class::Connect, sock), Verdict::Allow, "{sock}");
    }
    // A user rule is reported before a protection that also matches.
    let t = compile(&policy(&["deny write /etc/"])).unwrap();
    assert_eq!(decide(&t, Class::Write, "/etc/passwd"), Verdict::Deny(0));
}

#[test]
fn exemptions_and_explicit_socket_allows_lift_protections() {
    let mut p = policy(&["deny read /srv/secret"]);
    p.exempt.insert(Protection::UnitFiles);
    p.exempt.insert(Protection::Bpf);
    let t = compile(&p).unwrap();
    assert_eq!(t.protect & (1 << Protection::Bpf as u32), 0);
    assert_ne!(t.protect & (1 << Protection::Mount as u32), 0);
    assert_eq!(
        decide(&t, Class::Write, "/etc/systemd/system/x.service"),
        Verdict::Allow
    );
    assert_eq!(
        decide(&t, Class::Write, "/etc/cron.d/x"),
        protected_by(Protection::RunsAsRoot)
    );
    let t = compile(&policy(&["allow connect unix:/run/dbus/system_bus_socket"])).unwrap();
    assert_eq!(
        decide(&t, Class::Connect, "/run/dbus/system_bus_socket"),
        Verdict::Allow
    );
    assert_eq!(
        decide(&t, Class::Connect, "/run/systemd/private"),
        protected_by(Protection::Bus)
    );
    // The explicit allow made unix connects an allow-list; logging stays allowed.
    assert_eq!(
        decide(&t, Class::Connect, "/run/app.sock"),
        Verdict::Deny(RULE_NOT_ALLOWED)
    );
    assert_eq!(
        decide(&t, Class::Connect, "/run/systemd/journal/socket"),
        Verdict::Allow
    );
    assert_eq!(
        decide(&t, Class::Connect, "@abstract"),
        protected_by(Protection::Bus)
    );
    let t = compile(&policy(&["deny connect unix:@x11-*"])).unwrap();
    assert_eq!(decide(&t, Class::Connect, "@x11-0"), Verdict::Deny(0));
    assert_eq!(
        decide(&t, Class::Connect, "@other"),
        protected_by(Protection::Bus)
    );
    // An explicit allow of an abstract name lifts the refusal for that name alone.
    let t = compile(&policy(&["allow connect unix:@app-*"])).unwrap();
    assert_eq!(decide(&t, Class::Connect, "@app-1"), Verdict::Allow);
}

#[test]
fn names_round_trip_and_paths_parse() {
    for p in Protection::ALL {
        assert_eq!(Protection::parse(p.name()), Some(p));
        for path in p.write_paths() {
            PathPattern::parse(path).unwrap_or_else(|e| panic!("{p}: {e}"));
        }
        for sock in p.unix_paths() {
            crate::policy::net::SocketPattern::parse(&format!("unix:{sock}"))
                .unwrap_or_else(|e| panic!("{p}: {e}"));
        }
        assert!(!p.reason().is_empty());
    }
    assert_eq!(Protection::parse("nope"), None);
    assert_eq!(Protection::ALL.len(), Protection::Fanotify as usize + 1);
}

#[test]
fn every_protection_says_what_lifting_it_allows() {
    for p in Protection::ALL {
        assert!(!p.lifted().is_empty(), "{p}");
    }
}
