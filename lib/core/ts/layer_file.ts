/**
 * Layer files as a whole (docs/FORMAT.md, "Layer file"): the summary block (encode, decode and
 * every validation rule), the streaming writer, opening a layer, and verifyLayer.
 */
import * as fs from 'node:fs';
import { BlockFile, RecordArena, RecordSlot, VALUE_START_BLK, blockCrcOk, sealBlock } from './block_io';
import { blobHeader } from './codec';
import type { LayerKind, LayerSummary, LayerWriter, LayerWriterOptions } from '../core';
import type { DeltaArena } from '../delta_arena';
import { appendArena } from './delta_arena';
import {
  BtreeCursor, BtreeReader, btreeShape, buildBtreeSteps, checkNodeHeader, compareBytes, nodeUsedBytes, readU64, zeroTail, type BtreeShape,
} from './disk_btree';
import { StrataError } from '../../errors';
import { faults, injectFault } from '../../fault_injection';
import { fsyncFile, fsyncFileAsync, writeAll } from '../../fs_util';
import {
  BLOB_HEADER_SIZE, BLOB_RAW_LEN_SIZE, BLOCK_PAYLOAD, BLOCK_SIZE, BTREE_NODE_HEADER, BTREE_VALUE_SIZE, CODEC_LZ4,
  CODEC_NONE, CODEC_ZSTD, DELTA_INDEX_KEY_SIZE, DELTA_MAGIC, IMAGE_INDEX_KEY_SIZE, IMAGE_MAGIC, LAYER_FORMAT_VERSION,
  LAYER_KIND_DELTA, LAYER_KIND_IMAGE, SUMMARY, type CodecId,
} from '../format';
import { KEY_SIZE } from '../../key';
import { LSN_MAX } from '../../lsn';
import type { PageCache } from './page_cache';
import { type FileHandles, openLayerForReading } from './file_handles';
import { MAX_RECORD_SIZE, OLDEST_RECORD_FORMAT_VERSION, RECORD_FORMAT_VERSION, recordWillInit } from '../../record';
import { validateRecord } from './walredo';

const SUMMARY_BLK = 0;
/** Value and index blocks are batched into writes of this many blocks (512 KB). */
const WRITE_BATCH_BLOCKS = 64;
/** Index entries the writer reserves room for up front; the arrays double when full. */
const INITIAL_INDEX_CAPACITY = 1024;
/** Lengths read from disk are u64; anything above this cannot be a real layer and is not exact in a double. */
const MAX_SAFE_U64 = Number.MAX_SAFE_INTEGER;

export function indexKeySize(kind: LayerKind): number {
  return kind === 'delta' ? DELTA_INDEX_KEY_SIZE : IMAGE_INDEX_KEY_SIZE;
}

/** Everything block 0 says, already checked for consistency. */
export interface SummaryFields extends LayerSummary {
  valueBlkCount: number;
  indexStartBlk: number;
  indexRootBlk: number;
  keySize: number;
}

// ---------------------------------------------------------------------------------------------
// Summary

export function encodeSummary(s: SummaryFields, block: Buffer): void {
  block.fill(0);
  block.writeUInt32BE(s.kind === 'delta' ? DELTA_MAGIC : IMAGE_MAGIC, SUMMARY.magic);
  block.writeUInt16BE(LAYER_FORMAT_VERSION, SUMMARY.formatVersion);
  block[SUMMARY.layerKind] = s.kind === 'delta' ? LAYER_KIND_DELTA : LAYER_KIND_IMAGE;
  block[SUMMARY.codec] = s.codec;
  s.keyStart.copy(block, SUMMARY.keyStart, 0, KEY_SIZE);
  s.keyEnd.copy(block, SUMMARY.keyEnd, 0, KEY_SIZE);
  block.writeBigUInt64BE(s.lsnStart, SUMMARY.lsnStart);
  block.writeBigUInt64BE(s.lsnEnd, SUMMARY.lsnEnd);
  block.writeUInt32BE(VALUE_START_BLK, SUMMARY.valueStartBlk);
  block.writeUInt32BE(s.valueBlkCount, SUMMARY.valueBlkCount);
  block.writeBigUInt64BE(BigInt(s.valueBytes), SUMMARY.valueBytes);
  block.writeUInt32BE(s.indexStartBlk, SUMMARY.indexStartBlk);
  block.writeUInt32BE(s.indexLeafCount, SUMMARY.indexLeafCount);
  block.writeUInt32BE(s.indexRootBlk, SUMMARY.indexRootBlk);
  block.writeUInt32BE(s.indexBlkCount, SUMMARY.indexBlkCount);
  block[SUMMARY.indexHeight] = s.indexHeight;
  block[SUMMARY.indexKeySize] = s.keySize;
  block.writeBigUInt64BE(BigInt(s.entryCount), SUMMARY.entryCount);
  block.writeUInt32BE(s.totalBlocks, SUMMARY.totalBlocks);
  block[SUMMARY.recordFormat] = RECORD_FORMAT_VERSION;
  sealBlock(block);
}

