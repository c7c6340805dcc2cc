//! The daemon's exchanges with PID 1 over D-Bus, and what it does while it waits for them:
//! a rescan (everything systemd says of the armored units), one instance's refresh, the
//! forwarding of systemd's signals in the order they were sent. PID 1 answers nothing while a
//! reload runs the generator, and the generator waits for the daemon: every wait here also
//! answers sync requests and takes finished compiles (sync.rs, compiling.rs).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::compiling::Compiled;
use super::discover::discover;
use super::sync::{self, Request};
use super::{events, watch, Daemon};
use crate::systemd::{self, ManagerProxy};
use anyhow::Result;

/// Reads instance `name` of an armored template from systemd, answering sync requests
/// meanwhile. A reload's request means what systemd says now may predate it: the rescan that
/// follows covers this unit.
pub(super) async fn refresh_instance(
    d: &mut Daemon,
    conn: &zbus::Connection,
    manager: &ManagerProxy<'_>,
    sync_rx: &mut Option<mpsc::Receiver<Request>>,
    compiled: &mut mpsc::UnboundedReceiver<Compiled>,
    name: &str,
) {
    let fetch = async {
        let path = manager.get_unit(name).await?;
        systemd::unit_info(conn, path).await
    };
    tokio::pin!(fetch);
    loop {
        tokio::select! {
            info = &mut fetch => {
                match info {
                    Ok(info) => d.refresh(info),
                    // Loaded and unloaded again before we asked (a stopped instance being
                    // collected): nothing to armor.
                    Err(e) if format!("{e:#}").contains("NoSuchUnit") => {
                        tracing::debug!("unit {name} is gone again: {e:#}");
                    }
                    Err(e) => warn!("cannot read unit {name}: {e:#}"),
                }
                return;
            }
            Some(req) = sync::next(sync_rx) => if d.answer_sync(req, sync_rx) {
                rescan(d, conn, manager, sync_rx, compiled).await;
                return;
            } else {
                // Its pass may have dropped the compile an earlier answer waited for.
                d.after_compiles();
            },
            // A reload waiting for a compile blocks PID 1, which this waits for.
            Some(done) = compiled.recv() => d.compiled(done),
        }
    }
}

/// Awaits `fut` (an exchange over D-Bus) while answering sync requests.
pub(super) async fn answering<F: Future>(
    d: &mut Daemon,
    sync_rx: &mut Option<mpsc::Receiver<Request>>,
    compiled: &mut mpsc::UnboundedReceiver<Compiled>,
    fut: F,
) -> F::Output {
    tokio::pin!(fut);
    // Units waiting for the daemon (pending.rs) are let go meanwhile too.
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            out = &mut fut => return out,
            Some(req) = sync::next(sync_rx) => {
                d.answer_sync(req, sync_rx);
                d.after_compiles();
            }
            Some(done) = compiled.recv() => d.compiled(done),
            _ = tick.tick() => d.pending_tick(),
        }
    }
}

/// Re-reads everything with systemd's view (at start and after `systemctl daemon-reload`).
/// A sync request meanwhile is answered and, if it came from a reload, the rescan started
/// over: PID 1's answers so far may predate that reload, and must not undo what the sync
/// read from disk.
pub(super) async fn rescan(
    d: &mut Daemon,
    conn: &zbus::Connection,
    manager: &ManagerProxy<'_>,
    sync_rx: &mut Option<mpsc::Receiver<Request>>,
    compiled: &mut mpsc::UnboundedReceiver<Compiled>,
) {
    // Units waiting for the daemon (pending.rs) are let go meanwhile too: PID 1 may take a
    // reload's time to answer.
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let began = std::time::Instant::now();
        let found = discover(conn, manager);
        tokio::pin!(found);
        loop {
            tokio::select! {
                found = &mut found => {
                    let asked = began.elapsed();
                    let n = found.len();
                    let phases = d.apply_rescan(found);
                    // Asked after the last reload's pass (a later one starts the rescan
                    // over): what PID 1 said is what that reload loaded.
                    d.reload_end_due = None;
                    let took = began.elapsed();
                    info!(
                        "rescan: {n} armored units and instances in {} ms ({} ms finding \
                         them on disk and asking systemd, {} ms applying: {phases})",
                        took.as_millis(),
                        asked.as_millis(),
                        (took - asked).as_millis()
                    );
                    events::release_free_memory();
                    return;
                }
                // A start's request changes nothing systemd says: go on.
                Some(req) = sync::next(sync_rx) => if d.answer_sync(req, sync_rx) {
                    break;
                } else {
                    d.after_compiles();
                },
                // A reload waiting for a compile blocks PID 1, which this waits for.
                Some(done) = compiled.recv() => d.compiled(done),
                _ = tick.tick() => d.pending_tick(),
            }
        }
    }
}

