#!/bin/bash
# No window after daemon-reload (issue 10): `systemctl daemon-reload && systemctl start UNIT`
# right after writing a drop-in runs UNIT under that drop-in's policy from its first
# instruction, every time. unitarmor-generator runs inside the reload and waits until the daemon
# has read the files from disk and written the kernel maps. Run in the guest by tests/vm/run
# (through suite.sh).
#
# Each try's outcome is recorded in /run/armortest/reload-*.result, one line per try; the
# counts are printed and checked.
#
# Usage: reload.sh [TRIES]. The suite runs 2 tries of each kind to stay within CI's time
# (each try is a daemon-reload, about 6 s under emulation); the issue's proof is
# `tests/vm/run tests/vm/reload.sh 50`.
. ./lib.sh
tries=${1:-10}

mkdir -p /var/lib/armortest /run/armortest
echo reload-secret-content >/etc/armor-reload-secret
echo reload-a >/etc/armor-reload-a
echo reload-b >/etc/armor-reload-b
oneshot_cat='[Unit]
StartLimitIntervalSec=0
[Service]
Type=oneshot
ExecStart=/bin/cat /etc/armor-reload-secret'
deny_secret='[X-Armor]
ArmorPolicy=deny read /etc/armor-reload-secret'
# eacces UNIT: the unit's journal shows its read of the secret refused: cat's own EACCES, or the
# daemon's record of the denial for the unit. Waited for up to 10 s: with four guests on two
# cores, one run's look a second after the failed start did not find cat's line, which the
# journal held in the end, beside the daemon's record (Debian 13).
eacces() {
  local i
  for i in $(seq 1 10); do
    journalctl -u "$1" -o cat |
      grep -q -e "cat: /etc/armor-reload-secret: Permission denied" \
        -e "^Denied read of /etc/armor-reload-secret by /usr/bin/cat " && return 0
    sleep 1
  done
  return 1
}

# new_units PREFIX N RESULT: N tries, each writing a new unit PREFIXi.service and its drop-in,
# then `daemon-reload && start` at once. RESULT gets "i reload=ok|fail start=ok|fail" per try.
new_units() {
  local prefix=$1 n=$2 result=$3 i
  : >"$result"
  for i in $(seq 1 "$n"); do
    unit "$prefix$i.service" "$oneshot_cat"
    dropin "$prefix$i.service" armor.conf "$deny_secret"
    local r=ok s=ok
    if systemctl daemon-reload; then
      systemctl start "$prefix$i.service" 2>/dev/null || s=fail
    else
      r=fail s=skipped
    fi
    echo "$i reload=$r start=$s" >>"$result"
  done
}

# eacces_count PREFIX N: how many of the N units' journals show the read refused (eacces).
eacces_count() {
  local prefix=$1 n=$2 i c=0
  sleep 2
  for i in $(seq 1 "$n"); do
    eacces "$prefix$i.service" && c=$((c + 1))
  done
  echo "$c"
}

# --- control: without the generator ---------------------------------------------------------
# A /dev/null link masks a generator. Not a check: before the kernel held back units started
# while their files are written (bpf/pending.h, pending.sh), most of these starts ran unarmored;
# the marks now hold them too, and the daemon's own rescan after the reload may win some tries.
# Only in runs of more than 2 tries: the suite's short run has no time for what checks nothing.
mkdir -p /etc/systemd/system-generators
if [ "$tries" -gt 2 ]; then
  ln -sf /dev/null /etc/systemd/system-generators/unitarmor-generator
  new_units armor-rc 5 /run/armortest/reload-control.result
  control_failed=$(grep -c 'start=fail' /run/armortest/reload-control.result)
  echo "# control, generator masked: $((5 - control_failed)) of 5 starts of a just-configured unit ran unarmored"
  rm /etc/systemd/system-generators/unitarmor-generator
  systemctl daemon-reload
fi

# --- a new unit and drop-in each try ---------------------------------------------------------
unit armor-r-twin.service "$oneshot_cat"
start_s=$(date +%s)
new_units armor-r "$tries" /run/armortest/reload-new.result
took=$(($(date +%s) - start_s))
reload_failed=$(grep -c 'reload=fail' /run/armortest/reload-new.result)
start_failed=$(grep -c 'start=fail' /run/armortest/reload-new.result)
got_eacces=$(eacces_count armor-r "$tries")
echo "# new units: $start_failed of $tries starts failed, $got_eacces of $tries with the read refused in their journal ($took s for $tries tries)"
check "new units: every daemon-reload succeeded ($reload_failed failed)" test "$reload_failed" = 0
check "new units: $start_failed of $tries starts right after daemon-reload failed" test "$start_failed" = "$tries"
check "new units: the read refused (EACCES) in $got_eacces of $tries units' journals" test "$got_eacces" = "$tries"
check "the unarmored twin reads the file" systemctl start armor-r-twin.service
check "the twin's journal has the file's content" eventually sh -c 'journalctl -u armor-r-twin.service -o cat | grep -qx reload-secret-content'

