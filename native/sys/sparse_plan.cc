#include "sparse_plan.h"

#include <unistd.h>

#include <cstring>

#include "crc32.h"
#include "errors.h"
#include "extents.h"
#include "sparse_format.h"
#include "zero.h"

namespace qvol::sys {

namespace {

constexpr uint32_t kMaxRawBlocks = 16384;  // 64 MiB per RAW chunk (total_sz is 32-bit)
constexpr uint32_t kMaxRunBlocks = 0xffffffffu;
constexpr size_t kScanBuffer = 1u << 20;

// A block whose bytes repeat with period 4 is a FILL of its first word.
bool is_fill(const uint8_t* b, uint32_t* word) {
  memcpy(word, b, 4);
  return memcmp(b, b + 4, kBlock - 4) == 0;
}

class Planner {
 public:
  Planner(int src, const PlanOptions& o, SparsePlan* p, Ticker* t, CopyFailure* f)
      : src_(src), o_(o), p_(*p), ticker_(t), fail_(*f) {}

  int run();

 private:
  int fail(int err, const char* syscall) {
    fail_ = {err, syscall, false};
    return err;
  }
  int tick(uint64_t pos) { return ticker_->tick(pos < o_.length ? pos : o_.length); }
  ExtentProbe probe(uint64_t pos) const;
  void add(uint16_t type, uint32_t blocks, uint32_t fill);
  int scan(uint64_t begin, uint64_t end);

  int src_;
  const PlanOptions& o_;
  SparsePlan& p_;
  Ticker* ticker_;
  CopyFailure& fail_;
  ImageCrc crc_{o_.crc};
  AlignedBuffer buf_;
};

ExtentProbe Planner::probe(uint64_t pos) const {
  return probe_forward(src_, pos, o_.length,
                       o_.source_is_block || (o_.disable & kCapSeekHole) != 0);
}

void Planner::add(uint16_t type, uint32_t blocks, uint32_t fill) {
  std::vector<Run>& runs = p_.runs;
  while (blocks > 0) {
    uint32_t cap = type == kChunkRaw ? kMaxRawBlocks : kMaxRunBlocks;
    if (!runs.empty()) {
      Run& last = runs.back();
      if (last.type == type && last.fill == fill && last.count < cap) {
        uint32_t take = cap - last.count < blocks ? cap - last.count : blocks;
        last.count += take;
        blocks -= take;
        continue;
      }
    }
    uint32_t first = runs.empty() ? 0 : runs.back().first + runs.back().count;
    uint32_t take = cap < blocks ? cap : blocks;
    runs.push_back({first, take, type, fill});
    blocks -= take;
  }
}

// Reads [begin, end) (block aligned; past the volume's end reads as zeros) and sorts each
// block into zero, fill or data, folding it into the CRC.
int Planner::scan(uint64_t begin, uint64_t end) {
  for (uint64_t pos = begin; pos < end;) {
    uint64_t want = end - pos < kScanBuffer ? end - pos : kScanBuffer;
    uint64_t avail = pos >= o_.length ? 0 : (o_.length - pos < want ? o_.length - pos : want);
    uint64_t got = 0;
    while (got < avail) {
      ssize_t n = retry_eintr([&] {
        return pread(src_, buf_.get() + got, avail - got, static_cast<off_t>(pos + got));
      });
      if (n < 0) return fail(static_cast<int>(n), "read");
      if (n == 0) break;  // the source shrank under us: the rest reads as zeros
      got += static_cast<uint64_t>(n);
    }
    memset(buf_.get() + got, 0, want - got);
    const uint8_t* b = buf_.get();
    const uint8_t* raw_begin = nullptr;  // a span of data blocks not yet in the CRC
    for (uint64_t i = 0; i < want; i += kBlock) {
      const uint8_t* blk = b + i;
      uint32_t word = 0;
      uint16_t type = is_zero(blk, kBlock)  ? kChunkDontCare
                      : is_fill(blk, &word) ? kChunkFill
                                            : kChunkRaw;
      if (type != kChunkRaw && raw_begin != nullptr) {
        crc_.data(raw_begin, static_cast<size_t>(blk - raw_begin));
        raw_begin = nullptr;
      }
      if (type == kChunkRaw) {
        if (raw_begin == nullptr) raw_begin = blk;
        p_.data_bytes += kBlock;
      } else if (type == kChunkFill) {
        crc_.pattern(word, kBlock);
      } else {
        crc_.zeros(kBlock);
        p_.zero_bytes += kBlock;
      }
      add(type, 1, type == kChunkFill ? word : 0);
    }
    if (raw_begin != nullptr) crc_.data(raw_begin, static_cast<size_t>(b + want - raw_begin));
    pos += want;
    int r = tick(pos);
    if (r < 0) return r;
  }
  return 0;
}

int Planner::run() {
  p_.image_end = align_up(o_.length);
  if (p_.image_end / kBlock > kMaxRunBlocks) return fail(-EFBIG, "export");
  buf_ = aligned_buffer(kScanBuffer);
  if (!buf_) return fail(-ENOMEM, "malloc");
  uint64_t cur = 0;
  while (cur < p_.image_end) {
    ExtentProbe e = probe(cur);  // cur < length: image_end is length rounded up
    if (!e.data) {
      uint64_t hole_to = e.end >= o_.length ? p_.image_end : align_down(e.end);
      if (hole_to > cur) {
        add(kChunkDontCare, static_cast<uint32_t>((hole_to - cur) / kBlock), 0);
        crc_.zeros(hole_to - cur);
        p_.zero_bytes += hole_to - cur;
        cur = hole_to;
        int r = tick(cur);
        if (r < 0) return r;
        continue;
      }
      e.end = cur + kBlock;  // a hole smaller than a block: read the block
    }
    uint64_t data_to = align_up(e.end);
    if (data_to > p_.image_end) data_to = p_.image_end;
    int r = scan(cur, data_to);
    if (r < 0) return r;
    cur = data_to;
  }
  p_.crc = crc_.value();
  return 0;
}

}  // namespace

int plan_sparse(int src_fd, const PlanOptions& opts, SparsePlan* plan, Ticker* ticker,
                CopyFailure* fail) {
  return Planner(src_fd, opts, plan, ticker, fail).run();
}

}  // namespace qvol::sys
