/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * File hooks: opens, creation, removal, renames and links, attribute changes. Each decides the
 * read or write class on the object's path (path.h).
 *
 * Renames and links also must not give a file a second name with other rules: the source
 * and the target must end in DFA states that decide alike, in the policy's table and in the
 * protections' shared one (for a directory, the same states, since a minimized DFA's states
 * are its equivalence classes: everything below decides alike).
 */
#ifndef UNITARMOR_FILES_H
#define UNITARMOR_FILES_H

#include "decided.h"
#include "procs.h"
#include "pending.h"
#define MAJOR(dev) ((dev) >> 20)
#define MINOR(dev) ((dev) & 0xfffff)

/* Devices that reach every file (a disk, or commands passed to one) or all memory:
 * - block devices;
 * - /dev/mem, /dev/kmem, /dev/port (major 1), SCSI generic /dev/sg* (21), MTD flash (90),
 *   the CPUs' model-specific registers /dev/cpu/N/msr (202);
 * - misc devices (10) that make the kernel open or map disks, or dump memory: device-mapper's
 *   control (236: a table that points a volume at any sector), /dev/snapshot (231: the
 *   hibernation image, all memory), /dev/btrfs-control (234), the MPT HBA controls (220-222);
 * - the passthrough drivers' run-time majors in raw_majors (/dev/nvme*, /dev/ng*, /dev/bsg/...),
 *   and the misc devices of run-time minors in raw_misc (/dev/nvme-fabrics).
 * Decided by type and number, so a device node made elsewhere with mknod is the same device. */
static __always_inline bool raw_device(struct inode *inode)
{
	/* Direct loads: `inode` is always the hooks' typed pointer's. */
	umode_t mode = inode->i_mode & S_IFMT;
	__u32 rdev = inode->i_rdev;
	__u32 major = MAJOR(rdev), minor = MINOR(rdev);
	__u8 *run_time;

	if (mode == S_IFBLK)
		return true;
	if (mode != S_IFCHR)
		return false;
	if (major == 1)
		return minor == 1 || minor == 2 || minor == 4;
	if (major == 10) {
		/* ... and the watchdog (130: open it, set a second's timeout, never write, and the
		 * machine resets) and uinput (223: a keyboard of the unit's making types into the
		 * console's root shell). */
		if (minor == 236 || minor == 231 || minor == 234 || (minor >= 220 && minor <= 223) ||
		    minor == 130)
			return true;
		/* raw_misc overflowed (maps.h): every misc device. */
		run_time = bpf_map_lookup_elem(&raw_majors, &major);
		if (run_time && *run_time)
			return true;
		run_time = bpf_map_lookup_elem(&raw_misc, &minor);
		return run_time && *run_time;
	}
	/* SCSI generic, MTD flash, the CPUs' model-specific registers (/dev/cpu/N/msr:
	 * writing them runs code of the writer's choice in the kernel), and input devices (13:
	 * events written to one are typed into the console; read, they are its keystrokes). */
	if (major == 21 || major == 90 || major == 202 || major == 13)
		return true;
	run_time = bpf_map_lookup_elem(&raw_majors, &major);
	return run_time && *run_time;
}

#define REGION_NAME_MAX 32

/* Whether `n` (NUL-terminated) is the name a passthrough driver gives its character device
 * region, as /proc/devices lists it, or its misc device, as /proc/misc does: NVMe controllers and namespaces, SCSI bsg, RAID
 * controllers' management devices that pass SCSI commands to any disk (aacraid, MegaRAID,
 * 3ware), devices driven whole from user space (VFIO groups and devices, UIO: their DMA
 * reaches all memory), and the server end of ublk and VDUSE disks (it answers every read of
 * one); NVMe over fabrics' control (a connect string attaches an NVMe disk served from an
 * address the writer names, such as the unit's own NVMe/TCP listener) and megaraid_mm's.
 * src/kernel/devices.rs holds the same lists. */
