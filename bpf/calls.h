/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * System calls and ioctls that give a root process power over the whole system and have no
 * LSM hook of their own where it matters: refused at the capability check the kernel makes
 * inside them (caps.h's program calls call_capable() first), at file_ioctl by number
 * (protect.h calls system_ioctl()), or at perf_event_open. Each is refused under an implicit
 * protection, so `ArmorExempt=` lifts it for a unit that must.
 */
#ifndef UNITARMOR_CALLS_H
#define UNITARMOR_CALLS_H

#include "path.h"

#define CAP_SYS_RAWIO 17
#define CAP_SYS_ADMIN 21
#define CAP_SYS_BOOT 22
/* vhangup() and the console's configuration ioctls (see system_ioctl()). */
#define CAP_SYS_TTY_CONFIG 26

/*
 * - fanotify_init(): without CAP_SYS_ADMIN the kernel makes only an unprivileged group, which
 *   reports file handles, never descriptors, and may not mark mounts, file systems or ask
 *   permission events. A privileged group hands the unit, opened in its own context, a
 *   descriptor for each file or directory any process opens under a mark, in that process's
 *   mount namespace: `openat(fd, "..")` climbs that namespace's tree, which InaccessiblePaths=
 *   and the like do not hide (path_notify in protect.h refuses the widest marks as well).
 * - setns(): CAP_SYS_ADMIN is asked before joining any namespace. A descriptor of another
 *   network namespace comes with any socket passed in (SIOCGSKNS) and undoes PrivateNetwork=;
 *   one of another mount namespace undoes ProtectSystem= (CAP_SYS_CHROOT, asked only for mount
 *   namespaces, is refused as well: see setns_mnt_capable()).
 * - swapon() and swapoff(): swap on a file the unit can read shows other processes' memory,
 *   tmpfs files among it, in that file.
 * - iopl() and ioperm() (x86 only): port I/O reaches disk controllers and PCI configuration, as
 *   /dev/port does.
 * - reboot() (and kexec_load(), which asks the same capability first): stops PID 1 and the
 *   daemon with everything else.
 * - vhangup() (CAP_SYS_TTY_CONFIG): a hang-up signals the terminal's session from the kernel,
 *   without task_kill (protection `ptrace`).
 */
/* `nr` is syscall_abi_nr()'s, read by the caller for CAP_SYS_RAWIO, CAP_SYS_ADMIN and
 * CAP_SYS_TTY_CONFIG. */
static __always_inline int call_capable(int cap, long nr)
{
	__u32 prot, arg = 0;
	struct armor a;
	__u8 op;

	if (cap == CAP_SYS_BOOT) {
		prot = UA_PROT_SIGNAL;
		op = UA_OP_REBOOT;
	} else if (cap == CAP_SYS_TTY_CONFIG) {
		/* vhangup() only: the console's own ioctls ask it of every caller that does not own
		 * the console (kbd's tools, systemd-vconsole-setup). */
		if (!nr_is(nr, 153, 58, 111, 111))
			return 0;
		prot = UA_PROT_PTRACE;
		op = UA_OP_TTY_HANGUP;
	} else if (cap == CAP_SYS_RAWIO) {
		if (!nr_is(nr, 172, NR_NONE, 110, NR_NONE) && !nr_is(nr, 173, NR_NONE, 101, NR_NONE))
			return 0;
		prot = UA_PROT_RUNS_AS_ROOT;
		op = UA_OP_PORT_IO;
		arg = nr;
	} else if (cap == CAP_SYS_ADMIN) {
		if (nr_is(nr, 300, 262, 338, 367)) {
			prot = UA_PROT_FANOTIFY;
			op = UA_OP_FANOTIFY;
			arg = UA_FANOTIFY_INIT;
		} else if (nr_is(nr, 308, 268, 346, 375)) {
			prot = UA_PROT_MOUNT;
			op = UA_OP_NS_JOIN;
		} else if (nr_is(nr, 167, 224, 87, 87) || nr_is(nr, 168, 225, 115, 115)) {
			prot = UA_PROT_MOUNT;
			op = UA_OP_SWAP;
			arg = nr;
		} else {
			return 0;
		}
	} else {
		return 0;
	}
	if (!protected(&a, prot))
		return 0;
	return deny_protected(&a, prot, op, 0, 0, arg);
}

/* perf_event_open(): events of a whole CPU (every process on it: user stacks and registers
 * with PERF_SAMPLE_STACK_USER, uprobes on other programs), of the kernel, or raw tracepoint
 * data. Events of the unit's own processes that exclude the kernel stay (profilers); another
 * process's are refused by the ptrace check. */
#define PERF_SECURITY_OPEN 0

static __always_inline int perf_event_open(int type)
{
	struct armor a;

	if (type == PERF_SECURITY_OPEN || !protected(&a, UA_PROT_PTRACE))
		return 0;
	return deny_protected(&a, UA_PROT_PTRACE, UA_OP_PERF, 0, 0, type);
}

SEC("lsm/perf_event_open")
int BPF_PROG(ua_perf_event_open, struct perf_event_attr *attr, int type)
{
	return perf_event_open(type);
}

/* Newer kernels (6.12 has it) dropped the attr argument: the daemon loads the variant the
 * kernel has (its BTF tells). */
SEC("lsm/perf_event_open")
int BPF_PROG(ua_perf_event_open_1, int type)
{
	return perf_event_open(type);
}

/* ioctls by number (protect.h's file_ioctl asks first):
 * - TIOCSTI and TIOCLINUX (selection paste) put input into a terminal, which a root shell
 *   on it runs: CAP_SYS_ADMIN passes the kernel's own checks on any terminal the unit can
 *   open, even read-only; the keymap ioctls make the console's keys send other text
 *   (protection `ptrace`: code run as another process);
 * - FIFREEZE holds every writer of a file system (journald, PID 1, the daemon) until thawed,
 *   and the shutdown ioctls of ext4, XFS (and 6.8's generic one, the same number) and F2FS
 *   end it until a reboot (protection `mount`). */
#define TIOCSTI 0x5412
#define TIOCLINUX 0x541C
/* The console keyboard's map: a key the administrator presses next sends the unit's text. */
#define KDSKBENT 0x4B47
#define KDSKBSENT 0x4B49
#define KDSETKEYCODE 0x4B4D
#define FIFREEZE 0xC0045877
#define FITHAW 0xC0045878
#define FS_IOC_SHUTDOWN 0x8004587D
#define F2FS_IOC_SHUTDOWN 0x8004F50D

/* A terminal's hang-up signals its session's leader (SIGHUP, then SIGCONT) from the kernel,
 * without task_kill, and TIOCSCTTY with argument 1 takes a terminal from the session that has
 * it, whose input then reaches the unit (protection `ptrace`). Making a terminal of no session
 * one's own (script, su --pty, setsid -c pass 1 too) stays allowed. */
#define TIOCSCTTY 0x540E
#define TIOCVHANGUP 0x5437

/* Whether terminal file `file` is some session's controlling terminal (unknown: yes). */
static __always_inline bool tty_has_session(struct file *file)
{
	struct tty_file_private *priv = BPF_CORE_READ(file, private_data);
	struct tty_struct *tty;

	if (!bpf_core_field_exists(((struct tty_struct *)0)->ctrl.session))
		return true;
	tty = BPF_CORE_READ(priv, tty);
	return !tty || BPF_CORE_READ(tty, ctrl.session);
}

static __always_inline int system_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct armor a;

	if (cmd == TIOCVHANGUP || (cmd == TIOCSCTTY && arg == 1 && tty_has_session(file))) {
		if (!protected(&a, UA_PROT_PTRACE))
			return 0;
		return deny_protected_path(&a, UA_PROT_PTRACE, UA_OP_TTY_HANGUP,
					   BPF_CORE_READ(file, f_path.mnt),
					   BPF_CORE_READ(file, f_path.dentry));
	}

	if (cmd == TIOCSTI || cmd == TIOCLINUX || cmd == KDSKBENT || cmd == KDSKBSENT ||
	    cmd == KDSETKEYCODE) {
		if (!protected(&a, UA_PROT_PTRACE))
			return 0;
		return deny_protected_path(&a, UA_PROT_PTRACE, UA_OP_TTY_INPUT,
					   BPF_CORE_READ(file, f_path.mnt),
					   BPF_CORE_READ(file, f_path.dentry));
	}
	if (cmd == FIFREEZE || cmd == FITHAW || cmd == FS_IOC_SHUTDOWN || cmd == F2FS_IOC_SHUTDOWN) {
		if (!protected(&a, UA_PROT_MOUNT))
			return 0;
		return deny_protected_path(&a, UA_PROT_MOUNT, UA_OP_FREEZE,
					   BPF_CORE_READ(file, f_path.mnt),
					   BPF_CORE_READ(file, f_path.dentry));
	}
	return 0;
}

#endif
