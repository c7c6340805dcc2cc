#!/bin/bash
# Self-protection (issue 9): root inside an armored unit cannot get out, switch its armor off or
# walk around a rule. Every route is tried as root from an armored unit (a oneshot service with
# an [X-Armor] drop-in holding at least one ordinary rule), where it must fail and be logged in
# `journalctl -u UNIT` (UNITARMOR_PROTECTION=<name> for an implicit protection,
# UNITARMOR_RULE=<rule> for an ordinary rule), and from its unarmored twin (the same unit text,
# no drop-in), where it must work: a route that fails everywhere proves nothing.
# Run in the guest by tests/vm/run (through suite.sh).
#
# Each unit runs one of the attempt scripts written below with its own name (%N) as argument;
# the script records "ATTEMPT ok" or "ATTEMPT fail" per attempt in /run/armortest/NAME.result
# and each attempt's output in /run/armortest/NAME.log, which a failing check prints.
. ./lib.sh
. ./protect-setup.sh

# --- 2. unit files, named policies, kernel settings, places root runs later ------------------
made_cron_d=
[ -d /etc/cron.d ] || { mkdir /etc/cron.d; made_cron_d=1; }
made_attached=
[ -d /run/systemd/system.attached ] || made_attached=1
core_before=$(cat /proc/sys/kernel/core_pattern)
check "[runs-as-root] /dev/mem is the character device 1:1" \
  test "$(stat -c '%F %t:%T' /dev/mem 2>&1)" = "character special file 1:1"
check "[runs-as-root] /dev/vda (the root disk) is a block device" test -b /dev/vda
check "armor-p-files runs" run armor-p-files
check "armor-p-files-twin runs" run armor-p-files-twin
denied armor-p-files user-unit "unit-files: plant a unit in a user's ~/.config/systemd/user/ (the user manager starts it, unarmored)"
check "unit-files: the armored unit planted no user unit" \
  test ! -e /home/armortest-user/.config/systemd/user/default.target.wants/armortest-planted-armor-p-files.service
denied armor-p-files attached-dropin "unit-files: mkdir -p /run/systemd/system.attached/UNIT.service.d, write zz.conf there"
denied armor-p-files usr-local-bin "runs-as-root: write /usr/local/bin/armortest-planted-UNIT"
denied armor-p-files dev-mem "runs-as-root: open /dev/mem read-only"
denied armor-p-files block-device "runs-as-root: open the root disk /dev/vda read-only"
denied armor-p-files kcore "runs-as-root: open /proc/kcore (all memory, page cache included) read-only"
denied armor-p-files own-dropin "unit-files: write /etc/systemd/system/UNIT.d/zz-off.conf with ArmorMode=off"
denied armor-p-files planted-unit "unit-files: write a unit into /run/systemd/system/"
denied armor-p-files policy-file "unit-files: write /etc/unitarmor/policies/armortest-UNIT.toml"
denied armor-p-files bpffs-mkdir "kernel-settings: mkdir /sys/fs/bpf/armortest-UNIT"
denied armor-p-files core-pattern "kernel-settings: write /proc/sys/kernel/core_pattern (its own value back)"
denied armor-p-files cron-file "runs-as-root: write /etc/cron.d/armortest-UNIT"
denied armor-p-files top-lib "runs-as-root: mkdir /libx32 (a top-level library directory)"
check "unit-files: the armored unit's drop-in directory has no zz-off.conf" \
  test ! -e /etc/systemd/system/armor-p-files.service.d/zz-off.conf
check "unit-files: /run/systemd/system.attached has no drop-in of the armored unit" \
  test ! -e /run/systemd/system.attached/armor-p-files.service.d/zz.conf
check "runs-as-root: the armored unit planted nothing in /usr/local/bin" \
  test ! -e /usr/local/bin/armortest-planted-armor-p-files
logged armor-p-files UNITARMOR_PROTECTION=unit-files
logged armor-p-files UNITARMOR_PROTECTION=kernel-settings
logged armor-p-files UNITARMOR_PROTECTION=runs-as-root
# cron-file, usr-local-bin, dev-mem and block-device all log runs-as-root: each its own record.
logged_record armor-p-files UNITARMOR_PROTECTION=unit-files "UNITARMOR_PATH=/run/systemd/system.attached*"
logged_record armor-p-files UNITARMOR_PROTECTION=runs-as-root UNITARMOR_OPERATION=create \
  UNITARMOR_PATH=/usr/local/bin/armortest-planted-armor-p-files
logged_record armor-p-files UNITARMOR_PROTECTION=runs-as-root UNITARMOR_OPERATION=open-raw-device \
  UNITARMOR_PATH=/dev/mem
logged_record armor-p-files UNITARMOR_PROTECTION=runs-as-root UNITARMOR_OPERATION=open-raw-device \
  UNITARMOR_PATH=/dev/vda
logged_record armor-p-files UNITARMOR_PROTECTION=runs-as-root UNITARMOR_OPERATION=open-raw-device \
  UNITARMOR_PATH=/proc/kcore
