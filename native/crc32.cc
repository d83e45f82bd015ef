// CRC-32 of every block read from disk. On x86-64 with PCLMULQDQ (checked at run time) the bulk
// is folded with carry-less multiplies; elsewhere, and for short inputs and tails, slicing-by-8
// (eight table lookups per 8 bytes). A block miss then costs little beside its pread.
#include "crc32.h"

#include <array>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace strata {
namespace {

constexpr uint32_t kReflectedPoly = 0xedb88320;
constexpr size_t kSlices = 8;
using CrcTables = std::array<std::array<uint32_t, 256>, kSlices>;

constexpr CrcTables MakeTables() {
  CrcTables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int bit = 0; bit < 8; ++bit) c = (c & 1) ? (c >> 1) ^ kReflectedPoly : c >> 1;
    t[0][i] = c;
  }
  // t[k][i] is the CRC of byte i followed by k zero bytes.
  for (size_t k = 1; k < kSlices; ++k) {
    for (size_t i = 0; i < 256; ++i) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
  }
  return t;
}

constexpr CrcTables kTables = MakeTables();

inline uint32_t LoadLe32(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}

// The CRC register (pre-/post-inversion left to the caller) advanced over `len` bytes.
uint32_t UpdateTables(uint32_t reg, const uint8_t* data, size_t len) {
  while (len >= kSlices) {
    const uint32_t lo = LoadLe32(data) ^ reg;
    const uint32_t hi = LoadLe32(data + 4);
    reg = kTables[7][lo & 0xff] ^ kTables[6][(lo >> 8) & 0xff] ^ kTables[5][(lo >> 16) & 0xff] ^
          kTables[4][lo >> 24] ^ kTables[3][hi & 0xff] ^ kTables[2][(hi >> 8) & 0xff] ^
          kTables[1][(hi >> 16) & 0xff] ^ kTables[0][hi >> 24];
    data += kSlices;
    len -= kSlices;
  }
  while (len-- > 0) reg = (reg >> 8) ^ kTables[0][(reg ^ *data++) & 0xff];
  return reg;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define STRATA_CRC32_CLMUL 1

// Carry-less-multiply folding (Intel, "Fast CRC Computation for Generic Polynomials Using
// PCLMULQDQ", 2009): four 128-bit lanes are folded 512 bits ahead, then into one lane, then 16
// bytes at a time; the last lane is reduced with the tables. Constants are x^k mod P for the
// bit-reflected polynomial, k = 4·128 ± 32 and 128 ± 32 (as in Linux's crc32-pclmul).
constexpr uint64_t kFold512Lo = 0x154442bd4;
constexpr uint64_t kFold512Hi = 0x1c6e41596;
constexpr uint64_t kFold128Lo = 0x1751997d0;
constexpr uint64_t kFold128Hi = 0x0ccaa009e;
constexpr size_t kLane = 16;
constexpr size_t kClmulMinLen = 4 * kLane;

__attribute__((target("pclmul,sse2"))) inline __m128i Fold(__m128i x, __m128i k, __m128i next) {
  return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11)), next);
}

__attribute__((target("pclmul,sse2"))) inline __m128i Load(const uint8_t* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}

// Advances `reg` over the longest prefix of whole 16-byte lanes (len ≥ kClmulMinLen); returns
// the register and sets *done to the bytes consumed.
__attribute__((target("pclmul,sse2"))) uint32_t UpdateClmul(uint32_t reg, const uint8_t* p, size_t len, size_t* done) {
  const uint8_t* const start = p;
  __m128i x1 = _mm_xor_si128(Load(p), _mm_cvtsi32_si128(static_cast<int>(reg)));
  __m128i x2 = Load(p + kLane), x3 = Load(p + 2 * kLane), x4 = Load(p + 3 * kLane);
  p += kClmulMinLen;
  len -= kClmulMinLen;
  const __m128i k512 = _mm_set_epi64x(static_cast<int64_t>(kFold512Hi), static_cast<int64_t>(kFold512Lo));
  while (len >= kClmulMinLen) {
    x1 = Fold(x1, k512, Load(p));
    x2 = Fold(x2, k512, Load(p + kLane));
    x3 = Fold(x3, k512, Load(p + 2 * kLane));
    x4 = Fold(x4, k512, Load(p + 3 * kLane));
    p += kClmulMinLen;
    len -= kClmulMinLen;
  }
  const __m128i k128 = _mm_set_epi64x(static_cast<int64_t>(kFold128Hi), static_cast<int64_t>(kFold128Lo));
  x1 = Fold(x1, k128, x2);
  x1 = Fold(x1, k128, x3);
  x1 = Fold(x1, k128, x4);
  while (len >= kLane) {
    x1 = Fold(x1, k128, Load(p));
    p += kLane;
    len -= kLane;
  }
  // The folded lane, read as 16 message bytes, has the CRC of everything consumed so far.
  alignas(16) uint8_t lane[kLane];
  _mm_store_si128(reinterpret_cast<__m128i*>(lane), x1);
  *done = static_cast<size_t>(p - start);
  return UpdateTables(0, lane, kLane);
}

bool HasClmul() {
  static const bool has = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse2");
  return has;
}
#endif

}  // namespace

uint32_t Crc32(const uint8_t* data, size_t len, uint32_t crc) {
  uint32_t reg = ~crc;
#ifdef STRATA_CRC32_CLMUL
  if (len >= kClmulMinLen && HasClmul()) {
    size_t done = 0;
    reg = UpdateClmul(reg, data, len, &done);
    data += done;
    len -= done;
  }
#endif
  return ~UpdateTables(reg, data, len);
}

}  // namespace strata
