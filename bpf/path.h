/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The shared decision machinery: building an object's path in the kernel, walking a policy's
 * DFA over it, applying the policy language's precedence, and reporting the verdict.
 *
 * Paths are built from (vfsmount, dentry) up to the root of the mount namespace the object
 * lives in, not to the task's root directory: chroot changes nothing. A walk that ends
 * anywhere else (a detached or lazily unmounted tree, an open_tree() clone, a dentry reached
 * through a file handle that is not connected to the tree) cannot name the object: it is
 * "unbuildable", and denied in every class that has rules. Objects of the kernel's internal
 * mounts (pipes, sockets, memfd, anonymous inodes) are named by their dentry or file system
 * type, which no absolute pattern matches.
 */
#ifndef UNITARMOR_PATH_H
#define UNITARMOR_PATH_H

#include "maps.h"

#define EACCES 13
#define EPERM 1
#define ENOSPC 28

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
};

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
	parent = BPF_CORE_READ(dentry, d_parent);
	if (parent == dentry) {
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
unbuildable:
	pw->status = PATH_UNBUILDABLE;
stop:
	pw->done = 1;
	return 1;
}

/*
 * Writes the path of (mnt, dentry) into s->path, ending just before UA_PATH_MAX, and returns
 * where it starts; *status says whether it could be built. bpf_loop() keeps the verifier's
 * work independent of UA_PATH_DEPTH; a deeper path is unbuildable.
 */
