/**
 * The background lane (native/background_thread.h) bounds how many pieces of background work
 * compute at once, process-wide: the native core's background calls and the compression worker's
 * chunks each hold a slot while they compute. With one slot held elsewhere a background call still
 * takes its inputs when made but does not finish until the slot is given back; a whole flush +
 * compaction + image creation never holds more than one slot at a time and returns every page; the
 * count is validated, defaults to one fewer than the CPUs, and follows STRATA_BACKGROUND_THREADS.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type PageKey, PAGE_SIZE, Repository, type WalRecord } from '../lib';
import { compressOffThread } from '../lib/core/compress_worker';
import { compressRecord } from '../lib/core/compress';
import { CODEC_LZ4 } from '../lib/core/format';
import {
  backgroundLaneStats, defaultBackgroundThreads, loadNativeBinding, MAX_BACKGROUND_THREADS, type NativeBinding, setBackgroundThreads,
} from '../lib/core/native';
import { StrataError } from '../lib/errors';
import { KEY_MAX, KEY_MIN } from '../lib/key';
import { Rng } from './helpers/random';
import { ALL_IMPLEMENTATIONS, makeCore, NATIVE_SKIP_NOTE, SKIP_NATIVE } from './helpers/cores';
import { deltaSpec, type Entry, imageRec, pageKey, tmpDir, writeLayer } from './helpers/layers';

/** How long a gated call is given to (wrongly) finish: far longer than it needs. */
const GATED_WAIT_MS = 150;
/** How long the lane may take to drain of earlier tests' work before one is taken here. */
const DRAIN_TIMEOUT_MS = 10_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Whether `p` has settled, without waiting for it. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(() => { done = true; }, () => { done = true; });
  await new Promise((r) => setImmediate(r));
  return done;
}

/**
 * Takes the lane's only slot from this thread, once it is free (entering a full lane here would
 * block the event loop); returns the function that gives it back.
 */
async function holdOnlySlot(binding: NativeBinding): Promise<() => void> {
  setBackgroundThreads(1);
  const deadline = Date.now() + DRAIN_TIMEOUT_MS;
  while (backgroundLaneStats().busy > 0) {
    if (Date.now() > deadline) throw new Error('the background lane did not drain');
    await sleep(5);
  }
  binding.enterBackgroundLane();
  return () => binding.leaveBackgroundLane();
}

describe('setBackgroundThreads and its default', () => {
  const before = backgroundLaneStats().slots;
  afterAll(() => { setBackgroundThreads(before); });

  it('takes whole numbers from 1 to MAX_BACKGROUND_THREADS and returns the previous count', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, MAX_BACKGROUND_THREADS + 1]) {
      const err = (() => { try { setBackgroundThreads(bad); return null; } catch (e) { return e; } })();
      expect(err, String(bad)).toBeInstanceOf(StrataError);
      expect((err as StrataError).code).toBe('BAD_ARGUMENT');
    }
    expect(backgroundLaneStats().slots).toBe(before);
    expect(setBackgroundThreads(3)).toBe(before);
    expect(backgroundLaneStats().slots).toBe(3);
    expect(setBackgroundThreads(before)).toBe(3);
  });

  it('defaults to one fewer than the CPUs, at least 1, unless STRATA_BACKGROUND_THREADS says otherwise', () => {
    const cpus = os.availableParallelism();
    expect(defaultBackgroundThreads({})).toBe(Math.max(1, cpus - 1));
    expect(defaultBackgroundThreads({ STRATA_BACKGROUND_THREADS: '5' })).toBe(5);
    for (const ignored of ['0', 'x', '2.5', String(MAX_BACKGROUND_THREADS + 1)]) {
      expect(defaultBackgroundThreads({ STRATA_BACKGROUND_THREADS: ignored }), ignored).toBe(Math.max(1, cpus - 1));
    }
  });
});

const describeNative = SKIP_NATIVE ? describe.skip : describe;

