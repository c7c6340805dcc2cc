#!/bin/bash
# tests/bench/guest.sh ROUNDS SCALE: the guest side of tests/bench/run. Times the operations
# of ops.c in every case, in ROUNDS interleaved rounds within this one boot, and prints raw
# lines for the host's report (report.awk):
#   R ROUND CASE OP NS MEAN ns per operation of one run of ops in CASE: of its fastest
#                           batch (what the report compares), and the mean of all its batches
#   S CASE PROG CNT NS      runs and run time of one program while CASE ran once more, with
#                           kernel.bpf_stats_enabled=1 (a run of its own: stats cost time)
#   A KIND MS               one policy change applied to a running unit (KIND change), or one
#                           daemon-reload with nothing changed (KIND reload), without
#                           unitarmor's generator (bare), with /bin/true in its place (floor),
#                           in ms; or
#                           whether the first probe after that change's reload saw it (KIND
#                           at_return, 1 or 0)
#   T CASE MS               one start of a oneshot unit, with (c1000) and without (none) rules
#   N ROUND CASE RPS        requests per second one of two nginx twins served to wrk in one
#                           run, unarmored (CASE unarmored) or under drop-ins/nginx.service.d
#                           (armored)
#   P CASE NS REQ_NS        the BPF programs' run time per request in one run with
#                           kernel.bpf_stats_enabled=1 (NS), and the request's time (REQ_NS)
#   Q CASE PROG RUNS NS     one program's runs and run time per request in that run
#   M NAME VALUE            a measure of the daemon, or of the decision cache under nginx
#   X WHAT                  something failed: the report says the run is invalid
# Other lines are commentary. Cases:
#   none      no unitarmor programs loaded (a)
#   floor     empty programs on the same hooks (tests/bench/run generates them)
#   unarmored unitarmor's programs loaded, process in an unarmored unit (b)
#   c10, c1000, c10000  an armored unit whose policy allows every operation, with that many
#                       rules (more than 256 path patterns: compiled by class and action)
#   landlock  no unitarmor programs; the process under a 10-rule Landlock ruleset (d)
#   systemd   no unitarmor programs; the unit under 10 ReadOnlyPaths=/InaccessiblePaths= (d)
set -u
rounds=${1:-5}
scale=${2:-1}
# Each case runs PASSES times a round, each run at 1/PASSES of the operations, its runs
# interleaved with those of the other cases loaded alike. Under emulation the host's load comes
# and goes over seconds: one run of a case could land wholly in a slow spell (the fastest of
# its batches as slow as the rest, twice the next round's), and more, shorter runs side by side
# give the median more to stand on for the same time.
passes=3
run_scale=$(awk -v s="$scale" -v p=$passes 'BEGIN { print s / p }')
here=$(pwd)
B=/srv/bench
X() { echo "X $*"; }

# --- the tree the operations use, and the units ------------------------------------------------
mkdir -p $B/a/b/c/d/e/f/g/h/i/j $B/w /run/bench
for k in $(seq 0 8); do mkdir -p $B/ll/$k; done
for k in $(seq 0 4); do mkdir -p $B/ro$k $B/secret$k; done
: >$B/f
: >$B/a/b/c/d/e/f/g/h/i/j/f
echo apply >$B/apply-a
echo apply >$B/apply-b
install -m 755 "$here/ops" "$here/true" $B/

