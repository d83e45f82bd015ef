/**
 * exportPgDatadir: the twin of import_datadir.ts. Writes a PostgreSQL 15 data directory holding the
 * cluster as of an LSN, which an unmodified PostgreSQL 15 starts as after a clean shutdown there
 * (docs/POSTGRES.md, "Restore: export at an LSN"):
 *
 *   relation forks   every main, visibility-map and init fork that exists at the LSN (1 GB segment
 *                    files), read in batches through the engine; the free-space map is not kept and
 *                    not written (PostgreSQL rebuilds it). An unlogged relation gets its main fork as
 *                    a copy of its init fork, as ResetUnloggedRelations(INIT) would make it after a
 *                    crash (a clean start does not reset them)
 *   SLRUs            pg_xact, pg_multixact/offsets and /members: 32-page segment files, gaps zeroed
 *   aux files        every pg_filenode.map, pg_twophase state files (the prepared transactions stay
 *                    prepared), the configuration files kept at import (or a minimal set), PG_VERSION
 *                    files and the empty directories PostgreSQL expects
 *   pg_control, WAL  one WAL segment, the one after the segment holding the LSN, whose first record
 *                    is a shutdown checkpoint built from the cluster state (pg_resetwal's
 *                    WriteEmptyXLOG), and a pg_control in state "shut down" pointing at it
 *                    (RewriteControlFile). pg_control is written last: a directory without it is an
 *                    export that did not finish
 *
 * Transactions in progress at the LSN have status 0 in pg_xact and are not running when the
 * exported cluster starts: PostgreSQL treats them as aborted.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32c } from '../core/pg_decoder';
import type { TimelineImpl } from '../engine/timeline';
import { describeValue, StrataError } from '../errors';
import { checkLsn, formatLsn, type Lsn } from '../lsn';
import { PAGE_SIZE } from '../record';
import { readAuxFiles } from './aux_files';
import {
  AUX_CONFIG_FILE, DEFAULTTABLESPACE_OID, GLOBALTABLESPACE_OID, INIT_FORKNUM, MAIN_FORKNUM, pageKeyOf, PG_CONFIG_FILES, type RelTag,
  SLRU_MULTIXACT_MEMBERS, SLRU_MULTIXACT_OFFSETS, SLRU_PAGES_PER_SEGMENT, SLRU_XACT, VISIBILITYMAP_FORKNUM,
} from './keyspace';
import { type CheckPointData, CHECKPOINT_SIZE, DB_SHUTDOWNED, encodeCheckPoint, rewriteControlFile } from './pg_control';
import { type PgClusterState, readClusterState, readRelmaps, readSlruPages, readTwoPhaseFiles } from './pg_state';
import { listRelationsAt } from './walingest';

export interface ExportPgDatadirOptions {
  /** The LSN to export at: any LSN from the import on that the timeline reaches (waited for like getPage). */
  lsn: Lsn;
  /** Called after every batch of pages and at each phase's end. */
  onProgress?: (p: ExportProgress) => void;
}

export interface ExportProgress {
  /** 'relations' (relation files), 'state' (SLRUs, maps, config, WAL, pg_control), 'done'. */
  phase: 'relations' | 'state' | 'done';
  /** Relation forks written so far, of forksTotal. */
  forks: number;
  forksTotal: number;
  /** Pages read from the timeline so far, of pagesTotal. */
  pages: number;
  pagesTotal: number;
  /** Bytes written into the directory so far. */
  bytes: number;
}

export interface ExportReport {
  lsn: Lsn;
  /** The directory, resolved. */
  dir: string;
  /** Relations (relfilenodes) written, and their pages (every fork read from the timeline). */
  relations: number;
  pages: number;
  /** Bytes of every file written (relation files, SLRUs, the WAL segment, …). */
  bytes: number;
  /** Where the new shutdown checkpoint record starts (pg_control's "Latest checkpoint location"). */
  checkpointLsn: Lsn;
  /** The WAL segment file written under pg_wal/. */
  walSegment: string;
  /** Prepared transactions written to pg_twophase/ (PostgreSQL restores them at startup). */
  preparedTransactions: number;
  /** 'imported': the configuration files kept at import; 'default': a minimal set (a timeline imported before they were kept). */
  configFiles: 'imported' | 'default';
  durationMs: number;
}

