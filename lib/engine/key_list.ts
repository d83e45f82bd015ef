/**
 * Keys packed back to back in one buffer. Image creation holds a partition's keys (16,384 at the
 * default target size) for the seconds its image takes to write: as one Buffer object per key they
 * outlived every young-generation GC of the TS core's event loop, ≈ 2 MB copied per scavenge and
 * promoted after, in W7's storm (PERFORMANCE.md). One buffer is one object however many keys.
 */
import { KEY_SIZE } from '../key';

/** Keys room is made for at first; the buffer doubles when full. */
const INITIAL_KEYS = 256;

export class KeyList implements Iterable<Buffer> {
  private bytes: Buffer;
  private count = 0;

  constructor(expectedKeys = INITIAL_KEYS) {
    this.bytes = Buffer.allocUnsafe(Math.max(1, expectedKeys) * KEY_SIZE);
  }

  get length(): number {
    return this.count;
  }

  /** Appends a copy of `key`'s KEY_SIZE bytes (the caller may reuse `key`'s memory after). */
  push(key: Buffer): void {
    if (key.length !== KEY_SIZE) throw new RangeError(`a key is ${KEY_SIZE} bytes, not ${key.length}`);
    const at = this.count * KEY_SIZE;
    if (at === this.bytes.length) {
      const grown = Buffer.allocUnsafe(2 * this.bytes.length);
      this.bytes.copy(grown);
      this.bytes = grown;
    }
    key.copy(this.bytes, at);
    this.count++;
  }

  /** The i-th key: a view of the list's memory, valid as long as the list. */
  at(i: number): Buffer {
    if (!(i >= 0 && i < this.count)) throw new RangeError(`key ${i} of a list of ${this.count}`);
    return this.bytes.subarray(i * KEY_SIZE, (i + 1) * KEY_SIZE);
  }

  *[Symbol.iterator](): Iterator<Buffer> {
    for (let i = 0; i < this.count; i++) yield this.bytes.subarray(i * KEY_SIZE, (i + 1) * KEY_SIZE);
  }
}
