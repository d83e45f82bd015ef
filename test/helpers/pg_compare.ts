/**
 * Compares pages and relation sizes from any source (Strata at an LSN, or another data dir) with
 * the files PostgreSQL wrote, after PostgreSQL's masks: the whole-database oracle of issue 14
 * (docs/POSTGRES.md, "Oracle tests: how they run"; ../shared/reference/postgres-wal.md §5a).
 *
 * API: `compareWithDataDir(dataDir, pages, sizes, options)` → `CompareReport`; `comparePages(a, b,
 * am, blkno)` → `PageVerdict` for one pair of pages;
 * `dataDirPageSource(dir)` / `dataDirSizeSource(dir)` read another data dir the same way (used to
 * prove the comparer: final/ against itself is 100 % equal, base/ against final/ is not);
 * `formatCompareReport(report)` for test output.
 *
 * What is compared, per relation fork found on disk (global/, base/<db>/, pg_tblspc/…; every 1 GB
 * segment file):
 * - main fork: page by page; raw first, then after the relation's AM mask (heap, btree, sequence; see
 *   pg_mask.ts). The AM comes from the catalog list (`options.relations`, queried before the stop),
 *   else from the page header (`classifyPageHeuristic`, e.g. template0, which takes no connections).
 *   Pages of other AMs (hash, GiST, …) are counted as 'not compared' and not read from the source.
 * - VM fork: raw (the issue requires VM pages equal without masks).
 * - FSM forks: skipped (never WAL-logged; PostgreSQL's own replica differs there).
 * - init forks: skipped (the brief; they are WAL-logged, a later test may compare them).
 * - unlogged relations (an `_init` fork on disk or relpersistence 'u'): main/VM/FSM skipped, their
 *   contents are not WAL-logged. Temp relations (`t<backend>_<relnode>` files) are skipped: they
 *   exist only while their session lives and are not WAL-logged.
 * - pages PostgreSQL never WAL-logged: a disk page the source does not have (null, past the
 *   source's size, or its whole fork missing) is fine when it is all zero or has pd_lsn 0 — no
 *   WAL record produced it, so replay cannot either. Relation extension writes zero pages without
 *   WAL; vm_extend initializes VM pages without WAL (postgres-wal.md §5, pitfalls). Counted apart.
 * - sizes: the source's size must equal the file size in blocks, or be smaller by a tail of such
 *   never-logged pages.
 * - `alsoAccept` (e.g. `dataDirPageSource(fx.replayDir)`, PostgreSQL's own replay of the same WAL):
 *   a page that differs from the disk's but equals this reference's, under the same masks, counts
 *   as 'equal to the alternate', not as a mismatch. PostgreSQL's replay itself differs from the
 *   primary's files in two known places (measured on the fixtures, kept in
 *   `PgFixture.replayVsFinal`): sequence pages (nextval() advances the page without WAL between
 *   its logged batches of 32) and the VM pages of a database made by CREATE DATABASE STRATEGY
 *   wal_log (PG 15 logs the copies with log_newpage_buffer(page_std = true), which drops the VM
 *   bits as the page's "hole").
 * Optionally (`options.sourceRelations`) relation forks the source has but the disk does not are
 * reported too (e.g. a dropped relation still present).
 */
import * as fs from 'fs';
import * as path from 'path';
import type { PageKey } from '../../lib/key';
import { DEFAULTTABLESPACE_OID, GLOBALTABLESPACE_OID } from './pg_cluster';
import type { PgRelation } from './pg_cluster';
import {
  amOfRelation,
  BLCKSZ,
  classifyPageHeuristic,
  firstDifference,
  isAllZeroPage,
  isMaskableAm,
  maskForAm,
  maskPageHintBits,
  maskPageLsnAndChecksum,
  maskUnusedSpace,
  pageLsn,
  PageMaskError,
} from './pg_mask';
import type { MaskableAm, PageAm } from './pg_mask';

