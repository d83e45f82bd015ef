/**
 * PostgreSQL 15's page masks, for comparing a page Strata rebuilt with the page PostgreSQL wrote
 * (docs/POSTGRES.md, "Oracle tests"; ../shared/reference/postgres-wal.md §4). Written from
 * REL_15_STABLE's src/backend/access/common/bufmask.c, heap_mask (src/backend/access/heap/heapam.c)
 * and btree_mask (src/backend/access/nbtree/nbtxlog.c), plus seq_mask (commands/sequence.c).
 * PostgreSQL applies the same masks to both pages in `verifyBackupPageConsistency` (xlogrecovery.c)
 * after redo of every record that carries XLR_CHECK_CONSISTENCY.
 *
 * API (every function returns a masked COPY; its input is never changed):
 * - bufmask.c: `maskPageLsnAndChecksum`, `maskPageHintBits`, `maskUnusedSpace`, `maskLpFlags`
 * - per access method: `heapMask(page, blkno)`, `btreeMask(page, blkno)`, `seqMask(page, blkno)`,
 *   `maskForAm(am, page, blkno)`
 * - classifying a page: `amOfRelation(rel)` (by relam/relkind from the catalog) and
 *   `classifyPageHeuristic(page)` (by the page header, postgres-wal.md §5a) as the fallback
 * - page readers: `pageLsn`, `isAllZeroPage`, `firstDifference`, `readPageHeader`
 *
 * A page whose header is not a valid PostgreSQL page (pd_lower/pd_upper/pd_special out of order,
 * e.g. an all-zero page) makes `maskUnusedSpace` throw `PageMaskError`, as bufmask.c's elog(ERROR).
 * All layouts are little-endian, 8192-byte pages (BLCKSZ), MAXALIGN 8.
 */
import type { PgRelation } from './pg_cluster';

export const BLCKSZ = 8192;
const MAXIMUM_ALIGNOF = 8;
/** bufmask.h: the byte masked fields are set to. */
export const MASK_MARKER = 0;

// PageHeaderData (storage/bufpage.h)
const PD_LSN = 0; // PageXLogRecPtr: xlogid u32 (high half), xrecoff u32 (low half)
const PD_CHECKSUM = 8; // u16
const PD_FLAGS = 10; // u16
const PD_LOWER = 12; // u16
const PD_UPPER = 14; // u16
const PD_SPECIAL = 16; // u16
const PD_PRUNE_XID = 20; // u32
export const SIZE_OF_PAGE_HEADER = 24; // SizeOfPageHeaderData: offsetof(PageHeaderData, pd_linp)
const PD_HAS_FREE_LINES = 0x0001;
const PD_PAGE_FULL = 0x0002;
const PD_ALL_VISIBLE = 0x0004;

// ItemIdData (storage/itemid.h): one u32, lp_off:15 | lp_flags:2 | lp_len:15 from the low bit up
const ITEM_ID_SIZE = 4;
const LP_OFF_MASK = 0x7fff;
const LP_FLAGS_SHIFT = 15;
const LP_FLAGS_MASK = 0x3 << LP_FLAGS_SHIFT;
const LP_LEN_SHIFT = 17;
export const LP_UNUSED = 0;
export const LP_NORMAL = 1;
export const LP_REDIRECT = 2;
export const LP_DEAD = 3;

// HeapTupleHeaderData (access/htup_details.h)
const T_CID = 8; // t_choice.t_heap.t_field3.t_cid, u32
const T_CTID = 12; // ItemPointerData: bi_hi u16, bi_lo u16, ip_posid u16
const T_INFOMASK = 20; // u16
const HEAP_XMIN_COMMITTED = 0x0100;
const HEAP_XMIN_INVALID = 0x0200;
const HEAP_XMIN_FROZEN = HEAP_XMIN_COMMITTED | HEAP_XMIN_INVALID;
const HEAP_XMAX_COMMITTED = 0x0400;
const HEAP_XMAX_INVALID = 0x0800;
const HEAP_XACT_MASK = 0xfff0;
/** storage/itemptr.h: a speculative insertion's ctid offset; the block fields hold the token. */
const SPEC_TOKEN_OFFSET_NUMBER = 0xfffe;

