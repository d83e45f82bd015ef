/**
 * The WAL decoder (both cores) on real PostgreSQL 15 WAL — the shared fixtures of
 * test/helpers/pg_fixture.ts: plain, data checksums, wal_compression = pglz / lz4 / zstd,
 * wal_consistency_checking — checked against pg_waldump record by record; native ≡ TS byte for byte,
 * also under randomized chunkings down to one byte at a time; every fixture decodes to a clean end
 * exactly at its final checkpoint's end LSN.
 */
import { createHash } from 'crypto';
import { beforeAll, describe, expect, test } from 'vitest';
import type { ImplementationName } from '../../lib/core/core';
import { createWalDecoder } from '../../lib/core/pg_decoder';
import { formatLsn } from '../../lib/lsn';
import {
  BKPIMAGE_COMPRESS_LZ4, BKPIMAGE_COMPRESS_PGLZ, BKPIMAGE_COMPRESS_ZSTD, DecodedRecord, decodedRecords,
} from '../../lib/pg/wal_record';
import { walChunks } from '../../lib/pg/wal_source';
import { IMPLEMENTATIONS } from '../helpers/cores';
import { pgAvailability } from '../helpers/pg_cluster';
import { getPgFixture, type FixtureVariant, type PgFixture } from '../helpers/pg_fixture';
import { Rng } from '../helpers/random';
import { decodeBytes, readWalDir, type DecodeOutcome } from './decode_util';
import { FORK_NAMES, RMGR_NAMES, identify, waldump, waldumpTotal, type DumpRecord } from './waldump';

const pg = pgAvailability();
const skipReason = pg.ok ? '' : ` — skipped: ${pg.reason}`;
const VARIANTS: FixtureVariant[] = ['plain', 'checksums', 'pglz', 'lz4', 'zstd', 'consistency'];
/**
 * Record-by-record comparison with pg_waldump: the whole of the plain fixture (initdb's WAL, the
 * base load and the workload); in the others a window of this many bytes from the base checkpoint
 * on (the workload under that fixture's settings). Every fixture is also decoded whole in both
 * cores (entries hashed, images counted) and checked against pg_waldump's record total.
 */
const WINDOW_BYTES = 12 * 1024 * 1024;
const SEGMENT = 16n * 1024n * 1024n;
const BLOCK_SIZE = 8192;
const PD_LOWER = 12;
const PD_UPPER = 14;
const PD_SPECIAL = 16;
const PAGE_HEADER_SIZE = 24;
const MB = 1 << 20;

interface Loaded {
  fx: PgFixture;
  /** The start of wal/'s first segment (initdb's first WAL). */
  walStart: bigint;
  /** The compared window [start, end): whole for plain, else WINDOW_BYTES from the base checkpoint. */
  start: bigint;
  end: bigint;
  whole: boolean;
  wal: Buffer;
  dump: DumpRecord[];
  outcomes: Map<ImplementationName, DecodeOutcome>;
  records: DecodedRecord[];
}

async function load(variant: FixtureVariant): Promise<Loaded> {
  const fx = await getPgFixture(variant);
  const first = fx.walFiles[0];
  const walStart = BigInt(parseInt(first.slice(8, 16), 16) * 256 + parseInt(first.slice(16), 16)) * SEGMENT;
  const whole = variant === 'plain';
  const start = whole ? walStart : fx.base.checkpointEndLsn;
  const end = whole ? fx.finalEndLsn : start + BigInt(WINDOW_BYTES);
  const wal = readWalDir(fx.walDir, start, Number(end - start) + MB);
  // Whole: pg_waldump reads to the end of valid WAL; a window: up to its end.
  const dump = whole ? waldump(fx.walDir, start) : waldump(fx.walDir, start, end);
  const outcomes = new Map<ImplementationName, DecodeOutcome>();
  for (const impl of IMPLEMENTATIONS) outcomes.set(impl, decodeBytes(impl, wal, { startLsn: start, endLsn: end }, MB));
  const ref = outcomes.get(IMPLEMENTATIONS[0]) as DecodeOutcome;
  return { fx, walStart, start, end, whole, wal, dump, outcomes, records: [...decodedRecords(ref.entries, ref.count)] };
}

