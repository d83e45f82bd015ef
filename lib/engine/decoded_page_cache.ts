/**
 * The decoded-page cache (docs/ARCHITECTURE.md, "Decoded-page cache"): whole reconstructed pages,
 * each with the LSN range it is the answer for, so a hot GetPage is a hash lookup and one copy
 * instead of a B-tree descent, a decompression and a redo.
 *
 * One cache per repository, bounded in pages (8 KB each); each timeline has its own index into it
 * (keys differ by timeline: a branch sees its ancestor only below the branch point).
 *
 * Exactness. An entry is made only by a read at the timeline's lastRecordLsn R: no record above R
 * exists yet, so the page is the answer for every LSN from R up — until a record for the key
 * arrives at L, which closes the entry at L − 1 (Timeline.apply calls invalidate before the record
 * is stored). Compaction, image creation, GC, eviction and downloads never change what a key
 * reads at an LSN, so they leave entries alone; reads below the GC cutoff are refused before the
 * cache is asked. The one other way pages change, a snapshot load, clears the timeline's index.
 *
 * Admission: a page is cached on its key's second miss (a doorkeeper of fingerprints, as TinyLFU's),
 * so one-off reads pay no copy into the cache. Eviction is a clock with one referenced bit (second
 * chance): a hit sets it, the hand clears it.
 * Entries live in flat typed arrays and one slab, so a lookup allocates nothing.
 */
import { KEY_SIZE, type PageKey } from '../key';
import type { Lsn } from '../lsn';
import { PAGE_SIZE } from '../record';

/** 2^32, for splitting a u64 LSN into two u32 halves (typed-array columns hold no bigint cheaply). */
const U32_SPAN = 4294967296;
const U32_MASK = 0xffff_ffff;
/** Bits of the key-identity hash kept above the block number, so hash × 2^32 + block stays below 2^53. */
const HASH_BITS = 21;
const HASH_MASK = (1 << HASH_BITS) - 1;
/** A slot no index refers to. */
const NO_SLOT = -1;
/**
 * Each slot's fields, packed in one Uint32Array with a 16-word (64-byte) stride so a lookup reads
 * one cache line rather than one per column: the key's words, then the LSN range it answers.
 */
const META_WORDS = 16;
const M_KIND_FORK = 0;
const M_W1 = 1;
const M_W2 = 2;
const M_W3 = 3;
const M_BLOCK = 4;
const M_FROM_HI = 5;
const M_FROM_LO = 6;
/** to = 2^64 − 1 (both halves 0xffffffff): no newer record yet. */
const M_TO_HI = 7;
const M_TO_LO = 8;
const M_REFERENCED = 9;
/**
 * Doorkeeper slots per cache page (TinyLFU's doorkeeper): a page is cached on its key's second
 * miss, not its first, so reads that never repeat do not pay the copy into the cache nor push out
 * pages that do repeat. Measured on uniform reads over 8× the cache: admitting every miss made each
 * read ≈ 65 % slower than with the cache off.
 */
const DOORKEEPER_SLOTS_PER_PAGE = 2;

export interface DecodedPageCacheStats {
  capacityPages: number;
  usedPages: number;
  hits: number;
  misses: number;
  insertions: number;
  evictions: number;
  /** Entries closed by a newer record of their key. */
  invalidations: number;
  /** Pages not cached because their key missed for the first time lately (the doorkeeper). */
  deferred: number;
}

/** A read's LSN as two u32 halves, computed once per batch. */
export interface SplitLsn {
  hi: number;
  lo: number;
}

export function splitLsn(lsn: Lsn, into: SplitLsn = { hi: 0, lo: 0 }): SplitLsn {
  const n = Number(lsn);
  if (Number.isSafeInteger(n)) {
    into.hi = Math.floor(n / U32_SPAN);
    into.lo = n % U32_SPAN;
  } else {
    into.hi = Number(lsn >> 32n);
    into.lo = Number(lsn & 0xffff_ffffn);
  }
  return into;
}

function asNumber(v: unknown): number {
  return typeof v === 'number' ? v : Number.NaN;
}

/** The 18-byte key as kind ‖ fork and four u32 words, the layout every key kind shares (docs/FORMAT.md, "Keys"). */
class KeyWords {
  kindFork = 0;
  w1 = 0;
  w2 = 0;
  w3 = 0;
  block = 0;

  /** Fields that are not numbers (bad input the read path then refuses) become NaN: they never match. */
  fromPageKey(k: PageKey): this {
    this.kindFork = asNumber(k.forkNum); // kind 0: relation page
    this.w1 = asNumber(k.spcOid);
    this.w2 = asNumber(k.dbOid);
    this.w3 = asNumber(k.relNumber);
    this.block = asNumber(k.blockNum);
    return this;
  }

  /** A buffer too short to hold a key (bad input the read path then refuses) never matches. */
  fromBytes(b: Buffer, offset: number): this {
    if (b.length < offset + KEY_SIZE) {
      this.kindFork = this.w1 = this.w2 = this.w3 = this.block = Number.NaN;
      return this;
    }
    this.kindFork = (b[offset] << 8) | b[offset + 13];
    this.w1 = b.readUInt32BE(offset + 1);
    this.w2 = b.readUInt32BE(offset + 5);
    this.w3 = b.readUInt32BE(offset + 9);
    this.block = b.readUInt32BE(offset + 14);
    return this;
  }

