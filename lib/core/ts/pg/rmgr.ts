/**
 * Redo of one stored PostgreSQL record (tag 4) on the page it is stored under, TS twin of
 * native/pg/rmgr.{h,cc}: dispatch on (xl_rmid, xl_info & 0xF0), then the page checksum when the
 * cluster has data checksums (docs/POSTGRES.md, "Stored record"); and pg_waldump's record names.
 */
import { StrataError } from '../../../errors';
import { BLCKSZ, RM_BTREE_ID, RM_HEAP2_ID, RM_HEAP_ID, RM_SEQ_ID, RM_STRATA_ID, RM_XLOG_ID } from './pg_format';
import { btreeRedo } from './nbtree_redo';
import { PageError, pageIsNew, pageSetChecksum } from './bufpage';
import { pgChecksumPage } from './checksum';
import {
  heapXlogConfirm, heapXlogDelete, heapXlogFreezePage, heapXlogHotUpdate, heapXlogInplace, heapXlogInsert, heapXlogLock,
  heapXlogLockUpdated, heapXlogMultiInsert, heapXlogNoPageChange, heapXlogPrune, heapXlogUpdate, heapXlogVacuum,
  heapXlogVisible, seqRedo, strataVmClear, strataVmTruncate,
} from './heap_redo';
import { RedoRecordView, blockHasImage } from './redo_record';
import { STRATA_CLOG_SET, STRATA_MULTIXACT_MEMBERS, STRATA_MULTIXACT_OFFSETS } from '../../pg_wal_format';
import { strataClogSet, strataMultixactMembers, strataMultixactOffsets } from './slru_redo';

/** One redo function: runs the target block's part of a record on `page`; throws PageError. */
export type RedoFn = (r: RedoRecordView, page: Uint8Array) => void;

// ---- names, as pg_waldump prints them (src/backend/access/rmgrdesc/*_identify) ----

const RM_XACT_ID = 1;
const RM_COMMIT_TS_ID = 18;
const RM_REPLORIGIN_ID = 19;
const RM_GENERIC_ID = 20;
const RM_LOGICALMSG_ID = 21;
const XACT_OPMASK = 0x70;
const FIRST_CUSTOM_RMGR_ID = 128;

const RMGR_NAMES: readonly string[] = [
  'XLOG', 'Transaction', 'Storage', 'CLOG', 'Database', 'Tablespace', 'MultiXact', 'RelMap',
  'Standby', 'Heap2', 'Heap', 'Btree', 'Hash', 'Gin', 'Gist', 'Sequence',
  'SPGist', 'BRIN', 'CommitTs', 'ReplicationOrigin', 'Generic', 'LogicalMessage',
];

