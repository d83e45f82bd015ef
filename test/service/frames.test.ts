/**
 * The wire format (docs/PROTOCOL.md): every frame round-trips through its encoder and decoder, the
 * byte layout of one frame of each direction is pinned, and every malformed frame — wrong length,
 * short or long payload, unknown type, bad counts, bad UTF-8, id 0 — is PROTOCOL_ERROR naming the
 * frame type and offset. A seeded run of random and mutated frames never throws anything else.
 */
import { describe, expect, it } from 'vitest';
import { isStrataError, LSN_MAX, PAGE_SIZE } from '../../lib';
import {
  decodeClientFrame, decodeServerFrame, encodeError, encodeExistsResult, encodeHello, encodeHelloOk, encodePage, encodePages, encodeRefuse,
  encodeRelations, encodeRelSize, encodeRequest, encodeThrottled, encodeViolation, FRAME_HEADER_BYTES, FRAME_TYPE, FrameReader, HELLO_MAGIC, MAX_BATCH_PAGES,
  MAX_FRAME_BYTES, MAX_RELATIONS_PER_FRAME, newGetPageScratch, PROTOCOL_VERSION, type RawFrame, type Request,
} from '../../lib/service/frames';
import { Rng } from '../helpers/random';

const FUZZ_FRAMES = Number(process.env.STRATA_SERVICE_FUZZ_FRAMES ?? 100_000);

function split(bytes: Buffer): RawFrame {
  const r = new FrameReader();
  r.push(bytes);
  const f = r.next();
  if (f === null) throw new Error('no whole frame');
  return f;
}

function protocolError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isStrataError(e, 'PROTOCOL_ERROR')) return e.message;
    throw e;
  }
  throw new Error('no PROTOCOL_ERROR');
}

const key = { spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0, blockNum: 7 };
const rel = { spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 2 };
const lsns = { requestLsn: 0x1_0000_0200n, notModifiedSince: 0x100n };

const REQUESTS: Request[] = [
  { kind: 'getPage', id: 1, lsns, key },
  { kind: 'getPages', id: 2, lsns, keys: [key, { ...key, blockNum: 8 }, { ...key, forkNum: 255, blockNum: 0xffff_ffff }] },
  { kind: 'getRelSize', id: 3, lsns, rel },
  { kind: 'exists', id: 0xffff_ffff, lsns: { requestLsn: LSN_MAX, notModifiedSince: 0n }, rel },
  { kind: 'listRelations', id: 5, lsns, dbOid: null },
  { kind: 'listRelations', id: 6, lsns, dbOid: 5 },
];

