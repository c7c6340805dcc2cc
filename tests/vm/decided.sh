#!/bin/bash
# The decision cache (bpf/decided.h, issue 11): an open a unit's policy allowed is remembered,
# and forgotten when the name it was decided for changes. Each route below gives a file whose
# open was remembered as allowed a name a rule denies, from outside the unit (as an
# administrator, a package manager or another unit would): a rename of the file, of its
# directory, an exchange, a hard link then an unlink of the old name, a bind mount, a moved
# mount, a file system mounted over, a policy change; and a program the dynamic loader mapped
# executable (mmap_file), renamed out of the exec allow-list. Each time the next open (or
# mapping) from inside the unit is denied, with the denial in `journalctl -u`, and an
# unarmored twin unit reads (or maps) the same file. A moved mount, and a moved mount above
# the file's, are also run against one process that read the file before (a task keeps the
# hash of its file's mounts while the kernel's mount_lock count stands still). Also: the cache
# remembers at all (entries appear in the kernel's map), answers (3,000 opens of one file by
# one process are found in it, by its own counts), and an allow rule counts the opens it
# decided from the cache.
# Run in the guest by tests/vm/run (through suite.sh).
. ./lib.sh

d=/srv/armortest-cache
m=/run/armortest-cache # a tmpfs
rm -rf "$d" "$m"
mkdir -p "$d" "$m"
# Mounts can be moved only from below a private one (systemd makes / shared): $d is a private
# bind mount of itself, and a tmpfs for $m.
mount --bind "$d" "$d"
mount --make-private "$d"
mount -t tmpfs armortest-cache "$m"
mkdir -p "$d/open/dir" "$d/secret" "$d/w" "$m/open" "$m/secret"
for f in f g h x1 x2 p; do echo "data-$f" >"$d/open/$f"; done
echo data-dir >"$d/open/dir/g"
echo data-w >"$d/w/f"
echo data-t >"$m/open/t"
check "the escape helper is built (tests/all compiles tests/vm/escape.c)" test -x escape
install -m 755 escape /usr/local/bin/armortest-escape
check "the opener helper is built (tests/all compiles tests/vm/opener.c)" test -x opener
install -m 755 opener /usr/local/bin/armortest-opener

for u in twin armored; do
  unit "armor-cache-$u.service" "[Service]
ExecStart=/bin/sleep infinity"
done
policy="[X-Armor]
ArmorPolicy=deny read $d/secret/ $m/secret/
ArmorPolicy=allow write $d/w/
ArmorPolicy=allow exec /usr/ $d/open/
ArmorPolicy=audit read $d/audited/"
dropin armor-cache-armored.service armor.conf "$policy"
systemctl daemon-reload
systemctl restart armor-cache-twin.service armor-cache-armored.service
check "the armored unit is armored" wait_rules armor-cache-armored.service 4

# in UNIT CMD...: runs CMD in UNIT's cgroup (a process moved there, as the unit's own are).
inside() {
  local cg
  cg=/sys/fs/cgroup/system.slice/$1
  shift
  sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cg" "$@"
}
reads() { inside "armor-cache-$1.service" cat "$2"; }
writes() { inside "armor-cache-$1.service" sh -c "echo more >>$2"; }
entries() { bpftool map dump name decided 2>/dev/null | grep -c '"key"'; }
denied_logged() { journalctl -u armor-cache-armored.service -o cat --no-pager | grep -q "$1"; }

# remembered PATH: the unit reads PATH twice, and the cache holds more entries than before.
remembered() {
  local before
  before=$(entries)
  reads armored "$1" >/dev/null && reads armored "$1" >/dev/null && [ "$(entries)" -gt "$before" ]
}

# route NAME PATH: after NAME moved a remembered file to PATH, the unit is denied it (with
# the denial in its journal) and the twin reads it.
route() {
  check_fails "$1: the armored unit is denied $2" reads armored "$2"
  check "$1: the denial of $2 is in journalctl -u" eventually denied_logged "$2"
  check "$1: the twin reads $2" reads twin "$2"
}

