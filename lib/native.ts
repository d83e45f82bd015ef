/**
 * Loads the C++ addon (native/, built by scripts/build-native.js) and wraps it as a `Core`.
 * Load order: STRATA_NATIVE_PATH (an explicit .node file; the sanitizer run uses it, and tests use it
 * to simulate a broken addon) → build/Release/strata.node under the package root.
 */
import * as path from 'path';
import type {
  Core, CoreOptions, LayerKind, LayerSummary, LayerWriter, LayerWriterOptions, PageCacheApi, PageCacheStats, ReadStats,
} from './core';
import { StrataError, toStrataError } from './errors';
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
  layerKeys(handle: number): Buffer;
  verifyLayer(handle: number): number;
  closeLayer(handle: number): void;
  createLayerMap(): number;
  setLayerMap(mapId: number, handles: Uint32Array): void;
  dropLayerMap(mapId: number): void;
  getPages(plan: Uint8Array, out: Uint8Array, status: Uint8Array): ReadStats;
  close(): void;
}

/** The summary as the addon returns it: like LayerSummary, with the codec as a plain number. */
export interface NativeLayerSummary extends Omit<LayerSummary, 'codec'> {
  codec: number;
}

export interface NativeLayerWriterHandle {
  append(indexKeys: Uint8Array, blobs: Uint8Array, willInit: Uint8Array): void;
  finish(): number;
  abort(): void;
}

export interface NativeBinding {
  Core: new (pageCacheBytes: number) => NativeCoreHandle;
  /** kind: 1 delta, 2 image (LAYER_KIND_*); codec: CODEC_*. */
  LayerWriter: new (
    path: string, kind: number, codec: number, keyStart: Uint8Array, keyEnd: Uint8Array, lsnStart: bigint, lsnEnd: bigint,
  ) => NativeLayerWriterHandle;
  /** The C++ CRC-32, for tests against zlib.crc32. */
  crc32(data: Uint8Array, value?: number): number;
  /** The C++ decompressor (codec 1 lz4, 2 zstd) on a blob payload, for tests; BAD_ARGUMENT on malformed input. */
  decompress(codec: number, stored: Uint8Array, rawLen: number): Buffer;
}

const ADDON_FILE = path.join(__dirname, '..', 'build', 'Release', 'strata.node');

let loaded: NativeBinding | Error | undefined;

function addonPath(): string {
  const explicit = process.env.STRATA_NATIVE_PATH;
  return explicit !== undefined && explicit !== '' ? path.resolve(explicit) : ADDON_FILE;
}

function tryLoad(): NativeBinding | Error {
  const file = addonPath();
  try {
    const b = require(file) as Partial<NativeBinding> | null;
    if (b === null || typeof b !== 'object' || typeof b.Core !== 'function' || typeof b.LayerWriter !== 'function') {
      return new Error(`${file} is not the Strata addon (it lacks Core / LayerWriter)`);
    }
    return b as NativeBinding;
  } catch (e) {
    // First line only: require's "Require stack" lines would spread the fallback warning over many.
    const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    return new Error(`cannot load ${file}: ${msg}`, { cause: e });
  }
}

/** Why the addon cannot load, or null when it loads. Memoized; never throws. */
export function nativeLoadError(): Error | null {
  if (loaded === undefined) loaded = tryLoad();
  return loaded instanceof Error ? loaded : null;
}

/** The raw binding; throws the load error when the addon is unavailable. */
export function loadNativeBinding(): NativeBinding {
  const err = nativeLoadError();
  if (err !== null) throw err;
  return loaded as NativeBinding;
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
  finish(): number {
    return call(() => this.w.finish());
  }
  abort(): void {
    call(() => this.w.abort());
  }
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

  layerKeys(handle: number): Buffer {
    return call(() => this.c.layerKeys(handle));
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

  getPages(plan: Buffer, out: Uint8Array, status: Uint8Array): ReadStats {
    return call(() => this.c.getPages(plan, out, status));
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
  const binding = loaded as NativeBinding;
  const handle = call(() => new binding.Core(opts.pageCacheBytes));
  return new NativeCore(binding, handle);
}
