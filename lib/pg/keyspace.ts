/**
 * The keys the PostgreSQL subsystem adds beside relation pages (docs/FORMAT.md, "Keys"), and the
 * value payloads stored under them. Every key is 18 bytes, big-endian, and sorts after every page:
 *
 *   relation size   0x01 | spcOid u32 | dbOid u32 | relNumber u32 | forkNum u8 | 0 u32
 *                   value: u8 state (1 exists, 0 dropped) | u32 LE nblocks
 *   SLRU page       0x02 | slru u8 (0 pg_xact, 1 multixact offsets, 2 multixact members)
 *                        | segment u32 | page-in-segment u32 | 0 … — an 8192-byte page
 *   aux file chunk  0x03 | file kind u8 | spcOid u32 | dbOid u32 | id u32 | chunk u32
 *                   value: u32 LE length (chunk 0: the whole file's, 0xFFFFFFFF once deleted)
 *                          | up to 8188 bytes
 *
 * A relation fork exists at an LSN when its size key holds state 1 there; its size is what
 * PostgreSQL's smgrnblocks would say. Dropping writes state 0, so a dropped relation stays
 * dropped at every later LSN while its history stays readable below the drop.
 */
import { describeValue, StrataError } from '../errors';
import { KEY_KIND_AUX, KEY_KIND_REL_SIZE, KEY_KIND_SLRU, KEY_SIZE, type PageKey } from '../key';

/** A relation fork, PostgreSQL's (RelFileNode, ForkNumber). */
export interface RelTag {
  spcOid: number;
  dbOid: number;
  relNumber: number;
  forkNum: number;
}

export const MAIN_FORKNUM = 0;
export const FSM_FORKNUM = 1;
export const VISIBILITYMAP_FORKNUM = 2;
export const INIT_FORKNUM = 3;
/** Forks Strata stores. The FSM is never WAL-logged (PostgreSQL rebuilds it), so it is not kept. */
export const STORED_FORKS: readonly number[] = [MAIN_FORKNUM, VISIBILITYMAP_FORKNUM, INIT_FORKNUM];

export const GLOBALTABLESPACE_OID = 1664;
export const DEFAULTTABLESPACE_OID = 1663;

const REL_SIZE_EXISTS = 1;
const REL_SIZE_DROPPED = 0;
const REL_SIZE_PAYLOAD = 5;

export function relSizeKey(rel: RelTag): Buffer {
  const k = Buffer.alloc(KEY_SIZE);
  k[0] = KEY_KIND_REL_SIZE;
  k.writeUInt32BE(rel.spcOid, 1);
  k.writeUInt32BE(rel.dbOid, 5);
  k.writeUInt32BE(rel.relNumber, 9);
  k[13] = rel.forkNum;
  return k;
}

export function decodeRelSizeKey(key: Uint8Array): RelTag {
  const b = Buffer.from(key.buffer, key.byteOffset, KEY_SIZE);
  if (b[0] !== KEY_KIND_REL_SIZE) throw new StrataError('BAD_ARGUMENT', `key kind 0x${b[0].toString(16)} is not a relation size key`);
  return { spcOid: b.readUInt32BE(1), dbOid: b.readUInt32BE(5), relNumber: b.readUInt32BE(9), forkNum: b[13] };
}

/** [start, end) of the size keys of every relation, or of one database's (any tablespace). */
export function relSizeKeyRange(): { start: Buffer; end: Buffer } {
  const start = Buffer.alloc(KEY_SIZE);
  start[0] = KEY_KIND_REL_SIZE;
  const end = Buffer.alloc(KEY_SIZE);
  end[0] = KEY_KIND_REL_SIZE + 1;
  return { start, end };
}

/** [start, end) of one tablespace + database's size keys. */
export function relSizeKeyRangeOf(spcOid: number, dbOid: number): { start: Buffer; end: Buffer } {
  const start = relSizeKey({ spcOid, dbOid, relNumber: 0, forkNum: 0 });
  const end = Buffer.from(start);
  // The next (spc, db) pair: db + 1, carrying into spc.
  const next = BigInt(spcOid) * 2n ** 32n + BigInt(dbOid) + 1n;
  end.writeUInt32BE(Number(next >> 32n) & 0xffff_ffff, 1);
  end.writeUInt32BE(Number(next & 0xffff_ffffn), 5);
  if (next >= 2n ** 64n) end[0] = KEY_KIND_REL_SIZE + 1;
  return { start, end };
}