static __always_inline __u32 build_path(struct scratch *s, struct vfsmount *vfsmnt,
					struct dentry *dentry, __u8 *status, __u8 exe)
{
	struct path_walk pw = {
		.dentry = (__u64)dentry,
		.vfsmnt = (__u64)vfsmnt,
		.pos = UA_PATH_MAX,
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

/* ---- DFA ---- */

struct walk {
	__u32 policy;
	__u32 state; /* the current state's base; 0: dead */
	__u32 pos;
};

static long walk_byte(__u32 i, void *data)
{
	struct walk *w = data;
	struct ua_policy_table *pol;
	struct ua_cell *cell;
	struct scratch *s;
	__u32 idx;
	__u8 c;

	s = get_scratch();
	pol = bpf_map_lookup_elem(&policies, &w->policy);
	if (!s || !pol) {
		w->state = 0;
		return 1;
	}
	c = s->path[(w->pos + i) & (2 * UA_PATH_MAX - 1)];
	idx = pol->header.cells + w->state + pol->byte_class[c];
	cell = bpf_map_lookup_elem(&cells, &idx);
	/* Another state's cell (or none): no transition on this byte. */
	w->state = cell && cell->check == w->state ? cell->next : 0;
	return w->state ? 0 : 1; /* the dead state never leaves */
}

/* The state DFA `policy` ends in from `start` over s->path[pos..UA_PATH_MAX) (0: dead). */
static __always_inline __u32 dfa_walk(__u32 policy, __u32 start, __u32 pos)
{
	struct walk w = { .policy = policy, .state = start, .pos = pos };

	bpf_loop(UA_PATH_MAX - pos, walk_byte, &w, 0);
	return w.state;
}

static __always_inline __u32 dfa_state(struct armor *a, __u32 pos)
{
	return dfa_walk(a->binding->policy, a->pol->header.start, pos);
}

static __always_inline struct ua_accept *accept_of(__u32 policy, __u32 state)
{
	struct ua_state_key sk = { .policy = policy, .state = state };

	return state ? bpf_map_lookup_elem(&accept, &sk) : 0;
}

/* ---- Reporting ---- */

/* What an event says besides the verdict; the object's path is s->path[pos..UA_PATH_MAX). */
struct report {
	__u32 rule;
	__u32 target_pid;
	__u32 arg;
	__u32 pos;
	__u8 class;
	__u8 op;
	__u8 verdict;
	__u8 status;
};

/* SipHash-1-3 (a keyed pseudo-random function) over the path's 8-byte words, with the
 * daemon's random 128-bit key: without the key, a process cannot find another path with the
 * same hash, so a decoy cannot make a new path's event pass for a repeat. */
static __always_inline __u64 rotl(__u64 x, int b)
{
	return (x << b) | (x >> (64 - b));
}

static __always_inline void sip_round(__u64 *v)
{
	v[0] += v[1];
	v[1] = rotl(v[1], 13);
	v[1] ^= v[0];
	v[0] = rotl(v[0], 32);
	v[2] += v[3];
	v[3] = rotl(v[3], 16);
	v[3] ^= v[2];
	v[0] += v[3];
	v[3] = rotl(v[3], 21);
	v[3] ^= v[0];
	v[2] += v[1];
	v[1] = rotl(v[1], 17);
	v[1] ^= v[2];
	v[2] = rotl(v[2], 32);
}

static __always_inline void sip_word(__u64 *v, __u64 m)
{
	v[3] ^= m;
	sip_round(v);
	v[0] ^= m;
}

/* One 8-byte word of the path, from its end: the words are aligned to the path's end at
 * UA_PATH_MAX; the first word's bytes before the path are shifted out (its length, hashed
 * last, tells the encodings apart). */
static long hash_word(__u32 i, void *data)
{
	struct scratch *s = get_scratch();
	__u64 w;

	if (!s)
		return 1;
	w = *(__u64 *)&s->path[BOUND(UA_PATH_MAX - 8 * ((__u64)i + 1), 0xff8)];
	if (i + 1 == s->hash.words)
		w >>= (8 * s->hash.skip) & 63;
	sip_word(s->hash.v, w);
	return 0;
}

/* The hash under key (k0, k1) of the len-byte path ending at UA_PATH_MAX. */
static __always_inline __u64 subject_hash(struct scratch *s, __u32 len, __u64 k0, __u64 k1)
{
	__u64 *v = s->hash.v;

	v[0] = k0 ^ 0x736f6d6570736575ULL;
	v[1] = k1 ^ 0x646f72616e646f6dULL;
	v[2] = k0 ^ 0x6c7967656e657261ULL;
	v[3] = k1 ^ 0x7465646279746573ULL;
	s->hash.words = (len + 7) / 8;
	s->hash.skip = s->hash.words * 8 - len;
	bpf_loop(s->hash.words & 1023, hash_word, 0, 0);
	sip_word(v, (__u64)len << 56);
	v[2] ^= 0xff;
	sip_round(v);
	sip_round(v);
	sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* Whether the event `k` was written less than a window ago: then it is counted in `quiet`
 * instead (false when that count cannot be kept: the event is sent). */
static __always_inline bool repeated(struct ua_repeat_key *k, __u64 now)
{
	struct ua_quiet_key qk = { .policy = k->policy, .rule = k->rule, .class = k->class,
				   .verdict = k->verdict };
	__u64 *at, *n, zero = 0;

	at = bpf_map_lookup_elem(&repeats, k);
	if (!at || (__s64)(now - *at) > (__s64)UA_FAIR_WINDOW_NS)
		return false;
	n = bpf_map_lookup_elem(&quiet, &qk);
	if (!n) {
		bpf_map_update_elem(&quiet, &qk, &zero, BPF_NOEXIST);
		n = bpf_map_lookup_elem(&quiet, &qk);
	}
	if (!n)
		return false;
	__sync_fetch_and_add(n, 1);
	return true;
}

/*
 * Sends an event for the unit whose tree's root is `root` (counting it against the unit's fair
 * share of the ring buffer). A global function: the verifier checks it once per program, not
 * once per call site, which keeps loading fast (it builds the executable's path, a bpf_loop).
 */
__noinline int ua_emit(__u64 cgid, __u64 root, __u32 policy, struct report *r, __u64 claimed)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct scratch *s = get_scratch();
	struct file *exe_file;
	struct ua_event *ev;
	__u32 len, epos;
	__u8 estatus;

	struct ua_counters zero = { .policy = policy }, *c;
	__u64 now = bpf_ktime_get_ns();
	struct ua_repeat_key rk = {};
	struct ua_config *cfg;
	__u32 recent, key0 = 0;
	bool keyed;

	if (!r || !s)
		return 0;
	len = UA_PATH_MAX - (r->pos & (UA_PATH_MAX - 1));
	if (r->pos >= UA_PATH_MAX)
		len = 0;
	/* A repeat of an event written in this window is counted, not sent (nor counted
	 * against the unit's share). Its time is set only once it was sent: a first event that
	 * was lost does not silence its repeats. */
	cfg = bpf_map_lookup_elem(&config, &key0);
	/* No key (the daemon could not get random bytes): every event is sent. */
	keyed = cfg && (cfg->key[0] | cfg->key[1]);
	rk.root = root;
	rk.hash = keyed ? subject_hash(s, len, cfg->key[0], cfg->key[1]) : 0;
	rk.policy = policy;
	rk.rule = r->rule;
	rk.arg = r->arg;
	rk.target_pid = r->target_pid;
	rk.class = r->class;
	rk.op = r->op;
	rk.verdict = r->verdict;
	/* The path is hashed from the per-CPU buffer: if the task was switched out since it
	 * claimed the buffer, another task's path may be there, and no repeat is assumed. */
	if (keyed && (!len || claimed == switches()) && repeated(&rk, now))
		return 0;
	c = bpf_map_lookup_elem(&counters, &root);
	if (!c) {
		zero.window = now;
		bpf_map_update_elem(&counters, &root, &zero, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&counters, &root);
	}
	ev = 0;
	if (c) {
		/* Racing resets of the window only blur its edge by a few events; the count itself
		 * is atomic, so threads on many CPUs do not multiply the share (the value read
		 * after the add may include other CPUs' adds: that only sheds sooner). */
		if ((__s64)(now - c->window) > (__s64)UA_FAIR_WINDOW_NS) {
			c->window = now;
			c->recent = 0;
		}
		__sync_fetch_and_add(&c->recent, 1);
		recent = c->recent;
		if (recent <= UA_FAIR_BURST ||
		    bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) < UA_EVENTS_SIZE / 2)
			ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	} else {
		/* No counter (the map is full): no share to keep, and a loss cannot be counted. */
		ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	}
	if (!ev) {
		if (c)
			__sync_fetch_and_add(&c->lost, 1);
		return 0;
	}
	ev->cgroup_id = cgid;
	ev->pid = BPF_CORE_READ(task, pid);
	ev->tgid = BPF_CORE_READ(task, tgid);
	ev->uid = BPF_CORE_READ(task, cred, uid.val);
	ev->policy = policy;
	ev->rule = r->rule;
	ev->mnt_ns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	ev->pid_ns = BPF_CORE_READ(task, nsproxy, pid_ns_for_children, ns.inum);
	ev->user_ns = BPF_CORE_READ(task, cred, user_ns, ns.inum);
	ev->class = r->class;
	ev->op = r->op;
	ev->verdict = r->verdict;
	ev->truncated = r->status == PATH_UNBUILDABLE;
	ev->target_pid = r->target_pid;
	ev->arg = r->arg;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	len &= UA_PATH_MAX - 1;
	ev->path_len = len;
	bpf_probe_read_kernel(ev->path, BOUND(len, 4095), &s->path[BOUND(r->pos, 4095)]);

