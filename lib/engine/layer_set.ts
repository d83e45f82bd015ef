/**
 * A timeline's layers, as Neon's LayerManager holds them: the open in-memory layer taking ingest,
 * frozen in-memory layers waiting to be flushed, and the historic layer files listed in the
 * manifest (mirrored into the core as one layer map). Writing a layer file and swapping layers are
 * here; the swap's durable commit point is the manifest, which the timeline writes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Core, LayerKind, LayerWriter } from '../core/core';
import { COUNTS_PER_REQUEST, PAGE_STATUS_OK } from '../core/core';
import { CODEC_BY_NAME, type CompressionName } from '../core/format';
import { StrataError } from '../errors';
import { KEY_MAX, KEY_MIN, KEY_SIZE, keyFromHex, keyToHex } from '../key';
import type { Lsn } from '../lsn';
import { PAGE_SIZE, recordWillInit } from '../record';
import { level0, type KeyRange } from './compaction';
import { EntryBatch, yieldToEventLoop } from '../core/entry_batch';
import { IMAGE_BATCH_KEYS, ImageBatches } from './image_batches';
import { fsyncDir, fsyncDirAsync, removeFile, removeFileAsync, renameFileAsync, TMP_SUFFIX, wrapIo } from '../fs_util';
import { InMemoryLayer } from './inmemory_layer';
import { type KeyCoverRule, NO_COVER, uncoveredRanges } from './key_cover';
import { type KeySource, LAYER_KEYS_PAGE, PrefetchedLayerKeys, pagedLayerKeys } from './key_stream';
import type { CheckedRecords, PreparedBatch } from './ingest';
import { deltaFileName, imageFileName, type LayerDesc, type Manifest, type ManifestPatch } from './manifest';
import type { ReadPlanWriter } from '../core/read_plan';
import { readRemoteOnly, writeRemoteOnly } from './layer_residency';

/** L0 layers and the manual image layer cover every key. */
export const FULL_KEYSPACE: KeyRange = { keyStart: KEY_MIN, keyEnd: KEY_MAX };

interface HistoricLayer {
  desc: LayerDesc;
  /** The core's handle of the local file, or null for a layer in remote storage only. */
  handle: number | null;
  /** The local layer cache's tick of its last use (eviction.ts). */
  lastUsed: number;
}

/** Reconstructs keys at an LSN into `out` without counting them as user reads (image creation). */
export type PageReader = (keys: readonly Buffer[], lsn: Lsn, out: Uint8Array, status: Uint8Array, counts: Uint32Array) => Promise<void>;

/** One image layer of a snapshot: its key range and its entries in key order. */
export interface SnapshotPartition {
  keyStart: Buffer;
  keyEnd: Buffer;
  entries: AsyncIterable<{ key: Buffer; record: Buffer }>;
}

/** The timeline's side of a swap's durable commit point, the manifest. */
export interface ManifestCommit {
  /** Write the manifest with this layer list and patch, durably, off the event loop; returns it. Memory is unchanged. */
  write(layers: LayerDesc[], patch: ManifestPatch): Promise<Manifest>;
  /** Take a written manifest as the timeline's state; called in the synchronous step that swaps the layers. */
  apply(written: Manifest): void;
}

/** A frozen layer's L0, written by LayerSet.writeFrozen and not yet committed (desc null: no records). */
export interface WrittenL0 {
  layer: InMemoryLayer;
  desc: LayerDesc | null;
}

export class LayerSet {
  readonly mapId: number;
  private open: InMemoryLayer;
  private frozen: InMemoryLayer[] = [];
  private historic: HistoricLayer[] = [];
  /** Remote-only layers: name → generation of the object key (layer_residency.ts). */
  private readonly remoteOnly: Map<string, number>;
  /** Compactions and image creations running over these layers: eviction leaves them alone. */
  pins = 0;
  private layerVersion = 0;
  /** Bytes written, for write-amplification metrics. */
  readonly written = { flushed: 0, compacted: 0, images: 0 };

