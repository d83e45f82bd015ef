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

std::unique_ptr<ReadScratch> ScratchPool::Borrow() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      std::unique_ptr<ReadScratch> s = std::move(idle_.back());
      idle_.pop_back();
      return s;
    }
  }
  return std::make_unique<ReadScratch>();
}

void ScratchPool::Return(std::unique_ptr<ReadScratch> scratch) {
  scratch->Reset();
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < kMaxIdle) idle_.push_back(std::move(scratch));
}

void ReadSnapshot::Read(ByteSpan plan, ByteSpan out, ByteSpan status, CountSpan counts) const {
  std::unique_ptr<ReadScratch> s = scratch->Borrow();
  GetPages(maps, plan, out, status, counts, *s);  // on a throw the scratch is freed, not pooled
  scratch->Return(std::move(s));
}

Core::Core(uint64_t page_cache_bytes, PageCachePolicy page_cache_policy, size_t max_open_layer_files)
    : cache_(std::make_shared<PageCache>(page_cache_bytes, page_cache_policy)),
      scratch_(std::make_shared<ScratchPool>()),
      file_handles_(std::make_shared<FileHandles>(max_open_layer_files)) {}

void Core::CheckOpen() const {
  if (cache_ == nullptr) Fail(ErrorCode::kClosed, "the core is closed");
}

PageCache& Core::cache() {
  CheckOpen();
  return *cache_;
}

uint32_t Core::OpenLayer(const std::string& path) {
  CheckOpen();
  const uint32_t handle = NextId(&next_handle_, "layer");
  layers_.emplace(handle, std::shared_ptr<const Layer>(Layer::Open(path, handle, cache_.get(), file_handles_)));
  return handle;
}

std::shared_ptr<const Layer> Core::FindLayer(uint32_t handle) const {
  CheckOpen();
  auto it = layers_.find(handle);
  if (it == layers_.end()) BadArgument("unknown layer handle " + std::to_string(handle));
  return it->second;
}

const Layer& Core::GetLayer(uint32_t handle) const { return *FindLayer(handle); }

void Core::CloseLayer(uint32_t handle) {
  const std::shared_ptr<const Layer> layer = FindLayer(handle);
  // A read on a worker thread may still hold the layer, and the engine deletes the file right
  // after closing it: keep its descriptor open (not evictable) until the last holder lets go.
  if (layer.use_count() > 2) layer->file().KeepOpen();
  layers_.erase(handle);
  for (auto& entry : maps_) {
    if (entry.second->Holds(handle)) entry.second = entry.second->WithClosedLayer(handle);
  }
}

uint32_t Core::CreateLayerMap() {
  CheckOpen();
  const uint32_t id = NextId(&next_map_id_, "layer map");
  maps_.emplace(id, std::make_shared<const LayerMap>());
  return id;
}

void Core::SetLayerMap(uint32_t map_id, const std::vector<uint32_t>& handles) {
  CheckOpen();
  auto it = maps_.find(map_id);
  if (it == maps_.end()) BadArgument("unknown layer map " + std::to_string(map_id));
  std::vector<std::shared_ptr<const Layer>> layers;
  layers.reserve(handles.size());
  for (uint32_t h : handles) layers.push_back(FindLayer(h));
  it->second = std::make_shared<const LayerMap>(std::move(layers));
}

void Core::DropLayerMap(uint32_t map_id) {
  CheckOpen();
  if (maps_.erase(map_id) == 0) BadArgument("unknown layer map " + std::to_string(map_id));
}

void Core::GetPages(ByteSpan plan, ByteSpan out, ByteSpan status, CountSpan counts) {
  CheckOpen();
  std::unique_ptr<ReadScratch> s = scratch_->Borrow();
  strata::GetPages(maps_, plan, out, status, counts, *s);
  scratch_->Return(std::move(s));
}

bool Core::TryGetPagesCached(ByteSpan plan, ByteSpan out, ByteSpan status, CountSpan counts) {
  CheckOpen();
  std::unique_ptr<ReadScratch> s = scratch_->Borrow();
  s->mode = ReadMode::kCacheOnly;
  try {
    strata::GetPages(maps_, plan, out, status, counts, *s);
  } catch (const CacheMiss&) {
    s->mode = ReadMode::kCached;
    scratch_->Return(std::move(s));
    return false;
  }
  s->mode = ReadMode::kCached;
  scratch_->Return(std::move(s));
  return true;
}

ReadSnapshot Core::Snapshot() const {
  CheckOpen();
  return ReadSnapshot{cache_, scratch_, maps_};
}

LayerKeysSnapshot Core::KeysSnapshot(uint32_t handle) const {
  std::shared_ptr<const Layer> layer = FindLayer(handle);
  return LayerKeysSnapshot{cache_, std::move(layer)};
}

void Core::Close() {
  // As in CloseLayer: reads in flight keep the descriptors of the layers they hold.
  for (const auto& [handle, layer] : layers_) {
    if (layer.use_count() > 1) layer->file().KeepOpen();
  }
  maps_.clear();
  layers_.clear();
  scratch_.reset();
  cache_.reset();
}

}  // namespace strata
