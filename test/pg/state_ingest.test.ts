/**
 * lib/pg/state_ingest.ts and control_state.ts on synthetic WAL (test/pg/wal_builder.ts), record by
 * record, without PostgreSQL: the values each record adds (SLRU records, zero pages, two-phase
 * files and their deletion, checkpoints, the control state only where it changes), PostgreSQL's
 * redo rules for the counters (nextXid across an epoch, multixact counters and offsets wrapping at
 * 2^32, checkpoints shutdown and online), WAL_CORRUPT for malformed records, and which SLRU
 * segments the read API leaves out after PostgreSQL's truncations (pg_state.ts segmentFilter).
 */
import { describe, expect, test } from 'vitest';
import { createWalDecoder } from '../../lib/core/pg_decoder';
import { crc32c } from '../../lib/core/pg_decoder';
import { redoRecord } from '../../lib/core/ts/pg/rmgr';
import type { TimelineImpl } from '../../lib/engine/timeline';
import { isStrataError } from '../../lib/errors';
import { RECORD_TAG_ZERO } from '../../lib/record';
import { type ControlState, decodeCheckpoint, decodeControlState } from '../../lib/pg/control_state';
import { AUX_CHECKPOINT, AUX_CONTROL_STATE, AUX_DELETED, AUX_LAST_COMMIT, AUX_TWOPHASE, decodeAuxKey, decodeSlruKey } from '../../lib/pg/keyspace';
import { decodeLastCommit, type LastCommit } from '../../lib/pg/lsn_time';
import { segmentFilter } from '../../lib/pg/pg_state';
import { slruPageKey } from '../../lib/pg/slru_records';
import { StateIngest } from '../../lib/pg/state_ingest';
import { decodedRecords, type DecodedRecord } from '../../lib/pg/wal_record';
import { clogStatus, memberAt } from '../helpers/pg_state_check';
import { buildWal, type RecordSpec } from './wal_builder';

const RM_XLOG = 0;
const RM_XACT = 1;
const RM_CLOG = 3;
const RM_MULTIXACT = 6;
const RM_HEAP = 10;
const TWO_32 = 2n ** 32n;

function decode(specs: RecordSpec[]): DecodedRecord[] {
  const w = buildWal(specs);
  const d = createWalDecoder('ts', { startLsn: w.startLsn });
  d.feed(w.bytes);
  d.finish();
  const r = d.decode(10_000);
  return [...decodedRecords(r.entries, r.count)];
}

function initialState(over: Partial<ControlState> = {}): ControlState {
  return {
    nextXid: 1000n, nextOid: 20000, nextMulti: 1, nextMultiOffset: 1, oldestXid: 700, oldestXidDb: 1, oldestMulti: 1,
    oldestMultiDb: 1, oldestClogXid: null, multiTruncation: null, oldestActiveXid: 0, oldestCommitTsXid: 0, newestCommitTsXid: 0,
    timeline: 1, prevTimeline: 1, fullPageWrites: true, walLevel: 1, maxConnections: 100, maxWorkerProcesses: 8, maxWalSenders: 10,
    maxPreparedXacts: 0, maxLocksPerXact: 64, trackCommitTimestamp: false, ...over,
  };
}

interface Put {
  key: Buffer;
  lsn: bigint;
  value: Buffer;
}

/** StateIngest over a stand-in timeline that knows which SLRU pages exist. */
class Harness {
  readonly puts: Put[] = [];
  readonly state: ControlState;
  readonly ingest: StateIngest;
  constructor(over: Partial<ControlState> = {}, readonly existing = new Set<string>(), lastCommit: LastCommit | null = null) {
    this.state = initialState(over);
    const tl = {
      lastRecordLsn: 0n,
      getPagesWithStatus: async (keys: Buffer[]) => ({
        out: Buffer.alloc(keys.length * 8192),
        status: Uint8Array.from(keys.map((k) => (existing.has(k.toString('hex')) ? 0 : 1))),
      }),
    } as unknown as TimelineImpl;
    this.ingest = new StateIngest(tl, this.state, (key, lsn, value) => this.puts.push({ key, lsn, value }), lastCommit);
  }

