#!/bin/bash
# Units started the moment their files are written, with no `daemon-reload` and no wait (issue
# 10, "no window"): systemd loads a unit it has not loaded yet from disk when it is started by
# name, and reads the drop-in just written; the daemon reads it only once it is closed. The
# unit's first exec waits until the daemon has read the files (bpf/pending.h), then runs under
# the new policy: the read is denied on every try. Each try has an unarmored twin, written and
# started the same way with a drop-in that is not armor, whose read works (it waited for the
# daemon too, and was let go unarmored). A drop-in held open for writing while the unit starts
# holds the unit's first exec until it is closed and read, even when a reload read half of it.
# Run in the guest by tests/vm/run (through suite.sh). With an argument, that many tries.
. ./lib.sh

tries=${1:-5}
mkdir -p /srv/pending /run/armortest
echo secret >/srv/pending/secret
rule='[X-Armor]
ArmorPolicy=deny read /srv/pending/secret'
other='[Service]
Environment=PENDING_TWIN=1'
reader='[Service]
Type=oneshot
ExecStart=/bin/sh -c "cat /srv/pending/secret >/run/armortest/%N.out 2>&1; echo $$? >>/run/armortest/%N.out"'

read_failed() { grep -qx 1 "/run/armortest/$1.out"; }
read_worked() { grep -qx secret "/run/armortest/$1.out"; }

# write_and_start UNIT DROPIN: the unit file and its drop-in, written and started at once.
write_and_start() {
  printf '%s\n' "$reader" >"/etc/systemd/system/$1.service"
  mkdir -p "/etc/systemd/system/$1.service.d"
  printf '%s\n' "$2" >"/etc/systemd/system/$1.service.d/50-pending.conf"
  timeout 60 systemctl start "$1.service"
}

denied=0 twins=0
for i in $(seq "$tries"); do
  write_and_start "armor-pend-$i" "$rule"
  write_and_start "armor-pend-twin-$i" "$other"
  if read_failed "armor-pend-$i"; then
    denied=$((denied + 1))
  else
    echo "  try $i: the armored unit read: $(tr '\n' ' ' <"/run/armortest/armor-pend-$i.out")"
  fi
  if read_worked "armor-pend-twin-$i"; then
    twins=$((twins + 1))
  else
    echo "  try $i: the twin did not read: $(tr '\n' ' ' <"/run/armortest/armor-pend-twin-$i.out" 2>&1)"
  fi
done
check "[written and started at once] the read is denied ($denied of $tries)" test "$denied" -eq "$tries"
check "[written and started at once] the unarmored twins read ($twins of $tries)" test "$twins" -eq "$tries"
check "[written and started at once] journalctl -u has the denial" eventually sh -c \
  "journalctl -u armor-pend-$tries.service -o cat | grep -q 'Denied read of /srv/pending/secret'"

# The same, for a template's instance (the drop-in is the template's) and for a drop-in put in
# place by a rename, as package managers write files.
printf '%s\n' "$reader" >/etc/systemd/system/armor-pend-tpl@.service
mkdir -p /etc/systemd/system/armor-pend-tpl@.service.d
printf '%s\n' "$rule" >/etc/systemd/system/armor-pend-tpl@.service.d/50-pending.conf
timeout 60 systemctl start armor-pend-tpl@one.service
check "[template, written and started at once] the instance's read is denied" \
  read_failed armor-pend-tpl@one
printf '%s\n' "$reader" >/etc/systemd/system/armor-pend-mv.service
mkdir -p /etc/systemd/system/armor-pend-mv.service.d
printf '%s\n' "$rule" >/etc/systemd/system/armor-pend-mv.service.d/.50-pending.conf.tmp
mv /etc/systemd/system/armor-pend-mv.service.d/.50-pending.conf.tmp \
  /etc/systemd/system/armor-pend-mv.service.d/50-pending.conf
timeout 60 systemctl start armor-pend-mv.service
check "[renamed into place and started at once] the read is denied" read_failed armor-pend-mv
# Each unit above either waited for the daemon or started after the daemon had read its files,
# whichever came first (the read was denied either way): how many waited is reported, not
# asserted. The drop-in held open for writing below makes a unit wait every time.
echo "# $(journalctl -u unitarmor.service -o cat | grep -cE '^armor-pend-(mv|[0-9]+)\.service: started before unitarmor had read its files') of $((tries + 1)) armored units written and started at once waited for the daemon"

