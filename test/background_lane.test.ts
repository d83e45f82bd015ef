/**
 * The background lane (native/background_thread.h, its TS twin ts/background_thread.ts) bounds how
 * many pieces of background work compute at once, process-wide: the native core's background
 * calls, the TS core's worker threads' merges and reads, and the compression worker's chunks each
 * hold a slot while they compute. The TS twin keeps the addon's lane's counts on any sequence of
 * calls, and across threads never admits more than its slots. With one slot held elsewhere a background call still
 * takes its inputs when made but does not finish until the slot is given back; a whole flush +
 * compaction + image creation never holds more than one slot at a time and returns every page; the
 * count is validated, defaults to one fewer than the CPUs, and follows STRATA_BACKGROUND_THREADS.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type PageKey, PAGE_SIZE, Repository, type WalRecord } from '../lib';
import { compressOffThread } from '../lib/core/compress_worker';
import { compressRecord } from '../lib/core/compress';
import { CODEC_LZ4 } from '../lib/core/format';
import {
  backgroundLaneStats, defaultBackgroundThreads, loadNativeBinding, MAX_BACKGROUND_THREADS, type NativeBinding, setBackgroundThreads,
} from '../lib/core/native';
import { StrataError } from '../lib/errors';
import { BackgroundLane, laneChoice, processLane, useNativeLane } from '../lib/core/ts/background_thread';
import { compactionWorkerStats } from '../lib/core/ts/compaction_worker';
import { crashReadWorkersForTest, readWorkerStats } from '../lib/core/ts/read_worker';
import { workerScript } from '../lib/core/worker_thread';
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
    expect(backgroundLaneStats()).toMatchObject({ slots: 2, lane: 'native' });
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

/**
 * Four rounds of ingest, flush and forced compaction (L0 → L1 and image creation) in a new
 * repository of `impl`; every page read back as written at the end.
 */
async function flushCompactAndImage(impl: 'ts' | 'native', dir: string): Promise<void> {
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
    for (const [b, page] of latest) expect((await tl.getPage(keyOf(b), lsn)).equals(page), `block ${b}`).toBe(true);
  } finally {
    await repo.close();
  }
}

for (const impl of ALL_IMPLEMENTATIONS) {
  const what = impl === 'native' ? 'its calls and its compression chunks' : 'its workers\' merges and reads, and its compression chunks';
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
      await flushCompactAndImage(impl, dir);
      const stats = backgroundLaneStats();
      expect(stats.mostBusy).toBe(1); // the work went through the lane, one piece at a time
      expect(stats).toMatchObject({ slots: 1, busy: 0 });
    });
  });
}

