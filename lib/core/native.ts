/**
 * Loads the C++ addon (native/) and wraps it as a `Core`.
 * Load order: STRATA_NATIVE_PATH (an explicit .node file; the sanitizer run uses it, and tests use it
 * to simulate a broken addon) → node-gyp-build over the package root, which takes a local build
 * (build/Release, made by scripts/build-native.js) when there is one and otherwise the prebuilt
 * N-API binary shipped in the npm tarball (prebuilds/<platform>-<arch>/strata.napi[.glibc].node).
 * A local build wins so that a developer's freshly compiled addon is never shadowed by a stale prebuild.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type {
  Core, CoreOptions, DeltaCompactionOptions, DeltaCompactionResult, LayerKind, LayerSummary, LayerWriter, LayerWriterOptions, PageCacheApi, PageCacheStats,
} from './core';
import { DEFAULT_MAX_OPEN_LAYER_FILES } from './core';
import { useBackgroundLaneOf } from './compress_worker';
import type { DeltaArena } from './delta_arena';
import { StrataError, toStrataError } from '../errors';
import { registerNativeFaultBridge, type FaultOp } from '../fault_injection';
import { KEY_MAX, KEY_MIN } from '../key';
import { CODEC_LZ4, CODEC_NONE, CODEC_ZSTD, LAYER_KIND_DELTA, LAYER_KIND_IMAGE, type CodecId } from './format';

/** What the addon's `Core` object exposes (native/addon.cc, class JsCore). */
export interface NativeCoreHandle {
  cacheCapacity(): number;
  cacheStats(): PageCacheStats;
  cacheLookup(fileId: number, blkno: number, into: Uint8Array): boolean;
  cacheInsert(fileId: number, blkno: number, data: Uint8Array): void;
  cachePin(fileId: number, blkno: number): boolean;
  cacheUnpin(fileId: number, blkno: number): void;
  cacheContains(fileId: number, blkno: number): boolean;
  openLayer(path: string): number;
  layerSummary(handle: number): NativeLayerSummary;
  layerKeys(handle: number, keyStart: Buffer, keyEnd: Buffer, maxKeys?: number): Buffer;
  layerKeysAsync(handle: number, keyStart: Buffer, keyEnd: Buffer, maxKeys?: number): Promise<Buffer>;
  verifyLayer(handle: number): number;
  closeLayer(handle: number): void;
  createLayerMap(): number;
  setLayerMap(mapId: number, handles: Uint32Array): void;
  dropLayerMap(mapId: number): void;
  getPages(plan: Uint8Array, out: Uint8Array, status: Uint8Array, counts: Uint32Array): void;
  tryGetPagesCached(plan: Uint8Array, out: Uint8Array, status: Uint8Array, counts: Uint32Array, outOffset: number): boolean;
  getPagesAsync(plan: Uint8Array, out: Uint8Array, status: Uint8Array, counts: Uint32Array, cachedInline: boolean, background?: boolean): Promise<void>;
  compactDeltas(
    inputs: readonly string[], outputPrefix: string, outputSuffix: string, targetBytes: number, codec: number, lsnStart: bigint, lsnEnd: bigint,
  ): Promise<DeltaCompactionResult>;
  close(): void;
}

/** The summary as the addon returns it: like LayerSummary, with the codec as a plain number. */
export interface NativeLayerSummary extends Omit<LayerSummary, 'codec'> {
  codec: number;
}

export interface NativeLayerWriterHandle {
  append(indexKeys: Uint8Array, blobs: Uint8Array, willInit: Uint8Array): void;
  appendAsync(indexKeys: Uint8Array, blobs: Uint8Array, willInit: Uint8Array): Promise<void>;
  finish(): number;
  finishAsync(): Promise<number>;
  finishArenaAsync(keys: Uint8Array, heads: Uint8Array, entries: Uint8Array, slabs: Uint8Array[], packedAt: Uint8Array, packed: Uint8Array): Promise<number>;
  abort(): void;
}

