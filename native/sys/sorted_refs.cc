#include "sorted_refs.h"

#include <errno.h>
#include <unistd.h>

#include <cstring>
#include <memory>

#include "errors.h"

namespace qvol::sys {

namespace {

// Reads `n` bytes at `at`, whole.
int ReadAt(int fd, uint8_t* into, size_t n, uint64_t at) {
  for (size_t got = 0; got < n;) {
    ssize_t r =
        retry_eintr([&] { return pread(fd, into + got, n - got, static_cast<off_t>(at + got)); });
    if (r < 0) return static_cast<int>(r);
    if (r == 0) return -EBADMSG;
    got += static_cast<size_t>(r);
  }
  return 0;
}

// Above this many references a stretch is bisected by single reads instead of read whole.
constexpr uint32_t kReadWhole = 4096;

}  // namespace

int sorted_refs_find(const SortedRefsFile& file, const uint8_t* id, uint8_t* ref, uint64_t* at) {
  size_t prefix = (static_cast<size_t>(id[0]) << 8) | id[1];
  uint32_t lo = file.fanout[prefix], hi = file.fanout[prefix + 1];
  if (lo >= hi) return 0;
  if (hi - lo <= kReadWhole) {
    size_t n = static_cast<size_t>(hi - lo) * kRefBytes;
    std::unique_ptr<uint8_t[]> stretch(new uint8_t[n]);
    int rc = ReadAt(file.fd, stretch.get(), n, file.base + uint64_t{lo} * kRefBytes);
    if (rc < 0) return rc;
    size_t a = 0, b = hi - lo;
    while (a < b) {
      size_t mid = (a + b) / 2;
      int c = memcmp(stretch.get() + mid * kRefBytes, id, kRefIdBytes);
      if (c == 0) {
        memcpy(ref, stretch.get() + mid * kRefBytes, kRefBytes);
        *at = lo + mid;
        return 1;
      }
      if (c < 0)
        a = mid + 1;
      else
        b = mid;
    }
    return 0;
  }
  uint8_t probe[kRefBytes];
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    int rc = ReadAt(file.fd, probe, kRefBytes, file.base + uint64_t{mid} * kRefBytes);
    if (rc < 0) return rc;
    int c = memcmp(probe, id, kRefIdBytes);
    if (c == 0) {
      memcpy(ref, probe, kRefBytes);
      *at = mid;
      return 1;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return 0;
}

}  // namespace qvol::sys
