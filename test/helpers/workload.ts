/** Generated WAL for randomized tests: a small keyspace so that record chains get long. */
import type { PageKey, WalRecord } from '../../lib';
import { PAGE_SIZE } from '../../lib';
import type { Rng } from './random';

export interface KeySpace {
  rels: number;
  blocks: number;
}

export function randomKey(rng: Rng, ks: KeySpace): PageKey {
  return { spcOid: 1663, dbOid: 5, relNumber: 16384 + rng.int(0, ks.rels), forkNum: rng.chance(0.9) ? 0 : 1, blockNum: rng.int(0, ks.blocks) };
}

/** A page that compresses somewhat, as real heap pages do. */
export function randomPage(rng: Rng): Buffer {
  const page = Buffer.alloc(PAGE_SIZE);
  const fill = rng.int(0, PAGE_SIZE);
  const word = rng.bytes(rng.int(1, 16));
  for (let o = 0; o < fill; o += word.length) word.copy(page, o, 0, Math.min(word.length, fill - o));
  rng.bytes(64).copy(page, rng.int(0, PAGE_SIZE - 64));
  return page;
}

export function randomRecord(rng: Rng, ks: KeySpace, lsn: bigint, key: PageKey = randomKey(rng, ks)): WalRecord {
  const roll = rng.next();
  if (roll < 0.12) return { lsn, key, kind: 'image', page: randomPage(rng) };
  if (roll < 0.2) return { lsn, key, kind: 'zero' };
  const len = rng.chance(0.1) ? rng.int(1, 2048) : rng.int(1, 160);
  const offset = rng.int(0, PAGE_SIZE - len + 1);
  const data = rng.chance(0.5) ? rng.bytes(len) : Buffer.alloc(len, rng.int(0, 256));
  return { lsn, key, kind: 'patch', offset, data };
}

/** A batch with increasing LSNs above `after`; some LSNs carry records for several pages. */
export function randomBatch(rng: Rng, ks: KeySpace, after: bigint, n: number): WalRecord[] {
  const out: WalRecord[] = [];
  let lsn = after;
  let used = new Set<string>();
  for (let i = 0; i < n; i++) {
    if (i === 0 || rng.chance(0.8)) {
      lsn += BigInt(rng.int(1, 0x80));
      used = new Set();
    }
    let key = randomKey(rng, ks);
    const id = JSON.stringify(key);
    if (used.has(id)) {
      lsn += 1n;
      used = new Set();
    }
    used.add(JSON.stringify(key));
    out.push(randomRecord(rng, ks, lsn, key));
  }
  return out;
}
