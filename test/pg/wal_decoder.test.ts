/**
 * The WAL decoder (both cores) on synthetic WAL built by wal_builder.ts: every header kind, images
 * (raw, hole, pglz, lz4, zstd), records split anywhere, XLOG_SWITCH, continuation at the start,
 * OVERWRITE_CONTRECORD, every validity check, the end-of-WAL versus WAL_CORRUPT rules, end LSNs and
 * bad arguments; plus a randomized differential run (random WAL, random damage, random chunking).
 * Needs no PostgreSQL.
 */
import { describe, expect, test } from 'vitest';
import { createWalDecoder, type WalDecoderOptions } from '../../lib/core/pg_decoder';
import { DecodedRecord, decodedRecords } from '../../lib/pg/wal_record';
import { IMPLEMENTATIONS } from '../helpers/cores';
import { Rng } from '../helpers/random';
import { decodeBytes, type Chunking, type DecodeOutcome } from './decode_util';
import {
  DEFAULT_SYSID, PAGE, SEGMENT, XLP_FIRST_IS_OVERWRITE_CONTRECORD, buildWal, fakePage, pglzCompress,
  recordOfSize, withoutHole, type BlockSpec, type BuiltWal, type RecordSpec,
} from './wal_builder';

const lz4 = require('lz4-napi') as { compressSync(b: Buffer): Buffer };
const zstd = require('zstd-napi') as { compress(b: Uint8Array): Buffer };

const SEG = BigInt(SEGMENT);
const lsnText = (v: bigint): string => `${(v >> 32n).toString(16).toUpperCase()}/${(v & 0xffffffffn).toString(16).toUpperCase()}`;

/** Decodes with every core and checks they agree exactly (entries, state, LSN, error code and message). */
function both(bytes: Uint8Array, opts: WalDecoderOptions, chunking: Chunking = 1 << 20, maxRecords?: () => number): DecodeOutcome {
  const outcomes = IMPLEMENTATIONS.map((impl) => decodeBytes(impl, bytes, opts, chunking, maxRecords));
  for (let i = 1; i < outcomes.length; i++) {
    expect(outcomes[i].error, IMPLEMENTATIONS[i]).toEqual(outcomes[0].error);
    expect(outcomes[i].state).toBe(outcomes[0].state);
    expect(outcomes[i].nextLsn).toBe(outcomes[0].nextLsn);
    expect(outcomes[i].count).toBe(outcomes[0].count);
    expect(outcomes[i].entries.equals(outcomes[0].entries)).toBe(true);
  }
  return outcomes[0];
}

function records(o: DecodeOutcome): DecodedRecord[] {
  return [...decodedRecords(o.entries, o.count)];
}

function decodeWal(w: BuiltWal, extra: Partial<WalDecoderOptions> = {}, chunking?: Chunking): DecodeOutcome {
  return both(w.bytes, { startLsn: w.startLsn, ...extra }, chunking);
}

const REL: [number, number, number] = [1663, 5, 16384];

