/**
 * The per-record redo oracle of issue 14 (point 6): WAL written with wal_consistency_checking
 * carries, for every heap/heap2/btree record, an image of each page it touched AFTER the change
 * (bimg_info without BKPIMAGE_APPLY). This walks such WAL from a base data directory, redoes every
 * block reference of every record on a running copy of its page (stored records built with
 * lib/pg's encodeStoredRecord, redone by the core's rmgr: both cores when asked, which must agree
 * byte for byte), and compares each redone page with its image after PostgreSQL's masks, as
 * verifyBackupPageConsistency does (heap_mask for heap/heap2, btree_mask for btree; VM pages raw
 * except pd_lsn and pd_checksum, stricter than PostgreSQL, which heap_masks them).
 *
 * Start pages: a block's APPLY image, zeros for a will_init block, else the page as last redone,
 * else the base data file (zeros past its end). Side effects ingest adds are synthesized here the
 * same way: the visibility-map clears heap records make without a VM block reference become
 * rmgr-255 VM_CLEAR records, Storage TRUNCATE cuts the running copies (VM_TRUNCATE on the last
 * VM page), and CREATE DATABASE … FILE_COPY copies the template's pages. A record the core cannot redo (WAL_UNSUPPORTED) takes its page from the record's
 * image, so the chain goes on, and is counted as unsupported.
 */
import * as fs from 'fs';
import { redoRecord, rmgrInfoName } from '../../lib/core/ts/pg/rmgr';
import { pgChecksumPage } from '../../lib/core/ts/pg/checksum';
import { createWalDecoder } from '../../lib/core/pg_decoder';
import type { ImplementationName } from '../../lib/core/core';
import { isStrataError } from '../../lib/errors';
import { planWalSegments } from '../../lib/pg/wal_source';
import { encodeStoredRecord, imageForBlock, decodedRecords, type DecodedRecord } from '../../lib/pg/wal_record';
import type { PgRelation } from './pg_cluster';
import { readBlocks, scanDataDir, type DiskFork } from './pg_compare';
import { maskForAm } from './pg_mask';
import { Bytes, storedRecord } from './pg_records';
import { nativePg } from './pg_native';

const BLCKSZ = 8192;
const XLR_CHECK_CONSISTENCY = 0x02;
const VM_FORK = 2;
const HEAPBLOCKS_PER_VM_PAGE = 32672;
const RM_SMGR = 2;
const SMGR_CREATE = 0x10;
const SMGR_TRUNCATE = 0x20;
const SMGR_TRUNCATE_HEAP = 0x01;
const SMGR_TRUNCATE_VM = 0x02;
const RM_DBASE = 4;
const DBASE_CREATE_FILE_COPY = 0x00;
const RM_HEAP2 = 9;
const RM_HEAP = 10;
const RM_BTREE = 11;
/** Entries per decoder batch: bounds the memory one batch (with its images) takes. */
const BATCH_RECORDS = 2000;
const MAX_REPORTED_MISMATCHES = 20;

export interface OracleTypeCounts {
  /** Block references redone (the record's own blocks). */
  redone: number;
  /** Of those, compared with a consistency image. */
  checked: number;
  /**
   * Checked blocks whose page before the record already differs from the image after masking:
   * the negative control (the masks do not hide what the record changes).
   */
  changed: number;
  mismatches: number;
  /** Redo failed (REDO_FAILED): counted per block. */
  failed: number;
  /** WAL_UNSUPPORTED: the page was taken from the image. */
  unsupported: number;
}

export interface OracleMismatch {
  type: string;
  lsn: bigint;
  key: string;
  what: string;
}

export interface OracleReport {
  records: number;
  byType: Map<string, OracleTypeCounts>;
  mismatches: OracleMismatch[];
  /** Native and TS disagreed (bytes or error): must stay empty. */
  coreDisagreements: string[];
  /** VM_CLEAR records synthesized from heap flags, and how many were redone. */
  vmClears: number;
  /** Redo time per core over the `timedRedos` calls that succeeded (failures throw, which costs far more). */
  redoMs: Map<ImplementationName, number>;
  timedRedos: number;
}

export interface OracleOptions {
  baseDir: string;
  walDir: string;
  startLsn: bigint;
  endLsn?: bigint;
  clusterFlags: number;
  /** Cores that redo each block; with two, their results must agree. */
  cores: ImplementationName[];
  /** The WAL decoder's core. */
  decoder: ImplementationName;
}

