/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Other processes and the kernel: signals, priorities, resource limits, ptrace-class access and
 * /proc/PID/ writes to processes outside the unit's cgroup tree (the daemon, PID 1, other
 * units), messages that claim to come from one of them, creating user namespaces, loading
 * kernel modules and kexec images. Implicit protections, checked by identity: the target's
 * cgroup, not its name.
 */
#ifndef UNITARMOR_PROCS_H
#define UNITARMOR_PROCS_H

#include "path.h"
#include "net.h"

#define PTRACE_MODE_ATTACH 0x02
#define PTRACE_MODE_NOAUDIT 0x04
#define LSM_PRLIMIT_WRITE 2
#define SOL_SOCKET 1
#define SCM_CREDENTIALS 2
/* sendmmsg(2): x86-64, i386, x32 (its bit masked), arm64, arm (compat). No other system call
 * with one of these numbers on another of these architectures sends a message. */
#define NR_SENDMMSG_X32 538
/* i386's socketcall(2), and its SYS_SENDMMSG call: the same sendmmsg() by another number. */
#define NR_SOCKETCALL_I386 102
#define SYS_SENDMMSG 20

/* Whether the current system call is sendmmsg(), by any number that reaches it (`*nr` is
 * syscall_abi_nr()'s). */
static __always_inline bool sendmmsg_call(long *nr)
{
	struct pt_regs *regs;

	*nr = syscall_abi_nr();
	if (nr_is(*nr, 307, 269, 345, 374) || *nr == NR_SENDMMSG_X32)
		return true;
	if (!nr_is(*nr, NR_NONE, NR_NONE, NR_SOCKETCALL_I386, NR_NONE))
		return false;
	regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	/* The compat entry passes the call as a 32-bit value; the saved register keeps all 64. */
	return bpf_core_field_exists(regs->bx) && (__u32)BPF_CORE_READ(regs, bx) == SYS_SENDMMSG;
}
/* Ancestors looked at for "a process of the unit above this one", and control messages read
 * per sendmsg (a message with more is refused: it could hide credentials past the last). */
#define ANCESTORS_MAX 16
#define CMSGS_MAX 16

/* include/uapi/linux/socket.h and linux/socket.h: fixed by the ABI, not read through BTF. */
struct ua_cmsghdr {
	__u64 cmsg_len;
	int cmsg_level;
	int cmsg_type;
};

struct ua_ucred {
	__u32 pid;
	__u32 uid;
	__u32 gid;
};

/* enum kernel_read_file_id / kernel_load_data_id (the same numbers for both). */
#define READING_MODULE 2
#define READING_KEXEC_IMAGE 3
#define READING_KEXEC_INITRAMFS 4
#define READING_POLICY 5

static __always_inline __u64 task_cgroup(struct task_struct *t)
{
	return BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id);
}

/* The policy task `t` is held to: none if it is unarmored or waiting for the daemon. */
static __always_inline struct ua_policy_table *policy_of(struct task_struct *t)
{
	__u64 cgid = task_cgroup(t);
	struct ua_binding *b = bpf_map_lookup_elem(&bound, &cgid);

	if (!b || !b->policy || (b->flags & UA_BIND_PENDING))
		return NULL;
	return bpf_map_lookup_elem(&policies, &b->policy);
}

/* Whether task `t` is armored with every implicit protection in force, enforced: tracing it
 * gives the tracer its powers (its code, its descriptors), which must not include a way out.
 * A unit in ArmorMode=audit confines nothing (found by a helper's review). */
static __always_inline bool fully_armored(struct task_struct *t)
{
	struct ua_policy_table *pol = policy_of(t);

	return pol && (pol->header.protect & UA_PROT_ALL) == UA_PROT_ALL &&
	       pol->header.mode == UA_MODE_ENFORCE;
}

