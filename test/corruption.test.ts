/**
 * Corruption: flipping a byte in each region of a layer file (summary, values, index leaves, index
 * root, checksum) or truncating it gives CORRUPT_LAYER naming the file, never a wrong page or a crash.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type PageKey, Repository, StrataError } from '../lib';
import { BLOCK_SIZE, SUMMARY } from '../lib/core/format';
import { describeEachCore } from './helpers/cores';
import { Oracle } from './helpers/oracle';
import { Rng } from './helpers/random';
import { type KeySpace, randomBatch } from './helpers/workload';

const KEYS: KeySpace = { rels: 2, blocks: 200 };
const TL_DIR = path.join('tenants', 't1', 'timelines', 'main');

interface Pristine {
  dir: string;
  oracle: Oracle;
  lsns: bigint[];
}

/** A repository with several delta layers and an image layer, all values compressed. */
async function buildPristine(impl: 'native' | 'ts'): Promise<Pristine> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `strata-corrupt-${impl}-`));
  const repo = await Repository.open(dir, { implementation: impl, compression: 'lz4' });
  const tl = await repo.createTimeline({ tenantId: 't1', timelineId: 'main' });
  const oracle = new Oracle();
  oracle.createTimeline('main');
  const rng = new Rng(42);
  const lsns: bigint[] = [];
  for (let round = 0; round < 3; round++) {
    const before = tl.lastRecordLsn;
    const batch = randomBatch(rng, KEYS, tl.lastRecordLsn, 900);
    tl.ingest(batch);
    oracle.ingest('main', batch);
    // Read inside each layer's LSN range too: at its last LSN an image layer may shadow it.
    lsns.push((before + tl.lastRecordLsn) / 2n, tl.lastRecordLsn);
    await tl.flush();
  }
  await tl.createImageLayer(lsns[3]); // the end of the second layer
  await repo.close();
  return { dir, oracle, lsns };
}

function copyRepo(src: string): string {
  const dst = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-corrupt-copy-'));
  fs.cpSync(src, dst, { recursive: true });
  return dst;
}

/** Read every page at every checkpoint LSN; count corrupt-layer errors; fail on any wrong page. */
async function readEverything(dir: string, impl: 'native' | 'ts', p: Pristine): Promise<{ corrupt: number; ok: number; messages: string[] }> {
  const result = { corrupt: 0, ok: 0, messages: [] as string[] };
  let repo: Repository;
  try {
    repo = await Repository.open(dir, { implementation: impl, pageCacheBytes: 16 * BLOCK_SIZE });
  } catch (e) {
    if (e instanceof StrataError && e.code === 'CORRUPT_LAYER') return { corrupt: 1, ok: 0, messages: [e.message] };
    throw e;
  }
  try {
    const tl = repo.getTimeline('t1', 'main');
    for (const key of p.oracle.allKeys() as PageKey[]) {
      for (const lsn of p.lsns) {
        const want = p.oracle.getPage('main', key, lsn);
        try {
          const got = await tl.getPage(key, lsn);
          if (want === null || !got.equals(want)) throw new Error(`WRONG PAGE for ${JSON.stringify(key)} at ${lsn}`);
          result.ok++;
        } catch (e) {
          if (e instanceof StrataError && e.code === 'CORRUPT_LAYER') {
            result.corrupt++;
            result.messages.push(e.message);
          } else if (!(e instanceof StrataError && e.code === 'PAGE_NOT_FOUND' && want === null)) {
            throw e;
          }
        }
      }
    }
  } finally {
    await repo.close();
  }
  return result;
}

