/**
 * pg_waldump as the reference for the decoder tests: runs it with --bkp-details over a WAL
 * directory and parses every record line and block line, and names records as PostgreSQL 15's
 * rm_identify functions do (rmgr name from xl_rmid, operation name from xl_info).
 */
import { spawnSync } from 'child_process';
import { formatLsn, parseLsn } from '../../lib/lsn';
import { PG_BIN_DIR, pgEnv } from '../helpers/pg_cluster';
import * as path from 'path';

export interface DumpBlock {
  id: number;
  spcOid: number;
  dbOid: number;
  relNumber: number;
  fork: string;
  blockNumber: number;
  fpw: boolean;
  /** "FPW for WAL verification": an image without BKPIMAGE_APPLY. */
  forVerification: boolean;
  holeOffset: number;
  holeLength: number;
  /** "compression saved" and "method", when the image is compressed. */
  saved: number | null;
  method: string | null;
}

export interface DumpRecord {
  rmgr: string;
  recLen: number;
  totLen: number;
  xid: number;
  lsn: bigint;
  prev: bigint;
  /** The first word of desc: rm_identify's name, e.g. INSERT+INIT. */
  identify: string;
  blocks: DumpBlock[];
}

const RECORD_LINE = /^rmgr: (\S+)\s+len \(rec\/tot\):\s+(\d+)\/\s*(\d+), tx:\s+(\d+), lsn: ([0-9A-F]+\/[0-9A-F]+), prev ([0-9A-F]+\/[0-9A-F]+), desc: (\S+)/;
const BLOCK_LINE = /^\s+blkref #(\d+): rel (\d+)\/(\d+)\/(\d+) fork (\w+) blk (\d+)(?: \(FPW( for WAL verification)?\); hole: offset: (\d+), length: (\d+)(?:, compression saved: (\d+), method: (\w+))?)?\s*$/;

/** Every record pg_waldump prints from `start` to the end of valid WAL in `walDir`. */
export function waldump(walDir: string, start: bigint, end?: bigint): DumpRecord[] {
  const args = ['--bkp-details', '-p', walDir, '-s', formatLsn(start)];
  if (end !== undefined) args.push('-e', formatLsn(end));
  const r = spawnSync(path.join(PG_BIN_DIR, 'pg_waldump'), args, { encoding: 'utf8', maxBuffer: 1 << 30, env: pgEnv() });
  if (r.status !== 0 && !/error in WAL record/.test(r.stderr)) throw new Error(`pg_waldump failed: ${r.stderr}`);
  const out: DumpRecord[] = [];
  for (const line of r.stdout.split('\n')) {
    if (line === '') continue;
    const m = RECORD_LINE.exec(line);
    if (m) {
      out.push({
        rmgr: m[1], recLen: Number(m[2]), totLen: Number(m[3]), xid: Number(m[4]), lsn: parseLsn(m[5]), prev: parseLsn(m[6]),
        identify: m[7], blocks: [],
      });
      continue;
    }
    const b = BLOCK_LINE.exec(line);
    if (b && out.length > 0) {
      out[out.length - 1].blocks.push({
        id: Number(b[1]), spcOid: Number(b[2]), dbOid: Number(b[3]), relNumber: Number(b[4]), fork: b[5], blockNumber: Number(b[6]),
        fpw: b[8] !== undefined, forVerification: b[7] !== undefined,
        holeOffset: b[8] === undefined ? 0 : Number(b[8]), holeLength: b[9] === undefined ? 0 : Number(b[9]),
        saved: b[10] === undefined ? null : Number(b[10]), method: b[11] ?? null,
      });
      continue;
    }
    throw new Error(`unparsed pg_waldump line: ${line}`);
  }
  return out;
}

/** The record count pg_waldump --stats reports from `start` to the end of valid WAL. */
export function waldumpTotal(walDir: string, start: bigint): number {
  const r = spawnSync(path.join(PG_BIN_DIR, 'pg_waldump'), ['--stats', '-p', walDir, '-s', formatLsn(start)], { encoding: 'utf8', maxBuffer: 1 << 26, env: pgEnv() });
  const m = /^Total\s+(\d+)/m.exec(r.stdout);
  if (m === null) throw new Error(`pg_waldump --stats printed no total: ${r.stderr}`);
  return Number(m[1]);
}

/** RmgrData names of PostgreSQL 15 (rmgrlist.h), by xl_rmid. */
export const RMGR_NAMES = [
  'XLOG', 'Transaction', 'Storage', 'CLOG', 'Database', 'Tablespace', 'MultiXact', 'RelMap', 'Standby', 'Heap2', 'Heap',
  'Btree', 'Hash', 'Gin', 'Gist', 'Sequence', 'SPGist', 'BRIN', 'CommitTs', 'ReplicationOrigin', 'Generic', 'LogicalMessage',
];

