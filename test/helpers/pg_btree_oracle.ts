/**
 * The per-record btree oracle (issue 14, point 6; postgres-wal.md §5b): WAL written with
 * wal_consistency_checking covering btree carries, for every btree record, an image of each page it
 * touched AFTER the change (bimg_info without BKPIMAGE_APPLY). This walks such WAL with the native
 * decoder, keeps a running copy of every page btree records touch (started from BKPIMAGE_APPLY and
 * XLOG FPI images, will_init, or the base data files), redoes each btree block's stored record
 * (encodeStoredRecord) on it in both cores, and compares the result with the image under
 * btree_mask (pg_compare.ts comparePages). Counts by record type; the first mismatches with detail.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { createWalDecoder } from '../../lib/core/pg_decoder';
import { formatLsn } from '../../lib/lsn';
import { encodeStoredRecord, imageForBlock, decodedRecords, type DecodedRecord } from '../../lib/pg/wal_record';
import { walChunks } from '../../lib/pg/wal_source';
import { DEFAULT_SETTINGS, PgCluster, pgVersionString } from './pg_cluster';
import { comparePages, type MaskStage, type PageSource } from './pg_compare';
import { fixtureCacheRoot, readCheckpoint } from './pg_fixture';
import { tsRedo } from './pg_btree';
import type { PgNativeFunctions } from './pg_native';

const RM_XLOG = 0;
const RM_BTREE = 11;
const XLOG_FPI_FOR_HINT = 0xa0;
const XLOG_FPI = 0xb0;
const BLCKSZ = 8192;
const DECODE_BATCH_RECORDS = 2000;
const MAX_REPORTED = 10;
/** Compared blocks that also get a negative control (one tuple byte flipped must not pass the masks). */
const NEGATIVE_CONTROLS = 300;
const PD_LOWER = 12;
const ITEM_ID_SIZE = 4;
const PAGE_HEADER_SIZE = 24;

export const BTREE_OP_NAMES: Readonly<Record<number, string>> = {
  0x00: 'INSERT_LEAF', 0x10: 'INSERT_UPPER', 0x20: 'INSERT_META', 0x30: 'SPLIT_L', 0x40: 'SPLIT_R', 0x50: 'INSERT_POST',
  0x60: 'DEDUP', 0x70: 'DELETE', 0x80: 'UNLINK_PAGE', 0x90: 'UNLINK_PAGE_META', 0xa0: 'NEWROOT', 0xb0: 'MARK_PAGE_HALFDEAD',
  0xc0: 'VACUUM', 0xd0: 'REUSE_PAGE', 0xe0: 'META_CLEANUP',
};

/** Per record type: records seen, and per block what happened. */
export interface TypeCounts {
  records: number;
  /** Blocks redone and compared with their consistency image. */
  compared: number;
  equalRaw: number;
  /** Equal only after btree_mask (or a part of it). */
  equalMasked: number;
  mismatched: number;
  /** Blocks whose image carries BKPIMAGE_APPLY: restored, nothing to redo. */
  imageApplied: number;
  /** Blocks redone without an image to compare with. */
  noImage: number;
}

export interface BtreeOracleReport {
  records: number;
  byType: Map<string, TypeCounts>;
  /** Variants worth knowing were exercised. */
  vacuumWithUpdates: number;
  deleteWithUpdates: number;
  splitsWithPostingSplit: number;
  /** The least masking that made each compared block equal (pg_compare.ts stages). */
  stages: Map<MaskStage, number>;
  /** Negative controls: a tuple byte flipped in an equal redone page, caught by the comparison. */
  controlsRun: number;
  controlsCaught: number;
  mismatches: string[];
  mismatchCount: number;
  /** Native and TS disagreeing (bytes or error). */
  coreDisagreements: string[];
  redoErrors: string[];
  /** Redone blocks whose pd_lsn is not the record's end LSN (PostgreSQL sets it on every block it changes). */
  wrongLsn: string[];
  /** Blocks a btree record touched with no page to start from. */
  noStartPage: string[];
  nativeMicros: number;
  tsMicros: number;
  redone: number;
}

export interface BtreeOracleOptions {
  walDir: string;
  startLsn: bigint;
  /** Pages as of startLsn for blocks first touched without an image (the base data dir). */
  basePages?: PageSource;
  /** Stored-record cluster flags (data checksums 0x01, wal_log_hints 0x02). */
  clusterFlags: number;
  native: PgNativeFunctions;
}

function keyOf(b: { spcOid: number; dbOid: number; relNumber: number; forkNum: number; blockNumber: number }): string {
  return `${b.spcOid}/${b.dbOid}/${b.relNumber}/${b.forkNum}/${b.blockNumber}`;
}

function emptyCounts(): TypeCounts {
  return { records: 0, compared: 0, equalRaw: 0, equalMasked: 0, mismatched: 0, imageApplied: 0, noImage: 0 };
}

