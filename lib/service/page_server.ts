/**
 * The page service (docs/PROTOCOL.md): a TCP server on one Repository answering GetPage@LSN and
 * relation requests from pipelining clients. Each connection is a small state machine —
 * handshake → authenticating → ready → draining → closed — that reads frames, runs up to
 * `maxInFlight` requests at once through the timeline's async read path (so the event loop stays
 * free while the native core reads from disk on worker threads), and writes each answer whole, in
 * completion order. A frame it cannot accept gets a PROTOCOL_VIOLATION frame and a close; nothing a
 * client sends can throw out of a socket handler, so other connections never notice.
 */
import * as net from 'node:net';
import { describeValue, isStrataError, StrataError } from '../errors';
import { checkHost, checkOptionalFunction, checkOptionalMs, checkOptionalObject, checkPort } from './arg_checks';
import type { PageKey } from '../key';
import type { Lsn } from '../lsn';
import type { Repository } from '../repository';
import type { Timeline } from '../timeline';
import { PAGE_SIZE } from '../record';
import { Authenticator, type AuthConfig } from './auth';
import { type Clock, monotonicClock, Throttle, type ThrottleDecision, type ThrottleLimit } from './throttle';
import {
  allocPagesFrame, decodeClientFrame, DEFAULT_MAX_IN_FLIGHT, describeFrameType, encodeError, encodeExistsResult, encodeHelloOk, encodePage, encodePages, encodeRefuse,
  encodeRelations, encodeRelSize, encodeThrottled, encodeViolation, FrameReader, MAX_BATCH_PAGES, MAX_FRAME_BYTES, MIN_PROTOCOL_VERSION,
  PAGE_FRAME_PAGE_OFFSET, PAGES_FRAME_PAGES_OFFSET, pagesFrameBytes, PROTOCOL_VERSION, type Hello, type Request, type RequestLsns,
  type GetPageScratch, newGetPageScratch, type RawFrame, writePagesFrameHeader, FRAME_HEADER_BYTES,
} from './frames';
import { FramePool } from './frame_pool';

/** A client that has not completed its handshake by then is disconnected. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/**
 * Answers a connection may have queued in its socket before the server stops reading it (the client
 * is not reading fast enough). It must hold what a pipelining client keeps in flight: Node's own
 * mark (16 KiB, two pages) cost a round of the event loop per two answers, and 1 MiB (four 32-page
 * batches) tripled the p50 of GetPages(32) at depth 4 (bench:serve, 8 ms → 2.5 ms at 4 MiB).
 */
const WRITE_BUFFER_LIMIT_BYTES = 4 * MAX_FRAME_BYTES;
/**
 * Reading resumes once the queued answers fall to this (checked as each write completes), not
 * only when the socket has drained completely: a client keeping more than the limit in flight then
 * finds its next requests read while the last answers are still leaving, instead of the pipeline
 * emptying between rounds.
 */
const WRITE_BUFFER_RESUME_BYTES = MAX_FRAME_BYTES;
/**
 * The answers of one tick gather in one buffer of this size (cached pages are read straight into
 * it) and leave in one write: a socket write per answer cost about 150 B of stream bookkeeping per
 * request, garbage that at 50 k requests/s was a scavenge every few hundred ms and the p99 of a
 * half-loaded connection. An answer bigger than this is written on its own, after the batch.
 */
export const ANSWER_BATCH_BYTES = 16 * (FRAME_HEADER_BYTES + PAGE_SIZE);
/** After the server ends a connection, how long the peer has to close its side before it is destroyed. */
const LINGER_MS = 2_000;
/** close(): connections still busy after this long are destroyed (a read stuck waiting for WAL). */
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;
const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/**
 * How long a request waits for ingest to reach its LSN unless `waitLsnTimeoutMs` says otherwise:
 * well inside the client's default deadline (30 s), so a client hears LSN_TIMEOUT rather than
 * giving up on its own.
 */
export const DEFAULT_SERVICE_WAIT_LSN_TIMEOUT_MS = 10_000;

