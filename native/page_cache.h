// A fixed pool of 8 KB slots holding immutable layer-file blocks, evicted by a usage-count clock
// (PostgreSQL / Neon style, the default), by S3-FIFO, or by S3-FIFO with ARC's adaptation. Each policy is pinned down exactly and
// shared with the TS twin (lib/core/ts/page_cache.ts, which documents the rules) so both cores report the
// same stats for the same access sequence.
#ifndef STRATA_PAGE_CACHE_H_
#define STRATA_PAGE_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "format.h"

namespace strata {

constexpr size_t kCachePageSize = kBlockSize;
constexpr uint32_t kMinCachePages = 16;
constexpr uint8_t kMaxUsageCount = 5;
// The sweep gives up after this many full turns of the clock (every slot pinned).
constexpr uint64_t kSweepTurns = 10;
// S3-FIFO (Yang et al., SOSP '23): the small queue gets capacity / 10 slots (at least 1), the main
// queue the rest, the ghost remembers as many evicted keys as the main queue holds; frequencies
// saturate at 3 (two bits).
constexpr uint32_t kSmallQueueDivisor = 10;
constexpr uint8_t kMaxS3FifoFrequency = 3;
// Adaptive S3-FIFO: hits while in S needed to move to M.
constexpr uint8_t kAdaptivePromoteFrequency = 2;

enum class PageCachePolicy : uint8_t { kClock, kS3Fifo, kAdaptiveS3Fifo };

// "clock", "s3fifo" or "adaptive-s3fifo" (the names JS passes); BAD_ARGUMENT otherwise.
PageCachePolicy ParsePageCachePolicy(const std::string& name);
const char* PageCachePolicyName(PageCachePolicy policy);

struct PageCacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t evictions = 0;
  uint32_t capacity_pages = 0;
  uint32_t used_pages = 0;
  PageCachePolicy policy = PageCachePolicy::kClock;
};

class PageCache {
 public:
  // Capacity is floor(bytes / 8192) slots, at least kMinCachePages; one contiguous allocation.
  explicit PageCache(uint64_t bytes, PageCachePolicy policy = PageCachePolicy::kClock);
  PageCache(const PageCache&) = delete;
  PageCache& operator=(const PageCache&) = delete;

  static uint32_t CapacityFor(uint64_t bytes);

  uint32_t capacity() const { return capacity_; }
  PageCachePolicy policy() const { return policy_; }
  PageCacheStats Stats();

  // Hit: copy the block into `into` (kCachePageSize bytes), bump its usage (clock) or frequency
  // (S3-FIFO), count a hit.
  // Miss: count a miss. The slot stays pinned while its bytes are copied.
  bool Lookup(uint32_t file_id, uint32_t blkno, uint8_t* into);
  // Lookup without the copy: on a hit `*data` points at the cached bytes, counted and bumped as
  // Lookup does, and the slot stays pinned (never evicted or rewritten) until Release(*slot).
  bool LookupPinned(uint32_t file_id, uint32_t blkno, const uint8_t** data, uint32_t* slot);
  void Release(uint32_t slot);
  // Counts a hit on `slot`, which the caller holds pinned (LookupPinned, InsertPinned) and would
  // otherwise release and look up again: the same usage / frequency bump and hit count as a
  // LookupPinned hit, under one lock, without the hash lookup or a pin change. The stats and
  // eviction state end up exactly as after Release + LookupPinned, provided no other cache
  // operation came in between (a pin only matters to evictions, which inserts make).
  void Rehit(uint32_t slot);
  // Cache a block (clock usage 1; S3-FIFO frequency 0), or overwrite it if already cached.
  // CACHE_FULL if all slots are pinned.
  void Insert(uint32_t file_id, uint32_t blkno, const uint8_t* data);
  // Insert, then pin the block's slot (returned) until Release, so its reader can Rehit it.
  uint32_t InsertPinned(uint32_t file_id, uint32_t blkno, const uint8_t* data);
  bool Pin(uint32_t file_id, uint32_t blkno);
  void Unpin(uint32_t file_id, uint32_t blkno);
  bool Contains(uint32_t file_id, uint32_t blkno);

