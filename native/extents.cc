// mapExtents(fd, offset, length) and fiemap(fd): where a file's data is, as seen by
// SEEK_DATA/SEEK_HOLE (what the copy engine uses) and by FIEMAP (diagnostics: shared and
// unwritten extents).
#include "sys/extents.h"

#include <napi.h>

#include <vector>

#include "common.h"
#include "worker.h"

namespace qvol {

namespace {

class MapExtentsWorker : public IoWorker {
 public:
  MapExtentsWorker(Napi::Env env, int fd, uint64_t off, uint64_t len)
      : IoWorker(env, "qvol.mapExtents"), fd_(fd), off_(off), end_(off + len) {}

 protected:
  void Run() override {
    uint64_t pos = off_;
    while (pos < end_) {
      sys::ExtentProbe e = sys::probe_extent(fd_, pos, end_, false);
      if (e.end <= pos) e.end = end_;
      if (!runs_.empty() && runs_.back().data == e.data) {
        runs_.back().end = e.end;  // H1 re-probes can split a run; join it again
      } else {
        runs_.push_back({pos, e.end, e.data});
      }
      pos = e.end;
    }
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, runs_.size());
    for (size_t i = 0; i < runs_.size(); i++) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("offset", static_cast<double>(runs_[i].begin));
      o.Set("length", static_cast<double>(runs_[i].end - runs_[i].begin));
      o.Set("data", runs_[i].data);
      out.Set(i, o);
    }
    return out;
  }

 private:
  struct Run_ {
    uint64_t begin, end;
    bool data;
  };
  int fd_;
  uint64_t off_, end_;
  std::vector<Run_> runs_;
};

class FiemapWorker : public IoWorker {
 public:
  FiemapWorker(Napi::Env env, int fd) : IoWorker(env, "qvol.fiemap"), fd_(fd) {}

 protected:
  void Run() override {
    int r = sys::fiemap_all(fd_, extents_);
    if (r < 0) Fail(r, "ioctl(FS_IOC_FIEMAP)");
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, extents_.size());
    for (size_t i = 0; i < extents_.size(); i++) {
      const auto& e = extents_[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("logical", static_cast<double>(e.logical));
      o.Set("physical", static_cast<double>(e.physical));
      o.Set("length", static_cast<double>(e.length));
      o.Set("flags", e.flags);
      out.Set(i, o);
    }
    return out;
  }

 private:
  int fd_;
  std::vector<sys::FiemapExtent> extents_;
};

Napi::Value MapExtents(const Napi::CallbackInfo& info) {
  int fd = RequireFd(info, 0, "fd");
  uint64_t off = RequireU64(info, 1, "offset");
  uint64_t len = RequireU64(info, 2, "length");
  return (new MapExtentsWorker(info.Env(), fd, off, len))->Start();
}

Napi::Value Fiemap(const Napi::CallbackInfo& info) {
  return (new FiemapWorker(info.Env(), RequireFd(info, 0, "fd")))->Start();
}

}  // namespace

void InitExtents(Napi::Env env, Napi::Object exports) {
  exports.Set("mapExtents", Napi::Function::New(env, MapExtents, "mapExtents"));
  exports.Set("fiemap", Napi::Function::New(env, Fiemap, "fiemap"));
}

}  // namespace qvol
