'use strict';
/**
 * W7: does a read block the event loop? Cold reads (the page cache holds only index blocks and the
 * layer files are dropped from the OS page cache before every round with posix_fadvise DONTNEED,
 * so value blocks come from the device) of image + K patches, while
 * perf_hooks.monitorEventLoopDelay samples how late the loop runs its timers.
 *
 * Modes, per core, for a fixed time per round:
 *   getPage   async API at a fixed offered load: a burst of `burst` reads every `burst / rate`
 *             seconds (native: the reads run on the libuv thread pool; TS: on the event loop,
 *             there is no thread to move them to);
 *   readPage  sync API at the same offered load: each burst is `burst` readPage calls in a row —
 *             what a server calling the sync API from its request handlers would do;
 *   getPage (saturated)  async API, closed loop with `burst` reads in flight: the most the core
 *             serves; the loop is then busy with completions, so its delay is reported but is
 *             not the point;
 *   idle      no reads: the delay the monitor reports with nothing to do (its resolution floor).
 * The same offered load for every mode and core makes the loop delays comparable: what differs
 * is only how long the JS thread is held per read.
 * Storm (issue 11, step 5): no reads; the same image + K records are ingested in small batches
 * (STORM_BATCH records, a yield after each, as a WAL receiver delivers them) into a fresh
 * repository per core and round, with a small checkpointDistance so L0 layers are flushed along
 * the way, and after every STORM_MAINTENANCE_EVERY batches an awaited flush + compact({ force })
 * (L0 merge and image creation). 'storm' measures that; 'ingest only' the same ingest with no
 * flush or compaction until the end, to separate what the maintenance adds; both against the
 * idle floor measured in the same run.
 * Each read takes the next key of a seeded permutation, so within a round no page is read twice
 * and every read misses both caches. Bytes read from the device (/proc/self/io read_bytes) are
 * recorded to show the reads really were cold.
 */
const fs = require('node:fs');
const path = require('node:path');
const { monitorEventLoopDelay } = require('node:perf_hooks');
const { PAGE_SIZE, Rng, heapPages, keyOf } = require('../lib/data');
const { floorsBinding } = require('../lib/floors');
const { median, percentile, summary } = require('../lib/harness');
const { strata, IMPLS, tmpDir, openRepo, ingestAll, copyDir, layerBlocks, timelineDir } = require('../lib/strata');
const { timelineRecords } = require('./w2_reconstruct');

const CACHE_SLACK_BLOCKS = 32;
/** Storm: records per ingest call (≈ what one WAL message carries), a yield after each. */
const STORM_BATCH = 100;
/** Storm: batches between awaited flush + forced compaction. */
const STORM_MAINTENANCE_EVERY = 200;
/** Storm: checkpointDistance, bytes of ingested WAL per L0 layer. */
const STORM_CHECKPOINT_BYTES = 8 * 2 ** 20;
const MONITOR_RESOLUTION_MS = 1; // the finest perf_hooks allows
const NS_PER_MS = 1e6;

