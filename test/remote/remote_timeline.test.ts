/**
 * Issue 15, second increment: the upload queue (layers, then the index, then deletions) and
 * attaching a tenant on a second repository directory, on both backends — a local directory
 * always, S3 against a real radosgw (test/helpers/s3_server.ts, one server for this file via
 * test/helpers/remote.ts) when it can run here, skipped with the reason otherwise.
 *
 * Every storage call of the workload goes through an auditing wrapper that checks, against the
 * storage itself, the two ordering rules: when an index is put, every layer object it names exists;
 * when a layer object is deleted, the newest index of the deleting generation does not name it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type ImplementationName, isStrataError, type PageKey, Repository, type StrataErrorCode, type Timeline, type WalRecord } from '../../lib';
import { decodeIndex, INDEX_NAME, layerKey, splitGeneration, tenantPrefix } from '../../lib/engine/remote_layout';
import { backoffDelayMs, DEFAULT_REMOTE_RETRY } from '../../lib/engine/upload_queue';
import { openRemoteStorage } from '../../lib/remote/open_remote_storage';
import {
  type GetOptions, type PutBody, type PutOptions, type PutResult, type RemoteObjectInfo, RemoteStorageError, type RemoteStorage,
} from '../../lib/remote/remote_storage';
import { IMPLEMENTATIONS } from '../helpers/cores';
import { Oracle } from '../helpers/oracle';
import { Rng } from '../helpers/random';
import { useRemoteTestEnv } from '../helpers/remote';
import { type KeySpace, randomBatch, randomPage } from '../helpers/workload';

const TENANT = 'tenant1';
const KEYSPACE: KeySpace = { rels: 2, blocks: 10 };
/** Quick retries: the outage tests want syncRemote to give up after a few failed attempts. */
const FAST_RETRY = { baseMs: 10, maxMs: 200, failSyncAfterAttempts: 3 };

const env = useRemoteTestEnv('rtl');
const tmpDir = env.tmpDir;

// ---- storage wrappers ----------------------------------------------------------------------------

/** Forwards every call; subclasses intercept. */
class ForwardingStorage implements RemoteStorage {
  constructor(protected readonly inner: RemoteStorage) {}
  get kind(): RemoteStorage['kind'] { return this.inner.kind; }
  get description(): string { return this.inner.description; }
  put(key: string, body: PutBody, options?: PutOptions): Promise<PutResult> { return this.inner.put(key, body, options); }
  get(key: string, options?: GetOptions): Promise<Buffer> { return this.inner.get(key, options); }
  getToFile(key: string, file: string): Promise<RemoteObjectInfo> { return this.inner.getToFile(key, file); }
  head(key: string): Promise<RemoteObjectInfo | null> { return this.inner.head(key); }
  list(prefix: string): Promise<RemoteObjectInfo[]> { return this.inner.list(prefix); }
  delete(key: string): Promise<void> { return this.inner.delete(key); }
  close(): Promise<void> { return this.inner.close(); }
}

/** An outage on demand: while `down`, every call fails as an unreachable server does. */
class FlakyStorage extends ForwardingStorage {
  down = false;
  private check(operation: 'put' | 'get' | 'head' | 'list' | 'delete', key: string): void {
    if (this.down) {
      throw new RemoteStorageError('REMOTE_ERROR', { operation, key, storage: this.description, transient: true }, 'connect ECONNREFUSED (test outage)');
    }
  }
  override async put(key: string, body: PutBody, o?: PutOptions): Promise<PutResult> { this.check('put', key); return super.put(key, body, o); }
  override async get(key: string, o?: GetOptions): Promise<Buffer> { this.check('get', key); return super.get(key, o); }
  override async getToFile(key: string, file: string): Promise<RemoteObjectInfo> { this.check('get', key); return super.getToFile(key, file); }
  override async head(key: string): Promise<RemoteObjectInfo | null> { this.check('head', key); return super.head(key); }
  override async list(prefix: string): Promise<RemoteObjectInfo[]> { this.check('list', prefix); return super.list(prefix); }
  override async delete(key: string): Promise<void> { this.check('delete', key); return super.delete(key); }
}

