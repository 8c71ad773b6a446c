#include "loop_attach.h"

#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "errors.h"

namespace qvol::sys {

namespace {

constexpr int kAttempts = 32;  // free devices another attacher may take between our two calls

// LOOP_SET_FD, then the flags: the way before 5.8. A failure after LOOP_SET_FD detaches
// again, so the device is never left attached without autoclear.
int attach_legacy(int loop_fd, int backing_fd) {
  int r = retry_eintr([&] { return ioctl(loop_fd, LOOP_SET_FD, backing_fd); });
  if (r < 0) return r;
  loop_info64 info{};
  info.lo_flags = LO_FLAGS_AUTOCLEAR;
  r = retry_eintr([&] { return ioctl(loop_fd, LOOP_SET_STATUS64, &info); });
  if (r < 0) {
    ioctl(loop_fd, LOOP_CLR_FD, 0);
    return r;
  }
  return 0;
}

int attach_configure(int loop_fd, int backing_fd) {
  loop_config config{};
  config.fd = static_cast<uint32_t>(backing_fd);
  config.info.lo_flags = LO_FLAGS_AUTOCLEAR;
  return retry_eintr([&] { return ioctl(loop_fd, LOOP_CONFIGURE, &config); });
}

}  // namespace

int loop_attach(int backing_fd, bool legacy, LoopDevice* out) {
  int control =
      retry_eintr([] { return open("/dev/loop-control", O_RDWR | O_CLOEXEC | O_NOFOLLOW); });
  if (control < 0) return control;
  int r = -EBUSY;
  for (int attempt = 0; attempt < kAttempts && r == -EBUSY; attempt++) {
    int number = retry_eintr([&] { return ioctl(control, LOOP_CTL_GET_FREE); });
    if (number < 0) {
      r = number;
      break;
    }
    char path[32];
    snprintf(path, sizeof(path), "/dev/loop%d", number);
    int fd = retry_eintr([&] { return open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW); });
    if (fd < 0) {
      r = fd;
      break;
    }
    bool configured = !legacy;
    r = configured ? attach_configure(fd, backing_fd) : -ENOTTY;
    if (configured && r < 0 && (is_unsupported(r) || r == -EINVAL)) configured = false;
    if (!configured && r != -EBUSY) r = attach_legacy(fd, backing_fd);
    if (r < 0) {
      close(fd);
      continue;  // -EBUSY: taken meanwhile, ask for another
    }
    struct stat st {};
    if (fstat(fd, &st) < 0) {
      r = -errno;
      close(fd);  // autoclear detaches it
      break;
    }
    *out = {fd, number, static_cast<uint64_t>(st.st_rdev), configured};
  }
  close(control);
  return r;
}

}  // namespace qvol::sys