export const MAIN_FORKNUM = 0;
export const FSM_FORKNUM = 1;
export const VISIBILITYMAP_FORKNUM = 2;
export const INIT_FORKNUM = 3;
/** RELSEG_SIZE: blocks per 1 GB segment file. */
export const RELSEG_SIZE = 131072;
const FORK_SUFFIX: Readonly<Record<string, number>> = {
  '': MAIN_FORKNUM,
  fsm: FSM_FORKNUM,
  vm: VISIBILITYMAP_FORKNUM,
  init: INIT_FORKNUM,
};
/** Pages read from disk per read call. */
const READ_CHUNK_BLOCKS = 64;

export interface RelFork {
  spcOid: number;
  dbOid: number;
  relNumber: number;
  forkNum: number;
}

/** A page at the comparison LSN, or null when the source has no such page (relation or block). */
export type PageSource = (key: PageKey) => Promise<Buffer | null>;
/** A relation fork's size in blocks at the comparison LSN, or null when the source does not have it. */
export type SizeSource = (rel: RelFork) => Promise<number | null>;

export interface CompareOptions {
  /** The catalog's relations (PgFixture.relations), for the AM of each relation. */
  relations?: readonly PgRelation[];
  /** Relation forks the source has, to report those absent on disk. */
  sourceRelations?: () => Promise<RelFork[]>;
  /** How many mismatches to keep in the report (all are counted). Default 20. */
  maxMismatches?: number;
  /** Only compare forks for which this returns true. */
  filter?: (rel: RelFork) => boolean;
  /** A second reference for pages that differ from the disk's (PostgreSQL's own replay, replay/). */
  alsoAccept?: PageSource;
}

/** The least masking under which a page became equal ('raw': no masking needed). */
export type MaskStage = 'raw' | 'lsn_checksum' | 'hint_bits' | 'unused_space' | 'am';
export const MASK_STAGES: readonly MaskStage[] = ['raw', 'lsn_checksum', 'hint_bits', 'unused_space', 'am'];

export type MismatchKind =
  | 'content' // different after the AM's mask (or raw, for VM pages)
  | 'missing-in-source' // the source returned null for a WAL-logged disk page inside its size
  | 'beyond-source-size' // a WAL-logged disk page at or past the source's size
  | 'size' // relation sizes differ (beyond a tail of never-logged pages)
  | 'relation-missing-in-source' // the source does not have a fork with WAL-logged pages on disk
  | 'relation-missing-on-disk' // the source has a fork (with blocks) that the disk does not
  | 'source-error' // the source threw
  | 'invalid-page'; // a mask refused the page (bad header)

export interface Mismatch {
  kind: MismatchKind;
  key: PageKey | null;
  rel: RelFork;
  file: string;
  am: PageAm | 'vm';
  /** First differing byte after masking (content), with both bytes. */
  offset?: number;
  disk?: number;
  source?: number;
  /** First differing byte before masking. */
  rawOffset?: number;
  message: string;
}

export interface AmCounts {
  /** Pages the source was asked for and compared. */
  compared: number;
  equalRaw: number;
  equalMasked: number;
  /** Different from the disk's page, equal to `alsoAccept`'s. */
  equalAlternate: number;
  different: number;
}

