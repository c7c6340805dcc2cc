#!/bin/bash
# A cgroup left bound to a removed policy (issue 10: rebinding is race-free). A cgroup created
# below a cgroup while the daemon rebinds it can inherit the old policy id after the rebind
# pass read the table; the race is narrow, so it is made here by hand: with the daemon paused,
# a sub-cgroup of an armored unit is bound to the unit's removed policy in the kernel's table.
# Its processes must be refused everything (not run unarmored), and the daemon's sweep must
# move it to the unit's current policy.
. ./lib.sh

echo fine >/etc/armor-strag-ok
echo secret >/etc/armor-strag-secret
unit armor-strag.service '[Service]
Delegate=yes
ExecStart=/bin/sleep infinity'
dropin armor-strag.service armor.conf '[X-Armor]
ArmorPolicy=deny read /etc/armor-strag-secret'
systemctl daemon-reload
wait_rules armor-strag.service 1
systemctl start armor-strag.service
policy_of() { unitarmor status --json armor-strag.service | sed -n 's/.*"policy_id": \([0-9]*\).*/\1/p' | head -n 1; }
old=$(policy_of)
cg=/sys/fs/cgroup$(systemctl show -P ControlGroup armor-strag.service)
mkdir "$cg/sub"
in_sub() { sh -c "echo \$\$ >$cg/sub/cgroup.procs && exec cat $1" >/dev/null 2>&1; }
check "the sub-cgroup is armored: the unit's rule holds there" test "$(in_sub /etc/armor-strag-secret; echo $?)" != 0
check "and other files are read there" in_sub /etc/armor-strag-ok

# A new policy; the old one is removed two seconds later.
dropin armor-strag.service armor.conf '[X-Armor]
ArmorPolicy=deny read /etc/armor-strag-secret
ArmorPolicy=deny write /etc/armor-strag-ok'
systemctl daemon-reload
wait_rules armor-strag.service 2
new=$(policy_of)
check "the policy changed ($old -> $new)" test "$old" != "$new"
sleep 5
le() { local v=$1 n=$2 i; for ((i = 0; i < n; i++)); do printf '%02x ' $(((v >> (8 * i)) & 255)); done; }
daemon=$(systemctl show -P MainPID unitarmor.service)
kill -STOP "$daemon"
# shellcheck disable=SC2046 # bpftool takes the bytes as words
bpftool map update pinned /sys/fs/bpf/unitarmor/maps/bound key hex $(le "$(stat -c %i "$cg/sub")" 8) \
  value hex $(le "$(stat -c %i "$cg")" 8) $(le "$old" 4) $(le 0 4)
check "a cgroup bound to the removed policy is refused a file its unit may read" \
  test "$(in_sub /etc/armor-strag-ok; echo $?)" != 0
kill -CONT "$daemon"
check "the daemon's sweep moves it to the unit's current policy" eventually in_sub /etc/armor-strag-ok
check "where the unit's rule still holds" test "$(in_sub /etc/armor-strag-secret; echo $?)" != 0
systemctl stop armor-strag.service
finish
