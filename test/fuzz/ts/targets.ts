/**
 * The TS fuzz targets: every parser of untrusted bytes in the TS core and the TS-only parsers. Each
 * takes one input and either succeeds or throws; the harness (test/fuzz/ts/harness.ts) accepts a
 * StrataError with a code of ERROR_CODES and nothing else. Targets named like a native one take the
 * same input layout, so they share its seeds (test/fuzz/corpus/<name>/) and reproducers; TS-only
 * targets have their own seeds (test/fuzz/corpus/ts_<name>/, written by test/fuzz/make_seeds.js).
 * A target that checks a property of what it parsed (a round trip) throws a plain Error on a
 * violation, which the harness reports as a failure.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { crc32 } from 'node:zlib';
import { CODEC_LZ4, CODEC_ZSTD, BLOCK_PAYLOAD, BLOCK_SIZE, SUMMARY } from '../../../lib/core/format';
import { decompress } from '../../../lib/core/ts/codec';
import { BlockFile, RecordArena, RecordSlot, sealBlock } from '../../../lib/core/ts/block_io';
import { ReadScratch, collectDeltaChain } from '../../../lib/core/ts/delta_layer';
import { lookupImage } from '../../../lib/core/ts/image_layer';
import { decodeSummary, encodeSummary, layerKeys, openLayerFile, verifyLayer, type Layer } from '../../../lib/core/ts/layer_file';
import { LayerMap } from '../../../lib/core/ts/layer_map';
import { PageCache } from '../../../lib/core/ts/page_cache';
import { pglzDecompress } from '../../../lib/core/ts/pg/pglz';
import { checkRedoRecord } from '../../../lib/core/ts/pg/redo_record';
import { redoRecord } from '../../../lib/core/ts/pg/rmgr';
import { TsWalDecoder, type WalDecoderOptions } from '../../../lib/core/ts/pg/xlogreader';
import { Reconstructor } from '../../../lib/core/ts/reconstruct';
import { RecordChain, validateRecord } from '../../../lib/core/ts/walredo';
import { decodeManifest, encodeManifest } from '../../../lib/engine/manifest';
import { decodeIndex, encodeIndex } from '../../../lib/engine/remote_layout';
import { StrataError } from '../../../lib/errors';
import { KEY_SIZE } from '../../../lib/key';
import { PAGE_SIZE, recordWillInit } from '../../../lib/record';
import { Authenticator } from '../../../lib/service/auth';
import { FrameReader, decodeClientFrame, decodeServerFrame, type RawFrame } from '../../../lib/service/frames';
import { Prng } from './mutate';

export interface TsFuzzTarget {
  name: string;
  /** Seed directory under test/fuzz/corpus/. */
  corpus: string;
  /** Largest input the mutator makes, bytes. */
  maxLen: number;
  /** The format is JSON text (the mutator also mutates it structurally). */
  json?: boolean;
  /** run returns a promise (the token checks are async). */
  async?: boolean;
  /**
   * Inputs end almost always in one outcome by design, so a campaign of a few hundred may see
   * only that one: layer_blob walks on past the value stream to random offsets, and the walk's
   * first refusal is its outcome, so even a valid seed usually ends in CORRUPT_LAYER.
   */
  oneOutcomeIsNormal?: boolean;
  run(input: Buffer): void | Promise<void>;
}

const ROOT = path.join(__dirname, '..', '..', '..');
const CORPUS = path.join(ROOT, 'test', 'fuzz', 'corpus');
const MAX_LAYER_BLOCKS = 64;
const MAX_PLAN_PAGES = 16;
const MAX_CHAIN_RECORDS = 16;
const COUNTS_PER_REQUEST = 2;

/** A scratch file on tmpfs when there is one (a layer is read through a path, as in production). */
function scratchFile(name: string): string {
  const dir = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  return path.join(dir, `strata-fuzz-${process.pid}-${name}`);
}

/** Rewrites every block's CRC so mutations reach the parsers behind the check (as the native harness does). */
function sealAll(file: Buffer): void {
  for (let off = 0; off + BLOCK_SIZE <= file.length; off += BLOCK_SIZE) sealBlock(file.subarray(off, off + BLOCK_SIZE));
}

