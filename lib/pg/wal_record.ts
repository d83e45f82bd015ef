/**
 * Typed views over the WAL decoder's packed entries (docs/POSTGRES.md, "Decoded record") and the
 * encoder of the per-block stored record (docs/POSTGRES.md, "Stored record … (record tag 4)").
 *
 * A `DecodedRecord` reads its fields straight out of the decoder's batch buffer: block data, images
 * and main data are subarrays of it, never copies, so a view lives as long as that buffer is not
 * reused (the decoders return a fresh buffer per batch).
 */
import { StrataError } from '../errors';
import {
  BKPBLOCK_HAS_DATA, BKPBLOCK_HAS_IMAGE, BKPBLOCK_SAME_REL, BKPBLOCK_WILL_INIT, BKPIMAGE_APPLY, BKPIMAGE_COMPRESS_LZ4,
  BKPIMAGE_COMPRESS_PGLZ, BKPIMAGE_COMPRESS_ZSTD, BKPIMAGE_HAS_HOLE, BLOCK_SIZE, CLUSTER_FLAG_CHECKSUMS, CLUSTER_FLAG_WAL_LOG_HINTS,
  ENTRY_BLOCK_SIZE, ENTRY_FLAG_ORIGIN, ENTRY_FLAG_TOPLEVEL_XID, ENTRY_HEADER_SIZE, MAX_BLOCK_ID, RECORD_TAG_PG, STORED_BLOCK_REF_SIZE,
  STORED_HEADER_SIZE,
} from '../core/pg_wal_format';

export {
  BKPBLOCK_HAS_DATA, BKPBLOCK_HAS_IMAGE, BKPBLOCK_SAME_REL, BKPBLOCK_WILL_INIT, BKPIMAGE_APPLY, BKPIMAGE_COMPRESS_LZ4,
  BKPIMAGE_COMPRESS_PGLZ, BKPIMAGE_COMPRESS_ZSTD, BKPIMAGE_HAS_HOLE, CLUSTER_FLAG_CHECKSUMS, CLUSTER_FLAG_WAL_LOG_HINTS, RECORD_TAG_PG,
  STORED_HEADER_SIZE,
};
export const STORED_BLOCK_SIZE = STORED_BLOCK_REF_SIZE;

/** Byte offsets inside PostgreSQL's page header (bufpage.h). */
const PD_LSN = 0;
const PD_UPPER = 14;
const TWO_32 = 2n ** 32n;

/** One block reference of a decoded record. */
export interface WalBlockRef {
  /** Index among the record's block references (0..blockCount-1). */
  index: number;
  /** Block id in the WAL (0..32). */
  id: number;
  forkNum: number;
  /** fork_flags & 0xF0 as in the WAL (BKPBLOCK_*). */
  forkFlags: number;
  /** bimg_info as in the WAL; 0 without an image. */
  bimgInfo: number;
  spcOid: number;
  dbOid: number;
  relNumber: number;
  blockNumber: number;
  dataLength: number;
  /** 0, or 8192: images are restored. */
  imageLength: number;
  holeOffset: number;
  holeLength: number;
  hasImage: boolean;
  /** The image is to be restored at replay (BKPIMAGE_APPLY); without it the image is for wal_consistency_checking. */
  applyImage: boolean;
  willInit: boolean;
  /** Offset of this block's image (then data) in the entry's buffer. */
  payloadOffset: number;
}

export class DecodedRecord {
  private blockCache: WalBlockRef[] | undefined;

  /** The entry at `offset` of `buf` (its length is in its first 4 bytes). */
  constructor(readonly buf: Buffer, readonly offset: number) {
    if (offset + ENTRY_HEADER_SIZE > buf.length) throw new StrataError('BAD_ARGUMENT', `no decoded WAL entry at offset ${offset}`);
    const len = buf.readUInt32LE(offset);
    if (len < ENTRY_HEADER_SIZE || offset + len > buf.length) {
      throw new StrataError('BAD_ARGUMENT', `decoded WAL entry at offset ${offset} claims ${len} bytes`);
    }
  }

