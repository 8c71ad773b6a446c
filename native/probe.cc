// capabilitiesSync(): facts about this process's kernel and CPU that the TypeScript side
// reports and that tests gate on. Per-filesystem abilities are found by trying (copy.cc).
#include <napi.h>
#include <sys/utsname.h>

#include "common.h"
#include "sys/aead.h"
#include "sys/copy_job.h"
#include "sys/fd_stream.h"
#include "sys/zero.h"

namespace qvol {

namespace {
Napi::Value CapabilitiesSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct utsname u {};
  uname(&u);
  Napi::Object o = Napi::Object::New(env);
  o.Set("kernel", u.release);
  o.Set("avx2", sys::cpu_has_avx2());
  o.Set("zeroScan", sys::zero_scan_name());
  o.Set("aead", sys::aead_name(sys::aead_impl(0)));
  Napi::Object bits = Napi::Object::New(env);
  bits.Set("clone", static_cast<uint32_t>(sys::kCapClone));
  bits.Set("copyFileRange", static_cast<uint32_t>(sys::kCapCopyRange));
  bits.Set("seekHole", static_cast<uint32_t>(sys::kCapSeekHole));
  bits.Set("punch", static_cast<uint32_t>(sys::kCapPunch));
  bits.Set("zeroout", static_cast<uint32_t>(sys::kCapZeroout));
  bits.Set("zeroRange", static_cast<uint32_t>(sys::kCapZeroRange));
  bits.Set("earlyWriteback", static_cast<uint32_t>(sys::kCapEarlyWriteback));
  bits.Set("sameFsCheck", static_cast<uint32_t>(sys::kCapSameFsCheck));
  bits.Set("discard", static_cast<uint32_t>(sys::kCapDiscard));
  bits.Set("splice", static_cast<uint32_t>(sys::kCapSplice));
  bits.Set("vmsplice", static_cast<uint32_t>(sys::kCapVmsplice));
  bits.Set("sendfile", static_cast<uint32_t>(sys::kCapSendfile));
  bits.Set("pipeResize", static_cast<uint32_t>(sys::kCapPipeResize));
  bits.Set("opensslAead", static_cast<uint32_t>(sys::kCapOpensslAead));
  o.Set("disableBits", bits);
  return o;
}
}  // namespace

void InitProbe(Napi::Env env, Napi::Object exports) {
  exports.Set("capabilitiesSync", Napi::Function::New(env, CapabilitiesSync, "capabilitiesSync"));
}

}  // namespace qvol
