#include "image_layer.h"

#include <cstring>

namespace strata {

bool ImageLookup(const Layer& layer, const uint8_t* key, ReadScratch& s) {
  BtreeCursor cursor(layer.file(), layer.geometry(), s.mode, s.node);
  if (!cursor.SeekLE(key) || std::memcmp(cursor.key(), key, kKeySize) != 0) return false;
  // The will_init check in PushLayerRecord rejects an image entry holding a patch.
  PushLayerRecord(layer, cursor.value(), s);
  return true;
}

}  // namespace strata
