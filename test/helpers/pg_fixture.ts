/**
 * Builds and caches the PostgreSQL fixtures of issue 14's oracle tests (docs/POSTGRES.md, "Oracle
 * tests: how they run"). A fixture is one run of PostgreSQL 15, kept on disk:
 *
 *   base/   the data dir after `pgbench -i`, CHECKPOINT and a clean stop: the import image, exact at
 *           its checkpoint (`base.checkpointEndLsn` is the LSN `importPgDatadir` must report)
 *   wal/    every WAL segment file of pg_wal/ after the workload (from initdb on; nothing recycled)
 *   final/  the data dir after the workload and a clean (fast) stop: what every page must equal
 *           at `finalEndLsn` (the end of the shutdown checkpoint record)
 *   replay/ PostgreSQL's own replay of wal/ on base/ to the final checkpoint: the second reference
 *           where replay cannot reproduce final/ (`replayVsFinal` lists those pages); its pg_wal/
 *           segments are deleted, so it cannot be started
 *   fixture.json  the descriptor (`PgFixture`), COMPLETE  the marker, written last
 *
 * API: `getPgFixture(variant)` → `PgFixture` (builds on first use, then reuses), `FIXTURE_VARIANTS`,
 * `variantOptions(variant)`, `variantWorkloadScale(variant)`, `fixtureCacheRoot()`,
 * `fixtureDiskBytes(fx)`, `walRecordEnd(start, totLen, segSize)` (end LSN of a record from its start
 * and length), `readCheckpoint(dataDir, control)` (a stopped data dir's checkpoint and its end).
 *
 * Cache: os.tmpdir()/strata-pg-fixtures/<variant>-<hash>/ (STRATA_PG_FIXTURE_DIR overrides the
 * root), the hash covering pg_workload.ts's text, this file's FIXTURE_FORMAT, the variant's options
 * and workload scale, pg_cluster.ts's DEFAULT_SETTINGS and the PostgreSQL version. A build runs
 * under a temp name and is renamed into place when complete, under a lock file so that concurrent
 * test files wait for one build instead of racing; a stale lock (its pid gone) is taken over.
 * STRATA_PG_FIXTURE_REBUILD=1 forces a rebuild. Old fixtures are never deleted automatically
 * (another checkout may use them): `rm -rf /tmp/strata-pg-fixtures` when disk matters.
 * Never start PostgreSQL on base/ or final/ in place: copy them (wal/ may share inodes with
 * final/pg_wal).
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Lsn } from '../../lib/lsn';
import { formatLsn, parseLsn } from '../../lib/lsn';
import type { PgClusterOptions, PgControlData, PgDatabase, PgRelation } from './pg_cluster';
import { chownToPostgres, DEFAULT_SETTINGS, PgCluster, pgVersionString, runPgTool } from './pg_cluster';
import type { CompareReport } from './pg_compare';
import {
  compareWithDataDir,
  dataDirPageSource,
  dataDirRelations,
  dataDirSizeSource,
  readBlocks,
  RELSEG_SIZE,
  scanDataDir,
} from './pg_compare';
import { BLCKSZ, isAllZeroPage, pageLsn } from './pg_mask';
import { loadBase, runWorkload, workloadSteps } from './pg_workload';

export type FixtureVariant = 'plain' | 'checksums' | 'lz4' | 'consistency' | 'pglz' | 'zstd';
export const FIXTURE_VARIANTS: readonly FixtureVariant[] = ['plain', 'checksums', 'lz4', 'consistency'];
/** The other wal_compression methods: built only by the WAL decoder's tests (test/pg/wal_decoder_pg.test.ts). */
export const COMPRESSION_VARIANTS: readonly FixtureVariant[] = ['pglz', 'zstd'];
/** Bump when what a fixture holds or how it is built changes (pg_workload.ts edits are hashed anyway). */
const FIXTURE_FORMAT = 3;
const COMPLETE_MARKER = 'COMPLETE';
const DESCRIPTOR_FILE = 'fixture.json';
/** A waiting builder gives up after this long (ms); a build takes well under a minute here. */
const LOCK_WAIT_MS = 15 * 60 * 1000;
const LOCK_POLL_MS = 250;
/** XLOG_BLCKSZ and the page header sizes of xlog_internal.h (SizeOfXLogShortPHD / SizeOfXLogLongPHD). */
const XLOG_BLCKSZ = 8192;
const XLOG_SHORT_PHD = 24;
const XLOG_LONG_PHD = 40;
/** Pages read per call when scanning final/ for the largest pd_lsn. */
const SCAN_CHUNK_BLOCKS = 64;
const WAL_SEGMENT_NAME = /^[0-9A-F]{24}$/;

