// Moving bytes through a stream fd (a pipe, socket, terminal or file written in order), as
// the kernel allows best: splice from a file into a pipe (page references, no copy),
// vmsplice of memory that never changes (the zero page run), sendfile to anything else,
// plain read/write last. An fd that is O_NONBLOCK (Node leaves its stdio pipes so) is
// waited on with poll, so callers see one blocking interface.
#pragma once
#include <sys/types.h>

#include <cstdint>

#include "sparse_writer.h"

namespace qvol::sys {

// Extra CapBit values (copy_job.h) for the stream rungs, to test each branch.
enum StreamCapBit : uint32_t {
  kCapSplice = 1u << 8,
  kCapVmsplice = 1u << 9,
  kCapSendfile = 1u << 10,
  kCapPipeResize = 1u << 11,
};

enum class OutMethod : uint8_t { kNone, kSplice, kSendfile, kWrite };
const char* out_method_name(OutMethod m);

bool is_pipe(int fd);
// Grows a pipe to `want` bytes (F_SETPIPE_SZ), as far as the caller may; the size it has.
int grow_pipe(int fd, int want);

// Reads until `n` bytes or end of stream; the count read, or -errno.
ssize_t read_full(int fd, uint8_t* buf, size_t n);

// The writer of a stream: buffers small framing, moves bulk data by the best rung. Every
// call returns 0 or -errno; syscall() names the call that failed.
class StreamOut {
 public:
  StreamOut(int fd, uint32_t disable);
  ~StreamOut();
  StreamOut(const StreamOut&) = delete;
  StreamOut& operator=(const StreamOut&) = delete;
  int init();

  int put(const void* p, size_t n);                 // framing: buffered
  int put_zeros(uint64_t n);                        // n zero bytes
  int put_file(int src, uint64_t off, uint64_t n);  // bytes of a file or device
  int flush();

  uint64_t bytes() const { return bytes_; }
  OutMethod method() const { return method_; }
  const char* syscall() const { return syscall_; }
  int pipe_size() const { return pipe_size_; }

 private:
  int fail(int err, const char* call) {
    syscall_ = call;
    return err;
  }
  void own_nonblocking();
  int write_out(const uint8_t* p, size_t n);
  int copy_through(int src, uint64_t off, uint64_t n);
  void used(OutMethod m) {
    if (static_cast<int>(m) > static_cast<int>(method_)) method_ = m;
  }

  int fd_;
  int own_fd_ = -1;  // our own non-blocking description of the caller's fd, if we made one
  uint32_t disable_;
  bool pipe_ = false, sendfile_ok_ = true;
  int pipe_size_ = 0;
  OutMethod method_ = OutMethod::kNone;
  const char* syscall_ = "";
  uint64_t bytes_ = 0;
  AlignedBuffer frame_, buf_;
  size_t frame_len_ = 0;
};

}  // namespace qvol::sys
