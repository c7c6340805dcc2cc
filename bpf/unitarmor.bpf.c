// SPDX-License-Identifier: GPL-2.0-only
/*
 * unitarmor's kernel side.
 *
 * Binding: the cgroup_mkdir tracepoint runs before any process can enter a new cgroup. It looks
 * the cgroup's path up in `expected` (filled by the daemon from each armored unit's cgroup path)
 * or, failing that, finds its parent in `bound` (sub-cgroups of a delegated unit, units inside an
 * armored slice), and binds the new cgroup id to that policy. cgroup_rmdir forgets it.
 *
 * Decisions: each LSM hook below finds the current cgroup's policy (one hash lookup; unarmored
 * processes stop there), builds the path of the object the way the process sees it (relative to
 * its root directory, across mounts), runs it through the policy's DFA and applies the
 * precedence of the policy language: a matching deny wins; an allow-list class denies what no
 * allow rule matches; an audit rule reports and allows. Deny and audit verdicts are sent to the
 * daemon through the `events` ring buffer; events that do not fit are counted per cgroup.
 *
 * The DFA is compiled in user space from every path pattern of the policy (src/compile.rs).
 * Matching costs one array and one hash lookup per byte of the path and stops at the first dead
 * state, whatever the number of rules.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "unitarmor.h"

#define EACCES 13

#define FMODE_READ 0x1
#define FMODE_WRITE 0x2

char LICENSE[] SEC("license") = "GPL";

/* Cgroup paths of armored units -> policy id, zero-padded to UA_CGROUP_PATH_MAX. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, char[UA_CGROUP_PATH_MAX]);
	__type(value, __u32);
} expected SEC(".maps");

/* Cgroup id -> policy id of every armored cgroup that exists. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u32);
} bound SEC(".maps");

/* Policy id -> header. An array: looked up once per path byte, so it must be cheap. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, UA_MAX_POLICIES);
	__type(key, __u32);
	__type(value, struct ua_policy_table);
} policies SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 20);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ua_trans_key);
	__type(value, __u32);
} trans SEC(".maps");

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

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} events SEC(".maps");

/* Per-CPU scratch space: the object's path (built backwards to end at UA_PATH_MAX), the
 * executable's path (likewise in the second half, for events), and the zero-padded cgroup
 * path key. Too large for the 512-byte BPF stack. The 256 spare bytes let a component copy
 * start anywhere in a half. */
struct scratch {
	char path[2 * UA_PATH_MAX + 256];
	char cgroup_path[UA_CGROUP_PATH_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_map SEC(".maps");

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

static __always_inline struct scratch *get_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&scratch_map, &zero);
}

/* ---- Binding at cgroup creation ---- */

SEC("tp_btf/cgroup_mkdir")
int BPF_PROG(ua_cgroup_mkdir, struct cgroup *cgrp, const char *path)
{
	struct scratch *s = get_scratch();
	__u64 id, parent_id;
	__u32 *policy;
	__u32 p;
	int i;

	if (!s)
		return 0;
	/* Hash keys compare every byte: the tail after the string must be zero. */
	for (i = 0; i < UA_CGROUP_PATH_MAX / 8; i++)
		((__u64 *)s->cgroup_path)[i] = 0;
	bpf_probe_read_kernel_str(s->cgroup_path, sizeof(s->cgroup_path), path);

	policy = bpf_map_lookup_elem(&expected, s->cgroup_path);
	if (!policy) {
		/* A sub-cgroup inherits its parent's policy: a delegated unit cannot move a
		 * process out of its policy by creating a child cgroup. */
		parent_id = BPF_CORE_READ(cgrp, kn, parent, id);
		policy = bpf_map_lookup_elem(&bound, &parent_id);
		if (!policy)
			return 0;
	}
	p = *policy;
	id = BPF_CORE_READ(cgrp, kn, id);
	bpf_map_update_elem(&bound, &id, &p, BPF_ANY);
	return 0;
}

SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(ua_cgroup_rmdir, struct cgroup *cgrp, const char *path)
{
	__u64 id = BPF_CORE_READ(cgrp, kn, id);

	bpf_map_delete_elem(&bound, &id);
	return 0;
}

/* ---- Paths ---- */

/* State of a path walk, one bpf_loop() step per path component or mount crossing. Kernel
 * pointers are kept as integers: they are only ever read through BPF_CORE_READ. */
