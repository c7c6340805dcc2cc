#!/bin/bash
# `cap` rules (issue 12): a root service is refused a capability with EPERM, live, and the
# denial is in `journalctl -u UNIT`; an unarmored twin (the same unit, no drop-in) uses the
# same capability. Deny, allow-list, audit, ArmorMode=audit, systemd's own set-up left alone,
# a change applied to a running unit without a restart, and a misspelt capability.
# Run in the guest by tests/vm/run (through suite.sh).
. ./lib.sh

d=/var/lib/armortest-caps
mkdir -p "$d" /run/armortest-caps
# The attempts, each needing one capability of a root process:
#   chown  a root-owned file given to nobody: CAP_CHOWN
#   read   a mode-000 file of nobody's: CAP_DAC_READ_SEARCH or CAP_DAC_OVERRIDE
#   chmod  a file of nobody's: CAP_FOWNER
#   unshare a mount namespace (no mount: propagation unchanged): CAP_SYS_ADMIN
#   read /proc/self/stack opened by a parent: CAP_SYS_ADMIN, checked against the opener
cat >"$d/try" <<'EOF'
#!/bin/sh
# try NAME: one line per attempt in /run/armortest-caps/NAME.out: "ATTEMPT ok|fail".
d=/var/lib/armortest-caps
out=/run/armortest-caps/$1.out
: >"$out"
attempt() { name=$1; shift; if "$@" >/dev/null 2>&1; then echo "$name ok"; else echo "$name fail"; fi >>"$out"; }
cp "$d/root-file" "$d/chown-$1" 2>/dev/null
attempt chown chown nobody "$d/chown-$1"
attempt read cat "$d/locked"
attempt chmod chmod 0640 "$d/nobodys"
attempt unshare unshare --propagation unchanged -m true
# The kernel checks the opener's credentials when /proc/PID/stack is read: a child reading what
# its parent opened runs with credentials of its own.
attempt stack-child sh -c 'exec 3</proc/self/stack; cat <&3'
EOF
chmod 755 "$d/try"
echo data >"$d/root-file"
echo secret >"$d/locked"
chown nobody "$d/locked"
chmod 000 "$d/locked"
echo mine >"$d/nobodys"
chown nobody "$d/nobodys"

result() { grep -qx "$2 $3" "/run/armortest-caps/$1.out"; }
journal_has() { journalctl -u "$1" -o cat | grep -q "$2"; }
oneshot() {
  unit "$1.service" "[Service]
Type=oneshot
ExecStart=$d/try %N
$2"
}

oneshot armor-cap-deny 'PrivateTmp=yes'
oneshot armor-cap-twin 'PrivateTmp=yes'
oneshot armor-cap-allow ''
oneshot armor-cap-audit ''
oneshot armor-cap-dry ''
oneshot armor-cap-typo ''
# systemd's set-up of a unit with PrivateTmp= needs CAP_SYS_ADMIN: the rule is the service's.
dropin armor-cap-deny.service armor.conf '[X-Armor]
ArmorPolicy=deny cap chown sys_admin'
dropin armor-cap-allow.service armor.conf '[X-Armor]
ArmorPolicy=allow cap chown sys_admin'
dropin armor-cap-audit.service armor.conf '[X-Armor]
ArmorPolicy=audit cap fowner'
dropin armor-cap-dry.service armor.conf '[X-Armor]
ArmorMode=audit
ArmorPolicy=deny cap chown'
dropin armor-cap-typo.service armor.conf '[X-Armor]
ArmorPolicy=deny read /etc/shadow
ArmorPolicy=deny cap sys_admn'
systemctl daemon-reload
wait_rules armor-cap-deny.service 1
wait_rules armor-cap-allow.service 1
wait_rules armor-cap-audit.service 1
wait_rules armor-cap-dry.service 1
for u in deny twin allow audit dry; do
  check "armor-cap-$u starts (systemd's set-up is not held to cap rules)" systemctl start "armor-cap-$u.service"
done

check "twin: chown works" result armor-cap-twin chown ok
check "twin: reading a mode-000 file works" result armor-cap-twin read ok
check "twin: chmod of another user's file works" result armor-cap-twin chmod ok
check "twin: unshare -m works" result armor-cap-twin unshare ok
check "twin: a child reads the stack file its parent opened" result armor-cap-twin stack-child ok

