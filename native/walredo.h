// The redo engine: what a serialized record means and how it changes a page
// (docs/FORMAT.md, "Records"): image (copy), zero (8192 zero bytes), patch (write data at offset),
// value (payload, then zeros), and a stored PostgreSQL record (redone by native/pg/rmgr).
#ifndef STRATA_WALREDO_H_
#define STRATA_WALREDO_H_

#include <cstddef>
#include <cstdint>

namespace strata {

// nullptr if the record is well formed, else what is wrong with it.
const char* CheckSerializedRecord(const uint8_t* rec, size_t len);

// True when the (well-formed) record initializes the page, ending a reconstruction chain.
bool RecordWillInit(const uint8_t* rec);

struct RecordView {
  const uint8_t* data;
  size_t len;
};

// Rebuilds `page` from `count` well-formed records given newest first, applying them oldest
// first: the oldest must initialize the page (image or zero); a page-initializing record later in
// the chain starts the page afresh (docs/FORMAT.md, "Records"). Returns nullptr on success, else
// what is wrong with the chain (empty, or not starting with a page-initializing record).
// A PostgreSQL record that cannot be redone throws StrataError WAL_UNSUPPORTED or REDO_FAILED
// (naming the record and LSN; the caller adds the page key).
const char* ApplyRecords(const RecordView* newest_first, size_t count, uint8_t* page);

}  // namespace strata

#endif  // STRATA_WALREDO_H_
