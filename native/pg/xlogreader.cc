// PostgreSQL 15 WAL decoder (see xlogreader.h for the contract and docs/POSTGRES.md for the
// formats). The rules follow REL_15_STABLE's xlogreader.c: XLogDecodeNextRecord,
// XLogReaderValidatePageHeader, ValidXLogRecordHeader, ValidXLogRecord, DecodeXLogRecord and
// RestoreBlockImage; the code is Strata's own. Every length read from the WAL is checked against
// the bytes that hold it before use.
#include "xlogreader.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "../codec.h"
#include "crc32c.h"
#include "pglz.h"
#include "zstd.h"

namespace strata {
namespace pg {
namespace {

// xlp_info flags (xlog_internal.h).
constexpr uint16_t kXlpFirstIsContrecord = 0x0001;
constexpr uint16_t kXlpLongHeader = 0x0002;
constexpr uint16_t kXlpFirstIsOverwriteContrecord = 0x0008;
constexpr uint16_t kXlpAllFlags = 0x000F;

// XLogRecord field offsets (xlogrecord.h).
constexpr size_t kXlTotLen = 0;
constexpr size_t kXlXid = 4;
constexpr size_t kXlPrev = 8;
constexpr size_t kXlInfo = 16;
constexpr size_t kXlRmid = 17;
constexpr size_t kXlCrc = 20;

// Resource managers: built-in ids 0..21 (RM_LOGICALMSG_ID) and custom ids 128..255 (rmgr.h).
constexpr uint8_t kRmMaxBuiltinId = 21;
constexpr uint8_t kRmMinCustomId = 128;
constexpr uint8_t kXlogSwitch = 0x40;  // pg_control.h
constexpr uint8_t kXlrRmgrInfoMask = 0xF0;

// Block and data header ids and flags (xlogrecord.h).
constexpr uint8_t kBlockIdDataShort = 255;
constexpr uint8_t kBlockIdDataLong = 254;
constexpr uint8_t kBlockIdOrigin = 253;
constexpr uint8_t kBlockIdToplevelXid = 252;
constexpr uint8_t kBkpBlockForkMask = 0x0F;
constexpr uint8_t kBkpBlockFlagMask = 0xF0;
constexpr uint8_t kBkpBlockHasImage = 0x10;
constexpr uint8_t kBkpBlockHasData = 0x20;
constexpr uint8_t kBkpBlockSameRel = 0x80;
constexpr uint8_t kBkpImageHasHole = 0x01;
constexpr uint8_t kBkpImageCompressPglz = 0x04;
constexpr uint8_t kBkpImageCompressLz4 = 0x08;
constexpr uint8_t kBkpImageCompressZstd = 0x10;
constexpr uint8_t kBkpImageCompressed = kBkpImageCompressPglz | kBkpImageCompressLz4 | kBkpImageCompressZstd;

// PostgreSQL 15 refuses to allocate a record buffer of 1 GB or more (allocate_recordbuf rounds the
// length up to a page first): the longest record its reader accepts.
constexpr uint32_t kMaxRecordLength = 0x3fffe000 - 1;
// Start and end LSNs at or above this are refused: positions stay exact as JS numbers in the TS
// twin, and position arithmetic never wraps here.
constexpr uint64_t kMaxLsn = uint64_t{1} << 52;
// Decode() stops a batch once its entries reach this many bytes (one entry may overshoot it).
constexpr size_t kBatchBytes = 8u << 20;
// A record being assembled reserves at most this much up front (its length is not trusted yet).
constexpr size_t kReserveBytes = 1u << 20;
// Feed() compacts the input buffer once this many consumed bytes sit at its front.
constexpr size_t kCompactBytes = 1u << 20;

inline uint16_t Le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline uint32_t Le32(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}
inline uint64_t Le64(const uint8_t* p) { return uint64_t{Le32(p)} | (uint64_t{Le32(p + 4)} << 32); }
inline void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
inline void Put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void Put64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

inline uint64_t PageUp(uint64_t v) { return (v + kWalPageSize - 1) / kWalPageSize * kWalPageSize; }
inline uint64_t SegmentUp(uint64_t v) { return (v + kWalSegmentSize - 1) / kWalSegmentSize * kWalSegmentSize; }

// The header size PostgreSQL writes for the page at `page_lsn`: long at a segment start.
inline size_t HeaderSizeAt(uint64_t page_lsn) {
  return page_lsn % kWalSegmentSize == 0 ? kLongPageHeaderSize : kShortPageHeaderSize;
}

// Where the next record starts after a record ending at `end`: past the page header when `end` is
// a page boundary.
inline uint64_t NextRecordStart(uint64_t end) { return end % kWalPageSize == 0 ? end + HeaderSizeAt(end) : end; }

inline bool RmgrIdIsValid(uint8_t rmid) { return rmid <= kRmMaxBuiltinId || rmid >= kRmMinCustomId; }

std::string Hex(uint32_t v, int width) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%0*X", width, v);
  return buf;
}

std::string U(uint64_t v) { return std::to_string(v); }

}  // namespace

std::string FormatLsn(uint64_t lsn) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%X/%X", static_cast<unsigned>(lsn >> 32), static_cast<unsigned>(lsn & 0xffffffffu));
  return buf;
}