export interface CheckpointInfo {
  /** Start LSN of the checkpoint record (pg_controldata "Latest checkpoint location"). */
  checkpointLsn: Lsn;
  /** Its REDO pointer (equal to checkpointLsn for a shutdown checkpoint). */
  redoLsn: Lsn;
  /** End LSN of the checkpoint record: start + xl_tot_len (+ page headers crossed), MAXALIGNed. */
  checkpointEndLsn: Lsn;
  /** Length of the checkpoint record (pg_waldump "len (rec/tot)"). */
  checkpointRecordLength: number;
  /** Where pg_waldump found the end of valid WAL after it (the next record would start there). */
  walEndByWaldump: Lsn;
}

export interface PgFixture {
  variant: FixtureVariant;
  /** The fixture directory and its parts. */
  dir: string;
  baseDir: string;
  walDir: string;
  finalDir: string;
  /** PostgreSQL's own replay of wal/ on base/ up to the final checkpoint (archive recovery, then shutdown). */
  replayDir: string;
  /**
   * final/ compared with replay/ (pg_compare.ts, every mismatch kept): where PostgreSQL's own replay
   * does not reproduce the primary's files (sequence pages, VM pages of CREATE DATABASE wal_log).
   */
  replayVsFinal: CompareReport;
  options: PgClusterOptions;
  pgVersion: string;
  systemIdentifier: string;
  timeLineId: number;
  walSegmentSize: number;
  dataChecksums: boolean;
  walLogHints: boolean;
  /** The import image's checkpoint: `importPgDatadir(baseDir)` starts at base.checkpointEndLsn. */
  base: CheckpointInfo;
  /** The final shutdown checkpoint; finalEndLsn = final.checkpointEndLsn. */
  final: CheckpointInfo;
  /** End of the last WAL record: every page of final/ is as of this LSN. */
  finalEndLsn: Lsn;
  /** WAL segment file names in wal/, ascending. */
  walFiles: string[];
  /** Bytes of WAL the workload wrote: finalEndLsn − base.checkpointEndLsn. */
  walBytes: number;
  /** Databases at the end (queried before the final stop). */
  databases: PgDatabase[];
  /** pg_settings of the workload run that matter to the oracle (wal_compression, wal_consistency_checking, …). */
  settings: Record<string, string>;
  /** Relations of every database that accepts connections, queried before the final stop (template0 does not). */
  relations: PgRelation[];
  /** The same, queried before the base stop. */
  baseRelations: PgRelation[];
  /** Largest pd_lsn over every page of every relation file in final/ (≤ finalEndLsn). */
  maxPageLsn: { lsn: Lsn; file: string; block: number };
  /** Seconds spent: initdb, base load + stop + copy, workload, final stop + copies, total. */
  timings: Record<string, number>;
  /** pg_workload.ts workloadSteps(scale): the scale used and each step's time. */
  workloadScale: number;
  workloadSteps: { name: string; seconds: number }[];
}

/** The cluster options of each variant (issue 14: plain, data checksums, wal_compression=lz4, per-record images). */
export function variantOptions(variant: FixtureVariant): PgClusterOptions {
  switch (variant) {
    case 'plain':
      return {};
    case 'checksums':
      return { dataChecksums: true };
    case 'lz4':
      return { walCompression: 'lz4' };
    case 'pglz':
      return { walCompression: 'pglz' };
    case 'zstd':
      return { walCompression: 'zstd' };
    case 'consistency':
      return { walConsistencyChecking: 'heap,heap2,btree' };
  }
}

/**
 * The workload size of each variant (pg_workload.ts `workloadSteps(scale)`). With
 * wal_consistency_checking every heap/btree record carries an 8 KB image per page it touches: at
 * full size that is ≈ 1.2 GB of WAL, at a quarter ≈ 300 MB, which an oracle test can still read.
 */