# Disk passthrough with run-time majors: NVMe namespaces and controllers, SCSI bsg.
# passthrough_dev DEV NAME: DEV is a character device whose major /proc/devices gives to NAME.
passthrough_dev() {
  local major
  major=$(awk -v n="$2" '/^Character devices:/ { c = 1; next } /:$/ { c = 0 } c && $2 == n { print $1 }' /proc/devices)
  [ -c "$1" ] && [ -n "$major" ] && [ "$(stat -c %t "$1")" = "$(printf %x "$major")" ] && return 0
  echo "$1: $(stat -c '%F %t:%T' "$1" 2>&1); /proc/devices gives $2 major '${major}'"
  return 1
}
# raw_marker NAME ATTEMPT: NAME's ATTEMPT read the guest's passthrough disks' block 0.
raw_marker() {
  awk -v t="== $2" '$0 == t { p = 1; next } /^== / { p = 0 } p' "/run/armortest/$1.log" |
    grep -q 'block 0: armortest-raw-disk$'
}
passthrough_devices() {
  check "[runs-as-root] /dev/ng0n1 is an NVMe namespace's passthrough device (nvme-generic)" \
    passthrough_dev /dev/ng0n1 nvme-generic
  check "[runs-as-root] /dev/nvme0 is an NVMe controller (nvme)" passthrough_dev /dev/nvme0 nvme
  check "[runs-as-root] /dev/bsg/ has the SCSI disk's passthrough device (bsg)" \
    passthrough_dev "$(ls -d /dev/bsg/* | head -n 1)" bsg
  check "armor-p-devices runs" run armor-p-devices
  check "armor-p-devices-twin runs" run armor-p-devices-twin
  denied armor-p-devices nvme-generic "runs-as-root: read block 0 by NVMe passthrough on /dev/ng0n1 $1"
  denied armor-p-devices nvme-controller "runs-as-root: read block 0 by NVMe passthrough on /dev/nvme0 $1"
  denied armor-p-devices bsg "runs-as-root: read block 0 by SCSI passthrough (SG_IO) on /dev/bsg/... $1"
  check "[runs-as-root] the twin read the NVMe namespace's block 0 $1" raw_marker armor-p-devices-twin nvme-generic
  check "[runs-as-root] the twin read the NVMe controller's namespace's block 0 $1" raw_marker armor-p-devices-twin nvme-controller
  check "[runs-as-root] the twin read the SCSI disk's block 0 $1" raw_marker armor-p-devices-twin bsg
}
passthrough_devices "(drivers loaded before the daemon)"
for d in /dev/mapper/control /dev/snapshot /dev/btrfs-control; do
  check "[runs-as-root] $d is a character device" test -c $d
done
denied armor-p-devices mapper-control "runs-as-root: open /dev/mapper/control (device-mapper tables point a volume at any sector)"
denied armor-p-devices snapshot "runs-as-root: open /dev/snapshot (the hibernation image: all memory)"
denied armor-p-devices btrfs-control "runs-as-root: open /dev/btrfs-control"
denied armor-p-devices pm-async "kernel-settings: write /sys/power/pm_async (its own value back)"
denied armor-p-devices drivers-autoprobe "kernel-settings: write /sys/bus/pci/drivers_autoprobe (its own value back)"
logged_record armor-p-devices UNITARMOR_PROTECTION=kernel-settings UNITARMOR_PATH=/sys/power/pm_async
logged_record armor-p-devices UNITARMOR_PROTECTION=runs-as-root UNITARMOR_OPERATION=open-raw-device \
  UNITARMOR_PATH=/dev/ng0n1
logged_record armor-p-devices UNITARMOR_PROTECTION=runs-as-root UNITARMOR_OPERATION=open-raw-device \
  UNITARMOR_PATH=/dev/nvme0
logged_record armor-p-devices UNITARMOR_PROTECTION=runs-as-root UNITARMOR_OPERATION=open-raw-device \
  "UNITARMOR_PATH=/dev/bsg/*"

# Netlink messages whose handlers ask for CAP_SYS_ADMIN (runs-as-root).
if modinfo nbd >/dev/null 2>&1; then
  check "[runs-as-root] the nbd module loads" modprobe nbd
  nbd=1
else
  echo "# nbd is not in this kernel: no NBD check here"
  nbd=
fi
check "[kernel-settings] the sunrpc module loads (nfsd's export tables)" modprobe sunrpc
check "armor-p-netlink runs" run armor-p-netlink
check "armor-p-netlink-twin runs" run armor-p-netlink-twin
denied armor-p-netlink uevent "runs-as-root: send a uevent that udev takes for the kernel's"
[ -z "$nbd" ] ||
  denied armor-p-netlink nbd "runs-as-root: connect a network block device to its own socket (NBD_CMD_CONNECT)"
denied armor-p-netlink sys-uevent "kernel-settings: write change to /sys/devices/virtual/net/lo/uevent (a synthetic uevent)"
logged_record armor-p-netlink UNITARMOR_PROTECTION=kernel-settings UNITARMOR_PATH=/sys/devices/virtual/net/lo/uevent
denied armor-p-netlink multicast "bus: send to the uevent family's multicast group 2 (udevd's, which PID 1 listens to)"
logged_record armor-p-netlink UNITARMOR_PROTECTION=bus UNITARMOR_OPERATION=netlink-multicast
denied armor-p-netlink nfsd-export "kernel-settings: open nfsd's export table /proc/net/rpc/auth.unix.ip/channel for writing"
allowed armor-p-netlink rtnetlink "runs-as-root: rtnetlink (ip link show)"
allowed armor-p-netlink unshare-uts "runs-as-root: CAP_SYS_ADMIN outside a netlink message (unshare --uts)"
logged_record armor-p-netlink UNITARMOR_PROTECTION=runs-as-root UNITARMOR_OPERATION=netlink-admin
[ -z "$nbd" ] || modprobe -r nbd

# Through systemd's own set-up: at its last run the service left a symlink where its
# StandardOutput=append: file goes. The set-up opens it as root at the next start.
for u in armor-p-stdout armor-p-stdout-twin; do ln -sfn /etc/cron.d/$u /run/armortest/$u.out; done
check_fails "[runs-as-root: the set-up appends output through a symlink into /etc/cron.d/] denied in armor-p-stdout" \
  systemctl start armor-p-stdout.service