check "an allowed open is remembered (the decided map gains entries)" remembered "$d/open/f"

# The cache's own counts (per CPU, summed): 0, lookups that found a decision; 1, decisions
# stored; 2, keys made with a task's kept hash of its mounts.
cache_count() {
  bpftool -j map lookup name decided_counts key "$1" 0 0 0 2>/dev/null |
    grep -o '"value":[0-9][0-9]*' | awk -F: '{ n += $2 } END { print n + 0 }'
}
echo data-k >"$d/open/k"
found0=$(cache_count 0)
stored0=$(cache_count 1)
kept0=$(cache_count 2)
check "3000 opens of one file by one process of the unit, none refused" \
  test "$(inside armor-cache-armored.service armortest-opener "$d/open/k" 3000)" = "0 0"
found=$(($(cache_count 0) - found0))
stored=$(($(cache_count 1) - stored0))
check "the cache found at least 2900 of them (found $found, stored $stored)" test "$found" -ge 2900
check "it stored at most 100 decisions meanwhile" test "$stored" -le 100
check "at least 2900 of their keys took the process's kept hash of its mounts (the daemon found mount_lock)" \
  test "$(($(cache_count 2) - kept0))" -ge 2900

# An audited open is remembered with the time of its event: while the event's window (10 s)
# lasts, the next opens are its repeats, counted against the audit rule and not sent again (as
# without the cache); after it, the next open is decided again and its event sent.
mkdir -p "$d/audited"
echo data-audited >"$d/audited/a"
audited_opens() {
  unitarmor status armor-cache-armored.service --rules | grep -F "  audit read $d/audited/ (" |
    head -n 1 | awk '{ print $3 }'
}
audit_records() {
  journalctl UNITARMOR_UNIT=armor-cache-armored.service UNITARMOR_PATH="$d/audited/a" -o cat \
    --no-pager | grep -c "^Audited "
}
# opens50: 50 opens of the audited file by one process of the unit (no fork between them).
opens50() { inside armor-cache-armored.service bash -c "for i in {1..50}; do read -r l <$d/audited/a; done"; }
audited_remembered() { bpftool map dump name decided 2>/dev/null | grep -q '"verdict": 2'; }
audited_is() { [ "$(audited_opens)" = "$1" ]; }
records_are() { [ "$(audit_records)" = "$1" ]; }
audited_at=$(date +%s)
check "50 audited opens run" opens50
check "the audit rule counted 50 opens" eventually audited_is 50
check "their event is in the journal" eventually records_are 1
check "an audited open is remembered (an entry with the audit verdict in the decided map)" audited_remembered
sleep 2
check "in one window, one record for 50 opens" records_are 1

mv "$d/open/f" "$d/secret/f"
route "a rename of the file" "$d/secret/f"

check "a file in a directory is remembered" remembered "$d/open/dir/g"
mv "$d/open/dir" "$d/secret/dir"
route "a rename of its directory" "$d/secret/dir/g"

echo data-s >"$d/secret/s"
check "a file to be exchanged is remembered" remembered "$d/open/x1"
check "renameat2(RENAME_EXCHANGE) works" armortest-escape rename-exchange "$d/open/x1" "$d/secret/s"
route "an exchange" "$d/secret/s"

check "a file to be linked is remembered" remembered "$d/open/h"
ln "$d/open/h" "$d/secret/h"
route "a second link" "$d/secret/h"
rm "$d/open/h"
route "the first link removed" "$d/secret/h"

check "a file to be bound elsewhere is remembered" remembered "$d/open/x2"
mkdir -p "$d/secret/bound"
mount --bind "$d/open" "$d/secret/bound"
route "a bind mount" "$d/secret/bound/x2"
umount "$d/secret/bound"

mkdir -p "$d/open/mnt" "$d/secret/mnt"
mount -t tmpfs armortest "$d/open/mnt"
echo data-mnt >"$d/open/mnt/file"
check "a file on a mount is remembered" remembered "$d/open/mnt/file"
mount --move "$d/open/mnt" "$d/secret/mnt"
route "a moved mount" "$d/secret/mnt/file"
umount "$d/secret/mnt"

