/**
 * Byte copies on hot paths (redo, block reads, flush encoding). Buffer.copy and TypedArray.set
 * make a view per call, which costs more than copying a few dozen bytes by hand.
 */

/** Below this many bytes a plain loop beats Buffer.copy / set. */
const SMALL_COPY_BYTES = 64;

/** dst[dstOff, +n) = src[srcOff, +n) (distinct buffers, ranges already checked by the caller). */
export function copyBytes(src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number, n: number): void {
  if (n < SMALL_COPY_BYTES) {
    for (let i = 0; i < n; i++) dst[dstOff + i] = src[srcOff + i];
  } else {
    dst.set(src.subarray(srcOff, srcOff + n), dstOff);
  }
}

/** `v` as 4 big-endian bytes at b[o] (no range or integer checks, unlike Buffer.writeUInt32BE). */
export function putU32BE(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = v >>> 16;
  b[o + 2] = v >>> 8;
  b[o + 3] = v;
}