  async run(specs: RecordSpec[]): Promise<DecodedRecord[]> {
    const recs = decode(specs);
    for (const r of recs) await this.ingest.ingest(r);
    return recs;
  }

  /** The values written under aux keys of `kind`. */
  aux(kind: number): Put[] {
    return this.puts.filter((p) => p.key[0] === 0x03 && p.key[1] === kind);
  }

  slru(slru: number, pageno: number): Put[] {
    const k = slruPageKey(slru, pageno);
    return this.puts.filter((p) => p.key.equals(k));
  }

  /** Redo every value of one SLRU page in order on `page` (the TS core; slru_redo.test.ts holds the cores equal). */
  page(slru: number, pageno: number, page = Buffer.alloc(8192)): Buffer {
    for (const p of this.slru(slru, pageno)) {
      if (p.value[0] === RECORD_TAG_ZERO) page.fill(0);
      else redoRecord(p.value, 0, p.value.length, page, 0);
    }
    return page;
  }
}

/** An aux value's payload (after the tag-5 byte and the u32 length). */
function auxPayload(p: Put): Buffer {
  return p.value.subarray(5, 5 + p.value.readUInt32LE(1));
}

function commitMain(opts: { subxacts?: number[]; twophaseXid?: number; rels?: number; stats?: number; invals?: number } = {}): Buffer {
  const parts: Buffer[] = [Buffer.alloc(8)];
  let xinfo = 0;
  const counted = (n: number, entry: number, fill?: (b: Buffer) => void): Buffer => {
    const b = Buffer.alloc(4 + n * entry);
    b.writeInt32LE(n, 0);
    fill?.(b);
    return b;
  };
  const sections: Buffer[] = [];
  if (opts.subxacts !== undefined) {
    xinfo |= 0x02;
    sections.push(counted(opts.subxacts.length, 4, (b) => opts.subxacts?.forEach((x, i) => b.writeUInt32LE(x, 4 + 4 * i))));
  }
  if (opts.rels !== undefined) { xinfo |= 0x04; sections.push(counted(opts.rels, 12)); }
  if (opts.stats !== undefined) { xinfo |= 0x100; sections.push(counted(opts.stats, 12)); }
  if (opts.invals !== undefined) { xinfo |= 0x08; sections.push(counted(opts.invals, 16)); }
  if (opts.twophaseXid !== undefined) {
    xinfo |= 0x10;
    const t = Buffer.alloc(4);
    t.writeUInt32LE(opts.twophaseXid, 0);
    sections.push(t);
  }
  const xi = Buffer.alloc(4);
  xi.writeUInt32LE(xinfo, 0);
  parts.push(xi, ...sections);
  return Buffer.concat(parts);
}

function u32s(...vals: number[]): Buffer {
  const b = Buffer.alloc(4 * vals.length);
  vals.forEach((v, i) => b.writeUInt32LE(v >>> 0, 4 * i));
  return b;
}

function checkpointMain(cp: { nextXid: bigint; nextOid: number; nextMulti: number; nextMultiOffset: number; oldestXid: number; oldestMulti: number }): Buffer {
  const b = Buffer.alloc(88);
  b.writeUInt32LE(1, 8);
  b.writeUInt32LE(1, 12);
  b[16] = 1;
  b.writeBigUInt64LE(cp.nextXid, 24);
  b.writeUInt32LE(cp.nextOid, 32);
  b.writeUInt32LE(cp.nextMulti, 36);
  b.writeUInt32LE(cp.nextMultiOffset, 40);
  b.writeUInt32LE(cp.oldestXid, 44);
  b.writeUInt32LE(5, 48);
  b.writeUInt32LE(cp.oldestMulti, 52);
  b.writeUInt32LE(5, 56);
  b.writeUInt32LE(cp.oldestXid, 80);
  return b;
}

