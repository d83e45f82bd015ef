/**
 * The stored PostgreSQL record's parse view (native/pg/redo_record.cc, lib/core/ts/pg/
 * redo_record.ts): well-formed values parse to the right fields; every malformed variant is
 * rejected with the same text by both cores, and random mutations never crash either.
 */
import { describe, expect, it } from 'vitest';
import { RedoRecordView, checkRedoRecord } from '../../lib/core/ts/pg/redo_record';
import { Rng } from '../helpers/random';
import { NATIVE_SKIP_NOTE } from '../helpers/cores';
import { nativePg } from '../helpers/pg_native';
import { Bytes, WILL_INIT, storedRecord } from '../helpers/pg_records';

const NATIVE = nativePg();

const good = storedRecord({
  clusterFlags: 1,
  targetId: 1,
  lsn: 0x1_0000_2a58n,
  xid: 745,
  rmid: 10,
  info: 0x20,
  blocks: [
    { id: 0, blockNumber: 7, hasData: true },
    { id: 1, flags: 0x80, blockNumber: 3, data: Uint8Array.of(9, 8, 7) },
  ],
  main: new Bytes().u32(745).u16(2).u8(0).u8(0).u32(0).u16(5).build(),
});

/** Both cores' verdict on a value: null or the error text; they must agree. */
function verdict(rec: Uint8Array): string | null {
  const ts = checkRedoRecord(rec, 0, rec.length);
  if (NATIVE !== null) expect(NATIVE.pgCheckRedoRecord(rec)).toBe(ts);
  return ts;
}

function mutate(f: (b: Buffer) => void): Buffer {
  const b = Buffer.from(good);
  f(b);
  return b;
}

function noTarget(): Buffer {
  const b = storedRecord({ targetId: 1, lsn: 1n, rmid: 10, info: 0, blocks: [{ id: 0, blockNumber: 1 }, { id: 1, blockNumber: 2 }] });
  b[2] = 5;
  return b;
}

describe(`stored PostgreSQL record (tag 4)${NATIVE_SKIP_NOTE}`, () => {
  it('parses header, block references, target data and main data', () => {
    expect(verdict(good)).toBeNull();
    const v = new RedoRecordView();
    const padded = Buffer.concat([Buffer.alloc(5, 0xee), good]);
    expect(v.parse(padded, 5, good.length)).toBeNull();
    expect([v.clusterFlags, v.targetId, v.xid, v.rmid, v.info, v.nblocks, v.targetIndex]).toEqual([1, 1, 745, 10, 0x20, 2, 1]);
    expect([v.lsnHi, v.lsnLo]).toEqual([1, 0x2a58]);
    expect([...padded.subarray(v.blockDataOff, v.blockDataOff + v.blockDataLen)]).toEqual([9, 8, 7]);
    expect(v.mainDataLen).toBe(14);
    expect(v.mainDataOff + v.mainDataLen).toBe(5 + good.length);
    expect(v.findBlock(0)?.blockNumber).toBe(7);
    expect(v.target().flags & 0x80).toBe(0x80);
    expect(v.findBlock(2)).toBeNull();
    expect(v.willInit()).toBe(false);
    expect(v.hintBitsLogged()).toBe(true);
  });

  it.each([
    ['empty', Buffer.alloc(0), 'PostgreSQL record shorter than its header'],
    ['wrong tag', mutate((b) => { b[0] = 3; }), 'not a PostgreSQL record'],
    ['unknown cluster flag', mutate((b) => { b[1] = 4; }), 'unknown cluster flags'],
    ['reserved byte', mutate((b) => { b[19] = 1; }), 'reserved header byte not zero'],
    ['no blocks', mutate((b) => { b[18] = 0; }), 'PostgreSQL record without block references'],
    ['34 blocks', mutate((b) => { b[18] = 34; }), 'more than 33 block references'],
    ['refs cut short', good.subarray(0, 60), 'PostgreSQL record shorter than its block references'],
    ['block id 33', mutate((b) => { b[24] = 33; }), 'block id above 32'],
    ['fork 4', mutate((b) => { b[25] = 4; }), 'fork number above 3'],
    ['low flag bits', mutate((b) => { b[26] |= 1; }), 'block flags with low bits set'],
    ['bimg without image', mutate((b) => { b[27] = 2; }), 'image info on a block without an image'],
    ['unknown bimg bits', mutate((b) => { b[26] |= 0x10; b[27] = 0x40; }), 'unknown image info bits'],
    ['reserved block field', mutate((b) => { b[46] = 1; }), 'reserved block field not zero'],
    ['other block data length', mutate((b) => { b[44] = 1; }), 'data length stored for a block other than the target'],
    ['HAS_DATA without data', mutate((b) => { b[48 + 20] = 0; }), 'target data length disagrees with HAS_DATA'],
    ['ids out of order', mutate((b) => { b[24] = 2; }), 'block references not in increasing id order'],
    ['no target', noTarget(), 'no block reference with the target id'],
    ['one byte short', good.subarray(0, good.length - 1), 'PostgreSQL record length does not add up'],
    ['one byte long', Buffer.concat([good, Buffer.of(0)]), 'PostgreSQL record length does not add up'],
    ['main length huge', mutate((b) => { b.writeUInt32LE(0xffffffff, 20); }), 'PostgreSQL record length does not add up'],
  ])('rejects %s', (_name, rec, text) => {
    expect(verdict(rec)).toBe(text);
  });

  it('accepts every block id up to 32 and a will_init target without data', () => {
    const blocks = Array.from({ length: 33 }, (_, id) => ({ id, blockNumber: id }));
    const rec = storedRecord({ targetId: 32, lsn: 1n, rmid: 0, info: 0xb0, blocks: blocks.map((b) => (b.id === 32 ? { ...b, flags: WILL_INIT } : b)) });
    expect(verdict(rec)).toBeNull();
    const v = new RedoRecordView();
    expect(v.parse(rec, 0, rec.length)).toBeNull();
    expect(v.willInit()).toBe(true);
  });

  it('random mutations and truncations: both cores agree and never crash (3000 values)', () => {
    const rng = new Rng(0x5eed);
    let accepted = 0;
    for (let i = 0; i < 3000; i++) {
      const b = Buffer.from(good);
      for (let k = rng.int(1, 4); k > 0; k--) b[rng.int(0, b.length)] = rng.chance(0.5) ? rng.int(0, 256) : rng.pick([0, 1, 2, 0x20, 0x40]);
      const cut = rng.chance(0.2) ? b.subarray(0, rng.int(0, b.length)) : b;
      if (verdict(cut) === null) accepted++;
    }
    expect(accepted).toBeGreaterThan(0);
  });
});
