/**
 * Native ≡ TS for PostgreSQL redo: randomized chains of heap, heap2, sequence, XLOG and rmgr-255
 * records (mostly valid, some with impossible offsets or lengths, some with random bytes flipped)
 * applied to the same pages by both cores; every step must give the same page bytes, or the same
 * error code and message. Counts per record type show what was exercised.
 */
import { describe, expect, it } from 'vitest';
import { pageGetMaxOffsetNumber } from '../../lib/core/ts/pg/bufpage';
import { redoRecord, rmgrInfoName } from '../../lib/core/ts/pg/rmgr';
import { isStrataError } from '../../lib/errors';
import {
  heapConfirm, heapDelete, heapFreezePage, heapInplace, heapInsert, heapLock, heapLockUpdated, heapMultiInsert,
  heapPrune, heapUpdate, heapVacuum, heapVisible, seqLog, vmClear, vmTruncate, xlogFpi, type Ctx, type LoggedTuple,
} from '../helpers/pg_heap_records';
import { nativePg } from '../helpers/pg_native';
import { Rng } from '../helpers/random';

const NATIVE = nativePg();
const BLCKSZ = 8192;

function randomTuple(rng: Rng): LoggedTuple {
  const len = rng.chance(0.05) ? rng.int(0, 3000) : rng.int(0, 60);
  return { infomask2: rng.int(0, 0x10000), infomask: rng.int(0, 0x10000), hoff: rng.chance(0.9) ? 24 : rng.int(0, 64), body: rng.bytes(len) };
}

/** An offset: mostly an existing line pointer (or the next free one), sometimes anything. */
function offset(rng: Rng, page: Uint8Array, extra = 0): number {
  const max = pageGetMaxOffsetNumber(page);
  return rng.chance(0.93) ? rng.int(1, max + 1 + extra) : rng.int(0, 400);
}

function offsets(rng: Rng, page: Uint8Array, n: number): number[] {
  return Array.from({ length: n }, () => offset(rng, page));
}

type Gen = (rng: Rng, page: Uint8Array, ctx: Ctx) => Buffer;

/** Heap-page record generators, weighted by how often the real mix has them. */
const HEAP_GENS: [number, Gen][] = [
  [6, (rng, p, c) => heapInsert(c, offset(rng, p, 1), randomTuple(rng), { flags: rng.int(0, 2) })],
  [1, (rng, _p, c) => heapInsert(c, 1, randomTuple(rng), { init: true })],
  [3, (rng, p, c) => heapDelete(c, offset(rng, p), rng.int(3, 1e6), rng.int(0, 32), rng.pick([0, 1, 8, 16]))],
  [3, (rng, p, c) => heapUpdate(c, {
    hot: rng.chance(0.5), oldOffnum: offset(rng, p), newOffnum: offset(rng, p, 1), oldXmax: rng.int(3, 1e6), newXmax: rng.int(0, 9),
    oldInfobits: rng.int(0, 32), flags: rng.int(0, 4), prefix: rng.chance(0.3) ? rng.int(0, 40) : undefined,
    suffix: rng.chance(0.3) ? rng.int(0, 40) : undefined, t: randomTuple(rng),
  })],
  [1, (rng, p, c) => heapUpdate(c, { oldOffnum: offset(rng, p), newOffnum: 1, oldXmax: 9, t: randomTuple(rng), oldBlkno: (c.blkno ?? 0) + 1, targetId: 1 })],
  [2, (rng, p, c) => heapLock(c, offset(rng, p), rng.int(3, 1e6), rng.int(0, 32), rng.int(0, 2))],
  [1, (rng, p, c) => heapLockUpdated(c, offset(rng, p), rng.int(3, 1e6), rng.int(0, 32))],
  [1, (rng, p, c) => heapConfirm(c, offset(rng, p))],
  [1, (rng, p, c) => heapInplace(c, offset(rng, p), rng.bytes(rng.int(0, 40)))],
  [2, (rng, p, c) => heapPrune(c,
    Array.from({ length: rng.int(0, 3) }, () => [offset(rng, p), offset(rng, p)] as [number, number]),
    offsets(rng, p, rng.int(0, 3)), offsets(rng, p, rng.int(0, 4)))],
  [1, (rng, p, c) => heapVacuum(c, offsets(rng, p, rng.int(1, 4)))],
  [1, (rng, p, c) => heapFreezePage(c, Array.from({ length: rng.int(1, 4) }, () => ({
    offset: offset(rng, p), xmax: rng.int(0, 1e6), infomask2: rng.int(0, 0x10000), infomask: rng.int(0, 0x10000), frzflags: rng.int(0, 8),
  })))],
  [1, (rng, _p, c) => heapVisible(c, 1, c.blkno ?? 0, 0, rng.int(0, 4))],
  [2, (rng, p, c) => heapMultiInsert(c, Array.from({ length: rng.int(1, 5) }, () => randomTuple(rng)), { offsets: offsets(rng, p, 5).map((o, i) => o + i), flags: rng.pick([0, 1, 0x20]) })],
  [1, (rng, _p, c) => heapMultiInsert(c, Array.from({ length: rng.int(1, 8) }, () => randomTuple(rng)), { init: true })],
  [1, (rng, _p, c) => xlogFpi(c, rng.pick([0xa0, 0xb0]), rng.pick(['none', 'noapply'] as const))],
];

