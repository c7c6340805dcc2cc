#!/bin/bash
# The dry run (issue 13): `unitarmor check UNIT --against-journal` replays what the unit was
# recorded doing against the policy its drop-ins say now, without a reload. The unit first
# runs enforced (one denial), then in ArmorMode=audit (would-be denials and audit records, one
# of them flooded so that a summary counts its repeats), then, after a mark in time, once more.
# Candidate policies are then written to disk (no daemon-reload: check reads the files) and
# replayed: a too-tight one lists exactly the operations it would break and exits 2, one that
# allows everything recorded exits 0, and --since leaves the older records out.
# Run in the guest by tests/vm/run (through suite.sh).
. ./lib.sh

A=/var/lib/armortest
D=/srv/armor-replay
U=armor-replay.service
CONF=/etc/systemd/system/$U.d/armor.conf
mkdir -p $A /run/armortest $D/data $D/out
for f in denied secret late data/a data/b; do echo "$f" >$D/$f; done
cat >$A/replay.sh <<'EOF'
#!/bin/sh
# Every run does the same; which of it is recorded depends on the policy.
D=/srv/armor-replay
cat $D/denied $D/secret >/dev/null 2>&1
i=0
while [ $i -lt 50 ]; do read -r l <$D/data/a; i=$((i + 1)); done
cat $D/data/b >/dev/null 2>&1
echo x >$D/out/x 2>/dev/null
/usr/bin/id >/dev/null 2>&1
cat $D/late >/dev/null 2>&1
exit 0
EOF
chmod 755 $A/replay.sh
unit $U "[Unit]
StartLimitIntervalSec=0
[Service]
Type=oneshot
ExecStart=$A/replay.sh"

