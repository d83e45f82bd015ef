/**
 * A primary to follow (issue 10, docs/POSTGRES.md "Following a primary"): a PostgreSQL 15
 * cluster set up for physical replication the way a user would, plus a workload and the checks
 * the follow tests, the CLI tests and the W9 bench share.
 *
 * `startFollowPrimary()`:
 * - initdb with max_wal_senders, a physical slot, and WAL that is really recycled: wal_keep_size 0
 *   and a small max_wal_size, so only the slot keeps WAL a follower still needs (the workload
 *   runs CHECKPOINTs, which remove segments behind the slot's restart_lsn);
 * - pg_hba.conf: unix-socket connections trusted (the tests' psql), TCP connections need
 *   scram-sha-256, replication as the role `strata` (REPLICATION LOGIN, password below);
 * - pgbench -i, the slot (reserving WAL; `extraSlots` too), a clean stop, a copy of the stopped data directory as
 *   the import base (`baseDir`: exact at its shutdown checkpoint), then the primary starts again.
 * `runFollowWorkload(primary, ms)`: pgbench (2 clients) plus a DDL loop (CREATE TABLE, INSERT,
 * CREATE INDEX, UPDATE, DELETE, VACUUM, ALTER TABLE, TRUNCATE, DROP TABLE) and CHECKPOINTs (every
 * other one followed by pg_switch_wal()), for
 * `ms`; `startFollowWorkload(primary)` runs the same until its `stop()`. No sequences: nextval() changes pages without WAL (docs/POSTGRES.md), which would make the
 * final comparison accept less.
 * `stopPrimaryAndCompare…` helpers: stop cleanly, find the shutdown checkpoint's end, compare every
 * page with compareWithDataDir.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { formatLsn, isStrataError, parseLsn, type Lsn, type Timeline } from '../../lib';
import { PgCluster, type PgRelation } from './pg_cluster';
import { compareWithDataDir, type CompareReport } from './pg_compare';
import { readCheckpoint } from './pg_fixture';

export const FOLLOW_ROLE = 'strata';
export const FOLLOW_PASSWORD = 'follow-secret';
export const FOLLOW_SLOT = 'strata_slot';
/** Between CHECKPOINTs of the workload: each one lets PostgreSQL remove WAL behind the slot. */
const CHECKPOINT_EVERY_MS = 3_000;
const PGBENCH_CLIENTS = 2;

export interface FollowPrimary {
  cluster: PgCluster;
  /** The stopped copy to import (its shutdown checkpoint is where the timeline starts). */
  baseDir: string;
  slot: string;
  /** A connection string for the follower over TCP with scram-sha-256 (another password if given). */
  connectionString(password?: string): string;
  destroy(): Promise<void>;
}

const PRIMARY_CONF: Record<string, string> = {
  max_wal_senders: '8',
  max_replication_slots: '8',
  wal_keep_size: '0',
  max_wal_size: "'64MB'",
  min_wal_size: "'32MB'",
  password_encryption: "'scram-sha-256'",
  wal_sender_timeout: "'60s'",
  // pgbench's clients, psql calls, the follower and the tests' walsender queries.
  max_connections: '30',
};

/** Trusted unix socket for the tests' psql; scram-sha-256 over TCP, replication included. */
const PG_HBA = [
  'local all all trust',
  'local replication all trust',
  'host replication all 127.0.0.1/32 scram-sha-256',
  'host all all 127.0.0.1/32 scram-sha-256',
  '',
].join('\n');

export async function startFollowPrimary(opts: { scale?: number; extraConf?: Record<string, string>; extraSlots?: string[] } = {}): Promise<FollowPrimary> {
  const cluster = await PgCluster.create({ extraConf: { ...PRIMARY_CONF, ...(opts.extraConf ?? {}) } });
  try {
    fs.writeFileSync(path.join(cluster.dataDir, 'pg_hba.conf'), PG_HBA);
    await cluster.start();
    await cluster.pgbench(['-i', '-q', '-s', String(opts.scale ?? 1)]);
    await cluster.sql('postgres', `CREATE ROLE ${FOLLOW_ROLE} WITH REPLICATION LOGIN PASSWORD '${FOLLOW_PASSWORD}'`);
    for (const slot of [FOLLOW_SLOT, ...(opts.extraSlots ?? [])]) await cluster.sql('postgres', `SELECT pg_create_physical_replication_slot('${slot}', true)`);
    await cluster.stop('fast');
    const baseDir = path.join(cluster.rootDir, 'base');
    await fs.promises.cp(cluster.dataDir, baseDir, { recursive: true });
    await cluster.start();
    return {
      cluster,
      baseDir,
      slot: FOLLOW_SLOT,
      connectionString: (password = FOLLOW_PASSWORD) => `postgresql://${FOLLOW_ROLE}:${encodeURIComponent(password)}@127.0.0.1:${cluster.port}/postgres`,
      destroy: () => cluster.destroy(),
    };
  } catch (e) {
    await cluster.destroy();
    throw e;
  }
}

