//! Host tests of [`super`]: systemd's file order, merging, slice precedence, and reading
//! only what systemd reads.

use super::*;

fn write(root: &Path, rel: &str, text: &str) -> PathBuf {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn dropin_dirs_like_systemd() {
    assert_eq!(
        dropin_dir_names("nginx.service"),
        ["service.d", "nginx.service.d"]
    );
    assert_eq!(
        dropin_dir_names("foo-bar-baz.service"),
        [
            "service.d",
            "foo-.service.d",
            "foo-bar-.service.d",
            "foo-bar-baz.service.d"
        ]
    );
    assert_eq!(
        dropin_dir_names("web@a.service"),
        ["service.d", "web@.service.d", "web@a.service.d"]
    );
    assert_eq!(
        dropin_dir_names("a-b@x.service"),
        [
            "service.d",
            "a-.service.d",
            "a-b@.service.d",
            "a-b@x.service.d"
        ]
    );
}

#[test]
fn order_priority_and_masking() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    let frag = write(
        r,
        "usr/lib/systemd/system/web@.service",
        "[Service]\nExecStart=/bin/true\n",
    );
    write(
        r,
        "usr/lib/systemd/system/web@.service.d/10-base.conf",
        "vendor",
    );
    let etc10 = write(r, "etc/systemd/system/web@.service.d/10-base.conf", "admin");
    let run20 = write(r, "run/systemd/system/service.d/20-all.conf", "");
    let inst05 = write(r, "etc/systemd/system/web@a.service.d/05-first.conf", "");
    write(
        r,
        "usr/lib/systemd/system/web@a.service.d/30-masked.conf",
        "",
    );
    std::fs::create_dir_all(r.join("etc/systemd/system/web@a.service.d")).unwrap();
    std::os::unix::fs::symlink(
        "/dev/null",
        r.join("etc/systemd/system/web@a.service.d/30-masked.conf"),
    )
    .unwrap();
    write(r, "etc/systemd/system/web@a.service.d/notes.txt", "");
    let (f, d) = unit_files(r, "web@a.service");
    assert_eq!(f, Some(frag));
    assert_eq!(d, [inst05, etc10, run20]);
}

/// A drop-in name held by several directories comes from the first as systemd orders them:
/// search path by search path, in each the unit's own directory, then longer prefixes before
/// shorter ones; the type-level directory (service.d) of every search path after all of them.
/// Different names are applied in name order.
#[test]
fn a_shared_name_comes_from_the_most_specific_directory() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(r, "etc/systemd/system/service.d/armor.conf", "");
    write(r, "etc/systemd/system/foo-.service.d/armor.conf", "");
    let longer = write(r, "etc/systemd/system/foo-bar-.service.d/armor.conf", "");
    let own = write(
        r,
        "usr/lib/systemd/system/foo-bar-baz.service.d/other.conf",
        "",
    );
    let (_, d) = unit_files(r, "foo-bar-baz.service");
    assert_eq!(d, [longer.clone(), own]);
    let (_, d) = unit_files(r, "foo-bar-x.service");
    assert_eq!(d, [longer]);
    let (_, d) = unit_files(r, "foo-y.service");
    assert_eq!(d, [r.join("etc/systemd/system/foo-.service.d/armor.conf")]);
    let prefix = write(r, "usr/lib/systemd/system/zed-.service.d/armor.conf", "");
    let (_, d) = unit_files(r, "zed-1.service");
    assert_eq!(
        d,
        [prefix],
        "a type-level file comes after every search path's"
    );
}

#[test]
fn merge_accumulates_and_resets() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    let a = write(
        r,
        "a.conf",
        "[X-Armor]\nArmorPolicy=deny read /a\nArmorPolicy=deny read /b\n",
    );
    let b = write(
        r,
        "b.conf",
        "[X-Armor]\nArmorPolicy=\nArmorPolicy=deny write /srv/%i/\nArmorMode=audit\n",
    );
    let c = write(r, "c.conf", "[X-Armor]\nArmorPolicy=deny exec /c\n");
    let mut diags = Diagnostics::default();
    let p = merge(
        &Lookup::under(r),
        &[a, b, c],
        Some(&UnitName::new("w@x.service")),
        &mut diags,
    );
    assert!(diags.0.is_empty(), "{diags:?}");
    let rules: Vec<String> = p.rules.iter().map(|r| r.to_string()).collect();
    assert_eq!(rules, ["deny write /srv/x/", "deny exec /c"]);
    assert_eq!(p.mode, crate::policy::Mode::Audit);
    assert!(p.is_armored());
}

