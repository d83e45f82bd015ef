/**
 * Compaction: L0 → L1 merges and image layer creation (docs/ARCHITECTURE.md).
 *
 * L0 → L1: a streaming k-way merge of L0 delta layers in (key, LSN) order into L1 delta layers that
 * each cover a narrow key range and the whole merged LSN range, cut at compactionTargetSize on key
 * boundaries. Values move as stored (still compressed), so compaction neither decodes nor
 * re-encodes them, and memory stays bounded by one leaf and one blob per input.
 *
 * Images: per keyspace partition, when delta layers stack up above the partition's newest image.
 *
 * Reading uses the TS layer reader for both cores (compaction is not a per-read hot path); writing
 * goes through the timeline (and so the core's LayerWriter), so outputs are byte-identical
 * whichever core runs. The timeline hands in a CompactionHost; the swap itself is its job.
 */
import * as path from 'node:path';
import type { LayerKind } from '../core/core';
import { MIN_PAGE_CACHE_PAGES } from '../core/core';
import { BtreeCursor, compareBytes } from '../core/ts/disk_btree';
import { EntryBatch, WRITE_BATCH_ENTRIES, yieldToEventLoop } from './entry_batch';
import { StrataError } from '../errors';
import { BLOCK_SIZE, DELTA_INDEX_KEY_SIZE } from '../core/format';
import { KEY_MAX, KEY_SIZE, keyToHex } from '../key';
import { type Layer, openLayerFile } from '../core/ts/layer_file';
import type { Lsn } from '../lsn';
import { deltaFileName, type LayerDesc } from './manifest';
import { keyPartitions } from './key_stream';
import { PageCache } from '../core/ts/page_cache';

/** One entry of a delta layer: index key (key ‖ LSN), will_init, and the blob as stored. */
export interface DeltaEntry {
  indexKey: Buffer;
  willInit: boolean;
  blob: Buffer;
}

/**
 * Walks one delta layer file's entries in index order, opened privately (own fd, tiny cache).
 * The current entry is materialized and the cursor already sits on the next one, whose value
 * offset gives the current value's stored size without reading it (values follow index order).
 */
class DeltaLayerIterator {
  private readonly layer: Layer;
  private readonly cur = new BtreeCursor();
  private hasNext: boolean;
  private key: Buffer | null = null;
  private ref = 0;
  bytesRead = 0;

  constructor(path: string, cache: PageCache, handle: number) {
    this.layer = openLayerFile(path, handle, cache);
    if (this.layer.isImage) {
      this.layer.close();
      throw new StrataError('BAD_ARGUMENT', `${path}: compaction input must be a delta layer`);
    }
    this.hasNext = this.layer.btree.first(this.cur);
    this.advance();
  }

  /** Index key (key ‖ LSN) of the current entry, or null at the end. */
  peekKey(): Buffer | null {
    return this.key;
  }

  /** Bytes the current entry's value occupies in the value stream. */
  storedSize(): number {
    const end = this.hasNext ? Math.floor(this.cur.value() / 2) : this.layer.summary.valueBytes;
    return end - Math.floor(this.ref / 2);
  }

  /** Take the current entry with its stored blob and advance. */
  take(): DeltaEntry {
    const entry: DeltaEntry = {
      indexKey: this.key!,
      willInit: this.ref % 2 === 1,
      blob: this.layer.file.readEncodedBlob(Math.floor(this.ref / 2), this.layer.summary.valueBytes),
    };
    this.bytesRead += entry.blob.length + DELTA_INDEX_KEY_SIZE;
    this.advance();
    return entry;
  }

  /** Skip the current entry without reading its value (the planning pass). */
  skip(): void {
    this.advance();
  }

  close(): void {
    this.layer.close();
  }

  private advance(): void {
    if (!this.hasNext) {
      this.key = null;
      return;
    }
    const off = this.cur.keyOff();
    this.key = Buffer.from(this.cur.node.subarray(off, off + DELTA_INDEX_KEY_SIZE));
    this.ref = this.cur.value();
    this.hasNext = this.layer.btree.next(this.cur);
  }
}

