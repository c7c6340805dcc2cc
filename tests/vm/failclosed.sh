#!/bin/bash
# Never silently unarmored: escaped cgroup names, broken allow rules after a daemon restart, a
# FIFO among the drop-ins, slice precedence, decoy floods, attribution of delegated
# sub-cgroups, units loaded without a daemon-reload (by name, by a timer, by a socket),
# template instances with a Slice= of their own, cgroup paths longer than the kernel's key, a
# template and its own slice, drop-ins too large to read. Each armored unit has an unarmored
# twin where that shows the operation works without armor. Run in the guest by tests/vm/run
# (through suite.sh).
. ./lib.sh
DENIED_ID=63870318b8114d0f9b311f80e77ce97a
SUPPRESSED_ID=f7268ce9a591428d92a084ca78847c90

lib=/usr/local/lib/fc
mkdir -p /srv/fc-flood $lib /run/armortest
echo fc-secret-content >/srv/fc-secret
for d in 1 2 3 4 5; do echo decoy >/srv/fc-flood/decoy$d; done
echo target >/srv/fc-flood/target
rm -f /srv/fc-written

# jgrep UNIT ERE: the unit's journal (message text only) has a line matching ERE.
# Waits up to 20 s: journald stores a unit's output a moment after the unit has stopped.
jgrep() { eventually bash -c 'unit_lines "$1" | grep -Eq -- "$2"' jgrep "$1" "$2"; }
# eacces UNIT: cat in UNIT was refused /srv/fc-secret.
eacces() { jgrep "$1" '(^|/)cat: /srv/fc-secret: Permission denied$'; }
# eacces_n UNIT N: it was, N times: each of the daemon's records of a cat denied in UNIT's
# journal, and that cat's own message, found by its pid (journald may not tie a line to its
# unit when the process exited before the line was read: seen on Debian 13).
eacces_n() {
  local p n=0
  for p in $(journalctl -u "$1" -o cat |
    sed -n 's|^Denied read of /srv/fc-secret by /usr/bin/cat (pid \([0-9]*\)).*|\1|p'); do
    journalctl _PID="$p" -o cat | grep -Eq '(^|/)cat: /srv/fc-secret: Permission denied$' &&
      n=$((n + 1))
  done
  test "$n" = "$2"
}
# denied UNIT: the daemon's record of the denial of /srv/fc-secret is in UNIT's journal.
denied() { jgrep "$1" '^Denied read of /srv/fc-secret by '; }
# read_ok UNIT: cat in UNIT printed the file.
read_ok() { jgrep "$1" '^fc-secret-content$'; }

oneshot_cat='[Unit]
StartLimitIntervalSec=0
[Service]
Type=oneshot
ExecStart=/bin/cat /srv/fc-secret'
deny_secret='[X-Armor]
ArmorPolicy=deny read /srv/fc-secret'

# --- every unit and drop-in, then one daemon-reload -----------------------------------------
unit fc-twin.service "$oneshot_cat"

# 1. io.service lives in the cgroup _io.service.
unit io.service '[Unit]
StartLimitIntervalSec=0
[Service]
Type=oneshot
ExecStart=/bin/cat /srv/fc-secret
ExecStopPost=/bin/cat /proc/self/cgroup'
dropin io.service armor.conf "$deny_secret"
# 2. A unit whose drop-in breaks while the daemon runs keeps its last good policy across a
#    daemon restart (kept on disk); fc-kept-new.service, armored for the first time with the
#    same broken rule, has none to keep.
unit fc-kept.service "$oneshot_cat"
unit fc-kept-new.service "$oneshot_cat"
dropin fc-kept.service armor.conf "$deny_secret"
unit cpu.service '[Unit]
StartLimitIntervalSec=0
[Service]
Type=oneshot
ExecStart=/bin/cat /proc/self/cgroup /srv/fc-secret'

# 2. A read allow-list with broken allow rules: line 3 is the only allow rule of the write
#    class, line 4 one more of the read class.
cat >$lib/broken.sh <<'EOF'
if head -c0 /etc/hostname; then echo fc-listed:read; else echo fc-listed:denied; fi
if head -c0 /srv/fc-secret; then echo fc-other:read; else echo fc-other:denied; fi
if (: >/srv/fc-written) 2>&1; then echo fc-write:done; else echo fc-write:denied; fi
EOF
broken_unit='[Unit]
StartLimitIntervalSec=0
[Service]
Type=oneshot
ExecStart=/bin/bash /usr/local/lib/fc/broken.sh'
unit fc-broken.service "$broken_unit"
unit fc-broken-twin.service "$broken_unit"
dropin fc-broken.service armor.conf '[X-Armor]
ArmorPolicy=allow read /usr/ /etc/ /proc/ /dev/ /sys/ /run/
ArmorPolicy=allow write /srv/fc-out/a**b
ArmorPolicy=allow read relative/path'

# 3. The unit that gets a FIFO among its drop-ins.
unit fc-fifo.service "$oneshot_cat"
dropin fc-fifo.service armor.conf "$deny_secret"