export function variantWorkloadScale(variant: FixtureVariant): number {
  return variant === 'consistency' ? 0.25 : 1;
}

export function fixtureCacheRoot(): string {
  return process.env.STRATA_PG_FIXTURE_DIR ?? path.join(os.tmpdir(), 'strata-pg-fixtures');
}

function fixtureKey(variant: FixtureVariant): string {
  const h = crypto.createHash('sha256');
  h.update(`format ${FIXTURE_FORMAT}\n`);
  h.update(`variant ${variant} ${JSON.stringify(variantOptions(variant))} scale ${variantWorkloadScale(variant)}\n`);
  h.update(`settings ${JSON.stringify(DEFAULT_SETTINGS)}\n`);
  h.update(`${pgVersionString()}\n`);
  h.update(readOwnSource('pg_workload'));
  return `${variant}-${h.digest('hex').slice(0, 16)}`;
}

/** This helper's sibling source text (the .ts under vitest, the .js if compiled). */
function readOwnSource(stem: string): string {
  for (const ext of ['.ts', '.js']) {
    const p = path.join(__dirname, stem + ext);
    if (fs.existsSync(p)) return fs.readFileSync(p, 'utf8');
  }
  throw new Error(`cannot find ${stem} next to ${__dirname}`);
}

// ---------------------------------------------------------------------------------------------
// LSN arithmetic and pg_waldump

/**
 * The end LSN of a WAL record that starts at `start` and is `totLen` bytes long: its bytes are laid
 * out from `start`, skipping the page header at every XLOG_BLCKSZ boundary they cross (long header
 * at a segment start), and the end is MAXALIGNed, as XLogInsert's EndPos. A record ending exactly on
 * a page boundary ends there (the next page's header belongs to the next record).
 */
export function walRecordEnd(start: Lsn, totLen: number, segmentSize: number): Lsn {
  let pos = start;
  let remaining = BigInt(totLen);
  const page = BigInt(XLOG_BLCKSZ);
  while (remaining > 0n) {
    if (pos % page === 0n) pos += pos % BigInt(segmentSize) === 0n ? BigInt(XLOG_LONG_PHD) : BigInt(XLOG_SHORT_PHD);
    const room = page - (pos % page);
    const take = remaining < room ? remaining : room;
    pos += take;
    remaining -= take;
  }
  return (pos + 7n) & ~7n;
}

interface WaldumpRecord {
  lsn: Lsn;
  totLen: number;
  rmgr: string;
  desc: string;
}

const WALDUMP_LINE =
  /^rmgr: (\S+)\s+len \(rec\/tot\):\s*(\d+)\/\s*(\d+), tx:\s*\d+, lsn: ([0-9A-F]+\/[0-9A-F]+), prev [0-9A-F]+\/[0-9A-F]+, desc: (.*)$/;
const WALDUMP_END = /invalid record length at ([0-9A-F]+\/[0-9A-F]+): wanted \d+, got 0/;
/**
 * The other way pg_waldump reports the end of valid WAL: the last record ended on a page boundary
 * and the next page was never written, so its header is zeros.
 */
const WALDUMP_END_AT_UNWRITTEN_PAGE = /invalid magic number 0000 in log segment ([0-9A-F]{24}), offset (\d+)/;

/** The name of the WAL segment file holding `lsn` (PostgreSQL's XLogFileName). */
function walSegmentName(timeLineId: number, lsn: Lsn, segmentSize: number): string {
  const segno = lsn / BigInt(segmentSize);
  const perXlogId = 0x1_0000_0000n / BigInt(segmentSize);
  const hex = (v: bigint | number): string => v.toString(16).toUpperCase().padStart(8, '0');
  return `${hex(timeLineId)}${hex(segno / perXlogId)}${hex(segno % perXlogId)}`;
}

/**
 * pg_waldump from `from` to the end of valid WAL: the first record and where the WAL ends. The
 * segment holding `from` is named: without it pg_waldump learns the segment size from the first
 * file its directory listing returns, which can be a segment PostgreSQL created ahead and left
 * zeroed ("header specifies 0 bytes").
 */
