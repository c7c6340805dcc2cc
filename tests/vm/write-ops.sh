#!/bin/bash
# Tries every kind of write below /var/lib/armortest/ro (denied) and one outside it; writes
# "OP ok" or "OP denied" lines to $1.
out=$1
ro=/var/lib/armortest/ro
rw=/var/lib/armortest/rw
: >"$out"
try() {
  local op=$1; shift
  if "$@" 2>/dev/null; then echo "$op ok" >>"$out"; else echo "$op denied" >>"$out"; fi
}
try create sh -c "echo x > $ro/new"
try open-write sh -c "echo x > $ro/existing"
try append sh -c "echo x >> $ro/existing"
try truncate truncate -s 0 "$ro/existing"
try unlink rm "$ro/victim"
try mkdir mkdir "$ro/dir"
try rmdir rmdir "$ro/emptydir"
try rename-from mv "$ro/movable" "$rw/moved"
try rename-to mv "$rw/incoming" "$ro/incoming"
try link ln "$ro/existing" "$rw/hardlink"
try symlink ln -s /etc/passwd "$ro/symlink"
try chmod chmod 600 "$ro/existing"
try chown chown 1:1 "$ro/existing"
try control sh -c "echo x > $rw/control"
try read cat "$ro/existing"
