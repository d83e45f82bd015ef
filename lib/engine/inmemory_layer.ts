/**
 * The open layer: WAL records of one timeline not yet written to a layer file, indexed by key.
 * When it holds `checkpointDistance` bytes (or on flush()) it is frozen and written as an L0 delta.
 *
 * An arena, so a record costs no JS object of its own (a record held as a Buffer and a bigint, in
 * arrays, in a per-key object with its own key Buffer, cost ≈ 800 bytes of heap for a key's first
 * record and ≈ 180 for each further one, docs/RELIABILITY.md "Resource limits"):
 *   - record bytes back to back in slabs; public ingest serializes each record straight into its
 *     slab (putChecked), with no Buffer of its own;
 *   - per record, by its ordinal, a 24-byte entry in one typed array: LSN, location, length and the
 *     ordinal of the same key's previous record, so a key's history is a chain from its newest;
 *   - a numeric key index: the key's first 14 bytes (for a page: kind, tablespace, database,
 *     relation, fork) are its prefix, numbered in a Map; (prefix number, last 4 bytes: the block
 *     number) finds the key's slot, which holds its newest record, in an open-addressing table of
 *     typed arrays (a JS Map per prefix cost a quarter of ingest's time); a small cache of recently
 *     used prefixes spares ingest the prefix's string.
 */
import { putU32BE } from '../bytes';
import {
  ARENA_ENTRY_BYTES, ARENA_ENTRY_U32S, ARENA_ENTRY_U64S, ARENA_LENGTH, ARENA_OFFSET, ARENA_PREV, ARENA_SLAB, type DeltaArena,
  NO_PREVIOUS, packArena,
} from '../core/delta_arena';
import { yieldToEventLoop } from '../core/entry_batch';
import type { CodecId } from '../core/format';
import type { ReadPlanWriter } from '../core/read_plan';
import { KEY_SIZE } from '../key';
import { recordWillInit, writeRecord } from '../record';
import type { CheckedRecords } from './ingest';

/**
 * A key prefix's number in the prefix Map, its latin1 id and its bytes (a few per relation fork).
 * Everything else the layer holds is typed arrays and slabs, counted at their allocated size, so
 * the layer freezes at about checkpointDistance of real memory: scripts/measure-inmemory-layer.js
 * (heapUsed + external after a full GC) measures what the counts below add up to.
 */
const PREFIX_OVERHEAD_BYTES = 128;
/**
 * Per record besides its bytes: LSN (8), slab and offset (4 + 4), length (4) and previous ordinal
 * (4), in one array of entries that grows by half when full. Their whole capacity is counted when allocated (up to a
 * third of it not yet used): small records on many keys cost little more than this index.
 */
const RECORD_INDEX_BYTES = ARENA_ENTRY_BYTES; // 8 + 4 + 4 + 4 + 4
/**
 * Per key slot: its newest record's ordinal, its prefix number and its last 4 bytes, in arrays
 * grown and counted the same way.
 */
const KEY_SLOT_BYTES = 4 + 4 + 4;
/** Per entry of the key table: the slot + 1 (0: empty) and the key's last 4 bytes. */
const KEY_TABLE_ENTRY_U32S = 2;
const KEY_TABLE_ENTRY_BYTES = KEY_TABLE_ENTRY_U32S * 4;
/** Initial entries of the key table (a power of two); it doubles when half full. */
const INITIAL_KEY_TABLE_ENTRIES = 64;
/** Mixes the prefix number into the key's hash (a 32-bit odd constant from MurmurHash3's finalizer). */
const PREFIX_HASH_MIX = 0x85ebca6b;
const INITIAL_RECORD_SLOTS = 64;
const INITIAL_KEY_SLOTS = 16;
/** Arrays grow to capacity × 3/2 (+ the initial size), bounding the allocated-but-unused part. */
function grownCapacity(capacity: number, initial: number, need: number): number {
  return Math.max(need, capacity + (capacity >> 1) + initial);
}
/** No previous record (a chain's end). */
const NO_RECORD = NO_PREVIOUS;

