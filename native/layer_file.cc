#include "layer_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "crc32.h"
#include "errors.h"
#include "fault_injection.h"
#include "page_cache.h"

namespace strata {
namespace {

namespace so = summary_off;

// Consecutive blocks gathered into one pwrite (512 KiB, the TS writer's WRITE_BATCH_BLOCKS): a
// write per 8 KB block cost a syscall each, a measurable share of a compaction's time.
constexpr uint32_t kWriteBatchBlocks = 64;
// Every this many bytes written, the writer asks the kernel to start writing them back (Linux
// sync_file_range, a hint that does not wait), so the closing fsync finds little left to do and
// the disk works while the writer fills the next blocks instead of after the last.
constexpr uint64_t kWritebackStepBytes = 8 * 1024 * 1024;
constexpr mode_t kLayerFileMode = 0644;  // as the TS writer's fs.openSync(path, 'w', 0o644)
constexpr unsigned kValueOffsetShift = 1;

size_t IndexKeySizeFor(uint8_t kind) { return kind == kLayerKindDelta ? kDeltaIndexKeySize : kImageIndexKeySize; }
uint32_t MagicFor(uint8_t kind) { return kind == kLayerKindDelta ? kDeltaMagic : kImageMagic; }

// Written without a + b - 1, which wraps for lengths read from a corrupt file.
uint64_t CeilDiv(uint64_t a, uint64_t b) { return a / b + (a % b != 0); }

// Names the errno as Node does (EIO, ENOSPC) so both cores' IO_ERROR messages carry it.
std::string IoMessage(const std::string& path, const char* what, int err) {
  const char* name = ::strerrorname_np(err);
  return path + ": " + what + ": " + (name != nullptr ? name : "errno " + std::to_string(err)) + ": " + std::strerror(err);
}

void SealBlock(uint8_t* block) { StoreBe32(block + kBlockPayload, Crc32(block, kBlockPayload)); }

void PwriteAll(int fd, const std::string& path, const uint8_t* data, size_t len, off_t at) {
  if (fault::Active()) {
    size_t short_bytes = 0;
    const int err = fault::Check(fault::Op::kLayerWrite, len, &short_bytes);
    if (err != 0) {
      if (short_bytes > 0) {
        const ssize_t torn = ::pwrite(fd, data, short_bytes, at);  // the prefix a filling disk leaves
        (void)torn;
      }
      Fail(ErrorCode::kIoError, IoMessage(path, "write failed", err));
    }
  }
  while (len > 0) {
    const ssize_t n = ::pwrite(fd, data, len, at);
    if (n < 0) {
      if (errno == EINTR) continue;
      Fail(ErrorCode::kIoError, IoMessage(path, "write failed", errno));
    }
    data += n;
    len -= static_cast<size_t>(n);
    at += n;
  }
}

// The field rules of FORMAT.md, in order; returns the first one broken.
std::string ValidateSummary(const LayerSummary& s, uint32_t magic, uint16_t version, uint32_t value_start,
                            uint16_t reserved, uint8_t record_format) {
  if (magic != kDeltaMagic && magic != kImageMagic) return "bad magic";
  if (version != kLayerFormatVersion) return "unknown layer format version " + std::to_string(version);
  if (s.kind != kLayerKindDelta && s.kind != kLayerKindImage) return "unknown layer kind " + std::to_string(s.kind);
  if (MagicFor(s.kind) != magic) return "layer kind does not match the magic";
  if (s.index_key_size != IndexKeySizeFor(s.kind)) return "index key size does not match the layer kind";
  if (s.codec > kCodecMax) return "unknown codec " + std::to_string(s.codec);
  if (record_format < kOldestRecordFormatVersion || record_format > kRecordFormatVersion) return "unknown record format version " + std::to_string(record_format);
  if (std::memcmp(s.key_start, s.key_end, kKeySize) >= 0) return "key_start is not below key_end";
  if (s.lsn_start >= s.lsn_end) return "lsn_start is not below lsn_end";
  if (s.kind == kLayerKindImage && s.lsn_end != s.lsn_start + 1) return "image layer LSN range is not [L, L+1)";
  if (value_start != kValueStartBlk) return "value_start_blk is not 1";
  if (s.value_blk_count != CeilDiv(s.value_bytes, kBlockPayload)) return "value_blk_count does not match value_bytes";
  if (s.index_start_blk != uint64_t{kValueStartBlk} + s.value_blk_count) return "index_start_blk does not follow the values";
  if (reserved != 0) return "reserved field is not zero";
  // The index fields must be exactly what the builder produces for entry_count entries.
  const BtreeGeometry geo = BtreeGeometry::For(s.entry_count, s.index_key_size, s.index_start_blk);
  if (s.index_leaf_count != geo.leaf_count()) return "index_leaf_count does not match entry_count";
  if (s.index_height != geo.level_nodes.size()) return "index_height does not match entry_count";
  if (s.index_blk_count != geo.blk_count()) return "index_blk_count does not match entry_count";
  if (s.index_root_blk != geo.root_blk()) return "index_root_blk is not the last index block";
  if (s.total_blocks != uint64_t{1} + s.value_blk_count + s.index_blk_count) return "total_blocks does not add up";
  return std::string();
}

}  // namespace

void EncodeSummary(const LayerSummary& s, uint8_t* block) {
  std::memset(block, 0, kBlockSize);
  StoreBe32(block + so::kMagic, MagicFor(s.kind));
  StoreBe16(block + so::kFormatVersion, kLayerFormatVersion);
  block[so::kLayerKind] = s.kind;
  block[so::kCodec] = s.codec;
  std::memcpy(block + so::kKeyStart, s.key_start, kKeySize);
  std::memcpy(block + so::kKeyEnd, s.key_end, kKeySize);
  StoreBe64(block + so::kLsnStart, s.lsn_start);
  StoreBe64(block + so::kLsnEnd, s.lsn_end);
  StoreBe32(block + so::kValueStartBlk, kValueStartBlk);
  StoreBe32(block + so::kValueBlkCount, s.value_blk_count);
  StoreBe64(block + so::kValueBytes, s.value_bytes);
  StoreBe32(block + so::kIndexStartBlk, s.index_start_blk);
  StoreBe32(block + so::kIndexLeafCount, s.index_leaf_count);
  StoreBe32(block + so::kIndexRootBlk, s.index_root_blk);
  StoreBe32(block + so::kIndexBlkCount, s.index_blk_count);
  block[so::kIndexHeight] = s.index_height;
  block[so::kIndexKeySize] = s.index_key_size;
  StoreBe64(block + so::kEntryCount, s.entry_count);
  StoreBe32(block + so::kTotalBlocks, s.total_blocks);
  block[so::kRecordFormat] = kRecordFormatVersion;
}

std::string DecodeSummary(const uint8_t* block, LayerSummary* out) {
  LayerSummary s;
  s.kind = block[so::kLayerKind];
  s.codec = block[so::kCodec];
  std::memcpy(s.key_start, block + so::kKeyStart, kKeySize);
  std::memcpy(s.key_end, block + so::kKeyEnd, kKeySize);
  s.lsn_start = LoadBe64(block + so::kLsnStart);
  s.lsn_end = LoadBe64(block + so::kLsnEnd);
  s.value_blk_count = LoadBe32(block + so::kValueBlkCount);
  s.value_bytes = LoadBe64(block + so::kValueBytes);
  s.index_start_blk = LoadBe32(block + so::kIndexStartBlk);
  s.index_leaf_count = LoadBe32(block + so::kIndexLeafCount);
  s.index_root_blk = LoadBe32(block + so::kIndexRootBlk);
  s.index_blk_count = LoadBe32(block + so::kIndexBlkCount);
  s.index_height = block[so::kIndexHeight];
  s.index_key_size = block[so::kIndexKeySize];
  s.entry_count = LoadBe64(block + so::kEntryCount);
  s.total_blocks = LoadBe32(block + so::kTotalBlocks);
  std::string err = ValidateSummary(s, LoadBe32(block + so::kMagic), LoadBe16(block + so::kFormatVersion),
                                    LoadBe32(block + so::kValueStartBlk), LoadBe16(block + so::kReserved),
                                    block[so::kRecordFormat]);
  if (!err.empty()) return err;
  for (size_t i = so::kEnd; i < kBlockPayload; ++i) {
    if (block[i] != 0) return "non-zero padding";
  }
  *out = s;
  return std::string();
}

// ---- LayerWriter ----

LayerWriter::LayerWriter(std::string path, const LayerWriterOptions& opts)
    : path_(std::move(path)), opts_(opts), key_size_(0), block_(kBlockSize, 0) {
  if (opts.kind != kLayerKindDelta && opts.kind != kLayerKindImage) BadArgument("layer kind must be delta or image");
  if (opts.codec > kCodecMax) BadArgument("unknown codec " + std::to_string(opts.codec));
  if (std::memcmp(opts.key_start, opts.key_end, kKeySize) >= 0) BadArgument("keyStart must be below keyEnd");
  if (opts.lsn_start >= opts.lsn_end) BadArgument("lsnStart must be below lsnEnd");
  if (opts.kind == kLayerKindImage && opts.lsn_end != opts.lsn_start + 1) BadArgument("an image layer at L has lsnEnd = L + 1");
  key_size_ = IndexKeySizeFor(opts.kind);
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, kLayerFileMode);
  if (fd_ < 0) Fail(ErrorCode::kIoError, IoMessage(path_, "cannot create layer file", errno));
}

