/**
 * Core.compactDeltas (L0 → L1 compaction inside the core): on randomized inputs both cores must
 * write byte-identical outputs, cut where the rule says (before the first entry of a new key once
 * an output holds targetBytes of values and index keys), each equal to the layer a LayerWriter
 * writes from the merged entries of its range; and fail alike (code, no output left behind) on
 * overlapping, image, corrupt or truncated inputs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { codecAvailable, encodeBlob } from '../lib/core/compress';
import type { Core, DeltaCompactionResult, ImplementationName } from '../lib/core/core';
import { BLOCK_SIZE, CODEC_LZ4, CODEC_NONE, CODEC_ZSTD, DELTA_INDEX_KEY_SIZE, type CodecId } from '../lib/core/format';
import { exclusiveKeyEnd } from '../lib/key';
import { StrataError } from '../lib/errors';
import { compactionWorkerStats } from '../lib/core/ts/compaction_worker';
import { IMPLEMENTATIONS, makeCore, NATIVE_SKIP_NOTE } from './helpers/cores';
import {
  type Entry, deltaSpec, imageRec, imageSpec, pageKey, randomImageRec, randomPatchRec, sortEntries, tmpDir, writeLayer, zeroRec,
} from './helpers/layers';
import { Rng } from './helpers/random';

const CODECS = [CODEC_NONE, CODEC_LZ4, CODEC_ZSTD].filter((c) => codecAvailable(c as CodecId)) as CodecId[];
const LSNS_PER_INPUT = 10_000n;
const ROUNDS = 24;

const cores = new Map<ImplementationName, Core>(IMPLEMENTATIONS.map((impl) => [impl, makeCore(impl)]));
const dirs: string[] = [];
afterAll(() => {
  for (const c of cores.values()) c.close();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function newDir(tag: string): string {
  const d = tmpDir(`compact-${tag}`);
  dirs.push(d);
  return d;
}

/** Inputs as L0 layers are: disjoint LSN ranges, keys anywhere, a key's versions spread over them. */
function randomInputs(rng: Rng): Entry[][] {
  const inputs = rng.int(1, 7);
  const keys = rng.int(1, 120);
  return Array.from({ length: inputs }, (_, j) => {
    const n = rng.chance(0.1) ? 0 : rng.int(1, 400);
    const seen = new Set<string>();
    const entries: Entry[] = [];
    for (let i = 0; i < n; i++) {
      const key = pageKey(rng.int(0, keys));
      const lsn = BigInt(j) * LSNS_PER_INPUT + 1n + rng.bigint(0n, LSNS_PER_INPUT - 2n);
      const id = `${key.toString('hex')}/${lsn}`;
      if (seen.has(id)) continue;
      seen.add(id);
      const rec = rng.chance(0.3) ? randomImageRec(rng) : rng.chance(0.1) ? zeroRec() : randomPatchRec(rng);
      entries.push({ key, lsn, rec });
    }
    return sortEntries(entries);
  });
}

/** The cut rule, written from its statement: the expected outputs' entries and key ranges. */
function expectedOutputs(entries: Entry[], codec: CodecId, target: number): Array<{ keyStart: Buffer; keyEnd: Buffer; entries: Entry[] }> {
  const out: Array<{ keyStart: Buffer; keyEnd: Buffer; entries: Entry[] }> = [];
  let bytes = 0;
  for (const e of entries) {
    const cur = out[out.length - 1];
    const last = cur?.entries[cur.entries.length - 1];
    if (cur === undefined || (!last!.key.equals(e.key) && bytes >= target)) {
      if (cur !== undefined) cur.keyEnd = Buffer.from(e.key);
      out.push({ keyStart: Buffer.from(e.key), keyEnd: Buffer.alloc(0), entries: [] });
      bytes = 0;
    }
    out[out.length - 1].entries.push(e);
    bytes += encodeBlob(codec, e.rec).length + DELTA_INDEX_KEY_SIZE;
  }
  if (out.length > 0) out[out.length - 1].keyEnd = exclusiveKeyEnd(out[out.length - 1].entries.at(-1)!.key);
  return out;
}

function writeInputs(dir: string, inputs: Entry[][], codec: CodecId): string[] {
  const writer = cores.get('ts')!;
  return inputs.map((entries, j) => {
    const file = path.join(dir, `in-${j}`);
    writeLayer(writer, file, deltaSpec(BigInt(j) * LSNS_PER_INPUT + 1n, BigInt(j + 1) * LSNS_PER_INPUT, entries, codec));
    return file;
  });
}

async function compact(core: Core, inputs: string[], outDir: string, target: number, codec: CodecId, lsnEnd: bigint): Promise<DeltaCompactionResult> {
  fs.mkdirSync(outDir, { recursive: true });
  return core.compactDeltas({
    inputs, outputPrefix: path.join(outDir, 'out-'), outputSuffix: '.tmp', targetBytes: target, codec, lsnStart: 1n, lsnEnd,
  });
}