type OpNames = readonly (string | null)[];
const _ = null;
/** Operation names by (info & 0xF0) >> 4; null where identify() returns NULL. */
const OP_NAMES: readonly OpNames[] = [
  /* XLOG */ ['CHECKPOINT_SHUTDOWN', 'CHECKPOINT_ONLINE', 'NOOP', 'NEXTOID', 'SWITCH', 'BACKUP_END', 'PARAMETER_CHANGE',
    'RESTORE_POINT', 'FPW_CHANGE', 'END_OF_RECOVERY', 'FPI_FOR_HINT', 'FPI', _, 'OVERWRITE_CONTRECORD'],
  /* Transaction (info & XLOG_XACT_OPMASK) */
  ['COMMIT', 'PREPARE', 'ABORT', 'COMMIT_PREPARED', 'ABORT_PREPARED', 'ASSIGNMENT', 'INVALIDATION'],
  /* Storage */ [_, 'CREATE', 'TRUNCATE'],
  /* CLOG */ ['ZEROPAGE', 'TRUNCATE'],
  /* Database */ ['CREATE_FILE_COPY', 'CREATE_WAL_LOG', 'DROP'],
  /* Tablespace */ ['CREATE', 'DROP'],
  /* MultiXact */ ['ZERO_OFF_PAGE', 'ZERO_MEM_PAGE', 'CREATE_ID', 'TRUNCATE_ID'],
  /* RelMap */ ['UPDATE'],
  /* Standby */ ['LOCK', 'RUNNING_XACTS', 'INVALIDATIONS'],
  /* Heap2 */ ['REWRITE', 'PRUNE', 'VACUUM', 'FREEZE_PAGE', 'VISIBLE', 'MULTI_INSERT', 'LOCK_UPDATED', 'NEW_CID', _, _, _, _,
    _, 'MULTI_INSERT+INIT'],
  /* Heap */ ['INSERT', 'DELETE', 'UPDATE', 'TRUNCATE', 'HOT_UPDATE', 'HEAP_CONFIRM', 'LOCK', 'INPLACE', 'INSERT+INIT', _,
    'UPDATE+INIT', _, 'HOT_UPDATE+INIT'],
  /* Btree */ ['INSERT_LEAF', 'INSERT_UPPER', 'INSERT_META', 'SPLIT_L', 'SPLIT_R', 'INSERT_POST', 'DEDUP', 'DELETE',
    'UNLINK_PAGE', 'UNLINK_PAGE_META', 'NEWROOT', 'MARK_PAGE_HALFDEAD', 'VACUUM', 'REUSE_PAGE', 'META_CLEANUP'],
  /* Hash */ ['INIT_META_PAGE', 'INIT_BITMAP_PAGE', 'INSERT', 'ADD_OVFL_PAGE', 'SPLIT_ALLOCATE_PAGE', 'SPLIT_PAGE',
    'SPLIT_COMPLETE', 'MOVE_PAGE_CONTENTS', 'SQUEEZE_PAGE', 'DELETE', 'SPLIT_CLEANUP', 'UPDATE_META_PAGE',
    'VACUUM_ONE_PAGE'],
  /* Gin */ [_, 'CREATE_PTREE', 'INSERT', 'SPLIT', 'VACUUM_PAGE', 'DELETE_PAGE', 'UPDATE_META_PAGE', 'INSERT_LISTPAGE',
    'DELETE_LISTPAGE', 'VACUUM_DATA_LEAF_PAGE'],
  /* Gist */ ['PAGE_UPDATE', 'DELETE', 'PAGE_REUSE', 'PAGE_SPLIT', _, _, 'PAGE_DELETE', 'ASSIGN_LSN'],
  /* Sequence */ ['LOG'],
  /* SPGist */ [_, 'ADD_LEAF', 'MOVE_LEAFS', 'ADD_NODE', 'SPLIT_TUPLE', 'PICKSPLIT', 'VACUUM_LEAF', 'VACUUM_ROOT',
    'VACUUM_REDIRECT'],
  /* BRIN */ ['CREATE_INDEX', 'INSERT', 'UPDATE', 'SAMEPAGE_UPDATE', 'REVMAP_EXTEND', 'DESUMMARIZE', _, _, _, 'INSERT+INIT',
    'UPDATE+INIT'],
  /* CommitTs (whole info) */ ['ZEROPAGE', 'TRUNCATE'],
  /* ReplicationOrigin (whole info) */ ['SET', 'DROP'],
  /* Generic */ [],
  /* LogicalMessage */ [],
];

const STRATA_OP_NAMES: OpNames = ['VM_CLEAR', 'VM_TRUNCATE', 'CLOG_SET', 'MULTIXACT_OFFSETS', 'MULTIXACT_MEMBERS'];

/**
 * "rmgr/INFO" as pg_waldump names a record, e.g. "Heap/INSERT+INIT", "Hash/INSERT",
 * "Btree/UNKNOWN (f0)"; Strata's own resource manager 255 is "Strata/VM_CLEAR".
 */
