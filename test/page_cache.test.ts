import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PAGE_SIZE, type PageKey, Repository, type WalRecord } from '../lib';
import type { Core, ImplementationName, PageCacheApi, PageCachePolicy, PageCacheStats } from '../lib/core/core';
import { MIN_PAGE_CACHE_PAGES, PAGE_CACHE_POLICIES } from '../lib/core/core';
import { isStrataError } from '../lib/errors';
import { PageCache } from '../lib/core/ts/page_cache';
import { createCore } from '../lib/core/select';
import { ALL_IMPLEMENTATIONS, describeEachCore, IMPLEMENTATIONS, makeCore, NATIVE_SKIP_NOTE, SKIP_NATIVE, skipNoteFor } from './helpers/cores';
import { Rng } from './helpers/random';

// The W6 benchmark's policy simulators: the caches must replay them hit for hit.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { POLICIES } = require('../bench/lib/policies.js') as {
  POLICIES: Record<string, (trace: Int32Array, capacity: number, universe: number) => number>;
};
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { zipfSampler } = require('../bench/lib/data.js') as { zipfSampler(rng: { next(): number }, n: number, s: number): () => number };

const PAGE = 8192;

function block(fileId: number, blkno: number): Buffer {
  const b = Buffer.alloc(PAGE);
  b.writeUInt32BE(fileId, 0);
  b.writeUInt32BE(blkno, 4);
  b.fill((fileId * 7 + blkno) & 0xff, 8);
  return b;
}

/** What the random-operation differential drives: a real cache (through an adapter) or a model. */
interface CacheModel {
  hits: number;
  misses: number;
  evictions: number;
  lookup(k: string): boolean;
  /** Throws Error('CACHE_FULL') when every slot is pinned. */
  insert(k: string): void;
  pin(k: string): boolean;
  /** Throws Error('BAD_ARGUMENT') when the key is not cached or not pinned. */
  unpin(k: string): void;
  contains(k: string): boolean;
}

/**
 * The clock both cores must follow, as plain code: never-used slots in index order, then a clock
 * sweep (pinned skipped, usage 0 = victim, else usage--), usage cap 5, sweep limit 10 × capacity.
 */
class ClockModel implements CacheModel {
  keys: Array<string | null>;
  usage: number[];
  pins: number[];
  hand = 0;
  hits = 0;
  misses = 0;
  evictions = 0;
  constructor(readonly capacity: number) {
    this.keys = new Array<string | null>(capacity).fill(null);
    this.usage = new Array<number>(capacity).fill(0);
    this.pins = new Array<number>(capacity).fill(0);
  }
  find(k: string): number {
    return this.keys.indexOf(k);
  }
  lookup(k: string): boolean {
    const s = this.find(k);
    if (s < 0) { this.misses++; return false; }
    this.usage[s] = Math.min(5, this.usage[s] + 1);
    this.hits++;
    return true;
  }
  insert(k: string): void {
    if (this.find(k) >= 0) return;
    let s = this.keys.indexOf(null);
    if (s < 0) {
      s = -1;
      for (let step = 0; step < 10 * this.capacity; step++) {
        const c = this.hand;
        this.hand = (this.hand + 1) % this.capacity;
        if (this.pins[c] > 0) continue;
        if (this.usage[c] === 0) { s = c; break; }
        this.usage[c]--;
      }
      if (s < 0) throw new Error('CACHE_FULL');
      this.evictions++;
    }
    this.keys[s] = k;
    this.usage[s] = 1;
  }
  pin(k: string): boolean {
    const s = this.find(k);
    if (s < 0) return false;
    this.pins[s]++;
    return true;
  }
  unpin(k: string): void {
    const s = this.find(k);
    if (s < 0 || this.pins[s] === 0) throw new Error('BAD_ARGUMENT');
    this.pins[s]--;
  }
  contains(k: string): boolean {
    return this.find(k) >= 0;
  }
}

/**
 * S3-FIFO as lib/core/ts/page_cache.ts's comment states it, on arrays of keys (index 0 = head): S, M, and
 * the ghost as the window of the last (M's share) keys evicted from S, a readmitted key blanked out
 * of its cell. Pins: a pinned head of S moves to M; M made only of pinned keys frees nothing.
 * `adaptive`: the 'adaptive-s3fifo' variant — S's share ⌊p⌋, a second window of keys evicted from
 * M, both windows `capacity` long, p moved by ghost hits, promotion from S at frequency 2.
 */
