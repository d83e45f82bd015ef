/**
 * Without the addon (no compiler, or a binary that fails to load) Strata still works in pure TS:
 * 'auto' falls back and says why once on stderr; forcing 'native' throws the real load error.
 * Runs the compiled package (dist/) in child processes, as a user's require/import would.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { NATIVE_SKIP_NOTE, SKIP_NATIVE } from './helpers/cores';

const ROOT = path.join(__dirname, '..');

function runNode(code: string, env: NodeJS.ProcessEnv, module = false): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(process.execPath, [module ? '--input-type=module' : '--input-type=commonjs', '-e', code], {
    cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8',
  });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

const SCRIPT = `
  const dir = require('fs').mkdtempSync(require('path').join(require('os').tmpdir(), 'strata-fb-'));
  (async () => {
    const { Repository } = require('strata');
    const r1 = await Repository.open(dir);
    const r2 = await Repository.open(dir + '-2');
    const tl = await r1.createTimeline({ tenantId: 't', timelineId: 'm' });
    tl.ingest([{ lsn: 16n, key: { spcOid: 1, dbOid: 1, relNumber: 1, forkNum: 0, blockNum: 0 }, kind: 'zero' }]);
    await tl.flush();
    const p = await tl.getPage({ spcOid: 1, dbOid: 1, relNumber: 1, forkNum: 0, blockNum: 0 }, 16n);
    console.log(JSON.stringify({ impl: r1.implementation, impl2: r2.implementation, len: p.length, layers: tl.layers().length }));
    await r1.close(); await r2.close();
  })().catch((e) => { console.log(JSON.stringify({ code: e.code, message: e.message })); });
`;

describe('implementation selection and the pure-TS fallback', () => {
  it('the package loads with require and import from the repo root', () => {
    expect(fs.existsSync(path.join(ROOT, 'dist', 'index.js'))).toBe(true);
    const cjs = runNode("const s = require('strata'); console.log(typeof s.Repository, typeof s.parseLsn)", {});
    expect(cjs.stdout.trim()).toBe('function function');
    const esm = runNode("import { Repository, StrataError } from 'strata'; console.log(typeof Repository, typeof StrataError)", {}, true);
    expect(esm.stdout.trim()).toBe('function function');
  });

  it('falls back to TS with one warning when the addon cannot load', () => {
    const r = runNode(SCRIPT, { STRATA_NATIVE_PATH: path.join(os.tmpdir(), 'no-such-addon.node'), STRATA_IMPL: '' });
    expect(JSON.parse(r.stdout)).toEqual({ impl: 'ts', impl2: 'ts', len: 8192, layers: 1 });
    const warnings = r.stderr.split('\n').filter((l) => l.includes('strata: native addon unavailable'));
    expect(warnings).toHaveLength(1);
  });

  it('forcing native when it cannot load throws NATIVE_UNAVAILABLE with the real error', () => {
    const r = runNode(SCRIPT, { STRATA_NATIVE_PATH: path.join(os.tmpdir(), 'no-such-addon.node'), STRATA_IMPL: 'native' });
    const out = JSON.parse(r.stdout) as { code: string; message: string };
    expect(out.code).toBe('NATIVE_UNAVAILABLE');
    expect(out.message).toContain('no-such-addon.node');
  });

  it('STRATA_IMPL=ts selects TS without touching the addon', () => {
    const ts = runNode(SCRIPT, { STRATA_IMPL: 'ts' });
    expect(JSON.parse(ts.stdout).impl).toBe('ts');
    expect(ts.stderr).not.toContain('native addon unavailable');
  });

  it.skipIf(SKIP_NATIVE)(`auto picks native where it loads${NATIVE_SKIP_NOTE}`, () => {
    const auto = runNode(SCRIPT, { STRATA_IMPL: '' });
    expect(JSON.parse(auto.stdout).impl).toBe('native');
    expect(auto.stderr).not.toContain('native addon unavailable');
  });

  it('a broken binary (not an addon at all) falls back too', () => {
    const bogus = path.join(os.tmpdir(), `strata-bogus-${process.pid}.node`);
    fs.writeFileSync(bogus, 'not an ELF file');
    try {
      const r = runNode(SCRIPT, { STRATA_NATIVE_PATH: bogus, STRATA_IMPL: 'auto' });
      expect(JSON.parse(r.stdout).impl).toBe('ts');
    } finally {
      fs.rmSync(bogus, { force: true });
    }
  });
});
