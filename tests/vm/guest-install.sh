#!/bin/bash
# Runs in the guest before the test script: installs the Debian package tests/vm/run built,
# exactly as a user would; its maintainer scripts enable and start the daemon.
set -eu
deb=$(ls /mnt/host/packages/unitarmor_*-1_*.deb | head -n 1)
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >/dev/null
systemctl is-active --quiet unitarmor.service || {
  echo "unitarmor.service failed to start:"
  systemctl status --no-pager unitarmor.service
  journalctl -b -u unitarmor.service --no-pager
  exit 1
}
