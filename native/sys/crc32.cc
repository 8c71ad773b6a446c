#include "crc32.h"

#include <zlib.h>  // Node's own zlib (its headers ship it and node exports its symbols)

#include <cstring>

namespace qvol::sys {

uint32_t crc32_update(uint32_t crc, const uint8_t* data, size_t n) {
  return static_cast<uint32_t>(crc32_z(crc, data, n));
}

// zlib's CRC is ~R(~0, M), R the raw shift register, and R(r, zeros(n)) = r·x^(8n) mod P,
// which crc32_combine_op computes with the operator crc32_combine_gen64(n) gives. So
// crc(M ‖ zeros(n)) = ~(op · ~crc(M)); combine_op(a, 0, op) is op · a.
uint32_t crc32_zeros(uint32_t crc, uint64_t n) {
  if (n == 0) return crc;
  uLong op = crc32_combine_gen64(static_cast<z_off64_t>(n));
  return ~static_cast<uint32_t>(crc32_combine_op(~crc, 0, op));
}

uint32_t crc32_pattern(uint32_t crc, uint32_t pattern, uint64_t n) {
  if (pattern == 0) return crc32_zeros(crc, n);
  uint8_t block[4096];
  for (size_t i = 0; i < sizeof block; i += 4) memcpy(block + i, &pattern, 4);
  while (n > 0) {
    size_t step = n < sizeof block ? static_cast<size_t>(n) : sizeof block;
    crc = crc32_update(crc, block, step);
    n -= step;
  }
  return crc;
}

}  // namespace qvol::sys
