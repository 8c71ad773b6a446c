// streamExport(srcFd, outFd, options, onProgress?) -> Promise<ExportStats>
// readSparseHeader(fd) -> Promise<SparseHeader>
// streamImport(inFd, dstFd, options, onProgress?) -> Promise<ImportStats>
// parseSparseHeaderSync(bytes) / checkSparseChunkSync(header, chunkBytes, pos): the pure codec,
//   for tests (each O(1)).
// A stream failure (truncated, too long, corrupt, CRC, size) rejects with an Error whose
// code is STREAM_*, `problem` names what was wrong (src/io/streams/problems.ts words it),
// `at` is the image byte concerned and `a`, `b` its numbers; syscall failures reject with
// a SystemError naming the path.
#include <fcntl.h>
#include <napi.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "common.h"
#include "job_worker.h"
#include "sys/stream_export.h"
#include "sys/stream_import.h"

namespace qvol {

namespace {

sys::StreamFormat FormatProperty(Napi::Object o) {
  std::string v = StringProperty(o, "format");
  if (v.empty() || v == "raw") return sys::StreamFormat::kRaw;
  if (v == "sparse") return sys::StreamFormat::kSparse;
  throw Napi::TypeError::New(o.Env(),
                             "Expected 'raw' or 'sparse' for format but received '" + v + "'");
}

const char* StreamErrorCode(sys::StreamError e) {
  switch (e) {
    case sys::StreamError::kTruncated:
      return "STREAM_TRUNCATED";
    case sys::StreamError::kTooLong:
      return "STREAM_TOO_LONG";
    case sys::StreamError::kCorrupt:
      return "STREAM_CORRUPT";
    case sys::StreamError::kCrcMismatch:
      return "STREAM_CRC_MISMATCH";
    case sys::StreamError::kSizeMismatch:
      return "STREAM_SIZE_MISMATCH";
    default:
      return "STREAM";
  }
}

const char* ProblemName(sys::FormatProblem p) {
  using P = sys::FormatProblem;
  switch (p) {
    case P::kEmpty:
      return "empty";
    case P::kEndedEarly:
      return "ended-early";
    case P::kEndedInHeader:
      return "ended-in-header";
    case P::kNotSparse:
      return "not-sparse";
    case P::kVersion:
      return "version";
    case P::kHeaderSizes:
      return "header-sizes";
    case P::kBlockSize:
      return "block-size";
    case P::kExactSizeMisfit:
      return "exact-size-misfit";
    case P::kChunkPastImage:
      return "chunk-past-image";
    case P::kRawSize:
      return "raw-size";
    case P::kNoWord:
      return "no-word";
    case P::kDontCarePayload:
      return "dont-care-payload";
    case P::kUnknownChunk:
      return "unknown-chunk";
    case P::kCrcMismatch:
      return "crc-mismatch";
    case P::kImageSize:
      return "image-size";
    case P::kChunksShort:
      return "chunks-short";
    case P::kPastEnd:
      return "past-end";
    case P::kDataPastSize:
      return "data-past-size";
    default:
      return "none";
  }
}

// The format issue as an Error: codes and numbers only, the sentence is TypeScript's.
Napi::Error IssueError(Napi::Env env, const sys::FormatIssue& issue) {
  Napi::Error e = Napi::Error::New(env, ProblemName(issue.problem));
  e.Set("code", StreamErrorCode(issue.kind));
  e.Set("problem", ProblemName(issue.problem));
  e.Set("at", static_cast<double>(issue.at));
  e.Set("a", static_cast<double>(issue.a));
  e.Set("b", static_cast<double>(issue.b));
  return e;
}

Napi::Value StreamFailure(Napi::Env env, const sys::ImportFailure& f, const std::string& src,
                          const std::string& dst) {
  if (f.issue.kind == sys::StreamError::kNone) {
    return MakeSystemError(env, f.sys.err, f.sys.syscall, f.sys.on_target ? dst : src).Value();
  }
  return IssueError(env, f.issue).Value();
}

Napi::Object HeaderObject(Napi::Env env, const sys::StreamHeader& h) {
  Napi::Object r = Napi::Object::New(env);
  r.Set("blockSize", h.block_size);
  r.Set("totalBlocks", h.total_blocks);
  r.Set("totalChunks", h.total_chunks);
  r.Set("chunkHeaderSize", h.chunk_header_size);
  r.Set("exactSize", static_cast<double>(h.exact_size));
  r.Set("headerBytes", h.header_bytes);
  return r;
}

// The header a TS caller hands back (from readSparseHeader), checked again here.
sys::StreamHeader HeaderFromObject(Napi::Env env, Napi::Value v) {
  if (!v.IsObject()) throw Napi::TypeError::New(env, "Expected the header readSparseHeader gave");
  Napi::Object h = v.As<Napi::Object>();
  sys::StreamHeader out;
  out.block_size = static_cast<uint32_t>(U64Property(h, "blockSize", 0));
  out.total_blocks = static_cast<uint32_t>(U64Property(h, "totalBlocks", 0));
  out.total_chunks = static_cast<uint32_t>(U64Property(h, "totalChunks", 0));
  out.chunk_header_size = static_cast<uint16_t>(U64Property(h, "chunkHeaderSize", 12));
  if (out.block_size == 0 || out.block_size % 4 != 0 || out.chunk_header_size < 12 ||
      out.chunk_header_size > 64)
    throw Napi::RangeError::New(env, "Expected the header readSparseHeader gave");
  return out;
}

class ExportWorker : public JobWorker {
 public:
  ExportWorker(Napi::Env env, int src, int out, sys::ExportOptions o, std::string src_path,
               std::string out_path)
      : JobWorker(env, "qvol.streamExport"),
        src_(src),
        out_(out),
        o_(o),
        src_path_(std::move(src_path)),
        out_path_(std::move(out_path)) {}

