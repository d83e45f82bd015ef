/**
 * The read side of "everything PostgreSQL needs to start" (docs/POSTGRES.md, "Cluster state for a
 * data directory"): what a writer of a PostgreSQL 15 data directory at an LSN needs besides the
 * relation pages and sizes (getPage, listRelations). Contract, for any LSN from the import on that
 * the timeline has reached (each call waits for it like getPage, and fails with LSN_GC_CUTOFF below
 * the GC cutoff, BAD_ARGUMENT below the import LSN or on a timeline that is not a PostgreSQL one):
 *
 *   readClusterState(tl, lsn)   pg_control's content as PostgreSQL would have it after the record
 *                               ending at `lsn`: the latest checkpoint record (struct as logged,
 *                               its location, shutdown or online) and the counters and horizons
 *                               PostgreSQL's own redo maintains between checkpoints (nextXid,
 *                               nextOid, nextMulti, nextMultiOffset, oldestXid, oldestMulti, …),
 *                               the settings pg_control records, and pg_control as imported (a
 *                               template for the fields Strata does not track)
 *   readSlruPages(tl, slru, lsn)  every page of pg_xact, pg_multixact/offsets or /members that
 *                               exists at `lsn`, in page order, as PostgreSQL's files would hold
 *                               them once its SLRU buffers are written; segments PostgreSQL's
 *                               truncation records removed are left out
 *   readTwoPhaseFiles(tl, lsn)  a pg_twophase state file per transaction prepared and not yet
 *                               committed or aborted at `lsn`, as RecreateTwoPhaseFile writes it
 *   readRelmaps(tl, lsn)        every pg_filenode.map: global/ (spcOid 1664, dbOid 0) and each
 *                               existing database's
 *
 * Page gaps are possible in an SLRU (a page PostgreSQL never wrote between two it did); a writer
 * fills them with zeros, as PostgreSQL's file would read.
 */
import type { TimelineImpl } from '../engine/timeline';
import { DEFAULT_WAIT_LSN_TIMEOUT_MS } from '../engine/timeline';
import { StrataError } from '../errors';
import { checkLsn, formatLsn, type Lsn, parseLsn } from '../lsn';
import { PAGE_SIZE } from '../record';
import { readAuxFiles } from './aux_files';
import { decodeClusterState } from './cluster_state';
import {
  type CheckpointInfo, type ControlState, decodeCheckpoint, decodeControlState, FIRST_MULTIXACT_ID, FIRST_NORMAL_TRANSACTION_ID,
  multiXactPrecedes, transactionIdPrecedes,
} from './control_state';
import {
  AUX_CHECKPOINT, AUX_CLUSTER_STATE, AUX_CONTROL_STATE, AUX_PG_CONTROL, AUX_RELMAP, AUX_TWOPHASE, decodeSlruKey, SLRU_MULTIXACT_MEMBERS,
  SLRU_MULTIXACT_OFFSETS, SLRU_PAGES_PER_SEGMENT, SLRU_XACT, slruKeyRange,
} from './keyspace';
import { stateValue } from './pg_timeline';
import { clogPageOf, membersPageOf, offsetsPageOf } from './slru_records';
import { CLOG_XACTS_PER_PAGE, MULTIXACT_OFFSETS_PER_PAGE } from '../core/pg_wal_format';

export type { CheckpointInfo };

/** pg_control at an LSN, as PostgreSQL would have it there (see the contract above). */
export interface PgClusterState extends Omit<ControlState, 'oldestClogXid' | 'multiTruncation'> {
  lsn: Lsn;
  systemIdentifier: bigint;
  catalogVersion: number;
  /** The latest checkpoint record at or before `lsn`. */
  checkpoint: CheckpointInfo;
  /** The oldest xid whose status pg_xact keeps (oldestXid until a CLOG TRUNCATE says more). */
  oldestClogXid: number;
  /** From data checksums on (initdb) and wal_log_hints (PARAMETER_CHANGE). */
  dataChecksums: boolean;
  walLogHints: boolean;
  /** pg_control as imported (8192 bytes): for the fields Strata does not track. */
  importedPgControl: Buffer;
}

export interface SlruPage {
  /** The file name's number (pg_xact/0000 is segment 0). */
  segment: number;
  /** Page inside the segment file (0..31). */
  page: number;
  /** segment × 32 + page, as PostgreSQL numbers SLRU pages. */
  pageno: number;
  bytes: Buffer;
}

