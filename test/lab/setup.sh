#!/bin/sh
# Installs the lab: a Debian kernel with OpenZFS built for it by DKMS, QEMU to boot it,
# busybox for its initramfs, cryptsetup (the peer and fallback of ephemeral volumes), and
# LVM with the thin-provisioning tools. The host kernel has no ZFS or device-mapper and
# cannot load modules, so ZFS, dm-crypt and dm-thin run inside a small VM. Root, once per
# machine; about 7 minutes, most of it DKMS. Does nothing when the lab is already installed.
set -eu
export PATH="$PATH:/usr/sbin:/sbin"
if ls /lib/modules/*/updates/dkms/zfs.ko >/dev/null 2>&1 && command -v qemu-system-x86_64 >/dev/null \
  && command -v cryptsetup >/dev/null && command -v lvm >/dev/null && command -v thin_check >/dev/null; then
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "lab setup: needs root (apt-get)" >&2; exit 2; }
if ! grep -rqs "contrib" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  # zfs-dkms and zfsutils-linux are in Debian's contrib component
  cat > /etc/apt/sources.list.d/qvol-lab-contrib.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq </dev/null
apt-get install -y -qq --no-install-recommends \
  qemu-system-x86 linux-image-amd64 linux-headers-amd64 \
  zfs-dkms zfsutils-linux busybox-static cpio kmod cryptsetup-bin \
  lvm2 thin-provisioning-tools </dev/null >/dev/null
ls /lib/modules/*/updates/dkms/zfs.ko >/dev/null  # fails when DKMS did not build the module
echo "lab setup: ready"