WalDecoder::WalDecoder(const DecoderOptions& options) : options_(options) {
  const uint64_t start = options.start_lsn;
  if (start >= kMaxLsn || options.end_lsn >= kMaxLsn) BadArgument("WAL start and end LSNs must be below 2^52");
  if (start % kMaxAlign != 0) BadArgument("WAL start LSN " + FormatLsn(start) + " is not 8-byte aligned");
  const uint64_t in_page = start % kWalPageSize;
  if (in_page != 0 && in_page < HeaderSizeAt(start - in_page)) {
    BadArgument("WAL start LSN " + FormatLsn(start) + " lies inside a page header");
  }
  if (options.end_lsn != 0 && options.end_lsn < start) {
    BadArgument("WAL end LSN " + FormatLsn(options.end_lsn) + " is before the start LSN " + FormatLsn(start));
  }
  pos_ = start;
  skip_to_ = start;
  end_rec_ptr_ = start;
  phase_ = in_page == 0 ? Phase::kSkipContinuation : Phase::kNextRecord;
}

WalDecoder::~WalDecoder() { ZSTD_freeDCtx(zstd_); }

void WalDecoder::Feed(const uint8_t* data, size_t len) {
  if (finished_) BadArgument("WAL bytes fed after finish()");
  if (phase_ == Phase::kEnded || phase_ == Phase::kFailed || len == 0) return;
  if (in_head_ == in_.size()) {
    in_.clear();
    in_head_ = 0;
  } else if (in_head_ >= kCompactBytes && in_head_ * 2 >= in_.size()) {
    in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(in_head_));
    in_head_ = 0;
  }
  in_.insert(in_.end(), data, data + len);
}

void WalDecoder::Finish() { finished_ = true; }

void WalDecoder::Consume(size_t n) {
  in_head_ += n;
  pos_ += n;
  if (in_head_ == in_.size()) {
    in_.clear();
    in_head_ = 0;
  }
}

bool WalDecoder::SkipTo(uint64_t lsn) {
  if (pos_ >= lsn) return true;
  const size_t n = static_cast<size_t>(std::min<uint64_t>(Available(), lsn - pos_));
  Consume(n);
  return pos_ == lsn;
}

DecodeResult WalDecoder::Decode(uint32_t max_records, std::vector<uint8_t>* out) {
  if (max_records == 0) BadArgument("maxRecords must be at least 1");
  if (phase_ == Phase::kFailed) ::strata::Fail(error_code_, error_message_);
  out_ = out;
  const size_t batch_start = out->size();
  DecodeResult result;
  result.state = DecodeState::kFull;
  while (result.count < max_records && out->size() - batch_start < kBatchBytes) {
    if ((phase_ == Phase::kNextRecord || phase_ == Phase::kSkipContinuation) && options_.end_lsn != 0 &&
        options_.end_lsn <= NextRecordStart(end_rec_ptr_)) {
      phase_ = Phase::kEnded;
    }
    Step step = Step::kStop;
    switch (phase_) {
      case Phase::kSkipContinuation: step = StepSkipContinuation(); break;
      case Phase::kNextRecord: step = StepNextRecord(); break;
      case Phase::kInRecord: step = StepInRecord(); break;
      case Phase::kLookAhead: step = StepLookAhead(); break;
      case Phase::kEnded:
      case Phase::kFailed: step = Step::kStop; break;
    }
    if (step == Step::kRecord) ++result.count;
    if (step == Step::kNeedMore) {
      result.state = DecodeState::kNeedMore;
      break;
    }
    if (step == Step::kStop) break;
  }
  out_ = nullptr;
  if (phase_ == Phase::kFailed) {
    if (result.count == 0) ::strata::Fail(error_code_, error_message_);
    result.state = DecodeState::kFull;  // the next call reports the error
  } else if (phase_ == Phase::kEnded) {
    result.state = DecodeState::kEnd;
  }
  result.next_lsn = end_rec_ptr_;
  return result;
}