/** RELSEG_SIZE: blocks per 1 GB segment file. */
const RELSEG_BLOCKS = 131_072;
/** Pages read per core call (4 MiB). */
const READ_BATCH_PAGES = 512;
const FORK_SUFFIX: Readonly<Record<number, string>> = { [MAIN_FORKNUM]: '', [VISIBILITYMAP_FORKNUM]: '_vm', [INIT_FORKNUM]: '_init' };
const PG_VERSION_TEXT = '15\n';
const DIR_MODE = 0o700;
const FILE_MODE = 0o600;
/** initdb's subdirectories (PostgreSQL 15): PostgreSQL expects them even when empty. */
const PG_SUBDIRS = [
  'global', 'pg_wal', 'pg_wal/archive_status', 'pg_commit_ts', 'pg_dynshmem', 'pg_notify', 'pg_serial', 'pg_snapshots', 'pg_subtrans',
  'pg_twophase', 'pg_multixact', 'pg_multixact/members', 'pg_multixact/offsets', 'base', 'pg_replslot', 'pg_tblspc', 'pg_stat',
  'pg_stat_tmp', 'pg_xact', 'pg_logical', 'pg_logical/snapshots', 'pg_logical/mappings',
];
const SLRU_DIRS: ReadonlyArray<[number, string]> = [[SLRU_XACT, 'pg_xact'], [SLRU_MULTIXACT_OFFSETS, 'pg_multixact/offsets'], [SLRU_MULTIXACT_MEMBERS, 'pg_multixact/members']];

// ---- WAL (access/xlog_internal.h, access/xlogrecord.h, catalog/pg_control.h) ---------------------
const WAL_SEGMENT_BYTES = 16 * 1024 * 1024;
const WAL_PAGE_BYTES = 8192;
/** XLogSegmentsPerXLogId for 16 MB segments: the file name's middle part is segno / this. */
const WAL_SEGMENTS_PER_XLOGID = 0x1_0000_0000 / WAL_SEGMENT_BYTES;
const XLOG_PAGE_MAGIC = 0xd110;
const XLP_LONG_HEADER = 0x0002;
/** SizeOfXLogLongPHD: the long page header at a segment's start. */
const LONG_PAGE_HEADER_BYTES = 40;
/** SizeOfXLogRecord. */
const RECORD_HEADER_BYTES = 24;
/** offsetof(XLogRecord, xl_crc): the header bytes the CRC covers, after the payload. */
const RECORD_CRC_OFFSET = 20;
const XLR_BLOCK_ID_DATA_SHORT = 255;
const RM_XLOG_ID = 0;
const XLOG_CHECKPOINT_SHUTDOWN = 0x00;

/** The minimal configuration written when the timeline kept none (imported before config files were kept). */
const DEFAULT_CONFIG: Readonly<Record<string, string>> = {
  'postgresql.conf': '# Written by Strata\'s export: the timeline kept no configuration files (imported before\n# Strata kept them). PostgreSQL\'s defaults apply; edit before use.\n',
  'postgresql.auto.conf': '# Do not edit this file manually!\n# It will be overwritten by the ALTER SYSTEM command.\n',
  'pg_hba.conf': '# Written by Strata\'s export (the timeline kept no pg_hba.conf): local connections only.\n' +
    'local   all             all                                     peer\n' +
    'host    all             all             127.0.0.1/32            scram-sha-256\n' +
    'host    all             all             ::1/128                 scram-sha-256\n' +
    'local   replication     all                                     peer\n',
  'pg_ident.conf': '# Written by Strata\'s export (the timeline kept no pg_ident.conf).\n',
};

