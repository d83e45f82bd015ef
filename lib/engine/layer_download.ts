/**
 * On-demand layer downloads (docs/REMOTE.md, "On-demand download and eviction"): one download per
 * layer file at a time, shared by every reader that needs it, through `getToFile` (temp file beside
 * the layer, fsync, rename), with the size checked against the index.
 */
import * as fs from 'node:fs';
import { StrataError } from '../errors';
import type { RemoteStorage } from '../remote/remote_storage';

export interface DownloadStats {
  /** Layer files fetched on demand (attach's eager downloads not included). */
  downloads: number;
  downloadedBytes: number;
  /** Milliseconds readers, compactions and image creations spent waiting for downloads, summed over waiters. */
  downloadWaitMs: number;
}

export class LayerDownloader {
  /** Downloads in flight, by local file path. */
  private readonly inFlight = new Map<string, Promise<void>>();
  readonly stats: DownloadStats = { downloads: 0, downloadedBytes: 0, downloadWaitMs: 0 };

  constructor(readonly storage: RemoteStorage) {}

  /**
   * Resolves once `file` holds object `key` with `sizeBytes` bytes; concurrent calls for one file
   * share one download. CORRUPT_LAYER when storage has another size (the file is then removed).
   */
  async fetch(key: string, file: string, sizeBytes: number): Promise<void> {
    const started = performance.now();
    let p = this.inFlight.get(file);
    if (p === undefined) {
      p = this.download(key, file, sizeBytes).finally(() => this.inFlight.delete(file));
      this.inFlight.set(file, p);
    }
    try {
      await p;
    } finally {
      this.stats.downloadWaitMs += performance.now() - started;
    }
  }

  private async download(key: string, file: string, sizeBytes: number): Promise<void> {
    const info = await this.storage.getToFile(key, file);
    if (info.size !== sizeBytes) {
      fs.rmSync(file, { force: true });
      throw new StrataError('CORRUPT_LAYER', `${file}: downloaded ${info.size} bytes from ${key} in ${this.storage.description}, the index says ${sizeBytes}`);
    }
    this.stats.downloads++;
    this.stats.downloadedBytes += info.size;
  }
}
