/**
 * Reference side of the cluster-state tests: what PostgreSQL's own files and tools say.
 *
 *   slruFiles(dataDir, slru)       every page of pg_xact / pg_multixact/offsets / members, by page number
 *   twophaseFiles, relmapFiles     pg_twophase/* and every pg_filenode.map
 *   controlFields(raw)             pg_controldata's lines as the fields of readClusterState
 *   compareWithDataDir(tl, lsn, dir)  what the read API (lib/pg/pg_state.ts) returns at an LSN against
 *                                  a stopped data directory: the list of differences
 *   stateEvents(walDir, start)     the records that change the cluster state, from pg_waldump's
 *                                  descriptions (never from Strata's decoder): transaction ends
 *                                  with their subxacts, prepares, CLOG zero pages, multixacts
 *                                  with their members, NEXTOID
 *
 * Written from the file layouts (slru.c: 32 pages per segment file named %04X) and pg_waldump's
 * output format (xactdesc.c, mxactdesc.c, clogdesc.c, xlogdesc.c of REL_15_STABLE).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TimelineImpl } from '../../lib/engine/timeline';
import { formatLsn, parseLsn } from '../../lib/lsn';
import { readClusterState, readRelmaps, readSlruPages, readTwoPhaseFiles, type PgClusterState } from '../../lib/pg/pg_state';
import { PG_BIN_DIR, pgEnv, readControlData } from './pg_cluster';

export const SLRU_DIRS = ['pg_xact', 'pg_multixact/offsets', 'pg_multixact/members'] as const;
const PAGE = 8192;
const PAGES_PER_SEGMENT = 32;

/** Every page of an SLRU directory, by page number (segment × 32 + page). */
export function slruFiles(dataDir: string, slru: number): Map<number, Buffer> {
  const dir = path.join(dataDir, SLRU_DIRS[slru]);
  const out = new Map<number, Buffer>();
  for (const name of fs.readdirSync(dir).filter((n) => /^[0-9A-F]{4,6}$/.test(n))) {
    const bytes = fs.readFileSync(path.join(dir, name));
    const segment = parseInt(name, 16);
    for (let p = 0; p * PAGE < bytes.length; p++) out.set(segment * PAGES_PER_SEGMENT + p, Buffer.from(bytes.subarray(p * PAGE, (p + 1) * PAGE)));
  }
  return out;
}

/** pg_twophase/<xid> files, by xid. */
export function twophaseFiles(dataDir: string): Map<number, Buffer> {
  const dir = path.join(dataDir, 'pg_twophase');
  const out = new Map<number, Buffer>();
  for (const name of fs.readdirSync(dir).filter((n) => /^[0-9A-F]{8}$/.test(n))) out.set(parseInt(name, 16), fs.readFileSync(path.join(dir, name)));
  return out;
}

/** Every pg_filenode.map, keyed "spcOid/dbOid" (global: 1664/0; databases: 1663/<oid>). */
export function relmapFiles(dataDir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  out.set('1664/0', fs.readFileSync(path.join(dataDir, 'global', 'pg_filenode.map')));
  for (const db of fs.readdirSync(path.join(dataDir, 'base')).filter((n) => /^\d+$/.test(n))) {
    const f = path.join(dataDir, 'base', db, 'pg_filenode.map');
    if (fs.existsSync(f)) out.set(`1663/${db}`, fs.readFileSync(f));
  }
  return out;
}

/** pg_controldata's fields, named as readClusterState names them. */
export interface ControlFields {
  checkpointLsn: bigint;
  redoLsn: bigint;
  timeline: number;
  prevTimeline: number;
  fullPageWrites: boolean;
  nextXid: bigint;
  nextOid: number;
  nextMulti: number;
  nextMultiOffset: number;
  oldestXid: number;
  oldestXidDb: number;
  oldestActiveXid: number;
  oldestMulti: number;
  oldestMultiDb: number;
  oldestCommitTsXid: number;
  newestCommitTsXid: number;
  walLevel: number;
  walLogHints: boolean;
  maxConnections: number;
  maxWorkerProcesses: number;
  maxWalSenders: number;
  maxPreparedXacts: number;
  maxLocksPerXact: number;
  trackCommitTimestamp: boolean;
  dataChecksums: boolean;
}

