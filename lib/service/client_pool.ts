/**
 * ClientPool: N StrataClient connections to one page service (README, "Service"). Each call takes
 * the open connection with the fewest requests in flight (ties go round the pool), so requests
 * spread over the connections and pipeline on each. A connection that closes is replaced in the
 * background after a full-jitter delay that grows with the consecutive failed connects of its slot
 * (uniform in [0, min(maxDelayMs, baseDelayMs · 2^failures))), so a server that is down is not
 * hammered with connects. A call that finds no open connection connects one at once (its caller is
 * waiting; RetryingClient adds its own backoff and circuit breaker around that).
 */
import { describeValue, StrataError } from '../errors';
import { checkOptionalFunction, checkOptionalMs, checkOptionalObject } from './arg_checks';
import { checkClientOptions, type ClientOptions, StrataClient } from './client';

export interface PoolOptions {
  /** Connections kept open (default 1). */
  connections?: number;
  /** The first reconnect's delay bound (default 10 ms); doubles per failed connect of the slot. */
  reconnectBaseDelayMs?: number;
  /** The reconnect delay bound never exceeds this (default 2 s). */
  reconnectMaxDelayMs?: number;
  /** Uniform in [0, 1), injectable for tests. */
  random?: () => number;
  /**
   * Asked before each background reconnect; false puts it off by another delay (RetryingClient:
   * not while its circuit breaker is open, so a server that is down sees no connects but the probe).
   */
  mayReconnect?: () => boolean;
}

export const DEFAULT_POOL_CONNECTIONS = 1;
/** More connections than this to one server is a typo (each is a socket and a server-side state). */
const MAX_POOL_CONNECTIONS = 1024;
export const DEFAULT_RECONNECT_BASE_DELAY_MS = 10;
export const DEFAULT_RECONNECT_MAX_DELAY_MS = 2_000;

interface Slot {
  client: StrataClient | null;
  connecting: Promise<StrataClient> | null;
  /** Consecutive failed connects: the reconnect delay's exponent. */
  failures: number;
  timer: NodeJS.Timeout | null;
}

export interface PoolStats {
  /** Connections open now. */
  open: number;
  /** Connections made (the first ones and every replacement). */
  connects: number;
  /** Connects that failed. */
  connectFailures: number;
}

export class ClientPool {
  readonly size: number;
  private readonly slots: Slot[];
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly random: () => number;
  private readonly mayReconnect: () => boolean;
  private next = 0;
  private closed = false;
  private started = false;
  private connects = 0;
  private connectFailures = 0;

  constructor(private readonly client: ClientOptions, o: PoolOptions = {}) {
    checkClientOptions(client);
    checkOptionalObject(o, 'pool options');
    const n = o.connections ?? DEFAULT_POOL_CONNECTIONS;
    if (!Number.isInteger(n) || n < 1 || n > MAX_POOL_CONNECTIONS) throw new StrataError('BAD_ARGUMENT', `pool connections must be an integer in [1, ${MAX_POOL_CONNECTIONS}]: got ${describeValue(n)}`);
    this.size = n;
    this.baseDelayMs = o.reconnectBaseDelayMs ?? DEFAULT_RECONNECT_BASE_DELAY_MS;
    this.maxDelayMs = o.reconnectMaxDelayMs ?? DEFAULT_RECONNECT_MAX_DELAY_MS;
    checkOptionalMs(this.baseDelayMs, 'pool reconnectBaseDelayMs');
    checkOptionalMs(this.maxDelayMs, 'pool reconnectMaxDelayMs');
    checkOptionalFunction(o.random, 'pool random');
    checkOptionalFunction(o.mayReconnect, 'pool mayReconnect');
    this.random = o.random ?? Math.random;
    this.mayReconnect = o.mayReconnect ?? ((): boolean => true);
    this.slots = Array.from({ length: n }, () => ({ client: null, connecting: null, failures: 0, timer: null }));
  }

