/**
 * The page service's wire format (docs/PROTOCOL.md, version 1): length-prefixed frames, their
 * encoders, and decoders that check every length before using it. A frame that breaks the layout
 * is a StrataError PROTOCOL_ERROR naming the frame's type, its offset in the stream and the byte
 * where decoding stopped. The server and StrataClient share this one implementation.
 */
import { StrataError } from '../errors';
import type { PageKey } from '../key';
import { LSN_MAX, type Lsn } from '../lsn';
import { PAGE_SIZE } from '../record';
import type { RelationInfo, RelTag } from '../timeline';

/** Version 2 added THROTTLED (docs/PROTOCOL.md, "Versions"). */
export const PROTOCOL_VERSION = 2;
/** The oldest version a server still speaks: a version-1 client is told of throttling with ERROR THROTTLED. */
export const MIN_PROTOCOL_VERSION = 1;
/** Largest retry-after a THROTTLED frame carries (ms, u32 on the wire). */
export const MAX_RETRY_AFTER_MS = 0xffff_ffff;
/** "STRP": the first field of HELLO, so a stray connection (HTTP, TLS) is told apart at once. */
export const HELLO_MAGIC = 0x5354_5250;
/** u32 length, u8 type, u32 request id. */
export const FRAME_HEADER_BYTES = 9;
/** Largest frame either side accepts, header included: a full PAGES answer fits. */
export const MAX_FRAME_BYTES = 1 << 20;
/** Pages per GET_PAGES: one core call, one frame of 64 × 8 KiB. */
export const MAX_BATCH_PAGES = 64;
/** Longest str16 accepted (ids, tokens, error messages); longer messages are cut when encoded. */
export const MAX_STRING_BYTES = 4096;
/** Requests a connection may have in flight before the server stops reading it. */
export const DEFAULT_MAX_IN_FLIGHT = 32;

/** spc u32, db u32, rel u32, fork u8, block u32: a PageKey without the stored key's kind byte. */
export const KEY_WIRE_BYTES = 17;
/** spc u32, db u32, rel u32, fork u8: a RelTag. */
export const REL_WIRE_BYTES = 13;
/** requestLsn u64, notModifiedSince u64. */
export const LSNS_WIRE_BYTES = 16;
/** Bytes of a well-formed GET_PAGE frame: header, LSNs, key. */
export const GET_PAGE_FRAME_BYTES = FRAME_HEADER_BYTES + LSNS_WIRE_BYTES + KEY_WIRE_BYTES;
const RELATION_ENTRY_BYTES = REL_WIRE_BYTES + 4;
/** RELATIONS entries per frame: what fits after final u8 and count u32. */
export const MAX_RELATIONS_PER_FRAME = Math.floor((MAX_FRAME_BYTES - FRAME_HEADER_BYTES - 5) / RELATION_ENTRY_BYTES);

export const FRAME_TYPE = {
  HELLO: 0x01,
  HELLO_OK: 0x02,
  REFUSE: 0x03,
  GET_PAGE: 0x10,
  GET_PAGES: 0x11,
  GET_REL_SIZE: 0x12,
  EXISTS: 0x13,
  LIST_RELATIONS: 0x14,
  PAGE: 0x20,
  PAGES: 0x21,
  REL_SIZE: 0x22,
  EXISTS_RESULT: 0x23,
  RELATIONS: 0x24,
  THROTTLED: 0x2e,
  ERROR: 0x2f,
  PROTOCOL_VIOLATION: 0x30,
} as const;
export type FrameTypeName = keyof typeof FRAME_TYPE;
const TYPE_NAMES = new Map<number, FrameTypeName>(Object.entries(FRAME_TYPE).map(([n, t]) => [t, n as FrameTypeName]));

/** `0x10 GET_PAGE`, or `0x7e (unknown)`: how messages name a frame type. */
export function describeFrameType(type: number): string {
  return `0x${type.toString(16).padStart(2, '0')} ${TYPE_NAMES.get(type) ?? '(unknown)'}`;
}