async function waldumpFrom(walDir: string, from: Lsn, timeLineId: number, segmentSize: number): Promise<{ first: WaldumpRecord; end: Lsn; records: number }> {
  // pg_waldump exits 1 at the end of valid WAL, with the position in its message: that is expected.
  const startSegment = walSegmentName(timeLineId, from, segmentSize);
  const r = await runPgTool('pg_waldump', ['-p', walDir, '-s', formatLsn(from), startSegment], { okCodes: [0, 1] });
  return parseWaldump(r.stdout, r.stderr, from, segmentSize);
}

/**
 * Where valid WAL ends by pg_waldump's closing message: the LSN it names, or for an unwritten page
 * the position after that page's header (where the next record would have started; readCheckpoint
 * expects that for a record ending on a page boundary). Null when the message is neither.
 */
function waldumpEnd(err: string, segmentSize: number): Lsn | null {
  const at = WALDUMP_END.exec(err);
  if (at) return parseLsn(at[1]);
  const page = WALDUMP_END_AT_UNWRITTEN_PAGE.exec(err);
  if (!page) return null;
  const segmentsPerXlogId = 0x1_0000_0000n / BigInt(segmentSize);
  const segno = BigInt(`0x${page[1].slice(8, 16)}`) * segmentsPerXlogId + BigInt(`0x${page[1].slice(16, 24)}`);
  const offset = BigInt(page[2]);
  return segno * BigInt(segmentSize) + offset + BigInt(offset === 0n ? XLOG_LONG_PHD : XLOG_SHORT_PHD);
}

function parseWaldump(out: string, err: string, from: Lsn, segmentSize: number): { first: WaldumpRecord; end: Lsn; records: number } {
  const lines = out.split('\n').filter((l) => l.startsWith('rmgr: '));
  const m = lines.length > 0 ? WALDUMP_LINE.exec(lines[0]) : null;
  if (!m) throw new Error(`pg_waldump printed no record at ${formatLsn(from)}: ${err.trim()}`);
  const end = waldumpEnd(err, segmentSize);
  if (end === null) throw new Error(`pg_waldump did not report the end of WAL after ${formatLsn(from)}: ${err.trim()}`);
  return {
    first: { rmgr: m[1], totLen: Number(m[3]), lsn: parseLsn(m[4]), desc: m[5] },
    end,
    records: lines.length,
  };
}

/**
 * Reads the latest checkpoint of a stopped data dir and finds its record's end two ways: from the
 * record length pg_waldump prints (walRecordEnd) and from where pg_waldump says valid WAL ends. A
 * clean shutdown writes nothing after its checkpoint, so the two must agree (up to the next
 * page header when the record ends on a page boundary).
 */
export async function readCheckpoint(dataDir: string, control: PgControlData): Promise<CheckpointInfo> {
  const dump = await waldumpFrom(path.join(dataDir, 'pg_wal'), control.checkpointLsn, control.timeLineId, control.walSegmentSize);
  if (dump.first.lsn !== control.checkpointLsn || !/^CHECKPOINT_/.test(dump.first.desc)) {
    throw new Error(
      `no checkpoint record at ${formatLsn(control.checkpointLsn)}: ${dump.first.rmgr} ${dump.first.desc}`,
    );
  }
  if (dump.records !== 1)
    throw new Error(`${dump.records - 1} WAL records follow the checkpoint at ${formatLsn(control.checkpointLsn)}`);
  const end = walRecordEnd(control.checkpointLsn, dump.first.totLen, control.walSegmentSize);
  const atPage = end % BigInt(XLOG_BLCKSZ) === 0n;
  const header = end % BigInt(control.walSegmentSize) === 0n ? XLOG_LONG_PHD : XLOG_SHORT_PHD;
  const expected = atPage ? end + BigInt(header) : end;
  if (dump.end !== expected) {
    throw new Error(
      `checkpoint record end ${formatLsn(end)} (from its length) disagrees with the end of WAL ${formatLsn(dump.end)} (pg_waldump)`,
    );
  }
  return {
    checkpointLsn: control.checkpointLsn,
    redoLsn: control.redoLsn,
    checkpointEndLsn: end,
    checkpointRecordLength: dump.first.totLen,
    walEndByWaldump: dump.end,
  };
}

// ---------------------------------------------------------------------------------------------
// Files

