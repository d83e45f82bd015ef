import { afterAll, describe, expect, it } from 'vitest';
import type { Core } from '../lib/core/core';
import { PAGE_STATUS_NOT_FOUND, PAGE_STATUS_OK } from '../lib/core/core';
import { isStrataError, toStrataError } from '../lib/errors';
import { loadNativeBinding } from '../lib/core/native';
import { redoChain as tsRedoChain } from '../lib/core/ts/walredo';
import { CODEC_LZ4, CODEC_NONE, CODEC_ZSTD, type CodecId } from '../lib/core/format';
import { codecAvailable } from '../lib/core/compress';
import { describeEachCore, makeCore, NATIVE_SKIP_NOTE, SKIP_NATIVE } from './helpers/cores';
import { type TestRequest, deltaSpec, imageRec, openSpecs, pageKey, patchRec, runOracle, runPlan, tmpDir, zeroRec } from './helpers/layers';

const PAGE = 8192;

describeEachCore('redo (%s core)', (impl) => {
  const core: Core = makeCore(impl);
  const dir = tmpDir(`redo-${impl}`);
  const emptyMap = core.createLayerMap();
  afterAll(() => core.close());

  /** One request whose whole chain is in-memory records, newest first. */
  const memOnly = (recs: Buffer[]): TestRequest => ({
    key: pageKey(1),
    segments: [{ mapId: emptyMap, layers: [], capLsn: 1000n, mem: recs.map((rec, i) => ({ lsn: BigInt(1000 - i), rec })) }],
  });

  it('starts from an image and applies patches oldest first (newest wins on overlap)', () => {
    const base = imageRec(3);
    const r = runPlan(core, [memOnly([patchRec(10, Buffer.from('CCCC')), patchRec(8, Buffer.from('BBBB')), patchRec(8, Buffer.from('AAAAAA')), base])]);
    const want = Buffer.from(base.subarray(1));
    want.write('AAAAAA', 8);
    want.write('BBBB', 8);
    want.write('CCCC', 10);
    expect(r.status[0]).toBe(PAGE_STATUS_OK);
    expect(r.out.equals(want)).toBe(true);
    expect([r.layersVisited, r.recordsApplied]).toEqual([0, 4]);
  });

  it('starts from zeros for a zero record; patches reach the last byte of the page', () => {
    const tail = Buffer.alloc(16, 0x7e);
    const r = runPlan(core, [memOnly([patchRec(PAGE - 16, tail), patchRec(0, Buffer.of(1)), zeroRec()])]);
    const want = Buffer.alloc(PAGE);
    want[0] = 1;
    tail.copy(want, PAGE - 16);
    expect(r.out.equals(want)).toBe(true);
  });

  it('stops at the newest will_init record: older records are not applied', () => {
    const r = runPlan(core, [memOnly([patchRec(0, Buffer.of(9)), zeroRec(), imageRec(5)])]);
    const want = Buffer.alloc(PAGE);
    want[0] = 9;
    expect(r.out.equals(want)).toBe(true);
    expect(r.recordsApplied).toBe(2);
  });

  it('reports NOT_FOUND (zero page) for a chain without a will_init record', () => {
    const r = runPlan(core, [memOnly([patchRec(0, Buffer.of(9))]), memOnly([zeroRec()])]);
    expect(Array.from(r.status)).toEqual([PAGE_STATUS_NOT_FOUND, PAGE_STATUS_OK]);
    expect(r.out.subarray(0, PAGE).equals(Buffer.alloc(PAGE))).toBe(true);
    expect(r.recordsApplied).toBe(1);
  });

  it('rejects malformed in-memory records with BAD_ARGUMENT', () => {
    const bad = [
      Buffer.of(9),
      Buffer.alloc(100, 1), // image of the wrong length
      Buffer.of(2, 0), // zero record with a body
      patchRec(PAGE - 1, Buffer.of(1, 2)), // past the page end
      Buffer.of(3, 0, 0), // patch without data
      Buffer.alloc(0),
    ];
    for (const rec of bad) {
      let err: unknown;
      try { runPlan(core, [memOnly([rec, zeroRec()])]); } catch (e) { err = e; }
      expect(isStrataError(err, 'BAD_ARGUMENT'), `record ${rec.toString('hex').slice(0, 20)}`).toBe(true);
    }
  });

  const codecs = [CODEC_NONE, CODEC_LZ4, CODEC_ZSTD].filter((c) => codecAvailable(c as CodecId)) as CodecId[];
  for (const codec of codecs) {
    it(`mixes in-memory and layer records in one chain (codec ${codec})`, () => {
      const spec = deltaSpec(1n, 100n, [
        { key: pageKey(1), lsn: 10n, rec: imageRec(11) },
        { key: pageKey(1), lsn: 20n, rec: patchRec(100, Buffer.alloc(300, 0x33)) }, // compressible: stored compressed
        { key: pageKey(1), lsn: 30n, rec: patchRec(200, Buffer.of(1, 2, 3)) },
      ], codec);
      const [h] = openSpecs(core, dir, [spec]);
      const map = core.createLayerMap();
      core.setLayerMap(map, [h]);
      const reqs: TestRequest[] = [30n, 25n, 10n, 9n].map((cap) => ({
        key: pageKey(1),
        segments: [{ mapId: map, layers: [spec], capLsn: cap, mem: [{ lsn: 150n, rec: patchRec(0, Buffer.from('mem')) }] }],
      }));
      const got = runPlan(core, reqs);
      const want = runOracle(reqs);
      expect(Array.from(got.status)).toEqual([0, 0, 0, 1]);
      expect(got.out.equals(want.out)).toBe(true);
      expect([got.layersVisited, got.recordsApplied]).toEqual([want.layersVisited, want.recordsApplied]);
      expect(got.out.subarray(0, 3).toString()).toBe('mem');
      expect(got.out[200]).toBe(1);
      expect(got.out[PAGE + 200]).toBe(0x33); // cap 25: the 300-byte patch at 20 applies, the one at 30 does not
      expect(got.out[PAGE + 50]).toBe(imageRec(11)[51]);
    });
  }
});

