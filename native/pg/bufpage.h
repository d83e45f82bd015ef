// PostgreSQL 15's page primitives (src/backend/storage/page/bufpage.c, storage/bufpage.h,
// storage/itemid.h), byte-exact: the standard page header, line pointers, and the functions redo
// uses to add, remove and compact items. Pages are 8192-byte buffers in PostgreSQL's little-endian
// layout. Where PostgreSQL would ereport(ERROR/PANIC) on a corrupt page these throw PageError (the
// redo layer turns it into REDO_FAILED naming the record); where PostgreSQL would read or write past
// the page these check first and throw instead.
#ifndef STRATA_PG_BUFPAGE_H_
#define STRATA_PG_BUFPAGE_H_

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "../errors.h"

#include "pg_format.h"

namespace strata {
namespace pg {

// A page (or a record applied to it) is not what PostgreSQL's code requires.
// A page that contradicts what an operation needs: REDO_FAILED when it reaches the caller.
class PageError : public StrataError {
 public:
  explicit PageError(const std::string& message) : StrataError(ErrorCode::kRedoFailed, message) {}
};

[[noreturn]] inline void ThrowPageError(const std::string& message) { throw PageError(message); }

// PageHeaderData field offsets.
namespace page_off {
constexpr size_t kLsn = 0;              // PageXLogRecPtr: u32 xlogid (high), u32 xrecoff (low)
constexpr size_t kChecksum = 8;         // u16
constexpr size_t kFlags = 10;           // u16
constexpr size_t kLower = 12;           // u16
constexpr size_t kUpper = 14;           // u16
constexpr size_t kSpecial = 16;         // u16
constexpr size_t kPageSizeVersion = 18; // u16
constexpr size_t kPruneXid = 20;        // u32
}  // namespace page_off

constexpr size_t kSizeOfPageHeaderData = 24;
constexpr size_t kItemIdSize = 4;
constexpr uint16_t kPgPageLayoutVersion = 4;

constexpr uint16_t kPdHasFreeLines = 0x0001;
constexpr uint16_t kPdPageFull = 0x0002;
constexpr uint16_t kPdAllVisible = 0x0004;

// lp_flags values.
constexpr uint8_t kLpUnused = 0;
constexpr uint8_t kLpNormal = 1;
constexpr uint8_t kLpRedirect = 2;
constexpr uint8_t kLpDead = 3;

constexpr uint16_t kInvalidOffsetNumber = 0;
constexpr uint16_t kFirstOffsetNumber = 1;
constexpr uint16_t kMaxOffsetNumber = kBlckSz / kItemIdSize;  // 2048
// Most line pointers a page can hold: (8192 - 24) / 4.
constexpr int kMaxLinePointers = static_cast<int>((kBlckSz - kSizeOfPageHeaderData) / kItemIdSize);

constexpr size_t kSizeofHeapTupleHeader = 23;
// MaxHeapTuplesPerPage = (8192 - 24) / (MAXALIGN(23) + 4) = 291.
constexpr int kMaxHeapTuplesPerPage =
    static_cast<int>((kBlckSz - kSizeOfPageHeaderData) / (MaxAlign(kSizeofHeapTupleHeader) + kItemIdSize));
// MaxHeapTupleSize = 8192 - MAXALIGN(24 + 4) = 8160.
constexpr size_t kMaxHeapTupleSize = kBlckSz - MaxAlign(kSizeOfPageHeaderData + kItemIdSize);

// PageAddItemExtended flags.
constexpr int kPaiOverwrite = 1 << 0;
constexpr int kPaiIsHeap = 1 << 1;

// ---- header access ----
inline uint64_t PageGetLsn(const uint8_t* page) {
  return (uint64_t{LoadLe32(page + page_off::kLsn)} << 32) | LoadLe32(page + page_off::kLsn + 4);
}
inline void PageSetLsn(uint8_t* page, uint64_t lsn) {
  StoreLe32(page + page_off::kLsn, static_cast<uint32_t>(lsn >> 32));
  StoreLe32(page + page_off::kLsn + 4, static_cast<uint32_t>(lsn));
}
inline uint16_t PageGetChecksum(const uint8_t* page) { return LoadLe16(page + page_off::kChecksum); }
inline void PageSetChecksum(uint8_t* page, uint16_t v) { StoreLe16(page + page_off::kChecksum, v); }
inline uint16_t PageGetFlags(const uint8_t* page) { return LoadLe16(page + page_off::kFlags); }
inline void PageSetFlags(uint8_t* page, uint16_t v) { StoreLe16(page + page_off::kFlags, v); }
inline uint16_t PageGetLower(const uint8_t* page) { return LoadLe16(page + page_off::kLower); }
inline void PageSetLower(uint8_t* page, uint16_t v) { StoreLe16(page + page_off::kLower, v); }
inline uint16_t PageGetUpper(const uint8_t* page) { return LoadLe16(page + page_off::kUpper); }
inline void PageSetUpper(uint8_t* page, uint16_t v) { StoreLe16(page + page_off::kUpper, v); }
inline uint16_t PageGetSpecial(const uint8_t* page) { return LoadLe16(page + page_off::kSpecial); }
inline uint16_t PageGetPageSizeVersion(const uint8_t* page) { return LoadLe16(page + page_off::kPageSizeVersion); }
inline uint32_t PageGetPruneXid(const uint8_t* page) { return LoadLe32(page + page_off::kPruneXid); }
inline void PageSetPruneXid(uint8_t* page, uint32_t xid) { StoreLe32(page + page_off::kPruneXid, xid); }

inline bool PageIsNew(const uint8_t* page) { return PageGetUpper(page) == 0; }
// The layout checks of PostgreSQL's PageIsVerifiedExtended (bufpage.c) for an initialized page:
// pd_lower <= pd_upper <= pd_special <= BLCKSZ, pd_special MAXALIGNed. Redo reads line pointers up
// to pd_lower and tuples from pd_upper, so a page failing this would be read outside its 8192 bytes.
inline bool PageHeaderIsValid(const uint8_t* page) {
  const size_t lower = PageGetLower(page), upper = PageGetUpper(page), special = PageGetSpecial(page);
  return lower <= upper && upper <= special && special <= kBlckSz && special == MaxAlign(special);
}
inline bool PageIsEmpty(const uint8_t* page) { return PageGetLower(page) <= kSizeOfPageHeaderData; }
inline int PageGetMaxOffsetNumber(const uint8_t* page) {
  const uint16_t lower = PageGetLower(page);
  return lower <= kSizeOfPageHeaderData ? 0 : static_cast<int>((lower - kSizeOfPageHeaderData) / kItemIdSize);
}
inline bool PageHasFreeLinePointers(const uint8_t* page) { return (PageGetFlags(page) & kPdHasFreeLines) != 0; }
inline void PageSetHasFreeLinePointers(uint8_t* page) { PageSetFlags(page, PageGetFlags(page) | kPdHasFreeLines); }
inline void PageClearHasFreeLinePointers(uint8_t* page) {
  PageSetFlags(page, static_cast<uint16_t>(PageGetFlags(page) & ~kPdHasFreeLines));
}
inline bool PageIsAllVisible(const uint8_t* page) { return (PageGetFlags(page) & kPdAllVisible) != 0; }
inline void PageSetAllVisible(uint8_t* page) { PageSetFlags(page, PageGetFlags(page) | kPdAllVisible); }
inline void PageClearAllVisible(uint8_t* page) {
  PageSetFlags(page, static_cast<uint16_t>(PageGetFlags(page) & ~kPdAllVisible));
}
// PageGetContents: the first MAXALIGNed byte after the header (the visibility map's bitmap).
inline uint8_t* PageGetContents(uint8_t* page) { return page + MaxAlign(kSizeOfPageHeaderData); }

// TransactionIdPrecedes: unsigned comparison when either id is special, else modulo 2^32.
inline bool TransactionIdPrecedes(uint32_t id1, uint32_t id2) {
  if (id1 < kFirstNormalTransactionId || id2 < kFirstNormalTransactionId) return id1 < id2;
  return static_cast<int32_t>(id1 - id2) < 0;
}
// PageSetPrunable: keep the oldest xid that may make something on the page prunable.
inline void PageSetPrunable(uint8_t* page, uint32_t xid) {
  const uint32_t cur = PageGetPruneXid(page);
  if (cur == kInvalidTransactionId || TransactionIdPrecedes(xid, cur)) PageSetPruneXid(page, xid);
}

// ---- line pointers (ItemIdData: lp_off:15, lp_flags:2, lp_len:15 in one little-endian u32) ----
// offnum is 1-based; callers check offnum <= PageGetMaxOffsetNumber (or the slot at pd_lower).
inline size_t ItemIdPos(int offnum) { return kSizeOfPageHeaderData + static_cast<size_t>(offnum - 1) * kItemIdSize; }
inline uint32_t ItemIdRaw(const uint8_t* page, int offnum) { return LoadLe32(page + ItemIdPos(offnum)); }
inline void ItemIdSetRaw(uint8_t* page, int offnum, uint32_t v) { StoreLe32(page + ItemIdPos(offnum), v); }
inline uint32_t MakeItemId(uint32_t off, uint32_t flags, uint32_t len) {
  return (off & 0x7FFF) | ((flags & 3) << 15) | ((len & 0x7FFF) << 17);
}
inline uint16_t ItemIdGetOffset(const uint8_t* page, int offnum) { return ItemIdRaw(page, offnum) & 0x7FFF; }
inline uint8_t ItemIdGetFlags(const uint8_t* page, int offnum) { return (ItemIdRaw(page, offnum) >> 15) & 3; }
inline uint16_t ItemIdGetLength(const uint8_t* page, int offnum) { return ItemIdRaw(page, offnum) >> 17; }
inline bool ItemIdIsUsed(const uint8_t* page, int offnum) { return ItemIdGetFlags(page, offnum) != kLpUnused; }
inline bool ItemIdIsNormal(const uint8_t* page, int offnum) { return ItemIdGetFlags(page, offnum) == kLpNormal; }
inline bool ItemIdIsDead(const uint8_t* page, int offnum) { return ItemIdGetFlags(page, offnum) == kLpDead; }
inline bool ItemIdHasStorage(const uint8_t* page, int offnum) { return ItemIdGetLength(page, offnum) != 0; }
// lp_off alone, keeping flags and length (the bit-field store `lp->lp_off = v`, modulo 2^15).
inline void ItemIdSetOffset(uint8_t* page, int offnum, uint32_t off) {
  ItemIdSetRaw(page, offnum, (ItemIdRaw(page, offnum) & ~uint32_t{0x7FFF}) | (off & 0x7FFF));
}
inline void ItemIdSetUnused(uint8_t* page, int offnum) { ItemIdSetRaw(page, offnum, 0); }
inline void ItemIdSetNormal(uint8_t* page, int offnum, uint32_t off, uint32_t len) {
  ItemIdSetRaw(page, offnum, MakeItemId(off, kLpNormal, len));
}
inline void ItemIdSetRedirect(uint8_t* page, int offnum, uint32_t link) {
  ItemIdSetRaw(page, offnum, MakeItemId(link, kLpRedirect, 0));
}
inline void ItemIdSetDead(uint8_t* page, int offnum) { ItemIdSetRaw(page, offnum, MakeItemId(0, kLpDead, 0)); }

// ---- bufpage.c ----
// PageInit: zeroes the page and sets lower, upper, special and the size/version word.
void PageInit(uint8_t* page, size_t special_size);
// PageAddItemExtended: places `item` at `offnum` (or the first free slot when offnum is not a
// valid offset number) as PostgreSQL does; returns the offset used, or kInvalidOffsetNumber when
// PostgreSQL would refuse (no room, offset too large, overwriting a used slot, too many heap items).
uint16_t PageAddItemExtended(uint8_t* page, const uint8_t* item, size_t size, int offnum, int flags);
inline uint16_t PageAddItem(uint8_t* page, const uint8_t* item, size_t size, int offnum, bool overwrite, bool is_heap) {
  return PageAddItemExtended(page, item, size, offnum, (overwrite ? kPaiOverwrite : 0) | (is_heap ? kPaiIsHeap : 0));
}
// PageGetTempPageCopySpecial into `temp`: an empty page with this page's special space copied.
void PageGetTempPageCopySpecial(const uint8_t* page, uint8_t* temp);
// Heap pages after pruning: unused line pointers zeroed, tuples repacked from pd_special down in
// their existing order (compactify_tuples, presorted fast path included), trailing unused line
// pointers truncated, PD_HAS_FREE_LINES set or cleared.
void PageRepairFragmentation(uint8_t* page);
void PageTruncateLinePointerArray(uint8_t* page);
size_t PageGetFreeSpace(const uint8_t* page);
size_t PageGetFreeSpaceForMultipleTuples(const uint8_t* page, int ntups);
size_t PageGetExactFreeSpace(const uint8_t* page);
size_t PageGetHeapFreeSpace(const uint8_t* page);
// Index pages: remove items and close the gaps (line pointers are compacted out).
void PageIndexTupleDelete(uint8_t* page, int offnum);
// itemnos must be in increasing order, as PostgreSQL requires.
void PageIndexMultiDelete(uint8_t* page, const uint16_t* itemnos, int nitems);
void PageIndexTupleDeleteNoCompact(uint8_t* page, int offnum);
// Replaces the item at offnum, shifting other items' data; false when it does not fit.
bool PageIndexTupleOverwrite(uint8_t* page, int offnum, const uint8_t* item, size_t size);

}  // namespace pg
}  // namespace strata

#endif  // STRATA_PG_BUFPAGE_H_