describe('synthetic WAL: what the decoder returns', () => {
  test('record headers, origin, top-level xid, short and long main data, block references with SAME_REL', () => {
    const specs: RecordSpec[] = [
      { rmid: 10, info: 0x00, xid: 731, blocks: [{ id: 0, rel: REL, blkno: 7, data: Buffer.from('tuple bytes') }], main: Buffer.from([1, 2, 3]) },
      {
        rmid: 11, info: 0x40, xid: 732,
        blocks: [
          { id: 0, rel: REL, blkno: 10, data: Buffer.alloc(40, 1), flags: 0x40 },
          { id: 1, blkno: 11, data: Buffer.alloc(3, 2) },
          { id: 3, rel: [1663, 5, 16390], fork: 2, blkno: 0 },
          { id: 32, blkno: 99 },
        ],
        main: Buffer.alloc(300, 9),
      },
      { rmid: 1, info: 0x00, xid: 733, origin: 42, toplevelXid: 700, main: Buffer.alloc(20, 7) },
      { rmid: 8, info: 0x10, xid: 0, longMain: true, main: Buffer.alloc(10, 3) },
      { rmid: 2, info: 0x10, xid: 0 },
    ];
    const w = buildWal(specs);
    const o = decodeWal(w);
    expect(o.error).toBeNull();
    expect(o.state).toBe('end');
    const rs = records(o);
    expect(rs.length).toBe(specs.length);
    rs.forEach((r, i) => {
      expect(r.startLsn).toBe(w.records[i].start);
      expect(r.endLsn).toBe(w.records[i].end);
      expect(r.prevLsn).toBe(i === 0 ? 0n : w.records[i - 1].start);
      expect(r.totalLength).toBe(w.records[i].totLen);
      expect([r.rmid, r.info, r.xid]).toEqual([specs[i].rmid, specs[i].info, specs[i].xid]);
      expect(r.mainData().equals(specs[i].main ?? Buffer.alloc(0))).toBe(true);
    });
    expect(rs[0].blockData(0).toString()).toBe('tuple bytes');
    const split = rs[1].blocks();
    expect(split.map((b) => [b.id, b.spcOid, b.dbOid, b.relNumber, b.forkNum, b.blockNumber, b.dataLength, b.willInit])).toEqual([
      [0, 1663, 5, 16384, 0, 10, 40, true],
      [1, 1663, 5, 16384, 0, 11, 3, false],
      [3, 1663, 5, 16390, 2, 0, 0, false],
      [32, 1663, 5, 16390, 0, 99, 0, false],
    ]);
    expect(split[1].forkFlags).toBe(0xa0); // HAS_DATA | SAME_REL, as logged
    expect(rs[1].blockData(1).equals(Buffer.alloc(3, 2))).toBe(true);
    expect([rs[2].origin, rs[2].toplevelXid, rs[2].flags]).toEqual([42, 700, 3]);
    expect([rs[0].origin, rs[0].toplevelXid]).toEqual([null, null]);
    expect(o.nextLsn).toBe(w.records[w.records.length - 1].end);
  });

  test('images: raw, raw with hole, pglz, lz4, zstd (with and without hole), APPLY or for verification', () => {
    const cases: { page: Buffer; hole: [number, number]; method: 'raw' | 'pglz' | 'lz4' | 'zstd'; apply: boolean }[] = [];
    let seed = 0;
    for (const method of ['raw', 'pglz', 'lz4', 'zstd'] as const) {
      for (const hole of [[0, 0], [200, 5000]] as [number, number][]) {
        for (const apply of [true, false]) {
          const page = hole[1] === 0 ? fakePage(400, 400, seed) : fakePage(hole[0], hole[0] + hole[1], seed);
          if (hole[1] === 0) for (let i = 400; i < PAGE; i++) page[i] = (i * 13 + seed) & 0xff; // no hole: full page
          cases.push({ page, hole, method, apply });
          seed++;
        }
      }
    }
    const blocks = (c: (typeof cases)[number], id: number): BlockSpec => {
      const raw = withoutHole(c.page, c.hole[0], c.hole[1]);
      const stored = c.method === 'raw' ? raw : c.method === 'pglz' ? pglzCompress(raw)
        : c.method === 'lz4' ? lz4.compressSync(raw).subarray(4) : zstd.compress(raw);
      const bimgInfo = (c.hole[1] > 0 ? 0x01 : 0) | (c.apply ? 0x02 : 0) | { raw: 0, pglz: 0x04, lz4: 0x08, zstd: 0x10 }[c.method];
      return { id, rel: REL, blkno: id, image: { stored, bimgInfo, holeOffset: c.hole[0], holeLength: c.hole[1] }, data: Buffer.from([id]) };
    };
    const w = buildWal([
      { rmid: 0, info: 0xb0, blocks: cases.slice(0, 8).map(blocks) },
      { rmid: 0, info: 0xb0, blocks: cases.slice(8).map((c, i) => blocks(c, i + 8)) },
    ]);
    const o = decodeWal(w);
    expect(o.error).toBeNull();
    const rs = records(o);
    const all = [...rs[0].blocks().map((b) => [rs[0], b] as const), ...rs[1].blocks().map((b) => [rs[1], b] as const)];
    expect(all.length).toBe(cases.length);
    all.forEach(([r, b], i) => {
      const c = cases[i];
      const expected = Buffer.from(c.page);
      expected.fill(0, c.hole[0], c.hole[0] + c.hole[1]);
      expect(r.image(b.index)?.equals(expected), `${c.method} hole ${c.hole[1]}`).toBe(true);
      expect([b.imageLength, b.holeOffset, b.holeLength, b.applyImage]).toEqual([PAGE, c.hole[0], c.hole[1], c.apply]);
      expect(r.blockData(b.index).equals(Buffer.from([b.id]))).toBe(true);
    });
  });

  test('records split anywhere: inside the 24-byte header, across pages and segments, up to 3 pages long', () => {
    const specs: RecordSpec[] = [];
    // Fill so that records start at every 8-byte offset of the last 32 bytes of a page, then cross.
    for (let k = 0; k < 60; k++) specs.push(recordOfSize(26 + ((k * 1237) % 9000), k));
    specs.push(recordOfSize(3 * PAGE + 100, 99));
    const w = buildWal(specs, { startLsn: SEG + BigInt(SEGMENT - 6 * PAGE) });
    expect(w.records.some((r) => r.end > SEG * 2n)).toBe(true); // crosses into the next segment
    const offsetsInPage = new Set(w.records.map((r) => Number(r.start % BigInt(PAGE))).filter((o) => o > PAGE - 24));
    expect(offsetsInPage.size).toBeGreaterThan(0); // some headers are split
    for (const chunking of [1 << 20, 1, 5, 8191] as Chunking[]) {
      const o = decodeWal(w, {}, chunking);
      expect(o.error).toBeNull();
      expect(records(o).map((r) => r.startLsn)).toEqual(w.records.map((r) => r.start));
      records(o).forEach((r, i) => expect(r.mainData().equals(specs[i].main as Buffer)).toBe(true));
    }
  });

  test('a header split right after xl_tot_len: every 8-byte position near a page end', () => {
    for (let gap = 8; gap <= 24; gap += 8) {
      // First record fills the first page up to `gap` bytes before its end.
      const first = PAGE - 40 - gap;
      const w = buildWal([recordOfSize(first, 1), recordOfSize(500, 2), recordOfSize(30, 3)]);
      expect(Number(w.records[1].start % BigInt(PAGE))).toBe(PAGE - gap);
      const o = decodeWal(w, {}, 3);
      expect(o.count).toBe(3);
    }
  });

  test('XLOG_SWITCH ends the segment: its end LSN is the next segment, decoding resumes there', () => {
    const w = buildWal([recordOfSize(100, 1), { rmid: 0, info: 0x40 }, recordOfSize(100, 2)]);
    const o = decodeWal(w);
    const rs = records(o);
    expect(rs.length).toBe(3);
    expect(rs[1].endLsn).toBe(2n * SEG);
    expect(rs[2].startLsn).toBe(2n * SEG + 40n);
    expect(rs[2].prevLsn).toBe(rs[1].startLsn);
  });

  test('starting at a page boundary skips a continuation, also one running over several pages', () => {
    const specs = [recordOfSize(100, 1), recordOfSize(3 * PAGE, 2), recordOfSize(200, 3), recordOfSize(100, 4)];
    const w = buildWal(specs);
    // Start at the second and third pages: both begin with the continuation of record 1.
    for (const page of [1, 2, 3]) {
      const start = w.startLsn + BigInt(page * PAGE);
      const o = both(w.bytes.subarray(page * PAGE), { startLsn: start });
      expect(o.error).toBeNull();
      expect(records(o).map((r) => r.startLsn)).toEqual([w.records[2].start, w.records[3].start]);
    }
    // Starting at a record's own start (mid-page) works the same.
    const o = both(w.bytes.subarray(w.records[2].offset), { startLsn: w.records[2].start });
    expect(records(o).length).toBe(2);
  });

  test('XLP_FIRST_IS_OVERWRITE_CONTRECORD: the record in progress is abandoned, decoding restarts on that page', () => {
    const base = buildWal([recordOfSize(100, 1), recordOfSize(2 * PAGE, 2), recordOfSize(100, 3)]);
    // PostgreSQL after a crash: the rest of record 1 never reached disk; page 1 holds new WAL whose
    // first record links back to record 0.
    const page1 = base.startLsn + BigInt(PAGE);
    const tail = buildWal([{ ...recordOfSize(64, 7), prev: base.records[0].start }], {
      startLsn: page1,
      pages: new Map([[page1, { info: XLP_FIRST_IS_OVERWRITE_CONTRECORD }]]),
    });
    const bytes = Buffer.concat([base.bytes.subarray(0, PAGE), tail.bytes]);
    const o = both(bytes, { startLsn: base.startLsn });
    expect(o.error).toBeNull();
    expect(records(o).map((r) => r.startLsn)).toEqual([base.records[0].start, page1 + 24n]);
  });
});

