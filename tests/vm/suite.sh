#!/bin/bash
# The whole guest suite in one boot (a boot takes both cores for a minute under emulation):
# every scenario runs in turn, and the last line sums them up. With arguments, only the scenarios
# named, each with an argument after a colon (`tests/vm/run tests/vm/suite.sh protect.sh
# scale.sh:2000`). `--limit=SECONDS` first changes how long a scenario may run (0: no limit).
set -u
total_pass=0 total_fail=0
# No scenario takes more than a quarter of an hour, even with three guests on two cores: one
# that runs 25 minutes hangs. Its state is printed a little before it is stopped (what runs,
# systemd's jobs, the daemon's last words), so that a hang in CI says where it is.
limit=1500
case ${1:-} in --limit=*) limit=${1#--limit=}; shift ;; esac
scenarios=("$@")
# scale.sh runs 200 instances here (they share one policy slot: the check that fails if each
# took its own); `tests/vm/run tests/vm/suite.sh scale.sh:2000` runs more than the kernel has
# slots, which takes a quarter of an hour under emulation. reload.sh makes 2 tries of each kind
# here; `reload.sh:50` is the full proof.
[ $# -gt 0 ] || scenarios=(smoke.sh file-rules.sh protect.sh caps.sh net.sh receive.sh memfd.sh peers.sh reload.sh:2 journal.sh failclosed.sh noreload.sh pending.sh straggler.sh scale.sh:200 package.sh)
watchdog() {
  [ "$limit" -gt 20 ] || return
  sleep $((limit - 20)) || return
  echo "# $1 still runs after $((limit - 20)) s; the guest now:"
  {
    ps -eo pid,ppid,stat,wchan:22,etimes,unit:36,args --sort=pid | grep -v ' \[[^]]*\]$'
    systemctl list-jobs --no-pager
    timeout 15 unitarmor status
    journalctl -u unitarmor.service -n 80 --no-pager -o short-monotonic
  } 2>&1 | sed 's/^/#   /'
}
for spec in "${scenarios[@]}"; do
  scenario=${spec%%:*}
  args=()
  [ "$spec" = "$scenario" ] || args=("${spec#*:}")
  echo "# $spec"
  began=$(date +%s)
  out=$(mktemp)
  # A scenario that hangs is shown as it hangs, then stopped, and the suite goes on.
  watchdog "$spec" &
  dog=$!
  timeout -k 10 "$limit" ./"$scenario" "${args[@]}" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  kill "$dog" 2>/dev/null
  wait "$dog" 2>/dev/null
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    echo "FAIL - $scenario did not end within $limit s: stopped"
    total_fail=$((total_fail + 1))
    continue
  fi
  if [ -z "$line" ]; then
    echo "FAIL - $scenario ended without a summary"
    total_fail=$((total_fail + 1))
    continue
  fi
  echo "# $spec: $line in $(($(date +%s) - began)) s"
  total_pass=$((total_pass + $(echo "$line" | cut -d' ' -f1)))
  total_fail=$((total_fail + $(echo "$line" | cut -d' ' -f3)))
done
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
