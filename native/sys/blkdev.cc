#include "blkdev.h"

#include <linux/fs.h>
#include <sys/ioctl.h>

#include <cstddef>

#include "errors.h"

namespace qvol::sys {

int block_geometry(int fd, BlockGeometry* out) {
  uint64_t size = 0;
  int logical = 0, ro = 0;
  unsigned int physical = 0;
  int r = retry_eintr([&] { return ioctl(fd, BLKGETSIZE64, &size); });
  if (r < 0) return r;
  r = retry_eintr([&] { return ioctl(fd, BLKSSZGET, &logical); });
  if (r < 0) return r;
  r = retry_eintr([&] { return ioctl(fd, BLKPBSZGET, &physical); });
  if (r < 0) return r;
  r = retry_eintr([&] { return ioctl(fd, BLKROGET, &ro); });
  if (r < 0) return r;
  *out = {size, static_cast<uint32_t>(logical), physical, ro != 0};
  return 0;
}

}  // namespace qvol::sys
