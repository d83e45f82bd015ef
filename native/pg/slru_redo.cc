// Redo of Strata's SLRU records (pg_xact and pg_multixact pages); the contract is in slru_redo.h.
#include "slru_redo.h"

#include <string>

#include "bufpage.h"
#include "pg_format.h"

namespace strata {
namespace pg {
namespace {

// SLRU geometry of PostgreSQL 15 with 8 KB pages (clog.c, multixact.c).
constexpr uint32_t kSlruXact = 0;
constexpr uint32_t kSlruMultixactOffsets = 1;
constexpr uint32_t kSlruMultixactMembers = 2;
constexpr uint32_t kClogXactsPerPage = 32768;
constexpr uint32_t kClogXactsPerByte = 4;
constexpr uint32_t kClogBitsPerXact = 2;
constexpr uint8_t kClogXactBitmask = 0x03;
constexpr uint8_t kClogSetList = 0;
constexpr uint8_t kClogSetBitmap = 1;
constexpr uint32_t kClogBitmapBytes = kClogXactsPerPage / 8;  // one bit per transaction of the page
constexpr uint8_t kTransactionStatusCommitted = 1;
constexpr uint8_t kTransactionStatusAborted = 2;
constexpr uint32_t kMultixactOffsetsPerPage = 2048;
constexpr uint32_t kMultixactMembersPerGroup = 4;
constexpr uint32_t kMultixactMemberGroupSize = 20;
constexpr uint32_t kMultixactMemberGroupsPerPage = 409;
constexpr uint32_t kMultixactMembersPerPage = 1636;
constexpr uint32_t kMultixactStatusMax = 5;  // MultiXactStatusUpdate

// Main data headers: CLOG_SET u8 status, u8 form (0 list, 1 bitmap), u16 reserved, u32 count (of
// xids listed, or of bits set); OFFSETS u32 count; MEMBERS u32 first offset, u32 count. Bytes per
// entry: a CLOG xid; an offsets (multi, offset) pair; a member (xid, status).
constexpr size_t kClogSetHeader = 8;
constexpr size_t kOffsetsHeader = 4;
constexpr size_t kMembersHeader = 8;
constexpr size_t kClogSetEntry = 4;
constexpr size_t kOffsetsEntry = 8;
constexpr size_t kMembersEntry = 8;

void RequireSlru(const RedoRecordView& r, uint32_t slru, const char* what) {
  const BlockRef t = r.Target();
  if (t.rel_number != slru || t.spc_oid != 0 || t.db_oid != 0 || t.fork != 0) {
    ThrowPageError(std::string(what) + " record on a block that is not a page of its SLRU");
  }
}

// The entry count of a main data header at count_off, checked against the main data's length.
uint32_t EntryCount(const RedoRecordView& r, size_t header, size_t count_off, size_t entry, const char* what) {
  if (r.main_data_len < header) ThrowPageError(std::string("main data shorter than the ") + what + " header");
  const uint32_t n = LoadLe32(r.main_data + count_off);
  if (n == 0 || r.main_data_len != header + uint64_t{n} * entry) {
    ThrowPageError(std::string(what) + " main data of " + std::to_string(r.main_data_len) + " bytes does not hold " +
                   std::to_string(n) + " entries");
  }
  return n;
}

// TransactionIdSetStatusBit for the transaction at `index` on the page.
void ClogSetStatus(uint8_t* page, uint32_t index, uint8_t status) {
  const uint32_t byteno = index / kClogXactsPerByte;
  const uint32_t bshift = (index % kClogXactsPerByte) * kClogBitsPerXact;
  page[byteno] = static_cast<uint8_t>((page[byteno] & ~(kClogXactBitmask << bshift)) | (status << bshift));
}

}  // namespace

bool IsSlruRecord(uint8_t rmid, uint8_t info) {
  return rmid == kRmStrataId &&
         (info == kStrataClogSet || info == kStrataMultixactOffsets || info == kStrataMultixactMembers);
}

// CLOG_SET: TransactionIdSetTreeStatus's end state. PostgreSQL passes through sub-committed only so
// that a concurrent reader never sees a half-committed tree; redo has no concurrent reader. The xids
// come as a list, or as a bitmap of the page's 32768 transactions (bit i of byte j: xid
// pageno × 32768 + 8j + i) for a tree too large to list in a stored record.
void StrataClogSet(const RedoRecordView& r, uint8_t* page) {
  RequireSlru(r, kSlruXact, "CLOG_SET");
  if (r.main_data_len < kClogSetHeader) ThrowPageError("main data shorter than the CLOG_SET header");
  const uint8_t status = r.main_data[0];
  const uint8_t form = r.main_data[1];
  const uint32_t n = LoadLe32(r.main_data + 4);
  if (status != kTransactionStatusCommitted && status != kTransactionStatusAborted) {
    ThrowPageError("CLOG_SET status " + std::to_string(status) + " is neither committed nor aborted");
  }
  if (r.main_data[2] != 0 || r.main_data[3] != 0) ThrowPageError("CLOG_SET reserved bytes not zero");
  const uint32_t pageno = r.Target().block_number;
  const uint64_t first = uint64_t{pageno} * kClogXactsPerPage;
  if (form == kClogSetList) {
    if (n == 0 || r.main_data_len != kClogSetHeader + uint64_t{n} * kClogSetEntry) {
      ThrowPageError("CLOG_SET main data of " + std::to_string(r.main_data_len) + " bytes does not hold " +
                     std::to_string(n) + " entries");
    }
    for (uint32_t i = 0; i < n; i++) {
      const uint32_t xid = LoadLe32(r.main_data + kClogSetHeader + size_t{i} * kClogSetEntry);
      if (xid / kClogXactsPerPage != pageno) {
        ThrowPageError("xid " + std::to_string(xid) + " is not on pg_xact page " + std::to_string(pageno));
      }
      ClogSetStatus(page, xid % kClogXactsPerPage, status);
    }
  } else if (form == kClogSetBitmap) {
    if (r.main_data_len != kClogSetHeader + kClogBitmapBytes) {
      ThrowPageError("CLOG_SET bitmap of " + std::to_string(r.main_data_len - kClogSetHeader) + " bytes, expected " +
                     std::to_string(kClogBitmapBytes));
    }
    uint32_t set = 0;
    for (uint32_t j = 0; j < kClogBitmapBytes; j++) {
      const uint8_t bits = r.main_data[kClogSetHeader + j];
      for (uint32_t i = 0; i < 8; i++) {
        if ((bits & (1u << i)) == 0) continue;
        ClogSetStatus(page, j * 8 + i, status);
        set++;
      }
    }
    if (set == 0 || set != n) {
      ThrowPageError("CLOG_SET bitmap holds " + std::to_string(set) + " xids, its count says " + std::to_string(n) +
                     " (first xid of the page " + std::to_string(first) + ")");
    }
  } else {
    ThrowPageError("CLOG_SET form " + std::to_string(form) + " is neither a list nor a bitmap");
  }
}

// MULTIXACT_OFFSETS: the multixact's own entry and, as RecordNewMultiXact of PostgreSQL 15.18
// writes it, the next multixact's (where its members will start).
void StrataMultixactOffsets(const RedoRecordView& r, uint8_t* page) {
  RequireSlru(r, kSlruMultixactOffsets, "MULTIXACT_OFFSETS");
  const uint32_t n = EntryCount(r, kOffsetsHeader, 0, kOffsetsEntry, "MULTIXACT_OFFSETS");
  const uint32_t pageno = r.Target().block_number;
  for (uint32_t i = 0; i < n; i++) {
    const uint8_t* at = r.main_data + kOffsetsHeader + size_t{i} * kOffsetsEntry;
    const uint32_t multi = LoadLe32(at);
    if (multi / kMultixactOffsetsPerPage != pageno) {
      ThrowPageError("multixact " + std::to_string(multi) + " is not on offsets page " + std::to_string(pageno));
    }
    StoreLe32(page + size_t{multi % kMultixactOffsetsPerPage} * 4, LoadLe32(at + 4));
  }
}

// MULTIXACT_MEMBERS: consecutive members from a starting offset (wrapping at 2^32), each xid in its
// group's xid slot and its status in the group's flag byte.
void StrataMultixactMembers(const RedoRecordView& r, uint8_t* page) {
  RequireSlru(r, kSlruMultixactMembers, "MULTIXACT_MEMBERS");
  const uint32_t n = EntryCount(r, kMembersHeader, 4, kMembersEntry, "MULTIXACT_MEMBERS");
  const uint32_t first = LoadLe32(r.main_data);
  const uint32_t pageno = r.Target().block_number;
  for (uint32_t i = 0; i < n; i++) {
    const uint8_t* at = r.main_data + kMembersHeader + size_t{i} * kMembersEntry;
    const uint32_t offset = first + i;  // wraps at 2^32, as MultiXactOffset does
    const uint32_t xid = LoadLe32(at);
    const uint32_t status = LoadLe32(at + 4);
    if (offset / kMultixactMembersPerPage != pageno) {
      ThrowPageError("member offset " + std::to_string(offset) + " is not on members page " + std::to_string(pageno));
    }
    if (status > kMultixactStatusMax) ThrowPageError("member status " + std::to_string(status) + " is not a MultiXactStatus");
    const uint32_t group = (offset / kMultixactMembersPerGroup) % kMultixactMemberGroupsPerPage;
    const uint32_t in_group = offset % kMultixactMembersPerGroup;
    const size_t flags_off = size_t{group} * kMultixactMemberGroupSize;
    StoreLe32(page + flags_off + kMultixactMembersPerGroup + size_t{in_group} * 4, xid);
    page[flags_off + in_group] = static_cast<uint8_t>(status);
  }
}

}  // namespace pg
}  // namespace strata
