#include "fd_stream.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "errors.h"
#include "job_control.h"

namespace qvol::sys {

namespace {

constexpr size_t kFrameBuffer = 64 * 1024;
constexpr size_t kCopyBuffer = 1 << 20;
constexpr size_t kZeroRun = 1 << 20;
constexpr size_t kSpliceStep = 1 << 30;

// A read-only anonymous mapping reads as the kernel's shared zero page and can never be
// written, so vmsplice may hand its pages to the pipe and forget them: the reuse pitfall
// of vmsplice (docs/linux-io.md, "vmsplice and page reuse") cannot happen. Made once,
// never unmapped.
const uint8_t* zero_pages() {
  static const uint8_t* pages = [] {
    void* p = mmap(nullptr, kZeroRun, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : static_cast<const uint8_t*>(p);
  }();
  return pages;
}

// How long a wait sleeps before it looks at the job's cancel flag again.
constexpr int kCancelPollMs = 100;

// Waits until `fd` is ready (or hung up, which the next call reports), looking at the job's
// cancel flag every kCancelPollMs: 0, -ECANCELED, or -errno. No wait here is unbounded
// while a job can be cancelled.
int wait_ready(int fd, short events) {
  struct pollfd p = {fd, events, 0};
  for (;;) {
    int r = retry_eintr([&] { return poll(&p, 1, kCancelPollMs); });
    if (r < 0) return r;
    if (r > 0) return 0;
    if (cancel_requested()) return -ECANCELED;
  }
}

// Runs an I/O call on `fd` until it is not EINTR, waiting with poll on EAGAIN (an
// O_NONBLOCK fd): the count, or -errno.
template <typename F>
ssize_t retry_io(int fd, short events, F&& call) {
  for (;;) {
    ssize_t r = call();
    if (r >= 0) return r;
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return -errno;
    int w = wait_ready(fd, events);
    if (w < 0) return w;
  }
}

}  // namespace

const int32_t*& current_cancel() {
  thread_local const int32_t* cancel = nullptr;
  return cancel;
}

const char* out_method_name(OutMethod m) {
  switch (m) {
    case OutMethod::kSplice:
      return "splice";
    case OutMethod::kSendfile:
      return "sendfile";
    case OutMethod::kWrite:
      return "write";
    default:
      return "none";
  }
}

bool is_pipe(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

int grow_pipe(int fd, int want) {
  int have = fcntl(fd, F_GETPIPE_SZ);
  if (have < 0 || have >= want) return have < 0 ? 0 : have;
  // EPERM above pipe-max-size or past the user's pipe budget: keep what we have.
  int r = fcntl(fd, F_SETPIPE_SZ, want);
  return r < 0 ? have : r;
}

ssize_t read_full(int fd, uint8_t* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    // Readable first: a blocking pipe whose writer went quiet must not hold us in read().
    int w = wait_ready(fd, POLLIN);
    if (w < 0) return w;
    ssize_t r = retry_io(fd, POLLIN, [&] { return read(fd, buf + got, n - got); });
    if (r < 0) return r;
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return static_cast<ssize_t>(got);
}

StreamOut::StreamOut(int fd, uint32_t disable) : fd_(fd), disable_(disable) {}

StreamOut::~StreamOut() {
  if (own_fd_ >= 0) close(own_fd_);
}

// A blocking pipe, terminal or device waits in write() or sendfile() for as long as its
// reader is quiet, where no cancel flag is looked at. We cannot make the caller's fd
// non-blocking (its file description is shared, with a shell's terminal say), but opening
// it again through /proc gives a description of our own for the same pipe or device,
// which can be. Sockets cannot be opened so; they keep the caller's fd.
void StreamOut::own_nonblocking() {
  struct stat st;
  if (fstat(fd_, &st) != 0 || S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) return;
  int fl = fcntl(fd_, F_GETFL);
  if (fl < 0 || (fl & O_NONBLOCK)) return;
  char path[48];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd_);
  int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return;
  own_fd_ = fd_ = fd;
}

int StreamOut::init() {
  own_nonblocking();
  pipe_ = is_pipe(fd_);
  if (pipe_ && !(disable_ & kCapPipeResize)) pipe_size_ = grow_pipe(fd_, 1 << 20);
  frame_ = aligned_buffer(kFrameBuffer);
  if (!frame_) return fail(-ENOMEM, "malloc");
  if (zero_pages() == nullptr) return fail(-ENOMEM, "mmap");
  return 0;
}

int StreamOut::write_out(const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t r = retry_io(fd_, POLLOUT, [&] { return write(fd_, p, n); });
    if (r < 0) return fail(static_cast<int>(r), "write");
    p += r;
    n -= static_cast<size_t>(r);
    bytes_ += static_cast<uint64_t>(r);
  }
  return 0;
}

int StreamOut::put(const void* p, size_t n) {
  if (frame_len_ + n > kFrameBuffer) {
    int r = flush();
    if (r < 0) return r;
    if (n > kFrameBuffer) return write_out(static_cast<const uint8_t*>(p), n);
  }
  memcpy(frame_.get() + frame_len_, p, n);
  frame_len_ += n;
  return 0;
}

int StreamOut::flush() {
  if (frame_len_ == 0) return 0;
  size_t n = frame_len_;
  frame_len_ = 0;
  return write_out(frame_.get(), n);  // framing: not counted as the data's method
}

int StreamOut::put_zeros(uint64_t n) {
  int r = flush();
  if (r < 0) return r;
  const uint8_t* zeros = zero_pages();
  while (n > 0) {
    size_t step = n < kZeroRun ? static_cast<size_t>(n) : kZeroRun;
    if (pipe_ && !(disable_ & kCapVmsplice)) {
      struct iovec iov = {const_cast<uint8_t*>(zeros), step};
      // NONBLOCK: a full pipe is EAGAIN and a bounded wait, not a block.
      ssize_t w = retry_io(fd_, POLLOUT, [&] { return vmsplice(fd_, &iov, 1, SPLICE_F_NONBLOCK); });
      if (w < 0) {
        if (!is_unsupported(static_cast<int>(w), Unsupported::kRange))
          return fail(static_cast<int>(w), "vmsplice");
        disable_ |= kCapVmsplice;  // e.g. a kernel without it: write from now on
        continue;
      }
      used(OutMethod::kSplice);
      bytes_ += static_cast<uint64_t>(w);
      n -= static_cast<uint64_t>(w);
      continue;
    }
    used(OutMethod::kWrite);
    r = write_out(zeros, step);
    if (r < 0) return r;
    n -= step;
  }
  return 0;
}

// The last rung: read into our buffer and write it out.
int StreamOut::copy_through(int src, uint64_t off, uint64_t n) {
  if (!buf_) {
    buf_ = aligned_buffer(kCopyBuffer);
    if (!buf_) return fail(-ENOMEM, "malloc");
  }
  used(OutMethod::kWrite);
  while (n > 0) {
    size_t want = n < kCopyBuffer ? static_cast<size_t>(n) : kCopyBuffer;
    ssize_t got =
        retry_eintr([&] { return pread(src, buf_.get(), want, static_cast<off_t>(off)); });
    if (got < 0) return fail(static_cast<int>(got), "read");
    if (got == 0) return fail(-ENODATA, "read");  // the source shrank under us
    int r = write_out(buf_.get(), static_cast<size_t>(got));
    if (r < 0) return r;
    off += static_cast<uint64_t>(got);
    n -= static_cast<uint64_t>(got);
  }
  return 0;
}

int StreamOut::put_file(int src, uint64_t off, uint64_t n) {
  int r = flush();
  if (r < 0) return r;
  while (n > 0) {
    size_t step = n < kSpliceStep ? static_cast<size_t>(n) : kSpliceStep;
    ssize_t w;
    OutMethod m;
    if (pipe_ && !(disable_ & kCapSplice)) {
      w = retry_io(fd_, POLLOUT, [&] {
        loff_t pos = static_cast<loff_t>(off);
        return splice(src, &pos, fd_, nullptr, step,
                      SPLICE_F_MOVE | SPLICE_F_MORE | SPLICE_F_NONBLOCK);
      });
      m = OutMethod::kSplice;
    } else if (sendfile_ok_ && !(disable_ & kCapSendfile)) {
      w = retry_io(fd_, POLLOUT, [&] {
        off_t so = static_cast<off_t>(off);
        return sendfile(fd_, src, &so, step);
      });
      m = OutMethod::kSendfile;
    } else {
      return copy_through(src, off, n);
    }
    if (w < 0) {
      int err = static_cast<int>(w);
      if (is_unsupported(err, Unsupported::kRange)) {  // this pair cannot: next rung
        if (m == OutMethod::kSplice)
          disable_ |= kCapSplice;
        else
          sendfile_ok_ = false;
        continue;
      }
      return fail(err, m == OutMethod::kSplice ? "splice" : "sendfile");
    }
    if (w == 0) return fail(-ENODATA, "read");  // the source shrank under us
    used(m);
    bytes_ += static_cast<uint64_t>(w);
    off += static_cast<uint64_t>(w);
    n -= static_cast<uint64_t>(w);
  }
  return 0;
}

}  // namespace qvol::sys
