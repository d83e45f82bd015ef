#include "layer_map.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "errors.h"

namespace strata {
namespace {

bool Covers(const LayerSummary& s, const uint8_t* key, WideLsn cont) {
  return s.lsn_start < cont && std::memcmp(s.key_start, key, kKeySize) <= 0 && std::memcmp(key, s.key_end, kKeySize) < 0;
}

// True when `a` is preferred over `b` (or ties with it: the later position wins, and `a` is later).
bool Outranks(const LayerSummary& a, const LayerSummary& b, WideLsn cont) {
  const WideLsn top_a = std::min<WideLsn>(a.lsn_end, cont);
  const WideLsn top_b = std::min<WideLsn>(b.lsn_end, cont);
  if (top_a != top_b) return top_a > top_b;
  const bool image_a = a.kind == kLayerKindImage, image_b = b.kind == kLayerKindImage;
  if (image_a != image_b) return image_a;
  return a.lsn_start >= b.lsn_start;
}

}  // namespace

LayerChoice LayerMap::Select(const uint8_t* key, WideLsn cont) const {
  if (closed_handle_ != 0) BadArgument("layer map holds closed layer " + std::to_string(closed_handle_));
  const Layer* best = nullptr;
  for (const auto& layer : layers_) {
    const LayerSummary& s = layer->summary();
    if (!Covers(s, key, cont)) continue;
    if (best == nullptr || Outranks(s, best->summary(), cont)) best = layer.get();
  }
  LayerChoice choice;
  choice.layer = best;
  if (best == nullptr || best->is_image()) return choice;
  // An image inside the delta's LSN range already holds everything the delta has below it.
  const uint64_t start = best->summary().lsn_start;
  choice.floor = start;
  for (const auto& layer : layers_) {
    const LayerSummary& s = layer->summary();
    if (layer->is_image() && s.lsn_start >= start && Covers(s, key, cont)) {
      choice.floor = std::max<WideLsn>(choice.floor, WideLsn{s.lsn_start} + 1);
    }
  }
  return choice;
}

bool LayerMap::Holds(uint32_t handle) const {
  return std::any_of(layers_.begin(), layers_.end(),
                     [handle](const std::shared_ptr<const Layer>& l) { return l->handle() == handle; });
}

std::shared_ptr<const LayerMap> LayerMap::WithClosedLayer(uint32_t handle) const {
  auto copy = std::make_shared<LayerMap>(*this);
  copy->closed_handle_ = handle;
  return copy;
}

}  // namespace strata