# journal_has TEXT: a record of the unit's names TEXT.
journal_has() { journalctl -q -o cat UNITARMOR_UNIT=$U | grep -qF -- "$1"; }
# replay [ARGS...]: the dry run of the unit, output in /tmp/replay.out, its status in
# /tmp/replay.rc.
replay() {
  local rc=0
  unitarmor check $U --against-journal "$@" >/tmp/replay.out 2>/tmp/replay.err || rc=$?
  echo $rc >/tmp/replay.rc
  cat /tmp/replay.out /tmp/replay.err
}
# status_is N: the last replay exited with N.
status_is() { [ "$(cat /tmp/replay.rc)" = "$1" ] || { echo "exit status $(cat /tmp/replay.rc), not $1"; cat /tmp/replay.out; false; }; }
# breaks_are OBJECT...: the objects --json lists as breaking are exactly these (a group's
# "change" comes before its "object": JSON keys are sorted).
breaks_are() {
  local got want=
  got=$(awk -F'": ' '/^ *"change": /{c=$2} /^ *"object": /{if (c ~ /"breaks"/) {o=$2; sub(/^"/, "", o); sub(/",?$/, "", o); print o}}' /tmp/replay.out | sort -u | tr '\n' ' ')
  [ $# -eq 0 ] || want=$(printf '%s\n' "$@" | sort -u | tr '\n' ' ')
  [ "$got" = "$want" ] || { echo "breaks: '$got', wanted '$want'"; cat /tmp/replay.out; false; }
}

# 1. Enforced: the read of $D/denied is refused.
dropin $U armor.conf "[X-Armor]
ArmorPolicy=deny read $D/denied"
systemctl daemon-reload
check "$U runs enforced" systemctl start $U
check "its denial is in the journal" eventually journal_has "Denied read of $D/denied"

# 2. Audit mode: would-be denials, audit records, and 50 reads of one file (a flood).
dropin $U armor.conf "[X-Armor]
ArmorMode=audit
ArmorPolicy=deny read $D/secret
ArmorPolicy=deny write $D/out/
ArmorPolicy=audit read $D/data/a
ArmorPolicy=audit read $D/data/b
ArmorPolicy=audit exec /usr/bin/id"
systemctl daemon-reload
check "$U runs in audit mode" systemctl start $U
check "the would-be denial of a read is in the journal" eventually journal_has "Would deny read of $D/secret"
check "the audited exec is in the journal" eventually journal_has "Audited exec of /usr/bin/id"
check "the flood's summary is in the journal (after the 10 s window)" \
  eventually sh -c "sleep 1; journalctl -q -o cat UNITARMOR_UNIT=$U MESSAGE_ID=f7268ce9a591428d92a084ca78847c90 | grep -qF 'audit read $D/data/a'"

# 3. Later, after a mark: one more run, whose only record is the read of $D/late.
sleep 1.2
mark=$(date '+%Y-%m-%d %H:%M:%S')
sleep 1.2
dropin $U armor.conf "[X-Armor]
ArmorMode=audit
ArmorPolicy=deny read $D/late"
systemctl daemon-reload
check "$U runs after the mark" systemctl start $U
check "the late would-be denial is in the journal" eventually journal_has "Would deny read of $D/late"

# 4. A too-tight candidate, on disk only: it would break the read of the secret and of data/b
# (would-deny and audit when recorded) and the exec of id (its exec and its mapping, two
# operations); it allows the read that was denied.
dropin $U armor.conf "[X-Armor]
ArmorPolicy=deny read $D/secret $D/data/b
ArmorPolicy=deny exec /usr/bin/id"
replay
check "too tight: exit status 2" status_is 2
check "too tight: the rule that would refuse is named with its file:line" \
  grep -qF "by \"deny read $D/secret $D/data/b\" ($CONF:2)" /tmp/replay.out
check "too tight: the exec of id is listed as breaking" \
  sh -c "sed -n '/^Would break/,/^Loosened/p' /tmp/replay.out | grep -qxF '  exec exec /usr/bin/id'"
check "too tight: the denied read is listed as loosened" \
  sh -c "sed -n '/^Loosened/,/^unchanged/p' /tmp/replay.out | grep -qF 'read open $D/denied'"
check "too tight: the read of data/a (audit, then allowed) is not listed" \
  sh -c "! grep -qF '$D/data/a' /tmp/replay.out"
replay --json
check "too tight --json: exit status 2" status_is 2
check "too tight --json: exactly the secret, data/b and the exec of id break" \
  breaks_are $D/secret $D/data/b /usr/bin/id
check "too tight --json: the recorded verdicts were would-deny and audit" \
  sh -c "grep -A5 '\"object\": \"$D/data/b\"' /tmp/replay.out | grep -q '\"recorded\": \"audit\"'"
check "too tight --json: every read of data/a is counted (records + suppressed = 50)" \
  sh -c "grep -A8 '\"object\": \"$D/data/a\"' /tmp/replay.out | tr -d ' ,' | awk -F: '/\"records\"/{r=\$2}/\"suppressed\"/{s=\$2}END{print r\"+\"s; exit !(r+s==50 && s>0)}'"
check "too tight --json: nothing is left unreplayed" \
  grep -qF '"not_replayed": []' /tmp/replay.out

# 5. The same in audit mode refuses nothing: exit status 0.
dropin $U armor.conf "[X-Armor]
ArmorMode=audit
ArmorPolicy=deny read $D/secret $D/data/b
ArmorPolicy=deny exec /usr/bin/id"
replay
check "audit-mode candidate: exit status 0" status_is 0
check "audit-mode candidate: nothing would break" grep -qF ": 0 operations would break" /tmp/replay.out

# 6. A candidate that allows everything recorded: exit status 0, nothing listed as breaking.
dropin $U armor.conf "[X-Armor]
ArmorPolicy=deny read $D/never"
replay --json
check "permissive candidate: exit status 0" status_is 0
check "permissive candidate --json: no operation breaks" breaks_are
check "permissive candidate --json: would_break is 0" grep -q '"would_break": 0$' /tmp/replay.out

# 7. --since: the secret (recorded before the mark) is left out, the late read is not.
dropin $U armor.conf "[X-Armor]
ArmorPolicy=deny read $D/secret $D/late"
replay --json
check "whole journal: the secret and the late read break" breaks_are $D/secret $D/late
replay --json --since "$mark"
check "--since: exit status 2" status_is 2
check "--since: only the late read breaks" breaks_are $D/late
check "--since: the older records are not replayed at all" sh -c "! grep -qF '\"object\": \"$D/secret\"' /tmp/replay.out"

# 7b. Forged records: any root process can send a record with the daemon's fields (here a copy
# of a real one naming another file, through logger --journald); only the daemon's own
# (_SYSTEMD_UNIT=unitarmor.service) are replayed.
mark2=$(date '+%Y-%m-%d %H:%M:%S')
sleep 1
journalctl -o export -n 1 UNITARMOR_UNIT=$U MESSAGE_ID=63870318b8114d0f9b311f80e77ce97a \
  | grep -aE '^[A-Z][A-Z0-9_]*=' | grep -avE '^(MESSAGE|UNITARMOR_PATH)=' >/tmp/forged.fields
echo "MESSAGE=Denied read of $D/forged" >>/tmp/forged.fields
echo "UNITARMOR_PATH=$D/forged" >>/tmp/forged.fields
logger --journald=/tmp/forged.fields
check "the forged record is in the journal under the unit's fields" eventually sh -c \
  "journalctl UNITARMOR_UNIT=$U UNITARMOR_PATH=$D/forged -o cat | grep -q forged"
replay --json --since "$mark2"
check "the dry run replays no forged record" sh -c "! grep -q forged /tmp/replay.out"

# 8. Errors: exit status 1, naming what failed.
replay_missing() {
  local rc=0
  env PATH=/nonexistent /usr/bin/unitarmor check $U --against-journal >/tmp/replay.out 2>&1 || rc=$?
  cat /tmp/replay.out
  [ $rc = 1 ] && grep -q "cannot run \`journalctl" /tmp/replay.out
}
check "no journalctl: exit status 1, naming the command" replay_missing
bad_since() {
  local rc=0
  unitarmor check $U --against-journal --since "not a time" >/tmp/replay.out 2>&1 || rc=$?
  cat /tmp/replay.out
  [ $rc = 1 ] && grep -q "journalctl .* failed" /tmp/replay.out
}
check "journalctl failing: exit status 1, naming the command" bad_since
check_fails "a unit with no files: an error" unitarmor check armor-replay-none.service --against-journal

rm -rf /etc/systemd/system/$U /etc/systemd/system/$U.d $D $A/replay.sh
systemctl daemon-reload
finish
