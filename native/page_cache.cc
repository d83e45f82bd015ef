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
  if (name == "adaptive-s3fifo") return PageCachePolicy::kAdaptiveS3Fifo;
  BadArgument("pageCachePolicy must be one of clock, s3fifo, adaptive-s3fifo: got " + name);
}

const char* PageCachePolicyName(PageCachePolicy policy) {
  switch (policy) {
    case PageCachePolicy::kS3Fifo: return "s3fifo";
    case PageCachePolicy::kAdaptiveS3Fifo: return "adaptive-s3fifo";
    case PageCachePolicy::kClock: break;
  }
  return "clock";
}

PageCache::PageCache(uint64_t bytes, PageCachePolicy policy)
    : capacity_(CapacityFor(bytes)),
      policy_(policy),
      pages_(new uint8_t[size_t{capacity_} * kCachePageSize]),
      slots_(capacity_) {
  index_.reserve(capacity_);
  if (IsS3Fifo()) {
    const uint32_t small_share = std::max<uint32_t>(1, capacity_ / kSmallQueueDivisor);
    small_target_ = small_share;
    next_.resize(capacity_);
    if (policy_ == PageCachePolicy::kAdaptiveS3Fifo) {
      promote_at_ = kAdaptivePromoteFrequency;
      small_ghost_.Resize(capacity_);
      main_ghost_.Resize(capacity_);
    } else {
      small_ghost_.Resize(capacity_ - small_share);  // M's share, ≥ 1: capacity_ ≥ kMinCachePages
    }
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
  CountHit(s);
  ++s.pins;
  *data = SlotData(*slot);
  return true;
}

void PageCache::CountHit(Slot& s) {
  const uint8_t max_usage = IsS3Fifo() ? kMaxS3FifoFrequency : kMaxUsageCount;
  if (s.usage < max_usage) ++s.usage;
  ++hits_;
}

void PageCache::Rehit(uint32_t slot) {
  std::lock_guard<std::mutex> lock(mu_);
  CountHit(slots_[slot]);
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
  return IsS3Fifo() ? S3FifoVictim() : ClockVictim();
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

void PageCache::Ghost::Resize(size_t size) {
  ring_.assign(size, 0);
  keys_.reserve(size);
}

void PageCache::Ghost::Add(uint64_t key) {
  const uint64_t stamp = ++stamp_;
  const uint64_t ring_size = ring_.size();
  uint64_t& cell = ring_[stamp % ring_size];
  if (stamp > ring_size) {
    // The cell's key was added ring_size additions ago: forget it unless it has since been taken
    // (readmitted) or added again with a newer stamp.
    auto it = keys_.find(cell);
    if (it != keys_.end() && it->second + ring_size == stamp) keys_.erase(it);
  }
  cell = key;
  keys_[key] = stamp;
}

bool PageCache::Ghost::Take(uint64_t key) {
  return keys_.erase(key) > 0;
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
    if (policy_ == PageCachePolicy::kAdaptiveS3Fifo) main_ghost_.Add(s.key);
    Drop(slot);
    *victim = slot;
    return true;
  }
}

bool PageCache::EvictSmall(uint32_t* victim) {
  const uint32_t slot = Pop(&small_);
  Slot& s = slots_[slot];
  if (s.pins > 0 || s.usage >= promote_at_) {
    // Accessed while in S (a pin counts as an access): promoted with its frequency kept.
    Push(&main_, slot);
    return main_.len > capacity_ - SmallShare() && EvictMain(victim);
  }
  small_ghost_.Add(s.key);
  Drop(slot);
  *victim = slot;
  return true;
}

uint32_t PageCache::S3FifoVictim() {
  // The cache is full, so S and M together hold capacity_ ≥ kMinCachePages slots.
  uint32_t victim = 0;
  for (;;) {
    if (small_.len >= SmallShare() || main_.len == 0) {
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
  const bool adaptive = policy_ == PageCachePolicy::kAdaptiveS3Fifo;
  // The ratios are computed after the key left its ghost, in doubles, as the TS twin does.
  if (small_ghost_.Take(key)) {
    if (adaptive) {
      const double ratio = static_cast<double>(main_ghost_.live()) / static_cast<double>(small_ghost_.live() + 1);
      small_target_ = std::min(static_cast<double>(capacity_ - 1), small_target_ + std::max(1.0, ratio));
    }
    Push(&main_, slot);
  } else if (adaptive && main_ghost_.Take(key)) {
    const double ratio = static_cast<double>(small_ghost_.live()) / static_cast<double>(main_ghost_.live() + 1);
    small_target_ = std::max(1.0, small_target_ - std::max(1.0, ratio));
    Push(&main_, slot);
  } else {
    Push(&small_, slot);
  }
}

void PageCache::Insert(uint32_t file_id, uint32_t blkno, const uint8_t* data) {
  std::lock_guard<std::mutex> lock(mu_);
  InsertLocked(file_id, blkno, data);
}

uint32_t PageCache::InsertPinned(uint32_t file_id, uint32_t blkno, const uint8_t* data) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint32_t slot = InsertLocked(file_id, blkno, data);
  ++slots_[slot].pins;
  return slot;
}

uint32_t PageCache::InsertLocked(uint32_t file_id, uint32_t blkno, const uint8_t* data) {
  const uint64_t key = MakeKey(file_id, blkno);
  const int64_t found = Find(key);
  if (found >= 0) {
    // Blocks are immutable, so this rewrites the same bytes; usage / frequency and queue are kept.
    // A pinned slot may be being read in place on another thread: leave its (same) bytes alone.
    const uint32_t slot = static_cast<uint32_t>(found);
    if (slots_[slot].pins == 0) std::memcpy(SlotData(slot), data, kCachePageSize);
    return slot;
  }
  const uint32_t slot = ClaimSlot();
  Slot& s = slots_[slot];
  s.key = key;
  s.pins = 0;
  if (IsS3Fifo()) {
    s.usage = 0;
    S3FifoAdmit(slot, key);  // after the eviction, which may have pushed this key out of the ghost
  } else {
    s.usage = 1;
  }
  index_.emplace(key, slot);
  std::memcpy(SlotData(slot), data, kCachePageSize);
  return slot;
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
