/**
 * The pages of an image layer on their way to its writer. Image creation's CPU is half lz4 (an
 * 8 KB page compresses in ≈ 23 µs here) and half reconstruction (the native core's on the libuv
 * pool, layer_set.ts's ImageReadAhead), so the pages of a chunk are compressed on the compression
 * worker (lib/core/compress_worker.ts) while the next chunks are read, and chunks are appended in
 * order once compressed. The blobs are the
 * ones encodeBlob would write.
 */
import { compressesRecord } from '../core/compress';
import { compressOffThread, type RecordSpan, type UsePacked } from '../core/compress_worker';
import { CODEC_NONE, type CodecId } from '../core/format';
import { KEY_SIZE } from '../key';
import { PAGE_SIZE, RECORD_TAG_IMAGE, RECORD_TAG_ZERO } from '../record';
import { EntryBatch } from '../core/entry_batch';

/**
 * Pages per step of an image layer write on the event loop, with a yield between steps (64 KiB
 * of images). When the reconstruction ran in these steps too, 32 gave W7's storm p99 8.4× the
 * idle loop's on a quiet machine and 8 gave 4.6×, with the same throughput (PERFORMANCE.md).
 */
export const IMAGE_BATCH_KEYS = 8;
/** Chunks compressing on the worker or waiting to be appended while the next one is filled. */
export const IMAGE_CHUNKS_IN_FLIGHT = 3;
/** Bytes of a full image record: its tag, then the page. */
const IMAGE_RECORD_SIZE = 1 + PAGE_SIZE;
const ZERO_PAGE = Buffer.alloc(PAGE_SIZE);

interface Chunk {
  records: Buffer;
  batch: EntryBatch;
  /** Its compression. */
  done: Promise<void>;
  /** Its append: its buffers are filled again only once this settled. */
  written: Promise<void>;
}

/**
 * The record of `page` written into `rec` at `off` (room for IMAGE_RECORD_SIZE bytes): an all-zero
 * page is stored as a 1-byte zero record, anything else as a full image record. Returns its length.
 */
function writeImageRecord(page: Buffer, rec: Buffer, off: number): number {
  if (page.equals(ZERO_PAGE)) {
    rec[off] = RECORD_TAG_ZERO;
    return 1;
  }
  rec[off] = RECORD_TAG_IMAGE;
  page.copy(rec, off + 1);
  return IMAGE_RECORD_SIZE;
}

export class ImageBatches {
  /** IMAGE_CHUNKS_IN_FLIGHT in the queue and one being filled: a chunk's buffers are reused once written. */
  private readonly ring: Chunk[];
  private next = 0;
  /** The last append queued: appends run one at a time, in order. */
  private tail: Promise<void> = Promise.resolve();

  constructor(private readonly codec: CodecId, private readonly append: (b: EntryBatch) => Promise<void>) {
    this.ring = Array.from({ length: IMAGE_CHUNKS_IN_FLIGHT + 1 }, () => ({
      records: Buffer.allocUnsafe(IMAGE_RECORD_SIZE * IMAGE_BATCH_KEYS), batch: new EntryBatch(KEY_SIZE), done: Promise.resolve(), written: Promise.resolve(),
    }));
  }

  /**
   * The pages read for `keys` (`pages`: PAGE_SIZE each; only those whose `ok` is true are kept, as
   * a key with no page is left out of an image), at most IMAGE_BATCH_KEYS, copied before it
   * settles. The chunk is appended once compressed and once the chunks before it are; add waits
   * only for the append of the chunk whose buffers it takes, IMAGE_CHUNKS_IN_FLIGHT + 1 back, so
   * the appends (native: on the libuv pool) overlap the next chunks' reads and compression.
   */
  async add(keys: readonly Buffer[], pages: Buffer, ok: (i: number) => boolean): Promise<void> {
    const chunk = this.ring[this.next];
    this.next = (this.next + 1) % this.ring.length;
    await chunk.written;
    const kept: Buffer[] = [];
    const spans: RecordSpan[] = [];
    for (let i = 0; i < keys.length; i++) {
      if (!ok(i)) continue;
      const at = kept.length * IMAGE_RECORD_SIZE;
      const len = writeImageRecord(pages.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE), chunk.records, at);
      kept.push(keys[i]);
      spans.push({ src: chunk.records, start: at, end: at + len });
    }
    chunk.batch.reset();
    const codec = this.codec;
    const place: UsePacked = (k, packed) => {
      const s = spans[k];
      // encodeBlob compresses only records of COMPRESS_MIN_BYTES or more; a zero record stays raw.
      chunk.batch.addPacked(kept[k], null, codec, s.src, s.start, s.end, compressesRecord(codec, s.end - s.start) ? packed : null, true);
    };
    if (codec === CODEC_NONE) {
      for (let k = 0; k < spans.length; k++) place(k, null);
      chunk.done = Promise.resolve();
    } else {
      chunk.done = compressOffThread(codec, spans, place);
      // Awaited only once the appends before it settle: a failure before then must not go unhandled.
      chunk.done.catch(() => undefined);
    }
    // After an append fails, those queued behind it are not made; the failure reaches add (at that
    // chunk's turn) or finish.
    chunk.written = this.tail = this.tail.then(() => chunk.done).then(() => this.append(chunk.batch));
    chunk.written.catch(() => undefined); // awaited later; this only keeps an abandoned write from going unhandled
  }

  /** Settles once every chunk is appended, in order (rejects with the first failure). */
  async finish(): Promise<void> {
    await this.tail;
  }

  /** Settles, never rejecting, once no append is in flight: a failed write must wait for it before it aborts the writer. */
  async idle(): Promise<void> {
    await this.tail.catch(() => undefined);
  }
}