check "deny cap chown: chown is refused" result armor-cap-deny chown fail
check "deny cap sys_admin: unshare -m is refused" result armor-cap-deny unshare fail
check "deny cap sys_admin: a child cannot read the stack file its parent opened" result armor-cap-deny stack-child fail
check "deny cap chown sys_admin: reading a mode-000 file still works" result armor-cap-deny read ok
check "deny cap chown sys_admin: chmod still works" result armor-cap-deny chmod ok
check "the denial of CAP_CHOWN is in journalctl -u" eventually journal_has armor-cap-deny.service \
  'Denied use of CAP_CHOWN by /usr/bin/chown (pid [0-9]*): rule "deny cap chown sys_admin" from /etc/systemd/system/armor-cap-deny.service.d/armor.conf:2'
check "the denial of CAP_SYS_ADMIN is in journalctl -u" eventually journal_has armor-cap-deny.service \
  'Denied use of CAP_SYS_ADMIN by /usr/bin/unshare'
check "the record's class and operation are cap and capable" sh -c \
  "journalctl -u armor-cap-deny.service -o verbose | grep -q '^ *UNITARMOR_CLASS=cap' &&
   journalctl -u armor-cap-deny.service -o verbose | grep -q '^ *UNITARMOR_OPERATION=capable'"
check "chown's denial is one record naming UNITARMOR_CAPABILITY=CAP_CHOWN" eventually record \
  armor-cap-deny.service UNITARMOR_ACTION=deny UNITARMOR_CLASS=cap UNITARMOR_OPERATION=capable \
  UNITARMOR_CAPABILITY=CAP_CHOWN UNITARMOR_EXE=/usr/bin/chown
check "unshare's denial is one record naming UNITARMOR_CAPABILITY=CAP_SYS_ADMIN" eventually record \
  armor-cap-deny.service UNITARMOR_ACTION=deny UNITARMOR_CAPABILITY=CAP_SYS_ADMIN UNITARMOR_EXE=/usr/bin/unshare

check "allow cap chown sys_admin: chown works" result armor-cap-allow chown ok
check "allow cap chown sys_admin: unshare -m works" result armor-cap-allow unshare ok
check "allow-list: reading a mode-000 file is refused" result armor-cap-allow read fail
check "allow-list: chmod of another user's file is refused" result armor-cap-allow chmod fail
check "the allow-list's denial names the capability" eventually journal_has armor-cap-allow.service \
  'Denied use of CAP_FOWNER by /usr/bin/chmod.*cap is an allow-list and no allow rule matches'

check "audit cap fowner: chmod works" result armor-cap-audit chmod ok
check "audit cap fowner: it is reported" eventually journal_has armor-cap-audit.service \
  'Audited use of CAP_FOWNER by /usr/bin/chmod'
check "audit cap fowner: its record says audit and CAP_FOWNER" eventually record armor-cap-audit.service \
  UNITARMOR_ACTION=audit UNITARMOR_CLASS=cap UNITARMOR_CAPABILITY=CAP_FOWNER
check "ArmorMode=audit: chown works" result armor-cap-dry chown ok
check "ArmorMode=audit: it is reported as would-deny" eventually journal_has armor-cap-dry.service \
  'Would deny use of CAP_CHOWN by /usr/bin/chown'
check "ArmorMode=audit: its record says would-deny and CAP_CHOWN" eventually record armor-cap-dry.service \
  UNITARMOR_ACTION=would-deny UNITARMOR_CLASS=cap UNITARMOR_CAPABILITY=CAP_CHOWN

check "a misspelt capability is an error naming the file, line and the likely name" eventually sh -c \
  "unitarmor status armor-cap-typo.service | grep -F 'armor-cap-typo.service.d/armor.conf:3' | grep -q \"unknown capability 'sys_admn'; did you mean 'sys_admin'\""

# --- live: a running unit's capability is taken away by a drop-in change and a reload -----
unit armor-cap-live.service "[Service]
ExecStart=/bin/sh -c 'while :; do cp $d/root-file $d/live; if chown nobody $d/live 2>/dev/null; then echo ok; else echo fail; fi >/run/armortest-caps/live.now; sleep 0.3; done'"
dropin armor-cap-live.service armor.conf '[X-Armor]
ArmorPolicy=deny cap net_raw'
systemctl daemon-reload
wait_rules armor-cap-live.service 1
systemctl start armor-cap-live.service
pid=$(systemctl show -P MainPID armor-cap-live.service)
live_is() { [ "$(cat /run/armortest-caps/live.now 2>/dev/null)" = "$1" ]; }
check "live: chown works under deny cap net_raw" eventually live_is ok
dropin armor-cap-live.service armor.conf '[X-Armor]
ArmorPolicy=deny cap net_raw chown'
systemctl daemon-reload
check "live: after the change and a reload, chown is refused" eventually live_is fail
check "live: the service was not restarted" test "$(systemctl show -P MainPID armor-cap-live.service)" = "$pid"
systemctl stop armor-cap-live.service
rm -f "$d/chown-"* "$d/live"
finish
