/**
 * A timeline inside the engine: one branch of a tenant's page history. It ties together the
 * concerns that live in their own modules — ingest's admission rules (ingest.ts), the layers
 * (layer_set.ts), the read path (read_path.ts), LSN waits (lsn_waiters.ts), compaction
 * (compaction.ts) and GC (gc.ts) — and owns the timeline's LSNs, its manifest and its lifecycle.
 * Users see it through the public facade in lib/timeline.ts (docs/ARCHITECTURE.md).
 */
import type { Core, ImplementationName } from '../core/core';
import type { CompressionName } from '../core/format';
import type { ReadPlanWriter } from '../core/read_plan';
import { describeValue, StrataError } from '../errors';
import { encodeKey, KEY_SIZE, keyToHex, type PageKey } from '../key';
import { checkLsn, formatLsn, type Lsn } from '../lsn';
import type { WalRecord } from '../record';
import {
  compactLevel0, type CompactionHost, type CompactionReport, type CompactOptions, createImageLayers, emptyCompactionReport, maxStackDepth,
  newestCoveringImageLsn,
} from './compaction';
import { layersToRemove } from './gc';
import type { HistogramSummary, IntHistogram } from './histogram';
import { checkBatchOrder, checkRecords, IngestScratch, MAX_RECORD_LSN, type PreparedBatch } from './ingest';
import { FULL_KEYSPACE, LayerSet, type PageReader, type SnapshotPartition, type WrittenL0 } from './layer_set';
import type { InMemoryLayer } from './inmemory_layer';
import { imageCoversAt } from './key_cover';
import { BackgroundKeyStream, type KeySource, LAYER_KEYS_PAGE, resumableKeys } from './key_stream';
import { LsnWaiters } from './lsn_waiters';
import { type LayerDesc, type Manifest, type ManifestExtensions, MANIFEST_FILE, type ManifestPatch, writeManifest, writeManifestAsync } from './manifest';
import type { DecodedPageCache, DecodedPageIndex } from './decoded_page_cache';
import { ReadPath, type ReadSegment } from './read_path';
import { createHotImages, ReadHeat } from './read_heat';
import type { RemoteTimelineClient, RemoteTimelineStats } from './remote_timeline_client';
import type { EvictionCandidate, EvictionOwner, LocalLayerCache } from './eviction';
import { type NeedSegment, visitNeededLayers } from './layer_residency';
import { layerKey } from './remote_layout';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** How long getPage waits for ingest to reach a requested LSN, as Neon's wait_lsn_timeout. */
export const DEFAULT_WAIT_LSN_TIMEOUT_MS = 60_000;

export type { CompactionReport, CompactOptions } from './compaction';

export interface TimelineConfig {
  /** The repository was opened read-only: every write fails with READ_ONLY. */
  readOnly: boolean;
  checkpointDistance: number;
  compression: CompressionName;
  /** L0 layers that trigger an L0 → L1 compaction. */
  compactionThreshold: number;
  /** Most L0 layers merged by one compaction, bounding its work. */
  compactionUpperLimit: number;
  /** Approximate size of each L1 output layer, in bytes. */
  compactionTargetSize: number;
  /** Delta layers stacked above the newest image at some key that trigger a new image layer. */
  imageCreationThreshold: number;
  /** Default GC horizon: history kept below lastRecordLsn, in LSN bytes. */
  gcHorizon: bigint;
  /** L0 count at which each flush is followed by a pause as long as the flush took (0 = off). */
  l0FlushDelayThreshold: number;
  /** L0 count at which a flush compacts before it returns, so L0s never exceed it (0 = off). */
  l0FlushStallThreshold: number;
  /** Async reads go to the thread pool even when every block they need is cached. */
  offloadCachedReads: boolean;
  /** Bytes of heat-driven image layers allowed per byte otherwise written (read_heat.ts); 0 = off. */
  heatImageBudget: number;
  /** Frozen in-memory layers past which the async ingest paths wait for flushes (ingestAsync, PostgreSQL WAL). */
  maxFrozenLayers: number;
}

/** What one gc() did. */
export interface GcReport {
  cutoffLsn: Lsn;
  layersRemoved: number;
  bytesRemoved: number;
  removed: string[];
}

export interface GcOptions {
  /** History to keep below lastRecordLsn, in LSN bytes; defaults to the repository's gcHorizon. */
  horizon?: bigint;
}

export type LayerInfo = LayerDesc;

export interface GetPageOptions {
  timeoutMs?: number;
}

export interface TimelineStats {
  tenantId: string;
  timelineId: string;
  lastRecordLsn: bigint;
  diskConsistentLsn: bigint;
  gcCutoffLsn: bigint;
  openLayerBytes: number;
  frozenLayers: number;
  layers: number;
  l0Count: number;
  l1Count: number;
  imageLayerCount: number;
  reads: number;
  layersVisited: number;
  recordsApplied: number;
  /** Layer files visited per GetPage@LSN (read amplification). */
  layersVisitedPerRead: HistogramSummary;
  recordsAppliedPerRead: HistogramSummary;
  /** Bytes written by flushes, compaction and image creation (write amplification), and freed by GC. */
  bytesFlushed: number;
  bytesCompacted: number;
  bytesImages: number;
  gcBytesRemoved: number;
  /** Bytes of this timeline's layer files now (compare with pages × 8192 for storage amplification). */
  physicalSizeBytes: number;
  /** Flushes slowed (delay) or made to compact first (stall) by L0 backpressure. */
  flushDelays: number;
  flushStalls: number;
  /** Uploads to remote storage and local residency (docs/REMOTE.md); null when the repository has no remote. */
  remote: (RemoteTimelineStats & TimelineResidencyStats) | null;
}

/** A timeline's layers as a cache of remote storage (docs/REMOTE.md, "On-demand download and eviction"). */
export interface TimelineResidencyStats {
  localLayerBytes: number;
  remoteOnlyLayers: number;
  remoteOnlyLayerBytes: number;
  /** Layers of this timeline downloaded on demand, and their bytes. */
  onDemandDownloads: number;
  onDemandDownloadedBytes: number;
  /** Milliseconds reads and rewrites of this timeline waited for downloads, summed over waiters. */
  downloadWaitMs: number;
  evictions: number;
}

/** A layer a read or a rewrite needs that is not local, with the timeline holding it. */
interface MissingLayer {
  tl: TimelineImpl;
  desc: LayerDesc;
}

