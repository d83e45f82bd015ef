/**
 * The suite's rule for the native core (helpers/cores.ts), checked by running two test files in a
 * child vitest with an addon path that cannot load: without STRATA_IMPL=ts their native tests FAIL
 * with the load error (no silent skip); with STRATA_IMPL=ts they are skipped, every skipped test
 * naming the reason, and nothing fails.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = path.join(__dirname, '..');
const VITEST = path.join(ROOT, 'node_modules', 'vitest', 'vitest.mjs');
const FILES = ['test/native_core.test.ts', 'test/page_cache.test.ts'];
const REASON = 'native core skipped: STRATA_IMPL=ts';

interface AssertionResult { fullName: string; status: string; failureMessages: string[] }
interface Report { numFailedTests: number; numPassedTests: number; testResults: Array<{ assertionResults: AssertionResult[] }> }

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-native-required-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Runs FILES in a child vitest with `env` on top of ours; resolves to its exit status and JSON report. */
function runSuite(name: string, env: NodeJS.ProcessEnv): Promise<{ status: number | null; report: Report; tests: AssertionResult[] }> {
  const out = path.join(tmp, `${name}.json`);
  const args = [VITEST, 'run', ...FILES, '--reporter=json', `--outputFile=${out}`];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (status) => {
      const report = JSON.parse(fs.readFileSync(out, 'utf8')) as Report;
      resolve({ status, report, tests: report.testResults.flatMap((f) => f.assertionResults) });
    });
  });
}

describe('the native core is never skipped silently', () => {
  const missing = path.join(tmp, 'missing.node');

  it('without STRATA_IMPL=ts, an addon that does not load fails the native tests with the load error', async () => {
    const { status, report, tests } = await runSuite('required', { STRATA_IMPL: '', STRATA_NATIVE_PATH: missing });
    expect(status).not.toBe(0);
    expect(tests.filter((t) => t.status === 'skipped' || t.status === 'pending')).toEqual([]);
    const loads = tests.find((t) => t.fullName.includes('the native addon loads'));
    expect(loads?.status).toBe('failed');
    expect(loads?.failureMessages.join('\n')).toContain('missing.node');
    // The per-core suites fail too, with the core's own error code.
    const nativeCache = tests.filter((t) => t.fullName.startsWith('page cache (native core)'));
    expect(nativeCache.length).toBeGreaterThan(3);
    for (const t of nativeCache) expect(t.failureMessages.join('\n'), t.fullName).toMatch(/NATIVE_UNAVAILABLE|missing\.node/);
    expect(report.numPassedTests).toBeGreaterThan(0); // the TS side still ran
  });

  it('with STRATA_IMPL=ts, native tests are skipped with the reason in their names and nothing fails', async () => {
    const { status, report, tests } = await runSuite('opted-out', { STRATA_IMPL: 'ts', STRATA_NATIVE_PATH: missing });
    expect(status).toBe(0);
    expect(report.numFailedTests).toBe(0);
    const skipped = tests.filter((t) => t.status !== 'passed');
    expect(skipped.length).toBeGreaterThan(10);
    for (const t of skipped) expect(t.fullName).toContain(REASON);
    // The addon's own suites and the native half of the per-core suites are among them.
    expect(skipped.some((t) => t.fullName.startsWith(`native codec and checksum — ${REASON}`))).toBe(true);
    expect(skipped.some((t) => t.fullName.startsWith(`page cache (native core) — ${REASON}`))).toBe(true);
    // Files whose cross-core loops cannot skip per case carry one entry saying so (helpers/cores.ts).
    expect(skipped.filter((t) => t.fullName.startsWith(`${REASON} — this file's native cases`))).toHaveLength(FILES.length);
    expect(tests.some((t) => t.fullName.startsWith('page cache (ts core)') && t.status === 'passed')).toBe(true);
  });
});
