#!/bin/bash
# Units whose files are written without a `daemon-reload` (issue 10, "units loaded without a
# reload"): systemd reads a unit it has not loaded from disk when it is started by name, by a
# socket or by a timer, and so must unitarmor. The daemon watches the unit directories and
# reads a new or changed drop-in as soon as it is closed; `unitarmor status` listing the unit
# shows it has, and the unit is then armored from its first instruction. A named policy edited
# without a reload is read the same way. Each armored unit has an unarmored twin (the same unit,
# no drop-in) whose read works.
# Run in the guest by tests/vm/run (through suite.sh).
. ./lib.sh

mkdir -p /srv/noreload /run/armortest
echo secret >/srv/noreload/secret
rule='[X-Armor]
ArmorPolicy=deny read /srv/noreload/secret'
reader='[Service]
Type=oneshot
ExecStart=/bin/sh -c "cat /srv/noreload/secret >/run/armortest/%N.out 2>&1; echo $$? >>/run/armortest/%N.out"'

# read_by UNIT: what the unit's read did ("secret" and 0, or the error and 1).
read_failed() { grep -qx 1 "/run/armortest/$1.out"; }
read_worked() { grep -qx secret "/run/armortest/$1.out"; }
denial_logged() {
  eventually sh -c "journalctl -u $1.service -o cat | grep -q 'Denied read of /srv/noreload/secret'"
}

# 1. A new unit and its drop-in, never loaded, no reload at all; started by name.
unit armor-nr-new.service "$reader"
unit armor-nr-new-twin.service "$reader"
dropin armor-nr-new.service armor.conf "$rule"
check "[new unit, no reload] the daemon reads its drop-in (unitarmor status lists it)" \
  wait_rules armor-nr-new.service 1
systemctl start armor-nr-new.service armor-nr-new-twin.service
check "[new unit, no reload] started by name: the read is denied" read_failed armor-nr-new
check "[new unit, no reload] the unarmored twin reads it" read_worked armor-nr-new-twin
check "[new unit, no reload] journalctl -u has the denial" denial_logged armor-nr-new

# 2. A unit systemd knew at the last reload but never loaded; the drop-in comes after it.
unit armor-nr-late.service "$reader"
systemctl daemon-reload
dropin armor-nr-late.service armor.conf "$rule"
check "[drop-in added after the reload] the daemon reads it" wait_rules armor-nr-late.service 1
systemctl start armor-nr-late.service
check "[drop-in added after the reload] started by name: the read is denied" read_failed armor-nr-late
check "[drop-in added after the reload] journalctl -u has the denial" denial_logged armor-nr-late

# 3. Started by a timer, all files written without a reload; the timer loads the service.
for n in armor-nr-timer armor-nr-timer-twin; do
  unit $n.service "$reader"
  unit $n.timer "[Timer]
OnActiveSec=1
AccuracySec=1us"
done
dropin armor-nr-timer.service armor.conf "$rule"
check "[started by a timer] the daemon reads the service's drop-in" wait_rules armor-nr-timer.service 1
systemctl start armor-nr-timer.timer armor-nr-timer-twin.timer
check "[started by a timer] the read is denied" eventually read_failed armor-nr-timer
check "[started by a timer] the unarmored twin reads it" eventually read_worked armor-nr-timer-twin
check "[started by a timer] journalctl -u has the denial" denial_logged armor-nr-timer

# 4. A drop-in directory made after the daemon started watching, and a file renamed into it
# (as editors and package managers write files).
unit armor-nr-mv.service "$reader"
mkdir -p /etc/systemd/system/armor-nr-mv.service.d
printf '%s\n' "$rule" >/etc/systemd/system/armor-nr-mv.service.d/.armor.conf.tmp
mv /etc/systemd/system/armor-nr-mv.service.d/.armor.conf.tmp /etc/systemd/system/armor-nr-mv.service.d/armor.conf
check "[renamed into a new drop-in directory] the daemon reads it" wait_rules armor-nr-mv.service 1
systemctl start armor-nr-mv.service
check "[renamed into a new drop-in directory] the read is denied" read_failed armor-nr-mv

# 5. A named policy edited without a reload: every unit that includes it follows at once.
echo other >/srv/noreload/other
mkdir -p /etc/unitarmor/policies
named() {
  printf 'description = "noreload.sh"\n'
  for f in "$@"; do
    printf '[[rule]]\naction = "deny"\nclass = "read"\nargs = ["/srv/noreload/%s"]\n' "$f"
  done
}
named secret >/etc/unitarmor/policies/armortest-nr.toml
reads_other='[Service]
Type=oneshot
ExecStart=/bin/sh -c "cat /srv/noreload/other >/run/armortest/%N.out 2>&1; echo $$? >>/run/armortest/%N.out"'
unit armor-nr-named.service "$reads_other"
unit armor-nr-named-twin.service "$reads_other"
dropin armor-nr-named.service armor.conf '[X-Armor]
ArmorPolicy=@armortest-nr'

check "[named policy] the unit is armored by it" wait_rules armor-nr-named.service 1
systemctl start armor-nr-named.service
check "[named policy] before the edit, its other file is read" grep -qx other /run/armortest/armor-nr-named.out
named secret other >/etc/unitarmor/policies/armortest-nr.toml
check "[named policy edited, no reload] the daemon reads it" wait_rules armor-nr-named.service 2
systemctl start armor-nr-named.service armor-nr-named-twin.service
check "[named policy edited, no reload] the new rule denies the read" \
  grep -qx 1 /run/armortest/armor-nr-named.out
check "[named policy edited, no reload] the unarmored twin reads it" \
  grep -qx other /run/armortest/armor-nr-named-twin.out
check "[named policy edited, no reload] journalctl -u has the denial" eventually sh -c \
  "journalctl -u armor-nr-named.service -o cat | grep -q 'Denied read of /srv/noreload/other'"
rm -f /etc/unitarmor/policies/armortest-nr.toml

systemctl stop armor-nr-timer.timer armor-nr-timer-twin.timer 2>/dev/null
rm -rf /etc/systemd/system/armor-nr-* /srv/noreload
systemctl daemon-reload
finish
