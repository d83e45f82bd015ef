/**
 * A repository directory inside the engine: tenants → timelines → layer files, sharing one core
 * (and so one page cache). A writable open takes the directory's lock (repo_lock.ts) and cleans up
 * what a crash left behind (temp files, layers no manifest names); a read-only open does neither.
 * Users see it through the public facade in lib/repository.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Core, ImplementationName, PageCachePolicy, PageCacheStats } from '../core/core';
import { DEFAULT_MAX_OPEN_LAYER_FILES, MIN_PAGE_CACHE_PAGES, PAGE_CACHE_POLICIES } from '../core/core';
import { codecAvailable } from '../core/compress';
import { describeValue, isStrataError, StrataError } from '../errors';
import { parseJsonObject } from '../json_object';
import { BLOCK_SIZE, CODEC_BY_NAME, CODEC_NAMES, type CompressionName } from '../core/format';
import { fsyncDir, mkdirDurable, TMP_SUFFIX, wrapIo, writeFileAtomic } from '../fs_util';
import { checkLsn, formatLsn, type Lsn } from '../lsn';
import { collectMetrics, type MetricFamily, renderMetrics } from './metrics';
import { type Manifest, MANIFEST_FILE, readManifest, writeManifest } from './manifest';
import { createCore, type ImplementationChoice, resolveImplementation } from '../core/select';
import { BackgroundScheduler, type BackgroundOptions, type BackgroundStats } from './background';
import { DecodedPageCache, type DecodedPageCacheStats } from './decoded_page_cache';
import { TimelineImpl, type TimelineConfig, type TimelineStats } from './timeline';
import { RepositoryLock } from './repo_lock';
import { openRemoteStorage } from '../remote/open_remote_storage';
import type { RemoteConfig, RemoteStorage, RemoteStorageOptions } from '../remote/remote_storage';
import { checkGeneration, decodeIndex, INDEX_NAME, type IndexPart, layerKey, splitGeneration, tenantPrefix, timelinePrefix } from './remote_layout';
import { acquireGeneration, defaultNodeName, IMPLICIT_GENERATION, type LocalAttachment, newAttachmentId, TenantFence } from './attachment';
import { RemoteTimelineClient } from './remote_timeline_client';
import { type RemoteRetryOptions, resolveRetryOptions } from './upload_queue';
import { LocalLayerCache, type LocalLayerStats } from './eviction';
import { DEFAULT_HEAT_IMAGE_BUDGET } from './read_heat';
import { readRemoteOnly, REMOTE_LAYERS_FILE, writeRemoteOnly } from './layer_residency';

export const DEFAULT_PAGE_CACHE_BYTES = 64 * 1024 * 1024;       // Neon's default: 8192 pages
export const DEFAULT_DECODED_PAGE_CACHE_BYTES = 16 * 1024 * 1024; // 2048 whole pages
export const DEFAULT_PAGE_CACHE_POLICY: PageCachePolicy = 'clock'; // Neon's (and PostgreSQL's)

/**
 * The policy when the caller names none: STRATA_PAGE_CACHE_POLICY if set (so a whole test suite
 * can run under another policy), else DEFAULT_PAGE_CACHE_POLICY.
 */
