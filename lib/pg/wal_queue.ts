/**
 * The hand-over between the WAL receiver (walreceiver.ts), which gets WAL bytes from the network
 * as they come, and ingestPgWal (pg_timeline.ts), which pulls them as an AsyncIterable at its own
 * pace. Bytes queued while ingest is busy are handed over in one chunk (up to MAX_CHUNK_BYTES), so
 * ingest batches more under load; past `highWaterBytes` the receiver is told to pause the socket
 * (TCP backpressure reaches the server) and, once ingest has taken the queue below
 * `lowWaterBytes`, to resume it. `end()` makes the iterable finish after what is queued.
 */

/** Most bytes handed to ingest at once: one decoder feed, one submit to the timeline after it. */
const MAX_CHUNK_BYTES = 4 * 1024 * 1024;

export interface WalQueueHooks {
  /** Too much is queued: stop reading from the network. */
  pause(): void;
  /** Ingest caught up with the queue: read again. */
  resume(): void;
  /** Ingest asked for more and nothing was queued: all received WAL is ingested. */
  idle(): void;
}

export class WalQueue implements AsyncIterable<Uint8Array> {
  private chunks: Buffer[] = [];
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

  /** Queue WAL bytes (the caller keeps them contiguous). Ignored after end(). */
  push(bytes: Buffer): void {
    if (this.ended || bytes.length === 0) return;
    this.chunks.push(bytes);
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

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    try {
      for (;;) {
        if (this.chunks.length > 0) {
          yield this.take();
          continue;
        }
        if (this.ended) return;
        this.waiting = true;
        this.hooks.idle();
        if (this.chunks.length > 0 || this.ended) {
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
      this.chunks = [];
      this.queuedBytes = 0;
    }
  }

  private take(): Buffer {
    let n = 0;
    let bytes = 0;
    while (n < this.chunks.length && (n === 0 || bytes + this.chunks[n].length <= MAX_CHUNK_BYTES)) bytes += this.chunks[n++].length;
    const out = n === 1 ? this.chunks[0] : Buffer.concat(this.chunks.slice(0, n), bytes);
    this.chunks = this.chunks.slice(n);
    this.queuedBytes -= bytes;
    if (this.paused && this.queuedBytes <= this.lowWaterBytes) {
      this.paused = false;
      this.hooks.resume();
    }
    return out;
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }
}