/** The first slab of a layer is small (many layers stay small); each next one doubles up to the max. */
const SLAB_MIN_BYTES = 16 * 1024;
export const SLAB_MAX_BYTES = 1024 * 1024;
/**
 * Bytes of slabs of flushed layers kept for the next layers to fill (16 MiB). A fresh slab costs
 * the event loop its page faults as records are first written into it (≈ 0.8 ms per 800 KB of
 * images here) and counts as new external memory, which triggers scavenges; a reused one costs
 * neither. The pool is process-wide, idle memory it holds is at most this, and it only ever holds
 * slabs no layer refers to.
 */
export const SLAB_POOL_MAX_BYTES = 16 * 1024 * 1024;

/**
 * Slabs of the sizes layers grow through (SLAB_MIN_BYTES doubling to SLAB_MAX_BYTES) that no layer
 * refers to any more, one free list per size: small layers (W7's 8 MiB checkpoint distance gives
 * ≈ 1 MB layers) never reach a full-size slab, and pooling only those left them all fresh.
 */
class SlabPool {
  private readonly free = new Map<number, Buffer[]>();
  private held = 0;

  /** A pooled slab of exactly `bytes`, if one is free. */
  take(bytes: number): Buffer | undefined {
    const slab = this.free.get(bytes)?.pop();
    if (slab !== undefined) this.held -= slab.length;
    return slab;
  }

  give(slab: Buffer): void {
    if (!isSlabSize(slab.length) || this.held + slab.length > SLAB_POOL_MAX_BYTES) return;
    let list = this.free.get(slab.length);
    if (list === undefined) this.free.set(slab.length, (list = []));
    list.push(slab);
    this.held += slab.length;
  }

  /** Bytes held. */
  get bytes(): number {
    return this.held;
  }
}

/** SLAB_MIN_BYTES times a power of two, up to SLAB_MAX_BYTES: a size a layer's slabs take. */
function isSlabSize(bytes: number): boolean {
  if (bytes < SLAB_MIN_BYTES || bytes > SLAB_MAX_BYTES || bytes % SLAB_MIN_BYTES !== 0) return false;
  const units = bytes / SLAB_MIN_BYTES;
  return (units & (units - 1)) === 0;
}

/** @internal The process's slab pool (tests read how much it holds). */
export const slabPool = new SlabPool();
// A record's index entry: the arena layout Core's finishArenaAsync takes (core/delta_arena.ts),
// so a flush hands these arrays over as they are.
const REC_U64S = ARENA_ENTRY_U64S;
const REC_U32S = ARENA_ENTRY_U32S;
const REC_SLAB = ARENA_SLAB;
const REC_OFF = ARENA_OFFSET;
const REC_LEN = ARENA_LENGTH;
const REC_PREV = ARENA_PREV;
/** The LSN's u32 halves in a little-endian u64 (every platform the addon builds for). */
const REC_LSN_LOW = 0;
const REC_LSN_HIGH = 1;

/** Bytes of a key before its numeric part; the last 4 (big-endian) are the number. */
const KEY_PREFIX_SIZE = KEY_SIZE - 4;
/** Slots of the prefix cache (a power of two): one per relation fork being written, about. */
const PREFIX_CACHE_SLOTS = 16;
const PREFIX_CACHE_SHIFT = 32 - Math.log2(PREFIX_CACHE_SLOTS);
/** The prefix's bytes as four numbers: bytes 0–3, 4–7, 8–11 (u32 each) and 12–13 (u16). */
const PREFIX_WORDS = 4;
/** Fibonacci hashing's multiplier (2^32 / φ), to spread the prefixes over the cache slots. */
const FIB_HASH = 0x9e3779b1;

/** A key's records in ascending LSN order, for the L0 writer. */
export interface KeyRecords {
  key: Buffer;
  /** The records' LSNs and serialized records, in ascending LSN order. */
  records(): Iterable<{ lsn: bigint; record: Buffer }>;
}

