import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { codecAvailable } from '../lib/core/compress';
import type { Core, LayerWriterOptions } from '../lib/core/core';
import { isStrataError, type StrataErrorCode } from '../lib/errors';
import { CODEC_LZ4, CODEC_NONE, CODEC_ZSTD, DELTA_MAGIC, IMAGE_MAGIC, SUMMARY, type CodecId } from '../lib/core/format';
import { KEY_MAX, KEY_MIN } from '../lib/key';
import { describeEachCore, makeCore } from './helpers/cores';
import {
  type Entry, type LayerSpec, type TestRequest, appendArgs, deltaSpec, imageRec, imageSpec, pageKey, patchRec, randomImageRec,
  runOracle, runPlan, tmpDir, writeLayer, zeroRec,
} from './helpers/layers';
import { Rng } from './helpers/random';

const BLOCK = 8192;
const PAYLOAD = 8188;

function expectError(code: StrataErrorCode, f: () => unknown, message?: RegExp): void {
  let err: unknown;
  try { f(); } catch (e) { err = e; }
  expect(isStrataError(err, code), `expected ${code}, got ${String(err)}`).toBe(true);
  if (message) expect((err as Error).message).toMatch(message);
}

/** Rewrite bytes of a file at `offset`, optionally recomputing the CRC of the block they are in. */
function patchFile(file: string, offset: number, bytes: Buffer, reseal: boolean): void {
  const data = fs.readFileSync(file);
  bytes.copy(data, offset);
  if (reseal) {
    const blk = Math.floor(offset / BLOCK);
    data.writeUInt32BE(crc32(data.subarray(blk * BLOCK, blk * BLOCK + PAYLOAD)), blk * BLOCK + PAYLOAD);
  }
  fs.writeFileSync(file, data);
}

const CODECS: CodecId[] = [CODEC_NONE, CODEC_LZ4, CODEC_ZSTD].filter((c) => codecAvailable(c as CodecId)) as CodecId[];

