/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Building an object's path in the kernel and walking a policy's DFA over it: the shared
 * machinery of every path decision (report.h sends verdicts, path.h makes the decisions).
 *
 * Paths are built from (vfsmount, dentry) up to the root of the mount namespace the object
 * lives in, not to the task's root directory: chroot changes nothing. Kernel interface file
 * systems (proc, sysfs, bpffs, securityfs, debugfs, tracefs, configfs, efivarfs,
 * binfmt_misc, pstore) are named from their own root, as mounted where the system mounts
 * them, wherever a mount shows them (canons[] below). A walk that ends
 * anywhere else (a detached or lazily unmounted tree, an open_tree() clone, a dentry reached
 * through a file handle that is not connected to the tree) cannot name the object: it is
 * "unbuildable", and denied in every class that has rules. Objects of the kernel's internal
 * mounts (pipes, sockets, memfd, anonymous inodes) are named by their dentry or file system
 * type, which no absolute pattern matches.
 */
#ifndef UNITARMOR_WALK_H
#define UNITARMOR_WALK_H

#include "armor.h"

#define EACCES 13
#define EPERM 1
#define ENOSPC 28

/* File types (i_mode & S_IFMT). */
#define S_IFMT 00170000
#define S_IFREG 0100000
#define S_IFBLK 0060000
#define S_IFCHR 0020000
#define S_IFDIR 0040000

/* File systems some hooks tell apart (include/uapi/linux/magic.h). */
#define EXT4_SUPER_MAGIC 0xEF53
#define XFS_SUPER_MAGIC 0x58465342
#define BTRFS_SUPER_MAGIC 0x9123683E
#define TMPFS_MAGIC 0x01021994
#define RAMFS_MAGIC 0x858458f6
#define NSFS_MAGIC 0x6e736673

/* fs/mount.h: the mnt_ns of the kernel's internal mounts (kern_mount()). */
#define MNT_NS_INTERNAL ((void *)-22L)

/* Bounds v with an AND the compiler cannot drop: verifiers since 6.x can lose a bound that
 * clang proved once and then kept in another register. */
_Static_assert(UA_PATH_MAX == 4096, "the BOUND() masks below assume UA_PATH_MAX is 4096");
#define BOUND(v, mask) ({ __u64 __b = (v); asm volatile("%0 &= " #mask : "+r"(__b)); __b; })

/* Index of byte `pos` of the object's (exe = 0) or the executable's (exe = 1) half of the path
 * buffer, bounded where the verifier can see it. */
static __always_inline __u64 slot(__u8 exe, __u32 pos)
{
	return BOUND((exe ? UA_PATH_MAX : 0) + (pos & (UA_PATH_MAX - 1)), 8191);
}

/* What a path walk found. */
enum path_status {
	PATH_OK = 0,
	PATH_UNBUILDABLE = 1, /* too deep, too long, detached or disconnected */
	PATH_PSEUDO = 2,      /* an object of an internal mount: pipe, socket, memfd... */
};

/* State of a path walk, one bpf_loop() step per path component or mount crossing. Kernel
 * pointers are kept as integers: they are only ever read through BPF_CORE_READ. */
struct path_walk {
	__u64 dentry;
	__u64 vfsmnt;
	__u32 pos;
	__u8 done;
	__u8 status;
	__u8 exe; /* build into the second half of the buffer */
	__u8 canon; /* 1 + the index in canons[] once the walk is in such a file system */
};

/*
 * Kernel interface file systems are named from their own root, as if mounted where the
 * system mounts them, wherever a mount shows them: a second proc or sysfs mounted elsewhere
 * (a chroot's, a build sandbox's, a container's seen from the host), a bind mount of
 * /sys/fs/bpf. The implicit protections and the rules name their files by these paths; by the
 * path of the mount, /elsewhere/proc/sys/kernel/core_pattern would be no kernel setting. Only
 * a walk that crosses a mount's root looks here.
 */
struct canon {
	__u32 magic;
	__u32 len;
	char name[28];
};

