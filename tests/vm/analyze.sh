#!/bin/bash
# `unitarmor analyze` (issue 14): per area, whether systemd's directives, unitarmor, both or
# neither confine a service, what was seen at run time, and a suggestion for each gap; and
# the table of every loaded service, most exposed first. Run in the guest by tests/vm/run
# (through suite.sh).
. ./lib.sh

echo analyze-secret >/etc/armor-an-secret
unit armor-an-open.service '[Service]
ExecStart=/bin/sleep 300'
unit armor-an-both.service '[Service]
ProtectSystem=strict
PrivateNetwork=yes
ExecStart=/bin/sh -c "cat /etc/armor-an-secret; exec sleep 300"'
dropin armor-an-both.service armor.conf '[X-Armor]
ArmorPolicy=deny read /etc/armor-an-secret
ArmorPolicy=deny cap sys_module'
systemctl daemon-reload
check "armor-an-both.service is armored" wait_rules armor-an-both.service 2
systemctl start armor-an-open.service armor-an-both.service
check "armor-an-both.service's read was denied" eventually sh -c \
  bash -c 'unit_lines armor-an-both.service | grep -q "armor-an-secret: Permission denied"'
# The daemon publishes its counters every second.
check "the daemon counted the denial" eventually sh -c \
  'unitarmor status --json armor-an-both.service | grep -q "\"denied\": 1,"'
unitarmor analyze armor-an-both.service >/tmp/an-both.txt 2>&1
sed 's/^/#   /' /tmp/an-both.txt
area_is() { grep -qE "^  $1 +$2\$" /tmp/an-both.txt; }
check "analyze: files are confined by both (ProtectSystem=strict and a read rule)" area_is files both
check "analyze: exec by neither" area_is exec -
check "analyze: network by systemd (PrivateNetwork=yes)" area_is network systemd
check "analyze: capabilities by unitarmor (a cap rule; root with every capability)" area_is capabilities armor
check "analyze: processes and the kernel by unitarmor (its protections)" sh -c \
  'grep -qE "^  processes +armor$" /tmp/an-both.txt && grep -qE "^  kernel +armor$" /tmp/an-both.txt'
check "analyze: exposure 6/12, armored" grep -q "^armor-an-both.service: exposure 6/12, armored (enforce)$" /tmp/an-both.txt
check "analyze: a suggestion for the exec gap" grep -q "suggest:   add an exec allow-list" /tmp/an-both.txt
check "analyze: what was seen (1 denied)" grep -q "seen: 1 denied" /tmp/an-both.txt
check "analyze: the cap rule never decided" grep -q "never decided: deny cap sys_module" /tmp/an-both.txt
check "analyze --json: exposure and the files area" sh -c \
  'unitarmor analyze --json armor-an-both.service | tr -d " \n" | grep -q "\"exposure\":6,\"areas\":\[{\"area\":\"files\",\"cover\":\"both\""'
check "analyze: an unsandboxed, unarmored root service is exposed everywhere (12/12)" sh -c \
  'unitarmor analyze armor-an-open.service | grep -q "^armor-an-open.service: exposure 12/12, not armored$"'
unitarmor analyze >/tmp/an-all.txt 2>&1
check "analyze (all): the table lists both, the more exposed first" sh -c \
  'a=$(grep -n "^armor-an-open.service " /tmp/an-all.txt | cut -d: -f1); b=$(grep -n "^armor-an-both.service " /tmp/an-all.txt | cut -d: -f1); [ -n "$a" ] && [ -n "$b" ] && [ "$a" -lt "$b" ]'
check "analyze (all): unitarmor.service itself is listed" grep -q "^unitarmor.service " /tmp/an-all.txt
systemctl stop armor-an-open.service armor-an-both.service
rm -rf /etc/systemd/system/armor-an-* /etc/armor-an-secret
systemctl daemon-reload
finish
