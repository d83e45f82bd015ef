/**
 * A PostgreSQL 15 cluster whose WAL exercises everything Strata keeps besides relation pages
 * (docs/POSTGRES.md, "CLOG", "Multixacts", "Two-phase state files", "Checkpoint and control
 * state"), cached like the other fixtures (fixtureCacheRoot()/state-<hash>/: base/, wal/, final/,
 * meta.json, COMPLETE):
 *
 *   - 32 000 one-xid transactions, so xids cross a pg_xact page (CLOG ZEROPAGE), then a transaction
 *     with 200 subtransactions across that boundary (every tenth rolled back: ABORT records of
 *     subtransactions), and a top-level ROLLBACK of a tree with subtransactions
 *   - 3 500 multixacts (locks in subtransactions over the parent's, and prepared and plain lockers
 *     of the same rows), so offsets and members cross pages (ZERO_OFF_PAGE, ZERO_MEM_PAGE, members
 *     split across pages), and a prepared transaction with 500 subtransactions
 *   - VACUUM FREEZE of every database (template0 included), so PostgreSQL truncates multixacts
 *     (TRUNCATE_ID) and moves oldestMulti
 *   - two-phase commit: COMMIT PREPARED, ROLLBACK PREPARED of a tree with a subtransaction, and one
 *     transaction left prepared at shutdown (its pg_twophase file is in final/)
 *   - 9 000 large objects (XLOG NEXTOID), an online CHECKPOINT in the middle
 *   - CREATE DATABASE … STRATEGY file_copy (the template's pg_filenode.map copied) and a database
 *     created and dropped (its pg_filenode.map gone)
 *
 * base/ is a fresh initdb stopped cleanly; final/ is after the workload and a fast stop.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chownToPostgres, DEFAULT_SETTINGS, PgCluster, pgVersionString, readControlData } from './pg_cluster';
import { fixtureCacheRoot, readCheckpoint } from './pg_fixture';

/** Transactions committed one by one before the subtransaction tree: past xid 32768, a pg_xact page boundary. */
export const XID_TARGET_BEFORE_TREE = 32_700;

/** Each entry runs as one psql script in database `db`. */
const STEPS: Array<{ db: string; sql: string }> = [
  { db: 'postgres', sql: `
CREATE TABLE lk (id int PRIMARY KEY, v int);
INSERT INTO lk SELECT g, 0 FROM generate_series(1, 3000) g;
CREATE TABLE sx (i int);
-- A multixact per row: the parent's share lock and a subtransaction's update lock (a backend reuses
-- a multixact for the same member set, so each row gets its own subtransaction).
BEGIN;
SELECT count(*) FROM (SELECT 1 FROM lk WHERE id <= 2500 FOR SHARE) s;
DO $$ BEGIN
  FOR i IN 1..2500 LOOP
    BEGIN PERFORM 1 FROM lk WHERE id = i FOR UPDATE; EXCEPTION WHEN raise_exception THEN NULL; END;
  END LOOP;
END $$;
COMMIT;
` },
  { db: 'postgres', sql: 'ALTER DATABASE template0 WITH ALLOW_CONNECTIONS true;' },
  { db: 'template0', sql: 'VACUUM FREEZE;' },
  { db: 'template1', sql: 'VACUUM FREEZE;' },
  { db: 'postgres', sql: 'VACUUM FREEZE;' },
  { db: 'postgres', sql: 'ALTER DATABASE template0 WITH ALLOW_CONNECTIONS false;' },
  // Relation maps: copied with a FILE_COPY database, gone with a dropped one.
  { db: 'postgres', sql: 'CREATE DATABASE copied STRATEGY file_copy;\nCREATE DATABASE gone;\nDROP DATABASE gone;' },
  { db: 'postgres', sql: `DO $$ BEGIN WHILE txid_current() < ${XID_TARGET_BEFORE_TREE} LOOP COMMIT; END LOOP; END $$;` },
  { db: 'postgres', sql: `
DO $$ BEGIN
  FOR i IN 1..200 LOOP
    BEGIN
      INSERT INTO sx VALUES (i);
      IF i % 10 = 0 THEN RAISE EXCEPTION 'roll back subtransaction %', i; END IF;
    EXCEPTION WHEN raise_exception THEN NULL;
    END;
  END LOOP;
END $$;
BEGIN; INSERT INTO sx VALUES (1000); SAVEPOINT s1; INSERT INTO sx VALUES (1001); RELEASE s1;
SAVEPOINT s2; INSERT INTO sx VALUES (1002); ROLLBACK;
CHECKPOINT;
BEGIN; UPDATE lk SET v = 1 WHERE id = 1; PREPARE TRANSACTION 'p_commit';
COMMIT PREPARED 'p_commit';
BEGIN; INSERT INTO sx VALUES (-1); SAVEPOINT a; INSERT INTO sx VALUES (-2); PREPARE TRANSACTION 'p_abort';
ROLLBACK PREPARED 'p_abort';
-- Prepared and plain lockers of the same 500 rows: a multixact of 2 members per row (a prepared
-- subtransaction each), then one of 3 members per row.
BEGIN; INSERT INTO sx VALUES (-3); SAVEPOINT a; INSERT INTO sx VALUES (-4);
SELECT count(*) FROM (SELECT 1 FROM lk WHERE id > 2500 FOR KEY SHARE) s; PREPARE TRANSACTION 'left_open';
BEGIN;
DO $$ BEGIN
  FOR i IN 2501..3000 LOOP
    BEGIN PERFORM 1 FROM lk WHERE id = i FOR SHARE; EXCEPTION WHEN raise_exception THEN NULL; END;
  END LOOP;
END $$;
PREPARE TRANSACTION 'p_share';
BEGIN; SELECT count(*) FROM (SELECT 1 FROM lk WHERE id > 2500 FOR KEY SHARE) s; COMMIT;
COMMIT PREPARED 'p_share';
SELECT count(*) FROM (SELECT lo_create(0) FROM generate_series(1, 9000)) s;
INSERT INTO sx VALUES (2000);
` },
];

