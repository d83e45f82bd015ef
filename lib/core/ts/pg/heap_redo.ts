/**
 * Redo of heap pages one block at a time, TS twin of native/pg/heap_redo.{h,cc}: PostgreSQL 15's
 * heap_redo and heap2_redo (REL_15_STABLE heapam.c, pruneheap.c), seq_redo (commands/sequence.c)
 * and Strata's visibility-map records (rmgr 255: visibilitymap.c's clear and prepare_truncate).
 * Each function runs only the stored target block's part of its record, in PostgreSQL's order, and
 * throws PageError where PostgreSQL would fail.
 *
 * What every function skips, and why: buffer and cleanup locks (a page is redone by one caller on
 * a private copy), hot-standby conflict resolution (no queries run against these pages), and the
 * free space map (never WAL-logged; XLogRecordPageWithFreeSpace is a hint). The visibility-map
 * bits heap records clear without a VM block reference arrive as rmgr-255 records stored under the
 * VM page (strataVmClear), so the heap functions only clear PD_ALL_VISIBLE on the heap page.
 */
import {
  BLCKSZ, FIRST_COMMAND_ID, FROZEN_TRANSACTION_ID, INVALID_BLOCK_NUMBER, INVALID_TRANSACTION_ID, VISIBILITYMAP_FORKNUM,
  loadLe16, loadLe32, shortAlign, storeLe16, storeLe32,
} from './pg_format';
import {
  FIRST_OFFSET_NUMBER, INVALID_OFFSET_NUMBER, MAX_HEAP_TUPLE_SIZE, PAGE_CONTENTS_OFFSET, PageError, SIZEOF_HEAP_TUPLE_HEADER,
  SIZE_OF_PAGE_HEADER_DATA, itemIdGetLength, itemIdGetOffset, itemIdIsNormal, itemIdSetDead, itemIdSetRedirect,
  itemIdSetUnused, pageAddItem, pageClearAllVisible, pageGetMaxOffsetNumber, pageGetSpecial, pageInit, pageIsNew,
  pageLsnAtLeast, pageRepairFragmentation, pageSetAllVisible, pageSetLsn, pageSetPrunable, pageTruncateLinePointerArray,
} from './bufpage';
import { RedoAction, initBufferForRedo, readBufferForRedo, readBufferForRedoZeroOnError, type RedoRecordView } from './redo_record';

const XLOG_HEAP_INIT_PAGE = 0x80;

// HeapTupleHeaderData field offsets (access/htup_details.h).
const TUP_XMIN = 0;
const TUP_XMAX = 4;
/** t_cid, or t_xvac for pre-9.0 moved tuples. */
const TUP_CID = 8;
/** ItemPointerData: u16 bi_hi, u16 bi_lo, u16 ip_posid. */
const TUP_CTID = 12;
const TUP_INFOMASK2 = 18;
const TUP_INFOMASK = 20;
const TUP_HOFF = 22;

// t_infomask bits.
const HEAP_XMAX_KEYSHR_LOCK = 0x0010;
const HEAP_COMBOCID = 0x0020;
const HEAP_XMAX_EXCL_LOCK = 0x0040;
const HEAP_XMAX_LOCK_ONLY = 0x0080;
const HEAP_XMAX_SHR_LOCK = HEAP_XMAX_EXCL_LOCK | HEAP_XMAX_KEYSHR_LOCK;
const HEAP_LOCK_MASK = HEAP_XMAX_SHR_LOCK | HEAP_XMAX_EXCL_LOCK | HEAP_XMAX_KEYSHR_LOCK;
const HEAP_XMAX_COMMITTED = 0x0400;
const HEAP_XMAX_INVALID = 0x0800;
const HEAP_XMAX_IS_MULTI = 0x1000;
const HEAP_MOVED = 0xc000;
const HEAP_XMAX_BITS = HEAP_XMAX_COMMITTED | HEAP_XMAX_INVALID | HEAP_XMAX_IS_MULTI | HEAP_LOCK_MASK | HEAP_XMAX_LOCK_ONLY;
// t_infomask2 bits.
const HEAP_KEYS_UPDATED = 0x2000;
const HEAP_HOT_UPDATED = 0x4000;

// xl_heap_lock infobits (XLHL_*).
const XLHL_XMAX_IS_MULTI = 0x01;
const XLHL_XMAX_LOCK_ONLY = 0x02;
const XLHL_XMAX_EXCL_LOCK = 0x04;
const XLHL_XMAX_KEYSHR_LOCK = 0x08;
const XLHL_KEYS_UPDATED = 0x10;

// Record flags.
const XLH_INSERT_ALL_VISIBLE_CLEARED = 0x01;
const XLH_INSERT_ALL_FROZEN_SET = 0x20;
const XLH_UPDATE_OLD_ALL_VISIBLE_CLEARED = 0x01;
const XLH_UPDATE_NEW_ALL_VISIBLE_CLEARED = 0x02;
const XLH_UPDATE_PREFIX_FROM_OLD = 0x20;
const XLH_UPDATE_SUFFIX_FROM_OLD = 0x40;
const XLH_DELETE_ALL_VISIBLE_CLEARED = 0x01;
const XLH_DELETE_IS_SUPER = 0x08;
const XLH_DELETE_IS_PARTITION_MOVE = 0x10;
const XLH_FREEZE_XVAC = 0x02;
const XLH_INVALID_XVAC = 0x04;

