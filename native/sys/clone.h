// Copy offload: FICLONE, FICLONERANGE and copy_file_range. Each returns -errno as the kernel
// said it; is_unsupported() (errors.h) tells which of those mean "take the next rung".
#pragma once
#include <sys/types.h>

#include <cstdint>

namespace qvol::sys {

// Shares all of src's extents with dst (which becomes an exact copy of src).
int clone_file(int dst_fd, int src_fd);

// Shares [src_off, src_off+len) with dst at dst_off. Offsets must be fs-block aligned,
// except that len may run to src's EOF.
int clone_range(int dst_fd, int src_fd, uint64_t src_off, uint64_t dst_off, uint64_t len);

// In-kernel copy of at most one call's worth (we cap each call at 1 GiB: glibc 2.41/2.42
// could corrupt data above 2 GiB, sourceware PR33245). Returns bytes copied (0 = source EOF)
// or -errno. ENOSYS is remembered for the life of the process, as libuv does.
ssize_t copy_range_once(int src_fd, uint64_t src_off, int dst_fd, uint64_t dst_off, uint64_t len);

constexpr uint64_t kMaxCopyRangeChunk = 1ull << 30;

}  // namespace qvol::sys
