#!/bin/bash
# Merged policies kept from pass to pass (issue 12, a reload's cost; src/daemon/merged.rs): a
# reload reuses the merge of a unit whose files hold the same bytes, and never one whose files
# changed, however the change is made: a drop-in rewritten in place at the same size (same
# inode), rewritten again within a second, rewritten with its modification time set back, or
# replaced by an older file of the same size. A running armored
# unit reads two files of the same name length in a loop; its drop-in denies one of them, then
# the other; its unarmored twin reads both throughout.
# Run in the guest by tests/vm/run (through suite.sh).
. ./lib.sh

mkdir -p /srv/unchanged /run/armortest
echo a-secret >/srv/unchanged/a
echo b-secret >/srv/unchanged/b
# The shell opens the file itself (read, not cat): an exec costs tens of milliseconds of CPU
# under emulation, and this loop runs for the whole scenario.
loop='[Service]
ExecStart=/bin/sh -c "while :; do for f in a b; do if read -r x 2>/dev/null </srv/unchanged/$$f; then echo $$f-read; else echo $$f-refused; fi; done >>/run/armortest/%N.out; sleep 0.3; done"'
unit armor-unch.service "$loop"
unit armor-unch-twin.service "$loop"
conf=/etc/systemd/system/armor-unch.service.d/armor.conf
deny() { printf '[X-Armor]\nArmorPolicy=deny read /srv/unchanged/%s\n' "$1"; }
out=/run/armortest/armor-unch.out
twin=/run/armortest/armor-unch-twin.out
# enforces F: after the output is emptied, the unit is refused F and reads the other file.
enforces() {
  local other=a
  [ "$1" = b ] || other=b
  : >"$out"
  eventually sh -c "tail -n 4 '$out' | grep -qx $1-refused && tail -n 4 '$out' | grep -qx $other-read"
}
# last_pass: the daemon's record of the last reload's pass over the files.
last_pass() {
  journalctl -u unitarmor.service -o cat | grep '^daemon-reload: re-read' | tail -n 1
}

mkdir -p "$(dirname "$conf")"
deny a >"$conf"
systemctl daemon-reload
check "the unit is armored" wait_rules armor-unch.service 1
systemctl start armor-unch.service armor-unch-twin.service
check "it is refused a and reads b" enforces a

# Nothing changed: the next reload reuses its merge.
systemctl daemon-reload
echo "# $(last_pass)"
check "a reload with nothing changed reuses the merged policies" sh -c \
  "journalctl -u unitarmor.service -o cat | grep '^daemon-reload: re-read' | tail -n 1 | grep -Eq '; [1-9][0-9]* policies unchanged'"
check "and the unit is still refused a" enforces a

# Rewritten in place, at the same size: the same inode, new times.
ino=$(stat -c %i "$conf") size=$(stat -c %s "$conf")
deny b >"$conf"
check "(the drop-in was rewritten in place, at the same size)" \
  test "$(stat -c %i "$conf") $(stat -c %s "$conf")" = "$ino $size"
systemctl daemon-reload
check "after an in-place rewrite and a reload, it is refused b and reads a" enforces b
systemctl daemon-reload

# Rewritten twice within a second, a reload after each: the second is enforced.
deny a >"$conf"
systemctl daemon-reload
deny b >"$conf"
systemctl daemon-reload
check "after two rewrites within a second, the second is enforced" enforces b
systemctl daemon-reload

# Rewritten with its modification time set back to what it was (as cp -p, rsync -t, tar do).
mtime=$(stat -c %.9Y "$conf")
deny a >"$conf"
touch -m -d "@$mtime" "$conf"
check "(its size and modification time are what they were)" \
  test "$(stat -c '%s %.9Y' "$conf")" = "$size $mtime"
systemctl daemon-reload
check "after a rewrite that kept its time, it is refused a" enforces a
deny b >"$conf"
systemctl daemon-reload
check "(and b again)" enforces b

# Replaced by another file of the same size (renamed over it).
deny a >"$conf.new"
touch -d '1 hour ago' "$conf.new"
mv "$conf.new" "$conf"
systemctl daemon-reload
check "after a file of the same size and an old time is renamed over it, it is refused a" enforces a
check "the denials are in journalctl -u armor-unch.service" sh -c \
  "journalctl -u armor-unch.service -o cat | grep -q 'Denied read of /srv/unchanged/a ' &&
   journalctl -u armor-unch.service -o cat | grep -q 'Denied read of /srv/unchanged/b '"
check "the unarmored twin read both files throughout" sh -c \
  "grep -qx a-read '$twin' && grep -qx b-read '$twin' && ! grep -q refused '$twin'"

systemctl stop armor-unch.service armor-unch-twin.service
rm -rf /etc/systemd/system/armor-unch*
systemctl daemon-reload
finish