type Redo = (rec: Uint8Array, page: Uint8Array) => void;

function redoFor(impl: ImplementationName): Redo {
  if (impl === 'ts') return (rec, page) => redoRecord(rec, 0, rec.length, page, 0);
  const n = nativePg();
  if (n === null) throw new Error('the native core is not wanted here (STRATA_IMPL=ts)');
  return (rec, page) => n.pgRedoRecord(rec, page);
}

function forkId(spc: number, db: number, rel: number, fork: number): string {
  return `${spc}/${db}/${rel}/${fork}`;
}

function keyOf(spc: number, db: number, rel: number, fork: number, blk: number): string {
  return `${forkId(spc, db, rel, fork)}/${blk}`;
}

function pageIsNew(page: Uint8Array): boolean {
  return (page[14] | (page[15] << 8)) === 0;
}

function counts(map: Map<string, OracleTypeCounts>, type: string): OracleTypeCounts {
  let c = map.get(type);
  if (c === undefined) {
    c = { redone: 0, checked: 0, changed: 0, mismatches: 0, failed: 0, unsupported: 0 };
    map.set(type, c);
  }
  return c;
}

/** A VM page equals its image except pd_lsn/pd_checksum (the image was taken before PageSetLSN). */
function vmPagesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a.subarray(10), b.subarray(10)) === 0;
}

/** The heap records' VM clears (heapam.c redo: *_ALL_VISIBLE_CLEARED, LOCK's ALL_FROZEN_CLEARED): [heap block, flags][]. */
function vmClearsOf(r: DecodedRecord): [number, number][] {
  const op = r.info & 0x70;
  const main = r.mainData();
  const blk0 = r.blockById(0)?.blockNumber;
  if (blk0 === undefined) return [];
  const out: [number, number][] = [];
  if (r.rmid === RM_HEAP) {
    if (op === 0x00 && main.length >= 3 && main[2] & 0x01) out.push([blk0, 3]); // INSERT
    if (op === 0x10 && main.length >= 8 && main[7] & 0x01) out.push([blk0, 3]); // DELETE
    if ((op === 0x20 || op === 0x40) && main.length >= 8) { // UPDATE / HOT_UPDATE
      const oldBlk = r.blockById(1)?.blockNumber ?? blk0;
      if (main[7] & 0x01) out.push([oldBlk, 3]);
      if (main[7] & 0x02) out.push([blk0, 3]);
    }
    if (op === 0x60 && main.length >= 8 && main[7] & 0x01) out.push([blk0, 2]); // LOCK
  } else if (r.rmid === RM_HEAP2) {
    if (op === 0x50 && main.length >= 1 && main[0] & 0x01) out.push([blk0, 3]); // MULTI_INSERT
    if (op === 0x60 && main.length >= 8 && main[7] & 0x01) out.push([blk0, 2]); // LOCK_UPDATED
  }
  return out;
}

class PageStore {
  private pages = new Map<string, Uint8Array>();
  /** Forks cut short (Storage TRUNCATE) or created empty (Storage CREATE): base blocks at or past this do not exist. */
  private cut = new Map<string, number>();
  private baseForks: Map<string, DiskFork>;

  constructor(private baseDir: string) {
    this.baseForks = new Map(scanDataDir(baseDir).forks.map((f) => [forkId(f.rel.spcOid, f.rel.dbOid, f.rel.relNumber, f.rel.forkNum), f]));
  }

  get(spc: number, db: number, rel: number, fork: number, blk: number): Uint8Array {
    const p = this.pages.get(keyOf(spc, db, rel, fork, blk));
    if (p !== undefined) return p;
    const fid = forkId(spc, db, rel, fork);
    const f = this.baseForks.get(fid);
    const limit = Math.min(f?.blocks ?? 0, this.cut.get(fid) ?? Infinity);
    if (f === undefined || blk >= limit) return new Uint8Array(BLCKSZ);
    return readBlocks(this.baseDir, f, blk, 1);
  }

  set(spc: number, db: number, rel: number, fork: number, blk: number, page: Uint8Array): void {
    this.pages.set(keyOf(spc, db, rel, fork, blk), page);
  }

