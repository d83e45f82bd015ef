/**
 * The decoded-page cache (lib/engine/decoded_page_cache.ts): the structure on its own, then through
 * a repository on both cores — what it answers, and that every way a page can change (a record, a
 * branch's own writes, a read racing an ingest, a snapshot load) makes it answer no stale page.
 * The model-based test (model.test.ts) runs with it on as well.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Core } from '../lib/core/core';
import { DecodedPageCache, type DecodedPageIndex, splitLsn, type SplitLsn } from '../lib/engine/decoded_page_cache';
import { ReadPath, type ReadSegment } from '../lib/engine/read_path';
import { encodeKey, PAGE_SIZE, type PageKey, Repository, type Timeline } from '../lib';
import { describeEachCore } from './helpers/cores';

const key = (blockNum: number, relNumber = 16384): PageKey => ({ spcOid: 1663, dbOid: 5, relNumber, forkNum: 0, blockNum });
const filled = (fill: number): Buffer => Buffer.alloc(PAGE_SIZE, fill);

/** Cache a page past the doorkeeper, which admits a key on its second miss. */
function admit(index: DecodedPageIndex, k: PageKey, at: SplitLsn, page: Buffer, offset: number): void {
  index.insert(k, at, page, offset);
  index.insert(k, at, page, offset);
}

describe('DecodedPageCache', () => {
  it('answers a key from its LSN up, until a record closes it; misses below and for other keys', () => {
    const cache = new DecodedPageCache(4 * PAGE_SIZE);
    const idx = cache.createIndex();
    admit(idx, key(1), splitLsn(100n), filled(7), 0);
    const out = Buffer.alloc(PAGE_SIZE);
    const slot = idx.lookup(key(1), splitLsn(100n));
    expect(slot).toBeGreaterThanOrEqual(0);
    idx.copyOut(slot, out, 0);
    expect(out.equals(filled(7))).toBe(true);
    expect(idx.lookup(key(1), splitLsn(2n ** 40n))).toBe(slot); // open above
    expect(idx.lookup(key(1), splitLsn(99n))).toBe(-1);
    expect(idx.lookup(key(2), splitLsn(100n))).toBe(-1);
    expect(idx.lookup(key(1, 16385), splitLsn(100n))).toBe(-1);
    idx.invalidate(encodeKey(key(1)), 0, 150n);
    expect(idx.lookup(key(1), splitLsn(149n))).toBe(slot);
    expect(idx.lookup(key(1), splitLsn(150n))).toBe(-1);
    // Encoded keys and PageKeys name the same entry.
    expect(idx.lookup(encodeKey(key(1)), splitLsn(120n))).toBe(slot);
    expect(cache.stats()).toMatchObject({ capacityPages: 4, usedPages: 1, insertions: 1, deferred: 1, invalidations: 1, hits: 4 });
  });

  it('compares LSNs above 2^53 and across the 32-bit halves exactly', () => {
    const cache = new DecodedPageCache(2 * PAGE_SIZE);
    const idx = cache.createIndex();
    const base = 2n ** 60n + 5n;
    admit(idx, key(1), splitLsn(base), filled(1), 0);
    expect(idx.lookup(key(1), splitLsn(base - 1n))).toBe(-1);
    expect(idx.lookup(key(1), splitLsn(base))).toBeGreaterThanOrEqual(0);
    idx.invalidate(encodeKey(key(1)), 0, base + 2n ** 32n);
    expect(idx.lookup(key(1), splitLsn(base + 2n ** 32n - 1n))).toBeGreaterThanOrEqual(0);
    expect(idx.lookup(key(1), splitLsn(base + 2n ** 32n))).toBe(-1);
  });

  it('evicts by clock within its capacity, sparing entries read since the hand passed', () => {
    const cache = new DecodedPageCache(3 * PAGE_SIZE);
    const idx = cache.createIndex();
    for (let b = 0; b < 3; b++) admit(idx, key(b), splitLsn(10n), filled(b), 0);
    expect(idx.lookup(key(0), splitLsn(10n))).toBeGreaterThanOrEqual(0); // referenced
    admit(idx, key(3), splitLsn(10n), filled(3), 0);
    expect(idx.lookup(key(0), splitLsn(10n))).toBeGreaterThanOrEqual(0);
    expect(idx.lookup(key(1), splitLsn(10n))).toBe(-1); // the unreferenced one went
    expect(idx.size).toBe(3);
    expect(cache.stats()).toMatchObject({ usedPages: 3, evictions: 1 });
  });

  it('keeps timelines apart, and clear() frees one timeline\'s slots', () => {
    const cache = new DecodedPageCache(4 * PAGE_SIZE);
    const a = cache.createIndex();
    const b = cache.createIndex();
    admit(a, key(1), splitLsn(10n), filled(1), 0);
    expect(b.lookup(key(1), splitLsn(10n))).toBe(-1);
    admit(b, key(1), splitLsn(10n), filled(2), 0);
    const out = Buffer.alloc(PAGE_SIZE);
    a.copyOut(a.lookup(key(1), splitLsn(10n)), out, 0);
    expect(out[0]).toBe(1);
    a.clear();
    expect(a.lookup(key(1), splitLsn(10n))).toBe(-1);
    expect(b.lookup(key(1), splitLsn(10n))).toBeGreaterThanOrEqual(0);
    expect(cache.stats().usedPages).toBe(1);
  });

  it('caches a key on its second miss (the doorkeeper), and replaces a held key at once', () => {
    // 128 doorkeeper slots: keys 1 and 2 land in different ones (fixed hash), so 2 does not evict 1.
    const cache = new DecodedPageCache(64 * PAGE_SIZE);
    const idx = cache.createIndex();
    idx.insert(key(1), splitLsn(10n), filled(1), 0);
    expect(idx.lookup(key(1), splitLsn(10n))).toBe(-1);
    idx.insert(key(2), splitLsn(10n), filled(2), 0); // another key's first miss
    idx.insert(key(1), splitLsn(10n), filled(1), 0);
    expect(idx.lookup(key(1), splitLsn(10n))).toBeGreaterThanOrEqual(0);
    expect(idx.lookup(key(2), splitLsn(10n))).toBe(-1);
    idx.invalidate(encodeKey(key(1)), 0, 20n);
    idx.insert(key(1), splitLsn(20n), filled(3), 0); // held: replaced without waiting
    const out = Buffer.alloc(PAGE_SIZE);
    idx.copyOut(idx.lookup(key(1), splitLsn(20n)), out, 0);
    expect(out[0]).toBe(3);
    expect(cache.stats()).toMatchObject({ insertions: 2, deferred: 2 });
  });

  it('holds nothing at capacity 0', () => {
    const cache = new DecodedPageCache(PAGE_SIZE - 1);
    const idx = cache.createIndex();
    admit(idx, key(1), splitLsn(10n), filled(1), 0);
    expect(idx.lookup(key(1), splitLsn(10n))).toBe(-1);
  });
});