LayerWriter::~LayerWriter() { CloseFd(); }

void LayerWriter::CloseFd() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void LayerWriter::CheckOpen() const {
  if (fd_ < 0) BadArgument(path_ + ": layer writer is already finished or aborted");
}

void LayerWriter::SetKeyEnd(const uint8_t* key_end) {
  CheckOpen();
  if (std::memcmp(opts_.key_start, key_end, kKeySize) >= 0) BadArgument(path_ + ": keyEnd must be above keyStart");
  if (!index_keys_.empty() && std::memcmp(index_keys_.data() + index_keys_.size() - key_size_, key_end, kKeySize) >= 0) {
    BadArgument(path_ + ": keyEnd must be above every key appended");
  }
  std::memcpy(opts_.key_end, key_end, kKeySize);
}

void LayerWriter::ValidateAppend(const uint8_t* keys, size_t keys_len, const uint8_t* blobs, size_t blobs_len,
                                 const uint8_t* will_init, size_t n) const {
  const std::string where = path_ + ": append: ";
  if (keys_len != n * key_size_) {
    BadArgument(where + "indexKeys holds " + std::to_string(keys_len) + " bytes, expected " + std::to_string(n) +
                " keys of " + std::to_string(key_size_));
  }
  const uint8_t* prev = index_keys_.empty() ? nullptr : index_keys_.data() + index_keys_.size() - key_size_;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* k = keys + i * key_size_;
    if (prev != nullptr && std::memcmp(prev, k, key_size_) >= 0) BadArgument(where + "index keys are not strictly increasing at entry " + std::to_string(i));
    if (std::memcmp(k, opts_.key_start, kKeySize) < 0 || std::memcmp(k, opts_.key_end, kKeySize) >= 0) {
      BadArgument(where + "key of entry " + std::to_string(i) + " is outside the layer's key range");
    }
    if (opts_.kind == kLayerKindDelta) {
      const uint64_t lsn = LoadBe64(k + kKeySize);
      if (lsn < opts_.lsn_start || lsn >= opts_.lsn_end) BadArgument(where + "LSN of entry " + std::to_string(i) + " is outside the layer's LSN range");
    }
    if (will_init[i] > 1) BadArgument(where + "willInit values must be 0 or 1");
    if (opts_.kind == kLayerKindImage && will_init[i] != 1) BadArgument(where + "image layer entries must be will_init");
    prev = k;
  }
  size_t at = 0;
  for (size_t i = 0; i < n; ++i) {
    if (blobs_len - at < kBlobHeaderSize) BadArgument(where + "blob " + std::to_string(i) + " header runs past the buffer");
    const uint32_t word = LoadBe32(blobs + at);
    const uint8_t codec = static_cast<uint8_t>(word >> kBlobCodecShift);
    size_t header = kBlobHeaderSize;
    if (codec > kCodecMax) BadArgument(where + "blob " + std::to_string(i) + " has unknown codec " + std::to_string(codec));
    if (codec != kCodecNone) header += kBlobRawLenSize;
    if (blobs_len - at < header) BadArgument(where + "blob " + std::to_string(i) + " header runs past the buffer");
    const size_t stored = word & kBlobLenMask;
    const size_t raw = codec == kCodecNone ? stored : LoadBe32(blobs + at + kBlobHeaderSize);
    if (raw > kMaxRecordSize) BadArgument(where + "blob " + std::to_string(i) + " is longer than the largest record");
    if (blobs_len - at - header < stored) BadArgument(where + "blob " + std::to_string(i) + " runs past the buffer");
    at += header + stored;
  }
  if (at != blobs_len) BadArgument(where + "blobs buffer holds more than " + std::to_string(n) + " blobs");
}