	/* The executable, read here because the process may be gone when the daemon looks. */
	ev->exe_len = 0;
	exe_file = BPF_CORE_READ(task, mm, exe_file);
	if (exe_file) {
		epos = build_path(s, BPF_CORE_READ(exe_file, f_path.mnt), BPF_CORE_READ(exe_file, f_path.dentry),
				  &estatus, 1);
		len = UA_PATH_MAX - epos;
		if (len > UA_EXE_MAX - 1) {
			epos = UA_PATH_MAX - (UA_EXE_MAX - 1); /* keep the tail */
			len = UA_EXE_MAX - 1;
		}
		ev->exe_len = len;
		bpf_probe_read_kernel(ev->exe, BOUND(len, 255), &s->path[slot(1, epos)]);
	}
	bpf_ringbuf_submit(ev, 0);
	bpf_map_update_elem(&repeats, &rk, &now, BPF_ANY);
	return 0;
}

static __always_inline void emit(struct armor *a, struct scratch *s, struct report *r)
{
	ua_emit(a->cgid, a->binding->root, a->binding->policy, r, a->switches);
}

/* Reports a denial (a "would deny" under ArmorMode=audit) and returns what the hook returns. */
static __always_inline int deny(struct armor *a, struct scratch *s, struct report *r, int err)
{
	r->verdict = a->pol->header.mode == UA_MODE_AUDIT ? UA_VERDICT_WOULD_DENY : UA_VERDICT_DENIED;
	emit(a, s, r);
	return r->verdict == UA_VERDICT_DENIED ? err : 0;
}

/* ---- Decisions ---- */

/* Rules the compiler adds and the kernel checks that systemd's own set-up of a unit is not
 * held to: implicit protections and unbuildable paths. */
static __always_inline bool implicit_rule(__u32 rule)
{
	return rule == UA_RULE_UNBUILDABLE || (rule >= UA_RULE_PROTECT && rule < UA_RULE_PROTECT + 32);
}

/* Applies the policy language to a path built at s->path[pos..] whose DFA state is `state`:
 * a matching deny wins; an allow-list class denies what no allow rule matches; an audit rule
 * reports and allows. A path whose buffer was `lost` (see claim()) is unbuildable for
 * systemd's set-up too: its explicit denials might have matched. Returns 0 or -EACCES. */
static __always_inline int decide_state(struct armor *a, struct scratch *s, __u8 class, __u8 op,
					__u32 pos, __u8 status, __u32 state, bool lost)
{
	struct report r = { .class = class, .op = op, .pos = pos, .status = status };
	struct ua_accept *acc;

	if (status == PATH_UNBUILDABLE) {
		r.rule = UA_RULE_UNBUILDABLE;
	} else {
		acc = accept_of(a->binding->policy, state);
		if (acc && acc->deny[class & 3] != UA_RULE_NONE) {
			r.rule = acc->deny[class & 3];
		} else if ((a->pol->header.allowlist & (1 << class)) &&
			   !(acc && acc->allow[class & 3] != UA_RULE_NONE)) {
			r.rule = UA_RULE_NOT_ALLOWED;
		} else if (acc && acc->audit[class & 3] != UA_RULE_NONE) {
			r.rule = acc->audit[class & 3];
			r.verdict = UA_VERDICT_AUDITED;
		} else {
			return 0;
		}
	}
	if (r.verdict != UA_VERDICT_AUDITED) {
		/* systemd setting the unit up is held to the unit's explicit denials only: not
		 * to the implicit protections, unbuildable paths, or allow-lists written for the
		 * service. */
		if (!lost &&
		    (implicit_rule(r.rule) ||
		     (r.rule == UA_RULE_NOT_ALLOWED && class != UA_CLASS_EXEC)) &&
		    setup_phase())
			return 0;
		r.verdict = a->pol->header.mode == UA_MODE_AUDIT ? UA_VERDICT_WOULD_DENY :
								    UA_VERDICT_DENIED;
	}
	emit(a, s, &r);
	return r.verdict == UA_VERDICT_DENIED ? -EACCES : 0;
}

/* decide_state() for a path the caller built after claim(): the DFA walk here, and a lost
 * claim denied as unbuildable (the path cannot be built again here). */
static __always_inline int decide_built(struct armor *a, struct scratch *s, __u8 class, __u8 op,
					__u32 pos, __u8 status)
{
	__u32 state = 0;
	bool lost = false;

	if (status != PATH_UNBUILDABLE) {
		state = dfa_state(a, pos);
		lost = !claim_kept(a);
		if (lost)
			status = PATH_UNBUILDABLE;
	}
	return decide_state(a, s, class, op, pos, status, state, lost);
}

/* What ua_path_state() found, packed in its return value (the one result a global function
 * has, and the task's own, unlike the per-CPU buffer): the DFA state, where the path starts
 * in the buffer, its status, and whether the task kept the buffer throughout. */
#define BUILT_STATE(b) ((__u32)(b))
#define BUILT_POS(b) ((__u32)((b) >> 32) & (UA_PATH_MAX - 1))
#define BUILT_STATUS(b) ((__u8)(((b) >> 44) & 3))
#define BUILT_KEPT(b) (((b) >> 46) & 1)

/*
 * Builds the path of (mnt, dentry) and walks DFA `policy` over it from `start` (unbuildable
 * paths: no walk; internal objects' names only if `walk_pseudo`, for exec rules). A global function: the verifier checks it once per program,
 * not once per call site, which keeps loading fast.
 */
__noinline __u64 ua_path_state(__u64 mnt, __u64 dentry, __u32 policy, __u32 start,
			      __u32 walk_pseudo)
{
	struct scratch *s = get_scratch();
	__u64 before = switches(), state = 0, kept;
	__u32 pos;
	__u8 status;

	if (!s)
		return (__u64)PATH_UNBUILDABLE << 44;
	pos = build_path(s, (struct vfsmount *)mnt, (struct dentry *)dentry, &status, 0);
	if (status == PATH_OK || (status == PATH_PSEUDO && walk_pseudo))
		state = dfa_walk(policy, start, pos);
	kept = switches() == before;
	return state | ((__u64)(pos & (UA_PATH_MAX - 1)) << 32) | ((__u64)(status & 3) << 44) |
	       (kept << 46);
}

/* A kernel pointer as the plain number a global function may take: the verifier refuses a
 * typed pointer (a hook's argument) there, and reads only go through BPF_CORE_READ anyway. */
static __always_inline __u64 as_number(const void *p)
{
	__u64 v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), &p);
	return v;
}

