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
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_RINGBUF = 27,
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
	BPF_F_NO_PREALLOC = 1,
};

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

struct dentry {
	struct dentry *d_parent;
	struct qstr d_name;
};

struct vfsmount {
	struct dentry *mnt_root;
};

/* fs/mount.h: the vfsmount is embedded in struct mount; container_of() finds the mount. */
struct mount {
	struct mount *mnt_parent;
	struct dentry *mnt_mountpoint;
	struct vfsmount mnt;
};

struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
};

struct file {
	struct path f_path;
	unsigned int f_flags;
	unsigned int f_mode;
};

struct linux_binprm {
	struct file *file;
};

struct fs_struct {
	struct path root;
};

struct ns_common {
	unsigned int inum;
};

struct mnt_namespace {
	struct ns_common ns;
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

struct task_struct {
	struct mm_struct *mm;
	int pid;
	int tgid;
	struct fs_struct *fs;
	struct nsproxy *nsproxy;
	const struct cred *cred;
	char comm[16];
};

struct kernfs_node {
	struct kernfs_node *parent;
	__u64 id;
};

struct cgroup {
	struct kernfs_node *kn;
};

#pragma clang attribute pop

#endif
