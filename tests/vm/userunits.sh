#!/bin/bash
# User units (issue 14): a unit a user's service manager runs is armored by root's files in
# /etc/systemd/user (for every user) and by the user's own in ~/.config/systemd/user (for that
# user only), bound at its cgroup's creation inside user@UID.service. A user's files tighten
# and never loosen: a deny rule of theirs is added, an allow rule cannot widen root's
# allow-list, and they change no other user's unit. A process of an armored user unit cannot
# write its user's unit directories (nor rename them away). Denials carry the fields
# `journalctl --user-unit` matches. Each route has an unarmored twin unit. Run in the guest by
# tests/vm/run (through suite.sh).
. ./lib.sh

D=/srv/armor-user
mkdir -p $D/bin /run/armortest
chmod 755 /run/armortest
echo user-secret >$D/secret
echo user-mine >$D/mine
chmod 755 $D
chmod 644 $D/secret $D/mine
cp /usr/bin/echo $D/bin/hello
chmod 755 $D/bin/hello
for u in 1500:armoruser 1501:armoruser2; do
  id "${u#*:}" >/dev/null 2>&1 || useradd -m -u "${u%%:*}" -s /bin/sh "${u#*:}"
done
H=/home/armoruser
H2=/home/armoruser2

# as USER CMD...: runs CMD as USER with the user's runtime directory (systemctl --user then
# talks to the user's manager over its private socket).
as() {
  local u=$1; shift
  runuser -u "$u" -- env XDG_RUNTIME_DIR="/run/user/$(id -u "$u")" "$@"
}
# ustart USER UNIT: starts a user unit and waits for it (oneshots).
ustart() {
  as "$1" systemctl --user start "$2"
}

# An X server's and an SSH agent's sockets, outside any armor, open to every user: the bus
# protection refuses them to armored units (an X client types into the user's terminals, an
# agent's client logs in with the user's keys).
cp ./netprobe $D/bin/netprobe
mkdir -p /tmp/.X11-unix /tmp/ssh-armortest
chmod 1777 /tmp/.X11-unix
systemd-run --unit armor-user-sockets.service $D/bin/netprobe unix-serve \
  /tmp/.X11-unix/X99 /tmp/ssh-armortest/agent.1 >/dev/null
check "the X server's and the agent's sockets are there" eventually test -S /tmp/ssh-armortest/agent.1
chmod 777 /tmp/.X11-unix/X99 /tmp/ssh-armortest/agent.1
chmod 755 /tmp/ssh-armortest

# Root's units and policies, for every user.
mkdir -p /etc/systemd/user/armor-u.service.d /etc/systemd/user/armor-al.service.d
probe='cat /proc/self/cgroup; cat /srv/armor-user/secret; cat /srv/armor-user/mine;
  echo x >%h/.config/systemd/user/zz.conf && echo wrote-unit-dir;
  mv %h/.config %h/.config-away && echo moved-config && mv %h/.config-away %h/.config;
  systemctl --user show-environment >/dev/null && echo reached-manager;
  echo true >>%h/.bashrc && echo wrote-bashrc;
  ln -s /nonexistent %h/.config/environment.d && echo linked-envd;
  mkdir %h/bin && echo made-bin;
  /srv/armor-user/bin/netprobe unix stream /tmp/.X11-unix/X99 && echo reached-x11;
  /srv/armor-user/bin/netprobe unix stream /tmp/ssh-armortest/agent.1 && echo reached-agent; true'
for n in armor-u armor-twin; do
  cat >/etc/systemd/user/$n.service <<EOF
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'exec >%h/$n.out 2>&1; $(echo $probe)'
EOF
done
printf '[X-Armor]\nArmorPolicy=deny read %s/secret\n' $D >/etc/systemd/user/armor-u.service.d/armor.conf
# A service that notifies its manager (the socket is in the user's run-time directory, which
# the bus protection closes otherwise).
mkdir -p /etc/systemd/user/armor-n.service.d
printf '[Service]\nType=notify\nNotifyAccess=all\nExecStart=/bin/sh -c "systemd-notify --ready; sleep 2"\n' \
  >/etc/systemd/user/armor-n.service
printf '[X-Armor]\nArmorPolicy=deny read %s/secret\n' $D >/etc/systemd/user/armor-n.service.d/armor.conf
for n in armor-al armor-al-twin; do
  printf '[Service]\nType=oneshot\nExecStart=%s/bin/hello hi\n' $D >/etc/systemd/user/$n.service
