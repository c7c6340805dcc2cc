#!/bin/bash
# from= (issue 12): rules that hold for the processes running one executable. A deny rule with
# from= refuses that program only (a copy of it under another path is another executable); an
# allow rule with from= makes its class an allow-list for that program only; neither a rename
# nor a hard link by another program in the unit takes a file out of a from= rule; and the unit
# cannot name another file its executable (prctl PR_SET_MM). Each next to an unarmored twin.
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
cp /usr/bin/cat "$o/boxed"   # a program held to an allow-list of its own
check "the escape helper is built (tests/all compiles tests/vm/escape.c)" test -x escape
cp escape "$o/escape"

# Each unit runs the same script: cat and the copies read, mv and ln rename and link, escape
# names cat its executable. Every outcome goes to a file of its own, named after the unit.
script="cd $d
n=\$1
cat secret >$r/\$n.cat 2>&1
$o/cat secret >$r/\$n.copy 2>&1
$o/boxed pub/file >$r/\$n.boxed-pub 2>&1
$o/boxed other >$r/\$n.boxed-other 2>&1
cat other >$r/\$n.cat-other 2>&1
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
ArmorPolicy=allow read $d/pub/ /usr/ /etc/ld.so.cache from=$o/boxed
ArmorPolicy=allow exec $o/boxed /usr/lib/ from=$o/boxed"
systemctl daemon-reload
wait_rules armor-from-armored.service 3

check "status reports no from= rule as not enforced" sh -c \
  "! unitarmor status armor-from-armored.service | grep -q 'not enforced'"
check "check warns that a deny rule with from= holds for that path only" sh -c \
  "unitarmor check armor-from-armored.service 2>&1 | grep -F 'armor.conf:2' | grep -q 'a copy of the program'"

check "armor-from-twin runs" systemctl start armor-from-twin.service
# The twin renamed and linked: put the files back as they were.
mv "$d/moved.bak" "$d/moved"
rm -f "$d/linked.ln"
check "armor-from-armored runs" systemctl start armor-from-armored.service

out() { grep -q -- "$3" "$r/armor-from-$1.$2"; }
check "twin: cat reads the file" out twin cat secret-data
check "twin: renames the file" test ! -s "$r/armor-from-twin.mv"
check "twin: hard-links the file" test ! -s "$r/armor-from-twin.ln"
check "twin: prctl(PR_SET_MM_EXE_FILE) reaches the kernel's own check" sh -c \
  "grep -Eq 'set-exe: (ok|EBUSY)' $r/armor-from-twin.set-exe"
check "twin: the allow-listed program reads outside its list" out twin boxed-other other-data

check "deny from=/usr/bin/cat: cat is refused the file" out armored cat 'Permission denied'
check "deny from=/usr/bin/cat: a copy of cat elsewhere is another executable and reads it" \
  out armored copy secret-data
check "allow from=: the program reads what its list names" out armored boxed-pub pub-data
check "allow from=: the program is refused what its list does not name" \
  out armored boxed-other 'Permission denied'
check "allow from=: other programs of the unit are not held to that list" \
  out armored cat-other other-data
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
check "journal: the refused executable change" jq_has \
  "naming another file the process's executable" "escape"
finish