export interface TwoPhaseFile {
  /** The prepared transaction's xid (pg_twophase/%08X). */
  xid: number;
  bytes: Buffer;
}

export interface RelmapFile {
  spcOid: number;
  dbOid: number;
  bytes: Buffer;
}

/** Keys read per core call. */
const READ_BATCH = 256;
/** Segments of pg_multixact/members: MXOffsetToMemberSegment(0xFFFFFFFF) + 1. */
const MEMBER_SEGMENTS = Math.floor(Math.floor(0xffff_ffff / 1636) / SLRU_PAGES_PER_SEGMENT) + 1;

async function checkRead(tl: TimelineImpl, lsn: Lsn, what: string): Promise<void> {
  const ext = tl.extensions.pg;
  if (ext === undefined) throw new StrataError('BAD_ARGUMENT', `${tl.name}: ${what} needs a PostgreSQL timeline: import a data directory into it first (importPgDatadir)`);
  checkLsn(lsn, 'lsn');
  if (ext.importLsn !== undefined && lsn < parseLsn(ext.importLsn)) {
    throw new StrataError('BAD_ARGUMENT', `${tl.name}: ${what} at ${formatLsn(lsn)}: the cluster was imported at ${ext.importLsn}, there is nothing before it`);
  }
  await tl.waitForLsn(lsn, DEFAULT_WAIT_LSN_TIMEOUT_MS);
  tl.checkAboveGcCutoff(lsn, what);
}

export async function readClusterState(tl: TimelineImpl, lsn: Lsn): Promise<PgClusterState> {
  await checkRead(tl, lsn, 'readClusterState');
  const ext = tl.extensions.pg as Readonly<Record<string, string>>;
  const control = decodeControlState(await stateValue(tl, AUX_CONTROL_STATE, lsn, 'control state'));
  const cluster = decodeClusterState(await stateValue(tl, AUX_CLUSTER_STATE, lsn, 'cluster state'));
  const checkpoint = decodeCheckpoint(await stateValue(tl, AUX_CHECKPOINT, lsn, 'checkpoint'));
  const importedPgControl = await stateValue(tl, AUX_PG_CONTROL, lsn, 'pg_control');
  // The truncation horizons stay internal: readSlruPages applies them.
  const { oldestClogXid, multiTruncation, ...counters } = control;
  void multiTruncation;
  return {
    ...counters,
    lsn,
    systemIdentifier: BigInt(ext.systemIdentifier),
    catalogVersion: Number(ext.catalogVersion),
    checkpoint,
    oldestClogXid: oldestClogXid ?? control.oldestXid,
    dataChecksums: cluster.dataChecksums,
    walLogHints: cluster.walLogHints,
    importedPgControl,
  };
}

export async function readSlruPages(tl: TimelineImpl, slru: number, lsn: Lsn): Promise<SlruPage[]> {
  if (slru !== SLRU_XACT && slru !== SLRU_MULTIXACT_OFFSETS && slru !== SLRU_MULTIXACT_MEMBERS) {
    throw new StrataError('BAD_ARGUMENT', `slru must be 0 (pg_xact), 1 (multixact offsets) or 2 (multixact members): got ${String(slru)}`);
  }
  await checkRead(tl, lsn, 'readSlruPages');
  const kept = segmentFilter(slru, decodeControlState(await stateValue(tl, AUX_CONTROL_STATE, lsn, 'control state')));
  const range = slruKeyRange(slru);
  const keys = tl.keysInRange(range.start, range.end).filter((k) => kept(decodeSlruKey(k).segment));
  const out: SlruPage[] = [];
  for (let start = 0; start < keys.length; start += READ_BATCH) {
    const batch = keys.slice(start, start + READ_BATCH);
    const { out: pages, status } = await tl.getPagesWithStatus(batch, lsn);
    batch.forEach((k, i) => {
      if (status[i] !== 0) return;
      const { segment, page } = decodeSlruKey(k);
      out.push({ segment, page, pageno: segment * SLRU_PAGES_PER_SEGMENT + page, bytes: Buffer.from(pages.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE)) });
    });
  }
  return out;
}

