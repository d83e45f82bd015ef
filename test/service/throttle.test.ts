/**
 * The per-tenant GCRA throttle (lib/service/throttle.ts): its decisions and retry-after values
 * equal an independently written token bucket over random schedules and a schedule worked out by
 * hand; limits change at runtime; and end to end, on a real server with a virtual clock, a noisy
 * tenant is refused with THROTTLED and a retry-after while a quiet tenant is never throttled.
 * No wall-clock timing anywhere: every clock here is a variable the test moves.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isStrataError, PAGE_SIZE, type Repository, StrataClient, type Timeline } from '../../lib';
import { ThrottledError } from '../../lib/service/client';
import { encodeHello, encodeRequest } from '../../lib/service/frames';
import type { Server } from '../../lib/service/page_server';
import { Throttle, type ThrottleDecision } from '../../lib/service/throttle';
import { Rng } from '../helpers/random';
import { KEYS, LSN_LAST, RawConn, removeDir, repoWithData, startServer, TENANT, TIMELINE } from '../helpers/service';

/**
 * The reference: a token bucket holding credit in milliseconds of rate (capacity burst·T, refilled
 * 1 per ms, a page costs T). A request fits when the credit covers its cost — or, for a request
 * costing more than the whole bucket, when the bucket is full — and then pays its full cost, which
 * may leave the credit negative. Written from the definition, not from throttle.ts.
 */
class TokenBucket {
  private credit: number;
  private last = 0;
  constructor(private readonly intervalMs: number, private readonly burst: number) {
    this.credit = intervalMs * burst;
  }
  take(now: number, pages: number): ThrottleDecision {
    const capacity = this.intervalMs * this.burst;
    this.credit = Math.min(capacity, this.credit + (now - this.last));
    this.last = now;
    const need = Math.min(pages * this.intervalMs, capacity);
    if (this.credit < need) return { allowed: false, retryAfterMs: need - this.credit };
    this.credit -= pages * this.intervalMs;
    return { allowed: true };
  }
}

/** Rates whose interval is a whole number of ms, so both sides compute exactly. */
const RATES = [1, 2, 4, 5, 8, 10, 20, 25, 40, 50, 100, 125, 200, 250, 500, 1000];