  constructor(
    private readonly core: Core,
    readonly dir: string,
    layers: readonly LayerDesc[],
    diskConsistentLsn: Lsn,
    private readonly compression: CompressionName,
    private readonly commit: ManifestCommit,
  ) {
    this.open = new InMemoryLayer(diskConsistentLsn);
    this.mapId = core.createLayerMap();
    const listed = readRemoteOnly(dir);
    this.remoteOnly = new Map();
    try {
      for (const desc of layers) {
        // A listed layer whose file is present is local (a crash between list and unlink).
        const gen = listed.get(desc.fileName);
        if (gen !== undefined && !fs.existsSync(path.join(dir, desc.fileName))) {
          this.remoteOnly.set(desc.fileName, gen);
          this.historic.push({ desc, handle: null, lastUsed: 0 });
        } else {
          this.historic.push({ desc, handle: this.openLayerFile(desc), lastUsed: 0 });
        }
      }
      this.syncLayerMap();
    } catch (e) {
      this.release();
      throw e;
    }
  }

  // ---- in-memory layers ------------------------------------------------------------------------

  put(batch: PreparedBatch): void {
    for (let i = 0; i < batch.keys.length; i++) this.open.put(batch.keys[i], batch.lsns[i], batch.values[i]);
  }

  /** Public records checkRecords accepted, serialized straight into the open layer. */
  putChecked(batch: CheckedRecords): void {
    this.open.putChecked(batch);
  }

  get openBytes(): number {
    return this.open.bytes;
  }

  /** When the open layer took its first record (ms), or null while empty. */
  get openSince(): number | null {
    return this.open.firstPutAt;
  }

  get frozenCount(): number {
    return this.frozen.length;
  }

  /** Freeze the open layer (if it holds records or an LSN advance); a new one takes the next records. */
  freeze(): void {
    if (!this.open.hasContent) return;
    this.frozen.push(this.open);
    this.open = new InMemoryLayer(this.open.endLsn);
  }

  hasInMemoryRecords(): boolean {
    return !this.open.isEmpty || this.frozen.length > 0;
  }

  /** Records from the open and frozen layers, newest first; true when the chain is complete. */
  collectInMemory(keyId: string, w: ReadPlanWriter): boolean {
    if (this.open.collect(keyId, w)) return true;
    for (let i = this.frozen.length - 1; i >= 0; i--) {
      if (this.frozen[i].collect(keyId, w)) return true;
    }
    return false;
  }

  // ---- historic layers -------------------------------------------------------------------------

  descs(): LayerDesc[] {
    return this.historic.map((l) => l.desc);
  }

  level0(): LayerDesc[] {
    return level0(this.descs());
  }

  find(fileName: string): LayerDesc | undefined {
    return this.historic.find((l) => l.desc.fileName === fileName)?.desc;
  }

  physicalSizeBytes(): number {
    return this.historic.reduce((n, l) => n + l.desc.sizeBytes, 0);
  }

  /** Every key in [start, end) with a record here (layer files and memory), into `seen` by latin1 id. */
  collectKeys(seen: Map<string, Buffer>, start: Buffer = KEY_MIN, end: Buffer = KEY_MAX): void {
    for (const l of this.historic) this.collectLayerKeys(l, seen, start, end);
    this.collectInMemoryKeys(seen, start, end);
  }

  private collectLayerKeys(l: HistoricLayer, seen: Map<string, Buffer>, start: Buffer, end: Buffer): void {
    if (Buffer.compare(keyFromHex(l.desc.keyEnd), start) <= 0 || Buffer.compare(end, keyFromHex(l.desc.keyStart)) <= 0) return;
    if (l.handle === null) throw this.notLocal(l.desc.fileName, 'a key listing');
    const packed = this.core.layerKeys(l.handle, start, end);
    for (let o = 0; o < packed.length; o += KEY_SIZE) {
      const k = Buffer.from(packed.subarray(o, o + KEY_SIZE));
      seen.set(k.toString('latin1'), k);
    }
  }

