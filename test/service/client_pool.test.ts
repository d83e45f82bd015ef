/**
 * ClientPool (lib/service/client_pool.ts) and RetryingClient's `pool` option against a real server:
 * N connections open, a call goes to the least busy one, pipelined requests spread over all of
 * them, and after the server is stopped and restarted on the same port every lost connection is
 * replaced in the background (with backoff) and calls read correct pages again.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Repository, Timeline } from '../../lib';
import { ClientPool } from '../../lib/service/client_pool';
import { type ServerEvent, Server } from '../../lib/service/page_server';
import { RetryingClient } from '../../lib/service/retrying_client';
import { KEYS, LSN_LAST, removeDir, repoWithData, startServer, TENANT, TIMELINE } from '../helpers/service';

/** Poll `cond` every 5 ms until it holds; fail after `limitMs` (a bound against hangs, not a timing claim). */
async function until(cond: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  const stop = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > stop) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('client connection pool', () => {
  let dir: string;
  let repo: Repository;
  let tl: Timeline;
  let server: Server;
  let port: number;
  const events: ServerEvent[] = [];
  const toClose: Array<{ close(): Promise<void> }> = [];

  beforeEach(async () => {
    ({ dir, repo, tl } = await repoWithData('ts', 'pool'));
    events.length = 0;
    ({ server, port } = await startServer(repo, { onEvent: (e) => events.push(e) }));
  });

  afterEach(async () => {
    for (const c of toClose.splice(0)) await c.close();
    await server.close();
    await repo.close();
    removeDir(dir);
  });

  it('opens N connections and hands out the least busy one', async () => {
    const pool = new ClientPool({ host: '127.0.0.1', port, tenantId: TENANT, timelineId: TIMELINE }, { connections: 3 });
    toClose.push(pool);
    const first = await pool.acquire();
    await until(() => pool.stats().open === 3, '3 open connections');
    expect(server.stats().connections).toBe(3);
    // With a request in flight on each connection taken, the next acquire returns an idle one.
    const busy = new Set([first]);
    const pending = [first.getPage(KEYS[0], LSN_LAST)];
    for (let i = 0; i < 2; i++) {
      const c = await pool.acquire();
      expect(busy.has(c)).toBe(false);
      busy.add(c);
      pending.push(c.getPage(KEYS[i + 1], LSN_LAST));
    }
    expect(busy.size).toBe(3);
    const want = await tl.getPages(KEYS.slice(0, 3), LSN_LAST);
    const got = await Promise.all(pending);
    expect(got.every((p, i) => p.equals(want[i]))).toBe(true);
    expect(() => new ClientPool({ host: '127.0.0.1', port, tenantId: TENANT, timelineId: TIMELINE }, { connections: 0 })).toThrow(/BAD_ARGUMENT/);
  });

  it('RetryingClient spreads pipelined calls over its pool and replaces lost connections after a restart', async () => {
    const c = new RetryingClient({ host: '127.0.0.1', port, tenantId: TENANT, timelineId: TIMELINE, pool: { connections: 4, reconnectBaseDelayMs: 5, reconnectMaxDelayMs: 50 } });
    toClose.push(c);
    const want = await tl.getPages(KEYS, LSN_LAST);
    await c.getPage(KEYS[0], LSN_LAST);
    await until(() => c.poolStats().open === 4, '4 open connections');
    const got = await Promise.all(Array.from({ length: 400 }, (_, i) => c.getPage(KEYS[i % KEYS.length], LSN_LAST)));
    expect(got.every((p, i) => p.equals(want[i % KEYS.length]))).toBe(true);

    await server.close();
    // Every connection closed with the server; each told how many requests it served: all 4 took some.
    const closed = events.filter((e): e is Extract<ServerEvent, { event: 'closed' }> => e.event === 'closed');
    expect(closed.length).toBe(4);
    expect(closed.every((e) => e.requests > 0)).toBe(true);
    expect(closed.reduce((s, e) => s + e.requests, 0)).toBe(401);

    server = new Server(repo, { auth: { disabled: true } });
    await server.listen('127.0.0.1', port);
    // Lost connections come back in the background, without a call asking for them.
    await until(() => c.poolStats().open === 4, 'the pool to reconnect');
    expect(server.stats().connections).toBe(4);
    expect(c.poolStats().connects).toBeGreaterThanOrEqual(8);
    const again = await Promise.all(KEYS.map((k) => c.getPage(k, LSN_LAST)));
    expect(again.every((p, i) => p.equals(want[i]))).toBe(true);
  });
});
