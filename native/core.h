// The state behind one JS `Core`: the page cache, open layers by handle and layer maps by id.
// Free of N-API so it can be reasoned about (and later driven from worker threads) on its own.
#ifndef STRATA_CORE_H_
#define STRATA_CORE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "layer_file.h"
#include "layer_map.h"
#include "page_cache.h"
#include "reconstruct.h"

namespace strata {

class Core {
 public:
  Core(uint64_t page_cache_bytes, PageCachePolicy page_cache_policy);

  PageCache& cache();

  // Opens and validates a layer; handles start at 1, increase and are never reused.
  uint32_t OpenLayer(const std::string& path);
  const Layer& GetLayer(uint32_t handle) const;
  void CloseLayer(uint32_t handle);

  uint32_t CreateLayerMap();
  void SetLayerMap(uint32_t map_id, const std::vector<uint32_t>& handles);
  void DropLayerMap(uint32_t map_id);

  ReadTotals GetPages(ByteSpan plan, ByteSpan out, ByteSpan status);

  // Releases the cache and every layer; later calls fail with BAD_ARGUMENT.
  void Close();

 private:
  void CheckOpen() const;
  std::shared_ptr<Layer> FindLayer(uint32_t handle) const;

  std::unique_ptr<PageCache> cache_;
  std::unordered_map<uint32_t, std::shared_ptr<Layer>> layers_;
  LayerMapTable maps_;
  // Buffers and the zstd context of the read path, kept between getPages calls. One per core
  // while reads run on the JS thread; worker-thread reads will need one per thread.
  std::unique_ptr<ReadScratch> read_scratch_;
  uint32_t next_handle_ = 1;
  uint32_t next_map_id_ = 1;
};

}  // namespace strata

#endif  // STRATA_CORE_H_
