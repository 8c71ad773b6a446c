// JobWorker: one long data job (copy, export, import) on the libuv pool that settles a
// Promise, reports throttled progress to an optional JS callback (phase, done, total), and
// is cancelled through a shared Int32Array that JavaScript sets with Atomics.store.
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>

#include "common.h"
#include "sys/job_control.h"
#include "sys/stream_export.h"

namespace qvol {

struct PhaseEvent {
  int phase;
  uint64_t done, total;
};

class JobWorker : public Napi::AsyncProgressWorker<PhaseEvent> {
 public:
  JobWorker(Napi::Env env, const char* name)
      : Napi::AsyncProgressWorker<PhaseEvent>(env, name),
        deferred_(Napi::Promise::Deferred::New(env)) {}

  // Queues the job; `cancel` (an Int32Array, or undefined) is pinned until it settles.
  Napi::Promise Start(Napi::Value on_progress, Napi::Value cancel) {
    if (on_progress.IsFunction()) on_progress_ = Napi::Persistent(on_progress.As<Napi::Function>());
    if (cancel.IsTypedArray()) {
      auto arr = cancel.As<Napi::Int32Array>();
      cancel_ref_ = Napi::Persistent(arr.As<Napi::Object>());
      cancel_ = arr.Data();
    }
    Queue();
    return deferred_.Promise();
  }

 protected:
  // Runs on the pool: 0, or -errno after recording what the failure needs.
  virtual int Work(sys::PhaseProgress* progress) = 0;
  virtual Napi::Value Result(Napi::Env env) = 0;
  virtual Napi::Value Failure(Napi::Env env) = 0;
  const int32_t* cancel() const { return cancel_; }

 private:
  class Sink : public sys::PhaseProgress {
   public:
    explicit Sink(const ExecutionProgress& p) : p_(p) {}
    void report(int phase, uint64_t done, uint64_t total) override {
      PhaseEvent ev{phase, done, total};
      p_.Send(&ev, 1);
    }

   private:
    const ExecutionProgress& p_;
  };

  void Execute(const ExecutionProgress& progress) override {
    sys::CancelScope cancel_scope(cancel_);  // the stream helpers' waits look at it
    Sink sink(progress);
    if (Work(on_progress_.IsEmpty() ? nullptr : &sink) < 0) SetError("job failed");
  }

  void OnProgress(const PhaseEvent* ev, size_t count) override {
    if (count == 0 || on_progress_.IsEmpty()) return;
    Napi::HandleScope scope(Env());
    on_progress_.Call({Napi::Number::New(Env(), static_cast<double>(ev->done)),
                       Napi::Number::New(Env(), static_cast<double>(ev->total)),
                       Napi::Number::New(Env(), ev->phase)});
  }

  void OnOK() override {
    Napi::HandleScope scope(Env());
    deferred_.Resolve(Result(Env()));
  }

  void OnError(const Napi::Error&) override {
    Napi::HandleScope scope(Env());
    deferred_.Reject(Failure(Env()));
  }

  Napi::Promise::Deferred deferred_;
  Napi::FunctionReference on_progress_;
  Napi::ObjectReference cancel_ref_;
  const int32_t* cancel_ = nullptr;
};

}  // namespace qvol
