#!/usr/bin/env node
/**
 * Fuzzing of every parser of untrusted bytes: coverage-guided libFuzzer targets for the C++ core
 * (Debian's clang, under ASan and UBSan), then the TS targets (test/fuzz_ts.test.ts: fast-check
 * over mutated real seeds, every input must end in success or a coded StrataError).
 *
 *   npm run fuzz -- --time N [--target T]   every target (or T, native and TS) for N seconds each
 *        [--runs N] [--ts-runs N]           …or at most N executions per native / TS target (with
 *                                            --time too, a native target stops at whichever comes
 *                                            first: --runs 10000000 --time 3600)
 *        [--only native|ts]                 only one side
 *   npm run test:fuzz                        the bounded CI slice: 1,000,000 executions of the WAL
 *                                            decoder target, 30,000 of compaction (≈ 22 s: each
 *                                            runs a whole merge), 2,000 of delta_arena (≈ 10 s:
 *                                            each writes and reads back a layer), 100,000 of each
 *                                            other native target, 20,000 of each TS target, and
 *                                            every reproducer in test/fuzz/regressions/<target>/
 *   node scripts/fuzz.js --target T --reproduce FILE   run one input under the sanitizers
 *
 * Native targets (test/fuzz/targets/*.cc): wal_decoder (native/pg/xlogreader.cc fed arbitrary bytes
 * as a stream with random chunking), layer_summary, layer_btree, layer_blob (the layer-file
 * readers), value_codec (lz4, zstd, pglz decoders), record_redo (serialized records and the redo
 * engine), read_plan (GetPages' plan parser and walk), pg_redo (PostgreSQL redo of one stored record
 * on a page), compaction (the L0 -> L1 merge, native/compaction.cc, over up to four delta layer
 * files; no TS twin: test/core_differential_compaction.test.ts holds the cores to the same
 * refusals), delta_arena (the flush's arena walk, native/delta_arena.cc, over arenas built from
 * the input and then broken, against a reference walk; no TS twin either:
 * test/core_differential_arena.test.ts). They link the core's C++ sources (native/*.cc and native/pg/*.cc, no N-API) and
 * zstd's decoder from zstd-napi's copy, built in build-fuzz/. Seeds: test/fuzz/corpus/<target>/
 * (committed, made by Strata or PostgreSQL: test/fuzz/make_seeds.js) plus a working corpus in
 * build-fuzz/corpus/<target>/ that grows between runs. A crash writes its reproducer to
 * build-fuzz/crashes/<target>/ (TS: build-fuzz/crashes/ts/<target>/) and fails the run; commit it
 * into test/fuzz/regressions/<target>/ so test:fuzz and test/fuzz_regressions.test.ts replay it.
 *
 * Without clang's libFuzzer runtime the script installs it (apt-get, as root) or, when it cannot,
 * prints "skipped: <why>" for the native side and still runs the TS targets.
 */
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.join(__dirname, '..');
const OUT = path.join(ROOT, 'build-fuzz');
const TARGETS = ['wal_decoder', 'layer_summary', 'layer_btree', 'layer_blob', 'value_codec', 'record_redo', 'read_plan', 'pg_redo', 'compaction', 'delta_arena'];
const CI_RUNS = {
  wal_decoder: 1_000_000, layer_summary: 100_000, layer_btree: 100_000, layer_blob: 100_000,
  value_codec: 100_000, record_redo: 100_000, read_plan: 100_000, pg_redo: 100_000, compaction: 30_000, delta_arena: 2_000,
};
/**
 * Largest input per target, bytes: two WAL pages and then some; 8 layer blocks; one summary block;
 * a value of a page and its compressed form; a few page-sized records; a record and its base page;
 * delta layers, one past the merge's 8-block read chunk or a few small ones (each at most 24 blocks);
 * an arena's choices, a few hundred records and the stored PostgreSQL records they may carry.
 */
