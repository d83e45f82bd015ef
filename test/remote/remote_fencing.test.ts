/**
 * Issue 15: fencing through the tenant's attachment object, split brain, detach, generation
 * changes and remote cleanup of deleted timelines — on both backends: a local directory always,
 * S3 against a real radosgw (test/helpers/s3_server.ts, one server for this file) when it can run
 * here, skipped with the reason otherwise.
 *
 * The split-brain tests run two repositories (two nodes) on one store: A attached at generation 1
 * keeps ingesting, flushing, compacting and collecting garbage after B attached at generation 2,
 * and every storage call of A is recorded, so the tests can check that nothing A did after B's
 * attach changed or removed an object, and that B (and a third node attaching after both) reads
 * every page as the oracle says.
 */
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isStrataError, type PageKey, Repository, type StrataErrorCode, type Timeline, type WalRecord } from '../../lib';
import { attachmentKey, readAttachment } from '../../lib/engine/attachment';
import { decodeIndex, INDEX_NAME, indexKey, layerKey, splitGeneration, tenantPrefix, timelinePrefix } from '../../lib/engine/remote_layout';
import { openRemoteStorage } from '../../lib/remote/open_remote_storage';
import type { GetOptions, PutBody, PutOptions, PutResult, RemoteObjectInfo, RemoteStorage } from '../../lib/remote/remote_storage';
import { Oracle } from '../helpers/oracle';
import { Rng } from '../helpers/random';
import { s3Availability, S3Server } from '../helpers/s3_server';
import { type KeySpace, randomBatch, randomPage } from '../helpers/workload';

const s3 = s3Availability();
const TENANT = 'tenant1';
const KEYSPACE: KeySpace = { rels: 2, blocks: 8 };
const FAST_RETRY = { baseMs: 10, maxMs: 200, failSyncAfterAttempts: 3 };

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
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `strata-fence-${tag}-`));
  tmpRoots.push(d);
  return d;
}

/** Records every mutating call a node makes; `onIndexPut` runs after an index put succeeded. */
class RecordingStorage implements RemoteStorage {
  readonly puts: string[] = [];
  readonly deletes: string[] = [];
  /** Puts of an attachment object without a condition (fencing must never make one). */
  readonly unconditionalAttachmentPuts: string[] = [];
  onIndexPut: ((key: string) => Promise<void>) | null = null;
  constructor(private readonly inner: RemoteStorage) {}
  get kind(): RemoteStorage['kind'] { return this.inner.kind; }
  get description(): string { return this.inner.description; }
  async put(key: string, body: PutBody, options?: PutOptions): Promise<PutResult> {
    if (key.endsWith('/attachment') && options?.ifMatch === undefined && options?.ifNoneMatch === undefined) this.unconditionalAttachmentPuts.push(key);
    const r = await this.inner.put(key, body, options);
    this.puts.push(key);
    if (splitGeneration(key.slice(key.lastIndexOf('/') + 1))?.name === INDEX_NAME && this.onIndexPut !== null) {
      const hook = this.onIndexPut;
      this.onIndexPut = null;
      await hook(key);
    }
    return r;
  }
  get(key: string, options?: GetOptions): Promise<Buffer> { return this.inner.get(key, options); }
  getToFile(key: string, file: string): Promise<RemoteObjectInfo> { return this.inner.getToFile(key, file); }
  head(key: string): Promise<RemoteObjectInfo | null> { return this.inner.head(key); }
  list(prefix: string): Promise<RemoteObjectInfo[]> { return this.inner.list(prefix); }
  async delete(key: string): Promise<void> {
    this.deletes.push(key);
    return this.inner.delete(key);
  }
  close(): Promise<void> { return this.inner.close(); }
}

interface Backend {
  title: string;
  available: boolean;
  /** A fresh store; each call of the result opens another client on it. */
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
      const prefix = `f-${crypto.randomBytes(6).toString('hex')}`;
      return () => openRemoteStorage((server as S3Server).config(prefix), (server as S3Server).options());
    },
  },
];

// ---- workload and checks -------------------------------------------------------------------------

function allKeys(): PageKey[] {
  const keys: PageKey[] = [];
  for (let r = 0; r < KEYSPACE.rels; r++) {
    for (let b = 0; b < KEYSPACE.blocks; b++) keys.push({ spcOid: 1663, dbOid: 5, relNumber: 16384 + r, forkNum: 0, blockNum: b });
  }
  return keys;
}

