/**
 * PostgreSQL 15 WAL decoder, the TS twin of native/pg/xlogreader.cc: the same state machine, the
 * same output bytes (docs/POSTGRES.md, "Decoded record") and the same errors, codes and messages.
 *
 * Use: construct with the start LSN, feed() contiguous WAL bytes beginning exactly at that LSN (any
 * chunking, down to one byte), finish() when no more input will come, decode(maxRecords) for
 * batches of packed entries. The start LSN is the start of a record or a page boundary; at a page
 * boundary whose page begins with a continuation (XLP_FIRST_IS_CONTRECORD) the continuation is
 * skipped, across pages if needed. The first record's xl_prev is only checked to lie before it.
 *
 * Checked as PostgreSQL's xlogreader.c does: page headers (magic 0xD110, info bits, xlp_pageaddr,
 * a long header at each segment start with 16 MB segments and 8 KB pages, system identifier,
 * timelines), continuation records across pages and segments (also inside the record header;
 * XLP_FIRST_IS_OVERWRITE_CONTRECORD abandons the record in progress), xl_tot_len, xl_rmid, xl_prev,
 * CRC-32C, DecodeXLogRecord's block and data header checks; images are restored to 8192 bytes.
 * XLOG_SWITCH ends its segment.
 *
 * End of WAL versus corruption (docs/POSTGRES.md, "End of WAL"):
 *  - input that stops inside a record, page header or padding: state 'need-more' until finish(),
 *    then the clean end;
 *  - xl_tot_len == 0, an all-zero page header, a page header with another position's xlp_pageaddr
 *    (recycled segment): the clean end;
 *  - any other failure (length, xl_rmid, xl_prev, CRC, block/data headers, an image that does not
 *    decompress, a continuation page that disagrees with the record, a page that begins with a
 *    continuation when no record is in progress, a page header with a bad magic or info bits) is
 *    the clean end only if nothing valid follows: at the first page boundary at or after the last
 *    byte read of the failing record (a disagreeing continuation page or a stray continuation: that
 *    page; a bad page header: the next page), a page header valid for its position means WAL
 *    continued past the failure, and decode() throws WAL_CORRUPT naming the LSN and the reason;
 *    a missing, zero, stale or invalid header there means the clean end. Nothing after a failure is
 *    returned;
 *  - WAL_UNSUPPORTED: another segment or page size, a first page that is not PostgreSQL 15's;
 *    WAL_CORRUPT at once: another system identifier, a timeline that decreases or exceeds the
 *    expected one, a clean end before the caller's end LSN.
 * Records decoded before a failure are returned first; the next decode() throws.
 *
 * LSNs are JS numbers inside (exact below 2^53; both cores refuse start/end LSNs ≥ 2^52).
 */
import { StrataError } from '../../../errors';
import { loadLz4, loadZstd, type Lz4Module, type ZstdModule } from '../../compress';
import { zstdFrameContentSize } from '../codec';
import { CRC32C_INIT, crc32cFinish, crc32cUpdate } from './crc32c';
import { pglzDecompress } from './pglz';

import {
  WAL_PAGE_SIZE, WAL_SEGMENT_SIZE, BLOCK_SIZE, WAL_PAGE_MAGIC, SHORT_PAGE_HEADER_SIZE, LONG_PAGE_HEADER_SIZE, RECORD_HEADER_SIZE, MAX_BLOCK_ID, MAX_DECODER_LSN, ENTRY_HEADER_SIZE, ENTRY_BLOCK_SIZE, ENTRY_FLAG_ORIGIN, ENTRY_FLAG_TOPLEVEL_XID,
} from '../../pg_wal_format';

export {
  WAL_PAGE_SIZE, WAL_SEGMENT_SIZE, BLOCK_SIZE, WAL_PAGE_MAGIC, SHORT_PAGE_HEADER_SIZE, LONG_PAGE_HEADER_SIZE, RECORD_HEADER_SIZE, MAX_BLOCK_ID, MAX_DECODER_LSN, ENTRY_HEADER_SIZE, ENTRY_BLOCK_SIZE, ENTRY_FLAG_ORIGIN, ENTRY_FLAG_TOPLEVEL_XID,
};

const XLP_FIRST_IS_CONTRECORD = 0x0001;
const XLP_LONG_HEADER = 0x0002;
const XLP_FIRST_IS_OVERWRITE_CONTRECORD = 0x0008;
const XLP_ALL_FLAGS = 0x000f;

const XL_XID = 4;
const XL_PREV = 8;
const XL_INFO = 16;
const XL_RMID = 17;
const XL_CRC = 20;

const RM_MAX_BUILTIN_ID = 21;
const RM_MIN_CUSTOM_ID = 128;
const RM_XLOG_ID = 0;
const XLOG_SWITCH = 0x40;
const XLR_RMGR_INFO_MASK = 0xf0;

const BLOCK_ID_DATA_SHORT = 255;
const BLOCK_ID_DATA_LONG = 254;
const BLOCK_ID_ORIGIN = 253;
const BLOCK_ID_TOPLEVEL_XID = 252;
const BKPBLOCK_FORK_MASK = 0x0f;
const BKPBLOCK_FLAG_MASK = 0xf0;
const BKPBLOCK_HAS_IMAGE = 0x10;
const BKPBLOCK_HAS_DATA = 0x20;
const BKPBLOCK_SAME_REL = 0x80;
const BKPIMAGE_HAS_HOLE = 0x01;
const BKPIMAGE_COMPRESS_PGLZ = 0x04;
const BKPIMAGE_COMPRESS_LZ4 = 0x08;
const BKPIMAGE_COMPRESSED = 0x04 | 0x08 | 0x10;

