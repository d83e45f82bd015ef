// PostgreSQL 15 WAL decoder: a stateful stream decoder that turns WAL bytes into the packed
// "Decoded record" entries of docs/POSTGRES.md. The TS twin is lib/core/ts/pg/xlogreader.ts; both
// produce the same bytes and the same errors (codes and messages) for the same input.
//
// Use: construct with the start LSN, Feed() contiguous WAL bytes beginning exactly at that LSN (any
// chunking, down to one byte at a time), Finish() when no more input will come, and Decode() to get
// batches of entries. Decode() only ever consumes what was fed; it never blocks.
//
// Start LSN: the start of a record, or a page boundary. At a page boundary whose page begins with
// the continuation of an earlier record (XLP_FIRST_IS_CONTRECORD), the continuation is skipped, across
// pages if needed, as PostgreSQL's XLogFindNextRecord does. The first record's xl_prev is only
// checked to lie before it; every later one must equal the previous record's start LSN.
//
// Per record: page headers (magic 0xD110, info bits, xlp_pageaddr == the page's LSN, a long header
// at every segment start with xlp_seg_size 16 MB and xlp_xlog_blcksz 8192, the system identifier,
// timelines never decreasing and never above the expected one), continuation records across pages
// and segments (also inside the 24-byte record header; XLP_FIRST_IS_CONTRECORD and xlp_rem_len
// must agree with the record; a page with XLP_FIRST_IS_OVERWRITE_CONTRECORD abandons the record in
// progress and decoding restarts there), xl_tot_len, xl_rmid, xl_prev, CRC-32C (payload, then the
// header bytes before xl_crc), and DecodeXLogRecord's checks of the block and data headers. Block
// images are restored to 8192 bytes (pglz / lz4 / zstd, hole filled with zeros). XLOG_SWITCH ends
// the segment: decoding resumes at the next segment start, as its end LSN says.
//
// End of WAL versus corruption (docs/POSTGRES.md, "End of WAL"):
//  * Input that stops in the middle of a record, a page header or padding means "need more input"
//    (state kNeedMore) until Finish(); after Finish() it is the clean end of valid WAL.
//  * A record header with xl_tot_len == 0, a page whose header is all zeros, and a page whose header
//    carries another position's xlp_pageaddr (a recycled segment) are the clean end of valid WAL.
//  * Any other failure — a record failing its length, xl_rmid, xl_prev or CRC check, an invalid
//    block or data header, an image that does not decompress, a continuation page that disagrees
//    with the record (no XLP_FIRST_IS_CONTRECORD, wrong xlp_rem_len), a page that begins with a
//    continuation when no record is in progress, a page header with a bad magic or info bits — is
//    the clean end only if nothing valid follows it: the decoder looks at the first page boundary at
//    or after the last byte it read of the failing record (for a continuation page that disagrees or
//    a stray continuation, that page itself; for a bad page header, the next page). If
//    the input has a page header there that is valid for that position (magic, info bits, pageaddr),
//    WAL continued past the failure and Decode() throws WAL_CORRUPT naming the failing LSN and the
//    reason; if that header is missing (input finished), zero, stale or invalid, it is the clean end.
//    Nothing after the failure is ever returned.
//  * WAL_UNSUPPORTED: a long page header with another segment or page size, or a first page whose
//    magic is not PostgreSQL 15's. WAL_CORRUPT without look-ahead: a long header naming another
//    system identifier, a timeline that decreases or exceeds the expected one, and a clean end
//    before the caller's end LSN.
// Records decoded before a failure are returned first; the error is thrown by the next Decode()
// (and every one after it).
//
// End LSN (optional): decoding stops with kEnd once the next record would start at or after it;
// a record that starts before it but ends after it is not returned.
#ifndef STRATA_PG_XLOGREADER_H_
#define STRATA_PG_XLOGREADER_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../errors.h"
#include "pg_format.h"

struct ZSTD_DCtx_s;

namespace strata {
namespace pg {

constexpr uint32_t kWalPageSize = 8192;          // XLOG_BLCKSZ
constexpr uint64_t kWalSegmentSize = 16u << 20;  // wal_segment_size, PostgreSQL 15's default
constexpr uint32_t kBlockSize = 8192;            // BLCKSZ: a relation page
constexpr uint16_t kWalPageMagic = 0xD110;       // XLOG_PAGE_MAGIC of PostgreSQL 15
constexpr size_t kShortPageHeaderSize = 24;      // SizeOfXLogShortPHD
constexpr size_t kLongPageHeaderSize = 40;       // SizeOfXLogLongPHD
constexpr size_t kRecordHeaderSize = 24;         // SizeOfXLogRecord

// Decoded-record entry layout (docs/POSTGRES.md, "Decoded record").
constexpr size_t kEntryHeaderSize = 52;
constexpr size_t kEntryBlockSize = 28;
constexpr uint8_t kEntryFlagOrigin = 0x01;
constexpr uint8_t kEntryFlagToplevelXid = 0x02;

struct DecoderOptions {
  uint64_t start_lsn = 0;
  uint64_t end_lsn = 0;    // 0: none
  uint64_t system_id = 0;  // 0: take it from the first long page header
  uint32_t timeline = 0;   // 0: no upper bound on xlp_tli
};

enum class DecodeState : uint8_t {
  kFull = 0,      // the batch is full (max records or the byte budget): call Decode() again
  kNeedMore = 1,  // all input consumed: Feed() more, or Finish()
  kEnd = 2,       // clean end of valid WAL, or the end LSN reached
};

struct DecodeResult {
  uint32_t count = 0;
  uint64_t next_lsn = 0;  // end LSN of the last record returned so far (start LSN before any)
  DecodeState state = DecodeState::kNeedMore;
};

class WalDecoder {
 public:
  // BAD_ARGUMENT when start_lsn cannot start a record (not 8-aligned, or inside a page header).
  explicit WalDecoder(const DecoderOptions& options);
  ~WalDecoder();
  WalDecoder(const WalDecoder&) = delete;
  WalDecoder& operator=(const WalDecoder&) = delete;