static __always_inline bool passthrough_name(const char n[REGION_NAME_MAX])
{
	static const char names[18][REGION_NAME_MAX] = {
		"nvme", "nvme-generic", "bsg", "aac", "megaraid_sas_ioctl", "megadev_legacy",
		"twa", "twl", "twe", "vfio", "vfio-dev", "uio", "ublk-char", "vduse",
		/* the BMC (power cycles the machine, sets its out-of-band users) and watchdogs */
		"ipmidev", "watchdog",
		/* misc devices (misc_register): NVMe over fabrics' control, and megaraid_mm's
		 * management device, which passes mailbox commands to the controller's disks */
		"nvme-fabrics", "megadev0",
	};

	for (int i = 0; i < 18; i++) {
		for (int j = 0; j < REGION_NAME_MAX; j++) {
			if (n[j] != names[i][j])
				break;
			if (!n[j])
				return true;
		}
	}
	return false;
}

static __always_inline void note_region(const char *name, __u32 major)
{
	char n[REGION_NAME_MAX] = {};
	__u8 one = 1;

	if (bpf_probe_read_kernel_str(n, sizeof(n), name) > 0 && passthrough_name(n) &&
	    major < 4096)
		bpf_map_update_elem(&raw_majors, &major, &one, BPF_ANY);
}

/* A driver loaded after the daemon started (the NVMe module, on a host whose first NVMe disk
 * arrives later) registers its run-time major in one of these two functions: it joins
 * raw_majors as the function returns. alloc_chrdev_region() only reserves the numbers (the
 * device is added later); register_chrdev() also adds it, so an open that passed file_open
 * during the registration reaches the device (DESIGN, "Known limits"). */
SEC("fexit/alloc_chrdev_region")
int BPF_PROG(ua_chrdev_region, __u32 *dev, unsigned int baseminor, unsigned int count,
	     const char *name, int ret)
{
	__u32 first = 0;

	if (!ret && !bpf_probe_read_kernel(&first, sizeof(first), dev))
		note_region(name, MAJOR(first));
	return 0;
}

/* register_chrdev(): with major 0 the kernel picks one and returns it. */
SEC("fexit/__register_chrdev")
int BPF_PROG(ua_register_chrdev, unsigned int major, unsigned int baseminor, unsigned int count,
	     const char *name, const void *fops, int ret)
{
	if (ret >= 0)
		note_region(name, major ? major : (__u32)ret);
	return 0;
}

/* A misc device registered after the daemon started (its module loaded later): its minor,
 * given out now, joins raw_misc as misc_register() returns. The device is listed (and its
 * node made) inside the function, so an open that passed file_open during the registration
 * reaches it (DESIGN, "Known limits"). */
SEC("fexit/misc_register")
int BPF_PROG(ua_misc_register, struct miscdevice *misc, int ret)
{
	char n[REGION_NAME_MAX] = {};
	__u32 minor, misc_major = 10;
	__u8 one = 1;

	if (ret || bpf_probe_read_kernel_str(n, sizeof(n), BPF_CORE_READ(misc, name)) <= 0 ||
	    !passthrough_name(n))
		return 0;
	minor = BPF_CORE_READ(misc, minor);
	if (bpf_map_update_elem(&raw_misc, &minor, &one, BPF_ANY))
		bpf_map_update_elem(&raw_majors, &misc_major, &one, BPF_ANY);
	return 0;
}

/* /proc/kcore: all physical memory as an ELF core, page cache included, so every file's
 * contents whatever its read rules. Decided by identity: the entry "kcore" at the root of a
 * proc file system (any mount of it); `sb` is the file's, already known to be procfs. */