# A unit armored only by the armored slice it is in, written and started at once with a drop-in
# that is not armor: once it has waited, it is bound as a new unit of that slice is, to the
# slice's policy, not left unbound.
unit armor-pend.slice '[Slice]'
dropin armor-pend.slice armor.conf "$rule"
systemctl daemon-reload
printf '%s\n' "$reader" 'Slice=armor-pend.slice' >/etc/systemd/system/armor-pend-inslice.service
mkdir -p /etc/systemd/system/armor-pend-inslice.service.d
printf '%s\n' "$other" >/etc/systemd/system/armor-pend-inslice.service.d/50-pending.conf
timeout 60 systemctl start armor-pend-inslice.service
check "[in an armored slice, written and started at once] the slice's rule holds" \
  read_failed armor-pend-inslice

# A slice's new drop-in armors a unit in it that was read before: the unit started the moment the
# slice's drop-in is written waits for it too.
printf '%s\n' "$reader" 'Slice=armor-pend2.slice' >/etc/systemd/system/armor-pend-sl2.service
unit armor-pend2.slice '[Slice]'
systemctl daemon-reload
dropin armor-pend2.slice armor.conf "$rule"
timeout 60 systemctl start armor-pend-sl2.service
check "[slice's drop-in written, unit started at once] the slice's rule holds" \
  read_failed armor-pend-sl2

# A write that is refused leaves nothing that holds a unit back: an unprivileged user's, and an
# armored unit's (unit files are a protection). Nothing then reads the files again (no inotify
# event), so a mark left behind would hold the victim's start until its timeout.
printf '%s\n' "$reader" >/etc/systemd/system/armor-pend-victim.service
mkdir -p /etc/systemd/system/armor-pend-victim.service.d
unitarmor sync >/dev/null 2>&1 || sleep 3
d=/etc/systemd/system/armor-pend-victim.service.d
check_fails "[refused writes] an unprivileged user cannot write the victim's drop-in" \
  setpriv --reuid=nobody --regid=nogroup --clear-groups sh -c \
  "printf x >$d/x.conf || mkdir $d/x || ln -s /dev/null $d/y.conf"
unit armor-pend-writer.service '[Service]
Type=oneshot
ExecStart=/bin/sh -c "printf x >'"$d"'/x.conf; mkdir '"$d"'/x; ln -s /dev/null '"$d"'/y.conf; touch /run/armortest/armor-pend-writer.out"'
dropin armor-pend-writer.service armor.conf "$rule"
systemctl daemon-reload
systemctl start armor-pend-writer.service
check "[refused writes] the armored unit ran its writes" test -e /run/armortest/armor-pend-writer.out
check "[refused writes] they were refused" test ! -e "$d/x.conf" -a ! -e "$d/x" -a ! -e "$d/y.conf"
check "[refused writes] the victim starts at once and reads" sh -c \
  "timeout 20 systemctl start armor-pend-victim.service && grep -qx secret /run/armortest/armor-pend-victim.out"

# A drop-in held open for writing: the unit's first exec waits until it is closed and read.
printf '%s\n' "$reader" >/etc/systemd/system/armor-pend-open.service
mkdir -p /etc/systemd/system/armor-pend-open.service.d
exec 3>/etc/systemd/system/armor-pend-open.service.d/50-pending.conf
systemctl start --no-block armor-pend-open.service
sleep 3
check "[drop-in open for writing] the unit has not run yet" test ! -e /run/armortest/armor-pend-open.out
printf '%s\n' "$rule" >&3
exec 3>&-
check "[drop-in open for writing] it runs once the file is closed" eventually test -s \
  /run/armortest/armor-pend-open.out
check "[drop-in open for writing] under the policy written: the read is denied" \
  read_failed armor-pend-open
check "[drop-in open for writing] the daemon says the unit waited, then went on armored" eventually sh -c \
  "journalctl -u armor-pend-open.service -o cat | grep 'it waited until it had' | grep -q 'it goes on armored'"

