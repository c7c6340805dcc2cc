#!/bin/bash
# from= (issue 12): rules that hold for the processes running one executable. A deny rule with
# from= refuses that program only (a copy of it under another path is another executable); an
# allow rule with from= makes its class an allow-list for that program only, which it cannot
# leave by executing another program (the dynamic loader, a shell), by another process of the
# unit attaching to it (/proc/PID/mem), or by renaming its own file; neither a rename nor a
# hard link by another program in the unit takes a file out of a from= rule; and the unit
# cannot name another file its executable (prctl PR_SET_MM). Then the same for capabilities,
# socket families and ports. Each next to an unarmored twin.
# Run in the guest by tests/vm/run (through suite.sh).
. ./lib.sh

d=/srv/armortest-from
o=/opt/armortest-from
r=/run/armortest-from
rm -rf "$d" "$r"
mkdir -p "$d/pub" "$o" "$r"
for f in secret moved linked other; do echo "$f-data" >"$d/$f"; done
echo pub-data >"$d/pub/file"
cp /usr/bin/cat "$o/cat"     # the same program under another path
cp /usr/bin/dash "$o/boxed"  # a program held to an allow-list of its own
mkfifo "$d/pub/fifo"
ldso=$(readlink -f /lib64/ld-linux-x86-64.so.2)
check "the escape helper is built (tests/all compiles tests/vm/escape.c)" test -x escape
cp escape "$o/escape"

# Each unit runs the same script: cat and the copies read, mv and ln rename and link, escape
# names cat its executable. Every outcome goes to a file of its own, named after the unit.
script="cd $d
n=\$1
cat secret >$r/\$n.cat 2>&1
$o/cat secret >$r/\$n.copy 2>&1
$o/boxed -c 'read l <pub/file && echo \$l' >$r/\$n.boxed-pub 2>&1
$o/boxed -c 'read l <other && echo \$l' >$r/\$n.boxed-other 2>&1
cat other >$r/\$n.cat-other 2>&1
$o/boxed -c 'exec $ldso /usr/bin/cat other' >$r/\$n.boxed-ldso 2>&1
$o/boxed -c 'cat other' >$r/\$n.boxed-cat 2>&1
$o/boxed -c 'exec $o/boxed -c \"read l <pub/file && echo \\\$l\"' >$r/\$n.boxed-self 2>&1
$o/boxed -c 'read x <pub/fifo' &
p=\$!
sleep 1
(exec 3</proc/\$p/mem && echo opened) >$r/\$n.mem 2>&1
echo >pub/fifo
wait \$p
mv $o/boxed $o/boxed.moved >$r/\$n.mv-program 2>&1
mv moved moved.bak >$r/\$n.mv 2>&1
ln linked linked.ln >$r/\$n.ln 2>&1
$o/escape set-exe /usr/bin/cat >$r/\$n.set-exe 2>&1
true"
printf '%s\n' "$script" >"$o/run.sh"
for u in twin armored; do
  unit "armor-from-$u.service" "[Service]
Type=oneshot
ExecStart=/bin/sh $o/run.sh %N"
done
dropin armor-from-armored.service armor.conf "[X-Armor]
ArmorPolicy=deny read $d/secret $d/moved $d/linked from=/usr/bin/cat
ArmorPolicy=allow read $d/pub/ $o/boxed /usr/ /etc/ld.so.cache from=$o/boxed"
systemctl daemon-reload
wait_rules armor-from-armored.service 2

check "status reports no from= rule as not enforced" sh -c \
  "! unitarmor status armor-from-armored.service | grep -q 'not enforced'"
check "check warns that a deny rule with from= holds for that path only" sh -c \
  "unitarmor check armor-from-armored.service 2>&1 | grep -F 'armor.conf:2' | grep -q 'a copy of the program'"

check "armor-from-twin runs" systemctl start armor-from-twin.service
# The twin renamed and linked: put the files back as they were.
mv "$d/moved.bak" "$d/moved"
mv "$o/boxed.moved" "$o/boxed"
rm -f "$d/linked.ln"
check "armor-from-armored runs" systemctl start armor-from-armored.service