/** The two LSNs every request carries (docs/PROTOCOL.md, "LSNs"). */
export interface RequestLsns {
  requestLsn: Lsn;
  notModifiedSince: Lsn;
}

export interface Hello {
  version: number;
  tenantId: string;
  timelineId: string;
  token: string;
}

export type Request =
  | { kind: 'getPage'; id: number; lsns: RequestLsns; key: PageKey }
  | { kind: 'getPages'; id: number; lsns: RequestLsns; keys: PageKey[] }
  | { kind: 'getRelSize'; id: number; lsns: RequestLsns; rel: RelTag }
  | { kind: 'exists'; id: number; lsns: RequestLsns; rel: RelTag }
  | { kind: 'listRelations'; id: number; lsns: RequestLsns; dbOid: number | null };

export type ClientFrame = { kind: 'hello'; hello: Hello } | { kind: 'request'; request: Request };

export interface HelloOk {
  version: number;
  maxFrameBytes: number;
  maxInFlight: number;
  maxBatchPages: number;
  lastRecordLsn: Lsn;
}

export type ServerFrame =
  | { kind: 'helloOk'; helloOk: HelloOk }
  | { kind: 'refuse'; code: string; message: string }
  | { kind: 'page'; id: number; page: Buffer }
  | { kind: 'pages'; id: number; pages: Buffer[] }
  | { kind: 'relSize'; id: number; nblocks: number }
  | { kind: 'existsResult'; id: number; exists: boolean }
  | { kind: 'relations'; id: number; final: boolean; relations: RelationInfo[] }
  | { kind: 'throttled'; id: number; retryAfterMs: number; message: string }
  | { kind: 'error'; id: number; code: string; message: string }
  | { kind: 'violation'; id: number; code: string; message: string };

/** A frame split off the stream, payload not yet decoded. */
export interface RawFrame {
  type: number;
  id: number;
  payload: Buffer;
  /** Offset of the frame's first byte in the connection's stream, for messages. */
  streamOffset: number;
}

// ---- encoding ----------------------------------------------------------------------------------

/** Allocates a frame's buffer of exactly the bytes asked (a FramePool's take, or a fresh Buffer). */
export type FrameAlloc = (bytes: number) => Buffer;

const freshBuffer: FrameAlloc = (bytes) => Buffer.allocUnsafe(bytes);

/** A frame buffer of `payloadBytes` with its header written; the payload starts at FRAME_HEADER_BYTES. */
function frame(type: number, id: number, payloadBytes: number, alloc: FrameAlloc = freshBuffer): Buffer {
  const length = FRAME_HEADER_BYTES + payloadBytes;
  if (length > MAX_FRAME_BYTES) throw new StrataError('BAD_ARGUMENT', `a ${describeFrameType(type)} frame of ${length} bytes exceeds MAX_FRAME_BYTES ${MAX_FRAME_BYTES}`);
  const b = alloc(length);
  writeHeader(b, 0, type, id, length);
  return b;
}

function writeHeader(b: Buffer, at: number, type: number, id: number, length: number): void {
  b.writeUInt32BE(length, at);
  b[at + 4] = type;
  b.writeUInt32BE(id, at + 5);
}

function utf8Capped(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.length <= MAX_STRING_BYTES) return b;
  // Cut at a character boundary: drop continuation bytes left dangling by the cut.
  let end = MAX_STRING_BYTES;
  while (end > 0 && (b[end] & 0xc0) === 0x80) end--;
  return b.subarray(0, end);
}

function utf8Checked(s: string, what: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.length > MAX_STRING_BYTES) throw new StrataError('BAD_ARGUMENT', `${what} of ${b.length} bytes exceeds ${MAX_STRING_BYTES}`);
  return b;
}

function writeStr(b: Buffer, off: number, s: Buffer): number {
  b.writeUInt16BE(s.length, off);
  s.copy(b, off + 2);
  return off + 2 + s.length;
}

