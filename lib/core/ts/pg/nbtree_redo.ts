/**
 * Redo of PostgreSQL 15 B-tree records (rmgr 11) one block at a time: TS twin of
 * native/pg/nbtree_redo.{h,cc}, function for function, same checks, same error texts. Mirrors
 * REL_15_STABLE src/backend/access/nbtree/nbtxlog.c (btree_redo and its btree_xlog_* functions)
 * and the parts of nbtdedup.c it calls; byte layouts from access/nbtree.h and access/nbtxlog.h.
 * `btreeRedo` runs only the stored target block's part of the record, in PostgreSQL's order, and
 * sets pd_lsn where PostgreSQL does; it throws PageError where the record cannot be applied.
 *
 * What every function skips, and why: buffer locks and their ordering (a page is redone by one
 * caller on a private copy); hot-standby conflicts (DELETE's latestRemovedXid, REUSE_PAGE: no
 * queries run on these pages); the incomplete-split and invalid-page bookkeeping PostgreSQL keeps
 * for the end of recovery (Strata redoes pages on demand and never finishes a recovery; the flags
 * themselves are redone). Checks PostgreSQL leaves to Assert are made here, and every length and
 * offset read from the record or the page is checked before use.
 */
import {
  FIRST_OFFSET_NUMBER, INVALID_OFFSET_NUMBER, ITEM_ID_SIZE, PageError, SIZE_OF_PAGE_HEADER_DATA, itemIdGetLength,
  itemIdGetOffset, pageAddItem, pageGetLower, pageGetMaxOffsetNumber, pageGetSpecial, pageGetTempPageCopySpecial,
  pageGetUpper, pageIndexMultiDelete, pageIndexTupleDelete, pageIndexTupleOverwrite, pageInit,
  pageSetLower, pageSetLsn, pageSetUpper,
} from './bufpage';
import { BLCKSZ, MAXALIGN_BYTES, loadLe16, loadLe32, maxAlign, storeLe16, storeLe32 } from './pg_format';
import { copyBytes } from '../../../bytes';
import { RedoAction, initBufferForRedo, readBufferForRedo, type RedoRecordView } from './redo_record';

// xl_info & 0xF0 of btree records (access/nbtxlog.h).
export const XLOG_BTREE_INSERT_LEAF = 0x00;
export const XLOG_BTREE_INSERT_UPPER = 0x10;
export const XLOG_BTREE_INSERT_META = 0x20;
export const XLOG_BTREE_SPLIT_L = 0x30;
export const XLOG_BTREE_SPLIT_R = 0x40;
export const XLOG_BTREE_INSERT_POST = 0x50;
export const XLOG_BTREE_DEDUP = 0x60;
export const XLOG_BTREE_DELETE = 0x70;
export const XLOG_BTREE_UNLINK_PAGE = 0x80;
export const XLOG_BTREE_UNLINK_PAGE_META = 0x90;
export const XLOG_BTREE_NEWROOT = 0xa0;
export const XLOG_BTREE_MARK_PAGE_HALFDEAD = 0xb0;
export const XLOG_BTREE_VACUUM = 0xc0;
export const XLOG_BTREE_REUSE_PAGE = 0xd0;
export const XLOG_BTREE_META_CLEANUP = 0xe0;

/** BTPageOpaqueData: u32 btpo_prev, u32 btpo_next, u32 btpo_level, u16 btpo_flags, u16 btpo_cycleid. */
export const BT_PAGE_OPAQUE_SIZE = 16;
export const BTPO_PREV = 0;
export const BTPO_NEXT = 4;
export const BTPO_LEVEL = 8;
export const BTPO_FLAGS = 12;
export const BTPO_CYCLEID = 14;

export const BTP_LEAF = 1 << 0;
export const BTP_ROOT = 1 << 1;
export const BTP_DELETED = 1 << 2;
export const BTP_META = 1 << 3;
export const BTP_HALF_DEAD = 1 << 4;
export const BTP_SPLIT_END = 1 << 5;
export const BTP_HAS_GARBAGE = 1 << 6;
export const BTP_INCOMPLETE_SPLIT = 1 << 7;
export const BTP_HAS_FULLXID = 1 << 8;

/** P_NONE: no sibling (block 0 is the metapage, never a sibling). */
export const P_NONE = 0;
export const BTREE_METAPAGE = 0;
export const BTREE_MAGIC = 0x053162;
export const BTREE_NOVAC_VERSION = 3;
export const BTREE_VERSION = 4;

/** BTMetaPageData at PageGetContents (page + 24): field offsets from the page start, 48 bytes. */
export const BTM_MAGIC = 24;
export const BTM_VERSION = 28;
export const BTM_ROOT = 32;
export const BTM_LEVEL = 36;
export const BTM_FASTROOT = 40;
export const BTM_FASTLEVEL = 44;
export const BTM_LAST_CLEANUP_NUM_DELPAGES = 48;
/** float8, after 4 bytes of padding. */
export const BTM_LAST_CLEANUP_NUM_HEAP_TUPLES = 56;
export const BTM_ALLEQUALIMAGE = 64;
/** pd_lower of a metapage. */
export const BTM_END = 72;

// IndexTupleData: ItemPointerData t_tid (u16 bi_hi, u16 bi_lo, u16 ip_posid), u16 t_info.
export const SIZE_OF_INDEX_TUPLE_DATA = 8;
export const SIZE_OF_ITEM_POINTER = 6;
const TUPLE_INFO_OFFSET = 6;
export const INDEX_SIZE_MASK = 0x1fff;
/** INDEX_AM_RESERVED_BIT. */
export const INDEX_ALT_TID_MASK = 0x2000;
export const BT_OFFSET_MASK = 0x0fff;
export const BT_IS_POSTING = 0x2000;

const P_HIKEY = 1;
const P_FIRSTKEY = 2;
/** pd_special of every btree page (_bt_pageinit asks for 16 bytes of special space). */
export const BT_SPECIAL = BLCKSZ - BT_PAGE_OPAQUE_SIZE;
/** BTMaxItemSize(page): 2704 bytes. */
export const BT_MAX_ITEM_SIZE =
  Math.floor((BLCKSZ - maxAlign(SIZE_OF_PAGE_HEADER_DATA + 3 * ITEM_ID_SIZE + 3 * SIZE_OF_ITEM_POINTER) -
    maxAlign(BT_PAGE_OPAQUE_SIZE)) / 3) & ~(MAXALIGN_BYTES - 1);
/** MaxIndexTuplesPerPage: 408. */
export const MAX_INDEX_TUPLES_PER_PAGE =
  Math.floor((BLCKSZ - SIZE_OF_PAGE_HEADER_DATA) / (maxAlign(SIZE_OF_INDEX_TUPLE_DATA + 1) + ITEM_ID_SIZE));
