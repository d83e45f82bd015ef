/**
 * LayerWriter.finishArenaAsync, the flush's whole write (lib/core/delta_arena.ts): on randomized
 * in-memory layers, the native walk (native/delta_arena.cc, on a libuv thread) and its TS twin
 * write byte-identical L0 files, equal to appending each record encoded on its own (the oracle:
 * sortedHistories + encodeBlob), for every codec. A malformed arena is a BAD_ARGUMENT naming the
 * record or key in both cores, and leaves no file behind once aborted.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { encodeBlob } from '../lib/core/compress';
import type { Core, ImplementationName } from '../lib/core/core';
import { ARENA_ENTRY_BYTES, type DeltaArena } from '../lib/core/delta_arena';
import { EntryBatch } from '../lib/core/entry_batch';
import { CODEC_LZ4, CODEC_NONE, CODEC_ZSTD, DELTA_INDEX_KEY_SIZE, type CodecId } from '../lib/core/format';
import { checkRecords, IngestScratch } from '../lib/engine/ingest';
import { InMemoryLayer } from '../lib/engine/inmemory_layer';
import { isStrataError } from '../lib/errors';
import { KEY_MAX, KEY_MIN } from '../lib/key';
import { PAGE_SIZE, recordWillInit, type WalRecord } from '../lib/record';
import { IMPLEMENTATIONS, makeCore } from './helpers/cores';
import { Rng } from './helpers/random';

const CODECS: readonly [string, CodecId][] = [['none', CODEC_NONE], ['lz4', CODEC_LZ4], ['zstd', CODEC_ZSTD]];
const SEEDS = [1, 2, 3];
const LSN_STEP = 0x28n;

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-arena-'));
const cores = new Map<ImplementationName, Core>(IMPLEMENTATIONS.map((impl) => [impl, makeCore(impl)]));
afterAll(() => {
  for (const c of cores.values()) c.close();
  fs.rmSync(root, { recursive: true, force: true });
});

/** A layer of random records: images, zero pages, patches below and above the compression threshold, on keys in a few relations. */
function randomLayer(seed: number): InMemoryLayer {
  const rng = new Rng(seed);
  const layer = new InMemoryLayer(0n);
  const scratch = new IngestScratch();
  let lsn = 2n ** 33n; // LSNs above 2^32: both halves of the entry's u64 matter
  const batches = 3 + rng.int(0, 4);
  for (let b = 0; b < batches; b++) {
    const batch: WalRecord[] = [];
    const n = 1 + rng.int(0, 300);
    for (let i = 0; i < n; i++) {
      lsn += LSN_STEP;
      const key = { spcOid: 1663, dbOid: 5, relNumber: 16384 + rng.int(0, 3), forkNum: rng.int(0, 2), blockNum: rng.int(0, 200) * 977 };
      const pick = rng.int(0, 10);
      if (pick === 0) {
        const page = Buffer.alloc(PAGE_SIZE);
        for (let j = 0; j < PAGE_SIZE / 2; j++) page[j] = rng.int(0, 256); // half noise: compresses, not to nothing
        batch.push({ lsn, key, kind: 'image', page });
      } else if (pick === 1) {
        batch.push({ lsn, key, kind: 'zero' });
      } else {
        const len = rng.int(1, pick < 6 ? 120 : 2000);
        const data = Buffer.alloc(len, rng.int(0, 256));
        for (let j = 0; j < len; j += 7) data[j] = rng.int(0, 256);
        batch.push({ lsn, key, kind: 'patch', offset: rng.int(0, PAGE_SIZE - len), data });
      }
    }
    layer.putChecked(checkRecords(batch, batch[0].lsn - 1n, 'test', scratch));
  }
  return layer;
}

function writerFor(core: Core, file: string, codec: CodecId): ReturnType<Core['createLayerWriter']> {
  return core.createLayerWriter(file, { kind: 'delta', codec, keyStart: KEY_MIN, keyEnd: KEY_MAX, lsnStart: 1n, lsnEnd: 2n ** 40n });
}

/** The oracle: each record encoded on its own, in sortedHistories' order, appended and finished. */
async function oracleFile(layer: InMemoryLayer, codec: CodecId, file: string): Promise<Buffer> {
  const w = writerFor(makeCore('ts'), file, codec);
  const batch = new EntryBatch(DELTA_INDEX_KEY_SIZE);
  for (const h of layer.sortedHistories()) {
    for (const { lsn, record } of h.records()) batch.add(h.key, lsn, encodeBlob(codec, record), recordWillInit(record));
  }
  w.append(batch.indexKeys(), batch.blobs(), batch.willInit());
  await w.finishAsync();
  return fs.readFileSync(file);
}

