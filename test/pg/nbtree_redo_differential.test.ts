/**
 * Btree redo, native ≡ TS on randomized input: random btree pages (leaf tuples, posting lists,
 * pivots, sometimes corrupted) and random records of every btree type, mostly plausible for the
 * page (offsets on it, intervals over its equal keys, posting list positions) and sometimes mutated.
 * Both cores must produce the same page bytes or fail with the same code and message. Fails loudly
 * when the addon does not load (unless STRATA_IMPL=ts, where there is nothing to compare).
 */
import { describe, expect, it } from 'vitest';
import { pageGetMaxOffsetNumber, itemIdGetLength, itemIdGetOffset } from '../../lib/core/ts/pg/bufpage';
import { isStrataError } from '../../lib/errors';
import { Rng } from '../helpers/random';
import { NATIVE_WANTED, nativePg } from '../helpers/pg_native';
import {
  BLCKSZ, Bytes, WILL_INIT, btRecord, btreePage, leafTuple, pivotTuple, postingTuple, tsRedo, xlMetadata, type Tid,
} from '../helpers/pg_btree';
import type { StoredBlockSpec } from '../helpers/pg_records';

const ITERATIONS = 4000;
const OPCODES = [0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0, 0xb0, 0xc0, 0xd0, 0xe0, 0xf0];

interface Item {
  bytes: Uint8Array;
  key: number;
}

function tid(rng: Rng): Tid {
  return { blk: rng.int(0, 70000), off: rng.int(1, 300) };
}

function sortedTids(rng: Rng, n: number): Tid[] {
  const out: Tid[] = [];
  let blk = rng.int(0, 1000);
  for (let i = 0; i < n; i++) {
    blk += rng.int(0, 3);
    out.push({ blk, off: i + 1 });
  }
  return out;
}

function randomItem(rng: Rng, leaf: boolean, key: number): Item {
  if (!leaf) return { bytes: rng.chance(0.1) ? pivotTuple(null, rng.int(1, 500)) : pivotTuple(key, rng.int(1, 500)), key };
  if (rng.chance(0.25)) return { bytes: postingTuple(key, sortedTids(rng, rng.int(2, 12))), key };
  return { bytes: leafTuple(key, tid(rng)), key };
}

interface PageCase {
  page: Uint8Array;
  items: Item[];
  leaf: boolean;
  rightmost: boolean;
}

function randomPage(rng: Rng): PageCase {
  const leaf = rng.chance(0.8);
  const rightmost = rng.chance(0.4);
  const n = rng.int(0, 60);
  const items: Item[] = [];
  if (!rightmost) items.push({ bytes: pivotTuple(1000, 0), key: 1000 });
  let key = rng.int(0, 5);
  for (let i = 0; i < n; i++) {
    if (rng.chance(0.5)) key += 1;
    items.push(randomItem(rng, leaf, key));
  }
  let flags = leaf ? 1 : 0;
  if (rng.chance(0.3)) flags |= 0x40;
  if (rng.chance(0.2)) flags |= 0x80;
  const page = btreePage({
    prev: rng.int(0, 50), next: rightmost ? 0 : rng.int(1, 50), level: leaf ? 0 : rng.int(1, 3), flags, cycleId: rng.int(0, 3),
    items: items.map((it) => it.bytes), lsn: BigInt(rng.int(0, 0x3000)) << 4n,
  });
  if (rng.chance(0.05)) {
    for (let k = rng.int(1, 4); k > 0; k--) page[rng.int(0, BLCKSZ)] = rng.int(0, 256);
  }
  return { page: rng.chance(0.03) ? new Uint8Array(BLCKSZ) : page, items, leaf, rightmost };
}

const u16s = (vals: number[]): Uint8Array => {
  const b = new Bytes();
  vals.forEach((v) => b.u16(v));
  return b.build();
};

function sample(rng: Rng, lo: number, hi: number, p: number): number[] {
  const out: number[] = [];
  for (let i = lo; i <= hi; i++) if (rng.chance(p)) out.push(i);
  return out;
}

