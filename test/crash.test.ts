/**
 * Durability under kill -9: a child process ingests and flushes (and, in the lifecycle variant,
 * compacts, creates images, runs GC and creates and deletes branches; in the PostgreSQL variant,
 * ingests a recorded WAL directory); we SIGKILL it at seeded random moments inside those phases,
 * reopen, and check that everything flush() reported durable is intact at every LSN above the GC
 * cutoff, that every branch reported created (and whose deletion had not begun) reads its ancestor's pages at its
 * branch point, that no half-written layer is in the manifest, that no orphan file survives the
 * reopen, and that WAL re-sent from diskConsistentLsn applies.
 * STRATA_CRASH_KILLS sets the kills per core and mode (npm test 6, test:crash 50,
 * test:crash:long 450); STRATA_CRASH_PG_KILLS the PostgreSQL WAL kills per core (test:crash 10,
 * test:crash:long 100; npm test none: importing and ingesting the fixture takes too long there).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { Repository, type Timeline } from '../lib';
import { verifyRepository } from '../lib/cli/repo';
import type { ImplementationName } from '../lib/core/core';
import { createCore } from '../lib/core/select';
import { isStrataError } from '../lib/errors';
import { describeEachCore } from './helpers/cores';
import { pgAvailability } from './helpers/pg_cluster';
import { getPgFixture, type PgFixture } from './helpers/pg_fixture';
import { Rng } from './helpers/random';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const workload = require('./fixtures/crash_workload.js') as {
  recordAt(i: number): import('../lib').WalRecord;
  recordsUpTo(lsn: bigint): number;
  PAGES: number;
  GC_HORIZON: bigint;
};

const KILLS_PER_IMPLEMENTATION = Number(process.env.STRATA_CRASH_KILLS ?? 6);
const PG_KILLS_PER_IMPLEMENTATION = Number(process.env.STRATA_CRASH_PG_KILLS ?? 0);
const CHILD = path.join(__dirname, 'fixtures', 'crash_child.js');
const PG_CHILD = path.join(__dirname, 'fixtures', 'crash_pg_child.js');
const LONG_TIMEOUT_MS = 3 * 60 * 60 * 1000;
/** Rounds of the PostgreSQL kill loop per kill wanted: about a third of children finish the WAL first. */
const PG_MAX_ROUNDS_PER_KILL = 4;
/**
 * A PostgreSQL ingest child lives this long (uniform, ms) after it starts ingesting before SIGKILL.
 * The upper end shrinks to 90 % of the shortest whole ingest seen, so kills land inside the ingest
 * however fast this machine and build ingest (a faster build once left too few kills in the rounds).
 */
const PG_LIFE_MIN_MS = 100;
const PG_LIFE_MAX_MS = 4_000;
const PG_LIFE_SHARE_OF_WHOLE_RUN = 0.9;
/** Pages compared with the reference after each PostgreSQL kill (random relations and blocks). */
const PG_PAGES_PER_KILL = 48;
const LIFECYCLE_PHASES = ['flushing', 'compacting', 'imaging', 'gc', 'branching'] as const;
/**
 * Kills per repository: then the campaign goes on in a fresh one. Each child replays the workload
 * from where the repository stands and each check verifies every layer file, so one repository
 * for a whole 470-kill campaign made each kill slower than the last (30 s apart by kill 700, with
 * 2,800 files to open and verify): the long run could not finish.
 */
const KILLS_PER_REPOSITORY = Number(process.env.STRATA_CRASH_KILLS_PER_REPO ?? 100);

type Mode = 'ingest' | 'lifecycle';

const figures: Record<string, { kills: number; pagesChecked: number; pagesLost: number; byPhase: Record<string, number> }> = {};
function figuresFor(impl: string): (typeof figures)[string] {
  return (figures[impl] ??= { kills: 0, pagesChecked: 0, pagesLost: 0, byPhase: {} });
}
/** Kills between progress lines on stderr (a long campaign shows how far it got). */
const PROGRESS_EVERY_KILLS = 100;
function countKill(impl: string, phase: string): void {
  const f = figuresFor(impl);
  f.kills++;
  f.byPhase[phase] = (f.byPhase[phase] ?? 0) + 1;
  if (f.kills % PROGRESS_EVERY_KILLS === 0) process.stderr.write(`crash kills so far: ${impl} ${JSON.stringify(f)}\n`);
}
afterAll(() => {
  if (Object.keys(figures).length > 0) console.log(`crash kills: ${JSON.stringify(figures)}`);
});

