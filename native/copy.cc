// copyFile(srcFd, dstFd, options, onProgress?) -> Promise<CopyStats>: one whole copy job on
// a worker thread (sys/copy_job.cc), with throttled progress and cancellation through a
// shared Int32Array that JavaScript sets with Atomics.store.
#include <napi.h>

#include <string>

#include "common.h"
#include "sys/copy_job.h"

namespace qvol {

namespace {

struct ProgressEvent {
  uint64_t done, total;
};

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
    case sys::Method::kClone: return "clone";
    case sys::Method::kCopyRange: return "copy_file_range";
    case sys::Method::kReadWrite: return "readwrite";
    default: return "none";
  }
}

class CopyWorker : public Napi::AsyncProgressWorker<ProgressEvent> {
 public:
  CopyWorker(Napi::Env env, int src, int dst, const sys::CopyOptions& opts)
      : Napi::AsyncProgressWorker<ProgressEvent>(env, "qvol.copyFile"),
        deferred_(Napi::Promise::Deferred::New(env)), src_(src), dst_(dst), opts_(opts) {}

  Napi::Promise Start(Napi::Value on_progress, Napi::Value cancel, std::string src_path,
                      std::string dst_path) {
    if (on_progress.IsFunction()) on_progress_ = Napi::Persistent(on_progress.As<Napi::Function>());
    if (cancel.IsTypedArray()) {
      // The array's memory is pinned by holding a reference until the job settles.
      auto arr = cancel.As<Napi::Int32Array>();
      cancel_ref_ = Napi::Persistent(arr.As<Napi::Object>());
      opts_.cancel = arr.Data();
    }
    src_path_ = std::move(src_path);
    dst_path_ = std::move(dst_path);
    Queue();
    return deferred_.Promise();
  }

 private:
  class Sink : public sys::CopyProgress {
   public:
    explicit Sink(const ExecutionProgress& p) : p_(p) {}
    void report(uint64_t done, uint64_t total) override {
      ProgressEvent ev{done, total};
      p_.Send(&ev, 1);
    }

   private:
    const ExecutionProgress& p_;
  };

  void Execute(const ExecutionProgress& progress) override {
    Sink sink(progress);
    int r = sys::run_copy(src_, dst_, opts_, &stats_, &fail_, on_progress_.IsEmpty() ? nullptr : &sink);
    if (r < 0) SetError(fail_.syscall);
  }

  void OnProgress(const ProgressEvent* ev, size_t count) override {
    if (count == 0 || on_progress_.IsEmpty()) return;
    Napi::HandleScope scope(Env());
    on_progress_.Call({Napi::Number::New(Env(), static_cast<double>(ev->done)),
                       Napi::Number::New(Env(), static_cast<double>(ev->total))});
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object out = Napi::Object::New(env);
    out.Set("method", MethodName(stats_.method));
    out.Set("bytesRead", static_cast<double>(stats_.bytes_read));
    out.Set("bytesWritten", static_cast<double>(stats_.bytes_written));
    out.Set("bytesCloned", static_cast<double>(stats_.bytes_cloned));
    out.Set("bytesSkipped", static_cast<double>(stats_.bytes_skipped));
    out.Set("bytesZeroed", static_cast<double>(stats_.bytes_zeroed));
    out.Set("holes", static_cast<double>(stats_.holes));
    out.Set("zeroRungs", stats_.zero_rungs);
    deferred_.Resolve(out);
  }

  void OnError(const Napi::Error&) override {
    Napi::HandleScope scope(Env());
    const std::string& path = fail_.on_target ? dst_path_ : src_path_;
    deferred_.Reject(MakeSystemError(Env(), fail_.err, fail_.syscall, path).Value());
  }

  Napi::Promise::Deferred deferred_;
  Napi::FunctionReference on_progress_;
  Napi::ObjectReference cancel_ref_;
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
  opts.reflink = ModeProperty(o, "reflink");
  opts.sparse = ModeProperty(o, "sparse");
  opts.disable = static_cast<uint32_t>(U64Property(o, "disable", 0));
  opts.sync = BoolProperty(o, "sync", true);
  opts.copy_mtime = BoolProperty(o, "copyMtime", false);
  uint64_t buf = U64Property(o, "bufferSize", 1u << 20);
  if (buf < 4096 || buf > (64u << 20) || buf % 4096 != 0)
    throw Napi::RangeError::New(env, "Expected a multiple of 4096 up to 64 MiB for bufferSize");
  opts.buffer_size = static_cast<uint32_t>(buf);
  auto* worker = new CopyWorker(env, src, dst, opts);
  return worker->Start(info[3], o.Get("cancel"), StringProperty(o, "srcPath"),
                       StringProperty(o, "dstPath"));
}

}  // namespace

void InitCopy(Napi::Env env, Napi::Object exports) {
  exports.Set("copyFile", Napi::Function::New(env, CopyFile, "copyFile"));
}

}  // namespace qvol
