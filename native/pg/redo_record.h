// The stored PostgreSQL record for one block (record tag 4): a bounds-checked parse view.
// Layout in docs/POSTGRES.md, "Stored record": a 24-byte header, n 24-byte block references, the
// target block's data, the main data. Every length is checked against the value's length before use.
// Also the step every redo function starts with: PostgreSQL's XLogReadBufferForRedo and
// XLogInitBufferForRedo for the one block a stored record is redone on.
#ifndef STRATA_PG_REDO_RECORD_H_
#define STRATA_PG_REDO_RECORD_H_

#include <cstddef>
#include <cstdint>

#include "pg_format.h"

namespace strata {
namespace pg {

constexpr uint8_t kRecordTagPg = 4;
constexpr size_t kStoredHeaderSize = 24;
constexpr size_t kStoredBlockRefSize = 24;
// Storage flags (header byte 3): the record was too large to store; redo refuses it.
constexpr uint8_t kStoredFlagTruncated = 0x01;
constexpr size_t kMaxStoredBlockRefs = kMaxBlockId + 1;

// Cluster flags (byte 1): together PostgreSQL's XLogHintBitIsNeeded().
constexpr uint8_t kClusterDataChecksums = 0x01;
constexpr uint8_t kClusterWalLogHints = 0x02;
constexpr uint8_t kClusterFlagsMask = kClusterDataChecksums | kClusterWalLogHints;

// Block reference flags, `fork_flags & 0xF0` as in the WAL (access/xlogrecord.h).
constexpr uint8_t kBkpBlockForkMask = 0x0F;
constexpr uint8_t kBkpBlockHasImage = 0x10;
constexpr uint8_t kBkpBlockHasData = 0x20;
constexpr uint8_t kBkpBlockWillInit = 0x40;
constexpr uint8_t kBkpBlockSameRel = 0x80;

// bimg_info (PostgreSQL 15 values).
constexpr uint8_t kBkpImageHasHole = 0x01;
constexpr uint8_t kBkpImageApply = 0x02;
constexpr uint8_t kBkpImageCompressPglz = 0x04;
constexpr uint8_t kBkpImageCompressLz4 = 0x08;
constexpr uint8_t kBkpImageCompressZstd = 0x10;
constexpr uint8_t kBkpImageValidBits = 0x1F;

constexpr uint8_t kMaxForkNumber = 3;  // INIT_FORKNUM

// One block reference as stored: the block's tag and flags; data_len is 0 for every block but the target.
struct BlockRef {
  uint8_t id = 0;
  uint8_t fork = 0;
  uint8_t flags = 0;
  uint8_t bimg_info = 0;
  uint32_t spc_oid = 0;
  uint32_t db_oid = 0;
  uint32_t rel_number = 0;
  uint32_t block_number = 0;
  uint16_t data_len = 0;

  bool will_init() const { return (flags & kBkpBlockWillInit) != 0; }
  bool has_image() const { return (flags & kBkpBlockHasImage) != 0; }
  bool image_applies() const { return has_image() && (bimg_info & kBkpImageApply) != 0; }
};

// A parsed, validated stored record. Points into the caller's buffer, which must outlive it.
struct RedoRecordView {
  const uint8_t* rec = nullptr;
  size_t len = 0;
  uint8_t cluster_flags = 0;
  uint8_t target_id = 0;
  uint64_t lsn = 0;  // end LSN of the WAL record
  uint32_t xid = 0;
  uint8_t rmid = 0;
  uint8_t info = 0;
  // The WAL record was too large to store: header and block references only (docs/POSTGRES.md).
  bool truncated = false;
  uint8_t nblocks = 0;
  uint8_t target_index = 0;  // position of the target among the block references
  const uint8_t* block_data = nullptr;  // the target block's data
  size_t block_data_len = 0;
  const uint8_t* main_data = nullptr;
  size_t main_data_len = 0;

  // The i-th block reference (i < nblocks), decoded from the stored bytes.
  BlockRef Block(size_t i) const;
  BlockRef Target() const { return Block(target_index); }
  // The block reference with this block id; false when the record has none.
  bool FindBlock(uint8_t id, BlockRef* out) const;
  bool will_init() const;
  // PostgreSQL's XLogHintBitIsNeeded(): data checksums or wal_log_hints.
  bool hint_bits_logged() const { return (cluster_flags & kClusterFlagsMask) != 0; }
  bool checksums() const { return (cluster_flags & kClusterDataChecksums) != 0; }
};

// Parses a stored tag-4 value. Returns nullptr and fills *view when it is well formed, else what is
// wrong with it (a static string). Checks: tag, reserved bytes and flags, 1..33 block references in
// strictly increasing id order, fork numbers, exactly one reference with the target id, data lengths
// (0 for other blocks; HAS_DATA exactly when the target has data), and that the lengths add up to len.
const char* ParseRedoRecord(const uint8_t* rec, size_t len, RedoRecordView* view);

// ParseRedoRecord without keeping the view: for layer readers validating what they load.
const char* CheckRedoRecord(const uint8_t* rec, size_t len);

// Whether StoredRecordWillInit reads only inside a `len`-byte stored record (its block references).
bool StoredRecordWillInitFits(const uint8_t* rec, size_t len);
// Whether a stored record that CheckRedoRecord accepted is will_init (its target block carries
// BKPBLOCK_WILL_INIT): redo then starts from a zero page and the record ends a reconstruction chain.
bool StoredRecordWillInit(const uint8_t* rec);

// ---- the shared first step of every redo function, for the one block being redone ----

// XLogRedoAction for the one block being redone.
enum class RedoAction { kNeedsRedo, kDone };

// XLogReadBufferForRedo: the page must not be will_init (PostgreSQL PANICs) and must be initialized
// (PostgreSQL treats a new page as missing); kDone when its LSN is already at or past the record's.
RedoAction ReadBufferForRedo(const RedoRecordView& r, const uint8_t* page);
// The same with RBM_ZERO_ON_ERROR (visibility map pages): a new page is accepted.
RedoAction ReadBufferForRedoZeroOnError(const RedoRecordView& r, const uint8_t* page);
// XLogInitBufferForRedo: the target must carry BKPBLOCK_WILL_INIT; the page is zeroed.
void InitBufferForRedo(const RedoRecordView& r, uint8_t* page);

}  // namespace pg
}  // namespace strata

#endif  // STRATA_PG_REDO_RECORD_H_