async function failure(p: Promise<unknown>): Promise<StrataError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(StrataError);
    return e as StrataError;
  }
  throw new Error('expected a failure');
}

describe(`Core.compactDeltas: both cores, byte-identical outputs${NATIVE_SKIP_NOTE}`, () => {
  it(`${ROUNDS} randomized merges cut and written as the rule says`, async () => {
    const rng = new Rng(0xc0ac7);
    let outputsSeen = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const dir = newDir(`r${round}`);
      const codec = CODECS[rng.int(0, CODECS.length)];
      const inputs = randomInputs(rng);
      const files = writeInputs(dir, inputs, codec);
      const target = rng.chance(0.15) ? 0 : rng.chance(0.15) ? 1 << 30 : rng.int(1, 64 * 1024);
      const lsnEnd = BigInt(inputs.length) * LSNS_PER_INPUT;
      const merged = sortEntries(inputs.flat());
      const want = expectedOutputs(merged, codec, target);
      const bytesByCore = new Map<ImplementationName, Buffer[]>();
      for (const [impl, core] of cores) {
        const outDir = path.join(dir, impl);
        const res = await compact(core, files, outDir, target, codec, lsnEnd);
        const where = `round ${round} ${impl}`;
        expect(res.outputs.length, where).toBe(want.length);
        expect(res.bytesRead, where).toBe(merged.reduce((n, e) => n + encodeBlob(codec, e.rec).length + DELTA_INDEX_KEY_SIZE, 0));
        const bytes: Buffer[] = [];
        res.outputs.forEach((o, i) => {
          expect(o.path, where).toBe(path.join(outDir, `out-${i}.tmp`));
          expect(o.keyStart.toString('hex'), `${where} output ${i}`).toBe(want[i].keyStart.toString('hex'));
          expect(o.keyEnd.toString('hex'), `${where} output ${i}`).toBe(want[i].keyEnd.toString('hex'));
          const got = fs.readFileSync(o.path);
          expect(got.length, where).toBe(o.sizeBytes);
          // The layer a LayerWriter writes from the range's merged entries.
          const ref = path.join(dir, `ref-${impl}-${i}`);
          writeLayer(cores.get('ts')!, ref, deltaSpec(1n, lsnEnd, want[i].entries, codec, want[i].keyStart, want[i].keyEnd));
          expect(got.equals(fs.readFileSync(ref)), `${where} output ${i} equals the reference layer`).toBe(true);
          const h = core.openLayer(o.path);
          expect(core.verifyLayer(h)).toBe(want[i].entries.length);
          core.closeLayer(h);
          bytes.push(got);
        });
        expect(fs.readdirSync(outDir).length, where).toBe(want.length);
        bytesByCore.set(impl, bytes);
        outputsSeen += res.outputs.length;
      }
      if (cores.size === 2) {
        const [a, b] = [bytesByCore.get('ts')!, bytesByCore.get('native')!];
        expect(a.length).toBe(b.length);
        a.forEach((buf, i) => expect(buf.equals(b[i]), `round ${round} output ${i}: ts and native bytes`).toBe(true));
      }
    }
    expect(outputsSeen).toBeGreaterThan(ROUNDS);
  }, 120_000);

  it('a merge of values larger than a block (images under no codec) spans blocks alike', async () => {
    const dir = newDir('big');
    const inputs: Entry[][] = [0, 1, 2].map((j) => sortEntries(Array.from({ length: 50 }, (_, i) => ({
      key: pageKey(i), lsn: BigInt(j) * LSNS_PER_INPUT + 5n, rec: imageRec(i * 7 + j),
    }))));
    const files = writeInputs(dir, inputs, CODEC_NONE);
    const sums = new Map<ImplementationName, Buffer[]>();
    for (const [impl, core] of cores) {
      const res = await compact(core, files, path.join(dir, impl), 5 * BLOCK_SIZE, CODEC_NONE, 3n * LSNS_PER_INPUT);
      expect(res.outputs.length).toBeGreaterThan(5);
      sums.set(impl, res.outputs.map((o) => fs.readFileSync(o.path)));
    }
    if (cores.size === 2) sums.get('ts')!.forEach((b, i) => expect(b.equals(sums.get('native')![i])).toBe(true));
  });
});

