/**
 * lib/pg/wal_source.ts on synthetic segment directories: names, timelines, `.partial`, gaps, short
 * segments, start offsets; and the AsyncIterable passthrough. Decoding what it yields must give
 * the same records as decoding the WAL directly.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isStrataError } from '../../lib/errors';
import { parseWalSegmentName, planWalSegments, walChunks, walSegmentName } from '../../lib/pg/wal_source';
import { IMPLEMENTATIONS } from '../helpers/cores';
import { decodeBytes } from './decode_util';
import { SEGMENT, buildWal, recordOfSize, type BuiltWal } from './wal_builder';

const SEG = BigInt(SEGMENT);
let root: string;
let wal: BuiltWal;

async function collect(source: Parameters<typeof walChunks>[0], opts: Parameters<typeof walChunks>[1]): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of walChunks(source, opts)) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

async function expectCode(p: Promise<unknown>, code: string, re: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    expect(isStrataError(e) ? e.code : e).toBe(code);
    expect((e as Error).message).toMatch(re);
    return;
  }
  throw new Error('expected a rejection');
}

/** Writes segments segFrom.. of `wal` (which starts at segment 1) into dir as timeline `tli`. */
function writeSegments(dir: string, tli: number, segnos: number[], suffix = ''): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const segno of segnos) {
    const off = (segno - 1) * SEGMENT;
    fs.writeFileSync(path.join(dir, walSegmentName(tli, segno) + suffix), wal.bytes.subarray(off, off + SEGMENT));
  }
}

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-walsrc-'));
  // Segments 1..4, each with a few records and an XLOG_SWITCH.
  const specs = [];
  for (let s = 0; s < 4; s++) specs.push(recordOfSize(5000, s), recordOfSize(20_000, s + 10), { rmid: 0, info: 0x40 });
  wal = buildWal(specs, { startLsn: SEG });
  expect(wal.bytes.length).toBe(4 * SEGMENT);
});

afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('segment names', () => {
  test('parse and format as PostgreSQL names them', () => {
    expect(walSegmentName(1, 0x1ff)).toBe('0000000100000001000000FF');
    expect(parseWalSegmentName('0000000200000001000000FF')).toEqual({ timeline: 2, segno: 0x1ff, partial: false });
    expect(parseWalSegmentName('000000010000000000000003.partial')).toEqual({ timeline: 1, segno: 3, partial: true });
    for (const other of ['000000010000000000000003.backup', '00000001000000000000000', 'archive_status', '000000010000000000000100', '0000000100000000000000ab']) {
      expect(parseWalSegmentName(other), other).toBeNull();
    }
  });
});

describe('directory sources', () => {
  test('from a start LSN in the middle of a segment: the bytes from there, across segments; other files ignored', async () => {
    const dir = path.join(root, 'plain');
    writeSegments(dir, 1, [1, 2, 3, 4]);
    fs.writeFileSync(path.join(dir, 'README'), 'not WAL');
    fs.writeFileSync(path.join(dir, '000000010000000000000002.00000028.backup'), 'label');
    fs.mkdirSync(path.join(dir, 'archive_status'));
    const start = wal.records[1].start;
    const bytes = await collect(dir, { startLsn: start, chunkBytes: 1_000_000 });
    expect(bytes.equals(wal.bytes.subarray(Number(start - SEG)))).toBe(true);
    for (const impl of IMPLEMENTATIONS) {
      const o = decodeBytes(impl, bytes, { startLsn: start }, 77_777);
      expect([o.error, o.state, o.count], impl).toEqual([null, 'end', wal.records.length - 1]);
    }
    const upTo = await collect(dir, { startLsn: start, endLsn: 2n * SEG + 5n });
    expect(upTo.length).toBe(Number(3n * SEG - start)); // stops after the segment holding endLsn
  });

  test('timelines: the highest holding the start LSN, or the one asked for', () => {
    const dir = path.join(root, 'tli');
    writeSegments(dir, 1, [1, 2, 3]);
    writeSegments(dir, 2, [2, 3, 4]);
    expect(planWalSegments(dir, { startLsn: 2n * SEG + 40n }).map((s) => path.basename(s.file))).toEqual([
      walSegmentName(2, 2), walSegmentName(2, 3), walSegmentName(2, 4)]);
    expect(planWalSegments(dir, { startLsn: 2n * SEG + 40n, timeline: 1 }).map((s) => s.segno)).toEqual([2, 3]);
    expect(planWalSegments(dir, { startLsn: SEG + 40n }).map((s) => [s.timeline, s.segno])).toEqual([[1, 1], [1, 2], [1, 3]]);
  });

  test('.partial is accepted for the last segment only; a gap before later segments is WAL_CORRUPT naming the file', async () => {
    const dir = path.join(root, 'partial');
    writeSegments(dir, 1, [1, 2]);
    writeSegments(dir, 1, [3], '.partial');
    expect(planWalSegments(dir, { startLsn: SEG }).map((s) => [s.segno, s.partial])).toEqual([[1, false], [2, false], [3, true]]);
    const gap = path.join(root, 'gap');
    writeSegments(gap, 1, [1, 3]);
    writeSegments(gap, 1, [2], '.partial');
    await expectCode(collect(gap, { startLsn: SEG }), 'WAL_CORRUPT', new RegExp(`${walSegmentName(1, 2)} is missing`));
    await expectCode(collect(gap, { startLsn: 5n * SEG }), 'WAL_CORRUPT', /no WAL segment in .* holds the start LSN 0\/5000000/);
  });

  test('a short segment before a later one is WAL_CORRUPT; a short last one is read as far as it goes', async () => {
    const dir = path.join(root, 'short');
    writeSegments(dir, 1, [1, 2, 3]);
    fs.truncateSync(path.join(dir, walSegmentName(1, 2)), 100_000);
    await expectCode(collect(dir, { startLsn: SEG }), 'WAL_CORRUPT', /is 100000 bytes/);
    fs.truncateSync(path.join(dir, walSegmentName(1, 3)), 0);
    fs.rmSync(path.join(dir, walSegmentName(1, 3)));
    const bytes = await collect(dir, { startLsn: SEG });
    expect(bytes.length).toBe(SEGMENT + 100_000);
  });

  test('an AsyncIterable is passed through; anything else is BAD_ARGUMENT', async () => {
    async function* gen(): AsyncGenerator<Uint8Array> {
      yield Buffer.from([1, 2]);
      yield new Uint8Array([3]);
    }
    expect([...(await collect(gen(), { startLsn: SEG }))]).toEqual([1, 2, 3]);
    await expectCode(collect(42 as unknown as string, { startLsn: SEG }), 'BAD_ARGUMENT', /directory path or an AsyncIterable/);
    await expectCode(collect(path.join(root, 'nope'), { startLsn: SEG }), 'IO_ERROR', /cannot list/);
  });
});