static const struct canon canons[] = {
	{ 0x9fa0, 5, "/proc" },                           /* PROC_SUPER_MAGIC */
	{ 0x62656572, 4, "/sys" },                        /* SYSFS_MAGIC */
	{ 0xcafe4a11, 11, "/sys/fs/bpf" },                /* BPF_FS_MAGIC */
	{ 0x73636673, 20, "/sys/kernel/security" },       /* SECURITYFS_MAGIC */
	{ 0x64626720, 17, "/sys/kernel/debug" },          /* DEBUGFS_MAGIC */
	{ 0x74726163, 19, "/sys/kernel/tracing" },        /* TRACEFS_MAGIC */
	{ 0x62656570, 18, "/sys/kernel/config" },         /* CONFIGFS_MAGIC */
	{ 0xde5e81e4, 25, "/sys/firmware/efi/efivars" },  /* EFIVARFS_MAGIC */
	{ 0x42494e4d, 24, "/proc/sys/fs/binfmt_misc" },   /* BINFMTFS_MAGIC */
	{ 0x6165676c, 14, "/sys/fs/pstore" },             /* PSTOREFS_MAGIC */
};
#define N_CANONS (sizeof(canons) / sizeof(canons[0]))

/* 1 + the index in canons[] of the file system mounted at vfsmnt, or 0. */
static __always_inline __u8 canon_of(struct vfsmount *vfsmnt)
{
	unsigned long magic = BPF_CORE_READ(vfsmnt, mnt_sb, s_magic);
	__u8 i;

	for (i = 0; i < N_CANONS; i++)
		if (canons[i].magic == magic)
			return i + 1;
	return 0;
}

/* Writes the canonical mount point of pw->canon before the components written so far; false
 * when the buffer has no room left for it. */
static __always_inline bool name_canonical(struct scratch *s, struct path_walk *pw)
{
	__u32 i = (pw->canon - 1) & 15, len;

	if (i >= N_CANONS)
		return false;
	len = canons[i].len & 31;
	if (len + 1 >= pw->pos)
		return false;
	pw->pos -= len;
	bpf_probe_read_kernel(&s->path[slot(pw->exe, pw->pos)], BOUND(len, 31), canons[i].name);
	return true;
}

/* Names an object of an internal mount by its dentry name ("memfd:x") or, when that is empty
 * (pipes, sockets), by its file system type ("pipefs"). */
static __always_inline void name_pseudo(struct scratch *s, struct path_walk *pw, struct dentry *dentry)
{
	struct qstr name = BPF_CORE_READ(dentry, d_name);
	const char *src = (const char *)name.name;
	__u32 len = name.len & 0xff;
	char fstype[16] = {};
	long n;

	if (!len) {
		n = bpf_probe_read_kernel_str(fstype, sizeof(fstype),
					      BPF_CORE_READ(dentry, d_sb, s_type, name));
		if (n <= 1)
			return;
		len = (n - 1) & 0xf;
		src = fstype;
	}
	if (len + 1 >= pw->pos)
		return;
	pw->pos -= len;
	bpf_probe_read_kernel(&s->path[slot(pw->exe, pw->pos)], BOUND(len, 255), src);
}