export async function exportPgDatadir(tl: TimelineImpl, dir: string, opts: ExportPgDatadirOptions): Promise<ExportReport> {
  const started = performance.now();
  tl.checkOpen();
  if (tl.extensions.pg === undefined) {
    throw new StrataError('BAD_ARGUMENT', `${tl.name}: exportPgDatadir needs a PostgreSQL timeline: import a data directory into it first (importPgDatadir)`);
  }
  if (opts === null || typeof opts !== 'object') throw new StrataError('BAD_ARGUMENT', 'exportPgDatadir needs { lsn }');
  if (typeof dir !== 'string' || dir === '' || dir.includes('\0')) throw new StrataError('BAD_ARGUMENT', `exportPgDatadir needs a directory path: got ${typeof dir === 'string' ? JSON.stringify(dir) : describeValue(dir)}`);
  checkLsn(opts.lsn, 'lsn');
  if (opts.onProgress !== undefined && typeof opts.onProgress !== 'function') throw new StrataError('BAD_ARGUMENT', `exportPgDatadir: onProgress must be a function: got ${describeValue(opts.onProgress)}`);
  const lsn = opts.lsn;
  // Everything about the LSN (a PostgreSQL timeline, at or after the import, reached, above the GC
  // cutoff) is checked here, before the directory is touched.
  const state = await readClusterState(tl, lsn);
  const target = path.resolve(dir);
  const created = prepareDirectory(target);
  const w = new Writer(target, opts.onProgress);
  w.bytes += PG_VERSION_TEXT.length;
  try {
    const rels = await writeRelations(tl, lsn, state, w);
    w.phase = 'state';
    w.report();
    const prepared = await writeClusterFiles(tl, lsn, state, w);
    const configFiles = await writeConfigFiles(tl, lsn, w, Math.max(state.maxPreparedXacts, prepared));
    const { checkpointLsn, walSegment } = writeWalAndControl(state, lsn, w);
    w.syncDirectories();
    w.phase = 'done';
    w.report();
    return {
      lsn, dir: target, relations: rels.relations, pages: rels.pages, bytes: w.bytes, checkpointLsn, walSegment,
      preparedTransactions: prepared, configFiles, durationMs: performance.now() - started,
    };
  } catch (e) {
    // The directory was empty or new: what is in it now is this export's, and half an export is
    // not a data directory.
    w.closeAll();
    removeExport(target, created);
    throw e;
  }
}

/** Create `dir` (mode 0700) or accept it empty; returns whether it was created. */
function prepareDirectory(dir: string): boolean {
  let entries: string[] | null = null;
  try {
    entries = fs.readdirSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') throw new StrataError('BAD_ARGUMENT', `${dir}: exists and is not a directory`);
    if (code !== 'ENOENT') throw new StrataError('IO_ERROR', `${dir}: ${(e as Error).message}`, { cause: e });
  }
  if (entries !== null && entries.length > 0) {
    throw new StrataError('BAD_ARGUMENT', `${dir}: not empty (${entries.length} entries): the export writes a new data directory into a new or empty one`);
  }
  try {
    if (entries === null) fs.mkdirSync(dir, { recursive: true, mode: DIR_MODE });
    // PostgreSQL refuses a data directory that group or others can read; the umask may have widened it.
    fs.chmodSync(dir, DIR_MODE);
  } catch (e) {
    throw new StrataError('IO_ERROR', `${dir}: cannot create the data directory: ${(e as Error).message}`, { cause: e });
  }
  // The export claims the directory by creating its first file exclusively: of two exports racing
  // into one empty directory, the second stops here, before it could remove the first one's files.
  let fd: number;
  try {
    fd = fs.openSync(path.join(dir, 'PG_VERSION'), 'wx', FILE_MODE);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new StrataError('BAD_ARGUMENT', `${dir}: not empty (another export writing into it?)`);
    throw new StrataError('IO_ERROR', `${dir}: ${(e as Error).message}`, { cause: e });
  }
  try {
    fs.writeSync(fd, PG_VERSION_TEXT);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.rmSync(path.join(dir, 'PG_VERSION'), { force: true });
    throw new StrataError('IO_ERROR', `${dir}/PG_VERSION: ${(e as Error).message}`, { cause: e });
  } finally {
    fs.closeSync(fd);
  }
  return entries === null;
}

function removeExport(dir: string, created: boolean): void {
  try {
    if (created) fs.rmSync(dir, { recursive: true, force: true });
    else for (const e of fs.readdirSync(dir)) fs.rmSync(path.join(dir, e), { recursive: true, force: true });
  } catch {
    // The export's own error is the one to report.
  }
}

/** Files and directories of one export: counts bytes, fsyncs what it wrote, reports progress. */
class Writer {
  phase: ExportProgress['phase'] = 'relations';
  bytes = 0;
  forks = 0;
  forksTotal = 0;
  pages = 0;
  pagesTotal = 0;
  private readonly dirs = new Set<string>();
  private readonly open = new Map<string, number>();

  constructor(readonly root: string, private readonly onProgress: ((p: ExportProgress) => void) | undefined) {
    this.dirs.add(root);
  }