// ---- page headers ----

WalDecoder::Verdict WalDecoder::CheckPageHeader(uint64_t page_lsn, bool full, PageHeader* header, std::string* why) {
  if (Available() < kShortPageHeaderSize) return finished_ ? Verdict::kMissing : Verdict::kNeedMore;
  const uint8_t* p = Head();
  if (std::all_of(p, p + kShortPageHeaderSize, [](uint8_t b) { return b == 0; })) return Verdict::kZero;
  const uint16_t magic = Le16(p);
  const uint16_t info = Le16(p + 2);
  const uint32_t tli = Le32(p + 4);
  const uint64_t pageaddr = Le64(p + 8);
  if (magic != kWalPageMagic) {
    if (full && first_page_ && pageaddr == page_lsn) {
      *why = "page magic " + Hex(magic, 4) + " is not PostgreSQL 15's " + Hex(kWalPageMagic, 4);
      error_code_ = ErrorCode::kWalUnsupported;
      return Verdict::kFatal;
    }
    *why = "invalid magic number " + Hex(magic, 4);
    return Verdict::kInvalid;
  }
  if ((info & ~kXlpAllFlags) != 0) {
    *why = "invalid info bits " + Hex(info, 4);
    return Verdict::kInvalid;
  }
  if (pageaddr != page_lsn) return Verdict::kStale;
  if (!full) return Verdict::kValid;
  const bool long_header = (info & kXlpLongHeader) != 0;
  if (!long_header && page_lsn % kWalSegmentSize == 0) {
    *why = "no long header at a segment start";
    return Verdict::kInvalid;
  }
  if (long_header) {
    if (Available() < kLongPageHeaderSize) return finished_ ? Verdict::kMissing : Verdict::kNeedMore;
    const uint64_t sysid = Le64(p + 24);
    const uint32_t seg_size = Le32(p + 32);
    const uint32_t blcksz = Le32(p + 36);
    if (seg_size != kWalSegmentSize) {
      *why = "WAL segment size " + U(seg_size) + " bytes; only PostgreSQL 15's default, " + U(kWalSegmentSize) +
             ", is supported";
      error_code_ = ErrorCode::kWalUnsupported;
      return Verdict::kFatal;
    }
    if (blcksz != kWalPageSize) {
      *why = "WAL page size " + U(blcksz) + " bytes; only PostgreSQL 15's default, " + U(kWalPageSize) +
             ", is supported";
      error_code_ = ErrorCode::kWalUnsupported;
      return Verdict::kFatal;
    }
    const uint64_t expected = options_.system_id != 0 ? options_.system_id : system_id_;
    if (expected != 0 && sysid != expected) {
      *why = "WAL is from database system " + U(sysid) + ", expected " + U(expected);
      error_code_ = ErrorCode::kWalCorrupt;
      return Verdict::kFatal;
    }
  }
  if (options_.timeline != 0 && tli > options_.timeline) {
    *why = "timeline " + U(tli) + " is above the expected timeline " + U(options_.timeline);
    error_code_ = ErrorCode::kWalCorrupt;
    return Verdict::kFatal;
  }
  if (tli < latest_tli_) {
    *why = "out-of-sequence timeline " + U(tli) + " (after " + U(latest_tli_) + ")";
    error_code_ = ErrorCode::kWalCorrupt;
    return Verdict::kFatal;
  }
  header->info = info;
  header->tli = tli;
  header->rem_len = Le32(p + 16);
  header->size = long_header ? kLongPageHeaderSize : kShortPageHeaderSize;
  if (long_header && system_id_ == 0) system_id_ = Le64(p + 24);
  return Verdict::kValid;
}