static long walk_component(__u32 i, void *data)
{
	struct path_walk *pw = data;
	struct dentry *dentry = (struct dentry *)pw->dentry;
	struct vfsmount *vfsmnt = (struct vfsmount *)pw->vfsmnt;
	struct mount *mnt = (void *)vfsmnt - bpf_core_field_offset(struct mount, mnt);
	struct scratch *s = get_scratch();
	struct mnt_namespace *ns;
	struct dentry *parent;
	struct qstr name;
	__u32 len, pos = pw->pos;

	if (!s)
		goto unbuildable;
	if (dentry == BPF_CORE_READ(vfsmnt, mnt_root)) {
		struct mount *up = BPF_CORE_READ(mnt, mnt_parent);

		if (!pw->canon)
			pw->canon = canon_of(vfsmnt);
		if (pw->canon) {
			/* Its own root: the canonical mount point. A bind mount of a
			 * directory inside it: on up through its dentries, to that root. */
			if (dentry == BPF_CORE_READ(vfsmnt, mnt_sb, s_root))
				goto canonical;
			goto component;
		}
		if (up != mnt) {
			pw->dentry = (__u64)BPF_CORE_READ(mnt, mnt_mountpoint);
			pw->vfsmnt = (__u64)((void *)up + bpf_core_field_offset(struct mount, mnt));
			return 0;
		}
		/* The top of a mount tree: the root of a mount namespace (any: a file of
		 * another namespace is named as it is there), an internal mount, or a detached
		 * tree (its own anonymous namespace, or none once lazily unmounted). */
		ns = BPF_CORE_READ(mnt, mnt_ns);
		if ((void *)ns == MNT_NS_INTERNAL) {
			name_pseudo(s, pw, dentry);
			pw->status = PATH_PSEUDO;
		} else if (!ns || BPF_CORE_READ(ns, root) != mnt || BPF_CORE_READ(ns, seq) == 0) {
			goto unbuildable;
		}
		goto stop;
	}
component:
	parent = BPF_CORE_READ(dentry, d_parent);
	if (parent == dentry) {
		/* In a kernel file system, only its root is named canonically: no dentry of
		 * theirs is disconnected today (none exports file handles), and one that was
		 * would have no name under that root. */
		if (pw->canon) {
			if (dentry == BPF_CORE_READ(dentry, d_sb, s_root))
				goto canonical;
			goto unbuildable;
		}
		/* Its own parent but not its mount's root: an internal object's dentry, or one
		 * reached through a file handle and not connected to the tree. */
		name_pseudo(s, pw, dentry); /* events name it by its last component */
		if ((void *)BPF_CORE_READ(mnt, mnt_ns) != MNT_NS_INTERNAL)
			goto unbuildable;
		pw->status = PATH_PSEUDO;
		goto stop;
	}
	name = BPF_CORE_READ(dentry, d_name);
	len = name.len & 0xff;
	if (len + 1 >= pos)
		goto unbuildable;
	pos -= len;
	bpf_probe_read_kernel(&s->path[slot(pw->exe, pos)], BOUND(len, 255), name.name);
	pos -= 1;
	s->path[slot(pw->exe, pos)] = '/';
	pw->pos = pos;
	pw->dentry = (__u64)parent;
	return 0;
canonical:
	if (name_canonical(s, pw))
		goto stop;
unbuildable:
	pw->status = PATH_UNBUILDABLE;
stop:
	pw->done = 1;
	return 1;
}

/*
 * Zero, in a form the verifier cannot fold: jiffies stay below 2^63 for 292 million years at
 * 1,000 a second. Verifiers before 6.7 check a bpf_loop() callback as if it ran once, with the
 * context as the caller left it; a field that starts as a known constant would have the
 * callback's branches on it decided at load for every iteration (the untaken side dropped
 * as dead code), though a later iteration finds it changed. Started from this, the field is
 * unknown to the verifier, which checks both sides. Nothing can make it non-zero (a value
 * in a map could be written). It was the clock's top bit: a clock read per path built, an
 * emulated device's read where the clock source is the HPET (Debian 12's guest).
 */
static __always_inline __u32 unfolded_zero(void)
{
	return bpf_jiffies64() >> 63;
}

/*
 * Writes the path of (mnt, dentry) into s->path, ending just before UA_PATH_MAX, and returns
 * where it starts; *status says whether it could be built. bpf_loop() keeps the verifier's
 * work independent of UA_PATH_DEPTH; a deeper path is unbuildable.
 */
static __always_inline __u32 build_path_here(struct scratch *s, struct vfsmount *vfsmnt,
					     struct dentry *dentry, __u8 *status, __u8 exe)
{
	/* pos starts unfolded (UA_PATH_MAX at run time): as a known constant, the callback's
	 * length checks (len + 1 >= pos) would be settled as never true at load on 6.1, and a
	 * path longer than the buffer could wrap instead of being unbuildable, depending only on
	 * how clang lays the code out (longpath.sh runs such a path). */
	struct path_walk pw = {
		.dentry = (__u64)dentry,
		.vfsmnt = (__u64)vfsmnt,
		.pos = UA_PATH_MAX * (1 - unfolded_zero()),
		.exe = exe,
	};
	__u32 pos;

