/**
 * Issue 15, on-demand download and local eviction (docs/REMOTE.md, "On-demand download and
 * eviction"), on both backends — a local directory always, S3 against a real radosgw
 * (test/helpers/s3_server.ts, one server for this file) when it can run here, skipped with the
 * reason otherwise:
 *
 *  - attach downloads only the indexes; every page at every retained LSN, read through async reads
 *    that download on demand, matches the oracle; synchronous reads of a remote-only layer fail with
 *    LAYER_NOT_LOCAL; a reopen of the attached directory and a compaction there work;
 *  - concurrent readers of one remote-only layer share one download;
 *  - under a small localLayerBudgetBytes, a random mix of concurrent reads returns oracle pages and
 *    the budget holds after every step; layers not yet in a durable index are never evicted; a
 *    reopen after evictions works;
 *  - an idle compaction judges image creation on the index: partition images that tile the
 *    keyspace bound the deltas it counts, so it downloads nothing.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ImplementationName, isStrataError, type PageKey, Repository, type Timeline, type WalRecord } from '../../lib';
import { INDEX_NAME, splitGeneration } from '../../lib/engine/remote_layout';
import { REMOTE_LAYERS_FILE } from '../../lib/engine/layer_residency';
import { openRemoteStorage } from '../../lib/remote/open_remote_storage';
import {
  type GetOptions, type PutBody, type PutOptions, type PutResult, type RemoteObjectInfo, RemoteStorageError, type RemoteStorage,
} from '../../lib/remote/remote_storage';
import { IMPLEMENTATIONS } from '../helpers/cores';
import { Oracle } from '../helpers/oracle';
import { Rng } from '../helpers/random';
import { s3Availability, S3Server } from '../helpers/s3_server';
import { type KeySpace, randomBatch, randomPage } from '../helpers/workload';

const s3 = s3Availability();
const TENANT = 'tenant1';
const KEYSPACE: KeySpace = { rels: 2, blocks: 10 };

let server: S3Server | null = null;
const tmpRoots: string[] = [];

beforeAll(async () => {
  if (!s3.ok) return;
  server = await S3Server.start();
  console.log(`radosgw test server up in ${(server.startMs / 1000).toFixed(1)} s at ${server.endpoint}`);
}, 240_000);

afterAll(async () => {
  await server?.destroy();
  for (const d of tmpRoots) fs.rmSync(d, { recursive: true, force: true });
});

function tmpDir(tag: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `strata-ondemand-${tag}-`));
  tmpRoots.push(d);
  return d;
}

/**
 * Counts getToFile calls per key (each after a short pause, so concurrent readers overlap), and
 * holds index puts back while `holdIndexes` (layers go up, no index names them yet).
 */
class CountingStorage implements RemoteStorage {
  readonly downloadsByKey = new Map<string, number>();
  holdIndexes = false;
  private held: Array<() => void> = [];
  constructor(private readonly inner: RemoteStorage, private readonly downloadPauseMs = 0) {}
  get kind(): RemoteStorage['kind'] { return this.inner.kind; }
  get description(): string { return this.inner.description; }
  async put(key: string, body: PutBody, options?: PutOptions): Promise<PutResult> {
    if (splitGeneration(key.slice(key.lastIndexOf('/') + 1))?.name === INDEX_NAME) {
      while (this.holdIndexes) await new Promise<void>((resolve) => this.held.push(resolve));
    }
    return this.inner.put(key, body, options);
  }
  release(): void {
    this.holdIndexes = false;
    for (const r of this.held.splice(0)) r();
  }
  get(key: string, options?: GetOptions): Promise<Buffer> { return this.inner.get(key, options); }
  async getToFile(key: string, file: string): Promise<RemoteObjectInfo> {
    this.downloadsByKey.set(key, (this.downloadsByKey.get(key) ?? 0) + 1);
    if (this.downloadPauseMs > 0) await new Promise((resolve) => setTimeout(resolve, this.downloadPauseMs));
    return this.inner.getToFile(key, file);
  }
  head(key: string): Promise<RemoteObjectInfo | null> { return this.inner.head(key); }
  list(prefix: string): Promise<RemoteObjectInfo[]> { return this.inner.list(prefix); }
  delete(key: string): Promise<void> { return this.inner.delete(key); }
  close(): Promise<void> { return this.inner.close(); }
}

