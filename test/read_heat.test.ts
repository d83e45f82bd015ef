/** The heat policy's decisions (lib/engine/read_heat.ts), on made-up heat: no repository. */
import { describe, expect, it } from 'vitest';
import { BackgroundKeyStream, keysFrom, keySuccessor, PrefetchedLayerKeys } from '../lib/engine/key_stream';
import {
  chooseHotRanges, chooseHotRangesInSteps, HEAT_MIN_APPLIED, HEAT_MIN_SAVING_PER_PAGE, HOT_IMAGE_OVERHEAD_PAGES, HOT_RANGE_MAX_GAP, HOT_RANGE_PAGES, ReadHeat,
} from '../lib/engine/read_heat';
import { KEY_SIZE } from '../lib/key';
import { Rng } from './helpers/random';

/** Key i: 18 bytes, big-endian i in the last four, so keys sort as their numbers. */
function key(i: number): Buffer {
  const k = Buffer.alloc(KEY_SIZE);
  k.writeUInt32BE(i, KEY_SIZE - 4);
  return k;
}

const id = (i: number): string => key(i).toString('latin1');
const num = (k: Buffer): number => k.readUInt32BE(KEY_SIZE - 4);
/** Every other number is a key, so a range's end (just past its last key) is not the next key. */
const KEYS = Array.from({ length: 1000 }, (_, i) => key(2 * i));
const HOT = 1e6;

