/**
 * The compression worker gives exactly the bytes the calling thread would (compressRecord and the
 * smaller-only rule), under concurrency beyond its slots, for groups too big for a slot, for both
 * codecs, and after it has died (the records are then compressed on the calling thread).
 */
import { describe, expect, it } from 'vitest';
import { codecAvailable, compressRecord } from '../lib/core/compress';
import { COMPRESS_SLOT_BYTES, compressOffThread, compressWorkerStats, stopCompressWorkerForTest, type RecordSpan } from '../lib/core/compress_worker';
import { CODEC_LZ4, CODEC_ZSTD, type CodecId } from '../lib/core/format';

/** Records of mixed sizes: runs (compress well), noise (do not), and half of each. */
function records(seed: number, count: number, maxLen: number): RecordSpan[] {
  let x = seed >>> 0;
  const next = (): number => { x = (Math.imul(x, 1664525) + 1013904223) >>> 0; return x; };
  const out: RecordSpan[] = [];
  for (let i = 0; i < count; i++) {
    const len = 1 + (next() % maxLen);
    const src = Buffer.alloc(len + 64, i & 0xff);
    const kind = i % 3;
    for (let j = 0; j < len; j++) if (kind === 1 || (kind === 2 && j % 2 === 0)) src[32 + j] = next() & 0xff;
    out.push({ src, start: 32, end: 32 + len });
  }
  return out;
}

/** What compressOffThread must call `use` with, computed on this thread. */
function expected(codec: CodecId, recs: readonly RecordSpan[]): (string | null)[] {
  return recs.map((r) => {
    const packed = compressRecord(codec, r.src.subarray(r.start, r.end));
    return packed.length < r.end - r.start ? packed.toString('hex') : null;
  });
}

async function run(codec: CodecId, recs: readonly RecordSpan[]): Promise<(string | null)[]> {
  const got: (string | null)[] = [];
  await compressOffThread(codec, recs, (i, packed) => { got[i] = packed === null ? null : packed.toString('hex'); });
  return got;
}

const codecs: [string, CodecId][] = [['lz4', CODEC_LZ4], ['zstd', CODEC_ZSTD]];

describe('compression worker', () => {
  it.each(codecs)('matches the calling thread byte for byte (%s)', async (_name, codec) => {
    if (!codecAvailable(codec)) throw new Error(`codec ${codec} unavailable`);
    for (let seed = 1; seed <= 5; seed++) {
      const recs = records(seed, 12, 9000); // at most 108 KB: one slot
      const before = compressWorkerStats();
      expect(await run(codec, recs)).toEqual(expected(codec, recs));
      expect(compressWorkerStats().offThread - before.offThread).toBe(recs.length); // the worker did them
    }
  });

  it('serves more requests at once than it has slots, each with its own answer', async () => {
    const groups = Array.from({ length: 12 }, (_, g) => records(100 + g, 20, 6000));
    const got = await Promise.all(groups.map((recs) => run(CODEC_LZ4, recs)));
    got.forEach((g, i) => expect(g).toEqual(expected(CODEC_LZ4, groups[i])));
  });

  it('compresses a group larger than a slot on the calling thread, with the same bytes', async () => {
    const recs = records(7, 80, 16_000);
    expect(recs.reduce((n, r) => n + r.end - r.start, 0)).toBeGreaterThan(COMPRESS_SLOT_BYTES);
    const before = compressWorkerStats();
    expect(await run(CODEC_LZ4, recs)).toEqual(expected(CODEC_LZ4, recs));
    expect(compressWorkerStats().onThisThread - before.onThisThread).toBe(recs.length);
  });

  it('falls back to the calling thread when the worker dies, for a request started before and one after', async () => {
    const inFlight = records(9, 12, 9000);
    const pending = run(CODEC_LZ4, inFlight);
    await stopCompressWorkerForTest();
    expect(await pending).toEqual(expected(CODEC_LZ4, inFlight));
    const after = records(10, 12, 9000);
    const before = compressWorkerStats();
    expect(await run(CODEC_LZ4, after)).toEqual(expected(CODEC_LZ4, after));
    expect(compressWorkerStats().onThisThread - before.onThisThread).toBe(after.length);
  });
});
