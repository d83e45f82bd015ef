/**
 * A bounded set of open layer-file descriptors shared by every layer of one core (the twin of
 * native/file_handles.{h,cc}): a layer's file is opened when a block read needs it and closed
 * again, least recently used first, when more than `maxOpen` are open. A timeline with thousands
 * of layers then holds at most `maxOpen` descriptors. JS reads one block at a time, so unlike the
 * C++ set nothing needs pinning: a descriptor is used and done with before another is opened.
 */
import * as fs from 'node:fs';

/** O_NOATIME where the platform has it (Linux), else 0. */
const O_NOATIME: number = (fs.constants as Record<string, number>).O_NOATIME ?? 0;

/**
 * Open a layer file for reading, without access-time updates where the kernel allows it (the
 * file's owner; EPERM otherwise): the twin of native OpenLayerForReading.
 */
export function openLayerForReading(path: string): number {
  if (O_NOATIME !== 0) {
    try {
      return fs.openSync(path, fs.constants.O_RDONLY | O_NOATIME);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
    }
  }
  return fs.openSync(path, 'r');
}

interface Entry {
  path: string;
  fd: number;
  /**
   * A descriptor another thread opened and will close (the read worker's, handed over at a
   * layer's close: see Reopen): never closed here, neither to make room nor when forgotten.
   */
  borrowed: boolean;
}

/**
 * How a closed descriptor is reopened; by default by path. The TS core's read worker first takes
 * a descriptor the main thread opened for it when it closed the layer (its file may be unlinked
 * by now), and borrows it: the main thread closes it once the worker is done with the layer.
 */
export type Reopen = (id: number, path: string) => { fd: number; borrowed: boolean };

const reopenByPath: Reopen = (_id, path) => ({ fd: openLayerForReading(path), borrowed: false });

export class FileHandles {
  readonly maxOpen: number;
  /** Every registered file; the open ones are also in `open`, oldest use first (Map order). */
  private readonly entries = new Map<number, Entry>();
  private readonly open = new Map<number, Entry>();

  private readonly reopen: Reopen;

  constructor(maxOpen: number, reopen: Reopen = reopenByPath) {
    this.maxOpen = Math.max(1, maxOpen);
    this.reopen = reopen;
  }

  /**
   * Register file `id` at `path` with an already open descriptor, which this now owns, or with
   * none (fd -1: opened at its first read).
   */
  adopt(id: number, path: string, fd: number): void {
    const e: Entry = { path, fd, borrowed: false };
    this.entries.set(id, e);
    if (fd < 0) return;
    this.open.set(id, e);
    this.evictOverLimit();
  }

  /** A descriptor for `id`, reopened read-only if it was closed (throws the open's error). */
  acquire(id: number): number {
    const e = this.entries.get(id);
    if (e === undefined) throw new Error(`file ${id} is not registered`);
    if (e.fd < 0) {
      const r = this.reopen(id, e.path);
      e.fd = r.fd;
      e.borrowed = r.borrowed;
    }
    if (e.borrowed) return e.fd;
    this.open.delete(id); // re-inserted last: the most recently used
    this.open.set(id, e);
    this.evictOverLimit();
    return e.fd;
  }

  /** The file is gone for good: close its descriptor. */
  forget(id: number): void {
    const e = this.entries.get(id);
    if (e === undefined) return;
    this.entries.delete(id);
    this.closeEntry(id, e);
  }

  get openCount(): number {
    return this.open.size;
  }

  private closeEntry(id: number, e: Entry): void {
    this.open.delete(id);
    if (e.fd < 0) return;
    const fd = e.fd;
    e.fd = -1;
    if (!e.borrowed) fs.closeSync(fd);
  }

  private evictOverLimit(): void {
    for (const [id, e] of this.open) {
      if (this.open.size <= this.maxOpen) break;
      this.closeEntry(id, e);
    }
  }
}

/** Without a shared set, a file keeps its descriptor for its lifetime. */
export function unboundedFileHandles(): FileHandles {
  return new FileHandles(Number.MAX_SAFE_INTEGER);
}
