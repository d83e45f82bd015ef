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

class LayerMap {
 public:
  void Set(std::vector<std::shared_ptr<Layer>> layers) { layers_ = std::move(layers); }

  // Among layers with key_start ≤ key < key_end and lsn_start < cont, the one with the greatest
  // min(lsn_end, cont); ties go to an image, then the greater lsn_start, then the later position.
  // BAD_ARGUMENT if the map holds a layer that was closed since.
  LayerChoice Select(const uint8_t* key, WideLsn cont) const;

 private:
  std::vector<std::shared_ptr<Layer>> layers_;
};

using LayerMapTable = std::unordered_map<uint32_t, LayerMap>;

}  // namespace strata

#endif  // STRATA_LAYER_MAP_H_
