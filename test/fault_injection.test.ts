/**
 * I/O fault injection sweep (docs/RELIABILITY.md): for a flush, a compaction, image creation, GC,
 * a manifest update and branch creation, on both cores, a counting run finds how many writes, fsyncs, directory
 * fsyncs, renames, unlinks and block reads the operation makes; then each call N in turn fails
 * (EIO, ENOSPC or a short write) on a fresh copy of the same repository, and we check:
 *  - the operation rejects with IO_ERROR naming a path in the repository and the errno;
 *  - every page durable before the operation reads back as the oracle says, before and after reopen;
 *  - the timeline then refuses writes clearly (the fsync policy: no retry until reopen), except
 *    after a failed branch creation, which touched no existing timeline and simply succeeds when retried;
 *  - `verifyRepository` finds no fault: no half-written or missing layer in any manifest;
 *  - after reopen there are no temp files or orphans, and the same operation succeeds.
 * npm test samples the calls of each kind (first, last and a seeded few between);
 * STRATA_FAULT_SWEEP=full (npm run test:faults) fails every call with every fault kind.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { Repository, type Timeline, type WalRecord } from '../lib';
import { verifyRepository } from '../lib/cli/repo';
import type { ImplementationName } from '../lib/core/core';
import { createCore } from '../lib/core/select';
import { isStrataError } from '../lib/errors';
import { armFault, clearFaults, countFaults, FAULT_OPS, faultCounts, type FaultKind, type FaultOp } from '../lib/fault_injection';
import { timelineImpl } from '../lib/timeline';
import { describeEachCore } from './helpers/cores';
import { Rng } from './helpers/random';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const workload = require('./fixtures/crash_workload.js') as {
  recordAt(i: number): WalRecord;
  recordsUpTo(lsn: bigint): number;
  PAGES: number;
  PAGE_SIZE: number;
};

const FULL_SWEEP = process.env.STRATA_FAULT_SWEEP === 'full';
/** Calls of one kind failed per scenario in the sampled sweep (first, last and seeded ones between). */
const SAMPLED_CALLS_PER_OP = 4;
const FULL_SWEEP_TIMEOUT_MS = 60 * 60 * 1000;
const RECORDS_PER_ROUND = 100;
const BASE_ROUNDS = 4;
/** Frozen layers the pipelined flush scenario writes. */
const PIPELINED_LAYERS = 3;
const TENANT = 't1';
const TIMELINE = 'main';
const BRANCH = 'branch';
const REPO_OPTIONS = {
  checkpointDistance: 64 * 1024 * 1024, // no flush unless the test asks for one
  compactionThreshold: 3,
  compactionTargetSize: 64 * 1024,
  imageCreationThreshold: 2,
  pageCacheBytes: 1024 * 1024,
};

type ScenarioName = 'flush' | 'pipelined flush' | 'compaction' | 'image creation' | 'gc' | 'manifest update' | 'branch creation';

interface Scenario {
  name: ScenarioName;
  /** Unfaulted steps that bring the base repository to where the operation has work to do. */
  prepare(tl: Timeline): Promise<void>;
  /** Steps on each opened copy before the fault is armed (records that live in memory only). */
  setup?(tl: Timeline): void;
  act(tl: Timeline, repo: Repository): Promise<unknown>;
  /** Repository options of the faulted copy, over REPO_OPTIONS. */
  options?: { checkpointDistance: number };
  /**
   * Whether a failure stops the timeline's writes until reopen (the fsync policy). Branch creation
   * touches no existing timeline: a failed one is simply retried (it rewrites its whole manifest).
   */
  stopsWrites: boolean;
}

function ingestRound(tl: Timeline): void {
  const first = workload.recordsUpTo(tl.lastRecordLsn);
  const batch: WalRecord[] = [];
  for (let i = first; i < first + RECORDS_PER_ROUND; i++) batch.push(workload.recordAt(i));
  tl.ingest(batch);
}

