#!/bin/bash
# An instance of an armored template whose own drop-in turns the armor off (`ArmorMode=off` in
# foo@x.service.d/) runs unarmored, as its files say, from its first start right after the
# reload and at every start after it; its siblings stay armored (issue 10). Before, the kernel
# bound it by its template at creation and it ran under the template's policy, and where the
# template's rules name %i (instances wait for their own policy) it first waited 10 s at each
# start. Two templates: one whose instances share its policy (bound by the template's slice),
# one whose rules name %i. Once the drop-in is gone, the instance is armored again.
# Run in the guest by tests/vm/run (through suite.sh).
. ./lib.sh

mkdir -p /srv/exempt /run/armortest
echo secret >/srv/exempt/secret
reader='[Unit]
StartLimitIntervalSec=0
[Service]
Type=oneshot
ExecStart=/bin/sh -c "cat /srv/exempt/secret >/run/armortest/%n.out 2>&1; echo $$? >>/run/armortest/%n.out"'
read_failed() { grep -qx 1 "/run/armortest/$1.out"; }
read_worked() { grep -qx secret "/run/armortest/$1.out"; }
# run UNIT: starts it (a oneshot) with a fresh output file.
run() { rm -f "/run/armortest/$1.out"; timeout 60 systemctl start "$1"; }

unit armor-ex@.service "$reader"
unit armor-exi@.service "$reader"
dropin armor-ex@.service armor.conf '[X-Armor]
ArmorPolicy=deny read /srv/exempt/secret'
dropin armor-exi@.service armor.conf '[X-Armor]
ArmorPolicy=deny read /srv/exempt/secret
ArmorPolicy=deny read /srv/exempt/%i'
for t in armor-ex armor-exi; do
  dropin "$t@off.service" off.conf '[X-Armor]
ArmorMode=off'
done
since=$(date '+%Y-%m-%d %H:%M:%S')
systemctl daemon-reload
check "the template is armored" wait_rules armor-ex@.service 1
check "the template naming %i is armored" wait_rules armor-exi@.service 2

for t in armor-ex armor-exi; do
  run "$t@off.service"
  check "[$t] the instance its own drop-in turns off reads the file at its first start" read_worked "$t@off.service"
  run "$t@on.service"
  check "[$t] a sibling without that drop-in is denied it" read_failed "$t@on.service"
  run "$t@off.service"
  check "[$t] the instance turned off reads it again at its next start" read_worked "$t@off.service"
  check "[$t] it did not wait for the daemon" sh -c \
    "! journalctl -u unitarmor.service --since '$since' -o cat | grep -F '$t@off.service' | grep -q 'it waited until'"
done
check "the daemon says the instance is not armored, though its template is" sh -c \
  "journalctl -u unitarmor.service --since '$since' -o cat | grep -q 'armor-ex@off.service: not armored (its own files turn the armor off), though its template is'"
# The daemon's record of the sibling's denial (under the instance, or under its template when
# the oneshot's cgroup is gone before the daemon reads the event: DESIGN's known limits).
check "the sibling's denial is recorded, naming the template's rule" eventually sh -c \
  "journalctl -u unitarmor.service -o cat | grep -F 'Denied read of /srv/exempt/secret' | grep -qF 'armor-ex@.service.d/armor.conf:2'"

# Its drop-in removed and the instance started at once, with no reload: the removal leaves a
# pending mark on the instance's name, and its cgroup waits for the daemon's pass over the
# files rather than start unbound (either way round, the read is denied).
rm /etc/systemd/system/armor-ex@off.service.d/off.conf
run armor-ex@off.service
check "[armor-ex] its drop-in removed, started at once with no reload: denied the file" \
  read_failed armor-ex@off.service

# The drop-ins removed and systemd reloaded: the instance is armored again.
rm -r /etc/systemd/system/armor-ex@off.service.d /etc/systemd/system/armor-exi@off.service.d
systemctl daemon-reload
for t in armor-ex armor-exi; do
  # The reload's own pass reads it again (it was exempt): armored before the reload returns.
  run "$t@off.service"
  check "[$t] with its drop-in gone, the instance is denied the file" read_failed "$t@off.service"
done

# An instance started while the rescan that follows a reload is under way: systemd's list of
# loaded units was taken before the start, so the unit is not in it, but its cgroup is already
# bound to the policy the reload's pass gave it (it was exempt, its drop-in is gone). It is not
# disarmed as gone, which would unbind its cgroup while it runs (it reads 150 times, for a few
# seconds: before the fix, until `UnitNew` armored it again). 300 loaded instances of another
# armored template make the rescan read 300 units after that list.
unit armor-exr@.service '[Unit]
StartLimitIntervalSec=0
[Service]
Type=oneshot
ExecStart=/bin/sh -c "for i in $$(seq 1 150); do cat /srv/exempt/secret 2>/dev/null; done >/run/armortest/%n.out; echo done >>/run/armortest/%n.out"'
dropin armor-exr@.service armor.conf '[X-Armor]
ArmorPolicy=deny read /srv/exempt/secret
ArmorPolicy=deny read /srv/exempt/%i'
unit armor-exl@.service '[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true'
dropin armor-exl@.service armor.conf '[X-Armor]
ArmorPolicy=deny read /srv/exempt/secret'
systemctl daemon-reload
for i in $(seq 1 300); do echo "armor-exl@$i.service"; done | xargs timeout 300 systemctl start
raced=0
# Two starts, early and late in the rescan (before the fix, 3 of 4 such starts read the file;
# each try is two reloads with 300 loaded units, which CI's time budget counts).
for d in 0.3 0.9; do
  # Exempt; then, once the rescan after that reload is done, armored by the next reload's
  # pass over the disk as its drop-in goes, and started at once.
  dropin armor-exr@off.service off.conf '[X-Armor]
ArmorMode=off'
  systemctl daemon-reload
  sleep 3
  rm -r /etc/systemd/system/armor-exr@off.service.d
  systemctl daemon-reload
  sleep "$d"
  run armor-exr@off.service
  out=/run/armortest/armor-exr@off.service.out
  if ! grep -qx done "$out" || grep -q secret "$out"; then
    raced=$((raced + 1))
    echo "# started $d s after a reload: $(grep -c secret "$out") of 150 reads worked"
  fi
done
check "an instance started during the rescan after a reload is denied the file (2 starts)" \
  test "$raced" = 0
finish