  /** `rel` relative to the root, created with its parents (mode 0700). */
  mkdir(rel: string): string {
    const full = path.join(this.root, rel);
    if (this.dirs.has(full)) return full;
    this.mkdir(path.dirname(rel));
    try {
      fs.mkdirSync(full, { mode: DIR_MODE });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(full, e);
    }
    this.dirs.add(full);
    return full;
  }

  /** A whole small file, fsynced. */
  writeFile(rel: string, bytes: Uint8Array | string): void {
    const data = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
    this.mkdir(path.dirname(rel));
    const fd = this.openFile(rel);
    this.writeAt(fd, rel, data, 0);
    this.closeFile(rel);
  }

  /** An open descriptor for `rel` (created empty, mode 0600, on first use). */
  openFile(rel: string): number {
    const have = this.open.get(rel);
    if (have !== undefined) return have;
    const full = path.join(this.root, rel);
    try {
      const fd = fs.openSync(full, 'wx', FILE_MODE);
      this.open.set(rel, fd);
      return fd;
    } catch (e) {
      throw ioError(full, e);
    }
  }

  writeAt(fd: number, rel: string, data: Uint8Array, position: number): void {
    try {
      let done = 0;
      while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done, position + done);
    } catch (e) {
      throw ioError(path.join(this.root, rel), e);
    }
    this.bytes += data.length;
  }

  /** fsync and close. */
  closeFile(rel: string): void {
    const fd = this.open.get(rel);
    if (fd === undefined) return;
    this.open.delete(rel);
    try {
      fs.fsyncSync(fd);
    } catch (e) {
      throw ioError(path.join(this.root, rel), e);
    } finally {
      fs.closeSync(fd);
    }
  }

  closeAll(): void {
    for (const fd of this.open.values()) {
      try {
        fs.closeSync(fd);
      } catch {
        // already failing
      }
    }
    this.open.clear();
  }

  /** fsync every directory made (deepest first), so the new names are durable too. */
  syncDirectories(): void {
    for (const d of [...this.dirs].sort((a, b) => b.length - a.length)) {
      const fd = fs.openSync(d, 'r');
      try {
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    }
  }

  report(): void {
    this.onProgress?.({ phase: this.phase, forks: this.forks, forksTotal: this.forksTotal, pages: this.pages, pagesTotal: this.pagesTotal, bytes: this.bytes });
  }
}

function ioError(file: string, e: unknown): StrataError {
  if (e instanceof StrataError) return e;
  return new StrataError('IO_ERROR', `${file}: ${(e as Error).message}`, { cause: e });
}

// ---- relation files ----------------------------------------------------------------------------

/** One fork to write: where its pages come from and the files (without segment suffix) they go to. */
interface ForkJob {
  rel: RelTag;
  nblocks: number;
  /** Paths relative to the root; an unlogged relation's init fork also goes to its main fork. */
  targets: string[];
}

/** The directory of a relation's files: global/, base/<db>/, or pg_tblspc/<spc>/PG_15_<catversion>/<db>/. */
function relationDir(spcOid: number, dbOid: number, catalogVersion: number): string {
  if (spcOid === GLOBALTABLESPACE_OID) return 'global';
  if (spcOid === DEFAULTTABLESPACE_OID) return path.join('base', String(dbOid));
  return path.join('pg_tblspc', String(spcOid), tablespaceVersionDir(catalogVersion), String(dbOid));
}

/** TABLESPACE_VERSION_DIRECTORY. */
function tablespaceVersionDir(catalogVersion: number): string {
  return `PG_15_${catalogVersion}`;
}

/** The file of block `blk`'s segment: `<rel><fork suffix>` then `.N` for segment N ≥ 1. */
function segmentFile(base: string, blk: number): string {
  const seg = Math.floor(blk / RELSEG_BLOCKS);
  return seg === 0 ? base : `${base}.${seg}`;
}

