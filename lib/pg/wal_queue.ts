/**
 * The hand-over between the WAL receiver (walreceiver.ts), which gets WAL bytes from the network
 * as they come, and ingestPgWal (pg_timeline.ts), which pulls them as an AsyncIterable at its own
 * pace. Bytes queued while ingest is busy are handed over in one chunk (up to BLOCK_BYTES), so
 * ingest batches more under load; past `highWaterBytes` the receiver is told to pause the socket
 * (TCP backpressure reaches the server) and, once ingest has taken the queue below
 * `lowWaterBytes`, to resume it. `end()` makes the iterable finish after what is queued.
 *
 * push() copies the bytes into blocks the queue keeps and reuses: a block handed to ingest comes
 * back when ingest asks for the next chunk (both decoders copy what they are fed) and takes later
 * bytes. A copy per message plus a Buffer.concat per chunk into fresh memory had been 6 % of a TS
 * follower's main thread in W9's profile. Up to SPARE_BLOCKS_KEPT emptied blocks are kept while
 * the stream lasts, also while ingest waits, so a light stream reuses one block rather than
 * allocating 4 MiB (external memory the GC accounts for) per message. A follower holds at most
 * its queued bytes plus three blocks.
 */

/** Bytes a block holds: the most handed to ingest at once (one decoder feed, one submit after it). */
export const BLOCK_BYTES = 4 * 1024 * 1024;
/** Emptied blocks kept for reuse: one for the bytes arriving while ingest holds a chunk, one spare. */
const SPARE_BLOCKS_KEPT = 2;

export interface WalQueueHooks {
  /** Too much is queued: stop reading from the network. */
  pause(): void;
  /** Ingest caught up with the queue: read again. */
  resume(): void;
  /** Ingest asked for more and nothing was queued: all received WAL is ingested. */
  idle(): void;
}

/** A block and how many of its bytes are queued WAL. */
interface Block {
  buf: Buffer;
  len: number;
}

export class WalQueue implements AsyncIterable<Uint8Array> {
  /** Oldest first; only the last may still have room. */
  private blocks: Block[] = [];
  /** The block ingest holds now (its chunk), given back when ingest asks for the next one. */
  private lent: Buffer | null = null;
  private spare: Buffer[] = [];
  private queuedBytes = 0;
  private ended = false;
  private paused = false;
  private waiting = false;
  private wake: (() => void) | null = null;

  constructor(private readonly hooks: WalQueueHooks, private readonly highWaterBytes: number, private readonly lowWaterBytes: number) {}

  get bytes(): number {
    return this.queuedBytes;
  }

  /**
   * The consumer is waiting for bytes: it took everything queued and finished with it (a
   * for-await loop asks for the next chunk only after its body is done).
   */
  get consumerWaiting(): boolean {
    return this.waiting;
  }

  /** Queue a copy of WAL bytes that follow the ones queued before (the caller may reuse `bytes`). Ignored after end(). */
  push(bytes: Uint8Array): void {
    if (this.ended || bytes.length === 0) return;
    for (let at = 0; at < bytes.length;) {
      let b = this.blocks[this.blocks.length - 1];
      if (b === undefined || b.len === b.buf.length) {
        b = { buf: this.spare.pop() ?? Buffer.allocUnsafeSlow(BLOCK_BYTES), len: 0 };
        this.blocks.push(b);
      }
      const n = Math.min(bytes.length - at, b.buf.length - b.len);
      b.buf.set(bytes.subarray(at, at + n), b.len);
      b.len += n;
      at += n;
    }
    this.queuedBytes += bytes.length;
    if (!this.paused && this.queuedBytes >= this.highWaterBytes) {
      this.paused = true;
      this.hooks.pause();
    }
    this.notify();
  }

  /** No more bytes will come: the iterable ends once the queue is empty. */
  end(): void {
    this.ended = true;
    this.notify();
  }

  /** Each chunk is valid until the next is asked for: its block is then reused. */
  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    try {
      for (;;) {
        if (this.blocks.length > 0) {
          yield this.take();
          this.giveBackLent();
          continue;
        }
        if (this.ended) return;
        this.waiting = true;
        this.hooks.idle();
        if (this.blocks.length > 0 || this.ended) {
          this.waiting = false;
          continue;
        }
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.waiting = false;
      }
    } finally {
      // The consumer stopped early (decoding ended, or failed): drop what is left.
      this.ended = true;
      this.blocks = [];
      this.lent = null;
      this.spare = [];
      this.queuedBytes = 0;
    }
  }

  private take(): Buffer {
    const b = this.blocks.shift() as Block;
    this.lent = b.buf;
    this.queuedBytes -= b.len;
    if (this.paused && this.queuedBytes <= this.lowWaterBytes) {
      this.paused = false;
      this.hooks.resume();
    }
    return b.buf.subarray(0, b.len);
  }

  private giveBackLent(): void {
    if (this.lent !== null && this.spare.length < SPARE_BLOCKS_KEPT) this.spare.push(this.lent);
    this.lent = null;
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }
}