  get length(): number { return this.buf.readUInt32LE(this.offset); }
  get startLsn(): bigint { return this.buf.readBigUInt64LE(this.offset + 4); }
  /** The record's LSN in Strata: its end (EndRecPtr), what PostgreSQL stamps into pd_lsn. */
  get endLsn(): bigint { return this.buf.readBigUInt64LE(this.offset + 12); }
  get prevLsn(): bigint { return this.buf.readBigUInt64LE(this.offset + 20); }
  get xid(): number { return this.buf.readUInt32LE(this.offset + 28); }
  get totalLength(): number { return this.buf.readUInt32LE(this.offset + 32); }
  get rmid(): number { return this.buf[this.offset + 36]; }
  get info(): number { return this.buf[this.offset + 37]; }
  get blockCount(): number { return this.buf[this.offset + 38]; }
  get flags(): number { return this.buf[this.offset + 39]; }
  /** The top-level xid (XLR_BLOCK_ID_TOPLEVEL_XID), or null when the record has none. */
  get toplevelXid(): number | null {
    return (this.flags & ENTRY_FLAG_TOPLEVEL_XID) !== 0 ? this.buf.readUInt32LE(this.offset + 40) : null;
  }
  /** The replication origin (XLR_BLOCK_ID_ORIGIN), or null when the record has none. */
  get origin(): number | null {
    return (this.flags & ENTRY_FLAG_ORIGIN) !== 0 ? this.buf.readUInt16LE(this.offset + 44) : null;
  }
  get mainDataLength(): number { return this.buf.readUInt32LE(this.offset + 48); }

  /** The block references, in block-id order. */
  blocks(): readonly WalBlockRef[] {
    if (this.blockCache === undefined) this.blockCache = this.readBlocks();
    return this.blockCache;
  }

  block(index: number): WalBlockRef {
    const b = this.blocks()[index];
    if (b === undefined) throw new StrataError('BAD_ARGUMENT', `record at ${this.startLsn} has no block reference #${index}`);
    return b;
  }

  /** The block reference with this WAL block id, or undefined. */
  blockById(id: number): WalBlockRef | undefined {
    return this.blocks().find((b) => b.id === id);
  }

  /** The restored 8192-byte image of a block (a view into the batch buffer), or null without one. */
  image(index: number): Buffer | null {
    const b = this.block(index);
    return b.hasImage ? this.buf.subarray(b.payloadOffset, b.payloadOffset + BLOCK_SIZE) : null;
  }

  /** A block's data (a view; empty without data). */
  blockData(index: number): Buffer {
    const b = this.block(index);
    const start = b.payloadOffset + b.imageLength;
    return this.buf.subarray(start, start + b.dataLength);
  }

  /** The main data (a view; empty without). */
  mainData(): Buffer {
    const end = this.offset + this.length;
    return this.buf.subarray(end - this.mainDataLength, end);
  }

  /** The whole entry (a view). */
  bytes(): Buffer {
    return this.buf.subarray(this.offset, this.offset + this.length);
  }

  private readBlocks(): WalBlockRef[] {
    const n = this.blockCount;
    const b = this.buf;
    const out: WalBlockRef[] = [];
    let payload = this.offset + ENTRY_HEADER_SIZE + n * ENTRY_BLOCK_SIZE;
    for (let i = 0; i < n; i++) {
      const d = this.offset + ENTRY_HEADER_SIZE + i * ENTRY_BLOCK_SIZE;
      const forkFlags = b[d + 2];
      const bimgInfo = b[d + 3];
      const ref: WalBlockRef = {
        index: i,
        id: b[d],
        forkNum: b[d + 1],
        forkFlags,
        bimgInfo,
        spcOid: b.readUInt32LE(d + 4),
        dbOid: b.readUInt32LE(d + 8),
        relNumber: b.readUInt32LE(d + 12),
        blockNumber: b.readUInt32LE(d + 16),
        dataLength: b.readUInt16LE(d + 20),
        imageLength: b.readUInt16LE(d + 22),
        holeOffset: b.readUInt16LE(d + 24),
        holeLength: b.readUInt16LE(d + 26),
        hasImage: (forkFlags & BKPBLOCK_HAS_IMAGE) !== 0,
        applyImage: (forkFlags & BKPBLOCK_HAS_IMAGE) !== 0 && (bimgInfo & BKPIMAGE_APPLY) !== 0,
        willInit: (forkFlags & BKPBLOCK_WILL_INIT) !== 0,
        payloadOffset: payload,
      };
      payload += ref.imageLength + ref.dataLength;
      out.push(ref);
    }
    return out;
  }
}