const MAX_LEN = {
  wal_decoder: 20_000, layer_summary: 8192, layer_btree: 65_536, layer_blob: 65_536,
  value_codec: 20_000, record_redo: 40_000, read_plan: 40_000, pg_redo: 20_000, compaction: 262_144, delta_arena: 32_768,
};
/** Extra environment per target: read_plan searches a real layer file (a committed seed). */
const TARGET_ENV = {
  read_plan: { STRATA_FUZZ_LAYER: path.join(ROOT, 'test', 'fuzz', 'corpus', 'layer_btree', 'layer-0.bin') },
};
const CORE_EXCLUDE = new Set(['addon.cc', 'bench_floors.cc', 'pg_addon.cc']);
const ZSTD_SOURCES = [
  'common/debug.c', 'common/entropy_common.c', 'common/error_private.c', 'common/fse_decompress.c', 'common/xxhash.c',
  'common/zstd_common.c', 'decompress/huf_decompress.c', 'decompress/zstd_ddict.c', 'decompress/zstd_decompress_block.c',
  'decompress/zstd_decompress.c',
];
const SANITIZE = ['-fsanitize=address,undefined', '-fno-sanitize-recover=undefined', '-fno-omit-frame-pointer'];

/** The TS targets (test/fuzz/ts/targets.ts); those named like a native one share its input layout. */
const TS_TARGETS = [
  'layer_summary', 'layer_btree', 'layer_blob', 'value_codec', 'record_redo', 'pg_redo', 'read_plan', 'wal_decoder',
  'manifest', 'remote_index', 'frames', 'handshake', 'jwt_claims',
];
const CI_TS_RUNS = 20_000;

function parseArgs(argv) {
  const opts = { time: null, runs: null, tsRuns: null, only: null, target: null, ci: false, reproduce: null, jobs: Math.max(1, os.cpus().length) };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--time') opts.time = Number(argv[++i]);
    else if (a === '--runs') opts.runs = Number(argv[++i]);
    else if (a === '--ts-runs') opts.tsRuns = Number(argv[++i]);
    else if (a === '--only') opts.only = argv[++i];
    else if (a === '--target') opts.target = argv[++i];
    else if (a === '--ci') opts.ci = true;
    else if (a === '--reproduce') opts.reproduce = argv[++i];
    else throw new Error(`unknown argument ${a}`);
  }
  if (opts.target !== null && !TARGETS.includes(opts.target) && !TS_TARGETS.includes(opts.target)) {
    throw new Error(`unknown target ${opts.target}; native: ${TARGETS.join(', ')}; TS: ${TS_TARGETS.join(', ')}`);
  }
  if (opts.only !== null && opts.only !== 'native' && opts.only !== 'ts') throw new Error('--only takes native or ts');
  if (!opts.ci && opts.reproduce === null && !(opts.time > 0) && !(opts.runs > 0) && !(opts.tsRuns > 0)) {
    throw new Error('give --time N (seconds), --runs N / --ts-runs N, --ci, or --reproduce FILE');
  }
  return opts;
}

function which(names) {
  for (const n of names) {
    const r = spawnSync('sh', ['-c', `command -v ${n}`], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim() !== '') return r.stdout.trim();
  }
  return null;
}

/** Whether `cxx` links a libFuzzer target here. */
function fuzzerWorks(cxx) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-fuzz-probe-'));
  try {
    const src = path.join(dir, 'probe.cc');
    fs.writeFileSync(src, 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n');
    return spawnSync(cxx, ['-fsanitize=fuzzer,address', src, '-o', path.join(dir, 'probe')], { encoding: 'utf8' }).status === 0;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** clang++ with libFuzzer, installing Debian's packages when root; or { skip: why }. */
function findCompiler() {
  const names = ['clang++', 'clang++-16', 'clang++-15', 'clang++-14'];
  let cxx = which(names);
  if (cxx !== null && fuzzerWorks(cxx)) return { cxx, cc: cxx.replace('clang++', 'clang') };
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || which(['apt-get']) === null) {
    return { skip: cxx === null ? 'clang++ is not installed (apt-get install clang libclang-rt-14-dev)' : `${cxx} cannot link -fsanitize=fuzzer (install libclang-rt-14-dev)` };
  }
  process.stderr.write('fuzz: installing clang and the libFuzzer runtime (apt-get)\n');
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  const inst = spawnSync('apt-get', ['install', '-y', '-qq', 'clang', 'libclang-rt-14-dev'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  cxx = which(names);
  if (inst.status !== 0 || cxx === null || !fuzzerWorks(cxx)) return { skip: 'installing clang / libclang-rt-14-dev with apt-get failed' };
  return { cxx, cc: cxx.replace('clang++', 'clang') };
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${path.basename(cmd)} failed (exit ${r.status}): ${args.slice(-3).join(' ')}`);
}

function newer(src, out) {
  try {
    return fs.statSync(src).mtimeMs > fs.statSync(out).mtimeMs;
  } catch {
    return true;
  }
}

/** Compiles sources to objects in parallel, skipping up-to-date ones; returns the object paths. */
function compileAll(jobs, list) {
  const objs = [];
  const todo = [];
  for (const { compiler, args, src, obj, deps } of list) {
    objs.push(obj);
    if (newer(src, obj) || deps.some((d) => newer(d, obj))) todo.push({ compiler, args: [...args, '-c', src, '-o', obj] });
  }
  // Run `jobs` compilers at a time through a shell so they overlap.
  for (let i = 0; i < todo.length; i += jobs) {
    const batch = todo.slice(i, i + jobs);
    const script = batch.map((t) => [t.compiler, ...t.args].map((x) => `'${x.replace(/'/g, "'\\''")}'`).join(' ') + ' &').join('\n') + '\nwait_all=0; for p in $(jobs -p); do wait $p || wait_all=1; done; exit $wait_all';
    run('bash', ['-c', script]);
  }
  return objs;
}

