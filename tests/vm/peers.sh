#!/bin/bash
# `allow signal UNIT` and `allow ptrace UNIT` (issue 12): an armored unit's processes may signal
# and trace only their own unit (the signal and ptrace protections, also written `deny signal`),
# and the units its rules name; another unit stays out of reach. The unarmored twin reaches
# both. The named unit is found again after it restarts (a new cgroup); the daemon and PID 1
# can never be named. Run in the guest by tests/vm/run (through suite.sh).
. ./lib.sh

r=/run/armortest-peer
d=/var/lib/armortest-peer
mkdir -p "$r" "$d"
for u in target other loose held; do
  unit "armor-peer-$u.service" "[Service]
ExecStart=/bin/sh -c 'trap \"echo got >>$r/$u.log\" USR1; while :; do sleep 0.5; done'"
done
# send NAME: signal and /proc/PID/environ (a ptrace read) of both long-running units, and the
# ptrace attaches (calls: PTRACE_SEIZE, /proc/PID/mem, process_vm_readv) of each of them and of
# a child of its own (its own tree). $r/UNIT.addr is a mapped address of the unit's process.
cp ./calls "$d/calls"
# owner PID: makes PID (or with "self", this process) the signal owner of a pipe (F_SETOWN).
cat >"$d/owner" <<'EOF2'
#!/usr/bin/perl
use Fcntl;
pipe(my $r, my $w) or die "pipe: $!";
my $pid = $ARGV[0] eq "self" ? $$ : $ARGV[0] + 0;
fcntl($r, F_SETOWN, $pid) or die "F_SETOWN $pid: $!\n";
EOF2
chmod 755 "$d/owner"
cat >"$d/send" <<EOF2
#!/bin/sh
out=$r/\$1.out
: >"\$out"
if $d/owner self; then echo "owner-self ok"; else echo "owner-self fail"; fi >>"\$out"
for u in target other loose held; do
  pid=\$(cat $r/\$u.pid)
  if $d/owner "\$pid"; then echo "owner-\$u ok"; else echo "owner-\$u fail"; fi >>"\$out"
  if kill -USR1 "\$pid" 2>/dev/null; then echo "signal-\$u ok"; else echo "signal-\$u fail"; fi >>"\$out"
  if cat /proc/"\$pid"/environ >/dev/null 2>&1; then echo "ptrace-\$u ok"; else echo "ptrace-\$u fail"; fi >>"\$out"
  addr=\$(cat $r/\$u.addr)
  echo "seize-\$u \$($d/calls seize "\$pid" 2>&1)" >>"\$out"
  echo "mem-\$u \$($d/calls mem "\$pid" "\$addr" 2>&1)" >>"\$out"
  echo "vm-read-\$u \$($d/calls vm-read "\$pid" "\$addr" 2>&1)" >>"\$out"
done
echo "seize-child \$($d/calls seize child 2>&1)" >>"\$out"
for op in mem vm-read; do echo "\$op-child \$($d/calls \$op child 0 2>&1)" >>"\$out"; done
EOF2
chmod 755 "$d/send"
for u in send twin none; do
  unit "armor-peer-$u.service" "[Service]
Type=oneshot
ExecStart=$d/send %N"
done
# from=: the same signal and attach, by the programs a from= pattern names (copies of the shell
# and of calls) and by the usual ones. dry: ArmorMode=audit reports and allows.
cp /bin/dash "$d/sh2"
cp ./calls "$d/calls2"
cat >"$d/fromsend" <<EOF2
#!/bin/sh
out=$r/\$1.out
: >"\$out"
pid=\$(cat $r/target.pid)
if /bin/sh -c "kill -USR1 \$pid"; then echo "signal-sh ok"; else echo "signal-sh fail"; fi >>"\$out"
if $d/sh2 -c "kill -USR1 \$pid"; then echo "signal-sh2 ok"; else echo "signal-sh2 fail"; fi >>"\$out"
echo "seize-calls \$($d/calls seize "\$pid" 2>&1)" >>"\$out"
echo "seize-calls2 \$($d/calls2 seize "\$pid" 2>&1)" >>"\$out"
echo "seize-child \$($d/calls seize child 2>&1)" >>"\$out"
EOF2
chmod 755 "$d/fromsend"
for u in from dry; do
  unit "armor-peer-$u.service" "[Service]
