/**
 * One timeline's link to remote storage (Neon's RemoteTimelineClient): after each manifest commit
 * (flush, compaction, image creation, GC, a snapshot import, a subsystem's extension) the timeline
 * hands the new manifest here, and a worker of its own — never the ingest path — makes the remote
 * side match it, in this order:
 *
 *  1. every layer the manifest names that storage does not hold yet is uploaded,
 *     as `<layer name>-<generation>`;
 *  2. then the index (`index_part.json-<generation>`) naming exactly those layers;
 *  3. then layers the uploaded index no longer names are deleted (the deletion queue).
 *
 * Before each index upload and each batch of deletions the tenant's fence (attachment.ts) checks
 * that this node's generation is still the tenant's current one; once it is not, the client stops
 * uploading and deleting for good and syncs reject with STALE_GENERATION.
 *
 * So an index is never ahead of its layers, and nothing an uploaded index names is deleted. Manifests
 * committed while the worker is busy are coalesced: the worker finishes the one in hand and then goes
 * to the newest (a layer that a newer manifest already dropped, and whose file is gone locally, is
 * not uploaded). Deletions run in batches after each index upload.
 * Every storage call is retried with exponential backoff and full jitter until it succeeds or the
 * repository closes (upload_queue.ts), and goes through the remote's circuit breaker
 * (circuit_breaker.ts): while storage is down, one probe call at a time instead of every queue's own.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isStrataError, StrataError } from '../errors';
import type { Lsn } from '../lsn';
import { RemoteStorageError, type RemoteStorage } from '../remote/remote_storage';
import type { TenantFence } from './attachment';
import { type BreakerState, breakerFor, type CircuitBreaker } from './circuit_breaker';
import type { Manifest } from './manifest';
import {
  decodeIndex, encodeIndex, INDEX_NAME, type IndexPart, indexKey, layerKey, splitGeneration, timelinePrefix,
} from './remote_layout';
import { backoffDelayMs, layersToUpload, type RemoteLayer, type RemoteRetryOptions } from './upload_queue';

export interface RemoteTimelineStats {
  generation: number;
  /** diskConsistentLsn of the newest index in remote storage that this node knows of; null before the first. */
  remoteConsistentLsn: Lsn | null;
  /** Objects (layers and the index) and their bytes waiting to be uploaded for the newest manifest. */
  queuedObjects: number;
  queuedBytes: number;
  /** Remote layers waiting for deletion. */
  deletionsQueued: number;
  uploads: number;
  uploadedBytes: number;
  deletions: number;
  /** Failed storage calls (each is retried). */
  failures: number;
  lastError: string | null;
  /** The tenant's generation here is stale (another attachment took it): nothing is uploaded or deleted any more. */
  stale: boolean;
  /** The tenant's validations of its generation against the attachment object, and index uploads / deletion batches they refused. */
  fenceValidations: number;
  staleRefusals: number;
  /** The remote's circuit breaker (shared by every timeline using this storage): its state, and how often it opened. */
  breakerState: BreakerState;
  breakerOpens: number;
}

interface SyncWaiter {
  seq: number;
  /** The breaker's downVerdicts when the sync was asked: a later verdict rejects it. */
  verdicts: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** Thrown inside the worker when the client stops; never escapes it. */
class Stopped extends Error {}

/** Deletions run after each index upload while uploads are pending (all of them once none is). */
const DELETIONS_PER_INDEX = 16;

/** What attempt() returns when a failed call's result is no longer wanted. */
const GAVE_UP: unique symbol = Symbol('gave up');

export class RemoteTimelineClient {
  private desired: Manifest | null = null;
  /** Commits handed over so far, and the newest whose index is uploaded. */
  private desiredSeq = 0;
  private uploadedSeq = 0;
  private _remoteConsistentLsn: Lsn | null = null;
  /** What remote storage holds for this timeline, by layer name. */
  private readonly remoteLayers = new Map<string, RemoteLayer>();
  /**
   * Layers named by an index known to be in storage (uploaded by this node, attached from or
   * found on open): name → generation of the key. Only these may be evicted locally.
   */
  private readonly durable = new Map<string, number>();
  /** Called after each index upload (eviction may now remove more). */
  onIndexUploaded: (() => void) | null = null;
  /** Layer objects to delete: name → generation of the key. */
  private readonly deletions = new Map<string, number>();
  private initialized: boolean;
  private waiters: SyncWaiter[] = [];
  private running: Promise<void> | null = null;
  private stopped = false;
  private wakeSleeper: (() => void) | null = null;
  private readonly counters = { uploads: 0, uploadedBytes: 0, deletions: 0, failures: 0 };
  private lastError: unknown = null;
  /** Failed storage calls since the last that succeeded. */
  private consecutiveFailures = 0;
  readonly generation: number;
  private readonly breaker: CircuitBreaker;