const MAX_ALIGN = 8;
/** PostgreSQL 15's reader refuses a record buffer of 1 GB or more (after rounding up to a page). */
const MAX_RECORD_LENGTH = 0x3fffe000 - 1;
/** A batch stops once its entries reach this many bytes (one entry may overshoot). */
const BATCH_BYTES = 8 * 1024 * 1024;
const TWO_32 = 2 ** 32;
const LZ4_SIZE_PREFIX = 4;

export type DecodeStateName = 'full' | 'need-more' | 'end';

export interface WalDecoderOptions {
  startLsn: bigint;
  /** Stop once the next record would start at or after this LSN; WAL_CORRUPT if the WAL ends before it. */
  endLsn?: bigint;
  /** Expected system identifier (xlp_sysid); otherwise the first long page header's. */
  systemId?: bigint;
  /** Highest xlp_tli accepted. */
  timeline?: number;
}

export interface DecodeBatch {
  /** `count` packed entries (docs/POSTGRES.md, "Decoded record"). */
  entries: Buffer;
  count: number;
  /** End LSN of the last record returned so far (the start LSN before any). */
  nextLsn: bigint;
  state: DecodeStateName;
}

enum Phase { SkipContinuation, NextRecord, InRecord, LookAhead, Ended, Failed }
enum Verdict { NeedMore, Missing, Valid, Zero, Stale, Invalid, Fatal }
enum Step { Progress, NeedMore, Record, Stop }

interface PageHeader { info: number; tli: number; remLen: number; size: number }

interface BlockRef {
  id: number; forkFlags: number; dataLen: number; bimgLen: number; holeOffset: number; holeLength: number;
  bimgInfo: number; spc: number; db: number; rel: number; blkno: number;
}

/** The codec modules, or null where their npm package does not load here (an image then cannot be restored). */
function lz4OrNull(): Lz4Module | null {
  try { return loadLz4(); } catch { return null; }
}

function zstdOrNull(): ZstdModule | null {
  try { return loadZstd(); } catch { return null; }
}

const maxAlign = (v: number): number => Math.ceil(v / MAX_ALIGN) * MAX_ALIGN;
const pageUp = (v: number): number => Math.ceil(v / WAL_PAGE_SIZE) * WAL_PAGE_SIZE;
const segmentUp = (v: number): number => Math.ceil(v / WAL_SEGMENT_SIZE) * WAL_SEGMENT_SIZE;
const headerSizeAt = (page: number): number => (page % WAL_SEGMENT_SIZE === 0 ? LONG_PAGE_HEADER_SIZE : SHORT_PAGE_HEADER_SIZE);
const nextRecordStart = (end: number): number => (end % WAL_PAGE_SIZE === 0 ? end + headerSizeAt(end) : end);
const rmgrIdIsValid = (rmid: number): boolean => rmid <= RM_MAX_BUILTIN_ID || rmid >= RM_MIN_CUSTOM_ID;
const hex = (v: number, width: number): string => v.toString(16).toUpperCase().padStart(width, '0');

/** PostgreSQL's "X/Y" form of an LSN given as a number below 2^53. */
export function formatLsnNumber(lsn: number): string {
  return `${hex(Math.floor(lsn / TWO_32), 1)}/${hex(lsn % TWO_32, 1)}`;
}

function formatLsnParts(hi: number, lo: number): string {
  return `${hex(hi, 1)}/${hex(lo, 1)}`;
}

class Failure extends Error {}

export class TsWalDecoder {
  private readonly endLsn: number;
  private readonly expectedSysid: bigint;
  private readonly timeline: number;
  private inBuf: Buffer = Buffer.alloc(0);
  private inHead = 0;
  private inEnd = 0;
  private pos: number;
  private finished = false;

  private phase: Phase;
  private skipTo: number;
  private firstPage = true;
  private latestTli = 0;
  private systemId = 0n;

  private recStart = 0;
  private recTotLen = 0;
  private recHeaderChecked = false;
  private rec: Buffer = Buffer.alloc(0);
  private recLen = 0;

  private prevRecHi = 0;
  private prevRecLo = 0;
  private randomAccess = true;
  private endRecPtr: number;

  private failLsn = 0;
  private failCheckPage = 0;
  private failWhat = '';
  private failReason = '';

  private errorCode: 'WAL_CORRUPT' | 'WAL_UNSUPPORTED' = 'WAL_CORRUPT';
  private errorMessage = '';

  private out: Buffer = Buffer.alloc(0);
  private outLen = 0;
  private readonly blocks: BlockRef[] = [];
  private nblocks = 0;
  private mainLen = 0;
  private toplevelXid = 0;
  private origin = 0;
  private entryFlags = 0;
  private payloadOffset = 0;
  private readonly imageTmp = new Uint8Array(BLOCK_SIZE);

