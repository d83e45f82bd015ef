/**
 * RetryingClient: StrataClient's calls with reconnection, exponential backoff with full jitter, and
 * a circuit breaker for the server (README, "Service"). Page reads are idempotent, so a call that
 * got no answer — the connection could not be made or was lost (CONNECTION_CLOSED), or the deadline
 * passed (DEADLINE_EXCEEDED) — or that was refused with THROTTLED is sent again, on another open
 * connection of its ClientPool (`pool: { connections }`, one by default; lost ones are replaced with
 * backoff) or a new one, after a delay: full jitter, uniform in [0, min(maxDelayMs,
 * baseDelayMs · 2^attempt)) (the AWS architecture blog's "full jitter"), and for THROTTLED at least
 * the server's retry-after. Every other error is the answer and is thrown at once.
 *
 * The breaker counts calls the server did not answer; once open, calls fail at once with
 * CIRCUIT_OPEN until its half-open probe gets an answer. Clock, sleep and random are injectable so
 * tests replay exact schedules.
 */
import { describeValue, isStrataError, StrataError } from '../errors';
import { checkOptionalFunction, checkOptionalMs, checkOptionalObject } from './arg_checks';
import type { PageKey } from '../key';
import type { Lsn } from '../lsn';
import type { RelationInfo, RelTag } from '../timeline';
import { type BreakerOptions, type BreakerState, CircuitBreaker } from './circuit_breaker';
import { checkClientOptions, type ClientOptions, type PageReadOptions, type RequestOptions, type StrataClient, ThrottledError } from './client';
import { ClientPool, type PoolOptions, type PoolStats } from './client_pool';
import { type Clock, monotonicClock } from './throttle';

export interface RetryOptions {
  /** Tries per call, the first included (default 5). */
  maxAttempts?: number;
  /** The first retry's delay bound (default 10 ms); doubles per attempt. */
  baseDelayMs?: number;
  /** The bound never exceeds this (default 2 s). */
  maxDelayMs?: number;
}

export const DEFAULT_RETRY_MAX_ATTEMPTS = 5;
export const DEFAULT_RETRY_BASE_DELAY_MS = 10;
export const DEFAULT_RETRY_MAX_DELAY_MS = 2_000;

export interface RetryingClientOptions extends ClientOptions {
  retry?: RetryOptions;
  /** Connections to keep open and how lost ones are replaced (default: one connection). */
  pool?: PoolOptions;
  breaker?: BreakerOptions;
  /** Told of every breaker transition. */
  onBreakerState?: (to: BreakerState, from: BreakerState) => void;
  /** Told of every retry: the attempt that failed (0-based), why, and the delay before the next. */
  onRetry?: (e: { attempt: number; code: string; delayMs: number }) => void;
  /** Injectable for tests: uniform in [0, 1), ms clock, and the wait between tries. */
  random?: () => number;
  clock?: Clock;
  sleep?: (ms: number) => Promise<void>;
}

/** Full jitter: uniform in [0, min(maxDelayMs, baseDelayMs · 2^attempt)). */
export function fullJitterDelayMs(attempt: number, baseDelayMs: number, maxDelayMs: number, random: () => number): number {
  return random() * Math.min(maxDelayMs, baseDelayMs * 2 ** attempt);
}

const realSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class RetryingClient {
  readonly breaker: CircuitBreaker;
  private readonly pool: ClientPool;
  private closed = false;
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly random: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly options: RetryingClientOptions) {
    checkClientOptions(options);
    checkOptionalObject(options.retry, 'retry options');
    checkOptionalObject(options.pool, 'pool options');
    for (const f of ['onBreakerState', 'onRetry', 'random', 'clock', 'sleep'] as const) checkOptionalFunction(options[f], f);
    const r = options.retry ?? {};
    this.maxAttempts = r.maxAttempts ?? DEFAULT_RETRY_MAX_ATTEMPTS;
    this.baseDelayMs = r.baseDelayMs ?? DEFAULT_RETRY_BASE_DELAY_MS;
    this.maxDelayMs = r.maxDelayMs ?? DEFAULT_RETRY_MAX_DELAY_MS;
    if (!Number.isInteger(this.maxAttempts) || this.maxAttempts < 1) throw new StrataError('BAD_ARGUMENT', `retry.maxAttempts must be an integer ≥ 1: got ${describeValue(this.maxAttempts)}`);
    checkOptionalMs(this.baseDelayMs, 'retry.baseDelayMs');
    checkOptionalMs(this.maxDelayMs, 'retry.maxDelayMs');
    this.random = options.random ?? Math.random;
    this.sleep = options.sleep ?? realSleep;
    this.breaker = new CircuitBreaker(options.breaker, options.clock ?? monotonicClock, options.onBreakerState);
    this.pool = new ClientPool(options, { random: this.random, mayReconnect: () => this.breaker.state === 'closed', ...options.pool });
  }

  /** The connection pool's counters: open connections, connects made, connects failed. */
  poolStats(): PoolStats {
    return this.pool.stats();
  }

  /** The breaker's state: 'closed', 'open' or 'half-open'. */
  get breakerState(): BreakerState {
    return this.breaker.state;
  }

  getPage(key: PageKey, lsn: Lsn, opts?: PageReadOptions): Promise<Buffer> {
    return this.call((c) => c.getPage(key, lsn, opts));
  }

  getPages(keys: readonly PageKey[], lsn: Lsn, opts?: PageReadOptions): Promise<Buffer[]> {
    return this.call((c) => c.getPages(keys, lsn, opts));
  }

  getRelSize(rel: RelTag, lsn: Lsn, opts?: RequestOptions): Promise<number> {
    return this.call((c) => c.getRelSize(rel, lsn, opts));
  }

  exists(rel: RelTag, lsn: Lsn, opts?: RequestOptions): Promise<boolean> {
    return this.call((c) => c.exists(rel, lsn, opts));
  }

  listRelations(lsn: Lsn, opts?: RequestOptions & { dbOid?: number }): Promise<RelationInfo[]> {
    return this.call((c) => c.listRelations(lsn, opts));
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.pool.close();
  }

  private async call<T>(op: (c: StrataClient) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new StrataError('CONNECTION_CLOSED', 'the client was closed');
      if (!this.breaker.tryAcquire()) {
        throw new StrataError('CIRCUIT_OPEN', `the circuit breaker for ${this.options.host}:${this.options.port} is open after ${this.breaker.consecutiveFailures} consecutive failures; next probe in ${Math.ceil(this.breaker.retryInMs)} ms`);
      }
      let e: unknown;
      try {
        const v = await op(await this.pool.acquire());
        this.breaker.success();
        return v;
      } catch (x) {
        e = x;
      }
      const unanswered = isStrataError(e, 'CONNECTION_CLOSED') || isStrataError(e, 'DEADLINE_EXCEEDED');
      if (unanswered) this.breaker.failure();
      else this.breaker.success(); // an answer, even an error or THROTTLED: the server is up
      const retriable = unanswered || e instanceof ThrottledError;
      if (!retriable || attempt + 1 >= this.maxAttempts) throw e;
      const jitter = fullJitterDelayMs(attempt, this.baseDelayMs, this.maxDelayMs, this.random);
      const delayMs = e instanceof ThrottledError ? Math.max(e.retryAfterMs, jitter) : jitter;
      this.options.onRetry?.({ attempt, code: (e as StrataError).code, delayMs });
      await this.sleep(delayMs);
    }
  }
}
