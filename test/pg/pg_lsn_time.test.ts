/**
 * LSN ↔ time against real PostgreSQL 15 (docs/POSTGRES.md, "LSN ↔ time"): a cluster is imported,
 * then runs short bursts of commits (plain ones, and a burst that ends with COMMIT PREPARED)
 * separated by pauses; in each pause the test records PostgreSQL's clock_timestamp() and
 * pg_current_wal_lsn() after the burst's last commit. After the WAL is ingested (both cores), each
 * recorded moment between bursts is 'present' at the end LSN of a commit record that lies after
 * the burst's last commit began and at or before the moment's LSN (so before the next burst's first
 * commit); a moment before the first commit is 'past', one after the last is 'future'; a branch
 * by ancestorTimestamp lands on the same LSN, and `strata lsn-at` prints it.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { formatLsn, type Lsn, parseLsn, Repository, type Timeline } from '../../lib';
import { lastCommitAt } from '../../lib/pg/lsn_time';
import { timelineImpl } from '../../lib/timeline';
import { IMPLEMENTATIONS, NATIVE_SKIP_NOTE } from '../helpers/cores';
import { PgCluster, pgAvailability } from '../helpers/pg_cluster';

const ROOT = path.join(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'strata.js');
const pg = pgAvailability();
const skipNote = pg.ok ? '' : ` — skipped: ${pg.reason}`;
const BURSTS = 4;
const COMMITS_PER_BURST = 3;
/** Rows of the bulk commits: some hundred KB of WAL per burst, so the search spans more than a few records. */
const ROWS_PER_COMMIT = 2000;
/** Between a burst and the next: the moments recorded in it must fall strictly between commits. */
const PAUSE_MS = 50;
const DB = 'postgres';