class S3FifoModel implements CacheModel {
  p: number;
  /** Times a ghost hit moved p (adaptive), so a test can check the adaptation was exercised. */
  pMoves = 0;
  small: string[] = [];
  main: string[] = [];
  ghost: Array<string | null> = [];
  mainGhost: Array<string | null> = [];
  freq = new Map<string, number>();
  pins = new Map<string, number>();
  hits = 0;
  misses = 0;
  evictions = 0;
  constructor(readonly capacity: number, readonly adaptive = false) {
    this.p = Math.max(1, Math.floor(capacity / 10));
  }
  private get smallShare(): number {
    return Math.floor(this.p);
  }
  private get ghostCap(): number {
    return this.adaptive ? this.capacity : this.capacity - Math.max(1, Math.floor(this.capacity / 10));
  }
  contains(k: string): boolean {
    return this.freq.has(k);
  }
  lookup(k: string): boolean {
    const f = this.freq.get(k);
    if (f === undefined) { this.misses++; return false; }
    this.freq.set(k, Math.min(3, f + 1));
    this.hits++;
    return true;
  }
  insert(k: string): void {
    if (this.contains(k)) return;
    if (this.small.length + this.main.length === this.capacity) this.evict();
    this.freq.set(k, 0);
    const live = (g: Array<string | null>): number => g.filter((x) => x !== null).length;
    const g = this.ghost.indexOf(k);
    const gm = this.mainGhost.indexOf(k);
    if (g >= 0) {
      this.ghost[g] = null;
      if (this.adaptive) {
        this.p = Math.min(this.capacity - 1, this.p + Math.max(1, live(this.mainGhost) / (live(this.ghost) + 1)));
        this.pMoves++;
      }
      this.main.push(k);
    } else if (gm >= 0) {
      this.mainGhost[gm] = null;
      this.p = Math.max(1, this.p - Math.max(1, live(this.ghost) / (live(this.mainGhost) + 1)));
      this.pMoves++;
      this.main.push(k);
    } else {
      this.small.push(k);
    }
  }
  pin(k: string): boolean {
    if (!this.contains(k)) return false;
    this.pins.set(k, (this.pins.get(k) ?? 0) + 1);
    return true;
  }
  unpin(k: string): void {
    const n = this.pins.get(k) ?? 0;
    if (n === 0) throw new Error('BAD_ARGUMENT');
    this.pins.set(k, n - 1);
  }
  private pinned(k: string): boolean {
    return (this.pins.get(k) ?? 0) > 0;
  }
  private evict(): void {
    for (;;) {
      if (this.small.length >= this.smallShare || this.main.length === 0) {
        if (this.fromSmall()) return;
      } else if (this.fromMain()) {
        return;
      } else if (this.small.length === 0) {
        throw new Error('CACHE_FULL');
      } else if (this.fromSmall()) {
        return;
      }
    }
  }
  private fromSmall(): boolean {
    const k = this.small.shift() as string;
    if (this.pinned(k) || (this.freq.get(k) as number) >= (this.adaptive ? 2 : 1)) {
      this.main.push(k);
      return this.main.length > this.capacity - this.smallShare && this.fromMain();
    }
    this.remember(this.ghost, k);
    this.drop(k);
    return true;
  }
  private fromMain(): boolean {
    if (this.main.every((k) => this.pinned(k))) return false;
    for (;;) {
      const k = this.main.shift() as string;
      const f = this.freq.get(k) as number;
      if (this.pinned(k) || f > 0) {
        if (!this.pinned(k)) this.freq.set(k, f - 1);
        this.main.push(k);
        continue;
      }
      if (this.adaptive) this.remember(this.mainGhost, k);
      this.drop(k);
      return true;
    }
  }
  private remember(ghost: Array<string | null>, k: string): void {
    ghost.push(k);
    if (ghost.length > this.ghostCap) ghost.shift();
  }
  private drop(k: string): void {
    this.freq.delete(k);
    this.pins.delete(k);
    this.evictions++;
  }
}

function errorCode(e: unknown): string {
  if (isStrataError(e, 'CACHE_FULL')) return 'CACHE_FULL';
  if (isStrataError(e, 'BAD_ARGUMENT')) return 'BAD_ARGUMENT';
  if (e instanceof Error && (e.message === 'CACHE_FULL' || e.message === 'BAD_ARGUMENT')) return e.message;
  throw e;
}

const KEY_FILES = [1, 2, 0xffff_fff0];

/** A real cache behind the model interface; a lookup also checks the bytes it copied. */
function adapt(c: PageCacheApi): CacheModel & { badBytes: number } {
  const into = Buffer.alloc(PAGE);
  const parse = (k: string): [number, number] => {
    const [f, b] = k.split('/').map(Number);
    return [f, b];
  };
  const a = {
    badBytes: 0,
    get hits(): number { return c.stats().hits; },
    get misses(): number { return c.stats().misses; },
    get evictions(): number { return c.stats().evictions; },
    lookup(k: string): boolean {
      const [f, b] = parse(k);
      const hit = c.lookup(f, b, into);
      if (hit && !into.equals(block(f, b))) a.badBytes++;
      return hit;
    },
    insert(k: string): void { const [f, b] = parse(k); c.insert(f, b, block(f, b)); },
    pin(k: string): boolean { const [f, b] = parse(k); return c.pin(f, b); },
    unpin(k: string): void { const [f, b] = parse(k); c.unpin(f, b); },
    contains(k: string): boolean { const [f, b] = parse(k); return c.contains(f, b); },
  };
  return a;
}

