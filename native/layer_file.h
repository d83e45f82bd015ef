// A layer file as a whole (docs/FORMAT.md, "Layer file"): the summary block, the streaming
// writer, and the opened, validated layer that the delta/image readers work on.
#ifndef STRATA_LAYER_FILE_H_
#define STRATA_LAYER_FILE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "block_io.h"
#include "disk_btree.h"
#include "format.h"
#include "walredo.h"

namespace strata {

class PageCache;

// LSN bounds computed as lsn + 1 must not wrap at 2^64 - 1 (a valid cap LSN), so the read path
// does its LSN range arithmetic in 128 bits.
using WideLsn = unsigned __int128;

struct LayerSummary {
  uint8_t kind = 0;
  uint8_t codec = 0;
  uint8_t key_start[kKeySize] = {};
  uint8_t key_end[kKeySize] = {};
  uint64_t lsn_start = 0;
  uint64_t lsn_end = 0;
  uint32_t value_blk_count = 0;
  uint64_t value_bytes = 0;
  uint32_t index_start_blk = 0;
  uint32_t index_leaf_count = 0;
  uint32_t index_root_blk = 0;
  uint32_t index_blk_count = 0;
  uint8_t index_height = 0;
  uint8_t index_key_size = 0;
  uint64_t entry_count = 0;
  uint32_t total_blocks = 0;
};

// Writes the summary into the payload of `block` (kBlockSize bytes; CRC left to the caller).
void EncodeSummary(const LayerSummary& s, uint8_t* block);
// Parses and validates block 0; returns an empty string or the first rule broken.
std::string DecodeSummary(const uint8_t* block, LayerSummary* out);

struct LayerWriterOptions {
  uint8_t kind = 0;
  uint8_t codec = 0;
  uint8_t key_start[kKeySize] = {};
  uint8_t key_end[kKeySize] = {};
  uint64_t lsn_start = 0;
  uint64_t lsn_end = 0;
};

// Streams one layer file: value blocks are written as they fill, index keys stay in memory
// until Finish() writes the B-tree and then the summary at block 0.
class LayerWriter : private BlockSink {
 public:
  LayerWriter(std::string path, const LayerWriterOptions& opts);
  ~LayerWriter() override;
  LayerWriter(const LayerWriter&) = delete;
  LayerWriter& operator=(const LayerWriter&) = delete;

  // n = will_init_len entries; BAD_ARGUMENT (and nothing written) if anything is malformed.
  void Append(const uint8_t* keys, size_t keys_len, const uint8_t* blobs, size_t blobs_len, const uint8_t* will_init,
              size_t will_init_len);
  // Writes index and summary, fsyncs, closes; returns the file size in bytes.
  uint64_t Finish();
  void Abort();
  // BAD_ARGUMENT once finished or aborted.
  void CheckOpen() const;
  // Moves the exclusive key end recorded in the summary, for a writer (compaction) that learns
  // where its range ends only after its last entry; BAD_ARGUMENT unless above every key appended
  // and above key_start.
  void SetKeyEnd(const uint8_t* key_end);

 private:
  void WriteBlock(uint32_t blkno, uint8_t* block) override;
  void ValidateAppend(const uint8_t* keys, size_t keys_len, const uint8_t* blobs, size_t blobs_len,
                      const uint8_t* will_init, size_t n) const;
  void AppendValueBytes(const uint8_t* data, size_t len);
  // Writes the gathered run of blocks in one pwrite.
  void FlushBatch();
  void CloseFd();

  std::string path_;
  LayerWriterOptions opts_;
  size_t key_size_;
  int fd_ = -1;
  std::vector<uint8_t> block_;       // the value block being filled
  uint64_t value_bytes_ = 0;         // logical length of the value stream so far
  uint32_t next_value_blk_ = kValueStartBlk;
  std::vector<uint8_t> index_keys_;  // every index key, in order
  std::vector<uint64_t> index_values_;
  // Sealed blocks batch_start_, batch_start_ + 1, ... not yet written (as the TS writer batches).
  std::vector<uint8_t> batch_;
  uint32_t batch_start_ = 0;
  uint32_t batch_blocks_ = 0;
  uint64_t unsynced_bytes_ = 0;  // written since writeback was last started
};

// One opened, validated layer file; immutable, so readers on any thread may share it. The file
// stays open until the last owner (the core's handle table, a layer map, an in-flight read) lets go.
class Layer {
 public:
  static std::unique_ptr<Layer> Open(const std::string& path, uint32_t handle, PageCache* cache,
                                     std::shared_ptr<FileHandles> handles = nullptr);

  const LayerSummary& summary() const { return summary_; }
  const BlockFile& file() const { return *file_; }
  const BtreeGeometry& geometry() const { return geometry_; }
  bool is_image() const { return summary_.kind == kLayerKindImage; }
  uint32_t handle() const { return file_->file_id(); }

  // Sorted distinct 18-byte keys in [key_start, key_end), concatenated: one descent to key_start,
  // then the leaves in order.
  // Distinct keys in [key_start, key_end), ascending, at most max_keys of them (a caller pages
  // through a large layer by asking again from the key after the last one).
  std::vector<uint8_t> Keys(const uint8_t* key_start, const uint8_t* key_end, uint32_t max_keys) const;
  // Full check of every block, the index and every blob; returns the entry count.
  uint64_t Verify() const;

 private:
  Layer(std::unique_ptr<BlockFile> file, const LayerSummary& summary);

  std::unique_ptr<BlockFile> file_;
  LayerSummary summary_;
  BtreeGeometry geometry_;
};

// A record collected for reconstruction: in the read plan (`plan_data`) or in the arena.
struct ChainEntry {
  const uint8_t* plan_data;
  size_t arena_offset;
  size_t len;
};

// Buffers reused by every request and every getPages call, so cached reads do not allocate.
struct ReadScratch {
  ReadMode mode = ReadMode::kCached;
  uint8_t node[kBlockSize];
  uint8_t search_key[kMaxIndexKeySize];
  BlobScratch blob;
  ByteArena arena;  // records read from layers
  std::vector<ChainEntry> chain;
  std::vector<RecordView> views;
  std::vector<uint64_t> leaf_values;  // a delta chain's leaf values in one leaf (CollectDeltaChain)

  void Reset() {
    blob.ref.Release();
    arena.clear();
    chain.clear();
  }
};

// Reads the blob behind a leaf value into the chain; CORRUPT_LAYER if its will_init bit
// disagrees with the record. Returns whether the record initializes the page.
// Leaves the blob's last value block held in s.blob.ref (see ReadBlob): the caller releases it.
bool PushLayerRecord(const Layer& layer, uint64_t leaf_value, ReadScratch& s);

}  // namespace strata

#endif  // STRATA_LAYER_FILE_H_
