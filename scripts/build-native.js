#!/usr/bin/env node
/**
 * Builds the C++ core (binding.gyp → build/Release/strata.node) with node-gyp; run by `npm install`.
 *
 * Without a compiler (or headers) the build fails and Strata uses its pure-TypeScript core, so by
 * default a failure prints one warning and exits 0: installing must not depend on a toolchain.
 * `--force` (npm run build:native) always rebuilds and makes a failure exit non-zero with the full log.
 * Repeated installs skip the build while the addon is newer than every input.
 */
'use strict';

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.join(__dirname, '..');
const ADDON = path.join(ROOT, 'build', 'Release', 'strata.node');
const LOG = path.join(ROOT, 'build', 'build-native.log');
const force = process.argv.includes('--force');

/** Latest modification time (ms) of binding.gyp and everything under native/. */
function newestInputMtime() {
  let newest = fs.statSync(path.join(ROOT, 'binding.gyp')).mtimeMs;
  const nativeDir = path.join(ROOT, 'native');
  for (const name of fs.readdirSync(nativeDir)) {
    newest = Math.max(newest, fs.statSync(path.join(nativeDir, name)).mtimeMs);
  }
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

function main() {
  if (!force && addonUpToDate()) return;
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
}

main();
