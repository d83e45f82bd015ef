/**
 * PostgreSQL 15's page primitives (src/backend/storage/page/bufpage.c, storage/bufpage.h,
 * storage/itemid.h), byte-exact: TS twin of native/pg/bufpage.{h,cc}, function for function, same
 * checks, same error texts. `page` is an 8192-byte Uint8Array holding the page from index 0.
 * Where PostgreSQL would ereport(ERROR/PANIC) these throw PageError (redo turns it into
 * REDO_FAILED); where PostgreSQL would touch memory outside the page they check first and throw.
 */
import { BLCKSZ, FIRST_NORMAL_TRANSACTION_ID, INVALID_TRANSACTION_ID, loadLe16, loadLe32, maxAlign, storeLe16, storeLe32 } from './pg_format';

/** A page (or a record applied to it) is not what PostgreSQL's code requires. */
export class PageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PageError';
  }
}

// PageHeaderData field offsets.
export const PD_LSN = 0;
export const PD_CHECKSUM = 8;
export const PD_FLAGS = 10;
export const PD_LOWER = 12;
export const PD_UPPER = 14;
export const PD_SPECIAL = 16;
export const PD_PAGESIZE_VERSION = 18;
export const PD_PRUNE_XID = 20;

export const SIZE_OF_PAGE_HEADER_DATA = 24;
export const ITEM_ID_SIZE = 4;
export const PG_PAGE_LAYOUT_VERSION = 4;

export const PD_HAS_FREE_LINES = 0x0001;
export const PD_PAGE_FULL = 0x0002;
export const PD_ALL_VISIBLE = 0x0004;

export const LP_UNUSED = 0;
export const LP_NORMAL = 1;
export const LP_REDIRECT = 2;
export const LP_DEAD = 3;

export const INVALID_OFFSET_NUMBER = 0;
export const FIRST_OFFSET_NUMBER = 1;
/** MaxOffsetNumber = BLCKSZ / sizeof(ItemIdData). */
export const MAX_OFFSET_NUMBER = BLCKSZ / ITEM_ID_SIZE;
export const SIZEOF_HEAP_TUPLE_HEADER = 23;
/** MaxHeapTuplesPerPage = (8192 - 24) / (MAXALIGN(23) + 4) = 291. */
export const MAX_HEAP_TUPLES_PER_PAGE = Math.floor((BLCKSZ - SIZE_OF_PAGE_HEADER_DATA) / (maxAlign(SIZEOF_HEAP_TUPLE_HEADER) + ITEM_ID_SIZE));
/** MaxHeapTupleSize = 8192 - MAXALIGN(24 + 4) = 8160. */
export const MAX_HEAP_TUPLE_SIZE = BLCKSZ - maxAlign(SIZE_OF_PAGE_HEADER_DATA + ITEM_ID_SIZE);

export const PAI_OVERWRITE = 1 << 0;
export const PAI_IS_HEAP = 1 << 1;

/** Items up to this size are copied byte by byte: cheaper than a subarray view for small index tuples. */
const SMALL_COPY_BYTES = 64;

// ---- header access ----

/** pd_lsn as a bigint (xlogid is the high half, stored first). */
export function pageGetLsn(page: Uint8Array): bigint {
  return (BigInt(loadLe32(page, PD_LSN)) << 32n) | BigInt(loadLe32(page, PD_LSN + 4));
}

/** True when pd_lsn >= (hi, lo): compares without a bigint. */
export function pageLsnAtLeast(page: Uint8Array, hi: number, lo: number): boolean {
  const phi = loadLe32(page, PD_LSN);
  return phi > hi || (phi === hi && loadLe32(page, PD_LSN + 4) >= lo);
}

export function pageSetLsn(page: Uint8Array, hi: number, lo: number): void {
  storeLe32(page, PD_LSN, hi);
  storeLe32(page, PD_LSN + 4, lo);
}