  private collectInMemoryKeys(seen: Map<string, Buffer>, start: Buffer, end: Buffer): void {
    for (const m of [this.open, ...this.frozen]) {
      for (const k of m.keys()) if (Buffer.compare(k, start) >= 0 && Buffer.compare(k, end) < 0) seen.set(k.toString('latin1'), k);
    }
  }

  /**
   * Every layer's keys as a sorted stream, for mergeKeys (key_stream.ts): layer files paged through
   * lazily (`background`: fetched ahead off the calling thread, for a BackgroundKeyStream), the
   * in-memory layers' keys taken now. A layer is listed only over the parts of its range no image
   * of `cover` stands for (key_cover.ts); every layer file listed must be local.
   */
  keyStreams(start: Buffer = KEY_MIN, pageKeys = LAYER_KEYS_PAGE, background = false, cover: KeyCoverRule = NO_COVER): KeySource[] {
    const out: KeySource[] = [];
    const from = keyToHex(start);
    for (const l of this.historic) {
      const ranges = uncoveredRanges(l.desc, from, cover);
      if (ranges.length === 0) continue; // an image stands for its keys: not even a remote-only layer is needed
      const handle = l.handle;
      if (handle === null) throw this.notLocal(l.desc.fileName, 'a key listing');
      const intervals = ranges.map(([s, e]) => ({ start: keyFromHex(s), end: keyFromHex(e) }));
      out.push(background
        ? new PrefetchedLayerKeys((f, end, max) => this.core.layerKeysInBackground(handle, f, end, max), intervals, pageKeys)
        : pagedLayerKeys((f, end, max) => this.core.layerKeys(handle, f, end, max), intervals, pageKeys));
    }
    for (const m of [this.open, ...this.frozen]) out.push(m.keys().filter((k) => Buffer.compare(k, start) >= 0)[Symbol.iterator]());
    return out;
  }

  /** Moves whenever the layer files change (a swap, a download): key streams rebuild on it. */
  get version(): number {
    return this.layerVersion;
  }

  // ---- residency (layer_residency.ts, eviction.ts) ---------------------------------------------

  /** The generation of a remote-only layer's object key, or undefined when the layer is local (or unknown). */
  remoteOnlyGeneration(fileName: string): number | undefined {
    return this.remoteOnly.get(fileName);
  }

  get remoteOnlyCount(): number {
    return this.remoteOnly.size;
  }

  /** Record a use of a layer; false when it is remote-only (or unknown). */
  touch(fileName: string, tick: number): boolean {
    const l = this.historic.find((h) => h.desc.fileName === fileName);
    if (l === undefined || l.handle === null) return false;
    if (tick > l.lastUsed) l.lastUsed = tick;
    return true;
  }

  localBytes(): number {
    return this.historic.reduce((n, l) => n + (l.handle === null ? 0 : l.desc.sizeBytes), 0);
  }

  remoteOnlyBytes(): number {
    return this.historic.reduce((n, l) => n + (l.handle === null ? l.desc.sizeBytes : 0), 0);
  }

  /** Local layers with their last use. */
  localLayers(): Array<{ desc: LayerDesc; lastUsed: number }> {
    return this.historic.filter((l) => l.handle !== null).map((l) => ({ desc: l.desc, lastUsed: l.lastUsed }));
  }

  /** Remote-only layers. */
  remoteOnlyDescs(): LayerDesc[] {
    return this.historic.filter((l) => l.handle === null).map((l) => l.desc);
  }

  /**
   * A downloaded file is in place: open it and put it into the layer map. False when the layer
   * left the set meanwhile (compaction or GC dropped it); the caller then removes the file.
   */
  installDownloaded(fileName: string, tick: number): boolean {
    const l = this.historic.find((h) => h.desc.fileName === fileName);
    if (l === undefined) return false;
    if (l.handle === null) {
      l.handle = this.openLayerFile(l.desc);
      this.remoteOnly.delete(fileName);
      this.syncLayerMap();
    }
    if (tick > l.lastUsed) l.lastUsed = tick;
    return true;
  }