export class InMemoryLayer {
  /** Records here have lsn > startLsn. */
  readonly startLsn: bigint;
  /** Highest LSN ingested into this layer; fixed once frozen. */
  endLsn: bigint;
  /** Memory counted against checkpointDistance: record bytes plus the overheads above. */
  bytes = 0;
  /** Records held; also the next record's ordinal. */
  entries = 0;
  /** Wall-clock ms of the first record, for checkpoint_timeout-style flushing; null while empty. */
  firstPutAt: number | null = null;

  /** latin1 id of a key's first KEY_PREFIX_SIZE bytes → its prefix number (an index of prefixes). */
  private readonly prefixIds = new Map<string, number>();
  private readonly prefixes: Buffer[] = [];
  private readonly prefixCache = new Uint32Array(PREFIX_CACHE_SLOTS * PREFIX_WORDS);
  /** The cached prefix's number, or -1. */
  private readonly prefixCacheIds = new Int32Array(PREFIX_CACHE_SLOTS).fill(-1);
  /** Per key slot: its newest record's ordinal, its prefix number and its last 4 bytes. */
  private keyHead = new Int32Array(0);
  private keyPrefix = new Int32Array(0);
  private keySuffix = new Uint32Array(0);
  private keyCount = 0;
  /** Open addressing, linear probing: KEY_TABLE_ENTRY_U32S per entry, a power of two of them. */
  private keyTable = new Uint32Array(0);
  private keyTableMask = -1;
  /** 32 − log2(the table's entries): a hash's top bits pick the entry. */
  private keyTableShift = 32;

  /** Record index entries (REC_* above): three views of one buffer. */
  private recU64 = new BigUint64Array(0);
  private recU32 = new Uint32Array(0);
  private recI32 = new Int32Array(0);
  private recCapacity = 0;

  private readonly slabs: Buffer[] = [];
  /** Write offset in the last slab. */
  private slabUsed = 0;

  constructor(startLsn: bigint) {
    this.startLsn = startLsn;
    this.endLsn = startLsn;
  }

  /**
   * The layer is flushed and out of every layer list: its slabs go to the pool for the
   * next layers. Nothing refers to them any more: reads copy records out synchronously and the
   * flush's write has settled. A read of a released layer fails loudly (its slab list is empty)
   * rather than seeing another layer's bytes.
   */
  release(): void {
    for (const slab of this.slabs) slabPool.give(slab);
    this.slabs.length = 0;
  }

  get isEmpty(): boolean {
    return this.entries === 0;
  }

  /** Whether a flush has anything to make durable: records, or only an LSN advance. */
  get hasContent(): boolean {
    return this.entries > 0 || this.endLsn > this.startLsn;
  }

  /** WAL up to `lsn` arrived with nothing to store for it (a commit record, say). */
  advanceTo(lsn: bigint): void {
    if (lsn > this.endLsn) this.endLsn = lsn;
  }

  /** One serialized record (the engine's own ingest paths). */
  put(key: Buffer, lsn: bigint, record: Buffer): void {
    this.reserveRecords(1);
    const ord = this.link(this.slotOf(key, 0), lsn, record.length);
    record.copy(this.slabs[this.slabs.length - 1], this.recU32[ord * REC_U32S + REC_OFF]);
    this.firstPutAt ??= Date.now();
    if (lsn > this.endLsn) this.endLsn = lsn;
  }

  /**
   * A batch checkRecords accepted, each record serialized straight into the arena. Nothing here
   * can fail on a record (all were checked before), so a batch is applied whole or not at all.
   */
  putChecked(batch: CheckedRecords): void {
    const { records, count, keys, sizes } = batch;
    if (count === 0) return;
    this.reserveRecords(count);
    for (let i = 0; i < count; i++) {
      const r = records[i];
      const ord = this.link(this.slotOf(keys, i * KEY_SIZE), r.lsn, sizes[i]);
      writeRecord(r, this.slabs[this.slabs.length - 1], this.recU32[ord * REC_U32S + REC_OFF]);
    }
    this.firstPutAt ??= Date.now();
    const last = records[count - 1].lsn;
    if (last > this.endLsn) this.endLsn = last;
  }

