# shellcheck shell=bash
# The set-up of protect.sh: the attempt scripts, the armored units and their unarmored twins,
# and the helpers its checks use. Sourced by protect.sh, after lib.sh.

A=/var/lib/armortest
SECRET=armortest-secret-content
mkdir -p $A /run/armortest
check "the escape helper is built (tests/all compiles tests/vm/escape.c)" test -x escape
cp escape $A/
check "the netlink helper is built (tests/all compiles tests/vm/nlprobe.c)" test -x nlprobe
cp nlprobe $A/
cp /usr/bin/id $A/id-copy

# The guest must have every tool the attempts use, or a twin's failure would say nothing.
has_tools() {
  local t missing=
  for t in perl unshare mount umount mountpoint logger systemd-cat systemd-run systemd-notify \
    busctl bpftool modprobe modinfo rmmod timeout renice ps stat; do
    command -v "$t" >/dev/null || missing="$missing $t"
  done
  [ -z "$missing" ] || { echo "missing in the guest image:$missing"; return 1; }
}
check "the guest has the tools the attempts use" has_tools

# The files the rules name. Route 7 renames and links them: reset_tree puts them back.
reset_tree() {
  rm -rf /srv/armortest
  mkdir -p /srv/armortest/dir /srv/armortest/ro
  echo "$SECRET" >/srv/armortest/secret
  echo inner >/srv/armortest/dir/inner
  echo free >/srv/armortest/free
}
reset_tree

# --- the attempt scripts (run by /bin/sh, which is dash) --------------------------------------
cat >$A/p-lib.sh <<'EOF'
# Sourced by the p-*.sh attempt scripts, which get their unit's name (%N) as $1.
# try ATTEMPT CMD...: runs CMD, records "ATTEMPT ok" or "ATTEMPT fail" in
# /run/armortest/$1.result and CMD's output under "== ATTEMPT" in /run/armortest/$1.log.
name=$1
A=/var/lib/armortest
SECRET=armortest-secret-content
out=/run/armortest/$name.result
log=/run/armortest/$name.log
: >"$out"
: >"$log"
try() {
  t=$1
  shift
  echo "== $t" >>"$log"
  if "$@" >>"$log" 2>&1; then echo "$t ok" >>"$out"; else echo "$t fail" >>"$out"; fi
}
EOF

# Route 1: the service manager and the bus; and what every service needs from them.
# The abstract socket attempts go first: records are admitted five per rule and 10 s, and the
# journal checks below look for theirs.
cat >$A/p-bus.sh <<'EOF'
. /var/lib/armortest/p-lib.sh
# listening NAME: waits (up to 20 s) until an abstract socket @NAME listens.
listening() {
  i=0
  until grep -q " @$1\$" /proc/net/unix; do
    i=$((i + 1))
    [ "$i" -le 100 ] || return 1
    sleep 0.2
  done
}
own_abstract() {
  "$A/escape" abstract-listen "armortest-own-$name" &
  pid=$!
  r=1
  listening "armortest-own-$name" && "$A/escape" abstract-connect "armortest-own-$name" && r=0
  kill "$pid"
  wait "$pid"
  return "$r"
}
run_elsewhere() {
  timeout 60 systemd-run --wait --pipe --quiet cat /srv/armortest/secret </dev/null | grep -qx "$SECRET"
}
journal_stream() { echo "hello-cat-$name" | systemd-cat -t armortest; }
# journald's varlink socket (RelinquishVar would send every record to /run only): a connect.
journal_varlink() {
  perl -MSocket -e 'socket(my $s, PF_UNIX, SOCK_STREAM, 0) or die "socket: $!\n";
    connect($s, pack_sockaddr_un("/run/systemd/journal/io.systemd.journal")) or die "connect: $!\n"'
}
try abstract-other "$A/escape" abstract-connect armortest-listen
try unitarmor-status timeout 60 unitarmor status
try own-abstract own_abstract
try systemd-run run_elsewhere
try busctl-ping timeout 60 busctl call org.freedesktop.systemd1 /org/freedesktop/systemd1 org.freedesktop.DBus.Peer Ping
try daemon-reload timeout 60 systemctl daemon-reload
try sync-socket timeout 60 unitarmor sync
try journal-varlink journal_varlink
try logger logger -t armortest "hello-logger-$name"
try systemd-cat journal_stream
echo "hello-stdout-$name"
exit 0
EOF

