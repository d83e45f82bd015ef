/**
 * Both cores run every core-level test. The native addon must load in the test environment
 * (npm install builds it); when STRATA_IMPL=ts the suite runs against the TS twin only, which is how
 * the "no compiler" configuration is exercised.
 */
import type { Core, ImplementationName } from '../../lib/core/core';
import { createCore } from '../../lib/core/select';

export const IMPLEMENTATIONS: ImplementationName[] =
  process.env.STRATA_IMPL === 'ts' ? ['ts'] : ['ts', 'native'];

export function makeCore(impl: ImplementationName, pageCacheBytes = 4 * 1024 * 1024): Core {
  return createCore(impl, { pageCacheBytes });
}