  stats(): PoolStats {
    return { open: this.slots.filter((s) => s.client !== null && !s.client.isClosed).length, connects: this.connects, connectFailures: this.connectFailures };
  }

  /** The open connections (for inspection; the pool owns them). */
  clients(): StrataClient[] {
    return this.slots.flatMap((s) => (s.client !== null && !s.client.isClosed ? [s.client] : []));
  }

  /**
   * The least busy open connection; with none open, the first connect to succeed (connecting every
   * slot not already connecting). CONNECTION_CLOSED when that fails or the pool is closed.
   */
  async acquire(): Promise<StrataClient> {
    if (this.closed) throw new StrataError('CONNECTION_CLOSED', 'the client pool was closed');
    if (!this.started) {
      this.started = true;
      for (let i = 0; i < this.size; i++) void this.connect(i).catch(() => undefined);
    }
    const c = this.leastBusy();
    if (c !== null) return c;
    const attempts: Promise<StrataClient>[] = [];
    for (let i = 0; i < this.size; i++) {
      const s = this.slots[i];
      if (s.timer !== null) {
        // A caller is waiting: the slot's backoff yields to it.
        clearTimeout(s.timer);
        s.timer = null;
      }
      attempts.push(s.connecting ?? this.connect(i));
    }
    try {
      return await Promise.any(attempts);
    } catch (e) {
      const first = e instanceof AggregateError ? e.errors[0] : e;
      throw first instanceof StrataError ? first : new StrataError('CONNECTION_CLOSED', String(first));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const waits: Promise<unknown>[] = [];
    for (const s of this.slots) {
      if (s.timer !== null) clearTimeout(s.timer);
      s.timer = null;
      if (s.connecting !== null) waits.push(s.connecting.then((c) => c.close(), () => undefined));
      if (s.client !== null) waits.push(s.client.close());
      s.client = null;
    }
    await Promise.all(waits);
  }

  private leastBusy(): StrataClient | null {
    let best: StrataClient | null = null;
    const start = this.next;
    this.next = (this.next + 1) % this.size;
    for (let k = 0; k < this.size; k++) {
      const c = this.slots[(start + k) % this.size].client;
      if (c === null || c.isClosed) continue;
      if (best === null || c.inFlight < best.inFlight) best = c;
      if (best.inFlight === 0) break;
    }
    return best;
  }

  /** Connect slot i now (one connect per slot at a time); on its loss or failure, schedule the next. */
  private connect(i: number): Promise<StrataClient> {
    const s = this.slots[i];
    if (s.connecting !== null) return s.connecting;
    this.connects++;
    const p = StrataClient.connect(this.client).then(
      (c) => {
        s.connecting = null;
        if (this.closed) {
          void c.close();
          throw new StrataError('CONNECTION_CLOSED', 'the client pool was closed');
        }
        s.client = c;
        s.failures = 0;
        void c.whenClosed().then(() => {
          if (s.client === c) s.client = null;
          this.scheduleReconnect(i);
        });
        return c;
      },
      (e: unknown) => {
        s.connecting = null;
        this.connectFailures++;
        s.failures++;
        this.scheduleReconnect(i);
        throw e;
      },
    );
    s.connecting = p;
    return p;
  }

  /** After a loss or failed connect: reconnect slot i after a full-jitter delay (or, deferred, the bound). */
  private scheduleReconnect(i: number, deferred = false): void {
    const s = this.slots[i];
    if (this.closed || s.timer !== null || s.connecting !== null || (s.client !== null && !s.client.isClosed)) return;
    const boundMs = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** s.failures);
    s.timer = setTimeout(() => {
      s.timer = null;
      if (this.mayReconnect()) void this.connect(i).catch(() => undefined);
      else this.scheduleReconnect(i, true);
    }, deferred ? Math.max(1, boundMs) : this.random() * boundMs);
    s.timer.unref();
  }
}
