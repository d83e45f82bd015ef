/**
 * WAL ingest: decoded PostgreSQL 15 records → the values Strata stores (docs/POSTGRES.md,
 * "Ingest"), after Neon's walingest.rs. Records are not redone here; they are stored under the
 * keys of the blocks they touch and redone at read time by the core.
 *
 *   every block reference   its stored record (tag 4), or — an image PostgreSQL restores at
 *                           replay — the page itself (tag 1) with pd_lsn and, in a checksummed
 *                           cluster, pd_checksum set; free-space-map blocks are not kept
 *   relation extension      a block past the end moves the size key; blocks skipped over read as
 *                           zeros, so they get zero records (a truncated-then-extended relation
 *                           must not show its old pages)
 *   heap VM side effects    *_ALL_VISIBLE_CLEARED / ALL_FROZEN_CLEARED flags → Strata's rmgr-255
 *                           VM_CLEAR on the visibility-map page (it has no block reference)
 *   Storage CREATE/TRUNCATE size keys; the VM's last page gets VM_TRUNCATE
 *   Transaction COMMIT/ABORT (and PREPARED): relations listed as dropped
 *   Database CREATE/DROP    FILE_COPY copies the template's pages at that LSN; DROP drops every
 *                           relation of the database
 *   RelMap UPDATE           pg_filenode.map as an aux file (copied by CREATE DATABASE … FILE_COPY,
 *                           deleted by DROP DATABASE)
 *   XLOG PARAMETER_CHANGE   wal_log_hints, which changes how later pages are written
 *   CLOG, multixacts, two-phase state files, checkpoint and control state: state_ingest.ts
 *
 * Values go to the timeline in batches (all or nothing each); a batch is sent before anything is
 * read back (a relation's size, a template's pages), so reads see every earlier record.
 */
import { pgChecksumPage, pgRedoSupported, pgRmgrInfoName } from '../core/pg_decoder';
import type { PreparedBatch } from '../engine/ingest';
import type { TimelineImpl } from '../engine/timeline';
import { StrataError } from '../errors';
import { encodeKey, KEY_SIZE, type PageKey } from '../key';
import { formatLsn, type Lsn } from '../lsn';
import { MAX_RECORD_SIZE, PAGE_SIZE, RECORD_TAG_IMAGE, RECORD_TAG_ZERO, serializeValueRecord } from '../record';
import { clusterFlagsOf, type ClusterState, encodeClusterState } from './cluster_state';
import type { ControlState } from './control_state';
import {
  AUX_CLUSTER_STATE, AUX_RELMAP, auxChunks, auxDeletion, decodeRelSizeKey, encodeRelSize, FSM_FORKNUM, MAIN_FORKNUM, pageKeyOf,
  relId, relSizeKey, relSizeKeyRangeOf, type RelTag, STORED_FORKS, VISIBILITYMAP_FORKNUM,
} from './keyspace';
import { readAuxFile } from './aux_files';
import type { LastCommit } from './lsn_time';
import { strataRecord } from './slru_records';
import { StateIngest } from './state_ingest';
import { relSizes, type RelSizes } from './rel_sizes';
import {
  BKPBLOCK_HAS_DATA, STORED_BLOCK_REF_SIZE, STORED_FLAG_TRUNCATED, STORED_HEADER_SIZE, STRATA_VM_CLEAR, STRATA_VM_TRUNCATE,
} from '../core/pg_wal_format';
import { type DecodedRecord, encodeStoredRecord, imageForBlock } from './wal_record';

/** What ingestPgWal returns. */
export interface WalIngestReport {
  /** End LSN of the last record ingested (the timeline's lastRecordLsn). */
  endLsn: Lsn;
  records: number;
  /** Block references stored (each one value). */
  blocks: number;
  /** Records stored that the cores cannot redo, by `rmgr/INFO` name; reading their pages fails with WAL_UNSUPPORTED. */
  unsupported: Record<string, number>;
}