export interface ServerOptions {
  /** Token checking (docs/PROTOCOL.md, "Authentication"). Required: `{ disabled: true }` turns it off. */
  auth: AuthConfig;
  /** Requests per connection in flight before the server stops reading it (default 32, at most 65535). */
  maxInFlight?: number;
  /** How long a request waits for ingest to reach its effective LSN (default 10 s). */
  waitLsnTimeoutMs?: number;
  /** close(): how long to wait for in-flight requests before destroying connections (default 30 s). */
  drainTimeoutMs?: number;
  /** Told about connections and violations. */
  onEvent?: (event: ServerEvent) => void;
  /**
   * A structured logger (a pino Logger, or anything with its level methods): connections opened and
   * closed, handshakes refused (auth failures among them), protocol violations, requests that failed
   * with an unexpected error, shutdown. `strata serve --json` passes pino writing JSON lines to stdout.
   */
  logger?: ServiceLogger;
  /**
   * Per-tenant GCRA throttle on page requests (docs/PROTOCOL.md, "Throttling"): the limit of every
   * tenant without one of its own (`server.throttle.setLimit`). Omitted: tenants are not throttled.
   */
  throttle?: ThrottleLimit;
  /** The throttle's clock (ms, monotonic); tests inject a virtual one. */
  clock?: Clock;
  /** Told about every answered request (more listeners: `addRequestListener`; the admin API's metrics are one). */
  onRequest?: (r: RequestOutcome) => void;
}

/** What became of one request: for per-tenant metrics. */
export interface RequestOutcome {
  tenantId: string;
  kind: Request['kind'];
  /** Pages the request asked for (GetPages: its keys; others 1). */
  pages: number;
  outcome: 'ok' | 'error' | 'throttled';
  /** From taking the request up to its answer being written. */
  seconds: number;
}

/** The part of pino's Logger the server uses: `logger.info({ event, … }, 'message')`. */
export interface ServiceLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export type ServerEvent =
  | { event: 'connection'; remote: string }
  | { event: 'ready'; remote: string; tenantId: string; timelineId: string }
  | { event: 'refused'; remote: string; code: string; message: string }
  | { event: 'violation'; remote: string; message: string }
  | { event: 'closed'; remote: string; requests: number }
  /** A request failed with an error that is not an ordinary answer (SERVER_ERROR, IO_ERROR, CORRUPT …). */
  | { event: 'request-failed'; remote: string; tenantId: string; kind: Request['kind']; code: string; message: string }
  | { event: 'shutdown'; connections: number }
  | { event: 'stopped'; requests: number };

export interface ServerStats {
  connections: number;
  connectionsTotal: number;
  requests: number;
  errors: number;
  violations: number;
  refused: number;
  /** Requests answered THROTTLED. */
  throttled: number;
  /** Most requests one connection had in flight at once (never above maxInFlight). */
  peakInFlight: number;
}

const EVENT_MESSAGES: Record<ServerEvent['event'], string> = {
  connection: 'connection opened',
  ready: 'handshake accepted',
  refused: 'handshake refused',
  violation: 'protocol violation: connection closed',
  closed: 'connection closed',
  'request-failed': 'request failed',
  shutdown: 'shutting down: draining connections',
  stopped: 'stopped',
};

/** Error codes that are a request's ordinary answer, not worth a log line (anything else is logged). */
const ANSWER_CODES: ReadonlySet<string> = new Set([
  'PAGE_NOT_FOUND', 'LSN_TIMEOUT', 'LSN_GC_CUTOFF', 'REL_NOT_FOUND', 'BAD_ARGUMENT', 'TIMELINE_NOT_FOUND', 'CLOSED', 'WAL_UNSUPPORTED',
]);

type ConnState = 'handshake' | 'authenticating' | 'ready' | 'draining' | 'closed';

export class Server {
  private readonly auth: Authenticator;
  private readonly maxInFlight: number;
  private readonly waitLsnTimeoutMs: number;
  private readonly drainTimeoutMs: number;
  /** @internal */
  readonly clock: Clock;
  private readonly tcp: net.Server;
  private readonly connections = new Set<Connection>();
  private readonly requestListeners = new Set<(r: RequestOutcome) => void>();
  private closing: Promise<void> | null = null;
  /** Per-tenant limits, changeable while the server runs (the admin API's PUT …/throttle). */
  readonly throttle: Throttle;
  /** @internal Page answer frames, reused once written (lib/service/frame_pool.ts). */
  readonly framePool = new FramePool();
  readonly counters: Omit<ServerStats, 'connections'> = { connectionsTotal: 0, requests: 0, errors: 0, violations: 0, refused: 0, throttled: 0, peakInFlight: 0 };

