// The historic layers of one timeline and the choice of the next layer to search for a key
// (docs/ARCHITECTURE.md, "GetPage@LSN").
#ifndef STRATA_LAYER_MAP_H_
#define STRATA_LAYER_MAP_H_

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "layer_file.h"

namespace strata {

struct LayerChoice {
  const Layer* layer = nullptr;  // null: no layer holds anything for the key below `cont`
  WideLsn floor = 0;             // delta layers: lowest LSN to read from it
};

// Immutable once built: the core replaces a timeline's map as a whole, so a read that took a
// snapshot of the maps (an async read on a worker thread) keeps a consistent view, and the layers
// it holds stay open until it ends even if the core closes their handles meanwhile.
class LayerMap {
 public:
  LayerMap() = default;
  explicit LayerMap(std::vector<std::shared_ptr<const Layer>> layers) : layers_(std::move(layers)) {}

  // Among layers with key_start ≤ key < key_end and lsn_start < cont, the one with the greatest
  // min(lsn_end, cont); ties go to an image, then the greater lsn_start, then the later position.
  // BAD_ARGUMENT if a layer of this map was closed while the map still held it.
  LayerChoice Select(const uint8_t* key, WideLsn cont) const;

  bool Holds(uint32_t handle) const;
  // A copy whose reads fail: closing a layer that a map still holds is a caller bug, reported on
  // the map's next read rather than by silently reading a layer the caller gave up.
  std::shared_ptr<const LayerMap> WithClosedLayer(uint32_t handle) const;

 private:
  std::vector<std::shared_ptr<const Layer>> layers_;
  uint32_t closed_handle_ = 0;  // nonzero: the handle of a layer closed while held
};

// Map id → current map. Copying the table is the snapshot an async read takes.
using LayerMapTable = std::unordered_map<uint32_t, std::shared_ptr<const LayerMap>>;

}  // namespace strata

#endif  // STRATA_LAYER_MAP_H_