const WAL_LEVELS: Readonly<Record<string, number>> = { minimal: 0, replica: 1, logical: 2 };

export function controlFields(raw: Record<string, string>): ControlFields {
  const get = (k: string): string => {
    const v = raw[k];
    if (v === undefined) throw new Error(`pg_controldata printed no "${k}"`);
    return v;
  };
  const num = (k: string): number => Number(get(k));
  const onOff = (k: string): boolean => get(k) === 'on';
  const [epoch, xid] = get("Latest checkpoint's NextXID").split(':').map(BigInt);
  return {
    checkpointLsn: parseLsn(get('Latest checkpoint location')),
    redoLsn: parseLsn(get("Latest checkpoint's REDO location")),
    timeline: num("Latest checkpoint's TimeLineID"),
    prevTimeline: num("Latest checkpoint's PrevTimeLineID"),
    fullPageWrites: onOff("Latest checkpoint's full_page_writes"),
    nextXid: (epoch << 32n) | xid,
    nextOid: num("Latest checkpoint's NextOID"),
    nextMulti: num("Latest checkpoint's NextMultiXactId"),
    nextMultiOffset: num("Latest checkpoint's NextMultiOffset"),
    oldestXid: num("Latest checkpoint's oldestXID"),
    oldestXidDb: num("Latest checkpoint's oldestXID's DB"),
    oldestActiveXid: num("Latest checkpoint's oldestActiveXID"),
    oldestMulti: num("Latest checkpoint's oldestMultiXid"),
    oldestMultiDb: num("Latest checkpoint's oldestMulti's DB"),
    oldestCommitTsXid: num("Latest checkpoint's oldestCommitTsXid"),
    newestCommitTsXid: num("Latest checkpoint's newestCommitTsXid"),
    walLevel: WAL_LEVELS[get('wal_level setting')],
    walLogHints: onOff('wal_log_hints setting'),
    maxConnections: num('max_connections setting'),
    maxWorkerProcesses: num('max_worker_processes setting'),
    maxWalSenders: num('max_wal_senders setting'),
    maxPreparedXacts: num('max_prepared_xacts setting'),
    maxLocksPerXact: num('max_locks_per_xact setting'),
    trackCommitTimestamp: onOff('track_commit_timestamp setting'),
    dataChecksums: num('Data page checksum version') !== 0,
  };
}

/** The fields of readClusterState that pg_controldata prints. */
export function asControlFields(s: PgClusterState): ControlFields {
  return {
    checkpointLsn: s.checkpoint.startLsn,
    redoLsn: s.checkpoint.checkpoint.redo,
    timeline: s.timeline,
    prevTimeline: s.prevTimeline,
    fullPageWrites: s.fullPageWrites,
    nextXid: s.nextXid,
    nextOid: s.nextOid,
    nextMulti: s.nextMulti,
    nextMultiOffset: s.nextMultiOffset,
    oldestXid: s.oldestXid,
    oldestXidDb: s.oldestXidDb,
    oldestActiveXid: s.oldestActiveXid,
    oldestMulti: s.oldestMulti,
    oldestMultiDb: s.oldestMultiDb,
    oldestCommitTsXid: s.oldestCommitTsXid,
    newestCommitTsXid: s.newestCommitTsXid,
    walLevel: s.walLevel,
    walLogHints: s.walLogHints,
    maxConnections: s.maxConnections,
    maxWorkerProcesses: s.maxWorkerProcesses,
    maxWalSenders: s.maxWalSenders,
    maxPreparedXacts: s.maxPreparedXacts,
    maxLocksPerXact: s.maxLocksPerXact,
    trackCommitTimestamp: s.trackCommitTimestamp,
    dataChecksums: s.dataChecksums,
  };
}

