/**
 * Decompression of PostgreSQL's pglz format (src/common/pg_lzcompress.c), used for full-page
 * images when wal_compression = pglz: the TS twin of native/pg/pglz.cc, same verdicts and messages.
 *
 * A control byte announces the next 8 items, lowest bit first: a 0 bit is a literal byte, a 1 bit a
 * 2- or 3-byte tag (length - 3 in the low nibble, 18 meaning "add the third byte"; offset from the
 * high nibble (bits 8..11) and the second byte) copying bytes from earlier in the output.
 */

const MIN_MATCH = 3;
const LEN_NIBBLE_EXTENDED = 15;
const ITEMS_PER_CONTROL = 8;

/**
 * Decompresses `src` into `dst` (exactly dst.length bytes, all of `src` consumed), as PostgreSQL's
 * pglz_decompress with check_complete = true. Returns null on success or a description of the fault.
 */
export function pglzDecompress(src: Uint8Array, dst: Uint8Array): string | null {
  const send = src.length;
  const dend = dst.length;
  let sp = 0;
  let dp = 0;
  while (sp < send && dp < dend) {
    let ctrl = src[sp++];
    for (let item = 0; item < ITEMS_PER_CONTROL && sp < send && dp < dend; item++, ctrl >>= 1) {
      if ((ctrl & 1) === 0) {
        dst[dp++] = src[sp++];
        continue;
      }
      if (send - sp < 2) return 'pglz: match tag runs past the input';
      let len = (src[sp] & 0x0f) + MIN_MATCH;
      const off = ((src[sp] & 0xf0) << 4) | src[sp + 1];
      sp += 2;
      if (len === LEN_NIBBLE_EXTENDED + MIN_MATCH) {
        if (sp === send) return 'pglz: match length runs past the input';
        len += src[sp++];
      }
      if (off === 0 || off > dp) return 'pglz: match offset outside the output';
      if (len > dend - dp) len = dend - dp; // PostgreSQL clips a match at the end of the output
      dp = copyMatch(dst, dp, off, len);
    }
  }
  if (dp !== dend) return 'pglz: decompressed length differs from the expected length';
  if (sp !== send) return 'pglz: input left over after the expected length';
  return null;
}

/** Copies `len` bytes from `off` back (overlap repeats the period); returns the new write position. */
function copyMatch(dst: Uint8Array, dp: number, off: number, len: number): number {
  if (off >= len) {
    dst.copyWithin(dp, dp - off, dp - off + len);
    return dp + len;
  }
  for (let i = 0; i < len; i++) dst[dp + i] = dst[dp + i - off];
  return dp + len;
}
