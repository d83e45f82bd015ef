/**
 * PostgreSQL's data page checksum (src/include/storage/checksum_impl.h, REL_15_STABLE), TS twin of
 * native/pg/checksum.{h,cc}: 32 interleaved FNV-1a-like sums over the page as u32 words, two rounds
 * of zero mixing, an XOR fold, the block number mixed in, and a result in 1..65535.
 */
import { BLCKSZ } from './pg_format';

const N_SUMS = 32;
const FNV_PRIME = 16777619;
const ROUNDS = BLCKSZ / (4 * N_SUMS);
/** pd_checksum is the low half of the page's third u32 word; it counts as zero. */
const CHECKSUM_WORD = 2;
const CHECKSUM_BYTES_MASK = 0xffff0000;

const CHECKSUM_BASE_OFFSETS = new Uint32Array([
  0x5b1f36e9, 0xb8525960, 0x02ab50aa, 0x1de66d2a, 0x79ff467a, 0x9bb9f8a3, 0x217e7cd2, 0x83e13d2c,
  0xf8d4474f, 0xe39eb970, 0x42c6ae16, 0x993216fa, 0x7b093b5d, 0x98daff3c, 0xf718902a, 0x0b1c9cdb,
  0xe58f764b, 0x187636bc, 0x5d7b3bb1, 0xe73de7de, 0x92bec979, 0xcca6c0b2, 0x304a0979, 0x85aa43d4,
  0x783125bb, 0x6ca8eaa2, 0xe407eac6, 0x4b5cfc3e, 0x9fbf8c76, 0x15ca20be, 0xf2ca9fd3, 0x959bd756,
]);

const sums = new Uint32Array(N_SUMS);

/**
 * pg_checksum_page: the checksum of the 8192-byte page at page[off] for block `blkno`, computed as
 * if pd_checksum were zero (the page is not modified).
 */
export function pgChecksumPage(page: Uint8Array, blkno: number, off = 0): number {
  sums.set(CHECKSUM_BASE_OFFSETS);
  for (let i = 0; i < ROUNDS; i++) {
    const row = off + i * N_SUMS * 4;
    for (let j = 0; j < N_SUMS; j++) {
      const o = row + j * 4;
      let word = page[o] | (page[o + 1] << 8) | (page[o + 2] << 16) | (page[o + 3] << 24);
      if (i === 0 && j === CHECKSUM_WORD) word &= CHECKSUM_BYTES_MASK;
      const tmp = (sums[j] ^ word) >>> 0;
      sums[j] = Math.imul(tmp, FNV_PRIME) ^ (tmp >>> 17);
    }
  }
  for (let round = 0; round < 2; round++) {
    for (let j = 0; j < N_SUMS; j++) {
      const tmp = sums[j];
      sums[j] = Math.imul(tmp, FNV_PRIME) ^ (tmp >>> 17);
    }
  }
  let result = 0;
  for (let j = 0; j < N_SUMS; j++) result ^= sums[j];
  result = (result ^ blkno) >>> 0;
  return (result % 65535) + 1;
}
