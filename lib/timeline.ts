/**
 * A timeline: one branch of a tenant's page history. Ingest goes into the open in-memory layer;
 * full layers are frozen and flushed as L0 delta layer files; reads walk the in-memory layers, then
 * the layer map, then the ancestor below the branch point (docs/ARCHITECTURE.md).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Core, LayerKind, ReadStats } from './core';
import { PAGE_STATUS_OK } from './core';
import { encodeBlob } from './codec';
import { StrataError } from './errors';
import { CODEC_BY_NAME, DELTA_INDEX_KEY_SIZE, type CompressionName } from './format';
import { publishFile, TMP_SUFFIX, wrapIo } from './fs_util';
import { InMemoryLayer } from './inmemory_layer';
import { encodeKey, formatEncodedKey, KEY_MAX, KEY_MIN, KEY_SIZE, keyToHex, type PageKey } from './key';
import { checkLsn, formatLsn, lsnToHex16, type Lsn } from './lsn';
import { type LayerDesc, MANIFEST_FILE, type Manifest, writeManifest } from './manifest';
import { encodeReadPlan, type PlanRequest, type PlanSegment } from './read_plan';
import { PAGE_SIZE, RECORD_TAG_IMAGE, RECORD_TAG_ZERO, recordWillInit, serializeRecord, type WalRecord } from './record';

/** How long getPage waits for ingest to reach a requested LSN, as Neon's wait_lsn_timeout. */
export const DEFAULT_WAIT_LSN_TIMEOUT_MS = 60_000;
/** Entries handed to a layer writer per call; bounds the temporary buffers of a flush. */
const WRITE_BATCH_ENTRIES = 4096;
/** Keys reconstructed per core call while building an image layer. */
const IMAGE_BATCH_KEYS = 256;

export interface TimelineConfig {
  checkpointDistance: number;
  compression: CompressionName;
}

export interface LayerInfo {
  kind: LayerKind;
  level: number;
  keyStart: string;
  keyEnd: string;
  lsnStart: bigint;
  lsnEnd: bigint;
  fileName: string;
  sizeBytes: number;
}

export interface GetPageOptions {
  timeoutMs?: number;
}

interface HistoricLayer {
  desc: LayerDesc;
  handle: number;
}

interface LsnWaiter {
  lsn: Lsn;
  resolve: () => void;
}

export interface TimelineStats {
  tenantId: string;
  timelineId: string;
  lastRecordLsn: bigint;
  diskConsistentLsn: bigint;
  openLayerBytes: number;
  frozenLayers: number;
  layers: number;
  reads: number;
  layersVisited: number;
  recordsApplied: number;
}

export class Timeline {
  readonly tenantId: string;
  readonly timelineId: string;
  readonly ancestor: Timeline | null;
  readonly ancestorLsn: Lsn | null;
  /** Records of this timeline have lsn > startLsn (the branch point, or 0). */
  readonly startLsn: Lsn;
  private _lastRecordLsn: Lsn;
  private _diskConsistentLsn: Lsn;
  private open: InMemoryLayer;
  private frozen: InMemoryLayer[] = [];
  private historic: HistoricLayer[] = [];
  private readonly mapId: number;
  private waiters: LsnWaiter[] = [];
  /** Flushes, image creation and manifest writes run one at a time, in order. */
  private serial: Promise<void> = Promise.resolve();
  private backgroundError: unknown = null;
  private closed = false;
  private readonly stat = { reads: 0, layersVisited: 0, recordsApplied: 0 };

  /** @internal Use Repository.createTimeline / getTimeline. */
  constructor(
    private readonly core: Core,
    readonly dir: string,
    manifest: Manifest,
    ancestor: Timeline | null,
    private readonly config: TimelineConfig,
  ) {
    this.tenantId = manifest.tenantId;
    this.timelineId = manifest.timelineId;
    this.ancestor = ancestor;
    this.ancestorLsn = manifest.ancestorLsn;
    this.startLsn = manifest.startLsn;
    this._diskConsistentLsn = manifest.diskConsistentLsn;
    this._lastRecordLsn = manifest.diskConsistentLsn;
    this.open = new InMemoryLayer(manifest.diskConsistentLsn);
    this.mapId = core.createLayerMap();
    try {
      for (const desc of manifest.layers) this.historic.push({ desc, handle: this.openLayerFile(desc) });
      core.setLayerMap(this.mapId, this.historic.map((l) => l.handle));
    } catch (e) {
      this.releaseHandles();
      throw e;
    }
  }