unit() { printf '%s\n' "$2" >"/etc/systemd/system/$1"; }
oneshot() {
  printf '[Service]\nType=oneshot\nStandardOutput=truncate:/run/bench/%%N.out\n%s\n' "$1"
}
unit bench-plain.service "$(oneshot "ExecStart=$B/ops all $run_scale")"
unit bench-landlock.service "$(oneshot "ExecStart=$B/ops --landlock 10 all $run_scale")"
ro=$(for k in $(seq 0 4); do printf 'ReadOnlyPaths=%s/ro%s\nInaccessiblePaths=%s/secret%s\n' $B "$k" $B "$k"; done)
unit bench-systemd.service "$(oneshot "ExecStart=$B/ops all $run_scale
$ro")"
# rules N: N rules that never match what ops touches, in three kinds, the first sharing the
# deep path's directories so that its walk cannot stop early.
rules() {
  local k
  for k in $(seq 1 "$1"); do
    case $((k % 3)) in
      0) echo "ArmorPolicy=deny read $B/a/b/c/d/e/f/g/h/i/j/s$k" ;;
      1) echo "ArmorPolicy=deny write $B/s$k/**" ;;
      2) echo "ArmorPolicy=deny exec $B/x$k" ;;
    esac
  done
}
for n in 10 1000 10000; do
  unit "bench-c$n.service" "$(oneshot "ExecStart=$B/ops all $run_scale")"
  mkdir -p "/etc/systemd/system/bench-c$n.service.d"
  { echo '[X-Armor]'; rules "$n"; } >"/etc/systemd/system/bench-c$n.service.d/armor.conf"
done
unit bench-deny.service "$(oneshot "ExecStart=/bin/cat $B/apply-a")"
mkdir -p /etc/systemd/system/bench-deny.service.d
{ echo '[X-Armor]'; rules 10; echo "ArmorPolicy=deny read $B/apply-a"; } >/etc/systemd/system/bench-deny.service.d/armor.conf
unit bench-start0.service "$(oneshot "ExecStart=/bin/true")"
unit bench-start1000.service "$(oneshot "ExecStart=/bin/true")"
mkdir -p /etc/systemd/system/bench-start1000.service.d
cp /etc/systemd/system/bench-c1000.service.d/armor.conf /etc/systemd/system/bench-start1000.service.d/
unit bench-apply.service '[Service]
ExecStart=/bin/sleep infinity'
mkdir -p /etc/systemd/system/bench-apply.service.d
printf '[X-Armor]\nArmorPolicy=deny read %s/apply-a\n' $B >/etc/systemd/system/bench-apply.service.d/armor.conf
systemctl daemon-reload

armored_rules() {
  unitarmor status --json "$1" 2>/dev/null | sed -n 's/.*"rules": \([0-9]*\).*/\1/p' | head -n 1
}
# wait_rules UNIT N: waits until the daemon armors UNIT with N rules, and says so if its policy
# has errors (a policy that does not compile is replaced by one that refuses everything).
wait_rules() {
  local i n
  for i in $(seq 1 600); do
    n=$(armored_rules "$1")
    if [ "${n:-0}" = "$2" ]; then
      [ "$2" = 0 ] || unitarmor status --json "$1" | grep '"errors": ""' >/dev/null ||
        X "$1's policy has errors: $(unitarmor status --json "$1" | grep '"errors"')"
      return 0
    fi
    sleep 0.2
  done
  X "$1 is not armored with $2 rules (has '${n:-none}')"
  return 1
}
programs() { bpftool prog show 2>/dev/null | grep -c ' name \(ua\|floor\)_'; }

# --- states ----------------------------------------------------------------------------------
floor_pid=
no_programs() {
  if [ -n "$floor_pid" ]; then
    exec 7>&-
    wait "$floor_pid"
    floor_pid=
  fi
  systemctl stop unitarmor.service
  unitarmor disarm >/dev/null
  local i
  for i in $(seq 1 150); do
    [ "$(programs)" = 0 ] && return 0
    sleep 0.2
  done
  X "programs still loaded after unitarmor disarm: $(programs)"
}
floor_programs() {
  no_programs
  mkfifo /run/bench/floor.in 2>/dev/null
  "$here/floor" "$here/floor.bpf.o" </run/bench/floor.in >/run/bench/floor.log 2>&1 &
  floor_pid=$!
  exec 7>/run/bench/floor.in
  local i
  for i in $(seq 1 300); do
    grep -q attached /run/bench/floor.log && break
    sleep 0.2
  done
  grep -q attached /run/bench/floor.log || X "the floor programs did not attach: $(cat /run/bench/floor.log)"
}
unitarmor_programs() {
  no_programs
  systemctl start unitarmor.service || X "unitarmor.service did not start"
  wait_rules bench-c10.service 10
  wait_rules bench-c1000.service 1000
  wait_rules bench-c10000.service 10000
  # What is timed must also be enforced: the unit that allows every timed operation is
  # refused a file its rules name.
  systemctl start bench-deny.service && X "bench-deny.service read a file its rule denies"
}

