import { defineConfig } from 'vitest/config';

/**
 * The benchmark harness's smoke tests run the quick bench profiles (≈ 2 min): they have their own
 * script (`npm run test:bench`, which .ci/run calls) so `npm test` stays within its time budget.
 * STRATA_BENCH_SMOKE=1 (set by that script) selects them instead of the rest of the suite.
 */
const BENCH_SMOKE_FILES = ['test/bench_smoke.test.ts', 'test/bench_micro.test.ts', 'test/bench_pageload.test.ts'];
const benchSmoke = process.env.STRATA_BENCH_SMOKE === '1';

export default defineConfig({
  test: {
    include: benchSmoke ? BENCH_SMOKE_FILES : ['test/**/*.test.ts'],
    exclude: benchSmoke ? [] : ['**/node_modules/**', ...BENCH_SMOKE_FILES],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // The JSON report lets .ci/run print one "N passed, N failed" line.
    reporters: ['default', ['json', { outputFile: '.vitest-results.json' }]],
  },
});
