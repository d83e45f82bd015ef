/**
 * Value compression, the writer side. It lives here only, shared by both cores, so the compressed
 * bytes of a layer are identical whichever core writes the file (lz4-napi is lz4_flex, which
 * liblz4 cannot reproduce byte for byte). Decompression is per core: native/codec.cc and its TS
 * twin lib/core/ts/codec.ts. Blob layout: docs/FORMAT.md, "Blobs".
 */
import { copyBytes, putU32BE } from '../bytes';
import { StrataError } from '../errors';
import {
  BLOB_CODEC_SHIFT, BLOB_HEADER_SIZE, BLOB_RAW_LEN_SIZE, CODEC_LZ4, CODEC_NONE, CODEC_ZSTD,
  COMPRESS_MIN_BYTES, ZSTD_LEVEL, type CodecId,
} from './format';

export interface Lz4Module { compressSync(data: Buffer): Buffer; uncompressSync(data: Buffer): Buffer }
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

/** The codec's compressed form of `raw` (whether or not it is smaller). */
export function compressRecord(codec: CodecId, raw: Buffer): Buffer {
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
  return writeBlob(codec, src, start, end, compressesRecord(codec, end - start) ? compressRecord(codec, src.subarray(start, end)) : null, out, off);
}

/** Whether encodeBlob compresses a `length`-byte record under `codec` (else it stores it raw). */
export function compressesRecord(codec: CodecId, length: number): boolean {
  return codec !== CODEC_NONE && length >= COMPRESS_MIN_BYTES;
}

/**
 * encodeBlobInto given the record's compressed form (`packed`, null if it was not compressed or
 * did not shrink): compressed only when that saves bytes. Returns the blob's length.
 */
export function writeBlob(codec: CodecId, src: Uint8Array, start: number, end: number, packed: Buffer | null, out: Buffer, off: number): number {
  const len = end - start;
  if (packed !== null && packed.length + BLOB_RAW_LEN_SIZE < len) {
    out.writeUInt32BE(((codec << BLOB_CODEC_SHIFT) | packed.length) >>> 0, off);
    out.writeUInt32BE(len, off + BLOB_HEADER_SIZE);
    packed.copy(out, off + BLOB_HEADER_SIZE + BLOB_RAW_LEN_SIZE);
    return BLOB_HEADER_SIZE + BLOB_RAW_LEN_SIZE + packed.length;
  }
  // A flush writes most records this way, ≈ 100 bytes each: no Buffer method's checks or views.
  putU32BE(out, off, len);
  copyBytes(src, start, out, off + BLOB_HEADER_SIZE, len);
  return BLOB_HEADER_SIZE + len;
}

