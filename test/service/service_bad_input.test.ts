/**
 * Bad input to the page service's public classes, as a seeded random property (docs/RELIABILITY.md,
 * "Bad API input"): `Server` options and `listen`, `StrataClient.connect` options, the client's
 * request methods (bad keys, relations, LSNs, batches, deadlines), `ClientPool` and
 * `RetryingClient` options and methods, and everything on closed clients, pools and servers. Each
 * call succeeds or throws (rejects with) a StrataError with a stable code; a refused request does
 * not close its connection, and the server, on a real loopback port, keeps serving throughout.
 * STRATA_BAD_INPUT_CASES raises the number of random calls.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ClientPool, type Lsn, type PageKey, type Repository, RetryingClient, Server, StrataClient, type Timeline } from '../../lib';
import { badInputCases, CodeTally, outcome, unrefusedCases, weird, WEIRD } from '../helpers/bad_input';
import { describeEachCore } from '../helpers/cores';
import { Rng } from '../helpers/random';
import { KEYS, LSN_LAST, PAGES, removeDir, repoWithData, TENANT, TIMELINE } from '../helpers/service';

const CASES = badInputCases(300, 0.05);
const OPTION_CASES = badInputCases(150, 0.02);
const TIMEOUT_MS = Math.max(120_000, CASES * 200);
/** Requests for LSNs past the end are refused after this wait, not the default 10 s. */
const WAIT_LSN_MS = 5;

const BAD_KEY_FIELDS: readonly unknown[] = [undefined, null, -1, 1.5, NaN, Infinity, 2 ** 32, 256, '1', 1n, {}, [], true, Symbol('f')];

function badKey(rng: Rng): unknown {
  if (rng.chance(0.3)) return weird(rng);
  const k: Record<string, unknown> = { ...KEYS[rng.int(0, PAGES)] };
  const field = rng.pick(['spcOid', 'dbOid', 'relNumber', 'forkNum', 'blockNum']);
  if (rng.chance(0.2)) delete k[field];
  else k[field] = rng.pick(BAD_KEY_FIELDS);
  // forkNum 256 fits u32 fields; for forkNum it is out of range too.
  return k;
}

function badRel(rng: Rng): unknown {
  if (rng.chance(0.3)) return weird(rng);
  const r: Record<string, unknown> = { spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0 };
  r[rng.pick(['spcOid', 'dbOid', 'relNumber', 'forkNum'])] = rng.pick([...BAD_KEY_FIELDS, 4]);
  return r;
}

function badLsn(rng: Rng): unknown {
  return rng.chance(0.3) ? LSN_LAST + BigInt(rng.int(1, 5)) : weird(rng);
}

/** Request options, mostly broken. */
function badRequestOpts(rng: Rng): unknown {
  if (rng.chance(0.2)) return weird(rng);
  return { deadlineMs: rng.chance(0.3) ? 5_000 : weird(rng), notModifiedSince: rng.chance(0.5) ? undefined : weird(rng) };
}

