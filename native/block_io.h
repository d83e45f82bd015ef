// One open layer file seen as checksummed 8 KB blocks, plus reading blobs out of the logical
// value stream that spans the value blocks. Nothing read from disk is trusted: block numbers,
// offsets and lengths are checked before use and faults become CORRUPT_LAYER naming the file.
#ifndef STRATA_BLOCK_IO_H_
#define STRATA_BLOCK_IO_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "codec.h"
#include "file_handles.h"
#include "format.h"

namespace strata {

class PageCache;

// Where a block read goes: through the page cache (normal reads), straight to the file
// (verifyLayer, which must see every byte on disk), or to the cache only — an async read first
// tries to finish on the JS thread from cached blocks and moves to a worker thread at the first
// block that would need the disk.
enum class ReadMode { kCached, kDirect, kCacheOnly };

// Thrown by a kCacheOnly read at a block the cache does not hold. Internal to the read path:
// Core::TryGetPagesCached catches it; it never reaches JS.
struct CacheMiss {};

// A block being read: in place in the page cache (the slot pinned until Release or the next
// acquisition) or in a caller-owned buffer. Not copyable; releases on destruction.
class BlockRef {
 public:
  BlockRef() = default;
  ~BlockRef() { Release(); }
  BlockRef(const BlockRef&) = delete;
  BlockRef& operator=(const BlockRef&) = delete;

  const uint8_t* data() const { return data_; }
  // Whether a cache slot is pinned (not: the bytes are in a caller's buffer, or nothing is held).
  bool pinned() const { return cache_ != nullptr; }
  // Counts a hit on the pinned slot, as releasing it and looking the block up again would
  // (PageCache::Rehit), keeping the pin. Only while pinned().
  void Rehit() const;
  void Release();

 private:
  friend class BlockFile;
  PageCache* cache_ = nullptr;  // set while a slot is pinned
  uint32_t slot_ = 0;
  const uint8_t* data_ = nullptr;
};

class BlockFile {
 public:
  // Takes ownership of `fd`, which joins `handles` (the core's bounded set of open layer files;
  // null: a set of its own without a limit) and may be closed and reopened there between reads.
  BlockFile(std::string path, int fd, uint32_t file_id, PageCache* cache,
            std::shared_ptr<FileHandles> handles = nullptr);
  ~BlockFile();
  BlockFile(const BlockFile&) = delete;
  BlockFile& operator=(const BlockFile&) = delete;

  const std::string& path() const { return path_; }
  uint32_t file_id() const { return file_id_; }
  void set_total_blocks(uint32_t n) { total_blocks_ = n; }

  // Reads block `blkno` (kBlockSize bytes) into `dst`, checking its CRC on the way in from disk.
  void ReadBlock(uint32_t blkno, uint8_t* dst, ReadMode mode) const;
  // The same read, without copying a cached block: returns the block's bytes, either in place in
  // the cache (pinned by `ref`) or read from disk into `buf` (kBlockSize bytes). Counts exactly as
  // ReadBlock does. Releases whatever `ref` held first.
  // `pin_inserted`: a block read from disk into the cache (kCached) is pinned by `ref` too (its
  // bytes still returned from `buf`), so the caller can count later hits on it with Rehit.
  const uint8_t* Acquire(uint32_t blkno, ReadMode mode, uint8_t* buf, BlockRef* ref, bool pin_inserted = false) const;
  // pread + CRC check, no cache, no range check against total_blocks (used for the summary).
  void ReadBlockFromDisk(uint32_t blkno, uint8_t* dst) const;

  // Keeps the descriptor open until this file is destroyed (FileHandles::Retain): called when the
  // layer is closed while reads may still hold it, before its file can be deleted. Best effort.
  void KeepOpen() const;

  [[noreturn]] void Corrupt(uint32_t blkno, const std::string& what) const;
  [[noreturn]] void IoError(const std::string& what, int err) const;

 private:
  std::string path_;
  std::shared_ptr<FileHandles> handles_;
  uint32_t file_id_;
  uint32_t total_blocks_ = 1;
  PageCache* cache_;
};

// An append-only byte buffer that, unlike std::vector::resize, does not zero the bytes it hands
// out (ReadBlob overwrites every one); it keeps its capacity across clear() for reuse.
class ByteArena {
 public:
  size_t size() const { return size_; }
  uint8_t* data() { return buf_.get(); }
  const uint8_t* data() const { return buf_.get(); }
  void clear() { size_ = 0; }
  // Grows by n uninitialized bytes; returns their start. Earlier pointers may move.
  uint8_t* Append(size_t n);

 private:
  std::unique_ptr<uint8_t[]> buf_;
  size_t size_ = 0;
  size_t cap_ = 0;
};

// Buffers reused across blob reads so the read path does not allocate per value.
struct BlobScratch {
  uint8_t block[kBlockSize];  // a value block read from disk
  // The value block last read (in the cache or in `block`), kept after ReadBlob returns: block
  // `held_blk` of `held_file`, pinned if ref.pinned(). See ReadBlob.
  BlockRef ref;
  const BlockFile* held_file = nullptr;
  uint32_t held_blk = 0;
  std::vector<uint8_t> stored;  // compressed payload spanning blocks, gathered from them
  Decompressor decompressor;

  // Whether `ref` pins block `blkno` of `file` in the cache.
  bool Holds(const BlockFile& file, uint32_t blkno) const {
    return ref.pinned() && held_file == &file && held_blk == blkno;
  }
};

// Releases a BlobScratch's held value block when it goes out of scope, on every path out
// (returns and exceptions alike).
class HeldBlockRelease {
 public:
  explicit HeldBlockRelease(BlobScratch& scratch) : scratch_(scratch) {}
  ~HeldBlockRelease() { scratch_.ref.Release(); }
  HeldBlockRelease(const HeldBlockRelease&) = delete;
  HeldBlockRelease& operator=(const HeldBlockRelease&) = delete;

 private:
  BlobScratch& scratch_;
};

struct BlobRef {
  size_t arena_offset;  // where the serialized record starts in the arena
  size_t len;           // its length
  uint64_t end;         // logical offset just past the blob in the value stream
};

// Reads the blob at logical `offset` of the value stream (`value_bytes` long), decompresses it
// and appends the serialized record, checked to be well formed, to `arena`.
// The blob's last block stays held in `scratch.ref` (pinned if it came through the cache) for the
// next ReadBlob of the same file: when that blob starts in the same block, the cache counts a hit
// on it (BlockRef::Rehit) instead of a Release and a fresh LookupPinned, with the same effect on
// the stats and usage counts. The caller must release scratch.ref before any other operation on
// the cache (a node load, another file's read, the end of its walk): a pin held across an insert
// would change which slot is evicted, and the TS twin holds none.
BlobRef ReadBlob(const BlockFile& file, ReadMode mode, uint64_t value_bytes, uint64_t offset, BlobScratch& scratch,
                 ByteArena& arena);

// The block of the value stream holding logical byte `offset`.
inline uint32_t ValueBlockOf(uint64_t offset) {
  return static_cast<uint32_t>(kValueStartBlk + offset / kBlockPayload);
}

}  // namespace strata

#endif  // STRATA_BLOCK_IO_H_
