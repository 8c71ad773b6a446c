// durable(op, path, dest?, mode?): rename, unlink, link, mkdir or rmdir, then an fsync of
// each directory it changed, on one libuv thread (sys/durable.h says why one thread).
#include "sys/durable.h"

#include <napi.h>

#include <string>

#include "common.h"
#include "worker.h"

namespace qvol {

namespace {

enum class Op { kRename, kUnlink, kLink, kMkdir, kRmdir };

class DurableWorker : public IoWorker {
 public:
  DurableWorker(Napi::Env env, Op op, std::string path, std::string dest, mode_t mode)
      : IoWorker(env, "qvol.durable"),
        op_(op),
        path_(std::move(path)),
        dest_(std::move(dest)),
        mode_(mode) {}

 protected:
  void Run() override {
    const char* call = "";
    int r = 0;
    switch (op_) {
      case Op::kRename:
        r = sys::durable_rename(path_.c_str(), dest_.c_str(), &call);
        break;
      case Op::kUnlink:
        r = sys::durable_unlink(path_.c_str(), &call);
        break;
      case Op::kLink:
        r = sys::durable_link(path_.c_str(), dest_.c_str(), &call);
        break;
      case Op::kMkdir:
        r = sys::durable_mkdir(path_.c_str(), mode_, &call);
        break;
      case Op::kRmdir:
        r = sys::durable_rmdir(path_.c_str(), &call);
        break;
    }
    if (r < 0) Fail(r, call, path_, dest_);
  }

 private:
  Op op_;
  std::string path_, dest_;
  mode_t mode_;
};

Napi::Value Durable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsString())
    throw Napi::TypeError::New(env, "Expected strings for op and path");
  std::string op = info[0].As<Napi::String>().Utf8Value();
  Op which = op == "rename"   ? Op::kRename
             : op == "unlink" ? Op::kUnlink
             : op == "link"   ? Op::kLink
             : op == "mkdir"  ? Op::kMkdir
             : op == "rmdir"  ? Op::kRmdir
                              : throw Napi::TypeError::New(env, "Unknown durable op '" + op + "'");
  bool two = which == Op::kRename || which == Op::kLink;
  if (two && !info[2].IsString()) throw Napi::TypeError::New(env, "Expected a string for dest");
  std::string dest = two ? info[2].As<Napi::String>().Utf8Value() : "";
  mode_t mode = which == Op::kMkdir ? static_cast<mode_t>(RequireU64(info, 3, "mode") & 07777) : 0;
  auto* worker = new DurableWorker(env, which, info[1].As<Napi::String>().Utf8Value(), dest, mode);
  return worker->Start();
}

}  // namespace

void InitDurable(Napi::Env env, Napi::Object exports) {
  exports.Set("durable", Napi::Function::New(env, Durable, "durable"));
}

}  // namespace qvol
