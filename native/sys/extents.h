// Where a file's data is: SEEK_DATA/SEEK_HOLE with QEMU's find_allocation cases, and FIEMAP
// as a diagnostic (shared and unwritten flags).
#pragma once
#include <cstdint>
#include <vector>

namespace qvol::sys {

struct ExtentProbe {
  bool data;     // [pos, end) is data (or unknown, which counts as data)
  uint64_t end;  // exclusive end of this run, clamped to the limit given
  bool known;    // false when the filesystem could not tell: the run may hide holes
};

// Classifies the run starting at `pos`, looking no further than `limit`. Never fails: a
// filesystem that cannot tell reports everything as data, which is always correct.
ExtentProbe probe_extent(int fd, uint64_t pos, uint64_t limit, bool seek_hole_disabled);

// probe_extent for a walk that must move forward: a run that a confused filesystem reports
// as ending at or before `pos` is taken to reach `limit`.
inline ExtentProbe probe_forward(int fd, uint64_t pos, uint64_t limit, bool seek_hole_disabled) {
  ExtentProbe e = probe_extent(fd, pos, limit, seek_hole_disabled);
  if (e.end <= pos) e.end = limit;
  return e;
}

struct FiemapExtent {
  uint64_t logical, physical, length;
  uint32_t flags;  // FIEMAP_EXTENT_* (SHARED 0x2000, UNWRITTEN 0x800, LAST 0x1)
};

// Every extent of the file, after syncing it (FIEMAP_FLAG_SYNC). Returns 0 or -errno.
int fiemap_all(int fd, std::vector<FiemapExtent>& out);

}  // namespace qvol::sys