/// What the daemon reacts to from systemd.
pub(super) enum SystemdSignal {
    /// A `daemon-reload` (or `daemon-reexec`) began: PID 1 is about to run the generators,
    /// ours among them, whose request makes a pass. A `Reloaded` may never follow (systemd
    /// sends none when it cannot serialize its state).
    Reloading,
    /// A `daemon-reload` finished.
    Reloaded,
    /// A service was loaded.
    Unit(String),
    /// A service was unloaded (systemd garbage-collects a unit that is stopped and that
    /// nothing refers to any more).
    Removed(String),
}

/// Forwards systemd's signals into `tx`, from tasks of their own. `UnitNew` and `UnitRemoved`
/// keep the order systemd sent them in (see [`forward_in_order`]).
pub(super) async fn forward_signals(
    manager: &ManagerProxy<'_>,
    tx: mpsc::UnboundedSender<SystemdSignal>,
    changes: Arc<watch::Changes>,
) -> Result<()> {
    let mut reloading = manager.receive_reloading().await?;
    let serial = |m: &zbus::Message| m.primary_header().serial_num().get();
    let unit_new = manager.receive_unit_new().await?.filter_map(move |sig| {
        let unit = sig.args().ok().map(|a| a.id.clone());
        std::future::ready(
            unit.filter(|u| u.ends_with(".service"))
                .map(|u| (serial(sig.message()), SystemdSignal::Unit(u))),
        )
    });
    let unit_removed = manager
        .receive_unit_removed()
        .await?
        .filter_map(move |sig| {
            let unit = sig.args().ok().map(|a| a.id.clone());
            std::future::ready(
                unit.filter(|u| u.ends_with(".service"))
                    .map(|u| (serial(sig.message()), SystemdSignal::Removed(u))),
            )
        });
    let t = tx.clone();
    tokio::spawn(async move {
        while let Some(sig) = reloading.next().await {
            // A reload (its start, and its end) may change any unit's files: generators
            // write some.
            changes.bump();
            let which = match sig.args() {
                Ok(a) if a.active => SystemdSignal::Reloading,
                Ok(_) => SystemdSignal::Reloaded,
                Err(_) => continue,
            };
            if t.send(which).is_err() {
                break;
            }
        }
    });
    tokio::spawn(forward_in_order(
        Box::pin(unit_new),
        Box::pin(unit_removed),
        tx,
    ));
    Ok(())
}

/// Forwards the items of `a` and `b`, two streams of signals from one sender tagged with their
/// message serial, in the order the sender sent them. zbus queues each message on every stream
/// it matches before it reads the next one: once an item has come from one stream, everything
/// the sender sent before it is already queued on the other, so taking all that is ready on
/// both and sorting it by serial keeps the sender's order. Out of order, a unit's `UnitRemoved`
/// handled after the `UnitNew` of its next load would free the slot of a loaded unit, and a
/// `UnitNew` handled after its own `UnitRemoved` would keep an unloaded unit listed.
async fn forward_in_order<T, A, B>(mut a: A, mut b: B, tx: mpsc::UnboundedSender<T>)
where
    A: futures_util::Stream<Item = (u32, T)> + Unpin,
    B: futures_util::Stream<Item = (u32, T)> + Unpin,
{
    use futures_util::FutureExt;
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            Some(x) = a.next() => batch.push(x),
            Some(x) = b.next() => batch.push(x),
            else => return,
        }
        loop {
            let before = batch.len();
            while let Some(Some(x)) = a.next().now_or_never() {
                batch.push(x);
            }
            while let Some(Some(x)) = b.next().now_or_never() {
                batch.push(x);
            }
            if batch.len() == before {
                break;
            }
        }
        batch.sort_by_key(|x| x.0);
        for (_, item) in batch.drain(..) {
            if tx.send(item).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn signals_keep_the_senders_order() {
        let a = futures_util::stream::iter([(1, "new x"), (4, "new y"), (5, "new x")]);
        let b = futures_util::stream::iter([(2, "removed x"), (3, "removed z")]);
        let (tx, mut rx) = mpsc::unbounded_channel();
        forward_in_order(a, b, tx).await;
        let mut got = Vec::new();
        while let Ok(s) = rx.try_recv() {
            got.push(s);
        }
        assert_eq!(got, ["new x", "removed x", "removed z", "new y", "new x"]);
    }

    #[tokio::test]
    async fn signals_that_come_later_follow() {
        let (atx, arx) = mpsc::unbounded_channel();
        let (btx, brx) = mpsc::unbounded_channel();
        let a =
            futures_util::stream::unfold(
                arx,
                |mut rx| async move { rx.recv().await.map(|x| (x, rx)) },
            );
        let b =
            futures_util::stream::unfold(
                brx,
                |mut rx| async move { rx.recv().await.map(|x| (x, rx)) },
            );
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(forward_in_order(Box::pin(a), Box::pin(b), tx));
        btx.send((2, 'b')).unwrap();
        atx.send((1, 'a')).unwrap();
        assert_eq!(rx.recv().await, Some('a'));
        assert_eq!(rx.recv().await, Some('b'));
        atx.send((3, 'c')).unwrap();
        assert_eq!(rx.recv().await, Some('c'));
        drop((atx, btx));
        task.await.unwrap();
        assert_eq!(rx.recv().await, None);
    }
}