/** Main data and target block data for one record type, plausible for the page. */
function payload(rng: Rng, info: number, target: number, c: PageCase): { main: Uint8Array; data: Uint8Array } {
  const maxoff = c.items.length;
  const first = c.rightmost ? 1 : 2;
  const off = (): number => rng.int(first, maxoff + 2);
  const none = new Uint8Array(0);
  switch (info) {
    case 0x00: case 0x10: case 0x20:
      if (target === 2) return { main: u16s([off()]), data: xlMetadata({ root: rng.int(1, 9), level: rng.int(0, 3), version: rng.pick([3, 4, 4, 2]) }) };
      return { main: u16s([off()]), data: target === 0 ? randomItem(rng, info === 0, rng.int(0, 60)).bytes : none };
    case 0x50: {
      const postings = c.items.map((it, i) => ({ it, o: i + 1 })).filter((x) => x.it.bytes.length > 16 && (x.it.bytes[7] & 0x20) !== 0);
      const p = postings.length > 0 && rng.chance(0.9) ? rng.pick(postings) : { o: off(), it: c.items[0] };
      const n = p.it !== undefined && p.it.bytes.length > 16 ? (p.it.bytes[4] | (p.it.bytes[5] << 8)) & 0xfff : 3;
      const item = leafTuple(p.it?.key ?? 1, tid(rng));
      return { main: u16s([p.o + 1]), data: Uint8Array.from([...u16s([rng.int(rng.chance(0.9) ? 1 : 0, n + 1)]), ...item]) };
    }
    case 0x30: case 0x40: {
      const firstright = rng.int(first + 1, maxoff + 3);
      const newitemoff = rng.chance(0.5) ? firstright : rng.int(first, firstright + 1);
      const prev = c.items[newitemoff - 2];
      const postingoff = prev !== undefined && (prev.bytes[7] & 0x20) !== 0 && prev.bytes.length > 16 && rng.chance(0.5) ? rng.int(1, 3) : 0;
      const main = new Bytes().u32(c.leaf ? 0 : 1).u16(firstright).u16(newitemoff).u16(postingoff).build();
      if (target === 1) {
        const right = btreePage({ items: c.items.slice(Math.max(0, firstright - 2)).map((it) => it.bytes) });
        const upper = right[14] | (right[15] << 8);
        return { main, data: right.slice(upper, BLCKSZ - 16) };
      }
      if (target !== 0) return { main, data: none };
      const parts: number[] = [];
      if (info === 0x30 || postingoff !== 0) parts.push(...leafTuple(prev?.key ?? 3, tid(rng)));
      parts.push(...pivotTuple(rng.int(0, 60), 0));
      return { main, data: Uint8Array.from(parts) };
    }
    case 0x60: {
      const intervals: number[] = [];
      let i = first;
      while (i <= maxoff) {
        let j = i;
        while (j + 1 <= maxoff && c.items[j].key === c.items[i - 1].key) j++;
        if (j > i && rng.chance(0.8)) intervals.push(i, rng.chance(0.9) ? j - i + 1 : rng.int(1, j - i + 3));
        i = j + 1;
      }
      return { main: u16s([intervals.length / 2 + (rng.chance(0.05) ? 1 : 0)]), data: u16s(intervals) };
    }
    case 0x70: case 0xc0: {
      const deleted = sample(rng, first, maxoff, 0.2);
      const updates = c.items.map((it, k) => ({ it, o: k + 1 })).filter((x) => x.o >= first && (x.it.bytes[7] & 0x20) !== 0 && x.it.bytes.length > 16 &&
        !deleted.includes(x.o) && rng.chance(0.5));
      const b = new Bytes();
      deleted.forEach((d) => b.u16(d));
      updates.forEach((u) => b.u16(u.o));
      updates.forEach((u) => {
        const n = (u.it.bytes[4] | (u.it.bytes[5] << 8)) & 0xfff;
        const dels = sample(rng, 0, n - 1, 0.4).slice(0, n - 1);
        const list = dels.length > 0 ? dels : [0];
        b.u16(list.length);
        list.forEach((x) => b.u16(x));
      });
      const counts = new Bytes().u16(deleted.length).u16(updates.length).build();
      return { main: info === 0x70 ? Uint8Array.from([...new Bytes().u32(rng.int(0, 1000)).build(), ...counts]) : counts, data: b.build() };
    }
    case 0x80: case 0x90:
      return {
        main: new Bytes().u32(rng.int(0, 3)).u32(rng.int(1, 50)).u32(c.leaf ? 0 : rng.int(0, 3)).pad(4).u32(rng.int(0, 1e6)).u32(rng.int(0, 3))
          .u32(rng.int(1, 50)).u32(rng.int(1, 50)).u32(rng.int(0, 50)).build(),
        data: target === 4 ? xlMetadata({ root: rng.int(1, 9), level: rng.int(0, 3) }) : none,
      };
    case 0xa0: {
      const level = rng.pick([0, 1, 2]);
      const root = btreePage({ items: [pivotTuple(null, rng.int(1, 9)), pivotTuple(rng.int(1, 99), rng.int(1, 9))] });
      const upper = root[14] | (root[15] << 8);
      const data = target === 0 ? root.slice(upper, BLCKSZ - 16) : target === 2 ? xlMetadata({ root: 3, level }) : none;
      return { main: new Bytes().u32(3).u32(level).build(), data };
    }
    case 0xb0:
      return { main: new Bytes().u16(rng.int(0, maxoff + 1)).pad(2).u32(rng.int(1, 9)).u32(rng.int(0, 9)).u32(rng.int(1, 9)).u32(rng.int(0, 9)).build(), data: none };
    case 0xe0:
      return { main: none, data: xlMetadata({ root: rng.int(1, 9), level: rng.int(0, 3), delpages: rng.int(0, 9) }) };
    default:
      return { main: rng.bytes(rng.int(0, 30)), data: rng.bytes(rng.int(0, 30)) };
  }
}

