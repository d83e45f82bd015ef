/**
 * The pure-TypeScript core: the twin of the C++ addon (native/), used in tests and wherever the
 * addon cannot load. Same contract (core.ts), same bytes on disk, same page-cache policy.
 */
import {
  DEFAULT_MAX_OPEN_LAYER_FILES, type Core, type CoreOptions, type DeltaCompactionOptions, type DeltaCompactionResult, type LayerSummary, type LayerWriter,
  type LayerWriterOptions,
} from '../core';
import { compactDeltaLayersOffThread } from './compaction_worker';
import { ReadWorker, countInlineRead } from './read_worker';
import { faults } from '../../fault_injection';
import { CODEC_LZ4, CODEC_NONE, CODEC_ZSTD } from '../format';
import { StrataError } from '../../errors';
import { KEY_MAX, KEY_MIN, KEY_SIZE } from '../../key';
import { PAGE_SIZE } from '../../record';
import { Layer, MAX_KEYS_UNLIMITED, StreamingLayerWriter, layerKeys, openLayerFile, publicSummary, verifyLayer } from './layer_file';
import { LayerMap } from './layer_map';
import { withCacheOnlyReads } from './block_io';
import { PageCache } from './page_cache';
import { FileHandles } from './file_handles';
import { Reconstructor } from './reconstruct';

/** Largest id handed out; handles and map ids are u32 on the C++ side and never reused. */
const MAX_ID = 0xffff_ffff;

class TsCore implements Core {
  readonly implementation = 'ts' as const;
  readonly pageCache: PageCache;
  private readonly fileHandles: FileHandles;
  private readonly layers = new Map<number, Layer>();
  private readonly maps = new Map<number, LayerMap>();
  private readonly reconstructor: Reconstructor;
  private readonly maxOpenLayerFiles: number;
  /** Started at the first background read; null once it could not start (why: inlineReason). */
  private readWorker: ReadWorker | null | undefined;
  private nextHandle = 1;
  private nextMapId = 1;
  private closed = false;

  constructor(opts: CoreOptions) {
    if (opts === null || typeof opts !== 'object') throw new StrataError('BAD_ARGUMENT', 'core options must be an object');
    this.pageCache = new PageCache(opts.pageCacheBytes, opts.pageCachePolicy);
    this.maxOpenLayerFiles = checkMaxOpenLayerFiles(opts.maxOpenLayerFiles);
    this.fileHandles = new FileHandles(this.maxOpenLayerFiles);
    this.reconstructor = new Reconstructor(this.maps);
  }

  createLayerWriter(path: string, opts: LayerWriterOptions): LayerWriter {
    this.checkOpen();
    checkPath(path);
    return new StreamingLayerWriter(path, opts);
  }

  openLayer(path: string): number {
    this.checkOpen();
    checkPath(path);
    // The handle is used up even when the open fails, as in the C++ core: ids are never reused.
    const handle = this.nextHandle;
    if (handle > MAX_ID) throw new StrataError('BAD_ARGUMENT', 'out of layer handles');
    this.nextHandle++;
    this.layers.set(handle, openLayerFile(path, handle, this.pageCache, this.fileHandles));
    return handle;
  }

  layerSummary(handle: number): LayerSummary {
    return publicSummary(this.layer(handle).summary);
  }

  layerKeys(handle: number, keyStart: Buffer = KEY_MIN, keyEnd: Buffer = KEY_MAX, maxKeys: number = MAX_KEYS_UNLIMITED): Buffer {
    checkKeysArgs(keyStart, keyEnd, maxKeys);
    return layerKeys(this.layer(handle), keyStart, keyEnd, maxKeys);
  }

  layerKeysInBackground(handle: number, keyStart: Buffer = KEY_MIN, keyEnd: Buffer = KEY_MAX, maxKeys: number = MAX_KEYS_UNLIMITED): Promise<Buffer> {
    let layer: Layer;
    try {
      checkKeysArgs(keyStart, keyEnd, maxKeys);
      layer = this.layer(handle);
    } catch (e) {
      return Promise.reject(e);
    }
    const worker = this.backgroundReader();
    if (worker === null) return Promise.resolve(layerKeys(layer, keyStart, keyEnd, maxKeys));
    return worker.keys(layer, keyStart, keyEnd, maxKeys);
  }