/** An oracle timeline per node's view, and every LSN a record of it carries. */
interface Model {
  oracle: Oracle;
  lsns: Map<string, bigint[]>;
}

function newModel(): Model {
  const m: Model = { oracle: new Oracle(), lsns: new Map([['A', []]]) };
  m.oracle.createTimeline('A');
  return m;
}

function ingest(tl: Timeline, m: Model, id: string, records: WalRecord[]): void {
  tl.ingest(records);
  m.oracle.ingest(id, records);
  m.lsns.get(id)!.push(...records.map((r) => r.lsn));
}

/** Node B continues A's history from `lsn` (its attach point) with records of its own. */
function forkModel(m: Model, id: string, lsn: bigint): void {
  m.oracle.createTimeline(id, 'A', lsn);
  m.lsns.set(id, m.lsns.get('A')!.filter((x) => x <= lsn));
}

async function startTenant(repo: Repository, m: Model, rng: Rng, flushes: number): Promise<Timeline> {
  const tl = await repo.createTimeline({ tenantId: TENANT, timelineId: 'main' });
  // Every page starts from an image; their LSNs are not checked (a page is readable once written).
  const init: WalRecord[] = allKeys().map((key, i) => ({ lsn: BigInt(0x100 + i * 8), key, kind: 'image', page: randomPage(rng) }));
  tl.ingest(init);
  m.oracle.ingest('A', init);
  for (let i = 0; i < flushes; i++) {
    ingest(tl, m, 'A', randomBatch(rng, KEYSPACE, tl.lastRecordLsn, 25));
    await tl.flush();
  }
  return tl;
}

/** Every page at every LSN of model timeline `id` from the timeline's GC cutoff up matches the oracle. */
async function checkPages(tl: Timeline, m: Model, id: string): Promise<number> {
  const keys = allKeys();
  let pages = 0;
  for (const lsn of m.lsns.get(id)!) {
    if (lsn < tl.gcCutoffLsn || lsn > tl.lastRecordLsn) continue;
    const got = await tl.getPages(keys, lsn);
    keys.forEach((k, i) => {
      const want = m.oracle.getPage(id, k, lsn);
      if (want === null || !got[i].equals(want)) throw new Error(`${id}: page ${JSON.stringify(k)} at ${lsn} differs from the oracle`);
    });
    pages += keys.length;
  }
  return pages;
}

/** Every object the newest index of `generation` names, with its ETag. */
async function referencedBy(st: RemoteStorage, generation: number): Promise<Map<string, string>> {
  const key = indexKey(TENANT, 'main', generation);
  const idx = decodeIndex(key, await st.get(key));
  const out = new Map<string, string>();
  out.set(key, (await st.head(key))!.etag);
  for (const l of idx.manifest.layers) {
    const lk = layerKey(TENANT, 'main', l.fileName, idx.layerGenerations.get(l.fileName) as number);
    const info = await st.head(lk);
    expect(info, `${key} names ${lk}, which is missing`).not.toBeNull();
    out.set(lk, info!.etag);
  }
  return out;
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

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 10));
}

// ---- tests ---------------------------------------------------------------------------------------