describe('ReadPath with a decoded-page cache', () => {
  it('caches nothing from an async read a write overtook, and caches it otherwise', async () => {
    // A core whose async read finishes when the test says: the write lands while it is away.
    let release: () => void = () => undefined;
    const core = {
      getPagesAsync: (_plan: Buffer, out: Uint8Array): Promise<void> => {
        out.fill(1, 0, PAGE_SIZE);
        return new Promise<void>((resolve) => { release = resolve; });
      },
    } as unknown as Core;
    const head: ReadSegment = { mapId: 1, ancestorLsn: null, ancestorSegment: null, hasInMemoryRecords: () => false, collectInMemory: () => false };
    const host = { lastRecordLsn: 10n, writeGeneration: 0 };
    const reads = new ReadPath(core, head, 'test');
    const index = new DecodedPageCache(4 * PAGE_SIZE).createIndex();
    reads.useDecodedPages(index, host);
    // A first read only passes the doorkeeper; the overtaken one would be the key's second miss.
    const first = reads.getPages([key(1)], 10n, false);
    release();
    await first;
    expect(index.size).toBe(0);
    const overtaken = reads.getPages([key(1)], 10n, false);
    host.writeGeneration++;
    host.lastRecordLsn = 20n;
    release();
    expect((await overtaken)[0][0]).toBe(1);
    expect(index.size).toBe(0);
    const quiet = reads.getPages([key(1)], 20n, false);
    release();
    await quiet;
    expect(index.size).toBe(1);
    expect(index.lookup(key(1), splitLsn(20n))).toBeGreaterThanOrEqual(0);
  });
});