/** What the killed child reported as done. */
interface Reported {
  durable: bigint;
  branches: Map<string, bigint>;
  done: boolean;
  /** ms from the phase line that armed the kill to the child's exit (a finished child: how long its phase took). */
  phaseMs: number;
}

function parseReport(line: string, r: Reported): void {
  const [word, a, b] = line.split(' ');
  if (word === 'durable') r.durable = BigInt(a);
  else if (word === 'branch') r.branches.set(a, BigInt(b));
  // A deletion removes the manifest first, so a kill after it began may leave the branch gone.
  else if (word === 'deleting') r.branches.delete(a);
  else if (word === 'done') r.done = true;
}

/**
 * Run a child until `phase` has been announced `times` times, then kill -9 it after `delayMs`
 * (inside that phase or just after it). Resolves with what it reported; `branches` carries over.
 */
function runAndKill(args: string[], phase: string, times: number, delayMs: number, branches: Map<string, bigint>): Promise<Reported> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const r: Reported = { durable: -1n, branches, done: false, phaseMs: 0 };
    let phaseAt = 0;
    let seen = 0;
    let stderr = '';
    let partial = '';
    let killArmed = false;
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.stdout.on('data', (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        parseReport(line, r);
        if (line === phase && ++seen >= times && !killArmed) {
          killArmed = true;
          phaseAt = performance.now();
          setTimeout(() => child.kill('SIGKILL'), delayMs);
        }
      }
    });
    child.on('exit', (code, signal) => {
      if (killArmed) r.phaseMs = performance.now() - phaseAt;
      if (signal === 'SIGKILL' || (r.done && code === 0)) resolve(r);
      else reject(new Error(`child exited ${code}: ${stderr}`));
    });
  });
}

/**
 * Every workload page as of each of `lsns`, in one pass over the records (the WAL grows with every
 * kill, so a pass per page and LSN would make a long campaign quadratic); null where none was written.
 */
