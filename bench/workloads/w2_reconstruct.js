'use strict';
/**
 * W2: reconstruction. Three timelines of P pages: each page an image followed by K ≈100-byte patch
 * records (K = 1, 10, 50), patches interleaved over pages in LSN order as WAL would be, flushed
 * into one L0 delta layer per timeline. A read at the latest LSN redoes the image + K patches; a
 * read at an old LSN (after K/2 rounds of patches) is time travel and redoes image + K/2.
 *
 * The page cache is sized to the layers' index (B-tree) blocks plus a few slots, so index
 * descents hit the cache and value blocks mostly come from the OS page cache (pread + CRC), as
 * in Neon, whose page cache holds index blocks while values bypass it. Hit ratio is recorded.
 * Reads use readPage (synchronous, into a caller buffer), one page per call, so the latency
 * percentiles are per reconstruction. Baselines hold every version of the K = 10 timeline whole.
 */
const { PAGE_SIZE, Rng, heapPages, patchFor, applyPatch, keyOf } = require('../lib/data');
const { openBaseline } = require('../lib/baselines');
const { decompressFloorTasks } = require('../lib/floors');
const { ratio } = require('../lib/harness');
const { IMPLS, tmpDir, openRepo, ingestAll, copyDir, layerBlocks, cacheCounters, cacheDelta, strata } = require('../lib/strata');

const LSN_STEP = 0x80;
const CACHE_SLACK_BLOCKS = 32;
const FLOOR_PAGES = 256;

/** Records of one timeline and the LSN at the end of each round (round 0 = the images). */
function timelineRecords(pages, k, seed) {
  const rng = new Rng(seed + k);
  const records = [];
  const roundLsn = [];
  const patches = []; // patches[j][page] = { offset, data }
  let lsn = 0;
  for (let i = 0; i < pages.length; i++) {
    lsn += LSN_STEP;
    records.push({ lsn: BigInt(lsn), key: keyOf(i), kind: 'image', page: pages[i] });
  }
  roundLsn.push(lsn);
  for (let j = 1; j <= k; j++) {
    const round = [];
    for (let i = 0; i < pages.length; i++) {
      lsn += LSN_STEP;
      const { offset, data } = patchFor(rng, pages[i]);
      round.push({ offset, data });
      records.push({ lsn: BigInt(lsn), key: keyOf(i), kind: 'patch', offset, data });
    }
    patches.push(round);
    roundLsn.push(lsn);
  }
  return { records, roundLsn, patches };
}