describe('heat policy', () => {
  it('ignores reads with short chains and sums long ones per key', () => {
    const h = new ReadHeat();
    h.note(id(1), HEAT_MIN_APPLIED - 1);
    h.note(id(2), HEAT_MIN_APPLIED);
    h.note(id(2), 10);
    expect([...h.tracked]).toEqual([[id(2), HEAT_MIN_APPLIED + 10]]);
  });

  it('groups hot keys lying close together, ranks groups by heat per page written, and ends each just past its last key', () => {
    const heat = new Map<string, number>([
      [id(2 * 10), HOT], [id(2 * 12), HOT], // keys 10 and 12: one group of 3 pages (11 is cold)
      [id(2 * 500), 3 * HOT], // alone: 1 page
      [id(2 * (600 + HOT_RANGE_MAX_GAP + 2)), HOT], [id(2 * 600), HOT], // HOT_RANGE_MAX_GAP + 1 cold keys between: two groups
    ]);
    const chosen = chooseHotRanges(() => KEYS, heat);
    expect(chosen.map((r) => [num(r.keyStart), num(r.keyEnd), r.keys.length, r.score])).toEqual([
      [1000, 1001, 1, 3 * HOT],
      [20, 25, 3, 2 * HOT], // 2 HOT over 3 + overhead pages
      [1200, 1201, 1, HOT],
      [2 * (600 + HOT_RANGE_MAX_GAP + 2), 2 * (600 + HOT_RANGE_MAX_GAP + 2) + 1, 1, HOT],
    ]);
    expect(chosen[1].keys.map(num)).toEqual([20, 22, 24]);
  });

  it('caps a group at HOT_RANGE_PAGES keys', () => {
    const heat = new Map<string, number>();
    for (let i = 0; i < 2 * HOT_RANGE_PAGES; i++) heat.set(id(2 * i), HOT);
    const chosen = chooseHotRanges(() => KEYS, heat);
    expect(chosen.map((r) => r.keys.length)).toEqual([HOT_RANGE_PAGES, HOT_RANGE_PAGES]);
    expect(num(chosen[1].keyStart)).toBe(2 * HOT_RANGE_PAGES);
  });

  it('skips groups whose heat is below the minimum per page they cost, and keys it does not know', () => {
    const enough = HEAT_MIN_SAVING_PER_PAGE * (1 + HOT_IMAGE_OVERHEAD_PAGES);
    const heat = new Map<string, number>([[id(40), enough - 1], [id(3), 1e9]]); // 3: not a key here
    expect(chooseHotRanges(() => KEYS, heat)).toEqual([]);
    heat.set(id(40), enough);
    expect(chooseHotRanges(() => KEYS, heat).map((r) => num(r.keyStart))).toEqual([40]);
  });

  it('earns budget from bytes written up to a cap, keeps spent bytes out of the basis, forgets imaged keys, and decays', () => {
    const h = new ReadHeat();
    h.earn(1_000, 0.1, 1e9);
    expect(h.credit).toBe(100);
    h.spend(150); // a hot image of 150 bytes: the running total will include it
    expect(h.credit).toBe(-50);
    h.earn(3_150, 0.1, 1e9); // 2000 more written besides the image
    expect(h.credit).toBe(150);
    h.earn(500, 0.1, 1e9); // the counters were reset: 500 written since
    expect(h.credit).toBe(200);
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

/**
 * The policy as first written, two passes over the whole key list (positions of the heated keys,
 * greedy groups, then each chosen group's keys): the oracle for the one-pass chooser.
 */
function twoPassOracle(keys: readonly Buffer[], heat: ReadonlyMap<string, number>): Array<[string[], number]> {
  const hot: Array<{ pos: number; h: number }> = [];
  keys.forEach((k, pos) => {
    const h = heat.get(k.toString('latin1'));
    if (h !== undefined) hot.push({ pos, h });
  });
  const cost = (g: { first: number; last: number }): number => g.last - g.first + 1 + HOT_IMAGE_OVERHEAD_PAGES;
  const density = (g: { first: number; last: number; score: number }): number => g.score / cost(g);
  const groups: Array<{ first: number; last: number; score: number }> = [];
  for (const { pos, h } of hot) {
    const g = groups[groups.length - 1];
    const alone = { first: pos, last: pos, score: h };
    if (g !== undefined && pos - g.last <= HOT_RANGE_MAX_GAP + 1 && pos - g.first < HOT_RANGE_PAGES) {
      const joint = { first: g.first, last: pos, score: g.score + h };
      if (density(joint) >= Math.max(density(g), density(alone))) {
        groups[groups.length - 1] = joint;
        continue;
      }
    }
    groups.push(alone);
  }
  return groups
    .filter((g) => g.score >= HEAT_MIN_SAVING_PER_PAGE * cost(g))
    .sort((a, b) => density(b) - density(a) || a.first - b.first)
    .map((g) => [keys.slice(g.first, g.last + 1).map((k) => k.toString('hex')), g.score]);
}

describe('heat policy in one pass, and in steps over a background key stream', () => {
  it('chooses what the two-pass policy chooses, on random keys and heat', async () => {
    const rng = new Rng(404);
    for (let round = 0; round < 60; round++) {
      const keys = Array.from({ length: rng.int(0, round % 10 === 0 ? 3000 : 600) }, (_, i) => key(3 * i + rng.int(0, 2)));
      const heat = new Map<string, number>();
      const hotSpots = rng.int(0, keys.length > 600 ? 120 : 40);
      for (let i = 0; i < hotSpots && keys.length > 0; i++) {
        const at = rng.int(0, keys.length - 1);
        for (let j = at; j < Math.min(keys.length, at + rng.int(1, 12)); j++) if (rng.chance(0.6)) heat.set(keys[j].toString('latin1'), rng.int(1, 200));
      }
      if (rng.chance(0.2)) heat.set(key(1e8).toString('latin1'), 1e9); // not a key of the timeline
      const want = twoPassOracle(keys, heat);
      const shape = (rs: ReturnType<typeof chooseHotRanges>): Array<[string[], number]> => rs.map((r) => {
        expect(r.keyStart.equals(r.keys[0])).toBe(true);
        expect(r.keyEnd.equals(keySuccessor(r.keys[r.keys.length - 1])!)).toBe(true);
        return [r.keys.map((k) => k.toString('hex')), r.score];
      });
      expect(shape(chooseHotRanges(() => keys, heat)), `round ${round}`).toEqual(want);
      // The same keys dealt over layers fetched ahead in pages, with pauses every few keys.
      const layers = [0, 1, 2].map((l) => keys.filter((_, i) => i % 3 === l || rng.chance(0.1)));
      const stream = new BackgroundKeyStream(
        (from) => layers.map((l) => new PrefetchedLayerKeys(async (f, end, max) => Buffer.concat(l.filter((k) => Buffer.compare(k, f) >= 0 && Buffer.compare(k, end) < 0).slice(0, max)), keysFrom(from), 16)),
        () => 0,
      );
      let pauses = 0;
      expect(shape(await chooseHotRangesInSteps(stream, heat, async () => { pauses++; })), `round ${round} in steps`).toEqual(want);
      // A pass that reads past the 1024th key pauses (PARTITION_KEYS_PER_STEP) on its way.
      const lastHeated = keys.reduce((last, k, i) => (heat.has(k.toString('latin1')) ? i : last), -1);
      if (lastHeated > 1100) expect(pauses, `round ${round}`).toBeGreaterThan(0);
    }
  });
});