describeEachCore('page service bad input (%s core)', (impl) => {
  let dir: string;
  let repo: Repository;
  let tl: Timeline;
  let server: Server;
  let port: number;

  beforeAll(async () => {
    ({ dir, repo, tl } = await repoWithData(impl, 'badinput'));
    server = new Server(repo, { auth: { disabled: true }, waitLsnTimeoutMs: WAIT_LSN_MS });
    ({ port } = await server.listen('127.0.0.1', 0));
  });

  afterAll(async () => {
    await server.close();
    await repo.close();
    removeDir(dir);
  });

  const good = (): { host: string; port: number; tenantId: string; timelineId: string } => ({ host: '127.0.0.1', port, tenantId: TENANT, timelineId: TIMELINE });

  it(`${OPTION_CASES} bad Server, listen, connect, ClientPool and RetryingClient options: a coded StrataError`, async () => {
    const rng = new Rng(impl === 'native' ? 101 : 103);
    const opened: Array<{ close(): Promise<void> }> = [];
    const mangle = (o: Record<string, unknown>): Record<string, unknown> => {
      const m = { ...o };
      const field = rng.pick(Object.keys(m));
      m[field] = weird(rng);
      return m;
    };
    const clientOpts = (): unknown => (rng.chance(0.15) ? weird(rng) : mangle({ ...good(), connectTimeoutMs: 2_000, requestDeadlineMs: 5_000, token: '' }));
    const calls: Array<[string, () => unknown]> = [
      ['new Server', () => new Server(repo, (rng.chance(0.15) ? weird(rng) : mangle({ auth: { disabled: true }, maxInFlight: 8, waitLsnTimeoutMs: 10, drainTimeoutMs: 10, onEvent: () => undefined, onRequest: () => undefined })) as never)],
      ['new Server auth', () => new Server(repo, { auth: (rng.chance(0.5) ? weird(rng) : { [rng.pick(['disabled', 'keys', 'keysFile'])]: weird(rng) }) as never })],
      ['Server.listen', async () => {
        const s = new Server(repo, { auth: { disabled: true } });
        try {
          await s.listen((rng.chance(0.5) ? weird(rng) : '127.0.0.1') as string, (rng.chance(0.5) ? rng.pick([-1, 65536, 1.5, NaN, Infinity, 2 ** 32]) : weird(rng)) as number);
        } finally {
          await s.close();
        }
      }],
      ['StrataClient.connect', async () => opened.push(await StrataClient.connect(clientOpts() as never))],
      ['new ClientPool', () => opened.push(new ClientPool(clientOpts() as never, (rng.chance(0.3) ? weird(rng) : mangle({ connections: 1, reconnectBaseDelayMs: 1, reconnectMaxDelayMs: 10, random: Math.random, mayReconnect: () => true })) as never))],
      ['new RetryingClient', () => opened.push(new RetryingClient((rng.chance(0.1) ? weird(rng) : mangle({
        ...good(), retry: rng.chance(0.5) ? weird(rng) : { maxAttempts: weird(rng), baseDelayMs: 1, maxDelayMs: 5 },
        pool: rng.chance(0.5) ? weird(rng) : { connections: weird(rng) }, breaker: rng.chance(0.5) ? weird(rng) : { failureThreshold: weird(rng), openMs: 10 },
        onRetry: () => undefined,
      })) as never))],
    ];
    const tally = new CodeTally();
    for (let i = 0; i < OPTION_CASES; i++) {
      const [name, call] = rng.pick(calls);
      tally.add(await outcome(`case ${i} ${name}`, call));
    }
    for (const c of opened) await c.close();
    expect(tally.refused).toBeGreaterThan(OPTION_CASES * 0.6);
    expect(tally.codes.get('BAD_ARGUMENT') ?? 0).toBeGreaterThan(0);
    // The server still serves.
    const c = await StrataClient.connect(good());
    expect((await c.getPage(KEYS[1], LSN_LAST)).equals(await tl.getPage(KEYS[1], LSN_LAST))).toBe(true);
    await c.close();
  }, TIMEOUT_MS);

  it(`${CASES} random requests with wrong arguments on StrataClient, ClientPool and RetryingClient: refused, connection kept, server serving`, async () => {
    const rng = new Rng(impl === 'native' ? 107 : 109);
    const client = await StrataClient.connect(good());
    const pool = new ClientPool(good(), { connections: 2 });
    const retrying = new RetryingClient({ ...good(), retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 } });
    const violationsBefore = server.stats().violations;
    type Target = Pick<StrataClient, 'getPage' | 'getPages' | 'getRelSize' | 'exists' | 'listRelations'>;
    const targets: Array<[string, () => Promise<Target>]> = [
      ['client', async () => client], ['pool', () => pool.acquire()], ['retrying', async () => retrying],
    ];
    const calls: Array<[string, (t: Target) => Promise<unknown>]> = [
      ['getPage', (t) => t.getPage(badKey(rng) as PageKey, (rng.chance(0.5) ? LSN_LAST : badLsn(rng)) as Lsn, badRequestOpts(rng) as never)],
      ['getPages', (t) => t.getPages((rng.chance(0.3) ? weird(rng) : rng.chance(0.5) ? [KEYS[0], badKey(rng)] : Array.from({ length: rng.int(0, 300) }, () => (rng.chance(0.98) ? KEYS[0] : badKey(rng)))) as PageKey[], (rng.chance(0.5) ? LSN_LAST : badLsn(rng)) as Lsn, badRequestOpts(rng) as never)],
      ['getRelSize', (t) => t.getRelSize(badRel(rng) as never, badLsn(rng) as Lsn, badRequestOpts(rng) as never)],
      ['exists', (t) => t.exists(badRel(rng) as never, badLsn(rng) as Lsn, badRequestOpts(rng) as never)],
      ['listRelations', (t) => t.listRelations(badLsn(rng) as Lsn, (rng.chance(0.3) ? weird(rng) : { dbOid: rng.pick(WEIRD), deadlineMs: 5_000 }) as never)],
    ];
    const tally = new CodeTally();
    for (let i = 0; i < CASES; i++) {
      const [tname, target] = rng.pick(targets);
      const [name, call] = rng.pick(calls);
      tally.add(await outcome(`case ${i} ${tname}.${name}`, async () => call(await target())));
      expect(client.isClosed, `case ${i} ${tname}.${name} closed the client`).toBe(false);
    }
    expect(tally.refused).toBeGreaterThan(CASES * 0.8);
    expect(tally.codes.get('BAD_ARGUMENT') ?? 0).toBeGreaterThan(0);
    // Bad arguments are refused before they reach the wire: the server saw no protocol violation.
    expect(server.stats().violations).toBe(violationsBefore);
    for (const [, target] of targets) {
      const t = await target();
      const want = await tl.getPages(KEYS.slice(0, 3), LSN_LAST);
      expect((await t.getPages(KEYS.slice(0, 3), LSN_LAST)).every((p, i) => p.equals(want[i]))).toBe(true);
      expect((await t.getPage(KEYS[2], LSN_LAST)).equals(await tl.getPage(KEYS[2], LSN_LAST))).toBe(true);
    }
    await client.close();
    await pool.close();
    await retrying.close();
  }, TIMEOUT_MS);

  it('the cases that failed before the fix (docs/RELIABILITY.md, "Bad API input"): each BAD_ARGUMENT', async () => {
    const c = await StrataClient.connect(good());
    const other = new Server(repo, { auth: { disabled: true } });
    // Each of these was a TypeError or RangeError, or was accepted and read another page: a key field
    // of 1.5, 256 (forkNum), null or '1' went on the wire truncated or coerced.
    const cases: Array<[string, () => unknown, RegExp]> = [
      ['getPage blockNum 1.5', () => c.getPage({ ...KEYS[1], blockNum: 1.5 }, LSN_LAST), /blockNum/],
      ['getPage forkNum 256', () => c.getPage({ ...KEYS[1], forkNum: 256 }, LSN_LAST), /forkNum/],
      ['getPage blockNum null', () => c.getPage({ ...KEYS[1], blockNum: null as unknown as number }, LSN_LAST), /blockNum/],
      ["getPage blockNum '1'", () => c.getPage({ ...KEYS[1], blockNum: '1' as unknown as number }, LSN_LAST), /blockNum/],
      ['getPage key null', () => c.getPage(null as unknown as PageKey, LSN_LAST), /spcOid/],
      ["getPage deadlineMs 'x'", () => c.getPage(KEYS[1], LSN_LAST, { deadlineMs: 'x' as unknown as number }), /deadlineMs/],
      ['getPages with one bad key among good ones', () => c.getPages([...KEYS.slice(0, 70), { ...KEYS[0], relNumber: -1 }], LSN_LAST), /relNumber/],
      ['getRelSize forkNum 9', () => c.getRelSize({ spcOid: 1663, dbOid: 5, relNumber: 1, forkNum: 9 }, LSN_LAST), /forkNum/],
      ['connect port 70000', () => StrataClient.connect({ ...good(), port: 70000 }), /port/],
      ['connect tenantId 5', () => StrataClient.connect({ ...good(), tenantId: 5 as unknown as string }), /tenantId/],
      ['connect null', () => StrataClient.connect(null as never), /client options/],
      ['connect connectTimeoutMs NaN', () => StrataClient.connect({ ...good(), connectTimeoutMs: NaN }), /connectTimeoutMs/],
      ['listen port -1', () => other.listen('127.0.0.1', -1), /port/],
      ['listen host 5', () => other.listen(5 as unknown as string, 0), /host/],
      ["Server auth 'x'", () => new Server(repo, { auth: 'x' as never }), /auth/],
      ['Server null options', () => new Server(repo, null as never), /auth/],
      ['Server auth keys [null]', () => new Server(repo, { auth: { keys: { keys: [null as never] } } }), /key 0/],
      ['Server auth keysFile 0 (read stdin)', () => new Server(repo, { auth: { keysFile: 0 as unknown as string } }), /keysFile/],
      ["Server waitLsnTimeoutMs 'x'", () => new Server(repo, { auth: { disabled: true }, waitLsnTimeoutMs: 'x' as unknown as number }), /waitLsnTimeoutMs/],
      ['ClientPool null options', () => new ClientPool(good(), null as never), /pool options/],
      ['ClientPool client null', () => new ClientPool(null as never), /client options/],
      ['RetryingClient retry null', () => new RetryingClient({ ...good(), retry: null as never }), /retry/],
      ['RetryingClient breaker null', () => new RetryingClient({ ...good(), breaker: null as never }), /breaker/],
      ["RetryingClient port 'x'", () => new RetryingClient({ ...good(), port: 'x' as unknown as number }), /port/],
    ];
    expect(await unrefusedCases(cases)).toEqual([]);
    expect(c.isClosed).toBe(false);
    expect((await c.getPage(KEYS[1], LSN_LAST)).equals(await tl.getPage(KEYS[1], LSN_LAST))).toBe(true);
    await c.close();
    await other.close();
  });

  it('every method of a closed client, pool and retrying client: CONNECTION_CLOSED; a closed server refuses connections', async () => {
    const client = await StrataClient.connect(good());
    const pool = new ClientPool(good());
    await pool.acquire();
    const retrying = new RetryingClient(good());
    await retrying.getPage(KEYS[0], LSN_LAST);
    await client.close();
    await pool.close();
    await retrying.close();
    const rel = { spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0 };
    for (const [name, t] of [['client', client], ['retrying', retrying]] as const) {
      expect((await outcome(`${name}.getPage`, () => t.getPage(KEYS[0], LSN_LAST)))?.code).toBe('CONNECTION_CLOSED');
      expect((await outcome(`${name}.getPages`, () => t.getPages([KEYS[0]], LSN_LAST)))?.code).toBe('CONNECTION_CLOSED');
      expect((await outcome(`${name}.getRelSize`, () => t.getRelSize(rel, LSN_LAST)))?.code).toBe('CONNECTION_CLOSED');
      expect((await outcome(`${name}.exists`, () => t.exists(rel, LSN_LAST)))?.code).toBe('CONNECTION_CLOSED');
      expect((await outcome(`${name}.listRelations`, () => t.listRelations(LSN_LAST)))?.code).toBe('CONNECTION_CLOSED');
    }
    expect((await outcome('pool.acquire', () => pool.acquire()))?.code).toBe('CONNECTION_CLOSED');
    // close twice is harmless
    await client.close();
    await pool.close();
    await retrying.close();

    const other = new Server(repo, { auth: { disabled: true } });
    const { port: otherPort } = await other.listen('127.0.0.1', 0);
    await other.close();
    expect((await outcome('connect to a closed server', () => StrataClient.connect({ ...good(), port: otherPort, connectTimeoutMs: 2_000 })))?.code).toBe('CONNECTION_CLOSED');
    await expect(other.close()).resolves.toBeUndefined();
  }, TIMEOUT_MS);
});
