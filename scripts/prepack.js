#!/usr/bin/env node
/**
 * npm's prepack hook (package.json "prepack"): `npm pack` and `npm publish` run it, a plain
 * `npm install` never does (install runs "install" and "prepare"). It builds what the tarball
 * ships beside the sources — dist/ (tsc and the ESM entry) and the N-API prebuild for this platform
 * (scripts/build-prebuild.js: prebuildify, build record, glibc gate) — or refuses with exit 1 and
 * the reason, so no tarball leaves without the prebuilt addon. `npm run test:pack` packs a clean
 * checkout through this same hook and tests the tarball that comes out.
 *
 * prebuildify rebuilds build/ from scratch and moves the binary out of it into prebuilds/. A
 * developer's own build/ is set aside for that and put back afterwards (success or not), so the
 * checkout that was packed loads the same addon as before; without one, it loads the prebuild.
 * Prebuilds of other platforms already in prebuilds/ (e.g. collected from CI) are shipped as they are.
 */
'use strict';

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.join(__dirname, '..');
const BUILD = path.join(ROOT, 'build');
/** Where the developer's build/ waits while prebuildify works (git-ignored, like every build dir). */
const SAVED_BUILD = path.join(ROOT, 'build-prepack-saved');

function refuse(why) {
  process.stderr.write(`strata prepack: refusing to pack without the prebuilt addon: ${why}\n` +
    'A tarball needs dist/ and prebuilds/<platform>/strata.*.node; building them needs the devDependencies ' +
    '(npm install) and a C++17 compiler, make and python3 (node-gyp).\n');
  process.exit(1);
}

/** Runs a node script; throws (for main to refuse, after putting build/ back) if it fails. */
function runStep(what, file, args) {
  process.stderr.write(`strata prepack: ${what}\n`);
  const r = spawnSync(process.execPath, [file, ...args], { cwd: ROOT, stdio: 'inherit' });
  if (r.error || r.status !== 0) throw new Error(`${what} failed${r.error ? `: ${r.error.message}` : ` (exit ${r.status})`}`);
}

function resolveTool(id) {
  try {
    return require.resolve(id, { paths: [ROOT] });
  } catch {
    return refuse(`${id} is not installed (run npm install in this checkout first)`);
  }
}

/** Moves the developer's build/ aside (a leftover from an interrupted prepack is put back first). */
function setAsideBuild() {
  if (fs.existsSync(SAVED_BUILD)) {
    if (fs.existsSync(BUILD)) fs.rmSync(BUILD, { recursive: true, force: true });
    fs.renameSync(SAVED_BUILD, BUILD);
  }
  if (!fs.existsSync(BUILD)) return false;
  fs.renameSync(BUILD, SAVED_BUILD);
  return true;
}

function restoreBuild() {
  fs.rmSync(BUILD, { recursive: true, force: true });
  fs.renameSync(SAVED_BUILD, BUILD);
}

/** The prebuild node-gyp-build would load with no local build in the way, checked in a child. */
function checkPrebuildLoads() {
  const code = `const p = require('node-gyp-build').path(${JSON.stringify(ROOT)}); const b = require(p);` +
    "if (typeof b.Core !== 'function') throw new Error(p + ' is not the Strata addon'); console.log(p);";
  const r = spawnSync(process.execPath, ['-e', code], { cwd: ROOT, env: { ...process.env, PREBUILDS_ONLY: '1' }, encoding: 'utf8' });
  if (r.status !== 0) refuse(`the prebuild does not load: ${(r.stderr || '').trim().split('\n')[0]}`);
  process.stderr.write(`strata prepack: prebuild loads: ${path.relative(ROOT, r.stdout.trim())}\n`);
}

function main() {
  const tsc = resolveTool('typescript/bin/tsc');
  resolveTool('prebuildify/bin.js');
  resolveTool('node-gyp/bin/node-gyp.js');
  try {
    runStep('compiling TypeScript into dist/', tsc, ['-p', 'tsconfig.json']);
    runStep('writing the ESM entry', path.join(__dirname, 'write-esm-entry.js'), []);
    const saved = setAsideBuild();
    try {
      runStep('building the prebuild (prebuildify, ≈ 1 min)', path.join(__dirname, 'build-prebuild.js'), []);
    } finally {
      if (saved) restoreBuild();
    }
  } catch (e) {
    refuse(e.message);
  }
  checkPrebuildLoads();
}

main();
