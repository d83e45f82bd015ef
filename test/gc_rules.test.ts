/**
 * GC's removal rule (lib/engine/gc.ts) on hand-built layer maps. The first case is what the
 * model-based test found end to end (seed 1 with reads at the newest LSN): compaction's image
 * creation ran twice at one LSN with other key partitions, the two overlapping image sets each
 * shadowed the other, GC removed both, and a page above the cutoff was gone.
 */
import { describe, expect, it } from 'vitest';
import { layersToRemove } from '../lib/engine/gc';
import type { LayerDesc } from '../lib/engine/manifest';

const K = (n: number): string => n.toString(16).toUpperCase().padStart(36, '0');

function layer(kind: 'image' | 'delta', keyStart: number, keyEnd: number, lsnStart: bigint, lsnEnd: bigint): LayerDesc {
  return { fileName: `${kind}-${keyStart}-${keyEnd}-${lsnStart}-${lsnEnd}`, kind, level: kind === 'image' ? 0 : 1, keyStart: K(keyStart), keyEnd: K(keyEnd), lsnStart, lsnEnd, sizeBytes: 1 };
}

describe('layersToRemove', () => {
  it('keeps overlapping images at one LSN when nothing newer covers them', () => {
    const a = layer('image', 0, 20, 100n, 101n);
    const b = layer('image', 10, 30, 100n, 101n);
    const c = layer('image', 20, 40, 100n, 101n);
    const d = layer('image', 0, 10, 100n, 101n);
    expect(layersToRemove([a, b, c, d], 500n, [])).toEqual([]);
  });

  it('removes an image a strictly newer image (≤ cutoff) covers, and the deltas below both', () => {
    const old = layer('image', 0, 40, 100n, 101n);
    const delta = layer('delta', 0, 40, 101n, 200n);
    const newer = layer('image', 0, 40, 199n, 200n);
    const removed = layersToRemove([old, delta, newer], 500n, []).map((l) => l.fileName);
    expect(removed.sort()).toEqual([old.fileName, delta.fileName].sort());
  });

  it('lets an image at a delta\'s last LSN shadow it, but not an image above the cutoff', () => {
    const delta = layer('delta', 0, 40, 1n, 200n);
    const atEnd = layer('image', 0, 40, 199n, 200n);
    expect(layersToRemove([delta, atEnd], 300n, []).map((l) => l.fileName)).toEqual([delta.fileName]);
    const above = layer('image', 0, 40, 301n, 302n);
    expect(layersToRemove([delta, above], 300n, [])).toEqual([]);
  });
});