void WalDecoder::AcceptPageHeader(const PageHeader& header) {
  first_page_ = false;
  latest_tli_ = header.tli;
  Consume(header.size);
}

// ---- steps ----

// The header of the page at `page` where no record is in progress: true when it is valid; else
// *stop is what the step returns (need more input, the end of WAL, or the failure).
bool WalDecoder::PageHeaderBetweenRecords(uint64_t page, PageHeader* h, Step* stop) {
  std::string why;
  switch (CheckPageHeader(page, true, h, &why)) {
    case Verdict::kNeedMore: *stop = Step::kNeedMore; return false;
    case Verdict::kMissing:
    case Verdict::kZero:
    case Verdict::kStale: *stop = EndOfWal(); return false;
    case Verdict::kInvalid: *stop = Fail(page, "WAL page", why, page + kWalPageSize); return false;
    case Verdict::kFatal: *stop = Fatal(error_code_, "WAL page at " + FormatLsn(page) + ": " + why); return false;
    case Verdict::kValid: break;
  }
  return true;
}

WalDecoder::Step WalDecoder::StepSkipContinuation() {
  if (!SkipTo(skip_to_)) return finished_ ? EndOfWal() : Step::kNeedMore;
  const uint64_t page = pos_;
  PageHeader h;
  Step stop;
  if (!PageHeaderBetweenRecords(page, &h, &stop)) return stop;
  AcceptPageHeader(h);
  if ((h.info & kXlpFirstIsContrecord) == 0) {
    skip_to_ = pos_;
    phase_ = Phase::kNextRecord;
  } else if (MaxAlign(h.rem_len) >= kWalPageSize - h.size) {
    skip_to_ = page + kWalPageSize;  // the continuation goes on past this page
  } else {
    skip_to_ = pos_ + MaxAlign(h.rem_len);
    phase_ = Phase::kNextRecord;
  }
  return Step::kProgress;
}

WalDecoder::Step WalDecoder::StepNextRecord() {
  if (!SkipTo(skip_to_)) return finished_ ? EndOfWal() : Step::kNeedMore;
  if (pos_ % kWalPageSize == 0) {
    const uint64_t page = pos_;
    PageHeader h;
    Step stop;
    if (!PageHeaderBetweenRecords(page, &h, &stop)) return stop;
    if ((h.info & kXlpFirstIsContrecord) != 0) {
      return Fail(page, "WAL page", "page begins with a continuation record but none is in progress", page);
    }
    AcceptPageHeader(h);
    skip_to_ = pos_;
    return Step::kProgress;  // the end-LSN check runs again before the record
  }
  if (Available() < sizeof(uint32_t)) return finished_ ? EndOfWal() : Step::kNeedMore;
  rec_start_ = pos_;
  const uint32_t tot_len = Le32(Head() + kXlTotLen);
  if (tot_len == 0) return EndOfWal();
  if (!CheckTotalLength(tot_len, pos_ + sizeof(uint32_t))) return Step::kProgress;
  const uint64_t page_room = kWalPageSize - pos_ % kWalPageSize;
  if (tot_len <= page_room && tot_len <= Available()) {
    // The whole record is in this page and in the input: decode it in place.
    if (!CheckRecordHeader(Head(), pos_ + kRecordHeaderSize)) return Step::kProgress;
    const Step step = FinishRecord(Head(), tot_len, pos_ + tot_len);
    if (step == Step::kRecord) Consume(tot_len);
    return step;
  }
  phase_ = Phase::kInRecord;
  rec_.clear();
  rec_tot_len_ = tot_len;
  rec_header_checked_ = false;
  return Step::kProgress;
}

WalDecoder::Step WalDecoder::StepInRecord() {
  if (pos_ % kWalPageSize == 0) return ContinuationPage();
  if (Available() == 0) return finished_ ? EndOfWal() : Step::kNeedMore;
  const uint64_t page_room = kWalPageSize - pos_ % kWalPageSize;
  const size_t target = rec_header_checked_ ? rec_tot_len_ : kRecordHeaderSize;
  const size_t n = static_cast<size_t>(std::min<uint64_t>({Available(), page_room, target - rec_.size()}));
  rec_.insert(rec_.end(), Head(), Head() + n);
  Consume(n);
  if (!rec_header_checked_ && rec_.size() == kRecordHeaderSize) {
    if (!CheckRecordHeader(rec_.data(), pos_)) return Step::kProgress;
    rec_header_checked_ = true;
    rec_.reserve(std::min<size_t>(rec_tot_len_, kReserveBytes));
  }
  if (rec_header_checked_ && rec_.size() == rec_tot_len_) return FinishRecord(rec_.data(), rec_tot_len_, pos_);
  return Step::kProgress;
}