interface Backend {
  title: string;
  available: boolean;
  /** A fresh remote store; each call of the result opens another client on it. */
  fresh(): () => Promise<RemoteStorage>;
}

const backends: Backend[] = [
  {
    title: 'local directory',
    available: true,
    fresh: () => {
      const dir = tmpDir('store');
      return () => openRemoteStorage({ type: 'local', path: dir });
    },
  },
  {
    title: `S3 (radosgw)${s3.ok ? '' : ` — skipped: ${s3.reason}`}`,
    available: s3.ok,
    fresh: () => {
      const prefix = `od-${crypto.randomBytes(6).toString('hex')}`;
      const srv = server as S3Server;
      return () => openRemoteStorage(srv.config(prefix), srv.options());
    },
  },
];

function allKeys(): PageKey[] {
  const keys: PageKey[] = [];
  for (let r = 0; r < KEYSPACE.rels; r++) {
    for (const forkNum of [0, 1]) {
      for (let b = 0; b < KEYSPACE.blocks; b++) keys.push({ spcOid: 1663, dbOid: 5, relNumber: 16384 + r, forkNum, blockNum: b });
    }
  }
  return keys;
}

interface Workload {
  oracle: Oracle;
  lsns: Map<string, bigint[]>;
}

function ingest(tl: Timeline, w: Workload, records: WalRecord[]): void {
  tl.ingest(records);
  w.oracle.ingest(tl.timelineId, records);
  w.lsns.get(tl.timelineId)?.push(...records.map((r) => r.lsn));
}

/**
 * main: an image of every page, then `segments` × (3 flushed batches, an image layer); a branch
 * `br` after the first segment with flushed batches of its own; optionally a compaction and a GC.
 */
async function buildTenant(repo: Repository, seed: number, segments: number, rewrite: boolean): Promise<Workload> {
  const rng = new Rng(seed);
  const w: Workload = { oracle: new Oracle(), lsns: new Map([['main', []], ['br', []]]) };
  const main = await repo.createTimeline({ tenantId: TENANT, timelineId: 'main' });
  w.oracle.createTimeline('main');
  const init: WalRecord[] = allKeys().map((key, i) => ({ lsn: BigInt(0x100 + i * 8), key, kind: 'image', page: randomPage(rng) }));
  main.ingest(init);
  w.oracle.ingest('main', init);
  await main.flush();
  let br: Timeline | null = null;
  for (let s = 0; s < segments; s++) {
    for (let f = 0; f < 3; f++) {
      ingest(main, w, randomBatch(rng, KEYSPACE, main.lastRecordLsn, 12));
      await main.flush();
      if (br !== null) {
        ingest(br, w, randomBatch(rng, KEYSPACE, br.lastRecordLsn, 8));
        await br.flush();
      }
    }
    if (s === 0) {
      br = await repo.createTimeline({ tenantId: TENANT, timelineId: 'br', ancestorTimelineId: 'main' });
      w.oracle.createTimeline('br', 'main', br.ancestorLsn);
    }
    await main.createImageLayer(main.lastRecordLsn);
  }
  if (rewrite) {
    ingest(main, w, randomBatch(rng, KEYSPACE, main.lastRecordLsn, 12));
    await main.flush();
    await main.compact({ force: true });
    const lsns = w.lsns.get('main') as bigint[];
    await main.gc({ horizon: main.lastRecordLsn - lsns[Math.floor(lsns.length / 2)] });
  }
  return w;
}

async function checkPage(tl: Timeline, w: Workload, key: PageKey, lsn: bigint, got: Buffer): Promise<void> {
  const want = w.oracle.getPage(tl.timelineId, key, lsn);
  if (want === null || !got.equals(want)) throw new Error(`${tl.timelineId}: page ${JSON.stringify(key)} at ${lsn} differs from the oracle`);
}

/** Every page at every record LSN at or above the cutoff, by async reads; returns the pages checked. */
async function checkAll(repo: Repository, w: Workload): Promise<number> {
  const keys = allKeys();
  let pages = 0;
  for (const [id, lsns] of w.lsns) {
    const tl = repo.getTimeline(TENANT, id);
    for (const lsn of lsns) {
      if (lsn < tl.gcCutoffLsn) continue;
      const got = await tl.getPages(keys, lsn);
      for (let i = 0; i < keys.length; i++) await checkPage(tl, w, keys[i], lsn, got[i]);
      pages += keys.length;
    }
  }
  return pages;
}

