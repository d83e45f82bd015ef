/**
 * The public Timeline: exactly the calls README documents, each a thin forward to the engine's
 * TimelineImpl (lib/engine/timeline.ts), which stays out of reach: a caller cannot construct a
 * Timeline, see its children or close it on its own (the repository owns timelines' lifecycles).
 */
import type { TimelineImpl } from './engine/timeline';
import type { StrataError } from './errors';
import { exportPgDatadir, type ExportPgDatadirOptions, type ExportProgress, type ExportReport } from './pg/export_datadir';
import {
  getRelSize, importDatadir, ingestWal, isPgTimeline, listRelations, type ImportReport, type IngestPgWalOptions,
  type RelationInfo, type RelTag, type WalIngestReport, type WalSource,
} from './pg/pg_timeline';
import { type LsnForTimestamp, lsnForTimestamp, type LsnForTimestampKind } from './pg/lsn_time';
import { pgGetPages, pgReadPagesInto } from './pg/rel_sizes';
import type {
  CompactionReport, CompactOptions, GcOptions, GcReport, GetPageOptions, LayerInfo, TimelineStats,
} from './engine/timeline';
import type { PageKey } from './key';
import type { Lsn } from './lsn';
import type { WalRecord } from './record';

export type { CompactionReport, CompactOptions, GcOptions, GcReport, GetPageOptions, LayerInfo, TimelineStats };
export type {
  ExportPgDatadirOptions, ExportProgress, ExportReport, ImportReport, IngestPgWalOptions, LsnForTimestamp, LsnForTimestampKind, RelationInfo, RelTag,
  WalIngestReport, WalSource,
};

/** @internal The facade of an engine timeline, one per timeline (the repository's lookups return the same object). */
export let timelineFacade: (impl: TimelineImpl) => Timeline;
/** @internal The engine timeline behind a facade, for subsystems the repository hands a Timeline to. */
export let timelineImpl: (tl: Timeline) => TimelineImpl;

const facades = new WeakMap<TimelineImpl, Timeline>();

export class Timeline {
  readonly #impl: TimelineImpl;

  static {
    timelineFacade = (impl) => {
      let t = facades.get(impl);
      if (t === undefined) {
        t = new Timeline(impl);
        facades.set(impl, t);
      }
      return t;
    };
    timelineImpl = (tl) => tl.#impl;
  }

  private constructor(impl: TimelineImpl) {
    this.#impl = impl;
  }

  get tenantId(): string {
    return this.#impl.tenantId;
  }

  get timelineId(): string {
    return this.#impl.timelineId;
  }

  /** The timeline this one branched from, or null. */
  get ancestor(): Timeline | null {
    const a = this.#impl.ancestor;
    return a === null ? null : timelineFacade(a);
  }

  /** The branch point in the ancestor, or null. */
  get ancestorLsn(): Lsn | null {
    return this.#impl.ancestorLsn;
  }

  /** Records of this timeline have lsn > startLsn (the branch point, or 0). */
  get startLsn(): Lsn {
    return this.#impl.startLsn;
  }

  /** The newest LSN ingested. */
  get lastRecordLsn(): Lsn {
    return this.#impl.lastRecordLsn;
  }

  /** Every record with lsn ≤ this is in a layer file listed in the manifest. */
  /** diskConsistentLsn of the newest index uploaded to remote storage (null without a remote, or before the first upload). */
  get remoteConsistentLsn(): Lsn | null {
    return this.#impl.remoteConsistentLsn;
  }

  /**
   * Resolves once everything durable locally at the call is in remote storage (layers, then the
   * index naming them); rejects with the storage's coded error while uploads keep failing.
   */
  syncRemote(): Promise<void> {
    return this.#impl.syncRemote();
  }

  /**
   * Download every layer of this timeline (and of its ancestors) that is in remote storage only —
   * after an on-demand attach or an eviction — so synchronous reads and key listings work; resolves
   * with how many layers and bytes were fetched. Under localLayerBudgetBytes, eviction may remove
   * them again.
   */
  downloadLayers(): Promise<{ layers: number; bytes: number }> {
    return this.#impl.downloadLayers();
  }

  get diskConsistentLsn(): Lsn {
    return this.#impl.diskConsistentLsn;
  }

  /** The failed flush that stopped this timeline's ingest until the repository is reopened, or null. */
  get writeFailure(): StrataError | null {
    return this.#impl.failure;
  }

  /** Reads, images and branches below this LSN fail with LSN_GC_CUTOFF. */
  get gcCutoffLsn(): Lsn {
    return this.#impl.gcCutoffLsn;
  }

  /**
   * Apply a batch of WAL records: all of it or nothing. LSNs must not go backwards within the batch
   * and must exceed lastRecordLsn; one LSN may carry several records for different pages.
   */
  ingest(records: readonly WalRecord[]): void {
    this.#impl.ingest(records);
  }

  /**
   * ingest(), then wait while more than the repository's maxFrozenLayers frozen in-memory layers
   * wait for their flush: the ingest call for a writer that may outrun the disk.
   */
  ingestAsync(records: readonly WalRecord[]): Promise<void> {
    return this.#impl.ingestAsync(records);
  }

  /**
   * GetPage@LSN: the 8192-byte page as of `lsn`. Waits up to timeoutMs for ingest to reach `lsn`.
   * On a PostgreSQL timeline a block inside its relation that no record wrote reads as zeros, and a
   * block past the relation's end is PAGE_NOT_FOUND.
   */
  async getPage(key: PageKey, lsn: Lsn, opts?: GetPageOptions): Promise<Buffer> {
    const [page] = await this.getPages([key], lsn, opts);
    return page;
  }