/**
 * Decode block 0 and apply every rule of docs/FORMAT.md ("Summary block"). `fileBlocks` is the
 * file's actual length in blocks. Throws CORRUPT_LAYER naming the file.
 */
export function decodeSummary(path: string, block: Buffer, fileBlocks: number): SummaryFields {
  const bad = (what: string): StrataError => new StrataError('CORRUPT_LAYER', `${path}: block 0: summary ${what}`);
  if (!blockCrcOk(block)) throw bad('checksum mismatch');
  const magic = block.readUInt32BE(SUMMARY.magic);
  if (magic !== DELTA_MAGIC && magic !== IMAGE_MAGIC) throw bad(`bad magic 0x${magic.toString(16)}`);
  const version = block.readUInt16BE(SUMMARY.formatVersion);
  if (version !== LAYER_FORMAT_VERSION) throw bad(`unknown layer format version ${version}`);
  const kindByte = block[SUMMARY.layerKind];
  const kind: LayerKind = magic === DELTA_MAGIC ? 'delta' : 'image';
  const expectedKindByte = kind === 'delta' ? LAYER_KIND_DELTA : LAYER_KIND_IMAGE;
  if (kindByte !== expectedKindByte) throw bad(`layer kind ${kindByte} disagrees with the magic`);
  const codec = block[SUMMARY.codec];
  if (codec !== CODEC_NONE && codec !== CODEC_LZ4 && codec !== CODEC_ZSTD) throw bad(`unknown codec ${codec}`);
  const keySize = block[SUMMARY.indexKeySize];
  if (keySize !== indexKeySize(kind)) throw bad(`index key size ${keySize} for a ${kind} layer`);
  const keyStart = Buffer.from(block.subarray(SUMMARY.keyStart, SUMMARY.keyStart + KEY_SIZE));
  const keyEnd = Buffer.from(block.subarray(SUMMARY.keyEnd, SUMMARY.keyEnd + KEY_SIZE));
  if (Buffer.compare(keyStart, keyEnd) >= 0) throw bad('key range is empty');
  const lsnStart = block.readBigUInt64BE(SUMMARY.lsnStart);
  const lsnEnd = block.readBigUInt64BE(SUMMARY.lsnEnd);
  if (lsnStart >= lsnEnd) throw bad('LSN range is empty');
  if (kind === 'image' && lsnEnd !== lsnStart + 1n) throw bad('image LSN range is not [L, L+1)');
  if (block.readUInt32BE(SUMMARY.valueStartBlk) !== VALUE_START_BLK) throw bad('value_start_blk is not 1');
  const valueBytes = readSafeU64(block, SUMMARY.valueBytes, bad, 'value_bytes');
  const valueBlkCount = block.readUInt32BE(SUMMARY.valueBlkCount);
  if (valueBlkCount !== Math.ceil(valueBytes / BLOCK_PAYLOAD)) throw bad(`value_blk_count ${valueBlkCount} does not hold ${valueBytes} bytes`);
  const indexStartBlk = block.readUInt32BE(SUMMARY.indexStartBlk);
  if (indexStartBlk !== VALUE_START_BLK + valueBlkCount) throw bad(`index_start_blk ${indexStartBlk} is not 1 + value_blk_count`);
  if (block.readUInt16BE(SUMMARY.reserved) !== 0) throw bad('reserved field is not zero');
  const entryCount = readSafeU64(block, SUMMARY.entryCount, bad, 'entry_count');
  const fields = {
    kind, codec: codec as CodecId, keyStart, keyEnd, lsnStart, lsnEnd, entryCount, valueBytes, valueBlkCount, indexStartBlk, keySize,
    indexHeight: block[SUMMARY.indexHeight],
    indexLeafCount: block.readUInt32BE(SUMMARY.indexLeafCount),
    indexRootBlk: block.readUInt32BE(SUMMARY.indexRootBlk),
    indexBlkCount: block.readUInt32BE(SUMMARY.indexBlkCount),
    totalBlocks: block.readUInt32BE(SUMMARY.totalBlocks),
  };
  checkIndexShape(fields, bad);
  if (fields.totalBlocks !== fileBlocks) throw bad(`total_blocks ${fields.totalBlocks} but the file holds ${fileBlocks} blocks`);
  if (block[SUMMARY.recordFormat] < OLDEST_RECORD_FORMAT_VERSION || block[SUMMARY.recordFormat] > RECORD_FORMAT_VERSION) throw bad(`unknown record format version ${block[SUMMARY.recordFormat]}`);
  if (!zeroTail(block, SUMMARY.end)) throw bad('padding is not zero');
  return fields;
}