describe('synthetic WAL: end of WAL versus WAL_CORRUPT', () => {
  const specs = Array.from({ length: 40 }, (_, i) => recordOfSize(60 + ((i * 997) % 3000), i));
  const w = buildWal(specs, { tailPages: 2 });
  const mid = 20;
  const midRec = w.records[mid];
  const before = (o: DecodeOutcome, n: number): void => {
    expect(o.count).toBe(n);
    expect(records(o).map((r) => r.startLsn)).toEqual(w.records.slice(0, n).map((r) => r.start));
  };

  test('a flipped byte in the middle: WAL_CORRUPT naming the record, nothing after it, records before it returned first', () => {
    const bytes = Buffer.from(w.bytes);
    bytes[midRec.offset + 30] ^= 0x40;
    const o = both(bytes, { startLsn: w.startLsn });
    expect(o.state).toBe('error');
    expect(o.error?.code).toBe('WAL_CORRUPT');
    expect(o.error?.message).toContain(`WAL record at ${lsnText(midRec.start)}: incorrect resource manager data checksum`);
    before(o, mid);
    // The batch that reached the bad record still returns the good ones; the next call throws, every time.
    for (const impl of IMPLEMENTATIONS) {
      const d = createWalDecoder(impl, { startLsn: w.startLsn });
      d.feed(bytes);
      d.finish();
      const first = d.decode(1_000);
      expect(first.count, impl).toBe(mid);
      for (let i = 0; i < 2; i++) expect(() => d.decode(10), impl).toThrow(/WAL_CORRUPT/);
    }
  });

  test('the same flipped byte in the last record before zeros: a clean end', () => {
    const last = w.records[w.records.length - 1];
    const bytes = Buffer.from(w.bytes);
    bytes[last.offset + 30] ^= 0x40;
    const o = both(bytes, { startLsn: w.startLsn });
    expect(o.state).toBe('end');
    before(o, w.records.length - 1);
  });

  test('xl_prev, xl_rmid and xl_tot_len failures in the middle are WAL_CORRUPT', () => {
    const cases: [Partial<RecordSpec>, string][] = [
      [{ prev: 12345n }, `record with incorrect prev-link 0/3039`],
      [{ rmidField: 50 }, 'invalid resource manager ID 50'],
      [{ totLen: 12 }, 'invalid record length: expected at least 24, got 12'],
    ];
    for (const [override, message] of cases) {
      const s = specs.map((x, i) => (i === mid ? { ...x, ...override } : x));
      const o = decodeWal(buildWal(s, { tailPages: 2 }));
      expect(o.error?.code, message).toBe('WAL_CORRUPT');
      expect(o.error?.message).toContain(`WAL record at ${lsnText(midRec.start)}: ${message}`);
      before(o, mid);
    }
  });

  test('xl_tot_len == 0 is the end of WAL even when valid pages follow', () => {
    const bytes = Buffer.from(w.bytes);
    bytes.writeUInt32LE(0, midRec.offset);
    const o = both(bytes, { startLsn: w.startLsn });
    expect(o.state).toBe('end');
    before(o, mid);
    expect(o.nextLsn).toBe(w.records[mid - 1].end);
  });

  test('a zeroed tail and a torn last record are clean ends; before finish() they ask for more input', () => {
    const zeroed = Buffer.from(w.bytes);
    zeroed.fill(0, midRec.offset);
    before(both(zeroed, { startLsn: w.startLsn }), mid);
    const torn = w.bytes.subarray(0, midRec.offset + 10);
    const o = both(torn, { startLsn: w.startLsn });
    expect(o.state).toBe('end');
    before(o, mid);
    for (const impl of IMPLEMENTATIONS) {
      const d = createWalDecoder(impl, { startLsn: w.startLsn });
      d.feed(torn);
      const r = d.decode(1000);
      expect([r.count, r.state], impl).toEqual([mid, 'need-more']);
      d.feed(w.bytes.subarray(torn.length));
      expect(d.decode(1000).count, impl).toBe(w.records.length - mid);
    }
  });

  test('a record whose continuation page is zero or stale (a recycled segment) ends the WAL cleanly', () => {
    const long = buildWal([recordOfSize(100, 1), recordOfSize(3 * PAGE, 2), recordOfSize(100, 3)], { tailPages: 1 });
    const old = buildWal(Array.from({ length: 30 }, (_, i) => recordOfSize(700, i)), { startLsn: SEG * 5n });
    for (const fill of ['zero', 'stale']) {
      const bytes = Buffer.from(long.bytes);
      if (fill === 'zero') bytes.fill(0, 2 * PAGE);
      else old.bytes.copy(bytes, 2 * PAGE, 2 * PAGE, bytes.length);
      const o = both(bytes, { startLsn: long.startLsn });
      expect(o.state, fill).toBe('end');
      expect(o.count, fill).toBe(1);
      // A checksum failure with a stale page after it is still the end: nothing valid follows.
      bytes[long.records[1].offset + 50] ^= 1;
      expect(both(bytes, { startLsn: long.startLsn }).state, fill).toBe('end');
    }
  });

  test('a continuation page that disagrees with its record is WAL_CORRUPT', () => {
    const long = buildWal([recordOfSize(100, 1), recordOfSize(2 * PAGE, 2), recordOfSize(100, 3)], { tailPages: 1 });
    const page1 = long.startLsn + BigInt(PAGE);
    const noFlag = Buffer.from(long.bytes);
    noFlag.writeUInt16LE(0, PAGE + 2);
    let o = both(noFlag, { startLsn: long.startLsn });
    expect(o.error?.message).toBe(`WAL_CORRUPT: WAL record at ${lsnText(long.records[1].start)}: there is no contrecord flag at ${lsnText(page1)}; valid WAL follows at ${lsnText(page1)}`);
    const badLen = Buffer.from(long.bytes);
    badLen.writeUInt32LE(5, PAGE + 16);
    o = both(badLen, { startLsn: long.startLsn });
    expect(o.error?.message).toContain('invalid contrecord length 5 (expected ');
    expect(o.count).toBe(1);
  });

  test('a page that begins with a continuation when no record is in progress is WAL_CORRUPT', () => {
    const page1 = SEG + BigInt(PAGE);
    const specs = [recordOfSize(PAGE - 40, 1), recordOfSize(200, 2), recordOfSize(3 * PAGE, 3)];
    const good = buildWal(specs);
    expect(good.records[0].end).toBe(page1); // the first record fills the first page exactly
    const stray = buildWal(specs, { pages: new Map([[page1, { info: 0x1 }]]) });
    const o = both(stray.bytes, { startLsn: stray.startLsn });
    expect(o.error?.message).toBe(`WAL_CORRUPT: WAL page at ${lsnText(page1)}: page begins with a continuation record but none is in progress; valid WAL follows at ${lsnText(page1)}`);
    expect(o.count).toBe(1);
  });

  test('page headers: bad magic mid-WAL is corrupt; another version, segment or page size is unsupported; sysid and timelines', () => {
    const long = buildWal(Array.from({ length: 30 }, (_, i) => recordOfSize(900, i)), { tailPages: 1 });
    const p2 = long.startLsn + 2n * BigInt(PAGE);
    const magic = Buffer.from(long.bytes);
    magic.writeUInt16LE(0xd10f, 2 * PAGE);
    let o = both(magic, { startLsn: long.startLsn });
    expect(o.error?.code).toBe('WAL_CORRUPT');
    expect(o.error?.message).toContain(`continuation page ${lsnText(p2)}: invalid magic number D10F`);
    const v16 = Buffer.from(long.bytes);
    v16.writeUInt16LE(0xd113, 0);
    o = both(v16, { startLsn: long.startLsn });
    expect(o.error).toEqual({ code: 'WAL_UNSUPPORTED', message: `WAL_UNSUPPORTED: WAL page at ${lsnText(long.startLsn)}: page magic D113 is not PostgreSQL 15's D110` });
    const seg = Buffer.from(long.bytes);
    seg.writeUInt32LE(32 * 1024 * 1024, 32);
    expect(both(seg, { startLsn: long.startLsn }).error?.code).toBe('WAL_UNSUPPORTED');
    const blk = Buffer.from(long.bytes);
    blk.writeUInt32LE(16384, 36);
    expect(both(blk, { startLsn: long.startLsn }).error?.message).toContain('WAL page size 16384 bytes');
    o = both(long.bytes, { startLsn: long.startLsn, systemId: DEFAULT_SYSID + 1n });
    expect(o.error?.message).toContain(`WAL is from database system ${DEFAULT_SYSID}, expected ${DEFAULT_SYSID + 1n}`);
    expect(both(long.bytes, { startLsn: long.startLsn, systemId: DEFAULT_SYSID }).error).toBeNull();
    const tli = buildWal([recordOfSize(100, 0)], { tli: 3 });
    expect(both(tli.bytes, { startLsn: tli.startLsn, timeline: 2 }).error?.message).toContain('timeline 3 is above the expected timeline 2');
    const back = buildWal(Array.from({ length: 10 }, (_, i) => recordOfSize(2000, i)), { tli: 2, pages: new Map([[SEG + 8192n, { tli: 1 }]]) });
    expect(both(back.bytes, { startLsn: back.startLsn }).error?.message).toContain('out-of-sequence timeline 1 (after 2)');
    const noLong = Buffer.from(long.bytes);
    noLong.writeUInt16LE(0, 2);
    // The first page of a segment without a long header, with nothing valid after it, ends the WAL.
    expect(both(noLong.subarray(0, PAGE), { startLsn: long.startLsn }).state).toBe('end');
    expect(both(noLong, { startLsn: long.startLsn }).error?.message).toContain('no long header at a segment start');
  });

  test('end LSN: decoding stops there; WAL that ends before it is WAL_CORRUPT', () => {
    const stopAt = w.records[10].start;
    let o = both(w.bytes, { startLsn: w.startLsn, endLsn: stopAt });
    expect([o.state, o.count, o.nextLsn]).toEqual(['end', 10, stopAt]);
    // An end LSN inside a record returns the records that end before it.
    o = both(w.bytes, { startLsn: w.startLsn, endLsn: stopAt + 16n });
    expect([o.state, o.count]).toEqual(['end', 10]);
    const last = w.records[w.records.length - 1];
    o = both(w.bytes, { startLsn: w.startLsn, endLsn: last.end });
    expect([o.state, o.count]).toEqual(['end', w.records.length]);
    o = both(w.bytes, { startLsn: w.startLsn, endLsn: last.end + 8192n });
    expect(o.error).toEqual({ code: 'WAL_CORRUPT', message: `WAL_CORRUPT: WAL ends at ${lsnText(last.end)}, before the requested end LSN ${lsnText(last.end + 8192n)}` });
    expect(o.count).toBe(w.records.length);
  });

  test('bad arguments', () => {
    for (const impl of IMPLEMENTATIONS) {
      const bad = (opts: WalDecoderOptions, re: RegExp): void => {
        expect(() => createWalDecoder(impl, opts), impl).toThrow(re);
      };
      bad({ startLsn: SEG + 4n }, /BAD_ARGUMENT.*not 8-byte aligned/);
      bad({ startLsn: SEG + 16n }, /BAD_ARGUMENT.*inside a page header/);
      bad({ startLsn: SEG + 8192n + 8n }, /BAD_ARGUMENT.*inside a page header/);
      bad({ startLsn: SEG, endLsn: 8n }, /BAD_ARGUMENT.*before the start LSN/);
      bad({ startLsn: 1n << 60n }, /BAD_ARGUMENT/);
      const d = createWalDecoder(impl, { startLsn: SEG });
      expect(() => d.decode(0), impl).toThrow(/BAD_ARGUMENT/);
      d.finish();
      expect(() => d.feed(Buffer.alloc(1)), impl).toThrow(/BAD_ARGUMENT.*after finish/);
      expect(d.decode(5).state, impl).toBe('end');
    }
  });
});

