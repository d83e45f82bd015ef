/**
 * The two cores must write byte-identical layer files and answer every read plan identically.
 * Each core's file bytes are compared with a reference encoder written here straight from
 * docs/FORMAT.md, and each core's pages with the layer-walk oracle, so the test asserts something
 * even when only the TS core is available; with both cores it also compares them directly
 * (bytes, pages, statuses, read stats and page-cache counters).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { codecAvailable } from '../lib/core/compress';
import type { Core, ImplementationName } from '../lib/core/core';
import {
  BLOCK_PAYLOAD, BLOCK_SIZE, CODEC_LZ4, CODEC_NONE, CODEC_ZSTD, DELTA_MAGIC, IMAGE_MAGIC, SUMMARY, btreeFanout, type CodecId,
} from '../lib/core/format';
import { IMPLEMENTATIONS, makeCore, NATIVE_SKIP_NOTE } from './helpers/cores';
import {
  type Entry, type LayerSpec, type PagesResult, type TestRequest, appendArgs, deltaSpec, imageSpec, indexKey, pageKey,
  randomImageRec, randomPatchRec, runOracle, runPlan, tmpDir, writeLayer, writeLayerAsync, zeroRec,
} from './helpers/layers';
import { Rng } from './helpers/random';

const CODECS = [CODEC_NONE, CODEC_LZ4, CODEC_ZSTD].filter((c) => codecAvailable(c as CodecId)) as CodecId[];

/** FORMAT.md's layer file, encoded the plainest possible way. */
function referenceLayerBytes(spec: LayerSpec): Buffer {
  const [, blobs, willInit] = appendArgs(spec, spec.entries);
  const keySize = spec.kind === 'delta' ? 26 : 18;
  const valueBlocks = Math.ceil(blobs.length / BLOCK_PAYLOAD);
  const blocks: Buffer[] = [Buffer.alloc(BLOCK_SIZE)];
  for (let b = 0; b < valueBlocks; b++) {
    const blk = Buffer.alloc(BLOCK_SIZE);
    blobs.copy(blk, 0, b * BLOCK_PAYLOAD, Math.min(blobs.length, (b + 1) * BLOCK_PAYLOAD));
    blocks.push(blk);
  }
  // Leaf values: (offset << 1) | will_init, offsets of the blobs back to back.
  let level: Array<{ key: Buffer; value: bigint }> = [];
  let off = 0;
  const lens = blobLengths(blobs);
  spec.entries.forEach((e, i) => {
    level.push({ key: indexKey(spec.kind, e), value: (BigInt(off) << 1n) | BigInt(willInit[i]) });
    off += lens[i];
  });
  const fanout = btreeFanout(keySize);
  let height = 0;
  let leaves = 0;
  const indexStart = blocks.length;
  for (let lvl = 0; ; lvl++) {
    // Cut the level into fan-out-sized nodes (an empty layer still gets one empty leaf).
    const nodes = Math.max(1, Math.ceil(level.length / fanout));
    const up: Array<{ key: Buffer; value: bigint }> = [];
    for (let j = 0; j < nodes; j++) {
      const node = level.slice(j * fanout, (j + 1) * fanout);
      const blk = Buffer.alloc(BLOCK_SIZE);
      blk[0] = lvl;
      blk.writeUInt16BE(node.length, 2);
      node.forEach((e, i) => e.key.copy(blk, 4 + i * keySize));
      node.forEach((e, i) => blk.writeBigUInt64BE(e.value, 4 + node.length * keySize + i * 8));
      if (node.length > 0) up.push({ key: node[0].key, value: BigInt(blocks.length) });
      blocks.push(blk);
    }
    if (lvl === 0) leaves = nodes;
    height++;
    if (nodes === 1) break;
    level = up;
  }
  const s = blocks[0];
  s.writeUInt32BE(spec.kind === 'delta' ? DELTA_MAGIC : IMAGE_MAGIC, SUMMARY.magic);
  s.writeUInt16BE(1, SUMMARY.formatVersion);
  s[SUMMARY.layerKind] = spec.kind === 'delta' ? 1 : 2;
  s[SUMMARY.codec] = spec.codec;
  spec.keyStart.copy(s, SUMMARY.keyStart);
  spec.keyEnd.copy(s, SUMMARY.keyEnd);
  s.writeBigUInt64BE(spec.lsnStart, SUMMARY.lsnStart);
  s.writeBigUInt64BE(spec.lsnEnd, SUMMARY.lsnEnd);
  s.writeUInt32BE(1, SUMMARY.valueStartBlk);
  s.writeUInt32BE(valueBlocks, SUMMARY.valueBlkCount);
  s.writeBigUInt64BE(BigInt(blobs.length), SUMMARY.valueBytes);
  s.writeUInt32BE(indexStart, SUMMARY.indexStartBlk);
  s.writeUInt32BE(leaves, SUMMARY.indexLeafCount);
  s.writeUInt32BE(blocks.length - 1, SUMMARY.indexRootBlk);
  s.writeUInt32BE(blocks.length - indexStart, SUMMARY.indexBlkCount);
  s[SUMMARY.indexHeight] = height;
  s[SUMMARY.indexKeySize] = keySize;
  s.writeBigUInt64BE(BigInt(spec.entries.length), SUMMARY.entryCount);
  s.writeUInt32BE(blocks.length, SUMMARY.totalBlocks);
  s[SUMMARY.recordFormat] = 2;
  for (const b of blocks) b.writeUInt32BE(crc32(b.subarray(0, BLOCK_PAYLOAD)), BLOCK_PAYLOAD);
  return Buffer.concat(blocks);
}