function build(tool, jobs) {
  const zstdDir = path.join(path.dirname(require.resolve('zstd-napi/package.json', { paths: [ROOT] })), 'deps', 'zstd', 'lib');
  const objDir = path.join(OUT, 'obj');
  fs.mkdirSync(objDir, { recursive: true });
  const headers = [...fs.readdirSync(path.join(ROOT, 'native')).filter((f) => f.endsWith('.h')).map((f) => path.join(ROOT, 'native', f)),
    ...fs.readdirSync(path.join(ROOT, 'native', 'pg')).filter((f) => f.endsWith('.h')).map((f) => path.join(ROOT, 'native', 'pg', f))];
  const cxxFlags = ['-std=c++17', '-g', '-O1', '-Wall', '-Wextra', ...SANITIZE, '-fsanitize=fuzzer-no-link', '-pthread',
    `-I${path.join(ROOT, 'native')}`, `-I${zstdDir}`];
  const zstdFlags = ['-O2', '-g', '-fsanitize=address', '-DZSTD_DISABLE_ASM', '-DXXH_NAMESPACE=ZSTD_', '-DZSTD_NO_TRACE', `-I${zstdDir}`];
  const list = [];
  for (const rel of ZSTD_SOURCES) {
    list.push({ compiler: tool.cc, args: zstdFlags, src: path.join(zstdDir, rel), obj: path.join(objDir, `zstd_${rel.replace(/\//g, '_')}.o`), deps: [] });
  }
  for (const dir of ['native', path.join('native', 'pg')]) {
    for (const f of fs.readdirSync(path.join(ROOT, dir))) {
      if (!f.endsWith('.cc') || CORE_EXCLUDE.has(f)) continue;
      list.push({ compiler: tool.cxx, args: cxxFlags, src: path.join(ROOT, dir, f), obj: path.join(objDir, `${dir.replace(/\//g, '_')}_${f}.o`), deps: headers });
    }
  }
  const objs = compileAll(jobs, list);
  const targetsDir = path.join(ROOT, 'test', 'fuzz', 'targets');
  const bins = {};
  for (const t of TARGETS) {
    const src = path.join(targetsDir, `${t}.cc`);
    const bin = path.join(OUT, t);
    const deps = [...objs, path.join(targetsDir, 'fuzz_util.h'), ...headers];
    if (newer(src, bin) || deps.some((d) => newer(d, bin))) {
      run(tool.cxx, [...cxxFlags.filter((f) => f !== '-fsanitize=fuzzer-no-link'), '-fsanitize=fuzzer', `-I${targetsDir}`, src, ...objs, '-o', bin]);
    }
    bins[t] = bin;
  }
  return bins;
}

const SANITIZER_ENV = {
  ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=1:allocator_may_return_null=0',
  UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1',
};