export function pageGetChecksum(page: Uint8Array): number { return loadLe16(page, PD_CHECKSUM); }
export function pageSetChecksum(page: Uint8Array, v: number): void { storeLe16(page, PD_CHECKSUM, v); }
export function pageGetFlags(page: Uint8Array): number { return loadLe16(page, PD_FLAGS); }
export function pageSetFlags(page: Uint8Array, v: number): void { storeLe16(page, PD_FLAGS, v); }
export function pageGetLower(page: Uint8Array): number { return loadLe16(page, PD_LOWER); }
export function pageSetLower(page: Uint8Array, v: number): void { storeLe16(page, PD_LOWER, v); }
export function pageGetUpper(page: Uint8Array): number { return loadLe16(page, PD_UPPER); }
export function pageSetUpper(page: Uint8Array, v: number): void { storeLe16(page, PD_UPPER, v); }
export function pageGetSpecial(page: Uint8Array): number { return loadLe16(page, PD_SPECIAL); }
export function pageGetPruneXid(page: Uint8Array): number { return loadLe32(page, PD_PRUNE_XID); }
export function pageSetPruneXid(page: Uint8Array, xid: number): void { storeLe32(page, PD_PRUNE_XID, xid); }

export function pageIsNew(page: Uint8Array): boolean { return pageGetUpper(page) === 0; }
/**
 * The layout checks of PostgreSQL's PageIsVerifiedExtended (bufpage.c) for an initialized page:
 * pd_lower <= pd_upper <= pd_special <= BLCKSZ, pd_special MAXALIGNed. Redo reads line pointers up
 * to pd_lower and tuples from pd_upper, so a page failing this would be read outside its 8192 bytes.
 */
export function pageHeaderIsValid(page: Uint8Array): boolean {
  const lower = pageGetLower(page), upper = pageGetUpper(page), special = pageGetSpecial(page);
  return lower <= upper && upper <= special && special <= BLCKSZ && special === maxAlign(special);
}
export function pageIsEmpty(page: Uint8Array): boolean { return pageGetLower(page) <= SIZE_OF_PAGE_HEADER_DATA; }

export function pageGetMaxOffsetNumber(page: Uint8Array): number {
  const lower = pageGetLower(page);
  return lower <= SIZE_OF_PAGE_HEADER_DATA ? 0 : Math.floor((lower - SIZE_OF_PAGE_HEADER_DATA) / ITEM_ID_SIZE);
}

export function pageHasFreeLinePointers(page: Uint8Array): boolean { return (pageGetFlags(page) & PD_HAS_FREE_LINES) !== 0; }
export function pageSetHasFreeLinePointers(page: Uint8Array): void { pageSetFlags(page, pageGetFlags(page) | PD_HAS_FREE_LINES); }
export function pageClearHasFreeLinePointers(page: Uint8Array): void { pageSetFlags(page, pageGetFlags(page) & ~PD_HAS_FREE_LINES); }
export function pageIsAllVisible(page: Uint8Array): boolean { return (pageGetFlags(page) & PD_ALL_VISIBLE) !== 0; }
export function pageSetAllVisible(page: Uint8Array): void { pageSetFlags(page, pageGetFlags(page) | PD_ALL_VISIBLE); }
export function pageClearAllVisible(page: Uint8Array): void { pageSetFlags(page, pageGetFlags(page) & ~PD_ALL_VISIBLE); }

/** PageGetContents: where the bytes after the MAXALIGNed header start (the visibility map's bitmap). */
export const PAGE_CONTENTS_OFFSET = maxAlign(SIZE_OF_PAGE_HEADER_DATA);

/** TransactionIdPrecedes: unsigned comparison when either id is special, else modulo 2^32. */
export function transactionIdPrecedes(id1: number, id2: number): boolean {
  if (id1 < FIRST_NORMAL_TRANSACTION_ID || id2 < FIRST_NORMAL_TRANSACTION_ID) return id1 < id2;
  return ((id1 - id2) | 0) < 0;
}

/** PageSetPrunable: keep the oldest xid that may make something on the page prunable. */
export function pageSetPrunable(page: Uint8Array, xid: number): void {
  const cur = pageGetPruneXid(page);
  if (cur === INVALID_TRANSACTION_ID || transactionIdPrecedes(xid, cur)) pageSetPruneXid(page, xid);
}

