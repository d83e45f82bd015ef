#include "disk_btree.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "errors.h"

namespace strata {
namespace {

constexpr size_t kLevelOff = 0;
constexpr size_t kReservedOff = 1;
constexpr size_t kCountOff = 2;

size_t ValuesOffset(uint16_t count, size_t key_size) { return kBtreeNodeHeader + size_t{count} * key_size; }

// Fills one node block from `count` consecutive entries.
void EncodeNode(uint8_t* block, uint8_t level, const uint8_t* keys, const uint64_t* values, uint16_t count,
                size_t key_size) {
  std::memset(block, 0, kBlockSize);
  block[kLevelOff] = level;
  StoreBe16(block + kCountOff, count);
  if (count > 0) std::memcpy(block + kBtreeNodeHeader, keys, size_t{count} * key_size);  // keys may be null when empty
  uint8_t* v = block + ValuesOffset(count, key_size);
  for (uint16_t i = 0; i < count; ++i) StoreBe64(v + size_t{i} * kBtreeValueSize, values[i]);
}

// Entries the builder puts in node `pos` of a level holding `entries` entries.
uint64_t NodeEntryCount(uint64_t entries, uint64_t pos, size_t fanout) {
  const uint64_t before = pos * fanout;
  return entries > before ? std::min<uint64_t>(fanout, entries - before) : 0;
}

}  // namespace

BtreeGeometry BtreeGeometry::For(uint64_t entry_count, size_t key_size, uint32_t index_start) {
  BtreeGeometry g;
  g.index_start = index_start;
  g.key_size = key_size;
  g.fanout = BtreeFanout(key_size);
  g.entry_count = entry_count;
  uint64_t entries = entry_count;
  uint64_t blk = index_start;
  for (;;) {  // an empty layer still has one (empty) leaf as its root
    const uint64_t nodes = std::max<uint64_t>(1, entries / g.fanout + (entries % g.fanout != 0));
    g.level_start.push_back(blk);
    g.level_nodes.push_back(nodes);
    g.level_entries.push_back(entries);
    blk += nodes;
    if (nodes == 1) break;
    entries = nodes;
  }
  g.height = static_cast<uint8_t>(std::min<size_t>(g.level_nodes.size(), 255));
  return g;
}

BtreeShape BuildBtree(const uint8_t* keys, const uint64_t* values, size_t n, size_t key_size, uint32_t first_blk,
                      BlockSink& sink) {
  const BtreeGeometry geo = BtreeGeometry::For(n, key_size, first_blk);
  std::vector<uint8_t> block(kBlockSize);
  // The level being cut into nodes: the caller's entries, then each lower node's (first key, block).
  std::vector<uint8_t> level_keys;
  std::vector<uint64_t> level_values;
  const uint8_t* cur_keys = keys;
  const uint64_t* cur_values = values;
  for (size_t level = 0; level < geo.level_nodes.size(); ++level) {
    const uint64_t nodes = geo.level_nodes[level];
    std::vector<uint8_t> up_keys(nodes * key_size);
    std::vector<uint64_t> up_values(nodes);
    for (uint64_t pos = 0; pos < nodes; ++pos) {
      const uint64_t first = pos * geo.fanout;
      const uint16_t count = static_cast<uint16_t>(NodeEntryCount(geo.level_entries[level], pos, geo.fanout));
      EncodeNode(block.data(), static_cast<uint8_t>(level), cur_keys + first * key_size, cur_values + first, count,
                 key_size);
      const uint64_t blkno = geo.level_start[level] + pos;
      sink.WriteBlock(static_cast<uint32_t>(blkno), block.data());
      if (count > 0) std::memcpy(up_keys.data() + pos * key_size, cur_keys + first * key_size, key_size);
      up_values[pos] = blkno;
    }
    level_keys = std::move(up_keys);
    level_values = std::move(up_values);
    cur_keys = level_keys.data();
    cur_values = level_values.data();
  }
  BtreeShape shape;
  shape.leaf_count = static_cast<uint32_t>(geo.leaf_count());
  shape.blk_count = static_cast<uint32_t>(geo.blk_count());
  shape.root_blk = static_cast<uint32_t>(geo.root_blk());
  shape.height = geo.height;
  return shape;
}

uint16_t CheckNodeHeader(const BlockFile& file, const BtreeGeometry& geo, uint32_t blkno, uint8_t level,
                         const uint8_t* node) {
  if (level >= geo.level_start.size() || blkno < geo.level_start[level] ||
      blkno - geo.level_start[level] >= geo.level_nodes[level]) {
    file.Corrupt(blkno, "block is not a level-" + std::to_string(level) + " index node");
  }
  if (node[kLevelOff] != level) {
    file.Corrupt(blkno, "index node level " + std::to_string(node[kLevelOff]) + ", expected " + std::to_string(level));
  }
  if (node[kReservedOff] != 0) file.Corrupt(blkno, "index node reserved byte is not zero");
  const uint16_t count = LoadBe16(node + kCountOff);
  const uint64_t expected = NodeEntryCount(geo.level_entries[level], blkno - geo.level_start[level], geo.fanout);
  if (count != expected) {
    file.Corrupt(blkno, "index node holds " + std::to_string(count) + " entries, expected " + std::to_string(expected));
  }
  return count;
}

uint64_t ExpectedChild(const BtreeGeometry& geo, uint32_t blkno, uint8_t level, uint16_t idx) {
  const uint64_t pos = blkno - geo.level_start[level];
  return geo.level_start[level - 1] + pos * geo.fanout + idx;
}

BtreeCursor::BtreeCursor(const BlockFile& file, const BtreeGeometry& geo, ReadMode mode, uint8_t* node_buf)
    : file_(file), geo_(geo), mode_(mode), buf_(node_buf) {}

uint16_t BtreeCursor::LoadNode(uint32_t blkno, uint8_t level) {
  node_ = file_.Acquire(blkno, mode_, buf_, &ref_);
  return CheckNodeHeader(file_, geo_, blkno, level, node_);
}

bool BtreeCursor::SeekLE(const uint8_t* key) {
  uint32_t blk = static_cast<uint32_t>(geo_.root_blk());
  for (uint8_t level = static_cast<uint8_t>(geo_.height - 1);; --level) {
    const uint16_t count = LoadNode(blk, level);
    // Binary search for the last key ≤ `key`: keys[0, lo) ≤ key < keys[hi, count).
    uint16_t lo = 0, hi = count;
    while (lo < hi) {
      const uint16_t mid = static_cast<uint16_t>((lo + hi) / 2);
      if (std::memcmp(node_ + kBtreeNodeHeader + size_t{mid} * geo_.key_size, key, geo_.key_size) <= 0) {
        lo = static_cast<uint16_t>(mid + 1);
      } else {
        hi = mid;
      }
    }
    if (lo == 0) return false;
    const uint16_t idx = static_cast<uint16_t>(lo - 1);
    if (level == 0) {
      blk_ = blk;
      count_ = count;
      idx_ = idx;
      return true;
    }
    const uint64_t child = LoadBe64(node_ + ValuesOffset(count, geo_.key_size) + size_t{idx} * kBtreeValueSize);
    const uint64_t expected = ExpectedChild(geo_, blk, level, idx);
    // The builder's layout fixes where each child is; anything else is a corrupt index.
    if (child != expected) {
      file_.Corrupt(blk, "index child " + std::to_string(idx) + " points to block " + std::to_string(child) +
                             ", expected " + std::to_string(expected));
    }
    blk = static_cast<uint32_t>(child);
  }
}

void BtreeCursor::Detach() {
  if (node_ == buf_ || node_ == nullptr) return;
  std::memcpy(buf_, node_, kBlockSize);
  node_ = buf_;
  ref_.Release();
}

bool BtreeCursor::LoadLeaf(uint32_t blkno) {
  count_ = LoadNode(blkno, 0);
  blk_ = blkno;
  return count_ > 0;
}

bool BtreeCursor::SeekFirst() {
  idx_ = 0;
  return LoadLeaf(geo_.index_start);
}

bool BtreeCursor::Prev() {
  if (idx_ > 0) {
    --idx_;
    return true;
  }
  if (blk_ <= geo_.index_start || !LoadLeaf(blk_ - 1)) return false;
  idx_ = static_cast<uint16_t>(count_ - 1);
  return true;
}

bool BtreeCursor::Next() {
  if (idx_ + 1 < count_) {
    ++idx_;
    return true;
  }
  if (blk_ + uint64_t{1} >= geo_.index_start + geo_.leaf_count() || !LoadLeaf(blk_ + 1)) return false;
  idx_ = 0;
  return true;
}

namespace {

// Level-by-level walk with direct reads, root level first; each level records the first key of
// every child so the level below can be checked against its downlinks.
class BtreeVerifier {
 public:
  BtreeVerifier(const BlockFile& file, const BtreeGeometry& geo, const BtreeVisitor& visit)
      : file_(file), geo_(geo), visit_(visit), node_(kBlockSize), last_key_(geo.key_size) {}

