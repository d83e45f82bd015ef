/**
 * Btree redo (native/pg/nbtree_redo.cc, lib/core/ts/pg/nbtree_redo.ts), record type by record type
 * on hand-built pages with PostgreSQL 15's layouts (test/helpers/pg_btree.ts). Every case runs in
 * both cores and they must agree byte for byte (or on the error); the expected pages are built
 * independently of the redo code: fresh pages with the expected items, hand-made posting lists.
 */
import { describe, expect, it } from 'vitest';
import { pageGetLower, pageGetSpecial, pageGetUpper } from '../../lib/core/ts/pg/bufpage';
import { isStrataError } from '../../lib/errors';
import {
  BLCKSZ, Bytes, LSN, WILL_INIT, btRecord, btreePage, leafTuple, metaPage, opaque, pageItems, pageLsn, pivotTuple,
  postingTuple, tsRedo, xlMetadata, type Tid,
} from '../helpers/pg_btree';
import { nativePg } from '../helpers/pg_native';

const NATIVE = nativePg();

const INSERT_LEAF = 0x00;
const INSERT_UPPER = 0x10;
const INSERT_META = 0x20;
const SPLIT_L = 0x30;
const SPLIT_R = 0x40;
const INSERT_POST = 0x50;
const DEDUP = 0x60;
const DELETE = 0x70;
const UNLINK_PAGE = 0x80;
const UNLINK_PAGE_META = 0x90;
const NEWROOT = 0xa0;
const MARK_PAGE_HALFDEAD = 0xb0;
const VACUUM = 0xc0;
const REUSE_PAGE = 0xd0;
const META_CLEANUP = 0xe0;

const LEAF = 1;
const ROOT = 2;
const DELETED = 4;
const META = 8;
const HALF_DEAD = 16;
const SPLIT_END = 32;
const HAS_GARBAGE = 64;
const INCOMPLETE_SPLIT = 128;
const HAS_FULLXID = 256;

const t = (blk: number, off: number): Tid => ({ blk, off });
const zero = (): Uint8Array => new Uint8Array(BLCKSZ);

/**
 * Redoes `rec` on a copy of `page` in both cores; they must agree on the bytes or on the error.
 * Returns the page, or throws the (TS) error.
 */
function redo(rec: Uint8Array, page: Uint8Array): Uint8Array {
  const ts = page.slice();
  let tsErr: unknown = null;
  try {
    tsRedo(rec, ts);
  } catch (e) {
    tsErr = e;
  }
  if (NATIVE !== null) {
    const nat = page.slice();
    let natErr: unknown = null;
    try {
      NATIVE.pgRedoRecord(rec, nat);
    } catch (e) {
      natErr = e;
    }
    if (tsErr === null) {
      expect(natErr).toBeNull();
      expect(Buffer.from(nat).equals(Buffer.from(ts))).toBe(true);
    } else {
      expect(isStrataError(natErr) && isStrataError(tsErr)).toBe(true);
      expect((natErr as Error).message).toBe((tsErr as Error).message);
    }
  }
  if (tsErr !== null) throw tsErr;
  return ts;
}

function redoFails(rec: Uint8Array, page: Uint8Array, text: string | RegExp): void {
  let err: unknown = null;
  try {
    redo(rec, page);
  } catch (e) {
    err = e;
  }
  expect(isStrataError(err, 'REDO_FAILED')).toBe(true);
  expect((err as Error).message).toMatch(text);
}

/** The page `expected` with pd_lsn set to the record's LSN, compared whole. */
function expectPage(actual: Uint8Array, expected: Uint8Array, lsn = LSN): void {
  const e = expected.slice();
  new DataView(e.buffer).setUint32(0, Number(lsn >> 32n), true);
  new DataView(e.buffer).setUint32(4, Number(lsn & 0xffffffffn), true);
  expect(Buffer.from(actual).equals(Buffer.from(e))).toBe(true);
}

/** What a page's [pd_upper, pd_special) holds: the tuples a split or newroot logs for _bt_restore_page. */
function upperPart(p: Uint8Array): Uint8Array {
  return p.slice(pageGetUpper(p), pageGetSpecial(p));
}

