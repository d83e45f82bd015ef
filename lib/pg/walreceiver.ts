/**
 * The WAL receiver: follows a running PostgreSQL 15 primary over physical streaming replication
 * and stores what it sends through ingestPgWal's ingest path, the only one (docs/POSTGRES.md,
 * "Following a primary"; Neon's walreceiver streams from safekeepers, Strata straight from
 * PostgreSQL).
 *
 * One connection, in order: `pg` (node-postgres) connects with `replication=true` (its password
 * and SCRAM, TLS and connection-string handling are used as they are); IDENTIFY_SYSTEM must name
 * the cluster and PostgreSQL timeline the Strata timeline was imported from, and a server WAL end
 * at or past where Strata stands; READ_REPLICATION_SLOT checks the slot (created with
 * CREATE_REPLICATION_SLOT … PHYSICAL RESERVE_WAL when asked, before the first stream only);
 * START_REPLICATION [SLOT s] PHYSICAL <lastRecordLsn> TIMELINE <tli> switches to CopyBoth
 * (pg-copy-streams' copyBoth frames CopyData). XLogData bytes go to a WalQueue that
 * ingestPgWal(tl, queue) drains; keepalives are answered when the server asks.
 *
 * Durability through the slot: every standby status update reports write = bytes received,
 * flush = apply = the timeline's diskConsistentLsn. PostgreSQL moves a physical slot's
 * restart_lsn to the reported flush position, so it never recycles WAL that is not yet in a layer
 * file, and after a crash the receiver restarts from diskConsistentLsn (what reopening the
 * timeline gives as lastRecordLsn) with that WAL still on the primary.
 *
 * Flush policy: the open layer is flushed when the WAL ingested but not durable reaches
 * flushBytes, when the oldest such WAL has waited flushIntervalMs, and when the server asks for a
 * reply while Strata has ingested all it was sent (what a primary's clean shutdown waits for).
 *
 * Failures: REPLICATION_LOST (connection refused or cut, server shutdown, a walsender still holding
 * the slot) is retried with exponential backoff and jitter; REPLICATION_AUTH, REPLICATION_MISMATCH,
 * REPLICATION_SLOT and every ingest or flush error are final: state 'failed', nothing more ingested.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import { Client, type ClientConfig, type Submittable } from 'pg';
import type { TimelineImpl } from '../engine/timeline';
import { describeValue, StrataError } from '../errors';
import { checkLsn, formatLsn, parseLsn, type Lsn } from '../lsn';
import { ingestWal } from './pg_timeline';
import {
  encodeStatusUpdate, parseReplicationMessage, pgNowMicros, SLOT_NAME, startReplicationCommand, type ReplicationMessage,
} from './replication_protocol';
import { WalQueue } from './wal_queue';

type CopyBothStream = Duplex & Submittable;
// pg-copy-streams ships no type declarations and @types/pg-copy-streams lacks copyBoth.
const copyBoth = (require('pg-copy-streams') as { both(sql: string, opts: { alignOnCopyDataFrame: boolean }): CopyBothStream }).both;

export type FollowState = 'connecting' | 'streaming' | 'reconnecting' | 'stopped' | 'failed';

export interface FollowPostgresOptions {
  /** libpq-style URI or key=value string (node-postgres' parser): host, port, user, password, sslmode, … */
  connectionString: string;
  /** Physical replication slot to stream through; without one, WAL retention is the primary's wal_keep_size. */
  slotName?: string;
  /** Create the slot (PHYSICAL RESERVE_WAL) if it does not exist when following starts. Default false. */
  createSlot?: boolean;
  /** Where the first stream starts (≤ lastRecordLsn, a record start or page boundary). Default lastRecordLsn. */
  startLsn?: Lsn;
  /** TLS options for node-postgres (as its `ssl`); `sslmode` in the connection string works too. */
  ssl?: boolean | ConnectionOptions;
  /** Flush when the oldest WAL ingested but not durable is this old. Default 10 s. */
  flushIntervalMs?: number;
  /** Flush when this much WAL is ingested but not durable. Default 64 MiB. */
  flushBytes?: number;
  /** Standby status update at least this often. Default 10 s (PostgreSQL's wal_receiver_status_interval). */
  statusIntervalMs?: number;
  /** First reconnect delay; doubles per failed attempt up to reconnectMaxDelayMs, with jitter. Default 200 ms. */
  reconnectInitialDelayMs?: number;
  /** Default 30 s. */
  reconnectMaxDelayMs?: number;
  /** Consecutive failed connection attempts before 'failed'. Default Infinity. */
  maxReconnectAttempts?: number;
  /** Connection (and authentication) timeout. Default 10 s. */
  connectTimeoutMs?: number;
  /** 'progress' events this often. Default 1 s. */
  progressIntervalMs?: number;
}