/** The `count` entries of a decoder batch, in WAL order (each a view into `entries`). */
export function* decodedRecords(entries: Buffer, count?: number): Generator<DecodedRecord> {
  let offset = 0;
  let seen = 0;
  while (offset < entries.length && (count === undefined || seen < count)) {
    const r = new DecodedRecord(entries, offset);
    yield r;
    offset += r.length;
    seen++;
  }
  if (count !== undefined && seen !== count) {
    throw new StrataError('BAD_ARGUMENT', `decoder batch holds ${seen} entries, expected ${count}`);
  }
}

/**
 * The tag-4 value stored under block `blockIndex` of `record` (docs/POSTGRES.md, "Stored record"):
 * the record header, every block reference's tag, this block's data and the main data. A block whose
 * image is to be applied is stored as an image record instead: BAD_ARGUMENT here.
 */
export function encodeStoredRecord(record: DecodedRecord, blockIndex: number, clusterFlags: number): Buffer {
  if (!Number.isInteger(clusterFlags) || clusterFlags < 0 || clusterFlags > (CLUSTER_FLAG_CHECKSUMS | CLUSTER_FLAG_WAL_LOG_HINTS)) {
    throw new StrataError('BAD_ARGUMENT', `cluster flags must combine 0x01 and 0x02: got ${String(clusterFlags)}`);
  }
  const blocks = record.blocks();
  const target = record.block(blockIndex);
  if (target.applyImage) {
    throw new StrataError('BAD_ARGUMENT', `block #${blockIndex} of the record at ${record.startLsn} carries an image to apply: store it as an image`);
  }
  const data = record.blockData(blockIndex);
  const main = record.mainData();
  const out = Buffer.alloc(STORED_HEADER_SIZE + STORED_BLOCK_SIZE * blocks.length + data.length + main.length);
  out[0] = RECORD_TAG_PG;
  out[1] = clusterFlags;
  out[2] = target.id;
  out[3] = 0;
  out.writeBigUInt64LE(record.endLsn, 4);
  out.writeUInt32LE(record.xid, 12);
  out[16] = record.rmid;
  out[17] = record.info;
  out[18] = blocks.length;
  out[19] = 0;
  out.writeUInt32LE(main.length, 20);
  let o = STORED_HEADER_SIZE;
  for (const b of blocks) {
    out[o] = b.id;
    out[o + 1] = b.forkNum;
    out[o + 2] = b.forkFlags;
    out[o + 3] = b.bimgInfo;
    out.writeUInt32LE(b.spcOid, o + 4);
    out.writeUInt32LE(b.dbOid, o + 8);
    out.writeUInt32LE(b.relNumber, o + 12);
    out.writeUInt32LE(b.blockNumber, o + 16);
    out.writeUInt16LE(b.index === blockIndex ? b.dataLength : 0, o + 20);
    out.writeUInt16LE(0, o + 22);
    o += STORED_BLOCK_SIZE;
  }
  data.copy(out, o);
  main.copy(out, o + data.length);
  return out;
}

/** Whether the stored value for this block initializes its page (BKPBLOCK_WILL_INIT). */
export function storedRecordWillInit(record: DecodedRecord, blockIndex: number): boolean {
  return record.block(blockIndex).willInit;
}

/**
 * A copy of a block's restored image with pd_lsn set to the record's end LSN, as PostgreSQL's
 * RestoreBlockImage + PageSetLSN leave it — unless the page is new (pd_upper == 0), which keeps
 * its bytes. pd_checksum is left as logged: a checksummed cluster's caller recomputes it.
 */
export function imageForBlock(record: DecodedRecord, blockIndex: number): Buffer {
  const image = record.image(blockIndex);
  if (image === null) throw new StrataError('BAD_ARGUMENT', `block #${blockIndex} of the record at ${record.startLsn} has no image`);
  const page = Buffer.from(image);
  if (page.readUInt16LE(PD_UPPER) !== 0) {
    // PageXLogRecPtr is two uint32s: the high half first.
    const lsn = record.endLsn;
    page.writeUInt32LE(Number(lsn / TWO_32), PD_LSN);
    page.writeUInt32LE(Number(lsn % TWO_32), PD_LSN + 4);
  }
  return page;
}

/** Largest block id a record may carry (for callers that index by id). */
export const WAL_MAX_BLOCK_ID = MAX_BLOCK_ID;
