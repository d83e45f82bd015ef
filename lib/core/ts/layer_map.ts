/**
 * A layer map: the historic (on-disk) layers of one timeline, in the order the caller gave them,
 * and the candidate selection of docs/ARCHITECTURE.md ("GetPage@LSN").
 */
import { compareBytes } from './disk_btree';
import { StrataError } from '../../errors';
import { KEY_SIZE } from '../../key';
import type { Layer } from './layer_file';

export class LayerMap {
  layers: Layer[] = [];
}

/**
 * Collect into `out` the layers whose key range holds the key (key_start ≤ key < key_end), keeping
 * map order (the last tie-break). Returns how many. Done once per segment, not per layer visit.
 * Throws BAD_ARGUMENT when the map holds a closed layer.
 */
export function coveringLayers(map: LayerMap, keyBuf: Uint8Array, keyOff: number, out: Layer[]): number {
  let n = 0;
  for (const l of map.layers) {
    // Any closed layer fails the search of its map, covering or not (as the C++ core does).
    if (l.closed) throw new StrataError('BAD_ARGUMENT', `layer map holds closed layer ${l.handle} (${l.path})`);
    const s = l.summary;
    if (compareBytes(s.keyStart, 0, keyBuf, keyOff, KEY_SIZE) <= 0 && compareBytes(keyBuf, keyOff, s.keyEnd, 0, KEY_SIZE) < 0) {
      out[n++] = l;
    }
  }
  return n;
}

/**
 * Among covering layers with lsn_start < cont, the one to visit next: greatest min(lsn_end, cont);
 * on a tie an image beats a delta, then the greater lsn_start, then the later position in the map.
 * Returns its index in `covering`, or -1 when no layer is a candidate.
 */
export function pickLayer(covering: readonly Layer[], n: number, cont: bigint): number {
  let best = -1;
  let bestTop = 0n;
  for (let i = 0; i < n; i++) {
    const s = covering[i].summary;
    if (s.lsnStart >= cont) continue;
    const top = s.lsnEnd < cont ? s.lsnEnd : cont;
    if (best < 0 || top > bestTop || (top === bestTop && !beats(covering[best], covering[i]))) {
      best = i;
      bestTop = top;
    }
  }
  return best;
}

/** With equal tops, whether the earlier-positioned `a` stays ahead of the later `b`. */
function beats(a: Layer, b: Layer): boolean {
  if (a.isImage !== b.isImage) return a.isImage;
  return a.summary.lsnStart > b.summary.lsnStart;
}

/**
 * The lowest LSN a delta layer may contribute: above every image candidate that starts inside
 * (or at the start of) the delta's LSN range, whose records that image already contains.
 */
export function deltaFloor(covering: readonly Layer[], n: number, cont: bigint, delta: Layer): bigint {
  const start = delta.summary.lsnStart;
  let floor = start;
  for (let i = 0; i < n; i++) {
    const l = covering[i];
    if (!l.isImage) continue;
    const s = l.summary.lsnStart;
    if (s < cont && s >= start && s + 1n > floor) floor = s + 1n;
  }
  return floor;
}
