// Static B+-tree over fixed-size keys, one node per block (docs/FORMAT.md, "B-tree index"):
// built bottom-up from sorted input, leaves contiguous so a cursor steps between neighbours
// by block number.
#ifndef STRATA_DISK_BTREE_H_
#define STRATA_DISK_BTREE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "block_io.h"
#include "format.h"

namespace strata {

// Receives finished blocks from a builder; the payload is filled, the CRC is the sink's job.
class BlockSink {
 public:
  virtual ~BlockSink() = default;
  virtual void WriteBlock(uint32_t blkno, uint8_t* block) = 0;
};

struct BtreeShape {
  uint32_t leaf_count = 0;
  uint32_t blk_count = 0;
  uint32_t root_blk = 0;
  uint8_t height = 0;
};

// The tree the builder makes over `entry_count` entries: its shape follows from the count alone,
// so a reader can check that every node it loads is exactly the one the builder put there.
struct BtreeGeometry {
  uint32_t index_start = 0;
  size_t key_size = 0;
  size_t fanout = 0;
  uint8_t height = 0;
  uint64_t entry_count = 0;
  // Per level, leaves first: absolute first block, node count, entries held.
  std::vector<uint64_t> level_start, level_nodes, level_entries;

  static BtreeGeometry For(uint64_t entry_count, size_t key_size, uint32_t index_start);
  uint64_t leaf_count() const { return level_nodes[0]; }
  uint64_t blk_count() const { return level_start.back() + 1 - index_start; }
  uint64_t root_blk() const { return level_start.back(); }
};

// Writes the tree for `n` entries (keys strictly increasing, `key_size` bytes each) into blocks
// first_blk, first_blk + 1, ...; the root is the last block written. n == 0 gives one empty leaf.
BtreeShape BuildBtree(const uint8_t* keys, const uint64_t* values, size_t n, size_t key_size, uint32_t first_blk,
                      BlockSink& sink);

// Checks that `node`, read from block `blkno`, is the level-`level` node the builder wrote
// there (position, level, reserved byte, exact count); returns its count.
uint16_t CheckNodeHeader(const BlockFile& file, const BtreeGeometry& geo, uint32_t blkno, uint8_t level,
                         const uint8_t* node);
// Where the builder put child `idx` of internal node `blkno` at `level`.
uint64_t ExpectedChild(const BtreeGeometry& geo, uint32_t blkno, uint8_t level, uint16_t idx);

// A position in a leaf. Nodes are read in place from the page cache (the current one pinned
// while the cursor is on it) or, on a miss or a direct read, into `node_buf` (kBlockSize bytes).
class BtreeCursor {
 public:
  BtreeCursor(const BlockFile& file, const BtreeGeometry& geo, ReadMode mode, uint8_t* node_buf);

  // Positions at the greatest entry whose key is ≤ `key`; false if there is none.
  bool SeekLE(const uint8_t* key);
  // Positions at the first entry; false if the tree is empty.
  bool SeekFirst();
  bool Prev();
  bool Next();
  // Whether Prev() would leave the current leaf, which loads the previous one through the cache
  // (false: it steps within the leaf and touches nothing).
  bool AtLeafStart() const { return idx_ == 0; }
  // Stops holding the current node pinned in the cache, copying it into `node_buf` so the cursor
  // stays usable. Reads call this before reading values: a pin held meanwhile would change which
  // slot an insert evicts, and the TS twin, which copies every node, holds none.
  void Detach();
  // Stops holding the node at all; the cursor is unusable afterwards.
  void Release() { ref_.Release(); node_ = nullptr; }

  const uint8_t* key() const { return node_ + kBtreeNodeHeader + size_t{idx_} * geo_.key_size; }
  uint64_t value() const { return LoadBe64(node_ + kBtreeNodeHeader + size_t{count_} * geo_.key_size + size_t{idx_} * kBtreeValueSize); }

 private:
  uint16_t LoadNode(uint32_t blkno, uint8_t level);
  bool LoadLeaf(uint32_t blkno);  // false if that leaf is empty

  const BlockFile& file_;
  const BtreeGeometry& geo_;
  const ReadMode mode_;
  uint8_t* buf_;
  BlockRef ref_;
  const uint8_t* node_ = nullptr;
  uint32_t blk_ = 0;
  uint16_t count_ = 0;
  uint16_t idx_ = 0;
};

// Reads every index block directly from disk and checks each node against the geometry, first
// keys against their downlinks, key order (within and across nodes) and zero padding.
// Calls `visit` for each leaf entry in key order; returns the number of entries.
using BtreeVisitor = std::function<void(const uint8_t* key, uint64_t value, uint32_t leaf_blk)>;
uint64_t VerifyBtree(const BlockFile& file, const BtreeGeometry& geo, const BtreeVisitor& visit);

}  // namespace strata

#endif  // STRATA_DISK_BTREE_H_
