/**
 * Every failure Strata reports is a StrataError with a stable `code`; callers switch on the code,
 * never on the message. Messages name the file / block / LSN involved.
 */
export type StrataErrorCode =
  | 'LSN_ORDER'          // batch LSNs go backwards, or do not exceed lastRecordLsn
  | 'BAD_RECORD'         // wrong page size, patch outside the page, unknown kind
  | 'BAD_ARGUMENT'       // malformed key, LSN, option or id
  | 'PAGE_NOT_FOUND'     // no will_init record for the key at or below the LSN (ancestors included)
  | 'LSN_TIMEOUT'        // requested LSN above lastRecordLsn and ingest did not reach it in time
  | 'LSN_GC_CUTOFF'      // read, image or branch below the timeline's GC cutoff
  | 'TIMELINE_NOT_FOUND'
  | 'TIMELINE_EXISTS'
  | 'BAD_ANCESTOR_LSN'   // branch point above the ancestor's lastRecordLsn
  | 'CORRUPT_LAYER'      // checksum, magic, version or length wrong in a layer file
  | 'CORRUPT_MANIFEST'   // manifest unreadable, checksum wrong, or names a missing layer
  | 'CACHE_FULL'         // every page-cache slot is pinned
  | 'NATIVE_UNAVAILABLE' // implementation 'native' forced but the addon cannot load
  | 'CLOSED'             // repository or timeline used after close()
  | 'WAL_CORRUPT'        // PostgreSQL WAL fails a check in the middle of valid WAL (CRC, length, xl_prev, block header)
  | 'WAL_UNSUPPORTED'    // PostgreSQL WAL Strata cannot decode or redo (other version, page size, record type)
  | 'REDO_FAILED'        // a PostgreSQL record does not fit the page it is redone on
  | 'IO_ERROR';

export class StrataError extends Error {
  readonly code: StrataErrorCode;

  constructor(code: StrataErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.name = 'StrataError';
    this.code = code;
  }
}

export function isStrataError(e: unknown, code?: StrataErrorCode): e is StrataError {
  return e instanceof StrataError && (code === undefined || e.code === code);
}

/** Native code throws plain Errors carrying a `code` property; turn them into StrataErrors. */
export function toStrataError(e: unknown): unknown {
  if (e instanceof StrataError) return e;
  if (e instanceof Error) {
    const code = (e as Error & { code?: unknown }).code;
    if (typeof code === 'string' && KNOWN_CODES.has(code)) {
      const msg = e.message.startsWith(`${code}: `) ? e.message.slice(code.length + 2) : e.message;
      return new StrataError(code as StrataErrorCode, msg, { cause: e });
    }
  }
  return e;
}

const KNOWN_CODES: ReadonlySet<string> = new Set<StrataErrorCode>([
  'LSN_ORDER', 'BAD_RECORD', 'BAD_ARGUMENT', 'PAGE_NOT_FOUND', 'LSN_TIMEOUT', 'LSN_GC_CUTOFF', 'TIMELINE_NOT_FOUND',
  'TIMELINE_EXISTS', 'BAD_ANCESTOR_LSN', 'CORRUPT_LAYER', 'CORRUPT_MANIFEST', 'CACHE_FULL',
  'NATIVE_UNAVAILABLE', 'CLOSED', 'IO_ERROR', 'WAL_CORRUPT', 'WAL_UNSUPPORTED', 'REDO_FAILED',
]);