export interface FollowStatus {
  state: FollowState;
  /** End of the WAL bytes received from the server (the standby status "write" position). */
  receivedLsn: Lsn;
  /** The timeline's newest record: what reads can see. */
  lastRecordLsn: Lsn;
  /** In layer files: what the slot may release (the status "flush" and "apply" positions). */
  diskConsistentLsn: Lsn;
  /** The server's WAL end as it last said, or null before it said anything. */
  serverWalEnd: Lsn | null;
  /** serverWalEnd − lastRecordLsn in bytes (0 when caught up or unknown). */
  lagBytes: number;
  /** Connection attempts after the first. */
  reconnects: number;
  /** The latest error, retried or final; null if none yet. */
  lastError: StrataError | null;
  slotName: string | null;
}

/** Typed events of a follower. 'error' is emitted only while someone listens to it. */
export interface FollowEvents {
  state: [state: FollowState, previous: FollowState];
  progress: [status: FollowStatus];
  /** Each flush the receiver made, with the new diskConsistentLsn. */
  flush: [diskConsistentLsn: Lsn];
  error: [error: StrataError];
}

const DEFAULTS = {
  flushIntervalMs: 10_000,
  flushBytes: 64 * 1024 * 1024,
  statusIntervalMs: 10_000,
  reconnectInitialDelayMs: 200,
  reconnectMaxDelayMs: 30_000,
  maxReconnectAttempts: Infinity,
  connectTimeoutMs: 10_000,
  progressIntervalMs: 1_000,
};

/** Received WAL waiting for ingest before the socket is paused, and where it resumes. */
const QUEUE_HIGH_WATER_BYTES = 32 * 1024 * 1024;
const QUEUE_LOW_WATER_BYTES = 8 * 1024 * 1024;
/** How often the receiver looks at its flush and status deadlines, at most. */
const MAX_TICK_MS = 1_000;
/** How long a graceful stop waits for the server to acknowledge the end of the stream. */
const END_COPY_TIMEOUT_MS = 5_000;

/** SQLSTATEs (PostgreSQL's errcodes.txt) that decide how a server error is handled. */
const SQLSTATE_AUTH = new Set(['28P01', '28000', '42501']); // invalid_password, invalid_authorization_specification, insufficient_privilege
const SQLSTATE_UNDEFINED_OBJECT = '42704'; // "replication slot … does not exist"
const SQLSTATE_UNDEFINED_FILE = '58P01'; // "requested WAL segment … has already been removed"
const SQLSTATE_PREREQUISITE = '55000'; // "can no longer get changes from replication slot" (invalidated)

/** Why a stream ended. */
interface StreamEnd {
  /** null: stop() asked for it. */
  error: StrataError | null;
  /** The session reached 'streaming' (START_REPLICATION was accepted). */
  streamed: boolean;
}

interface IdentifySystem {
  systemId: string;
  timeline: number;
  walEnd: Lsn;
}

/** Options with defaults filled in, checked. */
type Settings = Required<Omit<FollowPostgresOptions, 'slotName' | 'startLsn' | 'ssl'>> & Pick<FollowPostgresOptions, 'startLsn' | 'ssl'> & { slotName: string | null };

const following = new WeakSet<TimelineImpl>();

