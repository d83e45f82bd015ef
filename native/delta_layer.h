// Reading one key's history out of a delta layer.
#ifndef STRATA_DELTA_LAYER_H_
#define STRATA_DELTA_LAYER_H_

#include <cstdint>

#include "layer_file.h"

namespace strata {

// Pushes the records of `key` with floor ≤ lsn < cont onto the chain, newest first, stopping
// after the first will_init one; returns whether it found one.
bool CollectDeltaChain(const Layer& layer, const uint8_t* key, WideLsn floor, WideLsn cont, ReadScratch& s);

}  // namespace strata

#endif  // STRATA_DELTA_LAYER_H_