describeEachCore('corrupt and truncated layer files (%s core)', (impl) => {
  let p: Pristine;

  beforeAll(async () => { p = await buildPristine(impl); });
  afterAll(() => fs.rmSync(p.dir, { recursive: true, force: true }));

  it('the pristine repository reads back exactly', async () => {
    const r = await readEverything(p.dir, impl, p);
    expect(r.corrupt).toBe(0);
    expect(r.ok).toBeGreaterThan(500);
  });

  /** Byte offsets worth flipping in a file, by region, from its own summary. */
  function regions(file: string): Record<string, number> {
    const buf = fs.readFileSync(file);
    const valueBlocks = buf.readUInt32BE(SUMMARY.valueBlkCount);
    const indexStart = buf.readUInt32BE(SUMMARY.indexStartBlk);
    const root = buf.readUInt32BE(SUMMARY.indexRootBlk);
    const r: Record<string, number> = {
      'summary magic': SUMMARY.magic + 1,
      'summary lsn range': SUMMARY.lsnEnd + 7,
      'summary padding': 4000,
      'summary checksum': BLOCK_SIZE - 1,
      'index leaf key': indexStart * BLOCK_SIZE + 10,
      'index root': root * BLOCK_SIZE + 5,
      'index checksum': indexStart * BLOCK_SIZE + BLOCK_SIZE - 2,
    };
    if (valueBlocks > 0) {
      r['first value block'] = BLOCK_SIZE + 3;
      r['last value block'] = valueBlocks * BLOCK_SIZE + 100;
    }
    return r;
  }

  it('a flipped byte in any region of any layer is CORRUPT_LAYER, never a wrong page', async () => {
    const layers = fs.readdirSync(path.join(p.dir, TL_DIR)).filter((f) => f !== 'manifest');
    expect(layers.length).toBe(4);
    for (const layer of layers) {
      for (const [region, offset] of Object.entries(regions(path.join(p.dir, TL_DIR, layer)))) {
        const dir = copyRepo(p.dir);
        try {
          const file = path.join(dir, TL_DIR, layer);
          const buf = fs.readFileSync(file);
          buf[offset] ^= 0x5a;
          fs.writeFileSync(file, buf);
          const r = await readEverything(dir, impl, p);
          expect(r.corrupt, `${layer} ${region}`).toBeGreaterThan(0);
          expect(r.messages[0]).toContain(layer);
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      }
    }
  });

  it('a truncated layer is CORRUPT_LAYER naming the file', async () => {
    const layers = fs.readdirSync(path.join(p.dir, TL_DIR)).filter((f) => f !== 'manifest');
    for (const layer of layers) {
      for (const cut of [1, BLOCK_SIZE, BLOCK_SIZE + 100]) {
        const dir = copyRepo(p.dir);
        try {
          const file = path.join(dir, TL_DIR, layer);
          fs.truncateSync(file, fs.statSync(file).size - cut);
          const r = await readEverything(dir, impl, p);
          expect(r.corrupt).toBeGreaterThan(0);
          expect(r.messages[0]).toContain(layer);
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      }
    }
  });

  it('image creation over a damaged value block fails with CORRUPT_LAYER naming the file, its read-ahead settled', async () => {
    const layers = fs.readdirSync(path.join(p.dir, TL_DIR)).filter((f) => f !== 'manifest' && f.includes('-'));
    // The newest delta layer: image creation at the last LSN reads it for every key.
    const delta = layers.filter((f) => /__[0-9A-F]{16}-[0-9A-F]{16}$/.test(f)).sort().pop() as string;
    const dir = copyRepo(p.dir);
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => { unhandled.push(e); };
    process.on('unhandledRejection', onUnhandled);
    try {
      const file = path.join(dir, TL_DIR, delta);
      const buf = fs.readFileSync(file);
      const valueBlocks = buf.readUInt32BE(SUMMARY.valueBlkCount);
      expect(valueBlocks).toBeGreaterThan(2);
      // A block in the middle: keys before it image fine, so the failure comes with a read ahead pending.
      buf[(1 + Math.floor(valueBlocks / 2)) * BLOCK_SIZE + 100] ^= 0x5a;
      fs.writeFileSync(file, buf);
      const repo = await Repository.open(dir, { implementation: impl, pageCacheBytes: 16 * BLOCK_SIZE });
      try {
        const tl = repo.getTimeline('t1', 'main');
        const err = await tl.createImageLayer(tl.lastRecordLsn).then(() => null, (e: unknown) => e);
        expect(err).toBeInstanceOf(StrataError);
        expect((err as StrataError).code).toBe('CORRUPT_LAYER');
        expect((err as StrataError).message).toContain(delta);
        await new Promise((r) => setImmediate(r));
        expect(unhandled).toEqual([]);
        // The writer was aborted (not refused as busy with an append) and its partial file removed.
        expect(fs.readdirSync(path.join(dir, TL_DIR)).sort()).toEqual([...layers, 'manifest'].sort());
      } finally {
        await repo.close();
      }
    } finally {
      process.off('unhandledRejection', onUnhandled);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a damaged manifest is CORRUPT_MANIFEST', async () => {
    const dir = copyRepo(p.dir);
    try {
      const file = path.join(dir, TL_DIR, 'manifest');
      const text = fs.readFileSync(file, 'utf8');
      fs.writeFileSync(file, text.replace('"format": 1', '"format": 2'));
      await expect(Repository.open(dir, { implementation: impl })).rejects.toMatchObject({ code: 'CORRUPT_MANIFEST' });
      fs.writeFileSync(file, text.slice(0, text.length - 20));
      await expect(Repository.open(dir, { implementation: impl })).rejects.toMatchObject({ code: 'CORRUPT_MANIFEST' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
