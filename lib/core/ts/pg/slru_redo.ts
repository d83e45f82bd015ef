/**
 * Redo of Strata's SLRU records (rmgr 255, TS twin of native/pg/slru_redo.{h,cc}): the changes
 * PostgreSQL 15 makes to pg_xact and pg_multixact pages, which its WAL records carry without block
 * references (docs/POSTGRES.md, "CLOG", "Multixacts"). Ingest splits each WAL record into one
 * stored record per SLRU page; these functions write that page's part, as clog.c's
 * TransactionIdSetStatusBit and multixact.c's RecordNewMultiXact do. SLRU pages have no page
 * header: no pd_lsn, no checksum (the dispatch skips it).
 *
 * The target block reference names the page: relNumber = the SLRU (0 pg_xact, 1 offsets, 2 members),
 * block = the SLRU page number (segment × 32 + page in segment). A page that did not exist yet
 * arrives as will_init and starts from zeros, as PostgreSQL's recovery reads a missing page.
 */
import {
  CLOG_XACTS_PER_PAGE, MULTIXACT_MEMBERGROUP_SIZE, MULTIXACT_MEMBERGROUPS_PER_PAGE, MULTIXACT_MEMBERS_PER_GROUP,
  MULTIXACT_MEMBERS_PER_PAGE, MULTIXACT_OFFSETS_PER_PAGE, MULTIXACT_STATUS_MAX, SLRU_MULTIXACT_MEMBERS, SLRU_MULTIXACT_OFFSETS,
  SLRU_XACT, TRANSACTION_STATUS_ABORTED, TRANSACTION_STATUS_COMMITTED,
} from '../../pg_wal_format';
import { PageError } from './bufpage';
import { loadLe32, storeLe32 } from './pg_format';
import type { RedoRecordView } from './redo_record';

const CLOG_XACTS_PER_BYTE = 4;
const CLOG_BITS_PER_XACT = 2;
const CLOG_XACT_BITMASK = 0x03;
const CLOG_SET_LIST = 0;
const CLOG_SET_BITMAP = 1;
/** One bit per transaction of a pg_xact page. */
const CLOG_BITMAP_BYTES = CLOG_XACTS_PER_PAGE / 8;
/**
 * Main data headers: CLOG_SET u8 status, u8 form (0 list, 1 bitmap), u16 reserved, u32 count (of
 * xids listed, or of bits set); OFFSETS u32 count; MEMBERS u32 first offset, u32 count.
 */
const CLOG_SET_HEADER = 8;
const OFFSETS_HEADER = 4;
const MEMBERS_HEADER = 8;
/** Bytes per entry: a CLOG xid; an offsets (multi, offset) pair; a member (xid, status). */
const CLOG_SET_ENTRY = 4;
const OFFSETS_ENTRY = 8;
const MEMBERS_ENTRY = 8;

function requireSlru(r: RedoRecordView, slru: number, what: string): void {
  const t = r.target();
  if (t.relNumber !== slru || t.spcOid !== 0 || t.dbOid !== 0 || t.fork !== 0) throw new PageError(`${what} record on a block that is not a page of its SLRU`);
}

/** The entry count of a main data header at `countOff`, checked against the main data's length. */
function entryCount(r: RedoRecordView, header: number, countOff: number, entry: number, what: string): number {
  if (r.mainDataLen < header) throw new PageError(`main data shorter than the ${what} header`);
  const n = loadLe32(r.buf, r.mainDataOff + countOff);
  if (n === 0 || r.mainDataLen !== header + n * entry) throw new PageError(`${what} main data of ${r.mainDataLen} bytes does not hold ${n} entries`);
  return n;
}

/**
 * CLOG_SET: the final status (committed or aborted) of transactions on this pg_xact page
 * (TransactionIdSetTreeStatus's end state: PostgreSQL passes through sub-committed only so that a
 * concurrent reader never sees a half-committed tree; redo has no concurrent reader). The xids come
 * as a list, or — for a tree too large to list in a stored record — as a bitmap of the page's
 * 32768 transactions (bit i of byte j: xid pageno × 32768 + 8j + i).
 */