# Route 2: unit files, named policies, kernel settings, places root runs later, raw devices.
# The unit has no PrivateDevices= (which would leave out /dev/mem and the disk). The newer
# attempts go first: records are admitted five per rule and 10 s, and the journal checks look
# for theirs.
cat >$A/p-files.sh <<'EOF'
. /var/lib/armortest/p-lib.sh
attached_dropin() {
  d=/run/systemd/system.attached/$name.service.d
  mkdir -p "$d" && printf '[X-Armor]\nArmorMode=off\n' >"$d/zz.conf"
}
usr_file() { echo >"/usr/local/bin/armortest-planted-$name"; }
own_dropin() { printf '[X-Armor]\nArmorMode=off\n' >"/etc/systemd/system/$name.service.d/zz-off.conf"; }
planted_unit() { printf '[Service]\nExecStart=/bin/true\n' >"/run/systemd/system/armortest-planted-$name.service"; }
user_unit() {
  d=/home/armortest-user/.config/systemd/user/default.target.wants
  mkdir -p "$d" && printf '[Service]\nExecStart=/bin/true\n' >"$d/armortest-planted-$name.service"
}
policy_file() { echo '# armortest' >"/etc/unitarmor/policies/armortest-$name.toml"; }
core_pattern() {
  cat /proc/sys/kernel/core_pattern >"/run/armortest/$name.core" &&
    cat "/run/armortest/$name.core" >/proc/sys/kernel/core_pattern
}
cron_file() { echo >"/etc/cron.d/armortest-$name"; }
# A top-level library directory (absent on x86-64): a loader planted there, or in a /lib64 put
# in place of the symlink into /usr, runs with every program that names it.
top_lib() { mkdir /libx32 && rmdir /libx32; }
try user-unit user_unit
try attached-dropin attached_dropin
try usr-local-bin usr_file
try dev-mem "$A/escape" open-ro /dev/mem
try block-device "$A/escape" open-ro /dev/vda
try kcore "$A/escape" open-ro /proc/kcore
try own-dropin own_dropin
try planted-unit planted_unit
try policy-file policy_file
try bpffs-mkdir mkdir "/sys/fs/bpf/armortest-$name"
try core-pattern core_pattern
try cron-file cron_file
try top-lib top_lib
exit 0
EOF

# Route 2, disk passthrough devices whose majors the kernel hands out at run time (tests/vm/run
# gives the guest an NVMe and a SCSI disk whose block 0 holds "armortest-raw-disk"). Read
# through passthrough commands, not read(): these devices have none.
cat >$A/p-devices.sh <<'EOF'
. /var/lib/armortest/p-lib.sh
try nvme-generic "$A/escape" nvme-read /dev/ng0n1
try nvme-controller "$A/escape" nvme-read /dev/nvme0
try bsg "$A/escape" bsg-read "$(ls -d /dev/bsg/* | head -n 1)"
try mapper-control "$A/escape" open-ro /dev/mapper/control
try snapshot "$A/escape" open-ro /dev/snapshot
try btrfs-control "$A/escape" open-ro /dev/btrfs-control
# Kernel settings that hand a disk or all memory over: each written with its own value.
try pm-async sh -c 'cat /sys/power/pm_async >/run/armortest/pm_async.$name && cat /run/armortest/pm_async.$name >/sys/power/pm_async'
try drivers-autoprobe sh -c 'cat /sys/bus/pci/drivers_autoprobe >/run/armortest/autoprobe.$name && cat /run/armortest/autoprobe.$name >/sys/bus/pci/drivers_autoprobe'
exit 0
EOF

# Devices driven whole from user space, by run-time majors: protect.sh loads their drivers
# after the daemon (VFIO, UIO, ublk) and makes a node of each major in $A/pt-NAME. With no
# device bound the driver answers ENXIO or ENODEV: reaching it counts as the route working.
cat >$A/p-pt.sh <<'EOF'
. /var/lib/armortest/p-lib.sh
reaches_driver() {
  err=$( (exec 3<"$1") 2>&1) && return 0
  echo "$err"
  case $err in *"No such device"*) return 0 ;; esac
  return 1
}
for node in $A/pt-*; do
  try "$(basename "$node")" reaches_driver "$node"
done
# Another misc device of a run-time minor, not a passthrough one: it still opens.
try dyn-misc reaches_driver /dev/cpu_dma_latency
exit 0
EOF