# 4. Slice precedence: members cannot drop or soften their slice's rules.
unit fc.slice '[Slice]'
dropin fc.slice armor.conf "$deny_secret"
in_slice() { printf '[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=oneshot\nSlice=%s\nExecStart=/bin/cat /srv/fc-secret\n' "$1"; }
unit fc-member.service "$(in_slice fc.slice)"
dropin fc-member.service armor.conf '[X-Armor]
ArmorPolicy=
ArmorMode=audit'
unit fc-member-off.service "$(in_slice fc.slice)"
dropin fc-member-off.service armor.conf '[X-Armor]
ArmorMode=off'
unit fcaudit.slice '[Slice]'
dropin fcaudit.slice armor.conf '[X-Armor]
ArmorMode=audit
ArmorPolicy=deny read /srv/fc-secret'
unit fc-aud-own.service "$(in_slice fcaudit.slice)"
dropin fc-aud-own.service armor.conf '[X-Armor]
ArmorPolicy=deny read /srv/fc-flood/decoy1'
unit fc-aud-plain.service "$(in_slice fcaudit.slice)"

# 5. Decoys: 100 denials of five decoys, then one of the target, all by one rule.
cat >$lib/flood.sh <<'EOF'
for d in 1 2 3 4 5; do
  for i in $(seq 1 20); do : </srv/fc-flood/decoy$d; done
done 2>/dev/null
# cat's complaint goes to a file as well as to the journal: journald files a stream's line
# under the writer's unit by reading its cgroup, and under load it can read the line after the
# writer is gone and file it under no unit.
cat /srv/fc-flood/target 2>/run/armortest/fc-flood.err
rc=$?
cat /run/armortest/fc-flood.err >&2
sleep 1
exit $rc
EOF
unit fc-flood.service '[Unit]
StartLimitIntervalSec=0
[Service]
Type=oneshot
ExecStart=/bin/bash /usr/local/lib/fc/flood.sh'
dropin fc-flood.service armor.conf '[X-Armor]
ArmorPolicy=deny read /srv/fc-flood/'

# 6. Delegated units that move into a sub-cgroup named like another unit.
cat >$lib/deleg.sh <<'EOF'
cg=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup)
mkdir "$cg/$1" && echo $$ >"$cg/$1/cgroup.procs" || exit 2
echo "fc-cgroup:$(sed -n 's/^0:://p' /proc/self/cgroup)"
exec cat /srv/fc-secret
EOF
deleg_unit() { printf '[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=oneshot\nDelegate=yes\n%s\nExecStart=/bin/bash /usr/local/lib/fc/deleg.sh %s\n' "$1" "$2"; }
unit fc-deleg.service "$(deleg_unit Slice=fc.slice ssh.service)"
unit fc-deleg-own.service "$(deleg_unit '' fake.service)"
dropin fc-deleg-own.service armor.conf "$deny_secret"
unit fc-deleg-twin.service "$(deleg_unit '' ssh.service)"

# 7. Units on disk at this reload that nothing loads before they start: by name, by a timer,
#    by a socket. The first process of each is cat of the denied file.
unit fc-late.service "$oneshot_cat"
dropin fc-late.service armor.conf "$deny_secret"
timer='[Timer]
OnActiveSec=1
AccuracySec=1ms'
unit fc-tm.timer "$timer"
unit fc-tm.service "$oneshot_cat"
dropin fc-tm.service armor.conf "$deny_secret"
unit fc-tm-twin.timer "$timer"
unit fc-tm-twin.service "$oneshot_cat"
cat >$lib/sock.pl <<'EOF'
my $r = open(my $f, '<', '/srv/fc-secret') ? 'read' : "denied ($!)";
open(my $l, '+<&=', 3) or die "fd 3: $!";
accept(my $c, $l) or die "accept: $!";
print "fc-sock:$r\n";
syswrite($c, "fc-sock:$r\n");
EOF
for s in fc-sk fc-sk-twin; do
  unit $s.socket "[Socket]
ListenStream=/run/$s.sock"
  unit $s.service '[Service]
ExecStartPre=-/bin/cat /srv/fc-secret
ExecStart=/usr/bin/perl /usr/local/lib/fc/sock.pl'
done
dropin fc-sk.service armor.conf "$deny_secret"
# shellcheck disable=SC2016 # perl's variables, not the shell's
ask() {
  timeout 30 perl -MSocket -e 'socket(my $s, PF_UNIX, SOCK_STREAM, 0) or die "socket: $!";
    connect($s, pack_sockaddr_un($ARGV[0])) or die "connect: $!"; print scalar <$s>' "$1"
}

# 7. Pulled in as a dependency (Wants=) of a unit started by name.
for t in "" -twin; do
  unit fc-dep$t.service "[Unit]
Wants=fc-dep-b$t.service
After=fc-dep-b$t.service
[Service]
Type=oneshot
ExecStart=/bin/true"
  unit fc-dep-b$t.service "$oneshot_cat"
done
dropin fc-dep-b.service armor.conf "$deny_secret"

