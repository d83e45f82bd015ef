'use strict';
/**
 * W7's storm, alone, with a 1 ms timer tagged by the storm's phase, to tell the two kinds of late
 * timer apart (Linux only; a CPU profile cannot, as both show the loop "(idle)" or in a callee):
 *
 *   [PAGES=20000] [ROUNDS=2] [LATE_MS=2.2] node bench/tools/storm_waits.js [native|ts]
 *
 * For every tick later than LATE_MS (default 2.2 ms: twice the idle p99 here) it takes, from
 * /proc/thread-self/schedstat, how long the loop's thread sat runnable in the run queue (waiting
 * for a CPU) and how long it ran since the tick before. Per phase (ingest, the awaited flush, the
 * compaction) it prints the late ticks, the two sums, the GC pauses over 1.2 ms, and at the end
 * every thread's CPU time and run-queue wait. Same records, batches, checkpoint distance and
 * maintenance as W7's storm (bench/workloads/w7_event_loop.js).
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { PerformanceObserver } = require('node:perf_hooks');
const { heapPages } = require('../lib/data');
const { openRepo } = require('../lib/strata');
const { timelineRecords } = require('../workloads/w2_reconstruct');
const { STORM_BATCH, STORM_MAINTENANCE_EVERY } = require('../workloads/w7_event_loop');

const PAGES = Number(process.env.PAGES || 20000);
const ROUNDS = Number(process.env.ROUNDS || 2);
const LATE_MS = Number(process.env.LATE_MS || 2.2);
const PATCHES_PER_PAGE = 10;
const STORM_CHECKPOINT_BYTES = 8 * 2 ** 20;
const TICK_MS = 1;
const LONG_GC_MS = 1.2;
const NS_PER_MS = 1e6;
const PHASES = ['ingest', 'flush', 'compact'];

/** [ns on a CPU, ns runnable in the run queue] of the calling thread so far. */
function schedstat() {
  const f = fs.readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ');
  return [Number(f[0]), Number(f[1])];
}

function perPhase(make) {
  return Object.fromEntries(PHASES.map((p) => [p, make()]));
}

async function stormRound(impl, records) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-storm-waits-'));
  const repo = await openRepo(dir, impl, { checkpointDistance: STORM_CHECKPOINT_BYTES });
  let phase = 'ingest';
  const ticks = perPhase(() => 0);
  const late = perPhase(() => ({ n: 0, lateMs: 0, waitMs: 0, cpuMs: 0, mostlyWaiting: 0 }));
  const gcs = perPhase(() => []);
  const gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs[phase].push(e.duration);
  });
  gcObserver.observe({ entryTypes: ['gc'] });
  try {
    const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'storm' });
    let last = performance.now();
    let [lastCpu, lastWait] = schedstat();
    const timer = setInterval(() => {
      const now = performance.now();
      const [cpu, wait] = schedstat();
      const gap = now - last;
      ticks[phase]++;
      if (gap > LATE_MS) {
        const l = late[phase];
        const waitMs = (wait - lastWait) / NS_PER_MS;
        l.n++;
        l.lateMs += gap - TICK_MS;
        l.waitMs += waitMs;
        l.cpuMs += (cpu - lastCpu) / NS_PER_MS;
        if (waitMs > (gap - TICK_MS) / 2) l.mostlyWaiting++;
      }
      last = now;
      lastCpu = cpu;
      lastWait = wait;
    }, TICK_MS);
    let batches = 0;
    for (let i = 0; i < records.length; i += STORM_BATCH) {
      tl.ingest(records.slice(i, i + STORM_BATCH));
      await new Promise((resolve) => setImmediate(resolve));
      if (++batches % STORM_MAINTENANCE_EVERY === 0) {
        phase = 'flush';
        await tl.flush();
        phase = 'compact';
        await tl.compact({ force: true });
        phase = 'ingest';
      }
    }
    clearInterval(timer);
    await tl.flush();
  } finally {
    gcObserver.disconnect();
    await repo.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return { ticks, late, gcs };
}

function printRound(impl, round, r) {
  const all = PHASES.reduce((a, p) => a + r.ticks[p], 0);
  const lateAll = PHASES.reduce((a, p) => a + r.late[p].n, 0);
  console.log(`${impl} round ${round}: ${all} ticks, ${lateAll} later than ${LATE_MS} ms (${((100 * lateAll) / all).toFixed(2)} %; a p99 within it allows 1 %)`);
  for (const p of PHASES) {
    const l = r.late[p];
    const longGc = r.gcs[p].filter((d) => d > LONG_GC_MS).length;
    console.log(`  ${p.padEnd(7)} ${String(r.ticks[p]).padStart(5)} ticks, ${String(l.n).padStart(4)} late: ${l.lateMs.toFixed(0)} ms late in all, `
      + `${l.waitMs.toFixed(0)} ms of it runnable but waiting for a CPU (${l.mostlyWaiting} ticks mostly waiting), ${l.cpuMs.toFixed(0)} ms on a CPU; `
      + `${r.gcs[p].length} GC pauses, ${longGc} over ${LONG_GC_MS} ms`);
  }
}

function printThreads() {
  const rows = [];
  for (const t of fs.readdirSync('/proc/self/task')) {
    const stat = fs.readFileSync(`/proc/self/task/${t}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const [cpuNs, waitNs] = fs.readFileSync(`/proc/self/task/${t}/schedstat`, 'utf8').split(' ').map(Number);
    rows.push({ tid: t, cpuS: cpuNs / 1e9, waitS: waitNs / 1e9, nice: Number(f[16]) });
  }
  rows.sort((a, b) => b.cpuS - a.cpuS);
  console.log('threads by CPU time (after the loop\'s tid come V8\'s platform threads, started with the process; libuv\'s four start with the first fs call; the compression worker runs at nice 10):');
  for (const r of rows) {
    if (r.cpuS < 0.01) continue;
    console.log(`  tid ${r.tid}${Number(r.tid) === process.pid ? ' (loop)' : ''}: ${r.cpuS.toFixed(2)} s on a CPU, ${r.waitS.toFixed(2)} s waiting for one, nice ${r.nice}`);
  }
}

async function main() {
  if (!fs.existsSync('/proc/thread-self/schedstat')) {
    console.log('skipped: needs Linux /proc/thread-self/schedstat');
    return;
  }
  const impl = process.argv[2] || 'native';
  const records = timelineRecords(heapPages(7, PAGES), PATCHES_PER_PAGE, 3).records;
  for (let round = 0; round < ROUNDS; round++) printRound(impl, round, await stormRound(impl, records));
  printThreads();
}

main().catch((e) => { process.stderr.write(`${e.stack}\n`); process.exit(1); });
