/**
 * importPgDatadir: a cleanly shut down (or quiescent, just checkpointed) PostgreSQL 15 data
 * directory becomes the timeline's state at the end LSN of its checkpoint record
 * (docs/POSTGRES.md, "Import"), loaded as image layers without going through ingest:
 *
 *   relation forks   every WAL-logged fork of every relation in every database and tablespace
 *                    (all 1 GB segments): main, visibility map, and init forks, plus their sizes.
 *                    Left out, because PostgreSQL does not WAL-log them: free-space maps (rebuilt
 *                    by PostgreSQL), the main and VM forks of unlogged relations (reset from their
 *                    init fork when PostgreSQL starts), temporary relations (never outlive a session)
 *   SLRUs            pg_xact, pg_multixact/offsets and members, page by page
 *   aux files        pg_control, every pg_filenode.map, pg_twophase state files, the configuration
 *                    files (postgresql.conf, postgresql.auto.conf, pg_hba.conf, pg_ident.conf: the
 *                    export writes them back), Strata's record
 *                    of the cluster settings redo needs (cluster_state.ts), and the checkpoint and
 *                    control state ingest continues from (control_state.ts)
 *
 * The checkpoint record is read from pg_wal/ to learn where it ends; a directory whose WAL lacks
 * it, whose pg_control fails its checksum, or that another PostgreSQL major version wrote is
 * BAD_PG_DATADIR.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createWalDecoder } from '../core/pg_decoder';
import type { SnapshotPartition } from '../engine/layer_set';
import type { TimelineImpl } from '../engine/timeline';
import { StrataError } from '../errors';
import { encodeKey, KEY_MAX } from '../key';
import { formatLsn, type Lsn } from '../lsn';
import { PAGE_SIZE, serializeValueRecord } from '../record';
import { encodeClusterState } from './cluster_state';
import { controlStateFromControlFile, encodeCheckpoint, encodeControlState } from './control_state';
import {
  AUX_CHECKPOINT, AUX_CLUSTER_STATE, AUX_CONFIG_FILE, AUX_CONTROL_STATE, AUX_PG_CONTROL, AUX_RELMAP, AUX_TWOPHASE, auxChunks, DEFAULTTABLESPACE_OID, encodeRelSize, FSM_FORKNUM,
  GLOBALTABLESPACE_OID, INIT_FORKNUM, MAIN_FORKNUM, relSizeKey, type RelTag, SLRU_MULTIXACT_MEMBERS, SLRU_MULTIXACT_OFFSETS,
  PG_CONFIG_FILES, SLRU_PAGES_PER_SEGMENT, SLRU_XACT, slruKey, VISIBILITYMAP_FORKNUM,
} from './keyspace';
import {
  checkPointCopyBytes, DB_IN_PRODUCTION, DB_SHUTDOWNED, DB_SHUTDOWNED_IN_RECOVERY, parseControlFile, type ControlFile,
} from './pg_control';
import { relSizes } from './rel_sizes';
import { walChunks } from './wal_source';
import { decodedRecords } from './wal_record';
import { imageRecord } from './walingest';

export interface ImportReport {
  /** The end of the checkpoint record: the timeline now stands there. */
  lsn: Lsn;
  /** Relations (relfilenodes) imported, and their pages (every fork). */
  relations: number;
  pages: number;
}

/** RELSEG_SIZE: blocks per 1 GB segment file. */
const RELSEG_BLOCKS = 131_072;
const FORK_SUFFIX: Readonly<Record<string, number>> = { '': MAIN_FORKNUM, _fsm: FSM_FORKNUM, _vm: VISIBILITYMAP_FORKNUM, _init: INIT_FORKNUM };
const REL_FILE = /^(\d+)(_fsm|_vm|_init)?(?:\.(\d+))?$/;
const TEMP_REL_FILE = /^t\d+_\d+/;
const SLRU_FILE = /^[0-9A-F]{4,6}$/;
const TWOPHASE_FILE = /^[0-9A-F]{8}$/;
const RM_XLOG = 0;
const XLOG_CHECKPOINT_SHUTDOWN = 0x00;
const XLOG_CHECKPOINT_ONLINE = 0x10;
/** Read size when streaming relation files. */
const READ_BLOCKS = 64;

