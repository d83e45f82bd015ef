/**
 * End of WAL versus WAL_CORRUPT on real PostgreSQL 15 WAL (both cores, same outcome): a flipped
 * byte in the middle is WAL_CORRUPT naming the record's LSN with nothing after it returned; a zeroed
 * tail, a torn last record and a recycled (stale) segment tail are clean ends; an end LSN past the
 * WAL is WAL_CORRUPT. Also the directory source (lib/pg/wal_source.ts) on the real pg_wal/.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { formatLsn } from '../../lib/lsn';
import { walChunks } from '../../lib/pg/wal_source';
import { createWalDecoder } from '../../lib/core/pg_decoder';
import { decodedRecords, type DecodedRecord } from '../../lib/pg/wal_record';
import { IMPLEMENTATIONS } from '../helpers/cores';
import { decodeBytes, readWalDir, type DecodeOutcome } from './decode_util';
import { pgAvailability } from '../helpers/pg_cluster';
import { getPgFixture, type PgFixture } from '../helpers/pg_fixture';

const pg = pgAvailability();
/** initdb's first WAL: the start of segment 1, where the fixtures' wal/ begins. */
const FIRST_WAL_LSN = 0x1000000n;
const skipReason = pg.ok ? '' : ` — skipped: ${pg.reason}`;
const PAGE = 8192;
const SEGMENT = 16 * 1024 * 1024;
/** Enough real WAL for every case: three segments. */
const WINDOW = 3 * SEGMENT;

let fixture: PgFixture;
let wal: Buffer;
let ref: DecodeOutcome;
let recs: DecodedRecord[];

/** Both cores on the same damaged bytes; they must agree on everything. */
function both(bytes: Buffer, endLsn?: bigint): DecodeOutcome {
  const outs = IMPLEMENTATIONS.map((impl) => decodeBytes(impl, bytes, { startLsn: FIRST_WAL_LSN, endLsn }, 1 << 20));
  for (const o of outs.slice(1)) {
    expect(o.error).toEqual(outs[0].error);
    expect([o.state, o.count, o.nextLsn]).toEqual([outs[0].state, outs[0].count, outs[0].nextLsn]);
    expect(o.entries.equals(outs[0].entries)).toBe(true);
  }
  return outs[0];
}

/** The stream offset of an LSN. */
const at = (lsn: bigint): number => Number(lsn - FIRST_WAL_LSN);

/** The records before index i, exactly as the undamaged decode returned them. */
function expectPrefix(o: DecodeOutcome, i: number): void {
  expect(o.count).toBe(i);
  const prefix = Buffer.concat(recs.slice(0, i).map((r) => r.bytes()));
  expect(o.entries.equals(prefix)).toBe(true);
}

/** A record in the middle of the window, whose bytes fit within one page (or span pages). */
function pick(spanning: boolean): number {
  const lo = Math.floor(recs.length / 3);
  for (let i = lo; i < recs.length; i++) {
    const r = recs[i];
    const inPage = Number(r.startLsn % BigInt(PAGE)) + r.totalLength <= PAGE;
    if (inPage !== spanning && at(r.endLsn) < WINDOW - 4 * PAGE && r.totalLength > 100) return i;
  }
  throw new Error('no suitable record');
}

