'use strict';
/**
 * The machine floors (native/bench/bench_floors.cc, built as build-bench/…/strata_bench.node) as harness tasks, so they run in the same rounds
 * as the engine paths they bound:
 *   memcpy      8 KB copies from a working set of N pages into a ring of 64 distinct pages
 *   napiCopy    one N-API call copying one cached page into a caller buffer
 *   napiBatch   one N-API call copying 64 pages into one caller buffer
 *   lz4 / zstd  decompression of stored blob payloads with the core's own Decompressor
 */
const { PAGE_SIZE, Rng } = require('./data');

const DIST = require('path').join(__dirname, '..', '..', 'dist');
const RING_PAGES = 64;

let floors = null;

/** The floors addon (scripts/build-bench.js builds it on first use; it is not part of the shipped addon). */
function floorsBinding() {
  if (floors === null) {
    const { ensureBenchAddon } = require('../../scripts/build-bench.js');
    floors = require(ensureBenchAddon()).benchFloors;
  }
  return floors;
}

/**
 * Floors over a working set of `pages` pages: memcpy (C++ loop), napiCopy (one call per page) and
 * napiBatch (one call per `batch` pages). Keys are drawn uniformly with `seed`.
 */
function copyFloorTasks(prefix, pages, seed, batch = 64) {
  const { PageStore } = floorsBinding();
  const store = new PageStore(pages, seed);
  const ids = new Uint32Array(65536);
  const rng = new Rng(seed);
  for (let i = 0; i < ids.length; i++) ids[i] = rng.int(0, pages);
  const one = Buffer.alloc(PAGE_SIZE);
  const many = Buffer.alloc(PAGE_SIZE * batch);
  const batches = [];
  for (let i = 0; i + batch <= ids.length; i += batch) batches.push(ids.subarray(i, i + batch));
  let i = 0;
  let b = 0;
  return [
    { name: `${prefix}floor.memcpy`, loop: (n) => store.memcpyRun(n, RING_PAGES, seed), bytesPerOp: PAGE_SIZE },
    { name: `${prefix}floor.napiCopy`, fn: () => { store.copyInto(ids[i++ & 65535], one); }, inner: 16, bytesPerOp: PAGE_SIZE },
    {
      name: `${prefix}floor.napiBatch${batch}`,
      fn: () => { store.copyBatch(batches[b++ % batches.length], many); },
      opsPerCall: batch,
      bytesPerOp: PAGE_SIZE,
    },
  ];
}

/**
 * Decompression floors over blobs encoded exactly as layer files store them (lib/core/compress.ts
 * encodeBlob of the serialized image record), for codec 'lz4' and 'zstd'. Returns the tasks and
 * the achieved compression ratios.
 */
function decompressFloorTasks(prefix, records) {
  const { decompressRun } = floorsBinding();
  const { encodeBlob } = require(`${DIST}/core/compress.js`);
  const { CODEC_LZ4, CODEC_ZSTD, BLOB_HEADER_SIZE, BLOB_RAW_LEN_SIZE } = require(`${DIST}/core/format.js`);
  const tasks = [];
  const ratios = {};
  for (const [name, codec] of [['lz4', CODEC_LZ4], ['zstd', CODEC_ZSTD]]) {
    const payloads = [];
    let rawLen = 0;
    let raw = 0;
    let stored = 0;
    for (const rec of records) {
      const blob = encodeBlob(codec, rec);
      if ((blob.readUInt32BE(0) >>> 28) !== codec) throw new Error(`${name}: a page did not compress; the floor needs compressed blobs`);
      payloads.push(blob.subarray(BLOB_HEADER_SIZE + BLOB_RAW_LEN_SIZE));
      rawLen = rec.length;
      raw += rec.length;
      stored += blob.length;
    }
    const offsets = new Uint32Array(payloads.length + 1);
    for (let i = 0; i < payloads.length; i++) offsets[i + 1] = offsets[i] + payloads[i].length;
    const all = Buffer.concat(payloads);
    ratios[name] = raw / stored;
    tasks.push({ name: `${prefix}floor.${name}`, loop: (n) => decompressRun(codec, all, offsets, rawLen, n).ns, bytesPerOp: rawLen });
    if (codec === CODEC_LZ4) {
      // Not a floor: the npm decoder the TS core uses (lz4-napi, Rust lz4_flex, a new Buffer per
      // call), to show where the TS core's reconstruct time goes.
      const lz4 = require('lz4-napi');
      let i = 0;
      tasks.push({ name: `${prefix}ref.lz4napi`, fn: () => lz4.uncompressSync(payloads[i++ % payloads.length]), inner: 4, bytesPerOp: rawLen });
    }
  }
  return { tasks, ratios };
}

module.exports = { copyFloorTasks, decompressFloorTasks, floorsBinding, RING_PAGES };
