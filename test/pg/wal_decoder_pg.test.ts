/**
 * The WAL decoder (both cores) on real PostgreSQL 15 WAL, checked against pg_waldump record by
 * record: plain WAL, data checksums, wal_compression = pglz / lz4 / zstd, wal_consistency_checking;
 * native ≡ TS byte for byte, also under randomized chunkings down to one byte at a time.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import type { ImplementationName } from '../../lib/core';
import { formatLsn } from '../../lib/lsn';
import {
  BKPIMAGE_APPLY, BKPIMAGE_COMPRESS_LZ4, BKPIMAGE_COMPRESS_PGLZ, BKPIMAGE_COMPRESS_ZSTD, DecodedRecord, decodedRecords,
} from '../../lib/pg/wal_record';
import { IMPLEMENTATIONS } from '../helpers/cores';
import { Rng } from '../helpers/random';
import { decodeBytes, readWalDir, type DecodeOutcome } from './decode_util';
import { FIRST_WAL_LSN, getWalFixture, pgAvailable, type WalFixture, type WalFixtureKind } from './local_wal';
import { FORK_NAMES, RMGR_NAMES, identify, waldump, type DumpRecord } from './waldump';

const pg = pgAvailable();
const skipReason = pg.ok ? '' : ` — skipped: ${pg.reason}`;
const BLOCK_SIZE = 8192;
const PD_LOWER = 12;
const PD_UPPER = 14;
const PD_SPECIAL = 16;
const PAGE_HEADER_SIZE = 24;
const MB = 1 << 20;

interface Loaded {
  fixture: WalFixture;
  wal: Buffer;
  dump: DumpRecord[];
  outcomes: Map<ImplementationName, DecodeOutcome>;
  records: DecodedRecord[];
}

function load(kind: WalFixtureKind): Loaded {
  const fixture = getWalFixture(kind);
  const wal = readWalDir(fixture.walDir, FIRST_WAL_LSN);
  const dump = waldump(fixture.walDir, FIRST_WAL_LSN);
  const outcomes = new Map<ImplementationName, DecodeOutcome>();
  for (const impl of IMPLEMENTATIONS) outcomes.set(impl, decodeBytes(impl, wal, { startLsn: FIRST_WAL_LSN }, MB));
  const ref = outcomes.get(IMPLEMENTATIONS[0]) as DecodeOutcome;
  return { fixture, wal, dump, outcomes, records: [...decodedRecords(ref.entries, ref.count)] };
}

/** One line with every field pg_waldump shows, from our decoding. */
function describeRecord(rec: DecodedRecord): string {
  let fpiBytes = 0;
  let compressed = false;
  const blocks = rec.blocks().map((b) => {
    let s = `#${b.id} ${b.spcOid}/${b.dbOid}/${b.relNumber} ${FORK_NAMES[b.forkNum]} ${b.blockNumber}`;
    if (b.hasImage) {
      const method = (b.bimgInfo & BKPIMAGE_COMPRESS_PGLZ) !== 0 ? 'pglz' : (b.bimgInfo & BKPIMAGE_COMPRESS_LZ4) !== 0 ? 'lz4'
        : (b.bimgInfo & BKPIMAGE_COMPRESS_ZSTD) !== 0 ? 'zstd' : 'none';
      s += ` FPW${b.applyImage ? '' : ' for WAL verification'} hole ${b.holeOffset}+${b.holeLength} ${method}`;
      if (method === 'none') fpiBytes += BLOCK_SIZE - b.holeLength;
      else compressed = true;
    }
    return s;
  });
  // pg_waldump's "rec" length is the record without its images' bytes (known here when uncompressed).
  const recLen = compressed ? '?' : String(rec.totalLength - fpiBytes);
  return `${formatLsn(rec.startLsn)} ${RMGR_NAMES[rec.rmid]} ${identify(rec.rmid, rec.info)} tx ${rec.xid} len ${recLen}/${rec.totalLength} ` +
    `prev ${formatLsn(rec.prevLsn)} [${blocks.join(', ')}]`;
}

/** The same line from pg_waldump's output. */
function describeDump(d: DumpRecord, withRecLen: boolean): string {
  const blocks = d.blocks.map((b) => {
    let s = `#${b.id} ${b.spcOid}/${b.dbOid}/${b.relNumber} ${b.fork} ${b.blockNumber}`;
    if (b.fpw) s += ` FPW${b.forVerification ? ' for WAL verification' : ''} hole ${b.holeOffset}+${b.holeLength} ${b.method ?? 'none'}`;
    return s;
  });
  return `${formatLsn(d.lsn)} ${d.rmgr} ${d.identify} tx ${d.xid} len ${withRecLen ? String(d.recLen) : '?'}/${d.totLen} ` +
    `prev ${formatLsn(d.prev)} [${blocks.join(', ')}]`;
}

