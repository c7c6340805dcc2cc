/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The maps every program shares (layouts in unitarmor.h and docs/DESIGN.md, "Maps"), and the
 * small helpers that keep their filters and counts (armor.h reads them for the current task).
 */
#ifndef UNITARMOR_MAPS_H
#define UNITARMOR_MAPS_H

/* Cgroup paths of armored units -> policy, zero-padded to UA_CGROUP_PATH_MAX. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, char[UA_CGROUP_PATH_MAX]);
	__type(value, struct ua_expect);
} expected SEC(".maps");

/* The kernel file systems whose files several hooks tell apart (include/uapi/linux/magic.h). */
#define PROC_SUPER_MAGIC 0x9fa0
#define SYSFS_MAGIC 0x62656572
#define CGROUP_SUPER_MAGIC 0x27e0eb
#define CGROUP2_SUPER_MAGIC 0x63677270

/* Cgroup id -> binding of every armored cgroup that exists. Not preallocated: an element that
 * is deleted is not handed to the next update while a reader may still hold it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, UA_BOUND_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, struct ua_binding);
} bound SEC(".maps");

/* A counting filter in front of `bound`, so that the hooks every process passes through cost an
 * unarmored one a word's read, not a hash lookup. Slot `cgid % UA_BOUND_FILTER` counts at least
 * the bound cgroups whose ids fall in it: one is added before a binding is inserted and taken
 * away only after it is deleted (bind_cgroup(), unbind_cgroup(), and the daemon's
 * src/kernel/bindings.rs the same way). A zero is then a sure "not bound"; anything else asks
 * `bound`. cgroup ids are kernfs inode numbers, handed out in order, so consecutive cgroups
 * take consecutive slots. A global in .bss: the daemon changes the same counters with atomic
 * operations through its mapping of it, which a map update could not do without losing a
 * concurrent change of the kernel's (one lost addition would be a bound cgroup read as unbound). */
#define UA_BOUND_FILTER 65536
#define EEXIST 17
__u32 bound_filter[UA_BOUND_FILTER];

/* Whether cgroup `cgid` may be bound: false only if it surely is not. */
static __always_inline bool maybe_bound(__u64 cgid)
{
	return *(volatile __u32 *)&bound_filter[cgid & (UA_BOUND_FILTER - 1)] != 0;
}

static __always_inline void filter_add(__u64 cgid, int n)
{
	__sync_fetch_and_add(&bound_filter[cgid & (UA_BOUND_FILTER - 1)], n);
}

/* Inserts or replaces cgroup `id`'s binding; 0 if it is there. The filter counts it first. A
 * replaced binding keeps the count its insertion added, so this one's is taken back. */
static __always_inline long bind_cgroup(__u64 id, struct ua_binding *b)
{
	long err;

	filter_add(id, 1);
	err = bpf_map_update_elem(&bound, &id, b, BPF_NOEXIST);
	if (err) {
		/* Any other failure (a full map) is this update's own. */
		if (err == -EEXIST)
			err = bpf_map_update_elem(&bound, &id, b, BPF_EXIST);
		filter_add(id, -1);
	}
	return err;
}

/* Deletes cgroup `id`'s binding; the filter forgets it after. */
static __always_inline void unbind_cgroup(__u64 id)
{
	if (!bpf_map_delete_elem(&bound, &id))
		filter_add(id, -1);
}

