/**
 * Image creation's pages go through the compression worker (ImageBatches) and must come out as
 * the blobs encodeBlob writes on the calling thread, in key order, with keys whose page was not
 * found left out: compressible pages, incompressible ones, all-zero pages (1-byte zero records,
 * never compressed), for lz4, zstd and no compression, over more chunks than are kept in flight.
 */
import { describe, expect, it } from 'vitest';
import { encodeBlob } from '../lib/core/compress';
import { compressWorkerStats } from '../lib/core/compress_worker';
import { CODEC_LZ4, CODEC_NONE, CODEC_ZSTD, type CodecId } from '../lib/core/format';
import type { EntryBatch } from '../lib/core/entry_batch';
import { IMAGE_BATCH_KEYS, IMAGE_CHUNKS_IN_FLIGHT, ImageBatches } from '../lib/engine/image_batches';
import { KEY_SIZE } from '../lib/key';
import { PAGE_SIZE, RECORD_TAG_IMAGE, RECORD_TAG_ZERO } from '../lib/record';

function page(i: number): Buffer {
  const p = Buffer.alloc(PAGE_SIZE);
  if (i % 5 === 0) return p; // all zero
  let x = i * 2654435761;
  for (let j = 0; j < PAGE_SIZE; j++) {
    if (i % 3 === 0) { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; p[j] = x >>> 24; } // noise
    else p[j] = (j >> 6) + i; // runs
  }
  return p;
}

function record(p: Buffer): Buffer {
  return p.equals(Buffer.alloc(PAGE_SIZE)) ? Buffer.of(RECORD_TAG_ZERO) : Buffer.concat([Buffer.of(RECORD_TAG_IMAGE), p]);
}

const codecs: [string, CodecId][] = [['lz4', CODEC_LZ4], ['zstd', CODEC_ZSTD], ['none', CODEC_NONE]];

describe('image batches', () => {
  it.each(codecs)('write the blobs encodeBlob would, in order, leaving out keys with no page (%s)', async (_name, codec) => {
    const chunks = 3 * (IMAGE_CHUNKS_IN_FLIGHT + 1) + 1;
    const got = { keys: [] as Buffer[], blobs: [] as Buffer[], flags: [] as number[] };
    // An append settles later, as the native core's appendAsync does: the batch must not change meanwhile.
    const append = async (b: EntryBatch): Promise<void> => {
      const keys = Buffer.from(b.indexKeys());
      const blobs = Buffer.from(b.blobs());
      await new Promise((r) => setImmediate(r));
      expect(Buffer.from(b.indexKeys()).equals(keys) && Buffer.from(b.blobs()).equals(blobs)).toBe(true);
      got.keys.push(keys);
      got.blobs.push(blobs);
      got.flags.push(...b.willInit());
    };
    const before = compressWorkerStats();
    const batches = new ImageBatches(codec, append);
    const wantKeys: Buffer[] = [];
    const wantBlobs: Buffer[] = [];
    let n = 0;
    for (let c = 0; c < chunks; c++) {
      const keys: Buffer[] = [];
      const pages = Buffer.alloc(IMAGE_BATCH_KEYS * PAGE_SIZE);
      for (let i = 0; i < IMAGE_BATCH_KEYS; i++, n++) {
        const key = Buffer.alloc(KEY_SIZE);
        key.writeUInt32BE(n, KEY_SIZE - 4);
        keys.push(key);
        page(n).copy(pages, i * PAGE_SIZE);
        if (n % 7 !== 3) {
          wantKeys.push(key);
          wantBlobs.push(encodeBlob(codec, record(page(n))));
        }
      }
      const first = n - IMAGE_BATCH_KEYS;
      await batches.add(keys, pages, (i) => (first + i) % 7 !== 3);
      pages.fill(0xee); // the caller reuses its page buffer at once
    }
    await batches.finish();
    expect(Buffer.concat(got.keys).equals(Buffer.concat(wantKeys))).toBe(true);
    expect(Buffer.concat(got.blobs).equals(Buffer.concat(wantBlobs))).toBe(true);
    expect(got.flags).toEqual(wantKeys.map(() => 1));
    if (codec !== CODEC_NONE) expect(compressWorkerStats().offThread).toBeGreaterThan(before.offThread); // the worker compressed them
  });
});