// BTPageOpaqueData (access/nbtree.h), at pd_special: prev u32, next u32, level u32, flags u16, cycleid u16
const BTPO_FLAGS = 12;
const BTPO_CYCLEID = 14;
const BT_OPAQUE_SIZE = 16;
const BTP_LEAF = 1 << 0;
const BTP_SPLIT_END = 1 << 5;
const BTP_HAS_GARBAGE = 1 << 6;
/** MAX_BT_CYCLE_ID: btree cycle ids stay below the special-area page ids of other AMs (0xFF80…). */
const MAX_BT_CYCLE_ID = 0xff7f;

// Page ids other AMs keep in the last two bytes of the page (hash.h, gist.h, spgist_private.h, brin_page.h)
const HASHO_PAGE_ID = 0xff80;
const GIST_PAGE_ID = 0xff81;
const SPGIST_PAGE_ID = 0xff82;
const BRIN_PAGETYPE_META = 0xf091;
const BRIN_PAGETYPE_REGULAR = 0xf093;
/** commands/sequence.c: sequence_magic, the u32 special area of a sequence page. */
const SEQ_MAGIC = 0x1717;

export class PageMaskError extends Error {}

export interface PageHeader {
  lsn: bigint;
  checksum: number;
  flags: number;
  lower: number;
  upper: number;
  special: number;
  pagesizeVersion: number;
  pruneXid: number;
}

function view(page: Uint8Array): Buffer {
  if (page.length !== BLCKSZ) throw new PageMaskError(`page must be ${BLCKSZ} bytes, got ${page.length}`);
  return Buffer.from(page.buffer, page.byteOffset, page.length);
}

function copyOf(page: Uint8Array): Buffer {
  return Buffer.from(view(page));
}

function maxAlign(n: number): number {
  return (n + MAXIMUM_ALIGNOF - 1) & ~(MAXIMUM_ALIGNOF - 1);
}

export function readPageHeader(page: Uint8Array): PageHeader {
  const p = view(page);
  return {
    lsn: (BigInt(p.readUInt32LE(PD_LSN)) << 32n) | BigInt(p.readUInt32LE(PD_LSN + 4)),
    checksum: p.readUInt16LE(PD_CHECKSUM),
    flags: p.readUInt16LE(PD_FLAGS),
    lower: p.readUInt16LE(PD_LOWER),
    upper: p.readUInt16LE(PD_UPPER),
    special: p.readUInt16LE(PD_SPECIAL),
    pagesizeVersion: p.readUInt16LE(18),
    pruneXid: p.readUInt32LE(PD_PRUNE_XID),
  };
}

/** pd_lsn as a 64-bit LSN (PageGetLSN). */
export function pageLsn(page: Uint8Array): bigint {
  return readPageHeader(page).lsn;
}

export function isAllZeroPage(page: Uint8Array): boolean {
  const p = view(page);
  for (let i = 0; i < BLCKSZ; i += 8) if (p.readBigUInt64LE(i) !== 0n) return false;
  return true;
}

/** Offset of the first byte where a and b differ, or -1 when they are equal. */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** PageGetMaxOffsetNumber: how many line pointers the page has (0 when pd_lower is at or below the header). */
function maxOffsetNumber(p: Buffer): number {
  const lower = p.readUInt16LE(PD_LOWER);
  return lower <= SIZE_OF_PAGE_HEADER ? 0 : Math.floor((lower - SIZE_OF_PAGE_HEADER) / ITEM_ID_SIZE);
}

interface ItemId {
  pos: number; // byte position of the line pointer itself
  off: number;
  flags: number;
  len: number;
}