# run CASE UNIT ROUND: one run of ops in UNIT, its lines as R lines.
run() {
  if ! systemctl start "$2"; then
    X "$2 failed in case $1: $(journalctl -u "$2" -n 5 --no-pager -o cat | tr '\n' ' ')"
    return
  fi
  local lines
  lines=$(wc -l <"/run/bench/${2%.service}.out")
  [ "$lines" = 7 ] || X "$2 printed $lines lines in case $1"
  awk -v r="$3" -v c="$1" '{ print "R", r, c, $1, $2, $3 }' "/run/bench/${2%.service}.out"
}
# rotate N WORD...: the words, starting at the Nth (mod their count).
rotate() {
  local n=$1
  shift
  local a=("$@") i
  for i in $(seq 0 $((${#a[@]} - 1))); do echo "${a[$(((n + i) % ${#a[@]}))]}"; done
}

echo "# $(uname -r), $(systemctl --version | head -n 1), $(nproc) CPUs, clock $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource); $rounds rounds, scale $scale"
for r in $(seq 1 "$rounds"); do
  t0=$(date +%s)
  no_programs
  for c in $(for p in $(seq 1 $passes); do rotate $((r + p)) none landlock systemd; done); do
    case $c in
      none) run none bench-plain.service "$r" ;;
      landlock) run landlock bench-landlock.service "$r" ;;
      systemd) run systemd bench-systemd.service "$r" ;;
    esac
  done
  floor_programs
  for p in $(seq 1 $passes); do run floor bench-plain.service "$r"; done
  unitarmor_programs
  for c in $(for p in $(seq 1 $passes); do rotate $((r + p)) unarmored c10 c1000 c10000; done); do
    case $c in
      unarmored) run unarmored bench-plain.service "$r" ;;
      *) run "$c" "bench-$c.service" "$r" ;;
    esac
  done
  echo "# round $r took $(($(date +%s) - t0)) s"
done

# --- per-program cost from the kernel --------------------------------------------------------
# snapshot: "PROG CNT NS" for each unitarmor program.
snapshot() {
  bpftool prog show 2>/dev/null | awk '
    / name ua_/ {
      n = ""; t = 0; c = 0 # a program that never ran has no run_time_ns or run_cnt
      for (i = 1; i <= NF; i++) { if ($i == "name") n = $(i + 1); if ($i == "run_time_ns") t = $(i + 1); if ($i == "run_cnt") c = $(i + 1) }
      print n, c, t
    }'
}
sysctl -qw kernel.bpf_stats_enabled=1
for c in unarmored c10 c1000 c10000; do
  unit=bench-$c.service
  [ "$c" = unarmored ] && unit=bench-plain.service
  snapshot >/run/bench/before
  systemctl start "$unit" || X "$unit failed in the stats run"
  snapshot >/run/bench/after
  awk -v c="$c" 'NR == FNR { cnt[$1] = $2; ns[$1] = $3; next }
    $2 > cnt[$1] { print "S", c, $1, $2 - cnt[$1], $3 - ns[$1] }' /run/bench/before /run/bench/after
done
sysctl -qw kernel.bpf_stats_enabled=0

