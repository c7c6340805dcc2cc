/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Switching the armor off or walking around it: bpf(), mounts, writes to other units'
 * cgroups, inode flags (security extended attributes: attrs.h). Implicit protections, checked by
 * identity (the file system, the kernfs node), so that another name changes nothing.
 */
#ifndef UNITARMOR_PROTECT_H
#define UNITARMOR_PROTECT_H

#include "path.h"
#include "procs.h"
#include "pending.h"
#include "calls.h"

#define MAY_WRITE 0x2
#define KERNFS_TYPE_MASK 0x000f
#define KERNFS_DIR 0x0001

#define FS_IOC_SETFLAGS 0x40086602
#define FS_IOC32_SETFLAGS 0x40046602
#define FS_IOC_FSSETXATTR 0x401c5820

/* Every bpf() command: maps, programs and links can be found by id, and pins opened. */
SEC("lsm/bpf")
int BPF_PROG(ua_bpf, int cmd, union bpf_attr *attr, unsigned int size)
{
	struct armor a;

	if (!protected(&a, UA_PROT_BPF))
		return 0;
	return deny_protected(&a, UA_PROT_BPF, UA_OP_BPF, 0, 0, cmd);
}

/* mount(2) of any kind: new file systems, binds, remounts, moves, propagation changes. */
SEC("lsm/sb_mount")
int BPF_PROG(ua_sb_mount, const char *dev_name, const struct path *path, const char *type,
	     unsigned long flags, void *data)
{
	struct armor a;

	if (!protected(&a, UA_PROT_MOUNT))
		return 0;
	return deny_protected_path(&a, UA_PROT_MOUNT, UA_OP_MOUNT, BPF_CORE_READ(path, mnt),
				   BPF_CORE_READ(path, dentry));
}

SEC("lsm/sb_umount")
int BPF_PROG(ua_sb_umount, struct vfsmount *mnt, int flags)
{
	struct armor a;

	if (!protected(&a, UA_PROT_MOUNT))
		return 0;
	return deny_protected_path(&a, UA_PROT_MOUNT, UA_OP_UMOUNT, mnt, BPF_CORE_READ(mnt, mnt_root));
}

/* Attaching a tree made with open_tree() or fsmount() (there is no hook for those). */
SEC("lsm/move_mount")
int BPF_PROG(ua_move_mount, const struct path *from_path, const struct path *to_path)
{
	struct armor a;

	if (!protected(&a, UA_PROT_MOUNT))
		return 0;
	return deny_protected_path(&a, UA_PROT_MOUNT, UA_OP_MOVE_MOUNT, BPF_CORE_READ(to_path, mnt),
				   BPF_CORE_READ(to_path, dentry));
}

SEC("lsm/sb_pivotroot")
int BPF_PROG(ua_sb_pivotroot, const struct path *old_path, const struct path *new_path)
{
	struct armor a;

	if (!protected(&a, UA_PROT_MOUNT))
		return 0;
	return deny_protected_path(&a, UA_PROT_MOUNT, UA_OP_PIVOT_ROOT, BPF_CORE_READ(new_path, mnt),
				   BPF_CORE_READ(new_path, dentry));
}

/* fanotify_mark(), inotify_add_watch() and dnotify's fcntl all ask path_notify. A fanotify
 * mark on a whole mount or file system hands the listener a descriptor, opened in its own
 * context, for each file any process opens there, under the name that process used (a bind
 * mount of another namespace, say) rather than one the unit's rules were written for. A
 * permission event holds each process that opens the file until the listener answers: PID 1
 * and the daemon among them. Both are refused. inotify and dnotify mark inodes only, never
 * with permission bits (the kernel masks theirs to the plain events), and fanotify inode
 * marks without them stay: the descriptors they hand over pass file_open like any open. */
#define FSNOTIFY_OBJ_TYPE_INODE 0
/* FS_OPEN_PERM, FS_ACCESS_PERM, FS_OPEN_EXEC_PERM, and 6.14's FS_PRE_ACCESS. */
#define FS_PERMISSION_EVENTS 0x00170000ull