	bpf_loop(UA_PATH_DEPTH, walk_component, &pw, 0);
	*status = pw.done ? pw.status : PATH_UNBUILDABLE;
	pos = pw.pos;
	if (pos >= UA_PATH_MAX) {
		pos = UA_PATH_MAX - 1;
		s->path[slot(exe, pos)] = '/';
	}
	return pos;
}

/* A kernel pointer as the plain number a global function may take: the verifier refuses a
 * typed pointer (a hook's argument) there, and reads only go through BPF_CORE_READ anyway. */
static __always_inline __u64 as_number(const void *p)
{
	__u64 v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), &p);
	return v;
}

/*
 * build_path_here() as a global function, which the verifier checks once per program: the
 * walk's loop callback is checked again at every bpf_loop() call it is inlined into, and a
 * program builds up to four paths (the object's, a protected one's, the executable's, the
 * event's executable). Returns the position | the status << 16.
 */
__noinline __u32 ua_build_path(__u64 mnt, __u64 dentry, __u32 exe)
{
	struct scratch *s = get_scratch();
	__u8 status;
	__u32 pos;

	if (!s)
		return (UA_PATH_MAX - 1) | ((__u32)PATH_UNBUILDABLE << 16);
	pos = build_path_here(s, (struct vfsmount *)mnt, (struct dentry *)dentry, &status,
			      exe ? 1 : 0);
	return (pos & (UA_PATH_MAX - 1)) | ((__u32)(status & 3) << 16);
}

/* Builds the path of (mnt, dentry) into the object's (exe = 0) or the executable's (exe = 1)
 * half of s->path and returns where it starts; *status says whether it could be built. */
static __always_inline __u32 build_path(struct scratch *s, struct vfsmount *vfsmnt,
					struct dentry *dentry, __u8 *status, __u8 exe)
{
	__u32 r = ua_build_path(as_number(vfsmnt), as_number(dentry), exe);

	*status = (r >> 16) & 3;
	return r & (UA_PATH_MAX - 1);
}

/* ---- Sharing the path buffer ---- */

/*
 * The path buffer is per CPU, and LSM programs run with migration disabled but, on kernels
 * that preempt (preempt=full or lazy, PREEMPT_RT), not with preemption disabled: another
 * task's program on the same CPU may write the buffer between the walk that builds a path
 * and the one that matches it, and a hostile process could try to time that. Only a task
 * that runs on this CPU can write it (none of these programs runs in interrupt context),
 * and no other task runs here while this one is not switched out: a decision notes the
 * task's context-switch count before building (claim) and compares it after matching. A
 * changed count means the match may have read another task's bytes: the decision is made
 * again, once, and denied as unbuildable if the task was switched out again. An event's text,
 * read after the decision, may name another path; the verdict cannot be affected.
 */
static __always_inline __u64 switches(void)
{
	struct task_struct *task = bpf_get_current_task_btf();

	return task->nvcsw + task->nivcsw;
}

static __always_inline void claim(struct armor *a)
{
	a->switches = switches();
}

static __always_inline bool claim_kept(struct armor *a)
{
	return switches() == a->switches;
}

/* Set in a claim that may not be taken for a repeat (ua_emit). */
#define CLAIM_NO_REPEAT (1ULL << 63)

/*
 * A claim for a name built only to be reported (an exec refused by from= lists, a protected
 * object), which no decision reads: its event goes out without it if the task is switched
 * out before the event is sent (ua_emit). Such names were sent unclaimed, and never taken for
 * a repeat's; a claim made for this alone keeps that (CLAIM_NO_REPEAT), one made earlier in
 * the same decision is renewed as it was. (An earlier claim made at 0 switches, by a new task,
 * is taken for none: its event is not taken for a repeat, which costs a record, not a path.)
 */
static __always_inline void claim_for_report(struct armor *a)
{
	a->switches = switches() | (a->switches ? 0 : CLAIM_NO_REPEAT);
}

/* ---- DFA ---- */

