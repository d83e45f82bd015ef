// Mirrors REL_15_STABLE src/backend/access/nbtree/nbtxlog.c (btree_redo and its btree_xlog_*
// functions) and the parts of nbtdedup.c it calls (_bt_dedup_start_pending, _bt_dedup_save_htid,
// _bt_dedup_finish_pending, _bt_form_posting, _bt_update_posting, _bt_swap_posting), one block at a
// time. What every function skips, and why:
// - buffer locks and their ordering: a page is redone by one caller on a private copy, so there is
//   nothing to couple or release;
// - hot-standby conflicts (DELETE's latestRemovedXid, REUSE_PAGE): no queries run on these pages;
// - the incomplete-split and invalid-page bookkeeping PostgreSQL keeps for the end of recovery:
//   Strata redoes pages on demand, never finishes a recovery, and the flags themselves are redone.
// Checks PostgreSQL leaves to Assert or to trust in its own WAL are made here, and every length and
// offset read from the record or the page is checked before use.
#include "nbtree_redo.h"

#include <cstring>
#include <string>

#include "bufpage.h"

namespace strata {
namespace pg {
namespace {

std::string U(uint64_t v) { return std::to_string(v); }

// ---- layouts (access/itup.h, access/nbtree.h, access/nbtxlog.h) ----

// IndexTupleData: ItemPointerData t_tid (u16 bi_hi, u16 bi_lo, u16 ip_posid), u16 t_info.
constexpr size_t kSizeOfIndexTupleData = 8;
constexpr size_t kSizeOfItemPointer = 6;
constexpr size_t kTupleInfoOffset = 6;
constexpr uint16_t kIndexSizeMask = 0x1FFF;
constexpr uint16_t kIndexAltTidMask = 0x2000;  // INDEX_AM_RESERVED_BIT
// t_tid offset bits of tuples with INDEX_ALT_TID_MASK.
constexpr uint16_t kBtOffsetMask = 0x0FFF;
constexpr uint16_t kBtIsPosting = 0x2000;

constexpr int kPHikey = 1;
constexpr int kPFirstKey = 2;
// pd_special of every btree page (_bt_pageinit asks for 16 bytes of special space).
constexpr size_t kBtSpecial = kBlckSz - kBtPageOpaqueSize;
// BTMaxItemSize(page): 2704 bytes.
constexpr size_t kBtMaxItemSize =
    ((kBlckSz - MaxAlign(kSizeOfPageHeaderData + 3 * kItemIdSize + 3 * kSizeOfItemPointer) -
      MaxAlign(kBtPageOpaqueSize)) / 3) & ~(kMaxAlign - 1);
// MaxIndexTuplesPerPage: 408.
constexpr int kMaxIndexTuplesPerPage =
    static_cast<int>((kBlckSz - kSizeOfPageHeaderData) / (MaxAlign(kSizeOfIndexTupleData + 1) + kItemIdSize));

// Main data and block data structs.
constexpr size_t kSizeOfBtreeInsert = 2;            // u16 offnum
constexpr size_t kSizeOfBtreeSplit = 10;            // u32 level, u16 firstrightoff, u16 newitemoff, u16 postingoff
constexpr size_t kSizeOfBtreeDedup = 2;             // u16 nintervals
constexpr size_t kSizeOfBtreeVacuum = 4;            // u16 ndeleted, u16 nupdated
constexpr size_t kSizeOfBtreeDelete = 8;            // u32 latestRemovedXid, u16 ndeleted, u16 nupdated
constexpr size_t kSizeOfBtreeUpdate = 2;            // u16 ndeletedtids, then that many u16 posting offsets
constexpr size_t kSizeOfBtreeMarkPageHalfDead = 20; // u16 poffset, pad, u32 leafblk, leftblk, rightblk, topparent
constexpr size_t kSizeOfBtreeUnlinkPage = 36;       // u32 leftsib, rightsib, level, pad, u64 safexid,
                                                    // u32 leafleftsib, leafrightsib, leaftopparent
constexpr size_t kSizeOfBtreeNewroot = 8;           // u32 rootblk, u32 level
constexpr size_t kSizeOfBtreeMetadata = 28;         // u32 version, root, level, fastroot, fastlevel,
                                                    // last_cleanup_num_delpages, bool allequalimage, pad
constexpr size_t kSizeOfBtDedupInterval = 4;        // u16 baseoff, u16 nitems
// btm_last_cleanup_num_heap_tuples = -1.0 as a little-endian float8.
constexpr uint32_t kMinusOneFloat8High = 0xBFF00000;

// ---- index tuples ----

inline size_t IndexTupleSize(const uint8_t* t) { return LoadLe16(t + kTupleInfoOffset) & kIndexSizeMask; }
inline uint16_t TupleInfo(const uint8_t* t) { return LoadLe16(t + kTupleInfoOffset); }
inline void SetTupleInfo(uint8_t* t, uint16_t v) { StoreLe16(t + kTupleInfoOffset, v); }
// ItemPointerData at `tid`: the block number is split in two u16 halves, high first.
inline uint32_t TidBlock(const uint8_t* tid) { return (uint32_t{LoadLe16(tid)} << 16) | LoadLe16(tid + 2); }
inline uint16_t TidOffset(const uint8_t* tid) { return LoadLe16(tid + 4); }
inline void SetTidBlock(uint8_t* tid, uint32_t blk) {
  StoreLe16(tid, static_cast<uint16_t>(blk >> 16));
  StoreLe16(tid + 2, static_cast<uint16_t>(blk));
}
inline void SetTidOffset(uint8_t* tid, uint16_t off) { StoreLe16(tid + 4, off); }

inline bool IsPivot(const uint8_t* t) {
  return (TupleInfo(t) & kIndexAltTidMask) != 0 && (TidOffset(t) & kBtIsPosting) == 0;
}
inline bool IsPosting(const uint8_t* t) {
  return (TupleInfo(t) & kIndexAltTidMask) != 0 && (TidOffset(t) & kBtIsPosting) != 0;
}
inline int NPosting(const uint8_t* t) { return TidOffset(t) & kBtOffsetMask; }
inline size_t PostingOffset(const uint8_t* t) { return TidBlock(t); }

// A posting list tuple whose TID array lies inside the tuple (what _bt_posting_valid assumes).
void CheckPostingTuple(const uint8_t* t, const char* what) {
  if (!IsPosting(t)) ThrowPageError(std::string(what) + " is not a posting list tuple");
  const size_t off = PostingOffset(t);
  const size_t n = static_cast<size_t>(NPosting(t));
  if (n < 2 || off < kSizeOfIndexTupleData || off + n * kSizeOfItemPointer > IndexTupleSize(t)) {
    ThrowPageError(std::string(what) + " has a posting list outside the tuple (offset " + U(off) + ", " + U(n) +
                   " TIDs, tuple size " + U(IndexTupleSize(t)) + ")");
  }
}

// BTreeTupleSetPosting on a tuple being formed.
void SetPosting(uint8_t* t, int nhtids, size_t postingoffset) {
  SetTupleInfo(t, TupleInfo(t) | kIndexAltTidMask);
  SetTidOffset(t, static_cast<uint16_t>(nhtids | kBtIsPosting));
  SetTidBlock(t, static_cast<uint32_t>(postingoffset));
}

// ---- btree pages ----

inline uint32_t BtNext(const uint8_t* p) { return LoadLe32(p + kBtSpecial + btpo_off::kNext); }
inline uint16_t BtFlags(const uint8_t* p) { return LoadLe16(p + kBtSpecial + btpo_off::kFlags); }
inline void SetBtPrev(uint8_t* p, uint32_t v) { StoreLe32(p + kBtSpecial + btpo_off::kPrev, v); }
inline void SetBtNext(uint8_t* p, uint32_t v) { StoreLe32(p + kBtSpecial + btpo_off::kNext, v); }
inline void SetBtLevel(uint8_t* p, uint32_t v) { StoreLe32(p + kBtSpecial + btpo_off::kLevel, v); }
inline void SetBtFlags(uint8_t* p, uint16_t v) { StoreLe16(p + kBtSpecial + btpo_off::kFlags, v); }
inline void SetBtCycleId(uint8_t* p, uint16_t v) { StoreLe16(p + kBtSpecial + btpo_off::kCycleId, v); }
// P_FIRSTDATAKEY: the high key takes item 1 on every page but the rightmost of its level.
inline int FirstDataKey(const uint8_t* p) { return BtNext(p) == kPNone ? kPHikey : kPFirstKey; }

// An existing page a record changes must be a btree page: 16 bytes of special space, sane pointers.
void CheckBtreePage(const uint8_t* page) {
  const unsigned lower = PageGetLower(page), upper = PageGetUpper(page), special = PageGetSpecial(page);
  if (special != kBtSpecial) ThrowPageError("not a btree page: pd_special = " + U(special));
  if (lower < kSizeOfPageHeaderData || lower > upper || upper > special) {
    ThrowPageError("corrupted page pointers: lower = " + U(lower) + ", upper = " + U(upper) + ", special = " +
                   U(special));
  }
}

// PageGetItem of item `offnum`, checked: inside the line pointer array, with storage inside
// [pd_upper, pd_special), MAXALIGNed, holding a whole index tuple (IndexTupleSize <= lp_len).
// *lp_len receives ItemIdGetLength.
uint8_t* BtItem(uint8_t* page, int offnum, size_t* lp_len) {
  const int maxoff = PageGetMaxOffsetNumber(page);
  if (offnum < kFirstOffsetNumber || offnum > maxoff) {
    ThrowPageError("item offset " + U(static_cast<unsigned>(offnum)) + " is not on the page (" + U(maxoff) +
                   " items)");
  }
  const size_t off = ItemIdGetOffset(page, offnum), len = ItemIdGetLength(page, offnum);
  if (len < kSizeOfIndexTupleData || off < PageGetUpper(page) || off + len > PageGetSpecial(page) ||
      off != MaxAlign(off)) {
    ThrowPageError("corrupted line pointer " + U(static_cast<unsigned>(offnum)) + ": offset = " + U(off) +
                   ", length = " + U(len));
  }
  uint8_t* t = page + off;
  const size_t size = IndexTupleSize(t);
  if (size < kSizeOfIndexTupleData || size > len) {
    ThrowPageError("index tuple at item " + U(static_cast<unsigned>(offnum)) + " has size " + U(size) +
                   " (line pointer length " + U(len) + ")");
  }
  *lp_len = len;
  return t;
}

// _bt_pageinit: PageInit with the opaque data as special space.
void BtreePageInit(uint8_t* page) { PageInit(page, kBtPageOpaqueSize); }

// ---- the stored record ----

// Checked sequential reads of the block data.
class DataReader {
 public:
  DataReader(const uint8_t* p, size_t len) : p_(p), len_(len) {}
  size_t remaining() const { return len_ - pos_; }
  const uint8_t* Take(size_t n, const char* what) {
    if (n > remaining()) {
      ThrowPageError(std::string("block data too short for ") + what + " (" + U(n) + " bytes needed, " +
                     U(remaining()) + " left)");
    }
    const uint8_t* at = p_ + pos_;
    pos_ += n;
    return at;
  }
  // An index tuple logged as MAXALIGN(IndexTupleSize) bytes (split records); *size gets that length.
  const uint8_t* TakeAlignedTuple(const char* what, size_t* size) {
    if (remaining() < kSizeOfIndexTupleData) ThrowPageError(std::string("block data too short for ") + what);
    const size_t tuple_size = IndexTupleSize(p_ + pos_);
    if (tuple_size < kSizeOfIndexTupleData) ThrowPageError(std::string(what) + " smaller than a tuple header");
    *size = MaxAlign(tuple_size);
    return Take(*size, what);
  }