  /**
   * Append this layer's records for the key (its latin1 id) with lsn ≤ the plan's current segment
   * cap, newest first. Returns true when a will_init record ended the chain.
   *
   * A hot key's chain can hold thousands of records and a read walks it all, so the walk compares
   * LSNs as u32 halves and copies record bytes from the slab: no bigint or view per record.
   */
  collect(keyId: string, plan: ReadPlanWriter): boolean {
    const prefix = this.prefixIds.get(keyId.slice(0, KEY_PREFIX_SIZE));
    if (prefix === undefined) return false;
    const slot = this.find(prefix, idSuffix(keyId));
    if (slot < 0) return false;
    const capHigh = plan.capHigh;
    const capLow = plan.capLow;
    const u32 = this.recU32;
    for (let ord = this.keyHead[slot]; ord !== NO_RECORD; ord = this.recI32[ord * REC_U32S + REC_PREV]) {
      const w = ord * REC_U32S;
      const high = u32[w + REC_LSN_HIGH];
      const low = u32[w + REC_LSN_LOW];
      if (high > capHigh || (high === capHigh && low > capLow)) continue;
      const slab = this.slabs[u32[w + REC_SLAB]];
      const off = u32[w + REC_OFF];
      plan.memRecordFrom(high, low, slab, off, u32[w + REC_LEN]);
      if (recordWillInit(slab, off)) return true;
    }
    return false;
  }

  /**
   * Keys in ascending byte order, each with its records in ascending LSN order: the L0 write order,
   * one record at a time as a Buffer. The flush hands the core its arena instead (toArena), which
   * writes the same entries without a Buffer per record; this slower view is what tests check the
   * cores' arena walks against.
   */
  *sortedHistories(): Generator<KeyRecords> {
    for (const slot of this.sortedSlots()) {
      yield { key: this.keyOf(slot), records: () => this.recordsOf(slot) };
    }
  }

  /**
   * The layer as LayerWriter.finishArenaAsync writes it to an L0 delta: its keys in byte order
   * with their chains' heads, and the record index and slabs as they are. The records `codec`
   * compresses are compressed here (packArena, yielding to the event loop between steps). The
   * layer must be frozen: the core reads these arrays until the write settles.
   */
  async toArena(codec: CodecId): Promise<DeltaArena> {
    // A layer of at most one step's keys sorts in one go: its passes take less than a loop turn.
    const sorting = this.sortingSlots();
    let step = sorting.next();
    for (; step.done !== true; step = sorting.next()) if (this.keyCount > ARENA_KEYS_PER_STEP) await yieldToEventLoop();
    const slots = step.value;
    const keys = Buffer.allocUnsafe(this.keyCount * KEY_SIZE);
    const heads = new Int32Array(this.keyCount);
    for (let k = 0; k < slots.length; k++) {
      this.writeKey(slots[k], keys, k * KEY_SIZE);
      heads[k] = this.keyHead[slots[k]];
      if ((k + 1) % ARENA_KEYS_PER_STEP === 0) await yieldToEventLoop();
    }
    const entries = new Uint8Array(this.recU32.buffer, 0, this.entries * RECORD_INDEX_BYTES);
    const { packedAt, packed } = await packArena(codec, entries, this.entries, this.slabs);
    return { keys, heads, entries, slabs: this.slabs, packedAt, packed };
  }

  /** The layer's keys in ascending byte order. */
  keys(): Buffer[] {
    return Array.from(this.sortedSlots(), (slot) => this.keyOf(slot));
  }

  /** Key slots in ascending key order (sortingSlots run through at once). */
  private sortedSlots(): Int32Array {
    const steps = this.sortingSlots();
    for (let r = steps.next(); ; r = steps.next()) if (r.done === true) return r.value;
  }

