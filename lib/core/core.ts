/**
 * The contract between the shared TypeScript engine (repository, timeline, manifest, open layer)
 * and the two cores that hold the hot parts: `native` (C++ addon, native/) and `ts` (pure TS,
 * ts_core.ts). Both must behave identically and write byte-identical layer files.
 */
import type { DeltaArena } from './delta_arena';
import type { CodecId } from './format';

export type ImplementationName = 'native' | 'ts';
export type LayerKind = 'delta' | 'image';

/** What block 0 of a layer file says (docs/FORMAT.md, "Summary block"). */
export interface LayerSummary {
  kind: LayerKind;
  codec: CodecId;
  keyStart: Buffer;   // 18 bytes
  keyEnd: Buffer;     // 18 bytes, exclusive
  lsnStart: bigint;
  lsnEnd: bigint;     // exclusive; an image at L has [L, L+1)
  entryCount: number;
  valueBytes: number;
  indexHeight: number;
  indexLeafCount: number;
  indexBlkCount: number;
  totalBlocks: number;
}

export interface LayerWriterOptions {
  kind: LayerKind;
  codec: CodecId;     // recorded in the summary; blobs arrive already encoded (codec.ts encodeBlob)
  keyStart: Buffer;
  keyEnd: Buffer;
  lsnStart: bigint;
  lsnEnd: bigint;
}

/** Streams one layer file: values as they come, then the B-tree index, then the summary block. */
export interface LayerWriter {
  /**
   * Append n entries in strictly increasing index-key order (across calls too).
   * indexKeys: n × index key size (delta: key ‖ u64 BE lsn, image: key);
   * blobs: n encoded blobs back to back; willInit: n bytes, 1 where the record initializes the page.
   * Throws BAD_ARGUMENT on unsorted keys or malformed blobs.
   */
  append(indexKeys: Buffer, blobs: Buffer, willInit: Uint8Array): void;
  /**
   * append() off the event loop where the core can (image creation): native validates, fills and
   * checksums the value blocks and writes them on a libuv worker thread; TS appends on the calling
   * thread. Same bytes, same refusals (as a rejection). The arrays must not change, and the writer
   * takes no other call (BAD_ARGUMENT), until the promise settles.
   */
  appendAsync(indexKeys: Buffer, blobs: Buffer, willInit: Uint8Array): Promise<void>;
  /** Write index and summary, fsync, close. Returns the file size in bytes. */
  finish(): number;
  /**
   * finish() off the event loop where the core can, for flushes and compactions that must not
   * stall it: native builds the index, writes and fsyncs on a libuv worker thread; TS builds and
   * writes the index on the calling thread and fsyncs on the libuv pool. The file is byte for byte
   * the one finish() writes. Until the promise settles the writer takes no other call (BAD_ARGUMENT).
   */
  finishAsync(): Promise<number>;
  /**
   * A flush's whole write: append a frozen in-memory layer's entries (delta_arena.ts, in (key,
   * LSN) order) and finishAsync, to a delta layer writer with nothing appended yet. Native walks
   * the arena, encodes, writes and fsyncs on a libuv worker thread; TS walks it on the event loop,
   * yielding between batches. The bytes are those of appending the TS walk's entries. The arena
   * must not change until the promise settles. `onAppended` runs once the write no longer needs
   * the event loop (native: at once; TS: after the walk, before the fsync), so a flush can start
   * the next layer's write there.
   */
  finishArenaAsync(arena: DeltaArena, onAppended?: () => void): Promise<number>;
  /** Close without finishing; the caller removes the partial file. */
  abort(): void;
}

/** What Core.compactDeltas merges, and where its outputs go. */
export interface DeltaCompactionOptions {
  /** Delta layer files; no (key, LSN) may appear in two of them (CORRUPT_LAYER). */
  inputs: readonly string[];
  /** Output i is written, fsynced and closed at `${outputPrefix}${i}${outputSuffix}`. */
  outputPrefix: string;
  outputSuffix: string;
  /** An output is cut before the first entry of a new key once it holds this many bytes (values + index keys). */
  targetBytes: number;
  /** Recorded in each output's summary; values move as stored, whatever their codec. */
  codec: CodecId;
  lsnStart: bigint;
  lsnEnd: bigint;
}

