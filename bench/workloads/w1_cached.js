'use strict';
/**
 * W1: cached GetPage@latest. N heap pages ingested as images, flushed, then materialized into an
 * image layer at the latest LSN, so a read visits one layer. The page cache is large enough for
 * every block and is warmed by reading each page once; the measured phase then runs on cache hits
 * only (hit ratio recorded). Per core: getPage (async, a new Buffer per page), getPages(64) (one
 * core call and one Buffer per batch), readPage / readPages(64) (synchronous, into a caller
 * buffer). For the small set, native getPage once more with offloadCachedReads (every read sent to
 * the libuv thread pool): what the thread round trip would cost a cached read.
 * Baselines read the same pages at the same LSN; floors copy the same number of pages.
 * A small-size variant with compression 'none' separates decompression from the rest of the path.
 */
const { PAGE_SIZE, Rng, heapPages, keyOf } = require('../lib/data');
const { openBaseline } = require('../lib/baselines');
const { copyFloorTasks } = require('../lib/floors');
const { ratio } = require('../lib/harness');
const { IMPLS, tmpDir, openRepo, ingestAll, copyDir, cacheCounters, cacheDelta, dirUsage, strata } = require('../lib/strata');

const BATCH = 64;
const LSN_STEP = 0x80;
/** Decoded-page cache slots beyond the working set, so no hit depends on the clock. */
const DECODED_SLACK_PAGES = 64;

/** Builds the image dataset with the native core; returns its directory and LSNs. */
async function buildImageRepo(dir, pages, compression) {
  const repo = await openRepo(dir, 'native', { compression });
  try {
    const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
    const records = pages.map((page, i) => ({ lsn: BigInt((i + 1) * LSN_STEP), key: keyOf(i), kind: 'image', page }));
    await ingestAll(tl, records);
    await tl.flush();
    const image = await tl.createImageLayer(tl.lastRecordLsn);
    return { lastLsn: tl.lastRecordLsn, layerBytes: tl.stats().physicalSizeBytes, imageLayerBytes: image.sizeBytes };
  } finally {
    await repo.close();
  }
}

/** Reads every page once (batches of 64) so that every block it needs is cached. */
function warm(tl, keys, lsn) {
  const out = Buffer.allocUnsafe(PAGE_SIZE * BATCH);
  for (let i = 0; i < keys.length; i += BATCH) {
    const chunk = keys.slice(i, i + BATCH);
    tl.readPages(chunk, lsn, out.subarray(0, chunk.length * PAGE_SIZE));
  }
}

/** Every system must return the ingested bytes: checks 16 pages spread over the set. */
function checkPages(who, read, pages) {
  const into = Buffer.allocUnsafe(PAGE_SIZE);
  for (let j = 0; j < 16; j++) {
    const i = Math.floor((j * pages.length) / 16);
    read(i, into);
    if (!into.equals(pages[i])) throw new Error(`W1: ${who} returned wrong bytes for page ${i}`);
  }
}

function accessPattern(n, seed) {
  const rng = new Rng(seed);
  const seq = new Int32Array(65536);
  for (let i = 0; i < seq.length; i++) seq[i] = rng.int(0, n);
  return seq;
}

/** Strata tasks for one core over `keys`, reading at `lsn`. */
function strataTasks(impl, tl, keysByPage, seq, lsn, which) {
  const one = Buffer.allocUnsafe(PAGE_SIZE);
  const many = Buffer.allocUnsafe(PAGE_SIZE * BATCH);
  const batches = [];
  for (let i = 0; i + BATCH <= seq.length; i += BATCH) {
    batches.push(Array.from(seq.subarray(i, i + BATCH), (p) => keysByPage[p]));
  }
  let i = 0;
  let b = 0;
  const all = {
    getPage: { name: `${impl}.getPage`, fn: () => tl.getPage(keysByPage[seq[i++ & 65535]], lsn), bytesPerOp: PAGE_SIZE },
    getPages64: { name: `${impl}.getPages64`, fn: () => tl.getPages(batches[b++ % batches.length], lsn), opsPerCall: BATCH, bytesPerOp: PAGE_SIZE },
    readPage: { name: `${impl}.readPage`, fn: () => tl.readPage(keysByPage[seq[i++ & 65535]], lsn, one), inner: 16, bytesPerOp: PAGE_SIZE },
    readPages64: { name: `${impl}.readPages64`, fn: () => tl.readPages(batches[b++ % batches.length], lsn, many), opsPerCall: BATCH, bytesPerOp: PAGE_SIZE },
  };
  return which.map((w) => all[w]);
}

