#!/bin/bash
# Learn mode (issue 13): a small real service (a shell script that reads its configuration,
# writes its state under its StateDirectory=, runs helpers and connects to a loopback port)
# runs under `unitarmor learn`; `unitarmor suggest --write` writes its drop-in; once learn
# mode ends the service still works under enforcement, and what it never did before (reading
# /etc/shadow, running /usr/bin/id, connecting to another port) is denied and logged. A signal
# to another unit, refused while it learns, is suggested by that unit's name. Its
# deny rules hold while it learns; what it learned survives a daemon restart; the dry run of
# the suggested policy breaks nothing learned, and of a too-tight edit lists what it breaks.
# The unit cannot write the records, nor get a setting into the suggestion through a name.
# With a policy in place, suggest gives a diff. `learn --for` ends by itself. An unarmored
# twin runs the same script, new things included. Run in the guest by tests/vm/run (through
# suite.sh).
. ./lib.sh

mkdir -p /etc/learn-app
printf 'name=learn-app\nlevel=3\n' >/etc/learn-app/app.conf
echo learn-secret >/etc/learn-app/secret
rm -f /etc/learn-app/extra
# What changes from run to run: its data under a versioned directory (an upgrade renames it),
# and a numbered directory per run.
rm -rf /opt/learn-app /srv/learn-app /tmp/learn-app[.-]*
mkdir -p /opt/learn-app/1.2.3
echo data >/opt/learn-app/1.2.3/data
# (Runs 1 and 2 learn; the directories of later runs appear after the suggestion: a fold names
# nothing on disk the unit was not seen using.)
for n in 1 2; do mkdir -p /srv/learn-app/runs/$n && echo $n >/srv/learn-app/runs/$n/item; done
cat >/usr/local/bin/learn-app <<'EOS'
#!/bin/bash
# ok/denied/refused for each thing the service does.
try() { local what=$1; shift; if out=$("$@" 2>&1); then echo "$what:ok"; else case $out in *"Permission denied"*|*"Operation not permitted"*) echo "$what:denied";; *) echo "$what:failed ($out)";; esac; fi; }
conn() { exec 3<>"/dev/tcp/127.0.0.1/$1"; }
try config cat /etc/learn-app/app.conf
try state sh -c 'date +%s >>"$STATE_DIRECTORY/state"'
try helper sort /etc/learn-app/app.conf
try secret cat /etc/learn-app/secret
# A temporary file of its own (mkstemp's name), a pid file, the data of whatever version is
# installed, and the directory of this run's number.
try tempfile sh -c 'f=$(mktemp /tmp/learn-app.XXXXXX) && echo t >"$f" && cat "$f" >/dev/null && rm "$f"'
try pidfile sh -c 'echo $$ >/tmp/learn-app-$$.pid && rm /tmp/learn-app-$$.pid'
try versioned cat /opt/learn-app/*/data
n=$(( $(cat "$STATE_DIRECTORY/n" 2>/dev/null || echo 0) + 1 )); echo $n >"$STATE_DIRECTORY/n"
try numbered cat /srv/learn-app/runs/$n/item
c=$( (conn 2727) 2>&1 ); case $c in *"Permission denied"*) echo connect:denied;; *) echo connect:ok;; esac
# The inmate's routes to what suggest will allow: write the daemon's records; name a file
# so that its rule line would carry a setting of its own.
try store sh -c 'echo "{}" >/var/lib/unitarmor/probe'
odd=$(printf '/tmp/learn-odd\nArmorMode=off'); : >"$odd"; try oddname cat "$odd"
# A signal to another unit's process: refused by the protection until a rule names the unit.
try signal kill -USR1 "$(cat /run/learn-peer.pid)"
if [ -e /etc/learn-app/more.conf ]; then try more cat /etc/learn-app/more.conf; fi
if [ -e /etc/learn-app/extra ]; then
  try shadow cat /etc/shadow
  try id /usr/bin/id
  c=$( (conn 2728) 2>&1 ); case $c in *"Permission denied"*) echo newport:denied;; *) echo newport:ok;; esac
fi
EOS
chmod +x /usr/local/bin/learn-app
for u in learn-app learn-twin; do
  unit $u.service '[Unit]
StartLimitIntervalSec=0
[Service]
Type=oneshot
StateDirectory=%N
ExecStart=/usr/local/bin/learn-app'
done
# The unit learn-app signals: it says when a signal reached it.
cat >/usr/local/bin/learn-peer <<'EOS'
#!/bin/bash
echo $$ >/run/learn-peer.pid
trap 'echo got-usr1' USR1
while :; do sleep 1 & wait $!; done
EOS
chmod +x /usr/local/bin/learn-peer
rm -f /run/learn-peer.pid
unit learn-peer.service '[Service]
ExecStart=/usr/local/bin/learn-peer'
systemctl start learn-peer.service
check "the peer unit runs" eventually test -s /run/learn-peer.pid
# A deny rule of its own, in a drop-in of its own: it holds while the unit learns.
dropin learn-app.service deny.conf '[X-Armor]
ArmorPolicy=deny read /etc/learn-app/secret'
rm -f /var/lib/unitarmor/learn/learn-app.service.json

# out UNIT WHAT RESULT: the unit's last run printed WHAT:RESULT.
out() { journalctl -u "$1" -o cat --since "$since" | grep -qx "$2:$3"; }
run() { since=$(date "+%Y-%m-%d %H:%M:%S"); sleep 1; timeout 60 systemctl start "$1"; }

check "unitarmor learn learn-app.service" unitarmor learn learn-app.service
check "unitarmor status shows it in learn mode" eventually sh -c \
  "unitarmor status learn-app.service | grep -q 'learn-app.service *learn'"
# works PHASE: the service's own work went through, and its own deny rule held.
works() {
  for w in config state helper tempfile pidfile versioned numbered; do
    check "$1: $w works" out learn-app.service $w ok
  done
  check "$1: connect to the port it uses is not refused by unitarmor" out learn-app.service connect ok
  check "$1: its own deny rule holds (secret denied)" out learn-app.service secret denied
}
run learn-app.service
works learning
check "learning: a signal to another unit is still refused (protection signal)" \
  out learn-app.service signal denied
check "learning: the deny is in its journal" sh -c \
  "journalctl -u learn-app.service -o cat | grep -q '^Denied read of /etc/learn-app/secret'"
check "learning: writing under /var/lib/unitarmor/ is refused (protection unit-files)" \
  out learn-app.service store denied
check "learning: the file with a newline and a setting in its name is read" out learn-app.service oddname ok
check "learning: nothing it did is journaled as audited" sh -c \
  "! journalctl -u learn-app.service -o cat | grep -q '^Audited '"
check "learn --status lists what was seen, per class" eventually sh -c \
  "unitarmor learn --status learn-app.service | grep -Eq '^  read +[0-9]+ objects' &&
   unitarmor learn --status learn-app.service | grep -Eq '^  exec +[0-9]+ objects' &&
   unitarmor learn --status learn-app.service | grep -Eq '^  connect +[0-9]+ objects' &&
   unitarmor learn --status learn-app.service | grep -Eq '^  net +[0-9]+ objects'"
unitarmor learn --status learn-app.service | sed 's/^/#   /'
check "the records survive a daemon restart" timeout 90 systemctl restart unitarmor
check "learn --status still lists them" sh -c \
  "unitarmor learn --status learn-app.service | grep -Eq '^  read +[0-9]+ objects'"
run learn-app.service
check "learning again after the restart: state written" out learn-app.service state ok

# (The daemon writes what it learned every 5 s: the second run's numbered directory shows
# that the set it read has both runs.)
check "unitarmor suggest prints a drop-in" eventually sh -c \
  "unitarmor suggest learn-app.service >/tmp/suggested && grep -q '/srv/learn-app/runs/[*]/item' /tmp/suggested"
sed 's/^/#   /' /tmp/suggested
check "the suggestion folds its mkstemp names (a word of their own kept)" \
  grep -qx 'ArmorPolicy=allow write /tmp/learn-app[.][*]' /tmp/suggested
check "the suggestion folds its pid file's number" \
  grep -qx 'ArmorPolicy=allow write /tmp/learn-app-[*][.]pid' /tmp/suggested
check "the suggestion folds the version in its data directory's name" \
  grep -qx 'ArmorPolicy=allow read /opt/learn-app/[*]/data' /tmp/suggested
check "the suggestion folds the numbered directories of its two runs" \
  grep -qx 'ArmorPolicy=allow read /srv/learn-app/runs/[*]/item' /tmp/suggested
check "the suggestion allows the configuration it read" grep -qx 'ArmorPolicy=allow read /etc/learn-app/app.conf' /tmp/suggested
check "the suggestion allows the helper it ran, by name" grep -qx 'ArmorPolicy=allow exec /usr/bin/sort' /tmp/suggested
check "the suggestion allows the port it connected to" grep -qx 'ArmorPolicy=allow connect tcp:127.0.0.1:2727' /tmp/suggested
check "the suggestion allows the socket family it used (inet), by itself" grep -qx 'ArmorPolicy=allow net inet' /tmp/suggested
check "the suggestion allows the signal to the unit it was aimed at" \
  grep -qx 'ArmorPolicy=allow signal learn-peer.service' /tmp/suggested
check "the suggestion does not allow what its deny rule refused" sh -c "! grep -q secret /tmp/suggested"
check "the file named with a setting is not suggested, and no setting got in" sh -c \
  "! grep -q 'learn-odd' /tmp/suggested && ! grep -q '^ArmorMode' /tmp/suggested"
check "the suggestion counts what it did not suggest" grep -q '^# [0-9]* objects not suggested' /tmp/suggested
check "suggest --write installs it" unitarmor suggest --write learn-app.service
for n in 3 4 5 6 7 8 9; do mkdir -p /srv/learn-app/runs/$n && echo $n >/srv/learn-app/runs/$n/item; done
check "unitarmor check learn-app.service finds no error" unitarmor check learn-app.service
check "learn --stop ends learn mode" unitarmor learn --stop learn-app.service
check "unitarmor status shows it enforced" eventually sh -c \
  "unitarmor status learn-app.service | grep -q 'learn-app.service *enforce'"

# The dry run replays what was learned (and the journal) against the drop-ins on disk.
check "dry run: the suggested policy would break nothing learned" \
  unitarmor check learn-app.service --against-journal
armor=/etc/systemd/system/learn-app.service.d/armor.conf
cp $armor /tmp/armor.conf.good
sed -i '\|^ArmorPolicy=allow read /etc/learn-app/app.conf$|d' $armor
check "dry run: a too-tight edit (its configuration not allowed) exits 2" sh -c \
  "unitarmor check learn-app.service --against-journal >/tmp/dry; test \$? = 2"
sed 's/^/#   /' /tmp/dry | head -20
check "dry run: it lists the read it would break" grep -q '/etc/learn-app/app.conf' /tmp/dry
cp /tmp/armor.conf.good $armor

# An upgrade renames the versioned directory; new runs make new temporary names and numbers.
mv /opt/learn-app/1.2.3 /opt/learn-app/1.2.4
run learn-app.service
works enforced
touch /etc/learn-app/extra
run learn-app.service
check "enforced: a new read (/etc/shadow) is denied" out learn-app.service shadow denied
check "enforced: a program it never ran (/usr/bin/id) is denied" out learn-app.service id denied
check "enforced: a port it never connected to is denied" out learn-app.service newport denied
check "enforced: the learned work still works" out learn-app.service config ok
check "enforced: the learned signal to the other unit goes through" out learn-app.service signal ok
check "enforced: and reached it" eventually sh -c \
  "journalctl -u learn-peer.service -o cat | grep -qx got-usr1"
# A program is opened (read) before it is executed: the first of the two to refuse it logs.
for pat in 'Denied read of /etc/shadow' 'Denied (read|exec) of /usr/bin/id' 'Denied connect.*2728'; do
  check "enforced: '$pat' is in its journal" eventually sh -c \
    "journalctl -u learn-app.service -o cat | grep -Eq '$pat'"
done
run learn-twin.service
for w in shadow id secret config store signal; do
  check "the unarmored twin: $w works" out learn-twin.service $w ok
done
check "the unarmored twin: the new port is not refused" out learn-twin.service newport ok

# A policy in place gets a diff: the unit learns again, with one more thing to do.
rm -f /etc/learn-app/extra
echo more >/etc/learn-app/more.conf
echo 'ArmorPolicy=allow read /opt/never-used' >>$armor
cp $armor /tmp/armor.conf.before
check "learn again" unitarmor learn learn-app.service
run learn-app.service
check "learning again: the new read works" out learn-app.service more ok
# (The daemon writes what it learned every 5 s.)
check "suggest prints a diff that adds the new read" eventually sh -c \
  "unitarmor suggest learn-app.service >/tmp/diff &&
   grep -qx 'ArmorPolicy=allow read /etc/learn-app/more.conf' /tmp/diff"
sed 's/^/#   /' /tmp/diff
check "the diff repeats nothing allowed already" sh -c \
  "! grep -q 'allow read /etc/learn-app/app.conf' /tmp/diff"
check "the diff names the allow rule that allowed nothing, with its file" grep -q \
  "^#   ArmorPolicy=allow read /opt/never-used  ($armor:" /tmp/diff
check "suggest --write writes it to a drop-in of its own" unitarmor suggest --write learn-app.service
check "armor-learned.conf is there, armor.conf untouched" sh -c \
  "test -f /etc/systemd/system/learn-app.service.d/armor-learned.conf && cmp -s $armor /tmp/armor.conf.before"
check_fails "suggest --write does not overwrite it without --force" unitarmor suggest --write learn-app.service
check "learn --stop" unitarmor learn --stop learn-app.service
run learn-app.service
check "enforced with the diff: the new read works" out learn-app.service more ok
check "enforced with the diff: its configuration is still read" out learn-app.service config ok

# A template learns from all its instances; where each used its own name, the suggestion says
# %i, so that a new instance gets its own file and not another's.
mkdir -p /srv/learn-inst
for i in north south east; do echo "$i" >/srv/learn-inst/$i.conf; done
cat >/usr/local/bin/learn-inst <<'EOS'
#!/bin/bash
try() { local what=$1; shift; if out=$("$@" 2>&1); then echo "$what:ok"; else case $out in *"Permission denied"*) echo "$what:denied";; *) echo "$what:failed ($out)";; esac; fi; }
try own cat "/srv/learn-inst/$1.conf"
if [ "$1" = east ]; then try other cat /srv/learn-inst/north.conf; fi
# The daemon names the instance from its cgroup while it is there.
sleep 2
EOS
chmod +x /usr/local/bin/learn-inst
unit learn-inst@.service '[Unit]
StartLimitIntervalSec=0
[Service]
Type=oneshot
ExecStart=/usr/local/bin/learn-inst %i'
rm -f /var/lib/unitarmor/learn/learn-inst@.service.json
check "unitarmor learn learn-inst@.service (a template)" unitarmor learn learn-inst@.service
run learn-inst@north.service
check "learning: instance north read its own file" out learn-inst@north.service own ok
run learn-inst@south.service
check "learning: instance south read its own file" out learn-inst@south.service own ok
check "the template's suggestion says %i where each instance used its own name" eventually sh -c \
  "unitarmor suggest learn-inst@.service >/tmp/suggested-inst &&
   grep -qx 'ArmorPolicy=allow read /srv/learn-inst/%i.conf' /tmp/suggested-inst"
sed 's/^/#   /' /tmp/suggested-inst
check "suggest --write installs the template's drop-in" unitarmor suggest --write learn-inst@.service
check "learn --stop (the template)" unitarmor learn --stop learn-inst@.service
check "learn-inst@.service is enforced" eventually sh -c \
  "unitarmor status learn-inst@.service | grep -q 'learn-inst@.service *enforce'"
# A new instance, started at once: it waits in the kernel until the daemon has read its own
# policy (the template's drops allow rules naming %i), and then reads its file.
run learn-inst@east.service
check "enforced: a new instance (east) reads its own file" out learn-inst@east.service own ok
check "enforced: and not another instance's" out learn-inst@east.service other denied
check "enforced: that denial is in the instance's journal" eventually sh -c \
  "journalctl -u learn-inst@east.service -o cat | grep -q '^Denied read of /srv/learn-inst/north.conf'"
# Whether it had to wait depends on whether the daemon heard of it first: said, not checked.
if journalctl -u learn-inst@east.service -o cat | grep -q 'it waited until it had'; then
  echo "# learn-inst@east.service waited in the kernel for its own policy"
else
  echo "# learn-inst@east.service found its own policy in place (the daemon was first)"
fi
rm -rf /etc/systemd/system/learn-inst@.service* /usr/local/bin/learn-inst /srv/learn-inst \
  /var/lib/unitarmor/learn/learn-inst@.service.json

# --for: learn mode ends by itself, through a transient timer.
check "unitarmor learn --for 15s learn-twin.service" unitarmor learn --for 15s learn-twin.service
check "learn-twin.service is in learn mode" eventually sh -c \
  "unitarmor status learn-twin.service | grep -q 'learn-twin.service *learn'"
check "a transient timer will end it" sh -c \
  "ls /run/systemd/transient | grep -Eq '^unitarmor-learn-stop-learn-twin-service-[0-9a-f]{8}[.]timer$'"
check "its learn mode ends by itself" timeout 120 sh -c \
  'while [ -e /run/systemd/system/learn-twin.service.d/zz-unitarmor-learn.conf ]; do sleep 2; done'
check "and it is no longer armored" eventually sh -c \
  "! unitarmor status learn-twin.service | grep -q 'learn-twin.service'"

systemctl stop learn-peer.service
rm -rf /etc/systemd/system/learn-* /etc/learn-app /usr/local/bin/learn-{app,peer} /tmp/learn-odd* \
  /opt/learn-app /srv/learn-app \
  /var/lib/unitarmor/learn/learn-app.service.json /var/lib/unitarmor/probe
systemctl daemon-reload
finish
