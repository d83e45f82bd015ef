#!/usr/bin/env node
/**
 * Runs the test suite against an AddressSanitizer + UBSan build of the addon.
 *
 * The sanitized addon is built in build-asan/ (a copy of binding.gyp next to a link to native/,
 * built with --strata_sanitize=1), leaving build/ alone. Node itself is not instrumented, so the
 * ASan runtime must be preloaded; leak detection is off because Node leaks at exit by design.
 * Any sanitizer report in the output fails the run, whether or not vitest noticed the crashed worker.
 * Extra arguments go to vitest (e.g. `npm run test:asan -- test/native_core.test.ts`).
 */
'use strict';

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.join(__dirname, '..');
const ASAN_DIR = path.join(ROOT, 'build-asan');
const ADDON = path.join(ASAN_DIR, 'build', 'Release', 'strata.node');
// What ASan and UBSan print when they report; scanned in vitest's output, where the workers'
// stderr ends up.
const REPORT_PATTERNS = [/ERROR: AddressSanitizer/, /SUMMARY: (Address|UndefinedBehavior)Sanitizer/, /runtime error: /];

function run(cmd, args, opts) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.error) throw r.error;
  return r.status === null ? 1 : r.status;
}

function runtimeLibrary(name) {
  const r = spawnSync('gcc', [`-print-file-name=${name}`], { encoding: 'utf8' });
  const file = (r.stdout || '').trim();
  // gcc echoes the bare name back when it does not know the library.
  if (r.status !== 0 || !path.isAbsolute(file) || !fs.existsSync(file)) {
    throw new Error(`cannot find the sanitizer runtime ${name} (gcc -print-file-name=${name})`);
  }
  return fs.realpathSync(file);
}

function buildSanitizedAddon() {
  fs.mkdirSync(ASAN_DIR, { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'binding.gyp'), path.join(ASAN_DIR, 'binding.gyp'));
  const link = path.join(ASAN_DIR, 'native');
  if (!fs.existsSync(link)) fs.symlinkSync(path.join('..', 'native'), link, 'dir');
  const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js', { paths: [ROOT] });
  const prefix = path.dirname(path.dirname(process.execPath));
  const nodedir = process.env.npm_config_nodedir || prefix;
  const status = run(process.execPath, [nodeGyp, 'rebuild', '--jobs', 'max', `--nodedir=${nodedir}`, '--strata_sanitize=1'], { cwd: ASAN_DIR });
  if (status !== 0) throw new Error(`building the sanitized addon failed (node-gyp exited with ${status})`);
}

/**
 * Per-test limits under the sanitizers (ms). With the ASan runtime preloaded every allocation in
 * the process is intercepted, so the TS code slows too: the TS core's model test took 88 s here
 * of the suite's 120 s limit (2026-12-03), and timed out once with other work on the machine.
 */
const ASAN_TEST_TIMEOUT_MS = 360_000;
const ASAN_HOOK_TIMEOUT_MS = 180_000;

/** Runs vitest, echoing its output as it comes, and returns its status and the sanitizer lines seen. */
function runVitest(env) {
  const vitest = require.resolve('vitest/vitest.mjs', { paths: [ROOT] });
  const limits = [`--testTimeout=${ASAN_TEST_TIMEOUT_MS}`, `--hookTimeout=${ASAN_HOOK_TIMEOUT_MS}`];
  const r = spawnSync(process.execPath, [vitest, 'run', ...limits, ...process.argv.slice(2)], {
    cwd: ROOT, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 512 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  process.stdout.write(r.stdout || '');
  process.stderr.write(r.stderr || '');
  const lines = `${r.stdout || ''}\n${r.stderr || ''}`.split('\n');
  const reports = lines.filter((l) => REPORT_PATTERNS.some((p) => p.test(l)));
  return { status: r.status === null ? 1 : r.status, reports };
}

/**
 * ASan's quarantine of freed memory (its 64-bit default, stated so scripts/resource-limits.js can
 * add it to its RSS bounds: freed blocks stay resident until the quarantine is full).
 */
const ASAN_QUARANTINE_MB = 256;

function main() {
  buildSanitizedAddon();
  const preload = [runtimeLibrary('libasan.so'), runtimeLibrary('libubsan.so')].join(':');
  const env = {
    ...process.env,
    STRATA_NATIVE_PATH: ADDON,
    LD_PRELOAD: preload,
    ASAN_OPTIONS: `detect_leaks=0:halt_on_error=1:quarantine_size_mb=${ASAN_QUARANTINE_MB}`,
    UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1',
  };
  const { status, reports } = runVitest(env);
  if (reports.length > 0) {
    process.stderr.write(`\ntest:asan: FAILED, sanitizer reported:\n${reports.join('\n')}\n`);
    process.exit(1);
  }
  if (status !== 0) {
    process.stderr.write(`\ntest:asan: vitest exited with ${status} (no sanitizer reports)\n`);
    process.exit(status);
  }
  process.stderr.write('\ntest:asan: passed with no sanitizer reports\n');
}

try {
  main();
} catch (e) {
  process.stderr.write(`test:asan: ${e.message}\n`);
  process.exit(1);
}
