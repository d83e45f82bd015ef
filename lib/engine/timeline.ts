/**
 * A timeline: one branch of a tenant's page history. Ingest goes into the open in-memory layer;
 * full layers are frozen and flushed as L0 delta layer files; reads walk the in-memory layers, then
 * the layer map, then the ancestor below the branch point (docs/ARCHITECTURE.md).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Core, LayerKind } from '../core/core';
import { COUNTS_PER_REQUEST, PAGE_STATUS_NOT_FOUND, PAGE_STATUS_OK } from '../core/core';
import { encodeBlob } from '../core/compress';
import {
  compactLevel0, type CompactionHost, type CompactionReport, type CompactOptions, createImageLayers, emptyCompactionReport, type KeyRange, level0,
} from './compaction';
import { EntryBatch, WRITE_BATCH_ENTRIES, yieldToEventLoop } from './entry_batch';
import { StrataError } from '../errors';
import { CODEC_BY_NAME, DELTA_INDEX_KEY_SIZE, type CompressionName } from '../core/format';
import { fsyncDir, publishFile, TMP_SUFFIX, wrapIo } from './fs_util';
import { layersToRemove } from './gc';
import { type HistogramSummary, IntHistogram } from './histogram';
import { InMemoryLayer } from './inmemory_layer';
import { encodeKey, formatEncodedKey, formatKey, KEY_MAX, KEY_MIN, KEY_SIZE, keyToHex, type PageKey } from '../key';
import { checkLsn, formatLsn, type Lsn } from '../lsn';
import { deltaFileName, imageFileName, type LayerDesc, MANIFEST_FILE, type Manifest, writeManifest } from './manifest';
import { ReadPlanWriter } from '../core/read_plan';
import { PAGE_SIZE, RECORD_TAG_IMAGE, RECORD_TAG_ZERO, recordWillInit, serializeRecord, type WalRecord } from '../record';

/** How long getPage waits for ingest to reach a requested LSN, as Neon's wait_lsn_timeout. */
export const DEFAULT_WAIT_LSN_TIMEOUT_MS = 60_000;
/** Keys reconstructed per core call while building an image layer. */
const IMAGE_BATCH_KEYS = 256;
/** L0 layers and today's image layers cover every key. */
const FULL_KEYSPACE: KeyRange = { keyStart: KEY_MIN, keyEnd: KEY_MAX };

export type { CompactionReport, CompactOptions } from './compaction';

export interface TimelineConfig {
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
}

interface ReadScratchArrays {
  status: Uint8Array;
  counts: Uint32Array;
}

/** Batch sizes whose status/count arrays a timeline keeps for reuse. */
const MAX_SCRATCH_SIZES = 16;

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

export interface LayerInfo {
  kind: LayerKind;
  level: number;
  keyStart: string;
  keyEnd: string;
  lsnStart: bigint;
  lsnEnd: bigint;
  fileName: string;
  sizeBytes: number;
}

export interface GetPageOptions {
  timeoutMs?: number;
}

interface HistoricLayer {
  desc: LayerDesc;
  handle: number;
}

interface LsnWaiter {
  lsn: Lsn;
  resolve: () => void;
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
}

export class Timeline {
  readonly tenantId: string;
  readonly timelineId: string;
  readonly ancestor: Timeline | null;
  readonly ancestorLsn: Lsn | null;
  /** Records of this timeline have lsn > startLsn (the branch point, or 0). */
  readonly startLsn: Lsn;
  private _lastRecordLsn: Lsn;
  private _diskConsistentLsn: Lsn;
  private _gcCutoffLsn: Lsn;
  /** Timelines branched from this one; their branch points hold back GC. */
  readonly children: Timeline[] = [];
  private open: InMemoryLayer;
  private frozen: InMemoryLayer[] = [];
  private historic: HistoricLayer[] = [];
  private readonly mapId: number;
  private waiters: LsnWaiter[] = [];
  /** Flushes, image creation and manifest writes run one at a time, in order. */
  private serial: Promise<void> = Promise.resolve();
  private backgroundError: unknown = null;
  private closed = false;
  private readonly stat = { reads: 0, layersVisited: 0, recordsApplied: 0, flushDelays: 0, flushStalls: 0, bytesFlushed: 0, bytesCompacted: 0, bytesImages: 0, gcBytesRemoved: 0 };
  private readonly visitedHist = new IntHistogram();
  private readonly appliedHist = new IntHistogram();
  /** Scratch reused by every read, so the read path allocates no per-request objects. */
  private readonly planWriter = new ReadPlanWriter();
  private readonly keyScratch = Buffer.alloc(KEY_SIZE);
  private readonly oneKey: PageKey[] = [];
  private readonly readScratch = new Map<number, ReadScratchArrays>();