# one_process NAME FIRST SECOND FROM TO: a process of the armored unit and one of the twin each
# read FIRST twice (the second time from the cache); the mount at FROM is moved to TO, so that
# the file is SECOND; then the same two processes read SECOND: the armored one is denied (with
# the denial in its journal), the twin reads it. A task keeps the hash of its file's mounts for
# ten seconds while mount_lock's count stands still: the two reads must be less than that apart,
# and no name may change anywhere in between (a rename or unlink alone makes the cache forget
# everything), for the check to be about the kept hash. So the move is mount(2) itself (`mount`
# also rewrites /run/mount/utab by a rename), and if a name changed all the same or the reads
# were too far apart, the mount is moved back and it is tried again, up to three times.
move_mount() { perl -e 'syscall(165, $ARGV[0], $ARGV[1], 0, 8192, 0) == 0 or die "$!\n"' "$1" "$2"; }
names_ended() { bpftool -j map lookup name epochs key 0 0 0 0 | grep -o '"value":[0-9][0-9]*' | cut -d: -f2; }
# gap_ms FILE: milliseconds between the first and the last read FILE's process reported.
gap_ms() { awk '$1 == "first-read" { a = $2 } $1 ~ /^second-/ { b = $2 } END { printf "%d", (b - a) * 1000 }' "$1"; }
one_process() {
  local name=$1 first=$2 second=$3 from=$4 to=$5 go=/run/armortest-go u pids i try n0 found
  for try in 1 2 3; do
    rm -f "$go"
    pids=()
    n0=$(names_ended)
    found=$(cache_count 0)
    for u in armored twin; do
      inside "armor-cache-$u.service" bash -c "read -r l <'$first' && read -r l <'$first' &&
        echo first-read \$EPOCHREALTIME
        while [ ! -e $go ]; do sleep 0.05; done
        if read -r l <'$second'; then echo second-read \$EPOCHREALTIME
        else echo second-refused \$EPOCHREALTIME; fi" >"/run/armortest-$u.out" 2>/dev/null &
      pids+=($!)
    done
    for i in $(seq 1 200); do
      grep -qs first-read /run/armortest-armored.out && grep -qs first-read /run/armortest-twin.out &&
        break
      sleep 0.05
    done
    move_mount "$from" "$to"
    touch "$go"
    wait "${pids[@]}"
    found=$(($(cache_count 0) - found))
    [ "$(names_ended)" = "$n0" ] && [ "$(gap_ms /run/armortest-armored.out)" -lt 8000 ] && break
    [ "$try" = 3 ] || move_mount "$to" "$from"
  done
  check "$name: no name changed on the system meanwhile (try $try)" test "$(names_ended)" = "$n0"
  check "$name: one process read both names within 8 s ($(gap_ms /run/armortest-armored.out) ms)" \
    test "$(gap_ms /run/armortest-armored.out)" -lt 8000
  check "$name: a process of the unit read $first, the second time from the cache ($found found)" \
    test "$found" -ge 1 -a -n "$(grep first-read /run/armortest-armored.out)"
  check "$name: the same process is denied $second" grep -q second-refused /run/armortest-armored.out
  check "$name: the denial of $second is in journalctl -u" eventually denied_logged "$second"
  check "$name: the twin's process reads $second" grep -q second-read /run/armortest-twin.out
  rm -f "$go" /run/armortest-armored.out /run/armortest-twin.out
}

mkdir -p "$d/open/mnt1" "$d/secret/mnt1"
mount -t tmpfs armortest-1 "$d/open/mnt1"
echo data-1 >"$d/open/mnt1/file"
one_process "a moved mount" "$d/open/mnt1/file" "$d/secret/mnt1/file" "$d/open/mnt1" "$d/secret/mnt1"
umount "$d/secret/mnt1"