# 8. Templates whose instances name their own slice.
tmpl() { printf '[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=oneshot\nSlice=%s\nExecStart=/bin/cat /srv/fc-secret\nExecStartPost=/bin/cat /proc/self/cgroup\n' "$1"; }
unit fct@.service "$(tmpl 'fct-%i.slice')"
dropin fct@.service armor.conf "$deny_secret"
unit fcs@.service "$(tmpl fcs.slice)"
dropin fcs@.service armor.conf "$deny_secret"
unit fctw@.service "$(tmpl 'fctw-%i.slice')"

# 9. A unit armored before its drop-ins grow past what unitarmor reads (the section below).
unit fc-grow.service "$oneshot_cat"
dropin fc-grow.service armor.conf "$deny_secret"
# And one armored only by a drop-in many units read (a dashed prefix's), which grows past it.
unit fcx-a.service "$oneshot_cat"
dropin fcx-.service armor.conf "$deny_secret"

check "daemon-reload with all the units" timeout 120 systemctl daemon-reload

# --- 7. started without a daemon-reload of their own ------------------------------------------
check_fails "by name: fc-late.service, never loaded before, is denied" systemctl start fc-late.service
check "by name: cat got EACCES" eacces fc-late.service
check "by name: the denial is in journalctl -u fc-late.service" denied fc-late.service
check "the unarmored twin reads the file" systemctl start fc-twin.service
check "the twin printed its content" read_ok fc-twin.service
systemctl start fc-tm.timer fc-tm-twin.timer
check "by timer: its first process, cat, got EACCES" eacces fc-tm.service
check "by timer: the denial is in journalctl -u fc-tm.service" denied fc-tm.service
check "by timer: the unarmored twin read the file" read_ok fc-tm-twin.service
systemctl start fc-sk.socket fc-sk-twin.socket
sk=$(ask /run/fc-sk.sock)
sk_twin=$(ask /run/fc-sk-twin.sock)
echo "# socket answers: armored '$sk', twin '$sk_twin'"
check "by socket: fc-sk.service's first process, cat, got EACCES" eacces fc-sk.service
check "by socket: its open in perl was denied" test "$sk" = "fc-sock:denied (Permission denied)"
check "by socket: the denial is in journalctl -u fc-sk.service" denied fc-sk.service
check "by socket: the unarmored twin read the file" test "$sk_twin" = fc-sock:read
systemctl start fc-dep.service fc-dep-twin.service
check "as a dependency: fc-dep-b.service's cat got EACCES" eacces fc-dep-b.service
check "as a dependency: the denial is in journalctl -u fc-dep-b.service" denied fc-dep-b.service
check "as a dependency: the unarmored twin read the file" read_ok fc-dep-b-twin.service
check "by socket: the twin's cat printed it" read_ok fc-sk-twin.service

# --- 1. io.service lives in _io.service ------------------------------------------------------
check "io.service is armored" wait_rules io.service 1
check_fails "io.service: the read is denied" systemctl start io.service
check "io.service: cat got EACCES" eacces io.service
check "io.service: the denial is in journalctl -u io.service" denied io.service
check "io.service: its cgroup is the escaped _io.service" jgrep io.service '^0::/system.slice/_io.service$'
check "the unarmored cpu.service reads the file" systemctl start cpu.service
check "cpu.service: its cgroup is the escaped _cpu.service" jgrep cpu.service '^0::/system.slice/_cpu.service$'
check "cpu.service: it printed the file" read_ok cpu.service

# --- 4. slice precedence -------------------------------------------------------------------
check "fc.slice is armored" wait_rules fc.slice 1
check_fails "an empty ArmorPolicy= and ArmorMode=audit in a member: still denied" systemctl start fc-member.service
check "the member's cat got EACCES" eacces fc-member.service
check "the member's record is a denial, not a would-deny" denied fc-member.service
check_fails "ArmorMode=off in a member: still denied" systemctl start fc-member-off.service
check "the ArmorMode=off member's cat got EACCES" eacces fc-member-off.service
check_fails "a member of an audit slice with rules of its own enforces the slice's rule" systemctl start fc-aud-own.service
check "its cat got EACCES" eacces fc-aud-own.service
check "a member of the audit slice without rules reads the file" systemctl start fc-aud-plain.service
check "it printed the file" read_ok fc-aud-plain.service
check "and the read is logged as would-deny" jgrep fc-aud-plain.service '^Would deny read of /srv/fc-secret by '

# --- 5. decoys ---------------------------------------------------------------------------
check "fc-flood.service is armored" wait_rules fc-flood.service 1
check_fails "fc-flood.service: the target is denied" systemctl start fc-flood.service
check "fc-flood.service: cat got EACCES on the target" grep -Eq '(^|/)cat: /srv/fc-flood/target: Permission denied$' /run/armortest/fc-flood.err
check "after 100 decoy denials, the target's denial is in journalctl -u fc-flood.service" \
  jgrep fc-flood.service '^Denied read of /srv/fc-flood/target by /usr/bin/cat '