void LayerWriter::Append(const uint8_t* keys, size_t keys_len, const uint8_t* blobs, size_t blobs_len,
                         const uint8_t* will_init, size_t n) {
  CheckOpen();
  ValidateAppend(keys, keys_len, blobs, blobs_len, will_init, n);
  index_keys_.insert(index_keys_.end(), keys, keys + keys_len);
  size_t at = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t word = LoadBe32(blobs + at);
    const size_t header = (word >> kBlobCodecShift) == kCodecNone ? kBlobHeaderSize : kBlobHeaderSize + kBlobRawLenSize;
    const size_t len = header + (word & kBlobLenMask);
    index_values_.push_back((value_bytes_ << kValueOffsetShift) | (will_init[i] & kWillInitBit));
    AppendValueBytes(blobs + at, len);
    at += len;
  }
}

void LayerWriter::AppendValueBytes(const uint8_t* data, size_t len) {
  while (len > 0) {
    const size_t in_block = static_cast<size_t>(value_bytes_ % kBlockPayload);
    const size_t n = std::min(len, kBlockPayload - in_block);
    std::memcpy(block_.data() + in_block, data, n);
    data += n;
    len -= n;
    value_bytes_ += n;
    if (in_block + n == kBlockPayload) {
      WriteBlock(next_value_blk_++, block_.data());
      std::fill(block_.begin(), block_.end(), 0);
    }
  }
}