/** Start following; see the file comment. One follower per timeline at a time. */
export function followPostgres(tl: TimelineImpl, options: FollowPostgresOptions): PgFollower {
  tl.checkOpen();
  const ext = tl.extensions.pg;
  if (ext === undefined) throw new StrataError('BAD_ARGUMENT', `${tl.name}: followPostgres needs a PostgreSQL timeline: import a data directory into it first (importPgDatadir)`);
  if (following.has(tl)) throw new StrataError('BAD_ARGUMENT', `${tl.name} is already following a PostgreSQL server: stop() that follower first`);
  const settings = checkOptions(options, tl);
  const follower = new PgFollower(tl, settings, { systemId: ext.systemIdentifier, timeline: Number(ext.timeline) });
  following.add(tl);
  void follower.done.then(() => following.delete(tl));
  return follower;
}

function checkOptions(o: FollowPostgresOptions, tl: TimelineImpl): Settings {
  if (o === null || typeof o !== 'object') throw new StrataError('BAD_ARGUMENT', 'followPostgres needs { connectionString, … }');
  if (typeof o.connectionString !== 'string' || o.connectionString === '') throw new StrataError('BAD_ARGUMENT', 'followPostgres: connectionString must be a non-empty string');
  if (o.slotName !== undefined && (typeof o.slotName !== 'string' || !SLOT_NAME.test(o.slotName))) {
    throw new StrataError('BAD_ARGUMENT', `followPostgres: slotName must be 1–63 of [a-z0-9_] (PostgreSQL's rule): got ${typeof o.slotName === 'string' ? JSON.stringify(o.slotName) : describeValue(o.slotName)}`);
  }
  if (o.createSlot === true && o.slotName === undefined) throw new StrataError('BAD_ARGUMENT', 'followPostgres: createSlot needs a slotName');
  if (o.startLsn !== undefined) {
    checkLsn(o.startLsn, 'startLsn');
    if (o.startLsn > tl.lastRecordLsn) {
      throw new StrataError('BAD_ARGUMENT', `${tl.name}: startLsn ${formatLsn(o.startLsn)} would leave a gap after lastRecordLsn ${formatLsn(tl.lastRecordLsn)}`);
    }
  }
  const num = (k: keyof typeof DEFAULTS, min: number): number => {
    const v = o[k] ?? DEFAULTS[k];
    if (typeof v !== 'number' || Number.isNaN(v) || v < min || (!Number.isFinite(v) && k !== 'maxReconnectAttempts')) {
      throw new StrataError('BAD_ARGUMENT', `followPostgres: ${k} must be a number ≥ ${min}: got ${describeValue(v)}`);
    }
    return v;
  };
  return {
    connectionString: o.connectionString,
    slotName: o.slotName ?? null,
    createSlot: o.createSlot === true,
    startLsn: o.startLsn,
    ssl: o.ssl,
    flushIntervalMs: num('flushIntervalMs', 1),
    flushBytes: num('flushBytes', 1),
    statusIntervalMs: num('statusIntervalMs', 1),
    reconnectInitialDelayMs: num('reconnectInitialDelayMs', 0),
    reconnectMaxDelayMs: num('reconnectMaxDelayMs', 0),
    maxReconnectAttempts: num('maxReconnectAttempts', 0),
    connectTimeoutMs: num('connectTimeoutMs', 1),
    progressIntervalMs: num('progressIntervalMs', 1),
  };
}

/** The handle followPostgres returns. */
export class PgFollower extends EventEmitter<FollowEvents> {
  /** Resolves with the final status once the follower is 'stopped' or 'failed' (never rejects). */
  readonly done: Promise<FollowStatus>;
  private st: FollowState = 'connecting';
  private receivedLsn: Lsn;
  private serverWalEnd: Lsn | null = null;
  private reconnects = 0;
  private lastError: StrataError | null = null;
  private stopRequested = false;
  private everStreamed = false;
  /** Wakes a backoff sleep or an idle stream when stop() is called. */
  private onStop: (() => void) | null = null;
  private stream: LiveStream | null = null;
  private readonly timer: NodeJS.Timeout;
  private lastProgressAt = 0;
  /** When WAL first became ingested-but-not-durable (ms), or null when everything ingested is durable. */
  private unflushedSince: number | null = null;
  private flushing: Promise<void> | null = null;
  /** The server asked for a reply: flush as soon as everything received is ingested. */
  private flushWhenIdle = false;

