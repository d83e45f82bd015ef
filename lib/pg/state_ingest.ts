/**
 * Ingest of what PostgreSQL needs to start besides relation pages (docs/POSTGRES.md, "CLOG",
 * "Multixacts", "Two-phase state files", "Checkpoint and control state"), after the redo of
 * clog.c, multixact.c, xact.c, twophase.c and xlog.c in REL_15_STABLE and Neon's walingest.rs:
 *
 *   Transaction COMMIT / ABORT (and PREPARED)  CLOG_SET on each pg_xact page of the xid and its
 *                                              subxacts; a prepared one's state file deleted;
 *                                              a commit: the last-commit value (lsn_time.ts)
 *   Transaction PREPARE                        the two-phase state file (record data + CRC-32C)
 *   CLOG ZEROPAGE / TRUNCATE                   a zero page / the oldest kept xid
 *   MultiXact ZERO_*_PAGE / CREATE_ID / TRUNCATE_ID   zero pages / offsets and members / horizons
 *   XLOG CHECKPOINT_* / NEXTOID / PARAMETER_CHANGE / FPW_CHANGE / END_OF_RECOVERY   the checkpoint
 *                                              and the control state
 *   every record                               nextXid past its xid (ApplyWalRecord)
 *
 * The control state (control_state.ts) is written at a record's LSN only when the record changed it,
 * so its value at any LSN is exactly PostgreSQL's after that LSN's record, at the cost of one small
 * value per transaction (the first record of each new xid moves nextXid).
 *
 * An SLRU record on a page that does not exist yet is will_init: PostgreSQL's recovery reads a
 * missing SLRU page as zeros (SlruPhysicalReadPage in recovery); PostgreSQL always zeroes a page
 * (ZEROPAGE) before using it, so this happens only for WAL that starts mid-page history.
 */
import { crc32c } from '../core/pg_decoder';
import {
  MULTIXACT_MEMBERS_PER_PAGE, SLRU_MULTIXACT_MEMBERS, SLRU_MULTIXACT_OFFSETS, SLRU_XACT, TRANSACTION_STATUS_ABORTED,
  TRANSACTION_STATUS_COMMITTED,
} from '../core/pg_wal_format';
import type { TimelineImpl } from '../engine/timeline';
import { StrataError } from '../errors';
import { formatLsn, type Lsn } from '../lsn';
import { RECORD_TAG_ZERO, serializeValueRecord } from '../record';
import {
  advanceNextMulti, advanceNextXidPast, applyCheckpoint, type ControlState, encodeCheckpoint, encodeControlState,
  FIRST_MULTIXACT_ID, transactionIdPrecedes,
} from './control_state';
import { AUX_CHECKPOINT, AUX_CONTROL_STATE, AUX_LAST_COMMIT, AUX_TWOPHASE, auxChunks, auxDeletion } from './keyspace';
import { encodeLastCommit, type LastCommit } from './lsn_time';
import { CHECKPOINT_SIZE, parseCheckPoint } from './pg_control';
import {
  clogPageOf, clogSetRecord, membersPageOf, type MultiXactMember, multixactMembersRecord, multixactOffsetsRecord, offsetsPageOf,
  slruPageKey,
} from './slru_records';
import type { DecodedRecord } from './wal_record';

/** Where state values go: the ingest's pending batch (key, LSN, serialized record). */
export type PutValue = (key: Buffer, lsn: Lsn, value: Buffer) => void;

// Resource managers and opcodes (PostgreSQL 15: rmgrlist.h, pg_control.h, xact.h, clog.h, multixact.h).
const RM_XLOG = 0;
const RM_XACT = 1;
const RM_CLOG = 3;
const RM_MULTIXACT = 6;
const XLR_RMGR_INFO_MASK = 0xf0;
const XLOG_CHECKPOINT_SHUTDOWN = 0x00;
const XLOG_CHECKPOINT_ONLINE = 0x10;
const XLOG_NEXTOID = 0x30;
const XLOG_PARAMETER_CHANGE = 0x60;
const XLOG_FPW_CHANGE = 0x80;
const XLOG_END_OF_RECOVERY = 0x90;
const XLOG_XACT_OPMASK = 0x70;
const XLOG_XACT_HAS_INFO = 0x80;
const XLOG_XACT_COMMIT = 0x00;
const XLOG_XACT_PREPARE = 0x10;
const XLOG_XACT_ABORT = 0x20;
const XLOG_XACT_COMMIT_PREPARED = 0x30;
const XLOG_XACT_ABORT_PREPARED = 0x40;
const CLOG_ZEROPAGE = 0x00;
const CLOG_TRUNCATE = 0x10;
const XLOG_MULTIXACT_ZERO_OFF_PAGE = 0x00;
const XLOG_MULTIXACT_ZERO_MEM_PAGE = 0x10;
const XLOG_MULTIXACT_CREATE_ID = 0x20;
const XLOG_MULTIXACT_TRUNCATE_ID = 0x30;

