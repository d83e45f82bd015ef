/**
 * The PostgreSQL workloads of issue 14's oracle tests (docs/POSTGRES.md, "Oracle tests: how they
 * run"), small enough for `npm test`: a base load (`pgbench -i`), then a short pgbench run and a
 * maintenance mix that makes PostgreSQL write every record kind the redo must handle (heap, heap2,
 * btree incl. splits/dedup/page deletion/simple deletion, XLOG FPI, sequence, storage create and
 * truncate, database, TOAST, speculative insertion, two-phase commit, relation drops at COMMIT,
 * COMMIT PREPARED and ABORT, both CREATE DATABASE strategies).
 *
 * API: `loadBase(cluster)`, `runWorkload(cluster, steps?)` → `WorkloadReport`, `workloadSteps(scale)`
 * and `WORKLOAD_STEPS` (the steps in order, at a size), the constants below.
 *
 * Deterministic where PostgreSQL lets it be: autovacuum is off (pg_cluster.ts), pgbench runs a fixed
 * number of transactions with a fixed --random-seed and all SQL data comes from generate_series/md5,
 * not random(). The two pgbench clients still interleave as the scheduler decides, so the WAL
 * differs from run to run in its details, not in its mix.
 *
 * The text of this file is part of the fixture cache key (pg_fixture.ts): any edit rebuilds fixtures.
 */
import type { PgCluster } from './pg_cluster';

/** pgbench -i scale: 100 000 pgbench_accounts rows (≈ 1 640 heap pages, 13 MB) per unit. */
export const BASE_SCALE = 1;
/** pgbench's --random-seed, for the same transaction mix on every run. */
export const PGBENCH_SEED = 20240514;
export const PGBENCH_CLIENTS = 2;
/** Transactions per client (-t, not -T: a fixed amount of work, not of time). */
export const PGBENCH_TRANSACTIONS = 1000;
/** The database pgbench and most of the mix run in. */
export const WORKLOAD_DB = 'postgres';

export interface WorkloadStep {
  name: string;
  /** Database the SQL runs in ('' for pgbench steps). */
  db: string;
  /** psql script (run statement by statement, autocommit) or null for a pgbench step. */
  sql: string | null;
  /** pgbench arguments (connection options are added), or null. */
  pgbench: string[] | null;
}

export interface WorkloadReport {
  steps: { name: string; seconds: number }[];
  seconds: number;
}

/** Loads the base data the import image holds: the four pgbench tables with their primary keys. */
export async function loadBase(cluster: PgCluster): Promise<void> {
  await cluster.pgbench(['-i', '-s', String(BASE_SCALE), '-q', WORKLOAD_DB]);
}

function sqlStep(name: string, sql: string, db = WORKLOAD_DB): WorkloadStep {
  return { name, db, sql, pgbench: null };
}

function pgbenchStep(name: string, transactions: number, seed: number): WorkloadStep {
  const c = String(PGBENCH_CLIENTS);
  return {
    name,
    db: '',
    sql: null,
    pgbench: ['-c', c, '-j', c, '-t', String(transactions), `--random-seed=${seed}`, '-n', WORKLOAD_DB],
  };
}

/** A 6 400-byte incompressible-ish text value (hex digits of md5s): TOASTed out of line with STORAGE EXTERNAL. */
const TOAST_VALUE = (seed: string): string =>
  `(SELECT string_agg(md5(${seed} || '-' || j::text), '') FROM generate_series(1, 200) j)`;

/**
 * The steps, in order. `scale` multiplies every row and transaction count (1 = the sizes below;
 * the 'consistency' fixture uses less because every heap/btree record then carries 8 KB images).
 */
