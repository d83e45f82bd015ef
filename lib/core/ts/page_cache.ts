/**
 * Page cache over immutable 8 KB layer-file blocks (reference §1, Neon's page_cache.rs).
 * One contiguous pool cut into fixed slots; a key is (fileId, blkno) where fileId is a layer handle.
 * Two eviction policies; each is pinned down exactly (the C++ twin in native/page_cache.cc must
 * make the same choices so hit/miss/eviction counters agree between cores). Under both, an insert
 * of a new key first takes never-used slots in index order, slots are never freed (handles are never
 * reused, so blocks of closed files just age out), and a pinned slot is never evicted.
 *
 * 'clock' (default), PostgreSQL's usage-count clock:
 *   - a hit bumps the slot's usage count, saturating at MAX_USAGE_COUNT; a fill sets it to 1;
 *   - to evict, the hand sweeps for at most SWEEP_LIMIT_FACTOR × capacity steps: pinned slots are
 *     skipped untouched, a slot with usage 0 is the victim, any other slot loses one usage point.
 *
 * 's3fifo', S3-FIFO (Yang et al., SOSP '23), exactly bench/lib/policies.js's s3fifo simulator when
 * nothing is pinned:
 *   - S's share is ⌊capacity / 10⌋ slots (at least 1), M's share the rest; a ghost G remembers the
 *     keys of the last (M's share) evictions from S, a newer one pushing out the oldest;
 *   - a hit raises the slot's frequency, saturating at MAX_S3FIFO_FREQUENCY; a fill sets it to 0
 *     and queues the slot at M's tail if its key is in G (G forgets it), else at S's tail — after
 *     the eviction that made room, which may itself push the key out of G;
 *   - to evict: while no slot is freed, if |S| ≥ S's share or M is empty take S's head, else M's:
 *       S's head with frequency > 0 moves to M's tail keeping its frequency (and if M now holds more
 *       than its share, M evicts at once); with frequency 0 it is the victim and its key enters G;
 *       M's head with frequency > 0 loses one point and goes back to M's tail; at 0 it is the victim;
 *   - pins, which the simulator has no notion of: a pinned slot counts as accessed. At S's head it
 *     moves to M whatever its frequency; at M's head it goes back to M's tail with its frequency
 *     untouched. M finding only pinned slots (a run of |M| pinned heads) frees nothing: after a
 *     promotion the loop just goes on; on M's own turn S's head is taken instead, or, with S empty,
 *     every slot is pinned: CACHE_FULL. (The loop ends: every turn that frees nothing pops S.)
 *
 * 'adaptive-s3fifo', S3-FIFO with ARC's adaptation (bench/lib/policies.js's adaptiveS3fifo exactly
 * when nothing is pinned). As 's3fifo', except:
 *   - S's share is ⌊p⌋ slots, M's the rest; p starts at S3-FIFO's share and stays in
 *     [1, capacity − 1];
 *   - two ghosts of `capacity` keys each: GS remembers keys evicted from S (as G does), GM keys
 *     evicted from M. A fill whose key is in GS grows p by max(1, |GM| / (|GS| + 1)), one in GM
 *     shrinks it by max(1, |GS| / (|GM| + 1)), both counted after the key left its ghost; either
 *     way the slot goes to M's tail;
 *   - S's head moves to M only with frequency ≥ ADAPTIVE_PROMOTE_FREQUENCY (or pinned); M evicts
 *     at once when it then holds more than its share.
 * A ghost hit says the cache would have kept that key had the queue it left been larger, which is
 * ARC's signal; lazy promotion keeps a hit as cheap as S3-FIFO's (no list relinking).
 */
import type { PageCacheApi, PageCachePolicy, PageCacheStats } from '../core';
import { MIN_PAGE_CACHE_PAGES, PAGE_CACHE_POLICIES } from '../core';
import { StrataError } from '../../errors';
import { BLOCK_SIZE } from '../format';

