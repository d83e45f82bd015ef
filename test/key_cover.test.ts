/**
 * Key listings skip what images stand for (lib/engine/key_cover.ts): the ranges left to list
 * against a per-key oracle, and image creation over covered layers against the pages written.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type PageKey, PAGE_SIZE, Repository, type Timeline, type WalRecord } from '../lib';
import { type ImageCover, imageCoversAt, uncoveredRanges } from '../lib/engine/key_cover';
import type { LayerDesc } from '../lib/engine/manifest';
import { describeEachCore } from './helpers/cores';
import { Rng } from './helpers/random';

const K = (n: number): string => n.toString(16).toUpperCase().padStart(36, '0');
const KEYS = 64;

function layer(rng: Rng, i: number): LayerDesc {
  const a = rng.int(0, KEYS - 1);
  const b = rng.int(a + 1, KEYS);
  const lsnStart = BigInt(rng.int(1, 40)) * 10n;
  const kind = rng.chance(0.4) ? 'image' : 'delta';
  const lsnEnd = kind === 'image' ? lsnStart + 1n : lsnStart + BigInt(rng.int(1, 100));
  return { fileName: `l${i}`, kind, level: kind === 'image' ? 0 : 1, keyStart: K(a), keyEnd: K(b), lsnStart, lsnEnd, sizeBytes: 1 };
}

/** Does some image of `images` stand for `l`'s key `k` (the rule key_cover.ts states, key by key)? */
function coveredByOracle(k: number, l: LayerDesc, images: readonly ImageCover[], coversAll: boolean): boolean {
  return images.some((c) => c.keyStart <= K(k) && K(k) < c.keyEnd
    && (coversAll || (l.kind === 'delta' ? l.lsnEnd <= c.lsnEnd : l.lsnEnd < c.lsnEnd)));
}

describe('uncoveredRanges', () => {
  it('lists exactly the keys of a layer, from a start, that no usable image stands for', () => {
    const rng = new Rng(97);
    for (let round = 0; round < 300; round++) {
      const descs = Array.from({ length: rng.int(1, 12) }, (_, i) => layer(rng, i));
      const at = BigInt(rng.int(0, 500));
      const images = imageCoversAt(descs, at);
      for (const c of images) expect(c.lsnEnd <= at + 1n).toBe(true);
      const coversAll = rng.chance(0.2);
      const from = rng.int(0, KEYS);
      for (const l of descs) {
        const ranges = uncoveredRanges(l, K(from), { images, coversAll });
        for (let r = 1; r < ranges.length; r++) expect(ranges[r - 1][1] < ranges[r][0]).toBe(true); // ascending, disjoint, not touching
        const listed = (k: number): boolean => ranges.some(([s, e]) => s <= K(k) && K(k) < e);
        for (let k = 0; k < KEYS; k++) {
          const inLayer = K(k) >= l.keyStart && K(k) < l.keyEnd && k >= from;
          expect(listed(k), `round ${round}, ${l.fileName}, key ${k}`).toBe(inLayer && !coveredByOracle(k, l, images, coversAll));
        }
      }
    }
  });

  it('never lets an image stand for itself or for an image at its own LSN', () => {
    const a: LayerDesc = { fileName: 'a', kind: 'image', level: 0, keyStart: K(0), keyEnd: K(10), lsnStart: 50n, lsnEnd: 51n, sizeBytes: 1 };
    const b: LayerDesc = { ...a, fileName: 'b', keyStart: K(5), keyEnd: K(20) };
    const images = imageCoversAt([a, b], 50n);
    expect(uncoveredRanges(a, K(0), { images, coversAll: false })).toEqual([[K(0), K(10)]]);
    expect(uncoveredRanges(b, K(0), { images, coversAll: false })).toEqual([[K(5), K(20)]]);
    expect(imageCoversAt([a, b], 49n)).toEqual([]); // a listing below an image may not use it
  });
});

const keyOf = (blockNum: number): PageKey => ({ spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0, blockNum });

describeEachCore('image creation over layers images already stand for (%s core)', (impl) => {
  let dir: string;
  let repo: Repository;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `strata-keycover-${impl}-`));
    // Partitions of 8 keys: several images per pass.
    repo = await Repository.open(dir, { implementation: impl, compactionTargetSize: 8 * PAGE_SIZE });
  });

  afterEach(async () => {
    await repo.close().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Writes blocks (each page filled with its block and round) and notes them in the oracle. */
  function write(tl: Timeline, oracle: Map<number, number>, blocks: readonly number[], round: number): void {
    let lsn = tl.lastRecordLsn;
    const recs: WalRecord[] = blocks.map((b) => ({ lsn: (lsn += 8n), key: keyOf(b), kind: 'image', page: Buffer.alloc(PAGE_SIZE, (b * 7 + round) % 251) }));
    tl.ingest(recs);
    for (const b of blocks) oracle.set(b, round);
  }

  async function expectOracle(tl: Timeline, oracle: ReadonlyMap<number, number>, lsn: bigint, what: string): Promise<void> {
    for (const [b, round] of oracle) {
      const page = await tl.getPage(keyOf(b), lsn);
      expect(page[0], `${what}: block ${b}`).toBe((b * 7 + round) % 251);
    }
  }

  it('keeps every key: new keys above an image, keys only older layers hold, an ancestor\'s keys', async () => {
    const rng = new Rng(impl === 'native' ? 3 : 4);
    const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
    const oracle = new Map<number, number>();
    let round = 0;
    for (let pass = 0; pass < 4; pass++) {
      // Several L0s per pass, new keys among old ones, then forced images over them all.
      for (let f = 0; f < 3; f++) {
        write(tl, oracle, Array.from({ length: rng.int(5, 25) }, () => rng.int(0, 120)), ++round);
        await tl.flush();
      }
      const report = await tl.compact({ force: true });
      expect(report.imageLayersCreated.length, `pass ${pass}`).toBeGreaterThan(0);
      await expectOracle(tl, oracle, tl.diskConsistentLsn, `pass ${pass}`);
    }
    // An image below the newest ones may not lean on them: keys written since are not in it.
    const older = new Map(oracle);
    const olderLsn = tl.lastRecordLsn;
    write(tl, oracle, [200, 201, 202], ++round);
    await tl.flush();
    await tl.compact({ force: true });
    await tl.createImageLayer(olderLsn);
    await expectOracle(tl, older, olderLsn, 'an image below the newest');
    await expect(tl.getPage(keyOf(200), olderLsn)).rejects.toMatchObject({ code: 'PAGE_NOT_FOUND' });

    // A branch: its own images stand for every ancestor layer it sees.
    const child = await repo.createTimeline({ tenantId: 't', timelineId: 'child', ancestorTimelineId: 'main', ancestorLsn: tl.lastRecordLsn });
    const childOracle = new Map(oracle);
    for (let pass = 0; pass < 2; pass++) {
      write(child, childOracle, Array.from({ length: 15 }, () => rng.int(100, 300)), ++round);
      await child.flush();
      await child.compact({ force: true });
      await expectOracle(child, childOracle, child.diskConsistentLsn, `child pass ${pass}`);
    }
  });
});
