/**
 * bufpage (lib/core/ts/pg/bufpage.ts, native/pg/bufpage.cc): PostgreSQL 15's page primitives on
 * hand-built pages against a small reference model, then native ≡ TS on randomized pages and
 * operations (same bytes, same results, same errors), corrupt pages included.
 */
import { describe, expect, it } from 'vitest';
import {
  FIRST_OFFSET_NUMBER, LP_DEAD, LP_NORMAL, LP_REDIRECT, PAGE_OP, PAI_IS_HEAP, PAI_OVERWRITE, PD_HAS_FREE_LINES, PageError,
  itemIdGetFlags, itemIdGetLength, itemIdGetOffset, itemIdSetDead, itemIdSetRedirect, itemIdSetUnused, pageAddItemExtended,
  pageGetFlags, pageGetHeapFreeSpace, pageGetLower, pageGetMaxOffsetNumber, pageGetSpecial, pageGetUpper,
  pageIndexMultiDelete, pageIndexTupleDelete, pageIndexTupleDeleteNoCompact, pageIndexTupleOverwrite, pageInit, pageOp,
  pageRepairFragmentation, pageTruncateLinePointerArray,
} from '../../lib/core/ts/pg/bufpage';
import { BLCKSZ, maxAlign } from '../../lib/core/ts/pg/pg_format';
import { isStrataError } from '../../lib/errors';
import { Rng } from '../helpers/random';
import { NATIVE_SKIP_NOTE } from '../helpers/cores';
import { nativePg } from '../helpers/pg_native';

function newPage(special = 0): Uint8Array {
  const p = new Uint8Array(BLCKSZ);
  pageInit(p, special);
  return p;
}

function item(len: number, fill: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (fill + i) & 0xff;
  return b;
}

function add(page: Uint8Array, bytes: Uint8Array, offnum = 0, flags = 0): number {
  return pageAddItemExtended(page, bytes, 0, bytes.length, offnum, flags);
}

function itemBytes(page: Uint8Array, offnum: number): Uint8Array {
  const off = itemIdGetOffset(page, offnum);
  return page.slice(off, off + itemIdGetLength(page, offnum));
}

/**
 * Reference for compaction of a well-formed page: items with storage, in line pointer order, packed
 * from pd_special down (PostgreSQL 14+ compactify_tuples order), each keeping its MAXALIGNed bytes.
 */
function compactModel(page: Uint8Array, order: number[]): Uint8Array {
  const out = page.slice();
  let upper = pageGetSpecial(page);
  for (const off of order) {
    const len = maxAlign(itemIdGetLength(page, off));
    upper -= len;
    out.set(page.subarray(itemIdGetOffset(page, off), itemIdGetOffset(page, off) + len), upper);
  }
  return out;
}