static __always_inline bool kcore(struct super_block *sb, struct dentry *dentry)
{
	char name[6] = {};

	if (BPF_CORE_READ(dentry, d_parent) != BPF_CORE_READ(sb, s_root) ||
	    BPF_CORE_READ(dentry, d_name.len) != 5)
		return false;
	bpf_probe_read_kernel(name, 5, BPF_CORE_READ(dentry, d_name.name));
	return name[0] == 'k' && name[1] == 'c' && name[2] == 'o' && name[3] == 'r' && name[4] == 'e';
}

SEC("lsm/file_open")
int BPF_PROG(ua_file_open, struct file *file)
{
	struct vfsmount *mnt;
	struct dentry *dentry;
	unsigned int mode;
	struct inode *inode;
	struct super_block *sb;
	struct armor a;
	__u64 epoch;
	bool proc;
	int err = 0;

	/* Every open of every process comes here: unarmored ones leave at the bound filter's one
	 * read, before reading anything of the file. The reads are direct loads through the
	 * hook's typed pointer, not helper calls. */
	if (!maybe_armored())
		return (file->f_mode & FMODE_WRITE) ? note_open_write(file) : 0;
	/* Before armored(): the decision cache's epochs must not count a header newer than the
	 * one `a` holds (decided.h). */
	epoch = read_epoch();
	/* Not armored after all (the filter's slot is shared, or the cgroup is bound to no
	 * policy): as above, but for systemd's set-up in a cgroup that waits for the daemon. */
	if (!armored(&a))
		return (!a.waiting && (file->f_mode & FMODE_WRITE)) ? note_open_write(file) : 0;
	mode = file->f_mode;
	if (open_waits(&a, mode))
		return wait_for_daemon();
	mnt = file->f_path.mnt;
	dentry = file->f_path.dentry;
	inode = file->f_inode;
	sb = inode->i_sb;
	/* The procfs checks below share one read of the superblock's magic. */
	proc = sb->s_magic == PROC_SUPER_MAGIC;
	if ((raw_device(inode) || (proc && kcore(sb, dentry))) && protects(&a, UA_PROT_RUNS_AS_ROOT))
		return deny_protected_path(&a, UA_PROT_RUNS_AS_ROOT, UA_OP_OPEN_DEVICE, mnt, dentry);
	if (proc && (mode & FMODE_WRITE) && (err = proc_write(file)))
		return err;
	/* The binding looked up above serves both decisions. */
	if ((mode & FMODE_READ) && has_class(&a, UA_CLASS_READ))
		err = decide_file(&a, UA_CLASS_READ, UA_OP_OPEN_READ, file, epoch);
	if (!err && (mode & FMODE_WRITE) && has_class(&a, UA_CLASS_WRITE))
		err = decide_file(&a, UA_CLASS_WRITE, UA_OP_OPEN_WRITE, file, epoch);
	/* Only a write that is let through marks its unit (pending.h). */
	if (!err)
		note_open_write(file);
	return err;
}

/* A descriptor received over a unix socket (SCM_RIGHTS) or taken with pidfd_getfd() was
 * opened elsewhere, without this unit's file_open: a raw device's is refused all the same. */
SEC("lsm/file_receive")
int BPF_PROG(ua_file_receive, struct file *file)
{
	struct armor a;

	if (!armored(&a) || !raw_device(file->f_inode) ||
	    !protected(&a, UA_PROT_RUNS_AS_ROOT))
		return 0;
	return deny_protected_path(&a, UA_PROT_RUNS_AS_ROOT, UA_OP_OPEN_DEVICE,
				   BPF_CORE_READ(file, f_path.mnt), BPF_CORE_READ(file, f_path.dentry));
}

/* Creation of a file, device node or FIFO, including open(O_CREAT) of a new file. */
SEC("lsm/path_mknod")
int BPF_PROG(ua_path_mknod, const struct path *dir, struct dentry *dentry)
{
	return decide_in(UA_CLASS_WRITE, UA_OP_CREATE, dir, dentry);
}

SEC("lsm/path_mkdir")
int BPF_PROG(ua_path_mkdir, const struct path *dir, struct dentry *dentry)
{
	return decide_in(UA_CLASS_WRITE, UA_OP_MKDIR, dir, dentry);
}