/* Whether task `t`'s policy holds programs (from= allow-lists, or allowances to reach other
 * units): code put into one of its processes would run under those programs' rules, so it
 * is attached to from nowhere, its own unit included. */
static __always_inline bool holds_programs(struct task_struct *t)
{
	struct ua_policy_table *pol = policy_of(t);

	return pol && pol->header.from_held;
}

/* Whether `t` runs in a unit that the policy of `a` may reach with `bit` (`allow signal UNIT`,
 * `allow ptrace UNIT`): its cgroup or one above it is such a unit's own cgroup, by id, as the
 * daemon found it (another unit's sub-cgroup named like the peer is not the peer). A peer is
 * traced only while it is armored with every protection: an unarmored one (or one with an
 * exemption) would lend the tracer a way out of its own armor. A rule with from= allows it
 * to the processes of its executables only; a process whose executable cannot be matched is
 * refused (fail closed). */
static __always_inline bool peer(struct armor *a, struct task_struct *t, __u32 bit)
{
	struct ua_peer_key k = { .policy = a->binding.policy };
	struct kernfs_node *kn = BPF_CORE_READ(t, cgroups, dfl_cgrp, kn);
	__u32 shift = bit == UA_PEER_SIGNAL ? UA_PEER_SIGNAL_FROM_SHIFT : UA_PEER_PTRACE_FROM_SHIFT;
	__u32 *v, from;
	int i;

	if (bit == UA_PEER_PTRACE && !fully_armored(t))
		return false;

	for (i = 0; i < UA_PEER_DEPTH; i++) {
		if (!kn)
			return false;
		k.cgid = BPF_CORE_READ(kn, id);
		v = bpf_map_lookup_elem(&peers, &k);
		if (v) {
			if (*v & bit)
				return true;
			from = (*v >> shift) & 0xff;
			if (from) {
				from_context(a);
				return !a->from_lost && (a->from_mask & from);
			}
		}
		kn = kn_parent(kn);
	}
	return false;
}

SEC("lsm/task_kill")
int BPF_PROG(ua_task_kill, struct task_struct *p, struct kernel_siginfo *info, int sig,
	     const struct cred *cred)
{
	struct armor a;

	/* Signal 0 only asks whether the process exists. `cred` is set only for a USB
	 * completion signal, sent from interrupt context to the process that asked for it, while
	 * `current` is whatever task was interrupted: not a sender to decide. Tested as a number:
	 * newer verifiers take a hook's pointer arguments for non-null and drop `if (cred)`. */
	if (!sig || !protected(&a, UA_PROT_SIGNAL) || as_number(cred) ||
	    in_unit(task_cgroup(p), a.binding.root) || peer(&a, p, UA_PEER_SIGNAL))
		return 0;
	return deny_protected(&a, UA_PROT_SIGNAL, UA_OP_KILL, p->comm, BPF_CORE_READ(p, tgid), sig);
}

/* ptrace attach, /proc/PID/{mem,environ,root,fd...}, process_vm_*, pidfd_getfd. A task
 * with the set-up mark is systemd's, even inside the unit: code injected there would be
 * exempt from the protections. */