Type=oneshot
ExecStart=$d/fromsend %N"
done
dropin armor-peer-from.service armor.conf "[X-Armor]
ArmorPolicy=allow signal armor-peer-target.service from=$d/sh2
ArmorPolicy=allow ptrace armor-peer-target.service from=$d/calls2"
dropin armor-peer-dry.service armor.conf '[X-Armor]
ArmorMode=audit
ArmorPolicy=deny signal
ArmorPolicy=deny ptrace'
# ptrace lends the tracer the traced process's powers: a peer is traced only while it is armored
# with every protection. The target is armored; the other unit is named but not armored.
dropin armor-peer-target.service armor.conf '[X-Armor]
ArmorPolicy=deny read /etc/shadow'
# loose is armored in ArmorMode=audit (it confines nothing); held holds a program to a from=
# allow-list, cat, which it never runs (code put into it would run under that list).
dropin armor-peer-loose.service armor.conf '[X-Armor]
ArmorMode=audit
ArmorPolicy=deny read /etc/shadow'
dropin armor-peer-held.service armor.conf '[X-Armor]
ArmorPolicy=allow read / from=/usr/bin/cat'
dropin armor-peer-send.service armor.conf '[X-Armor]
ArmorPolicy=allow signal armor-peer-target.service
ArmorPolicy=allow ptrace armor-peer-target.service armor-peer-other.service armor-peer-loose.service armor-peer-held.service'
dropin armor-peer-none.service armor.conf '[X-Armor]
ArmorPolicy=deny signal
ArmorPolicy=deny ptrace'
dropin armor-peer-bad.service armor.conf '[X-Armor]
ArmorPolicy=deny read /etc/shadow
ArmorPolicy=allow signal unitarmor.service
ArmorPolicy=allow signal nginx'
unit armor-peer-bad.service '[Service]
Type=oneshot
ExecStart=/bin/true'
systemctl daemon-reload
wait_rules armor-peer-send.service 2
wait_rules armor-peer-target.service 1
wait_rules armor-peer-none.service 2
wait_rules armor-peer-from.service 2
wait_rules armor-peer-dry.service 2
pids() {
  for u in target other loose held; do
    systemctl show -p MainPID --value "armor-peer-$u.service" >"$r/$u.pid"
    # The first mapping of the process (its executable's first page: readable).
    cut -d- -f1 "/proc/$(cat "$r/$u.pid")/maps" | head -n 1 >"$r/$u.addr"
  done
}
wait_rules armor-peer-loose.service 1
wait_rules armor-peer-held.service 1
systemctl start armor-peer-target.service armor-peer-other.service armor-peer-loose.service \
  armor-peer-held.service
pids
sleep 2 # the daemon looks the named unit's cgroup up every second
for u in send twin none from dry; do
  check "armor-peer-$u runs" systemctl start "armor-peer-$u.service"
done

# res UNIT NAME RESULT: the line NAME of UNIT's results is RESULT (else shows what it is).
res() { grep -qx "$2 $3" "$r/armor-peer-$1.out" || { grep "^$2 " "$r/armor-peer-$1.out"; false; }; }
check "twin: makes another unit's process a file's signal owner (F_SETOWN)" res twin owner-other ok
check "armored: F_SETOWN naming its own process works" res send owner-self ok
check "armored: F_SETOWN naming another unit's process is refused" res send owner-other fail
check "armored: F_SETOWN naming even a peer's process is refused" res send owner-target fail
check "the F_SETOWN refusal is in journalctl -u" eventually sh -c \
  "journalctl -u armor-peer-send.service -o cat | grep -q 'Denied making pid [0-9]* the signal owner of a file (F_SETOWN) by /usr/bin/perl.*protection \"signal\"'"