# --- applying a change, starting a unit -------------------------------------------------------
ms() { echo $((($(date +%s%N) - $1) / 1000000)); }
systemctl start bench-apply.service
cg=/sys/fs/cgroup/system.slice/bench-apply.service
# probe FILE: exit 0 if a process in bench-apply.service can read FILE.
probe() { sh -c "echo \$\$ >$cg/cgroup.procs && exec cat $1 >/dev/null 2>&1"; }
probe $B/apply-a && X "bench-apply.service reads apply-a: not armored"
mkdir -p /etc/systemd/system-generators
# bare: the same reload without unitarmor's generator (masked), what systemd itself takes, so
# that what unitarmor adds to a reload can be told apart from it. floor: a generator that does
# nothing (/bin/true) in unitarmor's place; any generator costs the reload a process start,
# which under emulation is most of a 50 ms budget.
bare_and_floor() {
  ln -sf /dev/null /etc/systemd/system-generators/unitarmor-generator
  t=$(date +%s%N)
  systemctl daemon-reload
  echo "A bare $(ms "$t")"
  ln -sf /bin/true /etc/systemd/system-generators/unitarmor-generator
  t=$(date +%s%N)
  systemctl daemon-reload
  echo "A floor $(ms "$t")"
  rm -f /etc/systemd/system-generators/unitarmor-generator
}
# Each of the 20 changes is paired with a bare and a floor reload (the report takes the median
# of the pairs' differences), before the change in odd ones and after it in even ones.
for k in $(seq 1 20); do
  if [ $((k % 2)) = 1 ]; then deny=b allow=a; else deny=a allow=b; fi
  [ $((k % 2)) = 1 ] && bare_and_floor
  t=$(date +%s%N)
  printf '[X-Armor]\nArmorPolicy=deny read %s/apply-%s\n' $B $deny >/etc/systemd/system/bench-apply.service.d/armor.conf
  r=$(date +%s%N)
  systemctl daemon-reload
  echo "A change_reload $(ms "$r")"
  # Whether the first probe after the reload returned already saw the change: the generator
  # makes the reload wait for the daemon's pass over the files.
  first=1
  i=0
  until ! probe "$B/apply-$deny" && probe "$B/apply-$allow"; do
    first=0
    i=$((i + 1))
    [ "$i" -le 2000 ] || { X "the change to deny apply-$deny was not applied"; break; }
  done
  echo "A change $(ms "$t")"
  echo "A at_return $first"
  t=$(date +%s%N)
  systemctl daemon-reload
  echo "A reload $(ms "$t")"
  [ $((k % 2)) = 0 ] && bare_and_floor
done
systemctl stop bench-apply.service
for k in $(seq 1 10); do
  for c in 0 1000; do
    t=$(date +%s%N)
    systemctl start "bench-start$c.service"
    echo "T $c $(ms "$t")"
  done
done

# --- a real service: nginx serving a small static file to wrk over loopback -------------------
# The guest image holds Debian's nginx; tests/bench/run downloads wrk into debs/. Two twins run
# at once: nginx.service on port 8080 and nginx-twin.service, the same binary and the same
# configuration but for its port (8081) and pid file. In each round one of them is armored with
# the example drop-in, as an administrator would (a drop-in and a daemon-reload, no restart),
# and wrk then alternates between the two, with no reload in between: the machine's drift, a
# reload's aftermath and the host's other work weigh on both alike. The twins trade places
# from round to round, so that neither's port or place in memory counts for one case.
if ls "$here"/debs/*.deb >/dev/null 2>&1 && dpkg -i "$here"/debs/*.deb >/run/bench/dpkg.log 2>&1; then
  head -c 1024 /dev/zero | tr '\0' x >/var/www/html/small.html
  site() { printf 'server {\n  listen 127.0.0.1:%s;\n  root /var/www/html;\n  access_log off;\n}\n' "$1"; }
  site 8080 >/etc/nginx/sites-enabled/default
  site 8081 >/etc/nginx/twin-site
  sed -i 's/^worker_processes .*/worker_processes 1;/' /etc/nginx/nginx.conf
  sed -e 's|^pid .*|pid /run/nginx-twin.pid;|' -e 's|include /etc/nginx/sites-enabled/\*;|include /etc/nginx/twin-site;|' \
    /etc/nginx/nginx.conf >/etc/nginx/twin.conf
  unit nginx-twin.service "[Service]
