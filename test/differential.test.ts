/**
 * Differential test: the same seeded operations through a native and a TS repository produce
 * byte-identical layer files and manifests, and identical pages.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type CompressionName, PAGE_SIZE, type PageKey, Repository, type Timeline } from '../lib';
import { NATIVE_SKIP_NOTE, SKIP_NATIVE } from './helpers/cores';
import { Oracle } from './helpers/oracle';
import { Rng } from './helpers/random';
import { type KeySpace, randomBatch, randomKey } from './helpers/workload';

const KEYS: KeySpace = { rels: 4, blocks: 64 };
const STEPS = 400;

/** Run the seeded script on one implementation; returns the repository directory. */
async function runScript(impl: 'native' | 'ts', seed: number, compression: CompressionName): Promise<{ dir: string; pages: Buffer[] }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `strata-diff-${impl}-`));
  const rng = new Rng(seed);
  const repo = await Repository.open(dir, {
    implementation: impl, compression, checkpointDistance: 96 * 1024, pageCacheBytes: 64 * 8192,
    compactionThreshold: 3, compactionTargetSize: 64 * 1024,
    // Seed 2 runs the adaptive policy (the decoded-page cache is on at its default in all).
    pageCachePolicy: seed === 2 ? 'adaptive-s3fifo' : 'clock',
  });
  const names = ['main'];
  await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
  const pages: Buffer[] = [];
  for (let s = 0; s < STEPS; s++) {
    const tl = repo.getTimeline('t', rng.pick(names));
    const roll = rng.next();
    if (roll < 0.7) tl.ingest(randomBatch(rng, KEYS, tl.lastRecordLsn, rng.int(1, 40)));
    else if (roll < 0.8) await tl.flush();
    else if (roll < 0.83) await tl.compact({ force: rng.chance(0.3) });
    else if (roll < 0.85) await tl.gc({ horizon: rng.bigint(0n, tl.lastRecordLsn) });
    else if (roll < 0.9 && tl.lastRecordLsn > tl.startLsn) {
      const at = rng.bigint(tl.startLsn, tl.lastRecordLsn);
      await tl.createImageLayer(at).catch((e: { code: string }) => expect(e.code).toBe('LSN_GC_CUTOFF'));
    }
    else if (roll < 0.93 && names.length < 4) {
      const id = `b${names.length}`;
      const at = rng.bigint(tl.gcCutoffLsn, tl.lastRecordLsn);
      await repo.createTimeline({ tenantId: 't', timelineId: id, ancestorTimelineId: tl.timelineId, ancestorLsn: at });
      names.push(id);
    } else {
      const keys: PageKey[] = Array.from({ length: 16 }, () => randomKey(rng, KEYS));
      const lsn = rng.bigint(0n, tl.lastRecordLsn);
      for (const k of keys) pages.push(rng.chance(0.5) ? await tl.getPage(k, lsn).catch(codeOf) : readOne(tl, k, lsn, rng.int(0, 64)));
      // And the batch API once, when every key has a page there (otherwise the batch fails whole).
      const into = Buffer.alloc(keys.length * PAGE_SIZE);
      try {
        tl.readPages(keys, lsn, into);
        pages.push(into);
      } catch (e) {
        pages.push(codeOf(e));
      }
    }
  }
  await repo.close();
  return { dir, pages };
}

function codeOf(e: unknown): Buffer {
  return Buffer.from((e as { code: string }).code);
}

/** readPage (sync) into a caller buffer at `offset`; the page, or the error code. */
function readOne(tl: Timeline, key: PageKey, lsn: bigint, offset: number): Buffer {
  const into = Buffer.alloc(offset + PAGE_SIZE);
  try {
    tl.readPage(key, lsn, into, offset);
    return into.subarray(offset);
  } catch (e) {
    return codeOf(e);
  }
}

function filesUnder(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const f of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const full = path.join(dir, f);
    if (fs.statSync(full).isFile()) out.set(f, fs.readFileSync(full));
  }
  return out;
}

// Under STRATA_IMPL=ts there is no second core: the same names say so, and each case proves at
// least that the TS run is deterministic (a second run writes the same files).
describe(`native and TS cores are byte-identical${NATIVE_SKIP_NOTE}`, () => {
  it.each([
    [1, 'lz4'], [2, 'zstd'], [3, 'none'],
  ] as const)('seed %i, %s: same files, same pages', async (seed, compression) => {
    const ts = await runScript('ts', seed, compression);
    try {
      const tsFiles = filesUnder(ts.dir);
      expect([...tsFiles.keys()].filter((f) => f.includes('__')).length).toBeGreaterThan(5);
      // L1 layers have narrow key ranges, so their names do not span the whole keyspace.
      expect([...tsFiles.keys()].some((f) => f.includes('__') && !f.includes('000000000000000000000000000000000000-FFFF'))).toBe(true);
      if (SKIP_NATIVE) {
        const again = await runScript('ts', seed, compression);
        expect(filesUnder(again.dir)).toEqual(tsFiles);
        fs.rmSync(again.dir, { recursive: true, force: true });
        return;
      }
      const native = await runScript('native', seed, compression);
      try {
        const nativeFiles = filesUnder(native.dir);
        expect([...nativeFiles.keys()].sort()).toEqual([...tsFiles.keys()].sort());
        for (const [name, bytes] of tsFiles) expect(nativeFiles.get(name)!.equals(bytes), name).toBe(true);
        expect(native.pages.length).toBe(ts.pages.length);
        native.pages.forEach((p, i) => expect(p.equals(ts.pages[i])).toBe(true));
      } finally {
        fs.rmSync(native.dir, { recursive: true, force: true });
      }
    } finally {
      fs.rmSync(ts.dir, { recursive: true, force: true });
    }
  });

  it(`reads agree with the oracle on files written by the other core${NATIVE_SKIP_NOTE}`, async () => {
    const writer = SKIP_NATIVE ? 'ts' : 'native';
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-cross-'));
    try {
      const rng = new Rng(9);
      const oracle = new Oracle();
      oracle.createTimeline('main');
      let repo = await Repository.open(dir, { implementation: writer, compression: 'zstd' });
      const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
      for (let i = 0; i < 20; i++) {
        const b = randomBatch(rng, KEYS, tl.lastRecordLsn, 50);
        tl.ingest(b);
        oracle.ingest('main', b);
        if (i % 5 === 4) await tl.flush();
      }
      await repo.close();
      repo = await Repository.open(dir, { implementation: 'ts' });
      const t2 = repo.getTimeline('t', 'main');
      for (const k of oracle.allKeys()) {
        const want = oracle.getPage('main', k, t2.lastRecordLsn);
        if (want) expect((await t2.getPage(k, t2.lastRecordLsn)).equals(want)).toBe(true);
      }
      await repo.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
