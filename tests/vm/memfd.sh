#!/bin/bash
# Code that is no file on disk (issue 12): `deny exec memfd:` refuses executing a memfd
# (memfd_create + fexecve, the usual fileless loader) and mapping one executable; an exec
# allow-list refuses both without naming memfd:; the unarmored twin does both. Run in the guest
# by tests/vm/run (through suite.sh).
. ./lib.sh

d=/var/lib/armortest-memfd
mkdir -p "$d" /run/armortest-memfd
cp ./memexec "$d/memexec"
for u in twin deny allow; do
  unit "armor-memfd-$u.service" "[Service]
Type=oneshot
ExecStart=/bin/sh -c '$d/memexec exec /usr/bin/echo from-memory >/run/armortest-memfd/%N.exec 2>&1; $d/memexec map /usr/bin/echo >/run/armortest-memfd/%N.map 2>&1; true'"
done
dropin armor-memfd-deny.service armor.conf '[X-Armor]
ArmorPolicy=deny exec memfd:'
# An exec allow-list of the programs the unit runs, their loader and libraries.
dropin armor-memfd-allow.service armor.conf "[X-Armor]
ArmorPolicy=allow exec /usr/bin/ $d/ /usr/lib/ /usr/lib64/ /lib/ /lib64/"
dropin armor-memfd-typo.service armor.conf '[X-Armor]
ArmorPolicy=deny read /etc/shadow
ArmorPolicy=deny read memfd:'
unit armor-memfd-typo.service '[Service]
Type=oneshot
ExecStart=/bin/true'
systemctl daemon-reload
wait_rules armor-memfd-deny.service 1
wait_rules armor-memfd-allow.service 1
for u in twin deny allow; do check "armor-memfd-$u runs" systemctl start "armor-memfd-$u.service"; done

out() { grep -qx "$3" "/run/armortest-memfd/armor-memfd-$1.$2"; }
check "twin: a memfd copy of echo runs" out twin exec from-memory
check "twin: a memfd is mapped executable" out twin map ok
check "deny exec memfd: executing a memfd is refused" out deny exec 'fexecve: EACCES'
check "deny exec memfd: mapping one executable is refused" out deny map 'mmap: EACCES'
check "exec allow-list: executing a memfd is refused" out allow exec 'fexecve: EACCES'
check "exec allow-list: mapping one executable is refused" out allow map 'mmap: EACCES'
check "the denial is in journalctl -u, naming the memfd and the rule" eventually sh -c \
  "journalctl -u armor-memfd-deny.service -o cat | grep -q 'Denied exec of memfd:loader .*rule \"deny exec memfd:\" from /etc/systemd/system/armor-memfd-deny.service.d/armor.conf:2'"
check "memfd: in a read rule is an error naming the file and line" eventually sh -c \
  "unitarmor status armor-memfd-typo.service | grep -F 'armor-memfd-typo.service.d/armor.conf:3' | grep -q 'is for exec rules'"
finish