# A drop-in half written when a reload's pass reads it: the half is not installed over the mark
# that holds the unit (daemon/first.rs), whose first exec waits for the whole file and runs
# under both halves' rules. Once with a small first half, once with one big enough to compile
# on the compile thread (more than 256 path patterns). The twin, the same unit with no drop-in,
# reads both files.
echo half >/srv/pending/half
both='[Service]
Type=oneshot
ExecStart=/bin/sh -c "cat /srv/pending/half >/run/armortest/%N.out 2>&1; echo $$? >>/run/armortest/%N.out; cat /srv/pending/secret >>/run/armortest/%N.out 2>&1; echo $$? >>/run/armortest/%N.out"'
both_failed() { [ "$(grep -cx 1 "/run/armortest/$1.out")" = 2 ] && ! grep -qxE 'half|secret' "/run/armortest/$1.out"; }
# half_written UNIT FILLER: the unit's drop-in opened, its first half (FILLER deny rules, then
# the rule for /srv/pending/half) written, a reload, the unit started, then the second half (the
# rule for /srv/pending/secret) written and the file closed.
half_written() {
  local d=/etc/systemd/system/$1.service.d
  mkdir -p "$d"
  exec 3>"$d/50-pending.conf"
  {
    echo '[X-Armor]'
    seq "$2" | sed 's|.*|ArmorPolicy=deny read /opt/nothing/&/**|'
    echo 'ArmorPolicy=deny read /srv/pending/half'
  } >&3
  timeout 60 systemctl daemon-reload
  systemctl start --no-block "$1.service"
  sleep 3
  check "[$1: half written, read by a reload] the unit has not run yet" \
    test ! -e "/run/armortest/$1.out"
  echo 'ArmorPolicy=deny read /srv/pending/secret' >&3
  exec 3>&-
  check "[$1: half written, read by a reload] it runs once the file is closed" \
    eventually sh -c "grep -cxE '[0-9]+' /run/armortest/$1.out | grep -qx 2"
  check "[$1: half written, read by a reload] under both halves: both reads are denied" \
    both_failed "$1"
  check "[$1: half written, read by a reload] the daemon held its first policy" eventually sh -c \
    "journalctl -u unitarmor.service -o cat | grep -q '^$1.service: its files were being written as they were read'"
}
printf '%s\n' "$both" >/etc/systemd/system/armor-pend-half.service
printf '%s\n' "$both" >/etc/systemd/system/armor-pend-halfbig.service
printf '%s\n' "$both" >/etc/systemd/system/armor-pend-halftwin.service
timeout 60 systemctl daemon-reload
half_written armor-pend-half 0
half_written armor-pend-halfbig 400
# The same with the half-written file a slice's two slices up, and the unit's own drop-in
# written whole: the unit's own mark is cleared by the pass (read whole), and the slice's is not
# one its cgroup is held by; the unit still waits for the slice's file, since its first policy
# waits (daemon/first.rs keeps a mark under its name).
unit armor-pendx.slice '[Slice]'
unit armor-pendx-y.slice '[Slice]'
printf '%s\n' "$both" 'Slice=armor-pendx-y.slice' >/etc/systemd/system/armor-pend-halfup.service
timeout 60 systemctl daemon-reload
mkdir -p /etc/systemd/system/armor-pendx.slice.d
exec 3>/etc/systemd/system/armor-pendx.slice.d/50-pending.conf
printf '%s\n' '[X-Armor]' 'ArmorPolicy=deny read /srv/pending/half' >&3
dropin armor-pend-halfup.service armor.conf '[X-Armor]
ArmorPolicy=audit read /srv/pending/nothing'
timeout 60 systemctl daemon-reload
systemctl start --no-block armor-pend-halfup.service
sleep 3
check "[slice two up half written, read by a reload] the unit has not run yet" \
  test ! -e /run/armortest/armor-pend-halfup.out
echo 'ArmorPolicy=deny read /srv/pending/secret' >&3
exec 3>&-
check "[slice two up half written, read by a reload] it runs once the file is closed" \
  eventually sh -c "grep -cxE '[0-9]+' /run/armortest/armor-pend-halfup.out | grep -qx 2"
check "[slice two up half written, read by a reload] under both halves: both reads are denied" \
  both_failed armor-pend-halfup
timeout 60 systemctl start armor-pend-halftwin.service
check "[half written] the twin with no drop-in reads both files" sh -c \
  "grep -qx half /run/armortest/armor-pend-halftwin.out && grep -qx secret /run/armortest/armor-pend-halftwin.out"
check "[half written] journalctl -u has the second half's denial" eventually sh -c \
  "journalctl -u armor-pend-half.service -o cat | grep -q 'Denied read of /srv/pending/secret'"

# The daemon's own unit never waits for the daemon: a write among its files, then a restart.
mkdir -p /etc/systemd/system/unitarmor.service.d
touch /etc/systemd/system/unitarmor.service.d/.pending-test
systemctl restart unitarmor.service
check "[the daemon's own files written] unitarmor restarts" eventually systemctl is-active -q unitarmor.service
rm -rf /etc/systemd/system/unitarmor.service.d
systemctl daemon-reload

finish
