#!/bin/bash
# Another mount namespace by nsfs's NS_MNT_GET_PREV/NEXT (issue 9): from Linux 6.11 on, an
# ioctl on the unit's own /proc/self/ns/mnt hands out a descriptor for every other mount
# namespace, asking only CAP_SYS_ADMIN over it (no ptrace check, unlike /proc/PID/ns/mnt), and
# setns() into the host's undoes InaccessiblePaths=, ProtectSystem= and the like at once. The
# armored unit is refused the ioctl (protection `mount`); its unarmored twin, under the same
# InaccessiblePaths=, reads the file in the host's namespace. On kernels without the ioctl
# (Debian 12's 6.1) the route does not exist: the twin gets ENOTTY, and only the armoring is
# counted.
# Run in the guest by tests/vm/run (through suite.sh).
. ./lib.sh

mkdir -p /srv/nsx /run/armortest /var/lib/armortest
echo ns-secret >/srv/nsx/secret
cp ./nsnext /var/lib/armortest/nsnext
for u in armor-nsx armor-nsx-twin; do
  unit $u.service "[Service]
Type=oneshot
InaccessiblePaths=/srv/nsx
ExecStart=/bin/sh -c '/var/lib/armortest/nsnext /srv/nsx/secret >/run/armortest/$u.out 2>&1; echo rc=\$\$? >>/run/armortest/$u.out'"
done
dropin armor-nsx.service armor.conf '[X-Armor]
ArmorPolicy=deny read /srv/nothing'
systemctl daemon-reload
check "the unit is armored" wait_rules armor-nsx.service 1
systemctl start armor-nsx.service armor-nsx-twin.service
echo "# armored: $(tr '\n' ' ' </run/armortest/armor-nsx.out)"
echo "# twin: $(tr '\n' ' ' </run/armortest/armor-nsx-twin.out)"
if grep -qx unsupported /run/armortest/armor-nsx-twin.out; then
  echo "# this kernel ($(uname -r)) has no NS_MNT_GET_NEXT: the route does not exist here (not counted)"
else
  check "the unarmored twin reads the file its InaccessiblePaths= hides, in another namespace" \
    grep -qx 'read: ns-secret' /run/armortest/armor-nsx-twin.out
  check "the armored unit is refused the ioctl" grep -q 'NS_MNT_GET_PREV after 0 namespaces: Operation not permitted' /run/armortest/armor-nsx.out
  check "the armored unit did not read it" sh -c '! grep -q ns-secret /run/armortest/armor-nsx.out'
  check "the refusal is in the unit's journal" eventually sh -c \
    "journalctl -u armor-nsx.service -o cat | grep -q 'previous mount namespace'"
fi
rm -rf /etc/systemd/system/armor-nsx*
systemctl daemon-reload
finish