const SCENARIOS: readonly Scenario[] = [
  { name: 'flush', prepare: async () => undefined, setup: ingestRound, act: (tl) => tl.flush(), stopsWrites: true },
  {
    // Every batch freezes a layer: three frozen layers, each written while the one before commits.
    name: 'pipelined flush',
    prepare: async () => undefined,
    setup: (tl) => { for (let i = 0; i < PIPELINED_LAYERS; i++) ingestRound(tl); },
    act: (tl) => tl.flush(),
    options: { checkpointDistance: 1 },
    stopsWrites: true,
  },
  { name: 'compaction', prepare: async () => undefined, act: (tl) => tl.compact({ force: true }), stopsWrites: true },
  { name: 'image creation', prepare: async () => undefined, act: (tl) => tl.createImageLayer(tl.lastRecordLsn), stopsWrites: true },
  {
    name: 'gc',
    prepare: async (tl) => {
      await tl.createImageLayer(tl.lastRecordLsn);
      ingestRound(tl);
      await tl.flush();
    },
    act: (tl) => tl.gc({ horizon: 0x10n }),
    stopsWrites: true,
  },
  {
    name: 'manifest update',
    prepare: async () => undefined,
    act: (tl) => timelineImpl(tl).setExtension('fault_test', { note: 'x' }),
    stopsWrites: true,
  },
  {
    name: 'branch creation',
    prepare: async () => undefined,
    act: (_tl, repo) => repo.createTimeline({ tenantId: TENANT, timelineId: BRANCH, ancestorTimelineId: TIMELINE }),
    stopsWrites: false,
  },
];

/** Every page of the workload as the records up to `lsn` leave it; null where none was written. */
function oracleAt(lsn: bigint): (Buffer | null)[] {
  const pages: (Buffer | null)[] = Array.from({ length: workload.PAGES }, () => null);
  for (let i = 0; i < workload.recordsUpTo(lsn); i++) {
    const r = workload.recordAt(i);
    const k = r.key.blockNum;
    if (r.kind === 'image') pages[k] = Buffer.from(r.page);
    else if (r.kind === 'patch') (pages[k] ?? (pages[k] = Buffer.alloc(workload.PAGE_SIZE))).set(r.data, r.offset);
  }
  return pages;
}

const figures = { points: 0, pagesChecked: 0, pagesLost: 0, byCore: {} as Record<string, number>, calls: {} as Record<string, Record<string, number>> };

/** Read every workload page at `lsn` and compare with the oracle; returns the number checked. */
async function checkPages(tl: Timeline, lsn: bigint, where: string): Promise<void> {
  const want = oracleAt(lsn);
  for (let k = 0; k < workload.PAGES; k++) {
    const key = { spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0, blockNum: k };
    const expected = want[k];
    if (expected === null) continue;
    let got: Buffer;
    try {
      got = await tl.getPage(key, lsn);
    } catch (e) {
      figures.pagesLost++;
      throw new Error(`${where}: page ${k} at ${lsn} unreadable: ${(e as Error).message}`, { cause: e });
    }
    figures.pagesChecked++;
    if (!got.equals(expected)) {
      figures.pagesLost++;
      throw new Error(`${where}: page ${k} at ${lsn} differs from the oracle`);
    }
  }
}

function tempFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith('.tmp')) out.push(path.join(e.parentPath, e.name));
  }
  return out;
}

async function openTimeline(dir: string, impl: ImplementationName, options?: Scenario['options']): Promise<{ repo: Repository; tl: Timeline }> {
  const repo = await Repository.open(dir, { ...REPO_OPTIONS, ...options, implementation: impl });
  return { repo, tl: repo.getTimeline(TENANT, TIMELINE) };
}

