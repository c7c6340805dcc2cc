//! Events and floods: read the ring buffer, turn each verdict into a journal record (floods
//! aggregated), retire replaced tables and count lost events.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::sync::mpsc;
use tracing::{error, warn};

use super::cgroups::unit_of_cgroup;
use super::discover::{prefix_covers, prefix_of, template_of};
use super::Daemon;
use crate::compile::{
    self, RULE_FROM_EXEC, RULE_FULL, RULE_LIFT, RULE_NOT_ALLOWED, RULE_RECOVER, RULE_SOURCE_ROUTE,
    RULE_UNBUILDABLE,
};
use crate::journal::{self, RuleInfo};
use crate::kernel;
use crate::kernel::abi::{self, Event, Verdict};
use crate::policy::specifiers::UnitName;

/// How long replaced tables stay in the kernel, for hooks that were walking them.
const RETIRE_AFTER: Duration = Duration::from_secs(2);

/// Reads ring buffer records on a thread of its own and forwards them. When the daemon falls
/// behind, the thread waits for room in the channel rather than dropping a record: the ring
/// buffer then fills, and the kernel counts what it cannot hold against the unit that made it
/// (a record dropped here could not be attributed, and written + suppressed + lost would not
/// add up).
pub(super) fn spawn_event_reader(map: libbpf_rs::MapHandle, tx: mpsc::Sender<Event>) -> Result<()> {
    std::thread::Builder::new()
        .name("events".into())
        .spawn(move || {
            let sender = tx.clone();
            let mut builder = libbpf_rs::RingBufferBuilder::new();
            // Records this daemon cannot read: none from its own programs; logged with their
            // count (the first, then every thousandth), not dropped unsaid.
            let mut unreadable = 0u64;
            let built = builder
                .add(&map, move |data: &[u8]| {
                    let Some(ev) = Event::parse(data) else {
                        unreadable += 1;
                        if unreadable % 1000 == 1 {
                            warn!(
                                "{unreadable} event record(s) could not be read (the last of {} bytes): \
                                 the loaded programs may not be this daemon's version; their \
                                 verdicts stand, unlogged",
                                data.len()
                            );
                        }
                        return 0;
                    };
                    // An error means the daemon is stopping: stop reading.
                    if sender.blocking_send(ev).is_err() {
                        -1
                    } else {
                        0
                    }
                })
                .map(|_| ())
                .and_then(|()| builder.build());
            let rb = match built {
                Ok(rb) => rb,
                Err(e) => {
                    error!("cannot read the event ring buffer: {e}");
                    return;
                }
            };
            loop {
                if let Err(e) = rb.poll(Duration::from_millis(500)) {
                    // A signal (SIGSTOP/SIGCONT, a debugger) interrupts the wait: read on.
                    if e.kind() == libbpf_rs::ErrorKind::Interrupted {
                        continue;
                    }
                    if !tx.is_closed() {
                        error!("reading the event ring buffer failed: {e}");
                    }
                    return;
                }
                if tx.is_closed() {
                    return;
                }
            }
        })?;
    Ok(())
}

/// Gives the memory freed since the last time (compiling a policy takes far more than its
/// tables keep) back to the system: glibc keeps freed heap memory for reuse, and the
/// daemon's resident size would otherwise stay at its peak. Called every 10 s, and after each
/// pass over every unit (whose listings and parsed files are megabytes with 1,000 units).
pub(super) fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free memory at the heap's top and between its chunks.
    unsafe {
        libc::malloc_trim(0);
    }
}

