/**
 * The object-storage contract (issue 15, point 1): what the upload queue, attach and eviction of
 * the next increments need from S3 or anything that behaves like it, and nothing more. Two
 * backends implement it: a local directory (`local_fs_storage.ts`, the embedded default and the
 * tests' second backend) and S3 (`s3_storage.ts`). `test/remote/remote_storage.test.ts` runs one
 * suite against both; docs/REMOTE.md describes the contract in prose.
 *
 * Semantics both backends keep:
 * - Keys are '/'-separated paths (no leading or trailing '/', no empty, '.' or '..' segment, no
 *   NUL), at most 1024 bytes of UTF-8, as S3 allows. A key cannot be both an object and the
 *   directory part of another key ('a' and 'a/b'): the local directory cannot hold both, so the
 *   contract forbids it for both (Strata's own layout never does it).
 * - A put replaces the whole object atomically: readers see the old bytes or the new, never a mix.
 * - ETags are opaque strings without quotes (S3 sends `"…"`; `normalizeEtag` strips them, and
 *   conditional puts send them back without quotes, which radosgw needs). For a whole-object put
 *   both backends give the MD5 of the content in hex, so rewriting identical bytes keeps the ETag.
 * - Conditional puts are the only atomic read-modify-write: `ifNoneMatch: '*'` creates only when
 *   the key is absent; `ifMatch: etag` replaces only while the current ETag is `etag`. A lost
 *   condition is REMOTE_PRECONDITION_FAILED (also for `ifMatch` on a key that does not exist).
 * - Every failure is a StrataError: REMOTE_NOT_FOUND (get of a missing key), REMOTE_PRECONDITION_FAILED,
 *   REMOTE_ERROR (transport, timeout, 5xx, refused request; the message names operation and key),
 *   BAD_ARGUMENT (a malformed key or range), IO_ERROR (the local side of putFile/getToFile).
 *   A RemoteStorageError also says whether the failure may pass on a retry (`transient`).
 * - Nothing here retries beyond what the S3 SDK does by default, and conditional puts not even
 *   that: retries, backoff and the circuit breaker belong to the upload queue above (docs/REMOTE.md).
 */
import type { Readable } from 'node:stream';
import { StrataError, type StrataErrorCode } from '../errors';

/** The `remote` option of `Repository.open` (names fixed by issue 15). */
export type RemoteConfig = LocalRemoteConfig | S3RemoteConfig;

export interface LocalRemoteConfig {
  type: 'local';
  /** The directory holding the objects; created when missing. */
  path: string;
}

export interface S3RemoteConfig {
  type: 's3';
  /** e.g. 'http://127.0.0.1:7480' for an S3-compatible server; AWS's own endpoint when absent. */
  endpoint?: string;
  /** Default: AWS_REGION, then AWS_DEFAULT_REGION, then 'us-east-1'. */
  region?: string;
  bucket: string;
  /** Prepended to every key with a '/' between; list results come back without it. */
  prefix?: string;
  /** Path-style URLs (`endpoint/bucket/key`), which most S3-compatible servers need. */
  forcePathStyle?: boolean;
}

/** Knobs that are not part of the repository's configuration: tests and tuning. */
export interface RemoteStorageOptions {
  /** Keys per ListObjectsV2 request (1–1000, S3's maximum and the default). */
  listPageSize?: number;
  /** Give up on connecting after this long (S3). Default 10 s. */
  connectTimeoutMs?: number;
  /** Give up on a request whose socket is idle this long (S3). Default 60 s. */
  idleTimeoutMs?: number;
  /** Explicit S3 credentials; default: the SDK's standard chain (environment, profile, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Local backend: how long a put waits for another writer's per-key lock. Default 30 s. */
  lockTimeoutMs?: number;
}

export const DEFAULT_LIST_PAGE_SIZE = 1000;
/** S3's key length limit, in bytes of UTF-8. */
export const MAX_KEY_BYTES = 1024;

/** What `head` and `list` report about an object. */
export interface RemoteObjectInfo {
  key: string;
  size: number;
  /** Without quotes (see normalizeEtag). */
  etag: string;
  lastModified: Date;
}

/** A whole object's bytes: in memory, a file on disk (layer files), or a stream of known length. */
export type PutBody = Uint8Array | { file: string } | { stream: Readable; length: number };

export interface PutOptions {
  /** '*': create only — fail with REMOTE_PRECONDITION_FAILED when the key exists. */
  ifNoneMatch?: '*';
  /** Compare-and-swap: replace only while the object's ETag is this one (quotes allowed, stripped). */
  ifMatch?: string;
}

export interface PutResult {
  /** The new object's ETag, without quotes. */
  etag: string;
}

/** Bytes [offset, offset + length) of an object; to the end when length is absent. */
export interface ByteRange {
  offset: number;
  length?: number;
}

export interface GetOptions {
  range?: ByteRange;
}

export type RemoteOperation = 'put' | 'get' | 'head' | 'list' | 'delete' | 'open';

