/**
 * The native PostgreSQL functions for differential tests. They must load unless the suite runs
 * against the TS twin only (STRATA_IMPL=ts): a missing addon fails the test file loudly instead of
 * skipping the comparison.
 */
import { pgNative, type PgNativeFunctions } from '../../lib/core/pg_native';

export const NATIVE_WANTED = process.env.STRATA_IMPL !== 'ts';

/** The native functions, or null under STRATA_IMPL=ts; throws when they should load and do not. */
export function nativePg(): PgNativeFunctions | null {
  if (!NATIVE_WANTED) return null;
  return pgNative();
}
