#include "open_beneath.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

#include "errors.h"

namespace qvol::sys {

namespace {

constexpr int kAlways = O_CLOEXEC | O_NOFOLLOW;

// 1 once openat2 is known to be missing here: no second failed syscall per open.
std::atomic<bool> openat2_missing{false};

int try_openat2(int root_fd, const char* rel, int flags, mode_t mode) {
  struct open_how how {};
  how.flags = static_cast<uint64_t>(flags);
  how.mode = (flags & (O_CREAT | O_TMPFILE)) != 0 ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  for (int attempt = 0; attempt < 3; attempt++) {
    long r = syscall(SYS_openat2, root_fd, rel, &how, sizeof how);
    if (r >= 0) return static_cast<int>(r);
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return -errno;  // EAGAIN: a rename raced the lookup; try again
  }
  return -EAGAIN;
}

// The same walk by hand: each directory opened with O_NOFOLLOW | O_DIRECTORY from the one
// before, so a component swapped for a link after we passed it cannot move us.
int walk(int root_fd, const char* rel, int flags, mode_t mode) {
  std::string path(rel);
  int dir = root_fd;
  auto close_dir = [&] {
    if (dir != root_fd) close(dir);
  };
  size_t start = 0;
  for (;;) {
    size_t slash = path.find('/', start);
    std::string name =
        path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (name.empty() || name == "." || name == "..") {
      close_dir();
      return name == ".." ? -EXDEV : -EINVAL;
    }
    if (slash == std::string::npos) {
      int fd = retry_eintr([&] { return openat(dir, name.c_str(), flags, mode); });
      close_dir();
      return fd;
    }
    int next =
        retry_eintr([&] { return openat(dir, name.c_str(), O_PATH | O_DIRECTORY | kAlways); });
    if (next == -ENOTDIR) {
      // A link is not a directory to O_NOFOLLOW: say which it was.
      struct stat st {};
      if (fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
        next = -ELOOP;
    }
    close_dir();
    if (next < 0) return next;
    dir = next;
    start = slash + 1;
  }
}

}  // namespace

int open_beneath(int root_fd, const char* rel, int flags, mode_t mode, bool allow_openat2,
                 OpenedBeneath* out) {
  if (rel[0] == '/' || rel[0] == '\0') return -EINVAL;
  const bool want_nonblock = (flags & O_NONBLOCK) != 0;
  const int open_flags = flags | kAlways | O_NONBLOCK;
  int fd = -ENOSYS;
  out->rung = OpenRung::kWalk;
  if (allow_openat2 && !openat2_missing.load(std::memory_order_relaxed)) {
    out->rung = OpenRung::kOpenat2;
    fd = try_openat2(root_fd, rel, open_flags, mode);
    if (fd == -ENOSYS || fd == -E2BIG || fd == -EPERM || fd == -EAGAIN) {
      if (fd == -ENOSYS) openat2_missing.store(true, std::memory_order_relaxed);
      out->rung = OpenRung::kWalk;
    } else if (fd < 0) {
      return fd;
    }
  }
  if (fd < 0) fd = walk(root_fd, rel, open_flags, mode);
  if (fd < 0) return fd;
  struct stat st {};
  if (fstat(fd, &st) != 0 || (!want_nonblock && (flags & O_PATH) == 0 &&
                              fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0)) {
    int err = -errno;
    close(fd);
    return err;
  }
  out->fd = fd;
  out->st_mode = st.st_mode;
  return 0;
}

}  // namespace qvol::sys
