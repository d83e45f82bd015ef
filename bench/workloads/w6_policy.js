'use strict';
/**
 * W6: page-cache policy. Hit ratios of the engine's usage-count clock, LRU, Belady's MIN (offline
 * optimum) and two candidates (SIEVE, S3-FIFO) on synthetic Zipf traces with and without one-time
 * sequential scans, and on the ARC traces OLTP and P3 (Megiddo & Modha, "ARC: A Self-Tuning, Low
 * Overhead Replacement Cache", FAST '03), at several cache sizes. Before trusting the clock and
 * S3-FIFO simulators (the engine's two pageCachePolicy values), each is replayed against the real
 * TS and native page caches running that policy on a trace prefix.
 */
const fs = require('node:fs');
const path = require('node:path');
const { Rng, zipfSampler, permutation } = require('../lib/data');
const { POLICIES } = require('../lib/policies');
const { DIST } = require('../lib/strata');

/** The traces live beside the repository, in ../shared/traces/arc (STRATA_ARC_TRACES overrides). */
const REPO_ROOT = path.join(__dirname, '..', '..');
const TRACE_DIR = process.env.STRATA_ARC_TRACES || path.join(REPO_ROOT, '..', 'shared', 'traces', 'arc');
const ARC_TRACES = ['OLTP', 'P3'];
/** OLTP's length (the paper's Table III): a W6 run reading fewer requests simulates a prefix. */
const OLTP_REQUESTS = 914_145;
const BLOCK_SIZE = 8192;

/**
 * Zipf(α) over `objects` objects (ranks mapped through a random permutation), `requests` draws;
 * with scans, before each draw a run of `scanLen` never-reused keys starts with probability
 * 0.3 / scanLen (≈ 23 % of requests are scan requests), as in reference/machine-limits.md §4.
 */
function zipfTrace(seed, objects, requests, alpha, scans) {
  const rng = new Rng(seed);
  const perm = permutation(rng, objects);
  const draw = zipfSampler(rng, objects, alpha);
  const scanLen = Math.max(10, Math.floor(objects / 20));
  const scanIds = 4 * objects; // scan keys live above the Zipf range and are recycled after 4 × n
  const out = new Int32Array(requests);
  let nextScan = 0;
  let i = 0;
  while (i < requests) {
    if (scans && rng.next() < 0.3 / scanLen) {
      for (let j = 0; j < scanLen && i < requests; j++) {
        out[i++] = objects + (nextScan++ % scanIds);
      }
      continue;
    }
    out[i++] = perm[draw()];
  }
  return { trace: out, universe: scans ? objects + scanIds : objects, scanLen: scans ? scanLen : 0 };
}

/** ARC .lis: "start count ignore reqno" per line, expanded to count consecutive block ids. */
function arcTraceFile(name, dir = TRACE_DIR) {
  return path.join(dir, `${name}.lis.zst`);
}

/** Why the ARC part cannot run (a trace file is missing), or null when it can. */
function arcSkipReason(dir = TRACE_DIR) {
  const missing = ARC_TRACES.map((n) => arcTraceFile(n, dir)).filter((f) => !fs.existsSync(f));
  if (missing.length === 0) return null;
  return `ARC traces not found: ${missing.join(', ')} (they are read from ../shared/traces/arc beside the repository; set STRATA_ARC_TRACES to another directory)`;
}

