'use strict';
/**
 * W7's storm, alone, with a marker on a 1 ms timer, to find out what holds the event loop:
 *
 *   [PAGES=20000] [ROUNDS=1] node --cpu-prof --cpu-prof-interval 100 --cpu-prof-dir /tmp/storm bench/tools/storm_profile.js [native|ts]
 *   node bench/tools/loop_gaps.js /tmp/storm/<the first profile> 4
 *
 * The marker (LOOP_MARKER) spins MARKER_SPIN_NS so the sampling profiler catches every run of it;
 * a gap between two runs longer than the timer's period is a late timer, and the samples inside it
 * are what the loop was doing instead (or "(idle)": waiting for a CPU). Same records, batches and
 * maintenance as W7's storm (bench/workloads/w7_event_loop.js), three fresh repositories in a row.
 * PAGES defaults to the quick profile's 4000; the full profile's 20,000 (PAGES=20000) is what
 * `npm run bench` measures, and only there did the key merge show (its cost grows with the layers).
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { heapPages } = require('../lib/data');
const { openRepo } = require('../lib/strata');
const { timelineRecords } = require('../workloads/w2_reconstruct');

const PAGES = Number(process.env.PAGES || 4000);
const PATCHES_PER_PAGE = 10;
const STORM_BATCH = 100;
const STORM_MAINTENANCE_EVERY = 200;
const STORM_CHECKPOINT_BYTES = 8 * 2 ** 20;
const ROUNDS = Number(process.env.ROUNDS || 3);
const MARKER_PERIOD_MS = 1;
const MARKER_SPIN_NS = 200_000n; // two samples at the 100 µs interval above

function LOOP_MARKER() {
  const t = process.hrtime.bigint();
  while (process.hrtime.bigint() - t < MARKER_SPIN_NS);
}

async function main() {
  const impl = process.argv[2] || 'native';
  const records = timelineRecords(heapPages(7, PAGES), PATCHES_PER_PAGE, 3).records;
  for (let round = 0; round < ROUNDS; round++) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-storm-'));
    const repo = await openRepo(dir, impl, { checkpointDistance: STORM_CHECKPOINT_BYTES });
    try {
      const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'storm' });
      const marker = setInterval(LOOP_MARKER, MARKER_PERIOD_MS);
      const t0 = performance.now();
      let batches = 0;
      for (let i = 0; i < records.length; i += STORM_BATCH) {
        tl.ingest(records.slice(i, i + STORM_BATCH));
        await new Promise((resolve) => setImmediate(resolve));
        if (++batches % STORM_MAINTENANCE_EVERY === 0) {
          await tl.flush();
          await tl.compact({ force: true });
        }
      }
      clearInterval(marker);
      process.stdout.write(`${impl} round ${round}: ${(performance.now() - t0).toFixed(0)} ms\n`);
    } finally {
      await repo.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}

main().catch((e) => { process.stderr.write(`${e.stack}\n`); process.exit(1); });