// xl_xact_xinfo bits and section sizes (xact.h).
const XACT_XINFO_HAS_DBINFO = 1 << 0;
const XACT_XINFO_HAS_SUBXACTS = 1 << 1;
const XACT_XINFO_HAS_RELFILENODES = 1 << 2;
const XACT_XINFO_HAS_INVALS = 1 << 3;
const XACT_XINFO_HAS_TWOPHASE = 1 << 4;
const XACT_XINFO_HAS_DROPPED_STATS = 1 << 8;
const XACT_TIME_BYTES = 8;
const DBINFO_BYTES = 8;
const RELFILENODE_BYTES = 12;
const STATS_ITEM_BYTES = 12;
const INVAL_MSG_BYTES = 16;

/** TwoPhaseFileHeader (= xl_xact_prepare) of PostgreSQL 15: magic, total_len, xid, …, nsubxacts at 28, gidlen at 54; 72 bytes. */
const TWOPHASE_MAGIC = 0x57f94534;
const TWOPHASE_HEADER_BYTES = 72;
const TWOPHASE_XID = 8;
const TWOPHASE_NSUBXACTS = 28;
const TWOPHASE_GIDLEN = 54;
const CRC_BYTES = 4;
const MAXALIGN = 8;

/** xl_multixact_create: mid, moff, nmembers, then (xid, status) pairs; xl_multixact_truncate: 20 bytes. */
const MULTIXACT_CREATE_HEADER = 12;
const MULTIXACT_MEMBER_BYTES = 8;
const MULTIXACT_TRUNCATE_BYTES = 20;
/** xl_clog_truncate: pageno, oldestXact, oldestXactDb. */
const CLOG_TRUNCATE_BYTES = 12;
/** xl_parameter_change (28 bytes) and xl_end_of_recovery (16 bytes). */
const PARAMETER_CHANGE_BYTES = 28;
const END_OF_RECOVERY_BYTES = 16;

const ZERO_RECORD = Buffer.of(RECORD_TAG_ZERO);

function maxAlign(n: number): number {
  return Math.ceil(n / MAXALIGN) * MAXALIGN;
}

function walCorrupt(rec: DecodedRecord, what: string, why: string): StrataError {
  return new StrataError('WAL_CORRUPT', `${what} record at ${formatLsn(rec.startLsn)}: ${why}`);
}

function mainData(rec: DecodedRecord, minBytes: number, what: string): Buffer {
  const m = rec.mainData();
  if (m.length < minBytes) throw walCorrupt(rec, what, `main data of ${m.length} bytes, expected at least ${minBytes}`);
  return m;
}

/** What a COMMIT / ABORT (or their PREPARED forms) says about the transaction tree. */
interface XactEnd {
  xid: number;
  subxacts: number[];
  committed: boolean;
  prepared: boolean;
}

export class StateIngest {
  private dirty = false;
  /** The xid nextXid was last moved past: a transaction's records follow each other, so most records repeat it. */
  private lastXid = 0;
  /** SLRU pages known to exist (or not) in this ingest run, by key in hex. */
  private readonly slruExists = new Map<string, boolean>();

  /**
   * The last-commit value as ingest has it so far (lsn_time.ts): null until the first commit, also
   * on timelines ingested before Strata kept it.
   */
  constructor(
    private readonly tl: TimelineImpl, private readonly state: ControlState, private readonly put: PutValue,
    private lastCommit: LastCommit | null = null,
  ) {}

  /** The control state as ingest has it so far. */
  get current(): Readonly<ControlState> {
    return this.state;
  }

  /** Everything one record changes; the control state is written at its LSN if it moved. */
  async ingest(rec: DecodedRecord): Promise<void> {
    // ApplyWalRecord: nextXid must be beyond the record's xid, before the record is redone.
    const xid = rec.xid;
    if (xid !== this.lastXid) {
      if (advanceNextXidPast(this.state, xid)) this.dirty = true;
      this.lastXid = xid;
    }
    const op = rec.info & XLR_RMGR_INFO_MASK;
    switch (rec.rmid) {
      case RM_XLOG:
        this.xlog(rec, op);
        break;
      case RM_XACT:
        await this.xact(rec);
        break;
      case RM_CLOG:
        this.clog(rec, op);
        break;
      case RM_MULTIXACT:
        await this.multixact(rec, op);
        break;
      default:
        break;
    }
    if (this.dirty) {
      this.putAux(AUX_CONTROL_STATE, 0, encodeControlState(this.state), rec.endLsn);
      this.dirty = false;
    }
  }

