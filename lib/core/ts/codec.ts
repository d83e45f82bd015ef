/**
 * Value decompression, the TS twin of native/codec.cc: blob payloads back into serialized records
 * (docs/FORMAT.md, "Blobs"). The writer side is shared by both cores in lib/core/compress.ts.
 */
import { BLOB_CODEC_SHIFT, BLOB_LEN_MASK, CODEC_LZ4, CODEC_ZSTD } from '../format';
import { loadLz4, loadZstd } from '../compress';

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
