//! Everything unitarmor writes to the journal: its own log (through tracing-journald when the
//! journal is there, stderr otherwise) and one structured record per deny or audit verdict,
//! attributed to the armored unit with `OBJECT_SYSTEMD_UNIT=` so that `journalctl -u UNIT`
//! shows it. Floods are aggregated per unit and rule: the first few events of a window, and the
//! first of each path in it, are logged in full; the rest are counted and reported in a
//! summary record.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash, RandomState};
use std::time::{Duration, Instant};

use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

use crate::kernel::abi::{self, Event, Verdict};

/// MESSAGE_ID of a denial (see units/unitarmor.catalog).
pub const MESSAGE_ID_DENIED: &str = "63870318b8114d0f9b311f80e77ce97a";
/// A journalctl match for the daemon's own records: a field journald sets itself, where any
/// root process can send records with the fields and message ids above.
pub const DAEMON_RECORDS: &str = "_SYSTEMD_UNIT=unitarmor.service";
/// MESSAGE_ID of an audit record (an audit rule matched, or a would-be denial in audit mode).
pub const MESSAGE_ID_AUDIT: &str = "d731450c3e614fee9bf1acfa24f9d102";
/// MESSAGE_ID of a summary of suppressed records.
pub const MESSAGE_ID_SUPPRESSED: &str = "f7268ce9a591428d92a084ca78847c90";

/// Sets up logging: the journal when `prefer_journal` and it is reachable, stderr otherwise.
pub fn init(prefer_journal: bool) {
    let filter =
        EnvFilter::try_from_env("UNITARMOR_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let journald = if prefer_journal {
        tracing_journald::layer().ok()
    } else {
        None
    };
    match journald {
        Some(layer) => {
            let layer = layer
                .with_field_prefix(None)
                .with_syslog_identifier("unitarmor".into());
            tracing_subscriber::registry()
                .with(filter)
                .with(layer)
                .init();
        }
        None => {
            let fmt = tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .without_time()
                .with_target(false);
            tracing_subscriber::registry().with(filter).with(fmt).init();
        }
    }
}

/// What the daemon knows about the rule behind an event.
pub struct RuleInfo<'a> {
    /// `deny write /etc/` (or a description of the allow-list).
    pub text: &'a str,
    /// `file:line`.
    pub source: &'a str,
    /// The implicit protection that decided, if one did (its name).
    pub protection: Option<&'a str>,
}

