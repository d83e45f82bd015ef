'use strict';
/**
 * The native load generator (bench/native/pageload.c) and the floor server (pagefloor.c), compiled
 * on first use into build-bench/ (gitignored) with $CC or cc, and rebuilt when the source is newer
 * than the binary. bench/serve.js runs it for its paced runs; test/bench_pageload.test.ts checks it.
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..', '..');
const SOURCE = path.join(ROOT, 'bench', 'native', 'pageload.c');
const BINARY = path.join(ROOT, 'build-bench', 'pageload');
const FLOOR_SOURCE = path.join(ROOT, 'bench', 'native', 'pagefloor.c');
const FLOOR_BINARY = path.join(ROOT, 'build-bench', 'pagefloor');
/** The framing both tools include: a change to it rebuilds them. */
const WIRE_HEADER = path.join(ROOT, 'bench', 'native', 'wire.h');
const CFLAGS = ['-O2', '-Wall', '-Wextra', '-std=c11'];

/**
 * The binary's path, compiling it when missing or older than the source; or, when it cannot be
 * built (no compiler, a compile error), `{ error }` saying why (the caller falls back to Node).
 */
function ensurePageload() {
  return ensureBuilt(SOURCE, BINARY, []);
}

/** bench/native/pagefloor.c (the do-nothing page server that measures the machine's floor), as ensurePageload. */
function ensurePagefloor() {
  return ensureBuilt(FLOOR_SOURCE, FLOOR_BINARY, ['-pthread']);
}

function ensureBuilt(source, binary, extraFlags) {
  try {
    const newest = Math.max(fs.statSync(source).mtimeMs, fs.statSync(WIRE_HEADER).mtimeMs);
    if (fs.existsSync(binary) && fs.statSync(binary).mtimeMs >= newest) return { path: binary };
    fs.mkdirSync(path.dirname(binary), { recursive: true });
    // Compile to a name of this process's own, then rename: two benches building at once never run a half-written file.
    const tmp = `${binary}.${process.pid}.tmp`;
    const cc = process.env.CC || 'cc';
    const flags = [...CFLAGS, ...extraFlags];
    const r = spawnSync(cc, [...flags, '-o', tmp, source], { encoding: 'utf8' });
    if (r.error) return { error: `${cc}: ${r.error.message}` };
    if (r.status !== 0) {
      fs.rmSync(tmp, { force: true });
      return { error: `${cc} ${flags.join(' ')} exited ${r.status}: ${r.stderr.trim().split('\n').slice(0, 5).join(' | ')}` };
    }
    fs.renameSync(tmp, binary);
    return { path: binary };
  } catch (e) {
    return { error: e.message };
  }
}

/** pageload's arguments for a paced spec of bench/serve.js (one connection, single GetPage). */
function pageloadArgs(spec) {
  return [
    '--host', '127.0.0.1', '--port', String(spec.port), '--tenant', spec.tenant, '--timeline', 'main',
    '--rate', String(spec.rate), '--ms', String(spec.ms), '--warmup-ms', String(spec.warmupMs),
    '--pages', String(spec.pages), '--seed', String(spec.seed), '--lsn', String(spec.lsn),
  ];
}

module.exports = { ensurePageload, ensurePagefloor, pageloadArgs, PAGELOAD_SOURCE: SOURCE, PAGELOAD_BINARY: BINARY };
