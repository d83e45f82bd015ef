/**
 * SIGKILL of the follower (issue 10: "the slot never lets PostgreSQL recycle WAL that Strata has
 * not made durable"): `strata follow` runs as a child process while pgbench and a DDL loop write
 * on a primary that recycles WAL (wal_keep_size 0, CHECKPOINTs every few seconds: only the slot
 * keeps WAL). The child is killed at random moments and restarted each time. After every kill the
 * slot's restart_lsn must be ≤ the diskConsistentLsn the killed process left on disk, and the next
 * child must start from exactly that LSN; at the end, after a clean shutdown of the primary, every
 * page equals PostgreSQL's own files (nothing lost, nothing applied twice). STRATA_FOLLOW_KILLS sets
 * the number of kills (npm run test:pg:long: 12).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { parseLsn, Repository } from '../../lib';
import { pgAvailability } from '../helpers/pg_cluster';
import { formatCompareReport } from '../helpers/pg_compare';
import {
  allRelations, compareTimelineWithPrimary, type FollowPrimary, formatLsn, oldestWalSegmentLsn, type RunningWorkload, slotRestartLsn,
  startFollowPrimary, startFollowWorkload, stopPrimary, waitFor, walFlushLsn,
} from '../helpers/pg_follow';

const pg = pgAvailability();
const skipNote = pg.ok ? '' : ` — skipped: ${pg.reason}`;
const KILLS = Number(process.env.STRATA_FOLLOW_KILLS ?? 4);
/** A child lives this long (uniform, ms) before SIGKILL: startup, catch-up, streaming and flushes all get hit. */
const LIFE_MIN_MS = 300;
const LIFE_MAX_MS = 2_500;
const BIN = path.join(__dirname, '..', '..', 'bin', 'strata.js');
const TENANT = 'pg';
const TIMELINE = 'main';
const dirs: string[] = [];
const primaries: FollowPrimary[] = [];
const children = new Set<ChildProcess>();
const workloads: RunningWorkload[] = [];
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  // A failed test leaves its workload running: end it before its primary goes.
  for (const w of workloads) await w.stop().catch(() => undefined);
  for (const p of primaries) await p.destroy();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

interface Follower {
  child: ChildProcess;
  stderr: () => string;
  /** Resolves when the child's --json status lines say 'streaming' (never, if it dies first). */
  streaming: Promise<void>;
  /** Resolves when a status line shows diskConsistentLsn past `lsn` (the child flushed). */
  flushedPast: (lsn: bigint) => Promise<void>;
  /** Resolves when a status line shows lastRecordLsn at or past `lsn` (the child ingested it). */
  reached: (lsn: bigint) => Promise<void>;
  exited: Promise<number | null>;
}

function startFollower(repoDir: string, primary: FollowPrimary): Follower {
  const args = [BIN, 'follow', repoDir, TENANT, TIMELINE, '--connection', primary.connectionString(), '--slot', primary.slot,
    '--flush-interval', '250', '--interval', '500', '--json'];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let err = '';
  let out = '';
  child.stderr?.on('data', (b: Buffer) => { err += b.toString(); });
  const listeners: Array<() => void> = [];
  child.stdout?.on('data', (b: Buffer) => {
    out += b.toString();
    for (const l of listeners) l();
  });
  const when = (cond: () => boolean): Promise<void> => new Promise((resolve) => {
    const check = (): void => {
      if (cond()) resolve();
    };
    listeners.push(check);
    check();
  });
  const streaming = when(() => out.includes('"state":"streaming"'));
  const lsnsIn = (field: string): bigint[] => [...out.matchAll(new RegExp(`"${field}":"([0-9A-F]+/[0-9A-F]+)"`, 'g'))].map((m) => parseLsn(m[1]));
  const flushedPast = (lsn: bigint): Promise<void> => when(() => lsnsIn('diskConsistentLsn').some((x) => x > lsn));
  const reached = (lsn: bigint): Promise<void> => when(() => lsnsIn('lastRecordLsn').some((x) => x >= lsn));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => {
    children.delete(child);
    resolve(code);
  }));
  return { child, stderr: () => err, streaming, flushedPast, reached, exited };
}

/** The LSN a follow child said it starts from (its first stderr line). */
function startedFrom(text: string): bigint | null {
  const m = /: from ([0-9A-F]+\/[0-9A-F]+) /.exec(text);
  return m === null ? null : parseLsn(m[1]);
}

async function durableLsn(repoDir: string): Promise<bigint> {
  const repo = await Repository.open(repoDir, { readOnly: true });
  try {
    return repo.getTimeline(TENANT, TIMELINE).diskConsistentLsn;
  } finally {
    await repo.close();
  }
}