/// What an event's operation did to what, in words: `write of /etc/passwd`,
/// `signal 15 to sshd (pid 412)`.
fn object(ev: &Event) -> String {
    let op = match ev.op {
        1 => "read",
        2 => "write",
        op => abi::op_name(op),
    };
    match ev.op {
        abi::OP_KILL => format!("signal {} to {} (pid {})", ev.arg, ev.path, ev.target_pid),
        abi::OP_PTRACE => format!("ptrace of {} (pid {})", ev.path, ev.target_pid),
        18 => format!("bpf() command {}", ev.arg),
        33 => "setting another process's resource limits".to_string(),
        34 if ev.arg == u32::MAX => "a message whose control data cannot be read".to_string(),
        34 => format!("a message claiming to come from pid {}", ev.target_pid),
        35 => format!("{}()", mount_api_call(ev.arg)),
        36 => "sendmmsg() to an address (its later messages would not be checked)".to_string(),
        46 => "naming another file the process's executable (prctl PR_SET_MM)".to_string(),
        48 => format!(
            "a {} netlink message to multicast group {} (listeners take it for the kernel's or udevd's)",
            abi::netlink_protocol_name(ev.arg & 0xffff),
            ev.arg >> 16
        ),
        47 => format!(
            "CAP_SYS_ADMIN for a {} netlink message (a disk or a uevent handed to the kernel)",
            abi::netlink_protocol_name(ev.arg)
        ),
        23 => "creating a user namespace".to_string(),
        49 => match ev.arg {
            0 => "joining another namespace (setns)".to_string(),
            12 => "a descriptor for the previous mount namespace (nsfs ioctl)".to_string(),
            _ => "a descriptor for the next mount namespace (nsfs ioctl)".to_string(),
        },
        50 if ev.arg == abi::FANOTIFY_INIT => {
            "a privileged fanotify group (descriptors for files other processes open)".to_string()
        }
        27 if ev.arg == abi::CGROUP_V1 => {
            format!("a write in a cgroup v1 hierarchy (to {})", ev.path)
        }
        51 => "swapon or swapoff".to_string(),
        52 => "port I/O (iopl or ioperm)".to_string(),
        53 => "reboot or kexec (CAP_SYS_BOOT)".to_string(),
        54 => match ev.arg {
            1 => "a perf event of a whole CPU".to_string(),
            2 => "a perf event that includes the kernel".to_string(),
            _ => "a perf event with raw tracepoint data".to_string(),
        },
        55 => format!("putting input into the terminal {}", ev.path),
        56 => format!("freezing or shutting down the file system of {}", ev.path),
        57 => format!(
            "a lease on {} (it holds other processes' opens of the file)",
            ev.path
        ),
        58 if ev.path.is_empty() => "hanging up its terminal (vhangup)".to_string(),
        58 => format!(
            "hanging up the terminal {}, or taking it from its session",
            ev.path
        ),
        50 => {
            let what = match ev.arg & 0xff {
                0 => "a file or directory",
                1 => "the whole mount",
                2 => "the whole file system",
                _ => "a mount namespace",
            };
            let perm = match ev.arg & 0x100 {
                0 => "",
                _ => " with permission events",
            };
            format!("a fanotify mark{perm} on {what} at {}", ev.path)
        }
        40 => format!("use of {}", capability_name(ev.arg)),
        41 => {
            let (family, ty) = abi::socket_kind(ev.arg);
            format!("creating a {family} {ty} socket")
        }
        44 => match (ev.arg >> 16, ev.arg & 0xffff) {
            (0, 51) => "setting the socket's own ephemeral port range".to_string(),
            (0, _) => "setting IP options (source routing)".to_string(),
            _ => "setting an IPv6 routing header".to_string(),
        },
        45 => match ev.arg {
            8 if ev.target_pid != 0 => {
                format!(
                    "making pid {} the signal owner of a file (F_SETOWN)",
                    ev.target_pid
                )
            }
            8 => "making a process group the signal owner of a file (F_SETOWN)".to_string(),
            15 => "setting a file's signal owner (F_SETOWN_EX)".to_string(),
            _ => "setting a socket's signal owner (ioctl)".to_string(),
        },
        42 | 43 => {
            let (proto, port) = abi::proto_port(ev.arg);
            let to = if ev.op == 42 { "connect to" } else { "bind of" };
            match ev.path.contains(':') {
                true => format!("{to} {proto} [{}]:{port}", ev.path),
                false => format!("{to} {proto} {}:{port}", ev.path),
            }
        }
        _ if ev.path.is_empty() => op.to_string(),
        _ => format!("{op} of {}", ev.path),
    }
}

/// `CAP_SYS_ADMIN` for 21.
fn capability_name(cap: u32) -> String {
    match crate::policy::caps::NAMES.get(cap as usize) {
        Some(name) => format!("CAP_{}", name.to_ascii_uppercase()),
        None => format!("capability {cap}"),
    }
}

/// The mount-API system call an event's argument numbers (bpf/protect.h).
fn mount_api_call(nr: u32) -> &'static str {
    match nr {
        428 => "open_tree",
        430 => "fsopen",
        432 => "fsmount",
        433 => "fspick",
        442 => "mount_setattr",
        467 => "open_tree_attr",
        _ => "a mount system call",
    }
}

