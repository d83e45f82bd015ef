/**
 * Smoke test of `npm run bench:micro` (bench/micro.js) in its --quick profile (a few ms per
 * benchmark, ≈ 2 s in all): every case runs for both cores and reports in Benchmark.js's format, the
 * ratio table lists every case, and the JSON holds finite positive figures. No timing assertions:
 * numbers this short mean nothing; only presence and shape count.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NATIVE_SKIP_NOTE, SKIP_NATIVE } from './helpers/cores';

const ROOT = path.join(__dirname, '..');
const MICRO = path.join(ROOT, 'bench', 'micro.js');
const CASE_IDS = ['readPage', 'getPage', 'getPages64', 'reconstruct10', 'cacheLookup', 'cacheInsert', 'layerWrite', 'decompress_lz4', 'decompress_zstd'];
const IMPLS = ['native', 'ts'] as const;

interface Side { opsPerSec: number; rmePct: number; samples: number; meanUs: number }
interface Case { id: string; name: string; unit: string; native: Side; ts: Side; fastest: string[]; nativeOverTs: number }
interface Micro { meta: { profile: string; harness: { library: string; version: string }; native: { loaded: boolean } }; cases: Case[] }

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-micro-smoke-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('npm run bench:micro (--quick)', () => {
  it.skipIf(SKIP_NATIVE)(`runs every case on both cores, prints Benchmark.js lines and the ratio table, writes JSON${NATIVE_SKIP_NOTE}`, () => {
    const out = path.join(tmp, 'micro.json');
    const r = spawnSync(process.execPath, [MICRO, '--quick', '--out', out], { cwd: ROOT, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
    expect(r.status, `bench:micro failed:\n${r.stderr}`).toBe(0);
    const j = JSON.parse(fs.readFileSync(out, 'utf8')) as Micro;
    expect(j.meta.profile).toBe('quick');
    expect(j.meta.harness.library).toBe('benchmark');
    expect(j.meta.native.loaded).toBe(true);
    expect(j.cases.map((c) => c.id)).toEqual(CASE_IDS);

    const lines = r.stdout.split('\n');
    for (const c of j.cases) {
      for (const impl of IMPLS) {
        const s = c[impl];
        expect(s, `${c.id}.${impl}`).toBeDefined();
        expect(Number.isFinite(s.opsPerSec) && s.opsPerSec > 0, `${c.id}.${impl}.opsPerSec = ${s.opsPerSec}`).toBe(true);
        expect(Number.isFinite(s.meanUs) && s.meanUs > 0, `${c.id}.${impl}.meanUs`).toBe(true);
        expect(Number.isFinite(s.rmePct) && s.rmePct >= 0, `${c.id}.${impl}.rmePct`).toBe(true);
        expect(s.samples, `${c.id}.${impl}.samples`).toBeGreaterThan(0);
        // Benchmark.js's own line: "<name> x 1,234 ops/sec ±1.23% (5 runs sampled)".
        const line = new RegExp(`^${escape(c.name)} \\[${impl}\\] x [\\d,]+(\\.\\d+)? ops/sec ±\\d+\\.\\d+% \\(\\d+ runs? sampled\\)$`);
        expect(lines.some((l) => line.test(l)), `${c.id} [${impl}] line`).toBe(true);
      }
      expect(Number.isFinite(c.nativeOverTs) && c.nativeOverTs > 0, `${c.id}.nativeOverTs`).toBe(true);
      expect(c.fastest.length).toBeGreaterThan(0);
      for (const f of c.fastest) expect(IMPLS).toContain(f);
      expect(lines).toContain(`Fastest is ${c.fastest.map((f) => `${c.name} [${f}]`).join(', ')}`);
      expect(lines.some((l) => l.startsWith(`| ${c.name} (per ${c.unit}) |`)), `${c.id} ratio row`).toBe(true);
    }
    expect(lines).toContain('| case | native ops/s | TS ops/s | native ÷ TS |');
  });

  it('refuses clearly (exit 2, one line, no JSON) when the native addon does not load', () => {
    const out = path.join(tmp, 'refused.json');
    const r = spawnSync(process.execPath, [MICRO, '--quick', '--out', out], {
      cwd: ROOT, encoding: 'utf8', env: { ...process.env, STRATA_NATIVE_PATH: path.join(tmp, 'missing.node') },
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^bench:micro: the native addon does not load \(cannot load .*missing\.node/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(fs.existsSync(out)).toBe(false);
  });
});
