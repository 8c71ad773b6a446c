#!/usr/bin/env bash
# The main job: qvol copy on this machine, each rung of the ladder shown once. As root it
# also makes a btrfs loop mount (reflink) and a loop block device; otherwise it stays in a
# temporary directory on the host filesystem.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
[ -f build/Release/qvol.node ] || node scripts/build-native.mjs
[ -f dist/src/cli/main.js ] || npx --no-install tsc -p tsconfig.json
qvol() { node dist/src/cli/main.js "$@"; }

work=$(mktemp -d /var/tmp/qvol-demo.XXXXXX)
mnt="$work/btrfs" loopdev=""
cleanup() {
  mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"
  [ -n "$loopdev" ] && losetup -d "$loopdev"
  rm -rf "$work"
}
trap cleanup EXIT

echo "== a 1 GiB volume image with 100 MiB of data in 1 MiB pieces"
truncate -s 1G "$work/root.img"
for i in $(seq 0 99); do
  dd if=/dev/urandom of="$work/root.img" bs=1M count=1 seek=$((i * 10)) conv=notrunc status=none
done
du -h --apparent-size "$work/root.img"; du -h "$work/root.img"

echo; echo "== qvol copy: holes stay holes"
qvol copy "$work/root.img" "$work/copy.img"
cmp "$work/root.img" "$work/copy.img" && echo "identical"

echo; echo "== a thick image (all written, 90 % zeros) made thin with --sparse always"
qvol copy --sparse never "$work/root.img" "$work/thick.img"
du -h "$work/thick.img"
qvol copy --sparse always "$work/thick.img" "$work/thin.img"
du -h "$work/thin.img"

if [ "$(id -u)" = 0 ] && command -v mkfs.btrfs >/dev/null; then
  echo; echo "== on btrfs: the copy is a clone, whatever the size"
  truncate -s 3G "$work/btrfs.img"; mkfs.btrfs -q -f "$work/btrfs.img"; mkdir -p "$mnt"
  mount -o loop "$work/btrfs.img" "$mnt"
  qvol copy "$work/root.img" "$mnt/root.img"
  qvol copy "$mnt/root.img" "$mnt/clone.img"

  echo; echo "== onto a block device that held other data: holes are zeroed, it reads back equal"
  dd if=/dev/urandom of="$work/dev.img" bs=1M count=1100 status=none
  loopdev=$(losetup --find --show "$work/dev.img")
  qvol copy --json "$work/root.img" "$loopdev"
  cmp -n "$(stat -c %s "$work/root.img")" "$work/root.img" "$loopdev" && echo "device reads back equal"
else
  echo; echo "(run as root to see the reflink and block-device parts)"
fi

echo; echo "== a clear error, nothing changed"
qvol copy "$work/root.img" "$work/no/such/dir/x.img" || echo "(exit status $?)"
