// CRC-32 with the zlib / IEEE 802.3 polynomial; equals Node's zlib.crc32.
#ifndef STRATA_CRC32_H_
#define STRATA_CRC32_H_

#include <cstddef>
#include <cstdint>

namespace strata {

// `crc` continues a previous computation (0 to start), as zlib.crc32(data, value) does.
uint32_t Crc32(const uint8_t* data, size_t len, uint32_t crc = 0);

}  // namespace strata

#endif  // STRATA_CRC32_H_
