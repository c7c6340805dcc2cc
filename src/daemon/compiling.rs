//! Big policies compile on a thread of their own: a policy of more than
//! [`crate::compile::GROUP_ABOVE`] path patterns can take seconds to compile, and the main loop
//! goes on meanwhile (other units' changes, events, `unitarmor status`, pending cgroups).
//!
//! What must not go on without the policy waits for it instead: a reload's generator and a
//! unit's start are answered (sync.rs), and the pending marks of the files the pass read are
//! cleared (pending.rs), only once no compile is under way. Until its new policy is installed,
//! an armored unit keeps its current one; a unit armored for the first time has no entry in
//! the kernel yet, and whatever could start it meanwhile waits for those answers and marks.
//! A job whose unit the files change again before it is done is dropped for a new one.
//! Start-up compiles in line: nothing is answered before the daemon is ready.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use super::apart::{apart, Apart};
use super::discover::Candidate;
use super::first::Read;
use super::Daemon;
use crate::compile::{self, Tables, GROUP_ABOVE};
use crate::policy::Policy;

/// A compile the worker finished.
pub(super) struct Compiled {
    name: String,
    job: u64,
    result: Result<Tables, String>,
    took: Duration,
    /// Compiled in a child process (apart.rs): its peak resident size in KiB (0: unknown).
    apart: Option<u64>,
}

/// What the worker is given.
struct Work {
    name: String,
    job: u64,
    policy: Arc<Policy>,
    pattern: String,
    dropped: Arc<AtomicBool>,
}

/// A compile under way, with what installing its result needs.
struct Job {
    id: u64,
    policy: Arc<Policy>,
    expected: String,
    candidate: Candidate,
    /// A template whose instances have policies of their own (reconcile.rs).
    differ: bool,
    dropped: Arc<AtomicBool>,
    began: Instant,
    /// What the pass read the policy from (first.rs: a first policy waits for whole files).
    read: Read,
}

pub(super) struct Compiling {
    /// Off until the daemon follows systemd: start-up compiles in line.
    pub(super) enabled: bool,
    jobs: HashMap<String, Job>,
    next: u64,
    worker: Option<std::sync::mpsc::Sender<Work>>,
    done: mpsc::UnboundedSender<Compiled>,
    /// The latest start of a pass whose pending marks wait to be cleared (pending.rs).
    settle: Option<u64>,
    /// Answers to sync requests (sync.rs), each waiting for the compiles that were under way
    /// when it was made (by unit: a compile started over for newer files still counts), not
    /// for those started since, which a steady stream of them would hold back for good.
    replies: Vec<(Vec<String>, oneshot::Sender<()>)>,
}

impl Compiling {
    pub(super) fn new(done: mpsc::UnboundedSender<Compiled>) -> Compiling {
        Compiling {
            enabled: false,
            jobs: HashMap::new(),
            next: 0,
            worker: None,
            done,
            settle: None,
            replies: Vec::new(),
        }
    }

    /// Whether `policy` is compiled on the worker.
    pub(super) fn offloads(&self, policy: &Policy) -> bool {
        self.enabled && path_patterns(policy) > GROUP_ABOVE
    }

    /// Whether the policy `name`'s files say now (`policy`, at `expected`) is being compiled
    /// already; if so, the job installs it with what `c` says of the unit, as read by this
    /// pass (`read`: the same policy, read again later).
    pub(super) fn under_way(
        &mut self,
        c: &Candidate,
        policy: &Policy,
        expected: &str,
        read: &Read,
    ) -> bool {
        match self.jobs.get_mut(&c.name) {
            Some(job) if *job.policy == *policy && job.expected == expected => {
                job.candidate = c.clone();
                job.read = read.clone();
                true
            }
            _ => false,
        }
    }

    /// Drops the jobs of units not in `armored`: their files no longer armor them.
    pub(super) fn keep_only(&mut self, armored: &std::collections::HashSet<&str>) {
        let gone: Vec<String> = self
            .jobs
            .keys()
            .filter(|n| !armored.contains(n.as_str()))
            .cloned()
            .collect();
        for n in gone {
            self.drop_job(&n);
        }
    }

    /// Drops the job of `name`, if any: its files say something else now.
    pub(super) fn drop_job(&mut self, name: &str) {
        if let Some(job) = self.jobs.remove(name) {
            job.dropped.store(true, Ordering::Relaxed);
        }
    }

    /// The units whose policy is being compiled.
    pub(super) fn names(&self) -> impl Iterator<Item = &String> {
        self.jobs.keys()
    }

    /// What the pass that started `name`'s compile (or a later one) said of the unit.
    pub(super) fn candidate(&self, name: &str) -> Option<&Candidate> {
        self.jobs.get(name).map(|j| &j.candidate)
    }