  /**
   * `known`: the index this node attached from (nothing to discover). Without it the worker first
   * lists the timeline's objects and reads the newest index of a generation not above its own.
   */
  constructor(
    private readonly storage: RemoteStorage,
    readonly tenantId: string,
    readonly timelineId: string,
    private readonly dir: string,
    private readonly fence: TenantFence,
    private readonly retry: RemoteRetryOptions,
    known: IndexPart | null,
  ) {
    this.generation = fence.attachment.generation;
    this.breaker = breakerFor(storage, retry.breakerFailures, retry.breakerCooldownMs);
    this.initialized = known !== null;
    if (known !== null) {
      this.learnIndex(known);
    }
  }

  /** The generation of the key under which a durable index names this layer; undefined when none does (yet). */
  durableGeneration(fileName: string): number | undefined {
    return this.durable.get(fileName);
  }

  /** An index that is in storage: its layers are remote, durably. */
  private learnIndex(idx: IndexPart): void {
    for (const l of idx.manifest.layers) {
      const generation = idx.layerGenerations.get(l.fileName) as number;
      this.remoteLayers.set(l.fileName, { generation, sizeBytes: l.sizeBytes });
      this.durable.set(l.fileName, generation);
    }
    this._remoteConsistentLsn = idx.manifest.diskConsistentLsn;
  }

  get remoteConsistentLsn(): Lsn | null {
    return this._remoteConsistentLsn;
  }

  private get name(): string {
    return `timeline ${this.tenantId}/${this.timelineId}`;
  }

  /** A manifest is durable locally: make remote storage match it (in the background). */
  schedule(m: Manifest): void {
    if (this.stopped) return;
    this.desired = m;
    this.desiredSeq++;
    this.kick();
  }

  /**
   * Resolves once everything scheduled before the call is uploaded (its index included); rejects
   * with the storage's error (REMOTE_ERROR …) once uploading has failed retry.failSyncAfterAttempts
   * times in a row, or with CLOSED when the repository closes first.
   */
  sync(): Promise<void> {
    if (this.fence.stale !== null) return Promise.reject(this.fence.stale);
    if (this.stopped) return Promise.reject(new StrataError('CLOSED', `${this.name}: remote uploads are stopped (repository closed)`));
    const seq = this.desiredSeq;
    if (this.uploadedSeq >= seq && this.initialized) return Promise.resolve();
    this.kick();
    return new Promise((resolve, reject) => this.waiters.push({ seq, verdicts: this.breaker.downVerdicts, resolve, reject }));
  }

  stats(): RemoteTimelineStats {
    let queuedObjects = 0;
    let queuedBytes = 0;
    if (this.desired !== null && this.desiredSeq > this.uploadedSeq) {
      const todo = layersToUpload(this.desired.layers, this.remoteLayers);
      queuedObjects = todo.length + 1;
      queuedBytes = todo.reduce((n, l) => n + l.sizeBytes, 0);
    }
    const fence = this.fence.stats();
    return {
      generation: this.generation,
      remoteConsistentLsn: this._remoteConsistentLsn,
      queuedObjects,
      queuedBytes,
      deletionsQueued: this.deletions.size,
      ...this.counters,
      lastError: this.lastError === null ? null : (this.lastError instanceof Error ? this.lastError.message : String(this.lastError)),
      stale: fence.stale,
      fenceValidations: fence.validations,
      staleRefusals: fence.refusals,
      breakerState: this.breaker.state,
      breakerOpens: this.breaker.opens,
    };
  }