/**
 * Drives a cache with a seeded random mix of reads (lookup, insert on a miss), plain inserts, pins,
 * unpins and contains; phases alternate between pinning much (so CACHE_FULL happens) and releasing.
 * Returns one line per operation: what it returned or which error it threw.
 */
function randomOps(m: CacheModel, seed: number, capacity: number, ops: number): string[] {
  const rng = new Rng(seed);
  const pinned: string[] = [];
  const log: string[] = [];
  const PHASE_OPS = 400;
  for (let i = 0; i < ops; i++) {
    const pinHeavy = Math.floor(i / PHASE_OPS) % 2 === 1;
    const pinP = pinHeavy ? 0.3 : 0.02;
    const unpinP = pinHeavy ? 0.02 : 0.15;
    const file = rng.pick(KEY_FILES);
    // A hot range and a tail three times the cache, so hits, promotions and the ghost all matter.
    const blk = rng.chance(0.5) ? rng.int(0, Math.ceil(capacity / 2)) : rng.int(0, 3 * capacity);
    const k = `${file}/${blk}`;
    const r = rng.next();
    const pick = rng.next();
    try {
      if (r < pinP) {
        const hot = `${file}/${Math.floor(pick * capacity / 2)}`; // mostly cached, so pins pile up
        const ok = m.pin(hot);
        if (ok) pinned.push(hot);
        log.push(`pin ${hot} ${ok}`);
      } else if (r < pinP + unpinP) {
        if (pinned.length > 0 && pick < 0.9) {
          const j = Math.floor(pick / 0.9 * pinned.length);
          const [u] = pinned.splice(j, 1);
          m.unpin(u);
          log.push(`unpin ${u}`);
        } else {
          m.unpin(k);
          log.push(`unpin ${k}`);
        }
      } else if (r < pinP + unpinP + 0.1) {
        log.push(`contains ${k} ${m.contains(k)}`);
      } else if (r < pinP + unpinP + 0.2) {
        m.insert(k);
        log.push(`insert ${k}`);
      } else {
        const hit = m.lookup(k);
        if (!hit) m.insert(k);
        log.push(`read ${k} ${hit}`);
      }
    } catch (e) {
      log.push(`${k} ${errorCode(e)}`);
    }
  }
  return log;
}