describe('synthetic WAL: DecodeXLogRecord checks', () => {
  const image = (bimgInfo: number, stored: Buffer, holeOffset: number, holeLength?: number): BlockSpec => ({
    id: 0, rel: REL, blkno: 1, image: { stored, bimgInfo, holeOffset, holeLength },
  });
  const cases: [string, RecordSpec][] = [
    ['out-of-order block_id 1', { rmid: 10, info: 0, blocks: [{ id: 1, rel: REL, blkno: 1 }, { id: 1, blkno: 2 }] }],
    ['invalid block_id 33', { rmid: 10, info: 0, blocks: [{ id: 33, rel: REL, blkno: 1 }] }],
    ['BKPBLOCK_HAS_DATA set, but no data included', { rmid: 10, info: 0, blocks: [{ id: 0, rel: REL, blkno: 1, forkFlagsField: 0x20 }] }],
    ['BKPBLOCK_HAS_DATA not set, but data length is 4', { rmid: 10, info: 0, blocks: [{ id: 0, rel: REL, blkno: 1, data: Buffer.alloc(4), forkFlagsField: 0x00 }] }],
    ['BKPBLOCK_SAME_REL set but no previous rel', { rmid: 10, info: 0, blocks: [{ id: 0, blkno: 1 }] }],
    ['record with invalid length', { rmid: 10, info: 0, blocks: [{ id: 0, rel: REL, blkno: 1, data: Buffer.alloc(4), dataLengthField: 9 }] }],
    ['BKPIMAGE_HAS_HOLE set, but hole offset 0 length 100 block image length 8092', { rmid: 0, info: 0xb0, blocks: [image(0x03, Buffer.alloc(8092), 0)] }],
    ['BKPIMAGE_HAS_HOLE not set, but hole offset 5 length 0', { rmid: 0, info: 0xb0, blocks: [image(0x02, Buffer.alloc(8192), 5)] }],
    // (PostgreSQL's "neither HAS_HOLE nor COMPRESSED" check cannot fire first: an uncompressed image
    // shorter than a page has a computed hole length, which the check before it rejects.)
    ['BKPIMAGE_HAS_HOLE not set, but hole offset 0 length 192', { rmid: 0, info: 0xb0, blocks: [image(0x02, Buffer.alloc(8000), 0)] }],
    ['BKPIMAGE_COMPRESSED set, but block image length 8192', { rmid: 0, info: 0xb0, blocks: [image(0x06, Buffer.alloc(8192), 0)] }],
    ['hole offset 8000 length 1000 runs past the page', { rmid: 0, info: 0xb0, blocks: [image(0x07, Buffer.alloc(50), 8000, 1000)] }],
    ['block 0 image: could not decompress (pglz)', { rmid: 0, info: 0xb0, blocks: [image(0x06, Buffer.from([0xff, 1, 0]), 0)] }],
    ['block 0 image: could not decompress (lz4)', { rmid: 0, info: 0xb0, blocks: [image(0x0a, Buffer.from([0x10, 1]), 0)] }],
    ['block 0 image: could not decompress (zstd)', { rmid: 0, info: 0xb0, blocks: [image(0x12, zstd.compress(Buffer.alloc(100)), 0)] }],
  ];
  test.each(cases)('%s: WAL_CORRUPT when WAL follows, the end of WAL when not', (message, bad) => {
    const specs = [recordOfSize(100, 1), bad, recordOfSize(3 * PAGE, 2)];
    const w = buildWal(specs, { tailPages: 1 });
    const o = decodeWal(w);
    expect(o.error?.code).toBe('WAL_CORRUPT');
    expect(o.error?.message).toContain(`WAL record at ${lsnText(w.records[1].start)}: ${message}; valid WAL follows at`);
    expect(o.count).toBe(1);
    const alone = buildWal(specs.slice(0, 2), { tailPages: 1 });
    const end = decodeWal(alone);
    expect([end.state, end.count]).toEqual(['end', 1]);
  });
});

