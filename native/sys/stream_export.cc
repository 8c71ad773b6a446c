#include "stream_export.h"

#include <unistd.h>

#include "errors.h"
#include "extents.h"
#include "job_control.h"
#include "sparse_format.h"
#include "sparse_plan.h"

namespace qvol::sys {

namespace {

constexpr uint64_t kSendStep = 64ull << 20;  // per call, so cancel and progress stay live

class ExportJob : public Ticker {
 public:
  ExportJob(int src, int out, const ExportOptions& o, ExportStats* s, CopyFailure* f,
            PhaseProgress* p)
      : src_(src), out_(out, o.disable), o_(o), s_(*s), fail_(*f), progress_(p) {}

  int run();
  // The planner's progress: phase 0.
  int tick(uint64_t done) override { return tick(0, done); }

 private:
  int fail(int err, const char* syscall, bool on_target) {
    fail_ = {err, syscall, on_target};
    return err;
  }
  int out_failed(int err) { return fail(err, out_.syscall(), true); }
  int tick(int phase, uint64_t done);
  ExtentProbe probe(uint64_t pos) const;

  int send_raw();
  int send_sparse(const SparsePlan& plan);

  int src_;
  StreamOut out_;
  const ExportOptions& o_;
  ExportStats& s_;
  CopyFailure& fail_;
  PhaseProgress* progress_;
  bool src_block_ = false;
  JobControl control_{o_.cancel};
};

int ExportJob::tick(int phase, uint64_t done) {
  if (control_.cancelled()) return fail(-ECANCELED, "export", false);
  if (progress_ != nullptr && control_.report_due()) progress_->report(phase, done, o_.length);
  return 0;
}

ExtentProbe ExportJob::probe(uint64_t pos) const {
  return probe_forward(src_, pos, o_.length, src_block_ || (o_.disable & kCapSeekHole) != 0);
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

// The sparse header must say how many chunks follow, and a pipe cannot be rewound: so the
// volume is planned first (sparse_plan.cc), then sent by the plan. The data goes by splice
// from the page cache the plan's reads filled.
int ExportJob::send_sparse(const SparsePlan& plan) {
  SparseHeader h = {kSparseMagic,
                    kSparseMajor,
                    0,
                    kFileHeaderSize + kQvolExtSize,
                    kChunkHeaderSize,
                    static_cast<uint32_t>(kBlock),
                    static_cast<uint32_t>(plan.image_end / kBlock),
                    static_cast<uint32_t>(plan.runs.size() + (o_.crc ? 1 : 0)),
                    0};
  QvolHeaderExt ext = {kQvolExtMagic, o_.length};
  int r = out_.put(&h, sizeof h);
  if (r == 0) r = out_.put(&ext, sizeof ext);
  if (r < 0) return out_failed(r);
  for (const Run& run : plan.runs) {
    uint64_t off = static_cast<uint64_t>(run.first) * kBlock;
    uint64_t len = static_cast<uint64_t>(run.count) * kBlock;
    uint32_t payload = run.type == kChunkRaw    ? static_cast<uint32_t>(len)
                       : run.type == kChunkFill ? 4
                                                : 0;
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
  s_.chunks = plan.runs.size();
  s_.data_bytes = plan.data_bytes;
  s_.zero_bytes = plan.zero_bytes;
  if (o_.crc) {
    ChunkHeader c = {kChunkCrc32, 0, 0, kChunkHeaderSize + 4};
    r = out_.put(&c, sizeof c);
    uint32_t value = plan.crc;
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
    SparsePlan plan;
    PlanOptions p;
    p.length = o_.length;
    p.source_is_block = src_block_;
    p.crc = o_.crc;
    p.disable = o_.disable;
    r = plan_sparse(src_, p, &plan, this, &fail_);
    if (r == 0) r = send_sparse(plan);
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