describeEachCore('page cache (%s core)', (impl) => {
  let core: Core | undefined;
  afterEach(() => {
    core?.close();
    core = undefined;
  });
  const cacheOf = (pages: number): PageCacheApi => {
    core = makeCore(impl, pages * PAGE);
    return core.pageCache;
  };

  it('rounds the size down to whole pages, at least MIN_PAGE_CACHE_PAGES', () => {
    expect(cacheOf(0).capacityPages).toBe(MIN_PAGE_CACHE_PAGES);
    core?.close();
    core = makeCore(impl, 100 * PAGE + 4000);
    expect(core.pageCache.capacityPages).toBe(100);
    expect(core.pageCache.stats()).toEqual({ hits: 0, misses: 0, evictions: 0, capacityPages: 100, usedPages: 0, policy: 'clock' });
  });

  it('returns the inserted bytes; contains() has no side effects', () => {
    const c = cacheOf(16);
    c.insert(3, 7, block(3, 7));
    const into = Buffer.alloc(PAGE);
    expect(c.contains(3, 7)).toBe(true);
    expect(c.contains(3, 8)).toBe(false);
    expect(c.stats()).toMatchObject({ hits: 0, misses: 0, usedPages: 1 });
    expect(c.lookup(3, 7, into)).toBe(true);
    expect(into.equals(block(3, 7))).toBe(true);
    expect(c.lookup(3, 8, into)).toBe(false);
    expect(c.stats()).toMatchObject({ hits: 1, misses: 1, evictions: 0, usedPages: 1 });
    // Large u32 file ids must not collide (fileId * 2^32 + blkno is not exact in a double).
    c.insert(0xffff_fff0, 1, block(1, 1));
    c.insert(0xffff_fff1, 1, block(2, 1));
    expect(c.lookup(0xffff_fff0, 1, into) && into.equals(block(1, 1))).toBe(true);
  });

  it('keeps hit/miss/eviction counters exactly as the clock model on a scripted sequence', () => {
    const cap = 16;
    const c = cacheOf(cap);
    const model = new ClockModel(cap);
    const rng = new Rng(1234);
    const into = Buffer.alloc(PAGE);
    for (let i = 0; i < 3000; i++) {
      // Skewed keys: a hot range and a long tail, so usage counts and the hand both matter.
      const blk = rng.chance(0.6) ? rng.int(0, 10) : rng.int(10, 200);
      const hit = c.lookup(1, blk, into);
      expect(hit).toBe(model.lookup(`1/${blk}`));
      if (!hit) {
        c.insert(1, blk, block(1, blk));
        model.insert(`1/${blk}`);
      }
    }
    expect(c.stats()).toEqual({ hits: model.hits, misses: model.misses, evictions: model.evictions, capacityPages: cap, usedPages: cap, policy: 'clock' });
    for (let blk = 0; blk < 200; blk++) expect(c.contains(1, blk)).toBe(model.find(`1/${blk}`) >= 0);
  });

  it('pins exact counters on a short hand-checked script', () => {
    const c = cacheOf(16);
    const into = Buffer.alloc(PAGE);
    for (let b = 0; b < 16; b++) c.insert(1, b, block(1, b)); // fills slots 0..15, usage 1
    c.lookup(1, 0, into); // slot 0 usage 2
    c.lookup(1, 0, into); // usage 3
    c.insert(1, 100, block(1, 100));
    // Sweep: turn 1 decrements all (slot 0 → 2, others → 0); slot 0 again → 1; slot 1 is the victim.
    expect(c.contains(1, 1)).toBe(false);
    expect(c.contains(1, 0)).toBe(true);
    c.insert(1, 101, block(1, 101)); // hand at 2: slot 2 usage 0 → victim
    expect(c.contains(1, 2)).toBe(false);
    expect(c.lookup(1, 1, into)).toBe(false);
    expect(c.stats()).toEqual({ hits: 2, misses: 1, evictions: 2, capacityPages: 16, usedPages: 16, policy: 'clock' });
  });

  it('is scan resistant: a hot set survives a one-pass scan larger than the cache', () => {
    const cap = 64;
    const hot = 8;
    const c = cacheOf(cap);
    const into = Buffer.alloc(PAGE);
    const touch = (file: number, blk: number): void => {
      if (!c.lookup(file, blk, into)) c.insert(file, blk, block(file, blk));
    };
    for (let b = 0; b < cap - hot; b++) touch(2, b); // warm, cold blocks
    for (let round = 0; round < 6; round++) for (let b = 0; b < hot; b++) touch(1, b);
    for (let b = 0; b < 2 * cap; b++) touch(3, b); // the scan: each block once
    let survived = 0;
    for (let b = 0; b < hot; b++) if (c.contains(1, b)) survived++;
    expect(survived).toBeGreaterThanOrEqual(hot - 1);
    expect(c.stats().evictions).toBe(2 * cap);
  });

  it('never evicts pinned slots, even under heavy insert pressure', () => {
    const c = cacheOf(16);
    for (let b = 0; b < 16; b++) c.insert(1, b, block(1, b));
    const pinned = [0, 5, 9, 15];
    for (const b of pinned) expect(c.pin(1, b)).toBe(true);
    expect(c.pin(1, 99)).toBe(false);
    for (let i = 0; i < 5000; i++) c.insert(2, i, block(2, i));
    for (const b of pinned) expect(c.contains(1, b)).toBe(true);
    // Pins nest: two pins need two unpins.
    expect(c.pin(1, 0)).toBe(true);
    c.unpin(1, 0);
    for (let i = 0; i < 100; i++) c.insert(3, i, block(3, i));
    expect(c.contains(1, 0)).toBe(true);
    c.unpin(1, 0);
    for (let i = 0; i < 100; i++) c.insert(4, i, block(4, i));
    expect(c.contains(1, 0)).toBe(false);
    const into = Buffer.alloc(PAGE);
    expect(c.lookup(1, 5, into) && into.equals(block(1, 5))).toBe(true);
  });

  it('throws CACHE_FULL when every slot is pinned, and recovers after an unpin', () => {
    const c = cacheOf(16);
    for (let b = 0; b < 16; b++) {
      c.insert(1, b, block(1, b));
      c.pin(1, b);
    }
    let err: unknown;
    try { c.insert(1, 100, block(1, 100)); } catch (e) { err = e; }
    expect(isStrataError(err, 'CACHE_FULL')).toBe(true);
    // Re-inserting a cached key needs no slot.
    c.insert(1, 3, block(1, 3));
    c.unpin(1, 7);
    c.insert(1, 100, block(1, 100));
    expect(c.contains(1, 7)).toBe(false);
    expect(c.contains(1, 100)).toBe(true);
    expect(c.stats().evictions).toBe(1);
  });

  it('rejects bad arguments', () => {
    const c = cacheOf(16);
    const expectBad = (f: () => void): void => {
      let err: unknown;
      try { f(); } catch (e) { err = e; }
      expect(isStrataError(err, 'BAD_ARGUMENT')).toBe(true);
    };
    expectBad(() => c.insert(1, 1, Buffer.alloc(100)));
    expectBad(() => c.unpin(1, 1)); // not cached
    c.insert(1, 1, block(1, 1));
    expectBad(() => c.unpin(1, 1)); // cached, not pinned
  });
});