const MAX_LINE_POINTERS = Math.floor((BLCKSZ - SIZE_OF_PAGE_HEADER_DATA) / ITEM_ID_SIZE);

// Main data and block data structs (sizes in bytes).
const SIZE_OF_BTREE_INSERT = 2; // u16 offnum
const SIZE_OF_BTREE_SPLIT = 10; // u32 level, u16 firstrightoff, u16 newitemoff, u16 postingoff
const SIZE_OF_BTREE_DEDUP = 2; // u16 nintervals
const SIZE_OF_BTREE_VACUUM = 4; // u16 ndeleted, u16 nupdated
const SIZE_OF_BTREE_DELETE = 8; // u32 latestRemovedXid, u16 ndeleted, u16 nupdated
const SIZE_OF_BTREE_UPDATE = 2; // u16 ndeletedtids, then that many u16 posting offsets
const SIZE_OF_BTREE_MARK_PAGE_HALFDEAD = 20; // u16 poffset, pad, u32 leafblk, leftblk, rightblk, topparent
/** u32 leftsib, rightsib, level, pad, u64 safexid, u32 leafleftsib, leafrightsib, leaftopparent. */
const SIZE_OF_BTREE_UNLINK_PAGE = 36;
const SIZE_OF_BTREE_NEWROOT = 8; // u32 rootblk, u32 level
/** u32 version, root, level, fastroot, fastlevel, last_cleanup_num_delpages, bool allequalimage, pad. */
const SIZE_OF_BTREE_METADATA = 28;
const SIZE_OF_BT_DEDUP_INTERVAL = 4; // u16 baseoff, u16 nitems
/** btm_last_cleanup_num_heap_tuples = -1.0 as a little-endian float8 (high word; the low word is 0). */
const MINUS_ONE_FLOAT8_HIGH = 0xbff00000;

// ---- index tuples: (buffer, offset) pairs ----

function indexTupleSize(b: Uint8Array, t: number): number { return loadLe16(b, t + TUPLE_INFO_OFFSET) & INDEX_SIZE_MASK; }
function tupleInfo(b: Uint8Array, t: number): number { return loadLe16(b, t + TUPLE_INFO_OFFSET); }
function setTupleInfo(b: Uint8Array, t: number, v: number): void { storeLe16(b, t + TUPLE_INFO_OFFSET, v); }
/** ItemPointerData's block number: two u16 halves, high first. */
function tidBlock(b: Uint8Array, tid: number): number { return ((loadLe16(b, tid) << 16) | loadLe16(b, tid + 2)) >>> 0; }
function tidOffset(b: Uint8Array, tid: number): number { return loadLe16(b, tid + 4); }
function setTidBlock(b: Uint8Array, tid: number, blk: number): void {
  storeLe16(b, tid, blk >>> 16);
  storeLe16(b, tid + 2, blk & 0xffff);
}
function setTidOffset(b: Uint8Array, tid: number, off: number): void { storeLe16(b, tid + 4, off); }

function isPivot(b: Uint8Array, t: number): boolean {
  return (tupleInfo(b, t) & INDEX_ALT_TID_MASK) !== 0 && (tidOffset(b, t) & BT_IS_POSTING) === 0;
}
function isPosting(b: Uint8Array, t: number): boolean {
  return (tupleInfo(b, t) & INDEX_ALT_TID_MASK) !== 0 && (tidOffset(b, t) & BT_IS_POSTING) !== 0;
}
function nPosting(b: Uint8Array, t: number): number { return tidOffset(b, t) & BT_OFFSET_MASK; }
function postingOffset(b: Uint8Array, t: number): number { return tidBlock(b, t); }

/** A posting list tuple whose TID array lies inside the tuple (what _bt_posting_valid assumes). */
function checkPostingTuple(b: Uint8Array, t: number, what: string): void {
  if (!isPosting(b, t)) throw new PageError(`${what} is not a posting list tuple`);
  const off = postingOffset(b, t);
  const n = nPosting(b, t);
  if (n < 2 || off < SIZE_OF_INDEX_TUPLE_DATA || off + n * SIZE_OF_ITEM_POINTER > indexTupleSize(b, t)) {
    throw new PageError(`${what} has a posting list outside the tuple (offset ${off}, ${n} TIDs, tuple size ${indexTupleSize(b, t)})`);
  }
}

/** BTreeTupleSetPosting on a tuple being formed. */
function setPosting(b: Uint8Array, t: number, nhtids: number, postingoffset: number): void {
  setTupleInfo(b, t, tupleInfo(b, t) | INDEX_ALT_TID_MASK);
  setTidOffset(b, t, nhtids | BT_IS_POSTING);
  setTidBlock(b, t, postingoffset);
}

// ---- btree pages ----

function btNext(p: Uint8Array): number { return loadLe32(p, BT_SPECIAL + BTPO_NEXT); }
function btFlags(p: Uint8Array): number { return loadLe16(p, BT_SPECIAL + BTPO_FLAGS); }
function setBtPrev(p: Uint8Array, v: number): void { storeLe32(p, BT_SPECIAL + BTPO_PREV, v); }
function setBtNext(p: Uint8Array, v: number): void { storeLe32(p, BT_SPECIAL + BTPO_NEXT, v); }
function setBtLevel(p: Uint8Array, v: number): void { storeLe32(p, BT_SPECIAL + BTPO_LEVEL, v); }
function setBtFlags(p: Uint8Array, v: number): void { storeLe16(p, BT_SPECIAL + BTPO_FLAGS, v); }
function setBtCycleId(p: Uint8Array, v: number): void { storeLe16(p, BT_SPECIAL + BTPO_CYCLEID, v); }
/** P_FIRSTDATAKEY: the high key takes item 1 on every page but the rightmost of its level. */
function firstDataKey(p: Uint8Array): number { return btNext(p) === P_NONE ? P_HIKEY : P_FIRSTKEY; }

/** An existing page a record changes must be a btree page: 16 bytes of special space, sane pointers. */
function checkBtreePage(page: Uint8Array): void {
  const lower = pageGetLower(page);
  const upper = pageGetUpper(page);
  const special = pageGetSpecial(page);
  if (special !== BT_SPECIAL) throw new PageError(`not a btree page: pd_special = ${special}`);
  if (lower < SIZE_OF_PAGE_HEADER_DATA || lower > upper || upper > special) {
    throw new PageError(`corrupted page pointers: lower = ${lower}, upper = ${upper}, special = ${special}`);
  }
}

/** Line pointer length of the item btItem last returned. */
let itemLpLen = 0;

/**
 * PageGetItem of item `offnum`, checked: inside the line pointer array, with storage inside
 * [pd_upper, pd_special), MAXALIGNed, holding a whole index tuple (IndexTupleSize <= lp_len).
 * Returns the tuple's offset in the page; its ItemIdGetLength is left in itemLpLen.
 */
