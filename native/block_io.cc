#include "block_io.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "crc32.h"
#include "errors.h"
#include "fault_injection.h"
#include "page_cache.h"
#include "walredo.h"

namespace strata {

// Without a shared set, a file keeps its descriptor for its lifetime, as before the set existed.
static constexpr size_t kUnboundedOpenFiles = SIZE_MAX;

BlockFile::BlockFile(std::string path, int fd, uint32_t file_id, PageCache* cache, std::shared_ptr<FileHandles> handles)
    : path_(std::move(path)),
      handles_(handles != nullptr ? std::move(handles) : std::make_shared<FileHandles>(kUnboundedOpenFiles)),
      file_id_(file_id),
      cache_(cache) {
  handles_->Adopt(file_id_, path_, fd);
}

BlockFile::~BlockFile() { handles_->Forget(file_id_); }

void BlockFile::KeepOpen() const {
  // Best effort: if the file cannot be reopened now, a later read reports that itself.
  (void)handles_->Retain(file_id_);
}

void BlockFile::Corrupt(uint32_t blkno, const std::string& what) const {
  Fail(ErrorCode::kCorruptLayer, path_ + ": block " + std::to_string(blkno) + ": " + what);
}

// Names the errno as Node does (EIO), as layer_file.cc's messages and the TS core's do.
void BlockFile::IoError(const std::string& what, int err) const {
  const char* name = ::strerrorname_np(err);
  Fail(ErrorCode::kIoError, path_ + ": " + what + ": " + (name != nullptr ? name : "errno " + std::to_string(err)) + ": " + std::strerror(err));
}

void BlockFile::ReadBlockFromDisk(uint32_t blkno, uint8_t* dst) const {
  size_t got = 0;
  const off_t base = static_cast<off_t>(blkno) * static_cast<off_t>(kBlockSize);
  if (fault::Active()) {
    const int injected = fault::Check(fault::Op::kBlockRead, 0, nullptr);
    if (injected != 0) IoError("read of block " + std::to_string(blkno) + " failed", injected);
  }
  const FdLease lease(handles_.get(), file_id_);
  if (lease.fd() < 0) IoError("cannot reopen layer file", -lease.fd());
  while (got < kBlockSize) {
    const ssize_t n = ::pread(lease.fd(), dst + got, kBlockSize - got, base + static_cast<off_t>(got));
    if (n < 0) {
      if (errno == EINTR) continue;
      IoError("read of block " + std::to_string(blkno) + " failed", errno);
    }
    if (n == 0) Corrupt(blkno, "short read (" + std::to_string(got) + " of " + std::to_string(kBlockSize) + " bytes)");
    got += static_cast<size_t>(n);
  }
  const uint32_t stored = LoadBe32(dst + kBlockPayload);
  if (Crc32(dst, kBlockPayload) != stored) Corrupt(blkno, "checksum mismatch");
}

void BlockFile::ReadBlock(uint32_t blkno, uint8_t* dst, ReadMode mode) const {
  BlockRef ref;
  const uint8_t* data = Acquire(blkno, mode, dst, &ref);
  if (data != dst) std::memcpy(dst, data, kBlockSize);
}

uint8_t* ByteArena::Append(size_t n) {
  if (cap_ - size_ < n) {
    const size_t want = std::max(size_ + n, 2 * cap_);
    std::unique_ptr<uint8_t[]> bigger(new uint8_t[want]);  // default-initialized: not zeroed
    if (size_ > 0) std::memcpy(bigger.get(), buf_.get(), size_);
    buf_ = std::move(bigger);
    cap_ = want;
  }
  uint8_t* p = buf_.get() + size_;
  size_ += n;
  return p;
}

void BlockRef::Rehit() const { cache_->Rehit(slot_); }

void BlockRef::Release() {
  if (cache_ != nullptr) cache_->Release(slot_);
  cache_ = nullptr;
  data_ = nullptr;
}

const uint8_t* BlockFile::Acquire(uint32_t blkno, ReadMode mode, uint8_t* buf, BlockRef* ref, bool pin_inserted) const {
  // The cache is asked first (a miss is counted even for a bad block number), as in the TS twin.
  // Cache-only: Contains() counts nothing, so an attempt that stops here leaves the miss to the
  // real read; LookupPinned() can still miss if another thread evicts the block in between, and
  // counts that miss.
  ref->Release();
  const uint8_t* data = nullptr;
  uint32_t slot = 0;
  const bool cached = mode == ReadMode::kCacheOnly
                          ? cache_->Contains(file_id_, blkno) && cache_->LookupPinned(file_id_, blkno, &data, &slot)
                          : mode == ReadMode::kCached && cache_->LookupPinned(file_id_, blkno, &data, &slot);
  if (cached) {
    ref->cache_ = cache_;
    ref->slot_ = slot;
    ref->data_ = data;
    return data;
  }
  if (mode == ReadMode::kCacheOnly) throw CacheMiss{};
  if (blkno >= total_blocks_) {
    Corrupt(blkno, "block number beyond the end of the file (" + std::to_string(total_blocks_) + " blocks)");
  }
  ReadBlockFromDisk(blkno, buf);
  if (mode == ReadMode::kCached) {
    if (pin_inserted) {
      ref->slot_ = cache_->InsertPinned(file_id_, blkno, buf);  // may throw CACHE_FULL: nothing pinned then
      ref->cache_ = cache_;
    } else {
      cache_->Insert(file_id_, blkno, buf);
    }
  }
  ref->data_ = buf;
  return buf;
}

namespace {

// Makes block `blk` of the value stream the one `scratch.ref` holds and returns its bytes.
// `*loaded` is the block the current blob already holds (kNoBlock at its start). The first block
// of a blob may be the one the previous blob of this file ended in, still pinned: counting a hit
// on it (Rehit) has the effect a Release and a fresh lookup would have, for a fraction of the
// cost. Any other block is acquired as usual, which releases the held one first.
const uint8_t* LoadValueBlock(const BlockFile& file, ReadMode mode, uint32_t blk, BlobScratch& scratch,
                              uint32_t* loaded) {
  if (*loaded != blk) {
    if (scratch.Holds(file, blk)) {
      scratch.ref.Rehit();
    } else {
      file.Acquire(blk, mode, scratch.block, &scratch.ref, /*pin_inserted=*/true);
      scratch.held_file = &file;
      scratch.held_blk = blk;
    }
    *loaded = blk;
  }
  return scratch.ref.data();
}

// Copies logical bytes [offset, offset + len) of the value stream into `dst`, reading each
// block it touches once; `scratch.ref` holds the block last read (`*loaded`).
void ReadValueBytes(const BlockFile& file, ReadMode mode, uint64_t offset, size_t len, uint8_t* dst,
                    BlobScratch& scratch, uint32_t* loaded) {
  while (len > 0) {
    const uint32_t blk = ValueBlockOf(offset);
    const size_t in_block = static_cast<size_t>(offset % kBlockPayload);
    const size_t n = std::min(len, kBlockPayload - in_block);
    std::memcpy(dst, LoadValueBlock(file, mode, blk, scratch, loaded) + in_block, n);
    dst += n;
    offset += n;
    len -= n;
  }
}

constexpr uint32_t kNoBlock = 0;  // block 0 is the summary, never part of the value stream

}  // namespace

BlobRef ReadBlob(const BlockFile& file, ReadMode mode, uint64_t value_bytes, uint64_t offset, BlobScratch& scratch,
                 ByteArena& arena) {
  const uint32_t blk = ValueBlockOf(offset);
  auto corrupt = [&](const std::string& what) {
    file.Corrupt(blk, "blob at value offset " + std::to_string(offset) + ": " + what);
  };
  uint32_t loaded = kNoBlock;
  uint8_t header[kBlobHeaderSize + kBlobRawLenSize];
  if (offset > value_bytes || value_bytes - offset < kBlobHeaderSize) corrupt("header runs past value_bytes");
  ReadValueBytes(file, mode, offset, kBlobHeaderSize, header, scratch, &loaded);
  const uint32_t word = LoadBe32(header);
  const uint8_t codec = static_cast<uint8_t>(word >> kBlobCodecShift);
  const uint64_t stored_len = word & kBlobLenMask;
  if (codec > kCodecMax) corrupt("unknown codec " + std::to_string(codec));

  uint64_t payload = offset + kBlobHeaderSize;
  uint64_t raw_len = stored_len;
  if (codec != kCodecNone) {
    if (value_bytes - payload < kBlobRawLenSize) corrupt("header runs past value_bytes");
    ReadValueBytes(file, mode, payload, kBlobRawLenSize, header + kBlobHeaderSize, scratch, &loaded);
    raw_len = LoadBe32(header + kBlobHeaderSize);
    payload += kBlobRawLenSize;
  }
  if (value_bytes - payload < stored_len) corrupt("payload runs past value_bytes");
  if (raw_len > kMaxRecordSize) corrupt("raw length " + std::to_string(raw_len) + " exceeds the largest record");

  const size_t start = arena.size();
  uint8_t* record = arena.Append(static_cast<size_t>(raw_len));
  if (codec == kCodecNone) {
    ReadValueBytes(file, mode, payload, static_cast<size_t>(stored_len), record, scratch, &loaded);
  } else {
    const size_t in_block = static_cast<size_t>(payload % kBlockPayload);
    const uint8_t* stored;
    if (stored_len > 0 && stored_len <= kBlockPayload - in_block) {
      // The payload lies within one block: decompress it where it is (the pinned cache slot or
      // scratch.block), not from a copy. That block is the one ReadValueBytes would have read, so
      // the cache sees the same operations. (An empty payload reads no block and fails below.)
      stored = LoadValueBlock(file, mode, ValueBlockOf(payload), scratch, &loaded) + in_block;
    } else {
      scratch.stored.resize(static_cast<size_t>(stored_len));
      ReadValueBytes(file, mode, payload, scratch.stored.size(), scratch.stored.data(), scratch, &loaded);
      stored = scratch.stored.data();
    }
    const char* err = scratch.decompressor.Decompress(codec, stored, static_cast<size_t>(stored_len), record,
                                                      static_cast<size_t>(raw_len));
    if (err != nullptr) corrupt(err);
  }
  if (const char* bad = CheckSerializedRecord(record, static_cast<size_t>(raw_len))) corrupt(bad);
  return BlobRef{start, static_cast<size_t>(raw_len), payload + stored_len};
}

}  // namespace strata
