/**
 * The compression worker's slot of the native background lane is never lost: the addon's held
 * cell is set in the same call that takes or gives back a slot, and a worker that exits holding
 * one (a crash, or stopCompressWorkerForTest) has it given back by the thread that started it.
 * Its own file: stopping the process's compression worker is for good.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '../lib';
import { compressRecord } from '../lib/core/compress';
import { compressOffThread, stopCompressWorkerForTest } from '../lib/core/compress_worker';
import { CODEC_LZ4 } from '../lib/core/format';
import { backgroundLaneStats, loadNativeBinding, type NativeBinding, setBackgroundThreads } from '../lib/core/native';
import { NATIVE_SKIP_NOTE, SKIP_NATIVE } from './helpers/cores';

/** How long the compression request is given to reach the worker and block on the lane. */
const REACH_WORKER_MS = 150;
/** How long the lane may take to drain (earlier work, or the give-back after the exit). */
const DRAIN_TIMEOUT_MS = 10_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function laneDrained(): Promise<boolean> {
  const deadline = Date.now() + DRAIN_TIMEOUT_MS;
  while (backgroundLaneStats().busy > 0) {
    if (Date.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

/** What `f` threw, as "CODE: message" (the addon's coded errors), or '' if it did not throw. */
function messageOf(f: () => unknown): string {
  try {
    f();
    return '';
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    return `${String(code)}: ${e instanceof Error ? e.message : String(e)}`;
  }
}

/** A page lz4 shrinks, but not to nothing. */
function page(): Buffer {
  const p = Buffer.alloc(PAGE_SIZE, 0);
  for (let i = 0; i < PAGE_SIZE; i += 64) p.writeUInt32LE((i * 2654435761) >>> 0, i);
  return p;
}

const describeNative = SKIP_NATIVE ? describe.skip : describe;

describeNative(`the compression worker's lane slot${NATIVE_SKIP_NOTE}`, () => {
  let binding: NativeBinding;
  const before = backgroundLaneStats().slots;
  beforeAll(() => { binding = loadNativeBinding(); });
  afterAll(() => { setBackgroundThreads(before); });

  it('the held cell follows the slot: set by the enter, cleared once by the leave, refused when bad', async () => {
    setBackgroundThreads(2);
    expect(await laneDrained()).toBe(true);
    const held = new Int32Array(new SharedArrayBuffer(4));
    binding.enterBackgroundLane(held);
    expect(held[0]).toBe(1);
    expect(backgroundLaneStats().busy).toBe(1);
    expect(messageOf(() => binding.enterBackgroundLane(held))).toMatch(/^BAD_ARGUMENT: .*already holds a slot/);
    expect(backgroundLaneStats().busy).toBe(1);
    expect(binding.leaveBackgroundLane(held)).toBe(true);
    expect(held[0]).toBe(0);
    expect(backgroundLaneStats().busy).toBe(0);
    binding.enterBackgroundLane(); // another holder: a second give-back through the cell must not take its slot
    expect(binding.leaveBackgroundLane(held)).toBe(false);
    expect(backgroundLaneStats().busy).toBe(1);
    expect(binding.leaveBackgroundLane()).toBe(true);
    for (const bad of [new Uint32Array(1), new Int32Array(0)]) {
      expect(messageOf(() => binding.enterBackgroundLane(bad as Int32Array))).toMatch(/^BAD_ARGUMENT: .*enterBackgroundLane: held must/);
      expect(messageOf(() => binding.leaveBackgroundLane(bad as Int32Array))).toMatch(/^BAD_ARGUMENT: .*leaveBackgroundLane: held must/);
    }
    expect(backgroundLaneStats().busy).toBe(0);
  });

  it('a worker stopped just as it takes the only slot has the slot given back, and its chunk is compressed here', async () => {
    const src = page();
    const records = [{ src, start: 0, end: PAGE_SIZE }];
    await compressOffThread(CODEC_LZ4, records, () => undefined); // the worker is started
    setBackgroundThreads(1);
    expect(await laneDrained()).toBe(true);
    binding.enterBackgroundLane(); // the only slot: the worker's next chunk blocks in the lane
    const got: Array<Buffer | null> = [];
    const pending = compressOffThread(CODEC_LZ4, records, (_i, packed) => { got.push(packed === null ? null : Buffer.from(packed)); });
    await sleep(REACH_WORKER_MS);
    // Terminating cannot interrupt the worker's wait; it takes effect once the worker has the slot.
    const stopped = stopCompressWorkerForTest();
    binding.leaveBackgroundLane();
    await stopped;
    await pending;
    expect(got).toEqual([compressRecord(CODEC_LZ4, src)]); // compressed on this thread instead
    expect(await laneDrained()).toBe(true);
    binding.enterBackgroundLane(); // the slot is free again: this would block for good otherwise
    expect(binding.leaveBackgroundLane()).toBe(true);
  });
});
