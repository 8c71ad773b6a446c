// isZeroSync(buffer, impl?) and zeroScanRateSync(bytes, rounds, impl): the zero check the
// copy engine uses, exposed for tests and for the benchmark that compares implementations.
#include "sys/zero.h"

#include <napi.h>
#include <time.h>

#include <cstring>
#include <memory>
#include <string>

#include "common.h"

namespace qvol {

namespace {

sys::ZeroScan ImplArg(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsString()) return sys::ZeroScan::kAuto;
  std::string v = info[i].As<Napi::String>().Utf8Value();
  if (v == "avx2") return sys::ZeroScan::kAvx2;
  if (v == "memeqzero") return sys::ZeroScan::kMemeqzero;
  if (v == "auto") return sys::ZeroScan::kAuto;
  throw Napi::TypeError::New(
      info.Env(), "Expected 'auto', 'avx2' or 'memeqzero' for impl but received '" + v + "'");
}

Napi::Value IsZeroSync(const Napi::CallbackInfo& info) {
  if (!info[0].IsBuffer()) throw Napi::TypeError::New(info.Env(), "Expected a Buffer for buffer");
  auto buf = info[0].As<Napi::Buffer<uint8_t>>();
  return Napi::Boolean::New(info.Env(),
                            sys::is_zero_with(ImplArg(info, 1), buf.Data(), buf.Length()));
}

// Scans a zeroed buffer of `bytes` (all of it, as zero blocks are the worst case) `rounds`
// times in 4 KiB blocks, as the copy engine does, and returns bytes per second.
Napi::Value ZeroScanRateSync(const Napi::CallbackInfo& info) {
  uint64_t bytes = RequireU64(info, 0, "bytes");
  uint64_t rounds = RequireU64(info, 1, "rounds");
  sys::ZeroScan impl = ImplArg(info, 2);
  if (bytes < 4096 || bytes % 4096 != 0 || bytes > (1ull << 32))
    throw Napi::RangeError::New(info.Env(), "Expected a multiple of 4096 up to 4 GiB for bytes");
  std::unique_ptr<uint8_t[]> buf(new uint8_t[bytes]);
  memset(buf.get(), 0, bytes);
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  uint64_t zero_blocks = 0;
  for (uint64_t r = 0; r < rounds; r++)
    for (uint64_t off = 0; off < bytes; off += 4096)
      zero_blocks += sys::is_zero_with(impl, buf.get() + off, 4096);
  clock_gettime(CLOCK_MONOTONIC, &b);
  double secs = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
  if (zero_blocks != rounds * (bytes / 4096))
    throw Napi::Error::New(info.Env(), "zero scan is wrong");
  return Napi::Number::New(info.Env(), static_cast<double>(bytes * rounds) / secs);
}

}  // namespace

void InitZero(Napi::Env env, Napi::Object exports) {
  exports.Set("isZeroSync", Napi::Function::New(env, IsZeroSync, "isZeroSync"));
  exports.Set("zeroScanRateSync", Napi::Function::New(env, ZeroScanRateSync, "zeroScanRateSync"));
}

}  // namespace qvol