// Resource managers and opcodes (PostgreSQL 15, rmgrlist.h and the *_xlog.h headers).
const RM_XLOG = 0;
const RM_XACT = 1;
const RM_SMGR = 2;
const RM_DBASE = 4;
const RM_RELMAP = 7;
const RM_HEAP2 = 9;
const RM_HEAP = 10;
const XLR_RMGR_INFO_MASK = 0xf0;
const XLOG_HEAP_OPMASK = 0x70;
const XLOG_PARAMETER_CHANGE = 0x60;
const XLOG_SMGR_CREATE = 0x10;
const XLOG_SMGR_TRUNCATE = 0x20;
const SMGR_TRUNCATE_HEAP = 0x01;
const SMGR_TRUNCATE_VM = 0x02;
const XLOG_XACT_OPMASK = 0x70;
const XLOG_XACT_HAS_INFO = 0x80;
const XLOG_XACT_COMMIT = 0x00;
const XLOG_XACT_ABORT = 0x20;
const XLOG_XACT_COMMIT_PREPARED = 0x30;
const XLOG_XACT_ABORT_PREPARED = 0x40;
const XACT_XINFO_HAS_DBINFO = 0x01;
const XACT_XINFO_HAS_SUBXACTS = 0x02;
const XACT_XINFO_HAS_RELFILENODES = 0x04;
const XLOG_DBASE_CREATE_FILE_COPY = 0x00;
const XLOG_DBASE_DROP = 0x20;
const XLOG_RELMAP_UPDATE = 0x00;
/** Heap opcodes and the flags that clear visibility-map bits (heapam_xlog.h). */
const HEAP_INSERT = 0x00;
const HEAP_DELETE = 0x10;
const HEAP_UPDATE = 0x20;
const HEAP_HOT_UPDATE = 0x40;
const HEAP_LOCK = 0x60;
const HEAP2_MULTI_INSERT = 0x50;
const HEAP2_LOCK_UPDATED = 0x60;
const XLH_INSERT_ALL_VISIBLE_CLEARED = 0x01;
const XLH_UPDATE_OLD_ALL_VISIBLE_CLEARED = 0x01;
const XLH_UPDATE_NEW_ALL_VISIBLE_CLEARED = 0x02;
const XLH_DELETE_ALL_VISIBLE_CLEARED = 0x01;
const XLH_LOCK_ALL_FROZEN_CLEARED = 0x01;
const VISIBILITYMAP_ALL_VISIBLE = 0x01;
const VISIBILITYMAP_ALL_FROZEN = 0x02;
const VISIBILITYMAP_VALID_BITS = VISIBILITYMAP_ALL_VISIBLE | VISIBILITYMAP_ALL_FROZEN;
/** Heap blocks one visibility-map page covers: (8192 − 24-byte page header) × 4 (visibilitymap.c). */
const HEAPBLOCKS_PER_VM_PAGE = (PAGE_SIZE - 24) * 4;
const NO_BLOCK = 0xffff_ffff;
/** Values per batch handed to the timeline (bounds memory and the all-or-nothing unit). */
const BATCH_VALUES = 16_384;
/** Pages read per core call when a database is copied. */
const COPY_READ_PAGES = 256;
const RELFILENODE_BYTES = 12;
const STORED_HEADER = STORED_HEADER_SIZE;
const STORED_BLOCK = STORED_BLOCK_REF_SIZE;

/** The values of one ingest batch, in LSN order, at most one per key and LSN. */
class PendingBatch implements PreparedBatch {
  keys: Buffer[] = [];
  lsns: Lsn[] = [];
  values: Buffer[] = [];

  add(key: Buffer, lsn: Lsn, value: Buffer): void {
    this.keys.push(key);
    this.lsns.push(lsn);
    this.values.push(value);
  }

  get length(): number {
    return this.keys.length;
  }
}

export class WalIngest {
  private pending = new PendingBatch();
  /** Sizes set by values still pending: the timeline cannot answer for them until they are sent. */
  private pendingSizes = new Map<string, number | null>();
  private readonly sizes: RelSizes;
  private readonly report: WalIngestReport;
  private readonly state: StateIngest;

  constructor(private readonly tl: TimelineImpl, private cluster: ClusterState, control: ControlState, lastCommit: LastCommit | null) {
    this.sizes = relSizes(tl);
    this.report = { endLsn: tl.lastRecordLsn, records: 0, blocks: 0, unsupported: {} };
    this.state = new StateIngest(tl, control, (key, lsn, value) => this.pending.add(key, lsn, value), lastCommit);
  }

