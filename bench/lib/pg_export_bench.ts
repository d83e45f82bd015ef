/**
 * W10's measurement (bench/workloads/w10_export.js runs it with vite-node, like W8 and W9):
 * point-in-time restore by export beside PostgreSQL's own way to the same point.
 *
 * One primary: pgbench -i at the given scale, stopped and copied (the base every restore starts
 * from), then pgbench for the duration with all WAL kept (wal_keep_size), the target LSN taken,
 * and a clean stop. Then, for the same target:
 *   strata export   per core: the base imported and the WAL ingested into a new repository,
 *                   compacted as a long-lived timeline would be; timed: tl.exportPgDatadir at the
 *                   target (a data directory PostgreSQL starts on)
 *   replay restore  copy the base, then PostgreSQL 15's archive recovery (restore_command from the
 *                   kept WAL, recovery_target_lsn = target, then shutdown) — what pgBackRest,
 *                   WAL-G and Barman do; timed: copy + recovery
 *   pg_basebackup   a fresh base backup of the primary at the end (started again), for the cost of
 *                   taking the base a replay restore needs; Strata's equivalent is following
 * Rates are seconds per GiB of restored relation files (base/ and global/, the same measure for both). Prints one JSON object;
 * `{ "skipped": "<why>" }` without PostgreSQL.
 *
 * Usage: vite-node bench/lib/pg_export_bench.ts '{"scale":10,"durationMs":20000,"clients":2,"impls":["native","ts"],"root":"/tmp/x"}'
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { formatLsn, type Lsn, Repository } from '../../lib';
import type { ImplementationName } from '../../lib/core/core';
import { chownToPostgres, PgCluster, pgAvailability, runPgTool } from '../../test/helpers/pg_cluster';
import { stopPrimary } from '../../test/helpers/pg_follow';

interface Params {
  scale: number;
  durationMs: number;
  clients: number;
  impls: ImplementationName[];
  root: string;
}

const GIB = 2 ** 30;
/** PostgreSQL's archive recovery gives up after this long (ms). */
const REPLAY_TIMEOUT_MS = 600_000;
/** Keeps every WAL segment since the base on the primary: the replay restore reads them. */
const PRIMARY_CONF: Record<string, string> = { wal_keep_size: "'8GB'", max_wal_size: "'1GB'", max_wal_senders: '4' };

function du(p: string): number {
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.size;
  let n = 0;
  for (const e of fs.readdirSync(p)) n += du(path.join(p, e));
  return n;
}

/** Seconds of `fn`. */
async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, seconds: (performance.now() - t0) / 1000 };
}

interface Prepared {
  primary: PgCluster;
  baseDir: string;
  walDir: string;
  targetLsn: Lsn;
  walBytes: number;
}

async function prepare(p: Params): Promise<Prepared> {
  const primary = await PgCluster.create({ extraConf: PRIMARY_CONF });
  await primary.start();
  await primary.pgbench(['-i', '-q', '-s', String(p.scale)]);
  await primary.stop('fast');
  const baseDir = path.join(primary.rootDir, 'base');
  await fs.promises.cp(primary.dataDir, baseDir, { recursive: true });
  await primary.start();
  const [[startLsn]] = await primary.sql('postgres', 'SELECT pg_current_wal_lsn()');
  const seconds = String(Math.max(1, Math.round(p.durationMs / 1000)));
  await primary.pgbench(['-n', '-c', String(p.clients), '-j', String(p.clients), '-T', seconds]);
  const [[target]] = await primary.sql('postgres', 'SELECT pg_current_wal_lsn()');
  await stopPrimary(primary);
  const walDir = path.join(primary.rootDir, 'wal');
  await fs.promises.cp(primary.walDir, walDir, { recursive: true });
  const targetLsn = parseLsnText(target);
  return { primary, baseDir, walDir, targetLsn, walBytes: Number(targetLsn - parseLsnText(startLsn)) };
}

function parseLsnText(s: string | null): Lsn {
  const [hi, lo] = (s ?? '').split('/');
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
}

