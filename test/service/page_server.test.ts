/**
 * The page service end to end: a real Server on a loopback port and the real StrataClient (or a
 * raw socket for what a good client never sends). Answers equal direct Timeline reads on both
 * cores; pipelined answers come back out of order; the LSN rules of docs/PROTOCOL.md hold;
 * malformed, truncated and oversized frames close only their own connection; a client vanishing
 * mid-answer leaves the server serving; backpressure bounds in-flight requests without losing any.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LSN_MAX, PAGE_SIZE, type Repository, StrataClient, type Timeline } from '../../lib';
import { encodeHello, encodeRequest, FRAME_TYPE, MAX_FRAME_BYTES, type ServerFrame } from '../../lib/service/frames';
import { ANSWER_BATCH_BYTES, type Server } from '../../lib/service/page_server';
import { describeEachCore } from '../helpers/cores';
import {
  KEYS, keyOf, LSN_FLUSHED, LSN_IMAGES, LSN_LAST, PAGES, RawConn, removeDir, repoWithData, startServer, TENANT, TIMELINE, codeOf,
} from '../helpers/service';

describeEachCore('page service (%s core)', (impl) => {
  let dir: string;
  let repo: Repository;
  let tl: Timeline;
  let server: Server;
  let port: number;
  const clients: StrataClient[] = [];

  const connect = async (extra: Partial<Parameters<typeof StrataClient.connect>[0]> = {}): Promise<StrataClient> => {
    const c = await StrataClient.connect({ host: '127.0.0.1', port, tenantId: TENANT, timelineId: TIMELINE, ...extra });
    clients.push(c);
    return c;
  };

  beforeEach(async () => {
    ({ dir, repo, tl } = await repoWithData(impl, 'server'));
    ({ server, port } = await startServer(repo, { waitLsnTimeoutMs: 30_000 }));
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await server.close();
    await repo.close();
    removeDir(dir);
  });

  it('GetPage and GetPages answer exactly what the timeline reads, at every LSN, in memory and on disk', async () => {
    const c = await connect();
    expect(c.server).toMatchObject({ version: 2, maxFrameBytes: MAX_FRAME_BYTES, maxBatchPages: 64, lastRecordLsn: LSN_LAST });
    for (const lsn of [LSN_IMAGES, LSN_FLUSHED, LSN_FLUSHED + 50n, LSN_LAST]) {
      for (const k of [KEYS[0], KEYS[17], KEYS[PAGES - 1]]) expect((await c.getPage(k, lsn)).equals(await tl.getPage(k, lsn))).toBe(true);
      const got = await c.getPages(KEYS, lsn);
      const want = await tl.getPages(KEYS, lsn);
      expect(got.length).toBe(PAGES);
      for (let i = 0; i < PAGES; i++) expect(got[i].equals(want[i]), `page ${i} at ${lsn}`).toBe(true);
    }
    // More keys than one batch: split into several pipelined requests, order kept.
    const many = [...KEYS, ...KEYS, ...KEYS.slice(0, 5)];
    const got = await c.getPages(many, LSN_LAST);
    expect(got.map((p) => p.readUInt32BE(100))).toEqual((await tl.getPages(many, LSN_LAST)).map((p) => p.readUInt32BE(100)));
    // "Latest": LSN_MAX reads at lastRecordLsn.
    expect((await c.getPage(KEYS[3], LSN_MAX)).equals(await tl.getPage(KEYS[3], LSN_LAST))).toBe(true);
  });

  it('answer buffers are reused once written, and heavy pipelining still gets every page right; pages can land in the caller\'s buffer', async () => {
    const c = await connect();
    const want = await tl.getPages(KEYS, LSN_LAST);
    await c.getPages(KEYS, LSN_LAST); // cached from here on
    const before = server.framePool.reused;
    // 2,000 single-page reads in flight at once: a frame recycled before its bytes left would show
    // up as another request's page.
    const ids = Array.from({ length: 2_000 }, (_, i) => (i * 7) % PAGES);
    const got = await Promise.all(ids.map((i) => c.getPage(KEYS[i], LSN_LAST)));
    for (let n = 0; n < ids.length; n++) expect(got[n].equals(want[ids[n]]), `request ${n} (page ${ids[n]})`).toBe(true);
    // 16 MB of answers cannot all sit in the socket at once, so batch buffers came back from their
    // writes and were taken again (how many depends on timing: under ASan 54 of ~125).
    expect(server.framePool.reused - before).toBeGreaterThan(0);
    // into: the page is written into the caller's buffer and the answer is a view of it.
    const into = Buffer.alloc(3 * PAGE_SIZE, 0xee);
    const one = await c.getPage(KEYS[4], LSN_LAST, { into });
    expect(one.buffer).toBe(into.buffer);
    expect(into.subarray(0, PAGE_SIZE).equals(want[4])).toBe(true);
    expect(into[PAGE_SIZE]).toBe(0xee); // nothing past the page
    const three = await c.getPages([KEYS[1], KEYS[2], KEYS[3]], LSN_LAST, { into });
    for (let i = 0; i < 3; i++) {
      expect(three[i].buffer).toBe(into.buffer);
      expect(into.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE).equals(want[i + 1])).toBe(true);
    }
    // A destination too small, or not a Buffer, is refused before anything is sent.
    expect(await codeOf(c.getPages([KEYS[1], KEYS[2], KEYS[3], KEYS[4]], LSN_LAST, { into }))).toBe('BAD_ARGUMENT');
    expect(await codeOf(c.getPage(KEYS[1], LSN_LAST, { into: Buffer.alloc(100) }))).toBe('BAD_ARGUMENT');
    expect(await codeOf(c.getPage(KEYS[1], LSN_LAST, { into: new Uint8Array(PAGE_SIZE) as Buffer }))).toBe('BAD_ARGUMENT');
    expect(c.isClosed).toBe(false);
    // A read that misses after taking a batch buffer (a key with no page) hands it back by the
    // tick's end: a connection holds no batch between ticks.
    await c.getPage(KEYS[0], LSN_LAST);
    const idle = server.framePool.idle;
    expect(idle).toBeGreaterThanOrEqual(ANSWER_BATCH_BYTES);
    expect(await codeOf(c.getPage(keyOf(5, 99), LSN_LAST))).toBe('PAGE_NOT_FOUND');
    expect(server.framePool.idle).toBe(idle);
  });

  it('errors come back as their StrataError codes and the connection goes on', async () => {
    const c = await connect();
    expect(await codeOf(c.getPage(keyOf(5, 99), LSN_LAST))).toBe('PAGE_NOT_FOUND');
    expect(await codeOf(c.getPage(KEYS[0], 0x10n))).toBe('PAGE_NOT_FOUND'); // before the images
    const rel = { spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0 };
    // A plain timeline has no relation sizes (docs/PROTOCOL.md, "Page keys and PostgreSQL relations").
    expect(await codeOf(c.getRelSize(rel, LSN_LAST))).toBe('BAD_ARGUMENT');
    expect(await codeOf(c.exists(rel, LSN_LAST))).toBe('BAD_ARGUMENT');
    expect(await codeOf(c.listRelations(LSN_LAST))).toBe('BAD_ARGUMENT');
    expect(await codeOf(c.getPage(KEYS[0], LSN_LAST, { notModifiedSince: LSN_LAST + 1n }))).toBe('BAD_ARGUMENT');
    expect((await c.getPage(KEYS[1], LSN_LAST)).length).toBe(PAGE_SIZE);
    expect(c.isClosed).toBe(false);
  });

  it('notModifiedSince: at or below lastRecordLsn answers at once for a request LSN ahead of ingest; above it waits for ingest', async () => {
    const c = await connect();
    const ahead = LSN_LAST + 0x1000n;
    // Promised unchanged since LSN_FLUSHED: read at min(request, lastRecordLsn) without waiting.
    expect((await c.getPage(KEYS[2], ahead, { notModifiedSince: LSN_FLUSHED })).equals(await tl.getPage(KEYS[2], LSN_LAST))).toBe(true);
    // notModifiedSince above lastRecordLsn: the read waits for ingest to reach it, then reads there.
    const waiting = c.getPage(KEYS[2], ahead, { notModifiedSince: LSN_LAST + 0x10n });
    let settled = false;
    void waiting.then(() => (settled = true), () => (settled = true));
    expect((await c.getPage(KEYS[4], LSN_LAST)).length).toBe(PAGE_SIZE); // a later request overtakes it
    expect(settled).toBe(false);
    tl.ingest([{ lsn: LSN_LAST + 0x10n, key: KEYS[2], kind: 'patch', offset: 0, data: Uint8Array.of(0xab) }]);
    const p = await waiting;
    expect(p[0]).toBe(0xab);
    expect(p.equals(await tl.getPage(KEYS[2], LSN_LAST + 0x10n))).toBe(true);
  });

  it('pipelining: answers complete out of order — a read waiting for WAL is overtaken by cached reads sent after it', async () => {
    const c = await connect();
    const order: string[] = [];
    const next = LSN_LAST + 1n;
    const slow = c.getPage(KEYS[0], next).then((p) => (order.push('slow'), p));
    const fast = KEYS.slice(1, 9).map((k, i) => c.getPage(k, LSN_LAST).then((p) => (order.push(`fast${i}`), p)));
    await Promise.all(fast);
    expect(c.inFlight).toBe(1);
    tl.ingest([{ lsn: next, key: KEYS[0], kind: 'patch', offset: 8000, data: Uint8Array.of(7) }]);
    expect((await slow)[8000]).toBe(7);
    // Request order was slow, fast0 … fast7; the slow one completes last (the fast ones among
    // themselves in any order: the native core finishes reads on worker threads as they come).
    expect(order.length).toBe(9);
    expect(order[8]).toBe('slow');
    expect(order.slice(0, 8).sort()).toEqual(Array.from({ length: 8 }, (_, i) => `fast${i}`));
  });

  it('backpressure: 500 pipelined requests on a connection limited to 2 in flight all come back whole', async () => {
    await server.close();
    ({ server, port } = await startServer(repo, { maxInFlight: 2 }));
    const c = await connect();
    expect(c.server.maxInFlight).toBe(2);
    const reqs = Array.from({ length: 500 }, (_, i) => (i % 10 === 0 ? c.getPages(KEYS.slice(0, 16), LSN_LAST) : c.getPage(KEYS[i % PAGES], LSN_LAST)));
    const res = await Promise.all(reqs);
    const want = await tl.getPages(KEYS, LSN_LAST);
    res.forEach((r, i) => {
      if (Array.isArray(r)) expect(r.every((p, j) => p.equals(want[j]))).toBe(true);
      else expect(r.equals(want[i % PAGES])).toBe(true);
    });
    expect(server.stats().requests).toBe(500);
    expect(server.stats().peakInFlight).toBe(2); // the server stopped reading at 2, never took more
  });

  it('a client that stops reading: the server stops taking its requests instead of buffering answers; all arrive once it reads', async () => {
    const r = await RawConn.ready(port);
    r.socket.pause();
    const N = 100; // 100 × 512 KiB of answers: far more than socket buffers hold
    const lsns = { requestLsn: LSN_LAST, notModifiedSince: LSN_LAST };
    r.send(Buffer.concat(Array.from({ length: N }, (_, i) => encodeRequest({ kind: 'getPages', id: i + 1, lsns, keys: KEYS }))));
    // Let the server run until it makes no more progress, then look at how much it took up.
    let last = -1;
    while (server.stats().requests !== last) {
      last = server.stats().requests;
      await new Promise((res) => setTimeout(res, 100));
    }
    expect(server.stats().requests).toBeLessThan(N);
    r.socket.resume();
    await r.waitFor(() => r.frames.filter((f) => f.kind === 'pages').length === N);
    const want = await tl.getPages(KEYS, LSN_LAST);
    for (const f of r.frames) if (f.kind === 'pages') expect(f.pages.every((p, i) => p.equals(want[i]))).toBe(true);
    expect(server.stats().requests).toBe(N);
    r.socket.destroy();
  });

  it('a per-request deadline fails only that request; its late answer is dropped and the connection goes on', async () => {
    const c = await connect();
    const next = LSN_LAST + 1n;
    expect(await codeOf(c.getPage(KEYS[0], next, { deadlineMs: 50 }))).toBe('DEADLINE_EXCEEDED');
    tl.ingest([{ lsn: next, key: KEYS[0], kind: 'patch', offset: 0, data: Uint8Array.of(1) }]);
    // The late PAGE for the abandoned id arrives and is dropped, not taken for a stray answer.
    for (let i = 0; i < 20; i++) expect((await c.getPage(KEYS[i], next)).equals(await tl.getPage(KEYS[i], next))).toBe(true);
    expect(c.isClosed).toBe(false);
  });

  it('handshake refusals: unknown timeline, bad ids, wrong version', async () => {
    expect(await codeOf(connect({ timelineId: 'nope' }))).toBe('TIMELINE_NOT_FOUND');
    expect(await codeOf(connect({ tenantId: '../etc' }))).toBe('BAD_ARGUMENT');
    const raw = await RawConn.connect(port);
    raw.send(encodeHello({ version: 9, tenantId: TENANT, timelineId: TIMELINE, token: '' }));
    const f = await raw.waitFor((x) => x.kind === 'refuse');
    expect(f).toMatchObject({ kind: 'refuse', code: 'PROTOCOL_ERROR' });
    expect((f as { message: string }).message).toMatch(/version 9 is not supported/);
    await raw.closed;
  });

  describe('frames the server cannot accept: a PROTOCOL_VIOLATION, a close, and nobody else notices', () => {
    const cases: Array<[string, (raw: RawConn) => void]> = [
      ['an oversized length', (r) => r.send(Buffer.from([0xff, 0xff, 0xff, 0xff, FRAME_TYPE.GET_PAGE]))],
      ['a length below the header', (r) => r.send(Buffer.from([0, 0, 0, 3, 0, 0, 0, 0, 0]))],
      ['a truncated GET_PAGE (payload shorter than its layout)', (r) => {
        const b = encodeRequest({ kind: 'getPage', id: 1, lsns: { requestLsn: LSN_LAST, notModifiedSince: LSN_LAST }, key: KEYS[0] }).subarray(0, 30);
        b.writeUInt32BE(30, 0);
        r.send(b);
      }],
      ['an unknown frame type', (r) => r.send(Buffer.from([0, 0, 0, 9, 0x7e, 0, 0, 0, 1]))],
      ['a server frame type', (r) => r.send(Buffer.from([0, 0, 0, 13, FRAME_TYPE.REL_SIZE, 0, 0, 0, 1, 0, 0, 0, 1]))],
      ['a second HELLO', (r) => r.send(Buffer.from([0, 0, 0, 9, FRAME_TYPE.HELLO, 0, 0, 0, 0]))],
      ['request id 0', (r) => r.send(encodeRequest({ kind: 'getPage', id: 0, lsns: { requestLsn: LSN_LAST, notModifiedSince: LSN_LAST }, key: KEYS[0] }))],
    ];
    for (const [name, send] of cases) {
      it(name, async () => {
        const good = await connect();
        const bad = await RawConn.ready(port);
        send(bad);
        const v = await bad.waitFor((f) => f.kind === 'violation');
        expect(v).toMatchObject({ kind: 'violation', code: 'PROTOCOL_ERROR' });
        expect((v as { message: string }).message).toMatch(/byte \d+|stream offset|HELLO|request id 0/);
        await bad.closed;
        expect(bad.trailingBytes).toBe(0);
        expect((await good.getPage(KEYS[1], LSN_LAST)).equals(await tl.getPage(KEYS[1], LSN_LAST))).toBe(true);
        expect(server.stats().violations).toBe(1);
      });
    }

    it('a request before the handshake, and a frame before HELLO_OK', async () => {
      const r = await RawConn.connect(port);
      r.send(encodeRequest({ kind: 'getPage', id: 1, lsns: { requestLsn: LSN_LAST, notModifiedSince: LSN_LAST }, key: KEYS[0] }));
      expect((await r.waitFor((f) => f.kind === 'violation') as { message: string }).message).toMatch(/0x10 GET_PAGE \(request id 1\) at stream offset 0: the first frame must be HELLO/);
      await r.closed;
      // HELLO and a request in one write: the request came before HELLO_OK.
      const early = await RawConn.connect(port);
      early.send(Buffer.concat([
        encodeHello({ version: 1, tenantId: TENANT, timelineId: TIMELINE, token: '' }),
        encodeRequest({ kind: 'getPage', id: 1, lsns: { requestLsn: LSN_LAST, notModifiedSince: LSN_LAST }, key: KEYS[0] }),
      ]));
      expect((await early.waitFor((f) => f.kind === 'violation') as { message: string }).message).toMatch(/sent before HELLO_OK/);
      await early.closed;
    });

    it('a duplicate id of a request still in flight', async () => {
      const r = await RawConn.ready(port);
      const waiting = encodeRequest({ kind: 'getPage', id: 7, lsns: { requestLsn: LSN_LAST + 5n, notModifiedSince: LSN_LAST + 5n }, key: KEYS[0] });
      r.send(Buffer.concat([waiting, waiting]));
      expect((await r.waitFor((f) => f.kind === 'violation') as { message: string }).message).toMatch(/request id 7 is already in flight/);
      await r.closed;
    });

    it('GetPage frames the fast lane declines: request LSN 0 and a wrong payload length, between good ones', async () => {
      const r = await RawConn.ready(port);
      const req = (id: number, requestLsn: bigint): Buffer => encodeRequest({ kind: 'getPage', id, lsns: { requestLsn, notModifiedSince: 0n }, key: KEYS[0] });
      r.send(Buffer.concat([req(1, LSN_LAST), req(2, 0n), req(3, LSN_LAST)]));
      const bad = await r.waitFor((f) => f.kind === 'error' && f.id === 2);
      expect(bad).toMatchObject({ code: 'BAD_ARGUMENT' });
      expect((bad as { message: string }).message).toMatch(/requestLsn 0 is not an LSN/);
      for (const id of [1, 3]) {
        const page = await r.waitFor((f) => f.kind === 'page' && f.id === id);
        expect((page as { page: Buffer }).page.equals(await tl.getPage(KEYS[0], LSN_LAST))).toBe(true);
      }
      // One byte too many after the key: the general decoder names the leftover byte.
      const long = Buffer.concat([req(4, LSN_LAST), Buffer.from([0])]);
      long.writeUInt32BE(long.length, 0);
      r.send(long);
      expect((await r.waitFor((f) => f.kind === 'violation') as { message: string }).message).toMatch(/1 bytes left over after the last field/);
      await r.closed;
    });

    it('a stream cut in the middle of a frame (FIN after half a header) just closes', async () => {
      const r = await RawConn.ready(port);
      r.socket.end(Buffer.from([0, 0, 0]));
      await r.closed;
      const good = await connect();
      expect((await good.getPage(KEYS[0], LSN_LAST)).length).toBe(PAGE_SIZE);
    });
  });

  it('a client that vanishes mid-answer (big batches in flight) does not disturb the server', async () => {
    for (let round = 0; round < 5; round++) {
      const r = await RawConn.ready(port);
      const reqs: Buffer[] = [];
      for (let id = 1; id <= 40; id++) reqs.push(encodeRequest({ kind: 'getPages', id, lsns: { requestLsn: LSN_LAST, notModifiedSince: LSN_LAST }, keys: KEYS }));
      r.send(Buffer.concat(reqs));
      await r.waitFor((f: ServerFrame) => f.kind === 'pages');
      r.socket.destroy(); // gone with ~20 MB of answers still to come
      await r.closed;
    }
    const c = await connect();
    const got = await c.getPages(KEYS, LSN_LAST);
    const want = await tl.getPages(KEYS, LSN_LAST);
    expect(got.every((p, i) => p.equals(want[i]))).toBe(true);
  });

  it('graceful close answers what was taken up, then closes; new connections are refused', async () => {
    const c = await connect();
    const next = LSN_LAST + 1n;
    const waiting = c.getPage(KEYS[0], next);
    await c.getPage(KEYS[1], LSN_LAST); // the waiting request has been read by now
    const closing = server.close();
    tl.ingest([{ lsn: next, key: KEYS[0], kind: 'patch', offset: 0, data: Uint8Array.of(0x42) }]);
    expect((await waiting)[0]).toBe(0x42);
    await closing;
    expect(await codeOf(c.getPage(KEYS[1], LSN_LAST))).toBe('CONNECTION_CLOSED');
    expect(await codeOf(connect())).toBe('CONNECTION_CLOSED');
  });
});
