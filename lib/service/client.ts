/**
 * StrataClient: one connection to a page service (docs/PROTOCOL.md). Requests are pipelined — each
 * gets a fresh id and is written at once; answers are matched by id in whatever order they come —
 * and each has a deadline. The read calls take and return what Timeline's do, so code written
 * against an embedded Timeline runs against a server.
 */
import * as net from 'node:net';
import { describeValue, StrataError, isErrorCode } from '../errors';
import { encodeKey, KEY_SIZE, type PageKey } from '../key';
import { checkLsn, LSN_MAX, type Lsn } from '../lsn';
import { PAGE_SIZE } from '../record';
import { checkRelTag, checkU32 } from '../pg/keyspace';
import type { RelationInfo, RelTag } from '../timeline';
import {
  decodeServerFrame, encodeHello, encodeRequest, FrameReader, MAX_FRAME_BYTES, PROTOCOL_VERSION, type HelloOk, type Request,
  type RequestLsns, type ServerFrame,
} from './frames';
import { checkHost, checkOptionalMs, checkPort } from './arg_checks';
import { TickCork } from './tick_cork';

/** Default deadline of one request (ms): generous, since a read may wait for WAL (10 s by default on the server). */
export const DEFAULT_REQUEST_DEADLINE_MS = 30_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const MAX_REQUEST_ID = 0xffff_ffff;

export interface ClientOptions {
  host: string;
  port: number;
  tenantId: string;
  timelineId: string;
  /** The JWT; omit (or '') for a server started without auth. */
  token?: string;
  /** Connect and handshake within this long (default 10 s). */
  connectTimeoutMs?: number;
  /** Default deadline of each request (default 30 s); per call: `{ deadlineMs }`. */
  requestDeadlineMs?: number;
}

export interface RequestOptions {
  /** The client promises the data did not change between this LSN and the request's (default: the request LSN; for LSN_MAX, 0). */
  notModifiedSince?: Lsn;
  /** Fail with DEADLINE_EXCEEDED if no answer comes within this long. */
  deadlineMs?: number;
}

/** Page reads may land in the caller's buffer, as PostgreSQL's smgrread fills a shared buffer. */
export interface PageReadOptions extends RequestOptions {
  /**
   * Where the page(s) go: page i at `into[8192·i …]`; the call resolves with views of it. It must
   * hold every page asked for and must not be reused before the call settles. Without it each
   * answer is a fresh allocation, and a client reading tens of thousands of pages a second makes
   * V8 run a full collection several times a second (ms-long pauses).
   */
  into?: Buffer;
}

/** The caller's destination, checked before anything is sent (BAD_ARGUMENT names what is wrong). */
function checkInto(into: unknown, pages: number): Buffer | undefined {
  if (into === undefined) return undefined;
  if (!Buffer.isBuffer(into)) throw new StrataError('BAD_ARGUMENT', `opts.into must be a Buffer: got ${describeValue(into)}`);
  if (into.length < pages * PAGE_SIZE) throw new StrataError('BAD_ARGUMENT', `opts.into holds ${into.length} bytes; ${pages} page(s) need ${pages * PAGE_SIZE}`);
  return into;
}

/**
 * ClientOptions from a caller (connect, ClientPool, RetryingClient): BAD_ARGUMENT naming the field,
 * before any socket is opened (net.connect throws a RangeError on a bad port, a TypeError on a bad host).
 */
export function checkClientOptions(o: unknown): asserts o is ClientOptions {
  if (o === null || typeof o !== 'object') throw new StrataError('BAD_ARGUMENT', `client options must be { host, port, tenantId, timelineId }: got ${describeValue(o)}`);
  const c = o as Record<string, unknown>;
  checkHost(c.host, 'client host');
  checkPort(c.port, 'client port', 1);
  for (const f of ['tenantId', 'timelineId'] as const) {
    if (typeof c[f] !== 'string') throw new StrataError('BAD_ARGUMENT', `client ${f} must be a string: got ${describeValue(c[f])}`);
  }
  if (c.token !== undefined && typeof c.token !== 'string') throw new StrataError('BAD_ARGUMENT', `client token must be a string: got ${describeValue(c.token)}`);
  checkOptionalMs(c.connectTimeoutMs, 'connectTimeoutMs', 1);
  checkOptionalMs(c.requestDeadlineMs, 'requestDeadlineMs', 1);
}

function checkRequestOptions(opts: unknown): void {
  if (opts === undefined) return;
  if (opts === null || typeof opts !== 'object') throw new StrataError('BAD_ARGUMENT', `request options must be an object: got ${describeValue(opts)}`);
  const o = opts as Record<string, unknown>;
  checkOptionalMs(o.deadlineMs, 'deadlineMs', 1);
  if (o.dbOid !== undefined && o.dbOid !== null) checkU32(o.dbOid, 'dbOid');
}

