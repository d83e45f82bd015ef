/**
 * Garbage collection: which whole layers a timeline no longer needs, given its GC cutoff and the
 * branch points of its children. Like Neon's legacy GC it removes whole layers only.
 *
 * A layer L may go when
 *  1. all its records are at or below the cutoff (L.lsnEnd, exclusive, ≤ cutoff + 1);
 *  2. image layers I ≠ L whose key ranges together cover L's shadow it for every read at or above
 *     the cutoff: each has I.lsnStart ≤ cutoff and is newer than L — I.lsnEnd ≥ L.lsnEnd for a
 *     delta L, I.lsnEnd > L.lsnEnd for an image L (for any key of L the read walk reaches such an
 *     image before L and stops there, found or absent). An image at L's own LSN does not count:
 *     two overlapping images at one LSN (a partition image over a hot image of part of it, say)
 *     would each shadow the other, and both would go;
 *  3. no child branch can need it: L starts above every branch point (a child reads this timeline
 *     at LSNs up to its branch point). This keeps everything at or below the newest branch point
 *     forever, Neon's known "staircase" limitation, which gc-compaction (future work) lifts.
 * Condition 2 is judged against the layers present before this pass, and covers are transitive
 * (a shadowing image that is itself removed is shadowed by a strictly newer one that also covers
 * L; LSNs only grow along such a chain, so it ends at an image that stays).
 */
import type { Lsn } from '../lsn';
import type { LayerDesc } from './manifest';

export function layersToRemove(layers: readonly LayerDesc[], cutoff: Lsn, branchPoints: readonly Lsn[]): LayerDesc[] {
  const newestBranchPoint = branchPoints.reduce<Lsn | null>((m, p) => (m === null || p > m ? p : m), null);
  const images = layers.filter((l) => l.kind === 'image' && l.lsnStart <= cutoff);
  return layers.filter((l) => {
    if (l.lsnEnd > cutoff + 1n) return false;
    if (newestBranchPoint !== null && l.lsnStart <= newestBranchPoint) return false;
    return coveredBy(l, images.filter((i) => i !== l && shadows(i, l)));
  });
}

/** Whether image `i` is newer than layer `l` (condition 2): strictly, when l is an image too. */
function shadows(i: LayerDesc, l: LayerDesc): boolean {
  return l.kind === 'image' ? i.lsnEnd > l.lsnEnd : i.lsnEnd >= l.lsnEnd;
}

/** Whether the union of the images' key ranges covers the layer's (ranges are same-length hex strings). */
function coveredBy(l: LayerDesc, images: readonly LayerDesc[]): boolean {
  let pos = l.keyStart;
  for (const i of [...images].sort((a, b) => (a.keyStart < b.keyStart ? -1 : 1))) {
    if (i.keyStart > pos) break;
    if (i.keyEnd > pos) pos = i.keyEnd;
    if (pos >= l.keyEnd) return true;
  }
  return pos >= l.keyEnd;
}
