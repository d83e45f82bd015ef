/**
 * One open layer file seen as a sequence of checksummed 8 KB blocks (docs/FORMAT.md, "Blocks"),
 * plus reading one blob out of the logical value stream, which may span blocks.
 *
 * Every read is bounds-checked against what the summary promised; nothing read from disk is used
 * as a length or offset before it is checked.
 */
import * as fs from 'node:fs';
import { crc32 } from 'node:zlib';
import { decompress } from './codec';
import { StrataError } from '../../errors';
import { faults, injectFault } from '../../fault_injection';
import {
  BLOB_CODEC_SHIFT, BLOB_HEADER_SIZE, BLOB_LEN_MASK, BLOB_RAW_LEN_SIZE, BLOCK_PAYLOAD, BLOCK_SIZE, CODEC_LZ4, CODEC_NONE, CODEC_ZSTD,
} from '../format';
import type { PageCache } from './page_cache';
import { type FileHandles, unboundedFileHandles } from './file_handles';
import { MAX_RECORD_SIZE } from '../../record';
import { copyBytes } from '../../bytes';

/** The value stream starts right after the summary block. */
export const VALUE_START_BLK = 1;

/** Compute the CRC of a block's payload and store it in its last 4 bytes. */
export function sealBlock(block: Buffer): void {
  block.writeUInt32BE(crc32(block.subarray(0, BLOCK_PAYLOAD)), BLOCK_PAYLOAD);
}

/** Whether a block's stored CRC matches its payload. */
export function blockCrcOk(block: Uint8Array): boolean {
  const stored = ((block[BLOCK_PAYLOAD] << 24) | (block[BLOCK_PAYLOAD + 1] << 16) |
    (block[BLOCK_PAYLOAD + 2] << 8) | block[BLOCK_PAYLOAD + 3]) >>> 0;
  return crc32(block.subarray(0, BLOCK_PAYLOAD)) === stored;
}

/**
 * Bump allocator for raw records read from layers during one reconstruction: records are copied
 * here instead of getting a Buffer each. When full it moves to a bigger buffer; records already
 * handed out keep referencing the old one, so nothing is invalidated.
 */
export class RecordArena {
  private buf: Buffer;
  private used = 0;

  constructor(initialBytes: number) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  /** Forget every record; the buffer is reused by the next reconstruction. */
  reset(): void {
    this.used = 0;
  }

  /** Reserve `len` bytes; the caller writes them at `slot.buf[slot.off..]`. */
  reserve(len: number, slot: RecordSlot): void {
    if (this.used + len > this.buf.length) {
      this.buf = Buffer.allocUnsafe(Math.max(this.buf.length * 2, len));
      this.used = 0;
    }
    slot.buf = this.buf;
    slot.off = this.used;
    slot.len = len;
    this.used += len;
  }
}

/** Where one serialized record lives: `buf[off, off + len)`; `blobLen` is its size in the stream. */
export class RecordSlot {
  buf: Buffer = EMPTY;
  off = 0;
  len = 0;
  blobLen = 0;
}

const EMPTY = Buffer.alloc(0);

/**
 * Thrown by a block read while cache-only reads are on, at a block the cache does not hold
 * (the twin of native/block_io.h's CacheMiss). Never leaves the read path: see withCacheOnlyReads.
 */
class CacheMiss {}

/** JS runs one read at a time, so a module flag can scope "cache only" to one synchronous read. */
let cacheOnlyReads = false;

/**
 * Run `read` with every cached-mode block read restricted to the page cache; false when it
 * stopped at a block that is not cached (its outputs are then unspecified). Cache counters move
 * exactly as in the native core's TryGetPagesCached: hits as usual, the stopping block uncounted.
 */
export function withCacheOnlyReads(read: () => void): boolean {
  cacheOnlyReads = true;
  try {
    read();
    return true;
  } catch (e) {
    if (e instanceof CacheMiss) return false;
    throw e;
  } finally {
    cacheOnlyReads = false;
  }
}

export class BlockFile {
  readonly path: string;
  readonly fileId: number;
  /** Blocks the file holds; reads beyond are corruption, not I/O. */
  readonly totalBlocks: number;
  private readonly handles: FileHandles;
  private closed = false;
  private readonly cache: PageCache;
  /** The block a blob read is currently consuming (reused; see readBlob). */
  private readonly valueBlock = Buffer.alloc(BLOCK_SIZE);
  private readonly headerScratch = Buffer.alloc(BLOB_HEADER_SIZE + BLOB_RAW_LEN_SIZE);
  private readonly stream: ValueCursor;

