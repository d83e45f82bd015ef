/** LSN text form, key encoding and record validation. */
import { describe, expect, it } from 'vitest';
import { decodeKey, encodeKey, formatLsn, parseLsn, type PageKey, StrataError } from '../lib';
import { KEY_SIZE } from '../lib/key';
import { checkSerializedRecord, serializeRecord } from '../lib/record';
import { Rng } from './helpers/random';

describe('LSN', () => {
  it('parses and formats the PostgreSQL X/Y form', () => {
    expect(parseLsn('16/B374D848')).toBe(0x16b374d848n);
    expect(formatLsn(0x16b374d848n)).toBe('16/B374D848');
    expect(formatLsn(0n)).toBe('0/0');
    expect(parseLsn('FFFFFFFF/FFFFFFFF')).toBe(0xffffffffffffffffn);
    for (const bad of ['', '16', '16/', '/1', 'G/1', '123456789/0', '1/2/3']) {
      expect(() => parseLsn(bad)).toThrow(StrataError);
    }
    expect(() => formatLsn(-1n)).toThrow(expect.objectContaining({ code: 'BAD_ARGUMENT' }));
  });
});

describe('page keys', () => {
  it('encode to 18 bytes whose byte order is the field order', () => {
    const rng = new Rng(5);
    const keys: PageKey[] = Array.from({ length: 500 }, () => ({
      spcOid: rng.pick([0, 1663, 0xffffffff]), dbOid: rng.int(0, 3), relNumber: rng.int(0, 5), forkNum: rng.int(0, 4), blockNum: rng.pick([0, 1, 255, 256, 0xffffffff]),
    }));
    const fieldOrder = (a: PageKey, b: PageKey) =>
      a.spcOid - b.spcOid || a.dbOid - b.dbOid || a.relNumber - b.relNumber || a.forkNum - b.forkNum || a.blockNum - b.blockNum;
    const byFields = [...keys].sort(fieldOrder);
    const byBytes = [...keys].sort((a, b) => Buffer.compare(encodeKey(a), encodeKey(b)));
    expect(byBytes.map((k) => fieldOrder(k, byFields[byBytes.indexOf(k)]))).toEqual(byBytes.map(() => 0));
    for (const k of keys) {
      const e = encodeKey(k);
      expect(e.length).toBe(KEY_SIZE);
      expect(e[0]).toBe(0);
      expect(decodeKey(e)).toEqual(k);
    }
  });

  it('rejects out-of-range fields', () => {
    const ok: PageKey = { spcOid: 1, dbOid: 1, relNumber: 1, forkNum: 0, blockNum: 0 };
    for (const bad of [{ forkNum: 256 }, { blockNum: -1 }, { spcOid: 2 ** 32 }, { dbOid: 1.5 }]) {
      expect(() => encodeKey({ ...ok, ...bad })).toThrow(expect.objectContaining({ code: 'BAD_ARGUMENT' }));
    }
  });
});

describe('records', () => {
  const key: PageKey = { spcOid: 1, dbOid: 2, relNumber: 3, forkNum: 0, blockNum: 4 };
  it('serialize to the versioned form and validate', () => {
    const img = serializeRecord({ lsn: 1n, key, kind: 'image', page: Buffer.alloc(8192, 7) });
    expect(img.length).toBe(8193);
    expect(img[0]).toBe(1);
    expect(serializeRecord({ lsn: 1n, key, kind: 'zero' })).toEqual(Buffer.of(2));
    const p = serializeRecord({ lsn: 1n, key, kind: 'patch', offset: 0x102, data: Buffer.from('xy') });
    expect([...p]).toEqual([3, 1, 2, 0x78, 0x79]);
    for (const r of [img, p, Buffer.of(2)]) expect(checkSerializedRecord(r)).toBeNull();
    expect(checkSerializedRecord(Buffer.of(9))).toMatch(/unknown record tag/);
    expect(checkSerializedRecord(Buffer.of(3, 0x1f, 0xff, 1, 2))).toMatch(/outside/);
  });
});

describe('codec', () => {
  it('reads the content size from zstd frame headers and refuses frames that lie about it', async () => {
    const { encodeBlob } = await import('../lib/core/compress');
    const { decompress, zstdFrameContentSize } = await import('../lib/core/ts/codec');
    const { CODEC_ZSTD, COMPRESS_MIN_BYTES } = await import('../lib/core/format');
    for (const n of [COMPRESS_MIN_BYTES, 255, 256, 300, 8193]) {
      const raw = Buffer.alloc(n, 3);
      const blob = encodeBlob(CODEC_ZSTD, raw);
      const stored = blob.subarray(8);
      expect(zstdFrameContentSize(stored)).toBe(n);
      expect(decompress(CODEC_ZSTD, stored, n).equals(raw)).toBe(true);
      expect(() => decompress(CODEC_ZSTD, stored, n + 1)).toThrow(/claims/);
    }
    expect(zstdFrameContentSize(Buffer.from('not a frame'))).toBeNull();
    // Below the threshold the writer stores the record raw (codec 0 in the header) untried.
    const small = encodeBlob(CODEC_ZSTD, Buffer.alloc(COMPRESS_MIN_BYTES - 1, 3));
    expect(small.readUInt32BE(0) >>> 28).toBe(0);
    expect(small.length).toBe(4 + COMPRESS_MIN_BYTES - 1);
  });
});