/* Unit tree root -> how many of its sub-cgroups `bound` holds, and (sub_total) how many all
 * trees hold: the budgets of ua_config, checked by lsm/inode_mkdir (protect.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, UA_BOUND_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, __u32);
} tree_size SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} sub_total SEC(".maps");

/* Character major -> 1 for the disk passthrough drivers whose majors the kernel hands out at
 * run time (files.h, passthrough_name): filled by the daemon from /proc/devices before the
 * hooks attach, and by files.h's tracing programs as such a driver registers later. An array
 * over every major (12 bits), so that an update cannot fail. Read by raw_device(). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} raw_majors SEC(".maps");

/* Misc minor -> 1 for the misc devices with a run-time minor that hand a disk over
 * (files.h, passthrough_name): filled like raw_majors, from /proc/misc and as such a device
 * registers later. Keyed by the whole minor (kernels since late 2025 hand out minors from 256
 * up). Only listed devices are written, one entry per registration of a new minor: should it
 * fill up all the same, raw_majors[10] is set and every misc device is refused (fail
 * closed). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u8);
} raw_misc SEC(".maps");

/* (policy, cgroup id of another unit's own cgroup) -> UA_PEER_* bits: the units a policy's
 * `allow signal` and `allow ptrace` rules name, kept current by the daemon as they restart. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, UA_PEERS_MAX);
	__type(key, struct ua_peer_key);
	__type(value, __u32);
} peers SEC(".maps");

/* Policy id -> header. An array: looked up once per path byte, so it must be cheap. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, UA_MAX_POLICIES);
	__type(key, __u32);
	__type(value, struct ua_policy_table);
} policies SEC(".maps");

/* The packed DFA transitions of every policy (struct ua_cell). An array, read once per path
 * byte: the verifier inlines its lookups. 16 MiB. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, UA_CELLS);
	__type(key, __u32);
	__type(value, struct ua_cell);
} cells SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 18);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ua_state_key);
	__type(value, struct ua_accept);
} accept SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct ua_counters);
} counters SEC(".maps");

/* When each recent event was written (see struct ua_repeat_key); least recently used first
 * out, which can only make an event be written again. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, UA_REPEATS_MAX);
	__type(key, struct ua_repeat_key);
	__type(value, __u64);
} repeats SEC(".maps");

/* Repeated events not sent, per (policy, rule, class, verdict); the daemon reads the counts
 * and removes a policy's once it is retired. When full, repeats are sent as any event. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, UA_QUIET_MAX);
	__type(key, struct ua_quiet_key);
	__type(value, __u64);
} quiet SEC(".maps");

/* How often each rule decided (struct ua_hits_key): per CPU, so a hot allow rule costs no
 * shared cache line. Not preallocated (a policy's rules appear as they first decide); the
 * daemon sums the CPUs' counts and removes a policy's once it is retired. When full, rules
 * that have not decided yet are not counted (`unitarmor status` says so). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, UA_HITS_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ua_hits_key);
	__type(value, struct ua_hits);
} hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, UA_EVENTS_SIZE);
} events SEC(".maps");

/* decided.h: a keyed hash of what an open's silent or audited allowance depended on -> what it
 * stands for (struct ua_decided). Bounded: the least recently used are forgotten, and a
 * forgotten decision is only made again. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, UA_DECIDED_MAX);
	__type(key, __u64);
	__type(value, struct ua_decided);
} decided SEC(".maps");

/* decided.h: UA_DECIDED_FOUND, UA_DECIDED_STORED and UA_DECIDED_MOUNTS_KEPT, for `bpftool map
 * dump name decided_counts` and the benchmark: what share of opens the cache answered. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, UA_DECIDED_COUNTS);
	__type(key, __u32);
	__type(value, __u64);
} decided_counts SEC(".maps");

/* decided.h: each task's last hash of the mounts above a file (struct ua_mounts_memo). */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ua_mounts_memo);
} mounts_memo SEC(".maps");

/* decided.h: counts of name changes (renames, exchanges, unlinks) begun and ended, by the
 * kernel's own programs, and of policy header writes begun and ended, by the daemon alone
 * (each count has one kind of writer, so none is read, changed and written back over
 * another's). A count begun but not ended: no decision is remembered or looked up. */
#define UA_EPOCH_NAMES_ENDED 0
#define UA_EPOCH_NAMES_BEGUN 1
#define UA_EPOCH_TABLES_ENDED 2
#define UA_EPOCH_TABLES_BEGUN 3
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} epochs SEC(".maps");