check "[runs-as-root: the set-up through a symlink] nothing was made in /etc/cron.d/" \
  test ! -e /etc/cron.d/armor-p-stdout
check "[runs-as-root: the set-up through a symlink] works in armor-p-stdout-twin" \
  systemctl start armor-p-stdout-twin.service
check "[runs-as-root: the set-up through a symlink] the twin's line is in /etc/cron.d/" \
  grep -qx armortest-stdout-line /etc/cron.d/armor-p-stdout-twin
logged_record armor-p-stdout UNITARMOR_PROTECTION=runs-as-root UNITARMOR_PATH=/etc/cron.d/armor-p-stdout
rm -f /etc/cron.d/armor-p-stdout* /run/armortest/armor-p-stdout*.out

rm -rf /home/armortest-user /etc/systemd/system/armor-p-files-twin.service.d /run/systemd/system.attached/armor-p-files*.service.d
rm -f /etc/systemd/system/armor-p-files.service.d/zz-off.conf /run/systemd/system/armortest-planted-* \
  /etc/unitarmor/policies/armortest-* /etc/cron.d/armortest-* /usr/local/bin/armortest-planted-*
rmdir /sys/fs/bpf/armortest-* 2>/dev/null
[ -z "$made_cron_d" ] || rmdir /etc/cron.d
[ -z "$made_attached" ] || rmdir /run/systemd/system.attached 2>/dev/null
printf '%s\n' "$core_before" >/proc/sys/kernel/core_pattern

# --- 3. leaving the cgroup ----------------------------------------------------------------------
mkdir /sys/fs/cgroup/armortest-free
mkdir -p /run/armortest/cgroup-v1
check "a named cgroup v1 hierarchy mounts (as on a host booted with v1)" \
  mount -t cgroup -o none,name=armortest cgroup /run/armortest/cgroup-v1
check "armor-p-cgroup runs" run armor-p-cgroup
check "armor-p-cgroup-twin runs" run armor-p-cgroup-twin
denied armor-p-cgroup cgroup-procs "cgroups: write its PID to /sys/fs/cgroup/armortest-free/cgroup.procs"
denied armor-p-cgroup cgroup-mkdir "cgroups: mkdir /sys/fs/cgroup/armortest-other-UNIT"
denied armor-p-cgroup clone-into-cgroup "cgroups: clone3(CLONE_INTO_CGROUP) into /sys/fs/cgroup/armortest-free"
denied armor-p-cgroup own-limit "cgroups: write its own cgroup's cgroup.max.descendants"
denied armor-p-cgroup sub-cgroups "cgroups: create 1,100 sub-cgroups (the budget is 1,024)"
denied armor-p-cgroup cgroup1-release-agent "cgroups: set a cgroup v1 hierarchy's release_agent"
logged_record armor-p-cgroup UNITARMOR_OPERATION=cgroup-write UNITARMOR_PATH=release_agent
umount /run/armortest/cgroup-v1 || echo "# could not unmount the cgroup v1 hierarchy"
# made UNIT N: UNIT's attempt created exactly N sub-cgroups (or says how many it did).
made() { grep -qx "created $2" "/run/armortest/$1.log" || { grep '^created' "/run/armortest/$1.log"; return 1; }; }
check "[cgroups: the armored unit made exactly its budget of 1,024 sub-cgroups]" made armor-p-cgroup 1024
check "[cgroups: the twin made all 1,100]" made armor-p-cgroup-twin 1100
allowed armor-p-cgroup sub-cgroup-again "cgroups: removing its sub-cgroups gave the budget back"
logged armor-p-cgroup UNITARMOR_PROTECTION=cgroups
logged_record armor-p-cgroup UNITARMOR_PROTECTION=cgroups UNITARMOR_PATH=cgroup.max.descendants
logged_record armor-p-cgroup UNITARMOR_OPERATION=mkdir \
  "UNITARMOR_RULE=the unit has used up its budget of 1024 cgroups*"
# The clone3 attempt is the only one the escape helper makes in this unit.
logged armor-p-cgroup UNITARMOR_COMM=escape
eventually rmdir /sys/fs/cgroup/armortest-free 2>/dev/null || echo "# could not remove /sys/fs/cgroup/armortest-free"
rmdir /sys/fs/cgroup/armortest-other-* 2>/dev/null

check "armor-p-deleg (Delegate=yes) runs" run armor-p-deleg
allowed armor-p-deleg own-subcgroup "cgroups: a Delegate=yes unit creates a sub-cgroup and moves itself into it"
check "[cgroups: in that sub-cgroup, the read its policy denies] stays denied" outcome armor-p-deleg read-secret fail

# --- 4. disarming the kernel side ---------------------------------------------------------------
# Each unit of the pair gets a bpffs of its own to unmount; only the armored one also tries the
# real pins and /sys/fs/bpf.
for n in armor-p-bpf armor-p-bpf-twin; do
  mkdir -p /run/armortest/bpffs-$n
  mount -t bpf bpf /run/armortest/bpffs-$n
done
check "armor-p-bpf runs" run armor-p-bpf
check "armor-p-bpf-twin runs" run armor-p-bpf-twin
denied armor-p-bpf bpftool-prog "bpf: bpftool prog show"
denied armor-p-bpf bpftool-map "bpf: bpftool map show"
denied armor-p-bpf umount-bpffs-copy "mount: umount /run/armortest/bpffs-UNIT"
check "[kernel-settings: rm /sys/fs/bpf/unitarmor/links/file_open] denied in armor-p-bpf" outcome armor-p-bpf rm-pin fail
check "[kernel-settings: the file_open pin] is still there" test -e /sys/fs/bpf/unitarmor/links/file_open
check "[mount: umount /sys/fs/bpf] denied in armor-p-bpf" outcome armor-p-bpf umount-bpffs fail
check "[mount: /sys/fs/bpf] is still mounted" mountpoint -q /sys/fs/bpf
logged armor-p-bpf UNITARMOR_PROTECTION=bpf
logged armor-p-bpf UNITARMOR_PROTECTION=mount
logged armor-p-bpf UNITARMOR_PROTECTION=kernel-settings
for n in armor-p-bpf armor-p-bpf-twin; do
  mountpoint -q /run/armortest/bpffs-$n && umount /run/armortest/bpffs-$n
  rmdir /run/armortest/bpffs-$n