  /** @internal Use Repository.createTimeline / getTimeline. */
  constructor(
    private readonly core: Core,
    readonly dir: string,
    manifest: Manifest,
    ancestor: Timeline | null,
    private readonly config: TimelineConfig,
  ) {
    this.tenantId = manifest.tenantId;
    this.timelineId = manifest.timelineId;
    this.ancestor = ancestor;
    this.ancestorLsn = manifest.ancestorLsn;
    this.startLsn = manifest.startLsn;
    this._diskConsistentLsn = manifest.diskConsistentLsn;
    this._lastRecordLsn = manifest.diskConsistentLsn;
    this._gcCutoffLsn = manifest.gcCutoffLsn;
    this.open = new InMemoryLayer(manifest.diskConsistentLsn);
    this.mapId = core.createLayerMap();
    try {
      for (const desc of manifest.layers) this.historic.push({ desc, handle: this.openLayerFile(desc) });
      core.setLayerMap(this.mapId, this.historic.map((l) => l.handle));
    } catch (e) {
      this.releaseHandles();
      throw e;
    }
    ancestor?.children.push(this);
  }

  get lastRecordLsn(): Lsn {
    return this._lastRecordLsn;
  }

  /** Every record with lsn ≤ this is in a layer file listed in the manifest. */
  get diskConsistentLsn(): Lsn {
    return this._diskConsistentLsn;
  }

  /** Reads, images and branches below this LSN fail with LSN_GC_CUTOFF. */
  get gcCutoffLsn(): Lsn {
    return this._gcCutoffLsn;
  }

