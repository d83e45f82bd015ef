'use strict';
/**
 * What one message to a worker thread and its answer cost the event loop's thread (Linux:
 * /proc/thread-self/schedstat): ROUNDS round trips, each handing BYTES over, awaited one by one
 * as a writer awaits its appends. The eleventh session of issue 11 measured 150–180 µs of the
 * loop's CPU per round trip here (docs/PERFORMANCE.md), which is why the TS writer appends on the
 * loop.
 *
 *   [ROUNDS=2500] [BYTES=32768] node bench/tools/worker_round_trip.js
 */
const { Worker } = require('node:worker_threads');
const { SKIP_NOTE, threadCpuAvailable, threadCpuMs } = require('./thread_cpu');

const ROUNDS = Number(process.env.ROUNDS || 2500);
const BYTES = Number(process.env.BYTES || 32768);
const ECHO = "require('node:worker_threads').parentPort.on('message', (m) => require('node:worker_threads').parentPort.postMessage(m.id));";

async function main() {
  if (!threadCpuAvailable()) {
    console.log(SKIP_NOTE);
    return;
  }
  const worker = new Worker(ECHO, { eval: true });
  const waiting = new Map();
  worker.on('message', (id) => { waiting.get(id)(); waiting.delete(id); });
  const src = Buffer.alloc(BYTES, 7);
  for (const mode of ['transferred', 'cloned']) {
    const cpu0 = threadCpuMs();
    const t0 = process.hrtime.bigint();
    for (let id = 0; id < ROUNDS; id++) {
      const bytes = new Uint8Array(src);
      await new Promise((resolve) => {
        waiting.set(id, resolve);
        worker.postMessage({ id, bytes }, mode === 'transferred' ? [bytes.buffer] : []);
      });
    }
    const cpuUs = ((threadCpuMs() - cpu0) * 1000) / ROUNDS;
    const wallUs = Number(process.hrtime.bigint() - t0) / 1000 / ROUNDS;
    console.log(`${mode.padEnd(11)} ${ROUNDS} round trips of ${BYTES} B: ${cpuUs.toFixed(0)} µs of the loop's CPU and ${wallUs.toFixed(0)} µs wall each`);
  }
  await worker.terminate();
}

main().catch((e) => { console.error(e); process.exit(1); });
