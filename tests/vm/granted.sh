#!/bin/bash
# What systemd already grants (issue 13): `ArmorPolicy=@systemd` allows what the unit's own
# settings open up (here StateDirectory=, RuntimeDirectory=, ReadOnlyPaths= and the program of
# ExecStart=), each rule with the line of its setting, so that an allow-list names only the
# rest. The armored unit writes its state directory and runs its program, and is refused a
# write and a program its settings do not name; the unarmored twin does both.
# Run in the guest by tests/vm/run (through suite.sh).
. ./lib.sh

A=/var/lib/armortest
mkdir -p $A /run/armortest /srv/armor-granted-ro
echo granted-ro >/srv/armor-granted-ro/file
cat >$A/granted.sh <<'EOF'
#!/bin/sh
# $1: the unit's name. One line per attempt into /run/armortest/$1.out (a RuntimeDirectory=
# would be the unit's own: the result goes where the check can read it after the stop).
out=/run/armortest/$1.out
: >"$out"
try() { t=$1; shift; if "$@" >/dev/null 2>&1; then echo "$t ok" >>"$out"; else echo "$t refused" >>"$out"; fi; }
try state-write sh -c "echo x >/var/lib/$1/state"
try runtime-write sh -c "echo x >/run/$1/pid"
try ro-read sh -c "read l </srv/armor-granted-ro/file"
try other-write sh -c "echo x >/var/tmp/$1-other"
try other-exec /usr/bin/id
exit 0
EOF
chmod 755 $A/granted.sh
for u in armor-granted armor-granted-twin; do
  unit $u.service "[Unit]
StartLimitIntervalSec=0
[Service]
Type=oneshot
StateDirectory=$u
RuntimeDirectory=$u
ReadOnlyPaths=/srv/armor-granted-ro
ExecStart=$A/granted.sh %N"
done
# The rest of what a shell needs: its libraries and the files it reads, the result file.
dropin armor-granted.service armor.conf '[X-Armor]
ArmorPolicy=@systemd
ArmorPolicy=allow read /usr/ /etc/ /proc/ /dev/ /var/lib/armortest/
ArmorPolicy=allow exec /usr/bin/dash /usr/lib/**
ArmorPolicy=allow write /run/armortest/'
systemctl daemon-reload
show_has() { unitarmor show armor-granted.service | grep -F "$1"; }
check "unitarmor show: @systemd allows the state directory (from StateDirectory=, line 5)" \
  show_has "allow write /var/lib/armor-granted/"
check "unitarmor show: the rule names the unit file's line 5" sh -c \
  'unitarmor show armor-granted.service | grep -F "allow write /var/lib/armor-granted/" | grep -q "armor-granted.service:5$"'
check "unitarmor show: @systemd allows ExecStart='s program" show_has "allow exec $A/granted.sh"
check "armor-granted.service runs" systemctl start armor-granted.service
check "the unarmored twin runs" systemctl start armor-granted-twin.service
for t in state-write runtime-write ro-read; do
  check "@systemd: $t works in the armored unit" grep -qx "$t ok" /run/armortest/armor-granted.out
done
for t in other-write other-exec; do
  check "@systemd: $t is refused in the armored unit" grep -qx "$t refused" /run/armortest/armor-granted.out
  check "@systemd: $t works in the unarmored twin" grep -qx "$t ok" /run/armortest/armor-granted-twin.out
done
check "the refused write is in journalctl -u armor-granted.service" eventually sh -c \
  'journalctl -u armor-granted.service -o cat | grep -q "^Denied .*/var/tmp/armor-granted-other"'
rm -rf /etc/systemd/system/armor-granted* /var/tmp/armor-granted* /srv/armor-granted-ro
systemctl daemon-reload
finish