done
# Had the armored unit got through, the guest would now be disarmed: arm it again, so that the
# routes below still say something of their own.
if ! mountpoint -q /sys/fs/bpf || [ ! -e /sys/fs/bpf/unitarmor/links/file_open ]; then
  echo "# the armored unit disarmed the guest; restarting unitarmor.service"
  mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
  systemctl restart unitarmor.service
  for u in "${ARMORED[@]}"; do wait_rules "${u%%:*}.service" "${u##*:}"; done
fi

# --- 5. stopping the watcher ------------------------------------------------------------------------
systemctl show -P MainPID unitarmor.service >/run/armortest/daemon.pid
check "the daemon's PID is known" test "$(cat /run/armortest/daemon.pid)" -gt 1
daemon=$(cat /run/armortest/daemon.pid)
prlimit --pid "$daemon" --core --raw --noheadings -o SOFT,HARD | awk '{ print $1 ":" $2 }' \
  >/run/armortest/daemon.core
check "the daemon's core limit is known" grep -qx '[0-9a-z]*:[0-9a-z]*' /run/armortest/daemon.core
daemon_oom=$(cat "/proc/$daemon/oom_score_adj")
daemon_status=$(systemctl show -P StatusText unitarmor.service)
nice_of() { ps -o ni= -p "$1" | tr -d ' '; }
daemon_nice=$(nice_of "$daemon")
check "armor-p-signal runs" run armor-p-signal
check "[signal: renice] the daemon's nice value is still $daemon_nice after armor-p-signal" \
  test "$(nice_of "$daemon")" = "$daemon_nice"
check "[ptrace: /proc/PID/oom_score_adj] the daemon's is still $daemon_oom after armor-p-signal" \
  test "$(cat "/proc/$daemon/oom_score_adj")" = "$daemon_oom"
check "[signal: claim the daemon's pid] unitarmor.service's status text is not armor-p-signal's" \
  test "$(systemctl show -P StatusText unitarmor.service)" != "armortest claimed by armor-p-signal"
check "[signal: sendmmsg claiming the daemon's pid] unitarmor.service's StatusErrno is not 77" \
  test "$(systemctl show -P StatusErrno unitarmor.service)" != 77
check "armor-p-signal-twin runs" run armor-p-signal-twin
check "[ptrace: /proc/PID/oom_score_adj] armor-p-signal-twin set the daemon's to 500" \
  test "$(cat "/proc/$daemon/oom_score_adj")" = 500
echo "$daemon_oom" >"/proc/$daemon/oom_score_adj"
check "[signal: claim the daemon's pid] armor-p-signal-twin set unitarmor.service's status text" \
  test "$(systemctl show -P StatusText unitarmor.service)" = "armortest claimed by armor-p-signal-twin"
check "[signal: sendmmsg claiming the daemon's pid] armor-p-signal-twin set its StatusErrno to 77" \
  test "$(systemctl show -P StatusErrno unitarmor.service)" = 77
NOTIFY_SOCKET=/run/systemd/notify systemd-notify --pid="$daemon" "STATUS=$daemon_status" ERRNO=0
check "[signal: renice] armor-p-signal-twin set the daemon's nice value to 5" test "$(nice_of "$daemon")" = 5
renice -n "$daemon_nice" -p "$daemon" >/dev/null
denied armor-p-signal signal-daemon "signal: kill -CONT to unitarmor's daemon"
denied armor-p-signal signal-pid1 "signal: kill -CONT 1"
denied armor-p-signal renice-daemon "signal: renice -n 5 -p DAEMON (its priority)"
denied armor-p-signal environ-pid1 "ptrace: read /proc/1/environ"
denied armor-p-signal environ-daemon "ptrace: read /proc/DAEMON/environ"
allowed armor-p-signal own-child "signal: kill its own child (sleep 100 & kill \$!)"
allowed armor-p-signal own-environ "ptrace: read its own /proc/self/environ"
denied armor-p-signal prlimit-daemon "signal: prlimit --pid DAEMON --core=(its own value)"
denied armor-p-signal oom-daemon "ptrace: echo 500 >/proc/DAEMON/oom_score_adj"
# claim-daemon is judged by its effect on unitarmor.service's status text (above): refused,
# systemd-notify sends the message again in its own name and succeeds.
denied armor-p-signal sendmmsg-daemon "signal: sendmmsg, the second message claiming DAEMON's pid"
allowed armor-p-signal prlimit-parent "signal: prlimit --pid \$\$ (its own shell) --core=0:0"
allowed armor-p-signal prlimit-child "signal: prlimit --pid CHILD (its own child) --core=0:0"
allowed armor-p-signal oom-self "ptrace: echo 100 >/proc/self/oom_score_adj"
allowed armor-p-signal claim-parent "signal: systemd-notify --pid=\$\$ (its own shell)"
logged armor-p-signal UNITARMOR_PROTECTION=signal
logged armor-p-signal UNITARMOR_PROTECTION=ptrace
logged_record armor-p-signal UNITARMOR_PROTECTION=signal UNITARMOR_OPERATION=set-priority
logged_record armor-p-signal UNITARMOR_PROTECTION=signal UNITARMOR_OPERATION=set-limits
logged_record armor-p-signal UNITARMOR_PROTECTION=signal UNITARMOR_OPERATION=claim-pid \
  "UNITARMOR_TARGET_PID=$daemon"