/* ua_path_state(), once more if another task took the path buffer meanwhile (see claim()). */
static __always_inline __u64 path_state(struct armor *a, struct vfsmount *mnt,
					struct dentry *dentry, __u8 class)
{
	__u64 m = as_number(mnt), d = as_number(dentry);
	__u32 exec = class == UA_CLASS_EXEC;
	__u64 b;

	/* As claim(): an event may take its path for a repeat's only if the task was not
	 * switched out since (ua_emit). A retry below was, so its event is always sent. */
	claim(a);
	b = ua_path_state(m, d, a->binding->policy, a->pol->header.start, exec);

	if (!BUILT_KEPT(b))
		b = ua_path_state(m, d, a->binding->policy, a->pol->header.start, exec);
	return b;
}

/* Whether armor `a` (filled by armored()) has rules of class `class`. */
static __always_inline bool has_class(struct armor *a, __u8 class)
{
	return a->pol->header.classes & (1 << class);
}

/* Decides one operation of class `class` on (mnt, dentry) for a task armored with `a`, whose
 * policy has rules of that class. Returns 0 or -EACCES. */
static __always_inline int decide_armored(struct armor *a, __u8 class, __u8 op,
					  struct vfsmount *mnt, struct dentry *dentry)
{
	struct scratch *s;
	__u8 status;
	__u64 b;

