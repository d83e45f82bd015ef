/**
 * Where WAL bytes come from for ingest (docs/POSTGRES.md, "WAL sources"): a directory of segment
 * files (a cluster's pg_wal/ or a WAL archive) or an AsyncIterable<Uint8Array> of WAL bytes that
 * already starts at the start LSN. Either way the result is a stream of chunks, contiguous from the
 * start LSN, for the decoder (lib/core/pg_decoder.ts).
 *
 * Segment files are named TTTTTTTTXXXXXXXXYYYYYYYY (24 upper-case hex digits: timeline, then the
 * segment number as segno / 256 and segno % 256 for 16 MB segments); the last one may end in
 * `.partial` (what pg_receivewal and a promoted standby leave); other files are ignored. The
 * timeline is the caller's, or the highest one that has the segment holding the start LSN.
 * Segments are read in order from that one; a gap before a later segment of the timeline, or a
 * short segment before a later one, is WAL_CORRUPT naming the file; the stream ends after the last
 * segment present.
 */
import * as fs from 'fs';
import * as path from 'path';
import { StrataError } from '../errors';
import { formatLsn } from '../lsn';
import { WAL_SEGMENT_SIZE } from '../core/pg_wal_format';

const SEGMENT_NAME = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(\.partial)?$/;
/** Segment numbers per 4 GB "xlogid" with 16 MB segments: the name's middle and last parts. */
const SEGMENTS_PER_XLOGID = 0x1_0000_0000 / WAL_SEGMENT_SIZE;
const DEFAULT_CHUNK_BYTES = 1024 * 1024;
const SEGMENT_BYTES = BigInt(WAL_SEGMENT_SIZE);

export type WalSource = string | AsyncIterable<Uint8Array>;

export interface WalSourceOptions {
  startLsn: bigint;
  /** Timeline to read (directory sources); default: the highest one holding the start LSN's segment. */
  timeline?: number;
  /** Stop after the segment holding this LSN (directory sources). */
  endLsn?: bigint;
  /** Read size for directory sources, bytes. Default 1 MB. */
  chunkBytes?: number;
}

export interface WalSegmentFile {
  timeline: number;
  segno: number;
  file: string;
  partial: boolean;
}

/** The segment file name for (timeline, segno), as PostgreSQL's XLogFileName writes it. */
export function walSegmentName(timeline: number, segno: number): string {
  const hex8 = (v: number): string => v.toString(16).toUpperCase().padStart(8, '0');
  return hex8(timeline) + hex8(Math.floor(segno / SEGMENTS_PER_XLOGID)) + hex8(segno % SEGMENTS_PER_XLOGID);
}

/** Parses a segment file name; null for any other file. */
export function parseWalSegmentName(name: string): Omit<WalSegmentFile, 'file'> | null {
  const m = SEGMENT_NAME.exec(name);
  if (m === null) return null;
  const low = parseInt(m[3], 16);
  if (low >= SEGMENTS_PER_XLOGID) return null;
  return { timeline: parseInt(m[1], 16), segno: parseInt(m[2], 16) * SEGMENTS_PER_XLOGID + low, partial: m[4] !== undefined };
}

