// Space management on files and block devices: fallocate modes, discard and zero-out.
#pragma once
#include <cstdint>

namespace qvol::sys {

int punch_hole(int fd, uint64_t off, uint64_t len);   // PUNCH_HOLE|KEEP_SIZE
int zero_range(int fd, uint64_t off, uint64_t len);   // ZERO_RANGE|KEEP_SIZE
int allocate(int fd, uint64_t off, uint64_t len);     // mode 0
int blk_discard(int fd, uint64_t off, uint64_t len);  // BLKDISCARD (contents undefined!)
int blk_zeroout(int fd, uint64_t off, uint64_t len);  // BLKZEROOUT (may write zeros slowly)

// pwrite until all `len` bytes are written (short writes resumed).
int write_all(int fd, const uint8_t* buf, uint64_t len, uint64_t off);

// pwrite of zeros from a zeroed buffer, the rung that always works.
int write_zeros(int fd, uint64_t off, uint64_t len, const void* zeros, uint64_t zeros_len);

// The rung used to make a range read back as zeros; see zero_out().
enum ZeroRung : uint32_t {
  kRungPunch = 1u << 0,      // fallocate PUNCH_HOLE: deallocates; on a bdev, unmap-with-zeroes
  kRungZeroout = 1u << 1,    // BLKZEROOUT, block devices only
  kRungZeroRange = 1u << 2,  // fallocate ZERO_RANGE, files
  kRungWrite = 1u << 3,      // plain writes of zeros
  kRungDiscard = 1u << 4,    // BLKDISCARD of whole units on a target known to read them as zeros
};

// Makes [off, off+len) read back as zeros, trying the rungs in order and skipping those in
// *disabled; a rung that reports "unsupported" (is_unsupported kRange) is added to *disabled so the
// next call skips it (QEMU's has_write_zeroes). `unmap` allows deallocating rungs (punch). Sets
// *used to the rung that worked. Returns 0 or -errno from the last rung tried.
int zero_out(int fd, uint64_t off, uint64_t len, bool is_block, bool unmap, uint32_t* disabled,
             uint32_t* used, const void* zeros, uint64_t zeros_len);

}  // namespace qvol::sys