  /** Every page redone so far: [spc, db, rel, fork, blk, page]. */
  *entries(): Generator<[number, number, number, number, number, Uint8Array]> {
    for (const [k, page] of this.pages) {
      const [spc, db, rel, fork, blk] = k.split('/').map(Number);
      yield [spc, db, rel, fork, blk, page];
    }
  }

  /**
   * CREATE DATABASE … STRATEGY FILE_COPY: the new database starts as a copy of every page the
   * template has now (its running copies, else its base files).
   */
  copyDatabase(srcSpc: number, srcDb: number, dstSpc: number, dstDb: number): void {
    const src = `${srcSpc}/${srcDb}/`;
    const relForks = new Set<string>();
    for (const fid of this.baseForks.keys()) if (fid.startsWith(src)) relForks.add(fid);
    for (const k of this.pages.keys()) if (k.startsWith(src)) relForks.add(k.split('/').slice(0, 4).join('/'));
    for (const fid of relForks) {
      const [, , rel, fork] = fid.split('/').map(Number);
      const f = this.baseForks.get(fid);
      const n = Math.min(f?.blocks ?? 0, this.cut.get(fid) ?? Infinity);
      for (let blk = 0; blk < n; blk++) this.set(dstSpc, dstDb, rel, fork, blk, this.get(srcSpc, srcDb, rel, fork, blk));
      const prefix = `${fid}/`;
      for (const [k, page] of [...this.pages]) {
        if (k.startsWith(prefix)) this.set(dstSpc, dstDb, rel, fork, Number(k.slice(prefix.length)), page.slice());
      }
    }
  }

  /** Every block of the fork at or past `nblocks` is gone. */
  truncate(spc: number, db: number, rel: number, fork: number, nblocks: number): void {
    const fid = forkId(spc, db, rel, fork);
    this.cut.set(fid, Math.min(this.cut.get(fid) ?? Infinity, nblocks));
    const prefix = `${fid}/`;
    for (const k of this.pages.keys()) {
      if (k.startsWith(prefix) && Number(k.slice(prefix.length)) >= nblocks) this.pages.delete(k);
    }
  }
}

export class RedoOracle {
  readonly report: OracleReport = {
    records: 0, byType: new Map(), mismatches: [], coreDisagreements: [], vmClears: 0, redoMs: new Map(), timedRedos: 0,
  };
  private store: PageStore;
  private redos: [ImplementationName, Redo][];

  constructor(private opts: OracleOptions) {
    this.store = new PageStore(opts.baseDir);
    this.redos = opts.cores.map((c) => [c, redoFor(c)]);
    for (const c of opts.cores) this.report.redoMs.set(c, 0);
  }

  /** The running copies of every page the WAL touched, as of the last record. */
  pages(): Generator<[number, number, number, number, number, Uint8Array]> {
    return this.store.entries();
  }

  /**
   * Decodes the WAL directory from startLsn and runs every record. Yields to the event loop after
   * each decoder batch: a long synchronous pass would starve the test runner's own messages.
   */
  async run(): Promise<OracleReport> {
    const d = createWalDecoder(this.opts.decoder, { startLsn: this.opts.startLsn, endLsn: this.opts.endLsn });
    let offset = Number(this.opts.startLsn % 0x1000000n);
    const drain = async (): Promise<boolean> => {
      for (;;) {
        const b = d.decode(BATCH_RECORDS);
        for (const r of decodedRecords(b.entries, b.count)) this.record(r);
        await new Promise((resolve) => setImmediate(resolve));
        if (b.state === 'end') return true;
        if (b.state === 'need-more') return false;
      }
    };
    let ended = false;
    for (const seg of planWalSegments(this.opts.walDir, { startLsn: this.opts.startLsn })) {
      d.feed(fs.readFileSync(seg.file).subarray(offset));
      offset = 0;
      if ((ended = await drain())) break;
    }
    if (!ended) {
      d.finish();
      await drain();
    }
    return this.report;
  }

