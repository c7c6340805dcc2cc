#!/bin/bash
# Scopes and transient units (issue 14): a drop-in on a scope's name armors the scope that
# `systemd-run --scope --unit=NAME` makes, from its first instruction; and a unit whose slice
# is chosen at run time (`--slice=`, which no file on disk says) is bound at its cgroup's
# creation by its name, whatever the slice: a transient scope and a transient service. Each has
# an unarmored twin that reads the same file. A drop-in on a name prefix (`armor-pfx-.scope.d`,
# as `docker-.scope.d` would be) armors every scope of that prefix from its creation, names
# chosen at run time included, and the scopes of a prefix that run already when its drop-in
# arrives. Run in the guest by tests/vm/run (through suite.sh).
. ./lib.sh

D=/srv/armor-scope
mkdir -p $D /run/armortest
echo scope-secret >$D/secret
deny="[X-Armor]
ArmorPolicy=deny read $D/secret"
dropin armor-sc.scope armor.conf "$deny"
dropin armor-sc2.scope armor.conf "$deny"
dropin armor-ts.service armor.conf "$deny"
# The prefix's second rule names each scope's own directory by %N, which widens to every name
# of the prefix (armor-pfx-*).
dropin armor-pfx-.scope armor.conf "$deny
ArmorPolicy=deny read $D/by-name/%N/"
systemctl daemon-reload
check "armor-pfx-.scope (a prefix) is armored" wait_rules armor-pfx-.scope 2
check "armor-sc.scope is armored (from its drop-in alone: no such unit is loaded)" wait_rules armor-sc.scope 1
check "armor-sc2.scope is armored" wait_rules armor-sc2.scope 1
check "armor-ts.service is armored" wait_rules armor-ts.service 1

# run_in OUT CMD...: runs CMD, its output (both streams) in /run/armortest/OUT.
run_in() {
  local out=/run/armortest/$1
  shift
  "$@" >"$out" 2>&1
}

# 1. A scope in its default slice.
check_fails "systemd-run --scope --unit=armor-sc cat: refused" \
  run_in sc systemd-run --quiet --scope --unit=armor-sc cat $D/secret
check "its cat got EACCES" grep -q "secret: Permission denied" /run/armortest/sc
check "the denial is in journalctl -u armor-sc.scope" eventually sh -c \
  "journalctl -u armor-sc.scope -o cat | grep -q 'Denied read of $D/secret by /usr/bin/cat '"
check "the unarmored twin scope reads the file" \
  run_in sc-twin systemd-run --quiet --scope --unit=armor-sc-twin cat $D/secret
check "the twin printed it" grep -qx scope-secret /run/armortest/sc-twin

# 2. A scope in a slice chosen at run time: its cgroup is not where its files say.
check_fails "systemd-run --scope --slice=armortest.slice --unit=armor-sc2 cat: refused" \
  run_in sc2 systemd-run --quiet --scope --slice=armortest.slice --unit=armor-sc2 \
  sh -c "cat /proc/self/cgroup; cat $D/secret"
check "it ran in /armortest.slice/armor-sc2.scope" grep -qx "0::/armortest.slice/armor-sc2.scope" /run/armortest/sc2
check "its cat got EACCES" grep -q "secret: Permission denied" /run/armortest/sc2
check "the unarmored twin in the same slice reads the file" \
  run_in sc2-twin systemd-run --quiet --scope --slice=armortest.slice --unit=armor-sc2-twin cat $D/secret
check "the twin printed it" grep -qx scope-secret /run/armortest/sc2-twin

# 3. A transient service in a slice chosen at run time.
check_fails "systemd-run --slice=armortest.slice --unit=armor-ts cat: refused" \
  run_in ts systemd-run --quiet --wait --pipe --slice=armortest.slice --unit=armor-ts \
  sh -c "cat /proc/self/cgroup; cat $D/secret"
check "it ran in /armortest.slice/armor-ts.service" grep -qx "0::/armortest.slice/armor-ts.service" /run/armortest/ts
check "its cat got EACCES" grep -q "secret: Permission denied" /run/armortest/ts
check "the denial is in journalctl -u armor-ts.service" eventually sh -c \
  "journalctl -u armor-ts.service -o cat | grep -q 'Denied read of $D/secret by /usr/bin/cat '"
check "the unarmored twin service in the same slice reads the file" \
  run_in ts-twin systemd-run --quiet --wait --pipe --slice=armortest.slice --unit=armor-ts-twin cat $D/secret
check "the twin printed it" grep -qx scope-secret /run/armortest/ts-twin

# 4. Scopes named by a prefix drop-in, with names no file says (three, each new).
for i in 1 2 3; do
  name=armor-pfx-$RANDOM$i
  check_fails "systemd-run --scope --unit=$name cat: refused (armor-pfx-.scope.d)" \
    run_in pfx$i systemd-run --quiet --scope --unit=$name cat $D/secret
  check "its cat got EACCES" grep -q "secret: Permission denied" /run/armortest/pfx$i
done
check "the denial is in journalctl -u $name.scope" eventually sh -c \
  "journalctl -u $name.scope -o cat | grep -q 'Denied read of $D/secret by /usr/bin/cat '"
name=armor-pfx-own$RANDOM
mkdir -p "$D/by-name/$name" "$D/by-name/other"
echo own >"$D/by-name/$name/f"
echo other >"$D/by-name/other/f"
check_fails "a prefix scope is refused its own directory ($D/by-name/%N/, %N widened)" \
  run_in pfx-own systemd-run --quiet --scope --unit=$name cat "$D/by-name/$name/f"
check "its cat got EACCES" grep -q "f: Permission denied" /run/armortest/pfx-own
check "a prefix scope reads a directory no name of the prefix has" \
  run_in pfx-other systemd-run --quiet --scope --unit=armor-pfx-o$RANDOM cat "$D/by-name/other/f"
check "the unarmored twin scope (armor-pfxtwin-1, not of the prefix) reads the file" \
  run_in pfx-twin systemd-run --quiet --scope --unit=armor-pfxtwin-1 cat $D/secret
check "the twin printed it" grep -qx scope-secret /run/armortest/pfx-twin

# 5. A scope of a prefix that runs before the prefix's drop-in exists: armored once the
# daemon has it, without a restart.
rm -f /run/armortest/late-go
systemd-run --quiet --scope --unit=armor-late-1 sh -c \
  "while [ ! -e /run/armortest/late-go ]; do sleep 0.2; done; cat $D/secret" \
  >/run/armortest/late 2>&1 &
late=$!
check "armor-late-1.scope runs" eventually systemctl is-active --quiet armor-late-1.scope
dropin armor-late-.scope armor.conf "$deny"
systemctl daemon-reload
check "armor-late-.scope (a prefix) is armored" wait_rules armor-late-.scope 1
touch /run/armortest/late-go
wait $late
check "the running scope's cat got EACCES" grep -q "secret: Permission denied" /run/armortest/late

rm -rf /etc/systemd/system/armor-sc.scope.d /etc/systemd/system/armor-sc2.scope.d \
  /etc/systemd/system/armor-ts.service.d /etc/systemd/system/armor-pfx-.scope.d \
  /etc/systemd/system/armor-late-.scope.d $D
systemctl daemon-reload
finish
