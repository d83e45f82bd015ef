#include "walredo.h"

#include <cstring>

#include "format.h"
#include "pg/redo_record.h"
#include "pg/rmgr.h"

namespace strata {

const char* CheckSerializedRecord(const uint8_t* rec, size_t len) {
  if (len == 0) return "empty record";
  switch (rec[0]) {
    case kRecordTagImage:
      return len == 1 + kPageSize ? nullptr : "image record of the wrong length";
    case kRecordTagZero:
      return len == 1 ? nullptr : "zero record of the wrong length";
    case kRecordTagValue:
      return len <= 1 + kPageSize ? nullptr : "value record longer than a page";
    case kRecordTagPg:
      return len <= kMaxRecordSize ? pg::CheckRedoRecord(rec, len) : "PostgreSQL record longer than 128 KiB";
    case kRecordTagPatch: {
      if (len <= kPatchHeaderSize) return "patch record without data";
      const size_t offset = LoadBe16(rec + 1);
      return offset + (len - kPatchHeaderSize) <= kPageSize ? nullptr : "patch outside the page";
    }
    default:
      return "unknown record tag";
  }
}

bool RecordWillInit(const uint8_t* rec) {
  if (rec[0] == kRecordTagPg) return pg::StoredRecordWillInit(rec);
  return rec[0] == kRecordTagImage || rec[0] == kRecordTagZero || rec[0] == kRecordTagValue;
}

const char* ApplyRecords(const RecordView* newest_first, size_t count, uint8_t* page) {
  if (count == 0) return "no records to apply";
  if (!RecordWillInit(newest_first[count - 1].data)) return "the oldest record of the chain does not initialize the page";
  // Oldest first. A page-initializing record starts the page afresh wherever it sits: reading a
  // chain back from its newest record stops at the first one, so this only makes the function
  // total, and the TS twin (lib/core/ts/walredo.ts) does the same (docs/FORMAT.md, "Records").
  for (size_t i = count; i-- > 0;) {
    const RecordView& r = newest_first[i];
    switch (r.data[0]) {
      case kRecordTagImage:
        std::memcpy(page, r.data + 1, kPageSize);
        break;
      case kRecordTagZero:
        std::memset(page, 0, kPageSize);
        break;
      case kRecordTagValue:
        std::memset(page, 0, kPageSize);
        std::memcpy(page, r.data + 1, r.len - 1);
        break;
      case kRecordTagPg:
        // A will_init record is redone on a zero page (PostgreSQL's XLogInitBufferForRedo).
        if (pg::StoredRecordWillInit(r.data)) std::memset(page, 0, kPageSize);
        pg::RedoRecord(r.data, r.len, page);
        break;
      default: {
        const size_t offset = LoadBe16(r.data + 1);
        std::memcpy(page + offset, r.data + kPatchHeaderSize, r.len - kPatchHeaderSize);
      }
    }
  }
  return nullptr;
}

}  // namespace strata
