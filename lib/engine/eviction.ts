/**
 * The repository's local layer files as a cache of remote storage (docs/REMOTE.md, "On-demand
 * download and eviction"): under a byte budget, layer files that a durable remote index names are
 * evicted least recently used first; a layer not yet in such an index is never evicted, nor are
 * the layers of a timeline whose compaction or image creation is running (pinned). Reads hold no
 * pins: a read checks that its layers are local and hands its plan to the core in one synchronous
 * step, and the core keeps the layers of a read in flight open (refcounted) after they leave the
 * layer map, so an eviction never breaks a read that has started.
 */
import { LayerDownloader, type DownloadStats } from './layer_download';
import type { RemoteStorage } from '../remote/remote_storage';

/** A local layer file eviction may remove. */
export interface EvictionCandidate {
  fileName: string;
  sizeBytes: number;
  /** The cache's tick of its last use (higher is more recent). */
  lastUsed: number;
  /** Generation of the object key that holds it in a durable remote index. */
  generation: number;
}

/** One timeline's side of the cache. */
export interface EvictionOwner {
  localLayerBytes(): number;
  remoteOnlyLayerBytes(): number;
  /** Local layers that are durably remote and not pinned. */
  evictionCandidates(): EvictionCandidate[];
  /** Evict one local layer (remote-only list first, then the file); synchronous. */
  evictLayer(fileName: string, generation: number): void;
}

export interface LocalLayerStats extends DownloadStats {
  /** The byte budget (RepositoryOptions.localLayerBudgetBytes), or null for none. */
  budgetBytes: number | null;
  localBytes: number;
  remoteOnlyBytes: number;
  evictions: number;
  evictedBytes: number;
  /** Layer files that would have been evicted but were not yet in a durable remote index, or pinned, at the last pass. */
  unevictableBytes: number;
}

export class LocalLayerCache {
  readonly downloader: LayerDownloader;
  private readonly owners = new Set<EvictionOwner>();
  private clock = 0;
  private readonly counters = { evictions: 0, evictedBytes: 0, unevictableBytes: 0 };

  constructor(storage: RemoteStorage, readonly budgetBytes: number | null) {
    this.downloader = new LayerDownloader(storage);
  }

  register(owner: EvictionOwner): void {
    this.owners.add(owner);
  }

  unregister(owner: EvictionOwner): void {
    this.owners.delete(owner);
  }

  /** A new tick for a layer's use. */
  tick(): number {
    return ++this.clock;
  }

  /** Whether reads must record which layers they use (only under a budget). */
  get tracksUse(): boolean {
    return this.budgetBytes !== null;
  }

  /**
   * Evict least recently used layers until local layer bytes fit the budget, or nothing more may
   * go. Synchronous, so it never runs between a read's local check and its core call.
   */
  enforce(): void {
    if (this.budgetBytes === null) return;
    let local = 0;
    for (const o of this.owners) local += o.localLayerBytes();
    if (local <= this.budgetBytes) {
      this.counters.unevictableBytes = 0;
      return;
    }
    const all: Array<EvictionCandidate & { owner: EvictionOwner }> = [];
    for (const owner of this.owners) for (const c of owner.evictionCandidates()) all.push({ ...c, owner });
    all.sort((a, b) => a.lastUsed - b.lastUsed);
    for (const c of all) {
      if (local <= this.budgetBytes) break;
      c.owner.evictLayer(c.fileName, c.generation);
      local -= c.sizeBytes;
      this.counters.evictions++;
      this.counters.evictedBytes += c.sizeBytes;
    }
    this.counters.unevictableBytes = Math.max(0, local - this.budgetBytes);
  }

  stats(): LocalLayerStats {
    let localBytes = 0;
    let remoteOnlyBytes = 0;
    for (const o of this.owners) {
      localBytes += o.localLayerBytes();
      remoteOnlyBytes += o.remoteOnlyLayerBytes();
    }
    return { budgetBytes: this.budgetBytes, localBytes, remoteOnlyBytes, ...this.counters, ...this.downloader.stats };
  }
}