function prepareMain(xid: number, gid: string, subxacts: number[]): Buffer {
  const gidLen = gid.length + 1;
  const gidSpace = Math.ceil(gidLen / 8) * 8;
  const b = Buffer.alloc(72 + gidSpace + 4 * subxacts.length);
  b.writeUInt32LE(0x57f94534, 0);
  b.writeUInt32LE(b.length + 4, 4);
  b.writeUInt32LE(xid, 8);
  b.writeUInt32LE(5, 12);
  b.writeInt32LE(subxacts.length, 28);
  b.writeUInt16LE(gidLen, 54);
  b.write(gid, 72, 'latin1');
  subxacts.forEach((x, i) => b.writeUInt32LE(x, 72 + gidSpace + 4 * i));
  return b;
}

async function walCorrupt(h: Harness, specs: RecordSpec[]): Promise<string> {
  try {
    await h.run(specs);
  } catch (e) {
    if (isStrataError(e, 'WAL_CORRUPT')) return e.message;
    throw e;
  }
  throw new Error('expected WAL_CORRUPT');
}

describe('state ingest: transactions and pg_xact', () => {
  test('a commit sets its tree committed, one CLOG_SET per page; a missing page is will_init; an abort sets aborted', async () => {
    const h = new Harness({ nextXid: 70_000n }, new Set([slruPageKey(0, 0).toString('hex')]));
    const recs = await h.run([
      { rmid: RM_XACT, info: 0x80, xid: 100, main: commitMain({ subxacts: [101, 32_770, 65_600, 102], rels: 1, stats: 2, invals: 3 }) },
      { rmid: RM_XACT, info: 0x20, xid: 200, main: commitMain({}) },
    ]);
    expect(h.slru(0, 0).map((p) => p.lsn)).toEqual([recs[0].endLsn, recs[1].endLsn]);
    expect(h.slru(0, 1)).toHaveLength(1);
    expect(h.slru(0, 2)).toHaveLength(1);
    // Page 0 existed; pages 1 and 2 did not: their records start from zeros (block flag WILL_INIT 0x40).
    expect(h.slru(0, 0)[0].value[24 + 2]).toBe(0);
    expect(h.slru(0, 1)[0].value[24 + 2]).toBe(0x40);
    const p0 = h.page(0, 0);
    for (const x of [100, 101, 102]) expect(clogStatus(p0, x)).toBe(1);
    expect(clogStatus(p0, 200)).toBe(2);
    expect(clogStatus(p0, 103)).toBe(0);
    expect(clogStatus(h.page(0, 1), 32_770)).toBe(1);
    expect(clogStatus(h.page(0, 2), 65_600)).toBe(1);
  });

  test('COMMIT_PREPARED and ABORT_PREPARED act on the two-phase xid and delete its state file; PREPARE writes it with its CRC', async () => {
    const h = new Harness();
    const main = prepareMain(300, 'g1', [301, 302]);
    const recs = await h.run([
      { rmid: RM_XACT, info: 0x10, xid: 300, main },
      { rmid: RM_XACT, info: 0x30 | 0x80, xid: 0, main: commitMain({ twophaseXid: 300, subxacts: [301] }) },
      { rmid: RM_XACT, info: 0x10, xid: 400, main: prepareMain(400, 'g2', []) },
      { rmid: RM_XACT, info: 0x40 | 0x80, xid: 0, main: commitMain({ twophaseXid: 400 }) },
    ]);
    const files = h.aux(AUX_TWOPHASE);
    expect(files.map((f) => [decodeAuxKey(f.key).id, f.lsn])).toEqual([[300, recs[0].endLsn], [300, recs[1].endLsn], [400, recs[2].endLsn], [400, recs[3].endLsn]]);
    const file = auxPayload(files[0]);
    expect(file.subarray(0, main.length).equals(main)).toBe(true);
    expect(file.readUInt32LE(main.length)).toBe(crc32c(main));
    expect(files[1].value.readUInt32LE(1)).toBe(AUX_DELETED);
    expect(files[3].value.readUInt32LE(1)).toBe(AUX_DELETED);
    const p0 = h.page(0, 0);
    expect([clogStatus(p0, 300), clogStatus(p0, 301), clogStatus(p0, 302), clogStatus(p0, 400)]).toEqual([1, 1, 0, 2]);
    // PREPARE moved nextXid past its subxacts (PostgreSQL's startup scan of pg_twophase does).
    expect(h.ingest.current.nextXid).toBe(1000n);
    const h2 = new Harness();
    await h2.run([{ rmid: RM_XACT, info: 0x10, xid: 1500, main: prepareMain(1500, 'g', [1501, 1600]) }]);
    expect(h2.ingest.current.nextXid).toBe(1601n);
  });

  test('every COMMIT and COMMIT_PREPARED writes the last-commit value (running maximum of xact_time, its own end LSN); aborts and prepares do not', async () => {
    const withTime = (main: Buffer, us: bigint): Buffer => {
      const m = Buffer.from(main);
      m.writeBigInt64LE(us, 0);
      return m;
    };
    const h = new Harness();
    const recs = await h.run([
      { rmid: RM_XACT, info: 0x80, xid: 100, main: withTime(commitMain({ subxacts: [101] }), 5_000n) },
      { rmid: RM_XACT, info: 0x20, xid: 102, main: withTime(commitMain(), 9_000n) },
      { rmid: RM_XACT, info: 0x80, xid: 103, main: withTime(commitMain(), 4_000n) },
      { rmid: RM_XACT, info: 0x10, xid: 300, main: prepareMain(300, 'g1', []) },
      { rmid: RM_XACT, info: 0x30 | 0x80, xid: 0, main: withTime(commitMain({ twophaseXid: 300 }), 7_000n) },
      { rmid: RM_XACT, info: 0x40 | 0x80, xid: 0, main: withTime(commitMain({ twophaseXid: 301 }), 8_000n) },
    ]);
    const values = h.aux(AUX_LAST_COMMIT).map((p) => ({ at: p.lsn, ...decodeLastCommit(auxPayload(p)) }));
    expect(values).toEqual([
      { at: recs[0].endLsn, maxTime: 5_000n, lsn: recs[0].endLsn },
      { at: recs[2].endLsn, maxTime: 5_000n, lsn: recs[2].endLsn },
      { at: recs[4].endLsn, maxTime: 7_000n, lsn: recs[4].endLsn },
    ]);
    // A run that starts from an earlier value keeps its maximum.
    const h2 = new Harness({}, new Set(), { maxTime: 6_000n, lsn: 8n });
    const [r] = await h2.run([{ rmid: RM_XACT, info: 0x80, xid: 100, main: withTime(commitMain(), 5_500n) }]);
    expect(decodeLastCommit(auxPayload(h2.aux(AUX_LAST_COMMIT)[0]))).toEqual({ maxTime: 6_000n, lsn: r.endLsn });
  });

  test('ZEROPAGE stores a zero page; TRUNCATE moves oldestClogXid and oldestXid forward only', async () => {
    const h = new Harness();
    const recs = await h.run([
      { rmid: RM_CLOG, info: 0x00, main: u32s(3) },
      { rmid: RM_CLOG, info: 0x10, main: u32s(32, 32 * 32768 + 5, 7) },
      { rmid: RM_CLOG, info: 0x10, main: u32s(1, 40_000, 8) },
    ]);
    expect(h.slru(0, 3).map((p) => [p.lsn, p.value[0]])).toEqual([[recs[0].endLsn, RECORD_TAG_ZERO]]);
    const s = h.ingest.current;
    expect([s.oldestClogXid, s.oldestXid, s.oldestXidDb]).toEqual([32 * 32768 + 5, 32 * 32768 + 5, 7]);
  });
});

