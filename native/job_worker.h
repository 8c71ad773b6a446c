// JobWorker: one long data job (copy, export, import, a stream header read) on a thread of
// its own that settles a Promise, reports throttled progress to an optional JS callback
// (phase, done, total), and is cancelled through a shared Int32Array that JavaScript sets
// with Atomics.store. A thread of its own, not libuv's pool: a job may wait on a slow or
// stalled pipe, and four such jobs would otherwise hold every pool thread, and with them
// every fs call of the process.
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>
#include <thread>

#include "common.h"
#include "sys/job_control.h"
#include "sys/stream_export.h"

namespace qvol {

struct PhaseEvent {
  int phase;
  uint64_t done, total;
};

class JobWorker {
 public:
  JobWorker(Napi::Env env, const char* name)
      : env_(env), name_(name), deferred_(Napi::Promise::Deferred::New(env)) {}
  virtual ~JobWorker() = default;
  JobWorker(const JobWorker&) = delete;
  JobWorker& operator=(const JobWorker&) = delete;

  // Starts the job; `cancel` (an Int32Array, or undefined) is pinned until it settles. The
  // worker deletes itself once the Promise is settled.
  Napi::Promise Start(Napi::Value on_progress, Napi::Value cancel) {
    if (on_progress.IsFunction()) on_progress_ = Napi::Persistent(on_progress.As<Napi::Function>());
    if (cancel.IsTypedArray()) {
      auto arr = cancel.As<Napi::Int32Array>();
      cancel_ref_ = Napi::Persistent(arr.As<Napi::Object>());
      cancel_ = arr.Data();
    }
    reports_ = !on_progress_.IsEmpty();
    // The thread's one way back to JavaScript: progress events, then the end. It keeps the
    // event loop alive until the job is done, as queued pool work does.
    tsfn_ = Napi::ThreadSafeFunction::New(
        env_, Napi::Function::New(env_, [](const Napi::CallbackInfo&) {}), name_, 0, 1);
    Napi::Promise promise = deferred_.Promise();
    std::thread([this] { Run(); }).detach();
    return promise;
  }

 protected:
  // Runs on the job's thread: 0, or -errno after recording what the failure needs.
  virtual int Work(sys::PhaseProgress* progress) = 0;
  virtual Napi::Value Result(Napi::Env env) = 0;
  virtual Napi::Value Failure(Napi::Env env) = 0;
  const int32_t* cancel() const { return cancel_; }

 private:
  class Sink : public sys::PhaseProgress {
   public:
    explicit Sink(JobWorker* w) : w_(w) {}
    void report(int phase, uint64_t done, uint64_t total) override {
      w_->tsfn_.NonBlockingCall(new PhaseEvent{phase, done, total},
                                [w = w_](Napi::Env env, Napi::Function, PhaseEvent* ev) {
                                  w->OnProgress(env, *ev);
                                  delete ev;
                                });
    }

   private:
    JobWorker* w_;
  };

  // The job's thread: no N-API here but the thread-safe function's calls.
  void Run() {
    int r;
    {
      sys::CancelScope cancel_scope(cancel_);  // the stream helpers' waits look at it
      Sink sink(this);
      r = Work(reports_ ? &sink : nullptr);
    }
    failed_ = r < 0;
    // After this call `this` may be gone (Settle deletes it): only the local copy is used.
    Napi::ThreadSafeFunction tsfn = tsfn_;
    tsfn.BlockingCall(this,
                      [](Napi::Env env, Napi::Function, JobWorker* self) { self->Settle(env); });
    tsfn.Release();
  }

  void OnProgress(Napi::Env env, const PhaseEvent& ev) {
    if (static_cast<napi_env>(env) == nullptr) return;  // the environment is going away
    Napi::HandleScope scope(env);
    try {
      on_progress_.Call({Napi::Number::New(env, static_cast<double>(ev.done)),
                         Napi::Number::New(env, static_cast<double>(ev.total)),
                         Napi::Number::New(env, ev.phase)});
    } catch (const Napi::Error&) {
      // A progress callback that throws does not stop the job (nor crash the process).
    }
  }

  // The JavaScript thread: the job's events all came before this one.
  void Settle(Napi::Env env) {
    if (static_cast<napi_env>(env) != nullptr) {
      Napi::HandleScope scope(env);
      try {
        if (failed_)
          deferred_.Reject(Failure(env));
        else
          deferred_.Resolve(Result(env));
      } catch (const Napi::Error& e) {
        deferred_.Reject(e.Value());
      }
    }
    delete this;
  }

  Napi::Env env_;
  const char* name_;
  Napi::Promise::Deferred deferred_;
  Napi::FunctionReference on_progress_;
  Napi::ObjectReference cancel_ref_;
  Napi::ThreadSafeFunction tsfn_;
  const int32_t* cancel_ = nullptr;
  bool reports_ = false;
  bool failed_ = false;
};

}  // namespace qvol
