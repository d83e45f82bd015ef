/**
 * Value compression, the writer side. It lives here only, shared by both cores, so the compressed
 * bytes of a layer are identical whichever core writes the file (lz4-napi is lz4_flex, which
 * liblz4 cannot reproduce byte for byte). Decompression is per core: native/codec.cc and its TS
 * twin lib/core/ts/codec.ts. Blob layout: docs/FORMAT.md, "Blobs".
 */
import { StrataError } from '../errors';
import {
  BLOB_CODEC_SHIFT, BLOB_HEADER_SIZE, BLOB_RAW_LEN_SIZE, CODEC_LZ4, CODEC_NONE, CODEC_ZSTD,
  COMPRESS_MIN_BYTES, ZSTD_LEVEL, type CodecId,
} from './format';

export interface Lz4Module {
  compressSync(data: Buffer): Buffer;
  uncompressSync(data: Buffer): Buffer;
  /** The same bytes as compressSync, made on the libuv thread pool. */
  compress(data: Uint8Array): Promise<Buffer>;
}
export interface ZstdModule {
  compress(data: Uint8Array, params?: { compressionLevel?: number }): Buffer;
  decompress(data: Uint8Array): Buffer;
}

let lz4: Lz4Module | Error | undefined;
let zstd: ZstdModule | Error | undefined;

export function loadLz4(): Lz4Module {
  if (lz4 === undefined) {
    try { lz4 = require('lz4-napi') as Lz4Module; } catch (e) { lz4 = e as Error; }
  }
  if (lz4 instanceof Error) throw new StrataError('BAD_ARGUMENT', `lz4 codec unavailable: ${lz4.message}`, { cause: lz4 });
  return lz4;
}

export function loadZstd(): ZstdModule {
  if (zstd === undefined) {
    try { zstd = require('zstd-napi') as ZstdModule; } catch (e) { zstd = e as Error; }
  }
  if (zstd instanceof Error) throw new StrataError('BAD_ARGUMENT', `zstd codec unavailable: ${zstd.message}`, { cause: zstd });
  return zstd;
}

/** Whether the codec's npm package loads here (zstd-napi needs a compiler at install time). */
export function codecAvailable(codec: CodecId): boolean {
  try {
    if (codec === CODEC_LZ4) loadLz4();
    if (codec === CODEC_ZSTD) loadZstd();
    return true;
  } catch {
    return false;
  }
}

function compressWith(codec: CodecId, raw: Buffer): Buffer {
  return codec === CODEC_LZ4 ? loadLz4().compressSync(raw) : loadZstd().compress(raw, { compressionLevel: ZSTD_LEVEL });
}

/**
 * Encode one serialized record as a blob: compressed with `codec` when that saves bytes,
 * raw otherwise. The result carries its own header (docs/FORMAT.md, "Blobs").
 */
export function encodeBlob(codec: CodecId, raw: Buffer): Buffer {
  const out = Buffer.allocUnsafe(maxBlobSize(raw.length));
  return out.subarray(0, encodeBlobInto(codec, raw, 0, raw.length, out, 0));
}

/** The most bytes a blob of a `rawLength`-byte record takes: compressed only when smaller. */
export function maxBlobSize(rawLength: number): number {
  return BLOB_HEADER_SIZE + rawLength;
}

/**
 * encodeBlob of src[start, end), written at out[off…] (room for maxBlobSize of it), so a flush
 * writes blobs from the in-memory layer's arena straight into the writer's batch. Returns the
 * blob's length.
 */
export function encodeBlobInto(codec: CodecId, src: Buffer, start: number, end: number, out: Buffer, off: number): number {
  const len = end - start;
  const packed = codec !== CODEC_NONE && len >= COMPRESS_MIN_BYTES ? compressWith(codec, src.subarray(start, end)) : null;
  return writeBlob(codec, src, start, end, packed, out, off);
}

/**
 * Records at least this long are compressed on the libuv thread pool by compressLater. Below it
 * the dispatch and completion cost the JS thread about what lz4 itself would (≈ 1–2 µs).
 */
export const ASYNC_COMPRESS_MIN_BYTES = 2048;

/**
 * Whether a `length`-byte record is compressed off the event loop (compressLater). zstd-napi has
 * no asynchronous one-shot compressor, so zstd stays on the calling thread.
 */
export function compressesLater(codec: CodecId, length: number): boolean {
  return codec === CODEC_LZ4 && length >= ASYNC_COMPRESS_MIN_BYTES;
}

/**
 * compressesLater's records: the compressed bytes, made on the thread pool (the same bytes
 * compressSync makes), or the error. It never rejects, so a batch abandoned on another error
 * leaves no unhandled rejection behind. `raw` must not change until it settles.
 */
export function compressLater(raw: Uint8Array): Promise<Buffer | Error> {
  return loadLz4().compress(raw).then((b) => b, (e: unknown) => (e instanceof Error ? e : new Error(String(e))));
}

/**
 * The blob of src[start, end) at out[off…] given its compressed form (`packed`, null if it was
 * not compressed): compressed only when that saves bytes. Returns the blob's length.
 */
export function writeBlob(codec: CodecId, src: Buffer, start: number, end: number, packed: Buffer | null, out: Buffer, off: number): number {
  const len = end - start;
  if (packed !== null) {
    if (packed.length + BLOB_RAW_LEN_SIZE < len) {
      out.writeUInt32BE(((codec << BLOB_CODEC_SHIFT) | packed.length) >>> 0, off);
      out.writeUInt32BE(len, off + BLOB_HEADER_SIZE);
      packed.copy(out, off + BLOB_HEADER_SIZE + BLOB_RAW_LEN_SIZE);
      return BLOB_HEADER_SIZE + BLOB_RAW_LEN_SIZE + packed.length;
    }
  }
  out.writeUInt32BE(len, off);
  src.copy(out, off + BLOB_HEADER_SIZE, start, end);
  return BLOB_HEADER_SIZE + len;
}