function writeLsns(b: Buffer, off: number, l: RequestLsns): number {
  b.writeBigUInt64BE(l.requestLsn, off);
  b.writeBigUInt64BE(l.notModifiedSince, off + 8);
  return off + LSNS_WIRE_BYTES;
}

function writeKey(b: Buffer, off: number, k: PageKey): number {
  b.writeUInt32BE(k.spcOid, off);
  b.writeUInt32BE(k.dbOid, off + 4);
  b.writeUInt32BE(k.relNumber, off + 8);
  b[off + 12] = k.forkNum;
  b.writeUInt32BE(k.blockNum, off + 13);
  return off + KEY_WIRE_BYTES;
}

function writeRel(b: Buffer, off: number, r: RelTag): number {
  b.writeUInt32BE(r.spcOid, off);
  b.writeUInt32BE(r.dbOid, off + 4);
  b.writeUInt32BE(r.relNumber, off + 8);
  b[off + 12] = r.forkNum;
  return off + REL_WIRE_BYTES;
}

export function encodeHello(h: Hello): Buffer {
  const tenant = utf8Checked(h.tenantId, 'tenantId');
  const timeline = utf8Checked(h.timelineId, 'timelineId');
  const token = utf8Checked(h.token, 'token');
  const b = frame(FRAME_TYPE.HELLO, 0, 6 + 6 + tenant.length + timeline.length + token.length);
  b.writeUInt32BE(HELLO_MAGIC, 9);
  b.writeUInt16BE(h.version, 13);
  writeStr(b, writeStr(b, writeStr(b, 15, tenant), timeline), token);
  return b;
}

/** Encode a request. Field ranges are the caller's (StrataClient checks them); Buffer throws on overflow. */
export function encodeRequest(r: Request): Buffer {
  switch (r.kind) {
    case 'getPage': {
      const b = frame(FRAME_TYPE.GET_PAGE, r.id, LSNS_WIRE_BYTES + KEY_WIRE_BYTES);
      writeKey(b, writeLsns(b, 9, r.lsns), r.key);
      return b;
    }
    case 'getPages': {
      const b = frame(FRAME_TYPE.GET_PAGES, r.id, LSNS_WIRE_BYTES + 2 + KEY_WIRE_BYTES * r.keys.length);
      let off = writeLsns(b, 9, r.lsns);
      b.writeUInt16BE(r.keys.length, off);
      off += 2;
      for (const k of r.keys) off = writeKey(b, off, k);
      return b;
    }
    case 'getRelSize':
    case 'exists': {
      const b = frame(r.kind === 'exists' ? FRAME_TYPE.EXISTS : FRAME_TYPE.GET_REL_SIZE, r.id, LSNS_WIRE_BYTES + REL_WIRE_BYTES);
      writeRel(b, writeLsns(b, 9, r.lsns), r.rel);
      return b;
    }
    case 'listRelations': {
      const b = frame(FRAME_TYPE.LIST_RELATIONS, r.id, LSNS_WIRE_BYTES + 5);
      const off = writeLsns(b, 9, r.lsns);
      b[off] = r.dbOid === null ? 0 : 1;
      b.writeUInt32BE(r.dbOid ?? 0, off + 1);
      return b;
    }
  }
}

export function encodeHelloOk(h: HelloOk): Buffer {
  const b = frame(FRAME_TYPE.HELLO_OK, 0, 18);
  b.writeUInt16BE(h.version, 9);
  b.writeUInt32BE(h.maxFrameBytes, 11);
  b.writeUInt16BE(h.maxInFlight, 15);
  b.writeUInt16BE(h.maxBatchPages, 17);
  b.writeBigUInt64BE(h.lastRecordLsn, 19);
  return b;
}

