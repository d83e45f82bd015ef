/**
 * exportPgDatadir (issue 10 point 4; docs/POSTGRES.md, "Restore: export at an LSN"): a cluster
 * with data checksums is imported, then runs pgbench and DDL (CREATE/DROP TABLE, CREATE DATABASE,
 * indexes, a table in a tablespace, an unlogged table, a sequence, a transaction left open and one left prepared at a
 * paused point), and its WAL is ingested. At the import LSN, the paused point and the end, the
 * export is started by an unmodified PostgreSQL 15: every user table's digest equals what the
 * primary showed there, the open transaction's changes are absent, the prepared transaction is
 * restored (and commits), the unlogged table is empty (reset from its init fork), the sequence does
 * not hand out a used value, pg_amcheck --heapallindexed finds nothing in any database, and a write
 * plus CHECKPOINT works. Also: the errors (non-empty directory, an LSN before the import, a timeline
 * that is not a PostgreSQL one), an export that waits for its LSN, and `strata export-pg`.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type ExportReport, formatLsn, isStrataError, type Lsn, parseLsn, Repository, type Timeline } from '../../lib';
import { chownToPostgres, PgCluster, pgAvailability, readControlData } from '../helpers/pg_cluster';
import { getPgFixture, readCheckpoint } from '../helpers/pg_fixture';
import { amcheckAll } from '../helpers/pg_restore_check';

const pg = pgAvailability();
const skipNote = pg.ok ? '' : ` — skipped: ${pg.reason}`;
const ROOT = path.join(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'strata.js');
const OPEN_ROWS = 100;
const PREPARED_ROWS = 50;
const UNLOGGED_ROWS = 1000;
const GID = 'export_p1';
/** Around the paused moment no transaction commits for this long (ms): commit times are µs, a Date ms. */
const QUIET_MS = 60;

/** "db.schema.table" → "count md5" of its rows in text order. */
type Digests = Record<string, string>;

interface Point {
  name: string;
  lsn: Lsn;
  digests: Digests;
  /** seq1's last_value on the primary there. */
  sequence: number;
  prepared: string[];
  /** Rows of the transaction that was open at this point (absent) or committed (present). */
  openRows: number;
}

let primary: PgCluster;
let work: string;
let repo: Repository;
let tl: Timeline;
const points: Point[] = [];
/** clock_timestamp() on the primary during the pause (the CLI's --at), with quiet gaps around it. */
let pausedAt: Date;
let midExport: Promise<ExportReport>;
const started: PgCluster[] = [];

async function digests(c: PgCluster, dbs: readonly string[]): Promise<Digests> {
  const out: Digests = {};
  for (const db of dbs) {
    const tables = await c.sql(db, `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND c.relpersistence = 'p' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1`);
    for (const [t] of tables) {
      const [[n, md5]] = await c.sql(db, `SELECT count(*), md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) FROM ${t} x`);
      out[`${db}.${t}`] = `${n} ${md5}`;
    }
  }
  return out;
}

async function sequenceValue(c: PgCluster): Promise<number> {
  return Number((await c.sql('postgres', 'SELECT last_value FROM seq1'))[0][0]);
}

async function preparedGids(c: PgCluster): Promise<string[]> {
  return (await c.sql('postgres', 'SELECT gid FROM pg_prepared_xacts ORDER BY gid')).map((r) => String(r[0]));
}

async function openRowCount(c: PgCluster): Promise<number> {
  return Number((await c.sql('postgres', `SELECT count(*) FROM items WHERE v = 'open'`))[0][0]);
}

