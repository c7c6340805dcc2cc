#!/bin/bash
# The Debian package in the guest: what it installs, enforcement through an upgrade, removal
# that disarms and leaves no pins, purge that removes configuration. Runs last: it removes
# the package.
. ./lib.sh

check "the package is installed" sh -c 'dpkg -s unitarmor | grep -q "^Status: install ok installed"'
for f in /usr/bin/unitarmor /lib/systemd/system/unitarmor.service /lib/systemd/system/unitarmor-sync.service /lib/systemd/system/user@.service.d/unitarmor.conf /lib/systemd/system-preset/90-unitarmor.preset \
  /usr/share/dbus-1/system.d/org.unitarmor1.conf /usr/lib/systemd/catalog/unitarmor.catalog \
  /etc/unitarmor/policies/base.toml /usr/share/man/man8/unitarmor.8.gz /usr/share/man/man5/unitarmor.armor.5.gz \
  /usr/share/bash-completion/completions/unitarmor /usr/share/doc/unitarmor/copyright \
  /usr/share/doc/unitarmor/examples/drop-ins/nginx.service.d/armor.conf; do
  check "it installs $f" test -e "$f"
done
check "it installs the generator, a binary of its own" sh -c 'test -x /lib/systemd/system-generators/unitarmor-generator -a ! -L /lib/systemd/system-generators/unitarmor-generator'
check "systemd runs the generator: a daemon-reload waits for the daemon's re-read" sh -c '
  since=$(date "+%Y-%m-%d %H:%M:%S"); sleep 1; systemctl daemon-reload
  journalctl -u unitarmor.service --since "$since" -o cat | grep -q "^daemon-reload: re-read"'
check "unitarmor.service is enabled" sh -c 'test "$(systemctl is-enabled unitarmor.service)" = enabled'
check "the catalog is indexed" sh -c 'journalctl --list-catalog | grep -qi 63870318b8114d0f9b311f80e77ce97a'

mkdir -p /run/armortest
echo secret >/etc/armor-secret
unit armor-pkg.service '[Service]
ExecStart=/bin/bash -c "while true; do if cat /etc/armor-secret >/dev/null 2>&1; then echo readable; else echo denied; fi >> /run/armortest/pkg.log; sleep 0.1; done"'
dropin armor-pkg.service armor.conf '[X-Armor]
ArmorPolicy=@base
ArmorPolicy=deny read /etc/armor-secret'
systemctl daemon-reload
check "the example unit is armored (with the shipped @base)" wait_rules armor-pkg.service 2
systemctl start armor-pkg.service
check "the armored unit is denied" eventually grep -qx denied /run/armortest/pkg.log

pid_before=$(systemctl show -P MainPID unitarmor.service)
: >/run/armortest/pkg.log
rev2=$(ls /mnt/host/packages/unitarmor_*-2_*.deb | head -n 1)
check "upgrade to a rebuilt package" sh -c "DEBIAN_FRONTEND=noninteractive dpkg -i $rev2 >/dev/null"
check "the daemon was restarted once by the upgrade" sh -c "test \"\$(systemctl show -P MainPID unitarmor.service)\" != $pid_before"
check "it is active after the upgrade" systemctl is-active --quiet unitarmor.service
check "it armors the unit again" wait_rules armor-pkg.service 2
sleep 1
check "the unit was probed during the upgrade" test "$(grep -c . /run/armortest/pkg.log)" -ge 5
check "enforcement held throughout the upgrade (no readable probe)" sh -c '! grep -q readable /run/armortest/pkg.log'

check "dpkg -r removes the package" sh -c 'DEBIAN_FRONTEND=noninteractive dpkg -r unitarmor >/dev/null'
check "removal leaves no pins" test ! -e /sys/fs/bpf/unitarmor
check "removal leaves no daemon" sh -c '! pgrep -x unitarmor'
: >/run/armortest/pkg.log
check "removal disarms: the unit reads the file again" eventually grep -qx readable /run/armortest/pkg.log
check "removal keeps the configuration" test -e /etc/unitarmor/policies/base.toml
check "dpkg --purge removes the configuration" sh -c 'DEBIAN_FRONTEND=noninteractive dpkg --purge unitarmor >/dev/null && test ! -e /etc/unitarmor'
systemctl stop armor-pkg.service
finish