logged_record armor-p-signal UNITARMOR_PROTECTION=signal UNITARMOR_OPERATION=sendmmsg
logged_record armor-p-signal UNITARMOR_PROTECTION=ptrace UNITARMOR_OPERATION=open \
  "UNITARMOR_PATH=/proc/$daemon/oom_score_adj"
check "the daemon is still the same process" test "$(systemctl show -P MainPID unitarmor.service)" = "$(cat /run/armortest/daemon.pid)"

# --- 6. new roots and namespaces ---------------------------------------------------------------------
check "armor-p-ns runs" run armor-p-ns
check "armor-p-ns-twin runs" run armor-p-ns-twin
denied armor-p-ns chroot-read "chroot /srv/armortest, then read /secret (perl)"
denied armor-p-ns bind-mount "mount: unshare -m, mount --bind /srv/armortest /mnt, cat /mnt/secret"
denied armor-p-ns userns "userns: unshare -U true"
logged armor-p-ns "UNITARMOR_RULE=$secret_rule"
logged armor-p-ns UNITARMOR_PROTECTION=mount
logged armor-p-ns UNITARMOR_PROTECTION=userns

check "armor-p-mountattr runs" run armor-p-mountattr
check "armor-p-mountattr-twin runs" run armor-p-mountattr-twin
denied armor-p-mountattr mount-rw "mount: mount_setattr clears ReadOnlyPaths='s read-only flag, then a write there"
denied armor-p-mountattr fspick "mount: fspick / (reconfiguring the root file system)"
denied armor-p-mountattr fsopen "mount: fsopen tmpfs (a file system context of its own)"
check "[mount: mount_setattr] the armored unit wrote nothing under its read-only path" \
  test ! -e /srv/armortest/ro/rw-armor-p-mountattr
check "[mount: mount_setattr] the twin did" test -e /srv/armortest/ro/rw-armor-p-mountattr-twin
logged_record armor-p-mountattr UNITARMOR_PROTECTION=mount UNITARMOR_OPERATION=mount-api
rm -f /srv/armortest/ro/rw-*

check "armor-p-sandbox (PrivateTmp=, ProtectSystem=strict, PrivateDevices=) starts" run armor-p-sandbox
allowed armor-p-sandbox runs "sandboxing: systemd's own set-up inside the armored unit"
allowed armor-p-sandbox private-tmp "sandboxing: its private /tmp"
check "[sandboxing: the read its policy denies] stays denied in armor-p-sandbox" outcome armor-p-sandbox read-secret fail
check "armor-p-privusers (PrivateUsers=, PrivateTmp=) starts" run armor-p-privusers
allowed armor-p-privusers runs "sandboxing: systemd's own user namespace inside the armored unit"
check "[sandboxing: the read its policy denies] stays denied in armor-p-privusers" outcome armor-p-privusers read-secret fail
check "armor-p-rootdir (RootDirectory=, BindReadOnlyPaths=/usr) starts" run armor-p-rootdir
check "[sandboxing: RootDirectory=] the armored unit reads /free in its root" \
  grep -qx free /run/armortest/armor-p-rootdir.out
check "[sandboxing: RootDirectory=] its read of /secret is refused" \
  grep -qx secret-refused /run/armortest/armor-p-rootdir.out
check "armor-p-rootdir-twin starts" run armor-p-rootdir-twin
check "[sandboxing: RootDirectory=] the twin reads /secret" grep -qx "$SECRET" /run/armortest/armor-p-rootdir-twin.out
rootdir_path() { unit_records armor-p-rootdir | sed -n 's/^UNITARMOR_PATH=//p' | grep secret | head -n 1; }
check "[sandboxing: RootDirectory=] the denial is in journalctl -u armor-p-rootdir.service" eventually rootdir_path
echo "# under RootDirectory=, the kernel named the secret $(rootdir_path)"

