#include "sparse_writer.h"

#include <fcntl.h>
#include <time.h>

#include <cstdlib>
#include <cstring>

#include "alloc.h"
#include "errors.h"
#include "zero.h"

namespace qvol::sys {

namespace {
constexpr uint64_t kZeroStep = 64ull << 20;         // per zeroing call, so cancel stays live
constexpr uint64_t kWritebackWindow = 32ull << 20;  // see writeback()
}  // namespace

uint64_t now_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

void AlignedFree::operator()(uint8_t* p) const { free(p); }

AlignedBuffer aligned_buffer(size_t size) {
  void* p = nullptr;
  if (posix_memalign(&p, kBlock, size) != 0) return nullptr;
  return AlignedBuffer(static_cast<uint8_t*>(p));
}

SparseWriter::SparseWriter(int dst, bool dst_block, const WriterOptions& o, CopyStats* stats,
                           CopyFailure* fail, Ticker* ticker)
    : dst_(dst), dst_block_(dst_block), o_(o), s_(*stats), fail_(*fail), ticker_(ticker) {
  zero_disabled_ = (o_.disable >> kZeroRungShift) & (kRungPunch | kRungZeroout | kRungZeroRange);
  discard_off_ = (o_.disable & kCapDiscard) != 0;
}

int SparseWriter::init() {
  zeros_ = aligned_buffer(o_.buffer_size);
  if (!zeros_) return fail(-ENOMEM, "malloc");
  memset(zeros_.get(), 0, o_.buffer_size);
  return 0;
}

int SparseWriter::fail(int err, const char* syscall) {
  fail_ = {err, syscall, true};
  return err;
}

// Starts writeback of what we wrote as we go, and waits for the window before, so the disk
// works while we copy and the final fsync has little left to do. Without it the page cache
// absorbs the whole copy and the fsync then writes it all while we sit idle.
int SparseWriter::writeback(uint64_t written_to) {
  if (o_.disable & kCapEarlyWriteback || !o_.sync) return 0;
  if (written_to < wb_started_ + kWritebackWindow) return 0;
  int r = retry_eintr([&] {
    return sync_file_range(dst_, static_cast<off_t>(wb_started_),
                           static_cast<off_t>(written_to - wb_started_), SYNC_FILE_RANGE_WRITE);
  });
  if (r < 0) return is_unsupported(r) ? 0 : fail(r, "sync_file_range");
  if (wb_started_ > wb_waited_) {
    r = retry_eintr([&] {
      return sync_file_range(
          dst_, static_cast<off_t>(wb_waited_), static_cast<off_t>(wb_started_ - wb_waited_),
          SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
    });
    if (r < 0) return fail(r, "sync_file_range");
    wb_waited_ = wb_started_;
  }
  wb_started_ = written_to;
  return 0;
}

int SparseWriter::write_data(const uint8_t* buf, uint64_t off, uint64_t n) {
  int r = flush_hole();
  if (r < 0) return r;
  r = write_all(dst_, buf, n, off);
  if (r < 0) return fail(r, "write");
  s_.bytes_written += n;
  return writeback(off + n);
}

int SparseWriter::add_hole(uint64_t begin, uint64_t end) {
  if (begin >= end) return 0;
  if (hole_begin_ != hole_end_ && hole_end_ == begin) {
    hole_end_ = end;
    return 0;
  }
  int r = flush_hole();
  hole_begin_ = begin;
  hole_end_ = end;
  return r;
}

// Makes the pending zero run read back as zeros in the target, as cheaply as the target
// allows: nothing where it already reads zero; otherwise unaligned edges are written and
// the aligned body is punched, zeroed out, or written (alloc.cc's ladder).
int SparseWriter::flush_hole() {
  uint64_t begin = hole_begin_, end = hole_end_;
  if (begin == end) return 0;
  hole_begin_ = hole_end_ = 0;
  uint64_t len = end - begin;
  if (o_.sparse != Mode::kNever) s_.holes++;
  if (o_.sparse != Mode::kNever && o_.target_known_zero) {
    s_.bytes_skipped += len;
    return 0;
  }
  // Zeroing can be slow (writes, or a device that zeroes in place): go in steps, so cancel
  // and progress stay live.
  for (uint64_t pos = begin; pos < end;) {
    uint64_t step_end = end - pos > kZeroStep ? align_down(pos + kZeroStep) : end;
    int r = zero_step(pos, step_end);
    if (r == 0) r = writeback(step_end);
    if (r == 0 && ticker_ != nullptr) r = ticker_->tick(step_end);
    if (r < 0) return r;
    s_.bytes_zeroed += step_end - pos;
    pos = step_end;
  }
  return 0;
}

// [begin, end) of the target reads back as zeros after this. On a thin LV (discard_zeroes),
// the whole units inside are discarded: the pool unmaps them, so they read as zeros, cost
// no write and give their space back; the pieces at either end are zeroed by the ladder.
int SparseWriter::zero_step(uint64_t begin, uint64_t end) {
  uint64_t unit = o_.discard_zeroes;
  if (dst_block_ && unit != 0 && o_.sparse != Mode::kNever && !discard_off_) {
    uint64_t body_begin = (begin + unit - 1) / unit * unit, body_end = end / unit * unit;
    if (body_begin < body_end) {
      int r = blk_discard(dst_, body_begin, body_end - body_begin);
      if (r == 0) {
        s_.zero_rungs |= kRungDiscard;
        r = zero_ladder(begin, body_begin);
        return r == 0 ? zero_ladder(body_end, end) : r;
      }
      if (!is_unsupported(r, Unsupported::kRange)) return fail(r, "ioctl(BLKDISCARD)");
      discard_off_ = true;
    }
  }
  return zero_ladder(begin, end);
}

// [begin, end) of the target reads back as zeros after this: unaligned edges are written
// and the aligned body punched or zeroed out; with sparse=never it stays allocated (ZERO_RANGE
// or BLKZEROOUT, which does not unmap, or written zeros).
int SparseWriter::zero_ladder(uint64_t begin, uint64_t end) {
  if (begin >= end) return 0;
  uint64_t body_begin = align_up(begin), body_end = align_down(end);
  if (body_begin >= body_end) body_begin = body_end = end;
  int r = write_zeros(dst_, begin, body_begin - begin, zeros_.get(), o_.buffer_size);
  if (r == 0 && body_end > body_begin) {
    uint32_t rung = 0;
    bool unmap = o_.sparse != Mode::kNever;
    r = zero_out(dst_, body_begin, body_end - body_begin, dst_block_, unmap, &zero_disabled_, &rung,
                 zeros_.get(), o_.buffer_size);
    s_.zero_rungs |= rung;
    if (r < 0) return fail(r, rung == kRungWrite ? "write" : "fallocate");
  }
  if (r == 0) r = write_zeros(dst_, body_end, end - body_end, zeros_.get(), o_.buffer_size);
  return r < 0 ? fail(r, "write") : 0;
}

// Finds the zero blocks in what we read: aligned 4 KiB blocks that are all zero join the
// pending hole; everything else is written, in runs as long as possible.
int SparseWriter::scan_and_write(const uint8_t* buf, uint64_t off, uint64_t n) {
  if (o_.sparse == Mode::kNever) return write_data(buf, off, n);
  uint64_t end = off + n;
  uint64_t run_begin = off;  // start of the data run not yet written
  uint64_t b = off;
  while (b < end) {
    uint64_t block_end = align_down(b) + kBlock;
    if (block_end > end) block_end = end;
    bool whole = block_end - b == kBlock;
    if (whole && is_zero(buf + (b - off), kBlock)) {
      if (run_begin < b) {
        int r = write_data(buf + (run_begin - off), run_begin, b - run_begin);
        if (r < 0) return r;
      }
      int r = add_hole(b, block_end);
      if (r < 0) return r;
      run_begin = block_end;
    }
    b = block_end;
  }
  if (run_begin < end) return write_data(buf + (run_begin - off), run_begin, end - run_begin);
  return 0;
}

}  // namespace qvol::sys
