import { describeValue, StrataError } from './errors';

/** A log sequence number: a byte position in the WAL, as an unsigned 64-bit bigint. */
export type Lsn = bigint;

export const LSN_MAX: Lsn = 0xffff_ffff_ffff_ffffn;
const U32_MASK = 0xffff_ffffn;
const LSN_TEXT = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/** Parse PostgreSQL's text form `X/Y` (high and low 32 bits in hex), e.g. `16/B374D848`. */
export function parseLsn(text: string): Lsn {
  const m = LSN_TEXT.exec(text);
  if (!m) throw new StrataError('BAD_ARGUMENT', `not an LSN in X/Y form: ${JSON.stringify(text)}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** Format as PostgreSQL does: upper-case hex, no leading zeros, `X/Y`. */
export function formatLsn(lsn: Lsn): string {
  checkLsn(lsn, 'lsn');
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & U32_MASK).toString(16).toUpperCase()}`;
}

/** 16 upper-case hex digits, the form used in layer file names. */
export function lsnToHex16(lsn: Lsn): string {
  return lsn.toString(16).toUpperCase().padStart(16, '0');
}

export function checkLsn(lsn: unknown, what: string): asserts lsn is Lsn {
  if (typeof lsn !== 'bigint' || lsn < 0n || lsn > LSN_MAX) {
    throw new StrataError('BAD_ARGUMENT', `${what} must be a bigint in [0, 2^64): got ${describeValue(lsn)}`);
  }
}
