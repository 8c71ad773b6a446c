// flockSync(fd, 'exclusive' | 'shared' | 'unlock'): a non-blocking flock(2). A blocking
// wait would hold a libuv pool thread for as long as another process keeps the lock, so
// the caller polls instead. The lock dies with the process, so a crash never leaves it held.
#include <napi.h>
#include <sys/file.h>

#include <cerrno>
#include <string>

#include "common.h"
#include "sys/errors.h"

namespace qvol {

namespace {
Napi::Value FlockSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireFd(info, 0, "fd");
  std::string mode = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  int op = mode == "exclusive" ? LOCK_EX
           : mode == "shared"  ? LOCK_SH
           : mode == "unlock"  ? LOCK_UN
                               : -1;
  if (op < 0)
    throw Napi::TypeError::New(env, "Expected 'exclusive', 'shared' or 'unlock' for mode");
  int r = sys::retry_eintr([&] { return flock(fd, op | LOCK_NB); });
  if (r == -EWOULDBLOCK) return Napi::Boolean::New(env, false);
  if (r < 0) throw MakeSystemError(env, r, "flock");
  return Napi::Boolean::New(env, true);
}
}  // namespace

void InitLock(Napi::Env env, Napi::Object exports) {
  exports.Set("flockSync", Napi::Function::New(env, FlockSync, "flockSync"));
}

}  // namespace qvol