  /**
   * A Map key: a 21-bit hash of the relation's identity above the 32-bit block number, exact in a
   * double. Different keys may share it (the fields are compared on every hit), but neighbouring
   * blocks of one relation never do. A field that is not a u32 never equals its stored column, so
   * such a key never hits.
   */
  hash(): number {
    return (this.relationHash() & HASH_MASK) * U32_SPAN + this.block;
  }

  /** A nonzero 32-bit fingerprint of the whole key, for the doorkeeper. */
  fingerprint(): number {
    let h = Math.imul(this.relationHash() ^ Math.imul(this.block, 0x9e3779b1), 0x85ebca6b);
    h ^= h >>> 13;
    return (h | 1) >>> 0;
  }

  private relationHash(): number {
    let h = Math.imul(this.w1 ^ 0x9e3779b9, 0x85ebca6b) ^ this.w2;
    h = Math.imul(h ^ (h >>> 15), 0xc2b2ae35) ^ this.w3;
    h = Math.imul(h ^ (h >>> 13), 0x27d4eb2f) ^ this.kindFork;
    return h ^ (h >>> 16);
  }
}

/** One timeline's entries: key hash → slot of the shared cache. */
export class DecodedPageIndex {
  /** @internal */
  readonly slots = new Map<number, number>();

  constructor(private readonly cache: DecodedPageCache) {}

  get size(): number {
    return this.slots.size;
  }

  /** Slot of the entry for `key` valid at `lsn`, or -1. Sets its referenced bit. */
  lookup(key: PageKey | Buffer, lsn: SplitLsn): number {
    return this.cache.lookup(this, key, lsn);
  }

  /** Copy a cached page out. */
  copyOut(slot: number, into: Uint8Array, offset: number): void {
    this.cache.copyOut(slot, into, offset);
  }

  /**
   * Cache the page `key` reads as at `lsn` (the timeline's lastRecordLsn), valid until a newer record
   * closes it — on the key's second miss (the doorkeeper), or at once when it has an entry to replace.
   */
  insert(key: PageKey | Buffer, lsn: SplitLsn, page: Uint8Array, pageOffset: number): void {
    this.cache.insert(this, key, lsn, page, pageOffset);
  }

  /** A record for the key (18 bytes at `offset`) at `lsn` is about to be stored: its entry now ends at lsn − 1. */
  invalidate(keys: Buffer, offset: number, lsn: Lsn): void {
    if (this.slots.size > 0) this.cache.invalidate(this, keys, offset, lsn);
  }

  /** Forget every entry (a snapshot load rewrote the timeline; the timeline closed). */
  clear(): void {
    this.cache.clearIndex(this);
  }
}

export class DecodedPageCache {
  readonly capacityPages: number;
  private readonly slab: Buffer;
  /** A view of each slot's page in the slab, made when the slot is first used (copies allocate none). */
  private readonly pages: Uint8Array[] = [];
  private readonly owner: Array<DecodedPageIndex | null>;
  private readonly hashes: Float64Array;
  private readonly meta: Uint32Array;
  /** Fingerprints of keys that missed once lately, by fingerprint & doorMask. */
  private readonly door: Uint32Array;
  private readonly doorMask: number;
  private readonly free: number[] = [];
  private nextUnused = 0;
  private hand = 0;
  private readonly words = new KeyWords();
  private readonly counters = { hits: 0, misses: 0, insertions: 0, evictions: 0, invalidations: 0, deferred: 0 };

  constructor(capacityBytes: number) {
    const n = Math.floor(capacityBytes / PAGE_SIZE);
    this.capacityPages = n;
    // Not touched until used: the OS backs only the pages entries are written to.
    this.slab = Buffer.allocUnsafeSlow(n * PAGE_SIZE);
    this.owner = new Array<DecodedPageIndex | null>(n).fill(null);
    this.hashes = new Float64Array(n);
    this.meta = new Uint32Array(n * META_WORDS);
    const doorSlots = 2 ** Math.ceil(Math.log2(Math.max(1, n * DOORKEEPER_SLOTS_PER_PAGE)));
    this.door = new Uint32Array(doorSlots);
    this.doorMask = doorSlots - 1;
  }

  createIndex(): DecodedPageIndex {
    return new DecodedPageIndex(this);
  }

  stats(): DecodedPageCacheStats {
    return { capacityPages: this.capacityPages, usedPages: this.nextUnused - this.free.length, ...this.counters };
  }

  /** @internal */
  lookup(index: DecodedPageIndex, key: PageKey | Buffer, lsn: SplitLsn): number {
    const k = Buffer.isBuffer(key) ? this.words.fromBytes(key, 0) : this.words.fromPageKey(key);
    const slot = index.slots.get(k.hash());
    if (slot === undefined || !this.matches(slot, k) || !this.covers(slot, lsn)) {
      this.counters.misses++;
      return NO_SLOT;
    }
    this.meta[slot * META_WORDS + M_REFERENCED] = 1;
    this.counters.hits++;
    return slot;
  }

