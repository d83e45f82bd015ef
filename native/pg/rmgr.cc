#include "rmgr.h"

#include <array>
#include <cstdio>
#include <cstring>

#include "../errors.h"
#include "bufpage.h"
#include "checksum.h"
#include "heap_redo.h"
#include "nbtree_redo.h"
#include "pg_format.h"
#include "slru_redo.h"
#include "xlogreader.h"  // FormatLsn

namespace strata {
namespace pg {
namespace {

// ---- names, as pg_waldump prints them (src/backend/access/rmgrdesc/*_identify) ----

constexpr size_t kNumBuiltinRmgrs = 22;  // RM_XLOG_ID .. RM_LOGICALMSG_ID
constexpr uint8_t kRmXactId = 1;
constexpr uint8_t kRmCommitTsId = 18;
constexpr uint8_t kRmReplOriginId = 19;
constexpr uint8_t kRmGenericId = 20;
constexpr uint8_t kRmLogicalMsgId = 21;
constexpr uint8_t kXactOpMask = 0x70;
constexpr uint8_t kFirstCustomRmgrId = 128;

const char* const kRmgrNames[kNumBuiltinRmgrs] = {
    "XLOG", "Transaction", "Storage", "CLOG", "Database", "Tablespace", "MultiXact", "RelMap",
    "Standby", "Heap2", "Heap", "Btree", "Hash", "Gin", "Gist", "Sequence",
    "SPGist", "BRIN", "CommitTs", "ReplicationOrigin", "Generic", "LogicalMessage",
};

// Operation names by (info & 0xF0) >> 4; nullptr where identify() returns NULL.
using OpNames = std::array<const char*, 16>;
const OpNames kOpNames[kNumBuiltinRmgrs] = {
    /* XLOG */ {"CHECKPOINT_SHUTDOWN", "CHECKPOINT_ONLINE", "NOOP", "NEXTOID", "SWITCH", "BACKUP_END",
                "PARAMETER_CHANGE", "RESTORE_POINT", "FPW_CHANGE", "END_OF_RECOVERY", "FPI_FOR_HINT", "FPI",
                nullptr, "OVERWRITE_CONTRECORD", nullptr, nullptr},
    /* Transaction (info & XLOG_XACT_OPMASK) */
    {"COMMIT", "PREPARE", "ABORT", "COMMIT_PREPARED", "ABORT_PREPARED", "ASSIGNMENT", "INVALIDATION", nullptr},
    /* Storage */ {nullptr, "CREATE", "TRUNCATE"},
    /* CLOG */ {"ZEROPAGE", "TRUNCATE"},
    /* Database */ {"CREATE_FILE_COPY", "CREATE_WAL_LOG", "DROP"},
    /* Tablespace */ {"CREATE", "DROP"},
    /* MultiXact */ {"ZERO_OFF_PAGE", "ZERO_MEM_PAGE", "CREATE_ID", "TRUNCATE_ID"},
    /* RelMap */ {"UPDATE"},
    /* Standby */ {"LOCK", "RUNNING_XACTS", "INVALIDATIONS"},
    /* Heap2 */
    {"REWRITE", "PRUNE", "VACUUM", "FREEZE_PAGE", "VISIBLE", "MULTI_INSERT", "LOCK_UPDATED", "NEW_CID", nullptr,
     nullptr, nullptr, nullptr, nullptr, "MULTI_INSERT+INIT", nullptr, nullptr},
    /* Heap */
    {"INSERT", "DELETE", "UPDATE", "TRUNCATE", "HOT_UPDATE", "HEAP_CONFIRM", "LOCK", "INPLACE", "INSERT+INIT",
     nullptr, "UPDATE+INIT", nullptr, "HOT_UPDATE+INIT", nullptr, nullptr, nullptr},
    /* Btree */
    {"INSERT_LEAF", "INSERT_UPPER", "INSERT_META", "SPLIT_L", "SPLIT_R", "INSERT_POST", "DEDUP", "DELETE",
     "UNLINK_PAGE", "UNLINK_PAGE_META", "NEWROOT", "MARK_PAGE_HALFDEAD", "VACUUM", "REUSE_PAGE", "META_CLEANUP",
     nullptr},
    /* Hash */
    {"INIT_META_PAGE", "INIT_BITMAP_PAGE", "INSERT", "ADD_OVFL_PAGE", "SPLIT_ALLOCATE_PAGE", "SPLIT_PAGE",
     "SPLIT_COMPLETE", "MOVE_PAGE_CONTENTS", "SQUEEZE_PAGE", "DELETE", "SPLIT_CLEANUP", "UPDATE_META_PAGE",
     "VACUUM_ONE_PAGE", nullptr, nullptr, nullptr},
    /* Gin */
    {nullptr, "CREATE_PTREE", "INSERT", "SPLIT", "VACUUM_PAGE", "DELETE_PAGE", "UPDATE_META_PAGE",
     "INSERT_LISTPAGE", "DELETE_LISTPAGE", "VACUUM_DATA_LEAF_PAGE"},
    /* Gist */ {"PAGE_UPDATE", "DELETE", "PAGE_REUSE", "PAGE_SPLIT", nullptr, nullptr, "PAGE_DELETE", "ASSIGN_LSN"},
    /* Sequence */ {"LOG"},
    /* SPGist */
    {nullptr, "ADD_LEAF", "MOVE_LEAFS", "ADD_NODE", "SPLIT_TUPLE", "PICKSPLIT", "VACUUM_LEAF", "VACUUM_ROOT",
     "VACUUM_REDIRECT"},
    /* BRIN */
    {"CREATE_INDEX", "INSERT", "UPDATE", "SAMEPAGE_UPDATE", "REVMAP_EXTEND", "DESUMMARIZE", nullptr, nullptr,
     nullptr, "INSERT+INIT", "UPDATE+INIT"},
    /* CommitTs (whole info) */ {"ZEROPAGE", "TRUNCATE"},
    /* ReplicationOrigin (whole info) */ {"SET", "DROP"},
    /* Generic */ {},
    /* LogicalMessage */ {},
};

const OpNames kStrataOpNames = {"VM_CLEAR", "VM_TRUNCATE", "CLOG_SET", "MULTIXACT_OFFSETS", "MULTIXACT_MEMBERS"};

std::string Hex(unsigned v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%x", v);
  return buf;
}

// ---- the dispatch table ----

// XLOG FPI / FPI_FOR_HINT (REL_15_STABLE xlog_redo). Ingest stores a block whose image has
// BKPIMAGE_APPLY as an image record, so a stored PostgreSQL record of these types is a block
// without an applicable image. FPI_FOR_HINT without an image (full_page_writes off) changes
// nothing, as in PostgreSQL. Any other case is an error in PostgreSQL too: an FPI must carry an
// image, and an image without APPLY (logged only for wal_consistency_checking) cannot be
// restored (XLogReadBufferForRedo would not return BLK_RESTORED).
void XlogFpi(const RedoRecordView& r, uint8_t* /*page*/) {
  const BlockRef b = r.Target();
  if (b.has_image()) ThrowPageError("full-page image not marked for replay (BKPIMAGE_APPLY unset)");
  if ((r.info & 0xF0) == 0xB0) ThrowPageError("XLOG_FPI record did not contain a full-page image");
}

struct DispatchTable {
  RedoFn fn[256][16] = {};

