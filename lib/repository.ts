/**
 * The public Repository: exactly the calls README documents, forwarding to the engine's
 * RepositoryImpl (lib/engine/repository.ts). Timelines come back as public Timeline facades.
 */
import type { BackgroundOptions } from './engine/background';
import type { MetricFamily } from './engine/metrics';
import {
  type AttachTenantOptions, type AttachTenantReport, type DetachTenantReport, RepositoryImpl, type CreateTimelineOptions as EngineCreateTimelineOptions,
  type RepositoryOptions, type RepositoryStats,
} from './engine/repository';
import type { ImplementationName } from './core/core';
import { describeValue, StrataError } from './errors';
import { branchLsnForTimestamp } from './pg/lsn_time';
import { followPostgres, type FollowPostgresOptions, type PgFollower } from './pg/walreceiver';
import { Timeline, timelineFacade, timelineImpl } from './timeline';

export type { AttachTenantOptions, AttachTenantReport, DetachTenantReport, RepositoryOptions, RepositoryStats };
export { METRIC_DEFS } from './engine/metrics';
export type { MetricFamily, MetricName, MetricSample } from './engine/metrics';

export interface CreateTimelineOptions extends EngineCreateTimelineOptions {
  /**
   * Branch a PostgreSQL timeline as of this time instead of at an LSN: at the 'present' LSN of
   * `ancestor.lsnForTimestamp(ancestorTimestamp)` (docs/POSTGRES.md, "LSN ↔ time"). Not with ancestorLsn.
   */
  ancestorTimestamp?: Date;
}

/** @internal The engine repository behind a facade, for subsystems that need more than the public calls. */
export let repositoryImpl: (repo: Repository) => RepositoryImpl;

export class Repository {
  readonly #impl: RepositoryImpl;
  /** Followers started here; close() stops them first. */
  readonly #followers = new Set<PgFollower>();

  static {
    repositoryImpl = (repo) => repo.#impl;
  }

  private constructor(impl: RepositoryImpl) {
    this.#impl = impl;
  }

  /**
   * Open (creating it if needed) the repository in `dir`. A writable open takes the directory's
   * lock (REPOSITORY_LOCKED if another writer holds it) and cleans up what a crash left behind;
   * `readOnly: true` does neither and refuses every write with READ_ONLY.
   */
  static async open(dir: string, options?: RepositoryOptions): Promise<Repository> {
    return new Repository(await RepositoryImpl.open(dir, options));
  }

  get dir(): string {
    return this.#impl.dir;
  }

  /** The core in use: 'native' or 'ts'. */
  get implementation(): ImplementationName {
    return this.#impl.implementation;
  }

  get readOnly(): boolean {
    return this.#impl.readOnly;
  }

  /** Whether the repository was opened with remote storage (the `remote` option). */
  get hasRemoteStorage(): boolean {
    return this.#impl.hasRemoteStorage;
  }