function encodeCodeMessage(type: number, id: number, code: string, message: string): Buffer {
  const c = utf8Capped(code);
  const m = utf8Capped(message);
  const b = frame(type, id, 4 + c.length + m.length);
  writeStr(b, writeStr(b, 9, c), m);
  return b;
}

export function encodeRefuse(code: string, message: string): Buffer {
  return encodeCodeMessage(FRAME_TYPE.REFUSE, 0, code, message);
}

export function encodeError(id: number, code: string, message: string): Buffer {
  return encodeCodeMessage(FRAME_TYPE.ERROR, id, code, message);
}

/** THROTTLED (version 2): the request was not run; send it again after `retryAfterMs` (rounded up). */
export function encodeThrottled(id: number, retryAfterMs: number, message: string): Buffer {
  const m = utf8Capped(message);
  const b = frame(FRAME_TYPE.THROTTLED, id, 4 + 2 + m.length);
  b.writeUInt32BE(Math.min(MAX_RETRY_AFTER_MS, Math.max(0, Math.ceil(retryAfterMs))), 9);
  writeStr(b, 13, m);
  return b;
}

export function encodeViolation(id: number, message: string): Buffer {
  return encodeCodeMessage(FRAME_TYPE.PROTOCOL_VIOLATION, id, 'PROTOCOL_ERROR', message);
}

/** Where a PAGE frame's page starts (after the header). */
export const PAGE_FRAME_PAGE_OFFSET = FRAME_HEADER_BYTES;
/** Where a PAGES frame's first page starts (after the header and count u16). */
export const PAGES_FRAME_PAGES_OFFSET = FRAME_HEADER_BYTES + 2;

/**
 * A PAGE frame (`count` null) or a PAGES frame of `count` pages with its header and count written
 * and the pages left to the caller, to read them straight into the frame (no copy).
 */
export function allocPagesFrame(id: number, count: number | null, alloc?: FrameAlloc): Buffer {
  if (count === null) return frame(FRAME_TYPE.PAGE, id, PAGE_SIZE, alloc);
  const b = frame(FRAME_TYPE.PAGES, id, 2 + PAGE_SIZE * count, alloc);
  b.writeUInt16BE(count, FRAME_HEADER_BYTES);
  return b;
}

/** Bytes of a PAGE frame (count null) or a PAGES frame of `count` pages. */
export function pagesFrameBytes(count: number | null): number {
  return count === null ? FRAME_HEADER_BYTES + PAGE_SIZE : PAGES_FRAME_PAGES_OFFSET + PAGE_SIZE * count;
}

/**
 * allocPagesFrame's header (and count) written at b[at] instead, for a caller that gathers answers
 * in one buffer; the pages go at `at` + PAGE_FRAME_PAGE_OFFSET or PAGES_FRAME_PAGES_OFFSET.
 */
export function writePagesFrameHeader(b: Buffer, at: number, id: number, count: number | null): void {
  if (count === null) {
    writeHeader(b, at, FRAME_TYPE.PAGE, id, pagesFrameBytes(null));
  } else {
    writeHeader(b, at, FRAME_TYPE.PAGES, id, pagesFrameBytes(count));
    b.writeUInt16BE(count, at + FRAME_HEADER_BYTES);
  }
}

export function encodePage(id: number, page: Uint8Array, alloc?: FrameAlloc): Buffer {
  const b = frame(FRAME_TYPE.PAGE, id, PAGE_SIZE, alloc);
  b.set(page.subarray(0, PAGE_SIZE), 9);
  return b;
}

export function encodePages(id: number, pages: readonly Uint8Array[], alloc?: FrameAlloc): Buffer {
  const b = frame(FRAME_TYPE.PAGES, id, 2 + PAGE_SIZE * pages.length, alloc);
  b.writeUInt16BE(pages.length, 9);
  let off = 11;
  for (const p of pages) {
    b.set(p.subarray(0, PAGE_SIZE), off);
    off += PAGE_SIZE;
  }
  return b;
}

