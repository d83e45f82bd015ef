/**
 * Every failure Strata reports is a StrataError with a stable `code`; callers switch on the code,
 * never on the message. Messages name the file / block / LSN / record involved.
 *
 * ERROR_CODES is the one list of codes: the type, the native error names (native/errors.h, checked
 * by test/errors.test.ts) and README's table (checked by test/readme.test.ts) follow it.
 */
export const ERROR_CODES = {
  BAD_ARGUMENT: 'a malformed key, LSN, option, id or buffer; a method called with the wrong arguments',
  BAD_RECORD: 'a record that cannot be stored: wrong page size, patch outside the page, unknown kind',
  LSN_ORDER: 'a batch whose LSNs go backwards, do not exceed lastRecordLsn, reach LSN_MAX, or give one page two records at one LSN',
  LSN_TIMEOUT: 'an LSN above lastRecordLsn: getPage waited timeoutMs for it; readPage, createImageLayer and branch creation do not wait',
  LSN_GC_CUTOFF: 'a read, image or branch below the timeline\'s GC cutoff',
  PAGE_NOT_FOUND: 'no page for the key at that LSN (nothing initialized it, or PostgreSQL: the block is past the relation\'s end)',
  TIMELINE_NOT_FOUND: 'no timeline with that tenant and timeline id',
  TIMELINE_EXISTS: 'createTimeline with an id that is taken',
  CORRUPT_LAYER: 'a layer file whose checksum, magic, version, structure or length is wrong',
  CORRUPT_MANIFEST: 'a manifest that is unreadable, fails its checksum, names a missing layer or an impossible file name',
  CACHE_FULL: 'every page-cache slot is pinned',
  NATIVE_UNAVAILABLE: 'implementation \'native\' was forced but the addon cannot load',
  CLOSED: 'a repository, timeline or core used after close()',
  IO_ERROR: 'the operating system refused a read, write, fsync, rename or unlink (the message has the path and errno); after one in a flush, compaction, image creation, GC or manifest update the timeline refuses writes until reopen',
  REPOSITORY_LOCKED: 'the repository is open for writing by another process (or another Repository in this one)',
  READ_ONLY: 'a write on a repository opened with readOnly: true',
  NOT_A_REPOSITORY: 'the directory has no strata.json (opening read-only, or a CLI command on a wrong path)',
  WAL_CORRUPT: 'PostgreSQL WAL that fails its CRC, header or xl_prev checks before its end (names the LSN)',
  WAL_UNSUPPORTED: 'a page whose history holds a PostgreSQL record Strata cannot redo (names rmgr/INFO and the LSN)',
  REDO_FAILED: 'a PostgreSQL record that does not fit the page it is redone on (names the record, LSN and page)',
  REL_NOT_FOUND: 'getRelSize of a relation fork that does not exist at that LSN (never created, dropped, or a free-space map)',
  BAD_PG_DATADIR: 'importPgDatadir of a directory that is not a cleanly shut down PostgreSQL 15 cluster (wrong version, bad pg_control, missing WAL)',
  REPLICATION_AUTH: 'followPostgres: the server refused the connection (wrong password, no pg_hba.conf replication entry, a role without REPLICATION); not retried',
  REPLICATION_MISMATCH: 'followPostgres: the server is another cluster (system identifier), on another PostgreSQL timeline, or behind the timeline\'s LSN; nothing is ingested',
  REPLICATION_SLOT: 'followPostgres: the replication slot does not exist, was dropped, or no longer holds the WAL from the LSN Strata needs',
  REPLICATION_LOST: 'followPostgres: the connection failed, was cut or broke the protocol; retried with backoff, fatal only after maxReconnectAttempts',
  PROTOCOL_ERROR: 'page service: a frame that breaks docs/PROTOCOL.md (length, type, layout, order, request id); names the frame type and byte offset; the connection is closed',
  AUTH_FAILED: 'page service: the handshake\'s token is missing, unverifiable, expired, for another tenant or without the pageserver scope',
  DEADLINE_EXCEEDED: 'StrataClient: a request got no answer within its deadline (the connection stays open; a late answer is dropped)',
  CONNECTION_CLOSED: 'StrataClient: the connection closed (or could not be made) before the request was answered',
  THROTTLED: 'page service: the tenant is over its GCRA limit (pages/s and burst); the request was not run; retry after the retry-after the answer carries (StrataClient: `retryAfterMs` on the error)',
  CIRCUIT_OPEN: 'RetryingClient: the circuit breaker for that server is open (consecutive calls got no answer); calls fail at once until its half-open probe is answered',
  SERVER_ERROR: 'page service: a request failed for a reason that is not a StrataError (a bug; the message says what)',
  REMOTE_ERROR: 'object storage failed: no answer (refused, reset, timed out), a 5xx, or a refused request such as a missing bucket or bad credentials; the message names the operation, the key and the server\'s answer',
  REMOTE_NOT_FOUND: 'get of an object key that does not exist in object storage (the message names the key)',
  REMOTE_PRECONDITION_FAILED: 'a conditional put lost: create-only (ifNoneMatch \'*\') on a key that exists, or compare-and-swap (ifMatch) with an ETag that is no longer current',
  LAYER_NOT_LOCAL: 'a synchronous read (readPage, readPagesInto) or key listing needs a layer that is in remote storage only (evicted, or attached on demand); async reads download it, or call tl.downloadLayers() first; also a read of such a layer in a repository opened without its remote',
  STALE_GENERATION: 'attachTenant with a generation that is not above every generation the tenant already has (its attachment object, its keys); or this node\'s generation of the tenant is stale — another node attached it since — so syncRemote, deleteTimeline and a generation change are refused and nothing more is uploaded or deleted',
} as const;

export type StrataErrorCode = keyof typeof ERROR_CODES;

export class StrataError extends Error {
  readonly code: StrataErrorCode;

  constructor(code: StrataErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.name = 'StrataError';
    this.code = code;
    // Format the stack now: until it is read, V8 keeps the raw frames, and with them every frame's
    // receiver, so an error kept by a caller (in a log queue, a rejected promise a test framework
    // holds) would pin the timeline and core it came from, page cache and all (a 64 MiB TS page
    // cache per error: the 1,000-kill crash campaign ran out of address space at kill 377).
    void this.stack;
  }
}

/**
 * A caller's value named for a BAD_ARGUMENT message without throwing: String() throws on objects
 * without a prototype, and template strings throw on symbols.
 */
export function describeValue(v: unknown): string {
  if (typeof v === 'symbol' || typeof v === 'function') return typeof v;
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array) return `${v.constructor.name} of ${v.length} bytes`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'object' && v !== null) return 'an object';
  if (typeof v === 'string' && v.length > 64) return `a string of ${v.length} characters`;
  return String(v);
}

export function isStrataError(e: unknown, code?: StrataErrorCode): e is StrataError {
  return e instanceof StrataError && (code === undefined || e.code === code);
}

export function isErrorCode(code: unknown): code is StrataErrorCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(ERROR_CODES, code);
}

/** Native code throws plain Errors carrying a `code` property; turn them into StrataErrors. */
export function toStrataError(e: unknown): unknown {
  if (e instanceof StrataError) return e;
  if (e instanceof Error) {
    const code = (e as Error & { code?: unknown }).code;
    if (isErrorCode(code)) {
      const msg = e.message.startsWith(`${code}: `) ? e.message.slice(code.length + 2) : e.message;
      return new StrataError(code, msg, { cause: e });
    }
  }
  return e;
}
