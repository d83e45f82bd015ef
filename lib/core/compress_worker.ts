/**
 * Blob compression off the event loop: one worker thread per process compresses image creation's
 * pages (lib/engine/image_batches.ts) while the JS thread reconstructs the next ones, for either
 * core. It runs the very compressors compress.ts runs, so the bytes are the same. Flushes do not
 * use it: their steps are short, and on two vCPUs the round trips cost more than they freed
 * (docs/PERFORMANCE.md, "Issue 11, second session").
 *
 * A chunk's records are copied into one of COMPRESS_SLOTS shared buffers and the worker writes the
 * compressed forms into that slot's output buffer, so a chunk costs one small message each way and
 * two copies, with no allocation beyond the codec's output (an ArrayBuffer made per message, with
 * its page faults, cost as much as compressing it). If the worker cannot start or dies, the
 * records are compressed here. Where the native addon has loaded, each chunk is compressed holding
 * a slot of its background lane, which bounds background work process-wide
 * (native/background_thread.h; setBackgroundThreads in native.ts, which names the addon here). The
 * worker notes the slot in a shared held cell, set in the same native call that takes the slot, so
 * a worker that dies or is terminated holding it has it given back here when it has exited.
 */
import { Worker } from 'node:worker_threads';
import { compressRecord } from './compress';
import { CODEC_LZ4, ZSTD_LEVEL, type CodecId } from './format';

/** Raw bytes one request carries at most; a larger group is compressed on the calling thread. */
export const COMPRESS_SLOT_BYTES = 128 * 1024;
/** Requests in flight at once (an image write keeps IMAGE_CHUNKS_IN_FLIGHT = 3; more wait for a free slot). */
const COMPRESS_SLOTS = 4;
/**
 * The worker thread's nice value (Linux): on a machine with few cores the event loop's thread,
 * waking for a timer or I/O, must not queue behind compression (with the worker at 0, W7's storm
 * showed 10–30 ms loop delays with the loop idle, waiting for a CPU).
 */
const COMPRESS_WORKER_NICE = 10;
/** Length the worker reports for a record its codec did not shrink (no bytes written). */
const NOT_SMALLER = 0xffffffff;

/** One record: src[start, end). */
export interface RecordSpan {
  src: Buffer;
  start: number;
  end: number;
}

/** The compressed form of record `i`, or null if the codec did not make it smaller. */
export type UsePacked = (i: number, packed: Buffer | null) => void;

interface Request {
  codec: CodecId;
  offsets: Uint32Array;
}

interface Reply {
  slot: number;
  lens?: Uint32Array;
  error?: string;
}

