// openBeneath(root, rel, flags, mode, options): a name below a pool directory opened with
// no symbolic link followed on the way (sys/open_beneath.h). Resolves to the fd, what the
// name is, and which rung opened it; the caller owns the fd.
#include <fcntl.h>
#include <napi.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "common.h"
#include "sys/errors.h"
#include "sys/open_beneath.h"
#include "worker.h"

namespace qvol {

namespace {

const char* TypeName(mode_t m) {
  if (S_ISREG(m)) return "file";
  if (S_ISDIR(m)) return "directory";
  if (S_ISBLK(m)) return "block";
  return "other";
}

class OpenBeneathWorker : public IoWorker {
 public:
  OpenBeneathWorker(Napi::Env env, std::string root, std::string rel, int flags, mode_t mode,
                    bool allow_openat2)
      : IoWorker(env, "qvol.openBeneath"),
        root_(std::move(root)),
        rel_(std::move(rel)),
        flags_(flags),
        mode_(mode),
        allow_openat2_(allow_openat2) {}

 protected:
  void Run() override {
    // The root itself is the administrator's configured path: following links in it is
    // what they asked for. Below it, nothing is followed.
    int root_fd =
        sys::retry_eintr([&] { return open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC); });
    if (root_fd < 0) return Fail(root_fd, "open", root_);
    int r = sys::open_beneath(root_fd, rel_.c_str(), flags_, mode_, allow_openat2_, &opened_);
    close(root_fd);
    if (r < 0)
      Fail(r, opened_.rung == sys::OpenRung::kOpenat2 ? "openat2" : "openat", root_ + "/" + rel_);
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("fd", opened_.fd);
    o.Set("type", TypeName(opened_.st_mode));
    o.Set("rung", opened_.rung == sys::OpenRung::kOpenat2 ? "openat2" : "walk");
    return o;
  }

 private:
  std::string root_, rel_;
  int flags_;
  mode_t mode_;
  bool allow_openat2_;
  sys::OpenedBeneath opened_;
};

Napi::Value OpenBeneath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsString())
    throw Napi::TypeError::New(env, "Expected strings for root and rel");
  int flags = static_cast<int>(RequireU64(info, 2, "flags"));
  mode_t mode = static_cast<mode_t>(RequireU64(info, 3, "mode") & 07777);
  bool allow_openat2 =
      info[4].IsObject() ? BoolProperty(info[4].As<Napi::Object>(), "openat2", true) : true;
  auto* worker =
      new OpenBeneathWorker(env, info[0].As<Napi::String>().Utf8Value(),
                            info[1].As<Napi::String>().Utf8Value(), flags, mode, allow_openat2);
  return worker->Start();
}

}  // namespace

void InitOpen(Napi::Env env, Napi::Object exports) {
  exports.Set("openBeneath", Napi::Function::New(env, OpenBeneath, "openBeneath"));
}

}  // namespace qvol