  constructor(options: WalDecoderOptions) {
    const start = toLsnNumber(options.startLsn);
    const end = options.endLsn === undefined ? 0 : toLsnNumber(options.endLsn);
    if (start % MAX_ALIGN !== 0) throw new StrataError('BAD_ARGUMENT', `WAL start LSN ${formatLsnNumber(start)} is not 8-byte aligned`);
    const inPage = start % WAL_PAGE_SIZE;
    if (inPage !== 0 && inPage < headerSizeAt(start - inPage)) {
      throw new StrataError('BAD_ARGUMENT', `WAL start LSN ${formatLsnNumber(start)} lies inside a page header`);
    }
    if (end !== 0 && end < start) {
      throw new StrataError('BAD_ARGUMENT', `WAL end LSN ${formatLsnNumber(end)} is before the start LSN ${formatLsnNumber(start)}`);
    }
    const timeline = options.timeline ?? 0;
    if (!Number.isInteger(timeline) || timeline < 0 || timeline >= TWO_32) {
      throw new StrataError('BAD_ARGUMENT', `timeline must be an integer in [0, 2^32): got ${String(timeline)}`);
    }
    const sysid = options.systemId ?? 0n;
    if (typeof sysid !== 'bigint' || sysid < 0n || sysid >= 1n << 64n) {
      throw new StrataError('BAD_ARGUMENT', 'systemId must be a bigint in [0, 2^64)');
    }
    this.endLsn = end;
    this.expectedSysid = sysid;
    this.timeline = timeline;
    this.pos = start;
    this.skipTo = start;
    this.endRecPtr = start;
    this.phase = inPage === 0 ? Phase.SkipContinuation : Phase.NextRecord;
  }

  /** Appends the next WAL bytes; BAD_ARGUMENT after finish(). */
  feed(bytes: Uint8Array): void {
    if (this.finished) throw new StrataError('BAD_ARGUMENT', 'WAL bytes fed after finish()');
    if (!(bytes instanceof Uint8Array)) throw new StrataError('BAD_ARGUMENT', 'WAL bytes must be a Uint8Array or Buffer');
    if (this.phase === Phase.Ended || this.phase === Phase.Failed || bytes.length === 0) return;
    const live = this.inEnd - this.inHead;
    if (this.inEnd + bytes.length > this.inBuf.length) {
      const need = live + bytes.length;
      if (need > this.inBuf.length / 2) {
        const grown = Buffer.allocUnsafe(Math.max(need * 2, 64 * 1024));
        this.inBuf.copy(grown, 0, this.inHead, this.inEnd);
        this.inBuf = grown;
      } else {
        this.inBuf.copy(this.inBuf, 0, this.inHead, this.inEnd);
      }
      this.inHead = 0;
      this.inEnd = live;
    }
    this.inBuf.set(bytes, this.inEnd);
    this.inEnd += bytes.length;
  }

  /** No more input will come: an incomplete record at the end is the clean end of WAL. */
  finish(): void {
    this.finished = true;
  }

  /** Up to maxRecords entries; throws WAL_CORRUPT / WAL_UNSUPPORTED (deferred past returned entries). */
  decode(maxRecords: number): DecodeBatch {
    if (!Number.isInteger(maxRecords) || maxRecords < 1 || maxRecords >= TWO_32) {
      throw new StrataError('BAD_ARGUMENT', 'maxRecords must be an integer in [1, 2^32)');
    }
    if (this.phase === Phase.Failed) throw new StrataError(this.errorCode, this.errorMessage);
    this.outLen = 0;
    let count = 0;
    let state: DecodeStateName = 'full';
    while (count < maxRecords && this.outLen < BATCH_BYTES) {
      if ((this.phase === Phase.NextRecord || this.phase === Phase.SkipContinuation) && this.endLsn !== 0 &&
        this.endLsn <= nextRecordStart(this.endRecPtr)) {
        this.phase = Phase.Ended;
      }
      const step = this.step();
      if (step === Step.Record) count++;
      if (step === Step.NeedMore) {
        state = 'need-more';
        break;
      }
      if (step === Step.Stop) break;
    }
    const phase = this.currentPhase(); // the steps changed it (TS cannot see that)
    if (phase === Phase.Failed) {
      if (count === 0) throw new StrataError(this.errorCode, this.errorMessage);
      state = 'full';
    } else if (phase === Phase.Ended) {
      state = 'end';
    }
    const entries = Buffer.from(this.out.subarray(0, this.outLen));
    return { entries, count, nextLsn: BigInt(this.endRecPtr), state };
  }

  private currentPhase(): Phase {
    return this.phase;
  }

  private step(): Step {
    switch (this.phase) {
      case Phase.SkipContinuation: return this.stepSkipContinuation();
      case Phase.NextRecord: return this.stepNextRecord();
      case Phase.InRecord: return this.stepInRecord();
      case Phase.LookAhead: return this.stepLookAhead();
      default: return Step.Stop;
    }
  }

  // ---- input ----

  private available(): number {
    return this.inEnd - this.inHead;
  }

  private consume(n: number): void {
    this.inHead += n;
    this.pos += n;
    if (this.inHead === this.inEnd) {
      this.inHead = 0;
      this.inEnd = 0;
    }
  }

  private skipToPos(lsn: number): boolean {
    if (this.pos >= lsn) return true;
    this.consume(Math.min(this.available(), lsn - this.pos));
    return this.pos === lsn;
  }

  // ---- page headers ----

