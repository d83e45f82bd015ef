import { defineConfig } from 'vitest/config';

/**
 * The benchmark harness's smoke tests run the quick bench profiles (≈ 2 min): they have their own
 * script (`npm run test:bench`, which .ci/run calls) so `npm test` stays within its time budget.
 * STRATA_BENCH_SMOKE=1 (set by that script) selects them instead of the rest of the suite.
 */
const BENCH_SMOKE_FILES = ['test/bench_smoke.test.ts', 'test/bench_micro.test.ts', 'test/bench_pageload.test.ts'];
const benchSmoke = process.env.STRATA_BENCH_SMOKE === '1';
/**
 * Test files run at once. On this 2-core machine (2026-12-02): 2 at a time took 762 s with the CPUs
 * partly idle (PostgreSQL, radosgw, fsyncs and child processes waited on); 3 at a time 689 s, the
 * CPUs 90 % busy (1,239 CPU-seconds in all), so a fourth would only queue.
 */
const TEST_FILES_AT_ONCE = 3;

export default defineConfig({
  test: {
    include: benchSmoke ? BENCH_SMOKE_FILES : ['test/**/*.test.ts'],
    exclude: benchSmoke ? [] : ['**/node_modules/**', ...BENCH_SMOKE_FILES],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // vitest's default is one fewer worker than cores, which is one on this 2-core machine, and
    // much of the suite's time is spent waiting (fsyncs, PostgreSQL, radosgw starting). Test files
    // share nothing: temp dirs of their own, their own servers on free ports, the PostgreSQL
    // fixture built once under a lock (pg_fixture.ts).
    maxWorkers: TEST_FILES_AT_ONCE,
    minWorkers: 1,
    // The JSON report lets .ci/run print one "N passed, N failed" line.
    reporters: ['default', ['json', { outputFile: '.vitest-results.json' }]],
  },
});