struct walk {
	__u32 policy;
	__u32 state; /* the current state's base; 0: dead */
	__u32 pos;   /* where the path starts in the buffer */
	__u32 end;   /* where it ends: UA_PATH_MAX, or twice that for the executable's half */
};

/* Bytes walk_bytes() reads per bpf_loop() step. The per-step work (the callback, the per-CPU
 * buffer's and the policy's lookups) is paid once for this many bytes; the cells stay one
 * array read per byte. */
#define UA_DFA_STEP 8

/* Step `i`: bytes pos + i * UA_DFA_STEP onwards, up to UA_DFA_STEP of them. The callback
 * writes nothing back but the state: where it reads is computed from `i` alone. */
static long walk_bytes(__u32 i, void *data)
{
	struct walk *w = data;
	struct ua_policy_table *pol;
	struct ua_cell *cell;
	struct scratch *s;
	__u32 state = w->state, at, idx;
	int j;

	s = get_scratch();
	pol = bpf_map_lookup_elem(&policies, &w->policy);
	if (!s || !pol) {
		w->state = 0;
		return 1;
	}
	for (j = 0; j < UA_DFA_STEP; j++) {
		at = w->pos + i * UA_DFA_STEP + j;
		if (at >= w->end)
			break;
		idx = pol->header.cells + state + pol->byte_class[(__u8)s->path[at & (2 * UA_PATH_MAX - 1)]];
		cell = bpf_map_lookup_elem(&cells, &idx);
		/* Another state's cell (or none): no transition on this byte. */
		state = cell && cell->check == state ? cell->next : 0;
		if (!state)
			break; /* the dead state never leaves */
	}
	w->state = state;
	return state ? 0 : 1;
}

/* The state DFA `policy` ends in from `start` over the path at `pos` of the object's (exe = 0)
 * or the executable's (exe = 1) half of s->path (0: dead). */
static __always_inline __u32 dfa_walk_half(__u32 policy, __u32 start, __u32 pos, __u8 exe)
{
	struct walk w = {
		.policy = policy,
		.state = start,
		.pos = pos + (exe ? UA_PATH_MAX : 0),
		.end = exe ? 2 * UA_PATH_MAX : UA_PATH_MAX,
	};

	if (pos >= UA_PATH_MAX || !start)
		return start;
	bpf_loop((UA_PATH_MAX - pos + UA_DFA_STEP - 1) / UA_DFA_STEP, walk_bytes, &w, 0);
	return w.state;
}

/* The state DFA `policy` ends in from `start` over s->path[pos..UA_PATH_MAX) (0: dead). */
static __always_inline __u32 dfa_walk(__u32 policy, __u32 start, __u32 pos)
{
	return dfa_walk_half(policy, start, pos, 0);
}

/* One transition of DFA `policy` from `state` on `byte` (0: dead). */
static __always_inline __u32 dfa_step(__u32 policy, __u32 state, __u8 byte)
{
	struct ua_policy_table *pol = bpf_map_lookup_elem(&policies, &policy);
	struct ua_cell *cell;
	__u32 idx;

	if (!pol || !state)
		return 0;
	idx = pol->header.cells + state + pol->byte_class[byte];
	cell = bpf_map_lookup_elem(&cells, &idx);
	return cell && cell->check == state ? cell->next : 0;
}

/* ---- The implicit protections' shared table ---- */

/* Policy slot 0, to which no cgroup is ever bound, holds the implicit protections' path
 * patterns as one table every policy shares (src/compile/shared.rs): walked besides the
 * unit's own table for the two classes protections have paths in. An accepting state's deny
 * entry of a class is a mask of the protections that match there, not a rule. */
#define UA_PROTECT_TABLE 0
/* Its states' bases fit in this many bits (the daemon checks), so that a path walk's packed
 * result (path.h) carries one. */
#define UA_PROTECT_STATE_BITS 17
#define UA_PROTECT_STATE_MASK ((1u << UA_PROTECT_STATE_BITS) - 1)
/* The state a walk reports when the table is not there: every protection matches (a daemon
 * writes the table before it attaches any program, so this is only ever a safeguard). */
