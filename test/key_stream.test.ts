/**
 * Streaming a timeline's keys for image creation (lib/engine/key_stream.ts, docs/RELIABILITY.md
 * "Resource limits"): layerKeys' maxKeys limit on both cores, paging through a layer file from the
 * key after the last one, the merge of sorted sources, and the partitions cut from the stream,
 * which must equal what the whole sorted key list gave (the image layers written stay the same).
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Core } from '../lib/core/core';
import { CODEC_LZ4, CODEC_NONE } from '../lib/core/format';
import {
  BackgroundKeyStream, keyPartitions, keysFrom, keySuccessor, LAYER_KEYS_FIRST_PAGE, mergeKeys, pagedLayerKeys, PARTITION_KEYS_PER_STEP, PARTITION_STEP_MS, PrefetchedLayerKeys, resumableKeys,
  STEP_CLOCK_KEYS,
} from '../lib/engine/key_stream';
import { KEY_MAX, KEY_MIN, KEY_SIZE } from '../lib/key';
import { PAGE_SIZE } from '../lib/record';
import { IMPLEMENTATIONS, makeCore } from './helpers/cores';
import { deltaSpec, type Entry, imageSpec, openSpecs, pageKey, patchRec, tmpDir, zeroRec } from './helpers/layers';
import { Rng } from './helpers/random';

function hexes(keys: Iterable<Buffer>): string[] {
  return [...keys].map((k) => k.toString('hex'));
}

function unpack(packed: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let o = 0; o < packed.length; o += KEY_SIZE) out.push(packed.subarray(o, o + KEY_SIZE));
  return out;
}

/** What image creation used before streaming: the whole sorted key list, cut by index. */
function partitionSortedList(keys: readonly Buffer[], targetBytes: number): Array<{ keyStart: Buffer; keyEnd: Buffer; keys: Buffer[] }> {
  const per = Math.max(1, Math.floor(targetBytes / PAGE_SIZE));
  const parts: Array<{ keyStart: Buffer; keyEnd: Buffer; keys: Buffer[] }> = [];
  for (let i = 0; i < keys.length || parts.length === 0; i += per) {
    const chunk = keys.slice(i, i + per);
    parts.push({ keyStart: parts.length === 0 ? KEY_MIN : chunk[0], keyEnd: i + per < keys.length ? keys[i + per] : KEY_MAX, keys: chunk });
  }
  return parts;
}

function partsHex(parts: Iterable<{ keyStart: Buffer; keyEnd: Buffer; keys: Buffer[] }>): string[][] {
  return [...parts].map((p) => [p.keyStart.toString('hex'), p.keyEnd.toString('hex'), ...hexes(p.keys)]);
}

describe('key stream', () => {
  it('keySuccessor carries through 0xff bytes and ends after the largest key', () => {
    const k = Buffer.alloc(KEY_SIZE);
    k[KEY_SIZE - 1] = 0xff;
    k[KEY_SIZE - 2] = 0x01;
    const next = keySuccessor(k) as Buffer;
    expect(next[KEY_SIZE - 1]).toBe(0);
    expect(next[KEY_SIZE - 2]).toBe(2);
    expect(k[KEY_SIZE - 1]).toBe(0xff); // the argument is not changed
    expect(keySuccessor(Buffer.alloc(KEY_SIZE, 0xff))).toBeNull();
  });

  it('partitions cut from merged sorted sources equal the partitions of the whole sorted key list', async () => {
    const rng = new Rng(7);
    for (let round = 0; round < 40; round++) {
      const sources = Array.from({ length: rng.int(1, 6) }, () => {
        const blocks = [...new Set(Array.from({ length: rng.int(0, 200) }, () => rng.int(0, 500)))].sort((a, b) => a - b);
        return blocks.map((b) => pageKey(b));
      });
      const all = [...new Set(sources.flat().map((k) => k.toString('hex')))].sort().map((h) => Buffer.from(h, 'hex'));
      expect(hexes(mergeKeys(sources.map((s) => s[Symbol.iterator]())))).toEqual(hexes(all));
      for (const pages of [1, 3, 64, 10_000]) {
        const streamed: { keyStart: Buffer; keyEnd: Buffer; keys: Buffer[] }[] = [];
        const noPause = (): Promise<void> => Promise.resolve();
        for await (const p of keyPartitions(mergeKeys(sources.map((s) => s[Symbol.iterator]())), pages * PAGE_SIZE, noPause)) streamed.push({ ...p, keys: [...p.keys] });
        expect(partsHex(streamed), `round ${round}, ${pages} pages`).toEqual(partsHex(partitionSortedList(all, pages * PAGE_SIZE)));
      }
    }
  });
});