#[test]
fn exemptions_accumulate_across_files_and_reset() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    let slice = write(
        r,
        "slice.conf",
        "[X-Armor]\nArmorExempt=mount\nArmorExempt=ptrace\n",
    );
    let a = write(
        r,
        "a.conf",
        "[X-Armor]\nArmorExempt=\nArmorExempt=bpf signal\nArmorPolicy=deny read /x\n",
    );
    let b = write(r, "b.conf", "[X-Armor]\nArmorExempt=userns bpf\n");
    let mut diags = Diagnostics::default();
    let lookup = Lookup::under(r);
    let p = merge(&lookup, &[slice.clone(), a, b.clone()], None, &mut diags);
    assert!(diags.0.is_empty(), "{diags:?}");
    use crate::policy::Protection::*;
    assert_eq!(p.exempt, [Bpf, Userns, Signal].into_iter().collect());
    assert!(p.is_exempt(Bpf) && !p.is_exempt(Mount));
    // bpf keeps the line that first lifted it.
    assert_eq!(
        p.exempt_sources[&Bpf].to_string(),
        format!("{}:3", r.join("a.conf").display())
    );
    assert_eq!(p.exempt_sources[&Userns].line, 2);
    assert_eq!(p.exempt_sources.len(), p.exempt.len());
    let protections = p.protections();
    assert_eq!(protections.len(), crate::policy::Protection::ALL.len() - 3);
    assert!(!protections.contains(&Bpf) && protections.contains(&Mount));
    // Without the reset, the slice's exemptions stay.
    let p = merge(&lookup, &[slice, b], None, &mut diags);
    assert_eq!(p.exempt, [Mount, Ptrace, Userns, Bpf].into_iter().collect());
    assert!(p.protections().is_empty(), "no rules: not armored");
}

fn decide(p: &Policy, class: crate::policy::Class, path: &str) -> crate::compile::Verdict {
    crate::compile::compile(p)
        .unwrap()
        .decide(class, path.as_bytes())
}

#[test]
fn a_unit_whose_every_rule_is_broken_is_armored() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    let typo = write(
        r,
        "typo.conf",
        "[X-Armor]\nArmorPolicy=deny net pakcet\nArmorPolicy=@missing\n",
    );
    let mut diags = Diagnostics::default();
    let p = merge(
        &Lookup::under(r),
        std::slice::from_ref(&typo),
        None,
        &mut diags,
    );
    assert_eq!(diags.errors().count(), 2, "{diags:?}");
    assert_eq!(p.broken, 2);
    assert!(p.is_armored(), "its implicit protections hold");
    assert!(!p.protections().is_empty());
    let reset = write(r, "reset.conf", "[X-Armor]\nArmorPolicy=\n");
    let p = merge(
        &Lookup::under(r),
        &[typo, reset],
        None,
        &mut Diagnostics::default(),
    );
    assert!(
        !p.is_armored(),
        "an empty ArmorPolicy= drops them, as it drops rules"
    );
}

