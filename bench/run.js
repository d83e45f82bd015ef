#!/usr/bin/env node
'use strict';
/**
 * `npm run bench [-- --quick | --tiny] [--out FILE] [--only w1,w2,w3,w4,w6,w7,w8,w9,w10,w11] [--keep]`
 * `npm run bench -- --report FILE` prints the tables of an earlier run's JSON again.
 *
 * Runs every workload for the native and the TypeScript core, the LMDB / SQLite baselines and the
 * machine floors in one process, prints Markdown tables (ops/s, MB/s, p50/p99 latency, ratios) and
 * writes bench/results/latest.json. Figures on this shared machine drift 20–50 % from run to run,
 * so every claim is a ratio of two numbers measured side by side in the same rounds of this run
 * (bench/lib/harness.js). Method and the latest results: docs/PERFORMANCE.md.
 *
 * Profiles: full (default, ~6 min here), --quick (< 2 min; the smoke test runs it), --tiny (seconds).
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const ROOT = path.join(__dirname, '..');
const DIST = path.join(ROOT, 'dist');

const PROFILES = {
  full: {
    harness: { time: 300, warmupTime: 100, rounds: 7 },
    w1: { smallPages: 128, largePages: 131072, note: 'large working set = 1 GiB of pages (131072)' },
    w2: { pages: 1000, patchCounts: [0, 1, 10, 50] },
    w3: { pages: 4000, updates: 100000, zipf: 1.0, checkpointDistance: 4 * 2 ** 20, rounds: 3, baselineRounds: 2 },
    w4: { pages: 8000, updates: 400_000, zipf: 1.0, l0Layers: 16, rounds: 3 },
    w7: { pages: 20_000, k: 10, rate: 4000, burst: 16, durationMs: 1500, rounds: 3 },
    w8: { variant: 'plain', rounds: 3 },
    w9: { durationMs: 20_000, clients: 4 },
    w10: { scale: 10, durationMs: 20_000, clients: 2 },
    w11: { pages: 4000, rounds: 16, updates: 10_000, reads: 10_000, zipf: 1.0, compactionTargetSize: 4 * 2 ** 20, heatImageBudget: 0.2 },
    w6: {
      seed: 7, zipfObjects: 100_000, zipfRequests: 2_000_000, alphas: [0.8, 1.0, 1.2], zipfFractions: [0.01, 0.1],
      arcMaxRequests: Infinity, arcFractions: [0.01, 0.05, 0.1], crossCheckRequests: 100_000,
    },
  },
  quick: {
    harness: { time: 150, warmupTime: 40, rounds: 3 },
    w1: { smallPages: 128, largePages: 8192, note: 'quick: large working set = 64 MiB (8192 pages)' },
    w2: { pages: 200, patchCounts: [0, 1, 10, 50] },
    w3: { pages: 500, updates: 8000, zipf: 1.0, checkpointDistance: 2 ** 20, rounds: 2, baselineRounds: 1 },
    w4: { pages: 1000, updates: 40_000, zipf: 1.0, l0Layers: 16, rounds: 2 },
    w7: { pages: 4000, k: 10, rate: 4000, burst: 16, durationMs: 400, rounds: 2 },
    w8: { variant: 'plain', rounds: 1 },
    w9: { durationMs: 4_000, clients: 4 },
    w10: { scale: 1, durationMs: 3_000, clients: 2 },
    w11: { pages: 1000, rounds: 8, updates: 2_500, reads: 2_500, zipf: 1.0, compactionTargetSize: 1 * 2 ** 20, heatImageBudget: 0.2 },
    w6: {
      seed: 7, zipfObjects: 20_000, zipfRequests: 200_000, alphas: [0.8, 1.0, 1.2], zipfFractions: [0.01, 0.1],
      arcMaxRequests: 300_000, arcFractions: [0.01, 0.05, 0.1], crossCheckRequests: 20_000,
    },
  },
  tiny: {
    harness: { time: 15, warmupTime: 5, rounds: 2 },
    w1: { smallPages: 64, largePages: 256, note: 'tiny: smoke-test size, numbers meaningless' },
    w2: { pages: 40, patchCounts: [0, 1, 10, 50] },
    w3: { pages: 50, updates: 500, zipf: 1.0, checkpointDistance: 16 * 1024, rounds: 1, baselineRounds: 1 },
    w4: { pages: 100, updates: 2000, zipf: 1.0, l0Layers: 12, rounds: 1 },
    w7: { pages: 400, k: 10, rate: 4000, burst: 16, durationMs: 40, rounds: 1 },
    w8: { variant: 'plain', rounds: 1 },
    w9: { durationMs: 2_000, clients: 2 },
    w10: { scale: 1, durationMs: 1_000, clients: 1 },
    w11: { pages: 300, rounds: 6, updates: 1_000, reads: 1_000, zipf: 1.0, compactionTargetSize: 512 * 1024, heatImageBudget: 0.2 },
    w6: {
      seed: 7, zipfObjects: 2_000, zipfRequests: 20_000, alphas: [0.8, 1.0, 1.2], zipfFractions: [0.01, 0.1],
      arcMaxRequests: 20_000, arcFractions: [0.01, 0.05, 0.1], crossCheckRequests: 5_000,
    },
  },
};

const SEEDS = { pages: 42, patches: 4242, access: 7 };

function parseArgs(argv) {
  const args = { profile: 'full', out: path.join(__dirname, 'results', 'latest.json'), only: null, keep: false, report: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') args.profile = 'quick';
    else if (a === '--tiny') args.profile = 'tiny';
    else if (a === '--full') args.profile = 'full';
    else if (a === '--out') args.out = path.resolve(argv[++i]);
    else if (a === '--only') args.only = new Set(argv[++i].split(','));
    else if (a === '--keep') args.keep = true;
    else if (a === '--report') args.report = path.resolve(argv[++i]);
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: node bench/run.js [--quick|--tiny] [--out FILE] [--only w1,w2,w3,w4,w6,w7,w8,w9,w10,w11] [--keep]\n' +
        '       node bench/run.js --report FILE   (print the tables of an earlier run\'s JSON)\n');
      process.exit(0);
    } else {
      process.stderr.write(`bench: unknown argument ${a}\n`);
      process.exit(2);
    }
  }
  return args;
}

function git(args) {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

function pkgVersion(name) {
  try {
    return JSON.parse(fs.readFileSync(require.resolve(`${name}/package.json`, { paths: [ROOT] }), 'utf8')).version;
  } catch {
    return null;
  }
}

function meta(args, profile) {
  const status = git(['status', '--porcelain']);
  const strata = require(`${DIST}/index.js`);
  return {
    date: new Date().toISOString(),
    commit: git(['rev-parse', 'HEAD']),
    // Others commit to this tree concurrently: say whether the measured tree had local changes.
    dirtyFiles: status === null ? null : status.split('\n').filter(Boolean).length,
    node: process.version,
    v8: process.versions.v8,
    platform: `${process.platform}-${process.arch}`,
    cpu: os.cpus()[0]?.model ?? null,
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    loadAvgAtStart: os.loadavg(),
    profile: args.profile,
    argv: process.argv.slice(2),
    seeds: SEEDS,
    sizes: profile,
    harness: { library: 'tinybench', version: pkgVersion('tinybench'), ...profile.harness, interleaving: 'rounds; task order reversed every other round; ratios per round, median [min–max]' },
    packages: { lmdb: pkgVersion('lmdb'), 'better-sqlite3': pkgVersion('better-sqlite3'), 'zstd-napi': pkgVersion('zstd-napi'), 'lz4-napi': pkgVersion('lz4-napi') },
    native: strata.nativeInfo(),
  };
}

/**
 * The performance issue's targets P1–P7, each a ratio (or latency, rate) from this run with its
 * threshold and whether the run met it; W-lines are reported without a target. `min`/`max`: the
 * median must be ≥ min / ≤ max.
 */