/** The value of a size key: the fork exists with `nblocks` blocks, or (null) it was dropped. */
export function encodeRelSize(nblocks: number | null): Buffer {
  const v = Buffer.alloc(REL_SIZE_PAYLOAD);
  v[0] = nblocks === null ? REL_SIZE_DROPPED : REL_SIZE_EXISTS;
  v.writeUInt32LE(nblocks ?? 0, 1);
  return v;
}

/** A size key's page as read back: the size, or null when the fork was dropped. */
export function decodeRelSize(page: Uint8Array): number | null {
  if (page[0] === REL_SIZE_DROPPED) return null;
  if (page[0] !== REL_SIZE_EXISTS) throw new StrataError('CORRUPT_LAYER', `relation size value with state ${page[0]}`);
  return Buffer.from(page.buffer, page.byteOffset, page.length).readUInt32LE(1);
}

export function pageKeyOf(rel: RelTag, blockNum: number): PageKey {
  return { spcOid: rel.spcOid, dbOid: rel.dbOid, relNumber: rel.relNumber, forkNum: rel.forkNum, blockNum };
}

export function relId(rel: RelTag): string {
  return `${rel.spcOid}/${rel.dbOid}/${rel.relNumber}.${rel.forkNum}`;
}

// ---- SLRU pages --------------------------------------------------------------------------------

/** The SLRU byte of the key; SLRU_PAGES_PER_SEGMENT of PostgreSQL 15 (shared with the cores). */
export { SLRU_MULTIXACT_MEMBERS, SLRU_MULTIXACT_OFFSETS, SLRU_PAGES_PER_SEGMENT, SLRU_XACT } from '../core/pg_wal_format';

export function slruKey(slru: number, segment: number, page: number): Buffer {
  const k = Buffer.alloc(KEY_SIZE);
  k[0] = KEY_KIND_SLRU;
  k[1] = slru;
  k.writeUInt32BE(segment, 2);
  k.writeUInt32BE(page, 6);
  return k;
}

// ---- aux files ---------------------------------------------------------------------------------

/** Files that are not relations, as the aux key's kind byte. */
export const AUX_PG_CONTROL = 1;
export const AUX_RELMAP = 2;
export const AUX_TWOPHASE = 3;
/** Strata's own record of the cluster settings that change how pages are written (see cluster_state.ts). */
export const AUX_CLUSTER_STATE = 4;
/** The latest checkpoint record (control_state.ts). */
export const AUX_CHECKPOINT = 5;
/** The counters and horizons pg_control needs at an LSN (control_state.ts). */
export const AUX_CONTROL_STATE = 6;
/**
 * A configuration file of the data directory as imported (id: its index in PG_CONFIG_FILES); the
 * export writes them back. Timelines imported before this kind existed have none.
 */
export const AUX_CONFIG_FILE = 7;
/** The configuration files the import keeps, by aux id (never reorder: the id is stored). */
export const PG_CONFIG_FILES: readonly string[] = ['postgresql.conf', 'postgresql.auto.conf', 'pg_hba.conf', 'pg_ident.conf'];
/** The largest commit timestamp so far and the latest commit record's end LSN (lsn_time.ts). */
export const AUX_LAST_COMMIT = 8;

/**
 * Chunk 0's length field of a file that no longer exists (a committed or aborted prepared
 * transaction's state file, a dropped database's pg_filenode.map). Its other chunks are left as they
 * were: chunk 0's length says how many chunks a file has.
 */
export const AUX_DELETED = 0xffff_ffff;

/** Bytes of file per aux chunk (a value record holds 8192: a 4-byte length, then the bytes). */
export const AUX_CHUNK_BYTES = 8188;

export function auxKey(kind: number, spcOid: number, dbOid: number, id: number, chunk: number): Buffer {
  const k = Buffer.alloc(KEY_SIZE);
  k[0] = KEY_KIND_AUX;
  k[1] = kind;
  k.writeUInt32BE(spcOid, 2);
  k.writeUInt32BE(dbOid, 6);
  k.writeUInt32BE(id, 10);
  k.writeUInt32BE(chunk, 14);
  return k;
}

