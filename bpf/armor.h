/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The current task's armor, read from the maps: its cgroup's binding and policy (armored()),
 * its set-up mark, the system call it is in, and unit membership.
 */
#ifndef UNITARMOR_ARMOR_H
#define UNITARMOR_ARMOR_H

#include "maps.h"

/* The current task's armor: its cgroup id, binding and policy. */
struct armor {
	__u64 cgid;
	/* A copy of the cgroup's binding, taken once (see armored()). */
	struct ua_binding binding;
	struct ua_policy_table *pol;
	__u64 switches; /* the task's context switches when it took the path buffer (path.h) */
	/* armored() said no because the cgroup waits for the daemon (UA_BIND_PENDING) and the
	 * task is systemd's set-up, which runs meanwhile (pending.h). */
	__u8 waiting;
	/* Where this task's DFA walks start and which classes are allow-lists for it: the
	 * policy's, or under from= rules those for its executable (walk.h: from_context()). */
	__u32 start;
	__u8 allowlist;
	__u8 from_mask; /* which of its policy's from= patterns its executable matches */
	__u8 from_lost; /* its from= mask could not be computed: decisions are unbuildable */
	/* Set by the last path decision if it allowed (decided.h): 1, without a word to say (no
	 * deny, protection, allow-list refusal or audit rule matched), `quiet_rule` being the
	 * allow rule it was counted against (UA_RULE_NONE: none); 2, reported by audit rule
	 * `quiet_rule` in an event it sent (not a repeat). */
	__u8 quiet;
	__u32 quiet_rule;
};

/* Whether `task` is systemd setting a unit up: PID 1 forked it and it has executed nothing
 * but systemd-executor since. */
static __always_inline bool marked(struct task_struct *task)
{
	__u32 *mark = bpf_task_storage_get(&task_marks, task, 0, 0);

	return mark && (*mark & UA_TASK_SETUP);
}

/* Copies cgroup `cgid`'s binding into `b`; false if it has none. The copy is checked against
 * the element's key, which a hash map keeps just before the value: on 6.1 a freed element (a
 * cgroup rebound meanwhile: an update replaces the element) can be handed to another cgroup
 * at once, while a reader still holds it. A copy that another cgroup's binding may have
 * overwritten is taken again, and if that one is also overwritten, it refuses everything
 * (fail closed). x86-64 keeps the loads in order, and an element's key is written before its
 * value. */
static __always_inline bool read_binding(__u64 cgid, struct ua_binding *b)
{
	struct ua_binding *e;
	__u64 key;
	int i;

	if (!maybe_bound(cgid))
		return false;
	for (i = 0; i < 2; i++) {
		e = bpf_map_lookup_elem(&bound, &cgid);
		if (!e)
			return false;
		*b = *e;
		barrier();
		key = 0;
		if (!bpf_probe_read_kernel(&key, sizeof(key), (void *)e - sizeof(key)) && key == cgid)
			return true;
	}
	/* Nothing of the other cgroup's binding is kept: its tree, its waiting. */
	b->policy = UA_MAX_POLICIES - 1;
	b->root = cgid;
	b->flags = 0;
	return true;
}

/* Fills `a` and returns true if the current task is armored. Unarmored tasks pay this one
 * hash lookup and nothing else. */
static __always_inline bool armored(struct armor *a)
{
	a->cgid = bpf_get_current_cgroup_id();
	a->switches = 0; /* no claim on the path buffer yet (path.h) */
	a->waiting = 0;
	if (!read_binding(a->cgid, &a->binding) || !a->binding.policy)
		return false;
	/* A cgroup waiting for the daemon is bound to the policy that refuses everything; systemd's
	 * own set-up in it runs, and the unit's first exec waits (pending.h). */
	if ((a->binding.flags & UA_BIND_PENDING) && marked(bpf_get_current_task_btf())) {
		a->waiting = 1;
		return false;
	}
	a->pol = bpf_map_lookup_elem(&policies, &a->binding.policy);
	if (!a->pol)
		return false;
	a->start = a->pol->header.start;
	a->allowlist = a->pol->header.allowlist;
	a->from_mask = 0;
	a->from_lost = 0;
	a->quiet = 0;
	return true;
}