export interface NativeBinding {
  /** pageCachePolicy: 'clock' (default), 's3fifo' or 'adaptive-s3fifo'; maxOpenLayerFiles: see CoreOptions. */
  Core: new (pageCacheBytes: number, pageCachePolicy?: string, maxOpenLayerFiles?: number) => NativeCoreHandle;
  /** kind: 1 delta, 2 image (LAYER_KIND_*); codec: CODEC_*. */
  LayerWriter: new (
    path: string, kind: number, codec: number, keyStart: Uint8Array, keyEnd: Uint8Array, lsnStart: bigint, lsnEnd: bigint,
  ) => NativeLayerWriterHandle;
  /** The C++ CRC-32, for tests against zlib.crc32. */
  crc32(data: Uint8Array, value?: number): number;
  /** The C++ decompressor (codec 1 lz4, 2 zstd) on a blob payload, for tests; BAD_ARGUMENT on malformed input. */
  decompress(codec: number, stored: Uint8Array, rawLen: number): Buffer;
  /** The C++ redo engine alone: apply `records` (serialized, newest first) into `out`; for tests. */
  redoChain(records: readonly Uint8Array[], out: Uint8Array): void;
  /** The background lane's slots, process-wide (native/background_thread.h); returns the previous count. */
  setBackgroundThreads(slots: number): number;
  backgroundLaneStats(): { slots: number; busy: number; mostBusy: number };
  /**
   * Blocks until a lane slot is free: for a thread computing background work itself, never the
   * event loop's. `held` (element 0) is set to 1 in the same call, so whoever started the thread
   * can give the slot back if the thread dies holding it.
   */
  enterBackgroundLane(held?: Int32Array): void;
  /**
   * Gives a slot back; true if one was. With `held`, only when the cell holds one (clearing it),
   * else false; without it, BAD_ARGUMENT when no slot is held.
   */
  leaveBackgroundLane(held?: Int32Array): boolean;
  /** Test-only fault injection in the layer writer (native/fault_injection.h); opIndex -1 only counts. */
  setFaultInjection?(opIndex: number, n: number, errno: number, shortWrite: boolean): void;
  clearFaultInjection?(): void;
  /** Calls per op since setFaultInjection, in NATIVE_FAULT_OPS order. */
  faultInjectionCounts?(): number[];
}

/** The native fault ops in the addon's index order (native/fault_injection.h, fault::Op). */
const NATIVE_FAULT_OPS: readonly FaultOp[] = ['layer_write', 'layer_fsync', 'native_read'];

function bridgeFaults(b: NativeBinding): void {
  const { setFaultInjection: set, clearFaultInjection: clear, faultInjectionCounts: counts } = b;
  if (set === undefined || clear === undefined || counts === undefined) return; // an addon built without it
  registerNativeFaultBridge({
    set: (op, n, errno, shortWrite) => set(op === null ? -1 : NATIVE_FAULT_OPS.indexOf(op), n, errno, shortWrite),
    clear: () => clear(),
    counts: () => {
      const c = counts();
      return Object.fromEntries(NATIVE_FAULT_OPS.map((op, i) => [op, c[i] ?? 0]));
    },
  });
}

/** The package root: dist/core/ (or lib/core/ under vitest) sits two levels below it. */
const PACKAGE_ROOT = path.join(__dirname, '..', '..');

/** Most background slots setBackgroundThreads accepts (kMaxBackgroundThreads in native/addon.cc). */
export const MAX_BACKGROUND_THREADS = 1024;

/** The background lane as the addon reports it (native/background_thread.h). */
export interface BackgroundLaneStats {
  /** Pieces of background work that may compute at once. */
  slots: number;
  /** Slots held now. */
  busy: number;
  /** The most held at once since the count was last set. */
  mostBusy: number;
  /** False where the addon has not loaded: then nothing is gated (the TS core's workers never are). */
  active: boolean;
}