interface ForkFiles {
  rel: RelTag;
  /** Segment files in order; every one but the last holds RELSEG_BLOCKS blocks. */
  segments: string[];
  nblocks: number;
}

interface SlruFile {
  slru: number;
  segment: number;
  file: string;
  pages: number;
}

export async function importPgDatadir(tl: TimelineImpl, dataDir: string, targetBytes: number): Promise<ImportReport> {
  const where = path.resolve(dataDir);
  const control = readControl(where);
  const { lsn, shutdown } = await checkpointEnd(where, control, tl.implementation);
  const forks = scanRelations(where);
  const slrus = scanSlrus(where);
  const aux = auxFiles(where, control, { startLsn: control.checkPoint, endLsn: lsn, shutdown });
  // The extension marks a PostgreSQL timeline before its data lands: a crash in between leaves an
  // empty timeline that can be imported again.
  await tl.setExtension('pg', {
    systemIdentifier: control.systemIdentifier.toString(),
    pgControlVersion: String(control.pgControlVersion),
    catalogVersion: String(control.catalogVersionNo),
    timeline: String(control.checkPointCopy.timeline),
    importLsn: formatLsn(lsn),
  });
  await tl.loadSnapshot(lsn, partitions(forks, slrus, aux, targetBytes));
  const sizes = relSizes(tl);
  for (const f of forks) sizes.noteChange(f.rel, lsn, f.nblocks);
  const relations = new Set(forks.map((f) => `${f.rel.spcOid}/${f.rel.dbOid}/${f.rel.relNumber}`)).size;
  return { lsn, relations, pages: forks.reduce((n, f) => n + f.nblocks, 0) };
}

function readControl(dataDir: string): ControlFile {
  const file = path.join(dataDir, 'global', 'pg_control');
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new StrataError('BAD_PG_DATADIR', `${file}: cannot read: ${(e as Error).message}`, { cause: e });
  }
  const cf = parseControlFile(bytes, file);
  if (cf.state !== DB_SHUTDOWNED && cf.state !== DB_SHUTDOWNED_IN_RECOVERY && cf.state !== DB_IN_PRODUCTION) {
    throw new StrataError('BAD_PG_DATADIR', `${file}: the cluster is "${cf.stateName}", not shut down: its files are not consistent at a checkpoint`);
  }
  return cf;
}

/** The latest checkpoint record as read from pg_wal: where it ends, and whether it is a shutdown checkpoint. */
interface CheckpointRecord {
  startLsn: Lsn;
  endLsn: Lsn;
  shutdown: boolean;
}

/** The end LSN of the latest checkpoint record, read from pg_wal (and checked to be a checkpoint). */
async function checkpointEnd(dataDir: string, cf: ControlFile, impl: 'native' | 'ts'): Promise<{ lsn: Lsn; shutdown: boolean }> {
  const walDir = path.join(dataDir, 'pg_wal');
  const start = cf.checkPoint;
  const decoder = createWalDecoder(impl, { startLsn: start, systemId: cf.systemIdentifier });
  try {
    for await (const chunk of walChunks(walDir, { startLsn: start, timeline: cf.checkPointCopy.timeline })) {
      decoder.feed(chunk);
      const batch = decoder.decode(1);
      if (batch.count > 0) {
        const [rec] = [...decodedRecords(batch.entries, batch.count)];
        const op = rec.info & 0xf0;
        if (rec.startLsn !== start || rec.rmid !== RM_XLOG || (op !== XLOG_CHECKPOINT_SHUTDOWN && op !== XLOG_CHECKPOINT_ONLINE)) {
          throw new StrataError('BAD_PG_DATADIR', `${walDir}: the record at ${formatLsn(start)} is not the checkpoint pg_control names`);
        }
        return { lsn: rec.endLsn, shutdown: op === XLOG_CHECKPOINT_SHUTDOWN };
      }
      if (batch.state === 'end') break;
    }
  } catch (e) {
    if (e instanceof StrataError && e.code === 'BAD_PG_DATADIR') throw e;
    throw new StrataError('BAD_PG_DATADIR', `${walDir}: cannot read the checkpoint record at ${formatLsn(start)}: ${(e as Error).message}`, { cause: e });
  }
  throw new StrataError('BAD_PG_DATADIR', `${walDir}: the WAL does not hold the checkpoint record at ${formatLsn(start)}`);
}

