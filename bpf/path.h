/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The decisions every hook shares: applying the policy language's precedence to a path's DFA
 * state (a matching deny wins, an allow-list refuses what it does not name, audit reports),
 * and the implicit protections checked by identity. Paths are built and matched by walk.h,
 * verdicts reported by report.h.
 */
#ifndef UNITARMOR_PATH_H
#define UNITARMOR_PATH_H

#include "report.h"

/* ---- Decisions ---- */

/* Rules the compiler adds and the kernel checks that systemd's own set-up of a unit is not
 * held to: implicit protections and unbuildable paths. */
static __always_inline bool implicit_rule(__u32 rule)
{
	return rule == UA_RULE_UNBUILDABLE || (rule >= UA_RULE_PROTECT && rule < UA_RULE_PROTECT + 32);
}

/* What systemd setting a unit up is held to all the same: opening for writing, or creating, a
 * file under the `unit-files` or `runs-as-root` protections (but setup_scratch()'s). The
 * set-up opens the unit's StandardOutput=file:/append:/truncate: targets as root, following
 * whatever symlink the service left there since its last start (one to its own drop-in, or
 * into /etc/cron.d/). It makes directories there (RuntimeDirectory=systemd/...), which stay
 * allowed. */
static __always_inline bool setup_held(__u8 op, __u32 rule)
{
	return (op == UA_OP_OPEN_WRITE || op == UA_OP_CREATE) &&
	       (rule == UA_RULE_PROTECT + UA_PROT_UNIT_FILES ||
		rule == UA_RULE_PROTECT + UA_PROT_RUNS_AS_ROOT);
}

/* An 8-byte word as it reads in memory (little-endian), for comparing path bytes. */
#define WORD8(a, b, c, d, e, f, g, h)                                                          \
	((__u64)(a) | (__u64)(b) << 8 | (__u64)(c) << 16 | (__u64)(d) << 24 |                \
	 (__u64)(e) << 32 | (__u64)(f) << 40 | (__u64)(g) << 48 | (__u64)(h) << 56)

/* Whether the path at s->path[pos..] is systemd's own run-time space under `unit-files`: in
 * /run/systemd/ but not a directory units are read from (system/, system.control/,
 * system.attached/, transient/, generator*, user/). The set-up makes and writes files there:
 * DynamicUser='s /run/systemd/dynamic-uid/ locks, mount points in /run/systemd/unit-root/,
 * systemd 255 and later's private /dev in /run/systemd/namespace-XXXXXX. */
static __always_inline bool setup_scratch(struct scratch *s, __u32 pos)
{
	__u64 at, next;

	/* At least "/run/systemd/x". Past the end of a shorter path the bytes are the buffer's
	 * other half: only a file named `user` right in /run/systemd/ could be taken for
	 * scratch space by them. Read in place (unaligned loads; no copy on the stack). */
	if (pos > UA_PATH_MAX - 14)
		return false;
	at = BOUND(pos, 4095);
	/* "/run/systemd/", then the next component's first eight bytes. */
	if (*(__u64 *)&s->path[at] != WORD8('/', 'r', 'u', 'n', '/', 's', 'y', 's') ||
	    (*(__u64 *)&s->path[at + 8] & 0xffffffffff) != WORD8('t', 'e', 'm', 'd', '/', 0, 0, 0))
		return false;
	next = *(__u64 *)&s->path[at + 13];
	return (next & 0xffffffffffff) != WORD8('s', 'y', 's', 't', 'e', 'm', 0, 0) &&
	       next != WORD8('t', 'r', 'a', 'n', 's', 'i', 'e', 'n') &&
	       next != WORD8('g', 'e', 'n', 'e', 'r', 'a', 't', 'o') &&
	       (next & 0xffffffffff) != WORD8('u', 's', 'e', 'r', '/', 0, 0, 0);
}

/* Applies the policy language to a path built at s->path[pos..] whose DFA state is `state`:
 * a matching deny wins; an allow-list class denies what no allow rule matches; an audit rule
 * reports and allows. A path whose buffer was `lost` (see claim()) is unbuildable for
 * systemd's set-up too: its explicit denials might have matched. Returns 0 or -EACCES. */