SEC("lsm/ptrace_access_check")
int BPF_PROG(ua_ptrace_access_check, struct task_struct *child, unsigned int mode)
{
	struct armor a;

	/* A task with the set-up mark is systemd's code, exempt from the protections: never
	 * attached to from an armored task, even one whose unit lifts `ptrace`. */
	if ((mode & PTRACE_MODE_ATTACH) && armored(&a) && !setup_phase() && marked(child))
		return deny_protected(&a, UA_PROT_PTRACE, UA_OP_PTRACE, child->comm,
				      BPF_CORE_READ(child, tgid), mode);
	if (!protected(&a, UA_PROT_PTRACE))
		return 0;
	/* Under from= allow-lists (or allowances to reach other units), code put into another
	 * process of the unit would run as that program, with its rules (walk.h): attaching
	 * (ptrace, /proc/PID/mem, process_vm_*, pidfd_getfd) is refused within the unit too.
	 * Reading (ps, environ) is not. A peer's code runs under the peer's own policy, and a
	 * peer is attached to only if its policy holds no program (holds_programs()). */
	if (in_unit(task_cgroup(child), a.binding.root)) {
		if (!marked(child) && !(a.pol->header.from_held && (mode & PTRACE_MODE_ATTACH)))
			return 0;
	} else if (peer(&a, child, UA_PEER_PTRACE) && !marked(child) &&
		   !((mode & PTRACE_MODE_ATTACH) && holds_programs(child))) {
		/* A peer that holds programs is read, not attached to: two units naming each
		 * other would make a way back into this one's held programs (a helper's review). */
		return 0;
	}
	/* NOAUDIT checks (ps reading another process's stat) are refused without a record:
	 * the kernel only hides a field there. */
	if (mode & PTRACE_MODE_NOAUDIT)
		return -EPERM;
	return deny_protected(&a, UA_PROT_PTRACE, UA_OP_PTRACE, child->comm,
			      BPF_CORE_READ(child, tgid), mode);
}

/* PTRACE_TRACEME: the caller asks its parent to trace it; refused where attaching within the
 * unit is (from= allow-lists, above), since its next exec would be the parent's to steer. */
SEC("lsm/ptrace_traceme")
int BPF_PROG(ua_ptrace_traceme, struct task_struct *parent)
{
	struct armor a;

	if (!protected(&a, UA_PROT_PTRACE) || !a.pol->header.from_held)
		return 0;
	return deny_protected(&a, UA_PROT_PTRACE, UA_OP_PTRACE, parent->comm,
			      BPF_CORE_READ(parent, tgid), PTRACE_MODE_ATTACH);
}

/* Priorities and scheduling of processes outside the unit (starving the daemon). */
static __always_inline int sched_other(struct task_struct *p)
{
	struct armor a;

	if (!protected(&a, UA_PROT_SIGNAL) || in_unit(task_cgroup(p), a.binding.root) ||
	    peer(&a, p, UA_PEER_SIGNAL))
		return 0;
	return deny_protected(&a, UA_PROT_SIGNAL, UA_OP_SCHED, p->comm, BPF_CORE_READ(p, tgid), 0);
}

SEC("lsm/task_setnice")
int BPF_PROG(ua_task_setnice, struct task_struct *p, int nice)
{
	return sched_other(p);
}

SEC("lsm/task_setioprio")
int BPF_PROG(ua_task_setioprio, struct task_struct *p, int ioprio)
{
	return sched_other(p);
}

SEC("lsm/task_setscheduler")
int BPF_PROG(ua_task_setscheduler, struct task_struct *p)
{
	return sched_other(p);
}

/* Levels looked up from a /proc file for the /proc/PID/ directory it is in (/proc/PID/net/rpc/
 * auth.unix.ip/channel is four below). */
#define PROC_DEPTH_MAX 8

/* The process a /proc/PID/ file belongs to (any task of it), or NULL for the rest of /proc
 * (sysctls, /proc/meminfo) and for a process that has exited. Files below /proc/PID/net/ have
 * no pid of their own: the nearest directory above that has one names the process (and so the
 * network namespace they act on). */
static __always_inline struct task_struct *proc_task(struct dentry *dentry)
{
	struct hlist_node *first;
	struct proc_inode *pi;
	struct dentry *parent;
	struct inode *inode;
	struct pid *pid = 0;
	int i;

	for (i = 0; i < PROC_DEPTH_MAX; i++) {
		inode = BPF_CORE_READ(dentry, d_inode);
		if (!inode || BPF_CORE_READ(inode, i_sb, s_magic) != PROC_SUPER_MAGIC)
			return 0;
		pi = (void *)inode - bpf_core_field_offset(struct proc_inode, vfs_inode);
		pid = BPF_CORE_READ(pi, pid);
		if (pid)
			break;
		parent = BPF_CORE_READ(dentry, d_parent);
		if (parent == dentry)
			return 0;
		dentry = parent;
	}
	if (!pid)
		return 0;
	first = BPF_CORE_READ(pid, tasks[0].first);
	if (!first)
		return 0;
	/* pid_links[PIDTYPE_PID] is the first of the task's links. */
	return (void *)first - bpf_core_field_offset(struct task_struct, pid_links);
}

