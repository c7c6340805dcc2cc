//! The event record of bpf/unitarmor.h (`struct ua_event`), read from ring buffer bytes.

/// Longest path an event carries (UA_PATH_MAX).
pub const PATH_MAX: usize = 4096;

/// `struct ua_event`, field for field.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct RawEvent {
    pub cgroup_id: u64,
    pub pid: u32,
    pub tgid: u32,
    pub uid: u32,
    pub policy: u32,
    pub rule: u32,
    pub mnt_ns: u32,
    pub pid_ns: u32,
    pub user_ns: u32,
    pub path_len: u16,
    pub class: u8,
    pub op: u8,
    pub verdict: u8,
    pub truncated: u8,
    pub exe_len: u16,
    pub target_pid: u32,
    pub arg: u32,
    pub comm: [u8; 16],
    pub exe: [u8; EXE_MAX],
    pub unit: [u8; UNIT_NAME_MAX],
    /// Only `path_len` bytes of it are in the record (EVENT_HEAD + path_len bytes).
    pub path: [u8; PATH_MAX],
}

/// Longest executable path an event carries (UA_EXE_MAX).
pub const EXE_MAX: usize = 256;
/// Longest unit cgroup name an event carries (UA_UNIT_NAME_MAX).
pub const UNIT_NAME_MAX: usize = 256;

/// The size of `struct ua_event`.
pub const EVENT_SIZE: usize = 4680;
const _: () = assert!(std::mem::size_of::<RawEvent>() == EVENT_SIZE);
/// The bytes of an event before its path (UA_EVENT_HEAD): a record is these and the path's.
pub const EVENT_HEAD: usize = std::mem::offset_of!(RawEvent, path);
const _: () = assert!(EVENT_HEAD == EVENT_SIZE - PATH_MAX);

/// What the kernel decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Denied,
    Audited,
    WouldDeny,
}

/// A decoded event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub cgroup_id: u64,
    pub pid: u32,
    pub tgid: u32,
    pub uid: u32,
    pub policy: u32,
    pub rule: u32,
    pub mnt_ns: u32,
    pub pid_ns: u32,
    pub user_ns: u32,
    pub class: u8,
    pub op: u8,
    pub verdict: Verdict,
    /// Signals and ptrace: the other process.
    pub target_pid: u32,
    /// Per operation: the signal, the bpf() command, the kernel file id.
    pub arg: u32,
    pub comm: String,
    pub path: String,
    /// The object's name as the kernel matched it, byte for byte (`path` is cut at a NUL and
    /// made valid UTF-8 for display): what the daemon matches rules against.
    pub raw_path: Vec<u8>,
    /// The executable of the process, as the kernel saw it (empty for kernel threads).
    pub exe: String,
    /// The name of the unit whose tree the process was bound under, as the kernel read it
    /// from the tree's root cgroup when the event was made (unescaped; empty if unknown).
    pub unit: String,
    pub truncated: bool,
}

/// Reads a plain-old-data value from the start of `bytes`.
pub fn read_pod<T: Copy>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < std::mem::size_of::<T>() {
        return None;
    }
    // SAFETY: the length was checked, read_unaligned needs no alignment, and T is an
    // integer-only #[repr(C)] type for which every byte pattern is valid.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

impl Verdict {
    /// The verdict of bpf/unitarmor.h's UA_VERDICT_* value.
    pub fn from_raw(v: u8) -> Option<Verdict> {
        match v {
            1 => Some(Verdict::Denied),
            2 => Some(Verdict::Audited),
            3 => Some(Verdict::WouldDeny),
            _ => None,
        }
    }
}

impl Event {
    /// A denied write of /etc/passwd by python3, for tests to change what they need.
    #[cfg(test)]
    pub fn sample() -> Event {
        Event {
            cgroup_id: 1,
            pid: 412,
            tgid: 412,
            uid: 0,
            policy: 1,
            rule: 0,
            mnt_ns: 1,
            pid_ns: 1,
            user_ns: 1,
            class: 1,
            op: 2,
            verdict: Verdict::Denied,
            comm: "python3".into(),
            path: "/etc/passwd".into(),
            raw_path: b"/etc/passwd".to_vec(),
            exe: "/usr/bin/python3".into(),
            unit: String::new(),
            truncated: false,
            target_pid: 0,
            arg: 0,
        }
    }