Type=forking
PIDFile=/run/nginx-twin.pid
ExecStart=/usr/sbin/nginx -c /etc/nginx/twin.conf -g 'daemon on; master_process on;'
ExecStop=-/sbin/start-stop-daemon --quiet --stop --retry QUIT/5 --pidfile /run/nginx-twin.pid"
  systemctl daemon-reload
  systemctl restart nginx.service || X "nginx did not start"
  systemctl start nginx-twin.service || X "the nginx twin did not start"
  # armor UNIT: armors UNIT (nginx or nginx-twin) with the example and takes the armor off the
  # other; waits until the daemon's rescan after the reload is over, so that the runs do not
  # begin while the daemon and PID 1 still work on it.
  armor() {
    local other=nginx-twin
    [ "$1" = nginx-twin ] && other=nginx
    rm -rf "/etc/systemd/system/$other.service.d"
    mkdir -p "/etc/systemd/system/$1.service.d"
    cp "$here/nginx-armor.conf" "/etc/systemd/system/$1.service.d/armor.conf"
    local since
    since=$(date +%s.%N)
    systemctl daemon-reload
    wait_rules "$1.service" "$(grep -c '^ArmorPolicy=' "$here/nginx-armor.conf")" >/dev/null
    wait_rules "$other.service" 0 >/dev/null
    local i
    for i in $(seq 1 150); do
      journalctl -u unitarmor.service -o cat --since "@$since" | grep -q '^rescan: ' && return
      sleep 0.2
    done
    X "no rescan after the reload that armored $1"
  }
  port() { [ "$1" = nginx ] && echo 8080 || echo 8081; }
  url() { echo "http://127.0.0.1:$(port "$1")/small.html"; }
  for t in nginx nginx-twin; do
    [ "$(wrk -t1 -c4 -d2s "$(url $t)" 2>&1 | grep -c 'Non-2xx')" = 0 ] || X "$t answered errors"
  done
  # Each round: 8 runs of 3 s, each after 1 s of warming, armored and unarmored in the order
  # ABBAABBA (BAABBAAB in even rounds).
  for r in $(seq 1 "$rounds"); do
    armored=nginx unarmored=nginx-twin
    [ $((r % 2)) = 0 ] && armored=nginx-twin unarmored=nginx
    armor "$armored"
    order="armored unarmored unarmored armored armored unarmored unarmored armored"
    [ $((r % 2)) = 0 ] && order="unarmored armored armored unarmored unarmored armored armored unarmored"
    for c in $order; do
      t=$armored
      [ "$c" = unarmored ] && t=$unarmored
      wrk -t1 -c4 -d1s "$(url $t)" >/dev/null
      echo "N $r $c $(wrk -t1 -c4 -d3s "$(url $t)" | awk '/^Requests\/sec:/ { print $2 }')"
    done
  done
  # cache_count K: the decision cache's count K (0 found, 1 stored, 2 keys that took the task's
  # kept hash of its mounts), summed over the CPUs.
  cache_count() {
    bpftool -j map lookup name decided_counts key "$1" 0 0 0 2>/dev/null |
      grep -o '"value":[0-9][0-9]*' | awk -F: '{ n += $2 } END { print n + 0 }'
  }
  # What the kernel's programs cost per request, from their statistics (runs of their own:
  # the statistics' clock reads cost time too), under the last round's armor.
  sysctl -qw kernel.bpf_stats_enabled=1
  for c in unarmored armored; do
    t=$armored
    [ "$c" = unarmored ] && t=$unarmored
    wrk -t1 -c4 -d1s "$(url $t)" >/dev/null
    snapshot >/run/bench/before
    found0=$(cache_count 0) stored0=$(cache_count 1) kept0=$(cache_count 2)
    out=$(wrk -t1 -c4 -d4s "$(url $t)")
    snapshot >/run/bench/after
    req=$(echo "$out" | awk '/ requests in / { print $1 }')
    # The decision cache's own counts over the run: lookups that found a decision, decisions
    # stored, keys made with a kept mounts hash (every armored process on the guest, which is
    # nginx alone here).
    if [ "$c" = armored ] && [ "${req:-0}" -gt 0 ]; then
      echo "M nginx_cache_found_per_request $(awk -v n=$(($(cache_count 0) - found0)) -v r="$req" 'BEGIN { printf "%.3f", n / r }')"
      echo "M nginx_cache_stored_per_request $(awk -v n=$(($(cache_count 1) - stored0)) -v r="$req" 'BEGIN { printf "%.3f", n / r }')"
      echo "M nginx_cache_kept_per_request $(awk -v n=$(($(cache_count 2) - kept0)) -v r="$req" 'BEGIN { printf "%.3f", n / r }')"
    fi
    rps=$(echo "$out" | awk '/^Requests\/sec:/ { print $2 }')
    awk -v c="$c" -v req="$req" -v rps="$rps" 'NR == FNR { ns[$1] = $3; n[$1] = $2; next }
      { t += $3 - ns[$1]; if (req > 0 && $2 > n[$1]) printf "Q %s %s %.2f %.0f\n", c, $1, ($2 - n[$1]) / req, ($3 - ns[$1]) / req }
      END { if (req > 0) printf "P %s %.0f %.0f\n", c, t / req, 1e9 / rps }' \
      /run/bench/before /run/bench/after
  done
  sysctl -qw kernel.bpf_stats_enabled=0
  systemctl stop nginx.service nginx-twin.service
  rm -rf /etc/systemd/system/nginx.service.d /etc/systemd/system/nginx-twin.service.d