/* Opening another process's /proc/PID/ file for writing: oom_score_adj (making the daemon the
 * OOM killer's first choice), coredump_filter, timerslack_ns, attr/. Reads that matter are
 * ptrace-checked by the kernel (ptrace_access_check). Called from file_open for files on procfs. */
static __always_inline int proc_write(struct file *file)
{
	struct task_struct *t;
	struct armor a;

	if (!protected(&a, UA_PROT_PTRACE))
		return 0;
	t = proc_task(BPF_CORE_READ(file, f_path.dentry));
	if (!t || in_unit(task_cgroup(t), a.binding.root) || peer(&a, t, UA_PEER_PTRACE))
		return 0;
	return deny_protected_path(&a, UA_PROT_PTRACE, UA_OP_OPEN_WRITE,
				   BPF_CORE_READ(file, f_path.mnt), BPF_CORE_READ(file, f_path.dentry));
}

/* The number of `t`'s process in the pid namespace at `level`, or 0 if it has none there. */
static __always_inline __u32 tgid_at(struct task_struct *t, unsigned int level)
{
	struct pid *p = BPF_CORE_READ(t, group_leader, thread_pid);
	struct upid up = {};

	if (!p || BPF_CORE_READ(p, level) < level)
		return 0;
	bpf_probe_read_kernel(&up, sizeof(up),
			      (void *)p + bpf_core_field_offset(struct pid, numbers) +
				      level * sizeof(struct upid));
	return up.nr;
}

/*
 * Whether `pid` (a number in the current task's pid namespace) is the current process or one
 * of its ancestors inside the unit whose tree's root is cgroup `root`: `systemd-notify` sends
 * as its parent, the service's main process. The daemon, PID 1 and other units are never such
 * an ancestor. A global function: its loop is checked once, not again in each iteration of
 * the loop over a message's control messages that calls it (ua_sendmsg_creds()).
 */
__noinline int ua_own_or_ancestor(__u64 root, __u32 pid)
{
	struct task_struct *t = bpf_get_current_task_btf();
	unsigned int level = BPF_CORE_READ(t, thread_pid, level);
	int i;

	for (i = 0; i < ANCESTORS_MAX; i++) {
		if (!t || !in_unit(task_cgroup(t), root))
			return 0;
		if (pid && tgid_at(t, level) == pid)
			return 1;
		t = BPF_CORE_READ(t, real_parent);
	}
	return 0;
}

/* ua_sendmsg_creds()'s flags. */
#define CREDS_UNIX 1	 /* a unix socket (else netlink) */
#define CREDS_NAMED 2	 /* the message has an address */

/*
 * The SCM_CREDENTIALS check of a sendmsg on a unix or netlink socket (CREDS_* `flags`) whose
 * msghdr is `msg` (a number). A global function, with a frame of its own: the hook's frame
 * holds only what it needs to choose between this and ua_decide_inet(), which keeps either
 * chain of calls (down to an event's executable path) under the verifier's 512 bytes of stack.
 */
