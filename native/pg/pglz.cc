// pglz decompression, bounds-checked. Accepts exactly what PostgreSQL 15's pglz_decompress accepts
// with check_complete = true, and produces the same bytes; where PostgreSQL reads a tag's bytes
// before checking they exist, this checks first (same verdict, no read past the input).
#include "pglz.h"

#include <cstring>

namespace strata {
namespace pg {
namespace {

constexpr size_t kMinMatch = 3;
constexpr size_t kLenNibbleExtended = 15;  // nibble value whose length continues in a third byte
constexpr size_t kItemsPerControl = 8;

// Copies a match of `len` bytes from `off` bytes back; `off` ≤ bytes already written. Overlapping
// copies repeat the last `off` bytes, as PostgreSQL's byte-by-byte loop does.
void CopyMatch(uint8_t* dp, size_t off, size_t len) {
  while (off < len) {
    std::memcpy(dp, dp - off, off);  // [dp - off, dp) and [dp, dp + off) do not overlap
    dp += off;
    len -= off;
    off += off;  // what was just written continues the period: twice the distance holds the same bytes
  }
  std::memcpy(dp, dp - off, len);
}

}  // namespace

const char* PglzDecompress(const uint8_t* src, size_t src_len, uint8_t* dst, size_t dst_len) {
  const uint8_t* sp = src;
  const uint8_t* const send = src + src_len;
  uint8_t* dp = dst;
  uint8_t* const dend = dst + dst_len;
  while (sp < send && dp < dend) {
    uint8_t ctrl = *sp++;
    for (size_t item = 0; item < kItemsPerControl && sp < send && dp < dend; ++item, ctrl >>= 1) {
      if ((ctrl & 1) == 0) {
        *dp++ = *sp++;
        continue;
      }
      if (send - sp < 2) return "pglz: match tag runs past the input";
      size_t len = (sp[0] & 0x0f) + kMinMatch;
      const size_t off = (size_t{sp[0] & 0xf0u} << 4) | sp[1];
      sp += 2;
      if (len == kLenNibbleExtended + kMinMatch) {
        if (sp == send) return "pglz: match length runs past the input";
        len += *sp++;
      }
      if (off == 0 || off > static_cast<size_t>(dp - dst)) return "pglz: match offset outside the output";
      const size_t room = static_cast<size_t>(dend - dp);
      if (len > room) len = room;  // PostgreSQL clips a match at the end of the output
      CopyMatch(dp, off, len);
      dp += len;
    }
  }
  if (dp != dend) return "pglz: decompressed length differs from the expected length";
  if (sp != send) return "pglz: input left over after the expected length";
  return nullptr;
}

}  // namespace pg
}  // namespace strata