export class TimelineImpl implements ReadSegment, NeedSegment, EvictionOwner {
  readonly tenantId: string;
  readonly timelineId: string;
  readonly ancestor: TimelineImpl | null;
  readonly ancestorLsn: Lsn | null;
  /** Records of this timeline have lsn > startLsn (the branch point, or 0). */
  readonly startLsn: Lsn;
  private _lastRecordLsn: Lsn;
  private _diskConsistentLsn: Lsn;
  private _gcCutoffLsn: Lsn;
  private _extensions: ManifestExtensions;
  /** Timelines branched from this one; their branch points hold back GC. Engine-internal. */
  private readonly children = new Set<TimelineImpl>();
  private readonly layerSet: LayerSet;
  /** The running flush's pipeline (flushFrozen), null when no flush runs. */
  private pipeline: FlushPipeline | null = null;
  /** Jobs in `serial` not yet settled, and performance.now() when one last started, ended or committed a layer. */
  private queuedWrites = 0;
  private writeProgressAt = 0;
  private readonly reads: ReadPath;
  /** Per-key records applied by reads, for heat-driven images (read_heat.ts). */
  private readonly heat = new ReadHeat();
  private readonly waiters = new LsnWaiters();
  /** Key and size scratch of public ingest's batches (checkRecords), reused batch after batch. */
  private readonly ingestScratch = new IngestScratch();
  /** Flushes, image creation, compaction, GC and manifest writes run one at a time, in order. */
  private serial: Promise<void> = Promise.resolve();
  /** A failed flush: ingest and flush refuse with it until the repository is reopened. */
  private writeFailure: StrataError | null = null;
  /** Ingest waiting for frozen layers to flush (waitForFrozenLayers). */
  private frozenWaiters: Array<() => void> = [];
  private closed = false;
  private readonly counters = { flushDelays: 0, flushStalls: 0, gcBytesRemoved: 0 };
  /** Uploads each committed manifest's layers and index to remote storage, when there is one. */
  private remote: RemoteTimelineClient | null = null;
  /** The repository's local layer cache (downloads, eviction), when it has a remote. */
  private layerCache: LocalLayerCache | null = null;
  private readonly residency = { onDemandDownloads: 0, onDemandDownloadedBytes: 0, downloadWaitMs: 0, evictions: 0 };
  /** This timeline's entries in the repository's decoded-page cache; null when it is off. */
  private readonly decoded: DecodedPageIndex | null;
  private _writeGeneration = 0;

  constructor(private readonly core: Core, readonly dir: string, manifest: Manifest, ancestor: TimelineImpl | null, private readonly config: TimelineConfig,
    decodedPages: DecodedPageCache | null = null) {
    this.tenantId = manifest.tenantId;
    this.timelineId = manifest.timelineId;
    this.ancestor = ancestor;
    this.ancestorLsn = manifest.ancestorLsn;
    this.startLsn = manifest.startLsn;
    this._diskConsistentLsn = manifest.diskConsistentLsn;
    this._lastRecordLsn = manifest.diskConsistentLsn;
    this._gcCutoffLsn = manifest.gcCutoffLsn;
    this._extensions = manifest.extensions;
    this.layerSet = new LayerSet(core, dir, manifest.layers, manifest.diskConsistentLsn, config.compression, {
      write: (layers, patch) => this.writeNextManifest(layers, patch),
      apply: (written) => this.applyManifest(written),
    });
    this.reads = new ReadPath(core, this, this.name);
    if (config.heatImageBudget > 0 && !config.readOnly) this.reads.heat = this.heat;
    this.decoded = decodedPages === null || decodedPages.capacityPages === 0 ? null : decodedPages.createIndex();
    if (this.decoded !== null) this.reads.useDecodedPages(this.decoded, this);
    ancestor?.children.add(this);
  }

  get name(): string {
    return `timeline ${this.tenantId}/${this.timelineId}`;
  }

  /** The failed flush that stopped ingest (until the repository is reopened), or null. */
  get failure(): StrataError | null {
    return this.writeFailure;
  }

  /** Ids of the timelines branched from this one (deleteTimeline refuses while there are any). */
  childIds(): string[] {
    return [...this.children].map((c) => c.timelineId).sort();
  }

  get lastRecordLsn(): Lsn {
    return this._lastRecordLsn;
  }

  get diskConsistentLsn(): Lsn {
    return this._diskConsistentLsn;
  }