/// The human line of a record, e.g.
/// `Denied write to /etc/passwd by /usr/bin/python3 (pid 412): rule "deny write /etc/" from /etc/...:3`.
pub fn message(ev: &Event, exe: &str, rule: &RuleInfo<'_>) -> String {
    let what = match ev.verdict {
        Verdict::Denied => "Denied",
        Verdict::Audited => "Audited",
        Verdict::WouldDeny => "Would deny",
    };
    let trunc = if ev.truncated {
        " (path cannot be built)"
    } else {
        ""
    };
    let why = match rule.protection {
        Some(name) => format!(
            "protection \"{name}\": {} (lift with ArmorExempt={name})",
            rule.text
        ),
        None => format!("rule \"{}\" from {}", rule.text, rule.source),
    };
    format!(
        "{what} {}{trunc} by {exe} (pid {}): {why}",
        object(ev),
        ev.tgid
    )
}

/// Writes one verdict record. `target_unit`: the unit of the process a signal, trace or
/// claimed credential named (`ev.target_pid`), if it is in one.
pub fn record(
    unit: &str,
    mode: &str,
    ev: &Event,
    exe: &str,
    rule: &RuleInfo<'_>,
    target_unit: Option<&str>,
) {
    let msg = message(ev, exe, rule);
    let action = action_name(ev.verdict);
    // Network events name an address, port and protocol, or a family, instead of a path.
    let inet =
        matches!(ev.class, abi::CLASS_CONNECT | abi::CLASS_BIND).then(|| abi::proto_port(ev.arg));
    let family = (ev.class == abi::CLASS_NET).then(|| abi::socket_kind(ev.arg));
    let net = inet.is_some() || family.is_some();
    let (system_unit, user_unit, user_uid) = crate::systemd::journal_unit(unit);
    macro_rules! emit {
        ($level:ident, $id:expr) => {
            tracing::$level!(
                message_id = $id,
                object_systemd_unit = system_unit.as_ref(),
                object_systemd_user_unit = user_unit,
                object_uid = user_uid,
                object_pid = ev.tgid,
                unitarmor_unit = unit,
                unitarmor_action = action,
                unitarmor_class = abi::class_name(ev.class),
                unitarmor_operation = abi::op_name(ev.op),
                unitarmor_path = (!net).then_some(ev.path.as_str()),
                unitarmor_address = inet.map(|_| ev.path.as_str()),
                unitarmor_protocol = inet.map(|(proto, _)| proto),
                unitarmor_port = inet.map(|(_, port)| port),
                unitarmor_family = family.as_ref().map(|(f, _)| f.as_str()),
                unitarmor_socket_type = family.as_ref().map(|(_, t)| *t),
                unitarmor_capability = (ev.op == 40).then(|| capability_name(ev.arg)),
                unitarmor_rule = rule.text,
                unitarmor_rule_source = rule.source,
                unitarmor_protection = rule.protection,
                unitarmor_mode = mode,
                unitarmor_pid = ev.tgid,
                unitarmor_tid = ev.pid,
                // Signals, ptrace, claimed credentials: the other process.
                unitarmor_target_pid = (ev.target_pid != 0).then_some(ev.target_pid),
                unitarmor_target_unit = target_unit,
                unitarmor_comm = ev.comm.as_str(),
                unitarmor_exe = exe,
                unitarmor_uid = ev.uid,
                unitarmor_cgroup_id = ev.cgroup_id,
                unitarmor_mnt_ns = ev.mnt_ns,
                unitarmor_pid_ns = ev.pid_ns,
                unitarmor_user_ns = ev.user_ns,
                "{msg}"
            )
        };
    }
    match ev.verdict {
        Verdict::Denied => emit!(warn, MESSAGE_ID_DENIED),
        _ => emit!(info, MESSAGE_ID_AUDIT),
    }
}

/// The `UNITARMOR_ACTION=` of a verdict.
pub fn action_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Denied => "deny",
        Verdict::Audited => "audit",
        Verdict::WouldDeny => "would-deny",
    }
}