  /**
   * Evict a local layer that a durable remote index names as `generation`'s object: the
   * remote-only list first (durably), then out of the layer map, then the file. A crash between
   * list and unlink leaves a listed layer whose file exists, which counts as local.
   */
  evict(fileName: string, generation: number): void {
    const l = this.historic.find((h) => h.desc.fileName === fileName);
    if (l === undefined || l.handle === null) return;
    const next = new Map(this.remoteOnly);
    next.set(fileName, generation);
    writeRemoteOnly(this.dir, next);
    this.remoteOnly.set(fileName, generation);
    const handle = l.handle;
    l.handle = null;
    this.syncLayerMap();
    this.core.closeLayer(handle);
    wrapIo(`${this.dir}: evicting ${fileName}`, () => {
      removeFile(path.join(this.dir, fileName));
      fsyncDir(this.dir);
    });
  }

  /** LAYER_NOT_LOCAL for a synchronous operation that needs a remote-only layer. */
  notLocal(fileName: string, what: string): StrataError {
    return new StrataError('LAYER_NOT_LOCAL', `${this.dir}: ${what} needs layer ${fileName}, which is in remote storage only ` +
      '(evicted, or not downloaded since attach): async reads (getPage, getPages) download it; sync reads and key listings do not — await tl.downloadLayers() first');
  }

  private syncLayerMap(): void {
    this.layerVersion++;
    const handles: number[] = [];
    for (const l of this.historic) if (l.handle !== null) handles.push(l.handle);
    this.core.setLayerMap(this.mapId, handles);
  }

  // ---- writing layers --------------------------------------------------------------------------

  /** WAL up to `lsn` arrived with nothing to store: the next flush makes that LSN durable too. */
  advanceTo(lsn: Lsn): void {
    this.open.advanceTo(lsn);
  }

  /** The oldest frozen layer (the next to flush), if any. */
  oldestFrozen(): InMemoryLayer | undefined {
    return this.frozen[0];
  }

  /** The frozen layer flushed after `layer`, if any. */
  frozenAfter(layer: InMemoryLayer): InMemoryLayer | undefined {
    const i = this.frozen.indexOf(layer);
    return i < 0 ? undefined : this.frozen[i + 1];
  }

  /**
   * Write a frozen layer as an L0 file, in place and its directory fsynced but not yet in the
   * manifest: commitFrozen makes it part of the timeline. A layer that holds only an LSN advance
   * writes no file (desc null). `onEncoded` runs once the write no longer needs the event loop
   * (possibly before this returns): for the native core as soon as the arena is handed over, for
   * the TS core after its walk, before the fsync. The timeline starts the next layer's write
   * there, so one layer's encoding overlaps the other's write, fsyncs and commit.
   */
  async writeFrozen(layer: InMemoryLayer, onEncoded: () => void): Promise<WrittenL0> {
    if (layer.isEmpty) {
      onEncoded();
      return { layer, desc: null };
    }
    const lsnStart = layer.startLsn + 1n;
    const lsnEnd = layer.endLsn + 1n;
    const fileName = deltaFileName(KEY_MIN, KEY_MAX, lsnStart, lsnEnd);
    // The layer's arena goes to the core as it is (the records to compress compressed here first):
    // the native core walks, encodes, writes and fsyncs it on a libuv thread.
    const arena = await layer.toArena(CODEC_BY_NAME[this.compression]);
    const sizeBytes = await this.writeLayerFile(fileName, 'delta', lsnStart, lsnEnd, FULL_KEYSPACE, (writer) => writer.finishArenaAsync(arena, onEncoded));
    const desc: LayerDesc = {
      fileName, kind: 'delta', level: 0, keyStart: keyToHex(KEY_MIN), keyEnd: keyToHex(KEY_MAX), lsnStart, lsnEnd, sizeBytes,
    };
    return { layer, desc };
  }