describe('GCRA arithmetic', () => {
  it('a schedule worked out by hand: rate 10/s, burst 3', () => {
    let now = 0;
    const t = new Throttle({ rate: 10, burst: 3 }, () => now);
    const at = (ms: number): ThrottleDecision => {
      now = ms;
      return t.take('a', 1);
    };
    const ok = { allowed: true };
    expect([at(0), at(0), at(0)]).toEqual([ok, ok, ok]); // the burst, from idle
    expect(at(0)).toEqual({ allowed: false, retryAfterMs: 100 }); // one page per 100 ms after it
    expect(at(99)).toEqual({ allowed: false, retryAfterMs: 1 }); // a refusal cost nothing
    expect(at(100)).toEqual(ok);
    expect(at(100)).toEqual({ allowed: false, retryAfterMs: 100 });
    expect(at(250)).toEqual(ok);
    expect(at(260)).toEqual({ allowed: false, retryAfterMs: 40 });
    expect(at(10_000)).toEqual(ok); // idle long enough: the whole burst is back
    expect([at(10_000), at(10_000)]).toEqual([ok, ok]);
    expect(at(10_000).allowed).toBe(false);
  });

  it('decisions and retry-after equal the reference token bucket over 200 random schedules', () => {
    const rng = new Rng(0x6c7a);
    let compared = 0;
    let refused = 0;
    for (let run = 0; run < 200; run++) {
      const rate = RATES[rng.int(0, RATES.length)];
      const burst = rng.int(1, 13);
      let now = 0;
      const t = new Throttle({ rate, burst }, () => now);
      const ref = new TokenBucket(1000 / rate, burst);
      for (let i = 0; i < 300; i++) {
        now += rng.chance(1 / 3) ? 0 : rng.int(0, Math.ceil(2000 / rate));
        // Mostly single pages, some batches, a few larger than the whole burst.
        const pages = rng.chance(0.7) ? 1 : rng.int(1, burst + 4);
        const got = t.take('tenant', pages);
        expect(got, `run ${run} (rate ${rate}, burst ${burst}) request ${i} at ${now} ms, ${pages} pages`).toEqual(ref.take(now, pages));
        compared++;
        if (!got.allowed) refused++;
      }
    }
    expect(compared).toBe(60_000);
    // Both kinds of decision were exercised, in quantity.
    expect(refused).toBeGreaterThan(5_000);
    expect(compared - refused).toBeGreaterThan(5_000);
  });

  it('a tenant hammering every ms gets burst + rate × time pages, and no window holds more', () => {
    let now = 0;
    const rate = 100;
    const burst = 5;
    const t = new Throttle({ rate, burst }, () => now);
    const admitted: number[] = [];
    for (now = 0; now < 10_000; now++) if (t.take('noisy', 1).allowed) admitted.push(now);
    // From t = 0: the burst at once, then one every 10 ms: 5 + floor(9999 / 10) = 1004.
    expect(admitted.length).toBe(burst + Math.floor(9_999 / (1000 / rate)));
    for (let i = 0; i < admitted.length; i++) {
      for (let j = i; j < admitted.length; j++) {
        expect(j - i + 1).toBeLessThanOrEqual(burst + Math.floor(((admitted[j] - admitted[i]) * rate) / 1000));
        if (admitted[j] - admitted[i] > 200) break;
      }
    }
  });

  it('GetPages-sized charges: a batch costs its pages', () => {
    let now = 0;
    const t = new Throttle({ rate: 1000, burst: 64 }, () => now);
    expect(t.take('a', 64)).toEqual({ allowed: true });
    expect(t.take('a', 16)).toEqual({ allowed: false, retryAfterMs: 16 });
    now = 16;
    expect(t.take('a', 16)).toEqual({ allowed: true });
    // More than the burst: let through only from a full bucket, and then paid in full.
    const small = new Throttle({ rate: 1000, burst: 4 }, () => now);
    expect(small.take('b', 10)).toEqual({ allowed: true });
    expect(small.take('b', 1)).toEqual({ allowed: false, retryAfterMs: 7 });
    now += 7;
    expect(small.take('b', 1)).toEqual({ allowed: true });
  });

  it('limits per tenant, changeable at runtime; no default means unlimited; bad limits are refused', () => {
    let now = 0;
    const t = new Throttle(null, () => now);
    for (let i = 0; i < 10_000; i++) expect(t.take('free', 1).allowed).toBe(true);
    expect(t.limitOf('free')).toBeNull();
    t.setLimit('capped', { rate: 10, burst: 1 });
    expect(t.take('capped', 1).allowed).toBe(true);
    expect(t.take('capped', 1)).toEqual({ allowed: false, retryAfterMs: 100 });
    expect(t.take('free', 1).allowed).toBe(true); // one tenant's limit is not another's
    // Raising the limit takes effect at once but keeps the debt already run up (TAT = 100).
    t.setLimit('capped', { rate: 1000, burst: 1 });
    expect(t.take('capped', 1)).toEqual({ allowed: false, retryAfterMs: 100 });
    now = 100;
    expect(t.take('capped', 1).allowed).toBe(true);
    expect(t.take('capped', 1)).toEqual({ allowed: false, retryAfterMs: 1 });
    t.setDefaultLimit({ rate: 1, burst: 2 });
    expect(t.limitOf('free')).toEqual({ rate: 1, burst: 2 });
    expect(t.hasOwnLimit('capped')).toBe(true);
    t.setLimit('capped', null);
    expect(t.hasOwnLimit('capped')).toBe(false);
    expect(t.limitOf('capped')).toEqual({ rate: 1, burst: 2 });
    for (const bad of [{ rate: 0, burst: 1 }, { rate: -1, burst: 1 }, { rate: Number.NaN, burst: 1 }, { rate: 1, burst: 0 }, { rate: 1, burst: 1.5 }]) {
      expect(() => t.setLimit('x', bad), JSON.stringify(bad)).toThrow(/BAD_ARGUMENT/);
    }
  });
});

