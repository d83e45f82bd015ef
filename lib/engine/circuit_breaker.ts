/**
 * The circuit breaker of one remote storage, shared by every upload queue that uses it (issue 15:
 * "a circuit breaker per remote"). While storage answers, it is **closed** and does nothing. After
 * `failuresToOpen` calls in a row have failed without an answer (a transient RemoteStorageError:
 * refused, reset, timed out, 5xx), it **opens**: for `cooldownMs` no queue calls storage at all —
 * they wait instead of each retrying on its own schedule. Then it is **half-open**: exactly one call
 * (the probe) goes through; its success closes the breaker, its failure opens it for another
 * cooldown. An answer that is an error of another kind (a 4xx) still proves the server is up, so it
 * counts as a success here.
 *
 * One breaker per RemoteStorage object (breakerFor), so two repositories given the same storage
 * share it; the engine creates no other.
 */
import type { RemoteStorage } from '../remote/remote_storage';

export type BreakerState = 'closed' | 'open' | 'half-open';

/** While another caller's probe is in flight, callers look again after this long. */
const PROBE_POLL_MS = 50;

/** What admit() says: call now (as the probe, when half-open), or wait and ask again. */
export type Admission = { waitMs: 0; probe: boolean } | { waitMs: number; probe: false };

export class CircuitBreaker {
  private _state: BreakerState = 'closed';
  private failuresInRow = 0;
  private openedAt = 0;
  private probeInFlight = false;
  /** Times the breaker has opened (from closed or after a failed probe). */
  opens = 0;
  /** Bumped each time storage is found down (the breaker opens or a probe fails): syncs waiting since before then may be told. */
  downVerdicts = 0;
  /** The failure that last opened the breaker. */
  lastError: unknown = null;

  constructor(
    private readonly failuresToOpen: number,
    private readonly cooldownMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get state(): BreakerState {
    return this._state;
  }

  admit(): Admission {
    if (this._state === 'closed') return { waitMs: 0, probe: false };
    const left = this.openedAt + this.cooldownMs - this.now();
    if (this._state === 'open' && left > 0) return { waitMs: left, probe: false };
    if (this.probeInFlight) return { waitMs: PROBE_POLL_MS, probe: false };
    this._state = 'half-open';
    this.probeInFlight = true;
    return { waitMs: 0, probe: true };
  }

  /** The call answered (successfully, or with an error a retry cannot fix). */
  answered(probe: boolean): void {
    if (probe) this.probeInFlight = false;
    this.failuresInRow = 0;
    this._state = 'closed';
  }

  /** The call failed on our side (not storage's answer): a probe's turn passes to the next caller. */
  abandoned(probe: boolean): void {
    if (probe) this.probeInFlight = false;
  }

  /** The call got no answer (a transient failure). */
  failed(probe: boolean, error: unknown): void {
    if (probe) this.probeInFlight = false;
    this.failuresInRow++;
    const reopen = probe && this._state === 'half-open';
    const open = this._state === 'closed' && this.failuresInRow >= this.failuresToOpen;
    if (!reopen && !open) return;
    this._state = 'open';
    this.openedAt = this.now();
    this.opens++;
    this.downVerdicts++;
    this.lastError = error;
  }
}

const breakers = new WeakMap<RemoteStorage, CircuitBreaker>();

/** The breaker of `storage`, made with these settings by its first user. */
export function breakerFor(storage: RemoteStorage, failuresToOpen: number, cooldownMs: number): CircuitBreaker {
  let b = breakers.get(storage);
  if (b === undefined) {
    b = new CircuitBreaker(failuresToOpen, cooldownMs);
    breakers.set(storage, b);
  }
  return b;
}