// Main data and block data sizes (SizeOf* in access/heapam_xlog.h).
const SIZE_OF_HEAP_INSERT = 3;
const SIZE_OF_HEAP_DELETE = 8;
const SIZE_OF_HEAP_UPDATE = 14;
const SIZE_OF_HEAP_LOCK = 8;
const SIZE_OF_HEAP_CONFIRM = 2;
const SIZE_OF_HEAP_INPLACE = 2;
const SIZE_OF_HEAP_PRUNE = 8;
const SIZE_OF_HEAP_VACUUM = 2;
const SIZE_OF_HEAP_FREEZE_PAGE = 6;
/** sizeof(xl_heap_freeze_tuple), padding included. */
const SIZE_OF_HEAP_FREEZE_TUPLE = 12;
const SIZE_OF_HEAP_VISIBLE = 5;
const SIZE_OF_HEAP_MULTI_INSERT = 4;
const SIZE_OF_MULTI_INSERT_TUPLE = 7;
const SIZE_OF_HEAP_HEADER = 5;
/** xl_seq_rec: a RelFileNode. */
const SIZE_OF_SEQ_REC = 12;
const SIZE_OF_VM_CLEAR = 9;
const SIZE_OF_VM_TRUNCATE = 4;
const SEQ_MAGIC = 0x1717;
const MOVED_PARTITIONS_OFFSET_NUMBER = 0xfffd;

// Visibility map geometry (visibilitymap.c): two bits per heap block in the page's contents.
/** MAPSIZE: BLCKSZ - MAXALIGN(page header). */
export const VM_MAP_SIZE = BLCKSZ - PAGE_CONTENTS_OFFSET;
export const VM_HEAP_BLOCKS_PER_BYTE = 4;
/** HEAPBLOCKS_PER_PAGE = 32672. */
export const VM_HEAP_BLOCKS_PER_PAGE = VM_MAP_SIZE * VM_HEAP_BLOCKS_PER_BYTE;
export const VISIBILITYMAP_ALL_VISIBLE = 0x01;
export const VISIBILITYMAP_ALL_FROZEN = 0x02;
export const VISIBILITYMAP_VALID_BITS = 0x03;

/** Where a new tuple is assembled (union tbuf in PostgreSQL). */
const tbuf = new Uint8Array(MAX_HEAP_TUPLE_SIZE);
/** seq_redo's local page. */
const seqPage = new Uint8Array(BLCKSZ);

// ---- shared steps ----

function requireMainData(r: RedoRecordView, size: number, what: string): void {
  if (r.mainDataLen < size) throw new PageError(`main data shorter than ${what}`);
}

function requireTarget(r: RedoRecordView, id: number): void {
  if (r.targetId !== id) throw new PageError(`the record changes no page under block id ${r.targetId}`);
}

function blockNumberOf(r: RedoRecordView, id: number): number {
  const blkno = r.blockNumberById(id);
  if (blkno < 0) throw new PageError(`the record has no block id ${id}`);
  return blkno;
}

/** Checks an offset number against the line pointer array (PostgreSQL writes through it unchecked). */
function requireLinePointer(page: Uint8Array, offnum: number): void {
  const maxoff = pageGetMaxOffsetNumber(page);
  if (offnum < FIRST_OFFSET_NUMBER || offnum > maxoff) {
    throw new PageError(`offset ${offnum} beyond the line pointer array (${maxoff} items)`);
  }
}

/**
 * The page offset of the tuple header at `offnum`: PostgreSQL's "invalid lp" test, plus the bounds it
 * leaves implicit (the tuple and its 23-byte header inside the page).
 */
function heapTupleAt(page: Uint8Array, offnum: number): number {
  if (offnum < FIRST_OFFSET_NUMBER || offnum > pageGetMaxOffsetNumber(page) || !itemIdIsNormal(page, offnum)) {
    throw new PageError('invalid lp');
  }
  const off = itemIdGetOffset(page, offnum);
  const len = itemIdGetLength(page, offnum);
  if (len < SIZEOF_HEAP_TUPLE_HEADER || off < SIZE_OF_PAGE_HEADER_DATA || off + len > BLCKSZ) {
    throw new PageError(`tuple at offset ${offnum} lies outside the page`);
  }
  return off;
}

function clearInfomaskBits(p: Uint8Array, tup: number, bits: number): void {
  storeLe16(p, tup + TUP_INFOMASK, loadLe16(p, tup + TUP_INFOMASK) & ~bits);
}

function clearInfomask2Bits(p: Uint8Array, tup: number, bits: number): void {
  storeLe16(p, tup + TUP_INFOMASK2, loadLe16(p, tup + TUP_INFOMASK2) & ~bits);
}

function setCtid(p: Uint8Array, tup: number, blkno: number, offnum: number): void {
  storeLe16(p, tup + TUP_CTID, blkno >>> 16);
  storeLe16(p, tup + TUP_CTID + 2, blkno & 0xffff);
  storeLe16(p, tup + TUP_CTID + 4, offnum);
}

/** HeapTupleHeaderSetCmin / SetCmax(cid, false): the command id, not a combo id. */
function setCommandId(p: Uint8Array, tup: number, cid: number): void {
  storeLe32(p, tup + TUP_CID, cid);
  clearInfomaskBits(p, tup, HEAP_COMBOCID);
}

/**
 * fix_infomask_from_infobits on an (infomask, infomask2) pair: the reverse of compute_infobits.
 * Returns both packed in one number (infomask | infomask2 << 16) so the hot path allocates nothing.
 */
