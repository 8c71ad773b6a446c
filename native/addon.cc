// Registration only: each syscall family adds its functions in its own file.
#include <napi.h>

#include "common.h"

namespace qvol {
void InitAlloc(Napi::Env env, Napi::Object exports);
void InitBlkdev(Napi::Env env, Napi::Object exports);
void InitBlob(Napi::Env env, Napi::Object exports);
void InitCopy(Napi::Env env, Napi::Object exports);
void InitCrypto(Napi::Env env, Napi::Object exports);
void InitDevmapper(Napi::Env env, Napi::Object exports);
void InitDurable(Napi::Env env, Napi::Object exports);
void InitExtents(Napi::Env env, Napi::Object exports);
void InitLock(Napi::Env env, Napi::Object exports);
void InitOpen(Napi::Env env, Napi::Object exports);
void InitProbe(Napi::Env env, Napi::Object exports);
void InitSocket(Napi::Env env, Napi::Object exports);
void InitStream(Napi::Env env, Napi::Object exports);
void InitZero(Napi::Env env, Napi::Object exports);

namespace {
Napi::Value SetErrorClassSync(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction())
    throw Napi::TypeError::New(info.Env(), "Expected a class for SystemError");
  SetErrorClass(info.Env(), info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClassSync, "setErrorClass"));
  InitAlloc(env, exports);
  InitBlkdev(env, exports);
  InitBlob(env, exports);
  InitCopy(env, exports);
  InitCrypto(env, exports);
  InitDevmapper(env, exports);
  InitDurable(env, exports);
  InitExtents(env, exports);
  InitLock(env, exports);
  InitOpen(env, exports);
  InitProbe(env, exports);
  InitSocket(env, exports);
  InitStream(env, exports);
  InitZero(env, exports);
  return exports;
}
}  // namespace qvol

static Napi::Object InitQvol(Napi::Env env, Napi::Object exports) {
  return qvol::Init(env, exports);
}

NODE_API_MODULE(qvol, InitQvol)
