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
#include "job_control.h"
#include "sparse_writer.h"

namespace qvol::sys {

namespace {

constexpr uint64_t kCopyRangeStep = 64ull << 20;  // per call, so cancel and progress stay live

// One copy. Members hold the state the rungs share; every step returns 0 or -errno and
// records what failed in fail_.
class CopyJob : public Ticker {
 public:
  CopyJob(int src, int dst, const CopyOptions& o, CopyStats* s, CopyFailure* f, CopyProgress* p)
      : src_(src), dst_(dst), o_(o), s_(*s), fail_(*f), progress_(p) {}

  int run();
  int tick(uint64_t done) override;

 private:
  int fail(int err, const char* syscall, bool on_target) {
    fail_ = {err, syscall, on_target};
    return err;
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

  int src_, dst_;
  const CopyOptions& o_;
  CopyStats& s_;
  CopyFailure& fail_;
  CopyProgress* progress_;

  bool src_block_ = false, dst_block_ = false, same_fs_ = false;
  uint64_t src_size_ = 0;
  struct timespec src_mtime_ = {};
  bool copy_range_ok_ = false;
  AlignedBuffer buf_;
  std::unique_ptr<SparseWriter> out_;
  uint64_t last_report_bytes_ = 0;
  JobControl control_{o_.cancel};
};

int CopyJob::prepare() {
  struct stat ss = {}, ds = {};
  int r = volume_fd_kind(src_, &src_block_, &ss);
  if (r < 0) return fail(r, "fstat", false);
  r = volume_fd_kind(dst_, &dst_block_, &ds);
  if (r < 0) return fail(r, "fstat", true);
  src_size_ = static_cast<uint64_t>(ss.st_size);
  src_mtime_ = ss.st_mtim;
  same_fs_ = !src_block_ && !dst_block_ && ss.st_dev == ds.st_dev;
  // copy_file_range cannot see zeros (sparse=always wants them found) and may clone
  // implicitly (reflink=never forbids that). Across filesystems it fails with EXDEV on
  // 5.19+ and copies through the page cache before that, so we only use it within one fs.
  bool fs_ok = same_fs_ || (!src_block_ && !dst_block_ && (o_.disable & kCapSameFsCheck));
  copy_range_ok_ = fs_ok && o_.reflink != Mode::kNever && o_.sparse != Mode::kAlways &&
                   !(o_.disable & kCapCopyRange);
  buf_ = aligned_buffer(o_.buffer_size);
  if (!buf_) return fail(-ENOMEM, "malloc", false);
  WriterOptions w;
  w.target_known_zero = o_.target_known_zero;
  w.discard_zeroes = o_.discard_zeroes;
  w.sparse = o_.sparse;
  w.disable = o_.disable;
  w.sync = o_.sync;
  w.buffer_size = o_.buffer_size;
  out_ = std::make_unique<SparseWriter>(dst_, dst_block_, w, &s_, &fail_, this);
  r = out_->init();
  if (r < 0) return r;
  // Size a file target first: XFS's speculative preallocation otherwise leaves unwritten
  // extents behind (docs/linux-io.md rule 4), and the holes we skip exist from the start.
  if (!dst_block_ && static_cast<uint64_t>(ds.st_size) != o_.target_size) {
    r = retry_eintr([&] { return ftruncate(dst_, static_cast<off_t>(o_.target_size)); });
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
  if (control_.cancelled()) return fail(-ECANCELED, "copy", false);
  if (progress_ == nullptr || done < last_report_bytes_) return 0;
  if (control_.report_due()) {
    last_report_bytes_ = done;
    progress_->report(done, o_.length);
  }
  return 0;
}

int CopyJob::read_write_extent(uint64_t begin, uint64_t end) {
  used(Method::kReadWrite);
  uint64_t pos = begin;
  while (pos < end) {
    uint64_t want = end - pos < o_.buffer_size ? end - pos : o_.buffer_size;
    ssize_t n = retry_eintr([&] { return pread(src_, buf_.get(), want, static_cast<off_t>(pos)); });
    if (n < 0) return fail(static_cast<int>(n), "read", false);
    if (n == 0) return out_->add_hole(pos, end);  // the source shrank while we copied: zeros
    s_.bytes_read += static_cast<uint64_t>(n);
    int r = out_->scan_and_write(buf_.get(), pos, static_cast<uint64_t>(n));
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
  int r = out_->flush_hole();
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
    if (n == 0) return out_->add_hole(*pos, end);  // the source shrank while we copied
    used(Method::kCopyRange);
    s_.bytes_written += static_cast<uint64_t>(n);
    *pos += static_cast<uint64_t>(n);
    r = out_->writeback(*pos);
    if (r == 0) r = tick(*pos);
    if (r < 0) return r;
  }
  return 0;
}

int CopyJob::copy_extent(uint64_t begin, uint64_t end, bool known) {
  uint64_t pos = begin;
  // copy_file_range over a run that may hide holes would fill them (docs/linux-io.md rule 1);
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
    if (control_.cancelled()) return fail(-ECANCELED, "copy", false);
    ExtentProbe e = probe_extent(src_, pos, o_.length, no_seek);
    if (e.end <= pos) e.end = o_.length;  // never stall on a confused filesystem
    r = e.data ? copy_extent(pos, e.end, e.known) : out_->add_hole(pos, e.end);
    if (r == 0) r = tick(out_->settled(e.end));  // a pending zero run is not done yet
    if (r < 0) return r;
    pos = e.end;
  }
  // A block device target beyond the source must read back as zeros too.
  if (dst_block_ && o_.target_size > o_.length) r = out_->add_hole(o_.length, o_.target_size);
  if (r == 0) r = out_->flush_hole();
  if (s_.method == Method::kNone) s_.method = Method::kReadWrite;  // all holes
  return r;
}

}  // namespace

int run_copy(int src_fd, int dst_fd, const CopyOptions& opts, CopyStats* stats, CopyFailure* fail,
             CopyProgress* progress) {
  return CopyJob(src_fd, dst_fd, opts, stats, fail, progress).run();
}

}  // namespace qvol::sys