    /// Decodes one ring buffer record: the header and `path_len` bytes of path (a longer
    /// record, as tests make, is read as far as the path goes). None if it is shorter.
    pub fn parse(bytes: &[u8]) -> Option<Event> {
        let mut whole = [0u8; EVENT_SIZE];
        let n = bytes.len().min(EVENT_SIZE);
        whole[..n].copy_from_slice(&bytes[..n]);
        let raw: RawEvent = read_pod(&whole)?;
        let verdict = Verdict::from_raw(raw.verdict)?;
        let len = usize::from(raw.path_len).min(PATH_MAX);
        if bytes.len() < EVENT_HEAD + len {
            return None;
        }
        // Connects and binds carry the address's 16 bytes: named as text here.
        let address = (matches!(raw.class, CLASS_CONNECT | CLASS_BIND) && len == 16).then(|| {
            let mut a = [0u8; 16];
            a.copy_from_slice(&raw.path[..16]);
            let v6 = std::net::Ipv6Addr::from(a);
            match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => v6.to_string(),
            }
        });
        let raw_path = raw.path[..len].to_vec();
        // Names the kernel copied as strings (a process's comm, an xattr) end at a NUL.
        let len = raw.path[..len].iter().position(|b| *b == 0).unwrap_or(len);
        let comm_len = raw.comm.iter().position(|b| *b == 0).unwrap_or(16);
        Some(Event {
            cgroup_id: raw.cgroup_id,
            pid: raw.pid,
            tgid: raw.tgid,
            uid: raw.uid,
            policy: raw.policy,
            rule: raw.rule,
            mnt_ns: raw.mnt_ns,
            pid_ns: raw.pid_ns,
            user_ns: raw.user_ns,
            class: raw.class,
            op: raw.op,
            verdict,
            target_pid: raw.target_pid,
            arg: raw.arg,
            comm: String::from_utf8_lossy(&raw.comm[..comm_len]).into_owned(),
            path: address.unwrap_or_else(|| String::from_utf8_lossy(&raw.path[..len]).into_owned()),
            raw_path,
            exe: String::from_utf8_lossy(&raw.exe[..usize::from(raw.exe_len).min(EXE_MAX)])
                .into_owned(),
            // A name that fills the buffer (the kernel ends it with a NUL) may have been cut:
            // unknown.
            unit: match raw.unit.iter().position(|b| *b == 0) {
                Some(n) if n < UNIT_NAME_MAX - 1 => {
                    crate::systemd::cg_unescape(&String::from_utf8_lossy(&raw.unit[..n]))
                        .to_string()
                }
                _ => String::new(),
            },
            truncated: raw.truncated != 0,
        })
    }
}

/// Entries of the kernel's per-rule decision counters (UA_HITS_MAX).
pub const HITS_MAX: usize = 16384;

/// Classes (`enum ua_class`) whose events carry an address.
pub const CLASS_CONNECT: u8 = 7;
pub const CLASS_BIND: u8 = 8;
/// The class of socket creation (`net` rules).
pub const CLASS_NET: u8 = 6;
/// Operations (`enum ua_op`) whose events name another process (`target_pid`): a signal, a
/// trace.
pub const OP_KILL: u8 = 25;
pub const OP_PTRACE: u8 = 26;

/// The cgroup-write operation's arg for a write in a cgroup v1 hierarchy (`UA_CGROUP_V1`).
pub const CGROUP_V1: u32 = 1;

/// The fanotify operation's arg for `fanotify_init()` itself (`UA_FANOTIFY_INIT`), not a mark.
pub const FANOTIFY_INIT: u32 = 0x200;

/// An event's protocol and port (connect and bind: `UA_NET_ARG`).
pub fn proto_port(arg: u32) -> (&'static str, u16) {
    let proto = if (arg >> 16) & 0xff == 17 {
        "udp"
    } else {
        "tcp"
    };
    (proto, arg as u16)
}

/// The family and type names of a socket event's argument (`family | type << 16`).
pub fn socket_kind(arg: u32) -> (String, &'static str) {
    let nr = arg & 0xffff;
    let family = crate::policy::net::FAMILIES
        .iter()
        .find(|(_, n)| u32::from(*n) == nr)
        .map(|(n, _)| n.to_string())
        .unwrap_or_else(|| format!("family {nr}"));
    let ty = match arg >> 16 {
        1 => "stream",
        2 => "datagram",
        3 => "raw",
        5 => "seqpacket",
        _ => "other",
    };
    (family, ty)
}

/// The name of a netlink protocol (`NETLINK_*`), as a netlink-admin event's argument gives it.
pub fn netlink_protocol_name(proto: u32) -> String {
    match proto {
        0 => "route".to_string(),
        6 => "xfrm".to_string(),
        8 => "iSCSI".to_string(),
        9 => "audit".to_string(),
        11 => "connector".to_string(),
        15 => "kobject-uevent".to_string(),
        16 => "generic".to_string(),
        18 => "SCSI transport".to_string(),
        20 => "RDMA".to_string(),
        n => format!("protocol {n}"),
    }
}

