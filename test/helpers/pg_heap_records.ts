/**
 * Stored heap/heap2/sequence/VM records for tests, built field by field from PostgreSQL 15's
 * heapam_xlog.h layouts (see lib/core/ts/pg/heap_redo.ts for what each field means).
 */
import { Bytes, HAS_IMAGE, WILL_INIT, storedRecord, type StoredBlockSpec } from './pg_records';

export const RM_XLOG = 0;
export const RM_HEAP2 = 9;
export const RM_HEAP = 10;
export const RM_BTREE = 11;
export const RM_HASH = 12;
export const RM_SEQ = 15;
export const RM_STRATA = 255;

export const HEAP_INSERT = 0x00;
export const HEAP_DELETE = 0x10;
export const HEAP_UPDATE = 0x20;
export const HEAP_TRUNCATE = 0x30;
export const HEAP_HOT_UPDATE = 0x40;
export const HEAP_CONFIRM = 0x50;
export const HEAP_LOCK = 0x60;
export const HEAP_INPLACE = 0x70;
export const HEAP_INIT_PAGE = 0x80;
export const HEAP2_REWRITE = 0x00;
export const HEAP2_PRUNE = 0x10;
export const HEAP2_VACUUM = 0x20;
export const HEAP2_FREEZE_PAGE = 0x30;
export const HEAP2_VISIBLE = 0x40;
export const HEAP2_MULTI_INSERT = 0x50;
export const HEAP2_LOCK_UPDATED = 0x60;
export const HEAP2_NEW_CID = 0x70;
export const XLOG_FPI_FOR_HINT = 0xa0;
export const XLOG_FPI = 0xb0;
export const VM_CLEAR = 0x00;
export const VM_TRUNCATE = 0x10;

/** Common record context: where and when. */
export interface Ctx {
  lsn: bigint;
  xid?: number;
  blkno?: number;
  clusterFlags?: number;
  rel?: number;
}

/** A logged tuple: xl_heap_header fields plus the bytes after the 23-byte tuple header. */
export interface LoggedTuple {
  infomask2: number;
  infomask: number;
  hoff: number;
  body: Uint8Array;
}

export function tuple(body: Uint8Array | string, natts = 2, infomask = 0x0802): LoggedTuple {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  // hoff 24: the 23-byte header MAXALIGNed, no null bitmap; the body starts with one pad byte.
  return { infomask2: natts, infomask, hoff: 24, body: Uint8Array.from([0, ...b]) };
}

function heapHeader(t: LoggedTuple): Bytes {
  return new Bytes().u16(t.infomask2).u16(t.infomask).u8(t.hoff);
}

function block(ctx: Ctx, id = 0, extra: Partial<StoredBlockSpec> = {}): StoredBlockSpec {
  return { id, blockNumber: ctx.blkno ?? 0, relNumber: ctx.rel ?? 16384, ...extra };
}

export function heapInsert(ctx: Ctx, offnum: number, t: LoggedTuple, opts: { init?: boolean; flags?: number; willInit?: boolean } = {}): Buffer {
  const init = opts.init ?? false;
  return storedRecord({
    clusterFlags: ctx.clusterFlags, targetId: 0, lsn: ctx.lsn, xid: ctx.xid ?? 700, rmid: RM_HEAP,
    info: HEAP_INSERT | (init ? HEAP_INIT_PAGE : 0),
    blocks: [block(ctx, 0, { flags: (opts.willInit ?? init) ? WILL_INIT : 0, data: heapHeader(t).raw(t.body).build() })],
    main: new Bytes().u16(offnum).u8(opts.flags ?? 0).build(),
  });
}

export function heapDelete(ctx: Ctx, offnum: number, xmax: number, infobits = 0, flags = 0): Buffer {
  return storedRecord({
    clusterFlags: ctx.clusterFlags, targetId: 0, lsn: ctx.lsn, xid: ctx.xid ?? xmax, rmid: RM_HEAP, info: HEAP_DELETE,
    blocks: [block(ctx)], main: new Bytes().u32(xmax).u16(offnum).u8(infobits).u8(flags).build(),
  });
}

export interface UpdateSpec {
  hot?: boolean;
  init?: boolean;
  oldOffnum: number;
  newOffnum: number;
  oldXmax: number;
  newXmax?: number;
  oldInfobits?: number;
  flags?: number;
  prefix?: number;
  suffix?: number;
  t: LoggedTuple;
  /** The old page's block number when it differs from the new page's (block 1 then exists). */
  oldBlkno?: number;
  /** Which block this value is stored under: 0 (new page) or 1 (old page). */
  targetId?: number;
}