function defaultPageCachePolicy(): PageCachePolicy {
  const v = process.env.STRATA_PAGE_CACHE_POLICY;
  if (v === undefined || v === '') return DEFAULT_PAGE_CACHE_POLICY;
  if (!(PAGE_CACHE_POLICIES as readonly string[]).includes(v)) {
    throw new StrataError('BAD_ARGUMENT', `STRATA_PAGE_CACHE_POLICY must be one of ${PAGE_CACHE_POLICIES.join(', ')}: got ${JSON.stringify(v)}`);
  }
  return v as PageCachePolicy;
}
export const DEFAULT_CHECKPOINT_DISTANCE = 256 * 1024 * 1024;   // bytes of WAL per L0 layer
/** Frozen layers the async ingest paths let wait for their flush: one flushing, one queued behind it. */
export const DEFAULT_MAX_FROZEN_LAYERS = 2;
// Compaction and GC defaults are Neon's (docs/ARCHITECTURE.md, "Compaction").
export const DEFAULT_COMPACTION_THRESHOLD = 10;                 // L0 layers
export const DEFAULT_COMPACTION_UPPER_LIMIT = 20;               // L0 layers merged at most per run
export const DEFAULT_COMPACTION_TARGET_SIZE = 128 * 1024 * 1024; // bytes per L1 layer
export const DEFAULT_IMAGE_CREATION_THRESHOLD = 3;              // stacked delta layers
export { DEFAULT_HEAT_IMAGE_BUDGET };
/** Doubling the bytes written for read heat is already more than any read saving justifies. */
export const MAX_HEAT_IMAGE_BUDGET = 1;
export const DEFAULT_GC_HORIZON = 64n * 1024n * 1024n;          // LSN bytes of history kept
export const L0_FLUSH_DELAY_FACTOR = 3;                         // × compactionThreshold (Neon: 30 L0s)
export const L0_FLUSH_STALL_FACTOR = 5;                         // × compactionThreshold (Neon has stalls off)
export const DEFAULT_BACKGROUND: Readonly<BackgroundOptions> = Object.freeze({
  periodMs: 20_000,            // Neon's compaction_period
  gcPeriodMs: 60 * 60_000,     // Neon's gc_period
  checkpointTimeoutMs: 10 * 60_000, // Neon's checkpoint_timeout
  concurrency: 1,              // a 2-core machine: one compaction at a time leaves a core for reads
});
const REPO_MARKER = 'strata.json';
const REPO_FORMAT = 1;
const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export interface RepositoryOptions {
  /** 'auto' (default, or STRATA_IMPL) uses the C++ core when the addon loads. */
  implementation?: ImplementationChoice;
  pageCacheBytes?: number;
  /**
   * Page-cache eviction: 'clock' (default, or STRATA_PAGE_CACHE_POLICY: usage-count clock), 's3fifo'
   * or 'adaptive-s3fifo' (docs/ARCHITECTURE.md).
   */
  pageCachePolicy?: PageCachePolicy;
  /**
   * Bytes of whole reconstructed pages kept for repeated reads at the timeline's newest LSN
   * (decoded_page_cache.ts; rounded down to 8 KB pages): a hit is a hash lookup and one copy. 0
   * turns it off. Default DEFAULT_DECODED_PAGE_CACHE_BYTES.
   */
  decodedPageCacheBytes?: number;
  /**
   * Layer-file descriptors held open at once (default 256, DEFAULT_MAX_OPEN_LAYER_FILES): past it
   * the least recently read layer's file is closed and reopened when next read, so a timeline of
   * thousands of layers does not hold thousands of descriptors.
   */
  maxOpenLayerFiles?: number;
  /** Bytes of records in the open layer before it is frozen and flushed as an L0 layer. */
  checkpointDistance?: number;
  /**
   * Frozen in-memory layers (each about checkpointDistance) past which ingestAsync and the
   * PostgreSQL WAL ingest (ingestPgWal, followPostgres) wait for flushes; 0 waits until every
   * frozen layer is flushed. Sync ingest() does not wait (docs/RELIABILITY.md, "Resource limits").
   */
  maxFrozenLayers?: number;
  /** Codec for values in new layer files: 'lz4' (default), 'zstd' or 'none'. */
  compression?: CompressionName;
  compactionThreshold?: number;
  compactionUpperLimit?: number;
  compactionTargetSize?: number;
  imageCreationThreshold?: number;
  /**
   * Heat-driven images (docs/ARCHITECTURE.md): bytes of image layers written for often-read keys
   * with long reconstruct chains, per byte the timeline otherwise writes (flushes, compaction,
   * partition images); 0 turns it off. Default 0.2.
   */
  heatImageBudget?: number;
  /** History kept below lastRecordLsn by gc(), in LSN bytes. */
  gcHorizon?: bigint;
  /** L0 backpressure thresholds (docs/ARCHITECTURE.md); 0 turns one off. */
  l0FlushDelayThreshold?: number;
  l0FlushStallThreshold?: number;
  /**
   * getPage/getPages send every read to the libuv thread pool (true), or only reads that need the
   * disk (false, default): a read served from cached blocks finishes on the calling thread, since
   * on this kind of machine the thread round trip costs several times such a read. Native core
   * only; the TS core always reads on the calling thread.
   */
  offloadCachedReads?: boolean;
  /** Start the background scheduler (flush, compaction, images, GC) on open. */
  background?: boolean;
  /** Scheduler settings; defaults in DEFAULT_BACKGROUND. */
  backgroundOptions?: Partial<BackgroundOptions>;
  /**
   * Open for inspection: no lock, no crash cleanup, nothing written; every write fails with
   * READ_ONLY. It sees the repository as it was when opened, and may coexist with a writer.
   */
  readOnly?: boolean;
  /**
   * Remote storage every layer and timeline index is uploaded to (docs/REMOTE.md):
   * `{ type: 'local', path }` or `{ type: 's3', bucket, endpoint?, region?, prefix?, forcePathStyle? }`.
   */
  remote?: RemoteConfig;
  /**
   * An already opened RemoteStorage instead of `remote` (a backend of one's own, or a wrapper that
   * injects failures in tests); the repository does not close it.
   */
  remoteStorage?: RemoteStorage;
  /** What is not configuration for the storage `remote` opens: S3 credentials, timeouts (RemoteStorageOptions). */
  remoteStorageOptions?: RemoteStorageOptions;
  /** Backoff of the upload queue's retries; defaults in DEFAULT_REMOTE_RETRY. */
  remoteRetry?: Partial<RemoteRetryOptions>;
  /**
   * With a remote: bytes of layer files kept on local disk; beyond it, layers already in a durable
   * remote index are evicted least recently used first and downloaded again when a read needs them
   * (docs/REMOTE.md). Default: no budget.
   */
  localLayerBudgetBytes?: number;
}

type ResolvedOptions = Required<Omit<RepositoryOptions, 'implementation' | 'background' | 'backgroundOptions' | 'remote' | 'remoteStorage' | 'remoteStorageOptions' | 'remoteRetry' | 'localLayerBudgetBytes'>>;

export interface AttachTenantOptions {
  /**
   * The attachment's generation (a control plane's number, never issued twice). Default: 1 for a
   * tenant remote storage does not know, else one above the newest generation found there.
   */
  generation?: number;
  /**
   * 'onDemand' (default): download only the indexes; layers come when a read (or a compaction)
   * needs them. 'eager': download every layer before attachTenant resolves.
   */
  download?: 'eager' | 'onDemand';
}

export interface DetachTenantReport {
  tenantId: string;
  generation: number;
  /** Timelines closed and removed from this node. */
  timelines: string[];
  /**
   * The tenant's generation here was stale: a newer attachment holds the tenant, so the final
   * upload was refused and whatever this node held beyond the remote state is dropped.
   */
  stale: boolean;
}

export interface AttachTenantReport {
  tenantId: string;
  generation: number;
  /** Timelines attached from remote storage (none when the tenant was already here). */
  timelines: string[];
  layersDownloaded: number;
  bytesDownloaded: number;
  /** Layers left in remote storage, to be downloaded on demand, and their bytes. */
  layersRemote: number;
  bytesRemote: number;
}

/** The repository's remote storage and the settings its upload queues share. */
interface RemoteSetup {
  storage: RemoteStorage;
  ownsStorage: boolean;
  retry: RemoteRetryOptions;
  /** Local layer files as a cache of the remote: on-demand downloads and eviction. */
  cache: LocalLayerCache;
}

const TENANT_REMOTE_FILE = 'remote.json';

export interface CreateTimelineOptions {
  tenantId: string;
  timelineId: string;
  ancestorTimelineId?: string;
  /** Branch point; defaults to the ancestor's lastRecordLsn. */
  ancestorLsn?: Lsn;
}

export interface RepositoryStats {
  implementation: ImplementationName;
  pageCache: PageCacheStats;
  /** The decoded-page cache; capacityPages 0 when it is off. */
  decodedPageCache: DecodedPageCacheStats;
  background: BackgroundStats;
  timelines: TimelineStats[];
  /** Local layer files against remote storage (docs/REMOTE.md); null without a remote. */
  localLayers: LocalLayerStats | null;
}

export class RepositoryImpl {
  readonly dir: string;
  readonly implementation: ImplementationName;
  private readonly timelines = new Map<string, TimelineImpl>();
  private closed = false;
  /** Read by the scheduler on every round, so startBackground() can change it. */
  private readonly backgroundOpts: BackgroundOptions = { ...DEFAULT_BACKGROUND };
  private readonly scheduler: BackgroundScheduler;
  /** Whole pages for repeated reads, shared by every timeline (each has its own index into it). */
  private readonly decodedPages: DecodedPageCache;

  private remote: RemoteSetup | null = null;