describeEachCore('decoded-page cache in a repository (%s core)', (impl) => {
  const dirs: string[] = [];
  const repos: Repository[] = [];
  afterEach(async () => {
    for (const r of repos.splice(0)) await r.close();
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  async function open(decodedPageCacheBytes = 64 * PAGE_SIZE): Promise<Repository> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `strata-decoded-${impl}-`));
    dirs.push(dir);
    const repo = await Repository.open(dir, { implementation: impl, decodedPageCacheBytes });
    repos.push(repo);
    return repo;
  }

  const read = (tl: Timeline, k: PageKey, lsn: bigint): Buffer => {
    const into = Buffer.alloc(PAGE_SIZE);
    tl.readPage(k, lsn, into);
    return into;
  };

  it('answers repeated reads at the newest LSN, and a record of the key ends that at once', async () => {
    const repo = await open();
    const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
    tl.ingest([{ kind: 'image', key: key(1), lsn: 10n, page: filled(1) }, { kind: 'image', key: key(2), lsn: 10n, page: filled(2) }]);
    await tl.flush();
    for (let i = 0; i < 3; i++) expect(read(tl, key(1), 10n)[0]).toBe(1); // cached on the second miss
    expect(repo.stats().decodedPageCache).toMatchObject({ hits: 1, insertions: 1, deferred: 1 });
    // Other keys' records move the newest LSN on; the entry still answers there.
    tl.ingest([{ kind: 'patch', key: key(2), lsn: 20n, offset: 0, data: Buffer.from([9]) }]);
    expect(read(tl, key(1), 20n)[0]).toBe(1);
    expect(repo.stats().decodedPageCache.hits).toBe(2);
    // A record of the key itself: the newest LSN reads the new page, older LSNs the old one.
    tl.ingest([{ kind: 'patch', key: key(1), lsn: 30n, offset: 0, data: Buffer.from([5]) }]);
    expect(read(tl, key(1), 25n)[0]).toBe(1); // the closed entry still answers below 30
    expect(read(tl, key(1), 30n)[0]).toBe(5); // a miss, whose page replaces the entry
    expect(read(tl, key(1), 30n)[0]).toBe(5);
    expect(read(tl, key(1), 25n)[0]).toBe(1); // one entry per key: from the layers again
    const st = repo.stats().decodedPageCache;
    expect(st.invalidations).toBe(1);
    expect(st.hits).toBe(4);
    // A hit visits no layer and applies no record.
    expect(tl.stats().reads).toBe(8);
  });

  it('serves a batch of hits and misses in order, async and sync', async () => {
    const repo = await open();
    const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
    const keys = Array.from({ length: 8 }, (_v, b) => key(b));
    tl.ingest(keys.map((k, b) => ({ kind: 'image' as const, key: k, lsn: 10n + BigInt(b), page: filled(b + 1) })));
    const lsn = tl.lastRecordLsn;
    for (const b of [1, 4, 6]) for (let i = 0; i < 2; i++) read(tl, keys[b], lsn); // some cached
    const pages = await tl.getPages(keys, lsn);
    pages.forEach((p, b) => expect(p.equals(filled(b + 1))).toBe(true));
    const into = Buffer.alloc(keys.length * PAGE_SIZE + 3);
    tl.readPages([...keys].reverse(), lsn, into);
    for (let i = 0; i < keys.length; i++) expect(into[i * PAGE_SIZE]).toBe(keys.length - i);
    await expect(tl.getPages([keys[0], key(99)], lsn)).rejects.toMatchObject({ code: 'PAGE_NOT_FOUND' });
    // 3 hits, then 3 more (the rest were first misses), then keys[0] (cached on its second miss).
    expect(repo.stats().decodedPageCache.hits).toBe(3 + 3 + 1);
  });

  it('keeps a branch\'s view: the ancestor\'s later writes never reach it, its own close its entries', async () => {
    const repo = await open();
    const main = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
    main.ingest([{ kind: 'image', key: key(1), lsn: 10n, page: filled(1) }]);
    const child = await repo.createTimeline({ tenantId: 't', timelineId: 'child', ancestorTimelineId: 'main', ancestorLsn: 10n });
    expect(read(child, key(1), 10n)[0]).toBe(1);
    main.ingest([{ kind: 'image', key: key(1), lsn: 20n, page: filled(2) }]);
    expect(read(main, key(1), 20n)[0]).toBe(2);
    expect(read(child, key(1), 10n)[0]).toBe(1);
    child.ingest([{ kind: 'patch', key: key(1), lsn: 15n, offset: 0, data: Buffer.from([3]) }]);
    expect(read(child, key(1), 15n)[0]).toBe(3);
    expect(read(main, key(1), 20n)[0]).toBe(2);
  });

  it('caches nothing from a read that an ingest of its key overtook', async () => {
    const repo = await open();
    const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
    tl.ingest([{ kind: 'image', key: key(1), lsn: 10n, page: filled(1) }]);
    await tl.flush(); // the read goes to the layer file (native: maybe off the loop)
    const inFlight = tl.getPage(key(1), 10n);
    tl.ingest([{ kind: 'image', key: key(1), lsn: 20n, page: filled(2) }]);
    expect((await inFlight)[0]).toBe(1);
    expect(read(tl, key(1), 20n)[0]).toBe(2);
    expect((await tl.getPage(key(1), 20n))[0]).toBe(2);
    expect(read(tl, key(1), 15n)[0]).toBe(1);
  });

  it('is off at 0 bytes, and refuses a bad size', async () => {
    const repo = await open(0);
    const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
    tl.ingest([{ kind: 'image', key: key(1), lsn: 10n, page: filled(1) }]);
    read(tl, key(1), 10n);
    read(tl, key(1), 10n);
    expect(repo.stats().decodedPageCache).toMatchObject({ capacityPages: 0, hits: 0, insertions: 0 });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `strata-decoded-bad-${impl}-`));
    dirs.push(dir);
    for (const bad of [-1, 1.5, '4096', Number.NaN]) {
      await expect(Repository.open(dir, { implementation: impl, decodedPageCacheBytes: bad as number })).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
    }
  });

  it('exports its counters as metrics', async () => {
    const repo = await open();
    const tl = await repo.createTimeline({ tenantId: 't', timelineId: 'main' });
    tl.ingest([{ kind: 'image', key: key(1), lsn: 10n, page: filled(1) }]);
    for (let i = 0; i < 3; i++) read(tl, key(1), 10n);
    const text = repo.metricsText();
    expect(text).toMatch(/^strata_decoded_page_cache_hits_total\{implementation="\w+"\} 1$/m);
    expect(text).toMatch(/^strata_decoded_page_cache_capacity_pages\{implementation="\w+"\} 64$/m);
  });
});
