// Decompression of blob payloads (the writer side lives in lib/core/compress.ts so both cores write
// identical bytes). Errors are returned as text so the caller can name the file and block.
#ifndef STRATA_CODEC_H_
#define STRATA_CODEC_H_

#include <cstddef>
#include <cstdint>

struct ZSTD_DCtx_s;

namespace strata {

// Decodes one raw LZ4 block into exactly `dst_len` bytes. Every read and write is
// bounds-checked; returns nullptr on success or a description of the fault.
const char* Lz4DecodeBlock(const uint8_t* src, size_t src_len, uint8_t* dst, size_t dst_len);

// Holds a reused zstd context, so decompressing a value allocates nothing.
class Decompressor {
 public:
  Decompressor();
  ~Decompressor();
  Decompressor(const Decompressor&) = delete;
  Decompressor& operator=(const Decompressor&) = delete;

  // Decompresses `stored` (the blob bytes after the header) into exactly `raw_len` bytes at `dst`.
  // lz4: u32 LE size prefix then one block; zstd: one frame with its content size.
  // Returns nullptr on success or a description of the fault.
  const char* Decompress(uint8_t codec, const uint8_t* stored, size_t stored_len, uint8_t* dst, size_t raw_len);

 private:
  const char* DecompressZstd(const uint8_t* stored, size_t stored_len, uint8_t* dst, size_t raw_len);
  ZSTD_DCtx_s* dctx_;
};

}  // namespace strata

#endif  // STRATA_CODEC_H_