// ---- line pointers: lp_off:15, lp_flags:2, lp_len:15 in one little-endian u32 ----

export function itemIdPos(offnum: number): number {
  return SIZE_OF_PAGE_HEADER_DATA + (offnum - 1) * ITEM_ID_SIZE;
}

export function itemIdRaw(page: Uint8Array, offnum: number): number { return loadLe32(page, itemIdPos(offnum)); }
export function itemIdSetRaw(page: Uint8Array, offnum: number, v: number): void { storeLe32(page, itemIdPos(offnum), v); }

export function makeItemId(off: number, flags: number, len: number): number {
  return ((off & 0x7fff) | ((flags & 3) << 15) | ((len & 0x7fff) << 17)) >>> 0;
}

export function itemIdGetOffset(page: Uint8Array, offnum: number): number { return itemIdRaw(page, offnum) & 0x7fff; }
export function itemIdGetFlags(page: Uint8Array, offnum: number): number { return (itemIdRaw(page, offnum) >>> 15) & 3; }
export function itemIdGetLength(page: Uint8Array, offnum: number): number { return itemIdRaw(page, offnum) >>> 17; }
export function itemIdIsUsed(page: Uint8Array, offnum: number): boolean { return itemIdGetFlags(page, offnum) !== LP_UNUSED; }
export function itemIdIsNormal(page: Uint8Array, offnum: number): boolean { return itemIdGetFlags(page, offnum) === LP_NORMAL; }
export function itemIdIsDead(page: Uint8Array, offnum: number): boolean { return itemIdGetFlags(page, offnum) === LP_DEAD; }
export function itemIdHasStorage(page: Uint8Array, offnum: number): boolean { return itemIdGetLength(page, offnum) !== 0; }

/** lp_off alone, keeping flags and length (the bit-field store `lp->lp_off = v`, modulo 2^15). */
export function itemIdSetOffset(page: Uint8Array, offnum: number, off: number): void {
  itemIdSetRaw(page, offnum, ((itemIdRaw(page, offnum) & ~0x7fff) | (off & 0x7fff)) >>> 0);
}
export function itemIdSetUnused(page: Uint8Array, offnum: number): void { itemIdSetRaw(page, offnum, 0); }
export function itemIdSetNormal(page: Uint8Array, offnum: number, off: number, len: number): void {
  itemIdSetRaw(page, offnum, makeItemId(off, LP_NORMAL, len));
}
export function itemIdSetRedirect(page: Uint8Array, offnum: number, link: number): void {
  itemIdSetRaw(page, offnum, makeItemId(link, LP_REDIRECT, 0));
}
export function itemIdSetDead(page: Uint8Array, offnum: number): void { itemIdSetRaw(page, offnum, makeItemId(0, LP_DEAD, 0)); }

// ---- bufpage.c ----

/** The "corrupted page pointers" test; with `aligned`, pd_special must be MAXALIGNed too. */
function checkPagePointers(page: Uint8Array, aligned: boolean): void {
  const lower = pageGetLower(page);
  const upper = pageGetUpper(page);
  const special = pageGetSpecial(page);
  if (lower < SIZE_OF_PAGE_HEADER_DATA || lower > upper || upper > special || special > BLCKSZ ||
      (aligned && special !== maxAlign(special))) {
    throw new PageError(`corrupted page pointers: lower = ${lower}, upper = ${upper}, special = ${special}`);
  }
}

/** PageInit: zeroes the page and sets lower, upper, special and the size/version word. */
export function pageInit(page: Uint8Array, specialSize: number): void {
  const special = maxAlign(specialSize);
  if (special + SIZE_OF_PAGE_HEADER_DATA >= BLCKSZ) throw new PageError('special space too large for PageInit');
  page.fill(0, 0, BLCKSZ);
  pageSetLower(page, SIZE_OF_PAGE_HEADER_DATA);
  pageSetUpper(page, BLCKSZ - special);
  storeLe16(page, PD_SPECIAL, BLCKSZ - special);
  storeLe16(page, PD_PAGESIZE_VERSION, BLCKSZ | PG_PAGE_LAYOUT_VERSION);
}