counted_101() { unitarmor status --json fc-flood.service | grep -q '"denied": 101,'; }
check "the daemon counted 101 denials" eventually counted_101
flood_count() {
  written=$(journalctl UNITARMOR_UNIT=fc-flood.service MESSAGE_ID=$DENIED_ID -o cat | wc -l)
  suppressed=$(journalctl UNITARMOR_UNIT=fc-flood.service MESSAGE_ID=$SUPPRESSED_ID -o verbose |
    sed -n 's/^ *UNITARMOR_SUPPRESSED=//p' | awk '{s += $1} END {print s + 0}')
  [ "$((written + suppressed))" = 101 ] && [ "$suppressed" -gt 0 ]
}
check "written + suppressed records of the flood = 101, after the window closes" eventually flood_count
echo "# flood: $written records written, $suppressed suppressed"

# --- 6. attribution of delegated sub-cgroups -----------------------------------------------
check_fails "a Delegate=yes unit in fc.slice, moved into its sub-cgroup ssh.service, is denied" systemctl start fc-deleg.service
check "it ran in the sub-cgroup" jgrep fc-deleg.service '^fc-cgroup:/fc.slice/fc-deleg.service/ssh.service$'
check "its cat got EACCES" eacces fc-deleg.service
check "the record is in journalctl -u fc-deleg.service" denied fc-deleg.service
check "and not in journalctl -u ssh.service" sh -c '! journalctl -u ssh.service -o cat | grep -q /srv/fc-secret'
check "nor attributed to fc.slice, whose rule decided" sh -c \
  '! journalctl MESSAGE_ID='$DENIED_ID' OBJECT_SYSTEMD_UNIT=fc.slice -o cat | grep -q /srv/fc-secret'
check "UNITARMOR_UNIT of the record is fc-deleg.service" sh -c \
  'journalctl MESSAGE_ID='$DENIED_ID' UNITARMOR_UNIT=fc-deleg.service -o cat | grep -q "^Denied read of /srv/fc-secret"'
check_fails "an armored Delegate=yes unit, moved into its sub-cgroup fake.service, is denied" systemctl start fc-deleg-own.service
check "it ran in the sub-cgroup" jgrep fc-deleg-own.service '^fc-cgroup:/system.slice/fc-deleg-own.service/fake.service$'
check "the record is in journalctl -u fc-deleg-own.service" denied fc-deleg-own.service
check "and not in journalctl -u fake.service" sh -c '! journalctl -u fake.service -o cat | grep -q /srv/fc-secret'
check "the unarmored delegated twin reads the file from its sub-cgroup" systemctl start fc-deleg-twin.service
check "the twin printed it" read_ok fc-deleg-twin.service

# --- 8. template instances with a Slice= of their own --------------------------------------
check "the template fct@.service is armored" wait_rules fct@.service 1
check_fails "fct@a.service (Slice=fct-%i.slice): the first start is denied" systemctl start fct@a.service
check "fct@a.service: cat got EACCES" eacces fct@a.service
check_fails "fct@a.service: a second start is denied" systemctl start fct@a.service
check_fails "fcs@a.service (Slice=fcs.slice): the first start is denied" systemctl start fcs@a.service
check "fcs@a.service: cat got EACCES" eacces fcs@a.service
check "fcs@a.service: the denial record is in its own journal (not the template's name)" eventually sh -c \
  "journalctl -u fcs@a.service -o cat | grep -q 'Denied read of /srv/fc-secret'"
# Only cgroups PID 1 makes are bound by a template's name: a cgroup anyone else names like an
# instance is not (else a user could fill the kernel's table with such bindings).
mkdir -p /sys/fs/cgroup/fc-notpid1/fct@zz.service
check "a cgroup named fct@zz.service made by another process than PID 1 is not armored" sh -c \
  'echo $$ >/sys/fs/cgroup/fc-notpid1/fct@zz.service/cgroup.procs && cat /srv/fc-secret >/dev/null'
rmdir /sys/fs/cgroup/fc-notpid1/fct@zz.service /sys/fs/cgroup/fc-notpid1
check "the unarmored twin instance fctw@a.service reads the file" systemctl start fctw@a.service
check "the twin instance printed it" read_ok fctw@a.service
check "the twin instance's cgroup is in its own slice" jgrep fctw@a.service '^0::/fctw.slice/fctw-a.slice/fctw@a.service$'

# --- 3. a FIFO among the drop-ins ----------------------------------------------------------
# systemd 252 itself opens every *.conf of a drop-in folder when it loads the unit, a FIFO
# too, and PID 1 then waits for a writer forever: nothing here loads fc-fifo.service (no start,
# no status) while the FIFO is there. It has never been loaded: this is about the daemon.
mkfifo /etc/systemd/system/fc-fifo.service.d/zz.conf
check "with a FIFO zz.conf among the drop-ins, daemon-reload completes" timeout 60 systemctl daemon-reload
check "PID 1 answers" timeout 20 systemctl show -P Version
check "unitarmor status answers" timeout 20 unitarmor status
check_fails "io.service is still denied" timeout 60 systemctl start io.service
check "io.service: cat got EACCES again" eventually eacces_n io.service 2
check "the FIFO is reported against fc-fifo.service, by name" \
  jgrep fc-fifo.service 'fc-fifo.service.d/zz.conf.*(FIFO|not a regular file)'
