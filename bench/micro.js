#!/usr/bin/env node
'use strict';
/**
 * Microbenchmarks, native core versus TS core, in Benchmark.js (npm run bench:micro; ≈ 1.5 min).
 *
 * `npm run bench:micro [-- --quick] [--out FILE] [--only case,case]`
 *
 * Each case is one hot operation of the core, measured as a pair — the same call on the native and
 * on the TS core, over the same data — by a Benchmark.js suite, which prints its familiar lines
 * ("x ops/sec ±y% (n runs sampled)", "Fastest is …"). A table of native ÷ TS ratios ends the run,
 * and bench/results/micro.json (git-ignored) keeps every figure with the run's metadata.
 *
 * This is the quick look: one pair at a time, no rounds, no latency percentiles. The figures of
 * record (ratios over interleaved rounds, floors, baselines, the targets) come from `npm run bench`
 * (bench/run.js, docs/PERFORMANCE.md). `--quick` runs every case for a few milliseconds: a check
 * that it all runs (test/bench_smoke.test.ts), numbers meaningless.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const Benchmark = require('benchmark');
const { strata, DIST, requireNative } = require('./lib/strata');
const { PAGE_SIZE, Rng, heapPages, patchFor, keyOf } = require('./lib/data');
const T = require('./lib/table');

const ROOT = path.join(__dirname, '..');
const IMPLS = ['native', 'ts'];

// Benchmark.js would otherwise recompile each test function from its source text, which loses the
// closures every case here relies on; calling the function as is costs both cores the same.
Benchmark.support.decompilation = false;

/** Benchmark.js options per profile: time per benchmark (s), samples, cycle time, pause between cycles. */
const PROFILES = {
  full: { maxTime: 4, minSamples: 5, minTime: 0, delay: 0.005 },
  quick: { maxTime: 0.005, minSamples: 1, minTime: 0.001, delay: 0 },
};

/** Pages of the read cases' repositories, and the batch size of getPages. */
const PAGES = 1024;
const BATCH = 64;
const PATCHES = 10;
/** Records per written layer, and the page-cache sizes of the cache cases (pages). */
const LAYER_RECORDS = 1000;
const CACHE_HIT_PAGES = 512;
const CACHE_EVICT_PAGES = 256;

function parseArgs(argv) {
  const args = { profile: 'full', out: path.join(__dirname, 'results', 'micro.json'), only: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') args.profile = 'quick';
    else if (a === '--out') args.out = path.resolve(argv[++i]);
    else if (a === '--only') args.only = new Set(argv[++i].split(','));
    else if (a === '--help' || a === '-h') {
      process.stdout.write(`usage: node bench/micro.js [--quick] [--out FILE] [--only ${CASES.map((c) => c.id).join(',')}]\n`);
      process.exit(0);
    } else {
      process.stderr.write(`bench:micro: unknown argument ${a}\n`);
      process.exit(2);
    }
  }
  return args;
}

/** Where layer files go: tmpfs where there is one, so fsync does not drown what the cores do. */
function scratchRoot() {
  const shm = '/dev/shm';
  const base = fs.existsSync(shm) && fs.statSync(shm).isDirectory() ? shm : os.tmpdir();
  return fs.mkdtempSync(path.join(base, 'strata-micro-'));
}

// ---------------------------------------------------------------------------------------------
// Data shared by the cases: identical bytes for both cores.

const pages = heapPages(42, PAGES);
const keys = pages.map((_p, i) => keyOf(i));
const RECONSTRUCT_KEY = { spcOid: 1663, dbOid: 5, relNumber: 99999, forkNum: 0, blockNum: 0 };

/** Every page as an image, then one page as an image plus PATCHES patches; returns the LSN after. */
function readDataset(tl) {
  let lsn = 0x100n;
  const recs = pages.map((page, i) => ({ lsn: lsn++, key: keys[i], kind: 'image', page }));
  tl.ingest(recs);
  const rng = new Rng(7);
  const base = pages[0];
  tl.ingest([{ lsn: lsn++, key: RECONSTRUCT_KEY, kind: 'image', page: base }]);
  for (let i = 0; i < PATCHES; i++) {
    const { offset, data } = patchFor(rng, base);
    tl.ingest([{ lsn: lsn++, key: RECONSTRUCT_KEY, kind: 'patch', offset, data }]);
  }
  return lsn - 1n;
}

