/**
 * Which layers a key listing may skip. An image layer at LSN X holds exactly the keys that exist at
 * X over its range (a key it lacks does not exist there), so for a listing at an LSN at or above X
 * it stands for every older layer's keys in that range: a key only an older layer holds did not
 * exist at X, and a key that exists again later was written above X, in a newer layer. Image
 * creation lists its timeline's keys before each pass; over W7's storm that was a merge of a
 * hundred-odd layers that every forced pass had already imaged, the largest cost left on the
 * event loop (PERFORMANCE.md).
 */
import type { Lsn } from '../lsn';
import type { LayerDesc } from './manifest';

/** An image layer's key range (hex, as LayerDesc) and lsnEnd (its LSN + 1). */
export interface ImageCover {
  keyStart: string;
  keyEnd: string;
  lsnEnd: Lsn;
}

/**
 * The covers a listing of one timeline's chain at `lsn` may use: that timeline's own images at or
 * below `lsn`, by key start. (An ancestor's images are not used: one above the branch point may
 * lack keys the child still has.)
 */
export interface KeyCoverRule {
  images: readonly ImageCover[];
  /** True for an ancestor's layers: everything of an ancestor the child sees is below its images. */
  coversAll: boolean;
}

/** No layer skipped. */
export const NO_COVER: KeyCoverRule = { images: [], coversAll: false };

/** The images of `descs` (a timeline's layers) a listing at `lsn` may use, by key start. */
export function imageCoversAt(descs: readonly LayerDesc[], lsn: Lsn): ImageCover[] {
  return descs
    .filter((d) => d.kind === 'image' && d.lsnEnd <= lsn + 1n)
    .map((d) => ({ keyStart: d.keyStart, keyEnd: d.keyEnd, lsnEnd: d.lsnEnd }))
    .sort((a, b) => (a.keyStart < b.keyStart ? -1 : a.keyStart > b.keyStart ? 1 : 0));
}

/** Does `cover` stand for `layer`'s keys? A delta whose records are all at or below the image's LSN, or an older image. */
function stands(cover: ImageCover, layer: LayerDesc, coversAll: boolean): boolean {
  if (coversAll) return true;
  return layer.kind === 'delta' ? layer.lsnEnd <= cover.lsnEnd : layer.lsnEnd < cover.lsnEnd;
}

/**
 * The parts of `layer`'s key range from `from` (hex) on that no cover of `rule` stands for, as
 * ascending, disjoint [start, end) hex pairs: the ranges its keys must still be listed over.
 */
export function uncoveredRanges(layer: LayerDesc, from: string, rule: KeyCoverRule): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let at = layer.keyStart > from ? layer.keyStart : from;
  const end = layer.keyEnd;
  for (const c of rule.images) {
    if (at >= end) break;
    if (c.keyEnd <= at || !stands(c, layer, rule.coversAll)) continue;
    if (c.keyStart >= end) break; // sorted by start: no later cover reaches back into the range
    if (c.keyStart > at) out.push([at, c.keyStart]);
    if (c.keyEnd > at) at = c.keyEnd;
  }
  if (at < end) out.push([at, end]);
  return out;
}
