// SPDX-License-Identifier: GPL-2.0-only
/*
 * unitarmor's kernel side: one object, its programs grouped by hook family.
 *
 *   maps.h     the maps and the current task's armor
 *   path.h     path building, the DFA walk, precedence and events (shared by every hook)
 *   binding.h  binding cgroups at creation; the set-up mark of tasks PID 1 forks
 *   pending.h  units started while their files are written: marks, and waiting for the daemon
 *   files.h    opens, creation, removal, renames, links, attributes
 *   exec.h     execve and executable mappings
 *   net.h      unix socket connects
 *   procs.h    signals, ptrace, user namespaces, kernel modules
 *   protect.h  bpf(), mounts, cgroupfs writes, inode flags
 *   attrs.h    timestamps and extended attributes (hooks that get no mount)
 *
 * Each LSM program finds the current cgroup's policy first (one hash lookup; unarmored
 * processes stop there). The DFA is compiled in user space from every path pattern of the
 * policy (src/compile.rs); matching costs one array and one hash lookup per byte of the path
 * and stops at the first dead state, whatever the number of rules.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "unitarmor.h"

char LICENSE[] SEC("license") = "GPL";

#include "maps.h"
#include "path.h"
#include "binding.h"
#include "files.h"
#include "exec.h"
#include "net.h"
#include "procs.h"
#include "protect.h"
#include "attrs.h"
#include "caps.h"
