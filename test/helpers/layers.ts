/**
 * Building layer files and read plans by hand for the core-level tests, plus a tiny oracle of the
 * GetPage@LSN layer walk (docs/ARCHITECTURE.md) over the same in-memory description.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodeBlob } from '../../lib/core/compress';
import { COUNTS_PER_REQUEST, type Core, type LayerKind } from '../../lib/core/core';
import { CODEC_NONE, type CodecId } from '../../lib/core/format';
import { KEY_MAX, KEY_MIN, KEY_SIZE } from '../../lib/key';
import { encodeReadPlan, type PlanRequest } from '../../lib/core/read_plan';
import { PAGE_SIZE, RECORD_TAG_IMAGE, RECORD_TAG_PATCH, RECORD_TAG_VALUE, RECORD_TAG_ZERO, recordWillInit, serializeValueRecord } from '../../lib/record';
import type { Rng } from './random';

export function tmpDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `strata-${tag}-`));
}

/** A relation-page key whose block number is `n` (relation 1663/5/n >> 32 style spread kept simple). */
export function pageKey(n: number, rel = 16384): Buffer {
  const k = Buffer.alloc(KEY_SIZE);
  k.writeUInt32BE(1663, 1);
  k.writeUInt32BE(5, 5);
  k.writeUInt32BE(rel, 9);
  k[13] = 0;
  k.writeUInt32BE(n, 14);
  return k;
}

export function imageRec(seed: number): Buffer {
  const r = Buffer.alloc(1 + PAGE_SIZE);
  r[0] = RECORD_TAG_IMAGE;
  // Compressible but seed-dependent content, so codecs really compress and pages differ.
  for (let i = 1; i <= PAGE_SIZE; i++) r[i] = (seed * 31 + (i >> 6)) & 0xff;
  return r;
}

export function randomImageRec(rng: Rng): Buffer {
  const r = Buffer.alloc(1 + PAGE_SIZE);
  r[0] = RECORD_TAG_IMAGE;
  if (rng.chance(0.5)) rng.bytes(PAGE_SIZE).copy(r, 1);
  else r.fill(rng.int(0, 256), 1);
  return r;
}

export function valueRec(payload: Uint8Array): Buffer {
  return serializeValueRecord(payload);
}

export function zeroRec(): Buffer {
  return Buffer.of(RECORD_TAG_ZERO);
}

export function patchRec(offset: number, data: Uint8Array): Buffer {
  const r = Buffer.alloc(3 + data.length);
  r[0] = RECORD_TAG_PATCH;
  r.writeUInt16BE(offset, 1);
  r.set(data, 3);
  return r;
}

export function randomPatchRec(rng: Rng): Buffer {
  const len = rng.chance(0.1) ? rng.int(64, 2000) : rng.int(1, 40);
  return patchRec(rng.int(0, PAGE_SIZE - len + 1), rng.bytes(len));
}

export interface Entry {
  key: Buffer;
  lsn: bigint; // ignored for image layers (the layer's LSN is the record's)
  rec: Buffer;
}

/** In-memory description of one layer file. */
export interface LayerSpec {
  kind: LayerKind;
  codec: CodecId;
  keyStart: Buffer;
  keyEnd: Buffer;
  lsnStart: bigint;
  lsnEnd: bigint;
  entries: Entry[]; // sorted by (key, lsn)
}

export function deltaSpec(lsnStart: bigint, lsnEnd: bigint, entries: Entry[], codec: CodecId = CODEC_NONE,
  keyStart: Buffer = KEY_MIN, keyEnd: Buffer = KEY_MAX): LayerSpec {
  return { kind: 'delta', codec, keyStart, keyEnd, lsnStart, lsnEnd, entries: sortEntries(entries) };
}

export function imageSpec(lsn: bigint, entries: Array<{ key: Buffer; rec: Buffer }>, codec: CodecId = CODEC_NONE,
  keyStart: Buffer = KEY_MIN, keyEnd: Buffer = KEY_MAX): LayerSpec {
  return { kind: 'image', codec, keyStart, keyEnd, lsnStart: lsn, lsnEnd: lsn + 1n,
    entries: sortEntries(entries.map((e) => ({ key: e.key, lsn, rec: e.rec }))) };
}

export function sortEntries(entries: Entry[]): Entry[] {
  return [...entries].sort((a, b) => Buffer.compare(a.key, b.key) || (a.lsn < b.lsn ? -1 : a.lsn > b.lsn ? 1 : 0));
}