/** The largest pd_lsn of any page of any relation file (all forks). */
function maxPageLsnOf(dataDir: string): { lsn: Lsn; file: string; block: number } {
  let best = { lsn: 0n, file: '', block: -1 };
  for (const fork of scanDataDir(dataDir).forks) {
    for (let from = 0; from < fork.blocks; from += SCAN_CHUNK_BLOCKS) {
      const n = Math.min(SCAN_CHUNK_BLOCKS, fork.blocks - from);
      const chunk = readBlocks(dataDir, fork, from, n);
      for (let i = 0; i < n; i++) {
        const page = chunk.subarray(i * BLCKSZ, (i + 1) * BLCKSZ);
        if (isAllZeroPage(page)) continue;
        const lsn = pageLsn(page);
        const block = from + i;
        if (lsn > best.lsn) best = { lsn, file: fork.segments[Math.floor(block / RELSEG_SIZE)].file, block };
      }
    }
  }
  return best;
}

/** cp -a keeps owners and modes, so a copy of a data dir can be started by hand as postgres. */
async function copyTree(from: string, to: string): Promise<void> {
  await fs.promises.cp(from, to, { recursive: true, preserveTimestamps: true });
  chownToPostgres(to);
}

/** WAL segment files into wal/: hard links when possible (same file system), copies otherwise. */
function collectWal(pgWal: string, into: string): string[] {
  fs.mkdirSync(into);
  const names = fs
    .readdirSync(pgWal)
    .filter((n) => WAL_SEGMENT_NAME.test(n))
    .sort();
  for (const n of names) {
    try {
      fs.linkSync(path.join(pgWal, n), path.join(into, n));
    } catch {
      fs.copyFileSync(path.join(pgWal, n), path.join(into, n));
    }
  }
  return names;
}

// ---------------------------------------------------------------------------------------------
// Descriptor (de)serialization: LSNs as 'X/Y' text in fixture.json

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function toJson(v: unknown): Json {
  if (typeof v === 'bigint') return `lsn:${formatLsn(v)}`;
  if (Array.isArray(v)) return v.map(toJson);
  if (v && typeof v === 'object') {
    const o: { [k: string]: Json } = {};
    for (const [k, x] of Object.entries(v)) o[k] = toJson(x);
    return o;
  }
  return v as Json;
}

function fromJson(v: Json): unknown {
  if (typeof v === 'string' && v.startsWith('lsn:')) return parseLsn(v.slice(4));
  if (Array.isArray(v)) return v.map(fromJson);
  if (v && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = fromJson(x);
    return o;
  }
  return v;
}

function loadDescriptor(dir: string): PgFixture {
  const raw = JSON.parse(fs.readFileSync(path.join(dir, DESCRIPTOR_FILE), 'utf8')) as Json;
  const d = fromJson(raw) as PgFixture;
  // Paths are stored relative so a cache dir can be moved.
  return {
    ...d,
    dir,
    baseDir: path.join(dir, 'base'),
    walDir: path.join(dir, 'wal'),
    replayDir: path.join(dir, 'replay'),
    finalDir: path.join(dir, 'final'),
  };
}

// ---------------------------------------------------------------------------------------------
// Build

async function allRelations(cluster: PgCluster, dbs: PgDatabase[]): Promise<PgRelation[]> {
  const out: PgRelation[] = [];
  for (const db of dbs) if (db.allowConnections) out.push(...(await cluster.relations(db.name)));
  return out;
}

/** PostgreSQL's replay of a fixture's WAL takes a few seconds here; give up after this long (ms). */
const REPLAY_TIMEOUT_MS = 10 * 60 * 1000;

/**
 * replay/: a copy of base/ in archive recovery (restore_command reading wal/), with the final
 * shutdown checkpoint as its inclusive target and recovery_target_action = 'shutdown'. No client
 * ever connects (hot_standby off), so nothing but redo touches its pages; the shutdown writes a
 * restartpoint at the target, which is checked.
 */