describe('frames: round trips and layout', () => {
  it('every request decodes to what was encoded', () => {
    for (const r of REQUESTS) expect(decodeClientFrame(split(encodeRequest(r)))).toEqual({ kind: 'request', request: r });
    const hello = { version: PROTOCOL_VERSION, tenantId: 'tenant_a', timelineId: 'main', token: 'x.y.z' };
    expect(decodeClientFrame(split(encodeHello(hello)))).toEqual({ kind: 'hello', hello });
  });

  it('every server frame decodes to what was encoded', () => {
    const p = Buffer.alloc(PAGE_SIZE, 7);
    const q = Buffer.alloc(PAGE_SIZE, 9);
    const helloOk = { version: 1, maxFrameBytes: MAX_FRAME_BYTES, maxInFlight: 32, maxBatchPages: MAX_BATCH_PAGES, lastRecordLsn: 0x300n };
    expect(decodeServerFrame(split(encodeHelloOk(helloOk)))).toEqual({ kind: 'helloOk', helloOk });
    expect(decodeServerFrame(split(encodeRefuse('AUTH_FAILED', 'no')))).toEqual({ kind: 'refuse', code: 'AUTH_FAILED', message: 'no' });
    expect(decodeServerFrame(split(encodePage(4, p)))).toEqual({ kind: 'page', id: 4, page: p });
    expect(decodeServerFrame(split(encodePages(5, [p, q])))).toEqual({ kind: 'pages', id: 5, pages: [p, q] });
    expect(decodeServerFrame(split(encodeRelSize(6, 1234)))).toEqual({ kind: 'relSize', id: 6, nblocks: 1234 });
    expect(decodeServerFrame(split(encodeExistsResult(7, true)))).toEqual({ kind: 'existsResult', id: 7, exists: true });
    expect(decodeServerFrame(split(encodeError(8, 'PAGE_NOT_FOUND', 'gone')))).toEqual({ kind: 'error', id: 8, code: 'PAGE_NOT_FOUND', message: 'gone' });
    expect(decodeServerFrame(split(encodeViolation(9, 'bad')))).toEqual({ kind: 'violation', id: 9, code: 'PROTOCOL_ERROR', message: 'bad' });
    // retry-after is rounded up to whole ms and clamped into u32.
    expect(decodeServerFrame(split(encodeThrottled(10, 12.2, 'slow down')))).toEqual({ kind: 'throttled', id: 10, retryAfterMs: 13, message: 'slow down' });
    expect(decodeServerFrame(split(encodeThrottled(10, 1e12, '')))).toMatchObject({ retryAfterMs: 0xffff_ffff });
  });

  it('pins the bytes of a THROTTLED frame', () => {
    const b = encodeThrottled(7, 250, 'x');
    expect(b.toString('hex')).toBe('00000010' + '2e' + '00000007' + '000000fa' + '0001' + '78');
    expect(FRAME_TYPE.THROTTLED).toBe(0x2e);
  });

  it('a long relation list is split into frames, only the last final', () => {
    const rels = Array.from({ length: MAX_RELATIONS_PER_FRAME + 3 }, (_, i) => ({ ...rel, relNumber: i, nblocks: i * 2 }));
    const frames = encodeRelations(11, rels).map((b) => decodeServerFrame(split(b)));
    expect(frames.map((f) => (f.kind === 'relations' ? [f.final, f.relations.length] : null))).toEqual([[false, MAX_RELATIONS_PER_FRAME], [true, 3]]);
    expect(frames.flatMap((f) => (f.kind === 'relations' ? f.relations : []))).toEqual(rels);
    const empty = encodeRelations(12, []);
    expect(empty.map((b) => decodeServerFrame(split(b)))).toEqual([{ kind: 'relations', id: 12, final: true, relations: [] }]);
    for (const b of encodeRelations(13, rels)) expect(b.length).toBeLessThanOrEqual(MAX_FRAME_BYTES);
  });

  it('pins the bytes of a GET_PAGE and a HELLO', () => {
    const b = encodeRequest({ kind: 'getPage', id: 0x0a0b0c0d, lsns: { requestLsn: 0x0102030405060708n, notModifiedSince: 0x11n }, key: { spcOid: 1, dbOid: 2, relNumber: 3, forkNum: 4, blockNum: 5 } });
    expect(b.toString('hex')).toBe([
      '0000002a', '10', '0a0b0c0d', // length 42, GET_PAGE, id
      '0102030405060708', '0000000000000011', // requestLsn, notModifiedSince
      '00000001', '00000002', '00000003', '04', '00000005', // key
    ].join(''));
    const h = encodeHello({ version: 1, tenantId: 't', timelineId: 'm', token: '' });
    expect(h.toString('hex')).toBe(['00000017', '01', '00000000', HELLO_MAGIC.toString(16), '0001', '000174', '00016d', '0000'].join(''));
  });

  it('a frame split across many chunks is reassembled; several frames in one chunk come out one by one', () => {
    const all = Buffer.concat(REQUESTS.map(encodeRequest));
    const r = new FrameReader();
    const got: Request[] = [];
    for (let i = 0; i < all.length; i += 3) {
      r.push(all.subarray(i, i + 3));
      for (let f = r.next(); f !== null; f = r.next()) {
        const d = decodeClientFrame(f);
        if (d.kind === 'request') got.push(d.request);
      }
    }
    expect(got).toEqual(REQUESTS);
    expect(r.pendingBytes).toBe(0);
  });
});

