/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Reporting a verdict: the event sent to the daemon through the ring buffer, each unit's fair
 * share of it, and the counting of repeated events in the kernel (keyed by a SipHash of the
 * object's path).
 */
#ifndef UNITARMOR_REPORT_H
#define UNITARMOR_REPORT_H

#include "walk.h"

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

/* The state for key (k0, k1). */
static __always_inline void sip_init(__u64 *v, __u64 k0, __u64 k1)
{
	v[0] = k0 ^ 0x736f6d6570736575ULL;
	v[1] = k1 ^ 0x646f72616e646f6dULL;
	v[2] = k0 ^ 0x6c7967656e657261ULL;
	v[3] = k1 ^ 0x7465646279746573ULL;
}

/* The hash, once every word is in. */
static __always_inline __u64 sip_finish(__u64 *v)
{
	v[2] ^= 0xff;
	sip_round(v);
	sip_round(v);
	sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
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

	sip_init(v, k0, k1);
	s->hash.words = (len + 7) / 8;
	s->hash.skip = s->hash.words * 8 - len;
	bpf_loop(s->hash.words & 1023, hash_word, 0, 0);
	sip_word(v, (__u64)len << 56);
	return sip_finish(v);
}

/* Counts a repeat of an event of (policy, rule, class, verdict) in `quiet`, for the daemon to
 * read; false if it cannot be counted (then the event must be sent). */
static __always_inline bool count_quiet(__u32 policy, __u32 rule, __u8 class, __u8 verdict)
{
	struct ua_quiet_key qk = { .policy = policy, .rule = rule, .class = class,
				   .verdict = verdict };
	__u64 *n, zero = 0;

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

/* Whether the event `k` was written less than a window ago: then it is counted in `quiet`
 * instead (false when that count cannot be kept: the event is sent). */
static __always_inline bool repeated(struct ua_repeat_key *k, __u64 now)
{
	__u64 *at = bpf_map_lookup_elem(&repeats, k);

	if (!at || (__s64)(now - *at) > (__s64)UA_FAIR_WINDOW_NS)
		return false;
	return count_quiet(k->policy, k->rule, k->class, k->verdict);
}

/* Counts one decision of rule `rule` of `policy` for `class`, with outcome `hit` (UA_HIT_*).
 * A global function: one copy for every call site. */
__noinline int ua_count(__u32 policy, __u32 rule, __u32 class, __u32 hit)
{
	struct ua_hits_key k = { .policy = policy, .rule = rule, .class = class };
	struct ua_hits zero = {}, *h;

	h = bpf_map_lookup_elem(&hits, &k);
	if (!h) {
		bpf_map_update_elem(&hits, &k, &zero, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hits, &k);
	}
	/* Per CPU, but a program preempted on a preemptible kernel shares its CPU's copy. */
	if (h)
		__sync_fetch_and_add(&h->n[hit & 3], 1);
	return 0;
}

/* The counters of the unit tree whose root is `root` (policy `policy`), made if missing; 0 if
 * the map is full. A function of its own: the value it makes is on its own stack, not on
 * ua_emit()'s, whose frame adds up with the deepest calls below it (build_path()). */
static __noinline struct ua_counters *counters_of(__u64 root, __u32 policy, __u64 now)
{
	struct ua_counters zero = { .policy = policy, .window = now }, *c;

	c = bpf_map_lookup_elem(&counters, &root);
	if (!c) {
		bpf_map_update_elem(&counters, &root, &zero, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&counters, &root);
	}
	return c;
}

/*
 * Sends an event for the unit whose tree's root is `root` (counting it against the unit's fair
 * share of the ring buffer). A global function: the verifier checks it once per program, not
 * once per call site, which keeps loading fast (it builds the executable's path, a bpf_loop).
 * Sets s->hash.sent to s->hash.emits (which emit() counts up before each call) if the event
 * was sent and its time kept for its repeats (not a repeat, not lost to a full ring buffer),
 * for the decision cache (decided.h): in the per-CPU buffer rather than a return value,
 * which costs this function a stack slot, and its stack adds up with its callers'.
 */
__noinline int ua_emit(__u64 cgid, __u64 root, __u32 policy, struct report *r, __u64 claimed)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct scratch *s = get_scratch();
	struct file *exe_file;
	struct kernfs_node *kn;
	struct ua_event *ev;
	struct bpf_dynptr dp;
	bool send = true;
	__u32 len, epos;
	__u8 estatus;
	int i;

	struct ua_counters *c;
	__u64 now = bpf_ktime_get_ns();
	struct ua_repeat_key rk = {};
	struct ua_config *cfg;
	__u32 recent, key0 = 0;
	bool keyed;

	if (!r || !s)
		return 0;
	/* Every decision is counted, sent or not (a repeat, a full ring buffer). */
	ua_count(policy, r->rule, r->class,
		 r->verdict == UA_VERDICT_AUDITED ? UA_HIT_AUDITED :
		 r->verdict == UA_VERDICT_WOULD_DENY ? UA_HIT_WOULD_DENY : UA_HIT_DENIED);
	len = UA_PATH_MAX - (r->pos & (UA_PATH_MAX - 1));
	if (r->pos >= UA_PATH_MAX)
		len = 0;
	/* A repeat of an event written in this window is counted, not sent (nor counted
	 * against the unit's share). Its time is set only once it was sent: a first event that
	 * was lost does not silence its repeats. */
	cfg = bpf_map_lookup_elem(&settings, &key0);
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
	c = counters_of(root, policy, now);
	/* No counter (the map is full): no share to keep, and a loss cannot be counted. */
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
		send = recent <= UA_FAIR_BURST ||
		       bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) < UA_EVENTS_SIZE / 2;
	}
	len &= UA_PATH_MAX - 1;
	/* The header and the path's own bytes (unitarmor.h): a record of that size, reserved as
	 * a dynptr (its size is known only now), with the header written through a slice of
	 * it. A failed reservation's dynptr is released all the same, as the verifier wants. */
	ev = 0;
	if (send) {
		if (bpf_ringbuf_reserve_dynptr(&events, UA_EVENT_HEAD + len, 0, &dp)) {
			bpf_ringbuf_discard_dynptr(&dp, 0);
		} else {
			/* The path at once, as it was read into the record before: r->pos + len
			 * is UA_PATH_MAX (the path ends the per-CPU buffer's first slot). */
			bpf_dynptr_write(&dp, UA_EVENT_HEAD, &s->path[BOUND(r->pos, 4095)],
					 BOUND(len, 4095), 0);
			ev = bpf_dynptr_data(&dp, 0, UA_EVENT_HEAD);
			if (!ev)
				bpf_ringbuf_discard_dynptr(&dp, 0);
		}
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
	/* Copied above from the per-CPU buffer: if the task was switched out since it claimed the
	 * buffer, another task's program may have written its own path there (walk.h), so the
	 * copy says nothing of this one's. The record keeps the bytes; the event has no path,
	 * as one that could not be built. Every path an event sends was written under a claim
	 * (claim(), claim_for_report()); a claim can be 0 (a new task not yet switched out). */
	if (len && (claimed & ~CLAIM_NO_REPEAT) != switches()) {
		ev->path_len = 0;
		ev->truncated = 1;
	} else {
		ev->path_len = len;
	}

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
	/* The unit's cgroup name, read here because the cgroup may be gone when the daemon
	 * looks: from the task's cgroup up to the root of its tree (a few levels at most below
	 * a unit: DelegateSubgroup=, a container's payload). */
	ev->unit[0] = 0;
	kn = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn);
	for (i = 0; i < 8 && kn; i++) {
		if (BPF_CORE_READ(kn, id) == root) {
			bpf_probe_read_kernel_str(ev->unit, sizeof(ev->unit), BPF_CORE_READ(kn, name));
			break;
		}
		kn = kn_parent(kn);
	}
	bpf_ringbuf_submit_dynptr(&dp, 0);
	/* Sent, and its repeats will be known as such: the cache may stand for them. */
	if (!bpf_map_update_elem(&repeats, &rk, &now, BPF_ANY))
		s->hash.sent = s->hash.emits;
	return 0;
}

static __always_inline void emit(struct armor *a, struct scratch *s, struct report *r)
{
	if (s)
		s->hash.emits++;
	ua_emit(a->cgid, a->binding.root, a->binding.policy, r, a->switches);
}

/* Reports a denial (a "would deny" under ArmorMode=audit) and returns what the hook returns. */
static __always_inline int deny(struct armor *a, struct scratch *s, struct report *r, int err)
{
	r->verdict = a->pol->header.mode == UA_MODE_AUDIT ? UA_VERDICT_WOULD_DENY : UA_VERDICT_DENIED;
	emit(a, s, r);
	return r->verdict == UA_VERDICT_DENIED ? err : 0;
}

#endif
