/**
 * CRC-32C (native instruction and table paths, TS twin) against published vectors and each other;
 * pglz decompression (both cores) on hand-made streams, compressor round trips and garbage.
 */
import { describe, expect, test } from 'vitest';
import { loadNativePg, type NativePgBinding } from '../../lib/core/pg_decoder';
import { crc32c, crc32cFinish, crc32cUpdate, CRC32C_INIT } from '../../lib/core/ts/pg/crc32c';
import { pglzDecompress } from '../../lib/core/ts/pg/pglz';
import { IMPLEMENTATIONS } from '../helpers/cores';
import { Rng } from '../helpers/random';
import { pglzCompress } from './wal_builder';

const NATIVE = IMPLEMENTATIONS.includes('native');
/** The addon's pg hooks; loading fails loudly (NATIVE_UNAVAILABLE) unless STRATA_IMPL=ts. */
const native = (): NativePgBinding => loadNativePg();

// RFC 3720 (iSCSI) appendix B.4 and the usual check value.
const VECTORS: [string, Buffer, number][] = [
  ['empty', Buffer.alloc(0), 0],
  ['"123456789"', Buffer.from('123456789'), 0xe3069283],
  ['32 zero bytes', Buffer.alloc(32), 0x8a9136aa],
  ['32 0xFF bytes', Buffer.alloc(32, 0xff), 0x62a8ab43],
  ['32 ascending bytes', Buffer.from(Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e],
  ['32 descending bytes', Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c],
];

describe('CRC-32C', () => {
  test.each(VECTORS)('%s', (_name, data, expected) => {
    expect(crc32c(data)).toBe(expected);
    if (NATIVE) {
      expect(native().pgCrc32c(data)).toBe(expected);
      expect(native().pgCrc32cTables(data)).toBe(expected);
    }
  });

  test('random lengths and offsets: native (instruction and tables) ≡ TS, continuation ≡ one pass', () => {
    const rng = new Rng(32);
    const big = rng.bytes(70_000);
    for (let i = 0; i < 400; i++) {
      const start = rng.int(0, 64);
      const len = rng.int(0, i < 300 ? 300 : 70_000 - start);
      const data = big.subarray(start, start + len);
      const ts = crc32c(data);
      const cut = rng.int(0, len + 1);
      expect(crc32c(data.subarray(cut), crc32c(data.subarray(0, cut)))).toBe(ts);
      expect(crc32cFinish(crc32cUpdate(crc32cUpdate(CRC32C_INIT, data, 0, cut), data, cut, len))).toBe(ts);
      if (NATIVE) {
        expect(native().pgCrc32c(data)).toBe(ts);
        expect(native().pgCrc32cTables(data)).toBe(ts);
        expect(native().pgCrc32c(data.subarray(cut), native().pgCrc32c(data.subarray(0, cut)))).toBe(ts);
      }
    }
  });

  test('the native core says whether it uses the SSE4.2 instruction', () => {
    if (!NATIVE) return;
    expect(typeof native().pgCrc32cHardware).toBe('boolean');
  });
});

/** Both cores' verdicts on (src, rawLen): the bytes, or the fault's description. */
function pglzBoth(src: Buffer, rawLen: number): Buffer | string {
  const out = Buffer.alloc(rawLen);
  const tsErr = pglzDecompress(src, out);
  const ts: Buffer | string = tsErr ?? out;
  if (NATIVE) {
    let nat: Buffer | string;
    try {
      nat = native().pgPglzDecompress(src, rawLen);
    } catch (e) {
      nat = (e as Error).message.replace(/^BAD_ARGUMENT: /, '');
    }
    expect(nat).toEqual(ts);
  }
  return ts;
}

describe('pglz', () => {
  test('literals, short and extended matches, overlapping copies', () => {
    // ctrl 0b0000_0010: a literal 'a', then a match of 18 + 2 = 20 bytes at offset 1 (overlapping).
    expect(pglzBoth(Buffer.from([0x02, 0x61, 0x0f, 0x01, 0x02]), 21)).toEqual(Buffer.alloc(21, 0x61));
    // "abc" then a match of 6 bytes at offset 3 (len nibble 3): "abcabcabc".
    expect(pglzBoth(Buffer.from([0x08, 0x61, 0x62, 0x63, 0x03, 0x03]), 9)).toEqual(Buffer.from('abcabcabc'));
    // A match longer than what is left is clipped at the output's end, as PostgreSQL does.
    expect(pglzBoth(Buffer.from([0x02, 0x61, 0x0f, 0x01, 0xff]), 10)).toEqual(Buffer.alloc(10, 0x61));
  });

  test('malformed streams: the same fault in both cores, never a read or write outside the buffers', () => {
    expect(pglzBoth(Buffer.from([0x01, 0x00, 0x00]), 4)).toBe('pglz: match offset outside the output');
    expect(pglzBoth(Buffer.from([0x02, 0x61, 0x00, 0x05]), 4)).toBe('pglz: match offset outside the output');
    expect(pglzBoth(Buffer.from([0x02, 0x61, 0x0f]), 30)).toBe('pglz: match tag runs past the input');
    expect(pglzBoth(Buffer.from([0x02, 0x61, 0x0f, 0x01]), 30)).toBe('pglz: match length runs past the input');
    expect(pglzBoth(Buffer.from([0x00, 0x61, 0x62]), 3)).toBe('pglz: decompressed length differs from the expected length');
    expect(pglzBoth(Buffer.from([0x00, 0x61, 0x62, 0x63]), 2)).toBe('pglz: input left over after the expected length');
    expect(pglzBoth(Buffer.alloc(0), 0)).toEqual(Buffer.alloc(0));
  });

  test('round trips through a compressor, and random garbage, agree in both cores', () => {
    const rng = new Rng(77);
    for (let i = 0; i < 40; i++) {
      const n = rng.int(1, 3000);
      const src = Buffer.alloc(n);
      for (let k = 0; k < n; k++) src[k] = rng.chance(0.7) && k > 10 ? src[k - rng.int(1, 10)] : rng.int(0, 256);
      const packed = pglzCompress(src);
      expect(pglzBoth(packed, n)).toEqual(src);
    }
    let faults = 0;
    for (let i = 0; i < 2000; i++) {
      const r = pglzBoth(rng.bytes(rng.int(0, 64)), rng.int(0, 200));
      if (typeof r === 'string') faults++;
    }
    expect(faults).toBeGreaterThan(1000);
  });
});
