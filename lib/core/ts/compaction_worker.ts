/**
 * The TS core's L0 → L1 merge off the event loop: one worker thread per process runs
 * compactDeltaLayers (compaction.ts), the twin of the native core running its merge on a libuv
 * thread. The merge touches no open layer, layer map or page cache (it opens its inputs privately
 * and writes new files), so it needs nothing from this thread but its options, and the worker runs
 * the very code the calling thread would: the same bytes.
 *
 * The worker is this module's compiled file. Where there is none (a checkout that has not been
 * built, or a build older than the sources) the merge runs on the calling thread, as it does while
 * test fault injection is armed (its counters live in this thread). A worker that dies fails the
 * merges in flight with IO_ERROR and removes their outputs; later merges run on the calling thread.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { CompactionOutput, DeltaCompactionOptions, DeltaCompactionResult } from '../core';
import { CORE_WORKER_NICE, type WireError, type WorkerStats, asBuffer, fromWire, lowerThisThreadPriority, newWorkerStats, toWire, workerScript } from '../worker_thread';
import { StrataError } from '../../errors';
import { faults } from '../../fault_injection';
import { compactDeltaLayers } from './compaction';

/** Marks the worker this module starts, so a user's own worker importing Strata serves nothing. */
const WORKER_ROLE = 'strata-compaction';
interface Request {
  id: number;
  opts: DeltaCompactionOptions;
}

interface Reply {
  id: number;
  result?: DeltaCompactionResult;
  error?: WireError;
}

interface Pending {
  opts: DeltaCompactionOptions;
  resolve: (r: DeltaCompactionResult) => void;
  reject: (e: Error) => void;
}

const stats = newWorkerStats();

/** Merges run, by where. */
export function compactionWorkerStats(): WorkerStats {
  return { ...stats };
}

function reviveResult(r: DeltaCompactionResult): DeltaCompactionResult {
  const outputs: CompactionOutput[] = r.outputs.map((o) => ({ ...o, keyStart: asBuffer(o.keyStart), keyEnd: asBuffer(o.keyEnd) }));
  return { outputs, bytesRead: r.bytesRead };
}

/** Removes the outputs a merge that died in the worker may have left: `${prefix}<i>${suffix}`. */
function removeOutputs(opts: DeltaCompactionOptions): void {
  const dir = path.dirname(opts.outputPrefix);
  const base = path.basename(opts.outputPrefix);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    if (!n.startsWith(base) || !n.endsWith(opts.outputSuffix)) continue;
    if (/^\d+$/.test(n.slice(base.length, n.length - opts.outputSuffix.length))) fs.rmSync(path.join(dir, n), { force: true });
  }
}

class CompactionWorker {
  private worker: Worker | null = null;
  private dead = false;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  /** The worker, started on first use; null (with stats.inlineReason set) when there can be none. */
  acquire(): Worker | null {
    if (this.worker !== null && !this.dead) return this.worker;
    if (this.dead) return null;
    const script = workerScript(__filename);
    if ('reason' in script) {
      stats.inlineReason = script.reason;
      this.dead = true;
      return null;
    }
    try {
      this.worker = new Worker(script.file, { workerData: { role: WORKER_ROLE, nice: CORE_WORKER_NICE } });
    } catch (e) {
      stats.inlineReason = `the compaction worker could not start: ${e instanceof Error ? e.message : String(e)}`;
      this.dead = true;
      return null;
    }
    this.worker.unref(); // an idle worker must not keep the process alive
    this.worker.on('message', (r: Reply) => this.settle(r));
    this.worker.on('error', (e: Error) => this.fail(`failed: ${e.message}`));
    this.worker.on('exit', (code: number) => this.fail(`exited with code ${code}`));
    return this.worker;
  }

  run(worker: Worker, opts: DeltaCompactionOptions): Promise<DeltaCompactionResult> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) worker.ref(); // a merge in flight keeps the process alive
      this.pending.set(id, { opts, resolve, reject });
      const req: Request = { id, opts };
      worker.postMessage(req);
    });
  }

  async stop(): Promise<void> {
    if (this.worker === null || this.dead) return;
    await this.worker.terminate();
  }

  private settle(r: Reply): void {
    const p = this.pending.get(r.id);
    if (p === undefined) return;
    this.pending.delete(r.id);
    if (this.pending.size === 0) this.worker?.unref();
    if (r.error !== undefined) {
      p.reject(fromWire(r.error));
      return;
    }
    stats.offThread++;
    p.resolve(reviveResult(r.result!));
  }

  /** The worker is gone: fail what it held, with its outputs removed; later merges run here. */
  private fail(why: string): void {
    if (this.dead) return;
    this.dead = true;
    stats.inlineReason = `the compaction worker ${why}`;
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      removeOutputs(p.opts);
      p.reject(new StrataError('IO_ERROR', `compaction into ${p.opts.outputPrefix}*${p.opts.outputSuffix}: the compaction worker ${why}; its outputs were removed`));
    }
  }
}

let shared: CompactionWorker | null = null;

/**
 * compactDeltaLayers on the compaction worker thread, or on this one where there is no worker or
 * test fault injection is armed. Same outputs, same errors.
 */
export function compactDeltaLayersOffThread(opts: DeltaCompactionOptions): Promise<DeltaCompactionResult> {
  shared ??= new CompactionWorker();
  const worker = faults.active ? null : shared.acquire();
  if (worker === null) {
    if (faults.active) stats.inlineReason = 'fault injection is armed on this thread';
    stats.onThisThread++;
    return compactDeltaLayers(opts);
  }
  return shared.run(worker, opts);
}

/** Test hook: stops the worker as a crash would; merges in flight fail, later ones run here. */
export async function stopCompactionWorkerForTest(): Promise<void> {
  await shared?.stop();
}

/** The worker's side: lower its priority, then merge each request and answer it. */
function serve(): void {
  lowerThisThreadPriority((workerData as { nice: number }).nice);
  parentPort!.on('message', (req: Request) => {
    compactDeltaLayers(req.opts).then(
      (result) => parentPort!.postMessage({ id: req.id, result } satisfies Reply),
      (e: unknown) => parentPort!.postMessage({ id: req.id, error: toWire(e) } satisfies Reply),
    );
  });
}

if (!isMainThread && (workerData as { role?: unknown } | null)?.role === WORKER_ROLE) serve();
