#!/usr/bin/env node
/**
 * Builds the benchmark floors (native/bench/bench_floors.cc) as their own addon,
 * build-bench/build/Release/strata_bench.node: binding.gyp with --strata_bench=1 in a directory
 * of its own (a copy of binding.gyp next to a link to native/), so the production addon in build/
 * never contains them. `npm run bench` calls this when the floors are missing; `--force` rebuilds.
 */
'use strict';

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.join(__dirname, '..');
const BENCH_DIR = path.join(ROOT, 'build-bench');
const ADDON = path.join(BENCH_DIR, 'build', 'Release', 'strata_bench.node');

function build() {
  fs.mkdirSync(BENCH_DIR, { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'binding.gyp'), path.join(BENCH_DIR, 'binding.gyp'));
  const link = path.join(BENCH_DIR, 'native');
  if (!fs.existsSync(link)) fs.symlinkSync(path.join('..', 'native'), link, 'dir');
  const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js', { paths: [ROOT] });
  const nodedir = process.env.npm_config_nodedir || path.dirname(path.dirname(process.execPath));
  const r = spawnSync(process.execPath, [nodeGyp, 'rebuild', '--jobs', 'max', `--nodedir=${nodedir}`, '--strata_bench=1'], {
    cwd: BENCH_DIR, stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (r.error || r.status !== 0) throw new Error(`building the bench floors failed (node-gyp ${r.error ? r.error.message : `exited with ${r.status}`})`);
  return ADDON;
}

/** The floors addon's path, building it first when it is missing (or always with force). */
function ensureBenchAddon(force = false) {
  if (force || !fs.existsSync(ADDON)) build();
  return ADDON;
}

module.exports = { ensureBenchAddon, BENCH_ADDON: ADDON };

if (require.main === module) {
  try {
    process.stdout.write(`bench floors: ${path.relative(ROOT, ensureBenchAddon(process.argv.includes('--force')))}\n`);
  } catch (e) {
    process.stderr.write(`build-bench: ${e.message}\n`);
    process.exit(1);
  }
}