  /**
   * Key slots in ascending key order, in steps: grouped by prefix in the prefixes' byte order (a
   * counting sort), then by the last 4 bytes, which as big-endian numbers sort as their bytes do
   * (a radix sort carrying the slots, a byte a pass). It pauses after each pass: a flush sorts
   * ≈ 20,000 keys on the event loop, once a layer, so this code is seldom warm, and sorting them
   * in one go (numbers sorted, then each one's slot found again) held the loop 2–8 ms.
   */
  private *sortingSlots(): Generator<void, Int32Array> {
    const grouped = this.groupedByPrefix();
    const start = grouped.start;
    let slots: Int32Array = grouped.slots;
    let suffixes: Uint32Array = grouped.suffixes;
    yield;
    let toSlots: Int32Array = new Int32Array(this.keyCount);
    let toSuffixes: Uint32Array = new Uint32Array(this.keyCount);
    const count = new Int32Array(RADIX_BUCKETS);
    for (let shift = 0; shift < 32; shift += RADIX_BITS) {
      if (shift > 0) yield;
      for (let r = 0; r + 1 < start.length; r++) radixPass(suffixes, slots, toSuffixes, toSlots, start[r], start[r + 1], shift, count);
      const s = slots;
      slots = toSlots;
      toSlots = s;
      const x = suffixes;
      suffixes = toSuffixes;
      toSuffixes = x;
    }
    return slots;
  }

  /**
   * The slots grouped by prefix, the groups in the prefixes' byte order (a counting sort; group r
   * is [start[r], start[r + 1])), with each slot's last 4 bytes. Outside the generator, whose loops
   * V8 does not optimize while they run.
   */
  private groupedByPrefix(): { slots: Int32Array; suffixes: Uint32Array; start: Int32Array } {
    const ids = [...this.prefixIds.keys()].sort(compareIds);
    const rank = new Int32Array(ids.length);
    ids.forEach((id, r) => { rank[this.prefixIds.get(id) as number] = r; });
    const start = new Int32Array(ids.length + 1);
    for (let s = 0; s < this.keyCount; s++) start[rank[this.keyPrefix[s]] + 1]++;
    for (let r = 0; r < ids.length; r++) start[r + 1] += start[r];
    const slots = new Int32Array(this.keyCount);
    const next = start.slice(0, ids.length);
    for (let s = 0; s < this.keyCount; s++) slots[next[rank[this.keyPrefix[s]]]++] = s;
    const suffixes = new Uint32Array(this.keyCount);
    for (let i = 0; i < this.keyCount; i++) suffixes[i] = this.keySuffix[slots[i]];
    return { slots, suffixes, start };
  }

  private keyOf(slot: number): Buffer {
    return this.writeKey(slot, Buffer.allocUnsafe(KEY_SIZE), 0);
  }

  /** The slot's key at out[at, at + KEY_SIZE): its prefix's bytes, then its last 4 bytes. */
  private writeKey(slot: number, out: Buffer, at: number): Buffer {
    this.prefixes[this.keyPrefix[slot]].copy(out, at);
    putU32BE(out, at + KEY_PREFIX_SIZE, this.keySuffix[slot]);
    return out;
  }

  private *recordsOf(slot: number): Generator<{ lsn: bigint; record: Buffer }> {
    const chain: number[] = [];
    for (let ord = this.keyHead[slot]; ord !== NO_RECORD; ord = this.recI32[ord * REC_U32S + REC_PREV]) chain.push(ord);
    for (let i = chain.length - 1; i >= 0; i--) yield { lsn: this.recU64[chain[i] * REC_U64S], record: this.recordAt(chain[i]) };
  }

  private recordAt(ord: number): Buffer {
    const w = ord * REC_U32S;
    const off = this.recU32[w + REC_OFF];
    return this.slabs[this.recU32[w + REC_SLAB]].subarray(off, off + this.recU32[w + REC_LEN]);
  }

  /**
   * The slot of the key at b[o, o + KEY_SIZE), made if new. The prefix is compared as four numbers
   * against the cache before any string is made: ingest interleaves a few relations.
   */
  private slotOf(b: Buffer, o: number): number {
    const w0 = u32(b, o);
    const w1 = u32(b, o + 4);
    const w2 = u32(b, o + 8);
    const w3 = (b[o + 12] << 8) | b[o + 13];
    const c = Math.imul(w0 ^ w1 ^ w2 ^ w3, FIB_HASH) >>> PREFIX_CACHE_SHIFT;
    const cw = c * PREFIX_WORDS;
    const cache = this.prefixCache;
    let prefix = this.prefixCacheIds[c];
    if (prefix < 0 || cache[cw] !== w0 || cache[cw + 1] !== w1 || cache[cw + 2] !== w2 || cache[cw + 3] !== w3) {
      prefix = this.prefixOf(b, o);
      cache[cw] = w0;
      cache[cw + 1] = w1;
      cache[cw + 2] = w2;
      cache[cw + 3] = w3;
      this.prefixCacheIds[c] = prefix;
    }
    const suffix = u32(b, o + KEY_PREFIX_SIZE);
    const slot = this.find(prefix, suffix);
    return slot >= 0 ? slot : this.newSlot(prefix, suffix);
  }

