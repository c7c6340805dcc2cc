#!/bin/bash
# `connect unix:` rules (issue 12): a root service is refused a connect to a pathname or an
# abstract unix socket, stream or datagram (connect() and a datagram sent with no connect()),
# by name or by glob, and the denial is in `journalctl -u UNIT` with the socket's name. The
# socket is decided by the path it is bound at, so a hard link or a symlink to it is the same
# socket. Abstract sockets of other units, like the system bus, are refused unless an allow rule
# names them (the bus protection). Deny, allow-list (which lifts that refusal), audit,
# ArmorMode=audit and from=, each next to an unarmored twin that reaches every socket.
# Run in the guest by tests/vm/run (through suite.sh).
. ./lib.sh

d=/var/lib/armortest-unix
s=/run/armortest-unix
rm -rf "$s"
mkdir -p "$d" "$s/g"
cp ./netprobe "$d/netprobe"
cp ./netprobe "$d/netprobe2" # the same program under another path, for from=
# Listeners outside any armor.
systemd-run --unit armor-unix-listener.service "$d/netprobe" unix-serve \
  "$s/s.sock" "$s/d.dgram" "$s/g/a.sock" "$s/other.sock" @armortest-abs @armortest-pub >/dev/null
check "the listener's sockets are there" eventually test -S "$s/g/a.sock"
ln "$s/s.sock" "$s/alias.sock"
ln -s s.sock "$s/sym.sock"

cat >"$d/try" <<EOF
#!/bin/sh
# try NAME: one line per attempt in $s/NAME.out: "ATTEMPT RESULT", RESULT being ok or the
# errno name.
p=$d/netprobe
out=$s/\$1.out
: >"\$out"
attempt() {
  name=\$1; shift
  if r=\$("\$@" 2>&1); then echo "\$name ok"; else echo "\$name \$(echo "\$r" | tail -n 1)"; fi >>"\$out"
}
attempt stream \$p unix stream $s/s.sock
attempt hardlink \$p unix stream $s/alias.sock
attempt symlink \$p unix stream $s/sym.sock
attempt dgram-connect \$p unix dgram $s/d.dgram
attempt dgram-sendto \$p unix-sendto $s/d.dgram
attempt glob \$p unix stream $s/g/a.sock
attempt other \$p unix stream $s/other.sock
attempt abstract \$p unix stream @armortest-abs
attempt abstract-pub \$p unix stream @armortest-pub
attempt bus \$p unix stream /run/dbus/system_bus_socket
attempt copy $d/netprobe2 unix stream $s/s.sock
# Logging through /dev/log and the journal's stream need unix sockets, whatever the rules say.
attempt logger logger -t "armortest-\$1" "hello from \$1"
EOF
chmod 755 "$d/try"

result() { grep -qx "$2 $3" "$s/$1.out"; }
field() { journalctl -u "$1" -o verbose | grep -q "^ *$2\$"; }

for u in twin deny allow audit dry from; do
  unit "armor-unix-$u.service" "[Service]