  /**
   * Commit the oldest frozen layer's written L0 (writeFrozen's result), then swap it in for
   * readers; the manifest alone moves diskConsistentLsn when the layer held no records.
   */
  async commitFrozen(written: WrittenL0): Promise<void> {
    const { layer, desc } = written;
    // The frozen layer leaves in the swap's synchronous step, so no read sees its records twice;
    // its write has settled and reads copy records synchronously, so its slabs can be reused.
    const drop = (): void => { this.frozen.shift()?.release(); };
    await this.replace([], desc === null ? [] : [desc], { diskConsistentLsn: layer.endLsn }, drop);
    if (desc !== null) this.written.flushed += desc.sizeBytes;
  }

  /** Remove an L0 writeFrozen wrote that will not be committed (an earlier flush failed). */
  discardWritten(written: WrittenL0): void {
    if (written.desc !== null) fs.rmSync(path.join(this.dir, written.desc.fileName), { force: true });
  }

  /**
   * Materialize the pages of `keys` (sorted, inside `range`) at `lsn` as one image layer over
   * `range` and commit it; a key with no page at `lsn` is left out (an image says that a key it
   * covers but lacks does not exist). Returns the existing layer if that image was made before.
   */
  async writeImageLayer(lsn: Lsn, range: KeyRange, keys: Iterable<Buffer>, read: PageReader): Promise<LayerDesc> {
    const desc = await this.stageImageLayer(lsn, range, keys, read);
    await this.commitImages([desc]);
    return desc;
  }

  /**
   * writeImageLayer's file alone: written, fsynced and renamed into place, but not yet in the
   * manifest, so readers do not see it; commitImages adds a batch of them in one manifest write.
   * A crash before that leaves orphans, which the next open removes.
   */
  async stageImageLayer(lsn: Lsn, range: KeyRange, keys: Iterable<Buffer>, read: PageReader): Promise<LayerDesc> {
    const fileName = imageFileName(range.keyStart, range.keyEnd, lsn);
    const existing = this.find(fileName);
    if (existing) return existing;
    const codec = CODEC_BY_NAME[this.compression];
    const sizeBytes = await this.writeLayerFile(fileName, 'image', lsn, lsn + 1n, range, streamed(async (append) => {
      const batches = new ImageBatches(codec, append);
      const reads = new ImageReadAhead(keys, lsn, read);
      try {
        for (let chunk = await reads.next(); chunk !== null; chunk = await reads.next()) {
          const { keys: chunkKeys, out, status } = chunk;
          for (let at = 0; at < chunkKeys.length; at += IMAGE_BATCH_KEYS) {
            const step = chunkKeys.slice(at, at + IMAGE_BATCH_KEYS);
            await batches.add(step, out.subarray(at * PAGE_SIZE), (i) => status[at + i] === PAGE_STATUS_OK);
            await yieldToEventLoop();
          }
        }
        await batches.finish();
      } catch (e) {
        await batches.idle(); // the writer takes no abort while an append holds it
        throw e;
      }
    }));
    return {
      fileName, kind: 'image', level: 0, keyStart: keyToHex(range.keyStart), keyEnd: keyToHex(range.keyEnd), lsnStart: lsn, lsnEnd: lsn + 1n, sizeBytes,
    };
  }

  /** Swap staged images in with one manifest write (those already in the set are skipped). */
  async commitImages(descs: readonly LayerDesc[]): Promise<void> {
    const fresh = descs.filter((d) => this.find(d.fileName) === undefined);
    if (fresh.length === 0) return;
    await this.replace([], fresh, {});
    this.written.images += fresh.reduce((n, d) => n + d.sizeBytes, 0);
  }

