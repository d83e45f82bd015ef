/**
 * The TS core's background reads off the event loop (Core.getPagesInBackground and
 * layerKeysInBackground: image creation's reconstruction and key listing), the twin of the native
 * core reading on the libuv pool. One worker thread per core runs the very Reconstructor and
 * layerKeys the core runs, over its own copy of the core's layer maps, its own small page cache
 * and its own bounded set of descriptors; so these reads neither count in nor change the core's
 * page cache (the native core's go through its cache).
 *
 * The copy is kept by messages, in call order with the reads: a read sees the maps as they were at
 * the call. Main sends each layer's path and parsed summary once; the worker opens its file at
 * its first read. A layer closed while reads are in flight may have its file unlinked before the
 * worker opens it (eviction, a compaction's swap), so the main thread opens a descriptor for it
 * at the close (the file is still there) and hands it over on a side channel that the worker
 * drains before it opens any file by path; that descriptor stays open until the close reaches the
 * worker, after every read that could need it (as the native core's FileHandles::Retain). The
 * worker never closes a descriptor it was handed (Node warns when a thread closes one another
 * thread opened): it acknowledges the close, and the main thread closes it then, or when the
 * worker is gone.
 */
import * as fs from 'node:fs';
import { MessageChannel, type MessagePort, Worker, isMainThread, parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { COUNTS_PER_REQUEST } from '../core';
import { CORE_WORKER_NICE, type WireError, type WorkerStats, asBuffer, fromWire, lowerThisThreadPriority, newWorkerStats, toWire, workerScript } from '../worker_thread';
import { StrataError } from '../../errors';
import { PAGE_SIZE } from '../../record';
import { BlockFile } from './block_io';
import { FileHandles, openLayerForReading } from './file_handles';
import { Layer, type SummaryFields, layerKeys } from './layer_file';
import { LayerMap } from './layer_map';
import { PageCache } from './page_cache';
import { Reconstructor } from './reconstruct';

const WORKER_ROLE = 'strata-read';
/**
 * The worker's page cache: the index blocks and the neighbouring pages' blocks of the layers image
 * creation walks (it reads each key once, in key order).
 */
export const READ_WORKER_CACHE_BYTES = 4 * 1024 * 1024;

/** A layer the worker has not seen yet: enough to open it without reading its summary again. */
interface LayerDescription {
  handle: number;
  path: string;
  summary: SummaryFields;
}

type Message =
  | { t: 'map'; mapId: number; handles: number[]; added: LayerDescription[] }
  | { t: 'drop'; mapId: number }
  | { t: 'close'; handle: number; retained: boolean }
  | { t: 'read'; id: number; plan: Uint8Array; requests: number; into: Uint8Array | null }
  | { t: 'keys'; id: number; handle: number; added: LayerDescription | null; keyStart: Uint8Array; keyEnd: Uint8Array; maxKeys: number };

/** A descriptor the main thread opened for a closed layer, sent on the side channel. */
interface Retained {
  handle: number;
  fd: number;
}

/** The worker is done with a layer whose descriptor the main thread handed it. */
interface Closed {
  closed: number;
}

interface Reply {
  id: number;
  out?: Uint8Array;
  status?: Uint8Array;
  counts?: Uint32Array;
  keys?: Uint8Array;
  error?: WireError;
}

/** A read or key listing sent to the worker: how its reply settles it. */
interface Pending {
  answer: (r: Reply) => void;
  reject: (e: Error) => void;
}

const stats = newWorkerStats();

/** Page buffers kept to lend: image creation has up to two reads in flight (ImageReadAhead). */
const SPARE_OUT_BUFFERS = 4;

/** Background reads, by where they ran (for tests and diagnostics). */
export function readWorkerStats(): WorkerStats {
  return { ...stats };
}

/** Workers running, for the test hook below. */
const live = new Set<ReadWorker>();

/** Test hook: stops every read worker as a crash would; reads in flight fail with IO_ERROR, later ones run on the core's thread. */
export async function crashReadWorkersForTest(): Promise<void> {
  await Promise.all([...live].map((w) => w.crash()));
}

/** Counts a background read the core ran on its own thread, and why. */
export function countInlineRead(reason: string | null): void {
  stats.onThisThread++;
  if (reason !== null) stats.inlineReason = reason;
}

/** The main thread's end: mirrors the core's layers and maps to the worker and sends it reads. */
export class ReadWorker {
  private readonly worker: Worker;
  private readonly side: MessagePort;
  /** Layers the worker has been told about (and not told closed). */
  private readonly known = new Set<number>();
  private readonly pending = new Map<number, Pending>();
  /** Page buffers back from finished reads, lent to the next ones (spareOut). */
  private readonly spares: ArrayBuffer[] = [];
  /** Descriptors handed to the worker at a layer's close, by layer handle, until it is done with them. */
  private readonly handedOver = new Map<number, number>();
  private nextId = 1;
  private dead: string | null = null;

  private constructor(worker: Worker, side: MessagePort) {
    this.worker = worker;
    this.side = side;
    worker.unref(); // an idle worker must not keep the process alive
    worker.on('message', (r: Reply | Closed) => ('closed' in r ? this.closeHandedOver(r.closed) : this.settle(r)));
    worker.on('error', (e: Error) => this.fail(`failed: ${e.message}`));
    worker.on('exit', (code: number) => {
      this.fail(`exited with code ${code}`);
      this.closeAllHandedOver();
    });
  }

  /** Starts a worker holding the core's current maps; the reason when there can be none. */
  static start(maxOpenLayerFiles: number, maps: ReadonlyMap<number, LayerMap>): ReadWorker | { reason: string } {
    const script = workerScript(__filename);
    if ('reason' in script) return script;
    const { port1, port2 } = new MessageChannel();
    let worker: Worker;
    try {
      worker = new Worker(script.file, {
        workerData: { role: WORKER_ROLE, nice: CORE_WORKER_NICE, maxOpenLayerFiles, side: port2 },
        transferList: [port2],
      });
    } catch (e) {
      port1.close();
      return { reason: `the read worker could not start: ${e instanceof Error ? e.message : String(e)}` };
    }
    const rw = new ReadWorker(worker, port1);
    live.add(rw);
    for (const [mapId, map] of maps) rw.setMap(mapId, map.layers);
    return rw;
  }

  /** Why the worker can no longer read (it died), or null. */
  get unusable(): string | null {
    return this.dead;
  }

  setMap(mapId: number, layers: readonly Layer[]): void {
    if (this.dead !== null) return;
    const added: LayerDescription[] = [];
    for (const l of layers) {
      const d = this.describe(l);
      if (d !== null) added.push(d);
    }
    this.post({ t: 'map', mapId, handles: layers.map((l) => l.handle), added });
  }

  /** A layer the worker has not been sent yet, once; null when it has it. */
  private describe(l: Layer): LayerDescription | null {
    if (this.known.has(l.handle)) return null;
    this.known.add(l.handle);
    return { handle: l.handle, path: l.path, summary: l.summary };
  }

  dropMap(mapId: number): void {
    if (this.dead !== null) return;
    this.post({ t: 'drop', mapId });
  }

  /** The core closed `layer`: with reads in flight, first hand the worker a descriptor for it. */
  closeLayer(layer: Layer): void {
    if (this.dead !== null || !this.known.delete(layer.handle)) return;
    let fd = -1;
    if (this.pending.size > 0) {
      try {
        fd = openLayerForReading(layer.path);
      } catch {
        // the file is already gone: a read that needs it fails with IO_ERROR naming it
      }
    }
    if (fd >= 0) {
      this.handedOver.set(layer.handle, fd);
      this.side.postMessage({ handle: layer.handle, fd } satisfies Retained);
    }
    this.post({ t: 'close', handle: layer.handle, retained: fd >= 0 });
  }

  /** getPages on the worker: the plan is copied now; out, status and counts are filled at the end. */
  read(plan: Uint8Array, out: Uint8Array, status: Uint8Array, counts: Uint32Array): Promise<void> {
    if (!(plan instanceof Uint8Array) || !(out instanceof Uint8Array) || !(status instanceof Uint8Array) || !(counts instanceof Uint32Array)) {
      return Promise.reject(new StrataError('BAD_ARGUMENT', 'getPagesInBackground takes (Buffer plan, Uint8Array out, Uint8Array status, Uint32Array counts)'));
    }
    const requests = status.length;
    if (out.length !== requests * PAGE_SIZE || counts.length !== requests * COUNTS_PER_REQUEST) {
      return Promise.reject(new StrataError('BAD_ARGUMENT', `getPagesInBackground: out holds ${out.length} bytes and counts ${counts.length} entries for ${requests} requests`));
    }
    const into = this.spareOut(requests * PAGE_SIZE);
    const transfer = into === null ? [] : [into.buffer as ArrayBuffer];
    return this.send((id) => ({ t: 'read', id, plan: new Uint8Array(plan), requests, into }), (r, resolve: () => void) => {
      out.set(r.out!);
      status.set(r.status!);
      counts.set(r.counts!);
      this.keepSpare(r.out!);
      resolve();
    }, transfer);
  }

  /** layerKeys on the worker (the arguments are checked by the core). */
  keys(layer: Layer, keyStart: Buffer, keyEnd: Buffer, maxKeys: number): Promise<Buffer> {
    const added = this.describe(layer);
    return this.send(
      (id) => ({ t: 'keys', id, handle: layer.handle, added, keyStart: new Uint8Array(keyStart), keyEnd: new Uint8Array(keyEnd), maxKeys }),
      (r, resolve: (keys: Buffer) => void) => resolve(asBuffer(r.keys!)),
    );
  }

  /** Sends one request; `answer` settles it from the worker's successful reply. */
  private send<T>(request: (id: number) => Message, answer: (r: Reply, resolve: (v: T) => void) => void, transfer: ArrayBuffer[] = []): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref(); // a request in flight keeps the process alive
      this.pending.set(id, { answer: (r) => answer(r, resolve), reject });
      this.post(request(id), transfer);
    });
  }

  /**
   * A page buffer a finished read handed back, to lend to the next read of `bytes`: image creation
   * reads 256 KB at a time, and a fresh buffer per read was 160 MB of ArrayBuffers a 20,000-page
   * pass for this thread's GC to account for (V8 starts full collections on their growth).
   */
  private spareOut(bytes: number): Uint8Array | null {
    const i = this.spares.findIndex((b) => b.byteLength === bytes);
    if (i < 0) return null;
    return new Uint8Array(this.spares.splice(i, 1)[0]);
  }

  private keepSpare(out: Uint8Array): void {
    if (this.spares.length < SPARE_OUT_BUFFERS && out.byteOffset === 0 && out.byteLength === out.buffer.byteLength) this.spares.push(out.buffer as ArrayBuffer);
  }

  async crash(): Promise<void> {
    await this.worker.terminate();
  }

  /** The core closed: reads in flight fail with CLOSED. */
  async stop(): Promise<void> {
    if (this.dead !== null) return;
    this.fail('was stopped with its core', 'CLOSED');
    this.side.close();
    await this.worker.terminate();
    this.closeAllHandedOver();
  }

  private closeHandedOver(handle: number): void {
    const fd = this.handedOver.get(handle);
    if (fd === undefined) return;
    this.handedOver.delete(handle);
    fs.closeSync(fd);
  }

  /** Only once the worker has exited: it may still be reading through them until then. */
  private closeAllHandedOver(): void {
    for (const handle of [...this.handedOver.keys()]) this.closeHandedOver(handle);
  }

  private post(m: Message, transfer: ArrayBuffer[] = []): void {
    this.worker.postMessage(m, transfer);
  }

  private settle(r: Reply): void {
    const p = this.pending.get(r.id);
    if (p === undefined) return;
    this.pending.delete(r.id);
    if (this.pending.size === 0) this.worker.unref();
    if (r.error !== undefined) {
      p.reject(fromWire(r.error));
      return;
    }
    stats.offThread++;
    p.answer(r);
  }

  /** The worker is gone: fail the reads it held; the core reads on its own thread from now on. */
  private fail(why: string, code: 'IO_ERROR' | 'CLOSED' = 'IO_ERROR'): void {
    if (this.dead !== null) return;
    live.delete(this);
    this.dead = `the read worker ${why}`;
    stats.inlineReason = this.dead;
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(new StrataError(code, `background read: ${this.dead}`));
    }
  }
}