/** Every relation fork file of the cluster, grouped into forks, WAL-logged ones only, in key order. */
function scanRelations(dataDir: string): ForkFiles[] {
  const dirs: Array<{ spcOid: number; dbOid: number; dir: string }> = [{ spcOid: GLOBALTABLESPACE_OID, dbOid: 0, dir: path.join(dataDir, 'global') }];
  for (const db of numericEntries(path.join(dataDir, 'base'))) dirs.push({ spcOid: DEFAULTTABLESPACE_OID, dbOid: db, dir: path.join(dataDir, 'base', String(db)) });
  dirs.push(...tablespaceDatabases(dataDir));
  const forks = new Map<string, ForkFiles & { segmentFiles: Map<number, string> }>();
  const unlogged = new Set<string>();
  for (const { spcOid, dbOid, dir } of dirs) {
    for (const name of fs.readdirSync(dir)) {
      if (TEMP_REL_FILE.test(name)) continue;
      const m = REL_FILE.exec(name);
      if (m === null) continue;
      const forkNum = FORK_SUFFIX[m[2] ?? ''];
      const rel: RelTag = { spcOid, dbOid, relNumber: Number(m[1]), forkNum };
      const relKey = `${spcOid}/${dbOid}/${m[1]}`;
      if (forkNum === INIT_FORKNUM) unlogged.add(relKey);
      const id = `${relKey}.${forkNum}`;
      const f = forks.get(id) ?? { rel, segments: [], nblocks: 0, segmentFiles: new Map<number, string>() };
      f.segmentFiles.set(Number(m[3] ?? 0), path.join(dir, name));
      forks.set(id, f);
    }
  }
  const out: ForkFiles[] = [];
  for (const [id, f] of forks) {
    const relKey = id.slice(0, id.lastIndexOf('.'));
    if (f.rel.forkNum === FSM_FORKNUM) continue;
    if (unlogged.has(relKey) && f.rel.forkNum !== INIT_FORKNUM) continue;
    f.segments = [...f.segmentFiles.keys()].sort((a, b) => a - b).map((n, i) => {
      if (n !== i) throw new StrataError('BAD_PG_DATADIR', `${f.segmentFiles.get(n)}: segment ${n} without segment ${i}`);
      return f.segmentFiles.get(n) as string;
    });
    f.nblocks = 0;
    f.segments.forEach((file, i) => {
      const size = fs.statSync(file).size;
      if (size % PAGE_SIZE !== 0) throw new StrataError('BAD_PG_DATADIR', `${file}: ${size} bytes, not whole 8192-byte pages`);
      if (i < f.segments.length - 1 && size !== RELSEG_BLOCKS * PAGE_SIZE) throw new StrataError('BAD_PG_DATADIR', `${file}: a segment before the last must hold 1 GB`);
      f.nblocks += size / PAGE_SIZE;
    });
    out.push({ rel: f.rel, segments: f.segments, nblocks: f.nblocks });
  }
  return out.sort((a, b) => Buffer.compare(relSizeKey(a.rel), relSizeKey(b.rel)));
}

/** The database directories of tablespaces: pg_tblspc/<spc>/PG_15_<catversion>/<db>. */
function tablespaceDatabases(dataDir: string): Array<{ spcOid: number; dbOid: number; dir: string }> {
  const out: Array<{ spcOid: number; dbOid: number; dir: string }> = [];
  const tblspc = path.join(dataDir, 'pg_tblspc');
  for (const spc of numericEntries(tblspc)) {
    const versionDirs = fs.readdirSync(path.join(tblspc, String(spc))).filter((d) => d.startsWith('PG_15_'));
    for (const v of versionDirs) {
      for (const db of numericEntries(path.join(tblspc, String(spc), v))) out.push({ spcOid: spc, dbOid: db, dir: path.join(tblspc, String(spc), v, String(db)) });
    }
  }
  return out;
}

function numericEntries(dir: string): number[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((n) => /^\d+$/.test(n)).map(Number).sort((a, b) => a - b);
}