describeEachCore('S3-FIFO page cache (%s core)', (impl) => {
  let core: Core | undefined;
  afterEach(() => {
    core?.close();
    core = undefined;
  });
  const cacheOf = (pages: number): PageCacheApi => {
    core = createCore(impl, { pageCacheBytes: pages * PAGE, pageCachePolicy: 's3fifo' });
    return core.pageCache;
  };
  const into = Buffer.alloc(PAGE);
  const touch = (c: PageCacheApi, file: number, blk: number): void => {
    if (!c.lookup(file, blk, into)) c.insert(file, blk, block(file, blk));
  };
  const cachedOf = (c: PageCacheApi, file: number, blks: Iterable<number>): number[] => [...blks].filter((b) => c.contains(file, b));
  const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

  it('reports its policy and sizes itself like the clock', () => {
    expect(cacheOf(0).capacityPages).toBe(MIN_PAGE_CACHE_PAGES);
    core?.close();
    const c = cacheOf(100);
    expect(c.stats()).toEqual({ hits: 0, misses: 0, evictions: 0, capacityPages: 100, usedPages: 0, policy: 's3fifo' });
    c.insert(3, 7, block(3, 7));
    expect(c.lookup(3, 7, into) && into.equals(block(3, 7))).toBe(true);
    expect(c.stats()).toMatchObject({ hits: 1, usedPages: 1 });
  });

  it('evicts one-hit wonders from the small queue before a block that was re-used', () => {
    // 20 slots: S's share 2, M's 18. The fill puts all 20 blocks in S, in order.
    const c = cacheOf(20);
    for (let b = 0; b < 20; b++) c.insert(1, b, block(1, b));
    expect(c.lookup(1, 5, into)).toBe(true); // block 5 is re-used once
    // 19 new blocks: S's head goes each time; blocks 0-4 are evicted, 5 moves to M, 6-19 are evicted.
    for (let b = 100; b < 119; b++) c.insert(1, b, block(1, b));
    expect(cachedOf(c, 1, range(0, 20))).toEqual([5]);
    expect(c.stats()).toMatchObject({ hits: 1, misses: 0, evictions: 19 });
  });

  it('admits a block re-referenced from the ghost into the main queue', () => {
    const c = cacheOf(20);
    for (let b = 0; b < 20; b++) c.insert(1, b, block(1, b));
    // Evicts 0-19 into the ghost, which remembers M's share (18) of keys: 2-19.
    for (let b = 100; b < 120; b++) c.insert(1, b, block(1, b));
    expect(cachedOf(c, 1, range(0, 20))).toEqual([]);
    c.insert(1, 10, block(1, 10)); // in the ghost: goes to M
    c.insert(1, 1, block(1, 1)); // pushed out of the ghost: goes to S
    c.insert(1, 200, block(1, 200)); // never seen: goes to S
    // A stream of new blocks drains S (M is far below its share), so 1 and 200 go and 10 stays
    // although none of them was looked up again.
    for (let b = 300; b < 340; b++) c.insert(1, b, block(1, b));
    expect(cachedOf(c, 1, [1, 10, 200])).toEqual([10]);
    expect(c.stats()).toMatchObject({ hits: 0, misses: 0, evictions: 20 + 3 + 40 });
  });

  it('is scan resistant: a hot set survives a one-pass scan of twice the cache', () => {
    const cap = 64;
    const hot = 8;
    const c = cacheOf(cap);
    for (let b = 0; b < cap - hot; b++) touch(c, 2, b); // cold blocks, used once
    for (let round = 0; round < 3; round++) for (let b = 0; b < hot; b++) touch(c, 1, b);
    for (let b = 0; b < 2 * cap; b++) touch(c, 3, b); // the scan: each block once
    expect(cachedOf(c, 1, range(0, hot))).toEqual(range(0, hot));
    expect(cachedOf(c, 2, range(0, cap - hot))).toEqual([]);
    expect(c.stats()).toMatchObject({ hits: 2 * hot, evictions: 2 * cap });
  });

  it('never evicts pinned slots, in S or in M, even under heavy insert pressure', () => {
    const c = cacheOf(16); // S's share 1, M's 15
    // Blocks used twice in a row: each is promoted to M, so M overflows and evicts on every insert.
    const pressure = (file: number, n: number): void => {
      for (let i = 0; i < n; i++) {
        touch(c, file, i);
        touch(c, file, i);
      }
    };
    for (let b = 0; b < 16; b++) c.insert(1, b, block(1, b));
    const pinned = [0, 5, 9, 15];
    for (const b of pinned) expect(c.pin(1, b)).toBe(true);
    expect(c.pin(1, 99)).toBe(false);
    pressure(2, 3000);
    expect(cachedOf(c, 1, range(0, 16))).toEqual(pinned);
    expect(c.stats().evictions).toBeGreaterThan(2900);
    // Pins nest: two pins need two unpins.
    expect(c.pin(1, 0)).toBe(true);
    c.unpin(1, 0);
    pressure(3, 100);
    expect(c.contains(1, 0)).toBe(true);
    c.unpin(1, 0);
    pressure(4, 100);
    expect(c.contains(1, 0)).toBe(false);
    expect(c.lookup(1, 5, into) && into.equals(block(1, 5))).toBe(true);
  });

  it('throws CACHE_FULL when every slot is pinned, and recovers after an unpin', () => {
    const c = cacheOf(16);
    for (let b = 0; b < 16; b++) {
      c.insert(1, b, block(1, b));
      c.pin(1, b);
    }
    let err: unknown;
    try { c.insert(1, 100, block(1, 100)); } catch (e) { err = e; }
    expect(isStrataError(err, 'CACHE_FULL')).toBe(true);
    c.insert(1, 3, block(1, 3)); // re-inserting a cached key needs no slot
    c.unpin(1, 7);
    c.insert(1, 100, block(1, 100));
    expect(cachedOf(c, 1, range(0, 16))).toEqual(range(0, 16).filter((b) => b !== 7));
    expect(c.contains(1, 100)).toBe(true);
    expect(c.stats().evictions).toBe(1);
    // Every slot pinned again, now spread over S and M.
    c.pin(1, 100);
    err = undefined;
    try { c.insert(1, 101, block(1, 101)); } catch (e) { err = e; }
    expect(isStrataError(err, 'CACHE_FULL')).toBe(true);
    c.unpin(1, 12);
    c.insert(1, 101, block(1, 101));
    expect(c.contains(1, 12)).toBe(false);
    expect(c.stats().evictions).toBe(2);
  });

  it('rejects an unknown policy', () => {
    let err: unknown;
    try { core = createCore(impl, { pageCacheBytes: 16 * PAGE, pageCachePolicy: 'lru' as PageCachePolicy }); } catch (e) { err = e; }
    expect(isStrataError(err, 'BAD_ARGUMENT')).toBe(true);
    expect((err as Error).message).toMatch(/pageCachePolicy/);
  });
});

