/**
 * Stored PostgreSQL records (tag 4) in the read path of both cores: written into delta layers (raw
 * and compressed) and read-plan memory, a will_init record as the chain's base, the result equal to
 * redoing the records one by one; records larger than a page; the 128 KiB bound; WAL_UNSUPPORTED
 * and REDO_FAILED reaching the caller with their codes and the page key, identically in both cores.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Core } from '../../lib/core/core';
import { CODEC_LZ4, CODEC_NONE, CODEC_ZSTD, type CodecId } from '../../lib/core/format';
import { redoRecord } from '../../lib/core/ts/pg/rmgr';
import { isStrataError } from '../../lib/errors';
import { MAX_RECORD_SIZE, recordWillInit } from '../../lib/record';
import { IMPLEMENTATIONS, makeCore } from '../helpers/cores';
import {
  RM_HASH, heapDelete, heapInsert, heapPrune, heapUpdate, noBlockRecord, tuple, type Ctx,
} from '../helpers/pg_heap_records';
import { Bytes, storedRecord } from '../helpers/pg_records';
import { truncatedStoredRecord } from '../../lib/pg/walingest';
import { deltaSpec, openSpecs, pageKey, planOf, runPlan, tmpDir, writeLayer, type LayerSpec, type TestRequest } from '../helpers/layers';

const BLK = 3;
const K = pageKey(BLK);
const BASE_LSN = 0x1_0000_0000n;

function ctx(i: number): Ctx {
  return { lsn: BASE_LSN + BigInt(i) * 0x40n, xid: 900 + i, blkno: BLK, rel: 16384 };
}

/** A chain of real heap records on one page: INSERT+INIT, inserts, a HOT update, a delete, a prune. */
function heapChain(): Buffer[] {
  const recs = [heapInsert(ctx(0), 1, tuple('first row'), { init: true })];
  for (let i = 1; i <= 6; i++) recs.push(heapInsert(ctx(i), i + 1, tuple(`row number ${i}`)));
  recs.push(heapUpdate(ctx(7), { hot: true, oldOffnum: 2, newOffnum: 8, oldXmax: 907, t: tuple('row number 1, updated') }));
  recs.push(heapDelete(ctx(8), 3, 908));
  recs.push(heapPrune(ctx(9), [[2, 8]], [3], []));
  return recs;
}

/** The page after redoing recs[0..n) one by one (the TS rmgr directly, no read path). */
function expectedPage(recs: Buffer[], n: number): Buffer {
  const page = Buffer.alloc(8192);
  for (let i = 0; i < n; i++) redoRecord(recs[i], 0, recs[i].length, page, 0);
  return page;
}

function lsnOf(rec: Buffer): bigint {
  return rec.readBigUInt64LE(4);
}

/** A stored heap INSERT whose main data carries `extra` bytes after xl_heap_insert (redo ignores them). */
function bigInsert(c: Ctx, offnum: number, extra: number): Buffer {
  const t = tuple('big');
  return storedRecord({
    targetId: 0, lsn: c.lsn, xid: c.xid, rmid: 10, info: 0x00,
    blocks: [{ id: 0, blockNumber: BLK, relNumber: 16384, data: new Bytes().u16(t.infomask2).u16(t.infomask).u8(t.hoff).raw(t.body).build() }],
    main: new Bytes().u16(offnum).u8(0).pad(extra).build(),
  });
}