  /** Store one decoded record (records ending at or below lastRecordLsn were ingested before: skipped). */
  async ingest(rec: DecodedRecord): Promise<void> {
    const lsn = rec.endLsn;
    if (lsn <= this.tl.lastRecordLsn || (this.pending.length > 0 && lsn <= this.pending.lsns[this.pending.length - 1])) return;
    await this.blocks(rec);
    await this.sideEffects(rec);
    await this.state.ingest(rec);
    this.report.records++;
    this.report.endLsn = lsn;
    if (this.pending.length >= BATCH_VALUES) {
      this.submit();
      await this.tl.waitForFrozenLayers(); // backpressure: a WAL stream faster than the disk waits here
    }
  }

  /** Send what is pending; returns the report so far. */
  finish(): WalIngestReport {
    this.submit();
    return { ...this.report, unsupported: { ...this.report.unsupported } };
  }

  /**
   * Hand the pending values to the timeline (all of them or, on error, none), then move its
   * lastRecordLsn to the last record ingested, which may have had nothing to store.
   */
  submit(): void {
    if (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = new PendingBatch();
      this.pendingSizes = new Map();
      this.tl.ingestPrepared(batch);
    }
    this.tl.advanceLsn(this.report.endLsn);
  }

  // ---- block references ------------------------------------------------------------------------

  private async blocks(rec: DecodedRecord): Promise<void> {
    const lsn = rec.endLsn;
    const touched = new Map<string, { rel: RelTag; maxBlock: number; written: Set<number> }>();
    let storedRedo = false;
    let truncated = false;
    for (const b of rec.blocks()) {
      if (b.forkNum === FSM_FORKNUM) continue; // the FSM is not WAL-logged state; PostgreSQL rebuilds it
      const rel: RelTag = { spcOid: b.spcOid, dbOid: b.dbOid, relNumber: b.relNumber, forkNum: b.forkNum };
      const key = encodeKey(pageKeyOf(rel, b.blockNumber));
      if (b.applyImage) {
        this.pending.add(key, lsn, this.imageValue(imageForBlock(rec, b.index), b.blockNumber));
      } else {
        let value = encodeStoredRecord(rec, b.index, clusterFlagsOf(this.cluster));
        if (value.length > MAX_RECORD_SIZE) {
          value = truncatedStoredRecord(value);
          truncated = true;
        }
        this.pending.add(key, lsn, value);
        storedRedo = true;
      }
      this.report.blocks++;
      const id = relId(rel);
      const t = touched.get(id) ?? { rel, maxBlock: -1, written: new Set<number>() };
      t.maxBlock = Math.max(t.maxBlock, b.blockNumber);
      t.written.add(b.blockNumber);
      touched.set(id, t);
    }
    if (storedRedo && (truncated || !pgRedoSupported(rec.rmid, rec.info))) {
      const name = pgRmgrInfoName(rec.rmid, rec.info) + (truncated ? ' (too large to store)' : '');
      this.report.unsupported[name] = (this.report.unsupported[name] ?? 0) + 1;
    }
    for (const t of touched.values()) await this.extend(t.rel, t.maxBlock + 1, lsn, t.written);
  }

  /** An image as the page PostgreSQL restores: pd_lsn set (unless new), checksum for checksummed clusters. */
  private imageValue(page: Buffer, blockNumber: number): Buffer {
    if (this.cluster.dataChecksums && !pageIsNew(page)) page.writeUInt16LE(pgChecksumPage(page, blockNumber), PD_CHECKSUM);
    return imageRecord(page);
  }

  /** The relation reaches `newSize` blocks at `lsn`: zero records for skipped blocks, then its size. */
  private async extend(rel: RelTag, newSize: number, lsn: Lsn, written: ReadonlySet<number>): Promise<void> {
    const old = (await this.sizeNow(rel)) ?? 0;
    if (newSize <= old) return;
    for (let blk = old; blk < newSize; blk++) {
      if (!written.has(blk)) this.pending.add(encodeKey(pageKeyOf(rel, blk)), lsn, ZERO_RECORD);
    }
    this.setSize(rel, newSize, lsn);
  }

