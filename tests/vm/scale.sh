#!/bin/bash
# Many instances of one armored template at once (issue 10, "policy slots are not leaked per
# template instance"): instances whose policy is the template's, rule for rule, run under the
# template's one compiled table, so that more instances than the kernel has policy slots
# (1,024) can run; an instance with a drop-in of its own gets a policy of its own. Every
# instance is armored: each reads a file of its own that the template's policy denies.
# Run in the guest by tests/vm/run (through suite.sh, with 1,100 instances: more than the kernel
# has policy slots); `tests/vm/run tests/vm/scale.sh 2000` runs 2,000.
. ./lib.sh
n=${1:-1100}

mkdir -p /srv/many /run/armortest/many
for i in $(seq 1 "$n"); do echo "secret $i" >/srv/many/secret-$i; done
echo other >/srv/many/other
unit armor-many@.service '[Unit]
StartLimitIntervalSec=0
[Service]
ExecStart=/bin/sh -c "cat /srv/many/secret-%i >/run/armortest/many/%i 2>&1; echo $$? >>/run/armortest/many/%i; cat /srv/many/other >/run/armortest/many/%i.other 2>&1; echo $$? >>/run/armortest/many/%i.other; exec sleep infinity"'
dropin armor-many@.service armor.conf '[X-Armor]
ArmorPolicy=deny read /srv/many/secret-*'
# Instance 7 adds a rule of its own.
dropin armor-many@7.service extra.conf '[X-Armor]
ArmorPolicy=deny read /srv/many/other'
systemctl daemon-reload
check "the template is armored" wait_rules armor-many@.service 1

started=$(date +%s)
# Started in batches: one systemctl call per 250 instances keeps the job queue moderate.
for from in $(seq 1 250 "$n"); do
  to=$((from + 249 < n ? from + 249 : n))
  systemctl start --no-block $(seq -f "armor-many@%g.service" "$from" "$to")
done
running() { test "$(systemctl list-units --state=running --no-legend 'armor-many@*' | wc -l)" -eq "$n"; }
for _ in $(seq 1 600); do running && break; sleep 1; done
echo "# $n instances running after $(($(date +%s) - started)) s"
check "all $n instances run at once" running
denied_all() {
  local i bad=0
  for i in $(seq 1 "$n"); do
    grep -qx 1 "/run/armortest/many/$i" 2>/dev/null || bad=$((bad + 1))
  done
  [ "$bad" = 0 ] || echo "$bad instances read their secret (or have not tried yet)"
  [ "$bad" = 0 ]
}
check "every instance's read of its own secret was denied" eventually denied_all
# The daemon reads each instance as systemd loads it: give it time to catch up.
status_rows() {
  unitarmor status --json | tr -d ' \n' |
    grep -o '"unit":"armor-many@[0-9][0-9]*\.service","mode":"[a-z]*","policy_id":[0-9]*'
}
listed=0
for _ in $(seq 1 120); do
  rows=$(status_rows)
  listed=$(grep -c . <<<"$rows")
  [ "$listed" -eq "$n" ] && break
  sleep 1
done
slots=$(sed 's/.*"policy_id"://' <<<"$rows" | sort -u | wc -l)
echo "# unitarmor status: $listed instances listed, $slots distinct policy slots"
check "unitarmor status lists every instance" test "$listed" -eq "$n"
check "they use two policy slots (the template's, and instance 7's own)" test "$slots" -eq 2
check "instance 7's own rule holds: its read of /srv/many/other is denied" \
  grep -qx 1 /run/armortest/many/7.other
check "instance 8 (the template's rules only) reads /srv/many/other" \
  grep -qx other /run/armortest/many/8.other
check "the last instance's denial is in its own journal" eventually sh -c \
  "journalctl -u armor-many@$n.service -o cat | grep -q 'Denied read of /srv/many/secret-$n'"
check "the daemon answers" timeout 30 unitarmor status armor-many@1.service

systemctl stop 'armor-many@*.service'
rm -rf /etc/systemd/system/armor-many@* /srv/many /run/armortest/many
systemctl daemon-reload
finish