/**
 * Merges delta layers in (key, LSN) order. Inputs are few (tens), so a linear scan for the smallest
 * head beats a heap's bookkeeping and keeps the code obvious.
 */
export class DeltaMerge {
  private readonly inputs: DeltaLayerIterator[] = [];
  private readonly cache: PageCache;

  constructor(paths: readonly string[]) {
    this.cache = new PageCache(MIN_PAGE_CACHE_PAGES * BLOCK_SIZE);
    try {
      paths.forEach((p, i) => this.inputs.push(new DeltaLayerIterator(p, this.cache, i + 1)));
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** The next entry with its blob, or null when every input is exhausted. */
  next(): DeltaEntry | null {
    const i = this.smallest();
    return i < 0 ? null : this.inputs[i].take();
  }

  /** Whether the next entry's page key is below `keyEnd` (false at the end). */
  hasKeyBelow(keyEnd: Buffer): boolean {
    const i = this.smallest();
    return i >= 0 && compareBytes(this.inputs[i].peekKey()!, 0, keyEnd, 0, KEY_SIZE) < 0;
  }

  /** The next entry's index key and stored size, without reading its value; null at the end. */
  nextPlanned(): { indexKey: Buffer; size: number } | null {
    const i = this.smallest();
    if (i < 0) return null;
    const it = this.inputs[i];
    const planned = { indexKey: it.peekKey()!, size: it.storedSize() };
    it.skip();
    return planned;
  }

  get bytesRead(): number {
    return this.inputs.reduce((n, it) => n + it.bytesRead, 0);
  }

  close(): void {
    for (const it of this.inputs) it.close();
  }

  private smallest(): number {
    let best = -1;
    let bestKey: Buffer | null = null;
    for (let i = 0; i < this.inputs.length; i++) {
      const k = this.inputs[i].peekKey();
      if (k === null) continue;
      const c = bestKey === null ? -1 : compareBytes(k, 0, bestKey, 0, DELTA_INDEX_KEY_SIZE);
      if (c === 0) throw new StrataError('CORRUPT_LAYER', `compaction inputs overlap at key+LSN ${k.toString('hex')}`);
      if (c < 0) {
        best = i;
        bestKey = k;
      }
    }
    return best;
  }
}

/** A planned output layer: keys in [keyStart, keyEnd). */
export interface KeyRange {
  keyStart: Buffer;
  keyEnd: Buffer;
}

/**
 * First pass: cut the merged key space into output ranges of about `targetBytes` each, on key
 * boundaries (one key's versions never straddle two layers). Reads index leaves only, and yields
 * every WRITE_BATCH_ENTRIES entries: planning 40,000 entries in one go held the event loop ≈ 90 ms
 * on a loaded 2-core VM (W7 storm).
 */
export async function planOutputRanges(paths: readonly string[], targetBytes: number): Promise<KeyRange[]> {
  const merge = new DeltaMerge(paths);
  const ranges: KeyRange[] = [];
  try {
    let start: Buffer | null = null;
    let last: Buffer | null = null;
    let bytes = 0;
    let planned = 0;
    for (let e = merge.nextPlanned(); e !== null; e = merge.nextPlanned()) {
      if (++planned % WRITE_BATCH_ENTRIES === 0) await yieldToEventLoop();
      const key = e.indexKey.subarray(0, KEY_SIZE);
      if (start === null) start = Buffer.from(key);
      else if (!sameKey(key, last!) && bytes >= targetBytes) {
        ranges.push({ keyStart: start, keyEnd: Buffer.from(key) });
        start = Buffer.from(key);
        bytes = 0;
      }
      last = Buffer.from(key);
      bytes += e.size + DELTA_INDEX_KEY_SIZE;
    }
    if (start !== null) ranges.push({ keyStart: start, keyEnd: keySuccessor(last!) });
  } finally {
    merge.close();
  }
  return ranges;
}

/** The smallest key greater than `key` (18-byte big-endian increment), the exclusive end of a range. */
export function keySuccessor(key: Buffer): Buffer {
  const next = Buffer.from(key.subarray(0, KEY_SIZE));
  for (let i = KEY_SIZE - 1; i >= 0; i--) {
    if (next[i] !== 0xff) {
      next[i]++;
      return next;
    }
    next[i] = 0;
  }
  return Buffer.from(KEY_MAX);
}

export function sameKey(a: Buffer, b: Buffer): boolean {
  return compareBytes(a, 0, b, 0, KEY_SIZE) === 0;
}

/**
 * The most delta layers stacked over any one key: the number of layers a read of the worst key
 * may visit above the newest image. Ranges are 36-hex-digit strings, which sort as the keys do.
 */
export function maxStackDepth(layers: readonly { keyStart: string; keyEnd: string }[]): number {
  const events: Array<[string, number]> = [];
  for (const l of layers) events.push([l.keyStart, 1], [l.keyEnd, -1]);
  // At equal positions ends come first: [a, b) and [b, c) do not overlap.
  events.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]));
  let depth = 0;
  let max = 0;
  for (const [, d] of events) {
    depth += d;
    if (depth > max) max = depth;
  }
  return max;
}

