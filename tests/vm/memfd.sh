#!/bin/bash
# Code that is no file on disk (issue 12): `deny exec memfd:` refuses executing a memfd
# (memfd_create + fexecve, the usual fileless loader) and mapping one executable; an exec
# allow-list refuses both without naming memfd:; the unarmored twin does both; `audit exec
# memfd:` allows both and reports them. A deleted file is no memfd: it keeps the name it had
# (the kernel's dentry keeps its parent and name after the unlink; only memfds, pipes and the
# like live on internal mounts, DESIGN.md "Paths in the kernel"), so `deny exec memfd:` lets its
# exec through and an exec allow-list decides it by that name. Run in the guest by tests/vm/run
# (through suite.sh).
. ./lib.sh

d=/var/lib/armortest-memfd
mkdir -p "$d" /run/armortest-memfd
cp ./memexec "$d/memexec"
# Each unit executes a memfd copy of echo, maps one executable, and executes a copy of echo
# written to $g/UNIT.gone and unlinked (its descriptor, fexecve): not under $d/, which the
# allow-list names, nor under /run (mounted noexec, which would refuse it before any rule).
r=/run/armortest-memfd g=/var/lib/armortest-gone
mkdir -p "$g"
for u in twin deny allow audit; do
  unit "armor-memfd-$u.service" "[Service]
Type=oneshot
ExecStart=/bin/sh -c '$d/memexec exec /usr/bin/echo from-memory >$r/%N.exec 2>&1; $d/memexec map /usr/bin/echo >$r/%N.map 2>&1; $d/memexec deleted $g/%N.gone /usr/bin/echo from-deleted >$r/%N.deleted 2>&1; true'"
done
dropin armor-memfd-deny.service armor.conf '[X-Armor]
ArmorPolicy=deny exec memfd:'
# An exec allow-list of the programs the unit runs, their loader and libraries.
dropin armor-memfd-allow.service armor.conf "[X-Armor]
ArmorPolicy=allow exec /usr/bin/ $d/ /usr/lib/ /usr/lib64/ /lib/ /lib64/"
dropin armor-memfd-audit.service armor.conf '[X-Armor]
ArmorPolicy=audit exec memfd:'
dropin armor-memfd-typo.service armor.conf '[X-Armor]
ArmorPolicy=deny read /etc/shadow
ArmorPolicy=deny read memfd:'
unit armor-memfd-typo.service '[Service]
Type=oneshot
ExecStart=/bin/true'
systemctl daemon-reload
wait_rules armor-memfd-deny.service 1
wait_rules armor-memfd-allow.service 1
wait_rules armor-memfd-audit.service 1
for u in twin deny allow audit; do check "armor-memfd-$u runs" systemctl start "armor-memfd-$u.service"; done

out() { grep -qx "$3" "/run/armortest-memfd/armor-memfd-$1.$2"; }
journal_has() { journalctl -u "$1" -o cat | grep -q "$2"; }
check "twin: a memfd copy of echo runs" out twin exec from-memory
check "twin: a memfd is mapped executable" out twin map ok
check "twin: a deleted copy of echo runs from its descriptor" out twin deleted from-deleted
check "deny exec memfd: executing a memfd is refused" out deny exec 'fexecve: EACCES'
check "deny exec memfd: mapping one executable is refused" out deny map 'mmap: EACCES'
check "exec allow-list: executing a memfd is refused" out allow exec 'fexecve: EACCES'
check "exec allow-list: mapping one executable is refused" out allow map 'mmap: EACCES'
check "the denial is in journalctl -u, naming the memfd and the rule" eventually sh -c \
  "journalctl -u armor-memfd-deny.service -o cat | grep -q 'Denied exec of memfd:loader .*rule \"deny exec memfd:\" from /etc/systemd/system/armor-memfd-deny.service.d/armor.conf:2'"
check "the exec's denial is one record of class exec, operation exec, path memfd:loader" eventually \
  record armor-memfd-deny.service UNITARMOR_ACTION=deny UNITARMOR_CLASS=exec UNITARMOR_OPERATION=exec \
  UNITARMOR_PATH=memfd:loader
check "the mapping's denial is one record of operation mmap-exec, path memfd:loader" eventually \
  record armor-memfd-deny.service UNITARMOR_ACTION=deny UNITARMOR_CLASS=exec UNITARMOR_OPERATION=mmap-exec \
  UNITARMOR_PATH=memfd:loader

# A deleted file keeps its name: memfd: does not name it, an allow-list refuses it by that name.
check "deny exec memfd: a deleted file is no memfd, its exec runs" out deny deleted from-deleted
check "exec allow-list: a deleted file outside the list is refused" out allow deleted 'fexecve: EACCES'
check "the deleted file's denial names the path it had" eventually record armor-memfd-allow.service \
  UNITARMOR_ACTION=deny UNITARMOR_CLASS=exec UNITARMOR_OPERATION=exec \
  UNITARMOR_PATH=$g/armor-memfd-allow.gone

# audit exec memfd: both run, both are reported.
check "audit exec memfd: executing a memfd works" out audit exec from-memory
check "audit exec memfd: mapping one executable works" out audit map ok
check "audit exec memfd: the exec is reported" eventually journal_has armor-memfd-audit.service \
  'Audited exec of memfd:loader .*rule "audit exec memfd:"'
check "audit exec memfd: the exec's record says audit" eventually record armor-memfd-audit.service \
  UNITARMOR_ACTION=audit UNITARMOR_CLASS=exec UNITARMOR_OPERATION=exec UNITARMOR_PATH=memfd:loader
check "audit exec memfd: the mapping's record says audit" eventually record armor-memfd-audit.service \
  UNITARMOR_ACTION=audit UNITARMOR_CLASS=exec UNITARMOR_OPERATION=mmap-exec UNITARMOR_PATH=memfd:loader
check "memfd: in a read rule is an error naming the file and line" eventually sh -c \
  "unitarmor status armor-memfd-typo.service | grep -F 'armor-memfd-typo.service.d/armor.conf:3' | grep -q 'is for exec rules'"
finish