describe('mergeKeys over keys that differ in every byte', () => {
  it('orders as Buffer.compare does, each key once, high bytes (≥ 0x80) included', () => {
    const rng = new Rng(23);
    const randomKey = (): Buffer => {
      const k = Buffer.alloc(KEY_SIZE);
      // a few distinct values per byte, so keys share prefixes of every length
      for (let i = 0; i < KEY_SIZE; i++) k[i] = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff][rng.int(0, 5)];
      return k;
    };
    for (let round = 0; round < 30; round++) {
      const sources = Array.from({ length: rng.int(1, 8) }, () => {
        const keys = Array.from({ length: rng.int(0, 150) }, randomKey);
        return [...new Map(keys.map((k) => [k.toString('hex'), k])).values()].sort(Buffer.compare);
      });
      const all = [...new Set(sources.flat().map((k) => k.toString('hex')))].sort();
      expect(hexes(mergeKeys(sources.map((s) => s[Symbol.iterator]()))), `round ${round}`).toEqual(all);
    }
  });
});

describe('key partitions pause', () => {
  it('every PARTITION_KEYS_PER_STEP keys pulled, inside a partition as well as between them', async () => {
    const keys = Array.from({ length: 3 * PARTITION_KEYS_PER_STEP + 5 }, (_, i) => pageKey(i));
    for (const perPartition of [1, 100, keys.length, 10 * keys.length]) {
      let pauses = 0;
      let pulledAtPause = -1;
      let pulled = 0;
      const counted: Iterator<Buffer> = (function* () { for (const k of keys) { pulled++; yield k; } })();
      const parts: Buffer[][] = [];
      const stoppedClock = (): number => 0; // only the key count can end a step
      for await (const p of keyPartitions(counted, perPartition * PAGE_SIZE, async () => { pauses++; pulledAtPause = pulled; }, stoppedClock)) parts.push([...p.keys]);
      expect(pauses, `${perPartition} keys a partition`).toBe(Math.floor(keys.length / PARTITION_KEYS_PER_STEP));
      expect(pulledAtPause).toBeLessThanOrEqual(pauses * PARTITION_KEYS_PER_STEP + 1); // no run of keys longer than a step
      expect(parts.flat().length).toBe(keys.length);
    }
  });
});

describe('key partitions pause by time', () => {
  it(`after PARTITION_STEP_MS of pulling, checked every STEP_CLOCK_KEYS keys, when keys are slow`, async () => {
    const keys = Array.from({ length: 5000 }, (_, i) => pageKey(i));
    for (const msPerKey of [0.001, 0.01, 0.05, 2]) {
      let pulled = 0;
      const counted: Iterator<Buffer> = (function* () { for (const k of keys) { pulled++; yield k; } })();
      const clock = (): number => pulled * msPerKey; // time passes only while keys are pulled
      const runs: number[] = [];
      let lastPause = 0;
      const pause = async (): Promise<void> => { runs.push(pulled - lastPause); lastPause = pulled; };
      let total = 0;
      for await (const p of keyPartitions(counted, 64 * PAGE_SIZE, pause, clock)) total += p.keys.length;
      expect(total).toBe(keys.length);
      // keys whose pulling takes the step's time, rounded up to the next clock check; never more than the count cap
      const keysPerStep = Math.min(PARTITION_KEYS_PER_STEP, Math.max(STEP_CLOCK_KEYS, Math.ceil(PARTITION_STEP_MS / msPerKey / STEP_CLOCK_KEYS) * STEP_CLOCK_KEYS));
      expect(runs.length, `${msPerKey} ms a key`).toBe(Math.floor(keys.length / keysPerStep));
      for (const r of runs) expect(r).toBeLessThanOrEqual(keysPerStep + 1); // the pull that ends a step reads one key ahead
    }
  });
});