  get hasRemoteStorage(): boolean {
    return this.remote !== null;
  }
  /** Names this node in attachment objects (for people reading them). */
  private readonly nodeName: string;
  /** Each tenant's attachment (generation and id), for tenants attached to remote storage. */
  private readonly attachments = new Map<string, LocalAttachment>();
  /** Each attached tenant's fence, shared by its timelines' upload queues (attachment.ts). */
  private readonly fences = new Map<string, TenantFence>();

  private constructor(dir: string, private readonly core: Core, private readonly opts: ResolvedOptions, private readonly lock: RepositoryLock | null) {
    this.dir = dir;
    this.implementation = core.implementation;
    this.nodeName = defaultNodeName(dir);
    this.scheduler = new BackgroundScheduler(() => [...this.timelines.values()], this.backgroundOpts);
    this.decodedPages = new DecodedPageCache(opts.decodedPageCacheBytes);
  }

  get readOnly(): boolean {
    return this.lock === null;
  }

  static async open(dir: string, options: RepositoryOptions = {}): Promise<RepositoryImpl> {
    if (typeof dir !== 'string' || dir === '' || dir.includes('\0')) {
      throw new StrataError('BAD_ARGUMENT', `the repository directory must be a non-empty path: got ${describeValue(dir)}`);
    }
    if (typeof options !== 'object' || options === null) throw new StrataError('BAD_ARGUMENT', `repository options must be an object: got ${describeValue(options)}`);
    const opts = resolveOptions(options);
    if (opts.readOnly && (options.remote !== undefined || options.remoteStorage !== undefined)) {
      throw new StrataError('BAD_ARGUMENT', 'a read-only repository uploads nothing: remote needs a writable open');
    }
    const impl = resolveImplementation(options.implementation);
    const root = path.resolve(dir);
    const lock = opts.readOnly ? null : prepareWritable(root);
    let core: Core | null = null;
    try {
      checkMarker(path.join(root, REPO_MARKER));
      core = createCore(impl, { pageCacheBytes: opts.pageCacheBytes, pageCachePolicy: opts.pageCachePolicy, maxOpenLayerFiles: opts.maxOpenLayerFiles });
    } catch (e) {
      lock?.release();
      throw e;
    }
    const repo = new RepositoryImpl(root, core, opts, lock);
    try {
      if (options.remote !== undefined || options.remoteStorage !== undefined) {
        if (options.remote !== undefined && options.remoteStorage !== undefined) throw new StrataError('BAD_ARGUMENT', 'remote and remoteStorage exclude each other');
        const retry = resolveRetryOptions(options.remoteRetry);
        const budget = options.localLayerBudgetBytes === undefined ? null : nonNegativeInt(options.localLayerBudgetBytes, 0, 'localLayerBudgetBytes');
        const storage = options.remoteStorage ?? await openRemoteStorage(options.remote as RemoteConfig, options.remoteStorageOptions);
        repo.remote = { storage, ownsStorage: options.remoteStorage === undefined, retry, cache: new LocalLayerCache(storage, budget) };
      } else if (options.localLayerBudgetBytes !== undefined) {
        throw new StrataError('BAD_ARGUMENT', 'localLayerBudgetBytes needs a remote: only layers in remote storage can be evicted');
      }
      repo.loadTimelines();
      repo.startRemoteClients(repo.listTimelinesUnchecked(), new Map());
    } catch (e) {
      await repo.close().catch(() => undefined);
      throw e;
    }
    if (options.background === true) repo.startBackground(options.backgroundOptions);
    return repo;
  }

  /** Start the background scheduler (docs/ARCHITECTURE.md, "Background work"). */
  startBackground(opts: Partial<BackgroundOptions> = {}): void {
    this.checkWritable('startBackground');
    Object.assign(this.backgroundOpts, checkBackgroundOptions(opts));
    this.scheduler.start();
  }

  /** Stop the scheduler and wait for its jobs in flight. */
  async stopBackground(): Promise<void> {
    await this.scheduler.stop();
  }

  /** One round of background work now, whether or not the scheduler runs. */
  async runBackgroundOnce(): Promise<void> {
    this.checkOpen();
    await this.scheduler.runOnce();
  }


  async createTimeline(o: CreateTimelineOptions): Promise<TimelineImpl> {
    this.checkWritable('createTimeline');
    checkId(o?.tenantId, 'tenantId');
    checkId(o.timelineId, 'timelineId');
    if (this.timelines.has(tlKey(o.tenantId, o.timelineId))) {
      throw new StrataError('TIMELINE_EXISTS', `timeline ${o.tenantId}/${o.timelineId} already exists`);
    }
    let ancestor: TimelineImpl | null = null;
    let ancestorLsn: Lsn | null = null;
    if (o.ancestorTimelineId !== undefined) {
      ancestor = this.getTimeline(o.tenantId, o.ancestorTimelineId);
      ancestorLsn = o.ancestorLsn ?? ancestor.lastRecordLsn;
      checkLsn(ancestorLsn, 'ancestorLsn');
      if (ancestorLsn > ancestor.lastRecordLsn) {
        throw new StrataError('LSN_TIMEOUT', `branch point ${formatLsn(ancestorLsn)} is above ${o.tenantId}/${o.ancestorTimelineId}'s lastRecordLsn ${formatLsn(ancestor.lastRecordLsn)}`);
      }
      ancestor.checkAboveGcCutoff(ancestorLsn, 'branch point');
      // The branch point must be durable before the branch is: the child reads it from disk after a crash.
      if (ancestor.diskConsistentLsn < ancestorLsn) await ancestor.flush();
      // GC may have run while we waited; from here to registering the child nothing awaits.
      ancestor.checkAboveGcCutoff(ancestorLsn, 'branch point');
    } else if (o.ancestorLsn !== undefined) {
      throw new StrataError('BAD_ARGUMENT', 'ancestorLsn given without ancestorTimelineId');
    }
    const key = tlKey(o.tenantId, o.timelineId);
    if (this.timelines.has(key)) throw new StrataError('TIMELINE_EXISTS', `timeline ${o.tenantId}/${o.timelineId} already exists`);
    const dir = this.timelineDir(o.tenantId, o.timelineId);
    const startLsn = ancestorLsn ?? 0n;
    const manifest: Manifest = {
      tenantId: o.tenantId,
      timelineId: o.timelineId,
      ancestorTimelineId: o.ancestorTimelineId ?? null,
      ancestorLsn,
      startLsn,
      diskConsistentLsn: startLsn,
      // Reads below the ancestor's cutoff at branch time may already miss layers.
      gcCutoffLsn: ancestor?.gcCutoffLsn ?? 0n,
      compression: this.opts.compression,
      layers: [],
      // A branch follows what its ancestor follows (a PostgreSQL cluster, say).
      extensions: ancestor?.extensions ?? {},
    };
    mkdirDurable(dir);
    if (this.remote !== null && !this.attachments.has(o.tenantId)) this.setAttachment(o.tenantId, { generation: IMPLICIT_GENERATION, attachmentId: newAttachmentId() });
    writeManifest(path.join(dir, MANIFEST_FILE), manifest);
    const tl = new TimelineImpl(this.core, dir, manifest, ancestor, this.timelineConfig(), this.decodedPages);
    this.timelines.set(key, tl);
    this.startRemoteClients([tl], new Map());
    return tl;
  }

