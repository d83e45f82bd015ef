/**
 * RemoteStorage on S3 and S3-compatible servers through `@aws-sdk/client-s3` (pinned in
 * package.json). Tested against Ceph's radosgw (docs/REMOTE.md, "The test server").
 *
 * Client settings and why:
 * - Credentials come from the SDK's standard chain (environment, shared profile, instance or
 *   container role) unless `options.credentials` names them (the tests do).
 * - `forcePathStyle` for servers without virtual-host buckets; `endpoint` for anything but AWS.
 * - Checksums only WHEN_REQUIRED: since 3.729 the SDK adds CRC32 trailers (aws-chunked uploads)
 *   that S3-compatible servers such as radosgw 16 do not all understand.
 * - Timeouts: `connectTimeoutMs` to connect, `idleTimeoutMs` of socket inactivity; no bound on a
 *   whole request, which for a large layer on a slow link may rightly take minutes.
 * - Retries: the SDK's defaults (3 attempts, backoff) for requests that can be repeated safely —
 *   get, head, list, delete and unconditional puts of a Buffer. Conditional puts and puts from a
 *   file or stream go through a second client with a single attempt: a conditional put whose
 *   answer was lost may have succeeded, so the SDK's retry could report our own create as
 *   "precondition failed"; and a consumed stream cannot be sent again. Both surface as
 *   REMOTE_ERROR (transient) and the upload queue above decides (re-read, then retry).
 */
import * as fs from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { StrataError } from '../errors';
import { writeFileFromStream } from './fs_durable';
import {
  DEFAULT_LIST_PAGE_SIZE,
  normalizeEtag,
  RemoteStorageError,
  sortByKey,
  validateKey,
  validateListPageSize,
  validatePutOptions,
  validateRange,
  type GetOptions,
  type PutBody,
  type PutOptions,
  type PutResult,
  type RemoteObjectInfo,
  type RemoteOperation,
  type RemoteStorage,
  type RemoteStorageOptions,
  type S3RemoteConfig,
} from './remote_storage';

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
const DEFAULT_REGION = 'us-east-1';
/** S3's minimum bucket name length; shorter ones are refused before any request. */
const MIN_BUCKET_NAME = 3;

/**
 * The SDK's own warnings (socket exhaustion, say), less the one it prints for every failed
 * streaming put ("non-retryable streaming request"). Errors are not logged: with a logger set the
 * SDK logs every failed command, and each is thrown to the caller as a RemoteStorageError anyway.
 */
const QUIET_LOGGER = {
  trace: (): void => undefined,
  debug: (): void => undefined,
  info: (): void => undefined,
  warn: (...args: unknown[]): void => {
    if (typeof args[0] === 'string' && args[0].includes('non-retryable streaming request')) return;
    console.warn(...args);
  },
  error: (): void => undefined,
};

/** What an SDK failure carries that we classify on. */
interface SdkFailure {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

export class S3Storage implements RemoteStorage {
  readonly kind = 's3' as const;
  readonly description: string;
  private readonly client: S3Client;
  /** Single attempt: conditional puts and puts of a file or stream (see the file comment). */
  private readonly onceClient: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly listPageSize: number;
  /** HeadBucket succeeded once: a 404 from HeadObject means the key, not the bucket. */
  private bucketSeen = false;
  private closed = false;

  constructor(config: S3RemoteConfig, options: RemoteStorageOptions = {}) {
    if (typeof config.bucket !== 'string' || config.bucket.length < MIN_BUCKET_NAME) {
      throw new StrataError('BAD_ARGUMENT', `remote: { type: 's3' } needs a bucket name of at least ${MIN_BUCKET_NAME} characters, got ${JSON.stringify(config.bucket)}`);
    }
    this.bucket = config.bucket;
    this.prefix = (config.prefix ?? '').replace(/^\/+|\/+$/g, '');
    this.listPageSize = validateListPageSize(options.listPageSize ?? DEFAULT_LIST_PAGE_SIZE);
    this.description = `s3://${this.bucket}/${this.prefix ? `${this.prefix}/` : ''}${config.endpoint ? ` at ${config.endpoint}` : ''}`;
    const base: S3ClientConfig = {
      region: config.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? DEFAULT_REGION,
      forcePathStyle: config.forcePathStyle ?? false,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        connectionTimeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
        // socketTimeout is the idle timeout (requestTimeout would bound a whole upload, however large).
        socketTimeout: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
      },
      logger: QUIET_LOGGER,
      ...(config.endpoint !== undefined ? { endpoint: config.endpoint } : {}),
      ...(options.credentials !== undefined ? { credentials: options.credentials } : {}),
    };
    this.client = new S3Client(base);
    this.onceClient = new S3Client({ ...base, maxAttempts: 1 });
  }

