// The Android sparse image format (AOSP system/core/libsparse/sparse_format.h), little
// endian: a file header, then total_chunks chunks, each a header and its payload. qvol
// writes 4 KiB blocks, RAW / FILL / DONT_CARE chunks and one CRC32 chunk at the end, and
// appends to the file header a 12-byte extension with the exact byte size (libsparse
// skips header bytes beyond the 28 it knows, so simg2img still reads it).
//
// The codec half of the format lives here and in sparse_format.cc: pure checks of headers and
// chunk headers given as bytes, no I/O, so the import job, the tests and backup's pack
// reader share one set of rules. Refusals are a code and numbers; TypeScript words them.
#pragma once
#include <cstddef>
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
  uint64_t exact_size = 0;                  // from qvol's extension; 0 when absent
  uint16_t header_bytes = kFileHeaderSize;  // the file header as sent, extensions included
};

// Why a stream was refused, as the caller reports it (STREAM_TRUNCATED, ...).
enum class StreamError : uint8_t {
  kNone,
  kTruncated,
  kTooLong,
  kCorrupt,
  kCrcMismatch,
  kSizeMismatch
};

// What exactly was wrong: TypeScript has a sentence for each (src/io/streams/problems.ts).
enum class FormatProblem : uint8_t {
  kNone,
  kEmpty,            // no byte at all
  kEndedEarly,       // the stream ended inside a chunk or before the last one
  kEndedInHeader,    // the stream ended inside the file header
  kNotSparse,        // bad magic
  kVersion,          // a = the major version
  kHeaderSizes,      // file or chunk header size out of range
  kBlockSize,        // a = the block size
  kExactSizeMisfit,  // qvol's exact size does not fit the image's blocks
  kChunkPastImage,   // a = chunk bytes, b = image bytes
  kRawSize,          // a RAW chunk's payload is not its blocks
  kNoWord,           // a = the chunk type (FILL, CRC32) whose 4-byte value is missing
  kDontCarePayload,  // a DONT_CARE chunk with a payload
  kUnknownChunk,     // a = the chunk type
  kCrcMismatch,      // a = the CRC of the data, b = the stream's
  kImageSize,        // a = image bytes, b = the volume's size
  kChunksShort,      // a = bytes the chunks cover, b = image bytes
  kPastEnd,          // bytes after the last chunk (or after a raw stream's size)
  kDataPastSize,     // non-zero bytes in the last block's padding
};

struct FormatIssue {
  StreamError kind = StreamError::kNone;
  FormatProblem problem = FormatProblem::kNone;
  uint64_t at = 0;  // the image byte where the stream went wrong
  uint64_t a = 0, b = 0;
};

// Records a refusal in `issue` and returns -EINVAL, so checks read `return refuse(...)`.
int refuse(FormatIssue* issue, StreamError kind, FormatProblem problem, uint64_t at, uint64_t a = 0,
           uint64_t b = 0);

// The 28-byte file header, `n` of its bytes present: checks it and fills `out` (the
// extension, if any, comes after: read_header_extension).
int parse_file_header(const uint8_t* bytes, size_t n, StreamHeader* out, FormatIssue* issue);

// The first bytes after the 28 defined: qvol's extension when it is there, else nothing.
void read_header_extension(const uint8_t* bytes, size_t n, StreamHeader* out);

// qvol's exact size must fall inside the image's last block.
int check_exact_size(const StreamHeader& h, FormatIssue* issue);

// The image must hold `size` bytes in whole blocks, with less than one block of padding.
int check_image_size(const StreamHeader& h, uint64_t size, FormatIssue* issue);

// What a chunk covers: `len` image bytes, `payload` stream bytes after its header.
struct ChunkSpan {
  uint64_t len = 0;
  uint64_t payload = 0;
};

// Checks a chunk header at image byte `pos` against the file header: known type, inside the
// image, payload as its type demands.
int check_chunk(const StreamHeader& h, const ChunkHeader& c, uint64_t pos, ChunkSpan* span,
                FormatIssue* issue);

}  // namespace qvol::sys
