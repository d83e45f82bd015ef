/**
 * The redo engine: turns a reconstruction chain (records newest first, ending at a will_init
 * record) into a page. Records are referenced in place (buffer, offset, length) so collecting a
 * chain allocates nothing per record; every record was checked when it entered the chain. A stored
 * PostgreSQL record (tag 4) is redone by ./pg/rmgr; one that cannot be throws WAL_UNSUPPORTED or
 * REDO_FAILED (the reader adds the page key). TS twin of native/walredo.cc.
 */
import { copyBytes } from '../../bytes';
import { RecordArena, type RecordSlot } from './block_io';
import { StrataError } from '../../errors';
import {
  checkSerializedRecord, PAGE_SIZE, PATCH_HEADER_SIZE, RECORD_TAG_IMAGE, RECORD_TAG_PATCH, RECORD_TAG_PG, RECORD_TAG_VALUE, recordWillInit,
} from '../../record';
import { checkRedoRecord } from './pg/redo_record';
import { redoRecord } from './pg/rmgr';

/**
 * What the core accepts from a layer file or a read plan (CheckSerializedRecord in native/walredo.cc):
 * ../../record's check, and for a stored PostgreSQL record its own layout.
 */
export function validateRecord(rec: Uint8Array): string | null {
  const err = checkSerializedRecord(rec);
  if (err !== null || rec[0] !== RECORD_TAG_PG) return err;
  return checkRedoRecord(rec, 0, rec.length);
}

/** Room for a handful of image records before the arena has to grow. */
const INITIAL_ARENA_BYTES = 256 * 1024;

export class RecordChain {
  /** Raw records copied out of layer files land here; reset with the chain. */
  readonly arena = new RecordArena(INITIAL_ARENA_BYTES);
  private bufs: Buffer[] = [];
  private offs: number[] = [];
  private lens: number[] = [];
  length = 0;

  reset(): void {
    this.length = 0;
    this.arena.reset();
  }

  push(buf: Buffer, off: number, len: number): void {
    const i = this.length++;
    this.bufs[i] = buf;
    this.offs[i] = off;
    this.lens[i] = len;
  }

  pushSlot(slot: RecordSlot): void {
    this.push(slot.buf, slot.off, slot.len);
  }

  /**
   * Apply the chain into `out[outOff, outOff + PAGE_SIZE)`: the oldest record (an image or zero)
   * is the base, then the rest from oldest to newest. Returns the records applied.
   */
  redoInto(out: Uint8Array, outOff: number): number {
    const n = this.length;
    if (n === 0) throw new StrataError('BAD_ARGUMENT', 'no records to apply');
    if (!recordWillInit(this.bufs[n - 1], this.offs[n - 1])) {
      throw new StrataError('BAD_ARGUMENT', 'the oldest record of the chain does not initialize the page');
    }
    applyBase(this.bufs[n - 1], this.offs[n - 1], this.lens[n - 1], out, outOff);
    for (let i = n - 2; i >= 0; i--) applyPatch(this.bufs[i], this.offs[i], this.lens[i], out, outOff);
    return n;
  }
}

/**
 * Base of a reconstruction: an image is copied, a zero record gives an all-zero page, a value
 * record its payload followed by zeros.
 */
export function applyBase(rec: Buffer, off: number, len: number, out: Uint8Array, outOff: number): void {
  if (rec[off] === RECORD_TAG_IMAGE) {
    copyBytes(rec, off + 1, out, outOff, PAGE_SIZE);
    return;
  }
  out.fill(0, outOff, outOff + PAGE_SIZE);
  if (rec[off] === RECORD_TAG_VALUE) copyBytes(rec, off + 1, out, outOff, len - 1);
  // A will_init PostgreSQL record is redone on the zero page (XLogInitBufferForRedo).
  else if (rec[off] === RECORD_TAG_PG) redoRecord(rec, off, len, out, outOff);
}

/**
 * Apply one record on top of the page. Patches write their data at their offset; a
 * page-initializing record starts the page afresh wherever it sits. Reading a chain back from its
 * newest record stops at the first such record, so this only makes the function total; the C++
 * twin (native/walredo.cc) does the same (docs/FORMAT.md, "Records").
 */
export function applyPatch(rec: Buffer, off: number, len: number, out: Uint8Array, outOff: number): void {
  const tag = rec[off];
  if (tag === RECORD_TAG_PATCH) {
    const at = (rec[off + 1] << 8) | rec[off + 2];
    copyBytes(rec, off + PATCH_HEADER_SIZE, out, outOff + at, len - PATCH_HEADER_SIZE);
  } else if (tag === RECORD_TAG_PG && !recordWillInit(rec, off)) {
    redoRecord(rec, off, len, out, outOff);
  } else if (recordWillInit(rec, off)) {
    applyBase(rec, off, len, out, outOff);
  }
}

/** Redo `records` (serialized, newest first) into `out` alone: the test hook twin of the addon's redoChain. */
export function redoChain(records: readonly Uint8Array[], out: Uint8Array): void {
  if (out.length !== PAGE_SIZE) throw new StrataError('BAD_ARGUMENT', 'out must be 8192 bytes');
  const chain = new RecordChain();
  records.forEach((r, i) => {
    const err = validateRecord(r);
    if (err !== null) throw new StrataError('BAD_ARGUMENT', `record ${i}: ${err}`);
    chain.push(Buffer.from(r.buffer, r.byteOffset, r.length), 0, r.length);
  });
  chain.redoInto(out, 0);
}