/** Index puts fail while `failIndex` (a storage that takes layers but loses every index put). */
class IndexFailingStorage extends ForwardingStorage {
  failIndex = false;
  deletes = 0;
  override async put(key: string, body: PutBody, o?: PutOptions): Promise<PutResult> {
    if (this.failIndex && splitGeneration(key.slice(key.lastIndexOf('/') + 1))?.name === INDEX_NAME) {
      throw new RemoteStorageError('REMOTE_ERROR', { operation: 'put', key, storage: this.description, httpStatus: 503, transient: true }, 'SlowDown (HTTP 503) (test)');
    }
    return super.put(key, body, o);
  }
  override async delete(key: string): Promise<void> {
    this.deletes++;
    return super.delete(key);
  }
}

/** Checks the ordering rules against the storage before each index put and each layer delete. */
class AuditingStorage extends ForwardingStorage {
  readonly violations: string[] = [];
  indexPuts = 0;
  layerPuts = 0;
  deletes = 0;

  override async put(key: string, body: PutBody, o?: PutOptions): Promise<PutResult> {
    const name = key.slice(key.lastIndexOf('/') + 1);
    if (splitGeneration(name)?.name === INDEX_NAME) {
      this.indexPuts++;
      const idx = decodeIndex(key, Buffer.from(body as Uint8Array));
      const present = new Set((await this.inner.list(key.slice(0, key.lastIndexOf('/') + 1))).map((x) => x.key));
      for (const l of idx.manifest.layers) {
        const lk = layerKey(idx.manifest.tenantId, idx.manifest.timelineId, l.fileName, idx.layerGenerations.get(l.fileName) as number);
        if (!present.has(lk)) this.violations.push(`index ${key} put before its layer ${lk}`);
      }
    } else {
      this.layerPuts++;
    }
    return super.put(key, body, o);
  }

  override async delete(key: string): Promise<void> {
    this.deletes++;
    const dir = key.slice(0, key.lastIndexOf('/') + 1);
    const gen = splitGeneration(key.slice(dir.length))?.generation;
    const indexes = (await this.inner.list(dir)).filter((x) => {
      const p = splitGeneration(x.key.slice(dir.length));
      return p?.name === INDEX_NAME && p.generation === gen;
    });
    const newest = indexes.at(-1);
    if (newest !== undefined) {
      const idx = decodeIndex(newest.key, await this.inner.get(newest.key));
      for (const l of idx.manifest.layers) {
        if (layerKey(idx.manifest.tenantId, idx.manifest.timelineId, l.fileName, idx.layerGenerations.get(l.fileName) as number) === key) {
          this.violations.push(`delete of ${key} while ${newest.key} names it`);
        }
      }
    }
    return super.delete(key);
  }
}

// ---- backends ------------------------------------------------------------------------------------

/** One fresh remote store; `open` gives another client on it; `down`/`up` cause and end an outage. */
interface Store {
  open(): Promise<RemoteStorage>;
  down(): Promise<void>;
  up(): Promise<void>;
}

interface Backend {
  title: string;
  available: boolean;
  fresh(): Store;
}

const backends: Backend[] = env.backends.map((b) => ({
  title: b.title,
  available: b.available,
  fresh: (): Store => {
    const loc = env.freshLocation(b.kind);
    if (loc.config.type === 's3') {
      const srv = env.server();
      return {
        open: () => openRemoteStorage(loc.config, loc.options),
        down: () => srv.stopGateway(),
        up: () => srv.startGateway(),
      };
    }
    // The local directory has no server to stop: the outage is a wrapper's.
    const clients: FlakyStorage[] = [];
    return {
      open: async () => {
        const c = new FlakyStorage(await openRemoteStorage(loc.config, loc.options));
        clients.push(c);
        return c;
      },
      down: async () => { for (const c of clients) c.down = true; },
      up: async () => { for (const c of clients) c.down = false; },
    };
  },
}));

// ---- workload ------------------------------------------------------------------------------------

function allKeys(ks: KeySpace): PageKey[] {
  const keys: PageKey[] = [];
  for (let r = 0; r < ks.rels; r++) {
    for (const forkNum of [0, 1]) {
      for (let b = 0; b < ks.blocks; b++) keys.push({ spcOid: 1663, dbOid: 5, relNumber: 16384 + r, forkNum, blockNum: b });
    }
  }
  return keys;
}