struct path_walk {
	__u64 dentry;
	__u64 vfsmnt;
	__u64 root_dentry;
	__u64 root_mnt;
	__u32 pos;
	__u8 done;
	__u8 truncated;
	__u8 exe; /* build into the second half of the buffer */
};

static long walk_component(__u32 i, void *data)
{
	struct path_walk *pw = data;
	struct dentry *dentry = (struct dentry *)pw->dentry;
	struct vfsmount *vfsmnt = (struct vfsmount *)pw->vfsmnt;
	struct mount *mnt = (void *)vfsmnt - bpf_core_field_offset(struct mount, mnt);
	struct scratch *s = get_scratch();
	struct dentry *parent;
	struct qstr name;
	__u32 len, pos = pw->pos;

	if (!s)
		goto stop;
	if (pw->dentry == pw->root_dentry && pw->vfsmnt == pw->root_mnt)
		goto stop;
	if (dentry == BPF_CORE_READ(vfsmnt, mnt_root)) {
		struct mount *up = BPF_CORE_READ(mnt, mnt_parent);

		if (up == mnt)
			goto stop; /* the namespace's root mount */
		pw->dentry = (__u64)BPF_CORE_READ(mnt, mnt_mountpoint);
		pw->vfsmnt = (__u64)((void *)up + bpf_core_field_offset(struct mount, mnt));
		return 0;
	}
	parent = BPF_CORE_READ(dentry, d_parent);
	if (parent == dentry)
		goto stop; /* root of a detached tree */
	name = BPF_CORE_READ(dentry, d_name);
	len = name.len & 0xff;
	if (len + 1 >= pos) {
		pw->truncated = 1;
		goto stop;
	}
	pos -= len;
	bpf_probe_read_kernel(&s->path[slot(pw->exe, pos)], BOUND(len, 255), name.name);
	pos -= 1;
	s->path[slot(pw->exe, pos)] = '/';
	pw->pos = pos;
	pw->dentry = (__u64)parent;
	return 0;
stop:
	pw->done = 1;
	return 1;
}

/*
 * Writes the path of (mnt, dentry) as the current task sees it into s->path, ending just before
 * UA_PATH_MAX, and returns where it starts (*truncated set if the path was too deep or too
 * long; the kept part is then the tail). Walks dentries up to each mount's root and crosses to
 * the parent mount, stopping at the task's root directory, as d_path() does. bpf_loop() keeps
 * the verifier's work independent of UA_PATH_DEPTH.
 */
static __always_inline __u32 build_path(struct scratch *s, struct vfsmount *vfsmnt,
					struct dentry *dentry, __u8 *truncated, __u8 exe)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct path_walk pw = {
		.dentry = (__u64)dentry,
		.vfsmnt = (__u64)vfsmnt,
		.root_dentry = (__u64)BPF_CORE_READ(task, fs, root.dentry),
		.root_mnt = (__u64)BPF_CORE_READ(task, fs, root.mnt),
		.pos = UA_PATH_MAX,
		.exe = exe,
	};
	__u32 pos;

	bpf_loop(UA_PATH_DEPTH, walk_component, &pw, 0);
	*truncated = pw.truncated || !pw.done;
	pos = pw.pos;
	if (pos >= UA_PATH_MAX) {
		pos = UA_PATH_MAX - 1;
		s->path[slot(exe, pos)] = '/';
	}
	return pos;
}

/* ---- DFA ---- */

struct walk {
	__u32 policy;
	__u32 state;
	__u32 pos;
};

static long walk_byte(__u32 i, void *data)
{
	struct walk *w = data;
	struct ua_policy_table *pol;
	struct ua_trans_key key;
	struct scratch *s;
	__u32 *next;
	__u8 c;

	s = get_scratch();
	pol = bpf_map_lookup_elem(&policies, &w->policy);
	if (!s || !pol) {
		w->state = 0;
		return 1;
	}
	c = s->path[(w->pos + i) & (2 * UA_PATH_MAX - 1)];
	key.policy = w->policy;
	key.state = w->state;
	key.byte_class = pol->byte_class[c];
	next = bpf_map_lookup_elem(&trans, &key);
	w->state = next ? *next : 0;
	return w->state ? 0 : 1; /* the dead state never leaves */
}

/* ---- Decisions ---- */