for (const [name, codec] of CODECS) {
  it.each(SEEDS)(`both cores write the oracle's bytes from a random layer's arena (${name}, seed %i)`, async (seed) => {
    const layer = randomLayer(seed * 31 + codec);
    const arena = await layer.toArena(codec);
    const want = await oracleFile(layer, codec, path.join(root, `oracle-${name}-${seed}`));
    for (const [impl, core] of cores) {
      const file = path.join(root, `${impl}-${name}-${seed}`);
      const size = await writerFor(core, file, codec).finishArenaAsync(arena);
      const got = fs.readFileSync(file);
      expect(size, impl).toBe(got.length);
      expect(got.equals(want), `${impl} ${name} seed ${seed}: file differs from the oracle's`).toBe(true);
    }
  });
}

/** A copy of the arena with one part broken. */
type Breaker = (a: DeltaArena) => DeltaArena;
const view32 = (a: Uint8Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length / 4);
/** What is broken, how, the message both cores must give, and the layer's codec (lz4 unless given). */
const BROKEN: readonly [string, Breaker, RegExp, CodecId?][] = [
  ['a chain that does not get older', (a) => {
    const entries = Uint8Array.from(a.entries);
    view32(entries)[5] = 0; // record 0's previous is itself
    const heads = Int32Array.from(a.heads);
    heads[0] = 0;
    return { ...a, entries, heads };
  }, /record ordinal 0 out of range or not older/],
  ['a head past the last record', (a) => ({ ...a, heads: Int32Array.from(a.heads, (h, i) => (i === 1 ? a.entries.length / ARENA_ENTRY_BYTES : h)) }), /key 1: record ordinal \d+ out of range/],
  ['a record past its slab', (a) => {
    const entries = Uint8Array.from(a.entries);
    view32(entries.subarray(ARENA_ENTRY_BYTES * 2))[3] = a.slabs[0].length; // record 2 starts at its slab's end
    view32(entries.subarray(ARENA_ENTRY_BYTES * 2))[2] = 0;
    return { ...a, entries };
  }, /record 2: bytes outside its slab/],
  ['a slab index out of range', (a) => {
    const entries = Uint8Array.from(a.entries);
    view32(entries.subarray(ARENA_ENTRY_BYTES * 3))[2] = a.slabs.length;
    return { ...a, entries };
  }, /record 3: bytes outside its slab/],
  ['keys and heads that disagree', (a) => ({ ...a, keys: a.keys.subarray(0, a.keys.length - 1) }), /key bytes for \d+ keys/],
  ['packedAt of the wrong size', (a) => ({ ...a, packedAt: a.packedAt.subarray(2) }), /packedAt/],
  ['a compressed form outside the packed bytes', (a) => {
    const packedAt = Int32Array.from(a.packedAt);
    const ord = packedAt.findIndex((v, i) => i % 2 === 1 && v > 0) >> 1;
    packedAt[ord * 2] = a.packed.length;
    return { ...a, packedAt };
  }, /compressed form out of range/],
  // Found by the delta_arena fuzz target: the native walk framed it as a blob of codec 0 followed
  // by the raw length, which the writer could accept as other blobs.
  ['a compressed form in an uncompressed layer', (a) => {
    const packedAt = Int32Array.from(a.packedAt);
    packedAt[1] = 0;
    return { ...a, packedAt };
  }, /record 0: a compressed form in an uncompressed layer/, CODEC_NONE],
];

it.each(BROKEN.map(([what, breaker, message, codec]) => [what, breaker, message, codec ?? CODEC_LZ4] as const))('a malformed arena (%s) is BAD_ARGUMENT in both cores', async (_what, breaker, message, codec) => {
  const layer = randomLayer(99);
  const arena = breaker(await layer.toArena(codec));
  for (const [impl, core] of cores) {
    const file = path.join(root, `broken-${impl}`);
    const w = writerFor(core, file, codec);
    const failure = await w.finishArenaAsync(arena).then(() => null, (e: unknown) => e);
    expect(isStrataError(failure, 'BAD_ARGUMENT'), `${impl}: ${String(failure)}`).toBe(true);
    expect((failure as Error).message, impl).toMatch(/flush of an in-memory layer/);
    expect((failure as Error).message, impl).toMatch(message);
    w.abort();
    fs.rmSync(file, { force: true });
  }
});

it('finishArenaAsync refuses an image writer in both cores', async () => {
  const arena = await randomLayer(5).toArena(CODEC_NONE);
  for (const [impl, core] of cores) {
    const file = path.join(root, `image-${impl}`);
    const w = core.createLayerWriter(file, { kind: 'image', codec: CODEC_NONE, keyStart: KEY_MIN, keyEnd: KEY_MAX, lsnStart: 1n, lsnEnd: 2n });
    const failure = await w.finishArenaAsync(arena).then(() => null, (e: unknown) => e);
    expect(isStrataError(failure, 'BAD_ARGUMENT'), `${impl}: ${String(failure)}`).toBe(true);
    w.abort();
    fs.rmSync(file, { force: true });
  }
});
