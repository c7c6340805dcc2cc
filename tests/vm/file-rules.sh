#!/bin/bash
# Armored units end to end, for the read, write and exec classes: real units, real drop-ins,
# real denials by the kernel. Run in the guest by tests/vm/run (through suite.sh).
. ./lib.sh

mkdir -p /var/lib/armortest/ro /var/lib/armortest/rw /run/armortest
echo secret >/etc/armor-secret
echo audited >/etc/armor-audited
cp write-ops.sh exec-ops.sh deleg.sh escape /var/lib/armortest/
ro=/var/lib/armortest/ro rw=/var/lib/armortest/rw
# A file system where fs-verity can be enabled (an ioctl that changes a file through a
# read-only descriptor).
verity_fs() {
  truncate -s 32M /var/tmp/verity.img && mkfs.ext4 -q -F -b 4096 -O verity /var/tmp/verity.img &&
    mkdir -p $ro/verity && mount -o loop /var/tmp/verity.img $ro/verity && echo data >$ro/verity/file
}
check "an ext4 file system with the verity feature is mounted in the tree" verity_fs
# A FAT file system: its attribute bits (read-only, hidden, system) are set by an ioctl on a
# read-only descriptor.
fat_fs() {
  truncate -s 8M /var/tmp/fat.img && mkfs.vfat /var/tmp/fat.img >/dev/null &&
    mkdir -p $ro/fat && mount -o loop /var/tmp/fat.img $ro/fat && echo data >$ro/fat/file
}
check "a FAT file system is mounted in the tree" fat_fs
echo x >$ro/existing; ./escape setxattr $ro/existing user.pre 1; echo x >$ro/victim; echo x >$ro/movable; echo x >$rw/incoming; mkdir -p $ro/emptydir

# --- read ---------------------------------------------------------------------------------
# StartLimitIntervalSec=0: systemd would otherwise refuse the 6th start within 10 s, and a
# refused start must not pass for a denial.
oneshot_cat='[Unit]
StartLimitIntervalSec=0
[Service]
Type=oneshot
ExecStart=/bin/cat /etc/armor-secret'
unit armor-read.service "$oneshot_cat"
unit armor-twin.service "$oneshot_cat"
dropin armor-read.service armor.conf '[X-Armor]
ArmorPolicy=deny read /etc/armor-secret'
systemctl daemon-reload
check "the daemon armors armor-read.service after daemon-reload" wait_rules armor-read.service 1
check_fails "deny read: the armored unit cannot read the file" systemctl start armor-read.service
# journald may take a while to store a stream's line after thousand.sh's load (CI once took
# more than 20 s), and files a line under no unit when the writer's cgroup is gone before it
# looks: unit_lines also asks for the main process's own lines.
got_eacces() {
  local i
  for i in $(seq 1 60); do
    unit_lines armor-read.service | grep -q "cat: /etc/armor-secret: Permission denied" && return 0
    sleep 1
  done
  echo "cat's EACCES message is not in the journal; the unit's lines:"
  unit_lines armor-read.service | tail -n 15
  return 1
}
check "deny read: the process got EACCES" got_eacces
check "the unarmored twin reads the same file" systemctl start armor-twin.service

# The unit reads the denied file as its very first act, on every start: each of 50 starts
# fails, and each failure is the kernel's EACCES, counted by cat's own message and by the
# daemon's denial counter.
denied_count() { unitarmor status --json armor-read.service | sed -n 's/.*"denied": \([0-9]*\).*/\1/p'; }
# Counted over the whole journal from here on (only this unit reads that file meanwhile), so
# that a line journald files under no unit still counts.
cursor=$(journalctl -n 1 --show-cursor --no-pager | sed -n 's/^-- cursor: //p')
eacces_count() { journalctl --after-cursor="$cursor" -o cat | grep -c "cat: /etc/armor-secret: Permission denied"; }
failed=0
for i in $(seq 1 50); do
  systemctl start armor-read.service 2>/dev/null || failed=$((failed + 1))
done
check "first-instruction read: $failed of 50 starts failed" test "$failed" = 50
# journald may take a moment to store the last messages (up to a minute on a loaded host).
eacces_50() {
  local i n
  for i in $(seq 1 60); do
    n=$(eacces_count)
    [ "$n" = 50 ] && return 0
    sleep 1
  done
  echo "cat's EACCES message is in the journal $n times"
  return 1
}
check "first-instruction read: cat got EACCES on 50 of 50 starts" eacces_50
denied_51() { test "$(denied_count)" = 51; }
check "first-instruction read: the daemon counted 51 denials" eventually denied_51

