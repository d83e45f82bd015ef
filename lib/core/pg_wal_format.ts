/**
 * PostgreSQL 15's WAL geometry and the decoded-record entry layout (docs/POSTGRES.md, "Decoded
 * record"): the part of the WAL decoder's contract both cores and the engine share. The C++ twin's
 * values are in native/pg/xlogreader.h.
 */
export const WAL_PAGE_SIZE = 8192; // XLOG_BLCKSZ
export const WAL_SEGMENT_SIZE = 16 * 1024 * 1024; // PostgreSQL 15's default wal_segment_size
export const BLOCK_SIZE = 8192; // BLCKSZ
export const WAL_PAGE_MAGIC = 0xd110; // XLOG_PAGE_MAGIC of PostgreSQL 15
export const SHORT_PAGE_HEADER_SIZE = 24;
export const LONG_PAGE_HEADER_SIZE = 40;
export const RECORD_HEADER_SIZE = 24;
export const MAX_BLOCK_ID = 32;
/** Start and end LSNs must be below this (keeps every position exact as a JS number). */
export const MAX_DECODER_LSN = 2 ** 52;

/** Decoded-record entry layout (docs/POSTGRES.md). */
export const ENTRY_HEADER_SIZE = 52;
export const ENTRY_BLOCK_SIZE = 28;
export const ENTRY_FLAG_ORIGIN = 0x01;
export const ENTRY_FLAG_TOPLEVEL_XID = 0x02;

/** Record tag of a stored PostgreSQL record: one block of one WAL record (docs/POSTGRES.md, "Stored record"). */
export const RECORD_TAG_PG = 4;
export const STORED_HEADER_SIZE = 24;
export const STORED_BLOCK_REF_SIZE = 24;
/**
 * Storage flags (byte 3): the WAL record was too large to store (its stored form would pass the
 * largest record, 128 KiB), so only its header and block references are kept; redo refuses it
 * with WAL_UNSUPPORTED, so its pages fail loudly instead of missing the change.
 */
export const STORED_FLAG_TRUNCATED = 0x01;
/** Cluster flags of a stored record (byte 1); together PostgreSQL's XLogHintBitIsNeeded(). */
export const CLUSTER_FLAG_CHECKSUMS = 0x01;
export const CLUSTER_FLAG_WAL_LOG_HINTS = 0x02;

/** Block reference flags, `fork_flags & 0xF0` as in the WAL (xlogrecord.h). */
export const BKPBLOCK_FORK_MASK = 0x0f;
export const BKPBLOCK_HAS_IMAGE = 0x10;
export const BKPBLOCK_HAS_DATA = 0x20;
export const BKPBLOCK_WILL_INIT = 0x40;
export const BKPBLOCK_SAME_REL = 0x80;
/** bimg_info of PostgreSQL 15 (xlogrecord.h; PostgreSQL 14's values differ). */
export const BKPIMAGE_HAS_HOLE = 0x01;
export const BKPIMAGE_APPLY = 0x02;
export const BKPIMAGE_COMPRESS_PGLZ = 0x04;
export const BKPIMAGE_COMPRESS_LZ4 = 0x08;
export const BKPIMAGE_COMPRESS_ZSTD = 0x10;
export const BKPIMAGE_VALID_BITS = 0x1f;