describeEachCore('adaptive S3-FIFO page cache (%s core)', (impl) => {
  let core: Core | undefined;
  afterEach(() => {
    core?.close();
    core = undefined;
  });
  const cacheOf = (pages: number): PageCacheApi => {
    core = createCore(impl, { pageCacheBytes: pages * PAGE, pageCachePolicy: 'adaptive-s3fifo' });
    return core.pageCache;
  };
  const into = Buffer.alloc(PAGE);

  it('promotes from the small queue only a block hit twice there', () => {
    // 20 slots: S's share starts at 2. The fill puts all 20 blocks in S, in order.
    const c = cacheOf(20);
    expect(c.stats().policy).toBe('adaptive-s3fifo');
    for (let b = 0; b < 20; b++) c.insert(1, b, block(1, b));
    expect(c.lookup(1, 5, into)).toBe(true); // once: not enough
    expect(c.lookup(1, 6, into) && c.lookup(1, 6, into)).toBe(true); // twice: promoted
    for (let b = 100; b < 119; b++) c.insert(1, b, block(1, b));
    expect([5, 6].filter((b) => c.contains(1, b))).toEqual([6]);
  });

  it('readmits a block evicted from the main queue into the main queue, where one-hit blocks cannot reach it', () => {
    const c = cacheOf(16); // S's share starts at 1
    for (let b = 0; b < 16; b++) c.insert(1, b, block(1, b));
    c.lookup(1, 0, into);
    c.lookup(1, 0, into); // block 0: promoted to M when S's head comes round
    // Blocks hit twice each are promoted in turn until M's rotation evicts block 0.
    let b = 100;
    for (; c.contains(1, 0) && b < 1000; b++) {
      c.insert(1, b, block(1, b));
      c.lookup(1, b, into);
      c.lookup(1, b, into);
    }
    expect(c.contains(1, 0)).toBe(false);
    expect(b).toBeGreaterThan(115); // it left through M, after M filled, not through S
    c.insert(1, 0, block(1, 0)); // remembered as evicted from M: queued in M
    // 40 one-hit blocks churn S (S's share is small); a block queued in S would be gone.
    for (let x = 2000; x < 2040; x++) c.insert(1, x, block(1, x));
    expect(c.contains(1, 0)).toBe(true);
    expect([2000, 2001, 2002].some((x) => c.contains(1, x))).toBe(false);
  });
});