# --- audit mode and audit rules -------------------------------------------------------------
unit armor-audit.service '[Service]
Type=oneshot
ExecStart=/bin/cat /etc/armor-secret /etc/armor-audited'
dropin armor-audit.service armor.conf '[X-Armor]
ArmorMode=audit
ArmorPolicy=deny read /etc/armor-secret
ArmorPolicy=audit read /etc/armor-audited'
systemctl daemon-reload
wait_rules armor-audit.service 2
check "ArmorMode=audit: the read goes through" systemctl start armor-audit.service

# --- a read allow-list ------------------------------------------------------------------------
# Everything the process reads must be listed, its programs and libraries included.
unit armor-rlist.service '[Service]
Type=oneshot
ExecStart=/bin/bash -c "cat /var/lib/armortest/rw/readable > /dev/null && echo ok > /run/armortest/rlist.allowed; cat /etc/armor-secret > /dev/null 2>&1 || echo denied > /run/armortest/rlist.other"'
dropin armor-rlist.service armor.conf '[X-Armor]
ArmorPolicy=allow read /usr/ /etc/ld.so.cache /etc/localtime /proc/ /dev/ /sys/ /run/ /var/lib/armortest/rw/'
echo x >/var/lib/armortest/rw/readable
systemctl daemon-reload
wait_rules armor-rlist.service 1
systemctl start armor-rlist.service
check "read allow-list: a listed file is read" grep -qx ok /run/armortest/rlist.allowed
check "read allow-list: any other file is denied" grep -qx denied /run/armortest/rlist.other

# --- audit mode for write and exec -------------------------------------------------------------
unit armor-waudit.service '[Service]
Type=oneshot
ExecStart=/bin/bash -c "echo x > /var/lib/armortest/ro/audited && /usr/bin/id > /dev/null && echo ok > /run/armortest/waudit"'
dropin armor-waudit.service armor.conf '[X-Armor]
ArmorMode=audit
ArmorPolicy=deny write /var/lib/armortest/ro/
ArmorPolicy=deny exec /usr/bin/id'
systemctl daemon-reload
wait_rules armor-waudit.service 2
systemctl start armor-waudit.service
check "ArmorMode=audit: the write and the exec go through" grep -qx ok /run/armortest/waudit
check "ArmorMode=audit: both are reported as would-deny" eventually sh -c \
  'journalctl -u armor-waudit.service -o cat | grep -q "^Would deny create of /var/lib/armortest/ro/audited" && journalctl -u armor-waudit.service -o cat | grep -q "^Would deny exec of /usr/bin/id"'

# --- write ------------------------------------------------------------------------------
unit armor-write.service '[Service]
Type=oneshot
ExecStart=/bin/bash /var/lib/armortest/write-ops.sh /run/armortest/write.result'
dropin armor-write.service armor.conf '[X-Armor]
ArmorPolicy=deny write /var/lib/armortest/ro/'
systemctl daemon-reload
wait_rules armor-write.service 1
systemctl start armor-write.service
write_ops="create open-write append truncate open-rdonly-trunc unlink mkdir rmdir rename-from rename-to link symlink chmod chown utimes futimens utimes-opath setxattr fsetxattr removexattr enable-verity fat-attrs"
for op in $write_ops; do
  check "deny write: $op in the denied tree fails" grep -qx "$op denied" /run/armortest/write.result
done
for op in control control-utimes control-setxattr read; do
  check "deny write: $op outside the denied tree (or a read) works" grep -qx "$op ok" /run/armortest/write.result
done
check "deny write: the timestamp and xattr denials are in the unit's journal" eventually bash -c \
  'j=$(journalctl -u armor-write.service -o cat); for op in utimes setxattr removexattr; do grep -q "^Denied $op of /var/lib/armortest/ro/existing" <<<"$j" || exit 1; done'
# The unarmored twin: every one of those writes works without the drop-in.
unit armor-write-twin.service '[Service]
Type=oneshot
ExecStart=/bin/bash /var/lib/armortest/write-ops.sh /run/armortest/write-twin.result'
systemctl start armor-write-twin.service
for op in $write_ops; do
  check "unarmored twin: $op in the same tree works" grep -qx "$op ok" /run/armortest/write-twin.result
done

