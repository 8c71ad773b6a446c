#include "stream_export.h"

#include <unistd.h>

#include <cstring>
#include <vector>

#include "crc32.h"
#include "errors.h"
#include "extents.h"
#include "job_control.h"
#include "sparse_format.h"
#include "sparse_writer.h"
#include "zero.h"

namespace qvol::sys {

namespace {

constexpr uint64_t kSendStep = 64ull << 20;    // per call, so cancel and progress stay live
constexpr uint32_t kMaxRawBlocks = 16384;      // 64 MiB per RAW chunk (total_sz is 32-bit)
constexpr uint32_t kMaxRunBlocks = 0xffffffffu;
constexpr size_t kScanBuffer = 1u << 20;

// One chunk to be: a run of blocks of one kind.
struct Run {
  uint32_t first;
  uint32_t count;
  uint16_t type;
  uint32_t fill;
};

// A block whose bytes repeat with period 4 is a FILL of its first word.
bool is_fill(const uint8_t* b, uint32_t* word) {
  memcpy(word, b, 4);
  return memcmp(b, b + 4, kBlock - 4) == 0;
}

class ExportJob {
 public:
  ExportJob(int src, int out, const ExportOptions& o, ExportStats* s, CopyFailure* f,
            PhaseProgress* p)
      : src_(src), out_(out, o.disable), o_(o), s_(*s), fail_(*f), progress_(p) {}

  int run();

 private:
  int fail(int err, const char* syscall, bool on_target) {
    fail_ = {err, syscall, on_target};
    return err;
  }
  int out_failed(int err) { return fail(err, out_.syscall(), true); }
  int tick(int phase, uint64_t done);
  ExtentProbe probe(uint64_t pos) const;

  int send_raw();
  int plan();
  int scan(uint64_t begin, uint64_t end);
  void add(uint16_t type, uint32_t blocks, uint32_t fill);
  int send_sparse();

