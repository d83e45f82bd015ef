/**
 * The open layer: WAL records of one timeline not yet written to a layer file, indexed by key.
 * When it holds `checkpointDistance` bytes (or on flush()) it is frozen and written as an L0 delta.
 *
 * Records are copied into slabs (LSN, length, bytes back to back), and a key's history is one
 * array of numbers locating them, so a record costs no JS object of its own: a record held as a
 * Buffer and a bigint, in arrays, in a per-key object with its own key Buffer, cost ≈ 800 bytes of
 * heap for a key's first record and ≈ 180 for each further one (docs/RELIABILITY.md, "Resource
 * limits"), ~12× what was counted for 8-byte patches.
 */
import type { ReadPlanWriter } from '../core/read_plan';
import { recordWillInit } from '../record';

/**
 * Memory counted against checkpointDistance besides the slab bytes, so the layer freezes at about
 * checkpointDistance of real memory: a key's Map entry, latin1 id string and one-slot location
 * array. Measured with scripts/measure-inmemory-layer.js (heapUsed + external after a full GC,
 * node --expose-gc, Node 20 x64, 100,000 keys of 8-byte patches): 166 bytes of heap for a key's
 * first record, of which 23 are its slab bytes.
 */
const KEY_OVERHEAD_BYTES = 144;
/**
 * Bytes per slot of a location array, counted when a push grows it: V8 grows a full array of n
 * slots to n + n/2 + 16 (so 1 → 17 → 41 → …), 8 bytes a slot for these numbers. With this, the
 * same script measures 165, 68 and 33 bytes of heap per further record at 2, 4 and 16 records a
 * key, against 151, 66 and 32 counted (1.0× to 1.04× overall).
 */
const LOCATION_SLOT_BYTES = 8;
const ARRAY_GROWTH_SLOTS = 16;

/** Slab header of each record: its LSN (u64) and length (u32). */
const SLAB_LSN_SIZE = 8;
const SLAB_LEN_SIZE = 4;
const SLAB_HEADER_SIZE = SLAB_LSN_SIZE + SLAB_LEN_SIZE;
/** The first slab of a layer is small (many layers stay small); each next one doubles up to the max. */
const SLAB_MIN_BYTES = 16 * 1024;
const SLAB_MAX_BYTES = 1024 * 1024;
/** A record's location: slab index × LOC_SLAB_SPAN + offset (an exact integer below 2^53). */
const LOC_SLAB_SPAN = 2 ** 32;

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
  /** Memory counted against checkpointDistance: slab bytes used plus the overheads above. */
  bytes = 0;
  entries = 0;
  /** Wall-clock ms of the first record, for checkpoint_timeout-style flushing; null while empty. */
  firstPutAt: number | null = null;
  /** Key (latin1 id of its 18 bytes) → record locations, ascending LSN. */
  private readonly byKey = new Map<string, number[]>();
  private readonly slabs: Buffer[] = [];
  /** Write offset in the last slab. */
  private slabUsed = 0;

  constructor(startLsn: bigint) {
    this.startLsn = startLsn;
    this.endLsn = startLsn;
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

  put(key: Buffer, lsn: bigint, record: Buffer): void {
    const id = key.toString('latin1');
    const loc = this.append(lsn, record);
    const locs = this.byKey.get(id);
    if (locs === undefined) {
      this.byKey.set(id, [loc]);
      this.bytes += KEY_OVERHEAD_BYTES;
    } else {
      this.bytes += arrayGrowthSlots(locs.length) * LOCATION_SLOT_BYTES;
      locs.push(loc);
    }
    this.bytes += SLAB_HEADER_SIZE + record.length;
    this.firstPutAt ??= Date.now();
    this.entries++;
    if (lsn > this.endLsn) this.endLsn = lsn;
  }

  /**
   * Append this layer's records for the key (its latin1 id) with lsn ≤ cap to the read plan's
   * current segment, newest first. Returns true when a will_init record ended the chain.
   */
  collect(keyId: string, cap: bigint, plan: ReadPlanWriter): boolean {
    const locs = this.byKey.get(keyId);
    if (locs === undefined) return false;
    for (let i = locs.length - 1; i >= 0; i--) {
      const slab = this.slabs[Math.floor(locs[i] / LOC_SLAB_SPAN)];
      const off = locs[i] % LOC_SLAB_SPAN;
      const lsn = slab.readBigUInt64BE(off);
      if (lsn > cap) continue;
      const start = off + SLAB_HEADER_SIZE;
      plan.memRecord(lsn, slab.subarray(start, start + slab.readUInt32BE(off + SLAB_LSN_SIZE)));
      if (recordWillInit(slab, start)) return true;
    }
    return false;
  }

  /**
   * Keys in ascending byte order, each with its records in ascending LSN order: the L0 write order.
   * Made one key at a time, so a flush holds no per-key objects beyond the sorted ids.
   */
  *sortedHistories(): Generator<KeyRecords> {
    for (const id of [...this.byKey.keys()].sort(compareIds)) {
      const locs = this.byKey.get(id) as number[];
      yield { key: Buffer.from(id, 'latin1'), records: () => this.recordsAt(locs) };
    }
  }

  /** The layer's keys in ascending byte order. */
  keys(): Buffer[] {
    return [...this.byKey.keys()].sort(compareIds).map((id) => Buffer.from(id, 'latin1'));
  }

  private *recordsAt(locs: readonly number[]): Generator<{ lsn: bigint; record: Buffer }> {
    for (const loc of locs) {
      const slab = this.slabs[Math.floor(loc / LOC_SLAB_SPAN)];
      const off = loc % LOC_SLAB_SPAN;
      const start = off + SLAB_HEADER_SIZE;
      yield { lsn: slab.readBigUInt64BE(off), record: slab.subarray(start, start + slab.readUInt32BE(off + SLAB_LSN_SIZE)) };
    }
  }

  /** Copy the record into the current slab (a new one when it does not fit); returns its location. */
  private append(lsn: bigint, record: Buffer): number {
    const need = SLAB_HEADER_SIZE + record.length;
    let slab = this.slabs[this.slabs.length - 1];
    if (slab === undefined || this.slabUsed + need > slab.length) {
      const next = slab === undefined ? SLAB_MIN_BYTES : Math.min(slab.length * 2, SLAB_MAX_BYTES);
      slab = Buffer.allocUnsafeSlow(Math.max(next, need));
      this.slabs.push(slab);
      this.slabUsed = 0;
    }
    const off = this.slabUsed;
    slab.writeBigUInt64BE(lsn, off);
    slab.writeUInt32BE(record.length, off + SLAB_LSN_SIZE);
    record.copy(slab, off + SLAB_HEADER_SIZE);
    this.slabUsed = off + need;
    return (this.slabs.length - 1) * LOC_SLAB_SPAN + off;
  }
}

/** latin1 ids compare as strings in the byte order of their keys. */
function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Slots a push onto an array of `length` elements adds, if the array (built as [x], then pushed) is full. */
function arrayGrowthSlots(length: number): number {
  let capacity = 1;
  while (capacity < length) capacity += (capacity >> 1) + ARRAY_GROWTH_SLOTS;
  return capacity === length ? (capacity >> 1) + ARRAY_GROWTH_SLOTS : 0;
}
