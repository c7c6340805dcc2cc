/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Binding at cgroup creation, and the set-up mark.
 *
 * The cgroup_mkdir tracepoint runs before any process can enter a new cgroup. It looks the
 * cgroup's path up in `expected` (filled by the daemon from each armored unit's cgroup path)
 * or, failing that, finds its parent in `bound` (sub-cgroups of a delegated unit, units inside
 * an armored slice), and binds the new cgroup id to that policy, recording which unit tree it
 * belongs to. cgroup_rmdir forgets it.
 *
 * The set-up mark: systemd forks from PID 1 and sets the unit up (mount namespaces, user
 * namespaces, cgroup attachment) inside the unit's cgroup before it executes the service. A
 * task PID 1 forks is marked; the mark is cleared at its first exec of anything but
 * systemd-executor (systemd 255+ executes that first, and it sets up the rest). The implicit
 * protections do not apply to a marked task. An inmate cannot obtain a mark: it cannot make
 * PID 1 fork into its cgroup (the bus is closed to it), and executing systemd-executor itself
 * marks nothing.
 */
#ifndef UNITARMOR_BINDING_H
#define UNITARMOR_BINDING_H

#include "path.h"
#include "pending.h"

/* Whether the NUL-terminated cgroup path of n bytes (NUL included) ends in ".slice". */
static __always_inline bool is_slice(const char *p, long n)
{
	__u32 i;

	if (n < 8 || n > UA_CGROUP_PATH_MAX)
		return false;
	i = (n - 7) & (UA_CGROUP_PATH_MAX - 1);
	if (i > UA_CGROUP_PATH_MAX - 6)
		return false;
	return p[i] == '.' && p[i + 1] == 's' && p[i + 2] == 'l' && p[i + 3] == 'i' &&
	       p[i + 4] == 'c' && p[i + 5] == 'e';
}

/* Zeroes s->template_key: hash keys compare every byte, so the tail after a name must be 0. */
static __always_inline void clear_key(struct scratch *s)
{
	int i;

	for (i = 0; i < UA_CGROUP_PATH_MAX / 8; i++)
		((__u64 *)s->template_key)[i] = 0;
}

/* Fills s->template_key with the template of the new cgroup's last component, zero-padded:
 * `/a.slice/fct@x.service` gives `fct@.service`. Returns false if that component is no
 * template instance. Keys of this form start with no '/', so they never meet a path key. */
struct scan_ctx {
	struct scratch *s;
};

static long scan_byte(__u32 i, struct scan_ctx *ctx)
{
	struct scratch *s = ctx->s;
	char c = s->cgroup_path[i & (UA_CGROUP_PATH_MAX - 1)];

	if (c == 0) {
		s->scan.end = i;
		return 1;
	}
	if (c == '/') {
		s->scan.prev = s->scan.leaf;
		s->scan.slash = i;
		s->scan.leaf = i + 1;
		s->scan.at = 0;
		s->scan.dot = 0;
		s->scan.dashes = 0;
	} else if (c == '@' && !s->scan.at) {
		s->scan.at = i;
	} else if (c == '.') {
		s->scan.dot = i;
	} else if (c == '-' && !s->scan.at && s->scan.dashes < UA_PREFIXES_MAX) {
		s->scan.dash[s->scan.dashes & (UA_PREFIXES_MAX - 1)] = i;
		s->scan.dashes++;
	}
	return 0;
}

static long copy_byte(__u32 i, struct scan_ctx *ctx)
{
	struct scratch *s = ctx->s;
	/* The name up to and including '@', then the suffix from the last '.'. */
	__u32 from = s->scan.leaf + i;

	if (from > s->scan.at)
		from = s->scan.dot + (from - s->scan.at - 1);
	if (from >= s->scan.end)
		return 1;
	s->template_key[s->scan.out++ & (UA_CGROUP_PATH_MAX - 1)] =
		s->cgroup_path[from & (UA_CGROUP_PATH_MAX - 1)];
	return 0;
}

static __always_inline bool template_key(struct scratch *s)
{
	struct scan_ctx ctx = { .s = s };

	clear_key(s);
	s->scan.leaf = s->scan.at = s->scan.dot = s->scan.out = s->scan.dashes = 0;
	s->scan.prev = s->scan.slash = 0;
	s->scan.end = UA_CGROUP_PATH_MAX;
	bpf_loop(UA_CGROUP_PATH_MAX, scan_byte, &ctx, 0);
	/* systemd escapes a unit's cgroup name with a leading '_' (cg_escape). */
	if (s->cgroup_path[s->scan.leaf & (UA_CGROUP_PATH_MAX - 1)] == '_')
		s->scan.leaf++;
	if (!s->scan.at || s->scan.dot <= s->scan.at + 1 || s->scan.end >= UA_CGROUP_PATH_MAX)
		return false;
	bpf_loop(UA_CGROUP_PATH_MAX - 1, copy_byte, &ctx, 0);
	return true;
}