function baselineTask(store, encodedKeys, seq, lsn) {
  const one = Buffer.allocUnsafe(PAGE_SIZE);
  let i = 0;
  return {
    name: `${store.name}.readPage`,
    fn: () => {
      if (!store.readInto(encodedKeys[seq[i++ & 65535]], lsn, one)) throw new Error(`${store.name}: page missing`);
    },
    inner: 16,
    bytesPerOp: PAGE_SIZE,
  };
}

async function runSize(ctx, label, n, opts) {
  const { harness, root, log, seeds } = ctx;
  const compression = opts.compression;
  log(`W1 ${label}: ${n} pages (${(n * PAGE_SIZE / 2 ** 20).toFixed(1)} MiB), compression ${compression}`);
  const pages = heapPages(seeds.pages, n);
  const keysByPage = pages.map((_, i) => keyOf(i));
  const encodedKeys = keysByPage.map((k) => strata.encodeKey(k));
  const buildDir = tmpDir(root, `w1-${label}-native`);
  const built = await buildImageRepo(buildDir, pages, compression);
  const tsDir = tmpDir(root, `w1-${label}-ts`);
  copyDir(buildDir, tsDir);
  // Reads at the latest LSN visit only the image layer: the cache holds all of it, with slack.
  const pageCacheBytes = Math.ceil(built.imageLayerBytes * 1.05) + 256 * PAGE_SIZE;
  const seq = accessPattern(n, seeds.access);
  const repos = {};
  const tasks = [];
  const before = {};
  const which = opts.ops;
  for (const impl of IMPLS) {
    const repo = await openRepo(impl === 'native' ? buildDir : tsDir, impl, { pageCacheBytes });
    const tl = repo.getTimeline('t', 'main');
    warm(tl, keysByPage, built.lastLsn);
    checkPages(`${impl} core`, (i, into) => tl.readPage(keysByPage[i], built.lastLsn, into), pages);
    repos[impl] = repo;
    tasks.push(...strataTasks(impl, tl, keysByPage, seq, built.lastLsn, which));
  }
  if (opts.offload) {
    // The async API with every read sent to the thread pool: the round trip it would cost.
    const offDir = tmpDir(root, `w1-${label}-offload`);
    copyDir(buildDir, offDir);
    const repo = await openRepo(offDir, 'native', { pageCacheBytes, offloadCachedReads: true });
    const tl = repo.getTimeline('t', 'main');
    warm(tl, keysByPage, built.lastLsn);
    repos.offload = repo;
    let i = 0;
    tasks.push({ name: 'native.getPageOffload', fn: () => tl.getPage(keysByPage[seq[i++ & 65535]], built.lastLsn), bytesPerOp: PAGE_SIZE });
  }
  if (opts.decoded) {
    // The same reads answered by the decoded-page cache (whole pages, every key cached): a hit is
    // a hash lookup and one copy, what P1 compares with the copy floors.
    const decDir = tmpDir(root, `w1-${label}-decoded`);
    copyDir(buildDir, decDir);
    const repo = await openRepo(decDir, 'native', { pageCacheBytes, decodedPageCacheBytes: (n + DECODED_SLACK_PAGES) * PAGE_SIZE });
    const tl = repo.getTimeline('t', 'main');
    warm(tl, keysByPage, built.lastLsn);
    repos.decoded = repo;
    for (const t of strataTasks('native', tl, keysByPage, seq, built.lastLsn, ['readPage', 'readPages64'])) tasks.push({ ...t, name: `${t.name}Decoded` });
  }
  const stores = [];
  if (opts.baselines) {
    for (const name of ['lmdb', 'sqlite']) {
      const store = openBaseline(name, tmpDir(root, `w1-${label}-${name}`));
      for (let i = 0; i < n; i += 1000) {
        store.putBatch(pages.slice(i, i + 1000).map((page, j) => ({ key: encodedKeys[i + j], lsn: (i + j + 1) * LSN_STEP, page })));
      }
      const tmp = Buffer.allocUnsafe(PAGE_SIZE);
      for (let i = 0; i < n; i++) store.readInto(encodedKeys[i], Number(built.lastLsn), tmp);
      checkPages(name, (i, into) => store.readInto(encodedKeys[i], Number(built.lastLsn), into), pages);
      stores.push(store);
      tasks.push(baselineTask(store, encodedKeys, seq, Number(built.lastLsn)));
    }
  }
  // The page bytes are all stored now; drop them so a GiB of Buffers does not sit in the heap
  // while the cores' allocation-heavy paths are timed.
  pages.fill(null);
  if (opts.floors) tasks.push(...copyFloorTasks('', n, seeds.access, BATCH));
  for (const impl of IMPLS) before[impl] = cacheCounters(repos[impl]);
  const res = await harness.group(`W1 ${label}`, tasks);
  const out = { pages: n, workingSetBytes: n * PAGE_SIZE, compression, layerBytes: built.layerBytes, imageLayerBytes: built.imageLayerBytes, pageCacheBytes };
  for (const impl of IMPLS) {
    out[impl] = { cache: cacheDelta(before[impl], cacheCounters(repos[impl])) };
    for (const w of which) out[impl][w] = res[`${impl}.${w}`];
    await repos[impl].close();
  }
  if (repos.offload) {
    out.native.getPageOffload = res['native.getPageOffload'];
    await repos.offload.close();
  }
  if (repos.decoded) {
    const st = repos.decoded.stats().decodedPageCache;
    out.native.decoded = { readPage: res['native.readPageDecoded'], readPages64: res['native.readPages64Decoded'], hitRatio: st.hits / Math.max(1, st.hits + st.misses) };
    await repos.decoded.close();
  }
  for (const store of stores) {
    out[store.name] = { readPage: res[`${store.name}.readPage`], diskUsage: store.diskUsage() };
    await store.close();
  }
  if (opts.floors) {
    out.floors = { memcpy: res['floor.memcpy'], napiCopy: res['floor.napiCopy'], napiBatch64: res['floor.napiBatch64'] };
  }
  out.ratios = w1Ratios(res, which, opts);
  out.diskUsage = { native: dirUsage(buildDir) };
  return out;
}

