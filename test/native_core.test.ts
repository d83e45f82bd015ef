/**
 * C++-specific checks: the addon's own CRC-32 and decompressors against the reference libraries,
 * hostile input to the LZ4 decoder, byte-identical files and identical reads/cache counters
 * against the TS twin, identical verdicts on corrupted files, and the loader's failure paths.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { Core } from '../lib/core/core';
import { isStrataError } from '../lib/errors';
import { BLOCK_SIZE, CODEC_LZ4, CODEC_NONE, CODEC_ZSTD, type CodecId } from '../lib/core/format';
import { KEY_MAX, KEY_MIN } from '../lib/key';
import { loadNativeBinding, nativeLoadError, type NativeBinding } from '../lib/core/native';
import { createTsCore } from '../lib/core/ts/core';
import { createNativeCore } from '../lib/core/native';
import {
  deltaSpec, imageRec, imageSpec, pageKey, patchRec, randomImageRec, randomPatchRec, runOracle, runPlan, tmpDir, writeLayer,
  zeroRec, type Entry, type LayerSpec, type TestRequest,
} from './helpers/layers';
import { NATIVE_SKIP_NOTE, SKIP_NATIVE } from './helpers/cores';
import { Rng } from './helpers/random';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const lz4 = require('lz4-napi') as { compressSync(b: Buffer): Buffer };
// eslint-disable-next-line @typescript-eslint/no-require-imports
const zstd = require('zstd-napi') as { compress(b: Uint8Array, p?: { compressionLevel?: number }): Buffer };

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});
function dir(tag: string): string {
  const d = tmpDir(tag);
  dirs.push(d);
  return d;
}

function codeOf(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (e) {
    return (e as { code?: string }).code ?? 'NO_CODE';
  }
}

// The addon must load here unless STRATA_IMPL=ts says to leave it out (helpers/cores.ts).
describe.skipIf(SKIP_NATIVE)(`the native addon${NATIVE_SKIP_NOTE}`, () => {
  it('loads (npm install builds it; STRATA_IMPL=ts is the only way to test without it)', () => {
    const err = nativeLoadError();
    expect(err, `the addon does not load: ${err?.message}`).toBeNull();
  });
});

describe.skipIf(SKIP_NATIVE)(`native codec and checksum${NATIVE_SKIP_NOTE}`, () => {
  // Loaded by each call (memoized), so a load failure fails every test with the load error.
  const b = { crc32: (...a: Parameters<NativeBinding['crc32']>) => loadNativeBinding().crc32(...a),
    decompress: (...a: Parameters<NativeBinding['decompress']>) => loadNativeBinding().decompress(...a) };

  it('crc32 equals zlib.crc32 for every length 0..300 and whole blocks, and continues like zlib', () => {
    const rng = new Rng(7);
    for (let n = 0; n <= 300; n++) {
      const d = rng.bytes(n);
      expect(b.crc32(d)).toBe(zlib.crc32(d));
    }
    const block = rng.bytes(BLOCK_SIZE - 4);
    expect(b.crc32(block)).toBe(zlib.crc32(block));
    const start = zlib.crc32(block.subarray(0, 1000));
    expect(b.crc32(block.subarray(1000), start)).toBe(zlib.crc32(block));
  });

  it('crc32 equals zlib.crc32 on unaligned views of every length up to 1100 and whole blocks, any start value', () => {
    // Lengths ≥ 64 take the carry-less-multiply path where the CPU has it: lanes, 512-bit folds,
    // 16-byte tails and the table-driven remainder all meet here.
    const rng = new Rng(8);
    const backing = rng.bytes(8192 + 64);
    for (let n = 0; n <= 1100; n++) {
      const off = rng.int(0, 16);
      const d = backing.subarray(off, off + n);
      const start = n % 3 === 0 ? rng.int(0, 2 ** 32) : 0;
      expect(b.crc32(d, start)).toBe(zlib.crc32(d, start));
    }
    for (let i = 0; i < 50; i++) {
      const off = rng.int(0, 64);
      const d = backing.subarray(off, off + BLOCK_SIZE - 4);
      expect(b.crc32(d)).toBe(zlib.crc32(d));
    }
  });

  it('decodes lz4-napi output of random, repetitive and mixed records up to the largest record', () => {
    const rng = new Rng(11);
    for (let i = 0; i < 300; i++) {
      const n = rng.int(1, 8196);
      const raw = Buffer.alloc(n);
      const mode = i % 3;
      if (mode === 0) rng.bytes(n).copy(raw);
      else if (mode === 1) raw.fill(rng.int(0, 256));
      else for (let j = 0; j < n; j++) raw[j] = rng.chance(0.2) ? rng.int(0, 256) : (j >> 4) & 0xff;
      const packed = lz4.compressSync(raw);
      expect(b.decompress(CODEC_LZ4, packed, n).equals(raw)).toBe(true);
    }
  });

  it('decodes exactly as a byte-at-a-time reference, valid or mutated, including short-offset runs', () => {
    const rng = new Rng(14);
    const inputs: Buffer[] = [];
    for (let i = 0; i < 200; i++) {
      const n = rng.int(0, 8194); // up to the largest record (1 + 8192 bytes)
      const raw = Buffer.alloc(n);
      // Repeating patterns of period 1..20 (overlapping matches), with random breaks.
      const period = rng.int(1, 21);
      const pat = rng.bytes(period);
      for (let j = 0; j < n; j++) raw[j] = rng.chance(0.03) ? rng.int(0, 256) : pat[j % period];
      inputs.push(raw);
    }
    for (let i = 0; i < 100; i++) inputs.push(Buffer.concat([rng.bytes(rng.int(0, 40)), Buffer.alloc(rng.int(0, 5000), rng.int(0, 256)), rng.bytes(rng.int(0, 300))]).subarray(0, 8193));
    for (const raw of inputs) {
      const packed = lz4.compressSync(raw);
      expect(b.decompress(CODEC_LZ4, packed, raw.length).equals(raw)).toBe(true);
      // Mutations: the native decoder must agree with the reference on success and bytes.
      for (let k = 0; k < 5 && packed.length > 4; k++) {
        const m = Buffer.from(packed);
        m[rng.int(4, m.length)] = rng.int(0, 256);
        const want = referenceLz4Decode(m.subarray(4), raw.length);
        let got: Buffer | null = null;
        try {
          got = b.decompress(CODEC_LZ4, m, raw.length);
        } catch (e) {
          expect((e as { code?: string }).code).toBe('BAD_ARGUMENT');
        }
        expect(got === null ? null : got.toString('hex')).toBe(want === null ? null : want.toString('hex'));
      }
    }
  });

  it('decodes zstd-napi frames', () => {
    const rng = new Rng(12);
    for (let i = 0; i < 50; i++) {
      const n = rng.int(1, 8196);
      const raw = i % 2 ? rng.bytes(n) : Buffer.alloc(n, i);
      expect(b.decompress(CODEC_ZSTD, zstd.compress(raw, { compressionLevel: 1 }), n).equals(raw)).toBe(true);
    }
  });

  it('rejects truncated, garbage and mismatched lz4/zstd input with an error, never a crash', () => {
    const rng = new Rng(13);
    const raw = Buffer.alloc(5000);
    for (let j = 0; j < raw.length; j++) raw[j] = (j * 7) & 0x3f;
    const packed = lz4.compressSync(raw);
    expect(codeOf(() => b.decompress(CODEC_LZ4, packed, 4999))).toBe('BAD_ARGUMENT'); // size prefix mismatch
    expect(codeOf(() => b.decompress(CODEC_LZ4, packed.subarray(0, 3), 5000))).toBe('BAD_ARGUMENT');
    for (let cut = 4; cut < packed.length; cut += 3) {
      expect(codeOf(() => b.decompress(CODEC_LZ4, packed.subarray(0, cut), 5000))).toBe('BAD_ARGUMENT');
    }
    // Random mutations: any outcome but a crash; a success must still give exactly raw_len bytes.
    for (let i = 0; i < 3000; i++) {
      const m = Buffer.from(packed);
      const flips = rng.int(1, 4);
      for (let f = 0; f < flips; f++) m[rng.int(4, m.length)] = rng.int(0, 256);
      try {
        expect(b.decompress(CODEC_LZ4, m, 5000).length).toBe(5000);
      } catch (e) {
        expect((e as { code?: string }).code).toBe('BAD_ARGUMENT');
      }
    }
    for (let i = 0; i < 500; i++) {
      const g = rng.bytes(rng.int(0, 200));
      if (g.length >= 4) g.writeUInt32LE(1000, 0);
      try {
        expect(b.decompress(CODEC_LZ4, g, 1000).length).toBe(1000);
      } catch (e) {
        expect((e as { code?: string }).code).toBe('BAD_ARGUMENT');
      }
      expect(codeOf(() => b.decompress(CODEC_ZSTD, g, 1000))).toBe('BAD_ARGUMENT');
    }
    const frame = zstd.compress(raw);
    expect(codeOf(() => b.decompress(CODEC_ZSTD, frame, 4999))).toBe('BAD_ARGUMENT');
    expect(codeOf(() => b.decompress(CODEC_ZSTD, frame.subarray(0, frame.length - 2), 5000))).toBe('BAD_ARGUMENT');
  });
});

// ---------------------------------------------------------------------------------------------

function randomEntries(rng: Rng, kind: 'delta' | 'image', n: number, lsnStart: bigint, lsnEnd: bigint): Entry[] {
  const out: Entry[] = [];
  let block = 0;
  while (out.length < n) {
    block += rng.int(1, 4);
    const key = pageKey(block);
    if (kind === 'image') {
      out.push({ key, lsn: lsnStart, rec: rng.chance(0.1) ? zeroRec() : randomImageRec(rng) });
      continue;
    }
    const versions = Math.min(n - out.length, rng.int(1, 6));
    const lsns = new Set<bigint>();
    while (lsns.size < versions) lsns.add(rng.bigint(lsnStart, lsnEnd - 1n));
    [...lsns].sort((a, b) => (a < b ? -1 : 1)).forEach((lsn, i) => {
      const rec = i === 0 ? (rng.chance(0.5) ? randomImageRec(rng) : zeroRec()) : rng.chance(0.1) ? imageRec(i) : randomPatchRec(rng);
      out.push({ key, lsn, rec });
    });
  }
  return out;
}

function bothCores(): [Core, Core] {
  return [createTsCore({ pageCacheBytes: 64 * BLOCK_SIZE }), createNativeCore({ pageCacheBytes: 64 * BLOCK_SIZE })];
}

describe.skipIf(SKIP_NATIVE)(`native core against the TS twin${NATIVE_SKIP_NOTE}`, () => {
  it('writes byte-identical files for every kind, codec and several index heights', () => {
    const d = dir('nat-bytes');
    const [ts, nat] = bothCores();
    const rng = new Rng(21);
    const codecs: CodecId[] = [CODEC_NONE, CODEC_LZ4, CODEC_ZSTD];
    for (const codec of codecs) {
      for (const n of [0, 1, 239, 240, 241, 700]) {
        for (const kind of ['delta', 'image'] as const) {
          const entries = randomEntries(rng, kind, n, 100n, 5000n);
          const spec: LayerSpec = kind === 'delta' ? deltaSpec(100n, 5000n, entries, codec) : imageSpec(4000n, entries, codec);
          const a = path.join(d, `ts-${kind}-${codec}-${n}`);
          const b = path.join(d, `nat-${kind}-${codec}-${n}`);
          const sizeA = writeLayer(ts, a, spec, 97);
          const sizeB = writeLayer(nat, b, spec, 1000);
          expect(sizeB).toBe(sizeA);
          expect(fs.readFileSync(b).equals(fs.readFileSync(a))).toBe(true);
          const hb = nat.openLayer(b);
          expect(nat.verifyLayer(hb)).toBe(n);
          expect(nat.layerSummary(hb)).toEqual(ts.layerSummary(ts.openLayer(a)));
        }
      }
    }
    ts.close();
    nat.close();
  });

  it('reads like the TS core and the oracle: pages, statuses, totals and cache counters', () => {
    const d = dir('nat-reads');
    const rng = new Rng(22);
    const [ts, nat] = bothCores();
    // One timeline: L0 deltas tiling the LSN axis, images inside and at their ends, a narrow delta.
    const specs: LayerSpec[] = [];
    let lsn = 10n;
    for (let i = 0; i < 5; i++) {
      const end = lsn + 200n;
      specs.push(deltaSpec(lsn, end, randomEntries(rng, 'delta', 300, lsn, end), rng.pick([CODEC_NONE, CODEC_LZ4, CODEC_ZSTD] as CodecId[])));
      if (i % 2 === 1) {
        // A partial image: keys [0, 200) only, so requests above it fall through to the deltas.
        const imgEntries = randomEntries(rng, 'image', 150, end - 50n, end - 49n).filter((e) => e.key.compare(pageKey(200)) < 0);
        specs.push(imageSpec(end - 50n, imgEntries, CODEC_LZ4, pageKey(0), pageKey(200)));
      }
      lsn = end;
    }
    const handles = (core: Core): number[] => specs.map((s, i) => {
      const f = path.join(d, `${core.implementation}-${i}`);
      writeLayer(core, f, s);
      return core.openLayer(f);
    });
    const hTs = handles(ts);
    const hNat = handles(nat);
    expect(hNat).toEqual(hTs);
    const mapTs = ts.createLayerMap();
    const mapNat = nat.createLayerMap();
    ts.setLayerMap(mapTs, hTs);
    nat.setLayerMap(mapNat, hNat);
    expect(mapNat).toBe(mapTs);

    const seen = new Set<number>();
    for (let round = 0; round < 20; round++) {
      const requests: TestRequest[] = [];
      for (let r = 0; r < 40; r++) {
        const mem = rng.chance(0.2) ? [{ lsn: 5000n, rec: patchRec(rng.int(0, 8000), rng.bytes(10)) }] : [];
        const cap = rng.chance(0.05) ? 0xffff_ffff_ffff_ffffn : rng.bigint(0n, 1100n);
        requests.push({ key: pageKey(rng.int(0, 400)), segments: [{ mapId: mapTs, layers: specs, capLsn: cap, mem }] });
      }
      const a = runPlan(ts, requests);
      const b = runPlan(nat, requests);
      expect(b.status).toEqual(a.status);
      b.status.forEach((st) => seen.add(st));
      expect(b.out.equals(a.out)).toBe(true);
      expect([b.layersVisited, b.recordsApplied]).toEqual([a.layersVisited, a.recordsApplied]);
      const o = runOracle(requests);
      expect(b.out.equals(o.out)).toBe(true);
      expect(b.layersVisited).toBe(o.layersVisited);
      expect(nat.pageCache.stats()).toEqual(ts.pageCache.stats());
    }
    expect([...seen].sort()).toEqual([0, 1]); // both found and NOT_FOUND pages were exercised
    expect(nat.layerKeys(hNat[0]).equals(ts.layerKeys(hTs[0]))).toBe(true);
    ts.close();
    nat.close();
  });

  it('gives the same verdict as the TS core on files with corrupted bytes', () => {
    const d = dir('nat-corrupt');
    const rng = new Rng(23);
    const [ts, nat] = bothCores();
    const spec = deltaSpec(1n, 1000n, randomEntries(rng, 'delta', 900, 1n, 1000n), CODEC_LZ4);
    const good = path.join(d, 'good');
    writeLayer(ts, good, spec);
    const bytes = fs.readFileSync(good);
    const keys = spec.entries.map((e) => e.key);
    const verdict = (core: Core, file: string, key: Buffer): string[] => {
      let h = 0;
      const open = codeOf(() => { h = core.openLayer(file); });
      if (open !== null) return [`open:${open}`];
      const m = core.createLayerMap();
      core.setLayerMap(m, [h]);
      const read = codeOf(() => runPlan(core, [{ key, segments: [{ mapId: m, layers: [], capLsn: 2000n, mem: [] }] }]));
      const verify = codeOf(() => core.verifyLayer(h));
      core.dropLayerMap(m);
      core.closeLayer(h);
      return [`read:${read}`, `verify:${verify}`];
    };
    for (let i = 0; i < 60; i++) {
      const bad = Buffer.from(bytes);
      const at = rng.int(0, bad.length);
      bad[at] ^= 1 << rng.int(0, 8);
      // Half the time fix the CRC so the corruption reaches the parsers behind the checksum.
      if (rng.chance(0.5)) {
        const blk = Math.floor(at / BLOCK_SIZE) * BLOCK_SIZE;
        bad.writeUInt32BE(zlib.crc32(bad.subarray(blk, blk + BLOCK_SIZE - 4)), blk + BLOCK_SIZE - 4);
      }
      const file = path.join(d, `bad-${i}`);
      fs.writeFileSync(file, rng.chance(0.1) ? bad.subarray(0, bad.length - rng.int(1, 9000)) : bad);
      const key = rng.pick(keys);
      expect(verdict(nat, file, key)).toEqual(verdict(ts, file, key));
    }
    ts.close();
    nat.close();
  });

  it('reports errors as StrataErrors with a code and the file name', () => {
    const d = dir('nat-errors');
    const nat = createNativeCore({ pageCacheBytes: 0 });
    expect(nat.pageCache.capacityPages).toBe(16);
    const missing = path.join(d, 'missing');
    try {
      nat.openLayer(missing);
      expect.unreachable();
    } catch (e) {
      expect(isStrataError(e, 'IO_ERROR')).toBe(true);
      expect((e as Error).message).toContain(missing);
    }
    const junk = path.join(d, 'junk');
    fs.writeFileSync(junk, Buffer.alloc(BLOCK_SIZE * 2, 1));
    try {
      nat.openLayer(junk);
      expect.unreachable();
    } catch (e) {
      expect(isStrataError(e, 'CORRUPT_LAYER')).toBe(true);
      expect((e as Error).message).toContain(`${junk}: block 0`);
    }
    expect(codeOf(() => nat.verifyLayer(99))).toBe('BAD_ARGUMENT');
    expect(codeOf(() => nat.getPages(Buffer.from([0, 0, 0, 1]), Buffer.alloc(0), new Uint8Array(0), new Uint32Array(2)))).toBe('BAD_ARGUMENT');
    expect(codeOf(() => nat.getPages(Buffer.from([0, 0, 0, 0]), Buffer.alloc(1), new Uint8Array(0), new Uint32Array(0)))).toBe('BAD_ARGUMENT');
    const w = nat.createLayerWriter(path.join(d, 'w'), { kind: 'image', codec: CODEC_NONE, keyStart: KEY_MIN, keyEnd: KEY_MAX, lsnStart: 5n, lsnEnd: 6n });
    expect(codeOf(() => w.append(Buffer.alloc(18), Buffer.alloc(3), Uint8Array.of(1)))).toBe('BAD_ARGUMENT');
    w.abort();
    expect(codeOf(() => w.finish())).toBe('BAD_ARGUMENT');
    nat.close();
    expect(codeOf(() => nat.openLayer(junk))).toBe('CLOSED');
  });
});

describe('native loader', () => {
  it('reports a missing or bogus addon through nativeLoadError, without throwing', async () => {
    const d = dir('nat-loader');
    const bogus = path.join(d, 'bogus.node');
    fs.writeFileSync(bogus, 'not an ELF file');
    for (const p of [path.join(d, 'missing.node'), bogus]) {
      vi.resetModules();
      vi.stubEnv('STRATA_NATIVE_PATH', p);
      try {
        const mod = await import('../lib/core/native');
        const err = mod.nativeLoadError();
        expect(err).toBeInstanceOf(Error);
        expect(err!.message).toContain(p);
        expect(mod.nativeLoadError()).toBe(err); // memoized
        expect(() => mod.loadNativeBinding()).toThrow(err!);
        expect(codeOf(() => mod.createNativeCore({ pageCacheBytes: 0 }))).toBe('NATIVE_UNAVAILABLE');
      } finally {
        vi.unstubAllEnvs();
      }
    }
  });
});

/** LZ4 block decoding one byte at a time, every check explicit: the oracle for the C++ decoder. */
function referenceLz4Decode(src: Buffer, rawLen: number): Buffer | null {
  const out = Buffer.alloc(rawLen);
  let ip = 0;
  let op = 0;
  const length = (base: number): number | null => {
    let len = base;
    if (base !== 15) return len;
    for (;;) {
      if (ip >= src.length) return null;
      const b = src[ip++];
      len += b;
      if (b !== 255) return len;
    }
  };
  while (ip < src.length) {
    const token = src[ip++];
    const lit = length(token >> 4);
    if (lit === null || lit > src.length - ip || lit > rawLen - op) return null;
    for (let i = 0; i < lit; i++) out[op++] = src[ip++];
    if (ip === src.length) break;
    if (src.length - ip < 2) return null;
    const offset = src[ip] | (src[ip + 1] << 8);
    ip += 2;
    if (offset === 0 || offset > op) return null;
    const ml = length(token & 15);
    if (ml === null || ml + 4 > rawLen - op) return null;
    for (let i = 0; i < ml + 4; i++, op++) out[op] = out[op - offset];
  }
  return op === rawLen ? out : null;
}