/** [start, end) of every aux key of one file kind. */
export function auxKindRange(kind: number): { start: Buffer; end: Buffer } {
  const start = Buffer.alloc(KEY_SIZE);
  start[0] = KEY_KIND_AUX;
  start[1] = kind;
  const end = Buffer.alloc(KEY_SIZE);
  end[0] = KEY_KIND_AUX;
  end[1] = kind + 1;
  return { start, end };
}

/** An aux key's file and chunk. */
export function decodeAuxKey(key: Uint8Array): { kind: number; spcOid: number; dbOid: number; id: number; chunk: number } {
  const b = Buffer.from(key.buffer, key.byteOffset, KEY_SIZE);
  if (b[0] !== KEY_KIND_AUX) throw new StrataError('BAD_ARGUMENT', `key kind 0x${b[0].toString(16)} is not an aux key`);
  return { kind: b[1], spcOid: b.readUInt32BE(2), dbOid: b.readUInt32BE(6), id: b.readUInt32BE(10), chunk: b.readUInt32BE(14) };
}

/** [start, end) of the keys of one SLRU. */
export function slruKeyRange(slru: number): { start: Buffer; end: Buffer } {
  const start = Buffer.alloc(KEY_SIZE);
  start[0] = KEY_KIND_SLRU;
  start[1] = slru;
  const end = Buffer.alloc(KEY_SIZE);
  end[0] = KEY_KIND_SLRU;
  end[1] = slru + 1;
  return { start, end };
}

/** An SLRU key's segment and page in the segment. */
export function decodeSlruKey(key: Uint8Array): { slru: number; segment: number; page: number } {
  const b = Buffer.from(key.buffer, key.byteOffset, KEY_SIZE);
  if (b[0] !== KEY_KIND_SLRU) throw new StrataError('BAD_ARGUMENT', `key kind 0x${b[0].toString(16)} is not an SLRU key`);
  return { slru: b[1], segment: b.readUInt32BE(2), page: b.readUInt32BE(6) };
}

/** The value that marks an aux file deleted (chunk 0, length AUX_DELETED). */
export function auxDeletion(kind: number, spcOid: number, dbOid: number, id: number): { key: Buffer; payload: Buffer } {
  const payload = Buffer.alloc(4);
  payload.writeUInt32LE(AUX_DELETED, 0);
  return { key: auxKey(kind, spcOid, dbOid, id, 0), payload };
}

/** The values (keys and payloads) that store `file` as aux chunks. */
export function auxChunks(kind: number, spcOid: number, dbOid: number, id: number, file: Uint8Array): Array<{ key: Buffer; payload: Buffer }> {
  const out: Array<{ key: Buffer; payload: Buffer }> = [];
  for (let chunk = 0, off = 0; chunk === 0 || off < file.length; chunk++, off += AUX_CHUNK_BYTES) {
    const part = file.subarray(off, off + AUX_CHUNK_BYTES);
    const payload = Buffer.alloc(4 + part.length);
    payload.writeUInt32LE(chunk === 0 ? file.length : part.length, 0);
    payload.set(part, 4);
    out.push({ key: auxKey(kind, spcOid, dbOid, id, chunk), payload });
  }
  return out;
}

/** A relation tag from a caller: { spcOid, dbOid, relNumber } u32s and forkNum 0..3 (BAD_ARGUMENT naming the field). */
export function checkRelTag(rel: unknown): asserts rel is RelTag {
  if (rel === null || typeof rel !== 'object') throw new StrataError('BAD_ARGUMENT', `a relation is { spcOid, dbOid, relNumber, forkNum }: got ${describeValue(rel)}`);
  const r = rel as Record<string, unknown>;
  checkU32(r.spcOid, 'spcOid');
  checkU32(r.dbOid, 'dbOid');
  checkU32(r.relNumber, 'relNumber');
  const f = r.forkNum;
  if (typeof f !== 'number' || !Number.isInteger(f) || f < MAIN_FORKNUM || f > INIT_FORKNUM) throw new StrataError('BAD_ARGUMENT', `forkNum must be 0..3: got ${describeValue(f)}`);
}

export function checkU32(v: unknown, what: string): asserts v is number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw new StrataError('BAD_ARGUMENT', `${what} must be an integer in [0, 2^32): got ${describeValue(v)}`);
}