describe('real PostgreSQL 15 WAL: end of WAL versus corruption', () => {
  beforeAll(async () => {
    if (!pg.ok) return;
    fixture = await getPgFixture('plain');
    expect(fixture.walFiles[0]).toBe('000000010000000000000001');
    wal = readWalDir(fixture.walDir, FIRST_WAL_LSN, WINDOW);
    ref = decodeBytes(IMPLEMENTATIONS[0], wal, { startLsn: FIRST_WAL_LSN });
    recs = [...decodedRecords(ref.entries, ref.count)];
  }, 300_000);

  test.skipIf(!pg.ok)(`a flipped byte in the middle of a record: WAL_CORRUPT naming it, nothing after it${skipReason}`, () => {
    for (const spanning of [false, true]) {
      const i = pick(spanning);
      const r = recs[i];
      const bytes = Buffer.from(wal);
      // Inside the record's first page, past its header (CRC covers it).
      const flip = at(r.startLsn) + Math.min(40, PAGE - Number(r.startLsn % BigInt(PAGE)) - 1);
      bytes[flip] ^= 0x10;
      const o = both(bytes);
      expect(o.error?.code).toBe('WAL_CORRUPT');
      expect(o.error?.message).toMatch(new RegExp(`^WAL_CORRUPT: WAL record at ${formatLsn(r.startLsn)}: `));
      expectPrefix(o, i);
    }
  });

  test.skipIf(!pg.ok)(`a flipped byte on a record's continuation page: WAL_CORRUPT naming the record${skipReason}`, () => {
    const i = pick(true);
    const r = recs[i];
    const nextPage = (r.startLsn / BigInt(PAGE) + 1n) * BigInt(PAGE);
    const bytes = Buffer.from(wal);
    bytes[at(nextPage) + 24 + 3] ^= 0x01; // just past the continuation page's header
    const o = both(bytes);
    expect(o.error?.message).toBe(
      `WAL_CORRUPT: WAL record at ${formatLsn(r.startLsn)}: incorrect resource manager data checksum; valid WAL follows at ` +
      formatLsn(((r.endLsn + BigInt(PAGE) - 1n) / BigInt(PAGE)) * BigInt(PAGE)));
    expectPrefix(o, i);
  });

  test.skipIf(!pg.ok)(`a zeroed tail and a torn last record are clean ends${skipReason}`, () => {
    const i = pick(true);
    const r = recs[i];
    const zeroed = Buffer.from(wal);
    zeroed.fill(0, at(r.startLsn));
    let o = both(zeroed);
    expect([o.error, o.state, o.nextLsn]).toEqual([null, 'end', recs[i - 1].endLsn]);
    expectPrefix(o, i);
    // Torn: the WAL stops part-way through the record (as if the rest never reached disk).
    o = both(wal.subarray(0, at(r.endLsn) - 8)); // at least its last byte is missing
    expect([o.error, o.state]).toEqual([null, 'end']);
    expectPrefix(o, i);
    // Torn, with the record's continuation page zeroed and the CRC damaged too: still the end.
    const nextPage = at((r.startLsn / BigInt(PAGE) + 1n) * BigInt(PAGE));
    const torn = Buffer.from(wal);
    torn.fill(0, nextPage);
    torn[at(r.startLsn) + 30] ^= 1;
    o = both(torn);
    expect([o.error, o.state]).toEqual([null, 'end']);
    expectPrefix(o, i);
  });

  test.skipIf(!pg.ok)(`a recycled segment's stale pages after the last record are a clean end${skipReason}`, () => {
    // A recycled segment holds an older segment's pages (another xlp_pageaddr) past what was rewritten.
    const i = pick(true);
    const r = recs[i];
    const nextPage = at((r.startLsn / BigInt(PAGE) + 1n) * BigInt(PAGE));
    expect(nextPage).toBeGreaterThanOrEqual(SEGMENT);
    const stale = Buffer.from(wal);
    wal.copy(stale, nextPage, nextPage - SEGMENT, WINDOW - SEGMENT); // the same offsets one segment earlier
    const o = both(stale);
    expect([o.error, o.state]).toEqual([null, 'end']);
    expectPrefix(o, i);
    // The same stale tail after a record whose CRC fails: nothing valid follows, so the end too.
    stale[at(r.startLsn) + 30] ^= 1;
    expect(both(stale).state).toBe('end');
  });

  test.skipIf(!pg.ok)(`a damaged page header in the middle is WAL_CORRUPT; an end LSN past the WAL is WAL_CORRUPT${skipReason}`, () => {
    const page = Math.floor(WINDOW / 2 / PAGE) * PAGE + 3 * PAGE;
    const bytes = Buffer.from(wal);
    bytes[page + 1] ^= 0x20; // xlp_magic
    const o = both(bytes);
    expect(o.error?.code).toBe('WAL_CORRUPT');
    expect(o.error?.message).toContain(`${formatLsn(FIRST_WAL_LSN + BigInt(page))}: invalid magic number`);
    expect(recs[o.count].startLsn < FIRST_WAL_LSN + BigInt(page + PAGE)).toBe(true);
    const cut = recs[recs.length - 1];
    const past = both(wal, cut.endLsn + BigInt(3 * PAGE));
    expect(past.error?.message).toContain(`before the requested end LSN ${formatLsn(cut.endLsn + BigInt(3 * PAGE))}`);
    const exact = both(wal, recs[100].endLsn);
    expect([exact.state, exact.count, exact.nextLsn]).toEqual(['end', 101, recs[100].endLsn]);
  });

  test.skipIf(!pg.ok)(`the directory source yields pg_wal/ from a start LSN in the middle of a segment${skipReason}`, async () => {
    const from = recs[Math.floor(recs.length / 2)];
    for (const impl of IMPLEMENTATIONS) {
      const d = createWalDecoder(impl, { startLsn: from.startLsn, endLsn: recs[recs.length - 1].endLsn });
      let count = 0;
      let state = '';
      const parts: Buffer[] = [];
      for await (const chunk of walChunks(fixture.walDir, { startLsn: from.startLsn, chunkBytes: 300_000 })) {
        d.feed(chunk);
        for (;;) {
          const r = d.decode(10_000);
          count += r.count;
          parts.push(r.entries);
          state = r.state;
          if (r.state !== 'full') break;
        }
        if (state === 'end') break;
      }
      const expected = recs.slice(Math.floor(recs.length / 2));
      expect([state, count], impl).toEqual(['end', expected.length]);
      expect(Buffer.concat(parts).equals(Buffer.concat(expected.map((r) => r.bytes()))), impl).toBe(true);
    }
  });
});
