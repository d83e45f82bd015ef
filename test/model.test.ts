/**
 * Model-based randomized test: thousands of seeded operations (ingest of all record kinds, flush,
 * image layer creation, branching at random LSNs, compaction, GC, reopen) against both cores, with
 * every read checked against the plain in-memory oracle of every page version: exact above the GC
 * cutoff, LSN_GC_CUTOFF below it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect, it } from 'vitest';
import { formatLsn, type PageKey, PAGE_SIZE, Repository, StrataError, type Timeline } from '../lib';
import { describeEachCore } from './helpers/cores';
import { Oracle } from './helpers/oracle';
import { Rng } from './helpers/random';
import { type KeySpace, randomBatch, randomKey } from './helpers/workload';

const OPERATIONS = 2500;
const MAX_TIMELINES = 7;
const KEYS: KeySpace = { rels: 3, blocks: 24 };
const TENANT = 't1';

interface World {
  dir: string;
  repo: Repository;
  oracle: Oracle;
  rng: Rng;
  impl: 'native' | 'ts';
  reads: number;
  notFound: number;
  belowCutoff: number;
  /** The GC cutoff each timeline must enforce, tracked from gc() reports and branch inheritance. */
  cutoff: Map<string, bigint>;
  layersRemoved: number;
  /** Seed 2 runs the adaptive page-cache policy, seed 1 the clock. */
  policy: 'clock' | 'adaptive-s3fifo';
  /** Reads the decoded-page cache answered, summed over reopens. */
  decodedHits: number;
}

async function openRepo(w: World): Promise<Repository> {
  return Repository.open(w.dir, {
    implementation: w.impl,
    checkpointDistance: 24 * 1024,
    compactionThreshold: 4,
    compactionTargetSize: 48 * 1024, // several L1 layers per compaction
    imageCreationThreshold: 3,
    pageCacheBytes: 32 * 8192, // small, so the policy evicts throughout
    pageCachePolicy: w.policy,
    // On, and small enough that its clock evicts too: every read below is checked through it.
    decodedPageCacheBytes: w.rng.pick([6, 48]) * PAGE_SIZE,
    compression: w.rng.pick(['lz4', 'zstd', 'none'] as const),
  });
}

function timelineIds(w: World): string[] {
  return [...w.oracle.timelines.keys()];
}

/** A caller-owned buffer for readPage, read at varying offsets. */
const INTO = Buffer.alloc(3 * PAGE_SIZE);

/** One read through getPage (async) or readPage (sync, into INTO), as the seed decides. */
async function readOne(w: World, tl: Timeline, key: PageKey, lsn: bigint): Promise<Buffer> {
  if (w.rng.chance(0.5)) return tl.getPage(key, lsn);
  const offset = w.rng.int(0, 2 * PAGE_SIZE);
  tl.readPage(key, lsn, INTO, offset);
  return Buffer.from(INTO.subarray(offset, offset + PAGE_SIZE));
}

async function checkRead(w: World, tl: Timeline, key: PageKey, lsn: bigint): Promise<void> {
  w.reads++;
  if (lsn < w.cutoff.get(tl.timelineId)!) {
    w.belowCutoff++;
    await expect(readOne(w, tl, key, lsn)).rejects.toMatchObject({ code: 'LSN_GC_CUTOFF' });
    return;
  }
  const want = w.oracle.getPage(tl.timelineId, key, lsn);
  if (want === null) {
    w.notFound++;
    await expect(readOne(w, tl, key, lsn)).rejects.toMatchObject({ code: 'PAGE_NOT_FOUND' });
  } else {
    const got = await readOne(w, tl, key, lsn);
    if (!got.equals(want)) {
      throw new Error(`page mismatch on ${tl.timelineId} at ${lsn} for ${JSON.stringify(key)}`);
    }
  }
}

