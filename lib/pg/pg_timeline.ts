/**
 * The PostgreSQL calls of a timeline (docs/POSTGRES.md): importPgDatadir, ingestPgWal,
 * getRelSize, listRelations, and the PostgreSQL read rules for getPage. A timeline becomes a
 * PostgreSQL timeline when a data directory is imported into it (its manifest then records the
 * cluster under `extensions.pg`); branches of it are PostgreSQL timelines too.
 */
import { yieldToEventLoop } from '../core/entry_batch';
import { createWalDecoder } from '../core/pg_decoder';
import { checkOptionsObject, checkTimeout, DEFAULT_WAIT_LSN_TIMEOUT_MS, type TimelineImpl } from '../engine/timeline';
import { describeValue, StrataError } from '../errors';
import { checkLsn, formatLsn, type Lsn } from '../lsn';
import { readAuxFile } from './aux_files';
import { type ClusterState, decodeClusterState } from './cluster_state';
import { type ControlState, decodeControlState } from './control_state';
import { importPgDatadir, type ImportReport } from './import_datadir';
import { AUX_CLUSTER_STATE, AUX_CONTROL_STATE, checkRelTag, checkU32, FSM_FORKNUM, relId, type RelTag } from './keyspace';
import { lastCommitAt } from './lsn_time';
import { relSizes } from './rel_sizes';
import { decodedRecords } from './wal_record';
import { walChunks, type WalSource } from './wal_source';
import { listRelationsAt, WalIngest, type WalIngestReport } from './walingest';

export type { ImportReport, WalIngestReport, WalSource, RelTag };

export interface IngestPgWalOptions {
  /** Where the WAL bytes start; default: the timeline's lastRecordLsn (records up to it are skipped). */
  startLsn?: Lsn;
  /** Stop at this LSN; WAL_CORRUPT if the WAL ends before it. Default: the end of valid WAL. */
  endLsn?: Lsn;
  /** Directory sources: the PostgreSQL timeline to read (default: the one the cluster was on). */
  timeline?: number;
}

export interface RelationInfo extends RelTag {
  /** The fork's size in blocks at the LSN asked. */
  nblocks: number;
}

/** Decoded records per decoder call (one boundary crossing each). */
const DECODE_BATCH = 1024;
/**
 * How long WAL ingest holds the event loop before it lets timers, reads and the timeline's queued
 * writes (a flush, compaction, image creation; their steps yield between them) have a turn: at most
 * INGEST_MAX_HOLD_MS, and INGEST_SLICE_MS once queued writes have gone WRITES_GRACE_MS without
 * progress. A follower catching up always has WAL queued; before these pauses its timers (the one
 * that starts a flush among them) waited seconds and a flush got one step per queued 4 MB chunk:
 * 15–25 s to flush 4 MB of WAL. Within the grace ingest keeps the loop: writes that fit in the gaps
 * between WAL cost the replication lag nothing.
 */
const INGEST_MAX_HOLD_MS = 50;
const INGEST_SLICE_MS = 5;
export const WRITES_GRACE_MS = 250;
/** Records between two looks at the clock. */
const RECORDS_PER_CLOCK_CHECK = 64;

export function isPgTimeline(tl: TimelineImpl): boolean {
  return tl.extensions.pg !== undefined;
}

function pgExtension(tl: TimelineImpl, what: string): Readonly<Record<string, string>> {
  tl.checkOpen();
  const ext = tl.extensions.pg;
  if (ext === undefined) throw new StrataError('BAD_ARGUMENT', `${tl.name}: ${what} needs a PostgreSQL timeline: import a data directory into it first (importPgDatadir)`);
  return ext;
}

export function importDatadir(tl: TimelineImpl, dataDir: string, targetBytes: number): Promise<ImportReport> {
  tl.checkOpen();
  checkPath(dataDir, 'importPgDatadir: a data directory');
  if (isPgTimeline(tl) || tl.layers().length > 0 || tl.lastRecordLsn !== tl.startLsn || tl.ancestor !== null) {
    throw new StrataError('BAD_ARGUMENT', `${tl.name}: importPgDatadir needs a new, empty timeline without an ancestor`);
  }
  return importPgDatadir(tl, dataDir, targetBytes);
}

/**
 * Decode WAL from `source` and store every record (walingest.ts). Stops at the end of valid WAL
 * (a zeroed or torn tail) or at `endLsn`; a record that fails its checks with valid WAL after it is
 * WAL_CORRUPT naming its LSN, and nothing from it on is stored.
 */
