#!/bin/bash
# 10,000 rules (issue 12, scale): a drop-in of ten ordinary rules with globs and 10,000
# `deny read /opt/nothing/N/**` compiles (the kernel knows its rules by class and action,
# compile/groups.rs), is enforced from the unit's first instruction after daemon-reload, and
# each denial names the rule that matched, with its file and line. Prints the timings.
# Run in the guest by tests/vm/run (through suite.sh).
. ./lib.sh

A=/var/lib/armortest
mkdir -p $A /run/armortest /opt/nothing/9999 /opt/nothing/5000
echo big-secret >/opt/nothing/9999/f
echo big-secret >/opt/nothing/5000/f
echo big-free >/opt/free-file
cat >$A/big.sh <<'EOF'
for f in /opt/nothing/9999/f /opt/nothing/5000/f /opt/free-file; do
  if cat "$f" >/dev/null 2>&1; then echo "$f read"; else echo "$f refused"; fi
done >/run/armortest/$1.out
EOF
for u in armor-big armor-big-twin; do
  unit $u.service "[Unit]
StartLimitIntervalSec=0
[Service]
Type=oneshot
ExecStart=/bin/sh $A/big.sh %N"
done
mkdir -p /etc/systemd/system/armor-big.service.d
{
  echo '[X-Armor]'
  cat <<'EOF'
ArmorPolicy=deny read /etc/shadow /etc/gshadow
ArmorPolicy=deny write /etc/ /usr/ /boot/
ArmorPolicy=allow exec /usr/** /bin/** /lib/**
ArmorPolicy=audit read /srv/www/**
ArmorPolicy=deny read /home/*/.ssh/**
ArmorPolicy=deny write /var/log/*.log?
ArmorPolicy=deny read /var/lib/app/secret-?/**
ArmorPolicy=deny exec /tmp/** /dev/shm/**
ArmorPolicy=allow write /var/lib/app/ /run/ /tmp/ /dev/null
ArmorPolicy=deny read /srv/other/
EOF
  seq 0 9999 | sed 's|.*|ArmorPolicy=deny read /opt/nothing/&/**|'
} >/etc/systemd/system/armor-big.service.d/armor.conf
# /opt/nothing/9999/** is on line 1 + 10 + 10,000 = 10,011.
check "unitarmor check: the 10,010-rule drop-in has no errors" \
  unitarmor check /etc/systemd/system/armor-big.service.d/armor.conf
t0=$(date +%s.%N)
check "daemon-reload with the 10,010-rule drop-in" systemctl daemon-reload
t1=$(date +%s.%N)
check "armor-big.service is armored with 10,010 rules" wait_rules armor-big.service 10010
t2=$(date +%s.%N)
echo "# 10,010 rules: daemon-reload took $(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }") s (the daemon compiled them inside it); armored $(awk "BEGIN { printf \"%.1f\", $t2 - $t0 }") s after it began"
check "armor-big.service runs" systemctl start armor-big.service
t3=$(date +%s.%N)
echo "# its start took $(awk "BEGIN { printf \"%.1f\", $t3 - $t2 }") s"
check "armor-big: /opt/nothing/9999/f refused" grep -qx "/opt/nothing/9999/f refused" /run/armortest/armor-big.out
check "armor-big: /opt/nothing/5000/f refused" grep -qx "/opt/nothing/5000/f refused" /run/armortest/armor-big.out
check "armor-big: /opt/free-file read" grep -qx "/opt/free-file read" /run/armortest/armor-big.out
check "the unarmored twin runs" systemctl start armor-big-twin.service
check "the twin read /opt/nothing/9999/f" grep -qx "/opt/nothing/9999/f read" /run/armortest/armor-big-twin.out
# The kernel knows the deny read rules as one; the record names the one that matched.
record() {
  journalctl -u armor-big.service -o export | grep -aqx "UNITARMOR_PATH=$1" || return 1
  journalctl -u armor-big.service -o export | awk -v p="UNITARMOR_PATH=$1" -v r="UNITARMOR_RULE=$2" -v s="UNITARMOR_RULE_SOURCE=$3" '
    /^$/ { if (hp && hr && hs) found = 1; hp = hr = hs = 0; next }
    $0 == p { hp = 1 } $0 == r { hr = 1 } $0 == s { hs = 1 }
    END { if (hp && hr && hs) found = 1; exit !found }'
}
check "the record of /opt/nothing/9999/f names its rule and line 10,011" eventually \
  record /opt/nothing/9999/f "deny read /opt/nothing/9999/**" /etc/systemd/system/armor-big.service.d/armor.conf:10011
check "the record of /opt/nothing/5000/f names its rule and line 5,012" eventually \
  record /opt/nothing/5000/f "deny read /opt/nothing/5000/**" /etc/systemd/system/armor-big.service.d/armor.conf:5012
check "--rules: the deny read rules are counted together (2 denials)" eventually sh -c \
  'unitarmor status armor-big.service --rules | grep -qE "^ +2 +0 +0 +0  10004 deny read rules, counted together"'
rm -rf /etc/systemd/system/armor-big* /opt/nothing /opt/free-file
systemctl daemon-reload
finish