  private setSize(rel: RelTag, nblocks: number | null, lsn: Lsn): void {
    this.pending.add(relSizeKey(rel), lsn, serializeValueRecord(encodeRelSize(nblocks)));
    this.pendingSizes.set(relId(rel), nblocks);
    this.sizes.noteChange(rel, lsn, nblocks);
  }

  /** The relation's size as ingest has it so far, pending values included. */
  private async sizeNow(rel: RelTag): Promise<number | null> {
    const id = relId(rel);
    if (this.pendingSizes.has(id)) return this.pendingSizes.get(id) as number | null;
    return this.sizes.latest(rel);
  }

  // ---- side effects by resource manager --------------------------------------------------------

  private async sideEffects(rec: DecodedRecord): Promise<void> {
    const op = rec.info & XLR_RMGR_INFO_MASK;
    switch (rec.rmid) {
      case RM_HEAP:
      case RM_HEAP2:
        await this.clearVisibilityMap(rec);
        break;
      case RM_SMGR:
        if (op === XLOG_SMGR_CREATE) await this.smgrCreate(rec);
        else if (op === XLOG_SMGR_TRUNCATE) await this.smgrTruncate(rec);
        break;
      case RM_XACT:
        await this.xactDrops(rec);
        break;
      case RM_DBASE:
        if (op === XLOG_DBASE_CREATE_FILE_COPY) await this.dbaseCopy(rec);
        else if (op === XLOG_DBASE_DROP) await this.dbaseDrop(rec);
        // CREATE_WAL_LOG only makes the directory; the pages follow as FPIs.
        break;
      case RM_RELMAP:
        if (op === XLOG_RELMAP_UPDATE) this.relmapUpdate(rec);
        break;
      case RM_XLOG:
        if (op === XLOG_PARAMETER_CHANGE) this.parameterChange(rec);
        break;
      default:
        break;
    }
  }

  /**
   * heapam.c's redo clears visibility-map bits the record names only by flags (no VM block
   * reference): both bits for inserts, deletes and updates, ALL_FROZEN for locks. One VM_CLEAR per
   * VM page (an update's old and new heap blocks may share one). Nothing when that VM page does
   * not exist: PostgreSQL set no bit there to clear.
   */
  private async clearVisibilityMap(rec: DecodedRecord): Promise<void> {
    const clears = heapVmClears(rec);
    if (clears.length === 0) return;
    const b0 = rec.blockById(0);
    if (b0 === undefined) return;
    const vmRel: RelTag = { spcOid: b0.spcOid, dbOid: b0.dbOid, relNumber: b0.relNumber, forkNum: VISIBILITYMAP_FORKNUM };
    const vmSize = (await this.sizeNow(vmRel)) ?? 0;
    const byVmBlock = new Map<number, { heapBlocks: number[]; flags: number }>();
    for (const [heapBlock, flags] of clears) {
      const vmBlock = Math.floor(heapBlock / HEAPBLOCKS_PER_VM_PAGE);
      if (vmBlock >= vmSize) continue;
      const e = byVmBlock.get(vmBlock) ?? { heapBlocks: [], flags: 0 };
      if (!e.heapBlocks.includes(heapBlock)) e.heapBlocks.push(heapBlock);
      e.flags |= flags;
      byVmBlock.set(vmBlock, e);
    }
    for (const [vmBlock, e] of byVmBlock) {
      const main = Buffer.alloc(9);
      main.writeUInt32LE(e.heapBlocks[0], 0);
      main.writeUInt32LE(e.heapBlocks[1] ?? NO_BLOCK, 4);
      main[8] = e.flags;
      this.pending.add(encodeKey(pageKeyOf(vmRel, vmBlock)), rec.endLsn, this.strataRecord(STRATA_VM_CLEAR, vmRel, vmBlock, rec, main));
    }
  }

  /** A tag-4 value of Strata's rmgr 255 for one relation page. */
  private strataRecord(info: number, rel: RelTag, blockNumber: number, rec: DecodedRecord, main: Buffer): Buffer {
    return strataRecord(info, clusterFlagsOf(this.cluster), rec.endLsn, rec.xid, { ...rel, blockNumber }, main);
  }