 private:
  const uint8_t* p_;
  size_t len_;
  size_t pos_ = 0;
};

void RequireMainData(const RedoRecordView& r, size_t size, const char* what) {
  if (r.main_data_len < size) {
    ThrowPageError(std::string("main data shorter than ") + what + " (" + U(r.main_data_len) + " < " + U(size) + ")");
  }
}

// The block number of another block of the same record (XLogRecGetBlockTag).
uint32_t BlockNumberOf(const RedoRecordView& r, uint8_t block_id) {
  BlockRef b;
  if (!r.FindBlock(block_id, &b)) ThrowPageError("record has no block id " + U(block_id));
  return b.block_number;
}

[[noreturn]] void ThrowNoPart(const RedoRecordView& r, const char* fn) {
  ThrowPageError(std::string(fn) + " changes no page registered as block id " + U(r.target_id));
}

// XLogReadBufferForRedo for the stored block (redo_record.h): false (BLK_DONE) when the page
// already has this record.
bool NeedsRedo(const RedoRecordView& r, const uint8_t* page) {
  return ReadBufferForRedo(r, page) == RedoAction::kNeedsRedo;
}

// ---- shared steps ----

// _bt_restore_page: the page is freshly initialized and `from` holds what was its [pd_upper,
// pd_special) — tuples in reverse item order, each MAXALIGNed. They go back in item order.
void RestoreBtreePage(uint8_t* page, const uint8_t* from, size_t len) {
  const uint8_t* items[kMaxIndexTuplesPerPage];
  size_t sizes[kMaxIndexTuplesPerPage];
  int nitems = 0;
  DataReader in(from, len);
  while (in.remaining() > 0) {
    if (nitems == kMaxIndexTuplesPerPage) ThrowPageError("logged page holds more than 408 index tuples");
    items[nitems] = in.TakeAlignedTuple("a logged index tuple", &sizes[nitems]);
    ++nitems;
  }
  for (int i = nitems - 1; i >= 0; --i) {
    if (PageAddItem(page, items[i], sizes[i], nitems - i, false, false) == kInvalidOffsetNumber) {
      ThrowPageError("_bt_restore_page: cannot add item to page");
    }
  }
}

// _bt_restore_meta: the metapage rebuilt from the block's xl_btree_metadata.
void RestoreMeta(const RedoRecordView& r, uint8_t* page) {
  InitBufferForRedo(r, page);
  if (r.Target().block_number != kBtreeMetapage) {
    ThrowPageError("metapage record on block " + U(r.Target().block_number));
  }
  if (r.block_data_len != kSizeOfBtreeMetadata) {
    ThrowPageError("xl_btree_metadata of " + U(r.block_data_len) + " bytes (expected 28)");
  }
  const uint8_t* md = r.block_data;
  const uint32_t version = LoadLe32(md);
  if (version < kBtreeNovacVersion || version > kBtreeVersion) ThrowPageError("btree metapage version " + U(version));
  BtreePageInit(page);
  StoreLe32(page + btm_off::kMagic, kBtreeMagic);
  StoreLe32(page + btm_off::kVersion, version);
  StoreLe32(page + btm_off::kRoot, LoadLe32(md + 4));
  StoreLe32(page + btm_off::kLevel, LoadLe32(md + 8));
  StoreLe32(page + btm_off::kFastRoot, LoadLe32(md + 12));
  StoreLe32(page + btm_off::kFastLevel, LoadLe32(md + 16));
  StoreLe32(page + btm_off::kLastCleanupNumDelpages, LoadLe32(md + 20));
  StoreLe32(page + btm_off::kLastCleanupNumHeapTuples + 4, kMinusOneFloat8High);
  page[btm_off::kAllEqualImage] = md[24];
  SetBtFlags(page, kBtpMeta);
  // pd_lower just past the metadata, so a compressed full-page image keeps it.
  PageSetLower(page, static_cast<uint16_t>(btm_off::kEnd));
  PageSetLsn(page, r.lsn);
}

// _bt_clear_incomplete_split: the child whose split a downlink insertion finishes.
void ClearIncompleteSplit(const RedoRecordView& r, uint8_t* page) {
  if (!NeedsRedo(r, page)) return;
  CheckBtreePage(page);
  const uint16_t flags = BtFlags(page);
  if ((flags & kBtpIncompleteSplit) == 0) ThrowPageError("child page has no incomplete split to clear");
  SetBtFlags(page, static_cast<uint16_t>(flags & ~kBtpIncompleteSplit));
  PageSetLsn(page, r.lsn);
}

// A leaf page's dummy high key during page deletion: a bare header whose t_tid block is the top
// parent (BTreeTupleSetTopParent), added as item 1.
void AddTopParentHighKey(uint8_t* page, uint32_t topparent) {
  uint8_t trunctuple[kSizeOfIndexTupleData] = {};
  SetTupleInfo(trunctuple, static_cast<uint16_t>(kSizeOfIndexTupleData));
  SetTidBlock(trunctuple, topparent);
  SetTupleInfo(trunctuple, TupleInfo(trunctuple) | kIndexAltTidMask);  // BTreeTupleSetNAtts(itup, 0, false)
  SetTidOffset(trunctuple, 0);
  if (PageAddItem(page, trunctuple, sizeof(trunctuple), kPHikey, false, false) == kInvalidOffsetNumber) {
    ThrowPageError("could not add dummy high key to half-dead page");
  }
}

// _bt_swap_posting: `newitem` (a mutable copy of the logged original new item) swaps its heap TID
// with the one at `postingoff` in posting list tuple `oposting`; the new posting list, the same size
// as oposting, goes to `nposting` (MAXALIGN(IndexTupleSize(oposting)) bytes, padding copied along).
void SwapPosting(uint8_t* newitem, const uint8_t* oposting, int postingoff, uint8_t* nposting) {
  CheckPostingTuple(oposting, "the posting list being split");
  const int nhtids = NPosting(oposting);
  if (!(postingoff > 0 && postingoff < nhtids)) {
    ThrowPageError("posting list tuple with " + U(nhtids) + " items cannot be split at offset " + U(postingoff));
  }
  if ((TupleInfo(newitem) & kIndexAltTidMask) != 0) ThrowPageError("new item of a posting list split is not a plain tuple");
  std::memcpy(nposting, oposting, MaxAlign(IndexTupleSize(oposting)));
  uint8_t* replacepos = nposting + PostingOffset(oposting) + static_cast<size_t>(postingoff) * kSizeOfItemPointer;
  std::memmove(replacepos + kSizeOfItemPointer, replacepos,
               static_cast<size_t>(nhtids - postingoff - 1) * kSizeOfItemPointer);
  std::memcpy(replacepos, newitem, kSizeOfItemPointer);
  // The new item takes oposting's largest TID.
  std::memcpy(newitem, oposting + PostingOffset(oposting) + static_cast<size_t>(nhtids - 1) * kSizeOfItemPointer,
              kSizeOfItemPointer);
}

// _bt_form_posting into `out`: base's key with `nhtids` TIDs (a posting list when more than one);
// returns the new tuple's size. Bytes up to the MAXALIGNed size are zeroed first (palloc0).
size_t FormPosting(const uint8_t* base, const uint8_t* htids, int nhtids, uint8_t* out) {
  const size_t keysize = IsPosting(base) ? PostingOffset(base) : IndexTupleSize(base);
  const size_t newsize =
      nhtids > 1 ? MaxAlign(keysize + static_cast<size_t>(nhtids) * kSizeOfItemPointer) : keysize;
  if (newsize > kIndexSizeMask) ThrowPageError("posting list tuple of " + U(newsize) + " bytes");
  std::memset(out, 0, MaxAlign(newsize));
  std::memcpy(out, base, keysize);
  SetTupleInfo(out, static_cast<uint16_t>((TupleInfo(out) & ~kIndexSizeMask) | newsize));
  if (nhtids > 1) {
    SetPosting(out, nhtids, keysize);
    std::memcpy(out + keysize, htids, static_cast<size_t>(nhtids) * kSizeOfItemPointer);
  } else {
    SetTupleInfo(out, static_cast<uint16_t>(TupleInfo(out) & ~kIndexAltTidMask));
    std::memcpy(out, htids, kSizeOfItemPointer);
  }
  return newsize;
}

// ---- deduplication (nbtdedup.c), as btree_xlog_dedup re-runs it ----

struct DedupState {
  // Conservatively BTMaxItemSize, as PostgreSQL's redo uses (larger than the primary's limit).
  size_t maxpostingsize = kBtMaxItemSize;
  const uint8_t* base = nullptr;
  int baseoff = kInvalidOffsetNumber;
  size_t basetupsize = 0;
  uint8_t htids[kBtMaxItemSize];  // PostgreSQL's palloc(maxpostingsize) TID array
  int nhtids = 0;
  int nitems = 0;
  int nintervals = 0;
  // The logged intervals (u16 baseoff, u16 nitems each).
  const uint8_t* logged = nullptr;
  int nlogged = 0;
};

// The heap TIDs of a non-pivot leaf tuple: its own t_tid, or its posting list.
const uint8_t* TupleHtids(const uint8_t* t, int* n) {
  if (IsPivot(t)) ThrowPageError("deduplication met a pivot tuple on a leaf page");
  if (!IsPosting(t)) {
    *n = 1;
    return t;
  }
  CheckPostingTuple(t, "a tuple being deduplicated");
  *n = NPosting(t);
  return t + PostingOffset(t);
}

// _bt_dedup_start_pending.
void DedupStartPending(DedupState* st, const uint8_t* base, int baseoff) {
  int n = 0;
  const uint8_t* htids = TupleHtids(base, &n);
  if (static_cast<size_t>(n) * kSizeOfItemPointer > sizeof(st->htids)) {
    ThrowPageError("posting list of " + U(n) + " TIDs exceeds BTMaxItemSize");
  }
  std::memcpy(st->htids, htids, static_cast<size_t>(n) * kSizeOfItemPointer);
  st->nhtids = n;
  // basetupsize excludes an existing posting list.
  st->basetupsize = IsPosting(base) ? PostingOffset(base) : IndexTupleSize(base);
  st->nitems = 1;
  st->base = base;
  st->baseoff = baseoff;
}

// _bt_dedup_save_htid: false when merging itup would pass maxpostingsize.
bool DedupSaveHtid(DedupState* st, const uint8_t* itup) {
  int n = 0;
  const uint8_t* htids = TupleHtids(itup, &n);
  const size_t merged = MaxAlign(st->basetupsize + static_cast<size_t>(st->nhtids + n) * kSizeOfItemPointer);
  if (merged > st->maxpostingsize) return false;
  std::memcpy(st->htids + static_cast<size_t>(st->nhtids) * kSizeOfItemPointer, htids,
              static_cast<size_t>(n) * kSizeOfItemPointer);
  st->nhtids += n;
  ++st->nitems;
  return true;
}

// The redo loop's test: the pending posting list is the next logged interval, not yet complete.
bool InPendingInterval(const DedupState& st) {
  if (st.nintervals >= st.nlogged) return false;
  const uint8_t* interval = st.logged + static_cast<size_t>(st.nintervals) * kSizeOfBtDedupInterval;
  return st.baseoff == LoadLe16(interval) && st.nitems < LoadLe16(interval + 2);
}

// _bt_dedup_finish_pending: the pending tuple goes to the end of `newpage`, as a posting list when
// it merged several items; a merge must be the next logged interval.
void DedupFinishPending(uint8_t* newpage, DedupState* st) {
  if (st->nitems == 0) ThrowPageError("deduplication of a page without data items");
  const int tupoff = PageGetMaxOffsetNumber(newpage) + 1;
  if (st->nitems == 1) {
    if (PageAddItem(newpage, st->base, IndexTupleSize(st->base), tupoff, false, false) == kInvalidOffsetNumber) {
      ThrowPageError("deduplication failed to add tuple to page");
    }
  } else {
    if (st->nintervals >= st->nlogged ||
        LoadLe16(st->logged + static_cast<size_t>(st->nintervals) * kSizeOfBtDedupInterval) != st->baseoff ||
        LoadLe16(st->logged + static_cast<size_t>(st->nintervals) * kSizeOfBtDedupInterval + 2) != st->nitems) {
      ThrowPageError("deduplication does not reproduce the logged interval " + U(st->nintervals));
    }
    uint8_t final_tuple[kBlckSz];
    const size_t size = FormPosting(st->base, st->htids, st->nhtids, final_tuple);
    if (PageAddItem(newpage, final_tuple, size, tupoff, false, false) == kInvalidOffsetNumber) {
      ThrowPageError("deduplication failed to add tuple to page");
    }
    ++st->nintervals;
  }
  st->nhtids = 0;
  st->nitems = 0;
}

// _bt_update_posting: `orig` without the TIDs at the (ascending) posting-list positions `deletetids`;
// the new tuple goes to `out`, its size is returned.
size_t UpdatePosting(const uint8_t* orig, const uint8_t* deletetids, int ndeleted, uint8_t* out) {
  CheckPostingTuple(orig, "the updated tuple");
  const int norig = NPosting(orig);
  const int nhtids = norig - ndeleted;
  if (!(nhtids > 0 && nhtids < norig)) {
    ThrowPageError("cannot delete " + U(ndeleted) + " of the " + U(norig) + " TIDs of a posting list");
  }
  const size_t keysize = PostingOffset(orig);
  const size_t newsize =
      nhtids > 1 ? MaxAlign(keysize + static_cast<size_t>(nhtids) * kSizeOfItemPointer) : keysize;
  std::memset(out, 0, MaxAlign(newsize));
  std::memcpy(out, orig, keysize);
  SetTupleInfo(out, static_cast<uint16_t>((TupleInfo(out) & ~kIndexSizeMask) | newsize));
  uint8_t* htids = out;
  if (nhtids > 1) {
    SetPosting(out, nhtids, keysize);
    htids = out + keysize;
  } else {
    SetTupleInfo(out, static_cast<uint16_t>(TupleInfo(out) & ~kIndexAltTidMask));
  }
  int ui = 0, d = 0;
  for (int i = 0; i < norig; ++i) {
    if (d < ndeleted && LoadLe16(deletetids + 2 * d) == i) {
      ++d;
      continue;
    }
    if (ui == nhtids) break;  // a deletion offset out of order: caught below
    std::memcpy(htids + static_cast<size_t>(ui++) * kSizeOfItemPointer,
                orig + keysize + static_cast<size_t>(i) * kSizeOfItemPointer, kSizeOfItemPointer);
  }
  if (ui != nhtids || d != ndeleted) ThrowPageError("posting list deletion offsets do not match the tuple");
  return newsize;
}

// btree_xlog_updates: each updated posting list tuple is rebuilt without its deleted TIDs and
// overwritten in place. `offsets` holds nupdated u16 page offsets; `updates` the xl_btree_update array.
void BtreeXlogUpdates(uint8_t* page, const uint8_t* offsets, DataReader* updates, int nupdated) {
  uint8_t tuple[kBlckSz];
  for (int i = 0; i < nupdated; ++i) {
    const int offnum = LoadLe16(offsets + 2 * i);
    size_t lp_len = 0;
    const uint8_t* orig = BtItem(page, offnum, &lp_len);
    const int ndeleted = LoadLe16(updates->Take(kSizeOfBtreeUpdate, "xl_btree_update"));
    const uint8_t* deletetids = updates->Take(static_cast<size_t>(ndeleted) * 2, "posting list offsets");
    const size_t size = UpdatePosting(orig, deletetids, ndeleted, tuple);
    if (!PageIndexTupleOverwrite(page, offnum, tuple, MaxAlign(size))) {
      ThrowPageError("failed to update partially dead item");
    }
  }
}

// The shared body of VACUUM and DELETE on their one block: posting list updates, deletions,
// BTP_HAS_GARBAGE cleared.
void DeleteItems(const RedoRecordView& r, uint8_t* page, int ndeleted, int nupdated) {
  if (!NeedsRedo(r, page)) return;
  CheckBtreePage(page);
  DataReader data(r.block_data, r.block_data_len);
  const uint8_t* deleted = data.Take(static_cast<size_t>(ndeleted) * 2, "deleted offsets");
  if (nupdated > 0) {
    const uint8_t* updated = data.Take(static_cast<size_t>(nupdated) * 2, "updated offsets");
    BtreeXlogUpdates(page, updated, &data, nupdated);
  }
  if (ndeleted > 0) {
    if (ndeleted > kMaxLinePointers) ThrowPageError("more deleted offsets than a page holds: " + U(ndeleted));
    uint16_t itemnos[kMaxLinePointers];
    for (int i = 0; i < ndeleted; ++i) itemnos[i] = LoadLe16(deleted + 2 * i);
    PageIndexMultiDelete(page, itemnos, ndeleted);
  }
  SetBtFlags(page, static_cast<uint16_t>(BtFlags(page) & ~kBtpHasGarbage));
  PageSetLsn(page, r.lsn);
}

// ---- the record types ----

// btree_xlog_insert's block 0: the tuple goes in at offnum; INSERT_POST first splits the posting
// list before it with _bt_swap_posting and inserts the resulting new item.
void InsertOnPage(bool posting, const RedoRecordView& r, uint8_t* page) {
  RequireMainData(r, kSizeOfBtreeInsert, "xl_btree_insert");
  const int offnum = LoadLe16(r.main_data);
  if (!NeedsRedo(r, page)) return;
  CheckBtreePage(page);
  DataReader data(r.block_data, r.block_data_len);
  int postingoff = 0;
  if (posting) postingoff = LoadLe16(data.Take(2, "postingoff"));
  const size_t datalen = data.remaining();
  const uint8_t* item = data.Take(datalen, "the new tuple");
  if (datalen < kSizeOfIndexTupleData || IndexTupleSize(item) != datalen) {
    ThrowPageError("logged tuple of " + U(datalen) + " bytes does not match its header");
  }
  if (!posting) {
    if (PageAddItem(page, item, datalen, offnum, false, false) == kInvalidOffsetNumber) {
      ThrowPageError("failed to add new item");
    }
  } else {
    uint8_t newitem[kBlckSz];
    uint8_t nposting[kBlckSz];
    std::memcpy(newitem, item, datalen);
    size_t lp_len = 0;
    uint8_t* oposting = BtItem(page, offnum - 1, &lp_len);
    SwapPosting(newitem, oposting, postingoff, nposting);
    // Replace the existing posting list with its post-split version, then insert the final new item.
    std::memcpy(oposting, nposting, MaxAlign(IndexTupleSize(nposting)));
    if (PageAddItem(page, newitem, datalen, offnum, false, false) == kInvalidOffsetNumber) {
      ThrowPageError("failed to add posting split new item");
    }
  }
  PageSetLsn(page, r.lsn);
}

// INSERT_LEAF / INSERT_UPPER / INSERT_META / INSERT_POST: btree_xlog_insert. Block 0 is the page
// inserted into; block 1 (non-leaf) the child whose incomplete split the downlink finishes; block 2
// (INSERT_META) the metapage. PostgreSQL changes them holding coupled locks on the primary; replay
// needs none, as PostgreSQL says.
void BtreeXlogInsert(bool isleaf, bool ismeta, bool posting, const RedoRecordView& r, uint8_t* page) {
  switch (r.target_id) {
    case 0: InsertOnPage(posting, r, page); return;
    case 1:
      if (isleaf) break;
      ClearIncompleteSplit(r, page);
      return;
    case 2:
      if (!ismeta) break;
      RestoreMeta(r, page);
      return;
    default: break;
  }
  ThrowNoPart(r, "btree_xlog_insert");
}

struct SplitRecord {
  uint32_t level;
  int firstrightoff;
  int newitemoff;
  int postingoff;
};

// btree_xlog_split's block 1: the new right page rebuilt from the logged tuples.
void SplitRightPage(const RedoRecordView& r, const SplitRecord& x, uint8_t* page) {
  const uint32_t origpagenumber = BlockNumberOf(r, 0);
  BlockRef sibling;
  const uint32_t spagenumber = r.FindBlock(2, &sibling) ? sibling.block_number : kPNone;
  InitBufferForRedo(r, page);
  BtreePageInit(page);
  SetBtPrev(page, origpagenumber);
  SetBtNext(page, spagenumber);
  SetBtLevel(page, x.level);
  SetBtFlags(page, x.level == 0 ? kBtpLeaf : 0);
  SetBtCycleId(page, 0);
  RestoreBtreePage(page, r.block_data, r.block_data_len);
  PageSetLsn(page, r.lsn);
}

// Adds one item to the left page being rebuilt at *leftoff, then advances it.
void AddLeftItem(uint8_t* leftpage, const uint8_t* item, size_t size, int* leftoff, const char* what) {
  if (PageAddItem(leftpage, item, size, *leftoff, false, false) == kInvalidOffsetNumber) {
    ThrowPageError(std::string("failed to add ") + what + " to left page after split");
  }
  ++*leftoff;
}

// btree_xlog_split's block 0: the left half rebuilt on a temporary page in item order (high key,
// the items before firstrightoff, the new item or the split posting list where they go), which keeps
// the tuples' physical order as _bt_split made it.
void SplitLeftPage(bool newitemonleft, const RedoRecordView& r, const SplitRecord& x, uint8_t* origpage) {
  const uint32_t rightpagenumber = BlockNumberOf(r, 1);
  if (!NeedsRedo(r, origpage)) return;
  CheckBtreePage(origpage);
  DataReader data(r.block_data, r.block_data_len);
  uint8_t newitem[kBlckSz];
  uint8_t nposting[kBlckSz];
  size_t newitemsz = 0;
  int replacepostingoff = kInvalidOffsetNumber;
  if (newitemonleft || x.postingoff != 0) {
    const uint8_t* logged = data.TakeAlignedTuple("the new item", &newitemsz);
    std::memcpy(newitem, logged, newitemsz);
    if (x.postingoff != 0) {
      // The posting list being split is the item just before the new item's offset.
      replacepostingoff = x.newitemoff - 1;
      size_t lp_len = 0;
      const uint8_t* oposting = BtItem(origpage, replacepostingoff, &lp_len);
      SwapPosting(newitem, oposting, x.postingoff, nposting);
    }
  }
  size_t left_hikeysz = 0;
  const uint8_t* left_hikey = data.TakeAlignedTuple("the left page's high key", &left_hikeysz);
  if (data.remaining() != 0) ThrowPageError("left page data has " + U(data.remaining()) + " unexpected bytes");

  uint8_t leftpage[kBlckSz];
  PageGetTempPageCopySpecial(origpage, leftpage);
  int leftoff = kPHikey;
  AddLeftItem(leftpage, left_hikey, left_hikeysz, &leftoff, "high key");
  const int maxoff = PageGetMaxOffsetNumber(origpage);
  int off = FirstDataKey(origpage);
  for (; off < x.firstrightoff; ++off) {
    if (off > maxoff) ThrowPageError("firstrightoff " + U(x.firstrightoff) + " is past the page's items");
    if (off == replacepostingoff) {
      // The split posting list replaces the original one.
      AddLeftItem(leftpage, nposting, MaxAlign(IndexTupleSize(nposting)), &leftoff, "new posting list item");
      continue;
    }
    if (newitemonleft && off == x.newitemoff) AddLeftItem(leftpage, newitem, newitemsz, &leftoff, "new item");
    size_t lp_len = 0;
    const uint8_t* item = BtItem(origpage, off, &lp_len);
    AddLeftItem(leftpage, item, lp_len, &leftoff, "old item");
  }
  // The new item may go at the end.
  if (newitemonleft && off == x.newitemoff) AddLeftItem(leftpage, newitem, newitemsz, &leftoff, "new item");

  std::memcpy(origpage, leftpage, kBlckSz);  // PageRestoreTempPage
  SetBtFlags(origpage, static_cast<uint16_t>(kBtpIncompleteSplit | (x.level == 0 ? kBtpLeaf : 0)));
  SetBtNext(origpage, rightpagenumber);
  SetBtCycleId(origpage, 0);
  PageSetLsn(origpage, r.lsn);
}

// SPLIT_L / SPLIT_R: btree_xlog_split. Block 0 is the original (left) page, block 1 the new right
// page (will_init), block 2 the old right sibling whose left link moves, block 3 (non-leaf) the child
// whose incomplete split this split's downlink insertion finishes. PostgreSQL keeps all of them
// locked until the end; replay of one page at a time needs no lock.
void BtreeXlogSplit(bool newitemonleft, const RedoRecordView& r, uint8_t* page) {
  RequireMainData(r, kSizeOfBtreeSplit, "xl_btree_split");
  const uint8_t* m = r.main_data;
  const SplitRecord x{LoadLe32(m), LoadLe16(m + 4), LoadLe16(m + 6), LoadLe16(m + 8)};
  switch (r.target_id) {
    case 0: SplitLeftPage(newitemonleft, r, x, page); return;
    case 1: SplitRightPage(r, x, page); return;
    case 2:
      if (NeedsRedo(r, page)) {
        CheckBtreePage(page);
        SetBtPrev(page, BlockNumberOf(r, 1));
        PageSetLsn(page, r.lsn);
      }
      return;
    case 3:
      if (x.level == 0) break;
      ClearIncompleteSplit(r, page);
      return;
    default: break;
  }
  ThrowNoPart(r, "btree_xlog_split");
}

// DEDUP: btree_xlog_dedup. Deduplication is run again over the page's data items, merging exactly
// the logged intervals, into a temporary page that replaces the page.
void BtreeXlogDedup(const RedoRecordView& r, uint8_t* page) {
  if (r.target_id != 0) ThrowNoPart(r, "btree_xlog_dedup");
  RequireMainData(r, kSizeOfBtreeDedup, "xl_btree_dedup");
  const int nlogged = LoadLe16(r.main_data);
  if (!NeedsRedo(r, page)) return;
  CheckBtreePage(page);
  DataReader data(r.block_data, r.block_data_len);
  DedupState st;
  st.logged = data.Take(static_cast<size_t>(nlogged) * kSizeOfBtDedupInterval, "the dedup intervals");
  st.nlogged = nlogged;
  const int minoff = FirstDataKey(page);
  const int maxoff = PageGetMaxOffsetNumber(page);
  uint8_t newpage[kBlckSz];
  PageGetTempPageCopySpecial(page, newpage);
  if (BtNext(page) != kPNone) {
    size_t lp_len = 0;
    const uint8_t* hikey = BtItem(page, kPHikey, &lp_len);
    if (PageAddItem(newpage, hikey, lp_len, kPHikey, false, false) == kInvalidOffsetNumber) {
      ThrowPageError("deduplication failed to add highkey");
    }
  }
  for (int offnum = minoff; offnum <= maxoff; ++offnum) {
    size_t lp_len = 0;
    const uint8_t* itup = BtItem(page, offnum, &lp_len);
    if (offnum == minoff) {
      DedupStartPending(&st, itup, offnum);
    } else if (InPendingInterval(st)) {
      if (!DedupSaveHtid(&st, itup)) ThrowPageError("deduplication failed to add heap tid to pending posting list");
    } else {
      DedupFinishPending(newpage, &st);
      DedupStartPending(&st, itup, offnum);
    }
  }
  DedupFinishPending(newpage, &st);
  if (st.nintervals != nlogged) {
    ThrowPageError("deduplication merged " + U(st.nintervals) + " intervals, the record logs " + U(nlogged));
  }
  if ((BtFlags(page) & kBtpHasGarbage) != 0) {
    SetBtFlags(newpage, static_cast<uint16_t>(BtFlags(newpage) & ~kBtpHasGarbage));
  }
  std::memcpy(page, newpage, kBlckSz);  // PageRestoreTempPage
  PageSetLsn(page, r.lsn);
}

// VACUUM: btree_xlog_vacuum. PostgreSQL takes a cleanup lock first, as btvacuumpage does; a private
// page needs none.
void BtreeXlogVacuum(const RedoRecordView& r, uint8_t* page) {
  if (r.target_id != 0) ThrowNoPart(r, "btree_xlog_vacuum");
  RequireMainData(r, kSizeOfBtreeVacuum, "xl_btree_vacuum");
  DeleteItems(r, page, LoadLe16(r.main_data), LoadLe16(r.main_data + 2));
}

// DELETE: btree_xlog_delete. Skipped: the recovery conflict on latestRemovedXid (no standby queries).
void BtreeXlogDelete(const RedoRecordView& r, uint8_t* page) {
  if (r.target_id != 0) ThrowNoPart(r, "btree_xlog_delete");
  RequireMainData(r, kSizeOfBtreeDelete, "xl_btree_delete");
  DeleteItems(r, page, LoadLe16(r.main_data + 4), LoadLe16(r.main_data + 6));
}

// MARK_PAGE_HALFDEAD: btree_xlog_mark_page_halfdead. Block 1 is the subtree's parent, which loses
// the downlink after poffset (poffset's downlink takes its right sibling); block 0 is the leaf,
// rewritten as an empty half-dead page whose high key points at the top parent. PostgreSQL locks all
// pages together on the primary; replay of one page needs no lock.
void BtreeXlogMarkPageHalfdead(const RedoRecordView& r, uint8_t* page) {
  RequireMainData(r, kSizeOfBtreeMarkPageHalfDead, "xl_btree_mark_page_halfdead");
  const uint8_t* m = r.main_data;
  const int poffset = LoadLe16(m);
  if (r.target_id == 1) {
    if (!NeedsRedo(r, page)) return;
    CheckBtreePage(page);
    size_t lp_len = 0;
    const uint32_t rightsib = TidBlock(BtItem(page, poffset + 1, &lp_len));
    SetTidBlock(BtItem(page, poffset, &lp_len), rightsib);
    PageIndexTupleDelete(page, poffset + 1);
    PageSetLsn(page, r.lsn);
    return;
  }
  if (r.target_id != 0) ThrowNoPart(r, "btree_xlog_mark_page_halfdead");
  InitBufferForRedo(r, page);
  BtreePageInit(page);
  SetBtPrev(page, LoadLe32(m + 8));   // leftblk
  SetBtNext(page, LoadLe32(m + 12));  // rightblk
  SetBtLevel(page, 0);
  SetBtFlags(page, kBtpHalfDead | kBtpLeaf);
  SetBtCycleId(page, 0);
  AddTopParentHighKey(page, LoadLe32(m + 16));
  PageSetLsn(page, r.lsn);
}

// UNLINK_PAGE / UNLINK_PAGE_META: btree_xlog_unlink_page. Block 0 is the target, rewritten as a
// deleted page holding its safexid (BTPageSetDeleted); blocks 1 and 2 its left and right siblings,
// relinked around it; block 3 the half-dead leaf (when the target is above it), rewritten to point
// at the next child down; block 4 the metapage (_META). PostgreSQL locks left to right on the
// primary and in replay; one private page at a time needs no lock.
void BtreeXlogUnlinkPage(const RedoRecordView& r, uint8_t* page) {
  RequireMainData(r, kSizeOfBtreeUnlinkPage, "xl_btree_unlink_page");
  const uint8_t* m = r.main_data;
  const uint32_t leftsib = LoadLe32(m), rightsib = LoadLe32(m + 4), level = LoadLe32(m + 8);
  switch (r.target_id) {
    case 1:  // the left sibling, if any
      if (leftsib == kPNone) break;
      if (NeedsRedo(r, page)) {
        CheckBtreePage(page);
        SetBtNext(page, rightsib);
        PageSetLsn(page, r.lsn);
      }
      return;
    case 0: {  // the target
      InitBufferForRedo(r, page);
      BtreePageInit(page);
      SetBtPrev(page, leftsib);
      SetBtNext(page, rightsib);
      SetBtLevel(page, level);
      // BTPageSetDeleted(page, safexid): the page holds only BTDeletedPageData.
      SetBtFlags(page, static_cast<uint16_t>((BtFlags(page) & ~kBtpHalfDead) | kBtpDeleted | kBtpHasFullXid |
                                             (level == 0 ? kBtpLeaf : 0)));
      PageSetLower(page, static_cast<uint16_t>(MaxAlign(kSizeOfPageHeaderData) + 8));
      PageSetUpper(page, PageGetSpecial(page));
      std::memcpy(page + MaxAlign(kSizeOfPageHeaderData), m + 16, 8);  // safexid
      SetBtCycleId(page, 0);
      PageSetLsn(page, r.lsn);
      return;
    }
    case 2:  // the right sibling
      if (NeedsRedo(r, page)) {
        CheckBtreePage(page);
        SetBtPrev(page, leftsib);
        PageSetLsn(page, r.lsn);
      }
      return;
    case 3:  // the leaf below an internal target
      if (level == 0) break;
      InitBufferForRedo(r, page);
      BtreePageInit(page);
      SetBtFlags(page, kBtpHalfDead | kBtpLeaf);
      SetBtPrev(page, LoadLe32(m + 24));  // leafleftsib
      SetBtNext(page, LoadLe32(m + 28));  // leafrightsib
      SetBtLevel(page, 0);
      SetBtCycleId(page, 0);
      AddTopParentHighKey(page, LoadLe32(m + 32));  // leaftopparent
      PageSetLsn(page, r.lsn);
      return;
    case 4:
      if ((r.info & 0xF0) != kXlogBtreeUnlinkPageMeta) break;
      RestoreMeta(r, page);
      return;
    default: break;
  }
  ThrowNoPart(r, "btree_xlog_unlink_page");
}

// NEWROOT: btree_xlog_newroot. Block 0 is the new root (empty, or the two logged downlinks after a
// root split), block 1 the old root whose incomplete split this finishes, block 2 the metapage.
void BtreeXlogNewroot(const RedoRecordView& r, uint8_t* page) {
  RequireMainData(r, kSizeOfBtreeNewroot, "xl_btree_newroot");
  const uint32_t level = LoadLe32(r.main_data + 4);
  switch (r.target_id) {
    case 0:
      InitBufferForRedo(r, page);
      BtreePageInit(page);
      SetBtFlags(page, static_cast<uint16_t>(kBtpRoot | (level == 0 ? kBtpLeaf : 0)));
      SetBtPrev(page, kPNone);
      SetBtNext(page, kPNone);
      SetBtLevel(page, level);
      SetBtCycleId(page, 0);
      if (level > 0) RestoreBtreePage(page, r.block_data, r.block_data_len);
      PageSetLsn(page, r.lsn);
      return;
    case 1:
      if (level == 0) break;
      ClearIncompleteSplit(r, page);
      return;
    case 2: RestoreMeta(r, page); return;
    default: break;
  }
  ThrowNoPart(r, "btree_xlog_newroot");
}

// REUSE_PAGE: btree_xlog_reuse_page only resolves hot-standby conflicts and registers no block, so
// it changes no page; a stored one (which ingest never makes) leaves the page as it is.
void BtreeXlogReusePage(const RedoRecordView& /*r*/, uint8_t* /*page*/) {}

}  // namespace

void BtreeRedo(const RedoRecordView& r, uint8_t* page) {
  switch (r.info & 0xF0) {
    case kXlogBtreeInsertLeaf: BtreeXlogInsert(true, false, false, r, page); break;
    case kXlogBtreeInsertUpper: BtreeXlogInsert(false, false, false, r, page); break;
    case kXlogBtreeInsertMeta: BtreeXlogInsert(false, true, false, r, page); break;
    case kXlogBtreeSplitL: BtreeXlogSplit(true, r, page); break;
    case kXlogBtreeSplitR: BtreeXlogSplit(false, r, page); break;
    case kXlogBtreeInsertPost: BtreeXlogInsert(true, false, true, r, page); break;
    case kXlogBtreeDedup: BtreeXlogDedup(r, page); break;
    case kXlogBtreeVacuum: BtreeXlogVacuum(r, page); break;
    case kXlogBtreeDelete: BtreeXlogDelete(r, page); break;
    case kXlogBtreeMarkPageHalfdead: BtreeXlogMarkPageHalfdead(r, page); break;
    case kXlogBtreeUnlinkPage:
    case kXlogBtreeUnlinkPageMeta: BtreeXlogUnlinkPage(r, page); break;
    case kXlogBtreeNewroot: BtreeXlogNewroot(r, page); break;
    case kXlogBtreeReusePage: BtreeXlogReusePage(r, page); break;
    case kXlogBtreeMetaCleanup:
      if (r.target_id != 0) ThrowNoPart(r, "_bt_restore_meta");
      RestoreMeta(r, page);
      break;
    default: ThrowPageError("btree_redo: unknown op code " + U(r.info & 0xF0u));
  }
}

}  // namespace pg
}  // namespace strata