impl Daemon {
    /// The unit, text and source of rule `rule` of policy `policy`.
    pub(super) fn rule_info(&self, policy: u32, rule: u32, class: u8) -> (String, String, String) {
        let Some((unit, p)) = self.owners.get(&policy) else {
            return ("-".into(), "(unknown policy)".into(), "-".into());
        };
        if let Some(p) = compile::protection_of(rule) {
            return (unit.clone(), p.reason().into(), "implicit".into());
        }
        match rule {
            RULE_UNBUILDABLE => {
                return (
                    unit.clone(),
                    "its path cannot be built (a detached or disconnected tree, or too long), so every class with rules refuses it".into(),
                    "implicit".into(),
                )
            }
            RULE_FULL => {
                return (
                    unit.clone(),
                    format!(
                        "the unit has used up its budget of {} cgroups below its own (unitarmor daemon --sub-cgroups)",
                        self.kernel.sub_cgroups()
                    ),
                    "implicit".into(),
                )
            }
            RULE_SOURCE_ROUTE => {
                return (
                    unit.clone(),
                    "it would take connections or binds past the unit's port rules".into(),
                    "implicit".into(),
                )
            }
            RULE_FROM_EXEC => {
                return (
                    unit.clone(),
                    "a program held to from= allow-lists executes only programs the same from= patterns name".into(),
                    "implicit".into(),
                )
            }
            RULE_LIFT => {
                return (
                    unit.clone(),
                    "a user unit notifies its user manager (its notify socket, which the bus protection lifts for it)".into(),
                    "implicit".into(),
                )
            }
            RULE_RECOVER => {
                return (
                    unit.clone(),
                    "renaming or linking it would change which rules cover it".into(),
                    "implicit".into(),
                )
            }
            _ => {}
        }
        if rule == RULE_NOT_ALLOWED {
            let class = abi::class_name(class);
            let sources: Vec<String> = p
                .rules
                .iter()
                .filter(|r| r.action == crate::policy::Action::Allow && r.class.as_str() == class)
                .map(|r| r.source.to_string())
                .collect();
            return (
                unit.clone(),
                format!("{class} is an allow-list and no allow rule matches"),
                sources.join(", "),
            );
        }
        match p.rules.get(rule as usize) {
            Some(r) => (unit.clone(), r.to_string(), r.source.to_string()),
            None => (unit.clone(), "(unknown rule)".into(), "-".into()),
        }
    }

    /// The rule an event of a grouped policy matched (the kernel names its group's first
    /// rule): found from the event's path; the group's first rule if none matches.
    fn resolve_rule(&mut self, ev: &Event) -> u32 {
        let Some((groups, finder)) = self.groups.get_mut(&ev.policy) else {
            return ev.rule;
        };
        if finder.is_none() {
            let owner = self.owners.get(&ev.policy);
            let built = owner.map(|o| crate::compile::RuleFinder::new(&o.1, groups));
            if let (Some(Err(e)), Some((unit, _))) = (&built, owner) {
                warn!(
                    object_systemd_unit = unit.as_str(),
                    "{unit}: cannot tell which of its grouped rules a denial matched ({e}); its records name each group's first rule"
                );
            }
            *finder = Some(built.and_then(Result::ok));
        }
        finder
            .as_mut()
            .and_then(Option::as_mut)
            .and_then(|f| f.find(ev.rule, usize::from(ev.class), &ev.raw_path))
            .unwrap_or(ev.rule)
    }

    pub(super) fn on_event(&mut self, mut ev: Event) {
        let Some(unit) = self.owners.get(&ev.policy).map(|o| o.0.clone()) else {
            return;
        };
        ev.rule = self.resolve_rule(&ev);
        if let Some(a) = self.units.get_mut(&unit) {
            match ev.verdict {
                Verdict::Denied => a.denied += 1,
                _ => a.audited += 1,
            }
        }
        let exe = if ev.exe.is_empty() { &ev.comm } else { &ev.exe };
        // Learn mode's own records are kept for `unitarmor suggest`, not journaled.
        if self.learn_event(&unit, &ev, exe) {
            return;
        }
        let subject = (ev.op, ev.path.as_str(), ev.arg);
        let key = (ev.policy, ev.rule, ev.class, ev.verdict);
        if !self.aggregator.admit(key, subject, Instant::now()) {
            return;
        }

        let (_, text, source) = self.rule_info(ev.policy, ev.rule, ev.class);
        // A slice's or template's policy covers units it does not name: say which one it was.
        // The unit of the event's cgroup, or, when that cgroup is gone already (a short-lived
        // scope or oneshot), the one the kernel named when it made the event.
        let owner = |subtree: Option<&str>| {
            unit_of_cgroup(subtree, ev.cgroup_id)
                .or_else(|| (!ev.unit.is_empty()).then(|| ev.unit.clone()))
        };
        let unit = match self.units.get(&unit) {
            Some(a) if unit.ends_with(".slice") => owner(Some(&a.expected)).unwrap_or(unit),
            // An instance may be in any slice (Slice=): any of the template's instances.
            Some(_) if UnitName::new(unit.as_str()).is_template() => owner(None)
                .filter(|u| template_of(u).as_deref() == Some(unit.as_str()))
                .unwrap_or(unit),
            // A prefix's policy (run-.scope) covers the units of that prefix.
            Some(_) if prefix_of(&unit).is_some() => owner(None)
                .filter(|u| prefix_covers(&unit, u))
                .unwrap_or(unit),
            _ => unit,
        };
        let mode = self
            .owners
            .get(&ev.policy)
            .map_or("enforce", |o| o.1.mode.as_str());
        // The process a signal or trace was aimed at was refused it, so it is most likely
        // still there, in the unit it was in (none if it has gone since).
        // (A claimed credential's pid is a number in the sender's pid namespace: not looked up.)
        let target_unit = (ev.target_pid != 0 && matches!(ev.op, abi::OP_KILL | abi::OP_PTRACE))
            .then(|| super::cgroups::unit_of_pid(ev.target_pid))
            .flatten();
        journal::record(
            &unit,
            mode,
            &ev,
            exe,
            &RuleInfo {
                text: &text,
                source: &source,
                protection: compile::protection_of(ev.rule).map(|p| p.name()),
            },
            target_unit.as_deref(),
        );
    }