echo "# reported with priority $(journalctl -u fc-fifo.service -o json -n 1 | sed -n 's/.*"PRIORITY":"\([0-9]\)".*/\1/p'):" \
  "$(journalctl -u fc-fifo.service -o cat -n 1)"

check "fc-kept.service is armored" wait_rules fc-kept.service 1
check_fails "fc-kept.service: the read is denied" timeout 60 systemctl start fc-kept.service
check "fc-kept.service: its policy is kept on disk" grep -qx 'ArmorPolicy=deny read /srv/fc-secret' \
  /var/lib/unitarmor/good/fc-kept.service
printf '[X-Armor]\nArmorPolicy=deny raed /srv/fc-secret\n' >/etc/systemd/system/fc-kept.service.d/armor.conf
mkdir -p /etc/systemd/system/fc-kept-new.service.d
cp /etc/systemd/system/fc-kept.service.d/armor.conf /etc/systemd/system/fc-kept-new.service.d/
check "daemon-reload with fc-kept.service's rule broken" timeout 60 systemctl daemon-reload

# --- 2 and 3. a daemon restart --------------------------------------------------------------
since=$(date "+%Y-%m-%d %H:%M:%S")
sleep 1
check "systemctl restart unitarmor completes with the FIFO there" timeout 90 systemctl restart unitarmor
check "PID 1 answers after the restart" timeout 20 systemctl show -P Version
# The daemon reports ready before it takes its bus name: status is polled.
check "unitarmor status answers after the restart" eventually timeout 20 unitarmor status
check_fails "after the restart: io.service is still denied" timeout 60 systemctl start io.service
check "io.service: cat got EACCES a third time" eventually eacces_n io.service 3
echo "# unitarmor status fc-fifo.service after the restart:"
timeout 20 unitarmor status fc-fifo.service | sed 's/^/#   /'
rm /etc/systemd/system/fc-fifo.service.d/zz.conf
check_fails "with the FIFO gone: fc-fifo.service is denied" timeout 60 systemctl start fc-fifo.service
check "fc-fifo.service: cat got EACCES" eacces fc-fifo.service

check "broken allow rules: fc-broken.service is armored with the rule that parsed" wait_rules fc-broken.service 1
timeout 60 systemctl start fc-broken.service fc-broken-twin.service
check "broken allow rules: a listed file is read" jgrep fc-broken.service '^fc-listed:read$'
check "broken allow rules: a read outside the allow-list is denied" jgrep fc-broken.service '^fc-other:denied$'
check "broken allow rules: a write is denied (a broken allow write rule keeps write an allow-list)" \
  jgrep fc-broken.service '^fc-write:denied$'
check "broken allow rules: the twin reads outside the list" jgrep fc-broken-twin.service '^fc-other:read$'
check "broken allow rules: the twin writes" jgrep fc-broken-twin.service '^fc-write:done$'
timeout 20 unitarmor status fc-broken.service >/tmp/fc-broken.status
sed 's/^/#   /' /tmp/fc-broken.status
check "unitarmor status names the file and line 3" grep -Fq "fc-broken.service.d/armor.conf:3: error" /tmp/fc-broken.status
check "unitarmor status names the file and line 4" grep -Fq "fc-broken.service.d/armor.conf:4: error" /tmp/fc-broken.status
check "journalctl -u fc-broken.service has the error after the restart" sh -c \
  "journalctl -u fc-broken.service --since '$since' -o cat | grep -Fq 'fc-broken.service.d/armor.conf:3: error'"

check_fails "after the restart: fc-kept.service (broken rule) is still denied" \
  timeout 60 systemctl start fc-kept.service
check "fc-kept.service: the read after the restart is denied, in its journal" eventually sh -c \
  "journalctl -u fc-kept.service --since '$since' -o cat | grep -q '^Denied read of /srv/fc-secret by '"
check "fc-kept.service: its journal says the kept policy is in force" eventually sh -c \
  "journalctl -u fc-kept.service --since '$since' -o cat | grep -q 'keeping the last good policy (1 rules, kept in /var/lib/unitarmor/good/fc-kept.service)'"
check "fc-kept.service: unitarmor status names the broken line" eventually sh -c \
  "unitarmor status fc-kept.service | grep -Fq 'fc-kept.service.d/armor.conf:2: error'"
check "[contrast] fc-kept-new.service, never armored by a good policy, reads" \
  timeout 60 systemctl start fc-kept-new.service
check "[contrast] fc-kept-new.service printed the file" read_ok fc-kept-new.service