/** Where the loaded (or attempted) binary came from. */
export type NativeSource = 'env' | 'build' | 'prebuild';

/** What `nativeInfo()` reports: the loaded binding's details, or why it did not load. */
export interface NativeInfo {
  loaded: boolean;
  /** The .node file loaded or tried; null when none was found. */
  file: string | null;
  source: NativeSource | null;
  /** This package's version (the addon is built from the same sources). */
  version: string;
  /** `<platform>-<arch>` of this process, the prebuild directory node-gyp-build looks for. */
  target: string;
  /** Tags from a prebuild's file name, e.g. ['napi', 'glibc']; empty for other sources. */
  tags: string[];
  /**
   * Build flags recorded next to the binary (`<file>.build.json`: defines, cflags, compiler, glibc
   * floor), written by scripts/build-native.js and the prebuild step; null when none was recorded.
   */
  build: Record<string, unknown> | null;
  /** The load error's message when `loaded` is false. */
  error: string | null;
}

interface LoadAttempt {
  binding: NativeBinding | null;
  error: Error | null;
  file: string | null;
  source: NativeSource | null;
}

let attempt: LoadAttempt | undefined;

/** node-gyp-build's resolver: the path of the binary it would load, or a throw naming the target. */
type GypBuildResolver = { path(dir: string): string };

function locateAddon(): { file: string; source: NativeSource } {
  const explicit = process.env.STRATA_NATIVE_PATH;
  if (explicit !== undefined && explicit !== '') return { file: path.resolve(explicit), source: 'env' };
  const gypBuild = require('node-gyp-build') as GypBuildResolver;
  const file = gypBuild.path(PACKAGE_ROOT);
  const inPrebuilds = path.relative(path.join(PACKAGE_ROOT, 'prebuilds'), file).split(path.sep)[0] !== '..';
  return { file, source: inPrebuilds ? 'prebuild' : 'build' };
}

/** First line only: require's "Require stack" and node-gyp-build's "loaded from" would spread a warning over many lines. */
function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0].trim();
}

function tryLoad(): LoadAttempt {
  let where: { file: string; source: NativeSource };
  try {
    where = locateAddon();
  } catch (e) {
    const why = `no prebuilt binary for ${targetName()} and no local build (${firstLine(e)})`;
    return { binding: null, error: new Error(why, { cause: e }), file: null, source: null };
  }
  const { file, source } = where;
  try {
    const b = require(file) as Partial<NativeBinding> | null;
    if (b === null || typeof b !== 'object' || typeof b.Core !== 'function' || typeof b.LayerWriter !== 'function') {
      return { binding: null, error: new Error(`${file} is not the Strata addon (it lacks Core / LayerWriter)`), file, source };
    }
    bridgeFaults(b as NativeBinding);
    if (typeof b.setBackgroundThreads === 'function') {
      b.setBackgroundThreads(backgroundThreadsWanted);
      const binding = b as NativeBinding;
      useBackgroundLaneOf(file, (held) => binding.leaveBackgroundLane(held));
    }
    return { binding: b as NativeBinding, error: null, file, source };
  } catch (e) {
    return { binding: null, error: new Error(`cannot load ${file}: ${firstLine(e)}`, { cause: e }), file, source };
  }
}

function loadAttempt(): LoadAttempt {
  if (attempt === undefined) attempt = tryLoad();
  return attempt;
}

function targetName(): string {
  return `${process.platform}-${process.arch}`;
}

/** Why the addon cannot load, or null when it loads. Memoized; never throws. */
export function nativeLoadError(): Error | null {
  return loadAttempt().error;
}

/** The raw binding; throws the load error when the addon is unavailable. */
export function loadNativeBinding(): NativeBinding {
  const a = loadAttempt();
  if (a.binding === null) throw a.error ?? new Error('the native addon did not load');
  return a.binding;
}

