#include "common.h"

#include <uv.h>

#include <cerrno>
#include <cmath>

namespace qvol {

namespace {
struct AddonData {
  Napi::FunctionReference error_class;
};

// Offsets cross as plain numbers; anything above 2^53 could not be exact.
constexpr double kMaxSafe = 9007199254740991.0;

uint64_t ToU64(Napi::Env env, Napi::Value v, const char* name) {
  if (v.IsBigInt()) {
    bool lossless = false;
    uint64_t out = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throw Napi::RangeError::New(env, std::string("Expected a u64 for ") + name);
    return out;
  }
  if (!v.IsNumber()) throw Napi::TypeError::New(env, std::string("Expected a number for ") + name);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > kMaxSafe || std::floor(d) != d)
    throw Napi::RangeError::New(env,
                                std::string("Expected a non-negative safe integer for ") + name);
  return static_cast<uint64_t>(d);
}
}  // namespace

void SetErrorClass(Napi::Env env, Napi::Function ctor) {
  auto* data = env.GetInstanceData<AddonData>();
  if (data == nullptr) {
    data = new AddonData();
    env.SetInstanceData(data);
  }
  data->error_class = Napi::Persistent(ctor);
}

Napi::Error MakeSystemError(Napi::Env env, int neg_errno, const std::string& syscall,
                            const std::string& path, const std::string& dest) {
  std::string code = uv_err_name(neg_errno);
  std::string description = uv_strerror(neg_errno);
  if (neg_errno == -EOPNOTSUPP) {
    // libuv knows this errno only as ENOTSUP "on socket"; for files the kernel means
    // EOPNOTSUPP, "operation not supported", and that is what a user should read.
    code = "EOPNOTSUPP";
    description = "operation not supported";
  }
  std::string message = code + ": " + description + ", " + syscall;
  if (!path.empty()) message += " '" + path + "'";
  if (!dest.empty()) message += " -> '" + dest + "'";
  Napi::Object props = Napi::Object::New(env);
  props.Set("code", code);
  props.Set("errno", neg_errno);
  props.Set("syscall", syscall);
  if (!path.empty()) props.Set("path", path);
  if (!dest.empty()) props.Set("dest", dest);
  auto* data = env.GetInstanceData<AddonData>();
  if (data != nullptr && !data->error_class.IsEmpty()) {
    Napi::Object err = data->error_class.New({Napi::String::New(env, message), props});
    return Napi::Error(env, err);
  }
  Napi::Error err = Napi::Error::New(env, message);
  for (const char* key : {"code", "errno", "syscall", "path", "dest"})
    if (props.Has(key)) err.Set(key, props.Get(key));
  return err;
}

int RequireFd(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = info[i];
  if (!v.IsNumber())
    throw Napi::TypeError::New(info.Env(), std::string("Expected a file descriptor for ") + name);
  int fd = v.As<Napi::Number>().Int32Value();
  if (fd < 0)
    throw Napi::RangeError::New(info.Env(), std::string("Expected a file descriptor for ") + name);
  return fd;
}

uint64_t RequireU64(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return ToU64(info.Env(), info[i], name);
}

uint64_t U64Property(Napi::Object obj, const char* name, uint64_t fallback) {
  Napi::Value v = obj.Get(name);
  return v.IsUndefined() ? fallback : ToU64(obj.Env(), v, name);
}

std::string StringProperty(Napi::Object obj, const char* name) {
  Napi::Value v = obj.Get(name);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
}

bool BoolProperty(Napi::Object obj, const char* name, bool fallback) {
  Napi::Value v = obj.Get(name);
  return v.IsUndefined() ? fallback : v.ToBoolean().Value();
}

}  // namespace qvol
