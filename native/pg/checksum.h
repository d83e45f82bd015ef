// PostgreSQL's data page checksum (src/include/storage/checksum_impl.h, REL_15_STABLE): 32
// interleaved FNV-1a-like sums over the page as u32 words, two rounds of zero mixing, an XOR fold,
// the block number mixed in, and a result in 1..65535.
#ifndef STRATA_PG_CHECKSUM_H_
#define STRATA_PG_CHECKSUM_H_

#include <cstdint>

namespace strata {
namespace pg {

// pg_checksum_page: the checksum of an 8192-byte page for block `blkno`, computed as if
// pd_checksum were zero (the page is not modified). Only meaningful for initialized pages.
uint16_t PgChecksumPage(const uint8_t* page, uint32_t blkno);

}  // namespace pg
}  // namespace strata

#endif  // STRATA_PG_CHECKSUM_H_