/** A scratch file kept open for writing: rewriting it in place saves an open and a close per input. */
class ScratchFile {
  readonly path: string;
  readonly fd: number;

  constructor(name: string) {
    this.path = scratchFile(name);
    this.fd = fs.openSync(this.path, 'w+');
  }

  /** The file's whole content becomes `bytes`. */
  set(bytes: Buffer): void {
    fs.ftruncateSync(this.fd, bytes.length);
    fs.writeSync(this.fd, bytes, 0, bytes.length, 0);
  }
}

let nextHandle = 1;
const layerCache = new PageCache(32 * BLOCK_SIZE);

// ---- layer files -----------------------------------------------------------------------------

/** Block 0's payload through decodeSummary; a summary that decodes survives encode → decode. */
function layerSummary(input: Buffer): void {
  const block = Buffer.alloc(BLOCK_SIZE);
  input.copy(block, 0, 0, Math.min(input.length, BLOCK_PAYLOAD));
  sealBlock(block); // the CRC is the layer_btree target's business; this one reaches the fields
  const fileBlocks = block.readUInt32BE(SUMMARY.totalBlocks);
  const s = decodeSummary('fuzz-summary', block, fileBlocks);
  const again = Buffer.alloc(BLOCK_SIZE);
  encodeSummary(s, again);
  sealBlock(again);
  const t = decodeSummary('fuzz-summary', again, fileBlocks);
  if (!isDeepStrictEqual(s, t)) throw new Error('summary changed through encode → decode');
}

/** Reads the records of `key` the way GetPage@LSN does (image lookup or delta chain). */
function readKey(layer: Layer, key: Buffer, chain: RecordChain, s: ReadScratch): void {
  chain.reset();
  if (layer.isImage) lookupImage(layer, key, 0, chain, s);
  else collectDeltaChain(layer, key, 0, 0n, 0xffff_ffff_ffff_ffffn, chain, s);
}

let layerScratch: ScratchFile | null = null;
// Reused between inputs as the read path reuses them (a RecordChain holds a 256 KB arena).
const layerChain = new RecordChain();
const layerReadScratch = new ReadScratch();

/** A whole layer file (the twin of the native layer_btree target): open, seek, read, keys, verify. */
function layerFile(input: Buffer): void {
  if (input.length === 0) return;
  const blocks = Math.min(MAX_LAYER_BLOCKS, Math.ceil(input.length / BLOCK_SIZE));
  const file = Buffer.alloc(blocks * BLOCK_SIZE);
  input.copy(file, 0, 0, file.length);
  if ((input[input.length - 1] & 1) !== 0) file.writeUInt32BE(blocks, SUMMARY.totalBlocks);
  sealAll(file);
  layerScratch ??= new ScratchFile('layer');
  layerScratch.set(file);
  const layer = openLayerFile(layerScratch.path, nextHandle++, layerCache);
  try {
    const chain = layerChain;
    const s = layerReadScratch;
    const key = Buffer.alloc(KEY_SIZE);
    for (let probe = 0; probe < 4; probe++) {
      for (let i = 0; i < KEY_SIZE; i++) key[i] = input[(probe * 31 + i) % input.length];
      readKey(layer, key, chain, s);
    }
    readKey(layer, layer.summary.keyStart, chain, s);
    const keys = layerKeys(layer, layer.summary.keyStart, layer.summary.keyEnd);
    for (let off = 0; off < keys.length && off < 4 * KEY_SIZE; off += KEY_SIZE) readKey(layer, keys.subarray(off, off + KEY_SIZE), chain, s);
    layerKeys(layer, key, layer.summary.keyEnd);
    verifyLayer(layer);
  } finally {
    layer.close();
  }
}

let blobScratch: ScratchFile | null = null;