export function encodeRelSize(id: number, nblocks: number): Buffer {
  const b = frame(FRAME_TYPE.REL_SIZE, id, 4);
  b.writeUInt32BE(nblocks, 9);
  return b;
}

export function encodeExistsResult(id: number, exists: boolean): Buffer {
  const b = frame(FRAME_TYPE.EXISTS_RESULT, id, 1);
  b[9] = exists ? 1 : 0;
  return b;
}

/** One or more RELATIONS frames (MAX_RELATIONS_PER_FRAME each), the last with final = 1. */
export function encodeRelations(id: number, rels: readonly RelationInfo[]): Buffer[] {
  const out: Buffer[] = [];
  for (let start = 0; start === 0 || start < rels.length; start += MAX_RELATIONS_PER_FRAME) {
    const part = rels.slice(start, start + MAX_RELATIONS_PER_FRAME);
    const b = frame(FRAME_TYPE.RELATIONS, id, 5 + RELATION_ENTRY_BYTES * part.length);
    b[9] = start + part.length >= rels.length ? 1 : 0;
    b.writeUInt32BE(part.length, 10);
    let off = 14;
    for (const r of part) {
      off = writeRel(b, off, r);
      b.writeUInt32BE(r.nblocks, off);
      off += 4;
    }
    out.push(b);
  }
  return out;
}

// ---- splitting the stream into frames ----------------------------------------------------------

/**
 * Splits a byte stream into frames. The length field is checked as soon as its 4 bytes are in, so
 * an oversized frame is refused before its body is buffered; memory held is at most one frame plus
 * the chunk that completed it.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  /** Bytes of chunks[0] already returned: kept as an offset, not sliced off (no view per frame). */
  private firstOff = 0;
  private buffered = 0;
  /** Stream offset of the first buffered byte. */
  private offset = 0;

  constructor(private readonly maxFrameBytes: number = MAX_FRAME_BYTES) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** Bytes received but not yet returned as frames. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /** The next whole frame, or null until more bytes arrive; PROTOCOL_ERROR on a bad length. */
  next(): RawFrame | null {
    if (this.buffered < 4) return null;
    this.makeContiguous(Math.min(this.buffered, FRAME_HEADER_BYTES));
    let b = this.chunks[0];
    let at = this.firstOff;
    const length = b.readUInt32BE(at);
    const type = this.buffered >= 5 ? b[at + 4] : -1;
    if (length < FRAME_HEADER_BYTES || length > this.maxFrameBytes) {
      const what = type < 0 ? 'a frame' : `frame type ${describeFrameType(type)}`;
      throw new StrataError('PROTOCOL_ERROR', `${what} at stream offset ${this.offset}, byte 0: length ${length} is outside [${FRAME_HEADER_BYTES}, ${this.maxFrameBytes}]`);
    }
    if (this.buffered < length) return null;
    this.makeContiguous(length);
    b = this.chunks[0];
    at = this.firstOff;
    const frame: RawFrame = { type: b[at + 4], id: b.readUInt32BE(at + 5), payload: b.subarray(at + FRAME_HEADER_BYTES, at + length), streamOffset: this.offset };
    this.offset += length;
    this.buffered -= length;
    this.firstOff += length;
    if (this.firstOff === b.length) {
      this.chunks.shift();
      this.firstOff = 0;
    }
    return frame;
  }

  /**
   * The server's fast lane for the commonest frame: when the next frame is a whole, well-formed
   * GET_PAGE inside the first chunk, its fields go into `into` and its request id is returned; the
   * frame stays unread until skipPeeked(). 0 otherwise (next() returns the frame as usual). No
   * object is made, where next() makes a frame and a payload view.
   */
  peekGetPage(into: GetPageScratch): number {
    const b = this.chunks[0];
    const at = this.firstOff;
    if (b === undefined || b.length - at < GET_PAGE_FRAME_BYTES) return 0;
    if (b.readUInt32BE(at) !== GET_PAGE_FRAME_BYTES || b[at + 4] !== FRAME_TYPE.GET_PAGE) return 0;
    const id = b.readUInt32BE(at + 5);
    if (id !== 0) decodeGetPageFields(b, at + FRAME_HEADER_BYTES, into);
    return id;
  }

  /** Consume the frame peekGetPage() returned a request id for. */
  skipPeeked(): void {
    this.offset += GET_PAGE_FRAME_BYTES;
    this.buffered -= GET_PAGE_FRAME_BYTES;
    this.firstOff += GET_PAGE_FRAME_BYTES;
    if (this.firstOff === this.chunks[0].length) {
      this.chunks.shift();
      this.firstOff = 0;
    }
  }

  /** Make the first n unread bytes one run of chunks[0] (copies only when they span chunks). */
  private makeContiguous(n: number): void {
    const first = this.chunks[0];
    if (first.length - this.firstOff >= n) return;
    this.chunks = [Buffer.concat([first.subarray(this.firstOff), ...this.chunks.slice(1)])];
    this.firstOff = 0;
  }
}