describe.each(backends.map((b) => [b.title, b] as const))('fencing: %s', (_title, b) => {
  const test = it.skipIf(!b.available);

  test('split brain: B attaches at generation 2 while A ingests, flushes, compacts and collects garbage; A is fenced, B intact', async () => {
    const open = b.fresh();
    const rec = new RecordingStorage(await open());
    const m = newModel();
    const rng = new Rng(21);
    const recB = new RecordingStorage(await open());
    const dirA = tmpDir('a');
    let repoA = await Repository.open(dirA, { remoteStorage: rec, compactionThreshold: 3, remoteRetry: FAST_RETRY });
    const repoB = await Repository.open(tmpDir('b'), { remoteStorage: recB, compactionThreshold: 3 });
    try {
      const a = await startTenant(repoA, m, rng, 4);
      await a.syncRemote();
      const checker = await open();
      expect((await readAttachment(checker, TENANT))?.record.generation).toBe(1);

      const attached = await repoB.attachTenant(TENANT);
      expect(attached.generation).toBe(2);
      const bTl = repoB.getTimeline(TENANT, 'main');
      forkModel(m, 'B', bTl.lastRecordLsn);
      const att = await readAttachment(checker, TENANT);
      expect(att?.record).toMatchObject({ generation: 2, tenantId: TENANT });
      const putsBefore = rec.puts.length;
      const deletesBefore = rec.deletes.length;
      const aIndexBefore = (await checker.head(indexKey(TENANT, 'main', 1)))!.etag;

      // Both nodes go on. A: ingest, flush, compaction, an image, GC — each would upload an index
      // and queue deletions of its own generation's objects. B only flushes, so its index keeps
      // naming the layers it inherited from A, which A's compaction and GC drop.
      const rngB = new Rng(22);
      for (let round = 0; round < 6; round++) {
        ingest(a, m, 'A', randomBatch(rng, KEYSPACE, a.lastRecordLsn, 25));
        await a.flush();
        ingest(bTl, m, 'B', randomBatch(rngB, KEYSPACE, bTl.lastRecordLsn, 25));
        await bTl.flush();
        if (round === 2) await a.compact({ force: true });
        if (round === 3) await a.createImageLayer(a.lastRecordLsn);
        await bTl.syncRemote();
      }
      const gc = await a.gc({ horizon: 1n });
      expect(gc.layersRemoved).toBeGreaterThan(0);
      await bTl.syncRemote();
      // Let A's queue do whatever it still would (it is refused; without fencing it would delete).
      await a.syncRemote().catch((e: unknown) => { if (!isStrataError(e, 'STALE_GENERATION')) throw e; });
      await until(() => a.stats().remote!.stale || a.stats().remote!.deletionsQueued === 0);

      // B's data is undamaged: every object its index names, its pages at every LSN — and a third
      // node attaching now reads B's history, not A's.
      const bRefs = await referencedBy(checker, 2);
      expect(bRefs.size).toBeGreaterThan(1);
      expect(await checkPages(bTl, m, 'B')).toBeGreaterThan(500);
      expect(bTl.stats().remote).toMatchObject({ generation: 2, stale: false });
      await repoB.close();
      const repoC = await Repository.open(tmpDir('c'), { remoteStorage: await open() });
      try {
        expect((await repoC.attachTenant(TENANT)).generation).toBe(3);
        const cTl = repoC.getTimeline(TENANT, 'main');
        expect(cTl.lastRecordLsn).toBe(m.oracle.lastRecordLsn('B'));
        expect(await checkPages(cTl, m, 'B')).toBeGreaterThan(500);
      } finally {
        await repoC.close();
      }

      // A knows it is stale, says so everywhere, and changed nothing after B's attach but layer
      // objects of its own generation that nobody's index names.
      await expectCode(a.syncRemote(), 'STALE_GENERATION');
      const st = a.stats().remote!;
      expect(st).toMatchObject({ generation: 1, stale: true });
      expect(st.staleRefusals).toBeGreaterThan(0);
      expect(st.lastError).toMatch(/STALE_GENERATION/);
      expect(repoA.metricsText()).toMatch(/^strata_remote_stale\{tenant_id="tenant1",timeline_id="main"\} 1$/m);
      expect(repoA.metricsText()).toMatch(/^strata_remote_stale_refusals_total\{tenant_id="tenant1",timeline_id="main"\} [1-9]/m);
      expect(rec.deletes.length).toBe(deletesBefore);
      const aPutsAfter = rec.puts.slice(putsBefore);
      for (const k of aPutsAfter) {
        expect(splitGeneration(k.slice(k.lastIndexOf('/') + 1))).toMatchObject({ generation: 1 });
        expect(k.endsWith(`${INDEX_NAME}-00000001`), `A put an index after B attached: ${k}`).toBe(false);
        expect(k).not.toBe(attachmentKey(TENANT));
      }
      expect((await checker.head(indexKey(TENANT, 'main', 1)))!.etag).toBe(aIndexBefore);
      expect((await readAttachment(checker, TENANT))?.record.generation).toBe(3);
      // A's stale timeline still serves its own local reads.
      expect(await checkPages(a, m, 'A')).toBeGreaterThan(0);
      expect(rec.unconditionalAttachmentPuts).toEqual([]);
      expect(recB.unconditionalAttachmentPuts).toEqual([]);
      expect(recB.puts).toContain(attachmentKey(TENANT));
      // Reopened, A finds itself stale again at its first upload.
      await repoA.close();
      repoA = await Repository.open(dirA, { remoteStorage: rec, remoteRetry: FAST_RETRY });
      await expectCode(repoA.getTimeline(TENANT, 'main').syncRemote(), 'STALE_GENERATION');
      expect(rec.deletes.length).toBe(deletesBefore);
      await checker.close();
    } finally {
      await repoB.close();
      await repoA.close();
    }
  }, 180_000);

  test('a stale generation cannot change anything a newer generation references (deletion batch raced by an attach)', async () => {
    const open = b.fresh();
    const rec = new RecordingStorage(await open());
    const m = newModel();
    const rng = new Rng(5);
    const repoA = await Repository.open(tmpDir('a2'), { remoteStorage: rec, compactionThreshold: 3, remoteRetry: FAST_RETRY });
    const repoB = await Repository.open(tmpDir('b2'), { remoteStorage: await open() });
    const checker = await open();
    try {
      const a = await startTenant(repoA, m, rng, 4);
      await a.syncRemote();
      const before = new Set((await checker.list(tenantPrefix(TENANT))).map((o) => o.key));
      // Compaction drops A's L0s; A uploads the index without them and would then delete them.
      // B attaches right after that index upload, before A's deletion batch.
      let bGeneration = 0;
      rec.onIndexPut = async () => { bGeneration = (await repoB.attachTenant(TENANT)).generation; };
      await a.compact({ force: true });
      // The index went up before B's attach, so this sync may resolve; the deletion batch after it is refused.
      await a.syncRemote().catch((e: unknown) => { if (!isStrataError(e, 'STALE_GENERATION')) throw e; });
      await until(() => a.stats().remote!.stale);
      expect(bGeneration).toBe(2);
      const st = a.stats().remote!;
      expect(st.deletionsQueued).toBeGreaterThan(0); // what A would have deleted …
      expect(rec.deletes).toEqual([]);                // … and did not
      for (const k of before) expect(await checker.head(k), `${k} vanished`).not.toBeNull();

      // Then A keeps going: GC, more flushes. B's index and every object it names stay as they were.
      const bTl = repoB.getTimeline(TENANT, 'main');
      await bTl.syncRemote();
      const refs = await referencedBy(checker, 2);
      for (let i = 0; i < 3; i++) {
        ingest(a, m, 'A', randomBatch(rng, KEYSPACE, a.lastRecordLsn, 25));
        await a.flush();
      }
      await a.compact({ force: true });
      await a.gc({ horizon: 1n });
      await expectCode(a.syncRemote(), 'STALE_GENERATION');
      expect(rec.deletes).toEqual([]);
      for (const [k, etag] of refs) expect((await checker.head(k))?.etag, k).toBe(etag);
      forkModel(m, 'B', bTl.lastRecordLsn);
      expect(await checkPages(bTl, m, 'B')).toBeGreaterThan(100);
    } finally {
      await checker.close();
      await repoB.close();
      await repoA.close();
    }
  }, 120_000);

  test('concurrent attaches get distinct generations; the loser of the attachment object is stale', async () => {
    const open = b.fresh();
    const m = newModel();
    const repoA = await Repository.open(tmpDir('a3'), { remoteStorage: await open() });
    await startTenant(repoA, m, new Rng(8), 2);
    await repoA.getTimeline(TENANT, 'main').syncRemote();
    await repoA.close();
    const repos = await Promise.all([0, 1, 2].map(async (i) => Repository.open(tmpDir(`n${i}`), { remoteStorage: await open(), remoteRetry: FAST_RETRY })));
    try {
      const reports = await Promise.all(repos.map((r) => r.attachTenant(TENANT)));
      const gens = reports.map((r) => r.generation).sort();
      expect(new Set(gens).size).toBe(3);
      const newest = Math.max(...gens);
      for (const r of repos) {
        const tl = r.getTimeline(TENANT, 'main');
        expect(await checkPages(tl, m, 'A')).toBeGreaterThan(0);
        // A loser may have uploaded its first index before the newest attach was recorded; its
        // next upload is validated after it, and refused.
        tl.ingest(randomBatch(new Rng(40), KEYSPACE, tl.lastRecordLsn, 5));
        await tl.flush();
        if (r.tenantGeneration(TENANT) === newest) await tl.syncRemote();
        else await expectCode(tl.syncRemote(), 'STALE_GENERATION');
      }
      const checker = await open();
      expect((await readAttachment(checker, TENANT))?.record.generation).toBe(newest);
      await checker.close();
    } finally {
      for (const r of repos) await r.close();
    }
  }, 120_000);

  test('detach hands the tenant over: attach elsewhere and back here continue from the uploaded state', async () => {
    const open = b.fresh();
    const m = newModel();
    const dirA = tmpDir('da');
    const repoA = await Repository.open(dirA, { remoteStorage: await open() });
    const repoB = await Repository.open(tmpDir('db'), { remoteStorage: await open() });
    try {
      const a = await startTenant(repoA, m, new Rng(9), 3);
      const br = await repoA.createTimeline({ tenantId: TENANT, timelineId: 'br', ancestorTimelineId: 'main' });
      // Not flushed by the caller: detach flushes and uploads it.
      ingest(a, m, 'A', randomBatch(new Rng(10), KEYSPACE, a.lastRecordLsn, 25));
      const last = a.lastRecordLsn;
      expect(br.ancestorLsn).toBeLessThan(last);
      const report = await repoA.detachTenant(TENANT);
      expect(report).toEqual({ tenantId: TENANT, generation: 1, timelines: ['br', 'main'], stale: false });
      expect(repoA.listTenants()).toEqual([]);
      expect(repoA.tenantGeneration(TENANT)).toBeNull();
      expect(fs.existsSync(path.join(dirA, 'tenants', TENANT))).toBe(false);
      await expectCode(a.getPage(allKeys()[0], last), 'CLOSED');

      expect((await repoB.attachTenant(TENANT)).timelines).toEqual(['br', 'main']);
      const bMain = repoB.getTimeline(TENANT, 'main');
      expect(bMain.lastRecordLsn).toBe(last);
      expect(repoB.getTimeline(TENANT, 'br').ancestorLsn).toBe(br.ancestorLsn);
      expect(await checkPages(bMain, m, 'A')).toBeGreaterThan(0);
      forkModel(m, 'B', last);
      ingest(bMain, m, 'B', randomBatch(new Rng(11), KEYSPACE, last, 25));
      expect((await repoB.detachTenant(TENANT)).generation).toBe(2);

      // Back on the first node (the same directory): generation 3, B's records included.
      const again = await repoA.attachTenant(TENANT);
      expect(again.generation).toBe(3);
      const aMain = repoA.getTimeline(TENANT, 'main');
      expect(aMain.lastRecordLsn).toBe(m.oracle.lastRecordLsn('B'));
      expect(await checkPages(aMain, m, 'B')).toBeGreaterThan(0);
      await aMain.syncRemote();
      await expectCode(repoA.detachTenant('nobody'), 'TIMELINE_NOT_FOUND');
    } finally {
      await repoB.close();
      await repoA.close();
    }
  }, 120_000);

  test('a held tenant moves to a higher generation given by the caller, unless another node took it', async () => {
    const open = b.fresh();
    const m = newModel();
    const repoA = await Repository.open(tmpDir('ga'), { remoteStorage: await open(), remoteRetry: FAST_RETRY });
    const repoB = await Repository.open(tmpDir('gb'), { remoteStorage: await open() });
    const checker = await open();
    try {
      const a = await startTenant(repoA, m, new Rng(12), 2);
      await a.syncRemote();
      expect((await repoA.attachTenant(TENANT, { generation: 5 })).generation).toBe(5);
      await expectCode(repoA.attachTenant(TENANT, { generation: 4 }), 'STALE_GENERATION');
      const tl = repoA.getTimeline(TENANT, 'main');
      expect(tl.stats().remote?.generation).toBe(5);
      ingest(tl, m, 'A', randomBatch(new Rng(13), KEYSPACE, tl.lastRecordLsn, 20));
      await tl.flush();
      await tl.syncRemote();
      expect(await checker.head(indexKey(TENANT, 'main', 5))).not.toBeNull();
      expect((await readAttachment(checker, TENANT))?.record.generation).toBe(5);

      // Control-plane mode on another node: a number not above 5 is refused, 6 is taken.
      await expectCode(repoB.attachTenant(TENANT, { generation: 5 }), 'STALE_GENERATION');
      expect(repoB.listTenants()).toEqual([]);
      expect((await repoB.attachTenant(TENANT, { generation: 6 })).generation).toBe(6);
      // A no longer holds the tenant: moving it to 7 in place would fork the history.
      await expectCode(repoA.attachTenant(TENANT, { generation: 7 }), 'STALE_GENERATION');
      await expectCode(tl.syncRemote(), 'STALE_GENERATION');
      // Detaching the stale tenant drops its local copy without uploading.
      expect((await repoA.detachTenant(TENANT)).stale).toBe(true);
      expect((await repoA.attachTenant(TENANT, { generation: 7 })).generation).toBe(7);
      expect(await checkPages(repoA.getTimeline(TENANT, 'main'), m, 'A')).toBeGreaterThan(0);
    } finally {
      await checker.close();
      await repoB.close();
      await repoA.close();
    }
  }, 120_000);

  test('deleteTimeline removes the timeline\'s remote objects; a later attach does not bring it back', async () => {
    const open = b.fresh();
    const m = newModel();
    const repoA = await Repository.open(tmpDir('del'), { remoteStorage: await open() });
    const checker = await open();
    try {
      const a = await startTenant(repoA, m, new Rng(14), 2);
      const br = await repoA.createTimeline({ tenantId: TENANT, timelineId: 'br', ancestorTimelineId: 'main' });
      br.ingest(randomBatch(new Rng(15), KEYSPACE, br.lastRecordLsn, 20));
      await br.flush();
      await br.syncRemote();
      await a.syncRemote();
      expect((await checker.list(timelinePrefix(TENANT, 'br'))).length).toBeGreaterThan(1);
      await repoA.deleteTimeline(TENANT, 'br');
      expect(await checker.list(timelinePrefix(TENANT, 'br'))).toEqual([]);
      expect((await checker.list(timelinePrefix(TENANT, 'main'))).length).toBeGreaterThan(1);
    } finally {
      await repoA.close();
    }
    const repoB = await Repository.open(tmpDir('del-b'), { remoteStorage: await open() });
    try {
      expect((await repoB.attachTenant(TENANT)).timelines).toEqual(['main']);
      expect(await checkPages(repoB.getTimeline(TENANT, 'main'), m, 'A')).toBeGreaterThan(0);
    } finally {
      await checker.close();
      await repoB.close();
    }
  }, 120_000);
});