async function runW2(ctx) {
  const { harness, root, log, seeds, profile } = ctx;
  const p = profile.w2;
  const n = p.pages;
  const ks = p.patchCounts;
  log(`W2: ${n} pages × image + ${ks.join('/')} patches`);
  const pages = heapPages(seeds.pages + 2, n);
  const keysByPage = pages.map((_, i) => keyOf(i));
  const encodedKeys = keysByPage.map((k) => strata.encodeKey(k));
  const data = {};
  for (const k of ks) data[k] = timelineRecords(pages, k, seeds.patches);

  const buildDir = tmpDir(root, 'w2-native');
  {
    const repo = await openRepo(buildDir, 'native');
    try {
      for (const k of ks) {
        const tl = await repo.createTimeline({ tenantId: 't', timelineId: `k${k}` });
        await ingestAll(tl, data[k].records);
        await tl.flush();
      }
    } finally {
      await repo.close();
    }
  }
  const tsDir = tmpDir(root, 'w2-ts');
  copyDir(buildDir, tsDir);

  // Size the cache from the layers' own summaries: every index block, plus slack for the value
  // blocks one reconstruction touches.
  let blocks;
  {
    const repo = await openRepo(buildDir, 'native', { pageCacheBytes: 16 * PAGE_SIZE });
    blocks = layerBlocks(repo, ks.map((k) => repo.getTimeline('t', `k${k}`)));
    await repo.close();
  }
  const pageCacheBytes = (blocks.indexBlocks + CACHE_SLACK_BLOCKS) * PAGE_SIZE;

  const rng = new Rng(seeds.access + 2);
  const seq = new Int32Array(65536);
  for (let i = 0; i < seq.length; i++) seq[i] = rng.int(0, n);

  const oldRound = (k) => Math.floor(k / 2);
  const repos = {};
  const tasks = [];
  for (const impl of IMPLS) {
    const repo = await openRepo(impl === 'native' ? buildDir : tsDir, impl, { pageCacheBytes });
    repos[impl] = repo;
    const buf = Buffer.allocUnsafe(PAGE_SIZE);
    for (const k of ks) {
      const tl = repo.getTimeline('t', `k${k}`);
      const latest = tl.lastRecordLsn;
      const old = BigInt(data[k].roundLsn[oldRound(k)]);
      for (const key of keysByPage) tl.readPage(key, latest, buf); // index blocks into the cache
      let i = 0;
      tasks.push({ name: `${impl}.k${k}.latest`, fn: () => tl.readPage(keysByPage[seq[i++ & 65535]], latest, buf), bytesPerOp: PAGE_SIZE });
      if (k >= 10) {
        let j = 0;
        tasks.push({ name: `${impl}.k${k}.old`, fn: () => tl.readPage(keysByPage[seq[j++ & 65535]], old, buf), bytesPerOp: PAGE_SIZE });
      }
    }
  }

  // Baselines: every version of the K = 10 timeline stored whole.
  const kb = ks.includes(10) ? 10 : ks[Math.min(1, ks.length - 1)];
  const stores = [];
  {
    const d = data[kb];
    const versions = [];
    let current = pages.slice();
    for (let i = 0; i < n; i++) versions.push({ key: encodedKeys[i], lsn: d.roundLsn[0] - (n - 1 - i) * LSN_STEP, page: pages[i] });
    for (let j = 0; j < kb; j++) {
      const next = [];
      for (let i = 0; i < n; i++) {
        const { offset, data: bytes } = d.patches[j][i];
        next.push(applyPatch(current[i], offset, bytes));
        versions.push({ key: encodedKeys[i], lsn: d.roundLsn[j] + (i + 1) * LSN_STEP, page: next[i] });
      }
      current = next;
    }
    const latest = d.roundLsn[kb];
    const old = d.roundLsn[oldRound(kb)];
    for (const name of ['lmdb', 'sqlite']) {
      const store = openBaseline(name, tmpDir(root, `w2-${name}`));
      for (let i = 0; i < versions.length; i += 1000) store.putBatch(versions.slice(i, i + 1000));
      const tmp = Buffer.allocUnsafe(PAGE_SIZE);
      for (let i = 0; i < n; i++) store.readInto(encodedKeys[i], latest, tmp);
      // Same bytes as Strata's reconstruction at both LSNs: the baselines answer the same question.
      const check = Buffer.allocUnsafe(PAGE_SIZE);
      for (const at of [old, latest]) {
        repos.native.getTimeline('t', `k${kb}`).readPage(keysByPage[0], BigInt(at), check);
        store.readInto(encodedKeys[0], at, tmp);
        if (!tmp.equals(check)) throw new Error(`W2: ${name} and Strata disagree on page 0 at LSN ${at}`);
      }
      stores.push(store);
      let i = 0;
      let j = 0;
      tasks.push({ name: `${name}.k${kb}.latest`, fn: () => { store.readInto(encodedKeys[seq[i++ & 65535]], latest, tmp); }, bytesPerOp: PAGE_SIZE });
      tasks.push({ name: `${name}.k${kb}.old`, fn: () => { store.readInto(encodedKeys[seq[j++ & 65535]], old, tmp); }, bytesPerOp: PAGE_SIZE });
    }
  }

  // Decompression floors on these very pages, encoded as the layers store them.
  const imageRecords = pages.slice(0, Math.min(FLOOR_PAGES, n)).map((pg) => Buffer.concat([Buffer.of(1), pg]));
  const floors = decompressFloorTasks('', imageRecords);
  tasks.push(...floors.tasks);

  const before = {};
  for (const impl of IMPLS) {
    // Read-amplification stats then cover the measured reads only.
    for (const k of ks) repos[impl].getTimeline('t', `k${k}`).resetStats();
    before[impl] = cacheCounters(repos[impl]);
  }
  const res = await harness.group('W2', tasks);

  const out = {
    params: {
      pages: n, patchCounts: ks, patchBytes: '90–110', lsnStep: LSN_STEP, oldLsn: 'after floor(K/2) patch rounds', baselineK: kb,
      pageCacheBytes, indexBlocks: blocks.indexBlocks, totalLayerBlocks: blocks.totalBlocks, cacheSlackBlocks: CACHE_SLACK_BLOCKS,
      compression: 'lz4', floorPages: imageRecords.length, floorCompressionRatio: floors.ratios, read: 'readPage, one page per call',
    },
  };
  for (const impl of IMPLS) {
    const o = { cache: cacheDelta(before[impl], cacheCounters(repos[impl])) };
    for (const k of ks) {
      const tl = repos[impl].getTimeline('t', `k${k}`);
      const st = tl.stats();
      o[`k${k}`] = { latest: res[`${impl}.k${k}.latest`], layersVisitedPerRead: st.layersVisitedPerRead, recordsAppliedPerRead: st.recordsAppliedPerRead };
      if (k >= 10) o[`k${k}`].old = res[`${impl}.k${k}.old`];
    }
    out[impl] = o;
    await repos[impl].close();
  }
  for (const store of stores) {
    out[store.name] = { [`k${kb}`]: { latest: res[`${store.name}.k${kb}.latest`], old: res[`${store.name}.k${kb}.old`] } };
    await store.close();
  }
  out.floors = { lz4: res['floor.lz4'], zstd: res['floor.zstd'] };
  out.references = { lz4napiFromJs: res['ref.lz4napi'] };
  const r = {};
  for (const k of ks) {
    r[`native/ts.k${k}.latest`] = ratio(res[`native.k${k}.latest`], res[`ts.k${k}.latest`]);
    r[`native.k${k}.latest/floor.lz4`] = ratio(res[`native.k${k}.latest`], res['floor.lz4']);
    if (k >= 10) r[`native/ts.k${k}.old`] = ratio(res[`native.k${k}.old`], res[`ts.k${k}.old`]);
  }
  for (const b of ['lmdb', 'sqlite']) {
    for (const when of ['latest', 'old']) {
      for (const impl of IMPLS) r[`${impl}.k${kb}.${when}/${b}`] = ratio(res[`${impl}.k${kb}.${when}`], res[`${b}.k${kb}.${when}`]);
    }
  }
  out.ratios = r;
  return out;
}

module.exports = { runW2, timelineRecords };