async function syncAll(repo: Repository): Promise<void> {
  for (const tl of repo.listTimelines(TENANT)) await tl.syncRemote();
}

function expectCodeSync(fn: () => unknown, code: 'LAYER_NOT_LOCAL'): string {
  try {
    fn();
  } catch (e) {
    if (!isStrataError(e, code)) throw new Error(`expected ${code}, got ${String(e)}`, { cause: e });
    return (e as Error).message;
  }
  throw new Error(`expected ${code}, but it succeeded`);
}

/** Layer files present in a timeline directory. */
function localLayerFiles(repo: Repository, id: string): string[] {
  const dir = path.join(repo.dir, 'tenants', TENANT, 'timelines', id);
  return fs.readdirSync(dir).filter((f) => f !== 'manifest' && f !== REMOTE_LAYERS_FILE && !f.endsWith('.tmp'));
}

describe.each(backends.map((b) => [b.title, b] as const))('on-demand layers: %s', (_title, b) => {
  const test = it.skipIf(!b.available);
  const cores: ImplementationName[] = b.title === 'local directory' ? IMPLEMENTATIONS : [IMPLEMENTATIONS.at(-1) as ImplementationName];

  test.each(cores)('attach downloads only indexes; reads download on demand; every retained page identical; reopen and compaction work (%s core)', async (impl) => {
    const open = b.fresh();
    const repoA = await Repository.open(tmpDir('a'), { implementation: impl, remoteStorage: await open(), compactionThreshold: 3 });
    let w: Workload;
    try {
      w = await buildTenant(repoA, 21, 3, true);
      await syncAll(repoA);
    } finally {
      await repoA.close();
    }
    const counting = new CountingStorage(await open());
    const dirB = tmpDir('b');
    const repoB = await Repository.open(dirB, { implementation: impl, remoteStorage: counting });
    try {
      const report = await repoB.attachTenant(TENANT);
      expect(report).toMatchObject({ generation: 2, timelines: ['br', 'main'], layersDownloaded: 0, bytesDownloaded: 0 });
      expect(report.layersRemote).toBeGreaterThan(3);
      expect(counting.downloadsByKey.size).toBe(0);
      expect(localLayerFiles(repoB, 'main')).toEqual([]);
      const st0 = repoB.stats().localLayers!;
      expect(st0).toMatchObject({ localBytes: 0, remoteOnlyBytes: report.bytesRemote, downloads: 0 });
      // A synchronous read cannot wait for a download: it names the layer it needs.
      const main = repoB.getTimeline(TENANT, 'main');
      const msg = expectCodeSync(() => main.readPage(allKeys()[0], main.lastRecordLsn, Buffer.alloc(8192)), 'LAYER_NOT_LOCAL');
      expect(msg).toMatch(/needs layer \S+, which is in remote storage only/);
      // An async read downloads only what it needs (main's newest image, not br's layers).
      const keys = allKeys();
      const got = await main.getPages(keys, main.lastRecordLsn);
      for (let i = 0; i < keys.length; i++) await checkPage(main, w, keys[i], main.lastRecordLsn, got[i]);
      const st1 = repoB.stats().localLayers!;
      expect(st1.downloads).toBeGreaterThan(0);
      expect(st1.downloads).toBe(counting.downloadsByKey.size);
      expect(st1.localBytes).toBe(st1.downloadedBytes);
      expect(st1.remoteOnlyBytes).toBeGreaterThan(0);
      // A background-style compaction with nothing due downloads nothing (judged on the index alone).
      const downloadsBefore = counting.downloadsByKey.size;
      const idle = await main.compact();
      expect(idle.l0Compacted.length + idle.imageLayersCreated.length).toBe(0);
      expect(counting.downloadsByKey.size).toBe(downloadsBefore);
      // Now that sync read works too.
      const page = Buffer.alloc(8192);
      main.readPage(keys[0], main.lastRecordLsn, page);
      await checkPage(main, w, keys[0], main.lastRecordLsn, page);
    } finally {
      await repoB.close();
    }
    // Reopen with layers still remote-only: they are not "missing"; async reads fetch the rest.
    const repoB2 = await Repository.open(dirB, { implementation: impl, remoteStorage: counting });
    try {
      expect(repoB2.stats().localLayers!.remoteOnlyBytes).toBeGreaterThan(0);
      expect(await checkAll(repoB2, w)).toBeGreaterThan(500);
      // Every layer was downloaded once, across both opens.
      expect([...counting.downloadsByKey.values()].every((n) => n === 1)).toBe(true);
      expect(repoB2.stats().localLayers!.remoteOnlyBytes).toBe(0);
      // A compaction needs its inputs local: it downloads them first.
      const main = repoB2.getTimeline(TENANT, 'main');
      ingest(main, w, randomBatch(new Rng(5), KEYSPACE, main.lastRecordLsn, 12));
      await main.flush();
      await main.compact({ force: true });
      await main.syncRemote();
      expect(await checkAll(repoB2, w)).toBeGreaterThan(500);
      await main.downloadLayers();
      expect(repoB2.stats().localLayers!.remoteOnlyBytes).toBe(0);
    } finally {
      await repoB2.close();
    }
    // A third node: a sync read on the branch needs an ancestor's remote-only layer too.
    const repoC = await Repository.open(tmpDir('c'), { implementation: impl, remoteStorage: await open() });
    try {
      await repoC.attachTenant(TENANT);
      const tl = repoC.getTimeline(TENANT, 'br');
      const msg = expectCodeSync(() => tl.readPage(allKeys()[1], tl.lastRecordLsn, Buffer.alloc(8192)), 'LAYER_NOT_LOCAL');
      expect(msg).toContain('downloadLayers');
    } finally {
      await repoC.close();
    }
  }, 180_000);

  test('concurrent readers of one remote-only layer share one download', async () => {
    const open = b.fresh();
    const repoA = await Repository.open(tmpDir('share-a'), { remoteStorage: await open() });
    let w: Workload;
    try {
      w = await buildTenant(repoA, 8, 1, false);
      await syncAll(repoA);
    } finally {
      await repoA.close();
    }
    const counting = new CountingStorage(await open(), 50);
    const repoB = await Repository.open(tmpDir('share-b'), { remoteStorage: counting });
    try {
      await repoB.attachTenant(TENANT);
      const main = repoB.getTimeline(TENANT, 'main');
      const key = allKeys()[3];
      const lsn = main.lastRecordLsn;
      const pages = await Promise.all(Array.from({ length: 8 }, () => main.getPage(key, lsn)));
      for (const p of pages) await checkPage(main, w, key, lsn, p);
      // At the image layer's LSN a read needs that image alone: one layer comes, once.
      expect(counting.downloadsByKey.size).toBe(1);
      expect([...counting.downloadsByKey.values()]).toEqual([...counting.downloadsByKey.values()].map(() => 1));
      const st = repoB.stats();
      expect(st.localLayers!.downloads).toBe(counting.downloadsByKey.size);
      expect(st.localLayers!.downloadWaitMs).toBeGreaterThan(0);
      expect(st.timelines.find((t) => t.timelineId === 'main')!.remote!.onDemandDownloads).toBe(counting.downloadsByKey.size);
    } finally {
      await repoB.close();
    }
  }, 120_000);

  test.each(cores)('eviction under a small budget: random concurrent reads identical, budget held, unuploaded layers kept, reopen works (%s core)', async (impl) => {
    const open = b.fresh();
    const dir = tmpDir('evict');
    const counting = new CountingStorage(await open());
    // Sized after the layers exist: first build without a budget, then reopen with one.
    let repo = await Repository.open(dir, { implementation: impl, remoteStorage: counting, compression: 'none' });
    let w: Workload;
    let budget: number;
    try {
      w = await buildTenant(repo, 33, 4, false);
      await syncAll(repo);
      const layers = repo.listTimelines(TENANT).flatMap((t) => t.layers());
      const biggest = Math.max(...layers.map((l) => l.sizeBytes));
      // A read needs at most an image (or the first L0) and the deltas above it on main, and on
      // br (which has no image layer) every delta of br plus main's layers at the branch point.
      const brBytes = repo.getTimeline(TENANT, 'br').layers().reduce((n, l) => n + l.sizeBytes, 0);
      budget = brBytes + 3 * biggest;
      const total = layers.reduce((n, l) => n + l.sizeBytes, 0);
      expect(total).toBeGreaterThan(1.5 * budget);
    } finally {
      await repo.close();
    }
    repo = await Repository.open(dir, { implementation: impl, remoteStorage: counting, compression: 'none', localLayerBudgetBytes: budget });
    const rng = new Rng(77);
    const keys = allKeys();
    const ids = ['main', 'br'];
    try {
      // The budget is enforced once the indexes of this generation's restart are known.
      await syncAll(repo);
      for (let step = 0; step < 30; step++) {
        const reads = Array.from({ length: 3 }, () => {
          const id = ids[rng.int(0, 2)];
          const tl = repo.getTimeline(TENANT, id);
          const lsns = w.lsns.get(id) as bigint[];
          const lsn = lsns[rng.int(0, lsns.length)];
          const key = keys[rng.int(0, keys.length)];
          return tl.getPage(key, lsn).then((p) => checkPage(tl, w, key, lsn, p));
        });
        await Promise.all(reads);
        const st = repo.stats().localLayers!;
        expect(st.localBytes, `step ${step}`).toBeLessThanOrEqual(budget);
      }
      const st = repo.stats().localLayers!;
      expect(st.evictions).toBeGreaterThan(0);
      expect(st.downloads).toBeGreaterThan(0);
      expect(repo.metricsText()).toMatch(/strata_remote_evictions_total\{[^}]*\} [1-9]/);

      // Layers no durable index names yet are never evicted, even over the budget.
      counting.holdIndexes = true;
      const main = repo.getTimeline(TENANT, 'main');
      const before = new Set(main.layers().map((l) => l.fileName));
      for (let i = 0; i < 5; i++) {
        ingest(main, w, randomBatch(rng, KEYSPACE, main.lastRecordLsn, 12));
        await main.flush();
        await main.getPage(keys[i], main.lastRecordLsn).then((p) => checkPage(main, w, keys[i], main.lastRecordLsn, p));
      }
      const fresh = main.layers().filter((l) => !before.has(l.fileName)).map((l) => l.fileName);
      expect(fresh.length).toBe(5);
      const present = new Set(localLayerFiles(repo, 'main'));
      for (const f of fresh) expect(present.has(f), `${f} is not uploaded and must stay local`).toBe(true);
      counting.release();
      await syncAll(repo);
      expect(repo.stats().localLayers!.localBytes).toBeLessThanOrEqual(budget);
    } finally {
      counting.release();
      await repo.close();
    }
    // Reopen after evictions: the remote-only list carries the evicted layers.
    repo = await Repository.open(dir, { implementation: impl, remoteStorage: await open(), localLayerBudgetBytes: budget });
    try {
      expect(repo.stats().localLayers!.remoteOnlyBytes).toBeGreaterThan(0);
      await syncAll(repo); // until the upload queue has read the index back, nothing is known to be durable
      for (const id of ids) {
        const tl = repo.getTimeline(TENANT, id);
        const lsns = w.lsns.get(id) as bigint[];
        for (let i = 0; i < lsns.length; i += 4) {
          const got = await tl.getPages(keys, lsns[i]);
          for (let k = 0; k < keys.length; k++) await checkPage(tl, w, keys[k], lsns[i], got[k]);
          expect(repo.stats().localLayers!.localBytes).toBeLessThanOrEqual(budget);
        }
      }
    } finally {
      await repo.close();
    }
  }, 180_000);
});

