#!/bin/bash
# The foundation in the guest: systemd is PID 1, the BPF LSM is active, unitarmor.service is up
# and its programs are attached and pinned. Usage: smoke.sh [--fail] (--fail adds an assertion
# that must fail, to show that a failing check fails the run).
. ./lib.sh

check "systemd is PID 1" test "$(cat /proc/1/comm)" = systemd
check "bpf is an active LSM" grep -qw bpf /sys/kernel/security/lsm
check "unitarmor.service is active" systemctl is-active --quiet unitarmor.service
check "the file_open program is pinned" test -e /sys/fs/bpf/unitarmor/links/file_open
check "the cgroup_mkdir program is pinned" test -e /sys/fs/bpf/unitarmor/links/cgroup_mkdir
lsm_link_attached() {
  local id
  id=$(bpftool prog show name ua_file_open | sed -n 's/^\([0-9]*\): lsm .*/\1/p' | head -n 1)
  [ -n "$id" ] && bpftool link list | grep -q "prog $id\b"
}
check "bpftool shows the file_open LSM program attached" lsm_link_attached
check "unitarmor --version works" sh -c 'unitarmor --version | grep -q "^unitarmor "'
if [ "${1:-}" = --fail ]; then
  check "this assertion is meant to fail" test 1 = 2
fi
finish
