/**
 * Two core features the PostgreSQL subsystem stands on, checked on both cores against a plain
 * oracle: key listing restricted to a range (layerKeys with keyStart/keyEnd: one B-tree descent,
 * then the leaves), and value records (tag 5: a payload read back as the page's first bytes).
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Core } from '../lib/core/core';
import { CODEC_LZ4, CODEC_NONE } from '../lib/core/format';
import { KEY_SIZE } from '../lib/key';
import { IMPLEMENTATIONS, makeCore } from './helpers/cores';
import { deltaSpec, type Entry, imageSpec, openSpecs, pageKey, patchRec, runOracle, runPlan, tmpDir, valueRec, zeroRec } from './helpers/layers';
import { Rng } from './helpers/random';

const PAGE = 8192;

function keysOf(packed: Buffer): string[] {
  const out: string[] = [];
  for (let o = 0; o < packed.length; o += KEY_SIZE) out.push(packed.subarray(o, o + KEY_SIZE).toString('hex'));
  return out;
}

describe.each(IMPLEMENTATIONS)('layerKeys ranges and value records (%s core)', (impl) => {
  const core: Core = makeCore(impl);
  const dir = tmpDir(`keys-${impl}`);
  afterAll(() => core.close());

  it('lists exactly the distinct keys in [keyStart, keyEnd) of delta and image layers', () => {
    const rng = new Rng(31);
    const blocks = Array.from({ length: 900 }, () => rng.int(0, 3000));
    const entries: Entry[] = blocks.map((b, i) => ({ key: pageKey(b), lsn: BigInt(10 + i), rec: rng.chance(0.3) ? zeroRec() : patchRec(0, Buffer.of(i & 0xff)) }));
    const unique = [...new Set(blocks)].sort((a, b) => a - b);
    const delta = deltaSpec(1n, 2000n, entries, CODEC_LZ4);
    const image = imageSpec(3000n, unique.map((b) => ({ key: pageKey(b), rec: zeroRec() })), CODEC_NONE);
    const [dh, ih] = openSpecs(core, dir, [delta, image]);
    const all = unique.map((b) => pageKey(b).toString('hex'));
    for (const h of [dh, ih]) expect(keysOf(core.layerKeys(h))).toEqual(all);
    let empty = 0;
    for (let t = 0; t < 200; t++) {
      const a = rng.int(0, 3100);
      const b = a + rng.int(0, 400);
      const want = unique.filter((k) => k >= a && k < b).map((k) => pageKey(k).toString('hex'));
      if (want.length === 0) empty++;
      for (const h of [dh, ih]) expect(keysOf(core.layerKeys(h, pageKey(a), pageKey(b))), `[${a}, ${b})`).toEqual(want);
    }
    expect(empty).toBeGreaterThan(0);
    expect(() => core.layerKeys(dh, Buffer.alloc(3), pageKey(1))).toThrow(/keyStart/);
  });

  it('redoes a value record as its payload followed by zeros, from memory and from layer files', () => {
    const payload = Buffer.from('relation size: 42 blocks');
    const spec = deltaSpec(1n, 100n, [{ key: pageKey(7), lsn: 10n, rec: valueRec(payload) }, { key: pageKey(8), lsn: 11n, rec: valueRec(Buffer.alloc(PAGE, 0x5a)) }]);
    const [h] = openSpecs(core, dir, [spec]);
    const map = core.createLayerMap();
    core.setLayerMap(map, [h]);
    const reqs = [
      { key: pageKey(7), segments: [{ mapId: map, layers: [spec], capLsn: 50n, mem: [] }] },
      { key: pageKey(8), segments: [{ mapId: map, layers: [spec], capLsn: 50n, mem: [] }] },
      { key: pageKey(9), segments: [{ mapId: map, layers: [spec], capLsn: 50n, mem: [{ lsn: 60n, rec: valueRec(Buffer.of(1, 2, 3)) }, { lsn: 55n, rec: valueRec(Buffer.alloc(100, 9)) }] }] },
    ];
    const got = runPlan(core, reqs);
    expect(got.out.equals(runOracle(reqs).out)).toBe(true);
    expect(got.out.subarray(0, payload.length).equals(payload)).toBe(true);
    expect(got.out.subarray(payload.length, PAGE).equals(Buffer.alloc(PAGE - payload.length))).toBe(true);
    expect(got.out.subarray(PAGE, 2 * PAGE).equals(Buffer.alloc(PAGE, 0x5a))).toBe(true);
    expect([...got.out.subarray(2 * PAGE, 2 * PAGE + 4)]).toEqual([1, 2, 3, 0]); // the newest value wins, the rest is zeros
  });
});