  constructor(private readonly tl: TimelineImpl, private readonly s: Settings, private readonly expected: { systemId: string; timeline: number }) {
    super();
    this.receivedLsn = tl.lastRecordLsn;
    const tick = Math.max(1, Math.min(MAX_TICK_MS, s.flushIntervalMs / 2, s.statusIntervalMs / 2, s.progressIntervalMs));
    this.timer = setInterval(() => this.tick(), tick);
    this.timer.unref(); // the connection keeps the process alive while it lasts, not this timer
    this.done = this.run();
  }

  status(): FollowStatus {
    const last = this.tl.isClosed ? this.receivedLsn : this.tl.lastRecordLsn;
    const end = this.serverWalEnd;
    return {
      state: this.st,
      receivedLsn: this.receivedLsn > last ? this.receivedLsn : last,
      lastRecordLsn: last,
      diskConsistentLsn: this.tl.diskConsistentLsn,
      serverWalEnd: end,
      lagBytes: end !== null && end > last ? Number(end - last) : 0,
      reconnects: this.reconnects,
      lastError: this.lastError,
      slotName: this.s.slotName,
    };
  }

  get state(): FollowState {
    return this.st;
  }

  /**
   * Graceful stop: stop reading, ingest what was received, flush, send a last status update (so
   * the slot moves to the new diskConsistentLsn), end the stream and close the connection.
   * Resolves with the final status; on a follower that already failed, with that status.
   */
  async stop(): Promise<FollowStatus> {
    this.stopRequested = true;
    const wake = this.onStop;
    this.onStop = null;
    wake?.();
    return this.done;
  }

  // ---- the connection loop ---------------------------------------------------------------------

  private async run(): Promise<FollowStatus> {
    let failedAttempts = 0;
    try {
      while (!this.stopRequested) {
        const end = await this.connectAndStream();
        if (end.streamed) failedAttempts = 0;
        if (end.error === null) break;
        // A stop during a connection attempt drops its socket: that error is ours, not the server's.
        if (this.stopRequested && end.error.code === 'REPLICATION_LOST') break;
        this.noteError(end.error);
        if (end.error.code !== 'REPLICATION_LOST') return await this.fail(end.error);
        failedAttempts++;
        if (failedAttempts > this.s.maxReconnectAttempts) return await this.fail(end.error);
        this.setState('reconnecting');
        await this.sleep(this.backoffMs(failedAttempts));
        if (this.stopRequested) break;
        this.reconnects++;
      }
      await this.flushNow().catch((e: unknown) => this.noteError(asStrataError(e)));
      this.setState('stopped');
    } catch (e) {
      return await this.fail(asStrataError(e));
    } finally {
      clearInterval(this.timer);
    }
    return this.status();
  }

