/**
 * Entries on their way to a LayerWriter: index keys, encoded blobs and will_init flags gathered in
 * the shape LayerWriter.append takes, handed over WRITE_BATCH_ENTRIES at a time so a long write
 * (flush, compaction, image creation) bounds its buffers and yields to the event loop in between.
 */
import { KEY_SIZE } from '../key';
import type { Lsn } from '../lsn';

/** Entries handed to a layer writer per call. */
export const WRITE_BATCH_ENTRIES = 4096;

/** Index keys, blobs and will_init flags of a run of entries, in the shape LayerWriter.append takes. */
export class EntryBatch {
  count = 0;
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