/** A repository per core holding readDataset(), flushed to a layer file, page cache warmed. */
async function openReadRepos(root) {
  const out = {};
  for (const impl of IMPLS) {
    const repo = await strata.Repository.open(path.join(root, `read-${impl}`), { implementation: impl });
    const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
    const lsn = readDataset(tl);
    await tl.flush();
    const into = Buffer.alloc(PAGE_SIZE);
    for (const k of keys) tl.readPage(k, lsn, into);
    tl.readPage(RECONSTRUCT_KEY, lsn, into);
    out[impl] = { repo, tl, lsn };
  }
  return out;
}

/** LAYER_RECORDS ≈100-byte patches over 100 pages, sorted as a delta layer wants them, encoded once. */
function layerAppendArgs() {
  const { encodeKey, KEY_SIZE } = require(`${DIST}/key.js`);
  const { serializeRecord, recordWillInit } = require(`${DIST}/record.js`);
  const { encodeBlob } = require(`${DIST}/core/compress.js`);
  const { CODEC_LZ4 } = require(`${DIST}/core/format.js`);
  const rng = new Rng(11);
  const entries = [];
  const perKey = LAYER_RECORDS / 100;
  for (let k = 0; k < 100; k++) {
    const key = encodeKey(keys[k]);
    for (let v = 0; v < perKey; v++) {
      const lsn = BigInt(0x1000 + v * 100 + k);
      const rec = v === 0
        ? serializeRecord({ lsn, key: keys[k], kind: 'image', page: pages[k] })
        : serializeRecord({ lsn, key: keys[k], kind: 'patch', ...patchFor(rng, pages[k]) });
      entries.push({ key, lsn, rec });
    }
  }
  entries.sort((a, b) => Buffer.compare(a.key, b.key) || (a.lsn < b.lsn ? -1 : 1));
  const indexKeys = Buffer.alloc(entries.length * (KEY_SIZE + 8));
  entries.forEach((e, i) => {
    e.key.copy(indexKeys, i * (KEY_SIZE + 8));
    indexKeys.writeBigUInt64BE(e.lsn, i * (KEY_SIZE + 8) + KEY_SIZE);
  });
  const blobs = Buffer.concat(entries.map((e) => encodeBlob(CODEC_LZ4, e.rec)));
  const willInit = Uint8Array.from(entries.map((e) => (recordWillInit(e.rec) ? 1 : 0)));
  return { codec: CODEC_LZ4, indexKeys, blobs, willInit, lsnEnd: BigInt(0x1000 + perKey * 100) };
}

// ---------------------------------------------------------------------------------------------
// The cases. setup(ctx) returns, per core, the function Benchmark.js times ({ fn } or, for a
// promise, { defer: true, fn(deferred) }); `unit` says what one op is.

