// The Android sparse image format (AOSP system/core/libsparse/sparse_format.h), little
// endian: a file header, then total_chunks chunks, each a header and its payload. qvol
// writes 4 KiB blocks, RAW / FILL / DONT_CARE chunks and one CRC32 chunk at the end, and
// appends to the file header a 12-byte extension with the exact byte size (libsparse
// skips header bytes beyond the 28 it knows, so simg2img still reads it).
#pragma once
#include <cstdint>

namespace qvol::sys {

constexpr uint32_t kSparseMagic = 0xed26ff3a;
constexpr uint16_t kSparseMajor = 1;
constexpr uint16_t kFileHeaderSize = 28;
constexpr uint16_t kChunkHeaderSize = 12;
constexpr uint32_t kQvolExtMagic = 0x6c6f7671;  // "qvol"
constexpr uint16_t kQvolExtSize = 12;           // magic, exact size (u64)

enum ChunkType : uint16_t {
  kChunkRaw = 0xCAC1,
  kChunkFill = 0xCAC2,
  kChunkDontCare = 0xCAC3,
  kChunkCrc32 = 0xCAC4,
};

#pragma pack(push, 1)
struct SparseHeader {
  uint32_t magic;
  uint16_t major_version;
  uint16_t minor_version;
  uint16_t file_hdr_sz;
  uint16_t chunk_hdr_sz;
  uint32_t blk_sz;
  uint32_t total_blks;
  uint32_t total_chunks;
  uint32_t image_checksum;
};
struct QvolHeaderExt {
  uint32_t magic;
  uint64_t exact_size;
};
struct ChunkHeader {
  uint16_t chunk_type;
  uint16_t reserved1;
  uint32_t chunk_sz;  // blocks of the image
  uint32_t total_sz;  // bytes in the stream, header included
};
#pragma pack(pop)
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the structs are the wire format");
static_assert(sizeof(SparseHeader) == kFileHeaderSize);
static_assert(sizeof(ChunkHeader) == kChunkHeaderSize);
static_assert(sizeof(QvolHeaderExt) == kQvolExtSize);

// What a reader needs of a parsed file header.
struct StreamHeader {
  uint32_t block_size = 0;
  uint32_t total_blocks = 0;
  uint32_t total_chunks = 0;
  uint16_t chunk_header_size = kChunkHeaderSize;
  uint64_t exact_size = 0;  // from qvol's extension; 0 when absent
  uint16_t header_bytes = kFileHeaderSize;  // the file header as sent, extensions included
};

}  // namespace qvol::sys
