/**
 * Point-in-time restore against a live PostgreSQL 15 (issue 10 points 3, 4 and 6; docs/POSTGRES.md,
 * "Restore"): follow a primary running pgbench plus a DDL loop; pause it at several moments and
 * record (clock_timestamp(), pg_current_wal_lsn()) and a digest of every table. Afterwards, for each
 * moment, export the timeline at that LSN and at lsnForTimestamp(that time), start an unmodified
 * PostgreSQL 15 on each export, and expect the same digests and a clean pg_amcheck
 * --heapallindexed. One moment is restored the way a user restores "before the bad DELETE": a
 * branch at the time, exported at its branch point. STRATA_FOLLOW_MS sets the workload's length and
 * STRATA_RESTORE_MOMENTS how many moments (npm run test:pg:long: 60 s, 6 moments).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { formatLsn, Repository, type Timeline } from '../../lib';
import { pgAvailability } from '../helpers/pg_cluster';
import { type FollowPrimary, runFollowWorkload, startFollowPrimary, stopPrimary, waitFor } from '../helpers/pg_follow';
import { amcheckAll, type Moment, recordMoment, startOnExport, tableDigests } from '../helpers/pg_restore_check';

const pg = pgAvailability();
const skipNote = pg.ok ? '' : ` — skipped: ${pg.reason}`;
const WORKLOAD_MS = Number(process.env.STRATA_FOLLOW_MS ?? 12_000);
const MOMENTS = Number(process.env.STRATA_RESTORE_MOMENTS ?? 3);
/** Each moment's verification: two exports, two starts, digests and pg_amcheck (generous, for sanitizer runs). */
const PER_MOMENT_MS = 90_000;
const dirs: string[] = [];
const primaries: FollowPrimary[] = [];
afterAll(async () => {
  for (const p of primaries) await p.destroy();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function tempDir(tag: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `strata-restore-${tag}-`));
  dirs.push(d);
  return d;
}

/** Exports `tl` at `lsn`, starts PostgreSQL on it, and returns its digests and pg_amcheck's verdict. */
async function restoreAndCheck(tl: Timeline, lsn: bigint, tag: string): Promise<{ digests: Awaited<ReturnType<typeof tableDigests>>; amcheck: { code: number; report: string }; pages: number }> {
  const dir = path.join(tempDir(tag), 'data');
  const report = await tl.exportPgDatadir(dir, { lsn });
  const cluster = await startOnExport(dir);
  try {
    const digests = await tableDigests(cluster);
    const amcheck = await amcheckAll(cluster);
    // The restored cluster takes writes: it is a database, not a snapshot to look at.
    await cluster.sql('postgres', 'CREATE TABLE restore_probe (x int); INSERT INTO restore_probe VALUES (1); CHECKPOINT');
    return { digests, amcheck, pages: report.pages };
  } finally {
    await cluster.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('point-in-time restore from a followed PostgreSQL 15 primary', () => {
  test.skipIf(!pg.ok)(`pgbench + DDL for ${WORKLOAD_MS / 1000} s, ${MOMENTS} moments: exports by LSN and by time start under vanilla PostgreSQL with the primary's digests and a clean pg_amcheck${skipNote}`, async () => {
    const primary = await startFollowPrimary();
    primaries.push(primary);
    const repo = await Repository.open(tempDir('repo'));
    try {
      const tl = await repo.createTimeline({ tenantId: 'pg', timelineId: 'main' });
      const imported = await tl.importPgDatadir(primary.baseDir);
      const f = repo.followPostgres(tl, { connectionString: primary.connectionString(), slotName: primary.slot, flushIntervalMs: 1_000 });
      await waitFor('streaming', () => f.state === 'streaming', 30_000);

      const moments: Moment[] = [];
      for (let i = 0; i < MOMENTS; i++) {
        await runFollowWorkload(primary, WORKLOAD_MS / MOMENTS);
        moments.push(await recordMoment(primary.cluster));
      }
      // A commit after the last moment: without one, every commit is at or before it and the lookup says 'future'.
      await primary.cluster.sql('postgres', 'CREATE TABLE restore_after_last_moment (x int)');
      const endLsn = await stopPrimary(primary.cluster);
      await waitFor('the follower at the shutdown checkpoint', () => tl.lastRecordLsn >= endLsn, 60_000);
      await f.stop();

      let previous = imported.lsn;
      for (const [i, m] of moments.entries()) {
        // Lookup by time: the last commit at or before the moment, after everything the burst before it committed.
        const found = await tl.lsnForTimestamp(m.at);
        expect(found.kind, `moment ${i} at ${m.at.toISOString()}`).toBe('present');
        expect(found.lsn).toBeGreaterThan(previous);
        expect(found.lsn).toBeLessThanOrEqual(m.lsn);

        const byLsn = await restoreAndCheck(tl, m.lsn, `lsn${i}`);
        expect(byLsn.digests, `digests restored at ${formatLsn(m.lsn)}`).toEqual(m.digests);
        expect(byLsn.amcheck, `pg_amcheck at ${formatLsn(m.lsn)}`).toEqual({ code: 0, report: '' });
        const byTime = await restoreAndCheck(tl, found.lsn, `time${i}`);
        expect(byTime.digests, `digests restored at ${m.at.toISOString()} (${formatLsn(found.lsn)})`).toEqual(m.digests);
        expect(byTime.amcheck.code).toBe(0);
        process.stdout.write(`[restore] moment ${i}: ${m.at.toISOString()} lsn ${formatLsn(m.lsn)}, by time ${formatLsn(found.lsn)}, ` +
          `${m.digests.length} tables, ${byLsn.pages} pages, pg_amcheck clean\n`);
        previous = m.lsn;
      }

      // "As it was at that time": a branch at the middle moment's time, exported at its branch point.
      const middle = moments[Math.floor(MOMENTS / 2)];
      const branch = await repo.createTimeline({ tenantId: 'pg', timelineId: 'before-delete', ancestorTimelineId: 'main', ancestorTimestamp: middle.at });
      expect(branch.ancestorLsn).toBe((await tl.lsnForTimestamp(middle.at)).lsn);
      const restored = await restoreAndCheck(branch, branch.ancestorLsn as bigint, 'branch');
      expect(restored.digests).toEqual(middle.digests);
      expect(restored.amcheck.code).toBe(0);
    } finally {
      await repo.close();
    }
  }, WORKLOAD_MS + MOMENTS * PER_MOMENT_MS + 180_000);
});