  verifyLayer(handle: number): number {
    return verifyLayer(this.layer(handle));
  }

  closeLayer(handle: number): void {
    const layer = this.layer(handle);
    this.layers.delete(handle);
    layer.close();
    this.readWorker?.closeLayer(layer);
  }

  createLayerMap(): number {
    this.checkOpen();
    const id = this.nextMapId;
    if (id > MAX_ID) throw new StrataError('BAD_ARGUMENT', 'out of layer map ids');
    this.nextMapId++;
    this.maps.set(id, new LayerMap());
    this.readWorker?.setMap(id, []);
    return id;
  }

  setLayerMap(mapId: number, handles: readonly number[]): void {
    const map = this.map(mapId);
    if (!Array.isArray(handles)) throw new StrataError('BAD_ARGUMENT', 'setLayerMap takes an array of layer handles');
    // Resolve every handle before changing anything: the map is replaced as a whole or not at all.
    const layers = handles.map((h) => this.layer(h));
    map.layers = layers;
    this.readWorker?.setMap(mapId, layers);
  }

  dropLayerMap(mapId: number): void {
    this.map(mapId);
    this.maps.delete(mapId);
    this.readWorker?.dropMap(mapId);
  }

  getPages(plan: Buffer, out: Uint8Array, status: Uint8Array, counts: Uint32Array): void {
    this.checkOpen();
    this.reconstructor.getPages(plan, out, status, counts);
  }

  /**
   * Pure TS has no thread to move to: the read runs now, on the calling thread. With
   * `cachedInline` it first tries cached blocks only, as the native core does, so both cores'
   * page-cache counters move alike.
   */
  tryGetPagesCached(plan: Buffer, out: Uint8Array, status: Uint8Array, counts: Uint32Array, outOffset = 0): boolean {
    const into = outOffset === 0 ? out : pagesAt(out, outOffset, status.length);
    return withCacheOnlyReads(() => this.getPages(plan, into, status, counts));
  }

  getPagesAsync(plan: Buffer, out: Uint8Array, status: Uint8Array, counts: Uint32Array, cachedInline: boolean): Promise<void> {
    try {
      if (!cachedInline || !withCacheOnlyReads(() => this.getPages(plan, out, status, counts))) this.getPages(plan, out, status, counts);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  getPagesInBackground(plan: Buffer, out: Uint8Array, status: Uint8Array, counts: Uint32Array): Promise<void> {
    try {
      this.checkOpen();
    } catch (e) {
      return Promise.reject(e);
    }
    const worker = this.backgroundReader();
    if (worker === null) return this.getPagesAsync(plan, out, status, counts, false);
    return worker.read(plan, out, status, counts);
  }

  /** The read worker, started on first use; null where reads run here (and why, in its stats). */
  private backgroundReader(): ReadWorker | null {
    if (faults.active) {
      countInlineRead('fault injection is armed on this thread');
      return null;
    }
    if (this.readWorker === undefined) {
      const started = ReadWorker.start(this.maxOpenLayerFiles, this.maps);
      if (started instanceof ReadWorker) return (this.readWorker = started);
      this.readWorker = null;
      countInlineRead(started.reason);
      return null;
    }
    if (this.readWorker === null || this.readWorker.unusable !== null) {
      countInlineRead(null);
      return null;
    }
    return this.readWorker;
  }

  async compactDeltas(opts: DeltaCompactionOptions): Promise<DeltaCompactionResult> {
    this.checkOpen();
    checkCompactionOptions(opts);
    for (const p of opts.inputs) checkPath(p);
    return compactDeltaLayersOffThread(opts);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.readWorker) void this.readWorker.stop();
    for (const layer of this.layers.values()) layer.close();
    this.layers.clear();
    this.maps.clear();
  }

  private layer(handle: number): Layer {
    this.checkOpen();
    const layer = this.layers.get(handle);
    if (layer === undefined) throw new StrataError('BAD_ARGUMENT', `unknown layer handle ${String(handle)}`);
    return layer;
  }

  private map(mapId: number): LayerMap {
    this.checkOpen();
    const map = this.maps.get(mapId);
    if (map === undefined) throw new StrataError('BAD_ARGUMENT', `unknown layer map id ${String(mapId)}`);
    return map;
  }



  private checkOpen(): void {
    if (this.closed) throw new StrataError('CLOSED', 'the core is closed');
  }
}

function checkMaxOpenLayerFiles(v: unknown): number {
  if (v === undefined) return DEFAULT_MAX_OPEN_LAYER_FILES;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
    throw new StrataError('BAD_ARGUMENT', 'maxOpenLayerFiles must be a positive integer');
  }
  return v;
}