export async function ingestWal(tl: TimelineImpl, source: WalSource, opts: IngestPgWalOptions = {}): Promise<WalIngestReport> {
  const ext = pgExtension(tl, 'ingestPgWal');
  checkOptionsObject(opts, 'ingestPgWal options');
  const startLsn = opts.startLsn ?? tl.lastRecordLsn;
  checkLsn(startLsn, 'startLsn');
  if (opts.endLsn !== undefined) checkLsn(opts.endLsn, 'endLsn');
  if (opts.timeline !== undefined) checkU32(opts.timeline, 'timeline');
  checkWalSource(source);
  if (startLsn > tl.lastRecordLsn) {
    throw new StrataError('BAD_ARGUMENT', `${tl.name}: WAL from ${formatLsn(startLsn)} would leave a gap after lastRecordLsn ${formatLsn(tl.lastRecordLsn)}`);
  }
  const timeline = opts.timeline ?? Number(ext.timeline);
  const decoder = createWalDecoder(tl.implementation, { startLsn, endLsn: opts.endLsn, systemId: BigInt(ext.systemIdentifier), timeline });
  const ingest = new WalIngest(tl, await clusterState(tl), await controlStateAt(tl, tl.lastRecordLsn), await lastCommitAt(tl, tl.lastRecordLsn));
  let sliceStart = performance.now();
  let sinceClockCheck = 0;
  const drain = async (): Promise<boolean> => {
    for (;;) {
      const batch = decoder.decode(DECODE_BATCH);
      for (const rec of decodedRecords(batch.entries, batch.count)) {
        await ingest.ingest(rec);
        if (++sinceClockCheck < RECORDS_PER_CLOCK_CHECK) continue;
        sinceClockCheck = 0;
        const held = performance.now() - sliceStart;
        if (held < INGEST_SLICE_MS || (held < INGEST_MAX_HOLD_MS && tl.writesWaitingMs < WRITES_GRACE_MS)) continue;
        // What is ingested so far becomes readable before the pause, not at the chunk's end.
        ingest.submit();
        await yieldToEventLoop();
        sliceStart = performance.now();
      }
      if (batch.state !== 'full') return batch.state === 'end';
    }
  };
  try {
    let ended = false;
    for await (const chunk of walChunks(source, { startLsn, endLsn: opts.endLsn, timeline })) {
      decoder.feed(chunk);
      if ((ended = await drain())) break;
      // What this chunk completed goes to the timeline now, not at the next full batch: a live
      // stream (followPostgres) may wait long for its next chunk, and readers wait for these LSNs.
      ingest.submit();
      await tl.waitForFrozenLayers();
    }
    if (!ended) {
      decoder.finish();
      await drain();
    }
  } finally {
    // What was decoded before a failure is stored; the failure itself is what the caller sees.
    ingest.submit();
  }
  return ingest.finish();
}

/** The cluster settings in force at the timeline's newest LSN. */
async function clusterState(tl: TimelineImpl): Promise<ClusterState> {
  return decodeClusterState(await stateValue(tl, AUX_CLUSTER_STATE, tl.lastRecordLsn, 'cluster state'));
}

/** The control state at `lsn` (control_state.ts). */
export async function controlStateAt(tl: TimelineImpl, lsn: Lsn): Promise<ControlState> {
  return decodeControlState(await stateValue(tl, AUX_CONTROL_STATE, lsn, 'control state'));
}

/** One of Strata's single-chunk state values at `lsn`; CORRUPT_LAYER when the timeline has none there. */
export async function stateValue(tl: TimelineImpl, kind: number, lsn: Lsn, what: string): Promise<Buffer> {
  const v = await readAuxFile(tl, kind, 0, 0, 0, lsn);
  if (v === null) throw new StrataError('CORRUPT_LAYER', `${tl.name}: the PostgreSQL timeline has no ${what} at ${formatLsn(lsn)} (imported by a Strata that did not keep it? import it again)`);
  return v;
}

/** smgrnblocks at `lsn`: REL_NOT_FOUND when the fork does not exist there (the FSM is never kept). */
export async function getRelSize(tl: TimelineImpl, rel: RelTag, lsn: Lsn, timeoutMs?: number): Promise<number> {
  pgExtension(tl, 'getRelSize');
  checkRelTag(rel);
  checkLsn(lsn, 'lsn');
  checkTimeout(timeoutMs);
  await tl.waitForLsn(lsn, timeoutMs ?? DEFAULT_WAIT_LSN_TIMEOUT_MS);
  tl.checkAboveGcCutoff(lsn, 'getRelSize');
  const n = await relSizes(tl).at(rel, lsn);
  if (n === null) {
    const why = rel.forkNum === FSM_FORKNUM ? 'free-space maps are not kept' : 'it does not exist at that LSN';
    throw new StrataError('REL_NOT_FOUND', `${tl.name}: relation fork ${relId(rel)} at ${formatLsn(lsn)}: ${why}`);
  }
  return n;
}

/** Every relation fork that exists at `lsn` (of one database when dbOid is given), with its size, in key order. */
export async function listRelations(tl: TimelineImpl, lsn: Lsn, opts: { dbOid?: number } = {}): Promise<RelationInfo[]> {
  pgExtension(tl, 'listRelations');
  checkOptionsObject(opts, 'listRelations options');
  checkLsn(lsn, 'lsn');
  if (opts.dbOid !== undefined) checkU32(opts.dbOid, 'dbOid');
  await tl.waitForLsn(lsn, DEFAULT_WAIT_LSN_TIMEOUT_MS);
  tl.checkAboveGcCutoff(lsn, 'listRelations');
  const rels = await listRelationsAt(tl, lsn, null, opts.dbOid ?? null);
  return rels.map(({ rel, nblocks }) => ({ ...rel, nblocks }));
}

/** A directory path or an AsyncIterable, checked before anything is decoded (walChunks reads it later). */
function checkWalSource(source: unknown): void {
  if (typeof source === 'string') {
    checkPath(source, 'ingestPgWal: a WAL directory');
    return;
  }
  if (source === null || typeof source !== 'object' || typeof (source as Partial<AsyncIterable<Uint8Array>>)[Symbol.asyncIterator] !== 'function') {
    throw new StrataError('BAD_ARGUMENT', `ingestPgWal: a WAL source is a directory path or an AsyncIterable<Uint8Array>: got ${describeValue(source)}`);
  }
}

/** A path from a caller: a non-empty string without NUL (which the file system calls would throw a TypeError on). */
function checkPath(p: unknown, what: string): asserts p is string {
  if (typeof p !== 'string' || p === '' || p.includes('\0')) {
    throw new StrataError('BAD_ARGUMENT', `${what} must be a non-empty path: got ${typeof p === 'string' ? JSON.stringify(p) : describeValue(p)}`);
  }
}