  void Set(uint8_t rmid, uint8_t info, RedoFn f) { fn[rmid][info >> 4] = f; }

  DispatchTable() {
    // XLOG (rmgr 0): only the image records reference blocks.
    Set(kRmXlogId, 0xA0, XlogFpi);  // FPI_FOR_HINT
    Set(kRmXlogId, 0xB0, XlogFpi);  // FPI
    // Heap2 (rmgr 9).
    Set(kRmHeap2Id, 0x00, HeapXlogNoPageChange);  // REWRITE: logical-decoding mapping files only
    Set(kRmHeap2Id, 0x10, HeapXlogPrune);
    Set(kRmHeap2Id, 0x20, HeapXlogVacuum);
    Set(kRmHeap2Id, 0x30, HeapXlogFreezePage);
    Set(kRmHeap2Id, 0x40, HeapXlogVisible);
    Set(kRmHeap2Id, 0x50, HeapXlogMultiInsert);
    Set(kRmHeap2Id, 0xD0, HeapXlogMultiInsert);   // MULTI_INSERT+INIT
    Set(kRmHeap2Id, 0x60, HeapXlogLockUpdated);
    Set(kRmHeap2Id, 0x70, HeapXlogNoPageChange);  // NEW_CID: only for logical decoding
    // Heap (rmgr 10).
    Set(kRmHeapId, 0x00, HeapXlogInsert);
    Set(kRmHeapId, 0x80, HeapXlogInsert);  // INSERT+INIT
    Set(kRmHeapId, 0x10, HeapXlogDelete);
    Set(kRmHeapId, 0x20, HeapXlogUpdate);
    Set(kRmHeapId, 0xA0, HeapXlogUpdate);  // UPDATE+INIT
    Set(kRmHeapId, 0x30, HeapXlogNoPageChange);  // TRUNCATE: the Storage records do the work
    Set(kRmHeapId, 0x40, HeapXlogHotUpdate);
    Set(kRmHeapId, 0xC0, HeapXlogHotUpdate);  // HOT_UPDATE+INIT (PostgreSQL never writes it)
    Set(kRmHeapId, 0x50, HeapXlogConfirm);
    Set(kRmHeapId, 0x60, HeapXlogLock);
    Set(kRmHeapId, 0x70, HeapXlogInplace);
    // Btree (rmgr 11): nbtree_redo's BtreeRedo switches on the opcode as btree_redo does, from
    // INSERT_LEAF (0x00) to META_CLEANUP (0xE0); 0xF0 is not a btree opcode.
    for (uint8_t op = 0x00; op <= 0xE0; op += 0x10) Set(kRmBtreeId, op, BtreeRedo);
    // Sequence (rmgr 15).
    Set(kRmSeqId, 0x00, SeqRedo);
    // Strata's own (rmgr 255, docs/POSTGRES.md).
    Set(kRmStrataId, 0x00, StrataVmClear);
    Set(kRmStrataId, 0x10, StrataVmTruncate);
    Set(kRmStrataId, kStrataClogSet, StrataClogSet);
    Set(kRmStrataId, kStrataMultixactOffsets, StrataMultixactOffsets);
    Set(kRmStrataId, kStrataMultixactMembers, StrataMultixactMembers);
  }
};

const DispatchTable& Table() {
  static const DispatchTable table;
  return table;
}

std::string Where(const RedoRecordView& r) {
  return RmgrInfoName(r.rmid, r.info) + " at " + FormatLsn(r.lsn);
}

}  // namespace

std::string RmgrInfoName(uint8_t rmid, uint8_t info) {
  std::string rm;
  const char* op = nullptr;
  if (rmid < kNumBuiltinRmgrs) {
    rm = kRmgrNames[rmid];
    if (rmid == kRmGenericId) {
      op = "Generic";
    } else if (rmid == kRmLogicalMsgId) {
      op = "MESSAGE";
    } else if (rmid == kRmXactId) {
      op = kOpNames[rmid][(info & kXactOpMask) >> 4];
    } else if (rmid == kRmCommitTsId || rmid == kRmReplOriginId) {
      op = (info & 0x0F) == 0 ? kOpNames[rmid][info >> 4] : nullptr;  // these switch on the whole info
    } else {
      op = kOpNames[rmid][info >> 4];
    }
  } else if (rmid == kRmStrataId) {
    rm = "Strata";
    op = kStrataOpNames[info >> 4];
  } else if (rmid >= kFirstCustomRmgrId) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "custom%03u", static_cast<unsigned>(rmid));
    rm = buf;
  } else {
    rm = "UNKNOWN_RMGR_" + std::to_string(rmid);
  }
  return rm + "/" + (op != nullptr ? std::string(op) : "UNKNOWN (" + Hex(info & 0xF0u) + ")");
}