  /**
   * Takes ownership of `fd`, which joins `handles` (the core's bounded set of open layer files;
   * by default a set of its own without a limit) and may be closed and reopened between reads.
   */
  constructor(path: string, fd: number, fileId: number, totalBlocks: number, cache: PageCache, handles: FileHandles = unboundedFileHandles()) {
    this.path = path;
    this.handles = handles;
    handles.adopt(fileId, path, fd);
    this.fileId = fileId;
    this.totalBlocks = totalBlocks;
    this.cache = cache;
    this.stream = new ValueCursor(this, this.valueBlock);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.handles.forget(this.fileId);
  }

  corrupt(blkno: number, what: string): StrataError {
    return new StrataError('CORRUPT_LAYER', `${this.path}: block ${blkno}: ${what}`);
  }

  /** Read a block through the page cache into `into` (≥ BLOCK_SIZE bytes); CRC-checked on a miss. */
  readBlock(blkno: number, into: Buffer): void {
    if (cacheOnlyReads) {
      if (this.cache.contains(this.fileId, blkno) && this.cache.lookupUnchecked(this.fileId, blkno, into)) return;
      throw new CacheMiss();
    }
    if (this.cache.lookupUnchecked(this.fileId, blkno, into)) return;
    this.readBlockDirect(blkno, into);
    this.cache.insertUnchecked(this.fileId, blkno, into);
  }

  /** Read a block from disk, bypassing the cache, and check its CRC. */
  readBlockDirect(blkno: number, into: Buffer): void {
    if (blkno >= this.totalBlocks) throw this.corrupt(blkno, `beyond the end of the file (${this.totalBlocks} blocks)`);
    if (this.closed) throw new StrataError('BAD_ARGUMENT', `${this.path}: layer is closed`);
    let fd: number;
    try {
      fd = this.handles.acquire(this.fileId);
    } catch (e) {
      throw new StrataError('IO_ERROR', `${this.path}: cannot reopen layer file: ${(e as Error).message}`, { cause: e });
    }
    let got: number;
    try {
      if (faults.active) injectFault('read', 'read');
      got = fs.readSync(fd, into, 0, BLOCK_SIZE, blkno * BLOCK_SIZE);
    } catch (e) {
      throw new StrataError('IO_ERROR', `${this.path}: block ${blkno}: ${(e as Error).message}`, { cause: e });
    }
    if (got !== BLOCK_SIZE) throw this.corrupt(blkno, `short read of ${got} bytes`);
    if (!blockCrcOk(into)) throw this.corrupt(blkno, 'checksum mismatch');
  }

  /**
   * Decode the blob at logical value offset `offset` of a stream of `valueBytes` bytes into `slot`
   * (raw records are copied into `arena`, compressed ones land in the decompressor's buffer).
   * Each value block the blob touches is read once, in order, through the cache unless `direct`
   * (verifyLayer bypasses the cache). The record itself is not checked here.
   */
  readBlob(offset: number, valueBytes: number, arena: RecordArena, slot: RecordSlot, direct = false): void {
    const stream = this.stream;
    stream.reset(offset, valueBytes, direct);
    stream.copy(this.headerScratch, 0, BLOB_HEADER_SIZE);
    // Decoded inline (not codec.ts blobHeader) to avoid an object per blob on the read path.
    const word = this.headerScratch.readUInt32BE(0);
    const codec = word >>> BLOB_CODEC_SHIFT;
    const storedLen = word & BLOB_LEN_MASK;
    if (codec === CODEC_NONE) {
      if (storedLen === 0 || storedLen > MAX_RECORD_SIZE) throw stream.corruptAt(offset, `raw length ${storedLen}`);
      arena.reserve(storedLen, slot);
      stream.copy(slot.buf, slot.off, storedLen);
      slot.blobLen = BLOB_HEADER_SIZE + storedLen;
      return;
    }
    if (codec !== CODEC_LZ4 && codec !== CODEC_ZSTD) throw stream.corruptAt(offset, `unknown codec ${codec}`);
    stream.copy(this.headerScratch, BLOB_HEADER_SIZE, BLOB_RAW_LEN_SIZE);
    const rawLen = this.headerScratch.readUInt32BE(BLOB_HEADER_SIZE);
    if (rawLen === 0 || rawLen > MAX_RECORD_SIZE) throw stream.corruptAt(offset, `raw length ${rawLen}`);
    // Check the length against the stream before allocating: a crafted header could ask for 256 MB.
    stream.need(storedLen);
    const stored = Buffer.allocUnsafe(storedLen);
    stream.copy(stored, 0, storedLen);
    let raw: Buffer;
    try {
      raw = decompress(codec, stored, rawLen);
    } catch (e) {
      throw new StrataError('CORRUPT_LAYER', `${this.path}: blob at value offset ${offset}: ${(e as Error).message}`, { cause: e });
    }
    slot.buf = raw;
    slot.off = 0;
    slot.len = rawLen;
    slot.blobLen = BLOB_HEADER_SIZE + BLOB_RAW_LEN_SIZE + storedLen;
  }