# --- 9. drop-ins unitarmor cannot read -------------------------------------------------------
# A drop-in larger than unitarmor reads (4 MiB; systemd reads it whole). A unit armored for
# the first time by such a file is refused everything, with the file named in its journal
# (it was passed over as having no [X-Armor] before); an armored unit to which such a file is
# added keeps its last good policy, even when the file says ArmorMode=off.
padding() {
  awk 'BEGIN { for (i = 0; i < 60000; i++) printf "# padding %06d ..........................................................\n", i }'
}
for u in fc-unread fc-unread-twin; do unit $u.service "$oneshot_cat"; done
mkdir -p /etc/systemd/system/fc-unread.service.d /etc/systemd/system/fc-unread-twin.service.d
# Written whole, then renamed into place: a pass that read it half written would arm the unit
# with a good policy first, which it would then keep.
{ printf '%s\n' "$deny_secret"; padding; } >/etc/systemd/system/.fc-unread-armor.conf
mv /etc/systemd/system/.fc-unread-armor.conf /etc/systemd/system/fc-unread.service.d/armor.conf
printf '[Service]\nEnvironment=FC=1\n' >/etc/systemd/system/fc-unread-twin.service.d/env.conf
{ printf '[X-Armor]\nArmorMode=off\n'; padding; } >/etc/systemd/system/fc-grow.service.d/zz-huge.conf
{ printf '%s\n' "$deny_secret"; padding; } >/etc/systemd/system/.fcx-armor.conf
mv /etc/systemd/system/.fcx-armor.conf /etc/systemd/system/fcx-.service.d/armor.conf
echo "# drop-in sizes: $(stat -c '%n %s' /etc/systemd/system/fc-unread.service.d/armor.conf)"
check "daemon-reload with drop-ins larger than unitarmor reads" timeout 120 systemctl daemon-reload
check "systemd read the large drop-in: fc-grow.service's DropInPaths has it" sh -c \
  "systemctl show -P DropInPaths fc-grow.service | grep -q zz-huge.conf"
check_fails "a unit armored by a drop-in unitarmor cannot read fails to start" \
  timeout 60 systemctl start fc-unread.service
check "its exec denial is in journalctl -u fc-unread.service" eventually sh -c \
  "journalctl -u fc-unread.service -o cat | grep -q 'Denied exec of /usr/bin/cat'"
check "its journal names the file and why it was not read" \
  jgrep fc-unread.service 'fc-unread.service.d/armor.conf:1: error: file is larger than 4194304 bytes'
check "its journal says it is refused everything until its files are fixed" \
  jgrep fc-unread.service 'fc-unread.service: .*could not be read; armored with a policy that refuses everything'
check "unitarmor status lists the error" eventually sh -c \
  "unitarmor status fc-unread.service | grep -q 'armor.conf:1: error: file is larger'"
check "the twin (the same unit with a small drop-in) reads the file" systemctl start fc-unread-twin.service
check "the twin printed it" read_ok fc-unread-twin.service
check_fails "fc-grow.service keeps its last good policy: still denied" timeout 60 systemctl start fc-grow.service
check "fc-grow.service: cat got EACCES" eacces fc-grow.service
check "fc-grow.service's journal names the file it cannot read" \
  jgrep fc-grow.service 'fc-grow.service.d/zz-huge.conf:1: error: file is larger than'
check "fc-grow.service's journal says the last good policy is kept" \
  jgrep fc-grow.service 'keeping the last good policy'
check_fails "fcx-a.service, armored only by a shared drop-in grown past the limit, is still denied" \
  timeout 60 systemctl start fcx-a.service
check "fcx-a.service: cat got EACCES" eventually eacces_n fcx-a.service 1
check "fcx-a.service's journal says the last good policy is kept" \
  jgrep fcx-a.service 'fcx-.service.d/armor.conf could not be read; keeping the last good policy'
rm -f /etc/systemd/system/fc-unread.service.d/armor.conf /etc/systemd/system/fc-grow.service.d/zz-huge.conf
rm -rf /etc/systemd/system/fcx-*

# --- clean-up -----------------------------------------------------------------------------
timeout 60 systemctl stop fc-tm.timer fc-tm-twin.timer fc-sk.socket fc-sk-twin.socket 2>/dev/null
# --- a policy too big for the kernel tables: refused at once, the unit fails closed ----------
# 40,000 path patterns (more than a policy may have, in number and in bytes): the daemon
# refuses the policy without compiling it, binds the unit to a policy that refuses everything
# (its start fails at exec), names the unit in the error, and armors the other units as before.
# fc-huge-kept is armored with a good policy first: the same lines added to it leave it under
# that policy, with the error naming the limit in its own journal.
for u in fc-huge fc-huge-twin; do
  unit $u.service '[Service]
Type=oneshot
ExecStart=/bin/cat /srv/fc-secret'
done
unit fc-huge-kept.service "$oneshot_cat"
dropin fc-huge-kept.service armor.conf "$deny_secret"
check "daemon-reload with fc-huge-kept's good policy" timeout 120 systemctl daemon-reload
check "fc-huge-kept.service is armored with its one rule" wait_rules fc-huge-kept.service 1
mkdir -p /etc/systemd/system/fc-huge.service.d
{
  echo '[X-Armor]'
  seq 1 40000 | sed 's|.*|ArmorPolicy=deny read /srv/fc-huge/file-&|'
} >/etc/systemd/system/fc-huge.service.d/armor.conf
cp /etc/systemd/system/fc-huge.service.d/armor.conf /etc/systemd/system/fc-huge-kept.service.d/zz-huge.conf
check "daemon-reload with the too-big policy" timeout 120 systemctl daemon-reload
check "fc-huge-kept.service's journal names the limit and keeps the last good policy" \
  jgrep fc-huge-kept.service 'fc-huge-kept.service: .*path patterns, more than the [0-9]* one policy may have.*keeping the last good policy \(1 rules\)'