  /**
   * Attach a tenant with a generation (docs/REMOTE.md, "Generations and attach", "Fencing"). The
   * generation is the caller's or the next one, recorded in the tenant's attachment object by a
   * compare-and-swap (attachment.ts) before anything else is read. A tenant it does not hold is
   * then attached: for each timeline the newest index; its layers are downloaded when a read needs
   * them (`download: 'onDemand'`, the default) or all before this resolves ('eager'). The new
   * generation then uploads its own index.
   * A tenant this repository holds keeps its generation, or moves to the one given when that is
   * above it and no other node attached the tenant meanwhile. STALE_GENERATION: the generation
   * given is not above every generation remote storage already has for the tenant, or the tenant
   * here is stale.
   */
  async attachTenant(tenantId: string, o: AttachTenantOptions = {}): Promise<AttachTenantReport> {
    this.checkWritable('attachTenant');
    checkId(tenantId, 'tenantId');
    if (o.generation !== undefined) checkGeneration(o.generation, 'generation');
    const eager = o.download === 'eager';
    if (o.download !== undefined && !eager && o.download !== 'onDemand') {
      throw new StrataError('BAD_ARGUMENT', `attachTenant ${tenantId}: download must be 'eager' or 'onDemand': got ${describeValue(o.download)}`);
    }
    const remote = this.remote;
    if (remote === null) throw new StrataError('BAD_ARGUMENT', `attachTenant ${tenantId}: the repository has no remote storage (Repository.open's remote option)`);
    if (this.attachments.has(tenantId) || this.listTimelinesUnchecked().some((t) => t.tenantId === tenantId)) {
      const g = this.loadAttachment(tenantId).generation;
      if (o.generation !== undefined && o.generation !== g) await this.changeGeneration(tenantId, o.generation);
      return { tenantId, generation: this.loadAttachment(tenantId).generation, timelines: [], layersDownloaded: 0, bytesDownloaded: 0, layersRemote: 0, bytesRemote: 0 };
    }
    // Fencing first: the indexes are read only after this attachment won its compare-and-swap,
    // so an older generation's later deletions never touch what they name (docs/REMOTE.md).
    const attachment = await acquireGeneration(remote.storage, tenantId, this.nodeName, o.generation);
    const generation = attachment.generation;
    const prefix = tenantPrefix(tenantId);
    const objects = await remote.storage.list(prefix);
    // The newest index per timeline (all are below `generation`).
    const newestIndex = new Map<string, { key: string; generation: number }>();
    for (const obj of objects) {
      const parts = obj.key.slice(prefix.length).split('/');
      if (parts.length !== 2 || !ID_PATTERN.test(parts[0])) continue;
      const parsed = splitGeneration(parts[1]);
      if (parsed === null || parsed.name !== INDEX_NAME || parsed.generation > generation) continue;
      const prev = newestIndex.get(parts[0]);
      if (prev === undefined || parsed.generation > prev.generation) newestIndex.set(parts[0], { key: obj.key, generation: parsed.generation });
    }
    const indexes = new Map<string, IndexPart>();
    const report: AttachTenantReport = { tenantId, generation, timelines: [], layersDownloaded: 0, bytesDownloaded: 0, layersRemote: 0, bytesRemote: 0 };
    for (const [timelineId, { key }] of newestIndex) {
      const idx = decodeIndex(key, await remote.storage.get(key));
      if (idx.manifest.tenantId !== tenantId || idx.manifest.timelineId !== timelineId) {
        throw new StrataError('CORRUPT_MANIFEST', `remote index ${key}: names ${idx.manifest.tenantId}/${idx.manifest.timelineId}`);
      }
      const dir = this.timelineDir(tenantId, timelineId);
      mkdirDurable(dir);
      if (!eager) {
        // Before the manifest: a reopen must find every layer either here or listed as remote-only.
        writeRemoteOnly(dir, idx.layerGenerations);
        report.layersRemote += idx.manifest.layers.length;
        report.bytesRemote += idx.manifest.layers.reduce((n, l) => n + l.sizeBytes, 0);
        indexes.set(tlKey(tenantId, timelineId), idx);
        continue;
      }
      for (const l of idx.manifest.layers) {
        const file = path.join(dir, l.fileName);
        const info = await remote.storage.getToFile(layerKey(tenantId, timelineId, l.fileName, idx.layerGenerations.get(l.fileName) as number), file);
        if (info.size !== l.sizeBytes) throw new StrataError('CORRUPT_LAYER', `${file}: downloaded ${info.size} bytes, the remote index ${key} says ${l.sizeBytes}`);
        report.layersDownloaded++;
        report.bytesDownloaded += info.size;
      }
      indexes.set(tlKey(tenantId, timelineId), idx);
    }
    // The generation before any manifest: a timeline that exists locally must never upload under
    // another generation (a crash between the two would otherwise reopen it as generation 1).
    this.setAttachment(tenantId, attachment);
    // Manifests last: a crash before them leaves directories the next open removes (no manifest).
    for (const idx of indexes.values()) writeManifest(path.join(this.timelineDir(tenantId, idx.manifest.timelineId), MANIFEST_FILE), idx.manifest);
    const loaded = this.loadManifests(new Map([...indexes].map(([k, idx]) => [k, idx.manifest])));
    this.startRemoteClients(loaded, indexes);
    report.timelines = loaded.map((t) => t.timelineId).sort();
    return report;
  }