static __always_inline int decide_state(struct armor *a, struct scratch *s, __u8 class, __u8 op,
					__u32 pos, __u8 status, __u32 state, __u32 pstate, bool lost)
{
	struct report r = { .class = class, .op = op, .pos = pos, .status = status };
	struct ua_accept *acc;
	__u32 prot, emits;

	if (status == PATH_UNBUILDABLE) {
		r.rule = UA_RULE_UNBUILDABLE;
	} else {
		acc = accept_of(a->binding.policy, state);
		prot = prot_matches(a, class, pstate);
		/* An explicit `allow connect unix:` lifts a protection's refusal of that socket
		 * (`check` warns); for files only ArmorExempt= lifts one. */
		if (class == UA_CLASS_UNIX && acc && acc->allow[UA_CLASS_UNIX] < UA_RULE_PROTECT)
			prot = 0;
		if (acc && acc->deny[class & 3] != UA_RULE_NONE) {
			r.rule = acc->deny[class & 3];
		} else if (prot) {
			r.rule = UA_RULE_PROTECT + lowest_bit(prot);
		} else if ((a->allowlist & (1 << class)) &&
			   !(acc && acc->allow[class & 3] != UA_RULE_NONE)) {
			r.rule = UA_RULE_NOT_ALLOWED;
		} else if (acc && acc->audit[class & 3] != UA_RULE_NONE) {
			r.rule = acc->audit[class & 3];
			r.verdict = UA_VERDICT_AUDITED;
		} else {
			/* Allowed: counted against the allow rule that let it through, if any (an
			 * allow-list's own rules; not the implicit entries every unit has). */
			a->quiet = 1;
			a->quiet_rule = UA_RULE_NONE;
			if (acc && acc->allow[class & 3] < UA_RULE_PROTECT) {
				a->quiet_rule = acc->allow[class & 3];
				ua_count(a->binding.policy, acc->allow[class & 3], class,
					 UA_HIT_ALLOWED);
			}
			return 0;
		}
	}
	if (r.verdict != UA_VERDICT_AUDITED) {
		/* systemd setting the unit up is held to the unit's explicit denials only: not
		 * to the implicit protections (but setup_held()'s), unbuildable paths, or
		 * allow-lists written for the service. */
		if (!lost &&
		    (implicit_rule(r.rule) ||
		     (r.rule == UA_RULE_NOT_ALLOWED && class != UA_CLASS_EXEC)) &&
		    !(setup_held(op, r.rule) && !setup_scratch(s, pos)) && setup_phase())
			return 0;
		r.verdict = a->pol->header.mode == UA_MODE_AUDIT ? UA_VERDICT_WOULD_DENY :
								    UA_VERDICT_DENIED;
	}
	emits = s ? s->hash.emits + 1 : 0;
	emit(a, s, &r);
	/* An audited allowance whose event went out: one the decision cache may remember until
	 * a window after the event (decided.h). Only if this call was the buffer's one call
	 * since (no other program on this CPU, an interrupt's included, emitted meanwhile), by
	 * a task that kept the buffer since its claim. */
	if (r.verdict == UA_VERDICT_AUDITED && s && s->hash.emits == emits &&
	    s->hash.sent == emits && claim_kept(a)) {
		a->quiet = 2;
		a->quiet_rule = r.rule;
	}
	return r.verdict == UA_VERDICT_DENIED ? -EACCES : 0;
}

/* decide_state() for a path the caller built after claim(): the DFA walk here, and a lost
 * claim denied as unbuildable (the path cannot be built again here). */
static __always_inline int decide_built(struct armor *a, struct scratch *s, __u8 class, __u8 op,
					__u32 pos, __u8 status)
{
	__u32 state = 0, pstate = 0;
	bool lost = false;

	if (status != PATH_UNBUILDABLE) {
		from_context(a); /* in the buffer's other half */
		state = dfa_state(a, pos);
		if (protected_class(class))
			pstate = prot_walk(pos);
		lost = !claim_kept(a) || a->from_lost;
		if (lost)
			status = PATH_UNBUILDABLE;
	}
	return decide_state(a, s, class, op, pos, status, state, pstate, lost);
}

/* What ua_path_state() found, packed in its return value (the one result a global function
 * has, and the task's own, unlike the per-CPU buffer): the policy's DFA state, where the path
 * starts in the buffer, its status, whether the task kept the buffer throughout, and the
 * state of the protections' shared table (0 if not walked). */
#define BUILT_STATE(b) ((__u32)(b))
#define BUILT_POS(b) ((__u32)((b) >> 32) & (UA_PATH_MAX - 1))
#define BUILT_STATUS(b) ((__u8)(((b) >> 44) & 3))
#define BUILT_KEPT(b) (((b) >> 46) & 1)
#define BUILT_PSTATE(b) ((__u32)((b) >> 47) & UA_PROTECT_STATE_MASK)