// ---- decoding ----------------------------------------------------------------------------------

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Reads a frame's payload field by field; any overrun or leftover is PROTOCOL_ERROR naming the byte. */
class Cursor {
  private off = 0;

  constructor(private readonly raw: RawFrame) {}

  fail(what: string): never {
    const at = FRAME_HEADER_BYTES + this.off;
    throw new StrataError('PROTOCOL_ERROR', `frame type ${describeFrameType(this.raw.type)} (request id ${this.raw.id}) at stream offset ${this.raw.streamOffset}, byte ${at}: ${what}`);
  }

  private need(n: number, field: string): void {
    if (this.raw.payload.length - this.off < n) this.fail(`${field} needs ${n} bytes, ${this.raw.payload.length - this.off} left in a payload of ${this.raw.payload.length}`);
  }

  u8(field: string): number {
    this.need(1, field);
    return this.raw.payload[this.off++];
  }

  u16(field: string): number {
    this.need(2, field);
    const v = this.raw.payload.readUInt16BE(this.off);
    this.off += 2;
    return v;
  }

  u32(field: string): number {
    this.need(4, field);
    const v = this.raw.payload.readUInt32BE(this.off);
    this.off += 4;
    return v;
  }

  u64(field: string): bigint {
    this.need(8, field);
    const v = this.raw.payload.readBigUInt64BE(this.off);
    this.off += 8;
    return v;
  }

  bytes(n: number, field: string): Buffer {
    this.need(n, field);
    const v = this.raw.payload.subarray(this.off, this.off + n);
    this.off += n;
    return v;
  }

  str16(field: string): string {
    const n = this.u16(`${field} length`);
    if (n > MAX_STRING_BYTES) this.fail(`${field} of ${n} bytes exceeds ${MAX_STRING_BYTES}`);
    const b = this.bytes(n, field);
    try {
      return UTF8.decode(b);
    } catch {
      return this.fail(`${field} is not valid UTF-8`);
    }
  }

  bool(field: string): boolean {
    const v = this.u8(field);
    if (v > 1) this.fail(`${field} must be 0 or 1: got ${v}`);
    return v === 1;
  }

  lsns(): RequestLsns {
    return { requestLsn: this.u64('requestLsn'), notModifiedSince: this.u64('notModifiedSince') };
  }

  key(): PageKey {
    this.need(KEY_WIRE_BYTES, 'key');
    const p = this.raw.payload;
    const o = this.off;
    this.off += KEY_WIRE_BYTES;
    return { spcOid: p.readUInt32BE(o), dbOid: p.readUInt32BE(o + 4), relNumber: p.readUInt32BE(o + 8), forkNum: p[o + 12], blockNum: p.readUInt32BE(o + 13) };
  }