describe('state ingest: multixacts', () => {
  test('CREATE_ID writes the offsets of the multixact and the next one, members split at page ends, and moves the counters', async () => {
    const h = new Harness({ nextMulti: 2047, nextMultiOffset: 1630, nextXid: 500n });
    const members = Array.from({ length: 10 }, (_, i) => u32s(900 + i, i % 6));
    const recs = await h.run([{ rmid: RM_MULTIXACT, info: 0x20, xid: 0, main: Buffer.concat([u32s(2047, 1630, 10), ...members]) }]);
    // Multixact 2047 is the last entry of offsets page 0; the next one (2048) starts page 1.
    expect(h.page(1, 0).readUInt32LE(2047 * 4)).toBe(1630);
    expect(h.page(1, 1).readUInt32LE(0)).toBe(1640);
    expect(h.slru(2, 0)).toHaveLength(1);
    expect(h.slru(2, 1)).toHaveLength(1);
    for (let i = 0; i < 10; i++) expect(memberAt(h.page(2, Math.floor((1630 + i) / 1636)), 1630 + i)).toEqual({ xid: 900 + i, status: i % 6 });
    const s = h.ingest.current;
    expect([s.nextMulti, s.nextMultiOffset, s.nextXid]).toEqual([2048, 1640, 910n]);
    expect(h.aux(AUX_CONTROL_STATE).map((p) => p.lsn)).toEqual([recs[0].endLsn]);
  });

  test('offsets wrap at 2^32: the next member offset skips 0, and the next multixact after 2^32 - 1 is 1', async () => {
    const h = new Harness({ nextMulti: 0xffff_ffff, nextMultiOffset: 0xffff_fffe });
    await h.run([{ rmid: RM_MULTIXACT, info: 0x20, xid: 0, main: Buffer.concat([u32s(0xffff_ffff, 0xffff_fffe, 2), u32s(7, 1), u32s(8, 2)]) }]);
    const lastOffsetsPage = Math.floor(0xffff_ffff / 2048);
    expect(h.page(1, lastOffsetsPage).readUInt32LE((0xffff_ffff % 2048) * 4)).toBe(0xffff_fffe);
    expect(h.page(1, 0).readUInt32LE(4)).toBe(1); // multixact 1's offset: 0 is never handed out
    const lastMembersPage = Math.floor(0xffff_ffff / 1636);
    expect(memberAt(h.page(2, lastMembersPage), 0xffff_ffff)).toEqual({ xid: 8, status: 2 });
    // MultiXactAdvanceNextMXact: the counters wrapped (to 0: PostgreSQL skips 0 when it hands them out).
    expect([h.ingest.current.nextMulti, h.ingest.current.nextMultiOffset]).toEqual([0, 0]);
  });

  test('ZERO_OFF_PAGE / ZERO_MEM_PAGE store zero pages; TRUNCATE_ID sets oldestMulti and the truncation horizon', async () => {
    const h = new Harness();
    await h.run([
      { rmid: RM_MULTIXACT, info: 0x00, main: u32s(4) },
      { rmid: RM_MULTIXACT, info: 0x10, main: u32s(9) },
      { rmid: RM_MULTIXACT, info: 0x30, main: u32s(5, 1, 3000, 1, 7000) },
    ]);
    expect(h.slru(1, 4)[0].value[0]).toBe(RECORD_TAG_ZERO);
    expect(h.slru(2, 9)[0].value[0]).toBe(RECORD_TAG_ZERO);
    const s = h.ingest.current;
    expect([s.oldestMulti, s.oldestMultiDb, s.multiTruncation]).toEqual([3000, 5, { oldestMulti: 3000, oldestOffset: 7000 }]);
  });
});

