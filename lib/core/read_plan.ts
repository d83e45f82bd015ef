/**
 * A read plan carries a GetPage@LSN batch to a core in one buffer: for each requested key, the
 * timelines to search (the timeline, then its ancestors) with the LSN cap in each, and the matching
 * records from each timeline's in-memory layers. Layout in docs/FORMAT.md ("Read plan").
 *
 * ReadPlanWriter encodes straight into a buffer it keeps between calls, so a read allocates no
 * per-request objects; counts are written as placeholders and patched when known.
 */
import { copyBytes, putU32BE } from '../bytes';
import { KEY_SIZE } from '../key';

const U32 = 4;
const U64 = 8;
const INITIAL_PLAN_BYTES = 4096;

export class ReadPlanWriter {
  private buf = Buffer.allocUnsafe(INITIAL_PLAN_BYTES);
  private len = 0;
  private requests = 0;
  private segmentCountAt = -1;
  private segments = 0;
  private memCountAt = -1;
  private memRecords = 0;
  /** The last segment cap written and its two u32 halves: a repeated cap writes no bigint. */
  private lastCap: bigint | null = null;
  private lastCapHigh = 0;
  private lastCapLow = 0;
  /** finish()'s view, reused while the plan's length and buffer stay the same (a view allocates). */
  private view: Buffer | null = null;

  /** Start a new plan, dropping the previous one. */
  reset(): this {
    this.len = U32;
    this.requests = 0;
    this.segmentCountAt = -1;
    this.memCountAt = -1;
    return this;
  }

  /** Start a request; returns the offset in `buffer` where the caller writes the 18-byte key. */
  beginRequest(): number {
    this.closeRequest();
    this.ensure(KEY_SIZE + U32);
    const offset = this.len;
    this.len += KEY_SIZE;
    this.segmentCountAt = this.len;
    this.len += U32;
    this.segments = 0;
    this.requests++;
    return offset;
  }

  /** The buffer beginRequest()'s offset is in (until the next begin call grows it). */
  get buffer(): Buffer {
    return this.buf;
  }

  beginSegment(layerMapId: number, capLsn: bigint): void {
    this.closeSegment();
    this.ensure(U32 + U64 + U32);
    this.len = this.buf.writeUInt32BE(layerMapId, this.len);
    if (capLsn === this.lastCap) {
      this.buf.writeUInt32BE(this.lastCapHigh, this.len);
      this.buf.writeUInt32BE(this.lastCapLow, this.len + U32);
    } else {
      // Checks the range as before; the halves are read back rather than computed (no bigints).
      this.buf.writeBigUInt64BE(capLsn, this.len);
      this.lastCap = capLsn;
      this.lastCapHigh = this.buf.readUInt32BE(this.len);
      this.lastCapLow = this.buf.readUInt32BE(this.len + U32);
    }
    this.len += U64;
    this.memCountAt = this.len;
    this.len += U32;
    this.memRecords = 0;
    this.segments++;
  }

  /** The current segment's cap LSN as u32 halves (what in-memory layers compare record LSNs with). */
  get capHigh(): number {
    return this.lastCapHigh;
  }

  get capLow(): number {
    return this.lastCapLow;
  }

  /** memRecord with the LSN as u32 halves and the record as src[off, +len): no bigint, no view. */
  memRecordFrom(lsnHigh: number, lsnLow: number, src: Uint8Array, off: number, len: number): void {
    this.ensure(U64 + U32 + len);
    const b = this.buf;
    let at = this.len;
    putU32BE(b, at, lsnHigh);
    putU32BE(b, at + U32, lsnLow);
    putU32BE(b, at + U64, len);
    at += U64 + U32;
    copyBytes(src, off, b, at, len);
    this.len = at + len;
    this.memRecords++;
  }

  /** Append an in-memory record (newest first) to the current segment. */
  memRecord(lsn: bigint, record: Uint8Array): void {
    this.ensure(U64 + U32 + record.length);
    this.len = this.buf.writeBigUInt64BE(lsn, this.len);
    this.len = this.buf.writeUInt32BE(record.length, this.len);
    this.buf.set(record, this.len);
    this.len += record.length;
    this.memRecords++;
  }

  /** The finished plan: a view of the writer's buffer, valid until the next reset(). */
  finish(): Buffer {
    this.closeRequest();
    this.buf.writeUInt32BE(this.requests, 0);
    if (this.view === null || this.view.buffer !== this.buf.buffer || this.view.byteOffset !== this.buf.byteOffset || this.view.length !== this.len) {
      this.view = this.buf.subarray(0, this.len);
    }
    return this.view;
  }

  private closeSegment(): void {
    if (this.memCountAt >= 0) this.buf.writeUInt32BE(this.memRecords, this.memCountAt);
    this.memCountAt = -1;
  }

  private closeRequest(): void {
    this.closeSegment();
    if (this.segmentCountAt >= 0) this.buf.writeUInt32BE(this.segments, this.segmentCountAt);
    this.segmentCountAt = -1;
  }

  private ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + extra));
    this.buf.copy(grown, 0, 0, this.len);
    this.buf = grown;
  }
}

/** One request spelled out as objects, for tests that build plans by hand. */
export interface PlanSegment {
  layerMapId: number;
  capLsn: bigint;
  /** In-memory records with lsn ≤ capLsn, newest first, ending at the first will_init one. */
  memLsns: bigint[];
  memRecords: Buffer[];
}

export interface PlanRequest {
  key: Buffer;
  segments: PlanSegment[];
}

export function encodeReadPlan(requests: readonly PlanRequest[]): Buffer {
  const w = new ReadPlanWriter().reset();
  for (const r of requests) {
    const offset = w.beginRequest();
    r.key.copy(w.buffer, offset, 0, KEY_SIZE);
    for (const s of r.segments) {
      w.beginSegment(s.layerMapId, s.capLsn);
      s.memRecords.forEach((rec, i) => w.memRecord(s.memLsns[i], rec));
    }
  }
  return Buffer.from(w.finish());
}