/* After template_key() found no instance: fills s->template_key with the new cgroup's last
 * component itself (unescaped), zero-padded: `/x.slice/job.scope` gives `job.scope`, the
 * unit's name. Returns false if the path was too long to scan. */
static __always_inline bool unit_key(struct scratch *s)
{
	struct scan_ctx ctx = { .s = s };

	if (s->scan.end >= UA_CGROUP_PATH_MAX || s->scan.leaf >= s->scan.end)
		return false;
	clear_key(s);
	s->scan.out = 0;
	s->scan.at = UA_CGROUP_PATH_MAX; /* copy_byte() then copies the name as it is */
	bpf_loop(UA_CGROUP_PATH_MAX - 1, copy_byte, &ctx, 0);
	return true;
}

/* `e`, unless it is a pending mark (pending.h) and the unit may not wait: a mark then counts as
 * no entry. */
static __always_inline struct ua_expect *honored(struct ua_expect *e, bool may_wait)
{
	return e && (e->flags & UA_BIND_PENDING) && (!may_wait || mark_stale(e)) ? NULL : e;
}

/* After unit_key() found no unit of that name: the policy of the longest dashed prefix of the
 * name that has one (`/x.slice/run-u7.scope` looks up `run-.scope`), or NULL. systemd applies
 * `run-.scope.d` to every such unit, transient ones included, whose names are chosen at run
 * time (`systemd-run --scope`, container engines' `docker-ID.scope`); the daemon writes each
 * prefix's policy (with the shorter prefixes' rules merged in) under that key. */
static __always_inline struct ua_expect *prefix_policy(struct scratch *s, bool may_wait)
{
	struct scan_ctx ctx = { .s = s };
	struct ua_expect *exp;
	__u32 dash;
	int i;

	for (i = UA_PREFIXES_MAX - 1; i >= 0; i--) {
		if (i >= s->scan.dashes)
			continue;
		dash = s->scan.dash[i & (UA_PREFIXES_MAX - 1)];
		/* A prefix is not empty, and the suffix ('.' and the type) comes after it. */
		if (dash <= s->scan.leaf || dash >= s->scan.dot)
			continue;
		clear_key(s);
		s->scan.out = 0;
		s->scan.at = dash; /* copy_byte(): the name up to the dash, then the suffix */
		bpf_loop(UA_CGROUP_PATH_MAX - 1, copy_byte, &ctx, 0);
		exp = honored(bpf_map_lookup_elem(&expected, s->template_key), may_wait);
		if (exp)
			return exp;
	}
	return NULL;
}

static long copy_range(__u32 i, struct scan_ctx *ctx)
{
	struct scratch *s = ctx->s;
	__u32 from = s->scan.from + i;

	if (from >= s->scan.to)
		return 1;
	/* BOUND(): the compiler would drop a plain mask after the test above. */
	s->template_key[BOUND(i, 255)] = s->cgroup_path[BOUND(from, 255)];
	return 0;
}

/* Looks up the bytes [from, to) of the cgroup path as a name: a pending mark under it, or NULL
 * (a unit is never bound to a real entry found so). */
static __always_inline struct ua_expect *pending_under(struct scratch *s, __u32 from, __u32 to)
{
	struct scan_ctx ctx = { .s = s };
	struct ua_expect *e;

	if (from >= to || to >= UA_CGROUP_PATH_MAX)
		return NULL;
	clear_key(s);
	s->scan.from = from;
	s->scan.to = to;
	bpf_loop(UA_CGROUP_PATH_MAX - 1, copy_range, &ctx, 0);
	e = bpf_map_lookup_elem(&expected, s->template_key);
	return e && (e->flags & UA_BIND_PENDING) && !mark_stale(e) ? e : NULL;
}

/* After a unit found no entry of its own: a pending mark (pending.h) of its type's drop-ins
 * (`service` for `service.d/`) or of the slice it is in (`app.slice` for `app.slice.d/`), whose
 * files armor it too. */
static __always_inline struct ua_expect *pending_around(struct scratch *s)
{
	struct ua_expect *e = NULL;

	if (s->scan.dot > s->scan.leaf)
		e = pending_under(s, s->scan.dot + 1, s->scan.end);
	if (!e)
		e = pending_under(s, s->scan.prev, s->scan.slash);
	return e;
}

