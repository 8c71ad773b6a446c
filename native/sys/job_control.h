// What every data job (copy, export, import) polls as it goes: a cancel flag set from
// another thread, and a clock that lets progress out at most ten times a second.
#pragma once
#include <sys/stat.h>

#include <cerrno>
#include <cstdint>

namespace qvol::sys {

uint64_t now_ns();  // CLOCK_MONOTONIC (sparse_writer.cc)

class JobControl {
 public:
  explicit JobControl(const int32_t* cancel) : cancel_(cancel), last_ns_(now_ns()) {}
  bool cancelled() const {
    return cancel_ != nullptr && __atomic_load_n(cancel_, __ATOMIC_RELAXED) != 0;
  }
  // True when a progress report is due (and restarts the interval).
  bool report_due() {
    uint64_t t = now_ns();
    if (t - last_ns_ < kProgressNanos) return false;
    last_ns_ = t;
    return true;
  }

 private:
  static constexpr uint64_t kProgressNanos = 100'000'000;
  const int32_t* cancel_;
  uint64_t last_ns_;
};

// The cancel flag of the job running on this thread, for the waits deep in the stream
// helpers (fd_stream.cc) that have no JobControl at hand: set by a CancelScope for the
// job's duration.
const int32_t*& current_cancel();

class CancelScope {
 public:
  explicit CancelScope(const int32_t* cancel) : previous_(current_cancel()) {
    current_cancel() = cancel;
  }
  ~CancelScope() { current_cancel() = previous_; }
  CancelScope(const CancelScope&) = delete;
  CancelScope& operator=(const CancelScope&) = delete;

 private:
  const int32_t* previous_;
};

inline bool cancel_requested() {
  const int32_t* c = current_cancel();
  return c != nullptr && __atomic_load_n(c, __ATOMIC_RELAXED) != 0;
}

// A volume end is a regular file or a block device: 0 with *block set, or -errno
// (-EINVAL for anything else).
inline int volume_fd_kind(int fd, bool* block, struct stat* st_out = nullptr) {
  struct stat st;
  if (fstat(fd, &st) < 0) return -errno;
  *block = S_ISBLK(st.st_mode);
  if (!*block && !S_ISREG(st.st_mode)) return -EINVAL;
  if (st_out != nullptr) *st_out = st;
  return 0;
}

}  // namespace qvol::sys