  /**
   * A held tenant moves to a higher generation given by the caller (a control plane re-issuing it):
   * only while this node is still the tenant's current attachment — otherwise another node has
   * written since, and this node's local state may be behind it (STALE_GENERATION: detach, then
   * attach). The upload queues stop, the attachment object moves by compare-and-swap, and new
   * queues upload under the new generation.
   */
  private async changeGeneration(tenantId: string, generation: number): Promise<void> {
    const remote = this.remote as RemoteSetup;
    const fence = this.fenceOf(remote, tenantId);
    if (generation < fence.attachment.generation) {
      throw new StrataError('STALE_GENERATION', `attachTenant ${tenantId}: generation ${generation} is below generation ${fence.attachment.generation}, which this node holds`);
    }
    await fence.validate(); // STALE_GENERATION when another node took the tenant
    const timelines = this.listTimelinesUnchecked().filter((t) => t.tenantId === tenantId).sort((a, b) => depth(a) - depth(b));
    for (const tl of timelines) await tl.detachRemote();
    let attachment: LocalAttachment;
    try {
      attachment = await acquireGeneration(remote.storage, tenantId, this.nodeName, generation);
    } catch (e) {
      this.startRemoteClients(timelines, new Map()); // unchanged: the old generation goes on
      throw e;
    }
    this.setAttachment(tenantId, attachment);
    this.fences.delete(tenantId);
    this.startRemoteClients(timelines, new Map());
  }

  /**
   * Hand a tenant back to remote storage (docs/REMOTE.md, "Detach"): flush every timeline, wait
   * until remote storage has it all (syncRemote), stop the upload queues, close the timelines and
   * remove the tenant's local files. Attaching it here or elsewhere then continues from the
   * uploaded state. A stale tenant (another node holds it) is detached without the final upload.
   * A storage failure rejects and leaves the tenant attached. Callers stop writing to the tenant
   * first: records ingested while detach runs may miss the final upload.
   */
  async detachTenant(tenantId: string): Promise<DetachTenantReport> {
    this.checkWritable('detachTenant');
    checkId(tenantId, 'tenantId');
    const remote = this.remote;
    if (remote === null) throw new StrataError('BAD_ARGUMENT', `detachTenant ${tenantId}: the repository has no remote storage to hand the tenant to (Repository.open's remote option)`);
    const timelines = this.listTimelinesUnchecked().filter((t) => t.tenantId === tenantId);
    if (timelines.length === 0) throw new StrataError('TIMELINE_NOT_FOUND', `detachTenant: no tenant ${tenantId} in ${this.dir}`);
    const generation = this.loadAttachment(tenantId).generation;
    let stale = false;
    try {
      for (const tl of timelines) await tl.flush();
      for (const tl of timelines) await tl.syncRemote();
    } catch (e) {
      if (!isStrataError(e, 'STALE_GENERATION')) throw e;
      stale = true;
    }
    const errors: unknown[] = [];
    for (const tl of timelines.sort((a, b) => depth(b) - depth(a))) await tl.close().catch((e: unknown) => errors.push(e));
    for (const tl of timelines) this.timelines.delete(tlKey(tenantId, tl.timelineId));
    this.attachments.delete(tenantId);
    this.fences.delete(tenantId);
    removeTenantDir(path.join(this.dir, 'tenants', tenantId), timelines.map((t) => t.dir));
    if (errors.length > 0) throw errors[0];
    return { tenantId, generation, timelines: timelines.map((t) => t.timelineId).sort(), stale };
  }

  /** A tenant's generation (attached to remote storage), or null. */
  tenantGeneration(tenantId: string): number | null {
    this.checkOpen();
    return this.attachments.get(tenantId)?.generation ?? null;
  }

  /**
   * Delete a timeline and its layer files — and, with a remote, its objects in remote storage
   * (indexes first, so an attach never finds half a timeline), after checking that this node's
   * generation is current (STALE_GENERATION otherwise, nothing deleted). Refused while branches of
   * it exist (their reads go through its layers). Crash-safe by order: the manifest goes first
   * (durably), and a timeline directory without a manifest is what loadTimelines already removes
   * as never having existed. A crash before the remote objects are gone leaves the timeline here,
   * to delete again.
   */
  async deleteTimeline(tenantId: string, timelineId: string): Promise<void> {
    this.checkWritable('deleteTimeline');
    const tl = this.getTimeline(tenantId, timelineId);
    const children = tl.childIds();
    if (children.length > 0) {
      throw new StrataError('BAD_ARGUMENT', `timeline ${tenantId}/${timelineId} has branches (${children.join(', ')}); delete them first`);
    }
    const remote = this.remote;
    if (remote !== null) await this.fenceOf(remote, tenantId).validate();
    // Closed while still registered: meanwhile reads fail with CLOSED and a createTimeline of the
    // same id with TIMELINE_EXISTS, so nothing new lands in the directory being removed.
    try {
      await tl.close();
    } catch {
      // A failed flush of a timeline being deleted loses nothing anyone will read.
    }
    if (remote !== null) await deleteTimelineObjects(remote.storage, timelinePrefix(tenantId, timelineId));
    const dir = this.timelineDir(tenantId, timelineId);
    wrapIo(`delete ${dir}/${MANIFEST_FILE}`, () => {
      fs.rmSync(path.join(dir, MANIFEST_FILE), { force: true });
      fsyncDir(dir);
    });
    this.timelines.delete(tlKey(tenantId, timelineId));
    wrapIo(`delete ${dir}`, () => {
      fs.rmSync(dir, { recursive: true, force: true });
      fsyncDir(path.dirname(dir));
    });
  }

  getTimeline(tenantId: string, timelineId: string): TimelineImpl {
    this.checkOpen();
    checkIdType(tenantId, 'tenantId');
    checkIdType(timelineId, 'timelineId');
    const tl = this.timelines.get(tlKey(tenantId, timelineId));
    if (!tl) throw new StrataError('TIMELINE_NOT_FOUND', `no timeline ${tenantId}/${timelineId}`);
    return tl;
  }

  listTimelines(tenantId: string): TimelineImpl[] {
    this.checkOpen();
    checkIdType(tenantId, 'tenantId');
    return [...this.timelines.values()].filter((t) => t.tenantId === tenantId);
  }

  listTenants(): string[] {
    this.checkOpen();
    return [...new Set([...this.timelines.values()].map((t) => t.tenantId))].sort();
  }

  stats(): RepositoryStats {
    this.checkOpen();
    return {
      implementation: this.implementation,
      pageCache: this.core.pageCache.stats(),
      decodedPageCache: this.decodedPages.stats(),
      background: this.scheduler.stats(),
      timelines: [...this.timelines.values()].map((t) => t.stats()),
      localLayers: this.remote?.cache.stats() ?? null,
    };
  }

  /** Every metric in Prometheus text format, labelled by tenant and timeline. */
  metricFamilies(): MetricFamily[] {
    this.checkOpen();
    return collectMetrics(this.implementation, this.core.pageCache.stats(), this.decodedPages.stats(), [...this.timelines.values()]);
  }