/// Writes a summary of records suppressed for one unit and rule, in one class (`enum
/// ua_class`) with one verdict: the same `UNITARMOR_CLASS=` and `UNITARMOR_ACTION=` as the
/// records it counts, so that `check --against-journal` can attribute its count to them.
pub fn suppressed(
    unit: &str,
    rule: &RuleInfo<'_>,
    class: u8,
    verdict: Verdict,
    count: u64,
    window: Duration,
) {
    let what = match verdict {
        Verdict::Denied => "denials",
        _ => "audit records",
    };
    let (system_unit, user_unit, user_uid) = crate::systemd::journal_unit(unit);
    tracing::warn!(
        message_id = MESSAGE_ID_SUPPRESSED,
        object_systemd_unit = system_unit.as_ref(),
        object_systemd_user_unit = user_unit,
        object_uid = user_uid,
        unitarmor_unit = unit,
        unitarmor_rule = rule.text,
        unitarmor_rule_source = rule.source,
        unitarmor_suppressed = count,
        unitarmor_class = abi::class_name(class),
        unitarmor_action = action_name(verdict),
        unitarmor_window = window.as_secs(),
        "Suppressed {count} more {what} by rule \"{}\" from {} in the last {}s",
        rule.text,
        rule.source,
        window.as_secs()
    );
}

/// Flood control: per (policy, rule, class, verdict), the first `burst` records of each window are
/// written, the rest counted, except that the first record of each subject (operation and path)
/// not yet written in the window is always written: decoys cannot hide the one denial that
/// matters. Counts are exact (written + suppressed = admitted); nothing is dropped without a
/// count.
#[derive(Debug)]
pub struct Aggregator {
    burst: u64,
    window: Duration,
    slots: HashMap<FloodKey, Slot>,
    /// Keys the subjects' hashes (random per daemon, so paths cannot be made to collide).
    hasher: RandomState,
}

/// What floods are counted by: policy id (one per unit and version of its policy), rule
/// index, path class, verdict.
pub type FloodKey = (u32, u32, u8, Verdict);

#[derive(Debug)]
struct Slot {
    started: Instant,
    written: u64,
    suppressed: u64,
    /// Hashes of the subjects written in this window (8 bytes each, however long the path).
    seen: HashSet<u64>,
}