export function heapUpdate(ctx: Ctx, u: UpdateSpec): Buffer {
  const data = new Bytes();
  const flags = (u.flags ?? 0) | (u.prefix !== undefined ? 0x20 : 0) | (u.suffix !== undefined ? 0x40 : 0);
  if (u.prefix !== undefined) data.u16(u.prefix);
  if (u.suffix !== undefined) data.u16(u.suffix);
  data.raw(heapHeader(u.t).build()).raw(u.t.body);
  const targetId = u.targetId ?? 0;
  const blocks: StoredBlockSpec[] = [block(ctx, 0, {
    flags: u.init ? WILL_INIT : 0, data: targetId === 0 ? data.build() : undefined, hasData: targetId !== 0,
  })];
  if (u.oldBlkno !== undefined) blocks.push(block(ctx, 1, { blockNumber: u.oldBlkno, flags: 0x80 }));
  return storedRecord({
    clusterFlags: ctx.clusterFlags, targetId, lsn: ctx.lsn, xid: ctx.xid ?? u.oldXmax, rmid: RM_HEAP,
    info: (u.hot ? HEAP_HOT_UPDATE : HEAP_UPDATE) | (u.init ? HEAP_INIT_PAGE : 0), blocks,
    main: new Bytes().u32(u.oldXmax).u16(u.oldOffnum).u8(u.oldInfobits ?? 0).u8(flags).u32(u.newXmax ?? 0).u16(u.newOffnum).build(),
  });
}

export function heapLock(ctx: Ctx, offnum: number, xid: number, infobits: number, flags = 0): Buffer {
  return storedRecord({
    clusterFlags: ctx.clusterFlags, targetId: 0, lsn: ctx.lsn, xid: ctx.xid ?? xid, rmid: RM_HEAP, info: HEAP_LOCK,
    blocks: [block(ctx)], main: new Bytes().u32(xid).u16(offnum).u8(infobits).u8(flags).build(),
  });
}

export function heapLockUpdated(ctx: Ctx, offnum: number, xmax: number, infobits: number): Buffer {
  return storedRecord({
    clusterFlags: ctx.clusterFlags, targetId: 0, lsn: ctx.lsn, xid: ctx.xid ?? xmax, rmid: RM_HEAP2, info: HEAP2_LOCK_UPDATED,
    blocks: [block(ctx)], main: new Bytes().u32(xmax).u16(offnum).u8(infobits).u8(0).build(),
  });
}

export function heapConfirm(ctx: Ctx, offnum: number): Buffer {
  return storedRecord({
    clusterFlags: ctx.clusterFlags, targetId: 0, lsn: ctx.lsn, xid: ctx.xid ?? 700, rmid: RM_HEAP, info: HEAP_CONFIRM,
    blocks: [block(ctx)], main: new Bytes().u16(offnum).build(),
  });
}

export function heapInplace(ctx: Ctx, offnum: number, body: Uint8Array): Buffer {
  return storedRecord({
    clusterFlags: ctx.clusterFlags, targetId: 0, lsn: ctx.lsn, xid: ctx.xid ?? 0, rmid: RM_HEAP, info: HEAP_INPLACE,
    blocks: [block(ctx, 0, { data: body })], main: new Bytes().u16(offnum).build(),
  });
}

export function heapPrune(ctx: Ctx, redirected: [number, number][], dead: number[], unused: number[]): Buffer {
  const data = new Bytes();
  for (const [a, b] of redirected) data.u16(a).u16(b);
  for (const d of dead) data.u16(d);
  for (const u of unused) data.u16(u);
  return storedRecord({
    clusterFlags: ctx.clusterFlags, targetId: 0, lsn: ctx.lsn, xid: 0, rmid: RM_HEAP2, info: HEAP2_PRUNE,
    blocks: [block(ctx, 0, { data: data.build() })], main: new Bytes().u32(ctx.xid ?? 0).u16(redirected.length).u16(dead.length).build(),
  });
}

export function heapVacuum(ctx: Ctx, unused: number[]): Buffer {
  const data = new Bytes();
  for (const u of unused) data.u16(u);
  return storedRecord({
    clusterFlags: ctx.clusterFlags, targetId: 0, lsn: ctx.lsn, xid: 0, rmid: RM_HEAP2, info: HEAP2_VACUUM,
    blocks: [block(ctx, 0, { data: data.build() })], main: new Bytes().u16(unused.length).build(),
  });
}

export interface FreezePlan { offset: number; xmax: number; infomask2: number; infomask: number; frzflags: number }

export function heapFreezePage(ctx: Ctx, plans: FreezePlan[]): Buffer {
  const data = new Bytes();
  for (const p of plans) data.u32(p.xmax).u16(p.offset).u16(p.infomask2).u16(p.infomask).u8(p.frzflags).pad(1);
  return storedRecord({
    clusterFlags: ctx.clusterFlags, targetId: 0, lsn: ctx.lsn, xid: 0, rmid: RM_HEAP2, info: HEAP2_FREEZE_PAGE,
    blocks: [block(ctx, 0, { data: data.build() })], main: new Bytes().u32(ctx.xid ?? 0).u16(plans.length).build(),
  });
}

/** VISIBLE stored under the VM page (targetId 0) or the heap page (targetId 1). */
export function heapVisible(ctx: Ctx, targetId: number, heapBlk: number, vmBlk: number, flags: number): Buffer {
  return storedRecord({
    clusterFlags: ctx.clusterFlags, targetId, lsn: ctx.lsn, xid: 0, rmid: RM_HEAP2, info: HEAP2_VISIBLE,
    blocks: [block(ctx, 0, { fork: 2, blockNumber: vmBlk }), block(ctx, 1, { blockNumber: heapBlk, flags: 0x80 })],
    main: new Bytes().u32(ctx.xid ?? 0).u8(flags).build(),
  });
}

