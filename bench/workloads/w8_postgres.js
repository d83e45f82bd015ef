'use strict';
/**
 * W8 — real PostgreSQL 15 WAL (the `plain` oracle fixture: pgbench plus a maintenance mix, built
 * and cached by test/helpers/pg_fixture.ts). Per core:
 *   ingest     importPgDatadir of base/, then ingestPgWal of the workload's WAL and a flush: MB/s of WAL
 *   redo       every heap and btree page of the workload's relations reconstructed at the end LSN
 *              from the freshly ingested layers (long chains: no image layer yet), with readPages:
 *              µs per page and per record applied; Neon's wal-redo process costs ≈ 160 µs per
 *              request (docs/PERFORMANCE.md), which is the per-page figure to set beside it
 *   storage    bytes of layer files after ingest, after compaction (forced images) and after GC to
 *              the end LSN, beside what an archive would keep: the base backup and the WAL zstd-compressed
 */
const fs = require('node:fs');
const path = require('node:path');
const { median } = require('../lib/harness');
const { IMPLS, tmpDir, openRepo, strata } = require('../lib/strata');
const { runTsMeasurement } = require('../lib/ts_measure');

const NEON_WALREDO_US_PER_REQUEST = 160;
const READ_BATCH = 64;
const ZSTD_LEVEL = 3;

function fixture(variant, log) {
  log(`W8: PostgreSQL fixture '${variant}' (built on first use)`);
  return runTsMeasurement('pg_fixture_cli.ts', [variant], 'W8: building the PostgreSQL fixture');
}

function dirBytes(dir) {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) n += dirBytes(p);
    else if (e.isFile()) n += fs.statSync(p).size;
  }
  return n;
}

/** What an archive keeps: every file of `dir` compressed with zstd (level 3, zstd's default). */
function zstdBytes(dir) {
  const zstd = require('zstd-napi');
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) n += zstdBytes(p);
    else if (e.isFile()) n += zstd.compress(fs.readFileSync(p), { compressionLevel: ZSTD_LEVEL }).length;
  }
  return n;
}

async function oneCore(impl, fx, root, rounds, log) {
  const ingestSec = [];
  const redo = [];
  let storage = null;
  let stats = null;
  for (let round = 0; round < rounds; round++) {
    const dir = tmpDir(root, `w8-${impl}-${round}`);
    const repo = await openRepo(dir, impl, { checkpointDistance: 64 * 2 ** 20 });
    try {
      const tl = await repo.createTimeline({ tenantId: 'pg', timelineId: 'main' });
      const t0 = performance.now();
      await tl.importPgDatadir(fx.baseDir);
      const t1 = performance.now();
      const r = await tl.ingestPgWal(fx.walDir);
      await tl.flush();
      const t2 = performance.now();
      ingestSec.push((t2 - t1) / 1000);
      const lsn = r.endLsn;
      const rels = (await tl.listRelations(lsn)).filter((x) => x.forkNum === 0 && x.nblocks > 0);
      const keys = rels.flatMap((x) => Array.from({ length: x.nblocks }, (_, b) => ({ spcOid: x.spcOid, dbOid: x.dbOid, relNumber: x.relNumber, forkNum: 0, blockNum: b })));
      const out = Buffer.allocUnsafe(READ_BATCH * 8192);
      tl.resetStats();
      const t3 = performance.now();
      for (let i = 0; i < keys.length; i += READ_BATCH) {
        const batch = keys.slice(i, i + READ_BATCH);
        tl.readPages(batch, lsn, out.subarray(0, batch.length * 8192));
      }
      const t4 = performance.now();
      const st = tl.stats();
      redo.push({ pages: keys.length, records: st.recordsApplied, ms: t4 - t3 });
      if (round === 0) {
        const afterIngest = tl.stats().physicalSizeBytes;
        await tl.compact({ force: true });
        const afterCompaction = tl.stats().physicalSizeBytes;
        await tl.gc({ horizon: 0n });
        const afterGc = tl.stats().physicalSizeBytes;
        storage = { afterIngest, afterCompaction, afterGc };
        stats = { records: r.records, blocks: r.blocks, importMs: t1 - t0, endLsn: strata.formatLsn(lsn) };
      }
    } finally {
      await repo.close();
    }
    log(`  W8 ${impl}: round ${round + 1}/${rounds}`);
  }
  const us = (x) => (x.ms * 1000);
  return {
    ingest: { seconds: { median: median(ingestSec), runs: ingestSec }, mbPerSec: { median: fx.walBytes / 2 ** 20 / median(ingestSec) } },
    redo: {
      pages: redo[0].pages,
      recordsApplied: redo[0].records,
      usPerPage: { median: median(redo.map((x) => us(x) / x.pages)) },
      usPerRecord: { median: median(redo.map((x) => us(x) / x.records)) },
      recordsPerPage: redo[0].records / redo[0].pages,
    },
    storage,
    stats,
  };
}

async function runW8(ctx) {
  const { root, log, profile } = ctx;
  const p = profile.w8;
  const fx = fixture(p.variant, log);
  if (fx.skipped) {
    log(`W8 skipped: ${fx.skipped}`);
    return { skipped: fx.skipped };
  }
  const result = { params: { ...p, walBytes: fx.walBytes, pgVersion: fx.pgVersion, neonWalRedoUsPerRequest: NEON_WALREDO_US_PER_REQUEST }, cores: {} };
  for (const impl of IMPLS) result.cores[impl] = await oneCore(impl, fx, root, p.rounds, log);
  result.archive = {
    walBytes: dirBytes(fx.walDir),
    walZstdBytes: zstdBytes(fx.walDir),
    baseBytes: dirBytes(fx.baseDir),
    baseZstdBytes: zstdBytes(fx.baseDir),
  };
  const n = result.cores.native;
  const t = result.cores.ts;
  const a = result.archive;
  result.ratios = {
    'native/ts.ingest': t.ingest.seconds.median / n.ingest.seconds.median,
    'native/ts.redoPerPage': t.redo.usPerPage.median / n.redo.usPerPage.median,
    'neon/native.perPage': NEON_WALREDO_US_PER_REQUEST / n.redo.usPerPage.median,
    'compacted/archive': n.storage.afterCompaction / (a.walZstdBytes + a.baseZstdBytes),
    'gc/archive': n.storage.afterGc / (a.walZstdBytes + a.baseZstdBytes),
  };
  return result;
}

module.exports = { runW8 };