export function rmgrInfoName(rmid: number, info: number): string {
  let rm: string;
  let op: string | null | undefined = null;
  if (rmid < RMGR_NAMES.length) {
    rm = RMGR_NAMES[rmid];
    if (rmid === RM_GENERIC_ID) op = 'Generic';
    else if (rmid === RM_LOGICALMSG_ID) op = 'MESSAGE';
    else if (rmid === RM_XACT_ID) op = OP_NAMES[rmid][(info & XACT_OPMASK) >> 4];
    else if (rmid === RM_COMMIT_TS_ID || rmid === RM_REPLORIGIN_ID) op = (info & 0x0f) === 0 ? OP_NAMES[rmid][info >> 4] : null;
    else op = OP_NAMES[rmid][info >> 4];
  } else if (rmid === RM_STRATA_ID) {
    rm = 'Strata';
    op = STRATA_OP_NAMES[info >> 4];
  } else if (rmid >= FIRST_CUSTOM_RMGR_ID) {
    rm = `custom${String(rmid).padStart(3, '0')}`;
  } else {
    rm = `UNKNOWN_RMGR_${rmid}`;
  }
  return `${rm}/${op ?? `UNKNOWN (${(info & 0xf0).toString(16)})`}`;
}

/** An LSN as PostgreSQL prints it, "X/Y", from its high and low halves. */
export function formatLsnParts(hi: number, lo: number): string {
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
}

// ---- the dispatch table ----

/**
 * XLOG FPI / FPI_FOR_HINT (REL_15_STABLE xlog_redo). Ingest stores a block whose image has
 * BKPIMAGE_APPLY as an image record, so a stored PostgreSQL record of these types is a block
 * without an applicable image. FPI_FOR_HINT without an image (full_page_writes off) changes
 * nothing, as in PostgreSQL. Any other case is an error in PostgreSQL too: an FPI must carry an
 * image, and an image without APPLY (logged only for wal_consistency_checking) cannot be
 * restored (XLogReadBufferForRedo would not return BLK_RESTORED).
 */
function xlogFpi(r: RedoRecordView): void {
  if (blockHasImage(r.target())) throw new PageError('full-page image not marked for replay (BKPIMAGE_APPLY unset)');
  if ((r.info & 0xf0) === 0xb0) throw new PageError('XLOG_FPI record did not contain a full-page image');
}

/** The dispatch table, indexed by rmid * 16 + (info >> 4). */
function buildDispatchTable(): (RedoFn | undefined)[] {
  const t: (RedoFn | undefined)[] = new Array<RedoFn | undefined>(256 * 16);
  const set = (rmid: number, info: number, fn: RedoFn): void => { t[rmid * 16 + (info >> 4)] = fn; };
  // XLOG (rmgr 0): only the image records reference blocks.
  set(RM_XLOG_ID, 0xa0, xlogFpi); // FPI_FOR_HINT
  set(RM_XLOG_ID, 0xb0, xlogFpi); // FPI
  // Heap2 (rmgr 9).
  set(RM_HEAP2_ID, 0x00, heapXlogNoPageChange); // REWRITE: logical-decoding mapping files only
  set(RM_HEAP2_ID, 0x10, heapXlogPrune);
  set(RM_HEAP2_ID, 0x20, heapXlogVacuum);
  set(RM_HEAP2_ID, 0x30, heapXlogFreezePage);
  set(RM_HEAP2_ID, 0x40, heapXlogVisible);
  set(RM_HEAP2_ID, 0x50, heapXlogMultiInsert);
  set(RM_HEAP2_ID, 0xd0, heapXlogMultiInsert); // MULTI_INSERT+INIT
  set(RM_HEAP2_ID, 0x60, heapXlogLockUpdated);
  set(RM_HEAP2_ID, 0x70, heapXlogNoPageChange); // NEW_CID: only for logical decoding
  // Heap (rmgr 10).
  set(RM_HEAP_ID, 0x00, heapXlogInsert);
  set(RM_HEAP_ID, 0x80, heapXlogInsert); // INSERT+INIT
  set(RM_HEAP_ID, 0x10, heapXlogDelete);
  set(RM_HEAP_ID, 0x20, heapXlogUpdate);
  set(RM_HEAP_ID, 0xa0, heapXlogUpdate); // UPDATE+INIT
  set(RM_HEAP_ID, 0x30, heapXlogNoPageChange); // TRUNCATE: the Storage records do the work
  set(RM_HEAP_ID, 0x40, heapXlogHotUpdate);
  set(RM_HEAP_ID, 0xc0, heapXlogHotUpdate); // HOT_UPDATE+INIT (PostgreSQL never writes it)
  set(RM_HEAP_ID, 0x50, heapXlogConfirm);
  set(RM_HEAP_ID, 0x60, heapXlogLock);
  set(RM_HEAP_ID, 0x70, heapXlogInplace);
  // Btree (rmgr 11): nbtree_redo's btreeRedo switches on the opcode as btree_redo does, from
  // INSERT_LEAF (0x00) to META_CLEANUP (0xE0); 0xF0 is not a btree opcode.
  for (let op = 0x00; op <= 0xe0; op += 0x10) set(RM_BTREE_ID, op, btreeRedo);
  // Sequence (rmgr 15).
  set(RM_SEQ_ID, 0x00, seqRedo);
  // Strata's own (rmgr 255, docs/POSTGRES.md).
  set(RM_STRATA_ID, 0x00, strataVmClear);
  set(RM_STRATA_ID, 0x10, strataVmTruncate);
  set(RM_STRATA_ID, STRATA_CLOG_SET, strataClogSet);
  set(RM_STRATA_ID, STRATA_MULTIXACT_OFFSETS, strataMultixactOffsets);
  set(RM_STRATA_ID, STRATA_MULTIXACT_MEMBERS, strataMultixactMembers);
  return t;
}

