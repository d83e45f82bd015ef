#include "core.h"

#include <limits>

#include "errors.h"

namespace strata {
namespace {

uint32_t NextId(uint32_t* counter, const char* what) {
  if (*counter == std::numeric_limits<uint32_t>::max()) BadArgument(std::string("out of ") + what + " ids");
  return (*counter)++;
}

}  // namespace

Core::Core(uint64_t page_cache_bytes, PageCachePolicy page_cache_policy)
    : cache_(std::make_unique<PageCache>(page_cache_bytes, page_cache_policy)), read_scratch_(std::make_unique<ReadScratch>()) {}

void Core::CheckOpen() const {
  if (cache_ == nullptr) BadArgument("the core is closed");
}

PageCache& Core::cache() {
  CheckOpen();
  return *cache_;
}

uint32_t Core::OpenLayer(const std::string& path) {
  CheckOpen();
  const uint32_t handle = NextId(&next_handle_, "layer");
  layers_.emplace(handle, std::shared_ptr<Layer>(Layer::Open(path, handle, cache_.get())));
  return handle;
}

std::shared_ptr<Layer> Core::FindLayer(uint32_t handle) const {
  CheckOpen();
  auto it = layers_.find(handle);
  if (it == layers_.end()) BadArgument("unknown layer handle " + std::to_string(handle));
  return it->second;
}

const Layer& Core::GetLayer(uint32_t handle) const { return *FindLayer(handle); }

void Core::CloseLayer(uint32_t handle) {
  FindLayer(handle)->Close();  // maps still holding it fail on their next read
  layers_.erase(handle);
}

uint32_t Core::CreateLayerMap() {
  CheckOpen();
  const uint32_t id = NextId(&next_map_id_, "layer map");
  maps_.emplace(id, LayerMap());
  return id;
}

void Core::SetLayerMap(uint32_t map_id, const std::vector<uint32_t>& handles) {
  CheckOpen();
  auto it = maps_.find(map_id);
  if (it == maps_.end()) BadArgument("unknown layer map " + std::to_string(map_id));
  std::vector<std::shared_ptr<Layer>> layers;
  layers.reserve(handles.size());
  for (uint32_t h : handles) layers.push_back(FindLayer(h));
  it->second.Set(std::move(layers));
}

void Core::DropLayerMap(uint32_t map_id) {
  CheckOpen();
  if (maps_.erase(map_id) == 0) BadArgument("unknown layer map " + std::to_string(map_id));
}

ReadTotals Core::GetPages(ByteSpan plan, ByteSpan out, ByteSpan status) {
  CheckOpen();
  return strata::GetPages(maps_, plan, out, status, *read_scratch_);
}

void Core::Close() {
  for (auto& entry : layers_) entry.second->Close();
  layers_.clear();
  maps_.clear();
  cache_.reset();
  read_scratch_.reset();
}

}  // namespace strata
