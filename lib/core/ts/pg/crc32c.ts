/**
 * CRC-32C (Castagnoli; reflected polynomial 0x82F63B78), the checksum of every PostgreSQL WAL
 * record: the TS twin of native/pg/crc32c.cc (slicing-by-8 tables). The register is exposed so a
 * caller can checksum discontiguous parts the way PostgreSQL does for a record (payload after the
 * header first, then the header bytes before xl_crc); see docs/POSTGRES.md.
 */

const REFLECTED_POLY = 0x82f63b78;
const SLICES = 8;

/** tables[k * 256 + i]: the register after byte i followed by k zero bytes. */
const TABLES: Uint32Array = makeTables();

function makeTables(): Uint32Array {
  const t = new Uint32Array(SLICES * 256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let bit = 0; bit < 8; bit++) c = c & 1 ? (c >>> 1) ^ REFLECTED_POLY : c >>> 1;
    t[i] = c >>> 0;
  }
  for (let k = 1; k < SLICES; k++) {
    for (let i = 0; i < 256; i++) {
      const prev = t[(k - 1) * 256 + i];
      t[k * 256 + i] = ((prev >>> 8) ^ t[prev & 0xff]) >>> 0;
    }
  }
  return t;
}

/** The register's starting value. */
export const CRC32C_INIT = 0xffffffff;

/** Advances the (pre-inverted) register over bytes [start, end) of `data`. */
export function crc32cUpdate(reg: number, data: Uint8Array, start = 0, end = data.length): number {
  const t = TABLES;
  let r = reg >>> 0;
  let i = start;
  for (; i + SLICES <= end; i += SLICES) {
    const lo = (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)) ^ r;
    const hi = data[i + 4] | (data[i + 5] << 8) | (data[i + 6] << 16) | (data[i + 7] << 24);
    r = t[7 * 256 + (lo & 0xff)] ^ t[6 * 256 + ((lo >>> 8) & 0xff)] ^ t[5 * 256 + ((lo >>> 16) & 0xff)] ^
      t[4 * 256 + (lo >>> 24)] ^ t[3 * 256 + (hi & 0xff)] ^ t[2 * 256 + ((hi >>> 8) & 0xff)] ^
      t[256 + ((hi >>> 16) & 0xff)] ^ t[hi >>> 24];
  }
  for (; i < end; i++) r = (r >>> 8) ^ t[(r ^ data[i]) & 0xff];
  return r >>> 0;
}

/** The final CRC from a register. */
export function crc32cFinish(reg: number): number {
  return ~reg >>> 0;
}

/** The CRC-32C of `data`, continuing from a previous result `crc` (0 to start), zlib-style. */
export function crc32c(data: Uint8Array, crc = 0): number {
  return crc32cFinish(crc32cUpdate(~crc >>> 0, data));
}