const VM_GENS: [number, Gen][] = [
  [3, (rng, _p, c) => heapVisible(c, 0, (c.blkno ?? 0) * 32672 + rng.int(0, 32672), c.blkno ?? 0, rng.int(0, 4))],
  [3, (rng, _p, c) => vmClear(c, (c.blkno ?? 0) * 32672 + rng.int(0, 32672), rng.chance(0.5) ? 0xffffffff : rng.int(0, 70000), rng.int(0, 4))],
  [1, (rng, _p, c) => vmTruncate(c, rng.int(0, 70000))],
];

function pick(rng: Rng, gens: [number, Gen][]): Gen {
  const total = gens.reduce((s, [w]) => s + w, 0);
  let x = rng.next() * total;
  for (const [w, g] of gens) {
    x -= w;
    if (x < 0) return g;
  }
  return gens[gens.length - 1][1];
}

interface Step { code: string | null; message: string; page: Uint8Array }

function apply(rec: Uint8Array, page: Uint8Array, impl: 'ts' | 'native'): Step {
  const p = page.slice();
  try {
    if (impl === 'ts') redoRecord(rec, 0, rec.length, p, 0);
    else NATIVE!.pgRedoRecord(rec, p);
    return { code: null, message: '', page: p };
  } catch (e) {
    if (!isStrataError(e)) throw e;
    return { code: e.code, message: e.message, page };
  }
}

describe.skipIf(NATIVE === null)('PostgreSQL redo: native ≡ TS', () => {
  it('randomized record chains give identical pages and errors in both cores', () => {
    const rng = new Rng(0x9e0d0);
    const applied = new Map<string, number>();
    const failed = new Map<string, number>();
    let steps = 0;
    let lsn = 0x3_0000_0000n;
    for (let chain = 0; chain < 260; chain++) {
      const vm = chain % 5 === 4;
      const ctx = (): Ctx => ({ lsn: (lsn += BigInt(rng.int(1, 400) * 8)), xid: rng.int(3, 1e6), blkno: vm ? rng.int(0, 3) : 7, clusterFlags: rng.int(0, 4) });
      let page: Uint8Array = new Uint8Array(BLCKSZ);
      if (!vm) page = apply(rng.chance(0.8) ? heapInsert(ctx(), 1, randomTuple(rng), { init: true }) : seqLog(ctx(), rng.bytes(rng.int(0, 200))), page, 'ts').page;
      const c0 = ctx();
      for (let i = 0; i < 40; i++) {
        const c = { ...ctx(), blkno: c0.blkno };
        const rec = pick(rng, vm ? VM_GENS : HEAP_GENS)(rng, page, c);
        // Now and then a flipped byte anywhere in the stored value.
        if (rng.chance(0.05)) rec[rng.int(0, rec.length)] ^= 1 << rng.int(0, 8);
        // ...or a page LSN from the future, so the record is skipped.
        const base = rng.chance(0.03) ? page.slice().fill(0xff, 0, 8) : page;
        const ts = apply(rec, base, 'ts');
        const nat = apply(rec, base, 'native');
        if (ts.code !== nat.code || ts.message !== nat.message || Buffer.compare(ts.page, nat.page) !== 0) {
          expect({ code: nat.code, message: nat.message }, `chain ${chain} step ${i}`).toEqual({ code: ts.code, message: ts.message });
          expect(Buffer.compare(ts.page, nat.page), `chain ${chain} step ${i}: pages differ`).toBe(0);
        }
        const name = rmgrInfoName(rec[16], rec[17]);
        const counts = ts.code === null ? applied : failed;
        counts.set(name, (counts.get(name) ?? 0) + 1);
        if (ts.code === null && base === page) page = ts.page;
        steps++;
      }
    }
    const report = [...new Set([...applied.keys(), ...failed.keys()])].sort()
      .map((n) => `${n}: ${applied.get(n) ?? 0} applied, ${failed.get(n) ?? 0} failed`);
    console.log(`redo differential: ${steps} records\n  ${report.join('\n  ')}`);
    expect(steps).toBe(260 * 40);
    for (const name of ['Heap/INSERT', 'Heap/DELETE', 'Heap/UPDATE', 'Heap/HOT_UPDATE', 'Heap/LOCK', 'Heap/INPLACE', 'Heap/HEAP_CONFIRM',
      'Heap2/PRUNE', 'Heap2/VACUUM', 'Heap2/FREEZE_PAGE', 'Heap2/VISIBLE', 'Heap2/MULTI_INSERT', 'Heap2/MULTI_INSERT+INIT',
      'Heap2/LOCK_UPDATED', 'Strata/VM_CLEAR', 'Strata/VM_TRUNCATE', 'Heap/INSERT+INIT']) {
      expect(applied.get(name) ?? 0, `${name} applied`).toBeGreaterThan(5);
    }
    expect([...failed.values()].reduce((a, b) => a + b, 0)).toBeGreaterThan(100);
  });
});
