/**
 * The in-memory layer (lib/engine/inmemory_layer.ts, docs/RELIABILITY.md "Resource limits"): what
 * it counts against checkpointDistance is what it really holds on the heap, for small records on
 * many keys too (it used to count record + 26 bytes while a key's first record cost ≈ 800 bytes
 * and each further one ≈ 180, ~9× more), and its slab representation hands back every record
 * unchanged, to reads (collect) and to the L0 writer (sortedHistories), across slab boundaries.
 */
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { ReadPlanWriter } from '../lib/core/read_plan';
import { encodeBlob } from '../lib/core/compress';
import { CODEC_LZ4, CODEC_NONE, CODEC_ZSTD, DELTA_INDEX_KEY_SIZE } from '../lib/core/format';
import { arenaBatches } from '../lib/core/ts/delta_arena';
import { EntryBatch, WRITE_BATCH_BYTES } from '../lib/core/entry_batch';
import { checkRecords, IngestScratch } from '../lib/engine/ingest';
import { InMemoryLayer, SLAB_MAX_BYTES, SLAB_POOL_MAX_BYTES, slabPool } from '../lib/engine/inmemory_layer';
import { encodeKey, KEY_SIZE } from '../lib/key';
import { PAGE_SIZE, recordWillInit, serializeRecord, type WalRecord } from '../lib/record';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Pause after each full collection: array buffers found dead are freed on another thread after it. */
const SWEEP_WAIT_MS = 10;

/** heapUsed + external (the slabs) after full collections. */
async function heapBytes(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, SWEEP_WAIT_MS));
  }
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

const LSN_STEP = 0x40n;
/** Keys filled into a throwaway layer before a heap measurement. */
const WARM_UP_KEYS = 2_000;

function keyOf(i: number): WalRecord['key'] {
  return { spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0, blockNum: i };
}

function patch(lsn: bigint, i: number, v: number): WalRecord {
  const data = Buffer.alloc(8);
  data.writeUInt32BE(v, 0);
  data.writeUInt32BE(i, 4);
  return { lsn, key: keyOf(i), kind: 'patch', offset: 8 + (v % 64) * 8, data };
}

/** `keys` keys × `versions` records, key-major within a version (the way WAL interleaves them). */
function fill(layer: InMemoryLayer, keys: number, versions: number, make: (lsn: bigint, i: number, v: number) => WalRecord): bigint {
  let lsn = 0n;
  for (let v = 0; v < versions; v++) {
    for (let i = 0; i < keys; i++) {
      lsn += LSN_STEP;
      const r = make(lsn, i, v);
      layer.put(encodeKey(r.key), lsn, serializeRecord(r));
    }
  }
  return lsn;
}

/** A page whose first half is noise (lz4 cannot shrink it below half a page) and second half zero. */
function halfNoise(seed: number): Buffer {
  const page = Buffer.alloc(PAGE_SIZE);
  let x = seed + 1;
  for (let i = 0; i < PAGE_SIZE / 2; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    page[i] = x >>> 24;
  }
  return page;
}