done
# Root allow-lists exec (systemd-executor: systemd 255+ executes it first in a user unit too).
printf '[X-Armor]\nArmorPolicy=allow exec /usr/bin/** /usr/lib/systemd/systemd-executor\n' \
  >/etc/systemd/user/armor-al.service.d/armor.conf

# The users' own files, owned by them: armoruser adds a deny rule and tries to widen the
# allow-list; a file linked to one the user does not own is not read.
for h in $H $H2; do mkdir -p $h/.config/systemd/user; done
mkdir -p $H/.config/systemd/user/armor-u.service.d $H/.config/systemd/user/armor-al.service.d
printf '[X-Armor]\nArmorPolicy=deny read %s/mine\n' $D >$H/.config/systemd/user/armor-u.service.d/own.conf
ln -sf /etc/shadow $H/.config/systemd/user/armor-u.service.d/shadow.conf
printf '[X-Armor]\nArmorPolicy=allow exec %s/bin/**\n' $D >$H/.config/systemd/user/armor-al.service.d/own.conf
# A user's own unit file linked to a file only root can read, which names a slice and has
# rules: the daemon reads it as the user would (not at all), so it neither arms the unit from
# it nor takes its slice. The twin links to a file of the user's own, with the same text.
mkdir -p /root/armor-lk
printf '[Unit]\nDescription=x\n[Service]\nType=oneshot\nSlice=armor-lk.slice\nExecStart=/bin/true\n[X-Armor]\nArmorPolicy=deny read %s/mine\n' $D \
  >/root/armor-lk/lk.service
chmod 600 /root/armor-lk/lk.service
cp /root/armor-lk/lk.service $H/lk-twin.service
ln -sf /root/armor-lk/lk.service $H/.config/systemd/user/armor-lk.service
ln -sf $H/lk-twin.service $H/.config/systemd/user/armor-lk-twin.service
chown -R armoruser: $H/.config $H/lk-twin.service
chown -R armoruser2: $H2/.config

# The guest has no pam_systemd, which sets the manager's runtime directory.
mkdir -p /run/systemd/system/user@.service.d
printf '[Service]\nEnvironment=XDG_RUNTIME_DIR=/run/user/%%i\n' \
  >/run/systemd/system/user@.service.d/runtime-dir.conf
systemctl daemon-reload
check_fails "no user unit is armored before its user's manager runs" \
  sh -c "unitarmor status | grep -q '(user 150[01])'"
systemctl start user@1500.service user@1501.service
check "both users' managers run" systemctl is-active user@1500.service user@1501.service
# The package's drop-in for user@.service asks the daemon for a pass before the manager
# starts: the user's units are armored by then, with no wait.
check "armoruser's units were armored before the manager started" \
  test "$(armored_rules armor-u.service~1500)" = 4

# 1. Root's rule, the user's rule and the protection of the user's unit directories.
check "armor-u.service of armoruser is armored: root's rule, the user's, two of protections" \
  wait_rules armor-u.service~1500 4
check "armor-u.service of armoruser2: root's rule and the protections' only" \
  wait_rules armor-u.service~1501 3
check "status lists the user unit with its user" sh -c \
  "unitarmor status | grep -q '^armor-u.service (user 1500) '"
check "the symlink to a file the user does not own is not read, and the journal says so" \
  eventually sh -c "journalctl -u unitarmor.service -o cat | grep -q 'shadow.conf.*owned by uid 0'"
check "a user's unit file linked to the user's own file arms the unit (the twin)" \
  wait_rules armor-lk-twin.service~1500 3
check "its slice is the one the file names" sh -c \
  "unitarmor status --json armor-lk-twin.service~1500 | grep -q '\"cgroup_path\": \".*/armor-lk.slice/armor-lk-twin.service\"'"
check_fails "a user's unit file linked to a root-only file does not arm the unit" sh -c \
  "unitarmor status | grep -q '^armor-lk.service (user 1500)'"
check_fails "nor does it count as unreadable (refused everything)" sh -c \
  "unitarmor status --json | grep -q 'armor-lk.service.*unreadable\|/root/armor-lk'"

check "armoruser's armor-u.service runs" ustart armoruser armor-u.service
out=$H/armor-u.out
check "it ran in its cgroup inside user@1500.service" \
  grep -qx "0::/user.slice/user-1500.slice/user@1500.service/app.slice/armor-u.service" $out
