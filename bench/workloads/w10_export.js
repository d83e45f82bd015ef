'use strict';
/**
 * W10 — point-in-time restore (tl.exportPgDatadir, docs/POSTGRES.md "Restore") beside PostgreSQL's
 * own way to the same point: a copy of the base plus archive recovery to the target LSN (what
 * pgBackRest, WAL-G and Barman do), and the pg_basebackup that such a restore needs first. The
 * measurement is bench/lib/pg_export_bench.ts, run with vite-node because it drives the PostgreSQL
 * cluster helpers of the tests. Seconds per GiB of restored relation files (base/ + global/).
 */
const { runTsMeasurement } = require('../lib/ts_measure');

function measure(params, log) {
  log(`W10: restore at an LSN — pgbench scale ${params.scale}, ${params.durationMs} ms of WAL; export per core vs PostgreSQL's archive recovery`);
  return runTsMeasurement('pg_export_bench.ts', [JSON.stringify(params)], 'W10: the export measurement');
}

async function runW10(ctx) {
  const { root, log, profile } = ctx;
  const p = profile.w10;
  const out = measure({ ...p, impls: ['native', 'ts'], root }, log);
  if (out.skipped) {
    log(`W10 skipped: ${out.skipped}`);
    return { skipped: out.skipped };
  }
  const n = out.cores.native;
  return {
    params: { ...p, pgVersion: out.pgVersion, walBytes: out.walBytes, targetLsn: out.targetLsn },
    cores: out.cores,
    replay: out.replay,
    basebackup: out.basebackup,
    ratios: {
      'native.export/replayRestore': out.replay.seconds / n.seconds,
      'native/ts.export': out.cores.ts.seconds / n.seconds,
    },
  };
}

module.exports = { runW10 };
