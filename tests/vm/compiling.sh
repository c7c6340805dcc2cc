#!/bin/bash
# A big policy compiles on a thread of its own, in a child process (issue 12, scale;
# src/daemon/compiling.rs, apart.rs).
# A unit and its 20,000-rule drop-in are written and the unit started at once, without a
# reload: its start waits (bpf/pending.h) while the rules compile, and then it is denied from its
# first instruction; its unarmored twin is not. Meanwhile another armored unit's drop-in,
# written without a reload too, is in force, its denial is in its journal, and `unitarmor
# status` answers: the daemon's log shows that unit's new policy before the big one's (compiled
# in the main loop, it came after). Run in the guest by tests/vm/run (through suite.sh).
. ./lib.sh
N=20000
mkdir -p /run/armortest /srv/compiling /opt/nothing/19999
echo secret >/opt/nothing/19999/f
echo a >/srv/compiling/a
echo b >/srv/compiling/b
reader='[Unit]
StartLimitIntervalSec=0
[Service]
Type=oneshot
ExecStart=/bin/sh -c "if cat /opt/nothing/19999/f >/dev/null 2>&1; then echo read; else echo refused; fi >/run/armortest/%N.out"'
# A running unit that reads b every 0.2 s and says so when it cannot (the shell opens it
# itself: an exec of cat costs tens of milliseconds of CPU under emulation).
unit armor-csmall.service '[Service]
ExecStart=/bin/sh -c "while :; do read -r x 2>/dev/null </srv/compiling/b || echo refused >/run/armortest/csmall.out; sleep 0.2; done"'
dropin armor-csmall.service armor.conf '[X-Armor]
ArmorPolicy=deny read /srv/compiling/a'
since=$(date +%s)
daemon_log() { journalctl -u unitarmor.service -o cat --no-pager --since "@$since"; }
systemctl daemon-reload
systemctl start armor-csmall.service
check "armor-csmall is armored with one rule" wait_rules armor-csmall.service 1
# The rescan that follows that reload holds the main loop while it asks PID 1 (after a long
# suite, about hundreds of units): files written meanwhile wait for it, compiled or not.
rescanned() {
  local i
  for i in $(seq 1 300); do
    daemon_log | grep -q "rescan: " && return 0
    sleep 0.5
  done
  return 1
}
check "the rescan after that reload is done" rescanned
rm -f /run/armortest/csmall.out /run/armortest/armor-cbig.out
unit armor-cbig.service "$reader"
mkdir -p /etc/systemd/system/armor-cbig.service.d
{
  echo '[X-Armor]'
  seq 0 $((N - 1)) | sed 's|.*|ArmorPolicy=deny read /opt/nothing/&/**|'
} >/etc/systemd/system/armor-cbig.service.d/armor.conf
t0=$(date +%s.%N)
timeout 300 systemctl start armor-cbig.service &
start=$!
compiling() { daemon_log | grep -q "armor-cbig.service: compiling $N rules on the compile thread"; }
check "the daemon compiles the $N rules on its compile thread" eventually compiling
# ... in a child process of its own (src/daemon/apart.rs), whose heap goes with it.
child() { pgrep -P "$(systemctl show -P MainPID unitarmor.service)" >/dev/null; }
check "the compile runs in a child process of the daemon" eventually child
# The inmate: root in an armored unit (a shell moved into armor-csmall's cgroup) cannot kill
# the compile (the child is in unitarmor.service's cgroup, outside the unit's tree); its
# unarmored twin, this script, can, and the daemon compiles once more.
cpid=$(pgrep -P "$(systemctl show -P MainPID unitarmor.service)" | head -n 1)
cg=/sys/fs/cgroup/system.slice/armor-csmall.service
check "root in an armored unit cannot kill the compile's child (EPERM)" sh -c \
  "echo \$\$ >$cg/cgroup.procs && ! kill -9 $cpid 2>/tmp/ckill.err && grep -q 'Operation not permitted' /tmp/ckill.err"
check "the child still runs" kill -0 "$cpid"
check "the unarmored twin kills it" kill -9 "$cpid"
again() { daemon_log | grep -q "armor-cbig.service: the compiler's process was killed by signal 9; compiling once more"; }
check "the daemon says so and compiles once more" eventually again
dropin armor-csmall.service armor.conf '[X-Armor]
ArmorPolicy=deny read /srv/compiling/a /srv/compiling/b'
check "armor-csmall's new rule is in force" eventually test -e /run/armortest/csmall.out
check "unitarmor status answers" timeout 20 unitarmor status
denial() { journalctl -u armor-csmall.service -o cat --no-pager | grep -q "/srv/compiling/b"; }
check "armor-csmall's denial of b is in its journal" eventually denial
check "armor-cbig's start, made as its drop-in was written, ran" wait "$start"
t1=$(date +%s.%N)
check "armor-cbig was refused /opt/nothing/19999/f" grep -qx refused /run/armortest/armor-cbig.out
check "armor-cbig is armored with $N rules" wait_rules armor-cbig.service $N
check "the daemon says it compiled them in a child process" sh -c \
  "journalctl -u unitarmor.service -o cat | grep -q 'armor-cbig.service: compiled $N rules in .* in a child process (at most [0-9.]* MiB resident)'"
check "the child is gone once the policy is in" sh -c \
  "! pgrep -P $(systemctl show -P MainPID unitarmor.service)"
check "the daemon says armor-cbig waited, then went on armored" eventually sh -c \
  "journalctl -u armor-cbig.service -o cat | grep -q 'it waited until it had .*goes on armored'"
unit armor-cbig-twin.service "$reader"
check "the unarmored twin runs" systemctl start armor-cbig-twin.service
check "the twin read /opt/nothing/19999/f" grep -qx read /run/armortest/armor-cbig-twin.out
order() {
  local small big
  small=$(daemon_log | grep -n "armor-csmall.service: policy updated" | head -n 1 | cut -d: -f1)
  big=$(daemon_log | grep -n "armor-cbig.service: armored ($N rules" | head -n 1 | cut -d: -f1)
  daemon_log | grep -E "armor-c(small|big)\.service: |rescan: |a unit's start: " | sed 's/^/    /'
  [ -n "$small" ] && [ -n "$big" ] && [ "$small" -lt "$big" ]
}
check "armor-csmall's new policy came before armor-cbig's was in the kernel" order
echo "# $N rules: armor-cbig's start returned after $(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }") s; $(daemon_log | grep -o "armor-cbig.service: compiled.*" | head -n 1)"
systemctl stop armor-csmall.service
rm -rf /etc/systemd/system/armor-c* /opt/nothing /srv/compiling
systemctl daemon-reload
finish