Type=oneshot
ExecStart=$d/try %N"
done
dropin armor-unix-deny.service armor.conf "[X-Armor]
ArmorPolicy=deny connect unix:$s/s.sock unix:$s/g/* unix:@armortest-abs
ArmorPolicy=deny connect unix:$s/d.dgram"
dropin armor-unix-allow.service armor.conf "[X-Armor]
ArmorPolicy=allow connect unix:$s/s.sock unix:@armortest-pub unix:/run/dbus/system_bus_socket"
dropin armor-unix-audit.service armor.conf "[X-Armor]
ArmorPolicy=audit connect unix:$s/s.sock"
dropin armor-unix-dry.service armor.conf "[X-Armor]
ArmorMode=audit
ArmorPolicy=deny connect unix:@armortest-abs"
dropin armor-unix-from.service armor.conf "[X-Armor]
ArmorPolicy=deny connect unix:$s/s.sock from=$d/netprobe2"
systemctl daemon-reload
wait_rules armor-unix-deny.service 2
wait_rules armor-unix-allow.service 1
wait_rules armor-unix-audit.service 1
wait_rules armor-unix-dry.service 1
wait_rules armor-unix-from.service 1
for u in twin deny allow audit dry from; do
  check "armor-unix-$u runs" systemctl start "armor-unix-$u.service"
done

# The twin: every socket is reachable without armor, the system bus included.
for a in stream hardlink symlink dgram-connect dgram-sendto glob other abstract abstract-pub bus \
  copy logger; do
  check "twin: $a works" result armor-unix-twin "$a" ok
done

# deny connect unix:s.sock unix:g/* unix:@armortest-abs / unix:d.dgram
check "deny: a stream connect to the socket is refused" result armor-unix-deny stream EACCES
check "deny: through a hard link to it, refused (decided on the socket)" \
  result armor-unix-deny hardlink EACCES
check "deny: through a symlink to it, refused" result armor-unix-deny symlink EACCES
check "deny: a datagram connect() is refused" result armor-unix-deny dgram-connect EACCES
check "deny: a datagram sent with no connect() is refused" \
  result armor-unix-deny dgram-sendto EACCES
check "deny unix:g/*: a socket the glob matches is refused" result armor-unix-deny glob EACCES
check "deny unix:@armortest-abs: the abstract socket is refused" \
  result armor-unix-deny abstract EACCES
check "deny: a socket no rule names is reachable" result armor-unix-deny other ok
check "deny: another unit's abstract socket stays refused (protection: only by an allow rule)" \
  result armor-unix-deny abstract-pub EACCES
check "deny: the system bus stays refused (protection)" result armor-unix-deny bus EACCES
check "deny: logging still works" result armor-unix-deny logger ok
check "deny: the denial is in journalctl -u" \
  eventually sh -c "journalctl -u armor-unix-deny.service -o cat | grep -q 'Denied connect of $s/s.sock'"
check "deny: the record names the socket's own path, not the link's" \
  sh -c "! journalctl -u armor-unix-deny.service -o cat | grep -q 'alias.sock'"
check "deny: the record's class is connect" field armor-unix-deny.service UNITARMOR_CLASS=connect
check "deny: the record's path is the socket" \
  field armor-unix-deny.service "UNITARMOR_PATH=$s/s.sock"
check "deny: the abstract socket's record names it with @" \
  field armor-unix-deny.service "UNITARMOR_PATH=@armortest-abs"

# allow connect unix:s.sock unix:@armortest-pub unix:/run/dbus/system_bus_socket
check "allow-list: the allowed socket is reachable" result armor-unix-allow stream ok
check "allow-list: also through its hard link" result armor-unix-allow hardlink ok
check "allow-list: the datagram socket is refused" result armor-unix-allow dgram-connect EACCES
check "allow-list: a datagram sent with no connect() is refused" \
  result armor-unix-allow dgram-sendto EACCES
check "allow-list: another socket is refused" result armor-unix-allow other EACCES
check "allow-list: so is one in a directory" result armor-unix-allow glob EACCES
check "allow-list: another abstract socket is refused" result armor-unix-allow abstract EACCES
check "allow-list: the allowed abstract socket is reachable" \
  result armor-unix-allow abstract-pub ok
check "allow-list: the system bus, allowed by name, is reachable" result armor-unix-allow bus ok
check "allow-list: logging still works" result armor-unix-allow logger ok

# audit connect unix:s.sock
check "audit: the connect goes through" result armor-unix-audit stream ok
check "audit: and is reported" \
  eventually sh -c "journalctl -u armor-unix-audit.service -o cat | grep -q 'Audited connect of $s/s.sock'"
check "audit: the record's action is audit" field armor-unix-audit.service UNITARMOR_ACTION=audit

# ArmorMode=audit, deny connect unix:@armortest-abs
check "ArmorMode=audit: the connect goes through" result armor-unix-dry abstract ok
check "ArmorMode=audit: reported as would deny" \
  eventually sh -c "journalctl -u armor-unix-dry.service -o cat | grep -q 'Would deny connect of @armortest-abs'"
check "ArmorMode=audit: the system bus, a protection, is reported, not refused" \
  result armor-unix-dry bus ok

# deny connect unix:s.sock from=netprobe2
check "from=: the named program is refused" result armor-unix-from copy EACCES
check "from=: another program reaches the same socket" result armor-unix-from stream ok

systemctl stop armor-unix-listener.service
finish