async function strataExport(impl: ImplementationName, prep: Prepared, p: Params) {
  const dir = fs.mkdtempSync(path.join(p.root, `w10-${impl}-`));
  const repo = await Repository.open(path.join(dir, 'repo'), { implementation: impl });
  try {
    const tl = await repo.createTimeline({ tenantId: 'pg', timelineId: 'main' });
    await tl.importPgDatadir(prep.baseDir);
    await tl.ingestPgWal(prep.walDir);
    await tl.flush();
    await tl.compact();
    const out = path.join(dir, 'export');
    const { value: report, seconds } = await timed(() => tl.exportPgDatadir(out, { lsn: prep.targetLsn }));
    const bytes = du(path.join(out, 'base')) + du(path.join(out, 'global'));
    // The export is only a restore if PostgreSQL starts on it.
    const check = await PgCluster.copyOf(out);
    try {
      await check.start();
      const [[n]] = await check.sql('postgres', 'SELECT count(*) FROM pgbench_accounts');
      if (Number(n) !== p.scale * 100_000) throw new Error(`W10 ${impl}: the export has ${n} accounts, expected ${p.scale * 100_000}`);
    } finally {
      await check.destroy();
    }
    return { seconds, bytes, pages: report.pages, secondsPerGiB: seconds / (bytes / GIB), mbPerSec: bytes / 2 ** 20 / seconds };
  } finally {
    await repo.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function replayRestore(prep: Prepared) {
  chownToPostgres(prep.walDir);
  const copy = await timed(() => PgCluster.copyOf(prep.baseDir, {
    extraConf: {
      restore_command: `'cp ${prep.walDir}/%f %p'`,
      recovery_target_lsn: `'${formatLsn(prep.targetLsn)}'`,
      recovery_target_inclusive: 'on',
      recovery_target_action: "'shutdown'",
    },
  }));
  const c = copy.value;
  try {
    fs.writeFileSync(path.join(c.dataDir, 'recovery.signal'), '');
    chownToPostgres(c.rootDir);
    const replay = await timed(() => c.runUntilExit(REPLAY_TIMEOUT_MS));
    if (replay.value !== 0) throw new Error(`W10: PostgreSQL's archive recovery exited with ${replay.value}`);
    const bytes = du(path.join(c.dataDir, 'base')) + du(path.join(c.dataDir, 'global'));
    const seconds = copy.seconds + replay.seconds;
    return { copySeconds: copy.seconds, replaySeconds: replay.seconds, seconds, bytes, secondsPerGiB: seconds / (bytes / GIB) };
  } finally {
    await c.destroy();
  }
}

async function baseBackup(prep: Prepared) {
  await prep.primary.start();
  // PostgreSQL's tools run as the postgres user: the bench root (private to this user) is out of reach.
  const target = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-w10-basebackup-'));
  chownToPostgres(target);
  const out = path.join(target, 'data');
  try {
    const { seconds } = await timed(() => runPgTool('pg_basebackup', ['-h', prep.primary.socketDir, '-p', String(prep.primary.port), '-U', 'postgres', '-D', out, '-X', 'fetch', '-c', 'fast']));
    const bytes = du(out);
    return { seconds, bytes, secondsPerGiB: seconds / (bytes / GIB) };
  } finally {
    await prep.primary.stop('fast');
    fs.rmSync(target, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const p = JSON.parse(process.argv[2] ?? '{}') as Params;
  const pg = pgAvailability();
  if (!pg.ok) {
    process.stdout.write(JSON.stringify({ skipped: pg.reason }) + '\n');
    return;
  }
  const prep = await prepare(p);
  try {
    const cores: Record<string, unknown> = {};
    for (const impl of p.impls) cores[impl] = await strataExport(impl, prep, p);
    const replay = await replayRestore(prep);
    const basebackup = await baseBackup(prep);
    process.stdout.write(JSON.stringify({ pgVersion: pg.reason, walBytes: prep.walBytes, targetLsn: formatLsn(prep.targetLsn), cores, replay, basebackup }) + '\n');
  } finally {
    await prep.primary.destroy();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