  private checkPageHeader(page: number, full: boolean, header: PageHeader, why: { text: string }): Verdict {
    if (this.available() < SHORT_PAGE_HEADER_SIZE) return this.finished ? Verdict.Missing : Verdict.NeedMore;
    const b = this.inBuf;
    const p = this.inHead;
    let zero = true;
    for (let i = 0; i < SHORT_PAGE_HEADER_SIZE; i++) {
      if (b[p + i] !== 0) { zero = false; break; }
    }
    if (zero) return Verdict.Zero;
    const magic = b.readUInt16LE(p);
    const info = b.readUInt16LE(p + 2);
    const tli = b.readUInt32LE(p + 4);
    const addrLo = b.readUInt32LE(p + 8);
    const addrHi = b.readUInt32LE(p + 12);
    const addrMatches = addrLo === page % TWO_32 && addrHi === Math.floor(page / TWO_32);
    if (magic !== WAL_PAGE_MAGIC) {
      if (full && this.firstPage && addrMatches) {
        why.text = `page magic ${hex(magic, 4)} is not PostgreSQL 15's ${hex(WAL_PAGE_MAGIC, 4)}`;
        this.errorCode = 'WAL_UNSUPPORTED';
        return Verdict.Fatal;
      }
      why.text = `invalid magic number ${hex(magic, 4)}`;
      return Verdict.Invalid;
    }
    if ((info & ~XLP_ALL_FLAGS) !== 0) {
      why.text = `invalid info bits ${hex(info, 4)}`;
      return Verdict.Invalid;
    }
    if (!addrMatches) return Verdict.Stale;
    if (!full) return Verdict.Valid;
    const longHeader = (info & XLP_LONG_HEADER) !== 0;
    if (!longHeader && page % WAL_SEGMENT_SIZE === 0) {
      why.text = 'no long header at a segment start';
      return Verdict.Invalid;
    }
    let sysid = 0n;
    if (longHeader) {
      if (this.available() < LONG_PAGE_HEADER_SIZE) return this.finished ? Verdict.Missing : Verdict.NeedMore;
      sysid = b.readBigUInt64LE(p + 24);
      const segSize = b.readUInt32LE(p + 32);
      const blcksz = b.readUInt32LE(p + 36);
      if (segSize !== WAL_SEGMENT_SIZE) {
        why.text = `WAL segment size ${segSize} bytes; only PostgreSQL 15's default, ${WAL_SEGMENT_SIZE}, is supported`;
        this.errorCode = 'WAL_UNSUPPORTED';
        return Verdict.Fatal;
      }
      if (blcksz !== WAL_PAGE_SIZE) {
        why.text = `WAL page size ${blcksz} bytes; only PostgreSQL 15's default, ${WAL_PAGE_SIZE}, is supported`;
        this.errorCode = 'WAL_UNSUPPORTED';
        return Verdict.Fatal;
      }
      const expected = this.expectedSysid !== 0n ? this.expectedSysid : this.systemId;
      if (expected !== 0n && sysid !== expected) {
        why.text = `WAL is from database system ${sysid}, expected ${expected}`;
        this.errorCode = 'WAL_CORRUPT';
        return Verdict.Fatal;
      }
    }
    if (this.timeline !== 0 && tli > this.timeline) {
      why.text = `timeline ${tli} is above the expected timeline ${this.timeline}`;
      this.errorCode = 'WAL_CORRUPT';
      return Verdict.Fatal;
    }
    if (tli < this.latestTli) {
      why.text = `out-of-sequence timeline ${tli} (after ${this.latestTli})`;
      this.errorCode = 'WAL_CORRUPT';
      return Verdict.Fatal;
    }
    header.info = info;
    header.tli = tli;
    header.remLen = b.readUInt32LE(p + 16);
    header.size = longHeader ? LONG_PAGE_HEADER_SIZE : SHORT_PAGE_HEADER_SIZE;
    if (longHeader && this.systemId === 0n) this.systemId = sysid;
    return Verdict.Valid;
  }

  private acceptPageHeader(h: PageHeader): void {
    this.firstPage = false;
    this.latestTli = h.tli;
    this.consume(h.size);
  }

  // ---- steps ----

  /**
   * The header of the page at `page` where no record is in progress: null when it is valid (h is
   * filled), else what the step returns (need more input, the end of WAL, or the failure).
   */
  private pageHeaderBetweenRecords(page: number, h: PageHeader): Step | null {
    const why = { text: '' };
    switch (this.checkPageHeader(page, true, h, why)) {
      case Verdict.NeedMore: return Step.NeedMore;
      case Verdict.Missing: case Verdict.Zero: case Verdict.Stale: return this.endOfWal();
      case Verdict.Invalid: return this.fail(page, 'WAL page', why.text, page + WAL_PAGE_SIZE);
      case Verdict.Fatal: return this.fatal(this.errorCode, `WAL page at ${formatLsnNumber(page)}: ${why.text}`);
      default: return null;
    }
  }

  private stepSkipContinuation(): Step {
    if (!this.skipToPos(this.skipTo)) return this.finished ? this.endOfWal() : Step.NeedMore;
    const page = this.pos;
    const h: PageHeader = { info: 0, tli: 0, remLen: 0, size: 0 };
    const stop = this.pageHeaderBetweenRecords(page, h);
    if (stop !== null) return stop;
    this.acceptPageHeader(h);
    if ((h.info & XLP_FIRST_IS_CONTRECORD) === 0) {
      this.skipTo = this.pos;
      this.phase = Phase.NextRecord;
    } else if (maxAlign(h.remLen) >= WAL_PAGE_SIZE - h.size) {
      this.skipTo = page + WAL_PAGE_SIZE; // the continuation goes on past this page
    } else {
      this.skipTo = this.pos + maxAlign(h.remLen);
      this.phase = Phase.NextRecord;
    }
    return Step.Progress;
  }