function blobLengths(blobs: Buffer): number[] {
  const lens: number[] = [];
  for (let off = 0; off < blobs.length;) {
    const word = blobs.readUInt32BE(off);
    const len = (word >>> 28 === 0 ? 4 : 8) + (word & 0x0fff_ffff);
    lens.push(len);
    off += len;
  }
  return lens;
}

function randomSpec(rng: Rng, codec: CodecId): LayerSpec {
  const image = rng.chance(0.3);
  const size = rng.pick([0, 1, 2, 50, 239, 240, 241, 313, 314, 315, 700, 3000]);
  const entries: Entry[] = [];
  let keyNo = 0;
  while (entries.length < size) {
    keyNo += rng.int(1, 4);
    const key = pageKey(keyNo, rng.chance(0.9) ? 16384 : 16385);
    if (image) {
      entries.push({ key, lsn: 500n, rec: rng.chance(0.1) ? randomImageRec(rng) : zeroRec() });
      continue;
    }
    let lsn = BigInt(rng.int(1, 20));
    entries.push({ key, lsn, rec: rng.chance(0.05) ? randomImageRec(rng) : zeroRec() });
    for (let v = rng.int(0, 4); v > 0 && entries.length < size; v--) {
      lsn += BigInt(rng.int(1, 30));
      entries.push({ key, lsn, rec: randomPatchRec(rng) });
    }
  }
  return image ? imageSpec(500n, entries, codec) : deltaSpec(1n, 1000n, entries, codec);
}