const u16 = (v: number): Uint8Array => new Bytes().u16(v).build();
const cat = (...parts: Uint8Array[]): Uint8Array => Uint8Array.from(parts.flatMap((p) => [...p]));

describe('btree redo: inserts', () => {
  const page = btreePage({ next: 9, items: [pivotTuple(100, 0), leafTuple(10, t(1, 1)), leafTuple(30, t(1, 3))] });
  const insertLeaf = (offnum: number, item: Uint8Array, lsn = LSN): Buffer => btRecord({
    info: INSERT_LEAF, targetId: 0, lsn, blocks: [{ id: 0, blockNumber: 4, data: item }], main: u16(offnum),
  });

  it('INSERT_LEAF puts the tuple at its offset and stamps the LSN', () => {
    const out = redo(insertLeaf(3, leafTuple(20, t(1, 2))), page);
    expect(pageItems(out)).toEqual([pivotTuple(100, 0), leafTuple(10, t(1, 1)), leafTuple(20, t(1, 2)), leafTuple(30, t(1, 3))]);
    expect(pageLsn(out)).toBe(LSN);
    expect(pageGetLower(out)).toBe(24 + 4 * 4);
    expect(opaque(out)).toEqual(opaque(page));
  });

  it('INSERT_LEAF leaves a page that already has the record (pd_lsn at or past it) alone', () => {
    const done = btreePage({ next: 9, items: [pivotTuple(100, 0)], lsn: LSN });
    expect(Buffer.from(redo(insertLeaf(2, leafTuple(20, t(1, 2))), done)).equals(Buffer.from(done))).toBe(true);
  });

  it('INSERT_LEAF fails on an offset past the end, a tuple whose header lies, a new page, WILL_INIT', () => {
    redoFails(insertLeaf(7, leafTuple(20, t(1, 2))), page, /Btree\/INSERT_LEAF at 2\/4000, block id 0 \(block 4\): failed to add new item/);
    const liar = leafTuple(20, t(1, 2));
    liar[6] = 24;
    redoFails(insertLeaf(2, liar), page, /does not match its header/);
    redoFails(insertLeaf(2, leafTuple(20, t(1, 2))), zero(), /page is new/);
    const willInit = btRecord({ info: INSERT_LEAF, targetId: 0, blocks: [{ id: 0, blockNumber: 4, flags: WILL_INIT, data: leafTuple(1, t(1, 1)) }], main: u16(2) });
    redoFails(willInit, page, /WILL_INIT/);
    const noMain = btRecord({ info: INSERT_LEAF, targetId: 0, blocks: [{ id: 0, blockNumber: 4, data: leafTuple(1, t(1, 1)) }], main: new Uint8Array(0) });
    redoFails(noMain, page, /main data shorter than xl_btree_insert/);
  });

  it('INSERT_UPPER inserts the downlink (block 0) and clears the child\'s incomplete split (block 1)', () => {
    const parent = btreePage({ level: 1, items: [pivotTuple(null, 3), pivotTuple(50, 5)] });
    const child = btreePage({ next: 7, flags: LEAF | INCOMPLETE_SPLIT, items: [pivotTuple(70, 0)], cycleId: 9 });
    const blocks = (target: number): Buffer => btRecord({
      info: INSERT_UPPER, targetId: target,
      blocks: [{ id: 0, blockNumber: 2, data: target === 0 ? pivotTuple(70, 7) : undefined }, { id: 1, blockNumber: 5 }],
      main: u16(3),
    });
    expect(pageItems(redo(blocks(0), parent))).toEqual([pivotTuple(null, 3), pivotTuple(50, 5), pivotTuple(70, 7)]);
    const c = redo(blocks(1), child);
    expect(opaque(c)).toEqual({ ...opaque(child), flags: LEAF });
    expectPage(c, btreePage({ next: 7, flags: LEAF, items: [pivotTuple(70, 0)], cycleId: 9 }));
    redoFails(blocks(1), btreePage({ next: 7, items: [pivotTuple(70, 0)] }), /no incomplete split to clear/);
    const leafRecord = btRecord({ info: INSERT_LEAF, targetId: 1, blocks: [{ id: 0, blockNumber: 2 }, { id: 1, blockNumber: 5 }], main: u16(2) });
    redoFails(leafRecord, child, /btree_xlog_insert changes no page registered as block id 1/);
  });

  it('INSERT_META rewrites the metapage (block 2) from xl_btree_metadata, whatever it held', () => {
    const meta = { root: 3, level: 1, fastroot: 3, fastlevel: 1, delpages: 7, allequalimage: true };
    const rec = (data: Uint8Array, blockNumber = 0): Buffer => btRecord({
      info: INSERT_META, targetId: 2,
      blocks: [{ id: 0, blockNumber: 3 }, { id: 1, blockNumber: 1 }, { id: 2, blockNumber, flags: WILL_INIT, data }],
      main: u16(2),
    });
    const garbage = new Uint8Array(BLCKSZ).fill(0xa5);
    expectPage(redo(rec(xlMetadata(meta)), garbage), metaPage(meta, LSN));
    redoFails(rec(xlMetadata({ ...meta, version: 2 })), garbage, /metapage version 2/);
    redoFails(rec(xlMetadata(meta).subarray(0, 25)), garbage, /xl_btree_metadata of 25 bytes/);
    redoFails(rec(xlMetadata(meta), 6), garbage, /metapage record on block 6/);
  });

  it('INSERT_POST splits the posting list before the new item (_bt_swap_posting) and inserts the final item', () => {
    const before = btreePage({ items: [leafTuple(1, t(1, 1)), postingTuple(5, [t(2, 1), t(2, 3), t(2, 5)]), leafTuple(9, t(3, 1))] });
    const rec = (postingoff: number, offnum = 3): Buffer => btRecord({
      info: INSERT_POST, targetId: 0, blocks: [{ id: 0, blockNumber: 1, data: cat(u16(postingoff), leafTuple(5, t(2, 2))) }], main: u16(offnum),
    });
    const out = redo(rec(1), before);
    expect(pageItems(out)).toEqual([leafTuple(1, t(1, 1)), postingTuple(5, [t(2, 1), t(2, 2), t(2, 3)]), leafTuple(5, t(2, 5)), leafTuple(9, t(3, 1))]);
    redoFails(rec(3), before, /posting list tuple with 3 items cannot be split at offset 3/);
    redoFails(rec(1, 2), before, /the posting list being split is not a posting list tuple/);
    redoFails(rec(1, 9), before, /item offset 8 is not on the page/);
  });
});