else
  echo "# nginx not measured: $(tail -n 3 /run/bench/dpkg.log 2>/dev/null | tr '\n' ' ')"
fi

# --- the daemon ------------------------------------------------------------------------------
pid=$(systemctl show -P MainPID unitarmor.service)
ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
# idle SUFFIX: the daemon at rest for 10 s: its CPU ticks, and its resident memory sampled each
# second, the median and the largest. It gives freed heap memory back every 10 s (events.rs),
# so a single sample lands anywhere between its floor and the peak of the 10 s before.
idle() {
  local a i rs=()
  a=$(ticks)
  for i in $(seq 1 10); do
    sleep 1
    rs+=("$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")")
  done
  echo "M cpu_ticks_idle_10s$1 $(($(ticks) - a))"
  printf '%s\n' "${rs[@]}" | sort -n | awk -v s="$1" '{ v[NR] = $1 }
    END { printf "M rss_kib%s %d\nM rss_kib_max%s %d\n", s, (v[5] + v[6]) / 2, s, v[NR] }'
}
echo "M armored_units $(unitarmor status --json 2>/dev/null | grep -o '"unit":' | wc -l)"
idle ""

# The same with 1,000 more armored units (each a oneshot with one rule of its own, not
# running), then during a denial flood: an armored unit's shell opening a file it is denied,
# in a loop, for 10 s. The kernel counts repeats instead of sending them (report.h), so the
# daemon reads counts, not events.
n=1000
mkdir -p $(seq -f "/etc/systemd/system/bench-k%.0f.service.d" 1 $n)
for i in $(seq 1 $n); do
  printf '[Service]\nType=oneshot\nExecStart=/bin/true\n' >/etc/systemd/system/bench-k$i.service
  printf '[X-Armor]\nArmorPolicy=deny read /srv/bench-k/%d\n' "$i" \
    >/etc/systemd/system/bench-k$i.service.d/armor.conf
done
echo flood >$B/flood
unit bench-flood.service '[Service]
ExecStart=/bin/sh -c "exec 2>/dev/null; while :; do read x <'$B'/flood; done"'
mkdir -p /etc/systemd/system/bench-flood.service.d
printf '[X-Armor]\nArmorPolicy=deny read %s/flood\n' $B >/etc/systemd/system/bench-flood.service.d/armor.conf
systemctl daemon-reload
wait_rules bench-k$n.service 1 && wait_rules bench-flood.service 1
# Settled: the watcher's and the reload's passes are over.
sleep 10
echo "M armored_units_many $(unitarmor status --json 2>/dev/null | grep -o '"unit":' | wc -l)"
idle _many
# Measured from 3 s after its start: the start's own request for a pass (the first since the
# reload) is not the flood's.
systemctl start bench-flood.service
sleep 3
a=$(ticks)
d0=$(unitarmor status --json bench-flood.service | sed -n 's/.*"denied": \([0-9]*\).*/\1/p')
sleep 10
echo "M cpu_ticks_flood_10s $(($(ticks) - a))"
d1=$(unitarmor status --json bench-flood.service | sed -n 's/.*"denied": \([0-9]*\).*/\1/p')
echo "M flood_denied_10s $((${d1:-0} - ${d0:-0}))"
echo "M rss_kib_flood $(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")"
systemctl stop bench-flood.service
echo "# done"