describe('fencing: the CLI over S3 flags', () => {
  it.skipIf(!s3.ok)(`strata attach / remote status / detach with --s3-* flags${s3.ok ? '' : ` — skipped: ${s3.reason}`}`, async () => {
    const srv = server as S3Server;
    const prefix = `cli-${crypto.randomBytes(6).toString('hex')}`;
    const cfg = srv.config(prefix);
    const storage = await openRemoteStorage(cfg, srv.options());
    const m = newModel();
    const repoA = await Repository.open(tmpDir('cli-a'), { remoteStorage: storage });
    await startTenant(repoA, m, new Rng(31), 2);
    await repoA.getTimeline(TENANT, 'main').syncRemote();
    await repoA.close();
    const flags = ['--s3-bucket', cfg.bucket, '--s3-endpoint', cfg.endpoint as string, '--s3-region', srv.region, '--s3-prefix', prefix, '--s3-path-style'];
    const env = { ...process.env, AWS_ACCESS_KEY_ID: srv.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: srv.credentials.secretAccessKey };
    const cli = (args: string[]): { status: number | null; stdout: string; stderr: string } =>
      spawnSync(process.execPath, [path.join(__dirname, '..', '..', 'bin', 'strata.js'), ...args, ...flags, '--json'], { env, encoding: 'utf8' });
    const dirB = tmpDir('cli-b');
    const attach = cli(['attach', dirB, TENANT]);
    expect(attach.status, attach.stderr).toBe(0);
    expect(JSON.parse(attach.stdout)).toMatchObject({ tenantId: TENANT, generation: 2, timelines: ['main'] });
    const status = cli(['remote', 'status', dirB]);
    expect(status.status, status.stderr).toBe(0);
    const st = JSON.parse(status.stdout) as { tenants: Array<{ attachment: { generation: number } }>; timelines: Array<{ generation: number; stale: boolean; behind: boolean }> };
    expect(st.tenants[0].attachment.generation).toBe(2);
    expect(st.timelines[0]).toMatchObject({ generation: 2, stale: false, behind: false });
    const detach = cli(['detach', dirB, TENANT]);
    expect(detach.status, detach.stderr).toBe(0);
    expect(JSON.parse(detach.stdout)).toMatchObject({ generation: 2, stale: false });
    // The tenant went back to storage whole: a node attaching now reads every page.
    const repoC = await Repository.open(tmpDir('cli-c'), { remoteStorage: storage });
    try {
      expect((await repoC.attachTenant(TENANT)).generation).toBe(3);
      expect(await checkPages(repoC.getTimeline(TENANT, 'main'), m, 'A')).toBeGreaterThan(0);
    } finally {
      await repoC.close();
      await storage.close();
    }
  }, 60_000);
});
