// The write side shared by the copy engine and the stream importer: data goes to a file or
// block device at given offsets, and zero runs become holes. Runs of zeros are gathered
// and flushed once, as cheaply as the target allows: nothing where it already reads zero,
// else punched, zeroed out or written (alloc.h's ladder). Writeback is started as we go so
// the final fsync has little left to do.
#pragma once
#include <cstdint>
#include <memory>

#include "copy_job.h"

namespace qvol::sys {

constexpr uint64_t kBlock = 4096;  // the smallest zero run worth a hole

inline uint64_t align_down(uint64_t v) { return v & ~(kBlock - 1); }
inline uint64_t align_up(uint64_t v) { return (v + kBlock - 1) & ~(kBlock - 1); }

uint64_t now_ns();  // CLOCK_MONOTONIC

struct AlignedFree {
  void operator()(uint8_t* p) const;
};
using AlignedBuffer = std::unique_ptr<uint8_t, AlignedFree>;
AlignedBuffer aligned_buffer(size_t size);  // 4 KiB aligned, or null

// Told how far the job has come while the writer zeroes a long run; returns -errno (and
// has recorded the failure) to stop, e.g. on cancel.
class Ticker {
 public:
  virtual ~Ticker() = default;
  virtual int tick(uint64_t done) = 0;
};

struct WriterOptions {
  bool target_known_zero = false;  // the target reads zero everywhere: holes cost nothing
  uint64_t discard_zeroes = 0;     // see CopyOptions::discard_zeroes
  Mode sparse = Mode::kAuto;       // never: zero runs stay allocated
  uint32_t disable = 0;            // CapBit mask (early writeback, zero rungs)
  bool sync = true;                // writeback as we go (the caller fsyncs)
  uint32_t buffer_size = 1u << 20;
};

class SparseWriter {
 public:
  SparseWriter(int dst, bool dst_block, const WriterOptions& o, CopyStats* stats, CopyFailure* fail,
               Ticker* ticker);
  int init();  // allocates the zero buffer: 0 or -ENOMEM

  // Writes [off, off+n) from buf, turning its aligned all-zero 4 KiB blocks into holes.
  int scan_and_write(const uint8_t* buf, uint64_t off, uint64_t n);
  // Writes [off, off+n) from buf as it is.
  int write_data(const uint8_t* buf, uint64_t off, uint64_t n);
  // [begin, end) must read back as zeros; joins the pending run.
  int add_hole(uint64_t begin, uint64_t end);
  // Makes the pending run real. Call before anything else writes the target.
  int flush_hole();
  // Where the job stands: the start of the pending zero run, else `fallback`.
  uint64_t settled(uint64_t fallback) const {
    return hole_begin_ != hole_end_ ? hole_begin_ : fallback;
  }
  // Starts writeback up to `written_to` (see the .cc); public for in-kernel copies.
  int writeback(uint64_t written_to);

 private:
  int fail(int err, const char* syscall);
  int zero_step(uint64_t begin, uint64_t end);
  int zero_ladder(uint64_t begin, uint64_t end);

  int dst_;
  bool dst_block_;
  const WriterOptions o_;
  CopyStats& s_;
  CopyFailure& fail_;
  Ticker* ticker_;
  uint32_t zero_disabled_ = 0;
  bool discard_off_ = false;  // the discard rung is off (forced, or the device refused it)
  AlignedBuffer zeros_;
  uint64_t hole_begin_ = 0, hole_end_ = 0;  // the pending zero run, empty when equal
  uint64_t wb_started_ = 0, wb_waited_ = 0;
};

}  // namespace qvol::sys
