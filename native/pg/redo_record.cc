#include "redo_record.h"

#include <cstring>
#include <string>

#include "bufpage.h"
#include "pg_format.h"

namespace strata {
namespace pg {
namespace {

// Header field offsets (docs/POSTGRES.md, "Stored record").
constexpr size_t kOffTag = 0;
constexpr size_t kOffClusterFlags = 1;
constexpr size_t kOffTargetId = 2;
constexpr size_t kOffStorageFlags = 3;
constexpr size_t kOffLsn = 4;
constexpr size_t kOffXid = 12;
constexpr size_t kOffRmid = 16;
constexpr size_t kOffInfo = 17;
constexpr size_t kOffNBlocks = 18;
constexpr size_t kOffReserved2 = 19;
constexpr size_t kOffMainLen = 20;

// Block reference field offsets.
constexpr size_t kRefId = 0;
constexpr size_t kRefFork = 1;
constexpr size_t kRefFlags = 2;
constexpr size_t kRefBimgInfo = 3;
constexpr size_t kRefSpc = 4;
constexpr size_t kRefDb = 8;
constexpr size_t kRefRel = 12;
constexpr size_t kRefBlock = 16;
constexpr size_t kRefDataLen = 20;
constexpr size_t kRefReserved = 22;

BlockRef DecodeBlockRef(const uint8_t* p) {
  BlockRef b;
  b.id = p[kRefId];
  b.fork = p[kRefFork];
  b.flags = p[kRefFlags];
  b.bimg_info = p[kRefBimgInfo];
  b.spc_oid = LoadLe32(p + kRefSpc);
  b.db_oid = LoadLe32(p + kRefDb);
  b.rel_number = LoadLe32(p + kRefRel);
  b.block_number = LoadLe32(p + kRefBlock);
  b.data_len = LoadLe16(p + kRefDataLen);
  return b;
}

// Checks one block reference; sets *is_target when its id is the target's.
const char* CheckBlockRef(const uint8_t* p, uint8_t target_id, bool* is_target) {
  const BlockRef b = DecodeBlockRef(p);
  if (b.id > kMaxBlockId) return "block id above 32";
  if (b.fork > kMaxForkNumber) return "fork number above 3";
  if ((b.flags & kBkpBlockForkMask) != 0) return "block flags with low bits set";
  if (!b.has_image() && b.bimg_info != 0) return "image info on a block without an image";
  if ((b.bimg_info & ~kBkpImageValidBits) != 0) return "unknown image info bits";
  if (LoadLe16(p + kRefReserved) != 0) return "reserved block field not zero";
  *is_target = b.id == target_id;
  if (*is_target) {
    if (((b.flags & kBkpBlockHasData) != 0) != (b.data_len > 0)) return "target data length disagrees with HAS_DATA";
  } else if (b.data_len != 0) {
    return "data length stored for a block other than the target";
  }
  return nullptr;
}

}  // namespace

BlockRef RedoRecordView::Block(size_t i) const {
  return DecodeBlockRef(rec + kStoredHeaderSize + i * kStoredBlockRefSize);
}

bool RedoRecordView::FindBlock(uint8_t id, BlockRef* out) const {
  for (size_t i = 0; i < nblocks; ++i) {
    const uint8_t* p = rec + kStoredHeaderSize + i * kStoredBlockRefSize;
    if (p[kRefId] == id) {
      *out = DecodeBlockRef(p);
      return true;
    }
  }
  return false;
}

bool RedoRecordView::will_init() const {
  return (rec[kStoredHeaderSize + target_index * kStoredBlockRefSize + kRefFlags] & kBkpBlockWillInit) != 0;
}

const char* ParseRedoRecord(const uint8_t* rec, size_t len, RedoRecordView* view) {
  if (len < kStoredHeaderSize) return "PostgreSQL record shorter than its header";
  if (rec[kOffTag] != kRecordTagPg) return "not a PostgreSQL record";
  if ((rec[kOffClusterFlags] & ~kClusterFlagsMask) != 0) return "unknown cluster flags";
  if ((rec[kOffStorageFlags] & ~kStoredFlagTruncated) != 0 || rec[kOffReserved2] != 0) return "reserved header byte not zero";
  const size_t nblocks = rec[kOffNBlocks];
  if (nblocks == 0) return "PostgreSQL record without block references";
  if (nblocks > kMaxStoredBlockRefs) return "more than 33 block references";
  const size_t refs_end = kStoredHeaderSize + nblocks * kStoredBlockRefSize;
  if (len < refs_end) return "PostgreSQL record shorter than its block references";
  const uint8_t target_id = rec[kOffTargetId];
  size_t target_index = nblocks;
  int prev_id = -1;
  for (size_t i = 0; i < nblocks; ++i) {
    const uint8_t* p = rec + kStoredHeaderSize + i * kStoredBlockRefSize;
    bool is_target = false;
    if (const char* err = CheckBlockRef(p, target_id, &is_target)) return err;
    if (static_cast<int>(p[kRefId]) <= prev_id) return "block references not in increasing id order";
    prev_id = p[kRefId];
    if (is_target) target_index = i;
  }
  if (target_index == nblocks) return "no block reference with the target id";
  const size_t data_len = LoadLe16(rec + kStoredHeaderSize + target_index * kStoredBlockRefSize + kRefDataLen);
  const uint64_t main_len = LoadLe32(rec + kOffMainLen);
  if (uint64_t{len} != uint64_t{refs_end} + data_len + main_len) return "PostgreSQL record length does not add up";
  view->rec = rec;
  view->len = len;
  view->cluster_flags = rec[kOffClusterFlags];
  view->target_id = target_id;
  view->lsn = LoadLe64(rec + kOffLsn);
  view->xid = LoadLe32(rec + kOffXid);
  view->rmid = rec[kOffRmid];
  view->info = rec[kOffInfo];
  view->truncated = (rec[kOffStorageFlags] & kStoredFlagTruncated) != 0;
  view->nblocks = static_cast<uint8_t>(nblocks);
  view->target_index = static_cast<uint8_t>(target_index);
  view->block_data = rec + refs_end;
  view->block_data_len = data_len;
  view->main_data = rec + refs_end + data_len;
  view->main_data_len = static_cast<size_t>(main_len);
  return nullptr;
}

const char* CheckRedoRecord(const uint8_t* rec, size_t len) {
  RedoRecordView view;
  return ParseRedoRecord(rec, len, &view);
}

bool StoredRecordWillInitFits(const uint8_t* rec, size_t len) {
  return len >= kStoredHeaderSize && len >= kStoredHeaderSize + size_t{rec[kOffNBlocks]} * kStoredBlockRefSize;
}

bool StoredRecordWillInit(const uint8_t* rec) {
  const size_t nblocks = rec[kOffNBlocks];
  for (size_t i = 0; i < nblocks; ++i) {
    const uint8_t* p = rec + kStoredHeaderSize + i * kStoredBlockRefSize;
    if (p[kRefId] == rec[kOffTargetId]) return (p[kRefFlags] & kBkpBlockWillInit) != 0;
  }
  return false;
}

RedoAction ReadBufferForRedo(const RedoRecordView& r, const uint8_t* page) {
  if (r.will_init()) ThrowPageError("block with WILL_INIT flag must be initialized by its redo function");
  if (PageIsNew(page)) ThrowPageError("page is new (not initialized); the record needs an existing page");
  if (!PageHeaderIsValid(page)) {
    ThrowPageError("page header is corrupt (pd_lower " + std::to_string(PageGetLower(page)) + ", pd_upper " +
                   std::to_string(PageGetUpper(page)) + ", pd_special " + std::to_string(PageGetSpecial(page)) + ")");
  }
  return r.lsn <= PageGetLsn(page) ? RedoAction::kDone : RedoAction::kNeedsRedo;
}

RedoAction ReadBufferForRedoZeroOnError(const RedoRecordView& r, const uint8_t* page) {
  if (r.will_init()) ThrowPageError("block with WILL_INIT flag must be initialized by its redo function");
  return r.lsn <= PageGetLsn(page) ? RedoAction::kDone : RedoAction::kNeedsRedo;
}

void InitBufferForRedo(const RedoRecordView& r, uint8_t* page) {
  if (!r.will_init()) ThrowPageError("block to be initialized in redo must be marked with WILL_INIT flag");
  std::memset(page, 0, kBlckSz);
}

}  // namespace pg
}  // namespace strata
