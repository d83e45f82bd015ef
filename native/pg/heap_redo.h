// Redo of heap pages, one block at a time: PostgreSQL 15's heap_redo and heap2_redo
// (REL_15_STABLE src/backend/access/heap/heapam.c, pruneheap.c), the sequence page (seq_redo in
// commands/sequence.c) and Strata's visibility-map records (rmgr 255: visibilitymap.c's clear and
// prepare_truncate). Each function runs only the stored target block's part of its record, in
// PostgreSQL's order, and throws PageError where PostgreSQL would fail.
#ifndef STRATA_PG_HEAP_REDO_H_
#define STRATA_PG_HEAP_REDO_H_

#include <cstdint>

#include "redo_record.h"

namespace strata {
namespace pg {

// Heap (rmgr 10).
void HeapXlogInsert(const RedoRecordView& r, uint8_t* page);     // INSERT, INSERT+INIT
void HeapXlogDelete(const RedoRecordView& r, uint8_t* page);     // DELETE
void HeapXlogUpdate(const RedoRecordView& r, uint8_t* page);     // UPDATE, UPDATE+INIT
void HeapXlogHotUpdate(const RedoRecordView& r, uint8_t* page);  // HOT_UPDATE
void HeapXlogConfirm(const RedoRecordView& r, uint8_t* page);    // HEAP_CONFIRM
void HeapXlogLock(const RedoRecordView& r, uint8_t* page);       // LOCK
void HeapXlogInplace(const RedoRecordView& r, uint8_t* page);    // INPLACE
// Heap2 (rmgr 9).
void HeapXlogPrune(const RedoRecordView& r, uint8_t* page);        // PRUNE (PG15 layout)
void HeapXlogVacuum(const RedoRecordView& r, uint8_t* page);       // VACUUM
void HeapXlogFreezePage(const RedoRecordView& r, uint8_t* page);   // FREEZE_PAGE (PG15 layout)
void HeapXlogVisible(const RedoRecordView& r, uint8_t* page);      // VISIBLE (VM page and heap page)
void HeapXlogMultiInsert(const RedoRecordView& r, uint8_t* page);  // MULTI_INSERT, MULTI_INSERT+INIT
void HeapXlogLockUpdated(const RedoRecordView& r, uint8_t* page);  // LOCK_UPDATED
// Heap TRUNCATE, Heap2 NEW_CID and REWRITE: no page change (they carry no block references).
void HeapXlogNoPageChange(const RedoRecordView& r, uint8_t* page);
// Sequence (rmgr 15) LOG.
void SeqRedo(const RedoRecordView& r, uint8_t* page);
// Strata (rmgr 255): visibility-map bits that heap records change without a VM block reference.
void StrataVmClear(const RedoRecordView& r, uint8_t* page);
void StrataVmTruncate(const RedoRecordView& r, uint8_t* page);

// Visibility map geometry (visibilitymap.c): two bits per heap block in the page's contents.
constexpr uint32_t kVmMapSize = 8192 - 24;                   // MAPSIZE: BLCKSZ - MAXALIGN(page header)
constexpr uint32_t kVmHeapBlocksPerByte = 4;                  // BITS_PER_BYTE / BITS_PER_HEAPBLOCK
constexpr uint32_t kVmHeapBlocksPerPage = kVmMapSize * kVmHeapBlocksPerByte;  // 32672
constexpr uint8_t kVisibilityMapAllVisible = 0x01;
constexpr uint8_t kVisibilityMapAllFrozen = 0x02;
constexpr uint8_t kVisibilityMapValidBits = 0x03;

}  // namespace pg
}  // namespace strata

#endif  // STRATA_PG_HEAP_REDO_H_
