/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Types and limits shared by the BPF programs and the daemon (src/kernel/ mirrors them with
 * #[repr(C)] and a layout test). Changing anything here changes the map layouts: keep
 * docs/DESIGN.md and src/kernel/abi.rs in step.
 */
#ifndef UNITARMOR_H
#define UNITARMOR_H

/* Length of a cgroup path key in the `expected` map, NUL padding included. */
#define UA_CGROUP_PATH_MAX 256
/* Largest path the programs build and match; longer paths match as if cut here. */
#define UA_PATH_MAX 4096
/* Longest executable path an event carries (its tail, if longer). */
#define UA_EXE_MAX 256
#define UA_UNIT_NAME_MAX 256
/* Deepest path (components plus mount crossings) the programs walk. */
#define UA_PATH_DEPTH 64
/* Policy ids are 1..UA_MAX_POLICIES-1; 0 in a binding means "not armored" (slot 0 of
 * `policies` holds the implicit protections' shared table, walk.h). */
#define UA_MAX_POLICIES 1024

/* Classes decided by the policy's DFA; bit n of a class mask is class n. UA_CLASS_UNIX is
 * `connect unix:` (the name of the socket connected to). UA_CLASS_PROTECT marks events of the
 * implicit protections the kernel checks by identity, not by path. */
enum ua_class {
	UA_CLASS_READ = 0,
	UA_CLASS_WRITE = 1,
	UA_CLASS_EXEC = 2,
	UA_CLASS_UNIX = 3,
	UA_NR_CLASSES = 4,
	UA_CLASS_PROTECT = 4,
	UA_CLASS_CAP = 5,    /* `cap` rules: decided per capability, not by the DFA */
	UA_CLASS_NET = 6,    /* `net` rules: socket creation, decided per address family */
	UA_CLASS_CONNECT = 7,/* `connect tcp:/udp:` rules: decided by the port rules */
	UA_CLASS_BIND = 8,   /* `bind` rules */
};

/* Implicit protections (src/policy/protect.rs): bit n of ua_policy.protect is protection n,
 * and a denial by protection n carries rule UA_RULE_PROTECT + n. */
enum ua_protection {
	UA_PROT_UNIT_FILES = 0,
	UA_PROT_KERNEL_SETTINGS = 1,
	UA_PROT_RUNS_AS_ROOT = 2,
	UA_PROT_CGROUPS = 3,
	UA_PROT_BUS = 4,
	UA_PROT_BPF = 5,
	UA_PROT_MOUNT = 6,
	UA_PROT_USERNS = 7,
	UA_PROT_MODULES = 8,
	UA_PROT_SIGNAL = 9,
	UA_PROT_PTRACE = 10,
	UA_PROT_XATTR = 11,
	UA_PROT_FANOTIFY = 12,
};
#define UA_PROT_ALL 0x1fff /* every protection above */

/* The operation a process attempted, reported in events. */
enum ua_op {
	UA_OP_OPEN_READ = 1,
	UA_OP_OPEN_WRITE = 2,
	UA_OP_CREATE = 3,
	UA_OP_MKDIR = 4,
	UA_OP_RMDIR = 5,
	UA_OP_UNLINK = 6,
	UA_OP_RENAME_FROM = 7,
	UA_OP_RENAME_TO = 8,
	UA_OP_LINK_FROM = 9,
	UA_OP_LINK_TO = 10,
	UA_OP_SYMLINK = 11,
	UA_OP_TRUNCATE = 12,
	UA_OP_CHMOD = 13,
	UA_OP_CHOWN = 14,
	UA_OP_EXEC = 15,
	UA_OP_MMAP_EXEC = 16,   /* mmap or mprotect with PROT_EXEC */
	UA_OP_CONNECT = 17,     /* unix socket connect or send */
	UA_OP_BPF = 18,         /* bpf(); arg: the command */
	UA_OP_MOUNT = 19,
	UA_OP_UMOUNT = 20,
	UA_OP_MOVE_MOUNT = 21,
	UA_OP_PIVOT_ROOT = 22,
	UA_OP_USERNS = 23,
	UA_OP_MODULE = 24,      /* arg: kernel_read_file/load_data id, or 0 for a request */
	UA_OP_KILL = 25,        /* arg: the signal; target_pid */
	UA_OP_PTRACE = 26,      /* arg: the ptrace mode; target_pid */
	UA_OP_CGROUP_WRITE = 27,/* a write to a cgroup file or directory of another unit; arg
				 * UA_CGROUP_V1: any in a cgroup v1 hierarchy */
	UA_OP_SETXATTR = 28,
	UA_OP_REMOVEXATTR = 29,
	UA_OP_SETFLAGS = 30,    /* FS_IOC_SETFLAGS / FS_IOC_FSSETXATTR */
	UA_OP_OPEN_DEVICE = 31, /* opening a block device, /dev/mem, a SCSI, NVMe or bsg passthrough device */
	UA_OP_SCHED = 32,       /* priority, scheduling or I/O priority of another process */
	UA_OP_PRLIMIT = 33,     /* setting another process's resource limits */
	UA_OP_CLAIM_PID = 34,   /* SCM_CREDENTIALS naming another process; target_pid, arg: uid */
	UA_OP_MOUNT_API = 35,   /* mount_setattr, fspick, fsopen, fsmount, open_tree; arg: syscall nr */
	UA_OP_SENDMMSG = 36,    /* sendmmsg with an address on a unix or netlink socket; arg: nr */
	UA_OP_UTIMES = 37,      /* setting a file's access or modification time */
	UA_OP_SUBVOLUME = 38,   /* btrfs: snapshot, create or delete a subvolume */
	UA_OP_BTRFS_RAW = 39,   /* btrfs: tree search, send, adding, removing or replacing a device */
	UA_OP_CAPABLE = 40,     /* using a capability; arg: its number */
	UA_OP_SOCKET = 41,      /* creating a socket; arg: family | type << 16 */
	UA_OP_INET_CONNECT = 42,/* connect, or a datagram sent to an address; arg: see UA_NET_ARG */
	UA_OP_INET_BIND = 43,   /* bind, or listen on a socket with no port yet */
	UA_OP_SOURCE_ROUTE = 44,/* setting IP options or an IPv6 routing header; arg: level << 16 | name */
	UA_OP_SET_OWNER = 45,   /* F_SETOWN and the like: who a file's I/O signals; arg: the command */
	UA_OP_SET_EXE = 46,     /* prctl(PR_SET_MM) naming a new executable; arg: its sub-command */
	UA_OP_NETLINK_ADMIN = 47,/* CAP_SYS_ADMIN asked by a netlink message's handler; arg: the protocol */
	UA_OP_NETLINK_MULTICAST = 48,/* a netlink message to a multicast group; arg: protocol | group << 16 */
	UA_OP_NS_JOIN = 49,     /* another namespace: setns (arg 0), nsfs NS_MNT_GET_NEXT or _PREV (arg: its nr) */
	UA_OP_FANOTIFY = 50,    /* a fanotify mark; arg: the object type (1 mount, 2 file system...) | 0x100 for
				 * permission events; or UA_FANOTIFY_INIT: a privileged fanotify group */
	UA_OP_SWAP = 51,        /* swapon or swapoff; arg: the system call's number */
	UA_OP_PORT_IO = 52,     /* iopl or ioperm; arg: the system call's number */
	UA_OP_REBOOT = 53,      /* reboot or kexec_load (CAP_SYS_BOOT) */
	UA_OP_PERF = 54,        /* a perf event of a whole CPU, the kernel or raw tracepoints; arg: the check's type */
	UA_OP_TTY_INPUT = 55,   /* TIOCSTI or TIOCLINUX on a terminal */
	UA_OP_FREEZE = 56,      /* freezing, thawing or shutting down a file system */
	UA_OP_LEASE = 57,       /* a file lease (F_SETLEASE): it holds other processes' opens */
	UA_OP_TTY_HANGUP = 58,  /* hanging up a terminal (TIOCVHANGUP, vhangup) or taking it
				 * from its session (TIOCSCTTY with force) */
};

/* The argument of a connect or bind event: the port, and the protocol (6 tcp, 17 udp). The
 * event's path holds the 16 bytes of the address (IPv4 as IPv4-mapped IPv6). */
#define UA_NET_ARG(port, proto) ((port) | ((proto) << 16))

/* claim-pid's argument when the control messages could not be read (or were too many). */
#define UA_ARG_UNREADABLE 0xffffffffu
/* UA_OP_CGROUP_WRITE's arg for a write in a cgroup v1 hierarchy. */
#define UA_CGROUP_V1 1
/* UA_OP_FANOTIFY's arg for fanotify_init() itself. */
#define UA_FANOTIFY_INIT 0x200

enum ua_mode {
	UA_MODE_ENFORCE = 0,
	UA_MODE_AUDIT = 1,
};

/* What an event reports. */
enum ua_verdict {
	UA_VERDICT_DENIED = 1,     /* the operation failed with EACCES */
	UA_VERDICT_AUDITED = 2,    /* an audit rule matched; the operation went on */
	UA_VERDICT_WOULD_DENY = 3, /* ArmorMode=audit: a deny that was only reported */
};

/* Rule index meaning "no rule", and "denied because the class is an allow-list and nothing
 * in it matched". */
#define UA_RULE_NONE 0xffffffffu
#define UA_RULE_NOT_ALLOWED 0xfffffffeu
/* Denied because the object's path cannot be built (disconnected, detached, too long). */
#define UA_RULE_UNBUILDABLE 0xfffffffbu
/* Denied because a rename or link would change which rules cover the object. */
#define UA_RULE_RECOVER 0xfffffffau
/* Denied because a kernel table cannot hold what the operation would create (a unit tree's
 * sub-cgroup budget, see ua_config). */
#define UA_RULE_FULL 0xfffffff9u
/* Denied because source routing would take a connection past the connect rules. */
#define UA_RULE_SOURCE_ROUTE 0xfffffff8u
/* Denied because a program held to from= allow-lists would execute one they do not name. */
#define UA_RULE_FROM_EXEC 0xfffffff7u
/* Denied by implicit protection n: UA_RULE_PROTECT + n. */
#define UA_RULE_PROTECT 0xffffff00u

/* policies: policy id -> header and the DFA's byte classes (bytes the DFA never tells apart
 * share a class, which keeps the rows short). */
struct ua_policy {
	__u32 start;     /* the DFA start state's base (see struct ua_cell) */
	__u8 mode;       /* enum ua_mode */
	__u8 classes;    /* classes this policy has any rule for */
	__u8 allowlist;  /* classes that are allow-lists */
	__u8 from_held;  /* from= patterns with allow rules: their processes execute only their own;
			  * 0x80 (no mask has it): allow signal/ptrace with from=. Either way no
			  * process of the unit attaches to another (procs.h) */
	__u32 protect;   /* implicit protections in force (bit per enum ua_protection) */
	__u32 cells;     /* index of the policy's first cell in `cells` */
	/* from= (src/compile/from.rs): per class, the from= patterns whose processes it is an
	 * allow-list for (bit per pattern). */
	__u8 from_allow[4];
	__u32 pad2;
	/* Nonzero if the policy has from= rules (a hash of their patterns): every walk then
	 * starts with the process's mask byte (walk.h: from_context()). */
	__u64 from_tag;
};

/* The byte before an executable's path that asks which from= patterns it matches (masks are
 * below it). */
#define UA_FROM_QUERY 0x80
/* The byte before a path that every rule matches whatever its from=: renames and links compare
 * names so (files.h). */
#define UA_FROM_ANY 0x81

/* expected: cgroup path -> what a cgroup created there is bound to. */
/* How many dashed prefixes of a unit's name cgroup_mkdir looks up (`a-b-c.scope`: `a-b-.scope`,
 * then `a-.scope`), as systemd reads `a-.scope.d` and `a-b-.scope.d` for it. */
#define UA_PREFIXES_MAX 8

struct ua_expect {
	__u32 policy;
	__u32 flags;     /* UA_BIND_* */
	/* A pending mark's (pending.h): when a file of the unit was last written or closed
	 * (bpf_ktime_get_ns), and how many of its files are open for writing. 0 otherwise. */
	__u64 stamp;
	__u32 writers;
	__u32 pad;
};

/* A cgroup that holds units rather than processes (a slice, a template's slice): each unit
 * created below it is a tree of its own. */
#define UA_BIND_SLICE 1
/* In `expected`, a pending mark: a file of the unit of that name was written and the daemon
 * has not read it yet. In `bound`, a cgroup created meanwhile, which waits (pending.h). */
#define UA_BIND_PENDING 2
/* In `expected`, on a template's name: its instances have policies of their own (its files
 * use an instance-dependent specifier), so a new instance's cgroup waits for the daemon to
 * bind the instance's own policy, as a pending one does, rather than run under the template's
 * stricter one. Never in `bound`. */
#define UA_BIND_INSTANCES 4
/* A user unit's tree (daemon/users.rs), in `expected` and `bound`: its user makes its
 * sub-cgroups, from inside the unit or out, so the tree's budget is UA_USER_TREE_CGROUPS. */
#define UA_BIND_USER 8

/* unit_dirs: a directory systemd reads units from (device, inode) -> what a name written in
 * it belongs to. */
struct ua_unit_dir {
	__u32 kind;
	__u32 pad;
	char name[UA_CGROUP_PATH_MAX]; /* UA_DIR_DROPINS: the unit's name, zero-padded */
};

/* A unit directory: a name written in it is a unit's file, or (ending in ".d") its drop-in
 * directory. */
#define UA_DIR_UNITS 1
/* A unit's drop-in directory (`app.service.d`, whose unit is `app.service`). */
#define UA_DIR_DROPINS 2

/* unit_writes (inode storage): a unit's file open for writing, the unit it belongs to and by
 * how many open files. */
struct ua_unit_writer {
	char name[UA_CGROUP_PATH_MAX];
	__u32 writers;
	__u32 pad;
};

/* bound: cgroup id -> its policy and the unit tree it belongs to. `root` is the cgroup id of
 * the unit's own cgroup: processes may move, signal and trace within that tree, not out of it. */
struct ua_binding {
	__u64 root;
	__u32 policy;
	__u32 flags;     /* UA_BIND_* */
};

/* peers: (policy, cgroup id) -> UA_PEER_* bits. */
struct ua_peer_key {
	__u32 policy;
	__u32 pad;
	__u64 cgid;
};

#define UA_PEER_SIGNAL 1 /* `allow signal UNIT`: signals and priorities */
#define UA_PEER_PTRACE 2 /* `allow ptrace UNIT` */
/* Where the value holds the from= patterns (bit per pattern, a mask as walk.h's from_context()
 * computes) whose processes may signal (8) or trace (16) the peer: `allow signal UNIT
 * from=PATTERN`. */
#define UA_PEER_SIGNAL_FROM_SHIFT 8
#define UA_PEER_PTRACE_FROM_SHIFT 16
#define UA_PEERS_MAX 4096
/* Cgroup levels looked at above a target process for a peer unit's own cgroup. */
#define UA_PEER_DEPTH 8

/* config: facts the daemon tells the programs at load time. */
struct ua_file_id {
	__u64 ino;
	__u32 dev;
	__u32 pad;
};

/* The last two systemd-executor files seen (the one PID 1 runs may be the one before an
 * upgrade until it re-executes): 0 if there is none (systemd before 255). */
#define UA_EXECUTORS 2

/* Sub-cgroups (cgroups below a unit's own, which the unit itself creates) that `bound` holds
 * for one unit tree, and for all of them together. A mkdir beyond either fails with ENOSPC:
 * no unit can fill `bound` and leave another unit's new cgroup unbound. The rest of `bound`
 * (UA_BOUND_MAX less the total) is kept for the cgroups systemd creates for units. 0 in the
 * settings map means these defaults. */
#define UA_BOUND_MAX 65536
#define UA_TREE_CGROUPS_DEFAULT 1024
/* A user unit's tree (UA_BIND_USER): a user may armor several units of its own and make their
 * exact paths from a login shell, and must not take a large part of the shared budget. */
#define UA_USER_TREE_CGROUPS 64
#define UA_SUB_CGROUPS_DEFAULT 32768

struct ua_config {
	struct ua_file_id executor[UA_EXECUTORS];
	__u32 tree_cgroups_max;  /* per unit tree */
	__u32 sub_cgroups_max;   /* all unit trees together */
	__u64 key[2];            /* keys the hash of repeated events' subjects (random per daemon) */
	__u32 cap_policies;      /* installed policies with `cap` rules: none, and capable() returns at once */
	__u32 net_policies;      /* installed policies with net, connect or bind rules (likewise) */
	__u32 decided_on;        /* the programs that age the decision cache are attached (decided.h) */
	__u32 pad;
	__u64 mount_lock;        /* the kernel's mount_lock, from /proc/kallsyms (0: unknown; decided.h) */
};

#define UA_CAP_SLOTS 64

/* `net` rules: a slot per address family; SOCK_RAW sockets are decided by their family's slot
 * and by UA_NET_RAW's (both must allow). */
#define UA_NET_SLOTS 64
#define UA_NET_RAW 63

/* `connect` and `bind` rules for tcp: and udp:, one entry per port range a rule names. */
#define UA_PORT_RULES 64
/* Kinds: bit 0 bind (else connect), bit 1 udp (else tcp). */
#define UA_PORT_BIND 1
#define UA_PORT_UDP 2
enum ua_action {
	UA_ACT_DENY = 1,
	UA_ACT_ALLOW = 2,
	UA_ACT_AUDIT = 3,
};

struct ua_port_rule {
	__u32 rule;
	__u16 first;   /* ports first..last */
	__u16 last;
	__u8 action;   /* enum ua_action */
	__u8 kind;     /* UA_PORT_* bits */
	__u8 from;     /* the from= pattern of its rule (a bit of a process's mask), or 0: any */
	__u8 pad;
	/* An address matches when (address & mask) == addr, word by word; the address and these
	 * are IPv6 in network order, IPv4 as IPv4-mapped (::ffff:a.b.c.d). A zero mask: any. */
	__u32 addr[4];
	__u32 mask[4];
};

struct ua_policy_table {
	struct ua_policy header;
	__u8 byte_class[256];
	/* Per capability number: the rule that decides it, UA_RULE_NOT_ALLOWED (an allow-list
	 * that does not name it) or UA_RULE_NONE (not decided); src/compile/caps.rs. */
	__u32 cap_rule[UA_CAP_SLOTS];
	__u64 cap_audit; /* bit per capability whose rule is an audit rule */
	/* Per address family (AF_*), and UA_NET_RAW for SOCK_RAW sockets of any family: the rule
	 * that decides creating such a socket, as cap_rule (src/compile/net.rs). */
	__u32 net_rule[UA_NET_SLOTS];
	__u64 net_audit;
	__u32 nports;          /* entries of ports[] in use */
	__u32 port_allowlist;  /* bit per UA_PORT_* kind that is an allow-list */
	/* Byte per UA_PORT_* kind: the from= patterns whose processes it is an allow-list for. */
	__u32 port_from_allow;
	struct ua_port_rule ports[UA_PORT_RULES];
};

/* from_slots: (policy, from= pattern) -> the capability and family verdicts for a process of
 * that pattern (src/compile/from.rs), as cap_rule and net_rule for one that matches none. */
struct ua_from_key {
	__u32 policy;
	__u32 pattern;
};

struct ua_from_slots {
	__u32 cap_rule[UA_CAP_SLOTS];
	__u64 cap_audit;
	__u32 net_rule[UA_NET_SLOTS];
	__u64 net_audit;
};

/* Most from= patterns one policy may have (src/compile/from.rs: FROM_MAX). */
#define UA_FROM_MAX 7

/* cells: the policies' packed DFA transitions (src/compile/pack.rs), each policy a run of
 * cells from its header's `cells`. A state is known by its base b (0 is the dead state): on
 * byte class c it goes to the state of base `next` of cell `cells + b + c` if that cell's
 * `check` is b, else to the dead state. */
struct ua_cell {
	__u32 check;
	__u32 next;
};

#define UA_CELLS (1 << 21)

/* accept: (policy, state) -> what a path ending in that state matches, per class: the index of
 * the deciding deny, allow and audit rule, or UA_RULE_NONE. */
struct ua_state_key {
	__u32 policy;
	__u32 state;
};

struct ua_accept {
	__u32 deny[UA_NR_CLASSES];
	__u32 allow[UA_NR_CLASSES];
	__u32 audit[UA_NR_CLASSES];
	__u32 from; /* after UA_FROM_QUERY: the from= patterns an executable's path matches */
};

/* Task marks (task storage): a task PID 1 forked that has not executed anything but
 * systemd-executor yet is systemd setting up the unit, not the unit's code. */
#define UA_TASK_SETUP 1
/* A marked task's exec has passed a file that is not systemd-executor (a script whose
 * interpreter is the executor): the mark goes when the exec commits. */
#define UA_TASK_SAW_OTHER 2
/* A marked task's one exec of systemd-executor has committed: its next exec ends the mark,
 * whatever it executes (an ExecStart= the unit can point at the executor's inode, in a root
 * of its own whose loader it wrote, would otherwise run that loader marked). */
#define UA_TASK_RAN_EXECUTOR 4

/* pending_state: [0] the monotonic time (ns) until which the daemon is known to run (it
 * writes it every second: marks are made only then); [1] how many cgroups were bound pending,
 * [2] how many marks were made, so that the daemon looks for them only when there are new
 * ones. */
#define UA_PENDING_ALIVE 0
#define UA_PENDING_MADE 1
#define UA_PENDING_MARKS 2 /* how many pending marks were made */
/* How long a pending mark holds units after its last write or close (src/kernel/pending.rs:
 * WRITERS_HELD_NS). */
#define UA_PENDING_HELD_NS 30000000000ULL

/* counters: unit tree root -> events the ring buffer had no room for (or that were shed, see
 * UA_FAIR_BURST), and the policy they were decided by (the daemon attributes them to its unit
 * even after the cgroup is gone); and the unit's events in the current window. */
struct ua_counters {
	__u64 lost;
	__u32 policy;
	__u32 recent;  /* events emitted in the window that began at `window` */
	__u64 window;  /* bpf_ktime_get_ns() */
};

/* Fair share of the ring buffer: once it is half full, a unit tree that has emitted more than
 * UA_FAIR_BURST events in the current window of UA_FAIR_WINDOW_NS has its further events shed
 * (counted as lost, to it): the other half stays free for the units that are not flooding.
 * An event takes its header and its path's own length (report.h): about 650 bytes for a
 * path of 60, some 3,200 events; 4.7 KiB for a path of 4,095, 446. */
#define UA_EVENTS_SIZE (2 << 20)

/* Repeated events: an event identical to one written less than UA_FAIR_WINDOW_NS ago (same
 * unit tree, policy, rule, class, operation, verdict, object and argument) is not sent again
 * but counted in `quiet` under its (policy, rule, class, verdict), which the daemon reads and
 * reports with its own flood summaries. The object is a keyed hash (SipHash) of its path. */
struct ua_repeat_key {
	__u64 root;
	__u64 hash;
	__u32 policy;
	__u32 rule;
	__u32 arg;
	__u32 target_pid;
	__u8 class;
	__u8 op;
	__u8 verdict;
	__u8 pad[5];
};

/* decided.h: what a remembered decision stands for. `verdict` 0: allowed with nothing to say,
 * counted against allow rule `rule` (UA_RULE_NONE: none); UA_VERDICT_AUDITED: audit rule
 * `rule` matched, and its event for unit tree `root` was sent after `sent`
 * (bpf_ktime_get_ns()): until a window after that, a hit is a repeat, counted in `quiet` as
 * report.h counts one. */
struct ua_decided {
	__u64 key; /* the entry's own key: an LRU map hands an element to another key at once */
	__u64 root;
	__u64 sent;
	__u32 rule;
	__u8 verdict;
	__u8 pad[3];
};

/* decided.h: the hash of the mounts above a file's, last computed by a task (mounts_hash()):
 * valid while the kernel's mount_lock count is `seq` (even: no change under way), under the
 * daemon's key whose first word is `k0`, for UA_MOUNTS_MEMO_NS after `at`
 * (bpf_ktime_get_ns()). `hash` 0: those mounts are not remembered (too deep, or of a file
 * system whose names change on their own). */
struct ua_mounts_memo {
	__u64 mnt;
	__u64 hash;
	__u64 at;
	__u64 k0;
	__u32 seq;
	__u32 pad;
};

/* decided.h: the decision cache's own counts, per CPU (`decided_counts`): lookups that found a
 * decision it stood for, decisions stored, and keys made with a task's kept hash of its
 * mounts. */
enum {
	UA_DECIDED_FOUND = 0,
	UA_DECIDED_STORED = 1,
	UA_DECIDED_MOUNTS_KEPT = 2,
	UA_DECIDED_COUNTS = 3,
};

struct ua_quiet_key {
	__u32 policy;
	__u32 rule;
	__u8 class;
	__u8 verdict;
	__u8 pad[2];
};

/* How often a rule decided, per (policy, rule, class), in the per-CPU `hits` map: one counter
 * per outcome (UA_HIT_*). RULE_NOT_ALLOWED and the implicit protections count as rules. */
struct ua_hits_key {
	__u32 policy;
	__u32 rule;
	__u8 class;
	__u8 pad[3];
};

enum {
	UA_HIT_DENIED = 0,
	UA_HIT_WOULD_DENY = 1,
	UA_HIT_AUDITED = 2,
	UA_HIT_ALLOWED = 3,
};

struct ua_hits {
	__u64 n[4];
};

#define UA_HITS_MAX 16384
/* Decisions remembered by decided.h: at most this many, the least recently used forgotten. */
#define UA_DECIDED_MAX 32768
#define UA_REPEATS_MAX 16384
#define UA_QUIET_MAX 16384
#define UA_FAIR_BURST 32
#define UA_FAIR_WINDOW_NS 10000000000ULL

/* One deny or audit verdict, sent to the daemon through the `events` ring buffer: the
 * record holds the header and path_len bytes of the path, its last field (UA_EVENT_HEAD +
 * path_len bytes), so that a short path does not take a whole UA_PATH_MAX of the ring. */
struct ua_event {
	__u64 cgroup_id;
	__u32 pid;
	__u32 tgid;
	__u32 uid;
	__u32 policy;
	__u32 rule;
	__u32 mnt_ns;
	__u32 pid_ns;
	__u32 user_ns;
	__u16 path_len;
	__u8 class;
	__u8 op;
	__u8 verdict;
	__u8 truncated;
	__u16 exe_len;
	__u32 target_pid; /* signal and ptrace: the other process */
	__u32 arg;        /* per operation: signal, bpf command, module id... */
	char comm[16];
	char exe[UA_EXE_MAX]; /* the process's executable, as it sees the path */
	/* The name of the cgroup at the root of the task's bound tree (its unit's: `_io.service`,
	 * escaped as systemd names cgroups), or empty: the daemon names the unit by it when the
	 * cgroup is gone before it reads the event (a short-lived scope or oneshot). */
	char unit[UA_UNIT_NAME_MAX];
	char path[UA_PATH_MAX]; /* only path_len bytes of it are sent */
};

/* The bytes of an event before its path. */
#define UA_EVENT_HEAD __builtin_offsetof(struct ua_event, path)

#endif