# --- 7. other names for the same file -------------------------------------------------------------
# The handle is taken outside the unit, then the dentry cache is dropped, so that
# open_by_handle_at in the unit gets a disconnected dentry (a path that cannot be built).
save_handle() {
  "$A/escape" handle-save /srv/armortest/secret /run/armortest/secret.handle &&
    sync && echo 2 >/proc/sys/vm/drop_caches
}
tree_intact() {
  test -e /srv/armortest/secret && test -e /srv/armortest/dir/inner && test ! -e /srv/armortest/hl &&
    test ! -e /srv/armortest/moved && test ! -e /srv/armortest/dir2
}
# The directory exchange-read swaps with /srv/armortest: it must be on the same mount.
swap=/var/tmp/armortest-x
[ "$(stat -c '%d %m' /var/tmp)" = "$(stat -c '%d %m' /srv/armortest)" ] || swap=/srv/armortest-swap
echo "$swap" >/run/armortest/swap
rm -rf "$swap"
mkdir "$swap"
swap_empty() { test -d "$swap" && test -z "$(ls -A "$swap")"; }
reset_tree
save_handle
check "armor-p-names runs" run armor-p-names
check "[other names] the secret and dir/inner are where they were, with no new name" tree_intact
check "[other names: RENAME_EXCHANGE] $swap is still empty after armor-p-names" swap_empty
reset_tree
save_handle
check "armor-p-names-twin runs" run armor-p-names-twin
check "[other names: RENAME_EXCHANGE] armor-p-names-twin exchanged $swap and /srv/armortest back" swap_empty
reset_tree
rm -rf "$swap"
denied armor-p-names by-handle "unbuildable: open_by_handle_at of the secret after drop_caches, then read"
denied armor-p-names exchange-read "other names: renameat2(RENAME_EXCHANGE) of $swap and /srv/armortest, then read $swap/secret"
denied armor-p-names hardlink "other names: ln /srv/armortest/secret /srv/armortest/hl"
denied armor-p-names rename-file "other names: mv /srv/armortest/secret /srv/armortest/moved"
denied armor-p-names rename-dir "other names: mv /srv/armortest/dir /srv/armortest/dir2 (dir/inner has a rule)"
allowed armor-p-names rename-free "other names: mv /srv/armortest/free /srv/armortest/free2 (no rule)"
allowed armor-p-names dev-stdout "pseudo files: echo hi > /dev/stdout on a pipe, with write rules"
# A link or rename that would change which rules cover a file is refused as such; a file
# reached through a handle whose path cannot be built is refused as unbuildable.
logged armor-p-names "UNITARMOR_RULE=renaming or linking it would change which rules cover it"
logged armor-p-names "UNITARMOR_OPERATION=rename"
logged armor-p-names "UNITARMOR_OPERATION=link"
logged armor-p-names "UNITARMOR_RULE=its path cannot be built (a detached or disconnected tree, or too long), so every class with rules refuses it"
# The open_by_handle_at attempt is the only open the escape helper makes in this unit (its
# record names the rule, or says the path cannot be built when the dentry was disconnected).
logged_record armor-p-names UNITARMOR_COMM=escape UNITARMOR_OPERATION=open
# The exchange is the only rename the escape helper makes in this unit.
logged_record armor-p-names "UNITARMOR_RULE=renaming or linking it would change which rules cover it" \
  UNITARMOR_OPERATION=rename UNITARMOR_COMM=escape

# --- 8. code that is not an exec ------------------------------------------------------------------
check "armor-p-ldso runs" run armor-p-ldso
check "armor-p-ldso-twin runs" run armor-p-ldso-twin
denied armor-p-ldso ldso-id "exec: /lib64/ld-linux-x86-64.so.2 /usr/bin/id under deny exec /usr/bin/id"
logged armor-p-ldso "UNITARMOR_RULE=deny exec /usr/bin/id"
check "armor-p-xlist (exec allow-list /usr/bin/** /usr/lib/** /usr/lib64/**) starts" run armor-p-xlist
check "armor-p-xlist-twin runs" run armor-p-xlist-twin
allowed armor-p-xlist id "exec allow-list: /usr/bin/id"
denied armor-p-xlist id-copy "exec allow-list: a copy of /usr/bin/id at $A/id-copy"
denied armor-p-xlist ldso-id-copy "exec allow-list: ld.so $A/id-copy"
logged armor-p-xlist "UNITARMOR_PATH=$A/id-copy"

# --- 9. kernel code -----------------------------------------------------------------------------
check "[modules] dummy is a loadable module of this kernel" sh -c 'modinfo -F filename dummy | grep -q "\.ko"'
if grep -q '^dummy ' /proc/modules; then rmmod dummy; fi
check "armor-p-modules runs" run armor-p-modules
check "[modules: modprobe dummy] did not load it from armor-p-modules" sh -c '! grep -q "^dummy " /proc/modules'
check "armor-p-modules-twin runs" run armor-p-modules-twin
denied armor-p-modules modprobe "modules: modprobe dummy"
check "[modules: modprobe dummy] loaded it from armor-p-modules-twin" grep -q '^dummy ' /proc/modules
logged armor-p-modules UNITARMOR_PROTECTION=modules
if grep -q '^dummy ' /proc/modules; then rmmod dummy; fi

# --- 7. other names: a btrfs snapshot of the subvolume that holds a file with a read rule ---
btrfs_fs() {
  truncate -s 256M /var/tmp/btrfs.img && mkfs.btrfs -q -f /var/tmp/btrfs.img >/dev/null &&
    mkdir -p $A/btrfs && mount -o loop /var/tmp/btrfs.img $A/btrfs &&
    btrfs -q subvolume create $A/btrfs/vol && echo secret >$A/btrfs/vol/secret
}
check "a btrfs file system with a subvolume is mounted at $A/btrfs" btrfs_fs
check "armor-p-btrfs runs" run armor-p-btrfs
check "armor-p-btrfs-twin runs" run armor-p-btrfs-twin
denied armor-p-btrfs snapshot-read "mount: btrfs subvolume snapshot, then read the secret there"
denied armor-p-btrfs tree-search "runs-as-root: BTRFS_IOC_TREE_SEARCH for the secret's inline extent (its contents, never opened)"
logged_record armor-p-btrfs UNITARMOR_PROTECTION=runs-as-root UNITARMOR_OPERATION=btrfs-raw
check "[mount: btrfs snapshot] made no snapshot for the armored unit" test ! -e $A/btrfs/snap-armor-p-btrfs
logged armor-p-btrfs UNITARMOR_PROTECTION=mount
umount $A/btrfs

# --- 10. writes that are not opens ---------------------------------------------------------------
mkdir -p $A/xattr
for n in armor-p-xattr armor-p-xattr-twin; do
  echo x >$A/xattr/$n
  echo x >$A/xattr/$n.pre
  "$A/escape" setxattr $A/xattr/$n.pre security.armortest v