# The units go again, so that later reloads and daemon starts (which compile every armored
# unit's policy) do not pay for them.
rm -rf /etc/systemd/system/armor-r[0-9]* /etc/systemd/system/armor-rc[0-9]* /etc/systemd/system/armor-r-twin.service
systemctl daemon-reload
systemctl reset-failed 'armor-r*' 2>/dev/null || true
check "the removed units are disarmed by the rescan after the reload" wait_rules "armor-r$tries.service" 0

# --- one unit, its policy changed every try ---------------------------------------------------
# The unit reads A, then B, and writes which reads were denied. The drop-in denies A on odd
# tries and B on even ones: each start must show the policy of its own try.
cat >/var/lib/armortest/reload-probe.sh <<'EOF'
r=
cat /etc/armor-reload-a >/dev/null 2>&1 || r="${r}A"
cat /etc/armor-reload-b >/dev/null 2>&1 || r="${r}B"
echo "denied:${r:-none}" >/run/armortest/rswitch.out
EOF
unit armor-rswitch.service '[Unit]
StartLimitIntervalSec=0
[Service]
Type=oneshot
ExecStart=/bin/sh /var/lib/armortest/reload-probe.sh'
deny_file() { printf '[X-Armor]\nArmorPolicy=deny read /etc/armor-reload-%s' "$1"; }
dropin armor-rswitch.service armor.conf "$(deny_file b)"
systemctl daemon-reload
systemctl start armor-rswitch.service
check "switching unit: armored before the first switch (B denied)" grep -qx denied:B /run/armortest/rswitch.out
: >/run/armortest/reload-switch.result
for i in $(seq 1 "$tries"); do
  if [ $((i % 2)) = 1 ]; then want=A; else want=B; fi
  dropin armor-rswitch.service armor.conf "$(deny_file "$(echo $want | tr AB ab)")"
  rm -f /run/armortest/rswitch.out
  systemctl daemon-reload && systemctl start armor-rswitch.service
  echo "$i want=denied:$want got=$(cat /run/armortest/rswitch.out 2>/dev/null || echo nothing)" \
    >>/run/armortest/reload-switch.result
done
# The policy the last try wrote (A after an odd number of tries, B after an even one).
last=B
[ $((tries % 2)) = 1 ] && last=A
switch_ok=$(grep -c 'want=\(denied:[AB]\) got=\1$' /run/armortest/reload-switch.result)
echo "# policy switches: $switch_ok of $tries starts ran under the policy of their own try"
check "policy switches: $switch_ok of $tries starts showed the new policy" test "$switch_ok" = "$tries"
[ "$switch_ok" = "$tries" ] || grep -v 'want=\(denied:[AB]\) got=\1$' /run/armortest/reload-switch.result | head -n 5

# --- the daemon stopped (the pinned programs still enforce) ----------------------------------
# The generator finds no daemon but pins: it makes each armored service require
# unitarmor-sync.service, so the start brings the daemon back first, and it reads the new files.
# Each try restarts the daemon (its programs are verified again): at most 3 tries.
down_tries=$((tries < 3 ? tries : 3))
down_ok=0 back=0 waited=0
: >/run/armortest/reload-down.result
for i in $(seq 1 "$down_tries"); do
  systemctl stop unitarmor.service
  unit "armor-rdown$i.service" "$oneshot_cat"
  dropin "armor-rdown$i.service" armor.conf "$deny_secret"
  s=ok
  systemctl daemon-reload
  w=no
  test -e "/run/systemd/generator/armor-rdown$i.service.d/unitarmor-wait.conf" && w=yes
  systemctl start "armor-rdown$i.service" 2>/dev/null || s=fail
  sleep 1
  e=no
  eacces "armor-rdown$i.service" && e=yes
  a=$(systemctl is-active unitarmor.service)
  echo "$i wait-drop-in=$w start=$s eacces=$e daemon=$a" >>/run/armortest/reload-down.result
  [ "$w" = yes ] && waited=$((waited + 1))
  [ "$s/$e" = fail/yes ] && down_ok=$((down_ok + 1))
  [ "$a" = active ] && back=$((back + 1))
done
echo "# daemon stopped: $down_ok of $down_tries new units denied from the first instruction"
check "daemon stopped at the reload: $down_ok of $down_tries new units denied with EACCES" \
  test "$down_ok" = "$down_tries"
check "daemon stopped at the reload: the generator wrote the wait drop-in ($waited of $down_tries)" \
  test "$waited" = "$down_tries"