 private:
  int Work(sys::PhaseProgress* progress) override {
    o_.cancel = cancel();
    return sys::run_export(src_, out_, o_, &s_, &fail_, progress);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object r = Napi::Object::New(env);
    r.Set("method", sys::out_method_name(s_.method));
    r.Set("bytesOut", static_cast<double>(s_.bytes_out));
    r.Set("dataBytes", static_cast<double>(s_.data_bytes));
    r.Set("zeroBytes", static_cast<double>(s_.zero_bytes));
    r.Set("chunks", static_cast<double>(s_.chunks));
    r.Set("crc", s_.crc);
    r.Set("pipeSize", s_.pipe_size);
    return r;
  }
  Napi::Value Failure(Napi::Env env) override {
    return MakeSystemError(env, fail_.err, fail_.syscall, fail_.on_target ? out_path_ : src_path_)
        .Value();
  }

  int src_, out_;
  sys::ExportOptions o_;
  sys::ExportStats s_;
  sys::CopyFailure fail_;
  std::string src_path_, out_path_;
};

class HeaderWorker : public JobWorker {
 public:
  HeaderWorker(Napi::Env env, int fd, std::string path)
      : JobWorker(env, "qvol.readSparseHeader"), fd_(fd), path_(std::move(path)) {}

 private:
  int Work(sys::PhaseProgress*) override { return sys::read_sparse_header(fd_, &h_, &fail_); }
  Napi::Value Result(Napi::Env env) override { return HeaderObject(env, h_); }
  Napi::Value Failure(Napi::Env env) override { return StreamFailure(env, fail_, path_, path_); }

  int fd_;
  std::string path_;
  sys::StreamHeader h_;
  sys::ImportFailure fail_;
};

class ImportWorker : public JobWorker {
 public:
  ImportWorker(Napi::Env env, int in, int dst, sys::ImportOptions o, std::string in_path,
               std::string dst_path)
      : JobWorker(env, "qvol.streamImport"),
        in_(in),
        dst_(dst),
        o_(o),
        in_path_(std::move(in_path)),
        dst_path_(std::move(dst_path)) {}

 private:
  int Work(sys::PhaseProgress* progress) override {
    o_.cancel = cancel();
    return sys::run_import(in_, dst_, o_, &s_, &fail_, progress);
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object r = Napi::Object::New(env);
    r.Set("bytesIn", static_cast<double>(s_.bytes_in));
    r.Set("bytesWritten", static_cast<double>(s_.writer.bytes_written));
    r.Set("bytesSkipped", static_cast<double>(s_.writer.bytes_skipped));
    r.Set("bytesZeroed", static_cast<double>(s_.writer.bytes_zeroed));
    r.Set("holes", static_cast<double>(s_.writer.holes));
    r.Set("chunks", static_cast<double>(s_.chunks));
    r.Set("crcChecked", s_.crc_checked);
    r.Set("pipeSize", s_.pipe_size);
    return r;
  }
  Napi::Value Failure(Napi::Env env) override {
    return StreamFailure(env, fail_, in_path_, dst_path_);
  }