    /// Repeats the kernel counted instead of sending (bpf/path.h: repeated()): counted for
    /// their unit like the events it received, and reported with the daemon's own flood
    /// summaries, so that written + suppressed + lost stays exact.
    fn read_quiet(&mut self, now: Instant) {
        for (key, total) in self.kernel.quiet_counts() {
            let before = self.quiet.insert(key, total).unwrap_or(0);
            let (policy, rule, class, verdict) = key;
            let (Some(delta), Some(verdict)) =
                (total.checked_sub(before), Verdict::from_raw(verdict))
            else {
                continue;
            };
            if delta == 0 {
                continue;
            }
            if let Some(a) = self
                .owners
                .get(&policy)
                .and_then(|o| self.units.get_mut(&o.0))
            {
                match verdict {
                    Verdict::Denied => a.denied += delta,
                    _ => a.audited += delta,
                }
            }
            // Learn mode's repeats are its own business: counted above, not summarized.
            if !self.is_learn_rule(policy, rule) {
                self.aggregator
                    .add_suppressed((policy, rule, class, verdict), delta, now);
            }
        }
        for id in std::mem::take(&mut self.quiet_gone) {
            self.kernel.forget_quiet(id);
            self.quiet.retain(|k, _| k.0 != id);
            if self.aggregator.has_policy(id) {
                self.quiet_gone.push(id); // a summary still to write names its unit
            } else if self.units.values().all(|u| u.id != id) {
                self.owners.remove(&id);
                self.groups.remove(&id);
            }
        }
    }

    /// Cgroups still bound to a removed policy (made below a cgroup while it was being
    /// rebound; the kernel refuses them everything meanwhile) move to their unit's policy:
    /// the one their tree's root is bound to, or the removed policy's unit's current one. A
    /// cgroup of neither (its unit was disarmed) is unbound, as its unit's others were. A
    /// removed id is handed out again only once no cgroup was found bound to it.
    fn sweep_dead(&mut self) {
        let live: HashSet<u32> = self
            .units
            .values()
            .map(|u| u.id)
            .chain(self.retiring.iter().map(|r| r.0))
            .chain(std::iter::once(kernel::REFUSE_ID))
            .collect();
        let bindings = self.kernel.bindings();
        let mut found = HashSet::new();
        for (cgid, b) in &bindings {
            if live.contains(&b.policy) {
                continue;
            }
            found.insert(b.policy);
            let successor = bindings
                .get(&b.root)
                .map(|r| r.policy)
                .filter(|p| live.contains(p))
                .or_else(|| {
                    let (unit, _) = self.owners.get(&b.policy)?;
                    self.units.get(unit).map(|a| a.id)
                });
            match successor {
                Some(policy) => {
                    let _ = self.kernel.bind(*cgid, kernel::Binding { policy, ..*b });
                }
                None => self.kernel.unbind(*cgid),
            }
        }
        // Looked at again next time: a cgroup made meanwhile below one of these may hold it.
        let kernel = &self.kernel;
        self.dead.retain(|id| {
            let held = found.contains(id);
            if !held {
                kernel.policy_freed(*id);
            }
            held
        });
    }

    /// Reports, once, a decision cache the kernel turned off for good (a name change counted
    /// as begun and never as ended: bpf/decided.h). Opens are then decided in full each time:
    /// slower, not weaker.
    fn check_decision_cache(&mut self) {
        if !self.kernel.decision_cache_enabled() || self.cache_off >= 2 {
            return;
        }
        if self.kernel.decision_cache_on() {
            self.cache_off = 0;
            return;
        }
        self.cache_off += 1;
        if self.cache_off == 2 {
            tracing::warn!(
                "the decision cache is off until unitarmor restarts: the kernel skipped one of \
                 the programs that count renames and unlinks; opens are decided in full (slower, \
                 not weaker)"
            );
        }
    }