/** Runs one target; returns { ok, execs, seconds, crash }. */
function fuzzTarget(bin, target, limit) {
  const work = path.join(OUT, 'corpus', target);
  const seeds = path.join(ROOT, 'test', 'fuzz', 'corpus', target);
  const crashes = path.join(OUT, 'crashes', target);
  for (const d of [work, crashes]) fs.mkdirSync(d, { recursive: true });
  const args = [`-artifact_prefix=${crashes}/`, '-timeout=20', '-rss_limit_mb=2560', `-max_len=${MAX_LEN[target]}`, '-print_final_stats=1', ...limit, work];
  if (fs.existsSync(seeds)) args.push(seeds);
  const t0 = Date.now();
  const r = spawnSync(bin, args, { encoding: 'utf8', env: { ...process.env, ...SANITIZER_ENV, ...TARGET_ENV[target] }, maxBuffer: 256 * 1024 * 1024 });
  const seconds = (Date.now() - t0) / 1000;
  const out = `${r.stdout}\n${r.stderr}`;
  const m = /stat::number_of_executed_units:\s*(\d+)/.exec(out);
  const crash = /Test unit written to (\S+)/.exec(out);
  if (r.status !== 0) process.stderr.write(out.split('\n').filter((l) => !/^#\d+\s+(NEW|REDUCE|pulse)/.test(l)).slice(-60).join('\n') + '\n');
  return { ok: r.status === 0, execs: m ? Number(m[1]) : 0, seconds, crash: crash ? crash[1] : null };
}

/**
 * Real PostgreSQL WAL as extra wal_decoder seeds, when the PostgreSQL tests have left their fixtures
 * (test/helpers/pg_fixture.ts; STRATA_PG_FIXTURE_DIR or the temp dir): a few two-page slices from
 * page boundaries, raw mode. Not committed (PostgreSQL-made); copied into the working corpus only.
 */
function addRealWalSeeds() {
  const cache = process.env.STRATA_PG_FIXTURE_DIR || path.join(os.tmpdir(), 'strata-pg-fixtures');
  if (!fs.existsSync(cache)) return 0;
  const work = path.join(OUT, 'corpus', 'wal_decoder');
  fs.mkdirSync(work, { recursive: true });
  let added = 0;
  for (const fixture of fs.readdirSync(cache)) {
    const walDir = path.join(cache, fixture, 'wal');
    if (!fs.existsSync(walDir)) continue;
    const segs = fs.readdirSync(walDir).filter((f) => /^[0-9A-F]{24}$/.test(f)).sort().slice(0, 2);
    for (const seg of segs) {
      const fd = fs.openSync(path.join(walDir, seg), 'r');
      try {
        for (const page of [0, 1, 100, 1000]) {
          const buf = Buffer.alloc(4 + 2 * 8192);
          const n = fs.readSync(fd, buf, 4, 2 * 8192, page * 8192);
          if (n < 8192) continue;
          fs.writeFileSync(path.join(work, `real-${fixture}-${seg}-${page}`), buf.subarray(0, 4 + n));
          added++;
        }
      } finally {
        fs.closeSync(fd);
      }
    }
  }
  return added;
}

/** Replays every reproducer kept for a target; returns the failures. */
function replayRegressions(bin, target) {
  const dir = path.join(ROOT, 'test', 'fuzz', 'regressions', target);
  if (!fs.existsSync(dir)) return [];
  const files = fs.readdirSync(dir).map((f) => path.join(dir, f)).filter((f) => fs.statSync(f).isFile());
  if (files.length === 0) return [];
  const r = spawnSync(bin, files, { encoding: 'utf8', env: { ...process.env, ...SANITIZER_ENV, ...TARGET_ENV[target] } });
  if (r.status !== 0) process.stderr.write(`${r.stdout}\n${r.stderr}\n`);
  return r.status === 0 ? [] : files;
}

/** Files in the target's working corpus (what libFuzzer kept: seeds plus inputs that found new coverage). */
function corpusSize(target) {
  const dir = path.join(OUT, 'corpus', target);
  return fs.existsSync(dir) ? fs.readdirSync(dir).length : 0;
}

/** The native side; returns the number of failures and appends figures to `summary`. */
function runNative(opts, summary) {
  const tool = findCompiler();
  if (tool.skip !== undefined) {
    process.stdout.write(`fuzz: native targets skipped: ${tool.skip}\n`);
    return 0;
  }
  const bins = build(tool, opts.jobs);
  if (opts.reproduce !== null) {
    const t = opts.target ?? 'wal_decoder';
    const r = spawnSync(bins[t], [opts.reproduce], { stdio: 'inherit', env: { ...process.env, ...SANITIZER_ENV, ...TARGET_ENV[t] } });
    return r.status === 0 ? 0 : 1;
  }
  const targets = opts.target !== null ? [opts.target].filter((t) => TARGETS.includes(t)) : TARGETS;
  if (targets.includes('wal_decoder')) addRealWalSeeds();
  let failed = 0;
  for (const t of targets) {
    const replayed = replayRegressions(bins[t], t);
    if (replayed.length > 0) {
      failed++;
      process.stdout.write(`fuzz: ${t}: regression reproducers fail: ${replayed.join(', ')}\n`);
    }
    const limit = opts.ci ? [`-runs=${CI_RUNS[t]}`] : [
      ...(opts.time > 0 ? [`-max_total_time=${opts.time}`] : []),
      ...(opts.runs > 0 ? [`-runs=${opts.runs}`] : []),
    ];
    const started = new Date().toISOString();
    const r = fuzzTarget(bins[t], t, limit);
    const rate = r.seconds > 0 ? Math.round(r.execs / r.seconds) : 0;
    const corpus = corpusSize(t);
    // The machine's 1-minute load average at the end: on a shared machine it explains the rate.
    const load = Number(os.loadavg()[0].toFixed(1));
    process.stdout.write(`fuzz: ${t}: ${r.execs} executions in ${r.seconds.toFixed(1)} s (${rate}/s), corpus ${corpus}, load ${load}, ${r.ok ? 'no crash' : `FAILED${r.crash ? `, reproducer ${r.crash}` : ''}`}\n`);
    summary.push({ side: 'native', target: t, started, executions: r.execs, seconds: r.seconds, rate, corpus, load, ok: r.ok });
    if (!r.ok) failed++;
  }
  return failed;
}

/** The TS side through vitest (test/fuzz_ts.test.ts); returns the number of failures. */
function runTs(opts, summary) {
  const targets = opts.target !== null ? [opts.target].filter((t) => TS_TARGETS.includes(t)) : TS_TARGETS;
  if (targets.length === 0) return 0;
  const stats = path.join(OUT, 'ts-stats.jsonl');
  fs.mkdirSync(OUT, { recursive: true });
  fs.rmSync(stats, { force: true });
  const env = { ...process.env, STRATA_FUZZ_TS_STATS: stats };
  if (opts.target !== null) env.STRATA_FUZZ_TS_TARGET = opts.target;
  if (opts.ci) env.STRATA_FUZZ_TS_RUNS = String(CI_TS_RUNS);
  else {
    if (opts.time > 0) env.STRATA_FUZZ_TS_SECONDS = String(opts.time);
    if (opts.tsRuns > 0) env.STRATA_FUZZ_TS_RUNS = String(opts.tsRuns);
    else if (opts.time > 0) env.STRATA_FUZZ_TS_RUNS = String(Number.MAX_SAFE_INTEGER);
  }
  // A hang in a synchronous target cannot be interrupted inside the process: bound it from here.
  const perTargetS = opts.time > 0 ? opts.time : 3600;
  const r = spawnSync('npx', ['vitest', 'run', 'test/fuzz_ts.test.ts'], {
    cwd: ROOT, stdio: 'inherit', env, timeout: (targets.length * (perTargetS + 120) + 300) * 1000,
  });
  if (r.signal !== null) process.stdout.write(`fuzz: TS targets: killed by ${r.signal} (a hang?)\n`);
  const lines = fs.existsSync(stats) ? fs.readFileSync(stats, 'utf8').split('\n').filter((l) => l !== '') : [];
  for (const l of lines) {
    const s = JSON.parse(l);
    const rate = Math.round(s.executions / Math.max(s.seconds, 1e-9));
    process.stdout.write(`fuzz: ts ${s.target}: ${s.executions} executions in ${s.seconds.toFixed(1)} s (${rate}/s), ${s.seeds} seeds, no failure\n`);
    summary.push({ side: 'ts', target: s.target, executions: s.executions, seconds: s.seconds, rate, seeds: s.seeds, outcomes: s.outcomes, ok: true });
  }
  return r.status === 0 ? 0 : 1;
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const summary = [];
  let failed = 0;
  if (opts.only !== 'ts') failed += runNative(opts, summary);
  if (opts.reproduce === null && opts.only !== 'native') failed += runTs(opts, summary);
  if (summary.length > 0) fs.writeFileSync(path.join(OUT, 'last-run.json'), `${JSON.stringify({ date: new Date().toISOString(), args: process.argv.slice(2), failed, targets: summary }, null, 1)}\n`);
  return failed === 0 ? 0 : 1;
}

try {
  process.exitCode = main();
} catch (e) {
  process.stderr.write(`fuzz: ${e.message}\n`);
  process.exitCode = 1;
}