  int src_;
  StreamOut out_;
  const ExportOptions& o_;
  ExportStats& s_;
  CopyFailure& fail_;
  PhaseProgress* progress_;
  bool src_block_ = false;
  uint64_t image_end_ = 0;  // length rounded up to whole blocks
  std::vector<Run> runs_;
  ImageCrc crc_{o_.crc};
  AlignedBuffer buf_;
  JobControl control_{o_.cancel};
};

int ExportJob::tick(int phase, uint64_t done) {
  if (control_.cancelled()) return fail(-ECANCELED, "export", false);
  if (progress_ != nullptr && control_.report_due()) progress_->report(phase, done, o_.length);
  return 0;
}

ExtentProbe ExportJob::probe(uint64_t pos) const {
  bool no_seek = src_block_ || (o_.disable & kCapSeekHole) != 0;
  ExtentProbe e = probe_extent(src_, pos, o_.length, no_seek);
  if (e.end <= pos) e.end = o_.length;  // never stall on a confused filesystem
  return e;
}

// Raw: data extents go by splice (or sendfile), holes as zero pages; nothing is read.
int ExportJob::send_raw() {
  uint64_t pos = 0;
  while (pos < o_.length) {
    ExtentProbe e = probe(pos);
    uint64_t end = e.end - pos > kSendStep ? pos + kSendStep : e.end;
    int r = e.data ? out_.put_file(src_, pos, end - pos) : out_.put_zeros(end - pos);
    if (r < 0) return out_failed(r);
    (e.data ? s_.data_bytes : s_.zero_bytes) += end - pos;
    pos = end;
    r = tick(1, pos);
    if (r < 0) return r;
  }
  return 0;
}

void ExportJob::add(uint16_t type, uint32_t blocks, uint32_t fill) {
  while (blocks > 0) {
    uint32_t cap = type == kChunkRaw ? kMaxRawBlocks : kMaxRunBlocks;
    if (!runs_.empty()) {
      Run& last = runs_.back();
      if (last.type == type && last.fill == fill && last.count < cap) {
        uint32_t take = cap - last.count < blocks ? cap - last.count : blocks;
        last.count += take;
        blocks -= take;
        continue;
      }
    }
    uint32_t first = runs_.empty() ? 0 : runs_.back().first + runs_.back().count;
    uint32_t take = cap < blocks ? cap : blocks;
    runs_.push_back({first, take, type, fill});
    blocks -= take;
  }
}

// Reads [begin, end) (block aligned; past the volume's end reads as zeros) and sorts each
// block into zero, fill or data, folding it into the CRC.
int ExportJob::scan(uint64_t begin, uint64_t end) {
  for (uint64_t pos = begin; pos < end;) {
    uint64_t want = end - pos < kScanBuffer ? end - pos : kScanBuffer;
    uint64_t avail = pos >= o_.length ? 0 : (o_.length - pos < want ? o_.length - pos : want);
    uint64_t got = 0;
    while (got < avail) {
      ssize_t n = retry_eintr([&] {
        return pread(src_, buf_.get() + got, avail - got, static_cast<off_t>(pos + got));
      });
      if (n < 0) return fail(static_cast<int>(n), "read", false);
      if (n == 0) break;  // the source shrank under us: the rest reads as zeros
      got += static_cast<uint64_t>(n);
    }
    memset(buf_.get() + got, 0, want - got);
    const uint8_t* b = buf_.get();
    const uint8_t* raw_begin = nullptr;  // a span of data blocks not yet in the CRC
    for (uint64_t i = 0; i < want; i += kBlock) {
      const uint8_t* blk = b + i;
      uint32_t word = 0;
      uint16_t type = is_zero(blk, kBlock) ? kChunkDontCare : is_fill(blk, &word) ? kChunkFill : kChunkRaw;
      if (type != kChunkRaw && raw_begin != nullptr) {
        crc_.data(raw_begin, static_cast<size_t>(blk - raw_begin));
        raw_begin = nullptr;
      }
      if (type == kChunkRaw) {
        if (raw_begin == nullptr) raw_begin = blk;
        s_.data_bytes += kBlock;
      } else if (type == kChunkFill) {
        crc_.pattern(word, kBlock);
      } else {
        crc_.zeros(kBlock);
        s_.zero_bytes += kBlock;
      }
      add(type, 1, type == kChunkFill ? word : 0);
    }
    if (raw_begin != nullptr) crc_.data(raw_begin, static_cast<size_t>(b + want - raw_begin));
    pos += want;
    int r = tick(0, pos < o_.length ? pos : o_.length);
    if (r < 0) return r;
  }
  return 0;
}

// The sparse header must say how many chunks follow, and a pipe cannot be rewound: so the
// volume is scanned first (its extent map, and the data extents read for zero blocks and
// the CRC), then sent by the plan. The second pass splices from the page cache.
int ExportJob::plan() {
  uint64_t cur = 0;
  while (cur < image_end_) {
    ExtentProbe e = probe(cur);  // cur < length: image_end_ is length rounded up
    int r;
    if (!e.data) {
      uint64_t hole_to = e.end >= o_.length ? image_end_ : align_down(e.end);
      if (hole_to > cur) {
        uint64_t blocks = (hole_to - cur) / kBlock;
        add(kChunkDontCare, static_cast<uint32_t>(blocks), 0);
        crc_.zeros(hole_to - cur);
        s_.zero_bytes += hole_to - cur;
        cur = hole_to;
        r = tick(0, cur < o_.length ? cur : o_.length);
        if (r < 0) return r;
        continue;
      }
      e.end = cur + kBlock;  // a hole smaller than a block: read the block
    }
    uint64_t data_to = align_up(e.end);
    if (data_to > image_end_) data_to = image_end_;
    r = scan(cur, data_to);
    if (r < 0) return r;
    cur = data_to;
  }
  return 0;
}

int ExportJob::send_sparse() {
  SparseHeader h = {kSparseMagic, kSparseMajor, 0, kFileHeaderSize + kQvolExtSize,
                    kChunkHeaderSize, static_cast<uint32_t>(kBlock),
                    static_cast<uint32_t>(image_end_ / kBlock),
                    static_cast<uint32_t>(runs_.size() + (o_.crc ? 1 : 0)), 0};
  QvolHeaderExt ext = {kQvolExtMagic, o_.length};
  int r = out_.put(&h, sizeof h);
  if (r == 0) r = out_.put(&ext, sizeof ext);
  if (r < 0) return out_failed(r);
  for (const Run& run : runs_) {
    uint64_t off = static_cast<uint64_t>(run.first) * kBlock;
    uint64_t len = static_cast<uint64_t>(run.count) * kBlock;
    uint32_t payload = run.type == kChunkRaw ? static_cast<uint32_t>(len) : run.type == kChunkFill ? 4 : 0;
    ChunkHeader c = {run.type, 0, run.count, kChunkHeaderSize + payload};
    r = out_.put(&c, sizeof c);
    if (r == 0 && run.type == kChunkFill) r = out_.put(&run.fill, 4);
    if (r == 0 && run.type == kChunkRaw) {
      uint64_t avail = off >= o_.length ? 0 : (o_.length - off < len ? o_.length - off : len);
      r = out_.put_file(src_, off, avail);
      if (r == 0) r = out_.put_zeros(len - avail);  // the last block's padding
    }
    if (r < 0) return out_failed(r);
    uint64_t done = off + len < o_.length ? off + len : o_.length;
    r = tick(1, done);
    if (r < 0) return r;
  }
  s_.chunks = runs_.size();
  if (o_.crc) {
    ChunkHeader c = {kChunkCrc32, 0, 0, kChunkHeaderSize + 4};
    r = out_.put(&c, sizeof c);
    uint32_t value = crc_.value();
    if (r == 0) r = out_.put(&value, 4);
    if (r < 0) return out_failed(r);
    s_.chunks++;
    s_.crc = value;
  }
  return 0;
}

int ExportJob::run() {
  int r = volume_fd_kind(src_, &src_block_);
  if (r < 0) return fail(r, "fstat", false);
  r = out_.init();
  if (r < 0) return out_failed(r);
  s_.pipe_size = out_.pipe_size();
  if (o_.format == StreamFormat::kRaw) {
    r = send_raw();
  } else {
    image_end_ = align_up(o_.length);
    if (image_end_ / kBlock > kMaxRunBlocks) return fail(-EFBIG, "export", false);
    buf_ = aligned_buffer(kScanBuffer);
    if (!buf_) return fail(-ENOMEM, "malloc", false);
    r = plan();
    if (r == 0) r = send_sparse();
  }
  if (r < 0) return r;
  r = out_.flush();
  if (r < 0) return out_failed(r);
  s_.method = out_.method();
  s_.bytes_out = out_.bytes();
  if (progress_ != nullptr) progress_->report(1, o_.length, o_.length);
  return 0;
}

}  // namespace

int run_export(int src_fd, int out_fd, const ExportOptions& opts, ExportStats* stats,
               CopyFailure* fail, PhaseProgress* progress) {
  return ExportJob(src_fd, out_fd, opts, stats, fail, progress).run();
}

}  // namespace qvol::sys