__noinline int ua_sendmsg_creds(__u64 msg, __u32 flags)
{
	struct msghdr *m = (struct msghdr *)msg;
	__u64 len = BPF_CORE_READ(m, msg_controllen), off = 0;
	__u32 pid = 0, arg = UA_ARG_UNREADABLE;
	__u8 op = UA_OP_CLAIM_PID;
	struct ua_cmsghdr h;
	struct ua_ucred u;
	struct armor a;
	void *ctl;
	long nr;
	int i;

	if (!protected(&a, UA_PROT_SIGNAL))
		return 0;
	if (flags & CREDS_UNIX)
		forget_netlink_send();
	/* sendmmsg() asks this hook only for the first of several messages to one address: the
	 * rest could claim any pid unseen. With an address, it is refused on these sockets (a
	 * connected socket, without one, is asked for every message). */
	if ((flags & CREDS_NAMED) && sendmmsg_call(&nr)) {
		op = UA_OP_SENDMMSG;
		arg = nr;
		goto refuse;
	}
	if (!len)
		return 0;
	/* sendmsg(2) has copied the control messages into the kernel by now; a pointer that is
	 * not a kernel one cannot be read without a race, so it is refused (as is a message with
	 * more control messages than are looked at). */
	ctl = BPF_CORE_READ(m, msg_control);
	for (i = 0; i < CMSGS_MAX; i++) {
		if (off + sizeof(h) > len)
			return 0;
		if (bpf_probe_read_kernel(&h, sizeof(h), ctl + off))
			goto refuse;
		if (h.cmsg_len < sizeof(h) || h.cmsg_len > len - off)
			return 0; /* the kernel refuses it (EINVAL) */
		if (h.cmsg_level == SOL_SOCKET && h.cmsg_type == SCM_CREDENTIALS) {
			if (h.cmsg_len < sizeof(h) + sizeof(u) ||
			    bpf_probe_read_kernel(&u, sizeof(u), ctl + off + sizeof(h)))
				return 0; /* the kernel refuses it (EINVAL) */
			if (!ua_own_or_ancestor(a.binding.root, u.pid)) {
				pid = u.pid;
				arg = 0;
				goto refuse;
			}
		}
		off += (h.cmsg_len + 7) & ~7ULL;
	}
	if (off + sizeof(h) > len)
		return 0;
refuse:
	return deny_protected(&a, UA_PROT_SIGNAL, op, 0, pid, arg);
}

/*
 * Datagrams to an address on inet sockets are connects (net.h). SCM_CREDENTIALS naming another
 * process. Root may claim any pid, and PID 1 and journald take
 * the pid as the sender: a message claiming the daemon's pid sets unitarmor.service's status or
 * triggers its watchdog, one claiming another unit's pid lands in that unit's journal. Only the
 * sender itself and its ancestors inside the unit may be claimed.
 */
SEC("lsm/socket_sendmsg")
int BPF_PROG(ua_socket_sendmsg, struct socket *sock, struct msghdr *msg, int size)
{
	/* Direct loads (no helper call): every sendmsg of every process comes here. */
	__u64 len = msg->msg_controllen;
	void *name = msg->msg_name;
	__u16 family;

	if (!len && !name)
		return 0;
	family = BPF_CORE_READ(sock, sk, __sk_common.skc_family);
	/* A newer verifier checks that an LSM program returns 0 or an error; a global function's
	 * result is not known to be one. */
	if (name && (family == AF_INET || family == AF_INET6)) {
		if (!net_rules_in_use() || !maybe_armored())
			return 0;
		return ua_inet_sendmsg(as_number(sock), as_number(msg)) < 0 ? -EACCES : 0;
	}
	/* Only unix and netlink sockets carry SCM_CREDENTIALS. An unarmored sender (journald's
	 * every client) returns after the bound filter's read. */
	if ((family != AF_UNIX && family != AF_NETLINK) || !maybe_armored())
		return 0;
	return ua_sendmsg_creds(as_number(msg), (family == AF_UNIX ? CREDS_UNIX : 0) |
						    (name ? CREDS_NAMED : 0)) < 0 ? -EPERM : 0;
}