function strata(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  if (!pg.ok) return;
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-export-'));
  primary = await PgCluster.create({ dataChecksums: true });
  await primary.start();
  await primary.pgbench(['-i', '-q', '-s', '1']);
  await primary.exec('postgres', `
    CREATE TABLE items (id int PRIMARY KEY, v text);
    INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 5000) g;
    CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY, v text);
    INSERT INTO scratch SELECT g, 'x' FROM generate_series(1, ${UNLOGGED_ROWS}) g;
    CREATE SEQUENCE seq1;
    SELECT nextval('seq1') FROM generate_series(1, 5);
    CREATE TABLE doomed AS SELECT g AS x FROM generate_series(1, 300) g;
  `);
  // A tablespace: the export writes it as a directory inside pg_tblspc/.
  const tsDir = path.join(primary.rootDir, 'ts1');
  fs.mkdirSync(tsDir);
  chownToPostgres(tsDir);
  await primary.exec('postgres', `
    CREATE TABLESPACE ts1 LOCATION '${tsDir}';
    CREATE TABLE in_ts (id int PRIMARY KEY, v text) TABLESPACE ts1;
    INSERT INTO in_ts SELECT g, md5(g::text) FROM generate_series(1, 2000) g;
  `);
  points.push({ name: 'import', lsn: 0n, digests: await digests(primary, ['postgres']), sequence: await sequenceValue(primary), prepared: [], openRows: 0 });
  await primary.stop('fast');
  const baseDir = path.join(work, 'base');
  // dereference: the tablespace's files are copied, not linked (the primary goes on writing them).
  await fs.promises.cp(primary.dataDir, baseDir, { recursive: true, dereference: true });
  // The same base without its configuration files: imported, it is a timeline without kept ones.
  await fs.promises.cp(primary.dataDir, path.join(work, 'base-noconf'), { recursive: true, dereference: true });
  for (const f of ['postgresql.conf', 'postgresql.auto.conf', 'pg_hba.conf', 'pg_ident.conf']) fs.rmSync(path.join(work, 'base-noconf', f));
  await primary.start();

  // Phase 1: OLTP and DDL, then a pause with one transaction open and one prepared.
  await primary.pgbench(['-n', '-c', '2', '-j', '2', '-t', '300']);
  await primary.exec('postgres', `
    CREATE DATABASE db2;
    DROP TABLE doomed;
    CREATE TABLE added AS SELECT g AS id, repeat('a', g % 50) AS pad FROM generate_series(1, 3000) g;
    CREATE INDEX added_pad ON added (pad);
    UPDATE items SET v = v || 'u' WHERE id % 7 = 0;
    UPDATE in_ts SET v = 'changed' WHERE id % 3 = 0;
    DELETE FROM items WHERE id % 11 = 0;
    VACUUM items;
    SELECT nextval('seq1') FROM generate_series(1, 40);
    INSERT INTO scratch SELECT g, 'y' FROM generate_series(${UNLOGGED_ROWS + 1}, ${UNLOGGED_ROWS + 500}) g;
  `);
  await primary.exec('db2', `
    CREATE TABLE t2 (id serial PRIMARY KEY, payload text);
    INSERT INTO t2 (payload) SELECT md5(g::text) FROM generate_series(1, 2000) g;
    CREATE INDEX t2_payload ON t2 (payload);
  `);
  const open = new Client({ host: '127.0.0.1', port: primary.port, user: 'postgres', database: 'postgres' });
  await open.connect();
  try {
    await open.query('BEGIN');
    await open.query(`INSERT INTO items SELECT g, 'open' FROM generate_series(1000001, ${1000000 + OPEN_ROWS}) g`);
    await open.query('DELETE FROM items WHERE id <= 10');
    await primary.exec('postgres', `BEGIN; INSERT INTO items SELECT g, 'prepared' FROM generate_series(2000001, ${2000000 + PREPARED_ROWS}) g; PREPARE TRANSACTION '${GID}';`);
    points.push({
      name: 'paused', lsn: 0n, digests: await digests(primary, ['postgres', 'db2']), sequence: await sequenceValue(primary),
      prepared: await preparedGids(primary), openRows: await openRowCount(primary),
    });
    points[1].lsn = (await primary.currentWalInsertLsn());
    await new Promise((r) => setTimeout(r, QUIET_MS));
    pausedAt = new Date(Number((await primary.sql('postgres', 'SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)'))[0][0]));
    await new Promise((r) => setTimeout(r, QUIET_MS));
    // Phase 2: the open transaction commits, more OLTP, the prepared one commits, another index.
    await open.query('COMMIT');
  } finally {
    await open.end();
  }
  await primary.pgbench(['-n', '-c', '2', '-j', '2', '-t', '200']);
  await primary.exec('postgres', `COMMIT PREPARED '${GID}'; CREATE INDEX items_v ON items (v); SELECT nextval('seq1');`);
  const endDigests = await digests(primary, ['postgres', 'db2']);
  const endPoint: Point = { name: 'end', lsn: 0n, digests: endDigests, sequence: await sequenceValue(primary), prepared: await preparedGids(primary), openRows: await openRowCount(primary) };
  await primary.stop('fast');
  endPoint.lsn = (await readCheckpoint(primary.dataDir, await primary.controlData())).checkpointEndLsn;
  points.push(endPoint);

  repo = await Repository.open(path.join(work, 'repo'));
  tl = await repo.createTimeline({ tenantId: 'pg', timelineId: 'main' });
  points[0].lsn = (await tl.importPgDatadir(baseDir)).lsn;
  // Started before the WAL is there: the export waits for its LSN like getPage.
  midExport = tl.exportPgDatadir(path.join(work, 'export-paused'), { lsn: points[1].lsn });
  midExport.catch(() => undefined); // awaited (and its failure reported) by the test below
  const ingested = await tl.ingestPgWal(primary.walDir);
  expect(ingested.endLsn).toBe(endPoint.lsn);
  await tl.flush();
}, 300_000);

