//! Host tests of the watcher: real inotify on temporary directories, the races a start's
//! request must not lose.

use super::*;

/// A pass as the daemon would note it: its mark and when it began.
type Pass = (u64, Began);

/// Waits (up to 10 s) until a pass begun now would hold a moment later, as after a pass:
/// that pass, and whether the watcher sent a batch meanwhile.
fn idle(changes: &Changes, rx: &mut mpsc::UnboundedReceiver<()>) -> (Pass, bool) {
    let t = std::time::Instant::now();
    let mut batch = false;
    loop {
        assert!(t.elapsed().as_secs() < 10, "the watcher never went idle");
        std::thread::sleep(std::time::Duration::from_millis(50));
        while rx.try_recv().is_ok() {
            batch = true;
        }
        let pass = (changes.now(), Began::now());
        std::thread::sleep(std::time::Duration::from_millis(300));
        while rx.try_recv().is_ok() {
            batch = true;
        }
        if changes.changed_since(pass.0, pass.1).is_none() {
            return (pass, batch);
        }
    }
}

#[test]
fn every_change_is_seen_until_a_pass_can_see_it() {
    let t = tempfile::tempdir().unwrap();
    let units = t.path().join("system");
    let later = t.path().join("system.control");
    let generated = t.path().join("generator");
    std::fs::create_dir(&units).unwrap();
    std::fs::create_dir(&generated).unwrap();
    // File times here are this machine's fine-grained ones: a tenth of a second will do.
    let changes = Changes::with_margin(std::time::Duration::from_millis(100));
    assert!(
        changes.changed_since(0, Began::now()).is_some(),
        "nothing holds before the watcher runs"
    );
    let dirs = vec![
        (units.clone(), true),
        (later.clone(), true),
        (generated.clone(), false),
    ];
    let mut rx = spawn_watching(
        changes.clone(),
        dirs,
        Vec::new,
        Path::new("/proc/self/mountinfo"),
    )
    .unwrap();
    let (mut pass, _) = idle(&changes, &mut rx);
    // change(WHAT, PASS, F): a change is seen at once (queued, counted or by its time),
    // whether the watcher makes a pass for it, and the files hold again after a new pass.
    let mut change = |what: &str, makes_pass: bool, f: &dyn Fn()| {
        f();
        assert!(
            changes.changed_since(pass.0, pass.1).is_some(),
            "{what}: not seen"
        );
        let (p, batch) = idle(&changes, &mut rx);
        assert_eq!(batch, makes_pass, "{what}: a pass or none");
        pass = p;
    };

    change("a unit file", true, &|| {
        std::fs::write(units.join("a.service"), "[Service]\n").unwrap()
    });
    // A new drop-in directory gets a watch before its batch is sent: a file written into
    // it right after is a change too.
    change("a drop-in directory", true, &|| {
        std::fs::create_dir(units.join("a.service.d")).unwrap()
    });
    let dropin = units.join("a.service.d/armor.conf");
    change("a drop-in", true, &|| {
        std::fs::write(&dropin, "[X-Armor]\n").unwrap()
    });
    // A top directory made after the watcher started (its parent is not watched): seen
    // from the moment it exists, and watched within a second or so.
    change("a top directory made", true, &|| {
        std::fs::create_dir(&later).unwrap()
    });
    change("a file in it", true, &|| {
        std::fs::write(later.join("b.service"), "").unwrap()
    });
    // A write not closed yet: seen, but the pass comes at the close.
    let open = std::cell::RefCell::new(None);
    change("a write not closed", false, &|| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(units.join("a.service"))
            .unwrap();
        f.write_all(b"# more\n").unwrap();
        *open.borrow_mut() = Some(f);
    });
    change("its close", true, &|| drop(open.borrow_mut().take()));
    change("generator output (counted only)", false, &|| {
        std::fs::write(generated.join("c.service"), "").unwrap()
    });
    // A hard link made elsewhere, and a write through it: no event in a watched
    // directory, seen by the file's ctime.
    let other = t.path().join("elsewhere.conf");
    change("a hard link to a drop-in made elsewhere", false, &|| {
        std::fs::hard_link(&dropin, &other).unwrap()
    });
    change("a write through it", false, &|| {
        std::fs::write(&other, "[X-Armor]\nArmorPolicy=deny read /x\n").unwrap()
    });
    // A top directory renamed away and made again.
    change("a top directory replaced", true, &|| {
        std::fs::rename(&units, t.path().join("system.old")).unwrap();
        std::fs::create_dir(&units).unwrap();
    });
    change("a file in the new one", true, &|| {
        std::fs::write(units.join("d.service"), "").unwrap()
    });
    // What the daemon counts itself.
    change("a bump", false, &|| changes.bump());
    // A masked name and an alias inside the watched directories lead nowhere else.
    change("a masked name", true, &|| {
        std::os::unix::fs::symlink("/dev/null", units.join("f.service")).unwrap()
    });
    change("an alias", true, &|| {
        std::os::unix::fs::symlink(units.join("d.service"), units.join("g.service")).unwrap()
    });

    // Names that lead out of the watched directories: nothing holds while one is there.
    let outside = t.path().join("outside.service");
    std::fs::write(&outside, "").unwrap();
    let link = units.join("e.service");
    for (what, target) in [
        ("a symlink to a file elsewhere", outside.clone()),
        ("a symlink to nothing", t.path().join("nothing.service")),
    ] {
        std::os::unix::fs::symlink(&target, &link).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(500));
        let (now, at) = (changes.now(), Began::now());
        std::thread::sleep(std::time::Duration::from_millis(400));
        assert!(changes.changed_since(now, at).is_some(), "{what}: holds");
        std::fs::remove_file(&link).unwrap();
        idle(&changes, &mut rx);
    }

    // A drop-in directory that is a symlink, pointed elsewhere without an event here (its
    // files older than the pass): seen, and watched anew with a pass.
    let rel1 = t.path().join("rel1");
    let rel2 = t.path().join("rel2");
    for r in [&rel1, &rel2] {
        std::fs::create_dir(r).unwrap();
        std::fs::write(r.join("armor.conf"), "[X-Armor]\n").unwrap();
    }
    let current = t.path().join("current");
    std::os::unix::fs::symlink(&rel1, &current).unwrap();
    std::os::unix::fs::symlink(&current, units.join("h.service.d")).unwrap();
    let (mut pass, _) = idle(&changes, &mut rx);
    std::fs::remove_file(&current).unwrap();
    std::os::unix::fs::symlink(&rel2, &current).unwrap();
    assert!(
        changes.changed_since(pass.0, pass.1).is_some(),
        "a drop-in directory pointed elsewhere: not seen"
    );
    let batch;
    (pass, batch) = idle(&changes, &mut rx);
    assert!(batch, "a drop-in directory pointed elsewhere: no pass");
    // One that leads to nothing yet, then to a directory made later.
    let later_dir = t.path().join("made-later");
    std::os::unix::fs::symlink(&later_dir, units.join("i.service.d")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (now, at) = (changes.now(), Began::now());
    std::thread::sleep(std::time::Duration::from_millis(400));
    assert!(
        changes.changed_since(now, at).is_some(),
        "a drop-in directory that leads to nothing: holds"
    );
    let _ = pass;
}