function oracleAt(lsns: readonly bigint[]): Map<bigint, (Buffer | null)[]> {
  const pages: (Buffer | null)[] = Array.from({ length: workload.PAGES }, () => null);
  const out = new Map<bigint, (Buffer | null)[]>();
  const sorted = [...new Set(lsns)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  let i = 0;
  for (const lsn of sorted) {
    for (const end = workload.recordsUpTo(lsn); i < end; i++) {
      const r = workload.recordAt(i);
      const k = r.key.blockNum;
      if (r.kind === 'image') pages[k] = Buffer.from(r.page);
      else if (r.kind === 'patch') (pages[k] ?? (pages[k] = Buffer.alloc(8192))).set(r.data, r.offset);
    }
    out.set(lsn, pages.map((p) => (p === null ? null : Buffer.from(p))));
  }
  return out;
}

/** Every workload page of `tl` at `at` is what the deterministic WAL wrote (`want`: oracleAt's pages at `at`). */
async function checkWorkloadPages(tl: Timeline, at: bigint, want: readonly (Buffer | null)[], impl: string): Promise<void> {
  const f = figuresFor(impl);
  for (let b = 0; b < workload.PAGES; b++) {
    const key = { spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0, blockNum: b };
    const expected = want[b];
    f.pagesChecked++;
    if (expected === null) await expect(tl.getPage(key, at)).rejects.toMatchObject({ code: 'PAGE_NOT_FOUND' });
    else expect((await tl.getPage(key, at)).equals(expected), `${tl.timelineId}: page ${b} at ${at}`).toBe(true);
  }
}

/** No manifest names a missing, short or torn layer (verifyRepository, what `strata verify` runs). */
function expectVerified(dir: string, impl: ImplementationName): void {
  const core = createCore(impl, { pageCacheBytes: 1 << 20 });
  try {
    expect(verifyRepository(dir, core, () => undefined).faults).toEqual([]);
  } finally {
    core.close();
  }
}

describeEachCore('crash safety under SIGKILL (%s core)', (impl) => {
  it.each(['ingest', 'lifecycle'] as const)(`%s: survives ${KILLS_PER_IMPLEMENTATION} kills at random moments`, async (mode: Mode) => {
    let dir = fs.mkdtempSync(path.join(os.tmpdir(), `strata-crash-${impl}-`));
    const rng = new Rng((impl === 'native' ? 101 : 202) + (mode === 'lifecycle' ? 7 : 0));
    let compactedLayers = 0;
    let lastDurable = 0n;
    let branchesChecked = 0;
    const branches = new Map<string, bigint>();
    try {
      for (let k = 0; k < KILLS_PER_IMPLEMENTATION; k++) {
        if (k > 0 && k % KILLS_PER_REPOSITORY === 0) {
          fs.rmSync(dir, { recursive: true, force: true });
          dir = fs.mkdtempSync(path.join(os.tmpdir(), `strata-crash-${impl}-`));
          lastDurable = 0n;
          branches.clear();
        }
        const phase = mode === 'lifecycle' ? rng.pick(LIFECYCLE_PHASES) : 'flushing';
        // Branches come every fourth round: wait for fewer of their announcements.
        const times = phase === 'branching' || phase === 'imaging' ? 1 : rng.int(1, 4);
        const r = await runAndKill([CHILD, dir, impl, mode], phase, times, rng.int(0, 15), branches);
        countKill(impl, phase);
        if (r.durable > lastDurable) lastDurable = r.durable;
        expectVerified(dir, impl);
        const repo = await Repository.open(dir, { implementation: impl });
        try {
          // The page-cache policy the reopen reads through (`npm run test:policy` sets adaptive-s3fifo).
          expect(repo.stats().pageCache.policy).toBe(process.env.STRATA_PAGE_CACHE_POLICY || 'clock');
          const tl = repo.getTimeline('t1', 'main');
          expect(tl.diskConsistentLsn).toBeGreaterThanOrEqual(lastDurable);
          expect(tl.lastRecordLsn).toBe(tl.diskConsistentLsn);
          // Every page as of the durable LSN, and a few older versions, are exactly what was written.
          const lsn = tl.diskConsistentLsn;
          const cutoff = tl.gcCutoffLsn;
          expect(cutoff).toBeLessThanOrEqual(lsn > workload.GC_HORIZON ? lsn - workload.GC_HORIZON : 0n);
          const ats = [lsn, (cutoff + lsn) / 2n, cutoff];
          const oracle = oracleAt([...ats, ...branches.values()]);
          for (const at of ats) await checkWorkloadPages(tl, at, oracle.get(at) ?? [], impl);
          // Every branch reported created, and whose deletion had not begun, is there at its branch point.
          for (const [id, at] of branches) {
            const b = repo.getTimeline('t1', id);
            expect(b.ancestorLsn).toBe(at);
            await checkWorkloadPages(b, at, oracle.get(at) ?? [], impl);
            branchesChecked++;
          }
          // Only finished, manifest-listed layers remain, and each passes a full check.
          const tlDir = path.join(dir, 'tenants', 't1', 'timelines', 'main');
          const listed = new Set(tl.layers().map((l) => l.fileName));
          compactedLayers += tl.layers().filter((l) => l.level === 1 || l.kind === 'image').length;
          expect(fs.readdirSync(tlDir).filter((x) => x !== 'manifest').sort()).toEqual([...listed].sort());
          const core = createCore(impl, { pageCacheBytes: 1 << 20 });
          for (const x of listed) {
            const h = core.openLayer(path.join(tlDir, x));
            expect(core.verifyLayer(h)).toBeGreaterThan(0);
          }
          core.close();
        } finally {
          await repo.close();
        }
      }
      expect(lastDurable).toBeGreaterThan(0n);
      if (mode === 'lifecycle') {
        expect(compactedLayers).toBeGreaterThan(0);
        expect(branchesChecked).toBeGreaterThan(0);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, LONG_TIMEOUT_MS);
});

const pg = pgAvailability();
const pgSkipReason = PG_KILLS_PER_IMPLEMENTATION === 0 ? 'STRATA_CRASH_PG_KILLS is 0 (npm run test:crash runs it)' : pg.ok ? '' : pg.reason;
const pgSkip = pgSkipReason === '' ? '' : ` — skipped: ${pgSkipReason}`;
const pgDirs: string[] = [];
afterAll(() => {
  for (const d of pgDirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A repository with the fixture's base imported into pg/main (the state every ingest run starts from). */
async function importedRepo(dir: string, impl: ImplementationName, fx: PgFixture): Promise<void> {
  const repo = await Repository.open(dir, { implementation: impl });
  try {
    const tl = await repo.createTimeline({ tenantId: 'pg', timelineId: 'main' });
    await tl.importPgDatadir(fx.baseDir);
    await tl.flush();
  } finally {
    await repo.close();
  }
}

async function relSizeOrNull(tl: Timeline, rel: Parameters<Timeline['getRelSize']>[0], lsn: bigint): Promise<number | null> {
  try {
    return await tl.getRelSize(rel, lsn);
  } catch (e) {
    if (isStrataError(e, 'REL_NOT_FOUND')) return null;
    throw e;
  }
}

/** Relations, sizes and sampled pages of `tl` at `lsn` equal the reference's (fully ingested, never killed). */
async function compareWithReference(tl: Timeline, ref: Timeline, lsn: bigint, rng: Rng, impl: string): Promise<void> {
  const f = figuresFor(impl);
  const rels = await ref.listRelations(lsn);
  expect((await tl.listRelations(lsn)).length).toBe(rels.length);
  for (let i = 0; i < PG_PAGES_PER_KILL; i++) {
    const rel = rng.pick(rels);
    const tag = { spcOid: rel.spcOid, dbOid: rel.dbOid, relNumber: rel.relNumber, forkNum: rel.forkNum };
    const size = await relSizeOrNull(ref, tag, lsn);
    expect(await relSizeOrNull(tl, tag, lsn), `size of ${JSON.stringify(tag)} at ${lsn}`).toBe(size);
    if (size === null || size === 0) continue;
    const key = { ...tag, blockNum: rng.int(0, size) };
    f.pagesChecked++;
    expect((await tl.getPage(key, lsn)).equals(await ref.getPage(key, lsn)), `page ${JSON.stringify(key)} at ${lsn}`).toBe(true);
  }
}

describeEachCore('crash safety of PostgreSQL WAL ingest under SIGKILL (%s core)', (impl) => {
  it.skipIf(pgSkipReason !== '')(`survives ${PG_KILLS_PER_IMPLEMENTATION} kills while ingesting a recorded WAL${pgSkip}`, async () => {
    const fx = await getPgFixture('plain');
    const root = fs.mkdtempSync(path.join(os.tmpdir(), `strata-crash-pg-${impl}-`));
    pgDirs.push(root);
    const template = path.join(root, 'template');
    await importedRepo(template, impl, fx);
    // The reference: the same import and the whole WAL, never killed.
    const refDir = path.join(root, 'reference');
    fs.cpSync(template, refDir, { recursive: true });
    const refRepo = await Repository.open(refDir, { implementation: impl });
    const dir = path.join(root, 'repo');
    const rng = new Rng(impl === 'native' ? 303 : 404);
    const f = figuresFor(impl);
    let runsCompleted = 0;
    try {
      const ref = refRepo.getTimeline('pg', 'main');
      await ref.ingestPgWal(fx.walDir);
      await ref.flush();
      fs.cpSync(template, dir, { recursive: true });
      let lastDurable = 0n;
      // Rounds until that many children were really killed mid-ingest (a child that finished the
      // WAL first is checked too but is no kill), bounded so a fast machine cannot loop forever.
      let killed = 0;
      let lifeMaxMs = PG_LIFE_MAX_MS;
      for (let round = 0; killed < PG_KILLS_PER_IMPLEMENTATION && round < PG_MAX_ROUNDS_PER_KILL * PG_KILLS_PER_IMPLEMENTATION; round++) {
        const r = await runAndKill([PG_CHILD, dir, impl, fx.walDir], 'ingesting', 1, rng.int(PG_LIFE_MIN_MS, lifeMaxMs), new Map());
        // A child that finished from the import (lastDurable 0) took the whole ingest: kill sooner.
        if (r.done && lastDurable === 0n) lifeMaxMs = Math.max(PG_LIFE_MIN_MS + 1, Math.min(lifeMaxMs, Math.floor(r.phaseMs * PG_LIFE_SHARE_OF_WHOLE_RUN)));
        if (!r.done) {
          killed++;
          countKill(impl, 'pg wal ingest');
        }
        if (r.durable > lastDurable) lastDurable = r.durable;
        expectVerified(dir, impl);
        const repo = await Repository.open(dir, { implementation: impl });
        try {
          const tl = repo.getTimeline('pg', 'main');
          expect(tl.diskConsistentLsn).toBeGreaterThanOrEqual(lastDurable);
          expect(tl.lastRecordLsn).toBe(tl.diskConsistentLsn);
          await compareWithReference(tl, ref, tl.diskConsistentLsn, rng, impl);
          if (r.done) expect(tl.diskConsistentLsn).toBe(fx.finalEndLsn);
        } finally {
          await repo.close();
        }
        if (r.done) {
          // The whole WAL is in: start over from the import for the next kills.
          runsCompleted++;
          fs.rmSync(dir, { recursive: true, force: true });
          fs.cpSync(template, dir, { recursive: true });
          lastDurable = 0n;
        }
      }
      expect(killed).toBe(PG_KILLS_PER_IMPLEMENTATION);
      expect(f.kills).toBeGreaterThanOrEqual(killed);
    } finally {
      await refRepo.close();
    }
  }, LONG_TIMEOUT_MS);
});