  /** The number of the prefix at b[o, o + KEY_PREFIX_SIZE), numbered if new. */
  private prefixOf(b: Buffer, o: number): number {
    const id = b.toString('latin1', o, o + KEY_PREFIX_SIZE);
    let prefix = this.prefixIds.get(id);
    if (prefix === undefined) {
      prefix = this.prefixes.length;
      this.prefixes.push(Buffer.from(b.subarray(o, o + KEY_PREFIX_SIZE)));
      this.prefixIds.set(id, prefix);
      this.bytes += PREFIX_OVERHEAD_BYTES;
    }
    return prefix;
  }

  /** The slot of (prefix, suffix), or -1. */
  private find(prefix: number, suffix: number): number {
    const table = this.keyTable;
    const mask = this.keyTableMask;
    if (this.keyCount === 0) return -1;
    for (let e = keyHash(prefix, suffix) >>> this.keyTableShift; ; e = (e + 1) & mask) {
      const at = e * KEY_TABLE_ENTRY_U32S;
      const held = table[at];
      if (held === 0) return -1;
      if (table[at + 1] === suffix && this.keyPrefix[held - 1] === prefix) return held - 1;
    }
  }

  /** A slot for a key not in the layer yet, entered in the key table. */
  private newSlot(prefix: number, suffix: number): number {
    const slot = this.keyCount++;
    if (slot === this.keyHead.length) {
      const cap = grownCapacity(slot, INITIAL_KEY_SLOTS, slot + 1);
      this.keyHead = grown(this.keyHead, new Int32Array(cap));
      this.keyPrefix = grown(this.keyPrefix, new Int32Array(cap));
      this.keySuffix = grown(this.keySuffix, new Uint32Array(cap));
      this.bytes += (cap - slot) * KEY_SLOT_BYTES;
    }
    this.keyHead[slot] = NO_RECORD;
    this.keyPrefix[slot] = prefix;
    this.keySuffix[slot] = suffix;
    if (2 * this.keyCount > this.keyTableMask + 1) this.growKeyTable();
    else this.enter(this.keyTable, this.keyTableMask, this.keyTableShift, slot);
    return slot;
  }

  /** Doubles the key table (the first one: INITIAL_KEY_TABLE_ENTRIES) and enters every slot again. */
  private growKeyTable(): void {
    const had = this.keyTableMask + 1;
    const entries = had === 0 ? INITIAL_KEY_TABLE_ENTRIES : had * 2;
    const table = new Uint32Array(entries * KEY_TABLE_ENTRY_U32S);
    const shift = 32 - Math.log2(entries);
    for (let s = 0; s < this.keyCount; s++) this.enter(table, entries - 1, shift, s);
    this.keyTable = table;
    this.keyTableMask = entries - 1;
    this.keyTableShift = shift;
    this.bytes += (entries - had) * KEY_TABLE_ENTRY_BYTES;
  }

  private enter(table: Uint32Array, mask: number, shift: number, slot: number): void {
    const suffix = this.keySuffix[slot];
    let e = keyHash(this.keyPrefix[slot], suffix) >>> shift;
    while (table[e * KEY_TABLE_ENTRY_U32S] !== 0) e = (e + 1) & mask;
    table[e * KEY_TABLE_ENTRY_U32S] = slot + 1;
    table[e * KEY_TABLE_ENTRY_U32S + 1] = suffix;
  }