WalDecoder::Step WalDecoder::ContinuationPage() {
  const uint64_t page = pos_;
  PageHeader h;
  std::string why;
  switch (CheckPageHeader(page, true, &h, &why)) {
    case Verdict::kNeedMore: return Step::kNeedMore;
    case Verdict::kMissing:
    case Verdict::kZero:
    case Verdict::kStale: return EndOfWal();  // the record's continuation was never written: a torn tail
    case Verdict::kInvalid:
      return Fail(rec_start_, "WAL record", "continuation page " + FormatLsn(page) + ": " + why, page + kWalPageSize);
    case Verdict::kFatal: return Fatal(error_code_, "WAL page at " + FormatLsn(page) + ": " + why);
    case Verdict::kValid: break;
  }
  if ((h.info & kXlpFirstIsOverwriteContrecord) != 0) {
    // PostgreSQL abandoned this record after a crash and wrote new WAL from this page on.
    AcceptPageHeader(h);
    rec_.clear();
    skip_to_ = pos_;
    phase_ = Phase::kNextRecord;
    return Step::kProgress;
  }
  if ((h.info & kXlpFirstIsContrecord) == 0) {
    return Fail(rec_start_, "WAL record", "there is no contrecord flag at " + FormatLsn(page), page);
  }
  const uint64_t got = rec_.size();
  if (h.rem_len == 0 || rec_tot_len_ != h.rem_len + got) {
    return Fail(rec_start_, "WAL record",
                "invalid contrecord length " + U(h.rem_len) + " (expected " + U(rec_tot_len_ - got) + ") at " +
                    FormatLsn(page),
                page);
  }
  AcceptPageHeader(h);
  return Step::kProgress;
}

WalDecoder::Step WalDecoder::StepLookAhead() {
  if (!SkipTo(fail_check_page_)) return finished_ ? EndOfWal() : Step::kNeedMore;
  PageHeader h;
  std::string why;
  switch (CheckPageHeader(fail_check_page_, false, &h, &why)) {
    case Verdict::kNeedMore: return Step::kNeedMore;
    case Verdict::kValid:
      return Fatal(ErrorCode::kWalCorrupt, fail_what_ + " at " + FormatLsn(fail_lsn_) + ": " + fail_reason_ +
                                               "; valid WAL follows at " + FormatLsn(fail_check_page_));
    default: return EndOfWal();
  }
}

// ---- records ----

bool WalDecoder::CheckTotalLength(uint32_t tot_len, uint64_t consumed_to) {
  if (tot_len < kRecordHeaderSize) {
    Fail(rec_start_, "WAL record", "invalid record length: expected at least " + U(kRecordHeaderSize) + ", got " +
                                       U(tot_len),
         PageUp(consumed_to));
    return false;
  }
  if (tot_len > kMaxRecordLength) {
    Fail(rec_start_, "WAL record", "record length " + U(tot_len) + " too long", PageUp(consumed_to));
    return false;
  }
  return true;
}

bool WalDecoder::CheckRecordHeader(const uint8_t* rec, uint64_t consumed_to) {
  const uint8_t rmid = rec[kXlRmid];
  const uint64_t prev = Le64(rec + kXlPrev);
  std::string why;
  if (!RmgrIdIsValid(rmid)) {
    why = "invalid resource manager ID " + U(rmid);
  } else if (random_access_ ? !(prev < rec_start_) : prev != prev_rec_) {
    why = "record with incorrect prev-link " + FormatLsn(prev);
  } else {
    return true;
  }
  Fail(rec_start_, "WAL record", why, PageUp(consumed_to));
  return false;
}

