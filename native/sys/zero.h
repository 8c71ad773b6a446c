// Is a buffer all zeros? Two implementations, picked once per process: an AVX2 loop when
// the CPU has it, else the memeqzero trick (coreutils is_nul: glibc's SIMD memcmp).
#pragma once
#include <cstddef>
#include <cstdint>

namespace qvol::sys {

enum class ZeroScan { kAuto, kMemeqzero, kAvx2 };

bool is_zero(const uint8_t* p, size_t n);
bool is_zero_with(ZeroScan impl, const uint8_t* p, size_t n);
bool cpu_has_avx2();
const char* zero_scan_name();  // the implementation is_zero() uses

}  // namespace qvol::sys
