/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Types and limits shared by the BPF programs and the daemon (src/kernel/ mirrors them with
 * #[repr(C)] and a layout test). Changing anything here changes the map layouts: keep
 * docs/DESIGN.md and src/kernel/abi.rs in step.
 */
#ifndef UNITARMOR_H
#define UNITARMOR_H

/* Length of a cgroup path key in the `expected` map, NUL padding included. */
#define UA_CGROUP_PATH_MAX 256
/* Largest path the programs build and match; longer paths match as if cut here. */
#define UA_PATH_MAX 4096
/* Longest executable path an event carries (its tail, if longer). */
#define UA_EXE_MAX 256
/* Deepest path (components plus mount crossings) the programs walk. */
#define UA_PATH_DEPTH 64
/* Policy ids are 1..UA_MAX_POLICIES-1; 0 means "not armored". */
#define UA_MAX_POLICIES 1024

/* Operation classes of the policy language; bit n of a class mask is class n. */
enum ua_class {
	UA_CLASS_READ = 0,
	UA_CLASS_WRITE = 1,
	UA_CLASS_EXEC = 2,
	UA_NR_CLASSES = 3,
};

/* The operation a process attempted, reported in events. */
enum ua_op {
	UA_OP_OPEN_READ = 1,
	UA_OP_OPEN_WRITE = 2,
	UA_OP_CREATE = 3,
	UA_OP_MKDIR = 4,
	UA_OP_RMDIR = 5,
	UA_OP_UNLINK = 6,
	UA_OP_RENAME_FROM = 7,
	UA_OP_RENAME_TO = 8,
	UA_OP_LINK_FROM = 9,
	UA_OP_LINK_TO = 10,
	UA_OP_SYMLINK = 11,
	UA_OP_TRUNCATE = 12,
	UA_OP_CHMOD = 13,
	UA_OP_CHOWN = 14,
	UA_OP_EXEC = 15,
};

enum ua_mode {
	UA_MODE_ENFORCE = 0,
	UA_MODE_AUDIT = 1,
};

/* What an event reports. */
enum ua_verdict {
	UA_VERDICT_DENIED = 1,     /* the operation failed with EACCES */
	UA_VERDICT_AUDITED = 2,    /* an audit rule matched; the operation went on */
	UA_VERDICT_WOULD_DENY = 3, /* ArmorMode=audit: a deny that was only reported */
};

/* Rule index meaning "no rule", and "denied because the class is an allow-list and nothing
 * in it matched". */
#define UA_RULE_NONE 0xffffffffu
#define UA_RULE_NOT_ALLOWED 0xfffffffeu

/* policies: policy id -> header and the DFA's byte classes (bytes the DFA never tells apart
 * share a class, which keeps `trans` small). */
struct ua_policy {
	__u32 start;     /* DFA start state */
	__u8 mode;       /* enum ua_mode */
	__u8 classes;    /* classes this policy has any rule for */
	__u8 allowlist;  /* classes that are allow-lists */
	__u8 pad;
};

struct ua_policy_table {
	struct ua_policy header;
	__u8 byte_class[256];
};

/* trans: (policy, state, byte class) -> next state. A missing entry is the dead state 0. */
struct ua_trans_key {
	__u32 policy;
	__u32 state;
	__u32 byte_class;
};

/* accept: (policy, state) -> what a path ending in that state matches, per class: the index of
 * the deciding deny, allow and audit rule, or UA_RULE_NONE. */
struct ua_state_key {
	__u32 policy;
	__u32 state;
};

struct ua_accept {
	__u32 deny[UA_NR_CLASSES];
	__u32 allow[UA_NR_CLASSES];
	__u32 audit[UA_NR_CLASSES];
};

/* counters: cgroup id -> events the ring buffer had no room for, and the policy they were
 * decided by (the daemon attributes them to its unit even after the cgroup is gone). */
struct ua_counters {
	__u64 lost;
	__u32 policy;
	__u32 pad;
};

/* One deny or audit verdict, sent to the daemon through the `events` ring buffer. */
struct ua_event {
	__u64 cgroup_id;
	__u32 pid;
	__u32 tgid;
	__u32 uid;
	__u32 policy;
	__u32 rule;
	__u32 mnt_ns;
	__u32 pid_ns;
	__u32 user_ns;
	__u16 path_len;
	__u8 class;
	__u8 op;
	__u8 verdict;
	__u8 truncated;
	__u16 exe_len;
	char comm[16];
	char path[UA_PATH_MAX];
	char exe[UA_EXE_MAX]; /* the process's executable, as it sees the path */
};

#endif
