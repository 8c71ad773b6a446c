// Block device geometry through the BLK* ioctls.
#pragma once
#include <cstdint>

namespace qvol::sys {

struct BlockGeometry {
  uint64_t size;             // BLKGETSIZE64, bytes
  uint32_t logical_sector;   // BLKSSZGET
  uint32_t physical_sector;  // BLKPBSZGET
  bool read_only;            // BLKROGET
};

int block_geometry(int fd, BlockGeometry* out);

}  // namespace qvol::sys