/** The slot's restart_lsn (null when it holds none), or undefined when the slot does not exist. */
export async function slotRestartLsn(cluster: PgCluster, slot = FOLLOW_SLOT): Promise<Lsn | null | undefined> {
  const rows = await cluster.sql('postgres', `SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = '${slot}'`);
  if (rows.length === 0) return undefined;
  return rows[0][0] === null ? null : parseLsn(rows[0][0]);
}

/**
 * The start LSN of the oldest WAL segment file left in pg_wal/: past a follower's start it shows
 * PostgreSQL did remove or recycle WAL during the run (so only the slot kept what was needed).
 */
export function oldestWalSegmentLsn(cluster: PgCluster): Lsn {
  const SEGMENT_BYTES = 16n * 1024n * 1024n;
  const SEGMENTS_PER_XLOGID = 256n;
  let oldest: bigint | null = null;
  for (const name of fs.readdirSync(cluster.walDir)) {
    const m = /^[0-9A-F]{8}([0-9A-F]{8})([0-9A-F]{8})$/.exec(name);
    if (m === null) continue;
    const segno = BigInt(`0x${m[1]}`) * SEGMENTS_PER_XLOGID + BigInt(`0x${m[2]}`);
    if (oldest === null || segno < oldest) oldest = segno;
  }
  if (oldest === null) throw new Error(`no WAL segment in ${cluster.walDir}`);
  return oldest * SEGMENT_BYTES;
}

/**
 * Switch segments and checkpoint until PostgreSQL has removed every WAL segment before `lsn`
 * (it can only once the slot's restart_lsn, i.e. the follower's flush, has passed them); returns
 * the oldest segment's start. A slow run (sanitizers) may not have checkpointed on its own.
 */
export async function recycleWalPast(cluster: PgCluster, lsn: Lsn, timeoutMs: number): Promise<Lsn> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const oldest = oldestWalSegmentLsn(cluster);
    if (oldest > lsn || Date.now() > deadline) return oldest;
    await cluster.sql('postgres', 'SELECT pg_switch_wal()');
    await cluster.sql('postgres', 'CHECKPOINT');
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** pg_current_wal_flush_lsn(): what a walsender may send. */
export async function walFlushLsn(cluster: PgCluster): Promise<Lsn> {
  const rows = await cluster.sql('postgres', 'SELECT pg_current_wal_flush_lsn()');
  return parseLsn(rows[0][0] ?? '');
}

/** Terminate every physical walsender (the follower's connection is cut); returns how many. */
export async function terminateWalsenders(cluster: PgCluster): Promise<number> {
  const rows = await cluster.sql('postgres', "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE backend_type = 'walsender'");
  return Number(rows[0][0]);
}

/** One iteration of the DDL loop: tables come and go, with indexes, updates, deletes and VACUUM. */
function ddlStep(run: string, i: number): string {
  const t = `follow_ddl_${run}_${i}`;
  const lines = [
    `CREATE TABLE ${t} (id int PRIMARY KEY, v text, n int);`,
    `INSERT INTO ${t} SELECT g, md5(g::text), g % 7 FROM generate_series(1, 1500) g;`,
    `CREATE INDEX ON ${t} (n);`,
    `UPDATE ${t} SET v = v || 'x' WHERE id % 3 = 0;`,
    `DELETE FROM ${t} WHERE id % 5 = 0;`,
    `VACUUM ${t};`,
    `ALTER TABLE ${t} ADD COLUMN extra int DEFAULT 7;`,
    `UPDATE ${t} SET n = n + 1 WHERE id % 11 = 0;`,
  ];
  if (i % 3 === 2) lines.push(`TRUNCATE ${t};`, `INSERT INTO ${t} SELECT g, 'again', 1 FROM generate_series(1, 300) g;`);
  if (i >= 2) lines.push(`DROP TABLE follow_ddl_${run}_${i - 2};`);
  return lines.join('\n');
}

export interface WorkloadReport {
  pgbenchOutput: string;
  ddlSteps: number;
  checkpoints: number;
}

