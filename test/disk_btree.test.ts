import * as path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import type { Core } from '../lib/core/core';
import { isStrataError } from '../lib/errors';
import { DELTA_INDEX_KEY_SIZE, IMAGE_INDEX_KEY_SIZE, btreeFanout } from '../lib/core/format';
import { describeEachCore, makeCore } from './helpers/cores';
import {
  type Entry, type LayerSpec, type TestRequest, appendArgs, deltaSpec, imageRec, imageSpec, pageKey, patchRec, runOracle, runPlan,
  tmpDir, writeLayer, zeroRec,
} from './helpers/layers';
import { Rng } from './helpers/random';

const DELTA_FANOUT = btreeFanout(DELTA_INDEX_KEY_SIZE); // 240
const IMAGE_FANOUT = btreeFanout(IMAGE_INDEX_KEY_SIZE); // 314
const LSN_STEP = 10n;

/** Index geometry the builder must produce for n entries. */
function expectedShape(n: number, fanout: number): { leaves: number; height: number; blocks: number } {
  let nodes = Math.max(1, Math.ceil(n / fanout));
  const leaves = nodes;
  let height = 1;
  let blocks = nodes;
  while (nodes > 1) {
    nodes = Math.ceil(nodes / fanout);
    blocks += nodes;
    height++;
  }
  return { leaves, height, blocks };
}

/** Exactly n delta entries: each key starts with a zero record, later versions patch 8 bytes. */
function deltaEntries(rng: Rng, n: number): Entry[] {
  const out: Entry[] = [];
  for (let key = 0; out.length < n; key++) {
    const versions = Math.min(n - out.length, rng.int(1, 4));
    for (let v = 0; v < versions; v++) {
      const lsn = LSN_STEP * BigInt(v + 1) + BigInt(key % 7);
      const data = Buffer.alloc(8);
      data.writeUInt32BE(key, 0);
      data.writeUInt32BE(v, 4);
      out.push({ key: pageKey(key * 2), lsn, rec: v === 0 ? zeroRec() : patchRec((v * 8) % 8000, data) });
    }
  }
  return out;
}

/** Exactly n image entries on even block numbers; every 997th is a full image, the rest zero records. */
function imageEntries(n: number): Array<{ key: Buffer; rec: Buffer }> {
  return Array.from({ length: n }, (_, i) => ({ key: pageKey(i * 2), rec: i % 997 === 0 ? imageRec(i) : zeroRec() }));
}

/** Requests for present keys, absent keys between them, and caps above/below/inside the versions. */
function requestsFor(rng: Rng, spec: LayerSpec, mapId: number, maxRequests: number): TestRequest[] {
  const keys = new Set<number>();
  const nKeys = spec.entries.length === 0 ? 0 : spec.entries[spec.entries.length - 1].key.readUInt32BE(14) / 2 + 1;
  const picks = Math.min(maxRequests, nKeys * 2 + 2);
  for (const b of [0, 1, nKeys * 2 - 2, nKeys * 2 - 1, nKeys * 2 + 5]) keys.add(Math.max(0, b));
  while (keys.size < picks) keys.add(rng.int(0, nKeys * 2 + 2));
  return [...keys].map((b) => ({
    key: pageKey(b),
    segments: [{ mapId, layers: [spec], capLsn: spec.kind === 'image' ? spec.lsnStart : BigInt(rng.int(0, 50)), mem: [] }],
  }));
}

