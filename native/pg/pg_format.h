// Little-endian byte access and the PostgreSQL 15 constants the redo code shares (page size,
// alignment, resource manager ids). PostgreSQL structures are little-endian on the machines it runs
// on here; docs/POSTGRES.md says so for every format this directory reads.
#ifndef STRATA_PG_PG_FORMAT_H_
#define STRATA_PG_PG_FORMAT_H_

#include <cstddef>
#include <cstdint>

namespace strata {
namespace pg {

constexpr size_t kBlckSz = 8192;          // BLCKSZ
constexpr size_t kMaxAlign = 8;           // MAXIMUM_ALIGNOF on x86-64
constexpr uint32_t kInvalidBlockNumber = 0xFFFFFFFF;
constexpr uint8_t kMaxBlockId = 32;  // XLR_MAX_BLOCK_ID
constexpr uint32_t kInvalidTransactionId = 0;
constexpr uint32_t kFrozenTransactionId = 2;
constexpr uint32_t kFirstNormalTransactionId = 3;
constexpr uint32_t kFirstCommandId = 0;

// Fork numbers (common/relpath.h).
constexpr uint8_t kMainForkNum = 0;
constexpr uint8_t kFsmForkNum = 1;
constexpr uint8_t kVisibilityMapForkNum = 2;
constexpr uint8_t kInitForkNum = 3;

// Resource manager ids (access/rmgrlist.h) and Strata's own (docs/POSTGRES.md, "rmgr 255").
constexpr uint8_t kRmXlogId = 0;
constexpr uint8_t kRmHeap2Id = 9;
constexpr uint8_t kRmHeapId = 10;
constexpr uint8_t kRmBtreeId = 11;
constexpr uint8_t kRmSeqId = 15;
constexpr uint8_t kRmStrataId = 255;

inline constexpr size_t MaxAlign(size_t n) { return (n + kMaxAlign - 1) & ~(kMaxAlign - 1); }
inline constexpr size_t ShortAlign(size_t n) { return (n + 1) & ~size_t{1}; }

inline uint16_t LoadLe16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline uint32_t LoadLe32(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}
inline uint64_t LoadLe64(const uint8_t* p) { return uint64_t{LoadLe32(p)} | (uint64_t{LoadLe32(p + 4)} << 32); }
inline void StoreLe16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
inline void StoreLe32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}

}  // namespace pg
}  // namespace strata

#endif  // STRATA_PG_PG_FORMAT_H_
