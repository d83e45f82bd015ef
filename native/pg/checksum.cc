#include "checksum.h"

#include <cstring>

#include "bufpage.h"
#include "pg_format.h"

namespace strata {
namespace pg {
namespace {

constexpr int kNSums = 32;
constexpr uint32_t kFnvPrime = 16777619;
constexpr size_t kWordsPerRound = kNSums;
constexpr size_t kRounds = kBlckSz / (sizeof(uint32_t) * kNSums);

constexpr uint32_t kChecksumBaseOffsets[kNSums] = {
    0x5B1F36E9, 0xB8525960, 0x02AB50AA, 0x1DE66D2A, 0x79FF467A, 0x9BB9F8A3, 0x217E7CD2, 0x83E13D2C,
    0xF8D4474F, 0xE39EB970, 0x42C6AE16, 0x993216FA, 0x7B093B5D, 0x98DAFF3C, 0xF718902A, 0x0B1C9CDB,
    0xE58F764B, 0x187636BC, 0x5D7B3BB1, 0xE73DE7DE, 0x92BEC979, 0xCCA6C0B2, 0x304A0979, 0x85AA43D4,
    0x783125BB, 0x6CA8EAA2, 0xE407EAC6, 0x4B5CFC3E, 0x9FBF8C76, 0x15CA20BE, 0xF2CA9FD3, 0x959BD756,
};

inline uint32_t ChecksumComp(uint32_t checksum, uint32_t value) {
  const uint32_t tmp = checksum ^ value;
  return tmp * kFnvPrime ^ (tmp >> 17);
}

}  // namespace

uint16_t PgChecksumPage(const uint8_t* page, uint32_t blkno) {
  uint32_t sums[kNSums];
  std::memcpy(sums, kChecksumBaseOffsets, sizeof(sums));
  for (size_t i = 0; i < kRounds; ++i) {
    const uint8_t* row = page + i * kWordsPerRound * sizeof(uint32_t);
    for (int j = 0; j < kNSums; ++j) {
      uint32_t word = LoadLe32(row + j * sizeof(uint32_t));
      // pd_checksum (bytes 8..9, the low half of word 2 in row 0) counts as zero.
      if (i == 0 && j == page_off::kChecksum / sizeof(uint32_t)) word &= 0xFFFF0000u;
      sums[j] = ChecksumComp(sums[j], word);
    }
  }
  for (int round = 0; round < 2; ++round) {
    for (int j = 0; j < kNSums; ++j) sums[j] = ChecksumComp(sums[j], 0);
  }
  uint32_t result = 0;
  for (int j = 0; j < kNSums; ++j) result ^= sums[j];
  result ^= blkno;
  return static_cast<uint16_t>(result % 65535 + 1);
}

}  // namespace pg
}  // namespace strata