interface Workload {
  oracle: Oracle;
  /** Every LSN a record of the timeline carries, per timeline id. */
  lsns: Map<string, bigint[]>;
}

function ingest(tl: Timeline, w: Workload, records: WalRecord[]): void {
  tl.ingest(records);
  w.oracle.ingest(tl.timelineId, records);
  w.lsns.get(tl.timelineId)!.push(...records.map((r) => r.lsn));
}

/** An image of every page (LSNs not checked: pages are readable only once all are written). */
function initPages(tl: Timeline, w: Workload, rng: Rng): void {
  const records: WalRecord[] = allKeys(KEYSPACE).map((key, i) => ({ lsn: BigInt(0x100 + i * 8), key, kind: 'image', page: randomPage(rng) }));
  tl.ingest(records);
  w.oracle.ingest(tl.timelineId, records);
}

/**
 * Flushes, a branch, compactions, an image layer and a GC on `repo`, calling `afterStep` after each
 * durable change (the tests sync and check the remote listing there).
 */
async function runWorkload(repo: Repository, seed: number, afterStep: () => Promise<void>): Promise<Workload> {
  const rng = new Rng(seed);
  const w: Workload = { oracle: new Oracle(), lsns: new Map([['main', []], ['br', []]]) };
  const main = await repo.createTimeline({ tenantId: TENANT, timelineId: 'main' });
  w.oracle.createTimeline('main');
  // Every page starts from an image, so every key can be read at every LSN after these.
  initPages(main, w, rng);
  let br: Timeline | null = null;
  for (let round = 0; round < 10; round++) {
    ingest(main, w, randomBatch(rng, KEYSPACE, main.lastRecordLsn, 30));
    if (br !== null) ingest(br, w, randomBatch(rng, KEYSPACE, br.lastRecordLsn, 15));
    await main.flush();
    if (br !== null) await br.flush();
    if (round === 1) {
      br = await repo.createTimeline({ tenantId: TENANT, timelineId: 'br', ancestorTimelineId: 'main' });
      w.oracle.createTimeline('br', 'main', br.ancestorLsn);
    }
    if (round % 3 === 2) await main.compact({ force: true });
    // The L1 of rounds 3–5 lies above the branch point and under this image: GC can drop it.
    if (round === 5) await main.createImageLayer(main.lastRecordLsn);
    await afterStep();
  }
  // GC at a cutoff between the image layer and the end: layers under the image go.
  const report = await main.gc({ horizon: (main.lastRecordLsn - w.lsns.get('main')![Math.floor(w.lsns.get('main')!.length * 0.75)]) });
  expect(report.layersRemoved).toBeGreaterThan(0);
  await afterStep();
  return w;
}

/** Every page at every LSN a record carries (at or above the GC cutoff) matches the oracle. */
async function checkAgainstOracle(repo: Repository, w: Workload): Promise<number> {
  const keys = allKeys(KEYSPACE);
  let pages = 0;
  for (const [id, lsns] of w.lsns) {
    const tl = repo.getTimeline(TENANT, id);
    for (const lsn of lsns) {
      if (lsn < tl.gcCutoffLsn) continue;
      const got = await tl.getPages(keys, lsn);
      keys.forEach((k, i) => {
        const want = w.oracle.getPage(id, k, lsn);
        if (want === null || !got[i].equals(want)) throw new Error(`${id}: page ${JSON.stringify(k)} at ${lsn} differs from the oracle`);
      });
      pages += keys.length;
    }
  }
  return pages;
}

/** The remote listing: every index's layers exist (the index is never ahead of its layers). */
async function checkListing(st: RemoteStorage): Promise<number> {
  const objects = await st.list(tenantPrefix(TENANT));
  const present = new Set(objects.map((o) => o.key));
  let indexes = 0;
  for (const o of objects) {
    if (splitGeneration(o.key.slice(o.key.lastIndexOf('/') + 1))?.name !== INDEX_NAME) continue;
    indexes++;
    const idx = decodeIndex(o.key, await st.get(o.key));
    for (const l of idx.manifest.layers) {
      const lk = layerKey(TENANT, idx.manifest.timelineId, l.fileName, idx.layerGenerations.get(l.fileName) as number);
      expect(present.has(lk), `${o.key} names ${lk}, which is not in the listing`).toBe(true);
    }
  }
  return indexes;
}

