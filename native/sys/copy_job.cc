#include "copy_job.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <memory>

#include "alloc.h"
#include "clone.h"
#include "errors.h"
#include "extents.h"
#include "zero.h"

namespace qvol::sys {

namespace {

constexpr uint64_t kBlock = 4096;                   // the smallest zero run worth a hole
constexpr uint64_t kCopyRangeStep = 64ull << 20;    // per call, so cancel and progress stay live
constexpr uint64_t kWritebackWindow = 32ull << 20;  // see CopyJob::writeback()
constexpr uint64_t kProgressNanos = 100'000'000;  // at most ten callbacks a second

uint64_t align_down(uint64_t v) { return v & ~(kBlock - 1); }
uint64_t align_up(uint64_t v) { return (v + kBlock - 1) & ~(kBlock - 1); }

uint64_t now_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

struct AlignedFree {
  void operator()(uint8_t* p) const { free(p); }
};
using Buffer = std::unique_ptr<uint8_t, AlignedFree>;

Buffer aligned_buffer(size_t size) {
  void* p = nullptr;
  if (posix_memalign(&p, kBlock, size) != 0) return nullptr;
  return Buffer(static_cast<uint8_t*>(p));
}

// One copy. Members hold the state the rungs share; every step returns 0 or -errno and
// records what failed in fail_.
class CopyJob {
 public:
  CopyJob(int src, int dst, const CopyOptions& o, CopyStats* s, CopyFailure* f, CopyProgress* p)
      : src_(src), dst_(dst), o_(o), s_(*s), fail_(*f), progress_(p) {}

  int run();

 private:
  int fail(int err, const char* syscall, bool on_target) {
    fail_ = {err, syscall, on_target};
    return err;
  }
  bool cancelled() const {
    return o_.cancel != nullptr && __atomic_load_n(o_.cancel, __ATOMIC_RELAXED) != 0;
  }
  void used(Method m) {
    if (static_cast<int>(m) > static_cast<int>(s_.method)) s_.method = m;
  }

  int prepare();
  int try_clone(bool* done);
  int copy_all();
  int copy_extent(uint64_t begin, uint64_t end, bool known);
  int copy_range_extent(uint64_t* pos, uint64_t end);
  int read_write_extent(uint64_t begin, uint64_t end);
  int scan_and_write(const uint8_t* buf, uint64_t off, uint64_t n);
  int write_data(const uint8_t* buf, uint64_t off, uint64_t n);
  int add_hole(uint64_t begin, uint64_t end);
  int flush_hole();
  int zero_step(uint64_t begin, uint64_t end);
  int writeback(uint64_t written_to);
  int tick(uint64_t done);

  int src_, dst_;
  const CopyOptions& o_;
  CopyStats& s_;
  CopyFailure& fail_;
  CopyProgress* progress_;