/**
 * PageAddItemExtended: places item[0, size) at `offnum` (or the first free slot when offnum is not a
 * valid offset number); returns the offset used, or INVALID_OFFSET_NUMBER when PostgreSQL refuses.
 */
export function pageAddItemExtended(page: Uint8Array, item: Uint8Array, itemOff: number, size: number, offnum: number, flags: number): number {
  checkPagePointers(page, false);
  const limit = pageGetMaxOffsetNumber(page) + 1;
  let needshuffle = false;
  if (offnum !== INVALID_OFFSET_NUMBER && offnum <= MAX_OFFSET_NUMBER) {
    if ((flags & PAI_OVERWRITE) !== 0) {
      if (offnum < limit && (itemIdIsUsed(page, offnum) || itemIdHasStorage(page, offnum))) return INVALID_OFFSET_NUMBER;
    } else if (offnum < limit) {
      needshuffle = true;
    }
  } else if (pageHasFreeLinePointers(page)) {
    for (offnum = FIRST_OFFSET_NUMBER; offnum < limit; offnum++) {
      if (!itemIdIsUsed(page, offnum) && !itemIdHasStorage(page, offnum)) break;
    }
    if (offnum >= limit) pageClearHasFreeLinePointers(page);
  } else {
    offnum = limit;
  }
  if (offnum > limit) return INVALID_OFFSET_NUMBER;
  if ((flags & PAI_IS_HEAP) !== 0 && offnum > MAX_HEAP_TUPLES_PER_PAGE) return INVALID_OFFSET_NUMBER;
  const lower = pageGetLower(page) + (offnum === limit || needshuffle ? ITEM_ID_SIZE : 0);
  if (size > BLCKSZ) return INVALID_OFFSET_NUMBER;
  const upper = pageGetUpper(page) - maxAlign(size);
  if (lower > upper) return INVALID_OFFSET_NUMBER;
  if (needshuffle) page.copyWithin(itemIdPos(offnum + 1), itemIdPos(offnum), itemIdPos(limit));
  itemIdSetNormal(page, offnum, upper, size);
  if (size <= SMALL_COPY_BYTES) {
    for (let i = 0; i < size; i++) page[upper + i] = item[itemOff + i];
  } else {
    page.set(item.subarray(itemOff, itemOff + size), upper);
  }
  pageSetLower(page, lower);
  pageSetUpper(page, upper);
  return offnum;
}

export function pageAddItem(page: Uint8Array, item: Uint8Array, itemOff: number, size: number, offnum: number, overwrite: boolean, isHeap: boolean): number {
  return pageAddItemExtended(page, item, itemOff, size, offnum, (overwrite ? PAI_OVERWRITE : 0) | (isHeap ? PAI_IS_HEAP : 0));
}

/** PageGetTempPageCopySpecial into `temp`: an empty page with this page's special space copied. */
export function pageGetTempPageCopySpecial(page: Uint8Array, temp: Uint8Array): void {
  const special = pageGetSpecial(page);
  if (special > BLCKSZ) throw new PageError(`corrupted special pointer: ${special}`);
  pageInit(temp, BLCKSZ - special);
  temp.set(page.subarray(special, BLCKSZ), pageGetSpecial(temp));
}

/** itemIdCompactData arrays, reused: offsetindex, itemoff, alignedlen per item with storage. */
const MAX_LINE_POINTERS = (BLCKSZ - SIZE_OF_PAGE_HEADER_DATA) / ITEM_ID_SIZE;
const cOffsetIndex = new Uint16Array(MAX_LINE_POINTERS);
const cItemOff = new Int32Array(MAX_LINE_POINTERS);
const cAlignedLen = new Int32Array(MAX_LINE_POINTERS);
const newItemIds = new Uint32Array(MAX_LINE_POINTERS);
/** compactify_tuples' scratch page. */
const scratch = new Uint8Array(BLCKSZ);