// ---- the worker's side --------------------------------------------------------------------------

/** The worker's copy of the core's layers and maps, and the reads it runs over them. */
class ReadWorkerState {
  private readonly cache = new PageCache(READ_WORKER_CACHE_BYTES);
  private readonly handles: FileHandles;
  private readonly layers = new Map<number, Layer>();
  private readonly maps = new Map<number, LayerMap>();
  private readonly reconstructor = new Reconstructor(this.maps);
  /** Descriptors the main thread opened at a close, by layer handle, not yet used; the main thread closes them. */
  private readonly retained = new Map<number, number>();
  private readonly side: MessagePort;

  constructor(maxOpenLayerFiles: number, side: MessagePort) {
    this.side = side;
    this.handles = new FileHandles(maxOpenLayerFiles, (id, path) => {
      this.drainRetained();
      const fd = this.retained.get(id);
      if (fd === undefined) return { fd: openLayerForReading(path), borrowed: false };
      this.retained.delete(id);
      return { fd, borrowed: true };
    });
  }

  handle(m: Message): Reply | Closed | null {
    switch (m.t) {
      case 'map':
        this.setMap(m.mapId, m.handles, m.added);
        return null;
      case 'drop':
        this.maps.delete(m.mapId);
        return null;
      case 'close':
        this.close(m.handle);
        return m.retained ? { closed: m.handle } : null;
      case 'read':
        return this.read(m.id, m.plan, m.requests, m.into);
      case 'keys':
        if (m.added !== null) this.addLayer(m.added);
        return this.keys(m);
    }
  }

