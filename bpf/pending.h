/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Units started while their files are being written.
 *
 * systemd reads a unit it has not loaded from disk when the unit is started (by name, a socket,
 * a timer), with whatever drop-ins are there at that moment. The daemon reads a new drop-in
 * once it is closed (src/daemon/watch.rs), up to half a second later: a unit started in
 * between would run under no policy. So every write of a name in a unit directory or a
 * drop-in directory that is let through (creating, opening for writing, truncating, renaming or linking in,
 * making a directory: at hooks that run after the permission checks) leaves a pending mark in `expected` under the unit's name, unless that name has an entry
 * already. The mark counts the unit's files open for writing and keeps the time of the last
 * write or close. The daemon clears a mark once a pass over the files that began after it has
 * read them and none is open for writing any more.
 *
 * A cgroup PID 1 creates for a marked name meanwhile (binding.h) is bound pending, to the
 * policy that refuses everything. systemd's set-up in it runs (armored() leaves marked tasks
 * alone there: it is systemd's code), and the unit's first exec stops: the task sends itself
 * SIGSTOP and the exec returns -ERESTARTNOINTR, so that it starts over from the beginning once
 * the task is continued. The daemon, having read the files, binds the cgroup to the unit's
 * policy or unbinds it, then sends SIGCONT (src/daemon/pending.rs). Any other task in such a
 * cgroup (a scope's process, moved in) waits at its next exec or open the same way, and is
 * refused anything else meanwhile.
 *
 * Marks are made only while a daemon runs (it writes pending_state[UA_PENDING_ALIVE] every
 * second): with none, nothing would read the files and let the unit go.
 */
#ifndef UNITARMOR_PENDING_H
#define UNITARMOR_PENDING_H

#include "path.h"

#define FMODE_READ 0x1
#define FMODE_WRITE 0x2
#define FMODE_CREATED 0x100000
#define SIGSTOP 19
#define ERESTARTNOINTR 513

/* Whether a daemon runs (its heartbeat is fresh): marks are made, and honored, only then. */
static __always_inline bool daemon_alive(void)
{
	__u32 alive_key = UA_PENDING_ALIVE;
	__u64 *alive = bpf_map_lookup_elem(&pending_state, &alive_key);

	return alive && bpf_ktime_get_ns() <= *alive;
}

/* Whether a pending mark was last written or closed 30 s or more ago: it holds nothing any
 * more (a count that missed a close, a daemon too busy to clear it), as the daemon clears
 * such marks at its next tick. */
static __always_inline bool mark_stale(struct ua_expect *e)
{
	return bpf_ktime_get_ns() > e->stamp + UA_PENDING_HELD_NS;
}

/* Counts a mark made: the daemon looks for marks to clear only when this has moved or it left
 * some last time. */
static __always_inline void count_mark(void)
{
	__u32 key = UA_PENDING_MARKS;
	__u64 *count = bpf_map_lookup_elem(&pending_state, &key);

	if (count)
		__sync_fetch_and_add(count, 1);
}

/* Marks the unit that a write of `entry` in directory `dir` belongs to, if `dir` is a unit or
 * drop-in directory. `written` is the file's inode if it was opened for writing (NULL for a
 * name made, linked or renamed): the mark then counts it until the file is freed. */
static __noinline int note_unit_write(struct dentry *dir, struct dentry *entry,
				      struct inode *written)
{
	struct ua_expect mark = { .policy = UA_MAX_POLICIES - 1, .flags = UA_BIND_PENDING };
	struct ua_file_id id = {};
	struct ua_unit_writer *w = NULL;
	struct ua_unit_dir *d;
	struct ua_expect *e;
	const char *key;
	bool in_new_dir = false;
	__u32 zero = UA_PENDING_ALIVE;
	__u64 *alive, now;
	char *name;
	long n;
	int i;

	if (!dir || !entry)
		return 0;
	/* Neither the directory nor its parent is a unit directory: the case of almost every
	 * name written. Direct loads, not probe reads: this runs for every one. */
	if (!maybe_unit_dir(dir->d_inode->i_ino) && !maybe_unit_dir(dir->d_parent->d_inode->i_ino))
		return 0;
	alive = bpf_map_lookup_elem(&pending_state, &zero);
	now = bpf_ktime_get_ns();
	if (!alive || now > *alive)
		return 0;
	zero = 0;
	/* Per CPU: a task preempted here by another that writes a unit's file on the same CPU
	 * (6.1 runs these programs preemptibly) may mark the other's name instead of its own. */
	name = bpf_map_lookup_elem(&mark_name, &zero);
	if (!name)
		return 0;
	key = name;
	id.ino = BPF_CORE_READ(dir, d_inode, i_ino);
	id.dev = BPF_CORE_READ(dir, d_inode, i_sb, s_dev);
	d = bpf_map_lookup_elem(&unit_dirs, &id);
	if (!d) {
		/* A drop-in directory made since the daemon last listed them: its parent is a unit
		 * directory, and its own name gives the unit. */
		struct dentry *parent = BPF_CORE_READ(dir, d_parent);

		id.ino = BPF_CORE_READ(parent, d_inode, i_ino);
		id.dev = BPF_CORE_READ(parent, d_inode, i_sb, s_dev);
		d = bpf_map_lookup_elem(&unit_dirs, &id);
		if (!d || d->kind != UA_DIR_UNITS)
			return 0;
		entry = dir;
		in_new_dir = true;
	}
	if (d->kind == UA_DIR_DROPINS) {
		key = d->name;
	} else {
		for (i = 0; i < UA_CGROUP_PATH_MAX / 8; i++)
			((__u64 *)name)[i] = 0;
		n = bpf_probe_read_kernel_str(name, UA_CGROUP_PATH_MAX, BPF_CORE_READ(entry, d_name.name));
		if (n < 2)
			return 0;
		/* `app.service.d` is app.service's drop-in directory. */
		if (n >= 4 && name[(n - 3) & (UA_CGROUP_PATH_MAX - 1)] == '.' &&
		    name[(n - 2) & (UA_CGROUP_PATH_MAX - 1)] == 'd') {
			name[(n - 3) & (UA_CGROUP_PATH_MAX - 1)] = 0;
			name[(n - 2) & (UA_CGROUP_PATH_MAX - 1)] = 0;
		} else if (in_new_dir) {
			return 0;
		}
	}
	if (written) {
		w = bpf_inode_storage_get(&unit_writes, written, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (w)
			bpf_probe_read_kernel(w->name, sizeof(w->name), key);
	}
	mark.stamp = now;
	mark.writers = w ? 1 : 0;
	if (!bpf_map_update_elem(&expected, key, &mark, BPF_NOEXIST)) {
		count_mark();
	} else {
		e = bpf_map_lookup_elem(&expected, key);
		/* Cleared by the daemon in between: once more. */
		if (!e && !bpf_map_update_elem(&expected, key, &mark, BPF_NOEXIST)) {
			count_mark();
			goto counted;
		}
		/* The name has a policy (a changed one is in force after the daemon's pass), or the
		 * map is full. */
		if (!e || !(e->flags & UA_BIND_PENDING))
			return 0;
		e->stamp = now;
		if (w)
			__sync_fetch_and_add(&e->writers, 1);
	}
counted:
	if (w)
		__sync_fetch_and_add(&w->writers, 1);
	return 0;
}

/* A file opened (file_open, once it is let through): if for writing, marks its unit if it is a
 * unit's file. Returns 0. */
static __noinline int note_open_write(struct file *file)
{
	struct dentry *dentry = file->f_path.dentry;

	if (!(file->f_mode & FMODE_WRITE))
		return 0;

	/* Direct loads: the inode must stay a typed pointer for inode storage. */
	return note_unit_write(dentry->d_parent, dentry, file->f_inode);
}

/*
 * Names made, linked, renamed and removed: the inode hooks run after the permission checks (the
 * path hooks run before them, and an unprivileged task's refused attempt must leave no mark
 * that would hold a unit back), and after this program's own path hooks let the write through.
 * Each returns 0: they decide nothing.
 */
SEC("lsm/inode_create")
int BPF_PROG(ua_inode_create, struct inode *dir, struct dentry *dentry)
{
	return note_unit_write(dentry->d_parent, dentry, NULL);
}

SEC("lsm/inode_symlink")
int BPF_PROG(ua_inode_symlink, struct inode *dir, struct dentry *dentry)
{
	return note_unit_write(dentry->d_parent, dentry, NULL);
}

SEC("lsm/inode_link")
int BPF_PROG(ua_inode_link, struct dentry *old_dentry, struct inode *dir, struct dentry *new_dentry)
{
	return note_unit_write(new_dentry->d_parent, new_dentry, NULL);
}

SEC("lsm/inode_rename")
int BPF_PROG(ua_inode_rename, struct inode *old_dir, struct dentry *old_dentry,
	     struct inode *new_dir, struct dentry *new_dentry)
{
	note_unit_write(old_dentry->d_parent, old_dentry, NULL);
	return note_unit_write(new_dentry->d_parent, new_dentry, NULL);
}

/* A drop-in removed may arm its unit more (an `ArmorMode=off` gone, a unit unmasked). */
SEC("lsm/inode_unlink")
int BPF_PROG(ua_inode_unlink, struct inode *dir, struct dentry *dentry)
{
	return note_unit_write(dentry->d_parent, dentry, NULL);
}

SEC("lsm/inode_rmdir")
int BPF_PROG(ua_inode_rmdir, struct inode *dir, struct dentry *dentry)
{
	return note_unit_write(dentry->d_parent, dentry, NULL);
}

/* A unit's file opened for writing is closed for good: its mark counts one writer less, and
 * the daemon's pass that clears it must begin after this. */
SEC("lsm/file_free_security")
int BPF_PROG(ua_file_free, struct file *file)
{
	struct ua_unit_writer *w;
	struct ua_expect *e;

	if (!(file->f_mode & FMODE_WRITE))
		return 0;
	w = bpf_inode_storage_get(&unit_writes, file->f_inode, 0, 0);
	if (!w || !w->writers)
		return 0;
	__sync_fetch_and_add(&w->writers, -1);
	e = bpf_map_lookup_elem(&expected, w->name);
	if (e && (e->flags & UA_BIND_PENDING)) {
		e->stamp = bpf_ktime_get_ns();
		if (e->writers)
			__sync_fetch_and_add(&e->writers, -1);
	}
	return 0;
}

/* Stops the current task until the daemon continues it: the system call it is in starts over
 * then (an exec from its beginning, an open from its lookup). */
static __always_inline int wait_for_daemon(void)
{
	/* With no daemon to let it go (it died since the cgroup was made: the next one's start
	 * continues what the last one left waiting), or no stop sent, refused: the system call
	 * must not return -ERESTARTNOINTR without a signal to restart it. */
	if (!daemon_alive() || bpf_send_signal(SIGSTOP))
		return -EACCES;
	return -ERESTARTNOINTR;
}

/* Whether the current task is a vfork() child that has not executed yet: its parent (PID 1
 * starting systemd-executor, on systemd 255+) waits for its exec, and must not wait for the
 * daemon too, even for an executor the programs do not know (PID 1 keeps the one it found
 * at its own start until it re-executes). */
static __always_inline bool vforked(void)
{
	return BPF_CORE_READ(bpf_get_current_task_btf(), vfork_done) != NULL;
}

/* Whether a task of a cgroup bound pending waits at this open: not one that created the file
 * (the open would find it made, and fail with O_EXCL). */
static __always_inline bool open_waits(struct armor *a, unsigned int mode)
{
	return (a->binding.flags & UA_BIND_PENDING) && !(mode & FMODE_CREATED);
}

#endif
