/**
 * Fuzzing of the TS parsers (test/fuzz/ts/targets.ts): each target's committed seeds, then inputs
 * mutated from them and random ones, must all end in success or a coded StrataError. `npm test`
 * runs a short slice; campaigns are sized by environment (scripts/fuzz.js sets them):
 *   STRATA_FUZZ_TS_RUNS     inputs per target (default 400)
 *   STRATA_FUZZ_TS_SECONDS  time limit per target (default none)
 *   STRATA_FUZZ_TS_TARGET   only this target
 *   STRATA_FUZZ_TS_SEED     fast-check seed (default: the time; printed, so a failure reproduces)
 *   STRATA_FUZZ_TS_STATS    append one JSON line of figures per target to this file
 */
import * as fs from 'node:fs';
import { expect, test } from 'vitest';
import { campaign, loadSeeds } from './fuzz/ts/harness';
import { TS_TARGETS } from './fuzz/ts/targets';

const DEFAULT_RUNS = 400;
const RUNS = Number(process.env.STRATA_FUZZ_TS_RUNS ?? DEFAULT_RUNS);
const SECONDS = Number(process.env.STRATA_FUZZ_TS_SECONDS ?? 0);
const ONLY = process.env.STRATA_FUZZ_TS_TARGET;
const SEED = Number(process.env.STRATA_FUZZ_TS_SEED ?? Date.now() % 0x7fff_ffff);
/** The slowest target's rate on a loaded 2-core machine, with a margin: sizes the test timeout. */
const SLOWEST_EXECS_PER_S = 200;
/** Per target: the time limit and then some for shrinking a failure, or generous for a run count. */
const TEST_TIMEOUT_MS = (SECONDS > 0 ? SECONDS * 1000 : (RUNS / SLOWEST_EXECS_PER_S) * 1000) + 120_000;

for (const t of TS_TARGETS) {
  test.skipIf(ONLY !== undefined && ONLY !== t.name)(`fuzz ${t.name}: every input ends in success or a coded StrataError`, async () => {
    expect(loadSeeds(t).length).toBeGreaterThan(0);
    const stats = await campaign(t, { runs: SECONDS > 0 ? Number.MAX_SAFE_INTEGER : RUNS, seconds: SECONDS, seed: SEED });
    const rate = Math.round(stats.executions / Math.max(stats.seconds, 1e-9));
    process.stdout.write(`fuzz-ts: ${t.name}: ${stats.executions} executions in ${stats.seconds.toFixed(1)} s (${rate}/s), seed ${SEED}, ` +
      `${stats.seeds} seeds, outcomes ${JSON.stringify(stats.outcomes)}\n`);
    if (process.env.STRATA_FUZZ_TS_STATS) fs.appendFileSync(process.env.STRATA_FUZZ_TS_STATS, `${JSON.stringify({ ...stats, seed: SEED })}\n`);
    expect(stats.executions).toBeGreaterThanOrEqual(stats.seeds);
    // Mutation must reach past the first check: some inputs succeed and some are refused.
    if (stats.executions >= 200 && t.oneOutcomeIsNormal !== true) expect(Object.keys(stats.outcomes).length).toBeGreaterThan(1);
  }, TEST_TIMEOUT_MS);
}
