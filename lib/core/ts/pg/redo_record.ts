/**
 * The stored PostgreSQL record for one block (record tag 4): a bounds-checked parse view (TS twin
 * of native/pg/redo_record.{h,cc}). Layout in docs/POSTGRES.md, "Stored record": a 24-byte
 * header, n 24-byte block references, the target block's data, the main data. Also the step every
 * redo function starts with: PostgreSQL's XLogReadBufferForRedo and XLogInitBufferForRedo for the
 * one block a stored record is redone on.
 */
import { PageError, pageGetLower, pageGetSpecial, pageGetUpper, pageHeaderIsValid, pageIsNew, pageLsnAtLeast } from './bufpage';
import { BLCKSZ, loadLe16, loadLe32 } from './pg_format';

import {
  BKPBLOCK_FORK_MASK, BKPBLOCK_HAS_DATA, BKPBLOCK_HAS_IMAGE, BKPBLOCK_SAME_REL, BKPBLOCK_WILL_INIT, BKPIMAGE_APPLY, BKPIMAGE_HAS_HOLE,
  BKPIMAGE_VALID_BITS, CLUSTER_FLAG_CHECKSUMS, CLUSTER_FLAG_WAL_LOG_HINTS, MAX_BLOCK_ID, RECORD_TAG_PG, STORED_BLOCK_REF_SIZE, STORED_FLAG_TRUNCATED,
  STORED_HEADER_SIZE,
} from '../../pg_wal_format';

export {
  BKPBLOCK_FORK_MASK, BKPBLOCK_HAS_DATA, BKPBLOCK_HAS_IMAGE, BKPBLOCK_SAME_REL, BKPBLOCK_WILL_INIT, BKPIMAGE_APPLY, BKPIMAGE_HAS_HOLE,
  BKPIMAGE_VALID_BITS, MAX_BLOCK_ID, RECORD_TAG_PG, STORED_BLOCK_REF_SIZE, STORED_HEADER_SIZE,
};
export const MAX_STORED_BLOCK_REFS = MAX_BLOCK_ID + 1;
export const CLUSTER_DATA_CHECKSUMS = CLUSTER_FLAG_CHECKSUMS;
export const CLUSTER_WAL_LOG_HINTS = CLUSTER_FLAG_WAL_LOG_HINTS;
export const CLUSTER_FLAGS_MASK = CLUSTER_DATA_CHECKSUMS | CLUSTER_WAL_LOG_HINTS;

/** INIT_FORKNUM. */
export const MAX_FORK_NUMBER = 3;

// Header field offsets.
const OFF_TAG = 0;
const OFF_CLUSTER_FLAGS = 1;
const OFF_TARGET_ID = 2;
const OFF_STORAGE_FLAGS = 3;
const OFF_LSN = 4;
const OFF_XID = 12;
const OFF_RMID = 16;
const OFF_INFO = 17;
const OFF_NBLOCKS = 18;
const OFF_RESERVED2 = 19;
const OFF_MAIN_LEN = 20;

// Block reference field offsets.
const REF_ID = 0;
const REF_FORK = 1;
const REF_FLAGS = 2;
const REF_BIMG_INFO = 3;
const REF_SPC = 4;
const REF_DB = 8;
const REF_REL = 12;
const REF_BLOCK = 16;
const REF_DATA_LEN = 20;
const REF_RESERVED = 22;

/** One block reference as stored; dataLen is 0 for every block but the target. */
export interface BlockRef {
  id: number;
  fork: number;
  flags: number;
  bimgInfo: number;
  spcOid: number;
  dbOid: number;
  relNumber: number;
  blockNumber: number;
  dataLen: number;
}

export function blockWillInit(b: BlockRef): boolean {
  return (b.flags & BKPBLOCK_WILL_INIT) !== 0;
}

export function blockHasImage(b: BlockRef): boolean {
  return (b.flags & BKPBLOCK_HAS_IMAGE) !== 0;
}

export function blockImageApplies(b: BlockRef): boolean {
  return blockHasImage(b) && (b.bimgInfo & BKPIMAGE_APPLY) !== 0;
}

function decodeBlockRef(p: Uint8Array, o: number): BlockRef {
  return {
    id: p[o + REF_ID],
    fork: p[o + REF_FORK],
    flags: p[o + REF_FLAGS],
    bimgInfo: p[o + REF_BIMG_INFO],
    spcOid: loadLe32(p, o + REF_SPC),
    dbOid: loadLe32(p, o + REF_DB),
    relNumber: loadLe32(p, o + REF_REL),
    blockNumber: loadLe32(p, o + REF_BLOCK),
    dataLen: loadLe16(p, o + REF_DATA_LEN),
  };
}

