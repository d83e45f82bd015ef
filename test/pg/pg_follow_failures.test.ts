/**
 * What a follower does when things go wrong (docs/POSTGRES.md, "Following a primary", "Errors"),
 * against real PostgreSQL 15 primaries, and TLS: a cut connection and a restarted primary are retried and
 * the follower continues with every page still equal to the primary's in the end; a wrong
 * password, a role without REPLICATION, another cluster, another PostgreSQL timeline, a missing
 * slot and a slot dropped while following each end in state 'failed' with their documented code,
 * without ingesting anything more (reads above what was ingested wait and time out).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, onTestFinished, test } from 'vitest';
import { isStrataError, Repository, type FollowState, type PgFollower, type Timeline } from '../../lib';
import { timelineImpl } from '../../lib/timeline';
import { chownToPostgres, pgAvailability } from '../helpers/pg_cluster';
import { formatCompareReport } from '../helpers/pg_compare';
import {
  allRelations, compareTimelineWithPrimary, FOLLOW_PASSWORD, type FollowPrimary, runFollowWorkload, slotRestartLsn,
  startFollowPrimary, stopPrimary, terminateWalsenders, waitFor, walFlushLsn,
} from '../helpers/pg_follow';

const pg = pgAvailability();
const skipNote = pg.ok ? '' : ` — skipped: ${pg.reason}`;
const STEP_MS = 2_000;
const BIN = path.join(__dirname, '..', '..', 'bin', 'strata.js');
const FAST_RECONNECT = { reconnectInitialDelayMs: 50, reconnectMaxDelayMs: 500, flushIntervalMs: 500 };
const dirs: string[] = [];
const repos: Repository[] = [];
let primary: FollowPrimary;
let other: FollowPrimary;

beforeAll(async () => {
  if (!pg.ok) return;
  [primary, other] = await Promise.all([startFollowPrimary(), startFollowPrimary()]);
}, 120_000);

afterAll(async () => {
  for (const r of repos) await r.close().catch(() => undefined);
  await primary?.destroy();
  await other?.destroy();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A new repository with a timeline imported from `p`'s base. */
async function importedTimeline(p: FollowPrimary, tag: string): Promise<{ repo: Repository; tl: Timeline; lsn: bigint }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `strata-follow-fail-${tag}-`));
  dirs.push(dir);
  const repo = await Repository.open(dir);
  repos.push(repo);
  const tl = await repo.createTimeline({ tenantId: 'pg', timelineId: tag });
  const { lsn } = await tl.importPgDatadir(p.baseDir);
  return { repo, tl, lsn };
}

function recordStates(f: PgFollower): FollowState[] {
  const states: FollowState[] = [];
  f.on('state', (s) => states.push(s));
  return states;
}

/** The follower failed with `code`, never retried, and the timeline did not move. */
async function expectFailedWith(f: PgFollower, tl: Timeline, code: string, importLsn: bigint): Promise<void> {
  const st = await f.done;
  process.stdout.write(`[follow failure] ${st.state}: ${st.lastError?.message}\n`);
  expect(st.state).toBe('failed');
  expect(st.lastError?.code, st.lastError?.message).toBe(code);
  expect(st.reconnects).toBe(0);
  expect(tl.lastRecordLsn).toBe(importLsn);
  expect(tl.diskConsistentLsn).toBe(importLsn);
}

