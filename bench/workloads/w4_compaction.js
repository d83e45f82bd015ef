'use strict';
/**
 * W4: compaction throughput. P heap pages written as images, then U ≈100-byte patch records on
 * Zipf(1.0)-chosen pages, flushed into about `l0Layers` L0 delta layers (checkpointDistance set
 * from the data size; automatic compaction and backpressure off). The set is built once (both
 * cores write byte-identical layers) and copied afresh for every round and core, since compaction
 * replaces its inputs. Timed per round:
 *   L0 → L1   tl.compact() with image creation disabled: every L0 merged (streaming merge, values
 *             copied as stored) into key-range L1 layers. Input = bytes of the L0 files.
 *   images    tl.createImageLayer(latest LSN): every page reconstructed from the L1 layers and
 *             written, compressed, into one image layer. Input = bytes of the layers it reads.
 * MB/s are of input bytes. The merge is the active core's (Core.compactDeltas: C++ on a libuv
 * worker thread, or the TS twin on the event loop); image creation reconstructs pages through the
 * active core and compresses them in TypeScript (lib/core/compress.ts) for both.
 * Before anything counts, a sample of pages read after each step must equal the pages before it.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Rng, heapPages, patchFor, keyOf, zipfSampler, permutation, PAGE_SIZE } = require('../lib/data');
const { summary } = require('../lib/harness');
const { strata, IMPLS, tmpDir, openRepo, ingestAll, copyDir } = require('../lib/strata');

const LSN_STEP = 0x80;
const SAMPLE_PAGES = 64;
const NO_AUTOMATIC_WORK = {
  compactionThreshold: 1_000_000, compactionUpperLimit: 1_000_000, imageCreationThreshold: 1_000_000,
  l0FlushDelayThreshold: 0, l0FlushStallThreshold: 0,
};

function records(seeds, p) {
  const pages = heapPages(seeds.pages + 4, p.pages);
  const rng = new Rng(seeds.patches + 4);
  const perm = permutation(rng, p.pages);
  const draw = zipfSampler(rng, p.pages, p.zipf);
  const out = pages.map((page, i) => ({ lsn: BigInt((i + 1) * LSN_STEP), key: keyOf(i), kind: 'image', page }));
  let walBytes = pages.length * (PAGE_SIZE + 1);
  for (let u = 0; u < p.updates; u++) {
    const page = perm[draw()];
    const { offset, data } = patchFor(rng, pages[page]);
    out.push({ lsn: BigInt((p.pages + u + 1) * LSN_STEP), key: keyOf(page), kind: 'patch', offset, data });
    walBytes += 3 + data.length;
  }
  return { records: out, walBytes };
}

function layerBytes(tl, pick) {
  return tl.layers().filter(pick).reduce((n, l) => n + l.sizeBytes, 0);
}

function samplePages(tl, keys, lsn) {
  const out = Buffer.allocUnsafe(PAGE_SIZE * keys.length);
  tl.readPages(keys, lsn, out);
  return out;
}

async function oneRound(impl, baseDir, work, sample) {
  const dir = tmpDir(work, `w4-${impl}`);
  copyDir(baseDir, dir);
  // Threshold 2: compact() merges every L0 (upper limit 10^6) and, images disabled, nothing else.
  const repo = await openRepo(dir, impl, { ...NO_AUTOMATIC_WORK, compactionThreshold: 2 });
  try {
    const tl = repo.getTimeline('t', 'main');
    const lsn = tl.lastRecordLsn;
    const before = samplePages(tl, sample, lsn);
    const l0Bytes = layerBytes(tl, (l) => l.kind === 'delta' && l.level === 0);
    const l0Count = tl.stats().l0Count;

    let t0 = performance.now();
    const report = await tl.compact();
    const compactMs = performance.now() - t0;
    if (report.l0Compacted.length !== l0Count) throw new Error(`W4 ${impl}: compacted ${report.l0Compacted} of ${l0Count} L0 layers`);
    if (!samplePages(tl, sample, lsn).equals(before)) throw new Error(`W4 ${impl}: pages changed across L0 → L1 compaction`);
    const l1Bytes = layerBytes(tl, (l) => l.kind === 'delta');

    t0 = performance.now();
    const image = await tl.createImageLayer(lsn);
    const imageMs = performance.now() - t0;
    if (!samplePages(tl, sample, lsn).equals(before)) throw new Error(`W4 ${impl}: pages changed across image creation`);
    return {
      compaction: {
        ms: compactMs, inputBytes: l0Bytes, inputLayers: l0Count, outputBytes: report.bytesWritten, outputLayers: report.layersCreated.length,
        mbPerSec: l0Bytes / 1e6 / (compactMs / 1000),
      },
      images: { ms: imageMs, inputBytes: l1Bytes, outputBytes: image.sizeBytes, mbPerSec: l1Bytes / 1e6 / (imageMs / 1000) },
    };
  } finally {
    await repo.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function runW4(ctx) {
  const { root, log, seeds, profile } = ctx;
  const p = profile.w4;
  const data = records(seeds, p);
  const checkpointDistance = Math.max(64 * 1024, Math.floor(data.walBytes / p.l0Layers));
  log(`W4: ${p.pages} pages + ${p.updates} patches (${(data.walBytes / 1e6).toFixed(1)} MB of records) into ≈${p.l0Layers} L0 layers, ${p.rounds} rounds`);
  const baseDir = tmpDir(root, 'w4-base');
  {
    const repo = await openRepo(baseDir, 'native', { ...NO_AUTOMATIC_WORK, checkpointDistance });
    const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
    await ingestAll(tl, data.records);
    await tl.flush();
    await repo.close();
  }
  const rng = new Rng(seeds.access + 4);
  const sample = Array.from({ length: Math.min(SAMPLE_PAGES, p.pages) }, () => keyOf(rng.int(0, p.pages)));
  const work = tmpDir(root, 'w4-work');
  const rounds = { native: [], ts: [] };
  // The native core again with the background lane open (a slot per CPU), in the same rounds: the
  // default lane leaves a CPU to the event loop, which on two vCPUs costs image creation its overlap
  // of reconstruction and compression (lib/core/background_lane.ts).
  const openLane = [];
  const defaultSlots = strata.backgroundLaneStats().slots;
  const openSlots = Math.max(defaultSlots, os.availableParallelism());
  for (let r = 0; r < p.rounds; r++) {
    const order = r % 2 === 0 ? IMPLS : [...IMPLS].reverse();
    for (const impl of order) rounds[impl].push(await oneRound(impl, baseDir, work, sample));
    if (IMPLS.includes('native')) {
      strata.setBackgroundThreads(openSlots);
      try {
        openLane.push(await oneRound('native', baseDir, work, sample));
      } finally {
        strata.setBackgroundThreads(defaultSlots);
      }
    }
  }
  const out = { params: { pages: p.pages, updates: p.updates, zipf: p.zipf, recordBytes: data.walBytes, checkpointDistance, rounds: p.rounds, sampledPages: sample.length, backgroundThreads: strata.backgroundLaneStats().slots } };
  for (const impl of IMPLS) {
    const rs = rounds[impl];
    out[impl] = {
      compaction: { ...rs[0].compaction, mbPerSec: summary(rs.map((x) => x.compaction.mbPerSec)), perRound: rs.map((x) => x.compaction) },
      images: { ...rs[0].images, mbPerSec: summary(rs.map((x) => x.images.mbPerSec)), perRound: rs.map((x) => x.images) },
    };
    delete out[impl].compaction.ms;
    delete out[impl].images.ms;
  }
  if (openLane.length > 0) {
    out.nativeOpenLane = {
      backgroundThreads: openSlots,
      compactionMbPerSec: summary(openLane.map((x) => x.compaction.mbPerSec)),
      imagesMbPerSec: summary(openLane.map((x) => x.images.mbPerSec)),
    };
  }
  const perRound = (step) => summary(rounds.native.map((x, i) => x[step].mbPerSec / rounds.ts[i][step].mbPerSec));
  out.ratios = { 'native/ts.compaction': perRound('compaction'), 'native/ts.images': perRound('images') };
  log(`W4: L0→L1 native ${out.native.compaction.mbPerSec.median.toFixed(1)} MB/s, ts ${out.ts.compaction.mbPerSec.median.toFixed(1)}; images native ${out.native.images.mbPerSec.median.toFixed(1)} MB/s, ts ${out.ts.images.mbPerSec.median.toFixed(1)}`);
  return out;
}

module.exports = { runW4 };