function arcTrace(name, maxRequests) {
  const file = arcTraceFile(name);
  if (!fs.existsSync(file)) throw new Error(`W6: ${arcSkipReason()}`);
  const text = require('zstd-napi').decompress(fs.readFileSync(file));
  const ids = new Map();
  let out = new Int32Array(1 << 20);
  let n = 0;
  let field = 0;
  let v = 0;
  let start = 0;
  let count = 0;
  let inNumber = false;
  const flushField = () => {
    if (field === 0) start = v;
    else if (field === 1) count = v;
    field++;
    v = 0;
    inNumber = false;
  };
  for (let i = 0; i < text.length && n < maxRequests; i++) {
    const c = text[i];
    if (c >= 48 && c <= 57) {
      v = v * 10 + (c - 48);
      inNumber = true;
    } else if (c === 10) {
      if (inNumber) flushField();
      if (field >= 2) {
        for (let b = 0; b < count && n < maxRequests; b++) {
          const blk = start + b;
          let id = ids.get(blk);
          if (id === undefined) {
            id = ids.size;
            ids.set(blk, id);
          }
          if (n === out.length) {
            const grown = new Int32Array(out.length * 2);
            grown.set(out);
            out = grown;
          }
          out[n++] = id;
        }
      }
      field = 0;
      v = 0;
      inNumber = false;
    } else if (inNumber) {
      flushField();
    }
  }
  return { trace: out.subarray(0, n), universe: ids.size, footprint: ids.size };
}

/** Simulators of the engine's page-cache policies, by pageCachePolicy value. */
const SIMULATOR_OF = { clock: 'clock', s3fifo: 's3fifo', 'adaptive-s3fifo': 'adaptiveS3fifo' };
const ENGINE_POLICIES = Object.keys(SIMULATOR_OF);

/**
 * The ARC paper's Table IV row for OLTP (cache sizes in 512-byte blocks; hit ratios in %): LRU and
 * ARC as published. W6 simulates LRU and ARC at these sizes on the whole trace beside the engine's
 * policies: our LRU must reproduce the paper's column exactly (it validates the trace expansion and
 * the simulator); adaptive S3-FIFO is measured against ARC simulated in the same run.
 */
const PAPER_OLTP = [
  { blocks: 1000, lru: 32.83, arc: 38.93 },
  { blocks: 2000, lru: 42.47, arc: 46.08 },
  { blocks: 5000, lru: 53.65, arc: 55.25 },
  { blocks: 10000, lru: 60.70, arc: 61.87 },
  { blocks: 15000, lru: 64.63, arc: 65.40 },
];
/** Policies of the paper-size OLTP table (Belady and SIEVE are in the fraction-sized rows). */
const PAPER_TABLE_POLICIES = ['lru', 'arc', 'clock', 's3fifo', 'adaptiveS3fifo'];

/**
 * Replays a trace against lib/core/ts/page_cache.ts (through dist/) and the native core's page cache, both
 * running `policy`, as the read path uses them (lookup, and on a miss insert) and compares hits
 * with that policy's simulator.
 */
function crossCheck(trace, capacity, universe, policy = 'clock') {
  const { PageCache } = require(`${DIST}/core/ts/page_cache.js`);
  const { createCore } = require(`${DIST}/core/select.js`);
  const block = Buffer.alloc(BLOCK_SIZE);
  const into = Buffer.alloc(BLOCK_SIZE);
  const replay = (cache) => {
    let hits = 0;
    for (let i = 0; i < trace.length; i++) {
      if (cache.lookup(1, trace[i], into)) hits++;
      else cache.insert(1, trace[i], block);
    }
    return hits;
  };
  const sim = POLICIES[SIMULATOR_OF[policy]](trace, capacity, universe);
  const ts = replay(new PageCache(capacity * BLOCK_SIZE, policy));
  const core = createCore('native', { pageCacheBytes: capacity * BLOCK_SIZE, pageCachePolicy: policy });
  let native;
  try {
    native = replay(core.pageCache);
  } finally {
    core.close();
  }
  return { policy, requests: trace.length, capacity, simulatorHits: sim, tsCacheHits: ts, nativeCacheHits: native, match: sim === ts && sim === native };
}