describe(`page cache policies: seeded random operations give identical results on every core and the model${NATIVE_SKIP_NOTE}`, () => {
  const models: Record<PageCachePolicy, (capacity: number) => CacheModel> = {
    clock: (capacity) => new ClockModel(capacity),
    s3fifo: (capacity) => new S3FifoModel(capacity),
    'adaptive-s3fifo': (capacity) => new S3FifoModel(capacity, true),
  };
  const OPS = 6000;
  for (const policy of PAGE_CACHE_POLICIES) {
    for (const [capacity, seed] of [[16, 11], [40, 12], [16, 13]]) {
      it(`${policy}, ${capacity} slots, seed ${seed}`, () => {
        const model = models[policy](capacity);
        const want = randomOps(model, seed, capacity, OPS);
        // The sequence exercises what it is meant to.
        expect(want.some((l) => l.endsWith('CACHE_FULL')) || capacity > 16).toBe(true);
        expect(want.filter((l) => l.startsWith('pin') && l.endsWith('true')).length).toBeGreaterThan(50);
        expect(model.evictions).toBeGreaterThan(OPS / 20);
        if (model instanceof S3FifoModel && model.adaptive) expect(model.pMoves).toBeGreaterThan(50);
        for (const impl of IMPLEMENTATIONS) {
          const core = createCore(impl, { pageCacheBytes: capacity * PAGE, pageCachePolicy: policy });
          try {
            const c = adapt(core.pageCache);
            const got = randomOps(c, seed, capacity, OPS);
            const first = got.findIndex((l, i) => l !== want[i]);
            expect(first, `${impl}: first difference at op ${first}: ${got[first]} vs model ${want[first]}`).toBe(-1);
            expect(c.badBytes).toBe(0);
            expect(core.pageCache.stats()).toEqual({
              hits: model.hits, misses: model.misses, evictions: model.evictions, capacityPages: capacity, usedPages: capacity, policy,
            });
            for (const file of KEY_FILES) {
              for (let b = 0; b < 3 * capacity; b++) expect(c.contains(`${file}/${b}`), `${impl} ${file}/${b}`).toBe(model.contains(`${file}/${b}`));
            }
          } finally {
            core.close();
          }
        }
      });
    }
  }
});

describe('page cache policies: the caches replay the W6 simulators hit for hit', () => {
  /** Zipf over `objects` ids with one-time sequential scans of fresh ids mixed in. */
  function trace(seed: number, objects: number, requests: number, alpha: number, scanLen: number): { trace: Int32Array; universe: number } {
    const rng = new Rng(seed);
    const draw = zipfSampler(rng, objects, alpha);
    const out = new Int32Array(requests);
    let next = objects;
    let i = 0;
    while (i < requests) {
      if (scanLen > 0 && rng.chance(0.3 / scanLen)) {
        for (let j = 0; j < scanLen && i < requests; j++) out[i++] = next++;
      } else {
        out[i++] = draw();
      }
    }
    return { trace: out, universe: next };
  }
  const traces = [trace(21, 3000, 40_000, 0.8, 0), trace(22, 3000, 40_000, 1.0, 150)];
  const block0 = Buffer.alloc(PAGE);
  const into = Buffer.alloc(PAGE);
  const replay = (c: PageCacheApi, t: Int32Array): number => {
    let hits = 0;
    for (let i = 0; i < t.length; i++) {
      if (c.lookup(7, t[i], into)) hits++;
      else c.insert(7, t[i], block0);
    }
    return hits;
  };
  const simulatorOf: Record<PageCachePolicy, string> = { clock: 'clock', s3fifo: 's3fifo', 'adaptive-s3fifo': 'adaptiveS3fifo' };
  for (const policy of PAGE_CACHE_POLICIES) {
    for (const impl of ALL_IMPLEMENTATIONS) {
      it.skipIf(impl === 'native' && SKIP_NATIVE)(`${policy} on the ${impl} core${skipNoteFor(impl)}`, () => {
        for (const t of traces) {
          for (const capacity of [16, 17, 90, 600]) {
            const core = createCore(impl, { pageCacheBytes: capacity * PAGE, pageCachePolicy: policy });
            try {
              const hits = replay(core.pageCache, t.trace);
              expect(hits, `${capacity} slots`).toBe(POLICIES[simulatorOf[policy]](t.trace, capacity, t.universe));
              expect(core.pageCache.stats()).toMatchObject({ hits, misses: t.trace.length - hits, evictions: t.trace.length - hits - capacity });
            } finally {
              core.close();
            }
          }
        }
      });
    }
  }
  it('the policies differ on these traces (so the replays tell them apart)', () => {
    const t = traces[1];
    const hits = (policy: PageCachePolicy): number => replay(new PageCache(90 * PAGE, policy), t.trace);
    const all = PAGE_CACHE_POLICIES.map(hits);
    expect(new Set(all).size).toBe(PAGE_CACHE_POLICIES.length);
  });
});