/** Everything the read API returns at an LSN. */
export interface StateSnapshot {
  state: PgClusterState;
  /** By SLRU number: page number → bytes. */
  slrus: Array<Map<number, Buffer>>;
  twophase: Map<number, Buffer>;
  /** "spcOid/dbOid" → bytes. */
  relmaps: Map<string, Buffer>;
}

export async function stateSnapshot(tl: TimelineImpl, lsn: bigint): Promise<StateSnapshot> {
  const slrus: Array<Map<number, Buffer>> = [];
  for (const slru of [0, 1, 2]) slrus.push(new Map((await readSlruPages(tl, slru, lsn)).map((p) => [p.pageno, p.bytes])));
  return {
    state: await readClusterState(tl, lsn),
    slrus,
    twophase: new Map((await readTwoPhaseFiles(tl, lsn)).map((f) => [f.xid, f.bytes])),
    relmaps: new Map((await readRelmaps(tl, lsn)).map((f) => [`${f.spcOid}/${f.dbOid}`, f.bytes])),
  };
}

function compareFiles(what: string, got: Map<number | string, Buffer>, want: Map<number | string, Buffer>, out: string[]): void {
  for (const [name, bytes] of want) {
    const g = got.get(name);
    if (g === undefined) out.push(`${what} ${name}: missing`);
    else if (!g.equals(bytes)) out.push(`${what} ${name}: differs (${g.length} vs ${bytes.length} bytes)`);
  }
  for (const name of got.keys()) if (!want.has(name)) out.push(`${what} ${name}: not in the data directory`);
}

/**
 * The read API at `lsn` against a stopped data directory: every SLRU page, pg_twophase file and
 * pg_filenode.map byte for byte, and pg_controldata's fields. Returns the differences (none: []).
 */
export async function compareWithDataDir(tl: TimelineImpl, lsn: bigint, dataDir: string): Promise<string[]> {
  const got = await stateSnapshot(tl, lsn);
  const out: string[] = [];
  for (const slru of [0, 1, 2]) compareFiles(SLRU_DIRS[slru], got.slrus[slru], slruFiles(dataDir, slru), out);
  compareFiles('pg_twophase', got.twophase, twophaseFiles(dataDir), out);
  compareFiles('pg_filenode.map', got.relmaps, relmapFiles(dataDir), out);
  const want = controlFields((await readControlData(dataDir)).raw);
  const mine = asControlFields(got.state);
  for (const k of Object.keys(want) as Array<keyof ControlFields>) {
    if (mine[k] !== want[k]) out.push(`pg_control ${k}: ${String(mine[k])}, PostgreSQL says ${String(want[k])}`);
  }
  return out;
}

// ---- pg_waldump ----------------------------------------------------------------------------------

export type StateEvent =
  | { kind: 'end'; lsn: bigint; next: bigint; xid: number; subxacts: number[]; committed: boolean; prepared: boolean }
  | { kind: 'prepare'; lsn: bigint; next: bigint; xid: number; subxacts: number[] }
  | { kind: 'clog-zero'; lsn: bigint; next: bigint; page: number }
  | { kind: 'multixact'; lsn: bigint; next: bigint; mid: number; moff: number; members: Array<{ xid: number; status: number }> }
  | { kind: 'nextoid'; lsn: bigint; next: bigint; oid: number };

const LINE = /^rmgr: (\S+)\s+len \(rec\/tot\):\s+\d+\/\s*\d+, tx:\s+(\d+), lsn: ([0-9A-F]+\/[0-9A-F]+), prev \S+, desc: (\S+) ?(.*)$/;
const MEMBER_STATUS: Readonly<Record<string, number>> = { keysh: 0, sh: 1, fornokeyupd: 2, forupd: 3, nokeyupd: 4, upd: 5 };

function subxactsOf(desc: string): number[] {
  const m = /; subxacts:((?: \d+)+)/.exec(desc);
  return m === null ? [] : m[1].trim().split(' ').map(Number);
}

