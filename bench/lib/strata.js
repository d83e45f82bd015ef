'use strict';
/**
 * Building and opening Strata repositories for the workloads, through the public API only
 * (dist/index.js). A dataset is built once with the native core and the directory copied for the
 * TS core: both cores write byte-identical files, so the two read exactly the same bytes.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { dirUsage } = require('./baselines');

const DIST = path.join(__dirname, '..', '..', 'dist');
const strata = require(`${DIST}/index.js`);

const IMPLS = ['native', 'ts'];

function tmpDir(root, name) {
  return fs.mkdtempSync(path.join(root, `${name}-`));
}

function benchRoot() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'strata-bench-'));
}

/**
 * The decoded-page cache is off unless a workload asks for it: the workloads measure the cores'
 * read paths, which repeated reads at the newest LSN would otherwise skip (W1 measures it apart).
 */
async function openRepo(dir, implementation, opts = {}) {
  return strata.Repository.open(dir, { implementation, decodedPageCacheBytes: 0, ...opts });
}

/** Ingest records in batches of `batch`, yielding between batches so queued flushes progress. */
async function ingestAll(tl, records, batch = 1000) {
  for (let i = 0; i < records.length; i += batch) {
    tl.ingest(records.slice(i, i + batch));
    if ((i / batch) % 16 === 15) await new Promise((r) => setImmediate(r));
  }
}

function copyDir(src, dst) {
  fs.cpSync(src, dst, { recursive: true });
}

/** A timeline's directory, from the repository layout docs/FORMAT.md fixes. */
function timelineDir(repo, tl) {
  return path.join(repo.dir, 'tenants', tl.tenantId, 'timelines', tl.timelineId);
}

/**
 * Layer-file blocks of every layer of these timelines: index (B-tree) blocks and total blocks,
 * read from the layer summaries with a throwaway TS core (internal API, dist/core/ts/core.js).
 */
function layerBlocks(repo, timelines) {
  const { createTsCore } = require(`${DIST}/core/ts/core.js`);
  const core = createTsCore({ pageCacheBytes: 16 * 8192 });
  let index = 0;
  let total = 0;
  let layers = 0;
  try {
    for (const tl of timelines) {
      for (const l of tl.layers()) {
        const h = core.openLayer(path.join(timelineDir(repo, tl), l.fileName));
        const s = core.layerSummary(h);
        index += s.indexBlkCount;
        total += s.totalBlocks;
        layers++;
        core.closeLayer(h);
      }
    }
  } finally {
    core.close();
  }
  return { indexBlocks: index, totalBlocks: total, layers };
}

/**
 * Exits with a clear message (exit 2, no stack) when the native addon does not load: the benches
 * compare the native core with the TS one, so without it they have nothing to say.
 */
function requireNative(tool) {
  const info = strata.nativeInfo();
  if (info.loaded) return info;
  process.stderr.write(`${tool}: the native addon does not load (${info.error}); ` +
    'the benchmarks compare the native core with the TS one, so they need it: run `npm run build:native`\n');
  process.exit(2);
}

/** Page-cache counters of a repository, for hit ratios over a measured phase. */
function cacheCounters(repo) {
  const c = repo.stats().pageCache;
  return { hits: c.hits, misses: c.misses, evictions: c.evictions };
}

function cacheDelta(before, after) {
  const hits = after.hits - before.hits;
  const misses = after.misses - before.misses;
  return { hits, misses, evictions: after.evictions - before.evictions, hitRatio: hits + misses ? hits / (hits + misses) : null };
}

module.exports = {
  timelineDir, strata, IMPLS, tmpDir, benchRoot, openRepo, ingestAll, copyDir, layerBlocks, cacheCounters, cacheDelta, dirUsage, DIST, requireNative };