check "twin: signals the target" res twin signal-target ok
check "twin: signals the other unit" res twin signal-other ok
check "twin: reads the target's environ" res twin ptrace-target ok
check "twin: reads the other unit's environ" res twin ptrace-other ok
check "allow signal armor-peer-target.service: the signal is allowed" res send signal-target ok
check "allow ptrace armor-peer-target.service: /proc/PID/environ is readable" res send ptrace-target ok
check "allow signal: another unit's process is still refused" res send signal-other fail
check "allow ptrace of an unarmored unit: refused (it would lend a way out)" res send ptrace-other fail
check "deny signal: the target is refused" res none signal-target fail
check "deny ptrace: the target is refused" res none ptrace-target fail
check "the target got the signals it was sent" eventually sh -c "[ \$(grep -c got $r/target.log) -ge 2 ]"
check "the refused signal is in journalctl -u, naming the other unit's process" eventually sh -c \
  "journalctl -u armor-peer-send.service -o cat | grep -q 'Denied signal 10 to sh (pid [0-9]*).*protection \"signal\"'"

# Attaching (not only reading environ): PTRACE_SEIZE, /proc/PID/mem, process_vm_readv. The
# twin reaches both units; an armored unit reaches the peer it names and its own child, and is
# refused another unit's process with the kernel's errors for an LSM refusal (EPERM from
# ptrace and process_vm_readv, EACCES from the open of /proc/PID/mem).
for u in target other; do
  check "twin: PTRACE_SEIZE of the $u unit's process" res twin "seize-$u" ok
  check "twin: reads the $u unit's /proc/PID/mem" res twin "mem-$u" ok
  check "twin: process_vm_readv of the $u unit's process" res twin "vm-read-$u" ok
done
check "allow ptrace armor-peer-target.service: PTRACE_SEIZE of the peer" res send seize-target ok
check "allow ptrace armor-peer-target.service: the peer's /proc/PID/mem" res send mem-target ok
check "allow ptrace armor-peer-target.service: process_vm_readv of the peer" res send vm-read-target ok
check "armored: PTRACE_SEIZE of another (unarmored) unit's process: EPERM" \
  res send seize-other "PTRACE_SEIZE: Operation not permitted"
check "armored: opening another (unarmored) unit's /proc/PID/mem: EACCES" \
  res send mem-other "open: Permission denied"
check "armored: process_vm_readv of another (unarmored) unit's process: EPERM" \
  res send vm-read-other "process_vm_readv: Operation not permitted"
check "deny ptrace: PTRACE_SEIZE of another (armored) unit's process: EPERM" \
  res none seize-target "PTRACE_SEIZE: Operation not permitted"
check "deny ptrace: opening another (armored) unit's /proc/PID/mem: EACCES" \
  res none mem-target "open: Permission denied"
check "deny ptrace: process_vm_readv of another (armored) unit's process: EPERM" \
  res none vm-read-target "process_vm_readv: Operation not permitted"
check "deny ptrace: PTRACE_SEIZE of a child in its own tree still works" res none seize-child ok
check "deny ptrace: a child's /proc/PID/mem in its own tree is still readable" res none mem-child ok
check "deny ptrace: process_vm_readv of a child in its own tree still works" res none vm-read-child ok

# The journal record of a refusal names the process it was aimed at (UNITARMOR_TARGET_PID).
# targets UNIT OPERATION: the UNITARMOR_TARGET_PID of each of UNIT's records of OPERATION.
targets() {
  journalctl -u "$1" -o verbose --no-pager | awk -v op="$2" '
    function flush() { if (o == op && t != "") print t; o = ""; t = "" }
    /^[^ ]/ { flush(); next }
    { sub(/^ +/, "") }
    /^UNITARMOR_OPERATION=/ { o = substr($0, 21) }
    /^UNITARMOR_TARGET_PID=/ { t = substr($0, 22) }
    END { flush() }'
}
export -f targets
other_pid=$(cat "$r/other.pid")
target_pid=$(cat "$r/target.pid")
check "the signal refusal's UNITARMOR_TARGET_PID is the other unit's pid ($other_pid)" \
  eventually bash -c "targets armor-peer-send.service kill | grep -qx $other_pid"
check "the ptrace refusal's UNITARMOR_TARGET_PID is the other unit's pid ($other_pid)" \
  eventually bash -c "targets armor-peer-send.service ptrace | grep -qx $other_pid"
