#!/bin/bash
# Containers (issue 14): a drop-in on the `machine-.scope` prefix armors every container
# systemd-nspawn registers, from its creation (machined asks PID 1 for the scope; its cgroup is
# bound when PID 1 makes it, before the container's first instruction). Paths are matched as
# the container sees them: its own /etc, not the host's path to the tree. An unarmored run of
# the same container reads everything. systemd-nspawn sets the container up (mounts) in the
# scope's first process, which holds the set-up mark until it executes the payload. Run in the guest by tests/vm/run (through suite.sh).
. ./lib.sh

box=/var/lib/machines/armorbox
rm -rf "$box"
mkdir -p "$box"/{etc,usr,proc,sys,dev,run,tmp,var}
for d in bin lib lib64 sbin; do ln -s "usr/$d" "$box/$d"; done
cp /etc/os-release "$box/etc/os-release"
echo box-secret >"$box/etc/box-secret"
echo box-open >"$box/etc/box-open"
rm -rf /etc/systemd/system/machine-.scope.d

# boxrun CMD...: runs CMD as the container's first process (the host's /usr, read-only), with
# CAP_SYS_ADMIN, so that only unitarmor can refuse its mount.
boxrun() {
  timeout 300 systemd-nspawn --quiet --pipe --directory="$box" --bind-ro=/usr \
    --capability=CAP_SYS_ADMIN --machine=armorbox --register=yes "$@" 2>&1
}

out=$(boxrun /usr/bin/cat /etc/box-secret)
echo "# unarmored: $out"
check "unarmored: the container reads its /etc/box-secret" test "$out" = box-secret
out=$(boxrun /usr/bin/mount -t tmpfs none /tmp)
check "unarmored: its payload mounts ($out)" test -z "$out"

dropin machine-.scope armor.conf '[X-Armor]
ArmorPolicy=deny read /etc/box-secret
ArmorPolicy=deny read /var/lib/machines/armorbox/etc/box-open'
systemctl daemon-reload
check "the machine-.scope prefix is armored" eventually sh -c \
  "test \"\$(unitarmor status --json machine-.scope 2>/dev/null | sed -n 's/.*\"rules\": \\([0-9]*\\).*/\\1/p' | head -n 1)\" = 2"

out=$(boxrun /usr/bin/cat /etc/box-secret)
echo "# armored: $out"
check "armored: the container is refused its own /etc/box-secret" \
  sh -c "printf '%s' \"\$1\" | grep -q 'Permission denied'" _ "$out"
out=$(boxrun /usr/bin/cat /etc/box-open)
echo "# armored, another file: $out"
check "armored: a rule naming the host's path to a file does not match it inside the container" \
  test "$out" = box-open
# systemd-nspawn mounts the container's /proc, /sys and /dev in its first process, which the
# service manager moved into the scope: it holds the set-up mark until it executes the payload.
out=$(boxrun /usr/bin/mount -t tmpfs none /tmp)
echo "# armored, mount: $out"
check "armored: the payload itself is held to the protections (its mount is refused)" \
  sh -c "printf '%s' \"\$1\" | grep -Eq 'Permission denied|Operation not permitted|permission denied'" _ "$out"
check "the refused mount is unitarmor's (protection mount)" eventually sh -c \
  "journalctl -u machine-armorbox.scope -o cat | grep -q 'Denied mount of /tmp.*protection \"mount\"'"
check "the denial is in the scope's journal, with the path the container used" eventually sh -c \
  "journalctl -u machine-armorbox.scope -o cat | grep -q 'Denied read of /etc/box-secret'"

rm -rf /etc/systemd/system/machine-.scope.d "$box"
systemctl daemon-reload
finish
