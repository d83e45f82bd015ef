// Reading one key out of an image layer.
#ifndef STRATA_IMAGE_LAYER_H_
#define STRATA_IMAGE_LAYER_H_

#include <cstdint>

#include "layer_file.h"

namespace strata {

// Pushes the layer's record for `key` onto the chain and returns true, or returns false when the
// layer does not hold the key (which then does not exist at the layer's LSN).
bool ImageLookup(const Layer& layer, const uint8_t* key, ReadScratch& s);

}  // namespace strata

#endif  // STRATA_IMAGE_LAYER_H_
