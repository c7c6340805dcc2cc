#!/bin/bash
# System calls and ioctls that act on the whole system, from a root process in an armored unit
# (issue 9; found by a helper's review): input put into a terminal (TIOCSTI), a file system
# frozen or shut down, swap on a file, port I/O, reboot(), perf events of a whole CPU, joining
# another network namespace through a descriptor handed in (undoing PrivateNetwork=), and
# writes to the journal's files and to scripts root runs at each login (update-motd.d). Each
# is refused in the armored unit (EPERM, and a record naming its protection) and reaches the
# kernel's own handler in the unarmored twin: where making the call for real would harm the
# guest, with an argument the kernel rejects (EINVAL) only after the capability check that the
# armored unit fails. The unit's own user-space perf events stay allowed. fanotify_init() and
# setns() are made again as 32-bit system calls (`int $0x80` from the same 64-bit program,
# numbered from i386's table), which a refusal keyed by the 64-bit numbers alone would miss, and
# so is sendmmsg() through i386's socketcall(). Kernel settings and unitarmor's pins through
# mounts of their file systems elsewhere (a second proc, a bind mount of /sys/fs/bpf) are named
# as if mounted where the system mounts them, and so refused. Last, a lease on a unit file
# (which would hold PID 1's and the daemon's opens of it), and terminal hang-ups and steals.
# Run in the guest by tests/vm/run (through suite.sh).
. ./lib.sh