/**
 * Issue 9, debt 7: the two cores' redo engines once disagreed on a page-initializing record in the
 * middle of a chain (TS applied it, C++ failed). The rule now (docs/FORMAT.md, "Records"): records
 * apply oldest first, the oldest must initialize the page, and any later one that initializes the
 * page starts it afresh. Checked on both engines alone, against a plain oracle.
 */
describe(`redo rule for page-initializing records anywhere in a chain (both engines alone)${NATIVE_SKIP_NOTE}`, () => {
  const engines: Array<[string, (records: readonly Uint8Array[], out: Uint8Array) => void]> = [['ts', tsRedoChain]];
  if (!SKIP_NATIVE) engines.push(['native', (r, o) => loadNativeBinding().redoChain(r, o)]);

  /** The plain model: oldest first; image/zero replace the page, a patch writes its bytes. */
  function oracle(newestFirst: readonly Buffer[]): Buffer {
    const page = Buffer.alloc(PAGE);
    for (const rec of [...newestFirst].reverse()) {
      if (rec[0] === 1) rec.copy(page, 0, 1);
      else if (rec[0] === 2) page.fill(0);
      else rec.copy(page, rec.readUInt16BE(1), 3);
    }
    return page;
  }

  it('applies a mid-chain image or zero as a fresh start, identically in both engines', () => {
    let seed = 7;
    const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
    let midInits = 0;
    for (let trial = 0; trial < 300; trial++) {
      const len = 1 + rnd(6);
      const chain: Buffer[] = [];
      for (let i = 0; i < len - 1; i++) {
        const k = rnd(5);
        chain.push(k === 0 ? imageRec(rnd(200)) : k === 1 ? zeroRec() : patchRec(rnd(PAGE - 8), Buffer.from([rnd(256), rnd(256), rnd(256)])));
        if (k < 2) midInits++;
      }
      chain.push(rnd(2) === 0 ? imageRec(rnd(200)) : zeroRec()); // the oldest initializes
      const want = oracle(chain);
      for (const [name, redo] of engines) {
        const out = Buffer.alloc(PAGE, 0xee);
        redo(chain, out);
        expect(out.equals(want), `${name}, trial ${trial}`).toBe(true);
      }
    }
    expect(midInits).toBeGreaterThan(50); // the case under test really occurred
  });

  it('refuses an empty chain and one whose oldest record is a patch, with BAD_ARGUMENT in both engines', () => {
    for (const [name, redo] of engines) {
      for (const chain of [[], [patchRec(0, Buffer.of(1))], [zeroRec(), patchRec(0, Buffer.of(1))]]) {
        let err: unknown = null;
        try { redo(chain, Buffer.alloc(PAGE)); } catch (e) { err = e; }
        expect(isStrataError(toStrataError(err), 'BAD_ARGUMENT'), `${name}: ${String(err)}`).toBe(true);
      }
    }
  });
});