  get gcCutoffLsn(): Lsn {
    return this._gcCutoffLsn;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * How long (ms) the write queue (flushes, compaction, image creation) has held work without a job
   * starting or ending or a flush committing a layer; 0 when it is empty. A busy writer leaves
   * event-loop turns to queued work that has waited long (pg_timeline.ts).
   */
  get writesWaitingMs(): number {
    return this.queuedWrites === 0 ? 0 : performance.now() - this.writeProgressAt;
  }

  /** Bumped whenever pages may change (decoded_page_cache.ts): a batch stored, a snapshot loaded. */
  get writeGeneration(): number {
    return this._writeGeneration;
  }

  // ---- ReadSegment -----------------------------------------------------------------------------

  get mapId(): number {
    return this.layerSet.mapId;
  }

  get ancestorSegment(): ReadSegment | null {
    return this.ancestor;
  }

  hasInMemoryRecords(): boolean {
    return this.layerSet.hasInMemoryRecords();
  }

  collectInMemory(keyId: string, w: ReadPlanWriter): boolean {
    return this.layerSet.collectInMemory(keyId, w);
  }

  // ---- NeedSegment, EvictionOwner (layer_residency.ts, eviction.ts) ---------------------------------

  layerDescs(): readonly LayerDesc[] {
    return this.layerSet.descs();
  }

  get needParent(): NeedSegment | null {
    return this.ancestor;
  }

  localLayerBytes(): number {
    return this.layerSet.localBytes();
  }

  remoteOnlyLayerBytes(): number {
    return this.layerSet.remoteOnlyBytes();
  }

  evictionCandidates(): EvictionCandidate[] {
    if (this.layerSet.pins > 0 || this.remote === null || this.closed) return [];
    const out: EvictionCandidate[] = [];
    for (const { desc, lastUsed } of this.layerSet.localLayers()) {
      const generation = this.remote.durableGeneration(desc.fileName);
      if (generation !== undefined) out.push({ fileName: desc.fileName, sizeBytes: desc.sizeBytes, lastUsed, generation });
    }
    return out;
  }

  evictLayer(fileName: string, generation: number): void {
    this.layerSet.evict(fileName, generation);
    this.residency.evictions++;
  }

  // ---- ingest ----------------------------------------------------------------------------------

  /** Public records: validated and serialized, all or nothing. */
  ingest(records: readonly WalRecord[]): void {
    this.checkWritable();
    const batch = checkRecords(records, this._lastRecordLsn, this.name, this.ingestScratch);
    if (batch.count === 0) return;
    this._writeGeneration++;
    const decoded = this.decoded;
    if (decoded !== null && decoded.size > 0) {
      for (let i = 0; i < batch.count; i++) decoded.invalidate(batch.keys, i * KEY_SIZE, records[i].lsn);
    }
    this.layerSet.putChecked(batch);
    this.applied(records[batch.count - 1].lsn);
  }

  /** ingest(), then wait while frozen layers exceed maxFrozenLayers (waitForFrozenLayers). */
  async ingestAsync(records: readonly WalRecord[]): Promise<void> {
    this.ingest(records);
    await this.waitForFrozenLayers();
  }

  /**
   * Ingest backpressure on frozen layers (the model: Neon's WAL receiver): resolves
   * once no more than maxFrozenLayers frozen layers wait for their flush, so a writer faster than
   * the disk holds at most that many (plus the open layer) in memory. Rejects with the flush
   * failure if one stops writes while waiting. Sync ingest() cannot wait: it keeps accepting, and
   * the flush of what it froze is already queued.
   */
  async waitForFrozenLayers(): Promise<void> {
    if (this.layerSet.frozenCount > 0 && this.layerSet.frozenCount <= this.config.maxFrozenLayers) {
      // Under the budget with a flush running: one event-loop turn lets its I/O callbacks run, so
      // a writer that never has to wait does not starve the flush until the budget is reached.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    while (this.layerSet.frozenCount > this.config.maxFrozenLayers) {
      this.checkWritable();
      await new Promise<void>((resolve) => this.frozenWaiters.push(resolve));
    }
    this.checkWritable();
  }

  /** Records the engine built itself (PostgreSQL WAL ingest): LSN rules checked, values trusted. */
  ingestPrepared(batch: PreparedBatch): void {
    this.checkWritable();
    checkBatchOrder(batch, this._lastRecordLsn, this.name);
    this.apply(batch);
  }

  /**
   * WAL up to `lsn` has been received but holds nothing to store (PostgreSQL's commit and
   * checkpoint records, say): lastRecordLsn moves there, readers waiting for it wake, and the next
   * flush makes it durable.
   */
  advanceLsn(lsn: Lsn): void {
    this.checkWritable();
    checkLsn(lsn, 'lsn');
    if (lsn <= this._lastRecordLsn) return;
    if (lsn > MAX_RECORD_LSN) throw new StrataError('LSN_ORDER', `${this.name}: LSN ${formatLsn(lsn)} is above the largest storable LSN`);
    this.layerSet.advanceTo(lsn);
    this._lastRecordLsn = lsn;
    this.waiters.wake(lsn);
  }

  private apply(batch: PreparedBatch): void {
    const n = batch.lsns.length;
    if (n === 0) return;
    this._writeGeneration++;
    // Before the records are stored: should storing fail, an entry closed early only costs a miss.
    const decoded = this.decoded;
    if (decoded !== null && decoded.size > 0) for (let i = 0; i < n; i++) decoded.invalidate(batch.keys[i], 0, batch.lsns[i]);
    this.layerSet.put(batch);
    this.applied(batch.lsns[n - 1]);
  }

  /** A batch up to `lastLsn` is in the open layer: readers wake, a full layer freezes. */
  private applied(lastLsn: Lsn): void {
    this._lastRecordLsn = lastLsn;
    this.waiters.wake(this._lastRecordLsn);
    if (this.layerSet.openBytes >= this.config.checkpointDistance) {
      this.freeze();
      // A failure is kept in writeFailure (ingest then refuses); nobody awaits this promise.
      this.enqueue(() => this.flushFrozen()).catch(() => undefined);
    }
  }

  // ---- reads -----------------------------------------------------------------------------------

  async getPages(keys: readonly PageKey[], lsn: Lsn, opts: GetPageOptions = {}): Promise<Buffer[]> {
    this.checkOpen();
    checkLsn(lsn, 'lsn');
    checkKeyList(keys);
    checkOptionsObject(opts, 'getPage options');
    checkTimeout(opts.timeoutMs);
    const scratch = Buffer.alloc(KEY_SIZE);
    for (const k of keys) encodeKey(k, scratch); // reject bad keys before waiting
    await this.waitForLsn(lsn, opts.timeoutMs ?? DEFAULT_WAIT_LSN_TIMEOUT_MS);
    await this.makeLocalForRead(keys, lsn);
    // No await between the local check and the core call: an eviction cannot slip in between.
    const pages = this.reads.getPages(keys, lsn, this.config.offloadCachedReads);
    this.layerCache?.enforce();
    return pages;
  }

  /**
   * readPagesInto from cached blocks only, never waiting nor touching the disk: false when it
   * cannot (an LSN above lastRecordLsn or below the GC cutoff, a closed timeline, a block not
   * cached, a key without a page) — the caller then goes the async way, which says why.
   */
  tryReadPagesCached(keys: readonly PageKey[], lsn: Lsn, into: Uint8Array, offset: number): boolean {
    if (this.closed || lsn > this._lastRecordLsn || lsn < this._gcCutoffLsn) return false;
    try {
      return this.reads.tryReadPagesCached(keys, lsn, into, offset);
    } catch {
      return false; // a bad key, a corrupt block: the async path meets it again and reports it
    }
  }

  readPagesInto(keys: readonly PageKey[], lsn: Lsn, into: Uint8Array, offset: number): void {
    this.checkSyncRead(lsn);
    checkKeyList(keys);
    this.throwIfNotLocal(keys, lsn);
    this.reads.readPagesInto(keys, lsn, into, offset);
  }

  /** The synchronous twin of getPagesWithStatus; the status array is valid until the next such read. */
  readPagesIntoWithStatus(keys: ReadonlyArray<PageKey | Buffer>, lsn: Lsn, into: Uint8Array, offset: number): Uint8Array | null {
    this.checkSyncRead(lsn);
    this.throwIfNotLocal(keys, lsn);
    return this.reads.readPagesIntoWithStatus(keys, lsn, into, offset);
  }

  /**
   * A synchronous read cannot wait for a download: one that needs a remote-only layer fails with
   * LAYER_NOT_LOCAL naming it (docs/REMOTE.md explains why this beats blocking the event loop).
   */
  private throwIfNotLocal(keys: ReadonlyArray<PageKey | Buffer>, lsn: Lsn): void {
    if (!Array.isArray(keys)) return; // the read path reports the bad argument
    const missing = this.missingForRead(keys, lsn);
    if (missing !== null) throw missing[0].tl.layerSet.notLocal(missing[0].desc.fileName, `${this.name}: a synchronous read at LSN ${formatLsn(lsn)}`);
  }

  /**
   * The remote-only layers a read of `keys` at `lsn` may need (layer_residency.ts), or null when
   * all are local; under a budget, records the use of the local ones for eviction.
   */
  private missingForRead(keys: ReadonlyArray<PageKey | Buffer>, lsn: Lsn): MissingLayer[] | null {
    const cache = this.layerCache;
    let anyRemote = false;
    for (let t: TimelineImpl | null = this; t !== null; t = t.ancestor) if (t.layerSet.remoteOnlyCount > 0) anyRemote = true;
    if (!anyRemote && (cache === null || !cache.tracksUse)) return null;
    const scratch = Buffer.allocUnsafe(KEY_SIZE);
    const hexes = keys.map((k) => keyToHex(Buffer.isBuffer(k) ? k : encodeKey(k, scratch)));
    const tick = cache?.tick() ?? 0;
    const missing = new Map<string, MissingLayer>();
    visitNeededLayers(this, hexes, lsn, (s, desc) => {
      const tl = s as TimelineImpl;
      if (!tl.layerSet.touch(desc.fileName, tick)) missing.set(`${tl.timelineId}/${desc.fileName}`, { tl, desc });
    });
    return missing.size === 0 ? null : [...missing.values()];
  }

  /** Download remote-only layers (each timeline fetches its own; concurrent fetches of one layer are shared). */
  /**
   * Downloads what a read of `keys` at `lsn` needs until nothing is missing; the caller then reads
   * with no await in between, so an eviction cannot slip in.
   */
  private async makeLocalForRead(keys: ReadonlyArray<PageKey | Buffer>, lsn: Lsn): Promise<void> {
    for (;;) {
      this.checkOpen();
      this.checkAboveGcCutoff(lsn, 'read');
      const missing = this.missingForRead(keys, lsn);
      if (missing === null) return;
      await this.download(missing);
    }
  }

  private async download(missing: readonly MissingLayer[]): Promise<void> {
    // All settle before a failure is reported: nothing of this read is still writing afterwards.
    const results = await Promise.allSettled(missing.map((m) => m.tl.downloadLayer(m.desc)));
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }

  private async downloadLayer(desc: LayerDesc): Promise<void> {
    const gen = this.layerSet.remoteOnlyGeneration(desc.fileName);
    if (gen === undefined) return; // local meanwhile, or dropped by compaction or GC
    const cache = this.layerCache;
    if (cache === null) throw this.layerSet.notLocal(desc.fileName, `${this.name}: a read (this repository was opened without its remote)`);
    const file = path.join(this.dir, desc.fileName);
    const started = performance.now();
    try {
      await cache.downloader.fetch(layerKey(this.tenantId, this.timelineId, desc.fileName, gen), file, desc.sizeBytes);
    } finally {
      this.residency.downloadWaitMs += performance.now() - started;
    }
    if (this.closed) return;
    // Installed by a waiter of the same download and evicted again before this one resumed: the
    // caller's next local check sees it missing and downloads it anew.
    if (!fs.existsSync(file)) return;
    // Waiters sharing one download all get here: the first installs the layer.
    if (this.layerSet.remoteOnlyGeneration(desc.fileName) === undefined) {
      if (this.layerSet.find(desc.fileName) === undefined) fs.rmSync(file, { force: true }); // dropped by compaction or GC meanwhile
      return;
    }
    this.layerSet.installDownloaded(desc.fileName, cache.tick());
    this.residency.onDemandDownloads++;
    this.residency.onDemandDownloadedBytes += desc.sizeBytes;
  }

  /**
   * Download every remote-only layer of this timeline and its ancestors (what a synchronous read,
   * a key listing or a rewrite may need). Eviction may remove them again later under a budget.
   */
  async downloadLayers(): Promise<{ layers: number; bytes: number }> {
    this.checkOpen();
    const missing: MissingLayer[] = [];
    for (let t: TimelineImpl | null = this; t !== null; t = t.ancestor) for (const desc of t.layerSet.remoteOnlyDescs()) missing.push({ tl: t, desc });
    await this.download(missing);
    return { layers: missing.length, bytes: missing.reduce((n, m) => n + m.desc.sizeBytes, 0) };
  }

  /**
   * Compaction and image creation read layer files directly: pin this timeline and its ancestors
   * against eviction, download what `needs` names (this timeline's L0 inputs, or every layer of
   * the chain), run `job`, unpin.
   */
  private async withLocalLayers<T>(needs: readonly LayerDesc[] | 'chain', job: () => Promise<T>): Promise<T> {
    const chain: TimelineImpl[] = [];
    for (let t: TimelineImpl | null = this; t !== null; t = t.ancestor) chain.push(t);
    for (const t of chain) t.layerSet.pins++;
    try {
      if (needs === 'chain') await this.downloadLayers();
      else await this.download(needs.filter((d) => this.layerSet.remoteOnlyGeneration(d.fileName) !== undefined).map((desc) => ({ tl: this, desc })));
      return await job();
    } finally {
      for (const t of chain) t.layerSet.pins--;
      this.layerCache?.enforce();
    }
  }

  /** The L0 layers compactLevel0 would merge now (compaction.ts), or none. */
  private l0CompactionInputs(force: boolean): LayerDesc[] {
    const l0 = this.layerSet.level0();
    if (l0.length === 0 || (!force && l0.length < this.config.compactionThreshold)) return [];
    return l0.slice(0, this.config.compactionUpperLimit);
  }

  /**
   * Whether a non-forced image creation might write an image, judged on layer descriptions alone
   * — so that, while layers are remote-only, the background's periodic compaction does not
   * download a whole tenant to learn that nothing is due. An upper bound of createImageLayers'
   * test: images cover every partition at an LSN at least the one at which they cover the whole
   * keyspace (newestCoveringImageLsn; partition images tile it, no one of them covers it alone), so
   * a partition's deltas above are among those above that one.
   */
  private imageCreationMayRun(): boolean {
    const chainRemote = (): boolean => {
      for (let t: TimelineImpl | null = this; t !== null; t = t.ancestor) if (t.layerSet.remoteOnlyCount > 0) return true;
      return false;
    };
    if (!chainRemote()) return true;
    const lsn = this._diskConsistentLsn;
    const layers = this.layerSet.descs();
    const fullNewest = newestCoveringImageLsn(layers, keyToHex(FULL_KEYSPACE.keyStart), keyToHex(FULL_KEYSPACE.keyEnd));
    if (lsn <= fullNewest) return false;
    const above = layers.filter((l) => l.kind === 'delta' && l.lsnEnd > fullNewest + 1n);
    return above.length > 0 && maxStackDepth(above) >= this.config.imageCreationThreshold;
  }

  private checkSyncRead(lsn: Lsn): void {
    this.checkOpen();
    checkLsn(lsn, 'lsn');
    if (lsn > this._lastRecordLsn) {
      throw new StrataError('LSN_TIMEOUT', `${this.name}: LSN ${formatLsn(lsn)} is above lastRecordLsn ${formatLsn(this._lastRecordLsn)}`);
    }
    this.checkAboveGcCutoff(lsn, 'read');
  }

  /**
   * GetPage@LSN for keys of any kind, reporting missing ones in `status` (PAGE_STATUS_NOT_FOUND,
   * zero bytes) instead of failing: what subsystems build their own read rules on.
   */
  async getPagesWithStatus(keys: ReadonlyArray<PageKey | Buffer>, lsn: Lsn, opts: GetPageOptions = {}): Promise<{ out: Buffer; status: Uint8Array }> {
    this.checkOpen();
    checkLsn(lsn, 'lsn');
    await this.waitForLsn(lsn, opts.timeoutMs ?? DEFAULT_WAIT_LSN_TIMEOUT_MS);
    await this.makeLocalForRead(keys, lsn);
    const result = this.reads.getPagesWithStatus(keys, lsn, this.config.offloadCachedReads);
    this.layerCache?.enforce();
    return result;
  }

  /** Every key in [start, end) this timeline (and the part of its ancestors it sees) has a record for, sorted. */
  keysInRange(start: Buffer, end: Buffer): Buffer[] {
    this.checkOpen();
    const seen = new Map<string, Buffer>();
    for (let t: TimelineImpl | null = this; t !== null; t = t.ancestor) t.layerSet.collectKeys(seen, start, end);
    return [...seen.values()].sort(Buffer.compare);
  }

  /** Target size of a layer file written by compaction (and by a snapshot import), in bytes. */
  get compactionTargetSize(): number {
    return this.config.compactionTargetSize;
  }

  /** The core this timeline's reads run on. */
  get implementation(): ImplementationName {
    return this.core.implementation;
  }

  /** Resolves once ingest reaches `lsn`; LSN_TIMEOUT after timeoutMs. */
  waitForLsn(lsn: Lsn, timeoutMs: number): Promise<void> {
    return this.waiters.wait(lsn, () => this._lastRecordLsn, timeoutMs, this.name);
  }

  checkAboveGcCutoff(lsn: Lsn, what: string): void {
    if (lsn < this._gcCutoffLsn) {
      throw new StrataError('LSN_GC_CUTOFF', `${this.name}: ${what} at LSN ${formatLsn(lsn)} is below the GC cutoff ${formatLsn(this._gcCutoffLsn)}`);
    }
  }

  // ---- flush, images, compaction, GC -----------------------------------------------------------

  /** Freeze the open layer and wait until every frozen layer is on disk. */
  async flush(): Promise<void> {
    this.checkWritable();
    this.freeze();
    await this.enqueue(() => this.flushFrozen());
  }

  async createImageLayer(lsn: Lsn): Promise<LayerInfo> {
    this.checkWritable();
    checkLsn(lsn, 'lsn');
    if (lsn > this._lastRecordLsn) {
      throw new StrataError('LSN_TIMEOUT', `${this.name}: image LSN ${formatLsn(lsn)} is above lastRecordLsn ${formatLsn(this._lastRecordLsn)}`);
    }
    if (lsn < this.startLsn) {
      throw new StrataError('BAD_ARGUMENT', `${this.name}: image LSN ${formatLsn(lsn)} is below the timeline's start ${formatLsn(this.startLsn)}`);
    }
    this.checkAboveGcCutoff(lsn, 'image layer');
    if (lsn > this._diskConsistentLsn) await this.flush();
    let info: LayerInfo | undefined;
    await this.enqueueWrite('image creation', () => this.withLocalLayers('chain', async () => {
      this.checkAboveGcCutoff(lsn, 'image layer');
      info = await this.writeImage(lsn, FULL_KEYSPACE.keyStart, FULL_KEYSPACE.keyEnd, { [Symbol.iterator]: () => this.keyStream(lsn) });
    }));
    return { ...(info as LayerInfo) };
  }

  async compact(opts: CompactOptions = {}): Promise<CompactionReport> {
    this.checkWritable();
    checkOptionsObject(opts, 'compact options');
    const report = emptyCompactionReport();
    const force = opts.force === true;
    await this.enqueueWrite('compaction', async () => {
      await this.withLocalLayers(this.l0CompactionInputs(force), () => compactLevel0(this.compactionHost(), force, report));
      if (force || this.imageCreationMayRun()) await this.withLocalLayers('chain', () => createImageLayers(this.compactionHost(), force, report));
      if (!force && this.config.heatImageBudget > 0) await this.heatPass(report);
    });
    return report;
  }

  /**
   * Heat-driven images (read_heat.ts) after the partition images. Skipped while layers of the
   * chain are remote-only: a read-heat guess does not justify downloading them (they will be
   * local again once reads bring them back, and the heat is still there).
   */
  private async heatPass(report: CompactionReport): Promise<void> {
    for (let t: TimelineImpl | null = this; t !== null; t = t.ancestor) if (t.layerSet.remoteOnlyCount > 0) return;
    const { heatImageBudget: ratio, checkpointDistance, compactionThreshold } = this.config;
    await this.withLocalLayers('chain', () => createHotImages(this.compactionHost(), {
      heat: this.heat, ratio, writtenTotal: this.layerSet.written.flushed + this.layerSet.written.compacted + this.layerSet.written.images,
      // At most about one L0 compaction's worth of input times the ratio in hand.
      creditCapBytes: ratio * checkpointDistance * compactionThreshold,
    }, report));
  }

  /**
   * Move the GC cutoff up to lastRecordLsn − horizon (never down, and never above
   * diskConsistentLsn: a crash reopens the timeline there, and reads at that LSN must keep working)
   * and remove the layers no read at or above it, and no child branch, can need (gc.ts). The cutoff
   * is durable before any file goes.
   */
  async gc(opts: GcOptions = {}): Promise<GcReport> {
    this.checkWritable();
    checkOptionsObject(opts, 'gc options');
    const horizon = opts.horizon ?? this.config.gcHorizon;
    checkLsn(horizon, 'horizon');
    let report: GcReport | undefined;
    await this.enqueueWrite('GC', async () => {
      const wanted = this._lastRecordLsn > horizon ? this._lastRecordLsn - horizon : 0n;
      const durable = wanted < this._diskConsistentLsn ? wanted : this._diskConsistentLsn;
      const cutoff = durable > this._gcCutoffLsn ? durable : this._gcCutoffLsn;
      const branchPoints = [...this.children].map((c) => c.ancestorLsn as Lsn);
      const doomed = layersToRemove(this.layerSet.descs(), cutoff, branchPoints);
      await this.layerSet.replace(doomed.map((d) => d.fileName), [], { gcCutoffLsn: cutoff });
      const bytesRemoved = doomed.reduce((n, d) => n + d.sizeBytes, 0);
      this.counters.gcBytesRemoved += bytesRemoved;
      report = { cutoffLsn: cutoff, layersRemoved: doomed.length, bytesRemoved, removed: doomed.map((d) => d.fileName) };
    });
    return report as GcReport;
  }

  /**
   * Bulk-load a snapshot as image layers at `lsn` into this empty timeline (layer_set.ts); the
   * timeline then stands at `lsn`, durably. Used by importPgDatadir.
   */
  async loadSnapshot(lsn: Lsn, partitions: AsyncIterable<SnapshotPartition>): Promise<LayerInfo[]> {
    this.checkWritable();
    checkLsn(lsn, 'lsn');
    if (lsn <= this._lastRecordLsn || lsn > MAX_RECORD_LSN) {
      throw new StrataError('LSN_ORDER', `${this.name}: a snapshot at ${formatLsn(lsn)} must lie above lastRecordLsn ${formatLsn(this._lastRecordLsn)}`);
    }
    let descs: LayerDesc[] = [];
    await this.enqueueWrite('snapshot load', async () => {
      descs = await this.layerSet.loadSnapshot(lsn, partitions);
    });
    // Pages changed above lastRecordLsn without records: no decoded page of before stays valid.
    this._writeGeneration++;
    this.decoded?.clear();
    this._lastRecordLsn = lsn;
    this.waiters.wake(lsn);
    return descs.map((d) => ({ ...d }));
  }

  /** For the background scheduler: whether compact() would merge L0 layers now. */
  needsCompaction(): boolean {
    return this.layerSet.level0().length >= this.config.compactionThreshold;
  }

  /** For the background scheduler: when the open layer took its first record (ms), or null. */
  get openLayerSince(): number | null {
    return this.layerSet.openSince;
  }

  // ---- remote storage ----------------------------------------------------------------------------

  /** Engine-internal: from now on every manifest commit is uploaded by `client` (starting with the current one). */
  attachRemote(client: RemoteTimelineClient, cache: LocalLayerCache): void {
    this.remote = client;
    this.layerCache = cache;
    cache.register(this);
    client.onIndexUploaded = () => cache.enforce();
    client.schedule(this.manifest());
  }

  /** Engine-internal: stop uploading (the generation changes); pending syncs reject with CLOSED. */
  async detachRemote(): Promise<void> {
    const client = this.remote;
    this.remote = null;
    await client?.stop();
  }

  /** diskConsistentLsn of the newest index uploaded to remote storage; null without a remote or before the first. */
  get remoteConsistentLsn(): Lsn | null {
    return this.remote?.remoteConsistentLsn ?? null;
  }

  /**
   * Resolves once everything durable locally at the call (layers, then the index naming them) is
   * in remote storage; rejects with the storage's coded error (REMOTE_ERROR …) when uploads keep
   * failing (they go on being retried), CLOSED when the repository closes first.
   */
  syncRemote(): Promise<void> {
    this.checkOpen();
    if (this.remote === null) return Promise.reject(new StrataError('BAD_ARGUMENT', `${this.name}: syncRemote needs a repository opened with a remote`));
    return this.remote.sync();
  }

  // ---- inspection ------------------------------------------------------------------------------

  layers(): LayerInfo[] {
    this.checkOpen();
    return this.layerSet.descs().map((d) => ({ ...d }));
  }

  stats(): TimelineStats {
    const descs = this.layerSet.descs();
    const { reads, layersVisited, recordsApplied } = this.reads.counters;
    return {
      tenantId: this.tenantId,
      timelineId: this.timelineId,
      lastRecordLsn: this._lastRecordLsn,
      diskConsistentLsn: this._diskConsistentLsn,
      gcCutoffLsn: this._gcCutoffLsn,
      openLayerBytes: this.layerSet.openBytes,
      frozenLayers: this.layerSet.frozenCount,
      layers: descs.length,
      l0Count: this.layerSet.level0().length,
      l1Count: descs.filter((d) => d.kind === 'delta' && d.level === 1).length,
      imageLayerCount: descs.filter((d) => d.kind === 'image').length,
      reads,
      layersVisited,
      recordsApplied,
      layersVisitedPerRead: this.reads.visitedHist.summary(),
      recordsAppliedPerRead: this.reads.appliedHist.summary(),
      bytesFlushed: this.layerSet.written.flushed,
      bytesCompacted: this.layerSet.written.compacted,
      bytesImages: this.layerSet.written.images,
      gcBytesRemoved: this.counters.gcBytesRemoved,
      physicalSizeBytes: this.layerSet.physicalSizeBytes(),
      flushDelays: this.counters.flushDelays,
      flushStalls: this.counters.flushStalls,
      remote: this.remote === null ? null : {
        ...this.remote.stats(),
        localLayerBytes: this.layerSet.localBytes(),
        remoteOnlyLayers: this.layerSet.remoteOnlyCount,
        remoteOnlyLayerBytes: this.layerSet.remoteOnlyBytes(),
        ...this.residency,
      },
    };
  }

  /** The per-read histograms themselves, for the Prometheus export. */
  readHistograms(): { layersVisited: IntHistogram; recordsApplied: IntHistogram } {
    return { layersVisited: this.reads.visitedHist, recordsApplied: this.reads.appliedHist };
  }

  /** Zero the counters and histograms (layer counts and sizes are state, not counters). */
  resetStats(): void {
    this.reads.resetCounters();
    this.counters.flushDelays = 0;
    this.counters.flushStalls = 0;
    this.counters.gcBytesRemoved = 0;
    this.layerSet.written.flushed = 0;
    this.layerSet.written.compacted = 0;
    this.layerSet.written.images = 0;
  }

  /** The manifest as it stands. */
  manifest(): Manifest {
    return {
      tenantId: this.tenantId,
      timelineId: this.timelineId,
      ancestorTimelineId: this.ancestor?.timelineId ?? null,
      ancestorLsn: this.ancestorLsn,
      startLsn: this.startLsn,
      diskConsistentLsn: this._diskConsistentLsn,
      gcCutoffLsn: this._gcCutoffLsn,
      compression: this.config.compression,
      layers: this.layerSet.descs(),
      extensions: this._extensions,
    };
  }

  /** What subsystems recorded about this timeline (manifest `extensions`). */
  get extensions(): ManifestExtensions {
    return this._extensions;
  }

  /**
   * Record a subsystem's fields in the manifest, durably: serialized with the timeline's other
   * manifest writes, done when the promise resolves.
   */
  async setExtension(name: string, fields: Readonly<Record<string, string>>): Promise<void> {
    this.checkWritable();
    await this.enqueueWrite('a manifest update', async () => {
      const next = { ...this._extensions, [name]: { ...fields } };
      writeManifest(path.join(this.dir, MANIFEST_FILE), { ...this.manifest(), extensions: next });
      this._extensions = next;
      this.remote?.schedule(this.manifest());
    });
  }

  /**
   * Flush (unless a flush already failed) and release the core's resources. The repository
   * closes descendants before their ancestors, whose layer maps their reads go through.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      if (this.writeFailure === null && !this.config.readOnly) await this.flush();
    } finally {
      this.closed = true;
      this.layerCache?.unregister(this);
      await this.remote?.stop();
      this.waiters.releaseAll();
      this.ancestor?.children.delete(this);
      this.decoded?.clear();
      this.layerSet.release();
    }
  }

  // ---- internals -------------------------------------------------------------------------------

  /** CLOSED once the repository closed: every call of a closed timeline, the subsystems' too. */
  checkOpen(): void {
    if (this.closed) throw new StrataError('CLOSED', `${this.name} is closed`);
  }

  private checkWritable(): void {
    this.checkOpen();
    if (this.config.readOnly) throw new StrataError('READ_ONLY', `${this.name} belongs to a repository opened read-only`);
    if (this.writeFailure !== null) throw this.writeFailure;
  }

  /**
   * A write-path job (compaction, image creation, GC, snapshot load) whose I/O failure stops this
   * timeline's writes until reopen, as a failed flush does: once an fsync has failed, the kernel
   * may have dropped the dirty pages and a retried fsync would report success for lost data
   * (PostgreSQL's fsync lesson), and a failed manifest commit may leave the manifest on disk ahead
   * of or behind memory. Reopening rebuilds the state from what the manifest says is durable.
   */
  private enqueueWrite(what: string, job: () => Promise<void>): Promise<void> {
    return this.enqueue(async () => {
      this.checkWritable(); // an earlier queued job may have failed
      try {
        await job();
      } catch (e) {
        if (e instanceof StrataError && e.code === 'IO_ERROR') {
          this.writeFailure = writeFailure(this.name, what, e);
          throw this.writeFailure;
        }
        throw e;
      }
    });
  }

  private enqueue(job: () => Promise<void>): Promise<void> {
    if (this.queuedWrites++ === 0) this.writeProgressAt = performance.now();
    const run = this.serial.then(() => {
      this.writeProgressAt = performance.now();
      return job();
    });
    const settled = (): void => {
      this.queuedWrites--;
      this.writeProgressAt = performance.now();
    };
    this.serial = run.then(settled, settled);
    return run;
  }

  /**
   * Flush the frozen layers oldest first, as a pipeline: a layer's write starts once the layer
   * before it no longer needs the event loop (or when ingest freezes it, if that is later), so
   * writes overlap each other's fsyncs and the manifest commits, and the commits stay in LSN
   * order. Under L0
   * backpressure each layer waits for the one before to commit. Layers written ahead of a failed
   * flush are removed.
   */
  private async flushFrozen(): Promise<void> {
    // An earlier queued flush may have failed: no retry until reopen (checkWritable's policy).
    if (this.writeFailure !== null) throw this.writeFailure;
    const p: FlushPipeline = { writes: [], last: null, lastEncoded: false, stopped: false };
    this.pipeline = p;
    try {
      for (let layer = this.layerSet.oldestFrozen(); layer !== undefined; layer = this.layerSet.oldestFrozen()) {
        const started = performance.now();
        try {
          if (p.writes.length === 0) this.startWrite(p, layer);
          const written = await p.writes[0];
          p.writes.shift();
          await this.layerSet.commitFrozen(written);
          this.writeProgressAt = performance.now();
        } catch (e) {
          this.writeFailure = writeFailure(this.name, 'a flush', e);
          throw this.writeFailure;
        } finally {
          this.wakeFrozenWaiters();
        }
        await this.applyBackpressure(performance.now() - started);
      }
    } finally {
      p.stopped = true;
      this.pipeline = null;
      for (const write of p.writes) {
        const orphan = await write.catch(() => null);
        if (orphan !== null) this.layerSet.discardWritten(orphan);
      }
    }
  }

  /** Freeze the open layer; while a flush runs, its pipeline may start writing it at once. */
  private freeze(): void {
    this.layerSet.freeze();
    const running = this.pipeline;
    if (running !== null) queueMicrotask(() => this.writeAhead(running));
  }

  /** Start a frozen layer's write in the pipeline, after those already started. */
  private startWrite(p: FlushPipeline, layer: InMemoryLayer): void {
    p.last = layer;
    p.lastEncoded = false;
    // Deferred: onEncoded may run before writeFrozen returns, and writes queue in layer order.
    const write = this.layerSet.writeFrozen(layer, () => queueMicrotask(() => {
      if (p.last === layer) p.lastEncoded = true;
      this.writeAhead(p);
    }));
    write.catch(() => undefined); // awaited in order by flushFrozen, or discarded
    p.writes.push(write);
  }

  /**
   * Start the next frozen layer's write when the last one started no longer needs the event loop:
   * called when a write gets there, and when ingest freezes a layer while a flush runs.
   */
  private writeAhead(p: FlushPipeline): void {
    if (p.stopped || !p.lastEncoded || p.last === null) return;
    const next = this.layerSet.frozenAfter(p.last);
    if (next !== undefined && !this.backpressureDue(p.writes.length)) this.startWrite(p, next);
  }

  /** Whether L0s committed plus `uncommitted` more would call for a pause or a compaction. */
  private backpressureDue(uncommitted: number): boolean {
    const { l0FlushStallThreshold: stall, l0FlushDelayThreshold: delay } = this.config;
    const l0 = this.layerSet.level0().length + uncommitted;
    return (stall > 0 && l0 + 1 >= stall) || (delay > 0 && l0 + 1 >= delay);
  }

  /** A frozen layer was flushed (or the flush failed): ingest waiting on the budget re-checks. */
  private wakeFrozenWaiters(): void {
    const waiting = this.frozenWaiters;
    this.frozenWaiters = [];
    for (const wake of waiting) wake();
  }

  /**
   * L0 backpressure, after Neon's flush loop: past l0FlushDelayThreshold each flush is followed by
   * a pause as long as itself (flushing at half speed while compaction catches up); at
   * l0FlushStallThreshold the flush compacts before returning, so read amplification stays bounded
   * even with no background compaction running. Callers feel it in flush() and in frozen layers
   * waiting in memory.
   */
  private async applyBackpressure(flushMs: number): Promise<void> {
    const { l0FlushStallThreshold: stall, l0FlushDelayThreshold: delay } = this.config;
    if (stall > 0 && this.layerSet.level0().length >= stall) {
      this.counters.flushStalls++;
      const report = emptyCompactionReport();
      while (this.layerSet.level0().length >= stall) {
        await this.withLocalLayers(this.l0CompactionInputs(true), () => compactLevel0(this.compactionHost(), true, report));
      }
    } else if (delay > 0 && this.layerSet.level0().length >= delay) {
      this.counters.flushDelays++;
      await new Promise((resolve) => setTimeout(resolve, Math.ceil(flushMs)));
    }
  }

  /**
   * Write the manifest of a layer swap (its durable commit point) on the libuv pool; memory is
   * unchanged until applyManifest. Swaps are serialized (the write queue), so nothing else
   * writes the manifest meanwhile.
   */
  private async writeNextManifest(layers: LayerDesc[], patch: ManifestPatch): Promise<Manifest> {
    const next: Manifest = { ...this.manifest(), ...patch, layers };
    await writeManifestAsync(path.join(this.dir, MANIFEST_FILE), next);
    return next;
  }

  /** Take a written manifest's LSNs; runs in the synchronous step that swaps the layers in. */
  private applyManifest(written: Manifest): void {
    this._diskConsistentLsn = written.diskConsistentLsn;
    this._gcCutoffLsn = written.gcCutoffLsn;
    // Off the caller's path: the client's worker uploads it (remote_timeline_client.ts).
    this.remote?.schedule(written);
  }

  private writeImage(lsn: Lsn, keyStart: Buffer, keyEnd: Buffer, keys: Iterable<Buffer>): Promise<LayerDesc> {
    return this.layerSet.writeImageLayer(lsn, { keyStart, keyEnd }, keys, this.imageReader);
  }

  /** Image creation's page reads: not user reads, so they leave read heat and stats alone. */
  private readonly imageReader: PageReader = (chunk, at, out, status, counts) => this.reads.readIntoAsync(chunk, at, out, status, counts);

  /**
   * Every key with any record in this timeline or the part of its ancestors it can see, ascending,
   * streamed: memory is a page of keys per layer file, not the key count (key_stream.ts).
   */
  private keyStream(lsn: Lsn): Iterator<Buffer> {
    const chain = this.ancestry();
    return resumableKeys((from) => this.chainKeySources(chain, from, lsn, false), () => TimelineImpl.layerVersionOf(chain));
  }

  /** The same keys for image creation's partitions: the layer files' keys listed off the loop. */
  private backgroundKeyStream(lsn: Lsn): BackgroundKeyStream {
    const chain = this.ancestry();
    return new BackgroundKeyStream((from) => this.chainKeySources(chain, from, lsn, true), () => TimelineImpl.layerVersionOf(chain));
  }

  /**
   * The key sources of `chain` (this timeline, then its ancestors) from `from` for a listing at
   * `lsn`, skipping what this timeline's images at or below `lsn` stand for (key_cover.ts).
   */
  private chainKeySources(chain: readonly TimelineImpl[], from: Buffer, lsn: Lsn, background: boolean): KeySource[] {
    const images = imageCoversAt(this.layerSet.descs(), lsn);
    return chain.flatMap((t, i) => t.layerSet.keyStreams(from, LAYER_KEYS_PAGE, background, { images, coversAll: i > 0 }));
  }

  /** Moves whenever any layer set of `chain` changes: key streams reopen on it. */
  private static layerVersionOf(chain: readonly TimelineImpl[]): number {
    return chain.reduce((v, t) => v + t.layerSet.version, 0);
  }

  /** This timeline, then each ancestor. */
  private ancestry(): TimelineImpl[] {
    const chain: TimelineImpl[] = [];
    for (let t: TimelineImpl | null = this; t !== null; t = t.ancestor) chain.push(t);
    return chain;
  }

  /** What compaction and image creation (compaction.ts) may see and do. */
  private compactionHost(): CompactionHost {
    // Images are made at this LSN, so the key listings are at it too (key_cover.ts).
    const diskConsistentLsn = this._diskConsistentLsn;
    return {
      dir: this.dir,
      config: this.config,
      diskConsistentLsn,
      imageFloorLsn: this._gcCutoffLsn > this.startLsn ? this._gcCutoffLsn : this.startLsn + 1n,
      layers: () => this.layerSet.descs(),
      keys: () => this.keyStream(diskConsistentLsn),
      backgroundKeys: () => this.backgroundKeyStream(diskConsistentLsn),
      compactDeltas: (paths, lsnStart, lsnEnd) => this.layerSet.compactDeltas(paths, lsnStart, lsnEnd, this.config.compactionTargetSize),
      writeImage: async (lsn, range, keys) => ({ ...(await this.writeImage(lsn, range.keyStart, range.keyEnd, keys)) }),
      stageImage: async (lsn, range, keys) => ({ ...(await this.layerSet.stageImageLayer(lsn, range, keys, this.imageReader)) }),
      commitImages: (descs) => this.layerSet.commitImages(descs),
      replaceLayers: async (removed, added) => {
        await this.layerSet.replace(removed, added, {});
        this.layerSet.written.compacted += added.reduce((n, d) => n + d.sizeBytes, 0);
      },
    };
  }
}

/** A failed flush stops writes: what was in memory may be half on disk, and retrying would hide it. */
/** setTimeout's largest delay; a larger one fires at once. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export function checkOptionsObject(opts: unknown, what: string): void {
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) {
    throw new StrataError('BAD_ARGUMENT', `${what} must be an object: got ${describeValue(opts)}`);
  }
}

export function checkTimeout(ms: unknown): void {
  if (ms !== undefined && (typeof ms !== 'number' || !(ms >= 0) || ms > MAX_TIMEOUT_MS)) {
    throw new StrataError('BAD_ARGUMENT', `timeoutMs must be a number of milliseconds in [0, ${MAX_TIMEOUT_MS}]: got ${describeValue(ms)}`);
  }
}

function checkKeyList(keys: unknown): void {
  if (!Array.isArray(keys)) throw new StrataError('BAD_ARGUMENT', `keys must be an array of page keys: got ${describeValue(keys)}`);
}

function writeFailure(name: string, what: string, e: unknown): StrataError {
  const code = e instanceof StrataError ? e.code : 'IO_ERROR';
  const why = e instanceof Error ? e.message : String(e);
  return new StrataError(code, `${name}: ${what} failed, so writes are stopped until the repository is reopened ` +
    `(records above diskConsistentLsn must then be sent again): ${why}`, { cause: e });
}

/** Writes of frozen layers started by a running flush, oldest first, and where the last one is. */
interface FlushPipeline {
  writes: Promise<WrittenL0>[];
  /** The last layer whose write started, and whether that write no longer needs the event loop. */
  last: InMemoryLayer | null;
  lastEncoded: boolean;
  /** The flush ended (or failed): start nothing more. */
  stopped: boolean;
}
