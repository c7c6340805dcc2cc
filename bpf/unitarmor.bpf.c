// SPDX-License-Identifier: GPL-2.0-only
/*
 * unitarmor's kernel side: one object, its programs grouped by hook family.
 *
 *   maps.h     the maps, and the filters in front of them
 *   armor.h    the current task's armor: binding, policy, set-up mark, unit membership
 *   walk.h     building a path and walking a policy's DFA over it
 *   report.h   events: denials, audits, repeats
 *   path.h     path decisions, and the protections checked by identity
 *   decided.h  the decision cache: opens and mappings allowed with nothing to say
 *   binding.h  binding cgroups at creation; the set-up mark of tasks PID 1 forks
 *   pending.h  units started while their files are written: marks, and waiting for the daemon
 *   files.h    opens, creation, removal, renames, links, truncation, attributes
 *   exec.h     execve and executable mappings
 *   net.h      socket families, ports, unix connects
 *   procs.h    signals, ptrace, limits, user namespaces, kernel modules
 *   protect.h  bpf(), mounts, cgroupfs writes, inode flags
 *   attrs.h    timestamps and extended attributes (hooks that get no mount)
 *   calls.h    system calls and ioctls with no hook of their own; perf_event_open
 *   caps.h     capabilities
 *
 * Each LSM program finds the current cgroup's binding first (a filter's word in .bss, then a
 * hash lookup only if the word is not zero; unarmored processes stop there). The DFA is
 * compiled in user space from every path pattern of the policy (src/compile.rs); matching
 * reads one array cell per byte of the path and stops at the first dead state, whatever the
 * number of rules.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "unitarmor.h"

char LICENSE[] SEC("license") = "GPL";

#include "maps.h"
#include "armor.h"
#include "path.h"
#include "binding.h"
#include "files.h"
#include "exec.h"
#include "net.h"
#include "procs.h"
#include "protect.h"
#include "attrs.h"
#include "caps.h"
