/**
 * TEMPORARY, minimal: real PostgreSQL 15 WAL for the decoder tests, until the shared cluster helpers
 * (test/helpers/pg_cluster.ts, pg_fixture.ts from branch pg-infra) are on main; then the tests
 * switch to them and this file is deleted.
 *
 * `getWalFixture(kind)` runs a throw-away cluster once (initdb, a workload in phases, clean stop)
 * and keeps a copy of its pg_wal/ plus the LSN range of every phase in os.tmpdir(), keyed by the
 * workload's text, so later runs reuse it. Kinds:
 *  - 'main' (no data checksums, wal_level=logical): phases `plain`, `pglz`, `lz4`, `zstd`
 *    (wal_compression) and `consistency` (wal_consistency_checking = heap,heap2,btree), each after a
 *    CHECKPOINT so the first touch of every page carries an image;
 *  - 'checksums' (initdb --data-checksums): one phase, with FPI_FOR_HINT records.
 * PostgreSQL refuses to run as root: as root every tool runs as the `postgres` user.
 */
import { spawnSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseLsn } from '../../lib/lsn';

export const PG_BIN = process.env.STRATA_PG_BIN ?? '/usr/lib/postgresql/15/bin';
const PG_USER = 'postgres';
/** The first LSN initdb writes WAL at: the start of segment 1. */
export const FIRST_WAL_LSN = 0x1000000n;

export type WalFixtureKind = 'main' | 'checksums';

export interface WalPhase {
  name: string;
  /** pg_current_wal_insert_lsn() before and after the phase. */
  start: bigint;
  end: bigint;
}

export interface WalFixture {
  kind: WalFixtureKind;
  walDir: string;
  /** pg_current_wal_insert_lsn() just before the clean stop. */
  endLsn: bigint;
  phases: WalPhase[];
}

const SETTINGS: Record<string, string> = {
  listen_addresses: "''",
  wal_level: 'logical',
  autovacuum: 'off',
  fsync: 'off',
  full_page_writes: 'on',
  max_wal_size: "'4GB'",
  wal_keep_size: "'4GB'",
  checkpoint_timeout: "'1h'",
  shared_buffers: "'32MB'",
  max_prepared_transactions: '4',
};

/** A mixed workload: COPY, HOT and non-HOT updates, deletes, VACUUM, TOAST, index builds, subtransactions. */
const WORKLOAD = `
CREATE TABLE IF NOT EXISTS w (id int PRIMARY KEY, v text, n int);
INSERT INTO w SELECT g, repeat(md5(g::text), 1 + g % 5), g FROM generate_series(1, 3000) g
  ON CONFLICT (id) DO UPDATE SET v = excluded.v || 'x', n = w.n + 1;
UPDATE w SET n = n + 1 WHERE id % 3 = 0;
UPDATE w SET v = v || v WHERE id % 17 = 0;
DELETE FROM w WHERE id % 11 = 0;
INSERT INTO w SELECT g, repeat('toast', 3000 + g), g FROM generate_series(100000, 100010) g ON CONFLICT DO NOTHING;
VACUUM w;
CREATE INDEX IF NOT EXISTS w_n ON w (n);
UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 97 = 0;
BEGIN; SAVEPOINT a; INSERT INTO w VALUES (-1, 'sub', 0) ON CONFLICT DO NOTHING; SAVEPOINT b;
  UPDATE w SET n = n + 1 WHERE id = -1; RELEASE b; COMMIT;
SELECT count(*) FROM w;
`;

/** A smaller mix for wal_consistency_checking, where every heap/btree record carries page images. */
const SMALL_WORKLOAD = `
CREATE TABLE c (id int PRIMARY KEY, v text);
INSERT INTO c SELECT g, md5(g::text) FROM generate_series(1, 400) g;
UPDATE c SET v = v || 'x' WHERE id % 5 = 0;
DELETE FROM c WHERE id % 7 = 0;
VACUUM c;
UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 997 = 0;
`;

interface PhaseScript { name: string; before: string; sql: string; pgbenchTransactions: number }

function phasesFor(kind: WalFixtureKind): PhaseScript[] {
  if (kind === 'checksums') {
    return [{
      name: 'checksums',
      before: '',
      // The SELECT after the CHECKPOINT sets hint bits: FPI_FOR_HINT with checksums on.
      sql: `${WORKLOAD} CHECKPOINT; SELECT count(*) FROM pgbench_accounts; SELECT count(*) FROM w; ${WORKLOAD}`,
      pgbenchTransactions: 50,
    }];
  }
  const compression = (c: string): string => `ALTER SYSTEM SET wal_compression = '${c}'; SELECT pg_reload_conf();`;
  return [
    {
      name: 'plain',
      before: '',
      sql: `${WORKLOAD}
        SELECT pg_replication_origin_create('strata');
        SELECT pg_replication_origin_session_setup('strata');
        INSERT INTO w VALUES (-2, 'origin', 0) ON CONFLICT DO NOTHING;
        SELECT pg_replication_origin_session_reset();
        SELECT pg_switch_wal();
        INSERT INTO w VALUES (-3, 'after switch', 0) ON CONFLICT DO NOTHING;`,
      pgbenchTransactions: 50,
    },
    { name: 'pglz', before: compression('pglz'), sql: WORKLOAD, pgbenchTransactions: 50 },
    { name: 'lz4', before: compression('lz4'), sql: WORKLOAD, pgbenchTransactions: 50 },
    { name: 'zstd', before: compression('zstd'), sql: WORKLOAD, pgbenchTransactions: 50 },
    {
      name: 'consistency',
      before: `${compression('off')} ALTER SYSTEM SET wal_consistency_checking = 'heap,heap2,btree'; SELECT pg_reload_conf();`,
      sql: SMALL_WORKLOAD,
      pgbenchTransactions: 10,
    },
  ];
}