describe.each(IMPLEMENTATIONS)('layer keys paged through (%s core)', (impl) => {
  const core: Core = makeCore(impl);
  const dir = tmpDir(`keystream-${impl}`);
  afterAll(() => core.close());

  it('layerKeys stops at maxKeys, and paging from the next key yields every key of delta and image layers once', () => {
    const rng = new Rng(11);
    const blocks = Array.from({ length: 900 }, () => rng.int(0, 3000));
    const entries: Entry[] = blocks.map((b, i) => ({ key: pageKey(b), lsn: BigInt(10 + i), rec: rng.chance(0.3) ? zeroRec() : patchRec(0, Buffer.of(i & 0xff)) }));
    const unique = [...new Set(blocks)].sort((a, b) => a - b);
    const delta = deltaSpec(1n, 2000n, entries, CODEC_LZ4);
    const image = imageSpec(3000n, unique.slice(0, 400).map((b) => ({ key: pageKey(b), rec: zeroRec() })), CODEC_NONE);
    const [dh, ih] = openSpecs(core, dir, [delta, image]);
    const all = unique.map((b) => pageKey(b).toString('hex'));
    expect(hexes(unpack(core.layerKeys(dh, KEY_MIN, KEY_MAX, 5)))).toEqual(all.slice(0, 5));
    expect(core.layerKeys(dh, KEY_MIN, KEY_MAX, 0).length).toBe(0);
    expect(hexes(unpack(core.layerKeys(dh, pageKey(unique[10]), KEY_MAX, 3)))).toEqual(all.slice(10, 13));
    for (const pageKeys of [1, 7, unique.length, 1024]) {
      const asks: number[] = [];
      expect(hexes(pagedLayerKeys((from, end, max) => { asks.push(max); return core.layerKeys(dh, from, end, max); }, keysFrom(KEY_MIN), pageKeys)), `${pageKeys} a page`).toEqual(all);
      // a small first page (a merge asks every layer at once), doubling up to pageKeys
      expect(asks[0]).toBe(Math.min(LAYER_KEYS_FIRST_PAGE, pageKeys));
      for (let i = 1; i < asks.length; i++) expect(asks[i]).toBe(Math.min(2 * asks[i - 1], pageKeys));
      const merged = mergeKeys([
        pagedLayerKeys((from, end, max) => core.layerKeys(dh, from, end, max), keysFrom(KEY_MIN), pageKeys),
        pagedLayerKeys((from, end, max) => core.layerKeys(ih, from, end, max), keysFrom(KEY_MIN), pageKeys),
        [pageKey(unique[3]), pageKey(5000)][Symbol.iterator](),
      ]);
      expect(hexes(merged)).toEqual([...all, pageKey(5000).toString('hex')]);
    }
  });

  it('a cursor over disjoint intervals lists exactly the layer keys inside them, paged or fetched ahead', async () => {
    const rng = new Rng(12);
    const blocks = [...new Set(Array.from({ length: 700 }, () => rng.int(0, 2000)))].sort((a, b) => a - b);
    const entries: Entry[] = blocks.map((b, i) => ({ key: pageKey(b), lsn: BigInt(10 + i), rec: patchRec(0, Buffer.of(i & 0xff)) }));
    const [dh] = openSpecs(core, dir, [deltaSpec(1n, 2000n, entries, CODEC_LZ4)]);
    for (let round = 0; round < 40; round++) {
      const cuts = [...new Set(Array.from({ length: 2 * rng.int(1, 5) }, () => rng.int(0, 2100)))].sort((a, b) => a - b);
      const spans: Array<[number, number]> = [];
      for (let i = 0; i + 1 < cuts.length; i += 2) spans.push([cuts[i], cuts[i + 1]]);
      const intervals = spans.map(([a, b]) => ({ start: pageKey(a), end: pageKey(b) }));
      const want = blocks.filter((b) => spans.some(([a, e]) => a <= b && b < e)).map((b) => pageKey(b).toString('hex'));
      const pageKeys = rng.int(1, 64);
      expect(hexes(pagedLayerKeys((from, end, max) => core.layerKeys(dh, from, end, max), intervals, pageKeys)), `round ${round}`).toEqual(want);
      const ahead = new PrefetchedLayerKeys((from, end, max) => core.layerKeysInBackground(dh, from, end, max), intervals, pageKeys);
      await ahead.fill(want.length + 1, () => false);
      const got: string[] = [];
      while (ahead.advance()) got.push(ahead.buf.subarray(ahead.at, ahead.at + KEY_SIZE).toString('hex'));
      expect(got, `round ${round}, fetched ahead`).toEqual(want);
    }
  });
});

describe('resumableKeys: layer swaps between pulls', () => {
  const key = (i: number): Buffer => {
    const k = Buffer.alloc(KEY_SIZE);
    k.writeUInt32BE(i, KEY_SIZE - 4);
    return k;
  };
  it('when the layers change under the stream it reopens after the last key given: every key once, in order', () => {
    const rng = new Rng(77);
    const all = Array.from({ length: 500 }, (_, i) => key(i * 3));
    // "Layers": the keys dealt over a few sorted arrays; a swap deals them anew (keys move between layers, none vanish).
    const deal = (n: number): Buffer[][] => {
      const layers = Array.from({ length: n }, (): Buffer[] => []);
      for (const k of all) {
        layers[rng.int(0, n - 1)].push(k);
        if (rng.chance(0.2)) layers[rng.int(0, n - 1)].push(k); // some keys in two layers
      }
      return layers.map((l) => l.sort(Buffer.compare));
    };
    let layers = deal(4);
    let version = 0;
    let opened = 0;
    const stream = resumableKeys((from) => {
      opened++;
      return layers.map((l) => l.filter((k) => Buffer.compare(k, from) >= 0)[Symbol.iterator]());
    }, () => version);
    const got: Buffer[] = [];
    for (let r = stream.next(); r.done !== true; r = stream.next()) {
      got.push(r.value);
      if (rng.chance(0.05)) {
        layers = deal(rng.int(1, 6));
        version++;
      }
    }
    expect(opened).toBeGreaterThan(5);
    expect(hexes(got)).toEqual(hexes(all));
  });
});

