/**
 * The TS core's L0 → L1 merge on its worker thread (lib/core/ts/compaction_worker.ts): the same
 * outputs as the merge on the calling thread; on the calling thread while fault injection is armed
 * (its counters are this thread's); and a worker that dies mid-merge fails that merge with
 * IO_ERROR, leaves none of its outputs, and hands later merges to the calling thread.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DeltaCompactionOptions } from '../lib/core/core';
import { CODEC_NONE } from '../lib/core/format';
import { compactDeltaLayers } from '../lib/core/ts/compaction';
import { compactionWorkerStats, stopCompactionWorkerForTest } from '../lib/core/ts/compaction_worker';
import { StrataError } from '../lib/errors';
import { clearFaults, countFaults, faultCounts } from '../lib/fault_injection';
import { makeCore } from './helpers/cores';
import { type Entry, deltaSpec, imageRec, pageKey, sortEntries, tmpDir, writeLayer } from './helpers/layers';

const INPUTS = 3;
const KEYS = 600; // 3 × 600 uncompressed images: ≈ 15 MB to merge, long enough to stop the worker inside it
const LSNS_PER_INPUT = 1000n;
const TARGET_BYTES = 512 * 1024;

const core = makeCore('ts');
const dir = tmpDir('compaction-worker');
afterAll(() => {
  core.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const inputs = Array.from({ length: INPUTS }, (_, j) => {
  const entries: Entry[] = Array.from({ length: KEYS }, (_, i) => ({ key: pageKey(i), lsn: BigInt(j) * LSNS_PER_INPUT + 7n, rec: imageRec(i * INPUTS + j) }));
  const file = path.join(dir, `in-${j}`);
  writeLayer(core, file, deltaSpec(BigInt(j) * LSNS_PER_INPUT + 1n, BigInt(j + 1) * LSNS_PER_INPUT, sortEntries(entries)));
  return file;
});

function options(tag: string): DeltaCompactionOptions {
  const out = path.join(dir, tag);
  fs.mkdirSync(out, { recursive: true });
  return {
    inputs, outputPrefix: path.join(out, 'out-'), outputSuffix: '.tmp', targetBytes: TARGET_BYTES, codec: CODEC_NONE, lsnStart: 1n, lsnEnd: BigInt(INPUTS) * LSNS_PER_INPUT,
  };
}

function outputsOf(tag: string): Buffer[] {
  const out = path.join(dir, tag);
  return fs.readdirSync(out).sort((a, b) => parseInt(a.slice(4), 10) - parseInt(b.slice(4), 10)).map((n) => fs.readFileSync(path.join(out, n)));
}

function expectSameFiles(a: Buffer[], b: Buffer[], what: string): void {
  expect(a.length, what).toBe(b.length);
  a.forEach((buf, i) => expect(buf.equals(b[i]), `${what}: output ${i}`).toBe(true));
}

describe('the TS core merges on its compaction worker', () => {
  it('writes what the merge on the calling thread writes, and says where it ran', async () => {
    const before = compactionWorkerStats();
    const res = await core.compactDeltas(options('worker'));
    expect(compactionWorkerStats().offThread).toBe(before.offThread + 1);
    expect(compactionWorkerStats().inlineReason).toBeNull();
    expect(res.outputs.length).toBeGreaterThan(20);
    expect(Buffer.isBuffer(res.outputs[0].keyStart)).toBe(true);
    const inline = await compactDeltaLayers(options('inline'));
    expect(res).toEqual({ ...inline, outputs: inline.outputs.map((o) => ({ ...o, path: o.path.replace('/inline/', '/worker/') })) });
    expectSameFiles(outputsOf('worker'), outputsOf('inline'), 'worker against calling thread');
  });

  it('runs concurrent merges side by side with their own outputs', async () => {
    const [a, b] = await Promise.all([core.compactDeltas(options('side-a')), core.compactDeltas(options('side-b'))]);
    expect(a.outputs.length).toBe(b.outputs.length);
    expectSameFiles(outputsOf('side-a'), outputsOf('side-b'), 'two concurrent merges');
    expectSameFiles(outputsOf('side-a'), outputsOf('inline'), 'concurrent merge against calling thread');
  });

  it('merges on the calling thread while fault injection counts, so its reads are counted', async () => {
    const before = compactionWorkerStats();
    countFaults();
    try {
      await core.compactDeltas(options('faults'));
      expect(faultCounts().read).toBeGreaterThan(0);
    } finally {
      clearFaults();
    }
    const after = compactionWorkerStats();
    expect(after.onThisThread).toBe(before.onThisThread + 1);
    expect(after.offThread).toBe(before.offThread);
    expectSameFiles(outputsOf('faults'), outputsOf('inline'), 'calling thread under fault counting');
  });

  it('a worker stopped mid-merge fails the merge with IO_ERROR and leaves no output; later merges run here', async () => {
    const opts = options('killed');
    const merge = core.compactDeltas(opts);
    const outDir = path.dirname(opts.outputPrefix);
    // Stop it once the merge has written its first output and started the second.
    while (!fs.existsSync(`${opts.outputPrefix}1${opts.outputSuffix}`)) await new Promise((r) => setTimeout(r, 1));
    await stopCompactionWorkerForTest();
    const err = await merge.then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(StrataError);
    expect((err as StrataError).code).toBe('IO_ERROR');
    expect((err as StrataError).message).toContain(opts.outputPrefix);
    expect(fs.readdirSync(outDir)).toEqual([]);

    const before = compactionWorkerStats();
    expect(before.inlineReason).toMatch(/compaction worker exited/);
    await core.compactDeltas(options('after'));
    expect(compactionWorkerStats().onThisThread).toBe(before.onThisThread + 1);
    expectSameFiles(outputsOf('after'), outputsOf('inline'), 'calling thread after the worker died');
  });
});