  /**
   * The blob at `offset` exactly as stored (header included, still compressed), for compaction,
   * which moves values between layers without decoding them. Blocks are read directly (each is
   * CRC-checked); a merge reads every block once, so caching them would only evict hot ones.
   */
  readEncodedBlob(offset: number, valueBytes: number): Buffer {
    const stream = this.stream;
    stream.reset(offset, valueBytes, true);
    stream.copy(this.headerScratch, 0, BLOB_HEADER_SIZE);
    const word = this.headerScratch.readUInt32BE(0);
    const codec = word >>> BLOB_CODEC_SHIFT;
    const storedLen = word & BLOB_LEN_MASK;
    if (codec !== CODEC_NONE && codec !== CODEC_LZ4 && codec !== CODEC_ZSTD) throw stream.corruptAt(offset, `unknown codec ${codec}`);
    const headerLen = codec === CODEC_NONE ? BLOB_HEADER_SIZE : BLOB_HEADER_SIZE + BLOB_RAW_LEN_SIZE;
    // A stored blob is never larger than its record plus the lz4/zstd worst-case expansion.
    if (storedLen === 0 || storedLen > MAX_RECORD_SIZE + MAX_RECORD_SIZE / 8) throw stream.corruptAt(offset, `stored length ${storedLen}`);
    stream.need(headerLen - BLOB_HEADER_SIZE + storedLen);
    const blob = Buffer.allocUnsafe(headerLen + storedLen);
    this.headerScratch.copy(blob, 0, 0, BLOB_HEADER_SIZE);
    stream.copy(blob, BLOB_HEADER_SIZE, headerLen - BLOB_HEADER_SIZE + storedLen);
    return blob;
  }
}

/**
 * Sequential reader over the logical value stream. Holds one block at a time; moving past its
 * payload loads the next block, so a blob read touches each of its blocks exactly once.
 */
class ValueCursor {
  private pos = 0;
  private valueBytes = 0;
  private loadedBlk = -1;
  private direct = false;

  constructor(private readonly file: BlockFile, private readonly block: Buffer) {}

  /** Start a new blob; the block loaded for the previous one is not reused (one lookup per blob). */
  reset(start: number, valueBytes: number, direct: boolean): void {
    this.pos = start;
    this.valueBytes = valueBytes;
    this.loadedBlk = -1;
    this.direct = direct;
  }

  corruptAt(blobOffset: number, what: string): StrataError {
    return this.file.corrupt(blockOfOffset(blobOffset), `blob at value offset ${blobOffset}: ${what}`);
  }

  /** Throw CORRUPT_LAYER unless `len` more bytes remain in the value stream. */
  need(len: number): void {
    if (this.pos + len > this.valueBytes) {
      throw this.file.corrupt(blockOfOffset(this.pos), `value of ${len} bytes at stream offset ${this.pos} runs past the value stream (${this.valueBytes} bytes)`);
    }
  }

  /** Copy the next `len` stream bytes into `dst[dstOff..]`; running past value_bytes is corruption. */
  copy(dst: Buffer, dstOff: number, len: number): void {
    this.need(len);
    while (len > 0) {
      const blk = blockOfOffset(this.pos);
      if (blk !== this.loadedBlk) {
        if (this.direct) this.file.readBlockDirect(blk, this.block);
        else this.file.readBlock(blk, this.block);
        this.loadedBlk = blk;
      }
      const inBlock = this.pos % BLOCK_PAYLOAD;
      const n = Math.min(len, BLOCK_PAYLOAD - inBlock);
      copyBytes(this.block, inBlock, dst, dstOff, n);
      this.pos += n;
      dstOff += n;
      len -= n;
    }
  }
}

/** The block holding logical value-stream offset `offset`. */
export function blockOfOffset(offset: number): number {
  return VALUE_START_BLK + Math.floor(offset / BLOCK_PAYLOAD);
}