/* decided.h: name changes the task has begun and not ended (its entries into d_move(),
 * d_exchange() and d_delete() counted by the entry programs), so that an exit counts as ended
 * only a change whose beginning was counted: one under way as the programs were attached is
 * never counted at all. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u32);
} renaming SEC(".maps");

/* Written once by the daemon before anything is attached. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ua_config);
} settings SEC(".maps");

/* Unit and drop-in directories (device, inode), written by the daemon from its watches; and the
 * unit files open for writing in them (pending.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct ua_file_id);
	__type(value, struct ua_unit_dir);
} unit_dirs SEC(".maps");

/* A filter in front of `unit_dirs`, so that a name written anywhere else costs a byte's read,
 * not two hash lookups: slot `ino % UA_DIR_FILTER` is non-zero while any directory in
 * `unit_dirs` has an inode number that falls in it. The daemon, the map's only writer, sets a
 * slot before it inserts a directory and clears it only after deleting the last one that
 * needed it (src/kernel/pending.rs), so a zero is a sure "not a unit directory". Keyed by the
 * inode number alone: two devices' directories sharing a slot only ask the map. */
#define UA_DIR_FILTER 65536 /* a power of two: the slot is the number's low bits */
__u8 unit_dir_filter[UA_DIR_FILTER];

/* Whether the directory with inode number `ino` may be in `unit_dirs`. */
static __always_inline bool maybe_unit_dir(__u64 ino)
{
	return *(volatile __u8 *)&unit_dir_filter[ino & (UA_DIR_FILTER - 1)] != 0;
}

struct {
	__uint(type, BPF_MAP_TYPE_INODE_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ua_unit_writer);
} unit_writes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} pending_state SEC(".maps");

/* The unit's name a write in a unit directory marks is built here (pending.h): the programs
 * that call note_unit_write() have no stack left for it. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, char[UA_CGROUP_PATH_MAX]);
} mark_name SEC(".maps");

/* UA_TASK_SETUP for tasks that are systemd setting up a unit (see binding.h). Task storage is
 * freed with the task. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u32);
} task_marks SEC(".maps");

/* The system call in which an armored task last sent a netlink message (protect.h): a
 * netlink message's handler runs inside the send and checks capabilities against the sender.
 * `nr` is the system call's number (syscall_abi_nr()), `proto` the socket's netlink protocol. */
struct ua_netlink_send {
	__s64 nr;
	__u32 proto;
	__u32 set;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ua_netlink_send);
} netlink_sends SEC(".maps");

/* from= (walk.h: from_context()): which of its policy's from= patterns the task's executable
 * matches, computed at its first decision under a policy with from= rules. Kept for `tag`,
 * the policy's from_tag it was computed under, and `exec_id`, the task's self_exec_id then
 * (every exec counts it up): a mask of other patterns or of another program is never used,
 * and nothing needs resetting at exec. */
struct ua_exe_from {
	__u64 tag;
	__u64 exec_id;
	__u32 mask;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ua_exe_from);
} exe_from SEC(".maps");

/* (policy, from= pattern) -> that pattern's capability and family verdicts (walk.h: slot_rule).
 * Every pattern of every policy with from= rules has one: UA_FROM_MAX of 1,024 policies. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1024 * UA_FROM_MAX);
	__type(key, struct ua_from_key);
	__type(value, struct ua_from_slots);
} from_slots SEC(".maps");

/* The mount an armored task was last given write access to (mnt_want_write*), for the hooks
 * that get only a dentry (attrs.h); 0 once it dropped that access. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} write_mnt SEC(".maps");

/* How many tasks' `write_mnt` records are not 0, at least: each is counted before it is set
 * and uncounted after it is cleared, by the task itself (attrs.h). While it is 0, no task has
 * a record to clear, and mnt_drop_write*() (every write on the system) costs one word's read,
 * not a task storage lookup. A record a task still held when it exited (its drop's tracing
 * program skipped by the recursion guard) keeps its count: drops look records up again, as
 * before, until the programs are reloaded. */
/* A line of its own: armored writes change it, and unarmored tasks' hooks read their
 * filters next to it. */
__u64 write_mnt_held __attribute__((aligned(64)));

/* The cgroup id of kernfs node `kn`'s parent, on kernels before and after 6.15. */
static __always_inline struct kernfs_node *kn_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(((struct kernfs_node___new *)0)->__parent))
		return BPF_CORE_READ((struct kernfs_node___new *)kn, __parent);
	return BPF_CORE_READ(kn, parent);
}