function fixInfomaskFromInfobits(infobits: number, infomask: number, infomask2: number): number {
  infomask &= ~(HEAP_XMAX_IS_MULTI | HEAP_XMAX_LOCK_ONLY | HEAP_XMAX_KEYSHR_LOCK | HEAP_XMAX_EXCL_LOCK);
  infomask2 &= ~HEAP_KEYS_UPDATED;
  if (infobits & XLHL_XMAX_IS_MULTI) infomask |= HEAP_XMAX_IS_MULTI;
  if (infobits & XLHL_XMAX_LOCK_ONLY) infomask |= HEAP_XMAX_LOCK_ONLY;
  if (infobits & XLHL_XMAX_EXCL_LOCK) infomask |= HEAP_XMAX_EXCL_LOCK;
  // HEAP_XMAX_SHR_LOCK is not considered here, as in PostgreSQL.
  if (infobits & XLHL_XMAX_KEYSHR_LOCK) infomask |= HEAP_XMAX_KEYSHR_LOCK;
  if (infobits & XLHL_KEYS_UPDATED) infomask2 |= HEAP_KEYS_UPDATED;
  return ((infomask & 0xffff) | ((infomask2 & 0xffff) << 16)) >>> 0;
}

/** The step delete, update, lock and lock_updated share: drop the old xmax state, then apply infobits. */
function resetXmaxBits(p: Uint8Array, tup: number, infobits: number): void {
  const both = fixInfomaskFromInfobits(
    infobits,
    loadLe16(p, tup + TUP_INFOMASK) & ~(HEAP_XMAX_BITS | HEAP_MOVED),
    loadLe16(p, tup + TUP_INFOMASK2) & ~HEAP_KEYS_UPDATED,
  );
  storeLe16(p, tup + TUP_INFOMASK, both & 0xffff);
  storeLe16(p, tup + TUP_INFOMASK2, both >>> 16);
}

function xmaxIsLockedOnly(infomask: number): boolean {
  return (infomask & HEAP_XMAX_LOCK_ONLY) !== 0 || (infomask & (HEAP_XMAX_IS_MULTI | HEAP_LOCK_MASK)) === HEAP_XMAX_EXCL_LOCK;
}

/**
 * The new-tuple header every insert path builds in tbuf: zeroed, then the logged infomasks and
 * t_hoff, xmin = the record's xid, cmin = FirstCommandId.
 */
function initTupleHeader(infomask2: number, infomask: number, hoff: number, xid: number): void {
  tbuf.fill(0, 0, SIZEOF_HEAP_TUPLE_HEADER);
  storeLe16(tbuf, TUP_INFOMASK2, infomask2);
  storeLe16(tbuf, TUP_INFOMASK, infomask);
  tbuf[TUP_HOFF] = hoff;
  storeLe32(tbuf, TUP_XMIN, xid);
  setCommandId(tbuf, 0, FIRST_COMMAND_ID);
}

function addHeapTuple(page: Uint8Array, len: number, offnum: number): void {
  if (pageAddItem(page, tbuf, 0, len, offnum, true, true) === INVALID_OFFSET_NUMBER) throw new PageError('failed to add tuple');
}

function requireInsertOffset(page: Uint8Array, offnum: number): void {
  if (pageGetMaxOffsetNumber(page) + 1 < offnum) throw new PageError('invalid max offset number');
}

function requireTupleLength(len: number): void {
  if (len > MAX_HEAP_TUPLE_SIZE) throw new PageError(`tuple of ${len} bytes is longer than a page allows`);
}

/** XLogInitBufferForRedo + PageInit for XLOG_HEAP_INIT_PAGE records, else XLogReadBufferForRedo. */
function initOrReadPage(r: RedoRecordView, page: Uint8Array, init: boolean): RedoAction {
  if (!init) return readBufferForRedo(r, page);
  initBufferForRedo(r, page);
  pageInit(page, 0);
  return RedoAction.NeedsRedo;
}

/** The old version of an updated tuple: its page offset and length (-1: not read), for prefix/suffix reuse. */
interface OldTuple {
  off: number;
  len: number;
}

/** heap_xlog_update's first half: the old tuple version on the old page. */
function updateOldTuple(r: RedoRecordView, page: Uint8Array, hotUpdate: boolean, newblk: number, old: OldTuple): void {
  const b = r.buf;
  const x = r.mainDataOff;
  const oldXmax = loadLe32(b, x);
  const oldOffnum = loadLe16(b, x + 4);
  const oldInfobits = b[x + 6];
  const flags = b[x + 7];
  const newOffnum = loadLe16(b, x + 12);
  const tup = heapTupleAt(page, oldOffnum);
  old.off = tup;
  old.len = itemIdGetLength(page, oldOffnum);
  resetXmaxBits(page, tup, oldInfobits);
  // PostgreSQL sets the HOT bit before applying the infobits; they touch different bits.
  if (hotUpdate) storeLe16(page, tup + TUP_INFOMASK2, loadLe16(page, tup + TUP_INFOMASK2) | HEAP_HOT_UPDATED);
  else clearInfomask2Bits(page, tup, HEAP_HOT_UPDATED);
  storeLe32(page, tup + TUP_XMAX, oldXmax);
  setCommandId(page, tup, FIRST_COMMAND_ID);
  setCtid(page, tup, newblk, newOffnum);
  pageSetPrunable(page, r.xid);
  if (flags & XLH_UPDATE_OLD_ALL_VISIBLE_CLEARED) pageClearAllVisible(page);
  pageSetLsn(page, r.lsnHi, r.lsnLo);
}

/**
 * heap_xlog_update's second half: the new tuple version, rebuilt from the block data and, for a
 * same-page update, a prefix and/or suffix of the old version.
 */
