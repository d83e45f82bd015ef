/**
 * A read plan carries a GetPage@LSN batch to a core in one buffer: for each requested key, the
 * timelines to search (the timeline, then its ancestors) with the LSN cap in each, and the matching
 * records from each timeline's in-memory layers. Layout in docs/FORMAT.md ("Read plan").
 */
import { KEY_SIZE } from './key';

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

const U32 = 4;
const U64 = 8;

export function encodeReadPlan(requests: readonly PlanRequest[]): Buffer {
  let size = U32;
  for (const r of requests) {
    size += KEY_SIZE + U32;
    for (const s of r.segments) {
      size += U32 + U64 + U32;
      for (const rec of s.memRecords) size += U64 + U32 + rec.length;
    }
  }
  const buf = Buffer.allocUnsafe(size);
  let o = buf.writeUInt32BE(requests.length, 0);
  for (const r of requests) {
    o += r.key.copy(buf, o, 0, KEY_SIZE);
    o = buf.writeUInt32BE(r.segments.length, o);
    for (const s of r.segments) {
      o = buf.writeUInt32BE(s.layerMapId, o);
      o = buf.writeBigUInt64BE(s.capLsn, o);
      o = buf.writeUInt32BE(s.memRecords.length, o);
      for (let i = 0; i < s.memRecords.length; i++) {
        o = buf.writeBigUInt64BE(s.memLsns[i], o);
        o = buf.writeUInt32BE(s.memRecords[i].length, o);
        o += s.memRecords[i].copy(buf, o);
      }
    }
  }
  return buf;
}
