/**
 * Entries on their way to a LayerWriter: index keys, encoded blobs and will_init flags gathered in
 * the shape LayerWriter.append takes, handed over WRITE_BATCH_ENTRIES at a time so a long write
 * (flush, compaction, image creation) bounds its buffers and yields to the event loop in between.
 */
import { KEY_SIZE } from '../key';
import type { Lsn } from '../lsn';

/** Most entries handed to a layer writer per call. */
export const WRITE_BATCH_ENTRIES = 4096;
/**
 * Most blob bytes per call: the step between two yields encodes and copies this much, so it
 * bounds how long a flush or compaction holds the event loop (4096 whole 8 KB images were 32 MB,
 * ≈ 250 ms here; 256 KiB a few ms; 64 KiB halved W7's storm p99 again at the same throughput).
 */
export const WRITE_BATCH_BYTES = 64 * 1024;

/** Index keys, blobs and will_init flags of a run of entries, in the shape LayerWriter.append takes. */
export class EntryBatch {
  count = 0;
  /** Blob bytes gathered. */
  bytes = 0;
  readonly blobs: Buffer[] = [];
  private readonly keys: Buffer[] = [];
  private readonly flags: number[] = [];

  constructor(private readonly keySize: number) {}

  add(key: Buffer, lsn: Lsn | null, blob: Buffer, willInit: boolean): void {
    const k = Buffer.allocUnsafe(this.keySize);
    key.copy(k, 0, 0, KEY_SIZE);
    if (lsn !== null) k.writeBigUInt64BE(lsn, KEY_SIZE);
    this.addIndexed(k, blob, willInit);
  }

  addIndexed(indexKey: Buffer, blob: Buffer, willInit: boolean): void {
    this.keys.push(indexKey);
    this.blobs.push(blob);
    this.flags.push(willInit ? 1 : 0);
    this.count++;
    this.bytes += blob.length;
  }

  /** Whether to hand the batch over (and yield) now. */
  isFull(): boolean {
    return this.count >= WRITE_BATCH_ENTRIES || this.bytes >= WRITE_BATCH_BYTES;
  }

  indexKeys(): Buffer {
    return Buffer.concat(this.keys);
  }

  willInit(): Uint8Array {
    return Uint8Array.from(this.flags);
  }
}

/** Let other work (reads, ingest) run between steps of a long write. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