export interface CompactionOutput {
  path: string;
  keyStart: Buffer;
  /** Exclusive: the next output's first key, or the successor of this output's last key. */
  keyEnd: Buffer;
  sizeBytes: number;
}

export interface DeltaCompactionResult {
  /** In key order; none when the inputs hold no entry. */
  outputs: CompactionOutput[];
  /** Stored blob bytes plus one index key per entry moved. */
  bytesRead: number;
}

export interface PageCacheStats {
  hits: number;
  misses: number;
  evictions: number;
  capacityPages: number;
  usedPages: number;
  policy: PageCachePolicy;
}

/** Direct access to a core's page cache, for tests and diagnostics; reads use it internally. */
export interface PageCacheApi {
  readonly capacityPages: number;
  stats(): PageCacheStats;
  /** On a hit copy the block into `into`, bump its usage count / frequency and count a hit; else count a miss. */
  lookup(fileId: number, blkno: number, into: Buffer): boolean;
  /** Cache a block (8192 bytes), evicting by the core's policy. CACHE_FULL if every slot is pinned. */
  insert(fileId: number, blkno: number, data: Buffer): void;
  /** Pin a cached block so it cannot be evicted; false if not cached. Pins nest. */
  pin(fileId: number, blkno: number): boolean;
  unpin(fileId: number, blkno: number): void;
  /** Whether the block is cached; touches neither usage counts nor stats. */
  contains(fileId: number, blkno: number): boolean;
}

/**
 * getPages reports per-request read statistics into a caller-owned Uint32Array rather than a
 * result object: [layersVisited, recordsApplied] for request i at 2i, 2i + 1 (saturating).
 */
export const COUNTS_PER_REQUEST = 2;

export const PAGE_STATUS_OK = 0;
export const PAGE_STATUS_NOT_FOUND = 1;

export interface Core {
  readonly implementation: ImplementationName;
  readonly pageCache: PageCacheApi;

  createLayerWriter(path: string, opts: LayerWriterOptions): LayerWriter;
  /** Open and validate a layer file (summary checksum, magic, version, size); returns a handle. CORRUPT_LAYER otherwise. */
  openLayer(path: string): number;
  layerSummary(handle: number): LayerSummary;
  /**
   * Sorted distinct 18-byte keys of the layer, concatenated; only those in [keyStart, keyEnd)
   * when given (a B-tree descent to keyStart, not a scan from the first key), and at most maxKeys
   * of them (default: all), so a caller can page through a large layer.
   */
  layerKeys(handle: number, keyStart?: Buffer, keyEnd?: Buffer, maxKeys?: number): Buffer;
  /**
   * The same keys off the calling thread, for a background task (image creation's key listing):
   * native = the B-tree walk on the libuv pool, through the page cache; TS = on the core's read
   * worker (see getPagesInBackground), or here where it cannot. The keys are the layer's as at the
   * call: a layer closed while the listing is in flight is still listed. Bad arguments reject.
   */
  layerKeysInBackground(handle: number, keyStart?: Buffer, keyEnd?: Buffer, maxKeys?: number): Promise<Buffer>;
  /**
   * Read every block of the file (bypassing the cache), check checksums, index structure and every
   * blob; returns the number of entries. CORRUPT_LAYER names the first fault.
   */
  verifyLayer(handle: number): number;
  closeLayer(handle: number): void;

  /** A layer map is the set of historic layers of one timeline, replaced as a whole. */
  createLayerMap(): number;
  setLayerMap(mapId: number, handles: readonly number[]): void;
  dropLayerMap(mapId: number): void;