    /// Whether no compile of a system unit is under way. A user unit's (users.rs) holds up
    /// nothing that waits for compiles (a reload's answer, a start's sync, pending marks): its
    /// user could keep one under way without end by rewriting a file.
    pub(super) fn idle(&self) -> bool {
        self.jobs.keys().all(|n| crate::systemd::is_user_unit(n))
    }

    /// Clears the marks a pass that began at `began` read once the compiles are done.
    pub(super) fn settle_later(&mut self, began: u64) {
        self.settle = Some(self.settle.map_or(began, |b| b.max(began)));
    }

    /// Answers a sync request once the compiles under way now are done.
    pub(super) fn reply_later(&mut self, reply: oneshot::Sender<()>) {
        let names = self
            .jobs
            .keys()
            .filter(|n| !crate::systemd::is_user_unit(n))
            .cloned();
        self.replies.push((names.collect(), reply));
    }

    /// The answers whose compiles are all done.
    fn answerable(&mut self) -> Vec<oneshot::Sender<()>> {
        let jobs = &self.jobs;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.replies)
            .into_iter()
            .partition(|(names, _)| names.iter().all(|n| !jobs.contains_key(n)));
        self.replies = waiting;
        ready.into_iter().map(|(_, reply)| reply).collect()
    }

    /// Hands a compile to the worker (started at the first); false if there is no worker
    /// (it could not be started), and the caller compiles in line.
    fn start(
        &mut self,
        c: &Candidate,
        policy: &Arc<Policy>,
        expected: &str,
        pattern: String,
        differ: bool,
        read: Read,
    ) -> bool {
        if self.worker.is_none() {
            self.worker = spawn_worker(self.done.clone());
        }
        let Some(worker) = &self.worker else {
            return false;
        };
        self.next += 1;
        let dropped = Arc::new(AtomicBool::new(false));
        let work = Work {
            name: c.name.clone(),
            job: self.next,
            policy: policy.clone(),
            pattern,
            dropped: dropped.clone(),
        };
        if worker.send(work).is_err() {
            self.worker = None;
            return false;
        }
        self.drop_job(&c.name);
        self.jobs.insert(
            c.name.clone(),
            Job {
                id: self.next,
                policy: policy.clone(),
                expected: expected.to_string(),
                candidate: c.clone(),
                differ,
                dropped,
                began: Instant::now(),
                read,
            },
        );
        true
    }
}

/// How many path patterns `policy` has: what a compile's time grows with.
fn path_patterns(policy: &Policy) -> usize {
    policy
        .rules
        .iter()
        .map(|r| match &r.target {
            crate::policy::Target::Paths(p) => p.len(),
            _ => 1,
        })
        .sum()
}

/// Compiles `policy` in line (start-up, a user unit's first policy), a big one in a child
/// process all the same (apart.rs), waiting for it.
pub(super) fn compile_now(unit: &str, policy: &Policy, pattern: &str) -> Result<Tables, String> {
    let compile = || compile::compile_for(policy, Some(pattern)).map_err(|e| e.to_string());
    if path_patterns(policy) > GROUP_ABOVE {
        // Never dropped: nothing sets the flag.
        match apart_twice(unit, compile, &AtomicBool::new(false)) {
            Apart::Done(result, _) => return result,
            Apart::Died(why) => return Err(format!("{why} (twice)")),
            Apart::Dropped => return Err("the compile was dropped".into()),
            Apart::NoChild(e) => warn!(
                object_systemd_unit = unit,
                "{unit}: cannot compile in a child process ({e}); compiling in line"
            ),
        }
    }
    compile()
}

/// [`apart`], made once more if the child gave no result (something killed it, or it
/// crashed): a second failure is the caller's to turn into the policy's error.
fn apart_twice<F>(unit: &str, compile: F, dropped: &AtomicBool) -> Apart<Tables>
where
    F: Fn() -> Result<Tables, String>,
{
    match apart(&compile, dropped) {
        Apart::Died(why) => {
            warn!(
                object_systemd_unit = unit,
                "{unit}: {why}; compiling once more"
            );
            apart(&compile, dropped)
        }
        outcome => outcome,
    }
}