export function indexKey(kind: LayerKind, e: Entry): Buffer {
  if (kind === 'image') return Buffer.from(e.key);
  const k = Buffer.alloc(KEY_SIZE + 8);
  e.key.copy(k);
  k.writeBigUInt64BE(e.lsn, KEY_SIZE);
  return k;
}

/** Encode a spec's entries as the three append() arguments. */
export function appendArgs(spec: LayerSpec, entries: Entry[]): [Buffer, Buffer, Uint8Array] {
  const keys = Buffer.concat(entries.map((e) => indexKey(spec.kind, e)));
  const blobs = Buffer.concat(entries.map((e) => encodeBlob(spec.codec, e.rec)));
  const willInit = Uint8Array.from(entries.map((e) => (recordWillInit(e.rec) ? 1 : 0)));
  return [keys, blobs, willInit];
}

/** Write a spec through core's LayerWriter in appends of `chunk` entries; returns the file size. */
export function writeLayer(core: Core, file: string, spec: LayerSpec, chunk = 1000): number {
  return appendAll(core, file, spec, chunk).finish();
}

/** writeLayer ending in finishAsync (native: on the libuv pool), as flushes and compactions do. */
export async function writeLayerAsync(core: Core, file: string, spec: LayerSpec, chunk = 1000): Promise<number> {
  return appendAll(core, file, spec, chunk).finishAsync();
}

/** A writer for the spec with every entry appended in appends of `chunk` (aborted if one fails). */
function appendAll(core: Core, file: string, spec: LayerSpec, chunk: number): ReturnType<Core['createLayerWriter']> {
  const w = core.createLayerWriter(file, {
    kind: spec.kind, codec: spec.codec, keyStart: spec.keyStart, keyEnd: spec.keyEnd, lsnStart: spec.lsnStart, lsnEnd: spec.lsnEnd,
  });
  try {
    for (let i = 0; i < spec.entries.length; i += chunk) w.append(...appendArgs(spec, spec.entries.slice(i, i + chunk)));
  } catch (e) {
    w.abort();
    throw e;
  }
  return w;
}

let fileCounter = 0;

/** Write and open every spec; returns handles in order. */
export function openSpecs(core: Core, dir: string, specs: readonly LayerSpec[]): number[] {
  return specs.map((s) => {
    const file = path.join(dir, `layer-${fileCounter++}`);
    writeLayer(core, file, s);
    return core.openLayer(file);
  });
}

// ---------------------------------------------------------------------------------------------
// Oracle of the GetPage@LSN walk over LayerSpecs

export interface OracleSegment {
  layers: readonly LayerSpec[];
  capLsn: bigint;
  mem: Array<{ lsn: bigint; rec: Buffer }>; // newest first, ending at the first will_init
}

export interface OracleResult {
  page: Buffer | null;
  layersVisited: number;
  recordsApplied: number;
}

export function oracleGetPage(key: Buffer, segments: readonly OracleSegment[]): OracleResult {
  const chain: Buffer[] = [];
  let layersVisited = 0;
  const done = (found: boolean): OracleResult =>
    found ? { page: replay(chain), layersVisited, recordsApplied: chain.length } : { page: null, layersVisited, recordsApplied: 0 };
  for (const seg of segments) {
    for (const m of seg.mem) {
      chain.push(m.rec);
      if (recordWillInit(m.rec)) return done(true);
    }
    let cont = seg.capLsn + 1n;
    for (;;) {
      const cands = seg.layers
        .map((l, pos) => ({ l, pos }))
        .filter(({ l }) => Buffer.compare(l.keyStart, key) <= 0 && Buffer.compare(key, l.keyEnd) < 0 && l.lsnStart < cont);
      if (cands.length === 0) break;
      const top = (l: LayerSpec): bigint => (l.lsnEnd < cont ? l.lsnEnd : cont);
      cands.sort((a, b) => cmpBig(top(b.l), top(a.l)) || imageFirst(a.l, b.l) || cmpBig(b.l.lsnStart, a.l.lsnStart) || b.pos - a.pos);
      const l = cands[0].l;
      layersVisited++;
      const ofKey = entriesOf(l, key);
      if (l.kind === 'image') {
        if (ofKey.length === 0) return done(false);
        chain.push(ofKey[0].rec);
        return done(true);
      }
      let floor = l.lsnStart;
      for (const { l: i } of cands) if (i.kind === 'image' && i.lsnStart >= l.lsnStart && i.lsnStart + 1n > floor) floor = i.lsnStart + 1n;
      const recs = ofKey.filter((e) => e.lsn >= floor && e.lsn < cont).sort((a, b) => cmpBig(b.lsn, a.lsn));
      for (const e of recs) {
        chain.push(e.rec);
        if (recordWillInit(e.rec)) return done(true);
      }
      cont = floor;
    }
  }
  return done(false);
}