const dirs: string[] = [];
const repos: Repository[] = [];
let cluster: PgCluster | null = null;
afterAll(async () => {
  for (const r of repos) await r.close().catch(() => undefined);
  await cluster?.destroy();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

interface Moment {
  /** clock_timestamp(), truncated to the millisecond (a Date's precision). */
  at: Date;
  /** pg_current_wal_lsn() with it: at or after the end of every commit before the moment. */
  lsn: Lsn;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * PostgreSQL's clock and flushed WAL position, after at least 2 ms of pg_sleep so that the clock
 * reading truncated to milliseconds is still after the last commit's xact_time (µs).
 */
async function moment(c: PgCluster): Promise<Moment> {
  const [[us, lsn]] = await c.sql(DB, 'SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint, pg_current_wal_lsn() FROM pg_sleep(0.002)');
  return { at: new Date(Number(BigInt(us ?? '') / 1000n)), lsn: parseLsn(lsn ?? '') };
}

/** Runs `sql` in one transaction that also reads where WAL is inserted before its commit record. */
async function commitAfterLsn(c: PgCluster, sql: string): Promise<Lsn> {
  const rows = await c.sql(DB, `${sql}; SELECT pg_current_wal_insert_lsn()`);
  return parseLsn(rows[rows.length - 1][0] ?? '');
}

test.skipIf(!pg.ok)(`bursts of commits between recorded moments: present between bursts, past before, future after; ancestorTimestamp and strata lsn-at agree${NATIVE_SKIP_NOTE}${skipNote}`, async () => {
  const c = await PgCluster.create();
  cluster = c;
  await c.start();
  await c.exec(DB, 'CREATE TABLE burst (n int, note text);');
  await c.stop('fast');
  const timelines: Timeline[] = [];
  for (const impl of IMPLEMENTATIONS) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `strata-pglsntime-${impl}-`));
    dirs.push(dir);
    const repo = await Repository.open(dir, { implementation: impl });
    repos.push(repo);
    const tl = await repo.createTimeline({ tenantId: 'pg', timelineId: 'main' });
    await tl.importPgDatadir(c.dataDir);
    timelines.push(tl);
  }
  const importLsn = timelines[0].lastRecordLsn;

  await c.start();
  const before = await moment(c);
  await sleep(PAUSE_MS);
  /** Per burst: the insert position just before its last commit record, and the moment after it. */
  const bursts: Array<{ lastCommitFrom: Lsn; after: Moment }> = [];
  for (let b = 0; b < BURSTS; b++) {
    let lastCommitFrom: Lsn;
    if (b === 1) {
      // This burst ends with COMMIT PREPARED: its record carries its own xact_time.
      await c.sql(DB, `INSERT INTO burst VALUES (${b}, 'plain')`);
      await c.exec(DB, `BEGIN; INSERT INTO burst VALUES (${b}, 'prepared'); PREPARE TRANSACTION 'lsn_time_${b}';`);
      lastCommitFrom = await c.currentWalInsertLsn();
      await c.exec(DB, `COMMIT PREPARED 'lsn_time_${b}';`);
    } else {
      for (let i = 0; i < COMMITS_PER_BURST - 1; i++) await c.sql(DB, `INSERT INTO burst SELECT ${b}, 'row ' || g FROM generate_series(1, ${ROWS_PER_COMMIT}) g`);
      lastCommitFrom = await commitAfterLsn(c, `INSERT INTO burst VALUES (${b}, 'last')`);
    }
    bursts.push({ lastCommitFrom, after: await moment(c) });
    await sleep(PAUSE_MS);
  }
  await c.stop('fast');

  const answers: string[] = [];
  for (const tl of timelines) {
    await tl.ingestPgWal(c.walDir);
    expect(await tl.lsnForTimestamp(before.at)).toEqual({ kind: 'past', lsn: importLsn });
    const found: string[] = [];
    for (let b = 0; b < BURSTS; b++) {
      const { lastCommitFrom, after } = bursts[b];
      const r = await tl.lsnForTimestamp(after.at);
      if (b === BURSTS - 1) {
        expect(r, `after the last burst (${after.at.toISOString()})`).toEqual({ kind: 'future', lsn: tl.lastRecordLsn });
        continue;
      }
      expect(r.kind, `burst ${b} at ${after.at.toISOString()}`).toBe('present');
      expect(r.lsn, `burst ${b}: after its last commit began at ${formatLsn(lastCommitFrom)}`).toBeGreaterThan(lastCommitFrom);
      expect(r.lsn, `burst ${b}: not after the moment's WAL position ${formatLsn(after.lsn)}`).toBeLessThanOrEqual(after.lsn);
      expect(after.lsn).toBeLessThan(bursts[b + 1].lastCommitFrom);
      // Exactly the end of a commit record: the value stored there names itself.
      expect((await lastCommitAt(timelineImpl(tl), r.lsn))?.lsn).toBe(r.lsn);
      found.push(formatLsn(r.lsn));
    }
    answers.push(found.join(' '));
  }
  // Both cores agree.
  expect(new Set(answers).size).toBe(1);

  // Branch as of the moment after burst 0: the same LSN.
  const repo = repos[0];
  const target = await timelines[0].lsnForTimestamp(bursts[0].after.at);
  const branch = await repo.createTimeline({ tenantId: 'pg', timelineId: 'then', ancestorTimelineId: 'main', ancestorTimestamp: bursts[0].after.at });
  expect(branch.ancestorLsn).toBe(target.lsn);
  expect(await branch.lsnForTimestamp(bursts[0].after.at)).toEqual({ kind: 'future', lsn: target.lsn });

  // The CLI on the same repository (closed first: lsn-at opens it read-only).
  await repo.close();
  const cli = spawnSync(process.execPath, [BIN, 'lsn-at', repo.dir, 'pg', 'main', bursts[2].after.at.toISOString()], { cwd: ROOT, encoding: 'utf8' });
  expect(cli.status, cli.stderr).toBe(0);
  expect(cli.stdout).toBe(`present ${answers[0].split(' ')[2]}\n`);
}, 120_000);
