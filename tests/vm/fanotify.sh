#!/bin/bash
# fanotify (issue 9, protection `fanotify`). A privileged fanotify group hands the listener, in
# its own context, a descriptor for each file or directory any process opens under a mark, in
# that process's mount namespace (`openat(fd, "..")` climbs a tree InaccessiblePaths= hides
# from the unit); a mark on a whole mount or file system does so for every file there, and a
# permission mark holds every process that opens the file (PID 1 and the daemon among them)
# until the listener answers. Two layers, each run here from the armored unit and its
# unarmored twin:
# - the armored unit is refused CAP_SYS_ADMIN in fanotify_init(): no privileged group, while a
#   group that reports file handles (what any process may make) keeps working;
# - handed a privileged group made outside it (SCM_RIGHTS), it is refused the file-system and
#   permission marks in it (path_notify).
# The twin makes each, and is handed a descriptor for a file a child opened, and reads it; a
# unit that lifts `fanotify` makes the privileged group.
# Run in the guest by tests/vm/run (through suite.sh).
. ./lib.sh

mkdir -p /srv/fan /run/armortest /var/lib/armortest
echo fan-secret >/srv/fan/secret
cp ./fanotify /var/lib/armortest/fanotify
serve /run/armortest/fan.sock /var/lib/armortest/fanotify serve /run/armortest/fan.sock
for u in armor-fan armor-fan-twin armor-fan-lifted; do
  unit $u.service "[Service]
Type=oneshot
ExecStart=/bin/sh -c 'f=/var/lib/armortest/fanotify o=/run/armortest/$u; \$\$f mount / /srv/fan/secret >\$\$o.mount 2>&1; \$\$f filesystem /srv >\$\$o.filesystem 2>&1; \$\$f perm /srv/fan/secret >\$\$o.perm 2>&1; \$\$f inode /srv/fan/secret >\$\$o.inode 2>&1; \$\$f take /run/armortest/fan.sock filesystem /srv >\$\$o.take-filesystem 2>&1; \$\$f take /run/armortest/fan.sock perm /srv/fan/secret >\$\$o.take-perm 2>&1; true'"
done
dropin armor-fan.service armor.conf '[X-Armor]
ArmorPolicy=deny write /srv/nothing'
dropin armor-fan-lifted.service armor.conf '[X-Armor]
ArmorPolicy=deny write /srv/nothing
ArmorExempt=fanotify'
systemctl daemon-reload
check "the unit is armored" wait_rules armor-fan.service 1
check "so is the unit that lifts fanotify" wait_rules armor-fan-lifted.service 1
systemctl start armor-fan.service armor-fan-twin.service armor-fan-lifted.service
for u in armor-fan armor-fan-twin armor-fan-lifted; do
  for how in mount filesystem perm inode take-filesystem take-perm; do
    echo "# $u, $how: $(tr '\n' ' ' </run/armortest/$u.$how)"
  done
done
a=/run/armortest/armor-fan t=/run/armortest/armor-fan-twin
check "mount mark: the unarmored twin is handed a descriptor for the file a child opened, and reads it" \
  grep -qx 'read: fan-secret' $t.mount
for how in mount filesystem perm; do
  [ "$how" = mount ] || check "$how mark: made by the unarmored twin" grep -qx marked $t.$how
  check "$how mark: the armored unit gets no privileged group" \
    grep -qx 'fanotify_init: Operation not permitted' $a.$how
done
check "a group that reports file handles: made and marked in the armored unit" grep -qx marked $a.inode
check "so in its twin" grep -qx marked $t.inode
for how in filesystem perm; do
  check "a privileged group handed in: the twin places the $how mark" grep -qx marked $t.take-$how
  check "a privileged group handed in: the armored unit is refused the $how mark" \
    grep -qx 'mark: Operation not permitted' $a.take-$how
done
check "the unit that lifts fanotify makes the privileged group and its file-system mark" \
  grep -qx marked /run/armortest/armor-fan-lifted.filesystem
check "the refusals are in the unit's journal, with their protection" eventually sh -c \
  "journalctl -u armor-fan.service -o cat | grep 'a privileged fanotify group' | grep -q ArmorExempt=fanotify"
check "the handed-in group's marks too" eventually sh -c \
  "journalctl -u armor-fan.service -o cat | grep -q 'fanotify mark with permission events on a file or directory at /srv/fan/secret'"
kill $server
rm -rf /etc/systemd/system/armor-fan*
systemctl daemon-reload
finish