SEC("lsm/path_notify")
int BPF_PROG(ua_path_notify, const struct path *path, __u64 mask, unsigned int obj_type)
{
	bool perm = mask & FS_PERMISSION_EVENTS;
	struct report r = {
		.rule = UA_RULE_PROTECT + UA_PROT_FANOTIFY,
		.class = UA_CLASS_PROTECT,
		.op = UA_OP_FANOTIFY,
		.arg = (obj_type & 0xff) | (perm ? 0x100 : 0),
	};
	struct scratch *s;
	struct armor a;

	if ((obj_type == FSNOTIFY_OBJ_TYPE_INODE && !perm) || !protected(&a, UA_PROT_FANOTIFY))
		return 0;
	s = get_scratch();
	if (!s)
		return -EPERM;
	claim_for_report(&a);
	r.pos = build_path(s, BPF_CORE_READ(path, mnt), BPF_CORE_READ(path, dentry), &r.status, 0);
	return deny(&a, s, &r, -EPERM);
}

#define CAP_SYS_ADMIN 21
/* The same numbers on every architecture (system calls from 424 on are shared). */
#define NR_OPEN_TREE 428
#define NR_FSOPEN 430
#define NR_FSMOUNT 432
#define NR_FSPICK 433
#define NR_MOUNT_SETATTR 442
#define NR_OPEN_TREE_ATTR 467

#define CAP_SYS_CHROOT 18

/* Whether the current task is in setns(2): 308 on x86-64 (x32 too), 268 on arm64, 346 for
 * i386's `int $0x80`, 375 for arm's. */
static __always_inline bool in_setns(void)
{
	return nr_is(syscall_abi_nr(), 308, 268, 346, 375);
}

/* setns() into a mount namespace: the only part of setns that asks CAP_SYS_CHROOT
 * (mntns_install). A descriptor of another namespace, however the unit came by it (an nsfs
 * file bind-mounted where it can open it, one passed to it, an nsfs ioctl), would undo
 * ProtectSystem=, InaccessiblePaths= and the like, and show the host's files under the
 * names the rules were written for its own view. Refused at that capability check; the
 * unit's own new namespaces (unshare) ask nothing of the kind. */
static __always_inline int setns_mnt_capable(void)
{
	struct armor a;

	if (!in_setns() || !protected(&a, UA_PROT_MOUNT))
		return 0;
	return deny_protected(&a, UA_PROT_MOUNT, UA_OP_NS_JOIN, 0, 0, 0);
}

/*
 * The new mount API has no LSM hook where it matters: mount_setattr(2) clears read-only or
 * noexec on a mount of the unit's own namespace (undoing ProtectSystem= and ReadOnlyPaths=),
 * fspick(2) reconfigures a mounted file system, fsopen(2) + fsconfig(CREATE) applies a file
 * system's options with no mount at all (cgroup2's nsdelegate, for the whole system), and
 * fsmount(2) and open_tree(OPEN_TREE_CLONE) make detached trees. Each requires CAP_SYS_ADMIN
 * first: refused at that capability check (caps.h's program), when the system call is one of
 * them.
 */
/* `nr` is syscall_abi_nr()'s: these calls have one number in every table (they are newer than
 * the tables' split), so a 32-bit call's tag is dropped. */
static __always_inline int mount_api_capable(int cap, long nr)
{
	struct armor a;

	if (cap == CAP_SYS_CHROOT)
		return setns_mnt_capable();
	if (cap != CAP_SYS_ADMIN || nr < 0)
		return 0;
	nr &= ~UA_NR_COMPAT;
	if (nr != NR_MOUNT_SETATTR && nr != NR_FSPICK && nr != NR_FSOPEN && nr != NR_FSMOUNT &&
	    nr != NR_OPEN_TREE && nr != NR_OPEN_TREE_ATTR)
		return 0;
	if (!protected(&a, UA_PROT_MOUNT))
		return 0;
	return deny_protected(&a, UA_PROT_MOUNT, UA_OP_MOUNT_API, 0, 0, nr);
}

/*
 * Disks and root's helpers handed over through netlink: NBD's generic netlink family connects
 * a block device to a socket the unit serves (or swaps the socket of one root set up), iSCSI's
 * and the SCSI transports' families make SCSI disks, dm-log-userspace and uvesafb answer over
 * the connector, and a kobject uevent sent by user space reaches udev as the kernel's own (its
 * rules run programs as root). None has an LSM hook of its own, and the message is the
 * unit's to write; each handler runs inside the send, as the sender, and first checks
 * CAP_SYS_ADMIN (netlink_capable()): refused at that check (caps.h's program) while the task
 * is in the system call whose netlink message it sent. Only handlers that ask for
 * CAP_SYS_ADMIN are refused: rtnetlink, sd-netlink's queries and audit keep working.
 */
