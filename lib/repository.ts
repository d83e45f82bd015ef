/**
 * The public Repository: exactly the calls README documents, forwarding to the engine's
 * RepositoryImpl (lib/engine/repository.ts). Timelines come back as public Timeline facades.
 */
import type { BackgroundOptions } from './engine/background';
import { RepositoryImpl, type CreateTimelineOptions, type RepositoryOptions, type RepositoryStats } from './engine/repository';
import type { ImplementationName } from './core/core';
import { Timeline, timelineFacade } from './timeline';

export type { CreateTimelineOptions, RepositoryOptions, RepositoryStats };

/** @internal The engine repository behind a facade, for subsystems that need more than the public calls. */
export let repositoryImpl: (repo: Repository) => RepositoryImpl;

export class Repository {
  readonly #impl: RepositoryImpl;

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

  /** A new timeline, or a branch of `ancestorTimelineId` at `ancestorLsn` (default: its lastRecordLsn). */
  async createTimeline(o: CreateTimelineOptions): Promise<Timeline> {
    return timelineFacade(await this.#impl.createTimeline(o));
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

  stats(): RepositoryStats {
    return this.#impl.stats();
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

  /** Flush every open layer, then release files, the page cache and the lock. */
  close(): Promise<void> {
    return this.#impl.close();
  }
}
