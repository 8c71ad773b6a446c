// Import: a raw or sparse stream read from an fd into a file or block device, validated as
// it goes (size, chunk framing, CRC when present). The caller commits the target only when
// this returns 0, so a short, long or corrupt stream changes nothing the user sees.
#pragma once
#include <cstdint>

#include "copy_job.h"
#include "sparse_format.h"
#include "stream_export.h"

namespace qvol::sys {

struct ImportFailure {
  CopyFailure sys;    // a syscall failed (issue.kind == kNone)
  FormatIssue issue;  // else: what was wrong with the stream, and where
};

struct ImportOptions {
  StreamFormat format = StreamFormat::kRaw;
  uint64_t size = 0;               // bytes the volume gets; the stream must define exactly these
  StreamHeader header;             // sparse: the file header, already read from the fd
  bool target_known_zero = false;  // a block device that reads zero (a regular file is made so)
  uint64_t discard_zeroes = 0;     // see CopyOptions::discard_zeroes (copy_job.h)
  uint32_t disable = 0;
  bool sync = true;
  const int32_t* cancel = nullptr;
};

struct ImportStats {
  CopyStats writer;       // bytes_written, bytes_skipped, holes, bytes_zeroed
  uint64_t bytes_in = 0;  // bytes read from the stream (after the header)
  uint64_t chunks = 0;
  bool crc_checked = false;
  int pipe_size = 0;
};

// Reads and checks the sparse file header (and qvol's extension, if there).
int read_sparse_header(int fd, StreamHeader* out, ImportFailure* fail);

int run_import(int in_fd, int dst_fd, const ImportOptions& opts, ImportStats* stats,
               ImportFailure* fail, PhaseProgress* progress);

}  // namespace qvol::sys
