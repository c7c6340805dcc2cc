#!/bin/bash
# The README's demo, in the guest: a service that reads /etc/shadow and appends to /etc/passwd,
# armored by drop-ins/unitarmor-demo.service.d/armor.conf, is denied both, and the journal of
# the service says so.
set -u
examples=/usr/share/doc/unitarmor/examples/drop-ins
cat >/etc/systemd/system/unitarmor-demo.service <<'UNIT'
[Unit]
Description=unitarmor demo: a service that goes where it should not
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'head -c 20 /etc/shadow; echo "intruder::0:0::/:/bin/sh" >> /etc/passwd; echo done'
UNIT
install -D -m 644 "$examples/unitarmor-demo.service.d/armor.conf" \
  /etc/systemd/system/unitarmor-demo.service.d/armor.conf

echo "\$ cat /etc/systemd/system/unitarmor-demo.service.d/armor.conf"
cat /etc/systemd/system/unitarmor-demo.service.d/armor.conf
echo
echo "\$ systemctl daemon-reload && unitarmor status"
systemctl daemon-reload
for i in $(seq 1 100); do unitarmor status unitarmor-demo.service >/dev/null 2>&1 && break; sleep 0.2; done
unitarmor status
echo
echo "\$ systemctl start unitarmor-demo.service"
systemctl start unitarmor-demo.service
sleep 1
echo
echo "\$ journalctl -u unitarmor-demo.service"
journalctl -u unitarmor-demo.service -o short --no-pager | cut -c1-300
echo
if grep -q intruder /etc/passwd; then
  echo "demo: /etc/passwd was changed: NOT armored"
  exit 1
fi
journalctl -u unitarmor-demo.service -o cat | grep -q "^Denied read of /etc/shadow" &&
  journalctl -u unitarmor-demo.service -o cat | grep -q "^Denied write of /etc/passwd" &&
  echo "demo: both denied by the kernel, and both in the service's own journal"