/** The index fields must be exactly what the builder produces for entry_count entries. */
function checkIndexShape(s: SummaryFields, bad: (what: string) => StrataError): void {
  // Cheap bound first, so a huge entry_count cannot make btreeShape loop over absurd sizes.
  if (s.entryCount > s.indexLeafCount * BLOCK_PAYLOAD) throw bad(`entry_count ${s.entryCount} does not fit ${s.indexLeafCount} leaves`);
  const shape = btreeShape(s.entryCount, s.keySize, s.indexStartBlk);
  if (s.indexLeafCount !== shape.nodesPerLevel[0]) throw bad(`index_leaf_count ${s.indexLeafCount}, expected ${shape.nodesPerLevel[0]}`);
  if (s.indexHeight !== shape.height) throw bad(`index_height ${s.indexHeight}, expected ${shape.height}`);
  if (s.indexBlkCount !== shape.blkCount) throw bad(`index_blk_count ${s.indexBlkCount}, expected ${shape.blkCount}`);
  if (s.indexRootBlk !== shape.rootBlk) throw bad(`index_root_blk ${s.indexRootBlk} is not the last index block ${shape.rootBlk}`);
  const total = VALUE_START_BLK + s.valueBlkCount + s.indexBlkCount;
  if (s.totalBlocks !== total) throw bad(`total_blocks ${s.totalBlocks}, expected ${total}`);
}

function readSafeU64(block: Buffer, off: number, bad: (what: string) => StrataError, name: string): number {
  const v = block.readBigUInt64BE(off);
  if (v > BigInt(MAX_SAFE_U64)) throw bad(`${name} ${v} is implausibly large`);
  return Number(v);
}

export function publicSummary(s: SummaryFields): LayerSummary {
  return {
    kind: s.kind, codec: s.codec, keyStart: Buffer.from(s.keyStart), keyEnd: Buffer.from(s.keyEnd),
    lsnStart: s.lsnStart, lsnEnd: s.lsnEnd, entryCount: s.entryCount, valueBytes: s.valueBytes,
    indexHeight: s.indexHeight, indexLeafCount: s.indexLeafCount, indexBlkCount: s.indexBlkCount, totalBlocks: s.totalBlocks,
  };
}

// ---------------------------------------------------------------------------------------------
// Open layers

/** An open layer file: its summary, block access and index. */
export class Layer {
  readonly handle: number;
  readonly path: string;
  readonly summary: SummaryFields;
  readonly isImage: boolean;
  readonly file: BlockFile;
  readonly btree: BtreeReader;
  closed = false;

  constructor(handle: number, path: string, summary: SummaryFields, file: BlockFile) {
    this.handle = handle;
    this.path = path;
    this.summary = summary;
    this.isImage = summary.kind === 'image';
    this.file = file;
    this.btree = new BtreeReader(file, summary.keySize, btreeShape(summary.entryCount, summary.keySize, summary.indexStartBlk));
  }

  close(): void {
    this.closed = true;
    this.file.close();
  }
}

/** Open and validate a layer file; the summary is read directly (it is parsed once and kept). */
export function openLayerFile(path: string, handle: number, cache: PageCache, handles?: FileHandles): Layer {
  let fd: number;
  try {
    fd = openLayerForReading(path);
  } catch (e) {
    throw new StrataError('IO_ERROR', `${path}: cannot open layer: ${(e as Error).message}`, { cause: e });
  }
  let file: BlockFile | undefined;
  try {
    const size = fs.fstatSync(fd).size;
    if (size % BLOCK_SIZE !== 0 || size === 0) {
      throw new StrataError('CORRUPT_LAYER', `${path}: file size ${size} is not a positive multiple of ${BLOCK_SIZE}`);
    }
    const block = Buffer.alloc(BLOCK_SIZE);
    let got: number;
    try {
      if (faults.active) injectFault('read', 'read'); // a block read, as in the native core's open
      got = fs.readSync(fd, block, 0, BLOCK_SIZE, SUMMARY_BLK * BLOCK_SIZE);
    } catch (e) {
      throw new StrataError('IO_ERROR', `${path}: block ${SUMMARY_BLK}: ${(e as Error).message}`, { cause: e });
    }
    if (got !== BLOCK_SIZE) throw new StrataError('CORRUPT_LAYER', `${path}: block 0: short read of ${got} bytes`);
    const summary = decodeSummary(path, block, size / BLOCK_SIZE);
    file = new BlockFile(path, fd, handle, summary.totalBlocks, cache, handles);
    return new Layer(handle, path, summary, file);
  } catch (e) {
    // Once the file holds the descriptor, closing the file closes (and unregisters) it.
    if (file !== undefined) file.close();
    else fs.closeSync(fd);
    throw e;
  }
}