  // Appends the next bytes of WAL. BAD_ARGUMENT after Finish().
  void Feed(const uint8_t* data, size_t len);
  // No more input will come: an incomplete record at the end is the clean end of WAL.
  void Finish();
  // Appends up to max_records entries to *out. Throws WAL_CORRUPT / WAL_UNSUPPORTED as described
  // above (deferred to the next call when this one already produced entries).
  DecodeResult Decode(uint32_t max_records, std::vector<uint8_t>* out);

 private:
  enum class Phase : uint8_t { kSkipContinuation, kNextRecord, kInRecord, kLookAhead, kEnded, kFailed };
  enum class Verdict : uint8_t { kNeedMore, kMissing, kValid, kZero, kStale, kInvalid, kFatal };
  enum class Step : uint8_t { kProgress, kNeedMore, kRecord, kStop };

  struct PageHeader {
    uint16_t info = 0;
    uint32_t tli = 0;
    uint32_t rem_len = 0;
    size_t size = 0;
  };

  struct BlockRef {
    uint8_t id = 0;
    uint8_t fork_flags = 0;
    uint16_t data_len = 0;
    uint16_t bimg_len = 0;
    uint16_t hole_offset = 0;
    uint16_t hole_length = 0;
    uint8_t bimg_info = 0;
    uint32_t spc = 0, db = 0, rel = 0, blkno = 0;
  };

  size_t Available() const { return in_.size() - in_head_; }
  const uint8_t* Head() const { return in_.data() + in_head_; }
  void Consume(size_t n);
  // Drops input up to `lsn`; false when the input ran out first.
  bool SkipTo(uint64_t lsn);

  Verdict CheckPageHeader(uint64_t page_lsn, bool full, PageHeader* header, std::string* why);
  void AcceptPageHeader(const PageHeader& header);

  bool PageHeaderBetweenRecords(uint64_t page, PageHeader* h, Step* stop);
  Step StepSkipContinuation();
  Step StepNextRecord();
  Step StepInRecord();
  Step StepLookAhead();
  Step ContinuationPage();

  // Checks xl_tot_len (from its 4 bytes), then the rest of the header; false after Fail().
  bool CheckTotalLength(uint32_t tot_len, uint64_t consumed_to);
  bool CheckRecordHeader(const uint8_t* rec, uint64_t consumed_to);
  // CRC, block/data headers and images of the complete record at `rec` (its last byte just before
  // `end_pos`); appends its entry (kRecord), stops at the end LSN (kStop) or fails (kProgress).
  Step FinishRecord(const uint8_t* rec, uint32_t tot_len, uint64_t end_pos);
  bool ParseBlocks(const uint8_t* rec, uint32_t tot_len, std::string* why);
  bool WriteEntry(const uint8_t* rec, uint32_t tot_len, uint64_t end_lsn, std::string* why);
  const char* RestoreImage(const BlockRef& b, const uint8_t* src, uint8_t* page);

  // A failure at `lsn` to be settled by the page header at `check_page` (see the header comment).
  Step Fail(uint64_t lsn, const std::string& what, const std::string& reason, uint64_t check_page);
  Step EndOfWal();
  Step Fatal(ErrorCode code, const std::string& message);

  DecoderOptions options_;
  std::vector<uint8_t> in_;
  size_t in_head_ = 0;
  uint64_t pos_ = 0;  // LSN of in_[in_head_]
  bool finished_ = false;

  Phase phase_ = Phase::kNextRecord;
  uint64_t skip_to_ = 0;  // kNextRecord: padding (or an XLOG_SWITCH's segment) to drop first
  bool first_page_ = true;
  uint32_t latest_tli_ = 0;
  uint64_t system_id_ = 0;

  // The record being assembled (kInRecord).
  uint64_t rec_start_ = 0;
  uint32_t rec_tot_len_ = 0;
  bool rec_header_checked_ = false;
  std::vector<uint8_t> rec_;

  // xl_prev chaining: the last good record's start; unchecked (only < start) for the first record.
  uint64_t prev_rec_ = 0;
  bool random_access_ = true;
  uint64_t end_rec_ptr_ = 0;  // end LSN of the last record returned

  // kLookAhead
  uint64_t fail_lsn_ = 0;
  uint64_t fail_check_page_ = 0;
  std::string fail_what_;
  std::string fail_reason_;

  // kFailed
  ErrorCode error_code_ = ErrorCode::kWalCorrupt;
  std::string error_message_;

  // Decoding scratch.
  std::vector<uint8_t>* out_ = nullptr;
  std::array<BlockRef, kMaxBlockId + 1> blocks_{};
  size_t nblocks_ = 0;
  uint32_t main_len_ = 0;
  uint32_t toplevel_xid_ = 0;
  uint16_t origin_ = 0;
  uint8_t entry_flags_ = 0;
  size_t payload_offset_ = 0;
  std::array<uint8_t, kBlockSize> image_tmp_{};
  ZSTD_DCtx_s* zstd_ = nullptr;
};

// PostgreSQL's text form of an LSN, "X/Y" in upper-case hex.
std::string FormatLsn(uint64_t lsn);

}  // namespace pg
}  // namespace strata

#endif  // STRATA_PG_XLOGREADER_H_