  uint64_t Run() {
    std::vector<uint8_t> expected_first;  // empty for the root: it has no parent
    for (size_t level = geo_.level_nodes.size(); level-- > 0;) {
      std::vector<uint8_t> child_first;
      if (level > 0) child_first.resize(geo_.level_nodes[level - 1] * geo_.key_size);
      for (uint64_t pos = 0; pos < geo_.level_nodes[level]; ++pos) {
        VisitNode(static_cast<uint8_t>(level), pos, expected_first, child_first);
      }
      expected_first = std::move(child_first);
    }
    return entries_;
  }

 private:
  void VisitNode(uint8_t level, uint64_t pos, const std::vector<uint8_t>& expected_first,
                 std::vector<uint8_t>& child_first) {
    const size_t ks = geo_.key_size;
    const uint32_t blk = static_cast<uint32_t>(geo_.level_start[level] + pos);
    uint8_t* node = node_.data();
    file_.ReadBlock(blk, node, ReadMode::kDirect);
    const uint16_t count = CheckNodeHeader(file_, geo_, blk, level, node);
    CheckNodeBody(blk, node, count);
    if (!expected_first.empty() && std::memcmp(node + kBtreeNodeHeader, expected_first.data() + pos * ks, ks) != 0) {
      file_.Corrupt(blk, "first key differs from the parent entry");
    }
    const uint8_t* values = node + ValuesOffset(count, ks);
    for (uint16_t i = 0; i < count; ++i) {
      const uint8_t* key = node + kBtreeNodeHeader + size_t{i} * ks;
      const uint64_t value = LoadBe64(values + size_t{i} * kBtreeValueSize);
      if (level > 0) {
        const uint64_t expected = ExpectedChild(geo_, blk, level, i);
        if (value != expected) {
          file_.Corrupt(blk, "index child " + std::to_string(i) + " points to block " + std::to_string(value) +
                                 ", expected " + std::to_string(expected));
        }
        std::memcpy(child_first.data() + (expected - geo_.level_start[level - 1]) * ks, key, ks);
        continue;
      }
      if (entries_ > 0 && std::memcmp(last_key_.data(), key, ks) >= 0) {
        file_.Corrupt(blk, "index key " + std::to_string(i) + " is not above the previous leaf's last key");
      }
      std::memcpy(last_key_.data(), key, ks);
      ++entries_;
      visit_(key, value, blk);
    }
  }

  // Keys strictly increasing within the node, zero padding after the values.
  void CheckNodeBody(uint32_t blk, const uint8_t* node, uint16_t count) const {
    const size_t ks = geo_.key_size;
    for (uint16_t i = 1; i < count; ++i) {
      const uint8_t* k = node + kBtreeNodeHeader + size_t{i} * ks;
      if (std::memcmp(k - ks, k, ks) >= 0) file_.Corrupt(blk, "index keys out of order");
    }
    const size_t used = ValuesOffset(count, ks) + size_t{count} * kBtreeValueSize;
    for (size_t i = used; i < kBlockPayload; ++i) {
      if (node[i] != 0) file_.Corrupt(blk, "index node padding is not zero");
    }
  }

  const BlockFile& file_;
  const BtreeGeometry& geo_;
  const BtreeVisitor& visit_;
  std::vector<uint8_t> node_;
  std::vector<uint8_t> last_key_;
  uint64_t entries_ = 0;
};

}  // namespace

uint64_t VerifyBtree(const BlockFile& file, const BtreeGeometry& geo, const BtreeVisitor& visit) {
  return BtreeVerifier(file, geo, visit).Run();
}

}  // namespace strata