check "root's rule refused its read" grep -q "secret: Permission denied" $out
check "the user's own rule refused its read" grep -q "mine: Permission denied" $out
check "it could not write the user's unit directory" grep -q "zz.conf: Permission denied" $out
check_fails "it could not rename ~/.config away" grep -q moved-config $out
check "it could not write the user's ~/.bashrc" grep -q "bashrc: Permission denied" $out
check_fails "it could not put a symlink at ~/.config/environment.d" grep -q linked-envd $out
check_fails "it could not make ~/bin (on its user's PATH at login)" grep -q made-bin $out
check_fails "it could not reach the X server's socket" grep -q reached-x11 $out
check_fails "it could not reach the SSH agent's socket" grep -q reached-agent $out
check "it could not reach its user manager (systemctl --user)" grep -q "Failed to connect to .*bus" $out
check_fails "(so it did not)" grep -q reached-manager $out
check "the denial is in journalctl --user-unit armor-u.service" eventually sh -c \
  "journalctl --user-unit armor-u.service -o cat | grep -q 'Denied read of $D/secret by /usr/bin/cat '"
check "its record names the user unit and the user" eventually \
  record user@1500.service OBJECT_SYSTEMD_USER_UNIT=armor-u.service OBJECT_UID=1500 \
  UNITARMOR_PATH=$D/secret

# 2. The other user's unit of the same name: root's rule, not armoruser's.
check "armoruser2's armor-u.service runs" ustart armoruser2 armor-u.service
out=$H2/armor-u.out
check "it ran inside user@1501.service" \
  grep -qx "0::/user.slice/user-1501.slice/user@1501.service/app.slice/armor-u.service" $out
check "root's rule refused its read" grep -q "secret: Permission denied" $out
check "armoruser's own rule did not reach it: it read mine" grep -qx user-mine $out

# 3. The unarmored twin does all of it.
check "the twin runs" ustart armoruser2 armor-twin.service
out=$H2/armor-twin.out
check "the twin read the secret" grep -qx user-secret $out
check "the twin wrote its user's unit directory" grep -q wrote-unit-dir $out
check "the twin renamed ~/.config away (and back)" grep -q moved-config $out
check "the twin reached its user manager" grep -q reached-manager $out
check "the twin wrote its user's ~/.bashrc" grep -q wrote-bashrc $out
check "the twin put a symlink at ~/.config/environment.d" grep -q linked-envd $out
check "the twin made ~/bin" grep -q made-bin $out
check "the twin reached the X server's socket" grep -q reached-x11 $out
check "the twin reached the SSH agent's socket" grep -q reached-agent $out
rm -f $H2/.config/environment.d
rmdir $H2/bin
rm -f $H2/.config/systemd/user/zz.conf

check "armor-n.service (Type=notify) is armored" wait_rules armor-n.service~1500 3
check "it notifies its manager and starts" ustart armoruser armor-n.service

# 4. A user's allow rule does not widen root's allow-list.
check "armor-al.service of armoruser is armored" wait_rules armor-al.service~1500 3
check "the daemon says the user's allow rule is not honored, naming its file" eventually sh -c \
  "journalctl -u unitarmor.service -o cat | grep -q 'armor-al.service.d/own.conf:2: warning: not honored'"
check_fails "armor-al.service cannot execute $D/bin/hello (not in root's list)" \
  ustart armoruser armor-al.service
check "its twin executes it" ustart armoruser armor-al-twin.service

# 5. A user's own unit, armored by the user's files alone, with no reload.
# Written by the user (a file root writes there and hands over with chown is read at the next
# pass: a change of owner alone makes none).
runuser -u armoruser -- tee $H/.config/systemd/user/armor-own.service >/dev/null <<EOF
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'exec >%h/armor-own.out 2>&1; cat $D/secret; true'

[X-Armor]
ArmorPolicy=deny read $D/secret
EOF
check "armor-own.service (the user's own file) is armored" wait_rules armor-own.service~1500 3
as armoruser systemctl --user daemon-reload
check "it runs" ustart armoruser armor-own.service
check "its read was refused" grep -q "secret: Permission denied" $H/armor-own.out

# 6. The user's rule goes with the user's file.
rm $H/.config/systemd/user/armor-u.service.d/own.conf
check "without the user's file, armoruser's armor-u.service has root's rule and the protections'" \
  wait_rules armor-u.service~1500 3
check "it runs" ustart armoruser armor-u.service
check "it now reads mine" grep -qx user-mine $H/armor-u.out
check "root's rule still refuses the secret" grep -q "secret: Permission denied" $H/armor-u.out

