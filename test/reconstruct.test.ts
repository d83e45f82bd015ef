import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Core } from '../lib/core/core';
import { isStrataError, type StrataErrorCode } from '../lib/errors';
import { KEY_MAX } from '../lib/key';
import { describeEachCore, makeCore } from './helpers/cores';
import {
  type Entry, type LayerSpec, type TestRequest, deltaSpec, imageRec, imageSpec, openSpecs, pageKey, patchRec, planOf,
  randomImageRec, randomPatchRec, runOracle, runPlan, tmpDir, writeLayer, zeroRec,
} from './helpers/layers';
import { Rng } from './helpers/random';

const PAGE = 8192;
const K = pageKey(42);

function expectError(code: StrataErrorCode, f: () => unknown): void {
  let err: unknown;
  try { f(); } catch (e) { err = e; }
  expect(isStrataError(err, code), `expected ${code}, got ${String(err)}`).toBe(true);
}

function page(base: Buffer | null, ...patches: Array<[number, string]>): Buffer {
  const p = base === null ? Buffer.alloc(PAGE) : Buffer.from(base.subarray(1));
  for (const [off, s] of patches) p.write(s, off);
  return p;
}

describeEachCore('GetPage@LSN layer walk (%s core)', (impl) => {
  const core: Core = makeCore(impl);
  const dir = tmpDir(`recon-${impl}`);
  afterAll(() => core.close());

  interface Map { id: number; layers: LayerSpec[]; handles: number[] }
  const mapOf = (layers: LayerSpec[]): Map => {
    const handles = openSpecs(core, dir, layers);
    const id = core.createLayerMap();
    core.setLayerMap(id, handles);
    return { id, layers, handles };
  };
  const req = (key: Buffer, ...segs: Array<[Map, bigint, Array<{ lsn: bigint; rec: Buffer }>?]>): TestRequest => ({
    key, segments: segs.map(([m, cap, mem]) => ({ mapId: m.id, layers: m.layers, capLsn: cap, mem: mem ?? [] })),
  });
  /** Run on the core, check against the oracle, return the core's result. */
  const check = (reqs: TestRequest[]): ReturnType<typeof runPlan> => {
    const got = runPlan(core, reqs);
    const want = runOracle(reqs);
    expect(Array.from(got.status)).toEqual(Array.from(want.status));
    expect(got.out.equals(want.out)).toBe(true);
    expect([got.layersVisited, got.recordsApplied]).toEqual([want.layersVisited, want.recordsApplied]);
    return got;
  };
  const s = (t: string): Buffer => Buffer.from(t);

  it('floor rule: an image inside a delta\'s LSN range stops the delta below it', () => {
    const img = imageRec(1);
    const m = mapOf([
      deltaSpec(1n, 100n, [
        { key: K, lsn: 10n, rec: zeroRec() },
        { key: K, lsn: 20n, rec: patchRec(0, s('old')) },
        { key: K, lsn: 60n, rec: patchRec(4, s('new')) },
      ]),
      imageSpec(50n, [{ key: K, rec: img }]),
    ]);
    const r = check([req(K, [m, 99n]), req(K, [m, 50n]), req(K, [m, 49n]), req(K, [m, 15n])]);
    expect(r.out.subarray(0, PAGE).equals(page(img, [4, 'new']))).toBe(true); // not zeros + 'old'
    expect(r.out.subarray(PAGE, 2 * PAGE).equals(page(img))).toBe(true);
    expect(r.out.subarray(2 * PAGE, 3 * PAGE).equals(page(null, [0, 'old']))).toBe(true);
    expect(r.out.subarray(3 * PAGE, 4 * PAGE).equals(page(null))).toBe(true);
    // cap 99: delta (records 60), then the image; cap 50: the image alone (it ties the delta at 51 and wins).
    expect([r.layersVisited, r.recordsApplied]).toEqual([2 + 1 + 1 + 1, 2 + 1 + 2 + 1]);
  });

  it('an image layer covering a key it lacks means NOT_FOUND, even with older records below', () => {
    const m = mapOf([
      deltaSpec(1n, 50n, [{ key: K, lsn: 10n, rec: zeroRec() }]),
      imageSpec(50n, [{ key: pageKey(41), rec: imageRec(2) }]),
    ]);
    const r = check([req(K, [m, 60n]), req(K, [m, 49n])]);
    expect(Array.from(r.status)).toEqual([1, 0]);
    expect(r.layersVisited).toBe(2);
  });

  it('a delta chain without a will_init record is NOT_FOUND; layers outside the key range are skipped', () => {
    const m = mapOf([
      deltaSpec(1n, 50n, [{ key: K, lsn: 10n, rec: patchRec(0, s('x')) }]),
      deltaSpec(1n, 50n, [{ key: pageKey(100), lsn: 20n, rec: zeroRec() }], 0, pageKey(100), KEY_MAX),
    ]);
    const r = check([req(K, [m, 49n]), req(pageKey(100), [m, 49n])]);
    expect(Array.from(r.status)).toEqual([1, 0]);
    expect(r.layersVisited).toBe(2);
  });

  it('walks L0 deltas newest first and descends into the ancestor below its branch point', () => {
    const parent = mapOf([
      deltaSpec(1n, 30n, [{ key: K, lsn: 10n, rec: zeroRec() }, { key: K, lsn: 20n, rec: patchRec(0, s('p20')) }]),
      deltaSpec(30n, 60n, [{ key: K, lsn: 40n, rec: patchRec(0, s('p40')) }]),
    ]);
    const child = mapOf([deltaSpec(31n, 70n, [{ key: K, lsn: 50n, rec: patchRec(8, s('c50')) }])]);
    const r = check([
      req(K, [child, 69n], [parent, 30n]),
      req(K, [child, 45n], [parent, 30n]),
      req(K, [parent, 59n]),
      req(pageKey(7), [child, 69n], [parent, 30n]),
    ]);
    expect(r.out.subarray(0, PAGE).equals(page(null, [0, 'p20'], [8, 'c50']))).toBe(true);
    expect(r.out.subarray(PAGE, 2 * PAGE).equals(page(null, [0, 'p20']))).toBe(true);
    expect(r.out.subarray(2 * PAGE, 3 * PAGE).equals(page(null, [0, 'p40']))).toBe(true);
    expect(r.status[3]).toBe(1);
  });

  it('uses in-memory records first, and skips the layers when they end the chain', () => {
    const m = mapOf([deltaSpec(1n, 50n, [{ key: K, lsn: 10n, rec: imageRec(3) }])]);
    const r = check([
      req(K, [m, 80n, [{ lsn: 70n, rec: patchRec(0, s('m70')) }, { lsn: 60n, rec: patchRec(1, s('m60')) }]]),
      req(K, [m, 80n, [{ lsn: 70n, rec: patchRec(0, s('m70')) }, { lsn: 60n, rec: zeroRec() }]]),
      req(K, [m, 80n, []], [m, 5n, [{ lsn: 4n, rec: zeroRec() }]]),
    ]);
    expect(r.out.subarray(0, PAGE).equals(page(imageRec(3), [1, 'm60'], [0, 'm70']))).toBe(true);
    expect(r.out.subarray(PAGE, 2 * PAGE).equals(page(null, [0, 'm70']))).toBe(true);
    expect([r.layersVisited, r.recordsApplied]).toEqual([1 + 0 + 1, 3 + 2 + 1]);
  });

  it('breaks ties: image over delta, then greater lsn_start, then later map position', () => {
    const a = imageRec(4);
    const m1 = mapOf([
      deltaSpec(10n, 50n, [{ key: K, lsn: 45n, rec: patchRec(0, s('d')) }]),
      imageSpec(49n, [{ key: K, rec: a }]),
    ]);
    const m2 = mapOf([
      deltaSpec(1n, 50n, [{ key: K, lsn: 5n, rec: zeroRec() }, { key: K, lsn: 30n, rec: patchRec(0, s('A')) }]),
      deltaSpec(20n, 50n, [{ key: K, lsn: 25n, rec: patchRec(1, s('B')) }]),
    ]);
    const m3 = mapOf([
      deltaSpec(1n, 50n, [{ key: K, lsn: 5n, rec: zeroRec() }, { key: K, lsn: 6n, rec: patchRec(0, s('first')) }]),
      deltaSpec(1n, 50n, [{ key: K, lsn: 5n, rec: zeroRec() }, { key: K, lsn: 6n, rec: patchRec(0, s('second')) }]),
    ]);
    const r = check([req(K, [m1, 100n]), req(K, [m2, 100n]), req(K, [m3, 100n])]);
    expect(r.out.subarray(0, PAGE).equals(page(a))).toBe(true);
    // [20,50) first (records ≥ 20: 'B' at 25), then [1,50) below 20: zero at 5 ('A' at 30 is skipped).
    expect(r.out.subarray(PAGE, 2 * PAGE).equals(page(null, [1, 'B']))).toBe(true);
    expect(r.out.subarray(2 * PAGE, 3 * PAGE).equals(page(null, [0, 'second']))).toBe(true);
  });

  it('handles a cap below every layer and a cap at the maximum LSN', () => {
    const m = mapOf([deltaSpec(10n, 50n, [{ key: K, lsn: 10n, rec: zeroRec() }])]);
    const r = check([req(K, [m, 9n]), req(K, [m, 0xffff_ffff_ffff_ffffn]), req(K)]);
    expect(Array.from(r.status)).toEqual([1, 0, 1]);
    expect(r.layersVisited).toBe(1);
  });

  it('matches the oracle on random layer stacks with ancestors', () => {
    const rng = new Rng(77);
    for (let round = 0; round < 6; round++) {
      const keys = Array.from({ length: 12 }, (_, i) => pageKey(i * 3));
      const stack = (fromLsn: bigint, layers: number): LayerSpec[] => {
        const specs: LayerSpec[] = [];
        let lsn = fromLsn;
        for (let l = 0; l < layers; l++) {
          if (rng.chance(0.25)) {
            specs.push(imageSpec(lsn, keys.filter(() => rng.chance(0.8)).map((key) => ({ key, rec: rng.chance(0.3) ? zeroRec() : randomImageRec(rng) }))));
            lsn += 1n;
            continue;
          }
          const end = lsn + BigInt(rng.int(5, 40));
          const entries: Entry[] = [];
          for (const key of keys) {
            for (let x = lsn; x < end; x += BigInt(rng.int(1, 8))) {
              if (rng.chance(0.4)) entries.push({ key, lsn: x, rec: rng.chance(0.15) ? zeroRec() : randomPatchRec(rng) });
            }
          }
          specs.push(deltaSpec(lsn, end, entries, rng.int(0, 3) as 0 | 1 | 2));
          lsn = end;
        }
        return specs;
      };
      const parentLayers = stack(1n, 8);
      const branch = parentLayers[parentLayers.length - 1].lsnEnd;
      const parent = mapOf([...parentLayers].sort(() => rng.next() - 0.5));
      const child = mapOf(stack(branch, 5));
      const reqs: TestRequest[] = [];
      for (let i = 0; i < 120; i++) {
        const key = rng.chance(0.9) ? rng.pick(keys) : pageKey(rng.int(0, 40));
        const mem = rng.chance(0.2) ? [{ lsn: 100000n, rec: randomPatchRec(rng) }] : [];
        if (rng.chance(0.5)) reqs.push(req(key, [child, BigInt(rng.int(Number(branch), Number(branch) + 200)), mem], [parent, branch - 1n]));
        else reqs.push(req(key, [parent, BigInt(rng.int(0, Number(branch) + 10)), mem]));
      }
      const r = check(reqs);
      expect(r.status.some((x) => x === 0)).toBe(true);
    }
  });

  describe('argument checks', () => {
    const m0 = (): number => core.createLayerMap();
    it('rejects bad plans, out/status sizes and ids with BAD_ARGUMENT', () => {
      const id = m0();
      const plan = planOf([{ key: K, segments: [{ mapId: id, layers: [], capLsn: 5n, mem: [] }] }]);
      const out = Buffer.alloc(PAGE);
      const st = new Uint8Array(1);
      const cnt = new Uint32Array(2).fill(7);
      expect(core.getPages(plan, out, st, cnt)).toBeUndefined();
      expect([...cnt]).toEqual([0, 0]);
      expectError('BAD_ARGUMENT', () => core.getPages(plan, Buffer.alloc(PAGE - 1), st, cnt));
      expectError('BAD_ARGUMENT', () => core.getPages(plan, Buffer.alloc(2 * PAGE), st, cnt));
      expectError('BAD_ARGUMENT', () => core.getPages(plan, out, new Uint8Array(2), cnt));
      expectError('BAD_ARGUMENT', () => core.getPages(plan.subarray(0, plan.length - 1), out, st, cnt));
      expectError('BAD_ARGUMENT', () => core.getPages(Buffer.concat([plan, Buffer.of(0)]), out, st, cnt));
      const unknown = planOf([{ key: K, segments: [{ mapId: 99999, layers: [], capLsn: 5n, mem: [] }] }]);
      expectError('BAD_ARGUMENT', () => core.getPages(unknown, out, st, cnt));
      // Even when an earlier segment would end the chain, every map id must exist.
      const late = planOf([{ key: K, segments: [
        { mapId: id, layers: [], capLsn: 5n, mem: [{ lsn: 1n, rec: zeroRec() }] },
        { mapId: 99999, layers: [], capLsn: 5n, mem: [] },
      ] }]);
      expectError('BAD_ARGUMENT', () => core.getPages(late, out, st, cnt));
      expect(core.getPages(planOf([]), Buffer.alloc(0), new Uint8Array(0), new Uint32Array(0))).toBeUndefined();
      // tryGetPagesCached's outOffset: the pages go at the offset, nothing around them is touched,
      // and an offset whose pages would not fit is BAD_ARGUMENT (the same in both cores).
      const wide = Buffer.alloc(PAGE + 20, 0xee);
      expect(core.tryGetPagesCached(plan, wide, st, cnt, 13)).toBe(true);
      expect(wide.subarray(13, 13 + PAGE).every((b) => b === 0)).toBe(true);
      expect(wide.subarray(0, 13).every((b) => b === 0xee) && wide.subarray(13 + PAGE).every((b) => b === 0xee)).toBe(true);
      expectError('BAD_ARGUMENT', () => core.tryGetPagesCached(plan, wide, st, cnt, 21));
      expectError('BAD_ARGUMENT', () => core.tryGetPagesCached(plan, wide, st, cnt, PAGE + 21));
      expectError('BAD_ARGUMENT', () => core.getPages(plan, out, st, new Uint32Array(3)));
      expectError('BAD_ARGUMENT', () => core.getPages(plan, out, st, new Uint8Array(2) as unknown as Uint32Array));
      core.dropLayerMap(id);
      expectError('BAD_ARGUMENT', () => core.getPages(plan, out, st, cnt));
      expectError('BAD_ARGUMENT', () => core.dropLayerMap(id));
      expectError('BAD_ARGUMENT', () => core.setLayerMap(id, []));
    });

    it('rejects unknown handles in setLayerMap and closed layers in a map', () => {
      const file = path.join(dir, 'closed-layer');
      writeLayer(core, file, deltaSpec(1n, 50n, [{ key: K, lsn: 10n, rec: zeroRec() }]));
      const h = core.openLayer(file);
      const id = m0();
      expectError('BAD_ARGUMENT', () => core.setLayerMap(id, [h, 987654]));
      core.setLayerMap(id, [h]);
      core.closeLayer(h);
      const plan = planOf([{ key: K, segments: [{ mapId: id, layers: [], capLsn: 20n, mem: [] }] }]);
      expectError('BAD_ARGUMENT', () => core.getPages(plan, Buffer.alloc(PAGE), new Uint8Array(1), new Uint32Array(2)));
    });
  });
});
