/**
 * The addon's PostgreSQL functions (native/pg/pg_addon.cc) for tests, the differential tests and
 * benchmarks; the read path reaches redo through the core instead. They must load unless the suite
 * runs against the TS twin only (STRATA_IMPL=ts): a missing addon fails the test file loudly
 * instead of skipping the comparison. Calls turn the addon's coded Errors into StrataErrors.
 */
import { loadNativeBinding } from '../../lib/core/native';
import { toStrataError } from '../../lib/errors';

/** What native/pg/pg_addon.cc registers on the addon's exports. */
export interface PgNativeFunctions {
  /** Redoes the stored tag-4 record on the 8192-byte page in place. */
  pgRedoRecord(rec: Uint8Array, page: Uint8Array): void;
  /** null when the stored record is well formed, else what is wrong. */
  pgCheckRedoRecord(rec: Uint8Array): string | null;
  pgChecksumPage(page: Uint8Array, blkno: number): number;
  pgRmgrInfoName(rmid: number, info: number): string;
  /** The bufpage test hook; op numbers in lib/core/ts/pg/bufpage.ts (PAGE_OP). */
  pgPageOp(op: number, page: Uint8Array, a: number, b: number, bytes: Uint8Array): number;
}

export const NATIVE_WANTED = process.env.STRATA_IMPL !== 'ts';

function call<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw toStrataError(e);
  }
}

/** The native functions; throws the addon's load error when it is unavailable. */
export function pgNative(): PgNativeFunctions {
  const b = loadNativeBinding() as unknown as Partial<PgNativeFunctions>;
  if (typeof b.pgCheckRedoRecord !== 'function') throw new Error('the loaded addon has no PostgreSQL functions (rebuild it)');
  const f = b as PgNativeFunctions;
  return {
    pgRedoRecord: (rec, page) => call(() => f.pgRedoRecord(rec, page)),
    pgCheckRedoRecord: (rec) => call(() => f.pgCheckRedoRecord(rec)),
    pgChecksumPage: (page, blkno) => call(() => f.pgChecksumPage(page, blkno)),
    pgRmgrInfoName: (rmid, info) => call(() => f.pgRmgrInfoName(rmid, info)),
    pgPageOp: (op, page, a, b2, bytes) => call(() => f.pgPageOp(op, page, a, b2, bytes)),
  };
}

/** The native functions, or null under STRATA_IMPL=ts; throws when they should load and do not. */
export function nativePg(): PgNativeFunctions | null {
  if (!NATIVE_WANTED) return null;
  return pgNative();
}