mkdir -p /run/armortest /var/lib/armortest /etc/update-motd.d
cp ./calls ./fdpass /var/lib/armortest/
truncate -s 1M /var/lib/armortest/notswap
journal_dir=$(ls -d /var/log/journal/*/ /run/log/journal/*/ 2>/dev/null | head -n 1)
# A keyboard of the unit's making (uinput), and a file system's own switch in sysfs, written
# back with the value it has.
modprobe uinput 2>/dev/null
ext4_knob=$(ls -d /sys/fs/ext4/*/msg_ratelimit_burst 2>/dev/null | head -n 1)
mkdir -p /run/armortest/proc2 /run/armortest/bpf2
mount -t proc proc /run/armortest/proc2
mount --bind /sys/fs/bpf /run/armortest/bpf2
serve /run/armortest/netns.sock /var/lib/armortest/fdpass serve /run/armortest/netns.sock /proc/1/ns/net
for u in armor-calls armor-calls-twin; do
  unit $u.service "[Service]
Type=oneshot
PrivateNetwork=yes
ExecStart=/bin/sh -c 'c=/var/lib/armortest/calls o=/run/armortest/$u; \$\$c tiocsti >\$\$o.tiocsti; \$\$c thaw / >\$\$o.thaw; \$\$c shutdown / >\$\$o.shutdown; \$\$c swapon /var/lib/armortest/notswap >\$\$o.swapon; \$\$c reboot >\$\$o.reboot; \$\$c ioperm >\$\$o.ioperm; \$\$c perf-cpu >\$\$o.perf-cpu; \$\$c perf-self >\$\$o.perf-self; \$\$c setns-net /run/armortest/netns.sock >\$\$o.setns-net; \$\$c compat-setns-net /run/armortest/netns.sock >\$\$o.compat-setns-net; \$\$c compat-fanotify >\$\$o.compat-fanotify; touch ${journal_dir}armortest-$u.journal 2>\$\$o.journal && echo ok >\$\$o.journal; touch /etc/update-motd.d/99-$u 2>\$\$o.motd && echo ok >\$\$o.motd; echo 1 2>\$\$o.proc2 >/run/armortest/proc2/sys/vm/drop_caches && echo ok >\$\$o.proc2; mkdir /run/armortest/bpf2/armortest-$u 2>\$\$o.bpf2 && echo ok >\$\$o.bpf2; \$\$c open-rw /dev/uinput >\$\$o.uinput; cat $ext4_knob 2>\$\$o.ext4 >\$\$o.ext4-value && cat \$\$o.ext4-value 2>\$\$o.ext4 >$ext4_knob && echo ok >\$\$o.ext4; \$\$c lease /etc/systemd/system/$u.service >\$\$o.lease; \$\$c vhangup-pty >\$\$o.vhangup-pty; \$\$c steal-tty >\$\$o.steal-tty; \$\$c own-tty >\$\$o.own-tty; \$\$c lease /sys/fs/cgroup/system.slice/cgroup.subtree_control >\$\$o.lease-cgroup; \$\$c vhangup >\$\$o.vhangup; \$\$c compat-sendmmsg /run/armortest >\$\$o.compat-sendmmsg; true'"
done
dropin armor-calls.service armor.conf '[X-Armor]
ArmorPolicy=deny write /srv/nothing'
systemctl daemon-reload
check "the unit is armored" wait_rules armor-calls.service 1
systemctl start armor-calls.service armor-calls-twin.service
a=/run/armortest/armor-calls t=/run/armortest/armor-calls-twin
for how in tiocsti thaw shutdown swapon reboot ioperm perf-cpu perf-self setns-net compat-setns-net \
  compat-fanotify journal motd proc2 bpf2 uinput ext4 lease vhangup-pty steal-tty own-tty lease-cgroup vhangup compat-sendmmsg; do
  echo "# $how: armored: $(cat $a.$how), twin: $(cat $t.$how)"
done
# what: the twin's expected output (ok, or the kernel's error after the capability check).
for spec in tiocsti:ok thaw:"FITHAW: Invalid argument" shutdown:"shutdown ioctl: Invalid argument" \
  swapon:"swapon: Invalid argument" reboot:"reboot: Invalid argument" ioperm:ok perf-cpu:ok \
  setns-net:ok compat-setns-net:ok compat-fanotify:ok uinput:ok vhangup-pty:ok steal-tty:ok vhangup:ok \
  compat-sendmmsg:ok lease-cgroup:ok; do
  how=${spec%%:*} want=${spec#*:}
  if grep -q 'Function not implemented\|No such file or directory' $t.$how; then
    echo "# this kernel has no $how (no ioperm(), or no 32-bit system calls): that route does not exist here (not counted)"
    continue
  fi
  check "$how: the unarmored twin reaches the kernel's handler ($want)" grep -qx "$want" $t.$how
  check "$how: refused in the armored unit" grep -q 'Operation not permitted$' $a.$how
done
check "perf-self: the armored unit's own user-space perf event stays allowed" grep -qx ok $a.perf-self
# A lease is decided as a write of the file: its own unit file is under `unit-files`.
check "lease: the unarmored twin takes a lease on its unit file" grep -qx ok $t.lease
check "lease: the armored unit is refused a lease on its unit file" grep -q 'Permission denied$' $a.lease
check "own-tty: a terminal of no session is made its own, armored or not" \
  sh -c "grep -qx ok $a.own-tty && grep -qx ok $t.own-tty"
for how in journal motd proc2 bpf2 ext4; do
  check "$how: the unarmored twin writes there" grep -qx ok $t.$how
  check "$how: the armored unit is refused the write" grep -q 'Permission denied\|Operation not permitted' $a.$how
done
rm -f "${journal_dir}"armortest-*.journal /etc/update-motd.d/99-armor-calls*
rmdir /sys/fs/bpf/armortest-armor-calls* 2>/dev/null
umount /run/armortest/proc2 /run/armortest/bpf2
for text in "putting input into the terminal" "freezing or shutting down the file system of /" \
  "swapon or swapoff" "reboot or kexec" "a perf event of a whole CPU" "joining another namespace (setns)" \
  "/proc/sys/vm/drop_caches" "/sys/fs/bpf/armortest-armor-calls" \
  "a lease on /etc/systemd/system/armor-calls.service" "hanging up the terminal /dev/pts/" \
  "hanging up its terminal (vhangup)" "sendmmsg() to an address"; do
  check "the journal of the armored unit has: $text" eventually sh -c \
    "journalctl -u armor-calls.service -o cat | grep -qF '$text'"
done
kill $server
rm -rf /etc/systemd/system/armor-calls*
systemctl daemon-reload
finish