#[test]
fn a_broken_allow_rule_never_widens() {
    use crate::compile::{Verdict, RULE_NOT_ALLOWED};
    use crate::policy::Class::{Read, Write};
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    let both = write(
        r,
        "both.conf",
        "[X-Armor]\nArmorPolicy=allow read /ok\nArmorPolicy=allow read relative/path\n",
    );
    let mut diags = Diagnostics::default();
    let p = merge(&Lookup::under(r), &[both], None, &mut diags);
    assert_eq!(diags.errors().count(), 1, "{diags:?}");
    assert_eq!(diags.0[0].source.line, 3);
    assert_eq!(decide(&p, Read, "/ok"), Verdict::Allow);
    assert_eq!(
        decide(&p, Read, "/etc/passwd"),
        Verdict::Deny(RULE_NOT_ALLOWED)
    );
    let only = write(
        r,
        "only.conf",
        "[X-Armor]\nArmorPolicy=allow read relative/path\n",
    );
    let mut diags = Diagnostics::default();
    let p = merge(
        &Lookup::under(r),
        std::slice::from_ref(&only),
        None,
        &mut diags,
    );
    assert!(diags.has_errors());
    assert!(
        p.is_armored(),
        "a broken allow rule alone still arms the unit"
    );
    assert_eq!(p.broken_allow, [Read].into_iter().collect());
    for path in ["/ok", "/etc/passwd", "/"] {
        assert_eq!(decide(&p, Read, path), Verdict::Deny(RULE_NOT_ALLOWED));
    }
    assert_eq!(decide(&p, Write, "/srv/x"), Verdict::Allow);
    // A later empty ArmorPolicy= drops it, like any rule before it (the error stays).
    let reset = write(
        r,
        "reset.conf",
        "[X-Armor]\nArmorPolicy=\nArmorPolicy=deny read /x\n",
    );
    let mut diags = Diagnostics::default();
    let p = merge(&Lookup::under(r), &[only, reset], None, &mut diags);
    assert!(diags.has_errors() && p.broken_allow.is_empty());
    // The same for a rule of a named policy.
    let named = write(
        r,
        "etc/unitarmor/policies/web.toml",
        "[[rule]]\naction = \"allow\"\nclass = \"exec\"\nargs = [\"bin/app\"]\n",
    );
    let inc = write(r, "inc.conf", "[X-Armor]\nArmorPolicy=@web\n");
    let mut diags = Diagnostics::default();
    let p = merge(&Lookup::under(r), &[inc], None, &mut diags);
    assert!(diags.errors().any(|d| *d.source.file == named), "{diags:?}");
    assert_eq!(
        decide(&p, crate::policy::Class::Exec, "/usr/bin/app"),
        Verdict::Deny(RULE_NOT_ALLOWED)
    );
}

#[test]
fn dropins_are_what_systemd_reads_and_nothing_blocks() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    let dir = r.join("etc/systemd/system/app.service.d");
    let ok = write(
        r,
        "etc/systemd/system/app.service.d/10-ok.conf",
        "[X-Armor]\nArmorPolicy=deny read /x\n",
    );
    write(
        r,
        "etc/systemd/system/app.service.d/.hidden.conf",
        "[X-Armor]\nArmorMode=off\n",
    );
    std::fs::create_dir(dir.join("dir.conf")).unwrap();
    let mkfifo = |p: &Path| {
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a file.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    };
    mkfifo(&dir.join("zz.conf"));
    // A FIFO a symlink points to: systemd lists the symlink, the read refuses it.
    mkfifo(&r.join("fifo"));
    let link = dir.join("yy.conf");
    std::os::unix::fs::symlink(r.join("fifo"), &link).unwrap();
    let mut diags = Diagnostics::default();
    let files = unit_files_checked(r, "app.service", &mut diags).dropins;
    assert_eq!(files, [ok.clone(), link.clone()]);
    let warned: Vec<String> = diags.0.iter().map(|d| d.to_string()).collect();
    assert_eq!(warned.len(), 2, "{warned:?}");
    assert!(
        warned[0].contains("dir.conf") && warned[1].contains("zz.conf"),
        "{warned:?}"
    );
    assert!(
        warned.iter().all(|w| w.contains("warning: skipped")),
        "{warned:?}"
    );
    // Reading the FIFO (directly or through the link) returns at once and is reported.
    let lookup = Lookup::under(r);
    let (tx, rx) = std::sync::mpsc::channel();
    let fifo = dir.join("zz.conf");
    std::thread::spawn(move || {
        let mut diags = Diagnostics::default();
        let p = merge(&lookup, &[ok, link, fifo], None, &mut diags);
        let _ = tx.send((p, diags));
    });
    let (p, diags) = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("reading a FIFO must not block");
    assert_eq!(p.rules.len(), 1);
    let warned: Vec<String> = diags.0.iter().map(|d| d.to_string()).collect();
    assert_eq!(warned.len(), 2, "{warned:?}");
    assert!(
        warned[0].contains("yy.conf:1: warning: not read: it is a FIFO"),
        "{warned:?}"
    );
    assert!(
        warned[1].contains("zz.conf:1: warning: not read: it is a FIFO"),
        "{warned:?}"
    );
    assert!(!mentions_armor(&[dir.join("zz.conf")]));
    // /dev/null is a mask: empty, no warning.
    let mut diags = Diagnostics::default();
    let p = merge(
        &Lookup::under(r),
        &[PathBuf::from("/dev/null")],
        None,
        &mut diags,
    );
    assert!(diags.0.is_empty() && !p.configured);
}