function updateNewTuple(r: RedoRecordView, page: Uint8Array, newblk: number, samePage: boolean, old: OldTuple): void {
  const b = r.buf;
  const x = r.mainDataOff;
  const flags = b[x + 7];
  const newXmax = loadLe32(b, x + 8);
  const offnum = loadLe16(b, x + 12);
  requireInsertOffset(page, offnum);
  let rec = r.blockDataOff;
  const end = rec + r.blockDataLen;
  let prefixlen = 0;
  let suffixlen = 0;
  if ((flags & (XLH_UPDATE_PREFIX_FROM_OLD | XLH_UPDATE_SUFFIX_FROM_OLD)) !== 0 && !samePage) {
    throw new PageError('prefix or suffix taken from an old tuple on another page');
  }
  const need = SIZE_OF_HEAP_HEADER + (flags & XLH_UPDATE_PREFIX_FROM_OLD ? 2 : 0) + (flags & XLH_UPDATE_SUFFIX_FROM_OLD ? 2 : 0);
  if (r.blockDataLen < need) throw new PageError("block data shorter than the new tuple's header");
  if (flags & XLH_UPDATE_PREFIX_FROM_OLD) {
    prefixlen = loadLe16(b, rec);
    rec += 2;
  }
  if (flags & XLH_UPDATE_SUFFIX_FROM_OLD) {
    suffixlen = loadLe16(b, rec);
    rec += 2;
  }
  const infomask2 = loadLe16(b, rec);
  const infomask = loadLe16(b, rec + 2);
  const hoff = b[rec + 4];
  rec += SIZE_OF_HEAP_HEADER;
  const tuplen = end - rec;
  const newlen = SIZEOF_HEAP_TUPLE_HEADER + tuplen + prefixlen + suffixlen;
  requireTupleLength(newlen);
  if (old.len >= 0) {
    const oldHoff = page[old.off + TUP_HOFF];
    if (oldHoff + prefixlen > old.len || suffixlen > old.len) throw new PageError('prefix or suffix longer than the old tuple');
  }
  initTupleHeader(infomask2, infomask, hoff, r.xid);
  let newp = SIZEOF_HEAP_TUPLE_HEADER;
  if (prefixlen > 0) {
    // Bitmap [+ padding] [+ oid] from the record, the prefix from the old tuple, then the rest.
    if (hoff < SIZEOF_HEAP_TUPLE_HEADER || hoff - SIZEOF_HEAP_TUPLE_HEADER > tuplen) {
      throw new PageError('t_hoff does not fit the logged tuple');
    }
    const bitmapLen = hoff - SIZEOF_HEAP_TUPLE_HEADER;
    tbuf.set(b.subarray(rec, rec + bitmapLen), newp);
    newp += bitmapLen;
    const prefixAt = old.off + page[old.off + TUP_HOFF];
    tbuf.set(page.subarray(prefixAt, prefixAt + prefixlen), newp);
    newp += prefixlen;
    tbuf.set(b.subarray(rec + bitmapLen, end), newp);
    newp += tuplen - bitmapLen;
  } else {
    tbuf.set(b.subarray(rec, end), newp);
    newp += tuplen;
  }
  if (suffixlen > 0) tbuf.set(page.subarray(old.off + old.len - suffixlen, old.off + old.len), newp);
  storeLe32(tbuf, TUP_XMAX, newXmax);
  setCtid(tbuf, 0, newblk, offnum);
  addHeapTuple(page, newlen, offnum);
  if (flags & XLH_UPDATE_NEW_ALL_VISIBLE_CLEARED) pageClearAllVisible(page);
  pageSetLsn(page, r.lsnHi, r.lsnLo);
}

/**
 * heap_xlog_update for the one stored block: the old version lives on block 1 when the record has
 * one, else on block 0 with the new version; block 0 always takes the new version.
 */
function updateBlock(r: RedoRecordView, page: Uint8Array, hotUpdate: boolean): void {
  requireMainData(r, SIZE_OF_HEAP_UPDATE, 'xl_heap_update');
  const newblk = blockNumberOf(r, 0);
  const oldRef = r.blockNumberById(1);
  const oldblk = oldRef >= 0 ? oldRef : newblk;
  const samePage = oldblk === newblk;
  const oldId = samePage ? 0 : 1;
  if (r.targetId !== 0 && r.targetId !== oldId) requireTarget(r, 0);
  const old: OldTuple = { off: 0, len: -1 };
  let action = RedoAction.Done;
  if (r.targetId === oldId) {
    action = readBufferForRedo(r, page);
    if (action === RedoAction.NeedsRedo) updateOldTuple(r, page, hotUpdate, newblk, old);
  }
  if (r.targetId !== 0) return;
  if (!samePage) action = initOrReadPage(r, page, (r.info & XLOG_HEAP_INIT_PAGE) !== 0);
  if (action === RedoAction.NeedsRedo) updateNewTuple(r, page, newblk, samePage, old);
}

/** One MULTI_INSERT tuple: SHORTALIGNed xl_multi_insert_tuple, then its bytes; returns the next position. */
function multiInsertOne(r: RedoRecordView, page: Uint8Array, pos: number, offnum: number, blkno: number): number {
  requireInsertOffset(page, offnum);
  const hdr = shortAlign(pos);
  if (hdr + SIZE_OF_MULTI_INSERT_TUPLE > r.blockDataLen) throw new PageError('block data ends inside a tuple header');
  const b = r.buf;
  const h = r.blockDataOff + hdr;
  const datalen = loadLe16(b, h);
  const data = hdr + SIZE_OF_MULTI_INSERT_TUPLE;
  if (data + datalen > r.blockDataLen) throw new PageError('block data ends inside a tuple');
  const newlen = SIZEOF_HEAP_TUPLE_HEADER + datalen;
  requireTupleLength(newlen);
  initTupleHeader(loadLe16(b, h + 2), loadLe16(b, h + 4), b[h + 6], r.xid);
  tbuf.set(b.subarray(r.blockDataOff + data, r.blockDataOff + data + datalen), SIZEOF_HEAP_TUPLE_HEADER);
  setCtid(tbuf, 0, blkno, offnum);
  addHeapTuple(page, newlen, offnum);
  return data + datalen;
}