describe('followPostgres when things go wrong', () => {
  test('strata follow without --connection is a bad argument (exit 3)', () => {
    const r = spawnSync(process.execPath, [BIN, 'follow', os.tmpdir(), 'pg', 'main', '--json'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(3);
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: 'BAD_ARGUMENT' } });
  });

  test.skipIf(!pg.ok)(`a cut connection and a restarted primary: reconnects and continues; every page equals the primary's in the end${skipNote}`, async () => {
    // The tests after this one share the primary: it runs again however this one ends.
    onTestFinished(async () => {
      if (!primary.cluster.running) await primary.cluster.start();
    });
    const { repo, tl } = await importedTimeline(primary, 'restart');
    // A slot of its own, created by the follower: RESERVE_WAL reserves from the last checkpoint's
    // redo LSN, which is still at or below the import LSN (no checkpoint since the base).
    const f = repo.followPostgres(tl, { connectionString: primary.connectionString(), slotName: 'created_here', createSlot: true, ...FAST_RECONNECT });
    const states = recordStates(f);
    const errors: string[] = [];
    f.on('error', (e) => errors.push(e.message));
    await waitFor('streaming', () => f.state === 'streaming', 30_000);
    expect(await slotRestartLsn(primary.cluster, 'created_here')).not.toBeUndefined();
    await runFollowWorkload(primary, STEP_MS);

    expect(await terminateWalsenders(primary.cluster)).toBeGreaterThan(0);
    await waitFor('a reconnect after pg_terminate_backend', () => f.status().reconnects >= 1 && f.state === 'streaming', 30_000);
    expect(f.status().lastError?.code).toBe('REPLICATION_LOST');
    await runFollowWorkload(primary, STEP_MS);

    const port = primary.cluster.port;
    await primary.cluster.stop('fast');
    await waitFor('reconnecting while the primary is down', () => f.state === 'reconnecting', 30_000);
    await primary.cluster.start({ port });
    await waitFor('streaming after the restart', () => f.state === 'streaming' && f.status().reconnects >= 2, 60_000);
    await runFollowWorkload(primary, STEP_MS);

    const relations = await allRelations(primary.cluster);
    const endLsn = await stopPrimary(primary.cluster);
    expect(tl.lastRecordLsn).toBe(endLsn);
    const st = await f.stop(); // while it retries against a stopped server
    expect(st.state).toBe('stopped');
    expect(states.filter((s) => s === 'reconnecting').length).toBeGreaterThanOrEqual(2);
    expect(states[states.length - 1]).toBe('stopped');
    const report = await compareTimelineWithPrimary(tl, primary.cluster.dataDir, endLsn, relations);
    process.stdout.write(`[follow restart] ${st.reconnects} reconnects; errors seen:\n  ${errors.join('\n  ')}\n${formatCompareReport(report)}\n`);
    expect(errors.length).toBeGreaterThanOrEqual(2);
    expect(report.mismatches).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.byAm.heap.compared).toBeGreaterThan(100);
  }, 240_000);

  test.skipIf(!pg.ok)(`a wrong password (scram-sha-256) and a role without REPLICATION: REPLICATION_AUTH, not retried, nothing ingested${skipNote}`, async () => {
    const { repo, tl, lsn } = await importedTimeline(primary, 'password');
    const f = repo.followPostgres(tl, { connectionString: primary.connectionString(`${FOLLOW_PASSWORD}-wrong`), slotName: primary.slot, ...FAST_RECONNECT });
    await expectFailedWith(f, tl, 'REPLICATION_AUTH', lsn);
    expect(f.status().lastError?.message).toMatch(/password authentication failed/);

    // The CLI: exit 12 and the code in its --json error.
    const cliRepo = await importedTimeline(primary, 'cli');
    await cliRepo.repo.close();
    const cli = spawnSync(process.execPath, [BIN, 'follow', cliRepo.repo.dir, 'pg', 'cli', '--connection', primary.connectionString('nope'), '--json'], { encoding: 'utf8' });
    expect(cli.status, cli.stderr).toBe(12);
    expect(JSON.parse(cli.stdout.trim().split('\n').pop() ?? '{}')).toMatchObject({ error: { code: 'REPLICATION_AUTH', exitCode: 12 } });

    await primary.cluster.sql('postgres', "CREATE ROLE no_repl WITH LOGIN PASSWORD 'pw'");
    const g = repo.followPostgres(tl, { connectionString: `postgresql://no_repl:pw@127.0.0.1:${primary.cluster.port}/postgres`, ...FAST_RECONNECT });
    await expectFailedWith(g, tl, 'REPLICATION_AUTH', lsn);
  }, 60_000);

  test.skipIf(!pg.ok)(`another cluster (system identifier) and another PostgreSQL timeline: REPLICATION_MISMATCH, nothing ingested${skipNote}`, async () => {
    const { repo, tl, lsn } = await importedTimeline(primary, 'sysid');
    const f = repo.followPostgres(tl, { connectionString: other.connectionString(), slotName: other.slot, ...FAST_RECONNECT });
    await expectFailedWith(f, tl, 'REPLICATION_MISMATCH', lsn);
    expect(f.status().lastError?.message).toMatch(/another cluster: system identifier \d+, the timeline holds \d+/);

    const impl = timelineImpl(tl);
    await impl.setExtension('pg', { ...impl.extensions.pg, timeline: '2' });
    const g = repo.followPostgres(tl, { connectionString: primary.connectionString(), slotName: primary.slot, ...FAST_RECONNECT });
    await expectFailedWith(g, tl, 'REPLICATION_MISMATCH', lsn);
    expect(g.status().lastError?.message).toMatch(/PostgreSQL timeline 1, the timeline holds timeline 2/);
  }, 60_000);

  test.skipIf(!pg.ok)(`TLS: with hostssl-only replication the follower streams over TLS (certificate checked), without TLS it is refused (REPLICATION_AUTH)${skipNote}`, async () => {
    const c = other.cluster;
    const cert = path.join(c.dataDir, 'server.crt');
    const key = path.join(c.dataDir, 'server.key');
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
    expect(made.status, made.stderr).toBe(0);
    fs.chmodSync(key, 0o600);
    chownToPostgres(cert);
    chownToPostgres(key);
    fs.appendFileSync(path.join(c.dataDir, 'postgresql.conf'), "\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
    fs.writeFileSync(path.join(c.dataDir, 'pg_hba.conf'), 'local all all trust\nlocal replication all trust\nhostssl replication all 127.0.0.1/32 scram-sha-256\n');
    await c.sql('postgres', 'SELECT pg_reload_conf()');
    await waitFor('ssl on', async () => (await c.sql('postgres', 'SHOW ssl'))[0][0] === 'on', 10_000);

    const { repo, tl, lsn } = await importedTimeline(other, 'tls');
    const plain = repo.followPostgres(tl, { connectionString: other.connectionString(), slotName: other.slot, ...FAST_RECONNECT });
    await expectFailedWith(plain, tl, 'REPLICATION_AUTH', lsn);
    expect(plain.status().lastError?.message).toMatch(/no encryption/);

    const f = repo.followPostgres(tl, { connectionString: other.connectionString(), slotName: other.slot, ssl: { ca: fs.readFileSync(cert, 'utf8') }, ...FAST_RECONNECT });
    await waitFor('streaming over TLS', () => f.state === 'streaming', 30_000);
    const rows = await c.sql('postgres', "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.backend_type = 'walsender'");
    expect(rows).toEqual([['t']]);
    await c.sql('postgres', 'CREATE TABLE over_tls AS SELECT g FROM generate_series(1, 1000) g');
    const target = await walFlushLsn(c);
    await waitFor('the table over TLS', () => tl.lastRecordLsn >= target, 30_000);
    expect((await f.stop()).state).toBe('stopped');
  }, 60_000);

  test.skipIf(!pg.ok)(`a slot that does not exist: REPLICATION_SLOT (createSlot not asked for)${skipNote}`, async () => {
    const { repo, tl, lsn } = await importedTimeline(primary, 'noslot');
    const f = repo.followPostgres(tl, { connectionString: primary.connectionString(), slotName: 'no_such_slot', ...FAST_RECONNECT });
    await expectFailedWith(f, tl, 'REPLICATION_SLOT', lsn);
    expect(f.status().lastError?.message).toMatch(/"no_such_slot" does not exist/);
    expect(await slotRestartLsn(primary.cluster, 'no_such_slot')).toBeUndefined();
  }, 60_000);

  test.skipIf(!pg.ok)(`the slot dropped behind the follower's back: REPLICATION_SLOT, nothing ingested after, reads above wait and time out${skipNote}`, async () => {
    const { repo, tl, lsn } = await importedTimeline(primary, 'dropped');
    const f = repo.followPostgres(tl, { connectionString: primary.connectionString(), slotName: primary.slot, ...FAST_RECONNECT });
    await waitFor('streaming', () => f.state === 'streaming', 30_000);
    await runFollowWorkload(primary, STEP_MS);
    // An active slot cannot be dropped: end its walsender and drop it before the follower is back.
    await primary.cluster.sql('postgres', `DO $$
      BEGIN
        FOR i IN 1..1000 LOOP
          PERFORM pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '${primary.slot}' AND active_pid IS NOT NULL;
          BEGIN
            PERFORM pg_drop_replication_slot('${primary.slot}');
            RETURN;
          EXCEPTION WHEN object_in_use THEN
            PERFORM pg_sleep(0.005);
          END;
        END LOOP;
        RAISE EXCEPTION 'the slot stayed in use';
      END $$`);
    const st = await f.done;
    process.stdout.write(`[follow failure] ${st.state} after ${st.reconnects} reconnect(s): ${st.lastError?.message}\n`);
    expect(st.state).toBe('failed');
    expect(st.lastError?.code, st.lastError?.message).toBe('REPLICATION_SLOT');
    expect(st.lastError?.message).toMatch(/does not exist any more/);
    expect(tl.lastRecordLsn).toBeGreaterThan(lsn);
    const at = tl.lastRecordLsn;
    await runFollowWorkload(primary, 500);
    expect(tl.lastRecordLsn).toBe(at);
    const err = await tl.getPage({ spcOid: 1663, dbOid: 5, relNumber: 1259, forkNum: 0, blockNum: 0 }, at + 8192n, { timeoutMs: 200 }).catch((e: unknown) => e);
    expect(isStrataError(err, 'LSN_TIMEOUT')).toBe(true);
    await primary.cluster.sql('postgres', `SELECT pg_create_physical_replication_slot('${primary.slot}', true)`);
  }, 120_000);
});
