#!/usr/bin/env bash
# Installs, from Debian's packages, the tools the tests and benchmarks use: filesystems to
# test on (btrfs, XFS, ext4), loop devices, the Android sparse tools that check our sparse
# streams (simg2img, img2simg), the peers we measure against (qemu-img, pv), and
# clang-format for `npm run lint`, and for the backup's emergency extractor (contrib/), Debian's
# Python bindings of libsodium and zstd, which it proves an archive can be read with.
# Does nothing for what is already there; needs root for anything missing.
set -euo pipefail
declare -A PACKAGE=(
  [mkfs.btrfs]=btrfs-progs [mkfs.xfs]=xfsprogs [mkfs.ext4]=e2fsprogs
  [losetup]=mount [findmnt]=util-linux [qemu-img]=qemu-utils [cmp]=diffutils
  [simg2img]=android-sdk-libsparse-utils [img2simg]=android-sdk-libsparse-utils [pv]=pv
  [clang-format]=clang-format [zstd]=zstd
)
# Python modules the extractor's test imports, by the Debian package that ships them.
declare -A PYMODULE=( [nacl]=python3-nacl [zstandard]=python3-zstandard )
missing=()
for tool in "${!PACKAGE[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$tool" >/dev/null 2>&1 || missing+=("${PACKAGE[$tool]}")
done
for module in "${!PYMODULE[@]}"; do
  /usr/bin/python3 -c "import $module" >/dev/null 2>&1 || missing+=("${PYMODULE[$module]}")
done
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u | sed '/^$/d')
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing ${missing[*]}; run as root to install them (apt-get)" >&2
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq </dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null >/dev/null