  private putAux(kind: number, id: number, bytes: Buffer, lsn: Lsn): void {
    for (const c of auxChunks(kind, 0, 0, id, bytes)) this.put(c.key, lsn, serializeValueRecord(c.payload));
  }

  // ---- XLOG ----------------------------------------------------------------------------------

  private xlog(rec: DecodedRecord, op: number): void {
    const s = this.state;
    if (op === XLOG_CHECKPOINT_SHUTDOWN || op === XLOG_CHECKPOINT_ONLINE) {
      const m = mainData(rec, CHECKPOINT_SIZE, 'XLOG/CHECKPOINT');
      const shutdown = op === XLOG_CHECKPOINT_SHUTDOWN;
      this.putAux(AUX_CHECKPOINT, 0, encodeCheckpoint(rec.startLsn, rec.endLsn, shutdown, m), rec.endLsn);
      const before = encodeControlState(s);
      applyCheckpoint(s, parseCheckPoint(m, 0), shutdown);
      if (!before.equals(encodeControlState(s))) this.dirty = true;
      this.lastXid = 0; // a shutdown checkpoint sets nextXid exactly: the next record's xid is compared afresh
    } else if (op === XLOG_NEXTOID) {
      // xlog_redo believes the record exactly (the counter may have wrapped).
      const next = mainData(rec, 4, 'XLOG/NEXTOID').readUInt32LE(0);
      if (next !== s.nextOid) this.set(() => { s.nextOid = next; });
    } else if (op === XLOG_PARAMETER_CHANGE) {
      this.parameterChange(mainData(rec, PARAMETER_CHANGE_BYTES, 'XLOG/PARAMETER_CHANGE'));
    } else if (op === XLOG_FPW_CHANGE) {
      const fpw = mainData(rec, 1, 'XLOG/FPW_CHANGE')[0] !== 0;
      if (fpw !== s.fullPageWrites) this.set(() => { s.fullPageWrites = fpw; });
    } else if (op === XLOG_END_OF_RECOVERY) {
      const m = mainData(rec, END_OF_RECOVERY_BYTES, 'XLOG/END_OF_RECOVERY');
      this.set(() => {
        s.timeline = m.readUInt32LE(8);
        s.prevTimeline = m.readUInt32LE(12);
      });
    }
  }

  /** xl_parameter_change: MaxConnections, max_worker_processes, max_wal_senders, max_prepared_xacts, max_locks_per_xact, wal_level (int each), then wal_log_hints, track_commit_timestamp (bool). */
  private parameterChange(m: Buffer): void {
    const s = this.state;
    const before = encodeControlState(s);
    s.maxConnections = m.readInt32LE(0);
    s.maxWorkerProcesses = m.readInt32LE(4);
    s.maxWalSenders = m.readInt32LE(8);
    s.maxPreparedXacts = m.readInt32LE(12);
    s.maxLocksPerXact = m.readInt32LE(16);
    s.walLevel = m.readInt32LE(20);
    s.trackCommitTimestamp = m[25] !== 0;
    if (!before.equals(encodeControlState(s))) this.dirty = true;
  }

  private set(change: () => void): void {
    change();
    this.dirty = true;
  }

  // ---- Transaction ---------------------------------------------------------------------------

  private async xact(rec: DecodedRecord): Promise<void> {
    const op = rec.info & XLOG_XACT_OPMASK;
    if (op === XLOG_XACT_PREPARE) {
      this.prepare(rec);
      return;
    }
    if (op !== XLOG_XACT_COMMIT && op !== XLOG_XACT_ABORT && op !== XLOG_XACT_COMMIT_PREPARED && op !== XLOG_XACT_ABORT_PREPARED) return;
    const end = parseXactEnd(rec, op);
    await this.setClog(rec, end);
    if (end.committed) this.noteCommit(rec.mainData().readBigInt64LE(0), rec.endLsn);
    // xact_redo_commit / xact_redo_abort: nextXid past the latest xid of the tree.
    let latest = end.xid;
    for (const x of end.subxacts) if (transactionIdPrecedes(latest, x)) latest = x;
    if (advanceNextXidPast(this.state, latest)) this.dirty = true;
    if (end.prepared) {
      const d = auxDeletion(AUX_TWOPHASE, 0, 0, end.xid);
      this.put(d.key, rec.endLsn, serializeValueRecord(d.payload));
    }
  }