const TABLE = buildDispatchTable();

/**
 * Whether the cores redo records of this (rmid, info): ingest counts the others as unsupported.
 * Both cores dispatch from the same list (native/pg/rmgr.cc), which the redo differential test keeps equal.
 */
export function redoSupported(rmid: number, info: number): boolean {
  return TABLE[rmid * 16 + ((info & 0xf0) >> 4)] !== undefined;
}

const view = new RedoRecordView();

/** Whether (rmid, info) is one of Strata's SLRU records: their pages get no checksum. */
export function isSlruRecord(rmid: number, info: number): boolean {
  return rmid === RM_STRATA_ID && (info === STRATA_CLOG_SET || info === STRATA_MULTIXACT_OFFSETS || info === STRATA_MULTIXACT_MEMBERS);
}

/** "rmgr/INFO at X/Y", the start of every redo error. */
function where(r: RedoRecordView): string {
  return `${rmgrInfoName(r.rmid, r.info)} at ${formatLsnParts(r.lsnHi, r.lsnLo)}`;
}

/**
 * Redoes the stored record rec[off, off + len) on the 8192-byte page at page[pageOff]: the block's
 * previous version, or zeros when the record is will_init. Afterwards the page is as PostgreSQL
 * would write it. Throws StrataError WAL_UNSUPPORTED (record type Strata cannot redo, named
 * rmgr/INFO with the LSN) or REDO_FAILED (the record does not fit the page, or is malformed); the
 * page's contents are unspecified after a throw.
 */
export function redoRecord(rec: Uint8Array, off: number, len: number, page: Uint8Array, pageOff: number): void {
  const r = view;
  const err = r.parse(rec, off, len);
  if (err !== null) throw new StrataError('REDO_FAILED', `malformed PostgreSQL record: ${err}`);
  const fn = TABLE[r.rmid * 16 + (r.info >> 4)];
  if (fn === undefined) throw new StrataError('WAL_UNSUPPORTED', `${where(r)}: Strata cannot redo this record type`);
  if (r.truncated) throw new StrataError('WAL_UNSUPPORTED', `${where(r)}: the record was too large to store, so it cannot be redone`);
  const p = pageOff === 0 && page.length === BLCKSZ ? page : page.subarray(pageOff, pageOff + BLCKSZ);
  const blkno = r.targetBlockNumber();
  try {
    if (r.targetImageApplies()) {
      throw new PageError('the block has an applicable full-page image; it should have been stored as an image record');
    }
    fn(r, p);
  } catch (e) {
    if (!(e instanceof PageError)) throw e;
    throw new StrataError('REDO_FAILED', `${where(r)}, block id ${r.targetId} (block ${blkno}): ${e.message}`);
  }
  // PostgreSQL computes pd_checksum when it writes a page out (PageSetChecksumInplace), never for a
  // new one, and never for an SLRU page (it has no page header).
  if (r.checksums() && !pageIsNew(p) && !isSlruRecord(r.rmid, r.info)) pageSetChecksum(p, pgChecksumPage(p, blkno));
}
