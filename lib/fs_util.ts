/**
 * Durable file operations. Anything the API reports as durable went through
 * write temp → fsync → rename → fsync directory, so a crash at any point leaves either the old or
 * the new file, never a torn one.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { StrataError } from './errors';
import { faultAt, faults, type FaultOp, injectFault } from './fault_injection';

export const TMP_SUFFIX = '.tmp';

/** An OS error as IO_ERROR naming the path, the step and the errno (Node's message starts with it). */
export function ioError(file: string, step: string, e: unknown): StrataError {
  if (e instanceof StrataError) return e;
  return new StrataError('IO_ERROR', `${file}: ${step}: ${(e as Error).message}`, { cause: e });
}

export function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch (e) {
    throw ioError(dir, 'opening the directory to fsync it', e);
  }
  try {
    if (faults.active) injectFault('dirsync', 'fsync');
    fs.fsyncSync(fd);
  } catch (e) {
    throw ioError(dir, 'directory fsync', e);
  } finally {
    fs.closeSync(fd);
  }
}

/** fsync a file; an injected fault of kind `op` counts here. */
export function fsyncFile(fd: number, file: string, op: FaultOp = 'fsync'): void {
  try {
    if (faults.active) injectFault(op, 'fsync');
    fs.fsyncSync(fd);
  } catch (e) {
    throw ioError(file, 'fsync', e);
  }
}

/** Write all of buf[0, len) at `position` (null: the file position), looping over short writes. */
export function writeAll(fd: number, file: string, buf: Uint8Array, len: number, position: number | null, op: FaultOp = 'write'): void {
  let done = 0;
  try {
    if (faults.active) {
      const f = faultAt(op, 'write', len);
      if (f !== null) {
        if (f.shortBytes !== null && f.shortBytes > 0) fs.writeSync(fd, buf, 0, f.shortBytes, position);
        throw f.error;
      }
    }
    while (done < len) done += fs.writeSync(fd, buf, done, len - done, position === null ? null : position + done);
  } catch (e) {
    throw ioError(file, `write of ${len} bytes at offset ${position ?? 'end'}`, e);
  }
}

/** Replace `file` with `data` atomically and durably; IO_ERROR names the file and the step. */
export function writeFileAtomic(file: string, data: Uint8Array | string): void {
  const tmp = file + TMP_SUFFIX;
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let fd: number;
  try {
    fd = fs.openSync(tmp, 'w', 0o644);
  } catch (e) {
    throw ioError(tmp, 'create', e);
  }
  try {
    writeAll(fd, tmp, bytes, bytes.length, null);
    fsyncFile(fd, tmp);
  } finally {
    fs.closeSync(fd);
  }
  renameFile(tmp, file);
  fsyncDir(path.dirname(file));
}

export function renameFile(from: string, to: string): void {
  try {
    if (faults.active) injectFault('rename', 'rename');
    fs.renameSync(from, to);
  } catch (e) {
    throw ioError(from, `rename to ${path.basename(to)}`, e);
  }
}

/** Remove a file if it exists (rm -f). */
export function removeFile(file: string): void {
  try {
    if (faults.active) injectFault('unlink', 'unlink');
    fs.rmSync(file, { force: true });
  } catch (e) {
    throw ioError(file, 'unlink', e);
  }
}

/** Rename a finished, fsynced temp file into place and make the rename durable. */
export function publishFile(tmp: string, file: string): void {
  renameFile(tmp, file);
  fsyncDir(path.dirname(file));
}

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

// ---- the same steps on the libuv pool, for work that must not hold the event loop (a flush's or
// compaction's commit): each counts and injects faults exactly as its synchronous twin does.

/** fsync a file descriptor on the libuv pool; an injected fault of kind `op` counts here. */
export async function fsyncFileAsync(fd: number, file: string, op: FaultOp = 'fsync'): Promise<void> {
  try {
    if (faults.active) injectFault(op, 'fsync');
    await new Promise<void>((resolve, reject) => fs.fsync(fd, (e) => (e ? reject(e) : resolve())));
  } catch (e) {
    throw ioError(file, 'fsync', e);
  }
}

export async function fsyncDirAsync(dir: string): Promise<void> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(dir, 'r');
  } catch (e) {
    throw ioError(dir, 'opening the directory to fsync it', e);
  }
  try {
    if (faults.active) injectFault('dirsync', 'fsync');
    await fh.sync();
  } catch (e) {
    throw ioError(dir, 'directory fsync', e);
  } finally {
    await fh.close();
  }
}

export async function renameFileAsync(from: string, to: string): Promise<void> {
  try {
    if (faults.active) injectFault('rename', 'rename');
    await fs.promises.rename(from, to);
  } catch (e) {
    throw ioError(from, `rename to ${path.basename(to)}`, e);
  }
}

/** Remove a file if it exists (rm -f). */
export async function removeFileAsync(file: string): Promise<void> {
  try {
    if (faults.active) injectFault('unlink', 'unlink');
    await fs.promises.rm(file, { force: true });
  } catch (e) {
    throw ioError(file, 'unlink', e);
  }
}

/** writeFileAtomic with every step on the libuv pool: the same order, so the same crash safety. */
export async function writeFileAtomicAsync(file: string, data: Uint8Array | string): Promise<void> {
  const tmp = file + TMP_SUFFIX;
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(tmp, 'w', 0o644);
  } catch (e) {
    throw ioError(tmp, 'create', e);
  }
  try {
    await writeAllAsync(fh, tmp, bytes);
    await fsyncFileAsync(fh.fd, tmp);
  } finally {
    await fh.close();
  }
  await renameFileAsync(tmp, file);
  await fsyncDirAsync(path.dirname(file));
}

async function writeAllAsync(fh: fs.promises.FileHandle, file: string, buf: Uint8Array): Promise<void> {
  const len = buf.length;
  let done = 0;
  try {
    if (faults.active) {
      const f = faultAt('write', 'write', len);
      if (f !== null) {
        if (f.shortBytes !== null && f.shortBytes > 0) await fh.write(buf, 0, f.shortBytes, null);
        throw f.error;
      }
    }
    while (done < len) done += (await fh.write(buf, done, len - done, null)).bytesWritten;
  } catch (e) {
    throw ioError(file, `write of ${len} bytes at offset end`, e);
  }
}
