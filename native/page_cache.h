// A fixed pool of 8 KB slots holding immutable layer-file blocks, evicted by a usage-count
// clock (PostgreSQL / Neon style). The exact policy is shared with the TS twin
// (lib/page_cache.ts) so both cores report the same stats for the same access sequence.
#ifndef STRATA_PAGE_CACHE_H_
#define STRATA_PAGE_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "format.h"

namespace strata {

constexpr size_t kCachePageSize = kBlockSize;
constexpr uint32_t kMinCachePages = 16;
constexpr uint8_t kMaxUsageCount = 5;
// The sweep gives up after this many full turns of the clock (every slot pinned).
constexpr uint64_t kSweepTurns = 10;

struct PageCacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t evictions = 0;
  uint32_t capacity_pages = 0;
  uint32_t used_pages = 0;
};

class PageCache {
 public:
  // Capacity is floor(bytes / 8192) slots, at least kMinCachePages; one contiguous allocation.
  explicit PageCache(uint64_t bytes);
  PageCache(const PageCache&) = delete;
  PageCache& operator=(const PageCache&) = delete;

  static uint32_t CapacityFor(uint64_t bytes);

  uint32_t capacity() const { return capacity_; }
  PageCacheStats Stats();

  // Hit: copy the block into `into` (kCachePageSize bytes), bump its usage, count a hit.
  // Miss: count a miss. The slot stays pinned while its bytes are copied.
  bool Lookup(uint32_t file_id, uint32_t blkno, uint8_t* into);
  // Cache a block (usage 1), or overwrite it if already cached. CACHE_FULL if all slots are pinned.
  void Insert(uint32_t file_id, uint32_t blkno, const uint8_t* data);
  bool Pin(uint32_t file_id, uint32_t blkno);
  void Unpin(uint32_t file_id, uint32_t blkno);
  bool Contains(uint32_t file_id, uint32_t blkno);

 private:
  struct Slot {
    uint64_t key = 0;
    uint32_t pins = 0;
    uint8_t usage = 0;
  };

  static uint64_t MakeKey(uint32_t file_id, uint32_t blkno) { return (uint64_t{file_id} << 32) | blkno; }
  uint8_t* SlotData(uint32_t slot) { return pages_.get() + size_t{slot} * kCachePageSize; }
  // Index of the slot holding `key`, or -1. Caller holds mu_.
  int64_t Find(uint64_t key) const;
  // Returns the slot to fill for a new key, evicting its old block. Caller holds mu_.
  uint32_t ClaimSlot();

  const uint32_t capacity_;
  std::unique_ptr<uint8_t[]> pages_;
  std::vector<Slot> slots_;
  std::unordered_map<uint64_t, uint32_t> index_;
  uint32_t next_unused_ = 0;  // slots [next_unused_, capacity_) have never held a block
  uint32_t hand_ = 0;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
  uint64_t evictions_ = 0;
  std::mutex mu_;  // reads will move to libuv worker threads
};

}  // namespace strata

#endif  // STRATA_PAGE_CACHE_H_