/** Usage count cap: a block touched many times during one reconstruction cannot become immortal. */
export const MAX_USAGE_COUNT = 5;
/** The sweep gives up after this many full turns of the hand (Neon uses the same bound). */
export const SWEEP_LIMIT_FACTOR = 10;
/** S3-FIFO: S gets capacity / SMALL_QUEUE_DIVISOR slots; frequencies are two bits. */
export const SMALL_QUEUE_DIVISOR = 10;
export const MAX_S3FIFO_FREQUENCY = 3;
/** Adaptive S3-FIFO: hits while in S needed to move to M (one hit is often a correlated re-read). */
export const ADAPTIVE_PROMOTE_FREQUENCY = 2;

const U32_MAX = 0xffff_ffff;

export class PageCache implements PageCacheApi {
  readonly capacityPages: number;
  readonly policy: PageCachePolicy;
  /** All slot buffers, slot i at [i × BLOCK_SIZE, (i+1) × BLOCK_SIZE). */
  private readonly pool: Buffer;
  /** One view per slot, made once: copying through them avoids creating a view per lookup. */
  private readonly slotViews: Uint8Array[];
  private readonly slotFile: Uint32Array;
  private readonly slotBlk: Uint32Array;
  /** Clock: usage count; S3-FIFO: frequency. */
  private readonly usage: Uint8Array;
  private readonly maxUsage: number;
  private readonly pins: Uint32Array;
  /** Queues and ghosts when the policy is S3-FIFO (either variant). */
  private readonly s3fifo: S3Fifo | null;
  /** fileId → (blkno → slot). Nested because fileId × 2^32 + blkno is not exact in a double for large ids. */
  private readonly mapping = new Map<number, Map<number, number>>();
  /** Slots [0, usedSlots) hold a block; the rest were never used. */
  private usedSlots = 0;
  private hand = 0;
  private hits = 0;
  private misses = 0;
  private evictions = 0;

  constructor(pageCacheBytes: number, policy: PageCachePolicy = 'clock') {
    if (!Number.isFinite(pageCacheBytes) || pageCacheBytes < 0) {
      throw new StrataError('BAD_ARGUMENT', `pageCacheBytes must be a non-negative number: got ${String(pageCacheBytes)}`);
    }
    if (!PAGE_CACHE_POLICIES.includes(policy)) {
      throw new StrataError('BAD_ARGUMENT', `pageCachePolicy must be one of ${PAGE_CACHE_POLICIES.join(', ')}: got ${String(policy)}`);
    }
    this.policy = policy;
    this.capacityPages = Math.max(MIN_PAGE_CACHE_PAGES, Math.floor(pageCacheBytes / BLOCK_SIZE));
    this.pool = Buffer.alloc(this.capacityPages * BLOCK_SIZE);
    this.slotViews = Array.from({ length: this.capacityPages }, (_, i) => this.pool.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE));
    this.slotFile = new Uint32Array(this.capacityPages);
    this.slotBlk = new Uint32Array(this.capacityPages);
    this.usage = new Uint8Array(this.capacityPages);
    this.pins = new Uint32Array(this.capacityPages);
    this.maxUsage = policy === 'clock' ? MAX_USAGE_COUNT : MAX_S3FIFO_FREQUENCY;
    this.s3fifo = policy === 'clock' ? null : new S3Fifo(this.capacityPages, policy === 'adaptive-s3fifo', this.usage, this.pins, this.slotFile, this.slotBlk);
  }

  stats(): PageCacheStats {
    return {
      hits: this.hits,
      misses: this.misses,
      evictions: this.evictions,
      capacityPages: this.capacityPages,
      usedPages: this.usedSlots,
      policy: this.policy,
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
    if (this.usage[slot] < this.maxUsage) this.usage[slot]++;
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
      // Blocks are immutable, so this only happens through the test API; keep usage and queue.
      this.slotViews[slot].set(data.length === BLOCK_SIZE ? data : data.subarray(0, BLOCK_SIZE));
      return;
    }
    if (this.usedSlots < this.capacityPages) {
      slot = this.usedSlots++;
    } else {
      slot = this.s3fifo === null ? this.findVictim() : this.s3fifo.victim();
      if (slot < 0) {
        throw new StrataError('CACHE_FULL', `no evictable page-cache slot for block ${blkno} of file ${fileId}: all ${this.capacityPages} slots are pinned`);
      }
      this.evictions++;
      this.unmap(this.slotFile[slot], this.slotBlk[slot]);
    }
    this.slotFile[slot] = fileId;
    this.slotBlk[slot] = blkno;
    if (this.s3fifo === null) {
      this.usage[slot] = 1;
    } else {
      this.usage[slot] = 0;
      this.s3fifo.admit(slot, fileId, blkno);
    }
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

  /** Clock sweep; returns the victim slot (hand left just past it), or -1 if every slot is pinned. */
  private findVictim(): number {
    const cap = this.capacityPages;
    const limit = SWEEP_LIMIT_FACTOR * cap;
    for (let step = 0; step < limit; step++) {
      const slot = this.hand;
      this.hand = slot + 1 === cap ? 0 : slot + 1;
      if (this.pins[slot] !== 0) continue;
      if (this.usage[slot] === 0) return slot;
      this.usage[slot]--;
    }
    return -1;
  }
}

