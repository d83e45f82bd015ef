/**
 * What PostgreSQL 15 keeps in pg_control and moves between checkpoints, tracked per LSN as two aux
 * values (docs/FORMAT.md, "Aux files"; docs/POSTGRES.md, "Checkpoint and control state"):
 *
 *   AUX_CHECKPOINT     the latest checkpoint record: its start and end LSN, whether it was a
 *                      shutdown checkpoint, and the CheckPoint struct exactly as logged (88 bytes)
 *   AUX_CONTROL_STATE  the counters and horizons a started PostgreSQL needs (nextXid, nextOid,
 *                      nextMulti, …), as PostgreSQL's own redo leaves them after each record; written
 *                      at a record's LSN only when the record changes one of them
 *
 * Both are written at import from pg_control and then by ingest (state_ingest.ts). The update rules
 * (xlog_redo, AdvanceNextFullTransactionIdPastXid, MultiXactAdvanceNextMXact, …) are here so that
 * ingest and tests share them.
 */
import { StrataError } from '../errors';
import type { Lsn } from '../lsn';
import { type CheckPointData, CHECKPOINT_SIZE, parseCheckPoint, type ControlFile } from './pg_control';

/** The latest checkpoint record at an LSN. */
export interface CheckpointInfo {
  /** Start LSN of the checkpoint record (pg_control's "Latest checkpoint location"). */
  startLsn: Lsn;
  /** End LSN of the record (where a restart from it begins reading). */
  endLsn: Lsn;
  /** XLOG CHECKPOINT_SHUTDOWN (else CHECKPOINT_ONLINE). */
  shutdown: boolean;
  /** The CheckPoint struct as logged. */
  checkpoint: CheckPointData;
  /** Its 88 bytes, for a pg_control writer. */
  raw: Buffer;
}

/** The control state at an LSN: what pg_control needs besides the latest checkpoint. */
export interface ControlState {
  /** FullTransactionId: epoch << 32 | xid. */
  nextXid: bigint;
  nextOid: number;
  nextMulti: number;
  nextMultiOffset: number;
  oldestXid: number;
  oldestXidDb: number;
  oldestMulti: number;
  oldestMultiDb: number;
  /**
   * The oldest xid whose pg_xact status is kept, from the last CLOG TRUNCATE (AdvanceOldestClogXid);
   * null until one is seen (pages are then as the import had them).
   */
  oldestClogXid: number | null;
  /**
   * The last multixact truncation (MultiXact TRUNCATE_ID): offsets kept from endTruncOff on,
   * members from endTruncMemb on; null until one is seen.
   */
  multiTruncation: { oldestMulti: number; oldestOffset: number } | null;
  oldestActiveXid: number;
  oldestCommitTsXid: number;
  newestCommitTsXid: number;
  timeline: number;
  prevTimeline: number;
  fullPageWrites: boolean;
  /** pg_control's copy of the settings XLOG PARAMETER_CHANGE logs (wal_log_hints is in cluster_state.ts). */
  walLevel: number;
  maxConnections: number;
  maxWorkerProcesses: number;
  maxWalSenders: number;
  maxPreparedXacts: number;
  maxLocksPerXact: number;
  trackCommitTimestamp: boolean;
}

// ---- PostgreSQL's comparisons (transam.h, multixact.c) -------------------------------------------

export const FIRST_NORMAL_TRANSACTION_ID = 3;
export const FIRST_MULTIXACT_ID = 1;
const TWO_32 = 2n ** 32n;

function int32(v: number): number {
  return v | 0;
}

/** TransactionIdPrecedes: modulo-2^32 order for normal xids, plain order for the permanent ones. */
export function transactionIdPrecedes(a: number, b: number): boolean {
  if (a < FIRST_NORMAL_TRANSACTION_ID || b < FIRST_NORMAL_TRANSACTION_ID) return a < b;
  return int32(a - b) < 0;
}

export function transactionIdFollowsOrEquals(a: number, b: number): boolean {
  if (a < FIRST_NORMAL_TRANSACTION_ID || b < FIRST_NORMAL_TRANSACTION_ID) return a >= b;
  return int32(a - b) >= 0;
}

/** MultiXactIdPrecedes and MultiXactOffsetPrecedes: modulo 2^32. */
export function multiXactPrecedes(a: number, b: number): boolean {
  return int32(a - b) < 0;
}

// ---- the update rules of PostgreSQL's redo -------------------------------------------------------