  metricsText(): string {
    this.checkOpen();
    return renderMetrics(this.implementation, this.core.pageCache.stats(), this.decodedPages.stats(), [...this.timelines.values()]);
  }

  /** Flush every open layer, then release files and the page cache. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.scheduler.stop();
    const errors: unknown[] = [];
    // Children first: their reads go through their ancestors' layer maps.
    for (const tl of [...this.timelines.values()].sort((a, b) => depth(b) - depth(a))) {
      await tl.close().catch((e: unknown) => errors.push(e));
    }
    if (this.remote?.ownsStorage === true) await this.remote.storage.close().catch((e: unknown) => errors.push(e));
    this.closed = true;
    this.timelines.clear();
    this.core.close();
    this.lock?.release();
    if (errors.length > 0) throw errors[0];
  }

  checkOpen(): void {
    if (this.closed) throw new StrataError('CLOSED', `repository ${this.dir} is closed`);
  }

  /** Writes need a writable open (the lock); a read-only repository refuses them. */
  checkWritable(what: string): void {
    this.checkOpen();
    if (this.lock === null) throw new StrataError('READ_ONLY', `repository ${this.dir} is open read-only: ${what} needs a writable open`);
  }

  private timelineConfig(compression: CompressionName = this.opts.compression): TimelineConfig {
    const o = this.opts;
    return {
      readOnly: o.readOnly,
      checkpointDistance: o.checkpointDistance, compression, compactionThreshold: o.compactionThreshold,
      compactionUpperLimit: o.compactionUpperLimit, compactionTargetSize: o.compactionTargetSize,
      imageCreationThreshold: o.imageCreationThreshold, gcHorizon: o.gcHorizon,
      l0FlushDelayThreshold: o.l0FlushDelayThreshold, l0FlushStallThreshold: o.l0FlushStallThreshold,
      offloadCachedReads: o.offloadCachedReads, heatImageBudget: o.heatImageBudget, maxFrozenLayers: o.maxFrozenLayers,
    };
  }

  private listTimelinesUnchecked(): TimelineImpl[] {
    return [...this.timelines.values()];
  }

  private setAttachment(tenantId: string, a: LocalAttachment): void {
    const dir = path.join(this.dir, 'tenants', tenantId);
    mkdirDurable(dir);
    const file = path.join(dir, TENANT_REMOTE_FILE);
    wrapIo(`writing ${file}`, () => writeFileAtomic(file, JSON.stringify(a) + '\n'));
    this.attachments.set(tenantId, { ...a });
  }

