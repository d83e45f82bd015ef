/**
 * Value compression. The writer side lives here only, shared by both implementations, so the
 * compressed bytes of a layer are identical whichever core writes the file. Decompression has a
 * TS twin here and a C++ one in native/codec.cc (the read hot path never calls back into JS).
 */
import { StrataError } from './errors';
import {
  BLOB_CODEC_SHIFT, BLOB_HEADER_SIZE, BLOB_LEN_MASK, BLOB_RAW_LEN_SIZE, CODEC_LZ4, CODEC_NONE, CODEC_ZSTD,
  COMPRESS_MIN_BYTES, ZSTD_LEVEL, type CodecId,
} from './format';

interface Lz4Module { compressSync(data: Buffer): Buffer; uncompressSync(data: Buffer): Buffer }
interface ZstdModule {
  compress(data: Uint8Array, params?: { compressionLevel?: number }): Buffer;
  decompress(data: Uint8Array): Buffer;
}

let lz4: Lz4Module | Error | undefined;
let zstd: ZstdModule | Error | undefined;

function loadLz4(): Lz4Module {
  if (lz4 === undefined) {
    try { lz4 = require('lz4-napi') as Lz4Module; } catch (e) { lz4 = e as Error; }
  }
  if (lz4 instanceof Error) throw new StrataError('BAD_ARGUMENT', `lz4 codec unavailable: ${lz4.message}`, { cause: lz4 });
  return lz4;
}

function loadZstd(): ZstdModule {
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
  if (codec !== CODEC_NONE && raw.length >= COMPRESS_MIN_BYTES) {
    const packed = compressWith(codec, raw);
    if (packed.length + BLOB_RAW_LEN_SIZE < raw.length) {
      const out = Buffer.allocUnsafe(BLOB_HEADER_SIZE + BLOB_RAW_LEN_SIZE + packed.length);
      out.writeUInt32BE(((codec << BLOB_CODEC_SHIFT) | packed.length) >>> 0, 0);
      out.writeUInt32BE(raw.length, BLOB_HEADER_SIZE);
      packed.copy(out, BLOB_HEADER_SIZE + BLOB_RAW_LEN_SIZE);
      return out;
    }
  }
  const out = Buffer.allocUnsafe(BLOB_HEADER_SIZE + raw.length);
  out.writeUInt32BE(raw.length, 0);
  raw.copy(out, BLOB_HEADER_SIZE);
  return out;
}

/** Decompress a blob payload (the bytes after the header); throws a plain Error on malformed input. */
export function decompress(codec: number, stored: Buffer, rawLen: number): Buffer {
  let out: Buffer;
  if (codec === CODEC_LZ4) {
    // lz4-napi's block format: u32 LE decompressed size, then an LZ4 block.
    if (stored.length < 4 || stored.readUInt32LE(0) !== rawLen) throw new Error('lz4 size prefix does not match the blob header');
    out = loadLz4().uncompressSync(stored);
  } else if (codec === CODEC_ZSTD) {
    // zstd-napi sizes its output from the frame header: check that claim before trusting it.
    const claimed = zstdFrameContentSize(stored);
    if (claimed !== rawLen) throw new Error(`zstd frame claims ${String(claimed)} bytes, header says ${rawLen}`);
    out = loadZstd().decompress(stored);
  } else {
    throw new Error(`unknown codec ${codec}`);
  }
  if (out.length !== rawLen) throw new Error(`decompressed ${out.length} bytes, header says ${rawLen}`);
  return out;
}

const ZSTD_MAGIC = 0xfd2fb528;
const ZSTD_DICT_ID_BYTES = [0, 1, 2, 4];
const ZSTD_FCS_BYTES = [0, 2, 4, 8];
const ZSTD_FCS_TWO_BYTE_BIAS = 256;

/** The content size a zstd frame header declares (RFC 8878 §3.1.1.1), or null if absent or malformed. */
export function zstdFrameContentSize(frame: Buffer): number | null {
  if (frame.length < 5 || frame.readUInt32LE(0) !== ZSTD_MAGIC) return null;
  const fhd = frame[4];
  const singleSegment = (fhd >> 5) & 1;
  const fcsFlag = fhd >> 6;
  const o = 5 + (singleSegment ? 0 : 1) + ZSTD_DICT_ID_BYTES[fhd & 3];
  const fcsBytes = fcsFlag === 0 ? singleSegment : ZSTD_FCS_BYTES[fcsFlag];
  if (fcsBytes === 0 || frame.length < o + fcsBytes) return null;
  switch (fcsBytes) {
    case 1: return frame[o];
    case 2: return frame.readUInt16LE(o) + ZSTD_FCS_TWO_BYTE_BIAS;
    case 4: return frame.readUInt32LE(o);
    default: {
      const v = frame.readBigUInt64LE(o);
      return v > BigInt(Number.MAX_SAFE_INTEGER) ? null : Number(v);
    }
  }
}

export function blobHeader(word: number): { codec: number; storedLen: number } {
  return { codec: word >>> BLOB_CODEC_SHIFT, storedLen: word & BLOB_LEN_MASK };
}
