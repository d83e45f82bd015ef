/**
 * Checking a restored (exported) data directory the way a user would: start an unmodified
 * PostgreSQL 15 on it, compare every user table's digest with what the primary showed at that
 * moment, and run pg_amcheck over every database. Used by test/pg/pg_restore.test.ts.
 */
import { type Lsn, parseLsn } from '../../lib';
import { PgCluster, runPgTool } from './pg_cluster';

/** What identifies a table's content: row count, pgbench's balance sum when it has one, md5 of the rows in order. */
export interface TableDigest {
  table: string;
  rows: number;
  balance: string | null;
  md5: string;
}

/** A moment recorded on the primary while its workload was paused. */
export interface Moment {
  /** clock_timestamp() on the primary, truncated to the millisecond a Date holds. */
  at: Date;
  /** pg_current_wal_lsn() at the same pause. */
  lsn: Lsn;
  digests: TableDigest[];
}

/** Quiet time around a recorded moment (ms): commit timestamps before and after it are this far away. */
const MOMENT_GAP_MS = 60;

/** pgbench's tables with a balance column: the "sum of balances". */
const BALANCE_COLUMN: Readonly<Record<string, string>> = {
  pgbench_accounts: 'abalance',
  pgbench_branches: 'bbalance',
  pgbench_tellers: 'tbalance',
};

/** Digest of every table in `db`'s public schema, in name order. */
export async function tableDigests(cluster: PgCluster, db = 'postgres'): Promise<TableDigest[]> {
  const tables = (await cluster.sql(db, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")).map((r) => r[0] ?? '');
  const out: TableDigest[] = [];
  for (const table of tables) {
    const q = `"${table.replace(/"/g, '""')}"`;
    const balance = BALANCE_COLUMN[table] === undefined ? 'NULL' : `sum(${BALANCE_COLUMN[table]})::text`;
    const [row] = await cluster.sql(db, `SELECT count(*), ${balance}, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM ${q} t`);
    out.push({ table, rows: Number(row[0]), balance: row[1], md5: row[2] ?? '' });
  }
  return out;
}

/** Records a moment on a paused primary: time, WAL position and digests, with quiet gaps around it. */
export async function recordMoment(cluster: PgCluster): Promise<Moment> {
  await sleep(MOMENT_GAP_MS);
  const [[at, lsn]] = await cluster.sql('postgres', "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), pg_current_wal_lsn()");
  const digests = await tableDigests(cluster);
  await sleep(MOMENT_GAP_MS);
  return { at: new Date(at ?? ''), lsn: parseLsn(lsn ?? ''), digests };
}

/** An unmodified PostgreSQL 15 started on a copy of an exported data directory (destroy() deletes the copy). */
export async function startOnExport(exportDir: string): Promise<PgCluster> {
  const c = await PgCluster.copyOf(exportDir);
  try {
    await c.start();
  } catch (e) {
    await c.destroy();
    throw e;
  }
  return c;
}

/** pg_amcheck --heapallindexed over every database; its report (empty when it found nothing). */
export async function amcheckAll(cluster: PgCluster): Promise<{ code: number; report: string }> {
  const args = ['-h', cluster.socketDir, '-p', String(cluster.port), '-U', 'postgres', '--all', '--install-missing', '--heapallindexed'];
  // 0: nothing found; 2: corruption reported (its text is the report); anything else is a failure to run.
  const r = await runPgTool('pg_amcheck', args, { cwd: cluster.rootDir, okCodes: [0, 2] });
  return { code: r.code, report: `${r.stdout}${r.stderr}`.trim() };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