  /** @internal */
  copyOut(slot: number, into: Uint8Array, offset: number): void {
    into.set(this.pages[slot], offset);
  }

  /** @internal */
  insert(index: DecodedPageIndex, key: PageKey | Buffer, lsn: SplitLsn, page: Uint8Array, pageOffset: number): void {
    if (this.capacityPages === 0) return;
    const k = Buffer.isBuffer(key) ? this.words.fromBytes(key, 0) : this.words.fromPageKey(key);
    const h = k.hash();
    // A key already held (or another key sharing its hash) is replaced in place.
    let slot = index.slots.get(h) ?? NO_SLOT;
    if (slot === NO_SLOT) {
      if (!this.admit(k)) return;
      slot = this.takeSlot();
      index.slots.set(h, slot);
      this.owner[slot] = index;
      this.hashes[slot] = h;
      this.pages[slot] ??= this.slab.subarray(slot * PAGE_SIZE, (slot + 1) * PAGE_SIZE);
    }
    const m = this.meta;
    const at = slot * META_WORDS;
    m[at + M_KIND_FORK] = k.kindFork;
    m[at + M_W1] = k.w1;
    m[at + M_W2] = k.w2;
    m[at + M_W3] = k.w3;
    m[at + M_BLOCK] = k.block;
    m[at + M_FROM_HI] = lsn.hi;
    m[at + M_FROM_LO] = lsn.lo;
    m[at + M_TO_HI] = U32_MASK;
    m[at + M_TO_LO] = U32_MASK;
    m[at + M_REFERENCED] = 0;
    this.pages[slot].set(page.subarray(pageOffset, pageOffset + PAGE_SIZE));
    this.counters.insertions++;
  }

  /** @internal */
  invalidate(index: DecodedPageIndex, keys: Buffer, offset: number, lsn: Lsn): void {
    const k = this.words.fromBytes(keys, offset);
    const slot = index.slots.get(k.hash());
    if (slot === undefined || !this.matches(slot, k)) return;
    const m = this.meta;
    const at = slot * META_WORDS;
    if (m[at + M_TO_HI] !== U32_MASK || m[at + M_TO_LO] !== U32_MASK) return; // already closed lower
    const end = splitLsn(lsn - 1n);
    if (end.hi < m[at + M_FROM_HI] || (end.hi === m[at + M_FROM_HI] && end.lo < m[at + M_FROM_LO])) {
      this.release(slot); // nothing left of its range (cannot happen for reads at lastRecordLsn)
    } else {
      m[at + M_TO_HI] = end.hi;
      m[at + M_TO_LO] = end.lo;
    }
    this.counters.invalidations++;
  }

  /** @internal */
  clearIndex(index: DecodedPageIndex): void {
    for (const slot of index.slots.values()) {
      this.owner[slot] = null;
      this.free.push(slot);
    }
    index.slots.clear();
  }

  /** The doorkeeper: true on the key's second miss since its slot last changed hands. */
  private admit(k: KeyWords): boolean {
    const fp = k.fingerprint();
    const at = fp & this.doorMask;
    if (this.door[at] === fp) {
      this.door[at] = 0;
      return true;
    }
    this.door[at] = fp;
    this.counters.deferred++;
    return false;
  }

  private matches(slot: number, k: KeyWords): boolean {
    const m = this.meta;
    const at = slot * META_WORDS;
    return m[at + M_BLOCK] === k.block && m[at + M_W3] === k.w3 && m[at + M_W2] === k.w2 &&
      m[at + M_W1] === k.w1 && m[at + M_KIND_FORK] === k.kindFork;
  }

  private covers(slot: number, lsn: SplitLsn): boolean {
    const m = this.meta;
    const at = slot * META_WORDS;
    const fh = m[at + M_FROM_HI];
    if (lsn.hi < fh || (lsn.hi === fh && lsn.lo < m[at + M_FROM_LO])) return false;
    const th = m[at + M_TO_HI];
    return lsn.hi < th || (lsn.hi === th && lsn.lo <= m[at + M_TO_LO]);
  }

  /** A free slot: never used yet, released, or the clock's victim. */
  private takeSlot(): number {
    const reused = this.free.pop();
    if (reused !== undefined) return reused;
    if (this.nextUnused < this.capacityPages) return this.nextUnused++;
    for (;;) {
      const slot = this.hand;
      this.hand = (this.hand + 1) % this.capacityPages;
      if (this.owner[slot] === null) return slot;
      const ref = slot * META_WORDS + M_REFERENCED;
      if (this.meta[ref] === 1) {
        this.meta[ref] = 0;
        continue;
      }
      this.owner[slot]!.slots.delete(this.hashes[slot]);
      this.owner[slot] = null;
      this.counters.evictions++;
      return slot;
    }
  }

  private release(slot: number): void {
    this.owner[slot]?.slots.delete(this.hashes[slot]);
    this.owner[slot] = null;
    this.free.push(slot);
  }
}