/** Checks one block reference (at `o`); returns what is wrong, or null. */
function checkBlockRef(p: Uint8Array, o: number, targetId: number): string | null {
  const id = p[o + REF_ID];
  const flags = p[o + REF_FLAGS];
  const bimg = p[o + REF_BIMG_INFO];
  const dataLen = loadLe16(p, o + REF_DATA_LEN);
  if (id > MAX_BLOCK_ID) return 'block id above 32';
  if (p[o + REF_FORK] > MAX_FORK_NUMBER) return 'fork number above 3';
  if ((flags & BKPBLOCK_FORK_MASK) !== 0) return 'block flags with low bits set';
  if ((flags & BKPBLOCK_HAS_IMAGE) === 0 && bimg !== 0) return 'image info on a block without an image';
  if ((bimg & ~BKPIMAGE_VALID_BITS) !== 0) return 'unknown image info bits';
  if (loadLe16(p, o + REF_RESERVED) !== 0) return 'reserved block field not zero';
  if (id === targetId) {
    if (((flags & BKPBLOCK_HAS_DATA) !== 0) !== (dataLen > 0)) return 'target data length disagrees with HAS_DATA';
  } else if (dataLen !== 0) {
    return 'data length stored for a block other than the target';
  }
  return null;
}

/**
 * A parsed, validated stored record; `parse` refills it, so one view can serve a whole chain.
 * Offsets (`blockDataOff`, `mainDataOff`) index `buf`.
 */
export class RedoRecordView {
  buf: Uint8Array = new Uint8Array(0);
  off = 0;
  len = 0;
  clusterFlags = 0;
  targetId = 0;
  /** End LSN of the WAL record, as its high and low 32 bits. */
  lsnHi = 0;
  lsnLo = 0;
  xid = 0;
  rmid = 0;
  info = 0;
  /** The record was too large to store: header and block references only (STORED_FLAG_TRUNCATED). */
  truncated = false;
  nblocks = 0;
  targetIndex = 0;
  blockDataOff = 0;
  blockDataLen = 0;
  mainDataOff = 0;
  mainDataLen = 0;

  /**
   * Parses the stored tag-4 value at buf[off, off + len). Returns null and fills the view when it is
   * well formed, else what is wrong (the view is then unspecified). The checks are those of
   * native/pg/redo_record.h, in the same order and with the same texts.
   */
  parse(buf: Uint8Array, off: number, len: number): string | null {
    if (len < STORED_HEADER_SIZE) return 'PostgreSQL record shorter than its header';
    if (buf[off + OFF_TAG] !== RECORD_TAG_PG) return 'not a PostgreSQL record';
    if ((buf[off + OFF_CLUSTER_FLAGS] & ~CLUSTER_FLAGS_MASK) !== 0) return 'unknown cluster flags';
    if ((buf[off + OFF_STORAGE_FLAGS] & ~STORED_FLAG_TRUNCATED) !== 0 || buf[off + OFF_RESERVED2] !== 0) return 'reserved header byte not zero';
    const nblocks = buf[off + OFF_NBLOCKS];
    if (nblocks === 0) return 'PostgreSQL record without block references';
    if (nblocks > MAX_STORED_BLOCK_REFS) return 'more than 33 block references';
    const refsEnd = STORED_HEADER_SIZE + nblocks * STORED_BLOCK_REF_SIZE;
    if (len < refsEnd) return 'PostgreSQL record shorter than its block references';
    const targetId = buf[off + OFF_TARGET_ID];
    let targetIndex = nblocks;
    let prevId = -1;
    for (let i = 0; i < nblocks; i++) {
      const o = off + STORED_HEADER_SIZE + i * STORED_BLOCK_REF_SIZE;
      const err = checkBlockRef(buf, o, targetId);
      if (err !== null) return err;
      if (buf[o + REF_ID] <= prevId) return 'block references not in increasing id order';
      prevId = buf[o + REF_ID];
      if (buf[o + REF_ID] === targetId) targetIndex = i;
    }
    if (targetIndex === nblocks) return 'no block reference with the target id';
    const dataLen = loadLe16(buf, off + STORED_HEADER_SIZE + targetIndex * STORED_BLOCK_REF_SIZE + REF_DATA_LEN);
    const mainLen = loadLe32(buf, off + OFF_MAIN_LEN);
    if (len !== refsEnd + dataLen + mainLen) return 'PostgreSQL record length does not add up';
    this.buf = buf;
    this.off = off;
    this.len = len;
    this.clusterFlags = buf[off + OFF_CLUSTER_FLAGS];
    this.targetId = targetId;
    this.lsnLo = loadLe32(buf, off + OFF_LSN);
    this.lsnHi = loadLe32(buf, off + OFF_LSN + 4);
    this.xid = loadLe32(buf, off + OFF_XID);
    this.rmid = buf[off + OFF_RMID];
    this.info = buf[off + OFF_INFO];
    this.truncated = (buf[off + OFF_STORAGE_FLAGS] & STORED_FLAG_TRUNCATED) !== 0;
    this.nblocks = nblocks;
    this.targetIndex = targetIndex;
    this.blockDataOff = off + refsEnd;
    this.blockDataLen = dataLen;
    this.mainDataOff = off + refsEnd + dataLen;
    this.mainDataLen = mainLen;
    return null;
  }

