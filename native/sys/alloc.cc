#include "alloc.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstddef>

#include "errors.h"

namespace qvol::sys {

namespace {
int do_fallocate(int fd, int mode, uint64_t off, uint64_t len) {
  int r = retry_eintr(
      [&] { return fallocate(fd, mode, static_cast<off_t>(off), static_cast<off_t>(len)); });
  return r < 0 ? r : 0;
}

int do_range_ioctl(int fd, unsigned long req, uint64_t off, uint64_t len) {
  uint64_t range[2] = {off, len};
  int r = retry_eintr([&] { return ioctl(fd, req, range); });
  return r < 0 ? r : 0;
}
}  // namespace

int punch_hole(int fd, uint64_t off, uint64_t len) {
  return do_fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
}

int zero_range(int fd, uint64_t off, uint64_t len) {
  return do_fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off, len);
}

int allocate(int fd, uint64_t off, uint64_t len) { return do_fallocate(fd, 0, off, len); }

int blk_discard(int fd, uint64_t off, uint64_t len) {
  return do_range_ioctl(fd, BLKDISCARD, off, len);
}

int blk_zeroout(int fd, uint64_t off, uint64_t len) {
  return do_range_ioctl(fd, BLKZEROOUT, off, len);
}

int write_all(int fd, const uint8_t* buf, uint64_t len, uint64_t off) {
  while (len > 0) {
    ssize_t w = retry_eintr([&] { return pwrite(fd, buf, len, static_cast<off_t>(off)); });
    if (w < 0) return static_cast<int>(w);
    if (w == 0) return -EIO;
    buf += w;
    off += static_cast<uint64_t>(w);
    len -= static_cast<uint64_t>(w);
  }
  return 0;
}

int write_zeros(int fd, uint64_t off, uint64_t len, const void* zeros, uint64_t zeros_len) {
  for (uint64_t done = 0; done < len;) {
    uint64_t n = len - done < zeros_len ? len - done : zeros_len;
    int r = write_all(fd, static_cast<const uint8_t*>(zeros), n, off + done);
    if (r < 0) return r;
    done += n;
  }
  return 0;
}

int zero_out(int fd, uint64_t off, uint64_t len, bool is_block, bool unmap, uint32_t* disabled,
             uint32_t* used, const void* zeros, uint64_t zeros_len) {
  // Why this order: a punched hole costs nothing and, on a block device, the kernel only
  // accepts it when the device guarantees zeroes after unmap (fallocate on bdevs, 4.9+).
  // BLKZEROOUT may fall back to writing zero pages in the kernel, still cheaper than ours.
  // ZERO_RANGE allocates but does not write. Writing zeros always works.
  struct Rung {
    uint32_t bit;
    bool applies;
    int (*fn)(int, uint64_t, uint64_t);
  };
  const Rung rungs[] = {
      {kRungPunch, unmap, punch_hole},
      {kRungZeroout, is_block, blk_zeroout},
      {kRungZeroRange, !is_block, zero_range},
  };
  for (const Rung& rung : rungs) {
    if (!rung.applies || (*disabled & rung.bit)) continue;
    int r = rung.fn(fd, off, len);
    if (r == 0) {
      *used = rung.bit;
      return 0;
    }
    if (!is_unsupported(r, Unsupported::kRange)) return r;
    *disabled |= rung.bit;
  }
  *used = kRungWrite;
  return write_zeros(fd, off, len, zeros, zeros_len);
}

}  // namespace qvol::sys
