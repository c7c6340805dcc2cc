#!/bin/bash
# Another name, by length: a file whose path is longer than the kernel side builds (4,096
# bytes; 20 directories of 241 bytes, reached by relative cd) is refused as unbuildable to a
# unit whose rule names it, not matched as some other (cut or wrapped) path, and the denial is
# in the unit's journal; a file of the same name at depth 10 is refused by the rule itself; the
# unarmored twin reads both. Run in the guest by tests/vm/run (through suite.sh).
. ./lib.sh
top=/srv/deep-secret
rm -rf $top; mkdir -p $top
name=$(printf 'd%.0s' $(seq 1 240))
(cd $top && for i in $(seq 1 20); do mkdir "$name$i"; cd "$name$i"; [ $i = 10 ] && echo shallow-content >f; done; echo deep-content >f)
cat >/usr/local/bin/deep-read <<EOS
#!/bin/bash
cd $top || exit 9
for i in \$(seq 1 20); do
  cd "$name\$i" || exit 8
  if [ \$i = 10 ]; then if cat f; then echo shallow:read; else echo shallow:denied; fi; fi
done
if cat f; then echo deep:read; else echo deep:denied; fi
cat /proc/self/cgroup
EOS
chmod +x /usr/local/bin/deep-read
for u in armor-deep armor-deep-twin; do
  unit $u.service '[Unit]
StartLimitIntervalSec=0
[Service]
Type=oneshot
ExecStart=/usr/local/bin/deep-read'
done
dropin armor-deep.service armor.conf '[X-Armor]
ArmorPolicy=deny read /srv/deep-secret/**/f'
check "daemon-reload" timeout 60 systemctl daemon-reload
check "armor-deep is armored" wait_rules armor-deep.service 1
systemctl start armor-deep.service armor-deep-twin.service
journalctl -u armor-deep.service -o cat | sed -E 's/d{200,}/d.../g; s/^/#   /' | tail -5
check "the armored unit is refused the file at depth 20 (4,840 bytes)" eventually sh -c \
  "journalctl -u armor-deep.service -o cat | grep -q '^deep:denied'"
check "the armored unit is refused the file at depth 10 (2,420 bytes), by the rule" eventually sh -c \
  "journalctl -u armor-deep.service -o cat | grep -q '^shallow:denied'"
check "the denial is in journalctl -u armor-deep.service, as a path that cannot be built" eventually sh -c \
  "journalctl -u armor-deep.service -o cat | grep -q '^Denied read of .*20/f (path cannot be built) by /usr/bin/cat'"
check "the twin reads it" eventually sh -c "journalctl -u armor-deep-twin.service -o cat | grep -q '^deep:read'"
check "the twin reads the one at depth 10" sh -c "journalctl -u armor-deep-twin.service -o cat | grep -q '^shallow:read'"
rm -rf $top /usr/local/bin/deep-read /etc/systemd/system/armor-deep*
systemctl daemon-reload
finish
