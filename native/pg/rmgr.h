// Redo of one stored PostgreSQL record (tag 4) on the page it is stored under: dispatch on
// (xl_rmid, xl_info & 0xF0) to the function that mirrors PostgreSQL's redo for that block, then the
// page checksum when the cluster has data checksums (docs/POSTGRES.md, "Stored record").
#ifndef STRATA_PG_RMGR_H_
#define STRATA_PG_RMGR_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "redo_record.h"

namespace strata {
namespace pg {

// Redoes `rec` (a stored tag-4 value, len bytes) on `page` (8192 bytes): the block's previous
// version, or zeros when the record is will_init. On return the page is as PostgreSQL would write it.
// Throws StrataError: WAL_UNSUPPORTED naming rmgr/INFO and the LSN for a record type Strata cannot
// redo; REDO_FAILED naming the record, LSN and block when the record does not fit the page (or the
// value is malformed). The page's contents are unspecified after a throw.
void RedoRecord(const uint8_t* rec, size_t len, uint8_t* page);

// "rmgr/INFO" as pg_waldump names a record, e.g. "Heap/INSERT+INIT", "Hash/INSERT",
// "Btree/UNKNOWN (f0)"; Strata's own resource manager 255 is "Strata/VM_CLEAR".
std::string RmgrInfoName(uint8_t rmid, uint8_t info);

// One redo function: runs the target block's part of a record on `page`; throws PageError.
using RedoFn = void (*)(const RedoRecordView& r, uint8_t* page);

}  // namespace pg
}  // namespace strata

#endif  // STRATA_PG_RMGR_H_
