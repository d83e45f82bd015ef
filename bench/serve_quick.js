#!/usr/bin/env node
// A quick look at the page service's throughput — not the load benchmark issue 13 asks for, and
// not a test: `strata serve` in a child process on loopback, one pipelined StrataClient here,
// 1024 cached pages; getPage at queue depths 1, 8, 32 and getPages(64) at depths 1 and 4, 3 s each.
// Usage: npm run build && node bench/serve_quick.js   (IMPL=ts for the TypeScript core)
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Repository, StrataClient } = require('../dist/index.js');

const PAGES = 1024;
const RUN_NS = 3_000_000_000n;
const LSN = 0x10n;

async function main() {
  const impl = process.env.IMPL || 'native';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-serve-quick-'));
  const keys = Array.from({ length: PAGES }, (_, i) => ({ spcOid: 1663, dbOid: 5, relNumber: 1, forkNum: 0, blockNum: i }));
  const repo = await Repository.open(dir, { implementation: impl });
  const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'm' });
  tl.ingest(keys.map((key, i) => ({ lsn: LSN, key, kind: 'image', page: Buffer.alloc(8192, i & 0xff) })));
  await repo.close();

  const bin = path.join(__dirname, '..', 'bin', 'strata.js');
  const child = spawn(process.execPath, [bin, 'serve', '--impl', impl, '--data', dir, '--listen', '127.0.0.1:0', '--no-auth', '--json', '--max-in-flight', '64'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /"event":"listening","host":"[^"]+","port":(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
  });
  const c = await StrataClient.connect({ host: '127.0.0.1', port, tenantId: 't', timelineId: 'm' });

  const run = async (label, depth, batch) => {
    let pages = 0;
    const lat = [];
    const t0 = process.hrtime.bigint();
    const worker = async (w) => {
      for (let i = w; process.hrtime.bigint() - t0 < RUN_NS; i += depth) {
        const s = process.hrtime.bigint();
        if (batch === 1) {
          await c.getPage(keys[i % PAGES], LSN);
        } else {
          const o = (i * batch) % PAGES;
          await c.getPages(keys.slice(o, o + batch), LSN);
        }
        pages += batch;
        lat.push(Number(process.hrtime.bigint() - s) / 1e3);
      }
    };
    await Promise.all(Array.from({ length: depth }, (_, w) => worker(w)));
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    lat.sort((a, b) => a - b);
    const p = (q) => lat[Math.min(lat.length - 1, Math.floor(lat.length * q))].toFixed(0);
    console.log(`${impl} ${label} depth ${depth}: ${Math.round(pages / secs)} pages/s, request p50 ${p(0.5)} µs, p99 ${p(0.99)} µs`);
  };
  for (const d of [1, 8, 32]) await run('getPage', d, 1);
  for (const d of [1, 4]) await run('getPages(64)', d, 64);

  await c.close();
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