/** What one compact() did, for the caller's logs. */
export interface CompactionReport {
  l0Compacted: string[];
  layersCreated: LayerDesc[];
  layersRemoved: string[];
  imageLayersCreated: LayerDesc[];
  /** The images among imageLayersCreated that read heat asked for (read_heat.ts), by file name. */
  hotImageLayersCreated: string[];
  bytesRead: number;
  bytesWritten: number;
}

export interface CompactOptions {
  /** Compact whatever L0 layers exist (≥ 1) and image every partition with a delta above its newest image. */
  force?: boolean;
}

export function emptyCompactionReport(): CompactionReport {
  return { l0Compacted: [], layersCreated: [], layersRemoved: [], imageLayersCreated: [], hotImageLayersCreated: [], bytesRead: 0, bytesWritten: 0 };
}

/** The compaction knobs (TimelineConfig has them all). */
export interface CompactionConfig {
  compactionThreshold: number;
  compactionUpperLimit: number;
  compactionTargetSize: number;
  imageCreationThreshold: number;
}

/** What a timeline lets compaction see and do (timeline.ts builds it from closures). */
export interface CompactionHost {
  dir: string;
  config: CompactionConfig;
  diskConsistentLsn: Lsn;
  /** Images may not go below this LSN (the GC cutoff, or just above the branch point). */
  imageFloorLsn: Lsn;
  layers(): readonly LayerDesc[];
  /** Every key the timeline can see, ascending, streamed (key_stream.ts). */
  keys(): Iterator<Buffer>;
  writeLayer(fileName: string, kind: LayerKind, lsnStart: Lsn, lsnEnd: Lsn, keys: KeyRange, produce: (append: (b: EntryBatch) => void) => Promise<void>): Promise<number>;
  /** Write and commit one image layer. */
  writeImage(lsn: Lsn, range: KeyRange, keys: Iterable<Buffer>): Promise<LayerDesc>;
  /** Write an image layer's file without committing it (commitImages swaps a batch in). */
  stageImage(lsn: Lsn, range: KeyRange, keys: Iterable<Buffer>): Promise<LayerDesc>;
  commitImages(descs: readonly LayerDesc[]): Promise<void>;
  /** Swap layers atomically (manifest, then layer map), then delete the removed files. */
  replaceLayers(removed: readonly string[], added: readonly LayerDesc[]): Promise<void>;
}

/** L0 delta layers, oldest first. */
export function level0(layers: readonly LayerDesc[]): LayerDesc[] {
  return layers.filter((l) => l.kind === 'delta' && l.level === 0).sort((a, b) => (a.lsnStart < b.lsnStart ? -1 : 1));
}

