#!/bin/bash
# A template and its own slice expect one cgroup (armorsh@.service and system-armorsh.slice,
# issue 12). A running instance of the armored template keeps its template's rules when the
# slice is armored for the first time, by its drop-in written without a reload: the slice's
# policy lacks the template's own rules (the template's includes the slice's). Before, binding
# the slice's running tree moved the instance onto the slice's policy until the next reload's
# rescan. A unit of the same slice that is no instance, and an unarmored twin outside it, read
# what the rules deny in the armored one.
# Run in the guest by tests/vm/run (through suite.sh).
. ./lib.sh

mkdir -p /srv/shared /run/armortest
echo shared-a >/srv/shared/a
echo shared-b >/srv/shared/b
# A loop that reads both files, one line per look: the name of each it read, "-" for each it
# was refused.
# The shell opens the file itself (read, not cat): an exec costs tens of milliseconds of CPU
# under emulation, and this loop runs for the whole scenario.
loop='while :; do r=""; for f in a b; do if read -r x 2>/dev/null </srv/shared/$$f; then r="$$r $$f"; else r="$$r -"; fi; done; echo "$$r" >>/run/armortest/%N.out; sleep 0.3; done'
unit armorsh@.service "[Service]
ExecStart=/bin/sh -c '$loop'"
dropin armorsh@.service armor.conf '[X-Armor]
ArmorPolicy=deny read /srv/shared/a'
unit armor-shtwin.service "[Service]
ExecStart=/bin/sh -c '$loop'"
systemctl daemon-reload
out=/run/armortest/armorsh@1.out
twin=/run/armortest/armor-shtwin.out
rm -f "$out" "$twin"
check "the instance starts" systemctl start armorsh@1.service
check "the twin starts" systemctl start armor-shtwin.service
check "the instance runs in the template's own slice" \
  test "$(systemctl show -P Slice armorsh@1.service)" = system-armorsh.slice
check "the instance is refused a, reads b" eventually sh -c "tail -n 1 $out | grep -qx ' - b'"

# The slice armored for the first time, with no reload: the watcher's pass.
dropin system-armorsh.slice armor.conf '[X-Armor]
ArmorPolicy=deny read /srv/shared/b'
check "the slice is armored with its rule" wait_rules system-armorsh.slice 1
check "the template's policy now has the slice's rule too" wait_rules armorsh@.service 2
sleep 1
: >"$out"
sleep 3
check "the running instance is refused both files: the template's rule still holds" sh -c \
  "grep -q . $out && ! grep -vqx ' - -' $out"
echo "# the instance after the slice was armored: $(sort "$out" | uniq -c | tr -s ' \n' ' ')"
: >"$twin"
sleep 1
check "the unarmored twin reads both" grep -qx ' a b' "$twin"
check "journalctl -u has the instance's denial of a" eventually sh -c \
  "journalctl -u armorsh@1.service -o cat | grep -q 'Denied read of /srv/shared/a'"

# A new instance starts under the template's policy, and the template's removal leaves the
# slice's policy over the running instances (restore_expected).
rm -f /run/armortest/armorsh@2.out
check "a new instance starts" systemctl start armorsh@2.service
check "the new instance is refused both files" eventually sh -c \
  "tail -n 1 /run/armortest/armorsh@2.out | grep -qx ' - -'"
rm -rf /etc/systemd/system/armorsh@.service.d
systemctl daemon-reload
check "with the template unarmored, the slice's policy binds the instance" \
  eventually sh -c "tail -n 1 $out | grep -qx ' a -'"
systemctl stop armorsh@1.service armorsh@2.service armor-shtwin.service

finish
