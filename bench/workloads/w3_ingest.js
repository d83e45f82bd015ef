'use strict';
/**
 * W3 (ingest) and W5 (bytes on disk), on one update-heavy dataset: P heap pages written once as
 * images, then U ≈100-byte patch records on Zipf(1.0)-chosen pages, in batches of 1000 records.
 *
 * W3 times, per system, the U updates from the first batch until they are durable:
 *   Strata: ingest() of every batch (yielding to the event loop every 16 batches so frozen layers
 *           flush as they would under a WAL receiver), then flush() — the L0 layers are written,
 *           fsynced and in the manifest. checkpointDistance is set so that the full run flushes
 *           several L0s on the way.
 *   lmdb / sqlite: what a user would do instead — apply each patch to the page's latest version in
 *           JS and store the whole new version, one transaction per batch.
 * Records/s counts patch records; MB/s counts their serialized bytes (3-byte header + data).
 *
 * W5 then reports the bytes each system takes on disk (allocated blocks) per logical page (P) and
 * per page version (P + U), everything retained (no GC); for Strata also after compact({ force }).
 */
const { Rng, heapPages, patchFor, applyPatch, keyOf, zipfSampler, permutation, PAGE_SIZE } = require('../lib/data');
const { openBaseline, dirUsage } = require('../lib/baselines');
const { summary } = require('../lib/harness');
const { IMPLS, tmpDir, openRepo, ingestAll, strata } = require('../lib/strata');

const LSN_STEP = 0x80;
const BATCH = 1000;
const PATCH_HEADER = 3;

function dataset(seeds, p) {
  const pages = heapPages(seeds.pages + 3, p.pages);
  const rng = new Rng(seeds.patches + 3);
  const perm = permutation(rng, p.pages);
  const draw = zipfSampler(rng, p.pages, p.zipf);
  const updates = new Array(p.updates);
  let walBytes = 0;
  const touched = new Set();
  for (let u = 0; u < p.updates; u++) {
    const page = perm[draw()];
    const { offset, data } = patchFor(rng, pages[page]);
    updates[u] = { page, offset, data, lsn: (p.pages + u + 1) * LSN_STEP };
    walBytes += PATCH_HEADER + data.length;
    touched.add(page);
  }
  return { pages, updates, walBytes, distinctPagesUpdated: touched.size };
}

async function strataRun(impl, dir, ds, p) {
  const repo = await openRepo(dir, impl, { checkpointDistance: p.checkpointDistance });
  let result;
  try {
    const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
    await ingestAll(tl, ds.pages.map((page, i) => ({ lsn: BigInt((i + 1) * LSN_STEP), key: keyOf(i), kind: 'image', page })));
    await tl.flush();
    const flushedBefore = tl.stats().bytesFlushed;
    // Records are built before the clock starts: the caller hands Strata ready records.
    const records = ds.updates.map((u) => ({ lsn: BigInt(u.lsn), key: keyOf(u.page), kind: 'patch', offset: u.offset, data: u.data }));
    const t0 = performance.now();
    await ingestAll(tl, records, BATCH);
    await tl.flush();
    const ms = performance.now() - t0;
    const st = tl.stats();
    result = { ms, l0Layers: st.l0Count, layers: st.layers, bytesFlushed: st.bytesFlushed - flushedBefore, flushDelays: st.flushDelays, flushStalls: st.flushStalls };
  } finally {
    await repo.close();
  }
  return result;
}

async function baselineRun(name, dir, ds) {
  const store = openBaseline(name, dir);
  const encoded = ds.pages.map((_, i) => strata.encodeKey(keyOf(i)));
  let ms;
  try {
    for (let i = 0; i < ds.pages.length; i += BATCH) {
      store.putBatch(ds.pages.slice(i, i + BATCH).map((page, j) => ({ key: encoded[i + j], lsn: (i + j + 1) * LSN_STEP, page })));
    }
    const current = ds.pages.slice();
    const t0 = performance.now();
    for (let i = 0; i < ds.updates.length; i += BATCH) {
      const versions = [];
      for (const u of ds.updates.slice(i, i + BATCH)) {
        const page = applyPatch(current[u.page], u.offset, u.data);
        current[u.page] = page;
        versions.push({ key: encoded[u.page], lsn: u.lsn, page });
      }
      store.putBatch(versions);
    }
    ms = performance.now() - t0;
    if (store.checkpoint) store.checkpoint(); // untimed: only so the file holds everything
  } finally {
    await store.close();
  }
  return { ms };
}