/**
 * compactify_tuples: moves the nitems (> 0) items in the c* arrays so they end at pd_special, in
 * array order, pointing their line pointers at the new places; `presorted` (descending itemoff)
 * allows moving in place. Every item lies inside [pd_upper, pd_special) (callers check).
 */
function compactifyTuples(nitems: number, page: Uint8Array, presorted: boolean): void {
  const special = pageGetSpecial(page);
  let upper = special;
  let i = 0;
  let it = 0;
  if (presorted) {
    do {
      it = i;
      if (upper !== cItemOff[it] + cAlignedLen[it]) break;
      upper -= cAlignedLen[it];
      i++;
    } while (i < nitems);
    let copyTail = cItemOff[it] + cAlignedLen[it];
    let copyHead = copyTail;
    for (; i < nitems; i++) {
      it = i;
      if (copyHead !== cItemOff[it] + cAlignedLen[it]) {
        page.copyWithin(upper, copyHead, copyTail);
        copyTail = cItemOff[it] + cAlignedLen[it];
      }
      upper -= cAlignedLen[it];
      copyHead = cItemOff[it];
      itemIdSetOffset(page, cOffsetIndex[it] + 1, upper);
    }
    page.copyWithin(upper, copyHead, copyTail);
  } else {
    const pdUpper = pageGetUpper(page);
    if (nitems < Math.floor(pageGetMaxOffsetNumber(page) / 4)) {
      do {
        it = i;
        scratch.set(page.subarray(cItemOff[it], cItemOff[it] + cAlignedLen[it]), cItemOff[it]);
        i++;
      } while (i < nitems);
      i = 0;
      it = 0;
      upper = special;
    } else {
      do {
        it = i;
        if (upper !== cItemOff[it] + cAlignedLen[it]) break;
        upper -= cAlignedLen[it];
        i++;
      } while (i < nitems);
      // Added check (as in native): an item still to move overlapping those left in place.
      for (let k = i; k < nitems; k++) {
        if (cItemOff[k] + cAlignedLen[k] > upper) throw new PageError('overlapping items on page');
      }
      scratch.set(page.subarray(pdUpper, upper), pdUpper);
    }
    let copyTail = cItemOff[it] + cAlignedLen[it];
    let copyHead = copyTail;
    for (; i < nitems; i++) {
      it = i;
      if (copyHead !== cItemOff[it] + cAlignedLen[it]) {
        page.set(scratch.subarray(copyHead, copyTail), upper);
        copyTail = cItemOff[it] + cAlignedLen[it];
      }
      upper -= cAlignedLen[it];
      copyHead = cItemOff[it];
      itemIdSetOffset(page, cOffsetIndex[it] + 1, upper);
    }
    page.set(scratch.subarray(copyHead, copyTail), upper);
  }
  pageSetUpper(page, upper);
}

/**
 * PageRepairFragmentation (heap pages after pruning): unused line pointers zeroed, tuples repacked
 * from pd_special down in their existing order, trailing unused line pointers truncated,
 * PD_HAS_FREE_LINES set or cleared.
 */
export function pageRepairFragmentation(page: Uint8Array): void {
  checkPagePointers(page, true);
  const pdLower = pageGetLower(page);
  const pdUpper = pageGetUpper(page);
  const pdSpecial = pageGetSpecial(page);
  const nline = pageGetMaxOffsetNumber(page);
  let nstorage = 0;
  let nunused = 0;
  let finalusedlp = INVALID_OFFSET_NUMBER;
  let totallen = 0;
  let lastOffset = pdSpecial;
  let presorted = true;
  for (let i = FIRST_OFFSET_NUMBER; i <= nline; i++) {
    if (itemIdIsUsed(page, i)) {
      if (itemIdHasStorage(page, i)) {
        const k = nstorage++;
        cOffsetIndex[k] = i - 1;
        const itemoff = itemIdGetOffset(page, i);
        cItemOff[k] = itemoff;
        if (lastOffset > itemoff) lastOffset = itemoff;
        else presorted = false;
        if (itemoff < pdUpper || itemoff >= pdSpecial) throw new PageError(`corrupted line pointer: ${itemoff}`);
        const alignedlen = maxAlign(itemIdGetLength(page, i));
        cAlignedLen[k] = alignedlen;
        // Added check (as in native): PostgreSQL does not test the item's end against pd_special.
        if (itemoff + alignedlen > pdSpecial) throw new PageError(`corrupted line pointer: ${itemoff}`);
        totallen += alignedlen;
      }
      finalusedlp = i;
    } else {
      itemIdSetUnused(page, i);
      nunused++;
    }
  }
  if (nstorage === 0) {
    pageSetUpper(page, pdSpecial);
  } else {
    if (totallen > pdSpecial - pdLower) {
      throw new PageError(`corrupted item lengths: total ${totallen}, available space ${pdSpecial - pdLower}`);
    }
    compactifyTuples(nstorage, page, presorted);
  }
  if (finalusedlp !== nline) {
    const nunusedend = nline - finalusedlp;
    nunused -= nunusedend;
    pageSetLower(page, pageGetLower(page) - ITEM_ID_SIZE * nunusedend);
  }
  if (nunused > 0) pageSetHasFreeLinePointers(page);
  else pageClearHasFreeLinePointers(page);
}