  constructor(readonly repository: Repository, private readonly options: ServerOptions) {
    if (options === null || typeof options !== 'object' || options.auth === undefined) {
      throw new StrataError('BAD_ARGUMENT', 'Server needs options.auth: { keysFile } or { keys } (or { disabled: true } to serve without auth)');
    }
    this.auth = Authenticator.fromConfig(options.auth);
    const m = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    if (!Number.isInteger(m) || m < 1 || m > 0xffff) throw new StrataError('BAD_ARGUMENT', `maxInFlight must be an integer in [1, 65535]: got ${describeValue(m)}`);
    this.maxInFlight = m;
    checkOptionalMs(options.waitLsnTimeoutMs, 'waitLsnTimeoutMs');
    checkOptionalMs(options.drainTimeoutMs, 'drainTimeoutMs');
    for (const f of ['onEvent', 'clock', 'onRequest'] as const) checkOptionalFunction(options[f], f);
    checkOptionalObject(options.logger, 'logger');
    this.waitLsnTimeoutMs = options.waitLsnTimeoutMs ?? DEFAULT_SERVICE_WAIT_LSN_TIMEOUT_MS;
    this.drainTimeoutMs = options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
    this.clock = options.clock ?? monotonicClock;
    this.throttle = new Throttle(options.throttle ?? null, this.clock);
    if (options.onRequest !== undefined) this.requestListeners.add(options.onRequest);
    this.tcp = net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => this.accept(socket));
  }

  get authEnabled(): boolean {
    return this.auth.enabled;
  }

  /** Start listening; resolves with the address bound (port 0 picks a free port). */
  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    try {
      checkHost(host, 'listen host');
      checkPort(port, 'listen port', 0);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => reject(new StrataError('IO_ERROR', `listen on ${host}:${port}: ${e.message}`, { cause: e }));
      this.tcp.once('error', onError);
      this.tcp.listen(port, host, () => {
        this.tcp.removeListener('error', onError);
        const a = this.tcp.address() as net.AddressInfo;
        resolve({ host: a.address, port: a.port });
      });
    });
  }

  get address(): { host: string; port: number } | null {
    const a = this.tcp.address();
    return a === null || typeof a === 'string' ? null : { host: a.address, port: a.port };
  }

  stats(): ServerStats {
    return { connections: this.connections.size, ...this.counters };
  }

  /**
   * Graceful stop: no new connections, no new requests read; every request taken up is answered,
   * then each connection is closed. The repository stays open (its owner closes it).
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.emit({ event: 'shutdown', connections: this.connections.size });
      const stopped = new Promise<void>((resolve) => this.tcp.close(() => resolve()));
      const conns = [...this.connections];
      for (const c of conns) c.drain();
      const drained = Promise.all(conns.map((c) => c.closed));
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          for (const c of this.connections) c.destroy();
          resolve();
        }, this.drainTimeoutMs);
      });
      await Promise.race([drained, timeout]);
      clearTimeout(timer);
      await stopped;
      this.emit({ event: 'stopped', requests: this.counters.requests });
    })();
    return this.closing;
  }

  private accept(socket: net.Socket): void {
    if (this.closing !== null) {
      socket.destroy();
      return;
    }
    const conn = new Connection(this, socket);
    this.connections.add(conn);
    this.counters.connectionsTotal++;
    void conn.closed.then(() => this.connections.delete(conn));
    this.emit({ event: 'connection', remote: conn.remote });
  }

  /** @internal */
  emit(e: ServerEvent): void {
    try {
      this.options.onEvent?.(e);
      const log = this.options.logger;
      if (log !== undefined) {
        const msg = EVENT_MESSAGES[e.event];
        if (e.event === 'refused' || e.event === 'violation') log.warn(e, msg);
        else if (e.event === 'request-failed') log.error(e, msg);
        else log.info(e, msg);
      }
    } catch {
      // A listener's failure is not the connection's.
    }
  }

  /** Be told about every request answered from now on (per-tenant metrics). */
  addRequestListener(l: (r: RequestOutcome) => void): void {
    this.requestListeners.add(l);
  }

  removeRequestListener(l: (r: RequestOutcome) => void): void {
    this.requestListeners.delete(l);
  }

  /** @internal Whether anyone listens to request outcomes (else the per-request clock reads are skipped). */
  get hasRequestListeners(): boolean {
    return this.requestListeners.size > 0;
  }

  /** @internal */
  reportRequest(r: RequestOutcome): void {
    for (const l of this.requestListeners) {
      try {
        l(r);
      } catch {
        // A listener's failure is not the request's.
      }
    }
  }

  /** @internal The connection's settings. */
  get settings(): { auth: Authenticator; maxInFlight: number; waitLsnTimeoutMs: number } {
    return { auth: this.auth, maxInFlight: this.maxInFlight, waitLsnTimeoutMs: this.waitLsnTimeoutMs };
  }

  /** @internal */
  get isClosing(): boolean {
    return this.closing !== null;
  }
}