static __always_inline void emit(__u64 cgid, __u32 policy, __u32 rule, __u8 class, __u8 op,
				 __u8 verdict, struct scratch *s, __u32 pos, __u8 truncated)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct file *exe_file;
	struct ua_event *ev;
	__u32 len = UA_PATH_MAX - pos, epos;
	__u8 etrunc;

	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		struct ua_counters zero = { .policy = policy }, *c;

		c = bpf_map_lookup_elem(&counters, &cgid);
		if (!c) {
			bpf_map_update_elem(&counters, &cgid, &zero, BPF_NOEXIST);
			c = bpf_map_lookup_elem(&counters, &cgid);
		}
		if (c)
			__sync_fetch_and_add(&c->lost, 1);
		return;
	}
	ev->cgroup_id = cgid;
	ev->pid = BPF_CORE_READ(task, pid);
	ev->tgid = BPF_CORE_READ(task, tgid);
	ev->uid = BPF_CORE_READ(task, cred, uid.val);
	ev->policy = policy;
	ev->rule = rule;
	ev->mnt_ns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	ev->pid_ns = BPF_CORE_READ(task, nsproxy, pid_ns_for_children, ns.inum);
	ev->user_ns = BPF_CORE_READ(task, cred, user_ns, ns.inum);
	ev->class = class;
	ev->op = op;
	ev->verdict = verdict;
	ev->truncated = truncated;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	len &= UA_PATH_MAX - 1;
	ev->path_len = len;
	bpf_probe_read_kernel(ev->path, BOUND(len, 4095), &s->path[BOUND(pos, 4095)]);

	/* The executable, read here because the process may be gone when the daemon looks. */
	ev->exe_len = 0;
	exe_file = BPF_CORE_READ(task, mm, exe_file);
	if (exe_file) {
		epos = build_path(s, BPF_CORE_READ(exe_file, f_path.mnt), BPF_CORE_READ(exe_file, f_path.dentry),
				  &etrunc, 1);
		len = UA_PATH_MAX - epos;
		if (len > UA_EXE_MAX - 1) {
			epos = UA_PATH_MAX - (UA_EXE_MAX - 1); /* keep the tail */
			len = UA_EXE_MAX - 1;
		}
		ev->exe_len = len;
		bpf_probe_read_kernel(ev->exe, BOUND(len, 255), &s->path[slot(1, epos)]);
	}
	bpf_ringbuf_submit(ev, 0);
}

/* Decides one operation of class `class` on (mnt, dentry). Returns 0 or -EACCES. */
static __always_inline int decide(__u8 class, __u8 op, struct vfsmount *mnt, struct dentry *dentry)
{
	__u64 cgid = bpf_get_current_cgroup_id();
	struct ua_policy_table *pol;
	struct ua_accept *acc;
	struct ua_state_key sk;
	struct scratch *s;
	struct walk w;
	__u32 *policy, pos, rule;
	__u8 truncated, verdict;

	policy = bpf_map_lookup_elem(&bound, &cgid);
	if (!policy)
		return 0;
	w.policy = *policy;
	pol = bpf_map_lookup_elem(&policies, &w.policy);
	if (!pol || !(pol->header.classes & (1 << class)))
		return 0;
	s = get_scratch();
	if (!s)
		return 0;

	pos = build_path(s, mnt, dentry, &truncated, 0);
	w.state = pol->header.start;
	w.pos = pos;
	bpf_loop(UA_PATH_MAX - pos, walk_byte, &w, 0);

	sk.policy = w.policy;
	sk.state = w.state;
	acc = w.state ? bpf_map_lookup_elem(&accept, &sk) : 0;
	if (acc && acc->deny[class] != UA_RULE_NONE) {
		rule = acc->deny[class];
		verdict = UA_VERDICT_DENIED;
	} else if ((pol->header.allowlist & (1 << class)) &&
		   !(acc && acc->allow[class] != UA_RULE_NONE)) {
		rule = UA_RULE_NOT_ALLOWED;
		verdict = UA_VERDICT_DENIED;
	} else if (acc && acc->audit[class] != UA_RULE_NONE) {
		rule = acc->audit[class];
		verdict = UA_VERDICT_AUDITED;
	} else {
		return 0;
	}
	if (verdict == UA_VERDICT_DENIED && pol->header.mode == UA_MODE_AUDIT)
		verdict = UA_VERDICT_WOULD_DENY;
	emit(cgid, w.policy, rule, class, op, verdict, s, pos, truncated);
	return verdict == UA_VERDICT_DENIED ? -EACCES : 0;
}

static __always_inline int decide_path(__u8 class, __u8 op, const struct path *path)
{
	return decide(class, op, BPF_CORE_READ(path, mnt), BPF_CORE_READ(path, dentry));
}