/*
 * A file's owner (F_SETOWN): the process the kernel signals for it (SIGIO, SIGURG, or any
 * signal F_SETSIG names) when I/O happens, without asking task_kill. Root may name any process,
 * PID 1 included (SIGRTMIN+4 powers off): so in an armored unit a file's owner may only be the
 * caller's own process (0 clears it). Process groups, F_SETOWN_EX and the ioctls whose
 * argument the kernel reads from user memory after this hook are refused.
 */
#define F_SETOWN 8
#define F_SETOWN_EX 15
#define FIOSETOWN 0x8901
#define SIOCSPGRP 0x8902

/*
 * A lease (F_SETLEASE) needs only a descriptor of a file its caller owns, and root owns the
 * unit files: while it is held, every other open of the file waits up to lease-break-time
 * (PID 1's, at each daemon-reload) or fails with O_NONBLOCK (the daemon's reads of drop-ins, and
 * journalctl's of journal files). So taking one is decided as a write of the file: refused
 * where a write would be (the implicit protections, and the unit's write rules).
 */
#define F_SETLEASE 1024
#define F_UNLCK 2

static __always_inline int take_lease(struct file *file, unsigned long arg)
{
	struct armor a;
	__u64 epoch, magic;

	if (arg == F_UNLCK)
		return 0;
	epoch = read_epoch();
	if (!armored(&a))
		return 0;
	/* The kernel's own files (cgroupfs, where PID 1 writes the unit's parents' limits;
	 * sysfs; proc) have no write rules to decide by: a lease there is refused outright. */
	magic = BPF_CORE_READ(file, f_inode, i_sb, s_magic);
	if ((magic == CGROUP2_SUPER_MAGIC || magic == CGROUP_SUPER_MAGIC ||
	     magic == SYSFS_MAGIC || magic == PROC_SUPER_MAGIC) &&
	    protects(&a, UA_PROT_KERNEL_SETTINGS))
		return deny_protected_path(&a, UA_PROT_KERNEL_SETTINGS, UA_OP_LEASE,
					   BPF_CORE_READ(file, f_path.mnt),
					   BPF_CORE_READ(file, f_path.dentry));
	if (!has_class(&a, UA_CLASS_WRITE))
		return 0;
	return decide_file(&a, UA_CLASS_WRITE, UA_OP_LEASE, file, epoch);
}

SEC("lsm/file_fcntl")
int BPF_PROG(ua_file_fcntl, struct file *file, unsigned int cmd, unsigned long arg)
{
	struct task_struct *t = bpf_get_current_task_btf();
	int pid = (int)arg;
	struct armor a;

	if (cmd == F_SETLEASE)
		return take_lease(file, arg);
	if ((cmd != F_SETOWN && cmd != F_SETOWN_EX) || !protected(&a, UA_PROT_SIGNAL))
		return 0;
	if (cmd == F_SETOWN &&
	    (pid == 0 || (pid > 0 && pid == tgid_at(t, BPF_CORE_READ(t, thread_pid, level)))))
		return 0;
	return deny_protected(&a, UA_PROT_SIGNAL, UA_OP_SET_OWNER, 0,
			      cmd == F_SETOWN && pid > 0 ? pid : 0, cmd);
}

/* The same through ioctl (sockets): refused, see ua_file_fcntl. Called by file_ioctl. */
static __always_inline int ioctl_set_owner(unsigned int cmd)
{
	struct armor a;

	if ((cmd != FIOSETOWN && cmd != SIOCSPGRP) || !protected(&a, UA_PROT_SIGNAL))
		return 0;
	return deny_protected(&a, UA_PROT_SIGNAL, UA_OP_SET_OWNER, 0, 0, cmd);
}

/*
 * Setting another process's resource limits (prlimit(2) with a pid): RLIMIT_NOFILE of 0 for
 * the daemon or PID 1. Decided at task_setrlimit, which the kernel calls for every change of
 * limits (one's own included) and which names the target task, so that a process may change
 * the limits of any process of its own unit's tree (its children and siblings); not at
 * task_prlimit, which names only the target's credentials (those of a child are a copy, equal
 * to those of every other root process).
 */