  /** Jitter on an exponential ceiling: uniform in [ceiling/2, ceiling], so retries never come all at once nor at 0. */
  private backoffMs(failedAttempts: number): number {
    const ceiling = Math.min(this.s.reconnectMaxDelayMs, this.s.reconnectInitialDelayMs * 2 ** Math.min(failedAttempts - 1, 30));
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.onStop = null;
        resolve();
      }, ms);
      this.onStop = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private async fail(e: StrataError): Promise<FollowStatus> {
    if (this.lastError !== e) this.noteError(e);
    // What was ingested before the failure is valid WAL: make it durable if the timeline still can.
    await this.flushNow().catch(() => undefined);
    this.setState('failed');
    return this.status();
  }

  private async connectAndStream(): Promise<StreamEnd> {
    const client = new Client(this.clientConfig());
    let connected = false;
    const broken: { error: unknown } = { error: null };
    // An error event with no listener would crash the process; the stream watches for it too.
    client.on('error', (e: unknown) => {
      broken.error ??= e;
    });
    // stop() while connecting or querying: drop the socket rather than wait for a slow server.
    this.onStop = () => socketOf(client)?.destroy();
    try {
      await client.connect();
      connected = true;
      if (this.stopRequested) return { error: null, streamed: false };
      const id = await identifySystem(client);
      this.checkIdentity(id);
      const start = this.everStreamed || this.s.startLsn === undefined ? this.tl.lastRecordLsn : this.s.startLsn;
      if (id.walEnd < start) {
        throw new StrataError('REPLICATION_MISMATCH', `${this.tl.name}: the server's WAL ends at ${formatLsn(id.walEnd)}, before ${formatLsn(start)}, which the timeline already holds: ` +
          'it lost WAL or is not the server this timeline followed');
      }
      if (this.s.slotName !== null) await this.checkSlot(client, this.s.slotName, start);
      this.serverWalEnd = id.walEnd;
      const stream = new LiveStream(this, client, this.tl, start, this.s.slotName, this.expected.timeline, broken);
      this.stream = stream;
      this.receivedLsn = start;
      const end = await stream.run();
      if (end.streamed) this.everStreamed = true;
      return end;
    } catch (e) {
      return { error: classifyError(e, this.tl.name), streamed: false };
    } finally {
      this.stream = null;
      this.onStop = null;
      await closeClient(client, connected);
    }
  }

  private clientConfig(): ClientConfig & { replication: string } {
    return {
      connectionString: this.s.connectionString,
      replication: 'true',
      application_name: 'strata',
      connectionTimeoutMillis: this.s.connectTimeoutMs,
      keepAlive: true,
      ...(this.s.ssl !== undefined ? { ssl: this.s.ssl } : {}),
    };
  }

  private checkIdentity(id: IdentifySystem): void {
    if (id.systemId !== this.expected.systemId) {
      throw new StrataError('REPLICATION_MISMATCH', `${this.tl.name}: the server is another cluster: system identifier ${id.systemId}, ` +
        `the timeline holds ${this.expected.systemId}`);
    }
    if (id.timeline !== this.expected.timeline) {
      throw new StrataError('REPLICATION_MISMATCH', `${this.tl.name}: the server is on PostgreSQL timeline ${id.timeline}, ` +
        `the timeline holds timeline ${this.expected.timeline} (a promoted standby or a restored cluster; timeline switches are not followed)`);
    }
  }

  /**
   * The slot must exist (or be created now, before the first stream, with createSlot) and must not
   * have moved past `start`: its restart_lsn only moves to what this receiver reported durable, so
   * a slot ahead of the timeline was advanced by someone else and no longer guards our WAL.
   */
  private async checkSlot(client: Client, slot: string, start: Lsn): Promise<void> {
    const r = await client.query(`READ_REPLICATION_SLOT ${slot}`);
    const row = r.rows[0] as { slot_type: string | null; restart_lsn: string | null } | undefined;
    if (row === undefined || row.slot_type === null) {
      if (!this.s.createSlot || this.everStreamed) {
        throw new StrataError('REPLICATION_SLOT', `${this.tl.name}: replication slot "${slot}" does not exist` +
          (this.everStreamed ? ' any more: it was dropped while following, and the WAL it kept may be gone' : ' (create it, or pass createSlot: true)'));
      }
      // RESERVE_WAL reserves from the primary's last checkpoint redo LSN; if that is past `start`,
      // the stream below still gets the WAL when the primary has it, or fails with REPLICATION_SLOT.
      await client.query(`CREATE_REPLICATION_SLOT ${slot} PHYSICAL RESERVE_WAL`);
      return;
    }
    if (row.slot_type !== 'physical') throw new StrataError('REPLICATION_SLOT', `${this.tl.name}: replication slot "${slot}" is ${row.slot_type}, not physical`);
    if (row.restart_lsn !== null && parseLsn(row.restart_lsn) > start) {
      throw new StrataError('REPLICATION_SLOT', `${this.tl.name}: replication slot "${slot}" keeps WAL from ${row.restart_lsn} only, ` +
        `past ${formatLsn(start)} where the timeline continues: another client advanced it, and the WAL between may be gone`);
    }
  }

  // ---- called by the live stream ---------------------------------------------------------------

  /** @internal */
  onStreaming(): void {
    this.setState('streaming');
  }

  /** @internal */
  onWal(end: Lsn, serverWalEnd: Lsn): void {
    this.receivedLsn = end;
    this.serverWalEnd = serverWalEnd;
    if (this.unflushedSince === null) this.unflushedSince = Date.now();
  }

  /** @internal */
  onKeepalive(serverWalEnd: Lsn, replyRequested: boolean): void {
    this.serverWalEnd = serverWalEnd;
    if (!replyRequested) return;
    this.stream?.sendStatus(false);
    // Flush as soon as all received WAL is ingested: a primary shutting down waits until the
    // reported flush position reaches the end of what it sent.
    this.flushWhenIdle = true;
    if (this.stream?.ingestIdle === true) this.onIdle();
  }

  /** @internal Everything received is ingested. */
  onIdle(): void {
    if (!this.flushWhenIdle) return;
    this.flushWhenIdle = false;
    void this.flushNow().catch((e: unknown) => this.onFlushFailed(asStrataError(e)));
  }

  /** A failed flush stops the timeline's writes (engine rule): end the stream; run() then fails with it. */
  private onFlushFailed(e: StrataError): void {
    if (this.stream !== null) this.stream.abort(e);
    else this.noteError(e);
  }

  /** @internal */
  get stopping(): boolean {
    return this.stopRequested;
  }

  /** @internal stop() wakes an idle stream through this. */
  setStopHook(hook: (() => void) | null): void {
    this.onStop = hook;
  }

  /** @internal */
  get statusIntervalMs(): number {
    return this.s.statusIntervalMs;
  }

  // ---- flushing, status, progress ----------------------------------------------------------------

  /** Flush unless everything ingested is durable; report the new position to the server. */
  async flushNow(): Promise<void> {
    if (this.flushing !== null) await this.flushing;
    if (this.tl.isClosed || this.tl.lastRecordLsn <= this.tl.diskConsistentLsn) {
      this.unflushedSince = null;
      return;
    }
    const run = (async () => {
      await this.tl.flush();
      this.unflushedSince = null;
      this.stream?.sendStatus(false);
      this.emit('flush', this.tl.diskConsistentLsn);
    })();
    this.flushing = run;
    try {
      await run;
    } finally {
      this.flushing = null;
    }
  }

  private tick(): void {
    const now = Date.now();
    // Flushing needs no connection: WAL received before an outage becomes durable on time too.
    if (this.flushing === null && !this.tl.isClosed) {
      const pending = this.tl.lastRecordLsn - this.tl.diskConsistentLsn;
      if (pending <= 0n) this.unflushedSince = null;
      else {
        this.unflushedSince ??= now;
        if (pending >= BigInt(this.s.flushBytes) || now - this.unflushedSince >= this.s.flushIntervalMs) {
          void this.flushNow().catch((e: unknown) => this.onFlushFailed(asStrataError(e)));
        }
      }
    }
    this.stream?.statusIfDue(now);
    if (now - this.lastProgressAt >= this.s.progressIntervalMs) {
      this.lastProgressAt = now;
      this.emit('progress', this.status());
    }
  }

  private setState(next: FollowState): void {
    const prev = this.st;
    if (prev === next) return;
    this.st = next;
    this.emit('state', next, prev);
  }

  private noteError(e: StrataError): void {
    this.lastError = e;
    if (this.listenerCount('error') > 0) this.emit('error', e);
  }
}