/** Workload runs in this process so far: their tables get distinct names. */
let workloadRuns = 0;

/** pgbench plus the DDL loop and CHECKPOINTs for `ms`; resolves when all of it has finished. */
export async function runFollowWorkload(primary: FollowPrimary, ms: number): Promise<WorkloadReport> {
  const until = Date.now() + ms;
  return followWorkload(primary, () => until);
}

export interface RunningWorkload {
  /** Ends the workload (each loop finishes its current step); resolves with what ran. */
  stop: () => Promise<WorkloadReport>;
}

/**
 * The same workload until `stop()`: for tests whose length depends on how fast the follower goes
 * (a fixed length can end the WAL while a test still waits for the follower to flush past a point).
 */
export function startFollowWorkload(primary: FollowPrimary): RunningWorkload {
  let deadline = Number.POSITIVE_INFINITY;
  const done = followWorkload(primary, () => deadline);
  return {
    stop: () => {
      deadline = Math.min(deadline, Date.now());
      return done;
    },
  };
}

/** pgbench rounds of at most this long while the workload has no end yet (how soon `stop()` takes). */
const OPEN_PGBENCH_ROUND_S = 3;

/** The workload's three loops, each running while `Date.now()` is before `deadline()`. */
async function followWorkload(primary: FollowPrimary, deadline: () => number): Promise<WorkloadReport> {
  const c = primary.cluster;
  const run = `${process.pid}_${workloadRuns++}`;
  const going = (ahead = 0): boolean => Date.now() + ahead < deadline();
  let pgbenchOutput = '';
  let ddlSteps = 0;
  let checkpoints = 0;
  const bench = (async () => {
    do {
      const left = deadline() - Date.now();
      const seconds = Number.isFinite(left) ? Math.max(1, Math.round(left / 1000)) : OPEN_PGBENCH_ROUND_S;
      pgbenchOutput += await c.pgbench(['-n', '-c', String(PGBENCH_CLIENTS), '-j', String(PGBENCH_CLIENTS), '-T', String(seconds)]);
    } while (going());
  })();
  const ddl = (async () => {
    while (going()) await c.exec('postgres', ddlStep(run, ddlSteps++));
  })();
  const checkpointer = (async () => {
    while (going(CHECKPOINT_EVERY_MS)) {
      await new Promise((r) => setTimeout(r, CHECKPOINT_EVERY_MS));
      if (!going()) break;
      await c.checkpoint();
      // Every other time also an XLOG_SWITCH: the rest of that segment streams as padding the decoder skips.
      if (checkpoints % 2 === 1) await c.sql('postgres', 'SELECT pg_switch_wal()');
      checkpoints++;
    }
  })();
  await Promise.all([bench, ddl, checkpointer]);
  return { pgbenchOutput, ddlSteps, checkpoints };
}

/** Every relation with storage in every database that takes connections (for the masks). */
export async function allRelations(cluster: PgCluster): Promise<PgRelation[]> {
  const out: PgRelation[] = [];
  for (const db of await cluster.databases()) if (db.allowConnections) out.push(...(await cluster.relations(db.name)));
  return out;
}

/** Stops the primary cleanly; returns the end LSN of its shutdown checkpoint (what its files are as of). */
export async function stopPrimary(cluster: PgCluster): Promise<Lsn> {
  await cluster.stop('fast');
  const ck = await readCheckpoint(cluster.dataDir, await cluster.controlData());
  return ck.checkpointEndLsn;
}

/** Polls `cond` every 50 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every page and size of the stopped primary's files against the timeline at `lsn`. */
export async function compareTimelineWithPrimary(tl: Timeline, dataDir: string, lsn: Lsn, relations: PgRelation[]): Promise<CompareReport> {
  return compareWithDataDir(
    dataDir,
    async (key) => {
      try {
        return await tl.getPage(key, lsn);
      } catch (e) {
        if (isStrataError(e, 'PAGE_NOT_FOUND')) return null;
        throw e;
      }
    },
    async (rel) => {
      try {
        return await tl.getRelSize(rel, lsn);
      } catch (e) {
        if (isStrataError(e, 'REL_NOT_FOUND')) return null;
        throw e;
      }
    },
    {
      relations,
      sourceRelations: async () => (await tl.listRelations(lsn)).map(({ spcOid, dbOid, relNumber, forkNum }) => ({ spcOid, dbOid, relNumber, forkNum })),
    },
  );
}

export { formatLsn };
