/**
 * Typed access to the addon's PostgreSQL functions (native/pg/pg_addon.cc). The read path reaches
 * redo through the core; these wrappers serve tests, the differential test and benchmarks. Every
 * call turns the addon's coded Errors into StrataErrors, as lib/native.ts does for the core.
 */
import { toStrataError } from '../errors';
import { loadNativeBinding } from '../native';

/** What native/pg/pg_addon.cc registers on the addon's exports. */
export interface PgNativeFunctions {
  /** null when the stored record is well formed, else what is wrong. */
  pgCheckRedoRecord(rec: Uint8Array): string | null;
  /** The bufpage test hook; op numbers in lib/core/ts/pg/bufpage.ts (PAGE_OP). */
  pgPageOp(op: number, page: Uint8Array, a: number, b: number, bytes: Uint8Array): number;
}

function call<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw toStrataError(e);
  }
}

/** The native PostgreSQL functions; throws the addon's load error when it is unavailable. */
export function pgNative(): PgNativeFunctions {
  const b = loadNativeBinding() as unknown as Partial<PgNativeFunctions>;
  if (typeof b.pgCheckRedoRecord !== 'function') throw new Error('the loaded addon has no PostgreSQL functions (rebuild it)');
  const f = b as PgNativeFunctions;
  return {
    pgCheckRedoRecord: (rec) => call(() => f.pgCheckRedoRecord(rec)),
    pgPageOp: (op, page, a, b2, bytes) => call(() => f.pgPageOp(op, page, a, b2, bytes)),
  };
}