function simulate(label, t, sizes, log) {
  const rows = [];
  for (const size of sizes) {
    const hitRatio = {};
    const ms = {};
    for (const [name, fn] of Object.entries(POLICIES)) {
      const started = performance.now();
      hitRatio[name] = fn(t.trace, size.capacity, t.universe) / t.trace.length;
      ms[name] = Math.round(performance.now() - started);
    }
    const miss = (p) => 1 - hitRatio[p];
    const gap = miss('lru') - miss('min');
    const closed = (p) => (gap > 0 ? (miss('lru') - miss(p)) / gap : null);
    rows.push({
      trace: label,
      requests: t.trace.length,
      footprint: t.footprint ?? null,
      cacheBlocks: size.capacity,
      cacheFraction: size.fraction,
      hitRatio,
      clockMinusLruPt: (hitRatio.clock - hitRatio.lru) * 100,
      missRatioVsLru: Object.fromEntries(Object.keys(POLICIES).filter((x) => x !== 'lru').map((x) => [x, miss(x) / miss('lru')])),
      lruToMinGapClosed: Object.fromEntries(Object.keys(POLICIES).filter((x) => x !== 'lru' && x !== 'min').map((x) => [x, closed(x)])),
      simMs: ms,
    });
    log(`  W6 ${label} cache ${size.capacity}: ${Object.keys(POLICIES).map((x) => `${x} ${pct(hitRatio[x])}`).join(' ')}`);
  }
  return rows;
}

/**
 * OLTP at the paper's five cache sizes: every policy of PAPER_TABLE_POLICIES, the paper's figures
 * beside ours. The comparison with the paper holds only for the whole trace (a prefix has other
 * ratios), so `wholeTrace` says which one ran.
 */
function paperTable(t, wholeTrace, log) {
  const rows = PAPER_OLTP.map((paper) => {
    const hitPct = {};
    for (const name of PAPER_TABLE_POLICIES) hitPct[name] = (100 * POLICIES[name](t.trace, paper.blocks, t.universe)) / t.trace.length;
    const row = {
      blocks: paper.blocks,
      hitPct,
      paper: { lru: paper.lru, arc: paper.arc },
      lruMatchesPaper: wholeTrace ? hitPct.lru.toFixed(2) === paper.lru.toFixed(2) : null,
      adaptiveMinusArcPt: hitPct.adaptiveS3fifo - hitPct.arc,
    };
    log(`  W6 OLTP ${paper.blocks} blocks: ${PAPER_TABLE_POLICIES.map((x) => `${x} ${hitPct[x].toFixed(2)}%`).join(' ')} (paper: LRU ${paper.lru}%, ARC ${paper.arc}%)`);
    return row;
  });
  return {
    wholeTrace,
    requests: t.trace.length,
    rows,
    lruReproducesPaper: wholeTrace ? rows.every((r) => r.lruMatchesPaper) : null,
    adaptiveBeatsArcEverywhere: rows.every((r) => r.adaptiveMinusArcPt > 0),
    worstAdaptiveMinusArcPt: Math.min(...rows.map((r) => r.adaptiveMinusArcPt)),
  };
}

function pct(x) {
  return `${(x * 100).toFixed(2)}%`;
}

