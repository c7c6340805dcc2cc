//! Host tests of the sync socket: the generator's and `unitarmor sync`'s requests against a
//! listener run on a tokio runtime of their own.

use super::super::sync_client::*;
use super::*;
use std::io::Write;
use std::os::unix::net::UnixStream as StdUnixStream;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn no_socket_is_not_running() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sync");
    assert_eq!(
        request(&path, REQUEST, Duration::from_secs(1)),
        Outcome::NotRunning
    );
    // A stale socket: bound once, nobody listening.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert_eq!(
        request(&path, REQUEST, Duration::from_secs(1)),
        Outcome::NotRunning
    );
}

#[test]
fn a_silent_daemon_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sync");
    let _l = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let t = Instant::now();
    let out = request(&path, REQUEST, Duration::from_millis(300));
    assert!(
        matches!(out, Outcome::NoAnswer(ref w) if w.contains("no answer")),
        "{out:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn request_and_answer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run").join("sync");
    let rt = rt();
    let changes = Changes::new();
    let mut rx = rt
        .block_on(async { listen(&path, changes.clone()) })
        .unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // The main loop's side: answer each request (after the "pass").
    let p = path.clone();
    let client = std::thread::spawn(move || {
        (
            request(&p, REQUEST, Duration::from_secs(5)),
            request(&p, REQUEST_START, Duration::from_secs(5)),
        )
    });
    rt.block_on(async {
        // A reload's request is counted as a change before the main loop sees it; a
        // unit start's is not.
        let r = rx.recv().await.unwrap();
        assert!(r.reload);
        assert_eq!(changes.now(), 1);
        r.done.send(()).unwrap();
        let r = rx.recv().await.unwrap();
        assert!(!r.reload);
        assert_eq!(changes.now(), 1);
        r.done.send(()).unwrap();
        // Keep the runtime turning until the answers are out.
        while !client.is_finished() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let (a, b) = client.join().unwrap();
    assert_eq!(a, Outcome::Synced);
    assert_eq!(b, Outcome::Synced);
}

#[test]
fn a_silent_client_does_not_block_others() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sync");
    let rt = rt();
    let mut rx = rt
        .block_on(async { listen(&path, Changes::new()) })
        .unwrap();
    let p = path.clone();
    let client = std::thread::spawn(move || {
        // Connects and says nothing, while another client asks.
        let _silent = StdUnixStream::connect(&p).unwrap();
        let mut garbage = StdUnixStream::connect(&p).unwrap();
        garbage.write_all(b"hello\n").unwrap();
        request(&p, REQUEST, Duration::from_secs(5))
    });
    rt.block_on(async {
        let r = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        r.done.send(()).unwrap();
        while !client.is_finished() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    assert_eq!(client.join().unwrap(), Outcome::Synced);
    assert!(
        rx.try_recv().is_err(),
        "only the well-formed request is forwarded"
    );
}

#[test]
fn replaces_a_stale_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sync");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let rt = rt();
    assert!(rt.block_on(async { listen(&path, Changes::new()) }).is_ok());
}

#[test]
fn wait_dropin_is_a_unit_drop_in() {
    assert!(WAIT_DROPIN.ends_with(".conf"));
    assert!(WAIT_DROPIN_TEXT.contains(&format!(
        "[Unit]\nRequires={SYNC_UNIT}\nAfter={SYNC_UNIT}\n"
    )));
}

#[test]
fn files_written_wait_for_a_reload_under_way_but_not_for_ever() {
    let now = Instant::now();
    let due = now + WATCH_SETTLE;
    assert_eq!(deadline(None, Some(now)), None, "nothing written");
    assert_eq!(deadline(Some(due), None), Some(due), "no reload");
    // A reload began: its request's pass comes first; one whose end goes unheard holds the
    // files' pass for RELOAD_DEFER, no longer.
    assert_eq!(deadline(Some(due), Some(now)), Some(now + RELOAD_DEFER));
    let long_ago = now - RELOAD_DEFER - Duration::from_secs(1);
    assert_eq!(deadline(Some(due), Some(long_ago)), Some(due));
}