describe('bufpage (TS) on hand-built pages', () => {
  it('PageInit writes PostgreSQL 15 header fields', () => {
    const p = newPage(16);
    expect(pageGetLower(p)).toBe(24);
    expect(pageGetUpper(p)).toBe(8176);
    expect(pageGetSpecial(p)).toBe(8176);
    expect(p[18] | (p[19] << 8)).toBe(8192 | 4);
    expect(p.subarray(0, 12).every((b) => b === 0)).toBe(true);
  });

  it('PageAddItem appends, shuffles, refuses overwrites, big items and the 292nd heap item', () => {
    const p = newPage();
    expect(add(p, item(30, 1))).toBe(1);
    expect(add(p, item(10, 2))).toBe(2);
    // Inserting at 1 moves the existing line pointers up.
    expect(add(p, item(8, 3), 1)).toBe(1);
    expect(pageGetMaxOffsetNumber(p)).toBe(3);
    expect(itemBytes(p, 2)).toEqual(item(30, 1));
    expect(itemBytes(p, 1)).toEqual(item(8, 3));
    expect(pageGetUpper(p)).toBe(8192 - 32 - 16 - 8);
    // Overwrite of a used slot is refused; past maxoff+1 too.
    expect(add(p, item(8, 4), 2, PAI_OVERWRITE)).toBe(0);
    expect(add(p, item(8, 4), 5)).toBe(0);
    expect(add(p, item(8200, 4))).toBe(0);
    const h = newPage();
    for (let i = 1; i <= 291; i++) expect(add(h, item(1, i), i, PAI_IS_HEAP)).toBe(i);
    expect(add(h, item(1, 0), 292, PAI_IS_HEAP)).toBe(0);
  });

  it('PageAddItem without an offset reuses the first unused slot when the hint says so', () => {
    const p = newPage();
    for (let i = 0; i < 4; i++) add(p, item(16, i));
    itemIdSetUnused(p, 2);
    expect(add(p, item(8, 9))).toBe(5); // no hint: appended
    p[10] |= PD_HAS_FREE_LINES;
    expect(add(p, item(8, 9))).toBe(2);
  });

  it('PageRepairFragmentation packs in line pointer order (presorted and unsorted paths) and truncates', () => {
    for (const shuffle of [false, true]) {
      const p = newPage();
      const n = 12;
      for (let i = 0; i < n; i++) add(p, item(20 + i, i * 7), shuffle && i > 0 ? 1 : 0);
      itemIdSetUnused(p, 3);
      itemIdSetDead(p, 5);
      itemIdSetRedirect(p, 7, 8);
      itemIdSetUnused(p, n); // trailing unused: truncated away
      const keep = [1, 2, 4, 6, 8, 9, 10, 11];
      const before = keep.map((o) => itemBytes(p, o));
      const expected = compactModel(p, keep);
      pageRepairFragmentation(p);
      keep.forEach((o, i) => expect(itemBytes(p, o)).toEqual(before[i]));
      expect(pageGetMaxOffsetNumber(p)).toBe(n - 1);
      expect(itemIdGetFlags(p, 5)).toBe(LP_DEAD);
      expect(itemIdGetFlags(p, 7)).toBe(LP_REDIRECT);
      expect(pageGetFlags(p) & PD_HAS_FREE_LINES).toBe(PD_HAS_FREE_LINES);
      // Everything from the new pd_upper to pd_special matches the reference model.
      expect(p.subarray(pageGetUpper(p))).toEqual(expected.subarray(pageGetUpper(p)));
      expect(pageGetUpper(p)).toBe(8192 - keep.reduce((s, o) => s + maxAlign(itemIdGetLength(p, o)), 0));
    }
  });

  it('PageRepairFragmentation takes the few-items scratch path when most tuples are gone', () => {
    const p = newPage();
    for (let i = 0; i < 40; i++) add(p, item(24, i), i > 0 ? 1 : 0);
    for (let i = 1; i <= 40; i++) if (i % 10 !== 0) itemIdSetUnused(p, i);
    const keep = [10, 20, 30, 40];
    const expected = compactModel(p, keep);
    pageRepairFragmentation(p);
    expect(p.subarray(pageGetUpper(p))).toEqual(expected.subarray(pageGetUpper(p)));
    expect(pageGetUpper(p)).toBe(8192 - 4 * 24);
  });

  it('PageRepairFragmentation rejects corrupt page pointers and line pointers', () => {
    const p = newPage();
    add(p, item(40, 1));
    const bad = p.slice();
    bad[14] = 0x10; // pd_upper below pd_lower
    bad[15] = 0;
    expect(() => pageRepairFragmentation(bad)).toThrow(PageError);
    const bad2 = p.slice();
    bad2[24] = 0xf8; // lp_off = 8184 + len 40 runs past pd_special
    bad2[25] = 0x9f; // keeps lp_flags = LP_NORMAL
    expect(() => pageRepairFragmentation(bad2)).toThrow(/corrupted line pointer/);
  });

  it('PageTruncateLinePointerArray keeps the first line pointer and sets the hint', () => {
    const p = newPage();
    for (let i = 0; i < 5; i++) add(p, item(8, i));
    for (const o of [2, 4, 5]) itemIdSetUnused(p, o);
    pageTruncateLinePointerArray(p);
    expect(pageGetMaxOffsetNumber(p)).toBe(3);
    expect(pageGetFlags(p) & PD_HAS_FREE_LINES).toBe(PD_HAS_FREE_LINES);
    const q = newPage();
    add(q, item(8, 1));
    itemIdSetUnused(q, 1);
    pageTruncateLinePointerArray(q);
    expect(pageGetMaxOffsetNumber(q)).toBe(1);
  });

  it('index deletes and overwrite keep the remaining items intact', () => {
    const p = newPage(16);
    for (let i = 0; i < 8; i++) add(p, item(16 + 8 * (i % 3), i * 11));
    const all = Array.from({ length: 8 }, (_, i) => itemBytes(p, i + 1));
    const q = p.slice();
    pageIndexTupleDelete(q, 3);
    expect(pageGetMaxOffsetNumber(q)).toBe(7);
    expect([1, 2, 3, 4, 5, 6, 7].map((o) => itemBytes(q, o))).toEqual([0, 1, 3, 4, 5, 6, 7].map((i) => all[i]));
    const m = p.slice();
    pageIndexMultiDelete(m, [2, 4, 5, 8], 4);
    expect([1, 2, 3, 4].map((o) => itemBytes(m, o))).toEqual([0, 2, 5, 6].map((i) => all[i]));
    expect(() => pageIndexMultiDelete(p.slice(), [4, 2, 5], 3)).toThrow(/incorrect index offsets/);
    const nc = p.slice();
    pageIndexTupleDeleteNoCompact(nc, 4);
    expect(itemIdGetFlags(nc, 4)).toBe(0);
    expect(itemBytes(nc, 5)).toEqual(all[4]);
    const o = p.slice();
    expect(pageIndexTupleOverwrite(o, 2, item(40, 99), 0, 40)).toBe(true);
    expect(itemBytes(o, 2)).toEqual(item(40, 99));
    expect([1, 3, 8].map((k) => itemBytes(o, k))).toEqual([all[0], all[2], all[7]]);
    expect(itemIdGetFlags(o, 2)).toBe(LP_NORMAL);
    expect(pageIndexTupleOverwrite(o, 2, item(8000, 1), 0, 8000)).toBe(false);
  });

  it('PageGetHeapFreeSpace is 0 with 291 line pointers and none free', () => {
    const p = newPage();
    for (let i = 1; i <= 291; i++) add(p, item(1, i));
    expect(pageGetHeapFreeSpace(p)).toBe(0);
    expect(FIRST_OFFSET_NUMBER).toBe(1);
  });
});