describe('frames: the GET_PAGE fast lane (FrameReader.peekGetPage)', () => {
  it('decodes a whole GET_PAGE in place, leaves anything else to next(), and never reuses stale LSNs', () => {
    const r = new FrameReader();
    const g = newGetPageScratch();
    const a = encodeRequest({ kind: 'getPage', id: 7, lsns, key });
    const b = encodeRequest({ kind: 'getPage', id: 8, lsns, key: { ...key, blockNum: 9 } });
    const c = encodeRequest({ kind: 'getPage', id: 9, lsns: { requestLsn: 0x2_0000_0001n, notModifiedSince: 0n }, key });
    const other = encodeRequest({ kind: 'getRelSize', id: 10, lsns, rel });
    const zeroId = encodeRequest({ kind: 'getPage', id: 0, lsns, key });
    expect(r.peekGetPage(g)).toBe(0); // nothing buffered
    // Split across chunks: not whole in the first chunk, so next() (which joins) takes it.
    r.push(a.subarray(0, 20));
    expect(r.peekGetPage(g)).toBe(0);
    r.push(Buffer.concat([a.subarray(20), b, c, other, zeroId]));
    expect(r.peekGetPage(g)).toBe(0);
    expect(decodeClientFrame(r.next() as RawFrame)).toEqual({ kind: 'request', request: { kind: 'getPage', id: 7, lsns, key } });
    // Peeking does not consume; skipPeeked does.
    expect(r.peekGetPage(g)).toBe(8);
    expect(r.peekGetPage(g)).toBe(8);
    expect(g).toMatchObject({ requestLsn: lsns.requestLsn, notModifiedSince: lsns.notModifiedSince, key: { ...key, blockNum: 9 } });
    const lsnBefore = g.requestLsn;
    r.skipPeeked();
    expect(r.peekGetPage(g)).toBe(9);
    expect(g.requestLsn).not.toBe(lsnBefore);
    expect(g).toMatchObject({ requestLsn: 0x2_0000_0001n, notModifiedSince: 0n, key });
    r.skipPeeked();
    // Another frame type, and a GET_PAGE with request id 0 (next() + decodeClientFrame name the fault).
    expect(r.peekGetPage(g)).toBe(0);
    expect((r.next() as RawFrame).type).toBe(FRAME_TYPE.GET_REL_SIZE);
    expect(r.peekGetPage(g)).toBe(0);
    expect(protocolError(() => decodeClientFrame(r.next() as RawFrame))).toMatch(/request id 0/);
    expect(r.pendingBytes).toBe(0);
  });
});

describe('frames: malformed input is PROTOCOL_ERROR naming type and offset', () => {
  const getPage = encodeRequest(REQUESTS[0]);

  it('a length below the header or above MAX_FRAME_BYTES, checked before the body arrives', () => {
    const r = new FrameReader();
    r.push(Buffer.from([0x00, 0x10, 0x00, 0x01, 0x10]));
    expect(protocolError(() => r.next())).toMatch(/frame type 0x10 GET_PAGE at stream offset 0, byte 0: length 1048577 is outside/);
    const r2 = new FrameReader();
    r2.push(getPage);
    r2.next();
    r2.push(Buffer.from([0, 0, 0, 8]));
    expect(protocolError(() => r2.next())).toMatch(/a frame at stream offset 42, byte 0: length 8/);
  });

  it('a payload short or long for its type, naming the field and byte', () => {
    const short = Buffer.from(getPage.subarray(0, 30));
    short.writeUInt32BE(30, 0);
    expect(protocolError(() => decodeClientFrame(split(short)))).toMatch(/frame type 0x10 GET_PAGE \(request id 1\) at stream offset 0, byte 25: key needs 17 bytes, 5 left/);
    const long = Buffer.concat([getPage, Buffer.from([0])]);
    long.writeUInt32BE(43, 0);
    expect(protocolError(() => decodeClientFrame(split(long)))).toMatch(/byte 42: 1 bytes left over/);
  });

  it('unknown types, server types from a client, id 0, counts, flags, magic and UTF-8', () => {
    const withType = (t: number): Buffer => {
      const b = Buffer.from(getPage);
      b[4] = t;
      return b;
    };
    expect(protocolError(() => decodeClientFrame(split(withType(0x7e))))).toMatch(/0x7e \(unknown\).*unknown frame type/);
    expect(protocolError(() => decodeClientFrame(split(withType(FRAME_TYPE.PAGE))))).toMatch(/0x20 PAGE.*server frame type sent by a client/);
    expect(protocolError(() => decodeServerFrame(split(getPage)))).toMatch(/client frame type sent by a server/);
    const id0 = Buffer.from(getPage);
    id0.writeUInt32BE(0, 5);
    expect(protocolError(() => decodeClientFrame(split(id0)))).toMatch(/request id 0 is reserved/);
    const batch = encodeRequest(REQUESTS[1]);
    batch.writeUInt16BE(0, 9 + 16);
    expect(protocolError(() => decodeClientFrame(split(batch)))).toMatch(/count 0 is outside \[1, 64\]/);
    const list = encodeRequest(REQUESTS[4]);
    list[9 + 16] = 2;
    expect(protocolError(() => decodeClientFrame(split(list)))).toMatch(/hasDb must be 0 or 1: got 2/);
    const hello = encodeHello({ version: 1, tenantId: 'a', timelineId: 'b', token: '' });
    hello[9] ^= 0xff;
    expect(protocolError(() => decodeClientFrame(split(hello)))).toMatch(/magic/);
    const utf = encodeHello({ version: 1, tenantId: 'ab', timelineId: 'b', token: '' });
    utf[9 + 6 + 2] = 0xff;
    expect(protocolError(() => decodeClientFrame(split(utf)))).toMatch(/tenantId is not valid UTF-8/);
  });
});

