/**
 * The read path of a timeline: GetPage@LSN requests become one read plan (docs/FORMAT.md, "Read
 * plan") holding, per key, this timeline and each ancestor below its branch point with their
 * in-memory records; one core call reconstructs the batch. Keeps the read-amplification counters
 * and histograms. Scratch buffers are reused, so a read allocates no per-request objects.
 */
import type { Core } from '../core/core';
import { COUNTS_PER_REQUEST, PAGE_STATUS_NOT_FOUND, PAGE_STATUS_OK } from '../core/core';
import { ReadPlanWriter } from '../core/read_plan';
import { describeValue, StrataError } from '../errors';
import { encodeKey, formatKey, KEY_SIZE, type PageKey } from '../key';
import { formatLsn, type Lsn } from '../lsn';
import { PAGE_SIZE } from '../record';
import { type DecodedPageIndex, splitLsn, type SplitLsn } from './decoded_page_cache';
import { IntHistogram } from './histogram';
import { HEAT_MIN_APPLIED, type ReadHeat } from './read_heat';

/** What the read path needs from each timeline of a read's chain: the timeline, then its ancestors. */
export interface ReadSegment {
  readonly mapId: number;
  /** Branch point: reads continue into `ancestorSegment` capped at this LSN. */
  readonly ancestorLsn: Lsn | null;
  readonly ancestorSegment: ReadSegment | null;
  hasInMemoryRecords(): boolean;
  /** Append in-memory records of the key (latin1 id) with lsn ≤ the plan segment's cap, newest first; true at a will_init record. */
  collectInMemory(keyId: string, w: ReadPlanWriter): boolean;
}

/** What the decoded-page cache needs from the timeline a ReadPath reads. */
export interface DecodedPageHost {
  readonly lastRecordLsn: Lsn;
  /**
   * Bumped whenever pages may change (a batch stored, a snapshot loaded): an async read that saw
   * it change while it ran caches nothing.
   */
  readonly writeGeneration: number;
}

export interface ReadCounters {
  reads: number;
  layersVisited: number;
  recordsApplied: number;
}

interface Scratch {
  status: Uint8Array;
  counts: Uint32Array;
}

/** Batch sizes whose status/count arrays are kept for reuse. */
const MAX_SCRATCH_SIZES = 16;

export class ReadPath {
  readonly counters: ReadCounters = { reads: 0, layersVisited: 0, recordsApplied: 0 };
  readonly visitedHist = new IntHistogram();
  readonly appliedHist = new IntHistogram();
  private readonly planWriter = new ReadPlanWriter();
  private readonly scratch = new Map<number, Scratch>();
  private readonly keyScratch = Buffer.alloc(KEY_SIZE);
  /** Where reads that applied many records are noted for heat-driven images; null when off. */
  heat: ReadHeat | null = null;
  /** This timeline's entries in the decoded-page cache; null when the cache is off. */
  private decoded: DecodedPageIndex | null = null;
  private decodedHost: DecodedPageHost | null = null;
  private readonly lsnSplit: SplitLsn = { hi: 0, lo: 0 };
  /** Indexes (into the batch) of the keys the decoded-page cache did not hold, and their keys. */
  private missIdx = new Int32Array(64);
  private readonly missKeys: Array<PageKey | Buffer> = [];
  private missOut = Buffer.alloc(0);

  constructor(private readonly core: Core, private readonly head: ReadSegment, private readonly name: string) {}

  /** Serve reads from (and fill) `index`, for a timeline described by `host`. */
  useDecodedPages(index: DecodedPageIndex, host: DecodedPageHost): void {
    this.decoded = index;
    this.decodedHost = host;
  }