/**
 * The background lane's starting slots: STRATA_BACKGROUND_THREADS when it holds a whole number
 * from 1 to MAX_BACKGROUND_THREADS (as UV_THREADPOOL_SIZE sizes libuv's pool), else one fewer
 * than the CPUs this process may run on, at least 1, so a CPU is free when the event loop wakes.
 */
export function defaultBackgroundThreads(env: NodeJS.ProcessEnv = process.env): number {
  const asked = Number(env.STRATA_BACKGROUND_THREADS);
  if (Number.isInteger(asked) && asked >= 1 && asked <= MAX_BACKGROUND_THREADS) return asked;
  return Math.max(1, os.availableParallelism() - 1);
}

let backgroundThreadsWanted = defaultBackgroundThreads();

/**
 * How many pieces of the native core's background work (flush, compaction, image creation's
 * reads and writes, and the compression of image pages, for either core) may compute at once in
 * this process; the rest wait their turn on libuv's pool (native/background_thread.h). Applies to
 * the addon now or once it loads. Returns the previous count.
 */
export function setBackgroundThreads(slots: number): number {
  if (!Number.isInteger(slots) || slots < 1 || slots > MAX_BACKGROUND_THREADS) {
    throw new StrataError('BAD_ARGUMENT', `setBackgroundThreads: slots must be an integer from 1 to ${MAX_BACKGROUND_THREADS}, not ${String(slots)}`);
  }
  const previous = backgroundThreadsWanted;
  backgroundThreadsWanted = slots;
  attempt?.binding?.setBackgroundThreads(slots);
  return previous;
}

/** The lane's state; where the addon has not loaded, the count it will get and `active: false`. */
export function backgroundLaneStats(): BackgroundLaneStats {
  const b = attempt?.binding;
  if (!b) return { slots: backgroundThreadsWanted, busy: 0, mostBusy: 0, active: false };
  return { ...b.backgroundLaneStats(), active: true };
}

/** Details of the native binding Strata loaded (or tried to): for bug reports and `strata --version`. */
export function nativeInfo(): NativeInfo {
  const a = loadAttempt();
  return {
    loaded: a.binding !== null,
    file: a.file,
    source: a.source,
    version: packageVersion(),
    target: targetName(),
    tags: a.source === 'prebuild' && a.file !== null ? prebuildTags(a.file) : [],
    build: a.file === null ? null : readBuildRecord(a.file),
    error: a.error === null ? null : a.error.message,
  };
}

/** prebuildify names files `<name>.<tag>...node`: strata.napi.glibc.node → ['napi', 'glibc']. */
function prebuildTags(file: string): string[] {
  return path.basename(file).split('.').slice(1, -1);
}

/** `<file minus .node>.build.json`; a missing or unreadable record is simply not reported. */
function readBuildRecord(file: string): Record<string, unknown> | null {
  const record = file.replace(/\.node$/, '') + '.build.json';
  try {
    const v = JSON.parse(fs.readFileSync(record, 'utf8')) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Runs a binding call, turning the addon's coded Errors into StrataErrors. */
function call<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw toStrataError(e);
  }
}

const U32_MAX = 0xffff_ffff;

function toHandleArray(handles: readonly number[]): Uint32Array {
  if (!Array.isArray(handles)) throw new StrataError('BAD_ARGUMENT', 'layer handles must be an array');
  const out = new Uint32Array(handles.length);
  handles.forEach((h, i) => {
    if (!Number.isInteger(h) || h < 0 || h > U32_MAX) {
      throw new StrataError('BAD_ARGUMENT', `layer handle ${String(h)} at index ${i} is not a valid handle`);
    }
    out[i] = h;
  });
  return out;
}

function toCodecId(codec: number): CodecId {
  if (codec === CODEC_NONE || codec === CODEC_LZ4 || codec === CODEC_ZSTD) return codec;
  throw new StrataError('CORRUPT_LAYER', `addon reported unknown codec ${codec}`);
}