describe('throttling on a real server (virtual clock)', () => {
  const QUIET = 'tenant_quiet';
  let dir: string;
  let repo: Repository;
  let tl: Timeline;
  let server: Server;
  let port: number;
  let now: number;
  const clients: StrataClient[] = [];

  beforeEach(async () => {
    ({ dir, repo, tl } = await repoWithData('ts', 'throttle'));
    const quiet = await repo.createTimeline({ tenantId: QUIET, timelineId: TIMELINE });
    quiet.ingest([{ lsn: 0x100n, key: KEYS[0], kind: 'image', page: new Uint8Array(PAGE_SIZE).fill(3) }]);
    now = 0;
    ({ server, port } = await startServer(repo, { throttle: { rate: 100, burst: 20 }, clock: () => now }));
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await server.close();
    await repo.close();
    removeDir(dir);
  });

  const connect = async (tenantId: string): Promise<StrataClient> => {
    const c = await StrataClient.connect({ host: '127.0.0.1', port, tenantId, timelineId: TIMELINE });
    clients.push(c);
    return c;
  };

  it('a noisy tenant is refused with retry-after; a quiet tenant on the same server never is', async () => {
    const noisy = await connect(TENANT);
    const quiet = await connect(QUIET);
    // The clock stands still: the noisy tenant gets exactly its burst, however hard it pipelines,
    // and the quiet tenant's requests, interleaved with the noise, all succeed.
    const noise = Array.from({ length: 200 }, (_, i) => noisy.getPage(KEYS[i % KEYS.length], LSN_LAST).then(() => null, (e: unknown) => e));
    const calm = Array.from({ length: 15 }, () => quiet.getPage(KEYS[0], 0x100n));
    const noiseResults = await Promise.all(noise);
    const calmPages = await Promise.all(calm);
    expect(calmPages.every((p) => p[0] === 3)).toBe(true);
    const refusals = noiseResults.filter((e): e is ThrottledError => e instanceof ThrottledError);
    expect(noiseResults.filter((e) => e === null).length).toBe(20);
    expect(refusals.length).toBe(180);
    // Refusals cost nothing, so each says the same thing: one page interval (10 ms) from now.
    expect(new Set(refusals.map((e) => e.retryAfterMs))).toEqual(new Set([10]));
    expect(isStrataError(refusals[0], 'THROTTLED')).toBe(true);
    expect(refusals[0].message).toMatch(/tenant_a is over its limit of 100 pages\/s; retry after 10 ms/);
    expect(server.stats()).toMatchObject({ throttled: 180, errors: 0 });
    // After the retry-after, the noisy tenant is served again — one page's worth.
    now += 10;
    expect((await noisy.getPage(KEYS[0], LSN_LAST)).equals(await tl.getPage(KEYS[0], LSN_LAST))).toBe(true);
    await expect(noisy.getPage(KEYS[0], LSN_LAST)).rejects.toThrow(ThrottledError);
    expect((await quiet.getPage(KEYS[0], 0x100n))[0]).toBe(3);
  });

  it('GetPages is charged per page, and a limit set at runtime applies to the next request', async () => {
    const c = await connect(TENANT);
    expect((await c.getPages(KEYS.slice(0, 16), LSN_LAST)).length).toBe(16);
    const e = await c.getPages(KEYS.slice(0, 16), LSN_LAST).catch((x: unknown) => x);
    // 32 pages against a burst of 20: 12 page intervals of 10 ms until it fits.
    expect(e).toBeInstanceOf(ThrottledError);
    expect((e as ThrottledError).retryAfterMs).toBe(120);
    server.throttle.setLimit(TENANT, { rate: 1000, burst: 64 });
    // The debt (TAT = 160 ms) stays; at the new rate 32 pages fit once TAT − 64 ms ≤ now.
    now = 128;
    expect((await c.getPages(KEYS.slice(0, 32), LSN_LAST)).length).toBe(32);
    server.throttle.setLimit(TENANT, null);
    expect(server.throttle.limitOf(TENANT)).toEqual({ rate: 100, burst: 20 });
  });

  it('a version-1 client is told with ERROR THROTTLED (it cannot decode the THROTTLED frame)', async () => {
    const raw = await RawConn.connect(port);
    raw.send(encodeHello({ version: 1, tenantId: TENANT, timelineId: TIMELINE, token: '' }));
    const ok = await raw.waitFor((f) => f.kind === 'helloOk');
    expect(ok).toMatchObject({ helloOk: { version: 1 } });
    raw.send(encodeRequest({ kind: 'getPages', id: 1, lsns: { requestLsn: LSN_LAST, notModifiedSince: LSN_LAST }, keys: KEYS.slice(0, 20) }));
    raw.send(encodeRequest({ kind: 'getPage', id: 2, lsns: { requestLsn: LSN_LAST, notModifiedSince: LSN_LAST }, key: KEYS[0] }));
    expect(await raw.waitFor((f) => f.kind === 'pages')).toMatchObject({ id: 1 });
    const f = await raw.waitFor((x) => x.kind === 'error');
    expect(f).toMatchObject({ id: 2, code: 'THROTTLED' });
    expect((f as { message: string }).message).toMatch(/retry after 10 ms/);
    raw.socket.destroy();
  });
});