  rel(): RelTag {
    this.need(REL_WIRE_BYTES, 'rel');
    const p = this.raw.payload;
    const o = this.off;
    this.off += REL_WIRE_BYTES;
    return { spcOid: p.readUInt32BE(o), dbOid: p.readUInt32BE(o + 4), relNumber: p.readUInt32BE(o + 8), forkNum: p[o + 12] };
  }

  count(field: string, min: number, max: number): number {
    const n = this.u16(field);
    if (n < min || n > max) this.fail(`${field} ${n} is outside [${min}, ${max}]`);
    return n;
  }

  end(): void {
    const left = this.raw.payload.length - this.off;
    if (left !== 0) this.fail(`${left} bytes left over after the last field`);
  }
}

function requestId(c: Cursor, raw: RawFrame): number {
  if (raw.id === 0) c.fail('request id 0 is reserved for the handshake');
  return raw.id;
}

/** A GetPage decoded into fields a connection reuses (FrameReader.peekGetPage): no objects per request. */
export interface GetPageScratch {
  requestLsn: Lsn;
  notModifiedSince: Lsn;
  readonly key: PageKey;
  /**
   * The LSNs' wire bytes as four u32 (high, low, high, low): a request at the same LSNs as the
   * last reuses its bigints, as a compute's requests mostly do (a bigint read allocates).
   */
  readonly lsnWords: Uint32Array;
}

export function newGetPageScratch(): GetPageScratch {
  return { requestLsn: 0n, notModifiedSince: 0n, key: { spcOid: 0, dbOid: 0, relNumber: 0, forkNum: 0, blockNum: 0 }, lsnWords: new Uint32Array(4) };
}

/** Decode a GET_PAGE payload at `p[at]` into `into` (the caller checked its length). */
function decodeGetPageFields(p: Buffer, at: number, into: GetPageScratch): void {
  const w = into.lsnWords;
  const h0 = p.readUInt32BE(at);
  const l0 = p.readUInt32BE(at + 4);
  const h1 = p.readUInt32BE(at + 8);
  const l1 = p.readUInt32BE(at + 12);
  if (h0 !== w[0] || l0 !== w[1] || h1 !== w[2] || l1 !== w[3]) {
    into.requestLsn = p.readBigUInt64BE(at);
    into.notModifiedSince = p.readBigUInt64BE(at + 8);
    w[0] = h0;
    w[1] = l0;
    w[2] = h1;
    w[3] = l1;
  }
  const k = into.key;
  const o = at + LSNS_WIRE_BYTES;
  k.spcOid = p.readUInt32BE(o);
  k.dbOid = p.readUInt32BE(o + 4);
  k.relNumber = p.readUInt32BE(o + 8);
  k.forkNum = p[o + 12];
  k.blockNum = p.readUInt32BE(o + 13);
}

/** Decode a frame a client sent: HELLO or a request. */
export function decodeClientFrame(raw: RawFrame): ClientFrame {
  const c = new Cursor(raw);
  let out: ClientFrame;
  switch (raw.type) {
    case FRAME_TYPE.HELLO: {
      if (raw.id !== 0) c.fail(`HELLO carries request id ${raw.id}, not 0`);
      const magic = c.u32('magic');
      if (magic !== HELLO_MAGIC) c.fail(`magic 0x${magic.toString(16)} is not 0x${HELLO_MAGIC.toString(16)}`);
      out = { kind: 'hello', hello: { version: c.u16('version'), tenantId: c.str16('tenantId'), timelineId: c.str16('timelineId'), token: c.str16('token') } };
      break;
    }
    case FRAME_TYPE.GET_PAGE:
      out = { kind: 'request', request: { kind: 'getPage', id: requestId(c, raw), lsns: c.lsns(), key: c.key() } };
      break;
    case FRAME_TYPE.GET_PAGES: {
      const id = requestId(c, raw);
      const lsns = c.lsns();
      const n = c.count('count', 1, MAX_BATCH_PAGES);
      const keys: PageKey[] = [];
      for (let i = 0; i < n; i++) keys.push(c.key());
      out = { kind: 'request', request: { kind: 'getPages', id, lsns, keys } };
      break;
    }
    case FRAME_TYPE.GET_REL_SIZE:
    case FRAME_TYPE.EXISTS:
      out = { kind: 'request', request: { kind: raw.type === FRAME_TYPE.EXISTS ? 'exists' : 'getRelSize', id: requestId(c, raw), lsns: c.lsns(), rel: c.rel() } };
      break;
    case FRAME_TYPE.LIST_RELATIONS: {
      const id = requestId(c, raw);
      const lsns = c.lsns();
      const hasDb = c.bool('hasDb');
      const dbOid = c.u32('dbOid');
      if (!hasDb && dbOid !== 0) c.fail(`dbOid ${dbOid} given with hasDb 0`);
      out = { kind: 'request', request: { kind: 'listRelations', id, lsns, dbOid: hasDb ? dbOid : null } };
      break;
    }
    default:
      return c.fail(TYPE_NAMES.has(raw.type) ? 'a server frame type sent by a client' : 'unknown frame type');
  }
  c.end();
  return out;
}