/**
 * One START_REPLICATION stream: CopyData in, WAL to the queue and on to ingestPgWal, status
 * updates out. run() resolves when the stream ends — connection lost, server done, stop(), or an
 * ingest failure — after ingest has stored every complete record received; on stop() it also
 * flushes, reports, and ends the copy.
 */
class LiveStream {
  private readonly copy: CopyBothStream;
  private readonly queue: WalQueue;
  private received: Lsn;
  private streamed = false;
  private lastStatusAt = 0;
  private ended: (() => void) | null = null;
  private firstEnd: StrataError | null | undefined = undefined;

  constructor(
    private readonly f: PgFollower,
    private readonly client: Client,
    private readonly tl: TimelineImpl,
    private readonly start: Lsn,
    slot: string | null,
    timeline: number,
    private readonly broken: { error: unknown },
  ) {
    this.received = start;
    this.copy = client.query(copyBoth(startReplicationCommand(slot, start, timeline), { alignOnCopyDataFrame: true }));
    this.queue = new WalQueue({
      pause: () => this.copy.pause(),
      resume: () => this.copy.resume(),
      idle: () => f.onIdle(),
    }, QUEUE_HIGH_WATER_BYTES, QUEUE_LOW_WATER_BYTES);
  }

  async run(): Promise<StreamEnd> {
    const stopped = new Promise<void>((resolve) => {
      this.ended = resolve;
    });
    if (this.broken.error !== null) this.finish(classifyError(this.broken.error, this.tl.name));
    this.client.on('error', (e: unknown) => this.finish(classifyError(e, this.tl.name)));
    this.client.on('end', () => this.finish(new StrataError('REPLICATION_LOST', `${this.tl.name}: the server closed the replication connection`)));
    this.copy.on('error', (e: unknown) => this.finish(classifyError(e, this.tl.name)));
    this.copy.on('end', () => this.finish(new StrataError('REPLICATION_LOST', `${this.tl.name}: the server ended the stream at ${formatLsn(this.received)} ` +
      '(shutting down, or its timeline ended)')));
    this.copy.on('data', (msg: Buffer) => this.onMessage(msg));
    this.f.setStopHook(() => this.finish(null));
    if (this.f.stopping) this.finish(null);
    // The first status update goes out as soon as the server switches to CopyBoth; its callback
    // is the sign START_REPLICATION was accepted.
    this.sendStatus(false, () => {
      this.streamed = true;
      this.f.onStreaming();
    });
    const ingest = ingestWal(this.tl, this.queue, { startLsn: this.start }).then(
      () => {
        // Decoding ended by itself while the stream still ran: a clean end of WAL the server
        // nevertheless continued past. Once the stream has ended, returning is what ingest should do.
        if (this.firstEnd !== undefined) return;
        this.finish(new StrataError('WAL_CORRUPT', `${this.tl.name}: the WAL from the server stops being valid at ${formatLsn(this.tl.lastRecordLsn)} ` +
          `while the server sent up to ${formatLsn(this.received)}`));
      },
      (e: unknown) => this.finish(asStrataError(e)),
    );
    await stopped;
    this.f.setStopHook(null);
    this.copy.removeAllListeners('data');
    this.queue.end();
    await ingest;
    if (this.firstEnd === null) await this.endGracefully();
    return { error: this.firstEnd ?? null, streamed: this.streamed };
  }