function itemId(p: Buffer, offnum: number): ItemId {
  const pos = SIZE_OF_PAGE_HEADER + (offnum - 1) * ITEM_ID_SIZE;
  const v = p.readUInt32LE(pos);
  return { pos, off: v & LP_OFF_MASK, flags: (v >>> LP_FLAGS_SHIFT) & 0x3, len: v >>> LP_LEN_SHIFT };
}

// ---------------------------------------------------------------------------------------------
// bufmask.c, in place (the exported functions below wrap each in a copy)

/** mask_page_lsn_and_checksum: pd_lsn and pd_checksum → MASK_MARKER. */
function lsnAndChecksumInPlace(p: Buffer): void {
  p.fill(MASK_MARKER, PD_LSN, PD_LSN + 8);
  p.writeUInt16LE(MASK_MARKER, PD_CHECKSUM);
}

/**
 * mask_page_hint_bits: pd_prune_xid → MASK_MARKER; clear PD_PAGE_FULL, PD_HAS_FREE_LINES (hints)
 * and PD_ALL_VISIBLE (redo may skip setting it when the page LSN is ahead, heap_xlog_visible).
 */
function hintBitsInPlace(p: Buffer): void {
  p.writeUInt32LE(MASK_MARKER, PD_PRUNE_XID);
  const flags = p.readUInt16LE(PD_FLAGS);
  p.writeUInt16LE(flags & ~(PD_PAGE_FULL | PD_HAS_FREE_LINES | PD_ALL_VISIBLE), PD_FLAGS);
}

/** mask_unused_space: zero [pd_lower, pd_upper) after its sanity check (elog(ERROR) → PageMaskError). */
function unusedSpaceInPlace(p: Buffer): void {
  const lower = p.readUInt16LE(PD_LOWER);
  const upper = p.readUInt16LE(PD_UPPER);
  const special = p.readUInt16LE(PD_SPECIAL);
  if (lower > upper || special < upper || lower < SIZE_OF_PAGE_HEADER || special > BLCKSZ) {
    throw new PageMaskError(`invalid page pd_lower ${lower} pd_upper ${upper} pd_special ${special}`);
  }
  p.fill(MASK_MARKER, lower, upper);
}

/** mask_lp_flags: every used line pointer (lp_flags != LP_UNUSED) gets lp_flags = LP_UNUSED; off and len stay. */
function lpFlagsInPlace(p: Buffer): void {
  const maxoff = maxOffsetNumber(p);
  for (let off = 1; off <= maxoff; off++) {
    const pos = SIZE_OF_PAGE_HEADER + (off - 1) * ITEM_ID_SIZE;
    const v = p.readUInt32LE(pos);
    if ((v & LP_FLAGS_MASK) !== 0) p.writeUInt32LE((v & ~LP_FLAGS_MASK) >>> 0, pos);
  }
}

/** mask_page_lsn_and_checksum (bufmask.c). */
export function maskPageLsnAndChecksum(page: Uint8Array): Buffer {
  const p = copyOf(page);
  lsnAndChecksumInPlace(p);
  return p;
}

/** mask_page_hint_bits (bufmask.c). */
export function maskPageHintBits(page: Uint8Array): Buffer {
  const p = copyOf(page);
  hintBitsInPlace(p);
  return p;
}

/** mask_unused_space (bufmask.c); throws PageMaskError on an invalid header, as PostgreSQL's elog(ERROR). */
export function maskUnusedSpace(page: Uint8Array): Buffer {
  const p = copyOf(page);
  unusedSpaceInPlace(p);
  return p;
}

/** mask_lp_flags (bufmask.c). */
export function maskLpFlags(page: Uint8Array): Buffer {
  const p = copyOf(page);
  lpFlagsInPlace(p);
  return p;
}

// ---------------------------------------------------------------------------------------------
// Access methods