function btItem(page: Uint8Array, offnum: number): number {
  const maxoff = pageGetMaxOffsetNumber(page);
  if (offnum < FIRST_OFFSET_NUMBER || offnum > maxoff) {
    throw new PageError(`item offset ${offnum >>> 0} is not on the page (${maxoff} items)`);
  }
  const off = itemIdGetOffset(page, offnum);
  const len = itemIdGetLength(page, offnum);
  if (len < SIZE_OF_INDEX_TUPLE_DATA || off < pageGetUpper(page) || off + len > pageGetSpecial(page) || off !== maxAlign(off)) {
    throw new PageError(`corrupted line pointer ${offnum}: offset = ${off}, length = ${len}`);
  }
  const size = indexTupleSize(page, off);
  if (size < SIZE_OF_INDEX_TUPLE_DATA || size > len) {
    throw new PageError(`index tuple at item ${offnum} has size ${size} (line pointer length ${len})`);
  }
  itemLpLen = len;
  return off;
}

/** _bt_pageinit: PageInit with the opaque data as special space. */
function btreePageInit(page: Uint8Array): void { pageInit(page, BT_PAGE_OPAQUE_SIZE); }

// ---- the stored record ----

/** Checked sequential reads of a record's bytes: `take` returns the offset of the bytes taken. */
class DataReader {
  private pos: number;

  constructor(readonly buf: Uint8Array, off: number, private readonly end: number) {
    this.pos = off;
  }

  remaining(): number { return this.end - this.pos; }