describe('on-demand layers: failures (local directory)', () => {
  it('a download that fails rejects the read with the storage error and is retried by the next read; a short object is CORRUPT_LAYER', async () => {
    const storeDir = tmpDir('fail-store');
    const repoA = await Repository.open(tmpDir('fail-a'), { remote: { type: 'local', path: storeDir } });
    let w: Workload;
    try {
      w = await buildTenant(repoA, 4, 2, false);
      await syncAll(repoA);
    } finally {
      await repoA.close();
    }
    const storage = new CountingStorage(await openRemoteStorage({ type: 'local', path: storeDir }));
    let down = false;
    const real = storage.getToFile.bind(storage);
    storage.getToFile = async (key, file) => {
      if (down) throw new RemoteStorageError('REMOTE_ERROR', { operation: 'get', key, storage: storage.description, transient: true }, 'connect ECONNREFUSED (test outage)');
      return real(key, file);
    };
    const repoB = await Repository.open(tmpDir('fail-b'), { remoteStorage: storage });
    try {
      await repoB.attachTenant(TENANT);
      const main = repoB.getTimeline(TENANT, 'main');
      const key = allKeys()[2];
      down = true;
      await expect(main.getPage(key, main.lastRecordLsn)).rejects.toThrow(/REMOTE_ERROR: .*ECONNREFUSED/);
      down = false;
      await checkPage(main, w, key, main.lastRecordLsn, await main.getPage(key, main.lastRecordLsn));
      // An object shorter than the index says: CORRUPT_LAYER, and nothing is left in the directory.
      const br = repoB.getTimeline(TENANT, 'br');
      const brObjects = (await storage.list(`tenants/${TENANT}/timelines/br/`)).filter((o) => splitGeneration(o.key.slice(o.key.lastIndexOf('/') + 1))?.name !== INDEX_NAME);
      for (const o of brObjects) fs.truncateSync(path.join(storeDir, o.key), 8192);
      await expect(br.getPage(key, br.lastRecordLsn)).rejects.toThrow(/CORRUPT_LAYER: .*downloaded 8192 bytes/);
      expect(localLayerFiles(repoB, 'br')).toEqual([]);
    } finally {
      await repoB.close();
    }
  });
});