/// Slice precedence: the slice's rules are always kept, the mode is the strictest that
/// applies, and `off` on the unit turns off only the unit's own rules.
#[test]
fn a_unit_cannot_drop_its_slices_rules() {
    use crate::compile::Verdict;
    use crate::policy::Class::{Read, Write};
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    let lookup = Lookup::under(r);
    let slice = write(r, "s.conf", "[X-Armor]\nArmorPolicy=deny read /secret\n");
    let audit_slice = write(
        r,
        "as.conf",
        "[X-Armor]\nArmorMode=audit\nArmorPolicy=deny read /secret\n",
    );
    let off_slice = write(
        r,
        "os.conf",
        "[X-Armor]\nArmorMode=off\nArmorPolicy=deny read /secret\n",
    );
    let reset_audit = write(
        r,
        "ra.conf",
        "[X-Armor]\nArmorPolicy=\nArmorPolicy=deny write /w\nArmorMode=audit\n",
    );
    let plain = write(r, "p.conf", "[X-Armor]\nArmorPolicy=deny write /w\n");
    let off = write(
        r,
        "off.conf",
        "[X-Armor]\nArmorMode=off\nArmorPolicy=deny write /w\n",
    );
    let exempt_only = write(r, "e.conf", "[X-Armor]\nArmorExempt=bpf\n");
    let run = |s: &PathBuf, u: &PathBuf| {
        let mut diags = Diagnostics::default();
        let p = merge_layers(
            &lookup,
            &[vec![s.clone()]],
            std::slice::from_ref(u),
            None,
            &mut diags,
        );
        assert!(diags.0.is_empty(), "{diags:?}");
        p
    };
    let texts = |p: &Policy| p.rules.iter().map(|r| r.to_string()).collect::<Vec<_>>();

    // The unit's reset and audit mode: the slice's rule stays, enforced.
    let p = run(&slice, &reset_audit);
    assert_eq!(texts(&p), ["deny read /secret", "deny write /w"]);
    assert_eq!(p.mode, Mode::Enforce);
    assert_eq!(decide(&p, Read, "/secret"), Verdict::Deny(0));
    // A one-pass merge of the same files would have dropped it (what this replaces).
    let mut diags = Diagnostics::default();
    let flat = merge(
        &lookup,
        &[slice.clone(), reset_audit.clone()],
        None,
        &mut diags,
    );
    assert_eq!(texts(&flat), ["deny write /w"]);
    // An audited slice, a unit with rules of its own (enforce by default): enforce.
    assert_eq!(run(&audit_slice, &plain).mode, Mode::Enforce);
    // A unit that says nothing about its mode and has no rules keeps the slice's.
    let p = run(&audit_slice, &exempt_only);
    assert_eq!((p.mode, texts(&p).len()), (Mode::Audit, 1));
    assert!(p.is_exempt(crate::policy::Protection::Bpf));
    // Off on the unit: its own rules are off, the slice's are not.
    let p = run(&slice, &off);
    assert_eq!(texts(&p), ["deny read /secret"]);
    assert!(p.is_armored() && p.mode == Mode::Enforce);
    assert_eq!(decide(&p, Write, "/w"), Verdict::Allow);
    // Off on the slice: the slice's rules are off, the unit's are not.
    let p = run(&off_slice, &plain);
    assert_eq!(
        (texts(&p), p.mode),
        (vec!["deny write /w".to_string()], Mode::Enforce)
    );
    // Both off: not armored.
    assert!(!run(&off_slice, &off).is_armored());
    // Without a slice policy, a unit is what its own files say.
    let mut diags = Diagnostics::default();
    let p = merge_layers(
        &lookup,
        &[],
        std::slice::from_ref(&reset_audit),
        None,
        &mut diags,
    );
    assert_eq!((texts(&p).len(), p.mode), (1, Mode::Audit));
    // Nested slices are layers too: an inner slice's reset keeps the outer slice's rules.
    let inner = write(
        r,
        "inner.conf",
        "[X-Armor]\nArmorPolicy=\nArmorPolicy=deny read /inner\n",
    );
    let p = merge_layers(
        &lookup,
        &[vec![slice.clone()], vec![inner]],
        std::slice::from_ref(&reset_audit),
        None,
        &mut diags,
    );
    assert_eq!(
        texts(&p),
        ["deny read /secret", "deny read /inner", "deny write /w"]
    );
    assert_eq!(p.mode, Mode::Enforce);
}