SEC("lsm/path_rmdir")
int BPF_PROG(ua_path_rmdir, const struct path *dir, struct dentry *dentry)
{
	return decide_in(UA_CLASS_WRITE, UA_OP_RMDIR, dir, dentry);
}

SEC("lsm/path_unlink")
int BPF_PROG(ua_path_unlink, const struct path *dir, struct dentry *dentry)
{
	return decide_in(UA_CLASS_WRITE, UA_OP_UNLINK, dir, dentry);
}

SEC("lsm/path_symlink")
int BPF_PROG(ua_path_symlink, const struct path *dir, struct dentry *dentry)
{
	return decide_in(UA_CLASS_WRITE, UA_OP_SYMLINK, dir, dentry);
}

/* The end state of the path of (mnt, dentry) in the policy's table, or -1 if it cannot be
 * built (or the path buffer was lost twice: path.h, claim()); *pstate is its state in the
 * protections' table. Under from= rules the walk starts after UA_FROM_ANY, where every rule
 * matches: a file keeps its name's rules for every executable, not only the renamer's. */
static __always_inline long state_of(struct armor *a, struct vfsmount *mnt, struct dentry *dentry,
				     __u32 *pos, __u32 *pstate)
{
	__u32 start = a->pol->header.from_tag ?
			      dfa_step(a->binding.policy, a->pol->header.start, UA_FROM_ANY) :
			      a->pol->header.start;
	__u64 b = path_state(a, mnt, dentry, UA_CLASS_WRITE, start);

	*pos = BUILT_POS(b);
	*pstate = BUILT_PSTATE(b);
	if (!BUILT_KEPT(b) || BUILT_STATUS(b) == PATH_UNBUILDABLE)
		return -1;
	return BUILT_STATE(b);
}

/* Whether the protections in force match two paths that ended in states `f` and `t` of the
 * shared table alike, for every class they have paths in. */
static __always_inline bool same_protections(struct armor *a, __u32 f, __u32 t)
{
	return f == t || (prot_matches(a, UA_CLASS_WRITE, f) == prot_matches(a, UA_CLASS_WRITE, t) &&
			  prot_matches(a, UA_CLASS_UNIX, f) == prot_matches(a, UA_CLASS_UNIX, t));
}

/*
 * Whether renaming or linking `from` to `to` keeps every rule's view of the object: the same
 * accept entry (and protections) for a file, the same states (in the policy's table and the
 * protections') for a directory. Denies (and reports, naming the source) when it does not.
 */
static __always_inline int same_rules(__u8 op, struct vfsmount *from_mnt, struct dentry *from,
				      struct vfsmount *to_mnt, struct dentry *to)
{
	struct report r = { .class = UA_CLASS_WRITE, .op = op, .rule = UA_RULE_RECOVER };
	struct ua_accept *fa, *ta;
	long fs, ts;
	__u32 fps, tps;
	bool dir, same;
	struct scratch *s;
	struct armor a;
	__u32 pos;
	int i;