  /** Async reconstruction of `keys` at `lsn` (the caller has waited for the LSN and checked the cutoff). */
  async getPages(keys: readonly PageKey[], lsn: Lsn, offloadCachedReads: boolean): Promise<Buffer[]> {
    const n = keys.length;
    const { out, status } = await this.readAsync(keys, lsn, offloadCachedReads);
    this.throwIfMissing(keys, lsn, status);
    const pages: Buffer[] = [];
    for (let i = 0; i < n; i++) pages.push(out.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
    return pages;
  }

  /**
   * Async reconstruction that reports, instead of throwing, which keys have no page: status[i] is
   * PAGE_STATUS_OK or PAGE_STATUS_NOT_FOUND (its 8192 bytes then zero). Keys may be any kind.
   */
  getPagesWithStatus(keys: ReadonlyArray<PageKey | Buffer>, lsn: Lsn, offloadCachedReads: boolean): Promise<{ out: Buffer; status: Uint8Array }> {
    return this.readAsync(keys, lsn, offloadCachedReads);
  }

  /** Decoded pages first, then one async core read of the rest into a fresh buffer. */
  private async readAsync(keys: ReadonlyArray<PageKey | Buffer>, lsn: Lsn, offloadCachedReads: boolean): Promise<{ out: Buffer; status: Uint8Array }> {
    const n = keys.length;
    const out = Buffer.allocUnsafe(PAGE_SIZE * n);
    const status = new Uint8Array(n);
    const index = this.decoded;
    const host = this.decodedHost;
    const m = index === null ? n : this.serveDecoded(index, keys, lsn, out, 0, status);
    if (m < n) this.recordHits(n - m);
    if (m === 0) return { out, status };
    // The read leaves this tick: what it needs of the shared scratch is copied now.
    const missIdx = m === n ? null : this.missIdx.slice(0, m);
    const missKeys = missIdx === null ? keys : Array.from(missIdx, (i) => keys[i]);
    const missOut = missIdx === null ? out : Buffer.allocUnsafe(PAGE_SIZE * m);
    const missStatus = missIdx === null ? status : new Uint8Array(m);
    const counts = new Uint32Array(m * COUNTS_PER_REQUEST);
    const generation = host?.writeGeneration;
    const atLatest = host !== null && lsn === host.lastRecordLsn;
    await this.core.getPagesAsync(this.buildPlan(missKeys, lsn), missOut, missStatus, counts, !offloadCachedReads);
    this.record(counts, missKeys);
    if (missIdx !== null) {
      for (let j = 0; j < m; j++) {
        status[missIdx[j]] = missStatus[j];
        missOut.copy(out, missIdx[j] * PAGE_SIZE, j * PAGE_SIZE, (j + 1) * PAGE_SIZE);
      }
    }
    // Cached only if no page changed while the read was away (its answer may be stale for later LSNs).
    if (index !== null && atLatest && host.writeGeneration === generation) this.fillDecoded(index, missKeys, lsn, missOut, 0, missStatus);
    return { out, status };
  }

  /**
   * Reconstruction into `into` at `offset` from page-cache blocks only, on this thread: true when
   * every key was read; false when a block would need the disk or a key has no page (the caller
   * then takes the async path, which reads the disk off the event loop and reports the error).
   */
  tryReadPagesCached(keys: readonly PageKey[], lsn: Lsn, into: Uint8Array, offset: number): boolean {
    const n = keys.length;
    if (n === 0 || into.length < offset + n * PAGE_SIZE) return false;
    const { status, counts } = this.scratchFor(n);
    if (!this.readSync(keys, lsn, into, offset, status, counts, true)) return false;
    return status.indexOf(PAGE_STATUS_NOT_FOUND) < 0;
  }

  /** Synchronous reconstruction into `into` at `offset` (8192 bytes per key). */
  readPagesInto(keys: readonly PageKey[], lsn: Lsn, into: Uint8Array, offset: number): void {
    const status = this.readPagesIntoWithStatus(keys, lsn, into, offset);
    if (status !== null) this.throwIfMissing(keys, lsn, status);
  }

  /**
   * readPagesInto that reports missing keys (zero bytes) in the returned status array, valid
   * until the next read of the same batch size; null for an empty batch.
   */
  readPagesIntoWithStatus(keys: ReadonlyArray<PageKey | Buffer>, lsn: Lsn, into: Uint8Array, offset: number): Uint8Array | null {
    const bytes = keys.length * PAGE_SIZE;
    if (!(into instanceof Uint8Array) || !Number.isInteger(offset) || offset < 0 || into.length < offset + bytes) {
      throw new StrataError('BAD_ARGUMENT', `${this.name}: the output buffer must hold ${bytes} bytes from offset ${describeValue(offset)}`);
    }
    if (keys.length === 0) return null;
    const { status, counts } = this.scratchFor(keys.length);
    this.readSync(keys, lsn, into, offset, status, counts, false);
    return status;
  }

  /**
   * A synchronous read of `keys` at `lsn` into out[offset, + 8192 × n): pages the decoded-page
   * cache holds, then one core call for the rest (which fills the cache when the read is at the
   * timeline's lastRecordLsn). `cachedOnly`: from page-cache blocks only — false when a block would
   * need the disk (out then holds nothing to use).
   */
  private readSync(keys: ReadonlyArray<PageKey | Buffer>, lsn: Lsn, out: Uint8Array, offset: number, status: Uint8Array, counts: Uint32Array, cachedOnly: boolean): boolean {
    const n = keys.length;
    const index = this.decoded;
    if (index === null) {
      if (!this.coreRead(keys, lsn, out, offset, status, counts, cachedOnly)) return false;
      this.record(counts, keys);
      return true;
    }
    const m = this.serveDecoded(index, keys, lsn, out, offset, status);
    if (m === 0) {
      this.recordHits(n);
      return true;
    }
    const atLatest = lsn === this.decodedHost!.lastRecordLsn;
    if (m === n) {
      if (!this.coreRead(keys, lsn, out, offset, status, counts, cachedOnly)) return false;
      this.record(counts, keys);
      if (atLatest) this.fillDecoded(index, keys, lsn, out, offset, status);
      return true;
    }
    const missKeys = this.missKeys;
    missKeys.length = m;
    for (let j = 0; j < m; j++) missKeys[j] = keys[this.missIdx[j]];
    if (this.missOut.length < m * PAGE_SIZE) this.missOut = Buffer.allocUnsafe(Math.max(m, keys.length) * PAGE_SIZE);
    const missOut = this.missOut;
    const scratch = this.scratchFor(m);
    const ok = this.coreRead(missKeys, lsn, missOut, 0, scratch.status, scratch.counts, cachedOnly);
    if (ok) {
      this.record(scratch.counts, missKeys);
      this.recordHits(n - m);
      for (let j = 0; j < m; j++) {
        const i = this.missIdx[j];
        status[i] = scratch.status[j];
        missOut.copy(out, offset + i * PAGE_SIZE, j * PAGE_SIZE, (j + 1) * PAGE_SIZE);
      }
      if (atLatest) this.fillDecoded(index, missKeys, lsn, missOut, 0, scratch.status);
    }
    missKeys.length = 0; // hold no caller's keys
    return ok;
  }

  /** One core call into out[offset, + 8192 × n). */
  private coreRead(keys: ReadonlyArray<PageKey | Buffer>, lsn: Lsn, out: Uint8Array, offset: number, status: Uint8Array, counts: Uint32Array, cachedOnly: boolean): boolean {
    const plan = this.buildPlan(keys, lsn);
    if (cachedOnly) return this.core.tryGetPagesCached(plan, out, status, counts, offset);
    const bytes = keys.length * PAGE_SIZE;
    this.core.getPages(plan, offset === 0 && out.length === bytes ? out : out.subarray(offset, offset + bytes), status, counts);
    return true;
  }

  /**
   * Copy the pages the decoded-page cache holds for `keys` at `lsn` to out[offset + 8192 i] with
   * status OK; the indexes of the others go to missIdx. Returns how many it did not hold.
   */
  private serveDecoded(index: DecodedPageIndex, keys: ReadonlyArray<PageKey | Buffer>, lsn: Lsn, out: Uint8Array, offset: number, status: Uint8Array): number {
    const at = splitLsn(lsn, this.lsnSplit);
    if (this.missIdx.length < keys.length) this.missIdx = new Int32Array(keys.length);
    let m = 0;
    for (let i = 0; i < keys.length; i++) {
      const slot = index.lookup(keys[i], at);
      if (slot < 0) {
        this.missIdx[m++] = i;
      } else {
        index.copyOut(slot, out, offset + i * PAGE_SIZE);
        status[i] = PAGE_STATUS_OK;
      }
    }
    return m;
  }

  /** Cache the pages just read at the timeline's lastRecordLsn. */
  private fillDecoded(index: DecodedPageIndex, keys: ReadonlyArray<PageKey | Buffer>, lsn: Lsn, pages: Uint8Array, offset: number, status: Uint8Array): void {
    const at = splitLsn(lsn, this.lsnSplit);
    for (let i = 0; i < keys.length; i++) {
      if (status[i] === PAGE_STATUS_OK) index.insert(keys[i], at, pages, offset + i * PAGE_SIZE);
    }
  }

  /**
   * The engine's own reads (image creation): off the event loop (the native core reconstructs on
   * the libuv pool, cached blocks included), without touching read statistics, heat or the
   * decoded-page cache. `out`, `status` and `counts` must stay untouched until it settles.
   */
  readIntoAsync(keys: ReadonlyArray<PageKey | Buffer>, lsn: Lsn, out: Uint8Array, status: Uint8Array, counts: Uint32Array): Promise<void> {
    return this.core.getPagesInBackground(this.buildPlan(keys, lsn), out, status, counts);
  }

  resetCounters(): void {
    this.counters.reads = 0;
    this.counters.layersVisited = 0;
    this.counters.recordsApplied = 0;
    this.visitedHist.reset();
    this.appliedHist.reset();
  }

  /** Reads the decoded-page cache answered: no layer visited, no record applied. */
  private recordHits(n: number): void {
    if (n === 0) return;
    this.counters.reads += n;
    this.visitedHist.record(0, n);
    this.appliedHist.record(0, n);
  }

  /** Per-request read amplification into the totals and histograms, and long chains into the heat. */
  private record(counts: Uint32Array, keys: ReadonlyArray<PageKey | Buffer>): void {
    const n = keys.length;
    this.counters.reads += n;
    for (let i = 0; i < n; i++) {
      const visited = counts[i * COUNTS_PER_REQUEST];
      const applied = counts[i * COUNTS_PER_REQUEST + 1];
      this.counters.layersVisited += visited;
      this.counters.recordsApplied += applied;
      this.visitedHist.record(visited);
      this.appliedHist.record(applied);
      // Only reads with a long chain pay for the key's encoding and the map update.
      if (this.heat !== null && applied >= HEAT_MIN_APPLIED) this.heat.note(this.keyId(keys[i]), applied);
    }
  }

  private keyId(k: PageKey | Buffer): string {
    if (Buffer.isBuffer(k)) return k.toString('latin1', 0, KEY_SIZE);
    encodeKey(k, this.keyScratch);
    return this.keyScratch.toString('latin1');
  }

  private throwIfMissing(keys: readonly PageKey[], lsn: Lsn, status: Uint8Array): void {
    const missing = status.indexOf(PAGE_STATUS_NOT_FOUND);
    if (missing >= 0) {
      throw new StrataError('PAGE_NOT_FOUND', `${this.name}: no page ${formatKey(keys[missing])} at LSN ${formatLsn(lsn)}`);
    }
  }

  /** Status and count arrays of exactly n entries, reused per batch size (views cost a few %). */
  private scratchFor(n: number): Scratch {
    let s = this.scratch.get(n);
    if (s === undefined) {
      if (this.scratch.size >= MAX_SCRATCH_SIZES) this.scratch.clear();
      s = { status: new Uint8Array(n), counts: new Uint32Array(n * COUNTS_PER_REQUEST) };
      this.scratch.set(n, s);
    }
    return s;
  }

  /**
   * Encode the read plan into the reusable writer: per key, this timeline and each ancestor below
   * its branch point, with their in-memory records. Validates keys.
   */
  private buildPlan(keys: ReadonlyArray<PageKey | Buffer>, lsn: Lsn): Buffer {
    const w = this.planWriter.reset();
    for (const k of keys) {
      const offset = w.beginRequest();
      const buf = w.buffer;
      if (Buffer.isBuffer(k)) k.copy(buf, offset, 0, KEY_SIZE);
      else encodeKey(k, buf, offset);
      // The in-memory layers are keyed by a latin1 string of the key: only built when one of the
      // timelines has records in memory (after a flush none has, and hashing it is measurable).
      let keyId: string | null = null;
      let cap = lsn;
      for (let s: ReadSegment | null = this.head; s !== null; s = s.ancestorSegment) {
        w.beginSegment(s.mapId, cap);
        if (s.hasInMemoryRecords()) {
          keyId ??= buf.toString('latin1', offset, offset + KEY_SIZE);
          if (s.collectInMemory(keyId, w)) break;
        }
        if (s.ancestorLsn !== null && s.ancestorLsn < cap) cap = s.ancestorLsn;
      }
    }
    return w.finish();
  }
}
