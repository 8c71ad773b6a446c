// Device-mapper and loop calls for ephemeral volumes (src/io/dm-crypt.ts orders them), each
// its own call so that a crash between two leaves a state the next start or `recover` can
// see and undo. Creating, loading, resuming and removing a mapping cost the kernel tens of
// milliseconds (crypto transforms, workqueues, an RCU grace period), so they run on the
// libuv pool and a VM's other volumes start and stop meanwhile; the lookups are sync. The
// key is made and wiped inside dmLoadCrypt: nothing of it crosses into JavaScript.
#include <napi.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <string>

#include "common.h"
#include "sys/dm_ioctl.h"
#include "sys/dm_node.h"
#include "sys/loop_attach.h"
#include "worker.h"

namespace qvol {

namespace {

std::string RequireName(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (!info[i].IsString())
    throw Napi::TypeError::New(info.Env(), std::string("Expected a string for ") + what);
  return info[i].As<Napi::String>().Utf8Value();
}

Napi::Object DevObject(Napi::Env env, uint64_t dev) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("major", major(dev));
  o.Set("minor", minor(dev));
  return o;
}

uint64_t RequireDev(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsObject())
    throw Napi::TypeError::New(info.Env(), "Expected {major, minor} for dev");
  Napi::Object o = info[i].As<Napi::Object>();
  return makedev(static_cast<unsigned>(U64Property(o, "major", 0)),
                 static_cast<unsigned>(U64Property(o, "minor", 0)));
}

Napi::Value DmVersionSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t v[3] = {};
  int r = sys::dm_version(v);
  if (r < 0) throw MakeSystemError(env, r, "ioctl(DM_VERSION)", "/dev/mapper/control");
  Napi::Array a = Napi::Array::New(env, 3);
  for (uint32_t i = 0; i < 3; i++) a.Set(i, v[i]);
  return a;
}

// One device-mapper call on the pool: `call` returns 0 or -errno (-ENXIO, no such device, is
// an outcome rather than a failure where `absent_ok`); `result` makes the Promise's value.
class DmWorker : public IoWorker {
 public:
  DmWorker(Napi::Env env, std::string name, const char* syscall, std::function<int()> call,
           std::function<Napi::Value(Napi::Env, int)> result, bool absent_ok = false)
      : IoWorker(env, "qvol.dm"),
        name_(std::move(name)),
        syscall_(syscall),
        call_(std::move(call)),
        result_(std::move(result)),
        absent_ok_(absent_ok) {}

 protected:
  void Run() override {
    r_ = call_();
    if (r_ < 0 && !(r_ == -ENXIO && absent_ok_)) Fail(r_, syscall_, name_);
  }
  Napi::Value Result(Napi::Env env) override { return result_(env, r_); }

 private:
  std::string name_;
  const char* syscall_;
  std::function<int()> call_;
  std::function<Napi::Value(Napi::Env, int)> result_;
  bool absent_ok_;
  int r_ = 0;
};

Napi::Value Undefined(Napi::Env env, int) { return env.Undefined(); }

Napi::Value DmCreate(const Napi::CallbackInfo& info) {
  std::string name = RequireName(info, 0, "name"), uuid = RequireName(info, 1, "uuid");
  auto dev = std::make_shared<uint64_t>(0);
  auto* w = new DmWorker(
      info.Env(), name, "ioctl(DM_DEV_CREATE)",
      [name, uuid, dev] { return sys::dm_create(name.c_str(), uuid.c_str(), dev.get()); },
      [dev](Napi::Env env, int) -> Napi::Value { return DevObject(env, *dev); });
  return w->Start();
}

Napi::Value DmInfoSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = RequireName(info, 0, "name");
  sys::DmInfo d{};
  int r = sys::dm_info(name.c_str(), &d);
  if (r == -ENXIO) return env.Undefined();
  if (r < 0) throw MakeSystemError(env, r, "ioctl(DM_DEV_STATUS)", name);
  Napi::Object o = DevObject(env, d.dev);
  o.Set("openCount", d.open_count);
  o.Set("targetCount", d.target_count);
  o.Set("suspended", d.suspended);
  o.Set("liveTable", d.live_table);
  o.Set("inactiveTable", d.inactive_table);
  return o;
}