/** Sorted distinct 18-byte keys of the layer in [keyStart, keyEnd), at most maxKeys, walking the contiguous leaves in order. */
export function layerKeys(layer: Layer, keyStart: Buffer, keyEnd: Buffer, maxKeys = MAX_KEYS_UNLIMITED): Buffer {
  const cur = KEYS_CURSOR;
  const out: Buffer[] = [];
  // Streaming asks for a page of keys per layer, most layers hold few in the range: start small.
  let buf = Buffer.allocUnsafe(FIRST_KEY_CHUNK_KEYS * KEY_SIZE);
  let n = 0;
  let total = 0;
  let prev: Buffer | null = null;
  // Index keys are the page key (images) or key ‖ LSN (deltas): search (keyStart, LSN 0) and step
  // to the first entry at or after it.
  const search = Buffer.alloc(layer.btree.keySize);
  keyStart.copy(search, 0, 0, KEY_SIZE);
  let ok = layer.btree.seekLE(search, 0, cur);
  if (ok && compareBytes(cur.node, cur.keyOff(), search, 0, layer.btree.keySize) < 0) ok = layer.btree.next(cur);
  else if (!ok) ok = layer.btree.first(cur);
  for (; ok; ok = layer.btree.next(cur)) {
    const off = cur.keyOff();
    if (compareBytes(cur.node, off, keyEnd, 0, KEY_SIZE) >= 0) break;
    if (prev !== null && compareBytes(prev, 0, cur.node, off, KEY_SIZE) === 0) continue;
    if (total === maxKeys) break;
    total++;
    if (n * KEY_SIZE === buf.length) {
      out.push(buf);
      buf = Buffer.allocUnsafe(KEY_CHUNK_KEYS * KEY_SIZE);
      n = 0;
    }
    prev = buf.subarray(n * KEY_SIZE, (n + 1) * KEY_SIZE);
    cur.node.copy(buf, n * KEY_SIZE, off, off + KEY_SIZE);
    n++;
  }
  out.push(buf.subarray(0, n * KEY_SIZE));
  return out.length === 1 ? out[0] : Buffer.concat(out);
}

/** layerKeys without a limit: the native core's default too (UINT32_MAX). */
export const MAX_KEYS_UNLIMITED = 0xffffffff;

/** Keys gathered per allocation by layerKeys (a range may hold few keys of a large layer). */
const KEY_CHUNK_KEYS = 4096;

/** layerKeys' first allocation, in keys: 1,152 bytes, served from Node's buffer pool. */
const FIRST_KEY_CHUNK_KEYS = 64;

/**
 * layerKeys runs synchronously from start to end, so one cursor serves every call: key streaming
 * calls it once per layer per page of keys, and a fresh cursor was an 8 KiB allocation each time.
 */
const KEYS_CURSOR = new BtreeCursor();

// ---------------------------------------------------------------------------------------------
// verifyLayer

/**
 * Read every block directly, check every CRC, the whole index (levels, counts, child pointers,
 * first keys, key order, padding), every blob (back to back from offset 0, decodes, well-formed
 * record, will_init bit agrees, entry inside the layer's ranges) and the value stream's zero tail.
 * Returns the entry count.
 */
export function verifyLayer(layer: Layer): number {
  const { file, summary: s } = layer;
  const block = Buffer.alloc(BLOCK_SIZE);
  for (let blk = 0; blk < s.totalBlocks; blk++) file.readBlockDirect(blk, block);
  file.readBlockDirect(SUMMARY_BLK, block);
  decodeSummary(layer.path, block, s.totalBlocks);
  checkValueTail(layer, block);
  const shape = layer.btree.shape;
  // expectedFirst[i]: the key the parent level says child node i starts with.
  let expectedFirst: Buffer | null = null;
  for (let level = shape.height - 1; level > 0; level--) {
    expectedFirst = verifyInternalLevel(layer, shape, level, expectedFirst, block);
  }
  return verifyLeaves(layer, shape, expectedFirst, block);
}

function checkValueTail(layer: Layer, block: Buffer): void {
  const s = layer.summary;
  const used = s.valueBytes % BLOCK_PAYLOAD;
  if (s.valueBlkCount === 0 || used === 0) return;
  const lastBlk = VALUE_START_BLK + s.valueBlkCount - 1;
  layer.file.readBlockDirect(lastBlk, block);
  if (!zeroTail(block, used)) throw layer.file.corrupt(lastBlk, 'value stream tail is not zero');
}