/** [u8 ops][value stream]: blobs read back to back from offset 0, then at offsets from the input. */
function layerBlob(input: Buffer): void {
  if (input.length < 2) return;
  const valueBytes = Math.min(input.length - 1, 16 * BLOCK_PAYLOAD);
  const valueBlocks = Math.ceil(valueBytes / BLOCK_PAYLOAD);
  const file = Buffer.alloc((1 + valueBlocks) * BLOCK_SIZE);
  for (let i = 0; i < valueBlocks; i++) {
    input.copy(file, (1 + i) * BLOCK_SIZE, 1 + i * BLOCK_PAYLOAD, 1 + Math.min(valueBytes, (i + 1) * BLOCK_PAYLOAD));
  }
  sealAll(file);
  blobScratch ??= new ScratchFile('blob');
  blobScratch.set(file);
  // Reads go through the scratch file's own descriptor, so the BlockFile is never closed.
  const bf = new BlockFile(blobScratch.path, blobScratch.fd, nextHandle++, 1 + valueBlocks, layerCache);
  const arena = new RecordArena(64 * 1024);
  const slot = new RecordSlot();
  const rng = new Prng(input[0] + 1);
  let refused: StrataError | null = null;
  const attempt = (read: () => void): boolean => {
    try {
      read();
      return true;
    } catch (e) {
      if (!(e instanceof StrataError)) throw e;
      refused ??= e;
      return false;
    }
  };
  let offset = 0;
  for (let i = 0; i < 8 + (input[0] & 7); i++) {
    const ok = attempt(() => {
      bf.readBlob(offset, valueBytes, arena, slot, (i & 1) === 1);
      const bad = validateRecord(slot.buf.subarray(slot.off, slot.off + slot.len));
      if (bad !== null) throw new StrataError('CORRUPT_LAYER', `blob at value offset ${offset}: ${bad}`);
    });
    const at = offset;
    attempt(() => bf.readEncodedBlob(at, valueBytes));
    offset = ok ? offset + slot.blobLen : rng.below(valueBytes + 1);
  }
  // The first refusal is the outcome (the walk went on past it, as Verify's would not).
  if (refused !== null) throw refused;
}

// ---- values and records ----------------------------------------------------------------------

/** [u8 mode][u16 BE raw length][stored]: 0 lz4 value, 1 zstd value, 2 lz4 block, 3 pglz. */
function valueCodec(input: Buffer): void {
  if (input.length < 3) return;
  const mode = input[0] % 4;
  const raw = input.readUInt16BE(1);
  const stored = input.subarray(3);
  const decode = (): Buffer | null => {
    if (mode === 3) {
      const out = Buffer.alloc(raw);
      return pglzDecompress(stored, out) === null ? out : null;
    }
    // A bare LZ4 block goes through the value path with its u32 LE size prefix added.
    const value = mode === 2 ? Buffer.concat([Buffer.from([raw & 0xff, raw >> 8, 0, 0]), stored]) : stored;
    try {
      return decompress(mode === 1 ? CODEC_ZSTD : CODEC_LZ4, value, raw);
    } catch (e) {
      // decompress reports malformed input with a plain Error that its caller (BlockFile.readBlob)
      // turns into CORRUPT_LAYER naming the file; any other exception type is a bug.
      if (e instanceof Error && e.constructor === Error) throw new StrataError('CORRUPT_LAYER', `value: ${e.message}`, { cause: e });
      throw e;
    }
  };
  const first = decode();
  if (first === null) return;
  if (first.length !== raw) throw new Error(`decoded ${first.length} bytes, expected ${raw}`);
  const again = decode();
  if (again === null || !again.equals(first)) throw new Error('the same value decoded twice differently');
}

/** Records of [u8 n][n × u16 BE length][records…] (the native record_redo layout). */
function splitRecords(input: Buffer, max: number): Buffer[] | null {
  if (input.length < 1) return null;
  const n = Math.min(input[0], max);
  let pos = 1 + 2 * n;
  if (pos > input.length) return null;
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const len = Math.min(input.readUInt16BE(1 + 2 * i), input.length - pos);
    out.push(Buffer.from(input.subarray(pos, pos + len)));
    pos += len;
  }
  return out;
}

