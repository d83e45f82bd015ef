#include "page_cache.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "errors.h"

namespace strata {

uint32_t PageCache::CapacityFor(uint64_t bytes) {
  const uint64_t pages = bytes / kCachePageSize;
  if (pages > std::numeric_limits<uint32_t>::max()) BadArgument("pageCacheBytes is too large");
  return std::max<uint32_t>(static_cast<uint32_t>(pages), kMinCachePages);
}

PageCachePolicy ParsePageCachePolicy(const std::string& name) {
  if (name == "clock") return PageCachePolicy::kClock;
  if (name == "s3fifo") return PageCachePolicy::kS3Fifo;
  BadArgument("pageCachePolicy must be 'clock' or 's3fifo': got '" + name + "'");
}

const char* PageCachePolicyName(PageCachePolicy policy) {
  return policy == PageCachePolicy::kS3Fifo ? "s3fifo" : "clock";
}

PageCache::PageCache(uint64_t bytes, PageCachePolicy policy)
    : capacity_(CapacityFor(bytes)),
      policy_(policy),
      pages_(new uint8_t[size_t{capacity_} * kCachePageSize]),
      slots_(capacity_) {
  index_.reserve(capacity_);
  if (policy_ == PageCachePolicy::kS3Fifo) {
    small_cap_ = std::max<uint32_t>(1, capacity_ / kSmallQueueDivisor);
    main_cap_ = capacity_ - small_cap_;  // ≥ 1: capacity_ ≥ kMinCachePages
    next_.resize(capacity_);
    ghost_ring_.resize(main_cap_);
    ghost_.reserve(main_cap_);
  }
}

PageCacheStats PageCache::Stats() {
  std::lock_guard<std::mutex> lock(mu_);
  PageCacheStats s;
  s.hits = hits_;
  s.misses = misses_;
  s.evictions = evictions_;
  s.capacity_pages = capacity_;
  s.used_pages = next_unused_;  // a slot, once filled, stays occupied
  s.policy = policy_;
  return s;
}

int64_t PageCache::Find(uint64_t key) const {
  auto it = index_.find(key);
  return it == index_.end() ? -1 : int64_t{it->second};
}

bool PageCache::LookupPinned(uint32_t file_id, uint32_t blkno, const uint8_t** data, uint32_t* slot) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t found = Find(MakeKey(file_id, blkno));
  if (found < 0) {
    ++misses_;
    return false;
  }
  *slot = static_cast<uint32_t>(found);
  Slot& s = slots_[*slot];
  const uint8_t max_usage = policy_ == PageCachePolicy::kS3Fifo ? kMaxS3FifoFrequency : kMaxUsageCount;
  if (s.usage < max_usage) ++s.usage;
  ++s.pins;
  ++hits_;
  *data = SlotData(*slot);
  return true;
}

void PageCache::Release(uint32_t slot) {
  std::lock_guard<std::mutex> lock(mu_);
  --slots_[slot].pins;
}

bool PageCache::Lookup(uint32_t file_id, uint32_t blkno, uint8_t* into) {
  const uint8_t* data;
  uint32_t slot;
  if (!LookupPinned(file_id, blkno, &data, &slot)) return false;
  // Copy outside the lock; the pin keeps the slot from being reused meanwhile.
  std::memcpy(into, data, kCachePageSize);
  Release(slot);
  return true;
}

uint32_t PageCache::ClaimSlot() {
  if (next_unused_ < capacity_) return next_unused_++;
  return policy_ == PageCachePolicy::kS3Fifo ? S3FifoVictim() : ClockVictim();
}

void PageCache::Drop(uint32_t slot) {
  ++evictions_;
  index_.erase(slots_[slot].key);
}

uint32_t PageCache::ClockVictim() {
  const uint64_t max_steps = kSweepTurns * capacity_;
  for (uint64_t step = 0; step < max_steps; ++step) {
    const uint32_t slot = hand_;
    hand_ = (hand_ + 1) % capacity_;
    Slot& s = slots_[slot];
    if (s.pins > 0) continue;
    if (s.usage == 0) {
      Drop(slot);
      return slot;
    }
    --s.usage;
  }
  Fail(ErrorCode::kCacheFull, "page cache full: every one of " + std::to_string(capacity_) + " slots is pinned");
}

void PageCache::Push(SlotQueue* q, uint32_t slot) {
  if (q->len == 0) {
    q->head = slot;
  } else {
    next_[q->tail] = slot;
  }
  q->tail = slot;
  ++q->len;
}

uint32_t PageCache::Pop(SlotQueue* q) {
  const uint32_t slot = q->head;  // callers check q->len > 0
  q->head = next_[slot];
  --q->len;
  return slot;
}

