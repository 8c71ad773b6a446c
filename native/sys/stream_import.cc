#include "stream_import.h"

#include <unistd.h>

#include <cstring>
#include <memory>

#include "crc32.h"
#include "errors.h"
#include "fd_stream.h"
#include "job_control.h"
#include "sparse_writer.h"
#include "zero.h"

namespace qvol::sys {

namespace {

constexpr size_t kBuffer = 1u << 20;

class ImportJob : public Ticker {
 public:
  ImportJob(int in, int dst, const ImportOptions& o, ImportStats* s, ImportFailure* f,
            PhaseProgress* p)
      : in_(in), dst_(dst), o_(o), s_(*s), fail_(*f), progress_(p) {}

  int run();
  int tick(uint64_t done) override;

 private:
  int fail(int err, const char* syscall, bool on_target) {
    fail_.sys = {err, syscall, on_target};
    return err;
  }
  int bad(StreamError kind, FormatProblem problem, uint64_t at, uint64_t a = 0, uint64_t b = 0) {
    return refuse(&fail_.issue, kind, problem, at, a, b);
  }
  int prepare();
  int read_in(uint8_t* buf, size_t n, uint64_t at);
  int read_word(uint64_t at, uint32_t* word);
  int put(const uint8_t* buf, uint64_t off, uint64_t n);
  int put_zeros(uint64_t off, uint64_t n);
  int put_pattern(uint32_t word, uint64_t off, uint64_t n);
  int expect_end(uint64_t at);
  int import_raw();
  int import_sparse();
  int chunk(const ChunkHeader& c, uint64_t* pos);