  /**
   * The first reason to end stops the stream; a later failure that is not a lost connection (ingest
   * or flush failing while the stream winds down) replaces a stop request or a lost connection.
   */
  private finish(e: StrataError | null): void {
    if (this.firstEnd === undefined) {
      this.firstEnd = e;
      const end = this.ended;
      end?.();
    } else if (e !== null && e.code !== 'REPLICATION_LOST' && (this.firstEnd === null || this.firstEnd.code === 'REPLICATION_LOST')) {
      this.firstEnd = e;
    }
  }

  /** Ingest has taken everything received and waits for more. */
  get ingestIdle(): boolean {
    return this.queue.consumerWaiting;
  }

  /** Stop reading with this error (a failed flush, say). */
  abort(e: StrataError): void {
    this.finish(e);
  }

  private onMessage(raw: Buffer): void {
    let msg: ReplicationMessage;
    try {
      msg = parseReplicationMessage(raw);
    } catch (e) {
      this.finish(asStrataError(e));
      return;
    }
    if (msg.kind === 'keepalive') {
      this.f.onKeepalive(msg.serverWalEnd, msg.replyRequested);
      return;
    }
    if (msg.start !== this.received) {
      this.finish(new StrataError('REPLICATION_LOST', `${this.tl.name}: the server sent WAL from ${formatLsn(msg.start)}, expected ${formatLsn(this.received)}`));
      return;
    }
    this.received += BigInt(msg.wal.length);
    this.f.onWal(this.received, msg.serverWalEnd);
    // The queue copies it: the message buffer belongs to pg-copy-streams' reassembly.
    this.queue.push(msg.wal);
  }