	/* A policy with from= patterns compares names even without path rules: a rename can
	 * change which programs a file is. */
	if (!armored(&a) || (!a.pol->header.classes && !a.pol->header.from_tag))
		return 0;
	s = get_scratch();
	if (!s)
		return 0;
	ts = state_of(&a, to_mnt, to, &pos, &tps);
	fs = state_of(&a, from_mnt, from, &r.pos, &fps);
	if (fs < 0 || ts < 0) {
		r.status = PATH_UNBUILDABLE;
		r.rule = UA_RULE_UNBUILDABLE;
		return deny(&a, s, &r, -EACCES);
	}
	/* RENAME_EXCHANGE moves the target to the source's name too: either being a directory
	 * makes this a directory rename. */
	dir = (BPF_CORE_READ(from, d_inode, i_mode) & S_IFMT) == S_IFDIR ||
	      (BPF_CORE_READ(to, d_inode, i_mode) & S_IFMT) == S_IFDIR;
	if (fs == ts && fps == tps)
		return 0;
	if (dir || !same_protections(&a, fps, tps))
		return deny(&a, s, &r, -EACCES);
	if (fs == ts)
		return 0;
	/* Null checks one pointer at a time: the verifier refuses arithmetic on a pointer that
	 * may be null, which is what clang makes of `!fa && !ta`. */
	fa = accept_of(a.binding.policy, fs);
	if (!fa) {
		ta = accept_of(a.binding.policy, ts);
		return ta ? deny(&a, s, &r, -EACCES) : 0;
	}
	ta = accept_of(a.binding.policy, ts);
	if (!ta)
		return deny(&a, s, &r, -EACCES);
	/* And under from= rules, the same programs: renaming a program out of (or into) a from=
	 * pattern would choose which rules hold for it. */
	same = fa->from == ta->from;
	for (i = 0; same && i < UA_NR_CLASSES; i++)
		same = fa->deny[i] == ta->deny[i] && fa->allow[i] == ta->allow[i] &&
		       fa->audit[i] == ta->audit[i];
	return same ? 0 : deny(&a, s, &r, -EACCES);
}

/* Both names count as writes, and the link must not give the file other rules. */
SEC("lsm/path_link")
int BPF_PROG(ua_path_link, struct dentry *old_dentry, const struct path *new_dir,
	     struct dentry *new_dentry)
{
	struct vfsmount *mnt = BPF_CORE_READ(new_dir, mnt);
	int err;

	err = decide(UA_CLASS_WRITE, UA_OP_LINK_FROM, mnt, old_dentry);
	if (!err)
		err = decide(UA_CLASS_WRITE, UA_OP_LINK_TO, mnt, new_dentry);
	if (!err)
		err = same_rules(UA_OP_LINK_FROM, mnt, old_dentry, mnt, new_dentry);
	return err;
}

SEC("lsm/path_rename")
int BPF_PROG(ua_path_rename, const struct path *old_dir, struct dentry *old_dentry,
	     const struct path *new_dir, struct dentry *new_dentry)
{
	struct vfsmount *old_mnt = BPF_CORE_READ(old_dir, mnt);
	struct vfsmount *new_mnt = BPF_CORE_READ(new_dir, mnt);
	int err;

	err = decide(UA_CLASS_WRITE, UA_OP_RENAME_FROM, old_mnt, old_dentry);
	if (!err)
		err = decide(UA_CLASS_WRITE, UA_OP_RENAME_TO, new_mnt, new_dentry);
	if (!err)
		err = same_rules(UA_OP_RENAME_FROM, old_mnt, old_dentry, new_mnt, new_dentry);
	return err;
}

SEC("lsm/path_truncate")
int BPF_PROG(ua_path_truncate, const struct path *path)
{
	struct dentry *dentry = path->dentry;
	int err = decide_path(UA_CLASS_WRITE, UA_OP_TRUNCATE, path);

	/* After the decision: a refused write leaves no mark (pending.h). Direct loads: the
	 * mark's filter reads through these pointers. */
	if (!err)
		note_unit_write(dentry->d_parent, dentry, NULL);
	return err;
}

/* 6.2+: open(O_TRUNC) truncates through this hook, not path_truncate, and an O_RDONLY open
 * with O_TRUNC is only a read to file_open. Loaded only where the hook exists. */
SEC("lsm/file_truncate")
int BPF_PROG(ua_file_truncate, struct file *file)
{
	struct dentry *dentry = file->f_path.dentry;
	int err = decide(UA_CLASS_WRITE, UA_OP_TRUNCATE, BPF_CORE_READ(file, f_path.mnt), dentry);

	if (!err)
		note_unit_write(dentry->d_parent, dentry, NULL);
	return err;
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

#endif