describe('the TS twin of the lane (ts/background_thread.ts)', () => {
  const before = backgroundLaneStats().slots;
  const nativeChoice = laneChoice();
  afterAll(() => {
    setBackgroundThreads(before);
    useNativeLane(nativeChoice);
  });

  it('keeps the counts a plain model keeps, and the addon\'s lane keeps, on random calls', async () => {
    const lane = new BackgroundLane(1);
    const model = { slots: 1, busy: 0, mostBusy: 0 };
    // The addon's lane is the process's: take it over once earlier work has left it.
    const binding = SKIP_NATIVE ? null : loadNativeBinding();
    if (binding !== null) await holdOnlySlot(binding).then((giveBack) => giveBack());
    binding?.setBackgroundThreads(1);
    const rng = new Rng(7);
    for (let step = 0; step < 2000; step++) {
      const op = rng.int(0, 2);
      if (op === 0) {
        const free = model.busy < model.slots;
        expect(lane.tryEnter(), `step ${step}: tryEnter`).toBe(free);
        if (free) {
          model.busy++;
          model.mostBusy = Math.max(model.mostBusy, model.busy);
          binding?.enterBackgroundLane(); // does not block: a slot is free
        }
      } else if (op === 1) {
        expect(lane.leave(), `step ${step}: leave`).toBe(model.busy > 0);
        if (model.busy > 0) {
          model.busy--;
          binding?.leaveBackgroundLane();
        }
      } else {
        const slots = rng.int(1, 4);
        expect(lane.setSlots(slots), `step ${step}: setSlots`).toBe(model.slots);
        binding?.setBackgroundThreads(slots);
        model.slots = slots;
        model.mostBusy = model.busy;
      }
      expect(lane.stats(), `step ${step}`).toEqual(model);
      if (binding !== null) expect(binding.backgroundLaneStats(), `step ${step}: the addon's lane`).toEqual(model);
    }
    while (model.busy-- > 0) {
      lane.leave();
      binding?.leaveBackgroundLane();
    }
    binding?.setBackgroundThreads(before);
  });

  it('across threads admits at most its slots at once, and raising them admits the waiting at once', async () => {
    const script = workerScript(path.join(__dirname, '..', 'lib', 'core', 'ts', 'background_thread.ts'));
    if ('reason' in script) throw new Error(`the test needs the build: ${script.reason}`);
    const SLOTS = 2;
    const THREADS = 4;
    const ROUNDS = 300;
    const lane = new BackgroundLane(SLOTS);
    const inside = new Int32Array(new SharedArrayBuffer(8)); // [computing now, most at once]
    const code = `
      const { workerData, parentPort } = require('node:worker_threads');
      const { BackgroundLane } = require(workerData.file);
      const lane = new BackgroundLane(workerData.lane);
      const inside = new Int32Array(workerData.inside);
      for (let i = 0; i < workerData.rounds; i++) {
        lane.enter();
        const now = Atomics.add(inside, 0, 1) + 1;
        for (let m = Atomics.load(inside, 1); now > m && Atomics.compareExchange(inside, 1, m, now) !== m; m = Atomics.load(inside, 1));
        const until = Date.now() + (i % 50 === 0 ? 2 : 0);
        while (Date.now() < until);
        Atomics.sub(inside, 0, 1);
        lane.leave();
      }
      parentPort.postMessage('done');`;
    const done = Array.from({ length: THREADS }, () => new Promise<void>((resolve, reject) => {
      const w = new Worker(code, { eval: true, workerData: { file: script.file, lane: lane.shared, inside: inside.buffer, rounds: ROUNDS } });
      w.once('message', () => resolve());
      w.once('error', reject);
    }));
    await Promise.all(done);
    expect(Atomics.load(inside, 1)).toBeLessThanOrEqual(SLOTS);
    expect(lane.stats()).toMatchObject({ slots: SLOTS, busy: 0 });
    expect(lane.stats().mostBusy).toBeGreaterThanOrEqual(1);

    // One slot, held here: a thread entering waits, and runs once the slots are raised.
    lane.setSlots(1);
    expect(lane.tryEnter()).toBe(true);
    const entered = new Int32Array(new SharedArrayBuffer(4));
    const waiter = new Worker(`
      const { workerData, parentPort } = require('node:worker_threads');
      const lane = new (require(workerData.file).BackgroundLane)(workerData.lane);
      lane.enter();
      Atomics.store(new Int32Array(workerData.entered), 0, 1);
      lane.leave();
      parentPort.postMessage('done');`, { eval: true, workerData: { file: script.file, lane: lane.shared, entered: entered.buffer } });
    const waited = new Promise<void>((resolve, reject) => { waiter.once('message', () => resolve()); waiter.once('error', reject); });
    await sleep(GATED_WAIT_MS);
    expect(Atomics.load(entered, 0), 'entered a full lane').toBe(0);
    lane.setSlots(2);
    await waited;
    expect(Atomics.load(entered, 0)).toBe(1);
    expect(lane.leave()).toBe(true);
    expect(lane.stats()).toMatchObject({ slots: 2, busy: 0, mostBusy: 2 });
  });

  it('gates the TS core\'s worker threads where the addon\'s lane is not in use', async () => {
    useNativeLane(''); // as where the addon does not load
    setBackgroundThreads(1);
    expect(backgroundLaneStats().slots).toBe(1);
    const dir = tmpDir('background-lane-ts');
    const core = makeCore('ts');
    try {
      const entries: Entry[] = Array.from({ length: 50 }, (_, k) => ({ key: pageKey(k), lsn: 10n, rec: imageRec(k) }));
      const file = path.join(dir, 'gated.delta');
      writeLayer(core, file, deltaSpec(1n, 100n, entries));
      const handle = core.openLayer(file);
      const expected = core.layerKeys(handle, KEY_MIN, KEY_MAX);
      const offThread = readWorkerStats().offThread;
      // The core's read worker is started (a start can take longer than GATED_WAIT_MS) and listing off the loop.
      expect(Buffer.compare(await core.layerKeysInBackground(handle, KEY_MIN, KEY_MAX), expected)).toBe(0);
      expect(readWorkerStats().offThread).toBe(offThread + 1);
      const deadline = Date.now() + DRAIN_TIMEOUT_MS;
      while (!processLane.tryEnter()) {
        if (Date.now() > deadline) throw new Error('the TS lane did not drain');
        await sleep(5);
      }
      let pending: Promise<Buffer>;
      try {
        pending = core.layerKeysInBackground(handle, KEY_MIN, KEY_MAX);
        await sleep(GATED_WAIT_MS);
        expect(await settled(pending), 'a listing finished while the only slot was held').toBe(false);
      } finally {
        processLane.leave();
      }
      expect(Buffer.compare(await pending, expected)).toBe(0);
    } finally {
      core.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a worker that dies holding a slot gives it back: later work is not stalled', async () => {
    useNativeLane('');
    setBackgroundThreads(1);
    const dir = tmpDir('background-lane-crash');
    const core = makeCore('ts');
    try {
      const entries: Entry[] = Array.from({ length: 2000 }, (_, k) => ({ key: pageKey(k), lsn: 10n, rec: imageRec(k) }));
      const file = path.join(dir, 'many.delta');
      writeLayer(core, file, deltaSpec(1n, 100n, entries));
      const handle = core.openLayer(file);
      const expected = core.layerKeys(handle, KEY_MIN, KEY_MAX);
      await core.layerKeysInBackground(handle, KEY_MIN, KEY_MAX); // the worker is started
      // Listings queued back to back: the worker is computing one, in the lane's only slot, when it is stopped.
      const listings = Array.from({ length: 40 }, () => core.layerKeysInBackground(handle, KEY_MIN, KEY_MAX).then(() => null, (e: unknown) => e));
      await sleep(5);
      await crashReadWorkersForTest();
      const failed = (await Promise.all(listings)).filter((e) => e !== null);
      expect(failed.length).toBeGreaterThan(0);
      expect(processLane.stats().busy).toBe(0);
      // The next listing runs on the core's thread, and the next core's worker gets the slot.
      expect(Buffer.compare(await core.layerKeysInBackground(handle, KEY_MIN, KEY_MAX), expected)).toBe(0);
      const next = makeCore('ts');
      try {
        const h = next.openLayer(file);
        expect(Buffer.compare(await next.layerKeysInBackground(h, KEY_MIN, KEY_MAX), expected)).toBe(0);
      } finally {
        next.close();
      }
    } finally {
      core.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a TS flush + compaction + image creation holds at most one of its slots at a time', async () => {
    useNativeLane('');
    setBackgroundThreads(1);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-lane-ts-twin-'));
    try {
      await flushCompactAndImage('ts', dir);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(processLane.stats()).toMatchObject({ slots: 1, busy: 0, mostBusy: 1 });
    expect(compactionWorkerStats().offThread).toBeGreaterThan(0);
  });
});
