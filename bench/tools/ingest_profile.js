'use strict';
/**
 * P6's section (W3: P heap pages as images, then U ≈ 100-byte patch records on Zipf-chosen pages,
 * ingested 1000 per call with a yield every 16 calls, then flush()) run alone for several rounds,
 * timing the loop's `ingest()` calls apart from the rest, so a change to ingest can be measured
 * on warm rounds without the whole bench. With PROFILE=path each round's CPU profile is written
 * to path.<core><round>.cpuprofile (V8's sampling profiler at 50 µs).
 *
 *   npm run build && node bench/tools/ingest_profile.js [native,ts] [ROUNDS=5]
 */
const fs = require('node:fs');
const inspector = require('node:inspector');
const os = require('node:os');
const path = require('node:path');
const { Rng, heapPages, patchFor, keyOf, zipfSampler, permutation } = require('../lib/data');
const { openRepo } = require('../lib/strata');

const PAGES = 4000;
const UPDATES = 100_000;
const LSN_STEP = 0x80;
const BATCH = 1000;
const YIELD_EVERY_BATCHES = 16;
const CHECKPOINT_BYTES = 4 * 2 ** 20;
const PROFILE_INTERVAL_US = 50;

function dataset() {
  const pages = heapPages(11, PAGES);
  const rng = new Rng(12);
  const perm = permutation(rng, PAGES);
  const draw = zipfSampler(rng, PAGES, 1.0);
  const updates = [];
  for (let u = 0; u < UPDATES; u++) {
    const page = perm[draw()];
    const { offset, data } = patchFor(rng, pages[page]);
    updates.push({ lsn: BigInt((PAGES + u + 1) * LSN_STEP), key: keyOf(page), kind: 'patch', offset, data });
  }
  return { pages, updates };
}

/** The inspector session's post as a promise. */
function poster(session) {
  return (method, params = {}) => new Promise((resolve, reject) => session.post(method, params, (err, res) => (err ? reject(err) : resolve(res))));
}

async function round(impl, r, { pages, updates }, post) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-ingest-profile-'));
  const repo = await openRepo(root, impl, { checkpointDistance: CHECKPOINT_BYTES });
  try {
    const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
    for (let i = 0; i < PAGES; i += BATCH) {
      tl.ingest(pages.slice(i, i + BATCH).map((page, j) => ({ lsn: BigInt((i + j + 1) * LSN_STEP), key: keyOf(i + j), kind: 'image', page })));
    }
    await tl.flush();
    const records = updates.map((u) => ({ ...u }));
    if (process.env.PROFILE) {
      await post('Profiler.enable');
      await post('Profiler.setSamplingInterval', { interval: PROFILE_INTERVAL_US });
      await post('Profiler.start');
    }
    let ingestMs = 0;
    const t0 = performance.now();
    for (let i = 0; i < UPDATES; i += BATCH) {
      const batch = records.slice(i, i + BATCH);
      const a = performance.now();
      tl.ingest(batch);
      ingestMs += performance.now() - a;
      if ((i / BATCH) % YIELD_EVERY_BATCHES === YIELD_EVERY_BATCHES - 1) await new Promise((resolve) => setImmediate(resolve));
    }
    const t1 = performance.now();
    await tl.flush();
    const t2 = performance.now();
    if (process.env.PROFILE) {
      const { profile } = await post('Profiler.stop');
      fs.writeFileSync(`${process.env.PROFILE}.${impl}${r}.cpuprofile`, JSON.stringify(profile));
    }
    console.log(`${impl} round ${r + 1}: section ${(t2 - t0).toFixed(1)} ms (${Math.round(UPDATES / ((t2 - t0) / 1000))} records/s), ` +
      `ingest() ${ingestMs.toFixed(1)} ms, final flush ${(t2 - t1).toFixed(1)} ms, ${tl.stats().l0Count} L0 layers`);
  } finally {
    await repo.close();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

async function main() {
  const impls = (process.argv[2] ?? 'native').split(',');
  const rounds = Number(process.argv[3] ?? 5);
  const data = dataset();
  const session = new inspector.Session();
  session.connect();
  const post = poster(session);
  for (let r = 0; r < rounds; r++) {
    for (const impl of impls) await round(impl, r, data, post);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