describe(`Core.compactDeltas: failures, both cores${NATIVE_SKIP_NOTE}`, () => {
  for (const [impl, core] of cores) {
    it(`${impl}: overlapping inputs are CORRUPT_LAYER and leave no output`, async () => {
      const dir = newDir(`overlap-${impl}`);
      const e: Entry = { key: pageKey(3), lsn: 5n, rec: imageRec(1) };
      const files = [0, 1].map((j) => {
        const f = path.join(dir, `in-${j}`);
        writeLayer(core, f, deltaSpec(1n, 10n, [e, { key: pageKey(j === 0 ? 1 : 9), lsn: 6n, rec: zeroRec() }]));
        return f;
      });
      const out = path.join(dir, 'out');
      const err = await failure(compact(core, files, out, 1 << 20, CODEC_NONE, 10n));
      expect(err.code).toBe('CORRUPT_LAYER');
      expect(err.message).toContain('overlap');
      expect(fs.readdirSync(out)).toEqual([]);
    });

    it(`${impl}: an image input is BAD_ARGUMENT`, async () => {
      const dir = newDir(`image-${impl}`);
      const f = path.join(dir, 'img');
      writeLayer(core, f, imageSpec(5n, [{ key: pageKey(1), rec: imageRec(1) }]));
      const err = await failure(compact(core, [f], path.join(dir, 'out'), 1 << 20, CODEC_NONE, 10n));
      expect(err.code).toBe('BAD_ARGUMENT');
    });

    it(`${impl}: a flipped byte in a value block is CORRUPT_LAYER naming the file; no output is left`, async () => {
      const dir = newDir(`crc-${impl}`);
      const rng = new Rng(7);
      const entries = sortEntries(Array.from({ length: 300 }, (_, i) => ({ key: pageKey(i % 40), lsn: BigInt(i + 1), rec: randomImageRec(rng) })));
      const good = path.join(dir, 'good');
      writeLayer(core, good, deltaSpec(1n, 1000n, entries.filter((_, i) => i % 2 === 0)));
      const bad = path.join(dir, 'bad');
      writeLayer(core, bad, deltaSpec(1000n, 2000n, entries.filter((_, i) => i % 2 === 1).map((e) => ({ ...e, lsn: e.lsn + 1000n }))));
      const bytes = fs.readFileSync(bad);
      bytes[BLOCK_SIZE * 20 + 100] ^= 0x40; // value block 20
      fs.writeFileSync(bad, bytes);
      const out = path.join(dir, 'out');
      const err = await failure(compact(core, [good, bad], out, 16 * 1024, CODEC_NONE, 2000n));
      expect(err.code).toBe('CORRUPT_LAYER');
      expect(err.message).toContain(bad);
      expect(err.message).toContain('block 20');
      expect(fs.readdirSync(out)).toEqual([]);
    });

    it(`${impl}: a truncated input is CORRUPT_LAYER; a missing one IO_ERROR`, async () => {
      const dir = newDir(`trunc-${impl}`);
      const f = path.join(dir, 'in');
      writeLayer(core, f, deltaSpec(1n, 10n, [{ key: pageKey(1), lsn: 2n, rec: imageRec(1) }]));
      fs.truncateSync(f, fs.statSync(f).size - BLOCK_SIZE);
      expect((await failure(compact(core, [f], path.join(dir, 'out'), 0, CODEC_NONE, 10n))).code).toBe('CORRUPT_LAYER');
      expect((await failure(compact(core, [path.join(dir, 'nope')], path.join(dir, 'out2'), 0, CODEC_NONE, 10n))).code).toBe('IO_ERROR');
    });

    it(`${impl}: empty inputs give no output; bad arguments are BAD_ARGUMENT`, async () => {
      const dir = newDir(`empty-${impl}`);
      const f = path.join(dir, 'in');
      writeLayer(core, f, deltaSpec(1n, 10n, []));
      const res = await compact(core, [f], path.join(dir, 'out'), 0, CODEC_NONE, 10n);
      expect(res).toEqual({ outputs: [], bytesRead: 0 });
      expect((await failure(compact(core, [f], path.join(dir, 'out'), -1, CODEC_NONE, 10n))).code).toBe('BAD_ARGUMENT');
      // An unknown codec is refused even when there is nothing to write.
      expect((await failure(compact(core, [f], path.join(dir, 'out'), 0, 7 as CodecId, 10n))).code).toBe('BAD_ARGUMENT');
      expect((await failure(core.compactDeltas({
        inputs: [f], outputPrefix: 'x', outputSuffix: '', targetBytes: 0, codec: CODEC_NONE, lsnStart: 10n, lsnEnd: 10n,
      }))).code).toBe('BAD_ARGUMENT');
    });
  }
});

describe('Core.compactDeltas: where the TS core merged', () => {
  it('every TS merge above ran on the compaction worker thread, none on this one', () => {
    // The worker runs dist/'s build of compaction.ts; a missing or stale build would move the
    // merges here silently, and the comparisons above would then not cover the worker.
    const s = compactionWorkerStats();
    expect(s.inlineReason).toBeNull();
    expect(s.onThisThread).toBe(0);
    expect(s.offThread).toBeGreaterThan(ROUNDS);
  });
});