function errorText(e: unknown): string {
  return e instanceof Error ? `${(e as { code?: string }).code ?? 'Error'}: ${e.message}` : String(e);
}

class Oracle {
  readonly pages = new Map<string, Buffer>();
  readonly report: BtreeOracleReport = {
    records: 0, byType: new Map(), vacuumWithUpdates: 0, deleteWithUpdates: 0, splitsWithPostingSplit: 0, stages: new Map(),
    controlsRun: 0, controlsCaught: 0, mismatches: [],
    mismatchCount: 0, coreDisagreements: [], redoErrors: [], wrongLsn: [], noStartPage: [], nativeMicros: 0, tsMicros: 0, redone: 0,
  };

  constructor(private readonly o: BtreeOracleOptions) {}

  private counts(name: string): TypeCounts {
    let c = this.report.byType.get(name);
    if (c === undefined) {
      c = emptyCounts();
      this.report.byType.set(name, c);
    }
    return c;
  }

  async record(rec: DecodedRecord): Promise<void> {
    this.report.records++;
    if (rec.rmid === RM_XLOG && ((rec.info & 0xf0) === XLOG_FPI || (rec.info & 0xf0) === XLOG_FPI_FOR_HINT)) {
      for (const b of rec.blocks()) if (b.applyImage) this.pages.set(keyOf(b), imageForBlock(rec, b.index));
      return;
    }
    if (rec.rmid !== RM_BTREE) return;
    const op = rec.info & 0xf0;
    const name = BTREE_OP_NAMES[op] ?? `UNKNOWN_${op.toString(16)}`;
    const c = this.counts(name);
    c.records++;
    this.noteVariants(rec, op);
    for (const b of rec.blocks()) {
      if (b.applyImage) {
        this.pages.set(keyOf(b), imageForBlock(rec, b.index));
        c.imageApplied++;
        continue;
      }
      await this.redoBlock(rec, b.index, name, c);
    }
  }

  private negativeControl(image: Buffer, redone: Buffer, blkno: number): void {
    if (this.report.controlsRun >= NEGATIVE_CONTROLS) return;
    const flipped = flippedTuple(redone);
    if (flipped === null) return;
    this.report.controlsRun++;
    if (!comparePages(Buffer.from(image), flipped, 'btree', blkno).equal) this.report.controlsCaught++;
  }

  private noteVariants(rec: DecodedRecord, op: number): void {
    const main = rec.mainData();
    if (op === 0xc0 && main.length >= 4 && main.readUInt16LE(2) > 0) this.report.vacuumWithUpdates++;
    if (op === 0x70 && main.length >= 8 && main.readUInt16LE(6) > 0) this.report.deleteWithUpdates++;
    if ((op === 0x30 || op === 0x40) && main.length >= 10 && main.readUInt16LE(8) > 0) this.report.splitsWithPostingSplit++;
  }

  private async startPage(rec: DecodedRecord, index: number): Promise<Buffer | null> {
    const b = rec.block(index);
    if (b.willInit) return Buffer.alloc(BLCKSZ);
    const key = keyOf(b);
    const have = this.pages.get(key);
    if (have !== undefined) return have;
    const base = this.o.basePages === undefined ? null : await this.o.basePages({
      spcOid: b.spcOid, dbOid: b.dbOid, relNumber: b.relNumber, forkNum: b.forkNum, blockNum: b.blockNumber,
    });
    return base === null ? null : Buffer.from(base);
  }