# Disks and root's helpers handed over by netlink messages whose handlers ask for
# CAP_SYS_ADMIN: a uevent udev takes for the kernel's, and a network block device served by the
# unit (protect.sh loads the nbd module first); a message to udevd's multicast group, which PID
# 1 takes from any root sender; nfsd's export tables (opened for writing; nothing is written);
# a synthetic uevent through sysfs. What needs no CAP_SYS_ADMIN keeps working: rtnetlink (ip),
# and CAP_SYS_ADMIN outside a netlink message (a new UTS namespace).
cat >$A/p-netlink.sh <<'EOF'
. /var/lib/armortest/p-lib.sh
try uevent "$A/nlprobe" uevent "armortest-$name"
try multicast "$A/nlprobe" multicast "$name"
try nbd "$A/nlprobe" nbd
try nfsd-export sh -c ': >>/proc/net/rpc/auth.unix.ip/channel'
try sys-uevent sh -c 'echo change >/sys/devices/virtual/net/lo/uevent'
try rtnetlink ip -o link show lo
try unshare-uts unshare --uts true
exit 0
EOF

# Route 3: leaving the cgroup.
cat >$A/p-cgroup.sh <<'EOF'
. /var/lib/armortest/p-lib.sh
move_out() { sh -c 'echo $$ >/sys/fs/cgroup/armortest-free/cgroup.procs && grep -qx "0::/armortest-free" /proc/self/cgroup'; }
try cgroup-procs move_out
try cgroup-mkdir mkdir "/sys/fs/cgroup/armortest-other-$name"
try clone-into-cgroup "$A/escape" clone-into-cgroup /sys/fs/cgroup/armortest-free
# Its own cgroup's limits are its parent's to set: write cgroup.max.descendants its own value.
cg=/sys/fs/cgroup$(sed -n "s/^0:://p" /proc/self/cgroup)
own_limit() { v=$(cat "$cg/cgroup.max.descendants") && echo "$v" >"$cg/cgroup.max.descendants"; }
try own-limit own_limit
# Filling the kernel's table of armored cgroups: 1,100 sub-cgroups of its own, more than the
# default budget of 1,024. Prints how many it made, then removes them.
many() {
  seq 1 1100 | sed "s|^|$cg/b|" | xargs mkdir 2>&1 | tail -n 1
  made=$(find "$cg" -mindepth 1 -maxdepth 1 -type d -name 'b*' | wc -l)
  echo "created $made"
  find "$cg" -mindepth 1 -maxdepth 1 -type d -name 'b*' -exec rmdir {} +
  [ "$made" -eq 1100 ]
}
try sub-cgroups many
# Removing them gave the budget back.
try sub-cgroup-again sh -c "mkdir '$cg/again' && rmdir '$cg/again'"
# A cgroup v1 hierarchy (protect.sh mounts a named one): its root's release_agent is a program
# the kernel runs as root. Set, then cleared. Last: its record has a path of its own, and the
# records before it are counted against the first five of the protection's rule.
v1=/run/armortest/cgroup-v1
release_agent() { echo /bin/true >$v1/release_agent && grep -qx /bin/true $v1/release_agent && echo >$v1/release_agent; }
try cgroup1-release-agent release_agent
exit 0
EOF

# Route 3, what stays allowed: a Delegate=yes unit manages its own subtree.
cat >$A/p-deleg.sh <<'EOF'
. /var/lib/armortest/p-lib.sh
cg=/sys/fs/cgroup$(sed -n "s/^0:://p" /proc/self/cgroup)
move_in() { mkdir "$cg/sub" && echo $$ >"$cg/sub/cgroup.procs" && grep -q '^0::.*/sub$' /proc/self/cgroup; }
try own-subcgroup move_in
try read-secret cat /srv/armortest/secret
exit 0
EOF

# Route 4: disarming the kernel side. The twin never touches the real pins or /sys/fs/bpf:
# that would disarm the guest for the scenarios after this one.
cat >$A/p-bpf.sh <<'EOF'
. /var/lib/armortest/p-lib.sh
try bpftool-prog sh -c 'bpftool prog show >/dev/null'
try bpftool-map sh -c 'bpftool map show >/dev/null'
try umount-bpffs-copy umount "/run/armortest/bpffs-$name"
case $name in
  *-twin) ;;
  *)
    try rm-pin rm /sys/fs/bpf/unitarmor/links/file_open
    try umount-bpffs umount /sys/fs/bpf
    ;;
