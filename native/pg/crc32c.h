// CRC-32C (Castagnoli; reflected polynomial 0x82F63B78), the checksum of every PostgreSQL WAL
// record (pg_crc32c.h). The register is exposed so that a caller can checksum discontiguous
// parts, as PostgreSQL does for a record (payload first, then the header up to xl_crc):
//   uint32_t r = kCrc32cInit; r = Crc32cUpdate(r, a, n); r = Crc32cUpdate(r, b, m); crc = Crc32cFinish(r);
// On x86-64 CPUs with SSE4.2 (checked at run time) the `crc32` instruction does the work;
// elsewhere, slicing-by-8 tables.
#ifndef STRATA_PG_CRC32C_H_
#define STRATA_PG_CRC32C_H_

#include <cstddef>
#include <cstdint>

namespace strata {
namespace pg {

constexpr uint32_t kCrc32cInit = 0xffffffffu;

// Advances the (pre-inverted) register over `len` bytes.
uint32_t Crc32cUpdate(uint32_t reg, const uint8_t* data, size_t len);

// The same with the tables only, whatever the CPU (for tests against the instruction path).
uint32_t Crc32cUpdateTables(uint32_t reg, const uint8_t* data, size_t len);

inline uint32_t Crc32cFinish(uint32_t reg) { return ~reg; }

// The CRC-32C of `data`, continuing from a previous result `crc` (0 to start), zlib-style.
inline uint32_t Crc32c(const uint8_t* data, size_t len, uint32_t crc = 0) {
  return Crc32cFinish(Crc32cUpdate(~crc, data, len));
}

// Whether Crc32cUpdate uses the SSE4.2 instruction on this CPU.
bool Crc32cHasHardware();

}  // namespace pg
}  // namespace strata

#endif  // STRATA_PG_CRC32C_H_
