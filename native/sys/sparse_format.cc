#include "sparse_format.h"

#include <errno.h>

#include <cstring>

namespace qvol::sys {

int refuse(FormatIssue* issue, StreamError kind, FormatProblem problem, uint64_t at, uint64_t a,
           uint64_t b) {
  *issue = {kind, problem, at, a, b};
  return -EINVAL;
}

int parse_file_header(const uint8_t* bytes, size_t n, StreamHeader* out, FormatIssue* issue) {
  if (n == 0) return refuse(issue, StreamError::kTruncated, FormatProblem::kEmpty, 0);
  SparseHeader h;
  memset(&h, 0, sizeof h);
  memcpy(&h, bytes, n < sizeof h ? n : sizeof h);
  if (n < sizeof h || h.magic != kSparseMagic)
    return refuse(issue, StreamError::kCorrupt, FormatProblem::kNotSparse, 0);
  if (h.major_version != kSparseMajor)
    return refuse(issue, StreamError::kCorrupt, FormatProblem::kVersion, 0, h.major_version);
  if (h.file_hdr_sz < kFileHeaderSize || h.chunk_hdr_sz < kChunkHeaderSize || h.chunk_hdr_sz > 64)
    return refuse(issue, StreamError::kCorrupt, FormatProblem::kHeaderSizes, 0);
  if (h.blk_sz == 0 || h.blk_sz % 4 != 0 || h.blk_sz > (64u << 20))
    return refuse(issue, StreamError::kCorrupt, FormatProblem::kBlockSize, 0, h.blk_sz);
  *out = StreamHeader{};
  out->block_size = h.blk_sz;
  out->total_blocks = h.total_blks;
  out->total_chunks = h.total_chunks;
  out->chunk_header_size = h.chunk_hdr_sz;
  out->header_bytes = h.file_hdr_sz;
  return 0;
}

void read_header_extension(const uint8_t* bytes, size_t n, StreamHeader* out) {
  if (n < kQvolExtSize) return;
  QvolHeaderExt ext;
  memcpy(&ext, bytes, sizeof ext);
  if (ext.magic == kQvolExtMagic) out->exact_size = ext.exact_size;
}

int check_exact_size(const StreamHeader& h, FormatIssue* issue) {
  uint64_t image = static_cast<uint64_t>(h.total_blocks) * h.block_size;
  if (h.exact_size > image || (h.exact_size != 0 && image - h.exact_size >= h.block_size))
    return refuse(issue, StreamError::kCorrupt, FormatProblem::kExactSizeMisfit, 0);
  return 0;
}

int check_image_size(const StreamHeader& h, uint64_t size, FormatIssue* issue) {
  uint64_t image = static_cast<uint64_t>(h.total_blocks) * h.block_size;
  if (image < size || image - size >= h.block_size)
    return refuse(issue, StreamError::kSizeMismatch, FormatProblem::kImageSize, 0, image, size);
  return 0;
}

int check_chunk(const StreamHeader& h, const ChunkHeader& c, uint64_t pos, ChunkSpan* span,
                FormatIssue* issue) {
  uint64_t len = static_cast<uint64_t>(c.chunk_sz) * h.block_size;
  uint64_t image = static_cast<uint64_t>(h.total_blocks) * h.block_size;
  // A total_sz smaller than the header itself can carry no payload: no type accepts it.
  uint64_t payload =
      c.total_sz >= h.chunk_header_size ? c.total_sz - h.chunk_header_size : UINT64_MAX;
  switch (c.chunk_type) {
    case kChunkRaw:
    case kChunkFill:
    case kChunkDontCare:
      if (pos + len > image)
        return refuse(issue, StreamError::kCorrupt, FormatProblem::kChunkPastImage, pos, len,
                      image);
      break;
    case kChunkCrc32:
      len = 0;  // covers no image bytes, whatever chunk_sz says
      break;
    default:
      return refuse(issue, StreamError::kCorrupt, FormatProblem::kUnknownChunk, pos, c.chunk_type);
  }
  if (c.chunk_type == kChunkRaw && payload != len)
    return refuse(issue, StreamError::kCorrupt, FormatProblem::kRawSize, pos);
  if ((c.chunk_type == kChunkFill || c.chunk_type == kChunkCrc32) && payload != 4)
    return refuse(issue, StreamError::kCorrupt, FormatProblem::kNoWord, pos, c.chunk_type);
  if (c.chunk_type == kChunkDontCare && payload != 0)
    return refuse(issue, StreamError::kCorrupt, FormatProblem::kDontCarePayload, pos);
  *span = {len, payload};
  return 0;
}

}  // namespace qvol::sys
