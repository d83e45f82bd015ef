/**
 * The redo engine: turns a reconstruction chain (records newest first, ending at a will_init
 * record) into a page. Records are referenced in place (buffer, offset, length) so collecting a
 * chain allocates nothing per record; every record was checked when it entered the chain.
 */
import { RecordArena, copyBytes, type RecordSlot } from './block_io';
import { PAGE_SIZE, PATCH_HEADER_SIZE, RECORD_TAG_IMAGE, RECORD_TAG_PATCH, RECORD_TAG_ZERO } from '../../record';

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
   * is the base, then the patches from oldest to newest. Returns the records applied.
   */
  redoInto(out: Uint8Array, outOff: number): number {
    const n = this.length;
    applyBase(this.bufs[n - 1], this.offs[n - 1], out, outOff);
    for (let i = n - 2; i >= 0; i--) applyPatch(this.bufs[i], this.offs[i], this.lens[i], out, outOff);
    return n;
  }
}

/** Base of a reconstruction: an image is copied, a zero record gives an all-zero page. */
export function applyBase(rec: Buffer, off: number, out: Uint8Array, outOff: number): void {
  if (rec[off] === RECORD_TAG_IMAGE) copyBytes(rec, off + 1, out, outOff, PAGE_SIZE);
  else out.fill(0, outOff, outOff + PAGE_SIZE);
}

/**
 * Apply one record on top of the page. Patches write their data at their offset; a will_init
 * record in the middle of a chain cannot happen (the chain stops at the first one), but applying
 * it as a base keeps the function total.
 */
export function applyPatch(rec: Buffer, off: number, len: number, out: Uint8Array, outOff: number): void {
  const tag = rec[off];
  if (tag === RECORD_TAG_PATCH) {
    const at = (rec[off + 1] << 8) | rec[off + 2];
    copyBytes(rec, off + PATCH_HEADER_SIZE, out, outOff + at, len - PATCH_HEADER_SIZE);
  } else if (tag === RECORD_TAG_IMAGE || tag === RECORD_TAG_ZERO) {
    applyBase(rec, off, out, outOff);
  }
}