async function writeRelations(tl: TimelineImpl, lsn: Lsn, state: PgClusterState, w: Writer): Promise<{ relations: number; pages: number }> {
  const forks = await listRelationsAt(tl, lsn, null, null);
  const unlogged = new Set(forks.filter((f) => f.rel.forkNum === INIT_FORKNUM).map((f) => relKeyOf(f.rel)));
  const jobs: ForkJob[] = [];
  for (const { rel, nblocks } of forks) {
    const suffix = FORK_SUFFIX[rel.forkNum];
    if (suffix === undefined) continue; // the FSM is never stored; nothing else exists
    const isUnlogged = unlogged.has(relKeyOf(rel));
    // An unlogged relation's other forks (none are WAL-logged) are what a reset removes.
    if (isUnlogged && rel.forkNum !== INIT_FORKNUM) continue;
    const dir = relationDir(rel.spcOid, rel.dbOid, state.catalogVersion);
    const base = path.join(dir, String(rel.relNumber));
    const targets = [`${base}${suffix}`];
    if (isUnlogged) targets.push(base);
    jobs.push({ rel, nblocks, targets });
  }
  w.forksTotal = jobs.length;
  w.pagesTotal = jobs.reduce((n, j) => n + j.nblocks, 0);
  w.report();

  // Every fork's first file exists even with 0 blocks (an empty heap's init fork, a just created relation).
  // One read is in flight while the previous batch is written: the native core reads on a libuv
  // thread, so reading and writing overlap.
  type Batch = { blocks: Array<{ job: ForkJob; blk: number }>; read: Promise<{ out: Buffer }> };
  let pending: Array<{ job: ForkJob; blk: number }> = [];
  let inflight: Batch | null = null;
  const write = async (b: Batch): Promise<void> => {
    const batch = b.blocks;
    // A block inside the relation that no record wrote comes back as zeros (its status
    // PAGE_STATUS_NOT_FOUND), as PostgreSQL extended it: exactly what the file must hold.
    const { out } = await b.read;
    // Runs of consecutive blocks of one segment file become one write each.
    let i = 0;
    while (i < batch.length) {
      const { job, blk } = batch[i];
      const seg = Math.floor(blk / RELSEG_BLOCKS);
      let j = i + 1;
      while (j < batch.length && batch[j].job === job && batch[j].blk === batch[j - 1].blk + 1 && Math.floor(batch[j].blk / RELSEG_BLOCKS) === seg) j++;
      const data = out.subarray(i * PAGE_SIZE, j * PAGE_SIZE);
      for (const t of job.targets) {
        const file = segmentFile(t, blk);
        w.writeAt(w.openFile(file), file, data, (blk % RELSEG_BLOCKS) * PAGE_SIZE);
      }
      const lastBlk = batch[j - 1].blk;
      // A segment file is complete at its last block or the fork's end.
      if (lastBlk === job.nblocks - 1 || (lastBlk + 1) % RELSEG_BLOCKS === 0) {
        for (const t of job.targets) w.closeFile(segmentFile(t, lastBlk));
      }
      if (lastBlk === job.nblocks - 1) w.forks++;
      i = j;
    }
    w.pages += batch.length;
    w.report();
  };
  /** Start reading what is pending, then write the batch read before it. */
  const flush = async (): Promise<void> => {
    let next: Batch | null = null;
    if (pending.length > 0) {
      const blocks = pending;
      pending = [];
      const read = tl.getPagesWithStatus(blocks.map((p) => pageKeyOf(p.job.rel, p.blk)), lsn);
      // Its failure is seen when it is awaited (in write); until then it must not count as unhandled.
      read.catch(() => undefined);
      next = { blocks, read };
    }
    const previous = inflight;
    inflight = next;
    if (previous !== null) await write(previous);
  };
  try {
    for (const job of jobs) {
      w.mkdir(path.dirname(job.targets[0]));
      if (job.nblocks === 0) {
        for (const t of job.targets) {
          w.openFile(t);
          w.closeFile(t);
        }
        w.forks++;
        continue;
      }
      for (let blk = 0; blk < job.nblocks; blk++) {
        pending.push({ job, blk });
        if (pending.length === READ_BATCH_PAGES) await flush();
      }
    }
    await flush(); // the last partial batch starts; the one before it is written
    await flush(); // and the last is written
  } finally {
    // On a failure a read may still be in flight: wait for it before the caller removes the files.
    const left = inflight as Batch | null;
    if (left !== null) await left.read.catch(() => undefined);
  }
  w.report();
  const relations = new Set(jobs.map((j) => relKeyOf(j.rel))).size;
  return { relations, pages: w.pages };
}

function relKeyOf(rel: RelTag): string {
  return `${rel.spcOid}/${rel.dbOid}/${rel.relNumber}`;
}

// ---- SLRUs, maps, two-phase files, PG_VERSION ----------------------------------------------------