/** Every key of a request, as encodeKey checks them (a forkNum of 256 or a blockNum of 1.5 would otherwise be truncated on the wire). */
function checkKeys(keys: readonly unknown[]): void {
  for (const k of keys) encodeKey(k as PageKey, KEY_SCRATCH);
}

/** Where checkKeys encodes (and discards) each key: one buffer for the process, not one per request. */
const KEY_SCRATCH = Buffer.allocUnsafe(KEY_SIZE);

/** THROTTLED: the server did not run the request; `retryAfterMs` says when it would fit the tenant's limit. */
export class ThrottledError extends StrataError {
  constructor(readonly retryAfterMs: number, message: string) {
    super('THROTTLED', message);
    this.name = 'ThrottledError';
  }
}

type Settle = (frame: ServerFrame) => void;

interface Pending {
  settle: Settle;
  fail: (e: StrataError) => void;
  /** performance.now() after which the request fails with DEADLINE_EXCEEDED. */
  deadlineAt: number;
  deadlineMs: number;
}

/**
 * The pages of one answer copied out of the socket's buffer into the caller's `into`, or else one
 * allocation (a page kept by the caller must not pin the chunk it arrived in; one buffer per batch
 * rather than per page spares the garbage collector).
 */
function copyPages(pages: readonly Buffer[], into?: Buffer): Buffer[] {
  const all = into ?? Buffer.allocUnsafe(pages.length * PAGE_SIZE);
  return pages.map((p, i) => {
    p.copy(all, i * PAGE_SIZE);
    return all.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE);
  });
}

export class StrataClient {
  private readonly reader: FrameReader;
  private readonly pending = new Map<number, Pending>();
  /** Ids whose caller gave up (deadline): their late answers are dropped, not treated as strays. */
  private readonly abandoned = new Set<number>();
  private nextId = 1;
  private closedError: StrataError | null = null;
  /** One timer for every deadline (not one per request): armed for the earliest pending one. */
  private deadlineTimer: NodeJS.Timeout | null = null;
  private deadlineTimerAt = Infinity;
  /** Requests written in one tick go out in one writev. */
  private readonly cork: TickCork;
  private readonly closedPromise: Promise<void>;

