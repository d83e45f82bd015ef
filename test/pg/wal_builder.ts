/**
 * Builds synthetic PostgreSQL 15 WAL for the decoder tests, the way XLogRecordAssemble and
 * XLogInsertRecord lay it out (docs/POSTGRES.md; xlogrecord.h, xlog_internal.h): record header,
 * block/data headers, payload, CRC-32C, records MAXALIGNed and split across 8 KB pages whose
 * headers (long at a segment start) carry XLP_FIRST_IS_CONTRECORD and xlp_rem_len. Every field
 * can be overridden to build broken WAL. Also a small pglz compressor (PostgreSQL has one; Node
 * does not).
 */
import { crc32cFinish, crc32cUpdate, CRC32C_INIT } from '../../lib/core/ts/pg/crc32c';

export const PAGE = 8192;
export const SEGMENT = 16 * 1024 * 1024;
export const MAGIC = 0xd110;
export const XLP_FIRST_IS_CONTRECORD = 0x1;
export const XLP_LONG_HEADER = 0x2;
export const XLP_FIRST_IS_OVERWRITE_CONTRECORD = 0x8;
export const DEFAULT_SYSID = 7300000000000000001n;

export interface ImageSpec {
  /** The bytes as logged: the page minus its hole, compressed or not. */
  stored: Buffer;
  bimgInfo: number;
  holeOffset: number;
  /** Written only for a compressed image with a hole (XLogRecordBlockCompressHeader). */
  holeLength?: number;
}

export interface BlockSpec {
  id: number;
  fork?: number;
  /** Extra fork_flags bits (WILL_INIT 0x40); HAS_IMAGE, HAS_DATA and SAME_REL are derived. */
  flags?: number;
  /** [spcOid, dbOid, relNumber]; omitted means BKPBLOCK_SAME_REL. */
  rel?: [number, number, number];
  blkno: number;
  data?: Buffer;
  image?: ImageSpec;
  /** Overrides the data_length field (the payload still carries `data`). */
  dataLengthField?: number;
  /** Overrides the whole fork_flags byte. */
  forkFlagsField?: number;
}

export interface RecordSpec {
  rmid: number;
  info: number;
  xid?: number;
  blocks?: BlockSpec[];
  main?: Buffer;
  /** Force the long main-data header even for < 256 bytes. */
  longMain?: boolean;
  origin?: number;
  toplevelXid?: number;
  /** Replaces everything after the 24-byte header. */
  body?: Buffer;
  prev?: bigint;
  totLen?: number;
  crc?: number;
  rmidField?: number;
}

export interface PageOverride {
  magic?: number;
  info?: number;
  tli?: number;
  pageaddr?: bigint;
  remLen?: number;
  sysid?: bigint;
  segSize?: number;
  blcksz?: number;
}

export interface WalOptions {
  startLsn?: bigint;
  sysid?: bigint;
  tli?: number;
  /** xl_prev of the first record (default 0). */
  firstPrev?: bigint;
  /** Page header overrides by page LSN. */
  pages?: Map<bigint, PageOverride>;
  /** Zero bytes appended after the last record's page is filled. */
  tailPages?: number;
}

export interface BuiltRecord {
  start: bigint;
  end: bigint;
  /** Offset of the record's first byte in the output. */
  offset: number;
  totLen: number;
}

export interface BuiltWal {
  bytes: Buffer;
  startLsn: bigint;
  records: BuiltRecord[];
}

const RECORD_HEADER = 24;
const BKPBLOCK_HAS_IMAGE = 0x10;
const BKPBLOCK_HAS_DATA = 0x20;
const BKPBLOCK_SAME_REL = 0x80;
const COMPRESSED = 0x04 | 0x08 | 0x10;
const HAS_HOLE = 0x01;

/** Record bytes (header + headers + payload) with a correct CRC unless overridden. */
export function assembleRecord(spec: RecordSpec, prev: bigint): Buffer {
  const body = spec.body ?? assembleBody(spec);
  const rec = Buffer.alloc(RECORD_HEADER + body.length);
  rec.writeUInt32LE(spec.totLen ?? rec.length, 0);
  rec.writeUInt32LE(spec.xid ?? 0, 4);
  rec.writeBigUInt64LE(spec.prev ?? prev, 8);
  rec[16] = spec.info;
  rec[17] = spec.rmidField ?? spec.rmid;
  body.copy(rec, RECORD_HEADER);
  let crc = crc32cUpdate(CRC32C_INIT, rec, RECORD_HEADER, rec.length);
  crc = crc32cFinish(crc32cUpdate(crc, rec, 0, 20));
  rec.writeUInt32LE(spec.crc ?? crc, 20);
  return rec;
}