    pub(super) fn on_tick(&mut self) {
        let now = Instant::now();
        self.ticks += 1;
        // Before the marks of a held unit can be cleared as stale (first.rs).
        self.retry_held();
        self.pending_tick();
        if self.ticks % 5 == 0 {
            self.save_learned();
        }
        if self.ticks % 10 == 0 {
            self.kernel.recount_trees();
            self.sweep_dead();
            release_free_memory();
            self.check_decision_cache();
        }
        self.kernel.refresh_peers(super::cgroups::peer_cgroup);
        self.read_quiet(now);
        for ((policy, rule, class, verdict), count) in self.aggregator.expire(now) {
            let (unit, mut text, mut source) = self.rule_info(policy, rule, class);
            // The kernel counts a grouped policy's repeats under the group's first rule: the
            // summary names the group, not that one rule.
            if let Some(g) = self.groups.get(&policy).and_then(|(groups, _)| {
                groups
                    .iter()
                    .find(|g| g.first == rule && g.class == usize::from(class))
            }) {
                if let Some((_, p)) = self.owners.get(&policy) {
                    text = super::metrics::group_text(g);
                    source = super::metrics::group_source(p, &g.rules);
                }
            }
            journal::suppressed(
                &unit,
                &RuleInfo {
                    text: &text,
                    source: &source,
                    protection: compile::protection_of(rule).map(|p| p.name()),
                },
                class,
                verdict,
                count,
                self.aggregator.window(),
            );
        }
        // Retired tables: gone once no hook can still be walking them.
        let (done, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.retiring)
            .into_iter()
            .partition(|r| now.duration_since(r.2) >= RETIRE_AFTER);
        self.retiring = keep;
        // A cgroup created while its parent was being re-bound can still hold a retired id:
        // it moves to its unit's current policy (or is unbound with its unit) before the
        // tables go, so it is never left with an empty policy. One pass over the bindings for
        // every id retired now: a thousand units removed at once retire together.
        let successors: HashMap<u32, Option<u32>> = done
            .iter()
            .map(|(id, _, _)| {
                let unit = self.owners.get(id).map(|(unit, _)| unit);
                (*id, unit.and_then(|u| self.units.get(u)).map(|a| a.id))
            })
            .collect();
        if !successors.is_empty() {
            for (cgid, b) in self.kernel.bindings() {
                match successors.get(&b.policy) {
                    Some(Some(new)) => {
                        let _ = self
                            .kernel
                            .bind(cgid, kernel::Binding { policy: *new, ..b });
                    }
                    Some(None) => self.kernel.unbind(cgid),
                    None => {}
                }
            }
        }
        for (id, loaded, _) in done {
            self.kernel.remove_policy(id, &loaded);
            self.tables_removed += 1;
            // Its owner is forgotten once its repeat counts and summaries are out.
            self.quiet_gone.push(id);
            self.dead.insert(id);
        }
        // Ring buffer overruns, reported once per increase and counted against the unit.
        for (cgid, (lost, policy)) in self.kernel.lost_events() {
            let before = self.lost.get(&cgid).copied().unwrap_or(0);
            if lost > before {
                let delta = lost - before;
                let unit = self
                    .owners
                    .get(&policy)
                    .map_or_else(|| format!("cgroup {cgid}"), |o| o.0.clone());
                if let Some(a) = self.units.get_mut(&unit) {
                    a.lost += delta;
                }
                warn!(
                    object_systemd_unit = unit.as_str(),
                    unitarmor_unit = unit.as_str(),
                    unitarmor_lost = delta,
                    "{unit}: {delta} events lost (the ring buffer was full, or half full and this unit \
                     past its share); they were enforced but not logged"
                );
            }
            // One lookup per counter, not a walk of every binding each second.
            if self.kernel.binding(cgid).is_some() {
                self.lost.insert(cgid, lost);
            } else {
                self.kernel.forget_counters(cgid);
                self.lost.remove(&cgid);
            }
        }
        // The status is published when asked (api.rs: `Asks`), the textfile's rows read here.
        if self.ticks % 5 == 0 {
            self.write_textfile();
        }
    }
}
