// The device-mapper control interface (linux/dm-ioctl.h) for the one target qvol makes: a
// dm-crypt mapping with a throw-away key over a volatile volume. Each call opens
// /dev/mapper/control, issues one ioctl and closes it; none keeps state. The key is made
// here and never leaves: see dm_load_crypt.
#pragma once
#include <cstdint>

namespace qvol::sys {

// The udev flags of an event (libdevmapper's DM_UDEV_*), sent in the upper 16 bits of
// event_nr and decoded by 10-dm.rules from DM_COOKIE. qvol sets all four "disable" flags:
// no rule creates links, probes the device with blkid, scans it for partitions (kpartx) or
// hands it to LVM or multipath; qvol makes the /dev/mapper node itself (dm_node.h).
constexpr uint16_t kDmUdevDisableDmRules = 0x0001;
constexpr uint16_t kDmUdevDisableSubsystemRules = 0x0002;
constexpr uint16_t kDmUdevDisableDiskRules = 0x0004;
constexpr uint16_t kDmUdevDisableOtherRules = 0x0008;
constexpr uint16_t kDmUdevPrimarySource = 0x0040;
constexpr uint16_t kDmUdevQuiet = kDmUdevDisableDmRules | kDmUdevDisableSubsystemRules |
                                  kDmUdevDisableDiskRules | kDmUdevDisableOtherRules |
                                  kDmUdevPrimarySource;

struct DmInfo {
  uint64_t dev;           // new_encode_dev, as glibc's major()/minor() read it
  int32_t open_count;     // openers of the mapped device
  uint32_t target_count;  // targets in the live table (0: created, never resumed)
  bool suspended;
  bool live_table;
  bool inactive_table;
};

// The kernel's interface version; the probe of the ioctl rung.
int dm_version(uint32_t out[3]);
// Creates an empty, suspended device; its dev_t goes to *dev.
int dm_create(const char* name, const char* uuid, uint64_t* dev);
// -ENXIO when there is no device by that name.
int dm_info(const char* name, DmInfo* out);
// Loads `crypt aes-xts-plain64` over `backing_dev` (a dev_t) for `sectors` 512-byte sectors,
// with a 512-bit key from getrandom(2). The key and the table holding it live in locked,
// undumpable memory and are wiped before return; DM_SECURE_DATA_FLAG has the kernel wipe
// its copy of the ioctl buffer too.
int dm_load_crypt(const char* name, uint64_t sectors, uint64_t backing_dev, bool discards);
// Whether the device `dev` (a dev_t) is a thin volume with no external origin: one `thin`
// target whose parameters are the pool and the device id only. Such a device reads zeros
// wherever a discard unmapped whole chunks of its pool; one with an external origin reads
// the origin there. -ENXIO when `dev` is no device-mapper device.
int dm_is_plain_thin(uint64_t dev, bool* out);
// Makes the loaded table live (DM_DEV_SUSPEND without DM_SUSPEND_FLAG).
int dm_resume(const char* name, uint16_t udev_flags);
// Removes the device; -EBUSY while it is open, -ENXIO when absent.
int dm_remove(const char* name, uint16_t udev_flags);

}  // namespace qvol::sys