function errorOf(f: () => unknown): { code: string; message: string } {
  try {
    f();
  } catch (e) {
    if (isStrataError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected a StrataError');
}

const errorsByImpl = new Map<string, { code: string; message: string }[]>();

describe.each(IMPLEMENTATIONS)('PostgreSQL records in the read path (%s core)', (impl) => {
  const core: Core = makeCore(impl);
  const dir = tmpDir(`pgread-${impl}`);
  afterAll(() => core.close());
  const recs = heapChain();
  const last = lsnOf(recs[recs.length - 1]);

  const mapOf = (layers: LayerSpec[]): number => {
    const id = core.createLayerMap();
    core.setLayerMap(id, openSpecs(core, dir, layers));
    return id;
  };
  const request = (mapId: number, layers: LayerSpec[], cap: bigint, mem: Buffer[] = []): TestRequest => ({
    key: K, segments: [{ mapId, layers, capLsn: cap, mem: mem.map((rec) => ({ lsn: lsnOf(rec), rec })).reverse() }],
  });

  it.each([CODEC_NONE, CODEC_LZ4, CODEC_ZSTD] as CodecId[])('a delta layer of heap records reads back as redo gives it (codec %i)', (codec) => {
    expect(recordWillInit(recs[0])).toBe(true);
    expect(recordWillInit(recs[1])).toBe(false);
    const layers = [deltaSpec(BASE_LSN, last + 1n, recs.map((rec) => ({ key: K, lsn: lsnOf(rec), rec })), codec)];
    const mapId = mapOf(layers);
    for (const n of [1, 4, recs.length]) {
      const got = runPlan(core, [request(mapId, layers, lsnOf(recs[n - 1]))]);
      expect(got.status[0]).toBe(0);
      expect(got.recordsApplied).toBe(n);
      expect(got.out.equals(expectedPage(recs, n))).toBe(true);
    }
  });

  it('layer records below, read-plan memory above; a will_init record in memory ends the chain', () => {
    const layers = [deltaSpec(BASE_LSN, lsnOf(recs[4]), recs.slice(0, 4).map((rec) => ({ key: K, lsn: lsnOf(rec), rec })))];
    const mapId = mapOf(layers);
    const got = runPlan(core, [request(mapId, layers, last, recs.slice(4))]);
    expect(got.out.equals(expectedPage(recs, recs.length))).toBe(true);
    expect(got.recordsApplied).toBe(recs.length);
    const fresh = heapInsert(ctx(20), 1, tuple('again'), { init: true });
    const again = runPlan(core, [request(mapId, layers, lsnOf(fresh), [...recs.slice(4), fresh])]);
    expect(again.recordsApplied).toBe(1);
    expect(again.out.equals(expectedPage([fresh], 1))).toBe(true);
  });

  it('records larger than a page are stored and redone; above 128 KiB the writer refuses them', () => {
    const big = bigInsert(ctx(30), 2, 20_000);
    expect(big.length).toBeGreaterThan(8195);
    const layers = [deltaSpec(BASE_LSN, lsnOf(big) + 1n, [{ key: K, lsn: lsnOf(recs[0]), rec: recs[0] }, { key: K, lsn: lsnOf(big), rec: big }], CODEC_LZ4)];
    const got = runPlan(core, [request(mapOf(layers), layers, lsnOf(big))]);
    expect(got.out.equals(expectedPage([recs[0], big], 2))).toBe(true);
    const huge = bigInsert(ctx(31), 2, MAX_RECORD_SIZE);
    const spec = deltaSpec(BASE_LSN, lsnOf(huge) + 1n, [{ key: K, lsn: lsnOf(huge), rec: huge }]);
    expect(errorOf(() => writeLayer(core, `${dir}/huge`, spec)).code).toBe('BAD_ARGUMENT');
  });

  it('an unsupported record fails the read with WAL_UNSUPPORTED, a misfit one with REDO_FAILED, naming the page', () => {
    const hash = noBlockRecord({ ...ctx(40), blkno: BLK }, RM_HASH, 0x20);
    const misfit = heapDelete(ctx(41), 77, 941);
    const layers = [deltaSpec(BASE_LSN, last + 1n, recs.map((rec) => ({ key: K, lsn: lsnOf(rec), rec })))];
    const mapId = mapOf(layers);
    const unsupported = errorOf(() => runPlan(core, [request(mapId, layers, lsnOf(hash), [hash])]));
    expect(unsupported.code).toBe('WAL_UNSUPPORTED');
    expect(unsupported.message).toMatch(/^WAL_UNSUPPORTED: page 1663\/5\/16384\.0#3: Hash\/INSERT at 1\/[0-9A-F]+: /);
    const failed = errorOf(() => runPlan(core, [request(mapId, layers, lsnOf(misfit), [misfit])]));
    expect(failed.code).toBe('REDO_FAILED');
    expect(failed.message).toMatch(/^REDO_FAILED: page 1663\/5\/16384\.0#3: Heap\/DELETE at 1\/[0-9A-F]+, block id 0 \(block 3\): invalid lp/);
    // The same from a layer file.
    const inLayer = [deltaSpec(BASE_LSN, lsnOf(hash) + 1n, [...recs, hash].map((rec) => ({ key: K, lsn: lsnOf(rec), rec })))];
    const fromLayer = errorOf(() => runPlan(core, [request(mapOf(inLayer), inLayer, lsnOf(hash))]));
    expect(fromLayer).toEqual(unsupported);
    errorsByImpl.set(impl, [unsupported, failed]);
  });

  it('the async read (worker thread in the native core) reports the same codes and messages', async () => {
    const hash = noBlockRecord({ ...ctx(50), blkno: BLK }, RM_HASH, 0x20);
    const layers = [deltaSpec(BASE_LSN, lsnOf(hash) + 1n, [...recs, hash].map((rec) => ({ key: K, lsn: lsnOf(rec), rec })))];
    const mapId = mapOf(layers);
    const plan = planOf([request(mapId, layers, lsnOf(hash))]);
    const sync = errorOf(() => runPlan(core, [request(mapId, layers, lsnOf(hash))]));
    for (const cachedInline of [false, true]) {
      let err: unknown = null;
      await core.getPagesAsync(plan, Buffer.alloc(8192), new Uint8Array(1), new Uint32Array(2), cachedInline).catch((e: unknown) => { err = e; });
      expect(isStrataError(err, 'WAL_UNSUPPORTED'), String(err)).toBe(true);
      expect((err as Error).message).toBe(sync.message);
    }
    const ok = Buffer.alloc(8192);
    await core.getPagesAsync(planOf([request(mapId, layers, last)]), ok, new Uint8Array(1), new Uint32Array(2), false);
    expect(ok.equals(expectedPage(recs, recs.length))).toBe(true);
  });
});

describe.skipIf(IMPLEMENTATIONS.length < 2)('PostgreSQL read-path errors', () => {
  it('are the same text in both cores', () => {
    expect(errorsByImpl.get('native')).toEqual(errorsByImpl.get('ts'));
  });
});

describe.each(IMPLEMENTATIONS)('a WAL record too large to store (%s core)', (impl) => {
  const core = makeCore(impl);
  const dir = tmpDir(`pg-truncated-${impl}`);
  afterAll(() => core.close());

  it('is kept cut down to its header and block references, and its page fails with WAL_UNSUPPORTED naming it', () => {
    const recs = heapChain();
    // An INSERT whose main data makes its stored form pass the largest record: ingest cuts it down.
    const big = bigInsert(ctx(10), 8, MAX_RECORD_SIZE);
    expect(big.length).toBeGreaterThan(MAX_RECORD_SIZE);
    const cut = truncatedStoredRecord(big);
    expect(cut.length).toBeLessThan(100);
    const spec = deltaSpec(BASE_LSN, BASE_LSN + 0x1000n, [...recs, cut].map((rec) => ({ key: K, lsn: lsnOf(rec), rec })));
    const [h] = openSpecs(core, dir, [spec]);
    const map = core.createLayerMap();
    core.setLayerMap(map, [h]);
    const at = (cap: bigint): TestRequest => ({ key: K, segments: [{ mapId: map, layers: [spec], capLsn: cap, mem: [] }] });
    // Below the cut record the page reads as ever; at it, the read fails loudly.
    expect(runPlan(core, [at(lsnOf(recs[recs.length - 1]))]).out.equals(expectedPage(recs, recs.length))).toBe(true);
    const e = errorOf(() => runPlan(core, [at(lsnOf(cut))]));
    expect(e.code).toBe('WAL_UNSUPPORTED');
    expect(e.message).toMatch(/Heap\/INSERT at [0-9A-F]+\/[0-9A-F]+.*too large to store/);
  });
});