/** A FIFO of slot indices threaded through S3Fifo.next: pop at head, push at tail. */
class SlotQueue {
  head = 0;
  tail = 0;
  len = 0;
}

/**
 * Keys recently evicted from one queue: the last `size` added, oldest forgotten first. A key added
 * with stamp t lives in ring cell t mod size until stamp t + size overwrites it; `live` counts the
 * keys still remembered (adaptive S3-FIFO's sizes).
 */
class Ghost {
  private readonly ringFile: Uint32Array;
  private readonly ringBlk: Uint32Array;
  /** fileId → (blkno → stamp) for the keys still remembered. */
  private readonly keys = new Map<number, Map<number, number>>();
  private stamp = 0;
  live = 0;

  constructor(size: number) {
    this.ringFile = new Uint32Array(size);
    this.ringBlk = new Uint32Array(size);
  }

  add(fileId: number, blkno: number): void {
    const stamp = ++this.stamp;
    const size = this.ringFile.length;
    const cell = stamp % size;
    // Forget the key added `size` additions ago, unless it was taken or added again since.
    if (stamp > size && this.stampOf(this.ringFile[cell], this.ringBlk[cell]) === stamp - size) {
      this.forget(this.ringFile[cell], this.ringBlk[cell]);
    }
    this.ringFile[cell] = fileId;
    this.ringBlk[cell] = blkno;
    let blocks = this.keys.get(fileId);
    if (blocks === undefined) {
      blocks = new Map<number, number>();
      this.keys.set(fileId, blocks);
    }
    if (!blocks.has(blkno)) this.live++;
    blocks.set(blkno, stamp);
  }

  /** Forgets the key; whether it was remembered. */
  take(fileId: number, blkno: number): boolean {
    if (this.stampOf(fileId, blkno) === undefined) return false;
    this.forget(fileId, blkno);
    return true;
  }

  private stampOf(fileId: number, blkno: number): number | undefined {
    return this.keys.get(fileId)?.get(blkno);
  }

  private forget(fileId: number, blkno: number): void {
    const blocks = this.keys.get(fileId) as Map<number, number>;
    blocks.delete(blkno);
    if (blocks.size === 0) this.keys.delete(fileId);
    this.live--;
  }
}

/**
 * S3-FIFO's queues and ghosts over the cache's slot arrays (shared, not copied); the rules of both
 * variants are in the file comment. Nothing here allocates per access except the ghosts' inner
 * maps for new file ids.
 */
class S3Fifo {
  private readonly capacity: number;
  /** S's share: fixed for 's3fifo', adapted (⌊target⌋) for 'adaptive-s3fifo'. */
  private target: number;
  private readonly promoteAt: number;
  /** Successor of each slot in its queue (a slot is in at most one queue). */
  private readonly next: Uint32Array;
  private readonly small = new SlotQueue();
  private readonly main = new SlotQueue();
  /** Keys evicted from S (S3-FIFO's G). */
  private readonly smallGhost: Ghost;
  /** Keys evicted from M: adaptive only. */
  private readonly mainGhost: Ghost | null;

