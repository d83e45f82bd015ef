/**
 * Reading one image layer for GetPage@LSN. A key inside the layer's key range but absent from it
 * does not exist at that LSN (the caller turns a miss into NOT_FOUND).
 */
import { compareBytes } from './disk_btree';
import type { ReadScratch } from './delta_layer';
import { KEY_SIZE } from '../../key';
import { checkRecord, type Layer } from './layer_file';
import type { RecordChain } from './walredo';

/** Push the layer's record for `key` onto `chain`; false when the layer does not hold the key. */
export function lookupImage(layer: Layer, keyBuf: Uint8Array, keyOff: number, chain: RecordChain, s: ReadScratch): boolean {
  const cur = s.cursor;
  if (!layer.btree.seekLE(keyBuf, keyOff, cur)) return false;
  if (compareBytes(cur.node, cur.keyOff(), keyBuf, keyOff, KEY_SIZE) !== 0) return false;
  const value = cur.value();
  const valueOffset = Math.floor(value / 2);
  layer.file.readBlob(valueOffset, layer.summary.valueBytes, chain.arena, s.slot);
  // checkRecord also rejects an image entry whose will_init bit is clear.
  checkRecord(layer, cur.blk, s.slot, value % 2 === 1, valueOffset);
  chain.pushSlot(s.slot);
  return true;
}