describe('InMemoryLayer', () => {
  it.each([1, 4, 16])('counts within 25%% of its real heap cost: 20,000 keys × %i 8-byte patches', async (versions) => {
    const keys = 20_000;
    // Compiled code, inline caches and feedback vectors for put() land on the heap the first time it
    // runs (≈ 150 KB here, more under the sanitizer build's slower start); warm them up on another
    // layer so that `held` is the layer's data alone. That layer stays reachable until both readings
    // are taken: array buffers are freed after the collection that finds them dead, so a layer
    // dropped just before the first reading could still be counted in it.
    const warm = new InMemoryLayer(0n);
    fill(warm, WARM_UP_KEYS, versions, patch);
    const before = await heapBytes();
    const layer = new InMemoryLayer(0n);
    fill(layer, keys, versions, patch);
    const held = (await heapBytes()) - before;
    expect(warm.entries).toBe(WARM_UP_KEYS * versions);
    expect(layer.entries).toBe(keys * versions);
    // Before the measured overheads were counted, `bytes` was 0.05× to 0.17× the heap for this data.
    expect(layer.bytes / held).toBeGreaterThan(0.8);
    expect(layer.bytes / held).toBeLessThan(1.25);
  });

  it('hands back every record unchanged to reads and to the L0 writer, across slabs and for records larger than a slab', () => {
    const layer = new InMemoryLayer(0n);
    const keys = 300;
    const versions = 5;
    const sent = new Map<string, { lsn: bigint; record: Buffer }[]>();
    // Images and patches: 8 KB images fill the 16 KB first slab at once; 600 of them span many slabs.
    let lsn = 0n;
    for (let v = 0; v < versions; v++) {
      for (let i = keys - 1; i >= 0; i--) {
        lsn += LSN_STEP;
        const page = Buffer.alloc(PAGE_SIZE, (i + v) & 0xff);
        const r: WalRecord = v % 2 === 0 ? { lsn, key: keyOf(i), kind: 'image', page } : patch(lsn, i, v);
        const key = encodeKey(r.key);
        const record = serializeRecord(r);
        layer.put(key, lsn, record);
        const id = key.toString('latin1');
        sent.set(id, [...(sent.get(id) ?? []), { lsn, record: Buffer.from(record) }]);
      }
    }
    expect(layer.endLsn).toBe(lsn);
    // The L0 writer's order: keys ascending by bytes, records ascending by LSN, bytes intact.
    const histories = [...layer.sortedHistories()];
    const expectedIds = [...sent.keys()].sort((a, b) => Buffer.compare(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1')));
    expect(histories.map((h) => h.key.toString('latin1'))).toEqual(expectedIds);
    for (const h of histories) {
      expect(h.key.length).toBe(KEY_SIZE);
      const want = sent.get(h.key.toString('latin1')) ?? [];
      const got = [...h.records()];
      expect(got.map((r) => r.lsn)).toEqual(want.map((r) => r.lsn));
      expect(got.every((r, i) => r.record.equals(want[i].record))).toBe(true);
    }
    // Reads: the newest record at or below the cap first, stopping at the will-init image.
    const id = encodeKey(keyOf(7)).toString('latin1');
    const recs = sent.get(id) ?? [];
    const start = (w: ReadPlanWriter): ReadPlanWriter => {
      const offset = w.reset().beginRequest();
      encodeKey(keyOf(7), w.buffer, offset);
      w.beginSegment(0, recs[3].lsn);
      return w;
    };
    // A cap outside u64 is refused even as the first cap a writer sees (a cached last cap must not
    // stand in for the range check).
    const fresh = new ReadPlanWriter().reset();
    fresh.beginRequest();
    expect(() => fresh.beginSegment(0, -1n)).toThrow(RangeError);
    const plan = start(new ReadPlanWriter());
    expect(layer.collect(id, plan)).toBe(true); // v2 is an image
    const expected = start(new ReadPlanWriter());
    for (const r of [recs[3], recs[2]]) expected.memRecord(r.lsn, r.record);
    expect(plan.finish().equals(expected.finish())).toBe(true);
  });

  it('a released layer gives its slabs to the pool; the next layers fill them and read back their own bytes', () => {
    const imagesPerLayer = (3 * SLAB_POOL_MAX_BYTES) / 2 / PAGE_SIZE; // 1.5 × the pool's worth of slabs
    const fillImages = (layer: InMemoryLayer, fillByte: number): Map<string, Buffer> => {
      const sent = new Map<string, Buffer>();
      for (let i = 0; i < imagesPerLayer; i++) {
        const r: WalRecord = { lsn: BigInt(i + 1) * LSN_STEP, key: keyOf(i), kind: 'image', page: Buffer.alloc(PAGE_SIZE, (i + fillByte) & 0xff) };
        const record = serializeRecord(r);
        layer.put(encodeKey(r.key), r.lsn, record);
        sent.set(encodeKey(r.key).toString('latin1'), record);
      }
      return sent;
    };
    const readBack = (layer: InMemoryLayer, sent: Map<string, Buffer>): void => {
      let n = 0;
      for (const h of layer.sortedHistories()) {
        const [only] = [...h.records()];
        expect(only.record.equals(sent.get(h.key.toString('latin1')) as Buffer)).toBe(true);
        n++;
      }
      expect(n).toBe(sent.size);
    };
    const start = slabPool.bytes;
    const first = new InMemoryLayer(0n);
    fillImages(first, 1);
    first.release();
    // Bounded: the rest are left to the GC.
    expect(slabPool.bytes).toBeLessThanOrEqual(SLAB_POOL_MAX_BYTES);
    expect(slabPool.bytes).toBeGreaterThan(SLAB_POOL_MAX_BYTES - SLAB_MAX_BYTES);
    expect(start).toBeLessThanOrEqual(SLAB_POOL_MAX_BYTES);
    // A released layer cannot be read: it fails loudly rather than showing bytes another layer wrote.
    expect(() => [...first.sortedHistories()].map((h) => [...h.records()])).toThrow();
    const second = new InMemoryLayer(0n);
    const sent = fillImages(second, 2);
    expect(slabPool.bytes).toBe(0); // its slabs, small and full-size, came from the pool first
    readBack(second, sent); // the first layer's bytes were overwritten, not read
    second.release();
    expect(slabPool.bytes).toBeGreaterThan(SLAB_POOL_MAX_BYTES - SLAB_MAX_BYTES);
  });

  it('a small layer (no full-size slab) reuses the small slabs a released one gave back', () => {
    const fill = (layer: InMemoryLayer, fillByte: number): void => {
      for (let i = 0; i < 12; i++) { // 12 images: slabs of 16, 32, 64 and 128 KiB (1 + 3 + 7 + 1)
        const r: WalRecord = { lsn: BigInt(i + 1) * LSN_STEP, key: keyOf(i), kind: 'image', page: Buffer.alloc(PAGE_SIZE, fillByte) };
        layer.put(encodeKey(r.key), r.lsn, serializeRecord(r));
      }
    };
    const first = new InMemoryLayer(0n);
    fill(first, 1);
    for (let size = 16 * 1024; size <= SLAB_MAX_BYTES; size *= 2) while (slabPool.take(size) !== undefined); // empty: room for these
    const before = slabPool.bytes;
    expect(before).toBe(0);
    first.release();
    expect(slabPool.bytes).toBe(before + (16 + 32 + 64 + 128) * 1024);
    const second = new InMemoryLayer(0n);
    fill(second, 2);
    expect(slabPool.bytes).toBe(before);
    for (const h of second.sortedHistories()) for (const { record } of h.records()) expect(record[record.length - 1]).toBe(2);
  });

  it('reads by the cap exactly when LSNs and caps straddle 2^32 (the walk compares u32 halves)', () => {
    const layer = new InMemoryLayer(0n);
    const scratch = new IngestScratch();
    const high = 2n ** 32n;
    // Low halves chosen so that comparing either half alone gives the wrong answer.
    const lsns = [high - 0x100n, high + 0x10n, 2n * high - 0x10n, 2n * high + 0x08n, 3n * high + 0x10n];
    const recs = lsns.map((lsn, v) => patch(lsn, 3, v));
    layer.putChecked(checkRecords(recs, lsns[0] - LSN_STEP, 'test', scratch));
    const id = encodeKey(keyOf(3)).toString('latin1');
    for (const cap of [high - 0x101n, high - 0x100n, high, high + 0x0fn, high + 0x10n, 2n * high - 0x11n, 2n * high, 2n * high + 0x08n, 3n * high, 3n * high + 0x10n, 2n ** 64n - 1n]) {
      const plan = new ReadPlanWriter();
      const expected = new ReadPlanWriter();
      for (const w of [plan, expected]) {
        encodeKey(keyOf(3), w.reset().buffer, w.beginRequest());
        w.beginSegment(0, cap);
      }
      expect(layer.collect(id, plan)).toBe(false); // patches only: the chain goes on below
      const wanted = recs.filter((r) => r.lsn <= cap).reverse();
      for (const r of wanted) expected.memRecord(r.lsn, serializeRecord(r));
      expect(plan.finish().equals(expected.finish()), `cap ${cap.toString(16)}`).toBe(true);
    }
  });

  it('keeps keys of many prefixes (more than its prefix cache, colliding) and block numbers above 2^31 apart, in byte order', () => {
    const layer = new InMemoryLayer(0n);
    const scratch = new IngestScratch();
    const sent = new Map<string, bigint[]>();
    let lsn = 0n;
    for (let v = 0; v < 3; v++) {
      const batch: WalRecord[] = [];
      for (let rel = 0; rel < 40; rel++) {
        for (const blockNum of [0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1]) {
          lsn += LSN_STEP;
          const key = { spcOid: 1663 + (rel % 3), dbOid: 5, relNumber: 16384 + rel, forkNum: rel % 4, blockNum };
          batch.push({ lsn, key, kind: 'patch', offset: v, data: Buffer.from([rel, v]) });
          const id = encodeKey(key).toString('latin1');
          sent.set(id, [...(sent.get(id) ?? []), lsn]);
        }
      }
      layer.putChecked(checkRecords(batch, lsn - BigInt(batch.length) * LSN_STEP, 'test', scratch));
    }
    const ids = [...sent.keys()].sort((a, b) => Buffer.compare(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1')));
    expect(layer.keys().map((k) => k.toString('latin1'))).toEqual(ids);
    for (const h of layer.sortedHistories()) expect([...h.records()].map((r) => r.lsn)).toEqual(sent.get(h.key.toString('latin1')));
    // A key the layer lacks, next to ones it has, reads nothing.
    const absent = encodeKey({ spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0, blockNum: 2 }).toString('latin1');
    expect(layer.collect(absent, new ReadPlanWriter().reset())).toBe(false);
  });

  it('finds every key of a large layer as its key table grows: strided, sequential and random block numbers, one block number under many prefixes', async () => {
    const layer = new InMemoryLayer(0n);
    const scratch = new IngestScratch();
    const rng = mulberry32(11);
    const suffixes = (pattern: number, n: number): number[] => Array.from({ length: n }, (_, i) => {
      switch (pattern) {
        case 0: return i; // sequential
        case 1: return (i * 2 ** 16) >>> 0; // only high bits vary
        case 2: return (i * 2 ** 20 + 7) >>> 0;
        case 3: return 2 ** 32 - 1 - i;
        default: return Math.floor(rng() * 2 ** 32);
      }
    });
    const sent = new Map<string, bigint[]>();
    let lsn = 0n;
    let batch: WalRecord[] = [];
    const flushBatch = (): void => {
      layer.putChecked(checkRecords(batch, lsn - BigInt(batch.length) * LSN_STEP, 'test', scratch));
      batch = [];
    };
    for (let pattern = 0; pattern < 5; pattern++) {
      for (const blockNum of suffixes(pattern, 4_000)) {
        // The same block number under several relation forks: the table must keep them apart.
        for (const forkNum of pattern === 0 ? [0, 1, 2] : [0]) {
          const key = { spcOid: 1663, dbOid: 5 + pattern, relNumber: 16384, forkNum, blockNum };
          const id = encodeKey(key).toString('latin1');
          if (batch.some((r) => r.lsn === lsn + LSN_STEP && encodeKey(r.key).toString('latin1') === id)) continue;
          lsn += LSN_STEP;
          batch.push({ lsn, key, kind: 'patch', offset: 0, data: Buffer.from([pattern]) });
          sent.set(id, [...(sent.get(id) ?? []), lsn]);
          if (batch.length === 1_000) flushBatch();
        }
      }
    }
    flushBatch();
    const ids = [...sent.keys()].sort((a, b) => Buffer.compare(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1')));
    expect(layer.keys().map((k) => k.toString('latin1'))).toEqual(ids);
    // The flush's arena lays the keys out in the same order, sorted in steps between yields.
    const arena = await layer.toArena(CODEC_NONE);
    expect(Buffer.from(arena.keys).equals(Buffer.from(ids.join(''), 'latin1'))).toBe(true);
    for (const h of layer.sortedHistories()) expect([...h.records()].map((r) => r.lsn)).toEqual(sent.get(h.key.toString('latin1')));
    for (const id of ids) {
      const plan = new ReadPlanWriter();
      plan.reset().buffer.write(id, plan.beginRequest(), 'latin1');
      plan.beginSegment(0, lsn);
      layer.collect(id, plan);
      const expected = new ReadPlanWriter();
      expected.reset().buffer.write(id, expected.beginRequest(), 'latin1');
      expected.beginSegment(0, lsn);
      const pattern = Buffer.from(id, 'latin1').readUInt32BE(5) - 5; // the dbOid chose the pattern
      for (const at of [...(sent.get(id) ?? [])].reverse()) expected.memRecord(at, serializeRecord({ lsn: at, key: keyOf(0), kind: 'patch', offset: 0, data: Buffer.from([pattern]) }));
      expect(plan.finish().equals(expected.finish()), id).toBe(true);
    }
    // Keys next to present ones (another fork, block number ± 1 with no record) read nothing.
    for (const key of [{ blockNum: 1, forkNum: 3, dbOid: 5 }, { blockNum: 2 ** 16 + 1, forkNum: 0, dbOid: 6 }, { blockNum: 8, forkNum: 0, dbOid: 7 }]) {
      const id = encodeKey({ spcOid: 1663, relNumber: 16384, ...key }).toString('latin1');
      expect(sent.has(id)).toBe(false);
      const plan = new ReadPlanWriter();
      plan.reset().buffer.write(id, plan.beginRequest(), 'latin1');
      plan.beginSegment(0, lsn);
      expect(layer.collect(id, plan)).toBe(false);
      expect(plan.finish().equals(emptyPlanFor(id, lsn))).toBe(true);
    }
  });

  it.each([['lz4', CODEC_LZ4], ['zstd', CODEC_ZSTD], ['none', CODEC_NONE]] as const)('hands its arena over for the L0 with the entries encoding each record would give (%s)', async (_name, codec) => {
    const layer = new InMemoryLayer(0n);
    const scratch = new IngestScratch();
    let lsn = 0n;
    for (let v = 0; v < 4; v++) {
      const batch: WalRecord[] = [];
      for (let i = 0; i < 60; i++) {
        lsn += LSN_STEP;
        // Images (compressible), patches above and below the compression threshold, LSNs above 2^32.
        const key = { ...keyOf(i * 7919), relNumber: 16384 + (i % 3) };
        const at = lsn + 2n ** 40n;
        batch.push(v === 0 || i % 11 === 0 ? { lsn: at, key, kind: 'image', page: halfNoise(i + v) }
          : { lsn: at, key, kind: 'patch', offset: i, data: Buffer.alloc(i % 2 === 0 ? 200 : 40, v + i) });
      }
      layer.putChecked(checkRecords(batch, batch[0].lsn - 1n, 'test', scratch));
    }
    const got = { keys: [] as Buffer[], blobs: [] as Buffer[], flags: [] as number[], batches: 0 };
    const arena = await layer.toArena(codec);
    // The compressed forms are gathered over several event-loop steps (packArena's step bound).
    if (codec !== CODEC_NONE) expect(arena.packed.length).toBeGreaterThan(2 * WRITE_BATCH_BYTES);
    for (const b of arenaBatches(arena, codec)) {
      got.keys.push(Buffer.from(b.indexKeys()));
      got.blobs.push(Buffer.from(b.blobs()));
      got.flags.push(...b.willInit());
      got.batches++;
    }
    const want = new EntryBatch(DELTA_INDEX_KEY_SIZE);
    for (const h of layer.sortedHistories()) {
      for (const { lsn: l, record } of h.records()) want.add(h.key, l, encodeBlob(codec, record), recordWillInit(record));
    }
    expect(got.batches).toBeGreaterThan(2); // 8 KB images fill a 64 KiB batch every few entries
    expect(Buffer.concat(got.keys).equals(want.indexKeys())).toBe(true);
    expect(Buffer.concat(got.blobs).equals(want.blobs())).toBe(true);
    expect(got.flags).toEqual([...want.willInit()]);
  });

  it('EntryBatch packs index keys, blobs and flags past its initial room in the order added', () => {
    const batch = new EntryBatch(DELTA_INDEX_KEY_SIZE);
    const keys: Buffer[] = [];
    const blobs: Buffer[] = [];
    for (let i = 0; i < 1000; i++) {
      const k = Buffer.alloc(DELTA_INDEX_KEY_SIZE);
      k.writeUInt32BE(i, 14);
      keys.push(k);
      blobs.push(Buffer.alloc(1 + (i % 5), i));
      if (i % 2 === 0) batch.addIndexed(k, blobs[i], i % 3 === 0);
      else batch.add(k.subarray(0, KEY_SIZE), 0n, blobs[i], i % 3 === 0);
    }
    expect(batch.count).toBe(1000);
    expect(batch.indexKeys().equals(Buffer.concat(keys))).toBe(true);
    expect(batch.blobs().equals(Buffer.concat(blobs))).toBe(true);
    expect([...batch.willInit()]).toEqual(keys.map((_, i) => (i % 3 === 0 ? 1 : 0)));
  });
});

/** A small deterministic generator for the tests' random block numbers. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** The plan of a request for `id` capped at `cap` with no record collected. */
function emptyPlanFor(id: string, cap: bigint): Buffer {
  const plan = new ReadPlanWriter();
  plan.reset().buffer.write(id, plan.beginRequest(), 'latin1');
  plan.beginSegment(0, cap);
  return plan.finish();
}