  private stepNextRecord(): Step {
    if (!this.skipToPos(this.skipTo)) return this.finished ? this.endOfWal() : Step.NeedMore;
    if (this.pos % WAL_PAGE_SIZE === 0) {
      const page = this.pos;
      const h: PageHeader = { info: 0, tli: 0, remLen: 0, size: 0 };
      const stop = this.pageHeaderBetweenRecords(page, h);
      if (stop !== null) return stop;
      if ((h.info & XLP_FIRST_IS_CONTRECORD) !== 0) {
        return this.fail(page, 'WAL page', 'page begins with a continuation record but none is in progress', page);
      }
      this.acceptPageHeader(h);
      this.skipTo = this.pos;
      return Step.Progress;
    }
    if (this.available() < 4) return this.finished ? this.endOfWal() : Step.NeedMore;
    this.recStart = this.pos;
    const totLen = this.inBuf.readUInt32LE(this.inHead);
    if (totLen === 0) return this.endOfWal();
    if (!this.checkTotalLength(totLen, this.pos + 4)) return Step.Progress;
    const pageRoom = WAL_PAGE_SIZE - (this.pos % WAL_PAGE_SIZE);
    if (totLen <= pageRoom && totLen <= this.available()) {
      // The whole record is in this page and in the input: decode it in place.
      const head = this.inHead;
      if (!this.checkRecordHeader(this.inBuf, head, this.pos + RECORD_HEADER_SIZE)) return Step.Progress;
      const step = this.finishRecord(this.inBuf, head, totLen, this.pos + totLen);
      if (step === Step.Record) this.consume(totLen);
      return step;
    }
    this.phase = Phase.InRecord;
    this.recLen = 0;
    this.recTotLen = totLen;
    this.recHeaderChecked = false;
    return Step.Progress;
  }

  private stepInRecord(): Step {
    if (this.pos % WAL_PAGE_SIZE === 0) return this.continuationPage();
    if (this.available() === 0) return this.finished ? this.endOfWal() : Step.NeedMore;
    const pageRoom = WAL_PAGE_SIZE - (this.pos % WAL_PAGE_SIZE);
    const target = this.recHeaderChecked ? this.recTotLen : RECORD_HEADER_SIZE;
    const n = Math.min(this.available(), pageRoom, target - this.recLen);
    this.appendRecordBytes(n);
    this.consume(n);
    if (!this.recHeaderChecked && this.recLen === RECORD_HEADER_SIZE) {
      if (!this.checkRecordHeader(this.rec, 0, this.pos)) return Step.Progress;
      this.recHeaderChecked = true;
    }
    if (this.recHeaderChecked && this.recLen === this.recTotLen) {
      return this.finishRecord(this.rec, 0, this.recTotLen, this.pos);
    }
    return Step.Progress;
  }

  private appendRecordBytes(n: number): void {
    if (this.recLen + n > this.rec.length) {
      // Grow by doubling; the record's length is not trusted before its continuation pages agree.
      const grown = Buffer.allocUnsafe(Math.max(this.recLen + n, this.rec.length * 2, 16 * 1024));
      this.rec.copy(grown, 0, 0, this.recLen);
      this.rec = grown;
    }
    this.inBuf.copy(this.rec, this.recLen, this.inHead, this.inHead + n);
    this.recLen += n;
  }

  private continuationPage(): Step {
    const page = this.pos;
    const h: PageHeader = { info: 0, tli: 0, remLen: 0, size: 0 };
    const why = { text: '' };
    switch (this.checkPageHeader(page, true, h, why)) {
      case Verdict.NeedMore: return Step.NeedMore;
      case Verdict.Missing: case Verdict.Zero: case Verdict.Stale: return this.endOfWal(); // a torn tail
      case Verdict.Invalid:
        return this.fail(this.recStart, 'WAL record', `continuation page ${formatLsnNumber(page)}: ${why.text}`, page + WAL_PAGE_SIZE);
      case Verdict.Fatal: return this.fatal(this.errorCode, `WAL page at ${formatLsnNumber(page)}: ${why.text}`);
      default: break;
    }
    if ((h.info & XLP_FIRST_IS_OVERWRITE_CONTRECORD) !== 0) {
      // PostgreSQL abandoned this record after a crash and wrote new WAL from this page on.
      this.acceptPageHeader(h);
      this.recLen = 0;
      this.skipTo = this.pos;
      this.phase = Phase.NextRecord;
      return Step.Progress;
    }
    if ((h.info & XLP_FIRST_IS_CONTRECORD) === 0) {
      return this.fail(this.recStart, 'WAL record', `there is no contrecord flag at ${formatLsnNumber(page)}`, page);
    }
    const got = this.recLen;
    if (h.remLen === 0 || this.recTotLen !== h.remLen + got) {
      return this.fail(this.recStart, 'WAL record',
        `invalid contrecord length ${h.remLen} (expected ${this.recTotLen - got}) at ${formatLsnNumber(page)}`, page);
    }
    this.acceptPageHeader(h);
    return Step.Progress;
  }

  private stepLookAhead(): Step {
    if (!this.skipToPos(this.failCheckPage)) return this.finished ? this.endOfWal() : Step.NeedMore;
    const h: PageHeader = { info: 0, tli: 0, remLen: 0, size: 0 };
    const v = this.checkPageHeader(this.failCheckPage, false, h, { text: '' });
    if (v === Verdict.NeedMore) return Step.NeedMore;
    if (v === Verdict.Valid) {
      return this.fatal('WAL_CORRUPT', `${this.failWhat} at ${formatLsnNumber(this.failLsn)}: ${this.failReason}; ` +
        `valid WAL follows at ${formatLsnNumber(this.failCheckPage)}`);
    }
    return this.endOfWal();
  }

  // ---- records ----

  private checkTotalLength(totLen: number, consumedTo: number): boolean {
    if (totLen < RECORD_HEADER_SIZE) {
      this.fail(this.recStart, 'WAL record', `invalid record length: expected at least ${RECORD_HEADER_SIZE}, got ${totLen}`,
        pageUp(consumedTo));
      return false;
    }
    if (totLen > MAX_RECORD_LENGTH) {
      this.fail(this.recStart, 'WAL record', `record length ${totLen} too long`, pageUp(consumedTo));
      return false;
    }
    return true;
  }

