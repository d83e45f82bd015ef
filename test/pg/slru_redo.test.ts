/**
 * Strata's SLRU records (rmgr 255: CLOG_SET, MULTIXACT_OFFSETS, MULTIXACT_MEMBERS;
 * lib/core/ts/pg/slru_redo.ts, native/pg/slru_redo.cc) built by lib/pg/slru_records.ts: each sets
 * exactly PostgreSQL's bits and bytes (checked against layouts written here from clog.c and
 * multixact.c), malformed ones fail with REDO_FAILED, no SLRU page gets a checksum, and the two
 * cores agree byte for byte and message for message on thousands of random records, valid and
 * damaged.
 */
import { describe, expect, it } from 'vitest';
import { redoRecord } from '../../lib/core/ts/pg/rmgr';
import { isStrataError } from '../../lib/errors';
import { clogSetRecord, multixactMembersRecord, multixactOffsetsRecord, strataRecord } from '../../lib/pg/slru_records';
import { NATIVE_SKIP_NOTE } from '../helpers/cores';
import { nativePg } from '../helpers/pg_native';
import { clogStatus, memberAt } from '../helpers/pg_state_check';
import { Rng } from '../helpers/random';

const NATIVE = nativePg();
const LSN = 0x1_2345_6780n;
const STORED_HEADER = 24;

/** Redo in the TS core; the page or the error's message ("CODE: …"). */
function tsRedo(rec: Buffer, page: Buffer): Buffer | string {
  const p = Buffer.from(page);
  try {
    redoRecord(rec, 0, rec.length, p, 0);
    return p;
  } catch (e) {
    if (!isStrataError(e)) throw e;
    return e.message;
  }
}

function nativeRedo(rec: Buffer, page: Buffer): Buffer | string {
  if (NATIVE === null) throw new Error('native core not loaded');
  const p = Buffer.from(page);
  try {
    NATIVE.pgRedoRecord(rec, p);
    return p;
  } catch (e) {
    if (!isStrataError(e)) throw e;
    return e.message;
  }
}

/** Page for page (Buffer.equals: a deep compare of 8 KB pages is slow) or message for message. */
function expectSame(a: Buffer | string, b: Buffer | string, what: string): void {
  if (typeof a === 'string' || typeof b === 'string') expect(a, what).toEqual(b);
  else expect(a.equals(b), what).toBe(true);
}

/** Redo in every core; they must agree; returns the page (throws the error text). */
function redo(rec: Buffer, page: Buffer = Buffer.alloc(8192)): Buffer {
  const ts = tsRedo(rec, page);
  if (NATIVE !== null) expectSame(nativeRedo(rec, page), ts, 'native vs TS');
  if (typeof ts === 'string') throw new Error(ts);
  return ts;
}

function redoError(rec: Buffer, page: Buffer = Buffer.alloc(8192)): string {
  const ts = tsRedo(rec, page);
  if (NATIVE !== null) expectSame(nativeRedo(rec, page), ts, 'native vs TS');
  expect(typeof ts).toBe('string');
  return ts as string;
}

/** The record with its main data (after the one block reference) replaced by `mutate`'s result. */
function withMain(rec: Buffer, mutate: (main: Buffer) => Buffer): Buffer {
  const main = mutate(Buffer.from(rec.subarray(STORED_HEADER + 24)));
  const out = Buffer.concat([rec.subarray(0, STORED_HEADER + 24), main]);
  out.writeUInt32LE(main.length, 20);
  return out;
}