  /** smgr_redo CREATE: the fork exists, empty unless it already does. */
  private async smgrCreate(rec: DecodedRecord): Promise<void> {
    const m = mainData(rec, 16, 'Storage/CREATE');
    const rel = { ...readRelFileNode(m, 0), forkNum: m.readInt32LE(12) };
    if (rel.forkNum === FSM_FORKNUM) return;
    if ((await this.sizeNow(rel)) === null) this.setSize(rel, 0, rec.endLsn);
  }

  /** smgr_redo TRUNCATE: the main fork to blkno, the VM to what visibilitymap_prepare_truncate leaves. */
  private async smgrTruncate(rec: DecodedRecord): Promise<void> {
    const m = mainData(rec, 20, 'Storage/TRUNCATE');
    const blkno = m.readUInt32LE(0);
    const node = readRelFileNode(m, 4);
    const flags = m.readInt32LE(16);
    const lsn = rec.endLsn;
    if ((flags & SMGR_TRUNCATE_HEAP) !== 0) {
      const rel = { ...node, forkNum: MAIN_FORKNUM };
      const size = await this.sizeNow(rel);
      if (size !== null && size > blkno) this.setSize(rel, blkno, lsn);
    }
    if ((flags & SMGR_TRUNCATE_VM) !== 0) await this.truncateVisibilityMap({ ...node, forkNum: VISIBILITYMAP_FORKNUM }, blkno, rec);
  }

  private async truncateVisibilityMap(vmRel: RelTag, heapBlocks: number, rec: DecodedRecord): Promise<void> {
    const vmSize = await this.sizeNow(vmRel);
    if (vmSize === null) return;
    const truncBlock = Math.floor(heapBlocks / HEAPBLOCKS_PER_VM_PAGE);
    let newSize = truncBlock;
    if (heapBlocks % HEAPBLOCKS_PER_VM_PAGE !== 0) {
      // The last kept VM page keeps only the bits of heap blocks below the new size.
      if (vmSize <= truncBlock) return;
      const main = Buffer.alloc(4);
      main.writeUInt32LE(heapBlocks, 0);
      this.pending.add(encodeKey(pageKeyOf(vmRel, truncBlock)), rec.endLsn, this.strataRecord(STRATA_VM_TRUNCATE, vmRel, truncBlock, rec, main));
      newSize = truncBlock + 1;
    }
    if (vmSize > newSize) this.setSize(vmRel, newSize, rec.endLsn);
  }

  /** Relations a COMMIT/ABORT (or their PREPARED forms) drops: every stored fork that exists. */
  private async xactDrops(rec: DecodedRecord): Promise<void> {
    const op = rec.info & XLOG_XACT_OPMASK;
    if (op !== XLOG_XACT_COMMIT && op !== XLOG_XACT_ABORT && op !== XLOG_XACT_COMMIT_PREPARED && op !== XLOG_XACT_ABORT_PREPARED) return;
    for (const node of droppedRelations(rec)) {
      for (const forkNum of STORED_FORKS) {
        const rel = { ...node, forkNum };
        if ((await this.sizeNow(rel)) !== null) this.setSize(rel, null, rec.endLsn);
      }
    }
  }

