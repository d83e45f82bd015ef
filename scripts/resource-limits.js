#!/usr/bin/env node
'use strict';
/**
 * Resource-limit campaigns (issue 12, docs/RELIABILITY.md "Resource limits"):
 *   compaction  L0 layers holding STRATA_LIMITS_VERSIONS page versions (default 1,000,000), then
 *               compact({ force: true }) and image creation; peak RSS of each phase.
 *   import      STRATA_LIMITS_IMPORT_MB of 8 KB page images (default 10,240) through ingest with
 *               flushes; peak RSS and MB/s.
 *   fds         STRATA_LIMITS_LAYERS small L0 layers (default 2,000), compaction off, a page read
 *               from every one; open file descriptors before and after.
 * Each campaign asserts that peak RSS stays under a bound set by the settings (page cache,
 * checkpoint distance, a stated allowance), not by the data size.
 *
 * Usage: node scripts/resource-limits.js [compaction|import|fds ...] (default: all)
 *        STRATA_IMPL=native|ts selects the core (default native). Run it niced on a shared machine.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Repository, PAGE_SIZE } = require('../dist');
const { RssSampler, rssBound, openFdCount } = require('./lib/rss_sampler');

const MIB = 1024 * 1024;
const PAGE_CACHE_BYTES = 64 * MIB;
const CHECKPOINT_DISTANCE_BYTES = 64 * MIB;
/**
 * Allowance for what constants size rather than data: the frozen in-memory layer being flushed
 * next to the open one (another checkpoint distance), write and merge buffers, V8 heap slack
 * between collections and the addon's code. Stated here so the bound is explicit.
 */
const ALLOWANCE_BYTES = 256 * MIB + asanQuarantineBytes();

/**
 * Under the sanitizer build (npm run test:asan) freed memory stays resident in ASan's quarantine
 * until it holds quarantine_size_mb: that much more RSS is the tool's, not the engine's.
 */
function asanQuarantineBytes() {
  const m = /(?:^|:)quarantine_size_mb=(\d+)/.exec(process.env.ASAN_OPTIONS ?? '');
  return m === null ? 0 : Number(m[1]) * MIB;
}
const LSN_PER_RECORD = 0x40n;
const KEYS_PER_REL = 1_000_000;

function keyOf(i) {
  return { spcOid: 1663, dbOid: 5, relNumber: 16384 + Math.floor(i / KEYS_PER_REL), forkNum: 0, blockNum: i % KEYS_PER_REL };
}

/** A mostly-zero page (compresses well, as a sparse heap page does) stamped with its number and version. */
function pageImage(i, version) {
  const page = Buffer.alloc(PAGE_SIZE);
  page.writeUInt32BE(i, 0);
  page.writeUInt32BE(version, 4);
  page.fill(i & 0xff, 64, 192);
  return page;
}

function envInt(name, dflt) {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${v}`);
  return n;
}

const impl = process.env.STRATA_IMPL === 'ts' ? 'ts' : 'native';

async function openRepo(dir, extra = {}) {
  return Repository.open(dir, {
    implementation: impl, pageCacheBytes: PAGE_CACHE_BYTES, checkpointDistance: CHECKPOINT_DISTANCE_BYTES,
    compactionThreshold: 1_000_000, l0FlushDelayThreshold: 0, l0FlushStallThreshold: 0, maxFrozenLayers: MAX_FROZEN_LAYERS, ...extra,
  });
}

/**
 * Frozen layers ingestAsync lets wait for their flush (the repository's maxFrozenLayers): the
 * writers ingest through it, so a disk slower than the writer makes them wait, not memory grow.
 */
const MAX_FROZEN_LAYERS = 1;

/** Fields named for bytes (…Rss, …Bytes, vmHwm, bound) print in MB. */
const BYTE_FIELD = /Rss$|Bytes$|^vmHwm$|^bound$/i;

function report(name, fields) {
  const mb = (b) => (b / MIB).toFixed(1);
  const line = Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'number' && BYTE_FIELD.test(k) ? `${mb(v)}MB` : v}`).join(' ');
  console.log(`[${impl}] ${name}: ${line}`);
}