/** Why an image is not a plausible PostgreSQL page with its hole at [pd_lower, pd_upper), or null. */
function imageProblem(rec: DecodedRecord, index: number): string | null {
  const b = rec.block(index);
  const page = rec.image(index) as Buffer;
  const where = `image of block #${b.id} in the record at ${formatLsn(rec.startLsn)}`;
  if (page.length !== BLOCK_SIZE) return `${where}: ${page.length} bytes`;
  const lower = page.readUInt16LE(PD_LOWER);
  const upper = page.readUInt16LE(PD_UPPER);
  const special = page.readUInt16LE(PD_SPECIAL);
  if (upper === 0) return null; // a new page
  if (!(PAGE_HEADER_SIZE <= lower && lower <= upper && upper <= special && special <= BLOCK_SIZE)) {
    return `${where}: pd_lower ${lower} pd_upper ${upper} pd_special ${special}`;
  }
  if (b.holeLength > 0 && (b.holeOffset !== lower || b.holeOffset + b.holeLength !== upper)) {
    return `${where}: hole ${b.holeOffset}+${b.holeLength} but pd_lower ${lower} pd_upper ${upper}`;
  }
  // pd_lsn (high half first) is the page's LSN before this record: at most where this record starts.
  const pdLsn = (BigInt(page.readUInt32LE(0)) << 32n) | BigInt(page.readUInt32LE(4));
  if (pdLsn > rec.startLsn) return `${where}: pd_lsn ${formatLsn(pdLsn)}`;
  // Every normal line pointer with storage points between pd_upper and pd_special.
  for (let o = PAGE_HEADER_SIZE; o < lower; o += 4) {
    const lp = page.readUInt32LE(o);
    const off = lp & 0x7fff;
    const len = lp >>> 17;
    if (((lp >>> 15) & 3) === 1 && len > 0 && (off < upper || off + len > special)) return `${where}: item at ${off} length ${len}`;
  }
  return null;
}

function recordsIn(records: DecodedRecord[], start: bigint, end: bigint): DecodedRecord[] {
  return records.filter((r) => r.startLsn >= start && r.startLsn < end);
}

