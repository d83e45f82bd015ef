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

PageCache::PageCache(uint64_t bytes)
    : capacity_(CapacityFor(bytes)),
      pages_(new uint8_t[size_t{capacity_} * kCachePageSize]),
      slots_(capacity_) {
  index_.reserve(capacity_);
}

PageCacheStats PageCache::Stats() {
  std::lock_guard<std::mutex> lock(mu_);
  PageCacheStats s;
  s.hits = hits_;
  s.misses = misses_;
  s.evictions = evictions_;
  s.capacity_pages = capacity_;
  s.used_pages = next_unused_;  // a slot, once filled, stays occupied
  return s;
}

int64_t PageCache::Find(uint64_t key) const {
  auto it = index_.find(key);
  return it == index_.end() ? -1 : int64_t{it->second};
}

bool PageCache::Lookup(uint32_t file_id, uint32_t blkno, uint8_t* into) {
  uint32_t slot;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const int64_t found = Find(MakeKey(file_id, blkno));
    if (found < 0) {
      ++misses_;
      return false;
    }
    slot = static_cast<uint32_t>(found);
    Slot& s = slots_[slot];
    s.usage = std::min<uint8_t>(s.usage + 1, kMaxUsageCount);
    ++s.pins;
    ++hits_;
  }
  // Copy outside the lock; the pin keeps the slot from being reused meanwhile.
  std::memcpy(into, SlotData(slot), kCachePageSize);
  std::lock_guard<std::mutex> lock(mu_);
  --slots_[slot].pins;
  return true;
}

uint32_t PageCache::ClaimSlot() {
  if (next_unused_ < capacity_) return next_unused_++;
  const uint64_t max_steps = kSweepTurns * capacity_;
  for (uint64_t step = 0; step < max_steps; ++step) {
    const uint32_t slot = hand_;
    hand_ = (hand_ + 1) % capacity_;
    Slot& s = slots_[slot];
    if (s.pins > 0) continue;
    if (s.usage == 0) {
      ++evictions_;
      index_.erase(s.key);
      return slot;
    }
    --s.usage;
  }
  Fail(ErrorCode::kCacheFull, "page cache full: every one of " + std::to_string(capacity_) + " slots is pinned");
}

void PageCache::Insert(uint32_t file_id, uint32_t blkno, const uint8_t* data) {
  const uint64_t key = MakeKey(file_id, blkno);
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t found = Find(key);
  if (found >= 0) {
    // Blocks are immutable, so this rewrites the same bytes; the usage count is kept.
    std::memcpy(SlotData(static_cast<uint32_t>(found)), data, kCachePageSize);
    return;
  }
  const uint32_t slot = ClaimSlot();
  Slot& s = slots_[slot];
  s.key = key;
  s.usage = 1;
  s.pins = 0;
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
