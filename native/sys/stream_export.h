// Export: a volume (file or block device) written to a stream fd as raw bytes or as an
// Android sparse image, in one job on the calling (worker) thread.
#pragma once
#include <cstdint>

#include "copy_job.h"
#include "fd_stream.h"

namespace qvol::sys {

enum class StreamFormat : uint8_t { kRaw, kSparse };

struct ExportOptions {
  StreamFormat format = StreamFormat::kRaw;
  uint64_t length = 0;   // bytes of the volume
  bool crc = true;       // sparse: end with a CRC32 chunk over the whole image
  uint32_t disable = 0;  // CapBit | StreamCapBit
  const int32_t* cancel = nullptr;
};

struct ExportStats {
  OutMethod method = OutMethod::kNone;  // the slowest rung that carried data
  uint64_t bytes_out = 0;               // bytes written to the stream
  uint64_t data_bytes = 0;              // volume bytes sent as data
  uint64_t zero_bytes = 0;  // volume bytes sent as holes (sparse) or read from holes (raw)
  uint64_t chunks = 0;      // sparse: chunks in the image
  uint32_t crc = 0;         // sparse: CRC-32 of the image
  int pipe_size = 0;        // the pipe's size after we grew it, 0 if not a pipe
};

// Progress: phase 0 scans the volume (sparse only), phase 1 sends it.
class PhaseProgress {
 public:
  virtual ~PhaseProgress() = default;
  virtual void report(int phase, uint64_t done, uint64_t total) = 0;
};

int run_export(int src_fd, int out_fd, const ExportOptions& opts, ExportStats* stats,
               CopyFailure* fail, PhaseProgress* progress);

}  // namespace qvol::sys