/* Whether the NUL-terminated cgroup path of n bytes (NUL included) ends in "/`name`" (`len`
 * bytes, at most 32). */
static __always_inline bool ends_with(const char *p, long n, const char *name, __u32 len)
{
	__u32 at, i;

	if (n < len + 2 || n > UA_CGROUP_PATH_MAX)
		return false;
	at = (n - 1 - len) & (UA_CGROUP_PATH_MAX - 1);
	if (at > UA_CGROUP_PATH_MAX - 33 || p[(at - 1) & (UA_CGROUP_PATH_MAX - 1)] != '/')
		return false;
	for (i = 0; i < 32; i++) {
		if (i >= len)
			break;
		if (p[at + i] != name[i])
			return false;
	}
	return true;
}

/* unitarmor's own units, which an armored slice never binds: the daemon must load its
 * programs, and the sync unit must reach the daemon for armored units to start. */
static __always_inline bool own_unit(const char *p, long n)
{
	return ends_with(p, n, "unitarmor.service", 17) ||
	       ends_with(p, n, "unitarmor-sync.service", 22);
}

/* Units that never wait for the daemon to read their files (pending.h): the daemon itself and
 * its sync unit (the daemon cannot let itself go), and the journal and the bus, which it talks
 * to. They are loaded from boot on, so systemd does not read their files at a start anyway. */
static __always_inline bool never_waits(const char *p, long n)
{
	return own_unit(p, n) || ends_with(p, n, "systemd-journald.service", 24) ||
	       ends_with(p, n, "dbus.service", 12) || ends_with(p, n, "dbus-broker.service", 19);
}

/* ua_cgroup_name()'s bits. */
#define NAME_OWN 1
#define NAME_NEVER_WAITS 2

/* What the new cgroup's path (the scratch buffer's, `n` bytes with its NUL) names: one of
 * unitarmor's own units (NAME_OWN), a unit that never waits (NAME_NEVER_WAITS). A global
 * function: its string compares are checked once, not along each of the many ways
 * cgroup_mkdir reaches them. */
__noinline __u32 ua_cgroup_name(long n)
{
	struct scratch *s = get_scratch();

	if (!s)
		return 0;
	if (own_unit(s->cgroup_path, n))
		return NAME_OWN | NAME_NEVER_WAITS;
	return never_waits(s->cgroup_path, n) ? NAME_NEVER_WAITS : 0;
}

/* Whether the cgroup path `path`, of which bpf_probe_read_kernel_str() read `n` bytes, is too
 * long for the key: it filled the buffer and goes on. */
static __always_inline bool long_path(const char *path, long n)
{
	char next = 0;

	if (n < UA_CGROUP_PATH_MAX)
		return false;
	bpf_probe_read_kernel(&next, 1, path + UA_CGROUP_PATH_MAX - 1);
	return next != 0;
}

