/**
 * Timeline.tryReadPagesCached (the page service's synchronous path for cached pages) on both cores:
 * false while a block is only on disk, the same bytes as getPages once the blocks are cached (into
 * the buffer at the offset given, nothing around it touched), and false — never a throw — for an
 * LSN above lastRecordLsn, a key without a page, a bad key or too small a buffer: what the async
 * path must wait for or report.
 */
import * as fs from 'node:fs';
import { afterEach, expect, it } from 'vitest';
import { PAGE_SIZE, type PageKey, Repository, type WalRecord } from '../lib';
import { describeEachCore } from './helpers/cores';
import { tmpDir } from './helpers/layers';

const key = (block: number): PageKey => ({ spcOid: 1663, dbOid: 5, relNumber: 100, forkNum: 0, blockNum: block });

describeEachCore('tryReadPagesCached (%s core)', (impl) => {
  const dirs: string[] = [];

  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  it('false until the blocks are cached, then exactly what getPages reads; false for what only the async path can answer', async () => {
    const dir = tmpDir(`trycached-${impl}`);
    dirs.push(dir);
    const keys = Array.from({ length: 8 }, (_, i) => key(i));
    let repo = await Repository.open(dir, { implementation: impl });
    let tl = await repo.createTimeline({ tenantId: 't', timelineId: 'm' });
    tl.ingest(keys.map((k, i): WalRecord => ({ lsn: 0x10n, key: k, kind: 'image', page: Buffer.alloc(PAGE_SIZE, i + 1) })));
    tl.ingest(keys.map((k, i): WalRecord => ({ lsn: 0x20n, key: k, kind: 'patch', offset: 8 * i, data: Uint8Array.of(0xaa, i) })));
    await repo.close();
    // Reopened: the pages are in layer files and nothing is in the page cache yet.
    repo = await Repository.open(dir, { implementation: impl });
    tl = repo.getTimeline('t', 'm');
    const OFFSET = 11;
    const into = Buffer.alloc(OFFSET + keys.length * PAGE_SIZE + 5, 0xee);
    expect(tl.tryReadPagesCached(keys, 0x20n, into, OFFSET)).toBe(false);
    const want = await tl.getPages(keys, 0x20n); // reads the blocks into the cache
    into.fill(0xee);
    expect(tl.tryReadPagesCached(keys, 0x20n, into, OFFSET)).toBe(true);
    expect(into.subarray(0, OFFSET).every((b) => b === 0xee)).toBe(true);
    expect(into.subarray(OFFSET + keys.length * PAGE_SIZE).every((b) => b === 0xee)).toBe(true);
    for (let i = 0; i < keys.length; i++) expect(into.subarray(OFFSET + i * PAGE_SIZE, OFFSET + (i + 1) * PAGE_SIZE).equals(want[i])).toBe(true);
    const one = Buffer.alloc(PAGE_SIZE);
    expect(tl.tryReadPagesCached([keys[3]], 0x10n, one, 0)).toBe(true);
    expect(one.equals(await tl.getPage(keys[3], 0x10n))).toBe(true);
    // Cases the async path answers (it waits for WAL, or reports the error): false, not a throw.
    expect(tl.tryReadPagesCached([keys[0]], 0x30n, one, 0)).toBe(false); // above lastRecordLsn
    expect(tl.tryReadPagesCached([key(99)], 0x20n, one, 0)).toBe(false); // no page
    expect(tl.tryReadPagesCached([keys[0]], 0x20n, Buffer.alloc(10), 0)).toBe(false); // buffer too small
    expect(tl.tryReadPagesCached([{ ...keys[0], forkNum: 300 }], 0x20n, one, 0)).toBe(false); // a bad key
    await repo.close();
  });
});