#[test]
fn units_without_the_section_are_not_armored() {
    let t = tempfile::tempdir().unwrap();
    let a = write(t.path(), "a.service", "[Service]\nExecStart=/bin/true\n");
    let mut diags = Diagnostics::default();
    let p = merge(&Lookup::under(t.path()), &[a], None, &mut diags);
    assert!(!p.configured && !p.is_armored());
    let off = write(
        t.path(),
        "off.conf",
        "[X-Armor]\nArmorMode=off\nArmorPolicy=deny read /x\n",
    );
    assert!(!merge(&Lookup::under(t.path()), &[off], None, &mut diags).is_armored());
}

/// A file or drop-in directory that cannot be read is never taken as "no armor": the unit is
/// looked at (`mentions_armor`), counts as armored, and the file or directory is named.
#[test]
fn what_cannot_be_read_is_never_taken_for_no_armor() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    write(
        r,
        "etc/systemd/system/app.service",
        "[Service]\nExecStart=/bin/true\n",
    );
    // A drop-in directory that leads to itself: it exists, and listing it fails (ELOOP).
    let loop_dir = r.join("etc/systemd/system/app.service.d");
    std::os::unix::fs::symlink(&loop_dir, &loop_dir).unwrap();
    let mut diags = Diagnostics::default();
    let found = unit_files_checked(r, "app.service", &mut diags);
    assert!(found.fragment.is_some() && found.dropins.is_empty());
    assert_eq!(found.unlisted.len(), 1, "{found:?}");
    assert_eq!(found.unlisted[0].0, loop_dir);
    assert!(diags.has_errors(), "{diags:?}");
    assert!(
        diags.0[0]
            .to_string()
            .contains("cannot list this drop-in directory"),
        "{diags:?}"
    );
    // A unit without a drop-in directory, or with a file where one would be, has none.
    let mut diags = Diagnostics::default();
    write(r, "etc/systemd/system/other.service.d", "not a directory");
    let found = unit_files_checked(r, "other.service", &mut diags);
    assert!(
        found.unlisted.is_empty() && !diags.has_errors(),
        "{diags:?}"
    );

    // A drop-in that cannot be read (a symlink loop; a file over the size limit).
    let dir = r.join("etc/systemd/system/web.service.d");
    std::fs::create_dir_all(&dir).unwrap();
    let looped = dir.join("armor.conf");
    std::os::unix::fs::symlink(&looped, &looped).unwrap();
    let huge = dir.join("huge.conf");
    std::fs::write(&huge, vec![b'#'; dropin::MAX_FILE_BYTES + 1]).unwrap();
    let plain = write(r, "plain.conf", "[Service]\nUser=nobody\n");
    for f in [&looped, &huge] {
        assert!(mentions_armor(&[plain.clone(), f.clone()]), "{f:?}");
        assert!(!all_readable(&[plain.clone(), f.clone()]), "{f:?}");
        let mut diags = Diagnostics::default();
        let p = merge(
            &Lookup::under(r),
            &[plain.clone(), f.clone()],
            None,
            &mut diags,
        );
        assert_eq!(p.unreadable, std::slice::from_ref(f));
        assert!(p.is_armored() && diags.has_errors(), "{diags:?}");
        // Not even `ArmorMode=off` before it, in another layer, disarms it.
        let off = write(r, "off.conf", "[X-Armor]\nArmorMode=off\n");
        let p = merge_layers(
            &Lookup::under(r),
            &[vec![f.clone()]],
            &[off],
            None,
            &mut diags,
        );
        assert!(p.is_armored(), "{f:?}");
    }
    assert!(!mentions_armor(std::slice::from_ref(&plain)) && all_readable(&[plain]));
}