function check(name, peak, bound) {
  if (peak > bound) {
    console.error(`[${impl}] ${name}: FAIL peak RSS ${(peak / MIB).toFixed(1)} MB above bound ${(bound / MIB).toFixed(1)} MB`);
    process.exitCode = 1;
  }
}

/** Ingest `versions` page versions over `keys` pages: a first image, then patches (8 bytes each). */
async function ingestVersions(tl, keys, versions, lsn) {
  const BATCH = 2000;
  let done = 0;
  let batch = [];
  for (let v = 0; done < versions; v++) {
    for (let i = 0; i < keys && done < versions; i++, done++) {
      lsn += LSN_PER_RECORD;
      if (v === 0) batch.push({ lsn, key: keyOf(i), kind: 'image', page: pageImage(i, 0) });
      else {
        const data = Buffer.alloc(8);
        data.writeUInt32BE(v, 0);
        data.writeUInt32BE(i, 4);
        batch.push({ lsn, key: keyOf(i), kind: 'patch', offset: 8 + (v % 64) * 8, data });
      }
      if (batch.length === BATCH) {
        await tl.ingestAsync(batch);
        batch = [];
      }
    }
  }
  if (batch.length > 0) await tl.ingestAsync(batch);
  return lsn;
}

async function campaignCompaction(root) {
  const versions = envInt('STRATA_LIMITS_VERSIONS', 1_000_000);
  const keys = envInt('STRATA_LIMITS_KEYS', Math.max(1, Math.floor(versions / 4)));
  const dir = path.join(root, 'compaction');
  const repo = await openRepo(dir, { checkpointDistance: 16 * MIB, compactionUpperLimit: 1_000 });
  const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
  const ingest = new RssSampler();
  const lsn = await ingestVersions(tl, keys, versions, 0n);
  await tl.flush();
  const ing = ingest.stop();
  const stats = tl.stats();
  const compact = new RssSampler();
  const t0 = Date.now();
  const rep = await tl.compact({ force: true });
  const img = await tl.createImageLayer(lsn);
  const c = compact.stop();
  const bound = rssBound(c.startRss, PAGE_CACHE_BYTES, ALLOWANCE_BYTES);
  // Spot-check the result: the first and last page read back at the newest LSN.
  for (const i of [0, keys - 1]) {
    const page = await tl.getPage(keyOf(i), lsn);
    if (page.readUInt32BE(0) !== i) throw new Error(`page ${i} reads back wrong after compaction`);
  }
  report('compaction', {
    versions, keys, l0Layers: stats.l0Count, l0Compacted: rep.l0Compacted.length, layersCreated: rep.layersCreated.length,
    imageLayers: rep.imageLayersCreated.length + (img ? 1 : 0), readBytes: rep.bytesRead, writtenBytes: rep.bytesWritten,
    seconds: ((Date.now() - t0) / 1000).toFixed(1), ingestPeakRss: ing.peakRss, startRss: c.startRss,
    peakRss: c.peakRss, vmHwm: c.vmHwm ?? 'n/a', bound,
  });
  check('compaction', c.peakRss, bound);
  // Ingest holds the open layer plus at most MAX_FROZEN_LAYERS frozen ones (16 MB each here).
  check('compaction ingest', ing.peakRss, rssBound(ing.startRss, PAGE_CACHE_BYTES, ALLOWANCE_BYTES));
  await repo.close();
}