/** Merge the oldest L0 layers into L1 layers, then swap them in. */
export async function compactLevel0(host: CompactionHost, force: boolean, report: CompactionReport): Promise<void> {
  const l0 = level0(host.layers());
  if (l0.length === 0 || (!force && l0.length < host.config.compactionThreshold)) return;
  const inputs = l0.slice(0, host.config.compactionUpperLimit);
  const paths = inputs.map((l) => path.join(host.dir, l.fileName));
  const lsnStart = inputs[0].lsnStart;
  const lsnEnd = inputs[inputs.length - 1].lsnEnd;
  const ranges = await planOutputRanges(paths, host.config.compactionTargetSize);
  const merge = new DeltaMerge(paths);
  const created: LayerDesc[] = [];
  try {
    for (const range of ranges) created.push(await writeL1(host, merge, range, lsnStart, lsnEnd));
    report.bytesRead += merge.bytesRead;
  } finally {
    merge.close();
  }
  await host.replaceLayers(inputs.map((l) => l.fileName), created);
  report.l0Compacted.push(...inputs.map((l) => l.fileName));
  report.layersRemoved.push(...inputs.map((l) => l.fileName));
  report.layersCreated.push(...created.map((d) => ({ ...d })));
  report.bytesWritten += created.reduce((n, d) => n + d.sizeBytes, 0);
}

/** Write the merged entries of one key range as an L1 delta layer. */
async function writeL1(host: CompactionHost, merge: DeltaMerge, range: KeyRange, lsnStart: Lsn, lsnEnd: Lsn): Promise<LayerDesc> {
  const fileName = deltaFileName(range.keyStart, range.keyEnd, lsnStart, lsnEnd);
  const sizeBytes = await host.writeLayer(fileName, 'delta', lsnStart, lsnEnd, range, async (append) => {
    let batch = new EntryBatch(DELTA_INDEX_KEY_SIZE);
    while (merge.hasKeyBelow(range.keyEnd)) {
      const e = merge.next()!;
      batch.addIndexed(e.indexKey, e.blob, e.willInit);
      if (batch.isFull()) {
        append(batch);
        batch = new EntryBatch(DELTA_INDEX_KEY_SIZE);
        await yieldToEventLoop();
      }
    }
    append(batch);
  });
  return {
    fileName, kind: 'delta', level: 1, keyStart: keyToHex(range.keyStart), keyEnd: keyToHex(range.keyEnd), lsnStart, lsnEnd, sizeBytes,
  };
}

/**
 * Image creation, per partition of the keyspace (about compactionTargetSize of pages each, as
 * Neon repartitions): a partition gets an image layer at diskConsistentLsn when
 * imageCreationThreshold delta layers stack over some key of it above its newest covering image
 * (every L0 counts once; L1 generations count where their ranges overlap), or with `force`
 * when any delta lies above that image.
 */
export async function createImageLayers(host: CompactionHost, force: boolean, report: CompactionReport): Promise<void> {
  const lsn = host.diskConsistentLsn;
  if (lsn < host.imageFloorLsn) return;
  const layers = host.layers();
  const staged: LayerDesc[] = [];
  const commit = async (): Promise<void> => {
    const batch = staged.splice(0);
    if (batch.length === 0) return;
    await host.commitImages(batch);
    for (const info of batch) {
      report.imageLayersCreated.push(info);
      report.bytesWritten += info.sizeBytes;
    }
  };
  for (const part of keyPartitions(host.keys(), host.config.compactionTargetSize)) {
    const start = keyToHex(part.keyStart);
    const end = keyToHex(part.keyEnd);
    const newestImage = layers
      .filter((l) => l.kind === 'image' && l.keyStart <= start && end <= l.keyEnd)
      .reduce<Lsn>((m, l) => (l.lsnStart > m ? l.lsnStart : m), -1n);
    if (lsn <= newestImage) continue;
    const above = layers
      .filter((l) => l.kind === 'delta' && l.lsnEnd > newestImage + 1n && l.keyStart < end && start < l.keyEnd)
      .map((l) => ({ keyStart: l.keyStart > start ? l.keyStart : start, keyEnd: l.keyEnd < end ? l.keyEnd : end }));
    if (above.length === 0) continue;
    if (!force && maxStackDepth(above) < host.config.imageCreationThreshold) continue;
    staged.push(await host.stageImage(lsn, part, part.keys));
    if (staged.length >= IMAGE_COMMIT_LAYERS) await commit();
  }
  await commit();
}

/**
 * Partition images swapped in per manifest write: each commit costs a manifest fsync (image
 * creation committed every partition alone, a third of a small timeline's fsyncs), and a crash
 * loses at most this many written images (orphans the next open removes).
 */
export const IMAGE_COMMIT_LAYERS = 16;