  /** Room in the record arrays for `n` more records. */
  private reserveRecords(n: number): void {
    const need = this.entries + n;
    if (need <= this.recCapacity) return;
    const had = this.recCapacity;
    const cap = grownCapacity(had, INITIAL_RECORD_SLOTS, need);
    this.bytes += (cap - had) * RECORD_INDEX_BYTES;
    const buf = new ArrayBuffer(cap * RECORD_INDEX_BYTES);
    new Uint8Array(buf).set(new Uint8Array(this.recU32.buffer, 0, had * RECORD_INDEX_BYTES));
    this.recU64 = new BigUint64Array(buf);
    this.recU32 = new Uint32Array(buf);
    this.recI32 = new Int32Array(buf);
    this.recCapacity = cap;
  }

  /**
   * Make room for a record of `size` bytes at the end of the current slab (a new slab when it does
   * not fit) and chain it as the key's newest; returns its ordinal. The caller writes the bytes.
   */
  private link(slot: number, lsn: bigint, size: number): number {
    let slab = this.slabs[this.slabs.length - 1];
    if (slab === undefined || this.slabUsed + size > slab.length) {
      const next = slab === undefined ? SLAB_MIN_BYTES : Math.min(slab.length * 2, SLAB_MAX_BYTES);
      slab = (size <= next ? slabPool.take(next) : undefined) ?? Buffer.allocUnsafeSlow(Math.max(next, size));
      this.slabs.push(slab);
      this.slabUsed = 0;
    }
    const ord = this.entries++;
    const w = ord * REC_U32S;
    this.recU64[ord * REC_U64S] = lsn;
    this.recU32[w + REC_SLAB] = this.slabs.length - 1;
    this.recU32[w + REC_OFF] = this.slabUsed;
    this.recU32[w + REC_LEN] = size;
    this.recI32[w + REC_PREV] = this.keyHead[slot];
    this.keyHead[slot] = ord;
    this.slabUsed += size;
    this.bytes += size;
    return ord;
  }
}

function u32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

/** The number in a key's last 4 bytes, from its latin1 id. */
function idSuffix(id: string): number {
  const o = KEY_PREFIX_SIZE;
  return ((id.charCodeAt(o) << 24) | (id.charCodeAt(o + 1) << 16) | (id.charCodeAt(o + 2) << 8) | id.charCodeAt(o + 3)) >>> 0;
}

/**
 * A key's hash for the key table: Fibonacci hashing of its last 4 bytes mixed with its prefix
 * number; the table uses the top bits, which every input bit reaches.
 */
function keyHash(prefix: number, suffix: number): number {
  return Math.imul(suffix ^ Math.imul(prefix, PREFIX_HASH_MIX), FIB_HASH) >>> 0;
}

/**
 * Keys toArena lays out between two yields to the event loop: a flush runs once a layer, so this
 * code is seldom warm, and laying out ≈ 20,000 keys in one go took 1–4 ms of the loop.
 */
const ARENA_KEYS_PER_STEP = 4096;

/** Bits of a key's last 4 bytes one radix pass sorts by, and its buckets. */
const RADIX_BITS = 8;
const RADIX_BUCKETS = 1 << RADIX_BITS;

/**
 * One stable pass of an LSD radix sort over [from, to): keys and their slots moved to toKeys and
 * toSlots in the order of the keys' byte at `shift`.
 */
function radixPass(keys: Uint32Array, slots: Int32Array, toKeys: Uint32Array, toSlots: Int32Array, from: number, to: number, shift: number, count: Int32Array): void {
  count.fill(0);
  for (let i = from; i < to; i++) count[(keys[i] >>> shift) & (RADIX_BUCKETS - 1)]++;
  for (let b = 0, at = from; b < RADIX_BUCKETS; b++) {
    const c = count[b];
    count[b] = at;
    at += c;
  }
  for (let i = from; i < to; i++) {
    const at = count[(keys[i] >>> shift) & (RADIX_BUCKETS - 1)]++;
    toKeys[at] = keys[i];
    toSlots[at] = slots[i];
  }
}

/** latin1 ids compare as strings in the byte order of their keys. */
function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** `to` (larger) holding `from`'s elements first. */
function grown<T extends Int32Array | Uint32Array>(from: T, to: T): T {
  to.set(from);
  return to;
}
