#include "zero.h"

#include <immintrin.h>

#include <cstring>

namespace qvol::sys {

namespace {

// CCAN memeqzero: check 16 bytes by hand, then compare the buffer with itself shifted by
// 16, which lets glibc's vectorised memcmp do the rest.
bool memeqzero(const uint8_t* p, size_t n) {
  size_t head = n < 16 ? n : 16;
  for (size_t i = 0; i < head; i++)
    if (p[i]) return false;
  return n <= 16 || memcmp(p, p + 16, n - 16) == 0;
}

// 128 bytes per iteration in two independent OR chains (QEMU bufferiszero's shape), with a
// sampled first/middle/last byte so data blocks usually leave before the loop.
__attribute__((target("avx2"))) bool avx2_is_zero(const uint8_t* p, size_t n) {
  if (n < 128) return memeqzero(p, n);
  if (p[0] | p[n / 2] | p[n - 1]) return false;
  const uint8_t* end = p + n;
  const uint8_t* q = p;
  for (; q + 128 <= end; q += 128) {
    __m256i a = _mm256_or_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q)),
                                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32)));
    __m256i b = _mm256_or_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 64)),
                                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 96)));
    if (!_mm256_testz_si256(_mm256_or_si256(a, b), _mm256_or_si256(a, b))) return false;
  }
  if (q < end) {  // the tail, as one unaligned 128-byte window ending at `end`
    const uint8_t* t = end - 128;
    __m256i a = _mm256_or_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t)),
                                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + 32)));
    __m256i b = _mm256_or_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + 64)),
                                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + 96)));
    if (!_mm256_testz_si256(_mm256_or_si256(a, b), _mm256_or_si256(a, b))) return false;
  }
  return true;
}

bool detect_avx2() {
  __builtin_cpu_init();  // we may run before libgcc's own constructor has
  return __builtin_cpu_supports("avx2");
}

const bool g_avx2 = detect_avx2();

}  // namespace

bool cpu_has_avx2() { return g_avx2; }

bool is_zero_with(ZeroScan impl, const uint8_t* p, size_t n) {
  if (impl == ZeroScan::kAuto) impl = g_avx2 ? ZeroScan::kAvx2 : ZeroScan::kMemeqzero;
  if (impl == ZeroScan::kAvx2 && g_avx2) return avx2_is_zero(p, n);
  return memeqzero(p, n);
}

bool is_zero(const uint8_t* p, size_t n) { return g_avx2 ? avx2_is_zero(p, n) : memeqzero(p, n); }

const char* zero_scan_name() { return g_avx2 ? "avx2" : "memeqzero"; }

}  // namespace qvol::sys