function scanSlrus(dataDir: string): SlruFile[] {
  const out: SlruFile[] = [];
  const dirs: Array<[number, string]> = [
    [SLRU_XACT, path.join(dataDir, 'pg_xact')],
    [SLRU_MULTIXACT_OFFSETS, path.join(dataDir, 'pg_multixact', 'offsets')],
    [SLRU_MULTIXACT_MEMBERS, path.join(dataDir, 'pg_multixact', 'members')],
  ];
  for (const [slru, dir] of dirs) {
    if (!fs.existsSync(dir)) continue;
    for (const name of fs.readdirSync(dir).filter((n) => SLRU_FILE.test(n))) {
      const file = path.join(dir, name);
      const size = fs.statSync(file).size;
      if (size % PAGE_SIZE !== 0 || size > SLRU_PAGES_PER_SEGMENT * PAGE_SIZE) throw new StrataError('BAD_PG_DATADIR', `${file}: ${size} bytes is not an SLRU segment`);
      out.push({ slru, segment: parseInt(name, 16), file, pages: size / PAGE_SIZE });
    }
  }
  return out.sort((a, b) => a.slru - b.slru || a.segment - b.segment);
}

/**
 * The aux files' values, in key order: pg_control, the relation maps, the two-phase state files,
 * and Strata's state at the import LSN — the cluster settings, the checkpoint pg_control names and
 * the control state PostgreSQL would start from (control_state.ts).
 */
function auxFiles(dataDir: string, cf: ControlFile, checkpoint: CheckpointRecord): Array<{ key: Buffer; record: Buffer }> {
  const files: Array<{ kind: number; spc: number; db: number; id: number; bytes: Buffer }> = [];
  const controlBytes = fs.readFileSync(path.join(dataDir, 'global', 'pg_control'));
  files.push({ kind: AUX_PG_CONTROL, spc: 0, db: 0, id: 0, bytes: controlBytes });
  const maps: Array<[number, number, string]> = [[GLOBALTABLESPACE_OID, 0, path.join(dataDir, 'global', 'pg_filenode.map')]];
  for (const db of numericEntries(path.join(dataDir, 'base'))) maps.push([DEFAULTTABLESPACE_OID, db, path.join(dataDir, 'base', String(db), 'pg_filenode.map')]);
  for (const { spcOid, dbOid, dir } of tablespaceDatabases(dataDir)) maps.push([spcOid, dbOid, path.join(dir, 'pg_filenode.map')]);
  for (const [spc, db, file] of maps) if (fs.existsSync(file)) files.push({ kind: AUX_RELMAP, spc, db, id: 0, bytes: fs.readFileSync(file) });
  const twophase = path.join(dataDir, 'pg_twophase');
  if (fs.existsSync(twophase)) {
    for (const name of fs.readdirSync(twophase).filter((n) => TWOPHASE_FILE.test(n))) {
      files.push({ kind: AUX_TWOPHASE, spc: 0, db: 0, id: parseInt(name, 16), bytes: fs.readFileSync(path.join(twophase, name)) });
    }
  }
  // The configuration as imported, for an export to start with (a missing file is left out).
  PG_CONFIG_FILES.forEach((name, id) => {
    const file = path.join(dataDir, name);
    if (fs.existsSync(file) && fs.statSync(file).isFile()) files.push({ kind: AUX_CONFIG_FILE, spc: 0, db: 0, id, bytes: fs.readFileSync(file) });
  });
  files.push({ kind: AUX_CLUSTER_STATE, spc: 0, db: 0, id: 0, bytes: encodeClusterState({ dataChecksums: cf.dataChecksumVersion !== 0, walLogHints: cf.walLogHints }) });
  files.push({ kind: AUX_CHECKPOINT, spc: 0, db: 0, id: 0, bytes: encodeCheckpoint(checkpoint.startLsn, checkpoint.endLsn, checkpoint.shutdown, checkPointCopyBytes(controlBytes)) });
  files.push({ kind: AUX_CONTROL_STATE, spc: 0, db: 0, id: 0, bytes: encodeControlState(controlStateFromControlFile(cf)) });
  const values = files.flatMap((f) => auxChunks(f.kind, f.spc, f.db, f.id, f.bytes)).map((c) => ({ key: c.key, record: serializeValueRecord(c.payload) }));
  return values.sort((a, b) => Buffer.compare(a.key, b.key));
}