describe('Repository option pageCachePolicy', () => {
  const KEY: PageKey = { spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0, blockNum: 0 };
  const PAGES = 300;
  const pageOf = (blockNum: number, version: number): Buffer => {
    const p = Buffer.alloc(PAGE_SIZE, (blockNum * 31 + version) & 0xff);
    p.writeUInt32LE(blockNum, 0);
    p.writeUInt32LE(version, 4);
    return p;
  };
  let dir: string | undefined;
  afterEach(() => {
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  /** What a policy decides: the counters of a cache's stats, without its name. */
  const counters = (s: PageCacheStats): Omit<PageCacheStats, 'policy'> => {
    const { policy: _named, ...rest } = s;
    return rest;
  };

  /** Writes PAGES pages in two versions over several layers, then reads them through a 16-slot cache. */
  async function readBack(impl: ImplementationName, policy: PageCachePolicy): Promise<PageCacheStats> {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `strata-policy-${impl}-`));
    const repo = await Repository.open(dir, {
      implementation: impl, pageCacheBytes: MIN_PAGE_CACHE_PAGES * PAGE, pageCachePolicy: policy, checkpointDistance: 256 * 1024, compression: 'none',
    });
    try {
      const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
      let lsn = 0x10n;
      for (const version of [1, 2]) {
        const recs: WalRecord[] = [];
        for (let b = 0; b < PAGES; b++) recs.push({ lsn: lsn++, key: { ...KEY, blockNum: b }, kind: 'image', page: pageOf(b, version) });
        tl.ingest(recs);
      }
      await tl.flush();
      expect(tl.layers().length).toBeGreaterThan(1);
      const midLsn = 0x10n + BigInt(PAGES); // after version 1, before any of version 2
      const rng = new Rng(5);
      for (let i = 0; i < 1500; i++) {
        // Skewed towards low block numbers so the policy has something to keep.
        const b = rng.chance(0.7) ? rng.int(0, 20) : rng.int(0, PAGES);
        const old = rng.chance(0.3);
        const got = await tl.getPage({ ...KEY, blockNum: b }, old ? midLsn - 1n : lsn - 1n);
        expect(got.equals(pageOf(b, old ? 1 : 2)), `block ${b}`).toBe(true);
      }
      const stats = repo.stats().pageCache;
      expect(stats.policy).toBe(policy);
      expect(stats.evictions).toBeGreaterThan(0);
      return stats;
    } finally {
      await repo.close();
    }
  }

  for (const policy of ['s3fifo', 'adaptive-s3fifo'] as const) {
    it(`reads pages correctly with ${policy} on every core, with identical cache counters${NATIVE_SKIP_NOTE}`, async () => {
      const stats = [];
      for (const impl of IMPLEMENTATIONS) stats.push(await readBack(impl, policy));
      for (const s of stats) expect(s).toEqual(stats[0]);
      // The option reaches the cache: the clock counts differently on the same reads. Compare the
      // counters only: the stats also name the policy, so whole objects would differ regardless.
      const clock = await readBack(IMPLEMENTATIONS[0], 'clock');
      expect(clock.policy).toBe('clock');
      expect(counters(clock)).not.toEqual(counters(stats[0]));
    });
  }

  it(`defaults to the clock and rejects anything else with BAD_ARGUMENT naming the option${NATIVE_SKIP_NOTE}`, async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-policy-'));
    for (const impl of IMPLEMENTATIONS) {
      const repo = await Repository.open(dir, { implementation: impl });
      expect(repo.stats().pageCache.policy).toBe(process.env.STRATA_PAGE_CACHE_POLICY || 'clock');
      await repo.close();
      for (const bad of ['lru', 'S3FIFO', '', 3]) {
        await expect(Repository.open(dir, { implementation: impl, pageCachePolicy: bad as PageCachePolicy }))
          .rejects.toMatchObject({ code: 'BAD_ARGUMENT', message: expect.stringContaining('pageCachePolicy') });
      }
    }
  });

  it('takes its default from STRATA_PAGE_CACHE_POLICY, and refuses a bad value naming the variable', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-policy-env-'));
    const saved = process.env.STRATA_PAGE_CACHE_POLICY;
    try {
      process.env.STRATA_PAGE_CACHE_POLICY = 'adaptive-s3fifo';
      const repo = await Repository.open(dir, { implementation: 'ts' });
      expect(repo.stats().pageCache.policy).toBe('adaptive-s3fifo');
      await repo.close();
      const named = await Repository.open(dir, { implementation: 'ts', pageCachePolicy: 'clock' });
      expect(named.stats().pageCache.policy).toBe('clock'); // the option wins over the variable
      await named.close();
      process.env.STRATA_PAGE_CACHE_POLICY = 'lru';
      await expect(Repository.open(dir, { implementation: 'ts' })).rejects.toMatchObject({ code: 'BAD_ARGUMENT', message: expect.stringContaining('STRATA_PAGE_CACHE_POLICY') });
    } finally {
      if (saved === undefined) delete process.env.STRATA_PAGE_CACHE_POLICY;
      else process.env.STRATA_PAGE_CACHE_POLICY = saved;
    }
  });
});
