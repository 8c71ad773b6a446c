// Opening a name below a directory without following any symbolic link on the way, the
// way runc's filepath-securejoin and systemd's chase() do it. qvol runs as root in pool
// directories whose contents it must not trust: a link planted at an image's name, or at
// a directory on the way to it, must make the open fail, never lead outside the pool.
#pragma once
#include <sys/types.h>

namespace qvol::sys {

enum class OpenRung {
  kOpenat2,  // openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS): 5.6+
  kWalk,     // one component at a time, openat(O_NOFOLLOW), ".." refused
};

struct OpenedBeneath {
  int fd = -1;
  mode_t st_mode = 0;  // what the name turned out to be (S_IFREG, S_IFDIR, ...)
  OpenRung rung = OpenRung::kWalk;
};

// Opens `rel` (relative, no "..", no empty component) below the directory `root_fd` with
// `flags` and `mode` (O_CLOEXEC and O_NOFOLLOW are always added). O_NONBLOCK is added for
// the open, so a FIFO planted at the name cannot block it, and removed again unless asked
// for. A symbolic link anywhere on the path fails with -ELOOP, an escape with -EXDEV.
// `allow_openat2` false takes the walk (tests); openat2 refused by the kernel (ENOSYS,
// E2BIG, a seccomp EPERM) or racing (EAGAIN) falls back to the walk too. Returns 0 or
// -errno.
int open_beneath(int root_fd, const char* rel, int flags, mode_t mode, bool allow_openat2,
                 OpenedBeneath* out);

}  // namespace qvol::sys
