/**
 * PostgreSQL 15 btree pages, index tuples and stored btree records for tests, written from the
 * layouts in access/itup.h, access/nbtree.h and access/nbtxlog.h (not from the redo code under
 * test): int4-keyed tuples as index_form_tuple makes them, posting lists as _bt_form_posting does,
 * pivots, metapages, and the TS core's redo entry for them.
 */
import { pageAddItem, pageInit, itemIdGetLength, itemIdGetOffset, pageGetMaxOffsetNumber, pageSetLsn } from '../../lib/core/ts/pg/bufpage';
import { redoRecord } from '../../lib/core/ts/pg/rmgr';
import { Bytes, WILL_INIT, storedRecord, type StoredBlockSpec } from './pg_records';

export const RM_BTREE = 11;
export const BLCKSZ = 8192;
const OPAQUE = BLCKSZ - 16;

export interface Tid {
  blk: number;
  off: number;
}

function maxAlign(n: number): number {
  return (n + 7) & ~7;
}

function writeTid(b: Uint8Array, at: number, t: Tid): void {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  v.setUint16(at, t.blk >>> 16, true);
  v.setUint16(at + 2, t.blk & 0xffff, true);
  v.setUint16(at + 4, t.off, true);
}

export function readTid(b: Uint8Array, at: number): Tid {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { blk: ((v.getUint16(at, true) << 16) | v.getUint16(at + 2, true)) >>> 0, off: v.getUint16(at + 4, true) };
}

function setInfo(b: Uint8Array, info: number): void {
  new DataView(b.buffer, b.byteOffset, b.byteLength).setUint16(6, info, true);
}

export function tupleInfo(b: Uint8Array): number {
  return b[6] | (b[7] << 8);
}

/** A non-pivot leaf tuple: int4 key, heap TID; MAXALIGN(8 + 4) = 16 bytes as index_form_tuple sizes it. */
export function leafTuple(key: number, tid: Tid): Uint8Array {
  const t = new Uint8Array(16);
  writeTid(t, 0, tid);
  setInfo(t, 16);
  new DataView(t.buffer).setInt32(8, key, true);
  return t;
}

/** A posting list tuple (key, ≥ 2 ascending TIDs): key part 16 bytes, TIDs after it, MAXALIGNed. */
export function postingTuple(key: number, tids: Tid[]): Uint8Array {
  const size = maxAlign(16 + tids.length * 6);
  const t = new Uint8Array(size);
  new DataView(t.buffer).setInt32(8, key, true);
  setInfo(t, 0x2000 | size);
  writeTid(t, 0, { blk: 16, off: 0x2000 | tids.length });
  tids.forEach((tid, i) => writeTid(t, 16 + i * 6, tid));
  return t;
}

/** A pivot tuple: downlink (or top parent) in t_tid's block, natts in its offset; key omitted when natts is 0. */
export function pivotTuple(key: number | null, downlink: number): Uint8Array {
  const t = new Uint8Array(key === null ? 8 : 16);
  writeTid(t, 0, { blk: downlink, off: key === null ? 0 : 1 });
  setInfo(t, 0x2000 | t.length);
  if (key !== null) new DataView(t.buffer).setInt32(8, key, true);
  return t;
}

export interface BtPageSpec {
  prev?: number;
  next?: number;
  level?: number;
  flags?: number;
  cycleId?: number;
  /** Items in item order (high key first on a non-rightmost page), added in that order. */
  items: Uint8Array[];
  lsn?: bigint;
}