esac
exit 0
EOF

# Route 5: stopping the watcher.
cat >$A/p-signal.sh <<'EOF'
. /var/lib/armortest/p-lib.sh
daemon=$(cat /run/armortest/daemon.pid)
environ() { cat "/proc/$1/environ" >/dev/null; }
own_child() { sleep 100 & kill $!; }
try signal-daemon kill -s CONT "$daemon"
try signal-pid1 kill -s CONT 1
try renice-daemon renice -n 5 -p "$daemon"
try environ-pid1 environ 1
try environ-daemon environ "$daemon"
try own-child own_child
try own-environ environ self
# The daemon's limit on core files, set to the value it has (the change is harmless).
core=$(cat /run/armortest/daemon.core)
try prlimit-daemon prlimit --pid "$daemon" --core="$core"
try prlimit-parent prlimit --pid $$ --core=0:0
# A child's limits: its credentials are a copy, as like the daemon's as any root process's.
prlimit_child() { sleep 100 & c=$!; prlimit --pid "$c" --core=0:0; rc=$?; kill "$c"; return $rc; }
try prlimit-child prlimit_child
try oom-daemon sh -c "echo 500 >/proc/$daemon/oom_score_adj"
try oom-self sh -c "echo 100 >/proc/self/oom_score_adj"
# A status line sent to PID 1 in the daemon's name (SCM_CREDENTIALS with its pid).
# A oneshot unit has no $NOTIFY_SOCKET of its own; PID 1's socket takes messages from anyone.
export NOTIFY_SOCKET=/run/systemd/notify
try claim-daemon systemd-notify --pid="$daemon" "STATUS=armortest claimed by $name"
try claim-parent systemd-notify --pid=$$ "STATUS=armortest own"
# The same claim as the second of two messages to one address in one sendmmsg() (ERRNO= sets
# unitarmor.service's StatusErrno).
try sendmmsg-daemon $A/escape sendmmsg-claim "$daemon" ERRNO=77
exit 0
EOF

# Route 6: new roots and namespaces.
cat >$A/p-ns.sh <<'EOF'
. /var/lib/armortest/p-lib.sh
chroot_read() {
  perl -e 'chroot "/srv/armortest" or die "chroot: $!\n"; open(F, "<", "/secret") or die "open /secret: $!\n"; print <F>;' |
    grep -qx "$SECRET"
}
bind_read() { unshare -m sh -c 'mount --bind /srv/armortest /mnt && cat /mnt/secret' | grep -qx "$SECRET"; }
try chroot-read chroot_read
try bind-mount bind_read
try userns unshare -U true
exit 0
EOF

# Route 6: mount flags changed without a new mount, in the unit's own mount namespace, where
# ReadOnlyPaths= made /srv/armortest/ro read-only.
cat >$A/p-mountattr.sh <<'EOF'
. /var/lib/armortest/p-lib.sh
rw_write() { $A/escape mount-rw /srv/armortest/ro && echo planted >"/srv/armortest/ro/rw-$name"; }
try mount-rw rw_write
try fspick $A/escape fspick /
try fsopen $A/escape fsopen tmpfs
exit 0
EOF

# Route 6, what stays allowed: systemd's own set-up inside the unit (sandboxing options).
cat >$A/p-sandbox.sh <<'EOF'
. /var/lib/armortest/p-lib.sh
try runs true
try private-tmp sh -c 'echo x >/tmp/armortest-private && test -s /tmp/armortest-private'
try read-secret cat /srv/armortest/secret
exit 0
EOF

# Route 7: other names for the same file. by-handle goes first: no lookup of the secret's name
# may bring its dentry back into the cache before it. exchange-read swaps /srv/armortest with an
# empty directory on the same mount (/run/armortest/swap names it) and back.
cat >$A/p-names.sh <<'EOF'
. /var/lib/armortest/p-lib.sh
swap=$(cat /run/armortest/swap)
exchange_read() {
  "$A/escape" rename-exchange "$swap" /srv/armortest || return 1
  r=1
  grep -qx "$SECRET" "$swap/secret" && r=0
  "$A/escape" rename-exchange "$swap" /srv/armortest || r=1
  return "$r"
}
by_handle() { "$A/escape" handle-read /srv/armortest /run/armortest/secret.handle | grep -qx "$SECRET"; }
pipe_stdout() { { echo hi >/dev/stdout; } | grep -qx hi; }
try by-handle by_handle
try exchange-read exchange_read
try hardlink ln /srv/armortest/secret /srv/armortest/hl
try rename-file mv /srv/armortest/secret /srv/armortest/moved
try rename-dir mv /srv/armortest/dir /srv/armortest/dir2
try rename-free mv /srv/armortest/free /srv/armortest/free2
try dev-stdout pipe_stdout
exit 0
EOF

