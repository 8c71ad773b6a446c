#include "durable.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "errors.h"

namespace qvol::sys {

namespace {

std::string parent_of(const char* path) {
  std::string p(path);
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  size_t slash = p.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return p.substr(0, slash);
}

int fsync_dir(const std::string& dir) {
  int fd = retry_eintr([&] { return open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); });
  if (fd < 0) return fd;
  int r = retry_eintr([&] { return fsync(fd); });
  close(fd);
  return r;
}

// The operation's result, then the fsync of `path`'s directory (and `other`'s, if another).
int then_sync(int r, const char* op, const char* path, const char* other,
              const char** failed_call) {
  if (r < 0) {
    *failed_call = op;
    return r;
  }
  *failed_call = "fsync";
  std::string dir = parent_of(path);
  if ((r = fsync_dir(dir)) < 0) return r;
  if (other != nullptr) {
    std::string dir2 = parent_of(other);
    if (dir2 != dir && (r = fsync_dir(dir2)) < 0) return r;
  }
  return 0;
}

}  // namespace

int fsync_parent(const char* path) { return fsync_dir(parent_of(path)); }

int durable_rename(const char* from, const char* to, const char** failed_call) {
  return then_sync(retry_eintr([&] { return rename(from, to); }), "rename", to, from, failed_call);
}

int durable_unlink(const char* path, const char** failed_call) {
  return then_sync(retry_eintr([&] { return unlink(path); }), "unlink", path, nullptr, failed_call);
}

int durable_link(const char* from, const char* to, const char** failed_call) {
  return then_sync(retry_eintr([&] { return link(from, to); }), "link", to, nullptr, failed_call);
}

int durable_mkdir(const char* path, mode_t mode, const char** failed_call) {
  return then_sync(retry_eintr([&] { return mkdir(path, mode); }), "mkdir", path, nullptr,
                   failed_call);
}

int durable_rmdir(const char* path, const char** failed_call) {
  return then_sync(retry_eintr([&] { return rmdir(path); }), "rmdir", path, nullptr, failed_call);
}

}  // namespace qvol::sys