/**
 * AdvanceNextFullTransactionIdPastXid: nextXid moves past `xid` when xid is at or after it, into
 * the next epoch when the 32-bit counter wrapped. Returns whether it moved.
 */
export function advanceNextXidPast(s: ControlState, xid: number): boolean {
  const next = Number(s.nextXid & 0xffff_ffffn);
  if (!transactionIdFollowsOrEquals(xid, next)) return false;
  let x = (xid + 1) >>> 0;
  if (x < FIRST_NORMAL_TRANSACTION_ID) x = FIRST_NORMAL_TRANSACTION_ID;
  let epoch = s.nextXid / TWO_32;
  if (x < next) epoch += 1n;
  const full = epoch * TWO_32 + BigInt(x);
  if (full === s.nextXid) return false;
  s.nextXid = full;
  return true;
}

/** MultiXactAdvanceNextMXact: each counter only moves forward (modulo 2^32). */
export function advanceNextMulti(s: ControlState, minMulti: number, minOffset: number): boolean {
  let changed = false;
  if (multiXactPrecedes(s.nextMulti, minMulti)) {
    s.nextMulti = minMulti >>> 0;
    changed = true;
  }
  if (multiXactPrecedes(s.nextMultiOffset, minOffset)) {
    s.nextMultiOffset = minOffset >>> 0;
    changed = true;
  }
  return changed;
}

/** MultiXactAdvanceOldest: oldestMulti only moves forward. */
export function advanceOldestMulti(s: ControlState, oldestMulti: number, oldestMultiDb: number): boolean {
  if (!multiXactPrecedes(s.oldestMulti, oldestMulti)) return false;
  s.oldestMulti = oldestMulti;
  s.oldestMultiDb = oldestMultiDb;
  return true;
}

/**
 * xlog_redo of a checkpoint record. A shutdown checkpoint's counters are believed exactly; an online
 * one's are minimums (nextOid is ignored: NEXTOID records track it, the checkpoint's is stale). The
 * checkpoint's own fields without a redo rule (timeline, full_page_writes, commit-timestamp
 * horizon, oldestActiveXid) are taken as logged.
 */
export function applyCheckpoint(s: ControlState, cp: CheckPointData, shutdown: boolean): void {
  if (shutdown) {
    s.nextXid = cp.nextXid;
    s.nextOid = cp.nextOid;
    s.nextMulti = cp.nextMulti;
    s.nextMultiOffset = cp.nextMultiOffset;
    advanceOldestMulti(s, cp.oldestMulti, cp.oldestMultiDb);
    s.oldestXid = cp.oldestXid;
    s.oldestXidDb = cp.oldestXidDb;
  } else {
    if (s.nextXid < cp.nextXid) s.nextXid = cp.nextXid;
    advanceNextMulti(s, cp.nextMulti, cp.nextMultiOffset);
    advanceOldestMulti(s, cp.oldestMulti, cp.oldestMultiDb);
    if (transactionIdPrecedes(s.oldestXid, cp.oldestXid)) {
      s.oldestXid = cp.oldestXid;
      s.oldestXidDb = cp.oldestXidDb;
    }
  }
  s.timeline = cp.timeline;
  s.prevTimeline = cp.prevTimeline;
  s.fullPageWrites = cp.fullPageWrites;
  s.oldestActiveXid = cp.oldestActiveXid;
  s.oldestCommitTsXid = cp.oldestCommitTsXid;
  s.newestCommitTsXid = cp.newestCommitTsXid;
}

/** The control state PostgreSQL starts from: pg_control's latest checkpoint and settings. */
export function controlStateFromControlFile(cf: ControlFile): ControlState {
  const cp = cf.checkPointCopy;
  return {
    nextXid: cp.nextXid,
    nextOid: cp.nextOid,
    nextMulti: cp.nextMulti,
    nextMultiOffset: cp.nextMultiOffset,
    oldestXid: cp.oldestXid,
    oldestXidDb: cp.oldestXidDb,
    oldestMulti: cp.oldestMulti,
    oldestMultiDb: cp.oldestMultiDb,
    oldestClogXid: null,
    multiTruncation: null,
    oldestActiveXid: cp.oldestActiveXid,
    oldestCommitTsXid: cp.oldestCommitTsXid,
    newestCommitTsXid: cp.newestCommitTsXid,
    timeline: cp.timeline,
    prevTimeline: cp.prevTimeline,
    fullPageWrites: cp.fullPageWrites,
    walLevel: cf.walLevel,
    maxConnections: cf.maxConnections,
    maxWorkerProcesses: cf.maxWorkerProcesses,
    maxWalSenders: cf.maxWalSenders,
    maxPreparedXacts: cf.maxPreparedXacts,
    maxLocksPerXact: cf.maxLocksPerXact,
    trackCommitTimestamp: cf.trackCommitTimestamp,
  };
}

