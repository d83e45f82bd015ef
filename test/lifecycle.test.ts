/** Compaction, image creation and GC, case by case, on both cores (Neon's tenant.rs tests as a checklist). */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { type BackgroundStats, type PageKey, PAGE_SIZE, Repository, type RepositoryOptions, type Timeline } from '../lib';
import { describeEachCore } from './helpers/cores';
import { Oracle } from './helpers/oracle';
import { Rng } from './helpers/random';
import { type KeySpace, randomBatch } from './helpers/workload';

const KEYS: KeySpace = { rels: 2, blocks: 100 };
const A: PageKey = { spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0, blockNum: 0 };

function page(s: string): Buffer {
  const p = Buffer.alloc(PAGE_SIZE);
  p.write(s);
  return p;
}

describeEachCore('compaction, images and GC (%s core)', (impl) => {
  let dir: string;
  let repo: Repository;
  const options: RepositoryOptions = { implementation: impl, compactionThreshold: 10, compactionTargetSize: 32 * 1024 };

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `strata-life-${impl}-`));
    repo = await Repository.open(dir, options);
  });

  afterEach(async () => {
    await repo.close().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** `rounds` flushes of random records; returns the oracle and the LSN after each round. */
  async function load(tl: Timeline, rounds: number, seed = 3): Promise<{ oracle: Oracle; lsns: bigint[] }> {
    const oracle = new Oracle();
    oracle.createTimeline(tl.timelineId);
    const rng = new Rng(seed);
    const lsns: bigint[] = [];
    for (let r = 0; r < rounds; r++) {
      const batch = randomBatch(rng, KEYS, tl.lastRecordLsn, 150);
      tl.ingest(batch);
      oracle.ingest(tl.timelineId, batch);
      await tl.flush();
      lsns.push(tl.lastRecordLsn);
    }
    return { oracle, lsns };
  }

  async function expectMatches(tl: Timeline, oracle: Oracle, lsns: readonly bigint[]): Promise<number> {
    let checked = 0;
    for (const lsn of lsns) {
      for (const key of oracle.allKeys()) {
        const want = oracle.getPage(tl.timelineId, key, lsn);
        if (want === null) await expect(tl.getPage(key, lsn)).rejects.toMatchObject({ code: 'PAGE_NOT_FOUND' });
        else expect((await tl.getPage(key, lsn)).equals(want)).toBe(true);
        checked++;
      }
    }
    return checked;
  }

  it('does nothing below compactionThreshold', async () => {
    const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
    await load(tl, 9);
    const report = await tl.compact();
    expect(report.l0Compacted).toEqual([]);
    expect(tl.stats().l0Count).toBe(9);
  });

  it('merges L0 layers into narrow L1 layers, keeps every version, deletes the inputs', async () => {
    const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
    const { oracle, lsns } = await load(tl, 12);
    const before = tl.layers().map((l) => l.fileName);
    const report = await tl.compact();
    expect(report.l0Compacted).toHaveLength(12);
    expect(report.layersRemoved.sort()).toEqual(before.sort());
    expect(report.layersCreated.length).toBeGreaterThan(2); // split at the 32 KiB target
    expect(report.bytesRead).toBeGreaterThan(0);
    expect(report.bytesWritten).toBeGreaterThan(0);
    const st = tl.stats();
    expect(st.l0Count).toBe(0);
    expect(st.l1Count).toBe(report.layersCreated.length);
    // L1s tile the key space in order and each spans the whole merged LSN range.
    const l1 = tl.layers().filter((l) => l.level === 1).sort((a, b) => a.keyStart.localeCompare(b.keyStart));
    for (let i = 0; i < l1.length; i++) {
      expect(l1[i].lsnStart).toBe(1n);
      expect(l1[i].lsnEnd).toBe(lsns[11] + 1n);
      if (i > 0) expect(l1[i].keyStart).toBe(l1[i - 1].keyEnd);
    }
    const files = fs.readdirSync(path.join(dir, 'tenants', 't', 'timelines', 'main'));
    for (const f of before) expect(files).not.toContain(f);
    expect(await expectMatches(tl, oracle, lsns)).toBeGreaterThan(1000);
    await repo.close();
    repo = await Repository.open(dir, options);
    await expectMatches(repo.getTimeline('t', 'main'), oracle, [lsns[0], lsns[11]]);
  });

  it('creates an image layer once three generations of deltas stack up, so reads at its LSN visit one layer', async () => {
    const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
    const oracle = new Oracle();
    oracle.createTimeline('main');
    const rng = new Rng(8);
    const created: number[] = [];
    for (let generation = 0; generation < 3; generation++) {
      for (let r = 0; r < 10; r++) {
        const batch = randomBatch(rng, KEYS, tl.lastRecordLsn, 60);
        tl.ingest(batch);
        oracle.ingest('main', batch);
        await tl.flush();
      }
      const report = await tl.compact();
      expect(report.l0Compacted).toHaveLength(10);
      created.push(report.imageLayersCreated.length);
    }
    // One L1 generation per compaction; the third reaches the threshold in (almost) every partition,
    // and a forced run images the partitions where fewer generations overlap.
    expect(created.slice(0, 2)).toEqual([0, 0]);
    expect(created[2]).toBeGreaterThan(0);
    const forced = await tl.compact({ force: true });
    const images = tl.layers().filter((l) => l.kind === 'image').sort((a, b) => a.keyStart.localeCompare(b.keyStart));
    expect(images.length).toBe(created[2] + forced.imageLayersCreated.length);
    // Partitions of compactionTargetSize / 8192 = 4 keys each, together covering the whole keyspace.
    // The first run's partitions counted every key its deltas hold; the forced run lists the
    // imaged ranges from their images (key_cover.ts), which leave out keys with no page at that
    // LSN (only patches, no base), so its partitions after such a key shift, and the one that
    // meets the first run's last image may overlap it.
    expect(images.length).toBeGreaterThanOrEqual(Math.ceil(oracle.allKeys().length / 4) - 1);
    expect(images[0].keyStart).toBe('0'.repeat(36));
    let coveredTo = images[0].keyEnd;
    for (let i = 0; i < images.length; i++) {
      expect(images[i].lsnStart).toBe(tl.diskConsistentLsn);
      if (i > 0) expect(images[i].keyStart <= coveredTo, `no gap before ${images[i].keyStart}`).toBe(true);
      if (images[i].keyEnd > coveredTo) coveredTo = images[i].keyEnd;
    }
    expect(coveredTo).toBe('F'.repeat(36));
    const visitedBefore = tl.stats().layersVisited;
    const reads = await expectMatches(tl, oracle, [tl.lastRecordLsn]);
    expect(tl.stats().layersVisited - visitedBefore).toBe(reads); // every read stops at the image
    expect((await tl.compact({ force: true })).imageLayersCreated).toHaveLength(0); // nothing above it
  });

  it('GC removes layers shadowed by a newer image, and refuses reads and branches below the cutoff', async () => {
    const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
    const { oracle, lsns } = await load(tl, 6);
    await tl.createImageLayer(lsns[3]);
    const report = await tl.gc({ horizon: tl.lastRecordLsn - lsns[3] });
    expect(report.cutoffLsn).toBe(lsns[3]);
    expect(report.layersRemoved).toBe(4); // the four L0s at or below the image
    expect(report.bytesRemoved).toBeGreaterThan(0);
    await expectMatches(tl, oracle, [lsns[3], lsns[4], lsns[5]]);
    await expect(tl.getPage(A, lsns[2])).rejects.toMatchObject({ code: 'LSN_GC_CUTOFF' });
    await expect(tl.createImageLayer(lsns[2])).rejects.toMatchObject({ code: 'LSN_GC_CUTOFF' });
    await expect(repo.createTimeline({ tenantId: 't', timelineId: 'b', ancestorTimelineId: 'main', ancestorLsn: lsns[2] }))
      .rejects.toMatchObject({ code: 'LSN_GC_CUTOFF' });
    // The cutoff only moves forward, and survives reopen.
    expect((await tl.gc({ horizon: tl.lastRecordLsn })).cutoffLsn).toBe(lsns[3]);
    await repo.close();
    repo = await Repository.open(dir, options);
    const again = repo.getTimeline('t', 'main');
    expect(again.gcCutoffLsn).toBe(lsns[3]);
    await expect(again.getPage(A, lsns[2])).rejects.toMatchObject({ code: 'LSN_GC_CUTOFF' });
  });

  it('GC keeps what a child branch needs at its branch point (Neon test_retain_data_in_parent_which_is_needed_for_child)', async () => {
    const main = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
    main.ingest([{ lsn: 0x10n, key: A, kind: 'image', page: page('foo at 0x10') }]);
    main.ingest([{ lsn: 0x20n, key: A, kind: 'image', page: page('foo at 0x20') }]);
    await main.flush();
    const dev = await repo.createTimeline({ tenantId: 't', timelineId: 'dev', ancestorTimelineId: 'main', ancestorLsn: 0x15n });
    main.ingest([{ lsn: 0x30n, key: A, kind: 'image', page: page('foo at 0x30') }]);
    await main.flush();
    await main.createImageLayer(0x30n);
    const report = await main.gc({ horizon: 0n });
    expect(report.cutoffLsn).toBe(0x30n);
    expect(report.removed.every((f) => !f.endsWith('-0000000000000021'))).toBe(true); // the layer holding 0x10 stays
    expect((await dev.getPage(A, 0x15n)).toString('latin1', 0, 11)).toBe('foo at 0x10');
    expect((await main.getPage(A, 0x30n)).toString('latin1', 0, 11)).toBe('foo at 0x30');
    await expect(main.getPage(A, 0x20n)).rejects.toMatchObject({ code: 'LSN_GC_CUTOFF' });
    // The child inherited the parent's cutoff at branch time (0), not the later one.
    expect(dev.gcCutoffLsn).toBe(0n);
  });

  it('L0 backpressure: past the delay threshold flushes slow down, at the stall threshold they compact first', async () => {
    await repo.close();
    repo = await Repository.open(dir, { ...options, compactionThreshold: 2, l0FlushDelayThreshold: 3, l0FlushStallThreshold: 5 });
    const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
    const { oracle, lsns } = await load(tl, 12);
    let maxL0 = 0;
    for (let i = 0; i < 6; i++) {
      tl.ingest([{ lsn: tl.lastRecordLsn + 1n, key: A, kind: 'zero' }]);
      oracle.ingest('main', [{ lsn: tl.lastRecordLsn, key: A, kind: 'zero' }]);
      await tl.flush();
      maxL0 = Math.max(maxL0, tl.stats().l0Count);
    }
    const st = tl.stats();
    expect(maxL0).toBeLessThan(5);
    expect(st.flushStalls).toBeGreaterThan(0);
    expect(st.flushDelays).toBeGreaterThan(0);
    expect(st.l1Count).toBeGreaterThan(0);
    await expectMatches(tl, oracle, [lsns[5], tl.lastRecordLsn]);
  });

  it('the background scheduler flushes by age, compacts, runs GC once per gcPeriodMs, and every page reads back', async () => {
    // Date is faked (timers stay real): the scheduler's ages and periods move only when the test
    // moves the clock, so "not yet" and "now" are decided by the test, not by the machine's speed.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      await repo.close();
      const CHECKPOINT_MS = 1_000;
      const GC_PERIOD_MS = 60_000;
      repo = await Repository.open(dir, {
        ...options, compactionThreshold: 3, gcHorizon: 0n, background: true,
        backgroundOptions: { periodMs: 5, checkpointTimeoutMs: CHECKPOINT_MS, gcPeriodMs: GC_PERIOD_MS },
      });
      const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
      const bg = (): BackgroundStats => repo.stats().background;
      /** Waits (real time, bounded) for `n` more scheduler rounds, or for `done` to hold. */
      const rounds = async (n: number, done: () => boolean = () => false): Promise<void> => {
        const until = bg().ticks + n;
        for (let i = 0; i < 2000 && bg().ticks < until && !done(); i++) await new Promise((r) => setTimeout(r, 5));
        expect(bg().ticks >= until || done(), `scheduler stuck at ${bg().ticks} rounds`).toBe(true);
      };
      const advance = (ms: number): void => {
        vi.setSystemTime(Date.now() + ms);
      };

      // The first round that sees the timeline collects it; rounds inside the period do not.
      await rounds(3);
      expect(bg().gcRuns).toBe(1);

      const oracle = new Oracle();
      oracle.createTimeline('main');
      const rng = new Rng(4);
      for (let i = 0; i < 5; i++) {
        const batch = randomBatch(rng, KEYS, tl.lastRecordLsn, 50);
        tl.ingest(batch);
        oracle.ingest('main', batch);
        const target = tl.lastRecordLsn;
        await rounds(3);
        expect(tl.diskConsistentLsn, 'flushed before checkpointTimeoutMs').toBeLessThan(target);
        advance(CHECKPOINT_MS);
        await rounds(50, () => tl.diskConsistentLsn === target);
        expect(tl.diskConsistentLsn).toBe(target); // flushed by the scheduler, not by us
        expect(bg().flushes).toBe(i + 1);
      }
      await rounds(50, () => tl.stats().l1Count > 0);
      expect(tl.stats().l1Count).toBeGreaterThan(0);
      expect(bg().compactions).toBeGreaterThan(0);

      // 5 s of clock and many rounds later, still inside the GC period: no second GC, no cutoff.
      expect(bg().gcRuns).toBe(1);
      expect(tl.gcCutoffLsn).toBe(0n);
      advance(GC_PERIOD_MS);
      await rounds(50, () => bg().gcRuns === 2);
      expect(bg().gcRuns).toBe(2);
      expect(tl.gcCutoffLsn).toBe(tl.diskConsistentLsn); // gcHorizon 0: everything durable
      await rounds(5);
      expect(bg().gcRuns).toBe(2);

      // Flush, compaction and GC in the background changed no page.
      const lsn = tl.lastRecordLsn;
      expect(await expectMatches(tl, oracle, [lsn])).toBe(oracle.allKeys().length);
      await expect(tl.getPage(oracle.allKeys()[0], lsn - 1n)).rejects.toMatchObject({ code: 'LSN_GC_CUTOFF' });
      expect(bg()).toMatchObject({ running: true, failures: 0, lastError: null });
      await repo.close();
      expect(repo.stats.bind(repo)).toThrow(expect.objectContaining({ code: 'CLOSED' }));
    } finally {
      vi.useRealTimers();
    }
  });

  it('exports metrics in Prometheus text format, per tenant and timeline', async () => {
    const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
    const { oracle, lsns } = await load(tl, 3);
    const reads = await expectMatches(tl, oracle, [lsns[2]]);
    const text = repo.metricsText();
    const value = (line: string): number => Number(text.split('\n').find((l) => l.startsWith(line))!.split(' ').pop());
    const labels = '{tenant_id="t",timeline_id="main"}';
    expect(value(`strata_reads_total${labels}`)).toBe(reads);
    expect(value(`strata_layers_visited_per_read_count${labels}`)).toBe(reads);
    expect(value(`strata_layers{tenant_id="t",timeline_id="main",kind="delta",level="0"}`)).toBe(3);
    expect(text).toContain('# TYPE strata_layers_visited_per_read histogram');
    // Buckets are cumulative and end at the count.
    const buckets = text.split('\n').filter((l) => l.startsWith('strata_layers_visited_per_read_bucket{tenant_id="t"')).map((l) => Number(l.split(' ').pop()));
    for (let i = 1; i < buckets.length; i++) expect(buckets[i]).toBeGreaterThanOrEqual(buckets[i - 1]);
    expect(buckets[buckets.length - 1]).toBe(reads);
    expect(value('strata_page_cache_misses_total')).toBeGreaterThan(0);
    tl.resetStats();
    expect(tl.stats().layersVisitedPerRead.count).toBe(0);
  });
});