/* ---- Hooks: one small program each ---- */

SEC("lsm/file_open")
int BPF_PROG(ua_file_open, struct file *file)
{
	struct vfsmount *mnt = BPF_CORE_READ(file, f_path.mnt);
	struct dentry *dentry = BPF_CORE_READ(file, f_path.dentry);
	unsigned int mode = BPF_CORE_READ(file, f_mode);
	int err = 0;

	if (mode & FMODE_READ)
		err = decide(UA_CLASS_READ, UA_OP_OPEN_READ, mnt, dentry);
	if (!err && (mode & FMODE_WRITE))
		err = decide(UA_CLASS_WRITE, UA_OP_OPEN_WRITE, mnt, dentry);
	return err;
}

/* Decided on bprm->file, not on the file name: for a script this hook runs again for its
 * interpreter, and on systemd 255+ the first exec goes through /proc/self/fd/N. */
SEC("lsm/bprm_check_security")
int BPF_PROG(ua_bprm_check, struct linux_binprm *bprm)
{
	return decide_path(UA_CLASS_EXEC, UA_OP_EXEC, &bprm->file->f_path);
}

/* Creation of a file, device node or FIFO, including open(O_CREAT) of a new file. */
SEC("lsm/path_mknod")
int BPF_PROG(ua_path_mknod, const struct path *dir, struct dentry *dentry)
{
	return decide(UA_CLASS_WRITE, UA_OP_CREATE, BPF_CORE_READ(dir, mnt), dentry);
}

SEC("lsm/path_mkdir")
int BPF_PROG(ua_path_mkdir, const struct path *dir, struct dentry *dentry)
{
	return decide(UA_CLASS_WRITE, UA_OP_MKDIR, BPF_CORE_READ(dir, mnt), dentry);
}

SEC("lsm/path_rmdir")
int BPF_PROG(ua_path_rmdir, const struct path *dir, struct dentry *dentry)
{
	return decide(UA_CLASS_WRITE, UA_OP_RMDIR, BPF_CORE_READ(dir, mnt), dentry);
}

SEC("lsm/path_unlink")
int BPF_PROG(ua_path_unlink, const struct path *dir, struct dentry *dentry)
{
	return decide(UA_CLASS_WRITE, UA_OP_UNLINK, BPF_CORE_READ(dir, mnt), dentry);
}

SEC("lsm/path_symlink")
int BPF_PROG(ua_path_symlink, const struct path *dir, struct dentry *dentry)
{
	return decide(UA_CLASS_WRITE, UA_OP_SYMLINK, BPF_CORE_READ(dir, mnt), dentry);
}

/* Both names count as writes: a new hard link to a protected file would be a second name
 * that the file's rules no longer cover. */
SEC("lsm/path_link")
int BPF_PROG(ua_path_link, struct dentry *old_dentry, const struct path *new_dir,
	     struct dentry *new_dentry)
{
	struct vfsmount *mnt = BPF_CORE_READ(new_dir, mnt);
	int err;

	err = decide(UA_CLASS_WRITE, UA_OP_LINK_FROM, mnt, old_dentry);
	if (!err)
		err = decide(UA_CLASS_WRITE, UA_OP_LINK_TO, mnt, new_dentry);
	return err;
}

SEC("lsm/path_rename")
int BPF_PROG(ua_path_rename, const struct path *old_dir, struct dentry *old_dentry,
	     const struct path *new_dir, struct dentry *new_dentry)
{
	int err;

	err = decide(UA_CLASS_WRITE, UA_OP_RENAME_FROM, BPF_CORE_READ(old_dir, mnt), old_dentry);
	if (!err)
		err = decide(UA_CLASS_WRITE, UA_OP_RENAME_TO, BPF_CORE_READ(new_dir, mnt), new_dentry);
	return err;
}

SEC("lsm/path_truncate")
int BPF_PROG(ua_path_truncate, const struct path *path)
{
	return decide_path(UA_CLASS_WRITE, UA_OP_TRUNCATE, path);
}

SEC("lsm/path_chmod")
int BPF_PROG(ua_path_chmod, const struct path *path)
{
	return decide_path(UA_CLASS_WRITE, UA_OP_CHMOD, path);
}

SEC("lsm/path_chown")
int BPF_PROG(ua_path_chown, const struct path *path)
{
	return decide_path(UA_CLASS_WRITE, UA_OP_CHOWN, path);
}