check "daemon stopped at the reload: the start brought it back ($back of $down_tries)" \
  test "$back" = "$down_tries"
check "the generator said why" sh -c 'journalctl -b --no-pager | grep -q "unitarmor-generator.*not running"'
systemctl daemon-reload
check "with the daemon back, the next reload drops the wait drop-ins" \
  test ! -e /run/systemd/generator/armor-rswitch.service.d/unitarmor-wait.conf

# --- the daemon cannot start -----------------------------------------------------------------
# The wait drop-in requires unitarmor-sync.service, which runs after unitarmor.service has
# started or failed and asks the daemon to sync: with no daemon, the armored unit is not
# started at all (it would run under whatever the pinned tables say of it, here nothing).
# An unarmored twin starts as usual.
systemctl stop unitarmor.service
mkdir -p /run/systemd/system/unitarmor.service.d
printf '[Service]\nExecStart=\nExecStart=/bin/false\n' >/run/systemd/system/unitarmor.service.d/zz-broken.conf
ran_cat='[Unit]
StartLimitIntervalSec=0
[Service]
Type=oneshot
ExecStart=/bin/sh -c "touch /run/armortest/%N.ran; cat /etc/armor-reload-secret"'
unit armor-rfail.service "$ran_cat"
dropin armor-rfail.service armor.conf "$deny_secret"
unit armor-rfail-twin.service "$ran_cat"
# Armored by its slice only: it waits for the daemon as well.
unit armor-rfail-sliced.service "$ran_cat
Slice=armor-rfail.slice"
dropin armor-rfail.slice armor.conf "$deny_secret"
rm -f /run/armortest/armor-rfail*.ran
systemctl daemon-reload
check "daemon cannot start: the generator wrote the wait drop-in" \
  test -e /run/systemd/generator/armor-rfail.service.d/unitarmor-wait.conf
check "daemon cannot start: and one for the unit armored by its slice" \
  test -e /run/systemd/generator/armor-rfail-sliced.service.d/unitarmor-wait.conf
check "daemon cannot start: the slice-armored unit's start fails, its command never ran" \
  sh -c '! systemctl start armor-rfail-sliced.service && test ! -e /run/armortest/armor-rfail-sliced.ran'
check "daemon cannot start: the armored unit's start fails" sh -c '! systemctl start armor-rfail.service'
check "daemon cannot start: the armored unit's command never ran" test ! -e /run/armortest/armor-rfail.ran
check "daemon cannot start: the daemon did fail" sh -c '! systemctl is-active --quiet unitarmor.service'
check "daemon cannot start: systemd names the failed dependency" \
  sh -c 'journalctl -b --no-pager -o cat | grep -q "Dependency failed for armor-rfail.service"'
check "daemon cannot start: unitarmor-sync.service says why" \
  sh -c 'journalctl -b -u unitarmor-sync.service -o cat | grep -q "daemon is not running"'
check "daemon cannot start: the unarmored twin starts and reads the file" \
  sh -c 'systemctl start armor-rfail-twin.service && test -e /run/armortest/armor-rfail-twin.ran'
rm /run/systemd/system/unitarmor.service.d/zz-broken.conf
systemctl daemon-reload
systemctl reset-failed unitarmor.service
check "daemon fixed: the armored unit's start brings it back" sh -c 'systemctl start armor-rfail.service; systemctl is-active --quiet unitarmor.service'
# Its one run (the starts above never ran it): cat failed, and the daemon's record of the
# refusal is the unit's. Not cat's own message: journald has filed that stream line under no
# unit, and once neither `journalctl -u` nor its pid found it for 169 s (2026-12-04, Debian 12,
# with the refusal logged for the unit).
check "daemon fixed: the unit ran, armored from its first instruction" \
  eventually bash -c 'test -e /run/armortest/armor-rfail.ran && test "$(systemctl show -P ExecMainStatus armor-rfail.service)" = 1 && journalctl -u armor-rfail.service -o cat | grep -q "^Denied read of /etc/armor-reload-secret by /usr/bin/cat"'

# --- a daemon that does not answer -----------------------------------------------------------
# Something listens at the socket and never answers, as a hung daemon would. The reload goes on
# after the generator's 10 s, and the generator says why. (Not SIGSTOP on the real daemon: a
# stop and continue interrupts its event reader's wait, which ends the reader.)
systemctl stop unitarmor.service
mkdir -p /run/unitarmor
perl -MSocket -e '
  socket(my $s, PF_UNIX, SOCK_STREAM, 0) or die "socket: $!";
  bind($s, pack_sockaddr_un("/run/unitarmor/sync")) or die "bind: $!";
  listen($s, 16) or die "listen: $!";
  sleep 300' &