Napi::Value DmLoadCrypt(const Napi::CallbackInfo& info) {
  std::string name = RequireName(info, 0, "name");
  uint64_t sectors = RequireU64(info, 1, "sectors");
  uint64_t backing = RequireDev(info, 2);
  bool discards = info[3].IsBoolean() && info[3].As<Napi::Boolean>().Value();
  auto* w = new DmWorker(
      info.Env(), name, "ioctl(DM_TABLE_LOAD)",
      [name, sectors, backing, discards] {
        return sys::dm_load_crypt(name.c_str(), sectors, backing, discards);
      },
      Undefined);
  return w->Start();
}

Napi::Value DmResume(const Napi::CallbackInfo& info) {
  std::string name = RequireName(info, 0, "name");
  auto* w = new DmWorker(
      info.Env(), name, "ioctl(DM_DEV_SUSPEND)",
      [name] { return sys::dm_resume(name.c_str(), sys::kDmUdevQuiet); }, Undefined);
  return w->Start();
}

// Resolves false when there was no such device.
Napi::Value DmRemove(const Napi::CallbackInfo& info) {
  std::string name = RequireName(info, 0, "name");
  auto* w = new DmWorker(
      info.Env(), name, "ioctl(DM_DEV_REMOVE)",
      [name] { return sys::dm_remove(name.c_str(), sys::kDmUdevQuiet); },
      [](Napi::Env env, int r) -> Napi::Value { return Napi::Boolean::New(env, r == 0); }, true);
  return w->Start();
}

Napi::Value DmNodeMakeSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = RequireName(info, 0, "name");
  int r = sys::dm_node_make(name.c_str(), RequireDev(info, 1));
  if (r < 0) throw MakeSystemError(env, r, "mknodat", "/dev/mapper/" + name);
  return env.Undefined();
}

Napi::Value DmNodeRemoveSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = RequireName(info, 0, "name");
  int r = sys::dm_node_remove(name.c_str());
  if (r < 0) throw MakeSystemError(env, r, "unlinkat", "/dev/mapper/" + name);
  return Napi::Boolean::New(env, r > 0);
}

// dmIsPlainThinSync(major, minor) -> boolean; false for a device that is not device-mapper's
Napi::Value DmIsPlainThinSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t major = RequireU64(info, 0, "major"), minor = RequireU64(info, 1, "minor");
  bool yes = false;
  int r = sys::dm_is_plain_thin(makedev(major, minor), &yes);
  if (r == -ENXIO) return Napi::Boolean::New(env, false);
  if (r < 0) throw MakeSystemError(env, r, "ioctl(DM_TABLE_STATUS)", "/dev/mapper/control");
  return Napi::Boolean::New(env, yes);
}

Napi::Value LoopAttachSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireFd(info, 0, "fd");
  bool legacy = info[1].IsObject() && BoolProperty(info[1].As<Napi::Object>(), "legacy", false);
  sys::LoopDevice loop{};
  int r = sys::loop_attach(fd, legacy, &loop);
  if (r < 0)
    throw MakeSystemError(env, r, legacy ? "ioctl(LOOP_SET_FD)" : "ioctl(LOOP_CONFIGURE)",
                          "/dev/loop-control");
  Napi::Object o = DevObject(env, loop.dev);
  o.Set("fd", loop.fd);
  o.Set("path", "/dev/loop" + std::to_string(loop.number));
  o.Set("configured", loop.configured);
  return o;
}

}  // namespace

void InitDevmapper(Napi::Env env, Napi::Object exports) {
  exports.Set("dmVersionSync", Napi::Function::New(env, DmVersionSync, "dmVersionSync"));
  exports.Set("dmCreate", Napi::Function::New(env, DmCreate, "dmCreate"));
  exports.Set("dmInfoSync", Napi::Function::New(env, DmInfoSync, "dmInfoSync"));
  exports.Set("dmLoadCrypt", Napi::Function::New(env, DmLoadCrypt, "dmLoadCrypt"));
  exports.Set("dmResume", Napi::Function::New(env, DmResume, "dmResume"));
  exports.Set("dmRemove", Napi::Function::New(env, DmRemove, "dmRemove"));
  exports.Set("dmNodeMakeSync", Napi::Function::New(env, DmNodeMakeSync, "dmNodeMakeSync"));
  exports.Set("dmNodeRemoveSync", Napi::Function::New(env, DmNodeRemoveSync, "dmNodeRemoveSync"));
  exports.Set("dmIsPlainThinSync",
              Napi::Function::New(env, DmIsPlainThinSync, "dmIsPlainThinSync"));
  exports.Set("loopAttachSync", Napi::Function::New(env, LoopAttachSync, "loopAttachSync"));
}

}  // namespace qvol