/* struct netlink_skb_parms in skb->cb: credentials (12 bytes), portid, then dst_group. */
#define NETLINK_CB_DST_GROUP 16

SEC("lsm/netlink_send")
int BPF_PROG(ua_netlink_send, struct sock *sk, struct sk_buff *skb)
{
	struct ua_netlink_send *ns;
	struct armor a;
	__u32 group = 0, proto;

	if (!armored(&a))
		return 0;
	proto = BPF_CORE_READ(sk, sk_protocol);
	/* A multicast message reaches user space listeners as if the kernel or udevd had sent
	 * it: PID 1 takes a udev event from any root sender (uid 0 is all it checks) and starts
	 * the units its SYSTEMD_WANTS= names. Protection `bus`: a way to ask PID 1. */
	bpf_probe_read_kernel(&group, sizeof(group),
			      (void *)skb + bpf_core_field_offset(struct sk_buff, cb) +
				      NETLINK_CB_DST_GROUP);
	if (group && protects(&a, UA_PROT_BUS))
		return deny_protected(&a, UA_PROT_BUS, UA_OP_NETLINK_MULTICAST, 0, 0,
				      proto | group << 16);
	if (!protects(&a, UA_PROT_RUNS_AS_ROOT))
		return 0;
	ns = bpf_task_storage_get(&netlink_sends, bpf_get_current_task_btf(), 0,
				  BPF_LOCAL_STORAGE_GET_F_CREATE);
	/* Without the note the handler's check could not be told from any other: fail closed. */
	if (!ns)
		return deny_protected(&a, UA_PROT_RUNS_AS_ROOT, UA_OP_NETLINK_ADMIN, 0, 0, proto);
	ns->nr = syscall_abi_nr();
	ns->proto = proto;
	ns->set = 1;
	return 0;
}

/* CAP_SYS_ADMIN asked inside a netlink send of an armored task (see above). The note stays
 * for the rest of that system call, since one send may carry several messages, each checked;
 * a check in another system call finds it stale and clears it. A later system call of the
 * same number with no capability check between them is refused CAP_SYS_ADMIN too (fail
 * closed: the note cannot tell two calls of one number apart). */
/* `nr` is syscall_abi_nr()'s, as the note's (netlink_send). */
static __always_inline int netlink_admin_capable(int cap, long nr)
{
	struct ua_netlink_send *ns;
	struct armor a;

	if (cap != CAP_SYS_ADMIN)
		return 0;
	ns = bpf_task_storage_get(&netlink_sends, bpf_get_current_task_btf(), 0, 0);
	if (!ns || !ns->set)
		return 0;
	if (ns->nr != nr) {
		ns->set = 0;
		return 0;
	}
	if (!protected(&a, UA_PROT_RUNS_AS_ROOT))
		return 0;
	return deny_protected(&a, UA_PROT_RUNS_AS_ROOT, UA_OP_NETLINK_ADMIN, 0, 0, ns->proto);
}

/* Whether `name` is a file a delegated unit is given in its own cgroup (systemd chowns these
 * to a Delegate=yes unit's user), or one that acts on the unit alone (kill, freeze). */
static __always_inline bool delegatee_file(const char *name)
{
	/* Compared eight bytes at a time, without a branch per byte: the verifier walks each
	 * branch of an unrolled byte loop. */
	static const union {
		char s[24];
		__u64 w[3];
	} files[] = {
		{ "cgroup.procs" }, { "cgroup.threads" }, { "cgroup.subtree_control" },
		{ "cgroup.kill" }, { "cgroup.freeze" }, { "memory.oom.group" }, { "memory.reclaim" },
	};
	union {
		char s[24];
		__u64 w[3];
	} n = {};
	bool found = false;
	int i;

	bpf_probe_read_kernel_str(n.s, sizeof(n.s), name);
#pragma unroll
	for (i = 0; i < (int)(sizeof(files) / sizeof(files[0])); i++)
		found |= !((n.w[0] ^ files[i].w[0]) | (n.w[1] ^ files[i].w[1]) |
			   (n.w[2] ^ files[i].w[2]));
	return found;
}