// ---- the aux values ------------------------------------------------------------------------------

const STATE_FORMAT = 1;
const STATE_BYTES = 96;
const FLAG_FULL_PAGE_WRITES = 0x01;
const FLAG_TRACK_COMMIT_TS = 0x02;
const FLAG_CLOG_TRUNCATED = 0x04;
const FLAG_MULTI_TRUNCATED = 0x08;
const FLAGS_KNOWN = FLAG_FULL_PAGE_WRITES | FLAG_TRACK_COMMIT_TS | FLAG_CLOG_TRUNCATED | FLAG_MULTI_TRUNCATED;

/** Control state value layout (little-endian; docs/FORMAT.md). */
const S = {
  format: 0, flags: 1, timeline: 4, prevTimeline: 8, nextOid: 12, nextXid: 16, nextMulti: 24, nextMultiOffset: 28,
  oldestXid: 32, oldestXidDb: 36, oldestMulti: 40, oldestMultiDb: 44, oldestClogXid: 48, truncOldestMulti: 52,
  truncOldestOffset: 56, oldestActiveXid: 60, oldestCommitTsXid: 64, newestCommitTsXid: 68, walLevel: 72,
  maxConnections: 76, maxWorkerProcesses: 80, maxWalSenders: 84, maxPreparedXacts: 88, maxLocksPerXact: 92,
} as const;

export function encodeControlState(s: ControlState): Buffer {
  const b = Buffer.alloc(STATE_BYTES);
  b[S.format] = STATE_FORMAT;
  b[S.flags] = (s.fullPageWrites ? FLAG_FULL_PAGE_WRITES : 0) | (s.trackCommitTimestamp ? FLAG_TRACK_COMMIT_TS : 0)
    | (s.oldestClogXid !== null ? FLAG_CLOG_TRUNCATED : 0) | (s.multiTruncation !== null ? FLAG_MULTI_TRUNCATED : 0);
  b.writeUInt32LE(s.timeline, S.timeline);
  b.writeUInt32LE(s.prevTimeline, S.prevTimeline);
  b.writeUInt32LE(s.nextOid, S.nextOid);
  b.writeBigUInt64LE(s.nextXid, S.nextXid);
  b.writeUInt32LE(s.nextMulti, S.nextMulti);
  b.writeUInt32LE(s.nextMultiOffset, S.nextMultiOffset);
  b.writeUInt32LE(s.oldestXid, S.oldestXid);
  b.writeUInt32LE(s.oldestXidDb, S.oldestXidDb);
  b.writeUInt32LE(s.oldestMulti, S.oldestMulti);
  b.writeUInt32LE(s.oldestMultiDb, S.oldestMultiDb);
  b.writeUInt32LE(s.oldestClogXid ?? 0, S.oldestClogXid);
  b.writeUInt32LE(s.multiTruncation?.oldestMulti ?? 0, S.truncOldestMulti);
  b.writeUInt32LE(s.multiTruncation?.oldestOffset ?? 0, S.truncOldestOffset);
  b.writeUInt32LE(s.oldestActiveXid, S.oldestActiveXid);
  b.writeUInt32LE(s.oldestCommitTsXid, S.oldestCommitTsXid);
  b.writeUInt32LE(s.newestCommitTsXid, S.newestCommitTsXid);
  b.writeInt32LE(s.walLevel, S.walLevel);
  b.writeInt32LE(s.maxConnections, S.maxConnections);
  b.writeInt32LE(s.maxWorkerProcesses, S.maxWorkerProcesses);
  b.writeInt32LE(s.maxWalSenders, S.maxWalSenders);
  b.writeInt32LE(s.maxPreparedXacts, S.maxPreparedXacts);
  b.writeInt32LE(s.maxLocksPerXact, S.maxLocksPerXact);
  return b;
}

