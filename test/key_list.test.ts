/** KeyList: a partition's keys packed in one buffer, against a plain array of copies. */
import { describe, expect, it } from 'vitest';
import { KeyList } from '../lib/engine/key_list';
import { KEY_SIZE } from '../lib/key';
import { Rng } from './helpers/random';

describe('KeyList', () => {
  it('gives back the keys pushed, in order, across its growth, as copies', () => {
    const rng = new Rng(41);
    for (const expected of [1, 3, 256, 5000]) {
      const list = new KeyList(expected);
      const oracle: Buffer[] = [];
      const scratch = Buffer.alloc(KEY_SIZE);
      for (let n = rng.int(0, 3000); n > 0; n--) {
        for (let i = 0; i < KEY_SIZE; i++) scratch[i] = rng.int(0, 255);
        list.push(scratch); // the list must copy: scratch is overwritten next round
        oracle.push(Buffer.from(scratch));
      }
      expect(list.length).toBe(oracle.length);
      expect([...list].map((k) => k.toString('hex'))).toEqual(oracle.map((k) => k.toString('hex')));
      for (let i = 0; i < oracle.length; i += 97) expect(list.at(i).equals(oracle[i])).toBe(true);
    }
  });

  it('refuses a key of the wrong size and an index outside it', () => {
    const list = new KeyList();
    expect(() => list.push(Buffer.alloc(KEY_SIZE - 1))).toThrow(RangeError);
    list.push(Buffer.alloc(KEY_SIZE, 7));
    expect(() => list.at(1)).toThrow(RangeError);
    expect(() => list.at(-1)).toThrow(RangeError);
    expect(list.at(0).equals(Buffer.alloc(KEY_SIZE, 7))).toBe(true);
  });
});
