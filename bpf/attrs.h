/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Writes whose LSM hooks get a dentry without its mount: timestamps (inode_setattr, for
 * utimes) and extended attributes and ACLs (inode_setxattr and the like). A dentry alone
 * names no path, so the mount comes from the system call itself: every call that reaches
 * these hooks on a task's behalf first asks for write access to the file's mount
 * (mnt_want_write() by path, mnt_want_write_file() by file descriptor, from io_uring too) and
 * gives it back after the change (mnt_drop_write*()). Tracing programs remember that mount
 * per armored task in between, and the LSM hooks build the path from it: utimes and every
 * xattr change are then decided by the write class like any other write.
 *
 * - The mount is used only for a dentry of its superblock. A dentry that is not below the
 *   mount's root ends the walk at its file system's root: unbuildable, denied in every class
 *   that has rules.
 * - Fail closed: with no remembered mount, or one of another file system, the change is
 *   denied as unbuildable (when the policy has write rules). Tracing programs are skipped
 *   when another task on the same CPU is inside the same program (their recursion guard;
 *   possible on kernels that preempt), and task storage can be busy: a missing record must
 *   not mean "allowed". Kernel code that changes a file for a task without asking for write
 *   access first (ecryptfs passing a change to its lower file) is refused with it.
 * - Overlayfs asks for write access to its upper layer's private mount inside the user's
 *   call, after the hook saw the overlay's own dentry; that mount is internal, so the inner
 *   change is not decided again.
 */
#ifndef UNITARMOR_ATTRS_H
#define UNITARMOR_ATTRS_H

#include "path.h"
#include "protect.h"

/* include/linux/fs.h */
#define ATTR_SIZE (1 << 3)
#define ATTR_ATIME (1 << 4)
#define ATTR_MTIME (1 << 5)

static __always_inline void remember_mnt(struct vfsmount *mnt)
{
	struct armor a;
	__u64 *held;

	if (!armored(&a))
		return;
	held = bpf_task_storage_get(&write_mnt, bpf_get_current_task_btf(), 0,
				    BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!held)
		return;
	/* Counted before it is set (maps.h: write_mnt_held). */
	if (!*held)
		__sync_fetch_and_add(&write_mnt_held, 1);
	*held = (__u64)mnt;
}

static __always_inline void forget_mnt(void)
{
	__u64 *held;

	/* No task holds a record: nothing to look up. A task's own count is seen here, as it
	 * was added by the same task, earlier. */
	if (!*(volatile __u64 *)&write_mnt_held)
		return;
	held = bpf_task_storage_get(&write_mnt, bpf_get_current_task_btf(), 0, 0);
	if (held && *held) {
		*held = 0;
		__sync_fetch_and_add(&write_mnt_held, -1);
	}
}

/* fexit: only a request that was granted is followed by a change and a drop. */
SEC("fexit/mnt_want_write")
int BPF_PROG(ua_want_write, struct vfsmount *m, int ret)
{
	if (!ret)
		remember_mnt(m);
	return 0;
}

SEC("fexit/mnt_want_write_file")
int BPF_PROG(ua_want_write_file, struct file *file, int ret)
{
	if (!ret)
		remember_mnt(BPF_CORE_READ(file, f_path.mnt));
	return 0;
}

SEC("fentry/mnt_drop_write")
int BPF_PROG(ua_drop_write, struct vfsmount *m)
{
	forget_mnt();
	return 0;
}

SEC("fentry/mnt_drop_write_file")
int BPF_PROG(ua_drop_write_file, struct file *file)
{
	forget_mnt();
	return 0;
}

/* Decides write operation `op` on `dentry`, named through the mount the current task was
 * given write access to. Without one (see the top of this file), the operation is denied as
 * unbuildable, named by the dentry's last component. */