describe(`SLRU records (rmgr 255), both cores${NATIVE_SKIP_NOTE}`, () => {
  it('CLOG_SET sets two status bits per xid on its page and nothing else (list and bitmap forms)', () => {
    const page = Buffer.alloc(8192);
    page[0] = 0b01_01_01_01; // xids 0..3 committed already
    const after = redo(clogSetRecord(1, 1, [32768 + 5, 32768 + 6, 65535], LSN, 9, false), page.fill(0xff, 100, 101));
    expect(clogStatus(after, 32768 + 5)).toBe(1);
    expect(clogStatus(after, 32768 + 6)).toBe(1);
    expect(clogStatus(after, 65535)).toBe(1);
    expect(after[0]).toBe(0b01_01_01_01);
    expect(after[100]).toBe(0xff);
    const aborted = redo(clogSetRecord(1, 2, [32768 + 5], LSN, 9, false), after);
    expect(clogStatus(aborted, 32768 + 5)).toBe(2);
    expect(clogStatus(aborted, 32768 + 6)).toBe(1);
    // A tree of 3 000 xids on one page is a bitmap (the list would pass 4 096 bytes).
    const xids = Array.from({ length: 3000 }, (_, i) => 7 + 3 * i);
    const big = clogSetRecord(0, 1, xids, LSN, 7, false);
    expect(big.length).toBe(STORED_HEADER + 24 + 8 + 4096);
    const bits = redo(big);
    const set = new Set(xids);
    const wrong: number[] = [];
    for (let x = 0; x < 32768; x++) if (clogStatus(bits, x) !== (set.has(x) ? 1 : 0)) wrong.push(x);
    expect(wrong).toEqual([]);
  });

  it('MULTIXACT_OFFSETS writes each (multixact, offset) entry; MULTIXACT_MEMBERS each xid and flag byte, in groups of four', () => {
    const off = redo(multixactOffsetsRecord(1, [[2048 + 7, 1234], [2048 + 8, 1236]], LSN, 0, true));
    expect(off.readUInt32LE(7 * 4)).toBe(1234);
    expect(off.readUInt32LE(8 * 4)).toBe(1236);
    expect(off.readUInt32LE(6 * 4)).toBe(0);
    const first = 1636 * 3 + 1630; // six members left on page 3
    const members = [0, 1, 2, 3, 4, 5].map((i) => ({ xid: 1000 + i, status: i }));
    const mem = redo(multixactMembersRecord(3, first, members, LSN, 0, true));
    members.forEach((m, i) => expect(memberAt(mem, first + i)).toEqual(m));
    // Group 407 (members 1628..1631 of the page): flags at byte 8140, xids from 8144.
    expect(mem[8140 + 2]).toBe(0);
    expect(mem.readUInt32LE(8144 + 2 * 4)).toBe(1000);
    // Offsets wrap at 2^32 within a page: the last page of the members SLRU.
    const lastPage = Math.floor(0xffff_ffff / 1636);
    const wrapFirst = 0xffff_fffe;
    const tail = redo(multixactMembersRecord(lastPage, wrapFirst, [{ xid: 5, status: 1 }, { xid: 6, status: 2 }], LSN, 0, true));
    expect(memberAt(tail, wrapFirst)).toEqual({ xid: 5, status: 1 });
    expect(memberAt(tail, 0xffff_ffff)).toEqual({ xid: 6, status: 2 });
  });

  it('a checksummed cluster flag gives an SLRU page no checksum (it has no page header)', () => {
    const rec = clogSetRecord(0, 1, [100], LSN, 100, true);
    rec[1] = 0x01; // data checksums
    const page = redo(rec);
    expect(page.readUInt16LE(8)).toBe(0);
    expect(clogStatus(page, 100)).toBe(1);
  });

  it('malformed records fail with REDO_FAILED naming the record, LSN and block, identically in both cores', () => {
    const rec = clogSetRecord(2, 1, [65536 + 1], LSN, 1, true);
    expect(redoError(clogSetRecord(2, 1, [1], LSN, 1, true))).toMatch(/^REDO_FAILED: Strata\/CLOG_SET at 1\/23456780, block id 0 \(block 2\): xid 1 is not on pg_xact page 2$/);
    expect(redoError(withMain(rec, (m) => { m[0] = 3; return m; }))).toMatch(/status 3 is neither committed nor aborted/);
    expect(redoError(withMain(rec, (m) => { m[2] = 1; return m; }))).toMatch(/reserved bytes not zero/);
    expect(redoError(withMain(rec, (m) => { m[1] = 7; return m; }))).toMatch(/form 7 is neither a list nor a bitmap/);
    expect(redoError(withMain(rec, (m) => m.subarray(0, 10)))).toMatch(/does not hold 1 entries/);
    expect(redoError(withMain(rec, (m) => m.subarray(0, 5)))).toMatch(/main data shorter than the CLOG_SET header/);
    const bitmap = clogSetRecord(0, 2, Array.from({ length: 2000 }, (_, i) => i), LSN, 0, true);
    expect(redoError(withMain(bitmap, (m) => { m.writeUInt32LE(1999, 4); return m; }))).toMatch(/bitmap holds 2000 xids, its count says 1999/);
    const wrongSlru = strataRecord(0x20, 0, LSN, 0, { spcOid: 0, dbOid: 0, relNumber: 1, forkNum: 0, blockNumber: 0 }, rec.subarray(STORED_HEADER + 24));
    expect(redoError(wrongSlru)).toMatch(/CLOG_SET record on a block that is not a page of its SLRU/);
    expect(redoError(multixactOffsetsRecord(0, [[2048, 1]], LSN, 0, true))).toMatch(/multixact 2048 is not on offsets page 0/);
    expect(redoError(multixactMembersRecord(0, 1635, [{ xid: 1, status: 0 }, { xid: 2, status: 0 }], LSN, 0, true))).toMatch(/member offset 1636 is not on members page 0/);
    expect(redoError(multixactMembersRecord(0, 0, [{ xid: 1, status: 6 }], LSN, 0, true))).toMatch(/member status 6 is not a MultiXactStatus/);
    expect(redoError(withMain(multixactOffsetsRecord(0, [[1, 1]], LSN, 0, true), (m) => { m.writeUInt32LE(0, 0); return m.subarray(0, 4); }))).toMatch(/does not hold 0 entries/);
  });

  it('random records, valid and damaged, give the same page or the same error in both cores', () => {
    const rng = new Rng(0x5e7);
    const counts = { ok: 0, failed: 0 };
    let page: Buffer = Buffer.alloc(8192);
    for (let i = 0; i < 3000; i++) {
      const kind = rng.int(0, 3);
      const pageno = rng.int(0, 4);
      let rec: Buffer;
      if (kind === 0) {
        const n = rng.chance(0.1) ? rng.int(1025, 4000) : rng.int(1, 40);
        const xids = Array.from({ length: n }, () => pageno * 32768 + rng.int(0, 32768));
        rec = clogSetRecord(pageno, rng.int(1, 3), [...new Set(xids)], LSN + BigInt(i * 8), rng.int(0, 1 << 30), rng.chance(0.2));
      } else if (kind === 1) {
        rec = multixactOffsetsRecord(pageno, Array.from({ length: rng.int(1, 3) }, () => [pageno * 2048 + rng.int(0, 2048), rng.int(0, 2 ** 31)] as [number, number]), LSN, 0, rng.chance(0.2));
      } else {
        const first = pageno * 1636 + rng.int(0, 1636);
        const n = rng.int(1, Math.min(40, pageno * 1636 + 1636 - first) + 1);
        rec = multixactMembersRecord(pageno, first, Array.from({ length: n }, () => ({ xid: rng.int(3, 2 ** 31), status: rng.int(0, 6) })), LSN, 0, rng.chance(0.2));
      }
      if (rng.chance(0.25)) {
        const at = rng.int(STORED_HEADER, rec.length);
        rec[at] ^= 1 << rng.int(0, 8);
      }
      const ts = tsRedo(rec, page);
      if (NATIVE !== null) expectSame(nativeRedo(rec, page), ts, `record ${i}`);
      if (typeof ts === 'string') {
        counts.failed++;
      } else {
        counts.ok++;
        page = ts;
      }
    }
    expect(counts.ok).toBeGreaterThan(1500);
    expect(counts.failed).toBeGreaterThan(100);
  });
});