describe('on-demand layers: image creation judged on the index (local directory)', () => {
  it.each(IMPLEMENTATIONS)('partition images that tile the keyspace bound the deltas counted, so an idle compact() downloads nothing (%s core)', async (impl) => {
    const storeDir = tmpDir('tile-store');
    // Partitions of 4 keys: the forced images tile the keyspace, none covers it alone.
    const options = { implementation: impl, compactionTargetSize: 4 * 8192, imageCreationThreshold: 3 };
    const repoA = await Repository.open(tmpDir('tile-a'), { ...options, remote: { type: 'local', path: storeDir } });
    try {
      const rng = new Rng(5);
      const main = await repoA.createTimeline({ tenantId: TENANT, timelineId: 'main' });
      main.ingest(allKeys().map((key, i) => ({ lsn: BigInt(0x100 + i * 8), key, kind: 'image', page: randomPage(rng) })));
      await main.flush();
      const imaged = await main.compact({ force: true });
      expect(imaged.imageLayersCreated.length).toBe(allKeys().length / 4);
      // Two delta layers above the images (below the threshold), three over the oldest keys in all.
      for (let f = 0; f < 2; f++) {
        main.ingest(randomBatch(rng, KEYSPACE, main.lastRecordLsn, 12));
        await main.flush();
      }
      await syncAll(repoA);
    } finally {
      await repoA.close();
    }
    const counting = new CountingStorage(await openRemoteStorage({ type: 'local', path: storeDir }));
    const repoB = await Repository.open(tmpDir('tile-b'), { ...options, remoteStorage: counting });
    try {
      await repoB.attachTenant(TENANT);
      const idle = await repoB.getTimeline(TENANT, 'main').compact();
      expect(idle.l0Compacted.length + idle.imageLayersCreated.length).toBe(0);
      expect(counting.downloadsByKey.size).toBe(0);
    } finally {
      await repoB.close();
    }
  });
});

describe('on-demand layers: options', () => {
  it('localLayerBudgetBytes without a remote, and a bad download mode, are refused', async () => {
    await expect(Repository.open(tmpDir('opt'), { localLayerBudgetBytes: 1 << 20 })).rejects.toThrow(/BAD_ARGUMENT: localLayerBudgetBytes needs a remote/);
    const repo = await Repository.open(tmpDir('opt2'), { remote: { type: 'local', path: tmpDir('opt-store') } });
    try {
      await expect(repo.attachTenant('t9', { download: 'lazy' as 'eager' })).rejects.toThrow(/BAD_ARGUMENT/);
    } finally {
      await repo.close();
    }
  });
});
