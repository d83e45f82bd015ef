/**
 * Little-endian byte access and the PostgreSQL 15 constants the redo code shares (TS twin of
 * native/pg/pg_format.h). PostgreSQL structures are little-endian here; docs/POSTGRES.md.
 */

export const BLCKSZ = 8192;
/** MAXIMUM_ALIGNOF on x86-64. */
export const MAXALIGN_BYTES = 8;
export const INVALID_BLOCK_NUMBER = 0xffffffff;
export const INVALID_TRANSACTION_ID = 0;
export const FROZEN_TRANSACTION_ID = 2;
export const FIRST_NORMAL_TRANSACTION_ID = 3;
export const FIRST_COMMAND_ID = 0;

export const MAIN_FORKNUM = 0;
export const FSM_FORKNUM = 1;
export const VISIBILITYMAP_FORKNUM = 2;
export const INIT_FORKNUM = 3;

export const RM_XLOG_ID = 0;
export const RM_HEAP2_ID = 9;
export const RM_HEAP_ID = 10;
export const RM_BTREE_ID = 11;
export const RM_SEQ_ID = 15;
/** Strata's own resource manager (docs/POSTGRES.md, "rmgr 255"). */
export const RM_STRATA_ID = 255;

export function maxAlign(n: number): number {
  return (n + MAXALIGN_BYTES - 1) & ~(MAXALIGN_BYTES - 1);
}

export function shortAlign(n: number): number {
  return (n + 1) & ~1;
}

export function loadLe16(p: Uint8Array, o: number): number {
  return p[o] | (p[o + 1] << 8);
}

export function loadLe32(p: Uint8Array, o: number): number {
  return (p[o] | (p[o + 1] << 8) | (p[o + 2] << 16) | (p[o + 3] << 24)) >>> 0;
}

export function storeLe16(p: Uint8Array, o: number, v: number): void {
  p[o] = v & 0xff;
  p[o + 1] = (v >>> 8) & 0xff;
}

export function storeLe32(p: Uint8Array, o: number, v: number): void {
  p[o] = v & 0xff;
  p[o + 1] = (v >>> 8) & 0xff;
  p[o + 2] = (v >>> 16) & 0xff;
  p[o + 3] = (v >>> 24) & 0xff;
}