  /**
   * CREATE DATABASE … STRATEGY FILE_COPY: the new database's relations are the template's at this
   * LSN, page for page. They are copied (read at the LSN before the record, written at its LSN);
   * sharing the template's layers instead would need key indirection the layer format lacks. All
   * of one record's values go in one batch — a batch boundary inside one LSN could let a flush
   * make half a record durable — so this holds the template's pages in memory once.
   */
  private async dbaseCopy(rec: DecodedRecord): Promise<void> {
    const m = mainData(rec, 16, 'Database/CREATE_FILE_COPY');
    const dbOid = m.readUInt32LE(0);
    const spcOid = m.readUInt32LE(4);
    const srcDbOid = m.readUInt32LE(8);
    const srcSpcOid = m.readUInt32LE(12);
    this.submit();
    const at = this.tl.lastRecordLsn;
    for (const { rel, nblocks } of await this.relationsOf(srcSpcOid, srcDbOid, at)) {
      const dst: RelTag = { ...rel, spcOid, dbOid };
      for (let start = 0; start < nblocks; start += COPY_READ_PAGES) {
        const keys: PageKey[] = [];
        for (let b = start; b < Math.min(nblocks, start + COPY_READ_PAGES); b++) keys.push(pageKeyOf(rel, b));
        const { out } = await this.tl.getPagesWithStatus(keys, at);
        keys.forEach((k, i) => {
          this.pending.add(encodeKey(pageKeyOf(dst, k.blockNum)), rec.endLsn, imageRecord(out.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE)));
        });
      }
      this.setSize(dst, nblocks, rec.endLsn);
    }
    // copydir copies the template's pg_filenode.map with its files; no RelMap record follows.
    const map = await readAuxFile(this.tl, AUX_RELMAP, srcSpcOid, srcDbOid, 0, at);
    if (map !== null) {
      for (const c of auxChunks(AUX_RELMAP, spcOid, dbOid, 0, map)) this.pending.add(c.key, rec.endLsn, serializeValueRecord(c.payload));
    }
  }

  /** DROP DATABASE: every relation of the database, in each tablespace listed, is dropped. */
  private async dbaseDrop(rec: DecodedRecord): Promise<void> {
    const m = mainData(rec, 8, 'Database/DROP');
    const dbOid = m.readUInt32LE(0);
    const n = m.readInt32LE(4);
    if (n < 0 || m.length < 8 + 4 * n) throw walCorrupt(rec, 'Database/DROP', `lists ${n} tablespaces in ${m.length} bytes`);
    this.submit();
    for (let i = 0; i < n; i++) {
      const spcOid = m.readUInt32LE(8 + 4 * i);
      for (const { rel } of await this.relationsOf(spcOid, dbOid, this.tl.lastRecordLsn)) this.setSize(rel, null, rec.endLsn);
      // The database's directory goes, pg_filenode.map with it.
      if ((await readAuxFile(this.tl, AUX_RELMAP, spcOid, dbOid, 0, this.tl.lastRecordLsn)) !== null) {
        const d = auxDeletion(AUX_RELMAP, spcOid, dbOid, 0);
        this.pending.add(d.key, rec.endLsn, serializeValueRecord(d.payload));
      }
    }
  }

  /** Every existing stored fork of (spc, db) at `lsn`, with its size. */
  private async relationsOf(spcOid: number, dbOid: number, lsn: Lsn): Promise<Array<{ rel: RelTag; nblocks: number }>> {
    return listRelationsAt(this.tl, lsn, spcOid, dbOid);
  }

  /** relmap_redo: pg_filenode.map of the database (or the shared one), kept as an aux file. */
  private relmapUpdate(rec: DecodedRecord): void {
    const m = mainData(rec, 12, 'RelMap/UPDATE');
    const dbOid = m.readUInt32LE(0);
    const spcOid = m.readUInt32LE(4);
    const nbytes = m.readInt32LE(8);
    if (nbytes < 0 || m.length < 12 + nbytes) throw walCorrupt(rec, 'RelMap/UPDATE', `claims ${nbytes} bytes in ${m.length}`);
    for (const c of auxChunks(AUX_RELMAP, spcOid, dbOid, 0, m.subarray(12, 12 + nbytes))) {
      this.pending.add(c.key, rec.endLsn, serializeValueRecord(c.payload));
    }
  }

  /** XLOG PARAMETER_CHANGE: wal_log_hints decides whether redo bumps a VISIBLE heap page's LSN. */
  private parameterChange(rec: DecodedRecord): void {
    const m = mainData(rec, PARAMETER_CHANGE_SIZE, 'XLOG/PARAMETER_CHANGE');
    const walLogHints = m[PARAMETER_CHANGE_WAL_LOG_HINTS] !== 0;
    if (walLogHints === this.cluster.walLogHints) return;
    this.cluster = { ...this.cluster, walLogHints };
    for (const c of auxChunks(AUX_CLUSTER_STATE, 0, 0, 0, encodeClusterState(this.cluster))) {
      this.pending.add(c.key, rec.endLsn, serializeValueRecord(c.payload));
    }
  }
}