/* Whether the current task may be armored: the bound filter's one array read, false for almost
 * every unarmored task. For hooks that find the armor again in a global function (net.h,
 * procs.h) and keep their own frame small; a false answer is exact, a true one is checked
 * there. */
static __always_inline bool maybe_armored(void)
{
	return maybe_bound(bpf_get_current_cgroup_id());
}

static __always_inline bool setup_phase(void)
{
	return marked(bpf_get_current_task_btf());
}

#define X32_SYSCALL_BIT 0x40000000

/* The number of the system call the current task is in, or -1 if this architecture's saved
 * registers are not known here. */
static __always_inline long syscall_nr(void)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	struct pt_regs___arm64 *arm = (void *)regs;

	if (bpf_core_field_exists(regs->orig_ax))
		return BPF_CORE_READ(regs, orig_ax) & ~X32_SYSCALL_BIT;
	if (bpf_core_field_exists(arm->syscallno))
		return BPF_CORE_READ(arm, syscallno);
	return -1;
}

/* Tags syscall_abi_nr()'s number of a 32-bit system call made on a 64-bit kernel: `int $0x80`
 * on x86-64 (any process may make one) or an AArch32 task on arm64. Its number is then the
 * i386 or arm table's, not the native one. */
#define UA_NR_COMPAT 0x20000000
#define TS_COMPAT 0x0002
#define TIF_32BIT 22

/* syscall_nr(), with UA_NR_COMPAT set for a 32-bit system call. */
static __always_inline long syscall_abi_nr(void)
{
	struct task_struct *t = bpf_get_current_task_btf();
	long nr = syscall_nr();

	if (nr < 0)
		return nr;
	if (bpf_core_field_exists(t->thread_info.status)) {
		if (BPF_CORE_READ(t, thread_info.status) & TS_COMPAT)
			nr |= UA_NR_COMPAT;
	} else if (BPF_CORE_READ(t, thread_info.flags) & (1ul << TIF_32BIT)) {
		nr |= UA_NR_COMPAT;
	}
	return nr;
}

/* A call an architecture lacks: no system call has this number (-1 is arm64's "none"). */
#define NR_NONE (-2)

/* Whether syscall_abi_nr()'s `nr` is the system call numbered `x86_64`, `arm64`, `i386` or
 * `arm` in the table of the current call's ABI (the saved registers tell the architecture, as
 * for syscall_nr(); UA_NR_COMPAT a 32-bit call). */
static __always_inline bool nr_is(long nr, long x86_64, long arm64, long i386, long arm)
{
	bool x86 = bpf_core_field_exists(((struct pt_regs *)0)->orig_ax);

	if (nr < 0)
		return false;
	if (nr & UA_NR_COMPAT)
		return (nr & ~UA_NR_COMPAT) == (x86 ? i386 : arm);
	return nr == (x86 ? x86_64 : arm64);
}

/* Forgets the current task's netlink note (protect.h): it is sending on another socket now,
 * whose own checks (SCM_CREDENTIALS naming an ancestor asks CAP_SYS_ADMIN) are not a netlink
 * handler's. */
static __always_inline void forget_netlink_send(void)
{
	struct ua_netlink_send *ns =
		bpf_task_storage_get(&netlink_sends, bpf_get_current_task_btf(), 0, 0);

	if (ns)
		ns->set = 0;
}

/* Whether cgroup `cgid` belongs to the unit tree whose root is `root`. */
static __always_inline bool in_unit(__u64 cgid, __u64 root)
{
	struct ua_binding *b = bpf_map_lookup_elem(&bound, &cgid);

	return b && b->root == root;
}

#endif
