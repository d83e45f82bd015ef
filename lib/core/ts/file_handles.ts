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
}

export class FileHandles {
  readonly maxOpen: number;
  /** Every registered file; the open ones are also in `open`, oldest use first (Map order). */
  private readonly entries = new Map<number, Entry>();
  private readonly open = new Map<number, Entry>();

  constructor(maxOpen: number) {
    this.maxOpen = Math.max(1, maxOpen);
  }

  /** Register file `id` at `path` with an already open descriptor, which this now owns. */
  adopt(id: number, path: string, fd: number): void {
    const e: Entry = { path, fd };
    this.entries.set(id, e);
    this.open.set(id, e);
    this.evictOverLimit();
  }

  /** A descriptor for `id`, reopened read-only if it was closed (throws the open's error). */
  acquire(id: number): number {
    const e = this.entries.get(id);
    if (e === undefined) throw new Error(`file ${id} is not registered`);
    if (e.fd < 0) e.fd = openLayerForReading(e.path);
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
    fs.closeSync(fd);
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