  get lastRecordLsn(): Lsn {
    return this._lastRecordLsn;
  }

  /** Every record with lsn ≤ this is in a layer file listed in the manifest. */
  get diskConsistentLsn(): Lsn {
    return this._diskConsistentLsn;
  }

  /**
   * Apply a batch of WAL records: all of it or nothing. LSNs must not go backwards within the batch
   * and must exceed lastRecordLsn; one LSN may carry several records for different pages.
   */
  ingest(records: readonly WalRecord[]): void {
    this.checkOpen();
    if (!Array.isArray(records)) throw new StrataError('BAD_RECORD', 'ingest expects an array of records');
    const keys: Buffer[] = new Array<Buffer>(records.length);
    const values: Buffer[] = new Array<Buffer>(records.length);
    let prev = this._lastRecordLsn;
    let sameLsnKeys = new Set<string>();
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      values[i] = serializeRecord(r);
      keys[i] = encodeKey(r.key);
      if (i === 0 ? r.lsn <= prev : r.lsn < prev) {
        throw new StrataError('LSN_ORDER', `${this.name}: record ${i} has LSN ${formatLsn(r.lsn)}, ` +
          (i === 0 ? `not above lastRecordLsn ${formatLsn(prev)}` : `below the previous record's ${formatLsn(prev)}`) +
          '; nothing of the batch was applied');
      }
      if (r.lsn !== prev) sameLsnKeys = new Set<string>();
      const id = keys[i].toString('latin1');
      if (sameLsnKeys.has(id)) {
        throw new StrataError('LSN_ORDER', `${this.name}: two records for page ${formatEncodedKey(keys[i])} at LSN ${formatLsn(r.lsn)}; nothing of the batch was applied`);
      }
      sameLsnKeys.add(id);
      prev = r.lsn;
    }
    if (records.length === 0) return;
    for (let i = 0; i < records.length; i++) this.open.put(keys[i], records[i].lsn, values[i]);
    this._lastRecordLsn = prev;
    this.wakeWaiters();
    if (this.open.bytes >= this.config.checkpointDistance) {
      this.freezeOpenLayer();
      this.enqueue(() => this.flushFrozen()).catch((e: unknown) => { this.backgroundError ??= e; });
    }
  }

  /** GetPage@LSN: the 8192-byte page as of `lsn`. Waits up to timeoutMs for ingest to reach `lsn`. */
  async getPage(key: PageKey, lsn: Lsn, opts: GetPageOptions = {}): Promise<Buffer> {
    const [page] = await this.getPages([key], lsn, opts);
    return page;
  }

  /** GetPage@LSN for many keys at one LSN, in one call into the core. */
  async getPages(keys: readonly PageKey[], lsn: Lsn, opts: GetPageOptions = {}): Promise<Buffer[]> {
    this.checkOpen();
    checkLsn(lsn, 'lsn');
    const encoded = keys.map((k) => encodeKey(k));
    await this.waitForLsn(lsn, opts.timeoutMs ?? DEFAULT_WAIT_LSN_TIMEOUT_MS);
    this.checkOpen();
    const out = Buffer.allocUnsafe(PAGE_SIZE * encoded.length);
    const status = new Uint8Array(encoded.length);
    this.readInto(encoded, lsn, out, status);
    const pages: Buffer[] = [];
    for (let i = 0; i < encoded.length; i++) {
      if (status[i] !== PAGE_STATUS_OK) {
        throw new StrataError('PAGE_NOT_FOUND', `${this.name}: no page ${formatEncodedKey(encoded[i])} at LSN ${formatLsn(lsn)}`);
      }
      pages.push(out.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
    }
    return pages;
  }

  /** Freeze the open layer and wait until every frozen layer is on disk. */
  async flush(): Promise<void> {
    this.checkOpen();
    if (!this.open.isEmpty) this.freezeOpenLayer();
    await this.enqueue(() => this.flushFrozen());
    this.throwBackgroundError();
  }

  /**
   * Materialize every page of the timeline (ancestors included) at `lsn` into one image layer
   * over the whole keyspace. Flushes first when `lsn` is above diskConsistentLsn, so the image
   * never overlaps records still in memory.
   */
  async createImageLayer(lsn: Lsn): Promise<LayerInfo> {
    this.checkOpen();
    checkLsn(lsn, 'lsn');
    if (lsn > this._lastRecordLsn || lsn < this.startLsn) {
      throw new StrataError('BAD_ARGUMENT', `${this.name}: image LSN ${formatLsn(lsn)} outside [${formatLsn(this.startLsn)}, lastRecordLsn ${formatLsn(this._lastRecordLsn)}]`);
    }
    if (lsn > this._diskConsistentLsn) await this.flush();
    let info: LayerInfo | undefined;
    await this.enqueue(async () => { info = await this.writeImageLayer(lsn); });
    return info!;
  }

  layers(): LayerInfo[] {
    return this.historic.map(({ desc }) => ({ ...desc }));
  }

  stats(): TimelineStats {
    return {
      tenantId: this.tenantId,
      timelineId: this.timelineId,
      lastRecordLsn: this._lastRecordLsn,
      diskConsistentLsn: this._diskConsistentLsn,
      openLayerBytes: this.open.bytes,
      frozenLayers: this.frozen.length,
      layers: this.historic.length,
      ...this.stat,
    };
  }

  /** @internal Flush and release native resources; the repository closes timelines children first. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.flush();
    } finally {
      this.closed = true;
      for (const w of this.waiters) w.resolve();
      this.waiters = [];
      this.releaseHandles();
    }
  }

  /** @internal The manifest as it stands, for the repository. */
  manifest(): Manifest {
    return {
      tenantId: this.tenantId,
      timelineId: this.timelineId,
      ancestorTimelineId: this.ancestor?.timelineId ?? null,
      ancestorLsn: this.ancestorLsn,
      startLsn: this.startLsn,
      diskConsistentLsn: this._diskConsistentLsn,
      compression: this.config.compression,
      layers: this.historic.map((l) => l.desc),
    };
  }

  private get name(): string {
    return `timeline ${this.tenantId}/${this.timelineId}`;
  }

  private checkOpen(): void {
    if (this.closed) throw new StrataError('CLOSED', `${this.name} is closed`);
  }

  private throwBackgroundError(): void {
    const e = this.backgroundError;
    if (e !== null) {
      this.backgroundError = null;
      throw e;
    }
  }

  // ---- reads ---------------------------------------------------------------------------------

  private readInto(keys: readonly Buffer[], lsn: Lsn, out: Buffer, status: Uint8Array): void {
    const plan = encodeReadPlan(keys.map((key) => this.planRequest(key, lsn)));
    const st: ReadStats = this.core.getPages(plan, out, status);
    this.stat.reads += keys.length;
    this.stat.layersVisited += st.layersVisited;
    this.stat.recordsApplied += st.recordsApplied;
  }

  /** The segments a read of `key` at `lsn` searches: this timeline, then each ancestor below its branch point. */
  private planRequest(key: Buffer, lsn: Lsn): PlanRequest {
    const segments: PlanSegment[] = [];
    let cap = lsn;
    for (let t: Timeline | null = this; t !== null; t = t.ancestor) {
      const seg: PlanSegment = { layerMapId: t.mapId, capLsn: cap, memLsns: [], memRecords: [] };
      segments.push(seg);
      if (t.collectInMemory(key, cap, seg)) break;
      if (t.ancestorLsn !== null && t.ancestorLsn < cap) cap = t.ancestorLsn;
    }
    return { key, segments };
  }

  /** Records from the open and frozen layers, newest first; true when the chain is complete. */
  private collectInMemory(key: Buffer, cap: Lsn, seg: PlanSegment): boolean {
    if (this.open.collect(key, cap, seg.memLsns, seg.memRecords)) return true;
    for (let i = this.frozen.length - 1; i >= 0; i--) {
      if (this.frozen[i].collect(key, cap, seg.memLsns, seg.memRecords)) return true;
    }
    return false;
  }

  private waitForLsn(lsn: Lsn, timeoutMs: number): Promise<void> {
    if (lsn <= this._lastRecordLsn) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new StrataError('LSN_TIMEOUT', `${this.name}: LSN ${formatLsn(lsn)} not reached within ${timeoutMs} ms (lastRecordLsn ${formatLsn(this._lastRecordLsn)})`));
      }, timeoutMs);
      const waiter: LsnWaiter = { lsn, resolve: () => { clearTimeout(timer); resolve(); } };
      this.waiters.push(waiter);
    });
  }

  private wakeWaiters(): void {
    if (this.waiters.length === 0) return;
    const ready = this.waiters.filter((w) => w.lsn <= this._lastRecordLsn);
    this.waiters = this.waiters.filter((w) => w.lsn > this._lastRecordLsn);
    for (const w of ready) w.resolve();
  }

  // ---- writes --------------------------------------------------------------------------------

  private enqueue(job: () => Promise<void>): Promise<void> {
    const run = this.serial.then(job);
    this.serial = run.catch(() => undefined);
    return run;
  }

  private freezeOpenLayer(): void {
    this.frozen.push(this.open);
    this.open = new InMemoryLayer(this.open.endLsn);
  }

  private async flushFrozen(): Promise<void> {
    while (this.frozen.length > 0) await this.flushOne(this.frozen[0]);
  }

  /** Write one frozen layer as an L0 delta, publish it in the manifest, then swap it in for readers. */
  private async flushOne(layer: InMemoryLayer): Promise<void> {
    const lsnStart = layer.startLsn + 1n;
    const lsnEnd = layer.endLsn + 1n;
    const fileName = deltaFileName(KEY_MIN, KEY_MAX, lsnStart, lsnEnd);
    const codec = CODEC_BY_NAME[this.config.compression];
    const sizeBytes = await this.writeLayerFile(fileName, 'delta', lsnStart, lsnEnd, async (append) => {
      let batch = new EntryBatch(DELTA_INDEX_KEY_SIZE);
      for (const h of layer.sortedHistories()) {
        for (let i = 0; i < h.lsns.length; i++) {
          batch.add(h.key, h.lsns[i], encodeBlob(codec, h.records[i]), recordWillInit(h.records[i]));
          if (batch.count >= WRITE_BATCH_ENTRIES) {
            append(batch);
            batch = new EntryBatch(DELTA_INDEX_KEY_SIZE);
            await yieldToEventLoop();
          }
        }
      }
      append(batch);
    });
    const desc: LayerDesc = {
      fileName, kind: 'delta', level: 0, keyStart: keyToHex(KEY_MIN), keyEnd: keyToHex(KEY_MAX), lsnStart, lsnEnd, sizeBytes,
    };
    this.publishLayer(desc, layer.endLsn);
    this.frozen.shift();
  }

  private async writeImageLayer(lsn: Lsn): Promise<LayerInfo> {
    const fileName = imageFileName(KEY_MIN, KEY_MAX, lsn);
    const existing = this.historic.find((l) => l.desc.fileName === fileName);
    if (existing) return { ...existing.desc };
    const keys = this.allKeys();
    const codec = CODEC_BY_NAME[this.config.compression];
    const sizeBytes = await this.writeLayerFile(fileName, 'image', lsn, lsn + 1n, async (append) => {
      const out = Buffer.allocUnsafe(PAGE_SIZE * IMAGE_BATCH_KEYS);
      const status = new Uint8Array(IMAGE_BATCH_KEYS);
      for (let start = 0; start < keys.length; start += IMAGE_BATCH_KEYS) {
        const chunk = keys.slice(start, start + IMAGE_BATCH_KEYS);
        this.readInto(chunk, lsn, out.subarray(0, chunk.length * PAGE_SIZE), status.subarray(0, chunk.length));
        const batch = new EntryBatch(KEY_SIZE);
        for (let i = 0; i < chunk.length; i++) {
          if (status[i] !== PAGE_STATUS_OK) continue; // no page at this LSN: absent from the image
          batch.add(chunk[i], null, encodeBlob(codec, imageRecord(out.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE))), true);
        }
        append(batch);
        await yieldToEventLoop();
      }
    });
    const desc: LayerDesc = {
      fileName, kind: 'image', level: 0, keyStart: keyToHex(KEY_MIN), keyEnd: keyToHex(KEY_MAX), lsnStart: lsn, lsnEnd: lsn + 1n, sizeBytes,
    };
    this.publishLayer(desc, this._diskConsistentLsn);
    return { ...desc };
  }

  /** Every key with any record in this timeline or the part of its ancestors it can see, sorted. */
  private allKeys(): Buffer[] {
    const seen = new Map<string, Buffer>();
    const add = (k: Buffer): void => { seen.set(k.toString('latin1'), k); };
    for (let t: Timeline | null = this; t !== null; t = t.ancestor) {
      for (const l of t.historic) {
        const packed = this.core.layerKeys(l.handle);
        for (let o = 0; o < packed.length; o += KEY_SIZE) add(Buffer.from(packed.subarray(o, o + KEY_SIZE)));
      }
      for (const m of [t.open, ...t.frozen]) m.keys().forEach(add);
    }
    return [...seen.values()].sort(Buffer.compare);
  }

  /** Stream a layer into `<name>.tmp`, fsync, rename, fsync the directory. Returns its size. */
  private async writeLayerFile(
    fileName: string, kind: LayerKind, lsnStart: Lsn, lsnEnd: Lsn,
    produce: (append: (b: EntryBatch) => void) => Promise<void>,
  ): Promise<number> {
    const tmp = path.join(this.dir, fileName + TMP_SUFFIX);
    const writer = this.core.createLayerWriter(tmp, {
      kind, codec: CODEC_BY_NAME[this.config.compression], keyStart: KEY_MIN, keyEnd: KEY_MAX, lsnStart, lsnEnd,
    });
    let size: number;
    try {
      await produce((b) => { if (b.count > 0) writer.append(b.indexKeys(), Buffer.concat(b.blobs), b.willInit()); });
      size = writer.finish();
    } catch (e) {
      writer.abort();
      fs.rmSync(tmp, { force: true });
      throw e;
    }
    wrapIo(`publishing ${fileName}`, () => publishFile(tmp, path.join(this.dir, fileName)));
    return size;
  }

  /**
   * Make a new layer part of the timeline: manifest first (the durable commit point), then the
   * in-memory layer map, in one synchronous step so readers never see it twice or not at all.
   */
  private publishLayer(desc: LayerDesc, diskConsistentLsn: Lsn): void {
    const handle = this.openLayerFile(desc);
    const next = [...this.historic, { desc, handle }];
    try {
      writeManifest(path.join(this.dir, MANIFEST_FILE), { ...this.manifest(), diskConsistentLsn, layers: next.map((l) => l.desc) });
    } catch (e) {
      this.core.closeLayer(handle);
      throw new StrataError('IO_ERROR', `${this.name}: writing the manifest: ${(e as Error).message}`, { cause: e });
    }
    this.historic = next;
    this._diskConsistentLsn = diskConsistentLsn;
    this.core.setLayerMap(this.mapId, next.map((l) => l.handle));
  }

  private openLayerFile(desc: LayerDesc): number {
    return this.core.openLayer(path.join(this.dir, desc.fileName));
  }

  private releaseHandles(): void {
    this.core.dropLayerMap(this.mapId);
    for (const l of this.historic) this.core.closeLayer(l.handle);
    this.historic = [];
  }
}