done
# An XFS file system: XFS_IOC_ATTRMULTI_BY_HANDLE sets xattrs with no xattr hook called.
xfs_fs() {
  truncate -s 320M /var/tmp/xfs.img && mkfs.xfs -q -f /var/tmp/xfs.img && mkdir -p $A/xfs &&
    mount -o loop /var/tmp/xfs.img $A/xfs && touch $A/xfs/armor-p-xattr $A/xfs/armor-p-xattr-twin
}
check "an XFS file system is mounted at $A/xfs" xfs_fs
check "armor-p-xattr runs" run armor-p-xattr
check "armor-p-xattr-twin runs" run armor-p-xattr-twin
denied armor-p-xattr set-security "xattr: setxattr security.armortest"
denied armor-p-xattr remove-security "xattr: removexattr security.armortest"
allowed armor-p-xattr set-user "xattr: setxattr user.armortest (not refused by the protection)"
denied armor-p-xattr set-immutable "xattr: FS_IOC_SETFLAGS +i (chattr +i)"
check "[xattr: FS_IOC_SETFLAGS +i] made the twin's file immutable" "$A/escape" immutable $A/xattr/armor-p-xattr-twin
check "[xattr: FS_IOC_SETFLAGS +i] left the armored unit's file mutable" sh -c "! $A/escape immutable $A/xattr/armor-p-xattr"
denied armor-p-xattr xfs-attrmulti "xattr: XFS_IOC_ATTRMULTI_BY_HANDLE sets user.armortest"
check "[xattr: XFS_IOC_ATTRMULTI_BY_HANDLE] the twin's file has the attribute" \
  "$A/escape" getxattr $A/xfs/armor-p-xattr-twin user.armortest
check "[xattr: XFS_IOC_ATTRMULTI_BY_HANDLE] the armored unit's file has none" sh -c \
  "! $A/escape getxattr $A/xfs/armor-p-xattr user.armortest"
logged armor-p-xattr UNITARMOR_PROTECTION=xattr
umount $A/xfs
for n in armor-p-xattr armor-p-xattr-twin; do "$A/escape" setflags $A/xattr/$n -i; done
rm -rf $A/xattr

# --- 1. the service manager and the bus (last: its twin runs systemctl daemon-reload) -----------
check "[bus: what services need] a Type=notify armored unit starts with systemd-notify --ready" run armor-p-notify
systemctl stop armor-p-notify.service
abstract_listening() { grep -q " @$1\$" /proc/net/unix; }
check "[bus: abstract sockets] the unarmored armor-p-listener starts" systemctl start armor-p-listener.service
check "[bus: abstract sockets] armor-p-listener listens on @armortest-listen" eventually abstract_listening armortest-listen
check "armor-p-bus runs" run armor-p-bus
check "armor-p-bus-twin runs" run armor-p-bus-twin
systemctl stop armor-p-listener.service
denied armor-p-bus abstract-other "bus: connect to @armortest-listen, the abstract socket of another unit (armor-p-listener)"
denied armor-p-bus unitarmor-status "bus: unitarmor status (the system bus)"
allowed armor-p-bus own-abstract "bus: connect to @armortest-own-UNIT, an abstract socket the unit itself listens on"
denied armor-p-bus systemd-run "bus: systemd-run --wait --pipe cat /srv/armortest/secret (PID 1 runs it in a fresh unit)"
denied armor-p-bus busctl-ping "bus: busctl call org.freedesktop.systemd1 ... org.freedesktop.DBus.Peer Ping"
denied armor-p-bus daemon-reload "bus: systemctl daemon-reload"
denied armor-p-bus sync-socket "bus: unitarmor sync (the daemon's sync socket; a reload's request makes it read every unit's files)"
denied armor-p-bus journal-varlink "bus: connect to journald's varlink socket (RelinquishVar would keep every record in /run only)"
allowed armor-p-bus logger "bus: logger to /dev/log"
allowed armor-p-bus systemd-cat "bus: systemd-cat to the journal's stream socket"
# in_journal MESSAGE JOURNALCTL-ARGS...: a record matching the arguments has exactly MESSAGE.
in_journal() {
  local m=$1
  shift
  journalctl -o cat "$@" | grep -qxF "$m"
}
check "[bus: logger] the armored unit's message reaches the journal" \
  eventually in_journal hello-logger-armor-p-bus -t armortest
check "[bus: systemd-cat] the armored unit's message reaches the journal" \
  eventually in_journal hello-cat-armor-p-bus -t armortest
check "[bus: stdout] the armored unit's stdout reaches its journal" \
  eventually in_journal hello-stdout-armor-p-bus -u armor-p-bus.service
logged armor-p-bus UNITARMOR_PROTECTION=bus
logged_record armor-p-bus UNITARMOR_PROTECTION=bus UNITARMOR_OPERATION=connect UNITARMOR_PATH=@armortest-listen
logged_record armor-p-bus UNITARMOR_PROTECTION=bus UNITARMOR_OPERATION=connect \
  "UNITARMOR_EXE=$(readlink -f "$(command -v unitarmor)")"

# --- 5. the bus name ---------------------------------------------------------------------------------
# D-Bus policy cannot tell one root process from another: `unitarmor status` trusts the name only
# when its owner runs in unitarmor.service's cgroup. Here a daemon in another unit owns it (root
# outside every armored unit sets that up; an armored unit has no bus to try).
systemctl stop unitarmor.service
systemd-run --quiet --unit=armortest-fake-owner -p Type=notify -p RuntimeDirectory=unitarmor \
  /usr/bin/unitarmor daemon
