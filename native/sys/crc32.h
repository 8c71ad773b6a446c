// CRC-32 (IEEE 802.3, zlib's crc32()) over data, runs of zeros and repeated patterns. The
// Android sparse format's CRC32 chunk carries it over the whole expanded image, so holes
// must count as zeros without being read: zeros extend the CRC in O(log n) (zlib's
// crc32_combine machinery) instead of at memory speed.
#pragma once
#include <cstddef>
#include <cstdint>

namespace qvol::sys {

uint32_t crc32_update(uint32_t crc, const uint8_t* data, size_t n);
uint32_t crc32_zeros(uint32_t crc, uint64_t n);
// `n` bytes of the little-endian 32-bit `pattern` repeated (n a multiple of 4).
uint32_t crc32_pattern(uint32_t crc, uint32_t pattern, uint64_t n);

// The CRC of an image as it is produced or consumed in order; runs of zeros are folded in
// lazily, once, when the next non-zero bytes (or the value) are wanted.
class ImageCrc {
 public:
  explicit ImageCrc(bool on) : on_(on) {}
  void data(const uint8_t* p, size_t n) {
    if (!on_) return;
    fold();
    crc_ = crc32_update(crc_, p, n);
  }
  void zeros(uint64_t n) { zeros_ += n; }
  void pattern(uint32_t word, uint64_t n) {
    if (!on_) return;
    fold();
    crc_ = crc32_pattern(crc_, word, n);
  }
  uint32_t value() {
    fold();
    return crc_;
  }

 private:
  void fold() {
    if (zeros_ == 0 || !on_) return;
    crc_ = crc32_zeros(crc_, zeros_);
    zeros_ = 0;
  }
  bool on_;
  uint32_t crc_ = 0;
  uint64_t zeros_ = 0;
};

}  // namespace qvol::sys
