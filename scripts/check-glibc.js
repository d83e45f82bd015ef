#!/usr/bin/env node
/**
 * Checks the symbol versions a Linux prebuild needs from glibc and libstdc++ (objdump -T), as
 * zstd-napi's check_symvers does: a binary that needs a newer glibc than a user's system fails to
 * load there ("GLIBC_2.33 not found") and Strata falls back to its slower TypeScript core.
 *
 * The gates are the versions today's build machine (Debian 12: glibc 2.36, GCC 12) produces, so the
 * check catches regressions; lowering them needs an older build image (or binding.gyp changes such
 * as a static libstdc++), which this machine cannot provide. Override with STRATA_MAX_GLIBC /
 * STRATA_MAX_GLIBCXX.
 *
 * Usage: node scripts/check-glibc.js [file.node ...]   (default: every prebuilds/linux-* binary)
 * Prints the highest versions found (--json for a machine-readable line); exits 1 above a gate.
 */
'use strict';

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const MAX = {
  GLIBC: process.env.STRATA_MAX_GLIBC || '2.33',
  GLIBCXX: process.env.STRATA_MAX_GLIBCXX || '3.4.29',
};

function compareVersions(a, b) {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] || 0) - (y[i] || 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Highest required version per library and the symbols needing it: { GLIBC: { version, symbols } }. */
function requiredVersions(file) {
  const r = spawnSync('objdump', ['-T', file], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error || r.status !== 0) throw new Error(`objdump -T ${file} failed: ${r.error ? r.error.message : r.stderr}`);
  const found = {};
  for (const line of r.stdout.split('\n')) {
    const m = /\((GLIBC|GLIBCXX)_([0-9.]+)\)\s+(\S+)/.exec(line);
    if (!m) continue;
    const [, lib, version, symbol] = m;
    const cur = found[lib];
    if (!cur || compareVersions(version, cur.version) > 0) found[lib] = { version, symbols: [symbol] };
    else if (compareVersions(version, cur.version) === 0) cur.symbols.push(symbol);
  }
  return found;
}

function defaultFiles() {
  const dir = path.join(__dirname, '..', 'prebuilds');
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((d) => d.startsWith('linux-')).flatMap((d) =>
    fs.readdirSync(path.join(dir, d)).filter((f) => f.endsWith('.node')).map((f) => path.join(dir, d, f)));
}

/** Check one binary; returns { file, found, ok, problems }. */
function check(file) {
  const found = requiredVersions(file);
  const problems = Object.entries(found)
    .filter(([lib, v]) => compareVersions(v.version, MAX[lib]) > 0)
    .map(([lib, v]) => `${lib}_${v.version} > ${MAX[lib]} (${v.symbols.join(', ')})`);
  return { file, found, max: MAX, ok: problems.length === 0, problems };
}

function main() {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const files = args.filter((a) => a !== '--json');
  const targets = files.length > 0 ? files : defaultFiles();
  if (targets.length === 0) {
    process.stderr.write('check-glibc: no Linux prebuilds found (run npm run build:prebuild)\n');
    process.exit(1);
  }
  let ok = true;
  for (const file of targets) {
    const res = check(file);
    ok = ok && res.ok;
    if (json) {
      process.stdout.write(JSON.stringify(res) + '\n');
      continue;
    }
    const summary = Object.entries(res.found).map(([lib, v]) => `${lib}_${v.version} (gate ${MAX[lib]})`).join(', ');
    process.stdout.write(`${res.ok ? 'ok' : 'FAIL'} ${file}: needs ${summary}\n`);
    for (const p of res.problems) process.stdout.write(`  ${p}\n`);
  }
  process.exit(ok ? 0 : 1);
}

module.exports = { check, requiredVersions };

if (require.main === module) main();