async function buildReplay(buildDir: string, target: CheckpointInfo): Promise<void> {
  const walDir = path.join(buildDir, 'wal');
  const c = await PgCluster.copyOf(path.join(buildDir, 'base'), {
    parentDir: buildDir,
    extraConf: {
      restore_command: `'cp ${walDir}/%f %p'`,
      recovery_target_lsn: `'${formatLsn(target.checkpointLsn)}'`,
      recovery_target_inclusive: 'on',
      recovery_target_action: "'shutdown'",
      hot_standby: 'off',
    },
  });
  try {
    const signal = path.join(c.dataDir, 'recovery.signal');
    fs.writeFileSync(signal, '');
    chownToPostgres(signal);
    await c.runUntilExit(REPLAY_TIMEOUT_MS);
    const ctl = await c.controlData();
    if (ctl.checkpointLsn !== target.checkpointLsn) {
      throw new Error(
        `PostgreSQL's replay ended with its restartpoint at ${formatLsn(ctl.checkpointLsn)}, not at the final ` +
          `checkpoint ${formatLsn(target.checkpointLsn)} (state ${ctl.state})\n${c.logTail()}`,
      );
    }
    // replay/ is a page reference, never started again: its restored WAL copies would only double the disk use.
    const pgWal = path.join(c.dataDir, 'pg_wal');
    for (const n of fs.readdirSync(pgWal)) if (WAL_SEGMENT_NAME.test(n)) fs.rmSync(path.join(pgWal, n));
    fs.renameSync(c.dataDir, path.join(buildDir, 'replay'));
  } finally {
    await c.destroy();
  }
}

const RECORDED_SETTINGS = [
  'wal_level',
  'full_page_writes',
  'wal_compression',
  'wal_consistency_checking',
  'data_checksums',
  'wal_log_hints',
  'autovacuum',
  'block_size',
  'wal_segment_size',
  'server_version',
];

async function recordedSettings(cluster: PgCluster): Promise<Record<string, string>> {
  const list = RECORDED_SETTINGS.map((n) => `'${n}'`).join(', ');
  const rows = await cluster.sql(
    'postgres',
    `SELECT name, setting FROM pg_settings WHERE name IN (${list}) ORDER BY name`,
  );
  return Object.fromEntries(rows.map((r) => [String(r[0]), String(r[1] ?? '')]));
}