/** PageTruncateLinePointerArray: drops unused line pointers at the end, never the first one. */
export function pageTruncateLinePointerArray(page: Uint8Array): void {
  let countdone = false;
  let sethint = false;
  let nunusedend = 0;
  for (let i = pageGetMaxOffsetNumber(page); i >= FIRST_OFFSET_NUMBER; i--) {
    if (!countdone && i > FIRST_OFFSET_NUMBER) {
      if (!itemIdIsUsed(page, i)) nunusedend++;
      else countdone = true;
    } else if (!itemIdIsUsed(page, i)) {
      sethint = true;
      break;
    }
  }
  if (nunusedend > 0) pageSetLower(page, pageGetLower(page) - ITEM_ID_SIZE * nunusedend);
  if (sethint) pageSetHasFreeLinePointers(page);
  else pageClearHasFreeLinePointers(page);
}

export function pageGetFreeSpace(page: Uint8Array): number {
  const space = pageGetUpper(page) - pageGetLower(page);
  return space < ITEM_ID_SIZE ? 0 : space - ITEM_ID_SIZE;
}

export function pageGetFreeSpaceForMultipleTuples(page: Uint8Array, ntups: number): number {
  const space = pageGetUpper(page) - pageGetLower(page);
  return space < ntups * ITEM_ID_SIZE ? 0 : space - ntups * ITEM_ID_SIZE;
}

export function pageGetExactFreeSpace(page: Uint8Array): number {
  const space = pageGetUpper(page) - pageGetLower(page);
  return space < 0 ? 0 : space;
}

export function pageGetHeapFreeSpace(page: Uint8Array): number {
  let space = pageGetFreeSpace(page);
  if (space > 0) {
    const nline = pageGetMaxOffsetNumber(page);
    if (nline >= MAX_HEAP_TUPLES_PER_PAGE) {
      if (pageHasFreeLinePointers(page)) {
        let offnum = FIRST_OFFSET_NUMBER;
        for (; offnum <= nline; offnum++) {
          if (!itemIdIsUsed(page, offnum)) break;
        }
        if (offnum > nline) space = 0;
      } else {
        space = 0;
      }
    }
  }
  return space;
}

function checkIndexOffnum(page: Uint8Array, offnum: number): void {
  if (offnum <= 0 || offnum > pageGetMaxOffsetNumber(page)) throw new PageError(`invalid index offnum: ${offnum}`);
}

/** The index functions' line pointer test: item inside [pd_upper, pd_special), MAXALIGNed. */
function checkIndexItem(page: Uint8Array, offnum: number): void {
  const size = itemIdGetLength(page, offnum);
  const offset = itemIdGetOffset(page, offnum);
  if (offset < pageGetUpper(page) || offset + size > pageGetSpecial(page) || offset !== maxAlign(offset)) {
    throw new PageError(`corrupted line pointer: offset = ${offset}, size = ${size}`);
  }
}