function assembleBody(spec: RecordSpec): Buffer {
  const headers: Buffer[] = [];
  const payload: Buffer[] = [];
  for (const b of spec.blocks ?? []) {
    const data = b.data ?? Buffer.alloc(0);
    let flags = (b.fork ?? 0) | (b.flags ?? 0);
    if (b.image !== undefined) flags |= BKPBLOCK_HAS_IMAGE;
    if (data.length > 0) flags |= BKPBLOCK_HAS_DATA;
    if (b.rel === undefined) flags |= BKPBLOCK_SAME_REL;
    const h = Buffer.alloc(4);
    h[0] = b.id;
    h[1] = b.forkFlagsField ?? flags;
    h.writeUInt16LE(b.dataLengthField ?? data.length, 2);
    headers.push(h);
    if (b.image !== undefined) {
      const ih = Buffer.alloc(5);
      ih.writeUInt16LE(b.image.stored.length, 0);
      ih.writeUInt16LE(b.image.holeOffset, 2);
      ih[4] = b.image.bimgInfo;
      headers.push(ih);
      if ((b.image.bimgInfo & COMPRESSED) !== 0 && (b.image.bimgInfo & HAS_HOLE) !== 0) {
        const ch = Buffer.alloc(2);
        ch.writeUInt16LE(b.image.holeLength ?? 0, 0);
        headers.push(ch);
      }
      payload.push(b.image.stored);
    }
    if (b.rel !== undefined) {
      const r = Buffer.alloc(12);
      r.writeUInt32LE(b.rel[0], 0);
      r.writeUInt32LE(b.rel[1], 4);
      r.writeUInt32LE(b.rel[2], 8);
      headers.push(r);
    }
    const bn = Buffer.alloc(4);
    bn.writeUInt32LE(b.blkno, 0);
    headers.push(bn);
    payload.push(data);
  }
  if (spec.origin !== undefined) {
    const o = Buffer.alloc(3);
    o[0] = 253;
    o.writeUInt16LE(spec.origin, 1);
    headers.push(o);
  }
  if (spec.toplevelXid !== undefined) {
    const t = Buffer.alloc(5);
    t[0] = 252;
    t.writeUInt32LE(spec.toplevelXid, 1);
    headers.push(t);
  }
  const main = spec.main ?? Buffer.alloc(0);
  if (main.length > 0 || spec.longMain === true) {
    if (main.length < 256 && spec.longMain !== true) {
      headers.push(Buffer.from([255, main.length]));
    } else {
      const m = Buffer.alloc(5);
      m[0] = 254;
      m.writeUInt32LE(main.length, 1);
      headers.push(m);
    }
    payload.push(main);
  }
  return Buffer.concat([...headers, ...payload]);
}

/** Lays records out as WAL from a page boundary (see the file comment). */
export function buildWal(specs: RecordSpec[], opts: WalOptions = {}): BuiltWal {
  const startLsn = opts.startLsn ?? BigInt(SEGMENT);
  if (startLsn % BigInt(PAGE) !== 0n) throw new Error('buildWal starts at a page boundary');
  const out: Buffer[] = [];
  let pos = startLsn;
  let len = 0;
  const emit = (b: Buffer): void => {
    out.push(b);
    len += b.length;
    pos += BigInt(b.length);
  };
  const pageHeader = (remLen: number): void => {
    const atSegment = pos % BigInt(SEGMENT) === 0n;
    const h = Buffer.alloc(atSegment ? 40 : 24);
    const o = opts.pages?.get(pos) ?? {};
    h.writeUInt16LE(o.magic ?? MAGIC, 0);
    h.writeUInt16LE(o.info ?? ((atSegment ? XLP_LONG_HEADER : 0) | (remLen > 0 ? XLP_FIRST_IS_CONTRECORD : 0)), 2);
    h.writeUInt32LE(o.tli ?? opts.tli ?? 1, 4);
    h.writeBigUInt64LE(o.pageaddr ?? pos, 8);
    h.writeUInt32LE(o.remLen ?? remLen, 16);
    if (atSegment) {
      h.writeBigUInt64LE(o.sysid ?? opts.sysid ?? DEFAULT_SYSID, 24);
      h.writeUInt32LE(o.segSize ?? SEGMENT, 32);
      h.writeUInt32LE(o.blcksz ?? PAGE, 36);
    }
    emit(h);
  };
  const records: BuiltRecord[] = [];
  let prev = opts.firstPrev ?? 0n;
  for (const spec of specs) {
    if (pos % BigInt(PAGE) === 0n) pageHeader(0);
    const rec = assembleRecord(spec, prev);
    const start = pos;
    const offset = len;
    let i = 0;
    while (i < rec.length) {
      if (pos % BigInt(PAGE) === 0n) pageHeader(rec.length - i);
      const room = PAGE - Number(pos % BigInt(PAGE));
      const n = Math.min(room, rec.length - i);
      emit(rec.subarray(i, i + n));
      i += n;
    }
    const pad = Number((8n - (pos % 8n)) % 8n);
    if (pad > 0) emit(Buffer.alloc(pad));
    let end = pos;
    if (spec.rmid === 0 && (spec.info & 0xf0) === 0x40) {
      // XLOG_SWITCH: the rest of the segment is unused (zeros here).
      const segEnd = ((pos + BigInt(SEGMENT) - 1n) / BigInt(SEGMENT)) * BigInt(SEGMENT);
      emit(Buffer.alloc(Number(segEnd - pos)));
      end = pos;
    }
    records.push({ start, end, offset, totLen: rec.length });
    prev = start;
  }
  const pageRest = Number((BigInt(PAGE) - (pos % BigInt(PAGE))) % BigInt(PAGE));
  if (pageRest > 0) emit(Buffer.alloc(pageRest));
  if ((opts.tailPages ?? 0) > 0) emit(Buffer.alloc((opts.tailPages ?? 0) * PAGE));
  return { bytes: Buffer.concat(out), startLsn, records };
}