export interface RemoteStorage {
  /** 'local' or 's3'. */
  readonly kind: RemoteConfig['type'];
  /** Where the objects are, for messages: the directory, or `s3://bucket/prefix` at the endpoint. */
  readonly description: string;
  /** Store a whole object, replacing any object of that key unless a condition says otherwise. */
  put(key: string, body: PutBody, options?: PutOptions): Promise<PutResult>;
  /**
   * An object's bytes, or a byte range of them (fewer than `length` when the object ends first).
   * REMOTE_NOT_FOUND when the key does not exist; BAD_ARGUMENT for a range starting at or past
   * the end of a non-empty object.
   */
  get(key: string, options?: GetOptions): Promise<Buffer>;
  /** Stream a whole object into `file` (written to a temp file beside it, fsynced, renamed). */
  getToFile(key: string, file: string): Promise<RemoteObjectInfo>;
  /** An object's size and ETag, or null when it does not exist. */
  head(key: string): Promise<RemoteObjectInfo | null>;
  /** Every object whose key starts with `prefix` (a plain string prefix, as S3's), in key order. */
  list(prefix: string): Promise<RemoteObjectInfo[]>;
  /** Remove an object; a key that does not exist is not an error. */
  delete(key: string): Promise<void>;
  /** Release connections; the object is unusable afterwards. */
  close(): Promise<void>;
}

/**
 * A RemoteStorage failure: a StrataError (REMOTE_*, BAD_ARGUMENT or IO_ERROR) that also carries
 * the operation, the key, the HTTP status when there was one, and whether retrying may help.
 */
export class RemoteStorageError extends StrataError {
  readonly operation: RemoteOperation;
  readonly key: string;
  readonly httpStatus: number | null;
  /** True for a failure a retry may get past (transport, timeout, 5xx, 429, a lock wait). */
  readonly transient: boolean;

  constructor(
    code: StrataErrorCode,
    fields: { operation: RemoteOperation; key: string; storage: string; httpStatus?: number | null; transient: boolean },
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(code, `${fields.operation} ${JSON.stringify(fields.key)} on ${fields.storage}: ${detail}`, options);
    this.name = 'RemoteStorageError';
    this.operation = fields.operation;
    this.key = fields.key;
    this.httpStatus = fields.httpStatus ?? null;
    this.transient = fields.transient;
  }
}

/** `"abc"`, `W/"abc"` or `abc` → `abc`. */
export function normalizeEtag(etag: string): string {
  let e = etag.trim();
  if (e.startsWith('W/')) e = e.slice(2);
  if (e.length >= 2 && e.startsWith('"') && e.endsWith('"')) e = e.slice(1, -1);
  return e;
}

/** Throws BAD_ARGUMENT unless `key` is a key both backends can store (see the file comment). */
export function validateKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0) throw new StrataError('BAD_ARGUMENT', `object key must be a non-empty string, got ${JSON.stringify(key)}`);
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) throw new StrataError('BAD_ARGUMENT', `object key longer than ${MAX_KEY_BYTES} bytes: ${JSON.stringify(key.slice(0, 64))}…`);
  if (key.includes('\0')) throw new StrataError('BAD_ARGUMENT', `object key contains NUL: ${JSON.stringify(key)}`);
  for (const seg of key.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') {
      throw new StrataError('BAD_ARGUMENT', `object key ${JSON.stringify(key)} has an empty, '.' or '..' segment (or a leading or trailing '/')`);
    }
  }
}

/** Throws BAD_ARGUMENT for a negative, fractional or unsafe offset or length. */
export function validateRange(range: ByteRange): void {
  const ok = (n: number): boolean => Number.isSafeInteger(n) && n >= 0;
  if (!ok(range.offset) || (range.length !== undefined && !ok(range.length))) {
    throw new StrataError('BAD_ARGUMENT', `byte range must have non-negative integer offset and length, got ${JSON.stringify(range)}`);
  }
}

/** Throws BAD_ARGUMENT unless put's conditions are well-formed (at most one of them). */
export function validatePutOptions(options: PutOptions): void {
  if (options.ifNoneMatch !== undefined && options.ifNoneMatch !== '*') {
    throw new StrataError('BAD_ARGUMENT', `put: ifNoneMatch must be '*', got ${JSON.stringify(options.ifNoneMatch)}`);
  }
  if (options.ifMatch !== undefined && (typeof options.ifMatch !== 'string' || normalizeEtag(options.ifMatch) === '')) {
    throw new StrataError('BAD_ARGUMENT', `put: ifMatch must be a non-empty ETag, got ${JSON.stringify(options.ifMatch)}`);
  }
  if (options.ifNoneMatch !== undefined && options.ifMatch !== undefined) {
    throw new StrataError('BAD_ARGUMENT', 'put: ifNoneMatch and ifMatch together make no sense (create-only or compare-and-swap, not both)');
  }
}

/** Throws BAD_ARGUMENT for a list page size S3 would refuse. */
export function validateListPageSize(n: number): number {
  if (!Number.isSafeInteger(n) || n < 1 || n > DEFAULT_LIST_PAGE_SIZE) {
    throw new StrataError('BAD_ARGUMENT', `listPageSize must be an integer in 1..${DEFAULT_LIST_PAGE_SIZE}, got ${n}`);
  }
  return n;
}

/** Sorts infos by key in S3's order (bytes of UTF-8, which differs from JS string order above U+FFFF). */
export function sortByKey(infos: RemoteObjectInfo[]): RemoteObjectInfo[] {
  return infos.sort((a, b) => Buffer.compare(Buffer.from(a.key, 'utf8'), Buffer.from(b.key, 'utf8')));
}
