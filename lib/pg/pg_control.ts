/**
 * global/pg_control of a PostgreSQL 15 cluster: ControlFileData, read as PostgreSQL 15 lays it out
 * on x86-64 (offsets from catalog/pg_control.h, checked against the server headers), with its
 * CRC-32C verified. Only version 1300 (PostgreSQL 15) is accepted: another major version has other
 * WAL and page formats, and is refused with BAD_PG_DATADIR rather than misread.
 */
import { StrataError } from '../errors';
import type { Lsn } from '../lsn';
import { crc32c } from '../core/pg_decoder';

/** PG_CONTROL_VERSION of PostgreSQL 15. */
export const PG15_CONTROL_VERSION = 1300;
/** The file's size (PG_CONTROL_FILE_SIZE); the struct fills its first CONTROL_STRUCT_SIZE bytes. */
export const PG_CONTROL_FILE_SIZE = 8192;

/** ControlFileData field offsets (PostgreSQL 15, x86-64). */
const OFF = {
  systemIdentifier: 0,     // u64
  pgControlVersion: 8,     // u32
  catalogVersionNo: 12,    // u32
  state: 16,               // DBState (u32)
  time: 24,                // pg_time_t: last update of the file
  checkPoint: 32,          // XLogRecPtr: start of the latest checkpoint record
  checkPointCopy: 40,      // CheckPoint (88 bytes)
  minRecoveryPoint: 136,   // XLogRecPtr
  minRecoveryPointTLI: 144, // TimeLineID
  backupStartPoint: 152,   // XLogRecPtr
  backupEndPoint: 160,     // XLogRecPtr
  backupEndRequired: 168,  // bool
  walLevel: 172,           // int
  walLogHints: 176,        // bool
  maxConnections: 180,     // int
  maxWorkerProcesses: 184, // int
  maxWalSenders: 188,      // int
  maxPreparedXacts: 192,   // int
  maxLocksPerXact: 196,    // int
  trackCommitTimestamp: 200, // bool
  blcksz: 216,             // u32
  relsegSize: 220,         // u32
  xlogBlcksz: 224,         // u32
  xlogSegSize: 228,        // u32
  dataChecksumVersion: 252, // u32
  crc: 288,                // pg_crc32c over every byte before it
} as const;

/** sizeof(CheckPoint): the checkpoint records' main data and pg_control's checkPointCopy. */
export const CHECKPOINT_SIZE = 88;

/** CheckPoint field offsets inside checkPointCopy. */
const CKPT = {
  redo: 0, thisTimeLineId: 8, prevTimeLineId: 12, fullPageWrites: 16, nextXid: 24, nextOid: 32, nextMulti: 36,
  nextMultiOffset: 40, oldestXid: 44, oldestXidDb: 48, oldestMulti: 52, oldestMultiDb: 56, time: 64,
  oldestCommitTsXid: 72, newestCommitTsXid: 76, oldestActiveXid: 80,
} as const;

/** DBState values of a cluster whose files are consistent at the checkpoint. */
export const DB_SHUTDOWNED = 1;
export const DB_SHUTDOWNED_IN_RECOVERY = 2;
export const DB_IN_PRODUCTION = 6;
const DB_STATE_NAMES = ['starting up', 'shut down', 'shut down in recovery', 'shutting down', 'in crash recovery', 'in archive recovery', 'in production'];

export interface CheckPointData {
  redo: Lsn;
  timeline: number;
  prevTimeline: number;
  fullPageWrites: boolean;
  nextXid: bigint;       // FullTransactionId
  nextOid: number;
  nextMulti: number;
  nextMultiOffset: number;
  oldestXid: number;
  oldestXidDb: number;
  oldestMulti: number;
  oldestMultiDb: number;
  time: bigint;          // pg_time_t, seconds since 1970
  oldestCommitTsXid: number;
  newestCommitTsXid: number;
  oldestActiveXid: number;
}

export interface ControlFile {
  systemIdentifier: bigint;
  pgControlVersion: number;
  catalogVersionNo: number;
  state: number;
  stateName: string;
  /** Start LSN of the latest checkpoint record. */
  checkPoint: Lsn;
  checkPointCopy: CheckPointData;
  walLevel: number;
  walLogHints: boolean;
  maxConnections: number;
  maxWorkerProcesses: number;
  maxWalSenders: number;
  maxPreparedXacts: number;
  maxLocksPerXact: number;
  trackCommitTimestamp: boolean;
  blockSize: number;
  relsegSize: number;
  walBlockSize: number;
  walSegmentSize: number;
  /** 0 without data checksums, else PG_DATA_CHECKSUM_VERSION (1). */
  dataChecksumVersion: number;
}