interface WholeRun {
  state: string;
  nextLsn: bigint;
  count: number;
  sha256: string;
  images: Record<string, number>;
}

/**
 * Image counts straight from a batch's entries (docs/POSTGRES.md, "Decoded record"), for records
 * starting at or after `from`: no views, this runs over every record of every fixture.
 */
function countImages(entries: Buffer, from: bigint, into: Record<string, number>): void {
  for (let o = 0; o < entries.length; o += entries.readUInt32LE(o)) {
    if (entries.readBigUInt64LE(o + 4) < from) continue;
    const rmid = entries[o + 36];
    if (rmid === 0 && (entries[o + 37] & 0xf0) === 0xa0) into.hint++;
    for (let b = 0, d = o + 52; b < entries[o + 38]; b++, d += 28) {
      if ((entries[d + 2] & 0x10) === 0) continue;
      const info = entries[d + 3];
      into.images++;
      if ((info & 0x02) === 0) into.verification++;
      into[(info & 0x04) !== 0 ? 'pglz' : (info & 0x08) !== 0 ? 'lz4' : (info & 0x10) !== 0 ? 'zstd' : 'raw']++;
    }
  }
}

/** Decodes all of wal/ through the directory source, keeping only a hash of the entries and image counts. */
async function decodeWhole(impl: ImplementationName, L: Loaded): Promise<WholeRun> {
  const d = createWalDecoder(impl, { startLsn: L.walStart, endLsn: L.fx.finalEndLsn });
  const hash = createHash('sha256');
  const run: WholeRun = { state: '', nextLsn: 0n, count: 0, sha256: '', images: { images: 0, pglz: 0, lz4: 0, zstd: 0, raw: 0, verification: 0, hint: 0 } };
  for await (const chunk of walChunks(L.fx.walDir, { startLsn: L.walStart })) {
    d.feed(chunk);
    for (;;) {
      const r = d.decode(50_000);
      hash.update(r.entries);
      run.count += r.count;
      run.nextLsn = r.nextLsn;
      run.state = r.state;
      // initdb writes its WAL before postgresql.conf applies: count images from the base checkpoint on.
      countImages(r.entries, L.fx.base.checkpointEndLsn, run.images);
      if (r.state !== 'full') break;
    }
    if (run.state === 'end') break;
  }
  run.sha256 = hash.digest('hex');
  return run;
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

describe.each(VARIANTS)('real PostgreSQL 15 WAL, fixture "%s"', (variant) => {
  let L: Loaded;
  beforeAll(async () => {
    if (pg.ok) L = await load(variant);
  }, 600_000);

  test.skipIf(!pg.ok)(`both cores decode every record, byte-identical, to a clean end${skipReason}`, () => {
    for (const impl of IMPLEMENTATIONS) {
      const o = L.outcomes.get(impl) as DecodeOutcome;
      expect(o.error, impl).toBeNull();
      expect(o.state, impl).toBe('end');
      if (L.whole) expect([o.nextLsn, o.count], impl).toEqual([L.fx.finalEndLsn, L.dump.length]);
    }
    if (IMPLEMENTATIONS.length === 2) {
      const [a, b] = IMPLEMENTATIONS.map((i) => L.outcomes.get(i) as DecodeOutcome);
      expect(a.entries.length).toBe(b.entries.length);
      expect(a.entries.equals(b.entries)).toBe(true);
      expect(a.nextLsn).toBe(b.nextLsn);
    }
    expect(L.records.length).toBeGreaterThan(L.whole ? 100_000 : 1_000);
  });

  test.skipIf(!pg.ok)(`every record matches pg_waldump (LSN, rmgr/info, xid, lengths, prev, block refs, images)${skipReason}`, () => {
    // A window's last record may be printed by one and not the other (pg_waldump stops on raw
    // bytes, the decoder on the MAXALIGNed end): compare the common prefix.
    const n = L.whole ? L.records.length : Math.min(L.records.length, L.dump.length);
    expect(Math.abs(L.records.length - L.dump.length)).toBeLessThanOrEqual(L.whole ? 0 : 1);
    const mismatch = L.records.slice(0, n).findIndex((r, i) => {
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
      const gap = L.records[i].startLsn - end;
      if (!(gap === 0n || (end % 8192n === 0n && (gap === 24n || gap === 40n)))) {
        expect(`gap ${gap} at ${formatLsn(L.records[i].startLsn)}`).toBe('no gap');
      }
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
    expect(images).toBeGreaterThan(100);
  });

  test.skipIf(!pg.ok)(`all of wal/ decodes through the directory source to the final checkpoint's end, the same in both cores, with the images the settings produce${skipReason}`, async () => {
    const runs = new Map<ImplementationName, WholeRun>();
    for (const impl of IMPLEMENTATIONS) runs.set(impl, await decodeWhole(impl, L));
    const ref = runs.get(IMPLEMENTATIONS[0]) as WholeRun;
    expect([ref.state, ref.nextLsn, ref.count]).toEqual(['end', L.fx.finalEndLsn, waldumpTotal(L.fx.walDir, L.walStart)]);
    for (const [impl, r] of runs) expect([impl, r.sha256, r.count]).toEqual([impl, ref.sha256, ref.count]);
    const c = ref.images;
    switch (variant) {
      case 'plain':
        expect(c.raw).toBe(c.images);
        expect(c.verification).toBe(0);
        break;
      case 'checksums':
        expect(c.hint).toBeGreaterThan(0); // FPI_FOR_HINT: hint bits WAL-logged under checksums
        expect(c.raw).toBe(c.images);
        break;
      case 'pglz':
      case 'lz4':
      case 'zstd':
        // PostgreSQL keeps an image raw when compressing it would not save space.
        expect(c[variant]).toBeGreaterThan(Math.max(50, 0.9 * c.images));
        expect(c[variant] + c.raw).toBe(c.images);
        break;
      case 'consistency':
        expect(c.verification).toBeGreaterThan(1000);
        break;
    }
  });

  // Chunking is independent of the settings: once, on the fixture compared whole.
  if (variant === 'plain') test.skipIf(!pg.ok)(`randomized chunkings (also one byte at a time) give the same entries in both cores${skipReason}`, () => {
    // The first 16 MB in chunks of one byte to a megabyte, batches of 1 to 5000 records.
    const rng = new Rng(14);
    const prefix = L.wal.subarray(0, 16 * MB);
    const inPrefix = L.records.filter((r) => r.endLsn <= L.start + BigInt(prefix.length));
    for (const impl of IMPLEMENTATIONS) {
      const sizes = [7, 100, 8192, 70_000, MB];
      const o = decodeBytes(impl, prefix, { startLsn: L.start }, () => rng.int(1, rng.pick(sizes) + 1), () => rng.int(1, 5000));
      expect([o.error, o.state, o.count], impl).toEqual([null, 'end', inPrefix.length]);
      expect(o.entries.equals(Buffer.concat(inPrefix.map((r) => r.bytes()))), impl).toBe(true);
    }
    // One byte at a time over 300 KB starting at a record in the middle, which crosses pages.
    const from = L.records[Math.floor(L.records.length / 2)];
    const offset = Number(from.startLsn - L.start);
    const window = L.wal.subarray(offset, offset + 300_000);
    const expected = L.records.filter((r) => r.startLsn >= from.startLsn && r.endLsn <= from.startLsn + BigInt(window.length));
    for (const impl of IMPLEMENTATIONS) {
      const o = decodeBytes(impl, window, { startLsn: from.startLsn }, 1, () => rng.int(1, 4));
      expect(o.error, impl).toBeNull();
      expect(o.state, impl).toBe('end');
      expect(o.count, impl).toBe(expected.length);
      expect(o.nextLsn, impl).toBe(expected[expected.length - 1].endLsn);
      expect(o.entries.equals(Buffer.concat(expected.map((r) => r.bytes()))), impl).toBe(true);
    }
  });
});
