// CRC-32C: the SSE4.2 `crc32` instruction 8 bytes at a time when the CPU has it (checked once at
// run time), slicing-by-8 tables otherwise and in builds for other architectures.
#include "crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define STRATA_CRC32C_SSE42 1
#endif

namespace strata {
namespace pg {
namespace {

constexpr uint32_t kReflectedPoly = 0x82f63b78;
constexpr size_t kSlices = 8;
using CrcTables = std::array<std::array<uint32_t, 256>, kSlices>;

constexpr CrcTables MakeTables() {
  CrcTables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int bit = 0; bit < 8; ++bit) c = (c & 1) ? (c >> 1) ^ kReflectedPoly : c >> 1;
    t[0][i] = c;
  }
  // t[k][i] is the register after byte i followed by k zero bytes.
  for (size_t k = 1; k < kSlices; ++k) {
    for (size_t i = 0; i < 256; ++i) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
  }
  return t;
}

constexpr CrcTables kTables = MakeTables();

inline uint32_t LoadLe32(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}

#ifdef STRATA_CRC32C_SSE42
__attribute__((target("sse4.2"))) uint32_t UpdateSse42(uint32_t reg, const uint8_t* data, size_t len) {
  uint64_t r = reg;
  while (len >= 8) {
    uint64_t word;
    std::memcpy(&word, data, sizeof(word));  // unaligned load; x86 is little-endian like the CRC
    r = _mm_crc32_u64(r, word);
    data += 8;
    len -= 8;
  }
  uint32_t r32 = static_cast<uint32_t>(r);
  while (len-- > 0) r32 = _mm_crc32_u8(r32, *data++);
  return r32;
}

bool DetectSse42() {
  static const bool has = __builtin_cpu_supports("sse4.2");
  return has;
}
#endif

}  // namespace

uint32_t Crc32cUpdateTables(uint32_t reg, const uint8_t* data, size_t len) {
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

uint32_t Crc32cUpdate(uint32_t reg, const uint8_t* data, size_t len) {
#ifdef STRATA_CRC32C_SSE42
  if (DetectSse42()) return UpdateSse42(reg, data, len);
#endif
  return Crc32cUpdateTables(reg, data, len);
}

bool Crc32cHasHardware() {
#ifdef STRATA_CRC32C_SSE42
  return DetectSse42();
#else
  return false;
#endif
}

}  // namespace pg
}  // namespace strata