/** visibilitymap_clear's bit arithmetic on a VM page: clears `flags` of heap block `heapBlk`. */
function vmClearBits(page: Uint8Array, heapBlk: number, flags: number): void {
  const mapByte = Math.floor((heapBlk % VM_HEAP_BLOCKS_PER_PAGE) / VM_HEAP_BLOCKS_PER_BYTE);
  const mapOffset = (heapBlk % VM_HEAP_BLOCKS_PER_BYTE) * 2;
  const mask = (flags << mapOffset) & 0xff;
  page[PAGE_CONTENTS_OFFSET + mapByte] &= ~mask;
}

function requireVmFork(r: RedoRecordView): void {
  if (r.target().fork !== VISIBILITYMAP_FORKNUM) throw new PageError('visibility-map record on a block outside the VM fork');
}

// ---- Heap (rmgr 10) ----

/**
 * INSERT / INSERT+INIT: heap_xlog_insert. PostgreSQL also clears the VM bits of the block
 * (XLH_INSERT_ALL_VISIBLE_CLEARED) through visibilitymap_clear and updates the FSM when the page is
 * low on space; Strata clears the VM through an rmgr-255 record on the VM page and skips the FSM.
 */
export function heapXlogInsert(r: RedoRecordView, page: Uint8Array): void {
  requireTarget(r, 0);
  requireMainData(r, SIZE_OF_HEAP_INSERT, 'xl_heap_insert');
  const b = r.buf;
  const offnum = loadLe16(b, r.mainDataOff);
  const flags = b[r.mainDataOff + 2];
  if (initOrReadPage(r, page, (r.info & XLOG_HEAP_INIT_PAGE) !== 0) !== RedoAction.NeedsRedo) return;
  requireInsertOffset(page, offnum);
  if (r.blockDataLen <= SIZE_OF_HEAP_HEADER) throw new PageError('block data shorter than the tuple header');
  const datalen = r.blockDataLen - SIZE_OF_HEAP_HEADER;
  const newlen = SIZEOF_HEAP_TUPLE_HEADER + datalen;
  requireTupleLength(newlen);
  const d = r.blockDataOff;
  initTupleHeader(loadLe16(b, d), loadLe16(b, d + 2), b[d + 4], r.xid);
  tbuf.set(b.subarray(d + SIZE_OF_HEAP_HEADER, d + r.blockDataLen), SIZEOF_HEAP_TUPLE_HEADER);
  setCtid(tbuf, 0, r.targetBlockNumber(), offnum);
  addHeapTuple(page, newlen, offnum);
  pageSetLsn(page, r.lsnHi, r.lsnLo);
  if (flags & XLH_INSERT_ALL_VISIBLE_CLEARED) pageClearAllVisible(page);
}

/** DELETE: heap_xlog_delete. Skipped: the VM clear (an rmgr-255 record does it), locks. */
export function heapXlogDelete(r: RedoRecordView, page: Uint8Array): void {
  requireTarget(r, 0);
  requireMainData(r, SIZE_OF_HEAP_DELETE, 'xl_heap_delete');
  const b = r.buf;
  const x = r.mainDataOff;
  const xmax = loadLe32(b, x);
  const offnum = loadLe16(b, x + 4);
  const infobits = b[x + 6];
  const flags = b[x + 7];
  if (readBufferForRedo(r, page) !== RedoAction.NeedsRedo) return;
  const tup = heapTupleAt(page, offnum);
  resetXmaxBits(page, tup, infobits);
  clearInfomask2Bits(page, tup, HEAP_HOT_UPDATED);
  if (!(flags & XLH_DELETE_IS_SUPER)) storeLe32(page, tup + TUP_XMAX, xmax);
  else storeLe32(page, tup + TUP_XMIN, INVALID_TRANSACTION_ID);
  setCommandId(page, tup, FIRST_COMMAND_ID);
  pageSetPrunable(page, r.xid);
  if (flags & XLH_DELETE_ALL_VISIBLE_CLEARED) pageClearAllVisible(page);
  if (flags & XLH_DELETE_IS_PARTITION_MOVE) setCtid(page, tup, INVALID_BLOCK_NUMBER, MOVED_PARTITIONS_OFFSET_NUMBER);
  else setCtid(page, tup, r.targetBlockNumber(), offnum);
  pageSetLsn(page, r.lsnHi, r.lsnLo);
}

/**
 * UPDATE / UPDATE+INIT: heap_xlog_update(hot_update = false), the stored block's half. PostgreSQL
 * keeps the old page locked until the new tuple is in (for hot-standby readers) and clears VM bits
 * of both blocks; Strata redoes each page on its own and leaves the VM to rmgr-255 records.
 */
export function heapXlogUpdate(r: RedoRecordView, page: Uint8Array): void {
  updateBlock(r, page, false);
}

/** HOT_UPDATE: heap_xlog_update(hot_update = true); old and new versions share one page. */
export function heapXlogHotUpdate(r: RedoRecordView, page: Uint8Array): void {
  updateBlock(r, page, true);
}