/// What many units read (`service.d/`, `foo-.service.d/`) that cannot be read is an error for
/// each, never a refusal of them all; a file that is gone is absent, as for systemd; a named
/// policy that cannot be read or found keeps every class an allow-list.
#[test]
fn shared_or_vanished_files_and_missing_includes() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    let sys = r.join("etc/systemd/system");
    assert!(is_shared(&sys.join("service.d/x.conf")));
    assert!(is_shared(&sys.join("service.d")));
    assert!(is_shared(&sys.join("foo-.service.d/x.conf")));
    assert!(!is_shared(&sys.join("foo-bar.service.d/x.conf")));
    assert!(
        !is_shared(&sys.join("foo-.bar.service.d/x.conf")),
        "a unit's own name may hold a dash before a dot"
    );
    assert!(is_shared(&sys.join("foo-bar-.service.d")));
    assert!(!is_shared(&sys.join("web@.service.d/x.conf")));
    assert!(!is_shared(&sys.join("app.service")));

    let big = sys.join("service.d/big.conf");
    std::fs::create_dir_all(big.parent().unwrap()).unwrap();
    std::fs::write(&big, vec![b'#'; dropin::MAX_FILE_BYTES + 1]).unwrap();
    let gone = sys.join("app.service.d/gone.conf");
    std::fs::create_dir_all(gone.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(r.join("nothing"), &gone).unwrap();
    for (f, error) in [(&big, true), (&gone, false)] {
        assert!(!mentions_armor(std::slice::from_ref(f)), "{f:?}");
        let mut diags = Diagnostics::default();
        let p = merge(&Lookup::under(r), std::slice::from_ref(f), None, &mut diags);
        assert!(p.unreadable.is_empty() && !p.is_armored(), "{f:?}");
        assert_eq!(diags.has_errors(), error, "{f:?}: {diags:?}");
    }

    let d = write(
        r,
        "inc.conf",
        "[X-Armor]\nArmorPolicy=deny read /x\nArmorPolicy=@not-there\n",
    );
    let mut diags = Diagnostics::default();
    let p = merge(&Lookup::under(r), &[d], None, &mut diags);
    assert!(diags.has_errors());
    assert!(
        crate::policy::Class::ALL
            .iter()
            .all(|c| p.broken_allow.contains(c)),
        "{:?}",
        p.broken_allow
    );
    // From a drop-in many units read: an error for each, no allow-lists made.
    let shared = write(
        r,
        "etc/systemd/system/service.d/inc.conf",
        "[X-Armor]\nArmorPolicy=@not-there\n",
    );
    let mut diags = Diagnostics::default();
    let p = merge(&Lookup::under(r), &[shared], None, &mut diags);
    assert!(
        diags.has_errors() && p.broken_allow.is_empty(),
        "{:?}",
        p.broken_allow
    );
}

/// A file many units read that exists but cannot be read is found (the daemon then keeps the
/// armor of the units it may hold); one that is absent is not, nor a unit's own.
#[test]
fn an_unreadable_shared_file_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("service.d");
    let own = dir.path().join("app.service.d");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::create_dir_all(&own).unwrap();
    std::os::unix::fs::symlink("loop.conf", shared.join("loop.conf")).unwrap();
    std::os::unix::fs::symlink("loop.conf", own.join("loop.conf")).unwrap();
    std::fs::write(shared.join("ok.conf"), "[Service]\n").unwrap();
    let files = vec![
        shared.join("ok.conf"),
        shared.join("missing.conf"),
        own.join("loop.conf"),
        shared.join("loop.conf"),
    ];
    assert_eq!(unreadable_shared(&files), Some(&shared.join("loop.conf")));
    assert_eq!(unreadable_shared(&files[..3]), None);
}