 private:
  struct Slot {
    uint64_t key = 0;
    uint32_t pins = 0;
    uint8_t usage = 0;  // clock: usage count; S3-FIFO: access frequency
  };
  // A FIFO of slot indices threaded through next_ (a slot is in at most one queue), so moving a
  // slot between queues allocates nothing. Pop at head, push at tail.
  struct SlotQueue {
    uint32_t head = 0;
    uint32_t tail = 0;
    uint32_t len = 0;
  };

  // Keys recently evicted from one queue: the last ring.size() added, oldest forgotten first;
  // `keys` maps a key still remembered to the stamp it was added with (stamps count from 1).
  class Ghost {
   public:
    void Resize(size_t size);
    void Add(uint64_t key);
    // Forgets the key; whether it was remembered.
    bool Take(uint64_t key);
    size_t live() const { return keys_.size(); }

   private:
    std::vector<uint64_t> ring_;
    std::unordered_map<uint64_t, uint64_t> keys_;
    uint64_t stamp_ = 0;
  };

  static uint64_t MakeKey(uint32_t file_id, uint32_t blkno) { return (uint64_t{file_id} << 32) | blkno; }
  bool IsS3Fifo() const { return policy_ != PageCachePolicy::kClock; }
  uint32_t SmallShare() const { return static_cast<uint32_t>(small_target_); }
  uint8_t* SlotData(uint32_t slot) { return pages_.get() + size_t{slot} * kCachePageSize; }
  // Index of the slot holding `key`, or -1. Caller holds mu_.
  int64_t Find(uint64_t key) const;
  // Returns the slot to fill for a new key, evicting its old block. Caller holds mu_.
  uint32_t ClaimSlot();
  uint32_t ClockVictim();
  // S3-FIFO. Caller holds mu_.
  uint32_t S3FifoVictim();
  // Pops S's head: evicts it into *victim (true) or promotes it to M (false, unless that overfills
  // M and M then yields the victim).
  bool EvictSmall(uint32_t* victim);
  // Rotates M until an unpinned slot at frequency 0 is found (true); false if every slot in M is pinned.
  bool EvictMain(uint32_t* victim);
  // Queues a freshly filled slot: into M if its key is in a ghost (which forgets it; the adaptive
  // variant moves S's target), else into S.
  void S3FifoAdmit(uint32_t slot, uint64_t key);
  void Push(SlotQueue* q, uint32_t slot);
  uint32_t Pop(SlotQueue* q);
  // Evicts the slot's block: drops its key from the index and counts the eviction.
  void Drop(uint32_t slot);
  // Insert's work; returns the block's slot. Caller holds mu_.
  uint32_t InsertLocked(uint32_t file_id, uint32_t blkno, const uint8_t* data);
  // A hit's usage / frequency bump and count. Caller holds mu_.
  void CountHit(Slot& s);

  const uint32_t capacity_;
  const PageCachePolicy policy_;
  std::unique_ptr<uint8_t[]> pages_;
  std::vector<Slot> slots_;
  std::unordered_map<uint64_t, uint32_t> index_;
  uint32_t next_unused_ = 0;  // slots [next_unused_, capacity_) have never held a block
  uint32_t hand_ = 0;
  // S3-FIFO state (left empty under the clock). S's share is floor(small_target_): fixed for
  // s3fifo, adapted in [1, capacity - 1] for adaptive-s3fifo (a double, as the TS twin's number,
  // so both cores compute the same shares).
  double small_target_ = 0;
  uint8_t promote_at_ = 1;
  std::vector<uint32_t> next_;
  SlotQueue small_;
  SlotQueue main_;
  Ghost small_ghost_;  // keys evicted from S (S3-FIFO's G)
  Ghost main_ghost_;   // keys evicted from M: adaptive only
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
  uint64_t evictions_ = 0;
  std::mutex mu_;  // reads will move to libuv worker threads
};

}  // namespace strata

#endif  // STRATA_PAGE_CACHE_H_