check "deny signal: the refusal's UNITARMOR_TARGET_PID is the target's pid ($target_pid)" \
  eventually bash -c "targets armor-peer-none.service kill | grep -qx $target_pid"
check "deny ptrace: the refusal's UNITARMOR_TARGET_PID is the target's pid ($target_pid)" \
  eventually bash -c "targets armor-peer-none.service ptrace | grep -qx $target_pid"
check "no ptrace refusal of the armored unit names its own child or the allowed peer" \
  bash -c "! targets armor-peer-send.service ptrace | grep -vqxE '$other_pid|$(cat "$r/loose.pid")|$(cat "$r/held.pid")'"

# Named by allow ptrace, but no peer to attach to: a unit in ArmorMode=audit (not even read),
# and one whose policy holds a program (read, not attached to: two units naming each other
# would make a way back into the held program). The twin attaches to both.
check "twin: attaches to the audit-mode unit's process" res twin seize-loose ok
check "twin: attaches to the held unit's process" res twin seize-held ok
check "allow ptrace of a unit in ArmorMode=audit: attaching is refused" \
  res send seize-loose "PTRACE_SEIZE: Operation not permitted"
check "allow ptrace of a unit in ArmorMode=audit: its environ too" res send ptrace-loose fail
check "allow ptrace of a unit that holds a program: attaching is refused" \
  res send seize-held "PTRACE_SEIZE: Operation not permitted"
check "allow ptrace of a unit that holds a program: its /proc/PID/mem too" \
  res send mem-held "open: Permission denied"
check "allow ptrace of a unit that holds a program: its environ is read" res send ptrace-held ok

check "the signal refusal's UNITARMOR_TARGET_UNIT is the other unit" eventually sh -c \
  "journalctl -u armor-peer-send.service -o verbose | grep -qx ' *UNITARMOR_TARGET_UNIT=armor-peer-other.service'"

# allow signal/ptrace armor-peer-target.service from=COPY: the copy reaches the peer, the
# program it was copied from does not.
check "allow signal ... from=sh2: sh2 signals the peer" res from signal-sh2 ok
check "allow signal ... from=sh2: /bin/sh is refused" res from signal-sh fail
check "allow ptrace ... from=calls2: calls2 attaches to the peer" res from seize-calls2 ok
check "allow ptrace ... from=calls2: calls is refused" \
  res from seize-calls "PTRACE_SEIZE: Operation not permitted"
# Code put into calls2 by another process of the unit would reach the peer as calls2: under a
# from= allowance, as under from= allow-lists, attaching within the unit is refused.
check "from=: attaching to its own child is refused" \
  res from seize-child "PTRACE_SEIZE: Operation not permitted"
check "from=: the refused signal is in journalctl -u, naming the peer's unit" eventually sh -c \
  "journalctl -u armor-peer-from.service -o verbose | grep -qx ' *UNITARMOR_TARGET_UNIT=armor-peer-target.service'"
# ArmorMode=audit: the protections report and allow.
check "ArmorMode=audit: the signal goes through" res dry signal-sh ok
check "ArmorMode=audit: the attach goes through" res dry seize-calls ok
check "ArmorMode=audit: the signal is reported as would deny" eventually sh -c \
  "journalctl -u armor-peer-dry.service -o cat | grep -q 'Would deny signal 10 to sh (pid $target_pid)'"

# The named unit restarts: a new cgroup, found again.
systemctl restart armor-peer-target.service
pids
sleep 2
check "armor-peer-send runs again" systemctl start armor-peer-send.service
check "after the target's restart, its new process can be signalled" res send signal-target ok
check "after the target's restart, another unit is still refused" res send signal-other fail

check "naming the daemon is an error naming the file and line" eventually sh -c \
  "unitarmor status armor-peer-bad.service | grep -F 'armor.conf:3' | grep -q 'may never be named'"
check "a name that is no service or scope is an error" eventually sh -c \
  "unitarmor status armor-peer-bad.service | grep -F 'armor.conf:4' | grep -q 'not a service or scope name'"

systemctl stop armor-peer-target.service armor-peer-other.service armor-peer-loose.service \
  armor-peer-held.service
finish
