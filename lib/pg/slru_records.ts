/**
 * Strata's rmgr-255 stored records (docs/POSTGRES.md, "Strata's own records"): the encoder shared by
 * ingest's visibility-map records and the SLRU records of pg_xact and pg_multixact, with the SLRU
 * page arithmetic of PostgreSQL 15 (clog.c, multixact.c). The cores redo them
 * (lib/core/ts/pg/slru_redo.ts, native/pg/slru_redo.cc); this file only builds them.
 *
 * An SLRU record's one block reference names its page: fork 0, spcOid 0, dbOid 0, relNumber = the
 * SLRU (0 pg_xact, 1 offsets, 2 members), block = the SLRU page number (segment × 32 + page in
 * segment). Its cluster flags are 0: SLRU pages carry no checksum.
 */
import {
  BKPBLOCK_WILL_INIT, CLOG_XACTS_PER_PAGE, MULTIXACT_MEMBERS_PER_PAGE, MULTIXACT_OFFSETS_PER_PAGE, RECORD_TAG_PG, RM_STRATA,
  SLRU_MULTIXACT_MEMBERS, SLRU_MULTIXACT_OFFSETS, SLRU_PAGES_PER_SEGMENT, SLRU_XACT, STORED_BLOCK_REF_SIZE, STORED_HEADER_SIZE,
  STRATA_CLOG_SET, STRATA_MULTIXACT_MEMBERS, STRATA_MULTIXACT_OFFSETS,
} from '../core/pg_wal_format';
import type { Lsn } from '../lsn';
import { slruKey } from './keyspace';

/** The page a rmgr-255 record changes: a relation block, or (SLRU records) an SLRU page. */
export interface StrataTarget {
  spcOid: number;
  dbOid: number;
  relNumber: number;
  forkNum: number;
  blockNumber: number;
  /** The page did not exist: redo starts from zeros (BKPBLOCK_WILL_INIT). */
  willInit?: boolean;
}

/** A tag-4 value of rmgr 255 for one page, in the stored-record layout (docs/POSTGRES.md, "Stored record"). */
export function strataRecord(info: number, clusterFlags: number, lsn: Lsn, xid: number, t: StrataTarget, main: Uint8Array): Buffer {
  const out = Buffer.alloc(STORED_HEADER_SIZE + STORED_BLOCK_REF_SIZE + main.length);
  out[0] = RECORD_TAG_PG;
  out[1] = clusterFlags;
  out[2] = 0; // block id
  out.writeBigUInt64LE(lsn, 4);
  out.writeUInt32LE(xid, 12);
  out[16] = RM_STRATA;
  out[17] = info;
  out[18] = 1;
  out.writeUInt32LE(main.length, 20);
  const ref = STORED_HEADER_SIZE;
  out[ref] = 0;
  out[ref + 1] = t.forkNum;
  out[ref + 2] = t.willInit === true ? BKPBLOCK_WILL_INIT : 0;
  out.writeUInt32LE(t.spcOid, ref + 4);
  out.writeUInt32LE(t.dbOid, ref + 8);
  out.writeUInt32LE(t.relNumber, ref + 12);
  out.writeUInt32LE(t.blockNumber, ref + 16);
  out.set(main, ref + STORED_BLOCK_REF_SIZE);
  return out;
}

// ---- SLRU page arithmetic (PostgreSQL 15) ------------------------------------------------------

/** TransactionIdToPage. */
export function clogPageOf(xid: number): number {
  return Math.floor(xid / CLOG_XACTS_PER_PAGE);
}

/** MultiXactIdToOffsetPage. */
export function offsetsPageOf(multi: number): number {
  return Math.floor(multi / MULTIXACT_OFFSETS_PER_PAGE);
}

/** MXOffsetToMemberPage. */
export function membersPageOf(offset: number): number {
  return Math.floor(offset / MULTIXACT_MEMBERS_PER_PAGE);
}

