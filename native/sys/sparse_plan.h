// The plan of a sparse export: the volume as runs of 4 KiB blocks (RAW data, FILL of one
// repeated word, DONT_CARE zeros), found by walking its extents (holes are never read) and
// scanning the data extents, with the CRC32 of the whole image. stream_export.cc sends a
// plan; backup's chunker walks a volume the same way.
#pragma once
#include <cstdint>
#include <vector>

#include "copy_job.h"
#include "sparse_writer.h"

namespace qvol::sys {

// One chunk to be: `count` blocks from block `first`, of one type (and FILL word).
struct Run {
  uint32_t first;
  uint32_t count;
  uint16_t type;
  uint32_t fill;
};

struct SparsePlan {
  std::vector<Run> runs;   // 16 bytes a run: a volume alternating data and zero blocks
                           // needs 16 bytes per 4 KiB (0.4 %) of the volume
  uint64_t image_end = 0;  // the volume's length rounded up to whole blocks
  uint64_t data_bytes = 0;
  uint64_t zero_bytes = 0;
  uint32_t crc = 0;
};

struct PlanOptions {
  uint64_t length = 0;  // bytes of the volume
  bool source_is_block = false;
  bool crc = true;
  uint32_t disable = 0;  // kCapSeekHole: find holes by reading
};

// Plans the export of `src_fd`. `ticker` is told the bytes planned so far (for cancel and
// progress); a failed read is recorded in `fail`. Returns 0 or -errno.
int plan_sparse(int src_fd, const PlanOptions& opts, SparsePlan* plan, Ticker* ticker,
                CopyFailure* fail);

}  // namespace qvol::sys