# 7. A user unit running when the daemon starts is bound with its own cgroup as its tree's root,
# as at its creation: it cannot make a cgroup elsewhere in its user's tree and move into it (a
# helper's review: the daemon took the user's manager for the unit, the whole tree for its own).
cat >$D/bin/escape.sh <<'EOF'
#!/bin/sh
# escape.sh OUT UID NAME: waits for the go, then tries to leave the unit's cgroup.
while [ ! -e /run/armortest/go ]; do sleep 0.2; done
exec >"$1.tmp" 2>&1
d=/sys/fs/cgroup/user.slice/user-$2.slice/user@$2.service/app.slice/escape-$3
mkdir "$d" && echo $$ >"$d/cgroup.procs" && echo moved
cat /proc/self/cgroup
cat /srv/armor-user/secret
mv "$1.tmp" "$1"
EOF
chmod 755 $D/bin/escape.sh
rm -f /run/armortest/go
for n in armor-long armor-long-twin; do
  printf '[Service]\nExecStart=%s/bin/escape.sh %%h/%%N.out %%U %%N\n' $D >/etc/systemd/user/$n.service
done
mkdir -p /etc/systemd/user/armor-long.service.d
printf '[X-Armor]\nArmorPolicy=deny read %s/secret\n' $D >/etc/systemd/user/armor-long.service.d/armor.conf
as armoruser systemctl --user daemon-reload
check "armor-long.service is armored" wait_rules armor-long.service~1500 3
check "it and its twin run" as armoruser systemctl --user start armor-long.service armor-long-twin.service
systemctl restart unitarmor.service
check "after a restart of the daemon it is armored again" wait_rules armor-long.service~1500 3
touch /run/armortest/go
check "the armored unit tried" eventually test -e $H/armor-long.out
check "it could not make a cgroup elsewhere in its user's tree" \
  grep -Eq "mkdir: cannot create directory.*(Permission denied|Operation not permitted)" $H/armor-long.out
check_fails "(so it did not move)" grep -q moved $H/armor-long.out
check "its read is still refused" grep -q "secret: Permission denied" $H/armor-long.out
check "the twin tried" eventually test -e $H/armor-long-twin.out
check "the twin moved out of its unit" grep -q moved $H/armor-long-twin.out
check "the twin read the secret" grep -qx user-secret $H/armor-long-twin.out

# 8. A user's Slice= cannot reach out of the user's tree (a helper's review: ".." took a
# running system unit's cgroups under the user's policy).
unit armor-victim.service "[Service]
ExecStart=/bin/sh -c 'while :; do cat $D/secret >/run/armortest/v.tmp 2>&1; mv /run/armortest/v.tmp /run/armortest/victim.out; sleep 0.3; done'"
systemctl daemon-reload
systemctl start armor-victim.service
printf '[Service]\nSlice=app.slice/../../../../system.slice\nExecStart=/bin/true\n\n[X-Armor]\nArmorPolicy=deny read %s/secret\n' $D |
  runuser -u armoruser2 -- tee $H2/.config/systemd/user/armor-victim.service >/dev/null
check "the daemon refuses the user's Slice= and says so" eventually sh -c \
  "journalctl -u unitarmor.service -o cat | grep -q 'armor-victim.service (user 1501): Slice=.* gives no cgroup path'"
check_fails "it is not armored" sh -c "unitarmor status | grep -q 'armor-victim.service (user 1501)'"
sleep 2
check "the system unit of that name still reads the file" eventually grep -qx user-secret /run/armortest/victim.out
systemctl stop armor-victim.service

# 9. A user unit's tree has a small sub-cgroup budget: its user can make its exact path from a
# login shell, and cgroups below it, which count against the budget all units share.
A=/sys/fs/cgroup/user.slice/user-1500.slice/user@1500.service/app.slice
# subs DIR N: as armoruser, makes DIR and N cgroups below it; prints how many it made.
subs() {
  runuser -u armoruser -- sh -c 'mkdir "$1" || exit 1; i=0
    while [ "$i" -lt "$2" ] && mkdir "$1/s$i" 2>/dev/null; do i=$((i + 1)); done; echo "$i"' sh "$@"
}
made=$(subs $A/armor-u.service 80)
check "the user's own mkdirs below an armored user unit's path stop at 64 (made $made)" test "$made" = 64
made=$(subs $A/armor-twin.service 80)
check "below an unarmored unit's they do not (made $made)" test "$made" = 80
for d in $A/armor-u.service $A/armor-twin.service; do rmdir $d/s* $d 2>/dev/null; done

systemctl stop armor-user-sockets.service
systemctl stop user@1500.service user@1501.service
check "a stopped manager's units are no longer armored (their slots are free)" \
  wait_rules armor-u.service~1500 0
finish
