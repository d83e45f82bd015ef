/**
 * The native core's background work (flush, compaction, image creation: finishAsync, appendAsync,
 * compactDeltas, layerKeysInBackground, getPagesInBackground) computes on companion threads of
 * libuv's pool at a lower priority (native/background_thread.h), as the TS core's workers do: the
 * companions exist once such work has run, every one runs at nice CORE_WORKER_NICE or lower
 * priority, the work's results are the ones the calling thread computes, and a failure on a
 * companion still reaches the caller as a coded StrataError.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Core, COUNTS_PER_REQUEST } from '../lib/core/core';
import { CODEC_LZ4 } from '../lib/core/format';
import { KEY_MAX, KEY_MIN } from '../lib/key';
import { PAGE_SIZE } from '../lib/record';
import { CORE_WORKER_NICE } from '../lib/core/worker_thread';
import { StrataError } from '../lib/errors';
import { makeCore, NATIVE_SKIP_NOTE, SKIP_NATIVE } from './helpers/cores';
import {
  appendArgs, deltaSpec, type Entry, imageRec, pageKey, patchRec, planOf, runPlan, sumCounts, tmpDir,
} from './helpers/layers';

const COMPANION_NAME = 'strata-bg'; // kBackgroundThreadName in native/background_thread.h
const ON_LINUX = process.platform === 'linux';
const KEYS = 300;

/** This process's threads named like the companions, with their nice values (/proc, Linux). */
function companions(): Array<{ tid: string; nice: number }> {
  const found: Array<{ tid: string; nice: number }> = [];
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      if (fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() !== COMPANION_NAME) continue;
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      // Fields after the parenthesised name; nice is field 19 of stat(5), the 17th of these.
      found.push({ tid, nice: Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]) });
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return found;
}

function entries(): Entry[] {
  const out: Entry[] = [];
  for (let k = 0; k < KEYS; k++) {
    out.push({ key: pageKey(k), lsn: 10n, rec: imageRec(k) });
    out.push({ key: pageKey(k), lsn: 20n + BigInt(k % 7), rec: patchRec(k % 4000, Buffer.from([k & 255, 7, 9])) });
  }
  return out;
}

const describeNative = SKIP_NATIVE || !ON_LINUX ? describe.skip : describe;
const why = SKIP_NATIVE ? NATIVE_SKIP_NOTE : ON_LINUX ? '' : ' — skipped: thread priorities are read from /proc (Linux only)';

describeNative(`native background work at a lower priority${why}`, () => {
  const dir = tmpDir('background-priority');
  const core: Core = makeCore('native');
  afterAll(() => {
    core.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('writes, lists and reads on companions at the background nice, with the results the caller computes', async () => {
    const spec = deltaSpec(1n, 100n, entries(), CODEC_LZ4);
    const [keys, blobs, willInit] = appendArgs(spec, spec.entries);
    const file = path.join(dir, 'bg.delta');
    const w = core.createLayerWriter(file, {
      kind: 'delta', codec: spec.codec, keyStart: spec.keyStart, keyEnd: spec.keyEnd, lsnStart: spec.lsnStart, lsnEnd: spec.lsnEnd,
    });
    await w.appendAsync(keys, blobs, willInit);
    const size = await w.finishAsync();
    expect(size).toBe(fs.statSync(file).size);

    const handle = core.openLayer(file);
    expect(Buffer.compare(await core.layerKeysInBackground(handle, KEY_MIN, KEY_MAX), core.layerKeys(handle, KEY_MIN, KEY_MAX))).toBe(0);

    const map = core.createLayerMap();
    core.setLayerMap(map, [handle]);
    const requests = Array.from({ length: 40 }, (_, i) => ({ key: pageKey(i * 7), segments: [{ mapId: map, layers: [spec], capLsn: 99n, mem: [] }] }));
    const inline = runPlan(core, requests);
    const out = Buffer.alloc(PAGE_SIZE * requests.length);
    const status = new Uint8Array(requests.length);
    const counts = new Uint32Array(requests.length * COUNTS_PER_REQUEST);
    await core.getPagesInBackground(planOf(requests), out, status, counts);
    expect(Buffer.compare(out, inline.out)).toBe(0);
    expect(Array.from(status)).toEqual(Array.from(inline.status));
    expect(sumCounts(counts)).toEqual({ layersVisited: inline.layersVisited, recordsApplied: inline.recordsApplied });
    expect(inline.recordsApplied).toBeGreaterThan(0);

    const found = companions();
    expect(found.length).toBeGreaterThan(0);
    for (const c of found) expect(c.nice, `companion ${c.tid}`).toBeGreaterThanOrEqual(CORE_WORKER_NICE);
  });

  it('a failure on a companion rejects with a coded StrataError naming the file', async () => {
    const missing = path.join(dir, 'no-such-input.delta');
    const pending = core.compactDeltas({
      inputs: [missing], outputPrefix: path.join(dir, 'out-'), outputSuffix: '.delta', targetBytes: 1 << 20, codec: CODEC_LZ4, lsnStart: 1n, lsnEnd: 100n,
    });
    const err: unknown = await pending.then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(StrataError);
    expect((err as StrataError).code).toBe('IO_ERROR');
    expect((err as StrataError).message).toContain(missing);
  });
});