export async function readTwoPhaseFiles(tl: TimelineImpl, lsn: Lsn): Promise<TwoPhaseFile[]> {
  await checkRead(tl, lsn, 'readTwoPhaseFiles');
  return (await readAuxFiles(tl, AUX_TWOPHASE, lsn)).map((f) => ({ xid: f.id, bytes: f.bytes }));
}

export async function readRelmaps(tl: TimelineImpl, lsn: Lsn): Promise<RelmapFile[]> {
  await checkRead(tl, lsn, 'readRelmaps');
  return (await readAuxFiles(tl, AUX_RELMAP, lsn)).map((f) => ({ spcOid: f.spcOid, dbOid: f.dbOid, bytes: f.bytes }));
}

// ---- segments PostgreSQL's truncations removed ----------------------------------------------

/**
 * Which segments of an SLRU PostgreSQL still has at an LSN, given the truncations ingest saw
 * (none: every stored segment). pg_xact and offsets: SimpleLruTruncate's rule, a segment goes when
 * all its pages precede the cutoff page (the page of oldestClogXid; of the multixact before the
 * oldest kept one). Members: PerformMembersTruncation removes the segments from the old oldest
 * offset's up to the new one's; what remains in use is the cyclic range from the oldest kept
 * offset's segment to nextMultiOffset's, and only that range is served.
 */
export function segmentFilter(slru: number, s: ControlState): (segment: number) => boolean {
  if (slru === SLRU_XACT) {
    if (s.oldestClogXid === null) return () => true;
    const cutoff = clogPageOf(s.oldestClogXid);
    return (seg) => !slruMayDeleteSegment(seg * SLRU_PAGES_PER_SEGMENT, cutoff, clogPagePrecedes);
  }
  const t = s.multiTruncation;
  if (t === null) return () => true;
  if (slru === SLRU_MULTIXACT_OFFSETS) {
    const cutoff = offsetsPageOf(previousMultiXactId(t.oldestMulti));
    return (seg) => !slruMayDeleteSegment(seg * SLRU_PAGES_PER_SEGMENT, cutoff, offsetsPagePrecedes);
  }
  const first = Math.floor(membersPageOf(t.oldestOffset) / SLRU_PAGES_PER_SEGMENT);
  const last = Math.floor(membersPageOf(s.nextMultiOffset) / SLRU_PAGES_PER_SEGMENT);
  const span = (last - first + MEMBER_SEGMENTS) % MEMBER_SEGMENTS;
  return (seg) => (seg - first + MEMBER_SEGMENTS) % MEMBER_SEGMENTS <= span;
}

/** SlruMayDeleteSegment: every page of the segment precedes the cutoff page. */
function slruMayDeleteSegment(segpage: number, cutoffPage: number, precedes: (a: number, b: number) => boolean): boolean {
  return precedes(segpage, cutoffPage) && precedes(segpage + SLRU_PAGES_PER_SEGMENT - 1, cutoffPage);
}

/** CLOGPagePrecedes: compares the pages' xids offset past the permanent ones (clog.c). */
export function clogPagePrecedes(page1: number, page2: number): boolean {
  const xid1 = (page1 * CLOG_XACTS_PER_PAGE + FIRST_NORMAL_TRANSACTION_ID + 1) >>> 0;
  const xid2 = (page2 * CLOG_XACTS_PER_PAGE + FIRST_NORMAL_TRANSACTION_ID + 1) >>> 0;
  return transactionIdPrecedes(xid1, xid2) && transactionIdPrecedes(xid1, (xid2 + CLOG_XACTS_PER_PAGE - 1) >>> 0);
}

/** MultiXactOffsetPagePrecedes (multixact.c). */
export function offsetsPagePrecedes(page1: number, page2: number): boolean {
  const m1 = (page1 * MULTIXACT_OFFSETS_PER_PAGE + FIRST_MULTIXACT_ID + 1) >>> 0;
  const m2 = (page2 * MULTIXACT_OFFSETS_PER_PAGE + FIRST_MULTIXACT_ID + 1) >>> 0;
  return multiXactPrecedes(m1, m2) && multiXactPrecedes(m1, (m2 + MULTIXACT_OFFSETS_PER_PAGE - 1) >>> 0);
}

/** PreviousMultiXactId: the multixact before `multi`, skipping 0. */
function previousMultiXactId(multi: number): number {
  return multi === FIRST_MULTIXACT_ID ? 0xffff_ffff : (multi - 1) >>> 0;
}