/**
 * The record decoder and redo: records that check form a chain (newest first, cut after the first
 * page-initializing one, as the read path does) applied to a page. A chain the redo cannot start
 * (empty, no page-initializing record) is BAD_ARGUMENT.
 */
const redoChain = new RecordChain();

function recordRedo(input: Buffer): void {
  const records = splitRecords(input, MAX_CHAIN_RECORDS);
  if (records === null) return;
  const chain = redoChain;
  chain.reset();
  for (const r of records) {
    if (validateRecord(r) !== null) continue;
    chain.push(r, 0, r.length);
    if (recordWillInit(r)) break;
  }
  chain.redoInto(new Uint8Array(PAGE_SIZE), 0);
}

/** [u16 LE length][stored PostgreSQL record][base page]: PostgreSQL redo of one record on a page. */
function pgRedo(input: Buffer): void {
  if (input.length < 2) return;
  const len = Math.min(input.readUInt16LE(0), input.length - 2);
  const rec = Buffer.from(input.subarray(2, 2 + len));
  const page = new Uint8Array(PAGE_SIZE);
  page.set(input.subarray(2 + len, 2 + len + PAGE_SIZE));
  if (checkRedoRecord(rec, 0, rec.length) === null && recordWillInit(rec)) page.fill(0);
  redoRecord(rec, 0, rec.length, page, 0);
}

// ---- the read plan ---------------------------------------------------------------------------

let planMaps: Map<number, LayerMap> | null = null;

/** Map 1 is empty; map 2 holds a seed layer file, so segments reach the layer search. */
function readPlanMaps(): Map<number, LayerMap> {
  if (planMaps !== null) return planMaps;
  const empty = new LayerMap();
  const withLayer = new LayerMap();
  withLayer.layers.push(openLayerFile(path.join(CORPUS, 'layer_btree', 'layer-0.bin'), nextHandle++, new PageCache(64 * BLOCK_SIZE)));
  planMaps = new Map([[1, empty], [2, withLayer]]);
  return planMaps;
}

let reconstructor: Reconstructor | null = null;

/** The plan through Reconstructor.getPages, outputs sized for the count it claims when small. */
function readPlan(input: Buffer): void {
  if (input.length < 4) return;
  reconstructor ??= new Reconstructor(readPlanMaps());
  const count = input.readUInt32BE(0);
  const pages = count <= MAX_PLAN_PAGES ? count : 0;
  reconstructor.getPages(Buffer.from(input), new Uint8Array(pages * PAGE_SIZE), new Uint8Array(pages), new Uint32Array(pages * COUNTS_PER_REQUEST));
}

// ---- PostgreSQL WAL --------------------------------------------------------------------------

const WAL_PAGE = 8192;
const WAL_DEFAULT_START = 0x100_0000n;

/**
 * The native wal_decoder input ([u8 mode][u24 LE chunk seed][stream]) in raw mode: the stream is
 * decoded fed whole and fed in random chunks with random batch sizes; both must agree.
 */
function walDecoder(input: Buffer): void {
  if (input.length < 4) return;
  const mode = input[0];
  const seed = input[1] | (input[2] << 8) | (input[3] << 16);
  const wal = input.subarray(4);
  let start = WAL_DEFAULT_START;
  if (wal.length >= 16) {
    const addr = wal.readBigUInt64LE(8);
    if (addr % BigInt(WAL_PAGE) === 0n && addr < 1n << 52n) start = addr;
  }
  const opts: WalDecoderOptions = { startLsn: start };
  if ((mode & 2) !== 0) opts.endLsn = start + BigInt(seed % (wal.length + 64));
  if ((mode & 4) !== 0) opts.timeline = 1;
  if ((mode & 8) !== 0) opts.systemId = 7300000000000000001n;
  const whole = decodeWal(wal, opts, null);
  const chunked = decodeWal(wal, opts, new Prng(seed + 1));
  if (whole.summary !== chunked.summary) throw new Error(`fed whole: ${whole.summary}\nchunked: ${chunked.summary}`);
  if (whole.error !== null) throw whole.error;
}