export function pgAvailable(): { ok: boolean; reason: string } {
  for (const tool of ['initdb', 'pg_ctl', 'psql', 'pgbench', 'pg_waldump']) {
    if (!fs.existsSync(path.join(PG_BIN, tool))) return { ok: false, reason: `${PG_BIN}/${tool} is missing` };
  }
  if (isRoot() && spawnSync('id', ['-u', PG_USER]).status !== 0) return { ok: false, reason: `no ${PG_USER} user to run PostgreSQL as` };
  return { ok: true, reason: '' };
}

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Runs a PostgreSQL tool (as the postgres user when root); throws with its output on failure. */
export function runPg(tool: string, args: string[], input?: string): string {
  const exe = path.join(PG_BIN, tool);
  const [file, argv] = isRoot() ? ['runuser', ['-u', PG_USER, '--', exe, ...args]] : [exe, args];
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C', LANG: 'C' };
  for (const k of Object.keys(env)) if (k.startsWith('PG')) delete env[k];
  const r = spawnSync(file as string, argv as string[], { input, env, encoding: 'utf8', maxBuffer: 1 << 30, cwd: os.tmpdir() });
  if (r.status !== 0) throw new Error(`${tool} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

function cacheDir(kind: WalFixtureKind): string {
  const key = createHash('sha256').update(JSON.stringify([kind, SETTINGS, phasesFor(kind)])).digest('hex').slice(0, 16);
  return path.join(os.tmpdir(), 'strata-pg-decoder-wal', `${kind}-${key}`);
}

/** The cached fixture, generating it first when missing (≈ 5–10 s). */
export function getWalFixture(kind: WalFixtureKind): WalFixture {
  const dir = cacheDir(kind);
  const meta = path.join(dir, 'fixture.json');
  if (!fs.existsSync(meta)) generate(kind, dir);
  const raw = JSON.parse(fs.readFileSync(meta, 'utf8')) as { endLsn: string; phases: { name: string; start: string; end: string }[] };
  return {
    kind,
    walDir: path.join(dir, 'wal'),
    endLsn: BigInt(raw.endLsn),
    phases: raw.phases.map((p) => ({ name: p.name, start: BigInt(p.start), end: BigInt(p.end) })),
  };
}

function generate(kind: WalFixtureKind, dir: string): void {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-pgdec-'));
  try {
    fs.chmodSync(root, 0o777);
    if (isRoot()) spawnSync('chown', [PG_USER, root]);
    const data = path.join(root, 'data');
    const initArgs = ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync'];
    if (kind === 'checksums') initArgs.push('--data-checksums');
    runPg('initdb', initArgs);
    const conf = Object.entries({ ...SETTINGS, unix_socket_directories: `'${root}'` }).map(([k, v]) => `${k} = ${v}`).join('\n');
    fs.appendFileSync(path.join(data, 'postgresql.conf'), `\n${conf}\n`);
    runPg('pg_ctl', ['-D', data, '-l', path.join(root, 'log'), '-w', 'start']);
    const psql = (sql: string): string => runPg('psql', ['-h', root, '-d', 'postgres', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1'], sql);
    const insertLsn = (): string => psql('SELECT pg_current_wal_insert_lsn();').trim();
    const phases: { name: string; start: string; end: string }[] = [];
    try {
      runPg('pgbench', ['-h', root, '-i', '-s', '1', '-q', 'postgres']);
      for (const phase of phasesFor(kind)) {
        if (phase.before !== '') psql(phase.before);
        psql('CHECKPOINT;');
        const start = parseLsn(insertLsn());
        psql(phase.sql);
        runPg('pgbench', ['-h', root, '-t', String(phase.pgbenchTransactions), '-c', '2', '-n', 'postgres']);
        phases.push({ name: phase.name, start: start.toString(), end: parseLsn(insertLsn()).toString() });
      }
      const endLsn = parseLsn(insertLsn());
      runPg('pg_ctl', ['-D', data, '-w', '-m', 'fast', 'stop']);
      const staging = `${dir}.tmp-${process.pid}`;
      fs.rmSync(staging, { recursive: true, force: true });
      fs.mkdirSync(path.join(staging, 'wal'), { recursive: true });
      for (const f of fs.readdirSync(path.join(data, 'pg_wal'))) {
        if (/^[0-9A-F]{24}$/.test(f)) fs.copyFileSync(path.join(data, 'pg_wal', f), path.join(staging, 'wal', f));
      }
      fs.writeFileSync(path.join(staging, 'fixture.json'), JSON.stringify({ endLsn: endLsn.toString(), phases }));
      try {
        fs.renameSync(staging, dir); // atomic: a concurrent generator's copy may already be there
      } catch {
        fs.rmSync(staging, { recursive: true, force: true });
      }
    } finally {
      spawnSync(isRoot() ? 'runuser' : path.join(PG_BIN, 'pg_ctl'), isRoot()
        ? ['-u', PG_USER, '--', path.join(PG_BIN, 'pg_ctl'), '-D', data, '-m', 'immediate', 'stop']
        : ['-D', data, '-m', 'immediate', 'stop'], { stdio: 'ignore' });
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}