  take(n: number, what: string): number {
    if (n > this.remaining()) {
      throw new PageError(`block data too short for ${what} (${n} bytes needed, ${this.remaining()} left)`);
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }

  /** An index tuple logged as MAXALIGN(IndexTupleSize) bytes (split records); its length goes to takenSize. */
  takeAlignedTuple(what: string): number {
    if (this.remaining() < SIZE_OF_INDEX_TUPLE_DATA) throw new PageError(`block data too short for ${what}`);
    const tupleSize = indexTupleSize(this.buf, this.pos);
    if (tupleSize < SIZE_OF_INDEX_TUPLE_DATA) throw new PageError(`${what} smaller than a tuple header`);
    this.takenSize = maxAlign(tupleSize);
    return this.take(this.takenSize, what);
  }

  takenSize = 0;
}

function blockData(r: RedoRecordView): DataReader {
  return new DataReader(r.buf, r.blockDataOff, r.blockDataOff + r.blockDataLen);
}

function requireMainData(r: RedoRecordView, size: number, what: string): void {
  if (r.mainDataLen < size) throw new PageError(`main data shorter than ${what} (${r.mainDataLen} < ${size})`);
}

/** The block number of another block of the same record (XLogRecGetBlockTag). */
function blockNumberOf(r: RedoRecordView, blockId: number): number {
  const b = r.findBlock(blockId);
  if (b === null) throw new PageError(`record has no block id ${blockId}`);
  return b.blockNumber;
}

function noPart(r: RedoRecordView, fn: string): PageError {
  return new PageError(`${fn} changes no page registered as block id ${r.targetId}`);
}

/** XLogReadBufferForRedo for the stored block (redo_record.ts): false (BLK_DONE) when the page already has this record. */
function needsRedo(r: RedoRecordView, page: Uint8Array): boolean {
  return readBufferForRedo(r, page) === RedoAction.NeedsRedo;
}

function setLsn(r: RedoRecordView, page: Uint8Array): void { pageSetLsn(page, r.lsnHi, r.lsnLo); }

// ---- scratch buffers (redo is synchronous; one of each is enough) ----

const tempPage = new Uint8Array(BLCKSZ);
const newItemBuf = new Uint8Array(BLCKSZ);
const npostingBuf = new Uint8Array(BLCKSZ);
const tupleBuf = new Uint8Array(BLCKSZ);
const restoreOffs = new Int32Array(MAX_INDEX_TUPLES_PER_PAGE);
const restoreSizes = new Int32Array(MAX_INDEX_TUPLES_PER_PAGE);
const itemnos = new Uint16Array(MAX_LINE_POINTERS);

// ---- shared steps ----

/**
 * _bt_restore_page: the page is freshly initialized and buf[from, from + len) holds what was its
 * [pd_upper, pd_special) — tuples in reverse item order, each MAXALIGNed. They go back in item order.
 */
function restoreBtreePage(page: Uint8Array, buf: Uint8Array, from: number, len: number): void {
  let nitems = 0;
  const data = new DataReader(buf, from, from + len);
  while (data.remaining() > 0) {
    if (nitems === MAX_INDEX_TUPLES_PER_PAGE) throw new PageError('logged page holds more than 408 index tuples');
    restoreOffs[nitems] = data.takeAlignedTuple('a logged index tuple');
    restoreSizes[nitems] = data.takenSize;
    nitems++;
  }
  for (let i = nitems - 1; i >= 0; i--) {
    if (pageAddItem(page, buf, restoreOffs[i], restoreSizes[i], nitems - i, false, false) === INVALID_OFFSET_NUMBER) {
      throw new PageError('_bt_restore_page: cannot add item to page');
    }
  }
}

/** _bt_restore_meta: the metapage rebuilt from the block's xl_btree_metadata. */
function restoreMeta(r: RedoRecordView, page: Uint8Array): void {
  initBufferForRedo(r, page);
  if (r.targetBlockNumber() !== BTREE_METAPAGE) throw new PageError(`metapage record on block ${r.targetBlockNumber()}`);
  if (r.blockDataLen !== SIZE_OF_BTREE_METADATA) {
    throw new PageError(`xl_btree_metadata of ${r.blockDataLen} bytes (expected 28)`);
  }
  const b = r.buf;
  const md = r.blockDataOff;
  const version = loadLe32(b, md);
  if (version < BTREE_NOVAC_VERSION || version > BTREE_VERSION) throw new PageError(`btree metapage version ${version}`);
  btreePageInit(page);
  storeLe32(page, BTM_MAGIC, BTREE_MAGIC);
  storeLe32(page, BTM_VERSION, version);
  storeLe32(page, BTM_ROOT, loadLe32(b, md + 4));
  storeLe32(page, BTM_LEVEL, loadLe32(b, md + 8));
  storeLe32(page, BTM_FASTROOT, loadLe32(b, md + 12));
  storeLe32(page, BTM_FASTLEVEL, loadLe32(b, md + 16));
  storeLe32(page, BTM_LAST_CLEANUP_NUM_DELPAGES, loadLe32(b, md + 20));
  storeLe32(page, BTM_LAST_CLEANUP_NUM_HEAP_TUPLES + 4, MINUS_ONE_FLOAT8_HIGH);
  page[BTM_ALLEQUALIMAGE] = b[md + 24];
  setBtFlags(page, BTP_META);
  // pd_lower just past the metadata, so a compressed full-page image keeps it.
  pageSetLower(page, BTM_END);
  setLsn(r, page);
}

/** _bt_clear_incomplete_split: the child whose split a downlink insertion finishes. */
function clearIncompleteSplit(r: RedoRecordView, page: Uint8Array): void {
  if (!needsRedo(r, page)) return;
  checkBtreePage(page);
  const flags = btFlags(page);
  if ((flags & BTP_INCOMPLETE_SPLIT) === 0) throw new PageError('child page has no incomplete split to clear');
  setBtFlags(page, flags & ~BTP_INCOMPLETE_SPLIT);
  setLsn(r, page);
}

/**
 * A leaf page's dummy high key during page deletion: a bare header whose t_tid block is the top
 * parent (BTreeTupleSetTopParent), added as item 1.
 */
function addTopParentHighKey(page: Uint8Array, topparent: number): void {
  const t = new Uint8Array(SIZE_OF_INDEX_TUPLE_DATA);
  setTupleInfo(t, 0, SIZE_OF_INDEX_TUPLE_DATA);
  setTidBlock(t, 0, topparent);
  setTupleInfo(t, 0, tupleInfo(t, 0) | INDEX_ALT_TID_MASK); // BTreeTupleSetNAtts(itup, 0, false)
  setTidOffset(t, 0, 0);
  if (pageAddItem(page, t, 0, SIZE_OF_INDEX_TUPLE_DATA, P_HIKEY, false, false) === INVALID_OFFSET_NUMBER) {
    throw new PageError('could not add dummy high key to half-dead page');
  }
}

/**
 * _bt_swap_posting: newItemBuf (a mutable copy of the logged original new item) swaps its heap TID
 * with the one at `postingoff` in posting list tuple page[op]; the new posting list, the same size as
 * the old, goes to npostingBuf (MAXALIGN(IndexTupleSize) bytes, padding copied along).
 */
function swapPosting(page: Uint8Array, op: number, postingoff: number): void {
  checkPostingTuple(page, op, 'the posting list being split');
  const nhtids = nPosting(page, op);
  if (!(postingoff > 0 && postingoff < nhtids)) {
    throw new PageError(`posting list tuple with ${nhtids} items cannot be split at offset ${postingoff}`);
  }
  if ((tupleInfo(newItemBuf, 0) & INDEX_ALT_TID_MASK) !== 0) {
    throw new PageError('new item of a posting list split is not a plain tuple');
  }
  copyBytes(page, op, npostingBuf, 0, maxAlign(indexTupleSize(page, op)));
  const replacepos = postingOffset(page, op) + postingoff * SIZE_OF_ITEM_POINTER;
  npostingBuf.copyWithin(replacepos + SIZE_OF_ITEM_POINTER, replacepos,
    replacepos + (nhtids - postingoff - 1) * SIZE_OF_ITEM_POINTER);
  copyBytes(newItemBuf, 0, npostingBuf, replacepos, SIZE_OF_ITEM_POINTER);
  // The new item takes the old posting list's largest TID.
  const maxTid = op + postingOffset(page, op) + (nhtids - 1) * SIZE_OF_ITEM_POINTER;
  copyBytes(page, maxTid, newItemBuf, 0, SIZE_OF_ITEM_POINTER);
}

/**
 * _bt_form_posting into `out`: base's key with `nhtids` TIDs from htids (a posting list when more
 * than one); returns the new tuple's size. Bytes up to the MAXALIGNed size are zeroed first (palloc0).
 */
function formPosting(b: Uint8Array, base: number, htids: Uint8Array, nhtids: number, out: Uint8Array): number {
  const keysize = isPosting(b, base) ? postingOffset(b, base) : indexTupleSize(b, base);
  const newsize = nhtids > 1 ? maxAlign(keysize + nhtids * SIZE_OF_ITEM_POINTER) : keysize;
  if (newsize > INDEX_SIZE_MASK) throw new PageError(`posting list tuple of ${newsize} bytes`);
  out.fill(0, 0, maxAlign(newsize));
  copyBytes(b, base, out, 0, keysize);
  setTupleInfo(out, 0, (tupleInfo(out, 0) & ~INDEX_SIZE_MASK) | newsize);
  if (nhtids > 1) {
    setPosting(out, 0, nhtids, keysize);
    copyBytes(htids, 0, out, keysize, nhtids * SIZE_OF_ITEM_POINTER);
  } else {
    setTupleInfo(out, 0, tupleInfo(out, 0) & ~INDEX_ALT_TID_MASK);
    copyBytes(htids, 0, out, 0, SIZE_OF_ITEM_POINTER);
  }
  return newsize;
}

// ---- deduplication (nbtdedup.c), as btree_xlog_dedup re-runs it ----

/** BTDedupStateData, as redo uses it; `logged` points at the record's intervals (u16 baseoff, u16 nitems). */
class DedupState {
  /** Conservatively BTMaxItemSize, as PostgreSQL's redo uses (larger than the primary's limit). */
  readonly maxpostingsize = BT_MAX_ITEM_SIZE;
  base = 0;
  baseoff = INVALID_OFFSET_NUMBER;
  basetupsize = 0;
  /** PostgreSQL's palloc(maxpostingsize) TID array. */
  readonly htids = new Uint8Array(BT_MAX_ITEM_SIZE);
  nhtids = 0;
  nitems = 0;
  nintervals = 0;
  logged = 0;
  nlogged = 0;