/** The base repository: BASE_ROUNDS flushed rounds (that many L0 deltas), then the scenario's own preparation. */
async function buildTemplate(root: string, impl: ImplementationName, s: Scenario): Promise<string> {
  const dir = path.join(root, `template-${s.name.replace(/ /g, '-')}`);
  const repo = await Repository.open(dir, { ...REPO_OPTIONS, implementation: impl });
  const tl = await repo.createTimeline({ tenantId: TENANT, timelineId: TIMELINE });
  for (let r = 0; r < BASE_ROUNDS; r++) {
    ingestRound(tl);
    await tl.flush();
  }
  await s.prepare(tl);
  await repo.close();
  return dir;
}

/** Which call numbers of one kind to fail: all of them in the full sweep, else first, last and a seeded few. */
function callsToFail(count: number, rng: Rng): number[] {
  if (FULL_SWEEP || count <= SAMPLED_CALLS_PER_OP) return Array.from({ length: count }, (_, i) => i + 1);
  const picked = new Set([1, count]);
  while (picked.size < SAMPLED_CALLS_PER_OP) picked.add(rng.int(2, count));
  return [...picked].sort((a, b) => a - b);
}

function kindsFor(op: FaultOp): FaultKind[] {
  const writes = op === 'write' || op === 'layer_write';
  if (!writes) return ['EIO'];
  return FULL_SWEEP ? ['EIO', 'ENOSPC', 'short'] : ['EIO', 'short'];
}

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
  // The figures docs/RELIABILITY.md quotes.
  console.log(`fault sweep (${FULL_SWEEP ? 'full' : 'sampled'}): ${JSON.stringify(figures)}`);
});

describeEachCore('I/O fault injection sweep (%s core)', (impl) => {
  it.each(SCENARIOS.map((s) => [s.name, s] as const))('%s: every injected fault ends in IO_ERROR and an intact repository', async (_name, s) => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), `strata-faults-${impl}-`));
    roots.push(root);
    const template = await buildTemplate(root, impl, s);

    // Counting run: how many calls of each kind the operation makes.
    const countDir = path.join(root, 'count');
    fs.cpSync(template, countDir, { recursive: true });
    let counts: Record<FaultOp, number>;
    {
      const { repo, tl } = await openTimeline(countDir, impl, s.options);
      s.setup?.(tl);
      countFaults();
      try {
        await s.act(tl, repo);
      } finally {
        counts = faultCounts();
        clearFaults();
      }
      await repo.close();
    }
    const total = FAULT_OPS.reduce((n, op) => n + counts[op], 0);
    expect(total, `${s.name} made no counted I/O call`).toBeGreaterThan(0);
    expect(counts.layer_fsync + counts.fsync, `${s.name} fsynced nothing`).toBeGreaterThan(0);
    if (s.name === 'flush' || s.name === 'compaction' || s.name === 'image creation') {
      // The core's layer writer is counted (for the native core: through the addon's failpoints).
      expect(counts.layer_write, `${s.name}: layer writes counted`).toBeGreaterThan(0);
      expect(counts.layer_fsync, `${s.name}: layer fsyncs counted`).toBeGreaterThan(0);
    }
    figures.calls[`${impl} ${s.name}`] = Object.fromEntries(FAULT_OPS.filter((op) => counts[op] > 0).map((op) => [op, counts[op]]));

    const rng = new Rng(impl === 'native' ? 17 : 29);
    let point = 0;
    for (const op of FAULT_OPS) {
      for (const n of callsToFail(counts[op], rng)) {
        for (const kind of kindsFor(op)) {
          const dir = path.join(root, `p${point++}`);
          fs.cpSync(template, dir, { recursive: true });
          await checkOnePoint(dir, impl, s, op, n, kind);
          fs.rmSync(dir, { recursive: true, force: true });
          figures.points++;
          figures.byCore[impl] = (figures.byCore[impl] ?? 0) + 1;
        }
      }
    }
    expect(point).toBeGreaterThan(0);
  }, FULL_SWEEP ? FULL_SWEEP_TIMEOUT_MS : undefined);
});

