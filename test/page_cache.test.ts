import { afterEach, describe, expect, it } from 'vitest';
import type { Core, PageCacheApi } from '../lib/core';
import { MIN_PAGE_CACHE_PAGES } from '../lib/core';
import { isStrataError } from '../lib/errors';
import { IMPLEMENTATIONS, makeCore } from './helpers/cores';
import { Rng } from './helpers/random';

const PAGE = 8192;

function block(fileId: number, blkno: number): Buffer {
  const b = Buffer.alloc(PAGE);
  b.writeUInt32BE(fileId, 0);
  b.writeUInt32BE(blkno, 4);
  b.fill((fileId * 7 + blkno) & 0xff, 8);
  return b;
}

/**
 * The policy both cores must follow, as plain code: never-used slots in index order, then a clock
 * sweep (pinned skipped, usage 0 = victim, else usage--), usage cap 5, sweep limit 10 × capacity.
 */
class ClockModel {
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
}

describe.each(IMPLEMENTATIONS)('page cache (%s core)', (impl) => {
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
    expect(core.pageCache.stats()).toEqual({ hits: 0, misses: 0, evictions: 0, capacityPages: 100, usedPages: 0 });
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
    expect(c.stats()).toEqual({ hits: model.hits, misses: model.misses, evictions: model.evictions, capacityPages: cap, usedPages: cap });
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
    expect(c.stats()).toEqual({ hits: 2, misses: 1, evictions: 2, capacityPages: 16, usedPages: 16 });
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
