#!/usr/bin/env node
'use strict';
/**
 * `npm run bench:remote [-- --quick] [--out FILE]` — remote storage (issue 15, item 8; docs/REMOTE.md,
 * "Figures"): upload MB/s, attach latency, attach-to-first-read latency, on-demand download MB/s
 * and cold read p50/p99 (each read downloading its layers) beside the same reads from local layers,
 * against a local-directory store and a radosgw the measurement starts (skipped, with the reason,
 * where it cannot run). The measurement is bench/lib/remote_bench.ts (vite-node: the radosgw helper
 * is a TypeScript test helper). Writes bench/results/remote.json and prints a Markdown table.
 */
const fs = require('node:fs');
const path = require('node:path');
const { runTsMeasurement } = require('./lib/ts_measure');

const PROFILES = {
  full: { layerPages: 1000, segments: 24 },   // ≈ 8 MB layers, ≈ 400 MB uploaded per backend (radosgw's memstore holds 1 GiB)
  quick: { layerPages: 500, segments: 8 },    // ≈ 4 MB layers
};

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function main() {
  const args = process.argv.slice(2);
  const profile = args.includes('--quick') ? 'quick' : 'full';
  const outIdx = args.indexOf('--out');
  const out = outIdx >= 0 ? args[outIdx + 1] : path.join(__dirname, 'results', 'remote.json');
  const r = runTsMeasurement('remote_bench.ts', [JSON.stringify(PROFILES[profile])], 'the remote measurement');
  if (r.skipped) {
    console.log(`remote bench skipped: ${r.skipped}`);
    return;
  }
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify({ profile, date: new Date().toISOString(), ...r }, null, 2) + '\n');
  const f = (x, d = 1) => x.toFixed(d);
  console.log(`\nRemote storage (${profile}: ${r.params.segments} segments of ${r.params.layerPages} random 8 KB pages, compression none)\n`);
  console.log('| backend | layer MB | upload MB/s median (min–max) | attach ms | attach→first read ms | download MB/s | cold read p50 / p99 ms | local read p50 / p99 ms |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const x of r.results) {
    if (x.skipped) {
      console.log(`| ${x.backend} | skipped: ${x.skipped} |||||||`);
      continue;
    }
    console.log(`| ${x.backend} | ${f(x.layerBytes / 1e6)} | ${f(median(x.uploadMBps), 0)} (${f(Math.min(...x.uploadMBps), 0)}–${f(Math.max(...x.uploadMBps), 0)}) | ${f(x.attachMs)} | ${f(x.firstReadMs)} | ${f(x.downloadMBps, 0)} | ${f(x.coldP50Ms)} / ${f(x.coldP99Ms)} (${f(x.coldBytesPerRead / 1e6)} MB each) | ${f(x.localP50Ms, 3)} / ${f(x.localP99Ms, 3)} |`);
  }
  console.log(`\nwritten to ${path.relative(process.cwd(), out)}`);
}

main();