out() { grep -q -- "$3" "$r/armor-from-$1.$2"; }
check "twin: cat reads the file" out twin cat secret-data
check "twin: renames the file" test ! -s "$r/armor-from-twin.mv"
check "twin: hard-links the file" test ! -s "$r/armor-from-twin.ln"
check "twin: prctl(PR_SET_MM_EXE_FILE) reaches the kernel's own check" sh -c \
  "grep -Eq 'set-exe: (ok|EBUSY)' $r/armor-from-twin.set-exe"
check "twin: the allow-listed program reads outside its list" out twin boxed-other other-data
check "twin: it runs cat through the dynamic loader" out twin boxed-ldso other-data
check "twin: it runs cat" out twin boxed-cat other-data
check "twin: a sibling opens its /proc/PID/mem" out twin mem opened
check "twin: renames the program" test ! -s "$r/armor-from-twin.mv-program"

check "deny from=/usr/bin/cat: cat is refused the file" out armored cat 'Permission denied'
check "deny from=/usr/bin/cat: a copy of cat elsewhere is another executable and reads it" \
  out armored copy secret-data
check "allow from=: the program reads what its list names" out armored boxed-pub pub-data
check "allow from=: the program is refused what its list does not name" \
  out armored boxed-other 'Permission denied'
check "allow from=: other programs of the unit are not held to that list" \
  out armored cat-other other-data
check "allow from=: the held program cannot leave through the dynamic loader" \
  out armored boxed-ldso 'Permission denied'
check "allow from=: nor by executing another program" out armored boxed-cat 'Permission denied'
check "allow from=: it may execute a program of its own pattern" out armored boxed-self pub-data
check "allow from=: a sibling cannot open its /proc/PID/mem" \
  sh -c "! grep -q opened $r/armor-from-armored.mem"
check "allow from=: the unit cannot rename the program out of its pattern" \
  out armored mv-program 'Permission denied'
check "the program was not renamed" test -e "$o/boxed"
check "a rename by another program does not take the file out of a from= rule" \
  out armored mv 'Permission denied'
check "a hard link by another program does not either" out armored ln 'Permission denied'
check "prctl(PR_SET_MM_EXE_FILE) is refused: the unit cannot choose its from= rules" \
  out armored set-exe 'set-exe: EPERM'
check "the file was not renamed" test -e "$d/moved"

# The journal names the program, the rule with its from= and where it is written.
jq_has() { eventually sh -c "journalctl -u armor-from-armored.service -o cat | grep -F -- \"\$0\" | grep -qF -- \"\$1\"" "$1" "$2"; }
check "journal: cat's denial names cat and the from= rule" jq_has \
  "Denied read of $d/secret by /usr/bin/cat" "from=/usr/bin/cat\" from /etc/systemd/system/armor-from-armored.service.d/armor.conf:2"
check "journal: the allow-listed program's denial names it" jq_has \
  "Denied read of $d/other by $o/boxed" "armor.conf:3"
check "journal: the held program's refused exec names the loader and why" jq_has \
  "Denied exec of $ldso by $o/boxed" "held to from= allow-lists"
check "journal: the refused executable change" jq_has \
  "naming another file the process's executable" "escape"

# Capabilities, socket families and ports: the same, by their tables (issue 12's other
# classes). psql is a copy of netprobe with a connect allow-list of its own; chown is refused
# CAP_CHOWN, a copy of chown is not.
cp ./netprobe "$o/netprobe"
cp ./netprobe "$o/psql"
cp ./netprobe "$o/v6only"
cp /usr/bin/chown "$o/chown"
echo a >"$d/capfile"
systemd-run --unit armor-from-listener.service "$o/netprobe" serve \
  127.0.0.1 2727 127.0.0.1 2728 >/dev/null
