/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The few kernel types the unitarmor BPF programs read, declared by hand with only the fields
 * they use. preserve_access_index makes every access a CO-RE relocation, so libbpf patches the
 * offsets to the running kernel's BTF at load time (as systemd's own BPF programs do); a full
 * generated vmlinux.h would tie the build to one machine's kernel for no gain.
 */
#ifndef UNITARMOR_VMLINUX_H
#define UNITARMOR_VMLINUX_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef __u16 umode_t;
typedef _Bool bool;
enum { false = 0, true = 1 };

enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_HASH = 5,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_RINGBUF = 27,
	BPF_MAP_TYPE_INODE_STORAGE = 28,
	BPF_MAP_TYPE_TASK_STORAGE = 29,
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
	BPF_EXIST = 2,
	BPF_F_NO_PREALLOC = 1,
	BPF_LOCAL_STORAGE_GET_F_CREATE = 1,
	BPF_RB_AVAIL_DATA = 0,
};

/* uapi: a dynptr's opaque state, on the program's stack (report.h: a ring buffer record whose
 * size is known only at run time). */
struct bpf_dynptr {
	__u64 __opaque[2];
} __attribute__((aligned(8)));

union bpf_attr;
struct kernel_siginfo;

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

typedef struct { __u32 val; } kuid_t;
typedef struct { __u32 val; } kgid_t;

struct qstr {
	union {
		struct {
			__u32 hash;
			__u32 len;
		};
		__u64 hash_len;
	};
	const unsigned char *name;
};

struct file_system_type {
	const char *name;
	int fs_flags;
};

struct dentry;
struct completion;

struct super_block {
	__u32 s_dev;
	unsigned long s_magic;
	struct file_system_type *s_type;
	struct dentry *s_root;
};

struct inode {
	umode_t i_mode;
	__u32 i_rdev;
	unsigned long i_ino;
	unsigned int i_nlink; /* a member of an anonymous union there: CO-RE finds it */
	__u32 i_generation;
	struct super_block *i_sb;
	void *i_private;
};

struct dentry {
	struct dentry *d_parent;
	struct qstr d_name;
	struct inode *d_inode;
	struct super_block *d_sb;
};

struct vfsmount {
	struct dentry *mnt_root;
	struct super_block *mnt_sb;
};

struct iattr {
	unsigned int ia_valid;
};

struct mount;
struct mnt_namespace;

/* fs/mount.h: the vfsmount is embedded in struct mount; container_of() finds the mount. */
struct mount {
	struct mount *mnt_parent;
	struct dentry *mnt_mountpoint;
	struct vfsmount mnt;
	struct mnt_namespace *mnt_ns;
};

struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
};

struct file {
	struct path f_path;
	struct inode *f_inode;
	unsigned int f_flags;
	unsigned int f_mode;
	void *private_data;
};

/* drivers/tty/tty.h: a terminal file's private data. */
struct tty_file_private {
	struct tty_struct *tty;
};

/* include/linux/tty.h (5.14 and later keep the job-control fields in `ctrl`): the session
 * the terminal is the controlling terminal of, if any. */
struct tty_struct {
	struct {
		struct pid *session;
	} ctrl;
};

struct linux_binprm {
	struct file *file;
};

struct fs_struct {
	struct path root;
};

struct miscdevice {
	int minor;
	const char *name;
};

struct ns_common {
	unsigned int inum;
};

/* fs/mount.h */
struct mnt_namespace {
	struct ns_common ns;
	struct mount *root;
	__u64 seq; /* 0 for the anonymous namespaces of detached trees */
};

struct pid_namespace {
	struct ns_common ns;
};

struct user_namespace {
	struct ns_common ns;
};

struct nsproxy {
	struct mnt_namespace *mnt_ns;
	struct pid_namespace *pid_ns_for_children;
};

struct cred {
	kuid_t uid;
	struct user_namespace *user_ns;
};

