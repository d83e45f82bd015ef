/**
 * The follower's parts that need no PostgreSQL (docs/POSTGRES.md, "Following a primary"): the
 * replication messages byte for byte, the hand-over queue (coalescing, backpressure, end), how
 * errors are classified (what is retried), option checks, and a follower against a port nothing
 * listens on (retried, counted, stopped cleanly; or failed after maxReconnectAttempts).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { isStrataError, Repository, StrataError, type Timeline } from '../../lib';
import {
  encodeStatusUpdate, parseReplicationMessage, pgMicrosToUnixMs, pgNowMicros, SLOT_NAME, startReplicationCommand, STATUS_UPDATE_BYTES,
} from '../../lib/pg/replication_protocol';
import { BLOCK_BYTES, WalQueue } from '../../lib/pg/wal_queue';
import { classifyError } from '../../lib/pg/walreceiver';
import { timelineImpl } from '../../lib/timeline';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('replication messages', () => {
  test('XLogData: start, server WAL end, send time, then the bytes', () => {
    const m = Buffer.alloc(25 + 5);
    m[0] = 0x77;
    m.writeBigUInt64BE(0x1_0000_2000n, 1);
    m.writeBigUInt64BE(0x1_0000_9000n, 9);
    m.writeBigInt64BE(123_456_789n, 17);
    m.set([1, 2, 3, 4, 5], 25);
    const msg = parseReplicationMessage(m);
    expect(msg).toMatchObject({ kind: 'xlogdata', start: 0x1_0000_2000n, serverWalEnd: 0x1_0000_9000n, sendTime: 123_456_789n });
    expect(msg.kind === 'xlogdata' && [...msg.wal]).toEqual([1, 2, 3, 4, 5]);
  });

  test('keepalive: WAL end, send time, reply requested', () => {
    const m = Buffer.alloc(18);
    m[0] = 0x6b;
    m.writeBigUInt64BE(0xabcdefn, 1);
    m[17] = 1;
    expect(parseReplicationMessage(m)).toEqual({ kind: 'keepalive', serverWalEnd: 0xabcdefn, sendTime: 0n, replyRequested: true });
    m[17] = 0;
    expect(parseReplicationMessage(m)).toMatchObject({ replyRequested: false });
  });

  test('short, empty and unknown messages are REPLICATION_LOST (retried), naming what came', () => {
    const bad = [Buffer.alloc(0), Buffer.from([0x77, 0, 0]), Buffer.alloc(17, 0x6b), Buffer.from([0x41, 0])];
    const msgs = bad.map((b) => {
      try {
        parseReplicationMessage(b);
        return 'parsed';
      } catch (e) {
        expect(isStrataError(e, 'REPLICATION_LOST')).toBe(true);
        return (e as Error).message;
      }
    });
    expect(msgs[0]).toMatch(/empty CopyData/);
    expect(msgs[1]).toMatch(/XLogData message of 3 bytes/);
    expect(msgs[2]).toMatch(/keepalive message of 17 bytes/);
    expect(msgs[3]).toMatch(/unknown type 0x41/);
  });

  test('standby status update: 34 bytes, big-endian, as PostgreSQL reads it', () => {
    const b = encodeStatusUpdate({ written: 0x5_0000_0010n, flushed: 0x4_0000_0020n, applied: 0x3_0000_0030n, clientTime: -2n, replyRequested: true });
    expect(b.length).toBe(STATUS_UPDATE_BYTES);
    expect(b.toString('hex')).toBe('72' + '0000000500000010' + '0000000400000020' + '0000000300000030' + 'fffffffffffffffe' + '01');
  });

  test('times count µs from 2000-01-01 UTC; START_REPLICATION and slot names as PostgreSQL spells them', () => {
    expect(pgNowMicros(Date.UTC(2000, 0, 1))).toBe(0n);
    expect(pgNowMicros(Date.UTC(2000, 0, 1, 0, 0, 1))).toBe(1_000_000n);
    expect(pgMicrosToUnixMs(86_400_000_000n)).toBe(Date.UTC(2000, 0, 2));
    expect(startReplicationCommand('s1', 0x1_02A0_0028n, 1)).toBe('START_REPLICATION SLOT s1 PHYSICAL 1/2A00028 TIMELINE 1');
    expect(startReplicationCommand(null, 0x10n, 3)).toBe('START_REPLICATION PHYSICAL 0/10 TIMELINE 3');
    for (const ok of ['a', 'strata_slot', 'x'.repeat(63), '0_9']) expect(SLOT_NAME.test(ok), ok).toBe(true);
    for (const bad of ['', 'A', 'has-dash', 'x'.repeat(64), 'a b', 'a;DROP']) expect(SLOT_NAME.test(bad), bad).toBe(false);
  });
});

describe('WalQueue', () => {
  function hooks() {
    const calls: string[] = [];
    return { calls, h: { pause: () => calls.push('pause'), resume: () => calls.push('resume'), idle: () => calls.push('idle') } };
  }

  test('hands over what is queued in order, coalesced, then ends after end()', async () => {
    const { calls, h } = hooks();
    const q = new WalQueue(h, 1000, 100);
    q.push(Buffer.from([1, 2]));
    q.push(Buffer.from([3]));
    const it = q[Symbol.asyncIterator]();
    expect([...((await it.next()).value as Uint8Array)]).toEqual([1, 2, 3]);
    const waiting = it.next();
    await new Promise((r) => setImmediate(r));
    expect(q.consumerWaiting).toBe(true);
    expect(calls).toEqual(['idle']);
    q.push(Buffer.from([4]));
    expect([...((await waiting).value as Uint8Array)]).toEqual([4]);
    q.push(Buffer.from([5]));
    q.end();
    q.push(Buffer.from([6])); // after end(): ignored
    expect([...((await it.next()).value as Uint8Array)]).toEqual([5]);
    expect((await it.next()).done).toBe(true);
  });

  test('pauses the source past the high-water mark and resumes it once ingest took the queue below the low one', async () => {
    const { calls, h } = hooks();
    const q = new WalQueue(h, 10, 4);
    for (let i = 0; i < 4; i++) q.push(Buffer.alloc(3, i));
    expect(calls).toEqual(['pause']);
    expect(q.bytes).toBe(12);
    const it = q[Symbol.asyncIterator]();
    expect(((await it.next()).value as Uint8Array).length).toBe(12);
    expect(calls).toEqual(['pause', 'resume']);
    expect(q.bytes).toBe(0);
  });

  test('keeps a copy of what is pushed; splits it at block ends, in order; reuses a block once the next chunk is asked for', async () => {
    const { calls, h } = hooks();
    const q = new WalQueue(h, 3 * BLOCK_BYTES, BLOCK_BYTES);
    const stream = Buffer.alloc(2 * BLOCK_BYTES + 1000);
    for (let i = 0; i < stream.length; i += 4) stream.writeUInt32LE(i, i);
    const src = Buffer.from(stream.subarray(0, 5000));
    q.push(src);
    src.fill(0xee); // the caller's buffer is free again at once
    q.push(stream.subarray(5000));
    expect(q.bytes).toBe(stream.length);
    const it = q[Symbol.asyncIterator]();
    const got: Buffer[] = [];
    const arrays: ArrayBufferLike[] = [];
    for (let i = 0; i < 3; i++) {
      const c = (await it.next()).value as Uint8Array;
      expect(c.length).toBeLessThanOrEqual(BLOCK_BYTES);
      got.push(Buffer.from(c)); // valid until the next is asked for
      arrays.push(c.buffer);
    }
    expect(Buffer.compare(Buffer.concat(got), stream)).toBe(0);
    expect(got.map((c) => c.length)).toEqual([BLOCK_BYTES, BLOCK_BYTES, 1000]);
    expect(new Set(arrays).size).toBe(3);
    // The first two blocks came back when their successors were asked for: new bytes go into one of them.
    q.push(Buffer.alloc(10, 7));
    const next = (await it.next()).value as Uint8Array;
    expect([...next]).toEqual(Array(10).fill(7));
    expect(arrays.slice(0, 2)).toContain(next.buffer);
    expect(calls).toEqual([]);
  });

  test('a light stream, ingest waiting between messages, reuses one block', async () => {
    const { h } = hooks();
    const q = new WalQueue(h, 1000, 100);
    const it = q[Symbol.asyncIterator]();
    const arrays = new Set<ArrayBufferLike>();
    for (let i = 0; i < 5; i++) {
      const next = it.next();
      await new Promise((r) => setImmediate(r));
      expect(q.consumerWaiting).toBe(true);
      q.push(Buffer.from([i]));
      const c = (await next).value as Uint8Array;
      expect([...c]).toEqual([i]);
      arrays.add(c.buffer);
    }
    expect(arrays.size).toBe(1);
  });

  test('a consumer that stops early drops what is left; later pushes are ignored', async () => {
    const { h } = hooks();
    const q = new WalQueue(h, 1000, 100);
    q.push(Buffer.from([1]));
    for await (const chunk of q) {
      expect(chunk.length).toBe(1);
      q.push(Buffer.from([2]));
      break;
    }
    expect(q.bytes).toBe(0);
    q.push(Buffer.from([3]));
    expect(q.bytes).toBe(0);
  });
});

describe('error classification: what is retried', () => {
  const pgError = (code: string, message: string): Error => Object.assign(new Error(message), { code });
  test.each([
    ['28P01', 'password authentication failed for user "x"', 'REPLICATION_AUTH'],
    ['28000', 'no pg_hba.conf entry for replication connection', 'REPLICATION_AUTH'],
    ['42501', 'must be superuser or replication role to start walsender', 'REPLICATION_AUTH'],
    ['42704', 'replication slot "s" does not exist', 'REPLICATION_SLOT'],
    ['58P01', 'requested WAL segment 000000010000000000000002 has already been removed', 'REPLICATION_SLOT'],
    ['55000', 'can no longer get changes from replication slot "s"', 'REPLICATION_SLOT'],
    ['55006', 'replication slot "s" is active for PID 42', 'REPLICATION_LOST'],
    ['57P01', 'terminating connection due to administrator command', 'REPLICATION_LOST'],
    ['57P03', 'the database system is starting up', 'REPLICATION_LOST'],
    ['53300', 'number of requested standby connections exceeds max_wal_senders', 'REPLICATION_LOST'],
    ['ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432', 'REPLICATION_LOST'],
  ])('%s %s → %s', (sqlstate, message, code) => {
    const e = classifyError(pgError(sqlstate, message), 'tl');
    expect(e.code).toBe(code);
    expect(e.message).toContain(message);
  });

  test('node-postgres\' own SCRAM check (no password given) is REPLICATION_AUTH; a StrataError stays as it is', () => {
    expect(classifyError(new Error('SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string'), 'tl').code).toBe('REPLICATION_AUTH');
    const own = new StrataError('WAL_CORRUPT', 'x');
    expect(classifyError(own, 'tl')).toBe(own);
    expect(classifyError(new Error('Connection terminated unexpectedly'), 'tl').code).toBe('REPLICATION_LOST');
  });
});

async function pgLikeTimeline(tag: string): Promise<{ repo: Repository; tl: Timeline }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `strata-follow-unit-${tag}-`));
  dirs.push(dir);
  const repo = await Repository.open(dir);
  const tl = await repo.createTimeline({ tenantId: 't', timelineId: tag });
  // What importPgDatadir records, without a cluster: enough for followPostgres' checks.
  await timelineImpl(tl).setExtension('pg', { systemIdentifier: '1', timeline: '1', catalogVersion: '202209061', importLsn: '0' });
  return { repo, tl };
}

/** A port nothing listens on (bound, then closed). */
async function deadPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