describe('frames: seeded random and mutated frames', () => {
  it(`${FUZZ_FRAMES} frames: each decodes or is PROTOCOL_ERROR, nothing else is thrown`, () => {
    const rng = new Rng(0x5eed);
    const valid = [...REQUESTS.map(encodeRequest), encodeHello({ version: 1, tenantId: 'a', timelineId: 'b', token: 'tok' })];
    const serverValid = [encodePage(1, Buffer.alloc(PAGE_SIZE)), encodeRelSize(2, 3), encodeError(3, 'X', 'y'), encodeRelations(4, [{ ...rel, nblocks: 1 }])[0]];
    const outcome = { decoded: 0, rejected: 0 };
    for (let i = 0; i < FUZZ_FRAMES; i++) {
      const pool = i % 2 === 0 ? valid : serverValid;
      let b = Buffer.from(pool[rng.int(0, pool.length)]);
      switch (rng.int(0, 5)) {
        case 0: // flip random bytes after the length field
          for (let n = rng.int(1, 4); n > 0; n--) b[rng.int(4, b.length)] ^= 1 << rng.int(0, 8);
          break;
        case 1: // truncate the payload, keeping the length field consistent
          b = b.subarray(0, rng.int(FRAME_HEADER_BYTES, b.length + 1));
          b.writeUInt32BE(b.length, 0);
          break;
        case 2: // random garbage payload of a random type
          b = Buffer.alloc(FRAME_HEADER_BYTES + rng.int(0, 64));
          for (let j = 4; j < b.length; j++) b[j] = rng.int(0, 256);
          b.writeUInt32BE(b.length, 0);
          break;
        case 3: // a random length field
          b.writeUInt32BE(rng.int(0, 2 * MAX_FRAME_BYTES), 0);
          break;
        default: // unchanged
      }
      try {
        const r = new FrameReader();
        r.push(b);
        const raw = r.next();
        if (raw === null) {
          outcome.rejected++; // incomplete: a reader waits for more bytes
          continue;
        }
        if (i % 2 === 0) decodeClientFrame(raw);
        else decodeServerFrame(raw);
        outcome.decoded++;
      } catch (e) {
        if (!isStrataError(e, 'PROTOCOL_ERROR')) throw e;
        outcome.rejected++;
      }
    }
    expect(outcome.decoded + outcome.rejected).toBe(FUZZ_FRAMES);
    expect(outcome.decoded).toBeGreaterThan(FUZZ_FRAMES / 10);
    expect(outcome.rejected).toBeGreaterThan(FUZZ_FRAMES / 10);
  });
});