# Route 8: code that is not an exec.
cat >$A/p-ldso.sh <<'EOF'
. /var/lib/armortest/p-lib.sh
try ldso-id /lib64/ld-linux-x86-64.so.2 /usr/bin/id
exit 0
EOF
cat >$A/p-xlist.sh <<'EOF'
. /var/lib/armortest/p-lib.sh
try id /usr/bin/id
try id-copy "$A/id-copy"
try ldso-id-copy /lib64/ld-linux-x86-64.so.2 "$A/id-copy"
exit 0
EOF

# Route 9: kernel code.
cat >$A/p-modules.sh <<'EOF'
. /var/lib/armortest/p-lib.sh
try modprobe modprobe dummy
exit 0
EOF

# Route 10: writes that are not opens.
cat >$A/p-xattr.sh <<'EOF'
. /var/lib/armortest/p-lib.sh
f=$A/xattr/$name
try set-security "$A/escape" setxattr "$f" security.armortest v
try remove-security "$A/escape" removexattr "$f.pre" security.armortest
try set-user "$A/escape" setxattr "$f" user.armortest v
try set-immutable "$A/escape" setflags "$f" +i
try xfs-attrmulti "$A/escape" xfs-attrmulti $A/xfs $A/xfs/$name armortest v
exit 0
EOF

# Route 7: other names. A btrfs snapshot is a new name for every file of a subvolume.
cat >$A/p-btrfs.sh <<'EOF'
. /var/lib/armortest/p-lib.sh
try snapshot-read sh -c "btrfs subvolume snapshot $A/btrfs/vol $A/btrfs/snap-$name && cat $A/btrfs/snap-$name/secret"
try tree-search sh -c "$A/escape btrfs-search $A/btrfs/vol $A/btrfs/vol/secret | grep -x '$A/btrfs/vol/secret inline: secret'"
exit 0
EOF

# --- units --------------------------------------------------------------------------------
common='[Unit]
StartLimitIntervalSec=0
[Service]
Type=oneshot
TimeoutStartSec=180'
ARMORED=()

# armor NAME RULE...: armors NAME.service with one ArmorPolicy= line per RULE.
armor() {
  local name=$1 text='[X-Armor]' r
  shift
  for r in "$@"; do
    text="$text
ArmorPolicy=$r"
  done
  dropin "$name.service" armor.conf "$text"
  ARMORED+=("$name:$#")
}

# pair NAME SCRIPT RULE...: NAME.service and NAME-twin.service, the same oneshot running
# $A/SCRIPT; only NAME is armored, with RULEs.
pair() {
  local name=$1 script=$2
  shift 2
  unit "$name.service" "$common
ExecStart=/bin/sh $A/$script %N"
  unit "$name-twin.service" "$common
ExecStart=/bin/sh $A/$script %N"
  armor "$name" "$@"
}

secret_rule='deny read /srv/armortest/secret'
pair armor-p-bus p-bus.sh "$secret_rule"
pair armor-p-files p-files.sh "$secret_rule"
pair armor-p-devices p-devices.sh "$secret_rule"
pair armor-p-pt p-pt.sh "$secret_rule"
pair armor-p-netlink p-netlink.sh "$secret_rule"
pair armor-p-cgroup p-cgroup.sh "$secret_rule"
pair armor-p-bpf p-bpf.sh "$secret_rule"
pair armor-p-signal p-signal.sh "$secret_rule"
pair armor-p-ns p-ns.sh "$secret_rule"
pair armor-p-names p-names.sh "$secret_rule" 'deny read /srv/armortest/dir/inner' 'deny write /srv/armortest/ro/'
pair armor-p-ldso p-ldso.sh 'deny exec /usr/bin/id'
pair armor-p-xlist p-xlist.sh 'allow exec /usr/bin/** /usr/lib/** /usr/lib64/**'
pair armor-p-modules p-modules.sh "$secret_rule"
pair armor-p-xattr p-xattr.sh "$secret_rule"
pair armor-p-btrfs p-btrfs.sh 'deny read /var/lib/armortest/btrfs/vol/secret'