/** A summary of a decode (entries' digest, count, state, or the error) and the error. */
function decodeWal(wal: Buffer, opts: WalDecoderOptions, rng: Prng | null): { summary: string; error: StrataError | null } {
  const hash = crypto.createHash('sha1');
  let count = 0;
  let state = '';
  try {
    const d = new TsWalDecoder(opts);
    const drain = (): void => {
      for (;;) {
        const b = d.decode(rng === null ? 1 << 30 : 1 + rng.below(8));
        hash.update(b.entries);
        count += b.count;
        state = b.state;
        if (b.state !== 'full') return;
      }
    };
    let at = 0;
    while (at < wal.length && state !== 'end') {
      const n = rng === null ? wal.length : Math.min(wal.length - at, 1 + rng.below(rng.below(4) === 0 ? 9000 : 64));
      d.feed(wal.subarray(at, at + n));
      at += n;
      drain();
    }
    if (state !== 'end') {
      d.finish();
      drain();
    }
  } catch (e) {
    if (!(e instanceof StrataError)) throw e;
    return { summary: `${e.code}: ${e.message}`, error: e };
  }
  return { summary: `${count} entries ${hash.digest('hex')}, state ${state}`, error: null };
}

// ---- engine metadata -------------------------------------------------------------------------

/** The text with its `crc32` trailer recomputed over the body (so mutations reach the JSON checks). */
function withFixedTrailer(text: string): string | null {
  const cut = text.lastIndexOf('\ncrc32 ');
  if (cut < 0) return null;
  const body = text.slice(0, cut);
  return `${body}\ncrc32 ${crc32(body).toString(16).padStart(8, '0')}\n`;
}

/** The manifest as read (trailer checked), and with its trailer fixed; a manifest that parses round-trips. */
function manifest(input: Buffer): void {
  const text = input.toString('utf8');
  const check = (t: string): void => {
    const m = decodeManifest('fuzz-manifest', t);
    if (!isDeepStrictEqual(decodeManifest('fuzz-manifest', encodeManifest(m)), m)) throw new Error('manifest changed through encode → decode');
  };
  try {
    check(text);
  } catch (e) {
    if (!(e instanceof StrataError)) throw e;
  }
  // The outcome is the fixed-trailer variant's: it gets past the checksum to the JSON checks.
  check(withFixedTrailer(text) ?? text);
}

/** index_part.json as read, and with its embedded manifest's trailer fixed; one that parses round-trips. */
function remoteIndex(input: Buffer): void {
  const variants: Buffer[] = [input];
  try {
    const j = JSON.parse(input.toString('utf8')) as { manifest?: unknown };
    if (j !== null && typeof j === 'object' && typeof j.manifest === 'string') {
      const fixed = withFixedTrailer(j.manifest);
      if (fixed !== null) variants.push(Buffer.from(JSON.stringify({ ...j, manifest: fixed })));
    }
  } catch {
    // not JSON: only the input itself
  }
  const check = (v: Buffer): void => {
    const p = decodeIndex('fuzz-index', v);
    if (!isDeepStrictEqual(decodeIndex('fuzz-index', encodeIndex(p)), p)) throw new Error('index changed through encode → decode');
  };
  for (const v of variants.slice(0, -1)) {
    try {
      check(v);
    } catch (e) {
      if (!(e instanceof StrataError)) throw e;
    }
  }
  check(variants[variants.length - 1]); // the outcome: the deepest-reaching variant's
}

// ---- the page service protocol ---------------------------------------------------------------

/** Splits the stream (first byte seeds the chunking) into frames; decodes each as both sides would. */
function frames(input: Buffer): void {
  if (input.length < 1) return;
  const rng = new Prng(input[0] + 1);
  const reader = new FrameReader();
  const stream = input.subarray(1);
  const decodeBoth = (raw: RawFrame): void => {
    for (const decode of [decodeClientFrame, decodeServerFrame]) {
      try {
        decode(raw);
      } catch (e) {
        if (!(e instanceof StrataError)) throw e;
      }
    }
  };
  for (let at = 0; at < stream.length;) {
    const n = Math.min(stream.length - at, 1 + rng.below(64));
    reader.push(stream.subarray(at, at + n));
    at += n;
    for (let f = reader.next(); f !== null; f = reader.next()) decodeBoth(f);
  }
}

