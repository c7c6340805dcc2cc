#!/bin/bash
# Per-rule counters (issue 12): the kernel counts how often each rule decided (denied, would
# deny, audited, allowed), repeats and all; `unitarmor status UNIT --rules` (and --json) prints
# each rule with its source and counts, dead rules at zero; the daemon keeps node_exporter's
# textfile current. Run in the guest by tests/vm/run (through suite.sh).
. ./lib.sh

A=/var/lib/armortest
TEXTFILE=/var/lib/prometheus/node-exporter/unitarmor.prom
mkdir -p $A /var/lib/prometheus/node-exporter
# node_exporter's directory exists only once it is installed: the daemon's sandbox makes it
# writable from its next start (unitarmor.service: ReadWritePaths=-).
systemctl restart unitarmor.service
echo counted-secret >/etc/armor-count-secret
echo counted-audited >/etc/armor-count-audited
cat >$A/count.sh <<'EOF'
for i in 1 2 3; do cat /etc/armor-count-secret; done
for i in 1 2; do cat /etc/armor-count-audited >/dev/null; done
# Port 9 on loopback: allowed (the connect itself is refused by the kernel, nothing listens).
for i in 1 2; do (exec 3<>/dev/tcp/127.0.0.1/9) 2>/dev/null; done
# Port 10: not on the allow-list.
(exec 3<>/dev/tcp/127.0.0.1/10) 2>/dev/null
# Port 11: refused by its own deny rule, once.
(exec 3<>/dev/tcp/127.0.0.1/11) 2>/dev/null
exit 0
EOF
unit armor-count.service "[Unit]
StartLimitIntervalSec=0
[Service]
Type=oneshot
ExecStart=/bin/bash $A/count.sh"
policy='[X-Armor]
ArmorPolicy=deny read /etc/armor-count-secret
ArmorPolicy=audit read /etc/armor-count-audited
ArmorPolicy=allow connect tcp:127.0.0.1:9
ArmorPolicy=allow exec /usr/** /bin/** /lib/**
ArmorPolicy=deny read /nonexistent/never
ArmorPolicy=deny connect tcp:127.0.0.1:11'
dropin armor-count.service armor.conf "$policy"
systemctl daemon-reload
check "armor-count.service is armored with 6 rules" wait_rules armor-count.service 6
check "armor-count.service runs" systemctl start armor-count.service

# counts RULE COLUMN: the count in COLUMN (1 denied, 2 would deny, 3 audited, 4 allowed) of the
# row of RULE (its text) in `unitarmor status armor-count.service --rules`.
counts() {
  unitarmor status armor-count.service --rules | grep -F "  $1 (" | head -n 1 | awk -v c="$2" '{ print $c }'
}
# count_is RULE COLUMN N: eventually (the status is published every second).
count_is() {
  local i got
  for i in $(seq 1 50); do
    got=$(counts "$1" "$2")
    [ "$got" = "$3" ] && return 0
    sleep 0.2
  done
  echo "'$1' column $2: got '$got', want $3"
  unitarmor status armor-count.service --rules
  return 1
}
check "--rules: the deny rule denied 3 times" count_is "deny read /etc/armor-count-secret" 1 3
check "--rules: the audit rule audited 2 times" count_is "audit read /etc/armor-count-audited" 3 2
check "--rules: the connect allow rule allowed 2 connects" count_is "allow connect tcp:127.0.0.1:9" 4 2
check "--rules: the connect allow-list refused 1 (its own row)" \
  count_is "connect is an allow-list and no allow rule matches" 1 1
check "--rules: the rule that never matched is listed at zero" \
  sh -c 'unitarmor status armor-count.service --rules | grep -qE "^ +0 +0 +0 +0  deny read /nonexistent/never \(/etc/systemd/system/armor-count.service.d/armor.conf:6\)$"'
exec_allowed() {
  local n
  n=$(counts "allow exec /usr/** /bin/** /lib/**" 4)
  [ "${n:-0}" -ge 6 ] || { echo "allowed ${n:-none}"; return 1; }
}
check "--rules: the exec allow rule counted bash's and cat's execs and mappings (6 or more)" exec_allowed
check "--rules --json: the deny rule's object says denied 3, with its source" sh -c \
  'unitarmor status armor-count.service --rules --json | grep -A3 "\"rule\": \"deny read /etc/armor-count-secret\"" | tr -d "\n " |
   grep -q "\"source\":\"/etc/systemd/system/armor-count.service.d/armor.conf:2\",\"denied\":3,"'
# The connect deny rule counts in its own row; port 10 stays the allow-list's alone (above).
check "--rules --json: the connect deny rule's object says denied 1, with its source" sh -c \
  'unitarmor status armor-count.service --rules --json | grep -A3 "\"rule\": \"deny connect tcp:127.0.0.1:11\"" | tr -d "\n " |
   grep -q "\"source\":\"/etc/systemd/system/armor-count.service.d/armor.conf:7\",\"denied\":1,"'

# Repeats within the journal's window are not written again, but they are counted.
check "armor-count.service runs again" systemctl start armor-count.service
check "--rules: a second run's repeated denials are counted (6)" count_is "deny read /etc/armor-count-secret" 1 6
check "--rules: and the connect deny rule's second denial (2)" count_is "deny connect tcp:127.0.0.1:11" 1 2

series() { grep -E "^unitarmor_decisions_total\{unit=\"armor-count.service\",rule=\"$1\",source=\"[^\"]*armor.conf:$2\",verdict=\"$3\"\} $4\$" "$TEXTFILE"; }
check "textfile: the deny rule's denied series is 6" eventually series "deny read /etc/armor-count-secret" 2 denied 6
check "textfile: the audit rule's audited series is 4" eventually series "audit read /etc/armor-count-audited" 3 audited 4
check "textfile: the dead rule's series is there at 0" eventually series "deny read /nonexistent/never" 6 denied 0
check "textfile: the unit's lost events series is 0" grep -qx 'unitarmor_lost_events_total{unit="armor-count.service"} 0' "$TEXTFILE"
check "textfile: it says what its series are" grep -qx '# TYPE unitarmor_decisions_total counter' "$TEXTFILE"

# A changed policy is a new policy: its counts start from zero.
dropin armor-count.service armor.conf "$policy
ArmorPolicy=deny read /nonexistent/other"
systemctl daemon-reload
check "armor-count.service is armored with 7 rules" wait_rules armor-count.service 7
check "--rules: after the change the deny rule starts from 0" count_is "deny read /etc/armor-count-secret" 1 0
check "armor-count.service runs under the changed policy" systemctl start armor-count.service
check "--rules: and counts its 3 denials" count_is "deny read /etc/armor-count-secret" 1 3

rm -rf /etc/systemd/system/armor-count.service* /var/lib/prometheus
systemctl daemon-reload
finish
