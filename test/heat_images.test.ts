/**
 * Heat-driven images end to end (docs/ARCHITECTURE.md, "Heat-driven images"): pages read often
 * over long chains get an image before the delta-count threshold would give their partition one,
 * reads stay correct, and both cores write the same layers.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { type PageKey, PAGE_SIZE, Repository, type RepositoryOptions, type Timeline, type WalRecord } from '../lib';
import { IMPLEMENTATIONS } from './helpers/cores';
import { HOT_RANGE_PAGES } from '../lib/engine/read_heat';

const PAGES = 8 * HOT_RANGE_PAGES;
const HOT = 4; // blocks 0..3 are read; every block is written
const ROUNDS = 3;
const PATCHES_PER_PAGE = 6; // per round

const keyOf = (blockNum: number): PageKey => ({ spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0, blockNum });
const dirs: string[] = [];

afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** The page of `block` after `rounds` rounds: its base fill, the patched prefix holding the round. */
function expectedPage(block: number, rounds: number): Buffer {
  const p = Buffer.alloc(PAGE_SIZE, block % 251);
  if (rounds > 0) p.fill(rounds, 0, 16 * PATCHES_PER_PAGE);
  return p;
}

interface Run {
  layers: Array<{ fileName: string; sizeBytes: number; kind: string }>;
  hotImages: string[];
  hotApplied: number;
  coldApplied: number;
}

/** Images of every page, then rounds of patches to every page, reads of the hot ones, compaction. */
async function run(impl: 'ts' | 'native', heatImageBudget: number): Promise<Run> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `strata-heat-${impl}-`));
  dirs.push(dir);
  // One partition for the whole keyspace and a threshold no round reaches: only heat images it.
  const options: RepositoryOptions = {
    implementation: impl, compactionTargetSize: 64 * 1024 * 1024, imageCreationThreshold: 50, compactionThreshold: 50, heatImageBudget,
    // Off: the hot reads repeat at the newest LSN, which the decoded-page cache would answer
    // without applying a record, so no read would be noted as hot.
    decodedPageCacheBytes: 0,
  };
  const repo = await Repository.open(dir, options);
  try {
    const tl: Timeline = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
    let lsn = 0x100n;
    const base: WalRecord[] = [];
    for (let b = 0; b < PAGES; b++) base.push({ lsn: (lsn += 8n), key: keyOf(b), kind: 'image', page: Buffer.alloc(PAGE_SIZE, b % 251) });
    tl.ingest(base);
    await tl.flush();
    await tl.compact({ force: true }); // the base image
    const hotImages: string[] = [];
    for (let r = 1; r <= ROUNDS; r++) {
      const recs: WalRecord[] = [];
      for (let i = 0; i < PATCHES_PER_PAGE; i++) {
        for (let b = 0; b < PAGES; b++) recs.push({ lsn: (lsn += 8n), key: keyOf(b), kind: 'patch', offset: 16 * i, data: Buffer.alloc(16, r) });
      }
      tl.ingest(recs);
      await tl.flush();
      for (let n = 0; n < 10; n++) for (let b = 0; b < HOT; b++) expect((await tl.getPage(keyOf(b), lsn)).equals(expectedPage(b, r))).toBe(true);
      hotImages.push(...(await tl.compact()).hotImageLayersCreated);
    }
    for (let b = 0; b < PAGES; b++) expect((await tl.getPage(keyOf(b), lsn)).equals(expectedPage(b, ROUNDS))).toBe(true);
    tl.resetStats();
    for (let b = 0; b < HOT; b++) await tl.getPage(keyOf(b), lsn);
    const hotApplied = tl.stats().recordsApplied;
    tl.resetStats();
    await tl.getPage(keyOf(PAGES - 1), lsn);
    const coldApplied = tl.stats().recordsApplied;
    const layers = tl.layers().map((l) => ({ fileName: l.fileName, sizeBytes: l.sizeBytes, kind: l.kind }));
    // Hot images are ordinary images to GC: each older one is shadowed by the newer image of the
    // same keys and goes once the cutoff passes it; a branch reads through the newest one.
    const gc = await tl.gc({ horizon: 0n });
    const olderHot = hotImages.slice(0, -1);
    expect(gc.removed.filter((f) => olderHot.includes(f)).sort()).toEqual([...olderHot].sort());
    const branch = await repo.createTimeline({ tenantId: 't', timelineId: 'b', ancestorTimelineId: 'main', ancestorLsn: lsn });
    for (let b = 0; b < PAGES; b += 7) expect((await branch.getPage(keyOf(b), lsn)).equals(expectedPage(b, ROUNDS))).toBe(true);
    return { layers, hotImages, hotApplied, coldApplied };
  } finally {
    await repo.close();
  }
}

it('hot pages get an image sooner than the delta threshold gives them, cold ones do not, and both cores agree', async () => {
  const results = new Map<string, Run>();
  for (const impl of IMPLEMENTATIONS) {
    const on = await run(impl, 0.2);
    const off = await run(impl, 0);
    // Without heat no image beyond the base: the threshold of 50 stacked layers is far away.
    expect(off.hotImages).toEqual([]);
    expect(off.layers.filter((l) => l.kind === 'image')).toHaveLength(1);
    // With heat: the first run of keys (holding the hot ones) is imaged, in each round it was read.
    expect(on.hotImages.length).toBeGreaterThanOrEqual(1);
    expect(new Set(on.hotImages.map((f) => f.split('__')[0]))).toHaveProperty('size', 1);
    // Cold pages still pay the whole chain (base image + every patch); hot pages at most the
    // image and one round's patches: their run was imaged at the end of an earlier round.
    expect(on.coldApplied).toBe(ROUNDS * PATCHES_PER_PAGE + 1);
    expect(on.hotApplied).toBeLessThanOrEqual(HOT * (PATCHES_PER_PAGE + 1));
    expect(off.hotApplied).toBe(HOT * off.coldApplied);
    results.set(impl, on);
  }
  if (results.size === 2) expect(results.get('native')!.layers).toEqual(results.get('ts')!.layers);
}, 60_000);

it('heatImageBudget must be a number in [0, 1]', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-heat-opt-'));
  dirs.push(dir);
  for (const bad of [-0.1, 1.5, Number.NaN, Infinity, '0.2']) {
    await expect(Repository.open(dir, { implementation: 'ts', heatImageBudget: bad as number })).rejects.toMatchObject({ code: 'BAD_ARGUMENT', message: expect.stringContaining('heatImageBudget') });
  }
  await (await Repository.open(dir, { implementation: 'ts', heatImageBudget: 0 })).close();
});
