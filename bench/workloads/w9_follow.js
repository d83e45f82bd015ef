'use strict';
/**
 * W9 — following a live PostgreSQL 15 primary (repo.followPostgres, docs/POSTGRES.md "Following a
 * primary"): replication lag under pgbench at the machine's top rate (no rate limit, clients =
 * scale), per core. The measurement itself is bench/lib/pg_follow_bench.ts, run with vite-node
 * because it drives the PostgreSQL cluster helpers of the tests (test/helpers/pg_follow.ts):
 *   lag bytes    primary's flush LSN − the timeline's lastRecordLsn, sampled every 50 ms
 *   lag ms       time until the timeline reaches a sampled flush LSN: readable (lastRecordLsn) and
 *                durable (diskConsistentLsn, under the default flush policy: 64 MiB or 10 s)
 *   catch-up     MB/s of WAL when the follower starts behind (everything since the base)
 *   tps          pgbench with the follower beside it, and without (baseline, same primary)
 * Primary and follower share the machine's cores, so tps with a follower is lower.
 */
const { runTsMeasurement } = require('../lib/ts_measure');

function measure(params, log) {
  log(`W9: following a PostgreSQL primary under pgbench (${params.clients} clients, ${params.durationMs} ms per core)`);
  return runTsMeasurement('pg_follow_bench.ts', [JSON.stringify(params)], 'W9: the follow measurement');
}

async function runW9(ctx) {
  const { root, log, profile } = ctx;
  const p = profile.w9;
  const out = measure({ durationMs: p.durationMs, clients: p.clients, impls: ['native', 'ts'], root }, log);
  if (out.skipped) {
    log(`W9 skipped: ${out.skipped}`);
    return { skipped: out.skipped };
  }
  const n = out.cores.native;
  const t = out.cores.ts;
  return {
    params: { ...p, sampleMs: out.sampleMs, pgVersion: out.pgVersion },
    tpsWithoutFollower: out.tpsWithoutFollower,
    cores: out.cores,
    ratios: {
      'native.tps/withoutFollower': n.tps / out.tpsWithoutFollower,
      'native/ts.catchUp': n.catchUp.mbPerSec / t.catchUp.mbPerSec,
    },
  };
}

module.exports = { runW9 };
