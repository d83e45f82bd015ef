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


/**
 * Strata's own resource manager (rmgr 255) and its record types (docs/POSTGRES.md, "Strata's own
 * records"): page changes PostgreSQL makes without a block reference, synthesized at ingest.
 */
export const RM_STRATA = 255;
export const STRATA_VM_CLEAR = 0x00;
export const STRATA_VM_TRUNCATE = 0x10;
/** Transaction status bits on one pg_xact page (commit, abort, their prepared forms). */
export const STRATA_CLOG_SET = 0x20;
/** Starting member offsets of multixacts on one pg_multixact/offsets page (MultiXact CREATE_ID). */
export const STRATA_MULTIXACT_OFFSETS = 0x30;
/** Members (xid and lock status) on one pg_multixact/members page (MultiXact CREATE_ID). */
export const STRATA_MULTIXACT_MEMBERS = 0x40;

/**
 * The SLRUs Strata keeps (docs/FORMAT.md, "Keys"): the SLRU byte of their keys, and the relation
 * number of the block reference in their rmgr-255 records.
 */
export const SLRU_XACT = 0;
export const SLRU_MULTIXACT_OFFSETS = 1;
export const SLRU_MULTIXACT_MEMBERS = 2;
/** SLRU geometry of PostgreSQL 15 (slru.h, clog.c, multixact.c) with 8 KB pages. */
export const SLRU_PAGES_PER_SEGMENT = 32;
/** Two status bits per transaction: 4 per byte, 32768 per page. */
export const CLOG_XACTS_PER_PAGE = 32768;
/** A u32 starting offset per multixact: 2048 per page. */
export const MULTIXACT_OFFSETS_PER_PAGE = 2048;
/** Members come in groups of 4: 4 flag bytes, then 4 xids (20 bytes); 409 groups per page. */
export const MULTIXACT_MEMBERS_PER_GROUP = 4;
export const MULTIXACT_MEMBERGROUP_SIZE = 20;
export const MULTIXACT_MEMBERGROUPS_PER_PAGE = 409;
export const MULTIXACT_MEMBERS_PER_PAGE = 1636;
/** TransactionStatus values (clog.h) a CLOG_SET record may set. */
export const TRANSACTION_STATUS_COMMITTED = 1;
export const TRANSACTION_STATUS_ABORTED = 2;
/** The largest MultiXactStatus (multixact.h: MultiXactStatusUpdate). */
export const MULTIXACT_STATUS_MAX = 5;