  private record(r: DecodedRecord): void {
    this.report.records++;
    if (r.rmid === RM_SMGR) this.storage(r);
    if (r.rmid === RM_DBASE && (r.info & 0xf0) === DBASE_CREATE_FILE_COPY) {
      // xl_dbase_create_file_copy_rec: db_id, tablespace_id, src_db_id, src_tablespace_id.
      const m = r.mainData();
      this.store.copyDatabase(m.readUInt32LE(12), m.readUInt32LE(8), m.readUInt32LE(4), m.readUInt32LE(0));
    }
    for (const [heapBlk, flags] of vmClearsOf(r)) this.vmClear(r, heapBlk, flags);
    const type = rmgrInfoName(r.rmid, r.info);
    for (const b of r.blocks()) {
      if (b.applyImage) {
        const page = imageForBlock(r, b.index);
        if ((this.opts.clusterFlags & 1) !== 0 && page.readUInt16LE(14) !== 0) page.writeUInt16LE(pgChecksumPage(page, b.blockNumber), 8);
        this.store.set(b.spcOid, b.dbOid, b.relNumber, b.forkNum, b.blockNumber, page);
        continue;
      }
      const before = b.willInit ? new Uint8Array(BLCKSZ) : this.store.get(b.spcOid, b.dbOid, b.relNumber, b.forkNum, b.blockNumber);
      const stored = encodeStoredRecord(r, b.index, this.opts.clusterFlags);
      const c = counts(this.report.byType, type);
      const key = keyOf(b.spcOid, b.dbOid, b.relNumber, b.forkNum, b.blockNumber);
      const out = this.redoAll(stored, before, `${type} at ${r.endLsn.toString(16)} ${key}`);
      if ('code' in out) {
        if (out.code === 'WAL_UNSUPPORTED') c.unsupported++;
        else {
          c.failed++;
          this.mismatch(type, r.endLsn, key, `${out.code}: ${out.message}`);
        }
        // Go on from the record's own after-image when it has one.
        if (b.hasImage) this.store.set(b.spcOid, b.dbOid, b.relNumber, b.forkNum, b.blockNumber, imageForBlock(r, b.index));
        continue;
      }
      c.redone++;
      this.store.set(b.spcOid, b.dbOid, b.relNumber, b.forkNum, b.blockNumber, out.page);
      if ((r.info & XLR_CHECK_CONSISTENCY) === 0 || !b.hasImage) continue;
      const image = r.image(b.index)!;
      const pb = Buffer.from(out.page.buffer, out.page.byteOffset, BLCKSZ);
      const pageLsn = (BigInt(pb.readUInt32LE(0)) << 32n) | BigInt(pb.readUInt32LE(4));
      if (pageLsn > r.endLsn) continue; // verifyBackupPageConsistency skips pages ahead of the record
      c.checked++;
      const am = r.rmid === RM_BTREE ? 'btree' : 'heap';
      const same = (page: Uint8Array): boolean => (b.forkNum === VM_FORK
        ? vmPagesEqual(page, image)
        : !pageIsNew(page) && maskForAm(am, page, b.blockNumber).equals(maskForAm(am, image, b.blockNumber)));
      const equal = same(out.page);
      if (!same(before)) c.changed++;
      if (!equal) {
        c.mismatches++;
        this.mismatch(type, r.endLsn, key, 'redone page differs from the image after masking');
      }
    }
  }

  /** Redo in every configured core; they must agree. Returns the first core's result. */
  private redoAll(stored: Uint8Array, before: Uint8Array, what: string): { page: Uint8Array } | { code: string; message: string } {
    let first: { page: Uint8Array } | { code: string; message: string } | null = null;
    const elapsed: number[] = [];
    for (const [impl, redo] of this.redos) {
      const page = Uint8Array.from(before);
      let res: { page: Uint8Array } | { code: string; message: string };
      try {
        const t0 = process.hrtime.bigint();
        redo(stored, page);
        elapsed.push(Number(process.hrtime.bigint() - t0) / 1e6);
        res = { page };
      } catch (e) {
        if (!isStrataError(e)) throw e;
        res = { code: e.code, message: e.message };
      }
      if (first === null) first = res;
      else if (!sameResult(first, res) && this.report.coreDisagreements.length < MAX_REPORTED_MISMATCHES) {
        this.report.coreDisagreements.push(`${what}: ${describe(first)} vs ${impl} ${describe(res)}`);
      }
    }
    if (elapsed.length === this.redos.length) {
      this.redos.forEach(([impl], i) => this.report.redoMs.set(impl, this.report.redoMs.get(impl)! + elapsed[i]));
      this.report.timedRedos++;
    }
    return first!;
  }