  private fullKey(key: string): string {
    validateKey(key);
    if (this.closed) throw new StrataError('CLOSED', `${this.description} was closed`);
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  /** An SDK failure as a RemoteStorageError (see remote_storage.ts for the codes). */
  private failure(op: RemoteOperation, key: string, e: unknown): StrataError {
    if (e instanceof StrataError) return e;
    const f = (e ?? {}) as SdkFailure;
    const status = f.$metadata?.httpStatusCode;
    const name = f.name ?? f.code ?? 'Error';
    const fields = { operation: op, key, storage: this.description, httpStatus: status ?? null };
    const what = `${name}${status !== undefined ? ` (HTTP ${status})` : ''}: ${f.message ?? String(e)}`;
    if (status === 412 || name === 'PreconditionFailed') {
      return new RemoteStorageError('REMOTE_PRECONDITION_FAILED', { ...fields, transient: false }, what, { cause: e });
    }
    if (name === 'NoSuchKey' || (status === 404 && op === 'get' && name !== 'NoSuchBucket')) {
      return new RemoteStorageError('REMOTE_NOT_FOUND', { ...fields, transient: false }, what, { cause: e });
    }
    // No status: the request never got an answer (refused, reset, timed out); 5xx, 429, 408 and a
    // 409 between concurrent conditional writes may pass on a retry. Other 4xx will not.
    const transient = status === undefined || status >= 500 || status === 429 || status === 408 || status === 409;
    return new RemoteStorageError('REMOTE_ERROR', { ...fields, transient }, what, { cause: e });
  }

  async put(key: string, body: PutBody, options: PutOptions = {}): Promise<PutResult> {
    const Key = this.fullKey(key);
    validatePutOptions(options);
    const conditional = options.ifNoneMatch !== undefined || options.ifMatch !== undefined;
    let Body: Uint8Array | Readable;
    let ContentLength: number;
    let repeatable = true;
    let lengthError = (): StrataError | null => null;
    const abort = new AbortController();
    if (body instanceof Uint8Array) {
      Body = body;
      ContentLength = body.length;
    } else if ('file' in body) {
      // Opened here, not by the stream: a file removed meanwhile must fail this put, not become
      // an 'error' event nobody listens to yet. The stream closes the handle.
      let src: fs.promises.FileHandle | null = null;
      try {
        src = await fs.promises.open(body.file, 'r');
        ContentLength = (await src.stat()).size;
      } catch (e) {
        await src?.close();
        throw new RemoteStorageError('IO_ERROR', { operation: 'put', key, storage: this.description, transient: false }, `cannot read ${body.file}: ${(e as Error).message}`, { cause: e });
      }
      Body = src.createReadStream();
      repeatable = false;
    } else if ('stream' in body) {
      // Sent with the length the caller gave; a stream that disagrees aborts the request (a short
      // one would otherwise leave the server waiting for the missing bytes until the timeout).
      const counted = lengthChecked(body.stream, body.length, key, abort);
      Body = counted.stream;
      lengthError = counted.error;
      ContentLength = body.length;
      repeatable = false;
    } else {
      throw new StrataError('BAD_ARGUMENT', `put ${JSON.stringify(key)}: body must be a Uint8Array, { file } or { stream, length }`);
    }
    const cmd = new PutObjectCommand({
      Bucket: this.bucket,
      Key,
      Body,
      ContentLength,
      ...(options.ifNoneMatch !== undefined ? { IfNoneMatch: '*' } : {}),
      // radosgw compares If-Match literally and answers 412 to the quoted form S3 itself returns.
      ...(options.ifMatch !== undefined ? { IfMatch: normalizeEtag(options.ifMatch) } : {}),
    });
    try {
      const res = await (conditional || !repeatable ? this.onceClient : this.client).send(cmd, { abortSignal: abort.signal });
      if (res.ETag === undefined) throw new Error('the server answered without an ETag');
      return { etag: normalizeEtag(res.ETag) };
    } catch (e) {
      const wrongLength = lengthError();
      if (wrongLength !== null) throw wrongLength;
      const err = this.failure('put', key, e);
      // S3 answers If-Match on a missing key with 404: for the caller, its ETag is simply not current.
      if (options.ifMatch !== undefined && err.code === 'REMOTE_NOT_FOUND') {
        throw new RemoteStorageError('REMOTE_PRECONDITION_FAILED', { operation: 'put', key, storage: this.description, httpStatus: 404, transient: false },
          'compare-and-swap on a key that does not exist', { cause: e });
      }
      throw err;
    } finally {
      if (!(body instanceof Uint8Array) && 'file' in body) (Body as fs.ReadStream).destroy();
    }
  }

  async get(key: string, options: GetOptions = {}): Promise<Buffer> {
    const Key = this.fullKey(key);
    const r = options.range;
    if (r !== undefined) {
      validateRange(r);
      if (r.length === 0) {
        // S3 cannot express an empty range; the answer is empty if the object exists.
        if ((await this.head(key)) === null) {
          throw new RemoteStorageError('REMOTE_NOT_FOUND', { operation: 'get', key, storage: this.description, httpStatus: 404, transient: false }, 'no such object');
        }
        return Buffer.alloc(0);
      }
    }
    const Range = r === undefined ? undefined : `bytes=${r.offset}-${r.length === undefined ? '' : r.offset + r.length - 1}`;
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key, ...(Range !== undefined ? { Range } : {}) }));
      if (res.Body === undefined) return Buffer.alloc(0);
      const bytes = await res.Body.transformToByteArray();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (e) {
      const status = (e as SdkFailure | null)?.$metadata?.httpStatusCode;
      if (status === 416 && r !== undefined) {
        // An empty object has no byte 0: as the local backend, give back nothing.
        if (r.offset === 0) return Buffer.alloc(0);
        throw new StrataError('BAD_ARGUMENT', `get ${JSON.stringify(key)}: range starts at ${r.offset}, past the end of the object`);
      }
      throw this.failure('get', key, e);
    }
  }

  async getToFile(key: string, file: string): Promise<RemoteObjectInfo> {
    const Key = this.fullKey(key);
    let res;
    try {
      res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key }));
    } catch (e) {
      throw this.failure('get', key, e);
    }
    await writeFileFromStream(file, res.Body as Readable, key, this.description);
    return {
      key,
      size: res.ContentLength ?? (await fs.promises.stat(file)).size,
      etag: normalizeEtag(res.ETag ?? ''),
      lastModified: res.LastModified ?? new Date(0),
    };
  }

  async head(key: string): Promise<RemoteObjectInfo | null> {
    const Key = this.fullKey(key);
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }));
      return { key, size: res.ContentLength ?? 0, etag: normalizeEtag(res.ETag ?? ''), lastModified: res.LastModified ?? new Date(0) };
    } catch (e) {
      if ((e as SdkFailure | null)?.$metadata?.httpStatusCode !== 404) throw this.failure('head', key, e);
    }
    // A HEAD answer has no body to tell a missing key from a missing bucket: ask about the bucket once.
    if (!this.bucketSeen) {
      try {
        await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
        this.bucketSeen = true;
      } catch (e) {
        const f = e as SdkFailure;
        const detail = f.$metadata?.httpStatusCode === 404 ? `no such bucket ${JSON.stringify(this.bucket)}` : String(f.message ?? e);
        throw new RemoteStorageError('REMOTE_ERROR', { operation: 'head', key, storage: this.description, httpStatus: f.$metadata?.httpStatusCode ?? null,
          transient: f.$metadata?.httpStatusCode === undefined || f.$metadata.httpStatusCode >= 500 }, detail, { cause: e });
      }
    }
    return null;
  }

  async list(prefix: string): Promise<RemoteObjectInfo[]> {
    if (typeof prefix !== 'string') throw new StrataError('BAD_ARGUMENT', `list: prefix must be a string, got ${JSON.stringify(prefix)}`);
    if (this.closed) throw new StrataError('CLOSED', `${this.description} was closed`);
    const base = this.prefix ? `${this.prefix}/` : '';
    const out: RemoteObjectInfo[] = [];
    let token: string | undefined;
    do {
      let res;
      try {
        res = await this.client.send(new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: base + prefix,
          MaxKeys: this.listPageSize,
          ...(token !== undefined ? { ContinuationToken: token } : {}),
        }));
      } catch (e) {
        throw this.failure('list', prefix, e);
      }
      for (const o of res.Contents ?? []) {
        if (o.Key === undefined || !o.Key.startsWith(base)) continue;
        out.push({ key: o.Key.slice(base.length), size: o.Size ?? 0, etag: normalizeEtag(o.ETag ?? ''), lastModified: o.LastModified ?? new Date(0) });
      }
      token = res.IsTruncated === true ? res.NextContinuationToken : undefined;
      if (res.IsTruncated === true && token === undefined) {
        throw new RemoteStorageError('REMOTE_ERROR', { operation: 'list', key: prefix, storage: this.description, transient: false }, 'a truncated listing without a continuation token');
      }
    } while (token !== undefined);
    return sortByKey(out);
  }

  async delete(key: string): Promise<void> {
    const Key = this.fullKey(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }));
    } catch (e) {
      const err = this.failure('delete', key, e);
      if (err.code === 'REMOTE_NOT_FOUND') return;
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.client.destroy();
    this.onceClient.destroy();
  }
}

/**
 * `source` passed through a counter. A stream that gives more or fewer than `length` bytes aborts
 * the request through `abort` (a short one would otherwise leave the server waiting for the
 * missing bytes until the idle timeout); `error()` then says what was wrong.
 */
function lengthChecked(source: Readable, length: number, key: string, abort: AbortController): { stream: Readable; error: () => StrataError | null } {
  let seen = 0;
  let wrong: StrataError | null = null;
  const fail = (what: string): void => {
    wrong ??= new StrataError('BAD_ARGUMENT', `put ${JSON.stringify(key)}: the stream gave ${what} bytes, its length said ${length}`);
    abort.abort(wrong);
  };
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > length) {
        fail(`more than ${length}`);
        cb();
      } else cb(null, chunk);
    },
    flush(cb) {
      if (seen !== length) fail(String(seen));
      cb();
    },
  });
  source.on('error', (e) => counter.destroy(e));
  source.pipe(counter);
  return { stream: counter, error: () => wrong };
}