  private constructor(private readonly socket: net.Socket, readonly server: HelloOk, private readonly deadlineMs: number, leftover: FrameReader) {
    this.cork = new TickCork(socket);
    this.reader = leftover;
    this.closedPromise = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e) => this.shutdown(new StrataError('CONNECTION_CLOSED', `connection to the page service failed: ${e.message}`, { cause: e })));
    socket.on('close', () => this.shutdown(new StrataError('CONNECTION_CLOSED', 'the page service closed the connection')));
    this.onData(Buffer.alloc(0));
  }

  /** Connect, handshake, and resolve once the server accepted (AUTH_FAILED, TIMELINE_NOT_FOUND … when it refused). */
  static connect(o: ClientOptions): Promise<StrataClient> {
    try {
      checkClientOptions(o);
    } catch (e) {
      return Promise.reject(e);
    }
    const timeoutMs = o.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const hello = encodeHello({ version: PROTOCOL_VERSION, tenantId: o.tenantId, timelineId: o.timelineId, token: o.token ?? '' });
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: o.host, port: o.port, noDelay: true });
      const reader = new FrameReader(MAX_FRAME_BYTES);
      let done = false;
      const finish = (e: StrataError | null, ok?: HelloOk): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.removeListener('data', onData);
        socket.removeListener('error', onError);
        socket.removeListener('close', onClose);
        if (e !== null) {
          socket.destroy();
          reject(e);
        } else {
          socket.pause();
          resolve(new StrataClient(socket, ok as HelloOk, o.requestDeadlineMs ?? DEFAULT_REQUEST_DEADLINE_MS, reader));
          socket.resume();
        }
      };
      const timer = setTimeout(() => finish(new StrataError('CONNECTION_CLOSED', `no handshake answer from ${o.host}:${o.port} within ${timeoutMs} ms`)), timeoutMs);
      const onError = (e: Error): void => finish(new StrataError('CONNECTION_CLOSED', `connect to ${o.host}:${o.port}: ${e.message}`, { cause: e }));
      const onClose = (): void => finish(new StrataError('CONNECTION_CLOSED', `${o.host}:${o.port} closed the connection during the handshake`));
      const onData = (chunk: Buffer): void => {
        reader.push(chunk);
        try {
          const raw = reader.next();
          if (raw === null) return;
          const f = decodeServerFrame(raw);
          if (f.kind === 'helloOk') finish(null, f.helloOk);
          else if (f.kind === 'refuse' || f.kind === 'violation') finish(new StrataError(isErrorCode(f.code) ? f.code : 'PROTOCOL_ERROR', `page service refused: ${f.message}`));
          else finish(new StrataError('PROTOCOL_ERROR', `the server answered the handshake with a ${f.kind} frame`));
        } catch (e) {
          finish(e instanceof StrataError ? e : new StrataError('PROTOCOL_ERROR', String(e)));
        }
      };
      socket.on('data', onData);
      socket.on('error', onError);
      socket.on('close', onClose);
      socket.write(hello);
    });
  }

  /** Requests sent and not yet answered (nor given up). */
  get inFlight(): number {
    return this.pending.size;
  }

  get isClosed(): boolean {
    return this.closedError !== null;
  }

  /** Resolves once the socket has closed (by either side, for any reason). */
  whenClosed(): Promise<void> {
    return this.closedPromise;
  }

  getPage(key: PageKey, lsn: Lsn, opts?: PageReadOptions): Promise<Buffer> {
    let into: Buffer | undefined;
    try {
      into = checkInto(opts?.into, 1);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.request((id, lsns) => ({ kind: 'getPage', id, lsns, key }), lsn, opts, (f) => (f.kind === 'page' ? copyPages([f.page], into)[0] : undefined), () => checkKeys([key]));
  }

  /** Many pages at one LSN; more than the server's batch limit are split into several pipelined requests. */
  async getPages(keys: readonly PageKey[], lsn: Lsn, opts?: PageReadOptions): Promise<Buffer[]> {
    if (this.closedError !== null) throw this.closedError;
    if (!Array.isArray(keys)) throw new StrataError('BAD_ARGUMENT', `keys must be an array of page keys: got ${describeValue(keys)}`);
    // Every part is checked before the first goes out: a bad key refuses the whole call, not its batch.
    checkKeys(keys);
    checkLsn(lsn, 'lsn');
    checkRequestOptions(opts);
    const into = checkInto(opts?.into, keys.length);
    if (keys.length === 0) return [];
    const batch = this.server.maxBatchPages;
    const parts: Promise<Buffer[]>[] = [];
    for (let i = 0; i < keys.length; i += batch) {
      const part = keys.slice(i, i + batch);
      const dest = into?.subarray(i * PAGE_SIZE, (i + part.length) * PAGE_SIZE);
      parts.push(this.request((id, lsns) => ({ kind: 'getPages', id, lsns, keys: part }), lsn, opts, (f) => (f.kind === 'pages' && f.pages.length === part.length ? copyPages(f.pages, dest) : undefined)));
    }
    return (await Promise.all(parts)).flat();
  }

  getRelSize(rel: RelTag, lsn: Lsn, opts?: RequestOptions): Promise<number> {
    return this.request((id, lsns) => ({ kind: 'getRelSize', id, lsns, rel }), lsn, opts, (f) => (f.kind === 'relSize' ? f.nblocks : undefined), () => checkRelTag(rel));
  }

  /** Whether the relation fork exists at `lsn` (smgrexists). */
  exists(rel: RelTag, lsn: Lsn, opts?: RequestOptions): Promise<boolean> {
    return this.request((id, lsns) => ({ kind: 'exists', id, lsns, rel }), lsn, opts, (f) => (f.kind === 'existsResult' ? f.exists : undefined), () => checkRelTag(rel));
  }

  listRelations(lsn: Lsn, opts?: RequestOptions & { dbOid?: number }): Promise<RelationInfo[]> {
    const out: RelationInfo[] = [];
    return this.request((id, lsns) => ({ kind: 'listRelations', id, lsns, dbOid: opts?.dbOid ?? null }), lsn, opts, (f) => {
      if (f.kind !== 'relations') return undefined;
      out.push(...f.relations);
      return f.final ? out : null;
    });
  }

  /** Close the connection; requests in flight fail with CONNECTION_CLOSED. */
  async close(): Promise<void> {
    this.shutdown(new StrataError('CONNECTION_CLOSED', 'the client was closed'));
    this.socket.end();
    const t = setTimeout(() => this.socket.destroy(), 1_000);
    await this.closedPromise;
    clearTimeout(t);
  }

  /**
   * Send one request and resolve with `accept`'s value for its answer: undefined means the frame
   * is of the wrong kind (the server broke the protocol), null means "more frames follow".
   */
  private request<T>(make: (id: number, lsns: RequestLsns) => Request, lsn: Lsn, opts: RequestOptions | undefined, accept: (f: ServerFrame) => T | null | undefined, check?: () => void): Promise<T> {
    if (this.closedError !== null) return Promise.reject(this.closedError);
    let frame: Buffer;
    let id: number;
    try {
      check?.();
      checkLsn(lsn, 'lsn');
      checkRequestOptions(opts);
      const nms = opts?.notModifiedSince ?? (lsn === LSN_MAX ? 0n : lsn);
      checkLsn(nms, 'notModifiedSince');
      id = this.takeId();
      frame = encodeRequest(make(id, { requestLsn: lsn, notModifiedSince: nms }));
    } catch (e) {
      return Promise.reject(e instanceof RangeError ? new StrataError('BAD_ARGUMENT', `a request field is out of range: ${e.message}`) : e);
    }
    const deadline = opts?.deadlineMs ?? this.deadlineMs;
    return new Promise<T>((resolve, reject) => {
      const settle: Settle = (f) => {
        if (f.kind === 'error') {
          this.done(id);
          reject(new StrataError(isErrorCode(f.code) ? f.code : 'SERVER_ERROR', f.message));
          return;
        }
        if (f.kind === 'throttled') {
          this.done(id);
          reject(new ThrottledError(f.retryAfterMs, f.message));
          return;
        }
        const v = accept(f);
        if (v === undefined) {
          this.shutdown(new StrataError('PROTOCOL_ERROR', `request ${id} was answered with a ${f.kind} frame`));
          return;
        }
        if (v === null) return;
        this.done(id);
        resolve(v);
      };
      const deadlineAt = performance.now() + deadline;
      this.pending.set(id, { settle, fail: reject, deadlineAt, deadlineMs: deadline });
      if (deadlineAt < this.deadlineTimerAt) this.armDeadlineTimer(deadlineAt);
      this.cork.hold();
      this.socket.write(frame);
    });
  }

  private done(id: number): void {
    this.pending.delete(id);
    if (this.pending.size === 0 && this.deadlineTimer !== null) {
      clearTimeout(this.deadlineTimer);
      this.deadlineTimer = null;
      this.deadlineTimerAt = Infinity;
    }
  }

  private armDeadlineTimer(at: number): void {
    if (this.deadlineTimer !== null) clearTimeout(this.deadlineTimer);
    this.deadlineTimerAt = at;
    this.deadlineTimer = setTimeout(() => this.expireDeadlines(), Math.max(0, at - performance.now()));
  }

  /** Fail every request past its deadline; re-arm for the earliest left. */
  private expireDeadlines(): void {
    this.deadlineTimer = null;
    this.deadlineTimerAt = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (const [id, p] of this.pending) {
      if (p.deadlineAt <= now) {
        this.pending.delete(id);
        this.abandoned.add(id);
        p.fail(new StrataError('DEADLINE_EXCEEDED', `request ${id} got no answer within ${p.deadlineMs} ms`));
      } else if (p.deadlineAt < next) {
        next = p.deadlineAt;
      }
    }
    if (next < Infinity) this.armDeadlineTimer(next);
  }

  private takeId(): number {
    for (let tries = 0; tries < 1_000_000; tries++) {
      const id = this.nextId;
      this.nextId = id === MAX_REQUEST_ID ? 1 : id + 1;
      if (!this.pending.has(id) && !this.abandoned.has(id)) return id;
    }
    throw new StrataError('BAD_ARGUMENT', 'no free request id: a million requests in flight');
  }

  private onData(chunk: Buffer): void {
    this.reader.push(chunk);
    try {
      for (;;) {
        const raw = this.reader.next();
        if (raw === null) return;
        const f = decodeServerFrame(raw);
        if (f.kind === 'violation') {
          this.shutdown(new StrataError('PROTOCOL_ERROR', `the server closed the connection: ${f.message}`));
          return;
        }
        if (f.kind === 'helloOk' || f.kind === 'refuse') throw new StrataError('PROTOCOL_ERROR', `a ${f.kind} frame after the handshake`);
        const p = this.pending.get(f.id);
        if (p !== undefined) {
          p.settle(f);
        } else if (this.abandoned.has(f.id)) {
          if (f.kind !== 'relations' || f.final) this.abandoned.delete(f.id);
        } else {
          throw new StrataError('PROTOCOL_ERROR', `an answer to request id ${f.id}, which is not in flight`);
        }
      }
    } catch (e) {
      this.shutdown(e instanceof StrataError ? e : new StrataError('PROTOCOL_ERROR', String(e)));
    }
  }

  /** Fail everything in flight with `e` and close the socket; later calls reject with `e`. */
  private shutdown(e: StrataError): void {
    if (this.closedError === null) this.closedError = e;
    if (this.deadlineTimer !== null) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = null;
    this.deadlineTimerAt = Infinity;
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.fail(e);
    }
    // A broken stream cannot be read on; a plain close is left to close() or the peer.
    if (e.code !== 'CONNECTION_CLOSED') this.socket.destroy();
  }
}