  bool src_block_ = false, dst_block_ = false, same_fs_ = false;
  uint64_t src_size_ = 0;
  struct timespec src_mtime_ = {};
  bool copy_range_ok_ = false;
  uint32_t zero_disabled_ = 0;
  Buffer buf_, zeros_;
  uint64_t hole_begin_ = 0, hole_end_ = 0;  // the pending zero run, empty when equal
  uint64_t wb_started_ = 0, wb_waited_ = 0;
  uint64_t last_report_bytes_ = 0, last_report_ns_ = 0;
};

int CopyJob::prepare() {
  struct stat ss, ds;
  if (fstat(src_, &ss) < 0) return fail(-errno, "fstat", false);
  if (fstat(dst_, &ds) < 0) return fail(-errno, "fstat", true);
  src_block_ = S_ISBLK(ss.st_mode);
  dst_block_ = S_ISBLK(ds.st_mode);
  if (!src_block_ && !S_ISREG(ss.st_mode)) return fail(-EINVAL, "fstat", false);
  if (!dst_block_ && !S_ISREG(ds.st_mode)) return fail(-EINVAL, "fstat", true);
  src_size_ = static_cast<uint64_t>(ss.st_size);
  src_mtime_ = ss.st_mtim;
  same_fs_ = !src_block_ && !dst_block_ && ss.st_dev == ds.st_dev;
  last_report_ns_ = now_ns();
  zero_disabled_ = (o_.disable >> kZeroRungShift) & (kRungPunch | kRungZeroout | kRungZeroRange);
  // copy_file_range cannot see zeros (sparse=always wants them found) and may clone
  // implicitly (reflink=never forbids that). Across filesystems it fails with EXDEV on
  // 5.19+ and copies through the page cache before that, so we only use it within one fs.
  bool fs_ok = same_fs_ || (!src_block_ && !dst_block_ && (o_.disable & kCapSameFsCheck));
  copy_range_ok_ = fs_ok && o_.reflink != Mode::kNever && o_.sparse != Mode::kAlways &&
                   !(o_.disable & kCapCopyRange);
  buf_ = aligned_buffer(o_.buffer_size);
  zeros_ = aligned_buffer(o_.buffer_size);
  if (!buf_ || !zeros_) return fail(-ENOMEM, "malloc", false);
  memset(zeros_.get(), 0, o_.buffer_size);
  // Size a file target first: XFS's speculative preallocation otherwise leaves unwritten
  // extents behind (linux-io.md rule 4), and the holes we skip exist from the start.
  if (!dst_block_ && static_cast<uint64_t>(ds.st_size) != o_.target_size) {
    int r = retry_eintr([&] { return ftruncate(dst_, static_cast<off_t>(o_.target_size)); });
    if (r < 0) return fail(r, "ftruncate", true);
  }
  return 0;
}

int CopyJob::try_clone(bool* done) {
  *done = false;
  bool applies = !src_block_ && !dst_block_ && o_.target_known_zero && o_.reflink != Mode::kNever &&
                 !(o_.disable & kCapClone);
  if (!applies) {
    if (o_.reflink == Mode::kAlways) return fail(-EOPNOTSUPP, "ioctl(FICLONE)", true);
    return 0;
  }
  int r = clone_file(dst_, src_);
  if (r < 0) {
    if (o_.reflink == Mode::kAlways || !is_unsupported(r, Unsupported::kClone))
      return fail(r, "ioctl(FICLONE)", true);
    return 0;  // not here: copy instead
  }
  // The clone made the target a copy of the whole source; cut or extend it to size.
  if (o_.target_size != src_size_) {
    r = retry_eintr([&] { return ftruncate(dst_, static_cast<off_t>(o_.target_size)); });
    if (r < 0) return fail(r, "ftruncate", true);
  }
  used(Method::kClone);
  s_.bytes_cloned = o_.length;
  *done = true;
  return 0;
}

int CopyJob::tick(uint64_t done) {
  if (cancelled()) return fail(-ECANCELED, "copy", false);
  if (progress_ == nullptr || done < last_report_bytes_) return 0;
  uint64_t t = now_ns();
  if (t - last_report_ns_ >= kProgressNanos) {
    last_report_bytes_ = done;
    last_report_ns_ = t;
    progress_->report(done, o_.length);
  }
  return 0;
}

// Starts writeback of what we wrote as we go, and waits for the window before, so the disk
// works while we copy and the final fsync has little left to do. Without it the page cache
// absorbs the whole copy and the fsync then writes it all while we sit idle.
int CopyJob::writeback(uint64_t written_to) {
  if (o_.disable & kCapEarlyWriteback || !o_.sync) return 0;
  if (written_to < wb_started_ + kWritebackWindow) return 0;
  int r = retry_eintr([&] {
    return sync_file_range(dst_, static_cast<off_t>(wb_started_),
                           static_cast<off_t>(written_to - wb_started_), SYNC_FILE_RANGE_WRITE);
  });
  if (r < 0) return is_unsupported(r) ? 0 : fail(r, "sync_file_range", true);
  if (wb_started_ > wb_waited_) {
    r = retry_eintr([&] {
      return sync_file_range(dst_, static_cast<off_t>(wb_waited_),
                             static_cast<off_t>(wb_started_ - wb_waited_),
                             SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                 SYNC_FILE_RANGE_WAIT_AFTER);
    });
    if (r < 0) return fail(r, "sync_file_range", true);
    wb_waited_ = wb_started_;
  }
  wb_started_ = written_to;
  return 0;
}

int CopyJob::write_data(const uint8_t* buf, uint64_t off, uint64_t n) {
  int r = flush_hole();
  if (r < 0) return r;
  r = write_all(dst_, buf, n, off);
  if (r < 0) return fail(r, "write", true);
  s_.bytes_written += n;
  return writeback(off + n);
}

int CopyJob::add_hole(uint64_t begin, uint64_t end) {
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
int CopyJob::flush_hole() {
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
    uint64_t step_end = end - pos > kCopyRangeStep ? align_down(pos + kCopyRangeStep) : end;
    int r = zero_step(pos, step_end);
    if (r == 0) r = writeback(step_end);
    if (r == 0) r = tick(step_end);
    if (r < 0) return r;
    s_.bytes_zeroed += step_end - pos;
    pos = step_end;
  }
  return 0;
}

// [begin, end) of the target reads back as zeros after this: unaligned edges are written
// and the aligned body punched or zeroed out; with sparse=never it stays allocated (ZERO_RANGE
// or BLKZEROOUT, which does not unmap, or written zeros).
int CopyJob::zero_step(uint64_t begin, uint64_t end) {
  uint64_t body_begin = align_up(begin), body_end = align_down(end);
  if (body_begin >= body_end) body_begin = body_end = end;
  int r = write_zeros(dst_, begin, body_begin - begin, zeros_.get(), o_.buffer_size);
  if (r == 0 && body_end > body_begin) {
    uint32_t rung = 0;
    bool unmap = o_.sparse != Mode::kNever;
    r = zero_out(dst_, body_begin, body_end - body_begin, dst_block_, unmap, &zero_disabled_,
                 &rung, zeros_.get(), o_.buffer_size);
    s_.zero_rungs |= rung;
    if (r < 0) return fail(r, rung == kRungWrite ? "write" : "fallocate", true);
  }
  if (r == 0) r = write_zeros(dst_, body_end, end - body_end, zeros_.get(), o_.buffer_size);
  return r < 0 ? fail(r, "write", true) : 0;
}

// Finds the zero blocks in what we read: aligned 4 KiB blocks that are all zero join the
// pending hole; everything else is written, in runs as long as possible.
int CopyJob::scan_and_write(const uint8_t* buf, uint64_t off, uint64_t n) {
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

int CopyJob::read_write_extent(uint64_t begin, uint64_t end) {
  used(Method::kReadWrite);
  uint64_t pos = begin;
  while (pos < end) {
    uint64_t want = end - pos < o_.buffer_size ? end - pos : o_.buffer_size;
    ssize_t n = retry_eintr(
        [&] { return pread(src_, buf_.get(), want, static_cast<off_t>(pos)); });
    if (n < 0) return fail(static_cast<int>(n), "read", false);
    if (n == 0) return add_hole(pos, end);  // the source shrank while we copied: zeros
    s_.bytes_read += static_cast<uint64_t>(n);
    int r = scan_and_write(buf_.get(), pos, static_cast<uint64_t>(n));
    if (r < 0) return r;
    pos += static_cast<uint64_t>(n);
    r = tick(pos);
    if (r < 0) return r;
  }
  return 0;
}

// Advances *pos through [*pos, end) with copy_file_range. Stops early, without an error,
// when the kernel says the pair cannot do it (the caller then reads and writes the rest).
int CopyJob::copy_range_extent(uint64_t* pos, uint64_t end) {
  int r = flush_hole();
  if (r < 0) return r;
  while (*pos < end) {
    uint64_t want = end - *pos < kCopyRangeStep ? end - *pos : kCopyRangeStep;
    ssize_t n = copy_range_once(src_, *pos, dst_, *pos, want);
    if (n < 0) {
      if (is_unsupported(static_cast<int>(n), Unsupported::kCopyRange)) {
        copy_range_ok_ = false;  // sticky for this job: the pair will not change
        return 0;
      }
      return fail(static_cast<int>(n), "copy_file_range", true);
    }
    if (n == 0) return add_hole(*pos, end);  // the source shrank while we copied
    used(Method::kCopyRange);
    s_.bytes_written += static_cast<uint64_t>(n);
    *pos += static_cast<uint64_t>(n);
    r = writeback(*pos);
    if (r == 0) r = tick(*pos);
    if (r < 0) return r;
  }
  return 0;
}

int CopyJob::copy_extent(uint64_t begin, uint64_t end, bool known) {
  uint64_t pos = begin;
  // copy_file_range over a run that may hide holes would fill them (linux-io.md rule 1);
  // reading it lets the zero check find them instead.
  if (copy_range_ok_ && known) {
    int r = copy_range_extent(&pos, end);
    if (r < 0 || pos >= end) return r;
  }
  return read_write_extent(pos, end);
}

int CopyJob::run() {
  int r = prepare();
  if (r < 0) return r;
  bool cloned = false;
  r = try_clone(&cloned);
  if (r < 0) return r;
  if (!cloned) r = copy_all();
  if (r == 0 && o_.copy_mtime) {
    // atime too, as Qubes' _copy_file does; before the fsync so both reach the disk together
    struct timespec times[2] = {src_mtime_, src_mtime_};
    if (futimens(dst_, times) < 0) r = fail(-errno, "futimens", true);
  }
  if (r < 0) return r;
  if (o_.sync) {
    r = retry_eintr([&] { return fsync(dst_); });
    if (r < 0) return fail(r, "fsync", true);
  }
  if (progress_ != nullptr) progress_->report(o_.length, o_.length);
  return 0;
}

int CopyJob::copy_all() {
  int r = 0;
  bool no_seek = (o_.disable & kCapSeekHole) != 0 || src_block_;
  uint64_t pos = 0;
  while (pos < o_.length) {
    if (cancelled()) return fail(-ECANCELED, "copy", false);
    ExtentProbe e = probe_extent(src_, pos, o_.length, no_seek);
    if (e.end <= pos) e.end = o_.length;  // never stall on a confused filesystem
    r = e.data ? copy_extent(pos, e.end, e.known) : add_hole(pos, e.end);
    if (r == 0) r = tick(hole_begin_ != hole_end_ ? hole_begin_ : e.end);  // pending = not done
    if (r < 0) return r;
    pos = e.end;
  }
  // A block device target beyond the source must read back as zeros too.
  if (dst_block_ && o_.target_size > o_.length) r = add_hole(o_.length, o_.target_size);
  if (r == 0) r = flush_hole();
  if (s_.method == Method::kNone) s_.method = Method::kReadWrite;  // all holes
  return r;
}

}  // namespace

int run_copy(int src_fd, int dst_fd, const CopyOptions& opts, CopyStats* stats,
             CopyFailure* fail, CopyProgress* progress) {
  return CopyJob(src_fd, dst_fd, opts, stats, fail, progress).run();
}

}  // namespace qvol::sys