/** The block ids each record type registers, and which are will_init. */
function blockLayout(info: number): { ids: number[]; init: number[] } {
  switch (info) {
    case 0x10: return { ids: [0, 1], init: [] };
    case 0x20: return { ids: [0, 1, 2], init: [2] };
    case 0x30: case 0x40: return { ids: [0, 1, 2, 3], init: [1] };
    case 0x80: return { ids: [0, 1, 2, 3], init: [0, 3] };
    case 0x90: return { ids: [0, 1, 2, 3, 4], init: [0, 3, 4] };
    case 0xa0: return { ids: [0, 1, 2], init: [0, 2] };
    case 0xb0: return { ids: [0, 1], init: [0] };
    case 0xe0: return { ids: [0], init: [0] };
    default: return { ids: [0], init: [] };
  }
}

function randomRecord(rng: Rng, c: PageCase): Buffer {
  const info = rng.pick(OPCODES);
  const layout = blockLayout(info);
  const ids = layout.ids.filter((_id, i) => i === 0 || rng.chance(0.85));
  const target = rng.chance(0.97) ? rng.pick(ids) : ids[0];
  const { main, data } = payload(rng, info, target, c);
  const blocks: StoredBlockSpec[] = ids.map((id) => {
    let init = layout.init.includes(id);
    if (rng.chance(0.03)) init = !init;
    return { id, blockNumber: id === 4 || (info === 0xe0) || (info === 0x20 && id === 2) || (info === 0xa0 && id === 2) ? 0 : rng.int(1, 60),
      flags: init ? WILL_INIT : 0, data: id === target && data.length > 0 ? data : undefined };
  });
  const rec = btRecord({ info, targetId: target, lsn: BigInt(rng.int(0, 0x3000)) << 4n, blocks, main });
  // Occasionally flip a byte of the payload (never the stored header: the parse view has its own tests).
  const payloadStart = 24 + blocks.length * 24;
  if (rng.chance(0.1) && rec.length > payloadStart) rec[rng.int(payloadStart, rec.length)] = rng.int(0, 256);
  return rec;
}

type Outcome = { ok: true; page: Buffer } | { ok: false; code: string; message: string };

function run(f: (page: Uint8Array) => void, page: Uint8Array): Outcome {
  const p = page.slice();
  try {
    f(p);
    return { ok: true, page: Buffer.from(p) };
  } catch (e) {
    if (!isStrataError(e)) throw e;
    return { ok: false, code: e.code, message: e.message };
  }
}

/** Items of a page as (offset, length) pairs, for a failure report. */
function layoutOf(p: Uint8Array): string {
  const out: string[] = [];
  for (let i = 1; i <= Math.min(pageGetMaxOffsetNumber(p), 2048); i++) out.push(`${itemIdGetOffset(p, i)}+${itemIdGetLength(p, i)}`);
  return out.join(' ');
}

describe('btree redo: native ≡ TS on random pages and records', () => {
  it.skipIf(!NATIVE_WANTED)(`${ITERATIONS} random (page, record) pairs give the same bytes or the same error`, () => {
    const native = nativePg();
    if (native === null) throw new Error('native PostgreSQL functions did not load');
    const rng = new Rng(0xb7ee);
    let applied = 0;
    let changed = 0;
    const failures = new Map<string, number>();
    for (let i = 0; i < ITERATIONS; i++) {
      const c = randomPage(rng);
      const rec = randomRecord(rng, c);
      const ts = run((p) => tsRedo(rec, p), c.page);
      const nat = run((p) => native.pgRedoRecord(rec, p), c.page);
      if (ts.ok !== nat.ok || (ts.ok && nat.ok && !ts.page.equals(nat.page))) {
        throw new Error(`iteration ${i}: cores disagree (info 0x${rec[17].toString(16)}, target ${rec[2]}): ` +
          `TS ${ts.ok ? 'ok' : ts.message}, native ${nat.ok ? 'ok' : nat.message}; page items ${layoutOf(c.page)}`);
      }
      if (!ts.ok && !nat.ok) {
        expect(nat.code).toBe(ts.code);
        expect(nat.message).toBe(ts.message);
        const kind = ts.message.replace(/^.*\): /, '').replace(/[0-9]+/g, 'N');
        failures.set(kind, (failures.get(kind) ?? 0) + 1);
      } else if (ts.ok) {
        applied++;
        if (!ts.page.equals(Buffer.from(c.page))) changed++;
      }
    }
    // The generator must exercise real redo, not only the error paths.
    expect(applied).toBeGreaterThan(ITERATIONS * 0.3);
    expect(changed).toBeGreaterThan(ITERATIONS * 0.25);
    expect(failures.size).toBeGreaterThan(10);
  });
});
