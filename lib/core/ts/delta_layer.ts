/**
 * Reading one delta layer for GetPage@LSN: the records of a key with floor ≤ lsn < cont, newest
 * first, stopping at the first will_init record (docs/ARCHITECTURE.md, "GetPage@LSN").
 */
import { RecordSlot } from './block_io';
import { BtreeCursor, compareBytes } from './disk_btree';
import { DELTA_INDEX_KEY_SIZE } from '../format';
import { KEY_SIZE } from '../../key';
import { checkRecord, type Layer } from './layer_file';
import type { RecordChain } from './walredo';

/** Scratch state reused across lookups so the read path allocates nothing per page. */
export class ReadScratch {
  readonly cursor = new BtreeCursor();
  readonly slot = new RecordSlot();
  /** key ‖ (cont - 1): the newest index key the walk may return. */
  readonly hiKey = Buffer.alloc(DELTA_INDEX_KEY_SIZE);
  /** key ‖ floor: entries below this are older than the walk wants (or another key). */
  readonly loKey = Buffer.alloc(DELTA_INDEX_KEY_SIZE);
}

/**
 * Push the layer's records for `key` (at `keyBuf[keyOff..]`) with floor ≤ lsn < cont onto `chain`,
 * newest first. Returns true when a will_init record ended the chain.
 */
export function collectDeltaChain(
  layer: Layer, keyBuf: Buffer, keyOff: number, floor: bigint, cont: bigint, chain: RecordChain, s: ReadScratch,
): boolean {
  if (cont <= floor) return false;
  keyBuf.copy(s.hiKey, 0, keyOff, keyOff + KEY_SIZE);
  s.hiKey.writeBigUInt64BE(cont - 1n, KEY_SIZE);
  keyBuf.copy(s.loKey, 0, keyOff, keyOff + KEY_SIZE);
  s.loKey.writeBigUInt64BE(floor, KEY_SIZE);
  const { btree, file, summary } = layer;
  const cur = s.cursor;
  // Entries ≤ hiKey and ≥ loKey are exactly (key, lsn) with floor ≤ lsn < cont.
  for (let ok = btree.seekLE(s.hiKey, 0, cur); ok; ok = btree.prev(cur)) {
    if (compareBytes(cur.node, cur.keyOff(), s.loKey, 0, DELTA_INDEX_KEY_SIZE) < 0) return false;
    const value = cur.value();
    const willInit = value % 2 === 1;
    const valueOffset = Math.floor(value / 2);
    file.readBlob(valueOffset, summary.valueBytes, chain.arena, s.slot);
    checkRecord(layer, cur.blk, s.slot, willInit, valueOffset);
    chain.pushSlot(s.slot);
    if (willInit) return true;
  }
  return false;
}