describe('strata follow killed with SIGKILL and restarted', () => {
  test.skipIf(!pg.ok)(`${KILLS} kills at random moments: restart_lsn ≤ the durable LSN after each, each restart resumes there, every page equal at the end${skipNote}`, async () => {
    const primary = await startFollowPrimary();
    primaries.push(primary);
    const repoDir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-follow-kill-'));
    dirs.push(repoDir);
    const setup = await Repository.open(repoDir);
    const importLsn = (await (await setup.createTimeline({ tenantId: TENANT, timelineId: TIMELINE })).importPgDatadir(primary.baseDir)).lsn;
    await setup.close();

    // Even kills count from the child's start (startup, connecting, catching up), odd ones from the
    // moment it said 'streaming' (ingest and flushes in flight), and every fourth from its first
    // flush, so the durable LSN surely moves between kills however slow the machine is.
    const lifeMs = Array.from({ length: KILLS }, () => LIFE_MIN_MS + Math.floor(Math.random() * (LIFE_MAX_MS - LIFE_MIN_MS)));
    // WAL keeps coming until the last child starts: every fourth kill waits for a flush past the last durable LSN.
    const workload = startFollowWorkload(primary);
    workloads.push(workload);
    const log: string[] = [];
    const t0 = Date.now();
    const elapsed = (): string => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
    let expectedStart = importLsn;
    let maxRestart = 0n;
    const durables = new Set<bigint>([importLsn]);
    for (let k = 0; k < KILLS; k++) {
      const f = startFollower(repoDir, primary);
      if (k % 4 === 3) await Promise.race([f.flushedPast(expectedStart), f.exited]);
      else if (k % 2 === 1) await Promise.race([f.streaming, f.exited]);
      await new Promise((r) => setTimeout(r, lifeMs[k]));
      f.child.kill('SIGKILL');
      expect(await f.exited).toBeNull();
      const from = startedFrom(f.stderr());
      // A child killed before it opened the repository said nothing; one that did started where the last one left off.
      if (from !== null) expect(from, f.stderr()).toBe(expectedStart);
      const durable = await durableLsn(repoDir);
      const restart = await slotRestartLsn(primary.cluster);
      expect(typeof restart, 'the slot exists and holds WAL').toBe('bigint');
      expect(restart as bigint, `kill ${k + 1}: restart_lsn ${formatLsn(restart as bigint)} vs durable ${formatLsn(durable)}`).toBeLessThanOrEqual(durable);
      if ((restart as bigint) > maxRestart) maxRestart = restart as bigint;
      expect(oldestWalSegmentLsn(primary.cluster), 'the WAL the next start needs is still on the primary').toBeLessThanOrEqual(durable);
      durables.add(durable);
      const after = k % 4 === 3 ? 'its first flush' : k % 2 === 1 ? "'streaming'" : 'its start';
      log.push(`${elapsed()}: kill ${k + 1} ${lifeMs[k]} ms after ${after}: started ${from === null ? '(not yet)' : formatLsn(from)}, durable ${formatLsn(durable)}, restart_lsn ${formatLsn(restart as bigint)}`);
      expectedStart = durable;
    }

    const last = startFollower(repoDir, primary);
    const work = await workload.stop();
    const relations = await allRelations(primary.cluster);
    // Caught up, and connected: a clean shutdown waits for a streaming walsender's flush report only.
    await last.streaming;
    log.push(`${elapsed()}: workload stopped`);
    await last.reached(await walFlushLsn(primary.cluster));
    log.push(`${elapsed()}: the last child caught up`);
    const endLsn = await stopPrimary(primary.cluster); // waits until the follower reported all it was sent as flushed
    last.child.kill('SIGTERM');
    expect(await last.exited, last.stderr()).toBe(0);
    expect(startedFrom(last.stderr())).toBe(expectedStart);
    expect(maxRestart).toBeGreaterThan(importLsn);
    // The killed followers made progress durable between kills (not every kill restarted from the import).
    expect(durables.size).toBeGreaterThanOrEqual(2);

    const repo = await Repository.open(repoDir);
    try {
      const tl = repo.getTimeline(TENANT, TIMELINE);
      expect(tl.diskConsistentLsn).toBe(endLsn);
      const report = await compareTimelineWithPrimary(tl, primary.cluster.dataDir, endLsn, relations);
      process.stdout.write(`[follow kill] ${log.join('\n  ')}\n  ${work.ddlSteps} DDL steps, ${work.checkpoints} checkpoints, ` +
        `WAL ${formatLsn(importLsn)} → ${formatLsn(endLsn)}\n${formatCompareReport(report)}\n`);
      expect(report.mismatches).toEqual([]);
      expect(report.ok).toBe(true);
      expect(report.byAm.heap.compared).toBeGreaterThan(100);
    } finally {
      await repo.close();
    }
    await waitFor('no follow child left', () => children.size === 0, 10_000);
  }, 600_000);
});
