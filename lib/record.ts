import { describeValue, StrataError } from './errors';
import { checkKey, formatKey, type PageKey } from './key';
import { checkLsn, formatLsn, type Lsn } from './lsn';

/** PostgreSQL page size; every page Strata stores or returns is exactly this long. */
export const PAGE_SIZE = 8192;

/**
 * The records the redo engine applies. Serialized form (record format version 1), see docs/FORMAT.md:
 *   image: tag 1, then 8192 page bytes           (will_init)
 *   zero:  tag 2, nothing else                  (will_init)
 *   patch: tag 3, u16 BE offset, then the data   (applies to the previous version)
 *   pg:    tag 4, a stored PostgreSQL record for one block (docs/POSTGRES.md; will_init when its
 *          target block is), written by the PostgreSQL ingest path, redone by the core
 *   value: tag 5, a payload under a non-page key (will_init)
 * New kinds get new tags; readers reject unknown tags.
 */
export type WalRecord = ImageRecord | ZeroRecord | PatchRecord;

export interface ImageRecord { lsn: Lsn; key: PageKey; kind: 'image'; page: Uint8Array }
export interface ZeroRecord { lsn: Lsn; key: PageKey; kind: 'zero' }
export interface PatchRecord { lsn: Lsn; key: PageKey; kind: 'patch'; offset: number; data: Uint8Array }

/**
 * The record format a layer's summary declares: 2 since PostgreSQL records (tag 4) and values
 * (tag 5); readers accept 1 (tags 1–3 only) and 2, so older layers stay readable and an older
 * Strata refuses a newer layer at open instead of failing on its first PostgreSQL record.
 */
export const RECORD_FORMAT_VERSION = 2;
export const OLDEST_RECORD_FORMAT_VERSION = 1;
export const RECORD_TAG_IMAGE = 1;
export const RECORD_TAG_ZERO = 2;
export const RECORD_TAG_PATCH = 3;
/** A stored PostgreSQL record for one block (docs/POSTGRES.md, "Stored record"). */
export const RECORD_TAG_PG = 4;
/**
 * A small value under a non-page key (a relation's size, say), written by the engine's own ingest
 * paths, never by callers: tag 5, then up to 8192 payload bytes; it initializes the "page", which
 * reads back as the payload followed by zeros.
 */
export const RECORD_TAG_VALUE = 5;
export const PATCH_HEADER_SIZE = 3;
/**
 * Largest serialized record, 128 KiB. Strata's own kinds stay within a page (a patch covering the
 * whole page is 8195 bytes); a stored PostgreSQL record can in principle reach 24 + 33 × 24 + 65535
 * bytes plus its main data, far above any heap or btree record. docs/FORMAT.md says what happens
 * to a larger one.
 */
export const MAX_RECORD_SIZE = 128 * 1024;

// Where a stored PostgreSQL record keeps what recordWillInit needs (docs/POSTGRES.md).
const PG_TARGET_ID = 2;
const PG_NBLOCKS = 18;
const PG_HEADER_SIZE = 24;
const PG_BLOCK_REF_SIZE = 24;
const PG_BLOCK_FLAGS = 2;
const BKPBLOCK_WILL_INIT = 0x40;

/**
 * Whether recordWillInit reads only inside a `len`-byte serialized record at rec[off]: a stored
 * PostgreSQL record must hold the block references its header counts.
 */
export function recordWillInitFits(rec: Uint8Array, off: number, len: number): boolean {
  return len > 0 && (rec[off] !== RECORD_TAG_PG || (len >= PG_HEADER_SIZE && len >= PG_HEADER_SIZE + rec[off + PG_NBLOCKS] * PG_BLOCK_REF_SIZE));
}

/**
 * True when the serialized record initializes the page, so reconstruction stops there. A stored
 * PostgreSQL record (already checked) does when its target block carries BKPBLOCK_WILL_INIT.
 */
export function recordWillInit(rec: Uint8Array, off = 0): boolean {
  const tag = rec[off];
  if (tag === RECORD_TAG_PG) {
    for (let i = 0; i < rec[off + PG_NBLOCKS]; i++) {
      const ref = off + PG_HEADER_SIZE + i * PG_BLOCK_REF_SIZE;
      if (rec[ref] === rec[off + PG_TARGET_ID]) return (rec[ref + PG_BLOCK_FLAGS] & BKPBLOCK_WILL_INIT) !== 0;
    }
    return false;
  }
  return tag === RECORD_TAG_IMAGE || tag === RECORD_TAG_ZERO || tag === RECORD_TAG_VALUE;
}

/** A value record (tag 5) holding `payload` (≤ 8192 bytes). */
export function serializeValueRecord(payload: Uint8Array): Buffer {
  if (payload.length > PAGE_SIZE) throw new StrataError('BAD_RECORD', `a value record holds at most ${PAGE_SIZE} bytes, got ${payload.length}`);
  const out = Buffer.allocUnsafe(1 + payload.length);
  out[0] = RECORD_TAG_VALUE;
  out.set(payload, 1);
  return out;
}

