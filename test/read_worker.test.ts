/**
 * The TS core's background reads (Core.getPagesInBackground) on its read worker thread
 * (lib/core/ts/read_worker.ts): the same pages, status and counts as getPages and the oracle,
 * without touching the core's page cache; the layer maps as they were at the call; a layer closed
 * and unlinked while a read that needs it is in flight still read (as the native core's
 * FileHandles::Retain), with one descriptor or many; corruption named; a worker that dies fails
 * its reads with IO_ERROR and later reads run on the core's thread; a closed core's reads CLOSED.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { COUNTS_PER_REQUEST, type Core } from '../lib/core/core';
import { BLOCK_SIZE } from '../lib/core/format';
import { createTsCore } from '../lib/core/ts/core';
import { IMPLEMENTATIONS, NATIVE_SKIP_NOTE, makeCore } from './helpers/cores';
import { crashReadWorkersForTest, readWorkerStats } from '../lib/core/ts/read_worker';
import { StrataError } from '../lib/errors';
import { clearFaults, countFaults } from '../lib/fault_injection';
import { KEY_MAX, KEY_MIN } from '../lib/key';
import { PAGE_SIZE } from '../lib/record';
import {
  type Entry, type LayerSpec, type PagesResult, type TestRequest, deltaSpec, imageSpec, pageKey, planOf, randomImageRec, randomPatchRec, runOracle,
  runPlan, sumCounts, tmpDir, writeLayer,
} from './helpers/layers';
import { Rng } from './helpers/random';

const KEYS = 40;
const dir = tmpDir('read-worker');
const cores: Core[] = [];
afterAll(() => {
  for (const c of cores) c.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function newCore(maxOpenLayerFiles?: number): Core {
  const c = createTsCore({ pageCacheBytes: 64 * BLOCK_SIZE, maxOpenLayerFiles });
  cores.push(c);
  return c;
}

/** An image of every key at LSN 10, then three delta layers of patches and some new images. */
function randomSpecs(rng: Rng): LayerSpec[] {
  const image = imageSpec(10n, Array.from({ length: KEYS }, (_, i) => ({ key: pageKey(i), rec: randomImageRec(rng) })));
  const deltas = [0, 1, 2].map((j) => {
    const lo = 11n + BigInt(j) * 100n;
    const entries: Entry[] = [];
    for (let i = 0; i < KEYS; i++) {
      for (let v = 0; v < rng.int(0, 4); v++) entries.push({ key: pageKey(i), lsn: lo + BigInt(v * 10 + rng.int(0, 9)), rec: rng.chance(0.15) ? randomImageRec(rng) : randomPatchRec(rng) });
    }
    const seen = new Set<string>();
    return deltaSpec(lo, lo + 100n, entries.filter((e) => !seen.has(`${e.key.toString('hex')}/${e.lsn}`) && !!seen.add(`${e.key.toString('hex')}/${e.lsn}`)));
  });
  return [image, ...deltas];
}

let fileNo = 0;
function writeSpecs(core: Core, specs: readonly LayerSpec[]): { handles: number[]; files: string[] } {
  const files = specs.map(() => path.join(dir, `layer-${fileNo++}`));
  specs.forEach((s, i) => writeLayer(core, files[i], s));
  return { handles: files.map((f) => core.openLayer(f)), files };
}

/** A fresh TS core with one map holding a random layer set. */
function mappedCore(seed: number, maxOpenLayerFiles?: number): { core: Core; specs: LayerSpec[]; handles: number[]; files: string[]; mapId: number } {
  const core = newCore(maxOpenLayerFiles);
  const specs = randomSpecs(new Rng(seed));
  const { handles, files } = writeSpecs(core, specs);
  const mapId = core.createLayerMap();
  core.setLayerMap(mapId, handles);
  return { core, specs, handles, files, mapId };
}

function requestsAt(mapId: number, layers: readonly LayerSpec[], lsn: bigint): TestRequest[] {
  return Array.from({ length: KEYS + 2 }, (_, i) => ({ key: pageKey(i), segments: [{ mapId, layers, capLsn: lsn, mem: [] }] }));
}

async function background(core: Core, requests: readonly TestRequest[]): Promise<PagesResult> {
  const out = Buffer.alloc(requests.length * PAGE_SIZE, 0xee);
  const status = new Uint8Array(requests.length).fill(0xee);
  const counts = new Uint32Array(requests.length * COUNTS_PER_REQUEST).fill(0xeeee);
  await core.getPagesInBackground(planOf(requests), out, status, counts);
  return { out, status, ...sumCounts(counts) };
}