  private checkRecordHeader(b: Buffer, o: number, consumedTo: number): boolean {
    const rmid = b[o + XL_RMID];
    const prevLo = b.readUInt32LE(o + XL_PREV);
    const prevHi = b.readUInt32LE(o + XL_PREV + 4);
    let why: string;
    if (!rmgrIdIsValid(rmid)) {
      why = `invalid resource manager ID ${rmid}`;
    } else if (this.randomAccess ? !lessThan(prevHi, prevLo, this.recStart) : prevHi !== this.prevRecHi || prevLo !== this.prevRecLo) {
      why = `record with incorrect prev-link ${formatLsnParts(prevHi, prevLo)}`;
    } else {
      return true;
    }
    this.fail(this.recStart, 'WAL record', why, pageUp(consumedTo));
    return false;
  }

  private finishRecord(b: Buffer, o: number, totLen: number, endPos: number): Step {
    let crc = crc32cUpdate(CRC32C_INIT, b, o + RECORD_HEADER_SIZE, o + totLen);
    crc = crc32cFinish(crc32cUpdate(crc, b, o, o + XL_CRC));
    if (crc !== b.readUInt32LE(o + XL_CRC)) {
      return this.fail(this.recStart, 'WAL record', 'incorrect resource manager data checksum', pageUp(endPos));
    }
    let why = this.parseBlocks(b, o, totLen);
    if (why !== null) return this.fail(this.recStart, 'WAL record', why, pageUp(endPos));
    let endLsn = maxAlign(endPos);
    if (b[o + XL_RMID] === RM_XLOG_ID && (b[o + XL_INFO] & XLR_RMGR_INFO_MASK) === XLOG_SWITCH) {
      endLsn = segmentUp(endLsn); // the rest of the segment is unused
    }
    if (this.endLsn !== 0 && endLsn > this.endLsn) {
      this.phase = Phase.Ended; // the record runs past the requested end
      return Step.Stop;
    }
    why = this.writeEntry(b, o, totLen, endLsn);
    if (why !== null) return this.fail(this.recStart, 'WAL record', why, pageUp(endPos));
    this.prevRecHi = Math.floor(this.recStart / TWO_32);
    this.prevRecLo = this.recStart % TWO_32;
    this.randomAccess = false;
    this.endRecPtr = endLsn;
    this.skipTo = endLsn;
    this.phase = Phase.NextRecord;
    this.recLen = 0;
    return Step.Record;
  }

  /** DecodeXLogRecord's header walk; null when the headers are consistent, else the reason. */
  private parseBlocks(b: Buffer, o: number, totLen: number): string | null {
    let off = o + RECORD_HEADER_SIZE;
    let remaining = totLen - RECORD_HEADER_SIZE;
    let datatotal = 0;
    this.nblocks = 0;
    this.mainLen = 0;
    this.toplevelXid = 0;
    this.origin = 0;
    this.entryFlags = 0;
    let maxBlockId = -1;
    let haveRel = false;
    let spc = 0;
    let db = 0;
    let rel = 0;
    const SHORT = 'record with invalid length';
    const take = (n: number): number => {
      if (remaining < n) throw new Failure(SHORT);
      const p = off;
      off += n;
      remaining -= n;
      return p;
    };
    try {
      while (remaining > datatotal) {
        const id = b[take(1)];
        if (id === BLOCK_ID_DATA_SHORT) {
          this.mainLen = b[take(1)];
          datatotal += this.mainLen;
          break; // the main data header is always last
        }
        if (id === BLOCK_ID_DATA_LONG) {
          this.mainLen = b.readUInt32LE(take(4));
          datatotal += this.mainLen;
          break;
        }
        if (id === BLOCK_ID_ORIGIN) {
          this.origin = b.readUInt16LE(take(2));
          this.entryFlags |= ENTRY_FLAG_ORIGIN;
          continue;
        }
        if (id === BLOCK_ID_TOPLEVEL_XID) {
          this.toplevelXid = b.readUInt32LE(take(4));
          this.entryFlags |= ENTRY_FLAG_TOPLEVEL_XID;
          continue;
        }
        if (id > MAX_BLOCK_ID) return `invalid block_id ${id}`;
        if (id <= maxBlockId) return `out-of-order block_id ${id}`;
        maxBlockId = id;
        const blk = this.blockAt(this.nblocks++);
        blk.id = id;
        let p = take(3);
        blk.forkFlags = b[p];
        blk.dataLen = b.readUInt16LE(p + 1);
        const hasData = (blk.forkFlags & BKPBLOCK_HAS_DATA) !== 0;
        if (hasData && blk.dataLen === 0) return 'BKPBLOCK_HAS_DATA set, but no data included';
        if (!hasData && blk.dataLen !== 0) return `BKPBLOCK_HAS_DATA not set, but data length is ${blk.dataLen}`;
        datatotal += blk.dataLen;
        if ((blk.forkFlags & BKPBLOCK_HAS_IMAGE) !== 0) {
          const problem = this.parseImageHeader(b, take, blk);
          if (problem !== null) return problem;
          datatotal += blk.bimgLen;
        }
        if ((blk.forkFlags & BKPBLOCK_SAME_REL) === 0) {
          p = take(12);
          spc = b.readUInt32LE(p);
          db = b.readUInt32LE(p + 4);
          rel = b.readUInt32LE(p + 8);
          haveRel = true;
        } else if (!haveRel) {
          return 'BKPBLOCK_SAME_REL set but no previous rel';
        }
        blk.spc = spc;
        blk.db = db;
        blk.rel = rel;
        blk.blkno = b.readUInt32LE(take(4));
      }
    } catch (e) {
      if (e instanceof Failure) return e.message;
      throw e;
    }
    if (remaining !== datatotal) return SHORT;
    this.payloadOffset = off - o;
    return null;
  }