  /**
   * Bulk-load a snapshot: each partition (key ranges increasing and disjoint; entries' keys
   * strictly increasing inside it, each with a page-initializing record) becomes one image layer
   * at `lsn`; all are committed in one manifest write that also moves diskConsistentLsn to `lsn`.
   * The set must hold nothing yet (a new timeline): the snapshot is the whole truth at `lsn`.
   */
  async loadSnapshot(lsn: Lsn, partitions: AsyncIterable<SnapshotPartition>): Promise<LayerDesc[]> {
    if (this.historic.length > 0 || this.hasInMemoryRecords()) {
      throw new StrataError('BAD_ARGUMENT', `${this.dir}: a snapshot can only be loaded into an empty timeline`);
    }
    const codec = CODEC_BY_NAME[this.compression];
    const descs: LayerDesc[] = [];
    let prevEnd: Buffer | null = null;
    try {
      for await (const part of partitions) {
        if (Buffer.compare(part.keyStart, part.keyEnd) >= 0 || (prevEnd !== null && Buffer.compare(prevEnd, part.keyStart) > 0)) {
          throw new StrataError('BAD_ARGUMENT', 'snapshot partitions must be non-empty, increasing and disjoint');
        }
        prevEnd = part.keyEnd;
        const fileName = imageFileName(part.keyStart, part.keyEnd, lsn);
        const sizeBytes = await this.writeLayerFile(fileName, 'image', lsn, lsn + 1n, part, streamed(async (append) => {
          const batch = new EntryBatch(KEY_SIZE);
          let prevKey: Buffer | null = null;
          for await (const { key, record } of part.entries) {
            if (prevKey !== null && Buffer.compare(prevKey, key) >= 0) throw new StrataError('BAD_ARGUMENT', 'snapshot keys must be strictly increasing');
            if (!recordWillInit(record)) throw new StrataError('BAD_ARGUMENT', 'a snapshot entry must initialize its page');
            prevKey = key;
            batch.addRecord(key, null, codec, record, 0, record.length, true);
            if (batch.isFull()) {
              await append(batch);
              batch.reset();
              await yieldToEventLoop();
            }
          }
          await append(batch);
        }));
        descs.push({ fileName, kind: 'image', level: 0, keyStart: keyToHex(part.keyStart), keyEnd: keyToHex(part.keyEnd), lsnStart: lsn, lsnEnd: lsn + 1n, sizeBytes });
      }
      await this.replace([], descs, { diskConsistentLsn: lsn }, () => { this.open = new InMemoryLayer(lsn); });
    } catch (e) {
      for (const d of descs) fs.rmSync(path.join(this.dir, d.fileName), { force: true });
      throw e;
    }
    this.written.images += descs.reduce((n, d) => n + d.sizeBytes, 0);
    return descs;
  }

  /**
   * L0 → L1: the core merges `paths` (Core.compactDeltas) into `compaction-<lsnStart>-<i>.tmp`
   * files, each written and fsynced, here renamed to their L1 names (known only once the core has
   * cut the key ranges) with one directory fsync after them all. Not in the manifest yet: replace()
   * swaps them in. On failure nothing is left behind (the core removes its own partial outputs).
   */
  async compactDeltas(paths: readonly string[], lsnStart: Lsn, lsnEnd: Lsn, targetBytes: number): Promise<{ created: LayerDesc[]; bytesRead: number }> {
    const { outputs, bytesRead } = await this.core.compactDeltas({
      inputs: paths, outputPrefix: path.join(this.dir, `compaction-${lsnStart.toString(16)}-`), outputSuffix: TMP_SUFFIX,
      targetBytes, codec: CODEC_BY_NAME[this.compression], lsnStart, lsnEnd,
    });
    const created: LayerDesc[] = outputs.map((o) => ({
      fileName: deltaFileName(o.keyStart, o.keyEnd, lsnStart, lsnEnd), kind: 'delta', level: 1,
      keyStart: keyToHex(o.keyStart), keyEnd: keyToHex(o.keyEnd), lsnStart, lsnEnd, sizeBytes: o.sizeBytes,
    }));
    try {
      for (let i = 0; i < outputs.length; i++) await renameFileAsync(outputs[i].path, path.join(this.dir, created[i].fileName));
      if (outputs.length > 0) await fsyncDirAsync(this.dir);
    } catch (e) {
      for (let i = 0; i < outputs.length; i++) {
        fs.rmSync(outputs[i].path, { force: true });
        fs.rmSync(path.join(this.dir, created[i].fileName), { force: true });
      }
      throw e;
    }
    return { created, bytesRead };
  }