/**
 * A stored record too large for a layer (over MAX_RECORD_SIZE) keeps its header and block
 * references and is marked, so redo refuses it with WAL_UNSUPPORTED rather than redo it without its
 * data (docs/POSTGRES.md, "Stored record").
 */
export function truncatedStoredRecord(value: Buffer): Buffer {
  const refsEnd = STORED_HEADER + value[18] * STORED_BLOCK;
  const out = Buffer.from(value.subarray(0, refsEnd));
  out[3] |= STORED_FLAG_TRUNCATED;
  out.writeUInt32LE(0, 20); // no main data kept
  for (let o = STORED_HEADER; o < refsEnd; o += STORED_BLOCK) {
    out[o + 2] &= ~BKPBLOCK_HAS_DATA; // nor block data
    out.writeUInt16LE(0, o + 20);
  }
  return out;
}

/** sizeof(xl_parameter_change) and the offset of its wal_log_hints (PostgreSQL 15). */
const PARAMETER_CHANGE_SIZE = 28;
const PARAMETER_CHANGE_WAL_LOG_HINTS = 24;
const PD_CHECKSUM = 8;
const PD_UPPER = 14;
const ZERO_RECORD = Buffer.of(RECORD_TAG_ZERO);

function pageIsNew(page: Uint8Array): boolean {
  return (page[PD_UPPER] | (page[PD_UPPER + 1] << 8)) === 0;
}

/** An all-zero page as a 1-byte zero record, anything else as an image record. */
export function imageRecord(page: Uint8Array): Buffer {
  let zero = true;
  for (let i = 0; i < PAGE_SIZE && zero; i++) zero = page[i] === 0;
  if (zero) return ZERO_RECORD;
  const rec = Buffer.allocUnsafe(1 + PAGE_SIZE);
  rec[0] = RECORD_TAG_IMAGE;
  rec.set(page.subarray(0, PAGE_SIZE), 1);
  return rec;
}

function walCorrupt(rec: DecodedRecord, what: string, why: string): StrataError {
  return new StrataError('WAL_CORRUPT', `${what} record at ${formatLsn(rec.startLsn)}: ${why}`);
}

function mainData(rec: DecodedRecord, minBytes: number, what: string): Buffer {
  const m = rec.mainData();
  if (m.length < minBytes) throw walCorrupt(rec, what, `main data of ${m.length} bytes, expected at least ${minBytes}`);
  return m;
}

function readRelFileNode(b: Buffer, off: number): Omit<RelTag, 'forkNum'> {
  return { spcOid: b.readUInt32LE(off), dbOid: b.readUInt32LE(off + 4), relNumber: b.readUInt32LE(off + 8) };
}

/** The [heap block, VM bits] pairs a heap record clears (heapam.c's heap_xlog_* redo). */
function heapVmClears(rec: DecodedRecord): Array<[number, number]> {
  const op = rec.info & XLOG_HEAP_OPMASK;
  const m = rec.mainData();
  const blk0 = rec.blockById(0)?.blockNumber;
  if (blk0 === undefined) return [];
  const out: Array<[number, number]> = [];
  if (rec.rmid === RM_HEAP) {
    if (op === HEAP_INSERT && m.length >= 3 && (m[2] & XLH_INSERT_ALL_VISIBLE_CLEARED) !== 0) out.push([blk0, VISIBILITYMAP_VALID_BITS]);
    if (op === HEAP_DELETE && m.length >= 8 && (m[7] & XLH_DELETE_ALL_VISIBLE_CLEARED) !== 0) out.push([blk0, VISIBILITYMAP_VALID_BITS]);
    if ((op === HEAP_UPDATE || op === HEAP_HOT_UPDATE) && m.length >= 8) {
      const oldBlk = rec.blockById(1)?.blockNumber ?? blk0;
      if ((m[7] & XLH_UPDATE_OLD_ALL_VISIBLE_CLEARED) !== 0) out.push([oldBlk, VISIBILITYMAP_VALID_BITS]);
      if ((m[7] & XLH_UPDATE_NEW_ALL_VISIBLE_CLEARED) !== 0) out.push([blk0, VISIBILITYMAP_VALID_BITS]);
    }
    if (op === HEAP_LOCK && m.length >= 8 && (m[7] & XLH_LOCK_ALL_FROZEN_CLEARED) !== 0) out.push([blk0, VISIBILITYMAP_ALL_FROZEN]);
  } else if (rec.rmid === RM_HEAP2) {
    if (op === HEAP2_MULTI_INSERT && m.length >= 1 && (m[0] & XLH_INSERT_ALL_VISIBLE_CLEARED) !== 0) out.push([blk0, VISIBILITYMAP_VALID_BITS]);
    if (op === HEAP2_LOCK_UPDATED && m.length >= 8 && (m[7] & XLH_LOCK_ALL_FROZEN_CLEARED) !== 0) out.push([blk0, VISIBILITYMAP_ALL_FROZEN]);
  }
  return out;
}