/** PageIndexTupleDelete: removes one item and its line pointer, closing both gaps. */
export function pageIndexTupleDelete(page: Uint8Array, offnum: number): void {
  checkPagePointers(page, true);
  checkIndexOffnum(page, offnum);
  let nline = pageGetMaxOffsetNumber(page);
  checkIndexItem(page, offnum);
  const offset = itemIdGetOffset(page, offnum);
  const size = maxAlign(itemIdGetLength(page, offnum));
  const nbytes = pageGetLower(page) - itemIdPos(offnum + 1);
  if (nbytes > 0) page.copyWithin(itemIdPos(offnum), itemIdPos(offnum + 1), itemIdPos(offnum + 1) + nbytes);
  const pdUpper = pageGetUpper(page);
  if (offset > pdUpper) page.copyWithin(pdUpper + size, pdUpper, offset);
  pageSetUpper(page, pdUpper + size);
  pageSetLower(page, pageGetLower(page) - ITEM_ID_SIZE);
  if (!pageIsEmpty(page)) {
    nline--;
    for (let i = 1; i <= nline; i++) {
      const o = itemIdGetOffset(page, i);
      if (o <= offset) itemIdSetOffset(page, i, o + size);
    }
  }
}

/** PageIndexMultiDelete: itemnos[0, nitems) in increasing order, as PostgreSQL requires. */
export function pageIndexMultiDelete(page: Uint8Array, itemnos: ArrayLike<number>, nitems: number): void {
  if (nitems <= 2) {
    while (--nitems >= 0) pageIndexTupleDelete(page, itemnos[nitems]);
    return;
  }
  checkPagePointers(page, true);
  const pdLower = pageGetLower(page);
  const pdSpecial = pageGetSpecial(page);
  const nline = pageGetMaxOffsetNumber(page);
  let totallen = 0;
  let nused = 0;
  let nextitm = 0;
  let lastOffset = pdSpecial;
  let presorted = true;
  for (let offnum = FIRST_OFFSET_NUMBER; offnum <= nline; offnum++) {
    checkIndexItem(page, offnum);
    if (nextitm < nitems && offnum === itemnos[nextitm]) {
      nextitm++;
    } else {
      const offset = itemIdGetOffset(page, offnum);
      cOffsetIndex[nused] = nused;
      cItemOff[nused] = offset;
      if (lastOffset > offset) lastOffset = offset;
      else presorted = false;
      cAlignedLen[nused] = maxAlign(itemIdGetLength(page, offnum));
      totallen += cAlignedLen[nused];
      newItemIds[nused] = itemIdRaw(page, offnum);
      nused++;
    }
  }
  if (nextitm !== nitems) throw new PageError('incorrect index offsets supplied');
  if (totallen > pdSpecial - pdLower) {
    throw new PageError(`corrupted item lengths: total ${totallen}, available space ${pdSpecial - pdLower}`);
  }
  for (let i = 0; i < nused; i++) itemIdSetRaw(page, i + 1, newItemIds[i]);
  pageSetLower(page, SIZE_OF_PAGE_HEADER_DATA + nused * ITEM_ID_SIZE);
  if (nused > 0) compactifyTuples(nused, page, presorted);
  else pageSetUpper(page, pdSpecial);
}

/** PageIndexTupleDeleteNoCompact: the line pointer becomes unused (or goes, if it is the last). */
export function pageIndexTupleDeleteNoCompact(page: Uint8Array, offnum: number): void {
  checkPagePointers(page, true);
  checkIndexOffnum(page, offnum);
  let nline = pageGetMaxOffsetNumber(page);
  checkIndexItem(page, offnum);
  const offset = itemIdGetOffset(page, offnum);
  const size = maxAlign(itemIdGetLength(page, offnum));
  if (offnum < nline) {
    itemIdSetUnused(page, offnum);
  } else {
    pageSetLower(page, pageGetLower(page) - ITEM_ID_SIZE);
    nline--;
  }
  const pdUpper = pageGetUpper(page);
  if (offset > pdUpper) page.copyWithin(pdUpper + size, pdUpper, offset);
  pageSetUpper(page, pdUpper + size);
  if (!pageIsEmpty(page)) {
    for (let i = 1; i <= nline; i++) {
      const o = itemIdGetOffset(page, i);
      if (itemIdHasStorage(page, i) && o <= offset) itemIdSetOffset(page, i, o + size);
    }
  }
}