  /** A synthesized rmgr-255 VM_CLEAR on the VM page holding heapBlk's bits. */
  private vmClear(r: DecodedRecord, heapBlk: number, flags: number): void {
    const b0 = r.blockById(0)!;
    const vmBlk = Math.floor(heapBlk / HEAPBLOCKS_PER_VM_PAGE);
    const rec = storedRecord({
      targetId: 0, lsn: r.endLsn, rmid: 255, info: 0x00, clusterFlags: this.opts.clusterFlags,
      blocks: [{ id: 0, fork: VM_FORK, spcOid: b0.spcOid, dbOid: b0.dbOid, relNumber: b0.relNumber, blockNumber: vmBlk }],
      main: new Bytes().u32(heapBlk).u32(0xffffffff).u8(flags).build(),
    });
    const before = this.store.get(b0.spcOid, b0.dbOid, b0.relNumber, VM_FORK, vmBlk);
    const out = this.redoAll(rec, before, `VM_CLEAR for ${heapBlk}`);
    const c = counts(this.report.byType, 'Strata/VM_CLEAR');
    if ('code' in out) {
      c.failed++;
      this.mismatch('Strata/VM_CLEAR', r.endLsn, `vm ${vmBlk}`, `${out.code}: ${out.message}`);
      return;
    }
    c.redone++;
    this.report.vmClears++;
    this.store.set(b0.spcOid, b0.dbOid, b0.relNumber, VM_FORK, vmBlk, out.page);
  }

  /** Storage CREATE (an empty fork) and TRUNCATE (xl_smgr_truncate: blkno, RelFileNode, flags). */
  private storage(r: DecodedRecord): void {
    const m = r.mainData();
    const op = r.info & 0xf0;
    if (op === SMGR_CREATE && m.length >= 16) {
      this.store.truncate(m.readUInt32LE(0), m.readUInt32LE(4), m.readUInt32LE(8), m.readInt32LE(12), 0);
    }
    if (op !== SMGR_TRUNCATE || m.length < 20) return;
    const blkno = m.readUInt32LE(0);
    const [spc, db, rel] = [m.readUInt32LE(4), m.readUInt32LE(8), m.readUInt32LE(12)];
    const flags = m.readInt32LE(16);
    if (flags & SMGR_TRUNCATE_HEAP) this.store.truncate(spc, db, rel, 0, blkno);
    if (flags & SMGR_TRUNCATE_VM) {
      const vmBlk = Math.floor(blkno / HEAPBLOCKS_PER_VM_PAGE);
      const partial = blkno % HEAPBLOCKS_PER_VM_PAGE !== 0;
      if (partial) {
        const rec = storedRecord({
          targetId: 0, lsn: r.endLsn, rmid: 255, info: 0x10, clusterFlags: this.opts.clusterFlags,
          blocks: [{ id: 0, fork: VM_FORK, spcOid: spc, dbOid: db, relNumber: rel, blockNumber: vmBlk }],
          main: new Bytes().u32(blkno).build(),
        });
        const out = this.redoAll(rec, this.store.get(spc, db, rel, VM_FORK, vmBlk), `VM_TRUNCATE to ${blkno}`);
        const c = counts(this.report.byType, 'Strata/VM_TRUNCATE');
        if ('page' in out) {
          c.redone++;
          this.store.set(spc, db, rel, VM_FORK, vmBlk, out.page);
        } else {
          c.failed++;
        }
      }
      this.store.truncate(spc, db, rel, VM_FORK, partial ? vmBlk + 1 : vmBlk);
    }
  }

  private mismatch(type: string, lsn: bigint, key: string, what: string): void {
    if (this.report.mismatches.length < MAX_REPORTED_MISMATCHES) this.report.mismatches.push({ type, lsn, key, what });
  }
}

function sameResult(a: { page: Uint8Array } | { code: string; message: string }, b: { page: Uint8Array } | { code: string; message: string }): boolean {
  if ('page' in a && 'page' in b) return Buffer.compare(a.page, b.page) === 0;
  if ('code' in a && 'code' in b) return a.code === b.code && a.message === b.message;
  return false;
}

function describe(x: { page: Uint8Array } | { code: string; message: string }): string {
  return 'page' in x ? 'a page' : `${x.code} ${x.message}`;
}

