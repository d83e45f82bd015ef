// The state behind one JS `Core`: the page cache, open layers by handle and layer maps by id.
// Free of N-API, so reads can run on libuv worker threads from a ReadSnapshot.
#ifndef STRATA_CORE_H_
#define STRATA_CORE_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "layer_file.h"
#include "layer_map.h"
#include "page_cache.h"
#include "reconstruct.h"

namespace strata {

// Read buffers (and a zstd context each) lent to one read at a time, so concurrent reads on
// worker threads never share scratch and a warm core allocates none per read.
class ScratchPool {
 public:
  std::unique_ptr<ReadScratch> Borrow();
  void Return(std::unique_ptr<ReadScratch> scratch);

 private:
  // More than the libuv pool's threads plus the JS thread is never needed at once.
  static constexpr size_t kMaxIdle = 8;
  std::mutex mu_;
  std::vector<std::unique_ptr<ReadScratch>> idle_;
};

// Everything one read needs, owned by the read: it stays valid if the core closes layers, replaces
// maps or is closed itself while the read runs on another thread. Members are destroyed in
// reverse order, so the layers (which point at the cache) go before the cache.
struct ReadSnapshot {
  std::shared_ptr<PageCache> cache;
  std::shared_ptr<ScratchPool> scratch;
  LayerMapTable maps;

  void Read(ByteSpan plan, ByteSpan out, ByteSpan status, CountSpan counts) const;
};

// One layer's key listing on another thread: it keeps the layer, and the cache its reads go
// through, alive if the core closes either meanwhile (the layer first: members go in reverse).
struct LayerKeysSnapshot {
  std::shared_ptr<PageCache> cache;
  std::shared_ptr<const Layer> layer;
};

class Core {
 public:
  // `max_open_layer_files` bounds the layer-file descriptors held at once (file_handles.h).
  Core(uint64_t page_cache_bytes, PageCachePolicy page_cache_policy, size_t max_open_layer_files);

  PageCache& cache();

  // Opens and validates a layer; handles start at 1, increase and are never reused.
  uint32_t OpenLayer(const std::string& path);
  const Layer& GetLayer(uint32_t handle) const;
  // Forgets the handle. Maps still holding the layer fail on their next read; reads already
  // running keep their reference, so the file closes when the last of them ends.
  void CloseLayer(uint32_t handle);

  uint32_t CreateLayerMap();
  void SetLayerMap(uint32_t map_id, const std::vector<uint32_t>& handles);
  void DropLayerMap(uint32_t map_id);

  void GetPages(ByteSpan plan, ByteSpan out, ByteSpan status, CountSpan counts);
  // The same read from cached blocks only: false, with out/status/counts unspecified, at the
  // first block that is not cached (the caller then reads on a worker thread from a snapshot).
  bool TryGetPagesCached(ByteSpan plan, ByteSpan out, ByteSpan status, CountSpan counts);
  // The state a read on another thread needs, taken on the JS thread.
  ReadSnapshot Snapshot() const;
  // What a key listing of `handle` on another thread needs (BAD_ARGUMENT for an unknown handle).
  LayerKeysSnapshot KeysSnapshot(uint32_t handle) const;

  // Releases the cache and every layer, once reads in flight are done with them; later calls
  // fail with BAD_ARGUMENT.
  void Close();
  // BAD_ARGUMENT once closed.
  void CheckOpen() const;

 private:
  std::shared_ptr<const Layer> FindLayer(uint32_t handle) const;

  std::shared_ptr<PageCache> cache_;
  std::shared_ptr<ScratchPool> scratch_;
  std::shared_ptr<FileHandles> file_handles_;
  std::unordered_map<uint32_t, std::shared_ptr<const Layer>> layers_;
  LayerMapTable maps_;
  uint32_t next_handle_ = 1;
  uint32_t next_map_id_ = 1;
};

}  // namespace strata

#endif  // STRATA_CORE_H_
