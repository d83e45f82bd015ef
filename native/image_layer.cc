#include "image_layer.h"

#include <cstring>

namespace strata {

bool ImageLookup(const Layer& layer, const uint8_t* key, ReadScratch& s) {
  BtreeCursor cursor(layer.file(), layer.geometry(), s.mode, s.node);
  if (!cursor.SeekLE(key) || std::memcmp(cursor.key(), key, kKeySize) != 0) return false;
  const uint64_t value = cursor.value();
  cursor.Release();  // no pin while the value is read (see BtreeCursor::Detach)
  const HeldBlockRelease release_value_block(s.blob);  // nothing follows in this layer to rehit it
  // The will_init check in PushLayerRecord rejects an image entry holding a patch.
  PushLayerRecord(layer, value, s);
  return true;
}

}  // namespace strata
