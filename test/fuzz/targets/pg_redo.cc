// libFuzzer target: PostgreSQL redo of one stored record on a page (native/pg/rmgr.cc RedoRecord:
// the stored-record parser, then the heap / heap2 / btree / sequence / XLOG / SLRU / rmgr-255 redo
// functions). Input: [u16 LE record length][record][base page bytes]; the base page is padded
// with zeros (or cut) to 8192 bytes. Seeds are real records from PostgreSQL's WAL with the page
// they were redone on. The record must be redone or refused with StrataError WAL_UNSUPPORTED or
// REDO_FAILED; anything else (another code or exception, a crash, a sanitizer report) is a bug.
#include <cstring>
#include <vector>

#include "errors.h"
#include "format.h"
#include "pg/redo_record.h"
#include "pg/rmgr.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace strata;
  if (size < 2) return 0;
  const size_t want = data[0] | (size_t{data[1]} << 8);
  const size_t len = std::min(want, size - 2);
  std::vector<uint8_t> rec(data + 2, data + 2 + len);  // exactly sized: ASan sees reads past its end
  std::vector<uint8_t> page(kPageSize, 0);
  std::memcpy(page.data(), data + 2 + len, std::min(kPageSize, size - 2 - len));
  // A will_init record is redone on a zero page, as ApplyRecords does. Records the stored-record
  // check refuses go to RedoRecord too: it must refuse them itself (REDO_FAILED).
  if (pg::CheckRedoRecord(rec.data(), rec.size()) == nullptr && pg::StoredRecordWillInit(rec.data())) {
    std::memset(page.data(), 0, kPageSize);
  }
  try {
    pg::RedoRecord(rec.data(), rec.size(), page.data());
  } catch (const StrataError& e) {
    if (e.code() != ErrorCode::kWalUnsupported && e.code() != ErrorCode::kRedoFailed) __builtin_trap();
  }
  return 0;
}
