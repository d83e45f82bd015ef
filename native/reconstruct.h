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

// `out` receives kPageSize bytes per request (zeros for NOT_FOUND), `status` one byte each.
// BAD_ARGUMENT for a malformed plan, length mismatches or unknown layer maps, before any I/O.
// `scratch` is reused from call to call, so a call on cached blocks allocates nothing.
ReadTotals GetPages(const LayerMapTable& maps, ByteSpan plan, ByteSpan out, ByteSpan status, ReadScratch& scratch);

}  // namespace strata

#endif  // STRATA_RECONSTRUCT_H_