function layerKindCode(kind: LayerKind): number {
  if (kind === 'delta') return LAYER_KIND_DELTA;
  if (kind === 'image') return LAYER_KIND_IMAGE;
  throw new StrataError('BAD_ARGUMENT', `layer kind must be 'delta' or 'image': got ${JSON.stringify(kind)}`);
}

class NativeLayerWriter implements LayerWriter {
  constructor(private readonly w: NativeLayerWriterHandle) {}
  append(indexKeys: Buffer, blobs: Buffer, willInit: Uint8Array): void {
    call(() => this.w.append(indexKeys, blobs, willInit));
  }
  appendAsync(indexKeys: Buffer, blobs: Buffer, willInit: Uint8Array): Promise<void> {
    let pending: Promise<void>;
    try {
      pending = call(() => this.w.appendAsync(indexKeys, blobs, willInit));
    } catch (e) {
      return Promise.reject(e);
    }
    return pending.catch((e: unknown) => { throw toStrataError(e); });
  }
  finish(): number {
    return call(() => this.w.finish());
  }
  finishAsync(): Promise<number> {
    let pending: Promise<number>;
    try {
      pending = call(() => this.w.finishAsync());
    } catch (e) {
      return Promise.reject(e);
    }
    return pending.catch((e: unknown) => { throw toStrataError(e); });
  }
  finishArenaAsync(arena: DeltaArena, onAppended?: () => void): Promise<number> {
    let pending: Promise<number>;
    try {
      pending = call(() => this.w.finishArenaAsync(arena.keys, bytesOf(arena.heads), arena.entries, arena.slabs, bytesOf(arena.packedAt), arena.packed));
    } catch (e) {
      return Promise.reject(e);
    }
    onAppended?.(); // the walk runs on a libuv thread: nothing more for the event loop to do
    return pending.catch((e: unknown) => { throw toStrataError(e); });
  }
  abort(): void {
    call(() => this.w.abort());
  }
}