/*
 * Writes in cgroupfs (opening a cgroup file for writing, mkdir, rmdir, rename, and the check
 * clone3(CLONE_INTO_CGROUP) makes on the target's cgroup.procs) are allowed only inside the
 * caller's own unit tree. Decided by the kernfs node's cgroup id, so neither the path nor a
 * cgroup namespace matters. Cheap for everything else: most calls are lookups, not writes.
 */
SEC("lsm/inode_permission")
int BPF_PROG(ua_inode_permission, struct inode *inode, int mask)
{
	struct kernfs_node *kn;
	struct armor a;
	__u64 cgid, magic;

	if (!(mask & MAY_WRITE))
		return 0;
	/* Every write's permission check comes here: direct loads, not probe reads. */
	magic = inode->i_sb->s_magic;
	if (magic != CGROUP2_SUPER_MAGIC && magic != CGROUP_SUPER_MAGIC)
		return 0;
	if (!protected(&a, UA_PROT_CGROUPS))
		return 0;
	kn = BPF_CORE_READ(inode, i_private);
	/* A cgroup v1 hierarchy (a host booted with them, or one mounted by hand): its root's
	 * release_agent is a program the kernel runs as root, and its nodes have no relation
	 * to the unit's cgroup2 tree that could be checked here. Every write in one is refused;
	 * systemd's own set-up (attaching the task in each hierarchy) is not the service. */
	if (magic == CGROUP_SUPER_MAGIC)
		return deny_protected(&a, UA_PROT_CGROUPS, UA_OP_CGROUP_WRITE,
				      kn ? BPF_CORE_READ(kn, name) : 0, 0, UA_CGROUP_V1);
	if (!kn)
		return 0;
	if ((BPF_CORE_READ(kn, flags) & KERNFS_TYPE_MASK) == KERNFS_DIR) {
		cgid = BPF_CORE_READ(kn, id);
	} else {
		cgid = kn_parent_id(kn);
		/* The unit's own cgroup's limits (memory.max, pids.max, cgroup.max.descendants)
		 * are its parent's to set, as in cgroup delegation: only the files a delegated
		 * unit is handed are its own there. */
		if (cgid == a.binding.root && !delegatee_file(BPF_CORE_READ(kn, name)))
			return deny_protected(&a, UA_PROT_CGROUPS, UA_OP_CGROUP_WRITE,
					      BPF_CORE_READ(kn, name), 0, 0);
	}
	if (in_unit(cgid, a.binding.root))
		return 0;
	return deny_protected(&a, UA_PROT_CGROUPS, UA_OP_CGROUP_WRITE, BPF_CORE_READ(kn, name), 0, 0);
}

/*
 * A new cgroup below a unit's own is counted against the unit's sub-cgroup budget (ua_config):
 * a mkdir beyond it fails with ENOSPC, whoever makes it and whatever the unit's mode, so that
 * no unit can fill `bound` and leave other units' new cgroups unbound. Units in a slice are
 * cgroups systemd makes: not counted.
 */
SEC("lsm/inode_mkdir")
int BPF_PROG(ua_inode_mkdir, struct inode *dir, struct dentry *dentry, umode_t mode)
{
	struct kernfs_node *kn;
	struct ua_binding *b;
	struct scratch *s;
	struct armor a;
	__u64 parent;
	long n;

	/* A directory made elsewhere may be a unit's drop-in directory (pending.h). */
	if (dir->i_sb->s_magic != CGROUP2_SUPER_MAGIC)
		return note_unit_write(dentry->d_parent, dentry, NULL);
	kn = BPF_CORE_READ(dir, i_private);
	if (!kn)
		return 0;
	parent = BPF_CORE_READ(kn, id);
	b = bpf_map_lookup_elem(&bound, &parent);
	if (!b || (b->flags & UA_BIND_SLICE) || tree_has_room(b->root, b->flags & UA_BIND_USER))
		return 0;
	s = get_scratch();
	if (armored(&a) && s) {
		struct report r = {
			.rule = UA_RULE_FULL,
			.class = UA_CLASS_PROTECT,
			.op = UA_OP_MKDIR,
			.verdict = UA_VERDICT_DENIED,
			.pos = UA_PATH_MAX,
		};

		claim_for_report(&a);
		n = bpf_probe_read_kernel_str(&s->path[UA_PATH_MAX - 256], 256,
					      BPF_CORE_READ(dentry, d_name.name));
		if (n > 1)
			r.pos = UA_PATH_MAX - 256;
		emit(&a, s, &r);
	}
	return -ENOSPC;
}