  private blockAt(i: number): BlockRef {
    let blk = this.blocks[i];
    if (blk === undefined) {
      blk = { id: 0, forkFlags: 0, dataLen: 0, bimgLen: 0, holeOffset: 0, holeLength: 0, bimgInfo: 0, spc: 0, db: 0, rel: 0, blkno: 0 };
      this.blocks[i] = blk;
    }
    blk.bimgLen = 0;
    blk.holeOffset = 0;
    blk.holeLength = 0;
    blk.bimgInfo = 0;
    return blk;
  }

  private parseImageHeader(b: Buffer, take: (n: number) => number, blk: BlockRef): string | null {
    const p = take(5);
    blk.bimgLen = b.readUInt16LE(p);
    blk.holeOffset = b.readUInt16LE(p + 2);
    blk.bimgInfo = b[p + 4];
    const compressed = (blk.bimgInfo & BKPIMAGE_COMPRESSED) !== 0;
    const hasHole = (blk.bimgInfo & BKPIMAGE_HAS_HOLE) !== 0;
    if (compressed) {
      if (hasHole) blk.holeLength = b.readUInt16LE(take(2));
    } else {
      blk.holeLength = (BLOCK_SIZE - blk.bimgLen) & 0xffff; // PostgreSQL's uint16 arithmetic
    }
    if (hasHole && (blk.holeOffset === 0 || blk.holeLength === 0 || blk.bimgLen === BLOCK_SIZE)) {
      return `BKPIMAGE_HAS_HOLE set, but hole offset ${blk.holeOffset} length ${blk.holeLength} block image length ${blk.bimgLen}`;
    }
    if (!hasHole && (blk.holeOffset !== 0 || blk.holeLength !== 0)) {
      return `BKPIMAGE_HAS_HOLE not set, but hole offset ${blk.holeOffset} length ${blk.holeLength}`;
    }
    if (compressed && blk.bimgLen === BLOCK_SIZE) return `BKPIMAGE_COMPRESSED set, but block image length ${blk.bimgLen}`;
    if (!hasHole && !compressed && blk.bimgLen !== BLOCK_SIZE) {
      return `neither BKPIMAGE_HAS_HOLE nor BKPIMAGE_COMPRESSED set, but block image length is ${blk.bimgLen}`;
    }
    if (blk.holeOffset + blk.holeLength > BLOCK_SIZE) {
      // PostgreSQL would write past its page here; Strata refuses the record.
      return `hole offset ${blk.holeOffset} length ${blk.holeLength} runs past the page`;
    }
    return null;
  }

  /** Appends the entry; null, or the reason an image did not restore (nothing appended then). */
  private writeEntry(b: Buffer, o: number, totLen: number, endLsn: number): string | null {
    let size = ENTRY_HEADER_SIZE + ENTRY_BLOCK_SIZE * this.nblocks + this.mainLen;
    for (let i = 0; i < this.nblocks; i++) {
      const blk = this.blocks[i];
      size += blk.dataLen + ((blk.forkFlags & BKPBLOCK_HAS_IMAGE) !== 0 ? BLOCK_SIZE : 0);
    }
    this.reserveOut(size);
    const e = this.out;
    const base = this.outLen;
    e.writeUInt32LE(size, base);
    writeLsn(e, base + 4, this.recStart);
    writeLsn(e, base + 12, endLsn);
    b.copy(e, base + 20, o + XL_PREV, o + XL_PREV + 8);
    e.writeUInt32LE(b.readUInt32LE(o + XL_XID), base + 28);
    e.writeUInt32LE(totLen, base + 32);
    e[base + 36] = b[o + XL_RMID];
    e[base + 37] = b[o + XL_INFO];
    e[base + 38] = this.nblocks;
    e[base + 39] = this.entryFlags;
    e.writeUInt32LE(this.toplevelXid, base + 40);
    e.writeUInt16LE(this.origin, base + 44);
    e.writeUInt16LE(0, base + 46);
    e.writeUInt32LE(this.mainLen, base + 48);
    let d = base + ENTRY_HEADER_SIZE;
    for (let i = 0; i < this.nblocks; i++, d += ENTRY_BLOCK_SIZE) {
      const blk = this.blocks[i];
      const hasImage = (blk.forkFlags & BKPBLOCK_HAS_IMAGE) !== 0;
      e[d] = blk.id;
      e[d + 1] = blk.forkFlags & BKPBLOCK_FORK_MASK;
      e[d + 2] = blk.forkFlags & BKPBLOCK_FLAG_MASK;
      e[d + 3] = hasImage ? blk.bimgInfo : 0;
      e.writeUInt32LE(blk.spc, d + 4);
      e.writeUInt32LE(blk.db, d + 8);
      e.writeUInt32LE(blk.rel, d + 12);
      e.writeUInt32LE(blk.blkno, d + 16);
      e.writeUInt16LE(blk.dataLen, d + 20);
      e.writeUInt16LE(hasImage ? BLOCK_SIZE : 0, d + 22);
      e.writeUInt16LE(hasImage ? blk.holeOffset : 0, d + 24);
      e.writeUInt16LE(hasImage ? blk.holeLength : 0, d + 26);
    }
    let src = o + this.payloadOffset;
    for (let i = 0; i < this.nblocks; i++) {
      const blk = this.blocks[i];
      if ((blk.forkFlags & BKPBLOCK_HAS_IMAGE) !== 0) {
        const method = this.restoreImage(blk, b.subarray(src, src + blk.bimgLen), e.subarray(d, d + BLOCK_SIZE));
        if (method !== null) return `block ${blk.id} image: could not decompress (${method})`;
        src += blk.bimgLen;
        d += BLOCK_SIZE;
      }
      b.copy(e, d, src, src + blk.dataLen);
      src += blk.dataLen;
      d += blk.dataLen;
    }
    b.copy(e, d, src, src + this.mainLen);
    this.outLen += size;
    return null;
  }