  /**
   * Stream a layer into `<name>.tmp`, fsync, rename, fsync the directory. Returns its size. The
   * index build, fsyncs and rename run off the event loop where the core can (finishAsync).
   */
  async writeLayerFile(
    fileName: string, kind: LayerKind, lsnStart: Lsn, lsnEnd: Lsn, keys: KeyRange,
    write: (writer: LayerWriter) => Promise<number>,
  ): Promise<number> {
    const tmp = path.join(this.dir, fileName + TMP_SUFFIX);
    const writer = this.core.createLayerWriter(tmp, {
      kind, codec: CODEC_BY_NAME[this.compression], keyStart: keys.keyStart, keyEnd: keys.keyEnd, lsnStart, lsnEnd,
    });
    let size: number;
    try {
      size = await write(writer);
    } catch (e) {
      writer.abort();
      fs.rmSync(tmp, { force: true });
      throw e;
    }
    await renameFileAsync(tmp, path.join(this.dir, fileName));
    await fsyncDirAsync(this.dir);
    return size;
  }

  /**
   * Swap layers: the manifest first (the durable commit point: written, fsynced, renamed and its
   * directory fsynced on the libuv pool), then, in one synchronous step, the layer list, the
   * layer map, the timeline's LSNs and `onSwap` (a flush drops its frozen layer there), so a
   * reader sees each record exactly once; then the removed files go. Readers see the old layers
   * until the swap. Async reads in flight hold their own references to the layers they started
   * with (the core refcounts them). A crash before the files are deleted leaves orphans that the
   * next open removes. Swaps are serialized by the timeline's write queue; eviction leaves the
   * set alone meanwhile (pinned).
   */
  async replace(removedNames: readonly string[], added: readonly LayerDesc[], patch: ManifestPatch, onSwap?: () => void): Promise<void> {
    const removed = new Set(removedNames);
    const kept = (l: HistoricLayer): boolean => !removed.has(l.desc.fileName);
    const opened: HistoricLayer[] = [];
    this.pins++;
    try {
      for (const desc of added) opened.push({ desc, handle: this.openLayerFile(desc), lastUsed: 0 });
      const written = await this.commit.write([...this.historic.filter(kept).map((l) => l.desc), ...added], patch);
      // From here to the first await: the swap. `historic` is read again, since a download may
      // have opened one of its layers meanwhile.
      const gone = this.historic.filter((l) => !kept(l));
      this.historic = [...this.historic.filter(kept), ...opened];
      for (const name of removed) this.remoteOnly.delete(name);
      this.syncLayerMap();
      opened.length = 0;
      this.commit.apply(written);
      onSwap?.();
      await this.deleteLayerFiles(gone);
    } catch (e) {
      for (const l of opened) if (l.handle !== null) this.core.closeLayer(l.handle);
      if (e instanceof StrataError) throw e;
      throw new StrataError('IO_ERROR', `${this.dir}: replacing layers: ${(e as Error).message}`, { cause: e });
    } finally {
      this.pins--;
    }
  }

  /** Drop the core's layer map and every open layer file. */
  release(): void {
    this.core.dropLayerMap(this.mapId);
    for (const l of this.historic) if (l.handle !== null) this.core.closeLayer(l.handle);
    this.historic = [];
  }