WalDecoder::Step WalDecoder::FinishRecord(const uint8_t* rec, uint32_t tot_len, uint64_t end_pos) {
  uint32_t crc = Crc32cUpdate(kCrc32cInit, rec + kRecordHeaderSize, tot_len - kRecordHeaderSize);
  crc = Crc32cFinish(Crc32cUpdate(crc, rec, kXlCrc));
  if (crc != Le32(rec + kXlCrc)) {
    return Fail(rec_start_, "WAL record", "incorrect resource manager data checksum", PageUp(end_pos));
  }
  std::string why;
  if (!ParseBlocks(rec, tot_len, &why)) return Fail(rec_start_, "WAL record", why, PageUp(end_pos));
  uint64_t end_lsn = MaxAlign(end_pos);
  if (rec[kXlRmid] == kRmXlogId && (rec[kXlInfo] & kXlrRmgrInfoMask) == kXlogSwitch) {
    end_lsn = SegmentUp(end_lsn);  // the rest of the segment is unused
  }
  if (options_.end_lsn != 0 && end_lsn > options_.end_lsn) {
    phase_ = Phase::kEnded;  // the record runs past the requested end
    return Step::kStop;
  }
  if (!WriteEntry(rec, tot_len, end_lsn, &why)) return Fail(rec_start_, "WAL record", why, PageUp(end_pos));
  prev_rec_ = rec_start_;
  random_access_ = false;
  end_rec_ptr_ = end_lsn;
  skip_to_ = end_lsn;
  phase_ = Phase::kNextRecord;
  rec_.clear();
  return Step::kRecord;
}

bool WalDecoder::ParseBlocks(const uint8_t* rec, uint32_t tot_len, std::string* why) {
  size_t off = kRecordHeaderSize;
  uint64_t remaining = tot_len - kRecordHeaderSize;
  uint64_t datatotal = 0;
  nblocks_ = 0;
  main_len_ = 0;
  toplevel_xid_ = 0;
  origin_ = 0;
  entry_flags_ = 0;
  int max_block_id = -1;
  bool have_rel = false;
  uint32_t spc = 0, db = 0, rel = 0;
  // Takes the next n header bytes, or nullptr when the record has fewer left.
  auto take = [&](size_t n) -> const uint8_t* {
    if (remaining < n) return nullptr;
    const uint8_t* p = rec + off;
    off += n;
    remaining -= n;
    return p;
  };
  const std::string short_data = "record with invalid length";
  auto bad = [why](std::string message) {
    *why = std::move(message);
    return false;
  };
  while (remaining > datatotal) {
    const uint8_t* p = take(1);
    if (p == nullptr) return bad(short_data);
    const uint8_t id = *p;
    if (id == kBlockIdDataShort) {
      if ((p = take(1)) == nullptr) return bad(short_data);
      main_len_ = *p;
      datatotal += main_len_;
      break;  // the main data header is always last
    }
    if (id == kBlockIdDataLong) {
      if ((p = take(4)) == nullptr) return bad(short_data);
      main_len_ = Le32(p);
      datatotal += main_len_;
      break;
    }
    if (id == kBlockIdOrigin) {
      if ((p = take(2)) == nullptr) return bad(short_data);
      origin_ = Le16(p);
      entry_flags_ |= kEntryFlagOrigin;
      continue;
    }
    if (id == kBlockIdToplevelXid) {
      if ((p = take(4)) == nullptr) return bad(short_data);
      toplevel_xid_ = Le32(p);
      entry_flags_ |= kEntryFlagToplevelXid;
      continue;
    }
    if (id > kMaxBlockId) return bad("invalid block_id " + U(id));
    if (static_cast<int>(id) <= max_block_id) return bad("out-of-order block_id " + U(id));
    max_block_id = id;
    BlockRef& b = blocks_[nblocks_++];
    b = BlockRef{};
    b.id = id;
    if ((p = take(3)) == nullptr) return bad(short_data);
    b.fork_flags = p[0];
    b.data_len = Le16(p + 1);
    const bool has_data = (b.fork_flags & kBkpBlockHasData) != 0;
    if (has_data && b.data_len == 0) return bad("BKPBLOCK_HAS_DATA set, but no data included");
    if (!has_data && b.data_len != 0) {
      return bad("BKPBLOCK_HAS_DATA not set, but data length is " + U(b.data_len));
    }
    datatotal += b.data_len;
    if ((b.fork_flags & kBkpBlockHasImage) != 0) {
      if ((p = take(5)) == nullptr) return bad(short_data);
      b.bimg_len = Le16(p);
      b.hole_offset = Le16(p + 2);
      b.bimg_info = p[4];
      const bool compressed = (b.bimg_info & kBkpImageCompressed) != 0;
      const bool has_hole = (b.bimg_info & kBkpImageHasHole) != 0;
      if (compressed) {
        if (has_hole) {
          if ((p = take(2)) == nullptr) return bad(short_data);
          b.hole_length = Le16(p);
        }
      } else {
        b.hole_length = static_cast<uint16_t>(kBlockSize - b.bimg_len);  // PostgreSQL's uint16 arithmetic
      }
      datatotal += b.bimg_len;
      if (has_hole && (b.hole_offset == 0 || b.hole_length == 0 || b.bimg_len == kBlockSize)) {
        return bad("BKPIMAGE_HAS_HOLE set, but hole offset " + U(b.hole_offset) + " length " + U(b.hole_length) +
                   " block image length " + U(b.bimg_len));
      }
      if (!has_hole && (b.hole_offset != 0 || b.hole_length != 0)) {
        return bad("BKPIMAGE_HAS_HOLE not set, but hole offset " + U(b.hole_offset) + " length " + U(b.hole_length));
      }
      if (compressed && b.bimg_len == kBlockSize) {
        return bad("BKPIMAGE_COMPRESSED set, but block image length " + U(b.bimg_len));
      }
      if (!has_hole && !compressed && b.bimg_len != kBlockSize) {
        return bad("neither BKPIMAGE_HAS_HOLE nor BKPIMAGE_COMPRESSED set, but block image length is " +
                   U(b.bimg_len));
      }
      if (uint32_t{b.hole_offset} + b.hole_length > kBlockSize) {
        // PostgreSQL would write past its page here; Strata refuses the record.
        return bad("hole offset " + U(b.hole_offset) + " length " + U(b.hole_length) + " runs past the page");
      }
    }
    if ((b.fork_flags & kBkpBlockSameRel) == 0) {
      if ((p = take(12)) == nullptr) return bad(short_data);
      spc = Le32(p);
      db = Le32(p + 4);
      rel = Le32(p + 8);
      have_rel = true;
    } else if (!have_rel) {
      return bad("BKPBLOCK_SAME_REL set but no previous rel");
    }
    b.spc = spc;
    b.db = db;
    b.rel = rel;
    if ((p = take(4)) == nullptr) return bad(short_data);
    b.blkno = Le32(p);
  }
  if (remaining != datatotal) return bad(short_data);
  payload_offset_ = off;
  return true;
}