  private reserveOut(size: number): void {
    if (this.outLen + size <= this.out.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.outLen + size, this.out.length * 2, 256 * 1024));
    this.out.copy(grown, 0, 0, this.outLen);
    this.out = grown;
  }

  /** Restores one image into `page`; null, or the compression method whose data did not decompress exactly. */
  private restoreImage(blk: BlockRef, src: Buffer, page: Buffer): string | null {
    const rawLen = BLOCK_SIZE - blk.holeLength;
    let data: Uint8Array = src;
    if ((blk.bimgInfo & BKPIMAGE_COMPRESSED) !== 0) {
      const tmp = this.imageTmp.subarray(0, rawLen);
      if ((blk.bimgInfo & BKPIMAGE_COMPRESS_PGLZ) !== 0) {
        if (pglzDecompress(src, tmp) !== null) return 'pglz';
      } else if ((blk.bimgInfo & BKPIMAGE_COMPRESS_LZ4) !== 0) {
        if (!decompressLz4(src, tmp)) return 'lz4';
      } else if (!decompressZstd(src, tmp)) {
        return 'zstd';
      }
      data = tmp;
    }
    if (blk.holeLength === 0) {
      page.set(data.subarray(0, BLOCK_SIZE));
    } else {
      const tail = blk.holeOffset + blk.holeLength;
      page.set(data.subarray(0, blk.holeOffset), 0);
      page.fill(0, blk.holeOffset, tail);
      page.set(data.subarray(blk.holeOffset, blk.holeOffset + BLOCK_SIZE - tail), tail);
    }
    return null;
  }

  // ---- outcomes ----

  private fail(lsn: number, what: string, reason: string, checkPage: number): Step {
    this.phase = Phase.LookAhead;
    this.failLsn = lsn;
    this.failWhat = what;
    this.failReason = reason;
    this.failCheckPage = checkPage;
    this.recLen = 0;
    return Step.Progress;
  }

  private endOfWal(): Step {
    this.phase = Phase.Ended;
    this.recLen = 0;
    const reached = nextRecordStart(this.endRecPtr);
    if (this.endLsn !== 0 && this.endLsn > reached) {
      return this.fatal('WAL_CORRUPT', `WAL ends at ${formatLsnNumber(this.endRecPtr)}, before the requested end LSN ` +
        formatLsnNumber(this.endLsn));
    }
    return Step.Stop;
  }

  private fatal(code: 'WAL_CORRUPT' | 'WAL_UNSUPPORTED', message: string): Step {
    this.phase = Phase.Failed;
    this.errorCode = code;
    this.errorMessage = message;
    this.inBuf = Buffer.alloc(0);
    this.inHead = 0;
    this.inEnd = 0;
    this.recLen = 0;
    return Step.Stop;
  }
}

function toLsnNumber(lsn: bigint): number {
  if (typeof lsn !== 'bigint' || lsn < 0n || lsn >= BigInt(MAX_DECODER_LSN)) {
    throw new StrataError('BAD_ARGUMENT', 'WAL start and end LSNs must be below 2^52');
  }
  return Number(lsn);
}

/** Whether the u64 (hi, lo) is below `v` (a number below 2^53). */
function lessThan(hi: number, lo: number, v: number): boolean {
  const vHi = Math.floor(v / TWO_32);
  return hi < vHi || (hi === vHi && lo < v % TWO_32);
}

function writeLsn(b: Buffer, o: number, lsn: number): void {
  b.writeUInt32LE(lsn % TWO_32, o);
  b.writeUInt32LE(Math.floor(lsn / TWO_32), o + 4);
}

/** lz4-napi wants lz4_flex's size-prepended form: a u32 LE size, then the raw LZ4 block. */
function decompressLz4(src: Buffer, dst: Uint8Array): boolean {
  const mod = lz4OrNull();
  if (mod === null) throw new StrataError('WAL_UNSUPPORTED', 'an lz4-compressed WAL image needs the lz4-napi package');
  const framed = Buffer.allocUnsafe(LZ4_SIZE_PREFIX + src.length);
  framed.writeUInt32LE(dst.length, 0);
  src.copy(framed, LZ4_SIZE_PREFIX);
  let out: Buffer;
  try {
    out = mod.uncompressSync(framed);
  } catch {
    return false;
  }
  if (out.length !== dst.length) return false;
  dst.set(out);
  return true;
}

/** One zstd frame that declares exactly the expected size, as PostgreSQL's ZSTD_compress writes it. */
function decompressZstd(src: Buffer, dst: Uint8Array): boolean {
  if (zstdFrameContentSize(src) !== dst.length) return false;
  const mod = zstdOrNull();
  if (mod === null) throw new StrataError('WAL_UNSUPPORTED', 'a zstd-compressed WAL image needs the zstd-napi package');
  let out: Buffer;
  try {
    out = mod.decompress(src);
  } catch {
    return false;
  }
  if (out.length !== dst.length) return false;
  dst.set(out);
  return true;
}
