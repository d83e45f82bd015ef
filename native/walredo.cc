#include "walredo.h"

#include <cstring>

#include "format.h"

namespace strata {

const char* CheckSerializedRecord(const uint8_t* rec, size_t len) {
  if (len == 0) return "empty record";
  switch (rec[0]) {
    case kRecordTagImage:
      return len == 1 + kPageSize ? nullptr : "image record of the wrong length";
    case kRecordTagZero:
      return len == 1 ? nullptr : "zero record of the wrong length";
    case kRecordTagPatch: {
      if (len <= kPatchHeaderSize) return "patch record without data";
      const size_t offset = LoadBe16(rec + 1);
      return offset + (len - kPatchHeaderSize) <= kPageSize ? nullptr : "patch outside the page";
    }
    default:
      return "unknown record tag";
  }
}

bool RecordWillInit(const uint8_t* rec) { return rec[0] == kRecordTagImage || rec[0] == kRecordTagZero; }

const char* ApplyRecords(const RecordView* newest_first, size_t count, uint8_t* page) {
  if (count == 0) return "no records to apply";
  const RecordView& base = newest_first[count - 1];
  if (base.data[0] == kRecordTagImage) {
    std::memcpy(page, base.data + 1, kPageSize);
  } else if (base.data[0] == kRecordTagZero) {
    std::memset(page, 0, kPageSize);
  } else {
    return "the oldest record of the chain does not initialize the page";
  }
  for (size_t i = count - 1; i-- > 0;) {
    const RecordView& r = newest_first[i];
    if (r.data[0] != kRecordTagPatch) return "a page-initializing record in the middle of the chain";
    const size_t offset = LoadBe16(r.data + 1);
    std::memcpy(page + offset, r.data + kPatchHeaderSize, r.len - kPatchHeaderSize);
  }
  return nullptr;
}

}  // namespace strata
