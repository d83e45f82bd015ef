/**
 * lib/pg/wal_record.ts: the views over decoded entries and the tag-4 stored record
 * (docs/POSTGRES.md, "Stored record"), byte by byte.
 */
import { describe, expect, test } from 'vitest';
import { createWalDecoder } from '../../lib/core/pg_decoder';
import {
  CLUSTER_FLAG_CHECKSUMS, RECORD_TAG_PG, encodeStoredRecord, imageForBlock, storedRecordWillInit, decodedRecords, type DecodedRecord,
} from '../../lib/pg/wal_record';
import { IMPLEMENTATIONS } from '../helpers/cores';
import { PAGE, buildWal, fakePage, withoutHole, type RecordSpec } from './wal_builder';

function decodeSpecs(specs: RecordSpec[]): DecodedRecord[] {
  const w = buildWal(specs);
  const d = createWalDecoder(IMPLEMENTATIONS[IMPLEMENTATIONS.length - 1], { startLsn: w.startLsn });
  d.feed(w.bytes);
  d.finish();
  const r = d.decode(100);
  return [...decodedRecords(r.entries, r.count)];
}

describe('stored record (tag 4)', () => {
  test('layout: header, every block tag, only the target block data, main data', () => {
    const main = Buffer.from('main-data!');
    const [rec] = decodeSpecs([{
      rmid: 10, info: 0x20, xid: 0xdeadbeef,
      blocks: [
        { id: 0, rel: [1663, 5, 16384], blkno: 12, data: Buffer.from('new tuple'), flags: 0x40 },
        { id: 1, blkno: 3, data: Buffer.from('old') },
        { id: 2, rel: [1663, 5, 16400], fork: 2, blkno: 0 },
      ],
      main,
    }]);
    const v = encodeStoredRecord(rec, 1, CLUSTER_FLAG_CHECKSUMS);
    const expected = Buffer.alloc(24 + 3 * 24 + 3 + main.length);
    expected[0] = RECORD_TAG_PG;
    expected[1] = CLUSTER_FLAG_CHECKSUMS;
    expected[2] = 1;
    expected.writeBigUInt64LE(rec.endLsn, 4);
    expected.writeUInt32LE(0xdeadbeef, 12);
    expected[16] = 10;
    expected[17] = 0x20;
    expected[18] = 3;
    expected.writeUInt32LE(main.length, 20);
    const tags: [number, number, number, number, number, number, number, number][] = [
      [0, 0, 0x60, 0, 1663, 5, 16384, 12], [1, 0, 0xa0, 0, 1663, 5, 16384, 3], [2, 2, 0x00, 0, 1663, 5, 16400, 0]];
    tags.forEach((t, i) => {
      const o = 24 + i * 24;
      expected[o] = t[0];
      expected[o + 1] = t[1];
      expected[o + 2] = t[2];
      expected[o + 3] = t[3];
      expected.writeUInt32LE(t[4], o + 4);
      expected.writeUInt32LE(t[5], o + 8);
      expected.writeUInt32LE(t[6], o + 12);
      expected.writeUInt32LE(t[7], o + 16);
      expected.writeUInt16LE(i === 1 ? 3 : 0, o + 20);
    });
    Buffer.from('old').copy(expected, 96);
    main.copy(expected, 99);
    expect(v.toString('hex')).toBe(expected.toString('hex'));
    expect(storedRecordWillInit(rec, 0)).toBe(true);
    expect(storedRecordWillInit(rec, 1)).toBe(false);
    expect(() => encodeStoredRecord(rec, 3, 0)).toThrow(/BAD_ARGUMENT/);
    expect(() => encodeStoredRecord(rec, 0, 4)).toThrow(/BAD_ARGUMENT/);
  });

  test('a block whose image is to be applied is not a tag-4 value; imageForBlock stamps pd_lsn unless the page is new', () => {
    const page = fakePage(100, 4000, 3);
    const stored = withoutHole(page, 100, 3900);
    const newPage = Buffer.alloc(PAGE);
    const [rec] = decodeSpecs([{
      rmid: 0, info: 0xb0,
      blocks: [
        { id: 0, rel: [1663, 5, 1], blkno: 1, image: { stored, bimgInfo: 0x03, holeOffset: 100 } },
        { id: 1, blkno: 2, image: { stored: newPage, bimgInfo: 0x02, holeOffset: 0 } },
        { id: 2, blkno: 3, image: { stored, bimgInfo: 0x01, holeOffset: 100 } },
      ],
    }]);
    expect(() => encodeStoredRecord(rec, 0, 0)).toThrow(/image to apply/);
    expect(encodeStoredRecord(rec, 2, 0)[2]).toBe(2); // an image for verification only is not applied
    const img = imageForBlock(rec, 0);
    expect(img.readUInt32LE(0)).toBe(Number(rec.endLsn >> 32n));
    expect(img.readUInt32LE(4)).toBe(Number(rec.endLsn & 0xffffffffn));
    expect(img.subarray(8).equals(rec.image(0)?.subarray(8) as Buffer)).toBe(true);
    expect(imageForBlock(rec, 1).equals(newPage)).toBe(true);
    expect(rec.image(0)?.readUInt32LE(4)).toBe(0x1003); // the view itself is untouched
  });

  test('decodedRecords checks the entry count', () => {
    const recs = decodeSpecs([{ rmid: 8, info: 0x10, main: Buffer.from([1]) }, { rmid: 8, info: 0x10, main: Buffer.from([2]) }]);
    const buf = Buffer.concat(recs.map((r) => r.bytes()));
    expect([...decodedRecords(buf)].length).toBe(2);
    expect(() => [...decodedRecords(buf, 3)]).toThrow(/holds 2 entries, expected 3/);
  });
});
