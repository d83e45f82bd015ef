// libFuzzer target: the value decompressors on their own (native/codec.cc, native/pg/pglz.cc),
// without the blob framing layer_blob puts in front. Input: [u8 mode][u16 BE raw length][stored
// bytes]. Modes: 0 lz4 value (u32 LE size prefix + block), 1 zstd value (one frame), 2 a bare LZ4
// block, 3 pglz (PostgreSQL's full-page-image compression). A decoder must return a fault text or
// produce exactly `raw length` bytes; reads and writes outside the buffers are sanitizer reports.
// Every value that decodes is decoded a second time into a fresh buffer and must match (the
// decoders keep no state between calls that changes their output).
#include <cstring>
#include <vector>

#include "codec.h"
#include "format.h"
#include "pg/pglz.h"

namespace {

const char* Decode(strata::Decompressor& d, uint8_t mode, const uint8_t* src, size_t len, uint8_t* dst, size_t raw) {
  switch (mode % 4) {
    case 0:
      return d.Decompress(strata::kCodecLz4, src, len, dst, raw);
    case 1:
      return d.Decompress(strata::kCodecZstd, src, len, dst, raw);
    case 2:
      return strata::Lz4DecodeBlock(src, len, dst, raw);
    default:
      return strata::pg::PglzDecompress(src, len, dst, raw);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const uint8_t mode = data[0];
  const size_t raw = (size_t{data[1]} << 8) | data[2];
  // Exactly-sized heap buffers, so ASan sees one byte past either end.
  std::vector<uint8_t> stored(data + 3, data + size);
  std::vector<uint8_t> out(raw), again(raw);
  static strata::Decompressor decompressor;
  if (Decode(decompressor, mode, stored.data(), stored.size(), out.data(), raw) != nullptr) return 0;
  if (Decode(decompressor, mode, stored.data(), stored.size(), again.data(), raw) != nullptr) __builtin_trap();
  if (raw > 0 && std::memcmp(out.data(), again.data(), raw) != 0) __builtin_trap();
  return 0;
}
