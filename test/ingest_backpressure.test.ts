/**
 * Ingest backpressure on frozen layers (docs/RELIABILITY.md "Resource limits"): a writer faster
 * than the disk holds at most `maxFrozenLayers` frozen in-memory layers when it ingests through
 * the async paths — Timeline.ingestAsync and the PostgreSQL WAL ingest (ingestPgWal, which
 * followPostgres runs) — while sync ingest() keeps accepting (the same writer piles up more). The
 * flush is slowed by the L0 flush delay (l0FlushDelayThreshold: 1 pauses after each flush as long
 * as the flush took), on both cores. A flush failure reaches a writer waiting on the budget.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isStrataError, PAGE_SIZE, Repository, type RepositoryOptions, type Timeline, type WalRecord } from '../lib';
import type { ImplementationName } from '../lib/core/core';
import { armFault, clearFaults } from '../lib/fault_injection';
import type { ControlState } from '../lib/pg/control_state';
import { WRITES_GRACE_MS } from '../lib/pg/pg_timeline';
import { timelineImpl } from '../lib/timeline';
import { IMPLEMENTATIONS } from './helpers/cores';
import { buildWal, type RecordSpec, SEGMENT } from './pg/wal_builder';
import { bareImportedTimeline } from './helpers/pg_timeline';

const KIB = 1024;
const BUDGET = 1;
/** Eight 8 KB images: one batch crosses the checkpoint distance, so each batch freezes a layer. */
const IMAGES_PER_BATCH = 8;
const BATCHES = 40;
const LSN_STEP = 0x40n;
/** Full-page images of WAL (16 MB) handed to ingest at once, after a first chunk of this many bytes. */
const QUEUED_FPIS = 2_048;
const FIRST_CHUNK_BYTES = 1024 * KIB;
/** Microtasks to let pass so the flush job has started (it starts in one when nothing else is queued). */
const MICROTASKS_TO_START = 20;
const GRACE_MARGIN_MS = 50;

const dirs: string[] = [];
const repos: Repository[] = [];
afterAll(async () => {
  for (const r of repos) await r.close().catch(() => undefined);
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

async function openRepo(impl: ImplementationName, extra: Partial<RepositoryOptions> = {}): Promise<Repository> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `strata-backpressure-${impl}-`));
  dirs.push(dir);
  const repo = await Repository.open(dir, {
    implementation: impl, checkpointDistance: 64 * KIB, maxFrozenLayers: BUDGET, compression: 'none',
    compactionThreshold: 1_000, l0FlushDelayThreshold: 1, l0FlushStallThreshold: 0, ...extra,
  });
  repos.push(repo);
  return repo;
}

function batchAt(b: number): WalRecord[] {
  const out: WalRecord[] = [];
  for (let i = 0; i < IMAGES_PER_BATCH; i++) {
    const n = b * IMAGES_PER_BATCH + i;
    const page = Buffer.alloc(PAGE_SIZE);
    page.writeUInt32BE(n, 0);
    out.push({ lsn: BigInt(n + 1) * LSN_STEP, key: { spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0, blockNum: n }, kind: 'image', page });
  }
  return out;
}

const CONTROL: ControlState = {
  nextXid: 1000n, nextOid: 20000, nextMulti: 1, nextMultiOffset: 1, oldestXid: 700, oldestXidDb: 1, oldestMulti: 1,
  oldestMultiDb: 1, oldestClogXid: null, multiTruncation: null, oldestActiveXid: 0, oldestCommitTsXid: 0, newestCommitTsXid: 0,
  timeline: 1, prevTimeline: 1, fullPageWrites: true, walLevel: 1, maxConnections: 100, maxWorkerProcesses: 8, maxWalSenders: 10,
  maxPreparedXacts: 4, maxLocksPerXact: 64, trackCommitTimestamp: false,
};
const IMPORT_LSN = BigInt(SEGMENT);
const RM_XLOG = 0;
const XLOG_FPI = 0xb0;
const BKPIMAGE_APPLY = 0x02;

/** A PostgreSQL timeline as an import leaves it, minus the relations (as test/pg/lsn_time.test.ts builds it). */
function pgTimeline(repo: Repository): Promise<Timeline> {
  return bareImportedTimeline(repo, 'pg', IMPORT_LSN, CONTROL);
}

/** An XLOG_FPI record: one full-page image of block `blkno`, applied. */
function fpi(blkno: number): RecordSpec {
  const page = Buffer.alloc(PAGE_SIZE);
  page.writeUInt32BE(blkno, 100);
  return { rmid: RM_XLOG, info: XLOG_FPI, blocks: [{ id: 0, rel: [1663, 5, 16384], blkno, image: { stored: page, bimgInfo: BKPIMAGE_APPLY, holeOffset: 0 } }] };
}