/// The worker: compiles what it is given in turn, skipping jobs dropped meanwhile.
fn spawn_worker(done: mpsc::UnboundedSender<Compiled>) -> Option<std::sync::mpsc::Sender<Work>> {
    let (tx, rx) = std::sync::mpsc::channel::<Work>();
    let spawned = std::thread::Builder::new()
        .name("compile".into())
        .spawn(move || {
            for w in rx {
                if w.dropped.load(Ordering::Relaxed) {
                    continue;
                }
                let began = Instant::now();
                let compile =
                    || compile::compile_for(&w.policy, Some(&w.pattern)).map_err(|e| e.to_string());
                // In a child process, whose heap goes with it (apart.rs). A compiler that
                // fails there, panics or dies fails this policy, not the worker and every
                // answer waiting for it: the unit keeps its last good policy or is refused
                // everything (reconcile.rs: install).
                // A child that gives no result twice fails the policy.
                let (result, peak) = match apart_twice(&w.name, compile, &w.dropped) {
                    Apart::Done(result, peak) => (result, Some(peak)),
                    Apart::Died(why) => (Err(format!("{why} (twice)")), Some(0)),
                    Apart::Dropped => continue,
                    Apart::NoChild(e) => {
                        warn!(
                            object_systemd_unit = w.name.as_str(),
                            "{}: cannot compile in a child process ({e}); compiling on the compile thread",
                            w.name
                        );
                        let result = std::panic::catch_unwind(compile).unwrap_or_else(|_| {
                            Err("the compiler failed (a bug: please report it)".into())
                        });
                        (result, None)
                    }
                };
                let compiled = Compiled {
                    name: w.name,
                    job: w.job,
                    result,
                    took: began.elapsed(),
                    apart: peak,
                };
                if done.send(compiled).is_err() {
                    return;
                }
            }
        });
    match spawned {
        Ok(_) => Some(tx),
        Err(e) => {
            warn!("cannot start the compile thread ({e}); big policies compile in the main loop");
            None
        }
    }
}

impl Daemon {
    /// Compiles `policy` for unit `c` on the worker if it is big, and returns true; false
    /// if the caller compiles it in line.
    pub(super) fn compile_later(
        &mut self,
        c: &Candidate,
        policy: &Arc<Policy>,
        expected: &str,
        pattern: String,
        differ: bool,
        read: Read,
    ) -> bool {
        if !self.compiling.offloads(policy)
            || !self
                .compiling
                .start(c, policy, expected, pattern, differ, read)
        {
            return false;
        }
        info!(
            object_systemd_unit = c.name.as_str(),
            "{}: compiling {} rules on the compile thread; the unit keeps what it has meanwhile",
            c.name,
            policy.rules.len()
        );
        self.status_changed();
        true
    }

    /// A compile is done: its policy is installed, unless its job was dropped meanwhile.
    pub(super) fn compiled(&mut self, done: Compiled) {
        let Some(job) = self.compiling.jobs.get(&done.name) else {
            return;
        };
        if job.id != done.job {
            return;
        }
        let Some(job) = self.compiling.jobs.remove(&done.name) else {
            return;
        };
        info!(
            object_systemd_unit = done.name.as_str(),
            "{}: compiled {} rules in {} ms ({} ms after the pass that asked for it), {}",
            done.name,
            job.policy.rules.len(),
            done.took.as_millis(),
            job.began.elapsed().as_millis(),
            match done.apart {
                Some(0) => "in a child process".into(),
                Some(kib) => format!(
                    "in a child process (at most {:.1} MiB resident)",
                    kib as f64 / 1024.0
                ),
                None => "on the compile thread".into(),
            }
        );
        let c = job.candidate;
        let new = !self.units.contains_key(&c.name);
        // Written again since it was read, or still open for writing: the pass that the
        // file's close starts installs the whole policy (first.rs).
        if new && c.user.is_none() && self.hold_first(&c, job.read.files, job.read.began) {
            self.after_compiles();
            return;
        }
        self.install(
            &c,
            job.policy,
            job.expected,
            Vec::new(),
            done.result,
            job.differ,
        );
        // As a pass does: the cgroups of a unit armored for the first time that run already.
        // Not a known unit's (its install switched them over): for a slice or template that
        // would bind units below it that have policies of their own to its policy.
        if new {
            self.bind_existing(&c);
        }
        self.after_compiles();
    }

