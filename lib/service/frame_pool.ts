/**
 * Answer frames reused once the socket has handed them to the kernel.
 *
 * A cached GetPage costs the server one 8 KiB frame; at tens of thousands of answers a second a
 * fresh Buffer per answer is hundreds of MB/s of external memory, and V8 answers that with a
 * mark-compact every few hundred milliseconds (measured: ~5 per second, up to 14 ms each, which
 * was the p99 of a half-loaded connection). A frame goes back to the pool from the write's
 * callback, when Node no longer holds it, so steady reading allocates nothing.
 */

/** Bytes of idle frames a server keeps (per size, summed): what an idle server holds at most. */
export const FRAME_POOL_BYTES = 8 * 1024 * 1024;

export class FramePool {
  private readonly free = new Map<number, Buffer[]>();
  private idleBytes = 0;
  /** Frames handed out that came from the pool, for tests and stats. */
  reused = 0;

  constructor(private readonly limitBytes: number = FRAME_POOL_BYTES) {}

  /** A buffer of exactly `bytes`, its contents undefined. */
  take(bytes: number): Buffer {
    const list = this.free.get(bytes);
    const b = list?.pop();
    if (b === undefined) return Buffer.allocUnsafeSlow(bytes);
    this.idleBytes -= bytes;
    this.reused++;
    return b;
  }

  /** Return a buffer nobody references any more; dropped when the pool is full. */
  give(b: Buffer): void {
    if (this.idleBytes + b.length > this.limitBytes) return;
    let list = this.free.get(b.length);
    if (list === undefined) {
      list = [];
      this.free.set(b.length, list);
    }
    list.push(b);
    this.idleBytes += b.length;
  }

  /** Bytes held by idle frames. */
  get idle(): number {
    return this.idleBytes;
  }
}
