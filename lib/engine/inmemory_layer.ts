/**
 * The open layer: WAL records of one timeline not yet written to a layer file, indexed by key.
 * When it holds `checkpointDistance` bytes (or on flush()) it is frozen and written as an L0 delta.
 */
import { KEY_SIZE } from '../key';
import type { ReadPlanWriter } from '../core/read_plan';
import { recordWillInit } from '../record';

/** Per-entry bookkeeping counted against checkpointDistance besides the record bytes: key + LSN. */
const ENTRY_OVERHEAD_BYTES = KEY_SIZE + 8;

interface KeyHistory {
  key: Buffer;
  lsns: bigint[];      // ascending
  records: Buffer[];   // serialized, parallel to lsns
}

export class InMemoryLayer {
  /** Records here have lsn > startLsn. */
  readonly startLsn: bigint;
  /** Highest LSN ingested into this layer; fixed once frozen. */
  endLsn: bigint;
  bytes = 0;
  entries = 0;
  /** Wall-clock ms of the first record, for checkpoint_timeout-style flushing; null while empty. */
  firstPutAt: number | null = null;
  private readonly byKey = new Map<string, KeyHistory>();

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
    let h = this.byKey.get(id);
    if (h === undefined) {
      h = { key: Buffer.from(key), lsns: [], records: [] };
      this.byKey.set(id, h);
    }
    h.lsns.push(lsn);
    h.records.push(record);
    this.bytes += record.length + ENTRY_OVERHEAD_BYTES;
    this.firstPutAt ??= Date.now();
    this.entries++;
    if (lsn > this.endLsn) this.endLsn = lsn;
  }

  /**
   * Append this layer's records for the key (its latin1 id) with lsn ≤ cap to the read plan's
   * current segment, newest first. Returns true when a will_init record ended the chain.
   */
  collect(keyId: string, cap: bigint, plan: ReadPlanWriter): boolean {
    const h = this.byKey.get(keyId);
    if (h === undefined) return false;
    for (let i = h.lsns.length - 1; i >= 0; i--) {
      if (h.lsns[i] > cap) continue;
      plan.memRecord(h.lsns[i], h.records[i]);
      if (recordWillInit(h.records[i])) return true;
    }
    return false;
  }

  /** Keys in ascending byte order, each with its records in ascending LSN order: the L0 write order. */
  sortedHistories(): KeyHistory[] {
    return [...this.byKey.values()].sort((a, b) => Buffer.compare(a.key, b.key));
  }

  keys(): Buffer[] {
    return [...this.byKey.values()].map((h) => h.key);
  }
}