  /** The tenant's recorded attachment; a tenant from before the remote option (or fencing) was given gets generation 1. */
  private loadAttachment(tenantId: string): LocalAttachment {
    const known = this.attachments.get(tenantId);
    if (known !== undefined) return known;
    const file = path.join(this.dir, 'tenants', tenantId, TENANT_REMOTE_FILE);
    if (!fs.existsSync(file)) {
      this.setAttachment(tenantId, { generation: IMPLICIT_GENERATION, attachmentId: newAttachmentId() });
      return this.attachments.get(tenantId) as LocalAttachment;
    }
    let j: { generation?: unknown; attachmentId?: unknown };
    try {
      j = parseJsonObject(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new StrataError('CORRUPT_MANIFEST', `${file}: unreadable: ${(e as Error).message}`, { cause: e });
    }
    let generation: number;
    try {
      generation = checkGeneration(j.generation, 'generation');
    } catch {
      throw new StrataError('CORRUPT_MANIFEST', `${file}: bad generation ${JSON.stringify(j.generation)}`);
    }
    if (typeof j.attachmentId !== 'string') {
      // Recorded before fencing existed: this attachment gets its id now.
      this.setAttachment(tenantId, { generation, attachmentId: newAttachmentId() });
    } else {
      this.attachments.set(tenantId, { generation, attachmentId: j.attachmentId });
    }
    return this.attachments.get(tenantId) as LocalAttachment;
  }

  private fenceOf(remote: RemoteSetup, tenantId: string): TenantFence {
    let fence = this.fences.get(tenantId);
    if (fence === undefined) {
      fence = new TenantFence(remote.storage, tenantId, this.loadAttachment(tenantId), this.nodeName);
      this.fences.set(tenantId, fence);
    }
    return fence;
  }

  /** Give each timeline its upload queue (when there is remote storage); `known`: indexes just attached from. */
  private startRemoteClients(timelines: readonly TimelineImpl[], known: ReadonlyMap<string, IndexPart>): void {
    const remote = this.remote;
    if (remote === null) return;
    for (const tl of timelines) {
      const client = new RemoteTimelineClient(remote.storage, tl.tenantId, tl.timelineId, tl.dir, this.fenceOf(remote, tl.tenantId), remote.retry,
        known.get(tlKey(tl.tenantId, tl.timelineId)) ?? null);
      tl.attachRemote(client, remote.cache);
    }
  }

  private timelineDir(tenantId: string, timelineId: string): string {
    return path.join(this.dir, 'tenants', tenantId, 'timelines', timelineId);
  }

  /** Load every timeline, ancestors before descendants, cleaning crash leftovers on the way. */
  private loadTimelines(): void {
    const manifests = new Map<string, Manifest>();
    const tenantsDir = path.join(this.dir, 'tenants');
    for (const tenantId of listDirs(tenantsDir)) {
      for (const timelineId of listDirs(path.join(tenantsDir, tenantId, 'timelines'))) {
        const dir = this.timelineDir(tenantId, timelineId);
        const file = path.join(dir, MANIFEST_FILE);
        if (!this.readOnly) removeTempFiles(dir);
        if (!fs.existsSync(file)) {
          // Created by a createTimeline that crashed before its manifest was durable: it never existed.
          if (!this.readOnly) {
            fs.rmSync(dir, { recursive: true, force: true });
            fsyncDir(path.dirname(dir));
          }
          continue;
        }
        const m = readManifest(file);
        if (m.tenantId !== tenantId || m.timelineId !== timelineId) {
          throw new StrataError('CORRUPT_MANIFEST', `${file}: names ${m.tenantId}/${m.timelineId}`);
        }
        checkLayers(dir, m);
        if (!this.readOnly) removeOrphanLayers(dir, m);
        manifests.set(tlKey(tenantId, timelineId), m);
      }
    }
    this.loadManifests(manifests);
  }

  /** Make timelines of `manifests` (ancestors first; an ancestor may already be loaded); returns the new ones. */
  private loadManifests(manifests: ReadonlyMap<string, Manifest>): TimelineImpl[] {
    const made: TimelineImpl[] = [];
    const load = (key: string): TimelineImpl => {
      const existing = this.timelines.get(key);
      if (existing) return existing;
      const m = manifests.get(key)!;
      let ancestor: TimelineImpl | null = null;
      if (m.ancestorTimelineId !== null) {
        const akey = tlKey(m.tenantId, m.ancestorTimelineId);
        if (!manifests.has(akey) && !this.timelines.has(akey)) {
          throw new StrataError('CORRUPT_MANIFEST', `timeline ${m.tenantId}/${m.timelineId}: ancestor ${m.ancestorTimelineId} is missing`);
        }
        ancestor = load(akey);
      }
      const tl = new TimelineImpl(this.core, this.timelineDir(m.tenantId, m.timelineId), m, ancestor, this.timelineConfig(m.compression), this.decodedPages);
      this.timelines.set(key, tl);
      made.push(tl);
      return tl;
    };
    for (const key of manifests.keys()) load(key);
    return made;
  }
}

function positiveInt(v: number | undefined, dflt: number, what: string): number {
  const n = v ?? dflt;
  if (!Number.isSafeInteger(n) || n <= 0) throw new StrataError('BAD_ARGUMENT', `${what} must be a positive integer: got ${describeValue(v)}`);
  return n;
}

function nonNegativeInt(v: number | undefined, dflt: number, what: string): number {
  return v === 0 ? 0 : positiveInt(v, dflt, what);
}

/** A share of flushed bytes: a finite number in [0, MAX_HEAT_IMAGE_BUDGET]. */
function budgetRatio(v: number | undefined): number {
  const r = v ?? DEFAULT_HEAT_IMAGE_BUDGET;
  if (typeof r !== 'number' || !Number.isFinite(r) || r < 0 || r > MAX_HEAT_IMAGE_BUDGET) {
    throw new StrataError('BAD_ARGUMENT', `heatImageBudget must be a number in [0, ${MAX_HEAT_IMAGE_BUDGET}] (hot-image bytes per byte otherwise written): got ${describeValue(v)}`);
  }
  return r;
}

function checkBackgroundOptions(o: Partial<BackgroundOptions>): Partial<BackgroundOptions> {
  for (const [k, v] of Object.entries(o)) positiveInt(v as number, 1, `backgroundOptions.${k}`);
  return o;
}

function resolveOptions(o: RepositoryOptions): ResolvedOptions {
  const pageCacheBytes = o.pageCacheBytes ?? DEFAULT_PAGE_CACHE_BYTES;
  if (!Number.isSafeInteger(pageCacheBytes) || pageCacheBytes < MIN_PAGE_CACHE_PAGES * BLOCK_SIZE) {
    throw new StrataError('BAD_ARGUMENT', `pageCacheBytes must be an integer ≥ ${MIN_PAGE_CACHE_PAGES * BLOCK_SIZE}: got ${describeValue(o.pageCacheBytes)}`);
  }
  const pageCachePolicy = o.pageCachePolicy ?? defaultPageCachePolicy();
  if (!PAGE_CACHE_POLICIES.includes(pageCachePolicy)) {
    throw new StrataError('BAD_ARGUMENT', `pageCachePolicy must be one of ${PAGE_CACHE_POLICIES.join(', ')}: got ${describeValue(o.pageCachePolicy)}`);
  }
  const decodedPageCacheBytes = o.decodedPageCacheBytes ?? DEFAULT_DECODED_PAGE_CACHE_BYTES;
  if (!Number.isSafeInteger(decodedPageCacheBytes) || decodedPageCacheBytes < 0) {
    throw new StrataError('BAD_ARGUMENT', `decodedPageCacheBytes must be a non-negative integer: got ${describeValue(o.decodedPageCacheBytes)}`);
  }
  const checkpointDistance = o.checkpointDistance ?? DEFAULT_CHECKPOINT_DISTANCE;
  if (!Number.isSafeInteger(checkpointDistance) || checkpointDistance <= 0) {
    throw new StrataError('BAD_ARGUMENT', `checkpointDistance must be a positive integer: got ${describeValue(o.checkpointDistance)}`);
  }
  const compression = o.compression ?? 'lz4';
  if (!CODEC_NAMES.includes(compression)) {
    throw new StrataError('BAD_ARGUMENT', `compression must be one of ${CODEC_NAMES.join(', ')}: got ${describeValue(compression)}`);
  }
  if (!codecAvailable(CODEC_BY_NAME[compression])) {
    throw new StrataError('BAD_ARGUMENT', `compression '${compression}' is unavailable here (its npm package did not load)`);
  }
  const gcHorizon = o.gcHorizon ?? DEFAULT_GC_HORIZON;
  checkLsn(gcHorizon, 'gcHorizon');
  const compactionThreshold = positiveInt(o.compactionThreshold, DEFAULT_COMPACTION_THRESHOLD, 'compactionThreshold');
  const offloadCachedReads = o.offloadCachedReads ?? false;
  if (typeof offloadCachedReads !== 'boolean') {
    throw new StrataError('BAD_ARGUMENT', `offloadCachedReads must be a boolean: got ${describeValue(o.offloadCachedReads)}`);
  }
  const readOnly = o.readOnly ?? false;
  if (typeof readOnly !== 'boolean') throw new StrataError('BAD_ARGUMENT', `readOnly must be a boolean: got ${describeValue(o.readOnly)}`);
  if (readOnly && o.background === true) throw new StrataError('BAD_ARGUMENT', 'a read-only repository runs no background work');
  return {
    readOnly,
    offloadCachedReads,
    pageCacheBytes, pageCachePolicy, decodedPageCacheBytes, checkpointDistance, compression, gcHorizon, compactionThreshold,
    maxOpenLayerFiles: positiveInt(o.maxOpenLayerFiles, DEFAULT_MAX_OPEN_LAYER_FILES, 'maxOpenLayerFiles'),
    maxFrozenLayers: nonNegativeInt(o.maxFrozenLayers, DEFAULT_MAX_FROZEN_LAYERS, 'maxFrozenLayers'),
    l0FlushDelayThreshold: nonNegativeInt(o.l0FlushDelayThreshold, L0_FLUSH_DELAY_FACTOR * compactionThreshold, 'l0FlushDelayThreshold'),
    l0FlushStallThreshold: nonNegativeInt(o.l0FlushStallThreshold, L0_FLUSH_STALL_FACTOR * compactionThreshold, 'l0FlushStallThreshold'),
    compactionUpperLimit: positiveInt(o.compactionUpperLimit, DEFAULT_COMPACTION_UPPER_LIMIT, 'compactionUpperLimit'),
    compactionTargetSize: positiveInt(o.compactionTargetSize, DEFAULT_COMPACTION_TARGET_SIZE, 'compactionTargetSize'),
    imageCreationThreshold: positiveInt(o.imageCreationThreshold, DEFAULT_IMAGE_CREATION_THRESHOLD, 'imageCreationThreshold'),
    heatImageBudget: budgetRatio(o.heatImageBudget),
  };
}

/**
 * Create the directory and its marker if needed, then take the writer lock. Everything the
 * writer does to the directory happens under that lock.
 */
function prepareWritable(root: string): RepositoryLock {
  wrapIo(`opening repository ${root}`, () => {
    if (fs.existsSync(root) && !fs.statSync(root).isDirectory()) {
      throw new StrataError('BAD_ARGUMENT', `${root} is not a directory`);
    }
    mkdirDurable(root);
  });
  const lock = RepositoryLock.acquire(root);
  try {
    const marker = path.join(root, REPO_MARKER);
    if (!fs.existsSync(marker)) wrapIo(`creating ${marker}`, () => writeFileAtomic(marker, JSON.stringify({ format: REPO_FORMAT }) + '\n'));
  } catch (e) {
    lock.release();
    throw e;
  }
  return lock;
}

function checkMarker(marker: string): void {
  if (!fs.existsSync(marker)) {
    throw new StrataError('NOT_A_REPOSITORY', `${path.dirname(marker)} is not a Strata repository (no ${REPO_MARKER})`);
  }
  let format: unknown;
  try {
    format = parseJsonObject(fs.readFileSync(marker, 'utf8')).format;
  } catch (e) {
    throw new StrataError('CORRUPT_MANIFEST', `${marker}: unreadable: ${(e as Error).message}`, { cause: e });
  }
  if (format !== REPO_FORMAT) throw new StrataError('CORRUPT_MANIFEST', `${marker}: unsupported repository format ${String(format)}`);
}

function checkId(id: unknown, what: string): asserts id is string {
  if (typeof id !== 'string' || !ID_PATTERN.test(id)) {
    throw new StrataError('BAD_ARGUMENT', `${what} must match ${ID_PATTERN.source}: got ${typeof id === 'string' ? JSON.stringify(id) : describeValue(id)}`);
  }
}

/** A lookup by id takes any string (an unknown one is TIMELINE_NOT_FOUND) but only a string. */
function checkIdType(id: unknown, what: string): asserts id is string {
  if (typeof id !== 'string') throw new StrataError('BAD_ARGUMENT', `${what} must be a string: got ${typeof id}`);
}

function tlKey(tenantId: string, timelineId: string): string {
  return `${tenantId}/${timelineId}`;
}

function depth(t: TimelineImpl): number {
  let d = 0;
  for (let a = t.ancestor; a !== null; a = a.ancestor) d++;
  return d;
}

function listDirs(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory() && ID_PATTERN.test(d.name)).map((d) => d.name).sort();
}