  int in_, dst_;
  sys::ImportOptions o_;
  sys::ImportStats s_;
  sys::ImportFailure fail_;
  std::string in_path_, dst_path_;
};

Napi::Object RequireOptions(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsObject()) throw Napi::TypeError::New(info.Env(), "Expected an object for options");
  return info[i].As<Napi::Object>();
}

Napi::Value StreamExport(const Napi::CallbackInfo& info) {
  int src = RequireFd(info, 0, "srcFd");
  int out = RequireFd(info, 1, "outFd");
  Napi::Object o = RequireOptions(info, 2);
  sys::ExportOptions opts;
  opts.format = FormatProperty(o);
  opts.length = U64Property(o, "length", 0);
  opts.crc = BoolProperty(o, "crc", true);
  opts.disable = static_cast<uint32_t>(U64Property(o, "disable", 0));
  auto* w = new ExportWorker(info.Env(), src, out, opts, StringProperty(o, "srcPath"),
                             StringProperty(o, "outPath"));
  return w->Start(info[3], o.Get("cancel"));
}

Napi::Value ReadSparseHeader(const Napi::CallbackInfo& info) {
  int fd = RequireFd(info, 0, "fd");
  std::string path = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  auto* w = new HeaderWorker(info.Env(), fd, path);
  return w->Start(info.Env().Undefined(), info.Env().Undefined());
}

Napi::Value StreamImport(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int in = RequireFd(info, 0, "inFd");
  int dst = RequireFd(info, 1, "dstFd");
  Napi::Object o = RequireOptions(info, 2);
  sys::ImportOptions opts;
  opts.format = FormatProperty(o);
  opts.size = U64Property(o, "size", 0);
  opts.target_known_zero = BoolProperty(o, "targetKnownZero", false);
  opts.discard_zeroes = U64Property(o, "discardZeroes", 0);
  opts.disable = static_cast<uint32_t>(U64Property(o, "disable", 0));
  opts.sync = BoolProperty(o, "sync", true);
  if (opts.format == sys::StreamFormat::kSparse)
    opts.header = HeaderFromObject(env, o.Get("header"));
  auto* w = new ImportWorker(env, in, dst, opts, StringProperty(o, "inPath"),
                             StringProperty(o, "dstPath"));
  return w->Start(info[3], o.Get("cancel"));
}

// The file header (and the extension that follows it, if given) from bytes: the header, or
// {code, problem, at, a, b} when the bytes are refused. Throws nothing for bad bytes.
Napi::Value ParseSparseHeaderSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsBuffer()) throw Napi::TypeError::New(env, "Expected a Buffer for bytes");
  auto bytes = info[0].As<Napi::Buffer<uint8_t>>();
  sys::StreamHeader h;
  sys::FormatIssue issue;
  size_t n = bytes.Length();
  int r = sys::parse_file_header(bytes.Data(), n < sys::kFileHeaderSize ? n : sys::kFileHeaderSize,
                                 &h, &issue);
  if (r == 0 && n > sys::kFileHeaderSize)
    sys::read_header_extension(bytes.Data() + sys::kFileHeaderSize, n - sys::kFileHeaderSize, &h);
  if (r == 0) r = sys::check_exact_size(h, &issue);
  if (r < 0) return IssueError(env, issue).Value();
  return HeaderObject(env, h);
}

// One chunk header (12 bytes) at image byte `pos` against a file header: {len, payload}, or
// the refusal as above.
Napi::Value CheckSparseChunkSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sys::StreamHeader h = HeaderFromObject(env, info[0]);
  if (!info[1].IsBuffer() ||
      info[1].As<Napi::Buffer<uint8_t>>().Length() < sizeof(sys::ChunkHeader))
    throw Napi::TypeError::New(env, "Expected a Buffer of 12 bytes for chunk");
  sys::ChunkHeader c;
  memcpy(&c, info[1].As<Napi::Buffer<uint8_t>>().Data(), sizeof c);
  uint64_t pos = RequireU64(info, 2, "pos");
  sys::ChunkSpan span;
  sys::FormatIssue issue;
  if (sys::check_chunk(h, c, pos, &span, &issue) < 0) return IssueError(env, issue).Value();
  Napi::Object r = Napi::Object::New(env);
  r.Set("len", static_cast<double>(span.len));
  r.Set("payload", static_cast<double>(span.payload));
  return r;
}

}  // namespace

namespace {
// pipeSync(): [readFd, writeFd] of a new kernel pipe (O_CLOEXEC), so two external tools
// (zfs send | zfs receive) can be joined without a shell and each be stopped on its own.
Napi::Value PipeSync(const Napi::CallbackInfo& info) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw MakeSystemError(info.Env(), -errno, "pipe2");
  Napi::Array out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, fds[0]);
  out.Set(1u, fds[1]);
  return out;
}
}  // namespace

void InitStream(Napi::Env env, Napi::Object exports) {
  exports.Set("pipeSync", Napi::Function::New(env, PipeSync, "pipeSync"));
  exports.Set("streamExport", Napi::Function::New(env, StreamExport, "streamExport"));
  exports.Set("readSparseHeader", Napi::Function::New(env, ReadSparseHeader, "readSparseHeader"));
  exports.Set("streamImport", Napi::Function::New(env, StreamImport, "streamImport"));
  exports.Set("parseSparseHeaderSync",
              Napi::Function::New(env, ParseSparseHeaderSync, "parseSparseHeaderSync"));
  exports.Set("checkSparseChunkSync",
              Napi::Function::New(env, CheckSparseChunkSync, "checkSparseChunkSync"));
}

}  // namespace qvol