SEC("tp_btf/cgroup_mkdir")
int BPF_PROG(ua_cgroup_mkdir, struct cgroup *cgrp, const char *path)
{
	struct scratch *s = get_scratch();
	struct ua_binding b = {}, *parent;
	struct ua_expect *exp, *leaf = NULL;
	__u64 id, parent_id;
	bool may_wait = false;
	__u32 name;
	long n;
	int i;

	if (!s)
		return 0;
	/* Hash keys compare every byte: the tail after the string must be zero. */
	for (i = 0; i < UA_CGROUP_PATH_MAX / 8; i++)
		((__u64 *)s->cgroup_path)[i] = 0;
	n = bpf_probe_read_kernel_str(s->cgroup_path, sizeof(s->cgroup_path), path);
	id = BPF_CORE_READ(cgrp, kn, id);

	parent_id = kn_parent_id(BPF_CORE_READ(cgrp, kn));
	parent = bpf_map_lookup_elem(&bound, &parent_id);
	exp = NULL;
	if (long_path(path, n)) {
		/* A path the key cannot hold: a cgroup PID 1 makes for a unit is keyed by its
		 * last component instead (a unit's name, as systemd escapes it, or a template's
		 * slice; the daemon does the same: kernel::cgroup_key). Only such cgroups: a
		 * unit's own deep sub-cgroup named like another unit must not pick its policy.
		 * The lookups by name below read that component as the path. */
		if ((bpf_get_current_pid_tgid() >> 32) == 1 &&
		    !(parent && !(parent->flags & UA_BIND_SLICE))) {
			for (i = 0; i < UA_CGROUP_PATH_MAX / 8; i++)
				((__u64 *)s->template_key)[i] = 0;
			bpf_probe_read_kernel_str(s->template_key, sizeof(s->template_key),
						  BPF_CORE_READ(cgrp, kn, name));
			leaf = bpf_map_lookup_elem(&expected, s->template_key);
		}
		for (i = 0; i < UA_CGROUP_PATH_MAX / 8; i++)
			((__u64 *)s->cgroup_path)[i] = 0;
		s->cgroup_path[0] = '/';
		n = 1 + bpf_probe_read_kernel_str(&s->cgroup_path[1], sizeof(s->cgroup_path) - 1,
						  BPF_CORE_READ(cgrp, kn, name));
	} else {
		exp = bpf_map_lookup_elem(&expected, s->cgroup_path);
	}
	name = ua_cgroup_name(n);
	/* An instance of an armored template, wherever its Slice= puts it: looked up by the
	 * template's name, only for cgroups the service manager (PID 1; the tracepoint runs in
	 * the mkdir caller's context) makes, and unless the parent is a unit (then the new
	 * cgroup is the unit's own sub-cgroup, whatever its name: a unit cannot pick another
	 * policy by naming one). Anyone else's cgroup named like an instance (a user's, a
	 * container's) is not bound, and so cannot fill `bound`. */
	if (!exp && (bpf_get_current_pid_tgid() >> 32) == 1 &&
	    !(parent && !(parent->flags & UA_BIND_SLICE))) {
		/* A pending mark (pending.h) holds the unit back only while a daemon runs to let
		 * it go, for 30 s at most, and never the units the daemon needs; a mark not
		 * honored is passed over, and the lookups go on. */
		may_wait = !(name & NAME_NEVER_WAITS) && daemon_alive();

		if (leaf) {
			/* Found by its last component (a long path, above): a slice by its own entry
			 * only, not by a pending mark of its drop-ins (that is its members' to
			 * honor); a unit as any entry found by its name. */
			if (is_slice(s->cgroup_path, n))
				exp = (leaf->flags & UA_BIND_SLICE) ? leaf : NULL;
			else
				exp = honored(leaf, may_wait);
		} else if (template_key(s)) {
			exp = honored(bpf_map_lookup_elem(&expected, s->template_key), may_wait);
			/* Or the instance by its own name (a pending mark: pending.h). */
			if (!exp && unit_key(s))
				exp = honored(bpf_map_lookup_elem(&expected, s->template_key),
					      may_wait);
			if (!exp && may_wait)
				exp = pending_around(s);
		}
		/* Likewise any other armored unit, by its name, wherever a Slice= set at run time
		 * puts it (a transient scope or service: `systemd-run --scope --slice=...`). A unit
		 * name is unique in the service manager, whatever its slice. */
		else if (!is_slice(s->cgroup_path, n) && unit_key(s)) {
			exp = honored(bpf_map_lookup_elem(&expected, s->template_key), may_wait);
			if (!exp)
				exp = prefix_policy(s, may_wait);
			if (!exp && may_wait)
				exp = pending_around(s);
		}
	}
	/* An entry with no policy: an instance whose own files leave it unarmored, which its
	 * template's slice or name would otherwise bind (daemon/exempt.rs). Unless a file that
	 * could change that is being written (a pending mark of its own name, its type's or its
	 * slice's drop-ins: pending.h): then it waits for the daemon, as any unit does. */
	if (exp && !exp->policy) {
		exp = NULL;
		if ((bpf_get_current_pid_tgid() >> 32) == 1 && !(name & NAME_NEVER_WAITS) &&
		    daemon_alive() && template_key(s)) {
			if (unit_key(s))
				exp = bpf_map_lookup_elem(&expected, s->template_key);
			if (exp && (!(exp->flags & UA_BIND_PENDING) || mark_stale(exp)))
				exp = NULL;
			if (!exp)
				exp = pending_around(s);
		}
		if (!exp)
			return 0;
	}
	if (exp) {
		b.policy = exp->policy;
		b.flags = exp->flags & ~UA_BIND_INSTANCES;
		b.root = id;
		/* A new instance of a template whose instances have policies of their own (found
		 * by the template's name: the daemon has none for this instance yet) waits for
		 * the daemon to bind its own, as a pending cgroup does. */
		if ((exp->flags & UA_BIND_INSTANCES) && may_wait)
			b.flags = UA_BIND_PENDING;
	} else {
		/* A sub-cgroup inherits its parent's policy: a delegated unit cannot move a
		 * process out of its policy by creating a child cgroup. Below a slice each new
		 * unit is a tree of its own; below a unit, the child stays in the unit's tree. */
		if (!parent)
			return 0;
		b.policy = parent->policy;
		if (parent->flags & UA_BIND_SLICE) {
			if (name & NAME_OWN)
				return 0;
			b.root = id;
			b.flags = is_slice(s->cgroup_path, n) ? UA_BIND_SLICE : 0;
		} else {
			/* Counted against the unit's budget (lsm/inode_mkdir refused the mkdir
			 * if there was no room). A sub-cgroup of a cgroup waiting for the daemon
			 * (systemd's DelegateSubgroup=) waits with it. */
			b.root = parent->root;
			b.flags = parent->flags & (UA_BIND_PENDING | UA_BIND_USER);
			if (!bind_cgroup(id, &b))
				tree_count(b.root, 1);
			return 0;
		}
	}
	bind_cgroup(id, &b);
	/* Counted once the binding is there: the daemon looks for new ones when this moves. */
	if (b.flags & UA_BIND_PENDING) {
		__u32 made = UA_PENDING_MADE;
		__u64 *count = bpf_map_lookup_elem(&pending_state, &made);

		if (count)
			__sync_fetch_and_add(count, 1);
	}
	return 0;
}

SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(ua_cgroup_rmdir, struct cgroup *cgrp, const char *path)
{
	__u64 id = BPF_CORE_READ(cgrp, kn, id);
	struct ua_binding *b = bpf_map_lookup_elem(&bound, &id);

	if (b && b->root == id)
		bpf_map_delete_elem(&tree_size, &id);
	else if (b)
		tree_count(b->root, -1);
	unbind_cgroup(id);
	return 0;
}

/* Whether `file` is systemd-executor, by identity (the daemon wrote its device and inode). */
static __always_inline bool is_executor(struct file *file)
{
	__u32 zero = 0;
	struct ua_config *cfg = bpf_map_lookup_elem(&settings, &zero);
	struct inode *inode = BPF_CORE_READ(file, f_inode);

	__u64 ino = BPF_CORE_READ(inode, i_ino);
	__u32 dev = BPF_CORE_READ(inode, i_sb, s_dev);

	if (!cfg)
		return false;
	return (cfg->executor[0].ino && cfg->executor[0].ino == ino && cfg->executor[0].dev == dev) ||
	       (cfg->executor[1].ino && cfg->executor[1].ino == ino && cfg->executor[1].dev == dev);
}

SEC("lsm/task_alloc")
int BPF_PROG(ua_task_alloc, struct task_struct *task, unsigned long clone_flags)
{
	struct task_struct *current = bpf_get_current_task_btf();
	__u32 *mark, *parent, value = UA_TASK_SETUP;

	/* tgid is the id in the initial PID namespace: 1 is the system's service manager. A
	 * marked task's children inherit its mark, and whether it has run the executor. */
	if (BPF_CORE_READ(current, tgid) != 1) {
		parent = bpf_task_storage_get(&task_marks, current, 0, 0);
		if (!parent || !(*parent & UA_TASK_SETUP))
			return 0;
		value = *parent & (UA_TASK_SETUP | UA_TASK_RAN_EXECUTOR);
	}
	mark = bpf_task_storage_get(&task_marks, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (mark)
		*mark = value;
	return 0;
}

/* Each stage of an exec (a script, then its interpreter) passes bprm_check_security with its
 * own file, and only the last reaches bprm_committed_creds: a marked task whose exec passed
 * anything but the executor loses its mark, even if the interpreter is the executor. */
static __always_inline void note_exec_stage(struct file *file)
{
	__u32 *mark = bpf_task_storage_get(&task_marks, bpf_get_current_task_btf(), 0, 0);

	if (mark && (*mark & UA_TASK_SETUP) && !is_executor(file))
		*mark |= UA_TASK_SAW_OTHER;
}

SEC("lsm/bprm_committed_creds")
int BPF_PROG(ua_bprm_committed_creds, struct linux_binprm *bprm)
{
	__u32 *mark = bpf_task_storage_get(&task_marks, bpf_get_current_task_btf(), 0, 0);

	if (!mark || !*mark)
		return 0;
	/* Cleared in place: deleting task storage can fail (-EBUSY) on 6.1. PID 1's child
	 * executes the executor once, which then executes the service: the mark survives one
	 * exec of the executor, and only one. */
	if (!is_executor(BPF_CORE_READ(bprm, file)) ||
	    (*mark & (UA_TASK_SAW_OTHER | UA_TASK_RAN_EXECUTOR)))
		*mark = 0;
	else
		*mark |= UA_TASK_RAN_EXECUTOR;
	return 0;
}

#endif
