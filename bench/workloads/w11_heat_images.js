'use strict';
/**
 * W11: heat-driven images (issue 11, step 7). A write-heavy timeline: P heap pages as images (one
 * base image layer), then R rounds of U ≈100-byte patches on Zipf(s)-chosen pages, a flush (one L0
 * per round), Q reads at the latest LSN on the same Zipf distribution (the popular pages are
 * popular for reads and writes alike, their order a seeded permutation of the keyspace, so hot
 * pages are scattered, not clustered), then compact() with the repository's default thresholds
 * apart from the layer size. Run twice per core on the same records, heatImageBudget 0 (off)
 * and the default: records applied per read (p50, p99, mean) over every measured read, and bytes
 * written (flushes + compaction + images). Reads must return the same pages in both runs.
 */
const { Rng, heapPages, patchFor, keyOf, zipfSampler, permutation, PAGE_SIZE } = require('../lib/data');
const { IMPLS, tmpDir, openRepo } = require('../lib/strata');

const LSN_STEP = 0x80;

function plan(seeds, p) {
  const pages = heapPages(seeds.pages + 11, p.pages);
  const rng = new Rng(seeds.patches + 11);
  const perm = permutation(rng, p.pages);
  const draw = zipfSampler(rng, p.pages, p.zipf);
  const base = pages.map((page, i) => ({ lsn: BigInt((i + 1) * LSN_STEP), key: keyOf(i), kind: 'image', page }));
  let lsn = BigInt((p.pages + 1) * LSN_STEP);
  const rounds = [];
  for (let r = 0; r < p.rounds; r++) {
    const writes = [];
    for (let u = 0; u < p.updates; u++) {
      const page = perm[draw()];
      const { offset, data } = patchFor(rng, pages[page]);
      writes.push({ lsn: (lsn += BigInt(LSN_STEP)), key: keyOf(page), kind: 'patch', offset, data });
    }
    const reads = Array.from({ length: p.reads }, () => keyOf(perm[draw()]));
    rounds.push({ writes, reads });
  }
  return { base, rounds };
}

async function oneRun(impl, root, p, work, heatImageBudget) {
  const dir = tmpDir(root, `w11-${impl}-${heatImageBudget}`);
  const repo = await openRepo(dir, impl, { compactionTargetSize: p.compactionTargetSize, heatImageBudget, l0FlushDelayThreshold: 0 });
  try {
    const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
    for (let i = 0; i < work.base.length; i += 1000) tl.ingest(work.base.slice(i, i + 1000));
    await tl.flush();
    await tl.compact({ force: true });
    tl.resetStats();
    const out = Buffer.allocUnsafe(PAGE_SIZE);
    let digest = 0;
    let hotImages = 0;
    let hotImageBytes = 0;
    const started = performance.now();
    for (const round of work.rounds) {
      for (let i = 0; i < round.writes.length; i += 1000) tl.ingest(round.writes.slice(i, i + 1000));
      await tl.flush();
      const lsn = tl.lastRecordLsn;
      for (const key of round.reads) {
        tl.readPage(key, lsn, out);
        digest = (digest * 31 + out.readUInt32LE(out.length >> 1) + out[17]) >>> 0;
      }
      const report = await tl.compact();
      hotImages += report.hotImageLayersCreated.length;
      for (const l of report.imageLayersCreated) if (report.hotImageLayersCreated.includes(l.fileName)) hotImageBytes += l.sizeBytes;
    }
    const s = tl.stats();
    return {
      heatImageBudget,
      ms: performance.now() - started,
      reads: s.reads,
      recordsAppliedPerRead: s.recordsAppliedPerRead,
      meanApplied: s.recordsApplied / s.reads,
      bytesWritten: s.bytesFlushed + s.bytesCompacted + s.bytesImages,
      bytesFlushed: s.bytesFlushed, bytesCompacted: s.bytesCompacted, bytesImages: s.bytesImages,
      hotImages, hotImageBytes, imageLayers: s.imageLayerCount, digest,
    };
  } finally {
    await repo.close();
  }
}

async function runW11(ctx) {
  const { root, log, profile, seeds } = ctx;
  const p = profile.w11;
  log(`W11: heat-driven images — ${p.pages} pages, ${p.rounds} rounds × (${p.updates} Zipf(${p.zipf}) patches, flush, ${p.reads} Zipf reads, compact)`);
  const work = plan(seeds, p);
  const cores = {};
  for (const impl of IMPLS) {
    const off = await oneRun(impl, root, p, work, 0);
    const on = await oneRun(impl, root, p, work, p.heatImageBudget);
    if (on.digest !== off.digest) throw new Error(`W11 ${impl}: reads differ with heat-driven images on`);
    log(`W11 ${impl}: applied/read p99 ${off.recordsAppliedPerRead.p99} → ${on.recordsAppliedPerRead.p99}, bytes written ${(off.bytesWritten / 2 ** 20).toFixed(1)} → ${(on.bytesWritten / 2 ** 20).toFixed(1)} MiB`);
    cores[impl] = { off, on };
  }
  const n = cores.native;
  return {
    params: p,
    cores,
    ratios: {
      'off/on.appliedP99': n.off.recordsAppliedPerRead.p99 / n.on.recordsAppliedPerRead.p99,
      'off/on.appliedP50': n.off.recordsAppliedPerRead.p50 / Math.max(1, n.on.recordsAppliedPerRead.p50),
      'on/off.bytesWritten': n.on.bytesWritten / n.off.bytesWritten,
    },
  };
}

module.exports = { runW11 };