// ---- native ≡ TS ----

type Outcome = { result: number; page: Uint8Array } | { error: string };

function runTs(op: number, page: Uint8Array, a: number, b: number, bytes: Uint8Array): Outcome {
  const p = page.slice();
  const out = bytes.slice();
  try {
    const result = pageOp(op, p, a, b, out);
    return { result, page: op === PAGE_OP.getTempPageCopySpecial ? out : p };
  } catch (e) {
    if (e instanceof PageError) return { error: `REDO_FAILED: ${e.message}` };
    throw e;
  }
}

function runNative(op: number, page: Uint8Array, a: number, b: number, bytes: Uint8Array): Outcome {
  const n = nativePg();
  if (n === null) throw new Error('native not wanted');
  const p = page.slice();
  const out = bytes.slice();
  try {
    const result = n.pgPageOp(op, p, a, b, out);
    return { result, page: op === PAGE_OP.getTempPageCopySpecial ? out : p };
  } catch (e) {
    if (isStrataError(e)) return { error: `${e.code}: ${e.message.replace(/^REDO_FAILED: /, '')}` };
    throw e;
  }
}

function sameOutcome(x: Outcome, y: Outcome): boolean {
  if ('error' in x || 'error' in y) return 'error' in x && 'error' in y && x.error === y.error;
  return x.result === y.result && Buffer.compare(x.page, y.page) === 0;
}

