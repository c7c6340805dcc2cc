#!/bin/bash
# Another mount namespace (issue 9). setns() into the host's mount namespace undoes
# InaccessiblePaths=, ProtectSystem= and the like at once. Two ways to a descriptor of it:
# - from Linux 6.11 on, nsfs's NS_MNT_GET_PREV/NEXT on the unit's own /proc/self/ns/mnt hand
#   one out for every mount namespace, asking only CAP_SYS_ADMIN over it (no ptrace check,
#   unlike /proc/PID/ns/mnt), and nsfs picks them by number alone, whatever the ioctl's type;
# - a descriptor of it passed to the unit (SCM_RIGHTS, here from an unarmored server; also a
#   bind-mounted nsfs file, which only an older namespace can hold).
# The armored unit is refused the ioctls and the setns() (protection `mount`); its unarmored
# twin, under the same InaccessiblePaths=, reads the file in the host's namespace each way. On
# kernels without the ioctls (Debian 12's 6.1) that route does not exist (not counted).
# Run in the guest by tests/vm/run (through suite.sh).
. ./lib.sh

mkdir -p /srv/nsx /run/armortest /var/lib/armortest
echo ns-secret >/srv/nsx/secret
cp ./nsnext /var/lib/armortest/nsnext
# A descriptor of the host's mount namespace, handed to whoever asks (SCM_RIGHTS).
cp ./fdpass /var/lib/armortest/fdpass
serve /run/armortest/ns.sock /var/lib/armortest/fdpass serve /run/armortest/ns.sock /proc/1/ns/mnt
for u in armor-nsx armor-nsx-twin; do
  unit $u.service "[Service]
Type=oneshot
InaccessiblePaths=/srv/nsx
ExecStart=/bin/sh -c 'n=/var/lib/armortest/nsnext o=/run/armortest/$u; \$\$n /srv/nsx/secret >\$\$o.walk 2>&1; echo rc=\$\$? >>\$\$o.walk; \$\$n /srv/nsx/secret odd >\$\$o.odd 2>&1; echo rc=\$\$? >>\$\$o.odd; \$\$n join /run/armortest/ns.sock /srv/nsx/secret >\$\$o.join 2>&1; echo rc=\$\$? >>\$\$o.join'"
done
dropin armor-nsx.service armor.conf '[X-Armor]
ArmorPolicy=deny read /srv/nothing'
systemctl daemon-reload
check "the unit is armored" wait_rules armor-nsx.service 1
systemctl start armor-nsx.service armor-nsx-twin.service
for u in armor-nsx armor-nsx-twin; do
  for how in walk odd join; do
    echo "# $u, $how: $(tr '\n' ' ' </run/armortest/$u.$how)"
  done
done
a=/run/armortest/armor-nsx t=/run/armortest/armor-nsx-twin
check "join: the unarmored twin reads the file its InaccessiblePaths= hides, in another namespace" \
  grep -qx 'read: ns-secret' $t.join
check "join: the armored unit received the descriptor, and is refused the setns()" \
  grep -qx 'setns: Operation not permitted' $a.join
if grep -qx unsupported $t.walk; then
  echo "# this kernel ($(uname -r)) has no NS_MNT_GET_NEXT: that route does not exist here (not counted)"
else
  for how in walk odd; do
    check "$how: the unarmored twin reads the file in another namespace" grep -qx 'read: ns-secret' $t.$how
    check "$how: the armored unit is refused the ioctl" \
      grep -q 'NS_MNT_GET_PREV after 0 namespaces: Operation not permitted' $a.$how
  done
fi
check "the armored unit read the file no way" sh -c "! grep -q ns-secret $a.walk $a.odd $a.join"
check "the refusals are in the unit's journal" eventually sh -c \
  "journalctl -u armor-nsx.service -o cat | grep -q 'joining another namespace (setns)'"
kill $server
rm -rf /etc/systemd/system/armor-nsx*
systemctl daemon-reload
finish