/** The key of an SLRU page by its page number. */
export function slruPageKey(slru: number, pageno: number): Buffer {
  return slruKey(slru, Math.floor(pageno / SLRU_PAGES_PER_SEGMENT), pageno % SLRU_PAGES_PER_SEGMENT);
}

function slruTarget(slru: number, pageno: number, willInit: boolean): StrataTarget {
  return { spcOid: 0, dbOid: 0, relNumber: slru, forkNum: 0, blockNumber: pageno, willInit };
}

// ---- the records -------------------------------------------------------------------------------

const CLOG_SET_HEADER = 8;
const CLOG_SET_LIST = 0;
const CLOG_SET_BITMAP = 1;
const CLOG_BITMAP_BYTES = CLOG_XACTS_PER_PAGE / 8;
/** Above this many xids a bitmap of the page is smaller than the list (and keeps the record under 128 KiB). */
const CLOG_LIST_MAX = CLOG_BITMAP_BYTES / 4;

/** CLOG_SET: `status` (1 committed, 2 aborted) for `xids`, all on pg_xact page `pageno`. */
export function clogSetRecord(pageno: number, status: number, xids: readonly number[], lsn: Lsn, xid: number, willInit: boolean): Buffer {
  let main: Buffer;
  if (xids.length <= CLOG_LIST_MAX) {
    main = Buffer.alloc(CLOG_SET_HEADER + 4 * xids.length);
    main[1] = CLOG_SET_LIST;
    xids.forEach((x, i) => main.writeUInt32LE(x, CLOG_SET_HEADER + 4 * i));
  } else {
    main = Buffer.alloc(CLOG_SET_HEADER + CLOG_BITMAP_BYTES);
    main[1] = CLOG_SET_BITMAP;
    for (const x of xids) {
      const i = x % CLOG_XACTS_PER_PAGE;
      main[CLOG_SET_HEADER + (i >> 3)] |= 1 << (i & 7);
    }
  }
  main[0] = status;
  main.writeUInt32LE(xids.length, 4);
  return strataRecord(STRATA_CLOG_SET, 0, lsn, xid, slruTarget(SLRU_XACT, pageno, willInit), main);
}

/** MULTIXACT_OFFSETS: (multixact, starting offset) pairs, all on offsets page `pageno`. */
export function multixactOffsetsRecord(pageno: number, entries: ReadonlyArray<[number, number]>, lsn: Lsn, xid: number, willInit: boolean): Buffer {
  const main = Buffer.alloc(4 + 8 * entries.length);
  main.writeUInt32LE(entries.length, 0);
  entries.forEach(([multi, offset], i) => {
    main.writeUInt32LE(multi, 4 + 8 * i);
    main.writeUInt32LE(offset, 8 + 8 * i);
  });
  return strataRecord(STRATA_MULTIXACT_OFFSETS, 0, lsn, xid, slruTarget(SLRU_MULTIXACT_OFFSETS, pageno, willInit), main);
}

/** A multixact member: its xid and MultiXactStatus. */
export interface MultiXactMember {
  xid: number;
  status: number;
}

/** MULTIXACT_MEMBERS: consecutive members from offset `first`, all on members page `pageno`. */
export function multixactMembersRecord(pageno: number, first: number, members: readonly MultiXactMember[], lsn: Lsn, xid: number, willInit: boolean): Buffer {
  const main = Buffer.alloc(8 + 8 * members.length);
  main.writeUInt32LE(first, 0);
  main.writeUInt32LE(members.length, 4);
  members.forEach((m, i) => {
    main.writeUInt32LE(m.xid, 8 + 8 * i);
    main.writeUInt32LE(m.status, 12 + 8 * i);
  });
  return strataRecord(STRATA_MULTIXACT_MEMBERS, 0, lsn, xid, slruTarget(SLRU_MULTIXACT_MEMBERS, pageno, willInit), main);
}
