#!/usr/bin/env node
/**
 * Regenerates the committed fuzz seeds in test/fuzz/corpus/<target>/ (all Strata-made data):
 *   wal_decoder   framed-mode inputs (record bodies the harness frames as valid WAL: block refs,
 *                 SAME_REL, origin, top-level xid, short/long main data, raw / pglz / lz4 / zstd
 *                 images) and raw-mode inputs (the same WAL as a byte stream, from the harness's
 *                 STRATA_FUZZ_DUMP_WAL output);
 *   layer_*       layer files written by Strata's TS core (a delta and an image layer), their
 *                 summary block, and their value stream;
 *   value_codec   pages compressed by the writer (lib/core/compress.ts encodeBlob) and pglz;
 *   record_redo   chains of serialized records (lib/record.ts), a stored PostgreSQL record among them;
 *   read_plan     plans (lib/core/read_plan.ts) over the layer_btree layer-0.bin seed's keys;
 *   compaction    sets of L0 delta layers flushed by Strata's TS core (lz4, zstd and uncompressed,
 *                 merged alone, in twos to fours, across codecs), layers of 12 value blocks and
 *                 of 9 leaves (past the merge's read chunk), one layer twice (an overlap) and a
 *                 delta with an image layer;
 *   delta_arena   in-memory layer arenas in the target's choice layout: mixed records under each
 *                 codec, 300 records over 32 keys, stored PostgreSQL records (from the committed
 *                 pg_redo seeds), an empty arena, and the 7 malformed arenas of
 *                 test/core_differential_arena.test.ts as mutations;
 *   pg_redo       stored records built from real PostgreSQL WAL (the PostgreSQL tests' fixtures,
 *                 test/helpers/pg_fixture.ts) with the page each was redone on;
 *   ts_manifest, ts_remote_index   a repository's manifest and its remote index_part.json;
 *   ts_frames, ts_handshake, ts_jwt_claims   page service frames (lib/service/frames.ts), HELLO with
 *                 a token signed by the fuzz-only secret, and that token's header and claims.
 * Run after `npm run build` and one `npm run fuzz` build: node test/fuzz/make_seeds.js [target…]
 * (no targets: all of them; the layer seeds are written together).
 */
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.join(__dirname, '..', '..');
const CORPUS = path.join(__dirname, 'corpus');
const lz4 = require('lz4-napi');
const zstd = require('zstd-napi');

function u16(v) { const b = Buffer.alloc(2); b.writeUInt16LE(v); return b; }
function u32(v) { const b = Buffer.alloc(4); b.writeUInt32LE(v); return b; }

/** One framed record: [u16 body length][rmid][info][body]. */
function framed(rmid, info, body) { return Buffer.concat([u16(body.length), Buffer.from([rmid, info]), body]); }

function blockHeader(id, forkFlags, dataLen) { return Buffer.concat([Buffer.from([id, forkFlags]), u16(dataLen)]); }
const REL = Buffer.concat([u32(1663), u32(5), u32(16384)]);

function page(seed) {
  const p = Buffer.alloc(8192);
  p.writeUInt16LE(64, 12); p.writeUInt16LE(7000, 14); p.writeUInt16LE(8192, 16);
  for (let i = 24; i < 64; i++) p[i] = (i * 7 + seed) & 0xff;
  for (let i = 7000; i < 8192; i++) p[i] = ((i >> 2) + seed) & 0xff;
  return p;
}
const hole = (p) => Buffer.concat([p.subarray(0, 64), p.subarray(7000)]);
/** pglz made of literals only (a control byte of 0 before every 8 bytes): valid, if uncompressed. */
function pglzLiterals(raw) {
  const out = [];
  for (let i = 0; i < raw.length; i += 8) out.push(Buffer.from([0]), raw.subarray(i, i + 8));
  return Buffer.concat(out);
}

function imageBlock(id, bimgInfo, stored, holeLength) {
  const parts = [blockHeader(id, 0x10, 0), u16(stored.length), u16(64), Buffer.from([bimgInfo])];
  if ((bimgInfo & 0x1c) !== 0 && (bimgInfo & 1) !== 0) parts.push(u16(holeLength));
  parts.push(REL, u32(id));
  return { header: Buffer.concat(parts), payload: stored };
}