  constructor(
    capacity: number,
    adaptive: boolean,
    private readonly freq: Uint8Array,
    private readonly pins: Uint32Array,
    private readonly slotFile: Uint32Array,
    private readonly slotBlk: Uint32Array,
  ) {
    this.capacity = capacity;
    this.target = Math.max(1, Math.floor(capacity / SMALL_QUEUE_DIVISOR));
    this.promoteAt = adaptive ? ADAPTIVE_PROMOTE_FREQUENCY : 1;
    this.next = new Uint32Array(capacity);
    // capacity ≥ MIN_PAGE_CACHE_PAGES, so M's share is ≥ 1.
    this.smallGhost = new Ghost(adaptive ? capacity : capacity - this.target);
    this.mainGhost = adaptive ? new Ghost(capacity) : null;
  }

  /** Queues a freshly filled slot (called after the eviction that freed it). */
  admit(slot: number, fileId: number, blkno: number): void {
    if (this.smallGhost.take(fileId, blkno)) {
      if (this.mainGhost !== null) this.grow(this.mainGhost.live / (this.smallGhost.live + 1));
      this.push(this.main, slot);
    } else if (this.mainGhost !== null && this.mainGhost.take(fileId, blkno)) {
      this.shrink(this.smallGhost.live / (this.mainGhost.live + 1));
      this.push(this.main, slot);
    } else {
      this.push(this.small, slot);
    }
  }

  /** The slot to evict (still mapped; the caller unmaps it), or -1 if every slot is pinned. */
  victim(): number {
    for (;;) {
      let slot: number;
      if (this.small.len >= this.smallShare() || this.main.len === 0) {
        slot = this.evictSmall();
      } else {
        slot = this.evictMain();
        if (slot < 0) {
          if (this.small.len === 0) return -1;
          slot = this.evictSmall(); // every slot in M is pinned: S gives one up instead
        }
      }
      if (slot >= 0) return slot;
    }
  }

  private smallShare(): number {
    return Math.floor(this.target);
  }

  private grow(ratio: number): void {
    this.target = Math.min(this.capacity - 1, this.target + Math.max(1, ratio));
  }

  private shrink(ratio: number): void {
    this.target = Math.max(1, this.target - Math.max(1, ratio));
  }

  /** Pops S's head: the victim, or -1 when it moved to M (unless M then overflowed and evicted). */
  private evictSmall(): number {
    const slot = this.pop(this.small);
    if (this.pins[slot] !== 0 || this.freq[slot] >= this.promoteAt) {
      // Accessed while in S (a pin counts as an access): promoted with its frequency kept.
      this.push(this.main, slot);
      return this.main.len > this.capacity - this.smallShare() ? this.evictMain() : -1;
    }
    this.smallGhost.add(this.slotFile[slot], this.slotBlk[slot]);
    return slot;
  }

  /** Rotates M to an unpinned slot at frequency 0; -1 if every slot in M is pinned. */
  private evictMain(): number {
    let pinnedRun = 0; // consecutive pinned heads; reaching |M| means all are pinned
    for (;;) {
      const slot = this.pop(this.main);
      if (this.pins[slot] !== 0) {
        this.push(this.main, slot); // in use: back to the tail, frequency untouched
        if (++pinnedRun >= this.main.len) return -1;
        continue;
      }
      pinnedRun = 0;
      if (this.freq[slot] === 0) {
        this.mainGhost?.add(this.slotFile[slot], this.slotBlk[slot]);
        return slot;
      }
      this.freq[slot]--;
      this.push(this.main, slot);
    }
  }

  private push(q: SlotQueue, slot: number): void {
    if (q.len === 0) q.head = slot;
    else this.next[q.tail] = slot;
    q.tail = slot;
    q.len++;
  }

  /** Callers check q.len > 0. */
  private pop(q: SlotQueue): number {
    const slot = q.head;
    q.head = this.next[slot];
    q.len--;
    return slot;
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