  private addLayer(d: LayerDescription): void {
    const summary: SummaryFields = { ...d.summary, keyStart: asBuffer(d.summary.keyStart), keyEnd: asBuffer(d.summary.keyEnd) };
    const file = new BlockFile(d.path, -1, d.handle, summary.totalBlocks, this.cache, this.handles);
    this.layers.set(d.handle, new Layer(d.handle, d.path, summary, file));
  }

  private keys(m: Extract<Message, { t: 'keys' }>): Reply {
    try {
      const layer = this.layers.get(m.handle);
      // The main thread sends a layer before the first listing of it, and closes it only after.
      if (layer === undefined) throw new Error(`read worker: a key listing of layer ${m.handle}, which it was never sent`);
      // A copy of its own, to transfer: layerKeys may return a view of Node's shared buffer pool.
      return { id: m.id, keys: new Uint8Array(layerKeys(layer, asBuffer(m.keyStart), asBuffer(m.keyEnd), m.maxKeys)) };
    } catch (e) {
      return { id: m.id, error: toWire(e) };
    }
  }

  private setMap(mapId: number, handles: readonly number[], added: readonly LayerDescription[]): void {
    for (const d of added) this.addLayer(d);
    const map = this.maps.get(mapId) ?? new LayerMap();
    map.layers = handles.map((h) => {
      const l = this.layers.get(h);
      // The main thread sends a layer before any map that holds it, and closes it only after.
      if (l === undefined) throw new Error(`read worker: map ${mapId} holds layer ${h}, which it was never sent`);
      return l;
    });
    this.maps.set(mapId, map);
  }

