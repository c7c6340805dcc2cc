#!/bin/bash
# A reload whose end the daemon never hears (never silently out of date): a pass made while a
# reload runs disarms nothing, and the rescan that PID 1's `Reloading(false)` starts is what
# takes away a removed drop-in's rules. Here the bus withholds that signal from every peer (a
# mandatory D-Bus policy), as a signal lost under load did once in the suite. The armored
# unit's drop-in is removed and systemd reloaded: the daemon must notice that no end came,
# read what systemd loaded all the same, and stop armoring the unit. An unarmored twin shows
# the file is readable without armor. Run in the guest by tests/vm/run (through suite.sh).
. ./lib.sh

mkdir -p /srv/unheard
echo unheard-secret >/srv/unheard/secret
reader='[Service]
Type=oneshot
ExecStart=/bin/cat /srv/unheard/secret'
unit armor-uh.service "$reader"
unit armor-uh-twin.service "$reader"
dropin armor-uh.service armor.conf '[X-Armor]
ArmorPolicy=deny read /srv/unheard/secret'
daemon_lines() { journalctl -u unitarmor.service -o cat --since "@$1"; }
# settled SINCE: the daemon has rescanned for every reload end it heard since SINCE (at least
# one), and logged nothing of the kind for 2 s. Under load (the whole suite in one boot, with
# hundreds of units armored) a rescan takes seconds: one still running when the withheld
# reload begins is started over by its generator's request and reads what it loaded (and
# disarms the unit: right, but not the deadline's doing), and an end heard before the bus
# withheld them is logged late.
settled() {
  local r s again
  r=$(daemon_lines "$1" | grep -c '^systemd reloaded')
  s=$(daemon_lines "$1" | grep -c '^rescan: ')
  [ "$r" -ge 1 ] && [ "$s" -ge "$r" ] || return 1
  sleep 2
  again=$(daemon_lines "$1" | grep -Ec '^(systemd reloaded|rescan: )')
  [ "$again" = $((r + s)) ]
}
since=$(date +%s)
check "daemon-reload with the drop-in" timeout 60 systemctl daemon-reload
check "armor-uh.service is armored" wait_rules armor-uh.service 1
check_fails "armor-uh.service: the read is refused" systemctl start armor-uh.service
check "the twin reads the file" systemctl start armor-uh-twin.service
check "the daemon is done with that reload" eventually settled "$since"

policy=/etc/dbus-1/system.d/zz-armortest-unheard.conf
cat >$policy <<'XML'
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <policy context="mandatory">
    <deny receive_interface="org.freedesktop.systemd1.Manager" receive_member="Reloading"/>
  </policy>
</busconfig>
XML
check "the bus takes the policy that withholds Reloading" \
  busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig
rm -r /etc/systemd/system/armor-uh.service.d
since=$(date +%s)
check "daemon-reload without the drop-in" timeout 60 systemctl daemon-reload
check "the reload's generator asked the daemon" \
  eventually eval "daemon_lines $since | grep -q '^daemon-reload: re-read'"
# The rule is in force until the daemon reads what systemd loaded (fail closed meanwhile).
check "armor-uh.service is no longer armored" wait_rules armor-uh.service 0
check "the daemon said it heard no end and re-read systemd's view" \
  eval "daemon_lines $since | grep -q '^no end of the daemon-reload heard from systemd'"
check_fails "no end was heard (the policy withheld it)" \
  eval "daemon_lines $since | grep -q '^systemd reloaded'"
check "armor-uh.service reads the file" systemctl start armor-uh.service

rm -f $policy
busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig
rm -f /etc/systemd/system/armor-uh.service /etc/systemd/system/armor-uh-twin.service
systemctl daemon-reload
rm -r /srv/unheard
finish
