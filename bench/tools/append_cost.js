'use strict';
/**
 * What the TS core's writer appends cost the event loop's thread (Linux: /proc/thread-self/schedstat),
 * as image creation appends: BATCHES appendAsync calls of 8 lz4-compressed image pages each (half
 * random, so ≈ 4 KB a blob), then finishAsync. NOOP=1 runs the same loop without the writer calls,
 * to subtract the harness. The eleventh session of issue 11 compared this against handing the
 * batches to a writer thread (docs/PERFORMANCE.md).
 *
 *   [BATCHES=2500] [NOOP=1] node bench/tools/append_cost.js
 */
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { SKIP_NOTE, threadCpuAvailable, threadCpuMs } = require('./thread_cpu');

const DIST = path.join(__dirname, '..', '..', 'dist');
const { createTsCore } = require(`${DIST}/core/ts/core.js`);
const { encodeBlob } = require(`${DIST}/core/compress.js`);
const { CODEC_LZ4 } = require(`${DIST}/core/format.js`);
const { KEY_MAX, KEY_MIN, KEY_SIZE } = require(`${DIST}/key.js`);
const { PAGE_SIZE, RECORD_TAG_IMAGE } = require(`${DIST}/record.js`);

const BATCHES = Number(process.env.BATCHES || 2500);
const PAGES_PER_BATCH = 8; // IMAGE_BATCH_KEYS
const RANDOM_BYTES = PAGE_SIZE / 2;
async function main() {
  if (!threadCpuAvailable()) {
    console.log(SKIP_NOTE);
    return;
  }
  const core = createTsCore({ pageCacheBytes: 1 << 20 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-append-cost-'));
  const rec = Buffer.alloc(1 + PAGE_SIZE);
  rec[0] = RECORD_TAG_IMAGE;
  crypto.randomFillSync(rec, 1, RANDOM_BYTES);
  const blob = encodeBlob(CODEC_LZ4, rec);
  const blobs = Buffer.concat(Array(PAGES_PER_BATCH).fill(blob));
  const willInit = new Uint8Array(PAGES_PER_BATCH).fill(1);
  const writer = core.createLayerWriter(path.join(dir, 'layer'), {
    kind: 'image', codec: CODEC_LZ4, keyStart: KEY_MIN, keyEnd: KEY_MAX, lsnStart: 5n, lsnEnd: 6n,
  });
  const cpu0 = threadCpuMs();
  let page = 0;
  for (let b = 0; b < BATCHES; b++) {
    const keys = Buffer.alloc(KEY_SIZE * PAGES_PER_BATCH);
    for (let i = 0; i < PAGES_PER_BATCH; i++, page++) keys.writeUInt32BE(page, KEY_SIZE * (i + 1) - 4);
    if (!process.env.NOOP) await writer.appendAsync(keys, blobs, willInit);
  }
  const appendMs = threadCpuMs() - cpu0;
  const size = process.env.NOOP ? 0 : await writer.finishAsync();
  if (process.env.NOOP) writer.abort();
  console.log(`${BATCHES} batches of ${PAGES_PER_BATCH} blobs of ${blob.length} B${process.env.NOOP ? ' (no writer calls)' : `, a ${(size / 2 ** 20).toFixed(0)} MiB layer`}: `
    + `${appendMs.toFixed(0)} ms of the loop's CPU until the last append settled`);
  core.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((e) => { console.error(e); process.exit(1); });
