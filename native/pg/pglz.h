// Decompression of PostgreSQL's pglz format (src/common/pg_lzcompress.c), which PostgreSQL 15
// uses for full-page images when wal_compression = pglz (bimg_info BKPIMAGE_COMPRESS_PGLZ).
//
// Format: a control byte announces the next 8 items, lowest bit first. A 0 bit is one literal
// byte. A 1 bit is a back-reference tag of 2 or 3 bytes: length - 3 in the low nibble of the first
// byte (18 means "add the third byte"), offset in the high nibble (bits 8..11) and the second byte
// (bits 0..7). A match copies `length` bytes from `offset` bytes back in the output, byte by byte
// (it may overlap what it writes).
#ifndef STRATA_PG_PGLZ_H_
#define STRATA_PG_PGLZ_H_

#include <cstddef>
#include <cstdint>

namespace strata {
namespace pg {

// Decompresses `src` into exactly `dst_len` bytes at `dst`, consuming all of `src` (PostgreSQL's
// pglz_decompress with check_complete = true). Never reads or writes outside the two buffers.
// Returns nullptr on success or a description of the fault.
const char* PglzDecompress(const uint8_t* src, size_t src_len, uint8_t* dst, size_t dst_len);

}  // namespace pg
}  // namespace strata

#endif  // STRATA_PG_PGLZ_H_