  private close(handle: number): void {
    this.drainRetained();
    this.retained.delete(handle);
    this.layers.get(handle)?.close(); // leaves a handed-over descriptor open: see FileHandles' borrowed entries
    this.layers.delete(handle);
  }

  private read(id: number, plan: Uint8Array, requests: number, into: Uint8Array | null): Reply {
    // getPages writes every page of `out` (zeros for a page not found), so a lent buffer needs no clearing.
    const out = into !== null && into.length === requests * PAGE_SIZE ? into : new Uint8Array(requests * PAGE_SIZE);
    const status = new Uint8Array(requests);
    const counts = new Uint32Array(requests * COUNTS_PER_REQUEST);
    try {
      this.reconstructor.getPages(asBuffer(plan), out, status, counts);
      return { id, out, status, counts };
    } catch (e) {
      return { id, error: toWire(e) };
    }
  }

  private drainRetained(): void {
    for (let m = receiveMessageOnPort(this.side); m !== undefined; m = receiveMessageOnPort(this.side)) {
      const r = m.message as Retained;
      this.retained.set(r.handle, r.fd);
    }
  }
}

function serve(): void {
  const data = workerData as { nice: number; maxOpenLayerFiles: number; side: MessagePort };
  lowerThisThreadPriority(data.nice);
  const state = new ReadWorkerState(data.maxOpenLayerFiles, data.side);
  parentPort!.on('message', (m: Message) => {
    const reply = state.handle(m);
    if (reply === null) return;
    parentPort!.postMessage(reply, transferOf(reply));
  });
}

/** The reply's arrays, moved to the main thread rather than copied. */
function transferOf(reply: Reply | Closed): ArrayBuffer[] {
  if (!('id' in reply)) return [];
  if (reply.keys !== undefined) return [reply.keys.buffer as ArrayBuffer];
  if (reply.out === undefined) return [];
  return [reply.out.buffer, reply.status!.buffer, reply.counts!.buffer] as ArrayBuffer[];
}

if (!isMainThread && (workerData as { role?: unknown } | null)?.role === WORKER_ROLE) serve();