/* security.* (file capabilities, other LSMs' labels), trusted.*, and ACLs set as xattrs. */
static __always_inline bool security_xattr(const char *name)
{
	char n[18] = {};

	bpf_probe_read_kernel_str(n, sizeof(n), name);
	if (n[0] == 's' && n[1] == 'e' && n[2] == 'c' && n[3] == 'u' && n[4] == 'r' && n[5] == 'i' &&
	    n[6] == 't' && n[7] == 'y' && n[8] == '.')
		return true;
	if (n[0] == 't' && n[1] == 'r' && n[2] == 'u' && n[3] == 's' && n[4] == 't' && n[5] == 'e' &&
	    n[6] == 'd' && n[7] == '.')
		return true;
	return n[0] == 's' && n[1] == 'y' && n[2] == 's' && n[3] == 't' && n[4] == 'e' &&
	       n[5] == 'm' && n[6] == '.' && n[7] == 'p' && n[8] == 'o' && n[9] == 's' &&
	       n[10] == 'i' && n[11] == 'x' && n[12] == '_' && n[13] == 'a' && n[14] == 'c' &&
	       n[15] == 'l';
}

/* ioctl type and number, whatever the argument's size (native and 32-bit callers differ). */
#define IOC_TYPE_NR(cmd) ((cmd) & 0xffff)
/* XFS_IOC_ATTRMULTI_BY_HANDLE: any xattr (user, trusted, security) of the file a handle
 * names, through a descriptor of any file on the file system; no xattr hook is called. */
#define XFS_ATTRMULTI_BY_HANDLE 0x587b
/* FS_IOC_ENABLE_VERITY (makes the file read-only for good) and FAT_IOCTL_SET_ATTRIBUTES
 * (read-only, hidden and system bits): changes to a file through a read-only descriptor. */
#define FS_ENABLE_VERITY 0x6685
#define FAT_IOCTL_SET_ATTRIBUTES 0x40047211

/* btrfs subvolume snapshots (new names for every file of a subvolume, which path rules do not
 * cover) and subvolume creation and deletion (whole trees made or removed with no path hook):
 * BTRFS_IOC_SNAP_CREATE, SUBVOL_CREATE, SNAP_DESTROY and their _V2 forms, type 0x94. */
static __always_inline bool btrfs_subvolume_ioctl(unsigned int cmd)
{
	__u32 nr = cmd & 0xff;

	return ((cmd >> 8) & 0xff) == 0x94 &&
	       (nr == 1 || nr == 14 || nr == 15 || nr == 23 || nr == 24 || nr == 63);
}

/* btrfs ioctls that reach every file's contents or a whole disk without opening either, each
 * needing only CAP_SYS_ADMIN: TREE_SEARCH and its _V2 (nr 17: raw tree items, small files'
 * inline data included), SEND (38: a stream of a read-only snapshot's files), ADD_DEV (10),
 * RM_DEV (11), RM_DEV_V2 (58) and DEV_REPLACE (53), which make btrfs open and write devices. */
static __always_inline bool btrfs_raw_ioctl(unsigned int cmd)
{
	__u32 nr = cmd & 0xff;

	return ((cmd >> 8) & 0xff) == 0x94 &&
	       (nr == 17 || nr == 38 || nr == 10 || nr == 11 || nr == 58 || nr == 53);
}

/* nsfs's NS_MNT_GET_NEXT and NS_MNT_GET_PREV (6.11 and later): a descriptor for the next or
 * previous mount namespace on the system, asked only for CAP_SYS_ADMIN over it, with no ptrace
 * check (unlike /proc/PID/ns/mnt or a pidfd). setns() into the host's would undo
 * ProtectSystem=, ReadOnlyPaths=, InaccessiblePaths= and RootDirectory= at once. nsfs picks
 * these "extensible" ioctls by number alone (any type, direction and size), so only the
 * number is compared. (setns() into a mount namespace is refused too, below, however the
 * descriptor was had.) */
