/**
 * The read path of a timeline: GetPage@LSN requests become one read plan (docs/FORMAT.md, "Read
 * plan") holding, per key, this timeline and each ancestor below its branch point with their
 * in-memory records; one core call reconstructs the batch. Keeps the read-amplification counters
 * and histograms. Scratch buffers are reused, so a read allocates no per-request objects.
 */
import type { Core } from '../core/core';
import { COUNTS_PER_REQUEST, PAGE_STATUS_NOT_FOUND } from '../core/core';
import { ReadPlanWriter } from '../core/read_plan';
import { describeValue, StrataError } from '../errors';
import { encodeKey, formatKey, KEY_SIZE, type PageKey } from '../key';
import { formatLsn, type Lsn } from '../lsn';
import { PAGE_SIZE } from '../record';
import { IntHistogram } from './histogram';
import { HEAT_MIN_APPLIED, type ReadHeat } from './read_heat';

/** What the read path needs from each timeline of a read's chain: the timeline, then its ancestors. */
export interface ReadSegment {
  readonly mapId: number;
  /** Branch point: reads continue into `ancestorSegment` capped at this LSN. */
  readonly ancestorLsn: Lsn | null;
  readonly ancestorSegment: ReadSegment | null;
  hasInMemoryRecords(): boolean;
  /** Append in-memory records of the key (latin1 id) with lsn ≤ cap, newest first; true at a will_init record. */
  collectInMemory(keyId: string, cap: Lsn, w: ReadPlanWriter): boolean;
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

  constructor(private readonly core: Core, private readonly head: ReadSegment, private readonly name: string) {}

  /** Async reconstruction of `keys` at `lsn` (the caller has waited for the LSN and checked the cutoff). */
  async getPages(keys: readonly PageKey[], lsn: Lsn, offloadCachedReads: boolean): Promise<Buffer[]> {
    const n = keys.length;
    const out = Buffer.allocUnsafe(PAGE_SIZE * n);
    const status = new Uint8Array(n);
    const counts = new Uint32Array(n * COUNTS_PER_REQUEST);
    if (n > 0) await this.core.getPagesAsync(this.buildPlan(keys, lsn), out, status, counts, !offloadCachedReads);
    this.record(counts, keys);
    this.throwIfMissing(keys, lsn, status);
    const pages: Buffer[] = [];
    for (let i = 0; i < n; i++) pages.push(out.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
    return pages;
  }

  /**
   * Async reconstruction that reports, instead of throwing, which keys have no page: status[i] is
   * PAGE_STATUS_OK or PAGE_STATUS_NOT_FOUND (its 8192 bytes then zero). Keys may be any kind.
   */
  async getPagesWithStatus(keys: ReadonlyArray<PageKey | Buffer>, lsn: Lsn, offloadCachedReads: boolean): Promise<{ out: Buffer; status: Uint8Array }> {
    const n = keys.length;
    const out = Buffer.allocUnsafe(PAGE_SIZE * n);
    const status = new Uint8Array(n);
    const counts = new Uint32Array(n * COUNTS_PER_REQUEST);
    if (n > 0) await this.core.getPagesAsync(this.buildPlan(keys, lsn), out, status, counts, !offloadCachedReads);
    this.record(counts, keys);
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
    if (!this.core.tryGetPagesCached(this.buildPlan(keys, lsn), into, status, counts, offset)) return false;
    this.record(counts, keys);
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
    const out = offset === 0 && into.length === bytes ? into : into.subarray(offset, offset + bytes);
    this.readInto(keys, lsn, out, status, counts);
    return status;
  }

  /** Reconstruct `keys` at `lsn` into `out` with one core call; `countStats` false for the engine's own reads. */
  readInto(keys: ReadonlyArray<PageKey | Buffer>, lsn: Lsn, out: Uint8Array, status: Uint8Array, counts: Uint32Array, countStats = true): void {
    this.core.getPages(this.buildPlan(keys, lsn), out, status, counts);
    if (countStats) this.record(counts, keys);
  }

  resetCounters(): void {
    this.counters.reads = 0;
    this.counters.layersVisited = 0;
    this.counters.recordsApplied = 0;
    this.visitedHist.reset();
    this.appliedHist.reset();
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
          if (s.collectInMemory(keyId, cap, w)) break;
        }
        if (s.ancestorLsn !== null && s.ancestorLsn < cap) cap = s.ancestorLsn;
      }
    }
    return w.finish();
  }
}