const CASES = [
  {
    id: 'readPage',
    name: 'readPage, cached (sync, into a caller buffer)',
    unit: 'page',
    setup: ({ read }) => perCore((impl) => {
      const { tl, lsn } = read[impl];
      const into = Buffer.alloc(PAGE_SIZE);
      let i = 0;
      return { fn: () => tl.readPage(keys[i++ & (PAGES - 1)], lsn, into) };
    }),
  },
  {
    id: 'getPage',
    name: 'getPage, cached (async)',
    unit: 'page',
    setup: ({ read }) => perCore((impl) => {
      const { tl, lsn } = read[impl];
      let i = 0;
      return { defer: true, fn: (d) => tl.getPage(keys[i++ & (PAGES - 1)], lsn).then(() => d.resolve()) };
    }),
  },
  {
    id: 'getPages64',
    name: `getPages(${BATCH}), cached (async)`,
    unit: `call of ${BATCH} pages`,
    setup: ({ read }) => perCore((impl) => {
      const { tl, lsn } = read[impl];
      const batches = [];
      for (let b = 0; b < PAGES; b += BATCH) batches.push(keys.slice(b, b + BATCH));
      let i = 0;
      return { defer: true, fn: (d) => tl.getPages(batches[i++ % batches.length], lsn).then(() => d.resolve()) };
    }),
  },
  {
    id: 'reconstruct10',
    name: `reconstruct image + ${PATCHES} patches (readPage, blocks cached)`,
    unit: 'page',
    setup: ({ read }) => perCore((impl) => {
      const { tl, lsn } = read[impl];
      const into = Buffer.alloc(PAGE_SIZE);
      return { fn: () => tl.readPage(RECONSTRUCT_KEY, lsn, into) };
    }),
  },
  {
    id: 'cacheLookup',
    name: 'page cache lookup, hit (8 KB copy out)',
    unit: 'lookup',
    setup: ({ cores }) => perCore((impl) => {
      const c = cores(impl, CACHE_HIT_PAGES * 2).pageCache;
      for (let b = 0; b < CACHE_HIT_PAGES; b++) c.insert(1, b, pages[b]);
      const into = Buffer.alloc(PAGE_SIZE);
      let i = 0;
      return { fn: () => c.lookup(1, i++ & (CACHE_HIT_PAGES - 1), into) };
    }),
  },
  {
    id: 'cacheInsert',
    name: 'page cache insert into a full cache (evicts one page)',
    unit: 'insert',
    setup: ({ cores }) => perCore((impl) => {
      const c = cores(impl, CACHE_EVICT_PAGES).pageCache;
      for (let b = 0; b < CACHE_EVICT_PAGES; b++) c.insert(1, b, pages[b]);
      let n = 0;
      return { fn: () => { c.insert(2, n, pages[n & (PAGES - 1)]); n++; } };
    }),
  },
  {
    id: 'layerWrite',
    name: `layer write (flush) of ${LAYER_RECORDS} records: append, index, summary, fsync`,
    unit: 'layer file',
    setup: ({ cores, scratch }) => {
      const { KEY_MIN, KEY_MAX } = require(`${DIST}/key.js`);
      const a = layerAppendArgs();
      return perCore((impl) => {
        const core = cores(impl, 16 * PAGE_SIZE);
        const file = path.join(scratch, `layer-${impl}`);
        const opts = { kind: 'delta', codec: a.codec, keyStart: KEY_MIN, keyEnd: KEY_MAX, lsnStart: 0x1000n, lsnEnd: a.lsnEnd };
        return {
          fn: () => {
            const w = core.createLayerWriter(file, opts);
            w.append(a.indexKeys, a.blobs, a.willInit);
            w.finish();
          },
        };
      });
    },
  },
  ...[['lz4', 'CODEC_LZ4'], ['zstd', 'CODEC_ZSTD']].map(([codecName, constant]) => ({
    id: `decompress_${codecName}`,
    name: `${codecName} decompression of an 8 KB heap page`,
    unit: 'page',
    setup: () => {
      const format = require(`${DIST}/core/format.js`);
      const { encodeBlob } = require(`${DIST}/core/compress.js`);
      const { decompress: tsDecompress } = require(`${DIST}/core/ts/codec.js`);
      const codec = format[constant];
      // The stored payload of a blob: what follows its header and raw length (docs/FORMAT.md, "Blobs").
      const payloads = pages.slice(0, 64).map((p) => {
        const blob = encodeBlob(codec, p);
        if (blob.readUInt32BE(0) >>> format.BLOB_CODEC_SHIFT !== codec) throw new Error(`a heap page did not compress with ${codecName}`);
        return blob.subarray(format.BLOB_HEADER_SIZE + format.BLOB_RAW_LEN_SIZE);
      });
      const binding = require(`${DIST}/core/native.js`).loadNativeBinding();
      const via = { native: (s) => binding.decompress(codec, s, PAGE_SIZE), ts: (s) => tsDecompress(codec, s, PAGE_SIZE) };
      return perCore((impl) => {
        let i = 0;
        return { fn: () => via[impl](payloads[i++ & 63]) };
      });
    },
  })),
];