  /**
   * A commit record's xact_time: the running maximum of commit times and this record's end LSN,
   * written at every commit so the value at any LSN names the latest commit at or below it.
   */
  private noteCommit(xactTime: bigint, lsn: Lsn): void {
    const prev = this.lastCommit;
    this.lastCommit = { maxTime: prev !== null && prev.maxTime > xactTime ? prev.maxTime : xactTime, lsn };
    this.putAux(AUX_LAST_COMMIT, 0, encodeLastCommit(this.lastCommit), lsn);
  }

  /**
   * TransactionIdSetTreeStatus's end state: the xid and every subxact committed (or aborted), one
   * CLOG_SET per pg_xact page, the top-level xid's page first.
   */
  private async setClog(rec: DecodedRecord, end: XactEnd): Promise<void> {
    const byPage = new Map<number, number[]>();
    for (const x of [end.xid, ...end.subxacts]) {
      const page = clogPageOf(x);
      const list = byPage.get(page) ?? [];
      list.push(x);
      byPage.set(page, list);
    }
    const status = end.committed ? TRANSACTION_STATUS_COMMITTED : TRANSACTION_STATUS_ABORTED;
    for (const [page, xids] of byPage) {
      const willInit = await this.slruPageMissing(SLRU_XACT, page);
      this.putSlru(SLRU_XACT, page, rec.endLsn, clogSetRecord(page, status, xids, rec.endLsn, rec.xid, willInit));
    }
  }

  /**
   * PREPARE: the record's data is the state file PostgreSQL writes at its next checkpoint
   * (RecreateTwoPhaseFile: the data, then its CRC-32C). Its subxacts move nextXid as
   * PrescanPreparedTransactions does when PostgreSQL starts with the file.
   */
  private prepare(rec: DecodedRecord): void {
    const what = 'Transaction/PREPARE';
    const m = mainData(rec, TWOPHASE_HEADER_BYTES, what);
    if (m.readUInt32LE(0) !== TWOPHASE_MAGIC) throw walCorrupt(rec, what, `state file magic 0x${m.readUInt32LE(0).toString(16)} is not 0x${TWOPHASE_MAGIC.toString(16)}`);
    const totalLen = m.readUInt32LE(4);
    if (totalLen !== m.length + CRC_BYTES) throw walCorrupt(rec, what, `state file says ${totalLen} bytes, the record holds ${m.length} + ${CRC_BYTES} of CRC`);
    const xid = m.readUInt32LE(TWOPHASE_XID);
    const nsub = m.readInt32LE(TWOPHASE_NSUBXACTS);
    const subStart = maxAlign(TWOPHASE_HEADER_BYTES) + maxAlign(m.readUInt16LE(TWOPHASE_GIDLEN));
    if (nsub < 0 || subStart + 4 * nsub > m.length) throw walCorrupt(rec, what, `${nsub} subtransactions do not fit in ${m.length} bytes`);
    const file = Buffer.alloc(m.length + CRC_BYTES);
    m.copy(file, 0);
    file.writeUInt32LE(crc32c(m), m.length);
    this.putAux(AUX_TWOPHASE, xid, file, rec.endLsn);
    if (advanceNextXidPast(this.state, xid)) this.dirty = true;
    for (let i = 0; i < nsub; i++) if (advanceNextXidPast(this.state, m.readUInt32LE(subStart + 4 * i))) this.dirty = true;
  }

  // ---- CLOG ----------------------------------------------------------------------------------

  private clog(rec: DecodedRecord, op: number): void {
    if (op === CLOG_ZEROPAGE) {
      this.zeroPage(SLRU_XACT, mainData(rec, 4, 'CLOG/ZEROPAGE').readUInt32LE(0), rec.endLsn);
    } else if (op === CLOG_TRUNCATE) {
      // clog_redo advances oldestClogXid; the primary set oldestXid to the same xid just before
      // (vac_truncate_clog), and a PostgreSQL started with an older oldestXid would look up
      // transaction status in the pages just removed.
      const m = mainData(rec, CLOG_TRUNCATE_BYTES, 'CLOG/TRUNCATE');
      const s = this.state;
      const oldest = m.readUInt32LE(4);
      this.set(() => {
        if (s.oldestClogXid === null || transactionIdPrecedes(s.oldestClogXid, oldest)) s.oldestClogXid = oldest;
        if (transactionIdPrecedes(s.oldestXid, oldest)) {
          s.oldestXid = oldest;
          s.oldestXidDb = m.readUInt32LE(8);
        }
      });
    }
  }

