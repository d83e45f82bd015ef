// Heap, heap2, sequence and visibility-map redo for one block. What every function skips, and why:
// buffer locks and cleanup locks (a page is redone by one caller on a private copy), hot-standby
// conflict resolution (Strata runs no queries against the pages it redoes), and the free space map
// (PostgreSQL never WAL-logs it; XLogRecordPageWithFreeSpace is a hint). The visibility-map bits
// heap records clear without a VM block reference arrive as separate rmgr-255 records stored under
// the VM page (StrataVmClear), so the heap functions only clear PD_ALL_VISIBLE on the heap page.
#include "heap_redo.h"

#include <cstring>
#include <string>

#include "bufpage.h"
#include "pg_format.h"
#include "redo_record.h"

namespace strata {
namespace pg {
namespace {

constexpr uint8_t kXlogHeapInitPage = 0x80;

// HeapTupleHeaderData field offsets (access/htup_details.h).
constexpr size_t kTupXmin = 0;
constexpr size_t kTupXmax = 4;
constexpr size_t kTupCid = 8;  // t_cid, or t_xvac for pre-9.0 moved tuples
constexpr size_t kTupCtid = 12;  // ItemPointerData: u16 bi_hi, u16 bi_lo, u16 ip_posid
constexpr size_t kTupInfomask2 = 18;
constexpr size_t kTupInfomask = 20;
constexpr size_t kTupHoff = 22;

// t_infomask bits.
constexpr uint16_t kHeapXmaxKeyshrLock = 0x0010;
constexpr uint16_t kHeapComboCid = 0x0020;
constexpr uint16_t kHeapXmaxExclLock = 0x0040;
constexpr uint16_t kHeapXmaxLockOnly = 0x0080;
constexpr uint16_t kHeapXmaxShrLock = kHeapXmaxExclLock | kHeapXmaxKeyshrLock;
constexpr uint16_t kHeapLockMask = kHeapXmaxShrLock | kHeapXmaxExclLock | kHeapXmaxKeyshrLock;
constexpr uint16_t kHeapXmaxCommitted = 0x0400;
constexpr uint16_t kHeapXmaxInvalid = 0x0800;
constexpr uint16_t kHeapXmaxIsMulti = 0x1000;
constexpr uint16_t kHeapMoved = 0xC000;
constexpr uint16_t kHeapXmaxBits =
    kHeapXmaxCommitted | kHeapXmaxInvalid | kHeapXmaxIsMulti | kHeapLockMask | kHeapXmaxLockOnly;
// t_infomask2 bits.
constexpr uint16_t kHeapKeysUpdated = 0x2000;
constexpr uint16_t kHeapHotUpdated = 0x4000;

// xl_heap_lock infobits (XLHL_*).
constexpr uint8_t kXlhlXmaxIsMulti = 0x01;
constexpr uint8_t kXlhlXmaxLockOnly = 0x02;
constexpr uint8_t kXlhlXmaxExclLock = 0x04;
constexpr uint8_t kXlhlXmaxKeyshrLock = 0x08;
constexpr uint8_t kXlhlKeysUpdated = 0x10;

// Record flags.
constexpr uint8_t kXlhInsertAllVisibleCleared = 0x01;
constexpr uint8_t kXlhInsertAllFrozenSet = 0x20;
constexpr uint8_t kXlhUpdateOldAllVisibleCleared = 0x01;
constexpr uint8_t kXlhUpdateNewAllVisibleCleared = 0x02;
constexpr uint8_t kXlhUpdatePrefixFromOld = 0x20;
constexpr uint8_t kXlhUpdateSuffixFromOld = 0x40;
constexpr uint8_t kXlhDeleteAllVisibleCleared = 0x01;
constexpr uint8_t kXlhDeleteIsSuper = 0x08;
constexpr uint8_t kXlhDeleteIsPartitionMove = 0x10;
constexpr uint8_t kXlhFreezeXvac = 0x02;
constexpr uint8_t kXlhInvalidXvac = 0x04;

// Main data and block data sizes (SizeOf* in access/heapam_xlog.h).
constexpr size_t kSizeOfHeapInsert = 3;
constexpr size_t kSizeOfHeapDelete = 8;
constexpr size_t kSizeOfHeapUpdate = 14;
constexpr size_t kSizeOfHeapLock = 8;
constexpr size_t kSizeOfHeapConfirm = 2;
constexpr size_t kSizeOfHeapInplace = 2;
constexpr size_t kSizeOfHeapPrune = 8;
constexpr size_t kSizeOfHeapVacuum = 2;
constexpr size_t kSizeOfHeapFreezePage = 6;
constexpr size_t kSizeOfHeapFreezeTuple = 12;  // sizeof(xl_heap_freeze_tuple), padding included
constexpr size_t kSizeOfHeapVisible = 5;
constexpr size_t kSizeOfHeapMultiInsert = 4;
constexpr size_t kSizeOfMultiInsertTuple = 7;
constexpr size_t kSizeOfHeapHeader = 5;
constexpr size_t kSizeOfSeqRec = 12;  // xl_seq_rec: RelFileNode
constexpr size_t kSizeOfVmClear = 9;
constexpr size_t kSizeOfVmTruncate = 4;
constexpr uint32_t kSeqMagic = 0x1717;
constexpr uint16_t kMovedPartitionsOffsetNumber = 0xFFFD;

// ---- shared steps ----

void RequireMainData(const RedoRecordView& r, size_t size, const char* what) {
  if (r.main_data_len < size) ThrowPageError(std::string("main data shorter than ") + what);
}

void RequireTarget(const RedoRecordView& r, uint8_t id) {
  if (r.target_id != id) ThrowPageError("the record changes no page under block id " + std::to_string(r.target_id));
}

uint32_t BlockNumberOf(const RedoRecordView& r, uint8_t id) {
  BlockRef b;
  if (!r.FindBlock(id, &b)) ThrowPageError("the record has no block id " + std::to_string(id));
  return b.block_number;
}

// Checks an offset number against the line pointer array (PostgreSQL writes through it unchecked).
void RequireLinePointer(const uint8_t* page, int offnum) {
  const int maxoff = PageGetMaxOffsetNumber(page);
  if (offnum < kFirstOffsetNumber || offnum > maxoff) {
    ThrowPageError("offset " + std::to_string(offnum) + " beyond the line pointer array (" + std::to_string(maxoff) +
                   " items)");
  }
}

// The tuple header at `offnum`: PostgreSQL's "invalid lp" test, plus the bounds it leaves implicit
// (the tuple and its 23-byte header inside the page).
uint8_t* HeapTupleAt(uint8_t* page, int offnum) {
  if (offnum < kFirstOffsetNumber || offnum > PageGetMaxOffsetNumber(page) || !ItemIdIsNormal(page, offnum)) {
    ThrowPageError("invalid lp");
  }
  const size_t off = ItemIdGetOffset(page, offnum), len = ItemIdGetLength(page, offnum);
  if (len < kSizeofHeapTupleHeader || off < kSizeOfPageHeaderData || off + len > kBlckSz) {
    ThrowPageError("tuple at offset " + std::to_string(offnum) + " lies outside the page");
  }
  return page + off;
}

uint16_t Infomask(const uint8_t* tup) { return LoadLe16(tup + kTupInfomask); }
uint16_t Infomask2(const uint8_t* tup) { return LoadLe16(tup + kTupInfomask2); }
void SetInfomask(uint8_t* tup, uint16_t v) { StoreLe16(tup + kTupInfomask, v); }
void SetInfomask2(uint8_t* tup, uint16_t v) { StoreLe16(tup + kTupInfomask2, v); }
void ClearInfomaskBits(uint8_t* tup, uint16_t bits) { SetInfomask(tup, static_cast<uint16_t>(Infomask(tup) & ~bits)); }
void ClearInfomask2Bits(uint8_t* tup, uint16_t bits) {
  SetInfomask2(tup, static_cast<uint16_t>(Infomask2(tup) & ~bits));
}

void SetCtid(uint8_t* tup, uint32_t blkno, uint16_t offnum) {
  StoreLe16(tup + kTupCtid, static_cast<uint16_t>(blkno >> 16));
  StoreLe16(tup + kTupCtid + 2, static_cast<uint16_t>(blkno));
  StoreLe16(tup + kTupCtid + 4, offnum);
}

// HeapTupleHeaderSetCmin / SetCmax(cid, false): the command id, not a combo id.
void SetCommandId(uint8_t* tup, uint32_t cid) {
  StoreLe32(tup + kTupCid, cid);
  ClearInfomaskBits(tup, kHeapComboCid);
}

// fix_infomask_from_infobits: the reverse of compute_infobits on the primary.
void FixInfomaskFromInfobits(uint8_t infobits, uint16_t* infomask, uint16_t* infomask2) {
  *infomask &= static_cast<uint16_t>(~(kHeapXmaxIsMulti | kHeapXmaxLockOnly | kHeapXmaxKeyshrLock | kHeapXmaxExclLock));
  *infomask2 &= static_cast<uint16_t>(~kHeapKeysUpdated);
  if (infobits & kXlhlXmaxIsMulti) *infomask |= kHeapXmaxIsMulti;
  if (infobits & kXlhlXmaxLockOnly) *infomask |= kHeapXmaxLockOnly;
  if (infobits & kXlhlXmaxExclLock) *infomask |= kHeapXmaxExclLock;
  // HEAP_XMAX_SHR_LOCK is not considered here, as in PostgreSQL.
  if (infobits & kXlhlXmaxKeyshrLock) *infomask |= kHeapXmaxKeyshrLock;
  if (infobits & kXlhlKeysUpdated) *infomask2 |= kHeapKeysUpdated;
}

// The step delete, update, lock and lock_updated share: drop the old xmax state, then apply infobits.
void ResetXmaxBits(uint8_t* tup, uint8_t infobits) {
  uint16_t infomask = static_cast<uint16_t>(Infomask(tup) & ~(kHeapXmaxBits | kHeapMoved));
  uint16_t infomask2 = static_cast<uint16_t>(Infomask2(tup) & ~kHeapKeysUpdated);
  FixInfomaskFromInfobits(infobits, &infomask, &infomask2);
  SetInfomask(tup, infomask);
  SetInfomask2(tup, infomask2);
}

bool XmaxIsLockedOnly(uint16_t infomask) {
  return (infomask & kHeapXmaxLockOnly) != 0 ||
         (infomask & (kHeapXmaxIsMulti | kHeapLockMask)) == kHeapXmaxExclLock;
}

// The new-tuple header every insert path builds: zeroed, then the logged infomasks and t_hoff,
// xmin = the record's xid, cmin = FirstCommandId, ctid = (blkno, offnum).
void InitTupleHeader(uint8_t* tup, uint16_t infomask2, uint16_t infomask, uint8_t hoff, uint32_t xid) {
  std::memset(tup, 0, kSizeofHeapTupleHeader);
  SetInfomask2(tup, infomask2);
  SetInfomask(tup, infomask);
  tup[kTupHoff] = hoff;
  StoreLe32(tup + kTupXmin, xid);
  SetCommandId(tup, kFirstCommandId);
}

void AddHeapTuple(uint8_t* page, const uint8_t* tup, size_t len, int offnum) {
  if (PageAddItem(page, tup, len, offnum, true, true) == kInvalidOffsetNumber) ThrowPageError("failed to add tuple");
}

void RequireInsertOffset(const uint8_t* page, int offnum) {
  if (PageGetMaxOffsetNumber(page) + 1 < offnum) ThrowPageError("invalid max offset number");
}

void RequireTupleLength(size_t len) {
  if (len > kMaxHeapTupleSize) ThrowPageError("tuple of " + std::to_string(len) + " bytes is longer than a page allows");
}

// The page for a record that may carry XLOG_HEAP_INIT_PAGE: XLogInitBufferForRedo + PageInit, or
// XLogReadBufferForRedo.
RedoAction InitOrReadPage(const RedoRecordView& r, uint8_t* page, bool init) {
  if (!init) return ReadBufferForRedo(r, page);
  InitBufferForRedo(r, page);
  PageInit(page, 0);
  return RedoAction::kNeedsRedo;
}

// The tuple to update in place: the old version, its length, for prefix/suffix reuse.
struct OldTuple {
  const uint8_t* data = nullptr;
  size_t len = 0;
};

// heap_xlog_update's first half: the old tuple version on the old page.
void UpdateOldTuple(const RedoRecordView& r, uint8_t* page, bool hot_update, uint32_t newblk, OldTuple* old) {
  const uint8_t* x = r.main_data;
  const uint32_t old_xmax = LoadLe32(x), new_offnum = LoadLe16(x + 12);
  const uint16_t old_offnum = LoadLe16(x + 4);
  const uint8_t old_infobits = x[6], flags = x[7];
  uint8_t* tup = HeapTupleAt(page, old_offnum);
  old->data = tup;
  old->len = ItemIdGetLength(page, old_offnum);
  ResetXmaxBits(tup, old_infobits);
  if (hot_update) {
    SetInfomask2(tup, Infomask2(tup) | kHeapHotUpdated);
  } else {
    ClearInfomask2Bits(tup, kHeapHotUpdated);
  }
  // PostgreSQL sets the HOT bit before applying the infobits; they touch different bits.
  StoreLe32(tup + kTupXmax, old_xmax);
  SetCommandId(tup, kFirstCommandId);
  SetCtid(tup, newblk, static_cast<uint16_t>(new_offnum));
  PageSetPrunable(page, r.xid);
  if (flags & kXlhUpdateOldAllVisibleCleared) PageClearAllVisible(page);
  PageSetLsn(page, r.lsn);
}

// heap_xlog_update's second half: the new tuple version, rebuilt from the block data and, for a
// same-page update, a prefix and/or suffix of the old version.
void UpdateNewTuple(const RedoRecordView& r, uint8_t* page, uint32_t newblk, bool same_page, const OldTuple& old) {
  const uint8_t* x = r.main_data;
  const uint8_t flags = x[7];
  const uint32_t new_xmax = LoadLe32(x + 8);
  const uint16_t offnum = LoadLe16(x + 12);
  RequireInsertOffset(page, offnum);
  const uint8_t* rec = r.block_data;
  const uint8_t* const end = rec + r.block_data_len;
  uint16_t prefixlen = 0, suffixlen = 0;
  if ((flags & (kXlhUpdatePrefixFromOld | kXlhUpdateSuffixFromOld)) != 0 && !same_page) {
    ThrowPageError("prefix or suffix taken from an old tuple on another page");
  }
  size_t need = kSizeOfHeapHeader + ((flags & kXlhUpdatePrefixFromOld) ? 2 : 0) +
                ((flags & kXlhUpdateSuffixFromOld) ? 2 : 0);
  if (r.block_data_len < need) ThrowPageError("block data shorter than the new tuple's header");
  if (flags & kXlhUpdatePrefixFromOld) {
    prefixlen = LoadLe16(rec);
    rec += 2;
  }
  if (flags & kXlhUpdateSuffixFromOld) {
    suffixlen = LoadLe16(rec);
    rec += 2;
  }
  const uint16_t infomask2 = LoadLe16(rec), infomask = LoadLe16(rec + 2);
  const uint8_t hoff = rec[4];
  rec += kSizeOfHeapHeader;
  const size_t tuplen = static_cast<size_t>(end - rec);
  const size_t newlen = kSizeofHeapTupleHeader + tuplen + prefixlen + suffixlen;
  RequireTupleLength(newlen);
  if (old.data != nullptr) {
    const size_t old_hoff = old.data[kTupHoff];
    if (old_hoff + prefixlen > old.len || suffixlen > old.len) ThrowPageError("prefix or suffix longer than the old tuple");
  }
  uint8_t tbuf[kMaxHeapTupleSize];
  InitTupleHeader(tbuf, infomask2, infomask, hoff, r.xid);
  uint8_t* newp = tbuf + kSizeofHeapTupleHeader;
  if (prefixlen > 0) {
    // Bitmap [+ padding] [+ oid] from the record, the prefix from the old tuple, then the rest.
    if (hoff < kSizeofHeapTupleHeader || hoff - kSizeofHeapTupleHeader > tuplen) {
      ThrowPageError("t_hoff does not fit the logged tuple");
    }
    const size_t bitmap_len = hoff - kSizeofHeapTupleHeader;
    std::memcpy(newp, rec, bitmap_len);
    newp += bitmap_len;
    std::memcpy(newp, old.data + old.data[kTupHoff], prefixlen);
    newp += prefixlen;
    std::memcpy(newp, rec + bitmap_len, tuplen - bitmap_len);
    newp += tuplen - bitmap_len;
  } else {
    std::memcpy(newp, rec, tuplen);
    newp += tuplen;
  }
  if (suffixlen > 0) std::memcpy(newp, old.data + old.len - suffixlen, suffixlen);
  StoreLe32(tbuf + kTupXmax, new_xmax);
  SetCtid(tbuf, newblk, offnum);
  AddHeapTuple(page, tbuf, newlen, offnum);
  if (flags & kXlhUpdateNewAllVisibleCleared) PageClearAllVisible(page);
  PageSetLsn(page, r.lsn);
}

// heap_xlog_update for the one stored block: the old version lives on block 1 when the record has
// one, else on block 0 with the new version; block 0 always takes the new version.
void UpdateBlock(const RedoRecordView& r, uint8_t* page, bool hot_update) {
  RequireMainData(r, kSizeOfHeapUpdate, "xl_heap_update");
  const uint32_t newblk = BlockNumberOf(r, 0);
  BlockRef old_ref;
  const uint32_t oldblk = r.FindBlock(1, &old_ref) ? old_ref.block_number : newblk;
  const bool same_page = oldblk == newblk;
  const uint8_t old_id = same_page ? 0 : 1;
  if (r.target_id != 0 && r.target_id != old_id) RequireTarget(r, 0);
  OldTuple old;
  RedoAction action = RedoAction::kDone;
  if (r.target_id == old_id) {
    action = ReadBufferForRedo(r, page);
    if (action == RedoAction::kNeedsRedo) UpdateOldTuple(r, page, hot_update, newblk, &old);
  }
  if (r.target_id != 0) return;
  if (!same_page) action = InitOrReadPage(r, page, (r.info & kXlogHeapInitPage) != 0);
  if (action == RedoAction::kNeedsRedo) UpdateNewTuple(r, page, newblk, same_page, old);
}

// Tuple data of one MULTI_INSERT tuple: SHORTALIGNed xl_multi_insert_tuple, then its bytes.
void MultiInsertOne(const RedoRecordView& r, uint8_t* page, size_t* pos, int offnum, uint32_t blkno) {
  RequireInsertOffset(page, offnum);
  const size_t hdr = ShortAlign(*pos);
  if (hdr + kSizeOfMultiInsertTuple > r.block_data_len) ThrowPageError("block data ends inside a tuple header");
  const uint8_t* h = r.block_data + hdr;
  const size_t datalen = LoadLe16(h);
  const size_t data = hdr + kSizeOfMultiInsertTuple;
  if (data + datalen > r.block_data_len) ThrowPageError("block data ends inside a tuple");
  const size_t newlen = kSizeofHeapTupleHeader + datalen;
  RequireTupleLength(newlen);
  uint8_t tbuf[kMaxHeapTupleSize];
  InitTupleHeader(tbuf, LoadLe16(h + 2), LoadLe16(h + 4), h[6], r.xid);
  std::memcpy(tbuf + kSizeofHeapTupleHeader, r.block_data + data, datalen);
  SetCtid(tbuf, blkno, static_cast<uint16_t>(offnum));
  AddHeapTuple(page, tbuf, newlen, offnum);
  *pos = data + datalen;
}

// visibilitymap_clear's bit arithmetic on a VM page: clears `flags` of heap block `heap_blk`.
void VmClearBits(uint8_t* page, uint32_t heap_blk, uint8_t flags) {
  const uint32_t map_byte = (heap_blk % kVmHeapBlocksPerPage) / kVmHeapBlocksPerByte;
  const uint32_t map_offset = (heap_blk % kVmHeapBlocksPerByte) * 2;
  const uint8_t mask = static_cast<uint8_t>(flags << map_offset);
  uint8_t* map = PageGetContents(page);
  map[map_byte] = static_cast<uint8_t>(map[map_byte] & ~mask);
}

void RequireVmFork(const RedoRecordView& r) {
  if (r.Target().fork != kVisibilityMapForkNum) ThrowPageError("visibility-map record on a block outside the VM fork");
}

}  // namespace

// ---- Heap (rmgr 10) ----

// INSERT / INSERT+INIT: heap_xlog_insert. PostgreSQL also clears the VM bits of the block
// (XLH_INSERT_ALL_VISIBLE_CLEARED) through visibilitymap_clear and updates the FSM when the page is
// low on space; Strata clears the VM through an rmgr-255 record on the VM page and skips the FSM.
void HeapXlogInsert(const RedoRecordView& r, uint8_t* page) {
  RequireTarget(r, 0);
  RequireMainData(r, kSizeOfHeapInsert, "xl_heap_insert");
  const uint16_t offnum = LoadLe16(r.main_data);
  const uint8_t flags = r.main_data[2];
  if (InitOrReadPage(r, page, (r.info & kXlogHeapInitPage) != 0) != RedoAction::kNeedsRedo) return;
  RequireInsertOffset(page, offnum);
  if (r.block_data_len <= kSizeOfHeapHeader) ThrowPageError("block data shorter than the tuple header");
  const size_t datalen = r.block_data_len - kSizeOfHeapHeader;
  const size_t newlen = kSizeofHeapTupleHeader + datalen;
  RequireTupleLength(newlen);
  const uint8_t* d = r.block_data;
  uint8_t tbuf[kMaxHeapTupleSize];
  InitTupleHeader(tbuf, LoadLe16(d), LoadLe16(d + 2), d[4], r.xid);
  std::memcpy(tbuf + kSizeofHeapTupleHeader, d + kSizeOfHeapHeader, datalen);
  SetCtid(tbuf, r.Target().block_number, offnum);
  AddHeapTuple(page, tbuf, newlen, offnum);
  PageSetLsn(page, r.lsn);
  if (flags & kXlhInsertAllVisibleCleared) PageClearAllVisible(page);
}

// DELETE: heap_xlog_delete. Skipped: the VM clear (an rmgr-255 record does it), locks.
void HeapXlogDelete(const RedoRecordView& r, uint8_t* page) {
  RequireTarget(r, 0);
  RequireMainData(r, kSizeOfHeapDelete, "xl_heap_delete");
  const uint8_t* x = r.main_data;
  const uint32_t xmax = LoadLe32(x);
  const uint16_t offnum = LoadLe16(x + 4);
  const uint8_t infobits = x[6], flags = x[7];
  if (ReadBufferForRedo(r, page) != RedoAction::kNeedsRedo) return;
  uint8_t* tup = HeapTupleAt(page, offnum);
  ResetXmaxBits(tup, infobits);
  ClearInfomask2Bits(tup, kHeapHotUpdated);
  if (!(flags & kXlhDeleteIsSuper)) {
    StoreLe32(tup + kTupXmax, xmax);
  } else {
    StoreLe32(tup + kTupXmin, kInvalidTransactionId);
  }
  SetCommandId(tup, kFirstCommandId);
  PageSetPrunable(page, r.xid);
  if (flags & kXlhDeleteAllVisibleCleared) PageClearAllVisible(page);
  if (flags & kXlhDeleteIsPartitionMove) {
    SetCtid(tup, kInvalidBlockNumber, kMovedPartitionsOffsetNumber);
  } else {
    SetCtid(tup, r.Target().block_number, offnum);
  }
  PageSetLsn(page, r.lsn);
}

// UPDATE / UPDATE+INIT: heap_xlog_update(hot_update = false), the stored block's half. PostgreSQL
// keeps the old page locked until the new tuple is in (for hot-standby readers) and clears VM bits
// of both blocks; Strata redoes each page on its own and leaves the VM to rmgr-255 records.
void HeapXlogUpdate(const RedoRecordView& r, uint8_t* page) { UpdateBlock(r, page, false); }

// HOT_UPDATE: heap_xlog_update(hot_update = true); old and new versions share one page.
void HeapXlogHotUpdate(const RedoRecordView& r, uint8_t* page) { UpdateBlock(r, page, true); }

// HEAP_CONFIRM: heap_xlog_confirm (speculative insertion confirmed: ctid points at itself).
void HeapXlogConfirm(const RedoRecordView& r, uint8_t* page) {
  RequireTarget(r, 0);
  RequireMainData(r, kSizeOfHeapConfirm, "xl_heap_confirm");
  const uint16_t offnum = LoadLe16(r.main_data);
  if (ReadBufferForRedo(r, page) != RedoAction::kNeedsRedo) return;
  uint8_t* tup = HeapTupleAt(page, offnum);
  SetCtid(tup, r.Target().block_number, offnum);
  PageSetLsn(page, r.lsn);
}

// LOCK: heap_xlog_lock. Skipped: the all-frozen VM clear (XLH_LOCK_ALL_FROZEN_CLEARED; an rmgr-255
// record), locks.
void HeapXlogLock(const RedoRecordView& r, uint8_t* page) {
  RequireTarget(r, 0);
  RequireMainData(r, kSizeOfHeapLock, "xl_heap_lock");
  const uint8_t* x = r.main_data;
  const uint32_t locking_xid = LoadLe32(x);
  const uint16_t offnum = LoadLe16(x + 4);
  const uint8_t infobits = x[6];
  if (ReadBufferForRedo(r, page) != RedoAction::kNeedsRedo) return;
  uint8_t* tup = HeapTupleAt(page, offnum);
  ResetXmaxBits(tup, infobits);
  // Only a lock (no update): no HOT chain and no forward link.
  if (XmaxIsLockedOnly(Infomask(tup))) {
    ClearInfomask2Bits(tup, kHeapHotUpdated);
    SetCtid(tup, r.Target().block_number, offnum);
  }
  StoreLe32(tup + kTupXmax, locking_xid);
  SetCommandId(tup, kFirstCommandId);
  PageSetLsn(page, r.lsn);
}

// INPLACE: heap_xlog_inplace (catalog rows VACUUM/ANALYZE overwrite in place: same length).
void HeapXlogInplace(const RedoRecordView& r, uint8_t* page) {
  RequireTarget(r, 0);
  RequireMainData(r, kSizeOfHeapInplace, "xl_heap_inplace");
  const uint16_t offnum = LoadLe16(r.main_data);
  if (ReadBufferForRedo(r, page) != RedoAction::kNeedsRedo) return;
  uint8_t* tup = HeapTupleAt(page, offnum);
  const size_t hoff = tup[kTupHoff];
  const size_t lp_len = ItemIdGetLength(page, offnum);
  if (hoff > lp_len || lp_len - hoff != r.block_data_len) ThrowPageError("wrong tuple length");
  std::memcpy(tup + hoff, r.block_data, r.block_data_len);
  PageSetLsn(page, r.lsn);
}

// ---- Heap2 (rmgr 9) ----

// PRUNE: heap_xlog_prune with heap_page_prune_execute (PG15 layout: xl_heap_prune
// {latestRemovedXid, nredirected, ndead}; block data = redirect pairs, dead, then unused offsets),
// then PageRepairFragmentation. Skipped: the cleanup lock, the standby conflict on
// latestRemovedXid, the FSM update.
void HeapXlogPrune(const RedoRecordView& r, uint8_t* page) {
  RequireTarget(r, 0);
  RequireMainData(r, kSizeOfHeapPrune, "xl_heap_prune");
  const size_t nredirected = LoadLe16(r.main_data + 4), ndead = LoadLe16(r.main_data + 6);
  if (ReadBufferForRedo(r, page) != RedoAction::kNeedsRedo) return;
  const size_t fixed = (nredirected * 2 + ndead) * 2;
  if (r.block_data_len < fixed || (r.block_data_len - fixed) % 2 != 0) {
    ThrowPageError("block data does not match the prune counts");
  }
  const size_t nunused = (r.block_data_len - fixed) / 2;
  const uint8_t* p = r.block_data;
  for (size_t i = 0; i < nredirected; ++i, p += 4) {
    const int from = LoadLe16(p);
    RequireLinePointer(page, from);
    ItemIdSetRedirect(page, from, LoadLe16(p + 2));
  }
  for (size_t i = 0; i < ndead; ++i, p += 2) {
    const int off = LoadLe16(p);
    RequireLinePointer(page, off);
    ItemIdSetDead(page, off);
  }
  for (size_t i = 0; i < nunused; ++i, p += 2) {
    const int off = LoadLe16(p);
    RequireLinePointer(page, off);
    ItemIdSetUnused(page, off);
  }
  PageRepairFragmentation(page);
  PageSetLsn(page, r.lsn);
}

// VACUUM: heap_xlog_vacuum (LP_DEAD items become LP_UNUSED, then PageTruncateLinePointerArray; no
// defragmentation). Skipped: the FSM update.
void HeapXlogVacuum(const RedoRecordView& r, uint8_t* page) {
  RequireTarget(r, 0);
  RequireMainData(r, kSizeOfHeapVacuum, "xl_heap_vacuum");
  const size_t nunused = LoadLe16(r.main_data);
  if (ReadBufferForRedo(r, page) != RedoAction::kNeedsRedo) return;
  if (r.block_data_len < nunused * 2) ThrowPageError("block data shorter than its unused offsets");
  for (size_t i = 0; i < nunused; ++i) {
    const int off = LoadLe16(r.block_data + 2 * i);
    RequireLinePointer(page, off);
    ItemIdSetUnused(page, off);
  }
  PageTruncateLinePointerArray(page);
  PageSetLsn(page, r.lsn);
}

// FREEZE_PAGE: heap_xlog_freeze_page with heap_execute_freeze_tuple per logged tuple (PG15 layout:
// xl_heap_freeze_page {cutoff_xid, ntuples}; block data = 12-byte xl_heap_freeze_tuple entries).
// Skipped: the standby conflict on cutoff_xid.
void HeapXlogFreezePage(const RedoRecordView& r, uint8_t* page) {
  RequireTarget(r, 0);
  RequireMainData(r, kSizeOfHeapFreezePage, "xl_heap_freeze_page");
  const size_t ntuples = LoadLe16(r.main_data + 4);
  if (ReadBufferForRedo(r, page) != RedoAction::kNeedsRedo) return;
  if (r.block_data_len < ntuples * kSizeOfHeapFreezeTuple) ThrowPageError("block data shorter than its freeze plans");
  for (size_t i = 0; i < ntuples; ++i) {
    const uint8_t* f = r.block_data + i * kSizeOfHeapFreezeTuple;
    uint8_t* tup = HeapTupleAt(page, LoadLe16(f + 4));
    StoreLe32(tup + kTupXmax, LoadLe32(f));
    if (f[10] & kXlhFreezeXvac) StoreLe32(tup + kTupCid, kFrozenTransactionId);
    if (f[10] & kXlhInvalidXvac) StoreLe32(tup + kTupCid, kInvalidTransactionId);
    SetInfomask(tup, LoadLe16(f + 8));
    SetInfomask2(tup, LoadLe16(f + 6));
  }
  PageSetLsn(page, r.lsn);
}

// VISIBLE: heap_xlog_visible. Block 1, the heap page: PD_ALL_VISIBLE, and its LSN only when
// XLogHintBitIsNeeded (checksums or wal_log_hints; otherwise PostgreSQL deliberately leaves pd_lsn).
// Block 0, the VM page (read with RBM_ZERO_ON_ERROR, initialized when new): visibilitymap_set of
// the heap block's bits, with the VM page's LSN, unless the bits were already set. Skipped: the
// standby conflict on cutoff_xid, the FSM update.
void HeapXlogVisible(const RedoRecordView& r, uint8_t* page) {
  RequireMainData(r, kSizeOfHeapVisible, "xl_heap_visible");
  const uint8_t flags = r.main_data[4];
  const uint32_t heap_blk = BlockNumberOf(r, 1);
  if (r.target_id == 1) {
    if (ReadBufferForRedo(r, page) != RedoAction::kNeedsRedo) return;
    PageSetAllVisible(page);
    if (r.hint_bits_logged()) PageSetLsn(page, r.lsn);
    return;
  }
  RequireTarget(r, 0);
  if (ReadBufferForRedoZeroOnError(r, page) != RedoAction::kNeedsRedo) return;
  if (PageIsNew(page)) PageInit(page, 0);
  if (heap_blk / kVmHeapBlocksPerPage != r.Target().block_number) ThrowPageError("wrong VM page for the heap block");
  if (r.lsn <= PageGetLsn(page)) return;
  const uint32_t map_byte = (heap_blk % kVmHeapBlocksPerPage) / kVmHeapBlocksPerByte;
  const uint32_t map_offset = (heap_blk % kVmHeapBlocksPerByte) * 2;
  uint8_t* map = PageGetContents(page);
  if (flags != ((map[map_byte] >> map_offset) & kVisibilityMapValidBits)) {
    map[map_byte] = static_cast<uint8_t>(map[map_byte] | (flags << map_offset));
    PageSetLsn(page, r.lsn);
  }
}

// MULTI_INSERT / MULTI_INSERT+INIT: heap_xlog_multi_insert (xl_heap_multi_insert {flags, ntuples,
// offsets[] unless +INIT}; block data = SHORTALIGNed xl_multi_insert_tuple + data per tuple).
// XLH_INSERT_ALL_FROZEN_SET (COPY FREEZE) sets PD_ALL_VISIBLE. Skipped: VM clear (rmgr 255), FSM.
void HeapXlogMultiInsert(const RedoRecordView& r, uint8_t* page) {
  RequireTarget(r, 0);
  RequireMainData(r, kSizeOfHeapMultiInsert, "xl_heap_multi_insert");
  const bool isinit = (r.info & kXlogHeapInitPage) != 0;
  const uint8_t flags = r.main_data[0];
  const size_t ntuples = LoadLe16(r.main_data + 2);
  if (!isinit) RequireMainData(r, kSizeOfHeapMultiInsert + 2 * ntuples, "its offsets");
  if (InitOrReadPage(r, page, isinit) != RedoAction::kNeedsRedo) return;
  const uint32_t blkno = r.Target().block_number;
  size_t pos = 0;
  for (size_t i = 0; i < ntuples; ++i) {
    const int offnum = isinit ? static_cast<int>(kFirstOffsetNumber + i)
                              : LoadLe16(r.main_data + kSizeOfHeapMultiInsert + 2 * i);
    MultiInsertOne(r, page, &pos, offnum, blkno);
  }
  if (pos != r.block_data_len) ThrowPageError("total tuple length mismatch");
  PageSetLsn(page, r.lsn);
  if (flags & kXlhInsertAllVisibleCleared) PageClearAllVisible(page);
  if (flags & kXlhInsertAllFrozenSet) PageSetAllVisible(page);
}

// LOCK_UPDATED: heap_xlog_lock_updated (a lock on a later version of an updated tuple). Skipped:
// the all-frozen VM clear (rmgr 255).
void HeapXlogLockUpdated(const RedoRecordView& r, uint8_t* page) {
  RequireTarget(r, 0);
  RequireMainData(r, kSizeOfHeapLock, "xl_heap_lock_updated");
  const uint8_t* x = r.main_data;
  const uint32_t xmax = LoadLe32(x);
  const uint16_t offnum = LoadLe16(x + 4);
  const uint8_t infobits = x[6];
  if (ReadBufferForRedo(r, page) != RedoAction::kNeedsRedo) return;
  uint8_t* tup = HeapTupleAt(page, offnum);
  ResetXmaxBits(tup, infobits);
  StoreLe32(tup + kTupXmax, xmax);
  PageSetLsn(page, r.lsn);
}

// Heap TRUNCATE (the Storage records truncate; this one exists for logical decoding), Heap2
// NEW_CID (logical decoding only) and REWRITE (heap_xlog_logical_rewrite writes mapping files,
// not pages). None has a block reference, so ingest never stores one; if one arrives the page is
// left as it is, as PostgreSQL leaves it.
void HeapXlogNoPageChange(const RedoRecordView& /*r*/, uint8_t* /*page*/) {}

// ---- Sequence (rmgr 15) ----

// LOG: seq_redo. The page is rebuilt from scratch: PageInit with the 4-byte sequence_magic special
// space (SEQ_MAGIC), the logged tuple (main data after xl_seq_rec) as item 1, the record's LSN.
void SeqRedo(const RedoRecordView& r, uint8_t* page) {
  RequireTarget(r, 0);
  RequireMainData(r, kSizeOfSeqRec, "xl_seq_rec");
  InitBufferForRedo(r, page);
  uint8_t local[kBlckSz];
  PageInit(local, sizeof(uint32_t));
  StoreLe32(local + PageGetSpecial(local), kSeqMagic);
  if (PageAddItem(local, r.main_data + kSizeOfSeqRec, r.main_data_len - kSizeOfSeqRec, kFirstOffsetNumber, false,
                  false) == kInvalidOffsetNumber) {
    ThrowPageError("seq_redo: failed to add item to page");
  }
  PageSetLsn(local, r.lsn);
  std::memcpy(page, local, kBlckSz);
}

// ---- Strata (rmgr 255) ----

// VM_CLEAR: visibilitymap_clear for up to two heap blocks (main data: u32 heap block, u32 second
// heap block or 0xFFFFFFFF, u8 flags), each only if it maps to this VM page. As vm_readbuf does,
// a new (all-zero) VM page is initialized first. No LSN change: PostgreSQL's clear does not set one.
void StrataVmClear(const RedoRecordView& r, uint8_t* page) {
  RequireVmFork(r);
  RequireMainData(r, kSizeOfVmClear, "VM_CLEAR");
  const uint32_t vm_blk = r.Target().block_number;
  const uint32_t heap_blks[2] = {LoadLe32(r.main_data), LoadLe32(r.main_data + 4)};
  const uint8_t flags = r.main_data[8];
  bool any = false;
  for (uint32_t heap_blk : heap_blks) {
    if (heap_blk == kInvalidBlockNumber || heap_blk / kVmHeapBlocksPerPage != vm_blk) continue;
    if (!any && PageIsNew(page)) PageInit(page, 0);
    any = true;
    VmClearBits(page, heap_blk, flags);
  }
  if (!any) ThrowPageError("no heap block of VM_CLEAR maps to this VM page");
}

// VM_TRUNCATE: visibilitymap_prepare_truncate (main data: u32 new heap size in blocks). Clears the
// bits of every heap block at or past the new size that this VM page covers. On the last remaining
// page that is the tail of the map: the bytes after the boundary byte zeroed, the boundary byte
// masked; a new page is initialized first, as vm_readbuf does. A page wholly past the new size
// (PostgreSQL truncates it away; ingest should not store one) becomes an empty VM page, which is
// what PostgreSQL recreates if the map grows again. No LSN change.
void StrataVmTruncate(const RedoRecordView& r, uint8_t* page) {
  RequireVmFork(r);
  RequireMainData(r, kSizeOfVmTruncate, "VM_TRUNCATE");
  const uint64_t nheap = LoadLe32(r.main_data);
  const uint64_t first = uint64_t{r.Target().block_number} * kVmHeapBlocksPerPage;
  if (nheap >= first + kVmHeapBlocksPerPage) return;  // the page keeps all its bits
  if (nheap <= first || PageIsNew(page)) PageInit(page, 0);
  if (nheap <= first) return;
  const uint32_t local = static_cast<uint32_t>(nheap - first);
  const uint32_t trunc_byte = local / kVmHeapBlocksPerByte;
  const uint32_t trunc_offset = (local % kVmHeapBlocksPerByte) * 2;
  uint8_t* map = PageGetContents(page);
  std::memset(map + trunc_byte + 1, 0, kVmMapSize - (trunc_byte + 1));
  map[trunc_byte] = static_cast<uint8_t>(map[trunc_byte] & ((1u << trunc_offset) - 1));
}

}  // namespace pg
}  // namespace strata
