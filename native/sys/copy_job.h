// The volume copy engine: one whole copy from a file or block device to a file or block
// device, run synchronously on the calling (worker) thread. It walks the source's extents,
// moves data by the best rung that works (clone, copy_file_range, read/zero-check/write),
// and leaves the target reading back exactly equal to the source.
#pragma once
#include <cstdint>

namespace qvol::sys {

enum class Mode : uint8_t { kAuto, kAlways, kNever };
enum class Method : uint8_t { kNone, kClone, kCopyRange, kReadWrite };

// Capabilities a caller may force off, to test each rung or to compare them in benchmarks.
enum CapBit : uint32_t {
  kCapClone = 1u << 0,
  kCapCopyRange = 1u << 1,
  kCapSeekHole = 1u << 2,
  kCapPunch = 1u << 3,  // shifted ZeroRung bits (alloc.h): kRungPunch << 3
  kCapZeroout = 1u << 4,
  kCapZeroRange = 1u << 5,
  kCapEarlyWriteback = 1u << 6,
  kCapSameFsCheck = 1u << 7,  // try copy_file_range across filesystems too (tests EXDEV)
  kCapDiscard = 1u << 13,     // zero runs as discards on a target that reads them as zeros
};
constexpr unsigned kZeroRungShift = 3;

struct CopyOptions {
  uint64_t length = 0;             // bytes of the source to copy, from offset 0
  uint64_t target_size = 0;        // a file target is truncated to this; on a block device
                                   // [length, target_size) is made to read back as zeros
  bool target_known_zero = false;  // the target already reads zero everywhere (new file)
  uint64_t discard_zeroes = 0;     // a block target (a thin LV) that reads zeros where a
                                   // discard unmapped whole units of this many bytes; 0: none
  Mode reflink = Mode::kAuto;      // always: fail rather than copy; never: no clone, and
                                   // no copy_file_range either (it may clone implicitly)
  Mode sparse = Mode::kAuto;       // auto: keep holes, find zeros where data passes through
                                   // us; always: also scan copy_file_range data; never: no holes
  uint32_t disable = 0;            // CapBit mask
  uint32_t buffer_size = 1u << 20;
  bool sync = true;                 // fsync the target before returning
  bool copy_mtime = false;          // give the target the source's mtime (ns), atime = mtime
  const int32_t* cancel = nullptr;  // set non-zero (from another thread) to stop with ECANCELED
};

struct CopyStats {
  Method method = Method::kNone;  // the lowest rung that carried data
  uint64_t bytes_read = 0;        // read through our buffer
  uint64_t bytes_written = 0;     // written by us or by copy_file_range
  uint64_t bytes_cloned = 0;      // shared with the source by FICLONE
  uint64_t bytes_skipped = 0;     // not written: the target already reads zero there
  uint64_t bytes_zeroed = 0;      // made zero on a target not known to be zero
  uint64_t holes = 0;             // zero runs left unallocated or unmapped in the target
  uint32_t zero_rungs = 0;        // ZeroRung bits used to zero
};

struct CopyFailure {
  int err = 0;  // -errno
  const char* syscall = "";
  bool on_target = false;  // which path to blame
};

class CopyProgress {
 public:
  virtual ~CopyProgress() = default;
  virtual void report(uint64_t done, uint64_t total) = 0;
};

// Returns 0, or -errno with *fail filled in. The target must be open for writing.
int run_copy(int src_fd, int dst_fd, const CopyOptions& opts, CopyStats* stats, CopyFailure* fail,
             CopyProgress* progress);

}  // namespace qvol::sys