/**
 * The relations a transaction record lists as dropped (xact.c's ParseCommitRecord /
 * ParseAbortRecord, PostgreSQL 15): after the timestamp, xinfo; then, in order, dbinfo, subxacts
 * and the relfilenodes.
 */
function droppedRelations(rec: DecodedRecord): Array<Omit<RelTag, 'forkNum'>> {
  const m = rec.mainData();
  const what = 'Transaction';
  if ((rec.info & XLOG_XACT_HAS_INFO) === 0) return [];
  let o = 8; // xact_time
  const need = (n: number): void => { if (o + n > m.length) throw walCorrupt(rec, what, `main data of ${m.length} bytes ends inside its xinfo sections`); };
  need(4);
  const xinfo = m.readUInt32LE(o);
  o += 4;
  if ((xinfo & XACT_XINFO_HAS_DBINFO) !== 0) { need(8); o += 8; }
  if ((xinfo & XACT_XINFO_HAS_SUBXACTS) !== 0) {
    need(4);
    const n = m.readInt32LE(o);
    if (n < 0) throw walCorrupt(rec, what, `${n} subtransactions`);
    need(4 + 4 * n);
    o += 4 + 4 * n;
  }
  if ((xinfo & XACT_XINFO_HAS_RELFILENODES) === 0) return [];
  need(4);
  const n = m.readInt32LE(o);
  if (n < 0) throw walCorrupt(rec, what, `${n} relations`);
  need(4 + RELFILENODE_BYTES * n);
  o += 4;
  const out: Array<Omit<RelTag, 'forkNum'>> = [];
  for (let i = 0; i < n; i++) out.push(readRelFileNode(m, o + i * RELFILENODE_BYTES));
  return out;
}

/** Existing stored forks of (spc, db) — or of every database when spcOid is null — at `lsn`, with sizes. */
export async function listRelationsAt(tl: TimelineImpl, lsn: Lsn, spcOid: number | null, dbOid: number | null): Promise<Array<{ rel: RelTag; nblocks: number }>> {
  const range = spcOid !== null && dbOid !== null ? relSizeKeyRangeOf(spcOid, dbOid) : allSizeKeys();
  const keys = tl.keysInRange(range.start, range.end).filter((k) => dbOid === null || decodeRelSizeKey(k).dbOid === dbOid);
  const out: Array<{ rel: RelTag; nblocks: number }> = [];
  for (let start = 0; start < keys.length; start += COPY_READ_PAGES) {
    const chunk = keys.slice(start, start + COPY_READ_PAGES);
    const { out: pages, status } = await tl.getPagesWithStatus(chunk, lsn);
    chunk.forEach((k, i) => {
      if (status[i] !== 0) return;
      const page = pages.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE);
      if (page[0] !== 1) return; // dropped
      out.push({ rel: decodeRelSizeKey(k), nblocks: page.readUInt32LE(1) });
    });
  }
  return out;
}

function allSizeKeys(): { start: Buffer; end: Buffer } {
  const start = Buffer.alloc(KEY_SIZE);
  start[0] = 0x01;
  const end = Buffer.alloc(KEY_SIZE);
  end[0] = 0x02;
  return { start, end };
}