SEC("lsm/task_setrlimit")
int BPF_PROG(ua_task_setrlimit, struct task_struct *p, unsigned int resource,
	     void *new_rlim)
{
	struct armor a;

	if (!protected(&a, UA_PROT_SIGNAL) || in_unit(task_cgroup(p), a.binding.root))
		return 0;
	return deny_protected(&a, UA_PROT_SIGNAL, UA_OP_PRLIMIT, 0, BPF_CORE_READ(p, tgid), 0);
}

#define ENOSYS 38
#define PR_SET_MM 35
#define PR_SET_MM_EXE_FILE 13
#define PR_SET_MM_MAP 14

/*
 * prctl(PR_SET_MM) naming a new executable for the process (PR_SET_MM_EXE_FILE; PR_SET_MM_MAP
 * may carry one too, read from user memory after this hook, so it is refused whole): what
 * /proc/PID/exe shows and what from= rules match (walk.h: from_context()). Checkpoint/restore
 * tools use it; lift with ArmorExempt=ptrace. Any other prctl is the kernel's to do: this
 * hook must answer -ENOSYS for it, since security_task_prctl() takes 0 for "done".
 */
SEC("lsm/task_prctl")
int BPF_PROG(ua_task_prctl, int option, unsigned long arg2, unsigned long arg3,
	     unsigned long arg4, unsigned long arg5)
{
	struct armor a;
	int err;

	if (option != PR_SET_MM || (arg2 != PR_SET_MM_EXE_FILE && arg2 != PR_SET_MM_MAP))
		return -ENOSYS;
	if (!protected(&a, UA_PROT_PTRACE))
		return -ENOSYS;
	err = deny_protected(&a, UA_PROT_PTRACE, UA_OP_SET_EXE, 0, 0, arg2);
	return err ? err : -ENOSYS; /* reported only (ArmorMode=audit) */
}

SEC("lsm/userns_create")
int BPF_PROG(ua_userns_create, const struct cred *cred)
{
	struct armor a;

	if (!protected(&a, UA_PROT_USERNS))
		return 0;
	return deny_protected(&a, UA_PROT_USERNS, UA_OP_USERNS, 0, 0, 0);
}

SEC("lsm/kernel_module_request")
int BPF_PROG(ua_kernel_module_request, char *kmod_name)
{
	struct armor a;

	if (!protected(&a, UA_PROT_MODULES))
		return 0;
	return deny_protected(&a, UA_PROT_MODULES, UA_OP_MODULE, kmod_name, 0, 0);
}

static __always_inline bool code_for_kernel(int id)
{
	return id == READING_MODULE || id == READING_KEXEC_IMAGE || id == READING_KEXEC_INITRAMFS ||
	       id == READING_POLICY;
}

SEC("lsm/kernel_load_data")
int BPF_PROG(ua_kernel_load_data, int id, bool contents)
{
	struct armor a;

	if (!code_for_kernel(id) || !protected(&a, UA_PROT_MODULES))
		return 0;
	return deny_protected(&a, UA_PROT_MODULES, UA_OP_MODULE, 0, 0, id);
}

SEC("lsm/kernel_read_file")
int BPF_PROG(ua_kernel_read_file, struct file *file, int id, bool contents)
{
	struct armor a;

	if (!code_for_kernel(id) || !protected(&a, UA_PROT_MODULES))
		return 0;
	if (!file)
		return deny_protected(&a, UA_PROT_MODULES, UA_OP_MODULE, 0, 0, id);
	return deny_protected_path(&a, UA_PROT_MODULES, UA_OP_MODULE, BPF_CORE_READ(file, f_path.mnt),
				   BPF_CORE_READ(file, f_path.dentry));
}

#endif