/** MULTI_INSERT(+INIT): offsets are logged only without INIT. */
export function heapMultiInsert(ctx: Ctx, tuples: LoggedTuple[], opts: { init?: boolean; offsets?: number[]; flags?: number } = {}): Buffer {
  const data = new Bytes();
  for (const t of tuples) {
    if (data.length % 2 !== 0) data.pad(1);
    data.u16(t.body.length).u16(t.infomask2).u16(t.infomask).u8(t.hoff).raw(t.body);
  }
  const main = new Bytes().u8(opts.flags ?? 0).pad(1).u16(tuples.length);
  if (!opts.init) for (const o of opts.offsets ?? []) main.u16(o);
  return storedRecord({
    clusterFlags: ctx.clusterFlags, targetId: 0, lsn: ctx.lsn, xid: ctx.xid ?? 700, rmid: RM_HEAP2,
    info: HEAP2_MULTI_INSERT | (opts.init ? HEAP_INIT_PAGE : 0),
    blocks: [block(ctx, 0, { flags: opts.init ? WILL_INIT : 0, data: data.build() })], main: main.build(),
  });
}

export function noBlockRecord(ctx: Ctx, rmid: number, info: number, main = new Uint8Array(8)): Buffer {
  return storedRecord({ clusterFlags: ctx.clusterFlags, targetId: 0, lsn: ctx.lsn, xid: 0, rmid, info, blocks: [block(ctx)], main });
}

export function seqLog(ctx: Ctx, item: Uint8Array): Buffer {
  return storedRecord({
    clusterFlags: ctx.clusterFlags, targetId: 0, lsn: ctx.lsn, xid: ctx.xid ?? 0, rmid: RM_SEQ, info: 0,
    blocks: [block(ctx, 0, { flags: WILL_INIT })], main: new Bytes().u32(1663).u32(5).u32(ctx.rel ?? 16384).raw(item).build(),
  });
}

export function vmClear(ctx: Ctx, heapBlk: number, heapBlk2: number, flags: number, fork = 2): Buffer {
  return storedRecord({
    clusterFlags: ctx.clusterFlags, targetId: 0, lsn: ctx.lsn, xid: 0, rmid: RM_STRATA, info: VM_CLEAR,
    blocks: [block(ctx, 0, { fork })], main: new Bytes().u32(heapBlk).u32(heapBlk2).u8(flags).build(),
  });
}

export function vmTruncate(ctx: Ctx, nheap: number): Buffer {
  return storedRecord({
    clusterFlags: ctx.clusterFlags, targetId: 0, lsn: ctx.lsn, xid: 0, rmid: RM_STRATA, info: VM_TRUNCATE,
    blocks: [block(ctx, 0, { fork: 2 })], main: new Bytes().u32(nheap).build(),
  });
}

export function xlogFpi(ctx: Ctx, info: number, image: 'none' | 'noapply' | 'apply'): Buffer {
  const img = image === 'none' ? {} : { flags: HAS_IMAGE, bimgInfo: image === 'apply' ? 0x03 : 0x01 };
  return storedRecord({ clusterFlags: ctx.clusterFlags, targetId: 0, lsn: ctx.lsn, xid: 0, rmid: RM_XLOG, info, blocks: [block(ctx, 0, img)] });
}

// ---- reading tuples back ----

export interface TupleView {
  xmin: number;
  xmax: number;
  cid: number;
  ctidBlock: number;
  ctidOffset: number;
  infomask2: number;
  infomask: number;
  hoff: number;
  len: number;
  bytes: Uint8Array;
}

export function readTuple(page: Uint8Array, offnum: number): TupleView {
  const lp = Buffer.from(page.buffer, page.byteOffset, page.length).readUInt32LE(24 + 4 * (offnum - 1));
  const off = lp & 0x7fff;
  const len = lp >>> 17;
  const b = Buffer.from(page.buffer, page.byteOffset + off, len);
  return {
    xmin: b.readUInt32LE(0), xmax: b.readUInt32LE(4), cid: b.readUInt32LE(8),
    ctidBlock: (b.readUInt16LE(12) << 16) | b.readUInt16LE(14), ctidOffset: b.readUInt16LE(16),
    infomask2: b.readUInt16LE(18), infomask: b.readUInt16LE(20), hoff: b[22], len, bytes: Uint8Array.from(b),
  };
}

export function lpFlags(page: Uint8Array, offnum: number): number {
  return (Buffer.from(page.buffer, page.byteOffset, page.length).readUInt32LE(24 + 4 * (offnum - 1)) >>> 15) & 3;
}

export function pageLsn(page: Uint8Array): bigint {
  const b = Buffer.from(page.buffer, page.byteOffset, page.length);
  return (BigInt(b.readUInt32LE(0)) << 32n) | BigInt(b.readUInt32LE(4));
}

export function pageField16(page: Uint8Array, off: number): number {
  return page[off] | (page[off + 1] << 8);
}