describe(`cross-core byte identity and read equivalence${NATIVE_SKIP_NOTE}`, () => {
  const cores = new Map<ImplementationName, Core>(IMPLEMENTATIONS.map((i) => [i, makeCore(i, 64 * BLOCK_SIZE)]));
  const dir = tmpDir('differential');
  afterAll(() => { for (const c of cores.values()) c.close(); });
  let n = 0;

  it('the reference encoder agrees with the FORMAT.md example shapes', () => {
    // Self-check of the reference: a 241-entry delta layer has 2 leaves + 1 root.
    const spec = deltaSpec(1n, 10n, Array.from({ length: 241 }, (_, i) => ({ key: pageKey(i), lsn: 5n, rec: zeroRec() })));
    const b = referenceLayerBytes(spec);
    expect(b.length / BLOCK_SIZE).toBe(1 + 1 + 3);
    expect(b.readUInt32BE(SUMMARY.indexRootBlk)).toBe(4);
    expect(b[SUMMARY.indexHeight]).toBe(2);
  });

  for (const codec of CODECS) {
    it(`writes files identical to the reference encoder (and to each other), codec ${codec}`, () => {
      const rng = new Rng(9000 + codec);
      for (let round = 0; round < 12; round++) {
        const spec = randomSpec(rng, codec);
        const want = referenceLayerBytes(spec);
        const files = new Map<ImplementationName, Buffer>();
        for (const [impl, core] of cores) {
          const file = path.join(dir, `${impl}-${n++}`);
          // Different append chunkings must not change a byte.
          writeLayer(core, file, spec, rng.pick([1, 7, 240, 100000]));
          files.set(impl, fs.readFileSync(file));
        }
        for (const [impl, bytes] of files) {
          expect(bytes.length, `${impl} round ${round}`).toBe(want.length);
          expect(bytes.equals(want), `${impl} round ${round}: first difference at byte ${firstDiff(bytes, want)}`).toBe(true);
        }
      }
    });
  }

  it('finishAsync writes the same bytes as finish (and the reference), in both cores', async () => {
    const rng = new Rng(9100);
    for (let round = 0; round < 6; round++) {
      const spec = randomSpec(rng, rng.pick(CODECS));
      const want = referenceLayerBytes(spec);
      for (const [impl, core] of cores) {
        const file = path.join(dir, `${impl}-async-${n++}`);
        const size = await writeLayerAsync(core, file, spec, rng.pick([1, 240, 100000]));
        const bytes = fs.readFileSync(file);
        expect(size, `${impl} round ${round}`).toBe(want.length);
        expect(bytes.equals(want), `${impl} round ${round}: first difference at byte ${firstDiff(bytes, want)}`).toBe(true);
      }
    }
  });

  it('appendAsync writes the same bytes as append, rejects what append refuses, and holds the writer until it settles', async () => {
    const rng = new Rng(9200);
    for (let round = 0; round < 6; round++) {
      const spec = randomSpec(rng, rng.pick(CODECS));
      const want = referenceLayerBytes(spec);
      const chunk = rng.pick([1, 240, 100000]);
      for (const [impl, core] of cores) {
        const file = path.join(dir, `${impl}-append-async-${n++}`);
        const w = core.createLayerWriter(file, {
          kind: spec.kind, codec: spec.codec, keyStart: spec.keyStart, keyEnd: spec.keyEnd, lsnStart: spec.lsnStart, lsnEnd: spec.lsnEnd,
        });
        for (let i = 0; i < spec.entries.length; i += chunk) {
          const args = appendArgs(spec, spec.entries.slice(i, i + chunk));
          const pending = w.appendAsync(...args);
          // Native: the writer is the worker thread's until the append settles; TS: already done.
          if (impl === 'native') expect(() => w.append(...args)).toThrow(expect.objectContaining({ code: 'BAD_ARGUMENT' }) as Error);
          await pending;
        }
        if (spec.entries.length > 0) {
          // A batch out of key order (the last entry again) is refused whole, and the writer goes on.
          const last = spec.entries.slice(-1);
          await expect(w.appendAsync(...appendArgs(spec, last))).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
        }
        const size = await w.finishAsync();
        const bytes = fs.readFileSync(file);
        expect(size, `${impl} round ${round}`).toBe(want.length);
        expect(bytes.equals(want), `${impl} round ${round}: first difference at byte ${firstDiff(bytes, want)}`).toBe(true);
        await expect(w.appendAsync(...appendArgs(spec, []))).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
      }
    }
  });

  it('answers random plans identically (pages, statuses, read stats, cache counters) and as the oracle', () => {
    const rng = new Rng(4242);
    const keys = Array.from({ length: 40 }, (_, i) => pageKey(i * 5));
    const stack = (from: bigint, count: number): LayerSpec[] => {
      const out: LayerSpec[] = [];
      let lsn = from;
      for (let i = 0; i < count; i++) {
        const codec = rng.pick(CODECS);
        if (rng.chance(0.2)) {
          out.push(imageSpec(lsn, keys.filter(() => rng.chance(0.7)).map((key) => ({ key, rec: rng.chance(0.2) ? zeroRec() : randomImageRec(rng) })), codec));
          lsn += 1n;
          continue;
        }
        const end = lsn + BigInt(rng.int(10, 300));
        const entries: Entry[] = [];
        for (const key of keys) for (let x = lsn; x < end; x += BigInt(rng.int(1, 25))) if (rng.chance(0.5)) entries.push({ key, lsn: x, rec: rng.chance(0.1) ? zeroRec() : randomPatchRec(rng) });
        // Some L1-style layers cover only part of the keyspace.
        const partial = rng.chance(0.3);
        out.push(deltaSpec(lsn, end, partial ? entries.filter((e) => e.key.readUInt32BE(14) < 100) : entries, codec,
          pageKey(0), partial ? pageKey(100) : pageKey(0xffff_ffff)));
        lsn = end;
      }
      return out;
    };
    const parentSpecs = stack(1n, 14);
    const branch = parentSpecs[Math.floor(parentSpecs.length / 2)].lsnStart;
    const childSpecs = stack(branch + 1n, 6);
    const maps = new Map<ImplementationName, { parent: number; child: number }>();
    for (const [impl, core] of cores) {
      const open = (specs: LayerSpec[]): number => {
        const id = core.createLayerMap();
        core.setLayerMap(id, specs.map((s) => {
          const file = path.join(dir, `map-${impl}-${n++}`);
          writeLayer(core, file, s);
          return core.openLayer(file);
        }));
        return id;
      };
      maps.set(impl, { parent: open(parentSpecs), child: open(childSpecs) });
    }
    const top = childSpecs[childSpecs.length - 1].lsnEnd;
    for (let batch = 0; batch < 15; batch++) {
      const reqs = (impl: ImplementationName): TestRequest[] => {
        const r = new Rng(batch * 7 + 1); // the same requests for every core
        const ids = maps.get(impl)!;
        return Array.from({ length: r.int(1, 40) }, () => {
          const key = r.chance(0.95) ? r.pick(keys) : pageKey(r.int(0, 300));
          const mem = r.chance(0.3) ? [{ lsn: top + 10n, rec: r.chance(0.3) ? zeroRec() : randomPatchRec(r) }] : [];
          if (r.chance(0.6)) {
            return { key, segments: [
              { mapId: ids.child, layers: childSpecs, capLsn: r.bigint(branch, top + 5n), mem },
              { mapId: ids.parent, layers: parentSpecs, capLsn: branch, mem: [] },
            ] };
          }
          return { key, segments: [{ mapId: ids.parent, layers: parentSpecs, capLsn: r.bigint(0n, top), mem }] };
        });
      };
      const results = new Map<ImplementationName, PagesResult>();
      for (const [impl, core] of cores) results.set(impl, runPlan(core, reqs(impl)));
      const want = runOracle(reqs(IMPLEMENTATIONS[0]));
      for (const [impl, got] of results) {
        expect(Array.from(got.status), `${impl} batch ${batch}`).toEqual(Array.from(want.status));
        expect(got.out.equals(want.out), `${impl} batch ${batch}`).toBe(true);
        expect([got.layersVisited, got.recordsApplied], `${impl} batch ${batch}`).toEqual([want.layersVisited, want.recordsApplied]);
      }
    }
    // The same block reads in the same order give the same cache counters (64-page cache: evictions happen).
    const stats = [...cores.values()].map((c) => c.pageCache.stats());
    expect(stats[0].evictions).toBeGreaterThan(0);
    for (const s of stats) expect(s).toEqual(stats[0]);
  });
});

function firstDiff(a: Buffer, b: Buffer): number {
  const len = Math.min(a.length, b.length);
  for (let i = 0; i < len; i++) if (a[i] !== b[i]) return i;
  return len;
}