async function runW6(ctx) {
  const { profile, log } = ctx;
  const p = profile.w6;
  const rows = [];
  const zipfSizes = p.zipfFractions.map((f) => ({ fraction: f, capacity: Math.max(16, Math.round(p.zipfObjects * f)) }));
  const checks = {};
  for (const alpha of p.alphas) {
    for (const scans of [false, true]) {
      const t = zipfTrace(p.seed, p.zipfObjects, p.zipfRequests, alpha, scans);
      if (checks.clock === undefined) {
        const prefix = t.trace.subarray(0, Math.min(t.trace.length, p.crossCheckRequests));
        for (const policy of ENGINE_POLICIES) {
          const check = crossCheck(prefix, zipfSizes[0].capacity, t.universe, policy);
          log(`  W6 ${policy} simulator vs page caches: sim ${check.simulatorHits}, ts ${check.tsCacheHits}, native ${check.nativeCacheHits} hits of ${check.requests}`);
          if (!check.match) throw new Error(`the ${policy} simulator disagrees with the page caches: ${JSON.stringify(check)}`);
          checks[policy] = check;
        }
      }
      rows.push(...simulate(`zipf${alpha}${scans ? '+scans' : ''}`, t, zipfSizes, log));
    }
  }
  // The ARC traces are data beside the repository, not part of it: without them the run goes on
  // and says what it skipped (stderr, the report and the JSON), rather than failing.
  const arcSkipped = arcSkipReason();
  if (arcSkipped !== null) log(`  W6 skipped the ARC traces: ${arcSkipped}`);
  let oltpPaper = null;
  for (const name of arcSkipped === null ? ARC_TRACES : []) {
    const t = arcTrace(name, p.arcMaxRequests);
    const sizes = p.arcFractions.map((f) => ({ fraction: f, capacity: Math.max(16, Math.round(t.footprint * f)) }));
    rows.push(...simulate(`arc-${name}`, t, sizes, log));
    if (name === 'OLTP') oltpPaper = paperTable(t, p.arcMaxRequests >= OLTP_REQUESTS, log);
  }
  const gaps = rows.map((r) => r.clockMinusLruPt);
  const closedBy = (p2) => rows.map((r) => r.lruToMinGapClosed[p2]).filter((x) => x !== null);
  const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length ? (s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : null; };
  const summary = {
    clockMinusLruPt: { median: med(gaps), min: Math.min(...gaps), max: Math.max(...gaps) },
    sieveGapClosed: { median: med(closedBy('sieve')), min: Math.min(...closedBy('sieve')), max: Math.max(...closedBy('sieve')) },
    s3fifoGapClosed: { median: med(closedBy('s3fifo')), min: Math.min(...closedBy('s3fifo')), max: Math.max(...closedBy('s3fifo')) },
    worstSieveVsLruPt: Math.min(...rows.map((r) => (r.hitRatio.sieve - r.hitRatio.lru) * 100)),
    worstS3fifoVsLruPt: Math.min(...rows.map((r) => (r.hitRatio.s3fifo - r.hitRatio.lru) * 100)),
    adaptiveGapClosed: { median: med(closedBy('adaptiveS3fifo')), min: Math.min(...closedBy('adaptiveS3fifo')), max: Math.max(...closedBy('adaptiveS3fifo')) },
    worstAdaptiveVsLruPt: Math.min(...rows.map((r) => (r.hitRatio.adaptiveS3fifo - r.hitRatio.lru) * 100)),
    worstAdaptiveVsLruPtOnP3AndScans: Math.min(...rows.filter((r) => r.trace === 'arc-P3' || r.trace.endsWith('+scans')).map((r) => (r.hitRatio.adaptiveS3fifo - r.hitRatio.lru) * 100)),
  };
  return {
    params: {
      zipf: { objects: p.zipfObjects, requests: p.zipfRequests, alphas: p.alphas, cacheFractions: p.zipfFractions, seed: p.seed, scanProbabilityPerDraw: '0.3 / scanLen', scanLen: Math.max(10, Math.floor(p.zipfObjects / 20)) },
      arc: { traces: ARC_TRACES, dir: TRACE_DIR, skipped: arcSkipped, maxRequests: p.arcMaxRequests, cacheFractionsOfFootprint: p.arcFractions, citation: 'N. Megiddo and D. S. Modha, "ARC: A Self-Tuning, Low Overhead Replacement Cache," USENIX FAST 03, pp. 115-130, 2003' },
      policies: Object.keys(POLICIES),
    },
    crossCheck: checks.clock,
    crossCheckS3fifo: checks.s3fifo,
    crossCheckAdaptive: checks['adaptive-s3fifo'],
    oltpPaper,
    rows,
    summary,
  };
}

module.exports = { runW6, zipfTrace, arcTrace, arcSkipReason, crossCheck, TRACE_DIR };
