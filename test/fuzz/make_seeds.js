#!/usr/bin/env node
/**
 * Regenerates the committed fuzz seeds in test/fuzz/corpus/<target>/ (all Strata-made data):
 *   wal_decoder   framed-mode inputs (record bodies the harness frames as valid WAL: block refs,
 *                 SAME_REL, origin, top-level xid, short/long main data, raw / pglz / lz4 / zstd
 *                 images) and raw-mode inputs (the same WAL as a byte stream, from the harness's
 *                 STRATA_FUZZ_DUMP_WAL output);
 *   layer_*       layer files written by Strata's TS core (a delta and an image layer), their
 *                 summary block, and their value stream.
 * Run after `npm run build` and one `npm run fuzz` build: node test/fuzz/make_seeds.js
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

function write(target, files) {
  const dir = path.join(CORPUS, target);
  fs.mkdirSync(dir, { recursive: true });
  for (const [name, bytes] of Object.entries(files)) fs.writeFileSync(path.join(dir, `${name}.bin`), bytes);
  process.stdout.write(`${target}: ${Object.keys(files).length} seeds\n`);
}

(async () => {
  const f = walSeeds();
  write('wal_decoder', { ...f, ...rawSeeds(f) });
  const l = await layerSeeds();
  write('layer_btree', l.btree);
  write('layer_summary', l.summary);
  write('layer_blob', l.blob);
})().catch((e) => { process.stderr.write(`${e.stack}\n`); process.exitCode = 1; });
