// Loop devices over a volume's image file, for a mapping that needs a block device. Attached
// with autoclear and no partition scan: the kernel detaches the device when its last opener
// closes it (the caller, then the mapping on top), so a crash leaves no loop device behind,
// and no partition table inside a VM's image becomes a device on the host.
#pragma once
#include <cstdint>

namespace qvol::sys {

struct LoopDevice {
  int fd;           // the attached device, open; the caller closes it when the mapping holds it
  int number;       // /dev/loop<number>
  uint64_t dev;     // its dev_t
  bool configured;  // LOOP_CONFIGURE (5.8+) did it in one step; false: LOOP_SET_FD + status
};

// Attaches `backing_fd` (a regular file open read-write) to a free loop device. With
// `legacy`, skips LOOP_CONFIGURE (tests of the fallback rung); without, takes the fallback
// only where the kernel lacks LOOP_CONFIGURE.
int loop_attach(int backing_fd, bool legacy, LoopDevice* out);

}  // namespace qvol::sys