#[test]
fn finds_dropin_directories_only() {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir(t.path().join("app.service.d")).unwrap();
    std::fs::create_dir(t.path().join("multi-user.target.wants")).unwrap();
    std::fs::write(t.path().join("app.service"), "").unwrap();
    std::fs::write(t.path().join("file.d"), "").unwrap();
    let found = dropin_dirs(t.path());
    assert_eq!(found, Some(vec![t.path().join("app.service.d")]));
    assert_eq!(dropin_dirs(&t.path().join("none")), Some(Vec::new()));
}

/// The watcher's list of directories changes its generation only when it lists other
/// directories: a file written into a watched one leaves it as it was, so the daemon's
/// every-second publication of the unit directories (pending.rs) has nothing to write.
#[test]
fn the_list_of_directories_changes_only_with_the_directories() {
    let t = tempfile::tempdir().unwrap();
    let units = t.path().join("system");
    std::fs::create_dir(&units).unwrap();
    std::fs::create_dir(units.join("a.service.d")).unwrap();
    let changes = Changes::with_margin(std::time::Duration::from_millis(100));
    let mut rx = spawn_watching(
        changes.clone(),
        vec![(units.clone(), true)],
        Vec::new,
        Path::new("/proc/self/mountinfo"),
    )
    .unwrap();
    idle(&changes, &mut rx);
    let (first, listed) = changes.listed_if_new(None).expect("a list");
    let paths = |l: &[crate::daemon::changes::ListedDir]| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = l.iter().map(|d| d.0.clone()).collect();
        v.sort();
        v
    };
    assert_eq!(
        paths(&listed),
        vec![units.clone(), units.join("a.service.d")]
    );
    assert!(
        changes.listed_if_new(Some(first)).is_none(),
        "taken with its generation"
    );

    std::fs::write(units.join("a.service.d/armor.conf"), "[X-Armor]\n").unwrap();
    std::fs::write(units.join("a.service"), "[Service]\n").unwrap();
    let (_, batch) = idle(&changes, &mut rx);
    assert!(batch, "the writes made a pass");
    assert!(
        changes.listed_if_new(Some(first)).is_none(),
        "files written into watched directories changed the list"
    );

    std::fs::create_dir(units.join("b.service.d")).unwrap();
    idle(&changes, &mut rx);
    let (second, listed) = changes
        .listed_if_new(Some(first))
        .expect("a new drop-in directory changes the list");
    assert_ne!(second, first);
    assert!(paths(&listed).contains(&units.join("b.service.d")));
}