describeEachCore('layer files (%s core)', (impl) => {
  const core: Core = makeCore(impl);
  const dir = tmpDir(`layer-${impl}`);
  afterAll(() => core.close());
  let n = 0;
  const fresh = (tag: string): string => path.join(dir, `${tag}-${n++}`);

  function mixedDelta(rng: Rng, codec: CodecId, keys: number): LayerSpec {
    const entries: Entry[] = [];
    for (let k = 0; k < keys; k++) {
      let lsn = BigInt(rng.int(1, 5));
      entries.push({ key: pageKey(k), lsn, rec: rng.chance(0.5) ? randomImageRec(rng) : zeroRec() });
      for (let v = rng.int(0, 4); v > 0; v--) {
        lsn += BigInt(rng.int(1, 5));
        const len = rng.int(1, 300);
        entries.push({ key: pageKey(k), lsn, rec: patchRec(rng.int(0, 8192 - len), rng.bytes(len)) });
      }
    }
    return deltaSpec(1n, 1000n, entries, codec);
  }

  for (const codec of CODECS) {
    it(`round-trips values across block boundaries with codec ${codec}`, () => {
      const rng = new Rng(100 + codec);
      const spec = mixedDelta(rng, codec, 60);
      const file = fresh('codec');
      const size = writeLayer(core, file, spec, 7);
      expect(fs.statSync(file).size).toBe(size);
      const h = core.openLayer(file);
      const s = core.layerSummary(h);
      expect(s.codec).toBe(codec);
      expect(s.kind).toBe('delta');
      expect(s.valueBytes).toBe(appendArgs(spec, spec.entries)[1].length);
      expect(s.totalBlocks).toBe(1 + Math.ceil(s.valueBytes / PAYLOAD) + s.indexBlkCount);
      expect(core.verifyLayer(h)).toBe(spec.entries.length);
      const map = core.createLayerMap();
      core.setLayerMap(map, [h]);
      const reqs: TestRequest[] = [];
      for (let k = 0; k < 62; k++) for (const cap of [0n, 3n, 7n, 1000n]) reqs.push({ key: pageKey(k), segments: [{ mapId: map, layers: [spec], capLsn: cap, mem: [] }] });
      const got = runPlan(core, reqs);
      const want = runOracle(reqs);
      expect(Buffer.from(got.status)).toEqual(Buffer.from(want.status));
      expect(got.out.equals(want.out)).toBe(true);
      expect(got.recordsApplied).toBe(want.recordsApplied);
    });
  }

  it('writes the summary block as FORMAT.md says', () => {
    const spec = imageSpec(0x2000n, [{ key: pageKey(1), rec: imageRec(1) }, { key: pageKey(2), rec: zeroRec() }], CODEC_NONE, pageKey(0), pageKey(10));
    const file = fresh('summary');
    writeLayer(core, file, spec);
    const b = fs.readFileSync(file);
    expect(b.readUInt32BE(SUMMARY.magic)).toBe(IMAGE_MAGIC);
    expect(b.readUInt16BE(SUMMARY.formatVersion)).toBe(1);
    expect(b[SUMMARY.layerKind]).toBe(2);
    expect(b.subarray(SUMMARY.keyStart, SUMMARY.keyStart + 18).equals(pageKey(0))).toBe(true);
    expect(b.readBigUInt64BE(SUMMARY.lsnStart)).toBe(0x2000n);
    expect(b.readBigUInt64BE(SUMMARY.lsnEnd)).toBe(0x2001n);
    const valueBytes = 4 + 8193 + 4 + 1;
    expect(Number(b.readBigUInt64BE(SUMMARY.valueBytes))).toBe(valueBytes);
    expect(b.readUInt32BE(SUMMARY.valueBlkCount)).toBe(2);
    expect(b.readUInt32BE(SUMMARY.indexStartBlk)).toBe(3);
    expect(b.readUInt32BE(SUMMARY.indexRootBlk)).toBe(3);
    expect(b[SUMMARY.indexHeight]).toBe(1);
    expect(b[SUMMARY.indexKeySize]).toBe(18);
    expect(Number(b.readBigUInt64BE(SUMMARY.entryCount))).toBe(2);
    expect(b.readUInt32BE(SUMMARY.totalBlocks)).toBe(4);
    expect(b[SUMMARY.recordFormat]).toBe(2);
    expect(b.length).toBe(4 * BLOCK);
    for (let blk = 0; blk < 4; blk++) {
      expect(b.readUInt32BE(blk * BLOCK + PAYLOAD)).toBe(crc32(b.subarray(blk * BLOCK, blk * BLOCK + PAYLOAD)));
    }
    // The leaf: level 0, count 2, keys, then (offset << 1) | will_init.
    const leaf = b.subarray(3 * BLOCK);
    expect([leaf[0], leaf.readUInt16BE(2)]).toEqual([0, 2]);
    expect(leaf.readBigUInt64BE(4 + 2 * 18)).toBe(1n);
    expect(leaf.readBigUInt64BE(4 + 2 * 18 + 8)).toBe(BigInt((4 + 8193) * 2 + 1));
  });

  it('writes an empty layer as summary plus one empty leaf', () => {
    const file = fresh('empty');
    expect(writeLayer(core, file, deltaSpec(5n, 6n, []))).toBe(2 * BLOCK);
    const h = core.openLayer(file);
    expect(core.layerSummary(h)).toMatchObject({ entryCount: 0, valueBytes: 0, indexHeight: 1, indexLeafCount: 1, indexBlkCount: 1, totalBlocks: 2 });
    expect(fs.readFileSync(file).readUInt32BE(0)).toBe(DELTA_MAGIC);
    expect(core.layerKeys(h).length).toBe(0);
    expect(core.verifyLayer(h)).toBe(0);
  });

  it('numbers handles from 1 upwards and never reuses them', () => {
    const c2 = makeCore(impl);
    try {
      const file = fresh('h');
      writeLayer(c2, file, deltaSpec(1n, 2n, [{ key: pageKey(1), lsn: 1n, rec: zeroRec() }]));
      const a = c2.openLayer(file);
      const b = c2.openLayer(file);
      expect([a, b]).toEqual([1, 2]);
      c2.closeLayer(a);
      expectError('BAD_ARGUMENT', () => c2.layerSummary(a));
      expect(c2.openLayer(file)).toBe(3);
      expectError('IO_ERROR', () => c2.openLayer(path.join(dir, 'does-not-exist')));
    } finally {
      c2.close();
    }
  });

  it('validates writer options and appends', () => {
    const base: LayerWriterOptions = { kind: 'delta', codec: CODEC_NONE, keyStart: KEY_MIN, keyEnd: KEY_MAX, lsnStart: 10n, lsnEnd: 20n };
    const bad = (o: Partial<LayerWriterOptions>): void => expectError('BAD_ARGUMENT', () => core.createLayerWriter(fresh('opt'), { ...base, ...o } as LayerWriterOptions));
    bad({ keyStart: KEY_MAX, keyEnd: KEY_MIN });
    bad({ lsnStart: 20n, lsnEnd: 20n });
    bad({ kind: 'image', lsnStart: 10n, lsnEnd: 12n });
    bad({ codec: 7 as CodecId });

    const spec = deltaSpec(10n, 20n, []);
    const w = core.createLayerWriter(fresh('app'), base);
    const e = (k: number, lsn: bigint, rec = zeroRec()): Entry => ({ key: pageKey(k), lsn, rec });
    const [keys, blobs, wi] = appendArgs(spec, [e(1, 11n), e(2, 12n, patchRec(0, Buffer.of(1)))]);
    expectError('BAD_ARGUMENT', () => w.append(keys, Buffer.concat([blobs, Buffer.of(0)]), wi)); // trailing byte
    expectError('BAD_ARGUMENT', () => w.append(keys, blobs.subarray(0, blobs.length - 1), wi)); // short
    expectError('BAD_ARGUMENT', () => w.append(keys, blobs, wi.subarray(0, 1))); // count mismatch
    expectError('BAD_ARGUMENT', () => w.append(keys, blobs, Uint8Array.of(1, 2))); // will_init not 0/1
    const badCodec = Buffer.from(blobs);
    badCodec[0] = 0x30; // codec 3
    expectError('BAD_ARGUMENT', () => w.append(keys, badCodec, wi));
    expectError('BAD_ARGUMENT', () => w.append(...appendArgs(spec, [e(1, 9n)]))); // LSN below the range
    expectError('BAD_ARGUMENT', () => w.append(...appendArgs(spec, [e(1, 20n)]))); // LSN at the exclusive end
    w.append(keys, blobs, wi);
    w.finish();
    expectError('BAD_ARGUMENT', () => w.finish());
    expectError('BAD_ARGUMENT', () => w.append(keys, blobs, wi));

    const img = core.createLayerWriter(fresh('img'), { ...base, kind: 'image', lsnStart: 10n, lsnEnd: 11n });
    const ispec = imageSpec(10n, []);
    const [ik, ib] = appendArgs(ispec, [{ key: pageKey(1), lsn: 10n, rec: zeroRec() }]);
    expectError('BAD_ARGUMENT', () => img.append(ik, ib, Uint8Array.of(0))); // image entries are will_init
    const ranged = core.createLayerWriter(fresh('rng'), { ...base, keyStart: pageKey(5), keyEnd: pageKey(9) });
    expectError('BAD_ARGUMENT', () => ranged.append(...appendArgs(spec, [e(9, 11n)])));
    expectError('BAD_ARGUMENT', () => ranged.append(...appendArgs(spec, [e(4, 11n)])));
    img.abort();
    ranged.abort();
  });

  it('finishAsync: settles with the size, refuses every call until then, and a second finish', async () => {
    const spec = deltaSpec(1n, 100n, Array.from({ length: 500 }, (_, k) => ({ key: pageKey(k), lsn: 5n, rec: zeroRec() })));
    const file = fresh('async');
    const w = core.createLayerWriter(file, { kind: 'delta', codec: CODEC_NONE, keyStart: KEY_MIN, keyEnd: KEY_MAX, lsnStart: 1n, lsnEnd: 100n });
    w.append(...appendArgs(spec, spec.entries));
    const pending = w.finishAsync();
    expectError('BAD_ARGUMENT', () => w.append(...appendArgs(spec, [{ key: pageKey(600), lsn: 5n, rec: zeroRec() }])));
    expectError('BAD_ARGUMENT', () => w.abort());
    expectError('BAD_ARGUMENT', () => w.finish());
    const size = await pending;
    expect(size).toBe(fs.statSync(file).size);
    await expect(w.finishAsync()).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
    const h = core.openLayer(file);
    expect(core.verifyLayer(h)).toBe(500);
  });

  it('leaves the writer unchanged when an append is rejected', () => {
    const spec = deltaSpec(1n, 100n, [{ key: pageKey(1), lsn: 5n, rec: zeroRec() }, { key: pageKey(2), lsn: 5n, rec: zeroRec() }]);
    const file = fresh('atomic');
    const w = core.createLayerWriter(file, { kind: 'delta', codec: CODEC_NONE, keyStart: KEY_MIN, keyEnd: KEY_MAX, lsnStart: 1n, lsnEnd: 100n });
    w.append(...appendArgs(spec, spec.entries.slice(0, 1)));
    const [k, b] = appendArgs(spec, [{ key: pageKey(3), lsn: 5n, rec: zeroRec() }, { key: pageKey(3), lsn: 5n, rec: zeroRec() }]);
    expectError('BAD_ARGUMENT', () => w.append(k, b, Uint8Array.of(1, 1)));
    w.append(...appendArgs(spec, spec.entries.slice(1)));
    w.finish();
    const h = core.openLayer(file);
    expect(core.verifyLayer(h)).toBe(2);
    expect(core.layerKeys(h).equals(Buffer.concat([pageKey(1), pageKey(2)]))).toBe(true);
  });

  describe('corruption', () => {
    // Two value blocks, a two-leaf index with a root: every region of the file exists.
    const entries: Entry[] = [];
    for (let k = 0; k < 300; k++) entries.push({ key: pageKey(k), lsn: 5n, rec: k === 7 ? imageRec(7) : zeroRec() });
    const spec = deltaSpec(1n, 10n, entries);
    const layout = (): { file: string; blocks: number; valueBlocks: number; leaf: number; root: number } => {
      const file = fresh('corrupt');
      writeLayer(core, file, spec);
      const blocks = fs.statSync(file).size / BLOCK;
      return { file, blocks, valueBlocks: 2, leaf: 3, root: blocks - 1 };
    };
    const readKey = (file: string, key: number): void => {
      const h = core.openLayer(file);
      const map = core.createLayerMap();
      core.setLayerMap(map, [h]);
      runPlan(core, [{ key: pageKey(key), segments: [{ mapId: map, layers: [spec], capLsn: 9n, mem: [] }] }]);
    };

    it('rejects a damaged summary, a wrong size and bad summary rules at openLayer', () => {
      const l = layout();
      expect(l.blocks).toBe(6);
      patchFile(l.file, 3, Buffer.of(0x99), false);
      expectError('CORRUPT_LAYER', () => core.openLayer(l.file), /corrupt-\d+: block 0/);

      const t = layout();
      fs.truncateSync(t.file, (t.blocks - 1) * BLOCK);
      expectError('CORRUPT_LAYER', () => core.openLayer(t.file), /corrupt-\d+/);
      const x = layout();
      fs.appendFileSync(x.file, Buffer.alloc(BLOCK));
      expectError('CORRUPT_LAYER', () => core.openLayer(x.file));
      const y = layout();
      fs.truncateSync(y.file, y.blocks * BLOCK - 100);
      expectError('CORRUPT_LAYER', () => core.openLayer(y.file));

      // Rules checked even with a valid CRC.
      const rules: Array<[number, Buffer]> = [
        [SUMMARY.formatVersion, Buffer.of(0, 2)],
        [SUMMARY.layerKind, Buffer.of(2)],
        [SUMMARY.codec, Buffer.of(9)],
        [SUMMARY.valueBlkCount, Buffer.of(0, 0, 0, 3)],
        [SUMMARY.indexHeight, Buffer.of(1)],
        [SUMMARY.indexRootBlk, Buffer.of(0, 0, 0, 3)],
        [SUMMARY.indexKeySize, Buffer.of(18)],
        [SUMMARY.reserved, Buffer.of(0, 1)],
        [SUMMARY.recordFormat, Buffer.of(3)],
        [SUMMARY.recordFormat, Buffer.of(0)],
        [SUMMARY.end + 100, Buffer.of(1)],
        [SUMMARY.lsnEnd, Buffer.alloc(8)],
        [SUMMARY.keyEnd, Buffer.alloc(18)],
        [SUMMARY.entryCount, Buffer.from('0000000000000001', 'hex')],
      ];
      // A layer written before PostgreSQL records (record format 1) still opens.
      const old = layout();
      patchFile(old.file, SUMMARY.recordFormat, Buffer.of(1), true);
      core.closeLayer(core.openLayer(old.file));
      for (const [off, bytes] of rules) {
        const r = layout();
        patchFile(r.file, off, bytes, true);
        expectError('CORRUPT_LAYER', () => core.openLayer(r.file), /block 0/);
      }
    });

    it('finds a damaged value block, leaf and root on read and in verifyLayer', () => {
      for (const [what, blkOf, key] of [['value', 1, 7], ['value2', 2, 7], ['leaf', 3, 7], ['root', 5, 7]] as const) {
        const l = layout();
        patchFile(l.file, blkOf * BLOCK + 100, Buffer.of(0x5a, 0xa5), false);
        const h = core.openLayer(l.file);
        expectError('CORRUPT_LAYER', () => core.verifyLayer(h), new RegExp(`block ${blkOf}: checksum`));
        if (what !== 'value2') expectError('CORRUPT_LAYER', () => readKey(l.file, key), new RegExp(`block ${blkOf}`));
      }
    });

    it('verifyLayer checks structure behind valid checksums', () => {
      const cases: Array<[string, number, Buffer]> = [
        ['leaf value offset', 3 * BLOCK + 4 + 240 * 26 + 8, Buffer.alloc(8)],
        ['leaf key order', 3 * BLOCK + 4 + 26, pageKey(0)],
        ['leaf level', 3 * BLOCK, Buffer.of(1)],
        ['leaf padding', 3 * BLOCK + 8000, Buffer.of(1)],
        ['root child', 5 * BLOCK + 4 + 2 * 26, Buffer.from('0000000000000004', 'hex')],
        ['value tail', 2 * BLOCK + 8100, Buffer.of(1)],
        ['record tag', 1 * BLOCK + 4, Buffer.of(9)],
      ];
      for (const [what, off, bytes] of cases) {
        const l = layout();
        patchFile(l.file, off, bytes, true);
        const h = core.openLayer(l.file);
        expectError('CORRUPT_LAYER', () => core.verifyLayer(h), /corrupt-\d+: block \d+/);
        void what;
      }
    });

    it('never returns a page built from a record that disagrees with its will_init bit', () => {
      const l = layout();
      // Entry 7's value: set will_init off for an image record (offset stays), CRC resealed.
      const off = 3 * BLOCK + 4 + 240 * 26 + 7 * 8;
      const data = fs.readFileSync(l.file);
      const v = data.readBigUInt64BE(off);
      const b = Buffer.alloc(8);
      b.writeBigUInt64BE(v & ~1n);
      patchFile(l.file, off, b, true);
      expectError('CORRUPT_LAYER', () => readKey(l.file, 7), /block/);
    });
  });
});
