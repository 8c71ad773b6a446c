// Errno conventions for the pure syscall layer: every function returns 0 (or a count) on
// success and -errno on failure, retries EINTR, and never touches N-API.
#pragma once
#include <cerrno>

namespace qvol::sys {

// Retries a syscall expression that returns -1 with errno set, until it is not EINTR.
// Yields the result, or -errno.
template <typename F>
inline auto retry_eintr(F&& f) -> decltype(f()) {
  for (;;) {
    auto r = f();
    if (r >= 0) return r;
    if (errno != EINTR) return -errno;
  }
}

// What kind of call failed, which decides the errnos that mean "not here, take the next rung".
enum class Unsupported {
  kPlain,      // ENOSYS, EOPNOTSUPP, ENOTTY, ENODEV: the call or the fs lacks it
  kCopyRange,  // plus EXDEV (cross-fs, 5.19+) and EINVAL (non-regular files, fs quirks)
  kRange,      // plus EINVAL: fallocate modes the fs lacks, BLK* ranges the device can't align
  kClone,      // plus EXDEV, EINVAL (no remap, unaligned), EBADF, EPERM, ETXTBSY (coreutils)
};

// The one place that decides what "not supported here" means (QEMU's translate_err,
// libuv's copyfile fallbacks). Callers keep the real errno for reporting; only the decision
// to fall back is made here. Every errno not listed is a real failure.
inline bool is_unsupported(int neg_errno, Unsupported kind = Unsupported::kPlain) {
  switch (-neg_errno) {
    case ENOSYS:
    case EOPNOTSUPP:  // == ENOTSUP on Linux
    case ENOTTY:
    case ENODEV:
      return true;
    case EXDEV:
      return kind == Unsupported::kCopyRange || kind == Unsupported::kClone;
    case EINVAL:
      return kind != Unsupported::kPlain;
    case EBADF:  // FICLONE on an O_APPEND target
    case EPERM:  // immutable or swap files, some container setups (coreutils 9.3)
    case ETXTBSY:
      return kind == Unsupported::kClone;
    default:
      return false;
  }
}

}  // namespace qvol::sys
