/**
 * Image creation skips a partition that images together already cover at diskConsistentLsn
 * (lib/engine/compaction.ts, newestCoveringImageLsn). Keys added above that LSN change the
 * partitioning without moving it, so a second run cuts partitions across the first run's images;
 * it used to image them again at the same LSN, overlapping images that wasted bytes and once led
 * GC to remove both (test/gc_rules.test.ts).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type PageKey, PAGE_SIZE, Repository, type RepositoryOptions, type Timeline, type WalRecord } from '../lib';
import { newestCoveringImageLsn } from '../lib/engine/compaction';
import type { LayerDesc } from '../lib/engine/manifest';
import { describeEachCore } from './helpers/cores';

const K = (n: number): string => n.toString(16).toUpperCase().padStart(36, '0');

function image(keyStart: number, keyEnd: number, lsn: bigint): LayerDesc {
  return { fileName: `image-${keyStart}-${keyEnd}-${lsn}`, kind: 'image', level: 0, keyStart: K(keyStart), keyEnd: K(keyEnd), lsnStart: lsn, lsnEnd: lsn + 1n, sizeBytes: 1 };
}

function delta(keyStart: number, keyEnd: number, lsnStart: bigint, lsnEnd: bigint): LayerDesc {
  return { fileName: `delta-${keyStart}-${keyEnd}-${lsnStart}`, kind: 'delta', level: 1, keyStart: K(keyStart), keyEnd: K(keyEnd), lsnStart, lsnEnd, sizeBytes: 1 };
}

describe('newestCoveringImageLsn', () => {
  it('takes the union of images at one LSN, none covering the range alone', () => {
    const layers = [image(0, 10, 100n), image(10, 20, 100n), image(20, 30, 100n), delta(0, 30, 1n, 101n)];
    expect(newestCoveringImageLsn(layers, K(5), K(25))).toBe(100n);
  });

  it('is, over the range, the oldest of each key\'s newest image', () => {
    const layers = [image(0, 30, 100n), image(5, 12, 300n), image(12, 30, 200n)];
    expect(newestCoveringImageLsn(layers, K(5), K(30))).toBe(200n);
    expect(newestCoveringImageLsn(layers, K(0), K(30))).toBe(100n); // [0, 5) has only the old one
    expect(newestCoveringImageLsn(layers, K(6), K(11))).toBe(300n);
  });

  it('is -1 when some key of the range has no image, and ignores deltas', () => {
    const layers = [image(0, 10, 100n), image(11, 20, 100n), delta(0, 20, 1n, 500n)];
    expect(newestCoveringImageLsn(layers, K(0), K(20))).toBe(-1n);
    expect(newestCoveringImageLsn(layers, K(0), K(10))).toBe(100n);
    expect(newestCoveringImageLsn([], K(0), K(10))).toBe(-1n);
  });
});

const keyOf = (blockNum: number): PageKey => ({ spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0, blockNum });
const pageOf = (blockNum: number): Buffer => Buffer.alloc(PAGE_SIZE, (blockNum % 250) + 1);

describeEachCore('image creation at one LSN with other partitions (%s core)', (impl) => {
  let dir: string;
  let repo: Repository;
  // Partitions of compactionTargetSize / 8192 = 4 keys each.
  const options: RepositoryOptions = { implementation: impl, compactionTargetSize: 4 * PAGE_SIZE };

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `strata-imgcov-${impl}-`));
    repo = await Repository.open(dir, options);
  });

  afterEach(async () => {
    await repo.close().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function ingestBlocks(tl: Timeline, blocks: readonly number[]): void {
    let lsn = tl.lastRecordLsn;
    const recs: WalRecord[] = blocks.map((b) => ({ lsn: (lsn += 8n), key: keyOf(b), kind: 'image', page: pageOf(b) }));
    tl.ingest(recs);
  }

  async function expectPages(tl: Timeline, blocks: readonly number[], lsn: bigint): Promise<void> {
    for (const b of blocks) expect((await tl.getPage(keyOf(b), lsn)).equals(pageOf(b))).toBe(true);
  }

  it('does not image a partition the first run\'s images cover together, forced or not', async () => {
    const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
    const even = Array.from({ length: 12 }, (_, i) => 2 * i); // blocks 0, 2, .., 22
    ingestBlocks(tl, even);
    await tl.flush();
    const first = await tl.compact({ force: true });
    const lsn = tl.diskConsistentLsn;
    // Partitions {0 2 4 6} {8 10 12 14} {16 18 20 22}, each imaged at lsn.
    expect(first.imageLayersCreated.map((l) => l.lsnStart)).toEqual([lsn, lsn, lsn]);

    // Block 1 is new and stays in memory, above lsn: the partitions become {0 1 2 4} {6 8 10 12}
    // {14 16 18 20} {22}, cut across the first run's images, while diskConsistentLsn stays.
    ingestBlocks(tl, [1]);
    const before = tl.layers().map((l) => l.fileName).sort();
    const forced = await tl.compact({ force: true });
    expect(tl.diskConsistentLsn).toBe(lsn);
    expect(forced.imageLayersCreated).toEqual([]);
    expect((await tl.compact()).imageLayersCreated).toEqual([]);
    expect(tl.layers().map((l) => l.fileName).sort()).toEqual(before);

    await expectPages(tl, even, lsn);
    await expectPages(tl, [...even, 1], tl.lastRecordLsn);
    await expect(tl.getPage(keyOf(1), lsn)).rejects.toMatchObject({ code: 'PAGE_NOT_FOUND' });
  });
});
