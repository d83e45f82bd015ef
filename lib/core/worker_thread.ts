/**
 * What the TS core's worker threads (ts/compaction_worker.ts, ts/read_worker.ts) share: finding
 * the compiled file a worker runs, and lowering a worker's priority. A worker runs this package's
 * compiled JavaScript; run from the TypeScript sources (the test suite), that is the build's twin
 * in dist/, used only when it is not older than any source, so a worker never runs stale code.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StrataError, type StrataErrorCode } from '../errors';

/**
 * A worker thread's nice value (Linux), as the compression worker's: on two vCPUs the event loop's
 * thread, woken by a timer or I/O, must not wait for a CPU behind a worker's merge or read.
 */
export const CORE_WORKER_NICE = 10;

/** Newest modification time of the .ts files under `dir` (ms). */
function newestSource(dir: string): number {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

let newestLibSource: number | null = null;

/**
 * The file a worker can run for module `moduleFile` (its __filename) under lib/: itself once
 * compiled; else the build's twin when it is not older than any source. Else why not.
 */
export function workerScript(moduleFile: string): { file: string } | { reason: string } {
  if (moduleFile.endsWith('.js')) return { file: moduleFile };
  const libRoot = path.join(__dirname, '..');
  const built = path.join(libRoot, '..', 'dist', path.relative(libRoot, moduleFile).replace(/\.ts$/, '.js'));
  try {
    newestLibSource ??= newestSource(libRoot);
    if (fs.statSync(built).mtimeMs < newestLibSource) return { reason: `${built} is older than the sources (run npm run build)` };
  } catch {
    return { reason: `${built} does not exist (run npm run build)` };
  }
  return { file: built };
}

/** Lower the calling thread's priority (Linux names it in /proc/thread-self); elsewhere, nothing. */
export function lowerThisThreadPriority(nice: number): void {
  try {
    const tid = Number(fs.readlinkSync('/proc/thread-self').split('/').pop());
    os.setPriority(tid, nice);
  } catch {
    // not Linux, or not allowed: a normal priority still computes the same bytes
  }
}

/**
 * Work a worker thread could take, counted by where it ran; `inlineReason` says why the last
 * piece that ran on the calling thread did (null while the worker took everything).
 */
export interface WorkerStats {
  offThread: number;
  onThisThread: number;
  inlineReason: string | null;
}

export function newWorkerStats(): WorkerStats {
  return { offThread: 0, onThisThread: 0, inlineReason: null };
}

/** An error as it crosses a thread: a StrataError keeps its code. */
export interface WireError {
  code: StrataErrorCode | null;
  message: string;
}

/** A StrataError's message goes without the "CODE: " prefix its constructor adds. */
export function toWire(e: unknown): WireError {
  if (e instanceof StrataError) return { code: e.code, message: e.message.slice(e.code.length + 2) };
  return { code: null, message: e instanceof Error ? e.message : String(e) };
}

export function fromWire(w: WireError): Error {
  return w.code === null ? new Error(w.message) : new StrataError(w.code, w.message);
}

/** structuredClone hands Buffers over as plain Uint8Arrays. */
export function asBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}