	s = get_scratch();
	if (!s)
		return 0;
	b = path_state(a, mnt, dentry, class);
	status = BUILT_STATUS(b);
	/* Reading or writing a pipe or socket is no file access (the status comes from the
	 * kernel's objects, not the buffer); executing an in-memory file is decided (an exec
	 * allow-list names no such thing). */
	if (status == PATH_PSEUDO && class != UA_CLASS_EXEC)
		return 0;
	if (!BUILT_KEPT(b))
		status = PATH_UNBUILDABLE;
	return decide_state(a, s, class, op, BUILT_POS(b), status, BUILT_STATE(b), !BUILT_KEPT(b));
}

/* Decides one operation of class `class` on (mnt, dentry). Returns 0 or -EACCES. */
static __always_inline int decide(__u8 class, __u8 op, struct vfsmount *mnt, struct dentry *dentry)
{
	struct armor a;

	if (!armored(&a) || !has_class(&a, class))
		return 0;
	return decide_armored(&a, class, op, mnt, dentry);
}

/* The same on `path`, read only for armored tasks (each read is a helper call). */
static __always_inline int decide_path(__u8 class, __u8 op, const struct path *path)
{
	struct armor a;

	if (!armored(&a) || !has_class(&a, class))
		return 0;
	return decide_armored(&a, class, op, BPF_CORE_READ(path, mnt), BPF_CORE_READ(path, dentry));
}

/* The same on `dentry` in directory `dir` (creation and removal hooks). */
static __always_inline int decide_in(__u8 class, __u8 op, const struct path *dir,
				     struct dentry *dentry)
{
	struct armor a;

	if (!armored(&a) || !has_class(&a, class))
		return 0;
	return decide_armored(&a, class, op, BPF_CORE_READ(dir, mnt), dentry);
}

/* ---- Implicit protections checked by identity ---- */

/* Fills `a` if the current task is armored under protection `prot` and is not systemd setting
 * its unit up. */
static __always_inline bool protected(struct armor *a, __u32 prot)
{
	return armored(a) && (a->pol->header.protect & (1u << prot)) && !setup_phase();
}

/* Denies an operation under protection `prot`; the event names `name` (a kernel string, or
 * nothing) as its object. */
static __always_inline int deny_protected(struct armor *a, __u32 prot, __u8 op, const char *name,
					  __u32 target_pid, __u32 arg)
{
	struct scratch *s = get_scratch();
	struct report r = {
		.rule = UA_RULE_PROTECT + prot,
		.class = UA_CLASS_PROTECT,
		.op = op,
		.pos = UA_PATH_MAX,
		.target_pid = target_pid,
		.arg = arg,
	};
	long n;

	if (!s)
		return -EPERM;
	if (name) {
		n = bpf_probe_read_kernel_str(&s->path[UA_PATH_MAX - 256], 256, name);
		if (n > 1)
			r.pos = UA_PATH_MAX - 256;
		/* The daemon stops at the first NUL. */
	}
	return deny(a, s, &r, -EPERM);
}

/* Denies an operation under protection `prot`, naming the object by its path. */
static __always_inline int deny_protected_path(struct armor *a, __u32 prot, __u8 op,
					       struct vfsmount *mnt, struct dentry *dentry)
{
	struct scratch *s = get_scratch();
	struct report r = {
		.rule = UA_RULE_PROTECT + prot,
		.class = UA_CLASS_PROTECT,
		.op = op,
	};

	if (!s)
		return -EPERM;
	r.pos = build_path(s, mnt, dentry, &r.status, 0);
	return deny(a, s, &r, -EPERM);
}

#endif
