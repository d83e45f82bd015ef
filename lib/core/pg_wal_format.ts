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