void LayerWriter::WriteBlock(uint32_t blkno, uint8_t* block) {
  SealBlock(block);
  if (batch_blocks_ > 0 && blkno != batch_start_ + batch_blocks_) FlushBatch();
  if (batch_.empty()) batch_.resize(size_t{kWriteBatchBlocks} * kBlockSize);
  if (batch_blocks_ == 0) batch_start_ = blkno;
  std::memcpy(batch_.data() + size_t{batch_blocks_} * kBlockSize, block, kBlockSize);
  if (++batch_blocks_ == kWriteBatchBlocks) FlushBatch();
}

void LayerWriter::FlushBatch() {
  if (batch_blocks_ == 0) return;
  const size_t len = size_t{batch_blocks_} * kBlockSize;
  batch_blocks_ = 0;
  PwriteAll(fd_, path_, batch_.data(), len, static_cast<off_t>(batch_start_) * static_cast<off_t>(kBlockSize));
#ifdef __linux__
  unsynced_bytes_ += len;
  if (unsynced_bytes_ >= kWritebackStepBytes) {
    unsynced_bytes_ = 0;
    // Whole file so far (offset 0, length 0 = to the end): only dirty pages are queued. The fsync
    // in Finish() is what makes the file durable; a failure here only loses the head start.
    (void)::sync_file_range(fd_, 0, 0, SYNC_FILE_RANGE_WRITE);
  }
#endif
}

