// copyFile(srcFd, dstFd, options, onProgress?) -> Promise<CopyStats>: one whole copy job on
// a worker thread (sys/copy_job.cc), with throttled progress and cancellation (JobWorker).
#include <napi.h>

#include <string>

#include "common.h"
#include "job_worker.h"
#include "sys/copy_job.h"

namespace qvol {

namespace {

sys::Mode ModeProperty(Napi::Object opts, const char* name) {
  std::string v = StringProperty(opts, name);
  if (v.empty() || v == "auto") return sys::Mode::kAuto;
  if (v == "always") return sys::Mode::kAlways;
  if (v == "never") return sys::Mode::kNever;
  throw Napi::TypeError::New(opts.Env(), std::string("Expected 'auto', 'always' or 'never' for ") +
                                             name + " but received '" + v + "'");
}

const char* MethodName(sys::Method m) {
  switch (m) {
    case sys::Method::kClone:
      return "clone";
    case sys::Method::kCopyRange:
      return "copy_file_range";
    case sys::Method::kReadWrite:
      return "readwrite";
    default:
      return "none";
  }
}

class CopyWorker : public JobWorker {
 public:
  CopyWorker(Napi::Env env, int src, int dst, const sys::CopyOptions& opts, std::string src_path,
             std::string dst_path)
      : JobWorker(env, "qvol.copyFile"),
        src_(src),
        dst_(dst),
        opts_(opts),
        src_path_(std::move(src_path)),
        dst_path_(std::move(dst_path)) {}

 private:
  // The copy engine reports (done, total); the worker speaks in phases.
  class Progress : public sys::CopyProgress {
   public:
    explicit Progress(sys::PhaseProgress* p) : p_(p) {}
    void report(uint64_t done, uint64_t total) override { p_->report(0, done, total); }

   private:
    sys::PhaseProgress* p_;
  };

  int Work(sys::PhaseProgress* progress) override {
    opts_.cancel = cancel();
    Progress sink(progress);
    return sys::run_copy(src_, dst_, opts_, &stats_, &fail_, progress == nullptr ? nullptr : &sink);
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("method", MethodName(stats_.method));
    out.Set("bytesRead", static_cast<double>(stats_.bytes_read));
    out.Set("bytesWritten", static_cast<double>(stats_.bytes_written));
    out.Set("bytesCloned", static_cast<double>(stats_.bytes_cloned));
    out.Set("bytesSkipped", static_cast<double>(stats_.bytes_skipped));
    out.Set("bytesZeroed", static_cast<double>(stats_.bytes_zeroed));
    out.Set("holes", static_cast<double>(stats_.holes));
    out.Set("zeroRungs", stats_.zero_rungs);
    return out;
  }

  Napi::Value Failure(Napi::Env env) override {
    const std::string& path = fail_.on_target ? dst_path_ : src_path_;
    return MakeSystemError(env, fail_.err, fail_.syscall, path).Value();
  }

  int src_, dst_;
  sys::CopyOptions opts_;
  sys::CopyStats stats_;
  sys::CopyFailure fail_;
  std::string src_path_, dst_path_;
};

Napi::Value CopyFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int src = RequireFd(info, 0, "srcFd");
  int dst = RequireFd(info, 1, "dstFd");
  if (!info[2].IsObject()) throw Napi::TypeError::New(env, "Expected an object for options");
  Napi::Object o = info[2].As<Napi::Object>();
  sys::CopyOptions opts;
  opts.length = U64Property(o, "length", 0);
  opts.target_size = U64Property(o, "targetSize", opts.length);
  opts.target_known_zero = BoolProperty(o, "targetKnownZero", false);
  opts.discard_zeroes = U64Property(o, "discardZeroes", 0);
  opts.reflink = ModeProperty(o, "reflink");
  opts.sparse = ModeProperty(o, "sparse");
  opts.disable = static_cast<uint32_t>(U64Property(o, "disable", 0));
  opts.sync = BoolProperty(o, "sync", true);
  opts.copy_mtime = BoolProperty(o, "copyMtime", false);
  uint64_t buf = U64Property(o, "bufferSize", 1u << 20);
  if (buf < 4096 || buf > (64u << 20) || buf % 4096 != 0)
    throw Napi::RangeError::New(env, "Expected a multiple of 4096 up to 64 MiB for bufferSize");
  opts.buffer_size = static_cast<uint32_t>(buf);
  auto* worker = new CopyWorker(env, src, dst, opts, StringProperty(o, "srcPath"),
                                StringProperty(o, "dstPath"));
  return worker->Start(info[3], o.Get("cancel"));
}

}  // namespace

void InitCopy(Napi::Env env, Napi::Object exports) {
  exports.Set("copyFile", Napi::Function::New(env, CopyFile, "copyFile"));
}

}  // namespace qvol
