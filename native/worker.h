// IoWorker: an AsyncWorker that settles a Promise. Execute() runs on the libuv pool and must
// not touch N-API: it calls Run(), which records a failure with Fail() and returns.
#pragma once
#include <napi.h>

#include <string>

#include "common.h"

namespace qvol {

class IoWorker : public Napi::AsyncWorker {
 public:
  explicit IoWorker(Napi::Env env, const char* name)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Start() {
    Queue();
    return deferred_.Promise();
  }

 protected:
  virtual void Run() = 0;
  virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }

  // Records a failure (neg_errno < 0) to be turned into a SystemError on the JS thread.
  void Fail(int neg_errno, const char* syscall, std::string path = "", std::string dest = "") {
    err_ = neg_errno;
    syscall_ = syscall;
    path_ = std::move(path);
    dest_ = std::move(dest);
    SetError(syscall);
  }

 private:
  void Execute() override { Run(); }
  void OnOK() override { deferred_.Resolve(Result(Env())); }
  void OnError(const Napi::Error&) override {
    Napi::HandleScope scope(Env());
    deferred_.Reject(MakeSystemError(Env(), err_, syscall_, path_, dest_).Value());
  }

  Napi::Promise::Deferred deferred_;
  int err_ = 0;
  std::string syscall_, path_, dest_;
};

}  // namespace qvol