function verifyInternalLevel(layer: Layer, shape: BtreeShape, level: number, expectedFirst: Buffer | null, block: Buffer): Buffer {
  const k = layer.summary.keySize;
  const file = layer.file;
  const childFirst = Buffer.alloc(shape.nodesPerLevel[level - 1] * k);
  for (let pos = 0; pos < shape.nodesPerLevel[level]; pos++) {
    const blk = shape.levelStartBlk[level] + pos;
    file.readBlockDirect(blk, block);
    const count = checkNodeHeader(file, shape, blk, level, block);
    checkNodeBody(layer, blk, block, count, pos, expectedFirst);
    const valuesOff = BTREE_NODE_HEADER + count * k;
    for (let i = 0; i < count; i++) {
      const child = readU64(block, valuesOff + i * BTREE_VALUE_SIZE);
      const childPos = pos * shape.fanout + i;
      const expected = shape.levelStartBlk[level - 1] + childPos;
      if (child !== expected) throw file.corrupt(blk, `index child ${i} points to block ${child}, expected ${expected}`);
      block.copy(childFirst, childPos * k, BTREE_NODE_HEADER + i * k, BTREE_NODE_HEADER + (i + 1) * k);
    }
  }
  return childFirst;
}

/** Keys strictly increasing, first key as the parent says, zero padding. */
function checkNodeBody(layer: Layer, blk: number, node: Buffer, count: number, pos: number, expectedFirst: Buffer | null): void {
  const k = layer.summary.keySize;
  for (let i = 1; i < count; i++) {
    if (compareBytes(node, BTREE_NODE_HEADER + (i - 1) * k, node, BTREE_NODE_HEADER + i * k, k) >= 0) {
      throw layer.file.corrupt(blk, `index keys ${i - 1} and ${i} are out of order`);
    }
  }
  if (expectedFirst !== null && compareBytes(node, BTREE_NODE_HEADER, expectedFirst, pos * k, k) !== 0) {
    throw layer.file.corrupt(blk, 'first key differs from the parent entry');
  }
  if (!zeroTail(node, nodeUsedBytes(count, k))) throw layer.file.corrupt(blk, 'index node padding is not zero');
}

function verifyLeaves(layer: Layer, shape: BtreeShape, expectedFirst: Buffer | null, block: Buffer): number {
  const s = layer.summary;
  const k = s.keySize;
  const file = layer.file;
  const prevKey = Buffer.alloc(k);
  const arena = new RecordArena(MAX_RECORD_SIZE);
  const slot = new RecordSlot();
  let offset = 0;
  let entries = 0;
  for (let pos = 0; pos < shape.nodesPerLevel[0]; pos++) {
    const blk = shape.levelStartBlk[0] + pos;
    file.readBlockDirect(blk, block);
    const count = checkNodeHeader(file, shape, blk, 0, block);
    checkNodeBody(layer, blk, block, count, pos, expectedFirst);
    const valuesOff = BTREE_NODE_HEADER + count * k;
    for (let i = 0; i < count; i++) {
      const keyOff = BTREE_NODE_HEADER + i * k;
      if (entries > 0 && compareBytes(prevKey, 0, block, keyOff, k) >= 0) throw file.corrupt(blk, `index key ${i} is not above the previous leaf's last key`);
      block.copy(prevKey, 0, keyOff, keyOff + k);
      checkEntryInRanges(layer, blk, block, keyOff);
      const value = readU64(block, valuesOff + i * BTREE_VALUE_SIZE);
      const valueOffset = Math.floor(value / 2);
      const willInit = value % 2 === 1;
      if (valueOffset !== offset) throw file.corrupt(blk, `entry ${i} value offset ${valueOffset}, expected ${offset} (values are back to back)`);
      arena.reset();
      file.readBlob(valueOffset, s.valueBytes, arena, slot, true);
      checkRecord(layer, blk, slot, willInit, valueOffset);
      offset += slot.blobLen;
      entries++;
    }
  }
  if (offset !== s.valueBytes) throw file.corrupt(VALUE_START_BLK, `blobs cover ${offset} bytes of a ${s.valueBytes}-byte value stream`);
  if (entries !== s.entryCount) throw file.corrupt(SUMMARY_BLK, `index holds ${entries} entries, summary says ${s.entryCount}`);
  return entries;
}

/** An entry's page key must lie in [key_start, key_end) and a delta entry's LSN in [lsn_start, lsn_end). */
function checkEntryInRanges(layer: Layer, blk: number, node: Buffer, keyOff: number): void {
  const s = layer.summary;
  if (compareBytes(node, keyOff, s.keyStart, 0, KEY_SIZE) < 0 || compareBytes(node, keyOff, s.keyEnd, 0, KEY_SIZE) >= 0) {
    throw layer.file.corrupt(blk, 'index key outside the layer key range');
  }
  if (layer.isImage) return;
  const lsn = node.readBigUInt64BE(keyOff + KEY_SIZE);
  if (lsn < s.lsnStart || lsn >= s.lsnEnd) throw layer.file.corrupt(blk, `entry LSN ${lsn} outside the layer LSN range`);
}

