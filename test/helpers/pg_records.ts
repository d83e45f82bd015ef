/**
 * Builds stored PostgreSQL records (record tag 4, docs/POSTGRES.md "Stored record") for tests:
 * the same layout lib/pg's encoder writes from decoded WAL, from a plain description.
 */

export interface StoredBlockSpec {
  id: number;
  fork?: number;
  /** fork_flags & 0xF0 besides HAS_DATA, which is set for the target when it has data. */
  flags?: number;
  bimgInfo?: number;
  spcOid?: number;
  dbOid?: number;
  relNumber?: number;
  blockNumber: number;
  /** The target's data; other blocks' data is never stored. */
  data?: Uint8Array;
  /** Mark HAS_DATA on a non-target block (its data length is still stored as 0). */
  hasData?: boolean;
}

export interface StoredRecordSpec {
  clusterFlags?: number;
  targetId: number;
  lsn: bigint;
  xid?: number;
  rmid: number;
  info: number;
  blocks: StoredBlockSpec[];
  main?: Uint8Array;
}

export const HAS_DATA = 0x20;
export const WILL_INIT = 0x40;
export const HAS_IMAGE = 0x10;

export function storedRecord(spec: StoredRecordSpec): Buffer {
  const main = spec.main ?? new Uint8Array(0);
  const target = spec.blocks.find((b) => b.id === spec.targetId);
  const data = target?.data ?? new Uint8Array(0);
  const out = Buffer.alloc(24 + spec.blocks.length * 24 + data.length + main.length);
  out[0] = 4;
  out[1] = spec.clusterFlags ?? 0;
  out[2] = spec.targetId;
  out.writeBigUInt64LE(spec.lsn, 4);
  out.writeUInt32LE(spec.xid ?? 0, 12);
  out[16] = spec.rmid;
  out[17] = spec.info;
  out[18] = spec.blocks.length;
  out.writeUInt32LE(main.length, 20);
  spec.blocks.forEach((b, i) => {
    const o = 24 + i * 24;
    const isTarget = b.id === spec.targetId;
    out[o] = b.id;
    out[o + 1] = b.fork ?? 0;
    out[o + 2] = (b.flags ?? 0) | ((isTarget && data.length > 0) || (!isTarget && b.hasData) ? HAS_DATA : 0);
    out[o + 3] = b.bimgInfo ?? 0;
    out.writeUInt32LE(b.spcOid ?? 1663, o + 4);
    out.writeUInt32LE(b.dbOid ?? 5, o + 8);
    out.writeUInt32LE(b.relNumber ?? 16384, o + 12);
    out.writeUInt32LE(b.blockNumber, o + 16);
    out.writeUInt16LE(isTarget ? data.length : 0, o + 20);
  });
  let p = 24 + spec.blocks.length * 24;
  out.set(data, p);
  p += data.length;
  out.set(main, p);
  return out;
}

/** Little-endian field writer for main data and block data. */
export class Bytes {
  private parts: number[] = [];

  u8(v: number): this { this.parts.push(v & 0xff); return this; }
  u16(v: number): this { return this.u8(v).u8(v >>> 8); }
  u32(v: number): this { return this.u16(v & 0xffff).u16(v >>> 16); }
  raw(b: Uint8Array): this { for (const x of b) this.parts.push(x); return this; }
  pad(n: number): this { for (let i = 0; i < n; i++) this.parts.push(0); return this; }
  get length(): number { return this.parts.length; }
  build(): Uint8Array { return Uint8Array.from(this.parts); }
}