async function campaignImport(root) {
  const mb = envInt('STRATA_LIMITS_IMPORT_MB', 10_240);
  const pages = Math.floor((mb * MIB) / PAGE_SIZE);
  const dir = path.join(root, 'import');
  const repo = await openRepo(dir);
  const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
  const s = new RssSampler();
  const t0 = Date.now();
  let lsn = 0n;
  const BATCH = 512;
  for (let start = 0; start < pages; start += BATCH) {
    const batch = [];
    for (let i = start; i < Math.min(pages, start + BATCH); i++) batch.push({ lsn: (lsn += LSN_PER_RECORD), key: keyOf(i), kind: 'image', page: pageImage(i, 1) });
    await tl.ingestAsync(batch);
  }
  await tl.flush();
  const secs = (Date.now() - t0) / 1000;
  const r = s.stop();
  const bound = rssBound(r.startRss, PAGE_CACHE_BYTES, CHECKPOINT_DISTANCE_BYTES + ALLOWANCE_BYTES);
  const last = await tl.getPage(keyOf(pages - 1), lsn);
  if (last.readUInt32BE(0) !== pages - 1) throw new Error('last imported page reads back wrong');
  report('import', {
    dataBytes: pages * PAGE_SIZE, pages, l0Layers: tl.stats().l0Count, seconds: secs.toFixed(1),
    MBps: ((pages * PAGE_SIZE) / MIB / secs).toFixed(1), startRss: r.startRss, peakRss: r.peakRss, vmHwm: r.vmHwm ?? 'n/a', bound,
  });
  check('import', r.peakRss, bound);
  await repo.close();
}

/** Descriptors the repository may hold besides layer files: its lock file, a layer being written. */
const OTHER_FDS = 4;

async function campaignFds(root) {
  const layers = envInt('STRATA_LIMITS_LAYERS', 2_000);
  const maxOpen = envInt('STRATA_LIMITS_MAX_OPEN', 256);
  const dir = path.join(root, 'fds');
  const repo = await openRepo(dir, { maxOpenLayerFiles: maxOpen });
  const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
  const before = openFdCount();
  let lsn = 0n;
  for (let l = 0; l < layers; l++) {
    tl.ingest([{ lsn: (lsn += LSN_PER_RECORD), key: keyOf(l), kind: 'image', page: pageImage(l, 1) }]);
    await tl.flush();
  }
  const afterFlush = openFdCount();
  for (let l = 0; l < layers; l++) {
    const page = await tl.getPage(keyOf(l), lsn);
    if (page.readUInt32BE(0) !== l) throw new Error(`page ${l} reads back wrong`);
  }
  const afterRead = openFdCount();
  await repo.close();
  const reopened = await openRepo(dir, { maxOpenLayerFiles: maxOpen });
  const tl2 = reopened.getTimeline('t', 'main');
  const afterReopen = openFdCount();
  await tl2.getPage(keyOf(0), lsn);
  await reopened.close();
  report('fds', { layers, maxOpenLayerFiles: maxOpen, fdsBefore: before, fdsAfterFlushes: afterFlush, fdsAfterReads: afterRead, fdsAfterReopen: afterReopen, fdsAfterClose: openFdCount() });
  const peak = Math.max(afterFlush, afterRead, afterReopen) - before;
  if (peak > maxOpen + OTHER_FDS) {
    console.error(`[${impl}] fds: FAIL ${peak} descriptors opened for ${layers} layers, above maxOpenLayerFiles ${maxOpen} + ${OTHER_FDS}`);
    process.exitCode = 1;
  }
}

const CAMPAIGNS = { compaction: campaignCompaction, import: campaignImport, fds: campaignFds };

async function main() {
  const names = process.argv.slice(2).length > 0 ? process.argv.slice(2) : Object.keys(CAMPAIGNS);
  for (const n of names) if (!(n in CAMPAIGNS)) throw new Error(`unknown campaign ${n} (${Object.keys(CAMPAIGNS).join(', ')})`);
  const root = fs.mkdtempSync(path.join(process.env.STRATA_LIMITS_DIR ?? os.tmpdir(), 'strata-limits-'));
  try {
    for (const n of names) {
      await CAMPAIGNS[n](root);
      fs.rmSync(path.join(root, n), { recursive: true, force: true });
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