/** The decoded record must be well formed and agree with the index's will_init bit. */
export function checkRecord(layer: Layer, blk: number, slot: RecordSlot, willInitBit: boolean, valueOffset: number): void {
  const rec = slot.buf.subarray(slot.off, slot.off + slot.len);
  const err = validateRecord(rec);
  if (err !== null) throw layer.file.corrupt(blk, `record at value offset ${valueOffset}: ${err}`);
  if (recordWillInit(rec) !== willInitBit) throw layer.file.corrupt(blk, `record at value offset ${valueOffset}: will_init bit disagrees with the record`);
  if (layer.isImage && !willInitBit) throw layer.file.corrupt(blk, `image layer entry at value offset ${valueOffset} is not will_init`);
}

// ---------------------------------------------------------------------------------------------
// Writer

/**
 * Streams one layer file. Values go to disk as their blocks fill; index keys and values stay in
 * memory (≈ 34 bytes per entry) until finish() builds the B-tree behind the values and writes the
 * summary at block 0.
 */
export class StreamingLayerWriter implements LayerWriter {
  private readonly path: string;
  private readonly opts: LayerWriterOptions;
  private readonly keySize: number;
  private fd: number;
  private done = false;
  /** finishAsync's fsync is in flight: abort must not close the descriptor under it. */
  private finishing = false;
  /** Blocks waiting to be written, starting at block `batchStartBlk`. */
  // Every block is copied in whole before the batch is written: no need to zero 512 KiB per layer.
  private readonly batch = Buffer.allocUnsafe(WRITE_BATCH_BLOCKS * BLOCK_SIZE);
  private batchStartBlk = VALUE_START_BLK;
  private batchBlocks = 0;
  /** The value block being filled (payload bytes used in `valueFill`). */
  private readonly valueBlock = Buffer.alloc(BLOCK_SIZE);
  private valueFill = 0;
  private valueBytes = 0;
  private keys = Buffer.alloc(INITIAL_INDEX_CAPACITY * DELTA_INDEX_KEY_SIZE);
  private values = new Float64Array(INITIAL_INDEX_CAPACITY);
  private count = 0;

  constructor(path: string, opts: LayerWriterOptions) {
    checkWriterOptions(opts);
    this.path = path;
    this.opts = { ...opts, keyStart: Buffer.from(opts.keyStart), keyEnd: Buffer.from(opts.keyEnd) };
    this.keySize = indexKeySize(opts.kind);
    try {
      this.fd = fs.openSync(path, 'w', 0o644);
    } catch (e) {
      throw new StrataError('IO_ERROR', `${path}: cannot create layer: ${(e as Error).message}`, { cause: e });
    }
  }

  append(indexKeys: Buffer, blobs: Buffer, willInit: Uint8Array): void {
    this.checkOpen();
    if (!(indexKeys instanceof Uint8Array) || !(blobs instanceof Uint8Array) || !(willInit instanceof Uint8Array)) {
      throw this.badArg('append takes (Buffer indexKeys, Buffer blobs, Uint8Array willInit)');
    }
    const keyBuf = asBuffer(indexKeys);
    const blobBuf = asBuffer(blobs);
    const n = willInit.length;
    if (keyBuf.length !== n * this.keySize) throw this.badArg(`${keyBuf.length} bytes of index keys for ${n} entries of ${this.keySize} bytes`);
    // Validate the whole batch before writing anything, so a rejected append changes nothing.
    this.checkKeys(keyBuf, n, willInit);
    const blobLens = this.checkBlobs(blobBuf, n);
    this.ensureIndexCapacity(this.count + n);
    keyBuf.copy(this.keys, this.count * this.keySize);
    let blobOff = 0;
    for (let i = 0; i < n; i++) {
      this.values[this.count++] = this.valueBytes * 2 + willInit[i];
      this.writeValue(blobBuf, blobOff, blobLens[i]);
      blobOff += blobLens[i];
    }
  }