describe('synthetic WAL: randomized differential', () => {
  test('random WAL, random damage, random chunking: both cores agree on every outcome', () => {
    const rng = new Rng(2024);
    let corrupt = 0;
    let ended = 0;
    for (let iter = 0; iter < 150; iter++) {
      const specs: RecordSpec[] = [];
      const n = rng.int(1, 25);
      for (let i = 0; i < n; i++) {
        if (rng.chance(0.2)) {
          const page = fakePage(100 + rng.int(0, 50) * 4, 3000 + rng.int(0, 100) * 8, iter * 31 + i);
          const hole: [number, number] = [page.readUInt16LE(12), page.readUInt16LE(14) - page.readUInt16LE(12)];
          const raw = withoutHole(page, hole[0], hole[1]);
          const method = rng.pick(['raw', 'lz4', 'zstd'] as const);
          const stored = method === 'raw' ? raw : method === 'lz4' ? lz4.compressSync(raw).subarray(4) : zstd.compress(raw);
          const info = 0x01 | (rng.chance(0.5) ? 0x02 : 0) | { raw: 0, lz4: 0x08, zstd: 0x10 }[method];
          specs.push({ rmid: 10, info: 0x20, xid: i, blocks: [{ id: 0, rel: REL, blkno: i, image: { stored, bimgInfo: info, holeOffset: hole[0], holeLength: hole[1] } }, { id: 1, blkno: i + 1, data: rng.bytes(rng.int(1, 200)) }], main: rng.bytes(rng.int(0, 40)) });
        } else {
          specs.push(recordOfSize(rng.int(26, rng.chance(0.1) ? 20_000 : 600), iter * 100 + i));
        }
      }
      const start = SEG + BigInt(rng.int(0, 2047) * PAGE);
      const w = buildWal(specs, { startLsn: start, tailPages: rng.int(0, 2) });
      const bytes = Buffer.from(w.bytes);
      const damage = rng.int(0, 4);
      if (damage === 1) for (let k = rng.int(1, 4); k > 0; k--) bytes[rng.int(0, bytes.length)] ^= 1 << rng.int(0, 8);
      if (damage === 2) bytes.fill(0, rng.int(0, bytes.length));
      const cut = damage === 3 ? rng.int(0, bytes.length) : bytes.length;
      const chunk = rng.pick([1, 7, 512, 8192, 1 << 20]);
      const o = both(bytes.subarray(0, cut), { startLsn: start }, () => rng.int(1, chunk + 1), () => rng.int(1, 6));
      if (o.state === 'error') corrupt++;
      else ended++;
      if (damage === 0) expect(o.count).toBe(specs.length);
    }
    expect(corrupt).toBeGreaterThan(5);
    expect(ended).toBeGreaterThan(50);
  });
});

describe('entries as views', () => {
  test('DecodedRecord checks entry bounds', () => {
    expect(() => new DecodedRecord(Buffer.alloc(10), 0)).toThrow(/BAD_ARGUMENT/);
    const b = Buffer.alloc(60);
    b.writeUInt32LE(500, 0);
    expect(() => new DecodedRecord(b, 0)).toThrow(/claims 500 bytes/);
  });
});