function deviceReadBytes() {
  try {
    const m = /read_bytes:\s*(\d+)/.exec(fs.readFileSync('/proc/self/io', 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null; // not Linux, or /proc hidden: reported as unknown
  }
}

function dropLayerFiles(target, floors) {
  let accepted = 0;
  const dir = timelineDir(target.repo, target.tl);
  for (const l of target.tl.layers()) if (floors.dropFileCache(path.join(dir, l.fileName))) accepted++;
  return accepted;
}

/** Closed loop: `concurrency` getPage calls in flight until the deadline or the keys run out. */
function runSaturated(tl, keys, order, lsn, concurrency, deadline, latencies) {
  let next = 0;
  let done = 0;
  return new Promise((resolve, reject) => {
    const issue = () => {
      if (next >= order.length || performance.now() >= deadline) {
        if (--active === 0) resolve(done);
        return;
      }
      const key = keys[order[next++]];
      const t0 = performance.now();
      tl.getPage(key, lsn).then(() => {
        latencies.push(performance.now() - t0);
        done++;
        issue();
      }, reject);
    };
    let active = concurrency;
    for (let i = 0; i < concurrency; i++) issue();
  });
}

/**
 * Open loop: every `burst / rate` s a burst of `burst` reads (async: dispatched; sync: done in a
 * row), until the deadline or the keys run out; resolves when every read has finished.
 */
function runOffered(mode, tl, keys, order, lsn, p, deadline, latencies) {
  const buf = Buffer.allocUnsafe(PAGE_SIZE);
  const intervalMs = (1000 * p.burst) / p.rate;
  let next = 0;
  let done = 0;
  let pending = 0;
  let stopped = false;
  return new Promise((resolve, reject) => {
    const finish = () => { if (stopped && pending === 0) resolve(done); };
    const burst = () => {
      if (next >= order.length || performance.now() >= deadline) {
        clearInterval(timer);
        stopped = true;
        finish();
        return;
      }
      for (let i = 0; i < p.burst && next < order.length; i++) {
        const key = keys[order[next++]];
        const t0 = performance.now();
        if (mode === 'readPage') {
          tl.readPage(key, lsn, buf);
          latencies.push(performance.now() - t0);
          done++;
          continue;
        }
        pending++;
        tl.getPage(key, lsn).then(() => {
          latencies.push(performance.now() - t0);
          done++;
          pending--;
          finish();
        }, reject);
      }
    };
    const timer = setInterval(burst, intervalMs);
  });
}

function runIdle(deadline) {
  return new Promise((resolve) => setTimeout(() => resolve(0), Math.max(0, deadline - performance.now())));
}

function permutation(n, rng) {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(0, i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

async function measure(mode, target, keys, order, lsn, p, floors) {
  const tl = target ? target.tl : null;
  const dropped = target ? dropLayerFiles(target, floors) : 0;
  const latencies = [];
  const h = monitorEventLoopDelay({ resolution: MONITOR_RESOLUTION_MS });
  h.enable();
  // The monitor records the gap between its own timer callbacks: let it take a first sample, or
  // a stall from the very start of the load would have no earlier sample to be measured from.
  await new Promise((resolve) => setTimeout(resolve, 2 * MONITOR_RESOLUTION_MS));
  const io0 = deviceReadBytes();
  const t0 = performance.now();
  const deadline = t0 + p.durationMs;
  let pages;
  if (mode === 'saturated') pages = await runSaturated(tl, keys, order, lsn, p.burst, deadline, latencies);
  else if (mode === 'idle') pages = await runIdle(deadline);
  else pages = await runOffered(mode, tl, keys, order, lsn, p, deadline, latencies);
  const sec = (performance.now() - t0) / 1000;
  // Reads chained through promises alone can hold the loop for the whole run without a timer
  // firing: let the monitor's timer run once more so such a stall is recorded, not missed.
  await new Promise((resolve) => setTimeout(resolve, 2 * MONITOR_RESOLUTION_MS));
  h.disable();
  const io1 = deviceReadBytes();
  latencies.sort((a, b) => a - b);
  return {
    pagesPerSec: pages / sec,
    pages,
    filesDropped: dropped,
    deviceReadBytesPerPage: io0 !== null && io1 !== null && pages > 0 ? (io1 - io0) / pages : null,
    loopDelayMs: { p50: h.percentile(50) / NS_PER_MS, p99: h.percentile(99) / NS_PER_MS, max: h.max / NS_PER_MS, mean: h.mean / NS_PER_MS },
    readLatencyUs: latencies.length ? { p50: percentile(latencies, 0.5) * 1000, p99: percentile(latencies, 0.99) * 1000 } : null,
  };
}

/**
 * One storm round on a fresh repository: returns the loop delay over the whole ingest (and, with
 * `maintenance`, the flushes and compactions) and what was done.
 */
async function measureStorm(impl, root, records, maintenance) {
  const dir = tmpDir(root, `w7-storm-${impl}`);
  const repo = await openRepo(dir, impl, { checkpointDistance: maintenance ? STORM_CHECKPOINT_BYTES : 2 ** 40 });
  try {
    const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'storm' });
    const h = monitorEventLoopDelay({ resolution: MONITOR_RESOLUTION_MS });
    // The awaited flush + compaction alone (a second monitor, on only then): how much of the
    // storm's delay is the maintenance's and how much the ingest calls' (with the flushes they start).
    const hMaintenance = monitorEventLoopDelay({ resolution: MONITOR_RESOLUTION_MS });
    h.enable();
    await new Promise((resolve) => setTimeout(resolve, 2 * MONITOR_RESOLUTION_MS));
    const t0 = performance.now();
    let compactions = 0;
    let bytesWritten = 0;
    let batches = 0;
    for (let i = 0; i < records.length; i += STORM_BATCH) {
      tl.ingest(records.slice(i, i + STORM_BATCH));
      await new Promise((resolve) => setImmediate(resolve));
      if (maintenance && ++batches % STORM_MAINTENANCE_EVERY === 0) {
        hMaintenance.enable();
        await tl.flush();
        const report = await tl.compact({ force: true });
        hMaintenance.disable();
        bytesWritten += report.bytesWritten;
        compactions++;
      }
    }
    const sec = (performance.now() - t0) / 1000;
    await new Promise((resolve) => setTimeout(resolve, 2 * MONITOR_RESOLUTION_MS));
    h.disable();
    await tl.flush(); // outside the measured window: the ingest-only round's one big flush
    return {
      records: records.length,
      seconds: sec,
      recordsPerSec: records.length / sec,
      compactions,
      compactionBytesWritten: bytesWritten,
      layersAtEnd: tl.layers().length,
      loopDelayMs: { p50: h.percentile(50) / NS_PER_MS, p99: h.percentile(99) / NS_PER_MS, max: h.max / NS_PER_MS, mean: h.mean / NS_PER_MS },
      maintenanceLoopDelayMs: hMaintenance.count === 0 ? null
        : { p50: hMaintenance.percentile(50) / NS_PER_MS, p99: hMaintenance.percentile(99) / NS_PER_MS, max: hMaintenance.max / NS_PER_MS, samples: hMaintenance.count },
    };
  } finally {
    await repo.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function summarizeStorm(rounds) {
  const pick = (f) => summary(rounds.map(f));
  return {
    recordsPerSec: pick((r) => r.recordsPerSec),
    loopDelayP50Ms: pick((r) => r.loopDelayMs.p50),
    loopDelayP99Ms: pick((r) => r.loopDelayMs.p99),
    loopDelayMaxMs: pick((r) => r.loopDelayMs.max),
    maintenanceLoopDelayP99Ms: rounds.some((r) => r.maintenanceLoopDelayMs === null) ? null : pick((r) => r.maintenanceLoopDelayMs.p99),
    compactions: pick((r) => r.compactions),
    rounds,
  };
}

function summarizeRounds(rounds) {
  const pick = (f) => summary(rounds.map(f).filter((x) => x !== null && x !== undefined));
  return {
    pagesPerSec: pick((r) => r.pagesPerSec),
    loopDelayP50Ms: pick((r) => r.loopDelayMs.p50),
    loopDelayP99Ms: pick((r) => r.loopDelayMs.p99),
    loopDelayMaxMs: pick((r) => r.loopDelayMs.max),
    readLatencyP50Us: pick((r) => r.readLatencyUs?.p50),
    readLatencyP99Us: pick((r) => r.readLatencyUs?.p99),
    deviceReadBytesPerPage: pick((r) => r.deviceReadBytesPerPage),
    rounds,
  };
}

async function runW7(ctx) {
  const { root, log, seeds, profile } = ctx;
  const p = profile.w7;
  log(`W7: event-loop delay under cold reads — ${p.pages} pages × image + ${p.k}, ${p.rate} reads/s in bursts of ${p.burst}, ${p.rounds} × ${p.durationMs} ms`);
  const floors = floorsBinding();
  const pages = heapPages(seeds.pages + 7, p.pages);
  const keys = pages.map((_, i) => keyOf(i));
  const { records } = timelineRecords(pages, p.k, seeds.patches + 7);

  const buildDir = tmpDir(root, 'w7-native');
  {
    const repo = await openRepo(buildDir, 'native');
    try {
      const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'cold' });
      await ingestAll(tl, records);
      await tl.flush();
    } finally {
      await repo.close();
    }
  }
  const tsDir = tmpDir(root, 'w7-ts');
  copyDir(buildDir, tsDir);
  let blocks;
  {
    const repo = await openRepo(buildDir, 'native', { pageCacheBytes: 16 * PAGE_SIZE });
    blocks = layerBlocks(repo, [repo.getTimeline('t', 'cold')]);
    await repo.close();
  }
  const pageCacheBytes = (blocks.indexBlocks + CACHE_SLACK_BLOCKS) * PAGE_SIZE;

  const out = {
    params: {
      pages: p.pages, k: p.k, offeredReadsPerSec: p.rate, burst: p.burst, durationMs: p.durationMs, rounds: p.rounds,
      pageCacheBytes, indexBlocks: blocks.indexBlocks, layerBlocks: blocks.totalBlocks, monitorResolutionMs: MONITOR_RESOLUTION_MS,
      uvThreadpoolSize: Number(process.env.UV_THREADPOOL_SIZE ?? 4), backgroundThreads: strata.backgroundLaneStats().slots, cold: 'posix_fadvise(DONTNEED) on every layer file before each round; page cache = index blocks + slack',
    },
  };
  const rng = new Rng(seeds.access + 7);
  const idle = [];
  const per = {};
  for (const impl of IMPLS) {
    const repo = await openRepo(impl === 'native' ? buildDir : tsDir, impl, { pageCacheBytes });
    const tl = repo.getTimeline('t', 'cold');
    const lsn = tl.lastRecordLsn;
    // Both APIs return the same page before anything is timed.
    const a = Buffer.allocUnsafe(PAGE_SIZE);
    for (const i of [0, p.pages >> 1, p.pages - 1]) {
      tl.readPage(keys[i], lsn, a);
      if (!(await tl.getPage(keys[i], lsn)).equals(a)) throw new Error(`W7: ${impl} getPage and readPage disagree on page ${i}`);
    }
    for (const key of keys) tl.readPage(key, lsn, a); // index blocks into the page cache
    per[impl] = { getPage: [], readPage: [], saturated: [] };
    for (let round = 0; round < p.rounds; round++) {
      const modes = round % 2 === 0 ? ['getPage', 'readPage', 'saturated'] : ['saturated', 'readPage', 'getPage'];
      for (const mode of modes) per[impl][mode].push(await measure(mode, { repo, tl }, keys, permutation(p.pages, rng), lsn, p, floors));
      if (impl === IMPLS[0]) idle.push(await measure('idle', null, keys, [], lsn, p, floors));
    }
    await repo.close();
    out[impl] = { getPage: summarizeRounds(per[impl].getPage), readPage: summarizeRounds(per[impl].readPage), saturated: summarizeRounds(per[impl].saturated) };
    log(`W7 ${impl}: getPage loop delay p99 ${median(per[impl].getPage.map((r) => r.loopDelayMs.p99)).toFixed(2)} ms, readPage ${median(per[impl].readPage.map((r) => r.loopDelayMs.p99)).toFixed(2)} ms`);
  }
  out.idle = summarizeRounds(idle);
  const storm = {};
  for (const impl of IMPLS) {
    storm[impl] = { storm: [], ingestOnly: [] };
    for (let round = 0; round < p.rounds; round++) {
      storm[impl].storm.push(await measureStorm(impl, root, records, true));
      storm[impl].ingestOnly.push(await measureStorm(impl, root, records, false));
      idle.push(await measure('idle', null, keys, [], 0n, p, floors));
    }
    out[impl].storm = summarizeStorm(storm[impl].storm);
    out[impl].ingestOnly = summarizeStorm(storm[impl].ingestOnly);
    log(`W7 ${impl} storm: loop delay p99 ${out[impl].storm.loopDelayP99Ms.median.toFixed(2)} ms (ingest only ${out[impl].ingestOnly.loopDelayP99Ms.median.toFixed(2)} ms), ${out[impl].storm.compactions.median} flush + compactions`);
  }
  out.idle = summarizeRounds(idle);
  out.params.storm = { records: records.length, batchRecords: STORM_BATCH, maintenanceEveryBatches: STORM_MAINTENANCE_EVERY, checkpointDistanceBytes: STORM_CHECKPOINT_BYTES };
  const idleP99 = out.idle.loopDelayP99Ms.median;
  for (const impl of IMPLS) {
    out[impl].storm.p99OverIdle = summary(storm[impl].storm.map((r) => r.loopDelayMs.p99 / idleP99));
    out[impl].storm.maintenanceP99OverIdle = summary(storm[impl].storm.map((r) => r.maintenanceLoopDelayMs.p99 / idleP99));
    out[impl].ingestOnly.p99OverIdle = summary(storm[impl].ingestOnly.map((r) => r.loopDelayMs.p99 / idleP99));
  }
  const perRound = (a, b, f) => summary(a.map((x, i) => (b[i] ? f(x) / f(b[i]) : null)).filter((x) => x !== null && Number.isFinite(x)));
  out.ratios = {
    'native.getPage/native.readPage.loopDelayP99': perRound(per.native.getPage, per.native.readPage, (r) => r.loopDelayMs.p99),
    'native.getPage/ts.getPage.loopDelayP99': perRound(per.native.getPage, per.ts.getPage, (r) => r.loopDelayMs.p99),
    'native.saturated/ts.saturated.pagesPerSec': perRound(per.native.saturated, per.ts.saturated, (r) => r.pagesPerSec),
  };
  return out;
}

module.exports = { runW7, STORM_BATCH, STORM_MAINTENANCE_EVERY };
