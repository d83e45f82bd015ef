/**
 * The async read path: getPagesAsync reads from a snapshot taken at the call (layers closed,
 * maps replaced, files deleted or the core closed meanwhile do not disturb it), failures reject
 * with coded errors, and timelines keep serving exact pages while flush, compaction and GC replace
 * and delete layers under reads in flight. Per-request read statistics are exact for batches.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { COUNTS_PER_REQUEST, type Core } from '../lib/core/core';
import { isStrataError, PAGE_SIZE, type PageKey, Repository, type WalRecord } from '../lib';
import { ALL_IMPLEMENTATIONS, describeEachCore, makeCore, NATIVE_SKIP_NOTE, SKIP_NATIVE } from './helpers/cores';
import { deltaSpec, imageRec, imageSpec, pageKey, patchRec, planOf, runPlan, tmpDir, writeLayer } from './helpers/layers';
import { Oracle } from './helpers/oracle';
import { Rng } from './helpers/random';
import { type KeySpace, randomBatch } from './helpers/workload';

interface AsyncResult {
  out: Buffer;
  status: Uint8Array;
  counts: Uint32Array;
}

function dispatch(core: Core, plan: Buffer, n: number, cachedInline: boolean): { result: AsyncResult; done: Promise<void> } {
  const result = { out: Buffer.alloc(n * PAGE_SIZE, 0xee), status: new Uint8Array(n).fill(0xee), counts: new Uint32Array(n * COUNTS_PER_REQUEST) };
  return { result, done: core.getPagesAsync(plan, result.out, result.status, result.counts, cachedInline) };
}

for (const cachedInline of [false, true]) describeEachCore(`getPagesAsync (%s core, cachedInline ${cachedInline})`, (impl) => {
  let dir: string;
  let core: Core;

  beforeEach(() => {
    dir = tmpDir(`async-${impl}`);
    core = makeCore(impl);
  });

  afterEach(() => {
    core.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('returns what the synchronous read returns, with per-request counts', async () => {
    const K1 = pageKey(1);
    const K2 = pageKey(2);
    const base = path.join(dir, 'img');
    const delta = path.join(dir, 'delta');
    writeLayer(core, base, imageSpec(10n, [{ key: K1, rec: imageRec(1) }, { key: K2, rec: imageRec(2) }]));
    writeLayer(core, delta, deltaSpec(11n, 40n, [
      { key: K1, lsn: 20n, rec: patchRec(100, Buffer.from('twenty')) },
      { key: K1, lsn: 30n, rec: patchRec(200, Buffer.from('thirty')) },
    ]));
    const map = core.createLayerMap();
    core.setLayerMap(map, [core.openLayer(base), core.openLayer(delta)]);
    const requests = [K1, K2, pageKey(3)].map((key) => ({ key, segments: [{ mapId: map, layers: [], capLsn: 35n, mem: [] }] }));
    const sync = runPlan(core, requests);
    const { result, done } = dispatch(core, planOf(requests), requests.length, cachedInline);
    await done;
    expect(result.out.equals(sync.out)).toBe(true);
    expect([...result.status]).toEqual([...sync.status]);
    // K1: delta then image, image + 2 patches; K2: delta (nothing) then image; K3: nowhere.
    expect([...result.counts]).toEqual([2, 3, 2, 1, 2, 0]);
  });

  it('reads from the layers as they were at the call, even if closed, unlinked and the core closed', async () => {
    const K = pageKey(7);
    const file = path.join(dir, 'only');
    writeLayer(core, file, imageSpec(10n, [{ key: K, rec: imageRec(7) }]));
    const h = core.openLayer(file);
    const map = core.createLayerMap();
    core.setLayerMap(map, [h]);
    const plan = planOf([{ key: K, segments: [{ mapId: map, layers: [], capLsn: 10n, mem: [] }] }]);
    const { result, done } = dispatch(core, plan, 1, cachedInline);
    plan.fill(0); // the core consumed the plan at the call
    core.setLayerMap(map, []);
    core.closeLayer(h);
    fs.unlinkSync(file);
    core.close();
    await done;
    expect(result.status[0]).toBe(0);
    expect(result.out.equals(imageRec(7).subarray(1))).toBe(true);
  });

  it('rejects with a coded StrataError: unknown map, bad lengths, a map holding a closed layer', async () => {
    const K = pageKey(1);
    const file = path.join(dir, 'l');
    writeLayer(core, file, imageSpec(10n, [{ key: K, rec: imageRec(1) }]));
    const h = core.openLayer(file);
    const map = core.createLayerMap();
    core.setLayerMap(map, [h]);
    const req = (mapId: number): Buffer => planOf([{ key: K, segments: [{ mapId, layers: [], capLsn: 10n, mem: [] }] }]);
    const codeOf = async (p: Promise<void>): Promise<string> => p.then(() => 'ok', (e: unknown) => (isStrataError(e) ? e.code : String(e)));
    expect(await codeOf(dispatch(core, req(9999), 1, cachedInline).done)).toBe('BAD_ARGUMENT');
    expect(await codeOf(core.getPagesAsync(req(map), Buffer.alloc(PAGE_SIZE), new Uint8Array(1), new Uint32Array(1), cachedInline))).toBe('BAD_ARGUMENT');
    expect(await codeOf(core.getPagesAsync(req(map), Buffer.alloc(1), new Uint8Array(1), new Uint32Array(2), cachedInline))).toBe('BAD_ARGUMENT');
    core.closeLayer(h);
    expect(await codeOf(dispatch(core, req(map), 1, cachedInline).done)).toBe('BAD_ARGUMENT');
  });

  it('rejects CORRUPT_LAYER naming the file when a block read on the worker fails its checksum', async () => {
    const K = pageKey(1);
    const file = path.join(dir, 'corrupt-me');
    writeLayer(core, file, imageSpec(10n, [{ key: K, rec: imageRec(1) }]));
    const h = core.openLayer(file);
    const map = core.createLayerMap();
    core.setLayerMap(map, [h]);
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.of(0x5a), 0, 1, PAGE_SIZE + 100); // first value block, after open
    fs.closeSync(fd);
    const { done } = dispatch(core, planOf([{ key: K, segments: [{ mapId: map, layers: [], capLsn: 10n, mem: [] }] }]), 1, cachedInline);
    const err: unknown = await done.then(() => null, (e: unknown) => e);
    expect(isStrataError(err, 'CORRUPT_LAYER')).toBe(true);
    expect((err as Error).message).toContain('corrupt-me');
  });
});

// A comparison of the two cores: with one core there is nothing to compare.
describe.skipIf(SKIP_NATIVE)(`cached-inline attempts move both cores' page-cache counters alike${NATIVE_SKIP_NOTE}`, () => {
  it('same hits, misses and evictions after the same async reads, cached or not', async () => {
    const cores = ALL_IMPLEMENTATIONS.map((impl) => makeCore(impl, 16 * PAGE_SIZE));
    const dir = tmpDir('async-parity');
    try {
      const rng = new Rng(99);
      const entries = Array.from({ length: 300 }, (_, i) => ({ key: pageKey(i), rec: imageRec(i) }));
      const file = path.join(dir, 'img');
      writeLayer(cores[0], file, imageSpec(10n, entries));
      const maps = cores.map((c) => { const m = c.createLayerMap(); c.setLayerMap(m, [c.openLayer(file)]); return m; });
      for (let round = 0; round < 200; round++) {
        // Mostly a small hot set (cache hits, read inline), sometimes any key (misses: full read).
        const i = rng.chance(0.7) ? rng.int(0, 4) : rng.int(0, entries.length);
        const inline = rng.chance(0.8);
        const pages = [];
        for (let c = 0; c < cores.length; c++) {
          const { result, done } = dispatch(cores[c], planOf([{ key: entries[i].key, segments: [{ mapId: maps[c], layers: [], capLsn: 10n, mem: [] }] }]), 1, inline);
          await done;
          pages.push(result.out);
        }
        for (const p of pages) expect(p.equals(entries[i].rec.subarray(1))).toBe(true);
      }
      const stats = cores.map((c) => c.pageCache.stats());
      for (const st of stats) expect(st).toEqual(stats[0]);
      expect(stats[0].hits).toBeGreaterThan(0);
      expect(stats[0].misses).toBeGreaterThan(0);
    } finally {
      for (const c of cores) c.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

const KS: KeySpace = { rels: 2, blocks: 24 };

describeEachCore('reads in flight while layers are replaced (%s core)', (impl) => {
  let dir: string;

  beforeEach(() => { dir = tmpDir(`inflight-${impl}`); });
  afterEach(() => { fs.rmSync(dir, { recursive: true, force: true }); });

  it.each([false, true])('every page read during flush, compaction, image creation and GC matches the oracle (offloadCachedReads %s)', async (offloadCachedReads) => {
    const rng = new Rng(4711);
    const repo = await Repository.open(dir, { implementation: impl, checkpointDistance: 16 * 1024, compactionThreshold: 3, pageCacheBytes: 256 * 1024, offloadCachedReads });
    const tl = await repo.createTimeline({ tenantId: 't1', timelineId: 'main' });
    const oracle = new Oracle();
    oracle.createTimeline('main');
    let lsn = 0n;
    let checked = 0;
    for (let round = 0; round < 12; round++) {
      const batch: WalRecord[] = randomBatch(rng, KS, lsn, 150);
      lsn = batch[batch.length - 1].lsn;
      tl.ingest(batch);
      oracle.ingest('main', batch);
      // Reads stay above the LSN the GC below may cut at, so none may fail.
      const floor = tl.gcCutoffLsn > lsn / 2n ? tl.gcCutoffLsn : lsn / 2n;
      const reads: Array<{ key: PageKey; at: bigint; got: Promise<Buffer[]> }> = [];
      for (let i = 0; i < 16; i++) {
        const at = rng.bigint(floor, lsn);
        const keys = oracle.allKeys().filter((k) => oracle.getPage('main', k, at) !== null);
        if (keys.length === 0) continue;
        const key = rng.pick(keys);
        reads.push({ key, at, got: tl.getPages([key, key], at) });
      }
      // Layer churn while those reads run (native: on worker threads).
      const churn = (async (): Promise<void> => {
        await tl.flush();
        await tl.compact({ force: round % 3 === 2 });
        await tl.gc({ horizon: lsn - floor });
      })();
      for (const r of reads) {
        const pages = await r.got;
        const want = oracle.getPage('main', r.key, r.at)!;
        expect(pages[0].equals(want)).toBe(true);
        expect(pages[1].equals(want)).toBe(true);
        checked++;
      }
      await churn;
    }
    expect(checked).toBeGreaterThan(100);
    expect(tl.stats().l1Count + tl.stats().imageLayerCount).toBeGreaterThan(0);
    await repo.close();
  });

  it('batch reads record each request in the read histograms, exactly as single reads do', async () => {
    // Off: a repeated key would be a decoded-page hit (no layer, no record) and count as such.
    const repo = await Repository.open(dir, { implementation: impl, decodedPageCacheBytes: 0 });
    const tl = await repo.createTimeline({ tenantId: 't1', timelineId: 'main' });
    const A: PageKey = { spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0, blockNum: 0 };
    const B: PageKey = { ...A, blockNum: 1 };
    const page = Buffer.alloc(PAGE_SIZE, 1);
    tl.ingest([{ lsn: 10n, key: A, kind: 'image', page }, { lsn: 10n, key: B, kind: 'image', page }]);
    await tl.flush();
    const patches: WalRecord[] = [];
    for (let i = 0; i < 6; i++) patches.push({ lsn: 20n + BigInt(i), key: A, kind: 'patch', offset: i, data: Buffer.of(i) });
    tl.ingest(patches);
    await tl.flush();
    tl.resetStats();
    await tl.getPages([A, B, A], 25n);
    const batched = tl.stats();
    tl.resetStats();
    for (const k of [A, B, A]) await tl.getPage(k, 25n);
    const single = tl.stats();
    expect(batched.recordsAppliedPerRead).toEqual(single.recordsAppliedPerRead);
    expect(batched.layersVisitedPerRead).toEqual(single.layersVisitedPerRead);
    expect(batched.recordsAppliedPerRead.max).toBe(7); // A: image + 6 patches, never a batch mean
    await repo.close();
  });
});