  /** Close the removed layers (in the swap's step), then unlink their files and fsync the directory. */
  private async deleteLayerFiles(gone: readonly HistoricLayer[]): Promise<void> {
    if (gone.length === 0) return;
    for (const l of gone) if (l.handle !== null) this.core.closeLayer(l.handle);
    // A remote-only layer has no file here (rm -f); its object goes through the deletion queue.
    for (const l of gone) await removeFileAsync(path.join(this.dir, l.desc.fileName));
    await fsyncDirAsync(this.dir);
  }

  private openLayerFile(desc: LayerDesc): number {
    return this.core.openLayer(path.join(this.dir, desc.fileName));
  }
}

/** A writeLayerFile body: append the batches `produce` makes as it makes them, then finishAsync. */
function streamed(produce: (append: (b: EntryBatch) => Promise<void>) => Promise<void>): (writer: LayerWriter) => Promise<number> {
  return async (writer) => {
    await produce(async (b) => { if (b.count > 0) await writer.appendAsync(b.indexKeys(), b.blobs(), b.willInit()); });
    return writer.finishAsync();
  };
}

/**
 * Keys image creation reconstructs per core call (256 KiB of pages): off the loop, a call costs a
 * hop to the pool and back, so it takes several of the loop's IMAGE_BATCH_KEYS steps at once.
 */
const IMAGE_READ_KEYS = 4 * IMAGE_BATCH_KEYS;

/** One chunk of image creation's keys and the pages read for them. */
interface ImageChunk {
  keys: Buffer[];
  out: Buffer;
  status: Uint8Array;
  counts: Uint32Array;
}

/**
 * Image creation's reads, one chunk ahead: while the loop hands chunk i to the compressor, the
 * core reconstructs chunk i + 1 (the native core on the libuv pool). Two chunks' buffers take
 * turns; a chunk's buffers are read again only after its pages were copied out (ImageBatches.add
 * copies them before it returns).
 */
class ImageReadAhead {
  private readonly chunks: ImageChunk[] = [0, 1].map(() => ({
    keys: [], out: Buffer.allocUnsafe(PAGE_SIZE * IMAGE_READ_KEYS), status: new Uint8Array(IMAGE_READ_KEYS), counts: new Uint32Array(IMAGE_READ_KEYS * COUNTS_PER_REQUEST),
  }));
  private turn = 0;
  private ahead: Promise<ImageChunk | null>;
  private readonly it: Iterator<Buffer>;

  constructor(keys: Iterable<Buffer>, private readonly lsn: Lsn, private readonly read: PageReader) {
    this.it = keys[Symbol.iterator]();
    this.ahead = this.start();
  }

  /**
   * The next chunk with its pages, or null when the keys are done; the read after it starts now.
   * The caller is done with the chunk before it calls again (its buffers are then read into).
   */
  async next(): Promise<ImageChunk | null> {
    const chunk = await this.ahead;
    if (chunk !== null) this.ahead = this.start();
    return chunk;
  }

  /** Reads the next IMAGE_READ_KEYS keys into the next chunk's buffers; null when none are left. */
  private start(): Promise<ImageChunk | null> {
    const chunk = this.chunks[this.turn];
    this.turn ^= 1;
    chunk.keys.length = 0;
    while (chunk.keys.length < IMAGE_READ_KEYS) {
      const r = this.it.next();
      if (r.done === true) break;
      chunk.keys.push(r.value);
    }
    const n = chunk.keys.length;
    if (n === 0) return Promise.resolve(null);
    const whole = n === IMAGE_READ_KEYS;
    const reading = this.read(chunk.keys, this.lsn, whole ? chunk.out : chunk.out.subarray(0, n * PAGE_SIZE), whole ? chunk.status : chunk.status.subarray(0, n),
      whole ? chunk.counts : chunk.counts.subarray(0, n * COUNTS_PER_REQUEST)).then(() => chunk);
    // A read ahead of a write that failed is never awaited: its failure must not go unhandled.
    reading.catch(() => undefined);
    return reading;
  }
}
