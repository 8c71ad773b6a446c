#!/bin/sh
# Boots a throw-away VM under QEMU (software emulation) whose root is this host's root,
# read-only over 9p with a RAM overlay, loads OpenZFS, dm-crypt, dm-thin and udev, and runs
# one command in the current directory, which is shared read-write. Prints the command's
# output and exits with its status (124: timed out, 125: the VM reported none).
# Usage: test/lab/run.sh [-m MEM_MB] [-t TIMEOUT_S] -- COMMAND...
set -eu
mem=2048 timeout=1500
while [ $# -gt 0 ]; do
  case "$1" in
    -m) mem=$2; shift 2 ;;
    -t) timeout=$2; shift 2 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: run.sh [-m MB] [-t S] -- COMMAND..." >&2; exit 2; }
zfs_ko=$(ls /lib/modules/*/updates/dkms/zfs.ko 2>/dev/null | head -n1)
[ -n "$zfs_ko" ] || { echo "lab: not installed (run test/lab/setup.sh as root)" >&2; exit 2; }
kver=$(echo "$zfs_ko" | cut -d/ -f4)
work=$(mktemp -d /tmp/qvol-lab.XXXXXX)
trap 'rm -rf "$work"' EXIT
here=$(pwd)

# The initramfs: busybox and the modules that mount the host's root over 9p.
mkdir -p "$work/ir/bin" "$work/ir/mods" "$work/ir/proc" "$work/ir/sys" "$work/ir/dev"
cp /bin/busybox "$work/ir/bin/"
for m in virtio_pci 9pnet_virtio 9p overlay; do modprobe --show-depends -S "$kver" "$m"; done \
  | awk '$1 == "insmod" && !seen[$2]++ { print $2 }' > "$work/mods.txt"
while read -r f; do cp "$f" "$work/ir/mods/"; basename "$f"; done < "$work/mods.txt" > "$work/ir/mods/order"
cat > "$work/ir/init" <<'INIT'
#!/bin/busybox sh
B=/bin/busybox
$B mount -t proc proc /proc; $B mount -t sysfs sys /sys; $B mount -t devtmpfs dev /dev
for m in $($B cat /mods/order); do $B insmod /mods/$m; done
$B mkdir -p /ro /rw /newroot
$B mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=524288 hostroot /ro
$B mount -t tmpfs tmpfs /rw; $B mkdir -p /rw/up /rw/work
$B mount -t overlay overlay -o lowerdir=/ro,upperdir=/rw/up,workdir=/rw/work /newroot
HERE=$($B cat /ro/$LABJOB/here)
$B mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 here "/newroot$HERE"
$B mount --move /proc /newroot/proc; $B mount --move /sys /newroot/sys; $B mount --move /dev /newroot/dev
$B mount -t tmpfs tmpfs /newroot/run
exec $B chroot /newroot /bin/sh -c "cd '$HERE'; sh $LABJOB/job.sh; echo LAB-EXIT=\$?; echo o > /proc/sysrq-trigger; sleep 30"
INIT
chmod +x "$work/ir/init"
(cd "$work/ir" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$work/initrd.gz"

# The job: ZFS, device-mapper with dm-crypt and dm-thin, loop, udev (so /dev/zvol and LVM's
# links appear), then the command.
echo "$here" > "$work/here"
{
  echo 'echo; echo LAB-BEGIN'
  echo 'modprobe zfs || exit 90'
  echo 'modprobe -a dm_mod dm_crypt dm_thin_pool loop || exit 91'
  # LVM looks only at loop devices (the tests' PVs), not at every zvol and mapping, and
  # starts no dmeventd: each lvm command is seconds under emulation without this.
  echo 'printf "devices {\\n global_filter = [ \"a|^/dev/loop[0-9]+\$|\", \"r|.*|\" ]\\n}\\nactivation {\\n monitoring = 0\\n}\\n" > /etc/lvm/lvmlocal.conf'
  echo '/lib/systemd/systemd-udevd --daemon >/dev/null 2>&1; udevadm trigger --action=add >/dev/null 2>&1; udevadm settle -t 30'
  echo 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin QVOL_LAB=1 CI=true'
  printf "'%s' " "$@"; echo
} > "$work/job.sh"

timeout "$timeout" qemu-system-x86_64 -accel tcg -smp 2 -m "$mem" -nographic -no-reboot \
  -kernel "/boot/vmlinuz-$kver" -initrd "$work/initrd.gz" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  -virtfs local,path="$here",mount_tag=here,security_model=none,multidevs=remap \
  -append "console=ttyS0 quiet loglevel=3 panic=-1 LABJOB=$work" > "$work/console.log" 2>&1 || true
status=$(sed -n 's/.*LAB-EXIT=\([0-9]*\).*/\1/p' "$work/console.log" | tail -n1)
tr -d '\r' < "$work/console.log" | sed -n '/^LAB-BEGIN$/,$p' | sed '1d' \
  | grep -v '^\[ *[0-9.]*\]' | grep -v 'LAB-EXIT=' | grep -v 'sleep: Input/output error' \
  | sed -e 's/\x1bc//g' -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g'
if [ -z "$status" ]; then
  if grep -q "terminating on signal" "$work/console.log"; then echo "lab: timed out after ${timeout}s" >&2; exit 124; fi
  echo "lab: the VM did not report an exit status" >&2
  exit 125
fi
exit "$status"