/** A random page: items added at random offsets (so physical order varies), some made unused/dead/redirect. */
function randomPage(rng: Rng): Uint8Array {
  const p = newPage(rng.pick([0, 0, 16, 8]));
  const n = rng.int(0, 120);
  for (let i = 0; i < n; i++) {
    const len = rng.int(1, rng.chance(0.1) ? 600 : 90);
    const max = pageGetMaxOffsetNumber(p);
    add(p, rng.bytes(len), rng.chance(0.5) ? rng.int(1, max + 2) : 0);
  }
  const max = pageGetMaxOffsetNumber(p);
  for (let o = 1; o <= max; o++) {
    const x = rng.next();
    if (x < 0.15) itemIdSetUnused(p, o);
    else if (x < 0.2) itemIdSetDead(p, o);
    else if (x < 0.23 && max > 1) itemIdSetRedirect(p, o, rng.int(1, max + 1));
  }
  if (rng.chance(0.3)) p[10] |= PD_HAS_FREE_LINES;
  // Corruption: a few random bytes in the header or the line pointer array.
  if (rng.chance(0.15)) {
    for (let k = rng.int(1, 4); k > 0; k--) p[rng.int(8, Math.min(pageGetLower(p) + 8, 200))] = rng.int(0, 256);
  }
  return p;
}

function randomOp(rng: Rng, page: Uint8Array): [number, number, number, Uint8Array] {
  const max = Math.max(1, pageGetMaxOffsetNumber(page));
  const op = rng.int(0, 12);
  switch (op) {
    case PAGE_OP.init: return [op, rng.pick([0, 8, 16, 24, 8200]), 0, new Uint8Array(0)];
    case PAGE_OP.addItem: return [op, rng.int(0, max + 3), rng.int(0, 4), rng.bytes(rng.int(0, 200))];
    case PAGE_OP.indexMultiDelete: {
      const items: number[] = [];
      for (let o = 1; o <= max; o++) if (rng.chance(0.3)) items.push(o);
      if (rng.chance(0.1)) items.reverse();
      const b = new Uint8Array(items.length * 2);
      items.forEach((v, i) => { b[2 * i] = v & 0xff; b[2 * i + 1] = v >> 8; });
      return [op, 0, 0, b];
    }
    case PAGE_OP.indexTupleOverwrite: return [op, rng.int(0, max + 2), 0, rng.bytes(rng.int(0, 300))];
    case PAGE_OP.getTempPageCopySpecial: return [op, 0, 0, new Uint8Array(BLCKSZ)];
    default: return [op, rng.int(0, max + 2), 0, new Uint8Array(0)];
  }
}

const NATIVE = nativePg();

describe.skipIf(NATIVE === null)(`bufpage native ≡ TS${NATIVE_SKIP_NOTE}`, () => {
  it('randomized pages and operations give the same bytes, results and errors (4000 cases)', () => {
    const rng = new Rng(0xb0f9a6e);
    let errors = 0;
    for (let i = 0; i < 4000; i++) {
      const page = randomPage(rng);
      const [op, a, b, bytes] = randomOp(rng, page);
      const ts = runTs(op, page, a, b, bytes);
      const nat = runNative(op, page, a, b, bytes);
      if ('error' in ts) errors++;
      // toEqual on 8 KB arrays is slow: compare cheaply, let toEqual describe a difference.
      if (!sameOutcome(nat, ts)) expect(nat, `case ${i}: op ${op} a=${a} b=${b}`).toEqual(ts);
    }
    // Both outcomes are exercised.
    expect(errors).toBeGreaterThan(50);
    expect(errors).toBeLessThan(3000);
  });
});