/** Validate one record and return its serialized form. Throws BAD_RECORD / BAD_ARGUMENT. */
export function serializeRecord(r: WalRecord): Buffer {
  const out = Buffer.allocUnsafe(checkRecord(r));
  writeRecord(r, out, 0);
  return out;
}

/**
 * Validate one record (BAD_RECORD / BAD_ARGUMENT) and return the length of its serialized form,
 * so ingest can check a whole batch first and then write every record straight into the
 * in-memory layer's arena with writeRecord, without a Buffer of its own.
 */
export function checkRecord(r: WalRecord): number {
  if (r === null || typeof r !== 'object') throw new StrataError('BAD_RECORD', 'record must be an object');
  checkLsn(r.lsn, 'record lsn');
  checkKey(r.key);
  switch (r.kind) {
    case 'image':
      if (!(r.page instanceof Uint8Array) || r.page.length !== PAGE_SIZE) {
        throw new StrataError('BAD_RECORD', `${where(r)}: image page must be a ${PAGE_SIZE}-byte Uint8Array, got ${describeLen(r.page)}`);
      }
      return 1 + PAGE_SIZE;
    case 'zero':
      return 1;
    case 'patch': {
      const { offset, data } = r;
      if (!(data instanceof Uint8Array) || data.length === 0) {
        throw new StrataError('BAD_RECORD', `${where(r)}: patch data must be a non-empty Uint8Array, got ${describeLen(data)}`);
      }
      if (!Number.isInteger(offset) || offset < 0 || offset + data.length > PAGE_SIZE) {
        throw new StrataError('BAD_RECORD', `${where(r)}: patch [${describeValue(offset)}, +${data.length}) falls outside the ${PAGE_SIZE}-byte page`);
      }
      return PATCH_HEADER_SIZE + data.length;
    }
    default:
      throw new StrataError('BAD_RECORD', `${where(r)}: unknown record kind ${JSON.stringify((r as { kind?: unknown }).kind)}`);
  }
}

/**
 * Write the serialized form of a record checkRecord accepted at out[off, off + its length). It
 * reads the record again: a caller's typed array cannot change length in between (records are
 * plain data by contract), so the bytes land exactly in the space checkRecord sized.
 */
export function writeRecord(r: WalRecord, out: Buffer, off: number): void {
  switch (r.kind) {
    case 'image':
      out[off] = RECORD_TAG_IMAGE;
      out.set(r.page, off + 1);
      return;
    case 'zero':
      out[off] = RECORD_TAG_ZERO;
      return;
    case 'patch':
      out[off] = RECORD_TAG_PATCH;
      out[off + 1] = r.offset >>> 8;
      out[off + 2] = r.offset;
      out.set(r.data, off + PATCH_HEADER_SIZE);
      return;
  }
}

/**
 * Check a serialized record read back from anywhere; returns an error text or null if it is well
 * formed. A stored PostgreSQL record is checked for its size here; its own layout is the core's to
 * check (validateRecord in lib/core/ts/walredo.ts, CheckSerializedRecord in native/walredo.cc).
 */
export function checkSerializedRecord(rec: Uint8Array): string | null {
  if (rec.length === 0) return 'empty record';
  switch (rec[0]) {
    case RECORD_TAG_PG:
      return rec.length <= MAX_RECORD_SIZE ? null : 'PostgreSQL record longer than 128 KiB';
    case RECORD_TAG_IMAGE:
      return rec.length === 1 + PAGE_SIZE ? null : `image record of ${rec.length} bytes`;
    case RECORD_TAG_ZERO:
      return rec.length === 1 ? null : `zero record of ${rec.length} bytes`;
    case RECORD_TAG_VALUE:
      return rec.length <= 1 + PAGE_SIZE ? null : `value record of ${rec.length} bytes`;
    case RECORD_TAG_PATCH: {
      if (rec.length <= PATCH_HEADER_SIZE) return `patch record of ${rec.length} bytes`;
      const offset = (rec[1] << 8) | rec[2];
      const len = rec.length - PATCH_HEADER_SIZE;
      return offset + len <= PAGE_SIZE ? null : `patch [${offset}, +${len}) outside the page`;
    }
    default:
      return `unknown record tag ${rec[0]}`;
  }
}

/** Names a record in an error (a function, not a closure made per record: ingest checks every record). */
function where(r: WalRecord): string {
  return `record at LSN ${formatLsn(r.lsn)} for page ${formatKey(r.key)}`;
}

function describeLen(v: unknown): string {
  return v instanceof Uint8Array ? `${v.length} bytes` : typeof v;
}