void RedoRecord(const uint8_t* rec, size_t len, uint8_t* page) {
  RedoRecordView r;
  if (const char* err = ParseRedoRecord(rec, len, &r)) {
    Fail(ErrorCode::kRedoFailed, std::string("malformed PostgreSQL record: ") + err);
  }
  const RedoFn fn = Table().fn[r.rmid][r.info >> 4];
  if (fn == nullptr) Fail(ErrorCode::kWalUnsupported, Where(r) + ": Strata cannot redo this record type");
  if (r.truncated) Fail(ErrorCode::kWalUnsupported, Where(r) + ": the record was too large to store, so it cannot be redone");
  const BlockRef target = r.Target();
  try {
    if (target.image_applies()) {
      ThrowPageError("the block has an applicable full-page image; it should have been stored as an image record");
    }
    fn(r, page);
  } catch (const PageError& e) {
    Fail(ErrorCode::kRedoFailed, Where(r) + ", block id " + std::to_string(r.target_id) + " (block " +
                                     std::to_string(target.block_number) + "): " + e.what());
  }
  // PostgreSQL computes pd_checksum when it writes a page out (PageSetChecksumInplace), never for a
  // new one, and never for an SLRU page (it has no page header).
  if (r.checksums() && !PageIsNew(page) && !IsSlruRecord(r.rmid, r.info)) {
    PageSetChecksum(page, PgChecksumPage(page, target.block_number));
  }
}

}  // namespace pg
}  // namespace strata
