#include "codec.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "format.h"
#include "zstd.h"

namespace strata {
namespace {

constexpr size_t kLz4SizePrefix = 4;  // lz4_flex "size-prepended" form: u32 LE raw size
constexpr size_t kLz4MinMatch = 4;
constexpr uint8_t kLz4LenNibbleMax = 15;
constexpr uint8_t kLz4LenByteMore = 255;
constexpr size_t kLz4OffsetSize = 2;

// Reads the LZ4 length extension bytes that follow a nibble of 15; false if input runs out.
bool ReadLz4Length(const uint8_t*& ip, const uint8_t* iend, size_t& len) {
  uint8_t b;
  do {
    if (ip >= iend) return false;
    b = *ip++;
    len += b;
  } while (b == kLz4LenByteMore);
  return true;
}

}  // namespace

namespace {

// Fast paths copy in fixed-size steps that may run past the bytes they need ("wild" copies), so
// they are taken only while the buffers have that much room left; near the ends the exact loop
// takes over. Every length and offset from the stream is checked before it is used.
constexpr size_t kWildCopy = 16;

// Copies a match of `len` bytes starting `offset` bytes back from `op`, with len ≤ room(op).
// `room` is how many bytes may be written from `op` (to the end of the output).
void CopyMatch(uint8_t* op, size_t offset, size_t len, size_t room) {
  const uint8_t* from = op - offset;
  if (offset >= kWildCopy && room >= len + kWildCopy) {
    // Source and destination are ≥ 16 apart, so each 16-byte step reads bytes already final.
    for (size_t done = 0; done < len; done += kWildCopy) std::memcpy(op + done, from + done, kWildCopy);
    return;
  }
  if (offset >= len) {
    std::memcpy(op, from, len);
    return;
  }
  if (offset == 1) {
    std::memset(op, *from, len);
    return;
  }
  // Overlapping: the output repeats with period `offset`. [from, op + done) always holds a whole
  // number of periods, so copying that whole span forward doubles the filled part each step.
  size_t done = 0;
  while (done < len) {
    const size_t chunk = std::min(static_cast<size_t>(op + done - from), len - done);
    std::memcpy(op + done, from, chunk);
    done += chunk;
  }
}

}  // namespace

const char* Lz4DecodeBlock(const uint8_t* src, size_t src_len, uint8_t* dst, size_t dst_len) {
  const uint8_t* ip = src;
  const uint8_t* const iend = src + src_len;
  uint8_t* op = dst;
  uint8_t* const oend = dst + dst_len;
  while (ip < iend) {
    const uint8_t token = *ip++;
    size_t lit_len = token >> 4;
    if (lit_len != kLz4LenNibbleMax && static_cast<size_t>(iend - ip) >= kWildCopy &&
        static_cast<size_t>(oend - op) >= kWildCopy) {
      std::memcpy(op, ip, kWildCopy);  // short literal run: one fixed-size copy covers it
    } else {
      if (lit_len == kLz4LenNibbleMax && !ReadLz4Length(ip, iend, lit_len)) return "lz4: truncated literal length";
      if (lit_len > static_cast<size_t>(iend - ip)) return "lz4: literals run past the input";
      if (lit_len > static_cast<size_t>(oend - op)) return "lz4: literals overflow the output";
      // memcpy must not see a null pointer even for 0 bytes (an empty output may have none).
      if (lit_len > 0) std::memcpy(op, ip, lit_len);
    }
    ip += lit_len;
    op += lit_len;
    if (ip == iend) break;  // the last sequence carries literals only

    if (static_cast<size_t>(iend - ip) < kLz4OffsetSize) return "lz4: truncated match offset";
    const size_t offset = size_t{ip[0]} | (size_t{ip[1]} << 8);
    ip += kLz4OffsetSize;
    if (offset == 0 || offset > static_cast<size_t>(op - dst)) return "lz4: match offset outside the output";
    size_t match_len = token & 0x0f;
    if (match_len == kLz4LenNibbleMax && !ReadLz4Length(ip, iend, match_len)) return "lz4: truncated match length";
    match_len += kLz4MinMatch;
    const size_t room = static_cast<size_t>(oend - op);
    if (match_len > room) return "lz4: match overflows the output";
    CopyMatch(op, offset, match_len, room);
    op += match_len;
  }
  return op == oend ? nullptr : "lz4: decompressed length differs from the header";
}

Decompressor::Decompressor() : dctx_(ZSTD_createDCtx()) {
  if (dctx_ == nullptr) throw std::bad_alloc();
}

Decompressor::~Decompressor() { ZSTD_freeDCtx(dctx_); }

const char* Decompressor::DecompressZstd(const uint8_t* stored, size_t stored_len, uint8_t* dst, size_t raw_len) {
  const unsigned long long content = ZSTD_getFrameContentSize(stored, stored_len);
  if (content == ZSTD_CONTENTSIZE_ERROR) return "zstd: not a zstd frame";
  if (content == ZSTD_CONTENTSIZE_UNKNOWN) return "zstd: frame does not record its content size";
  if (content != raw_len) return "zstd: frame content size differs from the header";
  const size_t got = ZSTD_decompressDCtx(dctx_, dst, raw_len, stored, stored_len);
  if (ZSTD_isError(got)) return "zstd: corrupt frame";
  return got == raw_len ? nullptr : "zstd: decompressed length differs from the header";
}

const char* Decompressor::Decompress(uint8_t codec, const uint8_t* stored, size_t stored_len, uint8_t* dst,
                                     size_t raw_len) {
  switch (codec) {
    case kCodecLz4: {
      if (stored_len < kLz4SizePrefix) return "lz4: missing size prefix";
      const uint32_t prefix = uint32_t{stored[0]} | (uint32_t{stored[1]} << 8) | (uint32_t{stored[2]} << 16) |
                              (uint32_t{stored[3]} << 24);
      if (prefix != raw_len) return "lz4: size prefix does not match the blob header";
      return Lz4DecodeBlock(stored + kLz4SizePrefix, stored_len - kLz4SizePrefix, dst, raw_len);
    }
    case kCodecZstd:
      return DecompressZstd(stored, stored_len, dst, raw_len);
    default:
      return "unknown codec";
  }
}

}  // namespace strata