async function writeClusterFiles(tl: TimelineImpl, lsn: Lsn, state: PgClusterState, w: Writer): Promise<number> {
  for (const d of PG_SUBDIRS) w.mkdir(d); // PG_VERSION in the root claimed the directory (prepareDirectory)
  for (const [slru, dir] of SLRU_DIRS) {
    const pages = await readSlruPages(tl, slru, lsn);
    const bySegment = new Map<number, typeof pages>();
    for (const p of pages) {
      const list = bySegment.get(p.segment) ?? [];
      list.push(p);
      bySegment.set(p.segment, list);
    }
    for (const [segment, list] of bySegment) {
      // A segment file is as long as its last page; a page PostgreSQL never wrote before it reads as zeros.
      const last = Math.max(...list.map((p) => p.page));
      if (last >= SLRU_PAGES_PER_SEGMENT) throw new StrataError('CORRUPT_LAYER', `${tl.name}: SLRU ${slru} page ${last} of segment ${segment} at ${formatLsn(lsn)}`);
      const file = Buffer.alloc((last + 1) * PAGE_SIZE);
      for (const p of list) p.bytes.copy(file, p.page * PAGE_SIZE);
      w.writeFile(path.join(dir, segment.toString(16).toUpperCase().padStart(4, '0')), file);
    }
  }
  // Every database's directory holds its pg_filenode.map and a PG_VERSION (copied from its template
  // when it was created); global/'s map is the shared catalogs'.
  for (const m of await readRelmaps(tl, lsn)) {
    const dir = m.spcOid === GLOBALTABLESPACE_OID ? 'global' : relationDir(m.spcOid, m.dbOid, state.catalogVersion);
    w.writeFile(path.join(dir, 'pg_filenode.map'), m.bytes);
    if (m.spcOid !== GLOBALTABLESPACE_OID) w.writeFile(path.join(dir, 'PG_VERSION'), PG_VERSION_TEXT);
  }
  // Prepared transactions stay prepared: PostgreSQL restores them (and their locks) at startup, as
  // after a clean shutdown with transactions prepared. Leaving them out would abort them silently.
  const twophase = await readTwoPhaseFiles(tl, lsn);
  for (const f of twophase) w.writeFile(path.join('pg_twophase', f.xid.toString(16).toUpperCase().padStart(8, '0')), f.bytes);
  return twophase.length;
}

/**
 * The configuration files kept at import, or (a timeline imported before they were kept) a minimal
 * set whose postgresql.conf allows as many prepared transactions as the primary did: with fewer
 * than the export restores, PostgreSQL would refuse to start.
 */
async function writeConfigFiles(tl: TimelineImpl, lsn: Lsn, w: Writer, maxPreparedXacts: number): Promise<'imported' | 'default'> {
  const kept = await readAuxFiles(tl, AUX_CONFIG_FILE, lsn);
  if (kept.length === 0) {
    for (const [name, text] of Object.entries(DEFAULT_CONFIG)) {
      const extra = name === 'postgresql.conf' && maxPreparedXacts > 0 ? `max_prepared_transactions = ${maxPreparedXacts}\n` : '';
      w.writeFile(name, text + extra);
    }
    return 'default';
  }
  for (const f of kept) {
    const name = PG_CONFIG_FILES[f.id];
    if (name === undefined) throw new StrataError('CORRUPT_LAYER', `${tl.name}: configuration file id ${f.id} at ${formatLsn(lsn)} is not one this Strata keeps`);
    w.writeFile(name, f.bytes);
  }
  return 'imported';
}

// ---- the WAL segment and pg_control --------------------------------------------------------------

/**
 * One WAL segment holding a shutdown checkpoint at its first record, and pg_control pointing at it
 * (pg_resetwal's WriteEmptyXLOG and RewriteControlFile). The segment is the one after the segment
 * holding `lsn`, so every page LSN of the export lies before the checkpoint.
 */
