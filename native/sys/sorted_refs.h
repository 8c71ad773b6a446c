// An archive's index kept in a local file instead of memory (src/backup/local-index.ts): 64-
// byte references sorted by their 32-byte ids, found with a fan-out table of where each
// two-byte id prefix starts, then one pread of that stretch (about count/65536 references)
// and a bisection in it. Thread-safe: pread only.
#pragma once
#include <cstddef>
#include <cstdint>

namespace qvol::sys {

constexpr size_t kRefBytes = 64, kRefIdBytes = 32;
constexpr size_t kFanout = 65537;  // fanout[p]: references whose id's first two bytes are < p

struct SortedRefsFile {
  int fd = -1;
  uint64_t base = 0;                 // the file offset of reference 0
  const uint32_t* fanout = nullptr;  // kFanout entries, little-endian as on x86-64
};

// 1, with the reference in `ref` and its position in `at`, when `id` is there; 0 when it
// is not; -errno on a failed read, -EBADMSG when the file is shorter than its fan-out says.
int sorted_refs_find(const SortedRefsFile& file, const uint8_t* id, uint8_t* ref, uint64_t* at);

}  // namespace qvol::sys