describeNative(`the native background lane${NATIVE_SKIP_NOTE}`, () => {
  const dir = tmpDir('background-lane');
  const core = SKIP_NATIVE ? null : makeCore('native');
  let binding: NativeBinding;
  const before = backgroundLaneStats().slots;
  beforeAll(() => { binding = loadNativeBinding(); });
  afterAll(() => {
    setBackgroundThreads(before);
    core?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('is the addon\'s, with the count setBackgroundThreads gave', () => {
    setBackgroundThreads(2);
    expect(backgroundLaneStats()).toMatchObject({ slots: 2, active: true });
    expect(binding.backgroundLaneStats().slots).toBe(2);
  });

  it('a background call made while the only slot is held takes its inputs then, and finishes once the slot is back', async () => {
    const entries: Entry[] = Array.from({ length: 50 }, (_, k) => ({ key: pageKey(k), lsn: 10n, rec: imageRec(k) }));
    const spec = deltaSpec(1n, 100n, entries);
    const file = path.join(dir, 'gated.delta');
    writeLayer(core!, file, spec);
    const handle = core!.openLayer(file);
    const expected = core!.layerKeys(handle, KEY_MIN, KEY_MAX);
    const giveBack = await holdOnlySlot(binding);
    let pending: Promise<Buffer>;
    try {
      pending = core!.layerKeysInBackground(handle, KEY_MIN, KEY_MAX);
      core!.closeLayer(handle); // the call already holds the layer
      await sleep(GATED_WAIT_MS);
      expect(await settled(pending)).toBe(false);
      expect(backgroundLaneStats().busy).toBe(1);
    } finally {
      giveBack();
    }
    expect(Buffer.compare(await pending, expected)).toBe(0);
  });

  it('a compression chunk sent while the only slot is held is compressed once it is back, to the same bytes', async () => {
    const page = Buffer.alloc(PAGE_SIZE, 0);
    for (let i = 0; i < PAGE_SIZE; i += 64) page.writeUInt32LE((i * 2654435761) >>> 0, i);
    const records = [{ src: page, start: 0, end: PAGE_SIZE }];
    await compressOffThread(CODEC_LZ4, records, () => undefined); // the worker is started
    const got: Array<Buffer | null> = [];
    const giveBack = await holdOnlySlot(binding);
    let pending: Promise<void>;
    try {
      pending = compressOffThread(CODEC_LZ4, records, (_i, packed) => { got.push(packed === null ? null : Buffer.from(packed)); });
      await sleep(GATED_WAIT_MS);
      expect(await settled(pending)).toBe(false);
    } finally {
      giveBack();
    }
    await pending;
    expect(got).toEqual([compressRecord(CODEC_LZ4, page)]);
  });

  it('refuses to give back a slot nobody holds', () => {
    expect(backgroundLaneStats().busy).toBe(0);
    const err = (() => { try { binding.leaveBackgroundLane(); return null; } catch (e) { return e; } })();
    expect(err).toBeInstanceOf(Error);
    expect(String((err as Error).message)).toContain('no slot');
    expect(backgroundLaneStats().busy).toBe(0);
  });
});

const keyOf = (blockNum: number): PageKey => ({ spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0, blockNum });

for (const impl of ALL_IMPLEMENTATIONS) {
  // The TS core's own workers are not in the lane; its image pages' compression is, once the addon has loaded.
  const what = impl === 'native' ? 'its calls and its compression chunks' : 'its compression chunks';
  describeNative(`a flush + compaction + image creation with one slot (${impl} core: ${what})${NATIVE_SKIP_NOTE}`, () => {
    let dir: string;
    const before = backgroundLaneStats().slots;
    beforeAll(() => { loadNativeBinding(); });
    afterEach(() => {
      setBackgroundThreads(before);
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('holds at most one slot at a time and returns every page as written', async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), `strata-lane-${impl}-`));
      setBackgroundThreads(1); // also starts the lane's most-busy count over
      const repo = await Repository.open(dir, { implementation: impl, checkpointDistance: 256 * 1024, compactionTargetSize: 64 * PAGE_SIZE });
      try {
        const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
        const rng = new Rng(11);
        const latest = new Map<number, Buffer>();
        let lsn = tl.lastRecordLsn;
        for (let round = 0; round < 4; round++) {
          const recs: WalRecord[] = [];
          for (let i = 0; i < 300; i++) {
            const b = rng.int(0, 400);
            const page = Buffer.alloc(PAGE_SIZE, (round * 31 + b) % 251);
            page.writeUInt32LE(b, 0);
            latest.set(b, page);
            recs.push({ lsn: (lsn += 8n), key: keyOf(b), kind: 'image', page });
          }
          tl.ingest(recs);
          await tl.flush();
          await tl.compact({ force: true });
        }
        expect(tl.stats().imageLayerCount).toBeGreaterThan(0);
        const stats = backgroundLaneStats();
        expect(stats.mostBusy).toBe(1); // the work went through the lane, one piece at a time
        expect(stats).toMatchObject({ slots: 1, busy: 0 });
        for (const [b, page] of latest) expect((await tl.getPage(keyOf(b), lsn)).equals(page), `block ${b}`).toBe(true);
      } finally {
        await repo.close();
      }
    });
  });
}
