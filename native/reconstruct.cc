#include "reconstruct.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "delta_layer.h"
#include "errors.h"
#include "image_layer.h"
#include "walredo.h"

namespace strata {
namespace {

constexpr size_t kU32 = 4;
constexpr size_t kU64 = 8;

// Bounds-checked cursor over the plan buffer.
class PlanReader {
 public:
  PlanReader(const uint8_t* data, size_t len) : data_(data), len_(len) {}

  const uint8_t* Take(size_t n) {
    if (len_ - pos_ < n) BadArgument("read plan truncated at byte " + std::to_string(pos_));
    const uint8_t* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  uint32_t U32() { return LoadBe32(Take(kU32)); }
  uint64_t U64() { return LoadBe64(Take(kU64)); }
  bool AtEnd() const { return pos_ == len_; }
  size_t pos() const { return pos_; }

 private:
  const uint8_t* data_;
  size_t len_;
  size_t pos_ = 0;
};

struct SegmentHeader {
  uint32_t map_id;
  uint64_t cap_lsn;
  uint32_t mem_count;
};

SegmentHeader ReadSegmentHeader(PlanReader& r) {
  SegmentHeader h;
  h.map_id = r.U32();
  h.cap_lsn = r.U64();
  h.mem_count = r.U32();
  return h;
}

// Returns the record bytes of one in-memory record and its length.
const uint8_t* ReadMemRecord(PlanReader& r, uint32_t* len) {
  r.U64();  // its LSN: the plan already orders the records, redo needs no LSNs
  *len = r.U32();
  return r.Take(*len);
}

// Walks the whole plan once so a malformed one fails before any output or I/O.
uint32_t ValidatePlan(const LayerMapTable& maps, ByteSpan plan) {
  PlanReader r(plan.data, plan.len);
  const uint32_t count = r.U32();
  for (uint32_t i = 0; i < count; ++i) {
    r.Take(kKeySize);
    const uint32_t segments = r.U32();
    for (uint32_t j = 0; j < segments; ++j) {
      const SegmentHeader h = ReadSegmentHeader(r);
      if (maps.find(h.map_id) == maps.end()) BadArgument("read plan names unknown layer map " + std::to_string(h.map_id));
      for (uint32_t k = 0; k < h.mem_count; ++k) {
        uint32_t len;
        const uint8_t* rec = ReadMemRecord(r, &len);
        if (const char* bad = CheckSerializedRecord(rec, len)) {
          BadArgument("read plan request " + std::to_string(i) + ": in-memory record: " + bad);
        }
      }
    }
  }
  if (!r.AtEnd()) BadArgument("read plan has " + std::to_string(plan.len - r.pos()) + " trailing bytes");
  return count;
}

enum class Outcome { kSearching, kFound, kNotFound };

// Searches one segment's layer map below cap + 1 (ARCHITECTURE.md, the `loop:` part).
uint32_t Saturate(uint64_t v) {
  return v > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(v);
}

Outcome SearchLayers(const LayerMap& map, const uint8_t* key, uint64_t cap, ReadScratch& s, ReadTotals& totals) {
  WideLsn cont = WideLsn{cap} + 1;
  for (;;) {
    const LayerChoice choice = map.Select(key, cont);
    if (choice.layer == nullptr) return Outcome::kSearching;
    ++totals.layers_visited;
    if (choice.layer->is_image()) return ImageLookup(*choice.layer, key, s) ? Outcome::kFound : Outcome::kNotFound;
    if (CollectDeltaChain(*choice.layer, key, choice.floor, cont, s)) return Outcome::kFound;
    cont = choice.floor;  // Select guarantees floor < cont, so the walk moves down every step
  }
}

// The key as lib/key.ts formatEncodedKey writes it: spc/db/rel.fork#blk for a relation page, else hex.
std::string FormatKey(const uint8_t* key) {
  char buf[2 * kKeySize + 1];
  if (key[0] == kKeyKindRelPage) {
    std::snprintf(buf, sizeof(buf), "%u/%u/%u.%u#%u", LoadBe32(key + 1), LoadBe32(key + 5), LoadBe32(key + 9),
                  static_cast<unsigned>(key[13]), LoadBe32(key + 14));
  } else {
    for (size_t i = 0; i < kKeySize; ++i) std::snprintf(buf + 2 * i, 3, "%02X", key[i]);
  }
  return buf;
}

void Redo(ReadScratch& s, const uint8_t* key, uint8_t* page) {
  s.views.clear();
  for (const ChainEntry& e : s.chain) {
    s.views.push_back(RecordView{e.plan_data != nullptr ? e.plan_data : s.arena.data() + e.arena_offset, e.len});
  }
  const char* err = nullptr;
  try {
    err = ApplyRecords(s.views.data(), s.views.size(), page);
  } catch (const StrataError& e) {
    // PostgreSQL redo failures keep their code; the message gains the page they were reading.
    if (e.code() != ErrorCode::kWalUnsupported && e.code() != ErrorCode::kRedoFailed) throw;
    Fail(e.code(), "page " + FormatKey(key) + ": " + e.what());
  }
  if (err != nullptr) Fail(ErrorCode::kCorruptLayer, std::string("reconstruction: ") + err);
}

}  // namespace

void GetPages(const LayerMapTable& maps, ByteSpan plan, ByteSpan out, ByteSpan status, CountSpan counts,
              ReadScratch& s) {
  const uint32_t count = ValidatePlan(maps, plan);
  if (out.len != size_t{count} * kPageSize) {
    BadArgument("out holds " + std::to_string(out.len) + " bytes, expected " + std::to_string(count) + " pages");
  }
  if (status.len != count) BadArgument("status holds " + std::to_string(status.len) + " bytes, expected " + std::to_string(count));
  if (counts.len != size_t{count} * kCountsPerRequest) {
    BadArgument("counts holds " + std::to_string(counts.len) + " entries, expected " +
                std::to_string(size_t{count} * kCountsPerRequest));
  }

  PlanReader r(plan.data, plan.len);
  r.U32();
  for (uint32_t i = 0; i < count; ++i) {
    const uint8_t* key = r.Take(kKeySize);
    const uint32_t segments = r.U32();
    s.Reset();
    ReadTotals totals;
    Outcome outcome = Outcome::kSearching;
    // Every segment is parsed even after the outcome is known, to reach the next request.
    for (uint32_t j = 0; j < segments; ++j) {
      const SegmentHeader h = ReadSegmentHeader(r);
      for (uint32_t k = 0; k < h.mem_count; ++k) {
        uint32_t len;
        const uint8_t* rec = ReadMemRecord(r, &len);
        if (outcome != Outcome::kSearching) continue;
        s.chain.push_back(ChainEntry{rec, 0, len});
        if (RecordWillInit(rec)) outcome = Outcome::kFound;
      }
      if (outcome == Outcome::kSearching) outcome = SearchLayers(*maps.at(h.map_id), key, h.cap_lsn, s, totals);
    }
    uint8_t* page = out.data + size_t{i} * kPageSize;
    if (outcome == Outcome::kFound) {
      Redo(s, key, page);
      totals.records_applied = s.chain.size();
      status.data[i] = kPageStatusOk;
    } else {
      std::memset(page, 0, kPageSize);
      status.data[i] = kPageStatusNotFound;
    }
    counts.data[size_t{i} * kCountsPerRequest] = Saturate(totals.layers_visited);
    counts.data[size_t{i} * kCountsPerRequest + 1] = Saturate(totals.records_applied);
  }
}

}  // namespace strata