/** One key of the snapshot, produced lazily (pages are read when their partition is written). */
interface SnapshotItem {
  key: Buffer;
  record: () => Buffer;
}

/** Everything the snapshot holds, in key order: pages, then sizes, then SLRU pages, then aux files. */
function* snapshotItems(forks: readonly ForkFiles[], slrus: readonly SlruFile[], aux: ReadonlyArray<{ key: Buffer; record: Buffer }>): Generator<SnapshotItem> {
  for (const f of forks) {
    const reader = new BlockReader(f.segments);
    for (let blk = 0; blk < f.nblocks; blk++) {
      const last = blk === f.nblocks - 1;
      yield { key: encodeKey({ ...f.rel, blockNum: blk }), record: () => readOnce(reader, blk, last) };
    }
  }
  for (const f of forks) {
    yield { key: relSizeKey(f.rel), record: () => serializeValueRecord(encodeRelSize(f.nblocks)) };
  }
  for (const s of slrus) {
    const reader = new BlockReader([s.file]);
    for (let p = 0; p < s.pages; p++) {
      const last = p === s.pages - 1;
      yield { key: slruKey(s.slru, s.segment, p), record: () => readOnce(reader, p, last) };
    }
  }
  for (const a of aux) yield { key: a.key, record: () => a.record };
}

/**
 * The snapshot cut into partitions of about targetBytes of pages (as compaction cuts image
 * layers), each covering the key range from its first key to the next partition's first key; the
 * last ends at KEY_MAX.
 */
async function* partitions(forks: readonly ForkFiles[], slrus: readonly SlruFile[], aux: ReadonlyArray<{ key: Buffer; record: Buffer }>, targetBytes: number): AsyncGenerator<SnapshotPartition> {
  const perPartition = Math.max(1, Math.floor(targetBytes / PAGE_SIZE));
  const items = snapshotItems(forks, slrus, aux);
  let next = items.next();
  while (!next.done) {
    const first = next.value;
    const chunk: SnapshotItem[] = [];
    while (!next.done && chunk.length < perPartition) {
      chunk.push(next.value);
      next = items.next();
    }
    const keyEnd = next.done ? KEY_MAX : next.value.key;
    yield {
      keyStart: first.key,
      keyEnd,
      entries: (async function* () {
        for (const it of chunk) yield { key: it.key, record: it.record() };
      })(),
    };
  }
}

/** The record of one block; the file is closed after its last block is read. */
function readOnce(reader: BlockReader, blk: number, last: boolean): Buffer {
  const rec = imageRecord(reader.block(blk));
  if (last) reader.close();
  return rec;
}

/** Reads blocks of a fork's segment files, READ_BLOCKS at a time, in order. */
class BlockReader {
  private fd: number | null = null;
  private seg = -1;
  private buf = Buffer.alloc(READ_BLOCKS * PAGE_SIZE);
  private bufStart = -1;
  private bufBlocks = 0;

  constructor(private readonly segments: readonly string[]) {}

  block(blk: number): Buffer {
    if (blk < this.bufStart || blk >= this.bufStart + this.bufBlocks) this.fill(blk);
    const o = (blk - this.bufStart) * PAGE_SIZE;
    return this.buf.subarray(o, o + PAGE_SIZE);
  }

  /** Release the file; a later block() opens it again (partitions read their pages lazily). */
  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
    this.seg = -1;
    this.bufStart = -1;
    this.bufBlocks = 0;
  }

  private fill(blk: number): void {
    const seg = Math.floor(blk / RELSEG_BLOCKS);
    if (seg !== this.seg) {
      this.close();
      this.fd = fs.openSync(this.segments[seg], 'r');
      this.seg = seg;
    }
    const inSeg = blk % RELSEG_BLOCKS;
    const n = fs.readSync(this.fd as number, this.buf, 0, this.buf.length, inSeg * PAGE_SIZE);
    if (n < PAGE_SIZE) throw new StrataError('BAD_PG_DATADIR', `${this.segments[seg]}: block ${inSeg} is past the end of the file (it changed while importing?)`);
    this.bufStart = blk;
    this.bufBlocks = Math.floor(n / PAGE_SIZE);
  }
}