check_fails "fc-huge-kept.service is still denied by it" timeout 60 systemctl start fc-huge-kept.service
check "fc-huge-kept.service: the daemon's record of the denial is in its journal" denied fc-huge-kept.service
check "the daemon restarts (READY=1) with it among its units" timeout 90 systemctl restart unitarmor.service
check "after the restart, io.service is armored" wait_rules io.service 1
check "unitarmor status lists fc-huge.service with the error" eventually sh -c \
  "unitarmor status fc-huge.service | grep -q 'path patterns, more than the [0-9]* one policy may have'"
check "the daemon's journal names the unit" sh -c \
  "journalctl -u unitarmor.service -o cat | grep -q 'fc-huge.service: .*refuses everything'"
check "fc-huge.service fails to start: its exec is refused" sh -c '! systemctl start fc-huge.service'
check "its exec denial is in journalctl -u fc-huge.service" eventually sh -c \
  "journalctl -u fc-huge.service -o cat | grep -q 'Denied exec of /usr/bin/cat'"
check "the unarmored twin runs and reads" systemctl start fc-huge-twin.service
check "the twin printed the file" read_ok fc-huge-twin.service
check "fc-huge.service's own journal names the limit" \
  jgrep fc-huge.service 'fc-huge.service: .*path patterns, more than the [0-9]* one policy may have.*refuses everything'
check_fails "after the daemon's restart, fc-huge-kept.service is still denied (its last good policy)" \
  timeout 60 systemctl start fc-huge-kept.service

# --- 11. cgroup paths longer than the kernel's key -----------------------------------------
# Nested slices make paths of any length; this one is over 300 bytes, more than the 255 a key
# holds. PID 1's cgroups there are bound by their last component: a unit armored by its name,
# and an instance armored by its own drop-in (units of no other kind have names for keys).
# One process prints the cgroup and reads the file: journald once filed a line of a child of
# the main process, gone before it was read, under no unit (unit_lines looks up the main one).
long="fcl-$(printf 'a%.0s' $(seq 50))-$(printf 'b%.0s' $(seq 50))-$(printf 'c%.0s' $(seq 50)).slice"
for u in fc-long.service fc-long-twin.service fcl@.service; do
  unit $u "[Unit]
StartLimitIntervalSec=0
[Service]
Type=oneshot
Slice=$long
ExecStart=/bin/cat /proc/self/cgroup /srv/fc-secret"
done
dropin fc-long.service armor.conf "$deny_secret"
dropin fcl@x.service armor.conf "$deny_secret"
check "daemon-reload with units in a slice nested four deep" timeout 60 systemctl daemon-reload
check "fc-long.service is armored" wait_rules fc-long.service 1
check "fcl@x.service is armored" wait_rules fcl@x.service 1
check_fails "fc-long.service fails (its cat is denied)" systemctl start fc-long.service
check "fc-long.service: its cgroup path is longer than 255 bytes" eventually sh -c \
  "journalctl -u fc-long.service -o cat | grep -E '^0::/.{255,}/fc-long.service\$'"
check "fc-long.service: cat got EACCES" eacces fc-long.service
check "fc-long.service: the denial is in its journal" denied fc-long.service
check_fails "fcl@x.service fails (its cat is denied)" systemctl start fcl@x.service
check "fcl@x.service: cat got EACCES" eacces fcl@x.service
check "the unarmored twin in the same slice runs" systemctl start fc-long-twin.service
check "the twin printed the file" read_ok fc-long-twin.service
check "fcl@y.service, an instance with no drop-in, runs" systemctl start fcl@y.service
check "fcl@y.service printed the file (unarmored)" read_ok fcl@y.service

