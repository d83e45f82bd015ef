/**
 * W9's measurement (bench/workloads/w9_follow.js runs it with vite-node, as W8 runs
 * pg_fixture_cli.ts, because the PostgreSQL cluster helpers are TypeScript test helpers):
 * replication lag of repo.followPostgres under pgbench at the machine's top rate.
 *
 * One primary (test/helpers/pg_follow.ts: scale = clients, a slot per core) serves every core in
 * turn. Per core: import the base into a new repository, follow through the core's own slot and
 * catch up with all WAL written so far (catch-up MB/s of WAL), then run pgbench unthrottled for
 * the duration while sampling every SAMPLE_MS over a plain unix-socket connection:
 *   lag bytes   pg_current_wal_flush_lsn() − the timeline's lastRecordLsn right after the answer
 *   lag ms      from just before asking for the flush LSN until the timeline reaches it
 *               (lastRecordLsn: readable; diskConsistentLsn: durable, with the default flush policy)
 * pgbench's tps without a follower (same primary, same duration) comes first, as the baseline.
 * Prints one JSON object; `{ "skipped": "<why>" }` without PostgreSQL.
 *
 * Usage: vite-node bench/lib/pg_follow_bench.ts '{"durationMs":5000,"clients":4,"impls":["native","ts"],"root":"/tmp/x"}'
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client } from 'pg';
import { Repository, type Lsn, type Timeline } from '../../lib';
import type { ImplementationName } from '../../lib/core/core';
import { timelineImpl } from '../../lib/timeline';
import { pgAvailability, type PgCluster } from '../../test/helpers/pg_cluster';
import { type FollowPrimary, startFollowPrimary, waitFor } from '../../test/helpers/pg_follow';

interface Params {
  durationMs: number;
  clients: number;
  impls: ImplementationName[];
  root: string;
}

const SAMPLE_MS = 50;
const WAIT_MS = 120_000;

interface Summary {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

function summarize(xs: number[]): Summary {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number): number => (s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(p * s.length))]);
  return { n: s.length, p50: at(0.5), p99: at(0.99), max: s.length === 0 ? NaN : s[s.length - 1] };
}

function tpsOf(pgbenchOutput: string): number {
  const m = /tps = ([0-9.]+)/.exec(pgbenchOutput);
  return m === null ? NaN : Number(m[1]);
}

async function flushLsn(sql: Client): Promise<Lsn> {
  const r = await sql.query<{ lsn: string }>('SELECT pg_current_wal_flush_lsn()::text AS lsn');
  const [hi, lo] = r.rows[0].lsn.split('/');
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
}

function pgbench(cluster: PgCluster, clients: number, ms: number): Promise<string> {
  const threads = Math.max(1, Math.min(clients, 4));
  return cluster.pgbench(['-n', '-c', String(clients), '-j', String(threads), '-T', String(Math.max(1, Math.round(ms / 1000)))]);
}

/** Samples lag while `running` is unsettled; resolves once every sample's LSN was reached. */
async function sampleLag(tl: Timeline, sql: Client, running: Promise<unknown>) {
  const impl = timelineImpl(tl);
  const lagBytes: number[] = [];
  const visibleMs: number[] = [];
  const durableMs: number[] = [];
  const waits: Promise<void>[] = [];
  let done = false;
  void running.finally(() => {
    done = true;
  });
  while (!done) {
    const t0 = performance.now();
    const lsn = await flushLsn(sql);
    const behind = lsn - tl.lastRecordLsn;
    lagBytes.push(behind > 0n ? Number(behind) : 0);
    waits.push(impl.waitForLsn(lsn, WAIT_MS).then(() => {
      visibleMs.push(performance.now() - t0);
    }));
    waits.push(waitFor('durable', () => tl.diskConsistentLsn >= lsn, WAIT_MS).then(() => {
      durableMs.push(performance.now() - t0);
    }));
    await new Promise((r) => setTimeout(r, SAMPLE_MS));
  }
  await Promise.all(waits);
  return { lagBytes: summarize(lagBytes), lagMs: summarize(visibleMs), durableLagMs: summarize(durableMs) };
}

async function oneCore(impl: ImplementationName, primary: FollowPrimary, sql: Client, p: Params, slot: string) {
  const dir = fs.mkdtempSync(path.join(p.root, `w9-${impl}-`));
  const repo = await Repository.open(dir, { implementation: impl });
  try {
    const tl = await repo.createTimeline({ tenantId: 'pg', timelineId: 'main' });
    const { lsn: importLsn } = await tl.importPgDatadir(primary.baseDir);
    const f = repo.followPostgres(tl, { connectionString: primary.connectionString(), slotName: slot });
    const t0 = performance.now();
    const backlog = await flushLsn(sql);
    await timelineImpl(tl).waitForLsn(backlog, WAIT_MS);
    const catchUpSec = (performance.now() - t0) / 1000;
    const startLsn = await flushLsn(sql);
    const bench = pgbench(primary.cluster, p.clients, p.durationMs);
    const lag = await sampleLag(tl, sql, bench);
    const out = await bench;
    const endLsn = await flushLsn(sql);
    await timelineImpl(tl).waitForLsn(endLsn, WAIT_MS);
    const st = await f.stop();
    return {
      tps: tpsOf(out),
      walBytes: Number(endLsn - startLsn),
      walMBps: Number(endLsn - startLsn) / 2 ** 20 / (p.durationMs / 1000),
      ...lag,
      catchUp: { walBytes: Number(backlog - importLsn), seconds: catchUpSec, mbPerSec: Number(backlog - importLsn) / 2 ** 20 / catchUpSec },
      follower: { state: st.state, reconnects: st.reconnects, lastError: st.lastError?.message ?? null },
    };
  } finally {
    await repo.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const p = JSON.parse(process.argv[2] ?? '{}') as Params;
  const pg = pgAvailability();
  if (!pg.ok) {
    process.stdout.write(JSON.stringify({ skipped: pg.reason }) + '\n');
    return;
  }
  const slots = p.impls.map((impl) => `w9_${impl}`);
  const primary = await startFollowPrimary({ scale: p.clients, extraSlots: slots });
  const sql = new Client({ host: primary.cluster.socketDir, port: primary.cluster.port, user: 'postgres', database: 'postgres' });
  await sql.connect();
  try {
    const baseline = await pgbench(primary.cluster, p.clients, p.durationMs);
    const cores: Record<string, unknown> = {};
    for (let i = 0; i < p.impls.length; i++) cores[p.impls[i]] = await oneCore(p.impls[i], primary, sql, p, slots[i]);
    process.stdout.write(JSON.stringify({ pgVersion: pg.reason, tpsWithoutFollower: tpsOf(baseline), sampleMs: SAMPLE_MS, cores }) + '\n');
  } finally {
    await sql.end();
    await primary.destroy();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
