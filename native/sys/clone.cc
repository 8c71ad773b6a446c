#include "clone.h"

#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>

#include "errors.h"

namespace qvol::sys {

namespace {
// Process-wide: a kernel without the syscall will not grow it (libuv's no_copy_file_range).
std::atomic<bool> g_copy_range_nosys{false};
}  // namespace

int clone_file(int dst_fd, int src_fd) {
  int r = retry_eintr([&] { return ioctl(dst_fd, FICLONE, src_fd); });
  return r < 0 ? r : 0;
}

int clone_range(int dst_fd, int src_fd, uint64_t src_off, uint64_t dst_off, uint64_t len) {
  struct file_clone_range arg = {};
  arg.src_fd = src_fd;
  arg.src_offset = src_off;
  arg.src_length = len;
  arg.dest_offset = dst_off;
  int r = retry_eintr([&] { return ioctl(dst_fd, FICLONERANGE, &arg); });
  return r < 0 ? r : 0;
}

ssize_t copy_range_once(int src_fd, uint64_t src_off, int dst_fd, uint64_t dst_off, uint64_t len) {
  if (g_copy_range_nosys.load(std::memory_order_relaxed)) return -ENOSYS;
  loff_t in = static_cast<loff_t>(src_off);
  loff_t out = static_cast<loff_t>(dst_off);
  size_t n = static_cast<size_t>(len < kMaxCopyRangeChunk ? len : kMaxCopyRangeChunk);
  ssize_t r = retry_eintr([&] { return copy_file_range(src_fd, &in, dst_fd, &out, n, 0); });
  if (r == -ENOSYS) g_copy_range_nosys.store(true, std::memory_order_relaxed);
  return r;
}

}  // namespace qvol::sys