/** A typed array's bytes, as the binding takes them (it reads i32s in the platform's order). */
function bytesOf(a: Int32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

class NativePageCache implements PageCacheApi {
  readonly capacityPages: number;
  constructor(private readonly c: NativeCoreHandle) {
    this.capacityPages = call(() => c.cacheCapacity());
  }
  stats(): PageCacheStats {
    return call(() => this.c.cacheStats());
  }
  lookup(fileId: number, blkno: number, into: Buffer): boolean {
    return call(() => this.c.cacheLookup(fileId, blkno, into));
  }
  insert(fileId: number, blkno: number, data: Buffer): void {
    call(() => this.c.cacheInsert(fileId, blkno, data));
  }
  pin(fileId: number, blkno: number): boolean {
    return call(() => this.c.cachePin(fileId, blkno));
  }
  unpin(fileId: number, blkno: number): void {
    call(() => this.c.cacheUnpin(fileId, blkno));
  }
  contains(fileId: number, blkno: number): boolean {
    return call(() => this.c.cacheContains(fileId, blkno));
  }
}

class NativeCore implements Core {
  readonly implementation = 'native' as const;
  readonly pageCache: PageCacheApi;

  constructor(private readonly binding: NativeBinding, private readonly c: NativeCoreHandle) {
    this.pageCache = new NativePageCache(c);
  }

  createLayerWriter(file: string, opts: LayerWriterOptions): LayerWriter {
    const kind = layerKindCode(opts.kind);
    const w = call(() => new this.binding.LayerWriter(file, kind, opts.codec, opts.keyStart, opts.keyEnd, opts.lsnStart, opts.lsnEnd));
    return new NativeLayerWriter(w);
  }

  openLayer(file: string): number {
    return call(() => this.c.openLayer(file));
  }

  layerSummary(handle: number): LayerSummary {
    const s = call(() => this.c.layerSummary(handle));
    return { ...s, codec: toCodecId(s.codec) };
  }

  layerKeys(handle: number, keyStart: Buffer = KEY_MIN, keyEnd: Buffer = KEY_MAX, maxKeys?: number): Buffer {
    return call(() => this.c.layerKeys(handle, keyStart, keyEnd, maxKeys));
  }

  layerKeysInBackground(handle: number, keyStart: Buffer = KEY_MIN, keyEnd: Buffer = KEY_MAX, maxKeys?: number): Promise<Buffer> {
    let pending: Promise<Buffer>;
    try {
      pending = call(() => this.c.layerKeysAsync(handle, keyStart, keyEnd, maxKeys));
    } catch (e) {
      return Promise.reject(e);
    }
    return pending.catch((e: unknown) => { throw toStrataError(e); });
  }

  verifyLayer(handle: number): number {
    return call(() => this.c.verifyLayer(handle));
  }

  closeLayer(handle: number): void {
    call(() => this.c.closeLayer(handle));
  }

  createLayerMap(): number {
    return call(() => this.c.createLayerMap());
  }

  setLayerMap(mapId: number, handles: readonly number[]): void {
    const arr = toHandleArray(handles);
    call(() => this.c.setLayerMap(mapId, arr));
  }

  dropLayerMap(mapId: number): void {
    call(() => this.c.dropLayerMap(mapId));
  }

  getPages(plan: Buffer, out: Uint8Array, status: Uint8Array, counts: Uint32Array): void {
    call(() => this.c.getPages(plan, out, status, counts));
  }

  tryGetPagesCached(plan: Buffer, out: Uint8Array, status: Uint8Array, counts: Uint32Array, outOffset = 0): boolean {
    // No call(): the page service's hot path, where a closure per read is measurable garbage.
    try {
      return this.c.tryGetPagesCached(plan, out, status, counts, outOffset);
    } catch (e) {
      throw toStrataError(e);
    }
  }

  getPagesInBackground(plan: Buffer, out: Uint8Array, status: Uint8Array, counts: Uint32Array): Promise<void> {
    return this.readAsync(plan, out, status, counts, false, true);
  }

  getPagesAsync(plan: Buffer, out: Uint8Array, status: Uint8Array, counts: Uint32Array, cachedInline: boolean): Promise<void> {
    return this.readAsync(plan, out, status, counts, cachedInline, false);
  }

  /** getPagesAsync on the libuv pool; `background` computes at the background priority (background_thread.h). */
  private readAsync(plan: Buffer, out: Uint8Array, status: Uint8Array, counts: Uint32Array, cachedInline: boolean, background: boolean): Promise<void> {
    let pending: Promise<void>;
    try {
      pending = call(() => this.c.getPagesAsync(plan, out, status, counts, cachedInline, background));
    } catch (e) {
      return Promise.reject(e);
    }
    return pending.catch((e: unknown) => { throw toStrataError(e); });
  }

  compactDeltas(opts: DeltaCompactionOptions): Promise<DeltaCompactionResult> {
    let pending: Promise<DeltaCompactionResult>;
    try {
      pending = call(() => this.c.compactDeltas(opts.inputs, opts.outputPrefix, opts.outputSuffix, opts.targetBytes, opts.codec, opts.lsnStart, opts.lsnEnd));
    } catch (e) {
      return Promise.reject(e);
    }
    return pending.catch((e: unknown) => { throw toStrataError(e); });
  }

  close(): void {
    call(() => this.c.close());
  }
}

/** A Core backed by the C++ addon; throws NATIVE_UNAVAILABLE when it cannot load. */
export function createNativeCore(opts: CoreOptions): Core {
  const err = nativeLoadError();
  if (err !== null) {
    throw new StrataError('NATIVE_UNAVAILABLE', `the native addon cannot load: ${err.message}`, { cause: err });
  }
  const binding = loadNativeBinding();
  const handle = call(() => new binding.Core(opts.pageCacheBytes, opts.pageCachePolicy ?? 'clock', opts.maxOpenLayerFiles ?? DEFAULT_MAX_OPEN_LAYER_FILES));
  return new NativeCore(binding, handle);
}