script="n=\$1
chown nobody $d/capfile >$r/\$n.chown 2>&1
chown root $d/capfile
$o/chown nobody $d/capfile >$r/\$n.chown-copy 2>&1
chown root $d/capfile
$o/psql connect tcp 127.0.0.1 2727 >$r/\$n.psql-2727 2>&1
$o/psql connect tcp 127.0.0.1 2728 >$r/\$n.psql-2728 2>&1
$o/netprobe connect tcp 127.0.0.1 2728 >$r/\$n.probe-2728 2>&1
$o/netprobe socket 17 3 >$r/\$n.probe-packet 2>&1
$o/psql socket 17 3 >$r/\$n.psql-packet 2>&1
$o/v6only mapped 127.0.0.1 2727 >$r/\$n.v6only-mapped 2>&1
$o/psql bind tcp 127.0.0.1 2729 >$r/\$n.psql-bind 2>&1
$o/netprobe bind tcp 127.0.0.1 2729 >$r/\$n.probe-bind 2>&1
true"
printf '%s\n' "$script" >"$o/run-net.sh"
for u in net-twin net; do
  unit "armor-from-$u.service" "[Service]
Type=oneshot
ExecStart=/bin/sh $o/run-net.sh %N"
done
dropin armor-from-net.service armor.conf "[X-Armor]
ArmorPolicy=deny cap chown from=/usr/bin/chown
ArmorPolicy=allow connect tcp:127.0.0.1:2727 from=$o/psql
ArmorPolicy=deny net packet from=$o/netprobe
ArmorPolicy=allow net inet6 unix from=$o/v6only
ArmorPolicy=deny bind tcp:2729 from=$o/psql"
systemctl daemon-reload
wait_rules armor-from-net.service 5
check "listener is up" eventually sh -c "$o/netprobe connect tcp 127.0.0.1 2728 | grep -qx ok"
for u in net-twin net; do
  check "armor-from-$u runs" systemctl start "armor-from-$u.service"
done
check "twin: chown changes the owner" test ! -s "$r/armor-from-net-twin.chown"
check "twin: the connect-listed program reaches another port" out net-twin psql-2728 '^ok'
check "twin: netprobe makes a packet socket" out net-twin probe-packet '^ok'
check "deny cap from=/usr/bin/chown: chown is refused CAP_CHOWN" \
  out net chown 'Operation not permitted'
check "deny cap from=: a copy of chown changes the owner" test ! -s "$r/armor-from-net.chown-copy"
check "allow connect from=: the program reaches its listed port" out net psql-2727 '^ok'
check "allow connect from=: the program is refused another port" out net psql-2728 EACCES
check "allow connect from=: other programs are not held to that list" out net probe-2728 '^ok'
check "deny net from=: netprobe is refused a packet socket" out net probe-packet EACCES
check "deny net from=: another program makes one" out net psql-packet '^ok'
check "twin: IPv4 through an IPv6 socket" out net-twin v6only-mapped '^ok'
check "allow net inet6 from=: IPv4 through an IPv6 socket is IPv4, refused to that program" \
  out net v6only-mapped EACCES
check "twin: psql binds port 2729" out net-twin psql-bind '^ok'
check "deny bind from=psql: psql is refused the port" out net psql-bind EACCES
check "deny bind from=psql: another program binds it" out net probe-bind '^ok'
jn_has() { eventually sh -c "journalctl -u armor-from-net.service -o cat | grep -F -- \"\$0\" | grep -qF -- \"\$1\"" "$1" "$2"; }
check "journal: the refused capability names chown and the rule" jn_has \
  "Denied use of CAP_CHOWN by /usr/bin/chown" "from=/usr/bin/chown\" from"
check "journal: the refused port names the program" jn_has \
  "Denied connect to tcp 127.0.0.1:2728 by $o/psql" "armor.conf:3"
check "journal: the refused socket names netprobe" jn_has \
  "by $o/netprobe" "from=$o/netprobe\" from"
systemctl stop armor-from-listener.service
finish