async function expectCode(p: Promise<unknown>, code: StrataErrorCode): Promise<void> {
  try {
    await p;
  } catch (e) {
    if (!isStrataError(e, code)) throw new Error(`expected ${code}, got ${String(e)}`, { cause: e });
    return;
  }
  throw new Error(`expected ${code}, but it succeeded`);
}

async function syncAll(repo: Repository): Promise<void> {
  for (const tl of repo.listTimelines(TENANT)) await tl.syncRemote();
}

// ---- tests ---------------------------------------------------------------------------------------

describe.each(backends.map((b) => [b.title, b] as const))('remote timelines: %s', (_title, b) => {
  const test = it.skipIf(!b.available);
  // Reads after attach on each core the local backend; S3 once (the cores do not touch storage).
  const cores: ImplementationName[] = b.title === 'local directory' ? IMPLEMENTATIONS : [IMPLEMENTATIONS.at(-1) as ImplementationName];

  test.each(cores)('workload → syncRemote → attach on a second directory: every retained page identical (%s core)', async (impl) => {
    const store = b.fresh();
    const audited = new AuditingStorage(await store.open());
    const repoA = await Repository.open(tmpDir('a'), { implementation: impl, remoteStorage: audited, compactionThreshold: 3 });
    let w: Workload;
    try {
      w = await runWorkload(repoA, 15, async () => {
        await syncAll(repoA);
        expect(await checkListing(audited)).toBeGreaterThan(0);
      });
      for (const tl of repoA.listTimelines(TENANT)) {
        expect(tl.remoteConsistentLsn).toBe(tl.diskConsistentLsn);
        expect(tl.diskConsistentLsn).toBe(tl.lastRecordLsn);
      }
      const st = repoA.stats().timelines.find((t) => t.timelineId === 'main')!.remote!;
      expect(st).toMatchObject({ generation: 1, queuedObjects: 0, failures: 0 });
      expect(st.uploads).toBeGreaterThan(0);
      expect(repoA.tenantGeneration(TENANT)).toBe(1);
    } finally {
      await repoA.close();
    }
    // The deletion queue ran (compaction and GC dropped layers), and both rules held throughout.
    expect(audited.deletes).toBeGreaterThan(0);
    expect(audited.indexPuts).toBeGreaterThan(0);
    expect(audited.violations).toEqual([]);

    const main = w.oracle.lastRecordLsn('main');
    const repoB = await Repository.open(tmpDir('b'), { implementation: impl, remoteStorage: await store.open() });
    try {
      const report = await repoB.attachTenant(TENANT, { download: 'eager' });
      expect(report).toMatchObject({ tenantId: TENANT, generation: 2, timelines: ['br', 'main'], layersRemote: 0 });
      expect(report.layersDownloaded).toBeGreaterThan(0);
      const bMain = repoB.getTimeline(TENANT, 'main');
      const bBr = repoB.getTimeline(TENANT, 'br');
      expect(bMain.lastRecordLsn).toBe(main);
      expect(bMain.gcCutoffLsn).toBeGreaterThan(0n);
      expect(bBr.ancestor?.timelineId).toBe('main');
      expect(bBr.ancestorLsn).toBe(w.oracle.timelines.get('br')!.ancestorLsn);
      expect(await checkAgainstOracle(repoB, w)).toBeGreaterThan(1000);
      // Reads below the surviving GC cutoff are refused as on the first node.
      await expectCode(bMain.getPage(allKeys(KEYSPACE)[0], bMain.gcCutoffLsn - 1n), 'LSN_GC_CUTOFF');

      // The new generation writes its own keys and never another's.
      ingest(bMain, w, randomBatch(new Rng(99), KEYSPACE, bMain.lastRecordLsn, 20));
      await bMain.flush();
      await bMain.syncRemote();
      const keys = (await audited.list(tenantPrefix(TENANT))).map((o) => o.key);
      expect(keys).toContain(`${tenantPrefix(TENANT)}main/${INDEX_NAME}-00000002`);
      expect(keys).toContain(`${tenantPrefix(TENANT)}main/${INDEX_NAME}-00000001`);
      await checkListing(audited);
      // A third node given generation 2 (or 1) would write the second node's keys.
      const repoC = await Repository.open(tmpDir('c'), { remoteStorage: await store.open() });
      try {
        await expectCode(repoC.attachTenant(TENANT, { generation: 2 }), 'STALE_GENERATION');
        expect(repoC.listTenants()).toEqual([]);
      } finally {
        await repoC.close();
      }
    } finally {
      await repoB.close();
    }
  }, 180_000);

  test('outage: ingest, flush and reads go on; syncRemote rejects with REMOTE_ERROR, then catches up', async () => {
    const store = b.fresh();
    const dir = tmpDir('outage');
    const storage = await store.open();
    const repo = await Repository.open(dir, { remoteStorage: storage, remoteRetry: FAST_RETRY });
    const w: Workload = { oracle: new Oracle(), lsns: new Map([['main', []]]) };
    const rng = new Rng(7);
    let outage = false;
    try {
      const tl = await repo.createTimeline({ tenantId: TENANT, timelineId: 'main' });
      w.oracle.createTimeline('main');
      initPages(tl, w, rng);
      await tl.flush();
      await tl.syncRemote();
      const before = tl.remoteConsistentLsn;
      expect(before).toBe(tl.diskConsistentLsn);

      await store.down();
      outage = true;
      for (let i = 0; i < 3; i++) {
        ingest(tl, w, randomBatch(rng, KEYSPACE, tl.lastRecordLsn, 30));
        await tl.flush(); // does not wait for storage
      }
      await tl.compact({ force: true });
      expect(await checkAgainstOracle(repo, w)).toBeGreaterThan(0);
      await expectCode(tl.syncRemote(), 'REMOTE_ERROR');
      const st = tl.stats().remote!;
      expect(st.failures).toBeGreaterThanOrEqual(FAST_RETRY.failSyncAfterAttempts);
      expect(st.queuedObjects).toBeGreaterThan(0);
      expect(st.queuedBytes).toBeGreaterThan(0);
      expect(repo.metricsText()).toMatch(/^strata_remote_upload_queue_objects\{tenant_id="tenant1",timeline_id="main"\} [1-9]/m);
      expect(st.lastError).toMatch(/REMOTE_ERROR/);
      expect(tl.remoteConsistentLsn).toBe(before);
      expect(tl.diskConsistentLsn).toBeGreaterThan(before as bigint);

      await store.up();
      outage = false;
      await tl.syncRemote();
      expect(tl.remoteConsistentLsn).toBe(tl.diskConsistentLsn);
      expect(tl.stats().remote!.queuedObjects).toBe(0);
      expect(await checkListing(storage)).toBe(1);
    } finally {
      if (outage) await store.up();
      await repo.close();
    }
    const repoB = await Repository.open(tmpDir('outage-b'), { remoteStorage: await store.open() });
    try {
      await repoB.attachTenant(TENANT);
      expect(await checkAgainstOracle(repoB, w)).toBeGreaterThan(0);
    } finally {
      await repoB.close();
    }
  }, 180_000);
});

