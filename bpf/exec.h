/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Exec hooks. Executing a file, and mapping one executable (the dynamic loader running
 * `ld.so /usr/bin/x`, shared libraries, mprotect to PROT_EXEC), are decided in the exec class
 * on the file's path. The kernel's ELF loader maps the binary and its interpreter after the
 * point of no return, so a denial there kills the process rather than failing execve():
 * exec allow-lists must allow the loader and libraries (`unitarmor check` says so).
 *
 * systemd's set-up of a unit (a task with the set-up mark, binding.h) executes
 * systemd-executor and maps its libraries; that is systemd's code, not the unit's, and is
 * not decided. The executor is known by device and inode, never by path.
 */
#ifndef UNITARMOR_EXEC_H
#define UNITARMOR_EXEC_H

#include "binding.h"
#include "decided.h"
#include "pending.h"

#define PROT_EXEC 0x4

/* Unarmored tasks leave these hooks before anything else is read (each read is a helper call,
 * and exec and executable mappings are frequent). */

/*
 * A program held to from= allow-lists (its mask has patterns of the policy's from_held) may
 * execute only programs those patterns name too: else it would leave its lists by executing
 * anything its exec rules allow (the dynamic loader running another program, a shell).
 * Decided at every stage (a script, then its interpreter). Returns 0 or -EACCES.
 */
static __always_inline int held_exec(struct armor *a, struct file *file)
{
	struct scratch *s;
	__u32 held, r;
	struct report rep = { .class = UA_CLASS_EXEC, .op = UA_OP_EXEC, .rule = UA_RULE_FROM_EXEC };

	if (!a->pol->header.from_held)
		return 0;
	from_context(a);
	held = a->from_mask & a->pol->header.from_held;
	if (!held && !a->from_lost)
		return 0;
	r = exe_mask(a, as_number(file));
	if ((r & EXE_KEPT) && !(r & EXE_UNBUILDABLE) && !a->from_lost && !(held & ~EXE_MASK(r)))
		return 0;
	s = get_scratch();
	if (!s)
		return a->pol->header.mode == UA_MODE_AUDIT ? 0 : -EACCES;
	claim_for_report(a);
	rep.pos = build_path(s, BPF_CORE_READ(file, f_path.mnt), BPF_CORE_READ(file, f_path.dentry),
			     &rep.status, 0);
	return deny(a, s, &rep, -EACCES);
}

/* Decided on bprm->file, not on the file name: for a script this hook runs again for its
 * interpreter, and on systemd 255+ the first exec goes through /proc/self/fd/N. */
SEC("lsm/bprm_check_security")
int BPF_PROG(ua_bprm_check, struct linux_binprm *bprm)
{
	struct armor a;
	struct file *file = BPF_CORE_READ(bprm, file);

	/* In a cgroup that waits for the daemon (pending.h), systemd's set-up executes the
	 * executor and goes on; the unit's own first exec waits. */
	if (!armored(&a))
		return a.waiting && !is_executor(file) && !vforked() ? wait_for_daemon() : 0;
	/* An unmarked vfork child (a mark task_alloc could not make) is refused rather than
	 * stopped: its parent, maybe PID 1, waits for its exec. */
	if ((a.binding.flags & UA_BIND_PENDING) && !vforked())
		return wait_for_daemon();
	note_exec_stage(file);
	if (held_exec(&a, file))
		return -EACCES;
	if (!has_class(&a, UA_CLASS_EXEC))
		return 0;
	if (setup_phase() && is_executor(file))
		return 0;
	return decide_armored(&a, UA_CLASS_EXEC, UA_OP_EXEC, BPF_CORE_READ(file, f_path.mnt),
			      BPF_CORE_READ(file, f_path.dentry));
}

/* An executable mapping of `file` (not null). */
static __always_inline int decide_mapping(struct file *file)
{
	struct armor a;

	if (!armored(&a) || !has_class(&a, UA_CLASS_EXEC) || setup_phase())
		return 0;
	return decide_armored(&a, UA_CLASS_EXEC, UA_OP_MMAP_EXEC, BPF_CORE_READ(file, f_path.mnt),
			      BPF_CORE_READ(file, f_path.dentry));
}

/* Every exec maps its program and libraries here: through the decision cache (decided.h). */
SEC("lsm/mmap_file")
int BPF_PROG(ua_mmap_file, struct file *file, unsigned long reqprot, unsigned long prot,
	     unsigned long flags)
{
	struct armor a;
	__u64 epoch;

	if (!(prot & PROT_EXEC) || !as_number(file) || !maybe_armored())
		return 0;
	epoch = read_epoch(); /* before armored(), as in ua_file_open */
	if (!armored(&a) || !has_class(&a, UA_CLASS_EXEC) || setup_phase())
		return 0;
	return decide_file(&a, UA_CLASS_EXEC, UA_OP_MMAP_EXEC, file, epoch);
}

SEC("lsm/file_mprotect")
int BPF_PROG(ua_file_mprotect, struct vm_area_struct *vma, unsigned long reqprot,
	     unsigned long prot)
{
	struct file *file;

	if (!(prot & PROT_EXEC))
		return 0;
	file = BPF_CORE_READ(vma, vm_file);
	if (!file)
		return 0;
	return decide_mapping(file);
}

#endif