describeEachCore('disk B-tree through layer files (%s core)', (impl) => {
  const core: Core = makeCore(impl);
  const dir = tmpDir(`btree-${impl}`);
  afterAll(() => core.close());

  const sizes = (fanout: number): number[] => [0, 1, 2, fanout - 1, fanout, fanout + 1, 2 * fanout + 3, fanout * fanout, fanout * fanout + 1];

  for (const kind of ['delta', 'image'] as const) {
    const fanout = kind === 'delta' ? DELTA_FANOUT : IMAGE_FANOUT;
    for (const n of sizes(fanout)) {
      it(`${kind} layer with ${n} entries: shape, keys, verify and lookups`, () => {
        const rng = new Rng(n * 31 + (kind === 'delta' ? 1 : 2));
        const spec = kind === 'delta' ? deltaSpec(1n, 100n, deltaEntries(rng, n)) : imageSpec(50n, imageEntries(n));
        const file = path.join(dir, `${kind}-${n}`);
        const size = writeLayer(core, file, spec, 5000);
        const h = core.openLayer(file);
        const s = core.layerSummary(h);
        const shape = expectedShape(n, fanout);
        expect(s.entryCount).toBe(n);
        expect(s.indexLeafCount).toBe(shape.leaves);
        expect(s.indexHeight).toBe(shape.height);
        expect(s.indexBlkCount).toBe(shape.blocks);
        expect(size).toBe(s.totalBlocks * 8192);
        if (n === fanout * fanout + 1) expect(s.indexHeight).toBe(3);

        const distinct: Buffer[] = [];
        for (const e of spec.entries) if (distinct.length === 0 || !distinct[distinct.length - 1].equals(e.key)) distinct.push(e.key);
        expect(core.layerKeys(h).equals(Buffer.concat(distinct))).toBe(true);
        expect(core.verifyLayer(h)).toBe(n);

        const map = core.createLayerMap();
        core.setLayerMap(map, [h]);
        const reqs = requestsFor(rng, spec, map, 600);
        const got = runPlan(core, reqs);
        const want = runOracle(reqs);
        expect(Buffer.from(got.status)).toEqual(Buffer.from(want.status));
        expect(got.out.equals(want.out)).toBe(true);
        expect([got.layersVisited, got.recordsApplied]).toEqual([want.layersVisited, want.recordsApplied]);
        core.dropLayerMap(map);
        core.closeLayer(h);
      });
    }
  }

  it('walks a long chain of one key backwards across several leaves', () => {
    const versions = 3 * DELTA_FANOUT + 17;
    const entries: Entry[] = [{ key: pageKey(1), lsn: 1n, rec: zeroRec() }, { key: pageKey(3), lsn: 2n, rec: zeroRec() }];
    for (let v = 0; v < versions; v++) {
      entries.push({ key: pageKey(2), lsn: BigInt(v + 1), rec: v === 0 ? imageRec(9) : patchRec(v, Buffer.of(v & 0xff, 0xab)) });
    }
    const spec = deltaSpec(1n, 5000n, entries);
    const file = path.join(dir, 'long-chain');
    writeLayer(core, file, spec, 100);
    const h = core.openLayer(file);
    const map = core.createLayerMap();
    core.setLayerMap(map, [h]);
    const reqs: TestRequest[] = [versions, versions - 1, 1, 250, 241, 240].map((cap) => ({
      key: pageKey(2), segments: [{ mapId: map, layers: [spec], capLsn: BigInt(cap), mem: [] }],
    }));
    const got = runPlan(core, reqs);
    const want = runOracle(reqs);
    expect(got.out.equals(want.out)).toBe(true);
    expect(got.recordsApplied).toBe(want.recordsApplied);
    expect(got.recordsApplied).toBe(versions + (versions - 1) + 1 + 250 + 241 + 240);
  });

  it('rejects unsorted, duplicate and cross-call out-of-order keys with BAD_ARGUMENT', () => {
    const mk = (kind: 'delta' | 'image'): { spec: LayerSpec; w: ReturnType<Core['createLayerWriter']> } => {
      const spec = kind === 'delta' ? deltaSpec(1n, 100n, []) : imageSpec(5n, []);
      const w = core.createLayerWriter(path.join(dir, `bad-${kind}-${Math.random()}`), {
        kind, codec: spec.codec, keyStart: spec.keyStart, keyEnd: spec.keyEnd, lsnStart: spec.lsnStart, lsnEnd: spec.lsnEnd,
      });
      return { spec, w };
    };
    const bad = (f: () => void): void => {
      let err: unknown;
      try { f(); } catch (e) { err = e; }
      expect(isStrataError(err, 'BAD_ARGUMENT')).toBe(true);
    };
    const e = (k: number, lsn: bigint): Entry => ({ key: pageKey(k), lsn, rec: zeroRec() });
    {
      const { spec, w } = mk('delta');
      bad(() => w.append(...appendArgs(spec, [e(2, 5n), e(1, 5n)])));
      bad(() => w.append(...appendArgs(spec, [e(1, 6n), e(1, 5n)])));
      bad(() => w.append(...appendArgs(spec, [e(1, 5n), e(1, 5n)])));
      w.append(...appendArgs(spec, [e(1, 5n), e(1, 6n)]));
      bad(() => w.append(...appendArgs(spec, [e(1, 6n)])));
      bad(() => w.append(...appendArgs(spec, [e(0, 9n)])));
      w.append(...appendArgs(spec, [e(1, 7n)]));
      w.abort();
    }
    {
      const { spec, w } = mk('image');
      const img = (k: number): Entry => ({ key: pageKey(k), lsn: 5n, rec: zeroRec() });
      bad(() => w.append(...appendArgs(spec, [img(3), img(3)])));
      w.append(...appendArgs(spec, [img(3)]));
      bad(() => w.append(...appendArgs(spec, [img(2)])));
      w.abort();
    }
  });
});