/** A sorted key array as a background pager: the keys ≥ from, at most max, after a random delay. */
function slowPager(keys: readonly Buffer[], rng: Rng, log?: { asks: number }): (from: Buffer, end: Buffer, max: number) => Promise<Buffer> {
  return async (from, end, max) => {
    if (log) log.asks++;
    await (rng.chance(0.1) ? new Promise((r) => setTimeout(r, 1)) : Promise.resolve());
    return Buffer.concat(keys.filter((k) => Buffer.compare(k, from) >= 0 && Buffer.compare(k, end) < 0).slice(0, max));
  };
}

describe('BackgroundKeyStream: layer keys fetched ahead off the loop', () => {
  const key = (i: number): Buffer => {
    const k = Buffer.alloc(KEY_SIZE);
    k.writeUInt32BE(i, KEY_SIZE - 4);
    return k;
  };

  it('partitions equal those of the whole sorted key list, with layers swapped during the awaits', async () => {
    const rng = new Rng(91);
    for (let round = 0; round < 12; round++) {
      const all = Array.from({ length: rng.int(0, 3000) }, (_, i) => key(i * 2 + rng.int(0, 1)));
      const deal = (n: number): Buffer[][] => {
        const layers = Array.from({ length: n }, (): Buffer[] => []);
        for (const k of all) {
          layers[rng.int(0, n - 1)].push(k);
          if (rng.chance(0.3)) layers[rng.int(0, n - 1)].push(k); // some keys in two layers
        }
        return layers.map((l) => [...new Map(l.map((k) => [k.toString('hex'), k])).values()].sort(Buffer.compare));
      };
      let layers = deal(rng.int(1, 8));
      let version = 0;
      const pageKeys = [1, 5, 64, 1024][rng.int(0, 3)];
      const memory = all.filter(() => rng.chance(0.05)); // an in-memory layer's keys, given one Buffer each
      const stream = new BackgroundKeyStream(
        (from) => [
          ...layers.map((l) => new PrefetchedLayerKeys(slowPager(l, rng), keysFrom(from), pageKeys)),
          memory.filter((k) => Buffer.compare(k, from) >= 0)[Symbol.iterator](),
        ],
        () => version,
      );
      // Steps of STEP_CLOCK_KEYS keys (every clock check finds a step's time gone) and swaps at
      // pauses: the stream reopens many times mid-listing.
      const swapAtPause = async (): Promise<void> => {
        if (rng.chance(0.3)) {
          layers = deal(rng.int(1, 8));
          version++;
        }
      };
      let t = 0;
      const racingClock = (): number => (t += PARTITION_STEP_MS);
      const parts: { keyStart: Buffer; keyEnd: Buffer; keys: Buffer[] }[] = [];
      for await (const p of keyPartitions(stream, 50 * PAGE_SIZE, swapAtPause, racingClock)) parts.push({ ...p, keys: [...p.keys] });
      expect(partsHex(parts), `round ${round}`).toEqual(partsHex(partitionSortedList(all, 50 * PAGE_SIZE)));
    }
  });

  it('fetches a layer page by page as its keys are used, not all at once', async () => {
    const rng = new Rng(5);
    const keys = Array.from({ length: 10_000 }, (_, i) => key(i));
    const log = { asks: 0 };
    const stream = new BackgroundKeyStream((from) => [new PrefetchedLayerKeys(slowPager(keys, rng, log), keysFrom(from), 100)], () => 0);
    await stream.refill(50);
    expect(log.asks).toBe(1); // 100 keys fetched cover a step of 50 (+ 2)
    for (let n = 0; n < 49; n++) expect(stream.next().done).not.toBe(true);
    await stream.refill(50);
    expect(log.asks).toBe(2); // 51 keys left after 49 pulls (one is the merge's lookahead): one more page
  });

  it('a cursor pulled past what was fetched throws, rather than ending the stream early', async () => {
    const rng = new Rng(6);
    const keys = Array.from({ length: 500 }, (_, i) => key(i));
    const c = new PrefetchedLayerKeys(slowPager(keys, rng), keysFrom(KEY_MIN), 100);
    await c.fill(10, () => false);
    expect(c.buffered).toBe(100);
    for (let i = 0; i < 100; i++) expect(c.advance()).toBe(true);
    expect(() => c.advance()).toThrow(/ran past the keys fetched ahead/);
    // fill stops asking once stale
    const d = new PrefetchedLayerKeys(slowPager(keys, rng), keysFrom(KEY_MIN), 100);
    await d.fill(300, () => true);
    expect(d.buffered).toBe(0);
  });
});
