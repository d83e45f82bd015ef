/**
 * Durable file operations. Anything the API reports as durable went through
 * write temp → fsync → rename → fsync directory, so a crash at any point leaves either the old or
 * the new file, never a torn one.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { StrataError } from './errors';

export const TMP_SUFFIX = '.tmp';

export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Replace `file` with `data` atomically and durably. */
export function writeFileAtomic(file: string, data: Uint8Array | string): void {
  const tmp = file + TMP_SUFFIX;
  const fd = fs.openSync(tmp, 'w', 0o644);
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  fsyncDir(path.dirname(file));
}

/** Rename a finished, fsynced temp file into place and make the rename durable. */
export function publishFile(tmp: string, file: string): void {
  fs.renameSync(tmp, file);
  fsyncDir(path.dirname(file));
}

/** mkdir -p, fsyncing each parent whose entry was created so the new directories survive a crash. */
/** mkdir -p, fsyncing each parent whose entry was created so the new directories survive a crash. */
export function mkdirDurable(dir: string): void {
  if (fs.existsSync(dir)) return;
  mkdirDurable(path.dirname(dir));
  try {
    fs.mkdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; // made concurrently
  }
  fsyncDir(path.dirname(dir));
}

export function wrapIo<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof StrataError) throw e;
    throw new StrataError('IO_ERROR', `${what}: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * A process's start time in clock ticks (field 22 of /proc/<pid>/stat), recorded in lock files so a
 * pid reused by another process is not taken for the owner; null off Linux.
 */
export function processStartTicks(pid: number): number | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]); // field 22 is the 20th after "pid (comm)"
    return Number.isSafeInteger(ticks) ? ticks : null;
  } catch {
    return null;
  }
}