function expectSame(got: PagesResult, want: PagesResult, what: string): void {
  expect(Buffer.from(got.status).toString('hex'), what).toBe(Buffer.from(want.status).toString('hex'));
  expect(got.out.equals(want.out), `${what}: pages`).toBe(true);
  expect(got.layersVisited, what).toBe(want.layersVisited);
  expect(got.recordsApplied, what).toBe(want.recordsApplied);
}

/** The process's open descriptors on any of `files`, unlinked or not (Linux: /proc/self/fd). */
function openFilesOf(files: readonly string[]): string[] {
  const wanted = new Set([...files, ...files.map((f) => `${f} (deleted)`)]);
  const open: string[] = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
      if (wanted.has(target)) open.push(target);
    } catch {
      // closed since the listing
    }
  }
  return open;
}

async function noneOpenWithin(files: readonly string[], ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (openFilesOf(files).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  expect(openFilesOf(files)).toEqual([]);
}

/** What the process writes to stderr while `body` runs (the worker threads' stderr included). */
async function stderrDuring(body: () => Promise<void>): Promise<string> {
  const write = process.stderr.write.bind(process.stderr);
  let seen = '';
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
    seen += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return (write as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stderr.write;
  try {
    await body();
    await new Promise((r) => setTimeout(r, 100)); // a worker's stderr reaches this thread a little later
  } finally {
    process.stderr.write = write;
  }
  return seen;
}

async function failure(p: Promise<unknown>): Promise<StrataError> {
  const e = await p.then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(StrataError);
  return e as StrataError;
}

describe('TS core: background reads on the read worker', () => {
  it('answer as getPages and the oracle do, at every LSN, without touching the core\'s page cache', async () => {
    const rng = new Rng(0x5eed);
    for (let round = 0; round < 6; round++) {
      const core = newCore();
      const specs = randomSpecs(rng);
      const { handles } = writeSpecs(core, specs);
      const mapId = core.createLayerMap();
      core.setLayerMap(mapId, handles);
      for (const lsn of [9n, 10n, 50n, 150n, 250n, 400n]) {
        const requests = requestsAt(mapId, specs, lsn);
        const before = { ...core.pageCache.stats(), offThread: readWorkerStats().offThread };
        const got = await background(core, requests);
        const after = core.pageCache.stats();
        expect([after.hits, after.misses, after.usedPages], 'the core\'s page cache').toEqual([before.hits, before.misses, before.usedPages]);
        expect(readWorkerStats().offThread).toBe(before.offThread + 1);
        expectSame(got, runOracle(requests), `round ${round} LSN ${lsn} against the oracle`);
        expectSame(got, runPlan(core, requests), `round ${round} LSN ${lsn} against getPages`);
      }
    }
    expect(readWorkerStats().inlineReason).toBeNull();
  });

  it('a read of missing pages gives the oracle\'s zeros after a read that filled them (its page buffer is lent again)', async () => {
    const { core, specs, mapId } = mappedCore(23);
    for (let i = 0; i < 3; i++) {
      const full = await background(core, requestsAt(mapId, specs, 400n));
      expect(full.out.some((b) => b !== 0), 'the first read filled pages').toBe(true);
      // Before the first image: every page is missing, and the buffer the first read used is reused.
      expectSame(await background(core, requestsAt(mapId, specs, 9n)), runOracle(requestsAt(mapId, specs, 9n)), `round ${i}: after a full read`);
    }
  });

  it('see the layer maps as they were at the call', async () => {
    const rng = new Rng(11);
    const core = newCore();
    const specs = randomSpecs(rng);
    const { handles } = writeSpecs(core, specs);
    const mapId = core.createLayerMap();
    core.setLayerMap(mapId, handles.slice(0, 1));
    const older = background(core, requestsAt(mapId, specs.slice(0, 1), 400n));
    core.setLayerMap(mapId, handles);
    const newer = background(core, requestsAt(mapId, specs, 400n));
    const second = core.createLayerMap();
    core.setLayerMap(second, handles.slice(0, 2));
    const other = background(core, requestsAt(second, specs.slice(0, 2), 400n));
    expectSame(await older, runOracle(requestsAt(mapId, specs.slice(0, 1), 400n)), 'the map before setLayerMap');
    expectSame(await newer, runOracle(requestsAt(mapId, specs, 400n)), 'the map after setLayerMap');
    expectSame(await other, runOracle(requestsAt(second, specs.slice(0, 2), 400n)), 'a map created after the worker started');
    core.dropLayerMap(second);
    expect((await failure(background(core, requestsAt(second, specs, 400n)))).code).toBe('BAD_ARGUMENT');
  });

  for (const maxOpen of [1, 256]) {
    it(`read layers closed and unlinked while the read is in flight (maxOpenLayerFiles ${maxOpen})`, async () => {
      const { core, specs, handles, files, mapId } = mappedCore(23 + maxOpen, maxOpen);
      const stderr = await stderrDuring(async () => {
        // The core's first background reads start its worker, which takes tens of milliseconds to
        // boot: every layer is closed and unlinked (as eviction does it) before the worker opens any.
        const reads = [50n, 150n, 400n].map((lsn) => background(core, requestsAt(mapId, specs, lsn)));
        core.setLayerMap(mapId, []);
        for (const h of handles) core.closeLayer(h);
        for (const f of files) fs.rmSync(f);
        const got = await Promise.all(reads);
        [50n, 150n, 400n].forEach((lsn, i) => expectSame(got[i], runOracle(requestsAt(mapId, specs, lsn)), `LSN ${lsn} after its layers were unlinked`));
        // Nothing reads them now: a read of the emptied map finds no page.
        const after = await background(core, requestsAt(mapId, [], 400n));
        expect([...after.status].every((s) => s === 1)).toBe(true);
        // The worker is done with the handed-over descriptors: the core closes them.
        await noneOpenWithin(files, 10_000);
      });
      // Only the thread that opened a descriptor closes it (Node warns otherwise).
      expect(stderr).not.toMatch(/closed but not opened/);
    });
  }

  it('a flipped byte is CORRUPT_LAYER naming the file and block', async () => {
    const { core, specs, files, mapId } = mappedCore(31);
    const bytes = fs.readFileSync(files[0]);
    bytes[BLOCK_SIZE * 3 + 17] ^= 0x20; // a value block of the image layer
    fs.writeFileSync(files[0], bytes);
    const err = await failure(background(core, requestsAt(mapId, specs, 10n)));
    expect(err.code).toBe('CORRUPT_LAYER');
    expect(err.message).toContain(files[0]);
    expect(err.message).toContain('block 3');
  });

  it('run on the core\'s thread while fault injection counts, so their reads are counted', async () => {
    const { core, specs, mapId } = mappedCore(41);
    const before = readWorkerStats();
    countFaults();
    try {
      expectSame(await background(core, requestsAt(mapId, specs, 150n)), runOracle(requestsAt(mapId, specs, 150n)), 'under fault counting');
    } finally {
      clearFaults();
    }
    expect(readWorkerStats().onThisThread).toBe(before.onThisThread + 1);
    expect(readWorkerStats().offThread).toBe(before.offThread);
  });

  it('a core closed with reads in flight fails them with CLOSED', async () => {
    const { core, specs, files, mapId } = mappedCore(53);
    await background(core, requestsAt(mapId, specs, 10n)); // the worker has the files open now
    expect(openFilesOf(files).length).toBeGreaterThan(0);
    const read = background(core, requestsAt(mapId, specs, 400n));
    core.close();
    expect((await failure(read)).code).toBe('CLOSED');
    expect((await failure(background(core, requestsAt(mapId, specs, 400n)))).code).toBe('CLOSED');
    // The worker's descriptors are closed as it ends: none of the layer files stays open.
    await noneOpenWithin(files, 10_000);
  });

  it('a worker that dies fails its reads in flight with IO_ERROR; later reads run on the core\'s thread', async () => {
    const { core, specs, mapId } = mappedCore(67);
    await background(core, requestsAt(mapId, specs, 10n));
    // Many reads, so that some are still queued when the thread stops (it may finish the first).
    const reads = Array.from({ length: 40 }, () => background(core, requestsAt(mapId, specs, 400n)).then(
      (r) => { expectSame(r, runOracle(requestsAt(mapId, specs, 400n)), 'a read answered before the worker stopped'); return null; },
      (e: unknown) => e,
    ));
    await crashReadWorkersForTest();
    const errors = (await Promise.all(reads)).filter((e) => e !== null);
    expect(errors.length).toBeGreaterThan(0);
    for (const e of errors) expect((e as StrataError).code).toBe('IO_ERROR');
    const before = readWorkerStats();
    expect(before.inlineReason).toMatch(/read worker exited/);
    expectSame(await background(core, requestsAt(mapId, specs, 400n)), runOracle(requestsAt(mapId, specs, 400n)), 'after the worker died');
    expect(readWorkerStats().onThisThread).toBe(before.onThisThread + 1);
  });
});

describe(`Core.getPagesInBackground, both cores${NATIVE_SKIP_NOTE}`, () => {
  for (const impl of IMPLEMENTATIONS) {
    it(`${impl}: answers as the oracle and refuses bad arguments with BAD_ARGUMENT`, async () => {
      const core = makeCore(impl);
      cores.push(core);
      const specs = randomSpecs(new Rng(79));
      const { handles } = writeSpecs(core, specs);
      const mapId = core.createLayerMap();
      core.setLayerMap(mapId, handles);
      for (const lsn of [10n, 150n, 400n]) expectSame(await background(core, requestsAt(mapId, specs, lsn)), runOracle(requestsAt(mapId, specs, lsn)), `${impl} LSN ${lsn}`);
      const requests = requestsAt(mapId, specs, 400n);
      const plan = planOf(requests);
      const n = requests.length;
      const bad: Array<[string, () => Promise<void>]> = [
        ['status not a Uint8Array', () => core.getPagesInBackground(plan, Buffer.alloc(n * PAGE_SIZE), undefined as unknown as Uint8Array, new Uint32Array(n * COUNTS_PER_REQUEST))],
        ['out one page short', () => core.getPagesInBackground(plan, Buffer.alloc((n - 1) * PAGE_SIZE), new Uint8Array(n), new Uint32Array(n * COUNTS_PER_REQUEST))],
        ['a truncated plan', () => core.getPagesInBackground(plan.subarray(0, plan.length - 3), Buffer.alloc(n * PAGE_SIZE), new Uint8Array(n), new Uint32Array(n * COUNTS_PER_REQUEST))],
      ];
      for (const [what, call] of bad) {
        let p: Promise<void> | null = null;
        expect(() => { p = call(); }, `${impl}: ${what} is a rejection, not a throw`).not.toThrow();
        expect((await failure(p!)).code, `${impl}: ${what}`).toBe('BAD_ARGUMENT');
      }
    });
  }
});

describe(`Core.layerKeysInBackground, both cores${NATIVE_SKIP_NOTE}`, () => {
  for (const impl of IMPLEMENTATIONS) {
    it(`${impl}: the keys layerKeys gives, for layers closed and unlinked meanwhile too; bad arguments reject with BAD_ARGUMENT`, async () => {
      const core = makeCore(impl);
      cores.push(core);
      const rng = new Rng(83);
      const specs = randomSpecs(rng);
      const { handles, files } = writeSpecs(core, specs);
      const before = readWorkerStats();
      const ranges: Array<[Buffer, Buffer, number | undefined]> = [[KEY_MIN, KEY_MAX, undefined], [pageKey(3), pageKey(17), undefined], [pageKey(5), KEY_MAX, 7], [KEY_MIN, KEY_MAX, 0]];
      for (const h of handles) {
        for (const [from, to, max] of ranges) {
          const want = core.layerKeys(h, from, to, max);
          expect((await core.layerKeysInBackground(h, from, to, max)).equals(want), `${impl}: layer ${h}, max ${max}`).toBe(true);
        }
      }
      if (impl === 'ts') expect(readWorkerStats().offThread).toBeGreaterThan(before.offThread); // the listings ran on the worker
      // Listings in flight when their layers are closed and the files unlinked (as a swap does).
      const wanted = handles.map((h) => core.layerKeys(h));
      const listings = handles.map((h) => core.layerKeysInBackground(h));
      for (const h of handles) core.closeLayer(h);
      for (const f of files) fs.rmSync(f);
      const got = await Promise.all(listings);
      got.forEach((k, i) => expect(k.equals(wanted[i]), `${impl}: layer ${handles[i]} closed while listed`).toBe(true));
      await noneOpenWithin(files, 10_000);
      const { handles: live } = writeSpecs(core, specs.slice(0, 1));
      const bad: Array<[string, () => Promise<Buffer>]> = [
        ['a closed layer', () => core.layerKeysInBackground(handles[0])],
        ['a short keyStart', () => core.layerKeysInBackground(live[0], Buffer.alloc(3))],
        ['keyEnd not a Buffer', () => core.layerKeysInBackground(live[0], KEY_MIN, 'zz' as unknown as Buffer)],
        ['a negative maxKeys', () => core.layerKeysInBackground(live[0], KEY_MIN, KEY_MAX, -1)],
      ];
      for (const [what, call] of bad) {
        let p: Promise<Buffer> | null = null;
        expect(() => { p = call(); }, `${impl}: ${what} is a rejection, not a throw`).not.toThrow();
        expect((await failure(p!)).code, `${impl}: ${what}`).toBe('BAD_ARGUMENT');
      }
    });
  }
});