struct mm_struct {
	struct file *exe_file;
};

struct vm_area_struct {
	struct file *vm_file;
};

struct kernfs_node;
struct cgroup;

struct css_set {
	struct cgroup *dfl_cgrp;
};

struct hlist_node {
	struct hlist_node *next;
};

struct hlist_head {
	struct hlist_node *first;
};

/* include/linux/pid.h: a pid's number in each pid namespace from the initial one (level 0)
 * down to the one it was made in. */
struct upid {
	int nr;
	struct pid_namespace *ns;
};

struct pid {
	unsigned int level;
	struct hlist_head tasks[4]; /* by enum pid_type: PIDTYPE_PID first */
	struct upid numbers[1];
};

/* The task's low-level state: x86's status (TS_COMPAT while in a 32-bit system call) and
 * arm64's flags (TIF_32BIT for an AArch32 task). Each architecture has only some of these. */
struct thread_info {
	unsigned long flags;
	__u32 status;
};

struct task_struct {
	struct thread_info thread_info;
	unsigned long nvcsw;  /* context switches: voluntary */
	unsigned long nivcsw; /* and involuntary (preemption) */
	struct css_set *cgroups;
	struct mm_struct *mm;
	int pid;
	int tgid;
	struct task_struct *real_parent;
	struct task_struct *group_leader;
	struct pid *thread_pid;
	struct hlist_node pid_links[4];
	struct fs_struct *fs;
	struct nsproxy *nsproxy;
	const struct cred *real_cred;
	const struct cred *cred;
	char comm[16];
	__u64 self_exec_id; /* counts the task's execs (64 bits since 5.7) */
	struct completion *vfork_done; /* set while a vfork() child has neither executed nor exited */
};

/* fs/proc/internal.h: the inode of a /proc/PID/ file names its process's pid. */
struct proc_inode {
	struct pid *pid;
	struct inode vfs_inode;
};

/* The user registers saved at system call entry: the system call's number (x86-64; arm64's
 * is pt_regs___arm64, see syscall_nr()), and bx, a 32-bit call's first argument. */
struct pt_regs {
	unsigned long bx;
	unsigned long orig_ax;
};

struct pt_regs___arm64 {
	int syscallno;
};

/* include/linux/socket.h (msg_control is in an anonymous union there). */
struct msghdr {
	void *msg_name;
	int msg_namelen;
	void *msg_control;
	__u64 msg_controllen;
	unsigned int msg_flags;
};

struct kernfs_node {
	struct kernfs_node *parent;
	const char *name;
	__u64 id;
	unsigned short flags;
};

/* Linux 6.15 renamed kernfs_node.parent to __parent (RCU-protected); see kn_parent_id(). */
struct kernfs_node___new {
	struct kernfs_node *__parent;
};

struct cgroup {
	struct kernfs_node *kn;
};

struct sock_cgroup_data {
	struct cgroup *cgroup;
};

struct sock_common {
	__u32 skc_rcv_saddr; /* the bound IPv4 address, network order */
	unsigned short skc_family;
	__u16 skc_num; /* the local port, host order; 0 while unbound */
};

struct sock {
	struct sock_common __sk_common;
	struct sock_cgroup_data sk_cgrp_data;
	__u16 sk_protocol;
};

/* cb holds netlink's struct netlink_skb_parms for a netlink message (NETLINK_CB). */
struct sk_buff {
	char cb[48];
};

struct socket {
	short type;
	struct sock *sk;
};

struct sockaddr_un {
	unsigned short sun_family;
	char sun_path[108];
};

struct unix_address {
	int len;
	struct sockaddr_un name[];
};

/* include/net/af_unix.h: the sock is the first member. */
struct unix_sock {
	struct sock sk;
	struct unix_address *addr;
	struct path path;
};

struct cred;
struct perf_event_attr;

#pragma clang attribute pop

#endif