fake_owns() { busctl --system list --no-legend | grep '^org\.unitarmor1 ' | grep -q armortest-fake-owner.service; }
check "[bus name] a daemon of another unit owns org.unitarmor1" eventually fake_owns
fake_status() {
  local rc=0
  unitarmor status >/run/armortest/fake-status 2>&1 || rc=$?
  cat /run/armortest/fake-status
  [ "$rc" = 2 ] && grep -q 'not by unitarmor.service' /run/armortest/fake-status
}
check "[bus name] unitarmor status distrusts it (exit 2, names its cgroup)" fake_status
systemctl stop armortest-fake-owner.service
# The next daemon starts with the NVMe driver unloaded, so that its majors are not in
# /proc/devices: the driver's registration, traced in the kernel, must add them.
check "[runs-as-root] the NVMe driver unloads" modprobe -r nvme nvme_core
systemctl start unitarmor.service
check "[bus name] with unitarmor.service's daemon back, unitarmor status answers" \
  eventually sh -c 'unitarmor status >/dev/null'
check "[runs-as-root] the NVMe driver loads again" modprobe nvme
check "[runs-as-root] udev made /dev/ng0n1 again" eventually test -c /dev/ng0n1
passthrough_devices "(the NVMe driver loaded after the daemon)"

# Devices driven whole from user space: VFIO groups, UIO devices, ublk servers' ends; and
# nvme-fabrics, a misc device of a run-time minor (a connect string attaches a disk served from
# an address the writer names); and the CPUs' MSRs. Their drivers load after the daemon; their run-time numbers
# must join the refused ones, and a node made with mknod for each is refused in the armored
# unit, while the twin reaches the driver.
rm -f $A/pt-*
# (Debian 12's kernel is built without ublk: Debian 13's has it.)
pt_want="vfio uio nvme-fabrics msr"
for mod in vfio uio ublk_drv vduse nvme_fabrics msr; do
  case $mod in
    ublk_drv) region=ublk-char ;;
    vduse) region=vduse ;;
    *) region= ;;
  esac
  if [ -n "$region" ] && ! modinfo $mod >/dev/null 2>&1; then
    echo "# $mod is not in this kernel: no $region check here"
    continue
  fi
  [ -n "$region" ] && pt_want="$pt_want $region"
  check "[runs-as-root] the $mod driver loads after the daemon" modprobe $mod
done
# pt_nodes: a node in $A/pt-NAME for each passthrough region /proc/devices lists, and for
# nvme-fabrics from /proc/misc.
pt_nodes() {
  local name major minor
  rm -f $A/pt-*
  for name in vfio vfio-dev uio ublk-char vduse; do
    major=$(awk -v n="$name" '/^Character devices:/ { c = 1; next } /:$/ { c = 0 } c && $2 == n { print $1 }' /proc/devices)
    [ -n "$major" ] || continue
    mknod "$A/pt-$name" c "$major" 0
  done
  minor=$(awk '$2 == "nvme-fabrics" { print $1 }' /proc/misc)
  [ -z "$minor" ] || mknod "$A/pt-nvme-fabrics" c 10 "$minor"
  # The CPUs' model-specific registers (a fixed major, 202): writing them runs code of the
  # writer's choice in the kernel.
  [ ! -c /dev/cpu/0/msr ] || mknod "$A/pt-msr" c 202 0
}
pt_listed() {
  local n
  for n in $pt_want; do [ -c "$A/pt-$n" ] || { echo "no $n in /proc/devices, /proc/misc or /dev/cpu/0"; return 1; }; done
}
# pt_refused WHEN [logged]: armor-p-pt is refused every node, its twin reaches every driver;
# with "logged", each refusal's record is in the journal (the first run's records would answer
# for a second run's, so only the first looks).
pt_refused() {
  local node n
  check "armor-p-pt runs $1" run armor-p-pt
  check "armor-p-pt-twin runs $1" run armor-p-pt-twin
  allowed armor-p-pt dyn-misc "runs-as-root: /dev/cpu_dma_latency, a misc device of a run-time minor that hands nothing over, opens $1"
  for node in $A/pt-*; do
    n=$(basename "$node")
    denied armor-p-pt "$n" "runs-as-root: open a ${n#pt-} device node ($((0x$(stat -c %t "$node"))):$((0x$(stat -c %T "$node"))), made with mknod) $1"
    [ "${2:-}" = logged ] || continue
    logged_record armor-p-pt UNITARMOR_PROTECTION=runs-as-root UNITARMOR_OPERATION=open-raw-device \
      "UNITARMOR_PATH=$node"
  done
}
pt_nodes
check "[runs-as-root] /proc/devices and /proc/misc list $pt_want" pt_listed
pt_refused "(drivers loaded after the daemon)" logged

# MAINPID=: an armored notify unit names the daemon as its main process (PID 1 takes that from
# root) and is stopped: PID 1 sends the daemon SIGTERM. Not refused (the message's contents are
# not the kernel's to read safely); the daemon is restarted (Restart=always) and keeps its pins.
systemctl show -P MainPID unitarmor.service >/run/armortest/daemon.pid
check "armor-p-mainpid runs" run armor-p-mainpid
check "[MAINPID=] PID 1 took the daemon as armor-p-mainpid's main process" \
  test "$(systemctl show -P MainPID armor-p-mainpid.service)" = "$(cat /run/armortest/daemon.pid)"
systemctl stop armor-p-mainpid.service
daemon_back() {
  local pid
  pid=$(systemctl show -P MainPID unitarmor.service)
  [ "$pid" != 0 ] && [ "$pid" != "$(cat /run/armortest/daemon.pid)" ] && systemctl is-active --quiet unitarmor.service
}
check "[MAINPID=] stopping the unit ended the daemon, and it is back under a new pid" eventually daemon_back
check "[MAINPID=] the restarted daemon lists the armored units again" \
  wait_rules armor-p-files.service 1
# The restarted daemon found the passthrough drivers already registered: it read their numbers
# from /proc/devices and /proc/misc.
pt_nodes
pt_refused "(drivers registered before the daemon started)"
rm -f $A/pt-*

finish