export interface CompareReport {
  /** Relation forks looked at on disk (all forks, skipped ones included). */
  forks: number;
  pages: {
    compared: number;
    equalRaw: number;
    equalMasked: number;
    /** Different from the disk's page but equal to `alsoAccept`'s (after the same masks). */
    equalAlternate: number;
    different: number;
    /** Main-fork pages of AMs without a mask here. */
    notCompared: number;
    /** Disk pages the source does not have that PostgreSQL never WAL-logged (all zero or pd_lsn 0): equal. */
    neverLoggedNotInSource: number;
  };
  /** Main fork by AM, plus 'vm'. */
  byAm: Record<string, AmCounts>;
  /** Equal pages by the least masking that made them equal. */
  byStage: Record<MaskStage, number>;
  /** Pages equal after masking whose pd_lsn differed raw (PostgreSQL's own replay never has any). */
  pdLsnDiffered: number;
  sizes: { compared: number; equal: number; equalWithNeverLoggedTail: number; different: number };
  skipped: {
    fsmForks: number;
    initForks: number;
    unloggedForks: number;
    tempFiles: number;
    notCompared: Record<string, number>;
  };
  /** Every mismatch counted (pages, sizes, relations), kept or not. */
  mismatchCount: number;
  mismatches: Mismatch[];
  /** No mismatch of any kind. */
  ok: boolean;
}

export interface DiskFork {
  rel: RelFork;
  /** Segment files in order: path relative to the data dir, size in bytes. */
  segments: { file: string; bytes: number }[];
  blocks: number;
}

export interface ScanResult {
  forks: DiskFork[];
  tempFiles: number;
  /** spc/db/rel of relations that have an init fork (unlogged). */
  unlogged: Set<string>;
}

const REL_FILE = /^(\d+)(?:_(fsm|vm|init))?(?:\.(\d+))?$/;
const TEMP_FILE = /^t\d+_\d+/;

function relId(spcOid: number, dbOid: number, relNumber: number): string {
  return `${spcOid}/${dbOid}/${relNumber}`;
}

function forkId(r: RelFork): string {
  return `${relId(r.spcOid, r.dbOid, r.relNumber)}/${r.forkNum}`;
}

/** Where relation files live: [dir relative to the data dir, spcOid, dbOid]. */
function relationDirs(dataDir: string): [string, number, number][] {
  const out: [string, number, number][] = [['global', GLOBALTABLESPACE_OID, 0]];
  for (const db of fs.readdirSync(path.join(dataDir, 'base'))) {
    if (/^\d+$/.test(db)) out.push([path.join('base', db), DEFAULTTABLESPACE_OID, Number(db)]);
  }
  const tblspc = path.join(dataDir, 'pg_tblspc');
  if (fs.existsSync(tblspc)) {
    for (const spc of fs.readdirSync(tblspc)) {
      if (!/^\d+$/.test(spc)) continue;
      for (const ver of fs.readdirSync(path.join(tblspc, spc))) {
        for (const db of fs.readdirSync(path.join(tblspc, spc, ver))) {
          if (/^\d+$/.test(db)) out.push([path.join('pg_tblspc', spc, ver, db), Number(spc), Number(db)]);
        }
      }
    }
  }
  return out;
}

/** Every relation fork file set of a data dir (global/, base/<db>/, pg_tblspc/…), temp files counted, not listed. */
export function scanDataDir(dataDir: string): ScanResult {
  const byFork = new Map<string, DiskFork>();
  const unlogged = new Set<string>();
  let tempFiles = 0;
  for (const [dir, spcOid, dbOid] of relationDirs(dataDir)) {
    for (const name of fs.readdirSync(path.join(dataDir, dir))) {
      if (TEMP_FILE.test(name)) {
        tempFiles++;
        continue;
      }
      const m = REL_FILE.exec(name);
      if (!m) continue; // pg_filenode.map, pg_internal.init, PG_VERSION, pg_control, …
      const rel: RelFork = { spcOid, dbOid, relNumber: Number(m[1]), forkNum: FORK_SUFFIX[m[2] ?? ''] };
      if (rel.forkNum === INIT_FORKNUM) unlogged.add(relId(spcOid, dbOid, rel.relNumber));
      const id = forkId(rel);
      let f = byFork.get(id);
      if (!f) byFork.set(id, (f = { rel, segments: [], blocks: 0 }));
      const seg = Number(m[3] ?? '0');
      f.segments[seg] = { file: path.join(dir, name), bytes: fs.statSync(path.join(dataDir, dir, name)).size };
    }
  }
  for (const f of byFork.values()) {
    for (let i = 0; i < f.segments.length; i++) {
      const s = f.segments[i];
      if (!s) throw new Error(`segment ${i} of ${forkId(f.rel)} is missing on disk`);
      f.blocks += Math.floor(s.bytes / BLCKSZ);
    }
  }
  const forks = [...byFork.values()].sort((a, b) => (forkId(a.rel) < forkId(b.rel) ? -1 : 1));
  return { forks, tempFiles, unlogged };
}

