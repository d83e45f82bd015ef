/**
 * Sustained writes with the background scheduler on: 10,000 pages, Zipf-skewed ≈100-byte updates,
 * many flushes. L0 layers stay bounded by the stall threshold, reads at the latest LSN visit few
 * layers once compaction settles, and GC keeps storage within a small factor of the logical size.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect, it } from 'vitest';
import { type PageKey, PAGE_SIZE, Repository, type WalRecord } from '../lib';
import { describeEachCore } from './helpers/cores';
import { Rng } from './helpers/random';

const PAGES = 10_000;
const UPDATES = 60_000;
const BATCH = 500;
const LSN_PER_RECORD = 0x80n; // as if each record took 128 bytes of WAL
const COMPACTION_THRESHOLD = 4;
const STALL_THRESHOLD = 5 * COMPACTION_THRESHOLD;
/** Documented bound (docs/ARCHITECTURE.md): layer bytes after GC ≤ this × pages × 8192. */
const STORAGE_FACTOR_BOUND = 1.5;

// The benchmarks' Zipf sampler (inverse CDF), so the test and bench/ skew their load the same way.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { zipfSampler } = require('../bench/lib/data.js') as { zipfSampler(rng: { next(): number }, n: number, s: number): () => number };

function zipf(rng: Rng, n: number, s: number): () => number {
  return zipfSampler(rng, n, s);
}

function keyOf(i: number): PageKey {
  return { spcOid: 1663, dbOid: 5, relNumber: 16384 + (i % 7), forkNum: 0, blockNum: Math.floor(i / 7) };
}

describeEachCore('sustained writes with background compaction (%s core)', (impl) => {
  it('keeps L0s bounded, reads cheap and storage bounded', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `strata-sustained-${impl}-`));
    const repo = await Repository.open(dir, {
      implementation: impl, checkpointDistance: 2 * 1024 * 1024, compactionThreshold: COMPACTION_THRESHOLD,
      // Two delta generations over a partition make an image: the updates' L0s may be compacted
      // into one L1 generation above the initial pages' before the end (how many L0s they fill
      // depends on the in-memory layer's per-key overhead), so a third cannot be counted on.
      compactionTargetSize: 4 * 1024 * 1024, imageCreationThreshold: 2, gcHorizon: 0x10000n, background: true,
      backgroundOptions: { periodMs: 20, gcPeriodMs: 200, checkpointTimeoutMs: 100 },
    });
    try {
      const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
      const rng = new Rng(77);
      const pick = zipf(rng, PAGES, 1.0);
      const latest: Buffer[] = [];
      let lsn = 0n;
      let maxL0 = 0;
      const feed = async (records: WalRecord[]) => {
        tl.ingest(records);
        maxL0 = Math.max(maxL0, tl.stats().l0Count);
        await new Promise((r) => setImmediate(r)); // let flushes and the scheduler run
      };
      for (let start = 0; start < PAGES; start += BATCH) {
        const batch: WalRecord[] = [];
        for (let i = start; i < Math.min(PAGES, start + BATCH); i++) {
          // Half random bytes: compresses about 2:1, like a fairly full heap page.
          latest[i] = Buffer.alloc(PAGE_SIZE, i % 251);
          rng.bytes(PAGE_SIZE / 2).copy(latest[i], PAGE_SIZE / 4);
          latest[i].writeUInt32BE(i, 0);
          batch.push({ lsn: (lsn += LSN_PER_RECORD), key: keyOf(i), kind: 'image', page: latest[i] });
        }
        await feed(batch);
      }
      for (let done = 0; done < UPDATES; done += BATCH) {
        const batch: WalRecord[] = [];
        const touched = new Set<number>();
        for (let j = 0; j < BATCH; j++) {
          const i = pick();
          if (touched.has(i)) continue; // one record per page per LSN step keeps the batch simple
          touched.add(i);
          const data = rng.bytes(rng.int(80, 120));
          const offset = rng.int(4, PAGE_SIZE - data.length);
          data.copy(latest[i], offset);
          batch.push({ lsn: (lsn += LSN_PER_RECORD), key: keyOf(i), kind: 'patch', offset, data });
        }
        await feed(batch);
      }
      await tl.flush();
      // Let compaction, image creation and GC settle.
      for (let round = 0; round < 3; round++) await repo.runBackgroundOnce();
      await repo.stopBackground();
      const st = tl.stats();
      expect(maxL0).toBeLessThanOrEqual(STALL_THRESHOLD);
      expect(st.l0Count).toBeLessThan(COMPACTION_THRESHOLD);
      expect(st.imageLayerCount).toBeGreaterThan(0);
      expect(repo.stats().background.compactions).toBeGreaterThan(0);
      expect(repo.stats().background.failures).toBe(0);

      tl.resetStats();
      const readRng = new Rng(5);
      const readPick = zipf(readRng, PAGES, 1.0);
      for (let n = 0; n < 3000; n++) {
        const i = n < 1000 ? readRng.int(0, PAGES) : readPick();
        const got = await tl.getPage(keyOf(i), tl.lastRecordLsn);
        if (!got.equals(latest[i])) throw new Error(`page ${i} differs at the latest LSN`);
      }
      const hist = tl.stats().layersVisitedPerRead;
      expect(hist.count).toBe(3000);
      expect(hist.p99).toBeLessThanOrEqual(3);

      // GC with no horizon: everything below the newest image goes.
      const gcReport = await tl.gc({ horizon: tl.lastRecordLsn - tl.layers().filter((l) => l.kind === 'image').reduce((m, l) => (l.lsnStart > m ? l.lsnStart : m), 0n) });
      expect(st.gcBytesRemoved + gcReport.bytesRemoved).toBeGreaterThan(0); // background GC ran too
      const physical = tl.stats().physicalSizeBytes;
      const logical = PAGES * PAGE_SIZE;
      expect(physical / logical).toBeLessThanOrEqual(STORAGE_FACTOR_BOUND);
      process.stdout.write(`[${impl}] maxL0=${maxL0} layersVisitedPerRead=${JSON.stringify(hist)} physical/logical=${(physical / logical).toFixed(3)} ` +
        `written: flush=${st.bytesFlushed} compaction=${st.bytesCompacted} images=${st.bytesImages} gcRemoved=${st.gcBytesRemoved + gcReport.bytesRemoved} ` +
        `stalls=${st.flushStalls} delays=${st.flushDelays}\n`);
    } finally {
      await repo.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
