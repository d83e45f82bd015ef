#!/usr/bin/env node
/**
 * Builds the test-only power-cut shim (test/power/powercut_shim.c, docs/RELIABILITY.md "Power
 * loss") into build-powercut/powercut_shim.so, an LD_PRELOAD library. Rebuilds only when the
 * source is newer. Prints the library's path; exits 1 (with the compiler's output) if no C
 * compiler works.
 */
'use strict';

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.join(__dirname, '..');
const SOURCE = path.join(ROOT, 'test', 'power', 'powercut_shim.c');
const OUT_DIR = path.join(ROOT, 'build-powercut');
const LIBRARY = path.join(OUT_DIR, 'powercut_shim.so');

function upToDate() {
  return fs.existsSync(LIBRARY) && fs.statSync(LIBRARY).mtimeMs >= fs.statSync(SOURCE).mtimeMs;
}

if (!upToDate()) {
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const cc = process.env.CC || 'cc';
  const args = ['-O2', '-g', '-Wall', '-Wextra', '-Werror', '-Wno-format-truncation', '-shared', '-fPIC', '-o', LIBRARY, SOURCE, '-ldl', '-lpthread'];
  const r = spawnSync(cc, args, { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    process.stderr.write(`${cc} ${args.join(' ')} failed: ${r.error ? r.error.message : r.stderr}\n`);
    process.exit(1);
  }
}
process.stdout.write(`${LIBRARY}\n`);