function walSeeds() {
  const data = Buffer.from('a heap tuple, more or less');
  const insert = Buffer.concat([blockHeader(0, 0x20, data.length), REL, u32(7), Buffer.from([255, 3]), data, Buffer.from([1, 0, 0])]);
  const multi = Buffer.concat([
    blockHeader(0, 0x60, 4), REL, u32(10), blockHeader(1, 0xa0, 2), u32(11), blockHeader(2, 0x82, 0), u32(0),
    Buffer.from([253]), u16(9), Buffer.from([252]), u32(700), Buffer.from([254]), u32(300),
    Buffer.alloc(4, 1), Buffer.alloc(2, 2), Buffer.alloc(300, 3),
  ]);
  const raw = hole(page(1));
  const images = [
    imageBlock(0, 0x03, raw, 0),
    imageBlock(1, 0x07, pglzLiterals(raw), 8192 - raw.length),
    imageBlock(2, 0x0b, lz4.compressSync(raw).subarray(4), 8192 - raw.length),
    imageBlock(3, 0x13, zstd.compress(raw), 8192 - raw.length),
  ];
  const fpi = Buffer.concat([...images.map((b) => b.header), ...images.map((b) => b.payload)]);
  return {
    'framed-insert': Buffer.concat([Buffer.from([1, 1, 2, 3]), framed(10, 0x00, insert), framed(11, 0x40, multi)]),
    'framed-images': Buffer.concat([Buffer.from([1, 9, 9, 9]), framed(0, 0xb0, fpi), framed(10, 0x00, insert)]),
    'framed-mixed': Buffer.concat([Buffer.from([7, 5, 0, 0]), framed(9, 0x10, multi), framed(0, 0xb0, Buffer.concat([images[2].header, images[2].payload])), framed(0, 0x40, Buffer.alloc(0)), framed(1, 0x00, Buffer.from([255, 1, 0]))]),
  };
}

