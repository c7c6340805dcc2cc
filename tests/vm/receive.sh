#!/bin/bash
# A raw disk's descriptor handed to an armored unit (issue 9, route 2): an unarmored process
# opens the disk and passes the descriptor over a unix socket (SCM_RIGHTS). The unit's own
# open would be refused (runs-as-root); the received descriptor is refused too (file_receive),
# while the unarmored twin reads the disk's block 0 through it, and an ordinary file's
# descriptor still reaches the armored unit. Run in the guest by tests/vm/run (through suite.sh).
. ./lib.sh

d=/var/lib/armortest-recv
s=/run/armortest-recv
mkdir -p "$d" "$s"
cp ./fdpass "$d/fdpass"
# The guest's passthrough test disks start with a marker (tests/vm/run).
disk=
for dev in /dev/sd? /dev/nvme0n1; do
  if [ -b "$dev" ] && head -c 18 "$dev" 2>/dev/null | grep -q '^armortest-raw-disk$'; then
    disk=$dev
    break
  fi
done
check "a test disk with the marker is there ($disk)" test -n "$disk"
echo "an ordinary file" >"$d/plain"
systemd-run --unit armor-recv-disk.service "$d/fdpass" serve "$s/disk.sock" "$disk" >/dev/null
systemd-run --unit armor-recv-plain.service "$d/fdpass" serve "$s/plain.sock" "$d/plain" >/dev/null
check "the servers listen" eventually test -S "$s/disk.sock" -a -S "$s/plain.sock"

for u in armor-recv armor-recv-twin; do
  unit "$u.service" "[Service]
Type=oneshot
ExecStart=/bin/sh -c '$d/fdpass recv $s/disk.sock >$s/%N.disk 2>&1; $d/fdpass recv $s/plain.sock >$s/%N.plain 2>&1; true'"
done
dropin armor-recv.service armor.conf '[X-Armor]
ArmorPolicy=deny read /etc/shadow'
systemctl daemon-reload
wait_rules armor-recv.service 1
check "armor-recv runs" systemctl start armor-recv.service
check "armor-recv-twin runs" systemctl start armor-recv-twin.service

check "twin: reads the disk's block 0 through the received descriptor" \
  grep -qx 'read: armortest-raw-disk' "$s/armor-recv-twin.disk"
check "armored: the disk's descriptor is refused on receipt" grep -q '^no descriptor' "$s/armor-recv.disk"
check "armored: an ordinary file's descriptor is received and read" \
  grep -qx 'read: an ordinary file' "$s/armor-recv.plain"
check "twin: the same file's descriptor too" grep -qx 'read: an ordinary file' "$s/armor-recv-twin.plain"
check "the refusal is in journalctl -u, as runs-as-root, naming the disk" eventually sh -c \
  "journalctl -u armor-recv.service -o verbose | grep -q '^ *UNITARMOR_PROTECTION=runs-as-root' &&
   journalctl -u armor-recv.service -o verbose | grep -q '^ *UNITARMOR_PATH=$disk\$' &&
   journalctl -u armor-recv.service -o verbose | grep -q '^ *UNITARMOR_OPERATION=open-raw-device'"

systemctl stop armor-recv-disk.service armor-recv-plain.service
finish