#define UA_PSTATE_MISSING UA_PROTECT_STATE_MASK

static __always_inline bool protected_class(__u8 class)
{
	return class == UA_CLASS_WRITE || class == UA_CLASS_UNIX;
}

/* The state the protections' table ends in over s->path[pos..UA_PATH_MAX). */
static __always_inline __u32 prot_walk(__u32 pos)
{
	__u32 slot = UA_PROTECT_TABLE;
	struct ua_policy_table *pt = bpf_map_lookup_elem(&policies, &slot);

	if (!pt || !pt->header.start)
		return UA_PSTATE_MISSING;
	return dfa_walk(UA_PROTECT_TABLE, pt->header.start, pos) & UA_PROTECT_STATE_MASK;
}

static __always_inline __u32 dfa_state(struct armor *a, __u32 pos)
{
	return dfa_walk(a->binding.policy, a->start, pos);
}

static __always_inline struct ua_accept *accept_of(__u32 policy, __u32 state)
{
	struct ua_state_key sk = { .policy = policy, .state = state };

	return state ? bpf_map_lookup_elem(&accept, &sk) : 0;
}

/* ---- from= ---- */

/* ua_exe_mask()'s result: the mask, whether the task kept the path buffer throughout, and
 * whether the executable's path could be built. */
#define EXE_MASK(r) ((r) & 0x7f)
#define EXE_KEPT (1u << 8)
#define EXE_UNBUILDABLE (1u << 9)

/*
 * The from= mask of `file` (a struct file as a number), or if 0 of the current task's
 * executable (mm->exe_file, what /proc/PID/exe names: for a script its interpreter), under
 * DFA `policy` whose start state is `start`: its path, built in the executable's half of the
 * buffer, walked after UA_FROM_QUERY. A task without an executable (a kernel thread) matches
 * no pattern. A global function, like ua_path_state().
 */
__noinline __u32 ua_exe_mask(__u64 file, __u32 policy, __u32 start)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct scratch *s = get_scratch();
	__u64 before = switches();
	struct ua_accept *acc;
	struct file *exe;
	__u32 pos, state, r = 0;
	__u8 status;

	if (!s)
		return EXE_UNBUILDABLE;
	exe = file ? (struct file *)file : BPF_CORE_READ(task, mm, exe_file);
	if (exe) {
		pos = build_path(s, BPF_CORE_READ(exe, f_path.mnt), BPF_CORE_READ(exe, f_path.dentry),
				 &status, 1);
		if (status == PATH_UNBUILDABLE) {
			r = EXE_UNBUILDABLE;
		} else {
			state = dfa_walk_half(policy, dfa_step(policy, start, UA_FROM_QUERY), pos, 1);
			acc = accept_of(policy, state);
			if (acc)
				r = EXE_MASK(acc->from);
		}
	}
	return r | (switches() == before ? EXE_KEPT : 0);
}

/* ua_exe_mask() for armor `a`'s policy, once more if another task took the path buffer
 * meanwhile (see claim()); a result without EXE_KEPT lost it twice. */
static __always_inline __u32 exe_mask(struct armor *a, __u64 file)
{
	__u32 r = ua_exe_mask(file, a->binding.policy, a->pol->header.start);

	if (!(r & EXE_KEPT))
		r = ua_exe_mask(file, a->binding.policy, a->pol->header.start);
	return r;
}

/* Under a policy with from= rules: sets where the task's walks start (the start state's
 * transition on its mask) and adds the classes that are allow-lists for its executable. The
 * mask is kept in task storage with the policy's from_tag, so it is computed once per task
 * and executable. One whose executable cannot be named (a path too deep, a detached tree) or
 * whose buffer was taken twice leaves `from_lost` set: its decisions are unbuildable. */