  int in_, dst_;
  const ImportOptions& o_;
  ImportStats& s_;
  ImportFailure& fail_;
  PhaseProgress* progress_;
  bool dst_block_ = false;
  std::unique_ptr<SparseWriter> out_;
  AlignedBuffer buf_;
  ImageCrc crc_{true};
  JobControl control_{o_.cancel};
};

int ImportJob::tick(uint64_t done) {
  if (control_.cancelled()) return fail(-ECANCELED, "import", false);
  if (progress_ != nullptr && control_.report_due())
    progress_->report(1, done < o_.size ? done : o_.size, o_.size);
  return 0;
}

int ImportJob::prepare() {
  int r = volume_fd_kind(dst_, &dst_block_);
  if (r < 0) return fail(r, "fstat", true);
  bool known_zero = o_.target_known_zero;
  if (!dst_block_) {
    // Emptied and sized, a file reads zero everywhere: holes then cost nothing.
    r = retry_eintr([&] { return ftruncate(dst_, 0); });
    if (r == 0) r = retry_eintr([&] { return ftruncate(dst_, static_cast<off_t>(o_.size)); });
    if (r < 0) return fail(r, "ftruncate", true);
    known_zero = true;
  }
  if (is_pipe(in_) && !(o_.disable & kCapPipeResize)) s_.pipe_size = grow_pipe(in_, 1 << 20);
  buf_ = aligned_buffer(kBuffer);
  if (!buf_) return fail(-ENOMEM, "malloc", false);
  WriterOptions w;
  w.target_known_zero = known_zero;
  w.discard_zeroes = o_.discard_zeroes;
  w.disable = o_.disable;
  w.sync = o_.sync;
  out_ = std::make_unique<SparseWriter>(dst_, dst_block_, w, &s_.writer, &fail_.sys, this);
  return out_->init();
}

// Exactly n bytes from the stream, or the stream's end is an error at image byte `at`.
int ImportJob::read_in(uint8_t* buf, size_t n, uint64_t at) {
  ssize_t got = read_full(in_, buf, n);
  if (got < 0) return fail(static_cast<int>(got), "read", false);
  s_.bytes_in += static_cast<uint64_t>(got);
  if (static_cast<size_t>(got) < n)
    return bad(StreamError::kTruncated, FormatProblem::kEndedEarly, at);
  return 0;
}

// A chunk's 4-byte payload (FILL's word, CRC32's value; check_chunk made sure it is 4).
int ImportJob::read_word(uint64_t at, uint32_t* word) {
  return read_in(reinterpret_cast<uint8_t*>(word), 4, at);
}

// Image bytes [off, off+n): what lies within the volume is written; what lies beyond it
// (the last block's padding) must be zeros.
int ImportJob::put(const uint8_t* buf, uint64_t off, uint64_t n) {
  uint64_t inside = off >= o_.size ? 0 : (o_.size - off < n ? o_.size - off : n);
  if (inside < n && !is_zero(buf + inside, n - inside))
    return bad(StreamError::kTooLong, FormatProblem::kDataPastSize, o_.size);
  return inside > 0 ? out_->scan_and_write(buf, off, inside) : 0;
}

int ImportJob::put_zeros(uint64_t off, uint64_t n) {
  uint64_t end = off + n < o_.size ? off + n : o_.size;
  return off < end ? out_->add_hole(off, end) : 0;
}

int ImportJob::put_pattern(uint32_t word, uint64_t off, uint64_t n) {
  if (off + n > o_.size) return bad(StreamError::kTooLong, FormatProblem::kDataPastSize, o_.size);
  for (size_t i = 0; i < kBuffer; i += 4) memcpy(buf_.get() + i, &word, 4);
  while (n > 0) {
    uint64_t step = n < kBuffer ? n : kBuffer;
    int r = out_->write_data(buf_.get(), off, step);
    if (r < 0) return r;
    off += step;
    n -= step;
  }
  return 0;
}

// The stream must end here: one more byte means it was not the stream we were told of.
int ImportJob::expect_end(uint64_t at) {
  uint8_t extra;
  ssize_t got = read_full(in_, &extra, 1);
  if (got < 0) return fail(static_cast<int>(got), "read", false);
  if (got > 0) return bad(StreamError::kTooLong, FormatProblem::kPastEnd, at);
  return 0;
}

int ImportJob::import_raw() {
  uint64_t pos = 0;
  while (pos < o_.size) {
    size_t want = o_.size - pos < kBuffer ? static_cast<size_t>(o_.size - pos) : kBuffer;
    ssize_t got = read_full(in_, buf_.get(), want);
    if (got < 0) return fail(static_cast<int>(got), "read", false);
    s_.bytes_in += static_cast<uint64_t>(got);
    int r = got > 0 ? out_->scan_and_write(buf_.get(), pos, static_cast<uint64_t>(got)) : 0;
    if (r < 0) return r;
    pos += static_cast<uint64_t>(got);
    if (static_cast<size_t>(got) < want)
      return bad(StreamError::kTruncated, FormatProblem::kEndedEarly, pos);
    r = tick(out_->settled(pos));
    if (r < 0) return r;
  }
  return expect_end(pos);
}

int ImportJob::chunk(const ChunkHeader& c, uint64_t* pos) {
  ChunkSpan span;
  int r = check_chunk(o_.header, c, *pos, &span, &fail_.issue);
  if (r < 0) return r;
  const uint64_t len = span.len;
  switch (c.chunk_type) {
    case kChunkRaw:
      for (uint64_t done = 0; done < len;) {
        size_t step = len - done < kBuffer ? static_cast<size_t>(len - done) : kBuffer;
        r = read_in(buf_.get(), step, *pos + done);
        if (r < 0) return r;
        crc_.data(buf_.get(), step);
        r = put(buf_.get(), *pos + done, step);
        if (r == 0) r = tick(out_->settled(*pos + done + step));
        if (r < 0) return r;
        done += step;
      }
      break;
    case kChunkFill: {
      uint32_t word;
      r = read_word(*pos, &word);
      if (r < 0) return r;
      crc_.pattern(word, len);
      r = word == 0 ? put_zeros(*pos, len) : put_pattern(word, *pos, len);
      if (r < 0) return r;
      break;
    }
    case kChunkDontCare:
      crc_.zeros(len);
      r = put_zeros(*pos, len);
      if (r < 0) return r;
      break;
    case kChunkCrc32: {
      uint32_t want;
      r = read_word(*pos, &want);
      if (r < 0) return r;
      uint32_t have = crc_.value();
      if (want != have)
        return bad(StreamError::kCrcMismatch, FormatProblem::kCrcMismatch, *pos, have, want);
      s_.crc_checked = true;
      return 0;
    }
  }
  *pos += len;
  return tick(out_->settled(*pos));
}

int ImportJob::import_sparse() {
  const StreamHeader& h = o_.header;
  uint64_t image = static_cast<uint64_t>(h.total_blocks) * h.block_size;
  int r = check_image_size(h, o_.size, &fail_.issue);
  if (r < 0) return r;
  uint8_t raw[64];
  uint64_t pos = 0;
  for (uint32_t i = 0; i < h.total_chunks; i++) {
    r = read_in(raw, h.chunk_header_size, pos);  // 12 bytes, or more: the rest skipped
    if (r < 0) return r;
    ChunkHeader c;
    memcpy(&c, raw, sizeof c);
    r = chunk(c, &pos);
    if (r < 0) return r;
    s_.chunks++;
  }
  if (pos != image)
    return bad(StreamError::kTruncated, FormatProblem::kChunksShort, pos, pos, image);
  return expect_end(pos);
}

int ImportJob::run() {
  int r = prepare();
  if (r == 0) r = o_.format == StreamFormat::kRaw ? import_raw() : import_sparse();
  if (r == 0) r = out_->flush_hole();
  if (r == 0 && o_.sync) {
    r = retry_eintr([&] { return fsync(dst_); });
    if (r < 0) return fail(r, "fsync", true);
  }
  if (r == 0 && progress_ != nullptr) progress_->report(1, o_.size, o_.size);
  return r;
}

}  // namespace

int read_sparse_header(int fd, StreamHeader* out, ImportFailure* f) {
  uint8_t head[kFileHeaderSize];
  ssize_t got = read_full(fd, head, sizeof head);
  if (got < 0) {
    f->sys = {static_cast<int>(got), "read", false};
    return static_cast<int>(got);
  }
  int r = parse_file_header(head, static_cast<size_t>(got), out, &f->issue);
  if (r < 0) return r;
  // Header bytes beyond the 28 defined: qvol's extension, or someone's we skip.
  const size_t extra_size = out->header_bytes - kFileHeaderSize;
  size_t rest = extra_size;
  uint8_t extra[256];
  while (rest > 0) {
    size_t step = rest < sizeof extra ? rest : sizeof extra;
    got = read_full(fd, extra, step);
    if (got < 0) {
      f->sys = {static_cast<int>(got), "read", false};
      return static_cast<int>(got);
    }
    if (static_cast<size_t>(got) < step)
      return refuse(&f->issue, StreamError::kTruncated, FormatProblem::kEndedInHeader, 0);
    if (rest == extra_size) read_header_extension(extra, step, out);
    rest -= step;
  }
  return check_exact_size(*out, &f->issue);
}

int run_import(int in_fd, int dst_fd, const ImportOptions& opts, ImportStats* stats,
               ImportFailure* fail, PhaseProgress* progress) {
  return ImportJob(in_fd, dst_fd, opts, stats, fail, progress).run();
}

}  // namespace qvol::sys
