/**
 * Per-tenant GCRA throttle for the page service (docs/PROTOCOL.md, "Throttling"). GCRA — the
 * generic cell rate algorithm, the virtual-scheduling form of a leaky bucket — keeps one number per
 * tenant, its theoretical arrival time (TAT): the moment the tenant's bucket would be empty again
 * if it sent nothing more. A request costing n pages at time t is allowed when
 * max(TAT, t) + n·T − burst·T ≤ t (T = 1000 / rate ms per page), and then moves TAT to
 * max(TAT, t) + n·T; otherwise it is refused with retry-after = that left side − t, and TAT stays.
 * So a tenant gets `burst` pages at once from idle and `rate` pages/s sustained, and a refused
 * request costs nothing: a noisy tenant's retries never push back its own schedule or anyone else's.
 *
 * Time comes from an injected clock (milliseconds, monotonic) so tests replay exact schedules.
 */
import { describeValue, StrataError } from '../errors';

/** A tenant's limit: `rate` pages per second sustained, `burst` pages at once from idle. */
export interface ThrottleLimit {
  rate: number;
  burst: number;
}

export type ThrottleDecision = { allowed: true } | { allowed: false; retryAfterMs: number };

/** The answer of every allowed take(): one frozen object, not one per request. */
const ALLOWED: ThrottleDecision = Object.freeze({ allowed: true });

/** Milliseconds on a monotonic clock. */
export type Clock = () => number;

export const monotonicClock: Clock = () => performance.now();

/** Above this a rate is a typo, not a limit (pages/s). */
const MAX_RATE_PER_SECOND = 1e9;
/** Above this a burst is a typo (pages). */
const MAX_BURST_PAGES = 1e9;

export function checkThrottleLimit(l: ThrottleLimit, where: string): ThrottleLimit {
  if (l === null || typeof l !== 'object') throw new StrataError('BAD_ARGUMENT', `${where}: a throttle limit is { rate, burst }`);
  if (typeof l.rate !== 'number' || !Number.isFinite(l.rate) || l.rate <= 0 || l.rate > MAX_RATE_PER_SECOND) {
    throw new StrataError('BAD_ARGUMENT', `${where}: rate must be a number of pages/s in (0, ${MAX_RATE_PER_SECOND}]: got ${describeValue(l.rate)}`);
  }
  if (!Number.isInteger(l.burst) || l.burst < 1 || l.burst > MAX_BURST_PAGES) {
    throw new StrataError('BAD_ARGUMENT', `${where}: burst must be an integer number of pages in [1, ${MAX_BURST_PAGES}]: got ${describeValue(l.burst)}`);
  }
  return { rate: l.rate, burst: l.burst };
}

interface TenantState {
  /** This tenant's own limit; null: the throttle's default. */
  limit: ThrottleLimit | null;
  /** Theoretical arrival time (ms on the clock). */
  tat: number;
}

export class Throttle {
  private readonly tenants = new Map<string, TenantState>();
  private defaultLimit: ThrottleLimit | null;

  /** `defaultLimit` null: tenants without a limit of their own are not throttled. */
  constructor(defaultLimit: ThrottleLimit | null, private readonly clock: Clock = monotonicClock) {
    this.defaultLimit = defaultLimit === null ? null : checkThrottleLimit(defaultLimit, 'throttle default');
  }

  /** Charge `pages` to `tenantId` now, or say how long until it would fit. */
  take(tenantId: string, pages: number): ThrottleDecision {
    const st = this.tenants.get(tenantId);
    const limit = st?.limit ?? this.defaultLimit;
    if (limit === null) return ALLOWED;
    const now = this.clock();
    const intervalMs = 1000 / limit.rate;
    const start = Math.max(st?.tat ?? now, now);
    const newTat = start + pages * intervalMs;
    // A request costing more than the whole burst could never fit; it is let through once the
    // bucket is empty (start = now) and pays in full, so the rate still holds over time.
    const allowAt = pages > limit.burst ? start : newTat - limit.burst * intervalMs;
    if (allowAt > now) return { allowed: false, retryAfterMs: allowAt - now };
    if (st === undefined) this.tenants.set(tenantId, { limit: null, tat: newTat });
    else st.tat = newTat;
    return ALLOWED;
  }

  /** The limit that applies to `tenantId` (its own or the default), null when unlimited. */
  limitOf(tenantId: string): ThrottleLimit | null {
    return this.tenants.get(tenantId)?.limit ?? this.defaultLimit;
  }

  /** Whether `tenantId` has a limit of its own (rather than the default). */
  hasOwnLimit(tenantId: string): boolean {
    return (this.tenants.get(tenantId)?.limit ?? null) !== null;
  }

  /**
   * Give `tenantId` its own limit (null: back to the default). Takes effect on the next request;
   * the tenant's TAT is kept, so changing the limit neither forgives nor adds debt already run up.
   */
  setLimit(tenantId: string, limit: ThrottleLimit | null): void {
    const checked = limit === null ? null : checkThrottleLimit(limit, `throttle of tenant ${tenantId}`);
    const st = this.tenants.get(tenantId);
    if (st === undefined) this.tenants.set(tenantId, { limit: checked, tat: -Infinity });
    else st.limit = checked;
  }

  setDefaultLimit(limit: ThrottleLimit | null): void {
    this.defaultLimit = limit === null ? null : checkThrottleLimit(limit, 'throttle default');
  }

  get defaultLimitValue(): ThrottleLimit | null {
    return this.defaultLimit;
  }

  /** Forget a tenant (deleted): its limit and its schedule. */
  forget(tenantId: string): void {
    this.tenants.delete(tenantId);
  }
}