static __always_inline void from_context(struct armor *a)
{
	__u64 tag = a->pol->header.from_tag, exec_id;
	struct task_struct *task;
	struct ua_exe_from *ef;
	__u32 r, mask, c;

	if (!tag)
		return; /* every decision of a policy without from= passes here: one test */
	task = bpf_get_current_task_btf();
	exec_id = task->self_exec_id;
	ef = bpf_task_storage_get(&exe_from, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (ef && ef->tag == tag && ef->exec_id == exec_id) {
		mask = ef->mask;
	} else {
		r = exe_mask(a, 0);
		if (!(r & EXE_KEPT) || (r & EXE_UNBUILDABLE)) {
			a->from_lost = 1;
			return;
		}
		mask = EXE_MASK(r);
		if (ef) {
			ef->mask = mask;
			ef->exec_id = exec_id;
			ef->tag = tag;
		}
	}
	a->from_mask = mask;
	a->start = dfa_step(a->binding.policy, a->pol->header.start, mask);
#pragma unroll
	for (c = 0; c < UA_NR_CLASSES; c++)
		if (a->pol->header.from_allow[c] & mask)
			a->allowlist |= 1 << c;
}

/* The rule deciding slot `slot` of the capability (net = false) or family table (net = true)
 * for armor `a`, whose from_context() ran; *audit: whether it only reports. A process no from=
 * pattern names has the policy's own table; one that some do, the strictest of their tables
 * (a refusal wins, then an audit; a missing table refuses: src/compile/from.rs, fold()). One
 * whose mask is lost is refused. */
static __always_inline __u32 slot_rule(struct armor *a, bool net, __u32 slot, bool *audit)
{
	struct ua_from_key k = { .policy = a->binding.policy };
	struct ua_from_slots *t;
	__u32 rule = UA_RULE_NONE, r, i;
	bool au;

	slot &= UA_CAP_SLOTS - 1;
	*audit = false;
	if (a->from_lost)
		return UA_RULE_UNBUILDABLE;
	if (!a->from_mask) {
		*audit = ((net ? a->pol->net_audit : a->pol->cap_audit) >> slot) & 1;
		return net ? a->pol->net_rule[slot] : a->pol->cap_rule[slot];
	}
	/* Unrolled: 6.1's verifier refuses a loop whose head follows a helper call ("back-edge
	 * from insn"), which is how clang lays this one out. */
#pragma unroll
	for (i = 0; i < UA_FROM_MAX; i++) {
		if (!(a->from_mask & (1u << i)))
			continue;
		k.pattern = i;
		t = bpf_map_lookup_elem(&from_slots, &k);
		r = UA_RULE_NOT_ALLOWED;
		au = false;
		if (t) {
			r = net ? t->net_rule[slot] : t->cap_rule[slot];
			au = ((net ? t->net_audit : t->cap_audit) >> slot) & 1;
		}
		if (r == UA_RULE_NONE)
			continue;
		if (!au && (rule == UA_RULE_NONE || *audit)) {
			rule = r;
			*audit = false;
		} else if (au && rule == UA_RULE_NONE) {
			rule = r;
			*audit = true;
		}
	}
	return rule;
}

/* Index of the lowest bit set in m (m != 0). */
static __always_inline __u32 lowest_bit(__u32 m)
{
	__u32 n = 0;

	if (!(m & 0xffff)) {
		n += 16;
		m >>= 16;
	}
	if (!(m & 0xff)) {
		n += 8;
		m >>= 8;
	}
	if (!(m & 0xf)) {
		n += 4;
		m >>= 4;
	}
	if (!(m & 0x3)) {
		n += 2;
		m >>= 2;
	}
	if (!(m & 0x1))
		n += 1;
	return n;
}

/* The protections in force for armor `a` (filled by armored()) whose patterns match a path
 * of class `class` that ended in state `pstate` of the shared table. */
static __always_inline __u32 prot_matches(struct armor *a, __u8 class, __u32 pstate)
{
	struct ua_accept *pacc;
	__u32 m;

	if (!protected_class(class) || !pstate)
		return 0;
	if (pstate == UA_PSTATE_MISSING)
		return a->pol->header.protect;
	pacc = accept_of(UA_PROTECT_TABLE, pstate);
	if (!pacc)
		return 0;
	m = pacc->deny[class & 3];
	return m == UA_RULE_NONE ? 0 : m & a->pol->header.protect;
}

#endif