/** Reads blocks [from, from + n) of a fork from its segment files. */
export function readBlocks(dataDir: string, fork: DiskFork, from: number, n: number): Buffer {
  const out = Buffer.alloc(n * BLCKSZ);
  for (let i = 0; i < n; i++) {
    const blk = from + i;
    const seg = fork.segments[Math.floor(blk / RELSEG_SIZE)];
    const fd = fs.openSync(path.join(dataDir, seg.file), 'r');
    try {
      // Read the rest of this chunk that lies in the same segment at once.
      const inSeg = Math.min(n - i, RELSEG_SIZE - (blk % RELSEG_SIZE));
      fs.readSync(fd, out, i * BLCKSZ, inSeg * BLCKSZ, (blk % RELSEG_SIZE) * BLCKSZ);
      i += inSeg - 1;
    } finally {
      fs.closeSync(fd);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Sources over a data dir

/** Pages of another data dir, as a PageSource (null past a fork's end or for a missing fork). */
export function dataDirPageSource(dataDir: string): PageSource {
  const scan = scanDataDir(dataDir);
  const forks = new Map(scan.forks.map((f) => [forkId(f.rel), f]));
  return async (key) => {
    const f = forks.get(forkId(key));
    if (!f || key.blockNum >= f.blocks) return null;
    return readBlocks(dataDir, f, key.blockNum, 1);
  };
}

/** Relation fork sizes of another data dir, as a SizeSource. */
export function dataDirSizeSource(dataDir: string): SizeSource {
  const scan = scanDataDir(dataDir);
  const forks = new Map(scan.forks.map((f) => [forkId(f.rel), f.blocks]));
  return async (rel) => forks.get(forkId(rel)) ?? null;
}

/** Every fork of another data dir, for `CompareOptions.sourceRelations`. */
export function dataDirRelations(dataDir: string): () => Promise<RelFork[]> {
  return async () => scanDataDir(dataDir).forks.map((f) => f.rel);
}

// ---------------------------------------------------------------------------------------------
// Comparing one page

/** The outcome of comparing two pages (`comparePages`). */
export interface PageVerdict {
  equal: boolean;
  stage: MaskStage | null;
  lsnDiffered: boolean;
  offset: number;
  rawOffset: number;
  disk: Buffer;
  source: Buffer;
}

/**
 * Compares two pages of one block: raw, then each bufmask.c mask cumulatively, then the AM's full
 * mask ('vm': raw only); `stage` is the least masking that made them equal. Also what a per-record
 * oracle needs (a redone page against a wal_consistency_checking image). Throws PageMaskError when
 * a mask refuses a page (invalid header).
 */
export function comparePages(disk: Buffer, source: Buffer, am: MaskableAm | 'vm', blkno: number): PageVerdict {
  const rawOffset = firstDifference(disk, source);
  const base: PageVerdict = {
    equal: rawOffset < 0,
    stage: rawOffset < 0 ? 'raw' : null,
    lsnDiffered: false,
    offset: rawOffset,
    rawOffset,
    disk,
    source,
  };
  if (rawOffset < 0 || am === 'vm') return base;
  const lsnDiffered = pageLsn(disk) !== pageLsn(source);
  const stages: [MaskStage, (p: Buffer) => Buffer][] = [
    ['lsn_checksum', (p) => maskPageLsnAndChecksum(p)],
    ['hint_bits', (p) => maskPageHintBits(maskPageLsnAndChecksum(p))],
    // seq_mask has no hint-bit step, so the cumulative stages only apply to heap and btree.
    ['unused_space', (p) => maskUnusedSpace(maskPageHintBits(maskPageLsnAndChecksum(p)))],
    ['am', (p) => maskForAm(am, p, blkno)],
  ];
  let last: { a: Buffer; b: Buffer } = { a: disk, b: source };
  for (const [stage, mask] of stages) {
    if (am === 'sequence' && stage !== 'lsn_checksum' && stage !== 'am') continue;
    const a = mask(disk);
    const b = mask(source);
    if (a.equals(b)) return { ...base, equal: true, stage, lsnDiffered, offset: -1 };
    last = { a, b };
  }
  return {
    ...base,
    equal: false,
    stage: null,
    lsnDiffered,
    offset: firstDifference(last.a, last.b),
    disk: last.a,
    source: last.b,
  };
}

// ---------------------------------------------------------------------------------------------
// The comparison

function emptyAmCounts(): AmCounts {
  return { compared: 0, equalRaw: 0, equalMasked: 0, equalAlternate: 0, different: 0 };
}

/** A page no WAL record produced: all zero, or pd_lsn 0 (initialized without WAL, e.g. by vm_extend). */
export function isNeverLoggedPage(page: Buffer): boolean {
  return isAllZeroPage(page) || pageLsn(page) === 0n;
}

class ReportBuilder {
  readonly report: CompareReport;
  private readonly keep: number;

  constructor(keep: number) {
    this.keep = keep;
    this.report = {
      forks: 0,
      pages: {
        compared: 0,
        equalRaw: 0,
        equalMasked: 0,
        equalAlternate: 0,
        different: 0,
        notCompared: 0,
        neverLoggedNotInSource: 0,
      },
      byAm: {},
      byStage: { raw: 0, lsn_checksum: 0, hint_bits: 0, unused_space: 0, am: 0 },
      pdLsnDiffered: 0,
      sizes: { compared: 0, equal: 0, equalWithNeverLoggedTail: 0, different: 0 },
      skipped: { fsmForks: 0, initForks: 0, unloggedForks: 0, tempFiles: 0, notCompared: {} },
      mismatchCount: 0,
      mismatches: [],
      ok: true,
    };
  }

  mismatch(m: Mismatch): void {
    this.report.mismatchCount++;
    this.report.ok = false;
    if (this.report.mismatches.length < this.keep) this.report.mismatches.push(m);
  }

  am(name: string): AmCounts {
    return (this.report.byAm[name] ??= emptyAmCounts());
  }

  /** One compared page: equal (by stage), equal to the alternate reference, or different. */
  page(am: string, v: PageVerdict, alternate = false): void {
    const c = this.am(am);
    const p = this.report.pages;
    c.compared++;
    p.compared++;
    if (alternate) {
      c.equalAlternate++;
      p.equalAlternate++;
      return;
    }
    if (!v.equal) {
      c.different++;
      p.different++;
      return;
    }
    this.report.byStage[v.stage ?? 'raw']++;
    if (v.stage === 'raw') {
      c.equalRaw++;
      p.equalRaw++;
    } else {
      c.equalMasked++;
      p.equalMasked++;
      if (v.lsnDiffered) this.report.pdLsnDiffered++;
    }
  }
}

/** The AM of a main-fork page: the catalog's when known, else the page header's. */
function pageAm(catalogAm: PageAm | null, disk: Buffer): PageAm {
  return catalogAm ?? classifyPageHeuristic(disk);
}

interface ForkContext {
  dataDir: string;
  fork: DiskFork;
  catalogAm: PageAm | null;
  pages: PageSource;
  alsoAccept: PageSource | null;
  rb: ReportBuilder;
}

async function compareFork(ctx: ForkContext, sizes: SizeSource): Promise<void> {
  const { fork, rb } = ctx;
  const { rel } = fork;
  const isVm = rel.forkNum === VISIBILITYMAP_FORKNUM;
  const forkAm: PageAm | 'vm' = isVm ? 'vm' : (ctx.catalogAm ?? 'unknown');
  const firstFile = fork.segments[0].file;
  let srcSize: number | null;
  try {
    srcSize = await sizes(rel);
  } catch (e) {
    rb.mismatch({ kind: 'source-error', key: null, rel, file: firstFile, am: forkAm, message: `size: ${String(e)}` });
    return;
  }
  const effectiveSize = srcSize ?? 0;
  let loggedBeyond = 0; // WAL-logged disk pages at or past the source's size
  for (let from = 0; from < fork.blocks; from += READ_CHUNK_BLOCKS) {
    const n = Math.min(READ_CHUNK_BLOCKS, fork.blocks - from);
    // Sources that answer synchronously would otherwise starve the event loop (and the test runner's RPC).
    await new Promise<void>((resolve) => setImmediate(resolve));
    const chunk = readBlocks(ctx.dataDir, fork, from, n);
    for (let i = 0; i < n; i++) {
      const blockNum = from + i;
      const disk = chunk.subarray(i * BLCKSZ, (i + 1) * BLCKSZ);
      const key: PageKey = { ...rel, blockNum };
      const am: PageAm | 'vm' = isVm ? 'vm' : pageAm(ctx.catalogAm, disk);
      const file = fork.segments[Math.floor(blockNum / RELSEG_SIZE)].file;
      if (blockNum >= effectiveSize) {
        if (isNeverLoggedPage(disk)) rb.report.pages.neverLoggedNotInSource++;
        else if (loggedBeyond++ === 0 && srcSize !== null) {
          const message = `block ${blockNum} was WAL-logged on disk but the source has ${srcSize} blocks`;
          rb.mismatch({ kind: 'beyond-source-size', key, rel, file, am, message });
        }
        continue;
      }
      if (am !== 'vm' && !isMaskableAm(am) && am !== 'zero') {
        rb.report.pages.notCompared++;
        rb.report.skipped.notCompared[am] = (rb.report.skipped.notCompared[am] ?? 0) + 1;
        continue;
      }
      await comparePageAt(ctx, key, disk, am, file);
    }
  }
  if (srcSize === null) {
    if (loggedBeyond > 0) {
      const message = `${firstFile}: ${fork.blocks} blocks on disk (${loggedBeyond} WAL-logged), no such relation fork in the source`;
      rb.mismatch({ kind: 'relation-missing-in-source', key: null, rel, file: firstFile, am: forkAm, message });
    }
    return;
  }
  compareSize(fork, srcSize, loggedBeyond === 0, rb);
}

async function comparePageAt(
  ctx: ForkContext,
  key: PageKey,
  disk: Buffer,
  am: MaskableAm | 'vm' | 'zero',
  file: string,
): Promise<void> {
  const { rb } = ctx;
  const rel: RelFork = { spcOid: key.spcOid, dbOid: key.dbOid, relNumber: key.relNumber, forkNum: key.forkNum };
  let source: Buffer | null;
  try {
    source = await ctx.pages(key);
  } catch (e) {
    rb.page(am, failedVerdict(disk, disk));
    rb.mismatch({ kind: 'source-error', key, rel, file, am, message: String(e) });
    return;
  }
  if (source === null) {
    if (isNeverLoggedPage(disk)) rb.report.pages.neverLoggedNotInSource++;
    else {
      const message = `block ${key.blockNum}: the source has no page, the disk page was WAL-logged`;
      rb.mismatch({ kind: 'missing-in-source', key, rel, file, am, message });
    }
    return;
  }
  if (source.length !== BLCKSZ) {
    rb.mismatch({ kind: 'source-error', key, rel, file, am, message: `source page is ${source.length} bytes` });
    return;
  }
  // An all-zero disk page is compared raw: masks refuse new pages (pd_lower 0).
  const maskAm: MaskableAm | 'vm' = am === 'zero' ? 'vm' : am;
  let v: PageVerdict;
  try {
    v = comparePages(disk, source, maskAm, key.blockNum);
  } catch (e) {
    if (!(e instanceof PageMaskError)) throw e;
    rb.page(am, failedVerdict(disk, source));
    const rawOffset = firstDifference(disk, source);
    rb.mismatch({ kind: 'invalid-page', key, rel, file, am, rawOffset, message: e.message });
    return;
  }
  if (!v.equal && ctx.alsoAccept && (await equalsAlternate(ctx.alsoAccept, key, source, maskAm))) {
    rb.page(am, v, true);
    return;
  }
  rb.page(am, v);
  if (!v.equal) {
    const d = v.disk[v.offset] ?? 0;
    const s = v.source[v.offset] ?? 0;
    rb.mismatch({
      kind: 'content',
      key,
      rel,
      file,
      am,
      offset: v.offset,
      disk: d,
      source: s,
      rawOffset: v.rawOffset,
      message: `block ${key.blockNum}: first difference at byte ${v.offset} after masking (disk 0x${d.toString(16)}, source 0x${s.toString(16)})`,
    });
  }
}

function failedVerdict(disk: Buffer, source: Buffer): PageVerdict {
  const offset = firstDifference(disk, source);
  return { equal: false, stage: null, lsnDiffered: false, offset, rawOffset: offset, disk, source };
}

/** Whether the alternate reference's page equals the source's under the same masks. */
async function equalsAlternate(alt: PageSource, key: PageKey, source: Buffer, am: MaskableAm | 'vm'): Promise<boolean> {
  const page = await alt(key);
  if (page === null || page.length !== BLCKSZ) return false;
  try {
    return comparePages(page, source, am, key.blockNum).equal;
  } catch (e) {
    if (e instanceof PageMaskError) return false;
    throw e;
  }
}

function compareSize(fork: DiskFork, srcSize: number, neverLoggedTail: boolean, rb: ReportBuilder): void {
  const s = rb.report.sizes;
  s.compared++;
  if (srcSize === fork.blocks) s.equal++;
  else if (srcSize < fork.blocks && neverLoggedTail) s.equalWithNeverLoggedTail++;
  else {
    s.different++;
    const file = fork.segments[0].file;
    const why = srcSize < fork.blocks ? ' (and some of the extra disk pages were WAL-logged)' : '';
    rb.mismatch({
      kind: 'size',
      key: null,
      rel: fork.rel,
      file,
      am: fork.rel.forkNum === VISIBILITYMAP_FORKNUM ? 'vm' : 'unknown',
      message: `${file}: ${fork.blocks} blocks on disk, ${srcSize} in the source${why}`,
    });
  }
}

function isUnlogged(scan: ScanResult, rel: RelFork, entry: PgRelation | undefined): boolean {
  return (
    scan.unlogged.has(relId(rel.spcOid, rel.dbOid, rel.relNumber)) ||
    (entry !== undefined && entry.relpersistence !== 'p')
  );
}

/** Compares every WAL-logged main and VM fork of `dataDir` with the sources (see the file comment). */
export async function compareWithDataDir(
  dataDir: string,
  pages: PageSource,
  sizes: SizeSource,
  options: CompareOptions = {},
): Promise<CompareReport> {
  const rb = new ReportBuilder(options.maxMismatches ?? 20);
  const scan = scanDataDir(dataDir);
  rb.report.skipped.tempFiles = scan.tempFiles;
  const catalog = new Map<string, PgRelation>();
  for (const r of options.relations ?? []) catalog.set(relId(r.spcOid, r.dbOid, r.relNumber), r);
  const onDisk = new Set<string>();
  for (const fork of scan.forks) {
    rb.report.forks++;
    onDisk.add(forkId(fork.rel));
    const { rel } = fork;
    if (options.filter && !options.filter(rel)) continue;
    const entry = catalog.get(relId(rel.spcOid, rel.dbOid, rel.relNumber));
    if (rel.forkNum === FSM_FORKNUM) rb.report.skipped.fsmForks++;
    else if (rel.forkNum === INIT_FORKNUM) rb.report.skipped.initForks++;
    else if (isUnlogged(scan, rel, entry)) rb.report.skipped.unloggedForks++;
    else {
      const catalogAm = entry ? amOfRelation(entry) : null;
      await compareFork({ dataDir, fork, catalogAm, pages, alsoAccept: options.alsoAccept ?? null, rb }, sizes);
    }
  }
  if (options.sourceRelations) await reportExtraRelations(options, onDisk, sizes, rb);
  return rb.report;
}

/** Relation forks (main, VM) with blocks in the source and no file on disk. */
async function reportExtraRelations(
  options: CompareOptions,
  onDisk: Set<string>,
  sizes: SizeSource,
  rb: ReportBuilder,
): Promise<void> {
  for (const rel of await (options.sourceRelations as () => Promise<RelFork[]>)()) {
    if (rel.forkNum !== MAIN_FORKNUM && rel.forkNum !== VISIBILITYMAP_FORKNUM) continue;
    if (onDisk.has(forkId(rel)) || (options.filter && !options.filter(rel))) continue;
    const n = await sizes(rel);
    if (n !== null && n > 0) {
      rb.mismatch({
        kind: 'relation-missing-on-disk',
        key: null,
        rel,
        file: '',
        am: rel.forkNum === VISIBILITYMAP_FORKNUM ? 'vm' : 'unknown',
        message: `${forkId(rel)}: ${n} blocks in the source, no file on disk`,
      });
    }
  }
}

/** A stable text id of a page key, e.g. for sets of known differences. */
export function pageKeyId(k: PageKey): string {
  return `${k.spcOid}/${k.dbOid}/${k.relNumber}/${k.forkNum}/${k.blockNum}`;
}

/** A few lines for test output: totals, by AM, by mask stage, skips, the first mismatches. */
export function formatCompareReport(r: CompareReport): string {
  const p = r.pages;
  const s = r.sizes;
  const k = r.skipped;
  const byAm = Object.entries(r.byAm).map(
    ([am, c]) =>
      `${am} ${c.compared} (raw ${c.equalRaw}, masked ${c.equalMasked}, alternate ${c.equalAlternate}, diff ${c.different})`,
  );
  const lines = [
    `pages compared ${p.compared}: equal raw ${p.equalRaw}, equal after masks ${p.equalMasked}, ` +
      `equal to the alternate ${p.equalAlternate}, different ${p.different}; not compared ${p.notCompared}; ` +
      `never-logged pages not in source ${p.neverLoggedNotInSource}`,
    `by AM: ${byAm.join('; ')}`,
    `equal by least mask: ${MASK_STAGES.map((st) => `${st} ${r.byStage[st]}`).join(', ')}; ` +
      `pd_lsn differed on ${r.pdLsnDiffered} masked-equal pages`,
    `sizes compared ${s.compared}: equal ${s.equal}, equal with a never-logged tail ${s.equalWithNeverLoggedTail}, different ${s.different}`,
    `skipped: fsm forks ${k.fsmForks}, init forks ${k.initForks}, unlogged forks ${k.unloggedForks}, temp files ${k.tempFiles}`,
    `mismatches ${r.mismatchCount}${r.mismatches.length ? ':' : ''}`,
    ...r.mismatches.map((m) => `  ${m.kind} ${m.am} ${m.file}${m.key ? ` blk ${m.key.blockNum}` : ''}: ${m.message}`),
  ];
  return lines.join('\n');
}