# An allow rule makes write an allow-list.
unit armor-wlist.service '[Service]
Type=oneshot
ExecStart=/bin/bash -c "echo x > /var/lib/armortest/rw/allowed && echo ok > /run/armortest/wlist.allowed; echo x > /var/lib/armortest/elsewhere || echo denied > /run/armortest/wlist.other"'
dropin armor-wlist.service armor.conf '[X-Armor]
ArmorPolicy=allow write /var/lib/armortest/rw/ /run/armortest/'
systemctl daemon-reload
wait_rules armor-wlist.service 1
systemctl start armor-wlist.service
check "allow-list: the allowed path is written" grep -qx ok /run/armortest/wlist.allowed
check "allow-list: any other path is denied" grep -qx denied /run/armortest/wlist.other
check "allow-list: nothing was created outside the list" test ! -e /var/lib/armortest/elsewhere

# --- exec -------------------------------------------------------------------------------
unit armor-exec.service '[Service]
Type=oneshot
ExecStart=/bin/bash /var/lib/armortest/exec-ops.sh /run/armortest/exec.result'
dropin armor-exec.service armor.conf '[X-Armor]
ArmorPolicy=deny exec /usr/bin/id'
systemctl daemon-reload
wait_rules armor-exec.service 1
systemctl start armor-exec.service
check "deny exec: /usr/bin/id is denied" grep -qx "id denied" /run/armortest/exec.result
check "deny exec: other programs run" grep -qx "true ok" /run/armortest/exec.result

