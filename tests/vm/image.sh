#!/usr/bin/env bash
# Builds the Debian guest image that tests/vm/run boots: a minimal systemd system with the BPF LSM
# active, a 9p share for host files, and a oneshot runner that executes the requested script.
# Usage: tests/vm/image.sh SUITE OUTDIR   (writes OUTDIR/disk.img, OUTDIR/vmlinuz, OUTDIR/initrd.img)
# The image is a cache: tests/vm/run rebuilds it whenever this file changes.
set -euo pipefail
suite=${1:?suite (bookworm or trixie)}
out=${2:?output directory}
here=$(cd "$(dirname "$0")" && pwd)

case "$suite" in
  bookworm)
    # The machine's own sources carry -updates and -security, hence the current point-release kernel.
    if [ -f /etc/apt/sources.list.d/debian.sources ] && grep -q bookworm /etc/apt/sources.list.d/debian.sources; then
      mirror=/etc/apt/sources.list.d/debian.sources
    else
      mirror="deb http://deb.debian.org/debian bookworm main"
    fi ;;
  trixie) mirror="deb http://deb.debian.org/debian trixie main" ;;
  *) echo "image.sh: unknown suite '$suite' (bookworm or trixie)" >&2; exit 2 ;;
esac

rm -rf "$out.tmp"
mkdir -p "$out.tmp"
rootfs="$out.tmp/rootfs"

# Documentation is left out while the image is built, but not for packages installed later (the
# dpkg path excludes are removed at the end): the tests check what the package installs.
# MODULES=list with an explicit list: MODULES=dep would look at the build machine's drivers.
# modules.d/ is read by initramfs-tools and, unlike /etc/initramfs-tools/modules, is no conffile.
# systemd's generators for what this guest has none of (encrypted, verity and integrity volumes,
# GPT auto-discovery, hibernation, SysV scripts, rc.local, offline updates, units from the kernel
# command line, TPM, sshd) are masked: every daemon-reload runs them all, and under emulation
# they took a third of a reload (5 s to 3 s). fstab, getty and unitarmor's own still run.
# Debian's nginx is there, disabled, for the shipped example's scenario (examples.sh) and the
# benchmark's real service.
mmdebstrap --variant=minbase --mode=root --quiet \
  --aptopt='APT::Install-Recommends "false"' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --include=systemd,systemd-sysv,systemd-container,dbus,udev,kmod,iproute2,bpftool,initramfs-tools,linux-image-amd64,procps,xfsprogs,e2fsprogs,btrfs-progs,dosfstools,nginx \
  --essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d"' \
  --essential-hook='echo MODULES=list > "$1/etc/initramfs-tools/conf.d/unitarmor-vm"' \
  --essential-hook='printf "%s\n" virtio_pci virtio_mmio virtio_blk crc32c_generic ext4 > "$1/usr/share/initramfs-tools/modules.d/unitarmor-vm"' \
  --customize-hook='chroot "$1" systemd-machine-id-setup' \
  --customize-hook='chroot "$1" systemd-hwdb update' \
  --customize-hook='chroot "$1" journalctl --update-catalog' \
  --customize-hook='touch "$1/etc/.updated" "$1/var/.updated"' \
  --customize-hook='chroot "$1" systemctl mask e2scrub_reap.service' \
  --customize-hook='chroot "$1" systemctl disable nginx.service' \
  --customize-hook='mkdir -p "$1/etc/systemd/system-generators"' \
  --customize-hook='for g in cryptsetup debug gpt-auto hibernate-resume integritysetup rc-local run ssh system-update sysv tpm2 veritysetup; do ln -s /dev/null "$1/etc/systemd/system-generators/systemd-$g-generator"; done' \
  --customize-hook="copy-in $here/guest/unitarmor-vmtest /usr/local/sbin" \
  --customize-hook="copy-in $here/guest/unitarmor-vmtest.service /etc/systemd/system" \
  --customize-hook='chmod 755 "$1/usr/local/sbin/unitarmor-vmtest"' \
  --customize-hook='chroot "$1" systemctl enable unitarmor-vmtest.service' \
  --customize-hook='echo "unitarmor-vm" > "$1/etc/hostname"' \
  --customize-hook='passwd --root "$1" --delete root' \
  --customize-hook='rm -f "$1"/etc/dpkg/dpkg.cfg.d/99mmdebstrap' \
  "$suite" "$rootfs" "$mirror"

cp "$rootfs"/boot/vmlinuz-* "$out.tmp/vmlinuz"
cp "$rootfs"/boot/initrd.img-* "$out.tmp/initrd.img"
truncate -s 2G "$out.tmp/disk.img"
mkfs.ext4 -q -F -L root -d "$rootfs" "$out.tmp/disk.img"
rm -rf "$rootfs"
rm -rf "$out"
mv "$out.tmp" "$out"
