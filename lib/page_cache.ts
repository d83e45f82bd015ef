/**
 * Clock page cache over immutable 8 KB layer-file blocks (reference §1, Neon's page_cache.rs).
 * One contiguous pool cut into fixed slots; a key is (fileId, blkno) where fileId is a layer handle.
 *
 * The replacement policy is pinned down exactly (the C++ twin in native/page_cache.cc must make the
 * same choices so hit/miss/eviction counters agree between cores):
 *   - a hit bumps the slot's usage count, saturating at MAX_USAGE_COUNT;
 *   - an insert of a new key first takes never-used slots in index order, then sweeps the clock
 *     hand for at most SWEEP_LIMIT_FACTOR × capacity steps: pinned slots are skipped untouched, a
 *     slot with usage 0 is the victim, any other slot loses one usage point;
 *   - slots are never freed (handles are never reused, so blocks of closed files just age out).
 */
import type { PageCacheApi, PageCacheStats } from './core';
import { MIN_PAGE_CACHE_PAGES } from './core';
import { StrataError } from './errors';
import { BLOCK_SIZE } from './format';

/** Usage count cap: a block touched many times during one reconstruction cannot become immortal. */
export const MAX_USAGE_COUNT = 5;
/** The sweep gives up after this many full turns of the hand (Neon uses the same bound). */
export const SWEEP_LIMIT_FACTOR = 10;

const U32_MAX = 0xffff_ffff;

export class PageCache implements PageCacheApi {
  readonly capacityPages: number;
  /** All slot buffers, slot i at [i × BLOCK_SIZE, (i+1) × BLOCK_SIZE). */
  private readonly pool: Buffer;
  /** One view per slot, made once: copying through them avoids creating a view per lookup. */
  private readonly slotViews: Uint8Array[];
  private readonly slotFile: Uint32Array;
  private readonly slotBlk: Uint32Array;
  private readonly usage: Uint8Array;
  private readonly pins: Uint32Array;
  /** fileId → (blkno → slot). Nested because fileId × 2^32 + blkno is not exact in a double for large ids. */
  private readonly mapping = new Map<number, Map<number, number>>();
  /** Slots [0, usedSlots) hold a block; the rest were never used. */
  private usedSlots = 0;
  private hand = 0;
  private hits = 0;
  private misses = 0;
  private evictions = 0;

