#!/bin/bash
# Runs in the guest before the test script: installs the staged project files where the package
# puts them and starts the daemon, as the package's maintainer scripts do.
set -eu
cp -a /mnt/host/project/. /
systemctl daemon-reload
journalctl --update-catalog
systemctl enable --now unitarmor.service
systemctl is-active --quiet unitarmor.service || {
  echo "unitarmor.service failed to start:"
  systemctl status --no-pager unitarmor.service
  journalctl -b -u unitarmor.service --no-pager
  exit 1
}