  /** Stop the worker after the storage call in flight; pending syncs reject with CLOSED. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.wakeSleeper?.();
    await this.running;
    this.rejectWaiters(new StrataError('CLOSED', `${this.name}: the repository closed before remote uploads caught up`));
  }

  // ---- the worker --------------------------------------------------------------------------------

  private kick(): void {
    if (this.running !== null || this.stopped) return;
    // A microtask later: none of the worker's work runs on the stack of the commit that kicked it.
    this.running = Promise.resolve().then(() => this.work())
      .then(() => true, (e: unknown) => {
        if (e instanceof Stopped) return true;
        if (isStrataError(e, 'STALE_GENERATION')) {
          // Not a failure to retry: this node has lost the tenant (attachment.ts).
          this.lastError = e;
          this.rejectWaiters(e);
          return true;
        }
        // Not a storage failure (those are retried inside): report it, and try again later
        // rather than in a tight loop.
        this.counters.failures++;
        this.lastError = e;
        this.rejectWaiters(e);
        return false;
      })
      .then((ok) => {
        this.running = null;
        if (this.stopped || !this.hasWork()) return;
        if (ok) this.kick();
        else setTimeout(() => this.kick(), this.retry.maxMs).unref();
      });
  }

  private hasWork(): boolean {
    if (this.fence.stale !== null) return false;
    return !this.initialized || this.desiredSeq > this.uploadedSeq || this.deletions.size > 0;
  }

  private async work(): Promise<void> {
    if (!this.initialized) {
      await this.attempt(() => this.discover());
      this.initialized = true;
    }
    while (!this.stopped) {
      if (this.fence.stale !== null) throw this.fence.stale;
      if (this.desiredSeq > this.uploadedSeq) {
        const indexed = this.uploadedSeq;
        await this.uploadNewest();
        // A batch of deletions after each index, so steady commits cannot starve them.
        if (this.uploadedSeq > indexed && this.deletions.size > 0) await this.runDeletions(DELETIONS_PER_INDEX);
        continue;
      }
      this.resolveWaiters();
      if (this.deletions.size === 0) return;
      await this.runDeletions(Infinity);
    }
    throw new Stopped();
  }

  /**
   * Upload the newest manifest's missing layers, then its index. A newer manifest arriving meanwhile
   * does not interrupt calls that succeed — the index of this one still advances
   * remoteConsistentLsn, and dropping it at each arrival would starve the index for as long as
   * commits outpace uploads — but a call that fails is abandoned for the newest manifest after its
   * backoff, as is this manifest when a layer it names is gone locally.
   */
  private async uploadNewest(): Promise<void> {
    const seq = this.desiredSeq;
    const m = this.desired as Manifest;
    const superseded = (): boolean => this.desiredSeq !== seq;
    for (const l of layersToUpload(m.layers, this.remoteLayers)) {
      if (this.stopped) throw new Stopped();
      if (this.fence.stale !== null) throw this.fence.stale;
      const uploaded = await this.attempt(() => this.uploadLayer(l.fileName, l.sizeBytes, seq), superseded);
      if (uploaded !== true) return; // dropped by a newer manifest, or superseded while failing
    }
    const index: IndexPart = {
      generation: this.generation,
      manifest: m,
      layerGenerations: new Map(m.layers.map((l) => [l.fileName, (this.remoteLayers.get(l.fileName) as RemoteLayer).generation])),
    };
    const body = encodeIndex(index);
    // Fencing: never put an index once a newer generation holds the tenant.
    if (await this.validate(superseded) === GAVE_UP) return;
    const put = await this.attempt(() => this.storage.put(indexKey(this.tenantId, this.timelineId, this.generation), body), superseded);
    if (put === GAVE_UP) return;
    this.counters.uploads++;
    this.counters.uploadedBytes += body.length;
    this.uploadedSeq = seq;
    this._remoteConsistentLsn = m.diskConsistentLsn;
    this.durable.clear();
    for (const [name, g] of index.layerGenerations) this.durable.set(name, g);
    // Only now may what the index no longer names go: no uploaded index of ours references it.
    const named = new Set(m.layers.map((l) => l.fileName));
    for (const [name, r] of [...this.remoteLayers]) {
      if (named.has(name)) continue;
      this.remoteLayers.delete(name);
      // Another generation's object may still be named by that generation's index: a node
      // deletes only objects of its own generation (docs/REMOTE.md, "Deletion queue").
      if (r.generation === this.generation) this.deletions.set(name, r.generation);
    }
    this.resolveWaiters();
    this.onIndexUploaded?.();
  }

  /** true when uploaded; false when the file is gone locally because a newer manifest dropped it. */
  private async uploadLayer(fileName: string, sizeBytes: number, seq: number): Promise<boolean> {
    const file = path.join(this.dir, fileName);
    const superseded = (): boolean => this.desiredSeq !== seq && !(this.desired as Manifest).layers.some((l) => l.fileName === fileName);
    if (!fs.existsSync(file) && superseded()) return false;
    // Re-uploading a name whose deletion is queued: the upload makes that object current again.
    if (this.deletions.get(fileName) === this.generation) this.deletions.delete(fileName);
    try {
      await this.storage.put(layerKey(this.tenantId, this.timelineId, fileName, this.generation), { file });
    } catch (e) {
      if (!fs.existsSync(file) && superseded()) return false;
      throw e;
    }
    this.remoteLayers.set(fileName, { generation: this.generation, sizeBytes });
    this.counters.uploads++;
    this.counters.uploadedBytes += sizeBytes;
    return true;
  }

  /** Delete up to `max` queued objects; none of them is named by an index of ours. */
  private async runDeletions(max: number): Promise<void> {
    // Fencing: this read comes after the index upload that queued these deletions, so a newer
    // generation, which reads indexes only after winning its compare-and-swap, never names them.
    await this.validate();
    let done = 0;
    for (const [name, generation] of [...this.deletions]) {
      if (this.stopped || done++ >= max) return;
      await this.attempt(() => this.storage.delete(layerKey(this.tenantId, this.timelineId, name, generation)));
      if (this.deletions.get(name) === generation) this.deletions.delete(name);
      this.counters.deletions++;
    }
  }