  // ---- MultiXact -----------------------------------------------------------------------------

  private async multixact(rec: DecodedRecord, op: number): Promise<void> {
    if (op === XLOG_MULTIXACT_ZERO_OFF_PAGE) {
      this.zeroPage(SLRU_MULTIXACT_OFFSETS, mainData(rec, 4, 'MultiXact/ZERO_OFF_PAGE').readUInt32LE(0), rec.endLsn);
    } else if (op === XLOG_MULTIXACT_ZERO_MEM_PAGE) {
      this.zeroPage(SLRU_MULTIXACT_MEMBERS, mainData(rec, 4, 'MultiXact/ZERO_MEM_PAGE').readUInt32LE(0), rec.endLsn);
    } else if (op === XLOG_MULTIXACT_CREATE_ID) {
      await this.createMultixact(rec);
    } else if (op === XLOG_MULTIXACT_TRUNCATE_ID) {
      // SetMultiXactIdLimit(endTruncOff, oldestMultiDB): the horizon is set, not only advanced.
      const m = mainData(rec, MULTIXACT_TRUNCATE_BYTES, 'MultiXact/TRUNCATE_ID');
      const s = this.state;
      this.set(() => {
        s.oldestMultiDb = m.readUInt32LE(0);
        s.oldestMulti = m.readUInt32LE(8);
        s.multiTruncation = { oldestMulti: m.readUInt32LE(8), oldestOffset: m.readUInt32LE(16) };
      });
    }
  }

  /**
   * CREATE_ID, as RecordNewMultiXact (PostgreSQL 15.18) and multixact_redo do it: the multixact's
   * starting offset and the next multixact's (where its members will start), the members on their
   * pages (offsets wrap at 2^32), then nextMulti / nextMultiOffset and nextXid past every member.
   */
  private async createMultixact(rec: DecodedRecord): Promise<void> {
    const what = 'MultiXact/CREATE_ID';
    const m = mainData(rec, MULTIXACT_CREATE_HEADER, what);
    const mid = m.readUInt32LE(0);
    const moff = m.readUInt32LE(4);
    const n = m.readInt32LE(8);
    if (n < 0 || m.length < MULTIXACT_CREATE_HEADER + MULTIXACT_MEMBER_BYTES * n) throw walCorrupt(rec, what, `${n} members do not fit in ${m.length} bytes`);
    const members: MultiXactMember[] = [];
    for (let i = 0; i < n; i++) {
      const at = MULTIXACT_CREATE_HEADER + MULTIXACT_MEMBER_BYTES * i;
      members.push({ xid: m.readUInt32LE(at), status: m.readUInt32LE(at + 4) });
    }
    let next = (mid + 1) >>> 0;
    if (next < FIRST_MULTIXACT_ID) next = FIRST_MULTIXACT_ID;
    let nextOffset = (moff + n) >>> 0;
    if (nextOffset === 0) nextOffset = 1; // GetNewMultiXactId never hands out offset 0
    const lsn = rec.endLsn;
    const page = offsetsPageOf(mid);
    const own: Array<[number, number]> = [[mid, moff]];
    if (offsetsPageOf(next) === page) own.push([next, nextOffset]);
    await this.putOffsets(page, own, rec);
    if (offsetsPageOf(next) !== page) await this.putOffsets(offsetsPageOf(next), [[next, nextOffset]], rec);
    for (let i = 0; i < n;) {
      const first = (moff + i) >>> 0;
      const memberPage = membersPageOf(first);
      const room = MULTIXACT_MEMBERS_PER_PAGE - (first % MULTIXACT_MEMBERS_PER_PAGE);
      const chunk = members.slice(i, i + room).filter((_, j) => membersPageOf((first + j) >>> 0) === memberPage);
      const willInit = await this.slruPageMissing(SLRU_MULTIXACT_MEMBERS, memberPage);
      this.putSlru(SLRU_MULTIXACT_MEMBERS, memberPage, lsn, multixactMembersRecord(memberPage, first, chunk, lsn, rec.xid, willInit));
      i += chunk.length;
    }
    if (advanceNextMulti(this.state, (mid + 1) >>> 0, (moff + n) >>> 0)) this.dirty = true;
    let latest = rec.xid;
    for (const mb of members) if (transactionIdPrecedes(latest, mb.xid)) latest = mb.xid;
    if (advanceNextXidPast(this.state, latest)) this.dirty = true;
  }