const OPTIONS = { extraConf: { max_prepared_transactions: '4' } } as const;
const COMPLETE = 'COMPLETE';

export interface StateFixture {
  baseDir: string;
  walDir: string;
  finalDir: string;
  /** End of base/'s shutdown checkpoint record: the import LSN. */
  baseEndLsn: bigint;
  /** Start and end of final/'s shutdown checkpoint record. */
  finalCheckpointLsn: bigint;
  finalEndLsn: bigint;
}

function load(dir: string): StateFixture {
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8')) as Record<string, string>;
  return {
    baseDir: path.join(dir, 'base'),
    walDir: path.join(dir, 'wal'),
    finalDir: path.join(dir, 'final'),
    baseEndLsn: BigInt(meta.baseEndLsn),
    finalCheckpointLsn: BigInt(meta.finalCheckpointLsn),
    finalEndLsn: BigInt(meta.finalEndLsn),
  };
}

/** The fixture, built on first use (≈ 10 s) and reused while this file, the settings and PostgreSQL stay the same. */
export async function getStateFixture(): Promise<StateFixture> {
  const h = crypto.createHash('sha256');
  h.update(`${fs.readFileSync(__filename, 'utf8')}\n${JSON.stringify(DEFAULT_SETTINGS)}\n${pgVersionString()}\n`);
  const root = fixtureCacheRoot();
  const dir = path.join(root, `state-${h.digest('hex').slice(0, 16)}`);
  if (fs.existsSync(path.join(dir, COMPLETE))) return load(dir);
  fs.mkdirSync(root, { recursive: true });
  const build = fs.mkdtempSync(path.join(root, '.build-state-'));
  const cluster = await PgCluster.create(OPTIONS);
  try {
    await cluster.start();
    await cluster.stop('fast');
    const base = await readCheckpoint(cluster.dataDir, await readControlData(cluster.dataDir));
    await fs.promises.cp(cluster.dataDir, path.join(build, 'base'), { recursive: true });
    await cluster.start();
    for (const step of STEPS) await cluster.exec(step.db, step.sql);
    await cluster.stop('fast');
    const final = await readCheckpoint(cluster.dataDir, await readControlData(cluster.dataDir));
    await fs.promises.cp(cluster.dataDir, path.join(build, 'final'), { recursive: true });
    fs.mkdirSync(path.join(build, 'wal'));
    for (const f of fs.readdirSync(cluster.walDir)) {
      if (/^[0-9A-F]{24}$/.test(f)) fs.copyFileSync(path.join(cluster.walDir, f), path.join(build, 'wal', f));
    }
    chownToPostgres(build);
    fs.writeFileSync(path.join(build, 'meta.json'), JSON.stringify({
      baseEndLsn: base.checkpointEndLsn.toString(),
      finalCheckpointLsn: final.checkpointLsn.toString(),
      finalEndLsn: final.checkpointEndLsn.toString(),
    }));
    fs.writeFileSync(path.join(build, COMPLETE), '');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(build, dir);
  } catch (e) {
    fs.rmSync(build, { recursive: true, force: true });
    throw e;
  } finally {
    await cluster.destroy();
  }
  return load(dir);
}