# Mapping code is an exec: the loader and the libraries are part of an exec allow-list.
dropin armor-exec.service armor.conf '[X-Armor]
ArmorPolicy=allow exec /usr/bin/bash /usr/bin/true /usr/lib/x86_64-linux-gnu/**'
systemctl daemon-reload
wait_rules armor-exec.service 1
rm -f /run/armortest/exec.result
systemctl start armor-exec.service
check "exec allow-list: a listed program runs" grep -qx "true ok" /run/armortest/exec.result
check "exec allow-list: an unlisted program is denied" grep -qx "id denied" /run/armortest/exec.result

# --- template instances and delegated sub-cgroups ------------------------------------------
unit armor-t@.service "$oneshot_cat"
dropin armor-t@.service armor.conf '[X-Armor]
ArmorPolicy=deny read /etc/armor-secret'
systemctl daemon-reload
check "the template is armored" wait_rules armor-t@.service 1
check_fails "template instance armor-t@one is denied" systemctl start armor-t@one.service
check_fails "template instance armor-t@two is denied" systemctl start armor-t@two.service

unit armor-deleg.service '[Service]
Type=oneshot
Delegate=yes
ExecStart=/bin/bash /var/lib/armortest/deleg.sh'
dropin armor-deleg.service armor.conf '[X-Armor]
ArmorPolicy=deny read /etc/armor-secret'
systemctl daemon-reload
wait_rules armor-deleg.service 1
check_fails "a process in a delegated sub-cgroup is denied" systemctl start armor-deleg.service
check "it really ran in the sub-cgroup" grep -q "armor-deleg.service/sub$" /run/armortest/deleg.cgroup

# --- slices -------------------------------------------------------------------------------
# A policy on a slice applies to every unit in it, merged with a unit's own.
unit armor-zone.slice '[Slice]'
dropin armor-zone.slice armor.conf '[X-Armor]
ArmorPolicy=deny read /etc/armor-secret'
unit armor-inzone.service '[Unit]
StartLimitIntervalSec=0
[Service]
Type=oneshot
Slice=armor-zone.slice
ExecStart=/bin/bash -c "sleep 1; exec cat /etc/armor-secret"'
unit armor-inzone2.service '[Unit]
StartLimitIntervalSec=0
[Service]
Type=oneshot
Slice=armor-zone.slice
ExecStart=/bin/cat /etc/armor-audited'
dropin armor-inzone2.service armor.conf '[X-Armor]
ArmorPolicy=deny read /etc/armor-audited'
systemctl daemon-reload
check "the slice is armored" wait_rules armor-zone.slice 1
check "a unit in it with a policy of its own gets the slice's rules too" wait_rules armor-inzone2.service 2
check_fails "a unit in an armored slice is denied" systemctl start armor-inzone.service
check "the denial is logged against that unit" eventually sh -c 'journalctl -u armor-inzone.service -o cat | grep -q "^Denied read of /etc/armor-secret"'
check_fails "its own rule applies too" systemctl start armor-inzone2.service

# --- namespaces ---------------------------------------------------------------------------
# Paths are the ones the process sees: under PrivateTmp= /tmp is a bind mount of a private
# directory, and the rule on /tmp/... still applies. A process that enters a new mount
# namespace stays under its unit's policy.
unit armor-ns.service '[Service]
Type=oneshot
PrivateTmp=yes
ExecStart=/bin/bash -c "touch /tmp/armor-private 2>/dev/null && echo created > /run/armortest/ns.private || echo denied > /run/armortest/ns.private; touch /tmp/other && echo ok > /run/armortest/ns.other; unshare --mount --propagation private sh -c \"cat /etc/armor-secret > /dev/null 2>&1 && echo readable || echo denied\" > /run/armortest/ns.unshare || echo unshare-failed > /run/armortest/ns.unshare"'
# Mounts are refused in armored units; this one may mount, to show that a new mount namespace
# changes nothing for its rules.
dropin armor-ns.service armor.conf '[X-Armor]
ArmorExempt=mount
ArmorPolicy=deny write /tmp/armor-private
ArmorPolicy=deny read /etc/armor-secret'
systemctl daemon-reload
wait_rules armor-ns.service 2
systemctl start armor-ns.service
check "PrivateTmp=: the rule on /tmp/armor-private applies inside the private /tmp" grep -qx denied /run/armortest/ns.private
check "PrivateTmp=: other files in the private /tmp are writable" grep -qx ok /run/armortest/ns.other
check "a process in a new mount namespace stays under the policy" grep -qx denied /run/armortest/ns.unshare

# --- live changes -----------------------------------------------------------------------
unit armor-live.service '[Service]
ExecStart=/bin/bash -c "while true; do if cat /etc/armor-secret >/dev/null 2>&1; then echo readable; else echo denied; fi > /run/armortest/live.state; sleep 0.2; done"'
systemctl daemon-reload
systemctl start armor-live.service
check "live: unarmored, the service reads the file" eventually grep -qx readable /run/armortest/live.state
pid_before=$(systemctl show -P MainPID armor-live.service)
dropin armor-live.service armor.conf '[X-Armor]
ArmorPolicy=deny read /etc/armor-secret'
systemctl daemon-reload
wait_rules armor-live.service 1
check "live: after a drop-in and daemon-reload, the running service is denied" eventually grep -qx denied /run/armortest/live.state
rm /etc/systemd/system/armor-live.service.d/armor.conf
systemctl daemon-reload
wait_rules armor-live.service 0
check "live: removing the drop-in lifts the denial" eventually grep -qx readable /run/armortest/live.state
check "live: the service was never restarted" test "$(systemctl show -P MainPID armor-live.service)" = "$pid_before"

# --- a broken drop-in keeps the last good policy --------------------------------------------
dropin armor-read.service zz-broken.conf '[X-Armor]
ArmorPolicy=deny raed /etc/passwd'
systemctl daemon-reload
sleep 2
check_fails "a broken drop-in leaves the unit armored" systemctl start armor-read.service
check "the error names the file and line" eventually sh -c 'journalctl -u armor-read.service | grep -q "zz-broken.conf:2: error: unknown class .raed."'
rm /etc/systemd/system/armor-read.service.d/zz-broken.conf
systemctl daemon-reload

# --- status -----------------------------------------------------------------------------
check "unitarmor status lists armored units" sh -c 'unitarmor status | grep -q "^armor-read.service "'
check "unitarmor status shows the mode and rule count" sh -c 'unitarmor status armor-read.service | grep -Eq "^armor-read.service +enforce +1 +52 "'

# --- the daemon going away --------------------------------------------------------------
mkdir -p /run/systemd/system/unitarmor.service.d
printf '[Service]\nRestart=no\n' >/run/systemd/system/unitarmor.service.d/no-restart.conf
systemctl daemon-reload
systemctl kill -s KILL unitarmor.service
sleep 1
check "kill -9: the daemon is gone" sh -c '! systemctl is-active --quiet unitarmor.service'
check_fails "kill -9: enforcement goes on without the daemon" systemctl start armor-read.service
check_fails "kill -9: a new template instance is still bound at creation" systemctl start armor-t@three.service
systemctl start unitarmor.service
check "restart: the daemon is back" systemctl is-active --quiet unitarmor.service
check "restart: it re-armored the units" wait_rules armor-read.service 1
check_fails "restart: enforcement holds" systemctl start armor-read.service
# The replaced programs go once the kernel has released their last link (after an RCU grace
# period; Debian 13's kernel once still listed both right after the restart).
check "restart: one set of programs is attached" eventually sh -c 'test "$(bpftool prog show name ua_file_open | grep -c "^[0-9]*: lsm")" = 1'
systemctl stop unitarmor.service
check_fails "systemctl stop unitarmor keeps enforcing" systemctl start armor-read.service
check "unitarmor disarm removes the pins" unitarmor disarm
check "after disarm, the unit reads the file" systemctl start armor-read.service
systemctl start unitarmor.service
check "and starting the daemon arms again" wait_rules armor-read.service 1
check_fails "armed again: the read is denied" systemctl start armor-read.service

finish
