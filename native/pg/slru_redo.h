// Redo of Strata's SLRU records (rmgr 255): the changes PostgreSQL 15 makes to pg_xact and
// pg_multixact pages, which its WAL records carry without block references (docs/POSTGRES.md,
// "CLOG", "Multixacts"). Ingest splits each WAL record into one stored record per SLRU page; these
// functions write that page's part, as clog.c's TransactionIdSetStatusBit and multixact.c's
// RecordNewMultiXact do. SLRU pages have no page header: no pd_lsn, no checksum (the dispatch
// skips it). TS twin: lib/core/ts/pg/slru_redo.ts.
//
// The target block reference names the page: rel_number = the SLRU (0 pg_xact, 1 offsets,
// 2 members), block = the SLRU page number (segment × 32 + page in segment). A page that did not
// exist yet arrives as will_init and starts from zeros, as PostgreSQL's recovery reads a missing page.
#ifndef STRATA_PG_SLRU_REDO_H_
#define STRATA_PG_SLRU_REDO_H_

#include <cstdint>

#include "redo_record.h"

namespace strata {
namespace pg {

// rmgr-255 record types on SLRU pages (docs/POSTGRES.md, "Strata's own records").
constexpr uint8_t kStrataClogSet = 0x20;
constexpr uint8_t kStrataMultixactOffsets = 0x30;
constexpr uint8_t kStrataMultixactMembers = 0x40;

// Whether (rmid, info) is one of the records above: their pages get no checksum.
bool IsSlruRecord(uint8_t rmid, uint8_t info);

// CLOG_SET: the final status (committed or aborted) of each listed xid, all on this pg_xact page.
void StrataClogSet(const RedoRecordView& r, uint8_t* page);
// MULTIXACT_OFFSETS: (multixact, starting member offset) pairs on this offsets page.
void StrataMultixactOffsets(const RedoRecordView& r, uint8_t* page);
// MULTIXACT_MEMBERS: consecutive members (xid, status) from a starting offset on this members page.
void StrataMultixactMembers(const RedoRecordView& r, uint8_t* page);

}  // namespace pg
}  // namespace strata

#endif  // STRATA_PG_SLRU_REDO_H_