static __always_inline int decide_dentry(__u8 op, struct dentry *dentry)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct vfsmount *mnt = 0;
	struct scratch *s;
	struct armor a;
	struct qstr name;
	__u64 *held;
	__u32 len;

	if (!armored(&a) || !(a.pol->header.classes & (1 << UA_CLASS_WRITE)))
		return 0;
	held = bpf_task_storage_get(&write_mnt, task, 0, 0);
	if (held)
		mnt = (struct vfsmount *)*held;
	if (mnt && BPF_CORE_READ(mnt, mnt_sb) == BPF_CORE_READ(dentry, d_sb))
		return decide(UA_CLASS_WRITE, op, mnt, dentry);
	/* Kernel code acting with credentials of its own (overlayfs copying a file up, which
	 * since 6.7 takes write access without mnt_want_write): its cause was decided on its own
	 * path. A task's own system call runs with its own credentials. */
	if (BPF_CORE_READ(task, cred) != BPF_CORE_READ(task, real_cred))
		return 0;
	s = get_scratch();
	if (!s)
		return -EACCES;
	name = BPF_CORE_READ(dentry, d_name);
	len = name.len & 0xff;
	claim_for_report(&a);
	bpf_probe_read_kernel(&s->path[slot(0, UA_PATH_MAX - len)], BOUND(len, 255), name.name);
	return decide_built(&a, s, UA_CLASS_WRITE, op, UA_PATH_MAX - len, PATH_UNBUILDABLE);
}

/* utimes sets ATTR_ATIME, ATTR_MTIME or both. Truncation sets ATTR_MTIME with ATTR_SIZE and
 * is decided at path_truncate or (6.2+, open with O_TRUNC) file_truncate, chmod and chown at
 * their path hooks. */
static __always_inline int set_times(struct dentry *dentry, struct iattr *attr)
{
	unsigned int valid = BPF_CORE_READ(attr, ia_valid);

	if (!(valid & (ATTR_ATIME | ATTR_MTIME)) || (valid & ATTR_SIZE))
		return 0;
	return decide_dentry(UA_OP_UTIMES, dentry);
}

/* Newer kernels: (idmap, dentry, attr). The loader keeps the variant whose arguments the
 * kernel's hook has (by its BTF), whichever release made the change. */
SEC("lsm/inode_setattr")
int BPF_PROG(ua_inode_setattr, void *idmap, struct dentry *dentry, struct iattr *attr)
{
	return set_times(dentry, attr);
}

/* 6.1: (dentry, attr). */
SEC("lsm/inode_setattr")
int BPF_PROG(ua_inode_setattr_2, struct dentry *dentry, struct iattr *attr)
{
	return set_times(dentry, attr);
}

/* security.*, trusted.* and ACLs are an implicit protection (protect.h); every xattr is a
 * write. The first argument is the mount's user namespace on 6.1 and its idmap later. */
SEC("lsm/inode_setxattr")
int BPF_PROG(ua_inode_setxattr, void *idmap, struct dentry *dentry, const char *name)
{
	struct armor a;

	if (security_xattr(name) && protected(&a, UA_PROT_XATTR))
		return deny_protected(&a, UA_PROT_XATTR, UA_OP_SETXATTR, name, 0, 0);
	return decide_dentry(UA_OP_SETXATTR, dentry);
}

SEC("lsm/inode_removexattr")
int BPF_PROG(ua_inode_removexattr, void *idmap, struct dentry *dentry, const char *name)
{
	struct armor a;

	if (security_xattr(name) && protected(&a, UA_PROT_XATTR))
		return deny_protected(&a, UA_PROT_XATTR, UA_OP_REMOVEXATTR, name, 0, 0);
	return decide_dentry(UA_OP_REMOVEXATTR, dentry);
}

/* 6.2+: ACLs no longer pass through inode_setxattr. Loaded only where the hook exists. */
SEC("lsm/inode_set_acl")
int BPF_PROG(ua_inode_set_acl, void *idmap, struct dentry *dentry, const char *acl_name)
{
	struct armor a;

	if (protected(&a, UA_PROT_XATTR))
		return deny_protected(&a, UA_PROT_XATTR, UA_OP_SETXATTR, acl_name, 0, 0);
	return decide_dentry(UA_OP_SETXATTR, dentry);
}

SEC("lsm/inode_remove_acl")
int BPF_PROG(ua_inode_remove_acl, void *idmap, struct dentry *dentry, const char *acl_name)
{
	struct armor a;

	if (protected(&a, UA_PROT_XATTR))
		return deny_protected(&a, UA_PROT_XATTR, UA_OP_REMOVEXATTR, acl_name, 0, 0);
	return decide_dentry(UA_OP_REMOVEXATTR, dentry);
}

#endif