impl Aggregator {
    pub fn new(burst: u64, window: Duration) -> Self {
        Aggregator {
            burst,
            window,
            slots: HashMap::new(),
            hasher: RandomState::new(),
        }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// Whether to write this event now (otherwise it was counted). `subject` is what the event
    /// was about, e.g. (operation, path, argument): one not written yet in this window is
    /// always written.
    pub fn admit(&mut self, key: FloodKey, subject: impl Hash, now: Instant) -> bool {
        let hash = self.hasher.hash_one(subject);
        let slot = self.slots.entry(key).or_insert(Slot {
            started: now,
            written: 0,
            suppressed: 0,
            seen: HashSet::new(),
        });
        // Always remembered, so a new subject is written once however many came first.
        let new = slot.seen.insert(hash);
        if slot.written < self.burst || new {
            slot.written += 1;
            true
        } else {
            slot.suppressed += 1;
            false
        }
    }

    /// Counts `count` events of `key` that the kernel did not send, as repeats of one written
    /// in its own window: they are reported with this window's suppressed records.
    pub fn add_suppressed(&mut self, key: FloodKey, count: u64, now: Instant) {
        self.slots
            .entry(key)
            .or_insert(Slot {
                started: now,
                written: 0,
                suppressed: 0,
                seen: HashSet::new(),
            })
            .suppressed += count;
    }

    /// Whether a window of policy `policy` is still open.
    pub fn has_policy(&self, policy: u32) -> bool {
        self.slots.keys().any(|k| k.0 == policy)
    }

    /// Closes the windows that are over and returns what they suppressed.
    pub fn expire(&mut self, now: Instant) -> Vec<(FloodKey, u64)> {
        let mut out = Vec::new();
        self.slots.retain(|key, slot| {
            if now.duration_since(slot.started) < self.window {
                return true;
            }
            if slot.suppressed > 0 {
                out.push((*key, slot.suppressed));
            }
            false
        });
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_reads_well() {
        let rule = RuleInfo {
            protection: None,
            text: "deny write /etc/",
            source: "/etc/systemd/system/app.service.d/armor.conf:3",
        };
        assert_eq!(
            message(&Event::sample(), "/usr/bin/python3", &rule),
            "Denied write of /etc/passwd by /usr/bin/python3 (pid 412): rule \"deny write /etc/\" from \
             /etc/systemd/system/app.service.d/armor.conf:3"
        );
    }

    #[test]
    fn names_a_cgroup_v1_write() {
        let ev = Event {
            op: 27,
            arg: abi::CGROUP_V1,
            path: "release_agent".into(),
            ..Event::sample()
        };
        assert_eq!(
            object(&ev),
            "a write in a cgroup v1 hierarchy (to release_agent)"
        );
        let v2 = Event { arg: 0, ..ev };
        assert_eq!(object(&v2), "cgroup-write of release_agent");
    }

    #[test]
    fn aggregates_with_exact_counts() {
        let mut a = Aggregator::new(3, Duration::from_secs(10));
        let t0 = Instant::now();
        let key = |policy, rule| (policy, rule, 0, Verdict::Denied);
        let written = (0..100_000)
            .filter(|_| a.admit(key(1, 0), "/x", t0))
            .count();
        assert_eq!(written, 3);
        assert!(
            a.admit(key(1, 1), "/x", t0),
            "another rule has its own window"
        );
        assert!(
            a.admit(key(2, 0), "/x", t0),
            "another unit has its own window"
        );
        assert!(a.expire(t0 + Duration::from_secs(5)).is_empty());
        let summary = a.expire(t0 + Duration::from_secs(10));
        assert_eq!(summary, vec![(key(1, 0), 99_997)]);
        assert!(a.admit(key(1, 0), "/x", t0 + Duration::from_secs(11)));
    }

    #[test]
    fn decoys_cannot_hide_a_new_path() {
        let mut a = Aggregator::new(5, Duration::from_secs(10));
        let t0 = Instant::now();
        let key = (1, 0, 0, Verdict::Denied);
        let mut written = 0;
        let mut admitted = 0;
        for round in 0..1000 {
            for decoy in 0..5 {
                admitted += 1;
                written += u64::from(a.admit(key, (1u8, format!("/decoy{decoy}")), t0));
            }
            if round == 500 {
                admitted += 1;
                assert!(a.admit(key, (1u8, "/etc/shadow"), t0), "the distinct path");
                written += 1;
                admitted += 1;
                assert!(!a.admit(key, (1u8, "/etc/shadow"), t0), "written once");
            }
        }
        // Another operation on the same path is news too.
        admitted += 1;
        assert!(a.admit(key, (2u8, "/decoy0"), t0));
        written += 1;
        let suppressed: u64 = a
            .expire(t0 + Duration::from_secs(10))
            .iter()
            .map(|(_, n)| n)
            .sum();
        assert_eq!(written, 7);
        assert_eq!(written + suppressed, admitted);
    }

    #[test]
    fn kernel_repeats_join_the_window() {
        let mut a = Aggregator::new(5, Duration::from_secs(10));
        let t0 = Instant::now();
        let key = (7, 2, 0, Verdict::Audited);
        assert!(!a.has_policy(7));
        assert!(a.admit(key, "/srv/www/index.html", t0));
        a.add_suppressed(key, 41_999, t0 + Duration::from_secs(1));
        a.add_suppressed((8, 0, 0, Verdict::Denied), 3, t0 + Duration::from_secs(4));
        assert!(a.has_policy(7) && a.has_policy(8));
        assert_eq!(
            a.expire(t0 + Duration::from_secs(10)),
            vec![(key, 41_999)],
            "counted in the window its first record opened"
        );
        assert!(!a.has_policy(7));
        assert_eq!(
            a.expire(t0 + Duration::from_secs(14)),
            vec![((8, 0, 0, Verdict::Denied), 3)],
            "counts with no record of their own open a window"
        );
    }
}
