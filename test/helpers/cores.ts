/**
 * Which cores the tests run, and the one rule for the native one. The addon must load in the test
 * environment (npm install builds it): a test that needs it and cannot load it FAILS, with the load
 * error. The only way to leave the native core out is to say so: STRATA_IMPL=ts runs the suite on
 * the TS twin alone (the "no compiler" configuration); then every native-only suite or test is
 * registered as skipped, the reason in its name, so a report shows what did not run and why.
 * Nothing is skipped silently, and nothing looks at whether the addon happens to load.
 *
 * Tests that loop over IMPLEMENTATIONS inside one test (cross-core comparisons) cannot show a skip
 * per case; for them, importing this module under STRATA_IMPL=ts registers one skipped entry in the
 * importing file saying its native cases did not run (vitest isolates files, so each file gets it).
 */
import { describe, it } from 'vitest';
import type { Core, ImplementationName } from '../../lib/core/core';
import { createCore } from '../../lib/core/select';

/** True only when STRATA_IMPL=ts asks for the TS core alone. */
export const TS_ONLY: boolean = process.env.STRATA_IMPL === 'ts';

/** Both cores, in the order tests report them. */
export const ALL_IMPLEMENTATIONS: readonly ImplementationName[] = ['ts', 'native'];

/** The cores under test: both, unless STRATA_IMPL=ts. */
export const IMPLEMENTATIONS: ImplementationName[] = TS_ONLY ? ['ts'] : ['ts', 'native'];

/** Whether a test that needs the native core is skipped (by STRATA_IMPL=ts, never by a load failure). */
export const SKIP_NATIVE: boolean = TS_ONLY;

/**
 * Appended to the name of a test or suite whose native part does not run: empty when it does.
 * Cross-core tests that still run on the TS core alone carry it too, so their name does not claim
 * a comparison that did not happen.
 */
export const NATIVE_SKIP_NOTE: string = TS_ONLY ? ' — native core skipped: STRATA_IMPL=ts' : '';

/** The note for one core: NATIVE_SKIP_NOTE for the native core, empty for the TS one. */
export function skipNoteFor(impl: ImplementationName): string {
  return impl === 'native' ? NATIVE_SKIP_NOTE : '';
}

/**
 * describe() once per core, '%s' in the title standing for the core's name. The native suite is
 * always registered: run (failing with NATIVE_UNAVAILABLE if the addon does not load), or under
 * STRATA_IMPL=ts skipped with the reason in its name. A skipped suite's body is not evaluated (some
 * build their core while collecting), so it shows as one skipped entry.
 */
export function describeEachCore(title: string, body: (impl: ImplementationName) => void): void {
  for (const impl of ALL_IMPLEMENTATIONS) {
    const name = `${title.replace('%s', impl)}${skipNoteFor(impl)}`;
    if (impl === 'native' && SKIP_NATIVE) {
      describe.skip(name, () => {
        it.skip('every test of this suite', () => undefined);
      });
    } else {
      describe(name, () => body(impl));
    }
  }
}

if (TS_ONLY) {
  it.skip(`native core skipped: STRATA_IMPL=ts — this file's native cases and cross-core comparisons ran on the TS core only`, () => undefined);
}

export function makeCore(impl: ImplementationName, pageCacheBytes = 4 * 1024 * 1024): Core {
  return createCore(impl, { pageCacheBytes });
}