async function checkOnePoint(dir: string, impl: ImplementationName, s: Scenario, op: FaultOp, n: number, kind: FaultKind): Promise<void> {
  const where = `${impl} ${s.name}, ${op} #${n} ${kind}`;
  const { repo, tl } = await openTimeline(dir, impl, s.options);
  s.setup?.(tl);
  const durableBefore = tl.diskConsistentLsn;
  const lastBefore = tl.lastRecordLsn;

  armFault(op, n, kind);
  let failure: unknown = null;
  try {
    await s.act(tl, repo);
  } catch (e) {
    failure = e;
  } finally {
    clearFaults();
  }
  expect(faultCounts()[op], `${where}: the armed call was never made`).toBeGreaterThanOrEqual(n);
  expect(isStrataError(failure, 'IO_ERROR'), `${where}: expected IO_ERROR, got ${String(failure)}`).toBe(true);
  const message = (failure as Error).message;
  expect(message, where).toContain(dir);
  expect(message, where).toMatch(kind === 'EIO' ? /EIO/ : /ENOSPC/);

  // Still readable, durable pages intact (and the in-memory ones too: reads keep working).
  await checkPages(tl, durableBefore, `${where}, before reopen`);
  await checkPages(tl, lastBefore, `${where}, before reopen, at lastRecordLsn`);

  if (s.stopsWrites) {
    // The policy: no retry as if nothing happened; writes refuse, clearly, until reopen.
    const refused = await tl.flush().then(() => null, (e: unknown) => e);
    expect(isStrataError(refused, 'IO_ERROR'), `${where}: flush after the fault: ${String(refused)}`).toBe(true);
    expect((refused as Error).message, where).toMatch(/writes are stopped until the repository is reopened/);
    expect(() => tl.ingest([workload.recordAt(workload.recordsUpTo(lastBefore))]), where).toThrow(/writes are stopped/);
  } else {
    // Nothing existing was touched: the ancestor still takes writes, and the operation succeeds now.
    await tl.flush();
    const branch = (await s.act(tl, repo)) as Timeline;
    await checkPages(branch, lastBefore, `${where}, the retried branch`);
  }
  await repo.close();

  // No half-written or missing layer in any manifest (orphans are allowed until reopen).
  const core = createCore(impl, { pageCacheBytes: REPO_OPTIONS.pageCacheBytes });
  try {
    const report = verifyRepository(dir, core, () => undefined);
    expect(report.faults, `${where}: verify`).toEqual([]);
  } finally {
    core.close();
  }

  // Reopen: what the manifest says is durable reads back; temp files and orphans are gone; the operation succeeds.
  const again = await openTimeline(dir, impl, s.options);
  try {
    const durable = again.tl.diskConsistentLsn;
    expect(durable >= durableBefore, `${where}: diskConsistentLsn went back`).toBe(true);
    expect(tempFiles(dir), where).toEqual([]);
    await checkPages(again.tl, durableBefore, `${where}, after reopen`);
    if (durable !== durableBefore) await checkPages(again.tl, durable, `${where}, after reopen at the new durable LSN`);
    // Re-send the WAL above the durable LSN, as a WAL sender would, and run the operation again.
    const resend: WalRecord[] = [];
    for (let i = workload.recordsUpTo(durable); i < workload.recordsUpTo(lastBefore); i++) resend.push(workload.recordAt(i));
    if (resend.length > 0) again.tl.ingest(resend);
    if (s.stopsWrites) await s.act(again.tl, again.repo);
    await checkPages(again.tl, lastBefore, `${where}, after the retried operation`);
    if (!s.stopsWrites) await checkPages(again.repo.getTimeline(TENANT, BRANCH), lastBefore, `${where}, the branch after reopen`);
  } finally {
    await again.repo.close();
  }
  const core2 = createCore(impl, { pageCacheBytes: REPO_OPTIONS.pageCacheBytes });
  try {
    const report = verifyRepository(dir, core2, () => undefined);
    expect(report.faults, `${where}: verify after the retry`).toEqual([]);
    expect(report.orphans, `${where}: orphans after reopen and retry`).toEqual([]);
  } finally {
    core2.close();
  }
}