mkdir -p "$d/open/up" "$d/secret/up"
mount -t tmpfs armortest-up "$d/open/up"
mkdir "$d/open/up/low"
mount -t tmpfs armortest-low "$d/open/up/low"
echo data-low >"$d/open/up/low/file"
one_process "a moved mount above the file's" "$d/open/up/low/file" "$d/secret/up/low/file" \
  "$d/open/up" "$d/secret/up"
umount -R "$d/secret/up"

check "a file on tmpfs is remembered" remembered "$m/open/t"
mv "$m/open/t" "$m/secret/t"
route "a rename on tmpfs" "$m/secret/t"

check "a file under a mount point to be is remembered" remembered "$d/open/p"
mkdir -p "$d/secret/over"
mount --bind "$d/open" "$d/secret/over"
mount -t tmpfs armortest-over "$d/open"
echo data-over >"$d/open/p"
check "a file system mounted over: the unit reads the new file" reads armored "$d/open/p"
umount "$d/open"
route "a file system mounted over, the old file by another name" "$d/secret/over/p"
umount "$d/secret/over"

writes_twice() { writes armored "$1" && writes armored "$1"; }
check "a writable file is written twice" writes_twice "$d/w/f"
mv "$d/w/f" "$d/nw"
check_fails "a rename out of the write allow-list: the armored unit may not write it" writes armored "$d/nw"
check "the twin writes it" writes twin "$d/nw"

# An executable mapping (mmap_file): the dynamic loader maps a program it is given, decided as
# an exec of it; remembered like an open.
ldso=$(readlink -f /lib64/ld-linux-x86-64.so.2)
cp /usr/bin/cat "$d/open/cat2"
runs() { inside "armor-cache-$1.service" "$ldso" "$2" "$d/open/p2"; }
echo data-p2 >"$d/open/p2"
mapped_twice() {
  local before
  before=$(entries)
  runs armored "$1" >/dev/null && runs armored "$1" >/dev/null && [ "$(entries)" -gt "$before" ]
}
check "an executable mapping is remembered" mapped_twice "$d/open/cat2"
mv "$d/open/cat2" "$d/secret/cat2"
check_fails "a mapped program renamed out of the exec allow-list: the armored unit may not map it" \
  runs armored "$d/secret/cat2"
check "the denied mapping of $d/secret/cat2 is in journalctl -u" eventually denied_logged "$d/secret/cat2"
check "the twin maps it" runs twin "$d/secret/cat2"

# A window after the first batch (the routes above took most of it).
while [ $(($(date +%s) - audited_at)) -le 11 ]; do sleep 1; done
check "50 more audited opens, a window later" opens50
check "the audit rule counted 100 opens" eventually audited_is 100
check "a window later, the remembered audit sent its event again" eventually records_are 2
check "the twin reads the audited file" reads twin "$d/audited/a"

check "a file whose policy is about to change is remembered" remembered "$d/open/g"
dropin armor-cache-armored.service armor.conf "$policy
ArmorPolicy=deny read $d/open/g"
systemctl daemon-reload
check "the changed policy is in force" wait_rules armor-cache-armored.service 5
route "a policy change" "$d/open/g"

# Counting: `allow write` counts each open it allows, from the cache or not (the status is
# published every second).
allowed_writes() {
  unitarmor status armor-cache-armored.service --rules | grep -F "  allow write $d/w/ (" |
    head -n 1 | awk '{ print $4 }'
}
echo data-c >"$d/w/c"
sleep 2
before=$(allowed_writes)
for i in 1 2 3 4 5; do writes armored "$d/w/c"; done
counted() { [ "$(($(allowed_writes) - ${before:-0}))" -ge 5 ]; }
check "allow write counted 5 opens, remembered ones included (from ${before:-none})" eventually counted

systemctl stop armor-cache-twin.service armor-cache-armored.service
umount "$m" "$d"
rm -rf "/etc/systemd/system/armor-cache-twin.service" "/etc/systemd/system/armor-cache-armored.service" \
  "/etc/systemd/system/armor-cache-armored.service.d" /usr/local/bin/armortest-escape \
  /usr/local/bin/armortest-opener
systemctl daemon-reload
finish