/** Parse and check pg_control's bytes; `where` names the file in errors. */
export function parseControlFile(bytes: Uint8Array, where: string): ControlFile {
  const fail = (why: string): never => { throw new StrataError('BAD_PG_DATADIR', `${where}: ${why}`); };
  if (bytes.length < OFF.crc + 4) fail(`${bytes.length} bytes, too short for pg_control`);
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const version = b.readUInt32LE(OFF.pgControlVersion);
  if (version !== PG15_CONTROL_VERSION) {
    fail(`pg_control version ${version} is not PostgreSQL 15's (${PG15_CONTROL_VERSION}): ` +
      (version > PG15_CONTROL_VERSION ? 'a newer' : 'an older') + ' PostgreSQL major version, which Strata does not read');
  }
  const stored = b.readUInt32LE(OFF.crc);
  const actual = crc32c(b.subarray(0, OFF.crc));
  if (stored !== actual) fail(`pg_control checksum mismatch (stored ${hex(stored)}, computed ${hex(actual)})`);
  const state = b.readUInt32LE(OFF.state);
  const cf: ControlFile = {
    systemIdentifier: b.readBigUInt64LE(OFF.systemIdentifier),
    pgControlVersion: version,
    catalogVersionNo: b.readUInt32LE(OFF.catalogVersionNo),
    state,
    stateName: DB_STATE_NAMES[state] ?? `unknown state ${state}`,
    checkPoint: b.readBigUInt64LE(OFF.checkPoint),
    checkPointCopy: parseCheckPoint(b, OFF.checkPointCopy),
    walLevel: b.readInt32LE(OFF.walLevel),
    walLogHints: b[OFF.walLogHints] !== 0,
    maxConnections: b.readInt32LE(OFF.maxConnections),
    maxWorkerProcesses: b.readInt32LE(OFF.maxWorkerProcesses),
    maxWalSenders: b.readInt32LE(OFF.maxWalSenders),
    maxPreparedXacts: b.readInt32LE(OFF.maxPreparedXacts),
    maxLocksPerXact: b.readInt32LE(OFF.maxLocksPerXact),
    trackCommitTimestamp: b[OFF.trackCommitTimestamp] !== 0,
    blockSize: b.readUInt32LE(OFF.blcksz),
    relsegSize: b.readUInt32LE(OFF.relsegSize),
    walBlockSize: b.readUInt32LE(OFF.xlogBlcksz),
    walSegmentSize: b.readUInt32LE(OFF.xlogSegSize),
    dataChecksumVersion: b.readUInt32LE(OFF.dataChecksumVersion),
  };
  if (cf.blockSize !== 8192 || cf.walBlockSize !== 8192) fail(`block size ${cf.blockSize} / WAL block size ${cf.walBlockSize}: Strata reads 8192-byte pages only`);
  if (cf.walSegmentSize !== 16 * 1024 * 1024) fail(`WAL segment size ${cf.walSegmentSize}: Strata reads 16 MB segments only`);
  return cf;
}

/** A CheckPoint struct (88 bytes at `off`): pg_control's copy, or a checkpoint record's main data. */
export function parseCheckPoint(bytes: Uint8Array, off: number): CheckPointData {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (off + CHECKPOINT_SIZE > b.length) throw new StrataError('BAD_ARGUMENT', `a CheckPoint needs ${CHECKPOINT_SIZE} bytes at ${off}, the buffer has ${b.length}`);
  return {
    redo: b.readBigUInt64LE(off + CKPT.redo),
    timeline: b.readUInt32LE(off + CKPT.thisTimeLineId),
    prevTimeline: b.readUInt32LE(off + CKPT.prevTimeLineId),
    fullPageWrites: b[off + CKPT.fullPageWrites] !== 0,
    nextXid: b.readBigUInt64LE(off + CKPT.nextXid),
    nextOid: b.readUInt32LE(off + CKPT.nextOid),
    nextMulti: b.readUInt32LE(off + CKPT.nextMulti),
    nextMultiOffset: b.readUInt32LE(off + CKPT.nextMultiOffset),
    oldestXid: b.readUInt32LE(off + CKPT.oldestXid),
    oldestXidDb: b.readUInt32LE(off + CKPT.oldestXidDb),
    oldestMulti: b.readUInt32LE(off + CKPT.oldestMulti),
    oldestMultiDb: b.readUInt32LE(off + CKPT.oldestMultiDb),
    time: b.readBigInt64LE(off + CKPT.time),
    oldestCommitTsXid: b.readUInt32LE(off + CKPT.oldestCommitTsXid),
    newestCommitTsXid: b.readUInt32LE(off + CKPT.newestCommitTsXid),
    oldestActiveXid: b.readUInt32LE(off + CKPT.oldestActiveXid),
  };
}