  reset(logged: number, nlogged: number): void {
    this.base = 0;
    this.baseoff = INVALID_OFFSET_NUMBER;
    this.basetupsize = 0;
    this.nhtids = 0;
    this.nitems = 0;
    this.nintervals = 0;
    this.logged = logged;
    this.nlogged = nlogged;
  }
}

const dedupState = new DedupState();
/** Number of heap TIDs tupleHtids found. */
let htidCount = 0;

/** The heap TIDs of a non-pivot leaf tuple: its own t_tid, or its posting list (offset returned). */
function tupleHtids(page: Uint8Array, t: number): number {
  if (isPivot(page, t)) throw new PageError('deduplication met a pivot tuple on a leaf page');
  if (!isPosting(page, t)) {
    htidCount = 1;
    return t;
  }
  checkPostingTuple(page, t, 'a tuple being deduplicated');
  htidCount = nPosting(page, t);
  return t + postingOffset(page, t);
}

/** _bt_dedup_start_pending. */
function dedupStartPending(st: DedupState, page: Uint8Array, base: number, baseoff: number): void {
  const htids = tupleHtids(page, base);
  const n = htidCount;
  if (n * SIZE_OF_ITEM_POINTER > st.htids.length) throw new PageError(`posting list of ${n} TIDs exceeds BTMaxItemSize`);
  copyBytes(page, htids, st.htids, 0, n * SIZE_OF_ITEM_POINTER);
  st.nhtids = n;
  // basetupsize excludes an existing posting list.
  st.basetupsize = isPosting(page, base) ? postingOffset(page, base) : indexTupleSize(page, base);
  st.nitems = 1;
  st.base = base;
  st.baseoff = baseoff;
}

/** _bt_dedup_save_htid: false when merging itup would pass maxpostingsize. */
function dedupSaveHtid(st: DedupState, page: Uint8Array, itup: number): boolean {
  const htids = tupleHtids(page, itup);
  const n = htidCount;
  const merged = maxAlign(st.basetupsize + (st.nhtids + n) * SIZE_OF_ITEM_POINTER);
  if (merged > st.maxpostingsize) return false;
  copyBytes(page, htids, st.htids, st.nhtids * SIZE_OF_ITEM_POINTER, n * SIZE_OF_ITEM_POINTER);
  st.nhtids += n;
  st.nitems++;
  return true;
}

/** The redo loop's test: the pending posting list is the next logged interval, not yet complete. */
function inPendingInterval(st: DedupState, b: Uint8Array): boolean {
  if (st.nintervals >= st.nlogged) return false;
  const interval = st.logged + st.nintervals * SIZE_OF_BT_DEDUP_INTERVAL;
  return st.baseoff === loadLe16(b, interval) && st.nitems < loadLe16(b, interval + 2);
}

/**
 * _bt_dedup_finish_pending: the pending tuple goes to the end of `newpage`, as a posting list when
 * it merged several items; a merge must be the next logged interval (in record buffer `rec`).
 */
function dedupFinishPending(newpage: Uint8Array, st: DedupState, page: Uint8Array, rec: Uint8Array): void {
  if (st.nitems === 0) throw new PageError('deduplication of a page without data items');
  const tupoff = pageGetMaxOffsetNumber(newpage) + 1;
  if (st.nitems === 1) {
    if (pageAddItem(newpage, page, st.base, indexTupleSize(page, st.base), tupoff, false, false) === INVALID_OFFSET_NUMBER) {
      throw new PageError('deduplication failed to add tuple to page');
    }
  } else {
    const interval = st.logged + st.nintervals * SIZE_OF_BT_DEDUP_INTERVAL;
    if (st.nintervals >= st.nlogged || loadLe16(rec, interval) !== st.baseoff || loadLe16(rec, interval + 2) !== st.nitems) {
      throw new PageError(`deduplication does not reproduce the logged interval ${st.nintervals}`);
    }
    const size = formPosting(page, st.base, st.htids, st.nhtids, tupleBuf);
    if (pageAddItem(newpage, tupleBuf, 0, size, tupoff, false, false) === INVALID_OFFSET_NUMBER) {
      throw new PageError('deduplication failed to add tuple to page');
    }
    st.nintervals++;
  }
  st.nhtids = 0;
  st.nitems = 0;
}

/**
 * _bt_update_posting: the tuple page[orig] without the TIDs at the (ascending) posting-list
 * positions rec[deletetids..] (ndeleted u16s); the new tuple goes to tupleBuf, its size is returned.
 */
function updatePosting(page: Uint8Array, orig: number, rec: Uint8Array, deletetids: number, ndeleted: number): number {
  checkPostingTuple(page, orig, 'the updated tuple');
  const norig = nPosting(page, orig);
  const nhtids = norig - ndeleted;
  if (!(nhtids > 0 && nhtids < norig)) {
    throw new PageError(`cannot delete ${ndeleted} of the ${norig} TIDs of a posting list`);
  }
  const keysize = postingOffset(page, orig);
  const newsize = nhtids > 1 ? maxAlign(keysize + nhtids * SIZE_OF_ITEM_POINTER) : keysize;
  const out = tupleBuf;
  out.fill(0, 0, maxAlign(newsize));
  copyBytes(page, orig, out, 0, keysize);
  setTupleInfo(out, 0, (tupleInfo(out, 0) & ~INDEX_SIZE_MASK) | newsize);
  let htids = 0;
  if (nhtids > 1) {
    setPosting(out, 0, nhtids, keysize);
    htids = keysize;
  } else {
    setTupleInfo(out, 0, tupleInfo(out, 0) & ~INDEX_ALT_TID_MASK);
  }
  let ui = 0;
  let d = 0;
  for (let i = 0; i < norig; i++) {
    if (d < ndeleted && loadLe16(rec, deletetids + 2 * d) === i) {
      d++;
      continue;
    }
    if (ui === nhtids) break; // a deletion offset out of order: caught below
    const src = orig + keysize + i * SIZE_OF_ITEM_POINTER;
    copyBytes(page, src, out, htids + ui * SIZE_OF_ITEM_POINTER, SIZE_OF_ITEM_POINTER);
    ui++;
  }
  if (ui !== nhtids || d !== ndeleted) throw new PageError('posting list deletion offsets do not match the tuple');
  return newsize;
}

/**
 * btree_xlog_updates: each updated posting list tuple is rebuilt without its deleted TIDs and
 * overwritten in place. rec[offsets..] holds nupdated u16 page offsets; `updates` reads the
 * xl_btree_update array.
 */
function btreeXlogUpdates(page: Uint8Array, rec: Uint8Array, offsets: number, updates: DataReader, nupdated: number): void {
  for (let i = 0; i < nupdated; i++) {
    const offnum = loadLe16(rec, offsets + 2 * i);
    const orig = btItem(page, offnum);
    const ndeleted = loadLe16(rec, updates.take(SIZE_OF_BTREE_UPDATE, 'xl_btree_update'));
    const deletetids = updates.take(ndeleted * 2, 'posting list offsets');
    const size = updatePosting(page, orig, rec, deletetids, ndeleted);
    if (!pageIndexTupleOverwrite(page, offnum, tupleBuf, 0, maxAlign(size))) {
      throw new PageError('failed to update partially dead item');
    }
  }
}

/** The shared body of VACUUM and DELETE on their one block: posting list updates, deletions, BTP_HAS_GARBAGE cleared. */
function deleteItems(r: RedoRecordView, page: Uint8Array, ndeleted: number, nupdated: number): void {
  if (!needsRedo(r, page)) return;
  checkBtreePage(page);
  const data = blockData(r);
  const b = r.buf;
  const deleted = data.take(ndeleted * 2, 'deleted offsets');
  if (nupdated > 0) {
    const updated = data.take(nupdated * 2, 'updated offsets');
    btreeXlogUpdates(page, b, updated, data, nupdated);
  }
  if (ndeleted > 0) {
    if (ndeleted > MAX_LINE_POINTERS) throw new PageError(`more deleted offsets than a page holds: ${ndeleted}`);
    for (let i = 0; i < ndeleted; i++) itemnos[i] = loadLe16(b, deleted + 2 * i);
    pageIndexMultiDelete(page, itemnos, ndeleted);
  }
  setBtFlags(page, btFlags(page) & ~BTP_HAS_GARBAGE);
  setLsn(r, page);
}

// ---- the record types ----

/**
 * btree_xlog_insert's block 0: the tuple goes in at offnum; INSERT_POST first splits the posting
 * list before it with _bt_swap_posting and inserts the resulting new item.
 */
function insertOnPage(posting: boolean, r: RedoRecordView, page: Uint8Array): void {
  requireMainData(r, SIZE_OF_BTREE_INSERT, 'xl_btree_insert');
  const b = r.buf;
  const offnum = loadLe16(b, r.mainDataOff);
  if (!needsRedo(r, page)) return;
  checkBtreePage(page);
  const data = blockData(r);
  let postingoff = 0;
  if (posting) postingoff = loadLe16(b, data.take(2, 'postingoff'));
  const datalen = data.remaining();
  const item = data.take(datalen, 'the new tuple');
  if (datalen < SIZE_OF_INDEX_TUPLE_DATA || indexTupleSize(b, item) !== datalen) {
    throw new PageError(`logged tuple of ${datalen} bytes does not match its header`);
  }
  if (!posting) {
    if (pageAddItem(page, b, item, datalen, offnum, false, false) === INVALID_OFFSET_NUMBER) {
      throw new PageError('failed to add new item');
    }
  } else {
    copyBytes(b, item, newItemBuf, 0, datalen);
    const oposting = btItem(page, offnum - 1);
    swapPosting(page, oposting, postingoff);
    // Replace the existing posting list with its post-split version, then insert the final new item.
    copyBytes(npostingBuf, 0, page, oposting, maxAlign(indexTupleSize(npostingBuf, 0)));
    if (pageAddItem(page, newItemBuf, 0, datalen, offnum, false, false) === INVALID_OFFSET_NUMBER) {
      throw new PageError('failed to add posting split new item');
    }
  }
  setLsn(r, page);
}

/**
 * INSERT_LEAF / INSERT_UPPER / INSERT_META / INSERT_POST: btree_xlog_insert. Block 0 is the page
 * inserted into; block 1 (non-leaf) the child whose incomplete split the downlink finishes; block 2
 * (INSERT_META) the metapage. PostgreSQL changes them holding coupled locks on the primary; replay
 * needs none, as PostgreSQL says.
 */
function btreeXlogInsert(isleaf: boolean, ismeta: boolean, posting: boolean, r: RedoRecordView, page: Uint8Array): void {
  switch (r.targetId) {
    case 0: insertOnPage(posting, r, page); return;
    case 1:
      if (isleaf) break;
      clearIncompleteSplit(r, page);
      return;
    case 2:
      if (!ismeta) break;
      restoreMeta(r, page);
      return;
    default: break;
  }
  throw noPart(r, 'btree_xlog_insert');
}

interface SplitRecord {
  level: number;
  firstrightoff: number;
  newitemoff: number;
  postingoff: number;
}

/** btree_xlog_split's block 1: the new right page rebuilt from the logged tuples. */
function splitRightPage(r: RedoRecordView, x: SplitRecord, page: Uint8Array): void {
  const origpagenumber = blockNumberOf(r, 0);
  const sibling = r.findBlock(2);
  const spagenumber = sibling !== null ? sibling.blockNumber : P_NONE;
  initBufferForRedo(r, page);
  btreePageInit(page);
  setBtPrev(page, origpagenumber);
  setBtNext(page, spagenumber);
  setBtLevel(page, x.level);
  setBtFlags(page, x.level === 0 ? BTP_LEAF : 0);
  setBtCycleId(page, 0);
  restoreBtreePage(page, r.buf, r.blockDataOff, r.blockDataLen);
  setLsn(r, page);
}

/** Adds one item to the left page being rebuilt at leftoff; returns the next offset. */
function addLeftItem(leftpage: Uint8Array, b: Uint8Array, item: number, size: number, leftoff: number, what: string): number {
  if (pageAddItem(leftpage, b, item, size, leftoff, false, false) === INVALID_OFFSET_NUMBER) {
    throw new PageError(`failed to add ${what} to left page after split`);
  }
  return leftoff + 1;
}

/**
 * btree_xlog_split's block 0: the left half rebuilt on a temporary page in item order (high key,
 * the items before firstrightoff, the new item or the split posting list where they go), which keeps
 * the tuples' physical order as _bt_split made it.
 */
function splitLeftPage(newitemonleft: boolean, r: RedoRecordView, x: SplitRecord, origpage: Uint8Array): void {
  const rightpagenumber = blockNumberOf(r, 1);
  if (!needsRedo(r, origpage)) return;
  checkBtreePage(origpage);
  const b = r.buf;
  const data = blockData(r);
  let newitemsz = 0;
  let replacepostingoff = INVALID_OFFSET_NUMBER;
  if (newitemonleft || x.postingoff !== 0) {
    const at = data.takeAlignedTuple('the new item');
    newitemsz = data.takenSize;
    copyBytes(b, at, newItemBuf, 0, newitemsz);
    if (x.postingoff !== 0) {
      // The posting list being split is the item just before the new item's offset.
      replacepostingoff = x.newitemoff - 1;
      swapPosting(origpage, btItem(origpage, replacepostingoff), x.postingoff);
    }
  }
  const leftHikey = data.takeAlignedTuple("the left page's high key");
  const leftHikeysz = data.takenSize;
  if (data.remaining() !== 0) throw new PageError(`left page data has ${data.remaining()} unexpected bytes`);

  const leftpage = tempPage;
  pageGetTempPageCopySpecial(origpage, leftpage);
  let leftoff = addLeftItem(leftpage, b, leftHikey, leftHikeysz, P_HIKEY, 'high key');
  const maxoff = pageGetMaxOffsetNumber(origpage);
  let off = firstDataKey(origpage);
  for (; off < x.firstrightoff; off++) {
    if (off > maxoff) throw new PageError(`firstrightoff ${x.firstrightoff} is past the page's items`);
    if (off === replacepostingoff) {
      // The split posting list replaces the original one.
      leftoff = addLeftItem(leftpage, npostingBuf, 0, maxAlign(indexTupleSize(npostingBuf, 0)), leftoff, 'new posting list item');
      continue;
    }
    if (newitemonleft && off === x.newitemoff) leftoff = addLeftItem(leftpage, newItemBuf, 0, newitemsz, leftoff, 'new item');
    const item = btItem(origpage, off);
    leftoff = addLeftItem(leftpage, origpage, item, itemLpLen, leftoff, 'old item');
  }
  // The new item may go at the end.
  if (newitemonleft && off === x.newitemoff) addLeftItem(leftpage, newItemBuf, 0, newitemsz, leftoff, 'new item');

  origpage.set(leftpage, 0); // PageRestoreTempPage
  setBtFlags(origpage, BTP_INCOMPLETE_SPLIT | (x.level === 0 ? BTP_LEAF : 0));
  setBtNext(origpage, rightpagenumber);
  setBtCycleId(origpage, 0);
  setLsn(r, origpage);
}

/**
 * SPLIT_L / SPLIT_R: btree_xlog_split. Block 0 is the original (left) page, block 1 the new right
 * page (will_init), block 2 the old right sibling whose left link moves, block 3 (non-leaf) the
 * child whose incomplete split this split's downlink insertion finishes. PostgreSQL keeps all of
 * them locked until the end; replay of one page at a time needs no lock.
 */
function btreeXlogSplit(newitemonleft: boolean, r: RedoRecordView, page: Uint8Array): void {
  requireMainData(r, SIZE_OF_BTREE_SPLIT, 'xl_btree_split');
  const b = r.buf;
  const m = r.mainDataOff;
  const x: SplitRecord = {
    level: loadLe32(b, m), firstrightoff: loadLe16(b, m + 4), newitemoff: loadLe16(b, m + 6), postingoff: loadLe16(b, m + 8),
  };
  switch (r.targetId) {
    case 0: splitLeftPage(newitemonleft, r, x, page); return;
    case 1: splitRightPage(r, x, page); return;
    case 2:
      if (needsRedo(r, page)) {
        checkBtreePage(page);
        setBtPrev(page, blockNumberOf(r, 1));
        setLsn(r, page);
      }
      return;
    case 3:
      if (x.level === 0) break;
      clearIncompleteSplit(r, page);
      return;
    default: break;
  }
  throw noPart(r, 'btree_xlog_split');
}

/**
 * DEDUP: btree_xlog_dedup. Deduplication is run again over the page's data items, merging exactly
 * the logged intervals, into a temporary page that replaces the page.
 */
function btreeXlogDedup(r: RedoRecordView, page: Uint8Array): void {
  if (r.targetId !== 0) throw noPart(r, 'btree_xlog_dedup');
  requireMainData(r, SIZE_OF_BTREE_DEDUP, 'xl_btree_dedup');
  const b = r.buf;
  const nlogged = loadLe16(b, r.mainDataOff);
  if (!needsRedo(r, page)) return;
  checkBtreePage(page);
  const data = blockData(r);
  const st = dedupState;
  st.reset(data.take(nlogged * SIZE_OF_BT_DEDUP_INTERVAL, 'the dedup intervals'), nlogged);
  const minoff = firstDataKey(page);
  const maxoff = pageGetMaxOffsetNumber(page);
  const newpage = tempPage;
  pageGetTempPageCopySpecial(page, newpage);
  if (btNext(page) !== P_NONE) {
    const hikey = btItem(page, P_HIKEY);
    if (pageAddItem(newpage, page, hikey, itemLpLen, P_HIKEY, false, false) === INVALID_OFFSET_NUMBER) {
      throw new PageError('deduplication failed to add highkey');
    }
  }
  for (let offnum = minoff; offnum <= maxoff; offnum++) {
    const itup = btItem(page, offnum);
    if (offnum === minoff) {
      dedupStartPending(st, page, itup, offnum);
    } else if (inPendingInterval(st, b)) {
      if (!dedupSaveHtid(st, page, itup)) throw new PageError('deduplication failed to add heap tid to pending posting list');
    } else {
      dedupFinishPending(newpage, st, page, b);
      dedupStartPending(st, page, itup, offnum);
    }
  }
  dedupFinishPending(newpage, st, page, b);
  if (st.nintervals !== nlogged) {
    throw new PageError(`deduplication merged ${st.nintervals} intervals, the record logs ${nlogged}`);
  }
  if ((btFlags(page) & BTP_HAS_GARBAGE) !== 0) setBtFlags(newpage, btFlags(newpage) & ~BTP_HAS_GARBAGE);
  page.set(newpage, 0); // PageRestoreTempPage
  setLsn(r, page);
}

/**
 * VACUUM: btree_xlog_vacuum. PostgreSQL takes a cleanup lock first, as btvacuumpage does; a private
 * page needs none.
 */
function btreeXlogVacuum(r: RedoRecordView, page: Uint8Array): void {
  if (r.targetId !== 0) throw noPart(r, 'btree_xlog_vacuum');
  requireMainData(r, SIZE_OF_BTREE_VACUUM, 'xl_btree_vacuum');
  deleteItems(r, page, loadLe16(r.buf, r.mainDataOff), loadLe16(r.buf, r.mainDataOff + 2));
}

/** DELETE: btree_xlog_delete. Skipped: the recovery conflict on latestRemovedXid (no standby queries). */
function btreeXlogDelete(r: RedoRecordView, page: Uint8Array): void {
  if (r.targetId !== 0) throw noPart(r, 'btree_xlog_delete');
  requireMainData(r, SIZE_OF_BTREE_DELETE, 'xl_btree_delete');
  deleteItems(r, page, loadLe16(r.buf, r.mainDataOff + 4), loadLe16(r.buf, r.mainDataOff + 6));
}

/**
 * MARK_PAGE_HALFDEAD: btree_xlog_mark_page_halfdead. Block 1 is the subtree's parent, which loses
 * the downlink after poffset (poffset's downlink takes its right sibling); block 0 is the leaf,
 * rewritten as an empty half-dead page whose high key points at the top parent. PostgreSQL locks
 * all pages together on the primary; replay of one page needs no lock.
 */
function btreeXlogMarkPageHalfdead(r: RedoRecordView, page: Uint8Array): void {
  requireMainData(r, SIZE_OF_BTREE_MARK_PAGE_HALFDEAD, 'xl_btree_mark_page_halfdead');
  const b = r.buf;
  const m = r.mainDataOff;
  const poffset = loadLe16(b, m);
  if (r.targetId === 1) {
    if (!needsRedo(r, page)) return;
    checkBtreePage(page);
    const rightsib = tidBlock(page, btItem(page, poffset + 1));
    setTidBlock(page, btItem(page, poffset), rightsib);
    pageIndexTupleDelete(page, poffset + 1);
    setLsn(r, page);
    return;
  }
  if (r.targetId !== 0) throw noPart(r, 'btree_xlog_mark_page_halfdead');
  initBufferForRedo(r, page);
  btreePageInit(page);
  setBtPrev(page, loadLe32(b, m + 8)); // leftblk
  setBtNext(page, loadLe32(b, m + 12)); // rightblk
  setBtLevel(page, 0);
  setBtFlags(page, BTP_HALF_DEAD | BTP_LEAF);
  setBtCycleId(page, 0);
  addTopParentHighKey(page, loadLe32(b, m + 16));
  setLsn(r, page);
}

/** UNLINK_PAGE's block 0: the target rewritten as a deleted page holding its safexid (BTPageSetDeleted). */
function unlinkTarget(r: RedoRecordView, page: Uint8Array, leftsib: number, rightsib: number, level: number): void {
  initBufferForRedo(r, page);
  btreePageInit(page);
  setBtPrev(page, leftsib);
  setBtNext(page, rightsib);
  setBtLevel(page, level);
  // BTPageSetDeleted(page, safexid): the page holds only BTDeletedPageData.
  setBtFlags(page, (btFlags(page) & ~BTP_HALF_DEAD) | BTP_DELETED | BTP_HAS_FULLXID | (level === 0 ? BTP_LEAF : 0));
  pageSetLower(page, maxAlign(SIZE_OF_PAGE_HEADER_DATA) + 8);
  pageSetUpper(page, pageGetSpecial(page));
  const safexid = r.mainDataOff + 16;
  page.set(r.buf.subarray(safexid, safexid + 8), maxAlign(SIZE_OF_PAGE_HEADER_DATA));
  setBtCycleId(page, 0);
  setLsn(r, page);
}

/**
 * UNLINK_PAGE / UNLINK_PAGE_META: btree_xlog_unlink_page. Block 0 is the target, rewritten as a
 * deleted page; blocks 1 and 2 its left and right siblings, relinked around it; block 3 the
 * half-dead leaf (when the target is above it), rewritten to point at the next child down; block 4
 * the metapage (_META). PostgreSQL locks left to right on the primary and in replay; one private
 * page at a time needs no lock.
 */
function btreeXlogUnlinkPage(r: RedoRecordView, page: Uint8Array): void {
  requireMainData(r, SIZE_OF_BTREE_UNLINK_PAGE, 'xl_btree_unlink_page');
  const b = r.buf;
  const m = r.mainDataOff;
  const leftsib = loadLe32(b, m);
  const rightsib = loadLe32(b, m + 4);
  const level = loadLe32(b, m + 8);
  switch (r.targetId) {
    case 1: // the left sibling, if any
      if (leftsib === P_NONE) break;
      if (needsRedo(r, page)) {
        checkBtreePage(page);
        setBtNext(page, rightsib);
        setLsn(r, page);
      }
      return;
    case 0: unlinkTarget(r, page, leftsib, rightsib, level); return;
    case 2: // the right sibling
      if (needsRedo(r, page)) {
        checkBtreePage(page);
        setBtPrev(page, leftsib);
        setLsn(r, page);
      }
      return;
    case 3: // the leaf below an internal target
      if (level === 0) break;
      initBufferForRedo(r, page);
      btreePageInit(page);
      setBtFlags(page, BTP_HALF_DEAD | BTP_LEAF);
      setBtPrev(page, loadLe32(b, m + 24)); // leafleftsib
      setBtNext(page, loadLe32(b, m + 28)); // leafrightsib
      setBtLevel(page, 0);
      setBtCycleId(page, 0);
      addTopParentHighKey(page, loadLe32(b, m + 32)); // leaftopparent
      setLsn(r, page);
      return;
    case 4:
      if ((r.info & 0xf0) !== XLOG_BTREE_UNLINK_PAGE_META) break;
      restoreMeta(r, page);
      return;
    default: break;
  }
  throw noPart(r, 'btree_xlog_unlink_page');
}

/**
 * NEWROOT: btree_xlog_newroot. Block 0 is the new root (empty, or the two logged downlinks after a
 * root split), block 1 the old root whose incomplete split this finishes, block 2 the metapage.
 */
function btreeXlogNewroot(r: RedoRecordView, page: Uint8Array): void {
  requireMainData(r, SIZE_OF_BTREE_NEWROOT, 'xl_btree_newroot');
  const level = loadLe32(r.buf, r.mainDataOff + 4);
  switch (r.targetId) {
    case 0:
      initBufferForRedo(r, page);
      btreePageInit(page);
      setBtFlags(page, BTP_ROOT | (level === 0 ? BTP_LEAF : 0));
      setBtPrev(page, P_NONE);
      setBtNext(page, P_NONE);
      setBtLevel(page, level);
      setBtCycleId(page, 0);
      if (level > 0) restoreBtreePage(page, r.buf, r.blockDataOff, r.blockDataLen);
      setLsn(r, page);
      return;
    case 1:
      if (level === 0) break;
      clearIncompleteSplit(r, page);
      return;
    case 2: restoreMeta(r, page); return;
    default: break;
  }
  throw noPart(r, 'btree_xlog_newroot');
}

/**
 * REUSE_PAGE: btree_xlog_reuse_page only resolves hot-standby conflicts and registers no block, so
 * it changes no page; a stored one (which ingest never makes) leaves the page as it is.
 */
function btreeXlogReusePage(): void {}

/**
 * Redoes the target block's part of a btree record (btree_redo's switch) on the 8192-byte `page`
 * and sets pd_lsn where PostgreSQL does. Throws PageError when the record cannot be applied.
 */
export function btreeRedo(r: RedoRecordView, page: Uint8Array): void {
  const info = r.info & 0xf0;
  switch (info) {
    case XLOG_BTREE_INSERT_LEAF: btreeXlogInsert(true, false, false, r, page); break;
    case XLOG_BTREE_INSERT_UPPER: btreeXlogInsert(false, false, false, r, page); break;
    case XLOG_BTREE_INSERT_META: btreeXlogInsert(false, true, false, r, page); break;
    case XLOG_BTREE_SPLIT_L: btreeXlogSplit(true, r, page); break;
    case XLOG_BTREE_SPLIT_R: btreeXlogSplit(false, r, page); break;
    case XLOG_BTREE_INSERT_POST: btreeXlogInsert(true, false, true, r, page); break;
    case XLOG_BTREE_DEDUP: btreeXlogDedup(r, page); break;
    case XLOG_BTREE_VACUUM: btreeXlogVacuum(r, page); break;
    case XLOG_BTREE_DELETE: btreeXlogDelete(r, page); break;
    case XLOG_BTREE_MARK_PAGE_HALFDEAD: btreeXlogMarkPageHalfdead(r, page); break;
    case XLOG_BTREE_UNLINK_PAGE:
    case XLOG_BTREE_UNLINK_PAGE_META: btreeXlogUnlinkPage(r, page); break;
    case XLOG_BTREE_NEWROOT: btreeXlogNewroot(r, page); break;
    case XLOG_BTREE_REUSE_PAGE: btreeXlogReusePage(); break;
    case XLOG_BTREE_META_CLEANUP:
      if (r.targetId !== 0) throw noPart(r, '_bt_restore_meta');
      restoreMeta(r, page);
      break;
    default: throw new PageError(`btree_redo: unknown op code ${info}`);
  }
}