static __always_inline __u64 kn_parent_id(struct kernfs_node *kn)
{
	return BPF_CORE_READ(kn_parent(kn), id);
}

/* Adds one sub-cgroup to tree `root`'s count (delta 1) or takes one away (delta -1; never
 * below zero: cgroups the daemon bound at its start were never counted). */
static __always_inline void tree_count(__u64 root, int delta)
{
	__u32 zero = 0, one = 1, *n = bpf_map_lookup_elem(&tree_size, &root);
	__u32 *total = bpf_map_lookup_elem(&sub_total, &zero);

	if (delta > 0) {
		if (n)
			__sync_fetch_and_add(n, 1);
		else
			bpf_map_update_elem(&tree_size, &root, &one, BPF_NOEXIST);
		if (total)
			__sync_fetch_and_add(total, 1);
	} else {
		if (n && *n)
			__sync_fetch_and_add(n, (__u32)-1); /* XADD: clang 14 has no atomic sub */
		if (total && *total)
			__sync_fetch_and_add(total, (__u32)-1);
	}
}

/* Whether tree `root` may have one more sub-cgroup; `user`: a user unit's tree. */
static __always_inline bool tree_has_room(__u64 root, bool user)
{
	__u32 zero = 0, *n = bpf_map_lookup_elem(&tree_size, &root);
	__u32 *total = bpf_map_lookup_elem(&sub_total, &zero);
	struct ua_config *cfg = bpf_map_lookup_elem(&settings, &zero);
	__u32 per = UA_TREE_CGROUPS_DEFAULT, all = UA_SUB_CGROUPS_DEFAULT;

	if (cfg && cfg->tree_cgroups_max)
		per = cfg->tree_cgroups_max;
	if (cfg && cfg->sub_cgroups_max)
		all = cfg->sub_cgroups_max;
	if (user && per > UA_USER_TREE_CGROUPS)
		per = UA_USER_TREE_CGROUPS;
	return (!n || *n < per) && (!total || *total < all);
}

/* Per-CPU scratch space: the object's path (built backwards to end at UA_PATH_MAX), the
 * executable's path (likewise in the second half, for events), and the zero-padded cgroup
 * path and template keys. Too large for the 512-byte BPF stack. The 256 spare bytes let a component copy
 * start anywhere in a half. */
struct scratch {
	char path[2 * UA_PATH_MAX + 256];
	char cgroup_path[UA_CGROUP_PATH_MAX];
	char template_key[UA_CGROUP_PATH_MAX];
	/* Where binding.h's template_key() found the last component's parts. In map memory
	 * rather than on the stack: verifiers before 6.7 follow a bpf_loop callback for one
	 * iteration only, so values it leaves on the stack could be taken for constants and
	 * the code that tests them dropped as dead. */
	struct {
		__u32 leaf;  /* first byte of the last component */
		__u32 prev;  /* first byte of the one before it */
		__u32 slash; /* the '/' before the last component */
		__u32 from;  /* copy_range(): the bytes [from, to) */
		__u32 to;
		__u32 at;    /* its first '@', or 0 */
		__u32 dot;   /* its last '.', or 0 */
		__u32 end;   /* the NUL */
		__u32 out;   /* bytes written to template_key */
		__u32 dashes;               /* '-' in the last component, up to UA_PREFIXES_MAX */
		__u32 dash[UA_PREFIXES_MAX]; /* where they are */
	} scan;
	/* The hash of an event's path (path.h's subject_hash()), in map memory for the same
	 * reason. */
	struct {
		__u64 v[4];  /* SipHash state */
		__u32 words; /* 8-byte words the path spans */
		__u32 skip;  /* bytes of the first word that are before the path */
		/* emit()'s calls of ua_emit() on this CPU, and the number of the last one whose
		 * event was sent with its time kept for its repeats (decided.h: path.h checks that
		 * its own call was the one, and the only one, since it read `emits`). */
		__u32 emits;
		__u32 sent;
	} hash;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

static __always_inline struct scratch *get_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&scratch_map, &zero);
}

#endif
