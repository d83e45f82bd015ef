/**
 * RetryingClient (lib/service/retrying_client.ts) and its CircuitBreaker: the full-jitter bounds,
 * every breaker transition on a virtual clock, a THROTTLED call retried after the server's
 * retry-after, and — against a real server that is stopped and restarted on the same port —
 * retries on connection loss, the breaker opening after N consecutive failures and failing fast
 * (no connection attempted), then closing on a half-open probe once the server is back.
 * Clocks and sleeps are variables: no wall-clock timing.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isStrataError, type Repository, type Timeline } from '../../lib';
import { type BreakerState, CircuitBreaker } from '../../lib/service/circuit_breaker';
import { Server } from '../../lib/service/page_server';
import { fullJitterDelayMs, RetryingClient } from '../../lib/service/retrying_client';
import { KEYS, LSN_LAST, removeDir, repoWithData, startServer, TENANT, TIMELINE, codeOf } from '../helpers/service';

describe('backoff and breaker arithmetic', () => {
  it('full jitter: uniform below min(max, base · 2^attempt)', () => {
    const half = (): number => 0.5;
    expect([0, 1, 2, 3, 4, 8, 20].map((a) => fullJitterDelayMs(a, 10, 1000, half))).toEqual([5, 10, 20, 40, 80, 500, 500]);
    expect(fullJitterDelayMs(3, 10, 1000, () => 0)).toBe(0);
    expect(fullJitterDelayMs(3, 10, 1000, () => 0.999)).toBeCloseTo(79.92);
  });

  it('closed → open after N consecutive failures → half-open after openMs → one probe → closed or open again', () => {
    let now = 0;
    const seen: string[] = [];
    const b = new CircuitBreaker({ failureThreshold: 3, openMs: 1000 }, () => now, (to, from) => seen.push(`${from}→${to}`));
    b.failure();
    b.failure();
    b.success(); // an answer resets the count
    b.failure();
    b.failure();
    expect(b.state).toBe('closed');
    expect(b.tryAcquire()).toBe(true);
    b.failure();
    expect(b.state).toBe('open');
    expect(b.tryAcquire()).toBe(false);
    now = 999;
    expect(b.state).toBe('open');
    expect(b.retryInMs).toBe(1);
    now = 1000;
    expect(b.state).toBe('half-open');
    expect(b.tryAcquire()).toBe(true); // the probe
    expect(b.tryAcquire()).toBe(false); // only one
    b.failure(); // the probe failed: open for another openMs
    expect(b.state).toBe('open');
    now = 1999;
    expect(b.tryAcquire()).toBe(false);
    now = 2000;
    expect(b.tryAcquire()).toBe(true);
    b.success();
    expect(b.state).toBe('closed');
    expect(seen).toEqual(['closed→open', 'open→half-open', 'half-open→open', 'open→half-open', 'half-open→closed']);
    expect(() => new CircuitBreaker({ failureThreshold: 0 })).toThrow(/BAD_ARGUMENT/);
  });
});

describe('RetryingClient against a real server', () => {
  let dir: string;
  let repo: Repository;
  let tl: Timeline;
  let server: Server;
  let port: number;
  let now: number;
  const clients: RetryingClient[] = [];

  beforeEach(async () => {
    ({ dir, repo, tl } = await repoWithData('ts', 'retry'));
    now = 0;
    ({ server, port } = await startServer(repo, { throttle: { rate: 10, burst: 1 }, clock: () => now }));
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await server.close();
    await repo.close();
    removeDir(dir);
  });

  it('THROTTLED is retried after the server\'s retry-after (not less), and does not count against the breaker', async () => {
    const retries: Array<{ attempt: number; code: string; delayMs: number }> = [];
    const c = new RetryingClient({
      host: '127.0.0.1', port, tenantId: TENANT, timelineId: TIMELINE, random: () => 0.5, clock: () => now,
      sleep: async (ms) => {
        now += ms; // the throttle's clock moves by exactly the wait
      },
      onRetry: (r) => retries.push(r),
    });
    clients.push(c);
    const want = await tl.getPage(KEYS[1], LSN_LAST);
    expect((await c.getPage(KEYS[0], LSN_LAST)).length).toBe(8192);
    expect((await c.getPage(KEYS[1], LSN_LAST)).equals(want)).toBe(true);
    // The second call was refused once (burst 1, 10 pages/s: 100 ms) and retried after 100 ms — the
    // jitter bound of attempt 0 (5 ms) is below the server's retry-after.
    expect(retries).toEqual([{ attempt: 0, code: 'THROTTLED', delayMs: 100 }]);
    expect(now).toBe(100);
    expect(c.breakerState).toBe('closed');
    expect(server.stats().throttled).toBe(1);
  });

  it('a server stopped and restarted: retries, breaker opens after N failures, fails fast, half-open probe closes it', async () => {
    server.throttle.setDefaultLimit(null);
    const delays: number[] = [];
    const transitions: string[] = [];
    const c = new RetryingClient({
      host: '127.0.0.1', port, tenantId: TENANT, timelineId: TIMELINE,
      retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 1000 },
      breaker: { failureThreshold: 3, openMs: 1000 },
      random: () => 0.5, clock: () => now,
      sleep: async (ms) => {
        delays.push(ms);
      },
      onBreakerState: (to: BreakerState, from: BreakerState) => transitions.push(`${from}→${to}`),
    });
    clients.push(c);
    const want = await tl.getPage(KEYS[2], LSN_LAST);
    expect((await c.getPage(KEYS[2], LSN_LAST)).equals(want)).toBe(true);

    await server.close();
    // Two tries, both unanswered (the old connection is gone, the port refuses): CONNECTION_CLOSED,
    // after one full-jitter wait of 0.5 · 10 ms.
    expect(await codeOf(c.getPage(KEYS[2], LSN_LAST))).toBe('CONNECTION_CLOSED');
    expect(delays).toEqual([5]);
    expect(c.breakerState).toBe('closed');
    expect(c.breaker.consecutiveFailures).toBe(2);
    // The third failure opens the breaker; the retry that follows is refused by it.
    expect(await codeOf(c.getPage(KEYS[2], LSN_LAST))).toBe('CIRCUIT_OPEN');
    expect(c.breakerState).toBe('open');
    expect(transitions).toEqual(['closed→open']);

    // Back on the same port. The breaker is still open: calls fail at once, no connection is tried.
    server = new Server(repo, { auth: { disabled: true } });
    await server.listen('127.0.0.1', port);
    const e = await c.getPage(KEYS[2], LSN_LAST).catch((x: unknown) => x);
    expect(isStrataError(e, 'CIRCUIT_OPEN')).toBe(true);
    expect((e as Error).message).toMatch(/open after 3 consecutive failures; next probe in 1000 ms/);
    expect(server.stats().connectionsTotal).toBe(0);

    // openMs later: half-open; the probe is answered and the breaker closes.
    now += 1000;
    expect(c.breakerState).toBe('half-open');
    expect((await c.getPage(KEYS[2], LSN_LAST)).equals(want)).toBe(true);
    expect(c.breakerState).toBe('closed');
    expect(server.stats().connectionsTotal).toBe(1);
    expect(transitions).toEqual(['closed→open', 'open→half-open', 'half-open→closed']);
    // Errors that are answers are not retried and do not trip the breaker.
    expect(await codeOf(c.getPage({ ...KEYS[0], relNumber: 1 }, LSN_LAST))).toBe('PAGE_NOT_FOUND');
    expect(c.breaker.consecutiveFailures).toBe(0);
  });
});