/** Decode a frame a server sent. */
export function decodeServerFrame(raw: RawFrame): ServerFrame {
  const c = new Cursor(raw);
  let out: ServerFrame;
  const id = raw.id;
  switch (raw.type) {
    case FRAME_TYPE.HELLO_OK:
      out = { kind: 'helloOk', helloOk: { version: c.u16('version'), maxFrameBytes: c.u32('maxFrameBytes'), maxInFlight: c.u16('maxInFlight'), maxBatchPages: c.u16('maxBatchPages'), lastRecordLsn: c.u64('lastRecordLsn') } };
      break;
    case FRAME_TYPE.REFUSE:
      out = { kind: 'refuse', code: c.str16('code'), message: c.str16('message') };
      break;
    case FRAME_TYPE.PAGE:
      out = { kind: 'page', id, page: c.bytes(PAGE_SIZE, 'page') };
      break;
    case FRAME_TYPE.PAGES: {
      const n = c.count('count', 1, MAX_BATCH_PAGES);
      const pages: Buffer[] = [];
      for (let i = 0; i < n; i++) pages.push(c.bytes(PAGE_SIZE, `page ${i}`));
      out = { kind: 'pages', id, pages };
      break;
    }
    case FRAME_TYPE.REL_SIZE:
      out = { kind: 'relSize', id, nblocks: c.u32('nblocks') };
      break;
    case FRAME_TYPE.EXISTS_RESULT:
      out = { kind: 'existsResult', id, exists: c.bool('exists') };
      break;
    case FRAME_TYPE.RELATIONS: {
      const final = c.bool('final');
      const n = c.u32('count');
      if (n > MAX_RELATIONS_PER_FRAME) c.fail(`count ${n} exceeds ${MAX_RELATIONS_PER_FRAME}`);
      const relations: RelationInfo[] = [];
      for (let i = 0; i < n; i++) relations.push({ ...c.rel(), nblocks: c.u32('nblocks') });
      out = { kind: 'relations', id, final, relations };
      break;
    }
    case FRAME_TYPE.THROTTLED:
      out = { kind: 'throttled', id, retryAfterMs: c.u32('retryAfterMs'), message: c.str16('message') };
      break;
    case FRAME_TYPE.ERROR:
      out = { kind: 'error', id, code: c.str16('code'), message: c.str16('message') };
      break;
    case FRAME_TYPE.PROTOCOL_VIOLATION:
      out = { kind: 'violation', id, code: c.str16('code'), message: c.str16('message') };
      break;
    default:
      return c.fail(TYPE_NAMES.has(raw.type) ? 'a client frame type sent by a server' : 'unknown frame type');
  }
  c.end();
  return out;
}

/** LSN_MAX as requestLsn: "the latest" (docs/PROTOCOL.md, "LSNs"). */
export const LATEST_LSN: Lsn = LSN_MAX;