/** PageIndexTupleOverwrite: replaces the item at offnum in place; false when it does not fit. */
export function pageIndexTupleOverwrite(page: Uint8Array, offnum: number, item: Uint8Array, itemOff: number, size: number): boolean {
  checkPagePointers(page, true);
  const itemcount = pageGetMaxOffsetNumber(page);
  checkIndexOffnum(page, offnum);
  checkIndexItem(page, offnum);
  const offset = itemIdGetOffset(page, offnum);
  const oldsize = maxAlign(itemIdGetLength(page, offnum));
  const alignednewsize = maxAlign(size);
  const pdUpper = pageGetUpper(page);
  const pdLower = pageGetLower(page);
  if (alignednewsize > oldsize + (pdUpper - pdLower)) return false;
  const sizeDiff = oldsize - alignednewsize;
  if (sizeDiff !== 0) {
    page.copyWithin(pdUpper + sizeDiff, pdUpper, offset);
    pageSetUpper(page, pdUpper + sizeDiff);
    for (let i = FIRST_OFFSET_NUMBER; i <= itemcount; i++) {
      const o = itemIdGetOffset(page, i);
      if (itemIdHasStorage(page, i) && o <= offset) itemIdSetOffset(page, i, o + sizeDiff);
    }
  }
  itemIdSetRaw(page, offnum, makeItemId(offset + sizeDiff, itemIdGetFlags(page, offnum), size));
  page.set(item.subarray(itemOff, itemOff + size), itemIdGetOffset(page, offnum));
  return true;
}

/** Op numbers of the bufpage test hook (native/pg/pg_addon.cc, pgPageOp). */
export const PAGE_OP = {
  init: 0,
  addItem: 1,
  repairFragmentation: 2,
  truncateLinePointerArray: 3,
  indexTupleDelete: 4,
  indexMultiDelete: 5,
  indexTupleDeleteNoCompact: 6,
  indexTupleOverwrite: 7,
  getHeapFreeSpace: 8,
  getFreeSpace: 9,
  getExactFreeSpace: 10,
  getTempPageCopySpecial: 11,
} as const;

/** The TS side of the test hook: same op numbers and arguments as the native pgPageOp. */
export function pageOp(op: number, page: Uint8Array, a: number, b: number, bytes: Uint8Array): number {
  switch (op) {
    case PAGE_OP.init: pageInit(page, a); return 0;
    case PAGE_OP.addItem: return pageAddItemExtended(page, bytes, 0, bytes.length, a, b);
    case PAGE_OP.repairFragmentation: pageRepairFragmentation(page); return 0;
    case PAGE_OP.truncateLinePointerArray: pageTruncateLinePointerArray(page); return 0;
    case PAGE_OP.indexTupleDelete: pageIndexTupleDelete(page, a); return 0;
    case PAGE_OP.indexMultiDelete: {
      const items = new Uint16Array(bytes.length >> 1);
      for (let i = 0; i < items.length; i++) items[i] = loadLe16(bytes, 2 * i);
      pageIndexMultiDelete(page, items, items.length);
      return 0;
    }
    case PAGE_OP.indexTupleDeleteNoCompact: pageIndexTupleDeleteNoCompact(page, a); return 0;
    case PAGE_OP.indexTupleOverwrite: return pageIndexTupleOverwrite(page, a, bytes, 0, bytes.length) ? 1 : 0;
    case PAGE_OP.getHeapFreeSpace: return pageGetHeapFreeSpace(page);
    case PAGE_OP.getFreeSpace: return pageGetFreeSpace(page);
    case PAGE_OP.getExactFreeSpace: return pageGetExactFreeSpace(page);
    case PAGE_OP.getTempPageCopySpecial: pageGetTempPageCopySpecial(page, bytes); return 0;
    default: throw new PageError(`unknown page op ${op}`);
  }
}