/** A btree page as _bt_pageinit plus PageAddItem in item order leaves it. */
export function btreePage(spec: BtPageSpec): Uint8Array {
  const p = new Uint8Array(BLCKSZ);
  pageInit(p, 16);
  const v = new DataView(p.buffer);
  v.setUint32(OPAQUE, spec.prev ?? 0, true);
  v.setUint32(OPAQUE + 4, spec.next ?? 0, true);
  v.setUint32(OPAQUE + 8, spec.level ?? 0, true);
  v.setUint16(OPAQUE + 12, spec.flags ?? ((spec.level ?? 0) === 0 ? 1 : 0), true);
  v.setUint16(OPAQUE + 14, spec.cycleId ?? 0, true);
  spec.items.forEach((it, i) => {
    if (pageAddItem(p, it, 0, it.length, i + 1, false, false) !== i + 1) throw new Error(`item ${i + 1} does not fit`);
  });
  const lsn = spec.lsn ?? 0x1000n;
  pageSetLsn(p, Number(lsn >> 32n), Number(lsn & 0xffffffffn));
  return p;
}

export interface Opaque {
  prev: number;
  next: number;
  level: number;
  flags: number;
  cycleId: number;
}

export function opaque(p: Uint8Array): Opaque {
  const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
  return {
    prev: v.getUint32(OPAQUE, true), next: v.getUint32(OPAQUE + 4, true), level: v.getUint32(OPAQUE + 8, true),
    flags: v.getUint16(OPAQUE + 12, true), cycleId: v.getUint16(OPAQUE + 14, true),
  };
}

/** The items' bytes in item order (ItemIdGetLength bytes each). */
export function pageItems(p: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 1; i <= pageGetMaxOffsetNumber(p); i++) {
    const off = itemIdGetOffset(p, i);
    out.push(p.slice(off, off + itemIdGetLength(p, i)));
  }
  return out;
}

export function pageLsn(p: Uint8Array): bigint {
  const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
  return (BigInt(v.getUint32(0, true)) << 32n) | BigInt(v.getUint32(4, true));
}

export interface MetaSpec {
  version?: number;
  root: number;
  level: number;
  fastroot?: number;
  fastlevel?: number;
  delpages?: number;
  allequalimage?: boolean;
}

/** xl_btree_metadata (28 bytes). */
export function xlMetadata(m: MetaSpec): Uint8Array {
  return new Bytes().u32(m.version ?? 4).u32(m.root).u32(m.level).u32(m.fastroot ?? m.root).u32(m.fastlevel ?? m.level)
    .u32(m.delpages ?? 0).u8(m.allequalimage === false ? 0 : 1).pad(3).build();
}

/** A metapage as _bt_initmetapage / _bt_restore_meta write it. */
export function metaPage(m: MetaSpec, lsn: bigint): Uint8Array {
  const p = new Uint8Array(BLCKSZ);
  pageInit(p, 16);
  const v = new DataView(p.buffer);
  v.setUint32(24, 0x053162, true);
  v.setUint32(28, m.version ?? 4, true);
  v.setUint32(32, m.root, true);
  v.setUint32(36, m.level, true);
  v.setUint32(40, m.fastroot ?? m.root, true);
  v.setUint32(44, m.fastlevel ?? m.level, true);
  v.setUint32(48, m.delpages ?? 0, true);
  v.setFloat64(56, -1, true);
  p[64] = m.allequalimage === false ? 0 : 1;
  v.setUint16(OPAQUE + 12, 8, true);
  v.setUint16(12, 72, true);
  pageSetLsn(p, Number(lsn >> 32n), Number(lsn & 0xffffffffn));
  return p;
}

export interface BtRecordSpec {
  info: number;
  targetId: number;
  lsn?: bigint;
  blocks: StoredBlockSpec[];
  main: Uint8Array;
}

export const LSN = 0x2_0000_4000n;

/** A stored btree record under one of its blocks. */
export function btRecord(spec: BtRecordSpec): Buffer {
  return storedRecord({ targetId: spec.targetId, lsn: spec.lsn ?? LSN, rmid: RM_BTREE, info: spec.info, blocks: spec.blocks, main: spec.main });
}

export { Bytes, WILL_INIT };

/** The TS core's redo of a stored record (rmgr.ts's dispatch, which sends rmgr 11 to btreeRedo). */
export function tsRedo(rec: Uint8Array, page: Uint8Array): void {
  redoRecord(rec, 0, rec.length, page, 0);
}