export function decodeControlState(bytes: Uint8Array): ControlState {
  if (bytes.length < STATE_BYTES || bytes[S.format] !== STATE_FORMAT || (bytes[S.flags] & ~FLAGS_KNOWN) !== 0) {
    throw new StrataError('CORRUPT_LAYER', `control state of ${bytes.length} bytes, format ${bytes[0]}: not one this Strata writes`);
  }
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const flags = b[S.flags];
  return {
    nextXid: b.readBigUInt64LE(S.nextXid),
    nextOid: b.readUInt32LE(S.nextOid),
    nextMulti: b.readUInt32LE(S.nextMulti),
    nextMultiOffset: b.readUInt32LE(S.nextMultiOffset),
    oldestXid: b.readUInt32LE(S.oldestXid),
    oldestXidDb: b.readUInt32LE(S.oldestXidDb),
    oldestMulti: b.readUInt32LE(S.oldestMulti),
    oldestMultiDb: b.readUInt32LE(S.oldestMultiDb),
    oldestClogXid: (flags & FLAG_CLOG_TRUNCATED) !== 0 ? b.readUInt32LE(S.oldestClogXid) : null,
    multiTruncation: (flags & FLAG_MULTI_TRUNCATED) !== 0
      ? { oldestMulti: b.readUInt32LE(S.truncOldestMulti), oldestOffset: b.readUInt32LE(S.truncOldestOffset) } : null,
    oldestActiveXid: b.readUInt32LE(S.oldestActiveXid),
    oldestCommitTsXid: b.readUInt32LE(S.oldestCommitTsXid),
    newestCommitTsXid: b.readUInt32LE(S.newestCommitTsXid),
    timeline: b.readUInt32LE(S.timeline),
    prevTimeline: b.readUInt32LE(S.prevTimeline),
    fullPageWrites: (flags & FLAG_FULL_PAGE_WRITES) !== 0,
    walLevel: b.readInt32LE(S.walLevel),
    maxConnections: b.readInt32LE(S.maxConnections),
    maxWorkerProcesses: b.readInt32LE(S.maxWorkerProcesses),
    maxWalSenders: b.readInt32LE(S.maxWalSenders),
    maxPreparedXacts: b.readInt32LE(S.maxPreparedXacts),
    maxLocksPerXact: b.readInt32LE(S.maxLocksPerXact),
    trackCommitTimestamp: (flags & FLAG_TRACK_COMMIT_TS) !== 0,
  };
}

const CHECKPOINT_FORMAT = 1;
const CHECKPOINT_HEADER = 24;
const CHECKPOINT_SHUTDOWN_FLAG = 0x01;

/** AUX_CHECKPOINT: u8 format 1, u8 flags (0x01 shutdown), 6 reserved, u64 start LSN, u64 end LSN, the 88-byte CheckPoint. */
export function encodeCheckpoint(startLsn: Lsn, endLsn: Lsn, shutdown: boolean, raw: Uint8Array): Buffer {
  if (raw.length < CHECKPOINT_SIZE) throw new StrataError('BAD_ARGUMENT', `a CheckPoint is ${CHECKPOINT_SIZE} bytes, got ${raw.length}`);
  const b = Buffer.alloc(CHECKPOINT_HEADER + CHECKPOINT_SIZE);
  b[0] = CHECKPOINT_FORMAT;
  b[1] = shutdown ? CHECKPOINT_SHUTDOWN_FLAG : 0;
  b.writeBigUInt64LE(startLsn, 8);
  b.writeBigUInt64LE(endLsn, 16);
  b.set(raw.subarray(0, CHECKPOINT_SIZE), CHECKPOINT_HEADER);
  return b;
}

export function decodeCheckpoint(bytes: Uint8Array): CheckpointInfo {
  if (bytes.length < CHECKPOINT_HEADER + CHECKPOINT_SIZE || bytes[0] !== CHECKPOINT_FORMAT || (bytes[1] & ~CHECKPOINT_SHUTDOWN_FLAG) !== 0) {
    throw new StrataError('CORRUPT_LAYER', `checkpoint value of ${bytes.length} bytes, format ${bytes[0]}: not one this Strata writes`);
  }
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const raw = Buffer.from(b.subarray(CHECKPOINT_HEADER, CHECKPOINT_HEADER + CHECKPOINT_SIZE));
  return {
    startLsn: b.readBigUInt64LE(8),
    endLsn: b.readBigUInt64LE(16),
    shutdown: (b[1] & CHECKPOINT_SHUTDOWN_FLAG) !== 0,
    checkpoint: parseCheckPoint(raw, 0),
    raw,
  };
}
