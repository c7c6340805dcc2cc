#!/bin/bash
# A daemon restart binds again every cgroup of an armored unit, including its own sub-cgroups
# with names of unitarmor's own units (issue 9). Root inside an armored unit made
# `x.slice/unitarmor.service` below its cgroup and moved itself there; the daemon's walk at
# start-up skipped any `unitarmor.service` below a directory named `*.slice`, real slice or
# not, so after the next restart (an upgrade, a crash, or one the inmate caused) the inmate ran
# unbound. An unarmored twin moves the same way and reads the file throughout. And an instance
# of an armored template that its template's `Slice=` puts in another slice (bound at creation
# by the template's name): a new daemon binds it from disk before its hooks are in force (it
# was left unbound until the rescan over D-Bus, seconds later), polled throughout the restart.
# Run in the guest by tests/vm/run (through suite.sh).
. ./lib.sh

mkdir -p /srv/subcg /run/armortest
echo sub-secret >/srv/subcg/secret
for u in armor-subcg armor-subcg-twin; do
  unit $u.service "[Service]
ExecStart=/bin/sh -c 'd=/sys/fs/cgroup/system.slice/$u.service/x.slice/unitarmor.service; mkdir -p \$\$d && echo \$\$\$\$ >\$\$d/cgroup.procs && echo moved >/run/armortest/$u.moved; while :; do cat /srv/subcg/secret >>/run/armortest/$u.out 2>&1; sleep 0.3; done'"
done
dropin armor-subcg.service armor.conf '[X-Armor]
ArmorPolicy=deny read /srv/subcg/secret'
rm -f /run/armortest/armor-subcg*.moved /run/armortest/armor-subcg*.out
systemctl daemon-reload
check "the unit is armored" wait_rules armor-subcg.service 1
systemctl start armor-subcg.service armor-subcg-twin.service
for u in armor-subcg armor-subcg-twin; do
  check "[$u] moved itself to x.slice/unitarmor.service below its cgroup" eventually \
    test -f /run/armortest/$u.moved
  check "[$u] runs there" sh -c "grep -q '/$u.service/x.slice/unitarmor.service\$' /proc/\$(systemctl show -P MainPID $u.service)/cgroup"
done
denied() { eventually grep -q 'Permission denied' /run/armortest/armor-subcg.out; }
check "before the restart: the armored unit is denied the file" denied
check "the unarmored twin reads it" eventually grep -qx sub-secret /run/armortest/armor-subcg-twin.out
# Its loop would only take the guest's CPU from the restart below.
systemctl stop armor-subcg-twin.service
unit armor-subtpl@.service "[Service]
Slice=armor-subtpl.slice
ExecStart=/bin/sh -c 'while :; do cat /srv/subcg/secret >>/run/armortest/%n.out 2>&1; sleep 0.3; done'"
dropin armor-subtpl@.service armor.conf '[X-Armor]
ArmorPolicy=deny read /srv/subcg/secret'
systemctl daemon-reload
check "the template is armored" wait_rules armor-subtpl@.service 1
systemctl start armor-subtpl@a.service
check "its instance runs in armor-subtpl.slice" sh -c \
  "grep -q '/armor-subtpl.slice/armor-subtpl@a.service\$' /proc/\$(systemctl show -P MainPID armor-subtpl@a.service)/cgroup"
check "before the restart: the instance is denied the file" eventually grep -q 'Permission denied' /run/armortest/armor-subtpl@a.service.out
# Both read in a loop, appending: what they got from here on, through the restart.
: >/run/armortest/armor-subtpl@a.service.out
: >/run/armortest/armor-subcg.out
# The time the restart takes is the verifier's under emulation, with two units reading in a
# loop: the timeout only stops one that hangs.
check "the daemon restarts" timeout 300 systemctl restart unitarmor.service
check "after the restart, the unit is armored" wait_rules armor-subcg.service 1
# A few reads after the restart.
n=$(grep -c . /run/armortest/armor-subcg.out)
check "the armored unit reads on after the restart" eventually sh -c \
  "test \$(grep -c . /run/armortest/armor-subcg.out) -ge $((n + 3))"
check "the armored unit was denied the file throughout the restart" sh -c \
  '! grep -q sub-secret /run/armortest/armor-subcg.out && grep -q "Permission denied" /run/armortest/armor-subcg.out'
check "the instance in another slice was denied the file throughout the restart" sh -c \
  'grep -q "Permission denied" /run/armortest/armor-subtpl@a.service.out && ! grep -q sub-secret /run/armortest/armor-subtpl@a.service.out'
systemctl stop armor-subcg.service armor-subtpl@a.service
rm -rf /etc/systemd/system/armor-subcg* /etc/systemd/system/armor-subtpl*
systemctl daemon-reload
finish