describe('remote timelines: deletion queue, restart and options (local directory)', () => {
  it('layers compaction dropped are not deleted while the index without them fails to upload', async () => {
    const storage = new IndexFailingStorage(await openRemoteStorage({ type: 'local', path: tmpDir('delq-store') }));
    const repo = await Repository.open(tmpDir('delq'), { remoteStorage: storage, remoteRetry: FAST_RETRY });
    const w: Workload = { oracle: new Oracle(), lsns: new Map([['main', []]]) };
    const rng = new Rng(3);
    try {
      const tl = await repo.createTimeline({ tenantId: TENANT, timelineId: 'main' });
      w.oracle.createTimeline('main');
      initPages(tl, w, rng);
      for (let i = 0; i < 3; i++) {
        ingest(tl, w, randomBatch(rng, KEYSPACE, tl.lastRecordLsn, 20));
        await tl.flush();
      }
      await tl.syncRemote();
      const l0Keys = tl.layers().map((l) => layerKey(TENANT, 'main', l.fileName, 1));
      expect(l0Keys.length).toBe(3);

      storage.failIndex = true;
      await tl.compact({ force: true });
      const l1Keys = tl.layers().map((l) => layerKey(TENANT, 'main', l.fileName, 1));
      await expectCode(tl.syncRemote(), 'REMOTE_ERROR');
      let listed = (await storage.list(tenantPrefix(TENANT))).map((o) => o.key);
      // The new layers went up before their index; the old ones stay, as the uploaded index names them.
      for (const k of [...l0Keys, ...l1Keys]) expect(listed).toContain(k);
      expect(storage.deletes).toBe(0);
      expect(tl.stats().remote!.deletionsQueued).toBe(0);

      storage.failIndex = false;
      await tl.syncRemote();
      // Deletions run right after the index upload; wait for the queue to drain.
      while (tl.stats().remote!.deletionsQueued > 0 || storage.deletes < l0Keys.length) await new Promise((r) => setTimeout(r, 10));
      listed = (await storage.list(tenantPrefix(TENANT))).map((o) => o.key);
      for (const k of l0Keys) expect(listed).not.toContain(k);
      for (const k of l1Keys) expect(listed).toContain(k);
      expect(storage.deletes).toBe(l0Keys.length);
      expect(await checkListing(storage)).toBe(1);
    } finally {
      await repo.close();
    }
  });

  it.each(['images', 'compactions'] as const)('commits arriving faster than layers upload starve neither the index nor deletions (flushes and %s): remoteConsistentLsn advances meanwhile', async (churn) => {
    // Each layer put lets another flush and image commit first: a steady ingest that outpaces the uploads.
    const CHURN_COMMITS = 12;
    let tl: Timeline | null = null;
    let commits = 0;
    let indexPutsDuringChurn = 0;
    let deletesDuringChurn = 0;
    const rng = new Rng(11);
    class ChurningStorage extends ForwardingStorage {
      override async delete(key: string): Promise<void> {
        if (tl !== null && commits < CHURN_COMMITS) deletesDuringChurn++;
        return super.delete(key);
      }
      override async put(key: string, body: PutBody, o?: PutOptions): Promise<PutResult> {
        const isIndex = splitGeneration(key.slice(key.lastIndexOf('/') + 1))?.name === INDEX_NAME;
        if (isIndex && tl !== null && commits < CHURN_COMMITS) indexPutsDuringChurn++;
        if (!isIndex && tl !== null && commits < CHURN_COMMITS) {
          // New layers faster than uploads: a manifest has more than one to upload.
          commits++;
          tl.ingest(randomBatch(rng, KEYSPACE, tl.lastRecordLsn, 10));
          await tl.flush();
          // Compaction drops L0s the queue has not uploaded yet: their files are gone when it gets to them.
          if (churn === 'images') await tl.createImageLayer(tl.lastRecordLsn);
          else if (commits % 2 === 0) await tl.compact({ force: true });
        }
        return super.put(key, body, o);
      }
    }
    const repo = await Repository.open(tmpDir('churn'), { remoteStorage: new ChurningStorage(await openRemoteStorage({ type: 'local', path: tmpDir('churn-store') })) });
    try {
      const t = await repo.createTimeline({ tenantId: TENANT, timelineId: 'main' });
      t.ingest(allKeys(KEYSPACE).map((key, i) => ({ lsn: BigInt(0x100 + i * 8), key, kind: 'zero' })));
      await t.flush();
      await t.syncRemote();
      tl = t;
      t.ingest(randomBatch(rng, KEYSPACE, t.lastRecordLsn, 10));
      await t.flush();
      do await t.syncRemote(); while (commits < CHURN_COMMITS);
      await t.syncRemote();
      expect(t.remoteConsistentLsn).toBe(t.diskConsistentLsn);
      // Indexes of older manifests went up while newer ones kept arriving.
      expect(indexPutsDuringChurn).toBeGreaterThan(1);
      // And the deletion queue runs between them, not only once commits stop.
      if (churn === 'compactions') expect(deletesDuringChurn).toBeGreaterThan(0);
    } finally {
      await repo.close();
    }
  });

  it('backoff is full jitter under an exponential cap', () => {
    const o = DEFAULT_REMOTE_RETRY;
    expect(backoffDelayMs(1, o, () => 0)).toBe(0);
    expect(backoffDelayMs(1, o, () => 0.999999)).toBe(o.baseMs - 1);
    expect(backoffDelayMs(4, o, () => 0.5)).toBe(o.baseMs * 4);
    expect(backoffDelayMs(40, o, () => 0.999999)).toBe(o.maxMs - 1);
  });

  it('a reopened repository finds what it uploaded: only the index goes up again, own-generation leftovers are deleted', async () => {
    const remote = { type: 'local' as const, path: tmpDir('restart-store') };
    const dir = tmpDir('restart');
    let repo = await Repository.open(dir, { remote });
    const tl = await repo.createTimeline({ tenantId: TENANT, timelineId: 'main' });
    tl.ingest(allKeys(KEYSPACE).map((key, i) => ({ lsn: BigInt(0x100 + i * 8), key, kind: 'zero' })));
    await tl.flush();
    await tl.syncRemote();
    await repo.close();
    // What a crash between a layer's upload and its index leaves: an object of our generation no
    // index names. And one of a newer generation, which this node must not touch.
    const store = await openRemoteStorage(remote);
    const orphan = layerKey(TENANT, 'main', 'ORPHAN', 1);
    const newer = layerKey(TENANT, 'main', 'NEWER', 2);
    await store.put(orphan, Buffer.from('x'));
    await store.put(newer, Buffer.from('y'));
    repo = await Repository.open(dir, { remote });
    try {
      const again = repo.getTimeline(TENANT, 'main');
      await again.syncRemote();
      expect(again.remoteConsistentLsn).toBe(again.diskConsistentLsn);
      while (again.stats().remote!.deletionsQueued > 0) await new Promise((r) => setTimeout(r, 10));
      // Only the index went up again; the orphan went through the deletion queue.
      expect(again.stats().remote).toMatchObject({ generation: 1, uploads: 1, deletions: 1 });
      expect(await store.head(orphan)).toBeNull();
      expect(await store.head(newer)).not.toBeNull();
      expect(await checkListing(store)).toBe(1);
    } finally {
      await store.close();
      await repo.close();
    }
  });

  it('syncRemote without a remote, attachTenant without one, and bad options are refused with codes', async () => {
    const repo = await Repository.open(tmpDir('noremote'));
    try {
      const tl = await repo.createTimeline({ tenantId: TENANT, timelineId: 'main' });
      expect(tl.remoteConsistentLsn).toBeNull();
      expect(tl.stats().remote).toBeNull();
      await expectCode(tl.syncRemote(), 'BAD_ARGUMENT');
      await expectCode(repo.attachTenant(TENANT), 'BAD_ARGUMENT');
    } finally {
      await repo.close();
    }
    const remote = { type: 'local' as const, path: tmpDir('opts-store') };
    await expectCode(Repository.open(tmpDir('opts'), { remote, remoteRetry: { baseMs: 0 } }), 'BAD_ARGUMENT');
    await expectCode(Repository.open(tmpDir('opts2'), { remote, readOnly: true }), 'BAD_ARGUMENT');
    const repo2 = await Repository.open(tmpDir('opts3'), { remote });
    try {
      await expectCode(repo2.attachTenant(TENANT, { generation: 0 }), 'BAD_ARGUMENT');
      expect((await repo2.attachTenant(TENANT, { generation: 7 })).generation).toBe(7);
      const tl = await repo2.createTimeline({ tenantId: TENANT, timelineId: 'main' });
      await tl.syncRemote();
      expect(tl.stats().remote?.generation).toBe(7);
      expect(fs.readdirSync(path.join(remote.path, 'tenants', TENANT, 'timelines', 'main'))).toContain(`${INDEX_NAME}-00000007`);
    } finally {
      await repo2.close();
    }
  });
});