/** The test-only HS256 secret the handshake seeds are signed with (base64url). */
export const HANDSHAKE_SECRET = 'c3RyYXRhLWZ1enotdGVzdC1zZWNyZXQtbm90LWZvci11c2U';
export const HANDSHAKE_TENANT = 'tenant-fuzz';
const authenticator = Authenticator.fromConfig({ keys: { keys: [{ kty: 'oct', k: HANDSHAKE_SECRET, kid: 'fuzz' }] } });

/** The first frame of a connection (HELLO with a JWT) through the decoder and the token check. */
async function handshake(input: Buffer): Promise<void> {
  const reader = new FrameReader();
  reader.push(input);
  const raw = reader.next();
  if (raw === null) return;
  const f = decodeClientFrame(raw);
  if (f.kind !== 'hello') return;
  await authenticator.checkPageAccess(f.hello.token, f.hello.tenantId);
}

/** HS256 over arbitrary header and claims bytes: mutated claims that still carry a valid signature. */
export function signRaw(header: Buffer, claims: Buffer): string {
  const signingInput = `${header.toString('base64url')}.${claims.toString('base64url')}`;
  const mac = crypto.createHmac('sha256', Buffer.from(HANDSHAKE_SECRET, 'base64url')).update(signingInput).digest('base64url');
  return `${signingInput}.${mac}`;
}

/**
 * A token signed correctly with the fuzz secret over a mutated JOSE header and claims: the checks
 * behind the signature (alg, kid, exp, nbf, scope and tenant_id types). The input is JSON
 * {"header": …, "claims": …} (mutated structurally); input that is not such JSON is signed as raw
 * claims bytes under a fixed header.
 */
async function jwtClaims(input: Buffer): Promise<void> {
  let header = Buffer.from('{"alg":"HS256","kid":"fuzz"}');
  let claims = input;
  try {
    const j = JSON.parse(input.toString('utf8')) as { header?: unknown; claims?: unknown } | null;
    if (j !== null && typeof j === 'object') {
      header = Buffer.from(JSON.stringify(j.header ?? null));
      claims = Buffer.from(JSON.stringify(j.claims ?? null));
    }
  } catch {
    // raw claims bytes
  }
  await authenticator.checkPageAccess(signRaw(header, claims), HANDSHAKE_TENANT);
}

export const TS_TARGETS: readonly TsFuzzTarget[] = [
  { name: 'layer_summary', corpus: 'layer_summary', maxLen: BLOCK_PAYLOAD, run: layerSummary },
  { name: 'layer_btree', corpus: 'layer_btree', maxLen: 8 * BLOCK_SIZE, run: layerFile },
  { name: 'layer_blob', corpus: 'layer_blob', maxLen: 65_536, oneOutcomeIsNormal: true, run: layerBlob },
  { name: 'value_codec', corpus: 'value_codec', maxLen: 20_000, run: valueCodec },
  { name: 'record_redo', corpus: 'record_redo', maxLen: 40_000, run: recordRedo },
  { name: 'pg_redo', corpus: 'pg_redo', maxLen: 20_000, run: pgRedo },
  { name: 'read_plan', corpus: 'read_plan', maxLen: 40_000, run: readPlan },
  { name: 'wal_decoder', corpus: 'wal_decoder', maxLen: 20_000, run: walDecoder },
  { name: 'manifest', corpus: 'ts_manifest', maxLen: 20_000, json: true, run: manifest },
  { name: 'remote_index', corpus: 'ts_remote_index', maxLen: 20_000, json: true, run: remoteIndex },
  { name: 'frames', corpus: 'ts_frames', maxLen: 20_000, run: frames },
  { name: 'handshake', corpus: 'ts_handshake', maxLen: 4096, async: true, run: handshake },
  { name: 'jwt_claims', corpus: 'ts_jwt_claims', maxLen: 2048, json: true, async: true, run: jwtClaims },
];