/** Raw-mode seeds: the harness frames a seed and dumps the stream (first page's pageaddr = its LSN). */
function rawSeeds(framedSeeds) {
  const bin = path.join(ROOT, 'build-fuzz', 'wal_decoder');
  if (!fs.existsSync(bin)) throw new Error('build the fuzz targets first (npm run fuzz -- --time 1)');
  const out = {};
  for (const [name, input] of Object.entries(framedSeeds)) {
    const dump = path.join(os.tmpdir(), `strata-seed-${process.pid}.wal`);
    const seed = path.join(os.tmpdir(), `strata-seed-${process.pid}.in`);
    fs.writeFileSync(seed, input);
    const r = spawnSync(bin, [seed], { env: { ...process.env, STRATA_FUZZ_DUMP_WAL: dump }, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    out[name.replace('framed', 'raw')] = Buffer.concat([Buffer.from([0, 3, 2, 1]), fs.readFileSync(dump)]);
    fs.rmSync(dump);
    fs.rmSync(seed);
  }
  return out;
}

async function layerSeeds() {
  const { Repository } = require(path.join(ROOT, 'dist'));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-seed-repo-'));
  try {
    const repo = await Repository.open(dir, { implementation: 'ts', compression: 'lz4' });
    const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
    const key = (blockNum) => ({ spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0, blockNum });
    const recs = [];
    for (let i = 0; i < 6; i++) recs.push({ lsn: BigInt(0x10 + i), key: key(i), kind: 'image', page: page(i) });
    recs.push({ lsn: 0x20n, key: key(1), kind: 'patch', offset: 100, data: Buffer.from('patched') });
    recs.push({ lsn: 0x21n, key: key(2), kind: 'zero' });
    tl.ingest(recs);
    await tl.flush();
    await tl.compact({ force: true }).catch(() => undefined);
    await repo.close();
    const files = [];
    const walk = (d) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) { const f = path.join(d, e.name); if (e.isDirectory()) walk(f); else files.push(f); } };
    walk(dir);
    const layers = files.filter((f) => fs.statSync(f).size % 8192 === 0 && fs.statSync(f).size > 0 && !f.endsWith('.json'));
    const out = { btree: {}, summary: {}, blob: {} };
    layers.slice(0, 3).forEach((f, i) => {
      const b = fs.readFileSync(f);
      out.btree[`layer-${i}`] = b;
      out.summary[`summary-${i}`] = b.subarray(0, 8188);
      // The value stream: block payloads 1.. (value_blk_count from the summary, big-endian at 64).
      const blocks = b.readUInt32BE(64);
      const valueBytes = Number(b.readBigUInt64BE(68));
      const stream = Buffer.concat(Array.from({ length: blocks }, (_, k) => b.subarray((k + 1) * 8192, (k + 1) * 8192 + 8188))).subarray(0, valueBytes);
      out.blob[`values-${i}`] = Buffer.concat([Buffer.from([i]), stream]);
    });
    return out;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * L0 delta layers as flushes write them (disjoint LSN ranges, overlapping keys) from one repository
 * per codec, each LSN range apart so layers of different repositories merge without a clash, and
 * an image layer (from a forced compaction) for the harness's image-input refusal.
 */
async function compactionLayers() {
  const { Repository } = require(path.join(ROOT, 'dist'));
  const readDir = (d) => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? readDir(path.join(d, e.name)) : [path.join(d, e.name)]));
  const magic = (b) => b.subarray(0, 4).toString('latin1');
  const key = (rel, blockNum) => ({ spcOid: 1663, dbOid: 5, relNumber: 16384 + rel, forkNum: 0, blockNum });
  const out = { deltas: {}, image: null, large: [] };
  for (const [n, compression] of ['lz4', 'zstd', 'none'].entries()) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-seed-compaction-'));
    try {
      const repo = await Repository.open(dir, { implementation: 'ts', compression });
      const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
      let lsn = BigInt(0x10 + n * 0x1000);
      for (let f = 0; f < 3; f++) {
        const recs = [];
        // A few images, patches over three relations (several versions of a key per layer), a zero.
        for (let i = 0; i < 3; i++) recs.push({ lsn: lsn++, key: key(0, i + f), kind: 'image', page: page(i + f) });
        for (let i = 0; i < 24; i++) recs.push({ lsn: lsn++, key: key(i % 3, i % 5), kind: 'patch', offset: i * 40, data: Buffer.from(`patch ${compression} ${f} ${i}`) });
        recs.push({ lsn: lsn++, key: key(2, 9 + f), kind: 'zero' });
        tl.ingest(recs);
        await tl.flush();
      }
      const before = new Set(readDir(dir));
      out.deltas[compression] = [...before].filter((f) => magic(fs.readFileSync(f)) === 'STLD').sort().map((f) => fs.readFileSync(f));
      if (out.image === null) {
        await tl.compact({ force: true }).catch(() => undefined);
        const image = readDir(dir).find((f) => fs.statSync(f).size % 8192 === 0 && magic(fs.readFileSync(f)) === 'STLI');
        if (image !== undefined) out.image = fs.readFileSync(image);
      }
      await repo.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  // Layers past the merge's 8-block read chunk: one of 12 uncompressed images (12 value blocks),
  // one of 2,100 small patches (9 leaves under a root).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-seed-compaction-'));
  try {
    const repo = await Repository.open(dir, { implementation: 'ts', compression: 'none' });
    const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
    let lsn = 0x4000n;
    tl.ingest(Array.from({ length: 12 }, (_, i) => ({ lsn: lsn++, key: key(3, i), kind: 'image', page: page(i) })));
    await tl.flush();
    tl.ingest(Array.from({ length: 2100 }, (_, i) => ({ lsn: lsn++, key: key(3, i % 40), kind: 'patch', offset: i % 8000, data: Buffer.from(`p${i}`) })));
    await tl.flush();
    out.large = readDir(dir).filter((f) => magic(fs.readFileSync(f)) === 'STLD').sort().map((f) => fs.readFileSync(f));
    await repo.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

/** [u8 target][u8 flags] then [u32 BE length][file] per input (the compaction target's layout). */
function compactionInput(target, flags, files) {
  const parts = [Buffer.from([target, flags])];
  for (const f of files) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(f.length);
    parts.push(len, f);
  }
  return Buffer.concat(parts);
}

async function compactionSeeds() {
  const { deltas, image, large } = await compactionLayers();
  const [a, b, c] = deltas.lz4;
  // Target byte: low 5 bits pick the cut size in KiB minus one, top 3 the output codec.
  const out = {
    'one-lz4': compactionInput(0x03, 0, [a]),
    'two-lz4': compactionInput(0x21, 0, [a, b]),
    'three-lz4-1k': compactionInput(0x00, 0, [a, b, c]),
    'three-codecs': compactionInput(0x47, 0, [deltas.lz4[1], deltas.zstd[0], deltas.none[2]]),
    'four-lz4-zstd': compactionInput(0x1f, 0, [c, deltas.zstd[0], deltas.zstd[1], deltas.zstd[2]]),
    overlap: compactionInput(0x01, 0, [b, b]),
    'many-values': compactionInput(0x07, 0, [large[0], a]),
    'many-leaves': compactionInput(0x0f, 0, [large[1]]),
  };
  if (image !== null) out['image-input'] = compactionInput(0x02, 0, [a, image]);
  return out;
}

const dist = (m) => require(path.join(ROOT, 'dist', m));

function valueCodecSeeds() {
  const { encodeBlob } = dist('core/compress');
  const { CODEC_LZ4, CODEC_ZSTD } = dist('core/format');
  const out = {};
  const rawLen = (n) => Buffer.from([n >> 8, n & 0xff]);
  const values = { page: page(3), tuple: Buffer.from('a heap tuple, more or less'.repeat(20)), heap: realHeapPage() };
  for (const [name, raw] of Object.entries(values)) {
    if (raw === null) continue;
    out[`lz4-${name}`] = Buffer.concat([Buffer.from([0]), rawLen(raw.length), encodeBlob(CODEC_LZ4, raw).subarray(8)]);
    out[`zstd-${name}`] = Buffer.concat([Buffer.from([1]), rawLen(raw.length), encodeBlob(CODEC_ZSTD, raw).subarray(8)]);
    out[`lz4block-${name}`] = Buffer.concat([Buffer.from([2]), rawLen(raw.length), encodeBlob(CODEC_LZ4, raw).subarray(12)]);
  }
  const h = hole(page(1));
  out['pglz-page'] = Buffer.concat([Buffer.from([3]), rawLen(h.length), pglzLiterals(h)]);
  return out;
}

/** A heap page PostgreSQL wrote (block 0 of the fixture's largest relation file), or null without fixtures. */
function realHeapPage() {
  const fixture = pgFixture();
  if (fixture === null) return null;
  const dbDir = path.join(fixture, 'base', 'base');
  if (!fs.existsSync(dbDir)) return null;
  let best = null;
  for (const db of fs.readdirSync(dbDir)) {
    for (const f of fs.readdirSync(path.join(dbDir, db))) {
      if (!/^\d+$/.test(f)) continue;
      const file = path.join(dbDir, db, f);
      const size = fs.statSync(file).size;
      if (size >= 8192 && (best === null || size > best.size)) best = { file, size };
    }
  }
  if (best === null) return null;
  const b = Buffer.alloc(8192);
  const fd = fs.openSync(best.file, 'r');
  fs.readSync(fd, b, 0, 8192, 0);
  fs.closeSync(fd);
  return b;
}

/** The PostgreSQL tests' fixture directory (plain variant first), or null. */
function pgFixture() {
  const cache = process.env.STRATA_PG_FIXTURE_DIR || path.join(os.tmpdir(), 'strata-pg-fixtures');
  if (!fs.existsSync(cache)) return null;
  const names = fs.readdirSync(cache).filter((n) => fs.existsSync(path.join(cache, n, 'COMPLETE')));
  const pick = names.find((n) => n.startsWith('plain-')) ?? names.find((n) => n.startsWith('btree-')) ?? names[0];
  return pick === undefined ? null : path.join(cache, pick);
}

/** [u8 n][n × u16 BE length][records…] (the record_redo layout). */
function chain(records) {
  const lens = records.map((r) => Buffer.from([r.length >> 8, r.length & 0xff]));
  return Buffer.concat([Buffer.from([records.length]), ...lens, ...records]);
}

const KEY = (blockNum) => ({ spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0, blockNum });

function recordSeeds(pgRecords) {
  const { serializeRecord, serializeValueRecord } = dist('record');
  const image = serializeRecord({ lsn: 1n, key: KEY(0), kind: 'image', page: page(5) });
  const zero = serializeRecord({ lsn: 1n, key: KEY(0), kind: 'zero' });
  const patch = (off, text) => serializeRecord({ lsn: 2n, key: KEY(0), kind: 'patch', offset: off, data: Buffer.from(text) });
  const out = {
    image: chain([image]),
    'patches-image': chain([patch(100, 'newest'), patch(8000, 'older patch at the end'), image]),
    'patch-zero': chain([patch(0, 'x'), zero]),
    value: chain([patch(10, 'v'), serializeValueRecord(Buffer.from('a short value'))]),
  };
  const pgPairs = Object.entries(pgRecords).slice(0, 2);
  for (const [name, input] of pgPairs) {
    const len = input.readUInt16LE(0);
    const rec = input.subarray(2, 2 + len);
    const base = Buffer.concat([Buffer.from([1]), input.subarray(2 + len, 2 + len + 8192)]);
    out[`pg-${name}`] = chain([rec, base.length === 8193 ? base : image]);
  }
  return out;
}

function readPlanSeeds() {
  const { encodeReadPlan } = dist('core/read_plan');
  const { encodeKey } = dist('key');
  const { serializeRecord } = dist('record');
  const key = (blk) => encodeKey(KEY(blk));
  const seg = (layerMapId, capLsn, records = []) => ({ layerMapId, capLsn, memLsns: records.map((_, i) => BigInt(0x40 - i)), memRecords: records });
  const patch = serializeRecord({ lsn: 0x30n, key: KEY(1), kind: 'patch', offset: 8, data: Buffer.from('mem') });
  const image = serializeRecord({ lsn: 0x30n, key: KEY(9), kind: 'image', page: page(9) });
  return {
    'layer-hit': encodeReadPlan([{ key: key(1), segments: [seg(2, 0xffffn)] }]),
    'layer-cap': encodeReadPlan([{ key: key(2), segments: [seg(2, 0x15n)] }, { key: key(1), segments: [seg(2, 0x20n)] }]),
    'mem-then-layer': encodeReadPlan([{ key: key(1), segments: [seg(1, 0x40n, [patch]), seg(2, 0x30n)] }]),
    'mem-image': encodeReadPlan([{ key: key(9), segments: [seg(1, 0x40n, [patch, image])] }, { key: key(7), segments: [seg(1, 1n), seg(2, 0xffn)] }]),
    empty: encodeReadPlan([]),
  };
}

/**
 * Stored records (tag 4) from real PostgreSQL WAL, each with the page it was redone on: the WAL
 * of a fixture decoded by the TS decoder, pages followed from full-page images and will_init
 * records (blocks first seen otherwise are skipped), up to two seeds per record type.
 */
function pgRedoSeeds() {
  const fixture = pgFixture();
  if (fixture === null) {
    process.stdout.write('pg_redo: no PostgreSQL fixtures (run the PostgreSQL tests once); skipped\n');
    return null;
  }
  const { createWalDecoder } = dist('core/pg_decoder');
  const { decodedRecords, encodeStoredRecord, imageForBlock } = dist('pg/wal_record');
  const { redoRecord, rmgrInfoName } = dist('core/ts/pg/rmgr');
  const meta = JSON.parse(fs.readFileSync(path.join(fixture, 'fixture.json'), 'utf8'));
  const startLsn = (() => { const [hi, lo] = meta.base.redoLsn.replace('lsn:', '').split('/'); return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`); })();
  const clusterFlags = (meta.dataChecksums ? 1 : 0) | (meta.walLogHints ? 2 : 0);
  const pages = new Map();
  const perType = new Map();
  const out = {};
  const d = createWalDecoder('ts', { startLsn });
  const segs = [...dist('pg/wal_source').planWalSegments(path.join(fixture, 'wal'), { startLsn })].map((s) => s.file);
  let offset = Number(startLsn % 0x1000000n);
  for (const seg of segs) {
    d.feed(fs.readFileSync(seg).subarray(offset));
    offset = 0;
    for (;;) {
      const b = d.decode(2000);
      for (const r of decodedRecords(b.entries, b.count)) {
        const type = rmgrInfoName(r.rmid, r.info);
        for (const blk of r.blocks()) {
          const id = `${blk.spcOid}/${blk.dbOid}/${blk.relNumber}/${blk.forkNum}/${blk.blockNumber}`;
          if (blk.applyImage) { pages.set(id, imageForBlock(r, blk.index)); continue; }
          const before = blk.willInit ? Buffer.alloc(8192) : pages.get(id);
          if (before === undefined) continue;
          const stored = encodeStoredRecord(r, blk.index, clusterFlags);
          const after = Buffer.from(before);
          try { redoRecord(stored, 0, stored.length, after, 0); } catch { pages.delete(id); continue; }
          pages.set(id, after);
          const n = perType.get(type) ?? 0;
          if (n < 2 && stored.length < 4096) {
            perType.set(type, n + 1);
            const lenLe = Buffer.from([stored.length & 0xff, stored.length >> 8]);
            out[`${type.replace(/[^A-Za-z0-9]+/g, '_')}-${n}`] = Buffer.concat([lenLe, stored, blk.willInit ? Buffer.alloc(0) : trimZeros(before)]);
          }
        }
      }
      if (b.state !== 'full') break;
    }
    if (Object.keys(out).length >= 40) break;
  }
  return out;
}

// test/fuzz/targets/delta_arena.cc's record kinds and mutation ops, by value.
const ARENA_KIND = { patchShort: 0, patchLong: 1, zero: 2, value: 3, image: 4, raw: 5, patchRuns: 7 };
const ARENA_NO_PACK = 0x20;
const ARENA_OP = { entryWord: 0, head: 1, packedAt: 2, keysSize: 3, packedAtSize: 6, slabCut: 7 };
const ARENA_WORD = { slab: 2, offset: 3, prev: 5 };
/** A mutation's sel byte: the value mode (top 3 bits: 0 near, 1 raw, 3 one past the end, 7 small) and the entry word. */
const arenaSel = (mode, word = 0) => (mode << 5) | word;

/**
 * [u8 codec][u8 keys][u16 BE records][u8 slab][u32 BE lsn], per record [u8 key][u8 kind][u8 size]
 * [u8 fill] (raw: then [u16 BE length][bytes]), [u8 mutations], per mutation [u8 op][u16 BE index]
 * [u8 sel][u32 BE value], [u8 batches] (the delta_arena layout; batches 0: the walk's own limits).
 */
function arenaInput(codec, keys, records, mutations = [], slab = 3, batches = 0) {
  const head = Buffer.alloc(9);
  head[0] = codec; head[1] = keys; head.writeUInt16BE(records.length, 2); head[4] = slab; head.writeUInt32BE(0x00200000, 5);
  const parts = [head];
  for (const r of records) {
    parts.push(Buffer.from([r.key, r.kind, r.size ?? 0, r.fill ?? 0]));
    if (r.raw !== undefined) parts.push(Buffer.from([r.raw.length >> 8, r.raw.length & 0xff]), r.raw);
  }
  parts.push(Buffer.from([mutations.length]));
  for (const [op, index, sel, value] of mutations) {
    const m = Buffer.alloc(8);
    m[0] = op; m.writeUInt16BE(index, 1); m[3] = sel; m.writeUInt32BE(value >>> 0, 4);
    parts.push(m);
  }
  if (batches !== 0) parts.push(Buffer.from([batches]));
  return Buffer.concat(parts);
}

/** `n` records over `keys` keys, every kind but raw, some with gaps or left uncompressed. */
function arenaMix(n, keys, seed) {
  const kinds = [ARENA_KIND.patchShort, ARENA_KIND.patchShort, ARENA_KIND.patchLong, ARENA_KIND.zero, ARENA_KIND.value, ARENA_KIND.patchRuns, ARENA_KIND.image];
  const out = [];
  let x = seed;
  const next = () => { x = (x * 1103515245 + 12345) & 0x7fffffff; return x >> 8; };
  for (let i = 0; i < n; i++) {
    const kind = kinds[next() % kinds.length] | ((next() % 4) << 3) | (next() % 8 === 0 ? ARENA_NO_PACK : 0);
    out.push({ key: next() % keys, kind, size: next() & 0xff, fill: next() & 0xff });
  }
  return out;
}

function deltaArenaSeeds() {
  const CODEC = { none: 0, lz4: 1, zstd: 2 };
  // Record 0 is a 512-byte run (packed under lz4 and zstd); record 2 sits at the start of slab 0.
  const base = [{ key: 0, kind: ARENA_KIND.patchRuns, size: 63, fill: 7 }, ...arenaMix(40, 6, 11)];
  const out = {
    'none-mixed': arenaInput(CODEC.none, 6, base),
    'lz4-mixed': arenaInput(CODEC.lz4, 6, base),
    'zstd-mixed': arenaInput(CODEC.zstd, 6, base),
    'lz4-300-records': arenaInput(CODEC.lz4, 32, arenaMix(300, 32, 5), [], 15),
    'zstd-small-slabs': arenaInput(CODEC.zstd, 3, arenaMix(60, 3, 9), [], 0),
    // Small batch limits (3 entries or 128 B of blobs): the walk appends dozens of batches, and a
    // malformed record late in arrival order is refused after earlier batches went to the writer.
    'lz4-small-batches': arenaInput(CODEC.lz4, 32, arenaMix(300, 32, 5), [], 15, 0x12),
    'bad-late-record-small-batches': arenaInput(CODEC.lz4, 6, base, [[ARENA_OP.entryWord, 39, arenaSel(1, ARENA_WORD.offset), 0xffff]], 3, 0x12),
    empty: arenaInput(CODEC.lz4, 0, []),
    // As test/core_differential_arena.test.ts's malformed arenas.
    'bad-chain-cycle': arenaInput(CODEC.lz4, 6, base, [[ARENA_OP.entryWord, 0, arenaSel(7, ARENA_WORD.prev), 0], [ARENA_OP.head, 0, arenaSel(7), 0]]),
    'bad-head-past-end': arenaInput(CODEC.lz4, 6, base, [[ARENA_OP.head, 1, arenaSel(3), 0]]),
    'bad-record-past-slab': arenaInput(CODEC.lz4, 6, base, [[ARENA_OP.entryWord, 2, arenaSel(1, ARENA_WORD.offset), 0xffff]]),
    'bad-slab-index': arenaInput(CODEC.lz4, 6, base, [[ARENA_OP.entryWord, 3, arenaSel(1, ARENA_WORD.slab), 1000]]),
    'bad-keys-heads': arenaInput(CODEC.lz4, 6, base, [[ARENA_OP.keysSize, 0, 0xff, 0]]),
    'bad-packed-at-size': arenaInput(CODEC.lz4, 6, base, [[ARENA_OP.packedAtSize, 0, 0xf8, 0]]),
    'bad-packed-range': arenaInput(CODEC.lz4, 6, base, [[ARENA_OP.packedAt, 0, arenaSel(3), 0]]),
  };
  // Stored PostgreSQL records ([u16 LE length][record][page] seeds), each after an image of its key.
  const pgDir = path.join(CORPUS, 'pg_redo');
  const pgFiles = fs.existsSync(pgDir) ? fs.readdirSync(pgDir).filter((f) => /^Heap/.test(f)).sort().slice(0, 6) : [];
  if (pgFiles.length > 0) {
    const records = [];
    pgFiles.forEach((f, i) => {
      const b = fs.readFileSync(path.join(pgDir, f));
      records.push({ key: i, kind: ARENA_KIND.image, fill: i });
      records.push({ key: i, kind: ARENA_KIND.raw, raw: b.subarray(2, 2 + b.readUInt16LE(0)) });
    });
    out['pg-records'] = arenaInput(CODEC.zstd, pgFiles.length, records);
  }
  return out;
}

/** A page without its trailing zero bytes (the harness pads the base page with zeros). */
function trimZeros(b) {
  let end = b.length;
  while (end > 0 && b[end - 1] === 0) end--;
  return b.subarray(0, end);
}

/** A repository with a local remote: its manifest (as written) and the index_part.json uploaded. */
async function metadataSeeds() {
  const { Repository } = dist('index');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strata-seed-meta-'));
  try {
    const remote = path.join(dir, 'remote');
    const repo = await Repository.open(path.join(dir, 'repo'), { implementation: 'ts', remote: { type: 'local', path: remote } });
    const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
    for (let round = 0; round < 2; round++) {
      tl.ingest(Array.from({ length: 4 }, (_, i) => ({ lsn: BigInt(0x10 + round * 8 + i), key: KEY(i), kind: 'image', page: page(i) })));
      await tl.flush();
    }
    const br = await repo.createTimeline({ tenantId: 't', timelineId: 'branch', ancestorTimelineId: 'main', ancestorLsn: 0x12n }).catch(() => null);
    if (br !== null) { br.ingest([{ lsn: 0x30n, key: KEY(1), kind: 'zero' }]); await br.flush(); await br.syncRemote(); }
    await tl.syncRemote();
    await repo.close();
    const files = [];
    const walk = (d) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) { const f = path.join(d, e.name); if (e.isDirectory()) walk(f); else files.push(f); } };
    walk(dir);
    const manifests = files.filter((f) => path.basename(f) === 'manifest');
    const indexes = files.filter((f) => path.basename(f).startsWith('index_part.json'));
    return {
      manifest: Object.fromEntries(manifests.slice(0, 3).map((f, i) => [`manifest-${i}`, fs.readFileSync(f)])),
      index: Object.fromEntries(indexes.slice(0, 3).map((f, i) => [`index-${i}`, fs.readFileSync(f)])),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Kept equal to HANDSHAKE_SECRET in test/fuzz/ts/targets.ts: a fuzz-only key, in no real config. */
const HANDSHAKE_SECRET = 'c3RyYXRhLWZ1enotdGVzdC1zZWNyZXQtbm90LWZvci11c2U';
const HANDSHAKE_TENANT = 'tenant-fuzz';

async function serviceSeeds() {
  const f = dist('service/frames');
  const { signToken } = dist('service/auth');
  const key = { kty: 'oct', k: HANDSHAKE_SECRET, kid: 'fuzz' };
  const token = await signToken(key, { scope: 'pageserver', tenantId: HANDSHAKE_TENANT });
  const admin = await signToken(key, { scope: 'admin' });
  const expiring = await signToken(key, { scope: 'pageserver', tenantId: HANDSHAKE_TENANT, expiresInSeconds: 3600 * 24 * 365 * 50 });
  const hello = (t, tenantId = HANDSHAKE_TENANT) => f.encodeHello({ version: f.PROTOCOL_VERSION, tenantId, timelineId: 'main', token: t });
  const lsns = { requestLsn: 0x100n, notModifiedSince: 0x80n };
  const rel = { spcOid: 1663, dbOid: 5, relNumber: 16384, forkNum: 0 };
  const client = [
    hello(token),
    f.encodeRequest({ kind: 'getPage', id: 1, lsns, key: KEY(3) }),
    f.encodeRequest({ kind: 'getPages', id: 2, lsns, keys: [KEY(1), KEY(2)] }),
    f.encodeRequest({ kind: 'getRelSize', id: 3, lsns, rel }),
    f.encodeRequest({ kind: 'exists', id: 4, lsns, rel }),
    f.encodeRequest({ kind: 'listRelations', id: 5, lsns, dbOid: 5 }),
  ];
  const server = [
    f.encodeHelloOk({ version: f.PROTOCOL_VERSION, maxFrameBytes: f.MAX_FRAME_BYTES, maxInFlight: 32, maxBatchPages: 64, lastRecordLsn: 0x100n }),
    f.encodeRefuse('AUTH_FAILED', 'no'),
    f.encodeError(1, 'NOT_FOUND', 'gone'),
    f.encodeThrottled(2, 50, 'slow down'),
    f.encodeViolation(3, 'bad frame'),
    f.encodeRelSize(4, 17),
    f.encodeExistsResult(5, true),
    ...f.encodeRelations(6, [{ ...rel, nblocks: 3 }, { ...rel, relNumber: 16385, nblocks: 0 }]),
    f.encodePages(7, [page(1).subarray(0, 8192)]).subarray(0, 64),
  ];
  return {
    frames: {
      'client-stream': Buffer.concat([Buffer.from([7]), ...client]),
      'server-stream': Buffer.concat([Buffer.from([3]), ...server]),
      'page': Buffer.concat([Buffer.from([1]), f.encodePage(9, page(2))]),
    },
    handshake: {
      'hello-valid': hello(token),
      'hello-admin': hello(admin),
      'hello-expiring': hello(expiring),
      'hello-other-tenant': hello(token, 'another'),
      'hello-no-token': hello(''),
    },
    claims: {
      pageserver: Buffer.from(JSON.stringify({ header: { alg: 'HS256', kid: 'fuzz' }, claims: { scope: 'pageserver', tenant_id: HANDSHAKE_TENANT, iat: 1764547200 } })),
      expiring: Buffer.from(JSON.stringify({ header: { alg: 'HS256', typ: 'JWT' }, claims: { scope: 'pageserver', tenant_id: HANDSHAKE_TENANT, iat: 1764547200, exp: 4102444800, nbf: 1764547200 } })),
      admin: Buffer.from(JSON.stringify({ header: { alg: 'HS256', kid: 'fuzz', crit: ['b64'], b64: true }, claims: { scope: 'admin' } })),
    },
  };
}

function write(target, files) {
  const dir = path.join(CORPUS, target);
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, bytes] of Object.entries(files)) fs.writeFileSync(path.join(dir, `${name}.bin`), bytes);
  process.stdout.write(`${target}: ${Object.keys(files).length} seeds\n`);
}

(async () => {
  const only = process.argv.slice(2);
  const want = (t) => only.length === 0 || only.includes(t);
  if (want('wal_decoder')) {
    const f = walSeeds();
    write('wal_decoder', { ...f, ...rawSeeds(f) });
  }
  if (want('layer_btree') || want('layer_summary') || want('layer_blob')) {
    const l = await layerSeeds();
    write('layer_btree', l.btree);
    write('layer_summary', l.summary);
    write('layer_blob', l.blob);
  }
  if (want('value_codec')) write('value_codec', valueCodecSeeds());
  const pg = want('pg_redo') || want('record_redo') ? pgRedoSeeds() : null;
  if (want('pg_redo') && pg !== null) write('pg_redo', pg);
  if (want('record_redo')) write('record_redo', recordSeeds(pg ?? {}));
  if (want('read_plan')) write('read_plan', readPlanSeeds());
  if (want('compaction')) write('compaction', await compactionSeeds());
  if (want('delta_arena')) write('delta_arena', deltaArenaSeeds());
  if (want('ts_manifest') || want('ts_remote_index')) {
    const m = await metadataSeeds();
    write('ts_manifest', m.manifest);
    write('ts_remote_index', m.index);
  }
  if (want('ts_frames') || want('ts_handshake') || want('ts_jwt_claims')) {
    const s = await serviceSeeds();
    write('ts_frames', s.frames);
    write('ts_handshake', s.handshake);
    write('ts_jwt_claims', s.claims);
  }
})().catch((e) => { process.stderr.write(`${e.stack}\n`); process.exitCode = 1; });