afterAll(async () => {
  for (const c of started) await c.destroy();
  if (repo !== undefined) await repo.close();
  if (primary !== undefined) await primary.destroy();
  if (work !== undefined) fs.rmSync(work, { recursive: true, force: true });
});

/** Start PostgreSQL on (a copy of) the export and check it against the primary at `p`. */
async function checkExport(p: Point, dir: string, report: ExportReport, configFiles: 'imported' | 'default' = 'imported'): Promise<void> {
  expect(report.lsn).toBe(p.lsn);
  expect(report.dir).toBe(path.resolve(dir));
  expect(report.pages).toBeGreaterThan(1000);
  expect(report.bytes).toBeGreaterThan(report.pages * 8192);
  expect(report.configFiles).toBe(configFiles);
  expect(report.preparedTransactions).toBe(p.prepared.length);
  expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
  expect(fs.existsSync(path.join(dir, 'postmaster.pid'))).toBe(false);
  expect(fs.existsSync(path.join(dir, 'postmaster.opts'))).toBe(false);
  chownToPostgres(work);
  // pg_controldata and pg_waldump read what was written: shut down, at a checkpoint that is the
  // only record of its WAL and lies after every page.
  const control = await readControlData(dir);
  expect(control.state).toBe('shut down');
  expect(control.checkpointLsn).toBe(report.checkpointLsn);
  expect(control.redoLsn).toBe(report.checkpointLsn);
  expect(report.checkpointLsn).toBeGreaterThan(p.lsn);
  await readCheckpoint(dir, control);

  const c = await PgCluster.copyOf(dir);
  started.push(c);
  await c.start();
  const dbs = [...new Set(Object.keys(p.digests).map((k) => k.split('.')[0]))];
  expect(await digests(c, dbs)).toEqual(p.digests);
  expect(await openRowCount(c)).toBe(p.openRows);
  // Rows the open transaction deleted are still there when it did not commit.
  expect(Number((await c.sql('postgres', 'SELECT count(*) FROM items WHERE id <= 10'))[0][0])).toBe(p.openRows === 0 ? 10 : 0);
  // Unlogged: reset from the init fork, as after a crash.
  expect(Number((await c.sql('postgres', 'SELECT count(*) FROM scratch'))[0][0])).toBe(0);
  // The tablespace's table is in the digests; its files are in a directory under pg_tblspc/.
  expect(Object.keys(p.digests)).toContain('postgres.public.in_ts');
  const tsOid = (await c.sql('postgres', `SELECT oid FROM pg_tablespace WHERE spcname = 'ts1'`))[0][0];
  expect(fs.lstatSync(path.join(dir, 'pg_tblspc', String(tsOid))).isDirectory()).toBe(true);
  expect(Number((await c.sql('postgres', `SELECT nextval('seq1')`))[0][0])).toBeGreaterThan(p.sequence);
  expect(await preparedGids(c)).toEqual(p.prepared);
  if (p.prepared.length > 0) {
    await c.sql('postgres', `COMMIT PREPARED '${GID}'`);
    expect(Number((await c.sql('postgres', `SELECT count(*) FROM items WHERE v = 'prepared'`))[0][0])).toBe(PREPARED_ROWS);
  }
  expect(await amcheckAll(c)).toEqual({ code: 0, report: '' });
  // It did visit every database: --install-missing created the extension in each.
  for (const db of dbs) expect(await c.sql(db, `SELECT extname FROM pg_extension WHERE extname = 'amcheck'`)).toEqual([['amcheck']]);
  await c.exec('postgres', 'CREATE TABLE after_export AS SELECT g FROM generate_series(1, 1000) g; INSERT INTO items VALUES (3000001, \'new\'); CHECKPOINT;');
  expect(Number((await c.sql('postgres', 'SELECT count(*) FROM after_export'))[0][0])).toBe(1000);
  await c.stop('fast');
  expect((await c.controlData()).state).toBe('shut down');
}