describe('followPostgres without a server', () => {
  test('bad options are BAD_ARGUMENT before anything connects', async () => {
    const { repo, tl } = await pgLikeTimeline('opts');
    const plain = await repo.createTimeline({ tenantId: 't', timelineId: 'plain' });
    try {
      const bad: Array<[Timeline, object, RegExp]> = [
        [plain, { connectionString: 'postgresql://x@127.0.0.1/x' }, /needs a PostgreSQL timeline/],
        [tl, { connectionString: '' }, /connectionString/],
        [tl, { connectionString: 'x', slotName: 'Bad-Name' }, /slotName must be/],
        [tl, { connectionString: 'x', createSlot: true }, /createSlot needs a slotName/],
        [tl, { connectionString: 'x', startLsn: tl.lastRecordLsn + 8n }, /would leave a gap/],
        [tl, { connectionString: 'x', flushIntervalMs: 0 }, /flushIntervalMs must be a number ≥ 1/],
        [tl, { connectionString: 'x', maxReconnectAttempts: -1 }, /maxReconnectAttempts/],
      ];
      for (const [t, o, why] of bad) {
        let err: unknown = null;
        try {
          repo.followPostgres(t, o as Parameters<Repository['followPostgres']>[1]);
        } catch (e) {
          err = e;
        }
        expect(isStrataError(err, 'BAD_ARGUMENT'), String(err)).toBe(true);
        expect((err as Error).message).toMatch(why);
      }
    } finally {
      await repo.close();
    }
  });

  test('a server that is not there: retried with backoff and counted, one follower per timeline, stop() ends it cleanly', async () => {
    const { repo, tl } = await pgLikeTimeline('dead');
    const port = await deadPort();
    const lsn = tl.lastRecordLsn;
    try {
      const f = repo.followPostgres(tl, { connectionString: `postgresql://u:p@127.0.0.1:${port}/x`, reconnectInitialDelayMs: 5, reconnectMaxDelayMs: 20 });
      const states: string[] = [];
      f.on('state', (s) => states.push(s));
      const errors: string[] = [];
      f.on('error', (e) => errors.push(e.code));
      expect(() => repo.followPostgres(tl, { connectionString: 'x' })).toThrow(/already following/);
      while (f.status().reconnects < 3) await new Promise((r) => setTimeout(r, 10));
      const st = await f.stop();
      expect(st.state).toBe('stopped');
      expect(st.lastError?.code).toBe('REPLICATION_LOST');
      expect(st.lastError?.message).toMatch(/ECONNREFUSED/);
      expect(errors.every((c) => c === 'REPLICATION_LOST') && errors.length >= 3).toBe(true);
      expect(states).toEqual(['reconnecting', 'stopped']);
      expect(tl.lastRecordLsn).toBe(lsn);
      // Stopped: the timeline can be followed again.
      const g = repo.followPostgres(tl, { connectionString: `postgresql://u:p@127.0.0.1:${port}/x`, maxReconnectAttempts: 2, reconnectInitialDelayMs: 1 });
      const gs = await g.done;
      expect(gs.state).toBe('failed');
      expect(gs.reconnects).toBe(2);
      expect(gs.lastError?.code).toBe('REPLICATION_LOST');
    } finally {
      await repo.close();
    }
  });

  test('repo.close() stops the followers it started', async () => {
    const { repo, tl } = await pgLikeTimeline('close');
    const port = await deadPort();
    const f = repo.followPostgres(tl, { connectionString: `postgresql://u:p@127.0.0.1:${port}/x`, reconnectInitialDelayMs: 5 });
    await repo.close();
    expect(f.state).toBe('stopped');
  });
});