function targets(r) {
  const { w1, w2, w3, w4, w5, w6, w7 } = r.workloads;
  const t = [];
  const add = (id, what, value, target, bound = {}, extra = {}) => {
    const v = value && typeof value === 'object' ? value.median : value;
    const met = typeof v !== 'number' || !Number.isFinite(v) || (bound.min === undefined && bound.max === undefined)
      ? null : (bound.min === undefined || v >= bound.min) && (bound.max === undefined || v <= bound.max);
    t.push({ id, what, value: value ?? null, target, met, ...extra });
  };
  if (w1) {
    for (const size of ['small', 'large']) {
      const s = w1.sizes[size];
      const tag = `${size}, ${(s.workingSetBytes / 2 ** 20).toFixed(s.workingSetBytes < 2 ** 20 ? 2 : 0)} MiB`;
      add('P1', `decoded-page cache hit: readPages(64) per page ÷ memcpy floor (${tag})`, s.ratios['native.readPages64Decoded/floor.memcpy'], '≥ 0.5', { min: 0.5 });
      add('P1', `decoded-page cache hit: single readPage ÷ N-API copy floor (${tag})`, s.ratios['native.readPageDecoded/floor.napiCopy'], '≥ 0.6', { min: 0.6 });
      add('W1', `decoded-page cache hit ÷ native core read, readPage (${tag})`, s.ratios['native.readPageDecoded/native.readPage'], 'report');
      add('W1', `native core, no decoded-page cache: readPages(64) per page ÷ memcpy floor (${tag})`, s.ratios['native.readPages64/floor.memcpy'], 'report');
      add('W1', `native core, no decoded-page cache: single readPage ÷ N-API copy floor (${tag})`, s.ratios['native.readPage/floor.napiCopy'], 'report');
      for (const op of ['getPage', 'getPages64', 'readPage', 'readPages64']) {
        add('P2', `native ÷ TS, cached ${op} (${tag})`, s.ratios[`native/ts.${op}`], '≥ 1.0', { min: 1 });
      }
      add('P4', `native cached readPage ÷ LMDB readPage, GetPage@latest (${tag})`, s.ratios['native.readPage/lmdb.readPage'], '≥ 1.0', { min: 1 });
    }
    const u = w1.uncompressed;
    add('W1', 'native core, no decoded-page cache: readPages(64) per page ÷ memcpy floor (small, stored uncompressed)', u.ratios['native.readPages64/floor.memcpy'], 'report');
    add('W1', 'native core, no decoded-page cache: single readPage ÷ N-API copy floor (small, stored uncompressed)', u.ratios['native.readPage/floor.napiCopy'], 'report');
    const off = w1.sizes.small.ratios['native.getPageOffload/native.getPage'];
    if (off) add('W1', 'native getPage with every read sent to the thread pool ÷ default (cached reads inline)', off, 'report');
  }
  if (w2) {
    add('P2', 'native ÷ TS, reconstruct image + 10 (latest LSN)', w2.ratios['native/ts.k10.latest'], '≥ 3', { min: 3 });
    for (const k of w2.params.patchCounts) {
      add('P3', `native reconstruct image + ${k} ÷ lz4 decompression alone (C++)`, w2.ratios[`native.k${k}.latest/floor.lz4`], '≥ 0.5', { min: 0.5 });
    }
    const kb = w2.params.baselineK;
    add('P4', `native GetPage@latest (image + ${kb}) ÷ LMDB`, w2.ratios[`native.k${kb}.latest/lmdb`], '≥ 1.0', { min: 1 });
    add('P4', `native GetPage@old LSN (image + ${Math.floor(kb / 2)}) ÷ LMDB`, w2.ratios[`native.k${kb}.old/lmdb`], '≥ 1.0', { min: 1 });
    add('W2', `native latest LSN (image + ${kb}) ÷ SQLite`, w2.ratios[`native.k${kb}.latest/sqlite`], 'report');
    add('W2', `native old LSN (image + ${Math.floor(kb / 2)}) ÷ SQLite`, w2.ratios[`native.k${kb}.old/sqlite`], 'report');
    for (const k of w2.params.patchCounts) {
      add('P5', `native reconstruct image + ${k}: p99 µs (Neon, networked: p99 206 µs, median 49 µs)`, w2.native[`k${k}`].latest?.latencyUs?.p99, '≤ 20 µs', { max: 20 }, { unit: 'µs', p50: w2.native[`k${k}`].latest?.latencyUs?.p50 });
    }
  }
  if (w3) {
    add('P6', 'native ingest, ≈100-byte records incl. flush to L0: records/s', w3.native.recordsPerSec, '≥ 1 M/s', { min: 1e6 }, { unit: 'records/s', mbPerSec: w3.native.mbPerSec });
    add('W3', 'native ÷ TS ingest', w3.ratios['native/ts'], 'report');
    add('W3', 'native ingest ÷ LMDB (whole page versions)', w3.ratios['native/lmdb'], 'report');
    add('W3', 'native ingest ÷ SQLite (whole page versions)', w3.ratios['native/sqlite'], 'report');
  }
  if (w4) {
    add('W4', 'native L0 → L1 compaction: MB/s of L0 input', w4.native.compaction.mbPerSec, 'report', {}, { unit: 'MB/s' });
    add('W4', 'native image creation: MB/s of delta-layer input', w4.native.images.mbPerSec, 'report', {}, { unit: 'MB/s' });
    if (w4.nativeOpenLane) {
      add('W4', `native L0 → L1 compaction, background lane open (${w4.nativeOpenLane.backgroundThreads} slots)`, w4.nativeOpenLane.compactionMbPerSec, 'report', {}, { unit: 'MB/s' });
      add('W4', `native image creation, background lane open (${w4.nativeOpenLane.backgroundThreads} slots)`, w4.nativeOpenLane.imagesMbPerSec, 'report', {}, { unit: 'MB/s' });
    }
    add('W4', 'native ÷ TS, L0 → L1 compaction', w4.ratios['native/ts.compaction'], 'report');
    add('W4', 'native ÷ TS, image creation', w4.ratios['native/ts.images'], 'report');
  }
  if (w5) {
    add('P4', 'bytes on disk: Strata ÷ LMDB (all versions kept)', w5.ratios['native/lmdb'], '≤ 0.1 (10× smaller)', { max: 0.1 });
    add('P4', 'bytes on disk: Strata ÷ SQLite (all versions kept)', w5.ratios['native/sqlite'], '≤ 0.1 (10× smaller)', { max: 0.1 });
    add('W5', 'bytes on disk: Strata after compaction ÷ LMDB', w5.ratios['nativeCompacted/lmdb'], 'report');
  }
  if (w6) {
    // "Within 1 point of LRU": never more than 1 pt worse; where the clock beats LRU it is reported, not failed.
    add('P7', 'clock − LRU hit ratio, pt: worst (lowest) over every trace × size', w6.summary.clockMinusLruPt.min, '≥ −1 pt everywhere', { min: -1 }, { unit: 'pt' });
    add('W6', 'clock − LRU hit ratio, pt: best (highest) over every trace × size', w6.summary.clockMinusLruPt.max, 'report', {}, { unit: 'pt' });
    for (const trace of ['zipf1', 'arc-OLTP']) {
      const rows = w6.rows.filter((x) => x.trace === trace);
      if (rows.length === 0 && trace.startsWith('arc-') && w6.params.arc.skipped) {
        add('P7', `S3-FIFO (the option): share of the LRU→Belady gap closed on ${trace}`, null, 'skipped: ARC traces not found (see W6)', { min: 0.3 }, { skipped: w6.params.arc.skipped });
      }
      if (rows.length === 0) continue;
      const closed = rows.map((x) => x.lruToMinGapClosed.s3fifo);
      add('P7', `S3-FIFO (the option): share of the LRU→Belady gap closed on ${trace}, over cache sizes`, { median: require('./lib/harness').median(closed), min: Math.min(...closed), max: Math.max(...closed), n: closed.length }, '≥ 0.3', { min: 0.3 });
    }
    add('W6', 'S3-FIFO: share of the LRU→Belady gap closed, every trace × size', w6.summary.s3fifoGapClosed, 'report');
    add('W6', 'SIEVE: share of the LRU→Belady gap closed, every trace × size', w6.summary.sieveGapClosed, 'report');
    add('W6', 'worst S3-FIFO − LRU hit ratio, pt', w6.summary.worstS3fifoVsLruPt, 'report', {}, { unit: 'pt' });
    const paper = w6.oltpPaper;
    if (paper === null) {
      add('P7', 'adaptive S3-FIFO − ARC on arc-OLTP at the paper\'s 5 cache sizes, worst pt', null, 'skipped: ARC traces not found (see W6)', { min: 0 }, { skipped: w6.params.arc.skipped });
    } else {
      const what = paper.wholeTrace ? 'whole trace' : `first ${paper.requests} requests only`;
      add('P7', `adaptive S3-FIFO − ARC hit ratio on arc-OLTP at the paper's 5 cache sizes (ARC simulated in this run; ${what}), worst pt`, paper.worstAdaptiveMinusArcPt, '> 0 at every size', { min: 1e-9 }, { unit: 'pt' });
      if (paper.wholeTrace) add('W6', 'LRU simulator reproduces the ARC paper\'s OLTP LRU column (5 sizes, 2 decimals)', paper.lruReproducesPaper ? 1 : 0, '1 = exact', { min: 1 });
    }
    add('P7', 'worst adaptive S3-FIFO − LRU hit ratio on P3 and the Zipf + scan mixes, pt', w6.summary.worstAdaptiveVsLruPtOnP3AndScans, '≥ 0 (no worse than LRU)', { min: 0 }, { unit: 'pt' });
    add('W6', 'adaptive S3-FIFO: share of the LRU→Belady gap closed, every trace × size', w6.summary.adaptiveGapClosed, 'report');
  }
  if (w7) {
    add('W7', 'event-loop delay p99 under cold reads: native getPage ÷ native readPage (same offered load)', w7.ratios['native.getPage/native.readPage.loopDelayP99'], 'report (< 1: the loop waits less)');
    add('W7', 'event-loop delay p99 under cold reads: native getPage ÷ TS getPage', w7.ratios['native.getPage/ts.getPage.loopDelayP99'], 'report');
    add('W7', 'cold reads, saturated: native getPage ÷ TS getPage pages/s', w7.ratios['native.saturated/ts.saturated.pagesPerSec'], 'report');
    for (const impl of ['native', 'ts']) {
      if (!w7[impl] || !w7[impl].storm) continue;
      add('W7', `${impl}: event-loop delay p99 during an ingest + flush + compaction storm ÷ idle p99 (same run)`, w7[impl].storm.p99OverIdle, '≤ 2', { max: 2 });
      add('W7', `${impl}: event-loop delay p99 during the storm's awaited flush + compaction alone ÷ idle p99`, w7[impl].storm.maintenanceP99OverIdle, 'report');
      add('W7', `${impl}: event-loop delay p99 during the same ingest without flush or compaction ÷ idle p99`, w7[impl].ingestOnly.p99OverIdle, 'report');
    }
  }
  const w8 = r.workloads.w8;
  if (w8 && w8.skipped) add('W8', 'real PostgreSQL WAL', null, `skipped: ${w8.skipped}`, {}, { skipped: w8.skipped });
  if (w8 && !w8.skipped) {
    add('W8', 'native redo of real heap/btree pages: µs per page (Neon\'s wal-redo process: ≈ 160 µs per request)', w8.cores.native.redo.usPerPage.median, 'report', {}, { unit: 'µs' });
    add('W8', 'Neon\'s ≈ 160 µs per request ÷ native µs per page', w8.ratios['neon/native.perPage'], 'report');
    add('W8', 'native ÷ TS, redo of real pages', w8.ratios['native/ts.redoPerPage'], 'report');
    add('W8', 'native ingest of real WAL: MB/s (decode + store + flush)', w8.cores.native.ingest.mbPerSec, 'report', {}, { unit: 'MB/s' });
    add('W8', 'native ÷ TS, ingest of real WAL', w8.ratios['native/ts.ingest'], 'report');
    add('W8', 'bytes after compaction (all history) ÷ zstd(base + WAL)', w8.ratios['compacted/archive'], 'report');
    add('W8', 'bytes after GC to the end LSN ÷ zstd(base + WAL)', w8.ratios['gc/archive'], 'report');
  }
  const w9 = r.workloads.w9;
  if (w9 && w9.skipped) add('W9', 'following a live PostgreSQL primary', null, `skipped: ${w9.skipped}`, {}, { skipped: w9.skipped });
  if (w9 && !w9.skipped) {
    const n = w9.cores.native;
    add('W9', `native follow under pgbench (${w9.params.clients} clients): replication lag p50, ms (readable)`, n.lagMs.p50, 'report', {}, { unit: 'ms' });
    add('W9', 'native follow: replication lag p99, ms (readable)', n.lagMs.p99, 'report', {}, { unit: 'ms', bytesP50: n.lagBytes.p50, bytesP99: n.lagBytes.p99 });
    add('W9', 'native follow: durable lag p99, ms (default flush policy: 64 MiB or 10 s)', n.durableLagMs.p99, 'report', {}, { unit: 'ms' });
    add('W9', 'native follow: pgbench tps with the follower ÷ without (same 2 cores)', w9.ratios['native.tps/withoutFollower'], 'report');
    add('W9', 'native ÷ TS, catch-up MB/s of WAL', w9.ratios['native/ts.catchUp'], 'report');
  }
  const w10 = r.workloads.w10;
  if (w10 && w10.skipped) add('W10', 'restore at an LSN', null, `skipped: ${w10.skipped}`, {}, { skipped: w10.skipped });
  if (w10 && !w10.skipped) {
    add('W10', 'native export s/GiB (restored relation files)', w10.cores.native.secondsPerGiB, 'report', {}, { unit: 's/GiB' });
    add('W10', 'PostgreSQL restore (copy base + archive recovery to the LSN) ÷ native export, time', w10.ratios['native.export/replayRestore'], 'report');
    add('W10', 'TS ÷ native export time', w10.ratios['native/ts.export'], 'report');
  }
  const w11 = r.workloads.w11;
  if (w11) {
    add('W11', 'records applied per read p99 (Zipf reads, write-heavy): heat images off ÷ on', w11.ratios['off/on.appliedP99'], '≥ 2', { min: 2 });
    add('W11', 'bytes written: heat images on ÷ off', w11.ratios['on/off.bytesWritten'], '≤ 1.25', { max: 1.25 });
  }
  return t;
}

