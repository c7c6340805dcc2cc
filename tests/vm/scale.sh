#!/bin/bash
# Many instances of one armored template at once (issue 10, "policy slots are not leaked per
# template instance"): instances whose policy is the template's, rule for rule, run under the
# template's one compiled table, so that more instances than the kernel has policy slots
# (1,024) can run; an instance with a drop-in of its own gets a policy of its own. Every
# instance is armored: each reads a file of its own that the template's policy denies.
# Run in the guest by tests/vm/run, through suite.sh with 200 instances (sharing shows as two
# slots in use); `tests/vm/run tests/vm/suite.sh scale.sh:2000` runs 2,000, more than the kernel
# has policy slots (1,022).
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

# Slots are freed when systemd unloads an instance (UnitRemoved), and `unitarmor status` says
# how many are in use. armor-own@ denies each instance its own file (%i): every instance has a
# policy, and a slot, of its own.
# within SECONDS CMD...: retries CMD for up to SECONDS seconds.
within() {
  local end=$(($(date +%s) + $1)); shift
  until "$@"; do
    [ "$(date +%s)" -lt "$end" ] || return 1
    sleep 1
  done
}
# usage_of NAME: the used count of NAME ("policy slots") on status's last line.
usage_of() { unitarmor status | tail -n 1 | sed -n "s|.*$1 \([0-9]*\)/[0-9]*.*|\1|p"; }
slots_are() {
  local got; got=$(usage_of "policy slots")
  [ "$got" = "$1" ] || { echo "policy slots in use: '${got}', expected $1"; unitarmor status | tail -n 1; return 1; }
}
listed_own() { unitarmor status --json | grep -c '"unit": "armor-own@[0-9]'; }
mkdir -p /run/armortest/own
for i in 1 2 3 4 5; do echo "own $i" >/srv/many/own-$i; done
unit armor-own@.service '[Service]
ExecStart=/bin/sh -c "cat /srv/many/own-%i >/run/armortest/own/%i 2>&1; echo $$? >>/run/armortest/own/%i; exec sleep infinity"'
dropin armor-own@.service armor.conf '[X-Armor]
ArmorPolicy=deny read /srv/many/own-%i'
systemctl daemon-reload
check "the second template is armored" wait_rules armor-own@.service 1
line=$(unitarmor status | tail -n 1)
echo "# unitarmor status: $line"
check "status ends with the table use" eval "grep -Eq '^policy slots [0-9]+/1022, bound cgroups [0-9]+/[0-9]+, .*expected paths [0-9]+/[0-9]+, dfa cells [0-9]+/[0-9]+' <<<'$line'"
check "status --json is still the array of units" eval 'unitarmor status --json | head -c 1 | grep -qx "\["'
usage_json() {
  local j; j=$(unitarmor status --json --usage | tr -d ' \n')
  grep -q '^{' <<<"$j" && grep -q '"units":\[{' <<<"$j" &&
    grep -Eq '"policy_slots":\{("limit":1022,"used":[0-9]+|"used":[0-9]+,"limit":1022)\}' <<<"$j"
}
check "status --json --usage has the units and the table use" usage_json
distinct_ids() { unitarmor status --json | sed -n 's/.*"policy_id": \([0-9]*\).*/\1/p' | sort -u | wc -l; }
check "the slots in use are the distinct policies listed" within 60 eval \
  'test "$(usage_of "policy slots")" = "$(distinct_ids)"'
base=$(usage_of "policy slots")
echo "# policy slots in use before: $base (alone: the two templates and instance 7)"
systemctl start armor-own@{1..5}.service
own_denied() {
  local i
  for i in "$@"; do grep -qx 1 "/run/armortest/own/$i" 2>/dev/null || { echo "armor-own@$i read its file"; return 1; }; done
}
check "each armor-own instance's read of its own file is denied" eventually own_denied 1 2 3 4 5
check "five more slots are in use" within 60 slots_are $((base + 5))
check "the five are listed" within 60 eval 'test "$(listed_own)" = 5'
echo "# $(unitarmor status | tail -n 1)"

systemctl stop armor-own@{1..5}.service
# Stopped units nothing refers to are unloaded by systemd shortly after (list-units does not
# load them again; `systemctl show` would).
unloaded() { test -z "$(systemctl list-units --all --no-legend 'armor-own@[0-9]*')"; }
check "systemd unloads the stopped instances" within 60 unloaded
check "their slots are free again" within 60 slots_are "$base"
check "they are no longer listed" within 60 eval 'test "$(listed_own)" = 0'
echo "# $(unitarmor status | tail -n 1)"

# Instances under the template's policy are forgotten too; instance 7, which has a drop-in of
# its own on disk, keeps its slot (armored from disk before its next start).
systemctl stop armor-many@{1..10}.service
unloaded_many() {
  test -z "$(systemctl list-units --all --no-legend 'armor-many@[0-9].service' 'armor-many@10.service' |
    grep -v 'armor-many@7\.service')"
}
check "systemd unloads the stopped armor-many instances" within 60 unloaded_many
check "the stopped instances are no longer listed (instance 7 is)" within 60 eval \
  'test "$(status_rows | grep -c .)" = $((n - 9)) && status_rows | grep -q "armor-many@7\.service"'
check "instance 7 keeps its slot" slots_are "$base"

# An instance started again after its slot was freed is armored again, with a slot of its own.
rm -f /run/armortest/own/2
systemctl start armor-own@2.service
check "armor-own@2, started again, is denied its file" eventually own_denied 2
check "it has a slot of its own again" within 60 slots_are $((base + 1))
own_id=$(unitarmor status --json armor-own@2.service | sed -n 's/.*"policy_id": \([0-9]*\).*/\1/p')
template_id=$(unitarmor status --json armor-own@.service | sed -n 's/.*"policy_id": \([0-9]*\).*/\1/p')
check "its policy is not the template's ($own_id, template $template_id)" \
  test -n "$own_id" -a "$own_id" != "$template_id"
systemctl stop armor-own@2.service

systemctl stop 'armor-many@*.service'
rm -rf /etc/systemd/system/armor-many@* /etc/systemd/system/armor-own@* /srv/many \
  /run/armortest/many /run/armortest/own
systemctl daemon-reload
finish