uint64_t LayerWriter::Finish() {
  CheckOpen();
  try {
    if (value_bytes_ % kBlockPayload != 0) WriteBlock(next_value_blk_++, block_.data());  // zero tail
    const size_t n = index_values_.size();
    const BtreeShape shape = BuildBtree(index_keys_.data(), index_values_.data(), n, key_size_, next_value_blk_, *this);

    LayerSummary s;
    s.kind = opts_.kind;
    s.codec = opts_.codec;
    std::memcpy(s.key_start, opts_.key_start, kKeySize);
    std::memcpy(s.key_end, opts_.key_end, kKeySize);
    s.lsn_start = opts_.lsn_start;
    s.lsn_end = opts_.lsn_end;
    s.value_blk_count = next_value_blk_ - kValueStartBlk;
    s.value_bytes = value_bytes_;
    s.index_start_blk = next_value_blk_;
    s.index_leaf_count = shape.leaf_count;
    s.index_root_blk = shape.root_blk;
    s.index_blk_count = shape.blk_count;
    s.index_height = shape.height;
    s.index_key_size = static_cast<uint8_t>(key_size_);
    s.entry_count = n;
    s.total_blocks = 1 + s.value_blk_count + s.index_blk_count;
    EncodeSummary(s, block_.data());
    WriteBlock(0, block_.data());  // last, after every other block has gone out
    FlushBatch();
    const int injected = fault::Active() ? fault::Check(fault::Op::kLayerFsync, 0, nullptr) : 0;
    if (injected != 0) Fail(ErrorCode::kIoError, IoMessage(path_, "fsync failed", injected));
    if (::fsync(fd_) != 0) Fail(ErrorCode::kIoError, IoMessage(path_, "fsync failed", errno));
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) Fail(ErrorCode::kIoError, IoMessage(path_, "close failed", errno));
    return uint64_t{s.total_blocks} * kBlockSize;
  } catch (...) {
    CloseFd();  // a failed finish leaves a partial file for the caller to remove
    throw;
  }
}

void LayerWriter::Abort() { CloseFd(); }

// ---- Layer ----

Layer::Layer(std::unique_ptr<BlockFile> file, const LayerSummary& summary)
    : file_(std::move(file)),
      summary_(summary),
      geometry_(BtreeGeometry::For(summary.entry_count, summary.index_key_size, summary.index_start_blk)) {
  file_->set_total_blocks(summary.total_blocks);
}

std::unique_ptr<Layer> Layer::Open(const std::string& path, uint32_t handle, PageCache* cache,
                                   std::shared_ptr<FileHandles> handles) {
  const int fd = OpenLayerForReading(path);
  if (fd < 0) Fail(ErrorCode::kIoError, IoMessage(path, "cannot open layer file", errno));
  // The newest file of the set is never the one closed, so `fd` stays open for the fstat below.
  auto file = std::make_unique<BlockFile>(path, fd, handle, cache, std::move(handles));
  struct stat st;
  if (::fstat(fd, &st) != 0) Fail(ErrorCode::kIoError, IoMessage(path, "fstat failed", errno));
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < kBlockSize) Fail(ErrorCode::kCorruptLayer, path + ": file of " + std::to_string(size) + " bytes has no summary block");
  std::vector<uint8_t> block(kBlockSize);
  file->ReadBlockFromDisk(0, block.data());
  LayerSummary summary;
  const std::string err = DecodeSummary(block.data(), &summary);
  if (!err.empty()) file->Corrupt(0, "summary: " + err);
  if (uint64_t{summary.total_blocks} * kBlockSize != size) {
    Fail(ErrorCode::kCorruptLayer, path + ": file size " + std::to_string(size) + " is not total_blocks (" +
                                       std::to_string(summary.total_blocks) + ") x " + std::to_string(kBlockSize));
  }
  return std::unique_ptr<Layer>(new Layer(std::move(file), summary));
}

std::vector<uint8_t> Layer::Keys(const uint8_t* key_start, const uint8_t* key_end, uint32_t max_keys) const {
  std::vector<uint8_t> keys;
  std::vector<uint8_t> node(kBlockSize);
  BtreeCursor cursor(*file_, geometry_, ReadMode::kCached, node.data());
  // Index keys are the page key (images) or key ‖ LSN (deltas): seek (key_start, LSN 0), then
  // step to the first entry at or after it, as the TS twin does.
  const size_t index_key_size = geometry_.key_size;
  uint8_t search[kMaxIndexKeySize] = {};
  std::memcpy(search, key_start, kKeySize);
  bool ok = cursor.SeekLE(search);
  if (ok && std::memcmp(cursor.key(), search, index_key_size) < 0) ok = cursor.Next();
  else if (!ok) ok = cursor.SeekFirst();
  for (; ok; ok = cursor.Next()) {
    const uint8_t* k = cursor.key();
    if (std::memcmp(k, key_end, kKeySize) >= 0) break;
    if (keys.size() >= kKeySize && std::memcmp(keys.data() + keys.size() - kKeySize, k, kKeySize) == 0) continue;
    if (keys.size() / kKeySize >= max_keys) break;
    keys.insert(keys.end(), k, k + kKeySize);
  }
  return keys;
}

