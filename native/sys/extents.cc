#include "extents.h"

#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <memory>

#include "errors.h"

namespace qvol::sys {

// The cases are those of QEMU block/file-posix.c find_allocation():
//   D1 data == pos: pos is in data.   D2 data > pos: pos is in a hole that ends at data.
//   D3 ENXIO: pos is in a trailing hole (or the file shrank behind our back).
//   D4 other error: we learned nothing, so say "data" (a read returns the truth).
//   H1 hole == pos after D1: the file changed between the calls; say "data" for a while.
//   H2 hole > pos: data up to hole.   H3 ENXIO: truncated behind our back, so a hole.
//   H4 other error: data to the limit.
ExtentProbe probe_extent(int fd, uint64_t pos, uint64_t limit, bool seek_hole_disabled) {
  if (seek_hole_disabled) return {true, limit, false};
  off_t data = lseek(fd, static_cast<off_t>(pos), SEEK_DATA);
  if (data < 0) {
    if (errno == ENXIO) return {false, limit, true};  // D3
    return {true, limit, false};                      // D4
  }
  if (static_cast<uint64_t>(data) > pos) {  // D2
    uint64_t end = static_cast<uint64_t>(data);
    return {false, end < limit ? end : limit, true};
  }
  if (static_cast<uint64_t>(data) < pos) return {true, limit, false};  // a broken lseek
  off_t hole = lseek(fd, static_cast<off_t>(pos), SEEK_HOLE);          // D1
  if (hole < 0) {
    if (errno == ENXIO) return {false, limit, true};  // H3
    return {true, limit, false};                      // H4
  }
  uint64_t end = static_cast<uint64_t>(hole);
  bool known = true;
  if (end == pos) {  // H1: re-probe after one megabyte of reading it as data
    end = pos + (1u << 20);
    known = false;
  }
  return {true, end < limit ? end : limit, known};  // H2
}

int fiemap_all(int fd, std::vector<FiemapExtent>& out) {
  constexpr unsigned kBatch = 512;
  size_t bytes = sizeof(struct fiemap) + kBatch * sizeof(struct fiemap_extent);
  std::unique_ptr<char, decltype(&free)> mem(static_cast<char*>(calloc(1, bytes)), &free);
  if (!mem) return -ENOMEM;
  auto* fm = reinterpret_cast<struct fiemap*>(mem.get());
  uint64_t start = 0;
  uint32_t flags = FIEMAP_FLAG_SYNC;
  for (;;) {
    fm->fm_start = start;
    fm->fm_length = FIEMAP_MAX_OFFSET - start;
    fm->fm_flags = flags;
    fm->fm_extent_count = kBatch;
    fm->fm_mapped_extents = 0;
    int r = retry_eintr([&] { return ioctl(fd, FS_IOC_FIEMAP, fm); });
    if (r < 0) return r;
    if (fm->fm_mapped_extents == 0) return 0;
    for (unsigned i = 0; i < fm->fm_mapped_extents; i++) {
      const auto& e = fm->fm_extents[i];
      out.push_back({e.fe_logical, e.fe_physical, e.fe_length, e.fe_flags});
      if (e.fe_flags & FIEMAP_EXTENT_LAST) return 0;
      start = e.fe_logical + e.fe_length;
    }
    flags = 0;  // synced once is enough
  }
}

}  // namespace qvol::sys