const byKeyCache = new WeakMap<LayerSpec, Map<string, Entry[]>>();

/** A spec's entries for one key (indexed once per spec, so big layers stay cheap to query). */
function entriesOf(l: LayerSpec, key: Buffer): Entry[] {
  let byKey = byKeyCache.get(l);
  if (byKey === undefined) {
    byKey = new Map();
    for (const e of l.entries) {
      const id = e.key.toString('hex');
      let list = byKey.get(id);
      if (list === undefined) byKey.set(id, (list = []));
      list.push(e);
    }
    byKeyCache.set(l, byKey);
  }
  return byKey.get(key.toString('hex')) ?? [];
}

function cmpBig(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function imageFirst(a: LayerSpec, b: LayerSpec): number {
  return (a.kind === 'image' ? 0 : 1) - (b.kind === 'image' ? 0 : 1);
}

function replay(newestFirst: Buffer[]): Buffer {
  const page = Buffer.alloc(PAGE_SIZE);
  for (let i = newestFirst.length - 1; i >= 0; i--) {
    const r = newestFirst[i];
    if (r[0] === RECORD_TAG_IMAGE) r.copy(page, 0, 1);
    else if (r[0] === RECORD_TAG_ZERO) page.fill(0);
    else if (r[0] === RECORD_TAG_VALUE) page.fill(0).set(r.subarray(1));
    else r.copy(page, r.readUInt16BE(1), 3);
  }
  return page;
}

// ---------------------------------------------------------------------------------------------
// Running plans

export interface TestRequest {
  key: Buffer;
  segments: Array<{ mapId: number; layers: readonly LayerSpec[]; capLsn: bigint; mem: Array<{ lsn: bigint; rec: Buffer }> }>;
}

export function planOf(requests: readonly TestRequest[]): Buffer {
  const reqs: PlanRequest[] = requests.map((r) => ({
    key: r.key,
    segments: r.segments.map((s) => ({ layerMapId: s.mapId, capLsn: s.capLsn, memLsns: s.mem.map((m) => m.lsn), memRecords: s.mem.map((m) => m.rec) })),
  }));
  return encodeReadPlan(reqs);
}

export interface PagesResult {
  out: Buffer;
  status: Uint8Array;
  layersVisited: number;
  recordsApplied: number;
}

export function runPlan(core: Core, requests: readonly TestRequest[]): PagesResult {
  const out = Buffer.alloc(requests.length * PAGE_SIZE, 0xee);
  const status = new Uint8Array(requests.length).fill(0xee);
  const counts = new Uint32Array(requests.length * COUNTS_PER_REQUEST).fill(0xeeee);
  core.getPages(planOf(requests), out, status, counts);
  return { out, status, ...sumCounts(counts) };
}

/** Totals over a getPages counts array ([layersVisited, recordsApplied] per request). */
export function sumCounts(counts: Uint32Array): { layersVisited: number; recordsApplied: number } {
  let layersVisited = 0;
  let recordsApplied = 0;
  for (let i = 0; i < counts.length; i += COUNTS_PER_REQUEST) {
    layersVisited += counts[i];
    recordsApplied += counts[i + 1];
  }
  return { layersVisited, recordsApplied };
}

export function runOracle(requests: readonly TestRequest[]): PagesResult {
  const out = Buffer.alloc(requests.length * PAGE_SIZE);
  const status = new Uint8Array(requests.length);
  let layersVisited = 0;
  let recordsApplied = 0;
  requests.forEach((r, i) => {
    const res = oracleGetPage(r.key, r.segments);
    layersVisited += res.layersVisited;
    recordsApplied += res.recordsApplied;
    status[i] = res.page === null ? 1 : 0;
    if (res.page !== null) res.page.copy(out, i * PAGE_SIZE);
  });
  return { out, status, layersVisited, recordsApplied };
}
