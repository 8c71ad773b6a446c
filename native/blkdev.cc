// blockGeometrySync(fd): size and sector sizes of a block device. O(1) ioctls, so sync.
#include "sys/blkdev.h"

#include <napi.h>

#include "common.h"

namespace qvol {

namespace {
Napi::Value BlockGeometrySync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sys::BlockGeometry g{};
  int r = sys::block_geometry(RequireFd(info, 0, "fd"), &g);
  if (r < 0) throw MakeSystemError(env, r, "ioctl(BLKGETSIZE64)");
  Napi::Object o = Napi::Object::New(env);
  o.Set("size", static_cast<double>(g.size));
  o.Set("logicalSectorSize", g.logical_sector);
  o.Set("physicalSectorSize", g.physical_sector);
  o.Set("readOnly", g.read_only);
  return o;
}
}  // namespace

void InitBlkdev(Napi::Env env, Napi::Object exports) {
  exports.Set("blockGeometrySync",
              Napi::Function::New(env, BlockGeometrySync, "blockGeometrySync"));
}

}  // namespace qvol