  private async putOffsets(page: number, entries: Array<[number, number]>, rec: DecodedRecord): Promise<void> {
    const willInit = await this.slruPageMissing(SLRU_MULTIXACT_OFFSETS, page);
    this.putSlru(SLRU_MULTIXACT_OFFSETS, page, rec.endLsn, multixactOffsetsRecord(page, entries, rec.endLsn, rec.xid, willInit));
  }

  // ---- SLRU pages ----------------------------------------------------------------------------

  private zeroPage(slru: number, pageno: number, lsn: Lsn): void {
    this.putSlru(slru, pageno, lsn, ZERO_RECORD);
  }

  private putSlru(slru: number, pageno: number, lsn: Lsn, value: Buffer): void {
    const key = slruPageKey(slru, pageno);
    this.put(key, lsn, value);
    this.slruExists.set(key.toString('hex'), true);
  }

  /** Whether the page does not exist yet (its record then starts from zeros). */
  private async slruPageMissing(slru: number, pageno: number): Promise<boolean> {
    const key = slruPageKey(slru, pageno);
    const id = key.toString('hex');
    let exists = this.slruExists.get(id);
    if (exists === undefined) {
      // Nothing pending touches this key (every value this run writes marks it): the timeline knows.
      const { status } = await this.tl.getPagesWithStatus([key], this.tl.lastRecordLsn);
      exists = status[0] === 0;
      this.slruExists.set(id, exists);
    }
    return !exists;
  }
}

/**
 * ParseCommitRecord / ParseAbortRecord (xactdesc.c), as far as the transaction tree: after
 * xact_time and xinfo come, in order, dbinfo, subxacts, relfilenodes, dropped stats, invalidations
 * (commit only), then the two-phase xid.
 */
function parseXactEnd(rec: DecodedRecord, op: number): XactEnd {
  const committed = op === XLOG_XACT_COMMIT || op === XLOG_XACT_COMMIT_PREPARED;
  const prepared = op === XLOG_XACT_COMMIT_PREPARED || op === XLOG_XACT_ABORT_PREPARED;
  const what = 'Transaction';
  const m = mainData(rec, XACT_TIME_BYTES, what);
  let o = XACT_TIME_BYTES;
  const need = (n: number): void => { if (o + n > m.length) throw walCorrupt(rec, what, `main data of ${m.length} bytes ends inside its xinfo sections`); };
  /** A counted section (int32 count, then entries): returns its offset and count, and moves past it. */
  const section = (entry: number): { at: number; n: number } => {
    need(4);
    const n = m.readInt32LE(o);
    if (n < 0) throw walCorrupt(rec, what, `a section with ${n} entries`);
    need(4 + entry * n);
    const at = o + 4;
    o = at + entry * n;
    return { at, n };
  };
  let xinfo = 0;
  if ((rec.info & XLOG_XACT_HAS_INFO) !== 0) {
    need(4);
    xinfo = m.readUInt32LE(o);
    o += 4;
  }
  if ((xinfo & XACT_XINFO_HAS_DBINFO) !== 0) { need(DBINFO_BYTES); o += DBINFO_BYTES; }
  const subxacts: number[] = [];
  if ((xinfo & XACT_XINFO_HAS_SUBXACTS) !== 0) {
    const { at, n } = section(4);
    for (let i = 0; i < n; i++) subxacts.push(m.readUInt32LE(at + 4 * i));
  }
  if ((xinfo & XACT_XINFO_HAS_RELFILENODES) !== 0) section(RELFILENODE_BYTES);
  if ((xinfo & XACT_XINFO_HAS_DROPPED_STATS) !== 0) section(STATS_ITEM_BYTES);
  if (committed && (xinfo & XACT_XINFO_HAS_INVALS) !== 0) section(INVAL_MSG_BYTES);
  let xid = rec.xid;
  if ((xinfo & XACT_XINFO_HAS_TWOPHASE) !== 0) {
    need(4);
    xid = m.readUInt32LE(o);
  } else if (prepared) {
    throw walCorrupt(rec, what, 'a prepared transaction\'s end without its two-phase xid');
  }
  if (xid === 0) throw walCorrupt(rec, what, 'the transaction has no xid');
  return { xid, subxacts, committed, prepared };
}