function w1Ratios(res, which, opts) {
  const r = {};
  for (const w of which) r[`native/ts.${w}`] = ratio(res[`native.${w}`], res[`ts.${w}`]);
  if (opts.floors) {
    for (const impl of IMPLS) {
      if (which.includes('getPages64')) r[`${impl}.getPages64/floor.memcpy`] = ratio(res[`${impl}.getPages64`], res['floor.memcpy']);
      if (which.includes('readPages64')) r[`${impl}.readPages64/floor.memcpy`] = ratio(res[`${impl}.readPages64`], res['floor.memcpy']);
      if (which.includes('readPages64')) r[`${impl}.readPages64/floor.napiBatch64`] = ratio(res[`${impl}.readPages64`], res['floor.napiBatch64']);
      if (which.includes('getPage')) r[`${impl}.getPage/floor.napiCopy`] = ratio(res[`${impl}.getPage`], res['floor.napiCopy']);
      if (which.includes('readPage')) r[`${impl}.readPage/floor.napiCopy`] = ratio(res[`${impl}.readPage`], res['floor.napiCopy']);
    }
    r['floor.napiBatch64/floor.memcpy'] = ratio(res['floor.napiBatch64'], res['floor.memcpy']);
  }
  if (opts.offload) r['native.getPageOffload/native.getPage'] = ratio(res['native.getPageOffload'], res['native.getPage']);
  if (opts.decoded && opts.floors) {
    r['native.readPages64Decoded/floor.memcpy'] = ratio(res['native.readPages64Decoded'], res['floor.memcpy']);
    r['native.readPageDecoded/floor.napiCopy'] = ratio(res['native.readPageDecoded'], res['floor.napiCopy']);
    r['native.readPageDecoded/native.readPage'] = ratio(res['native.readPageDecoded'], res['native.readPage']);
  }
  if (opts.baselines) {
    for (const b of ['lmdb', 'sqlite']) {
      for (const impl of IMPLS) r[`${impl}.readPage/${b}.readPage`] = ratio(res[`${impl}.readPage`], res[`${b}.readPage`]);
    }
  }
  return r;
}

async function runW1(ctx) {
  const p = ctx.profile.w1;
  const all = ['getPage', 'getPages64', 'readPage', 'readPages64'];
  const sizes = {};
  sizes.small = await runSize(ctx, 'small', p.smallPages, { compression: 'lz4', ops: all, baselines: true, floors: true, offload: true, decoded: true });
  sizes.large = await runSize(ctx, 'large', p.largePages, { compression: 'lz4', ops: all, baselines: true, floors: true, decoded: true });
  // Same pages stored raw: the difference to `small` is what lz4 decompression costs per read.
  const uncompressed = await runSize(ctx, 'small-uncompressed', p.smallPages, { compression: 'none', ops: ['readPage', 'readPages64'], baselines: false, floors: true });
  return {
    params: { smallPages: p.smallPages, largePages: p.largePages, batch: BATCH, lsnStep: LSN_STEP, access: 'uniform random over the working set', seeds: ctx.seeds, note: p.note },
    sizes,
    uncompressed,
  };
}

module.exports = { runW1 };
