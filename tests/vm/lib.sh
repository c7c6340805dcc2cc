# Shared helpers for the guest scenarios: `check NAME CMD...` runs CMD and records a pass or a
# failure; `finish` prints the summary line and exits non-zero on any failure.
# shellcheck shell=bash
set -u
PASSED=0
FAILED=0
# When a check comes 15 s or more after the one before it, a comment says so: under
# emulation that is where a scenario's time goes, and the suite's timing has a budget.
LAST_CHECK_AT=$SECONDS
took() {
  local gap=$((SECONDS - LAST_CHECK_AT))
  [ "$gap" -lt 15 ] || echo "# ($gap s since the last check)"
  LAST_CHECK_AT=$SECONDS
}

check() {
  local name=$1; shift
  if "$@" >/tmp/check.out 2>&1; then
    took
    PASSED=$((PASSED + 1))
    echo "ok - $name"
  else
    took
    FAILED=$((FAILED + 1))
    echo "FAIL - $name"
    sed 's/^/    /' /tmp/check.out | tail -n 20
  fi
}

# check_fails NAME CMD...: CMD must fail.
check_fails() {
  local name=$1; shift
  if "$@" >/tmp/check.out 2>&1; then
    took
    FAILED=$((FAILED + 1))
    echo "FAIL - $name (the command succeeded)"
    sed 's/^/    /' /tmp/check.out | tail -n 20
  else
    took
    PASSED=$((PASSED + 1))
    echo "ok - $name"
  fi
}

finish() {
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}

# unit NAME TEXT: writes /etc/systemd/system/NAME.
unit() {
  printf '%s\n' "$2" >"/etc/systemd/system/$1"
}

# dropin UNIT FILE TEXT: writes /etc/systemd/system/UNIT.d/FILE.
dropin() {
  mkdir -p "/etc/systemd/system/$1.d"
  printf '%s\n' "$3" >"/etc/systemd/system/$1.d/$2"
}

# armored_rules UNIT: the rule count the daemon reports for UNIT, or nothing.
armored_rules() {
  unitarmor status --json "$1" 2>/dev/null | sed -n 's/.*"rules": \([0-9]*\).*/\1/p' | head -n 1
}

# wait_rules UNIT N: waits (up to 180 s) until the daemon armors UNIT with N rules (N=0:
# until it no longer armors UNIT). Each look runs `unitarmor status`, which takes the guest's
# CPU from the daemon and PID 1 it waits for: the looks come 0.2 s apart at first, then 1 s.
wait_rules() {
  local n end=$((SECONDS + 180)) pause=0.2 looks=0
  while :; do
    n=$(armored_rules "$1")
    if [ "${n:-0}" = "$2" ]; then return 0; fi
    [ "$SECONDS" -lt "$end" ] || break
    looks=$((looks + 1))
    [ "$looks" -lt 10 ] || pause=1
    sleep "$pause"
  done
  echo "timed out waiting for $1 to have $2 rules (has '${n:-none}')"
  return 1
}

# result_of UNIT: the unit's last result (success, exit-code...).
result_of() {
  systemctl show -P Result "$1"
}

# unit_lines UNIT: the unit's journal lines (message text), then those its last main process
# wrote to its output stream: journald files a stream's line under the writer's unit by its
# cgroup, and under load it has been seen to file one under none.
# Only a unit PID 1 has loaded is asked for its main process: asking loads a unit, and a FIFO
# among its drop-ins would then hang PID 1 (failclosed.sh has one).
unit_lines() {
  local pid
  journalctl -u "$1" -o cat --no-pager
  [ -n "$(systemctl list-units --all --plain --no-legend "$1")" ] || return 0
  pid=$(systemctl show -P ExecMainPID "$1")
  if [ "${pid:-0}" != 0 ]; then journalctl _PID="$pid" -o cat --no-pager; fi
}
export -f unit_lines

# serve SOCKET CMD...: starts CMD, a server listening at the unix socket SOCKET, in the
# background (its pid in $server), and waits until the socket is there.
serve() {
  local sock=$1; shift
  rm -f "$sock"
  "$@" &
  server=$!
  eventually test -S "$sock"
}

# record UNIT FIELD=VALUE...: one record of UNIT's carries every FIELD=VALUE given (one JSON
# line a record: a binary field cannot split one, as it can in the export format).
record() {
  local u=$1; shift
  journalctl -u "$u" -o json | awk -v want="$*" 'BEGIN { n = split(want, w, " ")
      for (i = 1; i <= n; i++) { k = index(w[i], "=")
        w[i] = "\"" substr(w[i], 1, k - 1) "\":\"" substr(w[i], k + 1) "\"" } }
    { gsub(/" *: *"/, "\":\""); ok = 1; for (i = 1; i <= n; i++) if (index($0, w[i]) == 0) ok = 0
      if (ok) found = 1 }
    END { exit !found }'
}

# eventually CMD...: retries CMD for up to 20 s (the guest is emulated; timings vary).
eventually() {
  local i
  for i in $(seq 1 100); do
    "$@" && return 0
    sleep 0.2
  done
  "$@"
}