// Plain JS: the worker is started from this string so it runs the same from lib/ (tests) and
// dist/ (the package), and finds the codecs where this module found them.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
try {
  // Linux names the calling thread in /proc/thread-self; elsewhere the worker keeps its priority.
  const tid = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop());
  require('node:os').setPriority(tid, workerData.nice);
} catch {}
const raws = workerData.raws.map((s) => Buffer.from(s));
const heldCell = new Int32Array(workerData.held);
const outs = workerData.outs.map((s) => Buffer.from(s));
let lz4 = null;
let zstd = null;
function compress(codec, rec) {
  if (codec === workerData.lz4Codec) return (lz4 ??= require(workerData.lz4Path)).compressSync(rec);
  return (zstd ??= require(workerData.zstdPath)).compress(rec, { compressionLevel: workerData.zstdLevel });
}
// The codecs read the shared slot in place (lz4-napi 2.x and zstd-napi take a view of shared
// memory, with the same bytes); a copy per record had been one more 8 KB ArrayBuffer per page for
// this thread's GC. A codec that refuses shared memory gets a copy in ordinary memory from then on.
let copyFirst = false;
function compressView(codec, rec) {
  if (!copyFirst) {
    try {
      return compress(codec, rec);
    } catch {
      copyFirst = true;
    }
  }
  return compress(codec, Buffer.from(rec));
}
// The native addon this process loaded, for its background lane (native/background_thread.h): a
// chunk is compressed holding a slot, as the core's own background work computes. Without the
// addon (or where it does not load on this thread) chunks are compressed without one.
let laneFile = '';
let lane = null;
function laneOf(file) {
  if (file !== laneFile) {
    laneFile = file;
    try {
      lane = file ? require(file) : null;
    } catch {
      lane = null;
    }
  }
  return lane && typeof lane.enterBackgroundLane === 'function' ? lane : null;
}
parentPort.on('message', (m) => {
  const held = laneOf(m.lane);
  if (held) held.enterBackgroundLane(heldCell);
  let reply;
  let transfer = [];
  try {
    const raw = raws[m.slot];
    const out = outs[m.slot];
    const lens = new Uint32Array(m.offsets.length - 1);
    let at = 0;
    for (let i = 0; i < lens.length; i++) {
      const rec = raw.subarray(m.offsets[i], m.offsets[i + 1]);
      const packed = compressView(m.codec, rec);
      if (packed.length < rec.length) {
        packed.copy(out, at);
        lens[i] = packed.length;
        at += packed.length;
      } else {
        lens[i] = ${NOT_SMALLER};
      }
    }
    reply = { slot: m.slot, lens };
    transfer = [lens.buffer];
  } catch (e) {
    reply = { slot: m.slot, error: String((e && e.message) || e) };
  } finally {
    // Given back before the reply: whoever the reply wakes finds the slot free.
    if (held) held.leaveBackgroundLane(heldCell);
  }
  parentPort.postMessage(reply, transfer);
});
`;

function resolveOrEmpty(name: string): string {
  try {
    return require.resolve(name);
  } catch {
    return ''; // the worker then fails on that codec's first record, and the caller compresses it
  }
}

class CompressWorker {
  private worker: Worker | null = null;
  private dead = false;
  private readonly raws: Buffer[] = [];
  private readonly outs: Buffer[] = [];
  private readonly free: number[] = [];
  private readonly slotWaiters: ((slot: number) => void)[] = [];
  private readonly pending = new Map<number, (reply: Reply) => void>();
  /** Element 0 is 1 while the worker holds a slot of the addon's lane (set by the addon itself). */
  private readonly held = new Int32Array(new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT));

  /** Compresses `records` (each ≤ the slot, all together ≤ COMPRESS_SLOT_BYTES), calling `use` in order. */
  async compress(codec: CodecId, records: readonly RecordSpan[], use: UsePacked): Promise<void> {
    const worker = this.dead ? null : this.start();
    if (worker === null) return compressOnThisThread(codec, records, use);
    const slot = await this.takeSlot();
    try {
      const req = this.fill(slot, codec, records);
      const reply = await this.send(worker, slot, req);
      if (reply.lens === undefined) return compressOnThisThread(codec, records, use);
      const out = this.outs[slot];
      stats.offThread += records.length;
      let at = 0;
      for (let i = 0; i < records.length; i++) {
        const len = reply.lens[i];
        if (len === NOT_SMALLER) {
          use(i, null);
        } else {
          use(i, out.subarray(at, at + len));
          at += len;
        }
      }
    } finally {
      this.giveSlot(slot);
    }
  }

  async stop(): Promise<void> {
    const w = this.worker;
    if (w === null || this.dead) return;
    this.dead = true;
    await w.terminate();
  }

  private start(): Worker | null {
    if (this.worker !== null) return this.worker;
    for (let i = 0; i < COMPRESS_SLOTS; i++) {
      this.raws.push(Buffer.from(new SharedArrayBuffer(COMPRESS_SLOT_BYTES)));
      this.outs.push(Buffer.from(new SharedArrayBuffer(COMPRESS_SLOT_BYTES)));
      this.free.push(i);
    }
    try {
      this.worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: {
          raws: this.raws.map((b) => b.buffer), outs: this.outs.map((b) => b.buffer), held: this.held.buffer, nice: COMPRESS_WORKER_NICE,
          lz4Codec: CODEC_LZ4, lz4Path: resolveOrEmpty('lz4-napi'), zstdPath: resolveOrEmpty('zstd-napi'), zstdLevel: ZSTD_LEVEL,
        },
      });
    } catch {
      this.dead = true;
      return null;
    }
    this.worker.unref(); // an idle worker must not keep the process alive
    this.worker.on('message', (r: Reply) => this.settle(r));
    // A worker that fails or exits hands every request back, to be compressed here.
    const fail = (): void => {
      this.dead = true;
      for (const slot of [...this.pending.keys()]) this.settle({ slot, error: 'the compression worker stopped' });
    };
    this.worker.on('error', fail);
    this.worker.on('exit', () => {
      laneGiveBack?.(this.held); // only now is the thread surely gone
      fail();
    });
    return this.worker;
  }

  private fill(slot: number, codec: CodecId, records: readonly RecordSpan[]): Request {
    const raw = this.raws[slot];
    const offsets = new Uint32Array(records.length + 1);
    let at = 0;
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      at += r.src.copy(raw, at, r.start, r.end);
      offsets[i + 1] = at;
    }
    return { codec, offsets };
  }

  private send(worker: Worker, slot: number, req: Request): Promise<Reply> {
    if (this.dead) return Promise.resolve({ slot, error: 'the compression worker stopped' });
    return new Promise((resolve) => {
      if (this.pending.size === 0) worker.ref(); // a request in flight keeps the process alive
      this.pending.set(slot, resolve);
      worker.postMessage({ slot, codec: req.codec, offsets: req.offsets, lane: laneAddonFile });
    });
  }

  private settle(reply: Reply): void {
    const resolve = this.pending.get(reply.slot);
    if (resolve === undefined) return;
    this.pending.delete(reply.slot);
    if (this.pending.size === 0 && !this.dead) this.worker?.unref();
    resolve(reply);
  }

  private takeSlot(): Promise<number> {
    const slot = this.free.pop();
    if (slot !== undefined) return Promise.resolve(slot);
    return new Promise((resolve) => this.slotWaiters.push(resolve));
  }

  private giveSlot(slot: number): void {
    const next = this.slotWaiters.shift();
    if (next !== undefined) next(slot);
    else this.free.push(slot);
  }
}

/** compressOffThread's answer computed on the calling thread (the same bytes). */
export function compressOnThisThread(codec: CodecId, records: readonly RecordSpan[], use: UsePacked): void {
  stats.onThisThread += records.length;
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    const packed = compressRecord(codec, r.src.subarray(r.start, r.end));
    use(i, packed.length < r.end - r.start ? packed : null);
  }
}

let shared: CompressWorker | null = null;

/** The loaded addon whose background lane chunks are compressed in ('' for none); set by native.ts. */
let laneAddonFile = '';
/** Gives back the slot a held cell says is held (the addon's leaveBackgroundLane with the cell). */
type GiveBackHeld = (held: Int32Array) => boolean;
let laneGiveBack: GiveBackHeld | null = null;

/**
 * Called by native.ts once the addon has loaded: later chunks hold a slot of its lane, and a
 * worker that exits holding one has it given back through `giveBack`.
 */
export function useBackgroundLaneOf(addonFile: string, giveBack: GiveBackHeld): void {
  laneAddonFile = addonFile;
  laneGiveBack = giveBack;
}

/** Records compressed, by where: on the worker, or on the calling thread (too big, or no worker). */
export interface CompressWorkerStats {
  offThread: number;
  onThisThread: number;
}

const stats: CompressWorkerStats = { offThread: 0, onThisThread: 0 };

export function compressWorkerStats(): CompressWorkerStats {
  return { ...stats };
}

/**
 * Fault injection for tests: stops the compression worker as a crash would, so requests in flight
 * and later ones fall back to the calling thread. Resolves when it has stopped.
 */
export async function stopCompressWorkerForTest(): Promise<void> {
  await shared?.stop();
}

/**
 * Compresses `records` under `codec` on the compression worker and calls `use(i, packed)` for each
 * in order (packed is null where the codec did not shrink the record; a view valid only during the
 * call). A group larger than COMPRESS_SLOT_BYTES is compressed on the calling thread. The records
 * must not change until the promise settles.
 */
export function compressOffThread(codec: CodecId, records: readonly RecordSpan[], use: UsePacked): Promise<void> {
  let total = 0;
  for (const r of records) total += r.end - r.start;
  if (total > COMPRESS_SLOT_BYTES) {
    compressOnThisThread(codec, records, use);
    return Promise.resolve();
  }
  shared ??= new CompressWorker();
  return shared.compress(codec, records, use);
}