  private async redoBlock(rec: DecodedRecord, index: number, name: string, c: TypeCounts): Promise<void> {
    const b = rec.block(index);
    const where = `${name} at ${formatLsn(rec.endLsn)} block id ${b.id} (${keyOf(b)})`;
    const start = await this.startPage(rec, index);
    if (start === null) {
      if (this.report.noStartPage.length < MAX_REPORTED) this.report.noStartPage.push(where);
      return;
    }
    const stored = encodeStoredRecord(rec, index, this.o.clusterFlags);
    const nat = Buffer.from(start);
    const ts = Buffer.from(start);
    let natErr: string | null = null;
    let tsErr: string | null = null;
    const t0 = process.hrtime.bigint();
    try { this.o.native.pgRedoRecord(stored, nat); } catch (e) { natErr = errorText(e); }
    const t1 = process.hrtime.bigint();
    try { tsRedo(stored, ts); } catch (e) { tsErr = errorText(e); }
    const t2 = process.hrtime.bigint();
    this.report.nativeMicros += Number(t1 - t0) / 1000;
    this.report.tsMicros += Number(t2 - t1) / 1000;
    this.report.redone++;
    if (natErr !== tsErr || (natErr === null && !nat.equals(ts))) {
      if (this.report.coreDisagreements.length < MAX_REPORTED) this.report.coreDisagreements.push(`${where}: native ${natErr ?? 'ok'}, TS ${tsErr ?? 'ok'}`);
    }
    if (natErr !== null) {
      if (this.report.redoErrors.length < MAX_REPORTED) this.report.redoErrors.push(`${where}: ${natErr}`);
      return;
    }
    this.pages.set(keyOf(b), nat);
    const lsn = (BigInt(nat.readUInt32LE(0)) << 32n) | BigInt(nat.readUInt32LE(4));
    if (lsn !== rec.endLsn && this.report.wrongLsn.length < MAX_REPORTED) this.report.wrongLsn.push(`${where}: pd_lsn ${formatLsn(lsn)}`);
    const image = rec.image(index);
    if (image === null) {
      c.noImage++;
      return;
    }
    c.compared++;
    const v = comparePages(Buffer.from(image), nat, 'btree', b.blockNumber);
    if (v.equal && v.stage !== null) this.report.stages.set(v.stage, (this.report.stages.get(v.stage) ?? 0) + 1);
    if (v.equal) this.negativeControl(image, nat, b.blockNumber);
    if (v.stage === 'raw') c.equalRaw++;
    else if (v.equal) c.equalMasked++;
    else {
      c.mismatched++;
      this.report.mismatchCount++;
      if (this.report.mismatches.length < MAX_REPORTED) {
        this.report.mismatches.push(`${where}: first difference at byte ${v.offset} after btree_mask (image ${v.disk[v.offset]}, redo ${v.source[v.offset]})`);
      }
    }
  }
}

/** Flips a byte of the first item's tuple data on a copy of an equal redone page: the masks must not hide it. */
function flippedTuple(page: Buffer): Buffer | null {
  if (page.readUInt16LE(PD_LOWER) < PAGE_HEADER_SIZE + ITEM_ID_SIZE) return null;
  const lp = page.readUInt32LE(PAGE_HEADER_SIZE);
  const off = lp & 0x7fff;
  const len = lp >>> 17;
  if (len <= 8 || off + len > BLCKSZ) return null;
  const copy = Buffer.from(page);
  copy[off + len - 1] ^= 0x01;
  return copy;
}

/** Runs the oracle over every record of walDir from startLsn to the end of valid WAL. */
export async function runBtreeOracle(o: BtreeOracleOptions): Promise<BtreeOracleReport> {
  const oracle = new Oracle(o);
  const decoder = createWalDecoder('native', { startLsn: o.startLsn });
  const drain = async (): Promise<boolean> => {
    for (;;) {
      const batch = decoder.decode(DECODE_BATCH_RECORDS);
      for (const rec of decodedRecords(batch.entries, batch.count)) await oracle.record(rec);
      if (batch.state === 'end') return true;
      if (batch.state === 'need-more') return false;
    }
  };
  let ended = false;
  for await (const chunk of walChunks(o.walDir, { startLsn: o.startLsn })) {
    decoder.feed(chunk);
    if (await drain()) {
      ended = true;
      break;
    }
  }
  if (!ended) {
    decoder.finish();
    await drain();
  }
  return oracle.report;
}