/** The LSN a request reads at (docs/PROTOCOL.md, "LSNs"), as Neon's effective request LSN. */
export function effectiveLsn(lsns: RequestLsns, lastRecordLsn: Lsn): Lsn {
  const { requestLsn, notModifiedSince } = lsns;
  if (requestLsn === 0n) throw new StrataError('BAD_ARGUMENT', 'requestLsn 0 is not an LSN (use LSN_MAX for the latest)');
  if (notModifiedSince > requestLsn) throw new StrataError('BAD_ARGUMENT', `notModifiedSince ${notModifiedSince} is above requestLsn ${requestLsn}`);
  if (notModifiedSince > lastRecordLsn) return notModifiedSince;
  return requestLsn < lastRecordLsn ? requestLsn : lastRecordLsn;
}

/** beginRequest's start time when no one listens for request durations. */
const NOT_TIMED = -1;

/** The LSN a cached read may use, or null when effectiveLsn refuses (the async path answers that). */
function cachedReadLsn(lsns: RequestLsns, lastRecordLsn: Lsn): Lsn | null {
  if (lsns.requestLsn === 0n || lsns.notModifiedSince > lsns.requestLsn) return null;
  return effectiveLsn(lsns, lastRecordLsn);
}

/** A frame named in a protocol violation's message. */
function frameWhere(raw: RawFrame): string {
  return `frame type ${describeFrameType(raw.type)} (request id ${raw.id}) at stream offset ${raw.streamOffset}`;
}

class Connection {
  readonly remote: string;
  readonly closed: Promise<void>;
  private state: ConnState = 'handshake';
  private readonly reader = new FrameReader(MAX_FRAME_BYTES);
  private readonly inFlight = new Set<number>();
  /** The one-key array a cached GetPage reads with (reused: no array per request). */
  private readonly oneKey: PageKey[] = [];
  /** Where the GetPage fast lane decodes each request (reused: no objects per request). */
  private readonly getPage: GetPageScratch = newGetPageScratch();
  /**
   * Frames handed to the socket, oldest first, each to go back to the pool (or null) when its
   * write callback runs: a stream calls those in write order, so one callback serves every write
   * and no closure is made per answer.
   */
  private readonly unsent: Array<Buffer | null> = [];
  private unsentHead = 0;
  private readonly onWritten = (): void => this.written();
  private readonly takeFrame = (bytes: number): Buffer => this.server.framePool.take(bytes);
  private timeline: Timeline | null = null;
  /** The version agreed in the handshake: THROTTLED frames need 2. */
  private version = PROTOCOL_VERSION;
  private writeBlocked = false;
  /**
   * This tick's answers, gathered (ANSWER_BATCH_BYTES) and written in one socket write when the
   * tick ends: no cork, no stream bookkeeping per answer.
   */
  private batch: Buffer | null = null;
  private batchLen = 0;
  /** The last view sendBatch wrote: reused while the batch buffer and length repeat (a view allocates). */
  private batchView: Buffer | null = null;
  private flushScheduled = false;
  private readonly flushAtTickEnd = (): void => {
    this.flushScheduled = false;
    this.sendBatch();
  };
  /** The client sent FIN: it will send nothing more but still reads the answers to what it sent. */
  private peerEnded = false;
  private paused = false;
  private requests = 0;
  private handshakeTimer: NodeJS.Timeout | null;
  private lingerTimer: NodeJS.Timeout | null = null;

