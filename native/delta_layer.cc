#include "delta_layer.h"

#include <cstring>

namespace strata {

bool CollectDeltaChain(const Layer& layer, const uint8_t* key, WideLsn floor, WideLsn cont, ReadScratch& s) {
  if (cont == 0 || floor >= cont) return false;
  // Start at the newest entry of `key` below `cont`: the greatest index key ≤ key ‖ (cont - 1).
  std::memcpy(s.search_key, key, kKeySize);
  StoreBe64(s.search_key + kKeySize, static_cast<uint64_t>(cont - 1));
  // PushLayerRecord leaves each blob's last value block held for the next blob (ReadBlob); it
  // must be let go before the cache sees anything else: before Prev loads the previous leaf, and
  // on every way out of this walk, exceptions included.
  const HeldBlockRelease release_value_block(s.blob);
  BtreeCursor cursor(layer.file(), layer.geometry(), s.mode, s.node);
  for (bool ok = cursor.SeekLE(s.search_key); ok; ok = cursor.Prev()) {
    const uint8_t* entry = cursor.key();
    if (std::memcmp(entry, key, kKeySize) != 0) break;
    if (LoadBe64(entry + kKeySize) < floor) break;
    cursor.Detach();  // no pin while the value is read
    if (PushLayerRecord(layer, cursor.value(), s)) return true;
    if (cursor.AtLeafStart()) s.blob.ref.Release();  // Prev loads the previous leaf
  }
  return false;
}

}  // namespace strata