/// The name of an operation (`enum ua_op`).
pub fn op_name(op: u8) -> &'static str {
    match op {
        1 | 2 => "open",
        3 => "create",
        4 => "mkdir",
        5 => "rmdir",
        6 => "unlink",
        7 => "rename",
        8 => "rename to",
        9 => "link",
        10 => "link to",
        11 => "symlink",
        12 => "truncate",
        13 => "chmod",
        14 => "chown",
        15 => "exec",
        16 => "mmap-exec",
        17 => "connect",
        18 => "bpf",
        19 => "mount",
        20 => "umount",
        21 => "move-mount",
        22 => "pivot-root",
        23 => "userns",
        24 => "load-kernel-code",
        25 => "kill",
        26 => "ptrace",
        27 => "cgroup-write",
        28 => "setxattr",
        29 => "removexattr",
        30 => "setflags",
        31 => "open-raw-device",
        32 => "set-priority",
        33 => "set-limits",
        34 => "claim-pid",
        35 => "mount-api",
        36 => "sendmmsg",
        37 => "utimes",
        38 => "subvolume",
        39 => "btrfs-raw",
        40 => "capable",
        41 => "socket",
        42 => "connect",
        43 => "bind",
        44 => "source-route",
        45 => "set-owner",
        46 => "set-exe",
        47 => "netlink-admin",
        48 => "netlink-multicast",
        49 => "join-namespace",
        50 => "fanotify",
        51 => "swap",
        52 => "port-io",
        53 => "reboot",
        54 => "perf-event",
        55 => "tty-input",
        56 => "freeze",
        57 => "lease",
        58 => "tty-hangup",
        _ => "operation",
    }
}

/// The class name of `enum ua_class`.
pub fn class_name(class: u8) -> &'static str {
    match class {
        0 => "read",
        1 => "write",
        2 => "exec",
        3 => "connect",
        4 => "protect",
        5 => "cap",
        6 => "net",
        7 => "connect",
        8 => "bind",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_record() {
        let mut raw: RawEvent = read_pod(&[0u8; EVENT_SIZE]).unwrap();
        raw.cgroup_id = 77;
        raw.pid = 5;
        raw.verdict = 1;
        raw.op = 2;
        raw.path_len = 11;
        raw.path[..11].copy_from_slice(b"/etc/shadow");
        raw.comm[..3].copy_from_slice(b"cat");
        raw.exe_len = 12;
        raw.exe[..12].copy_from_slice(b"/usr/bin/cat");
        raw.unit[..11].copy_from_slice(b"_io.service");
        let bytes = unsafe {
            std::slice::from_raw_parts((&raw as *const RawEvent).cast::<u8>(), EVENT_SIZE)
        };
        let e = Event::parse(bytes).unwrap();
        assert_eq!(
            (e.cgroup_id, e.pid, e.path.as_str(), e.comm.as_str()),
            (77, 5, "/etc/shadow", "cat")
        );
        assert_eq!(e.verdict, Verdict::Denied);
        assert_eq!(e.exe, "/usr/bin/cat");
        assert_eq!(e.unit, "io.service");
        assert!(Event::parse(&bytes[..100]).is_none());
        // As the kernel sends it: the header and the path's own bytes.
        assert_eq!(Event::parse(&bytes[..EVENT_HEAD + 11]), Some(e));
        assert!(Event::parse(&bytes[..EVENT_HEAD + 10]).is_none());
        assert!(Event::parse(&bytes[..EVENT_HEAD]).is_none());
    }

    #[test]
    fn connect_events_name_their_address() {
        let mut raw: RawEvent = read_pod(&[0u8; EVENT_SIZE]).unwrap();
        raw.verdict = 1;
        raw.class = CLASS_CONNECT;
        raw.op = 42;
        raw.arg = 25 | 6 << 16;
        raw.path_len = 16;
        raw.path[..16].copy_from_slice(
            &std::net::Ipv4Addr::new(10, 0, 0, 1)
                .to_ipv6_mapped()
                .octets(),
        );
        let bytes = unsafe {
            std::slice::from_raw_parts((&raw as *const RawEvent).cast::<u8>(), EVENT_SIZE)
        };
        let e = Event::parse(bytes).unwrap();
        assert_eq!(e.path, "10.0.0.1");
        assert_eq!(proto_port(e.arg), ("tcp", 25));
        raw.class = CLASS_BIND;
        raw.path[..16].copy_from_slice(&[0; 16]);
        raw.arg = 53 | 17 << 16;
        let bytes = unsafe {
            std::slice::from_raw_parts((&raw as *const RawEvent).cast::<u8>(), EVENT_SIZE)
        };
        let e = Event::parse(bytes).unwrap();
        assert_eq!((e.path.as_str(), proto_port(e.arg)), ("::", ("udp", 53)));
        assert_eq!(socket_kind(17 | 3 << 16), ("packet".to_string(), "raw"));
    }
}
