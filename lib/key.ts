import { describeValue, StrataError } from './errors';

/** Identifies one 8 KB page of a relation fork, as PostgreSQL's BufferTag does. */
export interface PageKey {
  spcOid: number;    // u32 tablespace
  dbOid: number;     // u32 database
  relNumber: number; // u32 relfilenumber
  forkNum: number;   // u8 fork (0 main, 1 fsm, 2 vm, 3 init)
  blockNum: number;  // u32 block within the fork
}

/** Encoded key: kind u8, spcOid u32, dbOid u32, relNumber u32, forkNum u8, blockNum u32, big-endian. */
export const KEY_SIZE = 18;
/**
 * The leading kind byte (docs/FORMAT.md, "Keys"). Relation pages come first; the other kinds are
 * written by the PostgreSQL subsystem (lib/pg/keyspace.ts) and sort after every page.
 */
export const KEY_KIND_REL_PAGE = 0x00;
/** A relation fork's size (and existence): spc, db, rel, fork, then zeros. */
export const KEY_KIND_REL_SIZE = 0x01;
/** A page of one of PostgreSQL's SLRUs (pg_xact, pg_multixact): slru, segment, page, then zeros. */
export const KEY_KIND_SLRU = 0x02;
/** A chunk of a PostgreSQL file that is not a relation (pg_control, pg_filenode.map, …). */
export const KEY_KIND_AUX = 0x03;
const KEY_KIND_NAMES: Readonly<Record<number, string>> = { [KEY_KIND_REL_SIZE]: 'relsize', [KEY_KIND_SLRU]: 'slru', [KEY_KIND_AUX]: 'aux' };
/** Smallest and (exclusive) largest key of the keyspace, bounds of L0 layers and full image layers. */
export const KEY_MIN: Buffer = Buffer.alloc(KEY_SIZE, 0x00);
export const KEY_MAX: Buffer = Buffer.alloc(KEY_SIZE, 0xff);

const U32_MAX = 0xffff_ffff;
const U8_MAX = 0xff;

/**
 * The exclusive end of a range whose last key is `key`: the smallest key above it (an 18-byte
 * big-endian increment), or KEY_MAX above the last key of the keyspace.
 */
export function exclusiveKeyEnd(key: Buffer): Buffer {
  const next = Buffer.from(key.subarray(0, KEY_SIZE));
  for (let i = KEY_SIZE - 1; i >= 0; i--) {
    if (next[i] !== U8_MAX) {
      next[i]++;
      return next;
    }
    next[i] = 0;
  }
  return Buffer.from(KEY_MAX);
}

export function encodeKey(key: PageKey, into: Buffer = Buffer.allocUnsafe(KEY_SIZE), offset = 0): Buffer {
  checkKey(key);
  return encodeCheckedKey(key, into, offset);
}

/** encodeKey for a key checkKey already accepted (ingest checks each record's key once). */
export function encodeCheckedKey(key: PageKey, into: Buffer, offset: number): Buffer {
  into[offset] = KEY_KIND_REL_PAGE;
  putU32(into, offset + 1, key.spcOid);
  putU32(into, offset + 5, key.dbOid);
  putU32(into, offset + 9, key.relNumber);
  into[offset + 13] = key.forkNum;
  putU32(into, offset + 14, key.blockNum);
  return into;
}

/**
 * Throws BAD_ARGUMENT unless every field of the key is an integer in its range. The common case
 * is five inlined tests (ingest runs it once per record); only a bad key takes the slow path,
 * which names the first bad field.
 */
export function checkKey(key: PageKey): void {
  if (key === null || typeof key !== 'object' || !isU32(key.spcOid) || !isU32(key.dbOid) || !isU32(key.relNumber) ||
      !isU8(key.forkNum) || !isU32(key.blockNum)) {
    checkField(key, 'spcOid', U32_MAX);
    checkField(key, 'dbOid', U32_MAX);
    checkField(key, 'relNumber', U32_MAX);
    checkField(key, 'forkNum', U8_MAX);
    checkField(key, 'blockNum', U32_MAX);
  }
}

/** An integer in [0, 2^32): `>>> 0` maps anything else (fractions, negatives, NaN, ≥ 2^32) elsewhere. */
function isU32(v: unknown): v is number {
  return typeof v === 'number' && v >>> 0 === v;
}

function isU8(v: unknown): v is number {
  return typeof v === 'number' && (v & U8_MAX) === v;
}

/** Big-endian u32 by bytes: Buffer.writeUInt32BE re-checks a range already checked here. */
function putU32(into: Buffer, offset: number, v: number): void {
  into[offset] = v >>> 24;
  into[offset + 1] = v >>> 16;
  into[offset + 2] = v >>> 8;
  into[offset + 3] = v;
}

export function decodeKey(buf: Uint8Array, offset = 0): PageKey {
  const b = Buffer.from(buf.buffer, buf.byteOffset + offset, KEY_SIZE);
  if (b[0] !== KEY_KIND_REL_PAGE) {
    throw new StrataError('BAD_ARGUMENT', `key kind 0x${b[0].toString(16)} is not a relation page key`);
  }
  return {
    spcOid: b.readUInt32BE(1),
    dbOid: b.readUInt32BE(5),
    relNumber: b.readUInt32BE(9),
    forkNum: b[13],
    blockNum: b.readUInt32BE(14),
  };
}

/** 36 upper-case hex digits, the form used in layer file names and the manifest. */
export function keyToHex(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, KEY_SIZE).toString('hex').toUpperCase();
}

export function keyFromHex(hex: string): Buffer {
  if (!/^[0-9A-Fa-f]{36}$/.test(hex)) throw new StrataError('BAD_ARGUMENT', `not a 36-hex-digit key: ${hex}`);
  return Buffer.from(hex, 'hex');
}

/** Human form `spc/db/rel.fork#block`, used in error messages. */
export function formatKey(key: PageKey): string {
  return `${key.spcOid}/${key.dbOid}/${key.relNumber}.${key.forkNum}#${key.blockNum}`;
}

/** A page key as `spc/db/rel.fork#block`; another kind as its name and the hex of the rest. */
export function formatEncodedKey(key: Uint8Array): string {
  if (key[0] === KEY_KIND_REL_PAGE) return formatKey(decodeKey(key));
  const name = KEY_KIND_NAMES[key[0]];
  return name === undefined ? keyToHex(key) : `${name}:${keyToHex(key).slice(2)}`;
}

function checkField(key: PageKey | null | undefined, field: keyof PageKey, max: number): void {
  const v = key?.[field];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) {
    throw new StrataError('BAD_ARGUMENT', `page key field ${field} must be an integer in [0, ${max}]: got ${describeValue(v)}`);
  }
}