async function randomReads(w: World, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const id = w.rng.pick(timelineIds(w));
    const tl = w.repo.getTimeline(TENANT, id);
    // Often at the newest LSN (what the decoded-page cache keeps); otherwise mostly at or above the
    // cutoff, where every answer must match the oracle.
    if (w.rng.chance(0.4)) {
      // Three times: the doorkeeper caches the page on the second miss, the third read is a hit.
      const key = randomKey(w.rng, KEYS);
      for (let r = 0; r < 3; r++) await checkRead(w, tl, key, tl.lastRecordLsn);
      continue;
    }
    const lsn = w.rng.bigint(w.rng.chance(0.9) ? w.cutoff.get(id)! : 0n, tl.lastRecordLsn);
    await checkRead(w, tl, randomKey(w.rng, KEYS), lsn);
  }
}

async function batchRead(w: World): Promise<void> {
  const id = w.rng.pick(timelineIds(w));
  const tl = w.repo.getTimeline(TENANT, id);
  const lsn = w.rng.bigint(w.cutoff.get(id)!, tl.lastRecordLsn);
  const keys = w.oracle.allKeys().filter((k) => w.oracle.getPage(id, k, lsn) !== null);
  if (keys.length === 0) return;
  let pages: Buffer[];
  if (w.rng.chance(0.5)) {
    pages = await tl.getPages(keys, lsn);
  } else {
    const into = Buffer.alloc(keys.length * PAGE_SIZE);
    tl.readPages(keys, lsn, into);
    pages = keys.map((_k, i) => into.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
  }
  keys.forEach((k, i) => expect(pages[i].equals(w.oracle.getPage(id, k, lsn)!)).toBe(true));
  w.reads += keys.length;
}

async function step(w: World): Promise<void> {
  const roll = w.rng.next();
  const id = w.rng.pick(timelineIds(w));
  const tl = w.repo.getTimeline(TENANT, id);
  if (roll < 0.62) {
    const batch = randomBatch(w.rng, KEYS, tl.lastRecordLsn, w.rng.int(1, 24));
    tl.ingest(batch);
    w.oracle.ingest(id, batch);
  } else if (roll < 0.72) {
    await tl.flush();
    expect(tl.diskConsistentLsn).toBe(tl.lastRecordLsn);
  } else if (roll < 0.75) {
    if (tl.lastRecordLsn > tl.startLsn) {
      const at = w.rng.bigint(tl.startLsn, tl.lastRecordLsn);
      if (at < w.cutoff.get(id)!) await expect(tl.createImageLayer(at)).rejects.toMatchObject({ code: 'LSN_GC_CUTOFF' });
      else await tl.createImageLayer(at);
    }
  } else if (roll < 0.78) {
    if (timelineIds(w).length < MAX_TIMELINES) {
      const childId = `b${timelineIds(w).length}`;
      const at = w.rng.bigint(0n, tl.lastRecordLsn);
      const branch = w.repo.createTimeline({ tenantId: TENANT, timelineId: childId, ancestorTimelineId: id, ancestorLsn: at });
      if (at < w.cutoff.get(id)!) {
        await expect(branch).rejects.toMatchObject({ code: 'LSN_GC_CUTOFF' });
      } else {
        await branch;
        w.oracle.createTimeline(childId, id, at);
        w.cutoff.set(childId, w.cutoff.get(id)!);
      }
    }
  } else if (roll < 0.8) {
    const report = await tl.compact({ force: w.rng.chance(0.3) });
    expect(report.layersRemoved.length).toBe(report.l0Compacted.length);
  } else if (roll < 0.815) {
    const horizon = w.rng.bigint(0n, tl.lastRecordLsn);
    const before = w.cutoff.get(id)!;
    const report = await tl.gc({ horizon });
    // The cutoff never passes what is durable: a crash reopens the timeline at diskConsistentLsn.
    const wanted = tl.lastRecordLsn - horizon;
    const target = wanted < tl.diskConsistentLsn ? wanted : tl.diskConsistentLsn;
    expect(report.cutoffLsn).toBe(target > before ? target : before);
    expect(report.cutoffLsn <= tl.diskConsistentLsn || report.cutoffLsn === before).toBe(true);
    w.cutoff.set(id, report.cutoffLsn);
    w.layersRemoved += report.layersRemoved;
  } else if (roll < 0.825) {
    w.decodedHits += w.repo.stats().decodedPageCache.hits;
    await w.repo.close();
    w.repo = await openRepo(w);
    for (const tid of timelineIds(w)) {
      expect(w.repo.getTimeline(TENANT, tid).lastRecordLsn).toBe(w.oracle.lastRecordLsn(tid));
    }
  } else if (roll < 0.84) {
    await batchRead(w);
  } else {
    // A batch that must be rejected whole: its last record goes backwards, which is LSN_ORDER
    // (not any StrataError: BAD_RECORD or BAD_ARGUMENT would mean the wrong check fired).
    const batch = randomBatch(w.rng, KEYS, tl.lastRecordLsn, 3);
    batch.push({ ...batch[0], lsn: tl.lastRecordLsn });
    const before = tl.lastRecordLsn;
    let err: unknown;
    try {
      tl.ingest(batch);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StrataError);
    expect(err).toMatchObject({ code: 'LSN_ORDER' });
    expect((err as Error).message).toContain(`record ${batch.length - 1} has LSN ${formatLsn(before)}, below the previous record's`);
    expect(tl.lastRecordLsn).toBe(before);
  }
  await randomReads(w, 3);
}

describeEachCore('model-based randomized test (%s core)', (impl) => {
  it.each([1, 2])(`%i: ${OPERATIONS} operations match the oracle`, async (seed) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `strata-model-${impl}-`));
    const w: World = {
      dir, impl, oracle: new Oracle(), rng: new Rng(seed * 7919), repo: undefined as unknown as Repository,
      reads: 0, notFound: 0, belowCutoff: 0, cutoff: new Map([['main', 0n]]), layersRemoved: 0, decodedHits: 0,
      policy: seed === 2 ? 'adaptive-s3fifo' : 'clock',
    };
    w.repo = await openRepo(w);
    try {
      await w.repo.createTimeline({ tenantId: TENANT, timelineId: 'main' });
      w.oracle.createTimeline('main');
      for (let i = 0; i < OPERATIONS; i++) await step(w);
      // Final sweep: every key on every timeline at several LSNs.
      for (const id of timelineIds(w)) {
        const tl = w.repo.getTimeline(TENANT, id);
        for (const key of w.oracle.allKeys()) {
          for (const lsn of [tl.lastRecordLsn, tl.lastRecordLsn / 2n, tl.startLsn, w.cutoff.get(id)!]) await checkRead(w, tl, key, lsn);
        }
      }
      const layers = timelineIds(w).flatMap((id) => w.repo.getTimeline(TENANT, id).layers());
      expect(layers.some((l) => l.kind === 'image')).toBe(true);
      expect(layers.some((l) => l.kind === 'delta' && l.level === 1)).toBe(true);
      expect(layers.filter((l) => l.kind === 'delta').length).toBeGreaterThan(10);
      expect(w.layersRemoved).toBeGreaterThan(0); // GC really removed files
      expect(w.belowCutoff).toBeGreaterThan(0);
      expect(w.reads).toBeGreaterThan(OPERATIONS * 3);
      expect(w.notFound).toBeLessThan(w.reads); // both outcomes exercised
      expect(w.notFound).toBeGreaterThan(0);
      const decoded = w.repo.stats().decodedPageCache;
      expect(w.decodedHits + decoded.hits).toBeGreaterThan(w.reads / 20); // the cache really answered
      expect(decoded.invalidations + decoded.evictions).toBeGreaterThan(0);
    } finally {
      await w.repo.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