bool WalDecoder::WriteEntry(const uint8_t* rec, uint32_t tot_len, uint64_t end_lsn, std::string* why) {
  uint64_t size = kEntryHeaderSize + kEntryBlockSize * nblocks_ + main_len_;
  for (size_t i = 0; i < nblocks_; ++i) {
    size += blocks_[i].data_len + (((blocks_[i].fork_flags & kBkpBlockHasImage) != 0) ? kBlockSize : 0);
  }
  std::vector<uint8_t>& out = *out_;
  const size_t base = out.size();
  out.resize(base + size);
  uint8_t* e = out.data() + base;
  Put32(e, static_cast<uint32_t>(size));
  Put64(e + 4, rec_start_);
  Put64(e + 12, end_lsn);
  Put64(e + 20, Le64(rec + kXlPrev));
  Put32(e + 28, Le32(rec + kXlXid));
  Put32(e + 32, tot_len);
  e[36] = rec[kXlRmid];
  e[37] = rec[kXlInfo];
  e[38] = static_cast<uint8_t>(nblocks_);
  e[39] = entry_flags_;
  Put32(e + 40, toplevel_xid_);
  Put16(e + 44, origin_);
  Put16(e + 46, 0);
  Put32(e + 48, main_len_);
  uint8_t* d = e + kEntryHeaderSize;
  for (size_t i = 0; i < nblocks_; ++i, d += kEntryBlockSize) {
    const BlockRef& b = blocks_[i];
    const bool has_image = (b.fork_flags & kBkpBlockHasImage) != 0;
    d[0] = b.id;
    d[1] = b.fork_flags & kBkpBlockForkMask;
    d[2] = b.fork_flags & kBkpBlockFlagMask;
    d[3] = has_image ? b.bimg_info : 0;
    Put32(d + 4, b.spc);
    Put32(d + 8, b.db);
    Put32(d + 12, b.rel);
    Put32(d + 16, b.blkno);
    Put16(d + 20, b.data_len);
    Put16(d + 22, has_image ? static_cast<uint16_t>(kBlockSize) : 0);
    Put16(d + 24, has_image ? b.hole_offset : 0);
    Put16(d + 26, has_image ? b.hole_length : 0);
  }
  const uint8_t* src = rec + payload_offset_;
  for (size_t i = 0; i < nblocks_; ++i) {
    const BlockRef& b = blocks_[i];
    if ((b.fork_flags & kBkpBlockHasImage) != 0) {
      if (const char* method = RestoreImage(b, src, d)) {
        out.resize(base);
        *why = "block " + U(b.id) + " image: could not decompress (" + method + ")";
        return false;
      }
      src += b.bimg_len;
      d += kBlockSize;
    }
    std::memcpy(d, src, b.data_len);
    src += b.data_len;
    d += b.data_len;
  }
  std::memcpy(d, src, main_len_);
  return true;
}

