/**
 * A circuit breaker for one server (README, "Service"): closed (calls go through) → open after
 * `failureThreshold` consecutive failures (calls fail at once with CIRCUIT_OPEN, sparing a dead
 * server and the caller's time) → half-open after `openMs` (one probe call goes through; its success
 * closes the breaker, its failure opens it for another `openMs`). A failure is the server not
 * answering (connection refused or lost, deadline); any answer — a page, an ERROR, THROTTLED —
 * is a success: the server is up. Time comes from an injected clock.
 */
import { describeValue, StrataError } from '../errors';
import { checkOptionalFunction, checkOptionalObject } from './arg_checks';
import { type Clock, monotonicClock } from './throttle';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  /** Consecutive failures that open the breaker (default 5). */
  failureThreshold?: number;
  /** How long it stays open before a half-open probe (default 5 s). */
  openMs?: number;
}

export const DEFAULT_BREAKER_FAILURE_THRESHOLD = 5;
export const DEFAULT_BREAKER_OPEN_MS = 5_000;

export class CircuitBreaker {
  private current: BreakerState = 'closed';
  private failures = 0;
  private openedAt = 0;
  private probing = false;
  private readonly threshold: number;
  private readonly openMs: number;

  constructor(o: BreakerOptions = {}, private readonly clock: Clock = monotonicClock, private readonly onChange?: (to: BreakerState, from: BreakerState) => void) {
    checkOptionalObject(o, 'breaker options');
    checkOptionalFunction(onChange, 'onBreakerState');
    this.threshold = o.failureThreshold ?? DEFAULT_BREAKER_FAILURE_THRESHOLD;
    this.openMs = o.openMs ?? DEFAULT_BREAKER_OPEN_MS;
    if (!Number.isInteger(this.threshold) || this.threshold < 1) throw new StrataError('BAD_ARGUMENT', `breaker failureThreshold must be an integer ≥ 1: got ${describeValue(this.threshold)}`);
    if (typeof this.openMs !== 'number' || !Number.isFinite(this.openMs) || this.openMs < 0) throw new StrataError('BAD_ARGUMENT', `breaker openMs must be a number of ms ≥ 0: got ${describeValue(this.openMs)}`);
  }

  /** The state now (an open breaker whose time is up reads as half-open). */
  get state(): BreakerState {
    if (this.current === 'open' && this.clock() - this.openedAt >= this.openMs) this.move('half-open');
    return this.current;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }

  /**
   * Whether a call may go out now. In half-open, only one at a time (the probe); the caller must
   * then report it with success() or failure().
   */
  tryAcquire(): boolean {
    const s = this.state;
    if (s === 'closed') return true;
    if (s === 'open' || this.probing) return false;
    this.probing = true;
    return true;
  }

  /** Milliseconds until an open breaker lets a probe through (0 unless open). */
  get retryInMs(): number {
    return this.state === 'open' ? Math.max(0, this.openedAt + this.openMs - this.clock()) : 0;
  }

  success(): void {
    this.failures = 0;
    this.probing = false;
    if (this.current !== 'closed') this.move('closed');
  }

  failure(): void {
    this.failures++;
    const wasProbe = this.probing;
    this.probing = false;
    if (wasProbe || (this.current === 'closed' && this.failures >= this.threshold)) {
      this.openedAt = this.clock();
      this.move('open');
    }
  }

  private move(to: BreakerState): void {
    const from = this.current;
    if (from === to) return;
    this.current = to;
    try {
      this.onChange?.(to, from);
    } catch {
      // An observer's failure is not the breaker's.
    }
  }
}