/**
 * heap_mask (heapam.c): the three page-level masks, then for every line pointer:
 * - LP_NORMAL tuples: if xmin is not frozen (HeapTupleHeaderXminFrozen), clear every
 *   HEAP_XACT_MASK bit of t_infomask (hint bits are set without WAL); if it is frozen, clear only
 *   HEAP_XMAX_COMMITTED and HEAP_XMAX_INVALID. t_cid → MASK_MARKER (redo writes FirstCommandId).
 *   A speculative tuple (ctid offset SpecTokenOffsetNumber) gets ctid = (blkno, off), as
 *   heap_xlog_insert writes it; ctid changes of moved tuples are deliberately not masked.
 * - every item with storage (lp_len != 0): the MAXALIGN padding after its lp_len bytes → MASK_MARKER.
 */
export function heapMask(page: Uint8Array, blkno: number): Buffer {
  const p = copyOf(page);
  lsnAndChecksumInPlace(p);
  hintBitsInPlace(p);
  unusedSpaceInPlace(p);
  const maxoff = maxOffsetNumber(p);
  for (let off = 1; off <= maxoff; off++) {
    const iid = itemId(p, off);
    const item = iid.off;
    if (iid.flags === LP_NORMAL) {
      checkItemBounds(item, HEAP_TUPLE_MIN, blkno, off);
      const infomask = p.readUInt16LE(item + T_INFOMASK);
      const frozen = (infomask & HEAP_XMIN_FROZEN) === HEAP_XMIN_FROZEN;
      const masked = frozen ? infomask & ~(HEAP_XMAX_INVALID | HEAP_XMAX_COMMITTED) : infomask & ~HEAP_XACT_MASK;
      p.writeUInt16LE(masked, item + T_INFOMASK);
      p.writeUInt32LE(MASK_MARKER, item + T_CID);
      if (p.readUInt16LE(item + T_CTID + 4) === SPEC_TOKEN_OFFSET_NUMBER) {
        // ItemPointerSet(&t_ctid, blkno, off): BlockIdData is two u16 halves, high first.
        p.writeUInt16LE((blkno >>> 16) & 0xffff, item + T_CTID);
        p.writeUInt16LE(blkno & 0xffff, item + T_CTID + 2);
        p.writeUInt16LE(off, item + T_CTID + 4);
      }
    }
    if (iid.len !== 0) {
      const pad = maxAlign(iid.len) - iid.len;
      if (pad > 0) {
        checkItemBounds(item, iid.len + pad, blkno, off);
        p.fill(MASK_MARKER, item + iid.len, item + iid.len + pad);
      }
    }
  }
  return p;
}

/** Bytes of a heap tuple header heap_mask touches (through t_infomask). */
const HEAP_TUPLE_MIN = T_INFOMASK + 2;

/** PostgreSQL would read or write out of the page here; we refuse instead. */
function checkItemBounds(item: number, len: number, blkno: number, off: number): void {
  if (item < SIZE_OF_PAGE_HEADER || item + len > BLCKSZ) {
    throw new PageMaskError(`block ${blkno} item ${off}: offset ${item} length ${len} outside the page`);
  }
}

/**
 * btree_mask (nbtxlog.c, PG 15): the three page-level masks; on leaf pages (BTP_LEAF) also
 * mask_lp_flags (LP_DEAD is set without WAL by _bt_killitems/_bt_check_unique); then clear
 * BTP_HAS_GARBAGE (an unlogged hint) and BTP_SPLIT_END, and set btpo_cycleid to 0 (redo of a split
 * sets neither on the right page). PG 15 no longer masks the content of deleted pages (PG 13 did).
 */
