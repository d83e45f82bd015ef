/**
 * On-disk layout constants shared by every layer-file reader and writer (TS and C++).
 * docs/FORMAT.md explains each byte; native/format.h mirrors these values.
 */
import { KEY_SIZE } from '../key';

export const BLOCK_SIZE = 8192;
/** Each block ends with a CRC-32 (zlib polynomial) of the bytes before it, big-endian. */
export const BLOCK_CRC_SIZE = 4;
export const BLOCK_PAYLOAD = BLOCK_SIZE - BLOCK_CRC_SIZE;

export const DELTA_MAGIC = 0x53544c44; // 'STLD'
export const IMAGE_MAGIC = 0x53544c49; // 'STLI'
export const LAYER_FORMAT_VERSION = 1;

export const LAYER_KIND_DELTA = 1;
export const LAYER_KIND_IMAGE = 2;

/** Summary (block 0) field offsets. */
export const SUMMARY = {
  magic: 0,             // u32
  formatVersion: 4,     // u16
  layerKind: 6,         // u8
  codec: 7,             // u8
  keyStart: 8,          // 18 bytes
  keyEnd: 26,           // 18 bytes, exclusive
  lsnStart: 44,         // u64
  lsnEnd: 52,           // u64, exclusive
  valueStartBlk: 60,    // u32 (always 1)
  valueBlkCount: 64,    // u32
  valueBytes: 68,       // u64 logical length of the value stream
  indexStartBlk: 76,    // u32
  indexLeafCount: 80,   // u32
  indexRootBlk: 84,     // u32 absolute
  indexBlkCount: 88,    // u32
  indexHeight: 92,      // u8 (1 = the root is a leaf)
  indexKeySize: 93,     // u8 (26 delta, 18 image)
  reserved: 94,         // u16 zero
  entryCount: 96,       // u64
  totalBlocks: 104,     // u32 = file size / BLOCK_SIZE
  recordFormat: 108,    // u8
  end: 109,             // zero padding from here up to BLOCK_PAYLOAD
} as const;

export const DELTA_INDEX_KEY_SIZE = KEY_SIZE + 8; // key || lsn (u64 BE)
export const IMAGE_INDEX_KEY_SIZE = KEY_SIZE;

/** B-tree node: u8 level, u8 reserved, u16 count, keys, then u64 values. */
export const BTREE_NODE_HEADER = 4;
export const BTREE_VALUE_SIZE = 8;
export function btreeFanout(keySize: number): number {
  return Math.floor((BLOCK_PAYLOAD - BTREE_NODE_HEADER) / (keySize + BTREE_VALUE_SIZE));
}

/** Blob header: u32 BE (codec << 28 | stored length); compressed blobs add u32 BE raw length. */
export const BLOB_HEADER_SIZE = 4;
export const BLOB_RAW_LEN_SIZE = 4;
export const BLOB_LEN_MASK = 0x0fff_ffff;
export const BLOB_CODEC_SHIFT = 28;

export const CODEC_NONE = 0;
export const CODEC_LZ4 = 1;
export const CODEC_ZSTD = 2;
export type CodecId = typeof CODEC_NONE | typeof CODEC_LZ4 | typeof CODEC_ZSTD;
export type CompressionName = 'none' | 'lz4' | 'zstd';
export const CODEC_BY_NAME: Record<CompressionName, CodecId> = { none: CODEC_NONE, lz4: CODEC_LZ4, zstd: CODEC_ZSTD };
export const CODEC_NAMES: readonly CompressionName[] = ['none', 'lz4', 'zstd'];

/**
 * Records shorter than this are stored raw without trying a codec. Typical WAL records are
 * ≈100-byte tuple updates: on those lz4 saves 1.6 % of the bytes (zstd-1 4.8 %) once its 4-byte
 * length is paid, while the attempt was a fifth of ingest + flush time (docs/PERFORMANCE.md, W3).
 * From 128 bytes on, heap-page data compresses ≈25 % and the attempt pays.
 */
export const COMPRESS_MIN_BYTES = 128;
/** zstd level used by the writer; fixed so both implementations produce identical bytes. */
export const ZSTD_LEVEL = 1;
