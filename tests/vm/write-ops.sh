#!/bin/bash
# Tries every kind of write below /var/lib/armortest/ro (denied when armored) and some outside
# it; writes "OP ok" or "OP denied" lines to $1.
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
try open-rdonly-trunc /var/lib/armortest/escape open-trunc-ro "$ro/existing"
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
# Writes the kernel decides without an open: timestamps and extended attributes, by path, on
# a read-only descriptor and on an O_PATH one (escape: tests/vm/escape.c).
esc=/var/lib/armortest/escape
try utimes touch -c -d @0 "$ro/existing"
try futimens "$esc" futimens "$ro/existing"
try utimes-opath "$esc" utimes-opath "$ro/existing"
try setxattr "$esc" setxattr "$ro/existing" user.armortest 1
try fsetxattr "$esc" fsetxattr "$ro/existing" user.armortest 2
try removexattr "$esc" removexattr "$ro/existing" user.pre
# An ext4 file system with the verity feature, mounted at $ro/verity by file-rules.sh.
try enable-verity "$esc" enable-verity "$ro/verity/file"
# FAT_IOCTL_SET_ATTRIBUTES (ATTR_RO) on a read-only descriptor, on the FAT file system
# file-rules.sh mounted at $ro/fat.
try fat-attrs perl -e 'open(my $f, "<", $ARGV[0]) or die "open: $!"; my $a = pack("L", 1); ioctl($f, 0x40047211, $a) or die "ioctl: $!"' "$ro/fat/file"
try control-utimes touch -c -d @0 "$rw/control"
try control-setxattr "$esc" setxattr "$rw/control" user.armortest 1
try read cat "$ro/existing"