uint64_t Layer::Verify() const {
  const LayerSummary& s = summary_;
  std::vector<uint8_t> block(kBlockSize);
  for (uint32_t b = 0; b < s.total_blocks; ++b) file_->ReadBlock(b, block.data(), ReadMode::kDirect);
  // The file may have changed since it was opened: check the summary again.
  file_->ReadBlock(0, block.data(), ReadMode::kDirect);
  LayerSummary again;
  const std::string err = DecodeSummary(block.data(), &again);
  if (!err.empty()) file_->Corrupt(0, "summary: " + err);
  const size_t tail = static_cast<size_t>(s.value_bytes % kBlockPayload);
  if (tail != 0) {
    const uint32_t last = s.value_blk_count;  // value blocks are 1..value_blk_count
    file_->ReadBlock(last, block.data(), ReadMode::kDirect);
    for (size_t i = tail; i < kBlockPayload; ++i) {
      if (block[i] != 0) file_->Corrupt(last, "value stream tail is not zero");
    }
  }

  auto scratch = std::make_unique<BlobScratch>();
  ByteArena record;
  uint64_t next_offset = 0;
  auto check_entry = [&](const uint8_t* key, uint64_t value, uint32_t leaf_blk) {
    if (std::memcmp(key, s.key_start, kKeySize) < 0 || std::memcmp(key, s.key_end, kKeySize) >= 0) {
      file_->Corrupt(leaf_blk, "index key outside the layer's key range");
    }
    if (!is_image()) {
      const uint64_t lsn = LoadBe64(key + kKeySize);
      if (lsn < s.lsn_start || lsn >= s.lsn_end) file_->Corrupt(leaf_blk, "index LSN outside the layer's LSN range");
    }
    const uint64_t offset = value >> kValueOffsetShift;
    if (offset != next_offset) file_->Corrupt(leaf_blk, "value offset " + std::to_string(offset) + " is not where the previous value ended");
    record.clear();
    const BlobRef blob = ReadBlob(*file_, ReadMode::kDirect, s.value_bytes, offset, *scratch, record);
    const bool will_init = (value & kWillInitBit) != 0;
    if (will_init != RecordWillInit(record.data())) file_->Corrupt(leaf_blk, "will_init flag disagrees with the record");
    if (is_image() && !will_init) file_->Corrupt(leaf_blk, "image layer entry is not will_init");
    next_offset = blob.end;
  };
  const uint64_t entries = VerifyBtree(*file_, geometry_, check_entry);
  if (entries != s.entry_count) file_->Corrupt(s.index_root_blk, "index holds " + std::to_string(entries) + " entries, summary says " + std::to_string(s.entry_count));
  if (next_offset != s.value_bytes) file_->Corrupt(s.value_blk_count, "value stream holds bytes no index entry points at");
  return entries;
}

bool PushLayerRecord(const Layer& layer, uint64_t leaf_value, ReadScratch& s) {
  const BlobRef blob = ReadBlob(layer.file(), s.mode, layer.summary().value_bytes,
                                leaf_value >> kValueOffsetShift, s.blob, s.arena);
  const bool will_init = RecordWillInit(s.arena.data() + blob.arena_offset);
  const uint32_t blk = ValueBlockOf(leaf_value >> kValueOffsetShift);
  if (will_init != ((leaf_value & kWillInitBit) != 0)) layer.file().Corrupt(blk, "will_init flag disagrees with the record");
  if (layer.is_image() && !will_init) layer.file().Corrupt(blk, "image layer entry is not will_init");
  s.chain.push_back(ChainEntry{nullptr, blob.arena_offset, blob.len});
  return will_init;
}

}  // namespace strata