  /**
   * GetPage@LSN for many keys at one LSN, in one call into the core. The native core moves any
   * read that needs the disk to a libuv worker thread, so disk reads do not block the event loop;
   * the read sees the layers as they were when it started.
   */
  getPages(keys: readonly PageKey[], lsn: Lsn, opts?: GetPageOptions): Promise<Buffer[]> {
    if (isPgTimeline(this.#impl)) return pgGetPages(this.#impl, keys, lsn, opts?.timeoutMs);
    return this.#impl.getPages(keys, lsn, opts);
  }

  /**
   * Synchronous GetPage@LSN into a caller-owned buffer at `offset`; allocates no page. An LSN above
   * lastRecordLsn fails at once with LSN_TIMEOUT (use getPage to wait for it).
   */
  readPage(key: PageKey, lsn: Lsn, into: Uint8Array, offset = 0): void {
    this.readPagesAt([key], lsn, into, offset);
  }

  /**
   * @internal GetPage@LSN into `into` at `offset` only if it can finish now from cached blocks:
   * false (nothing to use in `into`) when it would wait for WAL, touch the disk or fail — then use
   * getPages. The page service serves cached pages this way, without a promise per request. Plain
   * timelines only (a PostgreSQL timeline's size rules need the async path): false there.
   */
  tryReadPagesCached(keys: readonly PageKey[], lsn: Lsn, into: Uint8Array, offset: number): boolean {
    if (isPgTimeline(this.#impl)) return false;
    return this.#impl.tryReadPagesCached(keys, lsn, into, offset);
  }

  /** Synchronous GetPage@LSN for a batch into `into` (≥ 8192 × keys.length bytes), one core call. */
  readPages(keys: readonly PageKey[], lsn: Lsn, into: Uint8Array): void {
    this.readPagesAt(keys, lsn, into, 0);
  }

  private readPagesAt(keys: readonly PageKey[], lsn: Lsn, into: Uint8Array, offset: number): void {
    if (isPgTimeline(this.#impl)) pgReadPagesInto(this.#impl, keys, lsn, into, offset);
    else this.#impl.readPagesInto(keys, lsn, into, offset);
  }

  /**
   * Store a cleanly shut down PostgreSQL 15 data directory at the end LSN of its checkpoint record
   * (docs/POSTGRES.md, "Import"); the timeline must be new and empty. It then follows that cluster.
   */
  importPgDatadir(dataDir: string): Promise<ImportReport> {
    return importDatadir(this.#impl, dataDir, this.#impl.compactionTargetSize);
  }

  /**
   * Write a PostgreSQL 15 data directory holding the cluster as of `opts.lsn` into `dir` (new or
   * empty; mode 0700), which PostgreSQL 15 starts as after a clean shutdown there: transactions in
   * progress at the LSN are aborted, prepared ones stay prepared (docs/POSTGRES.md, "Restore").
   * Waits for the LSN like getPage.
   */
  exportPgDatadir(dir: string, opts: ExportPgDatadirOptions): Promise<ExportReport> {
    return exportPgDatadir(this.#impl, dir, opts);
  }

  /**
   * Decode PostgreSQL WAL — a directory of segment files or an AsyncIterable of WAL bytes starting
   * at startLsn — and store every record, to redo at read time (docs/POSTGRES.md, "Ingest").
   */
  ingestPgWal(source: WalSource, opts?: IngestPgWalOptions): Promise<WalIngestReport> {
    return ingestWal(this.#impl, source, opts);
  }

  /** A relation fork's size in blocks at `lsn`, as smgrnblocks; REL_NOT_FOUND if it does not exist there. */
  getRelSize(rel: RelTag, lsn: Lsn, opts?: GetPageOptions): Promise<number> {
    return getRelSize(this.#impl, rel, lsn, opts?.timeoutMs);
  }

  /** Every relation fork that exists at `lsn` (of one database with dbOid), with its size. */
  listRelations(lsn: Lsn, opts?: { dbOid?: number }): Promise<RelationInfo[]> {
    return listRelations(this.#impl, lsn, opts);
  }

  /**
   * The LSN that shows the cluster as of `at`, from the commit records' timestamps
   * (docs/POSTGRES.md, "LSN ↔ time"): 'present' with the end LSN of the last commit at or before
   * `at`; 'past' / 'nodata' with the lowest searchable LSN; 'future' with lastRecordLsn.
   */
  lsnForTimestamp(at: Date): Promise<LsnForTimestamp> {
    return lsnForTimestamp(this.#impl, at);
  }

  /** Freeze the open layer and wait until every frozen layer is on disk. */
  flush(): Promise<void> {
    return this.#impl.flush();
  }

  /** Materialize every page the timeline (ancestors included) sees at `lsn` into one image layer. */
  createImageLayer(lsn: Lsn): Promise<LayerInfo> {
    return this.#impl.createImageLayer(lsn);
  }

  /** L0 → L1 compaction at compactionThreshold L0s (or `force`), then images where deltas stack up. */
  compact(opts?: CompactOptions): Promise<CompactionReport> {
    return this.#impl.compact(opts);
  }

  /** Move the GC cutoff up to lastRecordLsn − horizon (never down) and remove shadowed layers. */
  gc(opts?: GcOptions): Promise<GcReport> {
    return this.#impl.gc(opts);
  }

  layers(): LayerInfo[] {
    return this.#impl.layers();
  }

  stats(): TimelineStats {
    return this.#impl.stats();
  }

  /** Zero the read counters and histograms (layer counts and sizes are state, not counters). */
  resetStats(): void {
    this.#impl.resetStats();
  }
}