  /** write = received, flush = apply = diskConsistentLsn (never more than is in layer files). */
  sendStatus(replyRequested: boolean, done?: () => void): void {
    if (this.copy.writableEnded || this.copy.destroyed) return;
    const durable = this.tl.diskConsistentLsn;
    const written = this.received > durable ? this.received : durable;
    this.lastStatusAt = Date.now();
    this.copy.write(encodeStatusUpdate({ written, flushed: durable, applied: durable, clientTime: pgNowMicros(), replyRequested }), (e) => {
      if (e === null || e === undefined) done?.();
    });
  }

  statusIfDue(now: number): void {
    if (this.streamed && now - this.lastStatusAt >= this.f.statusIntervalMs) this.sendStatus(false);
  }

  /** stop(): make what was received durable, tell the server, end the copy (CopyDone). */
  private async endGracefully(): Promise<void> {
    await this.f.flushNow();
    if (!this.streamed) return;
    this.sendStatus(false);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, END_COPY_TIMEOUT_MS);
      this.copy.once('error', () => { clearTimeout(t); resolve(); });
      this.copy.end(() => { clearTimeout(t); resolve(); });
    });
  }
}

async function identifySystem(client: Client): Promise<IdentifySystem> {
  const r = await client.query('IDENTIFY_SYSTEM');
  const row = r.rows[0] as { systemid: string; timeline: number | string; xlogpos: string } | undefined;
  if (row === undefined) throw new StrataError('REPLICATION_LOST', 'IDENTIFY_SYSTEM returned no row');
  return { systemId: String(row.systemid), timeline: Number(row.timeline), walEnd: parseLsn(row.xlogpos) };
}

/** node-postgres' socket (not in its types). */
function socketOf(client: Client): { destroy(): void } | undefined {
  return (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream;
}

async function closeClient(client: Client, connected: boolean): Promise<void> {
  if (connected) await Promise.race([client.end().catch(() => undefined), new Promise((r) => setTimeout(r, END_COPY_TIMEOUT_MS))]);
  socketOf(client)?.destroy();
}

/** Any error as the StrataError the follower reports; see the file comment for what is final. */
export function classifyError(e: unknown, name: string): StrataError {
  if (e instanceof StrataError) return e;
  const message = e instanceof Error ? e.message : String(e);
  const sqlstate = (e as { code?: unknown } | null)?.code;
  const text = `${name}: ${message}${typeof sqlstate === 'string' ? ` (${sqlstate})` : ''}`;
  if (typeof sqlstate === 'string') {
    if (SQLSTATE_AUTH.has(sqlstate)) return new StrataError('REPLICATION_AUTH', text, { cause: e });
    if (sqlstate === SQLSTATE_UNDEFINED_OBJECT && /replication slot/.test(message)) return new StrataError('REPLICATION_SLOT', text, { cause: e });
    if (sqlstate === SQLSTATE_UNDEFINED_FILE || sqlstate === SQLSTATE_PREREQUISITE) return new StrataError('REPLICATION_SLOT', text, { cause: e });
  }
  // node-postgres' own SCRAM/password checks fail before the server answers (no SQLSTATE).
  if (/\bSASL\b|SCRAM|password/i.test(message)) return new StrataError('REPLICATION_AUTH', text, { cause: e });
  return new StrataError('REPLICATION_LOST', text, { cause: e });
}

function asStrataError(e: unknown): StrataError {
  return e instanceof StrataError ? e : new StrataError('IO_ERROR', e instanceof Error ? e.message : String(e), { cause: e });
}
