#!/bin/bash
# The whole guest suite in one boot (a boot takes both cores for a minute under emulation):
# every scenario runs in turn, and the last line sums them up. With arguments, only the scenarios
# named, each with an argument after a colon (`tests/vm/run tests/vm/suite.sh protect.sh
# scale.sh:2000`).
set -u
total_pass=0 total_fail=0
scenarios=("$@")
# scale.sh runs 200 instances here (they share one policy slot: the check that fails if each
# took its own); `tests/vm/run tests/vm/suite.sh scale.sh:2000` runs more than the kernel has
# slots, which takes a quarter of an hour under emulation. reload.sh makes 2 tries of each kind
# here; `reload.sh:50` is the full proof.
[ $# -gt 0 ] || scenarios=(smoke.sh file-rules.sh protect.sh caps.sh net.sh receive.sh memfd.sh peers.sh reload.sh:2 journal.sh failclosed.sh noreload.sh pending.sh straggler.sh scale.sh:200 package.sh)
for spec in "${scenarios[@]}"; do
  scenario=${spec%%:*}
  args=()
  [ "$spec" = "$scenario" ] || args=("${spec#*:}")
  echo "# $spec"
  began=$(date +%s)
  out=$(mktemp)
  ./"$scenario" "${args[@]}" 2>&1 | tee "$out"
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
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
