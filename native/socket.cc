// Unix sockets: the peer's credentials, for the daemon's admission check.
#include <napi.h>

#include "common.h"
#include "sys/peer_cred.h"

namespace qvol {
namespace {

// peerCredSync(fd) -> { pid, uid, gid }
Napi::Value PeerCredSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = RequireFd(info, 0, "fd");
  sys::PeerCred cred{};
  int r = sys::peer_cred(fd, &cred);
  if (r < 0) throw MakeSystemError(env, r, "getsockopt(SO_PEERCRED)");
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", static_cast<double>(cred.pid));
  o.Set("uid", static_cast<double>(cred.uid));
  o.Set("gid", static_cast<double>(cred.gid));
  return o;
}

}  // namespace

void InitSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("peerCredSync", Napi::Function::New(env, PeerCredSync, "peerCredSync"));
}

}  // namespace qvol
