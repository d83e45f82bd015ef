// libFuzzer target: value blob decoding (ReadBlob, native/block_io.cc: blob header, codec,
// lengths, the lz4/zstd decompressors and the serialized-record check). Input: [u8 ops][value
// stream bytes]. The harness writes the value stream into blocks 1.. of a file (block 0 empty;
// CRCs fixed) and reads blobs at offsets drawn from the input, like the read path does.
#include <vector>

#include "block_io.h"
#include "errors.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace strata;
  if (size < 2) return 0;
  const uint8_t ops = data[0];
  const uint8_t* stream = data + 1;
  const size_t value_bytes = std::min<size_t>(size - 1, 16 * kBlockPayload);
  const size_t value_blocks = (value_bytes + kBlockPayload - 1) / kBlockPayload;
  // Kept across inputs (as the read path keeps its scratch across reads): a fresh zstd context
  // and 140 KB of zeroed file per input were most of an execution's time.
  static std::vector<uint8_t> file;
  static fuzz::MemFile mem;
  static BlobScratch scratch;
  static ByteArena arena;
  file.assign((1 + value_blocks) * kBlockSize, 0);
  arena.clear();
  for (size_t i = 0; i < value_bytes; ++i) file[kBlockSize * (1 + i / kBlockPayload) + i % kBlockPayload] = stream[i];
  fuzz::FixBlockCrcs(file.data(), file.size());
  mem.Reset(file.data(), file.size());
  const int fd = ::dup(mem.fd());
  if (fd < 0) std::abort();
  BlockFile bf(mem.path(), fd, 1, nullptr);
  bf.set_total_blocks(static_cast<uint32_t>(1 + value_blocks));
  fuzz::Rng rng(ops);
  // Walk the stream blob by blob from offset 0 (as Verify does), then a few arbitrary offsets.
  uint64_t offset = 0;
  for (int i = 0; i < 8 + (ops & 7); ++i) {
    try {
      const BlobRef b = ReadBlob(bf, ReadMode::kDirect, value_bytes, offset, scratch, arena);
      offset = b.end;
    } catch (const StrataError&) {
      offset = rng.Range(0, value_bytes);
    }
  }
  return 0;
}