/** HEAP_CONFIRM: heap_xlog_confirm (speculative insertion confirmed: ctid points at itself). */
export function heapXlogConfirm(r: RedoRecordView, page: Uint8Array): void {
  requireTarget(r, 0);
  requireMainData(r, SIZE_OF_HEAP_CONFIRM, 'xl_heap_confirm');
  const offnum = loadLe16(r.buf, r.mainDataOff);
  if (readBufferForRedo(r, page) !== RedoAction.NeedsRedo) return;
  const tup = heapTupleAt(page, offnum);
  setCtid(page, tup, r.targetBlockNumber(), offnum);
  pageSetLsn(page, r.lsnHi, r.lsnLo);
}

/** LOCK: heap_xlog_lock. Skipped: the all-frozen VM clear (XLH_LOCK_ALL_FROZEN_CLEARED; rmgr 255), locks. */
export function heapXlogLock(r: RedoRecordView, page: Uint8Array): void {
  requireTarget(r, 0);
  requireMainData(r, SIZE_OF_HEAP_LOCK, 'xl_heap_lock');
  const b = r.buf;
  const x = r.mainDataOff;
  const lockingXid = loadLe32(b, x);
  const offnum = loadLe16(b, x + 4);
  const infobits = b[x + 6];
  if (readBufferForRedo(r, page) !== RedoAction.NeedsRedo) return;
  const tup = heapTupleAt(page, offnum);
  resetXmaxBits(page, tup, infobits);
  // Only a lock (no update): no HOT chain and no forward link.
  if (xmaxIsLockedOnly(loadLe16(page, tup + TUP_INFOMASK))) {
    clearInfomask2Bits(page, tup, HEAP_HOT_UPDATED);
    setCtid(page, tup, r.targetBlockNumber(), offnum);
  }
  storeLe32(page, tup + TUP_XMAX, lockingXid);
  setCommandId(page, tup, FIRST_COMMAND_ID);
  pageSetLsn(page, r.lsnHi, r.lsnLo);
}

/** INPLACE: heap_xlog_inplace (catalog rows VACUUM/ANALYZE overwrite in place: same length). */
export function heapXlogInplace(r: RedoRecordView, page: Uint8Array): void {
  requireTarget(r, 0);
  requireMainData(r, SIZE_OF_HEAP_INPLACE, 'xl_heap_inplace');
  const offnum = loadLe16(r.buf, r.mainDataOff);
  if (readBufferForRedo(r, page) !== RedoAction.NeedsRedo) return;
  const tup = heapTupleAt(page, offnum);
  const hoff = page[tup + TUP_HOFF];
  const lpLen = itemIdGetLength(page, offnum);
  if (hoff > lpLen || lpLen - hoff !== r.blockDataLen) throw new PageError('wrong tuple length');
  page.set(r.buf.subarray(r.blockDataOff, r.blockDataOff + r.blockDataLen), tup + hoff);
  pageSetLsn(page, r.lsnHi, r.lsnLo);
}

// ---- Heap2 (rmgr 9) ----

/**
 * PRUNE: heap_xlog_prune with heap_page_prune_execute (PG15 layout: xl_heap_prune
 * {latestRemovedXid, nredirected, ndead}; block data = redirect pairs, dead, then unused offsets),
 * then PageRepairFragmentation. Skipped: the cleanup lock, the standby conflict, the FSM update.
 */
export function heapXlogPrune(r: RedoRecordView, page: Uint8Array): void {
  requireTarget(r, 0);
  requireMainData(r, SIZE_OF_HEAP_PRUNE, 'xl_heap_prune');
  const b = r.buf;
  const nredirected = loadLe16(b, r.mainDataOff + 4);
  const ndead = loadLe16(b, r.mainDataOff + 6);
  if (readBufferForRedo(r, page) !== RedoAction.NeedsRedo) return;
  const fixed = (nredirected * 2 + ndead) * 2;
  if (r.blockDataLen < fixed || (r.blockDataLen - fixed) % 2 !== 0) throw new PageError('block data does not match the prune counts');
  const nunused = (r.blockDataLen - fixed) / 2;
  let p = r.blockDataOff;
  for (let i = 0; i < nredirected; i++, p += 4) {
    const from = loadLe16(b, p);
    requireLinePointer(page, from);
    itemIdSetRedirect(page, from, loadLe16(b, p + 2));
  }
  for (let i = 0; i < ndead; i++, p += 2) {
    const off = loadLe16(b, p);
    requireLinePointer(page, off);
    itemIdSetDead(page, off);
  }
  for (let i = 0; i < nunused; i++, p += 2) {
    const off = loadLe16(b, p);
    requireLinePointer(page, off);
    itemIdSetUnused(page, off);
  }
  pageRepairFragmentation(page);
  pageSetLsn(page, r.lsnHi, r.lsnLo);
}

/**
 * VACUUM: heap_xlog_vacuum (LP_DEAD items become LP_UNUSED, then PageTruncateLinePointerArray; no
 * defragmentation). Skipped: the FSM update.
 */
export function heapXlogVacuum(r: RedoRecordView, page: Uint8Array): void {
  requireTarget(r, 0);
  requireMainData(r, SIZE_OF_HEAP_VACUUM, 'xl_heap_vacuum');
  const nunused = loadLe16(r.buf, r.mainDataOff);
  if (readBufferForRedo(r, page) !== RedoAction.NeedsRedo) return;
  if (r.blockDataLen < nunused * 2) throw new PageError('block data shorter than its unused offsets');
  for (let i = 0; i < nunused; i++) {
    const off = loadLe16(r.buf, r.blockDataOff + 2 * i);
    requireLinePointer(page, off);
    itemIdSetUnused(page, off);
  }
  pageTruncateLinePointerArray(page);
  pageSetLsn(page, r.lsnHi, r.lsnLo);
}

