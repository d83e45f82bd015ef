/**
 * Garbage collection: which whole layers a timeline no longer needs, given its GC cutoff and the
 * branch points of its children. Like Neon's legacy GC it removes whole layers only.
 *
 * A layer L may go when
 *  1. all its records are at or below the cutoff (L.lsnEnd, exclusive, ≤ cutoff + 1);
 *  2. an image layer I ≠ L covering L's whole key range shadows it for every read at or above the
 *     cutoff: I.lsnStart ≤ cutoff and I.lsnEnd ≥ L.lsnEnd (the read walk reaches I before L and
 *     stops there, found or absent);
 *  3. no child branch can need it: L starts above every branch point (a child reads this timeline
 *     at LSNs up to its branch point). This keeps everything at or below the newest branch point
 *     forever, Neon's known "staircase" limitation, which gc-compaction (future work) lifts.
 * Condition 2 is judged against the layers present before this pass, and covers are transitive
 * (a shadowing image that is itself removed is shadowed by a newer one that also covers L).
 */
import type { Lsn } from './lsn';
import type { LayerDesc } from './manifest';

export function layersToRemove(layers: readonly LayerDesc[], cutoff: Lsn, branchPoints: readonly Lsn[]): LayerDesc[] {
  const newestBranchPoint = branchPoints.reduce<Lsn | null>((m, p) => (m === null || p > m ? p : m), null);
  const images = layers.filter((l) => l.kind === 'image' && l.lsnStart <= cutoff);
  return layers.filter((l) => {
    if (l.lsnEnd > cutoff + 1n) return false;
    if (newestBranchPoint !== null && l.lsnStart <= newestBranchPoint) return false;
    return images.some((i) => i !== l && i.lsnEnd >= l.lsnEnd && i.keyStart <= l.keyStart && l.keyEnd <= i.keyEnd);
  });
}