  /** The TS core appends on the calling thread (its writes are synchronous); the promise reports the outcome. */
  appendAsync(indexKeys: Buffer, blobs: Buffer, willInit: Uint8Array): Promise<void> {
    try {
      this.append(indexKeys, blobs, willInit);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  finish(): number {
    this.checkOpen();
    this.done = true;
    try {
      const tail = this.writeTail();
      let r = tail.next();
      while (r.done !== true) r = tail.next();
      fsyncFile(this.fd, this.path, 'layer_fsync');
      return r.value;
    } finally {
      this.closeFd();
    }
  }

  /**
   * The index is built and written on the event loop, yielding every few index nodes (a
   * 44,000-entry index held the loop ≈ 25 ms in one piece on a loaded VM); the fsync runs on the
   * libuv pool.
   */
  async finishAsync(): Promise<number> {
    this.checkOpen();
    this.done = true;
    this.finishing = true;
    try {
      const tail = this.writeTail();
      let r = tail.next();
      while (r.done !== true) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        r = tail.next();
      }
      await fsyncFileAsync(this.fd, this.path, 'layer_fsync');
      return r.value;
    } finally {
      this.finishing = false;
      this.closeFd();
    }
  }

  /** The arena's entries appended on the event loop, yielding between batches, then finishAsync. */
  async finishArenaAsync(arena: DeltaArena, onAppended?: () => void): Promise<number> {
    this.checkOpen();
    if (this.opts.kind !== 'delta') throw this.badArg('finishArenaAsync writes delta layers only');
    await appendArena(this, arena, this.opts.codec);
    onAppended?.();
    return this.finishAsync();
  }

  abort(): void {
    if (this.finishing) throw this.badArg('layer writer is finishing (finishAsync in flight)');
    this.done = true;
    this.closeFd();
  }

  /** Write index and summary (not yet fsynced), pausing between index steps; returns the file size. */
  private *writeTail(): Generator<void, number, void> {
    if (this.valueFill > 0) this.sealValueBlock();
    const valueBlkCount = this.batchStartBlk + this.batchBlocks - VALUE_START_BLK;
    const indexStartBlk = VALUE_START_BLK + valueBlkCount;
    const shape = yield* buildBtreeSteps(this.keys, this.values, this.count, this.keySize, indexStartBlk, (b) => this.queueBlock(b));
    this.flushBatch();
    const summary: SummaryFields = {
      kind: this.opts.kind, codec: this.opts.codec, keyStart: this.opts.keyStart, keyEnd: this.opts.keyEnd,
      lsnStart: this.opts.lsnStart, lsnEnd: this.opts.lsnEnd, entryCount: this.count, valueBytes: this.valueBytes,
      valueBlkCount, indexStartBlk, indexLeafCount: shape.nodesPerLevel[0], indexRootBlk: shape.rootBlk,
      indexBlkCount: shape.blkCount, indexHeight: shape.height, keySize: this.keySize,
      totalBlocks: VALUE_START_BLK + valueBlkCount + shape.blkCount,
    };
    const block = Buffer.alloc(BLOCK_SIZE);
    encodeSummary(summary, block);
    this.writeAt(block, BLOCK_SIZE, SUMMARY_BLK);
    return summary.totalBlocks * BLOCK_SIZE;
  }

  /** Keys strictly increasing (across calls too), inside the layer's ranges; will_init bytes 0/1. */
  private checkKeys(keys: Buffer, n: number, willInit: Uint8Array): void {
    const k = this.keySize;
    for (let i = 0; i < n; i++) {
      const off = i * k;
      const prevBuf = i === 0 ? this.keys : keys;
      const prevOff = i === 0 ? (this.count - 1) * k : off - k;
      if ((i > 0 || this.count > 0) && compareBytes(prevBuf, prevOff, keys, off, k) >= 0) {
        throw this.badArg(`index key ${i} is not above the previous key (keys must be strictly increasing)`);
      }
      if (compareBytes(keys, off, this.opts.keyStart, 0, KEY_SIZE) < 0 || compareBytes(keys, off, this.opts.keyEnd, 0, KEY_SIZE) >= 0) {
        throw this.badArg(`index key ${i} is outside the layer key range`);
      }
      if (this.opts.kind === 'delta') {
        const lsn = keys.readBigUInt64BE(off + KEY_SIZE);
        if (lsn < this.opts.lsnStart || lsn >= this.opts.lsnEnd) throw this.badArg(`entry ${i} LSN ${lsn} is outside the layer LSN range`);
      }
      const w = willInit[i];
      if (w > 1) throw this.badArg(`willInit[${i}] is ${w}, not 0 or 1`);
      if (this.opts.kind === 'image' && w !== 1) throw this.badArg(`image layer entry ${i} must be will_init`);
    }
  }

  /** Parse the n blob headers; they must exactly fill `blobs`. Returns each blob's total length. */
  private checkBlobs(blobs: Buffer, n: number): number[] {
    const lens: number[] = new Array<number>(n);
    let off = 0;
    for (let i = 0; i < n; i++) {
      if (off + BLOB_HEADER_SIZE > blobs.length) throw this.badArg(`blob ${i} header runs past the blobs buffer`);
      const { codec, storedLen } = blobHeader(blobs.readUInt32BE(off));
      let headerLen = BLOB_HEADER_SIZE;
      let rawLen = storedLen;
      if (codec === CODEC_LZ4 || codec === CODEC_ZSTD) {
        headerLen += BLOB_RAW_LEN_SIZE;
        if (off + headerLen > blobs.length) throw this.badArg(`blob ${i} raw length runs past the blobs buffer`);
        rawLen = blobs.readUInt32BE(off + BLOB_HEADER_SIZE);
      } else if (codec !== CODEC_NONE) {
        throw this.badArg(`blob ${i} has unknown codec ${codec}`);
      }
      if (rawLen > MAX_RECORD_SIZE) throw this.badArg(`blob ${i} record length ${rawLen} exceeds the largest record (${MAX_RECORD_SIZE})`);
      lens[i] = headerLen + storedLen;
      off += lens[i];
      if (off > blobs.length) throw this.badArg(`blob ${i} runs past the blobs buffer`);
    }
    if (off !== blobs.length) throw this.badArg(`${blobs.length - off} bytes left after ${n} blobs`);
    return lens;
  }

  private ensureIndexCapacity(entries: number): void {
    if (entries <= this.values.length) return;
    let cap = this.values.length;
    while (cap < entries) cap *= 2;
    const values = new Float64Array(cap);
    values.set(this.values.subarray(0, this.count));
    this.values = values;
    const keys = Buffer.alloc(cap * this.keySize);
    this.keys.copy(keys, 0, 0, this.count * this.keySize);
    this.keys = keys;
  }

  /** Append bytes to the value stream, sealing each block as it fills. */
  private writeValue(src: Buffer, off: number, len: number): void {
    this.valueBytes += len;
    while (len > 0) {
      const n = Math.min(len, BLOCK_PAYLOAD - this.valueFill);
      src.copy(this.valueBlock, this.valueFill, off, off + n);
      this.valueFill += n;
      off += n;
      len -= n;
      if (this.valueFill === BLOCK_PAYLOAD) this.sealValueBlock();
    }
  }

  private sealValueBlock(): void {
    this.valueBlock.fill(0, this.valueFill, BLOCK_PAYLOAD);
    this.queueBlock(this.valueBlock);
    this.valueFill = 0;
  }

  /** Seal a block (CRC) into the write batch; blocks are written in order. */
  private queueBlock(block: Buffer): void {
    const at = this.batchBlocks * BLOCK_SIZE;
    block.copy(this.batch, at, 0, BLOCK_SIZE);
    sealBlock(this.batch.subarray(at, at + BLOCK_SIZE));
    this.batchBlocks++;
    if (this.batchBlocks === WRITE_BATCH_BLOCKS) this.flushBatch();
  }

  private flushBatch(): void {
    if (this.batchBlocks === 0) return;
    this.writeAt(this.batch, this.batchBlocks * BLOCK_SIZE, this.batchStartBlk);
    this.batchStartBlk += this.batchBlocks;
    this.batchBlocks = 0;
  }

  private writeAt(buf: Buffer, len: number, blk: number): void {
    writeAll(this.fd, this.path, buf, len, blk * BLOCK_SIZE, 'layer_write');
  }

  private closeFd(): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    fs.closeSync(fd);
  }