async function runW3W5(ctx) {
  const { root, log, seeds, profile } = ctx;
  const p = profile.w3;
  const ds = dataset(seeds, p);
  log(`W3/W5: ${p.pages} pages, ${p.updates} patch records (${(ds.walBytes / 2 ** 20).toFixed(1)} MiB), Zipf ${p.zipf}`);
  const systems = [...IMPLS, 'lmdb', 'sqlite'];
  const runs = Object.fromEntries(systems.map((s) => [s, []]));
  const storage = {};
  for (let r = 0; r < p.rounds; r++) {
    const order = r % 2 === 0 ? systems : [...systems].reverse();
    for (const sys of order) {
      if (!IMPLS.includes(sys) && r >= p.baselineRounds) continue;
      const dir = tmpDir(root, `w3-${sys}-r${r}`);
      const res = IMPLS.includes(sys) ? await strataRun(sys, dir, ds, p) : await baselineRun(sys, dir, ds);
      res.round = r;
      runs[sys].push(res);
      if (storage[sys] === undefined) storage[sys] = { dir, usage: dirUsage(dir) };
      else require('node:fs').rmSync(dir, { recursive: true, force: true });
      log(`  W3 round ${r + 1}: ${sys} ${(p.updates / (res.ms / 1000)).toFixed(0)} records/s`);
    }
  }

  // Strata after compaction (L0 → L1 plus an image layer at the latest LSN), native core.
  const compacted = await (async () => {
    const repo = await openRepo(storage.native.dir, 'native');
    try {
      const report = await repo.getTimeline('t', 'main').compact({ force: true });
      return { l0Compacted: report.l0Compacted.length, layersCreated: report.layersCreated.length, imageLayersCreated: report.imageLayersCreated.length };
    } finally {
      await repo.close();
    }
  })();
  const compactedUsage = dirUsage(storage.native.dir);

  const w3 = { params: { pages: p.pages, updates: p.updates, batch: BATCH, zipf: p.zipf, checkpointDistance: p.checkpointDistance, walBytes: ds.walBytes, distinctPagesUpdated: ds.distinctPagesUpdated, rounds: p.rounds, baselineRounds: p.baselineRounds, seeds } };
  for (const sys of systems) {
    const recs = runs[sys].map((x) => p.updates / (x.ms / 1000));
    const ingest = summary(recs);
    w3[sys] = { recordsPerSec: ingest, mbPerSec: (ingest.median * ds.walBytes) / p.updates / 1e6, runs: runs[sys] };
  }
  // Per-round ratios where both sides ran in that round.
  const ratioOf = (a, b) => {
    const xs = [];
    for (const ra of runs[a]) {
      const rb = runs[b].find((x) => x.round === ra.round);
      if (rb) xs.push(rb.ms / ra.ms);
    }
    return xs.length ? summary(xs) : null;
  };
  w3.ratios = {
    'native/ts': ratioOf('native', 'ts'),
    'native/lmdb': ratioOf('native', 'lmdb'),
    'native/sqlite': ratioOf('native', 'sqlite'),
    'ts/lmdb': ratioOf('ts', 'lmdb'),
    'ts/sqlite': ratioOf('ts', 'sqlite'),
  };

  const versions = p.pages + p.updates;
  const per = (u) => ({ bytesOnDisk: u.allocatedBytes, apparentBytes: u.apparentBytes, files: u.files, perLogicalPage: u.allocatedBytes / p.pages, perPageVersion: u.allocatedBytes / versions });
  const w5 = {
    params: { logicalPages: p.pages, pageVersions: versions, logicalBytesLatest: p.pages * PAGE_SIZE, logicalBytesAllVersions: versions * PAGE_SIZE, retention: 'every version (no GC)', measure: 'allocated blocks (st_blocks × 512) of every file' },
  };
  for (const sys of systems) w5[sys] = per(storage[sys].usage);
  w5.native.afterCompaction = { ...per(compactedUsage), ...compacted };
  w5.ts.identicalToNative = storage.ts.usage.apparentBytes === storage.native.usage.apparentBytes;
  w5.ratios = {
    'native/lmdb': storage.native.usage.allocatedBytes / storage.lmdb.usage.allocatedBytes,
    'native/sqlite': storage.native.usage.allocatedBytes / storage.sqlite.usage.allocatedBytes,
    'nativeCompacted/lmdb': compactedUsage.allocatedBytes / storage.lmdb.usage.allocatedBytes,
    'nativeCompacted/sqlite': compactedUsage.allocatedBytes / storage.sqlite.usage.allocatedBytes,
    'native/logicalLatest': storage.native.usage.allocatedBytes / (p.pages * PAGE_SIZE),
  };
  return { w3, w5 };
}

module.exports = { runW3W5 };
