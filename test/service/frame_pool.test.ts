/** FramePool: exact sizes come back, the idle bound holds, sizes never mix. */
import { describe, expect, it } from 'vitest';
import { FramePool } from '../../lib/service/frame_pool';

describe('FramePool', () => {
  it('hands a returned buffer out again for the same size only', () => {
    const pool = new FramePool(1 << 20);
    const a = pool.take(8201);
    expect(a.length).toBe(8201);
    pool.give(a);
    expect(pool.idle).toBe(8201);
    const other = pool.take(100);
    expect(other).not.toBe(a);
    expect(other.length).toBe(100);
    expect(pool.take(8201)).toBe(a);
    expect(pool.reused).toBe(1);
    expect(pool.idle).toBe(0);
  });

  it('keeps at most its byte limit idle', () => {
    const pool = new FramePool(3 * 8201);
    const bufs = Array.from({ length: 5 }, () => pool.take(8201));
    for (const b of bufs) pool.give(b);
    expect(pool.idle).toBe(3 * 8201);
    const again = Array.from({ length: 5 }, () => pool.take(8201));
    expect(again.filter((b) => bufs.includes(b)).length).toBe(3);
    expect(pool.reused).toBe(3);
  });
});