  constructor(pageCacheBytes: number) {
    if (!Number.isFinite(pageCacheBytes) || pageCacheBytes < 0) {
      throw new StrataError('BAD_ARGUMENT', `pageCacheBytes must be a non-negative number: got ${String(pageCacheBytes)}`);
    }
    this.capacityPages = Math.max(MIN_PAGE_CACHE_PAGES, Math.floor(pageCacheBytes / BLOCK_SIZE));
    this.pool = Buffer.alloc(this.capacityPages * BLOCK_SIZE);
    this.slotViews = Array.from({ length: this.capacityPages }, (_, i) => this.pool.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE));
    this.slotFile = new Uint32Array(this.capacityPages);
    this.slotBlk = new Uint32Array(this.capacityPages);
    this.usage = new Uint8Array(this.capacityPages);
    this.pins = new Uint32Array(this.capacityPages);
  }

  stats(): PageCacheStats {
    return {
      hits: this.hits,
      misses: this.misses,
      evictions: this.evictions,
      capacityPages: this.capacityPages,
      usedPages: this.usedSlots,
    };
  }

  lookup(fileId: number, blkno: number, into: Buffer): boolean {
    checkBlockKey(fileId, blkno);
    if (!(into instanceof Uint8Array) || into.length < BLOCK_SIZE) {
      throw new StrataError('BAD_ARGUMENT', `page cache lookup needs a buffer of at least ${BLOCK_SIZE} bytes`);
    }
    return this.lookupUnchecked(fileId, blkno, into);
  }

  /** lookup() without argument checks, for the core's own read path. */
  lookupUnchecked(fileId: number, blkno: number, into: Uint8Array): boolean {
    const slot = this.find(fileId, blkno);
    if (slot < 0) {
      this.misses++;
      return false;
    }
    into.set(this.slotViews[slot]);
    if (this.usage[slot] < MAX_USAGE_COUNT) this.usage[slot]++;
    this.hits++;
    return true;
  }

  insert(fileId: number, blkno: number, data: Buffer): void {
    checkBlockKey(fileId, blkno);
    if (!(data instanceof Uint8Array) || data.length !== BLOCK_SIZE) {
      throw new StrataError('BAD_ARGUMENT', `page cache insert needs exactly ${BLOCK_SIZE} bytes`);
    }
    this.insertUnchecked(fileId, blkno, data);
  }

  /** insert() without argument checks, for the core's own read path. */
  insertUnchecked(fileId: number, blkno: number, data: Uint8Array): void {
    let slot = this.find(fileId, blkno);
    if (slot >= 0) {
      // Blocks are immutable, so this only happens through the test API; keep the usage count.
      this.slotViews[slot].set(data.length === BLOCK_SIZE ? data : data.subarray(0, BLOCK_SIZE));
      return;
    }
    if (this.usedSlots < this.capacityPages) {
      slot = this.usedSlots++;
    } else {
      slot = this.findVictim(fileId, blkno);
      this.evictions++;
      this.unmap(this.slotFile[slot], this.slotBlk[slot]);
    }
    this.slotFile[slot] = fileId;
    this.slotBlk[slot] = blkno;
    this.usage[slot] = 1;
    this.slotViews[slot].set(data.length === BLOCK_SIZE ? data : data.subarray(0, BLOCK_SIZE));
    this.map(fileId, blkno, slot);
  }

  pin(fileId: number, blkno: number): boolean {
    checkBlockKey(fileId, blkno);
    const slot = this.find(fileId, blkno);
    if (slot < 0) return false;
    this.pins[slot]++;
    return true;
  }

  unpin(fileId: number, blkno: number): void {
    checkBlockKey(fileId, blkno);
    const slot = this.find(fileId, blkno);
    if (slot < 0 || this.pins[slot] === 0) {
      throw new StrataError('BAD_ARGUMENT', `unpin of block ${blkno} of file ${fileId}, which is not pinned`);
    }
    this.pins[slot]--;
  }

  contains(fileId: number, blkno: number): boolean {
    checkBlockKey(fileId, blkno);
    return this.find(fileId, blkno) >= 0;
  }

  private find(fileId: number, blkno: number): number {
    const blocks = this.mapping.get(fileId);
    if (blocks === undefined) return -1;
    const slot = blocks.get(blkno);
    return slot === undefined ? -1 : slot;
  }

  private map(fileId: number, blkno: number, slot: number): void {
    let blocks = this.mapping.get(fileId);
    if (blocks === undefined) {
      blocks = new Map<number, number>();
      this.mapping.set(fileId, blocks);
    }
    blocks.set(blkno, slot);
  }

  private unmap(fileId: number, blkno: number): void {
    const blocks = this.mapping.get(fileId);
    if (blocks === undefined) return;
    blocks.delete(blkno);
    // Drop empty inner maps so closed files do not leak one map each.
    if (blocks.size === 0) this.mapping.delete(fileId);
  }

  /** Clock sweep; returns the victim slot (hand left just past it) or throws CACHE_FULL. */
  private findVictim(fileId: number, blkno: number): number {
    const cap = this.capacityPages;
    const limit = SWEEP_LIMIT_FACTOR * cap;
    for (let step = 0; step < limit; step++) {
      const slot = this.hand;
      this.hand = slot + 1 === cap ? 0 : slot + 1;
      if (this.pins[slot] !== 0) continue;
      if (this.usage[slot] === 0) return slot;
      this.usage[slot]--;
    }
    throw new StrataError('CACHE_FULL', `no evictable page-cache slot for block ${blkno} of file ${fileId}: all ${cap} slots are pinned`);
  }
}

function checkBlockKey(fileId: number, blkno: number): void {
  if (!isU32(fileId) || !isU32(blkno)) {
    throw new StrataError('BAD_ARGUMENT', `page cache key must be two u32 integers: got (${String(fileId)}, ${String(blkno)})`);
  }
}

function isU32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= U32_MAX;
}