describe('exportPgDatadir: PostgreSQL 15 starts on the export', () => {
  test.skipIf(!pg.ok)(`at the import LSN${skipNote}`, async () => {
    const dir = path.join(work, 'export-import');
    const progress: string[] = [];
    const r = await tl.exportPgDatadir(dir, { lsn: points[0].lsn, onProgress: (p) => progress.push(p.phase) });
    expect(progress[0]).toBe('relations');
    expect(progress.at(-1)).toBe('done');
    await checkExport(points[0], dir, r);
  }, 120_000);

  test.skipIf(!pg.ok)(`at a paused point with a transaction open and one prepared (the export waited for its LSN)${skipNote}`, async () => {
    await checkExport(points[1], path.join(work, 'export-paused'), await midExport);
  }, 120_000);

  test.skipIf(!pg.ok)(`at the end (the primary's shutdown checkpoint)${skipNote}`, async () => {
    const dir = path.join(work, 'export-end');
    const r = await tl.exportPgDatadir(dir, { lsn: points[2].lsn });
    fs.writeFileSync(path.join(work, 'end-report.json'), JSON.stringify({ pages: r.pages, relations: r.relations }));
    const mb = r.bytes / 2 ** 20;
    console.log(`export at the end: ${r.relations} relations, ${r.pages} pages, ${mb.toFixed(1)} MiB in ${r.durationMs.toFixed(0)} ms (${(mb / (r.durationMs / 1000)).toFixed(0)} MiB/s, ${repo.implementation} core)`);
    await checkExport(points[2], dir, r);
  }, 120_000);
});

describe('exportPgDatadir: the oracle fixture', () => {
  test.skipIf(!pg.ok)(`plain: the export at its final LSN holds what PostgreSQL's own final/ holds, in every database${skipNote}`, async () => {
    // The fixture's workload: pgbench, two-phase commit, TOAST, CLUSTER, REINDEX, TRUNCATE, VACUUM
    // that deletes and truncates, CREATE DATABASE both ways (docs/POSTGRES.md, "Fixtures").
    const fx = await getPgFixture('plain');
    const fxTl = await repo.createTimeline({ tenantId: 'fixture', timelineId: 'plain' });
    await fxTl.importPgDatadir(fx.baseDir);
    await fxTl.ingestPgWal(fx.walDir);
    const dir = path.join(work, 'export-fixture');
    const r = await fxTl.exportPgDatadir(dir, { lsn: fx.finalEndLsn });
    expect(r.preparedTransactions).toBe(0);
    const dbs = fx.databases.filter((d) => d.allowConnections).map((d) => d.name);
    expect(dbs.length).toBeGreaterThanOrEqual(4);
    const final = await PgCluster.copyOf(fx.finalDir);
    started.push(final);
    await final.start();
    const want = await digests(final, dbs);
    await final.stop('fast');
    chownToPostgres(work);
    const c = await PgCluster.copyOf(dir);
    started.push(c);
    await c.start();
    expect(await digests(c, dbs)).toEqual(want);
    expect(await amcheckAll(c)).toEqual({ code: 0, report: '' });
    await c.exec('postgres', 'CREATE TABLE after_export AS SELECT g FROM generate_series(1, 100) g; CHECKPOINT;');
    await c.stop('fast');
  }, 300_000);
});

