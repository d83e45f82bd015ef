/** The heat policy's decisions (lib/engine/read_heat.ts), on made-up heat: no repository. */
import { describe, expect, it } from 'vitest';
import {
  chooseHotRanges, HEAT_MIN_APPLIED, HEAT_MIN_SAVING_PER_PAGE, HOT_RANGE_PAGES, ReadHeat,
} from '../lib/engine/read_heat';
import { KEY_SIZE } from '../lib/key';

/** Key i: 18 bytes, big-endian i in the last four, so keys sort as their numbers. */
function key(i: number): Buffer {
  const k = Buffer.alloc(KEY_SIZE);
  k.writeUInt32BE(i, KEY_SIZE - 4);
  return k;
}

const id = (i: number): string => key(i).toString('latin1');
const KEYS = Array.from({ length: 10 * HOT_RANGE_PAGES }, (_, i) => key(i));

describe('heat policy', () => {
  it('ignores reads with short chains and sums long ones per key', () => {
    const h = new ReadHeat();
    h.note(id(1), HEAT_MIN_APPLIED - 1);
    h.note(id(2), HEAT_MIN_APPLIED);
    h.note(id(2), 10);
    expect([...h.tracked]).toEqual([[id(2), HEAT_MIN_APPLIED + 10]]);
  });

  it('ranks runs by heat per page, each range holding exactly its keys', () => {
    const heat = new Map<string, number>();
    heat.set(id(3 * HOT_RANGE_PAGES + 1), 5_000); // run 3
    heat.set(id(5), 10_000); // run 0: hottest
    heat.set(id(7 * HOT_RANGE_PAGES), 1_000); // run 7
    heat.set(id(7 * HOT_RANGE_PAGES + 9), 1_000); // run 7 again: 2000 in all
    const chosen = chooseHotRanges(KEYS, heat);
    expect(chosen.map((r) => r.score)).toEqual([10_000, 5_000, 2_000]);
    expect(chosen.map((r) => r.keys.length)).toEqual([HOT_RANGE_PAGES, HOT_RANGE_PAGES, HOT_RANGE_PAGES]);
    expect(chosen[0].keyStart.equals(key(0))).toBe(true);
    expect(chosen[0].keyEnd.equals(key(HOT_RANGE_PAGES))).toBe(true);
    expect(chosen[1].keyStart.equals(key(3 * HOT_RANGE_PAGES))).toBe(true);
    expect(chosen[1].keyEnd.equals(key(4 * HOT_RANGE_PAGES))).toBe(true);
    expect(chosen[1].keys.every((k, i) => k.equals(key(3 * HOT_RANGE_PAGES + i)))).toBe(true);
  });

  it('skips runs whose saving per page written is below the minimum, and keys it does not know', () => {
    const heat = new Map<string, number>();
    heat.set(id(40), HEAT_MIN_SAVING_PER_PAGE * HOT_RANGE_PAGES - 1); // run 1: just short
    heat.set(key(1_000_000).toString('latin1'), 1e9); // no such key in this timeline
    expect(chooseHotRanges(KEYS, heat)).toEqual([]);
    heat.set(id(41), 1);
    expect(chooseHotRanges(KEYS, heat).map((r) => r.keyStart.readUInt32BE(KEY_SIZE - 4))).toEqual([HOT_RANGE_PAGES]);
  });

  it('ends the last, short run just past its last key and asks the minimum saving of its pages only', () => {
    const keys = KEYS.slice(0, HOT_RANGE_PAGES + 3);
    const heat = new Map([[id(HOT_RANGE_PAGES + 2), HEAT_MIN_SAVING_PER_PAGE * 3]]);
    const [r] = chooseHotRanges(keys, heat);
    expect(r.keys).toHaveLength(3);
    expect(r.keyEnd.equals(key(HOT_RANGE_PAGES + 3))).toBe(true);
  });

  it('earns budget from flushed bytes up to a cap, forgets imaged keys, and decays', () => {
    const h = new ReadHeat();
    h.earn(1_000, 0.1, 1e9);
    expect(h.credit).toBe(100);
    h.earn(3_000, 0.1, 1e9); // 2000 more flushed
    expect(h.credit).toBe(300);
    h.earn(500, 0.1, 1e9); // the counter was reset: 500 flushed since
    expect(h.credit).toBe(350);
    h.earn(1e9, 0.1, 400);
    expect(h.credit).toBe(400);
    h.note(id(1), 8);
    h.note(id(2), 3);
    h.forget([key(1)]);
    expect(h.tracked.has(id(1))).toBe(false);
    h.decay();
    expect(h.tracked.get(id(2))).toBe(1.5);
    h.decay();
    expect(h.tracked.size).toBe(0); // below one record: dropped
  });
});
