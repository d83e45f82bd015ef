#include "delta_arena.h"

#include <cstring>
#include <string>

#include "errors.h"
#include "format.h"
#include "pg/redo_record.h"
#include "walredo.h"

namespace strata {
namespace {

constexpr size_t kLsnSize = 8;
constexpr size_t kEntryLsn = 0;
constexpr size_t kEntrySlab = 8;
constexpr size_t kEntryOffset = 12;
constexpr size_t kEntryLength = 16;
constexpr size_t kEntryPrev = 20;

[[noreturn]] void BadArena(const std::string& what) { Fail(ErrorCode::kBadArgument, "flush of an in-memory layer: " + what); }

template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

int32_t I32At(const ByteSpan& s, size_t i) { return Load<int32_t>(s.data + i * sizeof(int32_t)); }

struct Entry {
  uint64_t lsn;
  const uint8_t* bytes;
  uint32_t len;
  int32_t prev;
};

class ArenaWalk {
 public:
  ArenaWalk(LayerWriter& writer, uint8_t codec, const DeltaArenaView& arena, const ArenaBatchLimits& limits)
      : writer_(writer), codec_(codec), arena_(arena), limits_(limits) {
    if (arena.entries.len % kArenaEntryBytes != 0) BadArena("entries are not whole entries");
    count_ = arena.entries.len / kArenaEntryBytes;
    if (arena.heads.len % sizeof(int32_t) != 0) BadArena("heads are not whole i32s");
    keys_ = arena.heads.len / sizeof(int32_t);
    if (arena.keys.len != keys_ * kKeySize) BadArena(std::to_string(arena.keys.len) + " key bytes for " + std::to_string(keys_) + " keys");
    if (arena.packed_at.len != count_ * 2 * sizeof(int32_t)) BadArena("packedAt does not hold two numbers per record");
  }

  void Run() {
    std::vector<size_t> chain;
    for (size_t k = 0; k < keys_; ++k) {
      chain.clear();
      for (int32_t ord = I32At(arena_.heads, k); ord != kArenaNoPrevious; ord = EntryAt(ord).prev) {
        if (ord < 0 || static_cast<size_t>(ord) >= count_ || (!chain.empty() && static_cast<size_t>(ord) >= chain.back())) {
          BadArena("key " + std::to_string(k) + ": record ordinal " + std::to_string(ord) + " out of range or not older than the one before");
        }
        chain.push_back(static_cast<size_t>(ord));
      }
      for (size_t i = chain.size(); i-- > 0;) Add(k, chain[i]);
    }
    Flush();
  }

 private:
  Entry EntryAt(int32_t ord) const {
    const uint8_t* e = arena_.entries.data + static_cast<size_t>(ord) * kArenaEntryBytes;
    return Entry{Load<uint64_t>(e + kEntryLsn), nullptr, Load<uint32_t>(e + kEntryLength), Load<int32_t>(e + kEntryPrev)};
  }

  // The record's bytes, checked to lie inside its slab and to hold what RecordWillInit reads.
  const uint8_t* RecordBytes(size_t ord, uint32_t len) const {
    const uint8_t* e = arena_.entries.data + ord * kArenaEntryBytes;
    const uint32_t slab = Load<uint32_t>(e + kEntrySlab);
    const uint32_t off = Load<uint32_t>(e + kEntryOffset);
    if (slab >= arena_.slabs.size() || len == 0 || uint64_t{off} + len > arena_.slabs[slab].len) {
      BadArena("record " + std::to_string(ord) + ": bytes outside its slab");
    }
    const uint8_t* rec = arena_.slabs[slab].data + off;
    if (rec[0] == kRecordTagPg && !pg::StoredRecordWillInitFits(rec, len)) {
      BadArena("record " + std::to_string(ord) + ": a PostgreSQL record shorter than its block references");
    }
    return rec;
  }

  void Add(size_t k, size_t ord) {
    const Entry e = EntryAt(static_cast<int32_t>(ord));
    const uint8_t* rec = RecordBytes(ord, e.len);
    const size_t at = index_keys_.size();
    index_keys_.resize(at + kDeltaIndexKeySize);
    std::memcpy(index_keys_.data() + at, arena_.keys.data + k * kKeySize, kKeySize);
    for (size_t b = 0; b < kLsnSize; ++b) index_keys_[at + kKeySize + b] = static_cast<uint8_t>(e.lsn >> (8 * (kLsnSize - 1 - b)));
    const int32_t plen = I32At(arena_.packed_at, ord * 2 + 1);
    uint8_t header[kBlobHeaderSize + kBlobRawLenSize];
    if (plen == kArenaNotPacked) {
      StoreBe32(header, e.len);
      blobs_.insert(blobs_.end(), header, header + kBlobHeaderSize);
      blobs_.insert(blobs_.end(), rec, rec + e.len);
    } else {
      // A blob of kCodecNone has no raw-length field: a compressed form would misframe the blobs
      // after it, and the writer may take the result for valid blobs.
      if (codec_ == kCodecNone) BadArena("record " + std::to_string(ord) + ": a compressed form in an uncompressed layer");
      const int32_t poff = I32At(arena_.packed_at, ord * 2);
      if (plen < 0 || poff < 0 || uint64_t(poff) + uint64_t(plen) > arena_.packed.len || uint64_t(plen) + kBlobRawLenSize >= e.len) {
        BadArena("record " + std::to_string(ord) + ": compressed form out of range");
      }
      StoreBe32(header, (uint32_t{codec_} << kBlobCodecShift) | static_cast<uint32_t>(plen));
      StoreBe32(header + kBlobHeaderSize, e.len);
      blobs_.insert(blobs_.end(), header, header + sizeof header);
      blobs_.insert(blobs_.end(), arena_.packed.data + poff, arena_.packed.data + poff + plen);
    }
    will_init_.push_back(RecordWillInit(rec) ? 1 : 0);
    if (will_init_.size() >= limits_.entries || blobs_.size() >= limits_.bytes) Flush();
  }

  void Flush() {
    if (will_init_.empty()) return;
    writer_.Append(index_keys_.data(), index_keys_.size(), blobs_.data(), blobs_.size(), will_init_.data(), will_init_.size());
    index_keys_.clear();
    blobs_.clear();
    will_init_.clear();
  }

  LayerWriter& writer_;
  uint8_t codec_;
  const DeltaArenaView& arena_;
  const ArenaBatchLimits limits_;
  size_t count_ = 0;
  size_t keys_ = 0;
  std::vector<uint8_t> index_keys_;
  std::vector<uint8_t> blobs_;
  std::vector<uint8_t> will_init_;
};

}  // namespace

void AppendDeltaArena(LayerWriter& writer, uint8_t codec, const DeltaArenaView& arena, const ArenaBatchLimits& limits) {
  ArenaWalk(writer, codec, arena, limits).Run();
}

}  // namespace strata