describe('btree redo: page splits', () => {
  // Block 5 (not rightmost: high key 100, right sibling 6) splits into 5 and the new block 8.
  const orig = btreePage({
    prev: 4, next: 6, flags: LEAF | SPLIT_END | HAS_GARBAGE, cycleId: 12,
    items: [pivotTuple(100, 0), leafTuple(10, t(1, 1)), postingTuple(20, [t(2, 1), t(2, 3), t(2, 5)]), leafTuple(30, t(1, 3)), leafTuple(40, t(1, 4))],
  });
  const splitMain = (level: number, firstrightoff: number, newitemoff: number, postingoff: number): Uint8Array =>
    new Bytes().u32(level).u16(firstrightoff).u16(newitemoff).u16(postingoff).build();
  const blocks = (target: number, data: Uint8Array, withSibling = true, child = false): Parameters<typeof btRecord>[0]['blocks'] => [
    { id: 0, blockNumber: 5, data: target === 0 ? data : undefined },
    { id: 1, blockNumber: 8, flags: WILL_INIT, data: target === 1 ? data : undefined },
    ...(withSibling ? [{ id: 2, blockNumber: 6 }] : []),
    ...(child ? [{ id: 3, blockNumber: 11 }] : []),
  ];

  it('SPLIT_L rebuilds the left page in item order with the new item, and the right page from the logged tuples', () => {
    const newitem = leafTuple(35, t(1, 9));
    const leftHikey = pivotTuple(40, 0);
    // Items 2..4 stay left (firstrightoff 5); the new item goes in before item 4... at offset 5? No: at 4.
    const main = splitMain(0, 5, 4, 0);
    const left = redo(btRecord({ info: SPLIT_L, targetId: 0, blocks: blocks(0, cat(newitem, leftHikey)), main }), orig);
    expectPage(left, btreePage({
      prev: 4, next: 8, flags: LEAF | INCOMPLETE_SPLIT,
      items: [leftHikey, leafTuple(10, t(1, 1)), postingTuple(20, [t(2, 1), t(2, 3), t(2, 5)]), newitem, leafTuple(30, t(1, 3))],
    }));
    const rightItems = [pivotTuple(100, 0), leafTuple(40, t(1, 4))];
    const right = redo(btRecord({ info: SPLIT_L, targetId: 1, blocks: blocks(1, upperPart(btreePage({ items: rightItems }))), main }), zero());
    expectPage(right, btreePage({ prev: 5, next: 6, flags: LEAF, items: rightItems }));
    // Block 2: the old right sibling now points back at the new page.
    const sib = btreePage({ prev: 5, next: 0, items: [leafTuple(200, t(9, 9))] });
    expectPage(redo(btRecord({ info: SPLIT_L, targetId: 2, blocks: blocks(2, new Uint8Array(0)), main }), sib),
      btreePage({ prev: 8, next: 0, items: [leafTuple(200, t(9, 9))] }));
    // No sibling: the right page is rightmost.
    const rightmost = redo(btRecord({ info: SPLIT_L, targetId: 1, blocks: blocks(1, upperPart(btreePage({ items: rightItems })), false), main }), zero());
    expect(opaque(rightmost).next).toBe(0);
  });

  it('SPLIT_L puts the new item last when its offset is firstrightoff', () => {
    const newitem = leafTuple(45, t(1, 9));
    const main = splitMain(0, 6, 6, 0);
    const left = redo(btRecord({ info: SPLIT_L, targetId: 0, blocks: blocks(0, cat(newitem, pivotTuple(50, 0))), main }), orig);
    expect(pageItems(left).slice(-2)).toEqual([leafTuple(40, t(1, 4)), newitem]);
  });

  it('SPLIT_L and SPLIT_R with a posting list split rebuild the split posting list on the left', () => {
    const orignewitem = leafTuple(20, t(2, 2));
    const nposting = postingTuple(20, [t(2, 1), t(2, 2), t(2, 3)]);
    const finalNew = leafTuple(20, t(2, 5));
    const l = redo(btRecord({ info: SPLIT_L, targetId: 0, blocks: blocks(0, cat(orignewitem, pivotTuple(30, 0))), main: splitMain(0, 4, 4, 1) }), orig);
    expect(pageItems(l)).toEqual([pivotTuple(30, 0), leafTuple(10, t(1, 1)), nposting, finalNew]);
    // SPLIT_R corner case: the posting list is lastleft and the new item firstright.
    const r = redo(btRecord({ info: SPLIT_R, targetId: 0, blocks: blocks(0, cat(orignewitem, pivotTuple(20, 0))), main: splitMain(0, 4, 4, 1) }), orig);
    expect(pageItems(r)).toEqual([pivotTuple(20, 0), leafTuple(10, t(1, 1)), nposting]);
  });

  it('SPLIT_R without posting split keeps items before firstrightoff; an internal split clears the child (block 3)', () => {
    const inner = btreePage({ prev: 0, next: 6, level: 1, items: [pivotTuple(100, 0), pivotTuple(null, 20), pivotTuple(50, 21), pivotTuple(70, 22)] });
    const main = splitMain(1, 3, 4, 0);
    const left = redo(btRecord({ info: SPLIT_R, targetId: 0, blocks: blocks(0, pivotTuple(50, 0), true, true), main }), inner);
    expectPage(left, btreePage({ prev: 0, next: 8, level: 1, flags: INCOMPLETE_SPLIT, items: [pivotTuple(50, 0), pivotTuple(null, 20)] }));
    const child = btreePage({ next: 30, flags: LEAF | INCOMPLETE_SPLIT, items: [pivotTuple(60, 0)] });
    expect(opaque(redo(btRecord({ info: SPLIT_R, targetId: 3, blocks: blocks(3, new Uint8Array(0), true, true), main }), child)).flags).toBe(LEAF);
    redoFails(btRecord({ info: SPLIT_R, targetId: 3, blocks: blocks(3, new Uint8Array(0), true, true), main: splitMain(0, 3, 4, 0) }), child,
      /btree_xlog_split changes no page registered as block id 3/);
  });

  it('splits fail on data that does not add up, offsets past the page, a right page that is not WILL_INIT', () => {
    redoFails(btRecord({ info: SPLIT_R, targetId: 0, blocks: blocks(0, cat(pivotTuple(50, 0), u16(1))), main: splitMain(0, 3, 4, 0) }), orig,
      /left page data has 2 unexpected bytes/);
    redoFails(btRecord({ info: SPLIT_R, targetId: 0, blocks: blocks(0, pivotTuple(50, 0)), main: splitMain(0, 9, 9, 0) }), orig,
      /firstrightoff 9 is past the page's items/);
    redoFails(btRecord({ info: SPLIT_R, targetId: 0, blocks: blocks(0, pivotTuple(50, 0).subarray(0, 12)), main: splitMain(0, 3, 4, 0) }), orig,
      /block data too short for the left page's high key/);
    const notInit = btRecord({ info: SPLIT_R, targetId: 1, blocks: [{ id: 0, blockNumber: 5 }, { id: 1, blockNumber: 8, data: leafTuple(1, t(1, 1)) }], main: splitMain(0, 3, 4, 0) });
    redoFails(notInit, zero(), /must be marked with WILL_INIT/);
    const badRight = cat(leafTuple(1, t(1, 1)), new Uint8Array([0, 0, 0, 0]));
    redoFails(btRecord({ info: SPLIT_R, targetId: 1, blocks: blocks(1, badRight), main: splitMain(0, 3, 4, 0) }), zero(),
      /block data too short for a logged index tuple/);
  });
});

describe('btree redo: deduplication', () => {
  const k5 = [t(1, 1), t(1, 2), t(1, 3)];
  const items = [leafTuple(5, k5[0]), leafTuple(5, k5[1]), leafTuple(5, k5[2]), leafTuple(7, t(1, 4)), leafTuple(9, t(1, 5)), leafTuple(9, t(1, 6))];
  const intervals = (...iv: [number, number][]): Uint8Array => cat(...iv.map(([b, n]) => new Bytes().u16(b).u16(n).build()));
  const dedup = (iv: [number, number][]): Buffer =>
    btRecord({ info: DEDUP, targetId: 0, blocks: [{ id: 0, blockNumber: 3, data: intervals(...iv) }], main: u16(iv.length) });

  it('DEDUP merges the logged intervals into posting lists on a rebuilt page (rightmost page, garbage flag cleared)', () => {
    const page = btreePage({ flags: LEAF | HAS_GARBAGE, items });
    const out = redo(dedup([[1, 3], [5, 2]]), page);
    expectPage(out, btreePage({ items: [postingTuple(5, k5), leafTuple(7, t(1, 4)), postingTuple(9, [t(1, 5), t(1, 6)])] }));
  });

  it('DEDUP keeps the high key of a non-rightmost page and extends an existing posting list', () => {
    const page = btreePage({ next: 4, items: [pivotTuple(10, 0), postingTuple(5, [t(1, 1), t(1, 2)]), leafTuple(5, t(1, 3)), leafTuple(6, t(1, 4))] });
    const out = redo(dedup([[2, 2]]), page);
    expectPage(out, btreePage({ next: 4, items: [pivotTuple(10, 0), postingTuple(5, k5), leafTuple(6, t(1, 4))] }));
  });

  it('DEDUP fails when the page does not reproduce the logged intervals', () => {
    const page = btreePage({ items });
    redoFails(dedup([[7, 2]]), page, /deduplication merged 0 intervals, the record logs 1/);
    redoFails(dedup([[2, 9]]), page, /deduplication does not reproduce the logged interval 0/);
    redoFails(dedup([[1, 3], [4, 2], [5, 2]]), page, /merged 2 intervals, the record logs 3/);
    const short = btRecord({ info: DEDUP, targetId: 0, blocks: [{ id: 0, blockNumber: 3, data: intervals([1, 3]) }], main: u16(2) });
    redoFails(short, page, /block data too short for the dedup intervals/);
    const pivot = btreePage({ items: [leafTuple(5, t(1, 1)), pivotTuple(5, 3)] });
    redoFails(dedup([[1, 2]]), pivot, /pivot tuple on a leaf page/);
  });
});

describe('btree redo: VACUUM and DELETE', () => {
  const page = btreePage({
    flags: LEAF | HAS_GARBAGE,
    items: [leafTuple(1, t(1, 1)), leafTuple(2, t(1, 2)), postingTuple(3, [t(2, 1), t(2, 2), t(2, 3)]), leafTuple(4, t(1, 4)),
      postingTuple(5, [t(3, 1), t(3, 2)]), leafTuple(6, t(1, 6))],
  });
  const data = (deleted: number[], updates: [number, number[]][]): Uint8Array => {
    const b = new Bytes();
    deleted.forEach((d) => b.u16(d));
    updates.forEach(([off]) => b.u16(off));
    updates.forEach(([, tids]) => { b.u16(tids.length); tids.forEach((x) => b.u16(x)); });
    return b.build();
  };
  const vacuum = (deleted: number[], updates: [number, number[]][]): Buffer => btRecord({
    info: VACUUM, targetId: 0, blocks: [{ id: 0, blockNumber: 2, data: data(deleted, updates) }],
    main: new Bytes().u16(deleted.length).u16(updates.length).build(),
  });

  it('VACUUM shrinks posting lists, deletes items, compacts and clears BTP_HAS_GARBAGE', () => {
    const out = redo(vacuum([1, 4], [[3, [1]], [5, [0]]]), page);
    const expected = [leafTuple(2, t(1, 2)), postingTuple(3, [t(2, 1), t(2, 3)]), leafTuple(5, t(3, 2)), leafTuple(6, t(1, 6))];
    expect(pageItems(out)).toEqual(expected);
    expect(opaque(out).flags).toBe(LEAF);
    expect(pageGetUpper(out)).toBe(8176 - expected.reduce((n, it) => n + it.length, 0));
    expect(pageLsn(out)).toBe(LSN);
  });

  it('DELETE (PG15 xl_btree_delete with latestRemovedXid) does the same', () => {
    const rec = btRecord({
      info: DELETE, targetId: 0, blocks: [{ id: 0, blockNumber: 2, data: data([2, 6], [[3, [0, 2]]]) }],
      main: new Bytes().u32(777).u16(2).u16(1).build(),
    });
    expect(pageItems(redo(rec, page))).toEqual([leafTuple(1, t(1, 1)), leafTuple(3, t(2, 2)), leafTuple(4, t(1, 4)), postingTuple(5, [t(3, 1), t(3, 2)])]);
  });

  it('VACUUM fails on bad offsets: unsorted deletions, deleting every TID, posting offsets out of order', () => {
    redoFails(vacuum([4, 1, 2], []), page, /incorrect index offsets supplied/);
    redoFails(vacuum([], [[3, [0, 1, 2]]]), page, /cannot delete 3 of the 3 TIDs/);
    redoFails(vacuum([], [[3, [2, 0]]]), page, /deletion offsets do not match the tuple/);
    redoFails(vacuum([], [[2, [0]]]), page, /the updated tuple is not a posting list tuple/);
    redoFails(vacuum([9], []), page, /invalid index offnum: 9/);
    const truncated = btRecord({ info: VACUUM, targetId: 0, blocks: [{ id: 0, blockNumber: 2, data: u16(1) }], main: new Bytes().u16(2).u16(0).build() });
    redoFails(truncated, page, /block data too short for deleted offsets/);
  });
});

describe('btree redo: page deletion', () => {
  it('MARK_PAGE_HALFDEAD removes the downlink in the parent (block 1) and rewrites the leaf (block 0)', () => {
    const main = new Bytes().u16(2).pad(2).u32(11).u32(10).u32(12).u32(40).build();
    const parent = btreePage({ level: 1, items: [pivotTuple(null, 10), pivotTuple(20, 11), pivotTuple(30, 12)] });
    const rec = (target: number): Buffer => btRecord({
      info: MARK_PAGE_HALFDEAD, targetId: target, blocks: [{ id: 0, blockNumber: 11, flags: WILL_INIT }, { id: 1, blockNumber: 40 }], main,
    });
    const p = redo(rec(1), parent);
    expect(pageItems(p)).toEqual([pivotTuple(null, 10), pivotTuple(20, 12)]);
    expectPage(redo(rec(0), new Uint8Array(BLCKSZ).fill(7)), btreePage({ prev: 10, next: 12, flags: HALF_DEAD | LEAF, items: [pivotTuple(null, 40)] }));
    const one = btreePage({ level: 1, items: [pivotTuple(null, 10), pivotTuple(20, 11)] });
    redoFails(rec(1), one, /item offset 3 is not on the page \(2 items\)/);
  });

  const unlinkMain = (leftsib: number, rightsib: number, level: number, meta = false): Uint8Array =>
    new Bytes().u32(leftsib).u32(rightsib).u32(level).pad(4).u32(0x1234).u32(0x5).u32(21).u32(23).u32(33)
      .raw(meta ? new Uint8Array(0) : new Uint8Array(0)).build();
  const unlinkBlocks = (target: number, level: number, withLeft: boolean, meta: boolean): Parameters<typeof btRecord>[0]['blocks'] => [
    { id: 0, blockNumber: 22, flags: WILL_INIT },
    ...(withLeft ? [{ id: 1, blockNumber: 21 }] : []),
    { id: 2, blockNumber: 23 },
    ...(level > 0 ? [{ id: 3, blockNumber: 30, flags: WILL_INIT }] : []),
    ...(meta ? [{ id: 4, blockNumber: 0, flags: WILL_INIT, data: target === 4 ? xlMetadata({ root: 23, level: 1, fastroot: 23, fastlevel: 0 }) : undefined }] : []),
  ];

  it('UNLINK_PAGE rewrites the target as deleted with its safexid, relinks both siblings', () => {
    const main = unlinkMain(21, 23, 0);
    const rec = (target: number): Buffer => btRecord({ info: UNLINK_PAGE, targetId: target, blocks: unlinkBlocks(target, 0, true, false), main });
    const target = redo(rec(0), new Uint8Array(BLCKSZ).fill(3));
    const expected = btreePage({ prev: 21, next: 23, flags: DELETED | HAS_FULLXID | LEAF, items: [] });
    const v = new DataView(expected.buffer);
    v.setUint16(12, 32, true);
    v.setUint32(24, 0x1234, true);
    v.setUint32(28, 0x5, true);
    expectPage(target, expected);
    expect(opaque(redo(rec(1), btreePage({ next: 22, items: [] }))).next).toBe(23);
    expect(opaque(redo(rec(2), btreePage({ prev: 22, items: [] }))).prev).toBe(21);
  });

  it('UNLINK_PAGE_META of an internal target rewrites the leaf (block 3) and the metapage (block 4)', () => {
    const main = unlinkMain(0, 23, 1, true);
    const rec = (target: number): Buffer => btRecord({ info: UNLINK_PAGE_META, targetId: target, blocks: unlinkBlocks(target, 1, false, true), main });
    const target = redo(rec(0), zero());
    expect(opaque(target)).toEqual({ prev: 0, next: 23, level: 1, flags: DELETED | HAS_FULLXID, cycleId: 0 });
    expectPage(redo(rec(3), zero()), btreePage({ prev: 21, next: 23, flags: HALF_DEAD | LEAF, items: [pivotTuple(null, 33)] }));
    expectPage(redo(rec(4), zero()), metaPage({ root: 23, level: 1, fastroot: 23, fastlevel: 0 }, LSN));
    redoFails(btRecord({ info: UNLINK_PAGE, targetId: 1, blocks: unlinkBlocks(1, 1, true, false), main }), btreePage({ items: [] }),
      /btree_xlog_unlink_page changes no page registered as block id 1/);
    redoFails(btRecord({ info: UNLINK_PAGE, targetId: 0, blocks: unlinkBlocks(0, 0, true, false), main: main.subarray(0, 30) }), zero(),
      /main data shorter than xl_btree_unlink_page \(30 < 36\)/);
  });
});

describe('btree redo: root and metapage records', () => {
  const newrootMain = (level: number): Uint8Array => new Bytes().u32(9).u32(level).build();
  const meta = { root: 9, level: 1 };

  it('NEWROOT after a root split: two downlinks on the new root, the old root\'s split finished, the metapage', () => {
    const items = [pivotTuple(null, 1), pivotTuple(50, 2)];
    const blocks = (target: number): Parameters<typeof btRecord>[0]['blocks'] => [
      { id: 0, blockNumber: 9, flags: WILL_INIT, data: target === 0 ? upperPart(btreePage({ items })) : undefined },
      { id: 1, blockNumber: 1 },
      { id: 2, blockNumber: 0, flags: WILL_INIT, data: target === 2 ? xlMetadata(meta) : undefined },
    ];
    const rec = (target: number): Buffer => btRecord({ info: NEWROOT, targetId: target, blocks: blocks(target), main: newrootMain(1) });
    expectPage(redo(rec(0), zero()), btreePage({ level: 1, flags: ROOT, items }));
    const oldRoot = btreePage({ next: 2, flags: LEAF | ROOT | INCOMPLETE_SPLIT, items: [pivotTuple(50, 0)] });
    expect(opaque(redo(rec(1), oldRoot)).flags).toBe(LEAF | ROOT);
    expectPage(redo(rec(2), zero()), metaPage(meta, LSN));
  });

  it('NEWROOT of an empty index makes an empty root leaf; META_CLEANUP and REUSE_PAGE', () => {
    const rec = btRecord({ info: NEWROOT, targetId: 0, blocks: [{ id: 0, blockNumber: 1, flags: WILL_INIT }, { id: 2, blockNumber: 0, flags: WILL_INIT }], main: newrootMain(0) });
    expectPage(redo(rec, zero()), btreePage({ flags: ROOT | LEAF, items: [] }));
    const cleanup = btRecord({ info: META_CLEANUP, targetId: 0, blocks: [{ id: 0, blockNumber: 0, flags: WILL_INIT, data: xlMetadata({ root: 1, level: 0, delpages: 4 }) }], main: new Uint8Array(0) });
    expectPage(redo(cleanup, zero()), metaPage({ root: 1, level: 0, delpages: 4 }, LSN));
    const page = btreePage({ items: [leafTuple(1, t(1, 1))] });
    const reuse = btRecord({ info: REUSE_PAGE, targetId: 0, blocks: [{ id: 0, blockNumber: 5 }], main: new Uint8Array(24) });
    expect(Buffer.from(redo(reuse, page)).equals(Buffer.from(page))).toBe(true);
  });

  it('an unknown btree opcode is WAL_UNSUPPORTED; a page that is not a btree page, a malformed value are REDO_FAILED', () => {
    const page = btreePage({ items: [leafTuple(1, t(1, 1))] });
    let err: unknown = null;
    try {
      redo(btRecord({ info: 0xf0, targetId: 0, blocks: [{ id: 0, blockNumber: 5 }], main: new Uint8Array(0) }), page);
    } catch (e) {
      err = e;
    }
    expect(isStrataError(err, 'WAL_UNSUPPORTED')).toBe(true);
    expect((err as Error).message).toMatch(/Btree\/UNKNOWN \(f0\) at 2\/4000/);
    const heapLike = page.slice();
    heapLike[16] = 0;
    heapLike[17] = 0x20;
    redoFails(btRecord({ info: INSERT_LEAF, targetId: 0, blocks: [{ id: 0, blockNumber: 5, data: leafTuple(2, t(1, 2)) }], main: u16(2) }), heapLike,
      /not a btree page: pd_special = 8192/);
    const rec = btRecord({ info: INSERT_LEAF, targetId: 0, blocks: [{ id: 0, blockNumber: 5, data: leafTuple(2, t(1, 2)) }], main: u16(2) });
    redoFails(rec.subarray(0, rec.length - 1), page, /malformed PostgreSQL record/);
  });
});

describe('btree redo: the PostgreSQL layouts the tests build on', () => {
  it('pages and tuples the helpers build have PostgreSQL 15 sizes and flags', () => {
    const p = btreePage({ items: [leafTuple(1, t(1, 1))] });
    expect([pageGetLower(p), pageGetUpper(p), pageGetSpecial(p)]).toEqual([28, 8160, 8176]);
    expect(postingTuple(5, [t(1, 1), t(1, 2), t(1, 3)]).length).toBe(40);
    expect(metaPage({ root: 1, level: 0 }, 0n).subarray(56, 64)).toEqual(Uint8Array.of(0, 0, 0, 0, 0, 0, 0xf0, 0xbf));
    expect(META | SPLIT_END).toBe(40);
  });
});