/*
 * Builds the path of (mnt, dentry) and walks DFA `policy` over it from `start` (unbuildable
 * paths: no walk; internal objects' names only with WALK_PSEUDO, for exec rules), and the
 * protections' shared table with WALK_PROT. A global function: the verifier checks it once per
 * program, not once per call site, which keeps loading fast (and takes five arguments at most).
 */
#define WALK_PSEUDO 1
#define WALK_PROT 2
__noinline __u64 ua_path_state(__u64 mnt, __u64 dentry, __u32 policy, __u32 start, __u32 flags)
{
	struct scratch *s = get_scratch();
	__u64 before = switches(), state = 0, pstate = 0, kept;
	__u32 pos;
	__u8 status;

	if (!s)
		return (__u64)PATH_UNBUILDABLE << 44;
	pos = build_path(s, (struct vfsmount *)mnt, (struct dentry *)dentry, &status, 0);
	if (status == PATH_OK || (status == PATH_PSEUDO && (flags & WALK_PSEUDO)))
		state = dfa_walk(policy, start, pos);
	if (status == PATH_OK && (flags & WALK_PROT))
		pstate = prot_walk(pos);
	kept = switches() == before;
	return state | ((__u64)(pos & (UA_PATH_MAX - 1)) << 32) | ((__u64)(status & 3) << 44) |
	       (kept << 46) | ((pstate & UA_PROTECT_STATE_MASK) << 47);
}

/* ua_path_state() from `start`, once more if another task took the path buffer meanwhile (see
 * claim()). */
static __always_inline __u64 path_state(struct armor *a, struct vfsmount *mnt,
					struct dentry *dentry, __u8 class, __u32 start)
{
	__u64 m = as_number(mnt), d = as_number(dentry);
	__u32 flags = (class == UA_CLASS_EXEC ? WALK_PSEUDO : 0) |
		      (protected_class(class) ? WALK_PROT : 0);
	__u64 b;

	/* As claim(): the event (ua_emit) keeps the path, and may take it for a repeat's, only
	 * if the task was not switched out since the claim. A retry claims the buffer anew: a
	 * retry that keeps it sends its path, which is the task's own. */
	claim(a);
	b = ua_path_state(m, d, a->binding.policy, start, flags);

	if (!BUILT_KEPT(b)) {
		claim(a);
		b = ua_path_state(m, d, a->binding.policy, start, flags);
	}
	return b;
}

/* Whether armor `a` (filled by armored()) has rules of class `class`. */
static __always_inline bool has_class(struct armor *a, __u8 class)
{
	return a->pol->header.classes & (1 << class);
}

/* decide_armored() once from_context() has run for `a`. */
static __always_inline int decide_in_context(struct armor *a, __u8 class, __u8 op,
					     struct vfsmount *mnt, struct dentry *dentry)
{
	struct scratch *s;
	__u8 status;
	__u64 b;

	s = get_scratch();
	if (!s)
		return 0;
	b = path_state(a, mnt, dentry, class, a->start);
	status = BUILT_STATUS(b);
	/* Reading or writing a pipe or socket is no file access (the status comes from the
	 * kernel's objects, not the buffer); executing an in-memory file is decided (an exec
	 * allow-list names no such thing). */
	if (status == PATH_PSEUDO && class != UA_CLASS_EXEC)
		return 0;
	if (!BUILT_KEPT(b) || a->from_lost)
		status = PATH_UNBUILDABLE;
	return decide_state(a, s, class, op, BUILT_POS(b), status, BUILT_STATE(b), BUILT_PSTATE(b),
			    !BUILT_KEPT(b) || a->from_lost);
}

/* Decides one operation of class `class` on (mnt, dentry) for a task armored with `a`, whose
 * policy has rules of that class. Returns 0 or -EACCES. */
static __always_inline int decide_armored(struct armor *a, __u8 class, __u8 op,
					  struct vfsmount *mnt, struct dentry *dentry)
{
	from_context(a);
	return decide_in_context(a, class, op, mnt, dentry);
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

/* The same for `a`, already filled by armored(). */
static __always_inline bool protects(struct armor *a, __u32 prot)
{
	return (a->pol->header.protect & (1u << prot)) && !setup_phase();
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
		claim_for_report(a);
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
	claim_for_report(a);
	r.pos = build_path(s, mnt, dentry, &r.status, 0);
	return deny(a, s, &r, -EPERM);
}

#endif