describe.each(IMPLEMENTATIONS)('ingest backpressure (%s core)', (impl) => {
  it('ingestAsync holds at most maxFrozenLayers frozen layers against a slow flush; sync ingest piles up more', async () => {
    const repo = await openRepo(impl);
    const fast = await repo.createTimeline({ tenantId: 't', timelineId: 'async' });
    let peak = 0;
    for (let b = 0; b < BATCHES; b++) {
      await fast.ingestAsync(batchAt(b));
      peak = Math.max(peak, fast.stats().frozenLayers);
    }
    expect(peak).toBe(BUDGET); // it reached the budget (the writer outran the flush) and never passed it
    await fast.flush();
    const last = BATCHES * IMAGES_PER_BATCH - 1;
    expect((await fast.getPage({ spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0, blockNum: last }, fast.lastRecordLsn)).readUInt32BE(0)).toBe(last);

    // The same writer through sync ingest(), yielding to the event loop between batches as often.
    const sync = await repo.createTimeline({ tenantId: 't', timelineId: 'sync' });
    let syncPeak = 0;
    for (let b = 0; b < BATCHES; b++) {
      sync.ingest(batchAt(b));
      await new Promise((r) => setImmediate(r));
      syncPeak = Math.max(syncPeak, sync.stats().frozenLayers);
    }
    expect(syncPeak).toBeGreaterThan(BUDGET);
    await sync.flush();
    expect(sync.stats().frozenLayers).toBe(0);
  });

  it('PostgreSQL WAL ingest waits on the same budget', async () => {
    const repo = await openRepo(impl);
    const tl = await pgTimeline(repo);
    const w = buildWal(Array.from({ length: BATCHES * IMAGES_PER_BATCH }, (_, i) => fpi(i)), { startLsn: IMPORT_LSN });
    let peak = 0;
    const chunkBytes = 64 * KIB;
    async function* source(): AsyncGenerator<Uint8Array> {
      for (let o = 0; o < w.bytes.length; o += chunkBytes) {
        peak = Math.max(peak, tl.stats().frozenLayers);
        yield w.bytes.subarray(o, o + chunkBytes);
      }
    }
    const report = await tl.ingestPgWal(source(), { startLsn: w.startLsn });
    expect(report.blocks).toBe(BATCHES * IMAGES_PER_BATCH);
    expect(peak).toBeLessThanOrEqual(BUDGET);
    expect(tl.stats().frozenLayers).toBeLessThanOrEqual(BUDGET);
    await tl.flush();
    expect(tl.stats().l0Count).toBeGreaterThan(BUDGET + 1); // the WAL made more layers than the budget holds
  });

  it('PostgreSQL WAL ingest lets a running flush have event-loop turns while more WAL is queued', async () => {
    // A follower catching up always has WAL queued: ingest must still give a flush that has waited
    // past WRITES_GRACE_MS its turns (before, a flush got one step per queued chunk and took 15–25 s
    // to flush 4 MB of WAL).
    const repo = await openRepo(impl, { checkpointDistance: 256 * 1024 * KIB });
    const tl = await pgTimeline(repo);
    const w = buildWal(Array.from({ length: QUEUED_FPIS }, (_, i) => fpi(i)), { startLsn: IMPORT_LSN });
    let counting = false;
    let turns = 0;
    const turn = (): void => {
      if (!counting) return;
      turns++;
      setImmediate(turn);
    };
    let flushing: Promise<void> | null = null;
    async function* queued(): AsyncGenerator<Uint8Array> {
      yield w.bytes.subarray(0, FIRST_CHUNK_BYTES);
      // That much is in the open layer: flush it while the rest, all of it already there, is
      // handed over in one chunk (as WalQueue does up to 4 MB).
      flushing = tl.flush();
      for (let i = 0; i < MICROTASKS_TO_START; i++) await Promise.resolve();
      expect(timelineImpl(tl).writesWaitingMs, 'the flush is queued').toBeGreaterThan(0);
      // The loop held past the grace (as ingest holds it while catching up): the flush has waited.
      const until = performance.now() + WRITES_GRACE_MS + GRACE_MARGIN_MS;
      while (performance.now() < until) { /* busy */ }
      counting = true;
      setImmediate(turn);
      yield w.bytes.subarray(FIRST_CHUNK_BYTES);
      counting = false;
    }
    const report = await tl.ingestPgWal(queued(), { startLsn: w.startLsn });
    expect(report.blocks).toBe(QUEUED_FPIS);
    expect(turns, 'event-loop turns while the queued WAL was ingested and a flush ran').toBeGreaterThanOrEqual(2);
    expect(flushing).not.toBeNull();
    await flushing;
    expect(tl.diskConsistentLsn).toBeGreaterThan(w.startLsn);
    await tl.flush();
    expect(tl.diskConsistentLsn).toBe(tl.lastRecordLsn);
  });

  it('a writer waiting on the budget gets the flush failure; a bad maxFrozenLayers is refused', async () => {
    const repo = await openRepo(impl);
    const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'fails' });
    armFault('layer_fsync', 1, 'EIO');
    let err: unknown = null;
    try {
      for (let b = 0; b < BATCHES && err === null; b++) await tl.ingestAsync(batchAt(b)).catch((e: unknown) => { err = e; });
    } finally {
      clearFaults();
    }
    expect(isStrataError(err) && err.code).toBe('IO_ERROR');
    expect(String((err as Error).message)).toMatch(/a flush failed, so writes are stopped/);
    await expect(Repository.open(path.join(os.tmpdir(), 'never-created'), { implementation: impl, maxFrozenLayers: -1 }))
      .rejects.toMatchObject({ code: 'BAD_ARGUMENT', message: expect.stringMatching(/maxFrozenLayers/) });
  });
});
