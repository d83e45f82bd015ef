'use strict';
/**
 * Runs a TypeScript measurement (bench/lib/*.ts) with vite-node and returns the JSON object it
 * prints last. W8–W10 measure through the PostgreSQL cluster helpers of the tests, which are
 * TypeScript; the bench itself stays plain JS on dist/.
 */
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const ROOT = path.join(__dirname, '..', '..');
const MAX_OUTPUT_BYTES = 16 * 2 ** 20;

/** `{ skipped }` when vite-node is missing; throws `${what} failed: <stderr>` when the script fails. */
function runTsMeasurement(script, args, what) {
  const viteNode = path.join(ROOT, 'node_modules', '.bin', 'vite-node');
  if (!fs.existsSync(viteNode)) return { skipped: 'vite-node (vitest) is not installed' };
  const r = spawnSync(viteNode, [path.join(ROOT, 'bench', 'lib', script), ...args], { cwd: ROOT, encoding: 'utf8', maxBuffer: MAX_OUTPUT_BYTES });
  if (r.status !== 0) throw new Error(`${what} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

module.exports = { runTsMeasurement };