export function workloadSteps(scale = 1): WorkloadStep[] {
  const n = (x: number): number => Math.max(1, Math.round(x * scale));
  // Row counts of table t and its ranges, scaled together.
  const tRows = n(20000);
  const killRows = n(5000);
  const newDbWrites = `
CREATE TABLE w (id int PRIMARY KEY, v text);
INSERT INTO w SELECT i, md5(i::text) FROM generate_series(1, ${n(3000)}) i;
UPDATE w SET v = v || 'x' WHERE id % 7 = 0;
DELETE FROM w WHERE id % 11 = 0;
VACUUM w;
`;
  return [
    pgbenchStep('pgbench run', n(PGBENCH_TRANSACTIONS), PGBENCH_SEED),
    // A checkpoint in the middle: the next touch of every page carries a full-page image again.
    sqlStep('checkpoint', 'CHECKPOINT;'),
    sqlStep(
      'create index',
      `
CREATE INDEX pgbench_accounts_abalance ON pgbench_accounts (abalance);
CREATE INDEX pgbench_history_aid ON pgbench_history (aid);
`,
    ),
    // Table t: inserts with index splits and a low-cardinality index (deduplication); VACUUM sets
    // all-visible; a third updated (HOT and non-HOT, clearing VM bits), half and the top fifth
    // deleted, then VACUUM (PRUNE/VACUUM/VISIBLE, btree VACUUM and page deletion). Once another
    // transaction has passed, a second VACUUM puts the deleted btree pages in the FSM and the new
    // rows after it split the btree into them (Btree/REUSE_PAGE).
    sqlStep(
      'insert/update/delete/vacuum',
      `
CREATE TABLE t (id int PRIMARY KEY, k int NOT NULL, pad text);
CREATE INDEX t_k ON t (k);
INSERT INTO t SELECT i, i % 10, md5(i::text) FROM generate_series(1, ${tRows}) i;
VACUUM t;
UPDATE t SET pad = pad || '+' WHERE id % 3 = 0;
UPDATE t SET k = k + 1 WHERE id % 9 = 0;
DELETE FROM t WHERE id % 2 = 0;
DELETE FROM t WHERE id > ${Math.round(tRows * 0.8)};
VACUUM t;
DELETE FROM pgbench_accounts WHERE aid % ${Math.max(2, Math.round(50 / scale))} = 0;
VACUUM pgbench_accounts;
DELETE FROM t WHERE id % 10 = 1;
VACUUM t;
INSERT INTO t SELECT i, i % 10, md5(i::text) FROM generate_series(${tRows * 2}, ${tRows * 2 + Math.round(tRows * 0.3)}) i;
`,
    ),
    // VACUUM truncating a table whose tail is empty (Storage/TRUNCATE of the heap and its VM).
    sqlStep(
      'vacuum truncate',
      `
CREATE TABLE trunc_t (id int PRIMARY KEY, pad text);
INSERT INTO trunc_t SELECT i, md5(i::text) FROM generate_series(1, ${n(8000)}) i;
VACUUM trunc_t;
DELETE FROM trunc_t WHERE id > ${n(2000)};
VACUUM trunc_t;
`,
    ),
    // Btree simple deletion (Btree/DELETE): an index scan marks the deleted rows' items LP_DEAD,
    // then inserts into the same leaf pages remove them instead of splitting.
    sqlStep(
      'btree simple deletion',
      `
CREATE TABLE kill_t (id int PRIMARY KEY, v int);
INSERT INTO kill_t SELECT i, i FROM generate_series(1, ${killRows}) i;
DELETE FROM kill_t WHERE id BETWEEN ${Math.round(killRows * 0.2)} AND ${Math.round(killRows * 0.6)};
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT count(*) FROM kill_t WHERE id BETWEEN ${Math.round(killRows * 0.2)} AND ${Math.round(killRows * 0.6)};
RESET enable_seqscan;
RESET enable_bitmapscan;
INSERT INTO kill_t SELECT i, -i FROM generate_series(${Math.round(killRows * 0.2)}, ${Math.round(killRows * 0.6)}) i;
`,
    ),
    // Two-phase commit: a row lock that follows an update chain (Heap2/LOCK_UPDATED) while the
    // update's transaction is prepared; COMMIT PREPARED of a DROP TABLE (relations dropped by a
    // PREPARED variant); a rolled-back CREATE TABLE (Transaction/ABORT dropping its relation).
    sqlStep(
      'two-phase, lock updated, abort',
      `
CREATE TABLE locked_t (id int PRIMARY KEY, v int);
INSERT INTO locked_t SELECT i, 0 FROM generate_series(1, 100) i;
BEGIN;
UPDATE locked_t SET v = 1 WHERE id <= 10;
PREPARE TRANSACTION 'strata_upd';
SELECT count(*) FROM (SELECT id FROM locked_t WHERE id <= 10 FOR KEY SHARE) s;
COMMIT PREPARED 'strata_upd';
CREATE TABLE drop_2pc (id int);
INSERT INTO drop_2pc SELECT generate_series(1, 1000);
BEGIN;
DROP TABLE drop_2pc;
PREPARE TRANSACTION 'strata_drop';
COMMIT PREPARED 'strata_drop';
BEGIN;
CREATE TABLE aborted_t (id int PRIMARY KEY);
INSERT INTO aborted_t SELECT generate_series(1, 1000);
ROLLBACK;
`,
    ),
    sqlStep(
      'toast',
      `
CREATE TABLE toasty (id int PRIMARY KEY, doc text);
ALTER TABLE toasty ALTER COLUMN doc SET STORAGE EXTERNAL;
INSERT INTO toasty SELECT i, ${TOAST_VALUE('i::text')} FROM generate_series(1, ${n(60)}) i;
UPDATE toasty SET doc = ${TOAST_VALUE("'u' || id::text")} WHERE id % 4 = 0;
DELETE FROM toasty WHERE id % 5 = 0;
VACUUM toasty;
`,
    ),
    sqlStep(
      'upsert (speculative insertion)',
      `
CREATE TABLE upsert_t (k int PRIMARY KEY, v int NOT NULL);
INSERT INTO upsert_t SELECT i, 0 FROM generate_series(1, ${n(500)}) i;
INSERT INTO upsert_t SELECT i, 1 FROM generate_series(${n(250)}, ${n(750)}) i ON CONFLICT (k) DO UPDATE SET v = upsert_t.v + excluded.v;
INSERT INTO upsert_t SELECT i, 2 FROM generate_series(${n(700)}, ${n(800)}) i ON CONFLICT DO NOTHING;
`,
    ),
    sqlStep(
      'sequence',
      `
CREATE SEQUENCE seq_a;
SELECT count(nextval('seq_a')) FROM generate_series(1, 100);
CREATE TABLE serial_t (id bigserial PRIMARY KEY, v text);
INSERT INTO serial_t (v) SELECT md5(i::text) FROM generate_series(1, ${n(1000)}) i;
`,
    ),
    sqlStep(
      'unlogged',
      `
CREATE UNLOGGED TABLE unlogged_t (id int PRIMARY KEY, v text);
INSERT INTO unlogged_t SELECT i, md5(i::text) FROM generate_series(1, 2000) i;
`,
    ),
    sqlStep('vacuum freeze', 'VACUUM FREEZE;'),
    sqlStep('cluster', 'CLUSTER t USING t_pkey;'),
    sqlStep(
      'reindex',
      `
REINDEX INDEX t_k;
REINDEX TABLE pgbench_branches;
`,
    ),
    sqlStep(
      'truncate',
      `
TRUNCATE pgbench_history;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) SELECT 1, 1, i, i, '2024-01-01' FROM generate_series(1, ${n(500)}) i;
`,
    ),
    sqlStep(
      'drop table',
      `
CREATE TABLE drop_me (id int PRIMARY KEY, v text);
INSERT INTO drop_me SELECT i, md5(i::text) FROM generate_series(1, ${n(3000)}) i;
DROP TABLE drop_me;
`,
    ),
    sqlStep('create database wal_log', 'CREATE DATABASE db_wal_log STRATEGY wal_log;'),
    sqlStep('create database file_copy', 'CREATE DATABASE db_file_copy STRATEGY file_copy;'),
    sqlStep('writes in db_wal_log', newDbWrites, 'db_wal_log'),
    sqlStep('writes in db_file_copy', newDbWrites, 'db_file_copy'),
    // Last: the pages the maintenance touched get OLTP changes again.
    pgbenchStep('pgbench tail', n(PGBENCH_TRANSACTIONS / 4), PGBENCH_SEED + 1),
  ];
}

/** The full-size steps (scale 1). */
export const WORKLOAD_STEPS: readonly WorkloadStep[] = workloadSteps(1);

/** Runs every step of WORKLOAD_STEPS in order on a running cluster. */
export async function runWorkload(
  cluster: PgCluster,
  steps: readonly WorkloadStep[] = WORKLOAD_STEPS,
): Promise<WorkloadReport> {
  const report: WorkloadReport = { steps: [], seconds: 0 };
  const t0 = Date.now();
  for (const step of steps) {
    const s0 = Date.now();
    if (step.pgbench) await cluster.pgbench(step.pgbench);
    else if (step.sql !== null) await cluster.exec(step.db, step.sql);
    report.steps.push({ name: step.name, seconds: (Date.now() - s0) / 1000 });
  }
  report.seconds = (Date.now() - t0) / 1000;
  return report;
}