describe('state ingest: the control state and the checkpoint', () => {
  test('nextXid moves past every xid as AdvanceNextFullTransactionIdPastXid does, into the next epoch at the wrap', async () => {
    const h = new Harness({ nextXid: 0xffff_fff0n });
    await h.run([{ rmid: RM_HEAP, info: 0x00, xid: 0xffff_fff5 }]);
    expect(h.ingest.current.nextXid).toBe(0xffff_fff6n);
    await h.run([{ rmid: RM_HEAP, info: 0x00, xid: 0xffff_fff2 }, { rmid: RM_HEAP, info: 0x00, xid: 0xffff_ffff }]);
    expect(h.ingest.current.nextXid).toBe(TWO_32 + 3n); // xid 0xFFFFFFFF + 1 skips the permanent xids 0..2
    await h.run([{ rmid: RM_HEAP, info: 0x00, xid: 5 }, { rmid: RM_HEAP, info: 0x00, xid: 2 }]);
    expect(h.ingest.current.nextXid).toBe(TWO_32 + 6n);
  });

  test('the control state is written only at records that change it', async () => {
    const h = new Harness({ nextXid: 100n });
    const recs = await h.run([
      { rmid: RM_HEAP, info: 0x00, xid: 100 },
      { rmid: RM_HEAP, info: 0x00, xid: 100 },
      { rmid: RM_XACT, info: 0x00, xid: 100, main: commitMain() },
      { rmid: RM_XLOG, info: 0x30, main: u32s(30_000) },
      { rmid: RM_XLOG, info: 0x30, main: u32s(30_000) },
      { rmid: RM_HEAP, info: 0x00, xid: 50 },
      { rmid: RM_XLOG, info: 0x80, main: Buffer.from([1]) },
      { rmid: RM_XLOG, info: 0x80, main: Buffer.from([0]) },
    ]);
    const writes = h.aux(AUX_CONTROL_STATE);
    expect(writes.map((w) => w.lsn)).toEqual([recs[0].endLsn, recs[3].endLsn, recs[7].endLsn]);
    const last = decodeControlState(auxPayload(writes[2]));
    expect([last.nextXid, last.nextOid, last.fullPageWrites]).toEqual([101n, 30_000, false]);
  });

  test('checkpoints: a shutdown one sets the counters, an online one only raises them and ignores nextOid; each is stored', async () => {
    const h = new Harness({ nextXid: 5000n, nextOid: 40_000, nextMulti: 50, nextMultiOffset: 90, oldestXid: 700 });
    const recs = await h.run([
      { rmid: RM_XLOG, info: 0x10, main: checkpointMain({ nextXid: 4000n, nextOid: 30_000, nextMulti: 60, nextMultiOffset: 80, oldestXid: 650, oldestMulti: 3 }) },
    ]);
    let s = h.ingest.current;
    expect([s.nextXid, s.nextOid, s.nextMulti, s.nextMultiOffset, s.oldestXid, s.oldestMulti]).toEqual([5000n, 40_000, 60, 90, 700, 3]);
    const cp = decodeCheckpoint(auxPayload(h.aux(AUX_CHECKPOINT)[0]));
    expect([cp.startLsn, cp.endLsn, cp.shutdown, cp.checkpoint.nextOid]).toEqual([recs[0].startLsn, recs[0].endLsn, false, 30_000]);
    await h.run([{ rmid: RM_XLOG, info: 0x00, main: checkpointMain({ nextXid: 4000n, nextOid: 30_000, nextMulti: 60, nextMultiOffset: 80, oldestXid: 650, oldestMulti: 2 }) }]);
    s = h.ingest.current;
    // Shutdown: believed exactly, but oldestMulti still only moves forward (MultiXactAdvanceOldest).
    expect([s.nextXid, s.nextOid, s.nextMulti, s.nextMultiOffset, s.oldestXid, s.oldestMulti]).toEqual([4000n, 30_000, 60, 80, 650, 3]);
    expect(decodeCheckpoint(auxPayload(h.aux(AUX_CHECKPOINT)[1])).shutdown).toBe(true);
  });

  test('PARAMETER_CHANGE, FPW_CHANGE and END_OF_RECOVERY update pg_control\'s settings and timeline', async () => {
    const h = new Harness();
    const param = Buffer.alloc(28);
    [50, 4, 3, 9, 128, 2].forEach((v, i) => param.writeInt32LE(v, 4 * i));
    param[24] = 1;
    param[25] = 1;
    const eor = Buffer.alloc(16);
    eor.writeUInt32LE(3, 8);
    eor.writeUInt32LE(2, 12);
    await h.run([{ rmid: RM_XLOG, info: 0x60, main: param }, { rmid: RM_XLOG, info: 0x90, main: eor }]);
    const s = h.ingest.current;
    expect([s.maxConnections, s.maxWorkerProcesses, s.maxWalSenders, s.maxPreparedXacts, s.maxLocksPerXact, s.walLevel, s.trackCommitTimestamp])
      .toEqual([50, 4, 3, 9, 128, 2, true]);
    expect([s.timeline, s.prevTimeline]).toEqual([3, 2]);
  });

  test('malformed records are WAL_CORRUPT naming the record and its LSN', async () => {
    expect(await walCorrupt(new Harness(), [{ rmid: RM_XACT, info: 0x80, xid: 5, main: commitMain({ subxacts: [1, 2] }).subarray(0, 18) }]))
      .toMatch(/^WAL_CORRUPT: Transaction record at 0\/1000028: main data of 18 bytes ends inside its xinfo sections/);
    expect(await walCorrupt(new Harness(), [{ rmid: RM_XACT, info: 0x30 | 0x80, xid: 0, main: commitMain() }])).toMatch(/without its two-phase xid/);
    const bad = prepareMain(9, 'x', []);
    bad.writeUInt32LE(1, 0);
    expect(await walCorrupt(new Harness(), [{ rmid: RM_XACT, info: 0x10, xid: 9, main: bad }])).toMatch(/state file magic 0x1 is not 0x57f94534/);
    expect(await walCorrupt(new Harness(), [{ rmid: RM_MULTIXACT, info: 0x20, main: u32s(1, 1, 3, 5, 0) }])).toMatch(/3 members do not fit in 20 bytes/);
    expect(await walCorrupt(new Harness(), [{ rmid: RM_XLOG, info: 0x00, main: Buffer.alloc(80) }])).toMatch(/XLOG\/CHECKPOINT record .* main data of 80 bytes, expected at least 88/);
  });
});