// Restores one block image into `page` (8192 bytes); returns nullptr, or the compression method
// whose data did not decompress to exactly the expected length.
const char* WalDecoder::RestoreImage(const BlockRef& b, const uint8_t* src, uint8_t* page) {
  const size_t raw_len = kBlockSize - b.hole_length;
  const uint8_t* data = src;
  if ((b.bimg_info & kBkpImageCompressed) != 0) {
    uint8_t* tmp = image_tmp_.data();
    if ((b.bimg_info & kBkpImageCompressPglz) != 0) {
      if (PglzDecompress(src, b.bimg_len, tmp, raw_len) != nullptr) return "pglz";
    } else if ((b.bimg_info & kBkpImageCompressLz4) != 0) {
      if (Lz4DecodeBlock(src, b.bimg_len, tmp, raw_len) != nullptr) return "lz4";
    } else {
      if (zstd_ == nullptr && (zstd_ = ZSTD_createDCtx()) == nullptr) throw std::bad_alloc();
      // One frame exactly, declaring the expected size, as PostgreSQL's ZSTD_compress writes it.
      if (ZSTD_getFrameContentSize(src, b.bimg_len) != raw_len || ZSTD_findFrameCompressedSize(src, b.bimg_len) != b.bimg_len) {
        return "zstd";
      }
      const size_t got = ZSTD_decompressDCtx(zstd_, tmp, raw_len, src, b.bimg_len);
      if (ZSTD_isError(got) || got != raw_len) return "zstd";
    }
    data = tmp;
  }
  if (b.hole_length == 0) {
    std::memcpy(page, data, kBlockSize);
  } else {
    std::memcpy(page, data, b.hole_offset);
    std::memset(page + b.hole_offset, 0, b.hole_length);
    std::memcpy(page + b.hole_offset + b.hole_length, data + b.hole_offset, kBlockSize - b.hole_offset - b.hole_length);
  }
  return nullptr;
}

// ---- outcomes ----

WalDecoder::Step WalDecoder::Fail(uint64_t lsn, const std::string& what, const std::string& reason, uint64_t check_page) {
  phase_ = Phase::kLookAhead;
  fail_lsn_ = lsn;
  fail_what_ = what;
  fail_reason_ = reason;
  fail_check_page_ = check_page;
  rec_.clear();
  return Step::kProgress;
}

WalDecoder::Step WalDecoder::EndOfWal() {
  phase_ = Phase::kEnded;
  rec_.clear();
  const uint64_t reached = NextRecordStart(end_rec_ptr_);
  if (options_.end_lsn != 0 && options_.end_lsn > reached) {
    return Fatal(ErrorCode::kWalCorrupt, "WAL ends at " + FormatLsn(end_rec_ptr_) + ", before the requested end LSN " +
                                             FormatLsn(options_.end_lsn));
  }
  return Step::kStop;
}

WalDecoder::Step WalDecoder::Fatal(ErrorCode code, const std::string& message) {
  phase_ = Phase::kFailed;
  error_code_ = code;
  error_message_ = message;
  in_.clear();
  in_head_ = 0;
  rec_.clear();
  return Step::kStop;
}

}  // namespace pg
}  // namespace strata
