#!/usr/bin/env node
'use strict';
/**
 * `npm run bench [-- --quick | --tiny] [--out FILE] [--only w1,w2,w3,w6] [--keep]`
 * `npm run bench -- --report FILE` prints the tables of an earlier run's JSON again.
 *
 * Runs every workload for the native and the TypeScript core, the LMDB / SQLite baselines and the
 * machine floors in one process, prints Markdown tables (ops/s, MB/s, p50/p99 latency, ratios) and
 * writes bench/results/latest.json. Figures on this shared machine drift 20–50 % from run to run,
 * so every claim is a ratio of two numbers measured side by side in the same rounds of this run
 * (bench/lib/harness.js). Method and the latest results: docs/PERFORMANCE.md.
 *
 * Profiles: full (default, ~10 min), --quick (< 2 min), --tiny (seconds; the smoke test's size).
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
      process.stdout.write('usage: node bench/run.js [--quick|--tiny] [--out FILE] [--only w1,w2,w3,w6] [--keep]\n' +
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

/** The ratios the performance targets are phrased in, gathered from the workloads. */
function targets(r) {
  const w1 = r.workloads.w1;
  const w2 = r.workloads.w2;
  const w3 = r.workloads.w3;
  const w5 = r.workloads.w5;
  const w6 = r.workloads.w6;
  const t = [];
  const add = (id, what, value, reference, extra = {}) => t.push({ id, what, value: value ?? null, reference, ...extra });
  if (w1) {
    for (const size of ['small', 'large']) {
      const s = w1.sizes[size];
      const tag = `${size}, ${(s.workingSetBytes / 2 ** 20).toFixed(s.workingSetBytes < 2 ** 20 ? 2 : 0)} MiB`;
      add('G1', `native cached getPages(64) per page ÷ memcpy floor (${tag})`, s.ratios['native.getPages64/floor.memcpy'], '≥ 0.5 (machine-limits G1)');
      add('G1', `native cached readPages(64) per page ÷ memcpy floor (${tag})`, s.ratios['native.readPages64/floor.memcpy'], '≥ 0.5 (machine-limits G1)');
      add('G2', `native single getPage ÷ N-API copy floor (${tag})`, s.ratios['native.getPage/floor.napiCopy'], '≥ 0.6 (machine-limits G2)');
      add('G2', `native single readPage ÷ N-API copy floor (${tag})`, s.ratios['native.readPage/floor.napiCopy'], '≥ 0.6 (machine-limits G2)');
      for (const op of ['getPage', 'getPages64', 'readPage', 'readPages64']) {
        add('G4', `native ÷ TS, cached ${op} (${tag})`, s.ratios[`native/ts.${op}`], op.endsWith('64') && size === 'large' ? '≥ 1.3 (machine-limits G4, batched, large cache)' : '≥ 1.0 (machine-limits G4, hits)');
      }
    }
    // The same small set stored uncompressed: how far the path is from the floors without lz4.
    const u = w1.uncompressed;
    add('G1', 'native cached readPages(64) per page ÷ memcpy floor (small, stored uncompressed)', u.ratios['native.readPages64/floor.memcpy'], '≥ 0.5 (machine-limits G1); informational');
    add('G2', 'native single readPage ÷ N-API copy floor (small, stored uncompressed)', u.ratios['native.readPage/floor.napiCopy'], '≥ 0.6 (machine-limits G2); informational');
    add('G4', 'native ÷ TS, cached readPages64 (small, stored uncompressed)', u.ratios['native/ts.readPages64'], 'informational');
  }
  if (w2) {
    add('G4', 'native ÷ TS, reconstruct image + 10 (latest LSN)', w2.ratios['native/ts.k10.latest'], '≥ 2 (machine-limits G4, reconstruct)');
    for (const k of w2.params.patchCounts) {
      add('G5', `native reconstruct image + ${k} ÷ lz4 decompression alone (C++)`, w2.ratios[`native.k${k}.latest/floor.lz4`], '≥ 0.5 with 0 records (machine-limits G5); curve reported');
    }
    const kb = w2.params.baselineK;
    add('W2', `native latest LSN (image + ${kb}) ÷ LMDB`, w2.ratios[`native.k${kb}.latest/lmdb`], 'report');
    add('W2', `native old LSN (image + ${Math.floor(kb / 2)}) ÷ LMDB`, w2.ratios[`native.k${kb}.old/lmdb`], 'report');
    add('W2', `native latest LSN (image + ${kb}) ÷ SQLite`, w2.ratios[`native.k${kb}.latest/sqlite`], 'report');
    add('W2', `native old LSN (image + ${Math.floor(kb / 2)}) ÷ SQLite`, w2.ratios[`native.k${kb}.old/sqlite`], 'report');
    for (const k of w2.params.patchCounts) {
      add('W2', `native reconstruct image + ${k}: p99 µs (Neon PR #1495: p99 206 µs, median 49 µs)`, w2.native[`k${k}`].latest?.latencyUs?.p99, 'Neon 206 µs', { unit: 'µs', p50: w2.native[`k${k}`].latest?.latencyUs?.p50 });
    }
  }
  if (w3) {
    add('W3', 'native ingest, ≈100-byte records incl. flush to L0: records/s', w3.native.recordsPerSec, 'report', { unit: 'records/s', mbPerSec: w3.native.mbPerSec });
    add('W3', 'native ÷ TS ingest', w3.ratios['native/ts'], 'report');
    add('W3', 'native ingest ÷ LMDB (whole page versions)', w3.ratios['native/lmdb'], 'report');
    add('W3', 'native ingest ÷ SQLite (whole page versions)', w3.ratios['native/sqlite'], 'report');
  }
  if (w5) {
    add('W5', 'bytes on disk: Strata ÷ LMDB (all versions kept)', w5.ratios['native/lmdb'], 'report');
    add('W5', 'bytes on disk: Strata ÷ SQLite (all versions kept)', w5.ratios['native/sqlite'], 'report');
    add('W5', 'bytes on disk: Strata after compaction ÷ LMDB', w5.ratios['nativeCompacted/lmdb'], 'report');
  }
  if (w6) {
    add('G7', 'clock − LRU hit ratio, percentage points (median [min–max] over traces × sizes)', w6.summary.clockMinusLruPt, 'within ±2 % of LRU (machine-limits G7)', { unit: 'pt' });
    add('G7', 'SIEVE: share of the LRU→Belady gap closed (median [min–max])', w6.summary.sieveGapClosed, '≥ 30 % (machine-limits G7)');
    add('G7', 'S3-FIFO: share of the LRU→Belady gap closed (median [min–max])', w6.summary.s3fifoGapClosed, '≥ 30 % (machine-limits G7)');
    add('G7', 'worst SIEVE − LRU hit ratio, pt', w6.summary.worstSieveVsLruPt, '≥ −2 pt on scan mixes (machine-limits G7)', { unit: 'pt' });
    add('G7', 'worst S3-FIFO − LRU hit ratio, pt', w6.summary.worstS3fifoVsLruPt, '≥ −2 pt on scan mixes (machine-limits G7)', { unit: 'pt' });
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
  const w6 = r.workloads.w6;
  if (w6) {
    const same = (c) => `${c.requests} requests: ${c.match ? 'identical' : 'MISMATCH'}`;
    out.push(`### W6 page-cache policy — hit ratios (clock simulator = engine's caches on ${same(w6.crossCheck)}${w6.crossCheckS3fifo ? `; S3-FIFO simulator = engine's s3fifo caches on ${same(w6.crossCheckS3fifo)}` : ''})`, '');
    const rows = w6.rows.map((x) => [
      x.trace, String(x.cacheBlocks), ...['clock', 'lru', 'min', 'sieve', 's3fifo'].map((p) => T.fmtPct(x.hitRatio[p])),
      T.fmtNum(x.clockMinusLruPt), T.fmtPct(x.lruToMinGapClosed.sieve), T.fmtPct(x.lruToMinGapClosed.s3fifo),
    ]);
    out.push(T.table(['trace', 'cache blocks', 'clock', 'LRU', 'Belady MIN', 'SIEVE', 'S3-FIFO', 'clock−LRU pt', 'SIEVE gap closed', 'S3-FIFO gap closed'], rows), '');
  }
  out.push('### Ratios the targets are phrased in (median [min–max] over rounds, both sides measured in the same rounds)', '');
  out.push(T.table(['ref', 'ratio', 'this run', 'reference / target'], r.targets.map((x) => [x.id, x.what, x.unit === 'records/s' ? T.fmtRate(x.value?.median) : x.unit === 'µs' ? T.fmtNum(x.value) : T.fmtRatio(x.value), x.reference]), ['l', 'l', 'r', 'l']));
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
  const profile = PROFILES[args.profile];
  const { Harness } = require('./lib/harness');
  const { benchRoot } = require('./lib/strata');
  const started = performance.now();
  const log = (s) => process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1)}s] ${s}\n`);
  const harness = new Harness({ ...profile.harness, log });
  const root = benchRoot();
  const ctx = { harness, profile, root, log, seeds: SEEDS };
  const result = { meta: meta(args, profile), floors: null, workloads: {}, targets: null };
  // The native core is the point of half the comparisons: refuse to run without it.
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
    if (want('w6')) result.workloads.w6 = await require('./workloads/w6_policy').runW6(ctx);
  } finally {
    if (!args.keep) fs.rmSync(root, { recursive: true, force: true });
    else log(`kept ${root}`);
  }
  result.floors = floors(result);
  result.targets = targets(result);
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