void PageCache::GhostAdd(uint64_t key) {
  const uint64_t stamp = ++ghost_stamp_;
  const uint64_t ring_size = ghost_ring_.size();
  uint64_t& cell = ghost_ring_[stamp % ring_size];
  if (stamp > ring_size) {
    // The cell's key was added ring_size additions ago: forget it unless it has since left the
    // ghost (readmitted) or been added again with a newer stamp.
    auto it = ghost_.find(cell);
    if (it != ghost_.end() && it->second + ring_size == stamp) ghost_.erase(it);
  }
  cell = key;
  ghost_[key] = stamp;
}

bool PageCache::EvictMain(uint32_t* victim) {
  uint32_t pinned_run = 0;  // consecutive pinned slots seen; reaching main_.len means all are pinned
  for (;;) {
    const uint32_t slot = Pop(&main_);
    Slot& s = slots_[slot];
    if (s.pins > 0) {
      Push(&main_, slot);  // in use: reinserted, frequency untouched
      if (++pinned_run >= main_.len) return false;
      continue;
    }
    pinned_run = 0;
    if (s.usage > 0) {
      --s.usage;
      Push(&main_, slot);
      continue;
    }
    Drop(slot);
    *victim = slot;
    return true;
  }
}

bool PageCache::EvictSmall(uint32_t* victim) {
  const uint32_t slot = Pop(&small_);
  Slot& s = slots_[slot];
  if (s.pins > 0 || s.usage > 0) {
    // Accessed while in S (a pin counts as an access): promoted with its frequency kept.
    Push(&main_, slot);
    return main_.len > main_cap_ && EvictMain(victim);
  }
  GhostAdd(s.key);
  Drop(slot);
  *victim = slot;
  return true;
}

uint32_t PageCache::S3FifoVictim() {
  // The cache is full, so S and M together hold capacity_ ≥ kMinCachePages slots.
  uint32_t victim = 0;
  for (;;) {
    if (small_.len >= small_cap_ || main_.len == 0) {
      if (EvictSmall(&victim)) return victim;
    } else if (EvictMain(&victim)) {
      return victim;
    } else if (small_.len == 0) {
      Fail(ErrorCode::kCacheFull, "page cache full: every one of " + std::to_string(capacity_) + " slots is pinned");
    } else if (EvictSmall(&victim)) {  // every slot in M is pinned: S gives one up instead
      return victim;
    }
  }
}

void PageCache::S3FifoAdmit(uint32_t slot, uint64_t key) {
  auto it = ghost_.find(key);
  if (it != ghost_.end()) {
    ghost_.erase(it);
    Push(&main_, slot);
  } else {
    Push(&small_, slot);
  }
}

void PageCache::Insert(uint32_t file_id, uint32_t blkno, const uint8_t* data) {
  const uint64_t key = MakeKey(file_id, blkno);
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t found = Find(key);
  if (found >= 0) {
    // Blocks are immutable, so this rewrites the same bytes; usage / frequency and queue are kept.
    // A pinned slot may be being read in place on another thread: leave its (same) bytes alone.
    if (slots_[static_cast<size_t>(found)].pins == 0) std::memcpy(SlotData(static_cast<uint32_t>(found)), data, kCachePageSize);
    return;
  }
  const uint32_t slot = ClaimSlot();
  Slot& s = slots_[slot];
  s.key = key;
  s.pins = 0;
  if (policy_ == PageCachePolicy::kS3Fifo) {
    s.usage = 0;
    S3FifoAdmit(slot, key);  // after the eviction, which may have pushed this key out of the ghost
  } else {
    s.usage = 1;
  }
  index_.emplace(key, slot);
  std::memcpy(SlotData(slot), data, kCachePageSize);
}

bool PageCache::Pin(uint32_t file_id, uint32_t blkno) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t found = Find(MakeKey(file_id, blkno));
  if (found < 0) return false;
  ++slots_[static_cast<size_t>(found)].pins;
  return true;
}

void PageCache::Unpin(uint32_t file_id, uint32_t blkno) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t found = Find(MakeKey(file_id, blkno));
  if (found < 0) BadArgument("unpin: block " + std::to_string(blkno) + " of file " + std::to_string(file_id) + " is not cached");
  Slot& s = slots_[static_cast<size_t>(found)];
  if (s.pins == 0) BadArgument("unpin: block " + std::to_string(blkno) + " of file " + std::to_string(file_id) + " is not pinned");
  --s.pins;
}

bool PageCache::Contains(uint32_t file_id, uint32_t blkno) {
  std::lock_guard<std::mutex> lock(mu_);
  return Find(MakeKey(file_id, blkno)) >= 0;
}

}  // namespace strata