unit armor-p-notify.service '[Unit]
StartLimitIntervalSec=0
[Service]
Type=notify
NotifyAccess=all
TimeoutStartSec=60
ExecStart=/bin/sh -c "systemd-notify --ready; exec sleep 300"'
armor armor-p-notify "$secret_rule"
# MAINPID= naming the daemon: PID 1 accepts any process from a root sender, and stopping the
# unit then sends the daemon SIGTERM.
unit armor-p-mainpid.service '[Unit]
StartLimitIntervalSec=0
[Service]
Type=notify
NotifyAccess=all
TimeoutStartSec=60
ExecStart=/bin/sh -c "systemd-notify --ready MAINPID=$(cat /run/armortest/daemon.pid); exec sleep 300"'
armor armor-p-mainpid "$secret_rule"

# Route 2 through systemd's set-up (protect.sh plants the symlinks).
for u in armor-p-stdout armor-p-stdout-twin; do
  unit "$u.service" "$common
StandardOutput=append:/run/armortest/$u.out
ExecStart=/bin/echo armortest-stdout-line"
done
armor armor-p-stdout "$secret_rule"

unit armor-p-deleg.service "$common
Delegate=yes
ExecStart=/bin/sh $A/p-deleg.sh %N"
armor armor-p-deleg "$secret_rule"

for u in armor-p-mountattr armor-p-mountattr-twin; do
  unit "$u.service" "$common
ReadOnlyPaths=/srv/armortest/ro
ExecStart=/bin/sh $A/p-mountattr.sh %N"
done
armor armor-p-mountattr "$secret_rule"

unit armor-p-sandbox.service "$common
PrivateTmp=yes
ProtectSystem=strict
PrivateDevices=yes
ReadWritePaths=/run/armortest
ExecStart=/bin/sh $A/p-sandbox.sh %N"
armor armor-p-sandbox "$secret_rule"

unit armor-p-privusers.service "$common
PrivateUsers=yes
PrivateTmp=yes
ExecStart=/bin/sh $A/p-sandbox.sh %N"
armor armor-p-privusers "$secret_rule"

# Route 6, what stays allowed: RootDirectory= with BindReadOnlyPaths=/usr (systemd chroots the
# unit during its set-up). Its rule names the secret both as the unit sees it and as the host
# does; the record says which path the kernel built.
R=/srv/armortest-root
rm -rf $R
mkdir -p $R/usr $R/etc $R/tmp
ln -s usr/bin $R/bin
ln -s usr/lib $R/lib
[ ! -e /lib64 ] || ln -s usr/lib64 $R/lib64
echo "$SECRET" >$R/secret
echo free >$R/free
for u in armor-p-rootdir armor-p-rootdir-twin; do
  unit "$u.service" "$common
RootDirectory=$R
BindReadOnlyPaths=/usr
StandardOutput=file:/run/armortest/$u.out
ExecStart=/bin/sh -c 'cat /free; cat /secret || echo secret-refused'"
done
armor armor-p-rootdir "deny read /secret $R/secret"

# Route 1: an unarmored unit that listens on an abstract socket, for armor-p-bus to try.
unit armor-p-listener.service "[Unit]
StartLimitIntervalSec=0
[Service]
ExecStart=$A/escape abstract-listen armortest-listen"

# A twin's own drop-in directory, so that its attempt to write a drop-in is the armored unit's.
mkdir -p /etc/systemd/system/armor-p-files-twin.service.d
systemctl daemon-reload
for u in "${ARMORED[@]}"; do
  check "${u%%:*}.service is armored with ${u##*:} rule(s)" wait_rules "${u%%:*}.service" "${u##*:}"