static __always_inline bool mntns_walk_ioctl(unsigned int cmd)
{
	__u32 nr = cmd & 0xff;

	return nr == 11 || nr == 12;
}

/* Inode flags (immutable, append-only and the like) and the ioctls above. */
static __always_inline int file_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct vfsmount *mnt = BPF_CORE_READ(file, f_path.mnt);
	struct dentry *dentry = BPF_CORE_READ(file, f_path.dentry);
	struct armor a;
	int ret;

	if (cmd == FIOSETOWN || cmd == SIOCSPGRP)
		return ioctl_set_owner(cmd);
	ret = system_ioctl(file, cmd, arg);
	if (ret)
		return ret;
	if (IOC_TYPE_NR(cmd) == XFS_ATTRMULTI_BY_HANDLE &&
	    BPF_CORE_READ(file, f_inode, i_sb, s_magic) == XFS_SUPER_MAGIC) {
		if (protected(&a, UA_PROT_XATTR))
			return deny_protected_path(&a, UA_PROT_XATTR, UA_OP_SETFLAGS, mnt, dentry);
		/* Lifted (ArmorExempt=xattr): the handle may name any file, so write rules
		 * cannot be applied to it; denied where there are any. */
		if (armored(&a) && (a.pol->header.classes & (1 << UA_CLASS_WRITE)) && !setup_phase()) {
			struct scratch *s = get_scratch();

			return s ? decide_state(&a, s, UA_CLASS_WRITE, UA_OP_SETXATTR, UA_PATH_MAX,
						PATH_UNBUILDABLE, 0, 0, false) :
				   -EACCES;
		}
		return 0;
	}
	if (cmd == FS_IOC_SETFLAGS || cmd == FS_IOC32_SETFLAGS || cmd == FS_IOC_FSSETXATTR) {
		if (!protected(&a, UA_PROT_XATTR))
			return 0;
		return deny_protected_path(&a, UA_PROT_XATTR, UA_OP_SETFLAGS, mnt, dentry);
	}
	if (btrfs_subvolume_ioctl(cmd) &&
	    BPF_CORE_READ(file, f_inode, i_sb, s_magic) == BTRFS_SUPER_MAGIC) {
		if (!protected(&a, UA_PROT_MOUNT))
			return 0;
		return deny_protected_path(&a, UA_PROT_MOUNT, UA_OP_SUBVOLUME, mnt, dentry);
	}
	if (btrfs_raw_ioctl(cmd) &&
	    BPF_CORE_READ(file, f_inode, i_sb, s_magic) == BTRFS_SUPER_MAGIC) {
		if (!protected(&a, UA_PROT_RUNS_AS_ROOT))
			return 0;
		return deny_protected_path(&a, UA_PROT_RUNS_AS_ROOT, UA_OP_BTRFS_RAW, mnt, dentry);
	}
	if (mntns_walk_ioctl(cmd) && BPF_CORE_READ(file, f_inode, i_sb, s_magic) == NSFS_MAGIC) {
		if (!protected(&a, UA_PROT_MOUNT))
			return 0;
		return deny_protected(&a, UA_PROT_MOUNT, UA_OP_NS_JOIN, 0, 0, cmd & 0xff);
	}
	if (IOC_TYPE_NR(cmd) == FS_ENABLE_VERITY || cmd == FAT_IOCTL_SET_ATTRIBUTES)
		return decide(UA_CLASS_WRITE, UA_OP_SETFLAGS, mnt, dentry);
	return 0;
}

SEC("lsm/file_ioctl")
int BPF_PROG(ua_file_ioctl, struct file *file, unsigned int cmd, unsigned long arg)
{
	return file_ioctl(file, cmd, arg);
}

/* 32-bit callers (6.8+, and some stable kernels). Loaded only where the hook exists. */
SEC("lsm/file_ioctl_compat")
int BPF_PROG(ua_file_ioctl_compat, struct file *file, unsigned int cmd, unsigned long arg)
{
	return file_ioctl(file, cmd, arg);
}

#endif