/**
 * FREEZE_PAGE: heap_xlog_freeze_page with heap_execute_freeze_tuple per logged tuple (PG15 layout:
 * xl_heap_freeze_page {cutoff_xid, ntuples}; block data = 12-byte xl_heap_freeze_tuple entries).
 * Skipped: the standby conflict on cutoff_xid.
 */
export function heapXlogFreezePage(r: RedoRecordView, page: Uint8Array): void {
  requireTarget(r, 0);
  requireMainData(r, SIZE_OF_HEAP_FREEZE_PAGE, 'xl_heap_freeze_page');
  const b = r.buf;
  const ntuples = loadLe16(b, r.mainDataOff + 4);
  if (readBufferForRedo(r, page) !== RedoAction.NeedsRedo) return;
  if (r.blockDataLen < ntuples * SIZE_OF_HEAP_FREEZE_TUPLE) throw new PageError('block data shorter than its freeze plans');
  for (let i = 0; i < ntuples; i++) {
    const f = r.blockDataOff + i * SIZE_OF_HEAP_FREEZE_TUPLE;
    const tup = heapTupleAt(page, loadLe16(b, f + 4));
    storeLe32(page, tup + TUP_XMAX, loadLe32(b, f));
    if (b[f + 10] & XLH_FREEZE_XVAC) storeLe32(page, tup + TUP_CID, FROZEN_TRANSACTION_ID);
    if (b[f + 10] & XLH_INVALID_XVAC) storeLe32(page, tup + TUP_CID, INVALID_TRANSACTION_ID);
    storeLe16(page, tup + TUP_INFOMASK, loadLe16(b, f + 8));
    storeLe16(page, tup + TUP_INFOMASK2, loadLe16(b, f + 6));
  }
  pageSetLsn(page, r.lsnHi, r.lsnLo);
}

/**
 * VISIBLE: heap_xlog_visible. Block 1, the heap page: PD_ALL_VISIBLE, and its LSN only when
 * XLogHintBitIsNeeded (checksums or wal_log_hints; otherwise PostgreSQL deliberately leaves pd_lsn).
 * Block 0, the VM page (read with RBM_ZERO_ON_ERROR, initialized when new): visibilitymap_set of
 * the heap block's bits, with the VM page's LSN, unless the bits were already set. Skipped: the
 * standby conflict on cutoff_xid, the FSM update.
 */
export function heapXlogVisible(r: RedoRecordView, page: Uint8Array): void {
  requireMainData(r, SIZE_OF_HEAP_VISIBLE, 'xl_heap_visible');
  const flags = r.buf[r.mainDataOff + 4];
  const heapBlk = blockNumberOf(r, 1);
  if (r.targetId === 1) {
    if (readBufferForRedo(r, page) !== RedoAction.NeedsRedo) return;
    pageSetAllVisible(page);
    if (r.hintBitsLogged()) pageSetLsn(page, r.lsnHi, r.lsnLo);
    return;
  }
  requireTarget(r, 0);
  if (readBufferForRedoZeroOnError(r, page) !== RedoAction.NeedsRedo) return;
  if (pageIsNew(page)) pageInit(page, 0);
  if (Math.floor(heapBlk / VM_HEAP_BLOCKS_PER_PAGE) !== r.targetBlockNumber()) throw new PageError('wrong VM page for the heap block');
  if (pageLsnAtLeast(page, r.lsnHi, r.lsnLo)) return;
  const mapByte = PAGE_CONTENTS_OFFSET + Math.floor((heapBlk % VM_HEAP_BLOCKS_PER_PAGE) / VM_HEAP_BLOCKS_PER_BYTE);
  const mapOffset = (heapBlk % VM_HEAP_BLOCKS_PER_BYTE) * 2;
  if (flags !== ((page[mapByte] >> mapOffset) & VISIBILITYMAP_VALID_BITS)) {
    page[mapByte] |= flags << mapOffset;
    pageSetLsn(page, r.lsnHi, r.lsnLo);
  }
}

/**
 * MULTI_INSERT / MULTI_INSERT+INIT: heap_xlog_multi_insert (xl_heap_multi_insert {flags, ntuples,
 * offsets[] unless +INIT}; block data = SHORTALIGNed xl_multi_insert_tuple + data per tuple).
 * XLH_INSERT_ALL_FROZEN_SET (COPY FREEZE) sets PD_ALL_VISIBLE. Skipped: VM clear (rmgr 255), FSM.
 */
export function heapXlogMultiInsert(r: RedoRecordView, page: Uint8Array): void {
  requireTarget(r, 0);
  requireMainData(r, SIZE_OF_HEAP_MULTI_INSERT, 'xl_heap_multi_insert');
  const b = r.buf;
  const isinit = (r.info & XLOG_HEAP_INIT_PAGE) !== 0;
  const flags = b[r.mainDataOff];
  const ntuples = loadLe16(b, r.mainDataOff + 2);
  if (!isinit) requireMainData(r, SIZE_OF_HEAP_MULTI_INSERT + 2 * ntuples, 'its offsets');
  if (initOrReadPage(r, page, isinit) !== RedoAction.NeedsRedo) return;
  const blkno = r.targetBlockNumber();
  let pos = 0;
  for (let i = 0; i < ntuples; i++) {
    const offnum = isinit ? FIRST_OFFSET_NUMBER + i : loadLe16(b, r.mainDataOff + SIZE_OF_HEAP_MULTI_INSERT + 2 * i);
    pos = multiInsertOne(r, page, pos, offnum, blkno);
  }
  if (pos !== r.blockDataLen) throw new PageError('total tuple length mismatch');
  pageSetLsn(page, r.lsnHi, r.lsnLo);
  if (flags & XLH_INSERT_ALL_VISIBLE_CLEARED) pageClearAllVisible(page);
  if (flags & XLH_INSERT_ALL_FROZEN_SET) pageSetAllVisible(page);
}