  /**
   * Apply a batch of WAL records: all of it or nothing. LSNs must not go backwards within the batch
   * and must exceed lastRecordLsn; one LSN may carry several records for different pages.
   */
  ingest(records: readonly WalRecord[]): void {
    this.checkOpen();
    if (!Array.isArray(records)) throw new StrataError('BAD_RECORD', 'ingest expects an array of records');
    const keys: Buffer[] = new Array<Buffer>(records.length);
    const values: Buffer[] = new Array<Buffer>(records.length);
    let prev = this._lastRecordLsn;
    let sameLsnKeys = new Set<string>();
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      values[i] = serializeRecord(r);
      keys[i] = encodeKey(r.key);
      if (i === 0 ? r.lsn <= prev : r.lsn < prev) {
        throw new StrataError('LSN_ORDER', `${this.name}: record ${i} has LSN ${formatLsn(r.lsn)}, ` +
          (i === 0 ? `not above lastRecordLsn ${formatLsn(prev)}` : `below the previous record's ${formatLsn(prev)}`) +
          '; nothing of the batch was applied');
      }
      if (r.lsn !== prev) sameLsnKeys = new Set<string>();
      const id = keys[i].toString('latin1');
      if (sameLsnKeys.has(id)) {
        throw new StrataError('LSN_ORDER', `${this.name}: two records for page ${formatEncodedKey(keys[i])} at LSN ${formatLsn(r.lsn)}; nothing of the batch was applied`);
      }
      sameLsnKeys.add(id);
      prev = r.lsn;
    }
    if (records.length === 0) return;
    for (let i = 0; i < records.length; i++) this.open.put(keys[i], records[i].lsn, values[i]);
    this._lastRecordLsn = prev;
    this.wakeWaiters();
    if (this.open.bytes >= this.config.checkpointDistance) {
      this.freezeOpenLayer();
      this.enqueue(() => this.flushFrozen()).catch((e: unknown) => { this.backgroundError ??= e; });
    }
  }

  /** GetPage@LSN: the 8192-byte page as of `lsn`. Waits up to timeoutMs for ingest to reach `lsn`. */
  async getPage(key: PageKey, lsn: Lsn, opts: GetPageOptions = {}): Promise<Buffer> {
    const [page] = await this.getPages([key], lsn, opts);
    return page;
  }

  /**
   * GetPage@LSN for many keys at one LSN, in one call into the core. The native core moves any
   * read that needs the disk to a libuv worker thread (every read with offloadCachedReads), so
   * disk reads do not block the event loop; the read sees the layers as they were when it
   * started, even if a flush, compaction or GC lands meanwhile.
   */
  async getPages(keys: readonly PageKey[], lsn: Lsn, opts: GetPageOptions = {}): Promise<Buffer[]> {
    this.checkOpen();
    checkLsn(lsn, 'lsn');
    for (const k of keys) encodeKey(k, this.keyScratch); // reject bad keys before waiting
    await this.waitForLsn(lsn, opts.timeoutMs ?? DEFAULT_WAIT_LSN_TIMEOUT_MS);
    this.checkOpen();
    this.checkAboveGcCutoff(lsn, 'read');
    const n = keys.length;
    const out = Buffer.allocUnsafe(PAGE_SIZE * n);
    const status = new Uint8Array(n);
    const counts = new Uint32Array(n * COUNTS_PER_REQUEST);
    if (n > 0) await this.core.getPagesAsync(this.buildPlan(keys, lsn), out, status, counts, !this.config.offloadCachedReads);
    this.recordReads(counts, n);
    this.throwIfMissing(keys, lsn, status);
    const pages: Buffer[] = [];
    for (let i = 0; i < n; i++) pages.push(out.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
    return pages;
  }

  /**
   * Synchronous GetPage@LSN into a caller-owned buffer at `offset`; allocates no page. An LSN above
   * lastRecordLsn fails at once with LSN_TIMEOUT (use getPage to wait for it).
   */
  readPage(key: PageKey, lsn: Lsn, into: Uint8Array, offset = 0): void {
    this.oneKey[0] = key;
    this.readPagesAt(this.oneKey, lsn, into, offset);
  }

  /** Synchronous GetPage@LSN for a batch into `into` (≥ 8192 × keys.length bytes), one core call. */
  readPages(keys: readonly PageKey[], lsn: Lsn, into: Uint8Array): void {
    this.readPagesAt(keys, lsn, into, 0);
  }

  private readPagesAt(keys: readonly PageKey[], lsn: Lsn, into: Uint8Array, offset: number): void {
    this.checkOpen();
    checkLsn(lsn, 'lsn');
    if (lsn > this._lastRecordLsn) {
      throw new StrataError('LSN_TIMEOUT', `${this.name}: LSN ${formatLsn(lsn)} is above lastRecordLsn ${formatLsn(this._lastRecordLsn)}`);
    }
    this.checkAboveGcCutoff(lsn, 'read');
    const bytes = keys.length * PAGE_SIZE;
    if (!(into instanceof Uint8Array) || !Number.isInteger(offset) || offset < 0 || into.length < offset + bytes) {
      throw new StrataError('BAD_ARGUMENT', `${this.name}: the output buffer must hold ${bytes} bytes from offset ${String(offset)}`);
    }
    if (keys.length === 0) return;
    const { status, counts } = this.scratchFor(keys.length);
    const out = offset === 0 && into.length === bytes ? into : into.subarray(offset, offset + bytes);
    this.readInto(keys, lsn, out, status, counts);
    this.throwIfMissing(keys, lsn, status);
  }

  /** Status and count arrays of exactly n entries, reused per batch size (views cost a few %). */
  private scratchFor(n: number): ReadScratchArrays {
    let s = this.readScratch.get(n);
    if (s === undefined) {
      if (this.readScratch.size >= MAX_SCRATCH_SIZES) this.readScratch.clear();
      s = { status: new Uint8Array(n), counts: new Uint32Array(n * COUNTS_PER_REQUEST) };
      this.readScratch.set(n, s);
    }
    return s;
  }

  private throwIfMissing(keys: readonly PageKey[], lsn: Lsn, status: Uint8Array): void {
    const missing = status.indexOf(PAGE_STATUS_NOT_FOUND);
    if (missing >= 0) {
      throw new StrataError('PAGE_NOT_FOUND', `${this.name}: no page ${formatKey(keys[missing])} at LSN ${formatLsn(lsn)}`);
    }
  }

  /** Freeze the open layer and wait until every frozen layer is on disk. */
  async flush(): Promise<void> {
    this.checkOpen();
    if (!this.open.isEmpty) this.freezeOpenLayer();
    await this.enqueue(() => this.flushFrozen());
    this.throwBackgroundError();
  }

  /**
   * Materialize every page of the timeline (ancestors included) at `lsn` into one image layer
   * over the whole keyspace. Flushes first when `lsn` is above diskConsistentLsn, so the image
   * never overlaps records still in memory.
   */
  async createImageLayer(lsn: Lsn): Promise<LayerInfo> {
    this.checkOpen();
    checkLsn(lsn, 'lsn');
    if (lsn > this._lastRecordLsn || lsn < this.startLsn) {
      throw new StrataError('BAD_ARGUMENT', `${this.name}: image LSN ${formatLsn(lsn)} outside [${formatLsn(this.startLsn)}, lastRecordLsn ${formatLsn(this._lastRecordLsn)}]`);
    }
    this.checkAboveGcCutoff(lsn, 'image layer');
    if (lsn > this._diskConsistentLsn) await this.flush();
    let info: LayerInfo | undefined;
    await this.enqueue(async () => {
      this.checkAboveGcCutoff(lsn, 'image layer');
      info = await this.writeImageLayer(lsn);
    });
    return info!;
  }

  /**
   * L0 → L1 compaction when compactionThreshold L0 layers have piled up (or `force`), then an
   * image layer at diskConsistentLsn when imageCreationThreshold delta layers are stacked above
   * the newest image. Readers keep working throughout; the manifest swaps layers atomically.
   */
  async compact(opts: CompactOptions = {}): Promise<CompactionReport> {
    this.checkOpen();
    const report = emptyCompactionReport();
    await this.enqueue(async () => {
      await compactLevel0(this.compactionHost(), opts.force === true, report);
      await createImageLayers(this.compactionHost(), opts.force === true, report);
    });
    return report;
  }

  /**
   * Move the GC cutoff up to lastRecordLsn − horizon (never down) and remove the layers no read at
   * or above it, and no child branch, can need (gc.ts). The cutoff is durable before any file goes.
   */
  async gc(opts: GcOptions = {}): Promise<GcReport> {
    this.checkOpen();
    const horizon = opts.horizon ?? this.config.gcHorizon;
    checkLsn(horizon, 'horizon');
    let report: GcReport | undefined;
    await this.enqueue(async () => {
      const target = this._lastRecordLsn > horizon ? this._lastRecordLsn - horizon : 0n;
      const cutoff = target > this._gcCutoffLsn ? target : this._gcCutoffLsn;
      const branchPoints = this.children.map((c) => c.ancestorLsn!);
      const doomed = layersToRemove(this.historic.map((l) => l.desc), cutoff, branchPoints);
      this.replaceLayers(doomed.map((d) => d.fileName), [], { gcCutoffLsn: cutoff });
      this.stat.gcBytesRemoved += doomed.reduce((n, d) => n + d.sizeBytes, 0);
      report = {
        cutoffLsn: cutoff,
        layersRemoved: doomed.length,
        bytesRemoved: doomed.reduce((n, d) => n + d.sizeBytes, 0),
        removed: doomed.map((d) => d.fileName),
      };
    });
    return report!;
  }

  /** @internal For branch creation: refuse a branch point the ancestor may already have collected. */
  checkAboveGcCutoff(lsn: Lsn, what: string): void {
    if (lsn < this._gcCutoffLsn) {
      throw new StrataError('LSN_GC_CUTOFF', `${this.name}: ${what} at LSN ${formatLsn(lsn)} is below the GC cutoff ${formatLsn(this._gcCutoffLsn)}`);
    }
  }

  layers(): LayerInfo[] {
    return this.historic.map(({ desc }) => ({ ...desc }));
  }

  private level0(): LayerDesc[] {
    return level0(this.historic.map((l) => l.desc));
  }

  stats(): TimelineStats {
    return {
      tenantId: this.tenantId,
      timelineId: this.timelineId,
      lastRecordLsn: this._lastRecordLsn,
      diskConsistentLsn: this._diskConsistentLsn,
      gcCutoffLsn: this._gcCutoffLsn,
      openLayerBytes: this.open.bytes,
      frozenLayers: this.frozen.length,
      layers: this.historic.length,
      l0Count: this.level0().length,
      l1Count: this.historic.filter((l) => l.desc.kind === 'delta' && l.desc.level === 1).length,
      imageLayerCount: this.historic.filter((l) => l.desc.kind === 'image').length,
      ...this.stat,
      layersVisitedPerRead: this.visitedHist.summary(),
      recordsAppliedPerRead: this.appliedHist.summary(),
      physicalSizeBytes: this.historic.reduce((n, l) => n + l.desc.sizeBytes, 0),
    };
  }

  /** @internal The per-read histograms themselves, for the Prometheus export. */
  readHistograms(): { layersVisited: IntHistogram; recordsApplied: IntHistogram } {
    return { layersVisited: this.visitedHist, recordsApplied: this.appliedHist };
  }

  /** Zero the read counters and histograms (layer counts and sizes are state, not counters). */
  resetStats(): void {
    for (const k of Object.keys(this.stat) as (keyof typeof this.stat)[]) this.stat[k] = 0;
    this.visitedHist.reset();
    this.appliedHist.reset();
  }

  /** @internal Flush and release native resources; the repository closes timelines children first. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.flush();
    } finally {
      this.closed = true;
      for (const w of this.waiters) w.resolve();
      this.waiters = [];
      this.releaseHandles();
    }
  }

  /** @internal The manifest as it stands, for the repository. */
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
      layers: this.historic.map((l) => l.desc),
    };
  }

  private get name(): string {
    return `timeline ${this.tenantId}/${this.timelineId}`;
  }

  private checkOpen(): void {
    if (this.closed) throw new StrataError('CLOSED', `${this.name} is closed`);
  }

  private throwBackgroundError(): void {
    const e = this.backgroundError;
    if (e !== null) {
      this.backgroundError = null;
      throw e;
    }
  }

  // ---- reads ---------------------------------------------------------------------------------

  /** Reconstruct `keys` at `lsn` into `out` (8192 bytes each) with one core call. */
  private readInto(keys: ReadonlyArray<PageKey | Buffer>, lsn: Lsn, out: Uint8Array, status: Uint8Array, counts: Uint32Array, countStats = true): void {
    this.core.getPages(this.buildPlan(keys, lsn), out, status, counts);
    if (countStats) this.recordReads(counts, keys.length); // image creation's reads are not user reads
  }

  /** Per-request read amplification into the totals and histograms. */
  private recordReads(counts: Uint32Array, n: number): void {
    this.stat.reads += n;
    for (let i = 0; i < n; i++) {
      const visited = counts[i * COUNTS_PER_REQUEST];
      const applied = counts[i * COUNTS_PER_REQUEST + 1];
      this.stat.layersVisited += visited;
      this.stat.recordsApplied += applied;
      this.visitedHist.record(visited);
      this.appliedHist.record(applied);
    }
  }

  /**
   * Encode the read plan (read_plan.ts) into the timeline's reusable writer: per key, this timeline
   * and each ancestor below its branch point, with their in-memory records. Validates keys.
   */
  private buildPlan(keys: ReadonlyArray<PageKey | Buffer>, lsn: Lsn): Buffer {
    const w = this.planWriter.reset();
    for (const k of keys) {
      const { buf, offset } = w.beginRequest();
      if (Buffer.isBuffer(k)) k.copy(buf, offset, 0, KEY_SIZE);
      else encodeKey(k, buf, offset);
      // The in-memory layers are keyed by a latin1 string of the key: only built when one of the
      // timelines has records in memory (after a flush none has, and hashing it is measurable).
      let keyId: string | null = null;
      let cap = lsn;
      for (let t: Timeline | null = this; t !== null; t = t.ancestor) {
        w.beginSegment(t.mapId, cap);
        if (t.hasInMemoryRecords()) {
          keyId ??= buf.toString('latin1', offset, offset + KEY_SIZE);
          if (t.collectInMemory(keyId, cap, w)) break;
        }
        if (t.ancestorLsn !== null && t.ancestorLsn < cap) cap = t.ancestorLsn;
      }
    }
    return w.finish();
  }

  private hasInMemoryRecords(): boolean {
    return !this.open.isEmpty || this.frozen.length > 0;
  }

  /** Records from the open and frozen layers, newest first; true when the chain is complete. */
  private collectInMemory(keyId: string, cap: Lsn, w: ReadPlanWriter): boolean {
    if (this.open.collect(keyId, cap, w)) return true;
    for (let i = this.frozen.length - 1; i >= 0; i--) {
      if (this.frozen[i].collect(keyId, cap, w)) return true;
    }
    return false;
  }

  private waitForLsn(lsn: Lsn, timeoutMs: number): Promise<void> {
    if (lsn <= this._lastRecordLsn) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new StrataError('LSN_TIMEOUT', `${this.name}: LSN ${formatLsn(lsn)} not reached within ${timeoutMs} ms (lastRecordLsn ${formatLsn(this._lastRecordLsn)})`));
      }, timeoutMs);
      const waiter: LsnWaiter = { lsn, resolve: () => { clearTimeout(timer); resolve(); } };
      this.waiters.push(waiter);
    });
  }

  private wakeWaiters(): void {
    if (this.waiters.length === 0) return;
    const ready = this.waiters.filter((w) => w.lsn <= this._lastRecordLsn);
    this.waiters = this.waiters.filter((w) => w.lsn > this._lastRecordLsn);
    for (const w of ready) w.resolve();
  }

  // ---- writes --------------------------------------------------------------------------------

  private enqueue(job: () => Promise<void>): Promise<void> {
    const run = this.serial.then(job);
    this.serial = run.catch(() => undefined);
    return run;
  }

  private freezeOpenLayer(): void {
    this.frozen.push(this.open);
    this.open = new InMemoryLayer(this.open.endLsn);
  }

  private async flushFrozen(): Promise<void> {
    while (this.frozen.length > 0) {
      const started = performance.now();
      await this.flushOne(this.frozen[0]);
      await this.applyBackpressure(performance.now() - started);
    }
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
    if (stall > 0 && this.level0().length >= stall) {
      this.stat.flushStalls++;
      const report = emptyCompactionReport();
      while (this.level0().length >= stall) await compactLevel0(this.compactionHost(), true, report);
    } else if (delay > 0 && this.level0().length >= delay) {
      this.stat.flushDelays++;
      await new Promise((resolve) => setTimeout(resolve, Math.ceil(flushMs)));
    }
  }

  /** @internal For the background scheduler: whether compact() would merge L0 layers now. */
  needsCompaction(): boolean {
    return this.level0().length >= this.config.compactionThreshold;
  }

  /** @internal For the background scheduler: when the open layer took its first record (ms), or null. */
  get openLayerSince(): number | null {
    return this.open.firstPutAt;
  }

  /** Write one frozen layer as an L0 delta, publish it in the manifest, then swap it in for readers. */
  private async flushOne(layer: InMemoryLayer): Promise<void> {
    const lsnStart = layer.startLsn + 1n;
    const lsnEnd = layer.endLsn + 1n;
    const fileName = deltaFileName(KEY_MIN, KEY_MAX, lsnStart, lsnEnd);
    const codec = CODEC_BY_NAME[this.config.compression];
    const sizeBytes = await this.writeLayerFile(fileName, 'delta', lsnStart, lsnEnd, FULL_KEYSPACE, async (append) => {
      let batch = new EntryBatch(DELTA_INDEX_KEY_SIZE);
      for (const h of layer.sortedHistories()) {
        for (let i = 0; i < h.lsns.length; i++) {
          batch.add(h.key, h.lsns[i], encodeBlob(codec, h.records[i]), recordWillInit(h.records[i]));
          if (batch.count >= WRITE_BATCH_ENTRIES) {
            append(batch);
            batch = new EntryBatch(DELTA_INDEX_KEY_SIZE);
            await yieldToEventLoop();
          }
        }
      }
      append(batch);
    });
    const desc: LayerDesc = {
      fileName, kind: 'delta', level: 0, keyStart: keyToHex(KEY_MIN), keyEnd: keyToHex(KEY_MAX), lsnStart, lsnEnd, sizeBytes,
    };
    this.publishLayer(desc, layer.endLsn);
    this.frozen.shift();
    this.stat.bytesFlushed += sizeBytes;
  }

  /** Materialize the pages of `keys` (sorted, inside `range`) at `lsn` as one image layer over `range`. */
  private async writeImageLayer(lsn: Lsn, range: KeyRange = FULL_KEYSPACE, keys: readonly Buffer[] = this.allKeys()): Promise<LayerInfo> {
    const fileName = imageFileName(range.keyStart, range.keyEnd, lsn);
    const existing = this.historic.find((l) => l.desc.fileName === fileName);
    if (existing) return { ...existing.desc };
    const codec = CODEC_BY_NAME[this.config.compression];
    const sizeBytes = await this.writeLayerFile(fileName, 'image', lsn, lsn + 1n, range, async (append) => {
      const out = Buffer.allocUnsafe(PAGE_SIZE * IMAGE_BATCH_KEYS);
      const status = new Uint8Array(IMAGE_BATCH_KEYS);
      const counts = new Uint32Array(IMAGE_BATCH_KEYS * COUNTS_PER_REQUEST);
      for (let start = 0; start < keys.length; start += IMAGE_BATCH_KEYS) {
        const chunk = keys.slice(start, start + IMAGE_BATCH_KEYS);
        const n = chunk.length;
        this.readInto(chunk, lsn, out.subarray(0, n * PAGE_SIZE), status.subarray(0, n), counts.subarray(0, n * COUNTS_PER_REQUEST), false);
        const batch = new EntryBatch(KEY_SIZE);
        for (let i = 0; i < chunk.length; i++) {
          if (status[i] !== PAGE_STATUS_OK) continue; // no page at this LSN: absent from the image
          batch.add(chunk[i], null, encodeBlob(codec, imageRecord(out.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE))), true);
        }
        append(batch);
        await yieldToEventLoop();
      }
    });
    const desc: LayerDesc = {
      fileName, kind: 'image', level: 0, keyStart: keyToHex(range.keyStart), keyEnd: keyToHex(range.keyEnd), lsnStart: lsn, lsnEnd: lsn + 1n, sizeBytes,
    };
    this.publishLayer(desc, this._diskConsistentLsn);
    this.stat.bytesImages += sizeBytes;
    return { ...desc };
  }

  /** Every key with any record in this timeline or the part of its ancestors it can see, sorted. */
  private allKeys(): Buffer[] {
    const seen = new Map<string, Buffer>();
    const add = (k: Buffer): void => { seen.set(k.toString('latin1'), k); };
    for (let t: Timeline | null = this; t !== null; t = t.ancestor) {
      for (const l of t.historic) {
        const packed = this.core.layerKeys(l.handle);
        for (let o = 0; o < packed.length; o += KEY_SIZE) add(Buffer.from(packed.subarray(o, o + KEY_SIZE)));
      }
      for (const m of [t.open, ...t.frozen]) m.keys().forEach(add);
    }
    return [...seen.values()].sort(Buffer.compare);
  }

  /** Stream a layer into `<name>.tmp`, fsync, rename, fsync the directory. Returns its size. */
  private async writeLayerFile(
    fileName: string, kind: LayerKind, lsnStart: Lsn, lsnEnd: Lsn, keys: KeyRange,
    produce: (append: (b: EntryBatch) => void) => Promise<void>,
  ): Promise<number> {
    const tmp = path.join(this.dir, fileName + TMP_SUFFIX);
    const writer = this.core.createLayerWriter(tmp, {
      kind, codec: CODEC_BY_NAME[this.config.compression], keyStart: keys.keyStart, keyEnd: keys.keyEnd, lsnStart, lsnEnd,
    });
    let size: number;
    try {
      await produce((b) => { if (b.count > 0) writer.append(b.indexKeys(), Buffer.concat(b.blobs), b.willInit()); });
      size = writer.finish();
    } catch (e) {
      writer.abort();
      fs.rmSync(tmp, { force: true });
      throw e;
    }
    wrapIo(`publishing ${fileName}`, () => publishFile(tmp, path.join(this.dir, fileName)));
    return size;
  }

  /** Make a new layer part of the timeline (flush, image creation). */
  private publishLayer(desc: LayerDesc, diskConsistentLsn: Lsn): void {
    this.replaceLayers([], [desc], { diskConsistentLsn });
  }

  /**
   * Swap layers: the manifest first (the durable commit point), then the layer map, in one
   * synchronous step so a reader sees each record exactly once; then removed files go. Core reads
   * are synchronous calls, so once the map is replaced no read can still be using a removed layer.
   * A crash before the files are deleted leaves orphans that the next open removes.
   */
  private replaceLayers(removedNames: readonly string[], added: readonly LayerDesc[], patch: Partial<Pick<Manifest, 'diskConsistentLsn' | 'gcCutoffLsn'>>): void {
    const removed = new Set(removedNames);
    const opened: HistoricLayer[] = [];
    try {
      for (const desc of added) opened.push({ desc, handle: this.openLayerFile(desc) });
      const next = [...this.historic.filter((l) => !removed.has(l.desc.fileName)), ...opened];
      writeManifest(path.join(this.dir, MANIFEST_FILE), { ...this.manifest(), ...patch, layers: next.map((l) => l.desc) });
      const gone = this.historic.filter((l) => removed.has(l.desc.fileName));
      this.historic = next;
      if (patch.diskConsistentLsn !== undefined) this._diskConsistentLsn = patch.diskConsistentLsn;
      if (patch.gcCutoffLsn !== undefined) this._gcCutoffLsn = patch.gcCutoffLsn;
      this.core.setLayerMap(this.mapId, next.map((l) => l.handle));
      opened.length = 0;
      this.deleteLayerFiles(gone);
    } catch (e) {
      for (const l of opened) this.core.closeLayer(l.handle);
      if (e instanceof StrataError) throw e;
      throw new StrataError('IO_ERROR', `${this.name}: replacing layers: ${(e as Error).message}`, { cause: e });
    }
  }

  private deleteLayerFiles(gone: readonly HistoricLayer[]): void {
    if (gone.length === 0) return;
    for (const l of gone) {
      this.core.closeLayer(l.handle);
      fs.rmSync(path.join(this.dir, l.desc.fileName), { force: true });
    }
    wrapIo(`${this.name}: syncing the directory`, () => fsyncDir(this.dir));
  }

  /** What compaction and image creation (compaction.ts) may see and do; closures keep the rest private. */
  private compactionHost(): CompactionHost {
    return {
      dir: this.dir,
      config: this.config,
      diskConsistentLsn: this._diskConsistentLsn,
      imageFloorLsn: this._gcCutoffLsn > this.startLsn ? this._gcCutoffLsn : this.startLsn + 1n,
      layers: () => this.historic.map((l) => l.desc),
      allKeys: () => this.allKeys(),
      writeLayer: (fileName, kind, lsnStart, lsnEnd, keys, produce) => this.writeLayerFile(fileName, kind, lsnStart, lsnEnd, keys, produce),
      writeImage: (lsn, range, keys) => this.writeImageLayer(lsn, range, keys),
      replaceLayers: (removed, added) => {
        this.replaceLayers(removed, added, {});
        this.stat.bytesCompacted += added.reduce((n, d) => n + d.sizeBytes, 0);
      },
    };
  }

  private openLayerFile(desc: LayerDesc): number {
    return this.core.openLayer(path.join(this.dir, desc.fileName));
  }

  private releaseHandles(): void {
    this.core.dropLayerMap(this.mapId);
    for (const l of this.historic) this.core.closeLayer(l.handle);
    this.historic = [];
  }
}

/** An all-zero page is stored as a 1-byte zero record; anything else as a full image record. */
function imageRecord(page: Buffer): Buffer {
  if (isAllZero(page)) return Buffer.of(RECORD_TAG_ZERO);
  const rec = Buffer.allocUnsafe(1 + PAGE_SIZE);
  rec[0] = RECORD_TAG_IMAGE;
  page.copy(rec, 1);
  return rec;
}

const ZERO_PAGE = Buffer.alloc(PAGE_SIZE);
function isAllZero(page: Buffer): boolean {
  return page.equals(ZERO_PAGE);
}

