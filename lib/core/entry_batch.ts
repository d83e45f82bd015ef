/**
 * Entries on their way to a LayerWriter: index keys, encoded blobs and will_init flags gathered in
 * the shape LayerWriter.append takes, handed over WRITE_BATCH_ENTRIES at a time so a long write
 * (flush, compaction, image creation) bounds its buffers and yields to the event loop in between.
 */
import { KEY_SIZE } from '../key';
import { encodeBlobInto, maxBlobSize, writeBlob } from './compress';
import type { CodecId } from './format';
import type { Lsn } from '../lsn';

/** Most entries handed to a layer writer per call. */
export const WRITE_BATCH_ENTRIES = 4096;
/**
 * Most blob bytes per call: the step between two yields encodes and copies this much, so it
 * bounds how long a flush or compaction holds the event loop (4096 whole 8 KB images were 32 MB,
 * ≈ 250 ms here; 256 KiB a few ms; 64 KiB halved W7's storm p99 again at the same throughput).
 */
export const WRITE_BATCH_BYTES = 64 * 1024;

/** Entries a batch makes room for at first (index keys); it grows up to WRITE_BATCH_ENTRIES. */
const INITIAL_ENTRIES = 256;

/**
 * Index keys, blobs and will_init flags of a run of entries, in the shape LayerWriter.append takes:
 * written into packed buffers as they are added (no Buffer per entry, no concatenation at the end).
 * A writer copies what it is handed, so a batch is reset and refilled after each append.
 */
export class EntryBatch {
  count = 0;
  /** Blob bytes gathered. */
  bytes = 0;
  private keyBuf: Buffer;
  private blobBuf: Buffer;
  private flags: Uint8Array;

  constructor(private readonly keySize: number) {
    this.keyBuf = Buffer.allocUnsafe(keySize * INITIAL_ENTRIES);
    this.blobBuf = Buffer.allocUnsafe(WRITE_BATCH_BYTES);
    this.flags = new Uint8Array(INITIAL_ENTRIES);
  }

  add(key: Buffer, lsn: Lsn | null, blob: Buffer, willInit: boolean): void {
    this.writeKey(key, lsn);
    this.addBlob(blob, willInit);
  }

  /** An entry whose blob is src[start, end) encoded here (no Buffer for the blob on the way). */
  addRecord(key: Buffer, lsn: Lsn | null, codec: CodecId, src: Buffer, start: number, end: number, willInit: boolean): void {
    this.writeKey(key, lsn);
    this.encodeRecord(codec, src, start, end, willInit);
  }

  /**
   * An entry whose blob is src[start, end) given its compressed form, made elsewhere (`packed`:
   * null if it was not compressed or did not shrink); the same blob encodeRecord would write.
   */
  addPacked(key: Buffer, lsn: Lsn | null, codec: CodecId, src: Buffer, start: number, end: number, packed: Buffer | null, willInit: boolean): void {
    this.writeKey(key, lsn);
    this.encodePacked(codec, src, start, end, packed, willInit);
  }

  /** The entry nextKeyAt started: src[start, end) as a blob, given its compressed form (as addPacked). */
  encodePacked(codec: CodecId, src: Uint8Array, start: number, end: number, packed: Buffer | null, willInit: boolean): void {
    this.reserveBlob(maxBlobSize(end - start));
    this.bytes += writeBlob(codec, src, start, end, packed, this.blobBuf, this.bytes);
    this.flags[this.count++] = willInit ? 1 : 0;
  }

  /**
   * Empty the batch and keep its buffers for the next run of entries: both writers copy what
   * append hands them, so a producer reuses one batch (a fresh 64 KiB batch per step was a large
   * share of the allocation, and so of the GC, in W7's storm).
   */
  reset(): void {
    this.count = 0;
    this.bytes = 0;
  }

  addIndexed(indexKey: Buffer, blob: Buffer, willInit: boolean): void {
    const at = this.nextKeyAt(); // first: it may replace keyBuf
    indexKey.copy(this.keyBuf, at, 0, this.keySize);
    this.addBlob(blob, willInit);
  }

  /**
   * Start an entry whose index key the caller writes itself: keySize bytes at the returned offset
   * of keyBuffer, then encodeRecord finishes the entry.
   */
  nextKeyAt(): number {
    if (this.count === this.flags.length) {
      const cap = this.flags.length * 2;
      const keys = Buffer.allocUnsafe(this.keySize * cap);
      this.keyBuf.copy(keys, 0, 0, this.keySize * this.count);
      this.keyBuf = keys;
      const flags = new Uint8Array(cap);
      flags.set(this.flags);
      this.flags = flags;
    }
    return this.count * this.keySize;
  }

  get keyBuffer(): Buffer {
    return this.keyBuf;
  }

  /** The entry nextKeyAt started: src[start, end) encoded as a blob straight into the batch. */
  encodeRecord(codec: CodecId, src: Buffer, start: number, end: number, willInit: boolean): void {
    this.reserveBlob(maxBlobSize(end - start));
    this.bytes += encodeBlobInto(codec, src, start, end, this.blobBuf, this.bytes);
    this.flags[this.count++] = willInit ? 1 : 0;
  }

  /** Whether to hand the batch over (and yield) now. */
  isFull(): boolean {
    return this.count >= WRITE_BATCH_ENTRIES || this.bytes >= WRITE_BATCH_BYTES;
  }

  indexKeys(): Buffer {
    return this.keyBuf.subarray(0, this.count * this.keySize);
  }

  blobs(): Buffer {
    return this.blobBuf.subarray(0, this.bytes);
  }

  willInit(): Uint8Array {
    return this.flags.subarray(0, this.count);
  }

  /** The next entry's index key: `key`, then `lsn` for a delta's (key, LSN) index key. */
  private writeKey(key: Buffer, lsn: Lsn | null): void {
    const at = this.nextKeyAt(); // first: it may replace keyBuf
    key.copy(this.keyBuf, at, 0, KEY_SIZE);
    if (lsn !== null) this.keyBuf.writeBigUInt64BE(lsn, at + KEY_SIZE);
  }

  private addBlob(blob: Buffer, willInit: boolean): void {
    this.reserveBlob(blob.length);
    blob.copy(this.blobBuf, this.bytes);
    this.bytes += blob.length;
    this.flags[this.count++] = willInit ? 1 : 0;
  }

  private reserveBlob(n: number): void {
    if (this.bytes + n <= this.blobBuf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.blobBuf.length * 2, this.bytes + n));
    this.blobBuf.copy(grown, 0, 0, this.bytes);
    this.blobBuf = grown;
  }
}

/** Let other work (reads, ingest) run between steps of a long write. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