describe.each(['main', 'checksums'] as WalFixtureKind[])('real PostgreSQL 15 WAL (%s cluster)', (kind) => {
  let L: Loaded;
  beforeAll(() => {
    if (pg.ok) L = load(kind);
  }, 300_000);

  test.skipIf(!pg.ok)(`both cores decode every record to a clean end, byte-identical${skipReason}`, () => {
    for (const impl of IMPLEMENTATIONS) {
      const o = L.outcomes.get(impl) as DecodeOutcome;
      expect(o.error, impl).toBeNull();
      expect(o.state, impl).toBe('end');
      expect(o.count, impl).toBe(L.dump.length);
    }
    if (IMPLEMENTATIONS.length === 2) {
      const [a, b] = IMPLEMENTATIONS.map((i) => L.outcomes.get(i) as DecodeOutcome);
      expect(a.entries.length).toBe(b.entries.length);
      expect(a.entries.equals(b.entries)).toBe(true);
      expect(a.nextLsn).toBe(b.nextLsn);
    }
    expect(L.records.length).toBeGreaterThan(10_000);
  });

  test.skipIf(!pg.ok)(`every record matches pg_waldump (LSN, rmgr/info, xid, lengths, prev, block refs, images)${skipReason}`, () => {
    expect(L.records.length).toBe(L.dump.length);
    const mismatch = L.records.findIndex((r, i) => {
      const ours = describeRecord(r);
      return ours !== describeDump(L.dump[i], !ours.includes(' len ?/'));
    });
    if (mismatch >= 0) {
      const ours = describeRecord(L.records[mismatch]);
      expect(ours).toBe(describeDump(L.dump[mismatch], !ours.includes(' len ?/')));
    }
    // Consecutive records chain: each starts where the previous one ended (or after a page header).
    for (let i = 1; i < L.records.length; i++) {
      const end = L.records[i - 1].endLsn;
      const start = L.records[i].startLsn;
      const gap = start - end;
      expect(gap === 0n || (end % 8192n === 0n && (gap === 24n || gap === 40n)), `gap ${gap} at ${formatLsn(start)}`).toBe(true);
    }
  });

  test.skipIf(!pg.ok)(`restored images are well-formed pages whose hole is [pd_lower, pd_upper)${skipReason}`, () => {
    let images = 0;
    const problems: string[] = [];
    for (const r of L.records) {
      for (const b of r.blocks()) {
        if (!b.hasImage) continue;
        images++;
        const p = imageProblem(r, b.index);
        if (p !== null) problems.push(p);
      }
    }
    expect(problems.slice(0, 5)).toEqual([]);
    expect(images).toBeGreaterThan(500);
  });

  test.skipIf(!pg.ok)(`each phase carries what its settings produce${skipReason}`, () => {
    const counts = (phase: string): Record<string, number> => {
      const p = L.fixture.phases.find((x) => x.name === phase);
      if (p === undefined) throw new Error(`no phase ${phase}`);
      const c: Record<string, number> = { images: 0, pglz: 0, lz4: 0, zstd: 0, raw: 0, verification: 0, hint: 0, switch: 0, origin: 0, toplevel: 0 };
      for (const r of recordsIn(L.records, p.start, p.end)) {
        if (r.rmid === 0 && (r.info & 0xf0) === 0xa0) c.hint++;
        if (r.rmid === 0 && (r.info & 0xf0) === 0x40) c.switch++;
        if (r.origin !== null) c.origin++;
        if (r.toplevelXid !== null) c.toplevel++;
        for (const b of r.blocks()) {
          if (!b.hasImage) continue;
          c.images++;
          if (!b.applyImage) c.verification++;
          if ((b.bimgInfo & BKPIMAGE_COMPRESS_PGLZ) !== 0) c.pglz++;
          else if ((b.bimgInfo & BKPIMAGE_COMPRESS_LZ4) !== 0) c.lz4++;
          else if ((b.bimgInfo & BKPIMAGE_COMPRESS_ZSTD) !== 0) c.zstd++;
          else c.raw++;
        }
      }
      return c;
    };
    if (kind === 'checksums') {
      const c = counts('checksums');
      expect(c.hint).toBeGreaterThan(0);
      expect(c.raw).toBe(c.images);
      return;
    }
    const plain = counts('plain');
    expect(plain.raw).toBeGreaterThan(0);
    expect(plain.raw).toBe(plain.images);
    expect(plain.switch).toBe(1);
    expect(plain.origin).toBeGreaterThan(0);
    expect(plain.toplevel).toBeGreaterThan(0);
    for (const method of ['pglz', 'lz4', 'zstd']) {
      const c = counts(method);
      expect(c[method], method).toBeGreaterThan(50);
      expect(c[method], method).toBe(c.images); // every image of the phase is compressed with it
    }
    const consistency = counts('consistency');
    expect(consistency.verification).toBeGreaterThan(100);
    for (const r of recordsIn(L.records, L.fixture.phases[0].start, L.fixture.phases[0].end)) {
      for (const b of r.blocks()) if (b.hasImage) expect((b.bimgInfo & BKPIMAGE_APPLY) !== 0).toBe(true);
    }
  });

  test.skipIf(!pg.ok)(`randomized chunkings (also one byte at a time) give the same entries in both cores${skipReason}`, () => {
    const ref = L.outcomes.get(IMPLEMENTATIONS[0]) as DecodeOutcome;
    const rng = new Rng(kind === 'main' ? 14 : 15);
    for (const impl of IMPLEMENTATIONS) {
      // Whole WAL: chunk sizes from one byte to a megabyte, batches of 1 to 5000 records.
      const sizes = [7, 100, 8192, 70_000, MB];
      const o = decodeBytes(impl, L.wal, { startLsn: FIRST_WAL_LSN }, () => rng.int(1, rng.pick(sizes) + 1), () => rng.int(1, 5000));
      expect(o.error, impl).toBeNull();
      expect(o.count, impl).toBe(ref.count);
      expect(o.entries.equals(ref.entries), impl).toBe(true);
    }
    // One byte at a time over 300 KB starting at a record in the middle, which crosses pages.
    const from = L.records[Math.floor(L.records.length / 2)];
    const start = Number(from.startLsn - FIRST_WAL_LSN);
    const window = L.wal.subarray(start, start + 300_000);
    const expected = L.records.filter((r) => r.startLsn >= from.startLsn && r.endLsn <= from.startLsn + BigInt(window.length));
    const lastEnd = expected[expected.length - 1].endLsn;
    for (const impl of IMPLEMENTATIONS) {
      const o = decodeBytes(impl, window, { startLsn: from.startLsn }, 1, () => rng.int(1, 4));
      expect(o.error, impl).toBeNull();
      expect(o.state, impl).toBe('end');
      expect(o.count, impl).toBe(expected.length);
      expect(o.nextLsn, impl).toBe(lastEnd);
      expect(o.entries.equals(Buffer.concat(expected.map((r) => r.bytes()))), impl).toBe(true);
    }
  });
});