/** The report as lines: counts by type, variants, speed, then what went wrong. */
export function formatBtreeOracleReport(r: BtreeOracleReport): string {
  const lines = [`${r.records} WAL records; btree blocks redone ${r.redone}`];
  const names = [...r.byType.keys()].sort();
  for (const n of names) {
    const c = r.byType.get(n) as TypeCounts;
    lines.push(`  ${n.padEnd(19)} records ${String(c.records).padStart(6)}  compared ${String(c.compared).padStart(6)} ` +
      `(raw ${c.equalRaw}, masked ${c.equalMasked}, MISMATCH ${c.mismatched})  image-applied ${c.imageApplied}  no-image ${c.noImage}`);
  }
  lines.push(`  VACUUM with posting list updates ${r.vacuumWithUpdates}, DELETE with updates ${r.deleteWithUpdates}, ` +
    `splits with a posting list split ${r.splitsWithPostingSplit}`);
  lines.push(`  least mask that made blocks equal: ${[...r.stages].map(([k, v]) => `${k} ${v}`).join(', ')}; ` +
    `negative controls caught ${r.controlsCaught} of ${r.controlsRun}`);
  if (r.redone > 0) {
    lines.push(`  redo: native ${(r.nativeMicros / r.redone).toFixed(2)} µs per block (through N-API), TS ${(r.tsMicros / r.redone).toFixed(2)} µs per block`);
  }
  for (const [label, list] of [['mismatch', r.mismatches], ['cores disagree', r.coreDisagreements], ['redo error', r.redoErrors], ['wrong pd_lsn', r.wrongLsn],
    ['no start page', r.noStartPage]] as const) {
    for (const m of list) lines.push(`  ${label}: ${m}`);
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// A targeted workload for what the fixture workload does not produce

/**
 * Btree records the fixture workload does not write (INSERT_META, UNLINK_PAGE_META, a page split
 * that is also a posting list split, DELETE with posting list updates), each step small:
 * - p: a posting list per value of k = 1 whose heap TIDs have gaps (the k = 2 rows, deleted and
 *   vacuumed before the index exists); inserts fill the gaps, so they split posting lists on full
 *   leaves, and some leaf splits are posting list splits too;
 * - m: two leaves under a root; emptying the left one and VACUUM delete it, leaving the right leaf
 *   the only page of its level, so the metapage's fast root moves down (UNLINK_PAGE_META); inserts
 *   then split that leaf, and its downlink goes to the root with a fast root update (INSERT_META);
 * - u: non-HOT updates that leave k unchanged make bottom-up deletion remove old versions from the
 *   k index, partly inside posting lists (DELETE with updates).
 */
export const TARGETED_WORKLOAD = `
CREATE TABLE p (k int, pad int);
INSERT INTO p SELECT 1 + (g % 2), g FROM generate_series(1, 12000) g;
DELETE FROM p WHERE k = 2;
VACUUM p;
CREATE INDEX p_k ON p (k);
INSERT INTO p SELECT 1, g FROM generate_series(1, 2500) g;
CREATE TABLE m (k int);
CREATE INDEX m_k ON m (k);
INSERT INTO m SELECT g FROM generate_series(1, 600) g;
DELETE FROM m WHERE k <= 500;
VACUUM m;
INSERT INTO m SELECT g FROM generate_series(1000, 1800) g;
CREATE TABLE u (id int, k int, n int);
INSERT INTO u SELECT g, g % 50, 0 FROM generate_series(1, 3000) g;
CREATE INDEX u_k ON u (k);
CREATE INDEX u_n ON u (n);
DELETE FROM u WHERE id % 5 = 0;
VACUUM u;
UPDATE u SET n = n + 1 WHERE id % 2 = 0;
UPDATE u SET n = n + 1 WHERE id % 2 = 0;
UPDATE u SET n = n + 1 WHERE id % 2 = 0;
`;

const TARGETED_OPTIONS = { walConsistencyChecking: 'btree' } as const;
const TARGETED_COMPLETE = 'COMPLETE';

export interface TargetedWal {
  walDir: string;
  /** End of the shutdown checkpoint the workload started after: every page it touches first gets an image. */
  startLsn: bigint;
}

/**
 * WAL of TARGETED_WORKLOAD on a fresh cluster with wal_consistency_checking = 'btree', from the end
 * of a clean shutdown checkpoint (so each page's first change after it carries a full-page image),
 * cached under the fixture root by a hash of the workload, options and PostgreSQL version.
 */
export async function getTargetedWal(): Promise<TargetedWal> {
  const h = crypto.createHash('sha256');
  h.update(`${TARGETED_WORKLOAD}\n${JSON.stringify(TARGETED_OPTIONS)}\n${JSON.stringify(DEFAULT_SETTINGS)}\n${pgVersionString()}\n`);
  const root = fixtureCacheRoot();
  const dir = path.join(root, `btree-targeted-${h.digest('hex').slice(0, 16)}`);
  const meta = path.join(dir, 'meta.json');
  const load = (): TargetedWal => ({ walDir: path.join(dir, 'wal'), startLsn: BigInt(JSON.parse(fs.readFileSync(meta, 'utf8')).startLsn) });
  if (fs.existsSync(path.join(dir, TARGETED_COMPLETE))) return load();
  fs.mkdirSync(root, { recursive: true });
  const build = fs.mkdtempSync(path.join(root, '.build-btree-targeted-'));
  const cluster = await PgCluster.create(TARGETED_OPTIONS);
  try {
    await cluster.start();
    await cluster.stop('fast');
    const checkpoint = await readCheckpoint(cluster.dataDir, await cluster.controlData());
    await cluster.start();
    await cluster.exec('postgres', TARGETED_WORKLOAD);
    await cluster.stop('fast');
    fs.mkdirSync(path.join(build, 'wal'));
    for (const f of fs.readdirSync(cluster.walDir)) {
      if (/^[0-9A-F]{24}$/.test(f)) fs.copyFileSync(path.join(cluster.walDir, f), path.join(build, 'wal', f));
    }
    fs.writeFileSync(path.join(build, 'meta.json'), JSON.stringify({ startLsn: checkpoint.checkpointEndLsn.toString() }));
    fs.writeFileSync(path.join(build, TARGETED_COMPLETE), '');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(build, dir);
  } catch (e) {
    fs.rmSync(build, { recursive: true, force: true });
    throw e;
  } finally {
    await cluster.destroy();
  }
  return load();
}