function perCore(make) {
  return Object.fromEntries(IMPLS.map((impl) => [impl, make(impl)]));
}

/** Runs one case's pair as a Benchmark.js suite; resolves to its result entry. */
function runCase(c, fns, options) {
  return new Promise((resolve, reject) => {
    const suite = new Benchmark.Suite(c.name);
    for (const impl of IMPLS) {
      const { fn, defer = false } = fns[impl];
      suite.add(`${c.name} [${impl}]`, fn, { ...options, defer });
    }
    const results = {};
    suite.on('cycle', (e) => {
      const b = e.target;
      process.stdout.write(`${String(b)}\n`);
      const impl = b.name.endsWith('[native]') ? 'native' : 'ts';
      results[impl] = { opsPerSec: b.hz, rmePct: b.stats.rme, samples: b.stats.sample.length, meanUs: b.stats.mean * 1e6 };
    });
    suite.on('error', (e) => reject(e.target.error));
    suite.on('complete', function onComplete() {
      const fastest = this.filter('fastest').map('name');
      process.stdout.write(`Fastest is ${fastest.join(', ')}\n\n`);
      resolve({
        id: c.id, name: c.name, unit: c.unit, ...results,
        fastest: fastest.map((n) => (n.endsWith('[native]') ? 'native' : 'ts')),
        nativeOverTs: results.native.opsPerSec / results.ts.opsPerSec,
      });
    });
    suite.run({ async: true });
  });
}

function git(args) {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

function meta(profile) {
  const cpus = os.cpus();
  return {
    date: new Date().toISOString(),
    commit: git(['rev-parse', 'HEAD']),
    node: process.version,
    cpu: cpus[0] ? cpus[0].model : null,
    cores: cpus.length,
    loadAvg: os.loadavg(),
    profile: profile.name,
    harness: { library: 'benchmark', version: Benchmark.version, options: profile.options },
    native: strata.nativeInfo(),
  };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  requireNative('bench:micro');
  const options = PROFILES[args.profile];
  const started = performance.now();
  const scratch = scratchRoot();
  const opened = [];
  const cores = (impl, pageCachePages) => {
    const { createCore } = require(`${DIST}/core/select.js`);
    const core = createCore(impl, { pageCacheBytes: pageCachePages * PAGE_SIZE });
    opened.push(core);
    return core;
  };
  const result = { meta: meta({ name: args.profile, options }), cases: [] };
  let read = null;
  try {
    const chosen = CASES.filter((c) => args.only === null || args.only.has(c.id));
    if (chosen.length === 0) throw new Error(`--only matches no case (cases: ${CASES.map((c) => c.id).join(', ')})`);
    if (chosen.some((c) => ['readPage', 'getPage', 'getPages64', 'reconstruct10'].includes(c.id))) read = await openReadRepos(scratch);
    for (const c of chosen) result.cases.push(await runCase(c, await c.setup({ read, cores, scratch }), options));
  } finally {
    for (const core of opened) core.close();
    if (read !== null) for (const impl of IMPLS) await read[impl].repo.close();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  result.meta.elapsedSec = (performance.now() - started) / 1000;
  process.stdout.write('### native ÷ TS (Benchmark.js mean ops/sec of each side, measured one after the other)\n\n');
  process.stdout.write(`${T.table(['case', 'native ops/s', 'TS ops/s', 'native ÷ TS'], result.cases.map((r) => [
    `${r.name} (per ${r.unit})`, T.fmtRate(r.native.opsPerSec), T.fmtRate(r.ts.opsPerSec), T.fmtNum(r.nativeOverTs, 2),
  ]))}\n\n`);
  fs.mkdirSync(path.dirname(args.out), { recursive: true });
  fs.writeFileSync(args.out, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`wrote ${path.relative(process.cwd(), args.out) || args.out} in ${result.meta.elapsedSec.toFixed(0)} s\n`);
}

main().catch((e) => {
  process.stderr.write(`bench:micro: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