const INIT_PAGE = 0x80;

/** Operation names by (info & mask), per rmgr (the *_identify functions of PostgreSQL 15). */
const IDENTIFY: Record<string, { mask: number; names: Record<number, string>; init?: boolean }> = {
  XLOG: {
    mask: 0xf0,
    names: {
      0x00: 'CHECKPOINT_SHUTDOWN', 0x10: 'CHECKPOINT_ONLINE', 0x20: 'NOOP', 0x30: 'NEXTOID', 0x40: 'SWITCH', 0x50: 'BACKUP_END',
      0x60: 'PARAMETER_CHANGE', 0x70: 'RESTORE_POINT', 0x80: 'FPW_CHANGE', 0x90: 'END_OF_RECOVERY', 0xa0: 'FPI_FOR_HINT',
      0xb0: 'FPI', 0xd0: 'OVERWRITE_CONTRECORD',
    },
  },
  Transaction: {
    mask: 0x70,
    names: { 0x00: 'COMMIT', 0x10: 'PREPARE', 0x20: 'ABORT', 0x30: 'COMMIT_PREPARED', 0x40: 'ABORT_PREPARED', 0x50: 'ASSIGNMENT', 0x60: 'INVALIDATION' },
  },
  Storage: { mask: 0xf0, names: { 0x10: 'CREATE', 0x20: 'TRUNCATE' } },
  CLOG: { mask: 0xf0, names: { 0x00: 'ZEROPAGE', 0x10: 'TRUNCATE' } },
  Database: { mask: 0xf0, names: { 0x00: 'CREATE_FILE_COPY', 0x10: 'CREATE_WAL_LOG', 0x20: 'DROP' } },
  MultiXact: { mask: 0xf0, names: { 0x00: 'ZERO_OFF_PAGE', 0x10: 'ZERO_MEM_PAGE', 0x20: 'CREATE_ID', 0x30: 'TRUNCATE_ID' } },
  RelMap: { mask: 0xf0, names: { 0x00: 'UPDATE' } },
  Standby: { mask: 0xf0, names: { 0x00: 'LOCK', 0x10: 'RUNNING_XACTS', 0x20: 'INVALIDATIONS' } },
  Heap2: {
    mask: 0x70,
    init: true,
    names: { 0x00: 'REWRITE', 0x10: 'PRUNE', 0x20: 'VACUUM', 0x30: 'FREEZE_PAGE', 0x40: 'VISIBLE', 0x50: 'MULTI_INSERT', 0x60: 'LOCK_UPDATED', 0x70: 'NEW_CID' },
  },
  Heap: {
    mask: 0x70,
    init: true,
    names: { 0x00: 'INSERT', 0x10: 'DELETE', 0x20: 'UPDATE', 0x30: 'TRUNCATE', 0x40: 'HOT_UPDATE', 0x50: 'HEAP_CONFIRM', 0x60: 'LOCK', 0x70: 'INPLACE' },
  },
  Btree: {
    mask: 0xf0,
    names: {
      0x00: 'INSERT_LEAF', 0x10: 'INSERT_UPPER', 0x20: 'INSERT_META', 0x30: 'SPLIT_L', 0x40: 'SPLIT_R', 0x50: 'INSERT_POST', 0x60: 'DEDUP',
      0x70: 'DELETE', 0x80: 'UNLINK_PAGE', 0x90: 'UNLINK_PAGE_META', 0xa0: 'NEWROOT', 0xb0: 'MARK_PAGE_HALFDEAD', 0xc0: 'VACUUM',
      0xd0: 'REUSE_PAGE', 0xe0: 'META_CLEANUP',
    },
  },
  Sequence: { mask: 0xf0, names: { 0x00: 'LOG' } },
  ReplicationOrigin: { mask: 0xf0, names: { 0x00: 'SET', 0x10: 'DROP' } },
};

/** rm_identify's name for (rmid, info), or `?rmgr/0xNN` when the table here lacks it. */
export function identify(rmid: number, info: number): string {
  const rmgr = RMGR_NAMES[rmid] ?? `rmgr${rmid}`;
  const t = IDENTIFY[rmgr];
  const name = t?.names[info & t.mask];
  if (t === undefined || name === undefined) return `?${rmgr}/0x${info.toString(16)}`;
  return t.init === true && (info & INIT_PAGE) !== 0 ? `${name}+INIT` : name;
}

export const FORK_NAMES = ['main', 'fsm', 'vm', 'init'];