  private checkOpen(): void {
    if (this.done) throw this.badArg('layer writer already finished or aborted');
  }

  private badArg(what: string): StrataError {
    return new StrataError('BAD_ARGUMENT', `${this.path}: ${what}`);
  }
}

function checkWriterOptions(opts: LayerWriterOptions): void {
  const bad = (what: string): StrataError => new StrataError('BAD_ARGUMENT', `layer writer options: ${what}`);
  if (opts === null || typeof opts !== 'object') throw bad('must be an object');
  if (opts.kind !== 'delta' && opts.kind !== 'image') throw bad(`kind must be 'delta' or 'image': got ${String(opts.kind)}`);
  if (opts.codec !== CODEC_NONE && opts.codec !== CODEC_LZ4 && opts.codec !== CODEC_ZSTD) throw bad(`unknown codec ${String(opts.codec)}`);
  for (const name of ['keyStart', 'keyEnd'] as const) {
    const k = opts[name];
    if (!(k instanceof Uint8Array) || k.length !== KEY_SIZE) throw bad(`${name} must be a ${KEY_SIZE}-byte Buffer`);
  }
  if (Buffer.compare(asBuffer(opts.keyStart), asBuffer(opts.keyEnd)) >= 0) throw bad('keyStart must be below keyEnd');
  for (const name of ['lsnStart', 'lsnEnd'] as const) {
    const v = opts[name];
    if (typeof v !== 'bigint' || v < 0n || v > LSN_MAX) throw bad(`${name} must be a u64 bigint`);
  }
  if (opts.lsnStart >= opts.lsnEnd) throw bad('lsnStart must be below lsnEnd');
  if (opts.kind === 'image' && opts.lsnEnd !== opts.lsnStart + 1n) throw bad('an image layer at LSN L has lsnEnd = L + 1');
}

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.length);
}