  /**
   * GetPage@LSN for a batch, in one call: `plan` is a read plan (read_plan.ts, docs/FORMAT.md),
   * `out` receives 8192 bytes per request, `status[i]` is PAGE_STATUS_OK or PAGE_STATUS_NOT_FOUND,
   * `counts` COUNTS_PER_REQUEST entries per request. CORRUPT_LAYER / IO_ERROR fail the whole call.
   */
  getPages(plan: Buffer, out: Uint8Array, status: Uint8Array, counts: Uint32Array): void;
  /**
   * The same read off the calling thread where the core can (native: a libuv worker thread, so
   * disk reads and decompression do not block the event loop; TS: synchronously, settled as a
   * promise). With `cachedInline`, a read whose blocks are all in the page cache finishes on the
   * calling thread first (on this machine a thread round trip costs several times such a read);
   * only reads that need the disk move. The plan is consumed before this returns, so the caller
   * may reuse its buffer; `out`, `status` and `counts` must stay untouched until the promise
   * settles. The read sees the layer maps as they were at the call.
   */
  getPagesAsync(plan: Buffer, out: Uint8Array, status: Uint8Array, counts: Uint32Array, cachedInline: boolean): Promise<void>;
  /**
   * A background task's read (image creation's reconstruction), off the calling thread in both
   * cores: native = getPagesAsync without cachedInline (the libuv pool, through the page cache);
   * TS = on the core's read worker thread (ts/read_worker.ts), over its own copy of the layer
   * maps with its own small page cache, so it neither counts in nor changes this core's page
   * cache (on the calling thread where there is no worker, or while test fault injection is
   * armed). Same pages, status and counts as getPages; the same rules for the arrays.
   */
  getPagesInBackground(plan: Buffer, out: Uint8Array, status: Uint8Array, counts: Uint32Array): Promise<void>;
  /**
   * getPages from page-cache blocks only, on the calling thread: true when it finished; false when
   * some block would need the disk (then `out`, `status` and `counts` hold nothing to use). What a
   * caller that must not block (the page service) tries before going async. Given `outOffset`, the
   * pages go to out[outOffset, + 8192 × status.length) instead of filling `out`: a caller reading
   * into part of a buffer makes no view.
   */
  tryGetPagesCached(plan: Buffer, out: Uint8Array, status: Uint8Array, counts: Uint32Array, outOffset?: number): boolean;

  /**
   * L0 → L1 compaction: merge the entries of delta layers in (key, LSN) order into new delta
   * layers, values moved as stored, cut at `targetBytes` on key boundaries (one key's versions
   * never straddle two outputs). Touches no open layer, map or the page cache; reads hold one
   * leaf and one blob (native: a few blocks) per input. Native: entirely on a libuv worker
   * thread; TS: on a worker thread (ts/compaction_worker.ts; on the calling thread, yielding between
   * steps, where there is none). Both write the same bytes. On
   * failure (CORRUPT_LAYER naming the file and block, IO_ERROR, BAD_ARGUMENT for an image input)
   * no output is left behind.
   */
  compactDeltas(opts: DeltaCompactionOptions): Promise<DeltaCompactionResult>;

  /** Release the page cache and every open layer. */
  close(): void;
}

/**
 * Page-cache eviction policy (lib/core/ts/page_cache.ts): PostgreSQL's usage-count clock, S3-FIFO,
 * or S3-FIFO whose small queue adapts as ARC's target does.
 */
export type PageCachePolicy = 'clock' | 's3fifo' | 'adaptive-s3fifo';
export const PAGE_CACHE_POLICIES: readonly PageCachePolicy[] = ['clock', 's3fifo', 'adaptive-s3fifo'];

export interface CoreOptions {
  /** Page cache size in bytes; rounded down to whole 8 KB pages, at least 16 pages. */
  pageCacheBytes: number;
  /** Default 'clock'. */
  pageCachePolicy?: PageCachePolicy;
  /**
   * Layer-file descriptors held open at once (default DEFAULT_MAX_OPEN_LAYER_FILES): beyond it the
   * least recently read layer's file is closed and reopened on its next read.
   */
  maxOpenLayerFiles?: number;
}

/** Well under the usual 1,024-descriptor process limit, and more than compaction keeps a timeline at. */
export const DEFAULT_MAX_OPEN_LAYER_FILES = 256;

export const MIN_PAGE_CACHE_PAGES = 16;