/** A record of `size` bytes in total (≥ 26): Heap2-ish, main data only. */
export function recordOfSize(size: number, seed = 0): RecordSpec {
  const mainLen = size - RECORD_HEADER - (size - RECORD_HEADER - 2 < 256 ? 2 : 5);
  const main = Buffer.alloc(mainLen);
  for (let i = 0; i < mainLen; i++) main[i] = (i * 31 + seed) & 0xff;
  return { rmid: 9, info: 0x10, xid: 1000 + seed, main, longMain: mainLen >= 256 };
}

/** A PostgreSQL-like heap page: header, line pointers from 24 up to `lower`, tuples from `upper`. */
export function fakePage(lower: number, upper: number, seed: number): Buffer {
  const p = Buffer.alloc(PAGE);
  p.writeUInt32LE(0, 0);
  p.writeUInt32LE(0x1000 + seed, 4);
  p.writeUInt16LE(lower, 12);
  p.writeUInt16LE(upper, 14);
  p.writeUInt16LE(PAGE, 16);
  p.writeUInt16LE(0x2004, 18);
  for (let o = 24; o < lower; o++) p[o] = (o * 7 + seed) & 0xff;
  for (let o = upper; o < PAGE; o++) p[o] = ((o >> 3) + seed) & 0xff;
  return p;
}

/** The page minus its hole [holeOffset, holeOffset + holeLength). */
export function withoutHole(page: Buffer, holeOffset: number, holeLength: number): Buffer {
  return Buffer.concat([page.subarray(0, holeOffset), page.subarray(holeOffset + holeLength)]);
}

const PGLZ_MAX_OFFSET = 4095;
const PGLZ_MAX_MATCH = 273;
const PGLZ_MIN_MATCH = 3;

/** A simple greedy pglz compressor (valid PostgreSQL pglz output; not PostgreSQL's exact bytes). */
export function pglzCompress(src: Buffer): Buffer {
  const out: number[] = [];
  let ctrlPos = -1;
  let bit = 8;
  let i = 0;
  const item = (isMatch: boolean): void => {
    if (bit === 8) {
      ctrlPos = out.length;
      out.push(0);
      bit = 0;
    }
    if (isMatch) out[ctrlPos] |= 1 << bit;
    bit++;
  };
  while (i < src.length) {
    let bestLen = 0;
    let bestOff = 0;
    for (let off = 1; off <= Math.min(PGLZ_MAX_OFFSET, i); off++) {
      let l = 0;
      while (l < PGLZ_MAX_MATCH && i + l < src.length && src[i + l] === src[i + l - off]) l++;
      if (l > bestLen) {
        bestLen = l;
        bestOff = off;
        if (l === PGLZ_MAX_MATCH) break;
      }
    }
    if (bestLen >= PGLZ_MIN_MATCH) {
      item(true);
      if (bestLen >= 18) {
        out.push(((bestOff >> 4) & 0xf0) | 0x0f, bestOff & 0xff, bestLen - 18);
      } else {
        out.push(((bestOff >> 4) & 0xf0) | (bestLen - 3), bestOff & 0xff);
      }
      i += bestLen;
    } else {
      item(false);
      out.push(src[i]);
      i++;
    }
  }
  return Buffer.from(out);
}
