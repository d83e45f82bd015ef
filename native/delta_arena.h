// A frozen in-memory layer handed over as flat arrays (lib/core/delta_arena.ts, its TS twin), and
// the walk that appends its entries to a delta LayerWriter in (key, LSN) order: what a flush
// writes, done on a libuv thread by LayerWriter.finishArenaAsync (addon.cc).
#ifndef STRATA_DELTA_ARENA_H_
#define STRATA_DELTA_ARENA_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "layer_file.h"
#include "reconstruct.h"

namespace strata {

// One record's entry, native byte order: u64 LSN, u32 slab, u32 offset, u32 length, i32 previous
// ordinal of the same key (kArenaNoPrevious at its oldest). As lib/core/delta_arena.ts.
constexpr size_t kArenaEntryBytes = 24;
constexpr int32_t kArenaNoPrevious = -1;
constexpr int32_t kArenaNotPacked = -1;

struct DeltaArenaView {
  ByteSpan keys;                 // kKeySize bytes per key, ascending
  ByteSpan heads;                // i32 per key: its newest record's ordinal
  ByteSpan entries;              // kArenaEntryBytes per record
  std::vector<ByteSpan> slabs;   // record bytes
  ByteSpan packed_at;            // two i32 per record: offset in `packed` and length, or kArenaNotPacked
  ByteSpan packed;               // compressed forms, back to back
};

// How much AppendDeltaArena hands LayerWriter::Append at a time: bounds its batch buffers. The
// layer written does not depend on them (the fuzz target walks with small ones to cross batch
// boundaries often).
struct ArenaBatchLimits {
  size_t entries = 4096;
  size_t bytes = 1024 * 1024;  // blob bytes
};

// Appends every entry of `arena` to `writer` (a delta writer with the arena's codec): index key
// = key || LSN (u64 BE), blob raw or with its compressed form, will_init from the record. Throws
// BAD_ARGUMENT naming the key or record for a malformed arena (an ordinal out of range or not
// older than the one before it, bytes outside a slab, sizes that disagree, a compressed form in
// an uncompressed layer), before appending the batch that holds it. Reads the arena only.
void AppendDeltaArena(LayerWriter& writer, uint8_t codec, const DeltaArenaView& arena, const ArenaBatchLimits& limits = {});

}  // namespace strata

#endif  // STRATA_DELTA_ARENA_H_
