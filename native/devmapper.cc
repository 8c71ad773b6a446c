// Device-mapper and loop calls for ephemeral volumes (src/io/dm-crypt.ts orders them). Each
// is one or two ioctls, so sync, and each is its own call so that a crash between two
// leaves a state the next start or `recover` can see and undo. The key is made and wiped
// inside dmLoadCryptSync: nothing of it crosses into JavaScript.
#include <napi.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <string>

#include "common.h"
#include "sys/dm_ioctl.h"
#include "sys/dm_node.h"
#include "sys/loop_attach.h"

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

Napi::Value DmCreateSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = RequireName(info, 0, "name"), uuid = RequireName(info, 1, "uuid");
  uint64_t dev = 0;
  int r = sys::dm_create(name.c_str(), uuid.c_str(), &dev);
  if (r < 0) throw MakeSystemError(env, r, "ioctl(DM_DEV_CREATE)", name);
  return DevObject(env, dev);
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

Napi::Value DmLoadCryptSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = RequireName(info, 0, "name");
  uint64_t sectors = RequireU64(info, 1, "sectors");
  uint64_t backing = RequireDev(info, 2);
  bool discards = info[3].IsBoolean() && info[3].As<Napi::Boolean>().Value();
  int r = sys::dm_load_crypt(name.c_str(), sectors, backing, discards);
  if (r < 0) throw MakeSystemError(env, r, "ioctl(DM_TABLE_LOAD)", name);
  return env.Undefined();
}

Napi::Value DmResumeSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = RequireName(info, 0, "name");
  int r = sys::dm_resume(name.c_str(), sys::kDmUdevQuiet);
  if (r < 0) throw MakeSystemError(env, r, "ioctl(DM_DEV_SUSPEND)", name);
  return env.Undefined();
}

// false when there was no such device.
Napi::Value DmRemoveSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = RequireName(info, 0, "name");
  int r = sys::dm_remove(name.c_str(), sys::kDmUdevQuiet);
  if (r == -ENXIO) return Napi::Boolean::New(env, false);
  if (r < 0) throw MakeSystemError(env, r, "ioctl(DM_DEV_REMOVE)", name);
  return Napi::Boolean::New(env, true);
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
  exports.Set("dmCreateSync", Napi::Function::New(env, DmCreateSync, "dmCreateSync"));
  exports.Set("dmInfoSync", Napi::Function::New(env, DmInfoSync, "dmInfoSync"));
  exports.Set("dmLoadCryptSync", Napi::Function::New(env, DmLoadCryptSync, "dmLoadCryptSync"));
  exports.Set("dmResumeSync", Napi::Function::New(env, DmResumeSync, "dmResumeSync"));
  exports.Set("dmRemoveSync", Napi::Function::New(env, DmRemoveSync, "dmRemoveSync"));
  exports.Set("dmNodeMakeSync", Napi::Function::New(env, DmNodeMakeSync, "dmNodeMakeSync"));
  exports.Set("dmNodeRemoveSync", Napi::Function::New(env, DmNodeRemoveSync, "dmNodeRemoveSync"));
  exports.Set("loopAttachSync", Napi::Function::New(env, LoopAttachSync, "loopAttachSync"));
}

}  // namespace qvol