describe('exportPgDatadir: configuration', () => {
  test.skipIf(!pg.ok)(`a timeline that kept no configuration files gets a minimal set PostgreSQL starts with, prepared transactions included${skipNote}`, async () => {
    const bare = await repo.createTimeline({ tenantId: 'pg', timelineId: 'noconf' });
    await bare.importPgDatadir(path.join(work, 'base-noconf'));
    await bare.ingestPgWal(primary.walDir);
    const dir = path.join(work, 'export-noconf');
    const r = await bare.exportPgDatadir(dir, { lsn: points[1].lsn });
    expect(fs.readFileSync(path.join(dir, 'postgresql.conf'), 'utf8')).toMatch(/^max_prepared_transactions = 4$/m);
    expect(fs.readFileSync(path.join(dir, 'pg_hba.conf'), 'utf8')).toMatch(/^local\s+all\s+all\s+peer$/m);
    await checkExport(points[1], dir, r, 'default');
  }, 120_000);

  test.skipIf(!pg.ok)(`the configuration files kept at import are written back as they were${skipNote}`, () => {
    for (const f of ['postgresql.conf', 'postgresql.auto.conf', 'pg_hba.conf', 'pg_ident.conf']) {
      expect(fs.readFileSync(path.join(work, 'export-end', f)), f).toEqual(fs.readFileSync(path.join(work, 'base', f)));
    }
  });
});

describe('exportPgDatadir: errors', () => {
  test.skipIf(!pg.ok)(`a non-empty directory, an LSN before the import, a timeline that is not a PostgreSQL one: BAD_ARGUMENT, nothing written${skipNote}`, async () => {
    const full = path.join(work, 'not-empty');
    fs.mkdirSync(full);
    fs.writeFileSync(path.join(full, 'keep.txt'), 'mine');
    await expect(tl.exportPgDatadir(full, { lsn: points[2].lsn })).rejects.toSatisfy((e: unknown) => isStrataError(e, 'BAD_ARGUMENT') && /not empty/.test((e as Error).message));
    expect(fs.readdirSync(full)).toEqual(['keep.txt']);

    const before = path.join(work, 'before-import');
    await expect(tl.exportPgDatadir(before, { lsn: points[0].lsn - 8n })).rejects.toSatisfy((e: unknown) => isStrataError(e, 'BAD_ARGUMENT') && /imported at/.test((e as Error).message));
    expect(fs.existsSync(before)).toBe(false);

    const plain = await repo.createTimeline({ tenantId: 'pg', timelineId: 'plain' });
    const other = path.join(work, 'plain-export');
    await expect(plain.exportPgDatadir(other, { lsn: 0n })).rejects.toSatisfy((e: unknown) => isStrataError(e, 'BAD_ARGUMENT') && /PostgreSQL timeline/.test((e as Error).message));
    expect(fs.existsSync(other)).toBe(false);

    // A failure half-way (here: the progress callback throws) removes what was written.
    const half = path.join(work, 'half-way');
    await expect(tl.exportPgDatadir(half, { lsn: points[2].lsn, onProgress: (p) => { if (p.pages > 1000) throw new Error('stop here'); } })).rejects.toThrow('stop here');
    expect(fs.existsSync(half)).toBe(false);
    const emptyDir = path.join(work, 'empty-given');
    fs.mkdirSync(emptyDir);
    await expect(tl.exportPgDatadir(emptyDir, { lsn: points[2].lsn, onProgress: (p) => { if (p.pages > 1000) throw new Error('stop here'); } })).rejects.toThrow('stop here');
    expect(fs.readdirSync(emptyDir)).toEqual([]); // the caller's empty directory stays, empty

    // Two exports into one directory at once: the second finds it claimed and leaves the first alone.
    const shared = path.join(work, 'shared');
    const results = await Promise.allSettled([0, 1].map(() => tl.exportPgDatadir(shared, { lsn: points[2].lsn })));
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(isStrataError(lost.reason, 'BAD_ARGUMENT')).toBe(true);
    expect(fs.existsSync(path.join(shared, 'global', 'pg_control'))).toBe(true);
  });

  test.skipIf(!pg.ok)(`a branch exports like its ancestor; below the GC cutoff is LSN_GC_CUTOFF${skipNote}`, async () => {
    const branch = await repo.createTimeline({ tenantId: 'pg', timelineId: 'branch', ancestorTimelineId: 'main', ancestorLsn: points[2].lsn });
    const r = await branch.exportPgDatadir(path.join(work, 'export-branch'), { lsn: points[2].lsn });
    const main = JSON.parse(fs.readFileSync(path.join(work, 'end-report.json'), 'utf8')) as { pages: number; relations: number };
    expect({ pages: r.pages, relations: r.relations }).toEqual(main);
    await branch.gc({ horizon: 0n });
    expect(branch.gcCutoffLsn).toBe(points[2].lsn);
    const below = path.join(work, 'below-cutoff');
    await expect(branch.exportPgDatadir(below, { lsn: points[1].lsn })).rejects.toSatisfy((e: unknown) => isStrataError(e, 'LSN_GC_CUTOFF'));
    expect(fs.existsSync(below)).toBe(false);
  });
});

