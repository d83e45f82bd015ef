#include "delta_layer.h"

#include <cstring>

namespace strata {

// The page cache must see exactly the operations the TS twin makes (both cores' stats are
// compared), in the same order: the leaf's load, then each value's blocks newest first, then the
// previous leaf's load if the chain goes on there. The values of the chain that lie in the
// current leaf are therefore gathered first, while the leaf is pinned, and read after it is let
// go: no 8 KB copy of the leaf (BtreeCursor::Detach) unless the chain continues into the previous
// leaf, and the value blocks stay held from one blob to the next (ReadBlob), released before the
// previous leaf is loaded and when the walk ends.
bool CollectDeltaChain(const Layer& layer, const uint8_t* key, WideLsn floor, WideLsn cont, ReadScratch& s) {
  if (cont == 0 || floor >= cont) return false;
  // Start at the newest entry of `key` below `cont`: the greatest index key ≤ key ‖ (cont - 1).
  std::memcpy(s.search_key, key, kKeySize);
  StoreBe64(s.search_key + kKeySize, static_cast<uint64_t>(cont - 1));
  const HeldBlockRelease release_value_block(s.blob);  // on every way out, exceptions included
  BtreeCursor cursor(layer.file(), layer.geometry(), s.mode, s.node);
  for (bool ok = cursor.SeekLE(s.search_key); ok; ok = cursor.Prev()) {
    // This leaf's part of the chain, newest first: it ends at another key, at an LSN below the
    // floor or after a will_init entry (PushLayerRecord checks the bit against the record). Prev
    // within the leaf touches no cache.
    s.leaf_values.clear();
    bool next_leaf = false;  // the leaf's first entry belongs to the chain and is not will_init
    for (;;) {
      const uint8_t* entry = cursor.key();
      if (std::memcmp(entry, key, kKeySize) != 0 || LoadBe64(entry + kKeySize) < floor) break;
      const uint64_t value = cursor.value();
      s.leaf_values.push_back(value);
      if ((value & kWillInitBit) != 0) break;
      if (cursor.AtLeafStart()) {
        next_leaf = true;
        break;
      }
      cursor.Prev();
    }
    // No pin on the leaf while the values are read: a pin held meanwhile would change which slot
    // an insert evicts. Detach keeps a copy for the Prev below; otherwise the leaf is done with.
    if (next_leaf) {
      cursor.Detach();
    } else {
      cursor.Release();
    }
    for (const uint64_t value : s.leaf_values) {
      if (PushLayerRecord(layer, value, s)) return true;
    }
    if (!next_leaf) return false;
    s.blob.ref.Release();  // before Prev loads the previous leaf through the cache
  }
  return false;
}

}  // namespace strata
