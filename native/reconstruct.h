// GetPage@LSN for a batch: parses the read plan (docs/FORMAT.md, "Read plan"), walks each
// request's segments and layers (docs/ARCHITECTURE.md) and redoes the collected records.
#ifndef STRATA_RECONSTRUCT_H_
#define STRATA_RECONSTRUCT_H_

#include <cstddef>
#include <cstdint>

#include "layer_map.h"

namespace strata {

struct ReadTotals {
  uint64_t layers_visited = 0;
  uint64_t records_applied = 0;
};

struct ByteSpan {
  uint8_t* data;
  size_t len;
};

struct CountSpan {
  uint32_t* data;
  size_t len;
};

// Per-request read statistics live in a caller-owned array rather than a result object, so a
// call returns nothing and allocates nothing on the JS heap.
constexpr size_t kCountsPerRequest = 2;  // layers visited, records applied

// `out` receives kPageSize bytes per request (zeros for NOT_FOUND), `status` one byte each and
// `counts` kCountsPerRequest u32s each (saturating).
// BAD_ARGUMENT for a malformed plan, length mismatches or unknown layer maps, before any I/O.
// `scratch` is reused from call to call, so a call on cached blocks allocates nothing.
void GetPages(const LayerMapTable& maps, ByteSpan plan, ByteSpan out, ByteSpan status, CountSpan counts,
              ReadScratch& scratch);

}  // namespace strata

#endif  // STRATA_RECONSTRUCT_H_