describe('strata export-pg', () => {
  test.skipIf(!pg.ok)(`writes the export with progress on stderr and the report on stdout; exit codes${skipNote}`, async () => {
    const dir = path.join(work, 'cli-export');
    const lsn = formatLsn(points[2].lsn);
    const r = strata(['export-pg', path.join(work, 'repo'), 'pg', 'main', dir, '--lsn', lsn, '--json', '--progress']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain(`exporting pg/main at ${lsn}`);
    const report = JSON.parse(r.stdout) as { lsn: string; checkpointLsn: string; pages: number; walSegment: string };
    expect(report.lsn).toBe(lsn);
    expect(report.pages).toBeGreaterThan(1000);
    chownToPostgres(work);
    const control = await readControlData(dir);
    expect(control.state).toBe('shut down');
    expect(formatLsn(control.checkpointLsn)).toBe(report.checkpointLsn);
    expect(fs.existsSync(path.join(dir, 'pg_wal', report.walSegment))).toBe(true);

    const again = strata(['export-pg', path.join(work, 'repo'), 'pg', 'main', dir, '--lsn', lsn]);
    expect(again.status).toBe(3); // BAD_ARGUMENT: not empty
    expect(again.stderr).toContain('not empty');
    const noLsn = strata(['export-pg', path.join(work, 'repo'), 'pg', 'main', path.join(work, 'cli-none')]);
    expect(noLsn.status).toBe(3);
    expect(noLsn.stderr).toContain('--lsn');
    const future = strata(['export-pg', path.join(work, 'repo'), 'pg', 'main', path.join(work, 'cli-future'), '--lsn', formatLsn(points[2].lsn + 2n ** 30n)]);
    expect(future.status).toBe(8); // LSN_TIMEOUT: the timeline never reaches it
    expect(fs.existsSync(path.join(work, 'cli-future'))).toBe(false);
  });

  test.skipIf(!pg.ok)(`--at TIME exports at lsn-at's 'present' LSN, which shows the paused moment's tables; --at and --lsn together, or a time before every commit, exit 3${skipNote}`, async () => {
    const repoDir = path.join(work, 'repo');
    const at = pausedAt.toISOString();
    const lookup = strata(['lsn-at', repoDir, 'pg', 'main', at]);
    expect(lookup.status, lookup.stderr).toBe(0);
    const [kind, lsnText] = lookup.stdout.trim().split(' ');
    expect(kind).toBe('present');
    const dir = path.join(work, 'cli-at');
    const r = strata(['export-pg', repoDir, 'pg', 'main', dir, '--at', at, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { lsn: string };
    expect(report.lsn).toBe(lsnText);
    expect(parseLsn(report.lsn)).toBeGreaterThan(points[0].lsn);
    expect(parseLsn(report.lsn)).toBeLessThanOrEqual(points[1].lsn);
    const c = await PgCluster.copyOf(dir);
    started.push(c);
    await c.start();
    // The open transaction's rows and the prepared one's are not there at the pause either way.
    expect(await digests(c, ['postgres', 'db2'])).toEqual(points[1].digests);
    await c.stop('fast');

    const both = strata(['export-pg', repoDir, 'pg', 'main', path.join(work, 'cli-both'), '--at', at, '--lsn', lsnText]);
    expect(both.status).toBe(3);
    expect(both.stderr).toContain('exactly one of --lsn');
    const past = strata(['export-pg', repoDir, 'pg', 'main', path.join(work, 'cli-past'), '--at', '2001-01-01T00:00:00Z']);
    expect(past.status).toBe(3);
    expect(past.stderr).toContain("'past'");
    expect(fs.existsSync(path.join(work, 'cli-past'))).toBe(false);
  });
});