function removeTempFiles(dir: string): void {
  let removed = false;
  for (const f of fs.readdirSync(dir)) {
    if (f.endsWith(TMP_SUFFIX)) {
      fs.rmSync(path.join(dir, f), { force: true });
      removed = true;
    }
  }
  if (removed) fsyncDir(dir);
}

/** A layer file no manifest names was written by a flush that crashed before its commit point. */
function removeOrphanLayers(dir: string, m: Manifest): void {
  const named = new Set([...m.layers.map((l) => l.fileName), REMOTE_LAYERS_FILE]);
  let removed = false;
  for (const f of fs.readdirSync(dir)) {
    if (f !== MANIFEST_FILE && !named.has(f)) {
      fs.rmSync(path.join(dir, f), { force: true, recursive: true });
      removed = true;
    }
  }
  if (removed) fsyncDir(dir);
}

/**
 * Every listed layer exists with its recorded size or is listed as remote-only (layer_residency.ts),
 * and delta layers never overlap in LSN.
 */
function checkLayers(dir: string, m: Manifest): void {
  const remoteOnly = readRemoteOnly(dir);
  for (const l of m.layers) {
    const file = path.join(dir, l.fileName);
    let size: number;
    try {
      size = fs.statSync(file).size;
    } catch {
      if (remoteOnly.has(l.fileName)) continue;
      throw new StrataError('CORRUPT_MANIFEST', `${path.join(dir, MANIFEST_FILE)}: layer ${l.fileName} is missing`);
    }
    if (size !== l.sizeBytes) {
      throw new StrataError('CORRUPT_LAYER', `${file}: ${size} bytes, the manifest says ${l.sizeBytes}`);
    }
  }
  const deltas = m.layers.filter((l) => l.kind === 'delta');
  for (let i = 0; i < deltas.length; i++) {
    for (let j = i + 1; j < deltas.length; j++) {
      const a = deltas[i];
      const b = deltas[j];
      const keysOverlap = a.keyStart < b.keyEnd && b.keyStart < a.keyEnd;
      const lsnsOverlap = a.lsnStart < b.lsnEnd && b.lsnStart < a.lsnEnd;
      if (keysOverlap && lsnsOverlap) {
        throw new StrataError('CORRUPT_MANIFEST', `${path.join(dir, MANIFEST_FILE)}: delta layers ${a.fileName} and ${b.fileName} overlap`);
      }
    }
  }
}

/**
 * Remove a detached tenant's directory: manifests first (durably; a timeline directory without
 * one is what an open removes as never having existed), then the rest.
 */
function removeTenantDir(tenantDir: string, timelineDirs: readonly string[]): void {
  wrapIo(`delete ${tenantDir}`, () => {
    for (const dir of timelineDirs) {
      fs.rmSync(path.join(dir, MANIFEST_FILE), { force: true });
      if (fs.existsSync(dir)) fsyncDir(dir);
    }
    fs.rmSync(tenantDir, { recursive: true, force: true });
    fsyncDir(path.dirname(tenantDir));
  });
}

/** Every object of a deleted timeline: indexes first, so an attach never finds an index without its layers. */
async function deleteTimelineObjects(storage: RemoteStorage, prefix: string): Promise<void> {
  const objects = await storage.list(prefix);
  const isIndex = (key: string): boolean => splitGeneration(key.slice(prefix.length))?.name === INDEX_NAME;
  for (const o of objects) if (isIndex(o.key)) await storage.delete(o.key);
  for (const o of objects) if (!isIndex(o.key)) await storage.delete(o.key);
}