done
twins_unarmored() {
  local t n
  for t in /etc/systemd/system/armor-p-*-twin.service; do
    t=${t##*/}
    n=$(armored_rules "$t")
    [ "${n:-0}" = 0 ] || { echo "$t is armored with $n rule(s)"; return 1; }
  done
}
check "no twin is armored" twins_unarmored

# --- helpers for the checks -------------------------------------------------------------------
# run NAME: starts NAME.service and waits for it; shows its status when it fails.
run() {
  systemctl start "$1.service" || { systemctl status --no-pager -n 20 "$1.service"; return 1; }
}
# outcome NAME ATTEMPT ok|fail: NAME's last run recorded ATTEMPT with that outcome; otherwise
# shows what it recorded and the attempt's output.
outcome() {
  grep -qx "$2 $3" "/run/armortest/$1.result" 2>/dev/null && return 0
  echo "$1: $2 recorded '$(sed -n "s/^$2 //p" "/run/armortest/$1.result" 2>/dev/null)', expected '$3'; its output:"
  awk -v t="== $2" '$0 == t { p = 1; next } /^== / { p = 0 } p' "/run/armortest/$1.log" 2>/dev/null
  return 1
}
# denied NAME ATTEMPT WHAT: ATTEMPT failed in the armored NAME and worked in NAME-twin.
denied() {
  check "[$3] denied in $1" outcome "$1" "$2" fail
  check "[$3] works in $1-twin" outcome "$1-twin" "$2" ok
}
# allowed NAME ATTEMPT WHAT: ATTEMPT still works in the armored NAME.
allowed() {
  check "[$3] still works in armored $1" outcome "$1" "$2" ok
}
# logged NAME FIELD=VALUE: journalctl -u NAME.service has a record with that field (records
# arrive asynchronously); otherwise shows the unitarmor fields it has.
has_field() { journalctl -u "$1.service" -o export | grep -aqxF "$2"; }
logged_field() {
  eventually has_field "$1" "$2" && return 0
  echo "no $2 in journalctl -u $1.service; its unitarmor records have:"
  journalctl -u "$1.service" -o export | grep -aE '^UNITARMOR_(PROTECTION|RULE|OPERATION|PATH)=' | sort | uniq -c
  return 1
}
logged() {
  check "[$1] journalctl -u $1.service has $2" logged_field "$1" "$2"
}
# has_record NAME FIELD=VALUE...: one record of journalctl -u NAME.service has every
# FIELD=VALUE (a VALUE ending in * stands for every value that starts with the rest). Records are
# separated by empty lines in the export format.
# unit_records NAME: the journal records of NAME.service, one paragraph of FIELD=value lines
# each. From -o verbose, where a record starts at an unindented line: -o export cannot be split
# on blank lines, since binary fields' lengths may contain newline bytes.
unit_records() {
  journalctl -u "$1.service" -o verbose | awk '
    /^[^ ]/ { if (NR > 1) print ""; next }
    { sub(/^    /, ""); print }'
}
has_record() {
  local unit=$1
  shift
  unit_records "$unit" | WANT=$(printf '%s\n' "$@") awk '
    BEGIN { RS = ""; n = split(ENVIRON["WANT"], want, "\n"); found = 0 }
    {
      m = split($0, line, "\n")
      for (i = 1; i <= n; i++) {
        w = want[i]
        prefix = substr(w, length(w)) == "*"
        if (prefix) w = substr(w, 1, length(w) - 1)
        hit = 0
        for (j = 1; j <= m && !hit; j++)
          hit = prefix ? index(line[j], w) == 1 : line[j] == w
        if (!hit) next
      }
      found = 1
      exit
    }
    END { exit !found }'
}
# records_of NAME: the unitarmor records of journalctl -u NAME.service, one line each, counted.
records_of() {
  unit_records "$1" | awk '
    BEGIN { RS = "" }
    {
      m = split($0, line, "\n")
      s = ""
      for (j = 1; j <= m; j++)
        if (line[j] ~ /^UNITARMOR_(PROTECTION|RULE|OPERATION|PATH|COMM|EXE)=/) s = s " " line[j]
      if (s != "") print substr(s, 2)
    }' | sort | uniq -c
}
logged_record_fields() {
  eventually has_record "$@" && return 0
  local unit=$1
  shift
  echo "no record with $* in journalctl -u $unit.service; its unitarmor records are:"
  records_of "$unit"
  return 1
}
# logged_record NAME FIELD=VALUE...: as logged, for fields that must be in one record (another
# attempt in the same unit may log the same protection or rule).
logged_record() {
  local unit=$1
  shift
  check "[$unit] journalctl -u $unit.service has one record with $*" logged_record_fields "$unit" "$@"
}