silent=$!
check "a silent listener is at the socket" eventually test -S /run/unitarmor/sync
t0=$(date +%s)
systemctl daemon-reload
t1=$(date +%s)
kill "$silent"
wait "$silent" 2>/dev/null
rm -f /run/unitarmor/sync
echo "# a daemon that does not answer: daemon-reload took $((t1 - t0)) s"
check "no answer: daemon-reload returns after the generator's timeout ($((t1 - t0)) s)" \
  test "$((t1 - t0))" -ge 9 -a "$((t1 - t0))" -le 60
check "no answer: the generator logged it" \
  sh -c 'journalctl -b --no-pager | grep -q "unitarmor-generator.*did not answer"'
check "no answer: armored services wait for the daemon (the generator wrote the wait drop-in)" \
  test -e /run/systemd/generator/armor-rswitch.service.d/unitarmor-wait.conf
since=$(date "+%Y-%m-%d %H:%M:%S")
systemctl start unitarmor.service
# Its first look at systemd's units ends after it is ready, and counts as a change (what systemd
# said may differ from the disk): the starts below are counted once it is over.
for i in $(seq 1 60); do
  journalctl -u unitarmor.service --since "$since" -o cat | grep -q "^following systemd" && break
  sleep 1
done

# --- starts that wait for the daemon: a pass only when a file may have changed ----------------
# The wait drop-ins are still there (the last reload's generator had no answer), so every
# armored start asks the daemon first. It reads every unit's files again only if one may have
# changed since its last pass began: repeated starts make no pass each, and a drop-in written
# right before a start (no reload) is still in force from the start's first instruction (the
# watcher may read it first; the host test every_change_is_seen_until_a_pass_can_see_it shows
# a start's request sees it either way).
waiting_passes() {
  sleep 2
  journalctl -u unitarmor.service -o cat | grep -c "^a unit's start: re-read"
}
waiting_start() {
  rm -f /run/armortest/rswitch.out
  systemctl start armor-rswitch.service
  cat /run/armortest/rswitch.out 2>/dev/null
}
# Every armored start asks through unitarmor-sync.service: a burst of them (these six come
# within ten seconds) must not hit a start limit and fail with "dependency".
check "[waiting starts] unitarmor-sync.service has no start limit" \
  test "$(systemctl show -P StartLimitIntervalUSec unitarmor-sync.service)" = 0
first=$(waiting_start)
p0=$(waiting_passes)
same=0
for i in 1 2 3; do [ "$(waiting_start)" = "denied:$last" ] && same=$((same + 1)); done
p1=$(waiting_passes)
echo "# three more starts behind the wait drop-in, nothing changed: $((p1 - p0)) passes"
# Why each pass was made (the daemon says it).
journalctl -u unitarmor.service -o cat | grep "^a unit's start: re-read" | tail -n "$((p1 - p0 + 1))" |
  sed 's/^/#   /'
check "[waiting starts] the first start after the daemon's ran under the unit's policy ($first)" \
  test "$first" = "denied:$last"
check "[waiting starts] so did the three after it ($same of 3)" test "$same" = 3
check "[waiting starts] they made at most one pass between them ($((p1 - p0)))" \
  test "$((p1 - p0))" -le 1
for want in B A; do
  dropin armor-rswitch.service armor.conf "$(deny_file "$(echo $want | tr AB ab)")"
  got=$(waiting_start)
  check "[waiting starts] a drop-in written right before the start, no reload: in force ($got)" \
    test "$got" = "denied:$want"
done
check "and the restarted daemon answers again" sh -c 'since=$(date "+%Y-%m-%d %H:%M:%S"); sleep 1; systemctl daemon-reload; journalctl -u unitarmor.service --since "$since" -o cat | grep -q "^daemon-reload: re-read"'
# --- unitarmor's own units are never bound by an armored slice ---------------------------------
# The sync unit in an armored slice: were it bound, the bus protection would refuse its connect
# to the daemon, and every armored start after a reload without the daemon would fail.
mkdir -p /etc/systemd/system/unitarmor-sync.service.d
printf '[Service]\nSlice=armor-own.slice\n' >/etc/systemd/system/unitarmor-sync.service.d/zz-slice.conf
dropin armor-own.slice armor.conf "$deny_secret"
systemctl daemon-reload
check "an armored slice leaves unitarmor-sync.service in it unbound: it reaches the daemon" \
  systemctl start unitarmor-sync.service
check "the sync unit is in the armored slice" \
  test "$(systemctl show -P Slice unitarmor-sync.service)" = armor-own.slice
rm -rf /etc/systemd/system/unitarmor-sync.service.d /etc/systemd/system/armor-own.slice.d
systemctl daemon-reload
finish