/** One line per record type: redone, checked against images, mismatches, failures, unsupported. */
export function formatOracleReport(r: OracleReport): string {
  const lines = [...r.byType.entries()].sort(([a], [b]) => a.localeCompare(b))
    .map(([t, c]) => `${t.padEnd(24)} redone ${String(c.redone).padStart(6)}  checked ${String(c.checked).padStart(6)} ` +
      `(changed ${String(c.changed).padStart(6)})  mismatches ${c.mismatches}  failed ${c.failed}  unsupported ${c.unsupported}`);
  const speed = [...r.redoMs.entries()].map(([impl, ms]) => `${impl} ${(ms * 1000 / Math.max(1, r.timedRedos)).toFixed(2)} µs/record`).join(', ');
  return [`${r.records} WAL records, ${r.timedRedos} stored records redone (${speed})`, ...lines].join('\n');
}


export interface FinalComparison {
  heapPages: number;
  heapEqual: number;
  btreePages: number;
  btreeEqual: number;
  vmPages: number;
  vmEqual: number;
  /** VM pages that differ from final/ but equal PostgreSQL's own replay (replay/): the known VM hole of CREATE DATABASE wal_log. */
  vmEqualToReplay: number;
  /** Pages of relations that no longer exist at the end, or blocks past the final size. */
  skipped: number;
  mismatches: string[];
}

/**
 * After a run to the final LSN: every heap, btree and VM page the WAL touched against the final
 * data directory (heap_mask / btree_mask for main-fork pages, raw for VM pages of heap relations; a
 * VM page may instead equal `replayDir`, PostgreSQL's own replay, where final/ holds bits WAL never
 * carried). Other AMs are not compared.
 */
export function compareWithFinal(oracle: RedoOracle, finalDir: string, replayDir: string, relations: PgRelation[]): FinalComparison {
  const relId = (r: PgRelation): string => `${r.spcOid}/${r.dbOid}/${r.relNumber}`;
  const heapRels = new Set(relations.filter((r) => r.am === 'heap').map(relId));
  const btreeRels = new Set(relations.filter((r) => r.am === 'btree').map(relId));
  const finalForks = new Map(scanDataDir(finalDir).forks.map((f) => [forkId(f.rel.spcOid, f.rel.dbOid, f.rel.relNumber, f.rel.forkNum), f]));
  const replayForks = new Map(scanDataDir(replayDir).forks.map((f) => [forkId(f.rel.spcOid, f.rel.dbOid, f.rel.relNumber, f.rel.forkNum), f]));
  const out: FinalComparison = {
    heapPages: 0, heapEqual: 0, btreePages: 0, btreeEqual: 0, vmPages: 0, vmEqual: 0, vmEqualToReplay: 0, skipped: 0, mismatches: [],
  };
  for (const [spc, db, rel, fork, blk, page] of oracle.pages()) {
    const isBtree = btreeRels.has(`${spc}/${db}/${rel}`) && fork === 0;
    if (!isBtree && (!heapRels.has(`${spc}/${db}/${rel}`) || (fork !== 0 && fork !== VM_FORK))) continue;
    const f = finalForks.get(forkId(spc, db, rel, fork));
    if (f === undefined || blk >= f.blocks) {
      out.skipped++;
      continue;
    }
    const disk = readBlocks(finalDir, f, blk, 1);
    const key = keyOf(spc, db, rel, fork, blk);
    if (isBtree) {
      out.btreePages++;
      if (maskForAm('btree', page, blk).equals(maskForAm('btree', disk, blk))) out.btreeEqual++;
      else if (out.mismatches.length < MAX_REPORTED_MISMATCHES) out.mismatches.push(`btree ${key}`);
      continue;
    }
    if (fork === 0) {
      out.heapPages++;
      if (maskForAm('heap', page, blk).equals(maskForAm('heap', disk, blk))) out.heapEqual++;
      else if (out.mismatches.length < MAX_REPORTED_MISMATCHES) out.mismatches.push(`heap ${key}`);
      continue;
    }
    out.vmPages++;
    if (Buffer.compare(page, disk) === 0) {
      out.vmEqual++;
      continue;
    }
    const rf = replayForks.get(forkId(spc, db, rel, fork));
    if (rf !== undefined && blk < rf.blocks && Buffer.compare(page, readBlocks(replayDir, rf, blk, 1)) === 0) out.vmEqualToReplay++;
    else if (out.mismatches.length < MAX_REPORTED_MISMATCHES) out.mismatches.push(`vm ${key}`);
  }
  return out;
}