    /// Answers the sync requests whose compiles are done, and once no compile is under way
    /// clears the pending marks that waited (a mark's unit may be any of those compiled).
    pub(super) fn after_compiles(&mut self) {
        if self.compiling.idle() {
            if let Some(began) = self.compiling.settle.take() {
                self.settle_pending(began);
            }
        }
        let ready = self.compiling.answerable();
        if !ready.is_empty() {
            self.flush_status();
            for r in ready {
                let _ = r.send(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(name: &str) -> Candidate {
        Candidate {
            name: name.to_string(),
            files: Vec::new(),
            slice: "system.slice".to_string(),
            control_group: String::new(),
            unlisted: Vec::new(),
            user: None,
        }
    }

    /// `n` rules of one path each.
    fn rules(n: usize) -> Arc<Policy> {
        let lines: Vec<String> = (0..n)
            .map(|i| format!("deny read /opt/nothing/{i}/**"))
            .collect();
        Arc::new(Policy::of(
            &lines.iter().map(String::as_str).collect::<Vec<_>>(),
        ))
    }

    const AT: &str = "/system.slice/a.service";

    fn read(began: u64) -> Read {
        Read {
            began,
            files: vec!["/etc/systemd/system/a.service.d/armor.conf".into()],
        }
    }

    #[test]
    fn big_policies_compile_on_the_worker_once_the_daemon_follows_systemd() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut c = Compiling::new(tx);
        let big = rules(GROUP_ABOVE + 1);
        assert!(!c.offloads(&big), "start-up compiles in line");
        c.enabled = true;
        assert!(!c.offloads(&rules(GROUP_ABOVE)));
        assert!(c.offloads(&big));
        let a = unit("a.service");
        assert!(c.start(&a, &big, AT, AT.to_string(), false, read(1)));
        assert!(!c.idle());
        assert!(c.under_way(&a, &big, AT, &read(2)));
        assert_eq!(
            c.jobs["a.service"].read.began, 2,
            "the same policy read again: a first policy waits for that read (first.rs)"
        );
        assert!(
            !c.under_way(&a, &rules(GROUP_ABOVE + 2), AT, &read(2)),
            "other rules"
        );
        assert!(
            !c.under_way(&a, &big, "/other.slice/a.service", &read(2)),
            "another path"
        );
        let done = rx.blocking_recv().expect("the worker answers");
        assert_eq!(done.name, "a.service");
        assert_eq!(done.job, c.jobs["a.service"].id);
        let tables = done.result.expect("it compiles");
        assert!(!tables.groups.is_empty(), "compiled by class and action");
    }

    #[test]
    fn a_new_job_for_a_unit_drops_the_one_under_way() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut c = Compiling::new(tx);
        c.enabled = true;
        let a = unit("a.service");
        assert!(c.start(&a, &rules(300), AT, AT.to_string(), false, read(1)));
        let first = c.jobs["a.service"].dropped.clone();
        assert!(c.start(&a, &rules(301), AT, AT.to_string(), false, read(1)));
        assert!(first.load(Ordering::Relaxed), "the first job is dropped");
        let second = c.jobs["a.service"].id;
        // The worker compiles the second; the first only if it began before it was dropped.
        loop {
            let done = rx.blocking_recv().expect("the worker answers");
            if done.job == second {
                break;
            }
        }
        c.keep_only(&["a.service"].into_iter().collect());
        assert!(!c.idle(), "still armored by its files");
        c.keep_only(&std::collections::HashSet::new());
        assert!(c.idle(), "no longer armored: dropped");
        assert!(!c.under_way(&a, &rules(301), AT, &read(2)));
    }

    #[test]
    fn a_user_units_compile_holds_nothing_up() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let mut c = Compiling::new(tx);
        c.enabled = true;
        let u = unit("a.service~1000");
        assert!(c.start(&u, &rules(300), AT, AT.to_string(), false, read(1)));
        assert!(c.idle(), "a user unit's compile is not waited for");
        let (reply, mut answered) = oneshot::channel();
        c.reply_later(reply);
        assert_eq!(c.answerable().len(), 1, "answered at once");
        assert!(answered.try_recv().is_err(), "(sent by the caller)");
        let a = unit("a.service");
        assert!(c.start(&a, &rules(300), AT, AT.to_string(), false, read(1)));
        assert!(!c.idle(), "a system unit's is");
    }

    #[test]
    fn an_answer_waits_for_the_compiles_under_way_when_it_was_asked() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let mut c = Compiling::new(tx);
        c.settle_later(5);
        c.settle_later(3);
        assert_eq!(c.settle, Some(5), "the latest pass's start clears the most");
        let a = unit("a.service");
        c.enabled = true;
        assert!(c.start(&a, &rules(300), AT, AT.to_string(), false, read(1)));
        let (reply, mut answered) = oneshot::channel();
        c.reply_later(reply);
        // A compile started later does not hold it back; one started over for `a` does.
        let b = unit("b.service");
        assert!(c.start(
            &b,
            &rules(300),
            "/system.slice/b.service",
            String::new(),
            false,
            read(1)
        ));
        assert!(c.start(&a, &rules(301), AT, AT.to_string(), false, read(1)));
        assert!(c.answerable().is_empty(), "a's compile is still under way");
        c.drop_job("a.service");
        let ready = c.answerable();
        assert_eq!(ready.len(), 1, "b's compile does not hold it back");
        assert!(
            answered.try_recv().is_err(),
            "answered by the caller, not here"
        );
        for r in ready {
            r.send(()).unwrap();
        }
        assert!(answered.try_recv().is_ok());
    }
}