/**
 * The state-changing records from `start` to the end of valid WAL, each with the start LSN of the
 * record after it (`next`, at or past its end; `endLsn` for the last record).
 */
export function stateEvents(walDir: string, start: bigint, endLsn: bigint): StateEvent[] {
  const r = spawnSync(path.join(PG_BIN_DIR, 'pg_waldump'), ['-p', walDir, '-s', formatLsn(start)], { encoding: 'utf8', maxBuffer: 1 << 30, env: pgEnv() });
  if (r.status !== 0 && !/error in WAL record/.test(r.stderr)) throw new Error(`pg_waldump failed: ${r.stderr}`);
  const lines = r.stdout.split('\n').map((l) => LINE.exec(l)).filter((m): m is RegExpExecArray => m !== null);
  const out: StateEvent[] = [];
  lines.forEach((m, i) => {
    const [, rmgr, tx, lsnText, op, desc] = m;
    const lsn = parseLsn(lsnText);
    const next = i + 1 < lines.length ? parseLsn(lines[i + 1][3]) : endLsn;
    const xid = Number(tx);
    if (rmgr === 'Transaction' && (op === 'COMMIT' || op === 'ABORT')) {
      out.push({ kind: 'end', lsn, next, xid, subxacts: subxactsOf(desc), committed: op === 'COMMIT', prepared: false });
    } else if (rmgr === 'Transaction' && (op === 'COMMIT_PREPARED' || op === 'ABORT_PREPARED')) {
      out.push({ kind: 'end', lsn, next, xid: Number(/^(\d+):/.exec(desc)?.[1]), subxacts: subxactsOf(desc), committed: op === 'COMMIT_PREPARED', prepared: true });
    } else if (rmgr === 'Transaction' && op === 'PREPARE') {
      out.push({ kind: 'prepare', lsn, next, xid, subxacts: subxactsOf(desc) });
    } else if (rmgr === 'CLOG' && op === 'ZEROPAGE') {
      out.push({ kind: 'clog-zero', lsn, next, page: Number(/^page (\d+)/.exec(desc)?.[1]) });
    } else if (rmgr === 'MultiXact' && op === 'CREATE_ID') {
      const h = /^(\d+) offset (\d+) nmembers (\d+): (.*)$/.exec(desc);
      if (h === null) throw new Error(`unparsed CREATE_ID: ${desc}`);
      const members = [...h[4].matchAll(/(\d+) \((\w+)\)/g)].map((x) => ({ xid: Number(x[1]), status: MEMBER_STATUS[x[2]] }));
      if (members.length !== Number(h[3])) throw new Error(`CREATE_ID lists ${members.length} of ${h[3]} members`);
      out.push({ kind: 'multixact', lsn, next, mid: Number(h[1]), moff: Number(h[2]), members });
    } else if (rmgr === 'XLOG' && op === 'NEXTOID') {
      out.push({ kind: 'nextoid', lsn, next, oid: Number(desc) });
    }
  });
  return out;
}

/** The 2-bit status of `xid` on its pg_xact page (0 in progress, 1 committed, 2 aborted, 3 sub-committed). */
export function clogStatus(page: Uint8Array, xid: number): number {
  const i = xid % 32768;
  return (page[i >> 2] >> ((i & 3) * 2)) & 3;
}

/** TransactionIdSetStatusBit on a model page. */
export function setClogStatus(page: Uint8Array, xid: number, status: number): void {
  const i = xid % 32768;
  const shift = (i & 3) * 2;
  page[i >> 2] = (page[i >> 2] & ~(3 << shift)) | (status << shift);
}

/** A member's xid and status on its members page (multixact.c: groups of 4 flag bytes then 4 xids). */
export function memberAt(page: Uint8Array, offset: number): { xid: number; status: number } {
  const inPage = offset % 1636;
  const group = Math.floor(inPage / 4);
  const b = Buffer.from(page.buffer, page.byteOffset, page.length);
  return { xid: b.readUInt32LE(group * 20 + 4 + (inPage % 4) * 4), status: page[group * 20 + (inPage % 4)] };
}