/** Index keys, blobs and will_init flags of a run of entries, in the shape LayerWriter.append takes. */
class EntryBatch {
  count = 0;
  readonly blobs: Buffer[] = [];
  private readonly keys: Buffer[] = [];
  private readonly flags: number[] = [];

  constructor(private readonly keySize: number) {}

  add(key: Buffer, lsn: Lsn | null, blob: Buffer, willInit: boolean): void {
    const k = Buffer.allocUnsafe(this.keySize);
    key.copy(k, 0, 0, KEY_SIZE);
    if (lsn !== null) k.writeBigUInt64BE(lsn, KEY_SIZE);
    this.keys.push(k);
    this.blobs.push(blob);
    this.flags.push(willInit ? 1 : 0);
    this.count++;
  }

  indexKeys(): Buffer {
    return Buffer.concat(this.keys);
  }

  willInit(): Uint8Array {
    return Uint8Array.from(this.flags);
  }
}

/** An all-zero page is stored as a 1-byte zero record; anything else as a full image record. */
function imageRecord(page: Buffer): Buffer {
  if (isAllZero(page)) return Buffer.of(RECORD_TAG_ZERO);
  const rec = Buffer.allocUnsafe(1 + PAGE_SIZE);
  rec[0] = RECORD_TAG_IMAGE;
  page.copy(rec, 1);
  return rec;
}

const ZERO_PAGE = Buffer.alloc(PAGE_SIZE);
function isAllZero(page: Buffer): boolean {
  return page.equals(ZERO_PAGE);
}

export function deltaFileName(keyStart: Buffer, keyEnd: Buffer, lsnStart: Lsn, lsnEnd: Lsn): string {
  return `${keyToHex(keyStart)}-${keyToHex(keyEnd)}__${lsnToHex16(lsnStart)}-${lsnToHex16(lsnEnd)}`;
}

export function imageFileName(keyStart: Buffer, keyEnd: Buffer, lsn: Lsn): string {
  return `${keyToHex(keyStart)}-${keyToHex(keyEnd)}__${lsnToHex16(lsn)}`;
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