# --- 12. a template and its own slice expect one cgroup ------------------------------------
# fcp@.service's instances live in system-fcp.slice, which has a drop-in of its own: both
# expect /system.slice/system-fcp.slice. Disarming one must leave the other's binding of that
# cgroup in place, also once the slice's cgroup is made again.
echo fcp-template-secret >/srv/fcp-tmpl
unit fcp@.service '[Unit]
StartLimitIntervalSec=0
[Service]
Type=oneshot
ExecStart=/bin/sh -c "cat /srv/fc-secret; cat /srv/fcp-tmpl; true"'
dropin system-fcp.slice armor.conf "$deny_secret"
dropin fcp@.service armor.conf '[X-Armor]
ArmorPolicy=deny read /srv/fcp-tmpl'
# By the daemon's record of the denial: journald once filed cat's own line (a short-lived
# child's) under no unit.
tmpl_denied() { jgrep "$1" '^Denied read of /srv/fcp-tmpl by '; }
tmpl_read() { jgrep "$1" '^fcp-template-secret$'; }
# The slice's rule the same way, or by cat's own line: cat runs as a child of the unit's shell,
# and journald filed that line under no unit (and cat's pid, not the unit's main one) on
# 2026-12-06, Debian 12, beside the daemon's record in the unit's journal.
secret_refused() {
  jgrep "$1" '(^|/)cat: /srv/fc-secret: Permission denied$|^Denied read of /srv/fc-secret by '
}
check "daemon-reload with the slice's and the template's drop-ins" timeout 60 systemctl daemon-reload
check "system-fcp.slice is armored" wait_rules system-fcp.slice 1
check "fcp@.service is armored" wait_rules fcp@.service 2
check "fcp@1.service runs" systemctl start fcp@1.service
check "fcp@1.service: the slice's rule holds" secret_refused fcp@1.service
check "fcp@1.service: the template's rule holds" tmpl_denied fcp@1.service
rm -r /etc/systemd/system/fcp@.service.d
check "daemon-reload without the template's drop-in" timeout 60 systemctl daemon-reload
check "fcp@.service is no longer armored" wait_rules fcp@.service 0
check "the slice's cgroup goes" systemctl stop system-fcp.slice
check "fcp@2.service runs" systemctl start fcp@2.service
check "fcp@2.service (a new slice cgroup): the slice's rule still holds" secret_refused fcp@2.service
check "fcp@2.service: the template's file is read" tmpl_read fcp@2.service
dropin fcp@.service armor.conf '[X-Armor]
ArmorPolicy=deny read /srv/fcp-tmpl'
rm -r /etc/systemd/system/system-fcp.slice.d
check "daemon-reload with the template's drop-in, without the slice's" timeout 60 systemctl daemon-reload
check "system-fcp.slice is no longer armored" wait_rules system-fcp.slice 0
check "fcp@.service is armored again" wait_rules fcp@.service 1
check "the slice's cgroup goes again" systemctl stop system-fcp.slice
check "fcp@3.service runs" systemctl start fcp@3.service
check "fcp@3.service: the template's rule holds" tmpl_denied fcp@3.service
check "fcp@3.service: the slice's file is read (unarmored by the slice now)" read_ok fcp@3.service
rm -f /srv/fcp-tmpl

# --- 13. a running unit in an armored slice, through reloads that change its own policy ------
# Its cgroup goes from one policy of its own to the next, never through the slice's alone (or
# none): a loop reading what the slice denies never reads it. The twin's loop, unarmored,
# does.
dropin fcr.slice armor.conf "$deny_secret"
for t in "" -twin; do
  # fcrtwin.slice, not fcr-twin.slice: a dash would put it inside fcr.slice.
  unit fc-loop$t.service "[Service]
Slice=fcr${t#-}.slice
ExecStart=/bin/sh -c 'n=0; while :; do n=\$\$((n + 1)); cat /srv/fc-secret >/dev/null 2>&1 && echo fc-loop:READ; [ \$\$((n %% 50)) = 0 ] && echo fc-loop:\$\$n; done'"
done
dropin fc-loop.service armor.conf '[X-Armor]
ArmorPolicy=deny read /srv/fc-other-0'
check "daemon-reload with the looping units" timeout 60 systemctl daemon-reload
check "fc-loop.service is armored with the slice's rule and its own" wait_rules fc-loop.service 2
since=$(date "+%Y-%m-%d %H:%M:%S")
systemctl start fc-loop.service fc-loop-twin.service
# The two loops take the guest's CPU from PID 1: a reload took 69 s here on a busy host.
for i in 1 2 3; do
  dropin fc-loop.service armor.conf "[X-Armor]
ArmorPolicy=deny read /srv/fc-other-$i"
  check "daemon-reload $i of 3 with fc-loop.service's own rule changed" timeout 120 systemctl daemon-reload
done
systemctl stop fc-loop.service fc-loop-twin.service
loop_lines() { journalctl -u "$1" --since "$since" -o cat | grep -c "^fc-loop:$2"; }
echo "# fc-loop.service read the file $(loop_lines fc-loop.service READ) times, counted $(loop_lines fc-loop.service '[0-9]') rounds of 50"
check "fc-loop.service looped through the reloads" test "$(loop_lines fc-loop.service '[0-9]')" -gt 0
check "fc-loop.service never read what its slice denies" test "$(loop_lines fc-loop.service READ)" -eq 0
check "the unarmored twin's loop read it" test "$(loop_lines fc-loop-twin.service READ)" -gt 0
rm -rf /etc/systemd/system/fcr.slice.d

rm -rf /etc/systemd/system/fc[-.@a-z]* /etc/systemd/system/io.service* /etc/systemd/system/cpu.service \
  $lib /srv/fc-secret /srv/fc-flood /srv/fc-written
check "daemon-reload after the clean-up" timeout 60 systemctl daemon-reload
timeout 60 systemctl reset-failed "fc*" io.service cpu.service 2>/dev/null
finish