/** The segments of one timeline to read from the start LSN on, in order (see the file comment). */
export function planWalSegments(dir: string, opts: Pick<WalSourceOptions, 'startLsn' | 'timeline' | 'endLsn'>): WalSegmentFile[] {
  const startSegno = Number(opts.startLsn / SEGMENT_BYTES);
  const endSegno = opts.endLsn === undefined ? Infinity : Number(opts.endLsn / SEGMENT_BYTES);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (e) {
    throw new StrataError('IO_ERROR', `cannot list the WAL directory ${dir}: ${(e as Error).message}`, { cause: e });
  }
  const found: WalSegmentFile[] = [];
  for (const name of names) {
    const seg = parseWalSegmentName(name);
    if (seg !== null) found.push({ ...seg, file: path.join(dir, name) });
  }
  const timeline = opts.timeline ?? Math.max(-1, ...found.filter((s) => s.segno === startSegno).map((s) => s.timeline));
  if (timeline < 0) {
    throw new StrataError('WAL_CORRUPT', `no WAL segment in ${dir} holds the start LSN ${formatLsn(opts.startLsn)}`);
  }
  const full = new Map<number, WalSegmentFile>();
  const partial = new Map<number, WalSegmentFile>();
  for (const s of found) if (s.timeline === timeline) (s.partial ? partial : full).set(s.segno, s);
  const last = Math.max(-1, ...full.keys(), ...partial.keys());
  const plan: WalSegmentFile[] = [];
  for (let segno = startSegno; segno <= last && segno <= endSegno; segno++) {
    const s = full.get(segno) ?? (segno === last ? partial.get(segno) : undefined);
    if (s === undefined) {
      if (segno === startSegno) {
        throw new StrataError('WAL_CORRUPT', `WAL segment ${walSegmentName(timeline, segno)} holding the start LSN ${formatLsn(opts.startLsn)} is missing from ${dir}`);
      }
      throw new StrataError('WAL_CORRUPT', `WAL segment ${walSegmentName(timeline, segno)} is missing from ${dir} (later segments of timeline ${timeline} exist)`);
    }
    plan.push(s);
  }
  if (plan.length === 0) {
    throw new StrataError('WAL_CORRUPT', `WAL segment ${walSegmentName(timeline, startSegno)} holding the start LSN ${formatLsn(opts.startLsn)} is missing from ${dir}`);
  }
  return plan;
}

/** WAL bytes from the start LSN on, as chunks (see the file comment). */
export async function* walChunks(source: WalSource, opts: WalSourceOptions): AsyncGenerator<Uint8Array> {
  if (typeof source !== 'string') {
    if (source === null || typeof source !== 'object' || typeof (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] !== 'function') {
      throw new StrataError('BAD_ARGUMENT', 'a WAL source is a directory path or an AsyncIterable<Uint8Array>');
    }
    for await (const chunk of source) {
      if (!(chunk instanceof Uint8Array)) throw new StrataError('BAD_ARGUMENT', 'a WAL source yielded something other than a Uint8Array');
      yield chunk;
    }
    return;
  }
  const chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (!Number.isInteger(chunkBytes) || chunkBytes < 1) throw new StrataError('BAD_ARGUMENT', 'chunkBytes must be a positive integer');
  const plan = planWalSegments(source, opts);
  let offset = Number(opts.startLsn % SEGMENT_BYTES);
  for (let i = 0; i < plan.length; i++) {
    const seg = plan[i];
    yield* readSegment(seg, offset, chunkBytes, i === plan.length - 1);
    offset = 0;
  }
}

async function* readSegment(seg: WalSegmentFile, from: number, chunkBytes: number, isLast: boolean): AsyncGenerator<Uint8Array> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(seg.file, 'r');
  } catch (e) {
    throw new StrataError('IO_ERROR', `cannot open WAL segment ${seg.file}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const size = (await fh.stat()).size;
    if (size < WAL_SEGMENT_SIZE && !isLast) {
      throw new StrataError('WAL_CORRUPT', `WAL segment ${path.basename(seg.file)} is ${size} bytes, not ${WAL_SEGMENT_SIZE}, and later segments follow`);
    }
    const end = Math.min(size, WAL_SEGMENT_SIZE);
    for (let pos = from; pos < end;) {
      const want = Math.min(chunkBytes, end - pos);
      const buf = Buffer.allocUnsafe(want);
      const { bytesRead } = await fh.read(buf, 0, want, pos);
      if (bytesRead === 0) {
        // The file shrank under us: the WAL ends here, unless later segments follow (a gap).
        if (!isLast) throw new StrataError('WAL_CORRUPT', `WAL segment ${path.basename(seg.file)} ended at ${pos} bytes while being read`);
        break;
      }
      yield bytesRead === want ? buf : buf.subarray(0, bytesRead);
      pos += bytesRead;
    }
  } finally {
    await fh.close();
  }
}
