// Space on files and block devices: fallocate(PUNCH_HOLE | ZERO_RANGE | 0), BLKDISCARD,
// BLKZEROOUT, each as its own call, and zeroOut(), the ladder that makes a range read back
// as zeros by the cheapest means the target has.
#include "sys/alloc.h"

#include <napi.h>

#include <cstring>
#include <memory>

#include "common.h"
#include "sys/copy_job.h"
#include "worker.h"

namespace qvol {

namespace {

using RangeFn = int (*)(int, uint64_t, uint64_t);

class RangeWorker : public IoWorker {
 public:
  RangeWorker(Napi::Env env, RangeFn fn, const char* syscall, int fd, uint64_t off, uint64_t len)
      : IoWorker(env, "qvol.range"), fn_(fn), syscall_(syscall), fd_(fd), off_(off), len_(len) {}

 protected:
  void Run() override {
    int r = fn_(fd_, off_, len_);
    if (r < 0) Fail(r, syscall_);
  }

 private:
  RangeFn fn_;
  const char* syscall_;
  int fd_;
  uint64_t off_, len_;
};

class ZeroOutWorker : public IoWorker {
 public:
  ZeroOutWorker(Napi::Env env, int fd, uint64_t off, uint64_t len, bool is_block, bool unmap,
                uint32_t disabled)
      : IoWorker(env, "qvol.zeroOut"),
        fd_(fd),
        off_(off),
        len_(len),
        is_block_(is_block),
        unmap_(unmap),
        disabled_(disabled) {}

 protected:
  void Run() override {
    constexpr uint64_t kZeros = 1u << 20;
    std::unique_ptr<uint8_t[]> zeros(new uint8_t[kZeros]);
    memset(zeros.get(), 0, kZeros);
    int r =
        sys::zero_out(fd_, off_, len_, is_block_, unmap_, &disabled_, &used_, zeros.get(), kZeros);
    if (r < 0) Fail(r, used_ == sys::kRungWrite ? "write" : "fallocate");
  }

  Napi::Value Result(Napi::Env env) override {
    const char* name = used_ == sys::kRungPunch       ? "punch"
                       : used_ == sys::kRungZeroout   ? "zeroout"
                       : used_ == sys::kRungZeroRange ? "zero_range"
                                                      : "write";
    return Napi::String::New(env, name);
  }

 private:
  int fd_;
  uint64_t off_, len_;
  bool is_block_, unmap_;
  uint32_t disabled_, used_ = 0;
};

template <RangeFn Fn>
Napi::Value Range(const Napi::CallbackInfo& info, const char* syscall) {
  int fd = RequireFd(info, 0, "fd");
  uint64_t off = RequireU64(info, 1, "offset");
  uint64_t len = RequireU64(info, 2, "length");
  return (new RangeWorker(info.Env(), Fn, syscall, fd, off, len))->Start();
}

Napi::Value ZeroOut(const Napi::CallbackInfo& info) {
  int fd = RequireFd(info, 0, "fd");
  uint64_t off = RequireU64(info, 1, "offset");
  uint64_t len = RequireU64(info, 2, "length");
  Napi::Object o = info[3].IsObject() ? info[3].As<Napi::Object>() : Napi::Object::New(info.Env());
  bool is_block = BoolProperty(o, "isBlockDevice", false);
  bool unmap = BoolProperty(o, "unmap", true);
  // The same CapBit mask as copyFile's `disable`; the zero rungs sit at kZeroRungShift.
  auto disabled = static_cast<uint32_t>(U64Property(o, "disable", 0)) >> sys::kZeroRungShift;
  return (new ZeroOutWorker(info.Env(), fd, off, len, is_block, unmap, disabled))->Start();
}

}  // namespace

void InitAlloc(Napi::Env env, Napi::Object exports) {
  exports.Set("punchHole", Napi::Function::New(
                               env,
                               [](const Napi::CallbackInfo& i) {
                                 return Range<sys::punch_hole>(i, "fallocate(PUNCH_HOLE)");
                               },
                               "punchHole"));
  exports.Set("zeroRange", Napi::Function::New(
                               env,
                               [](const Napi::CallbackInfo& i) {
                                 return Range<sys::zero_range>(i, "fallocate(ZERO_RANGE)");
                               },
                               "zeroRange"));
  exports.Set(
      "allocate",
      Napi::Function::New(
          env, [](const Napi::CallbackInfo& i) { return Range<sys::allocate>(i, "fallocate"); },
          "allocate"));
  exports.Set("blkDiscard", Napi::Function::New(
                                env,
                                [](const Napi::CallbackInfo& i) {
                                  return Range<sys::blk_discard>(i, "ioctl(BLKDISCARD)");
                                },
                                "blkDiscard"));
  exports.Set("blkZeroout", Napi::Function::New(
                                env,
                                [](const Napi::CallbackInfo& i) {
                                  return Range<sys::blk_zeroout>(i, "ioctl(BLKZEROOUT)");
                                },
                                "blkZeroout"));
  exports.Set("zeroOut", Napi::Function::New(env, ZeroOut, "zeroOut"));
}

}  // namespace qvol