/** The 88 bytes of a CheckPoint struct (parseCheckPoint's inverse; padding zero). */
export function encodeCheckPoint(cp: CheckPointData): Buffer {
  const b = Buffer.alloc(CHECKPOINT_SIZE);
  b.writeBigUInt64LE(cp.redo, CKPT.redo);
  b.writeUInt32LE(cp.timeline, CKPT.thisTimeLineId);
  b.writeUInt32LE(cp.prevTimeline, CKPT.prevTimeLineId);
  b[CKPT.fullPageWrites] = cp.fullPageWrites ? 1 : 0;
  b.writeBigUInt64LE(cp.nextXid, CKPT.nextXid);
  b.writeUInt32LE(cp.nextOid, CKPT.nextOid);
  b.writeUInt32LE(cp.nextMulti, CKPT.nextMulti);
  b.writeUInt32LE(cp.nextMultiOffset, CKPT.nextMultiOffset);
  b.writeUInt32LE(cp.oldestXid, CKPT.oldestXid);
  b.writeUInt32LE(cp.oldestXidDb, CKPT.oldestXidDb);
  b.writeUInt32LE(cp.oldestMulti, CKPT.oldestMulti);
  b.writeUInt32LE(cp.oldestMultiDb, CKPT.oldestMultiDb);
  b.writeBigInt64LE(cp.time, CKPT.time);
  b.writeUInt32LE(cp.oldestCommitTsXid, CKPT.oldestCommitTsXid);
  b.writeUInt32LE(cp.newestCommitTsXid, CKPT.newestCommitTsXid);
  b.writeUInt32LE(cp.oldestActiveXid, CKPT.oldestActiveXid);
  return b;
}

/** What an exporter sets in pg_control (and its time, pg_time_t seconds); the rest is kept from the template. */
export type ControlFileRewrite = Pick<ControlFile,
  'state' | 'checkPoint' | 'checkPointCopy' | 'walLevel' | 'walLogHints' | 'maxConnections' | 'maxWorkerProcesses' |
  'maxWalSenders' | 'maxPreparedXacts' | 'maxLocksPerXact' | 'trackCommitTimestamp'> & { time: bigint };

/**
 * A new pg_control from `template` (a PostgreSQL 15 pg_control of the same cluster), as
 * pg_resetwal's RewriteControlFile does it: the new state and checkpoint, no minimum recovery
 * point and no backup in progress, then the CRC-32C over the struct. The rest (system identifier,
 * catalog version, compile-time constants, data checksum version, unlogged LSN, the mock
 * authentication nonce) stays as the template has it.
 */
export function rewriteControlFile(template: Uint8Array, u: ControlFileRewrite): Buffer {
  if (template.length !== PG_CONTROL_FILE_SIZE) throw new StrataError('BAD_ARGUMENT', `a pg_control template is ${PG_CONTROL_FILE_SIZE} bytes, got ${template.length}`);
  const b = Buffer.from(template);
  b.writeUInt32LE(u.state, OFF.state);
  b.writeBigInt64LE(u.time, OFF.time);
  b.writeBigUInt64LE(u.checkPoint, OFF.checkPoint);
  encodeCheckPoint(u.checkPointCopy).copy(b, OFF.checkPointCopy);
  b.writeBigUInt64LE(0n, OFF.minRecoveryPoint);
  b.writeUInt32LE(0, OFF.minRecoveryPointTLI);
  b.writeBigUInt64LE(0n, OFF.backupStartPoint);
  b.writeBigUInt64LE(0n, OFF.backupEndPoint);
  b[OFF.backupEndRequired] = 0;
  b.writeInt32LE(u.walLevel, OFF.walLevel);
  b[OFF.walLogHints] = u.walLogHints ? 1 : 0;
  b.writeInt32LE(u.maxConnections, OFF.maxConnections);
  b.writeInt32LE(u.maxWorkerProcesses, OFF.maxWorkerProcesses);
  b.writeInt32LE(u.maxWalSenders, OFF.maxWalSenders);
  b.writeInt32LE(u.maxPreparedXacts, OFF.maxPreparedXacts);
  b.writeInt32LE(u.maxLocksPerXact, OFF.maxLocksPerXact);
  b[OFF.trackCommitTimestamp] = u.trackCommitTimestamp ? 1 : 0;
  b.writeUInt32LE(crc32c(b.subarray(0, OFF.crc)), OFF.crc);
  return b;
}

/** The raw CheckPoint bytes of pg_control (checkPointCopy). */
export function checkPointCopyBytes(controlFile: Uint8Array): Buffer {
  return Buffer.from(controlFile.subarray(OFF.checkPointCopy, OFF.checkPointCopy + CHECKPOINT_SIZE));
}

function hex(v: number): string {
  return v.toString(16).padStart(8, '0');
}