export function btreeMask(page: Uint8Array, blkno: number): Buffer {
  const p = copyOf(page);
  lsnAndChecksumInPlace(p);
  hintBitsInPlace(p);
  unusedSpaceInPlace(p);
  const special = p.readUInt16LE(PD_SPECIAL);
  if (special + BT_OPAQUE_SIZE > BLCKSZ) {
    throw new PageMaskError(`block ${blkno}: btree special area at ${special} does not fit the page`);
  }
  const flags = p.readUInt16LE(special + BTPO_FLAGS);
  if (flags & BTP_LEAF) lpFlagsInPlace(p);
  p.writeUInt16LE(flags & ~(BTP_HAS_GARBAGE | BTP_SPLIT_END), special + BTPO_FLAGS);
  p.writeUInt16LE(0, special + BTPO_CYCLEID);
  return p;
}

/** seq_mask (commands/sequence.c): mask_page_lsn_and_checksum and mask_unused_space only. */
export function seqMask(page: Uint8Array, _blkno: number): Buffer {
  const p = copyOf(page);
  lsnAndChecksumInPlace(p);
  unusedSpaceInPlace(p);
  return p;
}

/** The kinds of page the oracle distinguishes. Only heap, btree and sequence have a mask here. */
export type PageAm = 'heap' | 'btree' | 'sequence' | 'hash' | 'gist' | 'spgist' | 'gin' | 'brin' | 'zero' | 'unknown';
export type MaskableAm = 'heap' | 'btree' | 'sequence';

export function isMaskableAm(am: PageAm): am is MaskableAm {
  return am === 'heap' || am === 'btree' || am === 'sequence';
}

/** The AM's mask (rm_mask of its resource manager) on a copy of the page. */
export function maskForAm(am: MaskableAm, page: Uint8Array, blkno: number): Buffer {
  switch (am) {
    case 'heap':
      return heapMask(page, blkno);
    case 'btree':
      return btreeMask(page, blkno);
    case 'sequence':
      return seqMask(page, blkno);
  }
}

const KNOWN_AMS: ReadonlySet<string> = new Set(['heap', 'btree', 'hash', 'gist', 'spgist', 'gin', 'brin']);

/** A relation's page kind from the catalog: pg_am.amname, or 'sequence' for relkind 'S' (relam 0). */
export function amOfRelation(rel: Pick<PgRelation, 'am' | 'relkind'>): PageAm {
  if (rel.relkind === 'S') return 'sequence';
  return KNOWN_AMS.has(rel.am) ? (rel.am as PageAm) : 'unknown';
}

/**
 * A page's kind from its header alone (postgres-wal.md §5a), when the catalog does not know the
 * relation (e.g. template0, which refuses connections): all zero → 'zero'; pd_special == BLCKSZ →
 * heap; a 16-byte special area whose last u16 is a page id 0xFF80/81 → hash/gist, otherwise (a
 * btree cycle id ≤ 0xFF7F) → btree; an 8-byte special area → sequence (magic 0x1717), SP-GiST
 * (0xFF82), BRIN (0xF091–0xF093), else GIN; anything else 'unknown'.
 */
export function classifyPageHeuristic(page: Uint8Array): PageAm {
  const p = view(page);
  if (isAllZeroPage(p)) return 'zero';
  const special = p.readUInt16LE(PD_SPECIAL);
  if (special === BLCKSZ) return 'heap';
  if (special > BLCKSZ || special < SIZE_OF_PAGE_HEADER) return 'unknown';
  const size = BLCKSZ - special;
  const pageId = p.readUInt16LE(BLCKSZ - 2);
  if (size === BT_OPAQUE_SIZE) {
    if (pageId === HASHO_PAGE_ID) return 'hash';
    if (pageId === GIST_PAGE_ID) return 'gist';
    return pageId <= MAX_BT_CYCLE_ID ? 'btree' : 'unknown';
  }
  if (size === MAXIMUM_ALIGNOF) {
    if (p.readUInt32LE(special) === SEQ_MAGIC) return 'sequence';
    if (pageId === SPGIST_PAGE_ID) return 'spgist';
    if (pageId >= BRIN_PAGETYPE_META && pageId <= BRIN_PAGETYPE_REGULAR) return 'brin';
    return 'gin';
  }
  return 'unknown';
}