  /**
   * A new timeline, or a branch of `ancestorTimelineId` at `ancestorLsn` (default: its
   * lastRecordLsn) or, for a PostgreSQL timeline, as of `ancestorTimestamp`.
   */
  async createTimeline(o: CreateTimelineOptions): Promise<Timeline> {
    if (o?.ancestorTimestamp === undefined) return timelineFacade(await this.#impl.createTimeline(o));
    const { ancestorTimestamp, ...rest } = o;
    if (rest.ancestorLsn !== undefined) throw new StrataError('BAD_ARGUMENT', 'createTimeline: ancestorLsn and ancestorTimestamp exclude each other');
    if (rest.ancestorTimelineId === undefined) throw new StrataError('BAD_ARGUMENT', 'ancestorTimestamp given without ancestorTimelineId');
    this.#impl.checkWritable('createTimeline');
    const ancestor = this.#impl.getTimeline(rest.tenantId, rest.ancestorTimelineId);
    const ancestorLsn = await branchLsnForTimestamp(ancestor, ancestorTimestamp);
    return timelineFacade(await this.#impl.createTimeline({ ...rest, ancestorLsn }));
  }

  /** Delete a timeline and its files (BAD_ARGUMENT while branches of it exist); its handles then fail with CLOSED. */
  deleteTimeline(tenantId: string, timelineId: string): Promise<void> {
    return this.#impl.deleteTimeline(tenantId, timelineId);
  }

  getTimeline(tenantId: string, timelineId: string): Timeline {
    return timelineFacade(this.#impl.getTimeline(tenantId, timelineId));
  }

  listTimelines(tenantId: string): Timeline[] {
    return this.#impl.listTimelines(tenantId).map(timelineFacade);
  }

  listTenants(): string[] {
    return this.#impl.listTenants();
  }

  /**
   * Attach a tenant to this node with a generation (docs/REMOTE.md): the caller's, or the next one
   * obtained by compare-and-swap on the tenant's attachment object. A tenant held here keeps its
   * own (or moves to a higher one given); one that is not is downloaded from remote storage (the
   * newest index of each timeline and its layers), and the new generation uploads from then on.
   * Needs the `remote` option.
   */
  attachTenant(tenantId: string, options?: AttachTenantOptions): Promise<AttachTenantReport> {
    return this.#impl.attachTenant(tenantId, options);
  }

  /**
   * Hand a tenant back to remote storage: final flush and upload, then its timelines close and its
   * local files go. Attaching it (here or on another node) continues from the uploaded state.
   */
  detachTenant(tenantId: string): Promise<DetachTenantReport> {
    return this.#impl.detachTenant(tenantId);
  }

  /** The tenant's generation in remote storage, or null (no remote, or not attached). */
  tenantGeneration(tenantId: string): number | null {
    return this.#impl.tenantGeneration(tenantId);
  }

  stats(): RepositoryStats {
    return this.#impl.stats();
  }

  /** Every metric as families of samples (what metricsText renders; what a prom-client bridge reads). */
  metricFamilies(): MetricFamily[] {
    return this.#impl.metricFamilies();
  }

  /** Every metric in Prometheus text format, labelled by tenant and timeline. */
  metricsText(): string {
    return this.#impl.metricsText();
  }

  /** Start the background scheduler: flush on checkpoint timeout, compaction, images, GC. */
  startBackground(opts?: Partial<BackgroundOptions>): void {
    this.#impl.startBackground(opts);
  }

  /** Stop the scheduler and wait for its jobs in flight. */
  stopBackground(): Promise<void> {
    return this.#impl.stopBackground();
  }

  /** One round of background work now, whether or not the scheduler runs. */
  runBackgroundOnce(): Promise<void> {
    return this.#impl.runBackgroundOnce();
  }

  /**
   * Follow a running PostgreSQL 15 primary over physical streaming replication into `tl`, a
   * timeline imported from that cluster (docs/POSTGRES.md, "Following a primary"). Returns at once;
   * the follower connects, streams, flushes and reconnects on its own until stop().
   */
  followPostgres(tl: Timeline, options: FollowPostgresOptions): PgFollower {
    this.#impl.checkWritable('followPostgres');
    if (!(tl instanceof Timeline)) throw new StrataError('BAD_ARGUMENT', `followPostgres needs a Timeline of this repository: got ${describeValue(tl)}`);
    const impl = timelineImpl(tl);
    if (this.#impl.getTimeline(tl.tenantId, tl.timelineId) !== impl) {
      throw new StrataError('BAD_ARGUMENT', `followPostgres: timeline ${tl.tenantId}/${tl.timelineId} belongs to another repository`);
    }
    const follower = followPostgres(impl, options);
    this.#followers.add(follower);
    void follower.done.then(() => this.#followers.delete(follower));
    return follower;
  }

  /** Stop every follower (gracefully), flush every open layer, then release files, the page cache and the lock. */
  async close(): Promise<void> {
    await Promise.all([...this.#followers].map((f) => f.stop()));
    return this.#impl.close();
  }
}
