/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The decision cache: an open or executable mapping that a unit's policy allowed with nothing
 * to say (no deny, protection or allow-list refusal matched; an audit rule only if its event
 * went out) is remembered under a keyed hash of everything that decision depended on, so that
 * the next one of the same file, by the same name, under the same policy, skips building its
 * path and walking the DFA. An audited one stands for its event's repeats only while report.h
 * would count them as such (the event's window, the same unit tree), which is what makes an
 * audit rule on a hot path (a web root) cost a hash and not a path walk per open. Every input
 * the path decision reads is either in the hash or counted by an epoch in it:
 *
 * - The file: its dentry and the hash of its name, inode, inode number and generation. Only
 *   regular files of one link (i_nlink == 1) are remembered, so a dentry freed and made again
 *   for that inode has the same name; a second link makes the file one the cache leaves alone.
 * - Its name: the names of the dentry and its ancestors change only by a rename, and a name is
 *   freed only by an unlink. Programs on entry to and exit from d_move(), d_exchange() and
 *   d_delete() count name changes begun and ended (an end only if its beginning was counted,
 *   noted on the task): while one is under way (the counts differ) nothing is remembered or
 *   looked up, and the ended count is in the hash, so a decision made before a change is never
 *   found after it. A program the kernel skipped (its recursion guard), or a note that could
 *   not be made or found, leaves the counts apart for good: the cache is then off. Only file systems whose
 *   names change only through those are remembered: ext4, xfs, btrfs, tmpfs and ramfs, for the
 *   file and every mount above it (network and FUSE file systems move dentries on their own).
 * - Its mounts: each mount from the file's up to the top of its tree, with its root and the
 *   mountpoint it sits on, and the top's namespace with its never-reused sequence number and
 *   root, hashed on their own, so that a moved, unmounted, pivoted or new mount looks up
 *   another key. Reading them costs a helper call per object, so a task keeps its last file
 *   mount's hash while the kernel's mount_lock count says no mount changed since
 *   (mounts_hash()).
 * - The policy: the unit's policy id, where its walks start and which classes are allow-lists
 *   (both the policy's, or its from= patterns' for the task's executable, whose mask too), and
 *   the daemon's count of policy headers written, begun and ended like the names' (a new
 *   policy in a reused id, a removed policy's refusing header). The counts are read before the
 *   binding and the header are (ua_file_open), so a decision never pairs a count with an older
 *   header.
 * - The class (read, write, or exec for a mapping) and the daemon's random key (no key: no
 *   cache).
 *
 * A decision is stored only if the counts, and the key computed again, are what they were
 * before it was made. A hit is counted against its allow rule like the decision it stands
 * for. The counts are read with plain loads in that order, which x86-64's memory model keeps
 * in order: elsewhere the cache is off.
 */
#ifndef UNITARMOR_DECIDED_H
#define UNITARMOR_DECIDED_H

#include "path.h"

/* Mounts followed from a file's to the top of its tree; a file deeper in mounts is not
 * remembered. */
#define UA_DECIDED_MOUNTS 6

/* How long a task's hash of its mounts is used: ten seconds, far shorter than bringing
 * mount_lock's 32-bit count round to the same value would take (2^31 changes, each a section
 * under its one spinlock, one CPU at a time: at 50 million a second, 43 s). */
#define UA_MOUNTS_MEMO_NS 10000000000ULL

/* A name change begins: counted, and noted on the task. The programs run for every task,
 * armored or not. A note that cannot be made leaves the change begun for good: the cache is
 * then off, never wrong. */
static __always_inline void names_begin(void)
{
	__u32 k = UA_EPOCH_NAMES_BEGUN, *mine;
	__u64 *e = bpf_map_lookup_elem(&epochs, &k);

	if (e)
		__sync_fetch_and_add(e, 1);
	mine = bpf_task_storage_get(&renaming, bpf_get_current_task_btf(), 0,
				    BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (mine)
		*mine += 1;
}

/* A name change ends: counted if its beginning was. One whose beginning was not (the kernel
 * skipped the entry program, which it does rather than let a program recurse on a CPU, or the
 * task's note was not found) counts as begun once more, so the counts never meet again and the
 * cache is off for good; before the daemon turned the cache on, that is a call already under
 * way as the entry programs were attached (their exits were attached first), and is ignored. */
static __always_inline void names_end(void)
{
	__u32 k = UA_EPOCH_NAMES_ENDED, kb = UA_EPOCH_NAMES_BEGUN, zero = 0, *mine;
	__u64 *e = bpf_map_lookup_elem(&epochs, &k), *b;
	struct ua_config *cfg;

	mine = bpf_task_storage_get(&renaming, bpf_get_current_task_btf(), 0, 0);
	if (!mine || !*mine) {
		cfg = bpf_map_lookup_elem(&settings, &zero);
		b = bpf_map_lookup_elem(&epochs, &kb);
		if (cfg && cfg->decided_on && b)
			__sync_fetch_and_add(b, 1);
		return;
	}
	*mine -= 1;
	if (e)
		__sync_fetch_and_add(e, 1);
}

SEC("fentry/d_move")
int BPF_PROG(ua_moving, struct dentry *dentry, struct dentry *target)
{
	names_begin();
	return 0;
}

SEC("fexit/d_move")
int BPF_PROG(ua_moved, struct dentry *dentry, struct dentry *target)
{
	names_end();
	return 0;
}

SEC("fentry/d_exchange")
int BPF_PROG(ua_exchanging, struct dentry *a, struct dentry *b)
{
	names_begin();
	return 0;
}

SEC("fexit/d_exchange")
int BPF_PROG(ua_exchanged, struct dentry *a, struct dentry *b)
{
	names_end();
	return 0;
}

SEC("fentry/d_delete")
int BPF_PROG(ua_deleting, struct dentry *dentry)
{
	names_begin();
	return 0;
}

SEC("fexit/d_delete")
int BPF_PROG(ua_deleted, struct dentry *dentry)
{
	names_end();
	return 0;
}

/* File systems whose names change only through a rename or an unlink here. ramfs: the
 * initial root file system, which every mount tree hangs from (the real root is mounted on
 * it, with or without an initramfs). */
static __always_inline bool names_kept(unsigned long magic)
{
	return magic == EXT4_SUPER_MAGIC || magic == XFS_SUPER_MAGIC ||
	       magic == BTRFS_SUPER_MAGIC || magic == TMPFS_MAGIC || magic == RAMFS_MAGIC;
}

/* The byte offsets of up to four fields, 16 bits each, for read_fields(). */
#define UA_FIELDS(o0, o1, o2, o3)                                                          \
	((__u64)(o0) | (__u64)(o1) << 16 | (__u64)(o2) << 32 | (__u64)(o3) << 48)

/* Reads `n` (at most 4) 8-byte fields of the kernel object at `obj`, at the byte offsets
 * `offs` packs (UA_FIELDS(); CO-RE relocated, constants once loaded), into `out`. One probe
 * read of the span that holds them when it is at most 64 bytes, as it is for every use here
 * on 6.1 and 6.12 (each read is a helper call: a hit in the decision cache makes half as many
 * this way); one read a field otherwise. A function of its own: inlined at each use, its
 * span's buffer and registers took decided_key() past the stack's limit. */
static __noinline int read_fields(__u64 *out, __u64 obj, int n, __u64 offs)
{
	__u64 w[8] = {};
	__u32 lo = offs & 0xffff, hi = lo, o, d;
	int i, err = 0;

	for (i = 1; i < 4 && i < n; i++) {
		o = (offs >> (16 * i)) & 0xffff;
		if (o < lo)
			lo = o;
		if (o > hi)
			hi = o;
	}
	if (hi - lo <= sizeof(w) - 8) {
		if (bpf_probe_read_kernel(w, hi - lo + 8, (void *)(obj + lo)))
			return -1;
		for (i = 0; i < 4 && i < n; i++) {
			d = ((offs >> (16 * i)) & 0xffff) - lo;
			if (d & 7)
				return -1; /* not where an 8-byte field can be */
			out[i] = w[(d / 8) & 7];
		}
		return 0;
	}
	for (i = 0; i < 4 && i < n; i++)
		err |= bpf_probe_read_kernel(&out[i], 8, (void *)(obj + ((offs >> (16 * i)) & 0xffff)));
	return err;
}

/* Hashes the mounts from `m` (a struct mount, as a number: the file's) to the top of its tree
 * into `v`, with `f` (4 words) for the fields read. False if the tree is deeper than
 * UA_DECIDED_MOUNTS, a mount above the file's is of a file system names_kept() does not name
 * (the file's own was checked), or a read fails. */
static __always_inline bool hash_mounts(__u64 *v, __u64 *f, __u64 m)
{
	__u64 ns = 0;
	int i;

#pragma unroll
	for (i = 0; i < UA_DECIDED_MOUNTS; i++) {
		/* struct mount: its parent, the dentry it is mounted on, its root and superblock. */
		if (read_fields(f, m, 4,
				UA_FIELDS(bpf_core_field_offset(struct mount, mnt_parent),
					  bpf_core_field_offset(struct mount, mnt_mountpoint),
					  bpf_core_field_offset(struct mount, mnt.mnt_root),
					  bpf_core_field_offset(struct mount, mnt.mnt_sb))))
			return false;
		if (i > 0 && !names_kept(BPF_CORE_READ((struct super_block *)f[3], s_magic)))
			return false;
		sip_word(v, m);
		sip_word(v, f[2]);
		if (f[0] == m) {
			if (bpf_core_read(&ns, sizeof(ns), &((struct mount *)m)->mnt_ns))
				return false;
			sip_word(v, ns);
			if (ns) {
				/* struct mnt_namespace: its root and never-reused number. */
				if (read_fields(f, ns, 2,
						UA_FIELDS(bpf_core_field_offset(struct mnt_namespace, root),
							  bpf_core_field_offset(struct mnt_namespace, seq),
							  0, 0)))
					return false;
				sip_word(v, f[1]);
				sip_word(v, f[0]);
			}
			return true;
		}
		sip_word(v, f[1]);
		m = f[0];
	}
	return false;
}

/* The count of the kernel's mount_lock (fs/namespace.c): the seqlock every change to the
 * mount tree is written under (a mount made, attached, moved, detached or freed: every field
 * hash_mounts() reads but the namespace's, set once), and whose count the kernel's own lockless
 * path walks check. Its address is the daemon's, from /proc/kallsyms (it is not in the
 * kernel's BTF). Odd while a change is under way, and 1 if it cannot be read. Its sequence is a
 * seqlock's first word whatever the kernel's configuration. */
static __always_inline __u32 mount_seq(const struct ua_config *cfg)
{
	__u32 seq = 1;

	if (!cfg->mount_lock || bpf_probe_read_kernel(&seq, sizeof(seq), (void *)cfg->mount_lock))
		return 1;
	return seq;
}

/* Bumps the decision cache's count `k` (UA_DECIDED_*). */
static __always_inline void decided_count(__u32 k)
{
	__u64 *n = bpf_map_lookup_elem(&decided_counts, &k);

	if (n)
		*n += 1; /* per CPU; a preempted program may lose a count, never a decision */
}

/* The hash under the daemon's key of the mounts from `m` (a struct mount, as a number: the
 * file's) to the top of its tree, or 0 if they are not to be remembered; `v` and `f` are 4
 * words each, for the hash's state and the fields read. The task's last one is used again
 * when it was for the same mount, under the same key, less than ten seconds ago, and mount_lock's
 * count has not moved since (no mount was made, attached, moved, detached or freed anywhere:
 * the mounts read are the same objects, linked alike); an odd count, a change under way, is
 * never taken nor kept. A hash is kept only if the count was the same, and even, before and
 * after the mounts were read. Inlined, with the caller's arrays: a frame of its own took
 * ua_file_fcntl's chain of calls past the stack's 512 bytes. */
static __always_inline __u64 mounts_hash(__u64 *v, __u64 *f, __u64 m, const struct ua_config *cfg)
{
	struct ua_mounts_memo *memo;
	__u32 seq = mount_seq(cfg);
	__u64 h = 0;

	memo = bpf_task_storage_get(&mounts_memo, bpf_get_current_task_btf(), 0,
				    BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (memo && !(seq & 1) && memo->seq == seq && memo->mnt == m && memo->k0 == cfg->key[0] &&
	    bpf_ktime_get_ns() - memo->at < UA_MOUNTS_MEMO_NS) {
		decided_count(UA_DECIDED_MOUNTS_KEPT);
		return memo->hash;
	}
	sip_init(v, cfg->key[0], cfg->key[1]);
	if (hash_mounts(v, f, m))
		h = sip_finish(v) | 1; /* never 0 */
	/* The memo and the time are asked for again rather than kept across the reads: the
	 * frame stays as small as it was before the memo. */
	memo = bpf_task_storage_get(&mounts_memo, bpf_get_current_task_btf(), 0, 0);
	if (memo && !(seq & 1) && mount_seq(cfg) == seq) {
		memo->mnt = m;
		memo->hash = h;
		memo->at = bpf_ktime_get_ns();
		memo->k0 = cfg->key[0];
		memo->seq = seq;
	}
	return h;
}

/* What a decision of class `class` on `file` for armor `a` depends on, hashed (0: not one to
 * remember). `epoch` is read_epoch()'s, read before `a` was filled. A function of its own (a
 * static one: the verifier checks it with the caller's types) whose stack is not added to
 * ua_file_open's, which is near the limit with the global functions it calls. */
static __noinline __u64 decided_key(struct armor *a, struct file *file, __u32 class, __u64 epoch,
				    const struct ua_config *cfg)
{
	struct inode *inode = file->f_inode;
	struct super_block *sb = inode->i_sb;
	__u64 v[4], f[4];

	if ((inode->i_mode & S_IFMT) != S_IFREG || inode->i_nlink != 1 || !names_kept(sb->s_magic))
		return 0;
	/* The pointers as numbers (the verifier lets no typed pointer be hashed): f_path's mount
	 * first, for the mounts' hash (which uses `v` and `f`), then f_path's dentry and f_inode
	 * (read after it: kept across it, they took the frame past what ua_file_open's chain of
	 * calls leaves). */
	if (read_fields(f, (__u64)file, 1,
			UA_FIELDS(bpf_core_field_offset(struct file, f_path.mnt), 0, 0, 0)))
		return 0;
	/* In f[3], which the read below leaves alone: a variable of its own is one more slot. */
	f[3] = mounts_hash(v, f, f[0] - bpf_core_field_offset(struct mount, mnt), cfg);
	if (!f[3] || read_fields(f, (__u64)file, 2,
				   UA_FIELDS(bpf_core_field_offset(struct file, f_path.dentry),
					     bpf_core_field_offset(struct file, f_inode), 0, 0)))
		return 0;
	sip_init(v, cfg->key[0], cfg->key[1]);
	sip_word(v, f[0]);
	/* Its two halves: the verifier refuses hash_len, a union's second member. */
	sip_word(v, (__u64)file->f_path.dentry->d_name.hash << 32 | file->f_path.dentry->d_name.len);
	sip_word(v, f[1]);
	sip_word(v, inode->i_ino);
	sip_word(v, (__u64)inode->i_generation << 32 | (__u64)a->from_mask << 16 |
			    (__u64)a->allowlist << 8 | class);
	sip_word(v, (__u64)a->binding.policy << 32 | a->start);
	sip_word(v, epoch);
	sip_word(v, f[3]);
	return sip_finish(v) | 1; /* never 0 */
}

/* The ended counts as one number that only ever grows (header writes from bit 40 up, name
 * changes below: 2^40 of them before they reach it, and the sum still only grows), plus one;
 * 0 while a change is under way, if the map cannot be read, or off x86-64 (see above). */
static __always_inline __u64 read_epoch(void)
{
#if defined(__TARGET_ARCH_x86)
	__u32 k0 = UA_EPOCH_NAMES_ENDED, k1 = UA_EPOCH_NAMES_BEGUN, k2 = UA_EPOCH_TABLES_ENDED,
	      k3 = UA_EPOCH_TABLES_BEGUN;
	__u64 *ne = bpf_map_lookup_elem(&epochs, &k0), *nb = bpf_map_lookup_elem(&epochs, &k1);
	__u64 *te = bpf_map_lookup_elem(&epochs, &k2), *tb = bpf_map_lookup_elem(&epochs, &k3);
	__u64 n, t;

	if (!ne || !nb || !te || !tb)
		return 0;
	/* Ended before begun: a change that begins after the first read shows in the second. */
	n = *ne;
	t = *te;
	barrier();
	if (*nb != n || *tb != t)
		return 0;
	return n + (t << 40) + 1;
#else
	return 0;
#endif
}

/*
 * decide_armored() for an open of `file` (read or write) or an executable mapping of it (exec)
 * by the task armored with `a`, through the cache. `file` is the hook's own typed pointer.
 * `epoch` is read_epoch()'s before armored() filled `a`, so that `a` never holds an older
 * header than it counts (0: no cache).
 */
static __always_inline int decide_file(struct armor *a, __u8 class, __u8 op, struct file *file,
				       __u64 epoch)
{
	__u32 k0 = 0;
	struct ua_config *cfg = bpf_map_lookup_elem(&settings, &k0);
	struct ua_decided *d, v = {};
	__u64 key = 0, now;
	int err;

	from_context(a);
	if (epoch && cfg && cfg->decided_on && (cfg->key[0] | cfg->key[1]) && !a->from_lost)
		key = decided_key(a, file, class, epoch, cfg);
	if (key) {
		d = bpf_map_lookup_elem(&decided, &key);
		/* Copied, then its key read again: an LRU map gives a replaced or evicted element
		 * to another key at once, without waiting for readers; the copy counts only if
		 * the element still held this key after it (x86-64 keeps loads in order, and the
		 * cache is on nowhere else). */
		if (d) {
			v.rule = d->rule;
			v.verdict = d->verdict;
			v.root = d->root;
			v.sent = d->sent;
			barrier();
			if (d->key != key)
				d = 0;
		}
		if (d && !v.verdict) {
			decided_count(UA_DECIDED_FOUND);
			if (v.rule != UA_RULE_NONE)
				ua_count(a->binding.policy, v.rule, class, UA_HIT_ALLOWED);
			return 0;
		}
		/* An audited one: a repeat of its event while the event's window lasts, for the
		 * unit tree it was sent for (another instance under the same policy gets its own
		 * first event), counted as report.h counts a repeat. After the window, or if the
		 * repeat cannot be counted, it is decided again, and its event sent (and
		 * remembered anew) or found a repeat (and not remembered: only an event sent
		 * now has a time known here). */
		if (d && v.verdict == UA_VERDICT_AUDITED && v.root == a->binding.root &&
		    (__s64)(bpf_ktime_get_ns() - v.sent) <= (__s64)UA_FAIR_WINDOW_NS &&
		    count_quiet(a->binding.policy, v.rule, class, UA_VERDICT_AUDITED)) {
			decided_count(UA_DECIDED_FOUND);
			ua_count(a->binding.policy, v.rule, class, UA_HIT_AUDITED);
			return 0;
		}
		v = (struct ua_decided){};
	}
	a->quiet = 0;
	/* Before the decision: an event it sends is sent after this (its window ends after the
	 * one a hit is given, never before). */
	now = key ? bpf_ktime_get_ns() : 0;
	err = decide_in_context(a, class, op, file->f_path.mnt, file->f_path.dentry);
	/* Stored if nothing it depends on changed while it was made: the epochs, and what the
	 * key reads again (mounts, links, the binding's policy). */
	if (key && !err && a->quiet && read_epoch() == epoch &&
	    decided_key(a, file, class, epoch, cfg) == key) {
		v.key = key;
		v.rule = a->quiet_rule;
		if (a->quiet == 2) {
			v.verdict = UA_VERDICT_AUDITED;
			v.root = a->binding.root;
			v.sent = now;
		}
		if (!bpf_map_update_elem(&decided, &key, &v, BPF_ANY))
			decided_count(UA_DECIDED_STORED);
	}
	return err;
}

#endif
