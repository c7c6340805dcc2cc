#!/bin/bash
# Containers (issue 14): a drop-in on the `machine-.scope` prefix armors every container
# systemd-nspawn registers, from its creation (machined asks PID 1 for the scope; its cgroup is
# bound when PID 1 makes it, before the container's first instruction). Paths are matched as
# the container sees them: its own /etc, not the host's path to the tree. nspawn mounts the
# container's /proc, /sys and /dev inside the scope, so the policy lifts `mount`. An unarmored
# run of the same container reads everything. And the route a container host adds: machined's
# varlink socket, whose Register would move an armored caller into a scope of its own, is
# refused to an armored service (systemd 256 and later serve it), with an unarmored twin.
# Run in the guest by tests/vm/run (through suite.sh).
. ./lib.sh

box=/var/lib/machines/armorbox
rm -rf "$box"
mkdir -p "$box"/{etc,usr,proc,sys,dev,run,tmp,var}
for d in bin lib lib64 sbin; do ln -s "usr/$d" "$box/$d"; done
cp /etc/os-release "$box/etc/os-release"
echo box-secret >"$box/etc/box-secret"
echo box-open >"$box/etc/box-open"
rm -rf /etc/systemd/system/machine-.scope.d

# boxrun CMD...: runs CMD as the container's first process (the host's /usr, read-only).
boxrun() {
  timeout 300 systemd-nspawn --quiet --pipe --directory="$box" --bind-ro=/usr \
    --machine=armorbox --register=yes "$@" 2>&1
}

out=$(boxrun /usr/bin/cat /etc/box-secret)
echo "# unarmored: $out"
check "unarmored: the container reads its /etc/box-secret" test "$out" = box-secret

dropin machine-.scope armor.conf '[X-Armor]
ArmorExempt=mount
ArmorPolicy=deny read /etc/box-secret
ArmorPolicy=deny read /var/lib/machines/armorbox/etc/box-open'
systemctl daemon-reload
check "the machine-.scope prefix is armored" eventually sh -c \
  "test \"\$(unitarmor status --json machine-.scope 2>/dev/null | sed -n 's/.*\"rules\": \\([0-9]*\\).*/\\1/p' | head -n 1)\" = 2"

out=$(boxrun /usr/bin/cat /etc/box-secret)
echo "# armored: $out"
check "armored: the container is refused its own /etc/box-secret" \
  sh -c "printf '%s' \"\$1\" | grep -q 'Permission denied'" _ "$out"
out=$(boxrun /usr/bin/cat /etc/box-open)
echo "# armored, another file: $out"
check "armored: a rule naming the host's path to a file does not match it inside the container" \
  test "$out" = box-open
check "the denial is in the scope's journal, with the path the container used" eventually sh -c \
  "journalctl -u machine-armorbox.scope -o cat | grep -q 'Denied read of /etc/box-secret'"

# machined's varlink socket, from an armored service and from its unarmored twin.
cat >/usr/local/bin/armor-vlprobe <<'EOS'
#!/usr/bin/perl
use Socket;
socket(my $s, PF_UNIX, SOCK_STREAM, 0) or die "socket: $!\n";
connect($s, pack_sockaddr_un($ARGV[0])) or die "connect: $!\n";
print "connected\n";
EOS
chmod +x /usr/local/bin/armor-vlprobe
dropin armor-mvl.service armor.conf '[X-Armor]
ArmorPolicy=deny read /etc/box-secret'
systemctl daemon-reload
systemctl start systemd-machined.service
sock=/run/systemd/machine/io.systemd.Machine
if [ -S "$sock" ]; then
  out=$(systemd-run --quiet --wait --pipe --unit=armor-mvl /usr/local/bin/armor-vlprobe "$sock" 2>&1)
  check "an armored service is refused machined's varlink socket ($out)" \
    sh -c "printf '%s' \"\$1\" | grep -q 'connect: Permission denied'" _ "$out"
  out=$(systemd-run --quiet --wait --pipe --unit=armor-mvl-twin /usr/local/bin/armor-vlprobe "$sock" 2>&1)
  check "the unarmored twin connects to it ($out)" test "$out" = connected
else
  echo "# no $sock here: machined before systemd 256 serves no Register"
fi

rm -rf /etc/systemd/system/machine-.scope.d /etc/systemd/system/armor-mvl.service.d "$box" \
  /usr/local/bin/armor-vlprobe
systemctl daemon-reload
finish