  /** The fence's verdict, retried as any storage call; a stale verdict counts as a refusal and ends the worker. */
  private async validate(giveUp?: () => boolean): Promise<void | typeof GAVE_UP> {
    try {
      return await this.attempt(() => this.fence.validate(), giveUp);
    } catch (e) {
      if (isStrataError(e, 'STALE_GENERATION')) this.fence.refused();
      throw e;
    }
  }

  /**
   * After a restart: what storage already holds. The newest index of a generation not above ours
   * says which objects the timeline's layers are; objects of our own generation that it does not
   * name (uploaded before a crash, before their index) are remembered, so they are either used or
   * deleted after the next index upload.
   */
  private async discover(): Promise<void> {
    const prefix = timelinePrefix(this.tenantId, this.timelineId);
    const objects = await this.storage.list(prefix);
    let newestIndex: { key: string; generation: number } | null = null;
    const own = new Map<string, number>();
    for (const o of objects) {
      const rest = o.key.slice(prefix.length);
      if (rest.includes('/')) continue;
      const parsed = splitGeneration(rest);
      if (parsed === null || parsed.generation > this.generation) continue;
      if (parsed.name === INDEX_NAME) {
        if (newestIndex === null || parsed.generation > newestIndex.generation) newestIndex = { key: o.key, generation: parsed.generation };
      } else if (parsed.generation === this.generation) {
        own.set(parsed.name, o.size);
      }
    }
    if (newestIndex !== null) {
      this.learnIndex(decodeIndex(newestIndex.key, await this.storage.get(newestIndex.key)));
    }
    for (const [name, size] of own) {
      if (!this.remoteLayers.has(name)) this.remoteLayers.set(name, { generation: this.generation, sizeBytes: size });
    }
  }

  /**
   * Run `op` until it succeeds, backing off with full jitter; Stopped when the client stops;
   * GAVE_UP when it failed and `giveUp()` says its result is no longer wanted.
   */
  private async attempt<T>(op: () => Promise<T>, giveUp: () => boolean = () => false): Promise<T | typeof GAVE_UP> {
    for (;;) {
      if (this.stopped) throw new Stopped();
      const admission = this.breaker.admit();
      if (admission.waitMs > 0) {
        // Storage is down (the breaker is open, or another queue's probe is out): no call. Syncs
        // asked before the latest "down" verdict learn it now rather than after a cooldown.
        this.rejectWaiters(this.breaker.lastError, (w) => w.verdicts < this.breaker.downVerdicts);
        await this.sleep(admission.waitMs);
        if (giveUp()) return GAVE_UP;
        continue;
      }
      let r: T;
      try {
        r = await op();
      } catch (e) {
        // The breaker hears of every call, also one the closing repository no longer wants (a
        // probe left in flight would keep every other queue waiting).
        const retryable = !(e instanceof RemoteStorageError) || e.transient;
        // Only storage's own errors say whether it answered; a local one (the layer file) says nothing.
        if (!(e instanceof RemoteStorageError)) this.breaker.abandoned(admission.probe);
        else if (e.transient) this.breaker.failed(admission.probe, e);
        else this.breaker.answered(admission.probe);
        if (this.stopped) throw new Stopped();
        if (isStrataError(e, 'STALE_GENERATION')) throw e;
        // Counted across calls, so neither the backoff nor syncRemote's verdict starts over when
        // a newer manifest replaces the work that failed.
        const n = ++this.consecutiveFailures;
        this.counters.failures++;
        this.lastError = e;
        if (n >= this.retry.failSyncAfterAttempts || !retryable) this.rejectWaiters(e);
        await this.sleep(backoffDelayMs(n, this.retry));
        if (giveUp()) return GAVE_UP;
        continue;
      }
      this.breaker.answered(admission.probe);
      this.consecutiveFailures = 0;
      return r;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => { this.wakeSleeper = null; resolve(); }, ms);
      this.wakeSleeper = () => { clearTimeout(t); this.wakeSleeper = null; resolve(); };
    });
  }

  private resolveWaiters(): void {
    if (!this.initialized) return;
    const done = this.waiters.filter((w) => w.seq <= this.uploadedSeq);
    if (done.length === 0) return;
    this.waiters = this.waiters.filter((w) => w.seq > this.uploadedSeq);
    for (const w of done) w.resolve();
  }

  private rejectWaiters(e: unknown, which: (w: SyncWaiter) => boolean = () => true): void {
    const out = this.waiters.filter(which);
    if (out.length === 0) return;
    this.waiters = this.waiters.filter((w) => !which(w));
    for (const w of out) w.reject(e);
  }
}
