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
for u in target other; do
  unit "armor-peer-$u.service" "[Service]
ExecStart=/bin/sh -c 'trap \"echo got >>$r/$u.log\" USR1; while :; do sleep 0.5; done'"
done
# send NAME: signal and /proc/PID/environ (a ptrace read) of both long-running units.
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
for u in target other; do
  pid=\$(cat $r/\$u.pid)
  if $d/owner "\$pid"; then echo "owner-\$u ok"; else echo "owner-\$u fail"; fi >>"\$out"
  if kill -USR1 "\$pid" 2>/dev/null; then echo "signal-\$u ok"; else echo "signal-\$u fail"; fi >>"\$out"
  if cat /proc/"\$pid"/environ >/dev/null 2>&1; then echo "ptrace-\$u ok"; else echo "ptrace-\$u fail"; fi >>"\$out"
done
EOF2
chmod 755 "$d/send"
for u in send twin none; do
  unit "armor-peer-$u.service" "[Service]
Type=oneshot
ExecStart=$d/send %N"
done
# ptrace lends the tracer the traced process's powers: a peer is traced only while it is armored
# with every protection. The target is armored; the other unit is named but not armored.
dropin armor-peer-target.service armor.conf '[X-Armor]
ArmorPolicy=deny read /etc/shadow'
dropin armor-peer-send.service armor.conf '[X-Armor]
ArmorPolicy=allow signal armor-peer-target.service
ArmorPolicy=allow ptrace armor-peer-target.service armor-peer-other.service'
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
pids() {
  for u in target other; do
    systemctl show -p MainPID --value "armor-peer-$u.service" >"$r/$u.pid"
  done
}
systemctl start armor-peer-target.service armor-peer-other.service
pids
sleep 2 # the daemon looks the named unit's cgroup up every second
for u in send twin none; do check "armor-peer-$u runs" systemctl start "armor-peer-$u.service"; done

res() { grep -qx "$2 $3" "$r/armor-peer-$1.out"; }
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

systemctl stop armor-peer-target.service armor-peer-other.service
finish