  constructor(private readonly server: Server, private readonly socket: net.Socket) {
    this.remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    this.closed = new Promise((resolve) => socket.once('close', () => {
      this.state = 'closed';
      if (this.batch !== null) this.server.framePool.give(this.batch);
      this.batch = null;
      this.clearTimers();
      this.server.emit({ event: 'closed', remote: this.remote, requests: this.requests });
      resolve();
    }));
    socket.on('data', (chunk: Buffer) => {
      if (this.state === 'closed' || this.state === 'draining') return;
      this.reader.push(chunk);
      this.pump();
    });
    socket.on('drain', () => {
      this.writeBlocked = false;
      this.pump();
    });
    socket.on('end', () => {
      this.peerEnded = true;
      this.pump();
    });
    // A reset or a write to a vanished client: the socket closes; answers still running are dropped.
    socket.on('error', () => socket.destroy());
    this.handshakeTimer = setTimeout(() => {
      if (this.state === 'handshake' || this.state === 'authenticating') this.violation(0, `no handshake within ${HANDSHAKE_TIMEOUT_MS} ms`);
    }, HANDSHAKE_TIMEOUT_MS);
  }

  /** Stop reading requests; close once every request taken up is answered. */
  drain(): void {
    if (this.state === 'closed') return;
    this.state = 'draining';
    this.pauseReading();
    if (this.inFlight.size === 0) this.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Take frames off the buffer while requests may start; pause the socket otherwise. */
  private pump(): void {
    const max = this.server.settings.maxInFlight;
    while (this.state === 'handshake' || this.state === 'authenticating' || this.state === 'ready') {
      if (this.state === 'ready' && (this.inFlight.size >= max || this.writeBlocked)) {
        this.pauseReading();
        return;
      }
      let raw;
      try {
        if (this.state === 'ready') {
          const id = this.reader.peekGetPage(this.getPage);
          if (id !== 0 && !this.inFlight.has(id)) {
            this.reader.skipPeeked();
            this.startGetPage(id);
            continue;
          }
        }
        raw = this.reader.next();
        if (raw === null) break;
        const f = decodeClientFrame(raw);
        if (this.state === 'authenticating') throw new StrataError('PROTOCOL_ERROR', `${frameWhere(raw)}: sent before HELLO_OK`);
        if (this.state === 'handshake') {
          if (f.kind !== 'hello') throw new StrataError('PROTOCOL_ERROR', `${frameWhere(raw)}: the first frame must be HELLO`);
          this.hello(f.hello);
          continue;
        }
        if (f.kind === 'hello') throw new StrataError('PROTOCOL_ERROR', `${frameWhere(raw)}: a second HELLO`);
        if (this.inFlight.has(f.request.id)) throw new StrataError('PROTOCOL_ERROR', `${frameWhere(raw)}: request id ${f.request.id} is already in flight`);
        this.start(f.request);
      } catch (e) {
        this.violation(raw?.id ?? 0, isStrataError(e) ? e.message : String(e));
        return;
      }
    }
    if (this.state === 'ready') this.resumeReading();
    // Everything the client sent before its FIN is answered; then the connection closes (a partial
    // frame left in the buffer is a stream cut short and is dropped).
    if (this.peerEnded && this.inFlight.size === 0 && (this.state === 'ready' || this.state === 'handshake')) this.end();
  }

  private pauseReading(): void {
    if (!this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  private resumeReading(): void {
    if (this.paused && this.state === 'ready') {
      this.paused = false;
      this.socket.resume();
    }
  }

  private hello(h: Hello): void {
    this.state = 'authenticating';
    void this.authenticate(h).then(
      (tl) => {
        if (this.state !== 'authenticating') return;
        this.timeline = tl;
        this.version = h.version;
        this.state = this.server.isClosing ? 'draining' : 'ready';
        this.clearTimers();
        this.write(encodeHelloOk({ version: h.version, maxFrameBytes: MAX_FRAME_BYTES, maxInFlight: this.server.settings.maxInFlight, maxBatchPages: MAX_BATCH_PAGES, lastRecordLsn: tl.lastRecordLsn }));
        this.server.emit({ event: 'ready', remote: this.remote, tenantId: h.tenantId, timelineId: h.timelineId });
        if (this.state === 'draining') this.end();
        else this.pump();
      },
      (e: unknown) => {
        if (this.state !== 'authenticating') return;
        const code = isStrataError(e) ? e.code : 'SERVER_ERROR';
        const message = isStrataError(e) ? e.message.slice(code.length + 2) : String(e);
        this.server.counters.refused++;
        this.server.emit({ event: 'refused', remote: this.remote, code, message });
        this.write(encodeRefuse(code, message));
        this.end();
      },
    );
  }

  private async authenticate(h: Hello): Promise<Timeline> {
    if (h.version < MIN_PROTOCOL_VERSION || h.version > PROTOCOL_VERSION) {
      throw new StrataError('PROTOCOL_ERROR', `protocol version ${h.version} is not supported; this server speaks ${MIN_PROTOCOL_VERSION} to ${PROTOCOL_VERSION}`);
    }
    await this.server.settings.auth.checkPageAccess(h.token, h.tenantId);
    for (const [what, id] of [['tenantId', h.tenantId], ['timelineId', h.timelineId]] as const) {
      if (!ID_PATTERN.test(id)) throw new StrataError('BAD_ARGUMENT', `${what} ${JSON.stringify(id)} does not match ${ID_PATTERN}`);
    }
    if (this.server.isClosing) throw new StrataError('CLOSED', 'the server is shutting down');
    return this.server.repository.getTimeline(h.tenantId, h.timelineId);
  }

  private start(r: Request): void {
    const tl = this.timeline as Timeline;
    const started = this.beginRequest();
    const decision = this.server.throttle.take(tl.tenantId, r.kind === 'getPages' ? r.keys.length : 1);
    if (decision.allowed && (r.kind === 'getPage' || r.kind === 'getPages')) {
      // Pages the page cache holds are read now, straight into the answer frame: no promise, no
      // copy, no wait for the thread pool. Anything else (a block on disk, an LSN ingest has not
      // reached, an error to report) takes the async path.
      const answered = r.kind === 'getPage' ? this.readCachedPage(tl, r.id, r.key, r.lsns) : this.readCachedPages(tl, r.id, r.keys, r.lsns);
      if (answered) {
        this.answerCached(r.kind, r.kind === 'getPage' ? 1 : r.keys.length, started);
        return;
      }
    }
    this.startAsync(r, decision, started);
  }

  /**
   * start() for a GetPage the fast lane decoded into `this.getPage`: a cached answer makes no
   * objects; a miss copies the request out of the scratch for the async path.
   */
  private startGetPage(id: number): void {
    const tl = this.timeline as Timeline;
    const g = this.getPage;
    const started = this.beginRequest();
    const decision = this.server.throttle.take(tl.tenantId, 1);
    if (decision.allowed) {
      if (this.readCachedPage(tl, id, g.key, g)) {
        this.answerCached('getPage', 1, started);
        return;
      }
    }
    const request: Request = { kind: 'getPage', id, lsns: { requestLsn: g.requestLsn, notModifiedSince: g.notModifiedSince }, key: { ...g.key } };
    this.startAsync(request, decision, started);
  }

  /** Count a request; its start time when request listeners want durations, else NOT_TIMED. */
  private beginRequest(): number {
    this.requests++;
    this.server.counters.requests++;
    return this.server.hasRequestListeners ? this.server.clock() : NOT_TIMED;
  }

  private report(kind: Request['kind'], pages: number, outcome: RequestOutcome['outcome'], started: number): void {
    if (started === NOT_TIMED) return;
    const tenantId = (this.timeline as Timeline).tenantId;
    this.server.reportRequest({ tenantId, kind, pages, outcome, seconds: Math.max(0, this.server.clock() - started) / 1000 });
  }

  /** Account for a request readCached…() answered. */
  private answerCached(kind: Request['kind'], pages: number, started: number): void {
    if (this.inFlight.size + 1 > this.server.counters.peakInFlight) this.server.counters.peakInFlight = this.inFlight.size + 1;
    this.report(kind, pages, 'ok', started);
  }

  private startAsync(r: Request, decision: ThrottleDecision, started: number): void {
    const tl = this.timeline as Timeline;
    const pages = r.kind === 'getPages' ? r.keys.length : 1;
    this.inFlight.add(r.id);
    if (this.inFlight.size > this.server.counters.peakInFlight) this.server.counters.peakInFlight = this.inFlight.size;
    if (!decision.allowed) {
      // Answered at once, never queued: the request was not run and cost the tenant nothing.
      this.server.counters.throttled++;
      const message = `tenant ${tl.tenantId} is over its limit of ${this.server.throttle.limitOf(tl.tenantId)?.rate ?? '?'} pages/s; retry after ${Math.ceil(decision.retryAfterMs)} ms`;
      this.report(r.kind, pages, 'throttled', started);
      queueMicrotask(() => this.finish(r.id, [this.version >= 2 ? encodeThrottled(r.id, decision.retryAfterMs, message) : encodeError(r.id, 'THROTTLED', message)]));
      return;
    }
    this.run(r).then(
      (frames) => {
        this.report(r.kind, pages, 'ok', started);
        this.finish(r.id, frames);
      },
      (e: unknown) => {
        this.server.counters.errors++;
        this.report(r.kind, pages, 'error', started);
        const code = isStrataError(e) ? e.code : 'SERVER_ERROR';
        const message = isStrataError(e) ? e.message.slice(code.length + 2) : e instanceof Error ? e.message : String(e);
        if (!ANSWER_CODES.has(code)) this.server.emit({ event: 'request-failed', remote: this.remote, tenantId: tl.tenantId, kind: r.kind, code, message });
        this.finish(r.id, [encodeError(r.id, code, message)]);
      },
    ).catch(() => this.socket.destroy()); // a bug in answering must cost this connection, never the process
  }

  /** A GetPage whose page is cached: its answer written (true), or nothing done (false). */
  private readCachedPage(tl: Timeline, id: number, key: PageKey, lsns: RequestLsns): boolean {
    const lsn = cachedReadLsn(lsns, tl.lastRecordLsn);
    if (lsn === null) return false;
    this.oneKey[0] = key;
    return this.readCachedAnswer(tl, id, this.oneKey, null, lsn);
  }

  /** A GetPages whose pages are all cached: its answer written (true), or nothing done (false). */
  private readCachedPages(tl: Timeline, id: number, keys: PageKey[], lsns: RequestLsns): boolean {
    const lsn = cachedReadLsn(lsns, tl.lastRecordLsn);
    if (lsn === null) return false;
    return this.readCachedAnswer(tl, id, keys, keys.length, lsn);
  }

  /**
   * Read cached pages straight into their answer frame (a PAGE frame when `count` is null): in this
   * tick's batch when it fits there, else a frame of its own. Nothing is written unless every page
   * was cached.
   */
  private readCachedAnswer(tl: Timeline, id: number, keys: PageKey[], count: number | null, lsn: Lsn): boolean {
    const bytes = pagesFrameBytes(count);
    const pagesAt = count === null ? PAGE_FRAME_PAGE_OFFSET : PAGES_FRAME_PAGES_OFFSET;
    if (bytes <= ANSWER_BATCH_BYTES) {
      const batch = this.batchWithRoom(bytes);
      const at = this.batchLen;
      writePagesFrameHeader(batch, at, id, count);
      if (!tl.tryReadPagesCached(keys, lsn, batch, at + pagesAt)) return false;
      this.batchLen += bytes;
      return true;
    }
    const frame = allocPagesFrame(id, count, this.takeFrame);
    if (tl.tryReadPagesCached(keys, lsn, frame, pagesAt)) {
      this.write(frame);
      return true;
    }
    this.server.framePool.give(frame);
    return false;
  }

  /** The answer batch with room for `bytes` more (a full one is sent and a fresh one taken). */
  private batchWithRoom(bytes: number): Buffer {
    if (this.batch !== null && this.batchLen + bytes > this.batch.length) this.sendBatch();
    if (this.batch === null) {
      this.batch = this.server.framePool.take(ANSWER_BATCH_BYTES);
      this.batchLen = 0;
      // The tick's end sends it, or returns it to the pool if a miss left it empty.
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        process.nextTick(this.flushAtTickEnd);
      }
    }
    return this.batch;
  }

  /**
   * Hand the gathered answers to the socket in one write; the buffer goes back to the pool once
   * written (at once when a miss left it empty: an idle connection holds no batch).
   */
  private sendBatch(): void {
    const b = this.batch;
    if (b === null) return;
    const len = this.batchLen;
    this.batch = null;
    this.batchLen = 0;
    if (len === 0) {
      this.server.framePool.give(b);
      return;
    }
    // Safe to reuse: a batch buffer in flight is not in the pool, so it is never the batch being filled.
    let view = this.batchView;
    if (view === null || view.buffer !== b.buffer || view.byteOffset !== b.byteOffset || view.length !== len) view = this.batchView = b.subarray(0, len);
    this.send(view, b);
  }

  private async run(r: Request): Promise<Buffer[]> {
    const tl = this.timeline as Timeline;
    const lsn = effectiveLsn(r.lsns, tl.lastRecordLsn);
    const opts = { timeoutMs: this.server.settings.waitLsnTimeoutMs };
    const take = this.takeFrame;
    switch (r.kind) {
      case 'getPage':
        return [encodePage(r.id, await tl.getPage(r.key, lsn, opts), take)];
      case 'getPages':
        return [encodePages(r.id, await tl.getPages(r.keys, lsn, opts), take)];
      case 'getRelSize':
        return [encodeRelSize(r.id, await tl.getRelSize(r.rel, lsn, opts))];
      case 'exists':
        try {
          await tl.getRelSize(r.rel, lsn, opts);
          return [encodeExistsResult(r.id, true)];
        } catch (e) {
          if (isStrataError(e, 'REL_NOT_FOUND')) return [encodeExistsResult(r.id, false)];
          throw e;
        }
      case 'listRelations':
        return encodeRelations(r.id, await tl.listRelations(lsn, r.dbOid === null ? {} : { dbOid: r.dbOid }));
    }
  }

  private finish(id: number, frames: Buffer[]): void {
    if (this.state === 'closed') return; // the client is gone: nothing to answer
    this.inFlight.delete(id);
    for (const f of frames) this.write(f);
    if (this.state === 'draining') {
      if (this.inFlight.size === 0) this.end();
    } else {
      this.pump();
    }
  }

  /**
   * Queue a whole frame, in answer order: copied into this tick's batch when it fits (a page
   * frame then goes straight back to the pool), else written after the batch.
   */
  private write(frame: Buffer): void {
    // Page frames are fresh or pooled and held by nobody else: they go back to the pool once Node
    // has let go of them (written or failed), or at once when copied.
    const recycle = frame.length >= PAGE_SIZE ? frame : null;
    if (frame.length <= ANSWER_BATCH_BYTES) {
      const batch = this.batchWithRoom(frame.length);
      frame.copy(batch, this.batchLen);
      this.batchLen += frame.length;
      if (recycle !== null) this.server.framePool.give(recycle);
      return;
    }
    this.sendBatch(); // the socket never holds part of a frame followed by another
    this.send(frame, recycle);
  }

  /** Write `chunk` (whole frames); `recycle` goes back to the frame pool once Node lets go of it. */
  private send(chunk: Buffer, recycle: Buffer | null): void {
    if (this.socket.destroyed || this.socket.writableEnded) {
      if (recycle !== null) this.server.framePool.give(recycle);
      return;
    }
    this.socket.write(chunk, this.onWritten);
    // After the call: a write that throws queues nothing, and a stream never runs a write's
    // callback before write() returns, so the queue stays aligned with the callbacks.
    this.unsent.push(recycle);
    // Stop reading once a client lets answers pile up; written() (or 'drain') resumes.
    if (this.socket.writableLength >= WRITE_BUFFER_LIMIT_BYTES) this.writeBlocked = true;
  }

  /** A write left Node (sent or failed): its frame back to the pool, reading resumed at the low mark. */
  private written(): void {
    const frame = this.unsent[this.unsentHead];
    this.unsent[this.unsentHead++] = null;
    if (this.unsentHead === this.unsent.length) {
      this.unsent.length = 0;
      this.unsentHead = 0;
    }
    if (frame !== null && frame !== undefined) this.server.framePool.give(frame);
    if (this.writeBlocked && this.state !== 'closed' && this.socket.writableLength <= WRITE_BUFFER_RESUME_BYTES) {
      this.writeBlocked = false;
      this.pump();
    }
  }

  private violation(id: number, message: string): void {
    if (this.state === 'closed') return;
    this.server.counters.violations++;
    this.server.emit({ event: 'violation', remote: this.remote, message });
    this.write(encodeViolation(id, message));
    this.state = 'draining';
    this.inFlight.clear(); // answers still running are not sent: the client cannot trust the stream
    this.end();
  }

  /** Flush what is written, send FIN, and destroy the socket if the peer lingers. */
  private end(): void {
    // Keep reading (and discarding: the data handler ignores a draining connection) so the peer's
    // FIN is seen and the socket closes promptly.
    this.paused = false;
    this.socket.resume();
    this.sendBatch();
    if (!this.socket.writableEnded) this.socket.end();
    this.lingerTimer ??= setTimeout(() => this.socket.destroy(), LINGER_MS);
    this.lingerTimer.unref();
    if (this.state !== 'closed') this.state = 'draining';
  }

  private clearTimers(): void {
    if (this.handshakeTimer !== null) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    if (this.state === 'closed' && this.lingerTimer !== null) clearTimeout(this.lingerTimer);
  }
}
