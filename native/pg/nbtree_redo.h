// Redo of PostgreSQL 15 B-tree records (rmgr 11, REL_15_STABLE src/backend/access/nbtree/nbtxlog.c)
// one block at a time: BtreeRedo runs only the stored target block's part of btree_redo, in
// PostgreSQL's order, on that block's previous version (or zeros when it is will_init). Byte layouts
// from PostgreSQL 15's access/nbtree.h and access/nbtxlog.h (x86-64, little-endian); the page
// primitives are bufpage.h's. Impossible states (a record that does not fit the page, a block id
// the record type never touches, an assertion PostgreSQL makes) throw PageError, which the caller
// reports as REDO_FAILED naming the record and LSN.
#ifndef STRATA_PG_NBTREE_REDO_H_
#define STRATA_PG_NBTREE_REDO_H_

#include <cstddef>
#include <cstdint>

#include "pg_format.h"
#include "redo_record.h"

namespace strata {
namespace pg {

// xl_info & 0xF0 of btree records (access/nbtxlog.h).
constexpr uint8_t kXlogBtreeInsertLeaf = 0x00;
constexpr uint8_t kXlogBtreeInsertUpper = 0x10;
constexpr uint8_t kXlogBtreeInsertMeta = 0x20;
constexpr uint8_t kXlogBtreeSplitL = 0x30;
constexpr uint8_t kXlogBtreeSplitR = 0x40;
constexpr uint8_t kXlogBtreeInsertPost = 0x50;
constexpr uint8_t kXlogBtreeDedup = 0x60;
constexpr uint8_t kXlogBtreeDelete = 0x70;
constexpr uint8_t kXlogBtreeUnlinkPage = 0x80;
constexpr uint8_t kXlogBtreeUnlinkPageMeta = 0x90;
constexpr uint8_t kXlogBtreeNewroot = 0xA0;
constexpr uint8_t kXlogBtreeMarkPageHalfdead = 0xB0;
constexpr uint8_t kXlogBtreeVacuum = 0xC0;
constexpr uint8_t kXlogBtreeReusePage = 0xD0;
constexpr uint8_t kXlogBtreeMetaCleanup = 0xE0;

// BTPageOpaqueData, the 16-byte special space of every btree page: u32 btpo_prev, u32 btpo_next,
// u32 btpo_level, u16 btpo_flags, u16 btpo_cycleid.
constexpr size_t kBtPageOpaqueSize = 16;
namespace btpo_off {
constexpr size_t kPrev = 0;
constexpr size_t kNext = 4;
constexpr size_t kLevel = 8;
constexpr size_t kFlags = 12;
constexpr size_t kCycleId = 14;
}  // namespace btpo_off

// btpo_flags bits.
constexpr uint16_t kBtpLeaf = 1 << 0;
constexpr uint16_t kBtpRoot = 1 << 1;
constexpr uint16_t kBtpDeleted = 1 << 2;
constexpr uint16_t kBtpMeta = 1 << 3;
constexpr uint16_t kBtpHalfDead = 1 << 4;
constexpr uint16_t kBtpSplitEnd = 1 << 5;
constexpr uint16_t kBtpHasGarbage = 1 << 6;
constexpr uint16_t kBtpIncompleteSplit = 1 << 7;
constexpr uint16_t kBtpHasFullXid = 1 << 8;

// P_NONE: no sibling (block 0 is the metapage, never a sibling).
constexpr uint32_t kPNone = 0;
constexpr uint32_t kBtreeMetapage = 0;
constexpr uint32_t kBtreeMagic = 0x053162;
constexpr uint32_t kBtreeNovacVersion = 3;
constexpr uint32_t kBtreeVersion = 4;

// BTMetaPageData at PageGetContents (page + 24): field offsets from the page start, 48 bytes.
namespace btm_off {
constexpr size_t kMagic = 24;
constexpr size_t kVersion = 28;
constexpr size_t kRoot = 32;
constexpr size_t kLevel = 36;
constexpr size_t kFastRoot = 40;
constexpr size_t kFastLevel = 44;
constexpr size_t kLastCleanupNumDelpages = 48;
constexpr size_t kLastCleanupNumHeapTuples = 56;  // float8, after 4 bytes of padding
constexpr size_t kAllEqualImage = 64;             // bool
constexpr size_t kEnd = 72;                        // pd_lower of a metapage
}  // namespace btm_off

// Redoes the target block's part of a btree record (btree_redo's switch) on `page` and sets pd_lsn
// where PostgreSQL does. Throws PageError when the record cannot be applied to this page.
void BtreeRedo(const RedoRecordView& r, uint8_t* page);

}  // namespace pg
}  // namespace strata

#endif  // STRATA_PG_NBTREE_REDO_H_
