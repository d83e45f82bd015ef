// libFuzzer target: a whole layer file through the readers — Layer::Open (summary, geometry),
// the B-tree cursor (SeekLE / Next / Prev over nodes read through the page cache), Keys(),
// PushLayerRecord on the values found, and Verify(). The input is the file; the harness pads it
// to whole 8 KB blocks (at most 64), sets the summary's total_blocks to match when the last input
// byte is odd, and rewrites every block CRC so mutations reach the parsers. Corruption must come
// out as StrataError; anything else (a crash, a sanitizer report, another exception) is a bug.
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "errors.h"
#include "fuzz_util.h"
#include "layer_file.h"
#include "page_cache.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace strata;
  constexpr size_t kMaxBlocks = 64;
  if (size == 0) return 0;
  const size_t blocks = std::min(kMaxBlocks, (size + kBlockSize - 1) / kBlockSize);
  // The file buffer, the memfd and the read scratch (with its zstd context) are kept across
  // inputs, as a reader keeps its scratch across reads; only the layer is new per input.
  static std::vector<uint8_t> file;
  static fuzz::MemFile mem;
  static ReadScratch s;
  file.assign(blocks * kBlockSize, 0);
  std::memcpy(file.data(), data, std::min(size, file.size()));
  if ((data[size - 1] & 1) != 0) StoreBe32(file.data() + summary_off::kTotalBlocks, static_cast<uint32_t>(blocks));
  fuzz::FixBlockCrcs(file.data(), file.size());
  static PageCache cache(32 * kBlockSize);
  static uint32_t next_id = 1;
  mem.Reset(file.data(), file.size());
  s.Reset();
  try {
    std::unique_ptr<Layer> layer = Layer::Open(mem.path(), next_id++, &cache);
    BtreeCursor cursor(layer->file(), layer->geometry(), ReadMode::kCached, s.node);
    uint8_t key[kMaxIndexKeySize] = {};
    for (size_t probe = 0; probe < 4; ++probe) {
      for (size_t i = 0; i < layer->geometry().key_size; ++i) key[i] = data[(probe * 31 + i) % size];
      if (cursor.SeekLE(key)) {
        s.Reset();
        PushLayerRecord(*layer, cursor.value(), s);
        cursor.Next();
        cursor.Prev();
      }
    }
    cursor.Release();
    layer->Keys(layer->summary().key_start, layer->summary().key_end, UINT32_MAX);
    // From a key taken from the input, in a batch whose size the input also picks (key streaming).
    layer->Keys(key, layer->summary().key_end, 1u + data[0] % 8u);
    layer->Verify();
  } catch (const StrataError&) {
  }
  s.Reset();  // unpins the value block it may still hold in the cache
  return 0;
}