describe('segments PostgreSQL truncated are not served (segmentFilter)', () => {
  const state = (over: Partial<ControlState>): ControlState => initialState(over);
  const kept = (f: (seg: number) => boolean, segs: number[]): number[] => segs.filter(f);

  test('nothing is left out before a truncation record', () => {
    for (const slru of [0, 1, 2]) expect(kept(segmentFilter(slru, state({})), [0, 5, 4095])).toEqual([0, 5, 4095]);
  });

  test('pg_xact: segments wholly before oldestClogXid\'s page go, those within 2^31 xids after it stay (CLOGPagePrecedes)', () => {
    const xidsPerSegment = 32 * 32768;
    const f = segmentFilter(0, state({ oldestClogXid: 3 * xidsPerSegment + 5 }));
    // 2051: its first page is exactly 2^31 xids after the cutoff, the edge case CLOGPagePrecedes keeps.
    expect(kept(f, [0, 1, 2, 3, 4, 2000, 2051, 2052, 4095])).toEqual([3, 4, 2000, 2051]);
  });

  test('offsets: segments before the multixact preceding the oldest kept one go (MultiXactOffsetPagePrecedes)', () => {
    const multisPerSegment = 32 * 2048;
    expect(kept(segmentFilter(1, state({ multiTruncation: { oldestMulti: 2 * multisPerSegment + 10, oldestOffset: 0 } })), [0, 1, 2, 3])).toEqual([2, 3]);
    // The oldest multixact first on its segment: the cutoff is the multixact before it, one segment earlier.
    expect(kept(segmentFilter(1, state({ multiTruncation: { oldestMulti: 2 * multisPerSegment, oldestOffset: 0 } })), [0, 1, 2, 3])).toEqual([1, 2, 3]);
  });

  test('members: only the cyclic range from the oldest kept offset\'s segment to nextMultiOffset\'s stays, also across the wrap', () => {
    const perSegment = 32 * 1636;
    const f = segmentFilter(2, state({ multiTruncation: { oldestMulti: 9, oldestOffset: 5 * perSegment + 3 }, nextMultiOffset: 7 * perSegment + 1 }));
    expect(kept(f, [4, 5, 6, 7, 8])).toEqual([5, 6, 7]);
    const last = Math.floor(Math.floor(0xffff_ffff / 1636) / 32);
    const w = segmentFilter(2, state({ multiTruncation: { oldestMulti: 9, oldestOffset: last * perSegment + 3 }, nextMultiOffset: perSegment + 1 }));
    expect(kept(w, [last - 1, last, 0, 1, 2])).toEqual([last, 0, 1]);
  });
});

test('SLRU key helpers name pages as PostgreSQL does (segment = page / 32)', () => {
  expect(decodeSlruKey(slruPageKey(2, 70))).toEqual({ slru: 2, segment: 2, page: 6 });
});