function writeWalAndControl(state: PgClusterState, lsn: Lsn, w: Writer): { checkpointLsn: Lsn; walSegment: string } {
  const segBytes = BigInt(WAL_SEGMENT_BYTES);
  const segno = lsn / segBytes + 1n;
  const checkpointLsn = segno * segBytes + BigInt(LONG_PAGE_HEADER_BYTES);
  const now = BigInt(Math.floor(Date.now() / 1000));
  const checkpoint: CheckPointData = {
    redo: checkpointLsn,
    timeline: state.timeline,
    prevTimeline: state.timeline,
    fullPageWrites: state.fullPageWrites,
    nextXid: state.nextXid,
    nextOid: state.nextOid,
    nextMulti: state.nextMulti,
    nextMultiOffset: state.nextMultiOffset,
    oldestXid: state.oldestXid,
    oldestXidDb: state.oldestXidDb,
    oldestMulti: state.oldestMulti,
    oldestMultiDb: state.oldestMultiDb,
    time: now,
    // pg_commit_ts is not kept: no commit timestamps before the export (PostgreSQL starts a new
    // range at nextXid when track_commit_timestamp is on).
    oldestCommitTsXid: 0,
    newestCommitTsXid: 0,
    // A shutdown checkpoint has no transaction running.
    oldestActiveXid: 0,
  };
  const segment = Buffer.alloc(WAL_SEGMENT_BYTES);
  writeCheckpointPage(segment, segno * segBytes, state, checkpoint);
  const walSegment = walFileName(state.timeline, segno);
  w.writeFile(path.join('pg_wal', walSegment), segment);
  const control = rewriteControlFile(state.importedPgControl, {
    state: DB_SHUTDOWNED,
    time: now,
    checkPoint: checkpointLsn,
    checkPointCopy: checkpoint,
    walLevel: state.walLevel,
    walLogHints: state.walLogHints,
    maxConnections: state.maxConnections,
    maxWorkerProcesses: state.maxWorkerProcesses,
    maxWalSenders: state.maxWalSenders,
    maxPreparedXacts: state.maxPreparedXacts,
    maxLocksPerXact: state.maxLocksPerXact,
    // Matches the commit-timestamp horizon above; PostgreSQL records the setting it starts with.
    trackCommitTimestamp: false,
  });
  w.writeFile(path.join('global', 'pg_control'), control);
  return { checkpointLsn, walSegment };
}

/** The segment's first page: a long page header, then the XLOG CHECKPOINT_SHUTDOWN record. */
function writeCheckpointPage(segment: Buffer, segmentStart: Lsn, state: PgClusterState, cp: CheckPointData): void {
  // XLogLongPageHeaderData
  segment.writeUInt16LE(XLOG_PAGE_MAGIC, 0);
  segment.writeUInt16LE(XLP_LONG_HEADER, 2);
  segment.writeUInt32LE(cp.timeline, 4);
  segment.writeBigUInt64LE(segmentStart, 8);
  segment.writeUInt32LE(0, 16); // xlp_rem_len: no record continues onto this page
  segment.writeBigUInt64LE(state.systemIdentifier, 24);
  segment.writeUInt32LE(WAL_SEGMENT_BYTES, 32);
  segment.writeUInt32LE(WAL_PAGE_BYTES, 36);
  // XLogRecord, then XLogRecordDataHeaderShort (id 255, u8 length), then the CheckPoint.
  const rec = LONG_PAGE_HEADER_BYTES;
  const totLen = RECORD_HEADER_BYTES + 2 + CHECKPOINT_SIZE;
  segment.writeUInt32LE(totLen, rec);
  segment.writeUInt32LE(0, rec + 4); // xl_xid: InvalidTransactionId
  segment.writeBigUInt64LE(0n, rec + 8); // xl_prev: none (below the record, as a first record's must be)
  segment[rec + 16] = XLOG_CHECKPOINT_SHUTDOWN;
  segment[rec + 17] = RM_XLOG_ID;
  segment[rec + RECORD_HEADER_BYTES] = XLR_BLOCK_ID_DATA_SHORT;
  segment[rec + RECORD_HEADER_BYTES + 1] = CHECKPOINT_SIZE;
  encodeCheckPoint(cp).copy(segment, rec + RECORD_HEADER_BYTES + 2);
  // CRC-32C over the payload, then the header up to xl_crc (XLogRecordAssemble's order).
  const payload = segment.subarray(rec + RECORD_HEADER_BYTES, rec + totLen);
  const header = segment.subarray(rec, rec + RECORD_CRC_OFFSET);
  segment.writeUInt32LE(crc32c(Buffer.concat([payload, header])), rec + RECORD_CRC_OFFSET);
}

/** XLogFileName: TLI, then segno / segments per xlogid, then segno % it, each 8 hex digits. */
function walFileName(timeline: number, segno: bigint): string {
  const per = BigInt(WAL_SEGMENTS_PER_XLOGID);
  const hex8 = (v: bigint | number): string => v.toString(16).toUpperCase().padStart(8, '0');
  return `${hex8(timeline)}${hex8(segno / per)}${hex8(segno % per)}`;
}