  /** The i-th block reference (i < nblocks). */
  block(i: number): BlockRef {
    return decodeBlockRef(this.buf, this.off + STORED_HEADER_SIZE + i * STORED_BLOCK_REF_SIZE);
  }

  target(): BlockRef {
    return this.block(this.targetIndex);
  }

  /** The block reference with this id, or null when the record has none. */
  findBlock(id: number): BlockRef | null {
    for (let i = 0; i < this.nblocks; i++) {
      const o = this.off + STORED_HEADER_SIZE + i * STORED_BLOCK_REF_SIZE;
      if (this.buf[o + REF_ID] === id) return decodeBlockRef(this.buf, o);
    }
    return null;
  }

  /** The block number of the reference with this id, or -1 when the record has none (no allocation). */
  blockNumberById(id: number): number {
    for (let i = 0; i < this.nblocks; i++) {
      const o = this.off + STORED_HEADER_SIZE + i * STORED_BLOCK_REF_SIZE;
      if (this.buf[o + REF_ID] === id) return loadLe32(this.buf, o + REF_BLOCK);
    }
    return -1;
  }

  /** Whether the target block carries an image with BKPIMAGE_APPLY. */
  targetImageApplies(): boolean {
    const o = this.off + STORED_HEADER_SIZE + this.targetIndex * STORED_BLOCK_REF_SIZE;
    return (this.buf[o + REF_FLAGS] & BKPBLOCK_HAS_IMAGE) !== 0 && (this.buf[o + REF_BIMG_INFO] & BKPIMAGE_APPLY) !== 0;
  }

  /** The target's block number, without decoding the whole reference. */
  targetBlockNumber(): number {
    return loadLe32(this.buf, this.off + STORED_HEADER_SIZE + this.targetIndex * STORED_BLOCK_REF_SIZE + REF_BLOCK);
  }

  willInit(): boolean {
    const o = this.off + STORED_HEADER_SIZE + this.targetIndex * STORED_BLOCK_REF_SIZE + REF_FLAGS;
    return (this.buf[o] & BKPBLOCK_WILL_INIT) !== 0;
  }

  /** PostgreSQL's XLogHintBitIsNeeded(): data checksums or wal_log_hints. */
  hintBitsLogged(): boolean {
    return (this.clusterFlags & CLUSTER_FLAGS_MASK) !== 0;
  }

  checksums(): boolean {
    return (this.clusterFlags & CLUSTER_DATA_CHECKSUMS) !== 0;
  }
}

/** Validation for layer readers: null when the stored value is well formed, else what is wrong. */
export function checkRedoRecord(buf: Uint8Array, off: number, len: number): string | null {
  return new RedoRecordView().parse(buf, off, len);
}

// ---- the shared first step of every redo function, for the one block being redone ----

/** XLogRedoAction for the one block being redone. */
export enum RedoAction { NeedsRedo, Done }

/**
 * XLogReadBufferForRedo: the page must not be will_init (PostgreSQL PANICs) and must be initialized
 * (PostgreSQL treats a new page as missing); Done when its LSN is already at or past the record's.
 */
export function readBufferForRedo(r: RedoRecordView, page: Uint8Array): RedoAction {
  if (r.willInit()) throw new PageError('block with WILL_INIT flag must be initialized by its redo function');
  if (pageIsNew(page)) throw new PageError('page is new (not initialized); the record needs an existing page');
  if (!pageHeaderIsValid(page)) {
    throw new PageError(`page header is corrupt (pd_lower ${pageGetLower(page)}, pd_upper ${pageGetUpper(page)}, pd_special ${pageGetSpecial(page)})`);
  }
  return pageLsnAtLeast(page, r.lsnHi, r.lsnLo) ? RedoAction.Done : RedoAction.NeedsRedo;
}

/** The same with RBM_ZERO_ON_ERROR (visibility map pages): a new page is accepted. */
export function readBufferForRedoZeroOnError(r: RedoRecordView, page: Uint8Array): RedoAction {
  if (r.willInit()) throw new PageError('block with WILL_INIT flag must be initialized by its redo function');
  return pageLsnAtLeast(page, r.lsnHi, r.lsnLo) ? RedoAction.Done : RedoAction.NeedsRedo;
}

/** XLogInitBufferForRedo: the target must carry BKPBLOCK_WILL_INIT; the page is zeroed. */
export function initBufferForRedo(r: RedoRecordView, page: Uint8Array): void {
  if (!r.willInit()) throw new PageError('block to be initialized in redo must be marked with WILL_INIT flag');
  page.fill(0, 0, BLCKSZ);
}