function checkPath(path: unknown): asserts path is string {
  if (typeof path !== 'string' || path.length === 0) throw new StrataError('BAD_ARGUMENT', 'layer path must be a non-empty string');
}

export function createTsCore(opts: CoreOptions): Core {
  return new TsCore(opts);
}

function checkKeyArg(k: unknown, what: string): void {
  if (!Buffer.isBuffer(k) || k.length !== KEY_SIZE) throw new StrataError('BAD_ARGUMENT', `${what} must be a ${KEY_SIZE}-byte Buffer`);
}

/** layerKeys' arguments, checked as the native core checks them (maxKeys: an integer in [0, 2^32)). */
function checkKeysArgs(keyStart: unknown, keyEnd: unknown, maxKeys: unknown): void {
  checkKeyArg(keyStart, 'keyStart');
  checkKeyArg(keyEnd, 'keyEnd');
  if (typeof maxKeys !== 'number' || !Number.isInteger(maxKeys) || maxKeys < 0 || maxKeys > MAX_KEYS_UNLIMITED) {
    throw new StrataError('BAD_ARGUMENT', `maxKeys must be an integer in [0, ${MAX_KEYS_UNLIMITED}]`);
  }
}

/** tryGetPagesCached's outOffset: the view of `out` its pages go to, checked as the native core does. */
function pagesAt(out: Uint8Array, outOffset: number, pages: number): Uint8Array {
  const bytes = pages * PAGE_SIZE;
  if (!Number.isInteger(outOffset) || outOffset < 0 || outOffset > out.length || out.length - outOffset < bytes) {
    throw new StrataError('BAD_ARGUMENT', `outOffset ${outOffset} + ${bytes} page bytes is beyond out's ${out.length} bytes`);
  }
  return out.subarray(outOffset, outOffset + bytes);
}

/** The checks the addon makes at its boundary (native/addon.cc, CompactDeltasJs). */
function checkCompactionOptions(opts: DeltaCompactionOptions): void {
  if (opts === null || typeof opts !== 'object' || !Array.isArray(opts.inputs) || !opts.inputs.every((p) => typeof p === 'string')) {
    throw new StrataError('BAD_ARGUMENT', 'inputs must be an array of paths');
  }
  if (typeof opts.outputPrefix !== 'string') throw new StrataError('BAD_ARGUMENT', 'outputPrefix must be a string');
  if (typeof opts.outputSuffix !== 'string') throw new StrataError('BAD_ARGUMENT', 'outputSuffix must be a string');
  if (!Number.isSafeInteger(opts.targetBytes) || opts.targetBytes < 0) throw new StrataError('BAD_ARGUMENT', 'targetBytes must be a non-negative integer');
  // Checked here, not only by the writer: with no entry to write, no writer would see it.
  if (opts.codec !== CODEC_NONE && opts.codec !== CODEC_LZ4 && opts.codec !== CODEC_ZSTD) throw new StrataError('BAD_ARGUMENT', `unknown codec ${String(opts.codec)}`);
  if (typeof opts.lsnStart !== 'bigint' || typeof opts.lsnEnd !== 'bigint' || opts.lsnStart < 0n || opts.lsnStart >= opts.lsnEnd) {
    throw new StrataError('BAD_ARGUMENT', 'lsnStart must be below lsnEnd');
  }
}