/** LOCK_UPDATED: heap_xlog_lock_updated (a lock on a later version). Skipped: the all-frozen VM clear. */
export function heapXlogLockUpdated(r: RedoRecordView, page: Uint8Array): void {
  requireTarget(r, 0);
  requireMainData(r, SIZE_OF_HEAP_LOCK, 'xl_heap_lock_updated');
  const b = r.buf;
  const x = r.mainDataOff;
  const xmax = loadLe32(b, x);
  const offnum = loadLe16(b, x + 4);
  const infobits = b[x + 6];
  if (readBufferForRedo(r, page) !== RedoAction.NeedsRedo) return;
  const tup = heapTupleAt(page, offnum);
  resetXmaxBits(page, tup, infobits);
  storeLe32(page, tup + TUP_XMAX, xmax);
  pageSetLsn(page, r.lsnHi, r.lsnLo);
}

/**
 * Heap TRUNCATE (the Storage records truncate; this one exists for logical decoding), Heap2 NEW_CID
 * (logical decoding only) and REWRITE (heap_xlog_logical_rewrite writes mapping files, not pages).
 * None has a block reference, so ingest never stores one; if one arrives the page is left as it
 * is, as PostgreSQL leaves it.
 */
export function heapXlogNoPageChange(): void {
  // Deliberately nothing.
}

// ---- Sequence (rmgr 15) ----

/**
 * LOG: seq_redo. The page is rebuilt from scratch: PageInit with the 4-byte sequence_magic special
 * space (SEQ_MAGIC), the logged tuple (main data after xl_seq_rec) as item 1, the record's LSN.
 */
export function seqRedo(r: RedoRecordView, page: Uint8Array): void {
  requireTarget(r, 0);
  requireMainData(r, SIZE_OF_SEQ_REC, 'xl_seq_rec');
  initBufferForRedo(r, page);
  pageInit(seqPage, 4);
  storeLe32(seqPage, pageGetSpecial(seqPage), SEQ_MAGIC);
  const item = r.mainDataOff + SIZE_OF_SEQ_REC;
  if (pageAddItem(seqPage, r.buf, item, r.mainDataLen - SIZE_OF_SEQ_REC, FIRST_OFFSET_NUMBER, false, false) === INVALID_OFFSET_NUMBER) {
    throw new PageError('seq_redo: failed to add item to page');
  }
  pageSetLsn(seqPage, r.lsnHi, r.lsnLo);
  page.set(seqPage);
}

// ---- Strata (rmgr 255) ----

/**
 * VM_CLEAR: visibilitymap_clear for up to two heap blocks (main data: u32 heap block, u32 second
 * heap block or 0xFFFFFFFF, u8 flags), each only if it maps to this VM page. As vm_readbuf does, a
 * new (all-zero) VM page is initialized first. No LSN change: PostgreSQL's clear does not set one.
 */
export function strataVmClear(r: RedoRecordView, page: Uint8Array): void {
  requireVmFork(r);
  requireMainData(r, SIZE_OF_VM_CLEAR, 'VM_CLEAR');
  const b = r.buf;
  const vmBlk = r.targetBlockNumber();
  const heapBlks = [loadLe32(b, r.mainDataOff), loadLe32(b, r.mainDataOff + 4)];
  const flags = b[r.mainDataOff + 8];
  let any = false;
  for (const heapBlk of heapBlks) {
    if (heapBlk === INVALID_BLOCK_NUMBER || Math.floor(heapBlk / VM_HEAP_BLOCKS_PER_PAGE) !== vmBlk) continue;
    if (!any && pageIsNew(page)) pageInit(page, 0);
    any = true;
    vmClearBits(page, heapBlk, flags);
  }
  if (!any) throw new PageError('no heap block of VM_CLEAR maps to this VM page');
}

/**
 * VM_TRUNCATE: visibilitymap_prepare_truncate (main data: u32 new heap size in blocks). Clears the
 * bits of every heap block at or past the new size that this VM page covers. On the last remaining
 * page that is the tail of the map: the bytes after the boundary byte zeroed, the boundary byte
 * masked; a new page is initialized first, as vm_readbuf does. A page wholly past the new size
 * (PostgreSQL truncates it away; ingest should not store one) becomes an empty VM page, which is
 * what PostgreSQL recreates if the map grows again. No LSN change.
 */
export function strataVmTruncate(r: RedoRecordView, page: Uint8Array): void {
  requireVmFork(r);
  requireMainData(r, SIZE_OF_VM_TRUNCATE, 'VM_TRUNCATE');
  const nheap = loadLe32(r.buf, r.mainDataOff);
  const first = r.targetBlockNumber() * VM_HEAP_BLOCKS_PER_PAGE;
  if (nheap >= first + VM_HEAP_BLOCKS_PER_PAGE) return; // the page keeps all its bits
  if (nheap <= first || pageIsNew(page)) pageInit(page, 0);
  if (nheap <= first) return;
  const local = nheap - first;
  const truncByte = Math.floor(local / VM_HEAP_BLOCKS_PER_BYTE);
  const truncOffset = (local % VM_HEAP_BLOCKS_PER_BYTE) * 2;
  page.fill(0, PAGE_CONTENTS_OFFSET + truncByte + 1, PAGE_CONTENTS_OFFSET + VM_MAP_SIZE);
  page[PAGE_CONTENTS_OFFSET + truncByte] &= (1 << truncOffset) - 1;
}