async function buildInto(buildDir: string, variant: FixtureVariant): Promise<void> {
  const options = variantOptions(variant);
  const timings: Record<string, number> = {};
  const t0 = Date.now();
  let t = t0;
  const lap = (name: string): void => {
    const now = Date.now();
    timings[name] = (now - t) / 1000;
    t = now;
  };
  const cluster = await PgCluster.create({ ...options, parentDir: buildDir });
  try {
    lap('initdb');
    await cluster.start();
    await loadBase(cluster);
    await cluster.checkpoint();
    const baseRelations = await allRelations(cluster, await cluster.databases());
    await cluster.stop('fast');
    const baseControl = await cluster.controlData();
    const base = await readCheckpoint(cluster.dataDir, baseControl);
    await copyTree(cluster.dataDir, path.join(buildDir, 'base'));
    lap('base');

    await cluster.start();
    const work = await runWorkload(cluster, workloadSteps(variantWorkloadScale(variant)));
    const databases = await cluster.databases();
    const relations = await allRelations(cluster, databases);
    const settings = await recordedSettings(cluster);
    lap('workload');

    await cluster.stop('fast');
    const finalControl = await cluster.controlData();
    const final = await readCheckpoint(cluster.dataDir, finalControl);
    const finalDir = path.join(buildDir, 'final');
    fs.renameSync(cluster.dataDir, finalDir);
    const walFiles = collectWal(path.join(finalDir, 'pg_wal'), path.join(buildDir, 'wal'));
    const maxPageLsn = maxPageLsnOf(finalDir);
    if (maxPageLsn.lsn > final.checkpointEndLsn) {
      throw new Error(
        `page ${maxPageLsn.file} block ${maxPageLsn.block} has pd_lsn ${formatLsn(maxPageLsn.lsn)} beyond the end of WAL ${formatLsn(final.checkpointEndLsn)}`,
      );
    }
    lap('final');
    await buildReplay(buildDir, final);
    const replayVsFinal = await compareWithDataDir(
      finalDir,
      dataDirPageSource(path.join(buildDir, 'replay')),
      dataDirSizeSource(path.join(buildDir, 'replay')),
      { relations, sourceRelations: dataDirRelations(path.join(buildDir, 'replay')), maxMismatches: Infinity },
    );
    lap('replay');
    timings.total = (Date.now() - t0) / 1000;

    const fixture: Omit<PgFixture, 'dir' | 'baseDir' | 'walDir' | 'finalDir' | 'replayDir'> = {
      variant,
      options,
      pgVersion: pgVersionString(),
      systemIdentifier: finalControl.systemIdentifier,
      timeLineId: finalControl.timeLineId,
      walSegmentSize: finalControl.walSegmentSize,
      dataChecksums: finalControl.dataChecksumVersion !== 0,
      walLogHints: finalControl.walLogHints,
      base,
      final,
      finalEndLsn: final.checkpointEndLsn,
      walFiles,
      walBytes: Number(final.checkpointEndLsn - base.checkpointEndLsn),
      replayVsFinal,
      settings,
      databases,
      relations,
      baseRelations,
      maxPageLsn,
      timings,
      workloadScale: variantWorkloadScale(variant),
      workloadSteps: work.steps,
    };
    fs.writeFileSync(path.join(buildDir, DESCRIPTOR_FILE), `${JSON.stringify(toJson(fixture), null, 1)}\n`);
  } finally {
    await cluster.destroy();
  }
  fs.writeFileSync(path.join(buildDir, COMPLETE_MARKER), `${new Date().toISOString()}\n`);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** O_EXCL lock file holding our pid; a lock whose pid is gone is stale and taken over. */
async function withLock<T>(lockPath: string, isDone: () => boolean, fn: () => Promise<T>, onDone: () => T): Promise<T> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    if (isDone()) return onDone();
    try {
      fs.writeFileSync(lockPath, `${process.pid}\n`, { flag: 'wx' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = Number(fs.readFileSync(lockPath, 'utf8').trim() || 'NaN');
    if (Number.isFinite(holder) && !pidAlive(holder)) {
      fs.rmSync(lockPath, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${lockPath} (held by pid ${holder})`);
    await new Promise((r) => setTimeout(r, LOCK_POLL_MS));
  }
  try {
    return isDone() ? onDone() : await fn();
  } finally {
    fs.rmSync(lockPath, { force: true });
  }
}

/**
 * The fixture of a variant: reused from the cache when complete, built (≈ 10–30 s) otherwise.
 * Call from beforeAll with a generous timeout; throws when PostgreSQL is unavailable.
 */
export async function getPgFixture(variant: FixtureVariant): Promise<PgFixture> {
  const root = fixtureCacheRoot();
  fs.mkdirSync(root, { recursive: true });
  try {
    fs.chmodSync(root, 0o755); // postgres must traverse it to reach its data dir in a build dir
  } catch {
    // Made by another user: it chose the mode.
  }
  const key = fixtureKey(variant);
  const dir = path.join(root, key);
  const complete = (): boolean => fs.existsSync(path.join(dir, COMPLETE_MARKER));
  // STRATA_PG_FIXTURE_REBUILD=1: rebuild once per process, not once per getPgFixture call.
  const force = process.env.STRATA_PG_FIXTURE_REBUILD === '1' && !rebuilt.has(key);
  rebuilt.add(key);
  const done = (): boolean => !force && complete();
  return withLock(
    path.join(root, `${key}.lock`),
    done,
    async () => {
      // A directory without the marker is a leftover of an interrupted rename or a manual edit.
      fs.rmSync(dir, { recursive: true, force: true });
      const buildDir = fs.mkdtempSync(path.join(root, `.build-${key}-`));
      fs.chmodSync(buildDir, 0o755);
      try {
        await buildInto(buildDir, variant);
        fs.renameSync(buildDir, dir);
      } catch (e) {
        fs.rmSync(buildDir, { recursive: true, force: true });
        throw e;
      }
      return loadDescriptor(dir);
    },
    () => loadDescriptor(dir),
  );
}

/** Keys rebuilt in this process under STRATA_PG_FIXTURE_REBUILD=1 (once each, not once per test file). */
const rebuilt = new Set<string>();

/** Sizes of a fixture on disk, for reports. */
export function fixtureDiskBytes(fx: PgFixture): { base: number; wal: number; final: number; replay: number } {
  const du = (p: string): number => {
    const st = fs.lstatSync(p);
    if (!st.isDirectory()) return st.size;
    return fs.readdirSync(p).reduce((s, e) => s + du(path.join(p, e)), 0);
  };
  return { base: du(fx.baseDir), wal: du(fx.walDir), final: du(fx.finalDir), replay: du(fx.replayDir) };
}
