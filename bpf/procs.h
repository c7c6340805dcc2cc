/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Other processes and the kernel: signals and ptrace-class access to processes outside the
 * unit's cgroup tree (the daemon, PID 1, other units), creating user namespaces, loading
 * kernel modules and kexec images. Implicit protections, checked by identity: the target's
 * cgroup, not its name.
 */
#ifndef UNITARMOR_PROCS_H
#define UNITARMOR_PROCS_H

#include "path.h"

#define PTRACE_MODE_NOAUDIT 0x04

/* enum kernel_read_file_id / kernel_load_data_id (the same numbers for both). */
#define READING_MODULE 2
#define READING_KEXEC_IMAGE 3
#define READING_KEXEC_INITRAMFS 4
#define READING_POLICY 5

static __always_inline __u64 task_cgroup(struct task_struct *t)
{
	return BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id);
}

SEC("lsm/task_kill")
int BPF_PROG(ua_task_kill, struct task_struct *p, struct kernel_siginfo *info, int sig,
	     const struct cred *cred)
{
	struct armor a;

	/* Signal 0 only asks whether the process exists. */
	if (!sig || !protected(&a, UA_PROT_SIGNAL) || in_unit(task_cgroup(p), a.binding->root))
		return 0;
	return deny_protected(&a, UA_PROT_SIGNAL, UA_OP_KILL, p->comm, BPF_CORE_READ(p, tgid), sig);
}

/* ptrace attach, /proc/PID/{mem,environ,root,fd...}, process_vm_*, pidfd_getfd. A task
 * with the set-up mark is systemd's, even inside the unit: code injected there would be
 * exempt from the protections. */
SEC("lsm/ptrace_access_check")
int BPF_PROG(ua_ptrace_access_check, struct task_struct *child, unsigned int mode)
{
	struct armor a;

	if (!protected(&a, UA_PROT_PTRACE))
		return 0;
	if (in_unit(task_cgroup(child), a.binding->root) && !marked(child))
		return 0;
	/* NOAUDIT checks (ps reading another process's stat) are refused without a record:
	 * the kernel only hides a field there. */
	if (mode & PTRACE_MODE_NOAUDIT)
		return -EPERM;
	return deny_protected(&a, UA_PROT_PTRACE, UA_OP_PTRACE, child->comm,
			      BPF_CORE_READ(child, tgid), mode);
}

/* Priorities and scheduling of processes outside the unit (starving the daemon). */
static __always_inline int sched_other(struct task_struct *p)
{
	struct armor a;

	if (!protected(&a, UA_PROT_SIGNAL) || in_unit(task_cgroup(p), a.binding->root))
		return 0;
	return deny_protected(&a, UA_PROT_SIGNAL, UA_OP_SCHED, p->comm, BPF_CORE_READ(p, tgid), 0);
}

SEC("lsm/task_setnice")
int BPF_PROG(ua_task_setnice, struct task_struct *p, int nice)
{
	return sched_other(p);
}

SEC("lsm/task_setioprio")
int BPF_PROG(ua_task_setioprio, struct task_struct *p, int ioprio)
{
	return sched_other(p);
}

SEC("lsm/task_setscheduler")
int BPF_PROG(ua_task_setscheduler, struct task_struct *p)
{
	return sched_other(p);
}

SEC("lsm/userns_create")
int BPF_PROG(ua_userns_create, const struct cred *cred)
{
	struct armor a;

	if (!protected(&a, UA_PROT_USERNS))
		return 0;
	return deny_protected(&a, UA_PROT_USERNS, UA_OP_USERNS, 0, 0, 0);
}

SEC("lsm/kernel_module_request")
int BPF_PROG(ua_kernel_module_request, char *kmod_name)
{
	struct armor a;

	if (!protected(&a, UA_PROT_MODULES))
		return 0;
	return deny_protected(&a, UA_PROT_MODULES, UA_OP_MODULE, kmod_name, 0, 0);
}

static __always_inline bool code_for_kernel(int id)
{
	return id == READING_MODULE || id == READING_KEXEC_IMAGE || id == READING_KEXEC_INITRAMFS ||
	       id == READING_POLICY;
}

SEC("lsm/kernel_load_data")
int BPF_PROG(ua_kernel_load_data, int id, bool contents)
{
	struct armor a;

	if (!code_for_kernel(id) || !protected(&a, UA_PROT_MODULES))
		return 0;
	return deny_protected(&a, UA_PROT_MODULES, UA_OP_MODULE, 0, 0, id);
}

SEC("lsm/kernel_read_file")
int BPF_PROG(ua_kernel_read_file, struct file *file, int id, bool contents)
{
	struct armor a;

	if (!code_for_kernel(id) || !protected(&a, UA_PROT_MODULES))
		return 0;
	if (!file)
		return deny_protected(&a, UA_PROT_MODULES, UA_OP_MODULE, 0, 0, id);
	return deny_protected_path(&a, UA_PROT_MODULES, UA_OP_MODULE, BPF_CORE_READ(file, f_path.mnt),
				   BPF_CORE_READ(file, f_path.dentry));
}

#endif