export function strataClogSet(r: RedoRecordView, page: Uint8Array): void {
  requireSlru(r, SLRU_XACT, 'CLOG_SET');
  const b = r.buf;
  if (r.mainDataLen < CLOG_SET_HEADER) throw new PageError('main data shorter than the CLOG_SET header');
  const status = b[r.mainDataOff];
  const form = b[r.mainDataOff + 1];
  const n = loadLe32(b, r.mainDataOff + 4);
  if (status !== TRANSACTION_STATUS_COMMITTED && status !== TRANSACTION_STATUS_ABORTED) throw new PageError(`CLOG_SET status ${status} is neither committed nor aborted`);
  if (b[r.mainDataOff + 2] !== 0 || b[r.mainDataOff + 3] !== 0) throw new PageError('CLOG_SET reserved bytes not zero');
  const pageno = r.targetBlockNumber();
  const first = pageno * CLOG_XACTS_PER_PAGE;
  if (form === CLOG_SET_LIST) {
    if (n === 0 || r.mainDataLen !== CLOG_SET_HEADER + n * CLOG_SET_ENTRY) throw new PageError(`CLOG_SET main data of ${r.mainDataLen} bytes does not hold ${n} entries`);
    for (let i = 0; i < n; i++) {
      const xid = loadLe32(b, r.mainDataOff + CLOG_SET_HEADER + i * CLOG_SET_ENTRY);
      if (Math.floor(xid / CLOG_XACTS_PER_PAGE) !== pageno) throw new PageError(`xid ${xid} is not on pg_xact page ${pageno}`);
      clogSetStatus(page, xid % CLOG_XACTS_PER_PAGE, status);
    }
  } else if (form === CLOG_SET_BITMAP) {
    if (r.mainDataLen !== CLOG_SET_HEADER + CLOG_BITMAP_BYTES) throw new PageError(`CLOG_SET bitmap of ${r.mainDataLen - CLOG_SET_HEADER} bytes, expected ${CLOG_BITMAP_BYTES}`);
    let set = 0;
    for (let j = 0; j < CLOG_BITMAP_BYTES; j++) {
      const bits = b[r.mainDataOff + CLOG_SET_HEADER + j];
      for (let i = 0; i < 8; i++) {
        if ((bits & (1 << i)) === 0) continue;
        clogSetStatus(page, j * 8 + i, status);
        set++;
      }
    }
    if (set === 0 || set !== n) throw new PageError(`CLOG_SET bitmap holds ${set} xids, its count says ${n} (first xid of the page ${first})`);
  } else {
    throw new PageError(`CLOG_SET form ${form} is neither a list nor a bitmap`);
  }
}

/** TransactionIdSetStatusBit for the transaction at `index` on the page. */
function clogSetStatus(page: Uint8Array, index: number, status: number): void {
  const byteno = Math.floor(index / CLOG_XACTS_PER_BYTE);
  const bshift = (index % CLOG_XACTS_PER_BYTE) * CLOG_BITS_PER_XACT;
  page[byteno] = (page[byteno] & ~(CLOG_XACT_BITMASK << bshift)) | (status << bshift);
}

/**
 * MULTIXACT_OFFSETS: (multixact, starting member offset) pairs on this offsets page — the
 * multixact's own entry and, as RecordNewMultiXact of PostgreSQL 15.18 writes it, the next
 * multixact's (where its members will start).
 */
export function strataMultixactOffsets(r: RedoRecordView, page: Uint8Array): void {
  requireSlru(r, SLRU_MULTIXACT_OFFSETS, 'MULTIXACT_OFFSETS');
  const n = entryCount(r, OFFSETS_HEADER, 0, OFFSETS_ENTRY, 'MULTIXACT_OFFSETS');
  const b = r.buf;
  const pageno = r.targetBlockNumber();
  for (let i = 0; i < n; i++) {
    const at = r.mainDataOff + OFFSETS_HEADER + i * OFFSETS_ENTRY;
    const multi = loadLe32(b, at);
    if (Math.floor(multi / MULTIXACT_OFFSETS_PER_PAGE) !== pageno) throw new PageError(`multixact ${multi} is not on offsets page ${pageno}`);
    storeLe32(page, (multi % MULTIXACT_OFFSETS_PER_PAGE) * 4, loadLe32(b, at + 4));
  }
}

/**
 * MULTIXACT_MEMBERS: consecutive members from a starting offset (wrapping at 2^32), all on this
 * members page: each member's xid in its group's xid slot and its status in its flag byte.
 */
export function strataMultixactMembers(r: RedoRecordView, page: Uint8Array): void {
  requireSlru(r, SLRU_MULTIXACT_MEMBERS, 'MULTIXACT_MEMBERS');
  const n = entryCount(r, MEMBERS_HEADER, 4, MEMBERS_ENTRY, 'MULTIXACT_MEMBERS');
  const b = r.buf;
  const first = loadLe32(b, r.mainDataOff);
  const pageno = r.targetBlockNumber();
  for (let i = 0; i < n; i++) {
    const at = r.mainDataOff + MEMBERS_HEADER + i * MEMBERS_ENTRY;
    const offset = (first + i) >>> 0;
    const xid = loadLe32(b, at);
    const status = loadLe32(b, at + 4);
    if (Math.floor(offset / MULTIXACT_MEMBERS_PER_PAGE) !== pageno) throw new PageError(`member offset ${offset} is not on members page ${pageno}`);
    if (status > MULTIXACT_STATUS_MAX) throw new PageError(`member status ${status} is not a MultiXactStatus`);
    const group = Math.floor(offset / MULTIXACT_MEMBERS_PER_GROUP) % MULTIXACT_MEMBERGROUPS_PER_PAGE;
    const inGroup = offset % MULTIXACT_MEMBERS_PER_GROUP;
    const flagsOff = group * MULTIXACT_MEMBERGROUP_SIZE;
    storeLe32(page, flagsOff + MULTIXACT_MEMBERS_PER_GROUP + inGroup * 4, xid);
    page[flagsOff + inGroup] = status;
  }
}
