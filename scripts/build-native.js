#!/usr/bin/env node
/**
 * Builds the C++ core (binding.gyp → build/Release/strata.node) with node-gyp; run by `npm install`.
 *
 * Without a compiler (or headers) the build fails and Strata uses its pure-TypeScript core, so by
 * default a failure prints one warning and exits 0: installing must not depend on a toolchain.
 * `--force` (npm run build:native) always rebuilds and makes a failure exit non-zero with the full log.
 * Repeated installs skip the build while the addon is newer than every input, and an install from
 * the npm tarball skips it when the prebuilt binary for this platform (prebuilds/, loaded at run
 * time by node-gyp-build) loads: nothing to compile. Strata works without this script running at
 * all (npm 11 and pnpm 10 block dependencies' install scripts); it only adds a local build.
 * After a build, build/Release/strata.build.json records the flags it used (strata.nativeInfo()).
 */
'use strict';

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.join(__dirname, '..');
const ADDON = path.join(ROOT, 'build', 'Release', 'strata.node');
const BUILD_RECORD = path.join(ROOT, 'build', 'Release', 'strata.build.json');
const LOG = path.join(ROOT, 'build', 'build-native.log');
const force = process.argv.includes('--force');

/** Latest modification time (ms) of binding.gyp and everything under native/ (native/pg/ included). */
function newestInputMtime() {
  let newest = fs.statSync(path.join(ROOT, 'binding.gyp')).mtimeMs;
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      newest = Math.max(newest, fs.statSync(p).mtimeMs);
      if (entry.isDirectory()) walk(p);
    }
  };
  walk(path.join(ROOT, 'native'));
  return newest;
}

function addonUpToDate() {
  try {
    return fs.statSync(ADDON).mtimeMs > newestInputMtime();
  } catch {
    return false;
  }
}

function findNodeGyp() {
  try {
    return require.resolve('node-gyp/bin/node-gyp.js', { paths: [ROOT] });
  } catch {
    return process.env.npm_config_node_gyp || null;
  }
}

/**
 * node-gyp downloads Node's headers unless told where they are. Outside npm (which passes its
 * `nodedir` config through the environment), point it at the running Node's own prefix when
 * that has the headers, so an offline build still works.
 */
function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = path.dirname(path.dirname(process.execPath));
  return fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];
}

function fail(reason, log) {
  if (force) {
    if (log) process.stderr.write(log);
    process.stderr.write(`strata: building the native addon failed: ${reason}\n`);
    process.exit(1);
  }
  const where = log ? ` (build log: ${LOG})` : '';
  process.stderr.write(`strata: native addon not built (${reason}); Strata will use the pure-TypeScript core${where}\n`);
  process.exit(0);
}

/**
 * Whether node-gyp-build finds a prebuild for this platform and it loads. Checked in a child
 * process so that a binary that crashes on load cannot take the installer down with it.
 */
function prebuildLoads() {
  const code = `const p = require('node-gyp-build').path(${JSON.stringify(ROOT)}); require(p); console.log(p);`;
  const r = spawnSync(process.execPath, ['-e', code], { cwd: ROOT, env: { ...process.env, PREBUILDS_ONLY: '1' }, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

function firstLine(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split('\n')[0].trim() : null;
}

/** binding.gyp is a Python literal; once its comment lines are gone it is also a JS expression. */
function gypTarget() {
  try {
    const text = fs.readFileSync(path.join(ROOT, 'binding.gyp'), 'utf8').split('\n').filter((l) => !/^\s*#/.test(l)).join('\n');
    // eslint-disable-next-line no-new-func
    const gyp = new Function(`return (${text});`)();
    return gyp.targets.find((t) => t.target_name === 'strata') || null;
  } catch {
    return null;
  }
}

/** What nativeInfo() reports as the binary's build: defines, flags, compiler, Node it was built with. */
function buildRecord(how, extra = {}) {
  const t = gypTarget();
  const defines = t ? t.defines : null;
  const napi = defines && defines.map((d) => /^NAPI_VERSION=(\d+)$/.exec(d)).find(Boolean);
  return {
    how,
    napiVersion: napi ? Number(napi[1]) : null,
    defines,
    cflags: t ? t.cflags : null,
    compiler: firstLine(process.env.CXX || 'c++', ['--version']),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    builtAt: new Date().toISOString(),
    ...extra,
  };
}

function main() {
  if (!force && addonUpToDate()) return;
  // A local build takes precedence over a prebuild at load time, so only skip when there is none,
  // and only for a prebuild no older than the sources: in the npm tarball every file carries the
  // same timestamp, while in a checkout a prebuild left by `npm pack` must not hide later edits.
  if (!force && !fs.existsSync(ADDON)) {
    const prebuild = prebuildLoads();
    if (prebuild && fs.statSync(prebuild).mtimeMs >= newestInputMtime()) return;
  }
  const nodeGyp = findNodeGyp();
  if (!nodeGyp) fail('node-gyp not found');
  const r = spawnSync(process.execPath, [nodeGyp, 'rebuild', '--jobs', 'max', ...nodedirArgs()], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const log = `${r.stdout || ''}${r.stderr || ''}`;
  if (r.error || r.status !== 0) {
    try {
      fs.mkdirSync(path.dirname(LOG), { recursive: true });
      fs.writeFileSync(LOG, log);
    } catch {
      // The warning below still says what happened.
    }
    fail(r.error ? r.error.message : `node-gyp exited with ${r.status}`, log);
  }
  fs.writeFileSync(BUILD_RECORD, JSON.stringify(buildRecord('node-gyp rebuild (scripts/build-native.js)'), null, 2) + '\n');
}

module.exports = { buildRecord, nodedirArgs, ROOT };

if (require.main === module) main();
