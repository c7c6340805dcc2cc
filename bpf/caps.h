/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Capabilities: `cap` rules. The compiler resolved every rule into one verdict per
 * capability (src/compile/caps.rs), so a check is one table read. A refused capability is
 * EPERM from capable(), the same failure as a capability the process does not hold, and it
 * takes effect on a running unit at the next daemon-reload, with no restart (systemd's
 * CapabilityBoundingSet= needs one).
 */
#ifndef UNITARMOR_CAPS_H
#define UNITARMOR_CAPS_H

#include "protect.h"
#include "calls.h"

/* include/linux/security.h */
#define CAP_OPT_NOAUDIT (1 << 1)

SEC("lsm/capable")
int BPF_PROG(ua_capable, const struct cred *cred, struct user_namespace *ns, int cap,
	     unsigned int opts)
{
	struct ua_config *cfg;
	struct scratch *s;
	struct armor a;
	__u32 zero = 0, rule;
	bool audit;
	long nr = -1;
	int ret;

	/* The refusals below that depend on the system call share one read of its number. */
	if (cap == CAP_SYS_ADMIN || cap == CAP_SYS_RAWIO || cap == CAP_SYS_TTY_CONFIG)
		nr = syscall_abi_nr();
	ret = mount_api_capable(cap, nr);
	if (ret)
		return ret;
	ret = call_capable(cap, nr);
	if (ret)
		return ret;
	ret = netlink_admin_capable(cap, nr);
	if (ret)
		return ret;
	/* Called for nearly every privileged step of every process: while no policy has cap
	 * rules, one array read is all it costs. */
	cfg = bpf_map_lookup_elem(&settings, &zero);
	if (!cfg || !cfg->cap_policies || !armored(&a))
		return 0;
	from_context(&a);
	rule = slot_rule(&a, false, cap, &audit);
	if (rule == UA_RULE_NONE)
		return 0;
	/* Whatever credentials are checked: the kernel checks a file opener's at read time
	 * (/proc/PID/stack, pagemap), and a child of the unit reads with credentials of its
	 * own. Checks about another task from inside the unit are refused too (fail closed). */
	/* systemd setting the unit up (PrivateTmp=, User=, ...) is not the service. */
	if (setup_phase())
		return 0;
	struct report r = {
		.rule = rule,
		.arg = cap,
		.pos = UA_PATH_MAX,
		.class = UA_CLASS_CAP,
		.op = UA_OP_CAPABLE,
	};
	if (audit) {
		r.verdict = UA_VERDICT_AUDITED;
		s = get_scratch();
		if (!(opts & CAP_OPT_NOAUDIT) && s)
			emit(&a, s, &r);
		return 0;
	}
	/* A NOAUDIT check only asks (may this process see or skip something?): refused the
	 * same, without a record, as the kernel's own capability code does not audit it. */
	if (opts & CAP_OPT_NOAUDIT)
		return a.pol->header.mode == UA_MODE_AUDIT ? 0 : -EPERM;
	s = get_scratch();
	if (!s)
		return a.pol->header.mode == UA_MODE_AUDIT ? 0 : -EPERM;
	return deny(&a, s, &r, -EPERM);
}

#endif