/** One top-level place for every floor measured in this run. */
function floors(r) {
  const f = {};
  const w1 = r.workloads.w1;
  if (w1) {
    for (const k of ['memcpy', 'napiCopy', 'napiBatch64']) {
      f[k] = {};
      for (const size of ['small', 'large']) f[k][size] = { pages: w1.sizes[size].pages, ...w1.sizes[size].floors[k] };
    }
  }
  const w2 = r.workloads.w2;
  if (w2) {
    for (const k of ['lz4', 'zstd']) f[k] = { pages: w2.params.floorPages, compressionRatio: w2.params.floorCompressionRatio[k], ...w2.floors[k] };
  }
  return f;
}

function printReport(r) {
  const T = require('./lib/table');
  const out = [];
  const m = r.meta;
  out.push(`\n## Strata benchmark — ${m.profile} profile, ${m.date}`);
  out.push(`${m.cpu} × ${m.cores}, Node ${m.node}, commit ${m.commit?.slice(0, 12) ?? '?'}${m.dirtyFiles ? ` (+${m.dirtyFiles} uncommitted files)` : ''}, ${m.harness.rounds} rounds × ${m.harness.time} ms per task\n`);
  const w1 = r.workloads.w1;
  if (w1) {
    for (const size of ['small', 'large']) {
      const s = w1.sizes[size];
      out.push(`### W1 cached GetPage@latest — ${s.pages} pages (${(s.workingSetBytes / 2 ** 20).toFixed(2)} MiB), lz4; cache hit ratio native ${T.fmtPct(s.native.cache.hitRatio)}, ts ${T.fmtPct(s.ts.cache.hitRatio)}`, '');
      const rows = [];
      for (const impl of ['native', 'ts']) for (const op of ['getPage', 'getPages64', 'readPage', 'readPages64']) rows.push(T.taskRow(`${impl} ${op}`, s[impl][op]));
      if (s.native.getPageOffload) rows.push(T.taskRow('native getPage, offloadCachedReads (every read via the thread pool)', s.native.getPageOffload));
      if (s.native.decoded) {
        const hit = T.fmtPct(s.native.decoded.hitRatio);
        rows.push(T.taskRow(`decoded-page cache readPage (hit ratio ${hit})`, s.native.decoded.readPage));
        rows.push(T.taskRow(`decoded-page cache readPages64 (hit ratio ${hit})`, s.native.decoded.readPages64));
      }
      for (const b of ['lmdb', 'sqlite']) rows.push(T.taskRow(`${b} readPage (seek ≤ lsn)`, s[b].readPage));
      rows.push(T.taskRow('floor: memcpy 8 KB → 64 distinct dst (C++)', s.floors.memcpy));
      rows.push(T.taskRow('floor: N-API copyInto (1 page/call)', s.floors.napiCopy));
      rows.push(T.taskRow('floor: N-API copyBatch (64 pages/call)', s.floors.napiBatch64));
      out.push(T.table(T.TASK_HEADERS, rows), '');
    }
    const u = w1.uncompressed;
    out.push(`### W1 same ${u.pages} pages stored uncompressed (compression 'none')`, '');
    const urows = ['native', 'ts'].flatMap((impl) => ['readPage', 'readPages64'].map((op) => T.taskRow(`${impl} ${op}`, u[impl][op])));
    urows.push(T.taskRow('floor: memcpy 8 KB → 64 distinct dst (C++)', u.floors.memcpy));
    urows.push(T.taskRow('floor: N-API copyInto (1 page/call)', u.floors.napiCopy));
    urows.push(T.taskRow('floor: N-API copyBatch (64 pages/call)', u.floors.napiBatch64));
    out.push(T.table(T.TASK_HEADERS, urows), '');
  }
  const w2 = r.workloads.w2;
  if (w2) {
    out.push(`### W2 reconstruct — ${w2.params.pages} pages, cache = ${w2.params.indexBlocks} index blocks + ${w2.params.cacheSlackBlocks}; hit ratio native ${T.fmtPct(w2.native.cache.hitRatio)}, ts ${T.fmtPct(w2.ts.cache.hitRatio)}`, '');
    const rows = [];
    for (const impl of ['native', 'ts']) {
      for (const k of w2.params.patchCounts) {
        rows.push(T.taskRow(`${impl} image+${k} @latest`, w2[impl][`k${k}`].latest));
        if (w2[impl][`k${k}`].old) rows.push(T.taskRow(`${impl} image+${Math.floor(k / 2)} @old LSN (of ${k})`, w2[impl][`k${k}`].old));
      }
    }
    const kb = w2.params.baselineK;
    for (const b of ['lmdb', 'sqlite']) {
      rows.push(T.taskRow(`${b} @latest (of ${kb})`, w2[b][`k${kb}`].latest));
      rows.push(T.taskRow(`${b} @old (of ${kb})`, w2[b][`k${kb}`].old));
    }
    rows.push(T.taskRow(`floor: lz4 decompress 8 KB (C++, ratio ${T.fmtNum(w2.params.floorCompressionRatio.lz4)})`, w2.floors.lz4));
    rows.push(T.taskRow(`floor: zstd-1 decompress 8 KB (C++, ratio ${T.fmtNum(w2.params.floorCompressionRatio.zstd)})`, w2.floors.zstd));
    rows.push(T.taskRow('reference: lz4-napi uncompressSync from JS (the TS core\'s decoder)', w2.references.lz4napiFromJs));
    out.push(T.table(T.TASK_HEADERS, rows), '');
  }
  const w3 = r.workloads.w3;
  const w5 = r.workloads.w5;
  if (w3 && w5) {
    out.push(`### W3 ingest / W5 bytes on disk — ${w3.params.pages} pages, ${w3.params.updates} patch records (Zipf ${w3.params.zipf}), all versions kept`, '');
    const rows = ['native', 'ts', 'lmdb', 'sqlite'].map((s) => [
      s, `${T.fmtRate(w3[s].recordsPerSec.median)}${w3[s].recordsPerSec.n > 1 ? ` [${T.fmtRate(w3[s].recordsPerSec.min)}–${T.fmtRate(w3[s].recordsPerSec.max)}]` : ''}`,
      T.fmtNum(w3[s].mbPerSec, 1), T.fmtNum(w5[s].bytesOnDisk / 2 ** 20, 1), T.fmtNum(w5[s].perLogicalPage / 1024, 1), T.fmtNum(w5[s].perPageVersion / 1024, 2),
    ]);
    rows.push(['native after compact --force', '–', '–', T.fmtNum(w5.native.afterCompaction.bytesOnDisk / 2 ** 20, 1), T.fmtNum(w5.native.afterCompaction.perLogicalPage / 1024, 1), T.fmtNum(w5.native.afterCompaction.perPageVersion / 1024, 2)]);
    out.push(T.table(['system', 'records/s median [min–max]', 'WAL MB/s', 'MiB on disk', 'KiB / logical page', 'KiB / page version'], rows), '');
  }
  const w4 = r.workloads.w4;
  if (w4) {
    const q = w4.params;
    out.push(`### W4 compaction — ${q.pages} pages + ${q.updates} patch records (${T.fmtNum(q.recordBytes / 1e6, 1)} MB), ${w4.native.compaction.inputLayers} L0 layers of ${T.fmtNum(w4.native.compaction.inputBytes / 1e6, 1)} MB; ${q.rounds} rounds; background lane: ${q.backgroundThreads ?? '?'} slot(s)`, '');
    const mb = (x) => `${T.fmtNum(x.median, 1)}${x.n > 1 ? ` [${T.fmtNum(x.min, 1)}–${T.fmtNum(x.max, 1)}]` : ''}`;
    const rows = [];
    for (const impl of ['native', 'ts']) {
      const c = w4[impl].compaction;
      const im = w4[impl].images;
      rows.push([`${impl} L0 → L1`, mb(c.mbPerSec), `${c.inputLayers} → ${c.outputLayers} layers`, T.fmtNum(c.inputBytes / 1e6, 1), T.fmtNum(c.outputBytes / 1e6, 1)]);
      rows.push([`${impl} image layer at the latest LSN`, mb(im.mbPerSec), 'every page reconstructed', T.fmtNum(im.inputBytes / 1e6, 1), T.fmtNum(im.outputBytes / 1e6, 1)]);
    }
    const open = w4.nativeOpenLane;
    if (open) {
      const what = `background lane open (${open.backgroundThreads} slots), same rounds`;
      rows.push(['native L0 → L1, lane open', mb(open.compactionMbPerSec), what, '', '']);
      rows.push(['native image layer, lane open', mb(open.imagesMbPerSec), what, '', '']);
    }
    out.push(T.table(['step', 'MB/s of input median [min–max]', 'what', 'input MB', 'output MB'], rows), '');
  }
  const w6 = r.workloads.w6;
  if (w6) {
    const same = (c) => `${c.requests} requests: ${c.match ? 'identical' : 'MISMATCH'}`;
    const checked = [['clock', w6.crossCheck], ['s3fifo', w6.crossCheckS3fifo], ['adaptive-s3fifo', w6.crossCheckAdaptive]].filter(([, c]) => c);
    out.push(`### W6 page-cache policy — hit ratios (simulators = engine's caches, ${checked.map(([n, c]) => `${n} on ${same(c)}`).join('; ')})`, '');
    const rows = w6.rows.map((x) => [
      x.trace, String(x.cacheBlocks), ...['clock', 'lru', 'arc', 'min', 'sieve', 's3fifo', 'adaptiveS3fifo'].map((p) => T.fmtPct(x.hitRatio[p])),
      T.fmtNum(x.clockMinusLruPt), T.fmtPct(x.lruToMinGapClosed.s3fifo), T.fmtPct(x.lruToMinGapClosed.adaptiveS3fifo),
    ]);
    out.push(T.table(['trace', 'cache blocks', 'clock', 'LRU', 'ARC', 'Belady MIN', 'SIEVE', 'S3-FIFO', 'adaptive S3-FIFO', 'clock−LRU pt', 'S3-FIFO gap closed', 'adaptive gap closed'], rows), '');
    if (w6.params.arc.skipped) out.push(`ARC rows skipped: ${w6.params.arc.skipped}`, '');
    if (w6.oltpPaper) {
      const pp = w6.oltpPaper;
      out.push(`OLTP at the ARC paper's cache sizes (${pp.wholeTrace ? 'whole trace' : `first ${pp.requests} requests: the paper's figures are for the whole trace`}; hit ratio %):`, '');
      const f2 = (x) => x.toFixed(2);
      out.push(T.table(['blocks', 'paper LRU', 'LRU', 'paper ARC', 'ARC', 'clock', 'S3-FIFO', 'adaptive S3-FIFO', 'adaptive − ARC pt'],
        pp.rows.map((x) => [String(x.blocks), f2(x.paper.lru), f2(x.hitPct.lru), f2(x.paper.arc), f2(x.hitPct.arc), f2(x.hitPct.clock), f2(x.hitPct.s3fifo), f2(x.hitPct.adaptiveS3fifo), f2(x.adaptiveMinusArcPt)])), '');
    }
  }
  const w7 = r.workloads.w7;
  if (w7) {
    const q = w7.params;
    out.push(`### W7 event-loop delay under cold reads — ${q.pages} pages × image + ${q.k}, page cache = index blocks only, layer files dropped from the OS cache before each round; ${q.offeredReadsPerSec} reads/s offered in bursts of ${q.burst}, ${q.rounds} × ${q.durationMs} ms`, '');
    const f = (x, d = 2) => (x && x.n ? T.fmtNum(x.median, d) : '–');
    const rows = [];
    const row = (label, m) => rows.push([label, T.fmtRate(m.pagesPerSec.median), f(m.loopDelayP50Ms), f(m.loopDelayP99Ms), f(m.loopDelayMaxMs), f(m.readLatencyP50Us, 0), f(m.readLatencyP99Us, 0), f(m.deviceReadBytesPerPage, 0)]);
    for (const impl of ['native', 'ts']) {
      row(`${impl} getPage (async) at the offered load`, w7[impl].getPage);
      row(`${impl} readPage (sync) at the offered load`, w7[impl].readPage);
      row(`${impl} getPage, ${q.burst} in flight (saturated)`, w7[impl].saturated);
    }
    row('idle loop (monitor floor)', w7.idle);
    out.push(T.table(['mode', 'pages/s', 'loop delay p50 ms', 'p99 ms', 'max ms', 'read p50 µs', 'read p99 µs', 'device bytes / page'], rows), '');
    if (q.storm) {
      const st = q.storm;
      out.push(`Storm: ${st.records} records (image + ${q.k}) ingested ${st.batchRecords} per call with a yield after each, checkpointDistance ${st.checkpointDistanceBytes / 2 ** 20} MiB, an awaited flush + compact({ force }) every ${st.maintenanceEveryBatches} calls; fresh repository per round; background lane: ${q.backgroundThreads ?? '?'} slot(s) (setBackgroundThreads); idle p99 from the same run:`, '');
      const srows = [];
      for (const impl of ['native', 'ts']) {
        for (const [label, m] of [['storm', w7[impl].storm], ['ingest only', w7[impl].ingestOnly]]) {
          if (!m) continue;
          srows.push([`${impl} ${label}`, T.fmtRate(m.recordsPerSec.median), f(m.loopDelayP50Ms), f(m.loopDelayP99Ms), f(m.loopDelayMaxMs), f(m.p99OverIdle), f(m.compactions, 0)]);
        }
        const m = w7[impl].storm;
        if (m && m.maintenanceLoopDelayP99Ms) srows.push([`${impl} storm: its awaited flush + compaction alone`, '–', '–', f(m.maintenanceLoopDelayP99Ms), '–', f(m.maintenanceP99OverIdle), '–']);
      }
      out.push(T.table(['mode', 'records/s', 'loop delay p50 ms', 'p99 ms', 'max ms', 'p99 ÷ idle p99', 'flush + compactions'], srows), '');
    }
  }
  const w8 = r.workloads.w8;
  if (w8 && w8.skipped) out.push(`### W8 real PostgreSQL WAL — skipped: ${w8.skipped}`, '');
  if (w8 && !w8.skipped) {
    const q = w8.params;
    const a = w8.archive;
    out.push(`### W8 real PostgreSQL 15 WAL — fixture '${q.variant}' (pgbench + maintenance), ${T.fmtNum(q.walBytes / 2 ** 20, 1)} MiB of WAL, ${q.rounds} round(s)`, '');
    const rows = ['native', 'ts'].map((impl) => {
      const c = w8.cores[impl];
      return [impl, T.fmtNum(c.ingest.mbPerSec.median, 1), `${c.stats.records}`, T.fmtNum(c.redo.usPerPage.median, 1), T.fmtNum(c.redo.usPerRecord.median, 2), T.fmtNum(c.redo.recordsPerPage, 1), `${c.redo.pages}`];
    });
    rows.push([`Neon wal-redo process (published)`, '–', '–', `≈ ${q.neonWalRedoUsPerRequest}`, '–', '–', '–']);
    out.push(T.table(['core', 'ingest MB/s of WAL', 'records', 'redo µs / page', 'µs / record applied', 'records / page', 'pages read'], rows), '');
    const n = w8.cores.native.storage;
    const mib = (x) => T.fmtNum(x / 2 ** 20, 1);
    out.push(T.table(['storage', 'MiB'], [
      ['Strata after ingest + flush (L0 layers, every LSN)', mib(n.afterIngest)],
      ['Strata after compact --force (L1 + images, every LSN)', mib(n.afterCompaction)],
      ['Strata after GC to the end LSN', mib(n.afterGc)],
      [`base backup raw / zstd-${3}`, `${mib(a.baseBytes)} / ${mib(a.baseZstdBytes)}`],
      [`WAL raw / zstd-${3}`, `${mib(a.walBytes)} / ${mib(a.walZstdBytes)}`],
    ], ['l', 'r']), '');
  }
  const w9 = r.workloads.w9;
  if (w9 && w9.skipped) out.push(`### W9 following a live PostgreSQL primary — skipped: ${w9.skipped}`, '');
  if (w9 && !w9.skipped) {
    const q = w9.params;
    out.push(`### W9 following a live PostgreSQL 15 primary — pgbench ${q.clients} clients unthrottled, ${q.durationMs / 1000} s per core, lag sampled every ${q.sampleMs} ms; pgbench alone: ${T.fmtNum(w9.tpsWithoutFollower, 0)} tps`, '');
    const mib = (x) => T.fmtNum(x / 2 ** 20, 2);
    const rows = ['native', 'ts'].map((impl) => {
      const c = w9.cores[impl];
      return [impl, T.fmtNum(c.tps, 0), T.fmtNum(c.walMBps, 1), `${mib(c.lagBytes.p50)} / ${mib(c.lagBytes.p99)}`, `${T.fmtNum(c.lagMs.p50, 0)} / ${T.fmtNum(c.lagMs.p99, 0)}`,
        `${T.fmtNum(c.durableLagMs.p50, 0)} / ${T.fmtNum(c.durableLagMs.p99, 0)}`, T.fmtNum(c.catchUp.mbPerSec, 1), `${c.lagMs.n}`];
    });
    out.push(T.table(['core', 'tps', 'WAL MB/s', 'lag MiB p50 / p99', 'lag ms p50 / p99 (readable)', 'durable ms p50 / p99', 'catch-up MB/s', 'samples'], rows), '');
  }
  const w10 = r.workloads.w10;
  if (w10 && w10.skipped) out.push(`### W10 restore at an LSN — skipped: ${w10.skipped}`, '');
  if (w10 && !w10.skipped) {
    const q = w10.params;
    out.push(`### W10 restore at an LSN — pgbench scale ${q.scale}, ${q.durationMs / 1000} s of pgbench (${T.fmtNum(q.walBytes / 2 ** 20, 1)} MiB of WAL) after the base; target ${q.targetLsn}`, '');
    const mib = (x) => T.fmtNum(x / 2 ** 20, 1);
    const rows = ['native', 'ts'].map((impl) => {
      const c = w10.cores[impl];
      return [`Strata export, ${impl} core`, T.fmtNum(c.seconds, 2), mib(c.bytes), T.fmtNum(c.secondsPerGiB, 1)];
    });
    rows.push([`PostgreSQL: copy base (${T.fmtNum(w10.replay.copySeconds, 2)} s) + archive recovery (${T.fmtNum(w10.replay.replaySeconds, 2)} s)`, T.fmtNum(w10.replay.seconds, 2), mib(w10.replay.bytes), T.fmtNum(w10.replay.secondsPerGiB, 1)]);
    rows.push(['pg_basebackup of the primary (the base a replay restore needs)', T.fmtNum(w10.basebackup.seconds, 2), mib(w10.basebackup.bytes), T.fmtNum(w10.basebackup.secondsPerGiB, 1)]);
    out.push(T.table(['restore', 's', 'MiB', 's/GiB'], rows, ['l', 'r', 'r', 'r']), '');
  }
  const w11 = r.workloads.w11;
  if (w11) {
    const q = w11.params;
    out.push(`### W11 heat-driven images — ${q.pages} pages, ${q.rounds} rounds × (${q.updates} Zipf(${q.zipf}) patches, flush, ${q.reads} Zipf reads, compact); heatImageBudget ${q.heatImageBudget}`, '');
    const rows = [];
    for (const impl of ['native', 'ts']) {
      for (const side of ['off', 'on']) {
        const c = w11.cores[impl][side];
        const a = c.recordsAppliedPerRead;
        rows.push([`${impl}, heat images ${side}`, String(a.p50), String(a.p99), T.fmtNum(c.meanApplied, 1), T.fmtNum(c.bytesWritten / 2 ** 20, 1), T.fmtNum(c.bytesImages / 2 ** 20, 1), `${c.hotImages} (${T.fmtNum(c.hotImageBytes / 2 ** 20, 2)} MiB)`]);
      }
    }
    out.push(T.table(['run', 'applied/read p50', 'p99', 'mean', 'MiB written', 'of which images', 'hot images'], rows, ['l', 'r', 'r', 'r', 'r', 'r', 'r']), '');
  }
  out.push('### Ratios the targets are phrased in (median [min–max] over rounds, both sides measured in the same rounds)', '');
  const shown = (x) => (x.unit === 'records/s' ? T.fmtRate(x.value?.median) : x.unit === 'µs' || x.unit === 'pt' || x.unit === 'ms' || x.unit === 's/GiB' ? T.fmtNum(x.value) : x.unit === 'MB/s' ? T.fmtNum(x.value?.median, 1) : T.fmtRatio(x.value));
  const verdict = (x) => (x.met === null ? '' : x.met ? 'met' : 'missed');
  out.push(T.table(['ref', 'ratio', 'this run', 'target', ''], r.targets.map((x) => [x.id, x.what, shown(x), x.target, verdict(x)]), ['l', 'l', 'r', 'l', 'l']));
  out.push('');
  process.stdout.write(out.join('\n') + '\n');
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.report !== null) {
    printReport(JSON.parse(fs.readFileSync(args.report, 'utf8')));
    return;
  }
  if (!fs.existsSync(path.join(DIST, 'index.js'))) {
    process.stderr.write('bench: dist/ is missing; run `npm run build` (or `npm install`) first\n');
    process.exit(1);
  }
  // The native core is the point of half the comparisons: refuse to run without it.
  require('./lib/strata').requireNative('bench');
  const profile = PROFILES[args.profile];
  const { Harness } = require('./lib/harness');
  const { benchRoot } = require('./lib/strata');
  const started = performance.now();
  const log = (s) => process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1)}s] ${s}\n`);
  const harness = new Harness({ ...profile.harness, log });
  const root = benchRoot();
  const ctx = { harness, profile, root, log, seeds: SEEDS };
  const result = { meta: meta(args, profile), floors: null, workloads: {}, targets: null };
  // The floors come from their own addon (scripts/build-bench.js builds it on first use).
  require('./lib/floors').floorsBinding();
  const want = (w) => args.only === null || args.only.has(w);
  try {
    if (want('w1')) result.workloads.w1 = await require('./workloads/w1_cached').runW1(ctx);
    if (want('w2')) result.workloads.w2 = await require('./workloads/w2_reconstruct').runW2(ctx);
    if (want('w3') || want('w5')) {
      const { w3, w5 } = await require('./workloads/w3_ingest').runW3W5(ctx);
      result.workloads.w3 = w3;
      result.workloads.w5 = w5;
    }
    if (want('w4')) result.workloads.w4 = await require('./workloads/w4_compaction').runW4(ctx);
    if (want('w6')) result.workloads.w6 = await require('./workloads/w6_policy').runW6(ctx);
    if (want('w7')) result.workloads.w7 = await require('./workloads/w7_event_loop').runW7(ctx);
    if (want('w8')) result.workloads.w8 = await require('./workloads/w8_postgres').runW8(ctx);
    if (want('w9')) result.workloads.w9 = await require('./workloads/w9_follow').runW9(ctx);
    if (want('w10')) result.workloads.w10 = await require('./workloads/w10_export').runW10(ctx);
    if (want('w11')) result.workloads.w11 = await require('./workloads/w11_heat_images').runW11(ctx);
  } finally {
    if (!args.keep) fs.rmSync(root, { recursive: true, force: true });
    else log(`kept ${root}`);
  }
  result.floors = floors(result);
  result.targets = targets(result);
  // The page service's load benchmark runs on its own (npm run bench:serve: server and load in
  // separate processes); its latest results ride along here when present.
  const serveJson = path.join(__dirname, 'results', 'serve.json');
  if (fs.existsSync(serveJson)) result.serve = { file: 'bench/results/serve.json', ...JSON.parse(fs.readFileSync(serveJson, 'utf8')) };
  result.meta.loadAvgAtEnd = os.loadavg();
  result.meta.elapsedSec = (performance.now() - started) / 1000;
  fs.mkdirSync(path.dirname(args.out), { recursive: true });
  fs.writeFileSync(args.out, JSON.stringify(result, (_key, v) => (typeof v === 'bigint' ? v.toString() : v === Infinity ? 'Infinity' : v), 2) + '\n');
  printReport(result);
  log(`wrote ${path.relative(process.cwd(), args.out) || args.out} in ${result.meta.elapsedSec.toFixed(0)} s`);
}

main().catch((e) => {
  process.stderr.write(`bench: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
